# tests/402_audit_crash_and_group.pl: at-least-once without gaps.
#
# The audit consumer SIGKILLed in the middle of a stream of records and
# restarted leaves no missing and no duplicate rows and an intact chain;
# then two processes in one group split the partitions (each owns whole
# partitions) and together write every row once, and a member that leaves
# cleanly hands its partitions to the other.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time sleep);
use TodoKafkaTest;

my $s = TodoKafkaTest->start_stack('t402');
my ($node, $kafka, $relay) = @$s{qw(node kafka relay)};
sub wait_count
{
	my ($n, $timeout) = @_;
	my $c = 0;
	return 1 if wait_until("$n audit rows",
		sub { ($c = $s->sql('SELECT count(*) FROM todo_kafka.audit_log')) >= $n }, $timeout // 90);
	diag("audit_log has $c rows, expected $n");
	return 0;
}

# 3,000 changes on the topic before the consumer starts
$s->sql("SELECT count(todo_kafka.add_task('u' || (i % 50), 'task ' || i)) FROM generate_series(1, 3000) i");
ok(TodoKafkaTest::wait_outbox_published($node, 60), 'published');

# small batches so the kill lands mid-stream
$ENV{TODO_KAFKA_BATCH_SIZE} = 50;
my $audit = TodoKafkaTest->start_service('audit', $node, $kafka, name => 'audit-a');
wait_until('300 audit rows', sub { $s->sql('SELECT count(*) FROM todo_kafka.audit_log') >= 300 }, 60, 0.02);
$audit->kill9;
my $at_kill = $s->sql('SELECT count(*) FROM todo_kafka.audit_log');
cmp_ok($at_kill, '<', 3000, "killed mid-stream ($at_kill of 3000 rows)");

$audit = TodoKafkaTest->start_service('audit', $node, $kafka, name => 'audit-b');
ok(wait_count(3000), 'every row after the restart');
sleep(2);
is($s->sql('SELECT count(*), count(DISTINCT event_id) FROM todo_kafka.audit_log'), '3000|3000',
	'no missing and no duplicate rows');
is($s->sql('SELECT ok FROM todo_kafka.verify_audit()'), 't', 'the chain is intact');
is($s->sql('SELECT count(*) FROM (SELECT chain, max(seq) = count(*) AS dense FROM todo_kafka.audit_log GROUP BY chain) c WHERE dense'),
	$s->sql('SELECT count(DISTINCT chain) FROM todo_kafka.audit_log'), 'each chain is dense (1..n)');
is($s->sql('SELECT count(*) FROM todo_kafka.audit_log a JOIN todo_kafka.audit_log b
	ON a.chain = b.chain AND b.seq = a.seq + 1 WHERE b.kafka_offset <= a.kafka_offset'), 0,
	'chains follow Kafka offset order');
is($audit->stop, 0, 'stops cleanly');

# two processes, one group
my $p1 = TodoKafkaTest->start_service('audit', $node, $kafka, name => 'audit-p1');
ok($p1->wait_log(qr/assigned \S+\[0\] \S+\[1\] \S+\[2\]/), 'first member takes all three partitions');
my $p2 = TodoKafkaTest->start_service('audit', $node, $kafka, name => 'audit-p2');
ok($p2->wait_log(qr/consumer 0: assigned \S+\[\d\]/, 60), 'second member gets partitions');
ok($p1->wait_log(qr/consumer 0: revoked \S+\[\d\]/, 60), 'first member gives some up');
sleep(1);
my ($owned2) = $p2->log_text =~ /consumer 0: assigned (\S+\[\d\][^\n]*)/;
my ($revoked1) = $p1->log_text =~ /consumer 0: revoked (\S+\[\d\][^\n]*)/;
is($owned2, $revoked1, 'whole partitions moved from one member to the other');

$s->sql("SELECT count(todo_kafka.add_task('v' || (i % 50), 'more ' || i)) FROM generate_series(1, 1000) i");
ok(wait_count(4000), 'the group writes the new rows');
sleep(2);
is($s->sql('SELECT count(*), count(DISTINCT event_id) FROM todo_kafka.audit_log'), '4000|4000',
	'every row once');
is($s->sql('SELECT ok FROM todo_kafka.verify_audit()'), 't', 'chain intact with two writers');

# one member leaves cleanly: the other takes its partitions
is($p2->stop, 0, 'second member leaves cleanly');
ok($p1->wait_log(qr/assigned \S+\[\d\][^\n]*\n(?s:.*)assigned/, 60), 'first member takes them back');
$s->sql("SELECT count(todo_kafka.add_task('w' || (i % 50), 'last ' || i)) FROM generate_series(1, 300) i");
ok(wait_count(4300), 'rows flow after the member left');

# more consumers than partitions: a warning
my $p3 = TodoKafkaTest->start_service('audit', $node, $kafka, name => 'audit-p3',
	args => [ '--consumers', '4', '--group-prefix', 'x-' ]);
ok($p3->wait_log(qr/4 consumers but the topics have at most 3 partitions/), 'warns when N > partitions');
is($p3->stop, 0, 'four-thread process stops cleanly');

is($p1->stop, 0, 'first member stops');
is($relay->stop, 0, 'relay stops');
$s->stop;
done_testing();
