/*
 * extension/sql/11_notify_delivery.sql: what todo-kafka-notify calls
 * (todo_kafka_notifier): the fan-out plan and the targets of an event, the
 * delivery log (claim, done, retry: each send at most once per
 * notification, channel and target), the in-app inbox with its NOTIFY
 * channel (the chatbot lists and marks it read), and the log's retention.
 */

/* the in-app inbox */
CREATE TABLE todo_kafka.notifications (
	id					bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	notification_id		text NOT NULL UNIQUE,	/* <source event id>:in_app */
	user_id				text NOT NULL,
	kind				text NOT NULL,
	task_id				uuid,
	title				text NOT NULL,
	body				text NOT NULL,
	read				boolean NOT NULL DEFAULT false,
	created_at			timestamptz NOT NULL DEFAULT now(),
	read_at				timestamptz,
	trace_id			text			/* W3C trace id of the notification (0.5.0) */
);

CREATE INDEX notifications_user_id_idx ON todo_kafka.notifications (user_id, id);

/* the delivery log: one row per (notification, channel, target) */
CREATE TABLE todo_kafka.notification_deliveries (
	notification_id		text NOT NULL,
	channel				text NOT NULL CHECK (channel IN ('email', 'push', 'in_app')),
	target				text NOT NULL,	/* address, endpoint, gateway URL, user */
	user_id				text NOT NULL,
	/* dead_lettered: refused for good or failed on its last attempt, the
	 * notification went to the dead-letter topic (a replay claims it again);
	 * failed: the same, as rows written before 0.5.0 say it (skipped by a claim) */
	status				text NOT NULL CHECK (status IN ('sending', 'retry', 'delivered', 'gone', 'failed',
														'interrupted', 'dead_lettered')),
	attempts			integer NOT NULL DEFAULT 1,
	detail				text,
	claimed_at			timestamptz NOT NULL DEFAULT clock_timestamp(),
	finished_at			timestamptz,
	PRIMARY KEY (notification_id, channel, target)
);

CREATE INDEX notification_deliveries_claimed_at_idx
	ON todo_kafka.notification_deliveries (claimed_at);

SELECT pg_catalog.pg_extension_config_dump('todo_kafka.notifications', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.notifications_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.notification_deliveries', '');

/*
 * The NOTIFY channel of a user's inbox: LISTEN "<this>" to see new rows.
 * A digest, so any user id gives a valid identifier of fixed length.
 */
CREATE OR REPLACE FUNCTION todo_kafka.inbox_channel(p_user_id text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
	SELECT 'todo_kafka_inbox_' || left(md5(p_user_id), 24)
$function$;

/* the user's inbox, newest first */
CREATE OR REPLACE FUNCTION todo_kafka.list_notifications(p_user_id text, p_unread_only boolean DEFAULT false, p_limit integer DEFAULT 50)
 RETURNS SETOF todo_kafka.notifications
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	RETURN QUERY
		SELECT * FROM todo_kafka.notifications n
		 WHERE n.user_id = p_user_id AND (NOT coalesce(p_unread_only, false) OR NOT n.read)
		 ORDER BY n.id DESC
		 LIMIT greatest(coalesce(p_limit, 50), 0);
END
$function$;

/* mark one notification read; false if it already was */
CREATE OR REPLACE FUNCTION todo_kafka.mark_notification_read(p_user_id text, p_id bigint)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	v_owner		text;
	v_read		boolean;
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	SELECT user_id, read INTO v_owner, v_read FROM todo_kafka.notifications
	 WHERE id = p_id FOR UPDATE;
	IF NOT FOUND OR v_owner <> p_user_id THEN
		/* another user's notification is as good as absent */
		RAISE EXCEPTION 'notification % not found', p_id USING ERRCODE = 'no_data_found';
	END IF;
	IF v_read THEN
		RETURN false;
	END IF;
	UPDATE todo_kafka.notifications SET read = true, read_at = now() WHERE id = p_id;
	RETURN true;
END
$function$;

/* ---------------------------------------------------------------------------
 * Consumer API (todo_kafka_consumer): todo-kafka-notify
 * ------------------------------------------------------------------------- */

/* the due time as the user reads it: 2030-01-02 10:00 CET (Europe/Berlin) */
CREATE OR REPLACE FUNCTION todo_kafka.notify_local_time(p_at timestamp with time zone, p_time_zone text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET "TimeZone" TO 'UTC'
AS $function$
BEGIN
	PERFORM set_config('TimeZone', coalesce(p_time_zone, 'UTC'), true);
	RETURN to_char(p_at, 'YYYY-MM-DD HH24:MI TZ') || ' (' || coalesce(p_time_zone, 'UTC') || ')';
END
$function$;

/*
 * Fan-out: the channels an event goes to and what it says.
 *	 p_kind			task_created | reminder
 *	 p_requested	the reminder's method ({email}); NULL for a new task (the
 *					user's enabled channels)
 *	 p_task_id, p_title, p_due_date	from the event; the task's current
 *					title and due date win when it still exists
 *	 p_late			a reminder fired late ("missed")
 * One row per channel, in channel order; no row = nothing to send (channel
 * disabled, quiet hours).  due_date is RFC 3339 UTC, due_local the due time
 * in the user's zone.
 * Read-only: a redelivered event gets the same answer unless the settings
 * changed in between.
 */
CREATE OR REPLACE FUNCTION todo_kafka.notification_plan(p_user_id text, p_kind text, p_requested text[], p_task_id uuid, p_title text, p_due_date timestamp with time zone, p_late boolean DEFAULT false, p_at timestamp with time zone DEFAULT now())
 RETURNS TABLE(channel text, title text, body text, due_date text, due_local text, time_zone text)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	v_tz		text;
	v_enabled	text[];
	v_s			todo_kafka.notification_settings;
	v_title		text := p_title;
	v_due		timestamptz := p_due_date;
	v_local		time;
	v_quiet		boolean := false;
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	IF p_kind IS NULL OR p_kind NOT IN ('task_created', 'reminder') THEN
		RAISE EXCEPTION 'unknown notification kind: "%"', p_kind
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The kinds are task_created and reminder.';
	END IF;
	SELECT u.time_zone INTO v_tz FROM todo_kafka.user_settings u WHERE u.user_id = p_user_id;
	SELECT c.channels INTO v_enabled FROM todo_kafka.notification_channels c
	 WHERE c.user_id = p_user_id AND c.kind = p_kind;
	v_enabled := coalesce(v_enabled, todo_kafka.notify_default_channels(p_kind));
	IF p_requested IS NOT NULL THEN
		v_enabled := ARRAY(SELECT x FROM unnest(v_enabled) x WHERE x = ANY (p_requested));
	END IF;
	SELECT * INTO v_s FROM todo_kafka.notification_settings s WHERE s.user_id = p_user_id;
	IF p_kind = 'task_created' AND v_s.quiet_start IS NOT NULL THEN
		v_local := (p_at AT TIME ZONE coalesce(v_tz, 'UTC'))::time;
		v_quiet := CASE WHEN v_s.quiet_start < v_s.quiet_end
						THEN v_local >= v_s.quiet_start AND v_local < v_s.quiet_end
						ELSE v_local >= v_s.quiet_start OR v_local < v_s.quiet_end END;
	END IF;
	IF p_task_id IS NOT NULL THEN
		SELECT t.title, t.due_date INTO v_title, v_due FROM todo_kafka.tasks t
		 WHERE t.id = p_task_id AND t.user_id = p_user_id;
		IF NOT FOUND THEN
			v_title := p_title;
			v_due := p_due_date;
		END IF;
	END IF;
	v_title := coalesce(v_title, 'a task');
	due_date := to_char(v_due AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
	due_local := CASE WHEN v_due IS NULL THEN NULL ELSE todo_kafka.notify_local_time(v_due, v_tz) END;
	time_zone := coalesce(v_tz, 'UTC');
	IF p_kind = 'task_created' THEN
		title := 'New task: ' || v_title;
		body := format('New task "%s" was added.', v_title)
			|| CASE WHEN due_local IS NULL THEN ' It has no due date.'
					ELSE format(' It is due at %s.', due_local) END;
	ELSE
		title := CASE WHEN p_late THEN 'Missed reminder: ' ELSE 'Reminder: ' END || v_title;
		body := format('Reminder: "%s" is due at %s.', v_title, coalesce(due_local, 'no set time'))
			|| CASE WHEN p_late THEN ' (This reminder was delivered late.)' ELSE '' END;
	END IF;
	FOR channel IN SELECT x FROM unnest(v_enabled) x ORDER BY 1 LOOP
		CONTINUE WHEN v_quiet AND channel <> 'in_app';
		RETURN NEXT;
	END LOOP;
END
$function$;

/*
 * Delivery: where a channel reaches the user now.
 *	 email	 ('email', address)
 *	 push	 ('webpush', endpoint, p256dh, auth) per subscription, and
 *			 ('gateway', url) when a gateway is set
 *	 in_app	 ('in_app', user id)
 * No row: the user has no target on that channel (nothing to deliver).
 */
CREATE OR REPLACE FUNCTION todo_kafka.notification_targets(p_user_id text, p_channel text)
 RETURNS TABLE(mode text, target text, p256dh text, auth text)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	IF p_channel = 'email' THEN
		RETURN QUERY SELECT 'email', s.email, NULL::text, NULL::text
					   FROM todo_kafka.notification_settings s
					  WHERE s.user_id = p_user_id AND s.email IS NOT NULL;
	ELSIF p_channel = 'push' THEN
		RETURN QUERY SELECT 'webpush', p.endpoint, p.p256dh, p.auth
					   FROM todo_kafka.push_subscriptions p
					  WHERE p.user_id = p_user_id ORDER BY p.created_at, p.endpoint;
		RETURN QUERY SELECT 'gateway', s.push_gateway_url, NULL::text, NULL::text
					   FROM todo_kafka.notification_settings s
					  WHERE s.user_id = p_user_id AND s.push_gateway_url IS NOT NULL;
	ELSIF p_channel = 'in_app' THEN
		RETURN QUERY SELECT 'in_app', p_user_id, NULL::text, NULL::text;
	ELSE
		RAISE EXCEPTION 'unknown notification channel: "%"', p_channel
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The channels are email, push and in_app.';
	END IF;
END
$function$;

/* a claimed send failed without delivering (transient): the next claim sends again */
CREATE OR REPLACE FUNCTION todo_kafka.delivery_retry(p_notification_id text, p_channel text, p_target text, p_detail text DEFAULT NULL::text)
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
	UPDATE todo_kafka.notification_deliveries d
	   SET status = 'retry', detail = p_detail, finished_at = clock_timestamp()
	 WHERE d.notification_id = p_notification_id AND d.channel = p_channel
	   AND d.target = p_target AND d.status = 'sending'
$function$;

/*
 * In-app delivery in one transaction: the inbox row, the delivery log row
 * and a NOTIFY on inbox_channel(user) with the row as JSON (sent at
 * commit).  true = delivered now, false = it already was (nothing done).
 */
CREATE OR REPLACE FUNCTION todo_kafka.deliver_in_app(p_notification_id text, p_user_id text, p_kind text, p_task_id uuid, p_title text, p_body text, p_trace_id text DEFAULT NULL)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	n	todo_kafka.notifications;
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	INSERT INTO todo_kafka.notifications (notification_id, user_id, kind, task_id, title, body, trace_id)
		VALUES (p_notification_id, p_user_id, p_kind, p_task_id,
				left(coalesce(p_title, ''), 500), left(coalesce(p_body, ''), 4000),
				CASE WHEN p_trace_id ~ '^[0-9a-f]{32}$' THEN p_trace_id END)
		ON CONFLICT (notification_id) DO NOTHING
		RETURNING * INTO n;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	INSERT INTO todo_kafka.notification_deliveries AS d
			(notification_id, channel, target, user_id, status, finished_at)
		VALUES (p_notification_id, 'in_app', p_user_id, p_user_id, 'delivered', clock_timestamp())
		ON CONFLICT (notification_id, channel, target) DO UPDATE
			SET status = 'delivered', finished_at = EXCLUDED.finished_at;
	/* NOTIFY payloads stop at 8000 bytes: the body is cut to keep under it */
	PERFORM pg_notify(todo_kafka.inbox_channel(p_user_id),
					  jsonb_build_object('id', n.id, 'notification_id', n.notification_id,
										 'kind', n.kind, 'task_id', n.task_id,
										 'title', left(n.title, 200), 'body', left(n.body, 1000),
										 'created_at', n.created_at)::text);
	RETURN true;
END
$function$;

/* a push service answered 404/410: forget the subscription (true if it existed) */
CREATE OR REPLACE FUNCTION todo_kafka.push_subscription_gone(p_endpoint text)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	DELETE FROM todo_kafka.push_subscriptions WHERE endpoint = p_endpoint;
	RETURN FOUND;
END
$function$;

/*
 * Retention of the delivery log: rows claimed before p_older_than ago
 * (longer than the topic keeps a message, so no redelivery can need them).
 */
CREATE OR REPLACE FUNCTION todo_kafka.purge_notification_deliveries(p_older_than interval DEFAULT '30 days'::interval)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	n	bigint;
BEGIN
	DELETE FROM todo_kafka.notification_deliveries
	 WHERE claimed_at < now() - p_older_than AND status <> 'sending';
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$function$;

/*
 * Claim one send.  Returns
 *	 'claimed'		send it now, then delivery_done() or delivery_retry()
 *	 'delivered', 'gone', 'failed'	done before: skip
 *	 'interrupted'	an earlier attempt died mid-send: skip (at most once),
 *					unless p_take_over
 * A row in 'retry' or 'dead_lettered' (a replayed dead letter) is claimed.
 */
CREATE OR REPLACE FUNCTION todo_kafka.delivery_claim(p_notification_id text, p_channel text, p_target text, p_user_id text, p_take_over boolean DEFAULT false)
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	v_status	text;
BEGIN
	INSERT INTO todo_kafka.notification_deliveries (notification_id, channel, target, user_id, status)
		VALUES (p_notification_id, p_channel, p_target, p_user_id, 'sending')
		ON CONFLICT DO NOTHING;
	IF FOUND THEN
		RETURN 'claimed';
	END IF;
	SELECT d.status INTO v_status FROM todo_kafka.notification_deliveries d
	 WHERE d.notification_id = p_notification_id AND d.channel = p_channel AND d.target = p_target
	   FOR UPDATE;
	IF v_status IN ('retry', 'dead_lettered') OR
		(v_status IN ('sending', 'interrupted') AND p_take_over) THEN
		UPDATE todo_kafka.notification_deliveries d
		   SET status = 'sending', attempts = d.attempts + 1, claimed_at = clock_timestamp()
		 WHERE d.notification_id = p_notification_id AND d.channel = p_channel
		   AND d.target = p_target;
		RETURN 'claimed';
	END IF;
	IF v_status = 'sending' THEN
		UPDATE todo_kafka.notification_deliveries d
		   SET status = 'interrupted', finished_at = clock_timestamp(),
			   detail = 'an earlier attempt was interrupted before its outcome was recorded; not sent again'
		 WHERE d.notification_id = p_notification_id AND d.channel = p_channel
		   AND d.target = p_target;
		RETURN 'interrupted';
	END IF;
	RETURN v_status;
END
$function$;

/*
 * The outcome of a claimed send: delivered, gone (404/410), dead_lettered
 * (refused for good, or failed on its last attempt: the notification went
 * to the dead-letter topic) or failed (what older services wrote for a
 * refusal).
 */
CREATE OR REPLACE FUNCTION todo_kafka.delivery_done(p_notification_id text, p_channel text, p_target text, p_user_id text, p_status text, p_detail text DEFAULT NULL::text)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	IF p_status IS NULL OR p_status NOT IN ('delivered', 'gone', 'dead_lettered', 'failed') THEN
		RAISE EXCEPTION 'invalid delivery outcome: "%"', p_status
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'An outcome is delivered, gone or dead_lettered.';
	END IF;
	INSERT INTO todo_kafka.notification_deliveries AS d
			(notification_id, channel, target, user_id, status, detail, finished_at)
		VALUES (p_notification_id, p_channel, p_target, p_user_id, p_status, p_detail,
				clock_timestamp())
		ON CONFLICT (notification_id, channel, target) DO UPDATE
			SET status = EXCLUDED.status, detail = EXCLUDED.detail,
				finished_at = EXCLUDED.finished_at;
END
$function$;
