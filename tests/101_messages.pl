# tests/101_messages.pl: exact message content per topic.
#
# created, updated (priority, tags, title), completed, deleted and a custom
# publish() event (on a custom stream: publish() refuses the built-in ones)
# go through the relay; kcat reads every topic and each CloudEvents
# envelope, data object, key and header is checked, and each message is
# validated against the schema it names (dataschema).  Also: the
# outbox is emptied, /metrics and /healthz answer, SIGTERM exits 0.

use strict;
use warnings;

use Test::More;
use TodoKafkaTest;
use DevBroker;

my $s = TodoKafkaTest->start_stack('t101', streams => ['billing'], metrics => 1);
my ($node, $t, $kafka, $relay, $port) = @$s{qw(node topics kafka relay port)};

my $task = $node->safe_psql('postgres',
	"SET todo_kafka.correlation_id = 'corr-1'; SET todo_kafka.traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';"
	  . "SELECT id FROM todo_kafka.add_task('alice', 'Buy milk', 'two litres', 'low', '{home,shop}')");
$node->safe_psql('postgres',
	"SELECT todo_kafka.update_task('alice', '$task', p_title => 'Buy oat milk', p_priority => 'high', p_tags => '{shop,urgent}')");
$node->safe_psql('postgres', "SELECT todo_kafka.complete_task('alice', '$task')");
$node->safe_psql('postgres', "SELECT todo_kafka.delete_task('alice', '$task')");
$node->safe_psql('postgres',
	qq{SELECT todo_kafka.publish('billing', 'k1', 'custom.thing', '{"a": 1}', '{"x-tenant": "acme"}')});

ok(TodoKafkaTest::wait_outbox_published($node), 'outbox emptied after acks');

my $rows = $node->safe_psql('postgres', 'SELECT 1');    # keep connection warm
my $ev = $s->events('task_events', count => 4, timeout => 30);
is(scalar @$ev, 4, 'four task events');
my $custom = $s->events('billing', count => 1, timeout => 30);
is(scalar @$custom, 1, 'the custom event on its own topic');
my %by_type = map { $_->{event}{type} => $_ } @$ev, @$custom;
is_deeply([ sort keys %by_type ],
	[ 'custom.thing', 'task.completed', 'task.created', 'task.deleted', 'task.updated' ],
	'task event types');

my $c = $by_type{'task.created'};
is($c->{key}, $task, 'key is the task id');
my $e = $c->{event};
is($e->{specversion}, '1.0', 'specversion');
is($e->{source}, '/todo_kafka/todo_kafka.tasks', 'source');
is($e->{subject}, $task, 'subject is the task id');
is($e->{partitionkey}, $c->{key}, 'partitionkey is the Kafka key');
is($e->{dataschema}, 'https://todo-kafka.dev/schemas/task-events.v1.json', 'dataschema names the schema');
is($e->{datacontenttype}, 'application/json', 'datacontenttype');
is($e->{correlationid}, 'corr-1', 'correlationid from the GUC');
is($e->{userid}, 'alice', 'userid');
is($e->{traceparent}, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'traceparent');
like($e->{time}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'time is RFC 3339 UTC');
like($e->{id}, qr/^[0-9a-f-]{36}$/, 'id is the event uuid');
is($e->{data}{event_type}, 'created', 'data.event_type');
is($e->{data}{task_id}, $task, 'data.task_id');
is($e->{data}{user_id}, 'alice', 'data.user_id');
is($e->{data}{task_data}{title}, 'Buy milk', 'data.task_data.title');
is_deeply($e->{data}{task_data}{tags}, [ 'home', 'shop' ], 'data.task_data.tags');
is($e->{data}{timestamp}, $e->{time}, 'data.timestamp = time');
is($e->{data}{correlation_id}, 'corr-1', 'data.correlation_id');
is($c->{hdr}{'content-type'}, 'application/cloudevents+json', 'content-type header');
is($c->{hdr}{'event-id'}, $e->{id}, 'event-id header');
is($c->{hdr}{'event-type'}, 'task.created', 'event-type header');
is($c->{hdr}{'correlation-id'}, 'corr-1', 'correlation-id header');
is($c->{hdr}{traceparent}, $e->{traceparent}, 'traceparent header');
ok(!exists $by_type{'task.updated'}{event}{traceparent}, 'no traceparent when unset');

is($by_type{'task.updated'}{event}{data}{task_data}{title}, 'Buy oat milk', 'updated carries the new image');
is($by_type{'task.completed'}{event}{data}{task_data}{completed}, JSON::PP::true, 'completed');
is($by_type{'task.deleted'}{event}{data}{task_data}{title}, 'Buy oat milk', 'deleted carries the old image');

my $cu = $by_type{'custom.thing'};
is($cu->{key}, 'k1', 'custom key');
is_deeply($cu->{event}{data}, { a => 1 }, 'custom data as published');
is($cu->{event}{source}, '/todo_kafka/publish', 'custom source');
is($cu->{hdr}{'x-tenant'}, 'acme', 'custom header passed through');
is($cu->{event}{partitionkey}, 'k1', 'custom partitionkey is the key');
ok(!exists $cu->{event}{dataschema}, 'no dataschema on a custom stream');

# per-task order on the task topic
my @order = map { $_->{event}{type} } grep { ($_->{key} // '') eq $task } @$ev;
is_deeply(\@order, [ 'task.created', 'task.updated', 'task.completed', 'task.deleted' ],
	'task events in commit order');

# audit
my $au = $s->events('audit', count => 4, timeout => 30);
is(scalar @$au, 4, 'four audit records (custom events are not audited)');
my %au = map { $_->{event}{data}{event_type} => $_ } @$au;
my $ua = $au{updated}{event};
is($ua->{type}, 'audit.updated', 'audit type');
is($ua->{dataschema}, 'https://todo-kafka.dev/schemas/audit.v1.json', 'audit dataschema');
is($ua->{partitionkey}, $au{updated}{key}, 'audit partitionkey is the Kafka key');
is($ua->{id}, $by_type{'task.updated'}{event}{id} . ':audit', 'audit id = event id + :audit');
is($ua->{data}{operation}, 'UPDATE', 'operation');
is($ua->{data}{table}, 'todo_kafka.tasks', 'table');
is($ua->{data}{before}{priority}, 'low', 'before image');
# the outbox keeps only changed columns in an UPDATE's before image; the
# audit record carries the whole old row
is_deeply([ sort keys %{ $ua->{data}{before} } ], [ sort keys %{ $ua->{data}{after} } ],
	'audit before image has every column');
is($ua->{data}{before}{description}, $ua->{data}{after}{description},
	'unchanged columns of the before image come from the row');
is($ua->{data}{before}{created_at}, $au{created}{event}{data}{after}{created_at},
	'before image equals the created row where unchanged');
is($ua->{data}{after}{priority}, 'high', 'after image');
is_deeply([ sort @{ $ua->{data}{changed_fields} } ],
	[ sort qw(title priority tags updated_at) ], 'changed_fields');
like($ua->{data}{txid}, qr/^\d+$/, 'txid');
ok(length $ua->{data}{actor}, 'actor');
my $login = $node->safe_psql('postgres', 'SELECT session_user');
is($ua->{data}{db_role}, $login, 'db_role is the role that made the change (session_user)');
like($au{updated}{payload}, qr/"actor":"[^"]*","db_role":/, 'db_role right after actor in the audit data');
is($au{deleted}{event}{data}{db_role}, $login, 'db_role on every audit record');
is($au{created}{event}{data}{operation}, 'INSERT', 'INSERT operation');
is($au{deleted}{event}{data}{operation}, 'DELETE', 'DELETE operation');
is($au{deleted}{event}{data}{after}, undef, 'delete has no after image');

# task_updates: title, priority, tags (+urgent, -home), completed
my $up = $s->events('task_updates', count => 5, timeout => 30);
is(scalar @$up, 5, 'five task_updates messages');
my @u = sort { $a->{event}{id} cmp $b->{event}{id} } @$up;
my $uid = $by_type{'task.updated'}{event}{id};
my %ut = map { $_->{event}{id} => $_->{event} } @u;
my @mine = map { $ut{"$uid:update:$_"} } 0 .. 3;
ok(!grep({ !defined } @mine), 'update ids are <event_id>:update:0..3');
my %f = map { ($_->{data}{event_type} . ':' . ($_->{data}{new_value} // $_->{data}{previous_value})) => $_ } @mine;
ok($f{'field_updated:Buy oat milk'}, 'title -> field_updated');
is($f{'field_updated:Buy oat milk'}{data}{previous_value}, 'Buy milk', 'previous title');
ok($f{'priority_changed:high'}, 'priority -> priority_changed');
is($f{'priority_changed:high'}{data}{previous_value}, 'low', 'previous priority');
ok($f{'tag_added:urgent'}, 'tag_added urgent');
is($f{'tag_added:urgent'}{data}{previous_value}, undef, 'tag_added has no previous value');
ok($f{'tag_removed:home'}, 'tag_removed home');
is($f{'tag_removed:home'}{data}{field_changed}, 'tags', 'tag field_changed = tags');
is($f{'tag_removed:home'}{type}, 'task.tag_removed', 'tag_removed type');
is($f{'tag_removed:home'}{dataschema}, 'https://todo-kafka.dev/schemas/task-updates.v1.json',
	'task_updates dataschema');
my ($st) = grep { $_->{data}{event_type} eq 'status_changed' } values %ut;
ok($st, 'completed -> status_changed');
is($st->{data}{previous_value}, JSON::PP::false, 'status previous false');
is($st->{data}{new_value}, JSON::PP::true, 'status new true');
ok(!grep({ $_->{data}{field_changed} eq 'updated_at' } values %ut), 'updated_at is skipped');

# every message of a built-in stream, checked by the independent validator
# against the schema its dataschema names (schemas/, tests/lib/validate_schema.py)
my @items = map { my $m = $_; [ ($m->{event}{dataschema} // 'none') =~ s{^.*/|\.json$}{}gr, $m->{payload} ] }
  @$ev, @$au, @$up;
is_deeply([ TodoKafkaTest::validate_schemas(@items) ], [ ('ok') x @items ],
	'every task event, audit record and task update validates against the schema it names');

# metrics and health
my $metrics = TodoKafkaTest::http_get("127.0.0.1:$port", '/metrics');
like($metrics, qr/^todo_kafka_relay_messages_published_total\{topic="\Q$t->{task_events}\E"\} 4$/m,
	'metrics count task events');
like($metrics, qr/^todo_kafka_relay_leader 1$/m, 'metrics: leader');
like($metrics, qr/^todo_kafka_relay_publish_latency_seconds_count 14$/m, 'latency histogram counts messages');
# its two stages count the same messages and add up to it
my %hist_sum = $metrics =~ /^todo_kafka_relay_(\w+)_seconds_sum (\S+)$/mg;
like($metrics, qr/^todo_kafka_relay_${_}_seconds_count 14$/m, "$_ histogram counts messages")
	for qw(read_delay ack_delay);
ok($hist_sum{read_delay} > 0 && $hist_sum{ack_delay} > 0, 'both latency stages measured');
cmp_ok(abs($hist_sum{read_delay} + $hist_sum{ack_delay} - $hist_sum{publish_latency}), '<', 0.001,
	'read delay + ack delay = publish latency');
my ($health, $code) = TodoKafkaTest::http_get("127.0.0.1:$port", '/healthz');
is($code, 200, 'healthz 200');
like($health, qr/^ok leader/, 'healthz ok');

is($relay->stop, 0, 'SIGTERM: exit 0');
like($relay->log_text, qr/relay stopped/, 'clean shutdown logged');
unlike($relay->log_text, qr/ERROR/, 'no errors logged');

$s->stop;
done_testing();
