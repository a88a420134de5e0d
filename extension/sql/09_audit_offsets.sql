/*
 * extension/sql/09_audit_offsets.sql: the audit service's Kafka offsets,
 * kept per consumer group in audit_offsets and written by audit_consume()
 * in the transaction of its rows, as the projector does (12_projection.sql):
 * a restored database resumes from its own position, not from the group's
 * committed offsets, which are ahead of it.  A group with no offsets
 * stored (new, or upgraded from 0.4.0) starts at its committed offsets.
 */

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
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.audit_offsets', '');

/*
 * Append a batch (audit_append) and store the partitions' next offsets for
 * consumer group p_group, in one transaction.  Records below a partition's
 * stored offset were handled already and are left out.  Otherwise the
 * same argument and result as audit_append.
 */
CREATE OR REPLACE FUNCTION todo_kafka.audit_consume(p_group text, p_records jsonb)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/*
 * A record the service dead-lettered as the last of its partition: the
 * stored offset moves past it, so a restart does not read it again.
 */
CREATE OR REPLACE FUNCTION todo_kafka.audit_skip(p_group text, p_topic text, p_partition integer, p_offset bigint)
 RETURNS integer
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
	INSERT INTO todo_kafka.audit_offsets AS o (consumer_group, topic, kafka_partition, next_offset)
	VALUES (p_group, p_topic, p_partition, p_offset + 1)
	ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE
	   SET next_offset = greatest(o.next_offset, EXCLUDED.next_offset),
		   updated_at = clock_timestamp()
	RETURNING 0;
$function$;

/* where a group starts each partition of a topic: (partition, next_offset) */
CREATE OR REPLACE FUNCTION todo_kafka.audit_offsets(p_group text, p_topic text)
 RETURNS TABLE(kafka_partition integer, next_offset bigint)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
	SELECT o.kafka_partition, o.next_offset FROM todo_kafka.audit_offsets o
	 WHERE o.consumer_group = p_group AND o.topic = p_topic ORDER BY o.kafka_partition;
$function$;
