/*
 * extension/sql/15_admin_audit.sql: administrative operations, audited.
 *
 * Each administrative operation (a dead letter replayed or requeued, dead
 * letters purged, a purge of the audit trail, an extension update) is
 * recorded by record_admin_operation(): who (session_user, which SET ROLE
 * does not change and the caller cannot pass), when, what (operation,
 * target, detail) and the outcome, in todo_kafka.admin_operations
 * (append-only like audit_purges; todo_kafka_auditor reads it), and as one
 * outbox row on the audit stream, in the operation's own transaction: the
 * relay publishes it to todo.audit.log as a CloudEvent of type
 * "admin.<operation>" whose data has the audit record's fields (operation
 * INSERT, table admin_operations, after = the admin_operations row), and
 * todo-kafka-audit appends it to the same hash chains as task changes.
 *
 * Callers: dlq_claim_replay() (so dlq_requeue_outbox() too) and dlq_purge()
 * (13_dead_letters.sql), purge_audit() (08_audit_purge.sql), the upgrade
 * scripts (ALTER EXTENSION ... UPDATE) and relay_record_topic_create()
 * (below).  It is granted to nobody: the SECURITY DEFINER functions of
 * those operations call it, so no role can write an admin record for an
 * operation it did not perform.  The relay creates missing topics itself,
 * in Kafka, so it reports each attempt through its own narrow function,
 * which records only topic_create, and only for the leading relay.
 */

CREATE TABLE todo_kafka.admin_operations (
	id					bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event_id			uuid NOT NULL UNIQUE,	/* the audit record's event id */
	performed_at		timestamptz NOT NULL,	/* the operation's transaction time */
	performed_by		text NOT NULL,			/* session_user: the login */
	operation			text NOT NULL CHECK (operation ~ '^[a-z][a-z0-9_]{0,62}$'),
	target				text,
	detail				jsonb NOT NULL DEFAULT '{}',
	outcome				text NOT NULL CHECK (outcome IN ('succeeded', 'failed'))
);

COMMENT ON TABLE todo_kafka.admin_operations IS
	'every administrative operation (topic creations by the relay, dead-letter replays and purges, audit purges, extension updates): who, when, what, outcome';

SELECT pg_catalog.pg_extension_config_dump('todo_kafka.admin_operations', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.admin_operations_id_seq', '');

CREATE OR REPLACE FUNCTION todo_kafka.admin_operations_append_only()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	RAISE EXCEPTION 'todo_kafka.admin_operations is append-only: % is not allowed', TG_OP
		USING ERRCODE = 'insufficient_privilege',
			  HINT = 'Rows are added by todo_kafka.record_admin_operation() only.';
END
$function$;

CREATE TRIGGER admin_operations_append_only BEFORE UPDATE OR DELETE ON todo_kafka.admin_operations
	FOR EACH ROW EXECUTE FUNCTION todo_kafka.admin_operations_append_only();

CREATE TRIGGER admin_operations_no_truncate BEFORE TRUNCATE ON todo_kafka.admin_operations
	FOR EACH STATEMENT EXECUTE FUNCTION todo_kafka.admin_operations_append_only();

ALTER TABLE todo_kafka.admin_operations ENABLE ALWAYS TRIGGER admin_operations_append_only;

ALTER TABLE todo_kafka.admin_operations ENABLE ALWAYS TRIGGER admin_operations_no_truncate;

/* record one administrative operation; returns its admin_operations id */
CREATE OR REPLACE FUNCTION todo_kafka.record_admin_operation(p_operation text, p_target text, p_detail jsonb, p_outcome text)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	r			todo_kafka.admin_operations;
BEGIN
	IF p_operation IS NULL OR p_operation !~ '^[a-z][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid admin operation name: "%"', p_operation
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'An operation is a lower-case name like dlq_replay.';
	END IF;
	IF p_outcome IS NULL OR p_outcome NOT IN ('succeeded', 'failed') THEN
		RAISE EXCEPTION 'invalid admin operation outcome: "%"', p_outcome
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The outcome is succeeded or failed.';
	END IF;
	INSERT INTO todo_kafka.admin_operations
		(event_id, performed_at, performed_by, operation, target, detail, outcome)
	VALUES (gen_random_uuid(), now(), session_user, p_operation, p_target,
			coalesce(p_detail, '{}'), p_outcome)
	RETURNING * INTO r;
	PERFORM todo_kafka.emit('custom', 'audit', coalesce(r.target, r.operation),
		'admin.' || r.operation, NULL,
		jsonb_build_object(
			'event_id', r.event_id, 'actor', r.performed_by, 'db_role', r.performed_by,
			'operation', 'INSERT', 'event_type', 'admin.' || r.operation,
			'table', 'admin_operations', 'task_id', NULL, 'user_id', NULL,
			'before', NULL, 'after', to_jsonb(r), 'changed_fields', NULL,
			'txid', txid_current(),
			'timestamp', to_char(r.performed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
			'correlation_id', NULL),
		'admin_operations');
	RETURN r.id;
END
$function$;

/*
 * The relay's record of one topic it asked Kafka to create at start-up
 * (relay/topics_admin.c): admin operation topic_create, target the topic,
 * detail the partitions, replication factor, topic configs and the relay
 * instance (host/pid; who is the relay's login, session_user), outcome
 * succeeded, or failed with the broker's error (p_error not NULL).  Only
 * the session holding the leader lock (relay_lead(): advisory lock
 * TODO_KAFKA_LOCK_CLASS 29803, TODO_KAFKA_LOCK_LEADER 1, extension/todo_kafka.h)
 * may record, so a standby relay, or another login of the relay role,
 * cannot write records for creations it did not attempt.
 */
CREATE OR REPLACE FUNCTION todo_kafka.relay_record_topic_create(p_topic text, p_partitions integer, p_replication_factor integer, p_configs jsonb, p_instance text, p_error text)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
				    WHERE l.locktype = 'advisory' AND l.pid = pg_catalog.pg_backend_pid()
					  AND l.classid = 29803 AND l.objid = 1 AND l.objsubid = 2 AND l.granted) THEN
		RAISE EXCEPTION 'only the leading relay records topic creations'
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'Call todo_kafka.relay_lead() first, on the same session.';
	END IF;
	IF p_topic IS NULL OR p_topic = '' THEN
		RAISE EXCEPTION 'a topic creation needs the topic name'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN todo_kafka.record_admin_operation('topic_create', p_topic,
		jsonb_build_object('partitions', p_partitions,
						   'replication_factor', p_replication_factor,
						   'configs', coalesce(p_configs, '{}'),
						   'instance', p_instance)
		|| CASE WHEN p_error IS NULL THEN '{}'::jsonb
				ELSE jsonb_build_object('error', p_error) END,
		CASE WHEN p_error IS NULL THEN 'succeeded' ELSE 'failed' END);
END
$function$;

REVOKE ALL ON FUNCTION todo_kafka.record_admin_operation(text,text,jsonb,text) FROM PUBLIC;
REVOKE ALL ON FUNCTION todo_kafka.relay_record_topic_create(text,integer,integer,jsonb,text,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION todo_kafka.relay_record_topic_create(text,integer,integer,jsonb,text,text) TO todo_kafka_relay;
REVOKE ALL ON FUNCTION todo_kafka.admin_operations_append_only() FROM PUBLIC;
REVOKE ALL ON todo_kafka.admin_operations FROM PUBLIC;
REVOKE ALL ON SEQUENCE todo_kafka.admin_operations_id_seq FROM PUBLIC;
GRANT SELECT ON todo_kafka.admin_operations TO todo_kafka_auditor;
