# tests/303_notify_smtp_tls.pl: an SMTP server that cannot be used over TLS
# pauses email delivery; it never dead-letters the emails.
#
# Against Debian's aiosmtpd requiring STARTTLS (tests/lib/smtp_sink.py,
# its own self-signed certificate) and todo-kafka-notify with an alert
# webhook and /healthz:
# 1. smtp_ca_file names another CA (generated here with openssl), as after
#    a certificate rotation: the email stage pauses (one dependency_down
#    alert, /healthz 503 saying why), nothing is dead-lettered, for longer
#    than the retries of a failing message would take.  Restarted with the
#    right CA file, every email arrives exactly once.
# 2. The server does not offer STARTTLS while smtp_starttls asks for it:
#    the same pause; when the server comes back with STARTTLS on the same
#    port the service resumes by itself, each email once.
# 3. A recipient the server defers (451) every time is a message's own
#    failure: retried, then dead-lettered, and its delivery-log row says
#    dead_lettered (not retry).

use strict;
use warnings;

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use TodoKafkaTest;
use NotifyTest;

my $s = TodoKafkaTest->start_stack('t303');
my ($node, $t, $kafka, $relay) = @$s{qw(node topics kafka relay)};

sub dead_letters { return scalar @{ $kafka->consume($t->{dead_letter}) }; }

sub healthz
{
	my ($port) = @_;
	my ($body, $code) = TodoKafkaTest::http_get("127.0.0.1:$port", '/healthz');
	return ($body // '', $code // 0);
}

sub kinds
{
	my ($rx, $kind) = @_;
	return scalar grep { ($_->{alert} // '') eq $kind } @{ $rx->alerts };
}

sub add_tasks
{
	my ($user, $tag, $n) = @_;
	$s->sql(join '', map { "SELECT 1 FROM todo_kafka.add_task('$user', '$tag $_');" } 1 .. $n);
}

# settings that would dead-letter a failing message within a few seconds
my %quick = (max_attempts => 3, retry_base_ms => 50, retry_max_ms => 200,
	smtp_starttls => 'true', smtp_timeout_ms => 5000);

########################################################################
# 1. the wrong CA file
########################################################################
my $rx = NotifyTest->new;
my $tls = $rx->dir . '/tls';
$rx->start_smtp(tls_dir => $tls);
my $hook = $rx->start_alerts;
my $wrong = $rx->dir . '/wrong-ca.pem';
my ($code, $o, $e) = NotifyTest::run_cmd('openssl', 'req', '-x509', '-newkey', 'ec',
	'-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', $rx->dir . '/wrong-key.pem',
	'-out', $wrong, '-subj', '/CN=localhost', '-days', '1',
	'-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1');
is($code, 0, 'another CA generated with openssl') or diag($e);

$s->sql("SELECT todo_kafka.set_notification_email('fred', 'fred\@example.com');
	SELECT todo_kafka.set_notification_channels('fred', 'task_created', '{email}');");
my $mport = TodoKafkaTest::free_port();
my @args = ('--alert-webhook', $hook, '--metrics-listen', "127.0.0.1:$mport");
my $svc = TodoKafkaTest->start_service('notify', $node, $kafka,
	args => [ '-c', $rx->config(%quick, smtp_ca_file => $wrong), @args ]);
ok($svc->wait_log(qr/consuming stream notifications/), 'notify started with the wrong CA file');
add_tasks('fred', 'Rotated', 3);

ok($svc->wait_log(qr/pauses its partitions/, 30), 'email delivery pauses') or diag($svc->log_text);
my ($body, $hc) = healthz($mport);
is($hc, 503, '/healthz 503 while paused');
like($body, qr/certificate|TLS|SSL/i, '... saying it is about the certificate') or diag($body);
# a failing message would have been dead-lettered by now: three attempts of
# at most 200 ms apart; wait well beyond that
sleep(5);
is(dead_letters(), 0, 'nothing dead-lettered') or diag($svc->log_text);
is(kinds($rx, 'dead_letter'), 0, 'no dead_letter alert');
is(kinds($rx, 'dependency_down'), 1, 'one dependency_down alert');
is(scalar @{ $rx->emails }, 0, 'no email accepted over an unverified TLS session');
is($s->sql("SELECT count(*) FROM todo_kafka.notification_deliveries
	 WHERE channel = 'email' AND status NOT IN ('retry', 'sending')"), 0,
	'no delivery recorded as final');
($body, $hc) = healthz($mport);
is($hc, 503, '/healthz still 503');
unlike($svc->log_text, qr/ALERT dead_letter|dead-lettered after/, 'the log says nothing was dead-lettered');

# the right CA file, service restarted
is($svc->stop, 0, 'notify: SIGTERM, exit 0');
$svc = TodoKafkaTest->start_service('notify', $node, $kafka,
	args => [ '-c', $rx->config(%quick, smtp_ca_file => "$tls/cert.pem"), @args ]);
ok(wait_until('right CA file: the emails arrive', sub { @{ $rx->emails } >= 3 }, 60), 'right CA file: the emails arrive')
  or diag($svc->log_text);
ok($s->wait_sql("SELECT count(*) = 3 FROM todo_kafka.notification_deliveries
	 WHERE user_id = 'fred' AND status = 'delivered'", 't', 30), '... all three logged as delivered');
sleep(1);
my @m = @{ $rx->emails };
is(scalar @m, 3, 'each email exactly once');
is_deeply([ sort map { $_->{subject} } @m ],
	[ map { "New task: Rotated $_" } 1 .. 3 ], '... the three new tasks');
ok(wait_until('/healthz 200 again', sub { (healthz($mport))[1] == 200 }, 30), '/healthz 200 again');
is(dead_letters(), 0, 'still nothing dead-lettered');
is($svc->stop, 0, 'notify: SIGTERM, exit 0');
$rx->stop_smtp;

########################################################################
# 2. STARTTLS not offered; 3. a recipient deferred every time
########################################################################
$rx = NotifyTest->new;
$tls = $rx->dir . '/tls';
$rx->start_smtp;    # plain SMTP, no STARTTLS
$hook = $rx->start_alerts;
$s->sql("SELECT todo_kafka.set_notification_email('gina', 'gina\@example.com');
	SELECT todo_kafka.set_notification_channels('gina', 'task_created', '{email}');");
@args = ('--alert-webhook', $hook, '--metrics-listen', "127.0.0.1:$mport");
$svc = TodoKafkaTest->start_service('notify', $node, $kafka,
	args => [ '-c', $rx->config(%quick, smtp_ca_file => "$tls/cert.pem"), @args ]);
ok($svc->wait_log(qr/consuming stream notifications/), 'notify started, server without STARTTLS');
add_tasks('gina', 'Plain', 2);
ok($svc->wait_log(qr/pauses its partitions/, 30), 'email delivery pauses') or diag($svc->log_text);
($body, $hc) = healthz($mport);
is($hc, 503, '/healthz 503 while paused');
like($body, qr/STARTTLS/, '... saying STARTTLS is missing') or diag($body);
sleep(5);
is(dead_letters(), 0, 'nothing dead-lettered') or diag($svc->log_text);
is(kinds($rx, 'dead_letter'), 0, 'no dead_letter alert');
is(kinds($rx, 'dependency_down'), 1, 'one dependency_down alert');
is(scalar @{ $rx->emails }, 0, 'no email sent in the clear');

# the server comes back with STARTTLS (and a recipient it always defers)
$rx->stop_smtp;
$rx->start_smtp(tls_dir => $tls, defer => ['later']);
ok(wait_until('STARTTLS offered: the emails arrive', sub { @{ $rx->emails } >= 2 }, 60), 'STARTTLS offered: the emails arrive')
  or diag($svc->log_text);
ok($svc->wait_log(qr/ALERT dependency_recovered/, 30), 'recovery announced');
ok(wait_until('/healthz 200 again', sub { (healthz($mport))[1] == 200 }, 30), '/healthz 200 again');
sleep(1);
@m = @{ $rx->emails };
is(scalar @m, 2, 'each email exactly once');
is_deeply([ sort map { $_->{subject} } @m ], [ 'New task: Plain 1', 'New task: Plain 2' ],
	'... the two new tasks');
is(dead_letters(), 0, 'still nothing dead-lettered');

$s->sql("SELECT todo_kafka.set_notification_email('hugo', 'later\@example.com');
	SELECT todo_kafka.set_notification_channels('hugo', 'task_created', '{email}');");
add_tasks('hugo', 'Deferred', 1);
ok(wait_until('a recipient deferred every time is dead-lettered', sub { dead_letters() >= 1 }, 60), 'a recipient deferred every time is dead-lettered')
  or diag($svc->log_text);
is($s->sql("SELECT status FROM todo_kafka.notification_deliveries WHERE user_id = 'hugo'"),
	'dead_lettered', '... and its delivery-log row says so');
like($s->sql("SELECT detail FROM todo_kafka.notification_deliveries WHERE user_id = 'hugo'"),
	qr/451/, '... with the reason');
is(kinds($rx, 'dead_letter'), 1, 'one dead_letter alert');
unlike($svc->log_text, qr/dead-lettered[^\n]*will retry/,
	'the log does not say "will retry" for the attempt that is dead-lettered');
is(kinds($rx, 'dependency_down'), 1, 'a message of its own does not pause the channel');
is(scalar @{ $rx->emails }, 2, 'no other email');

is($svc->stop, 0, 'notify: SIGTERM, exit 0');
is($relay->stop, 0, 'relay: exit 0');
$s->stop;
$rx->stop;
done_testing();
