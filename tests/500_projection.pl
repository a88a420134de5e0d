# tests/500_projection.pl: task operations -> relay -> todo.task.events ->
# todo-kafka-project -> todo_kafka.task_view.
#
# After a random workload (adds, updates, completions, deletes, recurring
# tasks) the read model equals the tasks table; SIGKILLed mid-stream and
# restarted (several times) it is still equal and no event was applied twice
# (the events counted per partition equal the topic's end offsets); --replay
# from zero gives the same; --snapshot, more events, --restore gives the
# same; once the topic lost its oldest events (the devbroker drops the
# oldest beyond 5 MiB per partition), --replay and --restore without a
# covering snapshot are refused with exit 2, and --replay with one works.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time sleep);
use TodoKafkaTest;

my $s = TodoKafkaTest->start_stack('t500');
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};
my $topic = $t->{task_events};

# the projector runs as a login that has only todo_kafka_projector (start_service)
sub projector
{
	my (@args) = @_;
	return TodoKafkaTest->start_service('project', $node, $kafka, args => [@args]);
}

my $cols = 'id, user_id, title, description, completed, priority, tags, due_date, recurrence,
	recurrence_day, reminder_offsets, notification_methods, recurrence_parent, created_at, updated_at';

# rows that differ between the tasks table and the read model
sub diff_count
{
	return $s->sql("SELECT (SELECT count(*) FROM (SELECT $cols FROM todo_kafka.tasks
	                      EXCEPT SELECT $cols FROM todo_kafka.task_view) a)
	                 + (SELECT count(*) FROM (SELECT $cols FROM todo_kafka.task_view
	                      EXCEPT SELECT $cols FROM todo_kafka.tasks) b)");
}

# events counted by the projector, in the database
sub events_counted
{
	return $s->sql("SELECT coalesce(sum(events), 0) FROM todo_kafka.projection_offsets WHERE topic = '$topic'");
}

sub next_offsets
{
	return $s->sql("SELECT coalesce(sum(next_offset), 0) FROM todo_kafka.projection_offsets WHERE topic = '$topic'");
}

# wait until the relay published everything and the projector caught up
sub wait_caught_up
{
	my ($proc, $timeout) = @_;
	TodoKafkaTest::wait_outbox_published($node) or return 0;
	my $end = $kafka->end_offsets($topic);
	return 1 if wait_until('the projector caught up',
		sub { next_offsets() == $end && diff_count() == 0 }, $timeout // 90);
	diag('not caught up: next offsets ' . next_offsets() . " of $end, "
		  . diff_count() . " rows differ; projector log:\n" . ($proc ? $proc->log_text : ''));
	return 0;
}

# a random workload through the task API
my $seed = $ENV{TK_SEED} // int(rand(1_000_000));
note("workload seed $seed");
srand($seed);
my @users = qw(alice bob carol dave);
my @prios = qw(low medium high);

sub workload
{
	my ($ops) = @_;
	# in chunks, so that tasks added by one chunk are changed by the next
	while ($ops > 0)
	{
		my $n = $ops > 50 ? 50 : $ops;
		workload_chunk($n);
		$ops -= $n;
	}
}

sub workload_chunk
{
	my ($ops) = @_;
	my @live = map { [ split /\|/ ] } split /\n/,
	  $s->sql('SELECT user_id, id FROM todo_kafka.tasks ORDER BY created_at, id');
	my @stmts;
	for (1 .. $ops)
	{
		my $r = rand();
		if ($r < 0.35 || @live < 5)
		{
			my $u = $users[ int(rand(@users)) ];
			my $rec = (qw(none none none daily weekly monthly))[ int(rand(6)) ];
			my $due = $rec eq 'none' && rand() < 0.5 ? 'NULL'
			  : "now() + interval '" . (1 + int(rand(30))) . " days'";
			my $tags = "'{" . join(',', map { "t$_" } grep { rand() < 0.3 } 1 .. 4) . "}'";
			push @stmts, "SELECT 1 FROM todo_kafka.add_task('$u', 'task " . int(rand(1e6))
			  . "', 'd', '$prios[int(rand(3))]', $tags, $due, '$rec')";
			next;
		}
		my $i = int(rand(@live));
		my ($u, $id) = @{ $live[$i] };
		if ($r < 0.65)
		{
			my $tags = "'{" . join(',', map { "t$_" } grep { rand() < 0.3 } 1 .. 4) . "}'";
			push @stmts, "SELECT 1 FROM todo_kafka.update_task('$u', '$id', p_title => 'renamed "
			  . int(rand(1e6)) . "', p_priority => '$prios[int(rand(3))]', p_tags => $tags)";
		}
		elsif ($r < 0.85)
		{
			push @stmts, "SELECT 1 FROM todo_kafka.complete_task('$u', '$id')";
			splice(@live, $i, 1);
		}
		else
		{
			push @stmts, "SELECT todo_kafka.delete_task('$u', '$id')";
			splice(@live, $i, 1);
		}
	}
	# one transaction per statement, as the chatbot would make them
	$node->safe_psql('postgres', join(";\n", @stmts) . ';');
}

# --- 1. a random workload, projected -------------------------------------
my $proj = projector();
ok($proj->wait_log(qr/assigned \S+/), 'projector assigned');
workload(400);
ok(wait_caught_up($proj), 'read model equals the tasks table after the workload');
cmp_ok($s->sql('SELECT count(*) FROM todo_kafka.task_view'), '>', 20, 'with many tasks');
ok($s->sql("SELECT count(*) FROM todo_kafka.task_view WHERE recurrence_parent IS NOT NULL") > 0,
	'recurring occurrences are projected');
is(events_counted(), $kafka->end_offsets($topic), 'every event counted once');
is($s->sql("SELECT count(*) FROM todo_kafka.task_view v JOIN todo_kafka.projection_offsets o
	ON o.topic = v.kafka_topic AND o.kafka_partition = v.kafka_partition
	WHERE v.kafka_offset >= o.next_offset"), 0, 'every row comes from an applied offset');

# --- 2. SIGKILL mid-stream, restart --------------------------------------
for my $round (1 .. 3)
{
	my $before = next_offsets();
	workload(300);
	# kill it while it is applying
	wait_until('the projector applying', sub { next_offsets() != $before }, 30, 0.02);
	$proj->kill9;
	$proj = projector();
	ok($proj->wait_log(qr/starts at offset/), "round $round: restarted where the database says");
}
ok(wait_caught_up($proj), 'after SIGKILLs the read model still equals the tasks table');
is(events_counted(), $kafka->end_offsets($topic), 'no event applied twice (or skipped)');
like($proj->log_text, qr/starts at offset \d+ \(kept by the service\)/, 'start offsets from the database');

# --- 3. --replay from zero ------------------------------------------------
is($proj->stop, 0, 'projector stops cleanly');
$s->sql("UPDATE todo_kafka.task_view SET title = 'corrupted' WHERE id IN (SELECT id FROM todo_kafka.task_view LIMIT 5)");
ok(diff_count() > 0, 'read model damaged on purpose');
$proj = projector('--replay');
ok($proj->wait_log(qr/rebuilding from the start/), 'replay empties the read model');
ok(wait_caught_up($proj), '--replay from zero gives the same read model');
is(events_counted(), $kafka->end_offsets($topic), 'replay counted every event once');

# --- 4. snapshot, more events, --restore ----------------------------------
my $snap = projector('--snapshot');
is($snap->wait_exit(60), 0, '--snapshot exits 0');
my $sid = $s->sql('SELECT max(id) FROM todo_kafka.projection_snapshots');
is($s->sql("SELECT tasks FROM todo_kafka.projection_snapshots WHERE id = $sid"),
	$s->sql('SELECT count(*) FROM todo_kafka.task_view'), 'the snapshot holds the read model');
workload(200);
ok(wait_caught_up($proj), 'caught up with more events');
is($proj->stop, 0, 'projector stops');
my $after_snapshot = $kafka->end_offsets($topic)
  - $s->sql("SELECT sum((o->>'next_offset')::bigint) FROM todo_kafka.projection_snapshots s,
	jsonb_array_elements(s.offsets) o WHERE s.id = $sid");
$s->sql('TRUNCATE todo_kafka.task_view');
$proj = projector('--restore');
ok($proj->wait_log(qr/restored from snapshot $sid/), 'restore names the snapshot');
ok(wait_caught_up($proj), 'snapshot + --restore gives the same read model');
cmp_ok($after_snapshot, '>', 0, "$after_snapshot events came after the snapshot");

# periodic snapshots and pruning: snapshots_keep
is($proj->stop, 0, 'projector stops');
$proj = projector('--snapshot-interval-s', '1', '--snapshots-keep', '2');
ok($proj->wait_log(qr/snapshot \d+ taken in .*snapshot \d+ taken in .*snapshot \d+ taken in/s, 30),
	'periodic snapshots');
is($s->sql('SELECT count(*) FROM todo_kafka.projection_snapshots'), 2, 'pruned to snapshots_keep');

# --- 5. the topic loses its oldest events ----------------------------------
# junk (not task events: the projector only counts them) pushes the
# devbroker past 5 MiB on partition 0, so it drops the oldest messages
my $blob = 'x' x 100_000;
for my $i (1 .. 8)
{
	my @p = map { qq({"specversion":"1.0","id":"junk-$i-$_","source":"/test","type":"test.junk","data":{"pad":"$blob"}}) } 1 .. 10;
	my ($ok, $err) = $kafka->produce($topic, \@p, partition => 0);
	ok($ok, "junk batch $i produced") or diag($err);
}
my ($ok, $out, $err) = $kafka->_kcat('', '-Q', '-t', "$topic:0:-2");
my ($low) = $out =~ /offset\s+(-?\d+)/;
cmp_ok($low // 0, '>', 0, "partition 0 now starts at offset " . ($low // '?'));
ok(wait_caught_up($proj), 'the running projector read the junk');
is($proj->stop, 0, 'projector stops');

# the snapshots predate the loss: a replay from zero cannot be complete
$s->sql('DELETE FROM todo_kafka.projection_snapshots');
my $refused = projector('--replay');
is($refused->wait_exit(60), 2, '--replay is refused with exit 2 when events are gone');
like($refused->log_text, qr/cannot replay: the topic no longer holds its oldest events .*no snapshot covers the gap/,
	'with a clear reason');
ok(diff_count() == 0, 'the refused replay left the read model as it was');
$refused = projector('--restore');
is($refused->wait_exit(60), 2, '--restore without a snapshot is refused with exit 2');
like($refused->log_text, qr/no snapshot/, 'saying there is none');

# with a snapshot taken after the loss, --replay rebuilds from it
$snap = projector('--snapshot');
is($snap->wait_exit(60), 0, 'snapshot after the loss');
$proj = projector('--replay');
ok($proj->wait_log(qr/rebuilding from snapshot \d+/), 'replay uses the covering snapshot');
workload(50);
ok(wait_caught_up($proj), 'and the read model equals the tasks table');

is($proj->stop, 0, 'projector stops cleanly');
like($proj->log_text, qr/offsets committed/, 'left the group cleanly');
is($relay->stop, 0, 'relay stops cleanly');
$kafka->stop;
$node->stop;
done_testing();
