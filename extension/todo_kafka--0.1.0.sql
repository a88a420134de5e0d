/*
 * todo_kafka--0.1.0.sql
 *	  install script: the task table, the transactional outbox, the topic map,
 *	  the capture trigger, the task API and the roles.
 *
 * Flow: a change to a captured table fires todo_kafka.capture() (C, AFTER ROW),
 * which writes ONE row into todo_kafka.outbox in the same transaction.  The
 * relay (todo-kafka-relay) reads committed rows behind a transaction horizon
 * (column xid), fans each row out to its Kafka topics and deletes it once
 * Kafka acknowledged every message made from it.
 *
 * Never edit this file once released: add todo_kafka--0.1.0--X.sql instead.
 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION todo_kafka" to load this file. \quit

/* ---------------------------------------------------------------------------
 * Roles.  Roles are cluster-wide, so a second database reuses them.
 *	 todo_kafka_app		the chatbot: task API, custom publish()
 *	 todo_kafka_relay	the relay daemon: read and delete the outbox
 *	 todo_kafka_auditor read-only access to captured history
 * ------------------------------------------------------------------------- */
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'todo_kafka_app') THEN
		CREATE ROLE todo_kafka_app NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'todo_kafka_relay') THEN
		CREATE ROLE todo_kafka_relay NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'todo_kafka_auditor') THEN
		CREATE ROLE todo_kafka_auditor NOLOGIN;
	END IF;
END
$roles$;

REVOKE ALL ON SCHEMA todo_kafka FROM PUBLIC;
GRANT USAGE ON SCHEMA todo_kafka TO todo_kafka_app, todo_kafka_relay, todo_kafka_auditor;

/* ---------------------------------------------------------------------------
 * Topic map: logical stream -> Kafka topic and its settings.  Renaming a topic
 * (e.g. to the infrastructure spec's "task-events") is an UPDATE here.
 * ------------------------------------------------------------------------- */
CREATE TABLE todo_kafka.topics (
	stream				text PRIMARY KEY
		CHECK (stream ~ '^[a-z][a-z0-9_]{0,62}$'),
	topic				text NOT NULL UNIQUE
		CHECK (topic ~ '^[A-Za-z0-9._-]{1,249}$'),
	partitions			integer NOT NULL DEFAULT 3 CHECK (partitions BETWEEN 1 AND 10000),
	replication_factor	integer NOT NULL DEFAULT 1 CHECK (replication_factor BETWEEN 1 AND 32),
	retention_ms		bigint NOT NULL DEFAULT 604800000 CHECK (retention_ms >= -1),
	description			text NOT NULL DEFAULT ''
);

INSERT INTO todo_kafka.topics (stream, topic, retention_ms, description) VALUES
	('task_events',   'todo.task.events',   604800000,  'task lifecycle events (created, updated, completed, deleted, recurring-created)'),
	('task_updates',  'todo.task.updates',  2592000000, 'one message per changed field or tag'),
	('audit',         'todo.audit.log',     7776000000, 'audit records with actor, before and after state'),
	('reminders',     'todo.reminders',     604800000,  'reminder events (scheduled, sent, missed, cancelled)'),
	('notifications', 'todo.notifications', 604800000,  'queued notifications, one per channel'),
	('dead_letter',   'todo.dead.letter',   604800000,  'messages that could not be published or processed');

/* ---------------------------------------------------------------------------
 * Tasks (fields of the infrastructure spec's task_data, plus recurrence and
 * reminder settings).  updated_at is kept by todo_kafka.touch().
 * ------------------------------------------------------------------------- */
CREATE TABLE todo_kafka.tasks (
	id					uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	user_id				text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 200),
	title				text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
	description			text NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
	completed			boolean NOT NULL DEFAULT false,
	priority			text NOT NULL DEFAULT 'medium'
		CHECK (priority IN ('low', 'medium', 'high')),
	tags				text[] NOT NULL DEFAULT '{}',
	due_date			timestamptz,
	recurrence			text NOT NULL DEFAULT 'none'
		CHECK (recurrence IN ('none', 'daily', 'weekly', 'monthly')),
	reminder_offsets	interval[] NOT NULL DEFAULT '{}',
	notification_methods text[] NOT NULL DEFAULT '{in_app}',
	recurrence_parent	uuid,
	created_at			timestamptz NOT NULL DEFAULT now(),
	updated_at			timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tasks_user_id_idx ON todo_kafka.tasks (user_id, created_at);

/* ---------------------------------------------------------------------------
 * The outbox.  One row per captured change or published event.
 *	 kind	'change'   a row change: fans out to its stream, audit, task_updates
 *			'custom'   publish(): goes to its stream only
 *			'reminder' a reminder event: goes to reminders
 *	 xid	the writing transaction (read behind the horizon by the relay)
 *	 before/after	row images as json (after = data for custom events)
 * ------------------------------------------------------------------------- */
CREATE TABLE todo_kafka.outbox (
	id				bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
	occurred_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);

/* rows are deleted right after Kafka acks them: vacuum early and often */
ALTER TABLE todo_kafka.outbox SET (
	autovacuum_vacuum_scale_factor = 0,
	autovacuum_vacuum_threshold = 1000,
	autovacuum_vacuum_insert_scale_factor = 0,
	autovacuum_vacuum_insert_threshold = 10000,
	autovacuum_vacuum_cost_delay = 0
);

/* rows the relay could not publish for good (poison rows), kept for repair */
CREATE TABLE todo_kafka.dead_letters (
	id				bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	outbox_id		bigint NOT NULL,
	event_id		uuid NOT NULL,
	topic			text NOT NULL,
	reason			text NOT NULL,
	row_data		json NOT NULL,
	failed_at		timestamptz NOT NULL DEFAULT now()
);

/* ---------------------------------------------------------------------------
 * C functions
 * ------------------------------------------------------------------------- */

/* AFTER ROW trigger: args key column, user column, stream [, completed column
 * [, recurrence parent column]] */
CREATE FUNCTION todo_kafka.capture() RETURNS pg_catalog.trigger
	AS 'MODULE_PATHNAME', 'todo_kafka_capture' LANGUAGE C;

/* BEFORE UPDATE trigger: sets updated_at when anything else changed */
CREATE FUNCTION todo_kafka.touch() RETURNS pg_catalog.trigger
	AS 'MODULE_PATHNAME', 'todo_kafka_touch' LANGUAGE C;

CREATE FUNCTION todo_kafka.publish(stream text, key text, event_type text,
								   data jsonb, headers jsonb DEFAULT '{}')
	RETURNS uuid
	AS 'MODULE_PATHNAME', 'todo_kafka_publish' LANGUAGE C VOLATILE;

CREATE TRIGGER todo_kafka_touch BEFORE UPDATE ON todo_kafka.tasks
	FOR EACH ROW EXECUTE FUNCTION todo_kafka.touch('updated_at');
CREATE TRIGGER todo_kafka_capture AFTER INSERT OR UPDATE OR DELETE ON todo_kafka.tasks
	FOR EACH ROW EXECUTE FUNCTION todo_kafka.capture('id', 'user_id', 'task_events',
													 'completed', 'recurrence_parent');

/* ---------------------------------------------------------------------------
 * track / untrack: attach the same capture to an application's own table
 * ------------------------------------------------------------------------- */
CREATE FUNCTION todo_kafka.track(tbl regclass, key_column name, user_column name,
								 stream text DEFAULT 'task_events')
	RETURNS void LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM todo_kafka.topics t WHERE t.stream = track.stream) THEN
		RAISE EXCEPTION 'unknown stream "%"', stream
			USING ERRCODE = 'undefined_object',
				  HINT = 'Add the stream to todo_kafka.topics first.';
	END IF;
	PERFORM 1 FROM pg_attribute
		WHERE attrelid = tbl AND attname = key_column AND attnum > 0 AND NOT attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'column "%" of table % does not exist', key_column, tbl
			USING ERRCODE = 'undefined_column';
	END IF;
	PERFORM 1 FROM pg_attribute
		WHERE attrelid = tbl AND attname = user_column AND attnum > 0 AND NOT attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'column "%" of table % does not exist', user_column, tbl
			USING ERRCODE = 'undefined_column';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = tbl AND tgname = 'todo_kafka_capture') THEN
		RAISE EXCEPTION 'table % is already tracked', tbl
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Call todo_kafka.untrack() first to change its settings.';
	END IF;
	EXECUTE format('CREATE TRIGGER todo_kafka_capture AFTER INSERT OR UPDATE OR DELETE ON %s '
				   'FOR EACH ROW EXECUTE FUNCTION todo_kafka.capture(%L, %L, %L)',
				   tbl, key_column, user_column, stream);
END
$$;

CREATE FUNCTION todo_kafka.untrack(tbl regclass)
	RETURNS void LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF tbl = 'todo_kafka.tasks'::regclass THEN
		RAISE EXCEPTION 'cannot untrack todo_kafka.tasks'
			USING ERRCODE = 'feature_not_supported';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = tbl AND tgname = 'todo_kafka_capture') THEN
		RAISE EXCEPTION 'table % is not tracked', tbl USING ERRCODE = 'undefined_object';
	END IF;
	EXECUTE format('DROP TRIGGER todo_kafka_capture ON %s', tbl);
END
$$;

/* ---------------------------------------------------------------------------
 * Task API: one function per chatbot tool.  Each names the user; a task of
 * another user is an error (42501) and nothing changes.  Validation happens
 * before any write, so no call is ever half-applied.
 * ------------------------------------------------------------------------- */

/* validate a title, description, priority and tag list; raise on bad input */
CREATE FUNCTION todo_kafka.check_task_input(title text, description text,
											priority text, tags text[])
	RETURNS void LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF title IS NOT NULL AND length(btrim(title)) = 0 THEN
		RAISE EXCEPTION 'task title must not be empty'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give the task a short title, e.g. ''Buy milk''.';
	END IF;
	IF title IS NOT NULL AND length(btrim(title)) > 200 THEN
		RAISE EXCEPTION 'task title is too long (% characters)', length(btrim(title))
			USING ERRCODE = 'string_data_right_truncation',
				  HINT = 'Titles hold at most 200 characters; put details in the description.';
	END IF;
	IF description IS NOT NULL AND length(description) > 10000 THEN
		RAISE EXCEPTION 'task description is too long (% characters)', length(description)
			USING ERRCODE = 'string_data_right_truncation',
				  HINT = 'Descriptions hold at most 10000 characters.';
	END IF;
	IF priority IS NOT NULL AND priority NOT IN ('low', 'medium', 'high') THEN
		RAISE EXCEPTION 'invalid task priority: "%"', priority
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use one of low, medium, high.';
	END IF;
	IF tags IS NOT NULL THEN
		IF array_ndims(tags) > 1 THEN
			RAISE EXCEPTION 'malformed tag list: expected a one-dimensional array'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Pass tags as ''{work,home}''.';
		END IF;
		IF cardinality(tags) > 20 THEN
			RAISE EXCEPTION 'too many tags (%)', cardinality(tags)
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'A task carries at most 20 tags.';
		END IF;
		IF EXISTS (SELECT 1 FROM unnest(tags) t WHERE t IS NULL OR btrim(t) = '' OR length(t) > 50) THEN
			RAISE EXCEPTION 'malformed tag list: tags must be non-empty and at most 50 characters'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Remove empty or NULL tags.';
		END IF;
	END IF;
END
$$;

/* the user's task, locked, or an error that says why not */
CREATE FUNCTION todo_kafka.owned_task(p_user_id text, p_task_id uuid)
	RETURNS todo_kafka.tasks LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t todo_kafka.tasks;
BEGIN
	IF p_user_id IS NULL OR p_task_id IS NULL THEN
		RAISE EXCEPTION 'user id and task id are required'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO t FROM todo_kafka.tasks WHERE id = p_task_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'task % not found', p_task_id
			USING ERRCODE = 'no_data_found';
	END IF;
	IF t.user_id <> p_user_id THEN
		RAISE EXCEPTION 'task % does not belong to user "%"', p_task_id, p_user_id
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	RETURN t;
END
$$;

CREATE FUNCTION todo_kafka.add_task(p_user_id text, p_title text,
									p_description text DEFAULT '',
									p_priority text DEFAULT 'medium',
									p_tags text[] DEFAULT '{}',
									p_due_date timestamptz DEFAULT NULL)
	RETURNS todo_kafka.tasks LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t todo_kafka.tasks;
BEGIN
	IF p_user_id IS NULL OR length(p_user_id) = 0 THEN
		RAISE EXCEPTION 'user id is required' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF p_title IS NULL THEN
		RAISE EXCEPTION 'task title must not be empty'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM todo_kafka.check_task_input(p_title, p_description, p_priority, p_tags);
	INSERT INTO todo_kafka.tasks (user_id, title, description, priority, tags, due_date)
		VALUES (p_user_id, btrim(p_title), coalesce(p_description, ''),
				coalesce(p_priority, 'medium'), coalesce(p_tags, '{}'), p_due_date)
		RETURNING * INTO t;
	RETURN t;
END
$$;

/* NULL arguments mean "leave as is"; p_clear_due_date removes the due date */
CREATE FUNCTION todo_kafka.update_task(p_user_id text, p_task_id uuid,
									   p_title text DEFAULT NULL,
									   p_description text DEFAULT NULL,
									   p_priority text DEFAULT NULL,
									   p_tags text[] DEFAULT NULL,
									   p_due_date timestamptz DEFAULT NULL,
									   p_completed boolean DEFAULT NULL,
									   p_clear_due_date boolean DEFAULT false)
	RETURNS todo_kafka.tasks LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t todo_kafka.tasks;
BEGIN
	PERFORM todo_kafka.check_task_input(p_title, p_description, p_priority, p_tags);
	PERFORM todo_kafka.owned_task(p_user_id, p_task_id);
	UPDATE todo_kafka.tasks SET
		title = coalesce(btrim(p_title), title),
		description = coalesce(p_description, description),
		priority = coalesce(p_priority, priority),
		tags = coalesce(p_tags, tags),
		due_date = CASE WHEN p_clear_due_date THEN NULL ELSE coalesce(p_due_date, due_date) END,
		completed = coalesce(p_completed, completed)
	WHERE id = p_task_id
	RETURNING * INTO t;
	RETURN t;
END
$$;

CREATE FUNCTION todo_kafka.complete_task(p_user_id text, p_task_id uuid)
	RETURNS todo_kafka.tasks LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t todo_kafka.tasks;
BEGIN
	PERFORM todo_kafka.owned_task(p_user_id, p_task_id);
	UPDATE todo_kafka.tasks SET completed = true WHERE id = p_task_id
		RETURNING * INTO t;
	RETURN t;
END
$$;

CREATE FUNCTION todo_kafka.delete_task(p_user_id text, p_task_id uuid)
	RETURNS todo_kafka.tasks LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t todo_kafka.tasks;
BEGIN
	PERFORM todo_kafka.owned_task(p_user_id, p_task_id);
	DELETE FROM todo_kafka.tasks WHERE id = p_task_id RETURNING * INTO t;
	RETURN t;
END
$$;

CREATE FUNCTION todo_kafka.get_task(p_user_id text, p_task_id uuid)
	RETURNS todo_kafka.tasks LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t todo_kafka.tasks;
BEGIN
	SELECT * INTO t FROM todo_kafka.tasks WHERE id = p_task_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'task % not found', p_task_id USING ERRCODE = 'no_data_found';
	END IF;
	IF t.user_id <> p_user_id THEN
		RAISE EXCEPTION 'task % does not belong to user "%"', p_task_id, p_user_id
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	RETURN t;
END
$$;

/* p_status: all | pending | completed */
CREATE FUNCTION todo_kafka.list_tasks(p_user_id text, p_status text DEFAULT 'all')
	RETURNS SETOF todo_kafka.tasks LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF p_status IS NULL OR p_status NOT IN ('all', 'pending', 'completed') THEN
		RAISE EXCEPTION 'invalid task status filter: "%"', p_status
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use one of all, pending, completed.';
	END IF;
	RETURN QUERY
		SELECT * FROM todo_kafka.tasks
		WHERE user_id = p_user_id
		  AND (p_status = 'all' OR completed = (p_status = 'completed'))
		ORDER BY created_at, id;
END
$$;

/* ---------------------------------------------------------------------------
 * Privileges: nothing for PUBLIC; each role gets what its job needs.
 * ------------------------------------------------------------------------- */
REVOKE ALL ON ALL TABLES IN SCHEMA todo_kafka FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA todo_kafka FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA todo_kafka FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
	todo_kafka.add_task(text, text, text, text, text[], timestamptz),
	todo_kafka.update_task(text, uuid, text, text, text, text[], timestamptz, boolean, boolean),
	todo_kafka.complete_task(text, uuid),
	todo_kafka.delete_task(text, uuid),
	todo_kafka.get_task(text, uuid),
	todo_kafka.list_tasks(text, text),
	todo_kafka.publish(text, text, text, jsonb, jsonb)
	TO todo_kafka_app;
GRANT SELECT ON todo_kafka.topics TO todo_kafka_app;

GRANT SELECT, DELETE ON todo_kafka.outbox TO todo_kafka_relay;
GRANT SELECT ON todo_kafka.topics TO todo_kafka_relay;
GRANT SELECT, INSERT ON todo_kafka.dead_letters TO todo_kafka_relay;

GRANT SELECT ON todo_kafka.tasks, todo_kafka.topics, todo_kafka.dead_letters TO todo_kafka_auditor;
