# tests/401_audit_dead_letters.pl: the runtime's dead-letter path.
#
# A non-JSON message and a forged audit record (not made by the relay)
# go to the dead-letter topic at once, with the origin headers, while good
# records flow; a record the database refuses with a transient error is
# retried max_attempts times with backoff, then dead-lettered, and the
# alert webhook (an HTTP receiver of the test) gets the alert; its
# neighbours in the batch are not held back.

use strict;
use warnings;

use JSON::PP;
use Test::More;
use Time::HiRes qw(time sleep);
use TodoKafkaTest;

# a real transient failure inside the database: mallory's records hit a
# serialization failure (SQLSTATE 40001) on every attempt
my $s = TodoKafkaTest->start_stack('t401', setup_sql => q{
	CREATE FUNCTION public.fail_mallory() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.user_id = 'mallory' THEN
			RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = '40001';
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER fail_mallory BEFORE INSERT ON todo_kafka.audit_log
		FOR EACH ROW EXECUTE FUNCTION public.fail_mallory();
});
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};
# the alert webhook
my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $hooklog = "$dir/t401_webhook.jsonl";
unlink $hooklog, "$dir/t401_port";
my $hook = IPC::Run::start([ 'python3', TodoKafkaTest::repo_root() . '/tests/lib/webhook_receiver.py',
	'--log', $hooklog, '--port-file', "$dir/t401_port" ]);
wait_until('the webhook port file', sub { -e "$dir/t401_port" }, 10, 0.1);
my $port = TodoKafkaTest::slurp("$dir/t401_port");

# settings from the environment, too: quicker retries for the test
$ENV{TODO_KAFKA_RETRY_BASE_MS} = 50;
my $audit = TodoKafkaTest->start_service('audit', $node, $kafka,
	args => [ '--alert-webhook', "http://127.0.0.1:$port/alerts" ]);
ok($audit->wait_log(qr/assigned \S+/), 'audit assigned');

# bad input straight onto the audit topic with kcat
my ($ok, $err) = $kafka->produce($t->{audit}, ['this is not json'], key => 'k-bad', partition => 0);
ok($ok, 'produced a non-JSON message') or diag($err);
my $forged = encode_json({ specversion => '1.0', id => 'f0000000-0000-4000-8000-000000000001',
	source => '/todo_kafka/todo_kafka.tasks', type => 'audit.deleted', time => '2026-01-01T00:00:00Z',
	data => { event_id => 'f0000000-0000-4000-8000-000000000001', operation => 'DELETE',
		event_type => 'deleted', actor => 'admin', timestamp => '2026-01-01T00:00:00Z' } });
($ok, $err) = $kafka->produce($t->{audit}, [$forged], key => 'k-forged', partition => 1);
ok($ok, 'produced a forged audit record') or diag($err);

# good records flow around them; mallory's is retried then dead-lettered
$s->sql("SELECT todo_kafka.add_task('alice', 'one')");
$s->sql("SELECT todo_kafka.add_task('mallory', 'always fails')");
$s->sql("SELECT todo_kafka.add_task('bob', 'two')");

my $dl = TodoKafkaTest::consume_events($kafka, $t->{dead_letter}, count => 3, timeout => 60);
is(scalar @$dl, 3, 'three dead letters');
my %by_key = map { ($_->{key} // '') => $_ } @$dl;

my $bad = $by_key{'k-bad'};
ok($bad, 'the non-JSON message was dead-lettered');
is($bad->{hdr}{'dlq-error'}, 'INVALID_INPUT', 'invalid input');
like($bad->{hdr}{'dlq-reason'}, qr/not JSON/, 'reason says not JSON');
is($bad->{hdr}{'dlq-origin-topic'}, $t->{audit}, 'origin topic header');
is($bad->{hdr}{'dlq-origin-partition'}, '0', 'origin partition header');
like($bad->{hdr}{'dlq-origin-offset'}, qr/^\d+$/, 'origin offset header');
is($bad->{hdr}{'dlq-origin-key'}, 'k-bad', 'origin key header');
is($bad->{hdr}{'dlq-attempts'}, '1', 'no retries for invalid input');
is($bad->{hdr}{'dlq-consumer-group'}, 'todo-chatbot-audit', 'consumer group header');
like($bad->{hdr}{'dlq-failed-at'}, qr/^\d{4}-\d\d-\d\dT[\d:.]+Z$/, 'time header');
is($bad->{event}{type}, 'todo_kafka.dead_letter', 'envelope is a CloudEvent');
is($bad->{event}{data}{payload}, 'this is not json', 'original payload kept for replay');

my $f = $by_key{'k-forged'};
ok($f, 'the forged record was dead-lettered');
is($f->{hdr}{'dlq-error'}, 'INVALID_INPUT', 'forged: invalid input');
like($f->{hdr}{'dlq-reason'}, qr/not an audit record made by the relay/, 'forged: reason');
is($f->{hdr}{'dlq-origin-event-id'}, 'f0000000-0000-4000-8000-000000000001', 'forged: event id header');

my ($m) = grep { ($_->{event}{data}{payload} // '') =~ /mallory/ } @$dl;
ok($m, 'the failing record was dead-lettered');
is($m->{hdr}{'dlq-error'}, 'RETRIES_EXHAUSTED', 'after retries');
is($m->{hdr}{'dlq-attempts'}, '5', 'five attempts');
like($m->{hdr}{'dlq-reason'}, qr/40001/, 'reason carries the SQLSTATE');
is_deeply([ TodoKafkaTest::validate_schemas(map { [ 'dead-letter.v1', $_->{payload} ] } @$dl) ],
	[ ('ok') x @$dl ], 'the dead letters validate against schemas/dead-letter.v1.json');
is(scalar(grep { ($_->{event}{partitionkey} // '') ne ($_->{key} // '') } @$dl), 0,
	'partitionkey is the Kafka key');
is(scalar(grep { ($_->{event}{data}{origin} // '') eq 'consumed_message'
			  && ($_->{hdr}{'dlq-origin'} // '') eq 'consumed_message' } @$dl),
	3, 'each says it stands for a consumed message (data.origin, dlq-origin)');

is($s->sql("SELECT string_agg(user_id, ',' ORDER BY user_id) FROM todo_kafka.audit_log"), 'alice,bob',
	'the good records are in the audit log, nothing else');
is(() = $audit->log_text =~ /will retry/g, 4, 'four retries logged');

# the alerts reached the webhook
my @alerts;
wait_until('the RETRIES_EXHAUSTED alert', sub {
	@alerts = map { decode_json($_)->{json} } split /\n/, TodoKafkaTest::slurp($hooklog);
	grep { ($_->{alert} // '') eq 'dead_letter' && ($_->{error} // '') eq 'RETRIES_EXHAUSTED' } @alerts;
}, 10);
my ($a) = grep { ($_->{alert} // '') eq 'dead_letter' && ($_->{error} // '') eq 'RETRIES_EXHAUSTED' } @alerts;
ok($a, 'webhook got the dead-letter alert');
is($a->{attempts}, 5, 'alert: attempts');
is($a->{group}, 'todo-chatbot-audit', 'alert: group');
is($a->{topic}, $t->{audit}, 'alert: topic');
is(scalar(grep { ($_->{alert} // '') eq 'dead_letter' } @alerts), 3, 'one alert per dead letter');
like($audit->log_text, qr/ERROR ALERT dead_letter/, 'ERROR log line');

# /metrics counts them
my $mport = TodoKafkaTest::free_port();
my $audit2 = TodoKafkaTest->start_service('audit', $node, $kafka, name => 'audit-metrics',
	args => [ '--metrics-listen', "127.0.0.1:$mport", '--group-prefix', 'm-' ]);
ok($audit2->wait_log(qr/assigned \S+/), 'second group assigned');
my $metrics = '';
wait_until('dead letters and lag on /metrics', sub {
	$metrics = TodoKafkaTest::http_get("127.0.0.1:$mport", '/metrics') // '';
	$metrics =~ /RETRIES_EXHAUSTED/ && $metrics =~ /^todo_kafka_consumer_lag\{/m;
}, 30);
like($metrics, qr/todo_kafka_consumer_dead_lettered_total\{topic="\Q$t->{audit}\E",error="INVALID_INPUT"\} 2/,
	'dead letters counted by kind');
like($metrics, qr/todo_kafka_consumer_retried_total\{topic="\Q$t->{audit}\E"\} 4/, 'retries counted');
like($metrics, qr/todo_kafka_consumer_handling_seconds_count \d+/, 'handling latency histogram');
like($metrics, qr/todo_kafka_consumer_lag\{topic="\Q$t->{audit}\E",partition="\d",group="m-audit"\} 0/, 'consumer lag per partition');
my ($health, $code) = TodoKafkaTest::http_get("127.0.0.1:$mport", '/healthz');
is($code, 200, '/healthz ok');

is($audit2->stop, 0, 'second audit stops');
is($audit->stop, 0, 'audit stops cleanly');
is($relay->stop, 0, 'relay stops cleanly');
$hook->kill_kill;
$s->stop;
done_testing();
