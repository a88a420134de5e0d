=pod

=head1 NAME

SystemdUnits - read todo_kafka's systemd units and check them with systemd's own tools

=head1 SYNOPSIS

  use SystemdUnits;
  my $u    = SystemdUnits::parse("deploy/systemd/todo-kafka-audit.service");
  my @v    = SystemdUnits::settings($u, 'Service', 'EnvironmentFile');
  my @argv = SystemdUnits::exec_argv($v[0], { VAR => 'value' });
  my $root = SystemdUnits::make_root({ 'usr/bin/todo-kafka-audit' => $path, ... });
  my ($ok, $out) = SystemdUnits::verify($root, 'todo-kafka-audit.service');
  my $score = SystemdUnits::exposure($root, 'todo-kafka-audit.service');
  my %env = SystemdUnits::environment_file("deploy/config/audit.env", uncomment => 1);

=head1 DESCRIPTION

systemd-analyze verify checks a unit as systemd would load it, including that
the ExecStart= programs exist; systemd-analyze security --offline rates its
sandboxing (0 best, 10 worst).  Both work on a directory tree given with
--root, so the units are checked where they would be installed
(etc/systemd/system or usr/lib/systemd/system of a scratch root holding the
programs) without installing anything on the machine.  make_root builds that
tree: the host's own units (sysinit.target and friends, which verify
resolves) and /usr/bin/kill, then the files given.

exec_argv splits a command line as systemd does for the cases our units
use: words, double quotes, ${VAR} (kept in one word) and $VAR (split into
words) from the environment given.

=cut

package SystemdUnits;

use strict;
use warnings;

use Carp;
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IPC::Run qw(run);

# { Section => [ [key, value], ... ] }
sub parse
{
	my ($path) = @_;
	open my $fh, '<', $path or croak "$path: $!";
	my (%u, $section);
	while (<$fh>)
	{
		chomp;
		next if /^\s*([#;].*)?$/;
		if (/^\[(\w+)\]$/) { $section = $1; next; }
		croak "$path:$.: not key=value: $_" unless /^(\w+)=(.*)$/;
		push @{ $u{$section} }, [ $1, $2 ];
	}
	return \%u;
}

sub settings
{
	my ($u, $section, $key) = @_;
	return map { $_->[1] } grep { $_->[0] eq $key } @{ $u->{$section} // [] };
}

sub exec_argv
{
	my ($line, $env) = @_;
	my @words;
	while ($line =~ /\G\s*("((?:[^"\\]|\\.)*)"|(\S+))/gc)
	{
		my ($quoted, $plain) = ($2, $3);
		if (defined $quoted)
		{
			$quoted =~ s/\$\{(\w+)\}/$env->{$1} \/\/ ''/ge;
			push @words, $quoted;
		}
		elsif ($plain =~ /^\$(\w+)$/)
		{
			push @words, split ' ', ($env->{$1} // '');
		}
		else
		{
			$plain =~ s/\$\{(\w+)\}/$env->{$1} \/\/ ''/ge;
			push @words, $plain;
		}
	}
	return @words;
}

# VAR=value lines (systemd.exec EnvironmentFile=); with uncomment, the
# "#VAR=value" examples of our templates count too
sub environment_file
{
	my ($path, %opt) = @_;
	my %env;
	open my $fh, '<', $path or croak "$path: $!";
	while (<$fh>)
	{
		chomp;
		s/^#// if $opt{uncomment} && /^#[A-Z_]+=/;
		next unless /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;
		my ($k, $v) = ($1, $2);
		$v =~ s/^"(.*)"$/$1/;
		$env{$k} = $v;
	}
	return %env;
}

sub make_root
{
	my ($files) = @_;
	my $root = tempdir('unitroot_XXXXXX', TMPDIR => 1, CLEANUP => 1);
	make_path("$root/usr/bin", "$root/usr/lib/systemd", "$root/etc/systemd/system");
	symlink('usr/lib', "$root/lib") or croak "symlink: $!";
	symlink('usr/bin', "$root/bin") or croak "symlink: $!";
	system('cp', '-a', '/usr/lib/systemd/system', "$root/usr/lib/systemd/") == 0
	  or croak 'cannot copy the host units';
	system('cp', '/usr/bin/kill', "$root/usr/bin/kill") == 0 or croak 'cannot copy kill';
	for my $dest (sort keys %$files)
	{
		make_path(dirname("$root/$dest"));
		system('cp', '-a', $files->{$dest}, "$root/$dest") == 0
		  or croak "cannot copy $files->{$dest}";
	}
	return $root;
}

# systemd-analyze verify of units under root; (ok, output)
sub verify
{
	my ($root, @units) = @_;
	my $out;
	run([ 'systemd-analyze', 'verify', "--root=$root", '--man=no', @units ], '>&', \$out);
	return ($? == 0 && $out !~ /\S/, $out);
}

# the overall exposure of "systemd-analyze security --offline" (0..10)
sub exposure
{
	my ($root, $unit) = @_;
	my $out;
	run([ 'systemd-analyze', 'security', '--offline=yes', "--root=$root", $unit ], '>&', \$out);
	return $out =~ /Overall exposure level for \S+: ([\d.]+)/ ? $1 : undef;
}

1;
