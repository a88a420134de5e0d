=pod

=head1 NAME

SoakReaders - tests/soak's live topic readers, and the proof that they read every offset

=head1 DESCRIPTION

The devbroker (librdkafka 2.0.2's mock cluster) keeps at most 5 MiB or
100,000 batches per partition and drops the oldest beyond that; the limits
are fixed in the mock's partition setup and no API changes them.  A long
soak writes far more than that, so every topic partition is read LIVE, from
offset 0, by kcat (an independent client) into one JSON line per message.

The readers are made so that nothing is skipped without a failure saying so:
- kcat -E: a reader does not exit when every broker is down, it reconnects;
- auto.offset.reset=error: a reader asked for an offset the broker dropped
  exits with "Offset out of range" instead of jumping silently to the end;
- one that exits anyway is started again at the offset after the last
  complete line of its file (a cut last line is closed first);
- drain() waits as long as the readers make progress (not a fixed time);
- coverage() proves, per partition, that the file holds every offset from 0
  to the high watermark: a gap the broker still has is fetched again; a gap
  it has dropped fails as "trimmed by the broker: low watermark N > 0".

Offsets are contiguous here (no transactions, so no control records).

=cut

package SoakReaders;

use strict;
use warnings;

use IPC::Run;
use Time::HiRes qw(sleep time);

sub new
{
	my ($class, %opt) = @_;    # kafka, topic (stream => topic), dir, streams, partitions
	my $self = bless { %opt, r => {} }, $class;
	for my $stream (@{ $opt{streams} })
	{
		for my $p (0 .. $opt{partitions} - 1)
		{
			$self->{r}{"$stream:$p"} = { stream => $stream, part => $p,
				file => "$opt{dir}/topic.$stream.$p.jsonl", next => 'beginning', restarts => 0 };
		}
	}
	return $self;
}

sub all { return values %{ $_[0]->{r} }; }

sub kcat_base
{
	my ($self, $r) = @_;
	return ('kcat', '-b', $self->{kafka}->bootstrap, '-C', '-J', '-q', '-X', 'topic.auto.offset.reset=error',
		'-t', $self->{topic}{ $r->{stream} }, '-p', $r->{part});
}

sub start
{
	my ($self) = @_;
	$self->start_one($_) for $self->all;
}

sub start_one
{
	my ($self, $r) = @_;
	$r->{started} = time;
	$r->{err_at} = -s "$r->{file}.err" // 0;
	$r->{h} = IPC::Run::start([ $self->kcat_base($r), '-E', '-u', '-o', $r->{next} ],
		'<', '/dev/null', '>>', $r->{file}, '2>>', "$r->{file}.err");
}

# a complete kcat -J line (a reader killed mid-write leaves a cut one)
sub complete { return $_[0] =~ /^\{.*\}\r?\n?$/ && $_[0] =~ /"offset":(\d+)/ ? $1 : undef; }

# the offset after the last complete line of a reader's file, or undef
sub next_offset
{
	my ($r) = @_;
	open my $fh, '<', $r->{file} or return undef;
	my $size = -s $fh;
	seek($fh, $size > 262144 ? $size - 262144 : 0, 0);
	my $last;
	while (my $l = <$fh>)
	{
		my $o = complete($l);
		$last = $o if defined $o;
	}
	return defined $last ? $last + 1 : undef;
}

# close a cut last line, so that what is appended starts a line of its own
sub close_line
{
	my ($file) = @_;
	open my $fh, '+<', $file or return;
	my $size = -s $fh;
	return unless $size;
	seek($fh, $size - 1, 0);
	read($fh, my $c, 1);
	print $fh "\n" if $c ne "\n";
	close $fh;
}

# start again every reader that exited; one the broker refused an offset
# (dropped) goes on from the beginning: coverage() reports the gap
sub poll
{
	my ($self) = @_;
	for my $r ($self->all)
	{
		next if !$r->{h} || $r->{h}->pumpable || time - $r->{started} < 1;
		$r->{h}->finish;
		close_line($r->{file});
		$r->{next} = next_offset($r) // 'beginning';
		if (open my $e, '<', "$r->{file}.err")
		{
			seek($e, $r->{err_at}, 0);
			local $/;
			if ((<$e> // '') =~ /Offset out of range/)
			{
				$r->{out_of_range}++;
				$r->{next} = 'beginning';
			}
		}
		$r->{restarts}++;
		$self->start_one($r);
	}
}

# high (end) offset of every partition of a stream: [part] => offset
sub high_marks
{
	my ($self, $stream) = @_;
	my $t = $self->{topic}{$stream};
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'kcat', '-b', $self->{kafka}->bootstrap, '-Q',
			map { ('-t', "$t:$_:-1") } 0 .. $self->{partitions} - 1 ],
		'<', '/dev/null', '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	my %h;
	$h{$1} = $2 while $out =~ /\[(\d+)\]\s+offset\s+(-?\d+)/g;
	return \%h;
}

# the first offset the broker still has (its low watermark), or undef if none
sub low_mark
{
	my ($self, $r) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'kcat', '-b', $self->{kafka}->bootstrap, '-C', '-q', '-e', '-c', '1', '-f', '%o\n',
			'-t', $self->{topic}{ $r->{stream} }, '-p', $r->{part}, '-o', 'beginning' ],
		'<', '/dev/null', '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	return $out =~ /^(\d+)/ ? $1 : undef;
}

# wait while the readers make progress, until each is at its partition's
# end; gives up after $stall seconds without progress.  Returns
# {stream => "read to X of Y"} for those short of the end.
sub drain
{
	my ($self, $stall) = @_;
	my ($last, $since, %left) = (-1, time);
	my %streams = map { ($_->{stream} => 1) } $self->all;
	while (1)
	{
		$self->poll;
		%left = ();
		my $pos = 0;
		for my $stream (sort keys %streams)
		{
			my $hi = $self->high_marks($stream);
			my ($got, $end) = (0, 0);
			for my $r (grep { $_->{stream} eq $stream } $self->all)
			{
				my $n = next_offset($r) // 0;
				$got += $n;
				$end += $hi->{ $r->{part} } // 1e18;
				$pos += $n;
			}
			$left{$stream} = "read to $got of $end" if $got < $end;
		}
		last unless %left;
		($last, $since) = ($pos, time) if $pos != $last;
		last if time - $since > $stall;
		sleep(0.5);
	}
	$_->{h}->kill_kill(grace => 1) for grep { $_->{h} && $_->{h}->pumpable } $self->all;
	close_line($_->{file}) for $self->all;
	return \%left;
}

# every offset from 0 to the high watermark in each reader's file; gaps the
# broker still has are fetched again (appended).  Returns a list of problems.
sub coverage
{
	my ($self) = @_;
	my @bad;
	my %hi = map { ($_ => $self->high_marks($_)) } keys %{ { map { ($_->{stream} => 1) } $self->all } };
	for my $r (sort { $a->{file} cmp $b->{file} } $self->all)
	{
		my $end = $hi{ $r->{stream} }{ $r->{part} };
		if (!defined $end || $end < 0)
		{
			push @bad, "$r->{stream} [$r->{part}]: no high watermark from the broker";
			next;
		}
		my $low = $self->low_mark($r) // $end;
		@$r{qw(low high)} = ($low, $end);
		my @gaps = gaps($r->{file}, $end);
		$r->{refetched} = scalar @gaps;
		next unless @gaps;
		for my $g (@gaps)
		{
			my ($x, $y) = @$g;
			if ($x < $low)
			{
				push @bad, sprintf('%s [%d]: trimmed by the broker: low watermark %d > 0; the reader never read '
					  . 'offsets %d..%d (%d messages; high watermark %d, reader restarts %d, refused offsets %d)',
					$r->{stream}, $r->{part}, $low, $x, $y, $y - $x + 1, $end, $r->{restarts}, $r->{out_of_range} // 0);
				$x = $low;
				next if $x > $y;
			}
			$self->fetch($r, $x, $y - $x + 1);
		}
		my @still = grep { $_->[0] >= $low } gaps($r->{file}, $end);
		push @bad, "$r->{stream} [$r->{part}]: offsets $_->[0]..$_->[1] still missing after fetching them again"
		  for @still;
	}
	return @bad;
}

# per stream: messages, what the broker has dropped by now (low watermarks),
# reader restarts, gaps fetched again, offsets refused (dropped) on a restart
sub summary
{
	my ($self) = @_;
	my %s;
	for my $r ($self->all)
	{
		my $x = $s{ $r->{stream} } //= { messages => 0, dropped_by_broker => 0, restarts => 0, gaps_refetched => 0,
			refused => 0, partitions_trimmed => 0 };
		$x->{messages} += $r->{high} // 0;
		$x->{dropped_by_broker} += $r->{low} // 0;
		$x->{partitions_trimmed}++ if $r->{low};
		$x->{restarts} += $r->{restarts};
		$x->{gaps_refetched} += $r->{refetched} // 0;
		$x->{refused} += $r->{out_of_range} // 0;
	}
	return \%s;
}

sub fetch
{
	my ($self, $r, $from, $count) = @_;
	IPC::Run::run([ $self->kcat_base($r), '-e', '-o', $from, '-c', $count ],
		'<', '/dev/null', '>>', $r->{file}, '2>>', "$r->{file}.err", IPC::Run::timeout(300));
	close_line($r->{file});
}

# the ranges [a, b] of offsets below $end missing from a file (a bit vector)
sub gaps
{
	my ($file, $end) = @_;
	my $seen = '';
	if (open my $fh, '<', $file)
	{
		while (my $l = <$fh>)
		{
			my $o = complete($l);
			vec($seen, $o, 1) = 1 if defined $o && $o < $end;
		}
	}
	my (@g, $start);
	for my $o (0 .. $end - 1)
	{
		if (!vec($seen, $o, 1)) { $start //= $o; next; }
		push @g, [ $start, $o - 1 ] if defined $start;
		undef $start;
	}
	push @g, [ $start, $end - 1 ] if defined $start;
	return @g;
}

sub files
{
	my ($self, $stream) = @_;
	return map { $_->{file} } grep { $_->{stream} eq $stream } $self->all;
}

sub kill_all
{
	my ($self) = @_;
	for my $r ($self->all)
	{
		eval { $r->{h}->kill_kill(grace => 1) if $r->{h} && $r->{h}->pumpable };
	}
}

1;
