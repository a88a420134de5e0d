/*
 * todo_kafka--0.2.0--0.3.0.sql
 *	  upgrade script: the audit trail for the audit consumer service
 *	  (todo-kafka-audit), and the database role on every outbox row.
 *
 * A fresh CREATE EXTENSION installs 0.1.0 and then runs 0.1.0--0.2.0 and
 * this script, so it is the only definition of everything below.
 *
 * Who.  outbox.db_role is session_user at capture (set by the module,
 * extension/outbox.c): the role that really made the change, which the
 * application cannot forge, unlike the actor it claims through the
 * todo_kafka.actor setting.  The relay carries it into the audit record
 * ("db_role", right after "actor"); rows written before 0.3.0 carry null.
 * publish() refuses the audit stream (extension/publish.c), so every audit
 * record on Kafka was made by the relay from a captured change.
 *
 * The audit log.  todo-kafka-audit consumes todo.audit.log and hands
 * batches to audit_append() as it got them from Kafka.  Each entry belongs
 * to a chain (= the Kafka partition it came from, so a chain is appended in
 * offset order by the one consumer that owns the partition) and carries
 *	 seq		1, 2, 3 ... within its chain
 *	 prev_hash	the hash of the chain's previous entry (NULL for the first)
 *	 hash		sha256(prev_hash || audit_canonical(entry))
 * audit_chains holds each chain's head (last seq and hash) and the anchor
 * left by the retention purge (seq and hash of the last purged entry).
 * verify_audit() recomputes every hash and link, so an edited entry, a
 * deleted one (middle or tail) or an edited head is found; it names the
 * first broken link of each chain.
 *
 * Idempotency: an event id already present is skipped, so a redelivered
 * record neither duplicates an entry nor extends its chain; replays and
 * rebalances therefore leave the chains intact.
 *
 * Append-only: a BEFORE UPDATE/DELETE row trigger and a TRUNCATE trigger
 * refuse every change (even the owner's), except the deletes that
 * purge_audit() makes while it has todo_kafka.audit_purge on for its
 * transaction (a superuser-only setting the module defines).  A superuser
 * can always get past triggers (ALTER TABLE ... DISABLE TRIGGER,
 * session_replication_role) or edit the files; verify_audit() is what
 * detects that.
 *
 * Locking: audit_append() and purge_audit() lock the chain heads they touch
 * (SELECT ... FOR UPDATE, lowest chain first, so two callers cannot
 * deadlock); entries of one chain are therefore appended one caller at a
 * time and purges never interleave with appends.
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION todo_kafka UPDATE TO '0.3.0'" to load this file. \quit

/* ---------------------------------------------------------------------------
 * Role of the consumer services (granted to the login role they use)
 * ------------------------------------------------------------------------- */
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'todo_kafka_consumer') THEN
		CREATE ROLE todo_kafka_consumer NOLOGIN;
	END IF;
END
$roles$;

GRANT USAGE ON SCHEMA todo_kafka TO todo_kafka_consumer;

/* ---------------------------------------------------------------------------
 * The outbox records the database role (see the header)
 * ------------------------------------------------------------------------- */
ALTER TABLE todo_kafka.outbox ADD COLUMN db_role text;
COMMENT ON COLUMN todo_kafka.outbox.db_role IS
	'session_user when the row was written: the database role that made the change (NULL for rows written before 0.3.0)';

/* the Kafka topic of a logical stream */
CREATE FUNCTION todo_kafka.topic_of(p_stream text)
	RETURNS text LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_topic		text;
BEGIN
	SELECT t.topic INTO v_topic FROM todo_kafka.topics t WHERE t.stream = p_stream;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown stream "%"', p_stream
			USING ERRCODE = 'undefined_object',
				  HINT = 'The streams are the rows of todo_kafka.topics.';
	END IF;
	RETURN v_topic;
END
$$;

/* ---------------------------------------------------------------------------
 * The audit log and its chain heads
 * ------------------------------------------------------------------------- */
CREATE TABLE todo_kafka.audit_log (
	id					bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	chain				integer NOT NULL CHECK (chain >= 0),	/* = kafka_partition */
	seq					bigint NOT NULL CHECK (seq >= 1),
	event_id			uuid NOT NULL UNIQUE,
	actor				text,			/* the user identity the application claims */
	db_role				text,			/* session_user at capture */
	operation			text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
	event_type			text NOT NULL,
	table_name			text,
	task_id				text,
	user_id				text,
	before				jsonb,
	after				jsonb,
	changed_fields		text[],
	correlation_id		text,
	txid				bigint,
	occurred_at			timestamptz NOT NULL,	/* event time */
	recorded_at			timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),	/* ingest time */
	kafka_topic			text,
	kafka_partition		integer NOT NULL,
	kafka_offset		bigint NOT NULL,
	prev_hash			bytea,
	hash				bytea NOT NULL,
	CONSTRAINT audit_log_chain_seq_key UNIQUE (chain, seq)
);

/*
 * search_audit(): one index per filter, in its newest-first order (id breaks
 * ties, so a search reads the index backwards and stops at the limit, with
 * no sort); verify_audit() and purge_audit() use (chain, seq).
 */
CREATE INDEX audit_log_user_id_idx ON todo_kafka.audit_log (user_id, occurred_at, id);
CREATE INDEX audit_log_task_id_idx ON todo_kafka.audit_log (task_id, occurred_at, id);
CREATE INDEX audit_log_actor_idx ON todo_kafka.audit_log (actor, occurred_at, id);
CREATE INDEX audit_log_occurred_at_idx ON todo_kafka.audit_log (occurred_at, id);

CREATE TABLE todo_kafka.audit_chains (
	chain				integer PRIMARY KEY CHECK (chain >= 0),
	last_seq			bigint NOT NULL DEFAULT 0,	/* seq of the chain's last entry */
	last_hash			bytea,						/* its hash */
	anchor_seq			bigint NOT NULL DEFAULT 0,	/* last purged entry: seq */
	anchor_hash			bytea,						/* and hash (NULL: none purged) */
	CHECK (anchor_seq <= last_seq)
);

COMMENT ON TABLE todo_kafka.audit_log IS
	'append-only, hash-chained audit trail written by todo-kafka-audit through audit_append()';
COMMENT ON TABLE todo_kafka.audit_chains IS
	'head of each audit chain (= Kafka partition) and the anchor left by purge_audit()';

/* the audit trail is data: pg_dump keeps it */
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.audit_chains', '');

/* ---------------------------------------------------------------------------
 * Hashing (internal: granted to nobody)
 *
 * The canonical text of an entry is a JSON array of every column but id,
 * prev_hash and hash, behind a format tag.  It is unambiguous: strings are
 * JSON-escaped, SQL NULL is null and never "" (jsonb columns go in as the
 * string of their canonical jsonb text, so SQL NULL and a JSON null differ
 * too), and times are rendered in UTC with microseconds whatever the
 * session's TimeZone or DateStyle.  Anyone can recompute a hash from a
 * row with these two functions.
 * ------------------------------------------------------------------------- */
CREATE FUNCTION todo_kafka.audit_canonical(a todo_kafka.audit_log)
	RETURNS text LANGUAGE sql STABLE
AS $$
	SELECT pg_catalog.jsonb_build_array(
		'todo_kafka.audit_log/1', a.chain, a.seq, a.event_id::text,
		a.actor, a.db_role, a.operation, a.event_type, a.table_name,
		a.task_id, a.user_id, a.before::text, a.after::text,
		pg_catalog.to_jsonb(a.changed_fields), a.correlation_id, a.txid,
		pg_catalog.to_char(a.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
		pg_catalog.to_char(a.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
		a.kafka_topic, a.kafka_partition, a.kafka_offset)::text
$$;

CREATE FUNCTION todo_kafka.audit_hash(p_prev_hash bytea, a todo_kafka.audit_log)
	RETURNS bytea LANGUAGE sql STABLE
AS $$
	SELECT pg_catalog.sha256(coalesce(p_prev_hash, '\x'::bytea)
							 || pg_catalog.convert_to(todo_kafka.audit_canonical(a), 'UTF8'))
$$;

/* ---------------------------------------------------------------------------
 * audit_append(records): the consumer's batch insert
 * ------------------------------------------------------------------------- */

/*
 * One element of audit_append()'s array as an audit_log row (chain, origin
 * and content; seq, hashes and recorded_at are set by audit_append), or
 * 22023 naming the field and the element's array index (from 0).
 * Exception-free checks only (no subtransaction per record).
 */
CREATE FUNCTION todo_kafka.audit_record(p_record jsonb, p_index integer)
	RETURNS todo_kafka.audit_log LANGUAGE plpgsql STABLE
AS $$
DECLARE
	d			jsonb := p_record -> 'data';
	v_ts		text := d ->> 'timestamp';
	v_ts_ok		boolean;
	v_uuid_ok	boolean;
	v_odd_field	boolean := false;
	v_bad		text;
	v_hint		text;
	v_field		text;
	r			todo_kafka.audit_log;
BEGIN
	/* RFC 3339 by shape, then each field's range (no cast can fail later) */
	v_ts_ok := coalesce(jsonb_typeof(d -> 'timestamp') = 'string'
		AND v_ts ~ '^\d\d\d\d-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)$',
		false);
	IF v_ts_ok THEN
		v_ts_ok := substr(v_ts, 1, 4)::integer >= 1
			AND substr(v_ts, 6, 2)::integer BETWEEN 1 AND 12
			AND substr(v_ts, 9, 2)::integer BETWEEN 1 AND
				extract(day FROM make_date(substr(v_ts, 1, 4)::integer, substr(v_ts, 6, 2)::integer, 1)
								 + interval '1 month - 1 day')
			AND substr(v_ts, 12, 2)::integer < 24
			AND substr(v_ts, 15, 2)::integer < 60
			AND substr(v_ts, 18, 2)::integer <= 60
			AND (upper(right(v_ts, 1)) = 'Z'
				 OR (substr(right(v_ts, 5), 1, 2)::integer < 24 AND right(v_ts, 2)::integer < 60));
	END IF;
	/* the canonical 8-4-4-4-12 form, checked without a (slow) counted regex */
	v_uuid_ok := coalesce(jsonb_typeof(d -> 'event_id') = 'string'
		AND length(d ->> 'event_id') = 36
		AND (d ->> 'event_id') ~ '^[0-9a-fA-F]+-[0-9a-fA-F]+-[0-9a-fA-F]+-[0-9a-fA-F]+-[0-9a-fA-F]+$'
		AND substr(d ->> 'event_id', 9, 1) = '-' AND substr(d ->> 'event_id', 14, 1) = '-'
		AND substr(d ->> 'event_id', 19, 1) = '-' AND substr(d ->> 'event_id', 24, 1) = '-',
		false);
	IF jsonb_typeof(d -> 'changed_fields') = 'array' THEN
		v_odd_field := jsonb_path_exists(d -> 'changed_fields', '$[*] ? (@.type() != "string")');
	END IF;

	IF jsonb_typeof(p_record) IS DISTINCT FROM 'object' THEN
		v_bad := 'record';
		v_hint := 'Each element is {"topic": ..., "partition": ..., "offset": ..., "data": {...}}.';
	ELSIF jsonb_typeof(p_record -> 'partition') IS DISTINCT FROM 'number'
		  OR (p_record ->> 'partition') !~ '^[0-9]{1,9}$' THEN
		v_bad := 'partition';
		v_hint := 'The Kafka partition is a whole number from 0.';
	ELSIF jsonb_typeof(p_record -> 'offset') IS DISTINCT FROM 'number'
		  OR (p_record ->> 'offset') !~ '^[0-9]{1,18}$' THEN
		v_bad := 'offset';
		v_hint := 'The Kafka offset is a whole number from 0.';
	ELSIF coalesce(jsonb_typeof(p_record -> 'topic'), 'null') NOT IN ('string', 'null') THEN
		v_bad := 'topic';
		v_hint := 'The Kafka topic is a string.';
	ELSIF jsonb_typeof(d) IS DISTINCT FROM 'object' THEN
		v_bad := 'data';
		v_hint := 'data is the audit message''s data object.';
	ELSIF NOT v_uuid_ok THEN
		v_bad := 'data.event_id';
		v_hint := 'The event id is a uuid string.';
	ELSIF jsonb_typeof(d -> 'operation') IS DISTINCT FROM 'string'
		  OR (d ->> 'operation') NOT IN ('INSERT', 'UPDATE', 'DELETE') THEN
		v_bad := 'data.operation';
		v_hint := 'The operation is INSERT, UPDATE or DELETE.';
	ELSIF jsonb_typeof(d -> 'event_type') IS DISTINCT FROM 'string'
		  OR length(d ->> 'event_type') = 0 THEN
		v_bad := 'data.event_type';
		v_hint := 'The event type is a non-empty string.';
	ELSIF NOT v_ts_ok THEN
		v_bad := 'data.timestamp';
		v_hint := 'The event time is an RFC 3339 string, e.g. "2026-01-22T10:00:00.000001Z".';
	ELSIF coalesce(jsonb_typeof(d -> 'txid'), 'null') <> 'null'
		  AND (d ->> 'txid') !~ '^[0-9]{1,18}$' THEN
		v_bad := 'data.txid';
		v_hint := 'The transaction id is a whole number.';
	ELSIF coalesce(jsonb_typeof(d -> 'before'), 'null') NOT IN ('object', 'null') THEN
		v_bad := 'data.before';
		v_hint := 'A row image is a JSON object or null.';
	ELSIF coalesce(jsonb_typeof(d -> 'after'), 'null') NOT IN ('object', 'null') THEN
		v_bad := 'data.after';
		v_hint := 'A row image is a JSON object or null.';
	ELSIF coalesce(jsonb_typeof(d -> 'changed_fields'), 'null') NOT IN ('array', 'null')
		  OR v_odd_field THEN
		v_bad := 'data.changed_fields';
		v_hint := 'changed_fields is an array of column names or null.';
	ELSE
		FOREACH v_field IN ARRAY ARRAY['actor', 'db_role', 'table', 'task_id', 'user_id', 'correlation_id']
		LOOP
			IF coalesce(jsonb_typeof(d -> v_field), 'null') NOT IN ('string', 'null') THEN
				v_bad := 'data.' || v_field;
				v_hint := v_field || ' is a string or null.';
				EXIT;
			END IF;
		END LOOP;
	END IF;
	IF v_bad IS NOT NULL THEN
		RAISE EXCEPTION 'invalid audit record at array index %: "%" is missing or invalid', p_index, v_bad
			USING ERRCODE = 'invalid_parameter_value', HINT = v_hint;
	END IF;

	/* JSON null becomes SQL NULL; changed_fields becomes text[] */
	r := jsonb_populate_record(NULL::todo_kafka.audit_log, jsonb_build_object(
		'chain', p_record -> 'partition', 'kafka_partition', p_record -> 'partition',
		'kafka_offset', p_record -> 'offset', 'kafka_topic', p_record -> 'topic',
		'event_id', d -> 'event_id', 'actor', d -> 'actor', 'db_role', d -> 'db_role',
		'operation', d -> 'operation', 'event_type', d -> 'event_type',
		'table_name', d -> 'table', 'task_id', d -> 'task_id', 'user_id', d -> 'user_id',
		'before', d -> 'before', 'after', d -> 'after', 'changed_fields', d -> 'changed_fields',
		'correlation_id', d -> 'correlation_id', 'txid', d -> 'txid', 'occurred_at', d -> 'timestamp'));
	RETURN r;
END
$$;

/*
 * p_records: [{"topic": text, "partition": int, "offset": bigint,
 *				"data": <the relay's audit message data>}, ...]
 * Validates every element first (22023 on the first bad one, nothing
 * written), locks the heads of the chains involved, then appends the new
 * ones in array order.  Returns the number of entries added.
 */
CREATE FUNCTION todo_kafka.audit_append(p_records jsonb)
	RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_rows		todo_kafka.audit_log[];
	v_chains	integer[];
	v_seqs		bigint[];
	v_hashes	bytea[];
	v_at		integer;
	v_seen		uuid[];
	v_new		todo_kafka.audit_log[] := '{}';
	v_added		integer;
	r			todo_kafka.audit_log;
BEGIN
	IF jsonb_typeof(p_records) IS DISTINCT FROM 'array' THEN
		RAISE EXCEPTION 'audit records must be a JSON array'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass [{"topic": ..., "partition": ..., "offset": ..., "data": {...}}, ...].';
	END IF;

	SELECT array_agg(todo_kafka.audit_record(x.rec, (x.n - 1)::integer) ORDER BY x.n)
	  INTO v_rows
	  FROM jsonb_array_elements(p_records) WITH ORDINALITY AS x(rec, n);
	IF v_rows IS NULL THEN
		RETURN 0;
	END IF;

	/* lock the chain heads, lowest chain first; a new chain starts at 0 */
	INSERT INTO todo_kafka.audit_chains (chain)
		SELECT DISTINCT u.chain FROM unnest(v_rows) u ORDER BY 1
		ON CONFLICT (chain) DO NOTHING;
	SELECT array_agg(h.chain ORDER BY h.chain), array_agg(h.last_seq ORDER BY h.chain),
		   array_agg(h.last_hash ORDER BY h.chain)
	  INTO v_chains, v_seqs, v_hashes
	  FROM (SELECT c.chain, c.last_seq, c.last_hash FROM todo_kafka.audit_chains c
			 WHERE c.chain IN (SELECT u.chain FROM unnest(v_rows) u)
			 ORDER BY c.chain FOR UPDATE) h;

	/* event ids already recorded: a redelivered record is skipped */
	SELECT coalesce(array_agg(a.event_id), '{}') INTO v_seen
	  FROM todo_kafka.audit_log a
	 WHERE a.event_id IN (SELECT u.event_id FROM unnest(v_rows) u);

	FOREACH r IN ARRAY v_rows
	LOOP
		CONTINUE WHEN r.event_id = ANY (v_seen);
		v_seen := v_seen || r.event_id;	/* a repeat within the batch too */
		v_at := array_position(v_chains, r.chain);
		r.seq := v_seqs[v_at] + 1;
		r.prev_hash := v_hashes[v_at];
		r.recorded_at := clock_timestamp();
		r.hash := todo_kafka.audit_hash(r.prev_hash, r);
		v_new := v_new || r;
		v_seqs[v_at] := r.seq;
		v_hashes[v_at] := r.hash;
	END LOOP;

	v_added := cardinality(v_new);
	IF v_added > 0 THEN
		INSERT INTO todo_kafka.audit_log
			(chain, seq, event_id, actor, db_role, operation, event_type, table_name,
			 task_id, user_id, before, after, changed_fields, correlation_id, txid,
			 occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset,
			 prev_hash, hash)
		SELECT n.chain, n.seq, n.event_id, n.actor, n.db_role, n.operation, n.event_type, n.table_name,
			   n.task_id, n.user_id, n.before, n.after, n.changed_fields, n.correlation_id, n.txid,
			   n.occurred_at, n.recorded_at, n.kafka_topic, n.kafka_partition, n.kafka_offset,
			   n.prev_hash, n.hash
		  FROM unnest(v_new) WITH ORDINALITY AS n
		 ORDER BY n.ordinality;
		UPDATE todo_kafka.audit_chains c SET last_seq = h.seq, last_hash = h.hash
		  FROM unnest(v_chains, v_seqs, v_hashes) AS h(chain, seq, hash)
		 WHERE c.chain = h.chain AND c.last_seq <> h.seq;
	END IF;
	RETURN v_added;
END
$$;

/* ---------------------------------------------------------------------------
 * search_audit(): every filter optional, newest first.  The query is built
 * with only the filters given (values quoted by format %L), so each search
 * is planned for its own filters and uses the matching index.  Times:
 * occurred_at >= p_from and < p_to.
 * ------------------------------------------------------------------------- */
CREATE FUNCTION todo_kafka.audit_search_query(p_user_id text, p_task_id text, p_actor text,
											  p_operation text, p_from timestamptz,
											  p_to timestamptz, p_limit integer)
	RETURNS text LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	q			text := 'SELECT * FROM todo_kafka.audit_log WHERE true';
BEGIN
	IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 100000 THEN
		RAISE EXCEPTION 'invalid search limit: %', coalesce(p_limit::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Ask for 1 to 100000 entries; page with p_to set to the oldest time seen.';
	END IF;
	IF p_operation IS NOT NULL AND upper(p_operation) NOT IN ('INSERT', 'UPDATE', 'DELETE') THEN
		RAISE EXCEPTION 'invalid operation: "%"', p_operation
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use one of INSERT, UPDATE, DELETE.';
	END IF;
	SELECT q || coalesce(string_agg(format(' AND %I %s %L%s', f.col, f.op, f.val, f.suffix), '' ORDER BY f.n), '')
	  INTO q
	  FROM (VALUES (1, 'user_id', '=', p_user_id, ''),
				   (2, 'task_id', '=', p_task_id, ''),
				   (3, 'actor', '=', p_actor, ''),
				   (4, 'operation', '=', upper(p_operation), ''),
				   (5, 'occurred_at', '>=', p_from::text, '::timestamptz'),
				   (6, 'occurred_at', '<', p_to::text, '::timestamptz')) AS f(n, col, op, val, suffix)
	 WHERE f.val IS NOT NULL;
	RETURN q || format(' ORDER BY occurred_at DESC, id DESC LIMIT %s', p_limit);
END
$$;

CREATE FUNCTION todo_kafka.search_audit(p_user_id text DEFAULT NULL,
										p_task_id text DEFAULT NULL,
										p_actor text DEFAULT NULL,
										p_operation text DEFAULT NULL,
										p_from timestamptz DEFAULT NULL,
										p_to timestamptz DEFAULT NULL,
										p_limit integer DEFAULT 100)
	RETURNS SETOF todo_kafka.audit_log LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN QUERY EXECUTE todo_kafka.audit_search_query(p_user_id, p_task_id, p_actor,
														p_operation, p_from, p_to, p_limit);
END
$$;

/* ---------------------------------------------------------------------------
 * verify_audit(): one row per broken chain naming its first broken link,
 * or one row (true, NULL, NULL, NULL, NULL) when every chain is intact.
 * Per entry, in seq order: seq follows the previous one (the first follows
 * the purge anchor), prev_hash is the previous entry's hash (the first's
 * is the anchor's), hash matches the content; then the head must name the
 * last entry (a deleted tail shows here).
 * ------------------------------------------------------------------------- */
CREATE FUNCTION todo_kafka.verify_audit()
	RETURNS TABLE(ok boolean, chain integer, seq bigint, event_id uuid, problem text)
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	WITH e AS (
		SELECT a.chain, a.seq, a.event_id, a.prev_hash, a.hash,
			   todo_kafka.audit_hash(a.prev_hash, a) AS recomputed,
			   lag(a.seq) OVER w AS prev_seq, lag(a.hash) OVER w AS prev_entry_hash,
			   row_number() OVER w = 1 AS is_first
		  FROM todo_kafka.audit_log a
		WINDOW w AS (PARTITION BY a.chain ORDER BY a.seq)
	), entry_problems AS (
		SELECT e.chain, e.seq, e.event_id,
			   CASE
				   WHEN h.chain IS NULL THEN
					   'the chain has no head in todo_kafka.audit_chains'
				   WHEN e.is_first AND e.seq <> h.anchor_seq + 1 THEN
					   format('entry %s is the first one, but the chain starts at %s: entries are missing',
							  e.seq, h.anchor_seq + 1)
				   WHEN NOT e.is_first AND e.seq <> e.prev_seq + 1 THEN
					   format('entry %s follows entry %s: entries between them are missing',
							  e.seq, e.prev_seq)
				   WHEN e.is_first AND e.prev_hash IS DISTINCT FROM h.anchor_hash THEN
					   CASE WHEN h.anchor_seq = 0
							THEN 'prev_hash of the first entry is not empty'
							ELSE 'prev_hash does not match the hash of the last purged entry' END
				   WHEN NOT e.is_first AND e.prev_hash IS DISTINCT FROM e.prev_entry_hash THEN
					   format('prev_hash does not match the hash of entry %s', e.prev_seq)
				   WHEN e.hash IS DISTINCT FROM e.recomputed THEN
					   'hash does not match the entry''s content: the entry was modified'
			   END AS problem
		  FROM e LEFT JOIN todo_kafka.audit_chains h ON h.chain = e.chain
	), head_problems AS (
		SELECT h.chain, coalesce(t.seq, h.anchor_seq) + 1 AS seq, NULL::uuid AS event_id,
			   CASE
				   WHEN h.last_seq > coalesce(t.seq, h.anchor_seq) THEN
					   format('the chain head is at entry %s but the chain ends at entry %s: entries at the end are missing',
							  h.last_seq, coalesce(t.seq, h.anchor_seq))
				   WHEN h.last_seq < coalesce(t.seq, h.anchor_seq) THEN
					   format('the chain head is at entry %s but entries up to %s exist',
							  h.last_seq, coalesce(t.seq, h.anchor_seq))
				   WHEN h.last_hash IS DISTINCT FROM coalesce(t.hash, h.anchor_hash) THEN
					   'the chain head''s hash does not match the last entry'
			   END AS problem
		  FROM todo_kafka.audit_chains h
		  LEFT JOIN LATERAL (SELECT a.seq, a.hash FROM todo_kafka.audit_log a
							  WHERE a.chain = h.chain ORDER BY a.seq DESC LIMIT 1) t ON true
	)
	SELECT DISTINCT ON (p.chain) false, p.chain, p.seq, p.event_id, p.problem
	  FROM (SELECT * FROM entry_problems UNION ALL SELECT * FROM head_problems) p
	 WHERE p.problem IS NOT NULL
	 ORDER BY p.chain, p.seq;
	IF NOT FOUND THEN
		RETURN QUERY SELECT true, NULL::integer, NULL::bigint, NULL::uuid, NULL::text;
	END IF;
END
$$;

/* ---------------------------------------------------------------------------
 * Append-only, and the retention purge
 * ------------------------------------------------------------------------- */
CREATE FUNCTION todo_kafka.audit_log_append_only()
	RETURNS pg_catalog.trigger LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* set only by purge_audit() (todo_kafka.audit_purge is superuser-only) */
	IF TG_OP = 'DELETE' AND current_setting('todo_kafka.audit_purge', true) = 'on' THEN
		RETURN OLD;
	END IF;
	RAISE EXCEPTION 'todo_kafka.audit_log is append-only: % is not allowed', TG_OP
		USING ERRCODE = 'insufficient_privilege',
			  HINT = 'Entries are removed only by todo_kafka.purge_audit(), once older than the retention period.';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON todo_kafka.audit_log
	FOR EACH ROW EXECUTE FUNCTION todo_kafka.audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON todo_kafka.audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION todo_kafka.audit_log_append_only();
/* fire under session_replication_role = replica too */
ALTER TABLE todo_kafka.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE todo_kafka.audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;

/*
 * Remove the entries recorded before now() - p_older_than, as a prefix of
 * each chain (an entry stays while an older-numbered one of its chain
 * must stay, so what remains still verifies), and keep the hash of the
 * last purged entry as the chain's anchor.  Returns the number removed.
 */
CREATE FUNCTION todo_kafka.purge_audit(p_older_than interval DEFAULT '90 days')
	RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_cutoff	timestamptz;
	v_chain		integer;
	v_keep		bigint;
	v_last_seq	bigint;
	v_last_hash	bytea;
	v_count		bigint;
	v_total		bigint := 0;
BEGIN
	IF p_older_than IS NULL OR p_older_than < interval '0' THEN
		RAISE EXCEPTION 'invalid retention period: %', coalesce(p_older_than::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a positive interval, e.g. ''90 days''.';
	END IF;
	v_cutoff := now() - p_older_than;
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
	END LOOP;
	PERFORM set_config('todo_kafka.audit_purge', 'off', true);
	RETURN v_total;
END
$$;

/* ---------------------------------------------------------------------------
 * Privileges: nothing for PUBLIC; each role gets what its job needs.
 * ------------------------------------------------------------------------- */
REVOKE ALL ON todo_kafka.audit_log, todo_kafka.audit_chains FROM PUBLIC;
REVOKE ALL ON FUNCTION
	todo_kafka.topic_of(text),
	todo_kafka.audit_canonical(todo_kafka.audit_log),
	todo_kafka.audit_hash(bytea, todo_kafka.audit_log),
	todo_kafka.audit_record(jsonb, integer),
	todo_kafka.audit_append(jsonb),
	todo_kafka.audit_search_query(text, text, text, text, timestamptz, timestamptz, integer),
	todo_kafka.search_audit(text, text, text, text, timestamptz, timestamptz, integer),
	todo_kafka.verify_audit(),
	todo_kafka.audit_log_append_only(),
	todo_kafka.purge_audit(interval)
	FROM PUBLIC;

GRANT EXECUTE ON FUNCTION todo_kafka.topic_of(text) TO todo_kafka_consumer, todo_kafka_relay;
GRANT EXECUTE ON FUNCTION
	todo_kafka.audit_append(jsonb),
	todo_kafka.purge_audit(interval)
	TO todo_kafka_consumer;
GRANT EXECUTE ON FUNCTION todo_kafka.verify_audit() TO todo_kafka_consumer, todo_kafka_auditor;
GRANT EXECUTE ON FUNCTION
	todo_kafka.search_audit(text, text, text, text, timestamptz, timestamptz, integer)
	TO todo_kafka_auditor;
GRANT SELECT ON todo_kafka.audit_log TO todo_kafka_auditor;
