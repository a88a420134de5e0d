-- notify: notification settings, the inbox and the delivery log of todo-kafka-notify
\set VERBOSITY terse
SET TimeZone = 'UTC';
-- the hosts used below (the allowlists themselves: push_allowlist.sql)
SET todo_kafka.push_allowed_hosts = 'push.example.net, p.example, 127.0.0.1';
SET todo_kafka.push_gateway_allowed_hosts = 'ntfy.example.org';
CREATE ROLE tk_notify_app LOGIN IN ROLE todo_kafka_app;
CREATE ROLE tk_notify_consumer LOGIN IN ROLE todo_kafka_notifier;

-- every refused input carries SQLSTATE 22023 (invalid_parameter_value) and a hint
CREATE FUNCTION pg_temp.refusal(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	v_state text;
	v_hint text;
BEGIN
	EXECUTE q;
	RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_hint = PG_EXCEPTION_HINT;
	RETURN v_state || ' ' || v_hint;
END
$$;
SELECT pg_temp.refusal(q) FROM (VALUES
  ($q$SELECT todo_kafka.set_notification_email('u', 'nobody')$q$),
  ($q$SELECT todo_kafka.add_push_subscription('u', 'https://p.example/1', NULL, 'tBHItJI5svbpez7KI4CCXg')$q$),
  ($q$SELECT todo_kafka.add_push_subscription('u', 'https://p.example/1', 'B!!', 'tBHItJI5svbpez7KI4CCXg')$q$),
  ($q$SELECT todo_kafka.add_push_subscription('u', 'https://p.example/1',
      'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM', 'tBHI')$q$),
  ($q$SELECT todo_kafka.set_notification_channels('u', 'reminder', '{email,pigeon}')$q$),
  ($q$SELECT todo_kafka.set_push_gateway('u', 'gopher://x')$q$)) v(q);

SET ROLE tk_notify_app;
-- settings through the app API
SELECT todo_kafka.set_notification_email('alice', ' alice@example.com ');
SELECT todo_kafka.set_notification_email('alice', 'not an address');
SELECT todo_kafka.set_notification_email('alice', 'Alice <alice@example.com>');
SELECT todo_kafka.set_notification_email('alice', E'alice@example.com\r\nBcc: x@y.z');
SELECT todo_kafka.set_notification_email('alice', 'a..b@example.com');
SELECT todo_kafka.set_notification_email('', 'alice@example.com');
SELECT todo_kafka.add_push_subscription('alice', 'https://push.example.net/sub/1',
  'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM',
  'tBHItJI5svbpez7KI4CCXg');
-- a subscription without keys, with malformed keys, with a bad endpoint
SELECT todo_kafka.add_push_subscription('alice', 'https://push.example.net/sub/2', NULL, 'tBHItJI5svbpez7KI4CCXg');
SELECT todo_kafka.add_push_subscription('alice', 'https://push.example.net/sub/2',
  'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM', '');
SELECT todo_kafka.add_push_subscription('alice', 'https://push.example.net/sub/2',
  'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u+Ts1XbjhazAkj7I99e8QcYP7DkM',
  'tBHItJI5svbpez7KI4CCXg');
SELECT todo_kafka.add_push_subscription('alice', 'https://push.example.net/sub/2',
  'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQt', 'tBHItJI5svbpez7KI4CCXg');
SELECT todo_kafka.add_push_subscription('alice', 'https://push.example.net/sub/2',
  'ANcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM',
  'tBHItJI5svbpez7KI4CCXg');
SELECT todo_kafka.add_push_subscription('alice', 'http://push.example.net/sub/2',
  'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM',
  'tBHItJI5svbpez7KI4CCXg');
-- plain http is fine towards localhost (development receivers)
SELECT todo_kafka.add_push_subscription('alice', 'http://127.0.0.1:8080/sub/3',
  'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM',
  'tBHItJI5svbpez7KI4CCXg==');
SELECT todo_kafka.remove_push_subscription('alice', 'http://127.0.0.1:8080/sub/3');
SELECT todo_kafka.remove_push_subscription('alice', 'http://127.0.0.1:8080/sub/3');
-- channels per kind
SELECT todo_kafka.set_notification_channels('alice', 'task_created', '{push,email,push}');
SELECT todo_kafka.set_notification_channels('alice', 'task_created', '{email,sms}');
SELECT todo_kafka.set_notification_channels('alice', 'deleted', '{email}');
SELECT todo_kafka.set_notification_channels('alice', 'reminder', '{email,in_app}');
SELECT todo_kafka.set_notification_channels('alice', 'reminder', NULL);
SELECT todo_kafka.set_push_gateway('alice', 'https://ntfy.example.org/alice');
SELECT todo_kafka.set_push_gateway('alice', 'ftp://ntfy.example.org/alice');
SELECT todo_kafka.set_quiet_hours('alice', '22:00', '07:00');
SELECT todo_kafka.set_quiet_hours('alice', '22:00', NULL);
SELECT jsonb_pretty(todo_kafka.get_notification_settings('alice'));
-- the app cannot read the tables or call the consumer functions
SELECT count(*) FROM todo_kafka.push_subscriptions;
SELECT count(*) FROM todo_kafka.notification_deliveries;
SELECT todo_kafka.deliver_in_app('x:in_app', 'alice', 'reminder', NULL, 't', 'b');
SELECT * FROM todo_kafka.notification_targets('alice', 'push');
RESET ROLE;

SET ROLE tk_notify_consumer;
-- fan-out: a new task goes to the enabled channels, with the due time in the user's zone
RESET ROLE;
SELECT todo_kafka.set_user_time_zone('alice', 'Europe/Berlin');
SET ROLE tk_notify_consumer;
SELECT * FROM todo_kafka.notification_plan('alice', 'task_created', NULL, NULL, 'Call Bob',
  '2030-01-02 09:00+00', p_at => '2030-01-01 12:00+00');
-- quiet hours (22:00-07:00 Berlin): a new task reaches the inbox only; reminders are exempt
SELECT channel FROM todo_kafka.notification_plan('alice', 'task_created', NULL, NULL, 'Call Bob',
  NULL, p_at => '2030-01-01 22:30+00');
SELECT channel FROM todo_kafka.notification_plan('alice', 'reminder', '{email}', NULL, 'Call Bob',
  NULL, p_at => '2030-01-01 22:30+00');
-- a reminder names its method; the user's reminder channels filter it
SELECT * FROM todo_kafka.notification_plan('alice', 'reminder', '{push}', NULL, 'Call Bob',
  '2030-07-02 09:00+00', true);
SELECT count(*) FROM todo_kafka.notification_plan('bob', 'reminder', '{sms}', NULL, 't', NULL);
-- a user without settings: defaults, UTC
SELECT * FROM todo_kafka.notification_plan('bob', 'task_created', NULL, NULL, 'Plain', NULL);
SELECT todo_kafka.notification_plan('bob', 'birthday', NULL, NULL, 't', NULL);

-- delivery targets
SELECT * FROM todo_kafka.notification_targets('alice', 'email');
SELECT mode, target, length(p256dh), length(auth) FROM todo_kafka.notification_targets('alice', 'push');
SELECT * FROM todo_kafka.notification_targets('alice', 'in_app');
SELECT count(*) FROM todo_kafka.notification_targets('bob', 'email');
SELECT * FROM todo_kafka.notification_targets('alice', 'sms');

-- claims: a send happens once; a transient failure lets the next claim send again
SELECT todo_kafka.delivery_claim('ev1:email', 'email', 'alice@example.com', 'alice');
SELECT todo_kafka.delivery_retry('ev1:email', 'email', 'alice@example.com', 'connection refused');
SELECT todo_kafka.delivery_claim('ev1:email', 'email', 'alice@example.com', 'alice');
SELECT todo_kafka.delivery_done('ev1:email', 'email', 'alice@example.com', 'alice', 'delivered', '250 accepted');
SELECT todo_kafka.delivery_claim('ev1:email', 'email', 'alice@example.com', 'alice');
SELECT todo_kafka.delivery_done('ev1:email', 'email', 'alice@example.com', 'alice', 'sent');
-- dead-lettered (refused for good, or failed on its last attempt): final for
-- the service, claimed again when the dead letter is replayed
SELECT todo_kafka.delivery_claim('ev4:email', 'email', 'alice@example.com', 'alice');
SELECT todo_kafka.delivery_done('ev4:email', 'email', 'alice@example.com', 'alice', 'dead_lettered', 'transient 451: deferred');
SELECT todo_kafka.delivery_claim('ev4:email', 'email', 'alice@example.com', 'alice');
SELECT todo_kafka.delivery_done('ev4:email', 'email', 'alice@example.com', 'alice', 'dead_lettered', 'transient 451: deferred again');
-- an attempt that died mid-send: not sent again, unless taken over
SELECT todo_kafka.delivery_claim('ev2:email', 'email', 'alice@example.com', 'alice');
SELECT todo_kafka.delivery_claim('ev2:email', 'email', 'alice@example.com', 'alice');
SELECT todo_kafka.delivery_claim('ev2:email', 'email', 'alice@example.com', 'alice');
SELECT todo_kafka.delivery_claim('ev2:email', 'email', 'alice@example.com', 'alice', true);
-- in-app: inbox row and log row, once (the NOTIFY is checked by tests/301)
SELECT todo_kafka.deliver_in_app('ev1:in_app', 'alice', 'reminder',
  'a0000000-0000-4000-8000-000000000001', 'Reminder: Call Bob', 'Call Bob is due.');
SELECT todo_kafka.deliver_in_app('ev1:in_app', 'alice', 'reminder',
  'a0000000-0000-4000-8000-000000000001', 'Reminder: Call Bob', 'Call Bob is due.');
SELECT todo_kafka.deliver_in_app('ev3:in_app', 'alice', 'task_created', NULL, 'New task: X', 'X');
-- a push subscription the push service says is gone
SELECT todo_kafka.push_subscription_gone('https://push.example.net/sub/1');
SELECT todo_kafka.push_subscription_gone('https://push.example.net/sub/1');
SELECT mode, target FROM todo_kafka.notification_targets('alice', 'push');
-- the consumer cannot change settings or read the tables
SELECT todo_kafka.set_notification_email('alice', 'mallory@example.com');
SELECT count(*) FROM todo_kafka.notifications;
SELECT count(*) FROM todo_kafka.notification_deliveries;
RESET ROLE;
SELECT notification_id, channel, target, user_id, status, attempts, detail
  FROM todo_kafka.notification_deliveries ORDER BY 1, 2, 3;
-- retention keeps claims in flight
SET ROLE tk_notify_consumer;
SELECT todo_kafka.purge_notification_deliveries('0 s');
RESET ROLE;
SELECT notification_id, status FROM todo_kafka.notification_deliveries;

-- the inbox through the app API
SET ROLE tk_notify_app;
SELECT todo_kafka.inbox_channel('alice');
SELECT notification_id, user_id, kind, task_id, title, body, read, read_at IS NULL AS unread
  FROM todo_kafka.list_notifications('alice');
SELECT todo_kafka.mark_notification_read('alice',
  (SELECT id FROM todo_kafka.list_notifications('alice') WHERE notification_id = 'ev1:in_app'));
SELECT todo_kafka.mark_notification_read('alice',
  (SELECT id FROM todo_kafka.list_notifications('alice') WHERE notification_id = 'ev1:in_app'));
SELECT notification_id FROM todo_kafka.list_notifications('alice', true);
SELECT notification_id FROM todo_kafka.list_notifications('alice', p_limit => 1);
-- another user's notification is not found
SELECT todo_kafka.mark_notification_read('bob',
  (SELECT id FROM todo_kafka.list_notifications('alice') WHERE notification_id = 'ev3:in_app'));
SELECT count(*) FROM todo_kafka.list_notifications('bob');
RESET ROLE;

-- SECURITY DEFINER functions pin search_path; nothing for PUBLIC
SELECT p.proname FROM pg_proc p
 WHERE p.pronamespace = 'todo_kafka'::regnamespace AND p.prosecdef
   AND (p.proname LIKE '%notif%' OR p.proname LIKE '%deliver%' OR p.proname LIKE '%push%')
   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false);
SELECT r.rolname, count(*) FILTER (WHERE has_function_privilege(r.rolname, p.oid, 'EXECUTE')) AS can_execute
  FROM pg_proc p,
       (VALUES ('todo_kafka_app'), ('todo_kafka_consumer'), ('todo_kafka_relay'), ('todo_kafka_auditor')) r(rolname)
 WHERE p.pronamespace = 'todo_kafka'::regnamespace
   AND (p.proname LIKE '%notif%' OR p.proname LIKE '%deliver%' OR p.proname LIKE '%push%'
        OR p.proname IN ('inbox_channel', 'set_quiet_hours'))
 GROUP BY 1 ORDER BY 1;

DELETE FROM todo_kafka.notifications;
DELETE FROM todo_kafka.notification_deliveries;
DELETE FROM todo_kafka.push_subscriptions;
DELETE FROM todo_kafka.notification_settings;
DELETE FROM todo_kafka.notification_channels;
SELECT todo_kafka.set_user_time_zone('alice', NULL);
DROP ROLE tk_notify_app, tk_notify_consumer;
