# tests/400_audit_trail.pl: task operations -> relay -> Kafka ->
# todo-kafka-audit -> todo_kafka.audit_log.
#
# Exactly the matching audit rows with correct before/after, the claimed
# actor and the real database role; searchable; the chain verifies, and an
# edited or deleted row is found by verify_audit(); nobody can UPDATE or
# DELETE audit rows; a redelivered topic adds nothing (idempotent).

use strict;
use warnings;

use JSON::PP;
use Test::More;
use TodoKafkaTest;
use DevBroker;

my $s = TodoKafkaTest->start_stack('t400');
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};
my $audit = TodoKafkaTest->start_service('audit', $node, $kafka);
ok($audit->wait_log(qr/consuming stream audit = topic \Q$t->{audit}\E/), 'audit consumes the audit topic');

sub wait_rows
{
	my ($n, $timeout) = @_;
	my $c;
	return 1 if wait_until("$n audit rows",
		sub { ($c = $s->sql('SELECT count(*) FROM todo_kafka.audit_log')) >= $n }, $timeout, 0.1);
	diag("audit_log has $c rows, expected $n; audit log:\n" . $audit->log_text);
	return 0;
}

# a conversation: the chatbot claims "assistant" acting for alice
my $id = $s->sql("SET todo_kafka.actor = 'assistant';
	SELECT id FROM todo_kafka.add_task('alice', 'Buy milk', p_priority => 'low')");
$s->sql("SET todo_kafka.actor = 'assistant';
	SELECT 1 FROM todo_kafka.update_task('alice', '$id', p_title => 'Buy oat milk', p_priority => 'high')");
$s->sql("SELECT 1 FROM todo_kafka.complete_task('alice', '$id')");
$s->sql("SELECT todo_kafka.delete_task('alice', '$id')");
my $other = $s->sql("SELECT id FROM todo_kafka.add_task('bob', 'Walk dog')");

ok(wait_rows(5), 'five changes, five audit rows');
is($s->sql('SELECT count(*) FROM todo_kafka.audit_log'), 5, 'exactly five');

my @rows = map { [ split /\|/, $_, -1 ] } split /\n/, $s->sql(
	"SELECT operation, event_type, task_id, user_id, actor, db_role = current_user,
	        before->>'title', after->>'title', before->>'priority', after->>'priority',
	        array_to_string(changed_fields, ',')
	   FROM todo_kafka.audit_log WHERE user_id = 'alice' ORDER BY occurred_at, id");
is(scalar @rows, 4, 'four rows for alice');
is_deeply([ map { "$_->[0] $_->[1]" } @rows ],
	[ 'INSERT created', 'UPDATE updated', 'UPDATE completed', 'DELETE deleted' ],
	'operations and event types in order');
is($rows[0][2], $id, 'task id');
is_deeply([ @{ $rows[0] }[ 4, 5 ] ], [ 'assistant', 't' ], 'claimed actor and real database role');
is_deeply([ @{ $rows[0] }[ 6, 7 ] ], [ '', 'Buy milk' ], 'insert: no before, after has the title');
is_deeply([ @{ $rows[1] }[ 6 .. 10 ] ], [ 'Buy milk', 'Buy oat milk', 'low', 'high', 'title,priority,updated_at' ],
	'update: whole before and after images, changed fields');
is_deeply([ @{ $rows[3] }[ 6, 7 ] ], [ 'Buy oat milk', '' ], 'delete: before only');
is($s->sql("SELECT count(*) FROM todo_kafka.audit_log WHERE kafka_topic = '$t->{audit}'
	AND kafka_offset >= 0 AND recorded_at >= occurred_at AND txid IS NOT NULL
	AND correlation_id IS NOT NULL"), 5, 'origin, times, txid and correlation recorded');

# search, as the auditor role
$s->sql("CREATE ROLE inspector LOGIN; GRANT todo_kafka_auditor TO inspector;
   CREATE ROLE chatbot LOGIN; GRANT todo_kafka_app TO chatbot;");
my $as_inspector = sub {
	return $node->safe_psql('postgres', "SET ROLE inspector; $_[0]");
};
is($as_inspector->("SELECT count(*) FROM todo_kafka.search_audit(p_user_id => 'alice')"), 4,
	'search by user');
is($as_inspector->("SELECT string_agg(event_type, ',') FROM todo_kafka.search_audit(p_task_id => '$id', p_operation => 'update')"),
	'completed,updated', 'search by task and operation, newest first');
is($as_inspector->("SELECT count(*) FROM todo_kafka.search_audit(p_actor => 'assistant')"), 2,
	'search by actor');
is($as_inspector->("SELECT count(*) FROM todo_kafka.search_audit(p_from => now() - interval '1 hour', p_to => now() + interval '1 hour')"),
	5, 'search by time');
is($as_inspector->('SELECT ok FROM todo_kafka.verify_audit()'), 't', 'chain verifies');

# append-only: the application cannot change or remove its trail
my ($rc, $out, $err) = $node->psql('postgres',
	"SET ROLE chatbot; UPDATE todo_kafka.audit_log SET actor = 'nobody'");
like($err, qr/permission denied/, 'app role cannot UPDATE audit rows');
($rc, $out, $err) = $node->psql('postgres', "SET ROLE chatbot; DELETE FROM todo_kafka.audit_log");
like($err, qr/permission denied/, 'app role cannot DELETE audit rows');
($rc, $out, $err) = $node->psql('postgres', "UPDATE todo_kafka.audit_log SET actor = 'nobody'");
isnt($rc, 0, 'not even the owner can UPDATE through the triggers');
($rc, $out, $err) = $node->psql('postgres',
	"SET ROLE chatbot; SELECT todo_kafka.publish('audit', 'k', 'audit.created', '{}')");
like($err, qr/permission denied|audit/, 'app role cannot publish a forged audit event');

# redelivery adds nothing: a second group reads the whole topic again
my $again = TodoKafkaTest->start_service('audit', $node, $kafka, name => 'audit-replay',
	args => [ '--group-prefix', 'replay-' ]);
ok($again->wait_log(qr/assigned \S+/), 'second group assigned');
sleep(3);
is($s->sql('SELECT count(*) FROM todo_kafka.audit_log'), 5, 'replayed records are not appended twice');
like($again->log_text, qr/group replay-audit/, 'group named by prefix + service');
is($again->stop, 0, 'second group stops cleanly');

# tampering is detected: an edited row, then a deleted one (superuser, triggers off)
$s->sql("ALTER TABLE todo_kafka.audit_log DISABLE TRIGGER ALL;
   UPDATE todo_kafka.audit_log SET actor = 'mallory'
    WHERE id = (SELECT id FROM todo_kafka.audit_log WHERE user_id = 'alice' AND operation = 'UPDATE' ORDER BY id LIMIT 1);
   ALTER TABLE todo_kafka.audit_log ENABLE TRIGGER ALL;");
my $v = $s->sql('SELECT ok, problem IS NOT NULL, event_id FROM todo_kafka.verify_audit() WHERE NOT ok');
like($v, qr/^f\|t\|/, 'an edited row breaks the chain');
my $broken = (split /\|/, $v)[2];
is($s->sql("SELECT event_id FROM todo_kafka.audit_log WHERE actor = 'mallory'"), $broken,
	'verify_audit names the edited row');

is($audit->stop, 0, 'audit stops cleanly on SIGTERM');
like($audit->log_text, qr/offsets committed/, 'offsets committed at shutdown');
is($relay->stop, 0, 'relay stops cleanly');
$s->stop;
done_testing();
