# tests/700_backup_restore.pl: pg_dump -Fc of the application database,
# pg_restore into a new cluster, and the relay, audit service, projector
# and notifier resume against it and the same Kafka (issue 20).
#
# Before the restore the old database is made to hold every awkward case:
#   - changes the audit service had not consumed at dump time, whose outbox
#     rows were already truncated (only Kafka holds them), consumed by the
#     old audit service AFTER the dump, so Kafka's committed group offsets
#     are ahead of the restored database;
#   - changes committed but not yet published at dump time (relay stopped);
#   - a task whose email was delivered before the dump and whose outbox row
#     is re-sent after the restore (the restored delivery log says done);
#   - a renamed built-in topic and a topic of the user's own.
# After the restore: every change is on Kafka, the audit trail has every
# change once and verifies, the read model equals the tasks table, no
# email is sent twice.  Restoring the same dump again after the audit
# topic lost its oldest events (retention): the audit service refuses to
# start with a gap (exit 2).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use TodoKafkaTest;
use NotifyTest;

my $s = TodoKafkaTest->start_stack('t700', node_name => 't700_old', streams => ['filler']);
my ($old, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};

my $rx = NotifyTest->new;
$rx->start_smtp;
my $notify_conf = $rx->config;

sub q_on { my ($node, $db, $q) = @_; return $node->safe_psql($db, $q); }
sub old_sql { return q_on($old, 'postgres', $_[0]); }

# the services of one database
sub start_services
{
	my ($node, $db, @which) = @_;
	my %svc;
	for my $name (@which)
	{
		my @args = $name eq 'notify' ? ('-c', $notify_conf) : ();
		$svc{$name} = TodoKafkaTest->start_service($name, $node, $kafka,
			connstr => $node->connstr($db), args => \@args);
	}
	return \%svc;
}

sub emails_with { my ($subject) = @_; return scalar grep { $_->{subject} eq $subject } @{ $rx->emails }; }

old_sql("UPDATE todo_kafka.topics SET retention_ms = 86400000 WHERE stream = 'filler';
	SELECT todo_kafka.set_notification_email('alice', 'alice\@example.com');
	SELECT todo_kafka.set_notification_channels('alice', 'task_created', '{email,in_app}');");
my $svc = start_services($old, 'postgres', qw(audit project notify));
my $changes = 0;

# --- 1. the old database at work -------------------------------------------
my @ids = map { old_sql("SELECT id FROM todo_kafka.add_task('alice', 'Task $_')") } 1 .. 3;
old_sql("SELECT 1 FROM todo_kafka.update_task('alice', '$ids[0]', p_priority => 'high')");
$changes += 4;
ok(TodoKafkaTest::wait_until('three emails', sub { @{ $rx->emails } >= 3 }), 'the new tasks are announced by email');
ok(TodoKafkaTest::wait_until('audit', sub { old_sql('SELECT count(*) FROM todo_kafka.audit_log') == $changes }),
	'audited');

# --- 2. changes the audit service has not seen, gone from the outbox --------
is($svc->{audit}->stop, 0, 'audit service stops');
old_sql("SELECT 1 FROM todo_kafka.update_task('alice', '$ids[1]', p_title => 'Task 2, renamed')");
old_sql("SELECT 1 FROM todo_kafka.complete_task('alice', '$ids[2]')");
$changes += 2;
old_sql("SELECT count(todo_kafka.publish('filler', 'k', 'filler.pad', '{}')) FROM generate_series(1, 9000)");
ok(TodoKafkaTest::wait_outbox_published($old, 120), 'relay published everything');
ok(TodoKafkaTest::wait_until('truncation', sub { old_sql("SELECT count(*) FROM todo_kafka.outbox WHERE kind = 'change'") == 0 }),
	'their outbox rows are truncated: only Kafka holds them');

# a task announced before the dump whose outbox row is still there
my $mid = old_sql("SELECT id FROM todo_kafka.add_task('alice', 'Announced before the dump')");
$changes += 1;
ok(TodoKafkaTest::wait_until('email', sub { emails_with('New task: Announced before the dump') == 1 }),
	'announced by email');
ok(TodoKafkaTest::wait_until('projection', sub { TodoKafkaTest::read_model_diff($old, 'postgres') == 0 }), 'read model up to date');

# --- 3. committed, not published at dump time --------------------------------
is($relay->stop, 0, 'relay stops');
my $late = old_sql("SELECT id FROM todo_kafka.add_task('alice', 'Committed before the dump')");
old_sql("SELECT 1 FROM todo_kafka.update_task('alice', '$ids[0]', p_description => 'unpublished change')");
$changes += 2;
cmp_ok(TodoKafkaTest::outbox_pending($old), '>=', 2, 'unpublished changes in the outbox');

# --- 4. the dump -------------------------------------------------------------
my $dump = $PostgreSQL::Test::Utils::tmp_check . '/t700.dump';
command_ok([ 'pg_dump', '-Fc', '-d', $old->connstr('postgres'), '-f', $dump ], 'pg_dump -Fc');
my %before = (
	tasks => old_sql('SELECT count(*) FROM todo_kafka.tasks'),
	tasks_md5 => old_sql("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM todo_kafka.tasks t"),
	audit => old_sql('SELECT count(*) FROM todo_kafka.audit_log'));
is($before{audit}, $changes - 3 - 2, 'the dump misses the audit of the changes only Kafka holds');

# after the dump the old audit service catches up: the group's committed
# offsets are now past what the restored database will hold
my $old_audit = TodoKafkaTest->start_service('audit', $old, $kafka);
ok(TodoKafkaTest::wait_until('audit', sub { old_sql('SELECT count(*) FROM todo_kafka.audit_log') == $changes - 2 }),
	'the old audit service caught up after the dump');
is($old_audit->stop, 0, 'and commits its group offsets on stop');
is($_->stop, 0, "old $_->{name} stops") for @$svc{qw(project notify)};
$old->stop;

# --- 5. restore into a new cluster -------------------------------------------
my $new = PostgreSQL::Test::Cluster->new('t700_new');
$new->init;
$new->start;
sub new_sql { return q_on($new, 'restored', $_[0]); }
$new->safe_psql('postgres', 'CREATE DATABASE restored');
{
	local $ENV{PGOPTIONS} = '-c session_replication_role=replica';
	command_ok([ 'pg_restore', '--exit-on-error', '-d', $new->connstr('restored'), $dump ],
		'pg_restore into a new cluster');
}
is(new_sql('SELECT count(*) FROM todo_kafka.tasks'), $before{tasks}, 'every task restored');
is(new_sql("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM todo_kafka.tasks t"),
	$before{tasks_md5}, 'tasks restored as they were');
is(new_sql("SELECT email FROM todo_kafka.notification_settings WHERE user_id = 'alice'"),
	'alice@example.com', 'notification settings restored');
is(new_sql("SELECT topic FROM todo_kafka.topics WHERE stream IN ('task_events', 'filler') ORDER BY 1"),
	"$t->{filler}\n$t->{task_events}", 'renamed and added topics restored');
is(new_sql('SELECT count(*) FROM todo_kafka.topics'), 7, 'built-in topics not duplicated');
is(new_sql('SELECT count(*) FROM todo_kafka.audit_log'), $before{audit}, 'audit log restored');

# --- 6. the services resume against it -----------------------------------------
$relay = TodoKafkaTest->start_relay($new, $kafka, connstr => $new->connstr('restored'));
ok($relay->wait_log(qr/acquired leadership/), 'relay leads on the restored database');
ok(TodoKafkaTest::wait_until('rebase', sub { TodoKafkaTest::slurp($new->logfile)
	  =~ /taken in cluster \d+, not this one \(a restore\): \d+ outbox rows will be sent again/ }),
	'the position of the old cluster is rebased');
my $nsvc = start_services($new, 'restored', qw(audit project notify));
ok(TodoKafkaTest::wait_until('publish', sub { new_sql('SELECT pending_rows FROM todo_kafka.relay_backlog()') == 0 }, 120),
	'the restored outbox is published');

my $events = TodoKafkaTest::consume_events($kafka, $t->{task_events}, timeout => 10);
ok((grep { ($_->{event}{data}{task_id} // '') eq $late } @$events),
	'a change committed before the dump but never published is on Kafka now');

ok(TodoKafkaTest::wait_until('audit', sub { new_sql('SELECT count(*) FROM todo_kafka.audit_log') == $changes }, 120),
	"the audit trail has every change: $changes")
  or diag($nsvc->{audit}->log_text);
is(new_sql('SELECT count(DISTINCT event_id) FROM todo_kafka.audit_log'), $changes, 'each once');
is(new_sql("SELECT count(*) FROM todo_kafka.audit_log WHERE task_id = '$ids[2]' AND event_type = 'completed'"),
	1, 'including the change only Kafka held (group offsets were ahead)');
is(new_sql('SELECT ok FROM todo_kafka.verify_audit()'), 't', 'verify_audit() intact');
ok(TodoKafkaTest::wait_until('projection', sub { TodoKafkaTest::read_model_diff($new, 'restored') == 0 }, 120), 'the read model equals the tasks table');
ok(TodoKafkaTest::wait_until('email', sub { emails_with('New task: Committed before the dump') == 1 }, 60),
	'the task committed before the dump is announced');
sleep(2);
is(emails_with('New task: Announced before the dump'), 1,
	'a notification the restored delivery log shows as done is not sent again');
is(scalar @{ $rx->emails }, 5, 'five emails in all');

# --- 7. a restore point older than the topic's retention --------------------
is($nsvc->{audit}->stop, 0, 'audit service stops');
my $blob = 'x' x 100_000;
for my $p (0 .. 2)
{
	for my $i (1 .. 8)
	{
		my @m = map { qq({"specversion":"1.0","id":"junk-$p-$i-$_","source":"/test","type":"test.junk","data":{"pad":"$blob"}}) } 1 .. 10;
		my ($ok, $err) = $kafka->produce($t->{audit}, \@m, partition => $p);
		ok($ok, "junk $p/$i") or diag($err);
	}
}
$new->safe_psql('postgres', 'CREATE DATABASE restored_late');
{
	local $ENV{PGOPTIONS} = '-c session_replication_role=replica';
	command_ok([ 'pg_restore', '--exit-on-error', '-d', $new->connstr('restored_late'), $dump ],
		'the same dump restored again');
}
my $refused = TodoKafkaTest->start_service('audit', $new, $kafka, connstr => $new->connstr('restored_late'));
is($refused->wait_exit(60), 2, 'the audit service refuses a gap (exit 2)');
like($refused->log_text, qr/cannot continue the audit trail: the topic no longer holds its oldest events/,
	'saying why');
my $gap = TodoKafkaTest->start_service('audit', $new, $kafka, connstr => $new->connstr('restored_late'),
	args => ['--allow-gap']);
ok($gap->wait_log(qr/--allow-gap: \Q$t->{audit}\E\[\d\] starts at \d+; its events \d+ to \d+ are missing/),
	'--allow-gap starts anyway and says what is missing');
ok($gap->wait_log(qr/assigned /), 'and consumes');
is($gap->stop, 0, 'audit service (--allow-gap) stops');

is($_->stop, 0, "$_->{name} stops") for $relay, @$nsvc{qw(project notify)};
$rx->stop_smtp;
$kafka->stop;
$new->stop;
done_testing();
