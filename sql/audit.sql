-- audit: the audit trail the audit consumer writes (0.3.0): append, search,
-- verify, purge, append-only, privileges; db_role in the outbox; publish()
-- refuses the audit stream
\set VERBOSITY terse
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
TRUNCATE todo_kafka.outbox;
CREATE ROLE tk_audit_app LOGIN IN ROLE todo_kafka_app;
CREATE ROLE tk_audit_consumer LOGIN IN ROLE todo_kafka_audit_writer;
CREATE ROLE tk_audit_auditor LOGIN IN ROLE todo_kafka_auditor;
CREATE ROLE tk_audit_relay LOGIN IN ROLE todo_kafka_relay;

-- one element of audit_append()'s array: the relay's audit data, wrapped
-- with its Kafka origin as the consumer passes it; event id ...0000<n>
CREATE FUNCTION pg_temp.rec(p_partition integer, p_offset bigint, p_n integer, p_user text,
                            p_task text, p_actor text, p_op text, p_at text)
  RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('topic', 'todo.audit.log', 'partition', p_partition, 'offset', p_offset,
    'data', jsonb_build_object(
      'event_id', 'a0000000-0000-4000-8000-' || lpad(p_n::text, 12, '0'),
      'actor', p_actor, 'db_role', 'tk_audit_app', 'operation', p_op,
      'event_type', CASE p_op WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END,
      'table', 'todo_kafka.tasks', 'task_id', p_task, 'user_id', p_user,
      'before', CASE WHEN p_op <> 'INSERT' THEN jsonb_build_object('title', 'old', 'n', p_n) END,
      'after', CASE WHEN p_op <> 'DELETE' THEN jsonb_build_object('title', 'new', 'n', p_n) END,
      'changed_fields', CASE WHEN p_op = 'UPDATE' THEN jsonb_build_array('title') END,
      'txid', 1000 + p_n, 'timestamp', p_at, 'correlation_id', 'corr-' || p_n))
$$;
-- a batch of a good record and one with a field set (or removed, p_value NULL)
CREATE FUNCTION pg_temp.bad(p_path text[], p_value jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_array(pg_temp.rec(0, 90, 90, 'zed', 't9', 'zed', 'INSERT', '2026-01-22T11:00:00Z'),
    CASE WHEN p_value IS NULL THEN pg_temp.rec(0, 91, 91, 'zed', 't9', 'zed', 'INSERT', '2026-01-22T11:00:00Z') #- p_path
         ELSE jsonb_set(pg_temp.rec(0, 91, 91, 'zed', 't9', 'zed', 'INSERT', '2026-01-22T11:00:00Z'), p_path, p_value) END)
$$;
CREATE TEMP VIEW entries AS
  SELECT chain, seq, right(event_id::text, 2) AS ev, operation, user_id, task_id, actor,
         occurred_at, kafka_offset
    FROM todo_kafka.audit_log;

-- append: two chains (= partitions) in one call, kept in array order
SELECT todo_kafka.audit_append(jsonb_build_array(
  pg_temp.rec(0, 10, 1, 'alice', 't1', 'alice', 'INSERT', '2026-01-22T10:00:00Z'),
  pg_temp.rec(1, 20, 2, 'bob', 't2', 'bob', 'INSERT', '2026-01-22T10:00:01.25Z'),
  pg_temp.rec(0, 11, 3, 'alice', 't1', 'admin', 'UPDATE', '2026-01-22T11:00:02.000001+01:00'),
  pg_temp.rec(1, 21, 4, 'bob', 't2', 'bob', 'DELETE', '2026-01-22T10:00:03Z'))) AS added;
SELECT * FROM entries ORDER BY chain, seq;
-- each entry links to the previous one of its chain; the heads name the last
SELECT a.chain, a.seq, a.prev_hash IS NULL AS starts_chain,
       a.prev_hash IS NOT DISTINCT FROM p.hash AS linked, length(a.hash) AS hash_bytes
  FROM todo_kafka.audit_log a
  LEFT JOIN todo_kafka.audit_log p ON p.chain = a.chain AND p.seq = a.seq - 1
 ORDER BY 1, 2;
SELECT c.chain, c.last_seq, c.last_hash = l.hash AS head_is_last, c.anchor_seq, c.anchor_hash
  FROM todo_kafka.audit_chains c JOIN todo_kafka.audit_log l ON l.chain = c.chain AND l.seq = c.last_seq
 ORDER BY 1;
-- the stored record
SELECT actor, db_role, operation, event_type, table_name, task_id, user_id, before, after,
       changed_fields, correlation_id, txid, occurred_at, kafka_topic, kafka_partition, kafka_offset,
       recorded_at > now() - interval '1 minute' AS recorded_now
  FROM todo_kafka.audit_log WHERE event_id = 'a0000000-0000-4000-8000-000000000003';

-- idempotent: redelivered records (3, 4; 5 twice in one batch) add nothing
SELECT todo_kafka.audit_append(jsonb_build_array(
  pg_temp.rec(0, 11, 3, 'alice', 't1', 'admin', 'UPDATE', '2026-01-22T11:00:02.000001+01:00'),
  pg_temp.rec(1, 21, 4, 'bob', 't2', 'bob', 'DELETE', '2026-01-22T10:00:03Z'),
  pg_temp.rec(0, 12, 5, 'carol', 't3', 'carol', 'INSERT', '2026-01-22T10:00:04Z'),
  pg_temp.rec(0, 12, 5, 'carol', 't3', 'carol', 'INSERT', '2026-01-22T10:00:04Z'))) AS added;
SELECT todo_kafka.audit_append(jsonb_build_array(
  pg_temp.rec(0, 12, 5, 'carol', 't3', 'carol', 'INSERT', '2026-01-22T10:00:04Z'))) AS added;
SELECT todo_kafka.audit_append('[]') AS added;
SELECT * FROM entries ORDER BY chain, seq;
SELECT chain, last_seq FROM todo_kafka.audit_chains ORDER BY 1;

-- the hash: sha256(prev_hash || canonical text); the text names NULL and ""
-- apart, and renders times in UTC whatever the session's TimeZone
SELECT bool_and(hash = sha256(coalesce(prev_hash, '') || convert_to(todo_kafka.audit_canonical(a), 'UTF8')))
       AS hashes_recomputed
  FROM todo_kafka.audit_log a;
SELECT replace(todo_kafka.audit_canonical(a),
               to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), '<recorded_at>')
       AS canonical
  FROM todo_kafka.audit_log a WHERE event_id = 'a0000000-0000-4000-8000-000000000003';
CREATE TEMP TABLE canon AS
  SELECT id, todo_kafka.audit_canonical(a) AS text FROM todo_kafka.audit_log a;
SET TimeZone = 'Asia/Kolkata';
SET DateStyle = 'SQL, DMY';
SELECT count(*) AS differ_in_other_zone
  FROM todo_kafka.audit_log a JOIN canon c USING (id) WHERE todo_kafka.audit_canonical(a) <> c.text;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
CREATE TEMP TABLE variants AS SELECT * FROM todo_kafka.audit_log WHERE event_id = 'a0000000-0000-4000-8000-000000000003';
INSERT INTO variants SELECT id, chain, seq, event_id, NULL, db_role, operation, event_type, table_name, task_id, user_id, before, after, changed_fields, correlation_id, txid, occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset, prev_hash, hash FROM variants;
INSERT INTO variants SELECT id, chain, seq, event_id, '', db_role, operation, event_type, table_name, task_id, user_id, before, after, changed_fields, correlation_id, txid, occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset, prev_hash, hash FROM variants LIMIT 1;
INSERT INTO variants SELECT id, chain, seq, event_id, actor, db_role, operation, event_type, table_name, task_id, user_id, NULL, after, changed_fields, correlation_id, txid, occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset, prev_hash, hash FROM variants LIMIT 1;
INSERT INTO variants SELECT id, chain, seq, event_id, actor, db_role, operation, event_type, table_name, task_id, user_id, 'null', after, changed_fields, correlation_id, txid, occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset, prev_hash, hash FROM variants LIMIT 1;
INSERT INTO variants SELECT id, chain, seq, event_id, actor, db_role, operation, event_type, table_name, task_id, user_id, before, after, NULL, correlation_id, txid, occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset, prev_hash, hash FROM variants LIMIT 1;
INSERT INTO variants SELECT id, chain, seq, event_id, actor, db_role, operation, event_type, table_name, task_id, user_id, before, after, '{}', correlation_id, txid, occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset, prev_hash, hash FROM variants LIMIT 1;
SELECT count(*) AS variants, count(DISTINCT todo_kafka.audit_canonical(ROW(v.*)::todo_kafka.audit_log)) AS distinct_texts
  FROM variants v;

-- bad records: 22023 naming the field and the array index; nothing written
SELECT count(*) AS entries_before FROM todo_kafka.audit_log;
SELECT todo_kafka.audit_append('{"partition": 0}');
SELECT todo_kafka.audit_append(NULL);
SELECT todo_kafka.audit_append('[1]');
SELECT todo_kafka.audit_append(pg_temp.bad('{partition}', NULL));
SELECT todo_kafka.audit_append(pg_temp.bad('{partition}', '-1'));
SELECT todo_kafka.audit_append(pg_temp.bad('{partition}', '"0"'));
SELECT todo_kafka.audit_append(pg_temp.bad('{offset}', '1.5'));
SELECT todo_kafka.audit_append(pg_temp.bad('{data}', NULL));
SELECT todo_kafka.audit_append(pg_temp.bad('{data,event_id}', NULL));
SELECT todo_kafka.audit_append(pg_temp.bad('{data,event_id}', '"not-a-uuid"'));
SELECT todo_kafka.audit_append(pg_temp.bad('{data,operation}', '"MERGE"'));
SELECT todo_kafka.audit_append(pg_temp.bad('{data,event_type}', '""'));
SELECT todo_kafka.audit_append(pg_temp.bad('{data,timestamp}', NULL));
SELECT todo_kafka.audit_append(pg_temp.bad('{data,timestamp}', '"yesterday"'));
SELECT todo_kafka.audit_append(pg_temp.bad('{data,timestamp}', '"2026-02-29T10:00:00Z"'));
SELECT todo_kafka.audit_append(pg_temp.bad('{data,timestamp}', '"2026-01-22T10:00:00"'));
SELECT todo_kafka.audit_append(pg_temp.bad('{data,timestamp}', '"2026-13-22T10:00:00Z"'));
SELECT todo_kafka.audit_append(pg_temp.bad('{data,timestamp}', '"2026-01-22T24:00:00Z"'));
SELECT todo_kafka.audit_append(pg_temp.bad('{data,txid}', '"x"'));
SELECT todo_kafka.audit_append(pg_temp.bad('{data,before}', '[1]'));
SELECT todo_kafka.audit_append(pg_temp.bad('{data,changed_fields}', '[1]'));
SELECT todo_kafka.audit_append(pg_temp.bad('{data,actor}', '5'));
\set VERBOSITY default
SELECT todo_kafka.audit_append(pg_temp.bad('{data,operation}', NULL));
\set VERBOSITY terse
SELECT count(*) AS entries_after FROM todo_kafka.audit_log;
SELECT chain, last_seq FROM todo_kafka.audit_chains ORDER BY 1;
-- a leap-year day and an offset are fine
SELECT todo_kafka.audit_append(jsonb_build_array(
  pg_temp.rec(2, 0, 6, 'dave', 't4', 'dave', 'INSERT', '2028-02-29T23:59:59.5-05:00'))) AS added;
SELECT occurred_at FROM todo_kafka.audit_log WHERE chain = 2;

-- search: every filter optional, newest first
SELECT right(event_id::text, 2) AS ev, user_id, occurred_at FROM todo_kafka.search_audit();
SELECT right(event_id::text, 2) AS ev, operation FROM todo_kafka.search_audit(p_user_id => 'alice');
SELECT right(event_id::text, 2) AS ev, task_id FROM todo_kafka.search_audit(p_task_id => 't2');
SELECT right(event_id::text, 2) AS ev, actor FROM todo_kafka.search_audit(p_actor => 'admin');
SELECT right(event_id::text, 2) AS ev, operation FROM todo_kafka.search_audit(p_operation => 'insert');
SELECT right(event_id::text, 2) AS ev FROM todo_kafka.search_audit(p_from => '2026-01-22 10:00:01.25+00');
SELECT right(event_id::text, 2) AS ev FROM todo_kafka.search_audit(p_to => '2026-01-22 10:00:01.25+00');
SELECT right(event_id::text, 2) AS ev FROM todo_kafka.search_audit(p_user_id => 'bob', p_operation => 'DELETE',
                                         p_from => '2026-01-22', p_to => '2026-01-23');
SELECT right(event_id::text, 2) AS ev FROM todo_kafka.search_audit(p_limit => 2);
SELECT count(*) FROM todo_kafka.search_audit(p_user_id => 'nobody');
SELECT count(*) FROM todo_kafka.search_audit(p_user_id => 'x'' OR true --');
SELECT * FROM todo_kafka.search_audit(p_limit => 0);
SELECT * FROM todo_kafka.search_audit(p_operation => 'MERGE');
-- the query a user search runs uses the (user_id, occurred_at) index
SELECT todo_kafka.audit_search_query('alice', NULL, NULL, NULL, NULL, NULL, 100) AS query;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT 'EXPLAIN (COSTS OFF) ' || todo_kafka.audit_search_query('alice', NULL, NULL, NULL, NULL, NULL, 100) \gexec
SELECT 'EXPLAIN (COSTS OFF) ' || todo_kafka.audit_search_query(NULL, 't1', NULL, NULL, '2026-01-01', NULL, 100) \gexec
RESET enable_seqscan;
RESET enable_bitmapscan;

-- verify: intact
SELECT * FROM todo_kafka.verify_audit();
-- the triggers fire even under session_replication_role = replica
SET session_replication_role = replica;
UPDATE todo_kafka.audit_log SET actor = 'mallory' WHERE event_id = 'a0000000-0000-4000-8000-000000000003';
RESET session_replication_role;
-- an entry edited behind the triggers' back (superuser) is found
BEGIN;
ALTER TABLE todo_kafka.audit_log DISABLE TRIGGER audit_log_append_only;
UPDATE todo_kafka.audit_log SET actor = 'mallory' WHERE event_id = 'a0000000-0000-4000-8000-000000000003';
SELECT * FROM todo_kafka.verify_audit();
-- ... also when the forger recomputes its hash: the next link breaks
UPDATE todo_kafka.audit_log a SET hash = todo_kafka.audit_hash(a.prev_hash, a)
 WHERE event_id = 'a0000000-0000-4000-8000-000000000003';
SELECT * FROM todo_kafka.verify_audit();
ROLLBACK;
-- a deleted middle entry
BEGIN;
ALTER TABLE todo_kafka.audit_log DISABLE TRIGGER audit_log_append_only;
DELETE FROM todo_kafka.audit_log WHERE chain = 0 AND seq = 2;
SELECT * FROM todo_kafka.verify_audit();
ROLLBACK;
-- a deleted tail, in two chains (one row per broken chain)
BEGIN;
ALTER TABLE todo_kafka.audit_log DISABLE TRIGGER audit_log_append_only;
DELETE FROM todo_kafka.audit_log WHERE (chain = 1 AND seq = 2) OR chain = 2;
SELECT * FROM todo_kafka.verify_audit();
ROLLBACK;
-- an edited chain head
BEGIN;
UPDATE todo_kafka.audit_chains SET last_hash = sha256('x') WHERE chain = 1;
SELECT * FROM todo_kafka.verify_audit();
ROLLBACK;
SELECT * FROM todo_kafka.verify_audit();

-- append-only: no UPDATE, DELETE or TRUNCATE, not even for a superuser
UPDATE todo_kafka.audit_log SET actor = 'mallory';
DELETE FROM todo_kafka.audit_log;
TRUNCATE todo_kafka.audit_log;
SELECT count(*) AS entries FROM todo_kafka.audit_log;

-- purge: a prefix of each chain, recorded before the cutoff; what remains verifies
SELECT pg_sleep(0.05);
SELECT clock_timestamp() AS cutoff \gset
SELECT pg_sleep(0.05);
SELECT todo_kafka.audit_append(jsonb_build_array(
  pg_temp.rec(0, 13, 7, 'alice', 't1', 'alice', 'DELETE', '2026-01-22T10:00:05Z'),
  pg_temp.rec(1, 22, 8, 'bob', 't5', 'bob', 'INSERT', '2026-01-22T10:00:06Z'))) AS added;
SELECT todo_kafka.purge_audit(NULL);
SELECT todo_kafka.purge_audit('-1 day');
SELECT todo_kafka.purge_audit() AS purged_90_days;
-- a period this short needs the retention floor lowered (superuser only)
SET todo_kafka.audit_retention = 0;
SELECT todo_kafka.purge_audit(now() - :'cutoff'::timestamptz) AS purged;
RESET todo_kafka.audit_retention;
SELECT * FROM entries ORDER BY chain, seq;
SELECT c.chain, c.last_seq, c.anchor_seq, c.anchor_hash IS NOT NULL AS anchored,
       l.prev_hash = c.anchor_hash AS first_links_to_anchor
  FROM todo_kafka.audit_chains c LEFT JOIN todo_kafka.audit_log l ON l.chain = c.chain AND l.seq = c.anchor_seq + 1
 ORDER BY 1;
SELECT * FROM todo_kafka.verify_audit();
-- chains go on after a purge, also one purged to the end (chain 2)
SELECT todo_kafka.audit_append(jsonb_build_array(
  pg_temp.rec(2, 1, 9, 'dave', 't4', 'dave', 'UPDATE', '2026-01-22T10:00:07Z'),
  pg_temp.rec(0, 14, 10, 'alice', 't6', 'alice', 'INSERT', '2026-01-22T10:00:08Z'))) AS added;
SELECT chain, seq, ev FROM entries WHERE ev IN ('09', '10') ORDER BY 1;
SELECT * FROM todo_kafka.verify_audit();
-- a deleted first entry after a purge no longer links to the anchor
BEGIN;
ALTER TABLE todo_kafka.audit_log DISABLE TRIGGER audit_log_append_only;
DELETE FROM todo_kafka.audit_log WHERE chain = 0 AND seq = 4;
SELECT * FROM todo_kafka.verify_audit();
ROLLBACK;

-- publish() refuses the audit stream, for everyone
SET ROLE tk_audit_app;
SELECT todo_kafka.publish('audit', 't1', 'audit.created', '{"forged": true}');
RESET ROLE;
SELECT todo_kafka.publish('audit', 't1', 'audit.created', '{"forged": true}');

-- the outbox records the login role (session_user), whatever actor is claimed
-- (the actor of a task API call without todo_kafka.actor is its user)
INSERT INTO todo_kafka.topics (stream, topic) VALUES ('app_events', 'app.events');
SET SESSION AUTHORIZATION tk_audit_app;
SET todo_kafka.actor = 'admin';
SELECT (todo_kafka.add_task('alice', 'audited')).title;
SELECT todo_kafka.publish('app_events', 'k1', 'app.event', '{}') IS NOT NULL AS published;
RESET todo_kafka.actor;
RESET SESSION AUTHORIZATION;
SET ROLE tk_audit_app;
SELECT (todo_kafka.add_task('alice', 'via SET ROLE')).title;
RESET ROLE;
SELECT event_type, CASE WHEN actor = session_user THEN '(session_user)' ELSE actor END AS actor,
       CASE WHEN db_role = session_user THEN '(session_user)' ELSE db_role END AS db_role
  FROM todo_kafka.outbox ORDER BY id;
-- the purges above are admin operations (admin_audit): who, what, outcome
SELECT operation, target, performed_by = session_user AS by_me, outcome, detail->'entries' AS entries
  FROM todo_kafka.admin_operations WHERE operation = 'audit_purge' ORDER BY id;
DELETE FROM todo_kafka.topics WHERE stream = 'app_events';

-- privileges
SELECT r.rolname, f.fn, has_function_privilege(r.rolname, f.fn, 'EXECUTE') AS can_execute
  FROM (VALUES ('todo_kafka_app'), ('todo_kafka_relay'), ('todo_kafka_auditor'), ('todo_kafka_consumer')) r(rolname),
       (VALUES ('todo_kafka.topic_of(text)'),
               ('todo_kafka.audit_append(jsonb)'),
               ('todo_kafka.search_audit(text, text, text, text, timestamptz, timestamptz, integer)'),
               ('todo_kafka.verify_audit()'),
               ('todo_kafka.purge_audit(interval)'),
               ('todo_kafka.audit_record(jsonb, integer)'),
               ('todo_kafka.audit_hash(bytea, todo_kafka.audit_log)')) f(fn)
 ORDER BY 1, 2;
SELECT r.rolname, t.tbl, has_table_privilege(r.rolname, t.tbl, 'SELECT') AS can_select,
       has_table_privilege(r.rolname, t.tbl, 'INSERT, UPDATE, DELETE, TRUNCATE') AS can_write
  FROM (VALUES ('todo_kafka_app'), ('todo_kafka_relay'), ('todo_kafka_auditor'), ('todo_kafka_consumer')) r(rolname),
       (VALUES ('todo_kafka.audit_log'), ('todo_kafka.audit_chains')) t(tbl)
 ORDER BY 1, 2;
SET ROLE tk_audit_app;
SELECT count(*) FROM todo_kafka.audit_log;
INSERT INTO todo_kafka.audit_log (chain, seq, event_id, operation, event_type, occurred_at,
                                  kafka_partition, kafka_offset, hash)
  VALUES (0, 99, gen_random_uuid(), 'INSERT', 'created', now(), 0, 99, '\x00');
DELETE FROM todo_kafka.audit_log;
SELECT todo_kafka.audit_append(jsonb_build_array(pg_temp.rec(0, 50, 50, 'eve', 't7', 'eve', 'INSERT', '2026-01-22T12:00:00Z')));
SELECT count(*) FROM todo_kafka.search_audit();
SELECT todo_kafka.purge_audit('0');
RESET ROLE;
SET ROLE tk_audit_consumer;
SELECT todo_kafka.audit_append(jsonb_build_array(pg_temp.rec(0, 15, 11, 'erin', 't7', 'erin', 'INSERT', '2026-01-22T12:00:00Z'))) AS added;
SELECT ok FROM todo_kafka.verify_audit();
SELECT todo_kafka.purge_audit('1 day') AS purged;
SELECT todo_kafka.topic_of('audit');
SELECT count(*) FROM todo_kafka.audit_log;
SELECT count(*) FROM todo_kafka.search_audit();
UPDATE todo_kafka.audit_log SET actor = 'x';
RESET ROLE;
SET ROLE tk_audit_auditor;
SELECT right(event_id::text, 2) AS ev, user_id FROM todo_kafka.search_audit(p_user_id => 'erin');
SELECT count(*) > 0 AS can_read FROM todo_kafka.audit_log;
SELECT ok FROM todo_kafka.verify_audit();
SELECT todo_kafka.audit_append('[]');
DELETE FROM todo_kafka.audit_log;
RESET ROLE;
SET ROLE tk_audit_relay;
SELECT todo_kafka.topic_of('task_events');
SELECT todo_kafka.topic_of('nope');
RESET ROLE;

-- the purge switch is for purge_audit() only (a superuser-only setting)
SET ROLE tk_audit_consumer;
SELECT set_config('todo_kafka.audit_purge', 'on', true);
RESET ROLE;

DELETE FROM todo_kafka.tasks;
TRUNCATE todo_kafka.outbox;
DROP ROLE tk_audit_app, tk_audit_consumer, tk_audit_auditor, tk_audit_relay;
