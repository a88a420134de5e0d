/*
 * extension/sql/04_outbox_capture.sql: the transactional outbox and what
 * writes into it.
 *
 * Flow: a change to a captured table (tasks, or a table given to track())
 * fires todo_kafka.capture() (C, AFTER ROW, extension/capture.c), which
 * writes ONE row into todo_kafka.outbox in the same transaction; publish()
 * (extension/publish.c) and emit() write custom and reminder events the same
 * way (extension/outbox.c).  The relay (todo-kafka-relay) reads committed
 * rows through its API (05_relay_api.sql) and fans each row out to its
 * Kafka topics; the outbox's partitions are emptied once published.
 *
 * Who.  outbox.db_role is session_user at capture (set by the module): the
 * role that really made the change, which the application cannot forge,
 * unlike the actor it claims through the todo_kafka.actor setting.  The
 * relay carries it into the audit record.  publish() refuses the built-in
 * streams, so every audit record on Kafka was made by the relay from a
 * captured change.
 */

/* ---------------------------------------------------------------------------
 * C functions
 * ------------------------------------------------------------------------- */

/* AFTER ROW trigger: args key column, user column, stream [, completed column
 * [, recurrence parent column]] */
CREATE OR REPLACE FUNCTION todo_kafka.capture()
 RETURNS trigger
 LANGUAGE c
AS '$libdir/todo_kafka', $function$todo_kafka_capture$function$;

CREATE OR REPLACE FUNCTION todo_kafka.publish(stream text, key text, event_type text, data jsonb, headers jsonb DEFAULT '{}'::jsonb)
 RETURNS uuid
 LANGUAGE c
AS '$libdir/todo_kafka', $function$todo_kafka_publish$function$;

CREATE TRIGGER todo_kafka_capture AFTER INSERT OR UPDATE OR DELETE ON todo_kafka.tasks
	FOR EACH ROW EXECUTE FUNCTION todo_kafka.capture('id', 'user_id', 'task_events',
													 'completed', 'recurrence_parent');

/* ---------------------------------------------------------------------------
 * track / untrack: attach the same capture to an application's own table
 * ------------------------------------------------------------------------- */
CREATE OR REPLACE FUNCTION todo_kafka.track(tbl regclass, key_column name, user_column name, stream text DEFAULT 'task_events'::text)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM todo_kafka.topics t WHERE t.stream = track.stream) THEN
		RAISE EXCEPTION 'unknown stream "%"', stream
			USING ERRCODE = 'undefined_object',
				  HINT = 'Add the stream to todo_kafka.topics first.';
	END IF;
	PERFORM 1 FROM pg_attribute
		WHERE attrelid = tbl AND attname = key_column AND attnum > 0 AND NOT attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'column "%" of table % does not exist', key_column, tbl
			USING ERRCODE = 'undefined_column';
	END IF;
	PERFORM 1 FROM pg_attribute
		WHERE attrelid = tbl AND attname = user_column AND attnum > 0 AND NOT attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'column "%" of table % does not exist', user_column, tbl
			USING ERRCODE = 'undefined_column';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = tbl AND tgname = 'todo_kafka_capture') THEN
		RAISE EXCEPTION 'table % is already tracked', tbl
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Call todo_kafka.untrack() first to change its settings.';
	END IF;
	EXECUTE format('CREATE TRIGGER todo_kafka_capture AFTER INSERT OR UPDATE OR DELETE ON %s '
				   'FOR EACH ROW EXECUTE FUNCTION todo_kafka.capture(%L, %L, %L)',
				   tbl, key_column, user_column, stream);
END
$function$;

CREATE OR REPLACE FUNCTION todo_kafka.untrack(tbl regclass)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	IF tbl = 'todo_kafka.tasks'::regclass THEN
		RAISE EXCEPTION 'cannot untrack todo_kafka.tasks'
			USING ERRCODE = 'feature_not_supported';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = tbl AND tgname = 'todo_kafka_capture') THEN
		RAISE EXCEPTION 'table % is not tracked', tbl USING ERRCODE = 'undefined_object';
	END IF;
	EXECUTE format('DROP TRIGGER todo_kafka_capture ON %s', tbl);
END
$function$;

/* ---------------------------------------------------------------------------
 * Internal C functions
 * ------------------------------------------------------------------------- */

/* one outbox row of kind 'reminder' or 'custom'; granted to nobody */
CREATE OR REPLACE FUNCTION todo_kafka.emit(kind text, stream text, key text, event_type text, user_id text, data jsonb, source text)
 RETURNS uuid
 LANGUAGE c
AS '$libdir/todo_kafka', $function$todo_kafka_emit$function$;

/* the correlation id the events written now carry */
CREATE OR REPLACE FUNCTION todo_kafka.current_correlation_id()
 RETURNS text
 LANGUAGE c
 STABLE
AS '$libdir/todo_kafka', $function$todo_kafka_current_correlation_id$function$;

/* ---------------------------------------------------------------------------
 * The rotating outbox (PgQ's design).  No row is ever deleted or vacuumed
 * (deleting each row once Kafka acknowledged it left the outbox as large as
 * autovacuum let it grow between two visits; bench/RESULTS.md):
 *
 *	 - todo_kafka.outbox is a partitioned table with three partitions,
 *	   outbox_0 .. outbox_2, chosen by the row id: rows of ids
 *	   [k * 4096, (k + 1) * 4096) go to outbox_(k % 3).  Writers fill one
 *	   partition, then the next, round the ring.  The C writer
 *	   (extension/outbox.c) inserts into the partition directly, with the
 *	   same constants (TODO_KAFKA_OUTBOX_CHUNK, TODO_KAFKA_OUTBOX_SLOTS in
 *	   todo_kafka.h; sql/outbox_rotation.sql checks the two agree);
 *	 - the relay keeps a position instead of deleting: the snapshot of the
 *	   newest window whose every row (and every row before it) Kafka
 *	   acknowledged, in todo_kafka.relay_position;
 *	 - a partition all of whose rows are visible in that position (so all
 *	   were published) and which no writer is using is emptied with
 *	   TRUNCATE (relay_commit_position(), 05_relay_api.sql).
 *
 * The outbox then holds about two chunks (the one being written and the
 * one being published): a few MB, whatever autovacuum does.  A relay that
 * is down or behind keeps every partition that holds unpublished rows, so
 * the outbox grows with the backlog and nothing is lost.
 *
 * Ids come from todo_kafka.outbox_id_seq through outbox_next_id(), which
 * gives the transaction its xid before it takes the id (the relay's
 * window read does not depend on that order, but it keeps ids and xids
 * of one transaction in the order readers expect).
 * ------------------------------------------------------------------------- */
CREATE OR REPLACE FUNCTION todo_kafka.outbox_next_id()
 RETURNS bigint
 LANGUAGE c
AS '$libdir/todo_kafka', $function$todo_kafka_outbox_next_id$function$;

/* the partition (0, 1 or 2) of an outbox id, by the module's constants */
CREATE OR REPLACE FUNCTION todo_kafka.outbox_slot(bigint)
 RETURNS integer
 LANGUAGE c
 IMMUTABLE STRICT
AS '$libdir/todo_kafka', $function$todo_kafka_outbox_slot$function$;

CREATE SEQUENCE todo_kafka.outbox_id_seq;

CREATE TABLE todo_kafka.outbox (
	id				bigint NOT NULL DEFAULT todo_kafka.outbox_next_id(),
	xid				xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
	event_id		uuid NOT NULL,
	kind			text NOT NULL CHECK (kind IN ('change', 'custom', 'reminder')),
	stream			text NOT NULL,
	event_type		text NOT NULL,
	source			text NOT NULL,
	key				text NOT NULL,
	user_id			text,
	actor			text NOT NULL,
	correlation_id	text NOT NULL,
	traceparent		text,
	before			json,
	after			json,
	changed			text[],
	headers			json,
	occurred_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	db_role			text
) PARTITION BY LIST (((id / 4096) % 3));

COMMENT ON TABLE todo_kafka.outbox IS
	'One row per captured change or published event; partitions are emptied by TRUNCATE once published (relay_commit_position)';

COMMENT ON COLUMN todo_kafka.outbox.before IS
	'row before the change as json: the whole row for DELETE; for UPDATE only the changed columns (the others equal "after"); NULL for INSERT';

COMMENT ON COLUMN todo_kafka.outbox.after IS
	'row after the change as json (NULL for DELETE); the data of custom and reminder events';

COMMENT ON COLUMN todo_kafka.outbox.db_role IS
	'session_user when the row was written: the database role that made the change (NULL for rows written before 0.3.0)';

/*
 * The partitions.  Per partition: a unique index on id (the relay pages
 * by id) and an index on xid (the relay finds late committers by xid).
 * Autovacuum is off: rows are never updated or deleted (a poison row moved
 * to dead_letters aside) and the partition is truncated after use.
 */
CREATE TABLE todo_kafka.outbox_0 PARTITION OF todo_kafka.outbox FOR VALUES IN (0)
	WITH (autovacuum_enabled = false);

CREATE TABLE todo_kafka.outbox_1 PARTITION OF todo_kafka.outbox FOR VALUES IN (1)
	WITH (autovacuum_enabled = false);

CREATE TABLE todo_kafka.outbox_2 PARTITION OF todo_kafka.outbox FOR VALUES IN (2)
	WITH (autovacuum_enabled = false);

CREATE UNIQUE INDEX outbox_0_id ON todo_kafka.outbox_0 (id);

CREATE UNIQUE INDEX outbox_1_id ON todo_kafka.outbox_1 (id);

CREATE UNIQUE INDEX outbox_2_id ON todo_kafka.outbox_2 (id);

CREATE INDEX outbox_0_xid ON todo_kafka.outbox_0 (xid);

CREATE INDEX outbox_1_xid ON todo_kafka.outbox_1 (xid);

CREATE INDEX outbox_2_xid ON todo_kafka.outbox_2 (xid);

/* pg_dump keeps the changes not yet published at dump time (with the
 * relay's position, 05_relay_api.sql) */
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.outbox_0', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.outbox_1', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.outbox_2', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.outbox_id_seq', '');

