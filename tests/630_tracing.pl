# tests/630_tracing.pl: one trace from the application's SQL call to the
# email, as an OTLP receiver decodes it with the OpenTelemetry project's own
# definitions (tests/otlp/receiver.js, OtlpReceiver.pm).
#
# The relay, todo-kafka-audit and todo-kafka-notify (its fanout, email and
# realtime stages as separate processes, so the fan-out is a batch) export
# spans to the receiver (--otlp-endpoint); todo-kafka-project runs without it.  The
# application sets todo_kafka.traceparent and adds a task whose creation
# alice wants by email and in her inbox.  Checked:
#	 - every span decodes; one trace joins the relay's publish span (child of
#	   the application's span), audit's process and write spans, notify's
#	   fan-out, its delivery process spans, the email send and the inbox
#	   insert, each a child of the one before (parent links form a chain);
#	 - the trace id is in the audit row, the email's Traceparent header (as
#	   aiosmtpd received it; its parent is the delivery's process span) and
#	   the inbox row;
#	 - transactions without a traceparent each get their own new trace,
#	   shared by the rows of one transaction, with the publish span its root;
#	 - the project service, without an endpoint, exports nothing.

use strict;
use warnings;

use Test::More;
use TodoKafkaTest;
use NotifyTest;
use OtlpReceiver;

my $otlp = OtlpReceiver->start;
my @trace = ('--otlp-endpoint', $otlp->endpoint);
my $s = TodoKafkaTest->start_stack('t630', relay_args => \@trace);
my ($node, $t, $kafka) = @$s{qw(node topics kafka)};

my $rx = NotifyTest->new;
$rx->start_smtp;
$s->sql("SELECT todo_kafka.set_notification_email('alice', 'alice\@example.com');
	SELECT todo_kafka.set_notification_channels('alice', 'task_created', '{email,in_app}');");

my $audit = TodoKafkaTest->start_service('audit', $node, $kafka, args => \@trace);
# the fan-out in a stage of its own: a batch (sink) that passes each event's
# process span on before that span is reported
my $notify = TodoKafkaTest->start_service('notify', $node, $kafka,
	args => [ '-c', $rx->config, '--stage', 'fanout', @trace ], name => 'notify-fanout');
my @delivery = map {
	TodoKafkaTest->start_service('notify', $node, $kafka,
		args => [ '-c', $rx->config, '--stage', $_, @trace ], name => "notify-$_")
} qw(email realtime);
my $project = TodoKafkaTest->start_service('project', $node, $kafka);
ok($notify->wait_log(qr/exporting spans over OTLP\/HTTP to \Q${\ $otlp->endpoint }\E\/v1\/traces/),
	'notify exports spans');

# the application's call, in its own trace
my ($app_trace, $app_span) = ('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7');
my $task = $s->sql("BEGIN;
	SET LOCAL todo_kafka.traceparent = '00-$app_trace-$app_span-01';
	SELECT id FROM todo_kafka.add_task('alice', 'Renew passport');
	COMMIT;");
like($task, qr/^[0-9a-f-]{36}$/, 'task added with a traceparent');

ok(wait_until('the email', sub { @{ $rx->emails } >= 1 }, 60), 'the email arrived')
  or diag(join("\n", map { $_->log_text } $notify, @delivery));
ok($s->wait_sql("SELECT count(*) FROM todo_kafka.notifications WHERE task_id = '$task'", '1', 30),
	'the inbox row');
ok($s->wait_sql("SELECT count(*) FROM todo_kafka.audit_log WHERE task_id = '$task'", '1', 30),
	'the audit row');

# the trace id kept
is($s->sql("SELECT trace_id FROM todo_kafka.audit_log WHERE task_id = '$task'"), $app_trace,
	'audit row: trace id');
is($s->sql("SELECT trace_id FROM todo_kafka.notifications WHERE task_id = '$task'"), $app_trace,
	'inbox row: trace id');
my ($mail) = @{ $rx->emails };
like($mail->{traceparent} // '', qr/^00-\Q$app_trace\E-[0-9a-f]{16}-01$/, 'email: Traceparent header');

# the spans: wait until the chain's last links are in
my %want = ('email send' => 1, 'inbox insert' => 1, 'audit write' => 1);
ok(wait_until('the spans of the trace', sub {
	my %have = map { $_->{name} => 1 } grep { $_->{trace_id} eq $app_trace } @{ $otlp->spans };
	!grep { !$have{$_} } keys %want;
}, 30), 'the side-effect spans arrived');
my @spans = grep { $_->{trace_id} eq $app_trace } @{ $otlp->spans };
my %by_id = map { $_->{span_id} => $_ } @spans;
sub one
{
	my ($what, $cond) = @_;
	my @m = grep { $cond->($_) } @spans;
	is(scalar @m, 1, "one span: $what") or diag(explain \@spans);
	return $m[0] // {};
}

my $publish = one('relay publish', sub { $_[0]{service} eq 'todo-kafka-relay' && $_[0]{attributes}{'todo_kafka.stream'} eq 'task_events' });
is($publish->{name}, 'outbox publish', 'publish: name');
is($publish->{parent_span_id}, $app_span, "publish: a child of the application's span");
is($publish->{kind}, 4, 'publish: kind PRODUCER');

my $audit_process = one('audit process', sub { $_[0]{service} eq 'todo-kafka-audit' && $_[0]{name} =~ / process$/ });
is($audit_process->{parent_span_id}, (one('relay publish of the audit message', sub {
	$_[0]{service} eq 'todo-kafka-relay' && $_[0]{span_id} eq $audit_process->{parent_span_id} }))->{span_id},
	'audit process: a child of a relay publish span');
my $audit_write = one('audit write', sub { $_[0]{name} eq 'audit write' });
is($audit_write->{parent_span_id}, $audit_process->{span_id}, 'audit write: a child of audit process');

my $fanout = one('notify fan-out', sub { $_[0]{service} eq 'todo-kafka-notify-fanout' && $_[0]{name} eq "$t->{task_events} process" });
is($fanout->{parent_span_id}, $publish->{span_id}, 'fan-out: a child of the publish span');
is($fanout->{kind}, 5, 'fan-out: kind CONSUMER');

my $email = one('email send', sub { $_[0]{name} eq 'email send' });
my $email_process = $by_id{ $email->{parent_span_id} } // {};
is($email_process->{name}, "$t->{notifications} process", 'email send: a child of a delivery process span');
is($email_process->{parent_span_id}, $fanout->{span_id}, 'delivery process: a child of the fan-out');
is(substr($mail->{traceparent} // '', 36, 16), $email_process->{span_id},
	"the email's Traceparent names the delivery's process span");
is($email->{status}{code}, 1, 'email send: status OK');

my $inbox = one('inbox insert', sub { $_[0]{name} eq 'inbox insert' });
is(($by_id{ $inbox->{parent_span_id} } // {})->{parent_span_id}, $fanout->{span_id},
	'inbox insert: under a delivery process span under the fan-out');

for my $sp ($publish, $audit_process, $audit_write, $fanout, $email_process, $email, $inbox)
{
	ok($sp->{start} && $sp->{end} && length($sp->{end}) >= 19 && $sp->{start} le $sp->{end},
		"$sp->{name}: start and end times") if $sp->{name};
}

# no traceparent: a new trace per transaction
my $b1 = $s->sql("BEGIN; SELECT id FROM todo_kafka.add_task('bob', 'one'); COMMIT;");
my $b2 = $s->sql("BEGIN; SELECT id FROM todo_kafka.add_task('bob', 'two');
	SELECT id FROM todo_kafka.add_task('bob', 'three'); COMMIT;");
my ($b2a, $b2b) = split /\n/, $b2;
ok($s->wait_sql("SELECT count(*) FROM todo_kafka.audit_log WHERE user_id = 'bob'", '3', 30),
	'their audit rows');
my %tid = map { split /\|/ } split /\n/,
  $s->sql("SELECT task_id, trace_id FROM todo_kafka.audit_log WHERE user_id = 'bob'");
like($tid{$b1} // '', qr/^[0-9a-f]{32}$/, 'a trace of its own without a traceparent');
isnt($tid{$b1}, $app_trace, "not the application's trace");
is($tid{$b2a}, $tid{$b2b}, 'the rows of one transaction share their trace');
isnt($tid{$b1}, $tid{$b2a}, 'another transaction, another trace');
ok(wait_until('the new trace\'s publish spans', sub {
	grep { $_->{trace_id} eq ($tid{$b1} // '') && $_->{service} eq 'todo-kafka-relay' } @{ $otlp->spans }
}, 30), 'the new trace reached the receiver');
my ($root) = grep { $_->{trace_id} eq ($tid{$b1} // '') && $_->{service} eq 'todo-kafka-relay' } @{ $otlp->spans };
is($root->{parent_span_id}, '', 'its publish span is the root');

# what decodes, and who exported
is_deeply($otlp->errors, [], 'every request decoded with the OpenTelemetry definitions');
ok(TodoKafkaTest::wait_until('the projection', sub { TodoKafkaTest::read_model_diff($node, 'postgres') == 0 }, 30),
	'the project service handled the events');
my %services = map { $_->{service} => 1 } @{ $otlp->spans };
is_deeply([ sort keys %services ], [qw(todo-kafka-audit todo-kafka-notify-email todo-kafka-notify-fanout todo-kafka-notify-realtime todo-kafka-relay)],
	'spans from the relay, audit and the three notify stages; none from project (no --otlp-endpoint)');

$_->stop for $notify, @delivery, $audit, $project;
$rx->stop;
$otlp->stop;
done_testing();
