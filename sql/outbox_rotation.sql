-- outbox_rotation: the partitioned outbox (0.5.0) and its truncation
\set VERBOSITY terse
TRUNCATE todo_kafka.outbox;
UPDATE todo_kafka.relay_position SET snapshot = NULL, max_id = 0;
INSERT INTO todo_kafka.topics (stream, topic) VALUES ('rot_test', 'rot.test');

-- three partitions; autovacuum off (rows are never deleted, only truncated)
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound, c.reloptions
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'todo_kafka.outbox'::regclass ORDER BY 1;
SELECT pg_get_partkeydef('todo_kafka.outbox'::regclass) AS partition_key;

-- the C writer (publish, the capture trigger) puts each row into the
-- partition PostgreSQL's own routing would choose: ids around two chunk
-- boundaries and the wrap-around
SELECT setval('todo_kafka.outbox_id_seq', 4094);
SELECT count(todo_kafka.publish('rot_test', 'k', 'rot.c', jsonb_build_object('n', g))) FROM generate_series(1, 3) g;
SELECT setval('todo_kafka.outbox_id_seq', 12286);
SELECT count(todo_kafka.publish('rot_test', 'k', 'rot.c', jsonb_build_object('n', g))) FROM generate_series(1, 3) g;
SELECT id AS task_id FROM todo_kafka.add_task('rot', 'captured') \gset
-- the same ids inserted through SQL are routed by the partition key
CREATE TEMP TABLE c_rows AS SELECT tableoid::regclass AS part, id FROM todo_kafka.outbox;
CREATE TEMP TABLE routed AS SELECT * FROM todo_kafka.outbox;
TRUNCATE todo_kafka.outbox;
INSERT INTO todo_kafka.outbox SELECT * FROM routed;
SELECT c.id, c.part AS c_writer, o.tableoid::regclass AS sql_routing,
       todo_kafka.outbox_slot(c.id) AS slot
  FROM c_rows c JOIN todo_kafka.outbox o USING (id) ORDER BY c.id;
-- the id default takes the transaction's xid first (it has one)
BEGIN;
SELECT todo_kafka.outbox_next_id() > 0 AS took_id, pg_current_xact_id_if_assigned() IS NOT NULL AS has_xid;
ROLLBACK;

-- truncation: the sequence fills slot 0 (ids 12288..), so slots 1 and 2
-- are candidates.  Rows written after a snapshot are not published by a
-- position at that snapshot: nothing is truncated.
SELECT pg_current_snapshot() AS before_rows \gset
BEGIN;
TRUNCATE todo_kafka.outbox;
INSERT INTO todo_kafka.outbox SELECT * FROM routed;
UPDATE todo_kafka.outbox SET xid = pg_current_xact_id();
COMMIT;
SELECT todo_kafka.relay_commit_position(:'before_rows', 0) AS truncated_unpublished;
SELECT tableoid::regclass AS part, count(*) FROM todo_kafka.outbox GROUP BY 1 ORDER BY 1;
SELECT pending_rows FROM todo_kafka.relay_backlog();
-- a position that sees every row: slots 1 and 2 are emptied, the one being
-- filled is kept
SELECT todo_kafka.relay_commit_position(pg_current_snapshot(), 12289) AS truncated;
SELECT tableoid::regclass AS part, count(*) FROM todo_kafka.outbox GROUP BY 1 ORDER BY 1;
SELECT pending_rows FROM todo_kafka.relay_backlog();

TRUNCATE todo_kafka.outbox;
DELETE FROM todo_kafka.tasks;
UPDATE todo_kafka.relay_position SET snapshot = NULL, max_id = 0;
DELETE FROM todo_kafka.topics WHERE stream = 'rot_test';
