# tests/404_consumer_config.pl: a consumer service's command line and
# configuration (the runtime's, shared by every service).
#
# --help lists the runtime's and the service's settings with defaults;
# usage and configuration errors exit 2 and say what is wrong and where;
# environment fallbacks apply; --show-config never shows a secret; a
# production profile refuses plaintext Kafka.

use strict;
use warnings;

use IPC::Run;
use Test::More;
use TodoKafkaTest;

my $bin = TodoKafkaTest::service_binary('audit');
my $dir = $PostgreSQL::Test::Utils::tmp_check;
delete $ENV{$_} for grep { /^TODO_KAFKA_/ } keys %ENV;

sub run_audit
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $bin, @args ], '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(20));
	return ($? >> 8, $out, $err);
}

my ($code, $out, $err) = run_audit('--help');
is($code, 0, '--help exits 0');
like($out, qr/--consumers=N/, '--help lists --consumers');
like($out, qr/max_attempts\s+5/, 'runtime settings with defaults');
like($out, qr/retention_days\s+90/, 'service settings with defaults');
like($out, qr/enable\.auto\.offset\.store = false/, 'consumer Kafka defaults');

for my $case (
	[ [], qr/no database given/ ],
	[ [ '-d', 'x', '--consumers', '0' ], qr/--consumers: invalid value for "consumers": "0" \(expected an integer from 1 to 64\)/ ],
	[ [ '-d', 'x', '-b', 'y', '--nope' ], qr/unknown option "--nope"/ ],
	[ [ '-d', 'x', '-b', 'y', '-X', 'no.such=1' ], qr/invalid Kafka property "no.such"/ ],
	[ [ '-d', 'x', '-b', 'y', '--profile', 'production' ], qr/production profile requires/ ])
{
	my ($args, $re) = @$case;
	($code, $out, $err) = run_audit(@$args);
	is($code, 2, "\"@$args\" exits 2");
	like($err, $re, "\"@$args\" says why");
}

open my $fh, '>', "$dir/audit.conf" or die;
print $fh "brokers = a:1\nretention_days = 7\nmax_attempts = lots\n";
close $fh;
($code, $out, $err) = run_audit('-d', 'x', '-c', "$dir/audit.conf");
is($code, 2, 'bad config value exits 2');
like($err, qr/\Qaudit.conf\E:3: invalid value for "max_attempts"/, 'reported as path:line');

# environment fallbacks, and secrets never shown
$ENV{TODO_KAFKA_DB} = 'host=h dbname=d password=PgSecret9';
$ENV{TODO_KAFKA_BROKERS} = 'b:9092';
$ENV{TODO_KAFKA_RETENTION_DAYS} = '30';
($code, $out, $err) = run_audit('--show-config', '-X', 'sasl.password=KafkaSecret7',
	'--alert-webhook', 'http://hooks/x');
is($code, 0, '--show-config exits 0');
like($out, qr/^database = dbname=d host=h$/m, 'conninfo without its password');
like($out, qr/^retention_days = 30$/m, 'TODO_KAFKA_RETENTION_DAYS applied');
like($out, qr/^brokers = b:9092$/m, 'TODO_KAFKA_BROKERS applied');
like($out, qr/^group_prefix = todo-chatbot-$/m, 'default group prefix');
like($out, qr/^kafka\.sasl\.password = \[redacted\]$/m, 'Kafka secret redacted');
like($out, qr/^alert_webhook = \[redacted\]$/m, 'webhook URL (often a bearer token) redacted');
unlike($out . $err, qr/PgSecret9|KafkaSecret7/, 'no secret anywhere in the output');

done_testing();
