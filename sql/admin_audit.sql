-- admin_audit: administrative operations recorded (who, when, what, outcome)
-- in todo_kafka.admin_operations and as admin.<operation> audit records in
-- the outbox (0.5.0, issue 18 part 6): dead-letter replays and purges,
-- audit purges (sql/audit.sql); append-only; who is session_user; granted to nobody
\set VERBOSITY terse
SET TimeZone = 'UTC';
TRUNCATE todo_kafka.outbox;
CREATE ROLE tk_aa_operator LOGIN IN ROLE todo_kafka_operator;
CREATE ROLE tk_aa_auditor LOGIN IN ROLE todo_kafka_auditor;
CREATE ROLE tk_aa_app LOGIN IN ROLE todo_kafka_app;
CREATE TEMP VIEW ops AS
  SELECT operation, target, performed_by, outcome, detail - 'cutoff' AS detail
    FROM todo_kafka.admin_operations ORDER BY id;
-- the outbox rows on the audit stream, as the relay will publish them
CREATE TEMP VIEW admin_rows AS
  SELECT kind, stream, event_type, key, source,
         (after->>'operation') AS op, (after->>'table') AS tbl, (after->>'actor') AS actor,
         (after->>'db_role') AS db_role, (after->>'event_type') AS data_type,
         (after->'after'->>'event_id')::uuid = (after->>'event_id')::uuid AS same_id,
         (after->>'timestamp') ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$' AS rfc3339
    FROM todo_kafka.outbox WHERE stream = 'audit' ORDER BY id;

-- a dead-letter replay claimed by the operator (SET ROLE does not change who)
SET SESSION AUTHORIZATION tk_aa_operator;
SET ROLE todo_kafka_operator;
SELECT todo_kafka.dlq_claim_replay('0:3', 'todo.task.events', 1, 42, 'e1') AS replays;
SELECT todo_kafka.dlq_claim_replay('0:3', 'todo.task.events', 1, 42, 'e1', true) AS replays;
-- a refused replay leaves no record
SELECT todo_kafka.dlq_claim_replay('0:3', 'todo.task.events', 1, 42, 'e1');
SELECT todo_kafka.dlq_purge('1 day', 'todo.dead.letter', '{"0": 4}') AS purged;
-- the operator cannot write an admin record itself, nor read the table
SELECT todo_kafka.record_admin_operation('topic_create', 'x', '{}', 'succeeded');
SELECT count(*) FROM todo_kafka.admin_operations;
RESET ROLE;
RESET SESSION AUTHORIZATION;
SELECT * FROM ops;
SELECT * FROM admin_rows;

-- the admin records are valid audit records: audit_append() takes them all
-- into the chain, and the chain verifies (rolled back: the trail is
-- append-only and the audit test counts its entries)
BEGIN;
SELECT todo_kafka.audit_append(jsonb_agg(jsonb_build_object(
  'topic', 'todo.audit.log', 'partition', 1, 'offset', o.id, 'data', o.after::jsonb) ORDER BY o.id))
  FROM todo_kafka.outbox o WHERE o.stream = 'audit';
SELECT event_type, operation, table_name, actor, db_role
  FROM todo_kafka.audit_log WHERE chain = 1 ORDER BY seq;
SELECT * FROM todo_kafka.verify_audit();
ROLLBACK;

-- the auditor reads admin_operations; nobody changes it, not even the owner
SET SESSION AUTHORIZATION tk_aa_auditor;
SELECT count(*) > 0 AS reads FROM todo_kafka.admin_operations;
UPDATE todo_kafka.admin_operations SET outcome = 'failed';
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION tk_aa_app;
SELECT count(*) FROM todo_kafka.admin_operations;
RESET SESSION AUTHORIZATION;
UPDATE todo_kafka.admin_operations SET outcome = 'failed';
DELETE FROM todo_kafka.admin_operations;
TRUNCATE todo_kafka.admin_operations;
-- bad input
SELECT todo_kafka.record_admin_operation('Topic Create', 'x', '{}', 'succeeded');
SELECT todo_kafka.record_admin_operation('topic_create', 'x', '{}', 'maybe');
-- who may run it: nobody but the owner
SELECT r.rolname FROM pg_roles r
 WHERE r.rolname LIKE 'todo_kafka%'
   AND has_function_privilege(r.rolname, 'todo_kafka.record_admin_operation(text,text,jsonb,text)', 'EXECUTE')
 ORDER BY 1;

-- the relay's topic creations: its own narrow function, for the leading
-- relay only (relay/topics_admin.c calls it once per topic it asked for)
CREATE ROLE tk_aa_relay LOGIN IN ROLE todo_kafka_relay;
SET SESSION AUTHORIZATION tk_aa_relay;
SELECT todo_kafka.record_admin_operation('topic_create', 'x', '{}', 'succeeded');
-- not leading (a standby, or another login of the role): refused
SELECT todo_kafka.relay_record_topic_create('todo.task.events', 3, 1, '{"retention.ms": "1000"}', 'h/1', NULL);
SELECT todo_kafka.relay_lead() AS leads;
SELECT todo_kafka.relay_record_topic_create('todo.task.events', 3, 1, '{"retention.ms": "1000"}', 'h/1', NULL) > 0 AS recorded;
SELECT todo_kafka.relay_record_topic_create('todo.reminders', 3, 2, '{"retention.ms": "1000"}', 'h/1',
  'Failed while waiting for controller: Local: Timed out') > 0 AS recorded;
SELECT todo_kafka.relay_record_topic_create('', 3, 1, '{}', 'h/1', NULL);
SELECT pg_advisory_unlock(29803, 1) AS unlocked;
RESET SESSION AUTHORIZATION;
SELECT operation, target, performed_by, outcome, detail
  FROM todo_kafka.admin_operations WHERE operation = 'topic_create' ORDER BY id;
SELECT event_type, key, (after->>'actor') AS actor, (after->'after'->>'outcome') AS outcome
  FROM todo_kafka.outbox WHERE event_type = 'admin.topic_create' ORDER BY id;
-- who may run it: the relay role only
SELECT r.rolname FROM pg_roles r
 WHERE r.rolname LIKE 'todo_kafka%'
   AND has_function_privilege(r.rolname, 'todo_kafka.relay_record_topic_create(text,integer,integer,jsonb,text,text)', 'EXECUTE')
 ORDER BY 1;

TRUNCATE todo_kafka.outbox;
DROP ROLE tk_aa_operator, tk_aa_auditor, tk_aa_app, tk_aa_relay;
