# tests/106_leader.pl: one leader per database; a standby takes over.
#
# The second relay waits as standby; when the leader is killed with
# SIGKILL the standby takes leadership within 5 s and streams new writes.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time);
use TodoKafkaTest;
use DevBroker;

my $s = TodoKafkaTest->start_stack('t106', relay_name => 'relayA', leads => 'A leads');
my ($node, $t, $kafka, $a) = @$s{qw(node topics kafka relay)};
my $b = TodoKafkaTest->start_relay($node, $kafka, name => 'relayB');
ok($b->wait_log(qr/waiting as standby/), 'B waits as standby');

$node->safe_psql('postgres', "SELECT todo_kafka.add_task('erin', 'led by A')");
ok(TodoKafkaTest::wait_outbox_published($node, 30), 'A streams');
unlike($b->log_text, qr/acquired leadership/, 'B did not lead');

my $killed = time;
$a->kill9;
ok($b->wait_log(qr/acquired leadership/, 10), 'B takes over');
my $took = time - $killed;
cmp_ok($took, '<=', 5, sprintf('within 5 s (%.2f s)', $took));

$node->safe_psql('postgres', "SELECT todo_kafka.add_task('erin', 'led by B')");
my $ev = $s->events('task_events', count => 2, timeout => 30, drained => 'B streams');
is_deeply([ sort map { $_->{event}{data}{task_data}{title} } @$ev ], [ 'led by A', 'led by B' ],
	'both events published');

is($b->stop, 0, 'B stops cleanly');
$s->stop;
done_testing();
