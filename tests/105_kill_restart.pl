# tests/105_kill_restart.pl: relay killed with SIGKILL mid-stream.
#
# A backlog of 5000 tasks is streaming when the relay is killed; a new
# relay finishes the job.  Every event arrives; an event seen twice has
# the same id and byte-identical content (stable ids, at-least-once).

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);
use TodoKafkaTest;
use DevBroker;

my $N = 5000;
# Small delete batches: the outbox then shrinks step by step, so the kill
# below lands mid-stream however fast the relay drains (with the default
# 5000 a fast relay deletes all 5000 rows in one statement).
my $conf = "${PostgreSQL::Test::Utils::tmp_check}/t105_relay.conf";
open(my $fh, '>', $conf) or die "$conf: $!";
print $fh "delete_batch = 100\n";
close $fh;
my $s = TodoKafkaTest->start_stack('t105',
	setup_sql => "INSERT INTO todo_kafka.tasks (user_id, title) SELECT 'dave', 'task ' || g FROM generate_series(1, $N) g",
	relay_args => [ '-X', 'linger.ms=50', '-c', $conf ]);
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};
my $left;
for (1 .. 400)
{
	$left = TodoKafkaTest::outbox_count($node);
	last if $left < $N;
	sleep(0.005);
}
$relay->kill9;
$left = TodoKafkaTest::outbox_count($node);
cmp_ok($left, '>', 0, "killed mid-stream ($left rows left)");

my $relay2 = TodoKafkaTest->start_relay($node, $kafka);
ok(TodoKafkaTest::wait_outbox_empty($node, 60), 'the restarted relay drains the rest');

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
