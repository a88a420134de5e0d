/*
 * extension/sql/05_relay_api.sql: the relay's API.  todo-kafka-relay runs
 * no SQL of its own against the extension's tables: it calls these
 * functions, EXECUTE granted to todo_kafka_relay only, so the outbox's
 * shape has one owner (this extension); the relay finds a page's columns
 * by name.
 *
 *	 relay_page(after_id, window_end, window_start, known_max_id, max_rows)
 *		one page of committed outbox rows of a snapshot window
 *	 relay_position()			the stored position, read when leading
 *	 relay_commit_position(snapshot, max_id)
 *		store a new position and TRUNCATE the partitions it settled
 *	 relay_backlog()			rows not yet published, oldest age, for /metrics
 *	 relay_dead_letter(id, topic, reason)	move a poison row to dead_letters
 *	 relay_fire_reminders(grace_s, max_rows)
 *		fire due reminders and count what fired
 *	 relay_lead()				try to become the database's relay (and LISTEN)
 *	 relay_sleeping(bool)		announce sleep (writers NOTIFY) or busy
 *
 * The advisory-lock keys and the NOTIFY channel are defined once, in
 * extension/todo_kafka.h, and used by the C functions behind relay_lead
 * and relay_sleeping and by the commit-time wake-up (todo_kafka.c).
 */

/*
 * Move a poison row (a message Kafka refused for good, guarantee 6) from
 * the outbox to dead_letters, in one statement.  False when the row is no
 * longer in the outbox.
 */
CREATE OR REPLACE FUNCTION todo_kafka.relay_dead_letter(dead_id bigint, dead_topic text, dead_reason text)
 RETURNS boolean
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
WITH d AS (DELETE FROM todo_kafka.outbox WHERE id = $1 RETURNING *),
	 i AS (INSERT INTO todo_kafka.dead_letters (outbox_id, event_id, topic, reason, row_data)
		   SELECT d.id, d.event_id, $2, $3, pg_catalog.row_to_json(d) FROM d
		   RETURNING 1)
SELECT count(*) > 0 FROM i
$function$;

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
CREATE OR REPLACE FUNCTION todo_kafka.relay_fire_reminders(grace_s integer, max_rows integer, OUT next_in_ms double precision, OUT wrote boolean, OUT sent integer, OUT sent_max_late_s double precision, OUT missed integer, OUT missed_max_late_s double precision)
 RETURNS record
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/*
 * Leadership (guarantee 5): try the session-level advisory lock
 * (TODO_KAFKA_LOCK_CLASS, TODO_KAFKA_LOCK_LEADER); on success also LISTEN
 * on the wake-up channel (effective when the calling statement commits).
 * The lock lives as long as the session, so a dead leader frees it.
 */
CREATE OR REPLACE FUNCTION todo_kafka.relay_lead()
 RETURNS boolean
 LANGUAGE c
 STRICT
AS '$libdir/todo_kafka', $function$todo_kafka_relay_lead$function$;

/*
 * The sleep announcement (the NOTIFY trap, DESIGN.md): sleeping = true
 * takes the session lock (TODO_KAFKA_LOCK_CLASS, TODO_KAFKA_LOCK_SLEEPING),
 * waiting if need be (nobody else holds it for long), and writers then
 * NOTIFY at commit; false releases it.  The relay re-reads the outbox after
 * announcing sleep, so a writer that committed just before is not missed.
 * Returns false only when releasing a lock this session did not hold.
 */
CREATE OR REPLACE FUNCTION todo_kafka.relay_sleeping(sleeping boolean)
 RETURNS boolean
 LANGUAGE c
 STRICT
AS '$libdir/todo_kafka', $function$todo_kafka_relay_sleeping$function$;

/* this cluster's identifier */
CREATE OR REPLACE FUNCTION todo_kafka.cluster_id()
 RETURNS bigint
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
	SELECT s.system_identifier FROM pg_catalog.pg_control_system() s;
$function$;

/*
 * The relay's position: every row visible in snapshot has been published
 * (or moved to dead_letters); max_id is the highest id among them, which
 * lets the next read start there (relay_page).  One row; NULL snapshot:
 * nothing published yet, every committed row is to be sent.
 *
 * Restored into another cluster (pg_dump keeps the position and the
 * outbox), the outbox's xids and the snapshot are the old cluster's:
 * meaningless here, maybe in this cluster's future (rows never visible,
 * never sent).  So the position records its cluster (system_id), and
 * relay_position(), called by a relay that starts leading, finds a foreign
 * one, gives every outbox row this transaction's xid and clears the
 * position: the whole outbox is re-sent (at least once, same ids).
 * Same-cluster restores and point-in-time recovery keep one xid history.
 */
CREATE TABLE todo_kafka.relay_position (
	singleton		boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	snapshot		pg_catalog.pg_snapshot,
	max_id			bigint NOT NULL DEFAULT 0,
	updated_at		timestamptz NOT NULL DEFAULT now(),
	system_id		bigint DEFAULT todo_kafka.cluster_id()
);
COMMENT ON COLUMN todo_kafka.relay_position.system_id IS
	'pg_control_system().system_identifier of the cluster whose xids snapshot and the outbox xids are (NULL: this one)';

INSERT INTO todo_kafka.relay_position DEFAULT VALUES;
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.relay_position', '');

/* restoring a dump: the restored row replaces the one CREATE EXTENSION inserted */
CREATE OR REPLACE FUNCTION todo_kafka.restored_relay_position()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	DELETE FROM todo_kafka.relay_position;
	RETURN NEW;
END
$function$;
CREATE TRIGGER restored_relay_position BEFORE INSERT ON todo_kafka.relay_position
	FOR EACH ROW EXECUTE FUNCTION todo_kafka.restored_relay_position();
ALTER TABLE todo_kafka.relay_position ENABLE ALWAYS TRIGGER restored_relay_position;

/*
 * relay_page: the outbox read of guarantee 2 (nothing skipped).  A window
 * is the set of rows whose transaction is visible in window_end and was not
 * visible in window_start, i.e. committed between the two snapshots; a NULL
 * window_start means "every committed row" (no position yet), a NULL
 * window_end means "the snapshot of this statement" (the call that opens a
 * window).  Within a window rows come in id order, page by page
 * (id > after_id LIMIT max_rows) with both snapshots fixed.  A transaction
 * that took id 10 and commits after the one that took id 11 is in a later
 * window, never skipped, which "id > last id" alone would do.
 *
 * Acknowledged rows stay in the outbox until their partition is truncated,
 * so a window must not be found by scanning from the lowest id: that would
 * walk every published row of the partitions on each window.  The caller
 * passes known_max_id, the highest id it has read in earlier windows (all
 * of them visible in window_start), and the window is read in two parts:
 *
 *	 late	rows with id <= known_max_id: they are in the window only if
 *			their transaction was running in window_start (its xip list)
 *			or got its xid at or after window_start's xmax, and (being
 *			visible in window_end) before window_end's xmax; both are found
 *			through the xid index, and there are few (a transaction that
 *			took an id before known_max_id was read and committed later);
 *	 new	rows with id > known_max_id, through the id index, in order.
 *
 * Every late id is below every new id, so the two parts concatenated are
 * the window in id order.  The split is only a way to find the rows: any
 * known_max_id gives the same window (0: all of it through the id index).
 * "l.id + 0" keeps the planner from reading the late part by the id index
 * (in id order, it would walk every published row to find the few late
 * ones); the bounded xid range makes the xid index its cheapest path.
 *
 * Every row carries pg_current_snapshot(): the snapshot of the calling
 * statement, which the relay keeps as window_end for the window's next
 * pages and as window_start of the next window.  The zero-row-proof join
 * (SELECT 1 LEFT JOIN LATERAL ...) makes an empty window still return one
 * row, with a NULL id, so the snapshot comes back even when there is
 * nothing to read: one round trip opens a window and reads its first page.
 *
 * Speed: LANGUAGE sql, STABLE, not STRICT, not SECURITY DEFINER and without
 * a SET clause, so the planner inlines it into the caller's query; a STABLE
 * function also runs in the caller's snapshot, which is what makes
 * pg_current_snapshot() the statement's own.  It therefore runs with the
 * caller's rights (todo_kafka_relay has SELECT on the outbox) and
 * qualifies every name instead of pinning search_path.
 *
 * occurred_at comes as RFC 3339 UTC text with microseconds, independent of
 * the session's DateStyle and TimeZone; changed as a JSON array.
 */
CREATE OR REPLACE FUNCTION todo_kafka.relay_page(after_id bigint, window_end pg_snapshot, window_start pg_snapshot, known_max_id bigint, max_rows integer)
 RETURNS TABLE(snapshot pg_snapshot, id bigint, xid xid8, event_id uuid, kind text, stream text, event_type text, source text, key text, user_id text, actor text, db_role text, correlation_id text, traceparent text, before json, after json, changed json, headers json, occurred_at text)
 LANGUAGE sql
 STABLE
AS $function$
SELECT pg_catalog.pg_current_snapshot(), p.*
  FROM (SELECT 1) AS one
  LEFT JOIN LATERAL (
	SELECT o.id, o.xid, o.event_id, o.kind, o.stream, o.event_type, o.source,
		   o.key, o.user_id, o.actor, o.db_role, o.correlation_id, o.traceparent,
		   o.before, o.after, pg_catalog.array_to_json(o.changed), o.headers,
		   pg_catalog.to_char(o.occurred_at AT TIME ZONE 'UTC',
							  'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
	  FROM ((SELECT l.* FROM todo_kafka.outbox l
			  WHERE $3 IS NOT NULL AND $1 < $4
				AND (l.xid = ANY (ARRAY(SELECT pg_catalog.pg_snapshot_xip($3)))
					 OR (l.xid >= pg_catalog.pg_snapshot_xmax($3)
						 AND l.xid < pg_catalog.pg_snapshot_xmax(
							 coalesce($2, pg_catalog.pg_current_snapshot()))))
				AND l.id + 0 > $1 AND l.id + 0 <= $4
				AND NOT pg_catalog.pg_visible_in_snapshot(l.xid, $3)
				AND ($2 IS NULL OR pg_catalog.pg_visible_in_snapshot(l.xid, $2))
			  ORDER BY l.id + 0 LIMIT $5)
			UNION ALL
			(SELECT n.* FROM todo_kafka.outbox n
			  WHERE n.id > CASE WHEN $3 IS NULL THEN $1 ELSE pg_catalog.int8larger($1, $4) END
				AND ($2 IS NULL OR pg_catalog.pg_visible_in_snapshot(n.xid, $2))
				AND ($3 IS NULL OR NOT pg_catalog.pg_visible_in_snapshot(n.xid, $3))
			  ORDER BY n.id LIMIT $5)) o
	 ORDER BY o.id
	 LIMIT $5) AS p ON true
$function$;

/*
 * The stored position, read by a relay that starts leading: NULL snapshot
 * when nothing was published yet.  When it was taken in another cluster
 * (a restore), every outbox row is given this transaction's xid and the
 * position is cleared: the whole outbox is re-sent (see relay_position
 * above).  Serialised against a concurrent call by the row lock.
 */
CREATE OR REPLACE FUNCTION todo_kafka.relay_position(OUT snapshot pg_snapshot, OUT max_id bigint)
 RETURNS record
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	v_system	bigint;
	v_rebased	bigint;
BEGIN
	SELECT p.snapshot, p.max_id, p.system_id INTO snapshot, max_id, v_system
	  FROM todo_kafka.relay_position p FOR UPDATE;
	IF v_system IS DISTINCT FROM todo_kafka.cluster_id() THEN
		UPDATE todo_kafka.outbox SET xid = pg_current_xact_id();
		GET DIAGNOSTICS v_rebased = ROW_COUNT;
		UPDATE todo_kafka.relay_position
		   SET snapshot = NULL, max_id = 0, system_id = todo_kafka.cluster_id(), updated_at = now();
		RAISE LOG 'todo_kafka: the relay position was taken in cluster %, not this one (a restore): % outbox rows will be sent again',
			v_system, v_rebased;
		snapshot := NULL;
		max_id := 0;
	END IF;
END
$function$;

/*
 * Store the relay's new position (every row visible in new_snapshot was
 * published or dead-lettered; new_max_id the highest id among them) and
 * empty the partitions it settled.  A partition is truncated when:
 *	 - it is not the one the id sequence is filling now;
 *	 - ACCESS EXCLUSIVE can be had at once (NOWAIT): a writer still inside
 *	   its transaction holds ROW EXCLUSIVE on the partition it wrote, and
 *	   any reader of the outbox holds ACCESS SHARE, so neither is waited
 *	   for, nor made to wait beyond the TRUNCATE itself; the next call
 *	   tries again;
 *	 - every committed row in it is visible in new_snapshot, i.e.
 *	   published: checked first without the lock (a scan), then, with the
 *	   lock held (no writer can be in it any more), for the rows that
 *	   first look could not see (through the xid index), so the lock that
 *	   makes the reader wait is held for that probe and the TRUNCATE only.
 * A writer that took an id of this partition but had not opened it yet
 * inserts after the TRUNCATE (it waits for the lock), so its row is kept.
 * Returns how many partitions were truncated.  The relay calls this every
 * few tens of milliseconds while its position moves.
 */
CREATE OR REPLACE FUNCTION todo_kafka.relay_commit_position(new_snapshot pg_snapshot, new_max_id bigint)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	filling		integer;
	part		text;
	has_rows	boolean;
	pending		boolean;
	seen_xmin	pg_catalog.xid8;
	truncated	integer := 0;
BEGIN
	IF new_snapshot IS NULL THEN
		RAISE EXCEPTION 'relay position snapshot must not be NULL'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	/*
	 * No need to wait for this commit's WAL flush: a position lost in a
	 * crash only makes the next relay re-send rows (at-least-once), and a
	 * lost TRUNCATE is done again.  The relay calls this on its only
	 * thread, so a flush here would be latency for every event.
	 */
	PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
	UPDATE todo_kafka.relay_position
	   SET snapshot = new_snapshot, max_id = new_max_id, updated_at = now();

	SELECT todo_kafka.outbox_slot(s.last_value) INTO filling FROM todo_kafka.outbox_id_seq s;
	FOR slot IN 0..2 LOOP
		CONTINUE WHEN slot = filling;
		part := 'todo_kafka.outbox_' || slot;
		-- without a lock: rows are there, and every one this statement sees
		-- is published (a scan of the partition, which writers and the
		-- reader do not wait for)
		EXECUTE 'SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()),'
			|| ' EXISTS (SELECT 1 FROM ' || part || '),'
			|| ' EXISTS (SELECT 1 FROM ' || part
			|| ' o WHERE NOT pg_catalog.pg_visible_in_snapshot(o.xid, $1))'
			INTO seen_xmin, has_rows, pending USING new_snapshot;
		CONTINUE WHEN NOT has_rows OR pending;
		BEGIN
			EXECUTE 'LOCK TABLE ' || part || ' IN ACCESS EXCLUSIVE MODE NOWAIT';
		EXCEPTION WHEN lock_not_available THEN
			CONTINUE;
		END;
		-- under the lock no writer is inside: what is left to check are the
		-- rows the first look could not see, all of transactions with an
		-- xid >= its xmin, found through the xid index; the lock is held
		-- for this probe and the TRUNCATE only
		EXECUTE 'SELECT EXISTS (SELECT 1 FROM ' || part
			|| ' o WHERE o.xid >= $2 AND NOT pg_catalog.pg_visible_in_snapshot(o.xid, $1))'
			INTO pending USING new_snapshot, seen_xmin;
		IF NOT pending THEN
			EXECUTE 'TRUNCATE ' || part;
			truncated := truncated + 1;
		END IF;
	END LOOP;
	RETURN truncated;
END
$function$;

/*
 * The backlog for /metrics and for tests that wait for the relay: rows not
 * yet published (not visible in the stored position; all rows while there
 * is none), and the age of the oldest of them.  Found through the xid index
 * like relay_page's late part, so a full outbox of published rows costs
 * nothing to skip.
 */
CREATE OR REPLACE FUNCTION todo_kafka.relay_backlog(OUT pending_rows bigint, OUT oldest_age_seconds double precision)
 RETURNS record
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	pos		pg_snapshot := (SELECT p.snapshot FROM todo_kafka.relay_position p);
BEGIN
	IF pos IS NULL THEN
		SELECT count(*), coalesce(extract(epoch FROM now() - min(o.occurred_at)), 0)::float8
		  INTO pending_rows, oldest_age_seconds
		  FROM todo_kafka.outbox o;
	ELSE
		SELECT count(*), coalesce(extract(epoch FROM now() - min(o.occurred_at)), 0)::float8
		  INTO pending_rows, oldest_age_seconds
		  FROM todo_kafka.outbox o
		 WHERE (o.xid = ANY (ARRAY(SELECT pg_snapshot_xip(pos)))
				OR o.xid >= pg_snapshot_xmax(pos))
		   AND NOT pg_visible_in_snapshot(o.xid, pos);
	END IF;
END
$function$;
