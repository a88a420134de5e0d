# tests/620_admin_audit.pl: administrative operations audited, end to end
# (issue 18, part 6).
#
# The operator's dlq tool re-queues a relay poison row and purges dead
# letters; each is recorded in todo_kafka.admin_operations (who = the
# operator's login, what, outcome) and, through the outbox, the relay and
# todo-kafka-audit, as an admin.<operation> entry of the audit hash chain,
# next to the task changes; the chain still verifies, and every message
# on the audit topic validates against schemas/audit.v1.json.  Topic creation by
# the relay: tests/621_topic_create_audit.pl.

use strict;
use warnings;

use IPC::Run;
use Test::More;
use TodoKafkaTest;

my $s = TodoKafkaTest->start_stack('t620');
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};
my $ops = TodoKafkaTest::service_login($node, 'dlq');
my $audit = TodoKafkaTest->start_service('audit', $node, $kafka);
ok($audit->wait_log(qr/assigned \S+/), 'audit assigned');
my $bin = TodoKafkaTest::repo_root() . '/tools/dlq/todo-kafka-dlq';

sub dlq
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $bin, '-d', $ops, '-b', $kafka->bootstrap, @args ],
		'<', \'', '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	return ($? >> 8, $out, $err);
}

# a task change, then a relay poison row put back by the operator
$s->sql("SELECT id FROM todo_kafka.add_task('alice', 'Fine')");
$s->sql(q{INSERT INTO todo_kafka.dead_letters (outbox_id, event_id, topic, reason, row_data)
	VALUES (4242, 'c0000000-0000-4000-8000-000000000001', 't620.notifications', 'Broker: Message size too large',
	  json_build_object('id', 4242, 'event_id', 'c0000000-0000-4000-8000-000000000001', 'kind', 'custom',
	    'stream', 'notifications', 'event_type', 'test.requeued', 'source', '/todo_kafka/test', 'key', 'k-poison',
	    'actor', 'tester', 'correlation_id', 'corr-1', 'after', json_build_object('n', 1)))});
my $id = $s->sql('SELECT max(id) FROM todo_kafka.dead_letters');
my ($rc, $out, $err) = dlq('replay', '--id', "db:$id");
is($rc, 0, 'poison row replayed') or diag($err);
($rc, $out, $err) = dlq('purge', '--older-than', '0');
is($rc, 0, 'purge exits 0') or diag($err);

is($s->sql("SELECT string_agg(operation || ' ' || coalesce(target, '-') || ' ' || outcome
	|| ' ' || (performed_by = 'tk_dlq')::text, ',' ORDER BY id) FROM todo_kafka.admin_operations"),
	"dlq_replay db:$id succeeded true,dlq_purge $t->{dead_letter} succeeded true",
	'admin_operations: the replay and the purge, by the operator, succeeded');

ok(wait_until('the admin entries in the audit chain', sub {
	$s->sql(q{SELECT count(*) FROM todo_kafka.audit_log WHERE event_type LIKE 'admin.%'}) >= 2 }, 60, 0.2),
	'the admin records reached the audit chain') or diag($audit->log_text);
is($s->sql(q{SELECT string_agg(event_type || ' ' || operation || ' ' || table_name, ',' ORDER BY event_type)
	FROM todo_kafka.audit_log WHERE event_type LIKE 'admin.%'}),
	'admin.dlq_purge INSERT admin_operations,admin.dlq_replay INSERT admin_operations',
	'as admin.* entries');
is($s->sql(q{SELECT count(*) FROM todo_kafka.audit_log a JOIN todo_kafka.admin_operations o
	ON o.event_id = a.event_id AND a.actor = o.performed_by AND a.after->>'outcome' = o.outcome}), 2,
	'each entry is its admin_operations row');
ok(wait_until('the task change in the chain', sub {
	$s->sql(q{SELECT count(*) FROM todo_kafka.audit_log WHERE event_type = 'created'}) >= 1 }, 60, 0.2),
	'the task change is in the same trail');
is($s->sql('SELECT ok FROM todo_kafka.verify_audit()'), 't', 'the chain verifies');
unlike($audit->log_text, qr/dead-letter|not an audit record/i, 'nothing dead-lettered');

# every message on the audit topic, task change and admin record alike,
# validates against schemas/audit.v1.json (the independent validator)
my $n = $kafka->end_offsets($t->{audit});
my $msgs = $s->events('audit', count => $n, timeout => 30);
my @admin = grep { ($_->{event}{type} // '') =~ /^admin\./ } @$msgs;
is(scalar @admin, 2, 'two admin.* messages on the audit topic');
my @res = TodoKafkaTest::validate_schemas(map { [ 'audit.v1', $_->{payload} ] } @$msgs);
is_deeply([ grep { $_ ne 'ok' } @res ], [], "all $n audit messages validate against audit.v1");

is($audit->stop, 0, 'audit stops');
is($relay->stop, 0, 'relay stops');
$kafka->stop;
$node->stop;
done_testing();
