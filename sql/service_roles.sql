-- service_roles: one role per service, each with only its own functions
-- (0.5.0, issue 16); purge_audit() never below todo_kafka.audit_retention,
-- and every purge recorded in audit_purges for the auditor
\set VERBOSITY terse
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
CREATE ROLE tk_sr_audit LOGIN IN ROLE todo_kafka_audit_writer;
CREATE ROLE tk_sr_notify LOGIN IN ROLE todo_kafka_notifier;
CREATE ROLE tk_sr_project LOGIN IN ROLE todo_kafka_projector;
CREATE ROLE tk_sr_operator LOGIN IN ROLE todo_kafka_operator;
CREATE ROLE tk_sr_auditor LOGIN IN ROLE todo_kafka_auditor;
CREATE ROLE tk_sr_consumer LOGIN IN ROLE todo_kafka_consumer;

-- what each role may run, exactly: every function of the schema it can
-- EXECUTE, and every table or view it can touch
SELECT r.rolname, string_agg(p.proname, ' ' ORDER BY p.proname) AS functions
  FROM (VALUES ('todo_kafka_audit_writer'), ('todo_kafka_notifier'), ('todo_kafka_projector'),
               ('todo_kafka_operator'), ('todo_kafka_auditor'), ('todo_kafka_consumer')) r(rolname)
  JOIN pg_proc p ON p.pronamespace = 'todo_kafka'::regnamespace
                AND has_function_privilege(r.rolname, p.oid, 'EXECUTE')
 GROUP BY 1 ORDER BY 1;
SELECT r.rolname, c.relname,
       array_remove(ARRAY[CASE WHEN has_table_privilege(r.rolname, c.oid, 'SELECT') THEN 'SELECT' END,
                          CASE WHEN has_table_privilege(r.rolname, c.oid, 'INSERT') THEN 'INSERT' END,
                          CASE WHEN has_table_privilege(r.rolname, c.oid, 'UPDATE') THEN 'UPDATE' END,
                          CASE WHEN has_table_privilege(r.rolname, c.oid, 'DELETE') THEN 'DELETE' END,
                          CASE WHEN has_table_privilege(r.rolname, c.oid, 'TRUNCATE') THEN 'TRUNCATE' END],
                    NULL) AS privileges
  FROM (VALUES ('todo_kafka_audit_writer'), ('todo_kafka_notifier'), ('todo_kafka_projector'),
               ('todo_kafka_operator'), ('todo_kafka_auditor'), ('todo_kafka_consumer')) r(rolname)
  JOIN pg_class c ON c.relnamespace = 'todo_kafka'::regnamespace AND c.relkind IN ('r', 'p', 'v')
 WHERE has_table_privilege(r.rolname, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
 ORDER BY 1, 2;

-- every function of the other services, called for real: refused with
-- 42501 before its arguments matter
CREATE TABLE pg_temp.calls (service text, call text);
-- verify_audit() is the auditor's and the audit service's (verify_interval_s)
INSERT INTO pg_temp.calls VALUES
  ('audit', 'todo_kafka.audit_append(''[]'')'),
  ('audit', 'todo_kafka.purge_audit(''0'')'),
  ('audit', 'todo_kafka.audit_consume(''g'', ''[]'')'),
  ('audit', 'todo_kafka.audit_skip(''g'', ''t'', 0, 0)'),
  ('audit', 'todo_kafka.audit_offsets(''g'', ''t'')'),
  ('notify', 'todo_kafka.notification_plan(''u'', ''task_created'', NULL, NULL, ''t'', NULL)'),
  ('notify', 'todo_kafka.notification_targets(''u'', ''email'')'),
  ('notify', 'todo_kafka.delivery_claim(''n'', ''email'', ''x'', ''u'', false)'),
  ('notify', 'todo_kafka.delivery_done(''n'', ''email'', ''x'', ''u'', ''sent'', NULL)'),
  ('notify', 'todo_kafka.delivery_retry(''n'', ''email'', ''x'', ''e'')'),
  ('notify', 'todo_kafka.deliver_in_app(''n'', ''u'', ''task_created'', NULL, ''t'', ''b'')'),
  ('notify', 'todo_kafka.push_subscription_gone(''https://push.example/x'')'),
  ('notify', 'todo_kafka.purge_notification_deliveries(''0'')'),
  ('project', 'todo_kafka.project_apply(''t'', ''[]'')'),
  ('project', 'todo_kafka.project_offsets(''t'')'),
  ('project', 'todo_kafka.project_snapshot(1)'),
  ('project', 'todo_kafka.project_prune_snapshots(1)'),
  ('project', 'todo_kafka.project_snapshots()'),
  ('project', 'todo_kafka.project_restore(1)'),
  ('project', 'todo_kafka.project_reset()'),
  ('operator', 'todo_kafka.dlq_claim_replay(''0:1'', ''t'', 0, 1, ''e'', false)'),
  ('operator', 'todo_kafka.dlq_replays()'),
  ('operator', 'todo_kafka.dlq_table_rows()'),
  ('operator', 'todo_kafka.dlq_requeue_outbox(1, false)'),
  ('operator', 'todo_kafka.dlq_purge(''0'', ''t'', ''[]'')'),
  ('operator', 'todo_kafka.dlq_purged(''t'')'),
  ('auditor', 'todo_kafka.search_audit()'),
  ('auditor,audit', 'todo_kafka.verify_audit()'),
  ('auditor', 'count(*) FROM todo_kafka.audit_log'),
  ('auditor', 'count(*) FROM todo_kafka.audit_purges');
GRANT SELECT ON pg_temp.calls TO PUBLIC;
-- the SQLSTATE of a call, 'ok' when it ran (in a subtransaction, undone)
CREATE FUNCTION pg_temp.try(p_call text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		EXECUTE 'SELECT ' || p_call;
		RAISE EXCEPTION USING ERRCODE = 'P0004';
	EXCEPTION WHEN SQLSTATE 'P0004' THEN
		RETURN 'ok';
	END;
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;
-- each service's login against the others' functions: one line per
-- outcome, so anything but 42501 stands out
CREATE FUNCTION pg_temp.others(p_service text) RETURNS TABLE (outcome text, calls bigint)
  LANGUAGE sql AS $$
  SELECT pg_temp.try(c.call), count(*) FROM pg_temp.calls c
   WHERE p_service <> ALL (string_to_array(c.service, ',')) GROUP BY 1
$$;
SET SESSION AUTHORIZATION tk_sr_audit;
SELECT * FROM pg_temp.others('audit');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION tk_sr_notify;
SELECT * FROM pg_temp.others('notify');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION tk_sr_project;
SELECT * FROM pg_temp.others('project');
RESET SESSION AUTHORIZATION;
-- the operator may also purge the audit trail (above the retention)
SET SESSION AUTHORIZATION tk_sr_operator;
SELECT c.call, pg_temp.try(c.call) FROM pg_temp.calls c WHERE c.service <> 'operator' AND pg_temp.try(c.call) <> '42501';
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION tk_sr_auditor;
SELECT * FROM pg_temp.others('auditor');
RESET SESSION AUTHORIZATION;

-- the issue's attack, as the notifier: forge an entry, erase the trail,
-- reset the read model
SET SESSION AUTHORIZATION tk_sr_notify;
SELECT todo_kafka.audit_append(jsonb_build_array(jsonb_build_object('topic', 'todo.audit.log',
  'partition', 0, 'offset', 1, 'data', jsonb_build_object('event_id', gen_random_uuid(),
  'actor', 'admin', 'db_role', 'chatbot', 'operation', 'DELETE'))));
SELECT todo_kafka.purge_audit('0');
SELECT todo_kafka.project_reset();
RESET SESSION AUTHORIZATION;

-- the audit trail for the purge tests (emptied first): two chains, entries
-- recorded now
CREATE FUNCTION pg_temp.rec(p_partition integer, p_offset bigint, p_n integer)
  RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('topic', 'todo.audit.log', 'partition', p_partition, 'offset', p_offset,
    'data', jsonb_build_object(
      'event_id', 'b0000000-0000-4000-8000-' || lpad(p_n::text, 12, '0'),
      'actor', 'alice', 'db_role', 'tk_sr_app', 'operation', 'INSERT', 'event_type', 'created',
      'table', 'todo_kafka.tasks', 'task_id', 't' || p_n, 'user_id', 'alice',
      'after', jsonb_build_object('title', 'new'), 'txid', 2000 + p_n,
      'timestamp', '2026-01-22T10:00:00Z', 'correlation_id', 'corr-' || p_n))
$$;
-- an empty trail (a superuser getting past the append-only triggers)
CREATE FUNCTION pg_temp.empty_trail() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	ALTER TABLE todo_kafka.audit_log DISABLE TRIGGER audit_log_no_truncate;
	TRUNCATE todo_kafka.audit_log;
	ALTER TABLE todo_kafka.audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;
	DELETE FROM todo_kafka.audit_chains;
	ALTER TABLE todo_kafka.audit_purges DISABLE TRIGGER audit_purges_no_truncate;
	TRUNCATE todo_kafka.audit_purges;
	ALTER TABLE todo_kafka.audit_purges ENABLE ALWAYS TRIGGER audit_purges_no_truncate;
END
$$;
SELECT pg_temp.empty_trail();
SET SESSION AUTHORIZATION tk_sr_audit;
SELECT todo_kafka.audit_append(jsonb_build_array(pg_temp.rec(0, 1, 1), pg_temp.rec(0, 2, 2),
                                                 pg_temp.rec(1, 1, 3))) AS appended;
RESET SESSION AUTHORIZATION;

-- the retention floor: 90 days unless a superuser lowers it
SHOW todo_kafka.audit_retention;
SELECT todo_kafka.audit_retention();
SET SESSION AUTHORIZATION tk_sr_operator;
SELECT todo_kafka.purge_audit('0');
SELECT todo_kafka.purge_audit('89 days');
SELECT todo_kafka.purge_audit('-1 day');
SELECT todo_kafka.purge_audit('90 days') AS purged;
SELECT todo_kafka.purge_audit() AS purged_at_retention;
SET todo_kafka.audit_retention = '1d';
ALTER ROLE tk_sr_operator SET todo_kafka.audit_retention = '1d';
SELECT set_config('todo_kafka.audit_retention', '1', false);
RESET SESSION AUTHORIZATION;
-- the deprecated union has the audit writer's rights, floor included
SET SESSION AUTHORIZATION tk_sr_consumer;
SELECT todo_kafka.purge_audit('0');
RESET SESSION AUTHORIZATION;
-- the audit service purges by itself, but not below the floor either
SET SESSION AUTHORIZATION tk_sr_audit;
SELECT todo_kafka.purge_audit('1 day');
SELECT todo_kafka.purge_audit('365 days') AS purged;
RESET SESSION AUTHORIZATION;
SELECT count(*) AS purges_recorded FROM todo_kafka.audit_purges;

-- a superuser lowers the floor; the operator's purge is then recorded,
-- with the login's name whatever role it SETs
SET todo_kafka.audit_retention = 0;
SELECT todo_kafka.audit_retention();
SET SESSION AUTHORIZATION tk_sr_operator;
SET ROLE todo_kafka_operator;
SELECT todo_kafka.purge_audit('0') AS purged;
SELECT todo_kafka.purge_audit('0') AS purged_again;
RESET ROLE;
RESET SESSION AUTHORIZATION;
RESET todo_kafka.audit_retention;
SELECT purged_by, older_than, retention, entries, cutoff <= purged_at AS cutoff_ok,
       jsonb_path_query_array(anchors, '$[*].chain') AS chains,
       jsonb_path_query_array(anchors, '$[*].anchor_seq') AS anchor_seqs,
       jsonb_path_query_array(anchors, '$[*].entries') AS per_chain
  FROM todo_kafka.audit_purges ORDER BY id;
-- the anchors recorded are those the chains keep, and the trail verifies
SELECT bool_and(c.anchor_hash = decode(a->>'anchor_hash', 'hex') AND c.anchor_seq = (a->>'anchor_seq')::bigint)
         AS anchors_match
  FROM todo_kafka.audit_purges p, jsonb_array_elements(p.anchors) a
  JOIN todo_kafka.audit_chains c ON c.chain = (a->>'chain')::integer;
SELECT ok FROM todo_kafka.verify_audit();

-- the auditor reads the record; nobody changes it, not even a superuser
SET SESSION AUTHORIZATION tk_sr_auditor;
SELECT purged_by, entries FROM todo_kafka.audit_purges;
DELETE FROM todo_kafka.audit_purges;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION tk_sr_operator;
SELECT count(*) FROM todo_kafka.audit_purges;
RESET SESSION AUTHORIZATION;
UPDATE todo_kafka.audit_purges SET purged_by = 'someone else';
DELETE FROM todo_kafka.audit_purges;
TRUNCATE todo_kafka.audit_purges;
SELECT count(*) AS purges_recorded FROM todo_kafka.audit_purges;

-- leave no trail for the next tests (as their own setup would)
SELECT pg_temp.empty_trail();
DROP ROLE tk_sr_audit, tk_sr_notify, tk_sr_project, tk_sr_operator, tk_sr_auditor, tk_sr_consumer;
