=pod

=head1 NAME

SoakLoad - the soak's users, reminder storm, change ledger and pgbench workload

=head1 DESCRIPTION

setup() gives every user (u0 .. u<N-1>) an email address and a push
subscription on the push receiver (every 50th user's endpoint, under /gone/,
answers 410), turns on email+push+in-app for new tasks for every 20th user
and all-day quiet hours for every 40th (so those get in-app only), and adds
each user's storm task: due at the storm second with one reminder at the due
time on all three channels.

The ledger: an AFTER trigger of the soak's own on todo_kafka.tasks records
every committed change (task id, operation, transaction id) in
soak.ledger.  It is the list the verification holds the topics and the
consumers' effects against, independent of the outbox; with
track_commit_timestamp, pg_xact_commit_timestamp(xid) is each change's
commit time.

The workload is pgbench (PostgreSQL's own load driver) running a custom
script through the task API as the application's login: a pool of
connections (-c) at a rate (-R), each client owning the users u with
u mod stride = its slot, so no two clients race on a task (pgbench ends a
client on its first error).  Mix: 35% add_task (a third with a due date in
10-40 s and a reminder on one or all channels, some recurring), 25%
update_task, 15% complete_task, 10% delete_task, 15% list_tasks.  A
PostgreSQL restart ends every client; run() starts pgbench again for the
time left, as an application reconnects.

=cut

package SoakLoad;

use strict;
use warnings;

use Carp;
use IPC::Run;
use Time::HiRes qw(sleep time);

sub gone_paths
{
	my ($users) = @_;
	return map { "/gone/u$_" } grep { $_ % 50 == 7 } 0 .. $users - 1;
}

sub setup
{
	my ($stack, %o) = @_;
	my $n = $o{users};
	my $sub = $stack->{rx}->subscription;
	my $origin = $stack->{rx}->push_origin;
	$stack->sql(<<SQL);
CREATE SCHEMA soak;
CREATE TABLE soak.ledger (
	seq			bigserial PRIMARY KEY,
	task_id		uuid NOT NULL,
	op			text NOT NULL,
	xid			xid8 NOT NULL DEFAULT pg_current_xact_id(),
	at			timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION soak.record() RETURNS trigger LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog AS \$\$
BEGIN
	INSERT INTO soak.ledger (task_id, op)
		VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END, TG_OP);
	RETURN NULL;
END \$\$;
CREATE TRIGGER zz_soak_ledger AFTER INSERT OR UPDATE OR DELETE ON todo_kafka.tasks
	FOR EACH ROW EXECUTE FUNCTION soak.record();
SELECT count(*) FROM generate_series(0, $n - 1) i,
	LATERAL todo_kafka.set_notification_email('u' || i, 'u' || i || '\@example.com') e,
	LATERAL todo_kafka.add_push_subscription('u' || i,
		'$origin' || CASE WHEN i % 50 = 7 THEN '/gone/u' ELSE '/u' END || i,
		'$sub->{p256dh}', '$sub->{auth}') p;
SELECT count(*) FROM generate_series(0, $n - 1) i,
	LATERAL todo_kafka.set_notification_channels('u' || i, 'task_created', '{email,push,in_app}') c
 WHERE i % 20 = 0;
SELECT count(*) FROM generate_series(0, $n - 1) i,
	LATERAL todo_kafka.set_quiet_hours('u' || i, '00:00', '23:59:59.999') q
 WHERE i % 40 = 0;
SQL
	# the storm tasks, 1,000 a transaction
	for (my $i = 0; $i < $n; $i += 1000)
	{
		my $to = $i + 999 < $n - 1 ? $i + 999 : $n - 1;
		$stack->sql("SELECT count(*) FROM generate_series($i, $to) i,
			LATERAL todo_kafka.add_task('u' || i, 'storm u' || i, 'everyone''s 9:00', 'medium',
				'{storm}', to_timestamp($o{storm_at}), 'none', '{0 seconds}',
				'{email,push,in_app}') t");
	}
}

# the pgbench script (see DESCRIPTION); variables users, stride, base
my $SCRIPT = <<'PGB';
\set slot :base + :client_id
\set u :slot + :stride * random(0, (:users - 1 - :slot) / :stride)
\set op random(1, 100)
\set r random(1, 1000000000)
\if :op <= 35
SELECT 1 FROM todo_kafka.add_task('u' || :u, 'soak u' || :u || ' ' || :r, 'soak workload',
	(ARRAY['low','medium','high'])[1 + :r % 3], CASE WHEN :r % 5 = 0 THEN '{work}' ELSE '{}' END::text[],
	CASE WHEN :r % 3 = 0 THEN now() + make_interval(secs => 10 + :r % 30) END,
	CASE WHEN :r % 6 = 0 THEN 'daily' ELSE 'none' END,
	CASE WHEN :r % 3 = 0 THEN ARRAY[make_interval(secs => :r % 5)] ELSE '{}' END::interval[],
	(ARRAY['{in_app}','{email}','{push}','{email,push,in_app}'])[1 + (:r / 7) % 4]::text[]);
\elif :op <= 60
SELECT 1 FROM (SELECT l.id FROM todo_kafka.list_tasks('u' || :u, 'pending') l
		WHERE NOT 'storm' = ANY (l.tags) ORDER BY l.created_at DESC LIMIT 1) t,
	LATERAL todo_kafka.update_task('u' || :u, t.id, p_title => 'soak u' || :u || ' upd ' || :r,
		p_priority => (ARRAY['low','medium','high'])[1 + :r % 3],
		p_due_date => CASE WHEN :r % 4 = 0 THEN now() + make_interval(secs => 10 + :r % 30) END) x;
\elif :op <= 75
SELECT 1 FROM (SELECT l.id FROM todo_kafka.list_tasks('u' || :u, 'pending') l
		WHERE NOT 'storm' = ANY (l.tags) ORDER BY l.created_at LIMIT 1) t,
	LATERAL todo_kafka.complete_task('u' || :u, t.id) x;
\elif :op <= 85
SELECT 1 FROM (SELECT l.id FROM todo_kafka.list_tasks('u' || :u, 'all') l
		WHERE NOT 'storm' = ANY (l.tags) ORDER BY l.completed DESC, l.created_at LIMIT 1) t,
	LATERAL todo_kafka.delete_task('u' || :u, t.id) x;
\else
SELECT count(*) FROM todo_kafka.list_tasks('u' || :u, 'all');
\endif
PGB

sub new
{
	my ($class, $stack, $dir, %o) = @_;
	my $f = "$dir/workload.pgbench";
	open my $fh, '>', $f or croak "$f: $!";
	print $fh $SCRIPT;
	close $fh;
	return bless { stack => $stack, dir => $dir, script => $f, o => \%o, runs => [], serial => 0 }, $class;
}

# start pgbench: clients from slot base, RATE tx/s, SECS seconds
sub start
{
	my ($self, %a) = @_;
	my $node = $self->{stack}->node;
	my $log = "$self->{dir}/pgbench." . ++$self->{serial} . '.out';
	my @cmd = ('pgbench', '-n', '-h', $node->host, '-p', $node->port, '-U', 'soak_app',
		'-f', $self->{script}, '-c', $a{clients}, '-j', 1, '-R', $a{rate}, '-T', $a{secs},
		'-D', "users=$self->{o}{users}", '-D', "stride=$self->{o}{stride}", '-D', "base=$a{base}",
		'postgres');
	my $run = { %a, log => $log, started => time,
		h => IPC::Run::start(\@cmd, '<', '/dev/null', '>', $log, '2>&1') };
	push @{ $self->{runs} }, $run;
	return $run;
}

# keep the main pgbench going until END (an epoch time); call often
sub keep_going
{
	my ($self, $run, $end) = @_;
	return $run if $run->{h}->pumpable || time > $end - 2;
	$run->{h}->finish;
	# the database may still be restarting: retry until pgbench connects
	return $self->start(%$run, secs => int($end - time));
}

sub wait_all
{
	my ($self) = @_;
	for my $r (@{ $self->{runs} })
	{
		eval { $r->{h}->finish(IPC::Run::timeout(120)); 1 } or $r->{h}->kill_kill;
	}
}

# totals over every pgbench run: processed, failed, aborted clients
sub totals
{
	my ($self) = @_;
	my %t = (processed => 0, failed => 0, aborted => 0, runs => scalar @{ $self->{runs} });
	for my $r (@{ $self->{runs} })
	{
		my $out = TodoKafkaTest::slurp($r->{log});
		$t{processed} += $1 if $out =~ /number of transactions actually processed: (\d+)/;
		$t{failed} += $1 if $out =~ /number of failed transactions: (\d+)/;
		$t{aborted}++ while $out =~ /client \d+ aborted/g;
	}
	return \%t;
}

1;
