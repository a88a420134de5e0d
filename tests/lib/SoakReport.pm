=pod

=head1 NAME

SoakReport - the soak's measurements: latencies per effect and per stage, metrics, the report

=head1 DESCRIPTION

End to end, from a change's commit (pg_xact_commit_timestamp of its
transaction) to each consumer's effect: the audit row (recorded_at), the
read-model row (projected_at, for the task's last change), the inbox row,
the email (the sink's file mtime) and the push (the receiver's clock) of a
new task.  Per stage, so a broker stall is not mistaken for ours: commit ->
Kafka timestamp of the task event (the relay's produce call: its read and
build), Kafka timestamp -> audit row / read-model row (broker
acknowledgement, fetch and the consumer), plus the relays' own
read_delay (occurred_at -> read) and ack_delay (read -> ack) histograms
from /metrics.  Reminders: lateness = effect time - scheduled time, per
channel, for the storm second and for the steady state, and the relay's
firing lateness (fired_at - scheduled_time).

Metrics of a SIGKILLed daemon die with it: counters are compared with the
effects only for consumer groups whose processes all ran throughout.

=cut

package SoakReport;

use strict;
use warnings;

use JSON::PP;
use Test::More;

my $EPOCH = 'extract(epoch FROM %s)';

# count p50 p95 p99 max of a query's one column of seconds
sub stats
{
	my ($stack, $q) = @_;
	my $r = $stack->sql(<<SQL);
SELECT count(x), round(percentile_disc(0.5) WITHIN GROUP (ORDER BY x)::numeric, 3),
	   round(percentile_disc(0.95) WITHIN GROUP (ORDER BY x)::numeric, 3),
	   round(percentile_disc(0.99) WITHIN GROUP (ORDER BY x)::numeric, 3), round(max(x)::numeric, 3)
  FROM ($q) q(x)
SQL
	my @v = split /\|/, $r;
	return { count => $v[0] + 0, map { ($_->[0] => $v[ $_->[1] ] eq '' ? undef : $v[ $_->[1] ] + 0) }
		  ([ p50 => 1 ], [ p95 => 2 ], [ p99 => 3 ], [ max => 4 ]) };
}

sub latencies
{
	my ($stack) = @_;
	my %l;
	my $ep = sub { sprintf($EPOCH, $_[0]) };
	$l{commit_to_audit_row} = stats($stack, 'SELECT ' . $ep->('a.recorded_at - c.committed')
		  . ' FROM todo_kafka.audit_log a JOIN soak.change c ON c.xid::text::bigint = a.txid AND c.task_id::text = a.task_id');
	$l{commit_to_read_model} = stats($stack, 'SELECT ' . $ep->('v.projected_at - c.committed')
		  . ' FROM todo_kafka.task_view v JOIN LATERAL (SELECT committed FROM soak.change c WHERE c.task_id = v.id'
		  . ' ORDER BY seq DESC LIMIT 1) c ON true');
	my $created = "SELECT e.id, c.committed FROM soak.ev_task_events e JOIN soak.change c"
	  . " ON c.task_id::text = e.task_id AND c.n = e.n WHERE e.type = 'task.created'";
	$l{commit_to_inbox} = stats($stack, 'SELECT ' . $ep->('n.created_at - e.committed')
		  . " FROM ($created) e JOIN todo_kafka.notifications n ON n.notification_id = e.id || ':in_app'");
	$l{commit_to_email} = stats($stack, 'SELECT ' . $ep->('m.at - e.committed')
		  . " FROM ($created) e JOIN soak.mail m ON m.mid_left = soak.mail_left(e.id || ':email')");
	$l{commit_to_push} = stats($stack, 'SELECT ' . $ep->('p.at - e.committed')
		  . " FROM ($created) e JOIN soak.push p ON p.notification_id = e.id || ':push'");
	my $ev = "SELECT e.*, c.committed FROM soak.ev_task_events e JOIN soak.change c"
	  . ' ON c.task_id::text = e.task_id AND c.n = e.n';
	$l{stage_commit_to_kafka} = stats($stack, 'SELECT ' . $ep->('e.ts - e.committed') . " FROM ($ev) e");
	$l{stage_kafka_to_audit_row} = stats($stack, 'SELECT ' . $ep->('a.recorded_at - e.ts')
		  . " FROM ($ev) e JOIN todo_kafka.audit_log a ON a.event_id::text = e.id");
	$l{stage_kafka_to_read_model} = stats($stack, 'SELECT ' . $ep->('v.projected_at - e.ts')
		  . " FROM ($ev) e JOIN todo_kafka.task_view v ON v.kafka_topic = (SELECT topic FROM todo_kafka.topics"
		  . " WHERE stream = 'task_events') AND v.kafka_partition = e.part AND v.kafka_offset = e.off");
	return \%l;
}

sub reminders
{
	my ($stack) = @_;
	my %r;
	for my $storm ('true', 'false')
	{
		my $k = $storm eq 'true' ? 'storm' : 'steady';
		for my $ch (qw(in_app email push))
		{
			$r{$k}{$ch} = stats($stack, 'SELECT ' . sprintf($EPOCH, 'received_at - scheduled_time')
				  . " FROM soak.delivered WHERE storm = $storm AND channel = '$ch' AND received_at IS NOT NULL");
		}
		$r{$k}{fired} = stats($stack, 'SELECT ' . sprintf($EPOCH, 'r.fired_at - r.scheduled_time')
			  . " FROM todo_kafka.reminders r JOIN soak.fired f ON f.reminder_id = r.reminder_id::text WHERE f.storm = $storm");
	}
	return \%r;
}

# p50/p99 from a scraped histogram (bucket bounds) and the share within 250 ms
sub hist
{
	my ($m, $name) = @_;
	my @b = sort { $a->[0] <=> $b->[0] }
	  map { /le="([^"]+)"/ ? [ $1 eq '+Inf' ? 9e9 : $1, $m->{$_} ] : () }
	  grep { /^\Q$name\E_bucket\{/ } keys %$m;
	my $n = $m->{"${name}_count"} // 0;
	return { count => 0 } unless $n;
	my ($p50, $p99, $w250);
	for (@b)
	{
		$p50 //= $_->[0] if $_->[1] >= 0.5 * $n;
		$p99 //= $_->[0] if $_->[1] >= 0.99 * $n;
		$w250 = $_->[1] / $n if $_->[0] <= 0.25;
	}
	return { count => $n + 0, p50_le => $p50, p99_le => $p99, within_250ms => sprintf('%.3f', $w250 // 0) + 0 };
}

sub metric_sum
{
	my ($m, $re) = @_;
	my $s = 0;
	$s += $m->{$_} for grep { /$re/ } keys %$m;
	return $s;
}

# /metrics consistency; returns the per-daemon summary for the report
sub metrics_checks
{
	my ($stack, $m, $report) = @_;
	my %sum;
	my @bad = grep { $m->{$_}{_healthz} != 200 } sort keys %$m;
	ok(!@bad, 'every daemon answers /healthz with 200') or diag("not healthy: @bad");
	$report->{failures}{healthz} = scalar @bad if @bad;
	my @leaders = grep { ($m->{$_}{todo_kafka_relay_leader} // 0) == 1 } keys %$m;
	is(scalar @leaders, 1, 'exactly one relay leads') or $report->{failures}{leaders} = scalar @leaders;
	my $lag = 0;
	$lag += metric_sum($m->{$_}, qr/^todo_kafka_consumer_lag\{/) for keys %$m;
	is($lag, 0, 'consumer lag 0 everywhere') or $report->{failures}{lag} = $lag;
	# groups whose processes all ran throughout
	my %group = (audit => [qw(audit-1 audit-2)], project => ['project'],
		map { ("notify-$_" => ["notify-$_"]) } qw(fanout email realtime));
	for my $g (sort keys %group)
	{
		my @p = @{ $group{$g} };
		my $dl = 0;
		$dl += metric_sum($m->{$_}, qr/^todo_kafka_consumer_dead_lettered_total\{/) for @p;
		$sum{$g}{dead_lettered} = $dl;
		$sum{$g}{processed} = 0;
		$sum{$g}{processed} += metric_sum($m->{$_}, qr/^todo_kafka_consumer_processed_total\{/) for @p;
		next if grep { ($stack->{starts}{$_} // 0) != 1 } @p;
		my $want = $stack->sql("SELECT count(*) FROM soak.msg WHERE stream = 'dead_letter'
			AND hdr->>'dlq-consumer-group' = 'todo-chatbot-$g'");
		is($dl, $want, "$g (ran throughout): dead_lettered_total = its dead letters ($want)")
		  or $report->{failures}{"metrics $g"} = 1;
		my @streams = grep { grep { $_ eq $g } @{ $SoakStack::CONSUMED{$_} } } keys %SoakStack::CONSUMED;
		my $msgs = $stack->sql('SELECT count(DISTINCT (stream, part, off)) FROM soak.msg WHERE stream IN ('
			  . join(',', map { "'$_'" } @streams) . ')');
		# a message refused as invalid counts as dead-lettered, not processed
		cmp_ok($sum{$g}{processed} + $dl, '>=', $msgs,
			"$g (ran throughout): processed_total + dead_lettered_total cover its $msgs messages")
		  or $report->{failures}{"metrics $g"} = 1;
	}
	for my $r (grep { /^relay/ } sort keys %$m)
	{
		$sum{$r} = {
			leader => $m->{$r}{todo_kafka_relay_leader} // 0,
			published => metric_sum($m->{$r}, qr/^todo_kafka_relay_messages_published_total/),
			read_delay => hist($m->{$r}, 'todo_kafka_relay_read_delay_seconds'),
			ack_delay => hist($m->{$r}, 'todo_kafka_relay_ack_delay_seconds'),
			commit_to_ack => hist($m->{$r}, 'todo_kafka_relay_publish_latency_seconds'),
		};
	}
	return \%sum;
}

sub fmt_stats
{
	my ($s) = @_;
	return 'n=0' unless $s && $s->{count};
	return sprintf('n=%d p50 %.3f p95 %.3f p99 %.3f max %.3f s', @$s{qw(count p50 p95 p99 max)});
}

sub text
{
	my ($r) = @_;
	my @t;
	push @t, sprintf('soak: %s; %d users, %.1f min, rate %d/s, %d clients; %s',
		$r->{result}, @{ $r->{config} }{qw(users minutes rate clients)}, $r->{started});
	push @t, sprintf('operations %d (failed %d, pgbench runs %d), changes %d, events/s %.1f over %.0f s',
		@{ $r->{operations} }{qw(processed failed runs)}, $r->{changes}, $r->{events_per_s}, $r->{seconds});
	push @t, 'faults:', map { "  $_" } @{ $r->{faults} };
	push @t, 'end to end (commit -> effect):', map { sprintf('  %-26s %s', $_, fmt_stats($r->{latency}{$_})) }
	  sort keys %{ $r->{latency} };
	for my $k (qw(storm steady))
	{
		push @t, "reminder lateness, $k:", map { sprintf('  %-26s %s', $_, fmt_stats($r->{reminders}{$k}{$_})) }
		  qw(fired in_app email push);
	}
	for my $d (sort keys %{ $r->{metrics} })
	{
		my $x = $r->{metrics}{$d};
		if ($d =~ /^relay/)
		{
			push @t, sprintf('  %s leader=%d published=%d read_delay %s ack_delay %s', $d, $x->{leader},
				$x->{published}, map { $_->{count} ? "n=$_->{count} p50<=$_->{p50_le} p99<=$_->{p99_le} <=250ms $_->{within_250ms}" : 'n=0' }
				  @$x{qw(read_delay ack_delay)});
		}
		else
		{
			push @t, sprintf('  %s processed=%d dead_lettered=%d', $d, @$x{qw(processed dead_lettered)});
		}
	}
	push @t, 'topics (read live; dropped = below the broker\'s low watermark at the end, read before it was dropped):',
	  map { my $x = $r->{readers}{$_};
		sprintf('  %-14s messages %d, dropped by the broker %d (%d partitions), reader restarts %d, gaps fetched again %d, offsets refused %d',
			$_, @$x{qw(messages dropped_by_broker partitions_trimmed restarts gaps_refetched refused)}) }
	  sort keys %{ $r->{readers} // {} };
	push @t, 'duplicates on topics (same id): ' . join(', ', map { "$_ $r->{duplicates}{$_}" } sort keys %{ $r->{duplicates} });
	push @t, 'emails interrupted by the SIGKILL (at most once, not resent): ' . ($r->{interrupted} // 'n/a');
	push @t, 'lost: ' . join(', ', map { "$_ $r->{lost}{$_}" } sort keys %{ $r->{lost} });
	push @t, 'failed checks: ' . (%{ $r->{failures} } ? join(', ', map { "$_ ($r->{failures}{$_})" } sort keys %{ $r->{failures} }) : 'none');
	return join("\n", @t) . "\n";
}

sub json { return JSON::PP->new->canonical->pretty->encode($_[0]); }

1;
