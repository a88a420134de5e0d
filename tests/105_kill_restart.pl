# tests/105_kill_restart.pl: relay killed with SIGKILL mid-stream.
#
# A backlog of 5000 tasks is streaming when the relay is killed; a new
# relay starts at the stored position and finishes the job.  Every event arrives; an event seen twice has
# the same id and byte-identical content (stable ids, at-least-once).

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);
use TodoKafkaTest;
use DevBroker;

my $N = 5000;
my $s = TodoKafkaTest->start_stack('t105',
	setup_sql => "INSERT INTO todo_kafka.tasks (user_id, title) SELECT 'dave', 'task ' || g FROM generate_series(1, $N) g",
	relay_args => [ '-X', 'linger.ms=50' ]);
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};
# Slow acknowledgements: the drain then takes seconds, so the kill below
# lands mid-stream however fast the relay reads.
like($kafka->command('rtt all 30'), qr/^ok/, 'broker responses delayed');
my $published = 0;
wait_until('a first event published',
	sub { ($published = $kafka->end_offsets($t->{task_events})) > 0 }, 6, 0.01);
$relay->kill9;
cmp_ok($published, '>', 0, 'the relay had published when it was killed');
my $left = TodoKafkaTest::outbox_pending($node);
cmp_ok($left, '>', 0, "killed mid-stream ($left rows not yet past the stored position)");
like($kafka->command('rtt all 0'), qr/^ok/, 'broker responses at full speed again');

my $relay2 = TodoKafkaTest->start_relay($node, $kafka);
ok(TodoKafkaTest::wait_outbox_published($node, 60), 'the restarted relay drains the rest');

my $ev = $s->events('task_events', count => $N, timeout => 60);
my (%payload, $dups, $mismatch);
for my $m (@$ev)
{
	my $id = $m->{event}{id};
	if (exists $payload{$id})
	{
		$dups++;
		$mismatch++ if $payload{$id} ne $m->{payload};
	}
	$payload{$id} = $m->{payload};
}
is(scalar keys %payload, $N, "all $N events delivered");
ok(!$mismatch, 'duplicates (' . ($dups // 0) . ') carry identical ids and content');

is($relay2->stop, 0, 'relay stops cleanly');
$s->stop;
done_testing();
