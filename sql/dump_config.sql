-- dump_config: what pg_dump keeps of the extension's tables (0.5.0, issue
-- 20), restoring changed topics and the relay's position over the rows
-- CREATE EXTENSION made, the relay's rebase after a restore into another
-- cluster, the audit service's offsets kept with its rows
\set VERBOSITY terse

-- Every member table and sequence of the extension is marked for pg_dump
-- (pg_extension.extconfig), read from the catalog so that a table added
-- later cannot be forgotten.  A partitioned table holds no data of its own
-- (its partitions are checked).  Tables that truly hold no data would be
-- listed here, each with the reason; there is none.
CREATE TEMP VIEW not_dumped AS
WITH members AS (
	SELECT c.oid, c.relname, c.relkind
	  FROM pg_depend d
	  JOIN pg_class c ON c.oid = d.objid
	  JOIN pg_extension e ON e.oid = d.refobjid
	 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass
	   AND d.deptype = 'e' AND e.extname = 'todo_kafka'
), exclusions (relname, why) AS (
	VALUES (NULL::name, NULL::text)		-- (table, why it holds no data)
)
SELECT m.relname AS not_dumped, m.relkind
  FROM members m, pg_extension e
 WHERE e.extname = 'todo_kafka'
   AND m.relkind IN ('r', 'S')
   AND m.oid <> ALL (e.extconfig)
   AND m.relname NOT IN (SELECT x.relname FROM exclusions x WHERE x.relname IS NOT NULL);
SELECT * FROM not_dumped ORDER BY 1;
-- the check fails for a table added to the extension without a mark
BEGIN;
CREATE TABLE todo_kafka.forgotten (id integer);
ALTER EXTENSION todo_kafka ADD TABLE todo_kafka.forgotten;
SELECT * FROM not_dumped ORDER BY 1;
ROLLBACK;

-- and each marked table or sequence is a member (a filter per table)
SELECT c.relname, coalesce(e.extcondition[i], '') <> '' AS filtered
  FROM pg_extension e, generate_subscripts(e.extconfig, 1) i
  JOIN pg_class c ON true
 WHERE e.extname = 'todo_kafka' AND c.oid = e.extconfig[i]
 ORDER BY 1;

-- topics: the dump filter keeps the rows the user added or changed only
SELECT count(*) AS builtin_rows FROM todo_kafka.topic_defaults();
BEGIN;
UPDATE todo_kafka.topics SET topic = 'task-events' WHERE stream = 'task_events';
UPDATE todo_kafka.topics SET retention_ms = 86400000 WHERE stream = 'reminders';
UPDATE todo_kafka.topics SET description = description WHERE stream = 'audit';	-- unchanged
INSERT INTO todo_kafka.topics (stream, topic) VALUES ('chat_events', 'chat.events');
SELECT format('SELECT stream, topic, retention_ms FROM todo_kafka.topics %s ORDER BY 1',
			  e.extcondition[array_position(e.extconfig, 'todo_kafka.topics'::regclass::oid)]) AS q
  FROM pg_extension e WHERE e.extname = 'todo_kafka' \gset
:q;
-- a restore inserts the dumped rows over the built-in ones CREATE EXTENSION made
CREATE TEMP TABLE dumped AS SELECT * FROM todo_kafka.topics WHERE false;
INSERT INTO dumped SELECT t.* FROM todo_kafka.topics t
 WHERE (stream, topic, partitions, replication_factor, retention_ms, description)
	   NOT IN (SELECT * FROM todo_kafka.topic_defaults());
DELETE FROM todo_kafka.topics;
INSERT INTO todo_kafka.topics SELECT * FROM todo_kafka.topic_defaults();
INSERT INTO todo_kafka.topics SELECT * FROM dumped;
SELECT stream, topic, retention_ms FROM todo_kafka.topics ORDER BY 1;
-- a changed row is not replaced by another insert: the key still holds
INSERT INTO todo_kafka.topics (stream, topic) VALUES ('task_events', 'again');
ROLLBACK;

-- relay_position: the restored row replaces the one CREATE EXTENSION made
BEGIN;
INSERT INTO todo_kafka.relay_position (snapshot, max_id)
VALUES (pg_current_snapshot(), 42);
SELECT count(*) AS rows, max(max_id) AS max_id, bool_and(system_id = todo_kafka.cluster_id()) AS here
  FROM todo_kafka.relay_position;
ROLLBACK;

-- a position taken in another cluster: the outbox is rebased and re-sent
BEGIN;
SELECT (todo_kafka.add_task('dump_alice', 'Back up the database')).id IS NOT NULL AS added;
SELECT (todo_kafka.add_task('dump_alice', 'Restore it')).id IS NOT NULL AS added;
UPDATE todo_kafka.outbox SET xid = '999999999'::xid8 WHERE user_id = 'dump_alice';
UPDATE todo_kafka.relay_position
   SET snapshot = '999999990:999999995:', max_id = 1000000, system_id = 12345;
SELECT snapshot IS NULL AS no_position, max_id FROM todo_kafka.relay_position();
SELECT count(*) FILTER (WHERE xid = pg_current_xact_id()) AS rebased_rows
  FROM todo_kafka.outbox WHERE user_id = 'dump_alice';
SELECT snapshot IS NULL AS no_position, system_id = todo_kafka.cluster_id() AS here
  FROM todo_kafka.relay_position;
-- the same cluster: nothing to do
SELECT snapshot IS NULL AS no_position, max_id FROM todo_kafka.relay_position();
ROLLBACK;

-- the audit service's offsets, with its rows (audit_consume)
CREATE ROLE tk_test_dump_audit LOGIN IN ROLE todo_kafka_audit_writer;
SET ROLE tk_test_dump_audit;
SELECT todo_kafka.audit_consume('g', '[
 {"topic":"dump.audit","partition":0,"offset":7,"data":{"event_id":"d0000000-0000-4000-8000-000000000001",
  "operation":"INSERT","event_type":"created","timestamp":"2026-01-22T10:00:00Z"}},
 {"topic":"dump.audit","partition":1,"offset":3,"data":{"event_id":"d0000000-0000-4000-8000-000000000002",
  "operation":"INSERT","event_type":"created","timestamp":"2026-01-22T10:00:01Z"}}]') AS appended;
SELECT * FROM todo_kafka.audit_offsets('g', 'dump.audit');
-- below the stored offset: already handled, left out (even a new event id)
SELECT todo_kafka.audit_consume('g', '[
 {"topic":"dump.audit","partition":0,"offset":6,"data":{"event_id":"d0000000-0000-4000-8000-000000000003",
  "operation":"INSERT","event_type":"created","timestamp":"2026-01-22T10:00:02Z"}},
 {"topic":"dump.audit","partition":0,"offset":8,"data":{"event_id":"d0000000-0000-4000-8000-000000000001",
  "operation":"INSERT","event_type":"created","timestamp":"2026-01-22T10:00:00Z"}}]') AS appended;
SELECT * FROM todo_kafka.audit_offsets('g', 'dump.audit');
-- a bad record: nothing written, the offsets stay
SELECT todo_kafka.audit_consume('g', '[
 {"topic":"dump.audit","partition":1,"offset":4,"data":{"operation":"INSERT"}}]');
SELECT todo_kafka.audit_consume('g', '"not an array"');
SELECT * FROM todo_kafka.audit_offsets('g', 'dump.audit');
-- a dead-lettered last record moves the offset past it
SELECT todo_kafka.audit_skip('g', 'dump.audit', 1, 9);
SELECT * FROM todo_kafka.audit_offsets('g', 'dump.audit');
-- offsets are per consumer group: another group has none (it starts at its
-- committed offsets) and its records repeat nothing (event ids)
SELECT count(*) AS other_group FROM todo_kafka.audit_offsets('other', 'dump.audit');
SELECT todo_kafka.audit_consume('other', '[
 {"topic":"dump.audit","partition":0,"offset":7,"data":{"event_id":"d0000000-0000-4000-8000-000000000001",
  "operation":"INSERT","event_type":"created","timestamp":"2026-01-22T10:00:00Z"}}]') AS appended;
SELECT * FROM todo_kafka.audit_offsets('other', 'dump.audit');
-- the table itself is not the service's to write
DELETE FROM todo_kafka.audit_offsets;
RESET ROLE;
SELECT event_id, chain, kafka_offset FROM todo_kafka.audit_log
 WHERE kafka_topic = 'dump.audit' ORDER BY 1;
SELECT * FROM todo_kafka.verify_audit();
DROP ROLE tk_test_dump_audit;
