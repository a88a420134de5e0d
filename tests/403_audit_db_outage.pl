# tests/403_audit_db_outage.pl: a dependency that is down is not the
# message's fault.
#
# The audit trail lives in a second database (any database with the
# extension can hold it).  It is stopped for 15 s while the application
# keeps writing: the consumer pauses, raises the alert, reports degraded on
# /healthz, dead-letters nothing, and writes every record once after the
# database returns.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time sleep);
use TodoKafkaTest;

my $s = TodoKafkaTest->start_stack('t403', node_name => 't403app');
my ($app, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};
my $sink = TodoKafkaTest::new_node('t403sink');
TodoKafkaTest::use_topics($sink, 't403');
my $mport = TodoKafkaTest::free_port();
my $audit = TodoKafkaTest->start_service('audit', $sink, $kafka,
	args => [ '--metrics-listen', "127.0.0.1:$mport" ]);
ok($audit->wait_log(qr/assigned \S+\[/), 'audit assigned');

sub sink_count { return $sink->safe_psql('postgres', 'SELECT count(*) FROM todo_kafka.audit_log'); }
sub write_tasks
{
	my ($tag, $n) = @_;
	$app->safe_psql('postgres',
		"SELECT count(todo_kafka.add_task('u' || (i % 20), '$tag ' || i)) FROM generate_series(1, $n) i");
}

write_tasks('before', 200);
wait_until('200 records in the sink', sub { sink_count() >= 200 }, 30, 0.1);
is(sink_count(), 200, 'records flow before the outage');

# the sink goes away under load
$sink->stop('fast');
my $stopped = time;
my $written = 200;
my ($health, $code);
while (time - $stopped < 15)
{
	write_tasks('during', 50);
	$written += 50;
	($health, $code) = TodoKafkaTest::http_get("127.0.0.1:$mport", '/healthz') if !$code || $code == 200;
	sleep(0.5);
}
is($code, 503, '/healthz reports degraded during the outage');
like($health, qr/database unavailable/, '... and says why');
ok($audit->wait_log(qr/ERROR ALERT dependency_down: consumer 0 pauses its partitions/), 'alert raised');
$sink->start;

wait_until("$written records in the sink", sub { sink_count() >= $written }, 60);
is(sink_count(), $written, "every record written once after it returned ($written)");
is($sink->safe_psql('postgres', 'SELECT count(DISTINCT event_id) FROM todo_kafka.audit_log'), $written,
	'no duplicates');
ok($audit->wait_log(qr/ALERT dependency_recovered/), 'recovery announced');
($health, $code) = TodoKafkaTest::http_get("127.0.0.1:$mport", '/healthz');
is($code, 200, '/healthz ok again');
is($kafka->end_offsets($t->{dead_letter}), 0, 'nothing was dead-lettered');
is(() = $audit->log_text =~ /ALERT dependency_down/g, 1, 'one alert for the whole outage');
is($sink->safe_psql('postgres', 'SELECT ok FROM todo_kafka.verify_audit()'), 't', 'chain intact');

is($audit->stop, 0, 'audit stops cleanly');
is($relay->stop, 0, 'relay stops cleanly');
$s->stop;
$sink->stop;
done_testing();
