=pod

=head1 NAME

TodoKafkaTest - PostgreSQL with todo_kafka plus todo-kafka-relay for TAP tests

=head1 SYNOPSIS

  use TodoKafkaTest;
  # PostgreSQL + extension, topics "t101.<stream>", devbroker, a leading relay
  my $s = TodoKafkaTest->start_stack('t101', metrics => 1, relay_args => [...]);
  my ($node, $t, $kafka, $relay, $port) = @$s{qw(node topics kafka relay port)};
  ...
  # wait until the outbox is empty (a test), then read a stream's events
  my $events = $s->events('task_events', count => 3, drained => 'outbox emptied');
  # SQL on the node (safe_psql, database postgres), and waiting
  my $id = $s->sql("SELECT id FROM todo_kafka.add_task('ana', 'Buy milk')");
  ok($s->wait_sql("SELECT count(*) = 1 FROM todo_kafka.audit_log"), 'audited');
  ok(wait_until('two dead letters', sub { $kafka->end_offsets($t->{dead_letter}) >= 2 }), '...');
  is($relay->stop, 0);

The parts, for tests that need another shape:

  my $node   = TodoKafkaTest::new_node('t101');
  my $topics = TodoKafkaTest::use_topics($node, 't101');   # stream => topic
  my $kafka  = DevBroker->start(topics => [ values %$topics ]);
  my $relay  = TodoKafkaTest->start_relay($node, $kafka, args => [...]);
  my $events = TodoKafkaTest::consume_events($kafka, $topic, count => 3);

=head1 DESCRIPTION

Each test starts its own cluster (PostgreSQL::Test::Cluster, CREATE
EXTENSION todo_kafka), gives the streams topic names of its own, starts a
devbroker with those topics and one or more relays (binary from
$ENV{TODO_KAFKA_RELAY} or relay/todo-kafka-relay), whose stderr goes to a
log file under tmp_check/log named after the test, the relay and a serial
(tmp_check/log is shared by every test of a run).  The relay connects as
the bootstrap superuser; a consumer service (start_service) as a login
that is a member of only its service's role (service_login).

Waiting: every test waits one way, with wait_until (exported), or
$stack->wait_sql for a query's answer; no test writes its own deadline loop.

=cut

package TodoKafkaTest;

use strict;
use warnings;

use Exporter qw(import);
our @EXPORT = qw(wait_until);

use Carp;
use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use IPC::Run;
use JSON::PP;
use POSIX qw(WNOHANG);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);

use DevBroker;

my $serial = 0;

sub repo_root { return abs_path(dirname(__FILE__) . '/../..'); }

=pod

=head2 start_stack(NAME, OPTIONS)

Starts the stack a test names NAME: a PostgreSQL node NAME (or
node_name) with the extension, every stream's topic renamed to "NAME.<stream>", a devbroker
with those topics and a relay, and checks (one test) that the relay leads.
Returns a TodoKafkaTest::Stack: a hash with node, topics (stream => topic),
kafka, relay and, with metrics, port (the relay's --metrics-listen port).

Options: node_name (the node's name when it is not NAME, e.g. in a test
with more than one node), node_conf (postgresql.conf lines), streams (names of streams the
test adds to todo_kafka.topics; their topics are named like the others),
setup_sql (run before the
broker starts), partitions ({stream => count} for topics that need other
than the devbroker's default), brokers (devbroker broker count), metrics (1: a free port
for /metrics and /healthz), relay_args (more relay arguments), relay_name,
relay_log_level (default info),
relay (0: start no relay), leads (the leadership check's test name,
default "relay leads").

=cut

sub start_stack
{
	my ($class, $name, %opt) = @_;
	my %s;
	$s{node} = new_node($opt{node_name} // $name, conf => $opt{node_conf});
	# streams of the test's own, mapped like the built-in ones
	$s{node}->safe_psql('postgres',
		"INSERT INTO todo_kafka.topics (stream, topic) VALUES ('$_', '$_')")
	  for @{ $opt{streams} // [] };
	$s{topics} = use_topics($s{node}, $name);
	$s{node}->safe_psql('postgres', $opt{setup_sql}) if defined $opt{setup_sql};
	# a stream's partition count, when the test wants other than the default
	my %parts = %{ $opt{partitions} // {} };
	$s{kafka} = DevBroker->start(
		topics => [ map { $parts{$_} ? "$s{topics}{$_}:$parts{$_}" : $s{topics}{$_} } sort keys %{ $s{topics} } ],
		$opt{brokers} ? (brokers => $opt{brokers}) : ());
	$s{port} = free_port() if $opt{metrics};
	if ($opt{relay} // 1)
	{
		$s{relay} = $class->start_relay($s{node}, $s{kafka},
			name => $opt{relay_name} // 'relay',
			log_level => $opt{relay_log_level},
			args => [ $opt{metrics} ? ('--metrics-listen', "127.0.0.1:$s{port}") : (),
				@{ $opt{relay_args} // [] } ]);
		ok($s{relay}->wait_log(qr/acquired leadership/), $opt{leads} // 'relay leads');
	}
	return bless \%s, 'TodoKafkaTest::Stack';
}

sub relay_binary
{
	return $ENV{TODO_KAFKA_RELAY} // repo_root() . '/relay/todo-kafka-relay';
}

sub new_node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', "max_connections = 60\n" . ($opt{conf} // ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION todo_kafka');
	return $node;
}

# rename every stream's topic to "<prefix>.<stream>"; returns stream => topic
sub use_topics
{
	my ($node, $prefix) = @_;
	$node->safe_psql('postgres',
		"UPDATE todo_kafka.topics SET topic = '$prefix.' || replace(stream, '_', '-')");
	my %t = map { split /\|/ } split /\n/,
	  $node->safe_psql('postgres', 'SELECT stream, topic FROM todo_kafka.topics');
	return \%t;
}

sub start_relay
{
	my ($class, $node, $kafka, %opt) = @_;
	return $class->start_daemon(relay_binary(), $node, $kafka, name => 'relay', %opt);
}

# a consumer service (consumers/<service>/) or the dlq tool (tools/dlq/)
sub service_binary
{
	my ($service) = @_;
	# the dlq command is a tool (tools/dlq), the rest consumer services
	my $dir = $service eq 'dlq' ? 'tools' : 'consumers';
	return $ENV{ 'TODO_KAFKA_' . uc($service) }
	  // repo_root() . "/$dir/$service/todo-kafka-$service";
}

sub start_service
{
	my ($class, $service, $node, $kafka, %opt) = @_;
	return $class->start_daemon(service_binary($service), $node, $kafka,
		name => $service, %opt, connstr => $opt{connstr} // service_login($node, $service));
}

=pod

=head2 service_login(NODE, SERVICE)

The connection string (database postgres) of SERVICE's login on NODE:
"tk_<service>", a member of only that service's role (%SERVICE_ROLE:
audit, notify, project, dlq), created on first use.  start_service
connects with it unless given connstr.

=cut

our %SERVICE_ROLE = (
	audit => 'todo_kafka_audit_writer',
	notify => 'todo_kafka_notifier',
	project => 'todo_kafka_projector',
	dlq => 'todo_kafka_operator');

sub service_login
{
	my ($node, $service) = @_;
	my $role = $SERVICE_ROLE{$service} // croak "no role for service $service";
	my $login = "tk_$service";
	$node->safe_psql('postgres', qq{
		DO \$\$ BEGIN
			IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$login') THEN
				CREATE ROLE $login LOGIN IN ROLE $role;
			END IF;
		END \$\$});
	return $node->connstr('postgres') . " user=$login";
}

# any todo_kafka daemon: -d, -b and --log-level, then args; stderr to a log
sub start_daemon
{
	my ($class, $bin, $node, $kafka, %opt) = @_;
	croak "binary $bin is missing: run make" unless -x $bin;
	$serial++;
	my $name = $opt{name} // basename($bin);
	# tests share tmp_check/log: name the file after the test too
	my $test = basename($0, '.pl');
	my $log = "$PostgreSQL::Test::Utils::log_path/${test}_${name}_$serial.log";
	my @cmd = ($bin, '-d', $opt{connstr} // $node->connstr('postgres'), '-b', $kafka->bootstrap,
		'--log-level', $opt{log_level} // 'info', @{ $opt{args} // [] });
	my $self = bless { log => $log, name => $name, cmd => \@cmd }, $class;
	my $pid = fork;
	croak "fork failed: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>', '/dev/null');
		open(STDERR, '>>', $log);
		exec(@cmd) or POSIX::_exit(127);
	}
	$self->{pid} = $pid;
	return $self;
}

sub log_file { return $_[0]->{log}; }

sub log_text
{
	my ($self) = @_;
	open my $fh, '<', $self->{log} or return '';
	local $/;
	my $t = <$fh>;
	return $t // '';
}

# wait until the log matches; returns true on success
sub wait_log
{
	my ($self, $re, $timeout) = @_;
	return 1 if wait_until("$self->{name} log to match $re", sub { $self->log_text =~ $re },
		$timeout // 30, 0.05);
	diag("$self->{name} log:\n" . $self->log_text);
	return 0;
}

sub pid { return $_[0]->{pid}; }

sub signal
{
	my ($self, $sig) = @_;
	kill($sig, $self->{pid}) if $self->{pid};
}

# wait for the exit; returns the exit code, undef on timeout
sub wait_exit
{
	my ($self, $timeout) = @_;
	return $self->{code} unless $self->{pid};
	my $deadline = time + ($timeout // 30);
	while (time < $deadline)
	{
		my $r = waitpid($self->{pid}, WNOHANG);
		if ($r == $self->{pid})
		{
			$self->{code} = ($? & 127) ? -1 : ($? >> 8);
			delete $self->{pid};
			return $self->{code};
		}
		sleep(0.05);
	}
	return undef;
}

# SIGTERM and wait; returns the exit code (undef if it had to be killed)
sub stop
{
	my ($self, $timeout) = @_;
	return $self->{code} unless $self->{pid};
	$self->signal('TERM');
	my $code = $self->wait_exit($timeout);
	return $code if defined $code || !$self->{pid};
	$self->kill9;
	return undef;
}

sub kill9
{
	my ($self) = @_;
	return unless $self->{pid};
	kill('KILL', $self->{pid});
	waitpid($self->{pid}, 0);
	delete $self->{pid};
}

sub DESTROY
{
	my ($self) = @_;
	$self->kill9 if $self->{pid};
}

=pod

=head2 wait_until(WHAT, COND, TIMEOUT, INTERVAL)

Calls COND every INTERVAL seconds (default 0.2) until it returns true or
TIMEOUT seconds (default 60) passed, then once more.  True on success;
on timeout false, after a diag "timed out waiting for WHAT" (the caller
adds what it knows, e.g. `or diag($service->log_text)`).  Exported.

=cut

sub wait_until
{
	my ($what, $cond, $timeout, $interval) = @_;
	my $deadline = time + ($timeout // 60);
	while (time < $deadline)
	{
		return 1 if $cond->();
		sleep($interval // 0.2);
	}
	return 1 if $cond->();
	diag("timed out waiting for $what");
	return 0;
}

# outbox rows not yet published: beyond the relay's stored position
# (published rows stay in the outbox until their partition is truncated)
sub outbox_pending
{
	my ($node) = @_;
	return $node->safe_psql('postgres', 'SELECT pending_rows FROM todo_kafka.relay_backlog()');
}

sub wait_outbox_published
{
	my ($node, $timeout) = @_;
	return 1 if wait_until('the outbox to be published', sub { outbox_pending($node) == 0 },
		$timeout, 0.1);
	diag('outbox still holds ' . outbox_pending($node) . ' unpublished rows');
	return 0;
}

# tasks and the read model (task_view) differ in this many rows (0: equal)
sub read_model_diff
{
	my ($node, $db) = @_;
	my $cols = 'id, title, description, completed, priority, tags, updated_at';
	return $node->safe_psql($db, "SELECT count(*) FROM (
		(SELECT $cols FROM todo_kafka.tasks EXCEPT SELECT $cols FROM todo_kafka.task_view)
		UNION ALL
		(SELECT $cols FROM todo_kafka.task_view EXCEPT SELECT $cols FROM todo_kafka.tasks)) d");
}

# consume a topic; each message with its payload decoded and headers as a hash
sub consume_events
{
	my ($kafka, $topic, %opt) = @_;
	my $msgs = $kafka->consume($topic, %opt);
	my $json = JSON::PP->new;
	for my $m (@$msgs)
	{
		$m->{event} = eval { $json->decode($m->{payload}) };
		my %h = @{ $m->{headers} };
		$m->{hdr} = \%h;
	}
	return $msgs;
}

# Validate message values against schemas/ with an independent validator
# (Debian's python3-jsonschema, through tests/lib/validate_schema.py).
# Takes [schema name, value text] pairs, e.g. ['task-events.v1', $payload];
# returns one result per pair: "ok" or "invalid: <path>: <why>".
sub validate_schemas
{
	my @items = @_;
	my $root = repo_root();
	my $in = join('', map { "$_->[0]\t$_->[1]\n" } @items);
	my ($out, $err) = ('', '');
	# /usr/bin/python3: the Debian interpreter that sees python3-jsonschema
	IPC::Run::run([ '/usr/bin/python3', "$root/tests/lib/validate_schema.py", "$root/schemas" ],
		'<', \$in, '>', \$out, '2>', \$err);
	diag("validate_schema.py: $err") if $err ne '';
	my @res = split /\n/, $out;
	return @res == @items ? @res : map { "invalid: the validator failed ($err)" } @items;
}

# fetch the /metrics or /healthz text, or undef
sub http_get
{
	my ($hostport, $path) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'curl', '-s', '-w', '\n%{http_code}', "http://$hostport$path" ],
		'>', \$out, '2>', \$err);
	return undef unless $out =~ /^(.*)\n(\d+)$/s;
	return wantarray ? ($1, $2) : $1;
}

# a file's whole text, '' when it cannot be read
sub slurp
{
	my ($path) = @_;
	open my $fh, '<', $path or return '';
	local $/;
	my $t = <$fh>;
	return $t // '';
}

sub free_port
{
	return PostgreSQL::Test::Cluster::get_free_port();
}

package TodoKafkaTest::Stack;

use Test::More;

# stop the devbroker and PostgreSQL (the test stops its daemons itself)
sub stop
{
	my ($self) = @_;
	$self->{kafka}->stop;
	$self->{node}->stop;
}

=pod

=head2 $stack->sql(QUERY, ...)

safe_psql of QUERY on the stack's node, database postgres (dies on error);
several parts are joined by spaces into one session (SET ...; SELECT ...).

=head2 $stack->wait_sql(QUERY, EXPECTED, TIMEOUT)

Waits (TodoKafkaTest::wait_until) until QUERY's answer is EXPECTED
(default 't'); true on success, else a diag with the last answer.

=cut

sub sql { my $self = shift; return $self->{node}->safe_psql('postgres', join(' ', @_)); }

sub wait_sql
{
	my ($self, $query, $expected, $timeout) = @_;
	$expected //= 't';
	my $got;
	return 1 if TodoKafkaTest::wait_until("<$query> to return <$expected>",
		sub { ($got = $self->sql($query)) eq $expected }, $timeout);
	diag("last answer: <" . ($got // '') . ">");
	return 0;
}

# the Kafka topic of a stream
sub topic { return $_[0]->{topics}{ $_[1] } // Carp::croak("no stream $_[1]"); }

=pod

=head2 $stack->events(STREAM, count => N, timeout => S, drained => NAME)

Waits for and reads the events of STREAM's topic (TodoKafkaTest's
consume_events: up to count messages, within timeout seconds, each with
its payload decoded and its headers as a hash).  With drained, first
waits (up to the same timeout) for the outbox to be empty, as one test
of that name.

=cut

sub events
{
	my ($self, $stream, %opt) = @_;
	my $drained = delete $opt{drained};
	ok(TodoKafkaTest::wait_outbox_published($self->{node}, $opt{timeout} // 60), $drained)
	  if defined $drained;
	return TodoKafkaTest::consume_events($self->{kafka}, $self->topic($stream), %opt);
}

1;
