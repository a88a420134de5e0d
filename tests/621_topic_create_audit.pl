# tests/621_topic_create_audit.pl: the relay's topic creations audited
# (issue 18, part 6).
#
# A mapped topic is missing from the cluster: the leading relay, logged in
# as a member of todo_kafka_relay only, asks Kafka to create it at
# start-up and records the attempt through its narrow function
# relay_record_topic_create(): one todo_kafka.admin_operations row (who =
# the relay's login, what = topic, partitions, replication factor,
# configs, instance) and one admin.topic_create entry on todo.audit.log
# that validates against schemas/audit.v1.json and joins the audit chain.
# The devbroker (librdkafka's mock cluster) does not create topics, so the
# outcome is "failed" with the cluster's error, as the relay logged it.
# A standby relay records nothing; a relay start where nothing is missing
# records nothing.

use strict;
use warnings;

use Test::More;
use TodoKafkaTest;

my $s = TodoKafkaTest->start_stack('t621', relay => 0, setup_sql => q{
	CREATE ROLE relay_login LOGIN IN ROLE todo_kafka_relay;
	INSERT INTO todo_kafka.topics (stream, topic, partitions, replication_factor, retention_ms)
	VALUES ('extra', 't621.missing', 2, 1, 3600000);
});
my ($node, $t, $kafka) = @$s{qw(node topics kafka)};
my $as_relay = $node->connstr('postgres') . ' user=relay_login';
my $audit = TodoKafkaTest->start_service('audit', $node, $kafka);
ok($audit->wait_log(qr/assigned \S+/), 'audit assigned');

my $leader = TodoKafkaTest->start_relay($node, $kafka, name => 'leader', connstr => $as_relay);
ok($leader->wait_log(qr/acquired leadership/), 'the relay leads as a todo_kafka_relay member');
ok($leader->wait_log(qr/creating topic "t621\.missing" \(2 partitions, replication factor 1, retention\.ms 3600000\)/),
	'it asks to create the missing topic');
ok($leader->wait_log(qr/cannot create topics \(([^)]+)\)|could not create topic "t621\.missing": (.+); going on/),
	'the devbroker refuses') or diag($leader->log_text);
my ($why) = $leader->log_text =~ /cannot create topics \(([^)]+)\)|could not create topic "t621\.missing": (.+); going on/;
ok(wait_until('the admin record', sub {
	$s->sql('SELECT count(*) FROM todo_kafka.admin_operations') >= 1 }, 30, 0.2),
	'the attempt is recorded') or diag($leader->log_text);

# a standby relay (the same login) waits and records nothing
my $standby = TodoKafkaTest->start_relay($node, $kafka, name => 'standby', connstr => $as_relay);
ok($standby->wait_log(qr/waiting as standby/), 'a second relay is the standby');

is($s->sql(q{SELECT string_agg(operation || ' ' || target || ' ' || outcome || ' ' || performed_by, ',')
	FROM todo_kafka.admin_operations}),
	'topic_create t621.missing failed relay_login', 'one record: topic_create, failed, by the relay login');
is($s->sql(q{SELECT detail->>'error' FROM todo_kafka.admin_operations}), $why,
	"with the cluster's error, as logged: $why");
is($s->sql(q{SELECT concat_ws(' ', detail->>'partitions', detail->>'replication_factor',
		detail->'configs'->>'retention.ms', detail->>'instance' ~ '^[^/]+/[0-9]+$')
	FROM todo_kafka.admin_operations}), '2 1 3600000 t',
	'what was asked: partitions, replication factor, configs, the instance (host/pid)');
unlike($leader->log_text . $standby->log_text, qr/permission denied|could not record/, 'no permission errors');

# on the audit topic: admin.topic_create, valid audit.v1, in the chain
my $msgs = $s->events('audit', count => $kafka->end_offsets($t->{audit}), timeout => 30);
my @admin = grep { ($_->{event}{type} // '') eq 'admin.topic_create' } @$msgs;
is(scalar @admin, 1, 'one admin.topic_create message on the audit topic');
is($admin[0]{event}{data}{after}{outcome}, 'failed', 'its outcome is failed');
my @res = TodoKafkaTest::validate_schemas(map { [ 'audit.v1', $_->{payload} ] } @$msgs);
is_deeply([ grep { $_ ne 'ok' } @res ], [], 'every audit message validates against audit.v1');
ok(wait_until('the entry in the audit chain', sub {
	$s->sql(q{SELECT count(*) FROM todo_kafka.audit_log a JOIN todo_kafka.admin_operations o
		USING (event_id) WHERE a.event_type = 'admin.topic_create'}) == 1 }, 60, 0.2),
	'the audit service appended it to the chain') or diag($audit->log_text);
is($s->sql('SELECT ok FROM todo_kafka.verify_audit()'), 't', 'the chain verifies');

# the topic now exists: a relay start records nothing
is($standby->stop, 0, 'standby stops');
is($leader->stop, 0, 'leader stops');
# (the mock cluster has already made it, as it makes any topic a producer
# asks metadata for, once the relay had its handle: then "already exists")
like($kafka->command('topic t621.missing 2'), qr/^topic t621\.missing|already exists/, 'the topic exists');
my $again = TodoKafkaTest->start_relay($node, $kafka, name => 'again', connstr => $as_relay);
ok($again->wait_log(qr/acquired leadership/), 'a new relay leads');
$s->sql("SELECT todo_kafka.add_task('bob', 'after the restart')");
ok(TodoKafkaTest::wait_outbox_published($node, 30), 'and publishes');
unlike($again->log_text, qr/creating topic/, 'nothing to create');
is($s->sql('SELECT count(*) FROM todo_kafka.admin_operations'), 1, 'no new record');

is($again->stop, 0, 'relay stops');
is($audit->stop, 0, 'audit stops');
$kafka->stop;
$node->stop;
done_testing();
