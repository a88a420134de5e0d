=pod

=head1 NAME

SoakVerify - what tests/soak checks at quiescence, in SQL over what it captured

=head1 DESCRIPTION

load() copies what independent parts captured into tables of schema soak:
the topics as kcat read them live (soak.msg: one row per message, with its
Kafka timestamp and the CloudEvent id; a message read twice by a reader
started again, or a cut line, counts once or not at all: SoakReaders
proves every offset is there), the SMTP sink's messages
(soak.mail: Message-ID, recipient, receipt time = the file's mtime) and the
push receiver's requests (soak.push, with its receipt time).  The checks are
then set comparisons against soak.ledger (every committed change, see
SoakLoad) and the service tables; each returns its failures as rows, the
first ten of which are printed.

Email Message-IDs: notify writes <notify.LEFT@domain> with LEFT the first
128 bits of the SHA-256 of the notification id "<event id>:email" in hex
(the id has a colon, so it is not used as is), which soak.mail_left()
recomputes.

=cut

package SoakVerify;

use strict;
use warnings;

use JSON::PP;
use Test::More;
use Time::HiRes qw(stat);

sub load
{
	my ($stack, $dir) = @_;
	$stack->sql(<<'SQL');
CREATE TABLE soak.raw (stream text, line text);
CREATE FUNCTION soak.try_jsonb(t text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN RETURN t::jsonb; EXCEPTION WHEN others THEN RETURN NULL; END $$;
CREATE FUNCTION soak.mail_left(id text) RETURNS text LANGUAGE sql IMMUTABLE
	AS $$ SELECT left(encode(sha256(convert_to(id, 'UTF8')), 'hex'), 32) $$;

CREATE TABLE soak.mail (file text, message_id text, rcpt text, at timestamptz,
	mid_left text GENERATED ALWAYS AS (substring(message_id FROM '^notify\.([^@]+)@')) STORED);
CREATE TABLE soak.push_raw (line text);
SQL
	my $csv = q{WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')};
	for my $r (sort { $a->{file} cmp $b->{file} } $stack->{readers}->all)
	{
		next unless -s $r->{file};
		$stack->sql("CREATE TEMP TABLE l (line text); COPY l FROM '$r->{file}' $csv;
			INSERT INTO soak.raw SELECT '$r->{stream}', line FROM l WHERE line LIKE '{%'");
	}
	$stack->sql(<<'SQL');
CREATE TABLE soak.msg AS
SELECT stream, (j->>'partition')::int AS part, (j->>'offset')::bigint AS off,
	   to_timestamp((j->>'ts')::double precision / 1000) AS ts, j->>'key' AS key,
	   p AS payload, coalesce(p->>'id', '') AS id, p->>'type' AS type,
	   regexp_replace(coalesce(p->>'id', ''), ':(update:[0-9]+|audit)$', '') AS base_id,
	   (SELECT jsonb_object_agg(h.k, h.v) FROM
		  (SELECT j->'headers'->>(2 * i) k, j->'headers'->>(2 * i + 1) v
			 FROM generate_series(0, jsonb_array_length(coalesce(j->'headers', '[]')) / 2 - 1) i) h) AS hdr
  FROM (SELECT stream, soak.try_jsonb(line) AS j FROM soak.raw OFFSET 0) r,
	   LATERAL soak.try_jsonb(j->>'payload') p
 WHERE j IS NOT NULL;
-- a message read twice (a reader started again, a gap fetched again) counts once;
-- a hash join on small keys, not a sort of every message (DISTINCT ON spilled)
DELETE FROM soak.msg a USING soak.msg b
 WHERE a.stream = b.stream AND a.part = b.part AND a.off = b.off AND a.ctid > b.ctid;
DROP TABLE soak.raw;
CREATE INDEX ON soak.msg (stream, id);
CREATE INDEX ON soak.msg (stream, base_id);
ANALYZE soak.msg;
SQL
	# the mail: Message-ID and To from the headers, receipt time = mtime
	my $mdir = $stack->{rx}->dir . '/mail';
	my $tsv = "$dir/mail.tsv";
	open my $out, '>', $tsv or die "$tsv: $!";
	opendir my $dh, $mdir or die "$mdir: $!";
	for my $f (grep { /\.eml$/ } readdir $dh)
	{
		open my $fh, '<', "$mdir/$f" or next;
		my ($mid, $to) = ('', '');
		while (<$fh>)
		{
			last if /^\r?$/;
			$mid = $1 if /^Message-ID:\s*<([^>]*)>/i;
			$to = $1 if /^To:\s*(.*?)\r?$/i;
		}
		my $mtime = (stat("$mdir/$f"))[9];
		print $out "$f\t$mid\t$to\t" . sprintf('%.6f', $mtime) . "\n";
	}
	close $out;
	$stack->sql("CREATE TEMP TABLE m (f text, mid text, rcpt text, t double precision);
		COPY m FROM '$tsv'; INSERT INTO soak.mail (file, message_id, rcpt, at) SELECT f, mid, rcpt, to_timestamp(t) FROM m;
		CREATE INDEX ON soak.mail (mid_left)");
	my $pf = $stack->{rx}->dir . '/push.jsonl';
	$stack->sql("COPY soak.push_raw FROM '$pf' $csv") if -s $pf;
	$stack->sql(<<'SQL');
CREATE TABLE soak.push AS
SELECT j->>'path' AS path, (j->>'status')::int AS status, to_timestamp((j->>'t')::double precision) AS at,
	   soak.try_jsonb(j->>'payload')->>'notification_id' AS notification_id
  FROM (SELECT line::jsonb j FROM soak.push_raw) r;
CREATE INDEX ON soak.push (notification_id);
-- every change with its commit time and its n-th place among its task's changes
CREATE TABLE soak.change AS
SELECT l.*, pg_xact_commit_timestamp(l.xid::text::xid) AS committed,
	   row_number() OVER (PARTITION BY task_id ORDER BY seq) AS n
  FROM soak.ledger l;
-- the distinct events of a topic stream per task, in topic order, with the txid the audit message gives
CREATE FUNCTION soak.events(p_stream text, p_suffix text)
	RETURNS TABLE (id text, event_id text, task_id text, type text, part int, off bigint, ts timestamptz, n bigint)
	LANGUAGE sql AS $$
	SELECT e.id, e.event_id, e.key, e.type, e.part, e.off, e.ts,
		   row_number() OVER (PARTITION BY e.key ORDER BY e.part, e.off)
	  FROM (SELECT DISTINCT ON (m.id) m.id, left(m.id, length(m.id) - length(p_suffix)) AS event_id,
				   m.key, m.type, m.part, m.off, m.ts
			  FROM soak.msg m WHERE m.stream = p_stream AND m.payload IS NOT NULL
			   AND m.id LIKE '%' || p_suffix ORDER BY m.id, m.part, m.off) e $$;
CREATE TABLE soak.txid AS
SELECT DISTINCT payload->'data'->>'event_id' AS event_id, (payload->'data'->>'txid')::bigint AS txid
  FROM soak.msg WHERE stream = 'audit' AND payload IS NOT NULL;
-- materialized with indexes: joined as a function scan, 50,000 events took minutes
CREATE TABLE soak.ev_task_events AS SELECT * FROM soak.events('task_events', '');
CREATE TABLE soak.ev_audit AS SELECT * FROM soak.events('audit', ':audit');
CREATE INDEX ON soak.ev_task_events (task_id, n);
CREATE INDEX ON soak.ev_task_events (id);
CREATE INDEX ON soak.ev_audit (task_id, n);
CREATE INDEX ON soak.txid (event_id);
CREATE INDEX ON soak.change (task_id, n);
ANALYZE soak.ev_task_events; ANALYZE soak.ev_audit; ANALYZE soak.txid; ANALYZE soak.change;
SQL
}

# rows of a query; each row an array
sub rows
{
	my ($stack, $q) = @_;
	return [ map { [ split /\|/, $_, -1 ] } grep { length } split /\n/, $stack->sql($q) ];
}

# a check: the query returns failures (one per row); passes when there are none
sub none
{
	my ($stack, $name, $q, $report) = @_;
	my $r = rows($stack, "SELECT count(*) OVER (), * FROM ($q) f LIMIT 10");
	my $n = @$r ? $r->[0][0] : 0;
	$report->{failures}{$name} = $n if $n;
	ok($n == 0, $name) or diag("$n, e.g.:\n" . join("\n", map { join(' | ', @$_[1 .. $#$_]) } @$r));
	return $n;
}

# every change on a topic stream: lost, extra, order (by txid)
sub topic_checks
{
	my ($stack, $stream, $suffix, $report) = @_;
	my $q = <<SQL;
SELECT c.task_id, c.n, c.op, e.id, e.type,
	   CASE WHEN e.id IS NULL THEN 'lost' WHEN c.seq IS NULL THEN 'extra'
			WHEN x.txid IS DISTINCT FROM c.xid::text::bigint THEN 'out of order' ELSE 'wrong type' END AS why
  FROM soak.change c
  FULL JOIN soak.ev_$stream e ON e.task_id = c.task_id::text AND e.n = c.n
  LEFT JOIN soak.txid x ON x.event_id = e.event_id
 WHERE e.id IS NULL OR c.seq IS NULL OR x.txid IS DISTINCT FROM c.xid::text::bigint
	OR NOT ((c.op = 'INSERT' AND e.type IN ('task.created', 'task.recurring-created', 'audit.created', 'audit.recurring-created'))
		 OR (c.op = 'UPDATE' AND e.type IN ('task.updated', 'task.completed', 'audit.updated', 'audit.completed'))
		 OR (c.op = 'DELETE' AND e.type IN ('task.deleted', 'audit.deleted')))
SQL
	$report->{lost}{$stream} = $stack->sql("SELECT count(*) FROM ($q) f WHERE why = 'lost'");
	none($stack, "$stream: every committed change once by event id, in per-task commit order", $q, $report);
	# a consumer that keeps the highest offset (the projector) ends at a task's
	# LAST copies: a resent older event after a newer one puts it back
	none($stack, "$stream: a task's last copies in commit order too (no resent older event after a newer one)", <<SQL, $report);
SELECT key, id, first_off, last_off, prev_last FROM (
	SELECT key, id, first_off, last_off,
		   max(last_off) OVER (PARTITION BY key, part ORDER BY first_off ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_last
	  FROM (SELECT key, part, id, min(off) AS first_off, max(off) AS last_off FROM soak.msg
			 WHERE stream = '$stream' AND payload IS NOT NULL AND key <> 'soak-poison' GROUP BY key, part, id) i) w
 WHERE prev_last > last_off
SQL
	$report->{duplicates}{$stream} = $stack->sql(
		"SELECT count(*) - count(DISTINCT id) FROM soak.msg WHERE stream = '$stream' AND payload IS NOT NULL");
}

sub check_all
{
	my ($stack, $o, $report) = @_;
	topic_checks($stack, 'task_events', '', $report);
	topic_checks($stack, 'audit', ':audit', $report);
	none($stack, 'task_updates: every update has its field messages, none for other events', <<'SQL', $report);
SELECT e.id, e.type, count(u.id) FROM soak.ev_task_events e
  LEFT JOIN soak.msg u ON u.stream = 'task_updates' AND u.base_id = e.id
 GROUP BY 1, 2 HAVING (count(u.id) > 0) <> (e.type IN ('task.updated', 'task.completed'))
SQL
	$report->{duplicates}{task_updates} = $stack->sql(
		"SELECT count(*) - count(DISTINCT id) FROM soak.msg WHERE stream = 'task_updates' AND payload IS NOT NULL");
	none($stack, 'exactly one audit row per change', <<'SQL', $report);
SELECT e.event_id, a.event_id, count(a.*) FROM soak.ev_task_events e
  FULL JOIN todo_kafka.audit_log a ON a.event_id::text = e.id GROUP BY 1, 2 HAVING count(a.*) <> 1 OR e.event_id IS NULL
SQL
	none($stack, 'verify_audit(): the chains are intact',
		'SELECT chain, seq, event_id, problem FROM todo_kafka.verify_audit() WHERE NOT ok', $report);
	my $cols = 'id, user_id, title, description, completed, priority, tags, due_date, recurrence, '
	  . 'reminder_offsets, notification_methods';
	none($stack, 'the read model equals tasks', <<SQL, $report);
(SELECT 'missing or stale in task_view' AS why, $cols FROM todo_kafka.tasks
 EXCEPT ALL SELECT 'missing or stale in task_view', $cols FROM todo_kafka.task_view)
UNION ALL
(SELECT 'extra in task_view', $cols FROM todo_kafka.task_view
 EXCEPT ALL SELECT 'extra in task_view', $cols FROM todo_kafka.tasks)
SQL
	reminder_checks($stack, $o, $report);
	dead_letter_checks($stack, $o, $report);
}

sub reminder_checks
{
	my ($stack, $o, $report) = @_;
	$stack->sql(<<'SQL');
CREATE TABLE soak.fired AS
SELECT DISTINCT ON (m.id) m.id, m.payload->'data'->>'reminder_id' AS reminder_id,
	   m.payload->'data'->>'notification_method' AS channel, m.payload->'data'->>'user_id' AS user_id,
	   r.scheduled_time, r.status, 'storm' = ANY (coalesce(t.tags, '{}')) OR r.scheduled_time = (
		  SELECT min(scheduled_time) FROM todo_kafka.reminders rr JOIN todo_kafka.tasks tt ON tt.id = rr.task_id
		   WHERE 'storm' = ANY (tt.tags)) AS storm
  FROM soak.msg m JOIN todo_kafka.reminders r ON r.reminder_id::text = m.payload->'data'->>'reminder_id'
  LEFT JOIN todo_kafka.tasks t ON t.id = r.task_id
 WHERE m.stream = 'reminders' AND m.type = 'task.reminder' ORDER BY m.id;
CREATE INDEX ON soak.fired (reminder_id);
-- one row per (fired reminder, its channel): when (and how often) it reached the user
CREATE TABLE soak.delivered AS
SELECT f.*, d.status AS delivery_status, d.target,
	   CASE f.channel
		 WHEN 'in_app' THEN (SELECT count(*) FROM todo_kafka.notifications n WHERE n.notification_id = f.id || ':in_app')
		 WHEN 'email' THEN (SELECT count(*) FROM soak.mail m WHERE m.mid_left = soak.mail_left(f.id || ':email'))
		 ELSE (SELECT count(*) FROM soak.push p WHERE p.notification_id = f.id || ':push') END AS received,
	   CASE f.channel
		 WHEN 'in_app' THEN (SELECT min(created_at) FROM todo_kafka.notifications n WHERE n.notification_id = f.id || ':in_app')
		 WHEN 'email' THEN (SELECT min(at) FROM soak.mail m WHERE m.mid_left = soak.mail_left(f.id || ':email'))
		 ELSE (SELECT min(at) FROM soak.push p WHERE p.notification_id = f.id || ':push') END AS received_at
  FROM soak.fired f
  LEFT JOIN todo_kafka.notification_deliveries d ON d.notification_id = f.id || ':' || f.channel;
SQL
	none($stack, 'every due reminder fired', <<'SQL', $report);
SELECT reminder_id, scheduled_time, status FROM todo_kafka.reminders
 WHERE (status = 'scheduled' AND scheduled_time < now() - interval '5 s') OR status = 'missed'
SQL
	none($stack, 'every sent reminder is on the reminders topic', <<'SQL', $report);
SELECT r.reminder_id FROM todo_kafka.reminders r WHERE r.status = 'sent'
   AND NOT EXISTS (SELECT 1 FROM soak.fired f WHERE f.reminder_id = r.reminder_id::text)
SQL
	$report->{interrupted} = $stack->sql(
		"SELECT count(*) FROM soak.delivered WHERE received = 0 AND delivery_status = 'interrupted'");
	none($stack, 'every fired reminder reached its channel exactly once (410 endpoints: refused once)', <<'SQL', $report);
SELECT id, channel, user_id, delivery_status, received FROM soak.delivered
 WHERE NOT (received = 1 OR (received = 0 AND delivery_status = 'interrupted')
			OR (channel = 'push' AND delivery_status = 'gone'))
SQL
	none($stack, 'no reminder delivered before its time',
		'SELECT id, channel, scheduled_time, received_at FROM soak.delivered WHERE received_at < scheduled_time', $report);
	none($stack, 'every 410 push subscription removed',
		q{SELECT endpoint FROM todo_kafka.push_subscriptions WHERE endpoint LIKE '%/gone/%'}, $report);
	none($stack, 'new-task notifications: in-app for all, email and push unless quiet', <<'SQL', $report);
SELECT e.id, e.task_id, w.ch, w.want, w.got FROM soak.ev_task_events e
  CROSS JOIN LATERAL (SELECT substr((SELECT payload->'data'->>'user_id' FROM soak.msg WHERE stream = 'task_events' AND id = e.id LIMIT 1), 2)::int AS u) us
  CROSS JOIN LATERAL (VALUES
	('in_app', 1, (SELECT count(*) FROM todo_kafka.notifications n WHERE n.notification_id = e.id || ':in_app')),
	('email', CASE WHEN us.u % 20 = 0 AND us.u % 40 <> 0 THEN 1 ELSE 0 END,
		(SELECT count(*) FROM soak.mail m WHERE m.mid_left = soak.mail_left(e.id || ':email'))),
	('push', CASE WHEN us.u % 20 = 0 AND us.u % 40 <> 0 THEN 1 ELSE 0 END,
		(SELECT count(*) FROM soak.push p WHERE p.notification_id = e.id || ':push'))) w(ch, want, got)
 WHERE e.type = 'task.created' AND w.want <> w.got
SQL
}

sub dead_letter_checks
{
	my ($stack, $o, $report) = @_;
	# one dead letter per (consumed stream, group that reads it)
	my $expect = join(' UNION ALL ', map {
		my $stream = $_;
		map { "SELECT '$stream'::text AS stream, 'todo-chatbot-$_'::text AS grp" } @{ $SoakStack::CONSUMED{$stream} }
	} sort keys %SoakStack::CONSUMED);
	# a dead letter is at least once (the offset is stored after it): one
	# repeated after an outage carries the same id and origin; counted
	$report->{duplicates}{dead_letter} = rows($stack, <<'SQL')->[0][0];
SELECT count(*) - count(DISTINCT (id, hdr->>'dlq-consumer-group')) FROM soak.msg WHERE stream = 'dead_letter'
SQL
	none($stack, 'dead letters: the poison, once per consuming group (repeats with the same id), with origin headers', <<SQL, $report);
WITH poison AS (SELECT stream, part, off FROM soak.msg WHERE key = 'soak-poison' AND stream <> 'dead_letter'),
want AS (SELECT p.stream, p.part, p.off, w.grp FROM ($expect) w JOIN poison p USING (stream)),
got AS (SELECT DISTINCT d.id, d.hdr->>'dlq-origin-topic' AS topic, (d.hdr->>'dlq-origin-partition')::int AS part,
			   (d.hdr->>'dlq-origin-offset')::bigint AS off, d.hdr->>'dlq-consumer-group' AS grp
		  FROM soak.msg d WHERE d.stream = 'dead_letter'),
want_t AS (SELECT t.topic, w.part, w.off, w.grp FROM want w JOIN todo_kafka.topics t ON t.stream = w.stream)
SELECT 'missing' AS why, * FROM (SELECT * FROM want_t EXCEPT ALL SELECT topic, part, off, grp FROM got) a
UNION ALL SELECT 'unexpected', * FROM (SELECT topic, part, off, grp FROM got EXCEPT ALL SELECT * FROM want_t) b
SQL
}

1;
