# tests/405_service_roles.pl: each service logs in with a member of only
# its own role (extension 0.5.0, issue 16).
#
# The audit, notify and project services run side by side, each with its
# login from TodoKafkaTest::service_login (tk_audit in
# todo_kafka_audit_writer, tk_notify in todo_kafka_notifier, tk_project in
# todo_kafka_projector), and do their work end to end: every task change
# in the audit trail, every new task in the inbox and by email (a real
# SMTP sink), every task in the read model.  Then, logged in as each of
# them and as the dlq tool's operator login, every function of the other
# services is refused with SQLSTATE 42501, including the issue's attack
# from the notifier (a forged audit entry, purge_audit('0'),
# project_reset()).  The audit service asked to purge below the retention
# floor (retention_days = 1 < todo_kafka.audit_retention, 90 days) is
# refused by the database, purges nothing and keeps appending.

use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use TodoKafkaTest;
use NotifyTest;

my $s = TodoKafkaTest->start_stack('t405');
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};
my $rx = NotifyTest->new;
$rx->start_smtp;
$s->sql("SELECT todo_kafka.set_notification_email('alice', 'alice\@example.com');
	SELECT todo_kafka.set_notification_channels('alice', 'task_created', '{email,in_app}');");

my $conf = PostgreSQL::Test::Utils::tempdir() . '/audit.conf';
open(my $fh, '>', $conf) or die "$conf: $!";
print $fh "retention_days = 1\npurge_interval_s = 10\n";
close $fh;

my %svc = (
	audit => TodoKafkaTest->start_service('audit', $node, $kafka, args => [ '-c', $conf ]),
	notify => TodoKafkaTest->start_service('notify', $node, $kafka, args => [ '-c', $rx->config ]),
	project => TodoKafkaTest->start_service('project', $node, $kafka,
		args => ['--snapshot-interval-s=0']));
ok($svc{$_}->wait_log(qr/assigned \S+\[/), "$_ assigned") for sort keys %svc;

# each login is a member of its service's role and of nothing else
is($s->sql("SELECT string_agg(m.rolname || ':' || r.rolname, ' ' ORDER BY m.rolname)
	  FROM pg_auth_members a JOIN pg_roles m ON m.oid = a.member JOIN pg_roles r ON r.oid = a.roleid
	 WHERE m.rolname LIKE 'tk\\_%'"),
	'tk_audit:todo_kafka_audit_writer tk_notify:todo_kafka_notifier tk_project:todo_kafka_projector',
	'one login per service, each in its own role only');

# the floor: the audit service's own purge is refused, nothing removed
ok($svc{audit}->wait_log(qr/retention purge failed: .*kept at least 90 days/),
	'the audit service cannot purge below the retention floor');

# work for every service
$s->sql("SELECT count(todo_kafka.add_task('alice', 'task ' || i)) FROM generate_series(1, 5) i;
	UPDATE todo_kafka.tasks SET priority = 'high' WHERE title = 'task 1';");
ok(wait_until('audit trail complete',
	sub { $s->sql('SELECT count(*) FROM todo_kafka.audit_log') == 6 }), 'audit: six entries');
is($s->sql('SELECT ok FROM todo_kafka.verify_audit()'), 't', 'audit: the trail verifies');
is($s->sql("SELECT string_agg(DISTINCT db_role, ',') FROM todo_kafka.audit_log"), $s->sql('SELECT current_user'),
	'audit: entries carry the application login');
ok(wait_until('read model complete',
	sub { $s->sql("SELECT count(*) FROM todo_kafka.task_view WHERE priority = 'high'") == 1
		  && $s->sql('SELECT count(*) FROM todo_kafka.task_view') == 5 }), 'project: five tasks, one updated');
ok(wait_until('inbox complete',
	sub { $s->sql("SELECT count(*) FROM todo_kafka.list_notifications('alice')") == 5 }),
	'notify: five inbox notifications');
ok(wait_until('emails sent', sub { @{ $rx->emails } == 5 }), 'notify: five emails');

# each login against every other service's functions
my %calls = (
	audit => [ "todo_kafka.audit_append('[]')", "todo_kafka.purge_audit('0')" ],
	notify => [
		"todo_kafka.notification_plan('u', 'task_created', NULL, NULL, 't', NULL)",
		"todo_kafka.notification_targets('u', 'email')",
		"todo_kafka.delivery_claim('n', 'email', 'x', 'u', false)",
		"todo_kafka.delivery_done('n', 'email', 'x', 'u', 'sent', NULL)",
		"todo_kafka.delivery_retry('n', 'email', 'x', 'e')",
		"todo_kafka.deliver_in_app('n', 'u', 'task_created', NULL, 't', 'b')",
		"todo_kafka.push_subscription_gone('https://push.example/x')",
		"todo_kafka.purge_notification_deliveries('0')" ],
	project => [
		"todo_kafka.project_apply('t', '[]')", "todo_kafka.project_offsets('t')",
		'todo_kafka.project_snapshot(1)', 'todo_kafka.project_prune_snapshots(1)',
		'todo_kafka.project_snapshots()', 'todo_kafka.project_restore(1)',
		'todo_kafka.project_reset()' ],
	dlq => [
		"todo_kafka.dlq_claim_replay('0:1', 't', 0, 1, 'e', false)", 'todo_kafka.dlq_replays()',
		'todo_kafka.dlq_table_rows()', 'todo_kafka.dlq_requeue_outbox(1, false)',
		"todo_kafka.dlq_purge('0', 't', '[]')", "todo_kafka.dlq_purged('t')" ]);

# the SQLSTATE of one call as a login ('ok' when it ran)
sub sqlstate
{
	my ($login, $call) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', "\\set VERBOSITY verbose\nSELECT $call",
		stdout => \$out, stderr => \$err, extra_params => [ '-U', $login ]);
	return $err =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : ($err eq '' ? 'ok' : $err);
}

TodoKafkaTest::service_login($node, 'dlq');
for my $service (qw(audit notify project dlq))
{
	my @others = map { @{ $calls{$_} } } grep { $_ ne $service } sort keys %calls;
	# the operator also purges the audit trail, above the floor only
	@others = grep { !/purge_audit/ } @others if $service eq 'dlq';
	my @let = grep { sqlstate("tk_$service", $_) ne '42501' } @others;
	is_deeply(\@let, [], "tk_$service: every other service's function refused with 42501")
	  or diag(join("\n", map { "$_: " . sqlstate("tk_$service", $_) } @let));
}
is(sqlstate('tk_dlq', "todo_kafka.purge_audit('0')"), '22023', 'tk_dlq: purge_audit below the floor refused');

# the issue's attack, as the notifier
is(sqlstate('tk_notify', q{todo_kafka.audit_append(jsonb_build_array(jsonb_build_object(
	'topic', 'todo.audit.log', 'partition', 0, 'offset', 99, 'data', jsonb_build_object(
	'event_id', gen_random_uuid(), 'actor', 'admin', 'operation', 'DELETE', 'db_role', 'chatbot',
	'event_type', 'deleted', 'task_id', 'never', 'timestamp', '2026-01-01T00:00:00Z'))))}),
	'42501', 'notifier: a forged audit entry is refused');
is(sqlstate('tk_notify', "todo_kafka.purge_audit('0')"), '42501', 'notifier: purge_audit refused');
is(sqlstate('tk_notify', 'todo_kafka.project_reset()'), '42501', 'notifier: project_reset refused');
is($s->sql('SELECT count(*) FROM todo_kafka.audit_log'), 6, 'the trail is intact');
is($s->sql('SELECT count(*) FROM todo_kafka.task_view'), 5, 'the read model is intact');

# the services still work after all that
$s->sql("SELECT todo_kafka.add_task('alice', 'task 6')");
ok(wait_until('all three caught up',
	sub { $s->sql('SELECT count(*) FROM todo_kafka.audit_log') == 7
		  && $s->sql('SELECT count(*) FROM todo_kafka.task_view') == 6
		  && $s->sql("SELECT count(*) FROM todo_kafka.list_notifications('alice')") == 6 }),
	'every service handles the next task');
is($s->sql('SELECT count(*) FROM todo_kafka.audit_purges'), 0, 'no purge happened');
unlike($svc{$_}->log_text, qr/FATAL|dead.letter|refuses/, "$_ dead-lettered and was refused nothing")
  for sort keys %svc;

is($svc{$_}->stop, 0, "$_ stops") for sort keys %svc;
is($relay->stop, 0, 'relay stops');
$s->stop;
$rx->stop;
done_testing();
