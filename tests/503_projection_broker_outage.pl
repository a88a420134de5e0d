# tests/503_projection_broker_outage.pl: todo-kafka-project after every
# broker was down longer than the group session (found by tests/soak).
#
# All brokers go down for 12 s (session.timeout.ms is 10 s): the group
# session times out, the partitions are revoked and, once the brokers are
# back, assigned again at the offsets the projector keeps in the database.
# Changes made during and after the outage, and a poison message, must all
# reach the read model (or the dead-letter topic) afterwards; the read model
# ends equal to the tasks table.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);
use TodoKafkaTest;

my $s = TodoKafkaTest->start_stack('t503', brokers => 3);
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};

sub sql { return $node->safe_psql('postgres', $_[0]); }

my $cols = 'id, user_id, title, completed, priority, tags, due_date';
sub view_matches
{
	return sql("SELECT count(*) FROM ((SELECT $cols FROM todo_kafka.tasks
		EXCEPT SELECT $cols FROM todo_kafka.task_view) UNION ALL (SELECT $cols FROM todo_kafka.task_view
		EXCEPT SELECT $cols FROM todo_kafka.tasks)) d") == 0;
}

my $proj = TodoKafkaTest->start_service('project', $node, $kafka, args => ['--snapshot-interval-s=0']);
ok($proj->wait_log(qr/starts at offset/), 'projector assigned');
sql(join '', map { "SELECT 1 FROM todo_kafka.add_task('alice', 'before $_');" } 1 .. 20);
ok(TodoKafkaTest::wait_until('the read model before the outage', \&view_matches, 60), 'read model caught up');

like($kafka->command('down all'), qr/^ok/, 'all brokers down');
sql(join '', map { "SELECT 1 FROM todo_kafka.add_task('alice', 'during $_');" } 1 .. 10);
sleep(12);
like($kafka->command('up all'), qr/^ok/, 'all brokers up');
ok($proj->wait_log(qr/SESSTMOUT|session timed out/i, 30), 'the group session timed out');
ok(TodoKafkaTest::wait_until('a second assignment',
	sub { my @a = $proj->log_text =~ /consumer 0: assigned/g; @a >= 2 }, 60), 'assigned again');
my ($ok) = $kafka->produce($t->{task_events}, ['not json {'], key => 'poison');
ok($ok, 'a poison message after the outage');
sql(join '', map { "SELECT 1 FROM todo_kafka.add_task('alice', 'after $_');" } 1 .. 10);
sql("SELECT count(*) FROM todo_kafka.tasks t,
	   LATERAL todo_kafka.update_task('alice', t.id, p_title => t.title || ' (edited)') x
	 WHERE t.title LIKE 'before%'");
ok(TodoKafkaTest::wait_until('the read model after the outage', \&view_matches, 90),
	'the read model equals tasks after the outage')
  or diag($proj->log_text);
ok(TodoKafkaTest::wait_until('the poison dead-lettered',
	sub { $kafka->end_offsets($t->{dead_letter}) >= 1 }, 30), 'the poison is dead-lettered');

is($proj->stop, 0, 'projector: SIGTERM, exit 0');
is($relay->stop, 0, 'relay: exit 0');
$s->stop;
done_testing();
