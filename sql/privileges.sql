-- privileges: the application, relay and auditor roles
\set VERBOSITY terse
TRUNCATE todo_kafka.outbox;
INSERT INTO todo_kafka.topics (stream, topic) VALUES ('app_events', 'app.events');
CREATE ROLE tk_test_app LOGIN IN ROLE todo_kafka_app;
CREATE ROLE tk_test_relay LOGIN IN ROLE todo_kafka_relay;
CREATE ROLE tk_test_nobody LOGIN;

SET ROLE tk_test_app;
SELECT (todo_kafka.add_task('alice', 'as app')).title;
SELECT count(*) FROM todo_kafka.list_tasks('alice');
SELECT todo_kafka.publish('app_events', 'k', 'app.event', '{}') IS NOT NULL AS published;
-- the app cannot touch the outbox directly
SELECT count(*) FROM todo_kafka.outbox;
INSERT INTO todo_kafka.outbox (event_id, kind, stream, event_type, source, key, actor, correlation_id)
  VALUES (gen_random_uuid(), 'custom', 'task_events', 'forged', 'x', 'k', 'me', 'c');
UPDATE todo_kafka.outbox SET event_type = 'forged';
DELETE FROM todo_kafka.outbox;
-- nor the tasks table, nor track()
UPDATE todo_kafka.tasks SET title = 'x';
SELECT todo_kafka.track('todo_kafka.tasks', 'id', 'user_id');
RESET ROLE;
-- the actor of a task API call is the user it was made for, that of
-- publish() the calling role; never the function owner
SELECT event_type, actor FROM todo_kafka.outbox ORDER BY id;

SET ROLE tk_test_relay;
SELECT count(*) AS relay_sees FROM todo_kafka.outbox;
-- the relay only reads (since 0.5.0 published partitions are truncated by
-- relay_commit_position(), not deleted row by row)
DELETE FROM todo_kafka.outbox WHERE event_type = 'app.event';
UPDATE todo_kafka.outbox SET event_type = 'forged';
INSERT INTO todo_kafka.outbox (event_id, kind, stream, event_type, source, key, actor, correlation_id)
  VALUES (gen_random_uuid(), 'custom', 'task_events', 'forged', 'x', 'k', 'me', 'c');
SELECT todo_kafka.add_task('alice', 'as relay');
RESET ROLE;

SET ROLE tk_test_nobody;
SELECT todo_kafka.add_task('alice', 'as nobody');
SELECT count(*) FROM todo_kafka.tasks;
RESET ROLE;

DELETE FROM todo_kafka.tasks;
TRUNCATE todo_kafka.outbox;
DELETE FROM todo_kafka.topics WHERE stream = 'app_events';
DROP ROLE tk_test_app, tk_test_relay, tk_test_nobody;
