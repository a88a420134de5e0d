/*
 * extension/sql/10_notify_settings.sql: what the chatbot (todo_kafka_app)
 * keeps per user for notifications: the channels of each kind of event,
 * the email address, quiet hours, Web Push subscriptions and gateway; the
 * input checks of those (internal), with the operator's push host
 * allowlist (extension/push_allowlist.c).
 */

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

SELECT pg_catalog.pg_extension_config_dump('todo_kafka.notification_settings', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.notification_channels', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.push_subscriptions', '');

/* ---------------------------------------------------------------------------
 * Input checks (internal)
 * ------------------------------------------------------------------------- */
CREATE OR REPLACE FUNCTION todo_kafka.notify_check_user(p_user_id text)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/*
 * A base64url string (RFC 4648 s5, padding optional) of exactly p_bytes
 * bytes, normalised without padding; an error naming p_what otherwise.
 */
CREATE OR REPLACE FUNCTION todo_kafka.notify_check_b64url(p_value text, p_bytes integer, p_what text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/* an http(s) URL without spaces or control characters; p_what names it */
CREATE OR REPLACE FUNCTION todo_kafka.notify_check_url_syntax(p_url text, p_what text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/* a channel list: a subset of {email,push,in_app}, sorted, no duplicates */
CREATE OR REPLACE FUNCTION todo_kafka.notify_check_channels(p_channels text[])
 RETURNS text[]
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/* ---------------------------------------------------------------------------
 * Application API (todo_kafka_app)
 * ------------------------------------------------------------------------- */

/* the user's email address; NULL removes it.  Returns the stored address. */
CREATE OR REPLACE FUNCTION todo_kafka.set_notification_email(p_user_id text, p_address text)
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/*
 * Add (or refresh) a Web Push subscription: endpoint, p256dh and auth as
 * PushSubscription.toJSON() gives them.  An endpoint already registered is
 * moved to this user with the new keys.  At most 20 per user.
 */
CREATE OR REPLACE FUNCTION todo_kafka.add_push_subscription(p_user_id text, p_endpoint text, p_p256dh text, p_auth text)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/* remove one of the user's subscriptions; false if it was not there */
CREATE OR REPLACE FUNCTION todo_kafka.remove_push_subscription(p_user_id text, p_endpoint text)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	DELETE FROM todo_kafka.push_subscriptions
	 WHERE endpoint = btrim(p_endpoint) AND user_id = p_user_id;
	RETURN FOUND;
END
$function$;

/*
 * The channels enabled for one kind of event (task_created, reminder);
 * NULL restores the default.  Returns the channels now in force.
 */
CREATE OR REPLACE FUNCTION todo_kafka.set_notification_channels(p_user_id text, p_kind text, p_channels text[])
 RETURNS text[]
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION todo_kafka.notify_default_channels(p_kind text)
 RETURNS text[]
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
	SELECT CASE p_kind WHEN 'task_created' THEN '{in_app}'::text[]
					   ELSE '{email,in_app,push}'::text[] END
$function$;

/* the JSON push gateway (ntfy, an FCM/APNs relay) for this user; NULL removes */
CREATE OR REPLACE FUNCTION todo_kafka.set_push_gateway(p_user_id text, p_url text)
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/*
 * Quiet hours in the user's time zone, [start, end), wrapping midnight when
 * start > end; both NULL removes them.
 */
CREATE OR REPLACE FUNCTION todo_kafka.set_quiet_hours(p_user_id text, p_start time without time zone, p_end time without time zone)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/* everything the user set, as JSON (push keys left out) */
CREATE OR REPLACE FUNCTION todo_kafka.get_notification_settings(p_user_id text)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;

/* ---------------------------------------------------------------------------
 * Push endpoints and gateways only on the operator's hosts.
 *
 * A subscription's endpoint comes from the user's browser through the
 * chatbot, so whoever holds a chat session chooses it, and the notify
 * service POSTs to it from inside the operator's network.  So the host of
 * every endpoint must be on todo_kafka.push_allowed_hosts (default: the
 * public browser push services) and of every gateway URL on
 * todo_kafka.push_gateway_allowed_hosts (default: none).  Both are
 * superuser-only settings of the module (extension/push_allowlist.c, where
 * the list syntax is described; ALTER DATABASE ... SET to change them).
 * todo-kafka-notify checks again before each send, with its own settings
 * of the same names, and never connects to an internal address whatever
 * the lists say (common/net_guard.h).
 *
 *	 push_host_allowed(host, gateway)	  C: is host on the list
 *	 notify_check_push_host(url, gateway) the check with its error (22023)
 *	 notify_check_url(url, what)		  notify_check_url_syntax(), then the above
 * ------------------------------------------------------------------------- */
CREATE OR REPLACE FUNCTION todo_kafka.push_host_allowed(p_host text, p_gateway boolean)
 RETURNS boolean
 LANGUAGE c
 STABLE STRICT
AS '$libdir/todo_kafka', $function$todo_kafka_push_host_allowed$function$;

/* p_url passed notify_check_url_syntax(): scheme://authority[/...], no userinfo */
CREATE OR REPLACE FUNCTION todo_kafka.notify_check_push_host(p_url text, p_gateway boolean)
 RETURNS void
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	v_authority	text := lower(substring(p_url from '^[A-Za-z]+://([^/?#]+)'));
	v_host		text := substring(v_authority from '^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(:[0-9]*)?$');
BEGIN
	IF v_host IS NULL OR NOT todo_kafka.push_host_allowed(v_host, p_gateway) THEN
		IF p_gateway THEN
			RAISE EXCEPTION 'push gateway host "%" is not allowed', coalesce(v_host, v_authority)
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Push gateways must be on a host listed in todo_kafka.push_gateway_allowed_hosts '
							 '(empty by default); a superuser sets it with ALTER DATABASE ... SET.';
		END IF;
		RAISE EXCEPTION 'push endpoint host "%" is not allowed', coalesce(v_host, v_authority)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Web Push endpoints must be on a host listed in todo_kafka.push_allowed_hosts '
						 '(by default the public browser push services); a superuser changes it with ALTER DATABASE ... SET.';
	END IF;
END
$function$;

CREATE OR REPLACE FUNCTION todo_kafka.notify_check_url(p_url text, p_what text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	v	text := todo_kafka.notify_check_url_syntax(p_url, p_what);
BEGIN
	PERFORM todo_kafka.notify_check_push_host(v, p_what = 'push gateway');
	RETURN v;
END
$function$;
