# tests/307_notify_email_connections.pl: the email stage keeps its SMTP
# connection from message to message, and gets a new one when the server
# closed it.
#
# The stages as separate processes (the fan-out stage plans and produces a
# batch at a time), the email stage with one consumer thread.  12 users
# each get a new task by email: 12 emails, each once, over ONE connection
# (the SMTP sink numbers its connections; one connection and one session
# per email is what the notifier did before it kept them).  Then the SMTP
# server restarts on the same port, so the kept connection is dead: 6 more
# emails arrive, each once, over one new connection, with nothing
# dead-lettered and no email left unsent in the delivery log.

use strict;
use warnings;

use JSON::PP;
use Test::More;
use TodoKafkaTest;
use NotifyTest;

my $json = JSON::PP->new;
my $s = TodoKafkaTest->start_stack('t307');
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};

my $rx = NotifyTest->new;
$rx->start_smtp;
$s->sql("SELECT count(todo_kafka.set_notification_email('u' || g, 'u' || g || '\@example.com')),
		count(todo_kafka.set_notification_channels('u' || g, 'task_created', '{email}'))
	FROM generate_series(1, 18) g");

my $conf = $rx->config;
my %st;
for my $stage (qw(fanout email))
{
	$st{$stage} = TodoKafkaTest->start_service('notify', $node, $kafka,
		args => [ '-c', $conf, '--stage', $stage ], name => "notify-$stage");
}
ok($st{email}->wait_log(qr/consuming stream notifications/), 'email stage started');

# the sink's envelope lines (one per accepted message, with its connection number)
sub envelopes
{
	my $f = $rx->dir . '/mail/envelopes.jsonl';
	return [] unless -e $f;
	return [ map { $json->decode($_) } grep { length } split /\n/, TodoKafkaTest::slurp($f) ];
}

sub connections { my %c = map { ($_->{connection} => 1) } @_; return scalar keys %c; }

$s->sql("SELECT count(todo_kafka.add_task('u' || g, 'Task of u' || g)) FROM generate_series(1, 12) g");
ok(wait_until('12 emails', sub { @{ envelopes() } >= 12 }, 60), '12 emails arrived')
  or diag($st{email}->log_text);
sleep(1);
my @first = @{ envelopes() };
is(scalar @first, 12, 'each email once');
is(connections(@first), 1, 'all 12 over one SMTP connection')
  or diag(explain [ map { "$_->{file}: connection $_->{connection}" } @first ]);

# the server goes away and comes back: the kept connection is dead
$rx->stop_smtp;
$rx->start_smtp;    # the same port, numbers its connections from 1 again
$s->sql("SELECT count(todo_kafka.add_task('u' || g, 'Task of u' || g)) FROM generate_series(13, 18) g");
ok(wait_until('6 more emails', sub { @{ envelopes() } >= 18 }, 60), 'after the restart: 6 more emails')
  or diag($st{email}->log_text);
sleep(1);
my @all = @{ envelopes() };
is(scalar @all, 18, 'each email once, 18 in all');
is_deeply([ sort map { $_->{rcpt_tos}[0] } @all ], [ sort map { "u$_\@example.com" } 1 .. 18 ],
	'one email to each user');
is(connections(@all[12 .. $#all]), 1, 'the 6 after the restart over one new connection');
is($s->sql("SELECT count(*) FROM todo_kafka.notification_deliveries
	WHERE channel = 'email' AND status <> 'delivered'"), 0, 'every email delivered in the log');
is(scalar(@{ $kafka->consume($t->{dead_letter}) }), 0, 'nothing dead-lettered');

for my $stage (qw(fanout email))
{
	is($st{$stage}->stop, 0, "$stage stage: SIGTERM, exit 0");
}
is($relay->stop, 0, 'relay: exit 0');
$s->stop;
$rx->stop;
done_testing();
