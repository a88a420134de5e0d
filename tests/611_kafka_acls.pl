# tests/611_kafka_acls.pl: deploy/kafka/acls.sh grants each principal what
# its daemon does, no more, no less, as the code's own tables say.
#
# What each daemon does, read from the sources (a change there that the
# ACLs do not follow fails here):
#   topics    stream -> topic: the INSERT INTO todo_kafka.topics of the
#             install script (no later script may change those rows)
#   relay     creates every topic of the map (relay/topics_admin.c reads
#             the whole table; create_topics defaults to true) and writes
#             the built-in streams (extension/todo_kafka.h) that no service
#             produces: outbox rows name them (the built-in ones other than
#             a service's output), and its poison rows go to dead_letter
#   services  each tkc_service definition in consumers/*/*.c (function-like
#             macros such as notify's NOTIFY_SERVICE expanded): it reads
#             .streams, the group group_prefix (default from
#             consumers/runtime/runtime_config.c) + .name, writes .produces
#             and the dead-letter stream (consumers/runtime/dlq.c)
#   dlq       reads dead_letter with group.id PROGRAM (tools/dlq), and
#             replays to the streams the services read (the relay's poison
#             rows go back through the outbox: dlq_requeue_outbox)
#   cluster   IdempotentWrite for each program whose producer sets
#             enable.idempotence
# acls.sh runs with a kafka-acls.sh on KAFKA_BIN that records its argv;
# users.sh likewise with kafka-configs.sh: the users are the principals.

use strict;
use warnings;

use File::Temp qw(tempdir);
use IPC::Run;
use Test::More;
use TodoKafkaTest;

my $root = TodoKafkaTest::repo_root();
sub src { return TodoKafkaTest::slurp("$root/$_[0]"); }

# --- the topic map ----------------------------------------------------------
my $install = src('extension/sql/02_topics.sql');
my ($values) = $install =~ /INSERT INTO todo_kafka\.topics \([^)]*\) VALUES\s*(.*?);/s
  or BAIL_OUT('no INSERT INTO todo_kafka.topics in the install script');
my %topic = $values =~ /\(\s*'(\w+)'\s*,\s*'([^']+)'/g;
ok(scalar(keys %topic) >= 6, 'topic map: ' . join(', ', map { "$_=$topic{$_}" } sort keys %topic));
# the map is 02_topics.sql's (0.1.0's, which no upgrade changed); a
# function body may write the table at run time (restoring a dump)
for my $f (sort glob("$root/extension/todo_kafka--*--*.sql"), grep { !/02_topics\.sql$/ } sort glob("$root/extension/sql/*.sql"))
{
	(my $t = TodoKafkaTest::slurp($f)) =~ s/\$(\w*)\$.*?\$\1\$//gs;
	ok($t !~ /(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+todo_kafka\.topics\b/i,
		'no other script changes the topic map: ' . ($f =~ s{.*/extension/}{extension/}r));
}

# --- C tables: string macros, string arrays, function-like macros ----------
my %define;
for my $f (glob("$root/{common,common/messages,consumers/*,extension}/*.[ch]"))
{
	my $t = TodoKafkaTest::slurp($f);
	$define{$1} = $2 while $t =~ /^#define\s+(\w+)\s+"([^"]*)"/mg;
}
sub strings
{
	my ($list) = @_;
	my @r;
	for my $item (split /,/, $list)
	{
		$item =~ s/^\s+|\s+$//g;
		next if $item eq 'NULL' || $item eq '';
		if ($item =~ /^"([^"]*)"$/) { push @r, $1; }
		elsif (exists $define{$item}) { push @r, $define{$item}; }
		else { BAIL_OUT("cannot resolve \"$item\" in a stream list"); }
	}
	return \@r;
}

my %streams_of;                          # service => streams read
my %produces;                            # service => streams written
for my $f (sort glob("$root/consumers/*/*.c"))
{
	next if $f =~ m{/consumers/runtime/};
	my $t = TodoKafkaTest::slurp($f);
	my %arrays;
	$arrays{$1} = strings($2) while $t =~ /static const char \*const (\w+)\[\]\s*=\s*\{(.*?)\};/sg;
	# expand function-like macros whose body names a service
	(my $flat = $t) =~ s/\\\n/ /g;
	my @macros;
	push @macros, [ $1, $2, $3 ] while $flat =~ /^#define\s+(\w+)\(([^)]*)\)\s*(.*\.name\s*=.*)$/mg;
	$flat =~ s/^#define\s.*$//mg;
	for my $m (@macros)
	{
		my ($name, $params, $body) = @$m;
		my @p = map { s/^\s+|\s+$//gr } split /,/, $params;
		$flat =~ s{\b\Q$name\E\(([^()]*)\)}{
			my @a = map { s/^\s+|\s+$//gr } split /,/, $1;
			my $b = $body;
			$b =~ s/\b\Q$p[$_]\E\b/$a[$_]/g for 0 .. $#p;
			$b;
		}ge;
	}
	while ($flat =~ /\{\s*\.name\s*=\s*"([^"]+)"(.*?)\}/sg)
	{
		my ($svc, $init) = ($1, $2);
		my ($s) = $init =~ /\.streams\s*=\s*(\w+)/ or next;
		my ($p) = $init =~ /\.produces\s*=\s*(\w+)/;
		$streams_of{$svc} = $arrays{$s} // BAIL_OUT("$f: no array $s");
		$produces{$svc} = $p ? $arrays{$p} // BAIL_OUT("$f: no array $p") : [];
	}
}
is_deeply([ sort keys %streams_of ],
	[qw(audit notify notify-email notify-fanout notify-realtime project)],
	'service definitions found: ' . join(', ', sort keys %streams_of));

my $runtime_config = src('consumers/runtime/runtime_config.c');
my ($prefix) = $runtime_config =~ /\{"group_prefix",\s*TK_OPT_STRING,\s*OFF\(group_prefix\),\s*"([^"]*)"/
  or BAIL_OUT('no group_prefix default in runtime_config.c');
like(src('consumers/runtime/dlq.c'), qr/dead_letter_topic/, 'services write dead letters (runtime/dlq.c)');

# the principal of a service: its binary (a stage of notify is notify)
sub principal { my ($svc) = @_; return 'todo-kafka-' . ($svc =~ s/-.*//r); }

my %want;    # "principal|type|name|operation"
sub want { $want{ join('|', @_) } = 1; }

# relay
my $admin = src('relay/topics_admin.c');
like($admin, qr/SELECT stream, topic[^"]*"\s*"FROM todo_kafka\.topics ORDER BY stream/,
	'the relay loads the whole topic map');
like(src('relay/relay_config.c'), qr/\{"create_topics",\s*TK_OPT_BOOL,[^}]*"true"/,
	'the relay creates topics by default');
my %service_output = map { $_ => 1 } map { @$_ } values %produces;
# the built-in streams: common/messages/streams.h
my @builtin = map { $define{$_} } grep { /^TK_STREAM_/ } keys %define;
my @relay_writes = grep { !$service_output{$_} } @builtin;
like(src('relay/producer.c'), qr/relay_topics_find\(topics, TK_STREAM_DEAD_LETTER\)/,
	'the relay writes dead letters');
for my $stream (sort keys %topic)
{
	want('todo-kafka-relay', 'topic', $topic{$stream}, 'Create');
	if (grep { $_ eq $stream } @relay_writes)
	{
		want('todo-kafka-relay', 'topic', $topic{$stream}, 'Write');
	}
	else
	{
		want('todo-kafka-relay', 'topic', $topic{$stream}, 'Describe');
	}
}

# services
for my $svc (sort keys %streams_of)
{
	my $who = principal($svc);
	want($who, 'topic', $topic{$_} // BAIL_OUT("no topic for $_"), 'Read') for @{ $streams_of{$svc} };
	want($who, 'group', "$prefix$svc", 'Read');
	want($who, 'topic', $topic{$_}, 'Write') for @{ $produces{$svc} }, 'dead_letter';
}

# dlq
my ($program) = src('tools/dlq/dlq_int.h') =~ /#define PROGRAM "([^"]+)"/ or BAIL_OUT('no PROGRAM');
like(src('tools/dlq/dlq_read.c'), qr/"group\.id", PROGRAM/, 'the dlq tool reads with group.id PROGRAM');
like(src('tools/dlq/dlq_replay.c'), qr/dlq_requeue_outbox/, "the relay's poison rows are replayed through the outbox");
want($program, 'topic', $topic{dead_letter}, 'Read');
want($program, 'group', $program, 'Read');
my %read_by_services = map { $_ => 1 } map { @$_ } values %streams_of;
want($program, 'topic', $topic{$_}, 'Write') for keys %read_by_services;

# idempotent producers
my %idempotent = ('relay/relay_config.c' => ['todo-kafka-relay'],
	'consumers/runtime/kafka.c' => [ map { principal($_) } keys %streams_of ],
	'tools/dlq/dlq_replay.c' => [$program]);
for my $f (sort keys %idempotent)
{
	next unless like(src($f), qr/"enable\.idempotence",\s*"true"/, "$f: an idempotent producer");
	want($_, 'cluster', 'kafka-cluster', 'IdempotentWrite') for @{ $idempotent{$f} };
}

# --- what acls.sh grants -------------------------------------------------------
my $dir = tempdir('tk611-XXXX', TMPDIR => 1, CLEANUP => 1);
for my $tool (qw(kafka-acls.sh kafka-configs.sh))
{
	open my $fh, '>', "$dir/$tool" or die $!;
	print $fh "#!/bin/sh\nfor a in \"\$@\"; do printf '%s\\037' \"\$a\"; done >> $dir/$tool.log\necho >> $dir/$tool.log\n";
	close $fh;
	chmod 0755, "$dir/$tool";
}
my %env = (KAFKA_BIN => $dir, KAFKA_BOOTSTRAP => 'k1:9093', KAFKA_ADMIN_CONFIG => '/etc/kafka/admin.properties');
my ($out, $err) = ('', '');
local @ENV{ keys %env } = values %env;
ok(IPC::Run::run([ 'sh', "$root/deploy/kafka/acls.sh" ], '>', \$out, '2>', \$err), 'acls.sh runs')
  or diag($err);

my %got;
for my $line (split /\n/, TodoKafkaTest::slurp("$dir/kafka-acls.sh.log"))
{
	my @a = split /\037/, $line;
	my (%o, @ops, $who, $type, $name);
	while (@a)
	{
		my $k = shift @a;
		if ($k eq '--operation') { push @ops, shift @a; }
		elsif ($k eq '--allow-principal') { ($who = shift @a) =~ s/^User://; }
		elsif ($k eq '--topic' || $k eq '--group') { $type = substr($k, 2); $name = shift @a; }
		elsif ($k eq '--cluster') { ($type, $name) = ('cluster', 'kafka-cluster'); }
		elsif ($k eq '--bootstrap-server' || $k eq '--command-config') { $o{$k} = shift @a; }
		elsif ($k eq '--add') { $o{add} = 1; }
		else { fail("acls.sh: unexpected argument $k (deny rules, prefixed patterns and hosts are not expected)"); }
	}
	ok($o{add} && $o{'--bootstrap-server'} eq 'k1:9093' && $o{'--command-config'},
		"an --add against KAFKA_BOOTSTRAP with KAFKA_ADMIN_CONFIG: $who $type $name");
	$got{"$who|$type|$name|$_"} = 1 for @ops;
}
my @extra = grep { !$want{$_} } sort keys %got;
my @missing = grep { !$got{$_} } sort keys %want;
is_deeply(\@extra, [], 'acls.sh grants nothing the code does not need');
is_deeply(\@missing, [], 'acls.sh grants everything the code needs');
note("granted: $_") for sort keys %got;

# --- users.sh: one SCRAM user per principal, passwords from the environment
my %principals = map { (split /\|/)[0] => 1 } keys %want;
my %pw = map { my $v = 'TODO_KAFKA_' . uc(s/^todo-kafka-//r) . '_PASSWORD'; ($v => "pw-$_") } keys %principals;
local @ENV{ keys %pw } = values %pw;
ok(IPC::Run::run([ 'sh', "$root/deploy/kafka/users.sh" ], '>', \$out, '2>', \$err), 'users.sh runs')
  or diag($err);
my %users;
for my $line (split /\n/, TodoKafkaTest::slurp("$dir/kafka-configs.sh.log"))
{
	my ($name, $config);
	my @a = split /\037/, $line;
	for my $i (0 .. $#a - 1)
	{
		$name = $a[ $i + 1 ] if $a[$i] eq '--entity-name';
		$config = $a[ $i + 1 ] if $a[$i] eq '--add-config';
	}
	$users{$name} = $config;
}
is_deeply([ sort keys %users ], [ sort keys %principals ], 'users.sh makes exactly the principals');
is($users{$_}, "SCRAM-SHA-512=[iterations=8192,password=pw-$_]", "$_: SCRAM-SHA-512, password from the environment")
  for sort keys %users;
unlike(TodoKafkaTest::slurp("$root/deploy/kafka/$_"), qr/password=["']?[A-Za-z0-9]/, "$_ holds no password")
  for qw(users.sh acls.sh);
{
	local $ENV{DRY_RUN} = 1;
	ok(IPC::Run::run([ 'sh', "$root/deploy/kafka/users.sh" ], '>', \$out, '2>', \$err), 'users.sh DRY_RUN=1 runs');
	like($out, qr/--entity-name todo-kafka-relay --add-config SCRAM-SHA-512=\[iterations=8192,password=\*\*\*\]/,
		'a dry run prints the commands');
	unlike($out, qr/pw-todo-kafka/, 'a dry run prints no password');
}

done_testing();
