# tests/202_reminder_two_relays.pl: with a leader and a standby, every
# reminder fires exactly once, even when the leader dies among due times.
#
# 30 reminders fall due 0.1 s apart; while they fire the leader is killed
# (SIGKILL, possibly inside a firing transaction) and the standby takes
# over.  Every reminder ends sent or missed in the reminders table, and on
# Kafka each reminder_id has exactly one fired event id.  The relay is
# at-least-once into Kafka: rows the dead leader had published but not yet
# deleted are sent again by the new leader with the same event id (the id
# consumers deduplicate by), so the test counts distinct event ids; a
# double firing would show as a second id.  Raw message counts are noted.

use strict;
use warnings;

use Test::More;
use TodoKafkaTest;
use DevBroker;

my $N = 30;
my $s = TodoKafkaTest->start_stack('t202', relay_name => 'relayA', leads => 'A leads');
my ($node, $t, $kafka, $a) = @$s{qw(node topics kafka relay)};
my $b = TodoKafkaTest->start_relay($node, $kafka, name => 'relayB');
ok($b->wait_log(qr/waiting as standby/), 'B waits as standby');

# reminders due from 2 s to 2 + (N - 1) * 0.1 s from now (offset 1 s)
$node->safe_psql('postgres',
	"SELECT todo_kafka.add_task('carol', 'task ' || g,"
	  . " p_due_date => now() + interval '3 s' + g * interval '100 ms',"
	  . " p_reminder_offsets => '{1 second}', p_notification_methods => '{push}')"
	  . " FROM generate_series(0, $N - 1) g");
is($node->safe_psql('postgres', "SELECT count(*) FROM todo_kafka.reminders WHERE status = 'scheduled'"),
	$N, "$N reminders scheduled");

# kill the leader once about a third of them are due
$node->poll_query_until('postgres',
	"SELECT count(*) >= $N / 3 FROM todo_kafka.reminders WHERE scheduled_time <= clock_timestamp()")
  or die 'reminders never fell due';
$a->kill9;
ok($b->wait_log(qr/acquired leadership/, 15), 'B takes over');

ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM todo_kafka.reminders WHERE status = 'scheduled'"),
	'every reminder fired');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM todo_kafka.reminders WHERE status IN ('sent', 'missed') AND fired_at IS NOT NULL"),
	$N, 'reminders table: all sent or missed');
ok(TodoKafkaTest::wait_outbox_published($node), 'outbox emptied');

my $ev = $s->events('reminders', count => 2 * $N, timeout => 60);
my (%ids, %types, $raw);
for my $m (grep { ($_->{event}{type} // '') eq 'task.reminder' } @$ev)
{
	my $r = $m->{event}{data}{reminder_id};
	$ids{$r}{ $m->{event}{id} } = 1;
	$types{$r}{ $m->{event}{data}{event_type} } = 1;
	$raw++;
}
my @rids = split /\n/, $node->safe_psql('postgres', 'SELECT reminder_id FROM todo_kafka.reminders');
is(scalar(grep { $ids{$_} } @rids), $N, 'every reminder has a fired event on Kafka');
is_deeply([ grep { keys %{ $ids{$_} // {} } != 1 } @rids ], [],
	'no reminder fired twice (one event id each)');
is_deeply([ grep { keys %{ $types{$_} // {} } != 1 } @rids ], [],
	'no reminder both sent and missed');
is(scalar(keys %ids), $N, 'no fired event for an unknown reminder');
note("fired messages on Kafka: $raw for $N reminders (resends of one id count once)");
my %status = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
	'SELECT reminder_id, status FROM todo_kafka.reminders');
is_deeply([ grep { !$types{$_}{ $status{$_} } } @rids ], [],
	'Kafka event type matches the table status');

is($b->stop, 0, 'B stops cleanly');
unlike($b->log_text, qr/ERROR/, 'no errors logged by B');
$s->stop;
done_testing();
