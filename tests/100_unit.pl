# tests/100_unit.pl: unit tests of common/ (no PostgreSQL, no Kafka).
#
# Builds common/test_unit and replays its TAP lines: config parsing and
# redaction, backoff, timestamps, histogram, CloudEvents building.

use strict;
use warnings;

use IPC::Run;
use Test::More;
use TodoKafkaTest;

my $common = TodoKafkaTest::repo_root() . '/common';
my ($out, $err) = ('', '');
ok(IPC::Run::run([ 'make', '-s', '-C', $common, 'test_unit' ], '>', \$out, '2>', \$err),
	'common/test_unit builds') or diag($err);
($out, $err) = ('', '');
IPC::Run::run([ "$common/test_unit" ], '>', \$out, '2>', \$err);
my $ran = 0;
for my $line (split /\n/, $out)
{
	if ($line =~ /^(not )?ok \d+ - (.*)$/)
	{
		ok(!$1, $2);
		$ran++;
	}
	elsif ($line =~ /^#/)
	{
		diag($line);
	}
}
cmp_ok($ran, '>=', 30, "unit tests ran ($ran)");
done_testing();
