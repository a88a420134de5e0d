
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
 *	 notify_check_url(url, what)		  0.4.0's URL checks, then the above
 * ------------------------------------------------------------------------- */

CREATE FUNCTION todo_kafka.push_host_allowed(p_host text, p_gateway boolean)
	RETURNS boolean LANGUAGE C STRICT STABLE
	AS 'MODULE_PATHNAME', 'todo_kafka_push_host_allowed';

/* p_url passed notify_check_url_syntax(): scheme://authority[/...], no userinfo */
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

/*
 * notify_check_url(), which add_push_subscription() ('push endpoint') and
 * set_push_gateway() ('push gateway') call, gains the host check: 0.4.0's
 * function keeps its URL syntax checks under a new name and the new one
 * calls both, so neither caller is redefined.
 */
ALTER FUNCTION todo_kafka.notify_check_url(text, text) RENAME TO notify_check_url_syntax;

CREATE FUNCTION todo_kafka.notify_check_url(p_url text, p_what text)
	RETURNS text LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v	text := todo_kafka.notify_check_url_syntax(p_url, p_what);
BEGIN
	PERFORM todo_kafka.notify_check_push_host(v, p_what = 'push gateway');
	RETURN v;
END
$$;

REVOKE ALL ON FUNCTION
	todo_kafka.push_host_allowed(text, boolean),
	todo_kafka.notify_check_push_host(text, boolean),
	todo_kafka.notify_check_url(text, text)
	FROM PUBLIC;
