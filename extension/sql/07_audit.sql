/*
 * extension/sql/07_audit.sql: the audit trail todo-kafka-audit writes.
 *
 * todo-kafka-audit consumes todo.audit.log and hands batches to
 * audit_append() as it got them from Kafka.  Each entry belongs to a chain
 * (= the Kafka partition it came from, so a chain is appended in offset
 * order by the one consumer that owns the partition) and carries
 *	 seq		1, 2, 3 ... within its chain
 *	 prev_hash	the hash of the chain's previous entry (NULL for the first)
 *	 hash		sha256(prev_hash || audit_canonical(entry))
 * audit_chains holds each chain's head (last seq and hash) and the anchor
 * left by the retention purge (08_audit_purge.sql).  verify_audit()
 * recomputes every hash and link, so an edited entry, a deleted one
 * (middle or tail) or an edited head is found; it names the first broken
 * link of each chain.  An event id already present is skipped, so
 * redeliveries, replays and rebalances leave the chains intact.
 *
 * Append-only: a BEFORE UPDATE/DELETE row trigger and a TRUNCATE trigger
 * refuse every change (even the owner's), except the deletes purge_audit()
 * makes while it has todo_kafka.audit_purge on for its transaction (a
 * superuser-only setting of the module).  A superuser can always get past
 * triggers or edit the files; verify_audit() is what detects that.
 *
 * Locking: audit_append() and purge_audit() lock the chain heads they touch
 * (SELECT ... FOR UPDATE, lowest chain first, so two callers cannot
 * deadlock); entries of one chain are appended one caller at a time and
 * purges never interleave with appends.
 */

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
	/* W3C trace id of the message's traceparent (0.5.0): where to look in
	 * the tracing backend; diagnostic, outside the hash (audit_canonical) */
	trace_id			text,
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
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.audit_log_id_seq', '');

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
CREATE OR REPLACE FUNCTION todo_kafka.audit_canonical(a todo_kafka.audit_log)
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$
	SELECT pg_catalog.jsonb_build_array(
		'todo_kafka.audit_log/1', a.chain, a.seq, a.event_id::text,
		a.actor, a.db_role, a.operation, a.event_type, a.table_name,
		a.task_id, a.user_id, a.before::text, a.after::text,
		pg_catalog.to_jsonb(a.changed_fields), a.correlation_id, a.txid,
		pg_catalog.to_char(a.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
		pg_catalog.to_char(a.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
		a.kafka_topic, a.kafka_partition, a.kafka_offset)::text
$function$;

CREATE OR REPLACE FUNCTION todo_kafka.audit_hash(p_prev_hash bytea, a todo_kafka.audit_log)
 RETURNS bytea
 LANGUAGE sql
 STABLE
AS $function$
	SELECT pg_catalog.sha256(coalesce(p_prev_hash, '\x'::bytea)
							 || pg_catalog.convert_to(todo_kafka.audit_canonical(a), 'UTF8'))
$function$;

/* ---------------------------------------------------------------------------
 * audit_append(records): the consumer's batch insert
 * ------------------------------------------------------------------------- */

/*
 * One element of audit_append()'s array as an audit_log row (chain, origin
 * and content; seq, hashes and recorded_at are set by audit_append), or
 * 22023 naming the field and the element's array index (from 0).
 * Exception-free checks only (no subtransaction per record).
 */
CREATE OR REPLACE FUNCTION todo_kafka.audit_record(p_record jsonb, p_index integer)
 RETURNS todo_kafka.audit_log
 LANGUAGE plpgsql
 STABLE
AS $function$
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
$function$;

/* ---------------------------------------------------------------------------
 * search_audit(): every filter optional, newest first.  The query is built
 * with only the filters given (values quoted by format %L), so each search
 * is planned for its own filters and uses the matching index.  Times:
 * occurred_at >= p_from and < p_to.
 * ------------------------------------------------------------------------- */
CREATE OR REPLACE FUNCTION todo_kafka.audit_search_query(p_user_id text, p_task_id text, p_actor text, p_operation text, p_from timestamp with time zone, p_to timestamp with time zone, p_limit integer)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION todo_kafka.search_audit(p_user_id text DEFAULT NULL::text, p_task_id text DEFAULT NULL::text, p_actor text DEFAULT NULL::text, p_operation text DEFAULT NULL::text, p_from timestamp with time zone DEFAULT NULL::timestamp with time zone, p_to timestamp with time zone DEFAULT NULL::timestamp with time zone, p_limit integer DEFAULT 100)
 RETURNS SETOF todo_kafka.audit_log
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	RETURN QUERY EXECUTE todo_kafka.audit_search_query(p_user_id, p_task_id, p_actor,
														p_operation, p_from, p_to, p_limit);
END
$function$;

/* ---------------------------------------------------------------------------
 * verify_audit(): one row per broken chain naming its first broken link,
 * or one row (true, NULL, NULL, NULL, NULL) when every chain is intact.
 * Per entry, in seq order: seq follows the previous one (the first follows
 * the purge anchor), prev_hash is the previous entry's hash (the first's
 * is the anchor's), hash matches the content; then the head must name the
 * last entry (a deleted tail shows here).
 * ------------------------------------------------------------------------- */
CREATE OR REPLACE FUNCTION todo_kafka.verify_audit()
 RETURNS TABLE(ok boolean, chain integer, seq bigint, event_id uuid, problem text)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/* ---------------------------------------------------------------------------
 * Append-only, and the retention purge
 * ------------------------------------------------------------------------- */
CREATE OR REPLACE FUNCTION todo_kafka.audit_log_append_only()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	/* set only by purge_audit() (todo_kafka.audit_purge is superuser-only) */
	IF TG_OP = 'DELETE' AND current_setting('todo_kafka.audit_purge', true) = 'on' THEN
		RETURN OLD;
	END IF;
	RAISE EXCEPTION 'todo_kafka.audit_log is append-only: % is not allowed', TG_OP
		USING ERRCODE = 'insufficient_privilege',
			  HINT = 'Entries are removed only by todo_kafka.purge_audit(), once older than the retention period.';
END
$function$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON todo_kafka.audit_log
	FOR EACH ROW EXECUTE FUNCTION todo_kafka.audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON todo_kafka.audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION todo_kafka.audit_log_append_only();

/* fire under session_replication_role = replica too */
ALTER TABLE todo_kafka.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;

ALTER TABLE todo_kafka.audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;

/* ---------------------------------------------------------------------------
 * audit_append(), set-based, in three statements:
 *	 1. validation: audit_check() (extension/auditcheck.c), one pass in C
 *		over the batch: the first bad element and field (22023 naming the
 *		field and the element's array index);
 *	 2. the chain heads locked (FOR UPDATE, lowest chain first);
 *	 3. one INSERT ... SELECT: the records as typed columns (jsonb_to_record
 *		with audit_log's types, JSON null -> SQL NULL), new event ids only
 *		(DISTINCT ON: the first of a repeat wins; NOT EXISTS on the event_id
 *		index), seq numbered per chain (row_number), recorded_at stamped in
 *		array order, the hash chained per chain by the window aggregate
 *		audit_chain() (the only sequential step), prev_hash = the previous
 *		entry's hash or the head's; the heads updated from what was inserted.
 * bench/RESULTS.md "audit: append path" has the profile that led here.
 * audit_record() (one element as a row, with the same checks) is kept,
 * granted to nobody.
 * ------------------------------------------------------------------------- */

/*
 * The first element audit_append() must refuse, and the field at fault
 * (audit_record()'s rules, in its order); NULL when all are good.
 * Internal: granted to nobody.
 */
CREATE OR REPLACE FUNCTION todo_kafka.audit_check(p_records jsonb, OUT idx integer, OUT field text)
 RETURNS record
 LANGUAGE c
 STABLE STRICT
AS '$libdir/todo_kafka', $function$todo_kafka_audit_check$function$;

/*
 * One step of a chain: the hash of the next entry from the previous one's
 * (p_state; NULL before the first entry of the batch, then the chain head's
 * hash p_head is used, NULL for a new chain) and the entry's canonical text.
 * Internal: granted to nobody; no search_path needed (all names qualified).
 */
CREATE OR REPLACE FUNCTION todo_kafka.audit_chain_step(p_state bytea, p_canonical text, p_head bytea)
 RETURNS bytea
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
	RETURN pg_catalog.sha256(coalesce(p_state, p_head, '\x'::bytea)
							 OPERATOR(pg_catalog.||) pg_catalog.convert_to(p_canonical, 'UTF8'));
END
$function$;

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
 *				"data": <the relay's audit message data>,
 *				"trace_id": <32 hex digits, optional>}, ...]
 * Validates every element first (22023 on the first bad one, nothing
 * written), locks the heads of the chains involved, then appends the new
 * ones in array order.  Returns the number of entries added.
 */
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
