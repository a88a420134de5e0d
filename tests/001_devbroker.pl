# tests/001_devbroker.pl: the development broker itself.
#
# Produces and consumes through todo-kafka-devbroker with kcat (an
# independent client), takes all brokers down and up, and checks the
# command line's error handling.  Needs no PostgreSQL.

use strict;
use warnings;

use IPC::Run;
use Test::More;

use DevBroker;

my $bin = DevBroker::binary();

# --- command line -----------------------------------------------------------

{
	my ($out, $err) = ('', '');
	IPC::Run::run([ $bin, '--help' ], '<', \undef, '>', \$out, '2>', \$err);
	is($? >> 8, 0, '--help exits 0');
	like($out, qr/^Usage:/m, '--help prints usage');
	like($out, qr/^\s+down ID\|all/m, '--help lists the control commands');
}

for my $case ([ [ '-n', 'zero' ], qr/invalid broker count.*"zero"/ ],
	[ [ '--no-such-flag' ], qr/unknown option "--no-such-flag"/ ],
	[ [ '-t', 'bad/name' ], qr/invalid topic name "bad\/name"/ ],
	[ [ '-t', 'ok:0' ], qr/invalid partition count/ ],
	[ [ 'stray' ], qr/unexpected argument "stray"/ ])
{
	my ($args, $re) = @$case;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $bin, @$args ], '<', \undef, '>', \$out, '2>', \$err);
	is($? >> 8, 2, "\"@$args\" exits 2");
	like($err, $re, "\"@$args\" says what is wrong");
	like($err, qr/--help/, "\"@$args\" points to --help");
	is($out, '', "\"@$args\" prints nothing on stdout");
}

# --- produce and consume ----------------------------------------------------

my $topic = 't001.events';
my $kafka = DevBroker->start(topics => [ "$topic:3", 't001.other' ], brokers => 3);
like($kafka->bootstrap, qr/^127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){2}$/,
	'bootstrap lists three loopback brokers');

like($kafka->command('status'),
	qr/^ok status brokers=3 up=1,2,3 down=- topics=2 /, 'status answers');
like($kafka->command('no-such-command'),
	qr/^error: unknown command "no-such-command"/, 'unknown command is refused');

my $n = 20;
my @payloads = map { "{\"n\":$_,\"text\":\"message $_\"}" } 1 .. $n;
my ($ok, $err) = $kafka->produce($topic, \@payloads,
	key => 'task-42', headers => [ 'ce-type' => 'task.created', trace => 'abc' ]);
ok($ok, 'kcat produced') or diag($err);

my $msgs = $kafka->consume($topic, count => $n, timeout => 30);
is(scalar @$msgs, $n, "consumed $n messages");
is_deeply([ map { $_->{payload} } @$msgs ], \@payloads,
	'payloads arrive complete and in order (one key: one partition)');
is_deeply([ sort { $a cmp $b } keys %{ { map { $_->{key} => 1 } @$msgs } } ],
	['task-42'], 'every message carries the key');
is_deeply([ map { $_->{headers} } @$msgs ],
	[ map { [ 'ce-type', 'task.created', 'trace', 'abc' ] } 1 .. $n ],
	'every message carries both headers');
is_deeply([ map { $_->{offset} } @$msgs ], [ 0 .. $n - 1 ], 'offsets are 0..N-1');
is($kafka->end_offsets($topic), $n, 'end offsets add up to N');
is($kafka->end_offsets('t001.other'), 0, 'the other topic is empty');

# --- brokers down and up ----------------------------------------------------

is($kafka->command('down all'), 'ok down all (brokers 1-3)', 'down all');
like($kafka->command('status'), qr/ up=- down=1,2,3 /, 'status shows all down');
($ok, $err) = $kafka->produce($topic, ['while down'],
	conf => { 'message.timeout.ms' => 3000 });
ok(!$ok, 'produce fails while all brokers are down');

is($kafka->command('up all'), 'ok up all (brokers 1-3)', 'up all');
($ok, $err) = $kafka->produce($topic, ['after up'], key => 'task-42',
	conf => { 'message.timeout.ms' => 30000 });
ok($ok, 'produce works again after up all') or diag($err);
$msgs = $kafka->consume($topic, count => $n + 1, timeout => 30);
is_deeply([ map { $_->{payload} } @$msgs ], [ @payloads, 'after up' ],
	'the message produced while down is not there, the one after up is');

is($kafka->command('down 2'), 'ok down 2', 'one broker down');
like($kafka->command('down 9'), qr/^error: invalid broker "9"/, 'unknown broker refused');
is($kafka->command('up 2'), 'ok up 2', 'broker back up');

# --- error injection and topics ---------------------------------------------

like($kafka->command('error Produce NOT_LEADER_FOR_PARTITION 2'),
	qr/^ok error Produce NOT_LEADER_FOR_PARTITION x2$/, 'retriable error injected');
($ok, $err) = $kafka->produce($topic, ['after retriable errors'], key => 'task-42',
	conf => { 'message.timeout.ms' => 30000 });
ok($ok, 'produce retries through retriable errors') or diag($err);

like($kafka->command('error Produce NOPE 1'), qr/^error: unknown error code "NOPE"/,
	'unknown error name refused');
like($kafka->command('topic t001.added 2'),
	qr/^ok topic t001\.added partitions=2 /, 'topic created at run time');
($ok, $err) = $kafka->produce('t001.added', ['x'], partition => 1);
ok($ok, 'produce to the new topic\'s partition 1') or diag($err);
is($kafka->end_offsets('t001.added'), 1, 'new topic has the message');

is($kafka->stop, 0, 'SIGTERM stops the broker with exit code 0');

done_testing();
