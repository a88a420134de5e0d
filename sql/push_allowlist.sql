-- push_allowlist: push endpoints and gateways only on the operator's hosts
-- (todo_kafka.push_allowed_hosts, todo_kafka.push_gateway_allowed_hosts)
\set VERBOSITY terse
CREATE ROLE tk_push_app LOGIN IN ROLE todo_kafka_app;

-- SQLSTATE and hint of a refusal, or 'accepted'
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	v_state text;
	v_msg text;
	v_hint text;
BEGIN
	EXECUTE q;
	RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
		v_hint = PG_EXCEPTION_HINT;
	RETURN v_state || ': ' || v_msg || coalesce(' HINT: ' || v_hint, '');
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.try(text) TO tk_push_app;

-- the application role cannot widen the list for its session: a value SET
-- before the module is loaded is a placeholder PostgreSQL drops (WARNING)
-- when the superuser-only definition arrives
SET ROLE tk_push_app;
SELECT pg_temp.try($$ALTER ROLE tk_push_app SET todo_kafka.push_allowed_hosts = '*'$$) AS role_setting;
SET todo_kafka.push_allowed_hosts = '*';
SET client_min_messages = error;
SELECT pg_temp.try($$SELECT todo_kafka.add_push_subscription('mallory',
	'https://10.0.0.5:8443/admin', 'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM', 'tBHItJI5svbpez7KI4CCXg')$$);
RESET client_min_messages;
SHOW todo_kafka.push_allowed_hosts;
SET todo_kafka.push_allowed_hosts = '*';
RESET ROLE;

-- the six endpoints of issue 19, refused with the default lists: as a
-- subscription and as a gateway; and a few near misses
CREATE TEMP TABLE issue19 (e text);
INSERT INTO issue19 VALUES ('https://169.254.169.254/latest/meta-data/iam'),
	('https://metadata.google.internal/computeMetadata/v1/'), ('https://10.0.0.5:8443/admin'),
	('https://localhost:5432/'), ('https://[::1]/x'), ('https://127.0.0.1:9187/metrics');
GRANT SELECT ON issue19 TO tk_push_app;
SET ROLE tk_push_app;
SELECT e AS endpoint, pg_temp.try(format($$SELECT todo_kafka.add_push_subscription('mallory', %L,
	'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM', 'tBHItJI5svbpez7KI4CCXg')$$, e)) AS subscription
  FROM (SELECT e FROM issue19
		UNION ALL VALUES ('http://127.0.0.1:8080/dev'),
			   ('https://fcm.googleapis.com.evil.example/fcm/send/x'),
			   ('https://evilnotify.windows.com/w/?token=x'),
			   ('https://fcm.googleapis.com:443@10.0.0.5/x'),
			   ('https://2130706433/x')) v(e);
SELECT e AS gateway, pg_temp.try(format($$SELECT todo_kafka.set_push_gateway('mallory', %L)$$, e)) AS result
  FROM (SELECT e FROM issue19 UNION ALL VALUES ('https://ntfy.example.org/alice')) v(e);

-- what real browsers hand out is accepted
SELECT e AS endpoint, pg_temp.try(format($$SELECT todo_kafka.add_push_subscription('alice', %L,
	'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM', 'tBHItJI5svbpez7KI4CCXg')$$, e)) AS subscription
  FROM (VALUES ('https://fcm.googleapis.com/fcm/send/dXJ0aGVyZTpBUEE5MWJH'),
			   ('https://android.googleapis.com/gcm/send/dXJ0aGVyZTpBUEE5MWJH'),
			   ('https://updates.push.services.mozilla.com/wpush/v2/gAAAAABh'),
			   ('https://web.push.apple.com/QGuQyavXutnMHmoRBQy'),
			   ('https://wns2-by3p.notify.windows.com/w/?token=BQYAAAD'),
			   ('https://FCM.GoogleAPIs.com./fcm/send/upper')) v(e);
SELECT count(*) AS registered FROM todo_kafka.get_notification_settings('alice') s,
	jsonb_array_elements(s -> 'push_subscriptions');
RESET ROLE;

-- the operator names a gateway host and a development receiver
SET todo_kafka.push_gateway_allowed_hosts = 'ntfy.example.org, *.gw.example';
SET todo_kafka.push_allowed_hosts = '127.0.0.1';
SHOW todo_kafka.push_gateway_allowed_hosts;
SET ROLE tk_push_app;
SELECT e AS gateway, pg_temp.try(format($$SELECT todo_kafka.set_push_gateway('alice', %L)$$, e)) AS result
  FROM (VALUES ('https://ntfy.example.org/alice'),
			   ('https://eu.gw.example/alice'),
			   ('https://gw.example/alice'),
			   ('https://10.0.0.5:8443/admin')) v(e);
SELECT pg_temp.try($$SELECT todo_kafka.add_push_subscription('alice', 'http://127.0.0.1:8080/dev',
	'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM', 'tBHItJI5svbpez7KI4CCXg')$$) AS dev_receiver;
SELECT pg_temp.try($$SELECT todo_kafka.add_push_subscription('alice', 'https://fcm.googleapis.com/fcm/send/other',
	'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM', 'tBHItJI5svbpez7KI4CCXg')$$) AS not_on_the_new_list;
-- and the application cannot change either list
SELECT pg_temp.try($$SET todo_kafka.push_gateway_allowed_hosts = '*'$$);
RESET ROLE;

-- per database, the way an operator sets it
SELECT current_database() AS db \gset
ALTER DATABASE :"db" SET todo_kafka.push_allowed_hosts = 'push.example.net';
\c
LOAD 'todo_kafka';
SHOW todo_kafka.push_allowed_hosts;
ALTER DATABASE :"db" RESET todo_kafka.push_allowed_hosts;
\c
LOAD 'todo_kafka';
SHOW todo_kafka.push_allowed_hosts;

DELETE FROM todo_kafka.push_subscriptions;
DELETE FROM todo_kafka.notification_settings;
DROP ROLE tk_push_app;
