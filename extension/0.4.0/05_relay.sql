
/* ---------------------------------------------------------------------------
 * The relay's API.  todo-kafka-relay runs no SQL of its own against the
 * extension's tables: it calls these functions, EXECUTE granted to
 * todo_kafka_relay only.  The outbox's shape therefore has one owner (this
 * extension); the relay finds the page's columns by name.
 *
 *	 relay_page(after_id, window_end, window_start, max_rows)
 *		one page of committed outbox rows of a snapshot window
 *	 relay_ack(ids)				delete rows Kafka acknowledged
 *	 relay_dead_letter(id, topic, reason)
 *		move a poison row to dead_letters
 *	 relay_backlog()			id span and oldest age, for /metrics
 *	 relay_fire_reminders(grace_s, max_rows)
 *		fire due reminders and count what fired
 *	 relay_lead()				try to become the database's relay (and LISTEN)
 *	 relay_sleeping(bool)		announce sleep (writers NOTIFY) or busy
 *
 * The advisory-lock keys and the NOTIFY channel are defined once, in
 * extension/todo_kafka.h, and used by the C functions behind relay_lead
 * and relay_sleeping and by the commit-time wake-up (todo_kafka.c).
 * ------------------------------------------------------------------------- */

/*
 * relay_page: the outbox read of guarantee 2 (nothing skipped).  A window
 * is the set of rows whose transaction is visible in window_end and was not
 * visible in window_start, i.e. committed between the two snapshots; a NULL
 * window_start means "every committed row" (after a (re)connect), a NULL
 * window_end means "the snapshot of this statement" (the call that opens a
 * window).  Within a window rows come in id order, page by page
 * (id > after_id LIMIT max_rows) with both snapshots fixed.  A transaction
 * that took id 10 and commits after the one that took id 11 is in a later
 * window, never skipped, which "id > last id" alone would do.
 *
 * Every row carries pg_current_snapshot(): the snapshot of the calling
 * statement, which the relay keeps as window_end for the window's next
 * pages and as window_start of the next window.  The zero-row-proof join
 * (SELECT 1 LEFT JOIN LATERAL ...) makes an empty window still return one
 * row, with a NULL id, so the snapshot comes back even when there is
 * nothing to read: one round trip opens a window and reads its first page.
 *
 * Speed: LANGUAGE sql, STABLE, not STRICT, not SECURITY DEFINER and without
 * a SET clause, so the planner inlines it into the caller's query (a plain
 * SELECT on the outbox's primary key, as fast as the literal query it
 * replaces); a STABLE function also runs in the caller's snapshot, which is
 * what makes pg_current_snapshot() the statement's own.  It therefore runs
 * with the caller's rights (todo_kafka_relay has SELECT on the outbox) and
 * qualifies every name instead of pinning search_path.
 *
 * occurred_at comes as RFC 3339 UTC text with microseconds, independent of
 * the session's DateStyle and TimeZone; changed as a JSON array.
 */
CREATE FUNCTION todo_kafka.relay_page(after_id bigint,
									  window_end pg_catalog.pg_snapshot,
									  window_start pg_catalog.pg_snapshot,
									  max_rows integer)
	RETURNS TABLE (snapshot pg_catalog.pg_snapshot, id bigint, xid pg_catalog.xid8,
				   event_id uuid, kind text, stream text, event_type text,
				   source text, key text, user_id text, actor text, db_role text,
				   correlation_id text, traceparent text, before json, after json,
				   changed json, headers json, occurred_at text)
	LANGUAGE sql STABLE
AS $$
SELECT pg_catalog.pg_current_snapshot(), p.*
  FROM (SELECT 1) AS one
  LEFT JOIN LATERAL (
	SELECT o.id, o.xid, o.event_id, o.kind, o.stream, o.event_type, o.source,
		   o.key, o.user_id, o.actor, o.db_role, o.correlation_id, o.traceparent,
		   o.before, o.after, pg_catalog.array_to_json(o.changed), o.headers,
		   pg_catalog.to_char(o.occurred_at AT TIME ZONE 'UTC',
							  'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
	  FROM todo_kafka.outbox o
	 WHERE o.id > $1
	   AND ($2 IS NULL OR pg_catalog.pg_visible_in_snapshot(o.xid, $2))
	   AND ($3 IS NULL OR NOT pg_catalog.pg_visible_in_snapshot(o.xid, $3))
	 ORDER BY o.id
	 LIMIT $4) AS p ON true
$$;

/* delete rows whose every message Kafka acknowledged; returns how many */
CREATE FUNCTION todo_kafka.relay_ack(ids bigint[])
	RETURNS bigint LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
WITH d AS (DELETE FROM todo_kafka.outbox WHERE id = ANY ($1) RETURNING 1)
SELECT count(*) FROM d
$$;

/*
 * Move a poison row (a message Kafka refused for good, guarantee 6) from
 * the outbox to dead_letters, in one statement.  False when the row is no
 * longer in the outbox.
 */
CREATE FUNCTION todo_kafka.relay_dead_letter(dead_id bigint, dead_topic text,
											 dead_reason text)
	RETURNS boolean LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
WITH d AS (DELETE FROM todo_kafka.outbox WHERE id = $1 RETURNING *),
	 i AS (INSERT INTO todo_kafka.dead_letters (outbox_id, event_id, topic, reason, row_data)
		   SELECT d.id, d.event_id, $2, $3, pg_catalog.row_to_json(d) FROM d
		   RETURNING 1)
SELECT count(*) > 0 FROM i
$$;

/*
 * The backlog for /metrics: the id span still in the outbox (an upper bound
 * on the rows waiting) and the age of the oldest row, both from the primary
 * key index.  A count(*) would scan the whole heap, which after a burst is
 * mostly empty pages, and stall the relay every few seconds.
 */
CREATE FUNCTION todo_kafka.relay_backlog(OUT id_span bigint,
										 OUT oldest_age_seconds double precision)
	LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
SELECT coalesce((SELECT max(id) FROM todo_kafka.outbox)
				- (SELECT min(id) FROM todo_kafka.outbox) + 1, 0),
	   coalesce(extract(epoch FROM now() -
						(SELECT occurred_at FROM todo_kafka.outbox ORDER BY id LIMIT 1)), 0)::float8
$$;

/*
 * Fire due reminders (fire_due_reminders: each due reminder is marked sent,
 * or missed when later than its time + grace, and its event written to the
 * outbox, in this one transaction) and report, in the same call:
 *	 next_in_ms		milliseconds from the server's clock to the next pending
 *					reminder (NULL: none), so the relay's clock does not matter
 *	 wrote			the transaction has an xid: it fired or locked something
 *	 sent, missed	the reminder events it wrote, and the largest lateness
 *					(fire time minus scheduled time) of each kind
 * The count reads only ids above the outbox's highest id visible before the
 * call (an index range scan over the newest rows): rows this transaction
 * writes get later ids than any row visible before it.
 */
CREATE FUNCTION todo_kafka.relay_fire_reminders(grace_s integer, max_rows integer,
												OUT next_in_ms double precision,
												OUT wrote boolean,
												OUT sent integer,
												OUT sent_max_late_s double precision,
												OUT missed integer,
												OUT missed_max_late_s double precision)
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	max_before	bigint;
	next_at		timestamptz;
	my_xid		xid8;
BEGIN
	SELECT coalesce(max(o.id), 0) INTO max_before FROM todo_kafka.outbox o;
	next_at := todo_kafka.fire_due_reminders(grace_s * interval '1 second', max_rows);
	next_in_ms := ceil(extract(epoch FROM next_at - clock_timestamp()) * 1000)::float8;
	my_xid := pg_current_xact_id_if_assigned();
	wrote := my_xid IS NOT NULL;
	sent := 0;
	missed := 0;
	IF wrote THEN
		SELECT count(*) FILTER (WHERE o.event_type = 'sent'),
			   max(extract(epoch FROM o.occurred_at - (o.after->>'scheduled_time')::timestamptz))
				   FILTER (WHERE o.event_type = 'sent'),
			   count(*) FILTER (WHERE o.event_type = 'missed'),
			   max(extract(epoch FROM o.occurred_at - (o.after->>'scheduled_time')::timestamptz))
				   FILTER (WHERE o.event_type = 'missed')
		  INTO sent, sent_max_late_s, missed, missed_max_late_s
		  FROM todo_kafka.outbox o
		 WHERE o.id > max_before AND o.xid = my_xid
		   AND o.kind = 'reminder' AND o.event_type IN ('sent', 'missed');
	END IF;
END
$$;

/*
 * Leadership (guarantee 5): try the session-level advisory lock
 * (TODO_KAFKA_LOCK_CLASS, TODO_KAFKA_LOCK_LEADER); on success also LISTEN
 * on the wake-up channel (effective when the calling statement commits).
 * The lock lives as long as the session, so a dead leader frees it.
 */
CREATE FUNCTION todo_kafka.relay_lead()
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'todo_kafka_relay_lead' LANGUAGE C VOLATILE STRICT;

/*
 * The sleep announcement (the NOTIFY trap, DESIGN.md): sleeping = true
 * takes the session lock (TODO_KAFKA_LOCK_CLASS, TODO_KAFKA_LOCK_SLEEPING),
 * waiting if need be (nobody else holds it for long), and writers then
 * NOTIFY at commit; false releases it.  The relay re-reads the outbox after
 * announcing sleep, so a writer that committed just before is not missed.
 * Returns false only when releasing a lock this session did not hold.
 */
CREATE FUNCTION todo_kafka.relay_sleeping(sleeping boolean)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'todo_kafka_relay_sleeping' LANGUAGE C VOLATILE STRICT;

/* functions are created with EXECUTE for PUBLIC: take it back, as 0.1.0 did */
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA todo_kafka FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	todo_kafka.relay_page(bigint, pg_catalog.pg_snapshot, pg_catalog.pg_snapshot, integer),
	todo_kafka.relay_ack(bigint[]),
	todo_kafka.relay_dead_letter(bigint, text, text),
	todo_kafka.relay_backlog(),
	todo_kafka.relay_fire_reminders(integer, integer),
	todo_kafka.relay_lead(),
	todo_kafka.relay_sleeping(boolean)
	TO todo_kafka_relay;
