/*
 * extension/sql/03_tasks.sql: the tasks table and the task API the
 * chatbot calls (todo_kafka_app): add, update, complete, delete, get and
 * list a user's tasks, with their input checks and updated_at.
 *
 * The actor of a task API call.  With no todo_kafka.actor set, the events
 * of add_task, update_task, complete_task and delete_task (and of what
 * their triggers do: reminders, the next occurrence of a recurring task)
 * name the user the call was made for, not the database role.  Each of
 * these functions sets todo_kafka.api_user to p_user_id; its SET clause
 * confines that to the call, so plain SQL on the table afterwards, even in
 * the same transaction, keeps the role.  todo_kafka.actor, when set, still
 * wins; db_role always records the role (04_outbox_capture.sql).
 */

/* ---------------------------------------------------------------------------
 * Tasks (fields of the infrastructure spec's task_data, plus recurrence and
 * reminder settings).  updated_at is kept by todo_kafka.touch().  The limits
 * the API enforces are constraints too, for direct writes.
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
	updated_at			timestamptz NOT NULL DEFAULT now(),
	recurrence_day		smallint
		CONSTRAINT tasks_recurrence_day_check CHECK (recurrence_day BETWEEN 1 AND 31),
	CONSTRAINT tasks_reminder_offsets_check
		CHECK (cardinality(reminder_offsets) <= 10
			   AND array_position(reminder_offsets, NULL) IS NULL
			   AND interval '0' <= ALL (reminder_offsets)
			   AND interval '365 days' >= ALL (reminder_offsets)),
	CONSTRAINT tasks_notification_methods_check
		CHECK (cardinality(notification_methods) <= 10
			   AND notification_methods <@ '{email,push,in_app}'::text[]),
	CONSTRAINT tasks_schedule_needs_due_date_check
		CHECK (due_date IS NOT NULL
			   OR (recurrence = 'none' AND cardinality(reminder_offsets) = 0))
);
COMMENT ON COLUMN todo_kafka.tasks.recurrence_day IS
	'day of month a monthly series keeps when a month is shorter (set on occurrences made by completion)';

CREATE INDEX tasks_user_id_idx ON todo_kafka.tasks (user_id, created_at);
CREATE INDEX tasks_recurrence_parent_idx ON todo_kafka.tasks (recurrence_parent)
	WHERE recurrence_parent IS NOT NULL;
/* pg_dump keeps extension tables' data only when marked (as every table holding data is) */
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.tasks', '');

/* BEFORE UPDATE trigger: sets updated_at when anything else changed */
CREATE OR REPLACE FUNCTION todo_kafka.touch()
 RETURNS trigger
 LANGUAGE c
AS '$libdir/todo_kafka', $function$todo_kafka_touch$function$;

CREATE TRIGGER todo_kafka_touch BEFORE UPDATE ON todo_kafka.tasks
	FOR EACH ROW EXECUTE FUNCTION todo_kafka.touch('updated_at');

/* ---------------------------------------------------------------------------
 * Task API: one function per chatbot tool.  Each names the user; a task of
 * another user is an error (42501) and nothing changes.  Validation happens
 * before any write, so no call is ever half-applied.
 * ------------------------------------------------------------------------- */

/* validate a title, description, priority and tag list; raise on bad input */
CREATE OR REPLACE FUNCTION todo_kafka.check_task_input(title text, description text, priority text, tags text[])
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/* the user's task, locked, or an error that says why not */
CREATE OR REPLACE FUNCTION todo_kafka.owned_task(p_user_id text, p_task_id uuid)
 RETURNS todo_kafka.tasks
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION todo_kafka.get_task(p_user_id text, p_task_id uuid)
 RETURNS todo_kafka.tasks
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/* p_status: all | pending | completed */
CREATE OR REPLACE FUNCTION todo_kafka.list_tasks(p_user_id text, p_status text DEFAULT 'all'::text)
 RETURNS SETOF todo_kafka.tasks
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/* ---------------------------------------------------------------------------
 * Task API: the actor of a call is its user (see the header).  Same
 * signatures, bodies and privileges as before, plus the api_user setting.
 * ------------------------------------------------------------------------- */
CREATE OR REPLACE FUNCTION todo_kafka.add_task(p_user_id text, p_title text, p_description text DEFAULT ''::text, p_priority text DEFAULT 'medium'::text, p_tags text[] DEFAULT '{}'::text[], p_due_date timestamp with time zone DEFAULT NULL::timestamp with time zone, p_recurrence text DEFAULT 'none'::text, p_reminder_offsets interval[] DEFAULT '{}'::interval[], p_notification_methods text[] DEFAULT '{in_app}'::text[])
 RETURNS todo_kafka.tasks
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET "todo_kafka.api_user" TO ''
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION todo_kafka.update_task(p_user_id text, p_task_id uuid, p_title text DEFAULT NULL::text, p_description text DEFAULT NULL::text, p_priority text DEFAULT NULL::text, p_tags text[] DEFAULT NULL::text[], p_due_date timestamp with time zone DEFAULT NULL::timestamp with time zone, p_completed boolean DEFAULT NULL::boolean, p_clear_due_date boolean DEFAULT false, p_recurrence text DEFAULT NULL::text, p_reminder_offsets interval[] DEFAULT NULL::interval[], p_notification_methods text[] DEFAULT NULL::text[])
 RETURNS todo_kafka.tasks
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET "todo_kafka.api_user" TO ''
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION todo_kafka.complete_task(p_user_id text, p_task_id uuid)
 RETURNS todo_kafka.tasks
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET "todo_kafka.api_user" TO ''
AS $function$
DECLARE
	t todo_kafka.tasks;
BEGIN
	PERFORM pg_catalog.set_config('todo_kafka.api_user', coalesce(p_user_id, ''), true);
	PERFORM todo_kafka.owned_task(p_user_id, p_task_id);
	UPDATE todo_kafka.tasks SET completed = true WHERE id = p_task_id
		RETURNING * INTO t;
	RETURN t;
END
$function$;

CREATE OR REPLACE FUNCTION todo_kafka.delete_task(p_user_id text, p_task_id uuid)
 RETURNS todo_kafka.tasks
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET "todo_kafka.api_user" TO ''
AS $function$
DECLARE
	t todo_kafka.tasks;
BEGIN
	PERFORM pg_catalog.set_config('todo_kafka.api_user', coalesce(p_user_id, ''), true);
	PERFORM todo_kafka.owned_task(p_user_id, p_task_id);
	DELETE FROM todo_kafka.tasks WHERE id = p_task_id RETURNING * INTO t;
	RETURN t;
END
$function$;
