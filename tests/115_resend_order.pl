# tests/115_resend_order.pl: a relay starting over never sends an older
# event of a task after a newer one (guarantee 3, for the last copies too).
#
# Found by tests/soak: after a broker outage and a PostgreSQL restart the
# read model kept older versions of a few tasks (and deleted tasks).  A
# relay that starts over at its settled position (reconnect, failed
# statement, rescan) sends again the rows acked after that position, but
# skipped the rows still in flight: task X's update A (acked, its window
# held open by a row of another partition still in flight) went out again
# AFTER X's newer update B (in flight), so the topic held A, B, A' and the
# projector, which keeps the highest offset, ended at A.  The relay now
# starts over only once nothing is in flight.
#
# Here: X and Y on partitions led by brokers 1 and 2; broker 2 down; A
# updates X and Y in one transaction (X's part acked, Y's in flight); broker
# 1 down; B updates X (in flight); PostgreSQL restarted (the relay starts
# over); brokers up.  On X's partition the last copy of A must come before
# the last copy of B.
use strict;
use warnings;

use Test::More;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(sleep);
use TodoKafkaTest;
use DevBroker;

my $s = TodoKafkaTest->start_stack('t115', metrics => 1);
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};
my $sql = sub { $node->safe_psql('postgres', $_[0]) };

# two tasks on different partitions of the task events topic
my (%part, @ids);
for my $i (1 .. 12)
{
	push @ids, $sql->("SELECT id FROM todo_kafka.add_task('u115', 'task $i')");
}
my $ev = $s->events('task_events', count => 12, timeout => 60);
$part{ $_->{key} } = $_->{partition} for @$ev;
my $x = $ids[0];
my ($y) = grep { $part{$_} != $part{$x} } @ids;
ok(defined $y, 'two tasks on different partitions');
my ($px, $py) = ($part{$x}, $part{$y});

# every topic: X's partition led by broker 1, Y's by broker 2, the other by 3
my %lead = ($px => 1, $py => 2);
my ($pz) = grep { !exists $lead{$_} } 0 .. 2;
$lead{$pz} = 3;
for my $topic (sort values %$t)
{
	for my $p (sort keys %lead)
	{
		like($kafka->command("leader $topic $p $lead{$p}"), qr/^ok/, "$topic [$p] led by broker $lead{$p}")
		  or BAIL_OUT('cannot move a leader');
	}
}
sleep(2);    # the relay's producer learns the new leaders

# X's copies on its partition in offset order (the title of each), read with
# kcat from that partition only (others may be led by a broker that is down)
sub x_titles
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'kcat', '-b', $kafka->bootstrap, '-C', '-J', '-q', '-e', '-o', 'beginning',
			'-t', $t->{task_events}, '-p', $px ], '<', '/dev/null', '>', \$out, '2>', \$err,
		IPC::Run::timeout(30));
	return map { $_->{payload} =~ /"title":\s*"(\w+)"/ ? $1 : '?' }
	  grep { ($_->{key} // '') eq $x } map { JSON::PP->new->decode($_) } grep { /^\{/ } split /\n/, $out;
}

sub in_flight
{
	my ($text) = TodoKafkaTest::http_get("127.0.0.1:$s->{port}", '/metrics');
	return ($text // '') =~ /^todo_kafka_relay_rows_in_flight (\d+)/m ? $1 : -1;
}

like($kafka->command('down 2'), qr/^ok/, "broker 2 (Y's partitions) down");
$sql->("BEGIN; SELECT todo_kafka.update_task('u115', '$x', p_title => 'A'); "
	. "SELECT todo_kafka.update_task('u115', '$y', p_title => 'A'); COMMIT");    # one window
ok(TodoKafkaTest::wait_until('A of X on the topic', sub { grep { $_ eq 'A' } x_titles() }, 60),
	"A of X acknowledged while A of Y stays in flight");
like($kafka->command('down 1'), qr/^ok/, "broker 1 (X's partitions) down");
$sql->("SELECT todo_kafka.update_task('u115', '$x', p_title => 'B')");
ok(TodoKafkaTest::wait_until('B in flight', sub { in_flight() >= 2 }, 30), 'B of X in flight too');

$node->restart;    # the relay reconnects and starts over at its settled position
ok($relay->wait_log(qr/acquired leadership(?:.*\n)+.*acquired leadership/, 60), 'the relay leads again');
sleep(2);
like($kafka->command('up all'), qr/^ok/, 'brokers up');
ok(TodoKafkaTest::wait_outbox_published($node, 60), 'everything published');

# X's messages on its partition, in offset order: the titles of their copies
my @x = x_titles();
note("X on the topic: @x");
my %last;
$last{ $x[$_] } = $_ for 0 .. $#x;
ok(defined $last{B} && $last{A} < $last{B}, 'the last copy of A comes before the last copy of B')
  or diag("X's copies in offset order: @x");
is($x[-1], 'B', "the newest event of X is the last one on its partition");

is($relay->stop, 0, 'relay stops cleanly');
$s->stop;
done_testing();
