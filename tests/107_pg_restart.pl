# tests/107_pg_restart.pl: PostgreSQL restarted under the relay.
#
# The relay notices the lost session, reconnects with backoff, takes the
# leadership again, re-LISTENs and rescans: writes made right after the
# restart are published.

use strict;
use warnings;

use Test::More;
use TodoKafkaTest;
use DevBroker;

my $s = TodoKafkaTest->start_stack('t107');
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};

$node->safe_psql('postgres', "SELECT todo_kafka.add_task('frank', 'before restart')");
ok(TodoKafkaTest::wait_outbox_published($node, 30), 'first event delivered');

$node->restart;
$node->safe_psql('postgres', "SELECT todo_kafka.add_task('frank', 'after restart')");
ok($relay->wait_log(qr/lost connection to PostgreSQL/, 30), 'relay noticed the restart');
ok($relay->wait_log(qr/acquired leadership.*\n(?:.*\n)*.*acquired leadership/, 30),
	'relay reconnected and leads again');
ok(TodoKafkaTest::wait_outbox_published($node, 30), 'row written after the restart delivered');
$node->safe_psql('postgres', "SELECT todo_kafka.add_task('frank', 'woken by notify')");
ok(TodoKafkaTest::wait_outbox_published($node, 30), 'LISTEN works again');

my $ev = $s->events('task_events', count => 3, timeout => 30);
is_deeply([ sort map { $_->{event}{data}{task_data}{title} } @$ev ],
	[ 'after restart', 'before restart', 'woken by notify' ], 'all three published once');

is($relay->stop, 0, 'relay stops cleanly');
$s->stop;
done_testing();
