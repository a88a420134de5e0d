# tests/111_schemas.pl: every message the relay emits validates against its
# JSON Schema (schemas/), checked by an independent validator.
#
# A workload from sessions in several time zones and interval styles (adds,
# updates with tags, due dates and reminder offsets, plain SQL on the table,
# completions, deletes, a recurring task, reminders that fire, a queued
# notification and a poison row) goes through the relay to the devbroker.
# kcat reads every topic to its end; Debian's python3-jsonschema
# (tests/lib/validate_schema.py) validates each message against the schema
# of its topic.  The contract points a schema cannot express are checked
# here: partitionkey is the Kafka key, dataschema names the topic's schema,
# the actor of a task API call is its user (plain SQL keeps the role), and
# a fired reminder carries the correlation id of the transaction that
# scheduled it.  Broken messages (no id, a time with an offset instead of
# "Z", interval text for an offset, ...) must fail validation.

use strict;
use warnings;

use JSON::PP;
use Test::More;
use TodoKafkaTest;
use DevBroker;

my $schemas = TodoKafkaTest::repo_root() . '/schemas';
my $base = 'https://todo-kafka.dev/schemas/';
# the stream of each topic -> its schema file (without .json)
my %schema_of = (
	task_events => 'task-events.v1',
	task_updates => 'task-updates.v1',
	audit => 'audit.v1',
	reminders => 'reminders.v1',
	notifications => 'notifications.v1',
	dead_letter => 'dead-letter.v1');

sub validate { return TodoKafkaTest::validate_schemas(@_); }

my $s = TodoKafkaTest->start_stack('t111', streams => ['big_events'],
	relay_args => [ '-X', 'message.max.bytes=20000' ]);
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};
my $role = $s->sql('SELECT session_user');

# each statement from a session of its own, in a time zone of its own
my $ny = "SET TimeZone = 'America/New_York'; SET IntervalStyle = 'sql_standard';";
my $kolkata = "SET TimeZone = 'Asia/Kolkata'; SET IntervalStyle = 'postgres_verbose';";

$s->sql($ny, "SELECT todo_kafka.set_user_time_zone('ana', 'Europe/Berlin')");
my $milk = $s->sql($ny,
	"SET todo_kafka.traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';",
	"SELECT id FROM todo_kafka.add_task('ana', 'Buy milk', 'two litres', 'low', '{home,shop}',",
	"  now() + interval '2 days', p_reminder_offsets => '{1 day, 15 minutes}',",
	"  p_notification_methods => '{email,in_app}')");
$s->sql($kolkata,
	"SELECT todo_kafka.update_task('ana', '$milk', p_title => 'Buy oat milk', p_priority => 'high',",
	"  p_tags => '{shop,urgent}', p_due_date => now() + interval '3 days 4 hours',",
	"  p_reminder_offsets => '{2 hours, 1 day 02:30:00}')");
$s->sql($ny, "UPDATE todo_kafka.tasks SET description = 'by plain SQL' WHERE id = '$milk'");
my $standup = $s->sql($ny, "SET todo_kafka.correlation_id = 'conv-remind';",
	"SELECT id FROM todo_kafka.add_task('ana', 'Stand-up', p_due_date => now() + interval '2 seconds',",
	"  p_reminder_offsets => '{1 second, 0}', p_notification_methods => '{push}')");
my $plants = $s->sql($kolkata,
	"SELECT id FROM todo_kafka.add_task('ana', 'Water plants', p_due_date => now() + interval '1 hour',",
	"  p_recurrence => 'daily', p_reminder_offsets => '{30 minutes}')");
$s->sql($kolkata, "SELECT todo_kafka.complete_task('ana', '$plants')");
$s->sql($ny, "SELECT todo_kafka.complete_task('ana', '$milk')");
$s->sql($ny, "SELECT todo_kafka.delete_task('ana', '$milk')");
my $short = $s->sql($ny, "SELECT id FROM todo_kafka.add_task('bo', 'Short-lived')");
$s->sql($ny, "SET todo_kafka.actor = 'chatbot';", "SELECT todo_kafka.delete_task('bo', '$short')");
# publish() refuses the notifications stream (todo-kafka-notify's own):
# the superuser queues one through the internal emit(), as publish would
$s->sql($ny,
	"SELECT todo_kafka.emit('custom', 'notifications', 'ana', 'notification.queued', NULL, jsonb_build_object(",
	"  'notification_id', 'n-1', 'user_id', 'ana', 'channel', 'in_app', 'kind', 'task.created',",
	"  'task_id', '$plants', 'title', 'Water plants', 'body', 'A new task'), 'publish')");
my $poison = $s->sql($ny,
	"SELECT todo_kafka.publish('big_events', 'big-key', 'custom.big', jsonb_build_object('blob', repeat('x', 50000)))");

# the stand-up reminders fire (sent) within seconds
$s->wait_sql("SELECT count(*) >= 2 FROM todo_kafka.reminders WHERE task_id = '$standup' AND status IN ('sent', 'missed')",
	't', 30);
is($s->sql("SELECT count(*) FROM todo_kafka.reminders WHERE task_id = '$standup' AND status = 'sent'"),
	2, 'the stand-up reminders fired');
ok(TodoKafkaTest::wait_outbox_published($node, 30), 'outbox drained');

# every topic, read to its end
my (%msgs, @items, @where);
for my $stream (sort keys %schema_of)
{
	my $n = $kafka->end_offsets($t->{$stream});
	$msgs{$stream} = $s->events($stream, count => $n, timeout => 30);
	is(scalar @{ $msgs{$stream} }, $n, "$stream: read all $n messages");
	cmp_ok($n, '>', 0, "$stream: has messages");
	for my $m (@{ $msgs{$stream} })
	{
		push @items, [ $schema_of{$stream}, $m->{payload} ];
		push @where, "$stream: $m->{payload}";
	}
}
my %count = map { $_ => scalar @{ $msgs{$_} } } keys %msgs;
note(join(', ', map { "$_ $count{$_}" } sort keys %count));

# the independent validator
my @res = validate(@items);
my @bad = grep { $res[$_] ne 'ok' } 0 .. $#res;
is(scalar @bad, 0, 'every message (' . scalar(@items) . ') validates against its schema');
diag("$res[$_]\n  in $where[$_]") for @bad[ 0 .. ($#bad > 9 ? 9 : $#bad) ];

# what a schema cannot say
my @all = map { [ $_, $_->{event} ] } map { @{ $msgs{$_} } } keys %msgs;
is(scalar(grep { !defined $_->[1]{partitionkey} || !defined $_->[0]{key}
			  || $_->[1]{partitionkey} ne $_->[0]{key} } @all),
	0, 'partitionkey equals the Kafka key in every message');
for my $stream (sort keys %schema_of)
{
	is(scalar(grep { ($_->{event}{dataschema} // '') ne "$base$schema_of{$stream}.json" } @{ $msgs{$stream} }),
		0, "$stream: dataschema names $schema_of{$stream}.json");
}
ok(-f "$schemas/$_.json", "schemas/$_.json exists") for sort values %schema_of;

my @milk = grep { $_->{key} eq $milk } @{ $msgs{task_events} };
is_deeply([ map { $_->{event}{type} } @milk ],
	[ 'task.created', 'task.updated', 'task.updated', 'task.completed', 'task.deleted' ],
	'the milk task: created, updated (API), updated (plain SQL), completed, deleted');
is_deeply([ map { $_->{event}{actor} } @milk ], [ 'ana', 'ana', $role, 'ana', 'ana' ],
	'actor: the API user for task API calls, the role for plain SQL');
my ($gone) = grep { $_->{key} eq $short && $_->{event}{type} eq 'task.deleted' } @{ $msgs{task_events} };
is($gone && $gone->{event}{actor}, 'chatbot', 'todo_kafka.actor still wins over the API user');
my ($created) = @milk;
like($created->{event}{data}{task_data}{created_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/,
	'task_data.created_at in UTC with Z from a New York session');
is_deeply($created->{event}{data}{task_data}{reminder_offsets}, [ 'P1D', 'PT15M' ],
	'reminder offsets as ISO 8601 durations');
my ($due) = grep { $_->{key} eq $milk && $_->{event}{data}{field_changed} eq 'due_date' }
  @{ $msgs{task_updates} };
like($due && $due->{event}{data}{new_value}, qr/Z$/, 'due-date update value in UTC');
my ($offsets) = grep { $_->{key} eq $milk && $_->{event}{data}{field_changed} eq 'reminder_offsets' }
  @{ $msgs{task_updates} };
is_deeply($offsets && $offsets->{event}{data}{new_value}, [ 'PT2H', 'P1DT2H30M' ],
	'reminder offsets update value as durations, from a postgres_verbose session');
my ($audit_upd) = grep { $_->{key} eq $milk && $_->{event}{type} eq 'audit.updated' } @{ $msgs{audit} };
like($audit_upd && $audit_upd->{payload}, qr/"actor":"ana","db_role":"\Q$role\E"/,
	'audit: actor is the API user, db_role (right after it) the role');

my @fired = grep { $_->{key} eq $standup && $_->{event}{type} eq 'task.reminder' } @{ $msgs{reminders} };
is(scalar @fired, 2, 'two fired stand-up reminders');
is(scalar(grep { $_->{event}{correlationid} eq 'conv-remind' && $_->{event}{data}{correlation_id} eq 'conv-remind'
			  && $_->{hdr}{'correlation-id'} eq 'conv-remind' } @fired),
	2, 'a fired reminder carries the correlation id of the transaction that scheduled it');

my ($dl) = @{ $msgs{dead_letter} };
is($dl && $dl->{event}{data}{event_id}, $poison, 'the poison row is the dead letter');
is($dl && $dl->{event}{data}{origin}, 'outbox_row', 'the relay\'s dead letter: origin outbox_row');

# the built-in streams: one list (common/messages/streams.h), which the
# install's seeded topics and this test's schema map must match
my $streams_h = TodoKafkaTest::slurp(TodoKafkaTest::repo_root() . '/common/messages/streams.h');
my %macro = $streams_h =~ /^#define (TK_STREAM_\w+)\s+"([a-z_]+)"/mg;
my %listed;
while ($streams_h =~ /X\((TK_STREAM_\w+), "([^"]+)"\)/g)
{
	my ($name, $file) = ($1, $2);
	$listed{ $macro{$name} // "?$name" } = $file =~ s/\.json$//r;
}
is_deeply(\%listed, \%schema_of, 'streams.h lists the built-in streams and their schemas');
is($s->sql("SELECT string_agg(stream, ',' ORDER BY stream) FROM todo_kafka.topics WHERE stream <> 'big_events'"),
	join(',', sort keys %listed), 'the install seeds exactly the streams of streams.h');

# a consumer service's dead letter (common/messages/dead_letter.c's envelope; the
# runtime's own tests make real ones) also fits, with either payload form
my %consumer_dl = (
	specversion => '1.0', id => 't111.audit/0/17:dead-letter',
	source => '/todo_kafka/consumers', type => 'todo_kafka.dead_letter',
	dataschema => "${base}dead-letter.v1.json", time => '2030-01-02T08:00:00.000000Z',
	subject => $milk, partitionkey => $milk, datacontenttype => 'application/json',
	data => {
		origin_topic => 't111.audit', origin_partition => 0, origin_offset => 17, key => $milk,
		event_id => undef, event_type => undef, error => 'INVALID_INPUT', reason => 'not JSON',
		attempts => 1, consumer_group => 'todo-chatbot-audit',
		failed_at => '2030-01-02T08:00:00.000000Z', payload => 'garbage' });
# written before data.origin was added (optional in v1)
my $consumer_dl_old = encode_json(\%consumer_dl);
$consumer_dl{data}{origin} = 'consumed_message';
my $consumer_dl = encode_json(\%consumer_dl);
$consumer_dl{data}{origin} = 'outbox_row';
my $consumer_dl_bad_origin = encode_json(\%consumer_dl);
$consumer_dl{data}{origin} = 'consumed_message';
delete $consumer_dl{data}{payload};
$consumer_dl{data}{payload_base64} = '/wA=';
# the original headers, kept since they were added to v1 (optional)
$consumer_dl{data}{headers} = [ { name => 'correlation-id', value => 'c1' },
	{ name => 'raw', value_base64 => '/wA=' }, { name => 'empty', value => undef } ];
my $consumer_dl_b64 = encode_json(\%consumer_dl);
$consumer_dl{data}{headers} = [ { name => 'no value' } ];
my $consumer_dl_bad_header = encode_json(\%consumer_dl);

# deliberately broken messages must fail
my $json = JSON::PP->new->canonical;
my $good = $json->decode($created->{payload});
my $reminder = $json->decode($fired[0]{payload});
my @broken = (
	[ 'no id', 'task-events.v1', sub { delete $_[0]{id} } ],
	[ 'time with an offset instead of Z', 'task-events.v1',
		sub { $_[0]{time} = '2030-01-02T03:00:00.000000-05:00' } ],
	[ 'time without fixed fraction digits', 'task-events.v1',
		sub { $_[0]{time} = '2030-01-02T08:00:00.5Z' } ],
	[ 'task_data.due_date in +00:00 form', 'task-events.v1',
		sub { $_[0]{data}{task_data}{due_date} = '2030-01-02T08:00:00+00:00' } ],
	[ 'reminder offset as interval text', 'task-events.v1',
		sub { $_[0]{data}{task_data}{reminder_offsets} = ['00:15:00'] } ],
	[ 'no partitionkey', 'task-events.v1', sub { delete $_[0]{partitionkey} } ],
	[ 'another topic\'s dataschema', 'task-events.v1', sub { $_[0]{dataschema} = "${base}audit.v1.json" } ],
	[ 'unknown event type', 'task-events.v1', sub { $_[0]{data}{event_type} = 'renamed' } ],
	[ 'reminder scheduled_time with an offset', 'reminders.v1',
		sub { $_[0]{data}{scheduled_time} = '2030-01-02T09:00:00.000000+01:00' } ],
	[ 'fired reminder typed reminder.sent', 'reminders.v1', sub { $_[0]{type} = 'reminder.sent' } ],
);
my @checks = ([ 'task-events.v1', $json->encode($good) ], [ 'reminders.v1', $json->encode($reminder) ],
	[ 'dead-letter.v1', $consumer_dl ], [ 'dead-letter.v1', $consumer_dl_b64 ],
	[ 'dead-letter.v1', $consumer_dl_bad_header ], [ 'dead-letter.v1', $consumer_dl_old ],
	[ 'dead-letter.v1', $consumer_dl_bad_origin ]);
for my $b (@broken)
{
	my $v = $json->decode($json->encode($b->[1] eq 'reminders.v1' ? $reminder : $good));
	$b->[2]->($v);
	push @checks, [ $b->[1], $json->encode($v) ];
}
my @r = validate(@checks);
is($r[0], 'ok', 'a real task event, re-encoded, is valid');
is($r[1], 'ok', 'a real fired reminder, re-encoded, is valid');
is($r[2], 'ok', 'a consumer service\'s dead letter is valid');
is($r[3], 'ok', 'a consumer service\'s dead letter with a base64 payload and headers is valid');
like($r[4], qr/^invalid: /, 'broken: a dead letter\'s header without a value fails validation');
is($r[5], 'ok', 'a consumer service\'s dead letter written before data.origin is still valid');
like($r[6], qr/^invalid: /, 'broken: a consumed message\'s dead letter claiming origin outbox_row fails validation');
for my $i (0 .. $#broken)
{
	like($r[ $i + 7 ], qr/^invalid: /, "broken: $broken[$i][0] fails validation");
	note($r[ $i + 7 ]);
}

is($relay->stop, 0, 'relay stops cleanly');
$s->stop;
done_testing();
