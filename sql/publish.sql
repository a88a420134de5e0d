-- publish: custom events through the same outbox, on streams of the
-- application's own
\set VERBOSITY terse
TRUNCATE todo_kafka.outbox;
INSERT INTO todo_kafka.topics (stream, topic) VALUES ('billing', 'app.billing');
SELECT todo_kafka.publish('billing', 'k1', 'invoice.paid', '{"amount": 12.5}',
                          '{"x-tenant": "acme"}') IS NOT NULL AS has_id;
SELECT todo_kafka.publish('billing', 'k1', 'invoice.sent', '[1, 2]') IS NOT NULL AS has_id;
SELECT kind, stream, event_type, source, key, user_id, after::text, headers::text
  FROM todo_kafka.outbox ORDER BY id;
-- the returned id is the event id
SELECT todo_kafka.publish('billing', 'k2', 'x.y', '{}') AS eid \gset
SELECT count(*) AS matches FROM todo_kafka.outbox WHERE event_id = :'eid';

-- bad calls
SELECT todo_kafka.publish('nope', 'k1', 'invoice.paid', '{}');
SELECT todo_kafka.publish('billing', '', 'invoice.paid', '{}');
SELECT todo_kafka.publish('billing', 'k1', 'bad type!', '{}');
SELECT todo_kafka.publish('billing', 'k1', '.dot', '{}');
SELECT todo_kafka.publish('billing', 'k1', 'ok', NULL);
SELECT todo_kafka.publish('billing', 'k1', 'ok', '{}', '[1]');
SELECT todo_kafka.publish('billing', 'k1', 'ok', '{}', '{"n": 1}');
SELECT todo_kafka.publish('billing', 'k1', 'ok', '{}', '{"n": {"a": "b"}}');
SELECT todo_kafka.publish('billing', 'k1', 'ok', '{}', '{"n": ["a"]}');
SELECT count(*) AS rows_total FROM todo_kafka.outbox;
-- published only if the transaction commits
BEGIN;
SELECT todo_kafka.publish('billing', 'k3', 'x.y', '{}') IS NOT NULL;
ROLLBACK;
SELECT count(*) AS rows_with_k3 FROM todo_kafka.outbox WHERE key = 'k3';

-- every built-in stream is refused: its messages are made by todo_kafka
-- (from task changes, by todo-kafka-notify, by the relay and the consumer
-- services for dead letters) and follow published schemas (42501, nothing
-- written)
\set VERBOSITY default
SELECT todo_kafka.publish('task_events', 'k1', 'invoice.paid', '{}');
SELECT todo_kafka.publish('notifications', 'alice', 'notification.queued', '{}');
SELECT todo_kafka.publish('dead_letter', 'k1', 'todo_kafka.dead_letter', '{}');
\set VERBOSITY terse
SELECT todo_kafka.publish('task_updates', 'k1', 'invoice.paid', '{}');
SELECT todo_kafka.publish('audit', 'k1', 'invoice.paid', '{}');
SELECT todo_kafka.publish('reminders', 'k1', 'invoice.paid', '{}');
-- a refused stream is refused before anything else is checked
SELECT todo_kafka.publish('reminders', '', 'bad type!', '{}', '[1]');
SELECT todo_kafka.publish('dead_letter', '', 'bad type!', '{}', '[1]');
-- and no built-in stream is missing from the list: all of them refused
DO $$
DECLARE
	s text;
BEGIN
	FOR s IN SELECT stream FROM todo_kafka.topics WHERE stream <> 'billing' ORDER BY stream LOOP
		BEGIN
			PERFORM todo_kafka.publish(s, 'k1', 'x.y', '{}');
			RAISE NOTICE 'accepted: %', s;
		EXCEPTION WHEN insufficient_privilege THEN
			RAISE NOTICE 'refused: %', s;
		END;
	END LOOP;
END $$;
SELECT stream, count(*) FROM todo_kafka.outbox GROUP BY stream ORDER BY stream;
TRUNCATE todo_kafka.outbox;
DELETE FROM todo_kafka.topics WHERE stream = 'billing';
