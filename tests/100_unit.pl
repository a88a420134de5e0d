# tests/100_unit.pl: unit tests of common/ (no PostgreSQL, no Kafka).
#
# Builds common/test_unit, common/test_net_guard and common/test_messages
# and replays their TAP lines: config parsing and redaction, backoff,
# timestamps, histogram, CloudEvents building, the envelope and dead letters; the address classes and host lists that keep push
# requests off internal networks.

use strict;
use warnings;

use IPC::Run;
use Test::More;
use TodoKafkaTest;

my $common = TodoKafkaTest::repo_root() . '/common';
for my $prog ([ 'test_unit', 30 ], [ 'test_net_guard', 90 ], [ 'test_messages', 6 ])
{
	my ($name, $least) = @$prog;
	my ($out, $err) = ('', '');
	ok(IPC::Run::run([ 'make', '-s', '-C', $common, $name ], '>', \$out, '2>', \$err),
		"common/$name builds") or diag($err);
	($out, $err) = ('', '');
	IPC::Run::run([ "$common/$name" ], '>', \$out, '2>', \$err);
	my $ran = 0;
	for my $line (split /\n/, $out)
	{
		if ($line =~ /^(not )?ok \d+ - (.*)$/)
		{
			ok(!$1, "$name: $2");
			$ran++;
		}
		elsif ($line =~ /^#/)
		{
			diag($line);
		}
	}
	cmp_ok($ran, '>=', $least, "$name: unit tests ran ($ran)");
}
done_testing();
