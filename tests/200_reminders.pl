# tests/200_reminders.pl: a reminder fires on todo.reminders, once, after
# its time; completing a task cancels its pending reminders.
#
# A task due in 3 s with a 1 s reminder offset schedules one email
# reminder (scheduled event); the relay fires it as a "sent" task.reminder
# event whose data follows the reminders schema exactly, produced after
# its scheduled time (the Kafka message timestamp and the event time are
# compared with scheduled_time; no timing bound is asserted).  A second
# task with pending reminders is completed: each yields "cancelled".
# /metrics counts the fired reminder.

use strict;
use warnings;

use Test::More;
use TodoKafkaTest;
use DevBroker;

my $stack = TodoKafkaTest->start_stack('t200', metrics => 1);
my ($node, $t, $kafka, $relay, $port) = @$stack{qw(node topics kafka relay port)};

my $task = $node->safe_psql('postgres',
	"SET todo_kafka.correlation_id = 'corr-200';"
	  . "SELECT id FROM todo_kafka.add_task('alice', 'Call Bob', p_due_date => now() + interval '3 s',"
	  . " p_reminder_offsets => '{1 second}', p_notification_methods => '{email}')");
like($task, qr/^[0-9a-f-]{36}$/, 'task with a reminder created');
my ($rid, $sched) = split /\|/, $node->safe_psql('postgres',
	"SELECT reminder_id, scheduled_time FROM todo_kafka.reminders WHERE task_id = '$task'");
ok($rid, 'one reminder row');

my $ev = $stack->events('reminders', count => 2, timeout => 60);
my @mine = grep { ($_->{event}{data}{reminder_id} // '') eq $rid } @$ev;
is_deeply([ map { $_->{event}{data}{event_type} } @mine ], [ 'scheduled', 'sent' ],
	'scheduled, then sent, once each, in order');

my ($s) = grep { $_->{event}{data}{event_type} eq 'scheduled' } @mine;
is($s && $s->{event}{type}, 'reminder.scheduled', 'scheduled event type');

my ($m) = grep { $_->{event}{data}{event_type} eq 'sent' } @mine;
SKIP:
{
	skip 'no sent event', 20 unless $m;
	my $e = $m->{event};
	my $d = $e->{data};
	is($e->{type}, 'task.reminder', 'CloudEvents type task.reminder');
	is($e->{specversion}, '1.0', 'specversion');
	is($e->{subject}, $task, 'subject is the task id');
	is($m->{key}, $task, 'Kafka key is the task id');
	is($m->{hdr}{'event-type'}, 'task.reminder', 'event-type header');
	is_deeply([ sort keys %$d ],
		[ sort qw(event_type reminder_id task_id user_id message scheduled_time
			  notification_method timestamp correlation_id) ],
		'data fields are exactly the reminders schema');
	is($d->{task_id}, $task, 'data.task_id');
	is($d->{user_id}, 'alice', 'data.user_id');
	is($d->{notification_method}, 'email', 'data.notification_method');
	like($d->{message}, qr/Call Bob/, 'data.message names the task');
	is($d->{correlation_id}, $e->{correlationid}, 'data.correlation_id = correlationid');
	like($d->{scheduled_time}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'scheduled_time is RFC 3339 UTC');
	is($node->safe_psql('postgres',
			"SELECT '$d->{scheduled_time}'::timestamptz = '$sched'::timestamptz"),
		't', 'data.scheduled_time is the reminder\'s scheduled time');
	is($node->safe_psql('postgres',
			"SELECT '$e->{time}'::timestamptz >= '$sched'::timestamptz"),
		't', 'event time is not before the scheduled time');
	ok(defined $m->{timestamp}, 'message has a Kafka timestamp');
	my $sched_ms = $node->safe_psql('postgres',
		"SELECT (extract(epoch FROM '$sched'::timestamptz) * 1000)::bigint");
	cmp_ok($m->{timestamp} // 0, '>=', $sched_ms,
		'produced to Kafka after the scheduled time');
	note('lateness on Kafka: ' . (($m->{timestamp} // 0) - $sched_ms) . ' ms');
}
is($node->safe_psql('postgres', "SELECT status, fired_at >= scheduled_time FROM todo_kafka.reminders WHERE reminder_id = '$rid'"),
	'sent|t', 'reminder marked sent, fired at or after its time');

# completing a task with pending reminders cancels them
my $task2 = $node->safe_psql('postgres',
	"SELECT id FROM todo_kafka.add_task('alice', 'Pay rent', p_due_date => now() + interval '1 day',"
	  . " p_reminder_offsets => '{1 hour, 10 minutes}', p_notification_methods => '{push}')");
$node->safe_psql('postgres', "SELECT todo_kafka.complete_task('alice', '$task2')");
$ev = $stack->events('reminders', count => 6, timeout => 60);
my @t2 = map { $_->{event}{data}{event_type} } grep { ($_->{key} // '') eq $task2 } @$ev;
is_deeply(\@t2, [ 'scheduled', 'scheduled', 'cancelled', 'cancelled' ],
	'complete: both pending reminders cancelled');
my ($c) = grep { ($_->{key} // '') eq $task2 && $_->{event}{data}{event_type} eq 'cancelled' } @$ev;
is($c && $c->{event}{type}, 'reminder.cancelled', 'cancelled event type');
is($node->safe_psql('postgres',
		"SELECT string_agg(status, ',') FROM todo_kafka.reminders WHERE task_id = '$task2'"),
	'cancelled,cancelled', 'reminders table: cancelled');

# nothing fired twice, nothing fired that was cancelled
is(scalar(grep { $_->{event}{type} eq 'task.reminder' } @$ev), 1, 'exactly one task.reminder event');

ok(TodoKafkaTest::wait_outbox_published($node), 'outbox emptied');
my $metrics = TodoKafkaTest::http_get("127.0.0.1:$port", '/metrics');
like($metrics, qr/^todo_kafka_relay_reminders_fired_total\{status="sent"\} 1$/m,
	'metrics: one reminder fired as sent');
like($metrics, qr/^todo_kafka_relay_reminder_lateness_max_seconds [0-9.e+-]+$/m,
	'metrics: lateness max exported');

is($relay->stop, 0, 'SIGTERM: exit 0');
unlike($relay->log_text, qr/ERROR/, 'no errors logged');

$stack->stop;
done_testing();
