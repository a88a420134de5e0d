# tests/103_out_of_order_commit.pl: the classic outbox gap (guarantee 2).
#
# Session 1 writes a task (taking the lower outbox id) and keeps its
# transaction open; session 2 writes one (higher id) and commits; the relay
# publishes session 2's event; then session 1 commits.  A reader that goes
# by "id > last id" would skip session 1's row for good; the snapshot
# windows must publish it.

use strict;
use warnings;

use Test::More;
use TodoKafkaTest;
use DevBroker;

my $s = TodoKafkaTest->start_stack('t103');
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};

my $s1 = $node->background_psql('postgres');
$s1->query_safe('BEGIN');
$s1->query_safe("SELECT todo_kafka.add_task('alice', 'first id, commits last')");
my $id1 = $s1->query_safe('SELECT max(id) FROM todo_kafka.outbox');
$id1 =~ s/\s+//g;

$node->safe_psql('postgres', "SELECT todo_kafka.add_task('alice', 'second id, commits first')");
my $ev = $s->events('task_events', count => 1, timeout => 30);
is(scalar @$ev, 1, 'the later id is published while the earlier one is uncommitted');
is($ev->[0]{event}{data}{task_data}{title}, 'second id, commits first', 'it is session 2');
ok(TodoKafkaTest::wait_outbox_published($node, 30), "session 2's row acked and deleted");
cmp_ok($id1, '>', 0, 'session 1 holds a lower outbox id');

# give the relay a few passes past the gap, then commit session 1
sleep 1;
$s1->query_safe('COMMIT');
$s1->quit;

$ev = $s->events('task_events', count => 2, timeout => 30);
is(scalar @$ev, 2, 'both published');
ok((grep { $_->{event}{data}{task_data}{title} eq 'first id, commits last' } @$ev),
	'the out-of-order commit is published');
ok(TodoKafkaTest::wait_outbox_published($node, 30), 'outbox empty');

is($relay->stop, 0, 'relay stops cleanly');
$s->stop;
done_testing();
