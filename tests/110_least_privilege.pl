# tests/110_least_privilege.pl: the whole flow with the extension's roles.
#
# The chatbot logs in as a member of todo_kafka_app (task API only), the
# relay as a member of todo_kafka_relay (read and delete the outbox, write
# dead letters, fire reminders).  Nothing runs as a superuser: a missing
# grant shows up here as an error in the relay log or a row left behind.

use strict;
use warnings;

use Test::More;
use TodoKafkaTest;
use DevBroker;

my $s = TodoKafkaTest->start_stack('t110', streams => ['big_events'], relay => 0, setup_sql => q{
	CREATE ROLE chatbot LOGIN IN ROLE todo_kafka_app;
	CREATE ROLE relay_login LOGIN IN ROLE todo_kafka_relay;
});
my ($node, $t, $kafka) = @$s{qw(node topics kafka)};
my $relay = TodoKafkaTest->start_relay($node, $kafka,
	args => [ '-d', $node->connstr('postgres') . ' user=relay_login',
			  '-X', 'message.max.bytes=20000' ]);
ok($relay->wait_log(qr/acquired leadership/), 'relay leads as todo_kafka_relay member');

my $app = sub { $node->safe_psql('postgres', $_[0], extra_params => [ '-U', 'chatbot' ]) };
my $task = $app->("SELECT id FROM todo_kafka.add_task('hana', 'least privilege')");
$app->("SELECT todo_kafka.complete_task('hana', '$task')");
$app->("SELECT todo_kafka.publish('big_events', 'big', 'custom.big', jsonb_build_object('blob', repeat('x', 50000)))");
$app->("SELECT id FROM todo_kafka.add_task('hana', 'soon', p_due_date => now() + interval '2 seconds',
		p_reminder_offsets => '{1 second}', p_notification_methods => '{push}')");

my ($ok, $err) = (1, '');
eval { $app->("DELETE FROM todo_kafka.outbox"); $ok = 0; };
ok($ok, 'the app role cannot delete outbox rows');

my $ev = $s->events('task_events', count => 2, timeout => 30);
is_deeply([ map { $_->{event}{type} } grep { $_->{key} eq $task } @$ev ],
	[ 'task.created', 'task.completed' ], 'task events published');
my $rem = $s->events('reminders', count => 2, timeout => 30);
is_deeply([ sort map { $_->{event}{data}{event_type} } @$rem ], [ 'scheduled', 'sent' ],
	'the relay role fired the reminder');
my $dl = $s->events('dead_letter', count => 1, timeout => 30);
is(scalar @$dl, 1, 'poison row went to the dead-letter topic');
ok(TodoKafkaTest::wait_outbox_published($node, 30), 'the relay role deleted every published row');
is($node->safe_psql('postgres', 'SELECT count(*) FROM todo_kafka.dead_letters'), '1',
	'dead letter row written by the relay role');
unlike($relay->log_text, qr/permission denied/, 'no permission errors in the relay log');

is($relay->stop, 0, 'relay stops cleanly');
$s->stop;
done_testing();
