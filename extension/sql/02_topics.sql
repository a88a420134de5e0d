/*
 * extension/sql/02_topics.sql: the logical streams and their Kafka topics
 * (the relay creates the topics from this table), and topic_of(), how
 * every program names a stream's topic.  The built-in streams are also
 * named in C (common/messages/streams.h); tests/611 checks the two agree.
 */

/* ---------------------------------------------------------------------------
 * Topic map: logical stream -> Kafka topic and its settings.  Renaming a topic
 * (e.g. to the infrastructure spec's "task-events") is an UPDATE here.
 * ------------------------------------------------------------------------- */
CREATE TABLE todo_kafka.topics (
	stream				text PRIMARY KEY
		CHECK (stream ~ '^[a-z][a-z0-9_]{0,62}$'),
	topic				text NOT NULL UNIQUE
		CHECK (topic ~ '^[A-Za-z0-9._-]{1,249}$'),
	partitions			integer NOT NULL DEFAULT 3 CHECK (partitions BETWEEN 1 AND 10000),
	replication_factor	integer NOT NULL DEFAULT 1 CHECK (replication_factor BETWEEN 1 AND 32),
	retention_ms		bigint NOT NULL DEFAULT 604800000 CHECK (retention_ms >= -1),
	description			text NOT NULL DEFAULT ''
);

INSERT INTO todo_kafka.topics (stream, topic, retention_ms, description) VALUES
	('task_events',   'todo.task.events',   604800000,  'task lifecycle events (created, updated, completed, deleted, recurring-created)'),
	('task_updates',  'todo.task.updates',  2592000000, 'one message per changed field or tag'),
	('audit',         'todo.audit.log',     7776000000, 'audit records with actor, before and after state'),
	('reminders',     'todo.reminders',     604800000,  'reminder events (scheduled, sent, missed, cancelled)'),
	('notifications', 'todo.notifications', 604800000,  'queued notifications, one per channel'),
	('dead_letter',   'todo.dead.letter',   604800000,  'messages that could not be published or processed');

/* the Kafka topic of a logical stream */
CREATE OR REPLACE FUNCTION todo_kafka.topic_of(p_stream text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	v_topic		text;
BEGIN
	SELECT t.topic INTO v_topic FROM todo_kafka.topics t WHERE t.stream = p_stream;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown stream "%"', p_stream
			USING ERRCODE = 'undefined_object',
				  HINT = 'The streams are the rows of todo_kafka.topics.';
	END IF;
	RETURN v_topic;
END
$function$;
