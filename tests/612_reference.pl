# tests/612_reference.pl: docs/reference.md is what scripts/gen-reference
# makes from the code now (config keys from the option tables and each
# program's --help, metrics from their registrations, SQL functions from
# pg_proc and the SQL sources; see the script's header).  The script runs
# as a developer runs it (a scratch server of its own); any difference
# fails with the diff and the command that fixes it.

use strict;
use warnings;

use File::Temp qw(tempdir);
use IPC::Run;
use Test::More;
use TodoKafkaTest;

my $root = TodoKafkaTest::repo_root();
my $dir = tempdir('tk612-XXXX', TMPDIR => 1, CLEANUP => 1);
my ($out, $err) = ('', '');
ok(IPC::Run::run([ "$root/scripts/gen-reference", '-o', "$dir/reference.md" ],
		'<', \undef, '>', \$out, '2>', \$err),
	'scripts/gen-reference runs') or diag("$out$err");

my $page = TodoKafkaTest::slurp("$dir/reference.md");
like($page, qr/^## Config keys$/m, 'the page has the config keys');
like($page, qr/^\| `todo_kafka_relay_outbox_oldest_age_seconds` \| gauge \|/m, 'the page has the metrics');
like($page, qr/^### todo_kafka\.add_task\(/m, 'the page has the SQL functions');

my $diff = '';
IPC::Run::run([ 'diff', '-u', "$root/docs/reference.md", "$dir/reference.md" ], '>', \$diff, '2>', \$err);
is($? >> 8, 0, 'docs/reference.md is up to date')
  or diag("docs/reference.md is stale: run scripts/gen-reference and commit the result.\n$diff$err");

done_testing();
