-- capture: one outbox row per change, in the same transaction
\set VERBOSITY terse
TRUNCATE todo_kafka.outbox;
CREATE TEMP VIEW ob AS
  SELECT kind, stream, event_type, source, user_id, changed,
         before IS NOT NULL AS has_before, after IS NOT NULL AS has_after,
         after->>'title' AS title
    FROM todo_kafka.outbox ORDER BY id;

INSERT INTO todo_kafka.tasks (user_id, title, tags) VALUES ('alice', 'Buy milk', '{home}');
SELECT * FROM ob;
-- the after image holds the whole row
SELECT after->>'user_id' AS user_id, after->>'priority' AS priority, after->'tags' AS tags,
       after->>'completed' AS completed, key = after->>'id' AS key_is_task_id
  FROM todo_kafka.outbox;
TRUNCATE todo_kafka.outbox;

-- an update names the changed columns (updated_at is kept by touch)
UPDATE todo_kafka.tasks SET priority = 'high', tags = '{home,urgent}' WHERE title = 'Buy milk';
SELECT * FROM ob;
SELECT before->>'priority' AS before_priority, after->>'priority' AS after_priority FROM todo_kafka.outbox;
TRUNCATE todo_kafka.outbox;

-- an update that changes nothing writes nothing, and leaves updated_at alone
SELECT updated_at AS before_noop FROM todo_kafka.tasks WHERE title = 'Buy milk' \gset
UPDATE todo_kafka.tasks SET priority = 'high' WHERE title = 'Buy milk';
SELECT count(*) AS rows_after_noop FROM todo_kafka.outbox;
SELECT updated_at = :'before_noop' AS updated_at_unchanged FROM todo_kafka.tasks WHERE title = 'Buy milk';

-- completed false -> true is "completed"; true -> false is "updated"
UPDATE todo_kafka.tasks SET completed = true WHERE title = 'Buy milk';
UPDATE todo_kafka.tasks SET completed = false WHERE title = 'Buy milk';
SELECT * FROM ob;
TRUNCATE todo_kafka.outbox;

DELETE FROM todo_kafka.tasks WHERE title = 'Buy milk';
SELECT * FROM ob;
SELECT before->>'title' AS deleted_title FROM todo_kafka.outbox;
TRUNCATE todo_kafka.outbox;

-- a multi-row statement writes one row per task
INSERT INTO todo_kafka.tasks (user_id, title)
  SELECT 'bob', 'task ' || g FROM generate_series(1, 5) g;
SELECT count(*), count(DISTINCT key), count(DISTINCT event_id) FROM todo_kafka.outbox;

-- a rolled-back transaction leaves no row
BEGIN;
INSERT INTO todo_kafka.tasks (user_id, title) VALUES ('bob', 'never');
ROLLBACK;
SELECT count(*) AS rows_with_never FROM todo_kafka.outbox WHERE after->>'title' = 'never';
TRUNCATE todo_kafka.outbox;

-- actor: current role by default, the GUC when set; correlation: one per transaction
BEGIN;
INSERT INTO todo_kafka.tasks (user_id, title) VALUES ('carol', 'a');
INSERT INTO todo_kafka.tasks (user_id, title) VALUES ('carol', 'b');
COMMIT;
BEGIN;
SET LOCAL todo_kafka.actor = 'chatbot';
SET LOCAL todo_kafka.correlation_id = 'conv-42';
SET LOCAL todo_kafka.traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
INSERT INTO todo_kafka.tasks (user_id, title) VALUES ('carol', 'c');
COMMIT;
INSERT INTO todo_kafka.tasks (user_id, title) VALUES ('carol', 'd');
SELECT after->>'title' AS title, actor = current_user AS actor_is_current_user,
       actor, correlation_id = 'conv-42' AS given_correlation, traceparent
  FROM todo_kafka.outbox ORDER BY id;
SELECT count(DISTINCT correlation_id) AS correlation_ids,
       count(DISTINCT correlation_id) FILTER (WHERE after->>'title' IN ('a', 'b')) AS in_first_xact
  FROM todo_kafka.outbox;
-- the transaction id is recorded, the same for one transaction
SELECT count(DISTINCT xid) AS xids FROM todo_kafka.outbox;

-- a malformed traceparent is refused with a hint
SET todo_kafka.traceparent = 'not-a-trace';
SET todo_kafka.traceparent = '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01';
-- settings of the prefix are reserved
SET todo_kafka.no_such_setting = 1;
TRUNCATE todo_kafka.outbox;
DELETE FROM todo_kafka.tasks;
TRUNCATE todo_kafka.outbox;
