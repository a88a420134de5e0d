# tests/603_debian.pl: the Debian packages build, are lintian clean and hold what they should.
#
# In a scratch copy of the tree (so no build output lands in the
# repository): dpkg-buildpackage -us -uc -b (debian/rules: pg_buildext for
# the extension, the programs once), then lintian --fail-on warning,error
# on the result.  The packages are unpacked (dpkg -x) into a scratch root:
#   postgresql-15-todo-kafka  the module and every install and upgrade
#       script of the tree, the control file;
#   todo-kafka  every program with its man page, every unit of
#       deploy/systemd (checked there again by systemd-analyze verify, with
#       the packaged programs at /usr/bin), the example configurations as
#       conffiles in /etc/todo-kafka, the .env templates the postinst copies
#       with mode 0600, the sysusers.d entry of the user todo-kafka, the
#       Dapr components, the alert rules, dashboard and Kafka scripts.
# Runs as an unprivileged user (Rules-Requires-Root: no).

use strict;
use warnings;

use File::Basename qw(basename);
use File::Temp qw(tempdir);
use IPC::Run qw(run);
use Test::More;
use SystemdUnits;
use TodoKafkaTest;

my $root = TodoKafkaTest::repo_root();
my $work = tempdir('deb_XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $src = "$work/todo-kafka";
my $log = "$PostgreSQL::Test::Utils::log_path/603_debian_build.log";

sub sh
{
	my ($argv, %opt) = @_;
	my $out;
	run($argv, '>&', $opt{log} ? $opt{log} : \$out, $opt{cwd} ? (init => sub { chdir $opt{cwd} or die }) : ());
	return ($? >> 8, $out // '');
}

# the tree as it is, without its version control and test leftovers
my ($rc, $out) = sh([ 'rsync', '-a', '--exclude', '.git', '--exclude', 'tmp_check',
	'--exclude', 'results', '--exclude', 'output_iso', "$root/", "$src/" ]);
is($rc, 0, 'scratch copy of the tree') or diag($out);

($rc) = sh([ 'dpkg-buildpackage', '-us', '-uc', '-b' ], cwd => $src, log => $log);
is($rc, 0, 'dpkg-buildpackage -us -uc -b') or diag(`tail -30 $log`);
my ($changes) = glob("$work/todo-kafka_*.changes");
my ($ext_deb) = glob("$work/postgresql-15-todo-kafka_*.deb");
my ($deb) = glob("$work/todo-kafka_*.deb");
ok($changes && $ext_deb && $deb, 'todo-kafka and postgresql-15-todo-kafka built')
  or BAIL_OUT('no packages');

($rc, $out) = sh([ 'lintian', '--fail-on', 'warning,error', $changes ]);
is($rc, 0, 'lintian --fail-on warning,error') or diag($out);
unlike($out, qr/^[EW]: /m, 'no lintian error or warning') or diag($out);

my $pkgroot = "$work/root";
($rc, $out) = sh([ 'dpkg', '-x', $_, $pkgroot ]) for $ext_deb, $deb;

# the extension package
my @ext_sql = map { basename($_) } glob("$root/extension/todo_kafka--*.sql");
# the current version's install script is built from extension/sql/ (not in git)
my ($version) = TodoKafkaTest::slurp("$root/todo_kafka.control") =~ /^default_version\s*=\s*'([^']+)'/m;
ok(-f "$pkgroot/usr/share/postgresql/15/extension/todo_kafka--$version.sql",
	"postgresql-15-todo-kafka: the install script todo_kafka--$version.sql");
ok(-f "$pkgroot/usr/lib/postgresql/15/lib/todo_kafka.so", 'postgresql-15-todo-kafka: todo_kafka.so');
ok(-f "$pkgroot/usr/share/postgresql/15/extension/todo_kafka.control", 'and todo_kafka.control');
ok(-f "$pkgroot/usr/share/postgresql/15/extension/$_", "and $_") for @ext_sql;
ok(!-e "$pkgroot/usr/local", 'nothing under /usr/local');

# the programs, with their man pages
for my $p (qw(relay devbroker audit notify project dlq))
{
	ok(-x "$pkgroot/usr/bin/todo-kafka-$p", "todo-kafka: /usr/bin/todo-kafka-$p");
	ok(-f "$pkgroot/usr/share/man/man1/todo-kafka-$p.1.gz", "and its man page");
}

# the units, as packaged, by systemd-analyze
my @units = map { basename($_) } glob("$root/deploy/systemd/*.service $root/deploy/systemd/*.timer");
ok(-f "$pkgroot/lib/systemd/system/$_", "unit $_ installed") for @units;
my $sysroot = SystemdUnits::make_root({
	(map { ("usr/bin/$_" => "$pkgroot/usr/bin/$_") } map { basename($_) } glob("$pkgroot/usr/bin/*")),
	(map { ("etc/systemd/system/$_" => "$pkgroot/lib/systemd/system/$_") } @units) });
my ($ok, $vout) = SystemdUnits::verify($sysroot, map { "$sysroot/etc/systemd/system/$_" } @units);
ok($ok, 'systemd-analyze verify of the packaged units') or diag($vout);
for my $u (@units)
{
	my ($doc) = SystemdUnits::settings(SystemdUnits::parse("$pkgroot/lib/systemd/system/$u"), 'Unit', 'Documentation');
	my ($page) = ($doc // '') =~ /^man:([\w-]+)\(1\)$/;
	ok($page && -f "$pkgroot/usr/share/man/man1/$page.1.gz", "$u: its Documentation=$doc is packaged");
}

# configuration: conffiles, env templates, the user
my ($crc, $conffiles) = sh([ 'sh', '-c', "dpkg-deb --ctrl-tarfile '$deb' | tar -xOf - ./conffiles" ]);
for my $c (map { basename($_) } glob("$root/deploy/config/*.conf"))
{
	like($conffiles, qr{^/etc/todo-kafka/\Q$c\E$}m, "/etc/todo-kafka/$c is a conffile");
	is(TodoKafkaTest::slurp("$pkgroot/etc/todo-kafka/$c"),
		TodoKafkaTest::slurp("$root/deploy/config/$c"), "and is deploy/config/$c");
}
ok(-f "$pkgroot/usr/share/todo-kafka/env/$_.env", "env template $_.env") for qw(relay audit notify project dlq devbroker);
my ($prc, $postinst) = sh([ 'sh', '-c', "dpkg-deb --ctrl-tarfile '$deb' | tar -xOf - ./postinst" ]);
like($postinst, qr/install -m 0600 -o root -g root "\$t" "\$f"/, 'postinst makes /etc/todo-kafka/*.env with mode 0600');
like($postinst, qr/systemd-sysusers .*todo-kafka\.conf/, 'postinst creates the user (systemd-sysusers)');
like(TodoKafkaTest::slurp("$pkgroot/usr/lib/sysusers.d/todo-kafka.conf"), qr/^u todo-kafka /m, 'sysusers.d: user todo-kafka');
ok(-f "$pkgroot/usr/share/todo-kafka/dapr/production/kafka-pubsub.yaml", 'the Dapr components');
# what the README's Deploying section takes from the package
ok(-f "$pkgroot/usr/share/todo-kafka/$_", "/usr/share/todo-kafka/$_")
  for qw(prometheus/prometheus.yml prometheus/todo-kafka.rules.yml prometheus/todo-kafka.rules.test.yml
	grafana/todo-kafka.json kafka/users.sh kafka/acls.sh);


done_testing();
