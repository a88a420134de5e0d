=pod

=head1 NAME

DevBroker - start a todo-kafka-devbroker (librdkafka mock cluster) for a TAP test

=head1 SYNOPSIS

  use DevBroker;

  my $kafka = DevBroker->start(topics => ['t1:3', 't2'], brokers => 3);
  my $boot  = $kafka->bootstrap;             # "127.0.0.1:port,..."
  my $ans   = $kafka->command('down all');   # "ok down all (brokers 1-3)"
  my ($ok, $err) = $kafka->produce('t1', ['a', 'b'], key => 'k',
                                   headers => [h1 => 'v1']);
  my $msgs  = $kafka->consume('t1', count => 2, timeout => 30);
  my $total = $kafka->end_offsets('t1');
  $kafka->stop;

=head1 DESCRIPTION

Runs devbroker/todo-kafka-devbroker (or $ENV{TODO_KAFKA_DEVBROKER}) with
stdin from /dev/null, its stdout on a pipe (bootstrap line, then one answer
line per command) and its stderr in a log file under the test's tmp_check
directory.  Commands go through a FIFO in a private temporary directory.
Producing and consuming use kcat, an independent client.  A broker still
running when its object goes away (or the test ends) is killed.

=cut

package DevBroker;

use strict;
use warnings;

use Carp;
use Cwd qw(abs_path);
use Errno qw(ENXIO EAGAIN EINTR);
use Fcntl qw(O_WRONLY O_NONBLOCK);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IPC::Run;
use JSON::PP;
use Scalar::Util qw(weaken);
use Time::HiRes qw(sleep);

my %running;    # refaddr => weak ref, for the END block
my $serial = 0;

sub _repo_root
{
	return abs_path(dirname(__FILE__) . '/../..');
}

sub binary
{
	return $ENV{TODO_KAFKA_DEVBROKER}
	  // _repo_root() . '/devbroker/todo-kafka-devbroker';
}

sub _log_dir
{
	no warnings 'once';
	my $dir = $PostgreSQL::Test::Utils::tmp_check;
	$dir //= "$ENV{TESTDIR}/tmp_check" if defined $ENV{TESTDIR};
	$dir //= '/tmp';
	make_path($dir) unless -d $dir;
	return $dir;
}

=pod

=over

=item DevBroker->start(%args)

Starts a broker and waits (up to C<timeout> seconds, default 30) for its
bootstrap line.  Arguments: C<topics> (arrayref of "name" or
"name:partitions"; default: the project's topics), C<brokers> (default 3),
C<partitions> (default partition count, default 3), C<timeout>, C<args>
(arrayref of more options, e.g. C<--sasl-ssl>).
Dies with the log's tail if the broker does not come up.

=cut

sub start
{
	my ($class, %args) = @_;
	my $bin = binary();
	croak "devbroker binary \"$bin\" is missing: run \"make -C devbroker\""
	  unless -x $bin;

	my $dir = tempdir('devbroker_XXXXXX', TMPDIR => 1, CLEANUP => 1);
	my $name = $args{name} // 'devbroker';
	$serial++;
	my $self = bless {
		fifo => "$dir/control",
		log_file => _log_dir() . "/${name}_$$\_$serial.log",
		timeout => $args{timeout} // 30,
		out => '',
	}, $class;

	my @cmd = ($bin, '--control', $self->{fifo});
	push @cmd, '-n', $args{brokers} if defined $args{brokers};
	push @cmd, '-p', $args{partitions} if defined $args{partitions};
	push @cmd, map { ('-t', $_) } @{ $args{topics} // [] };
	push @cmd, @{ $args{args} // [] };

	$self->{handle} = IPC::Run::start(\@cmd, '<', '/dev/null',
		'>', \$self->{out}, '2>', $self->{log_file});
	$running{"$self"} = $self;
	weaken($running{"$self"});

	my $line = $self->_read_line('the bootstrap line');
	croak "devbroker printed \"$line\" instead of bootstrap.servers"
	  unless $line =~ /^[\w.\-]+:\d+(,[\w.\-]+:\d+)*$/;
	$self->{bootstrap} = $line;
	return $self;
}

=pod

=item $kafka->bootstrap, $kafka->log_file

The bootstrap.servers list, and the file holding the broker's stderr.

=cut

sub bootstrap { return $_[0]->{bootstrap}; }
sub log_file { return $_[0]->{log_file}; }

sub _log_tail
{
	my ($self) = @_;
	open(my $fh, '<', $self->{log_file}) or return '';
	my @lines = <$fh>;
	close $fh;
	splice(@lines, 0, -20) if @lines > 20;
	return join('', @lines);
}

# Pump the broker's stdout until one whole line is there; return it.
sub _read_line
{
	my ($self, $what) = @_;
	my $timer = IPC::Run::timer($self->{timeout});
	$timer->start;
	while ($self->{out} !~ /\n/)
	{
		if (!$self->{handle}->pumpable)
		{
			$self->{handle}->finish;
			croak "devbroker exited (status $?) while waiting for $what; log "
			  . "$self->{log_file}:\n" . $self->_log_tail;
		}
		croak "timed out after $self->{timeout}s waiting for $what from devbroker"
		  if $timer->is_expired;
		$self->{handle}->pump_nb;
		sleep(0.02);
	}
	$self->{out} =~ s/^([^\n]*)\n//;
	return $1;
}

=pod

=item $kafka->command($line)

Sends one control command (see C<todo-kafka-devbroker --help>) through the
FIFO and returns the broker's answer line, "ok ..." or "error: ...".

=cut

sub command
{
	my ($self, $cmd) = @_;
	croak "command must be one line" if $cmd =~ /\n/;
	croak "devbroker is not running" unless $self->{handle};

	# open non-blocking, so a missing reader is an error instead of a hang
	my $fh;
	my $deadline = time + $self->{timeout};
	until (sysopen($fh, $self->{fifo}, O_WRONLY | O_NONBLOCK))
	{
		croak "cannot open control FIFO $self->{fifo}: $!"
		  unless ($!{ENXIO} || $!{EINTR}) && time < $deadline;
		sleep(0.05);
	}
	my $buf = "$cmd\n";
	while (length $buf)
	{
		my $n = syswrite($fh, $buf);
		if (!defined $n)
		{
			croak "cannot write to control FIFO: $!" unless $!{EAGAIN} || $!{EINTR};
			sleep(0.01);
			next;
		}
		substr($buf, 0, $n) = '';
	}
	close $fh;
	return $self->_read_line("the answer to \"$cmd\"");
}

sub _kcat
{
	my ($self, $stdin, @args) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'kcat', '-b', $self->{bootstrap}, @args ],
		'<', \$stdin, '>', \$out, '2>', \$err,
		IPC::Run::timeout($self->{timeout} + 30));
	return ($ok, $out, $err);
}

=pod

=item $kafka->produce($topic, \@payloads, key => K, headers => [k, v, ...], partition => P, conf => {prop => value})

Produces the payloads (one message each, in order; payloads must not contain
newlines) with kcat.  Returns (true if kcat succeeded, kcat's stderr).

=cut

sub produce
{
	my ($self, $topic, $payloads, %opt) = @_;
	my @args = ('-P', '-t', $topic);
	push @args, '-k', $opt{key} if defined $opt{key};
	push @args, '-p', $opt{partition} if defined $opt{partition};
	my @h = @{ $opt{headers} // [] };
	while (my ($k, $v) = splice(@h, 0, 2))
	{
		push @args, '-H', "$k=$v";
	}
	push @args, map { ('-X', "$_=$opt{conf}{$_}") } sort keys %{ $opt{conf} // {} };
	my ($ok, undef, $err) =
	  $self->_kcat(join('', map { "$_\n" } @$payloads), @args);
	return ($ok, $err);
}

=pod

=item $kafka->consume($topic, count => N, timeout => S)

Reads the topic from the beginning to its end with C<kcat -C -J -e>; with
C<count>, reads again until at least N messages are there or C<timeout>
(default: the start timeout) passes.  Returns an arrayref of
{topic, partition, offset, key, payload, headers => [k, v, ...], timestamp}
sorted by partition and offset (undef key/payload for null; timestamp is
the message's Kafka timestamp in Unix milliseconds, undef when it has none).

=cut

sub consume
{
	my ($self, $topic, %opt) = @_;
	my $deadline = time + ($opt{timeout} // $self->{timeout});
	my $json = JSON::PP->new;
	my @msgs;
	while (1)
	{
		my ($ok, $out, $err) =
		  $self->_kcat('', '-C', '-J', '-e', '-q', '-o', 'beginning', '-t', $topic);
		croak "kcat -C -t $topic failed: $err" unless $ok;
		@msgs = map {
			my $m = $json->decode($_);
			{
				topic => $m->{topic},
				partition => $m->{partition},
				offset => $m->{offset},
				key => $m->{key},
				payload => $m->{payload},
				headers => $m->{headers} // [],
				timestamp => ($m->{ts} // -1) >= 0 ? $m->{ts} : undef,
			}
		} grep { /^\{/ } split /\n/, $out;
		last if !defined $opt{count} || @msgs >= $opt{count} || time >= $deadline;
		sleep(0.2);
	}
	@msgs = sort {
		$a->{partition} <=> $b->{partition} || $a->{offset} <=> $b->{offset}
	} @msgs;
	return \@msgs;
}

=pod

=item $kafka->end_offsets($topic)

Sum of the partitions' high watermarks (kcat -Q): the number of messages
ever produced to the topic, even after the mock dropped old ones.

=cut

sub end_offsets
{
	my ($self, $topic) = @_;
	my ($ok, $out, $err) = $self->_kcat('', '-L', '-J', '-t', $topic);
	croak "kcat -L -t $topic failed: $err" unless $ok;
	my $md = JSON::PP->new->decode($out);
	my ($t) = grep { $_->{topic} eq $topic } @{ $md->{topics} };
	croak "topic $topic not in metadata" unless $t && @{ $t->{partitions} };

	($ok, $out, $err) = $self->_kcat('', '-Q',
		map { ('-t', "$topic:$_->{partition}:-1") } @{ $t->{partitions} });
	croak "kcat -Q -t $topic failed: $err" unless $ok;
	my $sum = 0;
	my $seen = 0;
	while ($out =~ /\[(\d+)\]\s+offset\s+(-?\d+)/g)
	{
		croak "no end offset for $topic [$1]: $2" if $2 < 0;
		$sum += $2;
		$seen++;
	}
	croak "kcat -Q returned $seen of " . scalar(@{ $t->{partitions} })
	  . " partitions of $topic:\n$out"
	  unless $seen == @{ $t->{partitions} };
	return $sum;
}

=pod

=item $kafka->stop

SIGTERM, then waits for the exit; returns the exit code (0 expected; -1 if
it died of a signal).
Killed with SIGKILL if it does not exit within the timeout.

=back

=cut

sub stop
{
	my ($self) = @_;
	my $h = delete $self->{handle} or return;
	delete $running{"$self"};
	eval { $h->signal('TERM') };    # fails only if it is gone already
	my $ok = eval {
		$h->finish(IPC::Run::timeout($self->{timeout}));
		1;
	};
	if (!$ok)
	{
		$h->kill_kill(grace => 1);
		carp "devbroker did not stop on SIGTERM; killed";
	}
	my $status = $h->full_result;
	return ($status & 127) ? -1 : $status >> 8;
}

sub DESTROY
{
	my ($self) = @_;
	local ($?, $@);
	$self->{handle}->kill_kill(grace => 1) if $self->{handle};
	delete $running{"$self"};
}

END
{
	local $?;
	for my $b (grep { defined } values %running)
	{
		$b->{handle}->kill_kill(grace => 1) if $b->{handle};
	}
}

1;
