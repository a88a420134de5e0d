=pod

=head1 NAME

OtlpReceiver - an OTLP/HTTP trace receiver (tests/otlp/receiver.js) for the tracing tests

=head1 SYNOPSIS

  use OtlpReceiver;
  my $otlp = OtlpReceiver->start;     # npm ci once, then node receiver.js
  my $url = $otlp->endpoint;          # for --otlp-endpoint
  my $spans = $otlp->spans;           # every span received, decoded
  my $errors = $otlp->errors;         # requests that did not decode
  $otlp->stop;

=head1 DESCRIPTION

The receiver decodes each request with the OpenTelemetry project's own
generated definitions (npm @opentelemetry/otlp-transformer, the version
pinned by tests/otlp/package-lock.json).  The packages are installed with
"npm ci" into $TK_OTLP_NODE_DIR, else ~/.cache/todo_kafka/otlp-node (the
work tree is made afresh on every run), once: a run finding the same lock
file installed there skips the download.  Node:
$TK_NODE, else node; npm: $TK_NPM, else npm.

=cut

package OtlpReceiver;

use strict;
use warnings;

use Carp;
use File::Copy qw(copy);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IPC::Run;
use JSON::PP;

use TodoKafkaTest;

my $node_bin = $ENV{TK_NODE} // 'node';
my $npm_bin = $ENV{TK_NPM} // 'npm';

# the receiver's directory with its node_modules; installs when needed
sub install
{
	my $src = TodoKafkaTest::repo_root() . '/tests/otlp';
	my $dir = $ENV{TK_OTLP_NODE_DIR}
	  // ($ENV{XDG_CACHE_HOME} // ($ENV{HOME} // '/tmp') . '/.cache') . '/todo_kafka/otlp-node';
	make_path($dir);
	copy("$src/$_", "$dir/$_") or croak "copy $_: $!" for qw(package.json receiver.js);
	my $lock = TodoKafkaTest::slurp("$src/package-lock.json");
	my $marker = "$dir/node_modules/.tk-installed-lock";
	unless (-f $marker && TodoKafkaTest::slurp($marker) eq $lock)
	{
		copy("$src/package-lock.json", "$dir/package-lock.json") or croak "copy lock: $!";
		my ($out, $err) = ('', '');
		IPC::Run::run([ $npm_bin, 'ci', '--ignore-scripts', '--no-audit', '--no-fund',
				'--cache', "$dir/.npm-cache", '--prefix', $dir ],
			'<', \undef, '>', \$out, '2>', \$err)
		  or croak "npm ci in $dir failed: $err$out";
		open my $fh, '>', $marker or croak "$marker: $!";
		print $fh $lock;
		close $fh;
	}
	return $dir;
}

sub start
{
	my ($class) = @_;
	my $dir = install();
	my $tmp = tempdir('tkotlp-XXXX', TMPDIR => 1, CLEANUP => 1);
	my $self = bless { dir => $tmp, out => "$tmp/spans.jsonl", json => JSON::PP->new }, $class;
	my $log = "$tmp/receiver.log";
	$self->{h} = IPC::Run::start([ $node_bin, "$dir/receiver.js", '--port-file', "$tmp/port",
			'--out', $self->{out} ],
		'<', \undef, '>>', $log, '2>>', $log);
	TodoKafkaTest::wait_until('the OTLP receiver to listen', sub { -s "$tmp/port" || !$self->{h}->pumpable },
		30, 0.05);
	croak 'the OTLP receiver did not start: ' . TodoKafkaTest::slurp($log) unless -s "$tmp/port";
	chomp($self->{port} = TodoKafkaTest::slurp("$tmp/port"));
	return $self;
}

sub endpoint { return "http://127.0.0.1:$_[0]->{port}"; }

sub _lines
{
	my ($self) = @_;
	return [] unless -f $self->{out};
	return [ map { $self->{json}->decode($_) } grep { length } split /\n/, TodoKafkaTest::slurp($self->{out}) ];
}

sub spans { return [ grep { !exists $_->{error} } @{ $_[0]->_lines } ]; }
sub errors { return [ grep { exists $_->{error} } @{ $_[0]->_lines } ]; }

sub stop
{
	my ($self) = @_;
	my $h = delete $self->{h} or return;
	local $?;
	eval { $h->signal('TERM') if $h->pumpable; $h->finish; };
}

sub DESTROY { $_[0]->stop; }

1;
