-- install: the schema, the topic defaults, the roles and what PUBLIC gets
\set VERBOSITY terse
SELECT extname, extversion, nspname
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'todo_kafka';
SELECT c.relname, c.relkind
  FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'todo_kafka')
   AND d.classid = 'pg_class'::regclass
 ORDER BY 1;
SELECT stream, topic, partitions, replication_factor, retention_ms / 86400000 AS retention_days
  FROM todo_kafka.topics ORDER BY stream;
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'todo\_kafka\_%' ORDER BY 1;
-- nothing is granted to PUBLIC: no table, function or schema privilege
SELECT c.relname FROM pg_class c
 WHERE c.relnamespace = 'todo_kafka'::regnamespace
   AND EXISTS (SELECT 1 FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
                WHERE a.grantee = 0);
SELECT p.proname FROM pg_proc p
 WHERE p.pronamespace = 'todo_kafka'::regnamespace
   AND EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                WHERE a.grantee = 0);
SELECT has_schema_privilege('public', 'todo_kafka', 'USAGE') AS public_usage;
-- every SECURITY DEFINER function pins its search_path
SELECT p.proname FROM pg_proc p
 WHERE p.pronamespace = 'todo_kafka'::regnamespace AND p.prosecdef
   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false);
-- the capture and touch triggers are attached to tasks
SELECT tgname, tgenabled FROM pg_trigger
 WHERE tgrelid = 'todo_kafka.tasks'::regclass AND NOT tgisinternal ORDER BY 1;
-- the extension cannot be moved to another schema
ALTER EXTENSION todo_kafka SET SCHEMA public;
