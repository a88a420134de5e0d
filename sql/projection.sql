-- projection: the projector's read model, offsets, snapshots and the
-- dead-letter tool's replay records (extension 0.4.0)
\set VERBOSITY terse
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';

-- the projector's role may call the API but not touch the tables
CREATE ROLE tk_test_projector LOGIN IN ROLE todo_kafka_projector;
SET ROLE tk_test_projector;

-- a batch: two tasks created, one updated; task_data timestamps in any
-- RFC 3339 form, reminder offsets as PostgreSQL or ISO 8601 intervals
SELECT todo_kafka.project_apply('tt', '[
 {"partition":0,"offset":0,"type":"created","task_id":"a0000000-0000-4000-8000-000000000001",
  "task_data":{"id":"a0000000-0000-4000-8000-000000000001","user_id":"alice","title":"Buy milk",
   "completed":false,"priority":"low","tags":["shop"],"reminder_offsets":["PT15M"],
   "created_at":"2026-01-22T10:00:00Z","updated_at":"2026-01-22T10:00:00Z","unknown_field":1}},
 {"partition":1,"offset":0,"type":"created","task_id":"a0000000-0000-4000-8000-000000000002",
  "task_data":{"id":"a0000000-0000-4000-8000-000000000002","user_id":"bob","title":"Walk dog",
   "completed":false,"priority":"high","reminder_offsets":["00:30:00"],
   "created_at":"2026-01-22T05:00:00-05:00","updated_at":"2026-01-22T05:00:00.5-05:00"}},
 {"partition":0,"offset":1,"type":"updated","task_id":"a0000000-0000-4000-8000-000000000001",
  "task_data":{"id":"a0000000-0000-4000-8000-000000000001","user_id":"alice","title":"Buy oat milk",
   "completed":false,"priority":"high","tags":["shop"],"reminder_offsets":["PT15M"],
   "created_at":"2026-01-22T10:00:00Z","updated_at":"2026-01-22T10:05:00Z"}},
 {"partition":2,"offset":0,"type":null}
]') AS applied;
SELECT id, user_id, title, priority, tags, reminder_offsets, updated_at, kafka_partition, kafka_offset
  FROM todo_kafka.task_view ORDER BY id;
SELECT * FROM todo_kafka.project_offsets('tt');

-- a redelivery (offsets below next_offset) changes nothing
SELECT todo_kafka.project_apply('tt', '[
 {"partition":0,"offset":0,"type":"created","task_id":"a0000000-0000-4000-8000-000000000001",
  "task_data":{"id":"a0000000-0000-4000-8000-000000000001","user_id":"alice","title":"Buy milk",
   "updated_at":"2026-01-22T10:00:00Z"}}]') AS applied;
SELECT title FROM todo_kafka.task_view WHERE id = 'a0000000-0000-4000-8000-000000000001';

-- completed, then deleted; a task from another partition (after a
-- repartitioning) with an older updated_at does not move a task back
SELECT todo_kafka.project_apply('tt', '[
 {"partition":0,"offset":2,"type":"completed","task_id":"a0000000-0000-4000-8000-000000000001",
  "task_data":{"id":"a0000000-0000-4000-8000-000000000001","user_id":"alice","title":"Buy oat milk",
   "completed":true,"updated_at":"2026-01-22T10:10:00Z"}},
 {"partition":1,"offset":1,"type":"deleted","task_id":"a0000000-0000-4000-8000-000000000002",
  "task_data":{"id":"a0000000-0000-4000-8000-000000000002","updated_at":"2026-01-22T10:00:00.5Z"}},
 {"partition":2,"offset":1,"type":"updated","task_id":"a0000000-0000-4000-8000-000000000001",
  "task_data":{"id":"a0000000-0000-4000-8000-000000000001","title":"stale","updated_at":"2026-01-22T09:00:00Z"}}
]') AS applied;
SELECT id, title, completed, kafka_partition, kafka_offset FROM todo_kafka.task_view ORDER BY id;
SELECT * FROM todo_kafka.project_offsets('tt');

-- bad input is refused as data (the projector dead-letters it)
SELECT todo_kafka.project_apply('tt', '[{"partition":0,"offset":3,"type":"created","task_id":"x"}]');
SELECT todo_kafka.project_apply('tt', '[{"partition":0,"type":null}]');
SELECT todo_kafka.project_apply('tt', '{}');

-- snapshots: take, prune, restore
SELECT todo_kafka.project_snapshot() AS first_snapshot \gset
SELECT todo_kafka.project_apply('tt', '[
 {"partition":0,"offset":3,"type":"recurring-created","task_id":"a0000000-0000-4000-8000-000000000003",
  "task_data":{"id":"a0000000-0000-4000-8000-000000000003","user_id":"alice","title":"Next",
   "recurrence":"daily","recurrence_parent":"a0000000-0000-4000-8000-000000000001",
   "updated_at":"2026-01-22T10:10:00Z"}}]') AS applied;
SELECT tasks, offsets FROM todo_kafka.project_snapshots() ORDER BY id;
SELECT todo_kafka.project_snapshot(2) > :first_snapshot AS second;
SELECT todo_kafka.project_snapshot(2) > :first_snapshot AS third;
SELECT count(*) AS kept FROM todo_kafka.project_snapshots();
-- the first was pruned (keep 2); the newest is restored by default
SELECT todo_kafka.project_restore(:first_snapshot) IS NOT NULL;
SELECT todo_kafka.project_restore() = (SELECT max(id) FROM todo_kafka.project_snapshots()) AS restored_newest;
SELECT count(*) AS tasks FROM todo_kafka.task_view;
SELECT todo_kafka.project_prune_snapshots(1) AS pruned;
SELECT todo_kafka.project_prune_snapshots(0);
SELECT todo_kafka.project_reset();
SELECT count(*) AS tasks, (SELECT count(*) FROM todo_kafka.project_offsets('tt')) AS offsets
  FROM todo_kafka.task_view;
SELECT todo_kafka.project_prune_snapshots(1) AS pruned;
SELECT todo_kafka.project_restore() = (SELECT max(id) FROM todo_kafka.project_snapshots()) AS restored;
SELECT count(*) AS tasks FROM todo_kafka.task_view;
SELECT todo_kafka.project_restore(12345);

-- the tables themselves are out of reach
INSERT INTO todo_kafka.projection_offsets VALUES ('tt', 9, 0);
DELETE FROM todo_kafka.projection_snapshots;
UPDATE todo_kafka.task_view SET title = 'x';
RESET ROLE;

-- dead-letter replays: once, then only with force
CREATE ROLE tk_test_operator LOGIN IN ROLE todo_kafka_operator;
SET ROLE tk_test_operator;
SELECT todo_kafka.dlq_claim_replay('0:7', 'todo.audit.log', 1, 42, 'e1') AS replays;
SELECT todo_kafka.dlq_claim_replay('0:7', 'todo.audit.log', 1, 42, 'e1');
SELECT todo_kafka.dlq_claim_replay('0:7', 'todo.audit.log', 1, 42, 'e1', true) AS replays;
SELECT todo_kafka.dlq_claim_replay('bogus', NULL, NULL, NULL, NULL);
SELECT dead_letter, origin_topic, origin_partition, origin_offset, replays,
       replayed_by = session_user AS by_me
  FROM todo_kafka.dlq_replays();
RESET ROLE;

-- a poison outbox row goes back into the outbox once (the admin records of
-- the replays above are checked in admin_audit)
TRUNCATE todo_kafka.outbox;
INSERT INTO todo_kafka.outbox (event_id, kind, stream, event_type, source, key, actor, correlation_id, after)
  VALUES ('b0000000-0000-4000-8000-000000000001', 'custom', 'task_events', 'app.big', '/x', 'k1', 'me', 'c1', '{"n":1}');
INSERT INTO todo_kafka.dead_letters (outbox_id, event_id, topic, reason, row_data)
  SELECT o.id, o.event_id, 'todo.task.events', 'message too large', row_to_json(o) FROM todo_kafka.outbox o;
TRUNCATE todo_kafka.outbox;
SET ROLE tk_test_operator;
SELECT id > 0 AS listed, topic, reason, row_data->>'event_type' AS event_type FROM todo_kafka.dlq_table_rows();
SELECT todo_kafka.dlq_requeue_outbox((SELECT max(id) FROM todo_kafka.dlq_table_rows())) > 0 AS requeued;
SELECT todo_kafka.dlq_requeue_outbox((SELECT max(id) FROM todo_kafka.dlq_table_rows()));
SELECT todo_kafka.dlq_requeue_outbox(999999);
RESET ROLE;
SELECT event_id, kind, stream, event_type, key, after FROM todo_kafka.outbox WHERE stream <> 'audit';
SELECT event_type, key, after->>'actor' = session_user AS by_me FROM todo_kafka.outbox WHERE stream = 'audit';
TRUNCATE todo_kafka.outbox;

-- purge: rows and replay records older than the age; the topic's start
SET ROLE tk_test_operator;
SELECT todo_kafka.dlq_purge('1 hour', 'todo.dead.letter', '{"0": 8}') AS purged_rows;
SELECT count(*) AS replay_records FROM todo_kafka.dlq_replays();
SELECT todo_kafka.dlq_purge('0', 'todo.dead.letter', '{"1": 3}') AS purged_rows;
SELECT * FROM todo_kafka.dlq_purged('todo.dead.letter');
SELECT todo_kafka.dlq_purge('-1 day');
RESET ROLE;

-- nothing of this for PUBLIC, the app or the relay
SELECT r.rolname, f.fn, has_function_privilege(r.rolname, f.fn, 'EXECUTE') AS can_execute
  FROM (VALUES ('todo_kafka_app'), ('todo_kafka_relay'), ('todo_kafka_consumer'), ('todo_kafka_operator')) r(rolname),
       (VALUES ('todo_kafka.project_apply(text, jsonb)'), ('todo_kafka.project_restore(bigint)'),
               ('todo_kafka.dlq_claim_replay(text, text, integer, bigint, text, boolean)'),
               ('todo_kafka.dlq_requeue_outbox(bigint, boolean)')) f(fn)
 ORDER BY 1, 2;
SELECT r.rolname, has_table_privilege(r.rolname, 'todo_kafka.task_view', 'SELECT') AS reads_view
  FROM (VALUES ('todo_kafka_app'), ('todo_kafka_relay'), ('todo_kafka_auditor')) r(rolname) ORDER BY 1;

TRUNCATE todo_kafka.task_view, todo_kafka.projection_offsets, todo_kafka.dead_letters,
	todo_kafka.dead_letter_replays, todo_kafka.dead_letter_purges;
DELETE FROM todo_kafka.projection_snapshots;
DROP ROLE tk_test_projector, tk_test_operator;
