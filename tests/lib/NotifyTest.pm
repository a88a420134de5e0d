=pod

=head1 NAME

NotifyTest - real receivers and a todo-kafka-notify for the notification tests

=head1 SYNOPSIS

  use NotifyTest;
  my $rx = NotifyTest->new(push_status => { '/gone' => 410 });
  $rx->start_smtp;                       # tests/lib/smtp_sink.py
  $rx->start_smtp(tls_dir => $d);        # ... requiring STARTTLS, CA file $d/cert.pem
  $rx->start_push;                       # tests/lib/push_receiver.py
  $rx->allow_loopback_receivers($node);  # the database's push host lists
  my $conf = $rx->config(%extra);        # a todo-kafka-notify config file
  my $svc = TodoKafkaTest->start_service('notify', $node, $kafka, args => ['-c', $conf]);
  my $mails = $rx->emails;               # parsed by Python's email package
  my $pushes = $rx->pushes;              # the receiver's JSON log lines
  my $url = $rx->start_alerts;           # for --alert-webhook; $rx->alerts
  $rx->stop;                             # every receiver (also done at exit)

=head1 DESCRIPTION

The receivers are independent of the C code: the SMTP sink is Debian's
aiosmtpd, each message parsed with Python's email package; the push
receiver verifies VAPID and decrypts aes128gcm with Python's cryptography
package.  Both write their port to a file; the SMTP sink can be stopped and
started again on the same port (an outage).  Python: $TK_PYTHON, else
/usr/bin/python3.

No test can leave a receiver running: an END block stops every server
still running when the test exits (normally or by dying); global
destruction frees objects in no set order, so the destructor alone could
find its IPC::Run harnesses already gone.  NotifyTest::start_server and
stop_server serve tests that run receivers of their own (300).

=cut

package NotifyTest;

use strict;
use warnings;

use Carp;
use File::Temp qw(tempdir);
use IPC::Run;
use JSON::PP;
use Scalar::Util qw(refaddr);
use Time::HiRes qw(sleep time);

use TodoKafkaTest;

my $py = $ENV{TK_PYTHON} // (-x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3');
my $lib = TodoKafkaTest::repo_root() . '/tests/lib';
my %running;    # refaddr => every server harness not yet stopped (END stops them)

sub new
{
	my ($class, %opt) = @_;
	my $dir = tempdir('tknotify-XXXX', TMPDIR => 1, CLEANUP => 1);
	my $self = bless { dir => $dir, opt => \%opt, json => JSON::PP->new->canonical }, $class;
	my ($code, $o, $e) = run_cmd($py, "$lib/push_receiver.py", 'gen-subscription', "$dir/sub.json");
	croak "gen-subscription: $e" if $code;
	$self->{sub} = $self->{json}->decode($o);
	($code, $o, $e) = run_cmd($py, "$lib/push_receiver.py", 'gen-vapid', "$dir/vapid.pem");
	croak "gen-vapid: $e" if $code;
	$self->{vapid} = $self->{json}->decode($o);
	mkdir "$dir/mail";
	return $self;
}

sub dir { return $_[0]->{dir}; }
sub subscription { return $_[0]->{sub}; }
sub vapid { return $_[0]->{vapid}; }
sub smtp_port { return $_[0]->{smtp_port}; }
sub push_origin { return "http://127.0.0.1:$_[0]->{push_port}"; }

sub run_cmd
{
	my (@cmd) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run(\@cmd, '<', \undef, '>', \$o, '2>', \$e);
	return ($? >> 8, $o, $e);
}


# a python server (tests/lib script and arguments) that writes its port to
# a file; its output goes to DIR/NAME.log; returns (harness, port).  For
# tests with receivers of their own (300): stop it with stop_server, or
# the END block does
sub start_server
{
	my ($dir, $name, @cmd) = @_;
	my $port_file = "$dir/$name.port";
	unlink $port_file;
	my $log = "$dir/$name.log";
	my $h = IPC::Run::start([ $py, @cmd, '--port-file', $port_file ],
		'<', \undef, '>>', $log, '2>>', $log);
	$running{ refaddr $h } = $h;
	wait_until("$name to write its port", sub { -s $port_file || !$h->pumpable }, 30, 0.05);
	croak "$name did not start: " . TodoKafkaTest::slurp($log) unless -s $port_file;
	chomp(my $port = TodoKafkaTest::slurp($port_file));
	return ($h, $port);
}

# SIGTERM and reap a server from start_server if it still runs; $? kept
sub stop_server
{
	my ($h) = @_;
	return unless $h && delete $running{ refaddr $h };
	local $?;
	eval { $h->signal('TERM') if $h->pumpable; $h->finish; };
}

# this object's receiver NAME (smtp, push, alerts); a second start of a
# receiver replaces the first
sub _start_server
{
	my ($self, $name, @cmd) = @_;
	$self->_stop_server($name);
	return start_server($self->{dir}, $name, @cmd);
}

sub _stop_server { stop_server(delete $_[0]->{ $_[1] }); }

# the SMTP sink; again on the same port after stop_smtp; delay => secs per
# message, tls_dir => D (STARTTLS required, its CA file D/cert.pem),
# defer => [address prefixes answered 451]
sub start_smtp
{
	my ($self, %opt) = @_;
	my @args = ("$lib/smtp_sink.py", '--dir', "$self->{dir}/mail");
	push @args, '--port', $self->{smtp_port} if $self->{smtp_port};
	push @args, '--delay', $opt{delay} if $opt{delay};
	push @args, '--tls-dir', $opt{tls_dir} if $opt{tls_dir};
	push @args, map { ('--defer', $_) } @{ $opt{defer} // [] };
	($self->{smtp}, $self->{smtp_port}) = $self->_start_server('smtp', @args);
	return $self->{smtp_port};
}

# the port stays: start_smtp starts it again there
sub stop_smtp { $_[0]->_stop_server('smtp'); }

# every receiver
sub stop
{
	my ($self) = @_;
	$self->_stop_server($_) for qw(smtp push alerts);
}

sub start_push
{
	my ($self, %o) = @_;
	my %st = %{ $self->{opt}{push_status} // {} };
	my @tls = $o{tls_name} ? ('--tls-name', $o{tls_name}, '--tls-dir', $self->push_tls_dir) : ();
	($self->{push}, $self->{push_port}) = $self->_start_server('push',
		"$lib/push_receiver.py", 'serve', '--subscription', "$self->{dir}/sub.json",
		'--log', "$self->{dir}/push.jsonl", '--vapid-public', $self->{vapid}{public_b64url},
		@tls, map { ('--status', "$_=$st{$_}") } sort keys %st);
	return $self->{push_port};
}

sub push_tls_dir { return "$_[0]->{dir}/push-tls"; }

# the extension accepts endpoints and gateways on 127.0.0.1 (new sessions)
sub allow_loopback_receivers
{
	my ($self, $node) = @_;
	$node->safe_psql('postgres',
		"ALTER DATABASE postgres SET todo_kafka.push_allowed_hosts = '127.0.0.1';
		 ALTER DATABASE postgres SET todo_kafka.push_gateway_allowed_hosts = '127.0.0.1';");
}

# tests/lib/webhook_receiver.py for --alert-webhook; returns its URL
sub start_alerts
{
	my ($self) = @_;
	($self->{alerts}, my $port) = $self->_start_server('alerts',
		"$lib/webhook_receiver.py", '--log', "$self->{dir}/alerts.jsonl");
	return "http://127.0.0.1:$port/alerts";
}

# the alerts received, in order: their JSON bodies
sub alerts
{
	my ($self) = @_;
	return [ map { $self->{json}->decode($_)->{json} // {} } grep { length }
		  split /\n/, TodoKafkaTest::slurp("$self->{dir}/alerts.jsonl") ];
}

# a config file for todo-kafka-notify pointing at the receivers; a key
# given as undef is left out (the service's default)
sub config
{
	my ($self, %extra) = @_;
	my %c = (
		smtp_url => "smtp://127.0.0.1:" . ($self->{smtp_port} // 25),
		smtp_from => 'reminders@todo.example',
		vapid_key => "$self->{dir}/vapid.pem",
		vapid_subject => 'mailto:ops@todo.example',
		retry_base_ms => 100,
		retry_max_ms => 1000,
		outage_retry_max_ms => 1000,
		smtp_timeout_ms => 5000,
		push_allowed_hosts => '127.0.0.1',
		push_gateway_allowed_hosts => '127.0.0.1',
		push_allow_loopback => 'true',
		%extra);
	my $f = "$self->{dir}/notify-" . ++$self->{nconf} . '.conf';
	open my $fh, '>', $f or croak "$f: $!";
	print $fh map { defined $c{$_} ? "$_ = $c{$_}\n" : () } sort keys %c;
	close $fh;
	return $f;
}

# every message the sink accepted, parsed by Python's email package, in order
sub emails
{
	my ($self) = @_;
	my $script = <<'PY';
import email, email.policy, json, os, sys
d = sys.argv[1]
out = []
for f in sorted((f for f in os.listdir(d) if f.endswith('.eml')), key=lambda f: int(f[:-4])):
    with open(os.path.join(d, f), 'rb') as fh:
        m = email.message_from_binary_file(fh, policy=email.policy.default)
    out.append({'file': f, 'from': str(m['From']), 'to': str(m['To']),
                'subject': str(m['Subject']), 'date': str(m['Date']),
                'date_ok': m['Date'].datetime is not None,
                'message_id': str(m['Message-ID']),
                'auto_submitted': str(m['Auto-Submitted']),
                'traceparent': m['Traceparent'] and str(m['Traceparent']),
                'content_type': m.get_content_type(),
                'body': m.get_content()})
print(json.dumps(out))
PY
	my ($code, $o, $e) = run_cmd($py, '-c', $script, "$self->{dir}/mail");
	croak "parsing the mail: $e" if $code;
	return $self->{json}->decode($o);
}

# the push receiver's log, one hash per request
sub pushes
{
	my ($self) = @_;
	return [ map { $self->{json}->decode($_) } grep { length }
		  split /\n/, TodoKafkaTest::slurp("$self->{dir}/push.jsonl") ];
}

sub DESTROY { $_[0]->stop; }

END
{
	stop_server($_) for values %running;
}

1;
