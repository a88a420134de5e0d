# tests/601_systemd.pl: deploy/systemd, checked by systemd's tools and run as written.
#
# 1. systemd-analyze verify loads every unit from a scratch root holding the
#    built programs where the units expect them (/usr/bin), as systemd would.
# 2. Each service has what an operator relies on: Restart=on-failure with a
#    start limit, exit 2 (configuration error) not restarted, the dedicated
#    user, NoNewPrivileges, ProtectSystem=strict, PrivateTmp,
#    RestrictAddressFamilies, secrets from /etc/todo-kafka/<daemon>.env;
#    systemd-analyze security --offline rates each 2.0 or better ("OK").
# 3. Every daemon has its unit, and each ExecStart= is accepted by the
#    program as written: the relay@ command line started twice, with the
#    environment its EnvironmentFile gives (deploy/config/relay.env pointed
#    at a real PostgreSQL and devbroker), makes one leader and one standby,
#    and SIGTERM (systemd's stop) ends both with status 0; the consumers'
#    and dlq-purge's command lines load their configuration; the devbroker's
#    writes its bootstrap file and answers on its control FIFO.

use strict;
use warnings;

use File::Basename qw(basename);
use File::Temp qw(tempdir);
use IPC::Run qw(run start);
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep);
use DevBroker;
use SystemdUnits;
use TodoKafkaTest;

my $root = TodoKafkaTest::repo_root();
my $units = "$root/deploy/systemd";
my $config = "$root/deploy/config";
my %prog = (
	relay => TodoKafkaTest::relay_binary(),
	devbroker => DevBroker::binary(),
	map { $_ => TodoKafkaTest::service_binary($_) } qw(audit notify project dlq));
delete $ENV{$_} for grep { /^TODO_KAFKA_/ } keys %ENV;

my @files = map { basename($_) } sort glob("$units/*.service $units/*.timer");
my $sysroot = SystemdUnits::make_root({
	(map { ("usr/bin/todo-kafka-$_" => $prog{$_}) } keys %prog),
	(map { ("etc/systemd/system/$_" => "$units/$_") } @files) });
my ($ok, $out) = SystemdUnits::verify($sysroot, map { "$sysroot/etc/systemd/system/$_" } @files);
ok($ok, 'systemd-analyze verify: ' . join(' ', @files)) or diag($out);

my %unit_of = (
	relay => 'todo-kafka-relay@.service', audit => 'todo-kafka-audit.service',
	notify => 'todo-kafka-notify.service', project => 'todo-kafka-project.service',
	devbroker => 'todo-kafka-devbroker.service', dlq => 'todo-kafka-dlq-purge.service');
ok(-f "$units/$unit_of{$_}", "$_ has its unit $unit_of{$_}") for sort keys %prog;
ok(-f "$units/todo-kafka-dlq-purge.timer", 'the dlq purge has its timer');

my %u;
for my $d (sort keys %unit_of)
{
	my $f = $unit_of{$d};
	my $p = $u{$d} = SystemdUnits::parse("$units/$f");
	my $one = sub { my @v = SystemdUnits::settings($p, @_); return $v[-1] // ''; };
	ok($one->('Unit', 'StartLimitIntervalSec') && $one->('Unit', 'StartLimitBurst') =~ /^\d+$/,
		"$f: a start limit");
	is($one->('Service', 'Restart'), 'on-failure', "$f: Restart=on-failure");
	is($one->('Service', 'RestartPreventExitStatus'), '2', "$f: a configuration error is not restarted");
	is($one->('Service', 'User'), 'todo-kafka', "$f: runs as todo-kafka");
	is($one->('Service', 'NoNewPrivileges'), 'yes', "$f: NoNewPrivileges");
	is($one->('Service', 'ProtectSystem'), 'strict', "$f: ProtectSystem=strict");
	is($one->('Service', 'PrivateTmp'), 'yes', "$f: PrivateTmp");
	like($one->('Service', 'RestrictAddressFamilies'), qr/^AF_UNIX AF_INET AF_INET6$/,
		"$f: RestrictAddressFamilies");
	my ($envfile) = SystemdUnits::settings($p, 'Service', 'EnvironmentFile');
	is($envfile, ($d eq 'devbroker' ? '-' : '') . "/etc/todo-kafka/$d.env",
		"$f: environment from /etc/todo-kafka/$d.env");
	ok(-f "$config/$d.env", "$f: its template deploy/config/$d.env exists");
	my $score = SystemdUnits::exposure($sysroot, "$sysroot/etc/systemd/system/$f");
	ok(defined $score && $score <= 2.0, "$f: systemd-analyze security exposure " . ($score // '?'));
}

# ExecStart= of a unit as argv for this tree: /usr/bin programs built here,
# /etc/todo-kafka files from deploy/config, /run/... under $run
my $run = tempdir(CLEANUP => 1);
sub exec_start
{
	my ($d, $env) = @_;
	my ($line) = SystemdUnits::settings($u{$d}, 'Service', 'ExecStart');
	my %all = ((map { $_->[1] =~ /^"?(\w+)=(.*?)"?$/ ? ($1, $2) : () }
			grep { $_->[0] eq 'Environment' } @{ $u{$d}{Service} }), %$env);
	return map {
		s{^/usr/bin/todo-kafka-(\w+)$}{$prog{$1}}r =~ s{/etc/todo-kafka/}{$config/}r =~ s{^(--\w+=)?/run/}{($1 // '') . "$run/"}er
	} SystemdUnits::exec_argv($line, \%all);
}

# the consumers: their ExecStart loads the shipped .conf with the .env
for my $d (qw(audit notify project))
{
	my %env = SystemdUnits::environment_file("$config/$d.env", uncomment => 1);
	my @argv = exec_start($d, \%env);
	my $o;
	run([ 'env', '-i', "PATH=$ENV{PATH}", map({ "$_=$env{$_}" } sort keys %env), @argv, '--show-config' ],
		'>&', \$o);
	is($? >> 8, 0, "$unit_of{$d}: ExecStart loads its configuration: @argv[1..$#argv]") or diag($o);
}

# the relay, twice (relay@main, relay@standby), for real
my $node = TodoKafkaTest::new_node('t601');
my $kafka = DevBroker->start(brokers => 1);
my %renv = (SystemdUnits::environment_file("$config/relay.env", uncomment => 1),
	TODO_KAFKA_DB => $node->connstr('postgres'), TODO_KAFKA_BROKERS => $kafka->bootstrap);
delete $renv{TODO_KAFKA_KAFKA_SASL_PASSWORD};    # the devbroker speaks no SASL
delete $renv{TODO_KAFKA_METRICS_LISTEN};
my %relay;
for my $i (qw(main standby))
{
	my $log = "$PostgreSQL::Test::Utils::log_path/601_relay_$i.log";
	my @argv = exec_start('relay', \%renv);
	my $pid = fork // die "fork: $!";
	if ($pid == 0)
	{
		%ENV = (PATH => $ENV{PATH}, %renv);
		open STDIN, '<', '/dev/null';
		open STDOUT, '>', '/dev/null';
		open STDERR, '>>', $log;
		exec(@argv) or POSIX::_exit(127);
	}
	$relay{$i} = { pid => $pid, log => $log };
	# one at a time, so the first one leads
	ok(wait_for(sub { TodoKafkaTest::slurp($log) =~ /acquired leadership|waiting as standby/ }),
		"relay\@$i started from its ExecStart");
}
like(TodoKafkaTest::slurp($relay{main}{log}), qr/acquired leadership/, 'relay@main leads');
like(TodoKafkaTest::slurp($relay{standby}{log}), qr/waiting as standby/, 'relay@standby waits as standby');
for my $i (qw(standby main))
{
	kill 'TERM', $relay{$i}{pid};
	my $st;
	ok(wait_for(sub { waitpid($relay{$i}{pid}, WNOHANG) > 0 && defined($st = $?) }),
		"relay\@$i stops on SIGTERM");
	is($st, 0, "relay\@$i exits 0 (a clean stop: Restart=on-failure leaves it stopped)");
}

# dlq-purge: the timer's job, against the real database
{
	my %env = (SystemdUnits::environment_file("$config/dlq.env", uncomment => 1),
		TODO_KAFKA_DB => $node->connstr('postgres'), TODO_KAFKA_BROKERS => $kafka->bootstrap);
	delete $env{TODO_KAFKA_KAFKA_SASL_PASSWORD};
	my @argv = exec_start('dlq', \%env);
	ok(grep({ $_ eq '--older-than=30 days' } @argv), 'dlq-purge: --older-than from TODO_KAFKA_DLQ_PURGE_AGE');
	my $o;
	run([ 'env', '-i', "PATH=$ENV{PATH}", map({ "$_=$env{$_}" } sort keys %env), @argv ], '>&', \$o);
	is($? >> 8, 0, "todo-kafka-dlq-purge.service: @argv[1..$#argv]") or diag($o);
}
$node->stop;
$kafka->stop;

# the devbroker as its unit starts it
{
	my %env = SystemdUnits::environment_file("$config/devbroker.env", uncomment => 1);
	mkdir "$run/todo-kafka-devbroker";
	my @argv = exec_start('devbroker', \%env);
	my $h = start([ 'env', '-i', "PATH=$ENV{PATH}", map({ "$_=$env{$_}" } sort keys %env), @argv ],
		'<', '/dev/null', '>', '/dev/null', '2>', "$PostgreSQL::Test::Utils::log_path/601_devbroker.log");
	ok(wait_for(sub { -s "$run/todo-kafka-devbroker/bootstrap" }), 'devbroker unit: bootstrap file written');
	like(TodoKafkaTest::slurp("$run/todo-kafka-devbroker/bootstrap"), qr/^127\.0\.0\.1:\d+$/m,
		'with one broker (DEVBROKER_OPTIONS from devbroker.env)');
	ok(wait_for(sub { -p "$run/todo-kafka-devbroker/control" }), 'and its control FIFO');
	$h->signal('TERM');
	$h->finish;
	is(($h->full_results)[0], 0, 'devbroker stops on SIGTERM with status 0');
}


# poll a condition, up to a generous limit (no timing is asserted)
sub wait_for
{
	my ($cond) = @_;
	for (1 .. 600)
	{
		return 1 if $cond->();
		sleep 0.1;
	}
	return 0;
}

done_testing();
