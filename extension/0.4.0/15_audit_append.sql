
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
