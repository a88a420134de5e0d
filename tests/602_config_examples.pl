# tests/602_config_examples.pl: deploy/config cannot drift from the daemons.
#
# 1. deploy/config/generate --check: each <daemon>.conf is exactly what the
#    daemon's own --help and --show-config give today (and a stale copy is
#    caught, naming its file).
# 2. Uncommented, a file's settings and kafka defaults are accepted by the
#    daemon and change nothing (--show-config equals the built-in defaults):
#    the defaults written are the defaults; with the production lines too
#    and the SASL password from TODO_KAFKA_KAFKA_SASL_PASSWORD, the daemon
#    accepts --profile production and never prints the password.
# 3. Each <daemon>.env (the units' EnvironmentFile), uncommented and read
#    as systemd reads it, is accepted with the .conf alone (database and
#    brokers come from it) and none of its secrets reaches --show-config;
#    an unknown TODO_KAFKA_KAFKA_<PROPERTY> is a usage error naming it.

use strict;
use warnings;

use File::Temp qw(tempdir);
use IPC::Run qw(run);
use Test::More;
use TodoKafkaTest;

my $root = TodoKafkaTest::repo_root();
my $dir = "$root/deploy/config";
my $tmp = tempdir(CLEANUP => 1);
delete $ENV{$_} for grep { /^TODO_KAFKA_/ } keys %ENV;

sub slurp
{
	my ($path) = @_;
	open my $fh, '<', $path or die "$path: $!";
	local $/;
	return scalar <$fh>;
}

sub spew
{
	my ($path, $text) = @_;
	open my $fh, '>', $path or die "$path: $!";
	print $fh $text;
	close $fh;
	return $path;
}

# run a program with exactly the environment given; (exit status, stdout+stderr)
sub cmd
{
	my ($env, @argv) = @_;
	my $out;
	run([ 'env', '-i', "PATH=$ENV{PATH}", map({ "$_=$env->{$_}" } sort keys %$env), @argv ],
		'>&', \$out);
	return ($? >> 8, $out);
}

my ($rc, $out) = cmd({}, 'python3', "$dir/generate", '--check', $root);
is($rc, 0, 'deploy/config/*.conf are what deploy/config/generate writes') or diag($out);

# a stale copy is caught
system('cp', '-a', "$dir/.", "$tmp/config") == 0 or die;
spew("$tmp/config/relay.conf", slurp("$tmp/config/relay.conf") =~ s/#read_batch = \d+/#read_batch = 1/r);
($rc, $out) = cmd({}, 'python3', "$tmp/config/generate", '--check', $root);
is($rc, 1, 'a stale example fails the check');
like($out, qr/stale: .*relay\.conf/, 'and is named');

my %binary = (
	relay => TodoKafkaTest::relay_binary(),
	(map { $_ => "$root/consumers/$_/todo-kafka-$_" } qw(audit notify project)),
	dlq => "$root/tools/dlq/todo-kafka-dlq");
my @conn = ('-d', 'dbname=x', '-b', 'localhost:9092');

for my $d (qw(relay audit notify project))
{
	my $conf = slurp("$dir/$d.conf");
	my ($settings) = split /^# Production:/m, $conf;
	my $plain = spew("$tmp/$d-plain.conf", join "\n", map { s/^#(\S+ = .*|\S+ =)$/$1/r } split /\n/, $settings);
	my $prod = spew("$tmp/$d-prod.conf", join "\n", map { s/^#(\S+ = .*|\S+ =)$/$1/r } split /\n/, $conf);
	my ($drc, $defaults) = cmd({}, $binary{$d}, @conn, '--show-config');
	is($drc, 0, "$d: --show-config");
	my ($prc, $shown) = cmd({}, $binary{$d}, '-c', $plain, @conn, '--show-config');
	is($prc, 0, "$d: every setting of $d.conf, uncommented, is accepted") or diag($shown);
	is($shown, $defaults, "$d: and the values written are its defaults");

	my ($xrc, $xout) = cmd({ TODO_KAFKA_KAFKA_SASL_PASSWORD => 'Pw-0f-kafka' },
		$binary{$d}, '-c', $prod, @conn, '--show-config');
	is($xrc, 0, "$d: the production lines are accepted") or diag($xout);
	like($xout, qr/^profile = production$/m, "$d: profile production");
	like($xout, qr/^kafka\.sasl\.password = \[redacted\]$/m, "$d: SASL password from the environment");
	unlike($xout, qr/Pw-0f-kafka/, "$d: and never printed");
}

# a Kafka property from the environment that librdkafka does not know is a
# usage error naming the variable (and never echoing a secret's value)
{
	my ($urc, $uout) = cmd({ TODO_KAFKA_KAFKA_SASL_PASWORD => 'Pw-0f-kafka' },
		$binary{relay}, @conn, '--show-config');
	is($urc, 2, 'unknown TODO_KAFKA_KAFKA_ property: exit 2');
	like($uout, qr/TODO_KAFKA_KAFKA_SASL_PASWORD: invalid Kafka property "sasl\.pasword"/,
		'the message names the variable and the property');
}

# the EnvironmentFiles: VAR=value lines, quotes stripped as systemd does
for my $d (qw(relay audit notify project dlq))
{
	my %env;
	for (split /\n/, slurp("$dir/$d.env"))
	{
		next unless /^#(TODO_KAFKA_[A-Z_]+)=(.*)$/;
		my ($k, $v) = ($1, $2);
		$v =~ s/^"(.*)"$/$1/;
		$env{$k} = $v;
	}
	ok($env{TODO_KAFKA_DB} && $env{TODO_KAFKA_KAFKA_SASL_PASSWORD}, "$d.env names the database and the SASL password");
	if ($d eq 'dlq')
	{
		# a tool without --show-config: the configuration loads, then the
		# command's own check speaks
		my ($qrc, $qout) = cmd(\%env, $binary{$d}, '-c', "$dir/$d.conf", 'purge');
		is($qrc, 2, "dlq: dlq.conf and dlq.env are accepted");
		like($qout, qr/purge needs --older-than/, 'dlq: up to the missing purge age') or diag($qout);
		next;
	}
	my ($erc, $eout) = cmd(\%env, $binary{$d}, '-c', "$dir/$d.conf", '--show-config');
	is($erc, 0, "$d: $d.env and $d.conf give a complete configuration") or diag($eout);
	like($eout, qr/^kafka\.bootstrap\.servers = kafka-1\.internal:9093/m, "$d: brokers from $d.env");
	unlike($eout, qr/CHANGE-ME/, "$d: no secret of $d.env is printed");
}

done_testing();
