
/* ---------------------------------------------------------------------------
 * Push endpoints and gateways only on the operator's hosts (issue 19).
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
 * add_push_subscription() and set_push_gateway() call the latter.
 * ------------------------------------------------------------------------- */

CREATE FUNCTION todo_kafka.push_host_allowed(p_host text, p_gateway boolean)
	RETURNS boolean LANGUAGE C STRICT STABLE
	AS 'MODULE_PATHNAME', 'todo_kafka_push_host_allowed';

/* p_url passed notify_check_url(): scheme://authority[/...], no userinfo */
CREATE FUNCTION todo_kafka.notify_check_push_host(p_url text, p_gateway boolean)
	RETURNS void LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

/* as in 0.4.0, plus the host check */
CREATE OR REPLACE FUNCTION todo_kafka.add_push_subscription(p_user_id text, p_endpoint text,
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
	PERFORM todo_kafka.notify_check_push_host(v_endpoint, false);
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

/* as in 0.4.0, plus the host check */
CREATE OR REPLACE FUNCTION todo_kafka.set_push_gateway(p_user_id text, p_url text)
	RETURNS text LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v	text;
BEGIN
	PERFORM todo_kafka.notify_check_user(p_user_id);
	IF p_url IS NOT NULL THEN
		v := todo_kafka.notify_check_url(p_url, 'push gateway');
		PERFORM todo_kafka.notify_check_push_host(v, true);
	END IF;
	INSERT INTO todo_kafka.notification_settings AS s (user_id, push_gateway_url)
		VALUES (p_user_id, v)
		ON CONFLICT (user_id) DO UPDATE SET push_gateway_url = EXCLUDED.push_gateway_url,
											updated_at = now();
	RETURN v;
END
$$;

REVOKE ALL ON FUNCTION
	todo_kafka.push_host_allowed(text, boolean),
	todo_kafka.notify_check_push_host(text, boolean)
	FROM PUBLIC;
