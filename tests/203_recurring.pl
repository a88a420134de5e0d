# tests/203_recurring.pl: completing a daily task renews it.
#
# Completing a daily task with a reminder yields, on todo.task.events,
# task.completed for it followed by task.recurring-created for its next
# occurrence, whose task_data.due_date is one day later.  The occurrence is
# a new task (its own id, so its own key): the test gives the topic one
# partition so the order of the two keys is visible on Kafka.  On
# todo.reminders the old reminder is cancelled and the new one scheduled
# one day later.

use strict;
use warnings;

use Test::More;
use TodoKafkaTest;
use DevBroker;

my $s = TodoKafkaTest->start_stack('t203', partitions => { task_events => 1 });
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};

my ($task, $due) = split /\|/, $node->safe_psql('postgres',
	"SELECT id, due_date FROM todo_kafka.add_task('dave', 'Water plants',"
	  . " p_due_date => date_trunc('second', now()) + interval '2 hours', p_recurrence => 'daily',"
	  . " p_reminder_offsets => '{30 minutes}', p_notification_methods => '{in_app}')");
$node->safe_psql('postgres', "SELECT todo_kafka.complete_task('dave', '$task')");
my $next = $node->safe_psql('postgres',
	"SELECT id FROM todo_kafka.tasks WHERE recurrence_parent = '$task'");
like($next, qr/^[0-9a-f-]{36}$/, 'next occurrence created');
ok(TodoKafkaTest::wait_outbox_published($node), 'outbox emptied');

my $ev = $s->events('task_events', count => 3, timeout => 30);
my @seq = map { [ $_->{key}, $_->{event}{type} ] } @$ev;
is_deeply(\@seq,
	[ [ $task, 'task.created' ], [ $task, 'task.completed' ], [ $next, 'task.recurring-created' ] ],
	'created, completed, then recurring-created for the next occurrence');

my ($rc) = grep { $_->{event}{type} eq 'task.recurring-created' } @$ev;
SKIP:
{
	skip 'no recurring-created event', 5 unless $rc;
	my $d = $rc->{event}{data};
	is($d->{event_type}, 'recurring-created', 'data.event_type');
	is($d->{task_id}, $next, 'data.task_id is the new task');
	is($d->{task_data}{recurrence}, 'daily', 'still daily');
	ok(!$d->{task_data}{completed}, 'the next occurrence is open');
	is($node->safe_psql('postgres',
			"SELECT '$d->{task_data}{due_date}'::timestamptz = '$due'::timestamptz + interval '1 day'"),
		't', 'task_data.due_date is one day later');
}

my $rem = $s->events('reminders', count => 3, timeout => 30);
is_deeply([ map { [ $_->{key}, $_->{event}{data}{event_type} ] } sort { $a->{key} eq $task ? -1 : $b->{key} eq $task ? 1 : 0 } @$rem ],
	[ [ $task, 'scheduled' ], [ $task, 'cancelled' ], [ $next, 'scheduled' ] ],
	'reminders: old one scheduled then cancelled, the next one scheduled');
my ($ns) = grep { $_->{key} eq $next } @$rem;
is($ns && $node->safe_psql('postgres',
		"SELECT '$ns->{event}{data}{scheduled_time}'::timestamptz = '$due'::timestamptz + interval '1 day' - interval '30 minutes'"),
	't', 'the next reminder is scheduled one day later');

is($relay->stop, 0, 'SIGTERM: exit 0');
unlike($relay->log_text, qr/ERROR/, 'no errors logged');
$s->stop;
done_testing();
