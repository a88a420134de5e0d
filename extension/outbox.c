/*-------------------------------------------------------------------------
 *
 * outbox.c
 *	  write one event into todo_kafka.outbox
 *
 * Every path that produces an event (capture trigger, publish(), emit())
 * comes through outbox_write(), which stamps event id, actor, correlation
 * id, traceparent, xid and time in one place.  actor is what the
 * application claims (todo_kafka.actor); db_role is session_user, which
 * neither SET ROLE nor SECURITY DEFINER changes.
 *
 * The row goes in by heap_insert + CatalogTupleInsert, not SPI: the
 * executor path was most of the capture cost (bench/RESULTS.md).  The
 * outbox has a plain btree key and no triggers, so this is complete: the
 * id comes from its sequence, xid and occurred_at are computed here as the
 * defaults would.  Like an RI trigger it bypasses the caller's privileges:
 * the application role has none on the outbox, so it cannot forge events.
 *
 * The outbox is partitioned by ((id / TODO_KAFKA_OUTBOX_CHUNK) %
 * TODO_KAFKA_OUTBOX_SLOTS) (extension/sql/04_outbox_capture.sql), and the
 * relay TRUNCATEs published partitions.  heap_insert cannot route, so
 * outbox_slot() picks the partition (sql/outbox_rotation.sql checks it
 * agrees with PostgreSQL).  The xid is taken before the id, so ids follow
 * xids within a session and a waiting TRUNCATE cannot slip in between
 * (relay_commit_position()).  An unpartitioned outbox (library newer than
 * the installed SQL) gets a plain insert.  OIDs, sequence and column
 * numbers are cached per backend and dropped on relcache invalidation.
 *
 * IDENTIFICATION
 *	  extension/outbox.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/sequence.h"
#include "parser/parse_relation.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "utils/xid8.h"

#include "todo_kafka.h"

/* the outbox columns this module fills, by name */
typedef enum OutboxColumn
{
	OC_ID,
	OC_XID,
	OC_EVENT_ID,
	OC_KIND,
	OC_STREAM,
	OC_EVENT_TYPE,
	OC_SOURCE,
	OC_KEY,
	OC_USER_ID,
	OC_ACTOR,
	OC_CORRELATION_ID,
	OC_TRACEPARENT,
	OC_BEFORE,
	OC_AFTER,
	OC_CHANGED,
	OC_HEADERS,
	OC_OCCURRED_AT,
	OC_DB_ROLE,					/* since 0.3.0 */
	OC_NCOLUMNS
} OutboxColumn;

static const char *const outbox_column_names[OC_NCOLUMNS] = {
	"id", "xid", "event_id", "kind", "stream", "event_type", "source", "key",
	"user_id", "actor", "correlation_id", "traceparent", "before", "after",
	"changed", "headers", "occurred_at", "db_role"
};

/*
 * The first column added after 0.1.0: columns from here on may be missing
 * while the database still runs an older version of the extension's SQL
 * (new library, ALTER EXTENSION UPDATE not run yet); they are then left out.
 */
#define OC_FIRST_OPTIONAL OC_DB_ROLE

typedef struct OutboxCache
{
	bool		valid;
	Oid			relid;			/* todo_kafka.outbox */
	bool		partitioned;	/* 0.5.0 and later */
	Oid			slot_relid[TODO_KAFKA_OUTBOX_SLOTS];	/* outbox_0 .. */
	Oid			seqid;
	AttrNumber	attnum[OC_NCOLUMNS];
} OutboxCache;

static OutboxCache outbox_cache;
static bool outbox_callback_registered = false;

static void
outbox_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == outbox_cache.relid)
		outbox_cache.valid = false;
	for (int i = 0; i < TODO_KAFKA_OUTBOX_SLOTS; i++)
		if (relid == outbox_cache.slot_relid[i])
			outbox_cache.valid = false;
}

/* the partition of an outbox id */
static int
outbox_slot_of(int64 id)
{
	return (int) ((id / TODO_KAFKA_OUTBOX_CHUNK) % TODO_KAFKA_OUTBOX_SLOTS);
}

static void
outbox_cache_fill(void)
{
	Oid			nsp;
	Oid			relid;
	Relation	rel;
	int			i;

	if (!outbox_callback_registered)
	{
		CacheRegisterRelcacheCallback(outbox_relcache_callback, (Datum) 0);
		outbox_callback_registered = true;
	}

	nsp = get_namespace_oid("todo_kafka", true);
	relid = OidIsValid(nsp) ? get_relname_relid("outbox", nsp) : InvalidOid;
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"todo_kafka.outbox\" does not exist"),
				 errhint("Run CREATE EXTENSION todo_kafka in this database.")));

	outbox_cache.partitioned = get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE;
	if (outbox_cache.partitioned)
	{
		for (i = 0; i < TODO_KAFKA_OUTBOX_SLOTS; i++)
		{
			char		name[NAMEDATALEN];

			snprintf(name, sizeof(name), "outbox_%d", i);
			outbox_cache.slot_relid[i] = get_relname_relid(name, nsp);
			if (!OidIsValid(outbox_cache.slot_relid[i]))
				elog(ERROR, "partition todo_kafka.%s of the outbox is missing", name);
		}
		outbox_cache.seqid = get_relname_relid("outbox_id_seq", nsp);
		if (!OidIsValid(outbox_cache.seqid))
			elog(ERROR, "sequence todo_kafka.outbox_id_seq is missing");
	}

	/* partitions made with PARTITION OF share the parent's column numbers */
	rel = table_open(relid, AccessShareLock);
	for (i = 0; i < OC_NCOLUMNS; i++)
	{
		int			attnum = attnameAttNum(rel, outbox_column_names[i], false);

		if (attnum <= 0 && i >= OC_FIRST_OPTIONAL)
			attnum = InvalidAttrNumber;
		else if (attnum <= 0)
			elog(ERROR, "column \"%s\" of todo_kafka.outbox is missing", outbox_column_names[i]);
		outbox_cache.attnum[i] = attnum;
	}
	table_close(rel, AccessShareLock);

	if (!outbox_cache.partitioned)
		outbox_cache.seqid = getIdentitySequence(relid, outbox_cache.attnum[OC_ID], false);
	outbox_cache.relid = relid;
	outbox_cache.valid = true;
}

/*
 * The next outbox id, the transaction's xid taken first (see the header).
 */
static int64
outbox_next_id(void)
{
	if (!outbox_cache.valid)
		outbox_cache_fill();
	(void) GetTopFullTransactionId();
	return nextval_internal(outbox_cache.seqid, false);
}

PG_FUNCTION_INFO_V1(todo_kafka_outbox_next_id);
PG_FUNCTION_INFO_V1(todo_kafka_outbox_slot);

/* outbox_next_id() RETURNS bigint: the outbox id column's default */
Datum
todo_kafka_outbox_next_id(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(outbox_next_id());
}

/* outbox_slot(bigint) RETURNS integer: the partition an id goes to */
Datum
todo_kafka_outbox_slot(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(outbox_slot_of(PG_GETARG_INT64(0)));
}

static void
outbox_set(Datum *values, bool *nulls, OutboxColumn col, Datum d, bool present)
{
	int			i = outbox_cache.attnum[col] - 1;

	if (i < 0)
		return;					/* optional column this version lacks */
	values[i] = present ? d : (Datum) 0;
	nulls[i] = !present;
}

static void
outbox_set_text(Datum *values, bool *nulls, OutboxColumn col, const char *s)
{
	outbox_set(values, nulls, col, s ? CStringGetTextDatum(s) : (Datum) 0, s != NULL);
}

Datum
outbox_write(const OutboxEvent *ev)
{
	Relation	rel;
	TupleDesc	tupdesc;
	Datum	   *values;
	bool	   *nulls;
	Datum		event_id = todo_kafka_random_uuid();
	HeapTuple	tuple;
	int			i;
	int64		id = outbox_next_id();

	rel = table_open(outbox_cache.partitioned
					 ? outbox_cache.slot_relid[outbox_slot_of(id)]
					 : outbox_cache.relid, RowExclusiveLock);
	tupdesc = RelationGetDescr(rel);
	values = palloc(sizeof(Datum) * tupdesc->natts);
	nulls = palloc(sizeof(bool) * tupdesc->natts);
	for (i = 0; i < tupdesc->natts; i++)
	{
		values[i] = (Datum) 0;
		nulls[i] = true;
	}

	outbox_set(values, nulls, OC_ID, Int64GetDatum(id), true);
	outbox_set(values, nulls, OC_XID,
			   FullTransactionIdGetDatum(GetTopFullTransactionId()), true);
	outbox_set(values, nulls, OC_EVENT_ID, event_id, true);
	outbox_set_text(values, nulls, OC_KIND, ev->kind);
	outbox_set_text(values, nulls, OC_STREAM, ev->stream);
	outbox_set_text(values, nulls, OC_EVENT_TYPE, ev->event_type);
	outbox_set_text(values, nulls, OC_SOURCE, ev->source);
	outbox_set_text(values, nulls, OC_KEY, ev->key);
	outbox_set_text(values, nulls, OC_USER_ID, ev->user_id);
	outbox_set_text(values, nulls, OC_ACTOR, todo_kafka_actor());
	outbox_set_text(values, nulls, OC_CORRELATION_ID, todo_kafka_correlation_id());
	outbox_set_text(values, nulls, OC_TRACEPARENT, todo_kafka_traceparent());
	outbox_set(values, nulls, OC_BEFORE, ev->before, ev->has_before);
	outbox_set(values, nulls, OC_AFTER, ev->after, ev->has_after);
	outbox_set(values, nulls, OC_CHANGED, ev->changed, ev->has_changed);
	outbox_set(values, nulls, OC_HEADERS, ev->headers, ev->has_headers);
	outbox_set(values, nulls, OC_OCCURRED_AT,
			   TimestampTzGetDatum(GetCurrentTimestamp()), true);
	if (outbox_cache.attnum[OC_DB_ROLE] != InvalidAttrNumber)
		outbox_set_text(values, nulls, OC_DB_ROLE, todo_kafka_db_role());

	tuple = heap_form_tuple(tupdesc, values, nulls);
	CatalogTupleInsert(rel, tuple);
	heap_freetuple(tuple);
	table_close(rel, NoLock);

	todo_kafka_note_outbox_write();
	return event_id;
}
