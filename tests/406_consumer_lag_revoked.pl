# tests/406_consumer_lag_revoked.pl: /metrics reports consumer lag only for
# the partitions a process consumes (found by tests/soak).
#
# Two todo-kafka-audit processes in one group: the first has all three
# partitions of the audit topic, the second joins and takes some of them.
# Once both have caught up, each partition's todo_kafka_consumer_lag series
# is on exactly one process's /metrics.  Before the fix, a revoked
# partition kept its last lag value on the first process for good (the
# soak saw 24 messages of lag on a partition given up minutes before).

use strict;
use warnings;

use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep);
use TodoKafkaTest;

my $s = TodoKafkaTest->start_stack('t406');
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};

my $dir = tempdir(CLEANUP => 1);
open my $fh, '>', "$dir/audit.conf" or die $!;
print $fh "stats_interval_ms = 300\n";
close $fh;
my (%port, %svc);
sub start_audit
{
	my ($n) = @_;
	$port{$n} = TodoKafkaTest::free_port();
	$svc{$n} = TodoKafkaTest->start_service('audit', $node, $kafka, name => "audit-$n",
		args => [ '-c', "$dir/audit.conf", '--metrics-listen', "127.0.0.1:$port{$n}" ]);
}

# partition => lag, from one process's /metrics
sub lags
{
	my ($n) = @_;
	my $m = TodoKafkaTest::http_get("127.0.0.1:$port{$n}", '/metrics') // '';
	return { map { $_->[0] => $_->[1] }
		  map { [/partition="(\d+)"[^}]*\} (\S+)/] } grep { /^todo_kafka_consumer_lag\{/ } split /\n/, $m };
}

start_audit(1);
ok($svc{1}->wait_log(qr/assigned .*\[0\].*\[1\].*\[2\]/), 'the first process has all three partitions');
$s->sql(join '', map { "SELECT 1 FROM todo_kafka.add_task('alice', 'task $_');" } 1 .. 30);
ok(TodoKafkaTest::wait_until('lag for three partitions on the first process',
	sub { keys %{ lags(1) } == 3 }, 30), 'the first process reports lag for its three partitions');

start_audit(2);
ok($svc{1}->wait_log(qr/revoked/, 60), 'the second process joins: the first gives partitions up');
ok($svc{2}->wait_log(qr/assigned/, 60), 'the second has partitions');
$s->sql(join '', map { "SELECT 1 FROM todo_kafka.add_task('bob', 'task $_');" } 1 .. 30);
ok(TodoKafkaTest::wait_until('the audit rows', sub { $s->sql('SELECT count(*) FROM todo_kafka.audit_log') == 60 }, 60),
	'both processes caught up');
sleep(7);    # the lag is counted from the committed offset (auto commit every 5 s)
my ($a, $b) = (lags(1), lags(2));
note('first: ' . join(',', map { "$_=$a->{$_}" } sort keys %$a) . '; second: '
	  . join(',', map { "$_=$b->{$_}" } sort keys %$b));
my %seen;
$seen{$_}++ for keys %$a, keys %$b;
is_deeply([ sort keys %seen ], [ 0, 1, 2 ], 'every partition has a lag series');
is(scalar(grep { $_ > 1 } values %seen), 0, '... on one process only');
is(scalar(grep { $_ != 0 } values %$a, values %$b), 0, '... and every lag is 0');

is($svc{$_}->stop, 0, "audit-$_: SIGTERM, exit 0") for 1, 2;
is($relay->stop, 0, 'relay: exit 0');
$s->stop;
done_testing();
