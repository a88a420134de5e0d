# tests/600_dapr.pl: deploy/dapr against Dapr's own reference for pubsub.kafka.
#
# The topic map comes from a fresh install (todo_kafka.topics of a real
# PostgreSQL with the extension), the field list from Dapr's metadata.yaml
# of the component (deploy/dapr/reference, copied unchanged from
# dapr/components-contrib), the CloudEvents types from schemas/.
# tests/lib/check_dapr.py (python3-yaml, python3-jsonschema) does the
# checking and reports one line per check; each becomes a test here.
# Then the same checker must fail on a copy of deploy/dapr with the
# mistakes it exists to catch: an inline password, a field Dapr does not
# know (the infrastructure spec's "authRequired"), rawPayload on a
# subscription, a missing subscription, a routing rule on a type no message
# has.

use strict;
use warnings;

use File::Temp qw(tempdir);
use IPC::Run qw(run);
use Test::More;
use TodoKafkaTest;

my $root = TodoKafkaTest::repo_root();
my $node = TodoKafkaTest::new_node('t600');
my @topics = map { join '=', split /\|/ }
  split /\n/, $node->safe_psql('postgres', 'SELECT stream, topic FROM todo_kafka.topics ORDER BY 1');
$node->stop;
ok(@topics >= 6, 'topic map of a fresh install: ' . join(' ', @topics));

sub check_dapr
{
	my ($dir) = @_;
	my ($out, $err);
	run([ 'python3', "$root/tests/lib/check_dapr.py", $dir, "$root/deploy/dapr/reference",
		"$root/schemas", @topics ], '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

my ($rc, $out, $err) = check_dapr("$root/deploy/dapr");
for my $line (split /\n/, $out)
{
	my ($status, $what, $why) = split /\t/, $line;
	ok($status eq 'ok', $what) or diag($why // '');
}
is($rc, 0, 'check_dapr.py passes deploy/dapr') or diag($err);

# the mistakes the checker exists for, each in a copy of its own
sub edit
{
	my ($file, $from, $to) = @_;
	my $dir = tempdir("dapr_XXXXXX", DIR => $PostgreSQL::Test::Utils::tmp_check, CLEANUP => 1);
	system('cp', '-a', "$root/deploy/dapr/.", $dir) == 0 or die "cp: $?";
	my $path = "$dir/$file";
	open my $fh, '<', $path or die "$path: $!";
	local $/;
	my $text = <$fh>;
	close $fh;
	if (defined $from)
	{
		$text =~ s/$from/$to/ or die "$file: no match for $from";
		open $fh, '>', $path or die "$path: $!";
		print $fh $text;
		close $fh;
	}
	else
	{
		unlink $path or die "$path: $!";
	}
	return $dir;
}

my @broken = (
	[ 'inline saslPassword', 'production/kafka-pubsub.yaml',
		qr/- name: saslPassword\n\s+secretKeyRef:\n\s+name: kafka-pubsub\n\s+key: saslPassword/,
		"- name: saslPassword\n      value: \"hunter2\"",
		qr/sensitive "saslPassword" comes from a secretKeyRef/ ],
	[ 'the spec\'s authRequired', 'production/kafka-pubsub.yaml',
		qr/    - name: disableTls/, "    - name: authRequired\n      value: \"true\"\n    - name: disableTls",
		qr/"authRequired" is a pubsub.kafka field/ ],
	[ 'SCRAM-SHA-256 in production', 'production/kafka-pubsub.yaml',
		qr/"SHA-512"/, '"SHA-256"', qr/SASL\/SCRAM-SHA-512/ ],
	[ 'rawPayload on a subscription', 'subscriptions/todo-task-events.yaml',
		qr/  routes:/, "  metadata:\n    rawPayload: \"true\"\n  routes:", qr/no rawPayload/ ],
	[ 'no subscription for reminders', 'subscriptions/todo-reminders.yaml', undef, undef,
		qr/one Subscription for todo\.reminders/ ],
	[ 'a rule on a type no message has', 'subscriptions/todo-task-events.yaml',
		qr/"task.completed"/, '"task.done"', qr/rule .*task\.done.* matches a type/ ],
);
for my $b (@broken)
{
	my ($name, $file, $from, $to, $expect) = @$b;
	my ($brc, $bout, $berr) = check_dapr(edit($file, $from, $to));
	isnt($brc, 0, "checker fails on: $name");
	like($bout, qr/^not ok\t.*$expect/m, "and names it: $name") or diag($berr);
}

done_testing();
