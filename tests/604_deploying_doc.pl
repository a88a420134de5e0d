# tests/604_deploying_doc.pl: the README's "Deploying" section names only
# things that exist, so it cannot drift from the tree.
#
# Read from the section (up to the next "## " heading) and checked:
#   files     every deploy/... and debian/... path is in the tree; every
#             /usr/share/todo-kafka/<dir>/... is installed there by
#             debian/todo-kafka.install from a file that exists; every
#             /etc/todo-kafka/<daemon>.conf|.env has its deploy/config file
#   units     every todo-kafka-* unit (systemctl, journalctl, the table,
#             /lib/systemd/system/...) is a file of deploy/systemd
#             (NAME@INSTANCE: the template NAME@.service)
#   settings  every "key = value" written into a <daemon>.conf is a setting
#             of that daemon's example config (deploy/config/, generated
#             from its option table); every TODO_KAFKA_* variable is a
#             setting's (TODO_KAFKA_<KEY>), a kafka.* property of the
#             example configs, or named in deploy/
#   options   every --option given to a todo-kafka-* program is in that
#             program's --help
#   Kafka     every sasl.username it sets (and the example configs') is a
#             user deploy/kafka/users.sh creates
#   roles, SQL functions and metrics: created by extension/sql/, listed in
#             docs/reference.md (generated from the code)
# Then the checker must fail on a copy of the section with one bad name of
# each kind.

use strict;
use warnings;

use Test::More;
use TodoKafkaTest;

my $root = TodoKafkaTest::repo_root();
my $readme = TodoKafkaTest::slurp("$root/README.md");
my ($section) = $readme =~ /^## Deploying\n(.*?)^## /ms;
ok(defined $section && length $section > 1000, 'README has a Deploying section');

my %bin = (
	relay => TodoKafkaTest::relay_binary(),
	audit => TodoKafkaTest::service_binary('audit'),
	notify => TodoKafkaTest::service_binary('notify'),
	project => TodoKafkaTest::service_binary('project'),
	dlq => TodoKafkaTest::service_binary('dlq'),
	devbroker => "$root/devbroker/todo-kafka-devbroker");
my %help = map { $_ => scalar `$bin{$_} --help 2>&1` } keys %bin;

# daemon => { key => 1 } from the example configs ("#key =" or "key =")
my %keys;
for my $d (qw(relay audit notify project dlq))
{
	for (split /\n/, TodoKafkaTest::slurp("$root/deploy/config/$d.conf"))
	{
		$keys{$d}{$1} = 1 if /^#?([a-z][a-z0-9_.]*) =(?: |$)/;
	}
}
my $deploy_text = join "\n", map { TodoKafkaTest::slurp($_) }
  grep { -f $_ } glob("$root/deploy/*/* $root/debian/*");
my $install = TodoKafkaTest::slurp("$root/debian/todo-kafka.install");
# the roles: the array 01_schema_roles.sql creates them from
my ($role_list) = TodoKafkaTest::slurp("$root/extension/sql/01_schema_roles.sql") =~ /FOREACH r IN ARRAY ARRAY\[(.*?)\]/s;
my %role = map { $_ => 1 } $role_list =~ /'(\w+)'/g;
my $reference = TodoKafkaTest::slurp("$root/docs/reference.md");
# the Kafka users deploy/kafka/users.sh creates (its dry run prints them)
my $users_env = join ' ', 'DRY_RUN=1 KAFKA_BOOTSTRAP=k:9093 KAFKA_ADMIN_CONFIG=a.properties',
  map { "TODO_KAFKA_${_}_PASSWORD=p" } qw(RELAY AUDIT NOTIFY PROJECT DLQ);
my %kafka_user = map { $_ => 1 } `env $users_env sh $root/deploy/kafka/users.sh` =~ /--entity-name (\S+)/g;
ok(scalar keys %kafka_user >= 5, 'users.sh names the Kafka users: ' . join(' ', sort keys %kafka_user));

# every problem of a section text, as strings
sub problems
{
	my ($text) = @_;
	my @bad;
	my @blocks = $text =~ /^```\w*\n(.*?)^```/msg;
	my $code = join "\n", @blocks;

	# files of the tree
	for my $p ($text =~ m{(?<![\w/])((?:deploy|debian)/[\w.@/-]*[\w@])}g)
	{
		push @bad, "no file $p" unless -e "$root/$p";
	}
	# what the package installs under /usr/share/todo-kafka
	for my $p ($text =~ m{/usr/share/todo-kafka/([\w.@/-]*[\w@])}g)
	{
		my ($dir, $rest) = $p =~ m{^([^/]+)(?:/(.*))?$};
		my %from = (dapr => 'deploy/dapr', prometheus => 'deploy/prometheus',
			grafana => 'deploy/grafana', kafka => 'deploy/kafka', schemas => 'schemas');
		my $src = $from{$dir};
		if (!$src || $install !~ m{^\Q$src\E usr/share/todo-kafka/?$}m)
		{
			push @bad, "/usr/share/todo-kafka/$dir is not installed by debian/todo-kafka.install";
			next;
		}
		push @bad, "no file $src/$rest for /usr/share/todo-kafka/$p"
		  if defined $rest && !-e "$root/$src/$rest";
	}
	for my $p ($text =~ m{/etc/todo-kafka/([\w.-]+\.(?:conf|env))}g)
	{
		next if $p =~ /^relay-/;    # per-instance, made by the operator
		push @bad, "no deploy/config/$p for /etc/todo-kafka/$p" unless -f "$root/deploy/config/$p";
	}
	# units: NAME.service / NAME.timer anywhere, every todo-kafka-* that
	# systemctl or journalctl is given
	my @units = $text =~ /\b(todo-kafka-[\w-]+(?:@\w*)?\.(?:service|timer))\b/g;
	for my $line (split /\n/, $code)
	{
		push @units, $line =~ /(?<![\w\/-])(todo-kafka-[\w@.-]*\w)/g if $line =~ /^\s*(?:systemctl|journalctl)\b/;
	}
	for my $u (@units)
	{
		my $file = $u;
		$file =~ s/@\w*(?:\.service)?$/@.service/;
		$file .= '.service' unless $file =~ /\.(service|timer)$/;
		push @bad, "no unit deploy/systemd/$file for $u" unless -f "$root/deploy/systemd/$file";
	}
	# settings written into a daemon's config
	for my $b (@blocks)
	{
		for my $line (split /\n/, $b)
		{
			if ($line =~ /^echo '([a-z_.]+) = [^']*' >> (\w+)\.conf/)
			{
				push @bad, "$2.conf has no setting $1" unless $keys{$2} && $keys{$2}{$1};
			}
		}
		while ($b =~ /cat >> (\$d|\w+)\.conf <<'?(\w+)'?\n(.*?)^\2$/msg)
		{
			my ($who, $body) = ($1, $3);
			my @daemons = $who eq '$d' ? ($b =~ /for d in ([\w ]+);/)[0] =~ /(\w+)/g : ($who);
			for my $k ($body =~ /^([a-z][a-z0-9_.]*) = /mg)
			{
				$keys{$_} && $keys{$_}{$k} or push @bad, "$_.conf has no setting $k" for @daemons;
			}
		}
	}
	my %all = map { %{ $keys{$_} } } keys %keys;
	for my $v ($text =~ /\b(TODO_KAFKA_[A-Z0-9_]*[A-Z0-9])(?![\w<])/g)
	{
		my $k = lc($v =~ s/^TODO_KAFKA_//r);
		next if $all{$k} || $k eq 'db' || $k eq 'brokers';
		next if $k =~ /^kafka_/ && grep { /^kafka\./ && s/\./_/gr eq $k } keys %all;
		next if $deploy_text =~ /\b\Q$v\E\b/;
		push @bad, "$v is no setting and not named in deploy/";
	}
	# options of the programs, as their --help lists them ($d: each
	# program of the block's "for d in ...")
	for my $b (@blocks)
	{
		my ($loop) = $b =~ /for d in ([\w ]+);/;
		for my $line (split /\n/, $b)
		{
			while ($line =~ /(?:^|[\s\/])todo-kafka-(\w+|\$d)((?:\s+-[-\w]+(?:[= ][^\s;|&"-][^\s;|&"]*)?)*)/g)
			{
				my ($prog, $args) = ($1, $2);
				my @progs = $prog eq '$d' ? split(' ', $loop // '') : ($prog);
				for my $o ($args =~ /(?:^|\s)(--[a-z][a-z-]*)/g)
				{
					for my $p (@progs)
					{
						push @bad, "todo-kafka-$p has no option $o"
						  unless defined $help{$p} && $help{$p} =~ /\Q$o\E\b/;
					}
				}
			}
		}
	}
	# Kafka logins: users that deploy/kafka/users.sh creates ($d as above)
	for my $b (@blocks)
	{
		my ($loop) = $b =~ /for d in ([\w ]+);/;
		for my $u ($b =~ /sasl\.username\s*=\s*([^\s\\]+)/g)
		{
			for my $x ($u =~ /\$d/ ? map { $u =~ s/\$d/$_/r } split(' ', $loop // '') : ($u))
			{
				push @bad, "no Kafka user $x in deploy/kafka/users.sh" unless $kafka_user{$x};
			}
		}
	}
	# roles, SQL functions, metrics
	for my $m ($text =~ /\b(todo_kafka_[a-z_]*[a-z])\b/g)
	{
		next if $role{$m};
		push @bad, "no role or metric $m" unless $reference =~ /^\| `\Q$m\E` \|/m;
	}
	for my $f ($text =~ /\btodo_kafka\.([a-z_]+)\(/g)
	{
		push @bad, "no SQL function todo_kafka.$f in docs/reference.md" unless $reference =~ /^### todo_kafka\.\Q$f\E\(/m;
	}
	return @bad;
}

my @bad = problems($section);
is_deeply(\@bad, [], 'everything the Deploying section names exists');
# the example configs' production lines log in as those users too
for my $d (qw(relay audit notify project dlq))
{
	my ($u) = TodoKafkaTest::slurp("$root/deploy/config/$d.conf") =~ /^#kafka\.sasl\.username = (\S+)/m;
	ok(defined $u && $kafka_user{$u}, "deploy/config/$d.conf logs in as a user of users.sh (" . ($u // 'none') . ')');
}

# the checker catches each kind of drift
my %drift = (
	'no file deploy/systemd/nope.conf' => "see deploy/systemd/nope.conf\n",
	'/usr/share/todo-kafka/bin is not installed' => "ls /usr/share/todo-kafka/bin/x\n",
	'no deploy/config/relayy.env' => "cat /etc/todo-kafka/relayy.env\n",
	'no unit deploy/systemd/todo-kafka-audits.service' => "```sh\nsystemctl start todo-kafka-audits\n```\n",
	'relay.conf has no setting metric_listen' => "```sh\necho 'metric_listen = 1' >> relay.conf\n```\n",
	'audit.conf has no setting kafka.sasl.mechanisms' =>
	  "```sh\nfor d in relay audit; do\n  cat >> \$d.conf <<CONF\nkafka.sasl.mechanisms = X\nCONF\ndone\n```\n",
	'TODO_KAFKA_SMTP_PASSWD is no setting' => "TODO_KAFKA_SMTP_PASSWD=x\n",
	'todo-kafka-audit has no option --show-configuration' =>
	  "```sh\nfor d in relay audit; do\n  /usr/bin/todo-kafka-\$d -c x --show-configuration\ndone\n```\n",
	'no role or metric todo_kafka_notify_writer' => "IN ROLE todo_kafka_notify_writer;\n",
	'no role or metric todo_kafka_relay_leaders' => "grep todo_kafka_relay_leaders\n",
	'no Kafka user relay in deploy/kafka/users.sh' => "```sh\nkafka.sasl.username = relay\n```\n",
	'no Kafka user todo-kafka-audi in deploy/kafka/users.sh' =>
	  "```sh\nfor d in relay audi; do\n  echo kafka.sasl.username = todo-kafka-\$d\ndone\n```\n",
	'no SQL function todo_kafka.add_tasks' => "SELECT todo_kafka.add_tasks('a')\n");
for my $want (sort keys %drift)
{
	my @p = problems($drift{$want});
	ok((grep { index($_, $want) == 0 } @p), "a section with a bad name is caught: $want")
	  or diag(explain \@p);
}

done_testing();
