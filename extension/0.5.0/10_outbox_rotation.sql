
/* ---------------------------------------------------------------------------
 * The rotating outbox (PgQ's design).  Up to 0.4.0 the relay DELETEd each
 * row once Kafka acknowledged it, and the outbox's size was whatever
 * autovacuum let pile up between two visits: ~130 MB at 2,000 changes/s
 * with the default autovacuum_naptime of 60 s (bench/RESULTS.md).  Now no
 * row is ever deleted or vacuumed:
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
 *	   TRUNCATE (relay_commit_position(), 20_relay_position.sql).
 *
 * The outbox then holds about two chunks (the one being written and the
 * one being published): a few MB, whatever autovacuum does.  A relay that
 * is down or behind keeps every partition that holds unpublished rows, so
 * the outbox grows with the backlog and nothing is lost.
 *
 * Ids come from todo_kafka.outbox_id_seq through outbox_next_id(), which
 * gives the transaction its xid before it takes the id (the relay's
 * window read does not depend on that order, but it keeps ids and xids
 * of one transaction in the order readers expect).  Rows written by 0.4.0
 * are moved over with their ids; the relay re-sends them (at-least-once,
 * same message ids) because no position exists yet.
 * ------------------------------------------------------------------------- */

CREATE FUNCTION todo_kafka.outbox_next_id()
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'todo_kafka_outbox_next_id' LANGUAGE C VOLATILE;

/* the partition (0, 1 or 2) of an outbox id, by the module's constants */
CREATE FUNCTION todo_kafka.outbox_slot(bigint)
	RETURNS integer
	AS 'MODULE_PATHNAME', 'todo_kafka_outbox_slot' LANGUAGE C IMMUTABLE STRICT;

ALTER TABLE todo_kafka.outbox RENAME TO outbox_0_4;
ALTER TABLE todo_kafka.outbox_0_4 RENAME CONSTRAINT outbox_pkey TO outbox_0_4_pkey;
ALTER SEQUENCE todo_kafka.outbox_id_seq RENAME TO outbox_0_4_id_seq;

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
CREATE TABLE todo_kafka.outbox_0 PARTITION OF todo_kafka.outbox FOR VALUES IN (0);
CREATE TABLE todo_kafka.outbox_1 PARTITION OF todo_kafka.outbox FOR VALUES IN (1);
CREATE TABLE todo_kafka.outbox_2 PARTITION OF todo_kafka.outbox FOR VALUES IN (2);
CREATE UNIQUE INDEX outbox_0_id ON todo_kafka.outbox_0 (id);
CREATE UNIQUE INDEX outbox_1_id ON todo_kafka.outbox_1 (id);
CREATE UNIQUE INDEX outbox_2_id ON todo_kafka.outbox_2 (id);
CREATE INDEX outbox_0_xid ON todo_kafka.outbox_0 (xid);
CREATE INDEX outbox_1_xid ON todo_kafka.outbox_1 (xid);
CREATE INDEX outbox_2_xid ON todo_kafka.outbox_2 (xid);
ALTER TABLE todo_kafka.outbox_0 SET (autovacuum_enabled = false);
ALTER TABLE todo_kafka.outbox_1 SET (autovacuum_enabled = false);
ALTER TABLE todo_kafka.outbox_2 SET (autovacuum_enabled = false);

INSERT INTO todo_kafka.outbox (id, xid, event_id, kind, stream, event_type, source, key,
							   user_id, actor, correlation_id, traceparent, before, after,
							   changed, headers, occurred_at, db_role)
SELECT id, xid, event_id, kind, stream, event_type, source, key, user_id, actor,
	   correlation_id, traceparent, before, after, changed, headers, occurred_at, db_role
  FROM todo_kafka.outbox_0_4;
SELECT pg_catalog.setval('todo_kafka.outbox_id_seq',
						 coalesce((SELECT max(id) FROM todo_kafka.outbox_0_4), 0) + 1, false);
DROP TABLE todo_kafka.outbox_0_4;

/* the relay reads (it no longer deletes: acked rows go with their partition) */
GRANT SELECT ON todo_kafka.outbox TO todo_kafka_relay;

/*
 * The relay's position: every row visible in snapshot has been published
 * (or moved to dead_letters); max_id is the highest id among them, which
 * lets the next read start there (relay_page).  One row; NULL snapshot:
 * nothing published yet, every committed row is to be sent.
 */
CREATE TABLE todo_kafka.relay_position (
	singleton		boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	snapshot		pg_catalog.pg_snapshot,
	max_id			bigint NOT NULL DEFAULT 0,
	updated_at		timestamptz NOT NULL DEFAULT now()
);
INSERT INTO todo_kafka.relay_position DEFAULT VALUES;
