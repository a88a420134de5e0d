# tests/201_reminder_missed.pl: reminders that fall due while no relay runs.
#
# Reminder A falls due while the relay is stopped (SIGTERM); the relay is
# restarted with --reminder-grace 1 more than 2 s after A's time: A arrives
# as "missed", exactly once.  Reminder B, due a few seconds after that
# restart (within the grace), arrives as "sent".  Then the relay is stopped
# again across reminder C's time and restarted with the default grace
# (300 s): C, just as late as A was, arrives as "sent".  A last restart
# fires nothing again.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);
use TodoKafkaTest;
use DevBroker;

my $s = TodoKafkaTest->start_stack('t201', relay => 0);
my ($node, $t, $kafka) = @$s{qw(node topics kafka)};

# a task due at now + due with one email reminder offset 1 s; its reminder id
sub add_reminder
{
	my ($title, $due) = @_;
	my $task = $node->safe_psql('postgres',
		"SELECT id FROM todo_kafka.add_task('bob', '$title', p_due_date => now() + interval '$due',"
		  . " p_reminder_offsets => '{1 second}', p_notification_methods => '{email}')");
	return $node->safe_psql('postgres',
		"SELECT reminder_id FROM todo_kafka.reminders WHERE task_id = '$task'");
}

# wait until the database clock is $late past the reminder's scheduled time
sub wait_past
{
	my ($rid, $late) = @_;
	$node->poll_query_until('postgres',
		"SELECT clock_timestamp() > scheduled_time + interval '$late' "
		  . "FROM todo_kafka.reminders WHERE reminder_id = '$rid'")
	  or die "timed out waiting for reminder $rid to be $late late";
}

sub status
{
	my ($rid) = @_;
	return $node->safe_psql('postgres',
		"SELECT status FROM todo_kafka.reminders WHERE reminder_id = '$rid'");
}

# fired (sent or missed) events on Kafka: reminder_id => [event types]
sub fired_events
{
	my ($count) = @_;
	my $ev = $s->events('reminders', count => $count, timeout => 60);
	my %f;
	for my $e (grep { ($_->{event}{type} // '') eq 'task.reminder' } @$ev)
	{
		push @{ $f{ $e->{event}{data}{reminder_id} } }, $e->{event}{data}{event_type};
	}
	return (\%f, $ev);
}

my $relay = TodoKafkaTest->start_relay($node, $kafka);
ok($relay->wait_log(qr/acquired leadership/), 'relay leads');
my $a = add_reminder('A', '3 s');
ok(TodoKafkaTest::wait_outbox_published($node), 'scheduled event of A published');
is($relay->stop, 0, 'relay stopped before A is due');
is(status($a), 'scheduled', 'A still scheduled while no relay runs');

wait_past($a, '2.5 s');
is(status($a), 'scheduled', 'A not fired by anyone while the relay is down');
$relay = TodoKafkaTest->start_relay($node, $kafka, args => [ '--reminder-grace', '1' ]);
ok($relay->wait_log(qr/acquired leadership/), 'relay restarted with --reminder-grace 1');
my $b = add_reminder('B', '4 s');

$node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM todo_kafka.reminders WHERE reminder_id IN ('$a', '$b') AND status <> 'scheduled'")
  or diag('A and B were not both fired');
ok(TodoKafkaTest::wait_outbox_published($node), 'fired events published');
is(status($a), 'missed', 'A marked missed');
is(status($b), 'sent', 'B (due after the restart, within the grace) marked sent');
ok($relay->wait_log(qr/fired 1 missed reminders/, 10), 'missed reminder logged');

my ($f, $ev) = fired_events(4);
is_deeply($f->{$a}, ['missed'], 'A on Kafka: one missed event');
is_deeply($f->{$b}, ['sent'], 'B on Kafka: one sent event');
my ($am) = grep { ($_->{event}{data}{reminder_id} // '') eq $a && $_->{event}{type} eq 'task.reminder' } @$ev;
is($am && $am->{hdr}{'event-type'}, 'task.reminder', 'missed is delivered as task.reminder');

# stopped across C's time, restarted with the default grace: sent, though late
my $c = add_reminder('C', '3 s');
ok(TodoKafkaTest::wait_outbox_published($node), 'scheduled event of C published');
is($relay->stop, 0, 'relay stopped before C is due');
wait_past($c, '2.5 s');
$relay = TodoKafkaTest->start_relay($node, $kafka);
ok($relay->wait_log(qr/acquired leadership/), 'relay restarted with the default grace');
$node->poll_query_until('postgres',
	"SELECT status <> 'scheduled' FROM todo_kafka.reminders WHERE reminder_id = '$c'")
  or diag('C was not fired');
is(status($c), 'sent', 'C, 2.5 s late, within the default grace: sent');
ok(TodoKafkaTest::wait_outbox_published($node), 'C published');
is($relay->stop, 0, 'relay stopped');

# one more restart fires nothing again
$relay = TodoKafkaTest->start_relay($node, $kafka);
ok($relay->wait_log(qr/acquired leadership/), 'relay restarted once more');
sleep(1);
ok(TodoKafkaTest::wait_outbox_published($node), 'nothing left to publish');
($f) = fired_events(6);
is_deeply($f, { $a => ['missed'], $b => ['sent'], $c => ['sent'] },
	'every reminder fired exactly once across three restarts');
is($kafka->end_offsets($t->{reminders}), 6, 'todo.reminders holds 3 scheduled + 3 fired events');
is($relay->stop, 0, 'SIGTERM: exit 0');
unlike($relay->log_text, qr/ERROR/, 'no errors logged');

$s->stop;
done_testing();
