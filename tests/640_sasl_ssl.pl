# tests/640_sasl_ssl.pl: the daemons over SASL_SSL + SCRAM-SHA-512, as the
# README's Deploying section configures them, against the devbroker's
# SASL_SSL front (todo-kafka-devbroker --sasl-ssl, devbroker/sasl_front.c).
#
# A throwaway CA and broker certificate are made with openssl.  kcat
# (librdkafka's own SCRAM client, independent of the front) produces and
# consumes over SASL_SSL; a wrong password and a PLAINTEXT client are
# refused; metadata names only the front listeners.  A second SCRAM client
# (Python's hashlib/hmac) covers what librdkafka 2.0.2 does not send:
# SaslAuthenticate v2 and the raw tokens after a v0 handshake.  Then the relay and the
# audit service run with --profile production and the Deploying section's
# settings (a config file with kafka.security.protocol etc., the password in
# TODO_KAFKA_KAFKA_SASL_PASSWORD): an add_task change is published, read back
# by kcat over SASL_SSL, and lands in audit_log.  No password in any log.

use strict;
use warnings;

use File::Temp qw(tempdir);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use TodoKafkaTest;
use DevBroker;

my $dir = tempdir('t640_XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub run_quiet
{
	my @cmd = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '<', '/dev/null', '>', \$out, '2>', \$err)
	  or BAIL_OUT("@cmd failed: $err");
	return $out;
}

# a throwaway CA, and a broker certificate it signs for 127.0.0.1
run_quiet('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
	'-subj', '/CN=t640 test CA', '-keyout', "$dir/ca.key", '-out', "$dir/ca.pem");
run_quiet('openssl', 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost',
	'-keyout', "$dir/broker.key", '-out', "$dir/broker.csr");
open(my $ext, '>', "$dir/ext.cnf") or die "$dir/ext.cnf: $!";
print $ext "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
close $ext;
run_quiet('openssl', 'x509', '-req', '-days', '2', '-in', "$dir/broker.csr",
	'-CA', "$dir/ca.pem", '-CAkey', "$dir/ca.key", '-CAcreateserial',
	'-extfile', "$dir/ext.cnf", '-out', "$dir/broker.pem");

# one SCRAM user per daemon, as deploy/kafka/users.sh makes them, and one for kcat;
# the daemons' passwords reach the devbroker through files, kcat's on the command line
my %pw = (relay => 'relay-kafka-secret-t640', audit => 'audit-kafka-secret-t640',
	probe => 'probe-kafka-secret-t640');
my @users;
for my $d (qw(relay audit))
{
	open(my $fh, '>', "$dir/$d.pw") or die "$dir/$d.pw: $!";
	print $fh "$pw{$d}\n";
	close $fh;
	push @users, '--scram-user', "todo-kafka-$d:\@$dir/$d.pw";
}
push @users, '--scram-user', "t640-probe:$pw{probe}";

my $node = TodoKafkaTest::new_node('t640');
my $t = TodoKafkaTest::use_topics($node, 't640');
my $kafka = DevBroker->start(
	topics => [ 't640.probe', sort values %$t ],
	args => [ '--sasl-ssl', "$dir/broker.pem,$dir/broker.key", @users ]);
my @front = split /,/, $kafka->bootstrap;
is(scalar @front, 3, 'the bootstrap line names three front listeners');

# kcat over SASL_SSL; returns (ok, stdout, stderr)
sub kcat
{
	my ($user, $pass, $in, @args) = @_;
	my ($out, $err) = ('', '');
	my @sasl = $user ? ('-X', 'security.protocol=SASL_SSL', '-X', 'sasl.mechanism=SCRAM-SHA-512',
		'-X', "sasl.username=$user", '-X', "sasl.password=$pass",
		'-X', "ssl.ca.location=$dir/ca.pem") : ();
	my $ok = eval {
		IPC::Run::run([ 'kcat', '-b', $kafka->bootstrap, @sasl, @args ],
			'<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout(90));
	};
	$err .= $@ if $@;
	return ($ok, $out, $err);
}

# (1) produce and consume over SASL_SSL
my ($ok, $out, $err) = kcat('t640-probe', $pw{probe}, "over sasl_ssl\n",
	'-P', '-t', 't640.probe', '-k', 'k640');
ok($ok, 'kcat produces over SASL_SSL with SCRAM-SHA-512') or diag($err);
($ok, $out, $err) = kcat('t640-probe', $pw{probe}, '',
	'-C', '-t', 't640.probe', '-o', 'beginning', '-c', '1', '-f', '%k %s\n');
is($out, "k640 over sasl_ssl\n", 'kcat consumes it back over SASL_SSL') or diag($err);

# metadata names the fronts only, never a mock broker's port
($ok, $out, $err) = kcat('t640-probe', $pw{probe}, '', '-L', '-t', 't640.probe');
my @listed = $out =~ /broker \d+ at (\S+)/g;
is_deeply([ sort @listed ], [ sort @front ], 'metadata lists the front listeners, not the mock brokers')
  or diag("$out\n$err");

# (2) a wrong password is refused with an authentication error
($ok, $out, $err) = kcat('t640-probe', 'not-the-password', '', '-L', '-m', '10');
ok(!$ok, 'kcat with a wrong password fails');
like($err, qr/SASL authentication error: Authentication failed .* invalid credentials/,
	'... with SASL_AUTHENTICATION_FAILED and its message');
($ok, $out, $err) = kcat('nobody', 'x', '', '-L', '-m', '10');
ok(!$ok && $err =~ /Authentication failed/, 'an unknown user is refused alike');

# (3) PLAINTEXT to a front port is refused: no TLS, no Kafka
($ok, $out, $err) = kcat(undef, undef, '', '-L', '-m', '10');
ok(!$ok && $out !~ /broker \d+ at/, 'a PLAINTEXT client gets no metadata from the front');
ok(wait_until('the refusal in the log',
	sub { TodoKafkaTest::slurp($kafka->log_file) =~ /TLS handshake failed/ }, 30),
	'the devbroker logs the failed TLS handshake');

# (1b) SaslAuthenticate v2 (flexible) and the v0 handshake's raw SCRAM tokens,
# which librdkafka 2.0.2 does not use: a second SCRAM client (Python's
# hashlib/hmac, RFC 5802 as written), then Metadata v1 from the same connection
my $scram_py = <<'PY';
import base64, hashlib, hmac, os, socket, ssl, struct, sys
port, ca, user, pw, mode = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(port))), server_hostname='127.0.0.1')
def readn(n):
    d = b''
    while len(d) < n:
        c = s.recv(n - len(d))
        if not c:
            sys.exit('connection closed')
        d += c
    return d
def send(b): s.sendall(struct.pack('>i', len(b)) + b)
def recv(): return readn(struct.unpack('>i', readn(4))[0])
def hdr(key, ver, corr, flex=False): return struct.pack('>hhih', key, ver, corr, 4) + b't640' + (b'\0' if flex else b'')
def uvar(n):
    o = b''
    while n >= 0x80: o += bytes([n & 0x7f | 0x80]); n >>= 7
    return o + bytes([n])
def get_uvar(b, i):
    v = sh = 0
    while True:
        v |= (b[i] & 0x7f) << sh; i += 1; sh += 7
        if not b[i - 1] & 0x80: return v, i
def step(msg, corr):
    if mode == 'raw':
        send(msg); return recv()
    send(hdr(36, 2, corr, True) + uvar(len(msg) + 1) + msg + b'\0')
    r = recv()
    err = struct.unpack('>h', r[5:7])[0]
    n, i = get_uvar(r, 7)
    emsg = r[i:i + n - 1].decode() if n else ''
    n, i = get_uvar(r, i + max(n - 1, 0))
    if err: sys.exit('SaslAuthenticate error %d: %s' % (err, emsg))
    return r[i:i + n - 1]
send(hdr(17, 0 if mode == 'raw' else 1, 1) + struct.pack('>h', 13) + b'SCRAM-SHA-512')
assert struct.unpack('>h', recv()[4:6])[0] == 0, 'handshake refused'
cnonce = base64.b64encode(os.urandom(18)).decode()
bare = 'n=%s,r=%s' % (user, cnonce)
sf = step(('n,,' + bare).encode(), 2).decode()
a = dict(kv.split('=', 1) for kv in sf.split(','))
assert a['r'].startswith(cnonce) and len(a['r']) > len(cnonce), 'server nonce'
salted = hashlib.pbkdf2_hmac('sha512', pw.encode(), base64.b64decode(a['s']), int(a['i']))
ck = hmac.new(salted, b'Client Key', 'sha512').digest()
wo = 'c=biws,r=' + a['r']
am = ('%s,%s,%s' % (bare, sf, wo)).encode()
sig = hmac.new(hashlib.sha512(ck).digest(), am, 'sha512').digest()
proof = base64.b64encode(bytes(x ^ y for x, y in zip(ck, sig))).decode()
final = step(('%s,p=%s' % (wo, proof)).encode(), 3).decode()
sk = hmac.new(salted, b'Server Key', 'sha512').digest()
assert final == 'v=' + base64.b64encode(hmac.new(sk, am, 'sha512').digest()).decode(), 'server signature'
print('authenticated, %s iterations' % a['i'])
send(hdr(3, 1, 4) + struct.pack('>i', -1))
r = recv()
n, i = struct.unpack('>i', r[4:8])[0], 8
for _ in range(n):
    hl = struct.unpack('>h', r[i + 4:i + 6])[0]
    host, port = r[i + 6:i + 6 + hl].decode(), struct.unpack('>i', r[i + 6 + hl:i + 10 + hl])[0]
    rl = struct.unpack('>h', r[i + 10 + hl:i + 12 + hl])[0]
    i += 12 + hl + max(rl, 0)
    print('broker %s:%d' % (host, port))
PY
my ($fport) = $front[0] =~ /:(\d+)$/;
for my $mode (qw(v2 raw))
{
	my ($pout, $perr) = ('', '');
	IPC::Run::run([ 'python3', '-c', $scram_py, $fport, "$dir/ca.pem", 't640-probe', $pw{probe}, $mode ],
		'>', \$pout, '2>', \$perr, IPC::Run::timeout(60));
	like($pout, qr/^authenticated, (\d+) iterations\n/, "$mode: SCRAM-SHA-512 with a second client")
	  or diag($perr);
	ok(($pout =~ /authenticated, (\d+)/)[0] >= 4096, "$mode: 4096 or more PBKDF2 iterations");
	is_deeply([ sort $pout =~ /^broker (\S+)$/mg ], [ sort @front ],
		"$mode: then Metadata v1 names the front listeners");
	($pout, $perr) = ('', '');
	IPC::Run::run([ 'python3', '-c', $scram_py, $fport, "$dir/ca.pem", 't640-probe', 'wrong', $mode ],
		'>', \$pout, '2>', \$perr, IPC::Run::timeout(60));
	like($perr, $mode eq 'v2' ? qr/SaslAuthenticate error 58: Authentication failed/ : qr/connection closed/,
		"$mode: a wrong password is refused" . ($mode eq 'v2' ? ' with error 58' : ', the connection closed'));
}

# (4) the relay, --profile production, configured as the Deploying section says
sub daemon_conf
{
	my ($d) = @_;
	my $file = "$dir/$d.conf";
	open(my $fh, '>', $file) or die "$file: $!";
	print $fh "profile = production\n",
	  "kafka.security.protocol = SASL_SSL\n",
	  "kafka.sasl.mechanism = SCRAM-SHA-512\n",
	  "kafka.sasl.username = todo-kafka-$d\n",
	  "kafka.ssl.ca.location = $dir/ca.pem\n";
	close $fh;
	return $file;
}

my $relay;
{
	local $ENV{TODO_KAFKA_KAFKA_SASL_PASSWORD} = $pw{relay};
	$relay = TodoKafkaTest->start_relay($node, $kafka, args => [ '-c', daemon_conf('relay') ]);
}
ok($relay->wait_log(qr/acquired leadership/), 'the production relay leads over SASL_SSL');

my $id = $node->safe_psql('postgres',
	"SELECT id FROM todo_kafka.add_task('alice', 'deploy check t640')");
($ok, $out, $err) = kcat('todo-kafka-audit', $pw{audit}, '',
	'-C', '-t', $t->{audit}, '-o', 'beginning', '-c', '1', '-f', '%s\n');
like($out, qr/\Q$id\E/, 'the add_task change is on Kafka, read back by kcat as the audit user')
  or diag("$err\nrelay log:\n" . $relay->log_text);

# (5) the audit service, --profile production over SASL_SSL, consumes it
my $audit;
{
	local $ENV{TODO_KAFKA_KAFKA_SASL_PASSWORD} = $pw{audit};
	$audit = TodoKafkaTest->start_service('audit', $node, $kafka,
		args => [ '-c', daemon_conf('audit') ]);
}
ok(wait_until('the audit row',
	sub { $node->safe_psql('postgres',
		"SELECT count(*) FROM todo_kafka.audit_log WHERE task_id = '$id'") >= 1 }, 90),
	'the production audit service writes it to audit_log')
  or diag("audit log:\n" . $audit->log_text);
like(TodoKafkaTest::slurp($kafka->log_file),
	qr/authenticated as "todo-kafka-audit"/,
	'the devbroker saw the audit service log in as its own user');
like(TodoKafkaTest::slurp($kafka->log_file), qr/authenticated as "todo-kafka-relay"/,
	'... and the relay as its own');

# no password in any log: the devbroker's, the daemons', the whole log directory
$relay->stop;
$audit->stop;
my @logs = ($kafka->log_file, glob("$PostgreSQL::Test::Utils::log_path/*"));
my @leaks;
for my $f (@logs)
{
	my $text = TodoKafkaTest::slurp($f) // '';
	push @leaks, "$f: $_" for grep { index($text, $pw{$_}) >= 0 } sort keys %pw;
}
is_deeply(\@leaks, [], 'no password appears in any log');

$kafka->stop;
done_testing();
