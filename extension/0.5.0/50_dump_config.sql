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
