# tests/305_push_ssrf.pl: push requests go only where they may (issue 19),
# checked at send time with consumers/notify/notify_delivery_check and at
# todo-kafka-notify's start-up.  No PostgreSQL, no Kafka.
#
# 1. The six endpoints of the issue, with the default push_allowed_hosts:
#    refused before anything is sent (gone, status 0: the service removes
#    the subscription); as gateway URLs (default push_gateway_allowed_hosts
#    is empty): permanent.
# 2. The list out of the way (push_allowed_hosts = *), the address check
#    alone: every one refused before a connection, naming the address's
#    class; localhost is a name that resolves to 127.0.0.1, and
#    metadata.google.internal is pointed at 169.254.169.254 by
#    push_connect_to as a DNS answer would.  A receiver listening on the
#    loopback port sees no request.  Plain http to a public address: refused.
# 3. A real endpoint host on the default list (Firefox's autopush,
#    updates.push.services.mozilla.com) pointed at a loopback https receiver
#    with the development settings: delivered, TLS verified for that name,
#    VAPID aud its origin; without push_allow_loopback: refused, it resolves
#    to loopback.  A redirect is not followed.
# 4. The production profile refuses push_allow_loopback and push_connect_to
#    (exit 2, saying which); development accepts them.

use strict;
use warnings;

use IPC::Run;
use Test::More;
use TodoKafkaTest;
use NotifyTest;

my $root = TodoKafkaTest::repo_root();
my $driver = "$root/consumers/notify/notify_delivery_check";
my ($out, $err) = ('', '');
ok(IPC::Run::run([ 'make', '-s', '-C', "$root/consumers/notify", 'check-delivery' ],
		'>', \$out, '2>', \$err), 'notify_delivery_check builds')
  or BAIL_OUT("build failed: $err");

my $mozilla = 'updates.push.services.mozilla.com';
my $rx = NotifyTest->new(push_status => { '/moved' => 307 });
my $port = $rx->start_push(tls_name => $mozilla);
my $sub = $rx->subscription;

# run the driver; returns {result, status, err}
sub drive
{
	my ($code, $o, $e) = NotifyTest::run_cmd($driver, @_);
	my %r = (code => $code, err => $e);
	$r{$1} = $2 while $o =~ /(\w+)=(\S+)/g;
	return \%r;
}

sub push_to
{
	my ($endpoint, @args) = @_;
	return drive('push', '--vapid-key', $rx->dir . '/vapid.pem', '--subject',
		'mailto:ops@todo.example', '--endpoint', $endpoint, '--p256dh', $sub->{p256dh},
		'--auth', $sub->{auth}, '--payload', '{"title":"x"}', '--timeout-ms', 5000,
		'--ca-file', $rx->push_tls_dir . '/cert.pem', @args);
}

# 1. the host lists
my @issue = ('https://169.254.169.254/latest/meta-data/iam',
	'https://metadata.google.internal/computeMetadata/v1/', 'https://10.0.0.5:8443/admin',
	'https://localhost:5432/', 'https://[::1]/x', 'https://127.0.0.1:9187/metrics');
for my $e (@issue)
{
	my $r = push_to($e);
	is("$r->{result} $r->{status}", 'gone 0', "$e: refused before sending (gone, status 0)");
	like($r->{err}, qr/push endpoint host "[^"]+" is not in push_allowed_hosts/, '... naming the setting');
	$r = drive('gateway', '--url', $e, '--payload', '{}', '--timeout-ms', 5000);
	is($r->{result}, 'permanent', "$e as a gateway: refused");
	like($r->{err}, qr/is not in push_gateway_allowed_hosts/, '... naming the setting');
}

# 2. the addresses, whatever the list says
for my $case (
	[ 'https://169.254.169.254/latest/meta-data/iam', qr/169\.254\.169\.254: link-local address/ ],
	[ 'https://10.0.0.5:8443/admin', qr/10\.0\.0\.5: private address/ ],
	[ "https://localhost:$port/x", qr/(127\.0\.0\.1|::1): a loopback address/ ],
	[ "https://[::1]:$port/x", qr/::1: a loopback address/ ],
	[ "https://127.0.0.1:$port/metrics", qr/127\.0\.0\.1: a loopback address/ ],
	[ "https://[::ffff:127.0.0.1]:$port/x", qr/::ffff:127\.0\.0\.1: a loopback address/ ],
	[ 'https://[fd00::5]/x', qr/fd00::5: private address/ ],
	[ 'https://100.64.0.1/x', qr/100\.64\.0\.1: carrier-grade NAT address/ ],
	[ 'https://0.0.0.0:' . $port . '/x', qr/0\.0\.0\.0: unspecified address/ ],
	[ 'http://8.8.8.8/x', qr/plain http goes only to a loopback test receiver/ ])
{
	my ($e, $re) = @$case;
	my $r = push_to($e, '--allowed-hosts', '*');
	is($r->{result}, 'permanent', "push_allowed_hosts = *: $e refused");
	like($r->{err}, $re, '... before connecting, naming the address');
}
my $r = push_to('https://metadata.google.internal/computeMetadata/v1/', '--allowed-hosts', '*',
	'--connect-to', 'metadata.google.internal:443:169.254.169.254:80');
is($r->{result}, 'permanent', 'a name whose address is 169.254.169.254: refused');
like($r->{err}, qr/169\.254\.169\.254: link-local address/, '... naming the address');
is(scalar @{ $rx->pushes }, 0, 'the loopback receiver saw no request');

# 3. a real push service host, pointed at the receiver for the test
my @to_rx = ('--connect-to', "$mozilla:443:127.0.0.1:$port");
$r = push_to("https://$mozilla/wpush/v2/gAAAAABh", @to_rx);
is($r->{result}, 'permanent', "$mozilla resolving to 127.0.0.1: refused");
like($r->{err}, qr/127\.0\.0\.1: a loopback address \(push_allow_loopback is for development only\)/,
	'... saying why');
is(scalar @{ $rx->pushes }, 0, '... nothing reached the receiver');
$r = push_to("https://$mozilla/wpush/v2/gAAAAABh", @to_rx, '--allow-loopback');
is($r->{result}, 'delivered', "$mozilla (default list) with push_allow_loopback: delivered")
  or diag($r->{err});
my $rec = $rx->pushes->[-1];
is($rec && $rec->{path}, '/wpush/v2/gAAAAABh', '... over https to the receiver');
ok($rec && $rec->{vapid_ok}, "... VAPID verified with aud https://$mozilla")
  or diag($rec && $rec->{vapid_error});
ok($rec && $rec->{decrypt_ok}, '... payload decrypted');
$r = push_to("https://$mozilla/moved", @to_rx, '--allow-loopback');
is("$r->{result} $r->{status}", 'permanent 307', 'a redirect is not followed');
is(scalar(grep { $_->{path} eq '/moved' } @{ $rx->pushes }), 1, '... one request');

# 4. the production profile
my $bin = TodoKafkaTest::service_binary('notify');
my @prod = ('-d', 'dbname=x', '-b', 'k:9092', '--profile', 'production', '-X',
	'security.protocol=SASL_SSL', '-X', 'sasl.mechanism=SCRAM-SHA-512', '--show-config');
my ($code, $o, $e) = NotifyTest::run_cmd($bin, @prod);
is($code, 0, 'production profile, no development push settings: accepted');
like($o, qr/^push_allow_loopback = false$/m, '... push_allow_loopback off by default');
like($o, qr/^push_allowed_hosts = fcm\.googleapis\.com, .*\*\.notify\.windows\.com$/m,
	'... push_allowed_hosts: the public push services');
like($o, qr/^push_gateway_allowed_hosts = $/m, '... no gateway host');
($code, $o, $e) = NotifyTest::run_cmd($bin, @prod, '-c', $rx->config);
is($code, 2, 'production profile with push_allow_loopback = true: exit 2');
like($e, qr/production profile refuses push_allow_loopback = true/, '... saying why');
($code, $o, $e) = NotifyTest::run_cmd($bin, @prod, '-c',
	$rx->config(push_allow_loopback => 'false', push_connect_to => "$mozilla:443:127.0.0.1:1"));
is($code, 2, 'production profile with push_connect_to: exit 2');
like($e, qr/production profile refuses push_connect_to/, '... saying why');
($code, $o, $e) = NotifyTest::run_cmd($bin, '-d', 'dbname=x', '-b', 'k:9092', '--show-config',
	'-c', $rx->config);
is($code, 0, 'development profile with push_allow_loopback: accepted') or diag($e);

$rx->stop;
done_testing();
