# tests/109_config.pl: command line, config file, secrets, reload.
#
# Usage and configuration errors exit 2 with a clear message (config file
# errors as path:line: message); the production profile refuses plaintext
# Kafka; passwords given with -X or in the conninfo never reach the log or
# --show-config; SIGHUP with a bad file keeps the old configuration.

use strict;
use warnings;

use IPC::Run;
use Test::More;
use TodoKafkaTest;
use DevBroker;

my $bin = TodoKafkaTest::relay_binary();
my $dir = $PostgreSQL::Test::Utils::tmp_check;

sub run_relay
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $bin, @args ], '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(20));
	return ($? >> 8, $out, $err);
}

sub write_file
{
	my ($name, $text) = @_;
	open my $fh, '>', "$dir/$name" or die;
	print $fh $text;
	close $fh;
	return "$dir/$name";
}

my ($code, $out, $err) = run_relay('--help');
is($code, 0, '--help exits 0');
like($out, qr/-X PROPERTY=VALUE/, '--help lists -X');
like($out, qr/poll_interval_ms\s+1000/, '--help shows defaults');

delete $ENV{TODO_KAFKA_DB};
delete $ENV{TODO_KAFKA_BROKERS};
for my $case (
	[ [], qr/no database given/ ],
	[ [ '-d', 'dbname=x' ], qr/no Kafka brokers given/ ],
	[ [ '--bogus' ], qr/unknown option "--bogus"/ ],
	[ [ '-d', 'x', '-b', 'y', 'stray' ], qr/unexpected argument "stray"/ ],
	[ [ '-d', 'x', '-b', 'y', '-X', 'novalue' ], qr/invalid -X argument/ ],
	[ [ '-d', 'x', '-b', 'y', '-X', 'no.such.property=1' ], qr/invalid Kafka property "no.such.property"/ ],
	[ [ '-d', 'x', '-b', 'y', '--profile', 'production' ], qr/production profile requires security.protocol=SASL_SSL/ ],
	[ [ '-d', 'x', '-b', 'y', '--profile', 'staging' ], qr/expected development or production/ ],
	[ [ '-d', 'x', '-b', 'y', '--metrics-listen', 'nowhere' ], qr/invalid metrics listen address/ ],
	[ [ '-d', 'x', '-b', 'y', '-c', "$dir/missing.conf" ], qr/could not open config file/ ])
{
	my ($args, $re) = @$case;
	($code, $out, $err) = run_relay(@$args);
	is($code, 2, "\"@$args\" exits 2");
	like($err, $re, "\"@$args\" says why");
}

my $bad1 = write_file('bad1.conf', "# comment\nbrokers = a:1\nno_such_setting = 3\n");
($code, $out, $err) = run_relay('-d', 'x', '-c', $bad1);
is($code, 2, 'unknown setting exits 2');
like($err, qr/\Q$bad1\E:3: unknown setting "no_such_setting"/, 'reported as path:line');

my $bad2 = write_file('bad2.conf', "brokers = a:1\n\njust words\n");
($code, $out, $err) = run_relay('-d', 'x', '-c', $bad2);
is($code, 2, 'syntax error exits 2');
like($err, qr/\Q$bad2\E:3: syntax error/, 'syntax error with path:line');

my $bad3 = write_file('bad3.conf', "poll_interval_ms = soon\n");
($code, $out, $err) = run_relay('-d', 'x', '-b', 'y', '-c', $bad3);
is($code, 2, 'bad value exits 2');
like($err, qr/:1: invalid value for "poll_interval_ms"/, 'bad value explained');

# production profile accepts SASL_SSL; secrets are redacted in --show-config
($code, $out, $err) = run_relay('-d', 'host=h dbname=d password=PgSecret9', '-b', 'y',
	'--profile', 'production', '-X', 'security.protocol=SASL_SSL',
	'-X', 'sasl.mechanism=SCRAM-SHA-512', '-X', 'sasl.username=relay',
	'-X', 'sasl.password=KafkaSecret7', '--show-config');
is($code, 0, 'production profile with SASL_SSL is accepted');
like($out, qr/^kafka\.sasl\.password = \[redacted\]$/m, 'password redacted');
unlike($out . $err, qr/KafkaSecret7|PgSecret9/, 'no secret in --show-config');

# env fallbacks and a config file with kafka.* keys
my $good = write_file('good.conf', "poll_interval_ms = 250 # fast\nkafka.linger.ms = 7\n");
{
	local $ENV{TODO_KAFKA_DB} = 'dbname=fromenv';
	local $ENV{TODO_KAFKA_BROKERS} = 'envhost:9092';
	($code, $out, $err) = run_relay('-c', $good, '--show-config');
}
is($code, 0, 'env fallbacks suffice');
like($out, qr/^database = dbname=fromenv$/m, 'TODO_KAFKA_DB used');
like($out, qr/^kafka\.bootstrap\.servers = envhost:9092$/m, 'TODO_KAFKA_BROKERS used');
like($out, qr/^poll_interval_ms = 250$/m, 'file setting with trailing comment');
like($out, qr/^kafka\.linger\.ms = 7$/m, 'kafka.* key from the file');

# a running relay: secrets never logged; SIGHUP reload
my $conf = write_file('run.conf', "poll_interval_ms = 500\n");
my $s = TodoKafkaTest->start_stack('t109', brokers => 1, relay_log_level => 'debug',
	relay_args => [ '-c', $conf, '-X', 'sasl.username=relay', '-X', 'sasl.password=KafkaSecret7' ],
	leads => 'relay with a password runs');
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};
$node->safe_psql('postgres', "SELECT todo_kafka.add_task('hank', 'with secrets around')");
ok(TodoKafkaTest::wait_outbox_published($node, 30), 'and streams');

write_file('run.conf', "poll_interval_ms = never\n");
$relay->signal('HUP');
ok($relay->wait_log(qr/could not reload configuration, keeping the old one: .*run\.conf:1:/),
	'bad file on SIGHUP keeps the old config');
write_file('run.conf', "poll_interval_ms = 300\n");
$relay->signal('HUP');
ok($relay->wait_log(qr/configuration reloaded/), 'good file on SIGHUP is applied');
$node->safe_psql('postgres', "SELECT todo_kafka.add_task('hank', 'after reload')");
ok(TodoKafkaTest::wait_outbox_published($node, 30), 'still streaming after reloads');

is($relay->stop, 0, 'relay stops cleanly');
like($relay->log_text, qr/kafka property sasl\.password = \[redacted\]/, 'debug log shows the property redacted');
unlike($relay->log_text, qr/KafkaSecret7/, 'the password never appears in the log');

$s->stop;
done_testing();
