# tests/104_brokers_down.pl: all brokers down for 20 s while writing.
#
# Rows wait in the outbox, /healthz says degraded, nothing is dropped: once
# the brokers are back every task event arrives, each exactly once.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);
use TodoKafkaTest;
use DevBroker;

my $s = TodoKafkaTest->start_stack('t104', metrics => 1);
my ($node, $t, $kafka, $relay, $port) = @$s{qw(node topics kafka relay port)};

$node->safe_psql('postgres', "SELECT todo_kafka.add_task('carol', 'before the outage')");
ok(TodoKafkaTest::wait_outbox_published($node, 30), 'first event delivered');

like($kafka->command('down all'), qr/^ok/, 'all brokers down');
my $start = time;
my $n = 0;
my $degraded = 0;
while (time - $start < 20)
{
	$node->safe_psql('postgres', "SELECT todo_kafka.add_task('carol', 'during outage $n')");
	$n++;
	my ($body, $code) = TodoKafkaTest::http_get("127.0.0.1:$port", '/healthz');
	$degraded = 1 if defined $code && $code == 503 && $body =~ /degraded/;
	sleep(0.4);
}
ok($degraded, '/healthz said degraded during the outage');
cmp_ok(TodoKafkaTest::outbox_pending($node), '>', 0, 'rows wait in the outbox');
like($kafka->command('up all'), qr/^ok/, 'brokers up again');

my $ev = $s->events('task_events', count => $n + 1, timeout => 60, drained => 'outbox drained after the outage');
my %ids = map { $_->{event}{id} => 1 } @$ev;
is(scalar keys %ids, $n + 1, "all " . ($n + 1) . " events delivered");
is(scalar @$ev, $n + 1, 'none twice (idempotent producer)');
my ($body, $code) = TodoKafkaTest::http_get("127.0.0.1:$port", '/healthz');
is($code, 200, 'healthy again');

is($relay->stop, 0, 'relay stops cleanly');
$s->stop;
done_testing();
