# tests/502_projection_dead_letter.pl: an event todo-kafka-project
# dead-letters counts for the offsets it keeps in the database.
#
# The projector starts each partition at the offset stored with its read
# model (todo_kafka.projection_offsets), never at Kafka's committed offset.
# An event it dead-letters that is the LAST of its partition must still
# move that stored offset, or every restart reads it again and
# dead-letters it again.  Two such events, produced with kcat: one the
# projector refuses itself (invalid input: no uuid task_id) as the last of
# partition 0 after an event that is not a task change, and one the
# database refuses (a due_date that is not a timestamp: rejected by
# project_apply) as the only event of partition 1.  After a clean stop and
# a restart, and after a SIGKILL and a restart, the dead-letter topic still
# holds exactly one copy of each, and the stored offsets are past them.

use strict;
use warnings;

use JSON::PP;
use Test::More;
use TodoKafkaTest;

my $s = TodoKafkaTest->start_stack('t502', relay => 0);
my ($node, $t, $kafka) = @$s{qw(node topics kafka)};
my $topic = $t->{task_events};

# the projector runs as a login that has only todo_kafka_projector (start_service)
sub projector
{
	return TodoKafkaTest->start_service('project', $node, $kafka, args => ['--snapshot-interval-s=0']);
}

sub dead_letters { return $kafka->end_offsets($t->{dead_letter}); }

# partition => next offset, as the projector stored them
sub stored_offsets
{
	return { map { split /\|/ } split /\n/,
		  $s->sql("SELECT kafka_partition, next_offset FROM todo_kafka.projection_offsets
		        WHERE topic = '$topic' ORDER BY 1") };
}

sub event
{
	my ($id, $source, $type, $data) = @_;
	return encode_json({ specversion => '1.0', id => $id, source => $source, type => $type,
		time => '2026-01-01T00:00:00Z', data => $data });
}

my $tasks = '/todo_kafka/todo_kafka.tasks';
my $task_id = 'e0000000-0000-4000-8000-000000000002';
my @p0 = (
	event('e0000000-0000-4000-8000-000000000001', '/some/app', 'app.thing.happened', { n => 1 }),
	event('e0000000-0000-4000-8000-000000000003', $tasks, 'task.created',
		{ task_id => 'not-a-uuid', task_data => { title => 'no id' } }));
my @p1 = (
	event('e0000000-0000-4000-8000-000000000004', $tasks, 'task.created',
		{ task_id => $task_id, task_data => { id => $task_id, user_id => 'alice',
			title => 'bad due date', due_date => 'not a date' } }));
my ($ok, $err) = $kafka->produce($topic, \@p0, key => 'k0', partition => 0);
ok($ok, 'partition 0: a foreign event, then an invalid task event (the last)') or diag($err);
($ok, $err) = $kafka->produce($topic, \@p1, key => $task_id, partition => 1);
ok($ok, 'partition 1: a task event the database refuses (the only one)') or diag($err);

my $proj = projector();
ok(wait_until('two dead letters', sub { dead_letters() >= 2 }), 'both were dead-lettered');
ok(wait_until('stored offsets past the dead letters', sub {
	my $o = stored_offsets();
	($o->{0} // -1) == 2 && ($o->{1} // -1) == 1 }),
	'the stored offsets moved past the dead-lettered events')
  or diag(explain(stored_offsets()) . $proj->log_text);
my $dl = TodoKafkaTest::consume_events($kafka, $t->{dead_letter}, count => 2, timeout => 30);
is_deeply([ sort map { $_->{hdr}{'dlq-error'} // '?' } @$dl ], [ 'INVALID_INPUT', 'PERMANENT' ],
	'one invalid input, one refused by the database');

# a clean stop and a restart, then a SIGKILL and a restart: nothing again
is($proj->stop, 0, 'projector stops cleanly');
my $round = 0;
for my $after ('a clean stop', 'a SIGKILL')
{
	$proj = projector();
	my ($s0, $s1) = (2 + $round, 1 + $round);
	ok($proj->wait_log(qr/\Q$topic\E\[0\] starts at offset $s0\b/),
		"after $after: partition 0 starts past its dead letter, at $s0");
	ok($proj->wait_log(qr/\Q$topic\E\[1\] starts at offset $s1\b/),
		"after $after: partition 1 starts past its dead letter, at $s1");
	# one more event on each partition: once their offsets are stored, the
	# projector has read everything before them
	$round++;
	for my $p (0, 1)
	{
		($ok, $err) = $kafka->produce($topic,
			[ event(sprintf('e0000000-0000-4000-8000-%012d', 100 * $round + $p), '/some/app',
				'app.thing.happened', {}) ], key => "k$p", partition => $p);
		ok($ok, "after $after: one more event on partition $p") or diag($err);
	}
	ok(wait_until('the new events stored', sub {
		my $o = stored_offsets();
		($o->{0} // -1) == 2 + $round && ($o->{1} // -1) == 1 + $round }),
		"after $after: the projector read on past the new events")
	  or diag(explain(stored_offsets()) . $proj->log_text);
	is(dead_letters(), 2, "after $after: still exactly one dead letter of each");
	if ($after eq 'a clean stop')
	{
		$proj->kill9;
	}
	else
	{
		is($proj->stop, 0, 'projector stops cleanly');
	}
}

is($s->sql("SELECT count(*) FROM todo_kafka.task_view"), 0, 'nothing was projected from them');

$kafka->stop;
$node->stop;
done_testing();
