# tests/114_extension_update.pl: a relay started before ALTER EXTENSION UPDATE.
#
# The relay of this version needs extension 0.5.0 (the rotating outbox and
# its position functions).  Started against a database still at 0.4.0 it
# says so in one line, naming the missing function and the fix, and keeps
# retrying; once the operator runs ALTER EXTENSION todo_kafka UPDATE it
# publishes what was written meanwhile, stores its position (so published
# partitions are truncated) and sends nothing twice across a restart.

use strict;
use warnings;

use Test::More;
use TodoKafkaTest;
use DevBroker;

my $s = TodoKafkaTest->start_stack('t114', relay => 0);
my ($node, $kafka) = @$s{qw(node kafka)};

# the same database as a 0.4.0 installation would have it
$node->safe_psql('postgres', 'DROP EXTENSION todo_kafka CASCADE');
$node->safe_psql('postgres', "CREATE EXTENSION todo_kafka VERSION '0.4.0'");
TodoKafkaTest::use_topics($node, 't114');
$node->safe_psql('postgres', "SELECT todo_kafka.add_task('ivy', 'written at 0.4.0')");

my $relay = TodoKafkaTest->start_relay($node, $kafka);
ok($relay->wait_log(qr/does not exist: the extension is older than [0-9.]+; run ALTER EXTENSION todo_kafka UPDATE/, 30),
	'the relay names the missing function and the fix');
unlike($relay->log_text, qr/FATAL|panic/i, 'and keeps running');

$node->safe_psql('postgres', 'ALTER EXTENSION todo_kafka UPDATE');
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'todo_kafka'"),
	'0.5.0', 'updated to 0.5.0');
$node->safe_psql('postgres', "SELECT todo_kafka.add_task('ivy', 'written at 0.5.0')");
ok(TodoKafkaTest::wait_outbox_published($node, 60), 'the relay publishes once the extension is updated');

my $ev = $s->events('task_events', count => 2, timeout => 30);
is_deeply([ sort map { $_->{event}{data}{task_data}{title} } @$ev ],
	[ 'written at 0.4.0', 'written at 0.5.0' ], 'both changes published');

# the position is stored by the running relay, not only at shutdown
ok($s->wait_sql('SELECT count(*) > 0 FROM todo_kafka.relay_position WHERE snapshot IS NOT NULL', 't', 10),
	'the relay stores its position after the update');

# a restart starts from that position: nothing is sent twice
is($relay->stop, 0, 'relay stops cleanly');
$relay = TodoKafkaTest->start_relay($node, $kafka);
ok($relay->wait_log(qr/acquired leadership/, 30), 'restarted relay leads');
$node->safe_psql('postgres', "SELECT todo_kafka.add_task('ivy', 'after restart')");
ok(TodoKafkaTest::wait_outbox_published($node, 30), 'published after the restart');
$ev = $s->events('task_events', count => 3, timeout => 30);
is_deeply([ sort map { $_->{event}{data}{task_data}{title} } @$ev ],
	[ 'after restart', 'written at 0.4.0', 'written at 0.5.0' ], 'each change exactly once');

is($relay->stop, 0, 'relay stops cleanly');
$s->stop;
done_testing();
