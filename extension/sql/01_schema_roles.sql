/*
 * The schema and the roles.  CREATE EXTENSION makes the schema todo_kafka
 * (todo_kafka.control: schema, not relocatable); nothing in it is PUBLIC's.
 * The roles are NOLOGIN groups, created once per cluster (an existing one
 * is kept): an operator grants them to the login roles of each program.
 *
 *	 todo_kafka_app			 the chatbot: task API, settings, custom publish()
 *	 todo_kafka_relay		 the relay daemon: its API (05_relay_api.sql)
 *	 todo_kafka_auditor		 read-only access to captured history
 *	 todo_kafka_operator	 the dlq tool: replay and purge dead letters, purge audit
 *	 todo_kafka_audit_writer todo-kafka-audit
 *	 todo_kafka_notifier	 todo-kafka-notify
 *	 todo_kafka_projector	 todo-kafka-project
 *	 todo_kafka_consumer	 the union of the three service roles (kept for
 *							 installs that granted it before each service had its own)
 * What each role may do is in 14_grants.sql.
 */
\echo Use "CREATE EXTENSION todo_kafka" to load this file. \quit

DO $roles$
DECLARE
	r	text;
BEGIN
	FOREACH r IN ARRAY ARRAY['todo_kafka_app', 'todo_kafka_relay', 'todo_kafka_auditor',
							 'todo_kafka_consumer', 'todo_kafka_operator', 'todo_kafka_audit_writer',
							 'todo_kafka_notifier', 'todo_kafka_projector']
	LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
			EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
END
$roles$;

REVOKE ALL ON SCHEMA todo_kafka FROM PUBLIC;
GRANT USAGE ON SCHEMA todo_kafka
	TO todo_kafka_app, todo_kafka_relay, todo_kafka_auditor, todo_kafka_consumer,
	   todo_kafka_operator, todo_kafka_audit_writer, todo_kafka_notifier, todo_kafka_projector;
