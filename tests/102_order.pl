# tests/102_order.pl: per-task order with several concurrent writers.
#
# pgbench runs 4 clients that each bump a per-task counter (description)
# of 5 tasks at random, while the relay streams.  The row lock serializes
# changes to one task, so each task's counter values 1..N are its commit
# order; on the task topic (key = task id) they must arrive exactly in
# that order, and so must the audit records.

use strict;
use warnings;

use IPC::Run;
use Test::More;
use TodoKafkaTest;
use DevBroker;

my $s = TodoKafkaTest->start_stack('t102');
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};

$node->safe_psql('postgres',
	"SELECT todo_kafka.add_task('bob', 'task' || g, '0') FROM generate_series(1, 5) g");

my $script = "$PostgreSQL::Test::Utils::tmp_check/102_bump.sql";
open my $fh, '>', $script or die;
print $fh "\\set t random(1, 5)\n"
  . "UPDATE todo_kafka.tasks SET description = (description::int + 1)::text WHERE title = 'task' || :t;\n";
close $fh;
my ($out, $err) = ('', '');
ok(IPC::Run::run([ 'pgbench', '-n', '-c', '4', '-j', '2', '-t', '100', '-f', $script,
	'-h', $node->host, '-p', $node->port, 'postgres' ], '>', \$out, '2>', \$err),
	'pgbench: 4 writers x 100 updates') or diag($err);

ok(TodoKafkaTest::wait_outbox_published($node, 60), 'outbox drained');
my $total = 5 + 400;
my $ev = $s->events('task_events', count => $total, timeout => 60);
is(scalar @$ev, $total, "all $total task events published once");

my (%seq, %audit);
for my $m (@$ev)
{
	push @{ $seq{ $m->{key} } }, $m->{event}{data}{task_data}{description};
}
my $au = $s->events('audit', count => $total, timeout => 60);
for my $m (@$au)
{
	push @{ $audit{ $m->{key} } }, $m->{event}{data}{after}{description};
}
is(scalar keys %seq, 5, 'five task keys');
for my $k (sort keys %seq)
{
	my @got = @{ $seq{$k} };
	is_deeply(\@got, [ 0 .. $#got ], "task $k: events in commit order (" . scalar(@got) . ')');
	is_deeply($audit{$k}, \@got, "task $k: audit records in the same order");
}

is($relay->stop, 0, 'relay stops cleanly');
$s->stop;
done_testing();
