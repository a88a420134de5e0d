-- upgrade: 0.1.0 -> 0.2.0 -> 0.3.0 -> 0.4.0 -> 0.5.0 keeps the data and gives the objects of a fresh install
-- (the guard of the frozen upgrade scripts against extension/sql/: any difference is listed by name)
\set VERBOSITY terse
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SELECT * FROM pg_extension_update_paths('todo_kafka') WHERE path IS NOT NULL ORDER BY 1, 2;

-- what a fresh CREATE EXTENSION (one script, extension/sql/) made: every
-- member with its privileges, the roles, each relation's kind and options,
-- the columns of every table, constraints, indexes, triggers, comments,
-- the config-dump entries, sequences, and each function's whole definition
-- (md5 of pg_get_functiondef).  The view names the extension's objects by
-- text only, so it does not hold DROP EXTENSION up.
CREATE TEMP VIEW shape AS
  WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'todo_kafka'),
  members AS (SELECT d.classid, d.objid FROM pg_depend d, ext
               WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
  acl(oid, acl, owner, kind) AS (
    SELECT oid, relacl, relowner, (CASE relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char" FROM pg_class
    UNION ALL SELECT oid, proacl, proowner, 'f'::"char" FROM pg_proc
    UNION ALL SELECT oid, nspacl, nspowner, 'n'::"char" FROM pg_namespace),
  rels AS (SELECT c.oid FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid)
  SELECT 'member' AS what, pg_describe_object(m.classid, m.objid, 0) AS obj,
         (SELECT string_agg(CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END
                            || '=' || x.privilege_type || CASE WHEN x.is_grantable THEN '*' ELSE '' END, ' '
                            ORDER BY x.grantee::regrole::text, x.privilege_type)
            FROM acl a, aclexplode(coalesce(a.acl, acldefault(a.kind, a.owner))) x
           WHERE a.oid = m.objid) AS detail
    FROM members m
  UNION ALL
  SELECT 'grant', 'schema todo_kafka',
         (SELECT string_agg(CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END
                            || '=' || x.privilege_type, ' ' ORDER BY x.grantee::regrole::text, x.privilege_type)
            FROM pg_namespace n, aclexplode(n.nspacl) x WHERE n.nspname = 'todo_kafka')
  UNION ALL
  SELECT 'role', r.rolname, r.rolcanlogin || ' ' || coalesce((SELECT string_agg(g.rolname, ' ' ORDER BY g.rolname)
                              FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid
                             WHERE am.member = r.oid), '')
    FROM pg_roles r WHERE r.rolname LIKE 'todo\_kafka\_%'
  UNION ALL
  SELECT 'relation', c.oid::regclass::text, c.relkind::text || ' ' || coalesce(c.reloptions::text, '') || ' '
         || coalesce(pg_get_expr(c.relpartbound, c.oid), '') || ' ' || c.relpersistence::text
    FROM pg_class c JOIN rels USING (oid)
  UNION ALL
  SELECT 'column', a.attrelid::regclass || '.' || a.attname,
         format_type(a.atttypid, a.atttypmod) || ' #'
         || row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum)
         || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
         || coalesce(' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid), '')
         || CASE a.attidentity WHEN '' THEN '' ELSE ' IDENTITY ' || a.attidentity::text END
         || coalesce(' COLLATE ' || nullif(a.attcollation, t.typcollation)::regcollation::text, '')
    FROM pg_attribute a JOIN rels r ON r.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
   WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  -- NOT VALID: constraints an upgrade added without checking old rows
  SELECT 'constraint', conrelid::regclass || '.' || conname, replace(pg_get_constraintdef(oid), ' NOT VALID', '')
    FROM pg_constraint WHERE connamespace = 'todo_kafka'::regnamespace
  UNION ALL
  SELECT 'index', indexrelid::regclass::text, pg_get_indexdef(indexrelid)
    FROM pg_index JOIN rels r ON r.oid = indrelid
  UNION ALL
  SELECT 'trigger', tgrelid::regclass || '.' || tgname, pg_get_triggerdef(t.oid) || ' ' || tgenabled::text
    FROM pg_trigger t JOIN rels r ON r.oid = tgrelid WHERE NOT tgisinternal
  UNION ALL
  SELECT 'comment', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description
    FROM pg_description d JOIN members m ON m.classid = d.classoid AND m.objid = d.objoid
  UNION ALL
  SELECT 'config dump', c.relid::regclass::text, c.cond
    FROM pg_extension e, unnest(e.extconfig, e.extcondition) c(relid, cond) WHERE e.extname = 'todo_kafka'
  UNION ALL
  SELECT 'sequence', seqrelid::regclass::text, seqtypid::regtype || ' ' || seqstart || ' ' || seqincrement || ' '
         || seqmax || ' ' || seqmin || ' ' || seqcache || ' ' || seqcycle::text
    FROM pg_sequence JOIN rels r ON r.oid = seqrelid
  UNION ALL
  -- the body and every attribute of each function (an aggregate: its parts)
  SELECT 'function', p.oid::regprocedure::text,
         CASE WHEN p.prokind = 'a'
              THEN (SELECT a.aggtransfn || ' ' || a.aggtranstype::regtype || ' ' || a.aggfinalfn
                      FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
              ELSE md5(pg_get_functiondef(p.oid)) END
    FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid;

CREATE TEMP TABLE fresh AS SELECT * FROM shape;

DROP EXTENSION todo_kafka;
CREATE EXTENSION todo_kafka VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'todo_kafka';
SELECT to_regclass('todo_kafka.reminders') AS reminders,
       to_regprocedure('todo_kafka.fire_due_reminders(interval, integer)') AS fire,
       to_regclass('todo_kafka.audit_log') AS audit_log;
-- data written under 0.1.0; the open task due in the future already has offsets
INSERT INTO todo_kafka.tasks (id, user_id, title, due_date, reminder_offsets, notification_methods, completed)
  VALUES ('a0000000-0000-4000-8000-000000000001', 'alice', 'Open, due later', '2030-01-02 09:00+00', '{1 day}', '{email}', false),
         ('a0000000-0000-4000-8000-000000000002', 'alice', 'Completed', '2030-01-02 09:00+00', '{1 day}', '{email}', true),
         ('a0000000-0000-4000-8000-000000000003', 'alice', 'Due long ago', '2020-01-02 09:00+00', '{1 day}', '{email}', false),
         ('a0000000-0000-4000-8000-000000000004', 'alice', 'Odd method', '2030-01-02 09:00+00', '{1 day}', '{sms}', false);
SELECT (todo_kafka.add_task('bob', 'Old API', 'made by 0.1.0', 'low', '{x}', '2030-02-01 09:00+00')).title;
TRUNCATE todo_kafka.outbox;

ALTER EXTENSION todo_kafka UPDATE TO '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'todo_kafka';
-- the new library still captures into a 0.2.0 outbox (no db_role column yet)
INSERT INTO todo_kafka.tasks (id, user_id, title)
  VALUES ('a0000000-0000-4000-8000-000000000005', 'bob', 'Written under 0.2.0');
ALTER EXTENSION todo_kafka UPDATE TO '0.3.0';
SELECT extversion FROM pg_extension WHERE extname = 'todo_kafka';
-- the new library under 0.3.0's SQL: the task API (without the api_user
-- setting) still works, its actor is the role as before
SELECT id AS t030 FROM todo_kafka.add_task('bob', 'Written under 0.3.0') \gset
SELECT actor = session_user AS actor_is_role FROM todo_kafka.outbox WHERE key = :'t030';
DELETE FROM todo_kafka.tasks WHERE id = :'t030';
DELETE FROM todo_kafka.outbox WHERE key = :'t030';
ALTER EXTENSION todo_kafka UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'todo_kafka';
ALTER EXTENSION todo_kafka UPDATE TO '0.5.0';

-- the same objects, privileges, columns, constraints, indexes, triggers,
-- comments, config-dump entries and function bodies as fresh
SELECT 'fresh only' AS diff, * FROM (SELECT * FROM fresh EXCEPT SELECT * FROM shape) a
UNION ALL
SELECT 'upgraded only', * FROM (SELECT * FROM shape EXCEPT SELECT * FROM fresh) b
ORDER BY 1, 2, 3;
SELECT what, count(*) FROM fresh GROUP BY 1 ORDER BY 1;

-- the old rows are kept; the open one got its reminder, with its event
SELECT title, completed, recurrence, recurrence_day, reminder_offsets, notification_methods
  FROM todo_kafka.tasks ORDER BY title;
SELECT t.title, r."offset", r.notification_method, r.scheduled_time, r.status,
       r.correlation_id IS NULL AS no_correlation_id
  FROM todo_kafka.reminders r JOIN todo_kafka.tasks t ON t.id = r.task_id;
-- rows written before 0.3.0 have no db_role
SELECT kind, event_type, key, after->>'message' AS message,
       CASE WHEN db_role = session_user THEN '(session_user)' ELSE db_role END AS db_role
  FROM todo_kafka.outbox ORDER BY id;
-- the update recorded itself as an admin operation (admin_audit)
SELECT operation, target, detail, outcome, performed_by = session_user AS by_me
  FROM todo_kafka.admin_operations WHERE operation = 'extension_update';
TRUNCATE todo_kafka.outbox;

-- 0.1.0 calls still work, positionally and by name
SELECT title, priority, due_date, recurrence, reminder_offsets, notification_methods
  FROM todo_kafka.add_task('bob', 'Old call', 'still fine', 'high', '{y}', '2030-03-01 09:00+00');
SELECT title, due_date FROM todo_kafka.update_task('bob',
  (SELECT id FROM todo_kafka.tasks WHERE title = 'Old call'), 'Old call, renamed', NULL, NULL, NULL,
  NULL, NULL, true);
SELECT (todo_kafka.add_task(p_user_id => 'bob', p_title => 'Named', p_due_date => '2030-03-02 09:00+00')).title;
SELECT kind, event_type, db_role = session_user AS db_role_is_session_user, actor FROM todo_kafka.outbox ORDER BY id;

-- the audit trail of the upgraded extension works
SELECT todo_kafka.audit_append(jsonb_build_array(jsonb_build_object('topic', 'todo.audit.log',
  'partition', 0, 'offset', 0, 'data', jsonb_build_object('event_id', 'b0000000-0000-4000-8000-000000000001',
  'operation', 'INSERT', 'event_type', 'created', 'timestamp', '2026-01-22T10:00:00Z')))) AS added;
SELECT * FROM todo_kafka.verify_audit();

-- the roles get the new API (nothing for PUBLIC: the comparison above
-- covered every member's privileges, and install checks the fresh ones)
SELECT r.rolname, f.fn, has_function_privilege(r.rolname, f.fn, 'EXECUTE') AS can_execute
  FROM (VALUES ('todo_kafka_app'), ('todo_kafka_relay'), ('todo_kafka_auditor')) r(rolname),
       (VALUES ('todo_kafka.add_task(text, text, text, text, text[], timestamptz, text, interval[], text[])'),
               ('todo_kafka.update_task(text, uuid, text, text, text, text[], timestamptz, boolean, boolean, text, interval[], text[])'),
               ('todo_kafka.set_user_time_zone(text, text)'),
               ('todo_kafka.fire_due_reminders(interval, integer)'),
               ('todo_kafka.emit(text, text, text, text, text, jsonb, text)'),
               ('todo_kafka.current_correlation_id()')) f(fn)
 ORDER BY 1, 2;
SELECT r.rolname, t.tbl, has_table_privilege(r.rolname, t.tbl, 'SELECT') AS can_select,
       has_table_privilege(r.rolname, t.tbl, 'INSERT, UPDATE, DELETE') AS can_write
  FROM (VALUES ('todo_kafka_app'), ('todo_kafka_relay'), ('todo_kafka_auditor')) r(rolname),
       (VALUES ('todo_kafka.reminders'), ('todo_kafka.user_settings')) t(tbl)
 ORDER BY 1, 2;

DELETE FROM todo_kafka.tasks;
TRUNCATE todo_kafka.outbox;
