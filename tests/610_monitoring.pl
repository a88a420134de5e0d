# tests/610_monitoring.pl: the alerts and the dashboard of deploy/ name
# only metrics the daemons export, and the rules are checked and
# unit-tested by Prometheus's own promtool (Debian package prometheus).
#
# promtool: check rules, test rules (deploy/prometheus/*.test.yml), check
# config; every dashboard query is parsed by promtool too (as recording
# rules in a scratch file), and every label an expression selects or
# groups by belongs to a metric it names (labels as docs/reference.md,
# generated from the code, lists them).  Then the whole stack runs: PostgreSQL, the
# devbroker (no /metrics: a development tool), a relay and the audit,
# notify and project services, each with --metrics-listen.  A task with a
# reminder goes through it, so every service has handled something; the
# test scrapes every /metrics until the union of the families they export
# holds every metric a rule expression or a panel query names, and fails
# naming the ones that never appear; each page must also pass
# `promtool check metrics` (format and naming lint).  `up` is Prometheus's
# own.

use strict;
use warnings;

use CPAN::Meta::YAML;
use File::Temp qw(tempdir);
use IPC::Run;
use JSON::PP;
use Test::More;
use TodoKafkaTest;

my $root = TodoKafkaTest::repo_root();
my $prom = "$root/deploy/prometheus";
my $promtool = $ENV{PROMTOOL} // 'promtool';

sub run_tool
{
	my ($out, $err) = ('', '');
	IPC::Run::run([@_], '<', \undef, '>', \$out, '2>', \$err);
	return ($? >> 8, "$out$err");
}

# --- promtool ----------------------------------------------------------------
my ($code, $out) = run_tool($promtool, 'check', 'rules', "$prom/todo-kafka.rules.yml");
is($code, 0, 'promtool check rules') or diag($out);
($code, $out) = run_tool($promtool, 'test', 'rules', "$prom/todo-kafka.rules.test.yml");
is($code, 0, 'promtool test rules: every alert fires when it must and only then') or diag($out);
($code, $out) = run_tool($promtool, 'check', 'config', "$prom/prometheus.yml");
is($code, 0, 'promtool check config (the example scrape config)') or diag($out);

# --- the expressions ---------------------------------------------------------
my $rules = CPAN::Meta::YAML->read("$prom/todo-kafka.rules.yml")
  or BAIL_OUT(CPAN::Meta::YAML->errstr);
my %exprs;    # expression => where
for my $g (@{ $rules->[0]{groups} })
{
	$exprs{ $_->{expr} } = "alert $_->{alert}" for @{ $g->{rules} };
}
ok(scalar(keys %exprs) >= 8, 'the rules file has the alerts');

my $dash = JSON::PP->new->decode(TodoKafkaTest::slurp("$root/deploy/grafana/todo-kafka.json"));
my $npanels = 0;
for my $p (@{ $dash->{panels} })
{
	next if $p->{type} eq 'row';
	$npanels++;
	ok(@{ $p->{targets} // [] } > 0, "panel \"$p->{title}\" has queries");
	$exprs{ $_->{expr} } = "panel \"$p->{title}\"" for @{ $p->{targets} };
}
ok($npanels >= 10, "the dashboard has $npanels panels");

# the panel queries are PromQL promtool can parse
my $dir = tempdir('tk610-XXXX', TMPDIR => 1, CLEANUP => 1);
open my $fh, '>', "$dir/panels.yml" or die "$dir/panels.yml: $!";
print $fh "groups:\n  - name: panels\n    rules:\n";
my $n = 0;
for my $e (sort grep { $exprs{$_} =~ /^panel/ } keys %exprs)
{
	(my $q = $e) =~ s/'/''/g;
	$n++;
	print $fh "      - record: panel:query$n\n        expr: '$q'\n";
}
close $fh;
($code, $out) = run_tool($promtool, 'check', 'rules', "$dir/panels.yml");
is($code, 0, "promtool parses the dashboard's $n queries") or diag($out);

# metric names: identifiers of ours, plus Prometheus's own up
my %wanted;    # metric => [where]
for my $e (keys %exprs)
{
	(my $bare = $e) =~ s/"(?:[^"\\]|\\.)*"//g;    # not label values
	push @{ $wanted{$1} }, $exprs{$e} while $bare =~ /\b(todo_kafka_[a-z0-9_]+)\b/g;
}
ok(scalar(keys %wanted) >= 20, scalar(keys %wanted) . ' metrics named by rules and panels');

# labels: each one an expression selects or groups by is a label of a
# metric it names, as docs/reference.md (generated from the code) lists
# them, or one Prometheus adds (job, instance; le of a histogram bucket)
my %labels_of;
for (split /\n/, TodoKafkaTest::slurp("$root/docs/reference.md"))
{
	my ($name, $labels) = /^\| `(todo_kafka_\w+)` \| \w+ \| ([^|]*) \|/ or next;
	$labels_of{$name} = [ $labels =~ /`(\w+)`/g ];
}
ok(scalar(keys %labels_of) >= 20, 'docs/reference.md lists the metrics and their labels');
for my $e (sort keys %exprs)
{
	my %known = (job => 1, instance => 1);
	for my $m ($e =~ /\b(todo_kafka_[a-z0-9_]+)\b/g)
	{
		$known{le} = 1 if $m =~ /_bucket$/;
		my $base = $labels_of{$m} ? $m : $m =~ s/_(bucket|sum|count)$//r;
		$known{$_} = 1 for @{ $labels_of{$base} // [] };
	}
	my @used = ($e =~ /\b(?:by|on|without|ignoring)\s*\(([^)]*)\)/g, $e =~ /\{([^}]*)\}/g);
	my @labels = map { /(\w+)\s*(?:=~|!~|!=|=)?/g } map { s/"(?:[^"\\]|\\.)*"//gr } @used;
	my @bad = grep { !$known{$_} } @labels;
	is_deeply(\@bad, [], "$exprs{$e}: labels " . join(', ', sort keys %{ { map { $_ => 1 } @labels } }))
	  or diag("expression: $e");
}

# --- every daemon, scraped ---------------------------------------------------
my $s = TodoKafkaTest->start_stack('t610', metrics => 1);
my ($node, $kafka) = @$s{qw(node kafka)};
my %ports = (relay => $s->{port});
my @services;
for my $svc (qw(audit notify project))
{
	$ports{$svc} = TodoKafkaTest::free_port();
	push @services, TodoKafkaTest->start_service($svc, $node, $kafka,
		args => [ '--metrics-listen', "127.0.0.1:$ports{$svc}" ]);
}
ok($_->wait_log(qr/group \S+: starting/), "$_->{name} starts") for @services;

# a task for bob (his inbox is the default channel) with a reminder soon
$node->safe_psql('postgres', q{SELECT todo_kafka.add_task('bob', 'Water the plants',
	p_due_date => date_trunc('second', now()) + interval '4 s',
	p_reminder_offsets => '{2 seconds}', p_notification_methods => '{in_app}')});

# family names on a /metrics page (histograms also by their base name)
sub families
{
	my ($text) = @_;
	my %f;
	for (split /\n/, $text // '')
	{
		if (/^# TYPE (\S+) (\S+)/) { $f{$1} = 1; }
		elsif (/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/)
		{
			$f{$1} = 1;
			$f{$2} = 1 if $1 =~ /^(.*)_(bucket|sum|count)$/;
		}
	}
	return %f;
}

my (%exported, @missing);
wait_until('every named metric on some /metrics', sub {
	%exported = ();
	for my $d (sort keys %ports)
	{
		my %f = families(TodoKafkaTest::http_get("127.0.0.1:$ports{$d}", '/metrics'));
		$exported{$_}{$d} = 1 for keys %f;
	}
	@missing = grep { !$exported{$_} } sort keys %wanted;
	return !@missing;
}, 60);
# and each page passes Prometheus's own lint
for my $d (sort keys %ports)
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ $promtool, 'check', 'metrics' ], '<',
		\(TodoKafkaTest::http_get("127.0.0.1:$ports{$d}", '/metrics') // ''), '>', \$o, '2>', \$e);
	is($? >> 8, 0, "promtool check metrics: /metrics of $d") or diag("$o$e");
}
for my $m (sort keys %wanted)
{
	ok($exported{$m}, "$m is exported (" . join(', ', sort keys %{ $exported{$m} // {} }) . ')')
	  or diag("$m is named by " . join('; ', @{ $wanted{$m} }) . ' but no daemon exports it');
}
# and the daemon each prefix belongs to exports it
for my $m (sort keys %wanted)
{
	my ($who) = $m =~ /^todo_kafka_(relay|audit|notify|project)_/ or next;
	ok($exported{$m}{$who}, "$m comes from $who");
}

$_->stop for @services;
is($s->{relay}->stop, 0, 'relay stops cleanly');
$s->stop;
done_testing();
