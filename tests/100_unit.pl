# tests/100_unit.pl: the C unit tests (no PostgreSQL, no Kafka).
#
# Builds each unit test program and replays its TAP lines:
#   common/test_unit             config parsing and redaction, backoff,
#                                timestamps, histogram, Kafka errors in words
#   common/test_net_guard        the address classes and host lists that keep
#                                push requests off internal networks
#   common/test_messages         the envelope, the dead letters' origin and
#                                the relay's CloudEvents of an outbox row
#   relay/test_position          the window ring: windows settle in order
#   relay/test_pass_schedule     busy, idle, sleeping, re-check, poll, flush
#   consumers/runtime/test_batch_offsets   the offsets a batch stores, in order

use strict;
use warnings;

use IPC::Run;
use Test::More;
use TodoKafkaTest;

my $root = TodoKafkaTest::repo_root();
# [directory, program, at least this many tests]
for my $prog ([ 'common', 'test_unit', 30 ], [ 'common', 'test_net_guard', 90 ],
	[ 'common', 'test_messages', 35 ],
	[ 'relay', 'test_position', 20 ], [ 'relay', 'test_pass_schedule', 20 ],
	[ 'consumers/runtime', 'test_batch_offsets', 15 ])
{
	my ($dir, $name, $least) = @$prog;
	my ($out, $err) = ('', '');
	ok(IPC::Run::run([ 'make', '-s', '-C', "$root/$dir", $name ], '>', \$out, '2>', \$err),
		"$dir/$name builds") or diag($err);
	($out, $err) = ('', '');
	IPC::Run::run([ "$root/$dir/$name" ], '>', \$out, '2>', \$err);
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
