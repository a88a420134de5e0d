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

/* the built-in rows of todo_kafka.topics, as the INSERT above makes them */
CREATE OR REPLACE FUNCTION todo_kafka.topic_defaults()
 RETURNS SETOF todo_kafka.topics
 LANGUAGE sql
 IMMUTABLE
AS $function$
	SELECT * FROM (VALUES
		('task_events',   'todo.task.events',   3, 1, 604800000::bigint,  'task lifecycle events (created, updated, completed, deleted, recurring-created)'),
		('task_updates',  'todo.task.updates',  3, 1, 2592000000::bigint, 'one message per changed field or tag'),
		('audit',         'todo.audit.log',     3, 1, 7776000000::bigint, 'audit records with actor, before and after state'),
		('reminders',     'todo.reminders',     3, 1, 604800000::bigint,  'reminder events (scheduled, sent, missed, cancelled)'),
		('notifications', 'todo.notifications', 3, 1, 604800000::bigint,  'queued notifications, one per channel'),
		('dead_letter',   'todo.dead.letter',   3, 1, 604800000::bigint,  'messages that could not be published or processed')
	) AS d(stream, topic, partitions, replication_factor, retention_ms, description);
$function$;

/*
 * Restoring a dump: CREATE EXTENSION has inserted the built-in rows, and
 * an inserted row replaces the unchanged built-in row of its stream (ENABLE
 * ALWAYS: a restore runs with session_replication_role = replica)
 */
CREATE OR REPLACE FUNCTION todo_kafka.restored_topic()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	DELETE FROM todo_kafka.topics t
	 WHERE t.stream = NEW.stream
	   AND t IN (SELECT d FROM todo_kafka.topic_defaults() d);
	RETURN NEW;
END
$function$;

CREATE TRIGGER restored_topic BEFORE INSERT ON todo_kafka.topics
	FOR EACH ROW EXECUTE FUNCTION todo_kafka.restored_topic();
ALTER TABLE todo_kafka.topics ENABLE ALWAYS TRIGGER restored_topic;

/*
 * pg_dump keeps the rows that differ from topic_defaults() (added or
 * changed by the user).  The filter lists the built-in rows as literals
 * (made from topic_defaults(), the one place they are written), so
 * pg_dump needs no right to call a function of ours.
 */
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.topics',
	'WHERE (stream, topic, partitions, replication_factor, retention_ms, description) NOT IN ('
	|| string_agg(format('(%L, %L, %s, %s, %s, %L)', d.stream, d.topic, d.partitions,
						 d.replication_factor, d.retention_ms, d.description), ', ' ORDER BY d.stream)
	|| ')')
  FROM todo_kafka.topic_defaults() d;

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
