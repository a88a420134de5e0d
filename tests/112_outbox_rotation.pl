# tests/112_outbox_rotation.pl: the rotating outbox (0.5.0) under the relay.
#
# Published rows are not deleted: the relay stores its position and whole
# partitions are emptied with TRUNCATE (extension/sql/04_outbox_capture.sql).  Checked here:
#  - a partition whose rows are all published is truncated;
#  - a partition that holds the row of a writer still inside its
#    transaction is kept (truncating it would lose that row at commit),
#    and the late commit is published, then the partition truncated;
#  - a relay restarted after SIGTERM starts at the stored position: it
#    sends nothing twice.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep);
use TodoKafkaTest;
use DevBroker;

my $s = TodoKafkaTest->start_stack('t112', metrics => 1);
my ($node, $t, $kafka, $relay, $port) = @$s{qw(node topics kafka relay port)};

sub part_rows
{
	my ($slot) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM todo_kafka.outbox_$slot");
}

sub wait_offsets
{
	my ($stream, $n) = @_;
	my $got = 0;
	wait_until("$n events on $stream", sub { ($got = $kafka->end_offsets($t->{$stream})) >= $n }, 60);
	return $got;
}

# session 1 takes the first outbox id (partition outbox_0) and stays open
my $s1 = $node->background_psql('postgres');
$s1->query_safe('BEGIN');
$s1->query_safe("SELECT todo_kafka.add_task('late', 'commits after two partitions filled')");
# (currval, not a read of the outbox: a reader would hold ACCESS SHARE on
# every partition until it commits, and no partition could be truncated)
my $late_id = $s1->query_safe("SELECT currval('todo_kafka.outbox_id_seq')");
$late_id =~ s/\s+//g;
is($node->safe_psql('postgres', "SELECT todo_kafka.outbox_slot($late_id)"), '0',
	'the open transaction holds a row of outbox_0');

# 9,000 more changes: the rest of outbox_0, all of outbox_1, part of outbox_2
my $N = 9000;
$node->safe_psql('postgres',
	"INSERT INTO todo_kafka.tasks (user_id, title) SELECT 'bulk', 'task ' || g FROM generate_series(1, $N) g");
is(wait_offsets('task_events', $N), $N, "$N events published");
is(wait_offsets('audit', $N), $N, "$N audit records published");
ok(TodoKafkaTest::wait_outbox_published($node, 60), 'nothing pending but the open transaction');
ok(wait_until('outbox_1 empty', sub { part_rows(1) == 0 }, 30), 'the published partition outbox_1 was truncated');
cmp_ok(part_rows(0), '>', 0, 'outbox_0 is kept while a writer of it is still open');
cmp_ok(part_rows(2), '>', 0, 'outbox_2, being filled, is kept');
# (the store's answer is collected asynchronously, shortly after the TRUNCATE)
ok(wait_until('a truncation counted', sub { (TodoKafkaTest::http_get("127.0.0.1:$port", "/metrics") // '')
		=~ /^todo_kafka_relay_outbox_truncations_total [1-9]/m }, 30), 'truncations counted');

# the late commit (an id far below what the relay has read) is published
$s1->query_safe('COMMIT');
$s1->quit;
is(wait_offsets('task_events', $N + 1), $N + 1, 'the late commit is published');
my $ev = $s->events('task_events', count => $N + 1, timeout => 60);
ok((grep { $_->{event}{data}{task_data}{title} eq 'commits after two partitions filled' } @$ev),
	'it is the late writer\'s event');
ok(wait_until('outbox_0 empty', sub { part_rows(0) == 0 }, 30), 'then outbox_0 is truncated too');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM todo_kafka.outbox'), '<', 4096,
	'the outbox holds less than one partition of rows');

# SIGTERM stores the position; the next relay starts there
is($relay->stop, 0, 'relay stops cleanly');
my $relay2 = TodoKafkaTest->start_relay($node, $kafka);
ok($relay2->wait_log(qr/acquired leadership/), 'a new relay leads');
$node->safe_psql('postgres', "SELECT todo_kafka.add_task('after', 'the restart')");
is(wait_offsets('task_events', $N + 2), $N + 2, 'the new change is published');
sleep(1);
is($kafka->end_offsets($t->{task_events}), $N + 2, 'nothing was sent twice');
is($kafka->end_offsets($t->{audit}), $N + 2, 'no audit record twice either');

is($relay2->stop, 0, 'relay stops cleanly');
$s->stop;
done_testing();
