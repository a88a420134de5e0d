# tests/306_push_ssrf_service.pl: todo-kafka-notify refuses push targets
# outside its host lists at send time (issue 19), end to end.
#
# The service may be configured after subscriptions were stored, or they
# may have been written around the SQL check: here mallory's six
# subscriptions (the endpoints of the issue) and her gateway URL are written
# straight into the tables as superuser.  The service runs with its default
# push_allowed_hosts (the public push services) and empty
# push_gateway_allowed_hosts; alice's subscription, registered through
# add_push_subscription(), is on Firefox's push host, which the development
# settings (push_connect_to, push_allow_loopback, push_ca_file) point at a
# loopback https receiver with a certificate for that name.
#
# One reminder each: alice's push is delivered; each of mallory's
# subscriptions is removed without a request, with a WARNING naming the
# host and the setting (never the endpoint URL), a 'gone' delivery log row,
# and the notification is dead-lettered with the reason.

use strict;
use warnings;

use Test::More;
use TodoKafkaTest;
use NotifyTest;

my $s = TodoKafkaTest->start_stack('t306');
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};
my $mozilla = 'updates.push.services.mozilla.com';
my $rx = NotifyTest->new;
my $port = $rx->start_push(tls_name => $mozilla);
my $sub = $rx->subscription;
my @issue = ('https://169.254.169.254/latest/meta-data/iam',
	'https://metadata.google.internal/computeMetadata/v1/', 'https://10.0.0.5:8443/admin',
	'https://localhost:5432/', 'https://[::1]/x', 'https://127.0.0.1:9187/metrics');

$s->sql("SELECT todo_kafka.add_push_subscription('alice', 'https://$mozilla/wpush/v2/alice',
	'$sub->{p256dh}', '$sub->{auth}')");
$s->sql(join '', map { "INSERT INTO todo_kafka.push_subscriptions (endpoint, user_id, p256dh, auth)
	VALUES ('$_', 'mallory', '$sub->{p256dh}', '$sub->{auth}');" } @issue);
$s->sql("INSERT INTO todo_kafka.notification_settings (user_id, push_gateway_url)
	VALUES ('mallory', 'https://169.254.169.254/latest/user-data')");
is($s->sql("SELECT count(*) FROM todo_kafka.push_subscriptions WHERE user_id = 'mallory'"), 6,
	'six subscriptions written straight into the table');

my $svc = TodoKafkaTest->start_service('notify', $node, $kafka, args => [ '-c', $rx->config(
	push_allowed_hosts => undef, push_gateway_allowed_hosts => undef,
	push_connect_to => "$mozilla:443:127.0.0.1:$port",
	push_ca_file => $rx->push_tls_dir . '/cert.pem') ]);
ok($svc->wait_log(qr/consuming stream notifications/), 'notify started');

for my $user ('alice', 'mallory')
{
	$s->sql("SELECT 1 FROM todo_kafka.add_task('$user', 'Pay rent',
		p_due_date => now() + interval '3 s', p_reminder_offsets => '{1 second}',
		p_notification_methods => '{push}')");
}
ok(wait_until("alice's push reached the receiver through $mozilla", sub { grep { $_->{path} eq '/wpush/v2/alice' } @{ $rx->pushes } }, 60),
	"alice's push reached the receiver through $mozilla") or diag($svc->log_text);
my ($p) = @{ $rx->pushes };
ok($p && $p->{vapid_ok} && $p->{decrypt_ok}, '... VAPID verified, payload decrypted');

ok($s->wait_sql("SELECT count(*) = 0 FROM todo_kafka.push_subscriptions WHERE user_id = 'mallory'", 't', 60),
	"mallory's six subscriptions were removed") or diag($svc->log_text);
is(scalar @{ $rx->pushes }, 1, 'no request but alice\'s reached the receiver');
is($s->sql("SELECT count(*) FROM todo_kafka.push_subscriptions WHERE user_id = 'alice'"), 1,
	"alice's subscription stays");

my $log = $svc->log_text;
for my $host ('169.254.169.254', 'metadata.google.internal', '10.0.0.5', 'localhost', '[::1]', '127.0.0.1')
{
	like($log, qr/WARNING.*push subscription of user "mallory" removed: push endpoint host "\Q$host\E" is not in push_allowed_hosts/,
		"log: $host refused, naming the setting");
}
unlike($log, qr{/latest/|/computeMetadata|/admin|/metrics|/wpush/v2/alice},
	'no endpoint URL in the log');
is($s->sql("SELECT count(*) FROM todo_kafka.notification_deliveries
	WHERE user_id = 'mallory' AND status = 'gone' AND detail LIKE '%not in push_allowed_hosts%'"), 6,
	'delivery log: six refused subscriptions, gone, with the reason');
is($s->sql("SELECT status || ': ' || detail FROM todo_kafka.notification_deliveries
	WHERE user_id = 'mallory' AND target LIKE 'https://169.254.169.254/%' AND status = 'dead_lettered'"),
	'dead_lettered: permanent 0: push gateway host "169.254.169.254" is not in push_gateway_allowed_hosts: '
	. 'refused (requests go only to the hosts the operator lists there)',
	'delivery log: the gateway URL refused for good');

my $dl = TodoKafkaTest::consume_events($kafka, $t->{dead_letter}, count => 1, timeout => 60);
my ($d) = grep { ($_->{key} // '') eq 'mallory' } @$dl;
ok($d, "mallory's reminder is on the dead-letter topic") or diag($svc->log_text);
like($d && $d->{hdr}{'dlq-reason'}, qr/not in push_(gateway_)?allowed_hosts/, '... the reason names the setting');
is($d && $d->{hdr}{'dlq-attempts'}, 1, '... after one attempt');

is($svc->stop, 0, 'notify: SIGTERM, exit 0');
is($relay->stop, 0, 'relay: exit 0');
$s->stop;
$rx->stop;
done_testing();
