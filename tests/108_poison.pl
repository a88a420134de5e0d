# tests/108_poison.pl: a row Kafka refuses for good (guarantee 6).
#
# A published event larger than message.max.bytes (on a custom stream of the
# test's own, since publish() refuses the built-in streams) goes to the
# dead-letter topic as a small envelope with the reason in headers, the row
# moves to todo_kafka.dead_letters, and the events around it flow.

use strict;
use warnings;

use Test::More;
use TodoKafkaTest;
use DevBroker;

my $s = TodoKafkaTest->start_stack('t108', streams => ['big_events'],
	relay_args => [ '-X', 'message.max.bytes=20000' ]);
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};

$node->safe_psql('postgres', "SELECT todo_kafka.add_task('gina', 'before poison')");
my $poison_id = $node->safe_psql('postgres',
	"SELECT todo_kafka.publish('big_events', 'big-key', 'custom.big', jsonb_build_object('blob', repeat('x', 50000)))");
$node->safe_psql('postgres', "SELECT todo_kafka.add_task('gina', 'after poison')");

my $ev = $s->events('task_events', count => 2, timeout => 30, drained => 'outbox empty: nothing blocks');
is_deeply([ sort map { $_->{event}{data}{task_data}{title} } @$ev ],
	[ 'after poison', 'before poison' ], 'the other events flowed');

my $dl = $s->events('dead_letter', count => 1, timeout => 30);
is(scalar @$dl, 1, 'one dead letter');
my $d = $dl->[0];
is($d->{key}, 'big-key', 'dead letter keeps the key');
is($d->{hdr}{'dlq-origin-topic'}, $t->{big_events}, 'origin topic header');
is($d->{hdr}{'dlq-origin-event-id'}, $poison_id, 'origin event id header');
like($d->{hdr}{'dlq-reason'}, qr/too large/i, 'reason header');
is($d->{hdr}{'dlq-error'}, 'MSG_SIZE_TOO_LARGE', 'error header');
cmp_ok(length $d->{payload}, '<', 5000, 'envelope is small, not the payload');
is($d->{event}{data}{event_id}, $poison_id, 'envelope names the event');
is($d->{event}{data}{origin}, 'outbox_row', 'envelope says it stands for an outbox row');
is($d->{hdr}{'dlq-origin'}, 'outbox_row', 'origin kind header');
is_deeply([ TodoKafkaTest::validate_schemas([ 'dead-letter.v1', $d->{payload} ]) ], ['ok'],
	'the dead letter validates against schemas/dead-letter.v1.json');

my $row = $node->safe_psql('postgres',
	"SELECT event_id, topic, reason ~* 'too large', (row_data->>'kind') FROM todo_kafka.dead_letters");
is($row, "$poison_id|$t->{big_events}|t|custom", 'row kept in todo_kafka.dead_letters');
like($relay->log_text, qr/refused for good/, 'logged');

is($relay->stop, 0, 'relay stops cleanly');
$s->stop;
done_testing();
