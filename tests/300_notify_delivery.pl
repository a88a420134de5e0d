# tests/300_notify_delivery.pl: the delivery channels of todo-kafka-notify
# (consumers/notify) against real, independent receivers.  No PostgreSQL,
# no Kafka.
#
# Push: tests/lib/push_receiver.py plays the push service; it verifies the
# VAPID JWT (ES256, aud, exp, sub, k) and decrypts the aes128gcm body with
# the subscription's private key (Python's cryptography package, not our C),
# and answers the status a path is told to.  Email: tests/lib/smtp_sink.py is
# an aiosmtpd server; each message is parsed with Python's email package.
# The C side is consumers/notify/notify_delivery_check, built here.
#
# Python: $TK_PYTHON, else /usr/bin/python3 (Debian's, which has
# python3-cryptography and python3-aiosmtpd).

use strict;
use warnings;

use File::Temp qw(tempdir);
use IPC::Run;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use TodoKafkaTest;
use NotifyTest;

my $root = TodoKafkaTest::repo_root();
my $lib = "$root/tests/lib";
my $driver = "$root/consumers/notify/notify_delivery_check";
my $py = $ENV{TK_PYTHON} // (-x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3');
my $dir = tempdir('tk300-XXXX', TMPDIR => 1, CLEANUP => 1);
# bytes in, bytes out: the UTF-8 literals here are byte strings too
my $json = JSON::PP->new->canonical;
my @secrets;    # must never appear in an error text
my @all_stderr;

my ($out, $err) = ('', '');
ok(IPC::Run::run([ 'make', '-s', '-C', "$root/consumers/notify", 'check-delivery' ],
		'>', \$out, '2>', \$err), 'notify_delivery_check builds')
  or BAIL_OUT("build failed: $err");

# run the driver; returns {result, status, retry_after, err}.  The push
# receiver is on 127.0.0.1: the development settings let requests reach it
# (tests/305_push_ssrf.pl checks that nothing else does)
sub drive
{
	my ($mode, @args) = @_;
	my @dev = $mode eq 'email' ? () : ('--allowed-hosts', '127.0.0.1',
		'--gateway-allowed-hosts', '127.0.0.1', '--allow-loopback');
	my ($code, $o, $e) = NotifyTest::run_cmd($driver, $mode, @dev, @args);
	push @all_stderr, $e;
	my %r = (code => $code, err => $e);
	$r{$1} = $2 while $o =~ /(\w+)=(\S+)/g;
	return \%r;
}

sub jsonl
{
	my ($f) = @_;
	return [ map { $json->decode($_) } grep { length } split /\n/, TodoKafkaTest::slurp($f) ];
}

########################################################################
# Web Push
########################################################################

my ($code, $o, $e) = NotifyTest::run_cmd($py, "$lib/push_receiver.py", 'gen-subscription',
	"$dir/sub.json");
is($code, 0, 'subscription generated') or diag($e);
my $sub = $json->decode($o);
($code, $o, $e) = NotifyTest::run_cmd($py, "$lib/push_receiver.py", 'gen-vapid', "$dir/vapid.pem");
is($code, 0, 'VAPID key generated') or diag($e);
my $vapid = $json->decode($o);
($code, $o, $e) = NotifyTest::run_cmd($py, "$lib/push_receiver.py", 'gen-vapid', "$dir/other.pem");
my $other_vapid = $json->decode($o);
push @secrets, $sub->{auth}, $vapid->{private_b64url};

($code, $o) = NotifyTest::run_cmd($driver, 'vapid-public', '--vapid-key', "$dir/vapid.pem",
	'--subject', 'mailto:ops@todo.example');
chomp $o;
is($o, $vapid->{public_b64url}, 'VAPID public key derived from the PEM file');
($code, $o) = NotifyTest::run_cmd($driver, 'vapid-public', '--vapid-key', $vapid->{private_b64url},
	'--subject', 'mailto:ops@todo.example');
chomp $o;
is($o, $vapid->{public_b64url}, 'VAPID public key derived from the raw base64url key');
($code, $o, $e) = NotifyTest::run_cmd($driver, 'vapid-public', '--vapid-key', $vapid->{private_b64url},
	'--subject', 'ops@todo.example');
isnt($code, 0, 'a VAPID subject that is not mailto:/https: is refused');
like($e, qr/mailto: or https:/, '... saying what a subject must be');
($code, $o, $e) = NotifyTest::run_cmd($driver, 'vapid-public',
	'--vapid-key', 'AAAA' . $vapid->{private_b64url},
	'--subject', 'mailto:ops@todo.example');
isnt($code, 0, 'a malformed VAPID key is refused');
unlike($e, qr/\Q$vapid->{private_b64url}\E/, '... without echoing the key');

my ($push, $pport) = NotifyTest::start_server($dir, 'push', "$lib/push_receiver.py", 'serve',
	'--subscription', "$dir/sub.json", '--log', "$dir/push.jsonl",
	'--vapid-public', $vapid->{public_b64url},
	'--status', '/gone410=410', '--status', '/gone404=404', '--status', '/err500=500',
	'--status', '/busy429=429:30', '--status', '/bad400=400');
my $origin = "http://127.0.0.1:$pport";

sub push_to
{
	my ($path, %o) = @_;
	return drive('push', '--vapid-key', $o{key} // "$dir/vapid.pem",
		'--subject', 'mailto:ops@todo.example', '--endpoint', "$origin$path",
		'--p256dh', $o{p256dh} // $sub->{p256dh}, '--auth', $o{auth} // $sub->{auth},
		'--payload', $o{payload} // '{"title":"x"}', @{ $o{args} // [] });
}

my $payload = '{"title":"Réminder: Buy milk","body":"due 17:00 — today","task_id":"7d6f"}';
my $r = push_to('/inbox/abc', payload => $payload,
	args => [ '--ttl', 600, '--urgency', 'high', '--topic', 'task-7d6f' ]);
is($r->{result}, 'delivered', 'push delivered') or diag($r->{err});
is($r->{status}, 201, '... with 201 Created');
my $recs = jsonl("$dir/push.jsonl");
my $rec = $recs->[-1];
is($rec->{path}, '/inbox/abc', 'the push service received it');
ok($rec->{vapid_ok}, 'VAPID JWT signature verifies against k, aud/exp/sub are right')
  or diag($rec->{vapid_error});
is($rec->{claims}{aud}, $origin, '... aud is the endpoint origin');
is($rec->{claims}{sub}, 'mailto:ops@todo.example', '... sub is the configured subject');
cmp_ok($rec->{claims}{exp} - time, '<=', 86400, '... exp at most 24 h ahead');
ok($rec->{decrypt_ok}, 'aes128gcm body decrypts with the subscription keys')
  or diag($rec->{decrypt_error});
is($rec->{payload}, $payload, 'decrypted payload equals what was sent');
is($rec->{headers}{'content-encoding'}, 'aes128gcm', 'Content-Encoding: aes128gcm');
is($rec->{headers}{ttl}, '600', 'TTL header');
is($rec->{headers}{urgency}, 'high', 'Urgency header');
is($rec->{headers}{topic}, 'task-7d6f', 'Topic header');

$r = push_to('/inbox/abc', key => $vapid->{private_b64url}, payload => '');
is($r->{result}, 'delivered', 'push with the raw base64url VAPID key and an empty payload')
  or diag($r->{err});
is(jsonl("$dir/push.jsonl")->[-1]{payload}, '', '... decrypts to the empty payload');

$r = push_to('/gone410');
is($r->{result}, 'gone', '410 classified as gone');
is($r->{status}, 410, '... status 410');
like($r->{err}, qr/remove it/, '... the error says to remove the subscription');
$r = push_to('/gone404');
is($r->{result}, 'gone', '404 classified as gone');
$r = push_to('/err500');
is($r->{result}, 'transient', '500 classified as transient');
is($r->{status}, 500, '... status 500');
$r = push_to('/busy429');
is($r->{result}, 'transient', '429 classified as transient');
is($r->{retry_after}, 30, '... with Retry-After reported');
$r = push_to('/bad400');
is($r->{result}, 'permanent', '400 classified as permanent');

# the receiver's checks can fail: a key other than applicationServerKey,
# an auth secret other than the subscription's
$r = push_to('/inbox/abc', key => "$dir/other.pem");
is($r->{result}, 'permanent', 'signed with another VAPID key: refused (403), permanent');
like(jsonl("$dir/push.jsonl")->[-1]{vapid_error} // '', qr/expected application server key/,
	'... the receiver saw the wrong k');
my $wrong_auth = 'AAAAAAAAAAAAAAAAAAAAAA';
$r = push_to('/inbox/abc', auth => $wrong_auth);
is($r->{status}, 400, 'encrypted with the wrong auth secret: receiver cannot decrypt (400)');
like(jsonl("$dir/push.jsonl")->[-1]{decrypt_error} // '', qr/does not decrypt/,
	'... the receiver saw a body that does not decrypt');

my $before = scalar @{ jsonl("$dir/push.jsonl") };
$r = push_to('/inbox/abc', payload => 'x' x 3994);
is($r->{result}, 'permanent', 'payload over 3993 bytes: permanent');
like($r->{err}, qr/at most 3993/, '... saying the limit');
$r = push_to('/inbox/abc', payload => 'x' x 3993);
is($r->{result}, 'delivered', 'payload of exactly 3993 bytes delivered') or diag($r->{err});
is(length(jsonl("$dir/push.jsonl")->[-1]{payload} // ''), 3993, '... and decrypts whole');
$before++;
$r = push_to('/inbox/abc', p256dh => substr($sub->{p256dh}, 0, 80));
is($r->{result}, 'permanent', 'a truncated p256dh: permanent');
like($r->{err}, qr/p256dh/, '... naming p256dh');
$r = push_to('/inbox/abc', args => [ '--urgency', 'urgent' ]);
is($r->{result}, 'permanent', 'an unknown urgency: permanent');
is(scalar @{ jsonl("$dir/push.jsonl") }, $before, '... none of these reached the push service');

# gateway mode
$ENV{TK300_GATEWAY_AUTH} = 'Bearer gw-token-123';
push @secrets, 'gw-token-123';
my $gw_json = '{"topic":"todo","title":"Réminder","message":"Buy milk"}';
$r = drive('gateway', '--url', "$origin/gw", '--payload', $gw_json,
	'--authorization-env', 'TK300_GATEWAY_AUTH');
is($r->{result}, 'delivered', 'gateway POST delivered') or diag($r->{err});
$rec = jsonl("$dir/push.jsonl")->[-1];
is($rec->{body}, $gw_json, '... the gateway received the JSON as sent');
is($rec->{headers}{'content-type'}, 'application/json', '... as application/json');
is($rec->{headers}{authorization}, 'Bearer gw-token-123', '... with the configured Authorization');
$r = drive('gateway', '--url', "$origin/err500", '--payload', '{}');
is($r->{result}, 'transient', 'gateway 500: transient');
$r = drive('gateway', '--url', "$origin/gone410", '--payload', '{}');
is($r->{result}, 'gone', 'gateway 410: gone');

NotifyTest::stop_server($push);
$r = push_to('/inbox/abc');
is($r->{result}, 'transient', 'push service down: transient');
is($r->{status}, 0, '... no HTTP status');

########################################################################
# Email
########################################################################

my $maildir = "$dir/mail";
my ($sink, $sport) = NotifyTest::start_server($dir, 'smtp', "$lib/smtp_sink.py", '--dir', $maildir,
	'--reject', 'refused', '--defer', 'later');

# parse a received message with Python's email package
sub parse_eml
{
	my ($file) = @_;
	my $script = <<'PY';
import email, email.policy, email.utils, json, sys
raw = open(sys.argv[1], 'rb').read()
m = email.message_from_bytes(raw, policy=email.policy.default)
lines = raw.split(b'\r\n')
sys.stdout.buffer.write(json.dumps({
    'from_addr': m['From'].addresses[0].addr_spec,
    'from_name': m['From'].addresses[0].display_name,
    'to': m['To'].addresses[0].addr_spec,
    'subject': str(m['Subject']),
    'date_raw': m['Date'].__str__(),
    'date_epoch': int(email.utils.parsedate_to_datetime(m['Date']).timestamp()),
    'message_id': str(m['Message-ID']),
    'mime_version': str(m['MIME-Version']),
    'content_type': m.get_content_type(),
    'charset': m.get_content_charset(),
    'cte': str(m['Content-Transfer-Encoding']),
    'body': m.get_content().replace('\r\n', '\n'),
    'defects': [str(d) for d in m.defects] + [str(d) for h in m.keys() for d in m[h].defects],
    'bare_lf': b'\n' in raw.replace(b'\r\n', b''),
    'longest_line': max(len(l) for l in lines),
    'trailing_ws': any(l.endswith((b' ', b'\t')) for l in lines),
}, ensure_ascii=False).encode())
PY
	my ($c, $out, $e) = NotifyTest::run_cmd($py, '-c', $script, $file);
	die "parse failed: $e" if $c;
	return $json->decode($out);
}

my @mail_common = ('--url', "smtp://127.0.0.1:$sport", '--from', 'notify@todo.example',
	'--from-name', 'Todo Bot');
my $id = '3f2c9a4e-1b2d-4c5e-9f00-aabbccddeeff';
my $subject = 'Réminder: “Buy milk” is due today at 17:00 — and this subject is long';
my $body = "Hello Alice,\n\nYour task \"Buy milk\" is due at 17:00 (Europe/Paris, 16:00 UTC).\n"
  . ".\n.leading dot\ntrailing space \n" . ('long ' x 40) . "end\nÀ bientôt";
$r = drive('email', @mail_common, '--to', 'alice@example.com', '--subject', $subject,
	'--body', $body, '--id', $id, '--date', 1767268800);
is($r->{result}, 'delivered', 'email delivered') or diag($r->{err});
is($r->{status}, 250, '... SMTP 250');
my $env = jsonl("$maildir/envelopes.jsonl");
is(scalar @$env, 1, 'the SMTP server received one message');
is_deeply($env->[0]{rcpt_tos}, ['alice@example.com'], '... for the recipient');
is($env->[0]{mail_from}, 'notify@todo.example', '... from the sender');
my $m = parse_eml("$maildir/$env->[0]{file}");
is_deeply($m->{defects}, [], 'the message parses without defects');
is($m->{from_addr}, 'notify@todo.example', 'From address');
is($m->{from_name}, 'Todo Bot', 'From display name');
is($m->{to}, 'alice@example.com', 'To');
is($m->{subject}, $subject, 'Subject (RFC 2047 encoded) decodes to the original');
like($m->{date_raw}, qr/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d [+-]\d{4}$/,
	'Date in RFC 5322 format');
is($m->{date_epoch}, 1767268800, '... and the given time');
is($m->{message_id}, "<notify.$id\@todo.example>", 'Message-ID derived from the notification id');
is($m->{mime_version}, '1.0', 'MIME-Version');
is($m->{content_type}, 'text/plain', 'Content-Type text/plain');
is($m->{charset}, 'utf-8', '... charset utf-8');
is($m->{cte}, 'quoted-printable', 'non-ASCII body: quoted-printable');
is($m->{body}, "$body\n", 'body decodes to the original text (dots and spaces kept)');
ok(!$m->{bare_lf}, 'CRLF line endings only');
cmp_ok($m->{longest_line}, '<=', 78, 'no line longer than 78');
ok(!$m->{trailing_ws}, 'no line ends in white space (RFC 2045 s6.7)');

$r = drive('email', @mail_common, '--to', 'alice@example.com', '--subject', 'Buy milk',
	'--body', "plain ascii\n", '--id', $id);
is($r->{result}, 'delivered', 'resend delivered') or diag($r->{err});
$env = jsonl("$maildir/envelopes.jsonl");
$m = parse_eml("$maildir/$env->[-1]{file}");
is($m->{message_id}, "<notify.$id\@todo.example>", 'a resend carries the same Message-ID');
is($m->{subject}, 'Buy milk', 'short ASCII subject');
is($m->{cte}, '7bit', 'ASCII body: 7bit');
is($m->{body}, "plain ascii\n", '... body intact');

my $n = scalar @$env;
$r = drive('email', @mail_common, '--to', 'refused@example.com', '--subject', 's', '--body', 'b',
	'--id', 'n1');
is($r->{result}, 'permanent', 'recipient refused (550): permanent');
is($r->{status}, 550, '... status 550');
$r = drive('email', @mail_common, '--to', 'later@example.com', '--subject', 's', '--body', 'b',
	'--id', 'n2');
is($r->{result}, 'transient', 'recipient deferred (451): transient');
$r = drive('email', @mail_common, '--to', "alice\@example.com\r\nBcc: eve\@evil.example",
	'--subject', 's', '--body', 'b', '--id', 'n3');
is($r->{result}, 'permanent', 'CR/LF in the recipient: refused');
like($r->{err}, qr/line break/, '... saying why');
$r = drive('email', @mail_common, '--to', 'alice@example.com',
	'--subject', "hi\r\nBcc: eve\@evil.example", '--body', 'b', '--id', 'n4');
is($r->{result}, 'permanent', 'CR/LF in the subject: refused');
$r = drive('email', @mail_common, '--to', 'Alice <alice@example.com>', '--subject', 's',
	'--body', 'b', '--id', 'n5');
is($r->{result}, 'permanent', 'a display name in the recipient: refused');
is(scalar @{ jsonl("$maildir/envelopes.jsonl") }, $n, '... none of these was accepted');

NotifyTest::stop_server($sink);
$r = drive('email', @mail_common, '--to', 'alice@example.com', '--subject', 's', '--body', 'b',
	'--id', 'n6', '--timeout-ms', 5000);
is($r->{result}, 'unavailable', 'SMTP server down: unavailable (pause, do not dead-letter)');
is($r->{status}, 0, '... no SMTP reply');

# STARTTLS and AUTH
$ENV{TK300_SINK_AUTH} = 'bob:s3cret-pw';
$ENV{TK300_PW} = 's3cret-pw';
$ENV{TK300_BAD_PW} = 'not-the-pw';
push @secrets, 's3cret-pw', 'not-the-pw';
my $tlsdir = "$dir/tls";
my ($tls_sink, $tport) = NotifyTest::start_server($dir, 'smtp_tls', "$lib/smtp_sink.py",
	'--dir', "$dir/mail_tls",
	'--tls-dir', $tlsdir, '--auth-env', 'TK300_SINK_AUTH');
my @tls_common = ('--url', "smtp://localhost:$tport", '--starttls', '--ca-file',
	"$tlsdir/cert.pem", '--from', 'notify@todo.example', '--to', 'alice@example.com',
	'--subject', 'over TLS', '--body', 'secret plans', '--id', 'tls1', '--user', 'bob');
$r = drive('email', @tls_common, '--password-env', 'TK300_PW');
is($r->{result}, 'delivered', 'STARTTLS + AUTH: delivered') or diag($r->{err});
$env = jsonl("$dir/mail_tls/envelopes.jsonl");
ok($env->[-1]{tls}, '... over TLS');
is($env->[-1]{login}, 'bob', '... authenticated as the configured user');
$r = drive('email', @tls_common, '--password-env', 'TK300_BAD_PW');
is($r->{result}, 'unavailable', 'wrong SMTP password: unavailable (pause, do not dead-letter all)');
is($r->{status}, 535, '... status 535');
like($r->{err}, qr/username and password/, '... saying what to check');
$r = drive('email', grep { $_ ne '--starttls' } @tls_common, '--password-env', 'TK300_PW');
is($r->{result}, 'unavailable', 'without STARTTLS the server refuses (530, it requires TLS): unavailable');
# a CA file of another CA (as after a certificate rotation): after the
# failed handshake the last reply is STARTTLS's 220, libcurl's error decides
my $i = 0;
my @wrong_ca = map { $i++ == 4 ? "$dir/wrong-ca.pem" : $_ } @tls_common;
($code, $o, $e) = NotifyTest::run_cmd('openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
	'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', "$dir/wrong-key.pem", '-out',
	"$dir/wrong-ca.pem", '-subj', '/CN=localhost', '-days', '1',
	'-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1');
is($code, 0, 'another CA generated with openssl') or diag($e);
$r = drive('email', @wrong_ca, '--password-env', 'TK300_PW');
is($r->{result}, 'unavailable', 'a CA file of another CA: unavailable');
is($r->{status}, 220, '... the last reply was 220 (STARTTLS)');
like($r->{err}, qr/certificate.*CA file/, '... saying to check the CA file') or diag($r->{err});
$r = drive('email', (map { $_ eq "$dir/wrong-ca.pem" ? "$dir/none.pem" : $_ } @wrong_ca),
	'--password-env', 'TK300_PW');
is($r->{result}, 'unavailable', 'a CA file that does not exist: unavailable');
NotifyTest::stop_server($tls_sink);
$r = drive('email', @tls_common, '--password-env', 'TK300_PW', '--timeout-ms', 5000);
is($r->{result}, 'unavailable', 'TLS server down: unavailable');

# a server without STARTTLS while it is required: unavailable (status 250)
my ($plain_sink, $plain_port) = NotifyTest::start_server($dir, 'smtp_plain', "$lib/smtp_sink.py",
	'--dir', "$dir/mail_plain");
$r = drive('email', '--url', "smtp://127.0.0.1:$plain_port", '--starttls', '--from', 'notify@todo.example',
	'--to', 'alice@example.com', '--subject', 's', '--body', 'b', '--id', 'tls2');
is($r->{result}, 'unavailable', 'STARTTLS required, not offered: unavailable');
like($r->{err}, qr/does not offer STARTTLS/, '... saying so');
is(scalar @{ jsonl("$dir/mail_plain/envelopes.jsonl") }, 0, '... nothing sent in the clear');
NotifyTest::stop_server($plain_sink);

my $leaks = grep { my $s = $_; grep { index($s, $_) >= 0 } @secrets } @all_stderr;
is($leaks, 0, 'no error text contains a private key, auth secret, token or password');

done_testing();
