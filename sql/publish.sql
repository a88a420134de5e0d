-- publish: custom events through the same outbox
\set VERBOSITY terse
TRUNCATE todo_kafka.outbox;
SELECT todo_kafka.publish('task_events', 'k1', 'invoice.paid', '{"amount": 12.5}',
                          '{"x-tenant": "acme"}') IS NOT NULL AS has_id;
SELECT todo_kafka.publish('task_events', 'k1', 'invoice.sent', '[1, 2]') IS NOT NULL AS has_id;
SELECT kind, stream, event_type, source, key, user_id, after::text, headers::text
  FROM todo_kafka.outbox ORDER BY id;
-- the returned id is the event id
SELECT todo_kafka.publish('task_events', 'k2', 'x.y', '{}') AS eid \gset
SELECT count(*) AS matches FROM todo_kafka.outbox WHERE event_id = :'eid';

-- bad calls
SELECT todo_kafka.publish('nope', 'k1', 'invoice.paid', '{}');
SELECT todo_kafka.publish('task_events', '', 'invoice.paid', '{}');
SELECT todo_kafka.publish('task_events', 'k1', 'bad type!', '{}');
SELECT todo_kafka.publish('task_events', 'k1', '.dot', '{}');
SELECT todo_kafka.publish('task_events', 'k1', 'ok', NULL);
SELECT todo_kafka.publish('task_events', 'k1', 'ok', '{}', '[1]');
SELECT todo_kafka.publish('task_events', 'k1', 'ok', '{}', '{"n": 1}');
SELECT todo_kafka.publish('task_events', 'k1', 'ok', '{}', '{"n": {"a": "b"}}');
SELECT todo_kafka.publish('task_events', 'k1', 'ok', '{}', '{"n": ["a"]}');
SELECT count(*) AS rows_total FROM todo_kafka.outbox;
-- published only if the transaction commits
BEGIN;
SELECT todo_kafka.publish('task_events', 'k3', 'x.y', '{}') IS NOT NULL;
ROLLBACK;
SELECT count(*) AS rows_with_k3 FROM todo_kafka.outbox WHERE key = 'k3';
TRUNCATE todo_kafka.outbox;
