
/* ===========================================================================
 * 20_notify.sql: the objects of the notification service (todo-kafka-notify)
 *
 * Settings (written by the application through the set_* functions only):
 *	 notification_settings	 per user: email address, push gateway URL,
 *							 quiet hours (in the user's time zone,
 *							 user_settings; UTC when unknown)
 *	 notification_channels	 per user and event kind (task_created,
 *							 reminder): the enabled channels; a user with
 *							 no row gets the defaults below
 *	 push_subscriptions		 a browser's PushSubscription (endpoint,
 *							 p256dh, auth); an endpoint belongs to one user
 * Defaults: task_created -> {in_app}; reminder -> {email, push, in_app}
 * (each reminder names one method; the user's list filters it).
 * Quiet hours: while they last, a new task is announced in the inbox only
 * (no email, no push); reminders are exempt: the user asked for that time.
 *
 * The service (role todo_kafka_consumer) works in two stages:
 *	 fan-out	 notification_plan(): which channels an event gets, with the
 *				 title and body (the due time in the user's zone); one
 *				 message per channel goes to todo.notifications
 *	 delivery	 notification_targets(): the addresses/subscriptions of a
 *				 channel now; delivery_claim() / delivery_done() /
 *				 delivery_retry() around each send; deliver_in_app() for
 *				 the inbox; push_subscription_gone() on 404/410
 *
 * Exactly once per (notification, channel, target): notification_deliveries
 * has that primary key.  In-app is one transaction (inbox row, log row,
 * NOTIFY), so a redelivered message changes nothing.  Email and push cannot
 * join a transaction, so a send is bracketed:
 *	 delivery_claim()  commits status 'sending' before the send; says
 *					   'delivered' (or gone/failed) when it was done before,
 *					   so the send is skipped
 *	 delivery_done()   records the outcome after the send
 *	 delivery_retry()  the send failed and certainly did not deliver
 *					   (transient): the next claim may send again
 * A claim found in 'sending' means an earlier attempt was interrupted
 * between claim and outcome (the process died mid-send): the message may or
 * may not have gone out.  The default is at most once: the row becomes
 * 'interrupted' and nothing is sent again (no second email after a crash);
 * p_take_over => true (the service's resend_interrupted setting) resends
 * instead (at least once; the email keeps its Message-ID).
 *
 * The inbox: notifications (notification_id unique); the app reads it with
 * list_notifications() and mark_notification_read(), and LISTENs on
 * inbox_channel(user) for live rows (payload: JSON of the new row).
 * =========================================================================== */

CREATE TABLE todo_kafka.notification_settings (
	user_id				text PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 200),
	email				text,
	push_gateway_url	text,
	quiet_start			time,
	quiet_end			time,
	updated_at			timestamptz NOT NULL DEFAULT now(),
	CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);

CREATE TABLE todo_kafka.notification_channels (
	user_id				text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 200),
	kind				text NOT NULL CHECK (kind IN ('task_created', 'reminder')),
	channels			text[] NOT NULL CHECK (channels <@ '{email,push,in_app}'::text[]),
	updated_at			timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (user_id, kind)
);

CREATE TABLE todo_kafka.push_subscriptions (
	endpoint			text PRIMARY KEY,
	user_id				text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 200),
	p256dh				text NOT NULL,
	auth				text NOT NULL,
	created_at			timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_subscriptions_user_id_idx ON todo_kafka.push_subscriptions (user_id);

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
	read_at				timestamptz
);
CREATE INDEX notifications_user_id_idx ON todo_kafka.notifications (user_id, id);

/* the delivery log: one row per (notification, channel, target) */
CREATE TABLE todo_kafka.notification_deliveries (
	notification_id		text NOT NULL,
	channel				text NOT NULL CHECK (channel IN ('email', 'push', 'in_app')),
	target				text NOT NULL,	/* address, endpoint, gateway URL, user */
	user_id				text NOT NULL,
	status				text NOT NULL CHECK (status IN ('sending', 'retry', 'delivered',
														'gone', 'failed', 'interrupted')),
	attempts			integer NOT NULL DEFAULT 1,
	detail				text,
	claimed_at			timestamptz NOT NULL DEFAULT clock_timestamp(),
	finished_at			timestamptz,
	PRIMARY KEY (notification_id, channel, target)
);
CREATE INDEX notification_deliveries_claimed_at_idx
	ON todo_kafka.notification_deliveries (claimed_at);

/* ---------------------------------------------------------------------------
 * Input checks (internal)
 * ------------------------------------------------------------------------- */
CREATE FUNCTION todo_kafka.notify_check_user(p_user_id text)
	RETURNS void LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF p_user_id IS NULL OR length(p_user_id) = 0 THEN
		RAISE EXCEPTION 'user id is required' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF length(p_user_id) > 200 THEN
		RAISE EXCEPTION 'user id is too long (% characters)', length(p_user_id)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'User ids have at most 200 characters.';
	END IF;
END
$$;

/*
 * A base64url string (RFC 4648 s5, padding optional) of exactly p_bytes
 * bytes, normalised without padding; an error naming p_what otherwise.
 */
CREATE FUNCTION todo_kafka.notify_check_b64url(p_value text, p_bytes integer, p_what text)
	RETURNS text LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v		text := rtrim(btrim(p_value), '=');
	v_raw	bytea;
BEGIN
	IF p_value IS NULL OR v = '' THEN
		RAISE EXCEPTION 'push subscription has no % key', p_what
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the keys of the browser''s PushSubscription (subscription.toJSON().keys).';
	END IF;
	IF v !~ '^[A-Za-z0-9_-]+$' OR length(v) % 4 = 1 THEN
		RAISE EXCEPTION 'invalid % key: not base64url', p_what
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Keys are base64url (RFC 4648 section 5) as PushSubscription.toJSON() gives them.';
	END IF;
	v_raw := decode(translate(v, '-_', '+/') || repeat('=', (4 - length(v) % 4) % 4), 'base64');
	IF length(v_raw) <> p_bytes THEN
		RAISE EXCEPTION 'invalid % key: % bytes instead of %', p_what, length(v_raw), p_bytes
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'p256dh is a 65-byte uncompressed P-256 point, auth a 16-byte secret.';
	END IF;
	IF p_bytes = 65 AND get_byte(v_raw, 0) <> 4 THEN
		RAISE EXCEPTION 'invalid % key: not an uncompressed P-256 point', p_what
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'p256dh is a 65-byte uncompressed P-256 point (first byte 0x04).';
	END IF;
	RETURN v;
END
$$;

/* an http(s) URL without spaces or control characters; p_what names it */
CREATE FUNCTION todo_kafka.notify_check_url(p_url text, p_what text)
	RETURNS text LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v	text := btrim(p_url);
BEGIN
	IF length(v) > 2048 THEN
		RAISE EXCEPTION 'invalid % URL: longer than 2048 characters', p_what
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use a URL of at most 2048 characters.';
	END IF;
	/* https anywhere; plain http only to a loopback host (development) */
	IF v !~ '^https://[^/\s?#@]+(/[^\s]*)?$'
		AND v !~ '^http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?(/[^\s]*)?$' THEN
		RAISE EXCEPTION 'invalid % URL: "%"', p_what, p_url
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use an https:// URL (http:// is accepted for localhost only).';
	END IF;
	RETURN v;
END
$$;

/* a channel list: a subset of {email,push,in_app}, sorted, no duplicates */
CREATE FUNCTION todo_kafka.notify_check_channels(p_channels text[])
	RETURNS text[] LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c	text;
BEGIN
	IF p_channels IS NULL OR array_ndims(p_channels) > 1 THEN
		RAISE EXCEPTION 'channels must be a one-dimensional array'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass e.g. ''{email,in_app}''; ''{}'' turns every channel off.';
	END IF;
	FOREACH c IN ARRAY p_channels LOOP
		IF c IS NULL OR c NOT IN ('email', 'push', 'in_app') THEN
			RAISE EXCEPTION 'unknown notification channel: "%"', c
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'The channels are email, push and in_app.';
		END IF;
	END LOOP;
	RETURN ARRAY(SELECT DISTINCT x FROM unnest(p_channels) x ORDER BY 1);
END
$$;

/* ---------------------------------------------------------------------------
 * Application API (todo_kafka_app)
 * ------------------------------------------------------------------------- */

/* the user's email address; NULL removes it.  Returns the stored address. */
CREATE FUNCTION todo_kafka.set_notification_email(p_user_id text, p_address text)
	RETURNS text LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v	text := btrim(p_address);
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	/*
	 * addr-spec with a dot-atom local part (RFC 5322 s3.4.1) and a host name
	 * of letters, digits and hyphens: what SMTP servers take in practice
	 */
	IF v IS NOT NULL AND (length(v) > 254
		OR v !~ '^[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$'
		OR length(split_part(v, '@', 1)) > 64) THEN
		RAISE EXCEPTION 'invalid email address: "%"', p_address
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give a plain address such as alice@example.com, without a display name.';
	END IF;
	INSERT INTO todo_kafka.notification_settings AS s (user_id, email)
		VALUES (p_user_id, v)
		ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, updated_at = now();
	RETURN v;
END
$$;

/*
 * Add (or refresh) a Web Push subscription: endpoint, p256dh and auth as
 * PushSubscription.toJSON() gives them.  An endpoint already registered is
 * moved to this user with the new keys.  At most 20 per user.
 */
CREATE FUNCTION todo_kafka.add_push_subscription(p_user_id text, p_endpoint text,
												 p_p256dh text, p_auth text)
	RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_endpoint	text;
	v_p256dh	text;
	v_auth		text;
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	IF p_endpoint IS NULL THEN
		RAISE EXCEPTION 'push subscription has no endpoint'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the endpoint URL of the browser''s PushSubscription.';
	END IF;
	v_endpoint := todo_kafka.notify_check_url(p_endpoint, 'push endpoint');
	v_p256dh := todo_kafka.notify_check_b64url(p_p256dh, 65, 'p256dh');
	v_auth := todo_kafka.notify_check_b64url(p_auth, 16, 'auth');
	IF (SELECT count(*) FROM todo_kafka.push_subscriptions
		 WHERE user_id = p_user_id AND endpoint <> v_endpoint) >= 20 THEN
		RAISE EXCEPTION 'too many push subscriptions for user "%"', p_user_id
			USING ERRCODE = 'program_limit_exceeded',
				  HINT = 'Remove old subscriptions with remove_push_subscription().';
	END IF;
	INSERT INTO todo_kafka.push_subscriptions AS s (endpoint, user_id, p256dh, auth)
		VALUES (v_endpoint, p_user_id, v_p256dh, v_auth)
		ON CONFLICT (endpoint) DO UPDATE
			SET user_id = EXCLUDED.user_id, p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,
				created_at = now();
	RETURN true;
END
$$;

/* remove one of the user's subscriptions; false if it was not there */
CREATE FUNCTION todo_kafka.remove_push_subscription(p_user_id text, p_endpoint text)
	RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	DELETE FROM todo_kafka.push_subscriptions
	 WHERE endpoint = btrim(p_endpoint) AND user_id = p_user_id;
	RETURN FOUND;
END
$$;

/*
 * The channels enabled for one kind of event (task_created, reminder);
 * NULL restores the default.  Returns the channels now in force.
 */
CREATE FUNCTION todo_kafka.set_notification_channels(p_user_id text, p_kind text,
													 p_channels text[])
	RETURNS text[] LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v	text[];
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	IF p_kind IS NULL OR p_kind NOT IN ('task_created', 'reminder') THEN
		RAISE EXCEPTION 'unknown notification kind: "%"', p_kind
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The kinds are task_created and reminder.';
	END IF;
	IF p_channels IS NULL THEN
		DELETE FROM todo_kafka.notification_channels WHERE user_id = p_user_id AND kind = p_kind;
		RETURN todo_kafka.notify_default_channels(p_kind);
	END IF;
	v := todo_kafka.notify_check_channels(p_channels);
	INSERT INTO todo_kafka.notification_channels AS c (user_id, kind, channels)
		VALUES (p_user_id, p_kind, v)
		ON CONFLICT (user_id, kind) DO UPDATE SET channels = EXCLUDED.channels, updated_at = now();
	RETURN v;
END
$$;

CREATE FUNCTION todo_kafka.notify_default_channels(p_kind text)
	RETURNS text[] LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE p_kind WHEN 'task_created' THEN '{in_app}'::text[]
					   ELSE '{email,in_app,push}'::text[] END
$$;

/* the JSON push gateway (ntfy, an FCM/APNs relay) for this user; NULL removes */
CREATE FUNCTION todo_kafka.set_push_gateway(p_user_id text, p_url text)
	RETURNS text LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v	text;
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	IF p_url IS NOT NULL THEN
		v := todo_kafka.notify_check_url(p_url, 'push gateway');
	END IF;
	INSERT INTO todo_kafka.notification_settings AS s (user_id, push_gateway_url)
		VALUES (p_user_id, v)
		ON CONFLICT (user_id) DO UPDATE SET push_gateway_url = EXCLUDED.push_gateway_url,
											updated_at = now();
	RETURN v;
END
$$;

/*
 * Quiet hours in the user's time zone, [start, end), wrapping midnight when
 * start > end; both NULL removes them.
 */
CREATE FUNCTION todo_kafka.set_quiet_hours(p_user_id text, p_start time, p_end time)
	RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	IF (p_start IS NULL) <> (p_end IS NULL) OR p_start = p_end THEN
		RAISE EXCEPTION 'quiet hours need a start and a different end'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass both times, e.g. ''22:00'' and ''07:00'', or both NULL to remove them.';
	END IF;
	INSERT INTO todo_kafka.notification_settings AS s (user_id, quiet_start, quiet_end)
		VALUES (p_user_id, p_start, p_end)
		ON CONFLICT (user_id) DO UPDATE SET quiet_start = EXCLUDED.quiet_start,
											quiet_end = EXCLUDED.quiet_end, updated_at = now();
	RETURN p_start IS NOT NULL;
END
$$;

/* everything the user set, as JSON (push keys left out) */
CREATE FUNCTION todo_kafka.get_notification_settings(p_user_id text)
	RETURNS jsonb LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s	todo_kafka.notification_settings;
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	SELECT * INTO s FROM todo_kafka.notification_settings WHERE user_id = p_user_id;
	RETURN jsonb_build_object(
		'email', s.email,
		'push_gateway_url', s.push_gateway_url,
		'quiet_hours', CASE WHEN s.quiet_start IS NULL THEN NULL
							ELSE jsonb_build_array(s.quiet_start, s.quiet_end) END,
		'push_subscriptions', (SELECT coalesce(jsonb_agg(p.endpoint ORDER BY p.created_at, p.endpoint), '[]')
								 FROM todo_kafka.push_subscriptions p WHERE p.user_id = p_user_id),
		'channels', (SELECT jsonb_object_agg(k.kind,
							   coalesce(c.channels, todo_kafka.notify_default_channels(k.kind)))
					   FROM (VALUES ('task_created'), ('reminder')) k(kind)
					   LEFT JOIN todo_kafka.notification_channels c
						 ON c.user_id = p_user_id AND c.kind = k.kind),
		'inbox_channel', todo_kafka.inbox_channel(p_user_id));
END
$$;

/*
 * The NOTIFY channel of a user's inbox: LISTEN "<this>" to see new rows.
 * A digest, so any user id gives a valid identifier of fixed length.
 */
CREATE FUNCTION todo_kafka.inbox_channel(p_user_id text)
	RETURNS text LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT 'todo_kafka_inbox_' || left(md5(p_user_id), 24)
$$;

/* the user's inbox, newest first */
CREATE FUNCTION todo_kafka.list_notifications(p_user_id text, p_unread_only boolean DEFAULT false,
											  p_limit integer DEFAULT 50)
	RETURNS SETOF todo_kafka.notifications LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	RETURN QUERY
		SELECT * FROM todo_kafka.notifications n
		 WHERE n.user_id = p_user_id AND (NOT coalesce(p_unread_only, false) OR NOT n.read)
		 ORDER BY n.id DESC
		 LIMIT greatest(coalesce(p_limit, 50), 0);
END
$$;

/* mark one notification read; false if it already was */
CREATE FUNCTION todo_kafka.mark_notification_read(p_user_id text, p_id bigint)
	RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

/* ---------------------------------------------------------------------------
 * Consumer API (todo_kafka_consumer): todo-kafka-notify
 * ------------------------------------------------------------------------- */

/* the due time as the user reads it: 2030-01-02 10:00 CET (Europe/Berlin) */
CREATE FUNCTION todo_kafka.notify_local_time(p_at timestamptz, p_time_zone text)
	RETURNS text LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	SET TimeZone = 'UTC'
AS $$
BEGIN
	PERFORM set_config('TimeZone', coalesce(p_time_zone, 'UTC'), true);
	RETURN to_char(p_at, 'YYYY-MM-DD HH24:MI TZ') || ' (' || coalesce(p_time_zone, 'UTC') || ')';
END
$$;

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
CREATE FUNCTION todo_kafka.notification_plan(p_user_id text, p_kind text, p_requested text[],
											 p_task_id uuid, p_title text,
											 p_due_date timestamptz,
											 p_late boolean DEFAULT false,
											 p_at timestamptz DEFAULT now())
	RETURNS TABLE (channel text, title text, body text, due_date text, due_local text,
				   time_zone text)
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

/*
 * Delivery: where a channel reaches the user now.
 *	 email	 ('email', address)
 *	 push	 ('webpush', endpoint, p256dh, auth) per subscription, and
 *			 ('gateway', url) when a gateway is set
 *	 in_app	 ('in_app', user id)
 * No row: the user has no target on that channel (nothing to deliver).
 */
CREATE FUNCTION todo_kafka.notification_targets(p_user_id text, p_channel text)
	RETURNS TABLE (mode text, target text, p256dh text, auth text)
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

/*
 * Claim one send (see the header).  Returns
 *	 'claimed'		send it now, then delivery_done() or delivery_retry()
 *	 'delivered', 'gone', 'failed'	done before: skip
 *	 'interrupted'	an earlier attempt died mid-send: skip (at most once),
 *					unless p_take_over
 * Commits nothing itself: the caller runs it in its own transaction (one
 * statement, autocommit) so the claim is durable before the send.
 */
CREATE FUNCTION todo_kafka.delivery_claim(p_notification_id text, p_channel text, p_target text,
										  p_user_id text, p_take_over boolean DEFAULT false)
	RETURNS text LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
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
	IF v_status = 'retry' OR (v_status IN ('sending', 'interrupted') AND p_take_over) THEN
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
$$;

/* the outcome of a claimed send: delivered, gone (404/410) or failed (permanent) */
CREATE FUNCTION todo_kafka.delivery_done(p_notification_id text, p_channel text, p_target text,
										 p_user_id text, p_status text, p_detail text DEFAULT NULL)
	RETURNS void LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF p_status IS NULL OR p_status NOT IN ('delivered', 'gone', 'failed') THEN
		RAISE EXCEPTION 'invalid delivery outcome: "%"', p_status
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'An outcome is delivered, gone or failed.';
	END IF;
	INSERT INTO todo_kafka.notification_deliveries AS d
			(notification_id, channel, target, user_id, status, detail, finished_at)
		VALUES (p_notification_id, p_channel, p_target, p_user_id, p_status, p_detail,
				clock_timestamp())
		ON CONFLICT (notification_id, channel, target) DO UPDATE
			SET status = EXCLUDED.status, detail = EXCLUDED.detail,
				finished_at = EXCLUDED.finished_at;
END
$$;

/* a claimed send failed without delivering (transient): the next claim sends again */
CREATE FUNCTION todo_kafka.delivery_retry(p_notification_id text, p_channel text, p_target text,
										  p_detail text DEFAULT NULL)
	RETURNS void LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	UPDATE todo_kafka.notification_deliveries d
	   SET status = 'retry', detail = p_detail, finished_at = clock_timestamp()
	 WHERE d.notification_id = p_notification_id AND d.channel = p_channel
	   AND d.target = p_target AND d.status = 'sending'
$$;

/*
 * In-app delivery in one transaction: the inbox row, the delivery log row
 * and a NOTIFY on inbox_channel(user) with the row as JSON (sent at
 * commit).  true = delivered now, false = it already was (nothing done).
 */
CREATE FUNCTION todo_kafka.deliver_in_app(p_notification_id text, p_user_id text, p_kind text,
										  p_task_id uuid, p_title text, p_body text)
	RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n	todo_kafka.notifications;
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	INSERT INTO todo_kafka.notifications (notification_id, user_id, kind, task_id, title, body)
		VALUES (p_notification_id, p_user_id, p_kind, p_task_id,
				left(coalesce(p_title, ''), 500), left(coalesce(p_body, ''), 4000))
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
$$;

/* a push service answered 404/410: forget the subscription (true if it existed) */
CREATE FUNCTION todo_kafka.push_subscription_gone(p_endpoint text)
	RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM todo_kafka.push_subscriptions WHERE endpoint = p_endpoint;
	RETURN FOUND;
END
$$;

/*
 * Retention of the delivery log: rows claimed before p_older_than ago
 * (longer than the topic keeps a message, so no redelivery can need them).
 */
CREATE FUNCTION todo_kafka.purge_notification_deliveries(p_older_than interval DEFAULT '30 days')
	RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n	bigint;
BEGIN
	DELETE FROM todo_kafka.notification_deliveries
	 WHERE claimed_at < now() - p_older_than AND status <> 'sending';
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

/* ---------------------------------------------------------------------------
 * Privileges: nothing for PUBLIC; the app gets the settings and the inbox,
 * the consumer services the delivery functions.  No table is granted.
 * ------------------------------------------------------------------------- */
REVOKE ALL ON todo_kafka.notification_settings, todo_kafka.notification_channels,
	todo_kafka.push_subscriptions, todo_kafka.notifications,
	todo_kafka.notification_deliveries FROM PUBLIC;
REVOKE ALL ON FUNCTION
	todo_kafka.notify_check_user(text),
	todo_kafka.notify_check_b64url(text, integer, text),
	todo_kafka.notify_check_url(text, text),
	todo_kafka.notify_check_channels(text[]),
	todo_kafka.notify_default_channels(text),
	todo_kafka.notify_local_time(timestamptz, text),
	todo_kafka.set_notification_email(text, text),
	todo_kafka.add_push_subscription(text, text, text, text),
	todo_kafka.remove_push_subscription(text, text),
	todo_kafka.set_notification_channels(text, text, text[]),
	todo_kafka.set_push_gateway(text, text),
	todo_kafka.set_quiet_hours(text, time, time),
	todo_kafka.get_notification_settings(text),
	todo_kafka.inbox_channel(text),
	todo_kafka.list_notifications(text, boolean, integer),
	todo_kafka.mark_notification_read(text, bigint),
	todo_kafka.notification_plan(text, text, text[], uuid, text, timestamptz, boolean, timestamptz),
	todo_kafka.notification_targets(text, text),
	todo_kafka.delivery_claim(text, text, text, text, boolean),
	todo_kafka.delivery_done(text, text, text, text, text, text),
	todo_kafka.delivery_retry(text, text, text, text),
	todo_kafka.deliver_in_app(text, text, text, uuid, text, text),
	todo_kafka.push_subscription_gone(text),
	todo_kafka.purge_notification_deliveries(interval)
	FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
	todo_kafka.set_notification_email(text, text),
	todo_kafka.add_push_subscription(text, text, text, text),
	todo_kafka.remove_push_subscription(text, text),
	todo_kafka.set_notification_channels(text, text, text[]),
	todo_kafka.set_push_gateway(text, text),
	todo_kafka.set_quiet_hours(text, time, time),
	todo_kafka.get_notification_settings(text),
	todo_kafka.inbox_channel(text),
	todo_kafka.list_notifications(text, boolean, integer),
	todo_kafka.mark_notification_read(text, bigint)
	TO todo_kafka_app;

GRANT EXECUTE ON FUNCTION
	todo_kafka.notification_plan(text, text, text[], uuid, text, timestamptz, boolean, timestamptz),
	todo_kafka.notification_targets(text, text),
	todo_kafka.delivery_claim(text, text, text, text, boolean),
	todo_kafka.delivery_done(text, text, text, text, text, text),
	todo_kafka.delivery_retry(text, text, text, text),
	todo_kafka.deliver_in_app(text, text, text, uuid, text, text),
	todo_kafka.push_subscription_gone(text),
	todo_kafka.purge_notification_deliveries(interval)
	TO todo_kafka_consumer;
