
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
 *	 1. validation: one query over the elements (jsonb_to_record reads a
 *		record's fields in one pass), the first bad element and field;
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
 * One step of a chain: the hash of the next entry from the previous one's
 * (p_state; NULL before the first entry of the batch, then the chain head's
 * hash p_head is used, NULL for a new chain) and the entry's canonical text.
 * Internal: granted to nobody; no search_path needed (all names qualified).
 */
CREATE FUNCTION todo_kafka.audit_chain_step(p_state bytea, p_canonical text, p_head bytea)
	RETURNS bytea LANGUAGE plpgsql IMMUTABLE
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

	/*
	 * 1. The first bad element and its first bad field, checked in 0.3.0's
	 * order (audit_record).  Exception-free: a cast or make_date() runs
	 * only once the shape its input needs was checked (CASE order).
	 */
	SELECT v.n - 1, v.bad INTO v_index, v_bad
	  FROM (SELECT e.n,
				   CASE
					   WHEN jsonb_typeof(e.rec) IS DISTINCT FROM 'object' THEN 'record'
					   WHEN jsonb_typeof(o."partition") IS DISTINCT FROM 'number'
							OR ot."partition" !~ '^[0-9]{1,9}$' THEN 'partition'
					   WHEN jsonb_typeof(o."offset") IS DISTINCT FROM 'number'
							OR ot."offset" !~ '^[0-9]{1,18}$' THEN 'offset'
					   WHEN coalesce(jsonb_typeof(o.topic), 'null') NOT IN ('string', 'null') THEN 'topic'
					   WHEN jsonb_typeof(o.data) IS DISTINCT FROM 'object' THEN 'data'
					   /* the canonical 8-4-4-4-12 form, without a (slow) counted regex */
					   WHEN NOT coalesce(jsonb_typeof(d.event_id) = 'string'
							AND length(dt.event_id) = 36
							AND dt.event_id ~ '^[0-9a-fA-F]+-[0-9a-fA-F]+-[0-9a-fA-F]+-[0-9a-fA-F]+-[0-9a-fA-F]+$'
							AND substr(dt.event_id, 9, 1) = '-' AND substr(dt.event_id, 14, 1) = '-'
							AND substr(dt.event_id, 19, 1) = '-' AND substr(dt.event_id, 24, 1) = '-',
							false) THEN 'data.event_id'
					   WHEN jsonb_typeof(d.operation) IS DISTINCT FROM 'string'
							OR dt.operation NOT IN ('INSERT', 'UPDATE', 'DELETE') THEN 'data.operation'
					   WHEN jsonb_typeof(d.event_type) IS DISTINCT FROM 'string'
							OR length(dt.event_type) = 0 THEN 'data.event_type'
					   /* RFC 3339 by shape, then each field's range */
					   WHEN NOT CASE
							WHEN coalesce(jsonb_typeof(d."timestamp") = 'string'
								 AND dt."timestamp"
									 ~ '^\d\d\d\d-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)$',
								 false)
							THEN substr(dt."timestamp", 1, 4)::integer >= 1
								AND CASE WHEN substr(dt."timestamp", 6, 2)::integer BETWEEN 1 AND 12
									THEN substr(dt."timestamp", 9, 2)::integer BETWEEN 1 AND
										extract(day FROM make_date(substr(dt."timestamp", 1, 4)::integer,
																   substr(dt."timestamp", 6, 2)::integer, 1)
														 + interval '1 month - 1 day')
									ELSE false END
								AND substr(dt."timestamp", 12, 2)::integer < 24
								AND substr(dt."timestamp", 15, 2)::integer < 60
								AND substr(dt."timestamp", 18, 2)::integer <= 60
								AND (upper(right(dt."timestamp", 1)) = 'Z'
									 OR (substr(right(dt."timestamp", 5), 1, 2)::integer < 24
										 AND right(dt."timestamp", 2)::integer < 60))
							ELSE false END THEN 'data.timestamp'
					   WHEN coalesce(jsonb_typeof(d.txid), 'null') <> 'null'
							AND dt.txid !~ '^[0-9]{1,18}$' THEN 'data.txid'
					   WHEN coalesce(jsonb_typeof(d.before), 'null') NOT IN ('object', 'null') THEN 'data.before'
					   WHEN coalesce(jsonb_typeof(d.after), 'null') NOT IN ('object', 'null') THEN 'data.after'
					   WHEN coalesce(jsonb_typeof(d.changed_fields), 'null') NOT IN ('array', 'null') THEN 'data.changed_fields'
					   WHEN jsonb_typeof(d.changed_fields) = 'array'
							AND jsonb_path_exists(d.changed_fields, '$[*] ? (@.type() != "string")') THEN 'data.changed_fields'
					   WHEN coalesce(jsonb_typeof(d.actor), 'null') NOT IN ('string', 'null') THEN 'data.actor'
					   WHEN coalesce(jsonb_typeof(d.db_role), 'null') NOT IN ('string', 'null') THEN 'data.db_role'
					   WHEN coalesce(jsonb_typeof(d."table"), 'null') NOT IN ('string', 'null') THEN 'data.table'
					   WHEN coalesce(jsonb_typeof(d.task_id), 'null') NOT IN ('string', 'null') THEN 'data.task_id'
					   WHEN coalesce(jsonb_typeof(d.user_id), 'null') NOT IN ('string', 'null') THEN 'data.user_id'
					   WHEN coalesce(jsonb_typeof(d.correlation_id), 'null') NOT IN ('string', 'null') THEN 'data.correlation_id'
				   END AS bad
			  FROM jsonb_array_elements(p_records) WITH ORDINALITY AS e(rec, n)
			 CROSS JOIN LATERAL jsonb_to_record(CASE WHEN jsonb_typeof(e.rec) = 'object' THEN e.rec END)
				   AS o(topic jsonb, "partition" jsonb, "offset" jsonb, data jsonb)
			 CROSS JOIN LATERAL jsonb_to_record(CASE WHEN jsonb_typeof(o.data) = 'object' THEN o.data END)
				   AS d(event_id jsonb, actor jsonb, db_role jsonb, operation jsonb, event_type jsonb,
						"table" jsonb, task_id jsonb, user_id jsonb, before jsonb, after jsonb,
						changed_fields jsonb, correlation_id jsonb, txid jsonb, "timestamp" jsonb)
			 /* the same fields as text (what ->> gives), read once */
			 CROSS JOIN LATERAL jsonb_to_record(CASE WHEN jsonb_typeof(e.rec) = 'object' THEN e.rec END)
				   AS ot("partition" text, "offset" text)
			 CROSS JOIN LATERAL jsonb_to_record(CASE WHEN jsonb_typeof(o.data) = 'object' THEN o.data END)
				   AS dt(event_id text, operation text, event_type text, "timestamp" text, txid text)) v
	 WHERE v.bad IS NOT NULL
	 ORDER BY v.n
	 LIMIT 1;
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

REVOKE ALL ON FUNCTION todo_kafka.audit_chain_step(bytea, text, bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION todo_kafka.audit_chain(text, bytea) FROM PUBLIC;
