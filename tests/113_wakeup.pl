# tests/113_wakeup.pl: a sleeping relay is woken by NOTIFY, not by its poll.
#
# DESIGN.md's NOTIFY trap: writers NOTIFY only while the relay announces
# that it sleeps (it holds the sleep advisory lock), and the relay's timed
# poll is only a safety net.  Here that poll is ten minutes, so a change
# published within seconds of its commit can only have been woken by the
# writer's NOTIFY at commit; the relay's /metrics must say so
# (todo_kafka_relay_wakeups_total{reason="notify"}) and never "poll".  The
# relay goes back to sleep after each such pass, several times over.

use strict;
use warnings;

use Test::More;
use TodoKafkaTest;
use DevBroker;

my $dir = $PostgreSQL::Test::Utils::tmp_check;
open my $fh, '>', "$dir/t113.conf" or die;
print $fh "poll_interval_ms = 600000\n";
close $fh;

my $s = TodoKafkaTest->start_stack('t113', metrics => 1,
	relay_args => [ '-c', "$dir/t113.conf" ]);
my ($node, $relay, $port) = @$s{qw(node relay port)};

# the relay holds the sleep lock (todo_kafka.h: class 29803, key 2)
sub relay_asleep
{
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 29803 AND objid = 2 AND granted") eq '1';
}

sub wait_asleep { return wait_until('the relay asleep', \&relay_asleep, 30, 0.1); }

sub wakeups
{
	my $m = TodoKafkaTest::http_get("127.0.0.1:$port", '/metrics');
	my %w = $m =~ /^todo_kafka_relay_wakeups_total\{reason="(\w+)"\} (\d+)$/mg;
	return \%w;
}

for my $round (1 .. 3)
{
	ok(wait_asleep(), "round $round: the relay sleeps, holding the sleep lock");
	# let the re-check pass that follows the lock finish, so the commit
	# below can only be seen through its NOTIFY (a commit the re-check
	# still catches counts as "recheck", which is right too)
	select(undef, undef, undef, 0.5);
	$node->safe_psql('postgres', "SELECT todo_kafka.add_task('grace', 'wake up $round')");
	ok(TodoKafkaTest::wait_outbox_published($node, 20),
		"round $round: published long before the 10-minute poll");
	my $w = wakeups();
	is(($w->{notify} // 0) + ($w->{recheck} // 0), $round,
		"round $round: woken by NOTIFY (or the re-check after the lock)");
}
my $w = wakeups();
cmp_ok($w->{notify} // 0, '>=', 1, 'NOTIFY woke the relay');
ok(!defined $w->{poll}, 'no wake-up was left to the safety-net poll');

my $ev = $s->events('task_events', count => 3, timeout => 30);
is_deeply([ sort map { $_->{event}{data}{task_data}{title} } @$ev ],
	[ 'wake up 1', 'wake up 2', 'wake up 3' ], 'all three published once');

is($relay->stop, 0, 'relay stops cleanly');
$s->stop;
done_testing();
