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
