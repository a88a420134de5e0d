/*
 * todo_kafka 0.4.0 -> 0.5.0: the rotating outbox (issue 11).
 *
 * This upgrade script is assembled by the Makefile from the files of
 * extension/0.5.0/ in name order (one concern per file), into
 * extension/todo_kafka--0.4.0--0.5.0.sql.  Once 0.5.0 is released the
 * assembled script is committed and this folder removed, as 0.4.0's was.
 */
\echo Use "ALTER EXTENSION todo_kafka UPDATE TO '0.5.0'" to load this file. \quit

/* ---------------------------------------------------------------------------
 * The rotating outbox (PgQ's design).  Up to 0.4.0 the relay DELETEd each
 * row once Kafka acknowledged it, and the outbox's size was whatever
 * autovacuum let pile up between two visits: ~130 MB at 2,000 changes/s
 * with the default autovacuum_naptime of 60 s (bench/RESULTS.md).  Now no
 * row is ever deleted or vacuumed:
 *
 *	 - todo_kafka.outbox is a partitioned table with three partitions,
 *	   outbox_0 .. outbox_2, chosen by the row id: rows of ids
 *	   [k * 4096, (k + 1) * 4096) go to outbox_(k % 3).  Writers fill one
 *	   partition, then the next, round the ring.  The C writer
 *	   (extension/outbox.c) inserts into the partition directly, with the
 *	   same constants (TODO_KAFKA_OUTBOX_CHUNK, TODO_KAFKA_OUTBOX_SLOTS in
 *	   todo_kafka.h; sql/outbox_rotation.sql checks the two agree);
 *	 - the relay keeps a position instead of deleting: the snapshot of the
 *	   newest window whose every row (and every row before it) Kafka
 *	   acknowledged, in todo_kafka.relay_position;
 *	 - a partition all of whose rows are visible in that position (so all
 *	   were published) and which no writer is using is emptied with
 *	   TRUNCATE (relay_commit_position(), 20_relay_position.sql).
 *
 * The outbox then holds about two chunks (the one being written and the
 * one being published): a few MB, whatever autovacuum does.  A relay that
 * is down or behind keeps every partition that holds unpublished rows, so
 * the outbox grows with the backlog and nothing is lost.
 *
 * Ids come from todo_kafka.outbox_id_seq through outbox_next_id(), which
 * gives the transaction its xid before it takes the id (the relay's
 * window read does not depend on that order, but it keeps ids and xids
 * of one transaction in the order readers expect).  Rows written by 0.4.0
 * are moved over with their ids; the relay re-sends them (at-least-once,
 * same message ids) because no position exists yet.
 * ------------------------------------------------------------------------- */

CREATE FUNCTION todo_kafka.outbox_next_id()
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'todo_kafka_outbox_next_id' LANGUAGE C VOLATILE;

/* the partition (0, 1 or 2) of an outbox id, by the module's constants */
CREATE FUNCTION todo_kafka.outbox_slot(bigint)
	RETURNS integer
	AS 'MODULE_PATHNAME', 'todo_kafka_outbox_slot' LANGUAGE C IMMUTABLE STRICT;

ALTER TABLE todo_kafka.outbox RENAME TO outbox_0_4;
ALTER TABLE todo_kafka.outbox_0_4 RENAME CONSTRAINT outbox_pkey TO outbox_0_4_pkey;
ALTER TABLE todo_kafka.outbox_0_4 RENAME CONSTRAINT outbox_kind_check TO outbox_0_4_kind_check;
ALTER SEQUENCE todo_kafka.outbox_id_seq RENAME TO outbox_0_4_id_seq;

CREATE SEQUENCE todo_kafka.outbox_id_seq;

CREATE TABLE todo_kafka.outbox (
	id				bigint NOT NULL DEFAULT todo_kafka.outbox_next_id(),
	xid				xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
	event_id		uuid NOT NULL,
	kind			text NOT NULL CHECK (kind IN ('change', 'custom', 'reminder')),
	stream			text NOT NULL,
	event_type		text NOT NULL,
	source			text NOT NULL,
	key				text NOT NULL,
	user_id			text,
	actor			text NOT NULL,
	correlation_id	text NOT NULL,
	traceparent		text,
	before			json,
	after			json,
	changed			text[],
	headers			json,
	occurred_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	db_role			text
) PARTITION BY LIST (((id / 4096) % 3));

COMMENT ON TABLE todo_kafka.outbox IS
	'One row per captured change or published event; partitions are emptied by TRUNCATE once published (relay_commit_position)';
COMMENT ON COLUMN todo_kafka.outbox.before IS
	'row before the change as json: the whole row for DELETE; for UPDATE only the changed columns (the others equal "after"); NULL for INSERT';
COMMENT ON COLUMN todo_kafka.outbox.after IS
	'row after the change as json (NULL for DELETE); the data of custom and reminder events';
COMMENT ON COLUMN todo_kafka.outbox.db_role IS
	'session_user when the row was written: the database role that made the change (NULL for rows written before 0.3.0)';

/*
 * The partitions.  Per partition: a unique index on id (the relay pages
 * by id) and an index on xid (the relay finds late committers by xid).
 * Autovacuum is off: rows are never updated or deleted (a poison row moved
 * to dead_letters aside) and the partition is truncated after use.
 */
CREATE TABLE todo_kafka.outbox_0 PARTITION OF todo_kafka.outbox FOR VALUES IN (0);
CREATE TABLE todo_kafka.outbox_1 PARTITION OF todo_kafka.outbox FOR VALUES IN (1);
CREATE TABLE todo_kafka.outbox_2 PARTITION OF todo_kafka.outbox FOR VALUES IN (2);
CREATE UNIQUE INDEX outbox_0_id ON todo_kafka.outbox_0 (id);
CREATE UNIQUE INDEX outbox_1_id ON todo_kafka.outbox_1 (id);
CREATE UNIQUE INDEX outbox_2_id ON todo_kafka.outbox_2 (id);
CREATE INDEX outbox_0_xid ON todo_kafka.outbox_0 (xid);
CREATE INDEX outbox_1_xid ON todo_kafka.outbox_1 (xid);
CREATE INDEX outbox_2_xid ON todo_kafka.outbox_2 (xid);
ALTER TABLE todo_kafka.outbox_0 SET (autovacuum_enabled = false);
ALTER TABLE todo_kafka.outbox_1 SET (autovacuum_enabled = false);
ALTER TABLE todo_kafka.outbox_2 SET (autovacuum_enabled = false);

INSERT INTO todo_kafka.outbox (id, xid, event_id, kind, stream, event_type, source, key,
							   user_id, actor, correlation_id, traceparent, before, after,
							   changed, headers, occurred_at, db_role)
SELECT id, xid, event_id, kind, stream, event_type, source, key, user_id, actor,
	   correlation_id, traceparent, before, after, changed, headers, occurred_at, db_role
  FROM todo_kafka.outbox_0_4;
SELECT pg_catalog.setval('todo_kafka.outbox_id_seq',
						 coalesce((SELECT max(id) FROM todo_kafka.outbox_0_4), 0) + 1, false);
DROP TABLE todo_kafka.outbox_0_4;

/* the relay reads (it no longer deletes: acked rows go with their partition) */
GRANT SELECT ON todo_kafka.outbox TO todo_kafka_relay;

/*
 * The relay's position: every row visible in snapshot has been published
 * (or moved to dead_letters); max_id is the highest id among them, which
 * lets the next read start there (relay_page).  One row; NULL snapshot:
 * nothing published yet, every committed row is to be sent.
 */
CREATE TABLE todo_kafka.relay_position (
	singleton		boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	snapshot		pg_catalog.pg_snapshot,
	max_id			bigint NOT NULL DEFAULT 0,
	updated_at		timestamptz NOT NULL DEFAULT now()
);
INSERT INTO todo_kafka.relay_position DEFAULT VALUES;

/* ---------------------------------------------------------------------------
 * The relay's API over the rotating outbox (10_outbox_rotation.sql):
 *
 *	 relay_page(after_id, window_end, window_start, known_max_id, max_rows)
 *		one page of committed outbox rows of a snapshot window
 *	 relay_position()			the stored position, read when leading
 *	 relay_commit_position(snapshot, max_id)
 *		store a new position and TRUNCATE the partitions it settled
 *	 relay_backlog()			rows not yet published, oldest age
 *
 * relay_ack() is gone: acknowledged rows are no longer deleted one by one.
 * relay_dead_letter(), relay_fire_reminders(), relay_lead() and
 * relay_sleeping() are unchanged (they work on the partitioned outbox).
 * ------------------------------------------------------------------------- */

DROP FUNCTION todo_kafka.relay_page(bigint, pg_catalog.pg_snapshot, pg_catalog.pg_snapshot, integer);
DROP FUNCTION todo_kafka.relay_ack(bigint[]);
DROP FUNCTION todo_kafka.relay_backlog();

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
CREATE FUNCTION todo_kafka.relay_page(after_id bigint,
									  window_end pg_catalog.pg_snapshot,
									  window_start pg_catalog.pg_snapshot,
									  known_max_id bigint,
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
$$;

/* the stored position: NULL snapshot when nothing was published yet */
CREATE FUNCTION todo_kafka.relay_position(OUT snapshot pg_catalog.pg_snapshot,
										  OUT max_id bigint)
	LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
SELECT p.snapshot, p.max_id FROM todo_kafka.relay_position p
$$;

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
CREATE FUNCTION todo_kafka.relay_commit_position(new_snapshot pg_catalog.pg_snapshot,
												 new_max_id bigint)
	RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

/*
 * The backlog for /metrics and for tests that wait for the relay: rows not
 * yet published (not visible in the stored position; all rows while there
 * is none), and the age of the oldest of them.  Found through the xid index
 * like relay_page's late part, so a full outbox of published rows costs
 * nothing to skip.
 */
CREATE FUNCTION todo_kafka.relay_backlog(OUT pending_rows bigint,
										 OUT oldest_age_seconds double precision)
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA todo_kafka FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	todo_kafka.relay_page(bigint, pg_catalog.pg_snapshot, pg_catalog.pg_snapshot, bigint, integer),
	todo_kafka.relay_position(),
	todo_kafka.relay_commit_position(pg_catalog.pg_snapshot, bigint),
	todo_kafka.relay_backlog()
	TO todo_kafka_relay;

/* ---------------------------------------------------------------------------
 * One role per service, and an audit retention no service can shorten
 * (issue 16).
 *
 * Up to 0.4.0 the audit, notify and project services all logged in as a
 * member of todo_kafka_consumer, which could call every service's
 * functions: the notifier (the daemon that talks to outside servers) could
 * append audit entries or purge_audit('0') the whole trail.  Now each
 * service has a role with only the functions its C code calls
 * (consumers/<service>/, plus the runtime's topic_of()):
 *
 *	 todo_kafka_audit_writer	audit_append, purge_audit (the service purges
 *								by itself, retention_days), verify_audit
 *								(verify_interval_s), topic_of
 *	 todo_kafka_notifier		notification_plan, notification_targets,
 *								delivery_claim/_done/_retry, deliver_in_app,
 *								push_subscription_gone,
 *								purge_notification_deliveries, topic_of
 *	 todo_kafka_projector		project_apply, project_offsets,
 *								project_snapshot, project_prune_snapshots,
 *								project_snapshots, project_restore,
 *								project_reset, topic_of; SELECT task_view
 *	 todo_kafka_operator		(0.4.0, the dlq tool) and now purge_audit,
 *								audit_retention
 *	 todo_kafka_auditor			(0.1.0) and now SELECT audit_purges,
 *								audit_retention
 *
 * todo_kafka_consumer is kept for existing installs as a deprecated union:
 * it has no grants of its own any more, only membership of the three
 * service roles, so a login that is a member keeps working (and keeps
 * every service's rights: give each service its own login, README Roles).
 *
 * The retention floor.  purge_audit() refuses a period shorter than
 * todo_kafka.audit_retention (default 90 days, the specification's), a
 * PGC_SUSET setting of the module: only a superuser (or a role granted SET
 * on it) can change it, in postgresql.conf, ALTER SYSTEM, ALTER DATABASE/
 * ROLE ... SET or a session; 0 removes the floor.  It is read through
 * audit_retention(), a C function, never current_setting(): calling it
 * loads the module, which drops any placeholder value a non-superuser SET
 * before the module was loaded, and reads the module's own variable.
 * purge_audit() without an argument (or NULL) purges at the retention.
 *
 * Each purge that removes entries is recorded in todo_kafka.audit_purges
 * (who: session_user, which SET ROLE does not change; when; the period and
 * cutoff; the floor in force; how many; each chain's new anchor), in the
 * purge's own transaction, append-only like the audit log; the auditor
 * reads it.  A refused purge leaves nothing but the server log's ERROR.
 * ------------------------------------------------------------------------- */

DO $roles$
DECLARE
	r	text;
BEGIN
	FOREACH r IN ARRAY ARRAY['todo_kafka_audit_writer', 'todo_kafka_notifier', 'todo_kafka_projector']
	LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
			EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
END
$roles$;

GRANT USAGE ON SCHEMA todo_kafka
	TO todo_kafka_audit_writer, todo_kafka_notifier, todo_kafka_projector;

/* the retention floor: the module's superuser-only setting, as an interval */
CREATE FUNCTION todo_kafka.audit_retention()
	RETURNS interval
	AS 'MODULE_PATHNAME', 'todo_kafka_audit_retention' LANGUAGE C STABLE STRICT;

/* ---------------------------------------------------------------------------
 * The purge record
 * ------------------------------------------------------------------------- */
CREATE TABLE todo_kafka.audit_purges (
	id					bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	purged_at			timestamptz NOT NULL,	/* the purge's transaction time */
	purged_by			text NOT NULL,			/* session_user: the login */
	older_than			interval NOT NULL,		/* the period asked for */
	cutoff				timestamptz NOT NULL,	/* entries recorded before it went */
	retention			interval NOT NULL,		/* todo_kafka.audit_retention then */
	entries				bigint NOT NULL CHECK (entries > 0),
	anchors				jsonb NOT NULL			/* [{chain, anchor_seq, anchor_hash, entries}] */
);
COMMENT ON TABLE todo_kafka.audit_purges IS
	'every purge_audit() that removed audit entries: who, when, how many, and the anchor it left per chain';
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.audit_purges', '');

CREATE FUNCTION todo_kafka.audit_purges_append_only()
	RETURNS pg_catalog.trigger LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'todo_kafka.audit_purges is append-only: % is not allowed', TG_OP
		USING ERRCODE = 'insufficient_privilege',
			  HINT = 'Rows are added by todo_kafka.purge_audit() only.';
END
$$;
CREATE TRIGGER audit_purges_append_only BEFORE UPDATE OR DELETE ON todo_kafka.audit_purges
	FOR EACH ROW EXECUTE FUNCTION todo_kafka.audit_purges_append_only();
CREATE TRIGGER audit_purges_no_truncate BEFORE TRUNCATE ON todo_kafka.audit_purges
	FOR EACH STATEMENT EXECUTE FUNCTION todo_kafka.audit_purges_append_only();
ALTER TABLE todo_kafka.audit_purges ENABLE ALWAYS TRIGGER audit_purges_append_only;
ALTER TABLE todo_kafka.audit_purges ENABLE ALWAYS TRIGGER audit_purges_no_truncate;

/*
 * purge_audit(): as in 0.3.0 (a prefix of each chain, anchored), but never
 * below the retention floor, and recorded.  NULL (the default) means the
 * configured retention.
 */
DROP FUNCTION todo_kafka.purge_audit(interval);
CREATE FUNCTION todo_kafka.purge_audit(p_older_than interval DEFAULT NULL)
	RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_floor		interval := todo_kafka.audit_retention();
	v_period	interval := coalesce(p_older_than, v_floor);
	v_cutoff	timestamptz;
	v_chain		integer;
	v_keep		bigint;
	v_last_seq	bigint;
	v_last_hash	bytea;
	v_count		bigint;
	v_total		bigint := 0;
	v_anchors	jsonb := '[]';
BEGIN
	IF v_period < interval '0' THEN
		RAISE EXCEPTION 'invalid retention period: %', v_period
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a positive interval, e.g. ''90 days''.';
	END IF;
	IF v_period < v_floor THEN
		RAISE EXCEPTION 'audit entries are kept at least %: a purge of entries older than % is refused',
				v_floor, v_period
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a period of at least the retention (or none: purge_audit() uses it). '
					  'The retention is the setting todo_kafka.audit_retention, which only a superuser can change.';
	END IF;
	v_cutoff := now() - v_period;
	PERFORM set_config('todo_kafka.audit_purge', 'on', true);
	FOR v_chain IN SELECT c.chain FROM todo_kafka.audit_chains c ORDER BY c.chain FOR UPDATE
	LOOP
		SELECT a.seq INTO v_keep FROM todo_kafka.audit_log a
		 WHERE a.chain = v_chain AND a.recorded_at >= v_cutoff
		 ORDER BY a.seq LIMIT 1;
		IF v_keep IS NULL THEN
			SELECT a.seq, a.hash INTO v_last_seq, v_last_hash FROM todo_kafka.audit_log a
			 WHERE a.chain = v_chain ORDER BY a.seq DESC LIMIT 1;
		ELSE
			SELECT a.seq, a.hash INTO v_last_seq, v_last_hash FROM todo_kafka.audit_log a
			 WHERE a.chain = v_chain AND a.seq < v_keep ORDER BY a.seq DESC LIMIT 1;
		END IF;
		CONTINUE WHEN v_last_seq IS NULL;
		DELETE FROM todo_kafka.audit_log a WHERE a.chain = v_chain AND a.seq <= v_last_seq;
		GET DIAGNOSTICS v_count = ROW_COUNT;
		v_total := v_total + v_count;
		UPDATE todo_kafka.audit_chains c SET anchor_seq = v_last_seq, anchor_hash = v_last_hash
		 WHERE c.chain = v_chain;
		v_anchors := v_anchors || jsonb_build_object('chain', v_chain, 'anchor_seq', v_last_seq,
													 'anchor_hash', encode(v_last_hash, 'hex'),
													 'entries', v_count);
	END LOOP;
	PERFORM set_config('todo_kafka.audit_purge', 'off', true);
	IF v_total > 0 THEN
		INSERT INTO todo_kafka.audit_purges
			(purged_at, purged_by, older_than, cutoff, retention, entries, anchors)
		VALUES (now(), session_user, v_period, v_cutoff, v_floor, v_total, v_anchors);
	END IF;
	RETURN v_total;
END
$$;

/* ---------------------------------------------------------------------------
 * Privileges
 * ------------------------------------------------------------------------- */
REVOKE ALL ON todo_kafka.audit_purges FROM PUBLIC;
REVOKE ALL ON FUNCTION
	todo_kafka.audit_retention(),
	todo_kafka.audit_purges_append_only(),
	todo_kafka.purge_audit(interval)
	FROM PUBLIC;

/* the deprecated union loses every grant of its own (schema USAGE aside) ... */
DO $revoke$
DECLARE
	obj		text;
BEGIN
	FOR obj IN
		SELECT DISTINCT 'FUNCTION ' || p.oid::regprocedure FROM pg_catalog.pg_proc p,
			   pg_catalog.aclexplode(p.proacl) a
		 WHERE p.pronamespace = 'todo_kafka'::regnamespace AND a.grantee = 'todo_kafka_consumer'::regrole
		UNION
		SELECT DISTINCT 'TABLE ' || c.oid::regclass FROM pg_catalog.pg_class c,
			   pg_catalog.aclexplode(c.relacl) a
		 WHERE c.relnamespace = 'todo_kafka'::regnamespace AND a.grantee = 'todo_kafka_consumer'::regrole
	LOOP
		EXECUTE 'REVOKE ALL ON ' || obj || ' FROM todo_kafka_consumer';
	END LOOP;
END
$revoke$;

/* ... each service's role gets its own ... */
GRANT EXECUTE ON FUNCTION
	todo_kafka.topic_of(text),
	todo_kafka.audit_append(jsonb),
	todo_kafka.purge_audit(interval),
	todo_kafka.verify_audit()
	TO todo_kafka_audit_writer;

GRANT EXECUTE ON FUNCTION
	todo_kafka.topic_of(text),
	todo_kafka.notification_plan(text, text, text[], uuid, text, timestamptz, boolean, timestamptz),
	todo_kafka.notification_targets(text, text),
	todo_kafka.delivery_claim(text, text, text, text, boolean),
	todo_kafka.delivery_done(text, text, text, text, text, text),
	todo_kafka.delivery_retry(text, text, text, text),
	todo_kafka.deliver_in_app(text, text, text, uuid, text, text),
	todo_kafka.push_subscription_gone(text),
	todo_kafka.purge_notification_deliveries(interval)
	TO todo_kafka_notifier;

GRANT EXECUTE ON FUNCTION
	todo_kafka.topic_of(text),
	todo_kafka.project_apply(text, jsonb),
	todo_kafka.project_offsets(text),
	todo_kafka.project_snapshot(integer),
	todo_kafka.project_prune_snapshots(integer),
	todo_kafka.project_snapshots(),
	todo_kafka.project_restore(bigint),
	todo_kafka.project_reset()
	TO todo_kafka_projector;
GRANT SELECT ON todo_kafka.task_view TO todo_kafka_projector;

/* purging the audit trail is also an operator's action; reading its record, the auditor's */
GRANT EXECUTE ON FUNCTION todo_kafka.purge_audit(interval) TO todo_kafka_operator;
GRANT SELECT ON todo_kafka.audit_purges TO todo_kafka_auditor;
GRANT EXECUTE ON FUNCTION todo_kafka.audit_retention() TO todo_kafka_operator, todo_kafka_auditor;

/* ... and the union is their sum (quietly, when a former install made it so) */
DO $union$
DECLARE
	r	text;
BEGIN
	FOREACH r IN ARRAY ARRAY['todo_kafka_audit_writer', 'todo_kafka_notifier', 'todo_kafka_projector']
	LOOP
		IF NOT pg_catalog.pg_has_role('todo_kafka_consumer', r, 'MEMBER') THEN
			EXECUTE pg_catalog.format('GRANT %I TO todo_kafka_consumer', r);
		END IF;
	END LOOP;
END
$union$;
/* ---------------------------------------------------------------------------
 * The delivery log says when a notification was dead-lettered (issue 16).
 *
 * A send that failed on its last attempt, or was refused for good, sent the
 * notification to the dead-letter topic; its row used to stay 'retry' (or
 * say 'failed'), as if it would still be tried.  todo-kafka-notify now
 * records it with delivery_done(..., 'dead_lettered', detail), a final
 * status for the service.  Replaying the dead letter (todo-kafka-dlq) is an
 * operator's request to try again: delivery_claim() claims a
 * 'dead_lettered' row as it does a 'retry' one.  'failed' stays valid for
 * rows written before (and by a service binary older than this version),
 * and is still skipped by a claim.
 * ------------------------------------------------------------------------- */

ALTER TABLE todo_kafka.notification_deliveries
	DROP CONSTRAINT notification_deliveries_status_check;
ALTER TABLE todo_kafka.notification_deliveries
	ADD CONSTRAINT notification_deliveries_status_check
	CHECK (status IN ('sending', 'retry', 'delivered', 'gone', 'failed', 'interrupted',
					  'dead_lettered'));

/*
 * Claim one send (see 0.3.0--0.4.0).  Returns
 *	 'claimed'		send it now, then delivery_done() or delivery_retry()
 *	 'delivered', 'gone', 'failed'	done before: skip
 *	 'interrupted'	an earlier attempt died mid-send: skip (at most once),
 *					unless p_take_over
 * A row in 'retry' or 'dead_lettered' (a replayed dead letter) is claimed.
 */
CREATE OR REPLACE FUNCTION todo_kafka.delivery_claim(p_notification_id text, p_channel text,
													 p_target text, p_user_id text,
													 p_take_over boolean DEFAULT false)
	RETURNS text LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_status	text;
BEGIN
	INSERT INTO todo_kafka.notification_deliveries (notification_id, channel, target, user_id, status)
		VALUES (p_notification_id, p_channel, p_target, p_user_id, 'sending')
		ON CONFLICT DO NOTHING;
	IF FOUND THEN
		RETURN 'claimed';
	END IF;
	SELECT d.status INTO v_status FROM todo_kafka.notification_deliveries d
	 WHERE d.notification_id = p_notification_id AND d.channel = p_channel AND d.target = p_target
	   FOR UPDATE;
	IF v_status IN ('retry', 'dead_lettered') OR
		(v_status IN ('sending', 'interrupted') AND p_take_over) THEN
		UPDATE todo_kafka.notification_deliveries d
		   SET status = 'sending', attempts = d.attempts + 1, claimed_at = clock_timestamp()
		 WHERE d.notification_id = p_notification_id AND d.channel = p_channel
		   AND d.target = p_target;
		RETURN 'claimed';
	END IF;
	IF v_status = 'sending' THEN
		UPDATE todo_kafka.notification_deliveries d
		   SET status = 'interrupted', finished_at = clock_timestamp(),
			   detail = 'an earlier attempt was interrupted before its outcome was recorded; not sent again'
		 WHERE d.notification_id = p_notification_id AND d.channel = p_channel
		   AND d.target = p_target;
		RETURN 'interrupted';
	END IF;
	RETURN v_status;
END
$$;

/*
 * The outcome of a claimed send: delivered, gone (404/410), dead_lettered
 * (refused for good, or failed on its last attempt: the notification went
 * to the dead-letter topic) or failed (what older services wrote for a
 * refusal).
 */
CREATE OR REPLACE FUNCTION todo_kafka.delivery_done(p_notification_id text, p_channel text,
													p_target text, p_user_id text,
													p_status text, p_detail text DEFAULT NULL)
	RETURNS void LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF p_status IS NULL OR p_status NOT IN ('delivered', 'gone', 'dead_lettered', 'failed') THEN
		RAISE EXCEPTION 'invalid delivery outcome: "%"', p_status
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'An outcome is delivered, gone or dead_lettered.';
	END IF;
	INSERT INTO todo_kafka.notification_deliveries AS d
			(notification_id, channel, target, user_id, status, detail, finished_at)
		VALUES (p_notification_id, p_channel, p_target, p_user_id, p_status, p_detail,
				clock_timestamp())
		ON CONFLICT (notification_id, channel, target) DO UPDATE
			SET status = EXCLUDED.status, detail = EXCLUDED.detail,
				finished_at = EXCLUDED.finished_at;
END
$$;

/* ---------------------------------------------------------------------------
 * Push endpoints and gateways only on the operator's hosts (issue 19).
 *
 * A subscription's endpoint comes from the user's browser through the
 * chatbot, so whoever holds a chat session chooses it, and the notify
 * service POSTs to it from inside the operator's network.  So the host of
 * every endpoint must be on todo_kafka.push_allowed_hosts (default: the
 * public browser push services) and of every gateway URL on
 * todo_kafka.push_gateway_allowed_hosts (default: none).  Both are
 * superuser-only settings of the module (extension/push_allowlist.c, where
 * the list syntax is described; ALTER DATABASE ... SET to change them).
 * todo-kafka-notify checks again before each send, with its own settings
 * of the same names, and never connects to an internal address whatever
 * the lists say (common/net_guard.h).
 *
 *	 push_host_allowed(host, gateway)	  C: is host on the list
 *	 notify_check_push_host(url, gateway) the check with its error (22023)
 *	 notify_check_url(url, what)		  0.4.0's URL checks, then the above
 * ------------------------------------------------------------------------- */

CREATE FUNCTION todo_kafka.push_host_allowed(p_host text, p_gateway boolean)
	RETURNS boolean LANGUAGE C STRICT STABLE
	AS 'MODULE_PATHNAME', 'todo_kafka_push_host_allowed';

/* p_url passed notify_check_url_syntax(): scheme://authority[/...], no userinfo */
CREATE FUNCTION todo_kafka.notify_check_push_host(p_url text, p_gateway boolean)
	RETURNS void LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_authority	text := lower(substring(p_url from '^[A-Za-z]+://([^/?#]+)'));
	v_host		text := substring(v_authority from '^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(:[0-9]*)?$');
BEGIN
	IF v_host IS NULL OR NOT todo_kafka.push_host_allowed(v_host, p_gateway) THEN
		IF p_gateway THEN
			RAISE EXCEPTION 'push gateway host "%" is not allowed', coalesce(v_host, v_authority)
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Push gateways must be on a host listed in todo_kafka.push_gateway_allowed_hosts '
							 '(empty by default); a superuser sets it with ALTER DATABASE ... SET.';
		END IF;
		RAISE EXCEPTION 'push endpoint host "%" is not allowed', coalesce(v_host, v_authority)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Web Push endpoints must be on a host listed in todo_kafka.push_allowed_hosts '
						 '(by default the public browser push services); a superuser changes it with ALTER DATABASE ... SET.';
	END IF;
END
$$;

/*
 * notify_check_url(), which add_push_subscription() ('push endpoint') and
 * set_push_gateway() ('push gateway') call, gains the host check: 0.4.0's
 * function keeps its URL syntax checks under a new name and the new one
 * calls both, so neither caller is redefined.
 */
ALTER FUNCTION todo_kafka.notify_check_url(text, text) RENAME TO notify_check_url_syntax;

CREATE FUNCTION todo_kafka.notify_check_url(p_url text, p_what text)
	RETURNS text LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v	text := todo_kafka.notify_check_url_syntax(p_url, p_what);
BEGIN
	PERFORM todo_kafka.notify_check_push_host(v, p_what = 'push gateway');
	RETURN v;
END
$$;

REVOKE ALL ON FUNCTION
	todo_kafka.push_host_allowed(text, boolean),
	todo_kafka.notify_check_push_host(text, boolean),
	todo_kafka.notify_check_url(text, text)
	FROM PUBLIC;

/* ---------------------------------------------------------------------------
 * Backup and restore (issue 20).  pg_dump skips the data of an extension's
 * member tables unless they are marked with pg_extension_config_dump();
 * up to 0.4.0 only the audit log was, so a dump lost every task.  Now every
 * table holding data and the sequences behind them are marked
 * (sql/dump_config.sql checks the catalog, so a new table cannot be
 * forgotten).  The outbox's data is in its partitions, each marked.
 * topics: only rows that differ from topic_defaults() (added or changed by
 * the user) are dumped; on restore, CREATE EXTENSION has inserted the
 * built-in rows already, and the trigger restored_topic lets an inserted
 * row replace the unchanged built-in row of its stream, as
 * restored_relay_position does for the relay's one-row position (both
 * ENABLE ALWAYS: a restore runs with session_replication_role = replica,
 * so that the capture triggers do not fire for restored tasks; README).
 *
 * Restored into another cluster, the outbox's xids and the relay's
 * position snapshot are the old cluster's: meaningless here, maybe in this
 * cluster's future (rows never visible, never sent).  The position records
 * its cluster (system_id); relay_position(), called by a relay that starts
 * leading, finds a foreign one, gives every outbox row this transaction's
 * xid and clears the position: the whole outbox is re-sent (at least once,
 * same ids).  Same-cluster restores and point-in-time recovery keep one
 * xid history: nothing to do.
 *
 * The audit service keeps its offsets per consumer group in audit_offsets,
 * written by audit_consume() in the transaction of its rows, as the
 * projector does: a restored database resumes from its own position, not
 * from the group's committed offsets, which are ahead of it.  A group with
 * no offsets stored (new, or upgraded from 0.4.0) starts at its committed
 * offsets, as before.
 * ------------------------------------------------------------------------- */

/* ---- the built-in topics, and restoring changed ones ---- */

/* the built-in rows of todo_kafka.topics, as CREATE EXTENSION inserts them */
CREATE FUNCTION todo_kafka.topic_defaults()
	RETURNS SETOF todo_kafka.topics LANGUAGE sql IMMUTABLE
AS $$
	SELECT * FROM (VALUES
		('task_events',   'todo.task.events',   3, 1, 604800000::bigint,  'task lifecycle events (created, updated, completed, deleted, recurring-created)'),
		('task_updates',  'todo.task.updates',  3, 1, 2592000000::bigint, 'one message per changed field or tag'),
		('audit',         'todo.audit.log',     3, 1, 7776000000::bigint, 'audit records with actor, before and after state'),
		('reminders',     'todo.reminders',     3, 1, 604800000::bigint,  'reminder events (scheduled, sent, missed, cancelled)'),
		('notifications', 'todo.notifications', 3, 1, 604800000::bigint,  'queued notifications, one per channel'),
		('dead_letter',   'todo.dead.letter',   3, 1, 604800000::bigint,  'messages that could not be published or processed')
	) AS d(stream, topic, partitions, replication_factor, retention_ms, description);
$$;

/* an inserted row replaces the unchanged built-in row of its stream */
CREATE FUNCTION todo_kafka.restored_topic()
	RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM todo_kafka.topics t
	 WHERE t.stream = NEW.stream
	   AND t IN (SELECT d FROM todo_kafka.topic_defaults() d);
	RETURN NEW;
END
$$;
CREATE TRIGGER restored_topic BEFORE INSERT ON todo_kafka.topics
	FOR EACH ROW EXECUTE FUNCTION todo_kafka.restored_topic();
ALTER TABLE todo_kafka.topics ENABLE ALWAYS TRIGGER restored_topic;

/* ---- the relay's position: restored, and rebased in another cluster ---- */

ALTER TABLE todo_kafka.relay_position ADD COLUMN system_id bigint;
COMMENT ON COLUMN todo_kafka.relay_position.system_id IS
	'pg_control_system().system_identifier of the cluster whose xids snapshot and the outbox xids are (NULL: this one)';

/* the restored row replaces the one CREATE EXTENSION inserted */
CREATE FUNCTION todo_kafka.restored_relay_position()
	RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM todo_kafka.relay_position;
	RETURN NEW;
END
$$;
CREATE TRIGGER restored_relay_position BEFORE INSERT ON todo_kafka.relay_position
	FOR EACH ROW EXECUTE FUNCTION todo_kafka.restored_relay_position();
ALTER TABLE todo_kafka.relay_position ENABLE ALWAYS TRIGGER restored_relay_position;

/* this cluster's identifier */
CREATE FUNCTION todo_kafka.cluster_id()
	RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT s.system_identifier FROM pg_catalog.pg_control_system() s;
$$;

UPDATE todo_kafka.relay_position SET system_id = todo_kafka.cluster_id();
ALTER TABLE todo_kafka.relay_position
	ALTER COLUMN system_id SET DEFAULT todo_kafka.cluster_id();

/*
 * The stored position, read by a relay that starts leading.  When it was
 * taken in another cluster (a restore), every outbox row is given this
 * transaction's xid and the position is cleared: the whole outbox is
 * re-sent (see the header).  Serialised against a concurrent call by the
 * row lock.
 */
CREATE OR REPLACE FUNCTION todo_kafka.relay_position(OUT snapshot pg_catalog.pg_snapshot,
													 OUT max_id bigint)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

/* ---- the audit service's offsets, kept with its rows ---- */

CREATE TABLE todo_kafka.audit_offsets (
	consumer_group		text NOT NULL,
	topic				text NOT NULL,
	kafka_partition		integer NOT NULL CHECK (kafka_partition >= 0),
	next_offset			bigint NOT NULL CHECK (next_offset >= 0),
	updated_at			timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	PRIMARY KEY (consumer_group, topic, kafka_partition)
);
COMMENT ON TABLE todo_kafka.audit_offsets IS
	'next Kafka offset of each audit topic partition per consumer group, committed with the audit_log rows (audit_consume)';

/*
 * Append a batch (audit_append) and store the partitions' next offsets for
 * consumer group p_group, in one transaction.  Records below a partition's
 * stored offset were handled already and are left out.  Otherwise the
 * same argument and result as audit_append.
 */
CREATE FUNCTION todo_kafka.audit_consume(p_group text, p_records jsonb)
	RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_fresh		jsonb;
	v_added		integer;
BEGIN
	IF p_group IS NULL THEN
		RAISE EXCEPTION 'the consumer group must not be NULL'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF jsonb_typeof(p_records) IS DISTINCT FROM 'array' THEN
		RETURN todo_kafka.audit_append(p_records);	/* its error */
	END IF;
	/* lock the batch's partitions (created when new), lowest first */
	INSERT INTO todo_kafka.audit_offsets (consumer_group, topic, kafka_partition, next_offset)
	SELECT DISTINCT p_group, e->>'topic', (e->>'partition')::integer, 0
	  FROM jsonb_array_elements(p_records) e
	 WHERE jsonb_typeof(e->'topic') = 'string' AND jsonb_typeof(e->'partition') = 'number'
	 ORDER BY 2, 3
	ON CONFLICT (consumer_group, topic, kafka_partition) DO NOTHING;
	PERFORM 1 FROM todo_kafka.audit_offsets o
	  WHERE o.consumer_group = p_group
		AND (o.topic, o.kafka_partition) IN
			(SELECT e->>'topic', (e->>'partition')::integer FROM jsonb_array_elements(p_records) e
			  WHERE jsonb_typeof(e->'topic') = 'string' AND jsonb_typeof(e->'partition') = 'number')
	  ORDER BY o.topic, o.kafka_partition FOR UPDATE;

	SELECT coalesce(jsonb_agg(e.rec ORDER BY e.n), '[]') INTO v_fresh
	  FROM jsonb_array_elements(p_records) WITH ORDINALITY AS e(rec, n)
	  LEFT JOIN todo_kafka.audit_offsets o
		ON jsonb_typeof(e.rec->'partition') = 'number' AND jsonb_typeof(e.rec->'offset') = 'number'
	   AND o.consumer_group = p_group AND o.topic = e.rec->>'topic'
	   AND o.kafka_partition = (e.rec->>'partition')::integer
	 WHERE o.topic IS NULL OR (e.rec->>'offset')::bigint >= o.next_offset;

	v_added := todo_kafka.audit_append(v_fresh);	/* validates, or raises */
	UPDATE todo_kafka.audit_offsets o
	   SET next_offset = greatest(o.next_offset, s.last + 1), updated_at = clock_timestamp()
	  FROM (SELECT e->>'topic' AS topic, (e->>'partition')::integer AS kafka_partition,
				   max((e->>'offset')::bigint) AS last
			  FROM jsonb_array_elements(v_fresh) e
			 GROUP BY 1, 2) s
	 WHERE o.consumer_group = p_group AND o.topic = s.topic
	   AND o.kafka_partition = s.kafka_partition;
	RETURN v_added;
END
$$;

/*
 * A record the service dead-lettered as the last of its partition: the
 * stored offset moves past it, so a restart does not read it again.
 */
CREATE FUNCTION todo_kafka.audit_skip(p_group text, p_topic text, p_partition integer,
									  p_offset bigint)
	RETURNS integer LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	INSERT INTO todo_kafka.audit_offsets AS o (consumer_group, topic, kafka_partition, next_offset)
	VALUES (p_group, p_topic, p_partition, p_offset + 1)
	ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE
	   SET next_offset = greatest(o.next_offset, EXCLUDED.next_offset),
		   updated_at = clock_timestamp()
	RETURNING 0;
$$;

/* where a group starts each partition of a topic: (partition, next_offset) */
CREATE FUNCTION todo_kafka.audit_offsets(p_group text, p_topic text)
	RETURNS TABLE (kafka_partition integer, next_offset bigint)
	LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT o.kafka_partition, o.next_offset FROM todo_kafka.audit_offsets o
	 WHERE o.consumer_group = p_group AND o.topic = p_topic ORDER BY o.kafka_partition;
$$;

REVOKE ALL ON todo_kafka.audit_offsets FROM PUBLIC;
GRANT SELECT ON todo_kafka.audit_offsets TO todo_kafka_auditor;
REVOKE ALL ON FUNCTION
	todo_kafka.topic_defaults(),
	todo_kafka.restored_topic(),
	todo_kafka.restored_relay_position(),
	todo_kafka.cluster_id(),
	todo_kafka.audit_consume(text, jsonb),
	todo_kafka.audit_skip(text, text, integer, bigint),
	todo_kafka.audit_offsets(text, text)
	FROM PUBLIC;
/* the audit service's (30_service_roles.sql) */
GRANT EXECUTE ON FUNCTION
	todo_kafka.audit_consume(text, jsonb),
	todo_kafka.audit_skip(text, text, integer, bigint),
	todo_kafka.audit_offsets(text, text)
	TO todo_kafka_audit_writer;

/* ---- what pg_dump keeps ---- */

/* tasks and the application's settings */
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.tasks', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.reminders', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.user_settings', '');
/*
 * topics: the filter lists the built-in rows as literals (made from
 * topic_defaults(), the one place they are written), so pg_dump needs no
 * right to call a function of ours
 */
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.topics',
	'WHERE (stream, topic, partitions, replication_factor, retention_ms, description) NOT IN ('
	|| string_agg(format('(%L, %L, %s, %s, %s, %L)', d.stream, d.topic, d.partitions,
						 d.replication_factor, d.retention_ms, d.description), ', ' ORDER BY d.stream)
	|| ')')
  FROM todo_kafka.topic_defaults() d;
/* the outbox: changes not yet published at dump time, and the position */
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.outbox_0', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.outbox_1', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.outbox_2', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.outbox_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.relay_position', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.dead_letters', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.dead_letters_id_seq', '');
/* the audit trail (audit_log, audit_chains: since 0.3.0; audit_purges: 30_) and its offsets */
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.audit_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.audit_purges_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.audit_offsets', '');
/* notifications: settings, the inbox, the delivery log */
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.notification_settings', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.notification_channels', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.push_subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.notifications', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.notifications_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.notification_deliveries', '');
/* the read model, its offsets and snapshots */
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.task_view', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.projection_offsets', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.projection_snapshots', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.projection_snapshots_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.projection_snapshot_rows', '');
/* dead letters replayed and purged */
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.dead_letter_replays', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.dead_letter_purges', '');

/* ---------------------------------------------------------------------------
 * Administrative operations audited (15_admin_audit.sql); dlq_claim_replay,
 * dlq_purge and purge_audit record theirs, and this update records itself.
 * ------------------------------------------------------------------------- */
CREATE TABLE todo_kafka.admin_operations (
	id					bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event_id			uuid NOT NULL UNIQUE,	/* the audit record's event id */
	performed_at		timestamptz NOT NULL,	/* the operation's transaction time */
	performed_by		text NOT NULL,			/* session_user: the login */
	operation			text NOT NULL CHECK (operation ~ '^[a-z][a-z0-9_]{0,62}$'),
	target				text,
	detail				jsonb NOT NULL DEFAULT '{}',
	outcome				text NOT NULL CHECK (outcome IN ('succeeded', 'failed'))
);

COMMENT ON TABLE todo_kafka.admin_operations IS
	'every administrative operation (topic creations by the relay, dead-letter replays and purges, audit purges, extension updates): who, when, what, outcome';

SELECT pg_catalog.pg_extension_config_dump('todo_kafka.admin_operations', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.admin_operations_id_seq', '');

CREATE OR REPLACE FUNCTION todo_kafka.admin_operations_append_only()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	RAISE EXCEPTION 'todo_kafka.admin_operations is append-only: % is not allowed', TG_OP
		USING ERRCODE = 'insufficient_privilege',
			  HINT = 'Rows are added by todo_kafka.record_admin_operation() only.';
END
$function$;

CREATE TRIGGER admin_operations_append_only BEFORE UPDATE OR DELETE ON todo_kafka.admin_operations
	FOR EACH ROW EXECUTE FUNCTION todo_kafka.admin_operations_append_only();

CREATE TRIGGER admin_operations_no_truncate BEFORE TRUNCATE ON todo_kafka.admin_operations
	FOR EACH STATEMENT EXECUTE FUNCTION todo_kafka.admin_operations_append_only();

ALTER TABLE todo_kafka.admin_operations ENABLE ALWAYS TRIGGER admin_operations_append_only;

ALTER TABLE todo_kafka.admin_operations ENABLE ALWAYS TRIGGER admin_operations_no_truncate;

/* record one administrative operation; returns its admin_operations id */
CREATE OR REPLACE FUNCTION todo_kafka.record_admin_operation(p_operation text, p_target text, p_detail jsonb, p_outcome text)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	r			todo_kafka.admin_operations;
BEGIN
	IF p_operation IS NULL OR p_operation !~ '^[a-z][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid admin operation name: "%"', p_operation
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'An operation is a lower-case name like dlq_replay.';
	END IF;
	IF p_outcome IS NULL OR p_outcome NOT IN ('succeeded', 'failed') THEN
		RAISE EXCEPTION 'invalid admin operation outcome: "%"', p_outcome
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The outcome is succeeded or failed.';
	END IF;
	INSERT INTO todo_kafka.admin_operations
		(event_id, performed_at, performed_by, operation, target, detail, outcome)
	VALUES (gen_random_uuid(), now(), session_user, p_operation, p_target,
			coalesce(p_detail, '{}'), p_outcome)
	RETURNING * INTO r;
	PERFORM todo_kafka.emit('custom', 'audit', coalesce(r.target, r.operation),
		'admin.' || r.operation, NULL,
		jsonb_build_object(
			'event_id', r.event_id, 'actor', r.performed_by, 'db_role', r.performed_by,
			'operation', 'INSERT', 'event_type', 'admin.' || r.operation,
			'table', 'admin_operations', 'task_id', NULL, 'user_id', NULL,
			'before', NULL, 'after', to_jsonb(r), 'changed_fields', NULL,
			'txid', txid_current(),
			'timestamp', to_char(r.performed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
			'correlation_id', NULL),
		'admin_operations');
	RETURN r.id;
END
$function$;

REVOKE ALL ON FUNCTION todo_kafka.record_admin_operation(text,text,jsonb,text) FROM PUBLIC;
REVOKE ALL ON FUNCTION todo_kafka.admin_operations_append_only() FROM PUBLIC;
REVOKE ALL ON todo_kafka.admin_operations FROM PUBLIC;
REVOKE ALL ON SEQUENCE todo_kafka.admin_operations_id_seq FROM PUBLIC;
GRANT SELECT ON todo_kafka.admin_operations TO todo_kafka_auditor;

CREATE OR REPLACE FUNCTION todo_kafka.dlq_record_replay(p_dead_letter text, p_origin_topic text, p_origin_partition integer, p_origin_offset bigint, p_event_id text, p_force boolean, p_replays integer)
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
	SELECT FROM todo_kafka.record_admin_operation('dlq_replay', p_dead_letter,
		jsonb_build_object('origin_topic', p_origin_topic, 'origin_partition', p_origin_partition,
						   'origin_offset', p_origin_offset, 'event_id', p_event_id,
						   'force', coalesce(p_force, false), 'replays', p_replays),
		'succeeded');
$function$;

REVOKE ALL ON FUNCTION todo_kafka.dlq_record_replay(text,text,integer,bigint,text,boolean,integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION todo_kafka.dlq_claim_replay(p_dead_letter text, p_origin_topic text, p_origin_partition integer, p_origin_offset bigint, p_event_id text, p_force boolean DEFAULT false)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	v_prev		todo_kafka.dead_letter_replays;
BEGIN
	IF p_dead_letter IS NULL OR p_dead_letter !~ '^([0-9]+:[0-9]+|db:[0-9]+)$' THEN
		RAISE EXCEPTION 'invalid dead letter name: "%"', p_dead_letter
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Names are "<partition>:<offset>" of the dead-letter topic or "db:<id>" of todo_kafka.dead_letters.';
	END IF;
	INSERT INTO todo_kafka.dead_letter_replays
		(dead_letter, origin_topic, origin_partition, origin_offset, event_id)
	VALUES (p_dead_letter, p_origin_topic, p_origin_partition, p_origin_offset, p_event_id)
	ON CONFLICT (dead_letter) DO NOTHING;
	IF FOUND THEN
		PERFORM todo_kafka.dlq_record_replay(p_dead_letter, p_origin_topic, p_origin_partition,
											 p_origin_offset, p_event_id, p_force, 1);
		RETURN 1;
	END IF;
	SELECT * INTO v_prev FROM todo_kafka.dead_letter_replays r
	 WHERE r.dead_letter = p_dead_letter FOR UPDATE;
	IF NOT coalesce(p_force, false) THEN
		RAISE EXCEPTION 'dead letter % was already replayed', p_dead_letter
			USING ERRCODE = 'unique_violation',
				  DETAIL = format('Replayed %s time(s), last at %s by %s.', v_prev.replays,
								  to_char(v_prev.last_replayed_at AT TIME ZONE 'UTC',
										  'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
								  v_prev.replayed_by),
				  HINT = 'Replaying it again delivers it twice; use --force if that is what you want.';
	END IF;
	UPDATE todo_kafka.dead_letter_replays r
	   SET replays = r.replays + 1, last_replayed_at = clock_timestamp(), replayed_by = session_user
	 WHERE r.dead_letter = p_dead_letter;
	PERFORM todo_kafka.dlq_record_replay(p_dead_letter, p_origin_topic, p_origin_partition,
										 p_origin_offset, p_event_id, p_force, v_prev.replays + 1);
	RETURN v_prev.replays + 1;
END
$function$;

CREATE OR REPLACE FUNCTION todo_kafka.dlq_purge(p_older_than interval, p_topic text DEFAULT NULL::text, p_keep_from jsonb DEFAULT '{}'::jsonb)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	v_cutoff	timestamptz;
	v_count		bigint;
	v_ids		bigint[];
BEGIN
	IF p_older_than IS NULL OR p_older_than < interval '0' THEN
		RAISE EXCEPTION 'invalid purge age: %', p_older_than
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a positive interval, e.g. ''7 days''.';
	END IF;
	v_cutoff := now() - p_older_than;
	WITH d AS (DELETE FROM todo_kafka.dead_letters d WHERE d.failed_at < v_cutoff RETURNING d.id)
	SELECT array_agg(d.id) INTO v_ids FROM d;
	v_count := coalesce(cardinality(v_ids), 0);
	DELETE FROM todo_kafka.dead_letter_replays r
	 WHERE r.dead_letter = ANY (SELECT 'db:' || i FROM unnest(v_ids) i);
	IF p_topic IS NOT NULL THEN
		INSERT INTO todo_kafka.dead_letter_purges AS p (topic, kafka_partition, keep_from_offset)
		SELECT p_topic, k.key::integer, k.value::bigint FROM jsonb_each_text(p_keep_from) k
		ON CONFLICT (topic, kafka_partition) DO UPDATE
		   SET keep_from_offset = greatest(p.keep_from_offset, EXCLUDED.keep_from_offset),
			   purged_at = clock_timestamp();
		DELETE FROM todo_kafka.dead_letter_replays r
		 USING todo_kafka.dead_letter_purges p
		 WHERE p.topic = p_topic AND r.dead_letter !~ '^db:'
		   AND split_part(r.dead_letter, ':', 1)::integer = p.kafka_partition
		   AND split_part(r.dead_letter, ':', 2)::bigint < p.keep_from_offset;
	END IF;
	PERFORM todo_kafka.record_admin_operation('dlq_purge', p_topic,
		jsonb_build_object('older_than', p_older_than::text, 'cutoff', v_cutoff,
						   'keep_from', p_keep_from, 'deleted', v_count), 'succeeded');
	RETURN v_count;
END
$function$;

CREATE OR REPLACE FUNCTION todo_kafka.purge_audit(p_older_than interval DEFAULT NULL::interval)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	v_floor		interval := todo_kafka.audit_retention();
	v_period	interval := coalesce(p_older_than, v_floor);
	v_cutoff	timestamptz;
	v_chain		integer;
	v_keep		bigint;
	v_last_seq	bigint;
	v_last_hash	bytea;
	v_count		bigint;
	v_total		bigint := 0;
	v_anchors	jsonb := '[]';
BEGIN
	IF v_period < interval '0' THEN
		RAISE EXCEPTION 'invalid retention period: %', v_period
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a positive interval, e.g. ''90 days''.';
	END IF;
	IF v_period < v_floor THEN
		RAISE EXCEPTION 'audit entries are kept at least %: a purge of entries older than % is refused',
				v_floor, v_period
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a period of at least the retention (or none: purge_audit() uses it). '
					  'The retention is the setting todo_kafka.audit_retention, which only a superuser can change.';
	END IF;
	v_cutoff := now() - v_period;
	PERFORM set_config('todo_kafka.audit_purge', 'on', true);
	FOR v_chain IN SELECT c.chain FROM todo_kafka.audit_chains c ORDER BY c.chain FOR UPDATE
	LOOP
		SELECT a.seq INTO v_keep FROM todo_kafka.audit_log a
		 WHERE a.chain = v_chain AND a.recorded_at >= v_cutoff
		 ORDER BY a.seq LIMIT 1;
		IF v_keep IS NULL THEN
			SELECT a.seq, a.hash INTO v_last_seq, v_last_hash FROM todo_kafka.audit_log a
			 WHERE a.chain = v_chain ORDER BY a.seq DESC LIMIT 1;
		ELSE
			SELECT a.seq, a.hash INTO v_last_seq, v_last_hash FROM todo_kafka.audit_log a
			 WHERE a.chain = v_chain AND a.seq < v_keep ORDER BY a.seq DESC LIMIT 1;
		END IF;
		CONTINUE WHEN v_last_seq IS NULL;
		DELETE FROM todo_kafka.audit_log a WHERE a.chain = v_chain AND a.seq <= v_last_seq;
		GET DIAGNOSTICS v_count = ROW_COUNT;
		v_total := v_total + v_count;
		UPDATE todo_kafka.audit_chains c SET anchor_seq = v_last_seq, anchor_hash = v_last_hash
		 WHERE c.chain = v_chain;
		v_anchors := v_anchors || jsonb_build_object('chain', v_chain, 'anchor_seq', v_last_seq,
													 'anchor_hash', encode(v_last_hash, 'hex'),
													 'entries', v_count);
	END LOOP;
	PERFORM set_config('todo_kafka.audit_purge', 'off', true);
	IF v_total > 0 THEN
		INSERT INTO todo_kafka.audit_purges
			(purged_at, purged_by, older_than, cutoff, retention, entries, anchors)
		VALUES (now(), session_user, v_period, v_cutoff, v_floor, v_total, v_anchors);
		PERFORM todo_kafka.record_admin_operation('audit_purge', 'todo_kafka.audit_log',
			jsonb_build_object('older_than', v_period::text, 'cutoff', v_cutoff,
							   'retention', v_floor::text, 'entries', v_total, 'anchors', v_anchors),
			'succeeded');
	END IF;
	RETURN v_total;
END
$function$;

/* this update, as an admin operation */
SELECT FROM todo_kafka.record_admin_operation('extension_update', 'todo_kafka',
	jsonb_build_object('from', '0.4.0', 'to', '0.5.0'), 'succeeded');

/* the relay's topic creations, as admin operations (15_admin_audit.sql) */
/*
 * The relay's record of one topic it asked Kafka to create at start-up
 * (relay/topics_admin.c): admin operation topic_create, target the topic,
 * detail the partitions, replication factor, topic configs and the relay
 * instance (host/pid; who is the relay's login, session_user), outcome
 * succeeded, or failed with the broker's error (p_error not NULL).  Only
 * the session holding the leader lock (relay_lead(): advisory lock
 * TODO_KAFKA_LOCK_CLASS 29803, TODO_KAFKA_LOCK_LEADER 1, extension/todo_kafka.h)
 * may record, so a standby relay, or another login of the relay role,
 * cannot write records for creations it did not attempt.
 */
CREATE OR REPLACE FUNCTION todo_kafka.relay_record_topic_create(p_topic text, p_partitions integer, p_replication_factor integer, p_configs jsonb, p_instance text, p_error text)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
				    WHERE l.locktype = 'advisory' AND l.pid = pg_catalog.pg_backend_pid()
					  AND l.classid = 29803 AND l.objid = 1 AND l.objsubid = 2 AND l.granted) THEN
		RAISE EXCEPTION 'only the leading relay records topic creations'
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'Call todo_kafka.relay_lead() first, on the same session.';
	END IF;
	IF p_topic IS NULL OR p_topic = '' THEN
		RAISE EXCEPTION 'a topic creation needs the topic name'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN todo_kafka.record_admin_operation('topic_create', p_topic,
		jsonb_build_object('partitions', p_partitions,
						   'replication_factor', p_replication_factor,
						   'configs', coalesce(p_configs, '{}'),
						   'instance', p_instance)
		|| CASE WHEN p_error IS NULL THEN '{}'::jsonb
				ELSE jsonb_build_object('error', p_error) END,
		CASE WHEN p_error IS NULL THEN 'succeeded' ELSE 'failed' END);
END
$function$;

REVOKE ALL ON FUNCTION todo_kafka.relay_record_topic_create(text,integer,integer,jsonb,text,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION todo_kafka.relay_record_topic_create(text,integer,integer,jsonb,text,text) TO todo_kafka_relay;

/* tracing: the trace id kept in the audit trail and the inbox (README Tracing) */
ALTER TABLE todo_kafka.audit_log ADD COLUMN trace_id text;
ALTER TABLE todo_kafka.notifications ADD COLUMN trace_id text;

CREATE OR REPLACE FUNCTION todo_kafka.audit_append(p_records jsonb)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	v_index		integer;
	v_bad		text;
	v_hint		text;
	v_added		integer;
BEGIN
	IF jsonb_typeof(p_records) IS DISTINCT FROM 'array' THEN
		RAISE EXCEPTION 'audit records must be a JSON array'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass [{"topic": ..., "partition": ..., "offset": ..., "data": {...}}, ...].';
	END IF;
	IF jsonb_array_length(p_records) = 0 THEN
		RETURN 0;
	END IF;

	/* 1. the first bad element and its first bad field (extension/auditcheck.c) */
	SELECT c.idx, c.field INTO v_index, v_bad FROM todo_kafka.audit_check(p_records) AS c;
	IF v_bad IS NOT NULL THEN
		v_hint := CASE v_bad
			WHEN 'record' THEN 'Each element is {"topic": ..., "partition": ..., "offset": ..., "data": {...}}.'
			WHEN 'partition' THEN 'The Kafka partition is a whole number from 0.'
			WHEN 'offset' THEN 'The Kafka offset is a whole number from 0.'
			WHEN 'topic' THEN 'The Kafka topic is a string.'
			WHEN 'data' THEN 'data is the audit message''s data object.'
			WHEN 'data.event_id' THEN 'The event id is a uuid string.'
			WHEN 'data.operation' THEN 'The operation is INSERT, UPDATE or DELETE.'
			WHEN 'data.event_type' THEN 'The event type is a non-empty string.'
			WHEN 'data.timestamp' THEN 'The event time is an RFC 3339 string, e.g. "2026-01-22T10:00:00.000001Z".'
			WHEN 'data.txid' THEN 'The transaction id is a whole number.'
			WHEN 'data.before' THEN 'A row image is a JSON object or null.'
			WHEN 'data.after' THEN 'A row image is a JSON object or null.'
			WHEN 'data.changed_fields' THEN 'changed_fields is an array of column names or null.'
			ELSE substr(v_bad, 6) || ' is a string or null.'
		END;
		RAISE EXCEPTION 'invalid audit record at array index %: "%" is missing or invalid', v_index, v_bad
			USING ERRCODE = 'invalid_parameter_value', HINT = v_hint;
	END IF;

	/* 2. lock the chain heads, lowest chain first; a new chain starts at 0 */
	INSERT INTO todo_kafka.audit_chains (chain)
		SELECT DISTINCT (e.rec ->> 'partition')::integer FROM jsonb_array_elements(p_records) AS e(rec)
		 ORDER BY 1
		ON CONFLICT (chain) DO NOTHING;
	PERFORM 1
	   FROM todo_kafka.audit_chains c
	  WHERE c.chain IN (SELECT (e.rec ->> 'partition')::integer FROM jsonb_array_elements(p_records) AS e(rec))
	  ORDER BY c.chain
	  FOR UPDATE;

	/*
	 * 3. Append (a new snapshot: sees what an earlier holder of the heads
	 * committed).  recorded_at is stamped after the sort by n, so it grows
	 * in array order as before.
	 */
	WITH r AS MATERIALIZED (
		SELECT e.n, o."partition" AS chain, o."offset", o.topic,
			   CASE WHEN o.trace_id ~ '^[0-9a-f]{32}$' THEN o.trace_id END AS trace_id, d.*
		  FROM jsonb_array_elements(p_records) WITH ORDINALITY AS e(rec, n)
		 CROSS JOIN LATERAL jsonb_to_record(e.rec)
			   AS o(topic text, "partition" integer, "offset" bigint, data jsonb, trace_id text)
		 CROSS JOIN LATERAL jsonb_to_record(o.data)
			   AS d(event_id uuid, actor text, db_role text, operation text, event_type text,
					"table" text, task_id text, user_id text, before jsonb, after jsonb,
					changed_fields text[], correlation_id text, txid bigint, "timestamp" timestamptz)
	), fresh AS (
		SELECT DISTINCT ON (r.event_id) r.*
		  FROM r
		 WHERE NOT EXISTS (SELECT 1 FROM todo_kafka.audit_log a WHERE a.event_id = r.event_id)
		 ORDER BY r.event_id, r.n
	), stamped AS MATERIALIZED (
		SELECT f.*, clock_timestamp() AS recorded_at
		  FROM fresh f
		 ORDER BY f.n
	), numbered AS (
		SELECT s.*, h.last_hash AS head_hash,
			   h.last_seq + row_number() OVER (PARTITION BY s.chain ORDER BY s.n) AS seq
		  FROM stamped s
		  JOIN todo_kafka.audit_chains h ON h.chain = s.chain
	), hashed AS (
		SELECT m.*,
			   todo_kafka.audit_chain(todo_kafka.audit_canonical(ROW(
					NULL, m.chain, m.seq, m.event_id, m.actor, m.db_role, m.operation, m.event_type,
					m."table", m.task_id, m.user_id, m.before, m.after, m.changed_fields,
					m.correlation_id, m.txid, m."timestamp", m.recorded_at, m.topic, m.chain,
					m."offset", NULL, NULL, NULL)::todo_kafka.audit_log), m.head_hash)
				   OVER (PARTITION BY m.chain ORDER BY m.n) AS hash
		  FROM numbered m
	), linked AS (
		SELECT k.*, coalesce(lag(k.hash) OVER (PARTITION BY k.chain ORDER BY k.n), k.head_hash) AS prev_hash
		  FROM hashed k
	), ins AS (
		INSERT INTO todo_kafka.audit_log
			(chain, seq, event_id, actor, db_role, operation, event_type, table_name,
			 task_id, user_id, before, after, changed_fields, correlation_id, txid,
			 occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset,
			 prev_hash, hash, trace_id)
		SELECT l.chain, l.seq, l.event_id, l.actor, l.db_role, l.operation, l.event_type, l."table",
			   l.task_id, l.user_id, l.before, l.after, l.changed_fields, l.correlation_id, l.txid,
			   l."timestamp", l.recorded_at, l.topic, l.chain, l."offset",
			   l.prev_hash, l.hash, l.trace_id
		  FROM linked l
		 ORDER BY l.n
		RETURNING chain, seq, hash
	), heads AS (
		UPDATE todo_kafka.audit_chains c SET last_seq = t.seq, last_hash = t.hash
		  FROM (SELECT DISTINCT ON (i.chain) i.chain, i.seq, i.hash
				  FROM ins i
				 ORDER BY i.chain, i.seq DESC) t
		 WHERE c.chain = t.chain
	)
	SELECT count(*) INTO v_added FROM ins;
	RETURN v_added;
END
$function$;

DROP FUNCTION todo_kafka.deliver_in_app(text, text, text, uuid, text, text);
CREATE OR REPLACE FUNCTION todo_kafka.deliver_in_app(p_notification_id text, p_user_id text, p_kind text, p_task_id uuid, p_title text, p_body text, p_trace_id text DEFAULT NULL)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	n	todo_kafka.notifications;
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	INSERT INTO todo_kafka.notifications (notification_id, user_id, kind, task_id, title, body, trace_id)
		VALUES (p_notification_id, p_user_id, p_kind, p_task_id,
				left(coalesce(p_title, ''), 500), left(coalesce(p_body, ''), 4000),
				CASE WHEN p_trace_id ~ '^[0-9a-f]{32}$' THEN p_trace_id END)
		ON CONFLICT (notification_id) DO NOTHING
		RETURNING * INTO n;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	INSERT INTO todo_kafka.notification_deliveries AS d
			(notification_id, channel, target, user_id, status, finished_at)
		VALUES (p_notification_id, 'in_app', p_user_id, p_user_id, 'delivered', clock_timestamp())
		ON CONFLICT (notification_id, channel, target) DO UPDATE
			SET status = 'delivered', finished_at = EXCLUDED.finished_at;
	/* NOTIFY payloads stop at 8000 bytes: the body is cut to keep under it */
	PERFORM pg_notify(todo_kafka.inbox_channel(p_user_id),
					  jsonb_build_object('id', n.id, 'notification_id', n.notification_id,
										 'kind', n.kind, 'task_id', n.task_id,
										 'title', left(n.title, 200), 'body', left(n.body, 1000),
										 'created_at', n.created_at)::text);
	RETURN true;
END
$function$;

REVOKE ALL ON FUNCTION todo_kafka.deliver_in_app(text, text, text, uuid, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION todo_kafka.deliver_in_app(text, text, text, uuid, text, text, text)
	TO todo_kafka_notifier;
