-- relay_api: the functions todo-kafka-relay calls, and who may call them
\set VERBOSITY terse
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
TRUNCATE todo_kafka.outbox;
DELETE FROM todo_kafka.tasks;
DELETE FROM todo_kafka.dead_letters;
INSERT INTO todo_kafka.topics (stream, topic) VALUES ('api_test', 'api.test');
CREATE ROLE tk_api_relay LOGIN IN ROLE todo_kafka_relay;
CREATE ROLE tk_api_app LOGIN IN ROLE todo_kafka_app;

-- the API: EXECUTE for todo_kafka_relay only, writers are SECURITY DEFINER
-- with a pinned search_path; relay_page runs with the caller's rights so
-- that it can be inlined
SELECT p.oid::regprocedure AS function, p.prosecdef AS definer, p.proconfig,
       has_function_privilege('todo_kafka_relay', p.oid, 'EXECUTE') AS relay,
       has_function_privilege('todo_kafka_app', p.oid, 'EXECUTE') AS app,
       has_function_privilege('todo_kafka_consumer', p.oid, 'EXECUTE') AS consumer,
       EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                WHERE a.grantee = 0) AS public
  FROM pg_proc p
 WHERE p.pronamespace = 'todo_kafka'::regnamespace AND p.proname LIKE 'relay\_%'
 ORDER BY 1::text;
-- relay_page is inlined: the plan reads the partitions' id indexes (new
-- rows) and xid indexes (late rows), no function scan (seqscan off: an
-- empty table's plan must not depend on stats)
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM todo_kafka.relay_page(0, NULL, '10:20:12', 5, 10);
RESET enable_seqscan;

SET ROLE tk_api_relay;
-- an empty window still returns one row: the snapshot, with a NULL id
SELECT count(*) AS rows, bool_and(id IS NULL) AS no_id, bool_and(snapshot IS NOT NULL) AS has_snapshot
  FROM todo_kafka.relay_page(0, NULL, NULL, 0, 10);
SELECT snapshot AS s0 FROM todo_kafka.relay_page(0, NULL, NULL, 0, 10) \gset
RESET ROLE;

-- three committed events after s0
BEGIN;
SET LOCAL todo_kafka.correlation_id = 'corr-1';
SELECT todo_kafka.publish('api_test', 'key-1', 'test.one', '{"n": 1}', '{"h": "v"}') IS NOT NULL AS published;
COMMIT;
SELECT todo_kafka.publish('api_test', 'key-2', 'test.two', '{"n": 2}') IS NOT NULL AS published;
SELECT todo_kafka.publish('api_test', 'key-3', 'test.three', '{"n": 3}') IS NOT NULL AS published;

SET ROLE tk_api_relay;
-- the window (s0, now]: first page of two rows in id order, every column
SELECT kind, stream, event_type, source, key, user_id, actor IS NOT NULL AS actor,
       db_role IS NOT NULL AS db_role, correlation_id = 'corr-1' AS corr, traceparent,
       before, after, changed, headers, occurred_at ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$' AS occurred_at,
       xid IS NOT NULL AS xid, event_id IS NOT NULL AS event_id
  FROM todo_kafka.relay_page(0, NULL, :'s0', 0, 2);
SELECT max(id) AS cursor, min(snapshot::text) AS s1 FROM todo_kafka.relay_page(0, NULL, :'s0', 0, 2) \gset
-- the next page of the same window (window_end fixed): the last row
SELECT event_type FROM todo_kafka.relay_page(:cursor, :'s1', :'s0', 0, 2);
-- the next window (s1, now]: nothing committed since
SELECT count(*) AS rows, bool_and(id IS NULL) AS no_id FROM todo_kafka.relay_page(0, NULL, :'s1', :cursor, 10);
-- with no window_start (after a reconnect) every committed row is read
SELECT event_type FROM todo_kafka.relay_page(0, NULL, NULL, 0, 10);

-- with known_max_id past every row, a window finds nothing through the
-- id index, and the same rows through the xid index (late rows)
SELECT event_type FROM todo_kafka.relay_page(0, NULL, :'s0', 1000000, 10);

-- the position: none yet, so every row is pending
SELECT snapshot IS NULL AS no_position, max_id FROM todo_kafka.relay_position();
SELECT pending_rows, oldest_age_seconds >= 0 AS age_ok FROM todo_kafka.relay_backlog();
-- store the window's snapshot: its rows are published, nothing pending
SELECT todo_kafka.relay_commit_position(:'s1', :cursor) AS truncated;
SELECT snapshot::text = :'s1' AS stored, max_id = :cursor AS max_ok FROM todo_kafka.relay_position();
SELECT pending_rows, oldest_age_seconds FROM todo_kafka.relay_backlog();
SELECT todo_kafka.relay_commit_position(NULL, 0);

-- a poison row moves to dead_letters with its reason, in one statement
SELECT max(id) AS poison FROM todo_kafka.relay_page(0, NULL, NULL, 0, 10) \gset
SELECT todo_kafka.relay_dead_letter(:poison, 'api.test', 'message too large') AS moved;
SELECT todo_kafka.relay_dead_letter(:poison, 'api.test', 'again') AS moved_again;
RESET ROLE;
SELECT outbox_id = :poison AS same_id, topic, reason, row_data->>'event_type' AS event_type,
       row_data->>'key' AS key
  FROM todo_kafka.dead_letters;
SET ROLE tk_api_relay;
SELECT pending_rows, oldest_age_seconds FROM todo_kafka.relay_backlog();

-- firing reminders: what fired and when the next one is due, one call
RESET ROLE;
BEGIN;
DELETE FROM todo_kafka.reminders;
SET ROLE tk_api_relay;
SELECT * FROM todo_kafka.relay_fire_reminders(60, 10);
RESET ROLE;
INSERT INTO todo_kafka.tasks (user_id, title, due_date, reminder_offsets)
  VALUES ('bob', 'Long ago', now() - interval '1 hour', '{0}'),
         ('bob', 'Just now', now() + interval '1 minute', '{2 minutes}'),
         ('bob', 'Later', now() + interval '1 hour', '{0}');
SET ROLE tk_api_relay;
SELECT next_in_ms BETWEEN 3500000 AND 3600000 AS next_in_an_hour, wrote,
       sent, sent_max_late_s BETWEEN 60 AND 70 AS sent_late_ok,
       missed, missed_max_late_s BETWEEN 3600 AND 3610 AS missed_late_ok
  FROM todo_kafka.relay_fire_reminders(300, 10);
ROLLBACK;

-- leadership: one session wins and listens; the sleep announcement
SET ROLE tk_api_relay;
SELECT todo_kafka.relay_lead() AS leader;
SELECT pg_listening_channels() AS listening;
SELECT todo_kafka.relay_sleeping(true) AS asleep;
SELECT classid, objid, objsubid, mode FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid() ORDER BY objid;
SELECT todo_kafka.relay_sleeping(false) AS released;
SELECT todo_kafka.relay_sleeping(false) AS released_again;
SELECT count(*) AS advisory_locks FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid();
SELECT pg_advisory_unlock_all();
UNLISTEN *;
RESET ROLE;

-- nobody else may call them
SET ROLE tk_api_app;
SELECT * FROM todo_kafka.relay_page(0, NULL, NULL, 0, 10);
SELECT * FROM todo_kafka.relay_position();
SELECT todo_kafka.relay_commit_position('1:1:', 0);
SELECT todo_kafka.relay_dead_letter(1, 't', 'r');
SELECT * FROM todo_kafka.relay_backlog();
SELECT * FROM todo_kafka.relay_fire_reminders(60, 10);
SELECT todo_kafka.relay_lead();
SELECT todo_kafka.relay_sleeping(true);
RESET ROLE;

DELETE FROM todo_kafka.dead_letters;
DELETE FROM todo_kafka.tasks;
TRUNCATE todo_kafka.outbox;
UPDATE todo_kafka.relay_position SET snapshot = NULL, max_id = 0;
DELETE FROM todo_kafka.topics WHERE stream = 'api_test';
DROP ROLE tk_api_relay, tk_api_app;
