# tests/501_dlq.pl: todo-kafka-dlq, the operator's dead-letter tool.
#
# The audit service dead-letters a real audit record the database refuses
# (a check on mallory's rows) and a forged record produced with kcat; the
# tool lists both with reason, origin and age, shows one in full, replays
# the real one once the cause is fixed (the audit service then appends it)
# with the original message's headers (correlation-id, traceparent, ...: the
# envelope keeps them, valid under the dead-letter schema),
# refuses a second replay unless --force (which the service absorbs:
# idempotent by event id), puts a relay poison row back into the outbox
# (the relay publishes it) once, purges, and exits 2 on usage errors.

use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use Test::More;
use Time::HiRes qw(time sleep);
use TodoKafkaTest;

# the cause: a check that refuses mallory's audit rows for good (SQLSTATE 23514)
my $s = TodoKafkaTest->start_stack('t501', setup_sql => q{CREATE FUNCTION public.refuse_mallory() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.user_id = 'mallory' THEN
			RAISE EXCEPTION 'mallory is not audited today' USING ERRCODE = 'check_violation';
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER refuse_mallory BEFORE INSERT ON todo_kafka.audit_log
		FOR EACH ROW EXECUTE FUNCTION public.refuse_mallory()});
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};
my $ops = TodoKafkaTest::service_login($node, 'dlq');

my $audit = TodoKafkaTest->start_service('audit', $node, $kafka);
ok($audit->wait_log(qr/assigned \S+/), 'audit assigned');

my $bin = TodoKafkaTest::repo_root() . '/tools/dlq/todo-kafka-dlq';

# run the tool as the operator role; returns (exit code, stdout, stderr)
sub dlq
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $bin, '-d', $ops, '-b', $kafka->bootstrap, @args ],
		'<', \'', , '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	return ($? >> 8, $out, $err);
}

# a real record the database refuses (with a correlation id and a trace
# context, which travel as headers), and a forged one
my $traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
my $task = $s->sql("SET todo_kafka.correlation_id = 'corr-mallory';
	SET todo_kafka.traceparent = '$traceparent';
	SELECT id FROM todo_kafka.add_task('mallory', 'Sneaky')");
$s->sql("SELECT id FROM todo_kafka.add_task('alice', 'Fine')");
my $forged = encode_json({ specversion => '1.0', id => 'f0000000-0000-4000-8000-000000000009',
	source => '/forger', type => 'audit.deleted', time => '2026-01-01T00:00:00Z',
	data => { event_id => 'f0000000-0000-4000-8000-000000000009', operation => 'DELETE',
		event_type => 'deleted', timestamp => '2026-01-01T00:00:00Z' } });
my ($ok, $perr) = $kafka->produce($t->{audit}, [$forged], key => 'forged-key', partition => 1);
ok($ok, 'forged audit record produced with kcat') or diag($perr);
ok(wait_until('two dead letters', sub { $kafka->end_offsets($t->{dead_letter}) >= 2 }),
	'both reached the dead-letter topic') or diag("audit log:\n" . $audit->log_text);
ok($s->wait_sql("SELECT count(*) = 1 FROM todo_kafka.audit_log WHERE user_id = 'alice'", 't'),
	'the good record was appended') or diag("audit log:\n" . $audit->log_text);

# list
my ($rc, $out, $err) = dlq('list');
is($rc, 0, 'list exits 0') or diag($err);
like($out, qr/^ID\s+AGE\s+ERROR\s+ORIGIN\s+REPLAYED\s+REASON/m, 'list has a header');
my ($real) = $out =~ /^(\d+:\d+)\s+\S+\s+PERMANENT\s+\Q$t->{audit}\E\[\d+\]\@\d+\s+no\s+.*mallory is not audited today/m;
my ($fake) = $out =~ /^(\d+:\d+)\s+\S+\s+INVALID_INPUT\s+\Q$t->{audit}\E\[1\]\@\d+\s+no\s+.*not an audit record made by the relay/m;
ok($real, "the refused record is listed as $real") or diag($out);
ok($fake, "the forged record is listed as $fake") or diag($out);
like($out, qr/\(2 dead letters\)/, 'two dead letters');
($rc, $out) = dlq('list', '--origin-topic', 'no.such.topic');
like($out, qr/\(0 dead letters\)/, 'list filters by origin topic');
($rc, $out) = dlq('list', '--since', '1h');
like($out, qr/\(2 dead letters\)/, 'list filters by time');

# show
($rc, $out, $err) = dlq('show', $real);
is($rc, 0, 'show exits 0') or diag($err);
like($out, qr/reason:\s+.*mallory is not audited today/, 'show gives the reason');
like($out, qr/key:\s+\Q$task\E/, 'and the original key');
like($out, qr/original value .*"user_id":"mallory"/s, 'and the original message');
my ($origin_partition, $origin_offset) = $out =~ /origin position: partition (\d+), offset (\d+)/;
my ($envelope) = grep { ($_->{event}{data}{error} // '') eq 'PERMANENT' }
  @{ TodoKafkaTest::consume_events($kafka, $t->{dead_letter}) };
is((TodoKafkaTest::validate_schemas([ 'dead-letter.v1', $envelope->{payload} ]))[0], 'ok',
	'the envelope, with the original headers, fits the dead-letter schema');
($rc, undef, $err) = dlq('show', '9:999');
is($rc, 1, 'show of an unknown id exits 1');

# fix the cause, replay once
$s->sql('DROP TRIGGER refuse_mallory ON todo_kafka.audit_log');
($rc, $out, $err) = dlq('replay', '--id', $real);
is($rc, 0, 'replay exits 0') or diag("$out\n$err");
like($out, qr/\Q$real\E: replayed to \Q$t->{audit}\E\[\d+\] \(key \Q$task\E\)/, 'replayed to its topic with its key');
ok($s->wait_sql("SELECT count(*) = 1 FROM todo_kafka.audit_log WHERE user_id = 'mallory'", 't'),
	'the audit service handled the replayed record') or diag("audit log:\n" . $audit->log_text);
is($s->sql("SELECT count(*) FROM todo_kafka.audit_log WHERE user_id = 'mallory' AND task_id = '$task'"), 1,
	'as the original record of that task');

# the replay carries the original message's headers, in order, and
# dlq-replayed-from; nothing else
my $audit_msgs = TodoKafkaTest::consume_events($kafka, $t->{audit});
my ($original) = grep { $_->{partition} == $origin_partition && $_->{offset} == $origin_offset } @$audit_msgs;
my ($replayed) = grep { ($_->{hdr}{'dlq-replayed-from'} // '') eq $real } @$audit_msgs;
ok($original && $replayed, 'the original and the replayed message are on the audit topic')
  or diag(explain($audit_msgs));
is($replayed->{hdr}{'correlation-id'}, 'corr-mallory', 'the replay keeps correlation-id');
is($replayed->{hdr}{traceparent}, $traceparent, 'and traceparent');
is_deeply($replayed->{headers}, [ @{ $original->{headers} }, 'dlq-replayed-from', $real ],
	'and every other header of the original, in order')
  or diag(explain({ original => $original->{headers}, replayed => $replayed->{headers} }));

# a second replay is refused
($rc, $out, $err) = dlq('replay', '--id', $real);
is($rc, 1, 'a second replay exits 1');
like($err, qr/\Q$real\E: refused: dead letter \Q$real\E was already replayed.*--force/, 'and says why');
($rc, $out, $err) = dlq('replay', '--id', $real, '--force');
is($rc, 0, '--force replays again') or diag($err);
sleep(2);
is($s->sql("SELECT count(*) FROM todo_kafka.audit_log WHERE user_id = 'mallory'"), 1,
	'the service absorbs the forced repeat (idempotent by event id)');
($rc, $out) = dlq('list');
like($out, qr/^\Q$real\E\s+\S+\s+PERMANENT\s+\S+\s+2x/m, 'list shows it replayed twice');

# a relay poison row goes back into the outbox, once
$s->sql(q{INSERT INTO todo_kafka.dead_letters (outbox_id, event_id, topic, reason, row_data)
	VALUES (4242, 'c0000000-0000-4000-8000-000000000001', 't501.notifications', 'Broker: Message size too large',
	  json_build_object('id', 4242, 'event_id', 'c0000000-0000-4000-8000-000000000001', 'kind', 'custom',
	    'stream', 'notifications', 'event_type', 'test.requeued', 'source', '/todo_kafka/test', 'key', 'k-poison',
	    'actor', 'tester', 'correlation_id', 'corr-1', 'after', json_build_object('n', 1)))});
($rc, $out) = dlq('list');
my ($row) = $out =~ /^(db:\d+)\s+\S+\s+POISON_ROW\s+t501\.notifications \(outbox row 4242\)/m;
ok($row, "the poison row is listed as $row") or diag($out);
($rc, $out, $err) = dlq('replay', '--id', $row);
is($rc, 0, 'poison row replayed') or diag($err);
like($out, qr/re-queued as outbox row \d+/, 'into the outbox');
my $msgs = TodoKafkaTest::consume_events($kafka, $t->{notifications}, count => 1, timeout => 30);
ok((grep { ($_->{event}{type} // '') eq 'test.requeued' && ($_->{key} // '') eq 'k-poison' } @$msgs),
	'the relay published the re-queued row');
($rc, undef, $err) = dlq('replay', '--id', $row);
is($rc, 1, 'a second re-queue is refused');
like($err, qr/already replayed/, 'saying so');

# usage errors exit 2
($rc, undef, $err) = dlq('frobnicate');
is($rc, 2, 'unknown command exits 2');
($rc, undef, $err) = dlq('replay');
is($rc, 2, 'replay without a selection exits 2');
like($err, qr/needs a selection/, 'saying what is missing');
($rc, undef, $err) = dlq('purge');
is($rc, 2, 'purge without --older-than exits 2');
($rc, $out) = dlq('--help');
is($rc, 0, '--help exits 0');
like($out, qr/Examples:.*replay --id=/s, '--help has examples');

# purge: nothing is older than a day; everything is older than 0 seconds
($rc, $out, $err) = dlq('purge', '--older-than', '1 day');
is($rc, 0, 'purge exits 0') or diag($err);
like($out, qr/purged 0 dead letters/, 'nothing that young is purged');
($rc, $out, $err) = dlq('purge', '--older-than', '0');
like($out, qr/purged 2 dead letters of topic .* and 1 row of todo_kafka\.dead_letters/, 'purged everything');
($rc, $out) = dlq('list');
like($out, qr/\(0 dead letters\)/, 'purged dead letters are no longer listed');

is($audit->stop, 0, 'audit stops');
is($relay->stop, 0, 'relay stops');
$kafka->stop;
$node->stop;
done_testing();
