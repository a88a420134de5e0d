/*
 * extension/sql/06_reminders.sql: reminders, recurring tasks and per-user
 * time zones.
 *
 * Reminders.  todo_kafka.reminders holds one row per (task, offset,
 * notification method, due date).  Triggers on todo_kafka.tasks keep it in
 * step with the task in the same transaction; they fire only for tasks that
 * have (or had) a due date and reminder offsets, so other writes pay
 * nothing but the WHEN test:
 *	 todo_kafka_reminders_ins	AFTER INSERT: schedule
 *	 todo_kafka_reminders_upd	AFTER UPDATE of due date, offsets, methods,
 *								completed or user: cancel what is no longer
 *								wanted, schedule what is new
 *	 todo_kafka_reminders_del	BEFORE DELETE: cancel the pending ones (the
 *								foreign key then deletes the rows)
 * A reminder already sent or missed for the same due date, offset and
 * method is never scheduled again.  Every change writes one reminder event
 * (kind 'reminder', stream 'reminders', key = task id) through emit().
 *
 * Firing.  fire_due_reminders(), called by the relay, marks due reminders
 * sent (or missed, when later than the grace period) and writes their
 * events in the caller's transaction, so a reminder fires exactly once
 * however often the relay restarts or fails over.  The event carries the
 * correlation id of the transaction that scheduled the reminder
 * (reminders.correlation_id), so a conversation can be traced to it.
 *
 * Recurrence.  todo_kafka_renew creates the next occurrence when a
 * recurring task is completed, on the wall clock of the user's time zone
 * (user_settings, UTC when unknown); a monthly series keeps its day of
 * month in tasks.recurrence_day (Jan 31 -> Feb 28 -> Mar 31).  Trigger
 * names matter: AFTER triggers fire in name order, and the outbox must
 * read completed, cancelled..., recurring-created, scheduled...
 */

/* ---------------------------------------------------------------------------
 * Per-user settings, written through set_user_time_zone() only
 * ------------------------------------------------------------------------- */
CREATE TABLE todo_kafka.user_settings (
	user_id				text PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 200),
	time_zone			text NOT NULL,
	updated_at			timestamptz NOT NULL DEFAULT now()
);

/* ---------------------------------------------------------------------------
 * Reminders
 * ------------------------------------------------------------------------- */
CREATE TABLE todo_kafka.reminders (
	reminder_id			uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	task_id				uuid NOT NULL REFERENCES todo_kafka.tasks (id) ON DELETE CASCADE,
	user_id				text NOT NULL,
	"offset"			interval NOT NULL,
	notification_method	text NOT NULL
		CHECK (notification_method IN ('email', 'push', 'in_app')),
	due_date			timestamptz NOT NULL,	/* the task's due date it was made for */
	scheduled_time		timestamptz NOT NULL,	/* due_date - offset, in the user's zone */
	status				text NOT NULL DEFAULT 'scheduled'
		CHECK (status IN ('scheduled', 'sent', 'missed', 'cancelled')),
	message				text NOT NULL,			/* as in the last event */
	created_at			timestamptz NOT NULL DEFAULT now(),
	fired_at			timestamptz,
	cancelled_at		timestamptz,
	correlation_id		text DEFAULT todo_kafka.current_correlation_id(),	/* of the scheduling transaction */
	CHECK ((status IN ('sent', 'missed')) = (fired_at IS NOT NULL)),
	CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
);
COMMENT ON COLUMN todo_kafka.reminders.correlation_id IS
	'correlation id of the transaction that scheduled the reminder; its sent/missed event carries it (NULL for reminders scheduled before 0.4.0)';

CREATE INDEX reminders_task_id_idx ON todo_kafka.reminders (task_id);

/* fire_due_reminders: the due ones, and the next one */
CREATE INDEX reminders_pending_idx ON todo_kafka.reminders (scheduled_time)
	WHERE status = 'scheduled';
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.reminders', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.user_settings', '');

/* ---------------------------------------------------------------------------
 * Helpers (internal: granted to nobody)
 * ------------------------------------------------------------------------- */

/* validate recurrence, reminder offsets and notification methods of a task */
CREATE OR REPLACE FUNCTION todo_kafka.check_schedule_input(due_date timestamp with time zone, recurrence text, reminder_offsets interval[], notification_methods text[])
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	o interval;
	m text;
BEGIN
	IF recurrence IS NULL OR recurrence NOT IN ('none', 'daily', 'weekly', 'monthly') THEN
		RAISE EXCEPTION 'invalid recurrence: "%"', recurrence
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use one of none, daily, weekly, monthly.';
	END IF;
	IF reminder_offsets IS NULL OR array_ndims(reminder_offsets) > 1 THEN
		RAISE EXCEPTION 'malformed reminder offsets: expected a one-dimensional array'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass offsets as ARRAY[interval ''1 day'', interval ''15 minutes''].';
	END IF;
	IF cardinality(reminder_offsets) > 10 THEN
		RAISE EXCEPTION 'too many reminder offsets (%)', cardinality(reminder_offsets)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A task carries at most 10 reminder offsets.';
	END IF;
	FOREACH o IN ARRAY reminder_offsets LOOP
		IF o IS NULL THEN
			RAISE EXCEPTION 'reminder offsets must not be null'
				USING ERRCODE = 'null_value_not_allowed',
					  HINT = 'Remove NULL entries from the offset list.';
		END IF;
		IF o < interval '0' THEN
			RAISE EXCEPTION 'reminder offset must not be negative: "%"', o
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Offsets count back from the due date, e.g. ''15 minutes'' or ''1 day''.';
		END IF;
		IF o > interval '365 days' THEN
			RAISE EXCEPTION 'reminder offset is too large: "%"', o
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'A reminder comes at most 365 days before the due date.';
		END IF;
	END LOOP;
	IF notification_methods IS NULL OR array_ndims(notification_methods) > 1 THEN
		RAISE EXCEPTION 'malformed notification methods: expected a one-dimensional array'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass methods as ''{email,push}''.';
	END IF;
	IF cardinality(notification_methods) > 10 THEN
		RAISE EXCEPTION 'too many notification methods (%)', cardinality(notification_methods)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use each of email, push and in_app at most once.';
	END IF;
	FOREACH m IN ARRAY notification_methods LOOP
		IF m IS NULL OR m NOT IN ('email', 'push', 'in_app') THEN
			RAISE EXCEPTION 'invalid notification method: "%"', m
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use email, push or in_app.';
		END IF;
	END LOOP;
	IF cardinality(reminder_offsets) > 0 AND cardinality(notification_methods) = 0 THEN
		RAISE EXCEPTION 'reminders need at least one notification method'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass notification methods, e.g. ''{in_app}''.';
	END IF;
	IF due_date IS NULL AND cardinality(reminder_offsets) > 0 THEN
		RAISE EXCEPTION 'reminders need a due date'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give the task a due date, or pass an empty offset list ''{}'' to remove its reminders.';
	END IF;
	IF due_date IS NULL AND recurrence <> 'none' THEN
		RAISE EXCEPTION 'a recurring task needs a due date'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give the task a due date, or set its recurrence to ''none''.';
	END IF;
END
$function$;

/*
 * The reminder text: the due time in the given zone (UTC when NULL), e.g.
 * Reminder: "Buy milk" is due at 2030-01-02 10:00 CET.  The SET clause
 * confines the zone change to this call.
 */
CREATE OR REPLACE FUNCTION todo_kafka.reminder_message(title text, due_date timestamp with time zone, time_zone text)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET "TimeZone" TO 'UTC'
AS $function$
BEGIN
	IF time_zone IS NOT NULL THEN
		PERFORM set_config('TimeZone', time_zone, true);
	END IF;
	RETURN format('Reminder: "%s" is due at %s', title,
				  to_char(due_date, 'YYYY-MM-DD HH24:MI TZ'));
END
$function$;

/* write one reminder event; data = the infrastructure spec's reminders schema */
CREATE OR REPLACE FUNCTION todo_kafka.emit_reminder(reminder_id uuid, task_id uuid, user_id text, scheduled_time timestamp with time zone, notification_method text, event_type text, message text)
 RETURNS uuid
 LANGUAGE sql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
	SELECT todo_kafka.emit('reminder', 'reminders', task_id::text, event_type, user_id,
		jsonb_build_object(
			'event_type', event_type,
			'reminder_id', reminder_id,
			'task_id', task_id,
			'user_id', user_id,
			'message', message,
			'scheduled_time', to_char(scheduled_time AT TIME ZONE 'UTC',
									  'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
			'notification_method', notification_method,
			'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC',
								 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
			'correlation_id', todo_kafka.current_correlation_id()),
		'todo_kafka.reminders')
$function$;

/*
 * Next occurrence of a recurring due date, computed on the wall clock of
 * time_zone (UTC when NULL).  monthly keeps series_day (the series' day of
 * month) where the month has it, else takes the month's last day; a
 * series_day that does not fit due_date (the user moved the task) is
 * ignored and due_date's own day is used.  Returns the next due date and
 * the series day to store with it (NULL unless monthly).
 */
CREATE OR REPLACE FUNCTION todo_kafka.next_occurrence(due_date timestamp with time zone, recurrence text, time_zone text DEFAULT NULL::text, series_day integer DEFAULT NULL::integer, OUT next_due_date timestamp with time zone, OUT next_series_day integer)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	tz text := coalesce(time_zone, 'UTC');
	loc timestamp := due_date AT TIME ZONE tz;
	loc_day integer := extract(day FROM loc)::integer;
	this_month_days integer;
	next_month timestamp;
	next_month_days integer;
BEGIN
	IF due_date IS NULL THEN
		RAISE EXCEPTION 'a recurring task needs a due date'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	CASE recurrence
		WHEN 'daily' THEN
			next_due_date := (loc + interval '1 day') AT TIME ZONE tz;
		WHEN 'weekly' THEN
			next_due_date := (loc + interval '7 days') AT TIME ZONE tz;
		WHEN 'monthly' THEN
			this_month_days := extract(day FROM date_trunc('month', loc)
									   + interval '1 month - 1 day')::integer;
			next_series_day := loc_day;
			IF series_day BETWEEN 1 AND 31 AND series_day > loc_day
				AND loc_day = this_month_days THEN
				next_series_day := series_day;	/* a short month clipped it */
			END IF;
			next_month := date_trunc('month', loc) + interval '1 month';
			next_month_days := extract(day FROM next_month + interval '1 month - 1 day')::integer;
			next_due_date := (next_month
							  + make_interval(days => least(next_series_day, next_month_days) - 1)
							  + (loc - date_trunc('day', loc))) AT TIME ZONE tz;
		ELSE
			RAISE EXCEPTION 'invalid recurrence: "%"', recurrence
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use one of daily, weekly, monthly.';
	END CASE;
END
$function$;

/* ---------------------------------------------------------------------------
 * Triggers on todo_kafka.tasks
 * ------------------------------------------------------------------------- */

/*
 * Bring the reminders of task t in step with it.  Wanted (p_wanted): one
 * reminder per distinct (offset, method) for the task's current due date.
 * Pending reminders that are no longer wanted are cancelled; wanted ones
 * not yet scheduled, sent or missed are scheduled.  Offsets are subtracted
 * on the user's wall clock ('1 day' before 09:00 is 09:00 the day before).
 */
CREATE OR REPLACE FUNCTION todo_kafka.sync_task_reminders(t todo_kafka.tasks, p_wanted boolean)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET "TimeZone" TO 'UTC'
AS $function$
DECLARE
	v_tz		text;
	v_message	text;
	r			todo_kafka.reminders;
BEGIN
	SELECT s.time_zone INTO v_tz FROM todo_kafka.user_settings s WHERE s.user_id = t.user_id;
	v_message := todo_kafka.reminder_message(t.title, t.due_date, v_tz);
	IF v_tz IS NOT NULL THEN
		PERFORM set_config('TimeZone', v_tz, true);		/* undone at return */
	END IF;

	FOR r IN
		SELECT * FROM todo_kafka.reminders rm
		 WHERE rm.task_id = t.id AND rm.status = 'scheduled'
		   AND NOT (p_wanted
					AND rm.user_id = t.user_id
					AND rm.due_date = t.due_date
					AND rm."offset" = ANY (t.reminder_offsets)
					AND rm.notification_method = ANY (t.notification_methods))
		 ORDER BY rm.scheduled_time, rm.notification_method
		   FOR UPDATE
	LOOP
		UPDATE todo_kafka.reminders
		   SET status = 'cancelled', cancelled_at = clock_timestamp(), message = v_message
		 WHERE reminder_id = r.reminder_id;
		PERFORM todo_kafka.emit_reminder(r.reminder_id, r.task_id, r.user_id, r.scheduled_time,
										 r.notification_method, 'cancelled', v_message);
	END LOOP;

	IF NOT p_wanted THEN
		RETURN;
	END IF;
	FOR r IN
		INSERT INTO todo_kafka.reminders
			(task_id, user_id, "offset", notification_method, due_date, scheduled_time, message)
		SELECT t.id, t.user_id, o.o, m.m, t.due_date, t.due_date - o.o, v_message
		  FROM (SELECT DISTINCT x AS o FROM unnest(t.reminder_offsets) x) o
		 CROSS JOIN (SELECT DISTINCT y AS m FROM unnest(t.notification_methods) y) m
		 WHERE NOT EXISTS (SELECT 1 FROM todo_kafka.reminders rm
							WHERE rm.task_id = t.id AND rm.status <> 'cancelled'
							  AND rm.user_id = t.user_id AND rm.due_date = t.due_date
							  AND rm."offset" = o.o AND rm.notification_method = m.m)
		 ORDER BY t.due_date - o.o, m.m
		RETURNING *
	LOOP
		PERFORM todo_kafka.emit_reminder(r.reminder_id, r.task_id, r.user_id, r.scheduled_time,
										 r.notification_method, 'scheduled', v_message);
	END LOOP;
END
$function$;

/* trigger: reminders of an open task with a due date are wanted */
CREATE OR REPLACE FUNCTION todo_kafka.sync_reminders()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	IF TG_OP = 'DELETE' THEN
		PERFORM todo_kafka.sync_task_reminders(OLD, false);
		RETURN OLD;				/* before trigger: go ahead with the delete */
	END IF;
	PERFORM todo_kafka.sync_task_reminders(NEW, NEW.due_date IS NOT NULL AND NOT NEW.completed
											AND cardinality(NEW.reminder_offsets) > 0);
	RETURN NULL;				/* after trigger; value doesn't matter */
END
$function$;

/* completing a recurring task creates its next occurrence (once) */
CREATE OR REPLACE FUNCTION todo_kafka.renew_task()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	v_tz	text;
	v_next	record;
BEGIN
	/* completed, reopened and completed again: the series already went on */
	IF EXISTS (SELECT 1 FROM todo_kafka.tasks WHERE recurrence_parent = NEW.id) THEN
		RETURN NULL;
	END IF;
	SELECT s.time_zone INTO v_tz FROM todo_kafka.user_settings s WHERE s.user_id = NEW.user_id;
	SELECT * INTO v_next
	  FROM todo_kafka.next_occurrence(NEW.due_date, NEW.recurrence, v_tz, NEW.recurrence_day);
	INSERT INTO todo_kafka.tasks
		(user_id, title, description, priority, tags, due_date, recurrence,
		 reminder_offsets, notification_methods, recurrence_parent, recurrence_day)
	VALUES (NEW.user_id, NEW.title, NEW.description, NEW.priority, NEW.tags,
			v_next.next_due_date, NEW.recurrence, NEW.reminder_offsets,
			NEW.notification_methods, NEW.id, v_next.next_series_day);
	RETURN NULL;				/* after trigger; value doesn't matter */
END
$function$;

CREATE TRIGGER todo_kafka_reminders_ins AFTER INSERT ON todo_kafka.tasks
	FOR EACH ROW
	WHEN (NEW.due_date IS NOT NULL AND NOT NEW.completed
		  AND cardinality(NEW.reminder_offsets) > 0)
	EXECUTE FUNCTION todo_kafka.sync_reminders();

CREATE TRIGGER todo_kafka_reminders_upd AFTER UPDATE ON todo_kafka.tasks
	FOR EACH ROW
	WHEN ((OLD.due_date IS NOT NULL AND NOT OLD.completed AND cardinality(OLD.reminder_offsets) > 0
		   OR NEW.due_date IS NOT NULL AND NOT NEW.completed AND cardinality(NEW.reminder_offsets) > 0)
		  AND (OLD.due_date IS DISTINCT FROM NEW.due_date
			   OR OLD.reminder_offsets IS DISTINCT FROM NEW.reminder_offsets
			   OR OLD.notification_methods IS DISTINCT FROM NEW.notification_methods
			   OR OLD.completed IS DISTINCT FROM NEW.completed
			   OR OLD.user_id IS DISTINCT FROM NEW.user_id))
	EXECUTE FUNCTION todo_kafka.sync_reminders();

CREATE TRIGGER todo_kafka_reminders_del BEFORE DELETE ON todo_kafka.tasks
	FOR EACH ROW
	WHEN (OLD.due_date IS NOT NULL AND NOT OLD.completed AND cardinality(OLD.reminder_offsets) > 0)
	EXECUTE FUNCTION todo_kafka.sync_reminders();

/* after todo_kafka_capture ("completed") and todo_kafka_reminders_upd ("cancelled") */
CREATE TRIGGER todo_kafka_renew AFTER UPDATE OF completed ON todo_kafka.tasks
	FOR EACH ROW
	WHEN (NOT OLD.completed AND NEW.completed AND NEW.recurrence <> 'none'
		  AND NEW.due_date IS NOT NULL)
	EXECUTE FUNCTION todo_kafka.renew_task();

/* ---------------------------------------------------------------------------
 * Per-user time zone
 * ------------------------------------------------------------------------- */

/* store the user's zone (a name from pg_timezone_names); NULL forgets it */
CREATE OR REPLACE FUNCTION todo_kafka.set_user_time_zone(p_user_id text, p_time_zone text)
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	v_name text;
BEGIN
	IF p_user_id IS NULL OR length(p_user_id) = 0 THEN
		RAISE EXCEPTION 'user id is required' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF p_time_zone IS NULL THEN
		DELETE FROM todo_kafka.user_settings WHERE user_id = p_user_id;
		RETURN NULL;
	END IF;
	SELECT z.name INTO v_name FROM pg_timezone_names z
	 WHERE lower(z.name) = lower(btrim(p_time_zone))
	 ORDER BY z.name = btrim(p_time_zone) DESC, z.name
	 LIMIT 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown time zone: "%"', p_time_zone
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use a name from pg_timezone_names, e.g. ''Europe/Berlin'' or ''America/New_York''.';
	END IF;
	INSERT INTO todo_kafka.user_settings AS s (user_id, time_zone)
		VALUES (p_user_id, v_name)
		ON CONFLICT (user_id) DO UPDATE SET time_zone = EXCLUDED.time_zone, updated_at = now();
	RETURN v_name;
END
$function$;

CREATE OR REPLACE FUNCTION todo_kafka.fire_due_reminders(grace interval DEFAULT '00:05:00'::interval, max_rows integer DEFAULT 1000)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET "todo_kafka.correlation_id" TO ''
AS $function$
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
$function$;
