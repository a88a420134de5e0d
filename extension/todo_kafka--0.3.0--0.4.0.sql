/*
 * todo_kafka 0.3.0 -> 0.4.0: the consumer services' objects.
 *
 * This upgrade script is assembled by the Makefile from the files of
 * extension/0.4.0/ in name order (one concern per file: this guard, then
 * each service's tables and functions), into
 * extension/todo_kafka--0.3.0--0.4.0.sql.  Once 0.4.0 is released the
 * assembled script is committed and this folder frozen.
 */
\echo Use "ALTER EXTENSION todo_kafka UPDATE TO '0.4.0'" to load this file. \quit

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
/*
 * 10_contracts.sql (todo_kafka 0.3.0 -> 0.4.0): message contract fixes,
 * made before the JSON Schemas of schemas/ freeze the message format.
 *
 * Found when our messages were read by an independent CloudEvents client
 * (issue 10).  What changes here, in SQL; the rest is in the module:
 *	 - row images render timestamptz in UTC with "Z" and six fraction
 *	   digits and intervals (reminder_offsets) as ISO 8601 durations,
 *	   whatever the session's TimeZone and IntervalStyle
 *	   (extension/rowjson.c);
 *	 - publish() refuses the built-in streams task_events, task_updates
 *	   and reminders too, not only audit (extension/publish.c);
 *	 - the relay adds partitionkey (= the Kafka key) and dataschema to
 *	   every message (common/cloudevents.c).
 *
 * The actor of a task API call.  With no todo_kafka.actor set, the events
 * of add_task, update_task, complete_task and delete_task (and of what
 * their triggers do: reminders, the next occurrence of a recurring task)
 * name the user the call was made for, not the database role.  Each of
 * these functions sets todo_kafka.api_user to p_user_id; its SET clause
 * confines that to the call, so plain SQL on the table afterwards, even in
 * the same transaction, keeps the role.  todo_kafka.actor, when set, still
 * wins; db_role still records the role.
 *
 * A fired reminder carries the correlation id of the transaction that
 * scheduled it, so a conversation can be traced to its reminder:
 * reminders.correlation_id is filled at scheduling (column default) and
 * fire_due_reminders() stamps it on the sent/missed event.  Reminders
 * scheduled before 0.4.0 have none and get the firing transaction's.
 */

/* ---------------------------------------------------------------------------
 * The correlation id a reminder was scheduled under
 * ------------------------------------------------------------------------- */
ALTER TABLE todo_kafka.reminders ADD COLUMN correlation_id text;
ALTER TABLE todo_kafka.reminders
	ALTER COLUMN correlation_id SET DEFAULT todo_kafka.current_correlation_id();
COMMENT ON COLUMN todo_kafka.reminders.correlation_id IS
	'correlation id of the transaction that scheduled the reminder; its sent/missed event carries it (NULL for reminders scheduled before 0.4.0)';

CREATE OR REPLACE FUNCTION todo_kafka.fire_due_reminders(grace interval DEFAULT '5 minutes',
											  max_rows integer DEFAULT 1000)
	RETURNS timestamptz LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET todo_kafka.correlation_id = ''
AS $$
DECLARE
	r			record;
	v_now		timestamptz;
	v_status	text;
	v_message	text;
	v_next		timestamptz;
BEGIN
	IF grace IS NULL THEN
		RAISE EXCEPTION 'grace period must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass the time after which a late reminder counts as missed, e.g. ''5 minutes''.';
	END IF;
	IF grace < interval '0' THEN
		RAISE EXCEPTION 'grace period must not be negative: "%"', grace
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the time after which a late reminder counts as missed, e.g. ''5 minutes''.';
	END IF;
	IF max_rows IS NULL OR max_rows < 1 THEN
		RAISE EXCEPTION 'max_rows must be at least 1'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	FOR r IN
		SELECT rm.reminder_id, rm.task_id, rm.user_id, rm.scheduled_time,
			   rm.notification_method, rm.due_date, rm.correlation_id, t.title, s.time_zone
		  FROM todo_kafka.reminders rm
		  JOIN todo_kafka.tasks t ON t.id = rm.task_id
		  LEFT JOIN todo_kafka.user_settings s ON s.user_id = rm.user_id
		 WHERE rm.status = 'scheduled' AND rm.scheduled_time <= clock_timestamp()
		 ORDER BY rm.scheduled_time, rm.reminder_id
		 LIMIT max_rows
		   FOR UPDATE OF rm SKIP LOCKED
	LOOP
		v_now := clock_timestamp();
		v_status := CASE WHEN v_now > r.scheduled_time + grace THEN 'missed' ELSE 'sent' END;
		v_message := todo_kafka.reminder_message(r.title, r.due_date, r.time_zone);
		UPDATE todo_kafka.reminders
		   SET status = v_status, fired_at = v_now, message = v_message
		 WHERE reminder_id = r.reminder_id;
		/* the scheduling transaction's correlation id (local to this call) */
		PERFORM set_config('todo_kafka.correlation_id', coalesce(r.correlation_id, ''), true);
		PERFORM todo_kafka.emit_reminder(r.reminder_id, r.task_id, r.user_id, r.scheduled_time,
										 r.notification_method, v_status, v_message);
	END LOOP;

	SELECT min(scheduled_time) INTO v_next
	  FROM todo_kafka.reminders WHERE status = 'scheduled';
	RETURN v_next;
END
$$;

/* ---------------------------------------------------------------------------
 * Task API: the actor of a call is its user (see the header).  Same
 * signatures, bodies and privileges as before, plus the api_user setting.
 * ------------------------------------------------------------------------- */
CREATE OR REPLACE FUNCTION todo_kafka.add_task(p_user_id text, p_title text,
									p_description text DEFAULT '',
									p_priority text DEFAULT 'medium',
									p_tags text[] DEFAULT '{}',
									p_due_date timestamptz DEFAULT NULL,
									p_recurrence text DEFAULT 'none',
									p_reminder_offsets interval[] DEFAULT '{}',
									p_notification_methods text[] DEFAULT '{in_app}')
	RETURNS todo_kafka.tasks LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET todo_kafka.api_user = ''
AS $$
DECLARE
	t todo_kafka.tasks;
BEGIN
	PERFORM pg_catalog.set_config('todo_kafka.api_user', coalesce(p_user_id, ''), true);
	IF p_user_id IS NULL OR length(p_user_id) = 0 THEN
		RAISE EXCEPTION 'user id is required' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF p_title IS NULL THEN
		RAISE EXCEPTION 'task title must not be empty'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM todo_kafka.check_task_input(p_title, p_description, p_priority, p_tags);
	PERFORM todo_kafka.check_schedule_input(p_due_date, coalesce(p_recurrence, 'none'),
											coalesce(p_reminder_offsets, '{}'),
											coalesce(p_notification_methods, '{in_app}'));
	INSERT INTO todo_kafka.tasks (user_id, title, description, priority, tags, due_date,
								  recurrence, reminder_offsets, notification_methods)
		VALUES (p_user_id, btrim(p_title), coalesce(p_description, ''),
				coalesce(p_priority, 'medium'), coalesce(p_tags, '{}'), p_due_date,
				coalesce(p_recurrence, 'none'), coalesce(p_reminder_offsets, '{}'),
				coalesce(p_notification_methods, '{in_app}'))
		RETURNING * INTO t;
	RETURN t;
END
$$;

CREATE OR REPLACE FUNCTION todo_kafka.update_task(p_user_id text, p_task_id uuid,
									   p_title text DEFAULT NULL,
									   p_description text DEFAULT NULL,
									   p_priority text DEFAULT NULL,
									   p_tags text[] DEFAULT NULL,
									   p_due_date timestamptz DEFAULT NULL,
									   p_completed boolean DEFAULT NULL,
									   p_clear_due_date boolean DEFAULT false,
									   p_recurrence text DEFAULT NULL,
									   p_reminder_offsets interval[] DEFAULT NULL,
									   p_notification_methods text[] DEFAULT NULL)
	RETURNS todo_kafka.tasks LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET todo_kafka.api_user = ''
AS $$
DECLARE
	cur todo_kafka.tasks;
	t todo_kafka.tasks;
	v_due timestamptz;
BEGIN
	PERFORM pg_catalog.set_config('todo_kafka.api_user', coalesce(p_user_id, ''), true);
	PERFORM todo_kafka.check_task_input(p_title, p_description, p_priority, p_tags);
	cur := todo_kafka.owned_task(p_user_id, p_task_id);
	v_due := CASE WHEN p_clear_due_date THEN NULL ELSE coalesce(p_due_date, cur.due_date) END;
	IF p_due_date IS NOT NULL OR p_clear_due_date OR p_recurrence IS NOT NULL
		OR p_reminder_offsets IS NOT NULL OR p_notification_methods IS NOT NULL THEN
		PERFORM todo_kafka.check_schedule_input(v_due,
												coalesce(p_recurrence, cur.recurrence),
												coalesce(p_reminder_offsets, cur.reminder_offsets),
												coalesce(p_notification_methods, cur.notification_methods));
	END IF;
	UPDATE todo_kafka.tasks SET
		title = coalesce(btrim(p_title), title),
		description = coalesce(p_description, description),
		priority = coalesce(p_priority, priority),
		tags = coalesce(p_tags, tags),
		due_date = v_due,
		completed = coalesce(p_completed, completed),
		recurrence = coalesce(p_recurrence, recurrence),
		reminder_offsets = coalesce(p_reminder_offsets, reminder_offsets),
		notification_methods = coalesce(p_notification_methods, notification_methods)
	WHERE id = p_task_id
	RETURNING * INTO t;
	RETURN t;
END
$$;

CREATE OR REPLACE FUNCTION todo_kafka.complete_task(p_user_id text, p_task_id uuid)
	RETURNS todo_kafka.tasks LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET todo_kafka.api_user = ''
AS $$
DECLARE
	t todo_kafka.tasks;
BEGIN
	PERFORM pg_catalog.set_config('todo_kafka.api_user', coalesce(p_user_id, ''), true);
	PERFORM todo_kafka.owned_task(p_user_id, p_task_id);
	UPDATE todo_kafka.tasks SET completed = true WHERE id = p_task_id
		RETURNING * INTO t;
	RETURN t;
END
$$;

CREATE OR REPLACE FUNCTION todo_kafka.delete_task(p_user_id text, p_task_id uuid)
	RETURNS todo_kafka.tasks LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET todo_kafka.api_user = ''
AS $$
DECLARE
	t todo_kafka.tasks;
BEGIN
	PERFORM pg_catalog.set_config('todo_kafka.api_user', coalesce(p_user_id, ''), true);
	PERFORM todo_kafka.owned_task(p_user_id, p_task_id);
	DELETE FROM todo_kafka.tasks WHERE id = p_task_id RETURNING * INTO t;
	RETURN t;
END
$$;

/* ===========================================================================
 * 15_audit_append.sql: audit_append(), set-based (the consumer's batch
 * insert into the audit trail of 0.3.0)
 *
 * What is stored is exactly what 0.3.0's audit_append() stored: the same
 * columns, seq, prev_hash and hash (sha256(prev_hash || audit_canonical(
 * entry)), audit_canonical() unchanged), the same skips (an event id already
 * recorded, a repeat within the batch: first one wins), the same 22023
 * errors naming the field and the element's array index, the same locking
 * (chain heads FOR UPDATE, lowest chain first, before event ids are looked
 * up).  Only the way there changed.  0.3.0 ran a PL/pgSQL function per
 * element (audit_record), then a loop per entry appending composite rows
 * to arrays (v_new := v_new || r copies the whole array each time: O(n^2)
 * in a 500-record batch of ~1.5 kB rows) and testing event ids with
 * = ANY(array); see bench/RESULTS.md "audit: append path" for the profile.
 * Now there are three statements:
 *	 1. validation: audit_check() (extension/auditcheck.c), one pass in C
 *		over the batch: the first bad element and field;
 *	 2. the chain heads locked (as before);
 *	 3. one INSERT ... SELECT: the records as typed columns (jsonb_to_record
 *		with audit_log's types: the conversions of 0.3.0's
 *		jsonb_populate_record, JSON null -> SQL NULL), new event ids only
 *		(DISTINCT ON, NOT EXISTS on the event_id index), seq numbered per
 *		chain (row_number), recorded_at stamped in array order, the hash
 *		chained per chain by the window aggregate audit_chain() (the only
 *		sequential step), prev_hash = the previous entry's hash or the
 *		head's; the heads updated from what was inserted.
 * audit_record() stays (unused; its privileges unchanged).
 * ======================================================================== */

/*
 * The first element audit_append() must refuse, and the field at fault
 * (0.3.0's audit_record() rules, in its order); NULL when all are good.
 * Internal: granted to nobody.
 */
CREATE FUNCTION todo_kafka.audit_check(p_records jsonb, OUT idx integer, OUT field text)
	RETURNS record LANGUAGE C STRICT STABLE
AS 'MODULE_PATHNAME', 'todo_kafka_audit_check';

/*
 * One step of a chain: the hash of the next entry from the previous one's
 * (p_state; NULL before the first entry of the batch, then the chain head's
 * hash p_head is used, NULL for a new chain) and the entry's canonical text.
 * Internal: granted to nobody; no search_path needed (all names qualified).
 */
CREATE FUNCTION todo_kafka.audit_chain_step(p_state bytea, p_canonical text, p_head bytea)
	RETURNS bytea LANGUAGE plpgsql STABLE
AS $$
BEGIN
	RETURN pg_catalog.sha256(coalesce(p_state, p_head, '\x'::bytea)
							 OPERATOR(pg_catalog.||) pg_catalog.convert_to(p_canonical, 'UTF8'));
END
$$;

/*
 * audit_chain(canonical, head hash) OVER (PARTITION BY chain ORDER BY seq):
 * each entry's hash.
 */
CREATE AGGREGATE todo_kafka.audit_chain(text, bytea) (
	SFUNC = todo_kafka.audit_chain_step,
	STYPE = bytea
);

/*
 * p_records: [{"topic": text, "partition": int, "offset": bigint,
 *				"data": <the relay's audit message data>}, ...]
 * Validates every element first (22023 on the first bad one, nothing
 * written), locks the heads of the chains involved, then appends the new
 * ones in array order.  Returns the number of entries added.
 */
CREATE OR REPLACE FUNCTION todo_kafka.audit_append(p_records jsonb)
	RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
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
		SELECT e.n, o."partition" AS chain, o."offset", o.topic, d.*
		  FROM jsonb_array_elements(p_records) WITH ORDINALITY AS e(rec, n)
		 CROSS JOIN LATERAL jsonb_to_record(e.rec)
			   AS o(topic text, "partition" integer, "offset" bigint, data jsonb)
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
					m."offset", NULL, NULL)::todo_kafka.audit_log), m.head_hash)
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
			 prev_hash, hash)
		SELECT l.chain, l.seq, l.event_id, l.actor, l.db_role, l.operation, l.event_type, l."table",
			   l.task_id, l.user_id, l.before, l.after, l.changed_fields, l.correlation_id, l.txid,
			   l."timestamp", l.recorded_at, l.topic, l.chain, l."offset",
			   l.prev_hash, l.hash
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
$$;

REVOKE ALL ON FUNCTION todo_kafka.audit_check(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION todo_kafka.audit_chain_step(bytea, text, bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION todo_kafka.audit_chain(text, bytea) FROM PUBLIC;

/* ===========================================================================
 * 20_notify.sql: the objects of the notification service (todo-kafka-notify)
 *
 * Settings (written by the application through the set_* functions only):
 *	 notification_settings	 per user: email address, push gateway URL,
 *							 quiet hours (in the user's time zone,
 *							 user_settings; UTC when unknown)
 *	 notification_channels	 per user and event kind (task_created,
 *							 reminder): the enabled channels; a user with
 *							 no row gets the defaults below
 *	 push_subscriptions		 a browser's PushSubscription (endpoint,
 *							 p256dh, auth); an endpoint belongs to one user
 * Defaults: task_created -> {in_app}; reminder -> {email, push, in_app}
 * (each reminder names one method; the user's list filters it).
 * Quiet hours: while they last, a new task is announced in the inbox only
 * (no email, no push); reminders are exempt: the user asked for that time.
 *
 * The service (role todo_kafka_consumer) works in two stages:
 *	 fan-out	 notification_plan(): which channels an event gets, with the
 *				 title and body (the due time in the user's zone); one
 *				 message per channel goes to todo.notifications
 *	 delivery	 notification_targets(): the addresses/subscriptions of a
 *				 channel now; delivery_claim() / delivery_done() /
 *				 delivery_retry() around each send; deliver_in_app() for
 *				 the inbox; push_subscription_gone() on 404/410
 *
 * Exactly once per (notification, channel, target): notification_deliveries
 * has that primary key.  In-app is one transaction (inbox row, log row,
 * NOTIFY), so a redelivered message changes nothing.  Email and push cannot
 * join a transaction, so a send is bracketed:
 *	 delivery_claim()  commits status 'sending' before the send; says
 *					   'delivered' (or gone/failed) when it was done before,
 *					   so the send is skipped
 *	 delivery_done()   records the outcome after the send
 *	 delivery_retry()  the send failed and certainly did not deliver
 *					   (transient): the next claim may send again
 * A claim found in 'sending' means an earlier attempt was interrupted
 * between claim and outcome (the process died mid-send): the message may or
 * may not have gone out.  The default is at most once: the row becomes
 * 'interrupted' and nothing is sent again (no second email after a crash);
 * p_take_over => true (the service's resend_interrupted setting) resends
 * instead (at least once; the email keeps its Message-ID).
 *
 * The inbox: notifications (notification_id unique); the app reads it with
 * list_notifications() and mark_notification_read(), and LISTENs on
 * inbox_channel(user) for live rows (payload: JSON of the new row).
 * =========================================================================== */

CREATE TABLE todo_kafka.notification_settings (
	user_id				text PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 200),
	email				text,
	push_gateway_url	text,
	quiet_start			time,
	quiet_end			time,
	updated_at			timestamptz NOT NULL DEFAULT now(),
	CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);

CREATE TABLE todo_kafka.notification_channels (
	user_id				text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 200),
	kind				text NOT NULL CHECK (kind IN ('task_created', 'reminder')),
	channels			text[] NOT NULL CHECK (channels <@ '{email,push,in_app}'::text[]),
	updated_at			timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (user_id, kind)
);

CREATE TABLE todo_kafka.push_subscriptions (
	endpoint			text PRIMARY KEY,
	user_id				text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 200),
	p256dh				text NOT NULL,
	auth				text NOT NULL,
	created_at			timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_subscriptions_user_id_idx ON todo_kafka.push_subscriptions (user_id);

/* the in-app inbox */
CREATE TABLE todo_kafka.notifications (
	id					bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	notification_id		text NOT NULL UNIQUE,	/* <source event id>:in_app */
	user_id				text NOT NULL,
	kind				text NOT NULL,
	task_id				uuid,
	title				text NOT NULL,
	body				text NOT NULL,
	read				boolean NOT NULL DEFAULT false,
	created_at			timestamptz NOT NULL DEFAULT now(),
	read_at				timestamptz
);
CREATE INDEX notifications_user_id_idx ON todo_kafka.notifications (user_id, id);

/* the delivery log: one row per (notification, channel, target) */
CREATE TABLE todo_kafka.notification_deliveries (
	notification_id		text NOT NULL,
	channel				text NOT NULL CHECK (channel IN ('email', 'push', 'in_app')),
	target				text NOT NULL,	/* address, endpoint, gateway URL, user */
	user_id				text NOT NULL,
	status				text NOT NULL CHECK (status IN ('sending', 'retry', 'delivered',
														'gone', 'failed', 'interrupted')),
	attempts			integer NOT NULL DEFAULT 1,
	detail				text,
	claimed_at			timestamptz NOT NULL DEFAULT clock_timestamp(),
	finished_at			timestamptz,
	PRIMARY KEY (notification_id, channel, target)
);
CREATE INDEX notification_deliveries_claimed_at_idx
	ON todo_kafka.notification_deliveries (claimed_at);

/* ---------------------------------------------------------------------------
 * Input checks (internal)
 * ------------------------------------------------------------------------- */
CREATE FUNCTION todo_kafka.notify_check_user(p_user_id text)
	RETURNS void LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF p_user_id IS NULL OR length(p_user_id) = 0 THEN
		RAISE EXCEPTION 'user id is required' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF length(p_user_id) > 200 THEN
		RAISE EXCEPTION 'user id is too long (% characters)', length(p_user_id)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'User ids have at most 200 characters.';
	END IF;
END
$$;

/*
 * A base64url string (RFC 4648 s5, padding optional) of exactly p_bytes
 * bytes, normalised without padding; an error naming p_what otherwise.
 */
CREATE FUNCTION todo_kafka.notify_check_b64url(p_value text, p_bytes integer, p_what text)
	RETURNS text LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v		text := rtrim(btrim(p_value), '=');
	v_raw	bytea;
BEGIN
	IF p_value IS NULL OR v = '' THEN
		RAISE EXCEPTION 'push subscription has no % key', p_what
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the keys of the browser''s PushSubscription (subscription.toJSON().keys).';
	END IF;
	IF v !~ '^[A-Za-z0-9_-]+$' OR length(v) % 4 = 1 THEN
		RAISE EXCEPTION 'invalid % key: not base64url', p_what
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Keys are base64url (RFC 4648 section 5) as PushSubscription.toJSON() gives them.';
	END IF;
	v_raw := decode(translate(v, '-_', '+/') || repeat('=', (4 - length(v) % 4) % 4), 'base64');
	IF length(v_raw) <> p_bytes THEN
		RAISE EXCEPTION 'invalid % key: % bytes instead of %', p_what, length(v_raw), p_bytes
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'p256dh is a 65-byte uncompressed P-256 point, auth a 16-byte secret.';
	END IF;
	IF p_bytes = 65 AND get_byte(v_raw, 0) <> 4 THEN
		RAISE EXCEPTION 'invalid % key: not an uncompressed P-256 point', p_what
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'p256dh is a 65-byte uncompressed P-256 point (first byte 0x04).';
	END IF;
	RETURN v;
END
$$;

/* an http(s) URL without spaces or control characters; p_what names it */
CREATE FUNCTION todo_kafka.notify_check_url(p_url text, p_what text)
	RETURNS text LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v	text := btrim(p_url);
BEGIN
	IF length(v) > 2048 THEN
		RAISE EXCEPTION 'invalid % URL: longer than 2048 characters', p_what
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use a URL of at most 2048 characters.';
	END IF;
	/* https anywhere; plain http only to a loopback host (development) */
	IF v !~ '^https://[^/\s?#@]+(/[^\s]*)?$'
		AND v !~ '^http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?(/[^\s]*)?$' THEN
		RAISE EXCEPTION 'invalid % URL: "%"', p_what, p_url
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use an https:// URL (http:// is accepted for localhost only).';
	END IF;
	RETURN v;
END
$$;

/* a channel list: a subset of {email,push,in_app}, sorted, no duplicates */
CREATE FUNCTION todo_kafka.notify_check_channels(p_channels text[])
	RETURNS text[] LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c	text;
BEGIN
	IF p_channels IS NULL OR array_ndims(p_channels) > 1 THEN
		RAISE EXCEPTION 'channels must be a one-dimensional array'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass e.g. ''{email,in_app}''; ''{}'' turns every channel off.';
	END IF;
	FOREACH c IN ARRAY p_channels LOOP
		IF c IS NULL OR c NOT IN ('email', 'push', 'in_app') THEN
			RAISE EXCEPTION 'unknown notification channel: "%"', c
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'The channels are email, push and in_app.';
		END IF;
	END LOOP;
	RETURN ARRAY(SELECT DISTINCT x FROM unnest(p_channels) x ORDER BY 1);
END
$$;

/* ---------------------------------------------------------------------------
 * Application API (todo_kafka_app)
 * ------------------------------------------------------------------------- */

/* the user's email address; NULL removes it.  Returns the stored address. */
CREATE FUNCTION todo_kafka.set_notification_email(p_user_id text, p_address text)
	RETURNS text LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v	text := btrim(p_address);
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	/*
	 * addr-spec with a dot-atom local part (RFC 5322 s3.4.1) and a host name
	 * of letters, digits and hyphens: what SMTP servers take in practice
	 */
	IF v IS NOT NULL AND (length(v) > 254
		OR v !~ '^[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$'
		OR length(split_part(v, '@', 1)) > 64) THEN
		RAISE EXCEPTION 'invalid email address: "%"', p_address
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give a plain address such as alice@example.com, without a display name.';
	END IF;
	INSERT INTO todo_kafka.notification_settings AS s (user_id, email)
		VALUES (p_user_id, v)
		ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, updated_at = now();
	RETURN v;
END
$$;

/*
 * Add (or refresh) a Web Push subscription: endpoint, p256dh and auth as
 * PushSubscription.toJSON() gives them.  An endpoint already registered is
 * moved to this user with the new keys.  At most 20 per user.
 */
CREATE FUNCTION todo_kafka.add_push_subscription(p_user_id text, p_endpoint text,
												 p_p256dh text, p_auth text)
	RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_endpoint	text;
	v_p256dh	text;
	v_auth		text;
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	IF p_endpoint IS NULL THEN
		RAISE EXCEPTION 'push subscription has no endpoint'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the endpoint URL of the browser''s PushSubscription.';
	END IF;
	v_endpoint := todo_kafka.notify_check_url(p_endpoint, 'push endpoint');
	v_p256dh := todo_kafka.notify_check_b64url(p_p256dh, 65, 'p256dh');
	v_auth := todo_kafka.notify_check_b64url(p_auth, 16, 'auth');
	IF (SELECT count(*) FROM todo_kafka.push_subscriptions
		 WHERE user_id = p_user_id AND endpoint <> v_endpoint) >= 20 THEN
		RAISE EXCEPTION 'too many push subscriptions for user "%"', p_user_id
			USING ERRCODE = 'program_limit_exceeded',
				  HINT = 'Remove old subscriptions with remove_push_subscription().';
	END IF;
	INSERT INTO todo_kafka.push_subscriptions AS s (endpoint, user_id, p256dh, auth)
		VALUES (v_endpoint, p_user_id, v_p256dh, v_auth)
		ON CONFLICT (endpoint) DO UPDATE
			SET user_id = EXCLUDED.user_id, p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,
				created_at = now();
	RETURN true;
END
$$;

/* remove one of the user's subscriptions; false if it was not there */
CREATE FUNCTION todo_kafka.remove_push_subscription(p_user_id text, p_endpoint text)
	RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	DELETE FROM todo_kafka.push_subscriptions
	 WHERE endpoint = btrim(p_endpoint) AND user_id = p_user_id;
	RETURN FOUND;
END
$$;

/*
 * The channels enabled for one kind of event (task_created, reminder);
 * NULL restores the default.  Returns the channels now in force.
 */
CREATE FUNCTION todo_kafka.set_notification_channels(p_user_id text, p_kind text,
													 p_channels text[])
	RETURNS text[] LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v	text[];
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	IF p_kind IS NULL OR p_kind NOT IN ('task_created', 'reminder') THEN
		RAISE EXCEPTION 'unknown notification kind: "%"', p_kind
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The kinds are task_created and reminder.';
	END IF;
	IF p_channels IS NULL THEN
		DELETE FROM todo_kafka.notification_channels WHERE user_id = p_user_id AND kind = p_kind;
		RETURN todo_kafka.notify_default_channels(p_kind);
	END IF;
	v := todo_kafka.notify_check_channels(p_channels);
	INSERT INTO todo_kafka.notification_channels AS c (user_id, kind, channels)
		VALUES (p_user_id, p_kind, v)
		ON CONFLICT (user_id, kind) DO UPDATE SET channels = EXCLUDED.channels, updated_at = now();
	RETURN v;
END
$$;

CREATE FUNCTION todo_kafka.notify_default_channels(p_kind text)
	RETURNS text[] LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE p_kind WHEN 'task_created' THEN '{in_app}'::text[]
					   ELSE '{email,in_app,push}'::text[] END
$$;

/* the JSON push gateway (ntfy, an FCM/APNs relay) for this user; NULL removes */
CREATE FUNCTION todo_kafka.set_push_gateway(p_user_id text, p_url text)
	RETURNS text LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v	text;
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	IF p_url IS NOT NULL THEN
		v := todo_kafka.notify_check_url(p_url, 'push gateway');
	END IF;
	INSERT INTO todo_kafka.notification_settings AS s (user_id, push_gateway_url)
		VALUES (p_user_id, v)
		ON CONFLICT (user_id) DO UPDATE SET push_gateway_url = EXCLUDED.push_gateway_url,
											updated_at = now();
	RETURN v;
END
$$;

/*
 * Quiet hours in the user's time zone, [start, end), wrapping midnight when
 * start > end; both NULL removes them.
 */
CREATE FUNCTION todo_kafka.set_quiet_hours(p_user_id text, p_start time, p_end time)
	RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	IF (p_start IS NULL) <> (p_end IS NULL) OR p_start = p_end THEN
		RAISE EXCEPTION 'quiet hours need a start and a different end'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass both times, e.g. ''22:00'' and ''07:00'', or both NULL to remove them.';
	END IF;
	INSERT INTO todo_kafka.notification_settings AS s (user_id, quiet_start, quiet_end)
		VALUES (p_user_id, p_start, p_end)
		ON CONFLICT (user_id) DO UPDATE SET quiet_start = EXCLUDED.quiet_start,
											quiet_end = EXCLUDED.quiet_end, updated_at = now();
	RETURN p_start IS NOT NULL;
END
$$;

/* everything the user set, as JSON (push keys left out) */
CREATE FUNCTION todo_kafka.get_notification_settings(p_user_id text)
	RETURNS jsonb LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s	todo_kafka.notification_settings;
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	SELECT * INTO s FROM todo_kafka.notification_settings WHERE user_id = p_user_id;
	RETURN jsonb_build_object(
		'email', s.email,
		'push_gateway_url', s.push_gateway_url,
		'quiet_hours', CASE WHEN s.quiet_start IS NULL THEN NULL
							ELSE jsonb_build_array(s.quiet_start, s.quiet_end) END,
		'push_subscriptions', (SELECT coalesce(jsonb_agg(p.endpoint ORDER BY p.created_at, p.endpoint), '[]')
								 FROM todo_kafka.push_subscriptions p WHERE p.user_id = p_user_id),
		'channels', (SELECT jsonb_object_agg(k.kind,
							   coalesce(c.channels, todo_kafka.notify_default_channels(k.kind)))
					   FROM (VALUES ('task_created'), ('reminder')) k(kind)
					   LEFT JOIN todo_kafka.notification_channels c
						 ON c.user_id = p_user_id AND c.kind = k.kind),
		'inbox_channel', todo_kafka.inbox_channel(p_user_id));
END
$$;

/*
 * The NOTIFY channel of a user's inbox: LISTEN "<this>" to see new rows.
 * A digest, so any user id gives a valid identifier of fixed length.
 */
CREATE FUNCTION todo_kafka.inbox_channel(p_user_id text)
	RETURNS text LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT 'todo_kafka_inbox_' || left(md5(p_user_id), 24)
$$;

/* the user's inbox, newest first */
CREATE FUNCTION todo_kafka.list_notifications(p_user_id text, p_unread_only boolean DEFAULT false,
											  p_limit integer DEFAULT 50)
	RETURNS SETOF todo_kafka.notifications LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	RETURN QUERY
		SELECT * FROM todo_kafka.notifications n
		 WHERE n.user_id = p_user_id AND (NOT coalesce(p_unread_only, false) OR NOT n.read)
		 ORDER BY n.id DESC
		 LIMIT greatest(coalesce(p_limit, 50), 0);
END
$$;

/* mark one notification read; false if it already was */
CREATE FUNCTION todo_kafka.mark_notification_read(p_user_id text, p_id bigint)
	RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_owner		text;
	v_read		boolean;
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	SELECT user_id, read INTO v_owner, v_read FROM todo_kafka.notifications
	 WHERE id = p_id FOR UPDATE;
	IF NOT FOUND OR v_owner <> p_user_id THEN
		/* another user's notification is as good as absent */
		RAISE EXCEPTION 'notification % not found', p_id USING ERRCODE = 'no_data_found';
	END IF;
	IF v_read THEN
		RETURN false;
	END IF;
	UPDATE todo_kafka.notifications SET read = true, read_at = now() WHERE id = p_id;
	RETURN true;
END
$$;

/* ---------------------------------------------------------------------------
 * Consumer API (todo_kafka_consumer): todo-kafka-notify
 * ------------------------------------------------------------------------- */

/* the due time as the user reads it: 2030-01-02 10:00 CET (Europe/Berlin) */
CREATE FUNCTION todo_kafka.notify_local_time(p_at timestamptz, p_time_zone text)
	RETURNS text LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	SET TimeZone = 'UTC'
AS $$
BEGIN
	PERFORM set_config('TimeZone', coalesce(p_time_zone, 'UTC'), true);
	RETURN to_char(p_at, 'YYYY-MM-DD HH24:MI TZ') || ' (' || coalesce(p_time_zone, 'UTC') || ')';
END
$$;

/*
 * Fan-out: the channels an event goes to and what it says.
 *	 p_kind			task_created | reminder
 *	 p_requested	the reminder's method ({email}); NULL for a new task (the
 *					user's enabled channels)
 *	 p_task_id, p_title, p_due_date	from the event; the task's current
 *					title and due date win when it still exists
 *	 p_late			a reminder fired late ("missed")
 * One row per channel, in channel order; no row = nothing to send (channel
 * disabled, quiet hours).  due_date is RFC 3339 UTC, due_local the due time
 * in the user's zone.
 * Read-only: a redelivered event gets the same answer unless the settings
 * changed in between.
 */
CREATE FUNCTION todo_kafka.notification_plan(p_user_id text, p_kind text, p_requested text[],
											 p_task_id uuid, p_title text,
											 p_due_date timestamptz,
											 p_late boolean DEFAULT false,
											 p_at timestamptz DEFAULT now())
	RETURNS TABLE (channel text, title text, body text, due_date text, due_local text,
				   time_zone text)
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_tz		text;
	v_enabled	text[];
	v_s			todo_kafka.notification_settings;
	v_title		text := p_title;
	v_due		timestamptz := p_due_date;
	v_local		time;
	v_quiet		boolean := false;
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	IF p_kind IS NULL OR p_kind NOT IN ('task_created', 'reminder') THEN
		RAISE EXCEPTION 'unknown notification kind: "%"', p_kind
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The kinds are task_created and reminder.';
	END IF;
	SELECT u.time_zone INTO v_tz FROM todo_kafka.user_settings u WHERE u.user_id = p_user_id;
	SELECT c.channels INTO v_enabled FROM todo_kafka.notification_channels c
	 WHERE c.user_id = p_user_id AND c.kind = p_kind;
	v_enabled := coalesce(v_enabled, todo_kafka.notify_default_channels(p_kind));
	IF p_requested IS NOT NULL THEN
		v_enabled := ARRAY(SELECT x FROM unnest(v_enabled) x WHERE x = ANY (p_requested));
	END IF;
	SELECT * INTO v_s FROM todo_kafka.notification_settings s WHERE s.user_id = p_user_id;
	IF p_kind = 'task_created' AND v_s.quiet_start IS NOT NULL THEN
		v_local := (p_at AT TIME ZONE coalesce(v_tz, 'UTC'))::time;
		v_quiet := CASE WHEN v_s.quiet_start < v_s.quiet_end
						THEN v_local >= v_s.quiet_start AND v_local < v_s.quiet_end
						ELSE v_local >= v_s.quiet_start OR v_local < v_s.quiet_end END;
	END IF;
	IF p_task_id IS NOT NULL THEN
		SELECT t.title, t.due_date INTO v_title, v_due FROM todo_kafka.tasks t
		 WHERE t.id = p_task_id AND t.user_id = p_user_id;
		IF NOT FOUND THEN
			v_title := p_title;
			v_due := p_due_date;
		END IF;
	END IF;
	v_title := coalesce(v_title, 'a task');
	due_date := to_char(v_due AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
	due_local := CASE WHEN v_due IS NULL THEN NULL ELSE todo_kafka.notify_local_time(v_due, v_tz) END;
	time_zone := coalesce(v_tz, 'UTC');
	IF p_kind = 'task_created' THEN
		title := 'New task: ' || v_title;
		body := format('New task "%s" was added.', v_title)
			|| CASE WHEN due_local IS NULL THEN ' It has no due date.'
					ELSE format(' It is due at %s.', due_local) END;
	ELSE
		title := CASE WHEN p_late THEN 'Missed reminder: ' ELSE 'Reminder: ' END || v_title;
		body := format('Reminder: "%s" is due at %s.', v_title, coalesce(due_local, 'no set time'))
			|| CASE WHEN p_late THEN ' (This reminder was delivered late.)' ELSE '' END;
	END IF;
	FOR channel IN SELECT x FROM unnest(v_enabled) x ORDER BY 1 LOOP
		CONTINUE WHEN v_quiet AND channel <> 'in_app';
		RETURN NEXT;
	END LOOP;
END
$$;

/*
 * Delivery: where a channel reaches the user now.
 *	 email	 ('email', address)
 *	 push	 ('webpush', endpoint, p256dh, auth) per subscription, and
 *			 ('gateway', url) when a gateway is set
 *	 in_app	 ('in_app', user id)
 * No row: the user has no target on that channel (nothing to deliver).
 */
CREATE FUNCTION todo_kafka.notification_targets(p_user_id text, p_channel text)
	RETURNS TABLE (mode text, target text, p256dh text, auth text)
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	IF p_channel = 'email' THEN
		RETURN QUERY SELECT 'email', s.email, NULL::text, NULL::text
					   FROM todo_kafka.notification_settings s
					  WHERE s.user_id = p_user_id AND s.email IS NOT NULL;
	ELSIF p_channel = 'push' THEN
		RETURN QUERY SELECT 'webpush', p.endpoint, p.p256dh, p.auth
					   FROM todo_kafka.push_subscriptions p
					  WHERE p.user_id = p_user_id ORDER BY p.created_at, p.endpoint;
		RETURN QUERY SELECT 'gateway', s.push_gateway_url, NULL::text, NULL::text
					   FROM todo_kafka.notification_settings s
					  WHERE s.user_id = p_user_id AND s.push_gateway_url IS NOT NULL;
	ELSIF p_channel = 'in_app' THEN
		RETURN QUERY SELECT 'in_app', p_user_id, NULL::text, NULL::text;
	ELSE
		RAISE EXCEPTION 'unknown notification channel: "%"', p_channel
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The channels are email, push and in_app.';
	END IF;
END
$$;

/*
 * Claim one send (see the header).  Returns
 *	 'claimed'		send it now, then delivery_done() or delivery_retry()
 *	 'delivered', 'gone', 'failed'	done before: skip
 *	 'interrupted'	an earlier attempt died mid-send: skip (at most once),
 *					unless p_take_over
 * Commits nothing itself: the caller runs it in its own transaction (one
 * statement, autocommit) so the claim is durable before the send.
 */
CREATE FUNCTION todo_kafka.delivery_claim(p_notification_id text, p_channel text, p_target text,
										  p_user_id text, p_take_over boolean DEFAULT false)
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
	IF v_status = 'retry' OR (v_status IN ('sending', 'interrupted') AND p_take_over) THEN
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

/* the outcome of a claimed send: delivered, gone (404/410) or failed (permanent) */
CREATE FUNCTION todo_kafka.delivery_done(p_notification_id text, p_channel text, p_target text,
										 p_user_id text, p_status text, p_detail text DEFAULT NULL)
	RETURNS void LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF p_status IS NULL OR p_status NOT IN ('delivered', 'gone', 'failed') THEN
		RAISE EXCEPTION 'invalid delivery outcome: "%"', p_status
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'An outcome is delivered, gone or failed.';
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

/* a claimed send failed without delivering (transient): the next claim sends again */
CREATE FUNCTION todo_kafka.delivery_retry(p_notification_id text, p_channel text, p_target text,
										  p_detail text DEFAULT NULL)
	RETURNS void LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	UPDATE todo_kafka.notification_deliveries d
	   SET status = 'retry', detail = p_detail, finished_at = clock_timestamp()
	 WHERE d.notification_id = p_notification_id AND d.channel = p_channel
	   AND d.target = p_target AND d.status = 'sending'
$$;

/*
 * In-app delivery in one transaction: the inbox row, the delivery log row
 * and a NOTIFY on inbox_channel(user) with the row as JSON (sent at
 * commit).  true = delivered now, false = it already was (nothing done).
 */
CREATE FUNCTION todo_kafka.deliver_in_app(p_notification_id text, p_user_id text, p_kind text,
										  p_task_id uuid, p_title text, p_body text)
	RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n	todo_kafka.notifications;
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	INSERT INTO todo_kafka.notifications (notification_id, user_id, kind, task_id, title, body)
		VALUES (p_notification_id, p_user_id, p_kind, p_task_id,
				left(coalesce(p_title, ''), 500), left(coalesce(p_body, ''), 4000))
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
$$;

/* a push service answered 404/410: forget the subscription (true if it existed) */
CREATE FUNCTION todo_kafka.push_subscription_gone(p_endpoint text)
	RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM todo_kafka.push_subscriptions WHERE endpoint = p_endpoint;
	RETURN FOUND;
END
$$;

/*
 * Retention of the delivery log: rows claimed before p_older_than ago
 * (longer than the topic keeps a message, so no redelivery can need them).
 */
CREATE FUNCTION todo_kafka.purge_notification_deliveries(p_older_than interval DEFAULT '30 days')
	RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n	bigint;
BEGIN
	DELETE FROM todo_kafka.notification_deliveries
	 WHERE claimed_at < now() - p_older_than AND status <> 'sending';
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

/* ---------------------------------------------------------------------------
 * Privileges: nothing for PUBLIC; the app gets the settings and the inbox,
 * the consumer services the delivery functions.  No table is granted.
 * ------------------------------------------------------------------------- */
REVOKE ALL ON todo_kafka.notification_settings, todo_kafka.notification_channels,
	todo_kafka.push_subscriptions, todo_kafka.notifications,
	todo_kafka.notification_deliveries FROM PUBLIC;
REVOKE ALL ON FUNCTION
	todo_kafka.notify_check_user(text),
	todo_kafka.notify_check_b64url(text, integer, text),
	todo_kafka.notify_check_url(text, text),
	todo_kafka.notify_check_channels(text[]),
	todo_kafka.notify_default_channels(text),
	todo_kafka.notify_local_time(timestamptz, text),
	todo_kafka.set_notification_email(text, text),
	todo_kafka.add_push_subscription(text, text, text, text),
	todo_kafka.remove_push_subscription(text, text),
	todo_kafka.set_notification_channels(text, text, text[]),
	todo_kafka.set_push_gateway(text, text),
	todo_kafka.set_quiet_hours(text, time, time),
	todo_kafka.get_notification_settings(text),
	todo_kafka.inbox_channel(text),
	todo_kafka.list_notifications(text, boolean, integer),
	todo_kafka.mark_notification_read(text, bigint),
	todo_kafka.notification_plan(text, text, text[], uuid, text, timestamptz, boolean, timestamptz),
	todo_kafka.notification_targets(text, text),
	todo_kafka.delivery_claim(text, text, text, text, boolean),
	todo_kafka.delivery_done(text, text, text, text, text, text),
	todo_kafka.delivery_retry(text, text, text, text),
	todo_kafka.deliver_in_app(text, text, text, uuid, text, text),
	todo_kafka.push_subscription_gone(text),
	todo_kafka.purge_notification_deliveries(interval)
	FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
	todo_kafka.set_notification_email(text, text),
	todo_kafka.add_push_subscription(text, text, text, text),
	todo_kafka.remove_push_subscription(text, text),
	todo_kafka.set_notification_channels(text, text, text[]),
	todo_kafka.set_push_gateway(text, text),
	todo_kafka.set_quiet_hours(text, time, time),
	todo_kafka.get_notification_settings(text),
	todo_kafka.inbox_channel(text),
	todo_kafka.list_notifications(text, boolean, integer),
	todo_kafka.mark_notification_read(text, bigint)
	TO todo_kafka_app;

GRANT EXECUTE ON FUNCTION
	todo_kafka.notification_plan(text, text, text[], uuid, text, timestamptz, boolean, timestamptz),
	todo_kafka.notification_targets(text, text),
	todo_kafka.delivery_claim(text, text, text, text, boolean),
	todo_kafka.delivery_done(text, text, text, text, text, text),
	todo_kafka.delivery_retry(text, text, text, text),
	todo_kafka.deliver_in_app(text, text, text, uuid, text, text),
	todo_kafka.push_subscription_gone(text),
	todo_kafka.purge_notification_deliveries(interval)
	TO todo_kafka_consumer;

/* ===========================================================================
 * The projector (todo-kafka-project): a read model of tasks built from the
 * task events topic alone, with its Kafka offsets, snapshots and restore.
 *
 * task_view		one row per live task: the columns of tasks as the last
 *					applied event's task_data had them, plus where that
 *					event was read (topic partition and offset).  Columns
 *					are nullable but id: the view keeps what the events
 *					said, and a field an event lacks stays NULL instead of
 *					refusing the event.
 * projection_offsets	per (topic, partition): the next offset to read and
 *					how many events were applied from it.  Written in the
 *					SAME transaction as the view rows (project_apply), so
 *					the pair is exactly-once: a crash before commit loses
 *					both, after commit keeps both; the projector starts each
 *					assigned partition at next_offset (project_offsets),
 *					never at Kafka's committed offset.
 * projection_snapshots, projection_snapshot_rows
 *					a copy of the view (one jsonb per task, so a later
 *					version can add columns without rewriting old
 *					snapshots) with the offsets it corresponds to.
 *
 * Exactly-once, in project_apply():
 *	 1. the batch's partitions are locked in projection_offsets (FOR UPDATE,
 *		in (topic, partition) order, so two callers cannot deadlock);
 *	 2. events below a partition's next_offset were applied already and are
 *		skipped (a redelivery after a crash or a rebalance);
 *	 3. per task only the batch's last event counts: task_data is the whole
 *		row image, so the last image IS the state (a delete removes it);
 *	 4. a task's row is replaced only by a later event: a higher offset of
 *		the same partition, or, from another partition (only after the
 *		topic's partition count changed), a newer or equal updated_at.
 *		So a replay or a redelivery never moves a task backwards.  Deletes
 *		leave no tombstone: an older event of the same task arriving later
 *		from ANOTHER partition would bring it back (documented limit).
 *	 5. next_offset = greatest(next_offset, last offset + 1), events += n.
 * Events of other types or sources count for the offsets but change no
 * task (the projector passes them with "type": null).
 *
 * Snapshots (project_snapshot) first take SHARE lock on projection_offsets:
 * it waits for the applies in flight and blocks new ones until the copy
 * commits, so the rows and offsets of a snapshot belong together.  Then
 * project_restore() puts them back: the view becomes the snapshot's and the
 * offsets its offsets, and the projector replays only what came after.
 * project_reset() empties both for a replay from the start of the topic.
 * ======================================================================== */

CREATE TABLE todo_kafka.task_view (
	id					uuid PRIMARY KEY,
	user_id				text,
	title				text,
	description			text,
	completed			boolean,
	priority			text,
	tags				text[],
	due_date			timestamptz,
	recurrence			text,
	recurrence_day		smallint,
	reminder_offsets	interval[],
	notification_methods text[],
	recurrence_parent	uuid,
	created_at			timestamptz,
	updated_at			timestamptz,
	kafka_topic			text NOT NULL,
	kafka_partition		integer NOT NULL,
	kafka_offset		bigint NOT NULL,
	projected_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);

CREATE INDEX task_view_user_id_idx ON todo_kafka.task_view (user_id, created_at);

CREATE TABLE todo_kafka.projection_offsets (
	topic				text NOT NULL,
	kafka_partition		integer NOT NULL CHECK (kafka_partition >= 0),
	next_offset			bigint NOT NULL CHECK (next_offset >= 0),
	events				bigint NOT NULL DEFAULT 0,	/* applied or skipped as not ours */
	updated_at			timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	PRIMARY KEY (topic, kafka_partition)
);

CREATE TABLE todo_kafka.projection_snapshots (
	id					bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	taken_at			timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	offsets				jsonb NOT NULL,		/* [{topic, partition, next_offset, events}] */
	tasks				bigint NOT NULL
);

CREATE TABLE todo_kafka.projection_snapshot_rows (
	snapshot_id			bigint NOT NULL
		REFERENCES todo_kafka.projection_snapshots (id) ON DELETE CASCADE,
	task_id				uuid NOT NULL,
	data				jsonb NOT NULL,		/* to_jsonb(task_view row) */
	PRIMARY KEY (snapshot_id, task_id)
);

COMMENT ON TABLE todo_kafka.task_view IS
	'read model of tasks built by todo-kafka-project from the task events topic';
COMMENT ON TABLE todo_kafka.projection_offsets IS
	'next Kafka offset of each task events partition, committed with the task_view rows';
COMMENT ON TABLE todo_kafka.projection_snapshots IS
	'snapshots of task_view with their offsets (project_snapshot, project_restore)';

/*
 * project_apply(topic, events): apply one batch, store its offsets; returns
 * the number of events newly applied (redeliveries not counted).
 * events: [{"partition": int, "offset": bigint, "type": text or null,
 *			 "task_id": uuid, "task_data": object}, ...]
 * type: created, updated, completed, recurring-created (upsert) or deleted;
 * null: not a task change, only its offset counts.
 */
CREATE FUNCTION todo_kafka.project_apply(p_topic text, p_events jsonb)
	RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_applied	integer;
BEGIN
	IF p_topic IS NULL OR jsonb_typeof(p_events) IS DISTINCT FROM 'array' THEN
		RAISE EXCEPTION 'project_apply needs a topic and a JSON array of events'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_events) e
				WHERE jsonb_typeof(e->'partition') IS DISTINCT FROM 'number'
				   OR jsonb_typeof(e->'offset') IS DISTINCT FROM 'number'
				   OR (e->>'partition')::numeric < 0 OR (e->>'offset')::numeric < 0
				   OR (e->>'type' IS NOT NULL
					   AND (e->>'task_id' IS NULL
							OR e->>'type' NOT IN ('created', 'updated', 'completed',
												  'recurring-created', 'deleted')
							OR (e->>'type' <> 'deleted'
								AND jsonb_typeof(e->'task_data') IS DISTINCT FROM 'object')))) THEN
		RAISE EXCEPTION 'invalid projection event batch'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Every event needs a partition and an offset; a task change also a task_id, a known type and a task_data object.';
	END IF;

	/* 1. lock the batch's partitions (created at 0 when new), lowest first */
	INSERT INTO todo_kafka.projection_offsets (topic, kafka_partition, next_offset)
	SELECT DISTINCT p_topic, (e->>'partition')::integer, 0
	  FROM jsonb_array_elements(p_events) e
	ORDER BY 2
	ON CONFLICT (topic, kafka_partition) DO NOTHING;
	PERFORM 1 FROM todo_kafka.projection_offsets o
	  WHERE o.topic = p_topic
		AND o.kafka_partition IN (SELECT (e->>'partition')::integer
									FROM jsonb_array_elements(p_events) e)
	  ORDER BY o.kafka_partition FOR UPDATE;

	/* 2-5 in one statement, which sees the offsets as locked above */
	WITH batch AS (
		SELECT (e->>'partition')::integer AS kafka_partition,
			   (e->>'offset')::bigint AS kafka_offset, e->>'type' AS type,
			   (e->>'task_id')::uuid AS task_id, e->'task_data' AS task_data
		  FROM jsonb_array_elements(p_events) e
	), fresh AS (					/* 2. not applied yet */
		SELECT b.* FROM batch b
		  JOIN todo_kafka.projection_offsets o
			ON o.topic = p_topic AND o.kafka_partition = b.kafka_partition
		 WHERE b.kafka_offset >= o.next_offset
	), last AS (					/* 3. per task, the batch's last event */
		SELECT DISTINCT ON (f.task_id) f.*,
			   (f.task_data->>'updated_at')::timestamptz AS updated_at
		  FROM fresh f WHERE f.type IS NOT NULL
		 ORDER BY f.task_id, f.kafka_offset DESC, f.kafka_partition DESC
	), del AS (						/* 4. deletes that move a task forward */
		DELETE FROM todo_kafka.task_view v
		 USING last l
		 WHERE l.type = 'deleted' AND v.id = l.task_id
		   AND CASE WHEN v.kafka_topic = p_topic AND v.kafka_partition = l.kafka_partition
					THEN v.kafka_offset < l.kafka_offset
					ELSE v.updated_at IS NULL OR l.updated_at IS NULL
						 OR v.updated_at <= l.updated_at END
		RETURNING 1
	), ups AS (						/* 4. upserts that move a task forward */
		INSERT INTO todo_kafka.task_view AS v
			(id, user_id, title, description, completed, priority, tags, due_date,
			 recurrence, recurrence_day, reminder_offsets, notification_methods,
			 recurrence_parent, created_at, updated_at, kafka_topic, kafka_partition,
			 kafka_offset, projected_at)
		SELECT l.task_id, r.user_id, r.title, r.description, r.completed, r.priority, r.tags,
			   r.due_date, r.recurrence, r.recurrence_day, r.reminder_offsets,
			   r.notification_methods, r.recurrence_parent, r.created_at, r.updated_at,
			   p_topic, l.kafka_partition, l.kafka_offset, clock_timestamp()
		  FROM last l,
			   LATERAL jsonb_populate_record(NULL::todo_kafka.task_view, l.task_data) r
		 WHERE l.type <> 'deleted'
		ON CONFLICT (id) DO UPDATE
		   SET user_id = EXCLUDED.user_id, title = EXCLUDED.title,
			   description = EXCLUDED.description, completed = EXCLUDED.completed,
			   priority = EXCLUDED.priority, tags = EXCLUDED.tags, due_date = EXCLUDED.due_date,
			   recurrence = EXCLUDED.recurrence, recurrence_day = EXCLUDED.recurrence_day,
			   reminder_offsets = EXCLUDED.reminder_offsets,
			   notification_methods = EXCLUDED.notification_methods,
			   recurrence_parent = EXCLUDED.recurrence_parent, created_at = EXCLUDED.created_at,
			   updated_at = EXCLUDED.updated_at, kafka_topic = EXCLUDED.kafka_topic,
			   kafka_partition = EXCLUDED.kafka_partition, kafka_offset = EXCLUDED.kafka_offset,
			   projected_at = EXCLUDED.projected_at
		 WHERE CASE WHEN v.kafka_topic = EXCLUDED.kafka_topic
						 AND v.kafka_partition = EXCLUDED.kafka_partition
					THEN v.kafka_offset < EXCLUDED.kafka_offset
					ELSE v.updated_at IS NULL OR EXCLUDED.updated_at IS NULL
						 OR v.updated_at <= EXCLUDED.updated_at END
		RETURNING 1
	), offs AS (					/* 5. the offsets, in the same transaction */
		UPDATE todo_kafka.projection_offsets o
		   SET next_offset = greatest(o.next_offset, s.last + 1),
			   events = o.events + s.n,
			   updated_at = clock_timestamp()
		  FROM (SELECT f.kafka_partition, max(f.kafka_offset) AS last, count(*) AS n
				  FROM fresh f GROUP BY f.kafka_partition) s
		 WHERE o.topic = p_topic AND o.kafka_partition = s.kafka_partition
		RETURNING 1
	)
	SELECT count(*) INTO v_applied FROM fresh;
	RETURN v_applied;
END
$$;

/* where to start each partition of a topic: (partition, next_offset) */
CREATE FUNCTION todo_kafka.project_offsets(p_topic text)
	RETURNS TABLE (kafka_partition integer, next_offset bigint, events bigint)
	LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT o.kafka_partition, o.next_offset, o.events FROM todo_kafka.projection_offsets o
	 WHERE o.topic = p_topic ORDER BY o.kafka_partition;
$$;

/* a snapshot of the view and its offsets; prunes to the newest p_keep */
CREATE FUNCTION todo_kafka.project_snapshot(p_keep integer DEFAULT 3)
	RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_id		bigint;
	v_tasks		bigint;
BEGIN
	IF p_keep IS NULL OR p_keep < 1 THEN
		RAISE EXCEPTION 'snapshots to keep must be at least 1, not %', p_keep
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	/* no apply in flight or starting until this commits (see the header) */
	LOCK TABLE todo_kafka.projection_offsets IN SHARE MODE;
	INSERT INTO todo_kafka.projection_snapshots (offsets, tasks)
	SELECT coalesce(jsonb_agg(jsonb_build_object('topic', o.topic, 'partition', o.kafka_partition,
												  'next_offset', o.next_offset, 'events', o.events)
							  ORDER BY o.topic, o.kafka_partition), '[]'),
		   (SELECT count(*) FROM todo_kafka.task_view)
	  FROM todo_kafka.projection_offsets o
	RETURNING id, tasks INTO v_id, v_tasks;
	INSERT INTO todo_kafka.projection_snapshot_rows (snapshot_id, task_id, data)
	SELECT v_id, v.id, to_jsonb(v) FROM todo_kafka.task_view v;
	PERFORM todo_kafka.project_prune_snapshots(p_keep);
	RETURN v_id;
END
$$;

/* delete all but the newest p_keep snapshots; returns how many went */
CREATE FUNCTION todo_kafka.project_prune_snapshots(p_keep integer DEFAULT 3)
	RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_count		integer;
BEGIN
	IF p_keep IS NULL OR p_keep < 1 THEN
		RAISE EXCEPTION 'snapshots to keep must be at least 1, not %', p_keep
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	DELETE FROM todo_kafka.projection_snapshots s
	 WHERE s.id NOT IN (SELECT k.id FROM todo_kafka.projection_snapshots k
						 ORDER BY k.id DESC LIMIT p_keep);
	GET DIAGNOSTICS v_count = ROW_COUNT;
	RETURN v_count;
END
$$;

/* the snapshots, newest first, with their offsets */
CREATE FUNCTION todo_kafka.project_snapshots()
	RETURNS TABLE (id bigint, taken_at timestamptz, tasks bigint, offsets jsonb)
	LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT s.id, s.taken_at, s.tasks, s.offsets FROM todo_kafka.projection_snapshots s
	 ORDER BY s.id DESC;
$$;

/* make the view and offsets those of a snapshot (default: the newest) */
CREATE FUNCTION todo_kafka.project_restore(p_snapshot_id bigint DEFAULT NULL)
	RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_id		bigint;
	v_offsets	jsonb;
BEGIN
	SELECT s.id, s.offsets INTO v_id, v_offsets FROM todo_kafka.projection_snapshots s
	 WHERE p_snapshot_id IS NULL OR s.id = p_snapshot_id
	 ORDER BY s.id DESC LIMIT 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION '%', CASE WHEN p_snapshot_id IS NULL THEN 'there is no projection snapshot'
							 ELSE format('projection snapshot %s does not exist', p_snapshot_id) END
			USING ERRCODE = 'no_data_found',
				  HINT = 'Take one with todo-kafka-project --snapshot, or rebuild with --replay.';
	END IF;
	LOCK TABLE todo_kafka.projection_offsets IN EXCLUSIVE MODE;
	TRUNCATE todo_kafka.task_view;
	DELETE FROM todo_kafka.projection_offsets;
	INSERT INTO todo_kafka.task_view
	SELECT r.* FROM todo_kafka.projection_snapshot_rows s,
		   LATERAL jsonb_populate_record(NULL::todo_kafka.task_view, s.data) r
	 WHERE s.snapshot_id = v_id;
	INSERT INTO todo_kafka.projection_offsets (topic, kafka_partition, next_offset, events)
	SELECT o->>'topic', (o->>'partition')::integer, (o->>'next_offset')::bigint,
		   coalesce((o->>'events')::bigint, 0)
	  FROM jsonb_array_elements(v_offsets) o;
	RETURN v_id;
END
$$;

/* empty the view and the offsets: the next start reads from the beginning */
CREATE FUNCTION todo_kafka.project_reset()
	RETURNS void LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	LOCK TABLE todo_kafka.projection_offsets IN EXCLUSIVE MODE;
	TRUNCATE todo_kafka.task_view;
	DELETE FROM todo_kafka.projection_offsets;
END
$$;

REVOKE ALL ON todo_kafka.task_view, todo_kafka.projection_offsets,
	todo_kafka.projection_snapshots, todo_kafka.projection_snapshot_rows FROM PUBLIC;
REVOKE ALL ON FUNCTION
	todo_kafka.project_apply(text, jsonb),
	todo_kafka.project_offsets(text),
	todo_kafka.project_snapshot(integer),
	todo_kafka.project_prune_snapshots(integer),
	todo_kafka.project_snapshots(),
	todo_kafka.project_restore(bigint),
	todo_kafka.project_reset()
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	todo_kafka.project_apply(text, jsonb),
	todo_kafka.project_offsets(text),
	todo_kafka.project_snapshot(integer),
	todo_kafka.project_prune_snapshots(integer),
	todo_kafka.project_snapshots(),
	todo_kafka.project_restore(bigint),
	todo_kafka.project_reset()
	TO todo_kafka_consumer;
/* the read model is for reading: the application and auditors */
GRANT SELECT ON todo_kafka.task_view TO todo_kafka_app, todo_kafka_auditor, todo_kafka_consumer;
GRANT SELECT ON todo_kafka.projection_offsets, todo_kafka.projection_snapshots
	TO todo_kafka_auditor;

/* ===========================================================================
 * The dead-letter tool (todo-kafka-dlq): which dead letters an operator
 * replayed, the relay's poison rows put back into the outbox, and purges.
 *
 * A dead letter is named by where it lies:
 *	 "<partition>:<offset>"	a message of the dead-letter topic (consumer
 *							services' and the relay's dead letters);
 *	 "db:<id>"				a row of todo_kafka.dead_letters (the relay's
 *							poison outbox rows, kept whole).
 * dead_letter_replays records each replay under that name.  The tool calls
 * dlq_claim_replay() in a transaction, produces the message, waits for
 * Kafka's acknowledgement and only then commits: so a replay that Kafka
 * did not take leaves no record, and two operators replaying the same dead
 * letter at once are serialized by the row lock (the second one is refused
 * once the first commits).  A second replay is refused unless forced; a
 * forced one counts up "replays".
 *
 * dlq_requeue_outbox() puts a poison row back into the outbox as a new row
 * (new id, the committing transaction's xid, the same event_id, so
 * consumers that already saw some of its messages drop the repeats) and
 * records the replay in the same transaction.
 *
 * Purge: dlq_purge() deletes dead_letters rows and replay records older
 * than the interval and remembers, per partition of the dead-letter topic,
 * the first offset to keep (dead_letter_purges), so the tool no longer
 * lists what was purged; Kafka's retention (or DeleteRecords, which the
 * tool also asks for) removes the messages themselves.
 * ======================================================================== */

CREATE TABLE todo_kafka.dead_letter_replays (
	dead_letter			text PRIMARY KEY,	/* "<partition>:<offset>" or "db:<id>" */
	origin_topic		text,
	origin_partition	integer,
	origin_offset		bigint,
	event_id			text,
	replays				integer NOT NULL DEFAULT 1 CHECK (replays >= 1),
	first_replayed_at	timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	last_replayed_at	timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	replayed_by			text NOT NULL DEFAULT session_user
);

CREATE TABLE todo_kafka.dead_letter_purges (
	topic				text NOT NULL,
	kafka_partition		integer NOT NULL CHECK (kafka_partition >= 0),
	keep_from_offset	bigint NOT NULL CHECK (keep_from_offset >= 0),
	purged_at			timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	PRIMARY KEY (topic, kafka_partition)
);

COMMENT ON TABLE todo_kafka.dead_letter_replays IS
	'dead letters replayed by todo-kafka-dlq (a second replay needs --force)';

/*
 * Claim the replay of one dead letter; call inside the transaction that
 * commits once Kafka acknowledged the replayed message.  Refuses (SQLSTATE
 * 23505) a dead letter replayed before, unless p_force.
 */
CREATE FUNCTION todo_kafka.dlq_claim_replay(p_dead_letter text, p_origin_topic text,
											p_origin_partition integer, p_origin_offset bigint,
											p_event_id text, p_force boolean DEFAULT false)
	RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
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
	RETURN v_prev.replays + 1;
END
$$;

/* replay records, for listing (all of them; the tool matches by name) */
CREATE FUNCTION todo_kafka.dlq_replays()
	RETURNS SETOF todo_kafka.dead_letter_replays
	LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT * FROM todo_kafka.dead_letter_replays r ORDER BY r.dead_letter;
$$;

/* the relay's poison rows, oldest first */
CREATE FUNCTION todo_kafka.dlq_table_rows()
	RETURNS TABLE (id bigint, outbox_id bigint, event_id uuid, topic text, reason text,
				   row_data json, failed_at timestamptz)
	LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT d.id, d.outbox_id, d.event_id, d.topic, d.reason, d.row_data, d.failed_at
	  FROM todo_kafka.dead_letters d ORDER BY d.id;
$$;

/* put a poison row back into the outbox as a new row; returns its id */
CREATE FUNCTION todo_kafka.dlq_requeue_outbox(p_id bigint, p_force boolean DEFAULT false)
	RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_dl		todo_kafka.dead_letters;
	v_row		todo_kafka.outbox;
	v_new		bigint;
BEGIN
	SELECT * INTO v_dl FROM todo_kafka.dead_letters d WHERE d.id = p_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'dead letter db:% does not exist', p_id
			USING ERRCODE = 'no_data_found';
	END IF;
	v_row := json_populate_record(NULL::todo_kafka.outbox, v_dl.row_data);
	PERFORM todo_kafka.dlq_claim_replay('db:' || p_id, v_dl.topic, NULL, NULL,
										v_dl.event_id::text, p_force);
	INSERT INTO todo_kafka.outbox (event_id, kind, stream, event_type, source, key, user_id,
								   actor, correlation_id, traceparent, before, after, changed,
								   headers, occurred_at, db_role)
	VALUES (v_row.event_id, v_row.kind, v_row.stream, v_row.event_type, v_row.source, v_row.key,
			v_row.user_id, v_row.actor, v_row.correlation_id, v_row.traceparent, v_row.before,
			v_row.after, v_row.changed, v_row.headers,
			coalesce(v_row.occurred_at, clock_timestamp()), v_row.db_role)
	RETURNING id INTO v_new;
	RETURN v_new;
END
$$;

/*
 * Forget dead letters older than p_older_than: delete dead_letters rows and
 * replay records, and remember where each partition of the dead-letter
 * topic now starts (p_keep_from: {"<partition>": first offset to keep},
 * computed by the tool from the messages' times).  Returns the rows deleted.
 */
CREATE FUNCTION todo_kafka.dlq_purge(p_older_than interval, p_topic text DEFAULT NULL,
									 p_keep_from jsonb DEFAULT '{}')
	RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
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
	RETURN v_count;
END
$$;

/* where each partition of the dead-letter topic starts for the tool */
CREATE FUNCTION todo_kafka.dlq_purged(p_topic text)
	RETURNS TABLE (kafka_partition integer, keep_from_offset bigint)
	LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT p.kafka_partition, p.keep_from_offset FROM todo_kafka.dead_letter_purges p
	 WHERE p.topic = p_topic ORDER BY 1;
$$;

/* the operator's role: whoever may replay dead letters */
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'todo_kafka_operator') THEN
		CREATE ROLE todo_kafka_operator NOLOGIN;
	END IF;
END
$roles$;
GRANT USAGE ON SCHEMA todo_kafka TO todo_kafka_operator;

REVOKE ALL ON todo_kafka.dead_letter_replays, todo_kafka.dead_letter_purges FROM PUBLIC;
REVOKE ALL ON FUNCTION
	todo_kafka.dlq_claim_replay(text, text, integer, bigint, text, boolean),
	todo_kafka.dlq_replays(),
	todo_kafka.dlq_table_rows(),
	todo_kafka.dlq_requeue_outbox(bigint, boolean),
	todo_kafka.dlq_purge(interval, text, jsonb),
	todo_kafka.dlq_purged(text)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	todo_kafka.dlq_claim_replay(text, text, integer, bigint, text, boolean),
	todo_kafka.dlq_replays(),
	todo_kafka.dlq_table_rows(),
	todo_kafka.dlq_requeue_outbox(bigint, boolean),
	todo_kafka.dlq_purge(interval, text, jsonb),
	todo_kafka.dlq_purged(text),
	todo_kafka.topic_of(text)
	TO todo_kafka_operator;
GRANT SELECT ON todo_kafka.dead_letter_replays TO todo_kafka_auditor;
