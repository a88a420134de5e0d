/*
 * extension/sql/12_projection.sql: the read model todo-kafka-project builds
 * from the task events (task_view, readable by the app and auditors), the
 * Kafka offsets stored with it in the same transaction, and snapshots of
 * both to restore from.
 */

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

SELECT pg_catalog.pg_extension_config_dump('todo_kafka.task_view', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.projection_offsets', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.projection_snapshots', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.projection_snapshots_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.projection_snapshot_rows', '');

/*
 * project_apply(topic, events): apply one batch, store its offsets; returns
 * the number of events newly applied (redeliveries not counted).
 * events: [{"partition": int, "offset": bigint, "type": text or null,
 *			 "task_id": uuid, "task_data": object}, ...]
 * type: created, updated, completed, recurring-created (upsert) or deleted;
 * null: not a task change, only its offset counts.
 */
CREATE OR REPLACE FUNCTION todo_kafka.project_apply(p_topic text, p_events jsonb)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/* where to start each partition of a topic: (partition, next_offset) */
CREATE OR REPLACE FUNCTION todo_kafka.project_offsets(p_topic text)
 RETURNS TABLE(kafka_partition integer, next_offset bigint, events bigint)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
	SELECT o.kafka_partition, o.next_offset, o.events FROM todo_kafka.projection_offsets o
	 WHERE o.topic = p_topic ORDER BY o.kafka_partition;
$function$;

/* a snapshot of the view and its offsets; prunes to the newest p_keep */
CREATE OR REPLACE FUNCTION todo_kafka.project_snapshot(p_keep integer DEFAULT 3)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/* delete all but the newest p_keep snapshots; returns how many went */
CREATE OR REPLACE FUNCTION todo_kafka.project_prune_snapshots(p_keep integer DEFAULT 3)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/* the snapshots, newest first, with their offsets */
CREATE OR REPLACE FUNCTION todo_kafka.project_snapshots()
 RETURNS TABLE(id bigint, taken_at timestamp with time zone, tasks bigint, offsets jsonb)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
	SELECT s.id, s.taken_at, s.tasks, s.offsets FROM todo_kafka.projection_snapshots s
	 ORDER BY s.id DESC;
$function$;

/* make the view and offsets those of a snapshot (default: the newest) */
CREATE OR REPLACE FUNCTION todo_kafka.project_restore(p_snapshot_id bigint DEFAULT NULL::bigint)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/* empty the view and the offsets: the next start reads from the beginning */
CREATE OR REPLACE FUNCTION todo_kafka.project_reset()
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	LOCK TABLE todo_kafka.projection_offsets IN EXCLUSIVE MODE;
	TRUNCATE todo_kafka.task_view;
	DELETE FROM todo_kafka.projection_offsets;
END
$function$;
