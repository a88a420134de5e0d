# tests/701_point_in_time_recovery.pl: a base backup (pg_basebackup) plus
# WAL replay to an earlier time (recovery_target_time) on a scratch
# cluster; the relay, audit service and projector resume against the
# recovered database and the same Kafka (issue 20).
#
# At the target time the audit service had not yet consumed some changes
# that were on Kafka; it consumed them afterwards (its group's committed
# offsets are ahead of the recovered database) and later changes were
# never published.  After recovery the audit trail holds every published
# change once and verifies, the read model equals the tasks table, the
# relay publishes what is committed after the recovery.  Recovery keeps
# the cluster's xid history (same system identifier): the relay keeps its
# position, nothing is re-sent.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use TodoKafkaTest;
use DevBroker;

my $prim = PostgreSQL::Test::Cluster->new('t701_primary');
$prim->init(has_archiving => 1, allows_streaming => 1);
$prim->append_conf('postgresql.conf', "max_connections = 60\n");
$prim->start;
$prim->safe_psql('postgres', 'CREATE EXTENSION todo_kafka');
my $t = TodoKafkaTest::use_topics($prim, 't701');
my $kafka = DevBroker->start(topics => [ sort values %$t ]);

sub q_on { my ($node, $q) = @_; return $node->safe_psql('postgres', $q); }

sub audited { return q_on($_[0], 'SELECT count(*) FROM todo_kafka.audit_log'); }

# the base backup, before any task
$prim->backup('base');

my $relay = TodoKafkaTest->start_relay($prim, $kafka);
ok($relay->wait_log(qr/acquired leadership/), 'relay leads');
my $audit = TodoKafkaTest->start_service('audit', $prim, $kafka);
my $proj = TodoKafkaTest->start_service('project', $prim, $kafka);

# A: published, audited, projected
my @ids = map { q_on($prim, "SELECT id FROM todo_kafka.add_task('alice', 'Task $_')") } 1 .. 3;
q_on($prim, "SELECT 1 FROM todo_kafka.update_task('alice', '$ids[0]', p_priority => 'high')");
ok(TodoKafkaTest::wait_until('audit', sub { audited($prim) == 4 }), 'audited');

# A2: published and projected, not yet audited at the target time
is($audit->stop, 0, 'audit service stops');
q_on($prim, "SELECT 1 FROM todo_kafka.update_task('alice', '$ids[1]', p_title => 'Task 2, renamed')");
q_on($prim, "SELECT 1 FROM todo_kafka.complete_task('alice', '$ids[2]')");
ok(TodoKafkaTest::wait_outbox_published($prim), 'published');
ok(TodoKafkaTest::wait_until('projection', sub { TodoKafkaTest::read_model_diff($prim, 'postgres') == 0 }), 'projected');
my $tasks_at_target = q_on($prim, "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM todo_kafka.tasks t");

# the recovery target: between A2 and what follows (commit times differ
# by far more than a clock tick on either side)
sleep(1);
my $target = q_on($prim, 'SELECT now()');
sleep(1);

# after the target: the audit service catches up (group offsets ahead),
# B is committed but never published
$audit = TodoKafkaTest->start_service('audit', $prim, $kafka);
ok(TodoKafkaTest::wait_until('audit', sub { audited($prim) == 6 }), 'the audit service caught up after the target');
is($audit->stop, 0, 'and commits its group offsets on stop');
is($relay->stop, 0, 'relay stops');
q_on($prim, "SELECT 1 FROM todo_kafka.add_task('alice', 'After the target, never published')");
is($proj->stop, 0, 'projector stops');
my $wal = q_on($prim, 'SELECT pg_walfile_name(pg_current_wal_lsn())');
q_on($prim, 'SELECT pg_switch_wal()');
ok($prim->poll_query_until('postgres',
	"SELECT last_archived_wal >= '$wal' FROM pg_stat_archiver"), 'WAL archived');
$prim->stop;

# --- recovery to the target on a scratch cluster -----------------------------
my $rec = PostgreSQL::Test::Cluster->new('t701_recovered');
$rec->init_from_backup($prim, 'base', has_restoring => 1);
$rec->append_conf('postgresql.conf', "recovery_target_time = '$target'\n"
	  . "recovery_target_action = 'promote'\n");
$rec->start;
ok($rec->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), 'recovered and promoted');
is(q_on($rec, "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM todo_kafka.tasks t"),
	$tasks_at_target, 'the tasks as they were at the target time');
is(audited($rec), 4, 'the audit log as it was (without A2)');

$relay = TodoKafkaTest->start_relay($rec, $kafka);
ok($relay->wait_log(qr/acquired leadership/), 'relay leads on the recovered database');
$audit = TodoKafkaTest->start_service('audit', $rec, $kafka);
$proj = TodoKafkaTest->start_service('project', $rec, $kafka);
my $after = q_on($rec, "SELECT id FROM todo_kafka.add_task('alice', 'After the recovery')");

ok(TodoKafkaTest::wait_until('audit', sub { audited($rec) == 7 }), 'the audit trail: A, A2 (from Kafka) and the new change')
  or diag($audit->log_text);
is(q_on($rec, 'SELECT count(DISTINCT event_id) FROM todo_kafka.audit_log'), 7, 'each once');
is(q_on($rec, "SELECT count(*) FROM todo_kafka.audit_log WHERE task_id = '$ids[2]' AND event_type = 'completed'"),
	1, 'including the change only Kafka held');
is(q_on($rec, 'SELECT ok FROM todo_kafka.verify_audit()'), 't', 'verify_audit() intact');
ok(TodoKafkaTest::wait_until('projection', sub { TodoKafkaTest::read_model_diff($rec, 'postgres') == 0 }), 'the read model equals the tasks table');
is(q_on($rec, "SELECT count(*) FROM todo_kafka.task_view WHERE id = '$after'"), 1,
	'including the change made after the recovery');
unlike(TodoKafkaTest::slurp($rec->logfile), qr/will be sent again/, 'the same cluster: the position is kept');
my $events = TodoKafkaTest::consume_events($kafka, $t->{task_events});
is(scalar(grep { ($_->{event}{type} // '') eq 'task.created' } @$events), 4,
	'nothing re-sent: three tasks before, one after the recovery');

is($_->stop, 0, "$_->{name} stops") for $relay, $audit, $proj;
$kafka->stop;
$rec->stop;
done_testing();
