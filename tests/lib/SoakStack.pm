=pod

=head1 NAME

SoakStack - the whole todo_kafka system, started as an operator would, for tests/soak

=head1 DESCRIPTION

One PostgreSQL node (track_commit_timestamp on, so a change's commit time
is known), a devbroker with 3 brokers, two relays (leader + standby), two
todo-kafka-audit processes in one group, todo-kafka-project, todo-kafka-notify
as three stage processes (fanout, email, realtime), the SMTP sink and the Web
Push receiver of NotifyTest, every daemon with --metrics-listen.  Each daemon
is a TodoKafkaTest daemon object, kept in $stack->{d}{NAME} so that a fault
can SIGKILL it and start it again with the same command line.

Logins and the notify configuration are set up in ONE place (%LOGIN and
notify_config below): the services' database roles and notify's settings
are what parallel work changes, so that is all that needs adjusting.

Topic readers: see SoakReaders (live kcat per partition, coverage of
every offset proved at the end).  The partition count of every topic is
the partitions option (the devbroker keeps at most 5 MiB per partition).

=cut

package SoakStack;

use strict;
use warnings;

use Carp;
use File::Path ();
use IPC::Run;
use Time::HiRes qw(sleep time);
use TodoKafkaTest;
use NotifyTest;
use SoakReaders;

# ---- the one place for logins: service => the NOLOGIN role its login gets.
# undef: the bootstrap superuser.  Each service logs in with its own role.
our %LOGIN = (
	app => 'todo_kafka_app',
	relay => 'todo_kafka_relay',
	audit => 'todo_kafka_audit_writer',
	project => 'todo_kafka_projector',
	notify => 'todo_kafka_notifier',
);

# ---- the one place for notify's settings (besides NotifyTest's receivers):
# NotifyTest's config allows its loopback receivers (push_allow_loopback).
sub notify_config
{
	my ($rx) = @_;
	return $rx->config(retry_base_ms => 200, retry_max_ms => 2000, outage_retry_max_ms => 2000);
}

# the streams a consumer reads, and the groups that read each (poison check)
our %CONSUMED = (
	task_events => [qw(project notify-fanout)],
	audit => [qw(audit)],
	reminders => [qw(notify-fanout)],
	notifications => [qw(notify-email notify-realtime)],
);

# the streams read live, and the partition count of every topic
our @STREAMS = qw(task_events audit task_updates reminders notifications dead_letter);
our $PARTITIONS = 3;

my $current;    # for END: the receivers of a run that died on the way

sub new
{
	my ($class, %opt) = @_;
	my $self = bless { d => {}, logs => [], opt => \%opt, gone => $opt{gone} // [] }, $class;
	$current = $self;
	# a run before this one in the same directory leaves its data directory
	File::Path::rmtree("$PostgreSQL::Test::Utils::tmp_check/t_soak_soak_data");
	$PARTITIONS = $opt{partitions} if $opt{partitions};
	my $s = TodoKafkaTest->start_stack('soak', brokers => 3, relay => 0,
		partitions => { map { ($_ => $PARTITIONS) } @STREAMS },
		node_conf => "max_connections = 120\ntrack_commit_timestamp = on\n"
		  . "shared_buffers = 128MB\nsynchronous_commit = on\n");
	@$self{qw(node topics kafka)} = @$s{qw(node topics kafka)};
	$self->{stack} = $s;
	$self->setup_logins;
	return $self;
}

sub node { return $_[0]->{node}; }
sub kafka { return $_[0]->{kafka}; }
sub topic { return $_[0]->{topics}{ $_[1] }; }
sub sql { return $_[0]->{node}->safe_psql('postgres', $_[1]); }

sub setup_logins
{
	my ($self) = @_;
	for my $svc (sort keys %LOGIN)
	{
		next unless defined $LOGIN{$svc};
		$self->sql("CREATE ROLE soak_$svc LOGIN; GRANT $LOGIN{$svc} TO soak_$svc");
	}
}

# the libpq connection string a service logs in with
sub connstr
{
	my ($self, $svc) = @_;
	my $c = $self->{node}->connstr('postgres');
	return defined $LOGIN{$svc} ? "$c user=soak_$svc" : $c;
}

# the receivers: SMTP sink, push receiver (410 for the "gone" endpoints)
sub start_receivers
{
	my ($self) = @_;
	$self->{rx} = NotifyTest->new(push_status => { map { ($_ => 410) } @{ $self->{gone} } });
	$self->{rx}->start_smtp;
	$self->{rx}->start_push;
	# the push receiver is on 127.0.0.1: the extension must accept it too
	$self->{rx}->allow_loopback_receivers($self->{node});
	$self->{notify_conf} = notify_config($self->{rx});
	return $self->{rx};
}

# every daemon, with its metrics port; waits until each is up
sub start_daemons
{
	my ($self) = @_;
	$self->start_daemon('relay-a', 'relay');
	Test::More::ok($self->{d}{'relay-a'}->wait_log(qr/acquired leadership/, 60), 'relay-a leads');
	$self->start_daemon('relay-b', 'relay');
	$self->start_daemon("audit-$_", 'audit') for 1, 2;
	$self->start_daemon('project', 'project');
	$self->start_daemon("notify-$_", 'notify', '--stage', $_) for qw(fanout email realtime);
	for my $n (sort keys %{ $self->{d} })
	{
		next if $n eq 'relay-a';
		my $re = $n =~ /^relay/ ? qr/standby|waiting for leadership|leadership/ : qr/consuming stream/;
		Test::More::ok($self->{d}{$n}->wait_log($re, 60), "$n started");
	}
}

sub start_daemon
{
	my ($self, $name, $kind, @args) = @_;
	my $port = $self->{ports}{$name} //= TodoKafkaTest::free_port();
	my @common = ('--metrics-listen', "127.0.0.1:$port");
	push @common, '-c', $self->{notify_conf} if $kind eq 'notify';
	my $login = $kind;
	my $d = $kind eq 'relay'
	  ? TodoKafkaTest->start_relay($self->{node}, $self->{kafka}, name => $name,
		connstr => $self->connstr($login), args => [ @common, @args ])
	  : TodoKafkaTest->start_service($kind, $self->{node}, $self->{kafka}, name => $name,
		connstr => $self->connstr($login), args => [ @common, @args ]);
	$self->{kind}{$name} = [ $kind, @args ];
	push @{ $self->{logs} }, $d->log_file;
	$self->{d}{$name} = $d;
	$self->{starts}{$name}++;
	return $d;
}

# SIGKILL a daemon; restart() starts it again with the same arguments
sub kill9 { my ($self, $name) = @_; $self->{d}{$name}->kill9; }

sub restart
{
	my ($self, $name) = @_;
	my ($kind, @args) = @{ $self->{kind}{$name} };
	return $self->start_daemon($name, $kind, @args);
}

# the relay that holds leadership now (its todo_kafka_relay_leader gauge), or undef
sub leader
{
	my ($self) = @_;
	for my $n (sort grep { /^relay/ } keys %{ $self->{d} })
	{
		next unless $self->{d}{$n}->pid;
		my $text = TodoKafkaTest::http_get("127.0.0.1:$self->{ports}{$n}", '/metrics') // '';
		return $n if $text =~ /^todo_kafka_relay_leader 1$/m;
	}
	return undef;
}

# ---- live topic readers (SoakReaders)
sub start_readers
{
	my ($self, $dir) = @_;
	$self->{dir} = $dir;
	$self->{readers} = SoakReaders->new(kafka => $self->{kafka}, topic => $self->{topics}, dir => $dir,
		streams => \@STREAMS, partitions => $PARTITIONS);
	$self->{readers}->start;
}

sub poll_readers { $_[0]->{readers}->poll; }
sub drain_readers { return $_[0]->{readers}->drain($_[1] // 60); }
sub reader_files { my ($self, $stream) = @_; return $self->{readers}->files($stream); }

# consumers whose committed offset the broker had dropped (librdkafka logs
# the reset): their skipped messages would look like losses of ours
sub offset_resets
{
	my ($self) = @_;
	my @hits;
	for my $log (@{ $self->{logs} })
	{
		open my $fh, '<', $log or next;
		while (<$fh>)
		{
			push @hits, "$log: $_" if /offset reset|Offset out of range/i;
		}
	}
	return @hits;
}

# the consumers' summed todo_kafka_consumer_lag (gauges refresh every 5 s),
# or undef when one of them does not answer
sub consumer_lag
{
	my ($self) = @_;
	my $lag = 0;
	for my $n (sort grep { !/^relay/ } keys %{ $self->{d} })
	{
		my ($text) = TodoKafkaTest::http_get("127.0.0.1:$self->{ports}{$n}", '/metrics');
		return undef unless defined $text && $text =~ /^todo_kafka_/m;
		$lag += $1 while $text =~ /^todo_kafka_consumer_lag\{[^}]*\}\s+(\S+)$/mg;
	}
	return $lag;
}

# ---- /metrics of every running daemon: name => {series => value}
sub scrape
{
	my ($self) = @_;
	my %m;
	for my $n (sort keys %{ $self->{d} })
	{
		next unless $self->{d}{$n}->pid;
		my ($text, $code) = TodoKafkaTest::http_get("127.0.0.1:$self->{ports}{$n}", '/metrics');
		my ($h, $hcode) = TodoKafkaTest::http_get("127.0.0.1:$self->{ports}{$n}", '/healthz');
		$m{$n}{_healthz} = $hcode // 0;
		$m{$n}{_text} = $text // '';
		if (open my $fh, '>', "$self->{dir}/metrics.$n.txt") { print $fh $text // ''; close $fh; }
		for (split /\n/, $text // '')
		{
			next if /^#/ || !/^(\S+)\s+(\S+)$/;
			$m{$n}{$1} = $2;
		}
	}
	return \%m;
}

# stop everything the stack started (SIGTERM, exit codes logged)
sub stop
{
	my ($self, $keep) = @_;
	my %codes;
	for my $n (sort keys %{ $self->{d} })
	{
		$codes{$n} = $self->{d}{$n}->stop(30) if $self->{d}{$n}->pid;
	}
	$self->{readers}->kill_all if $self->{readers};
	if (my $rx = $self->{rx})
	{
		$rx->stop_smtp;
		# the push receiver too: NotifyTest's DESTROY comes too late at global destruction
		if ($rx->{push})
		{
			$rx->{push}->signal('TERM');
			eval { $rx->{push}->finish; 1 } or $rx->{push}->kill_kill;
			delete $rx->{push};
		}
	}
	if ($keep)
	{
		$self->{stack}{kafka}->stop;
		Test::More::diag('--keep: PostgreSQL still runs: psql -h ' . $self->{node}->host
			  . ' -p ' . $self->{node}->port . ' postgres; stop it with pg_ctl -D '
			  . $self->{node}->data_dir . ' stop');
		# PostgreSQL::Test::Cluster's END stops (and on success removes) known nodes
		$self->{node}{_pid} = undef;
		$ENV{PG_TEST_NOCLEAN} = 1;
	}
	else
	{
		$self->{stack}->stop;
	}
	return \%codes;
}

END
{
	local $?;
	if ($current)
	{
		for my $h (grep { defined } @{ $current->{rx} // {} }{qw(smtp push)})
		{
			eval { $h->kill_kill(grace => 1) if $h->pumpable };
		}
		$current->{readers}->kill_all if ref $current->{readers};
	}
}

1;
