/*-------------------------------------------------------------------------
 *
 * todo_kafka.h
 *	  declarations shared by the todo_kafka backend module's files
 *
 * IDENTIFICATION
 *	  extension/todo_kafka.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TODO_KAFKA_H
#define TODO_KAFKA_H

#include "postgres.h"

#include "access/htup.h"
#include "utils/relcache.h"

/* the built-in streams (TK_STREAM_*, TK_BUILTIN_STREAMS): one list, shared
 * with the daemons; plain macros, no frontend code */
#include "../common/messages/streams.h"

/*
 * Advisory lock keys (pg_advisory_lock(int4, int4) form).  The relay holds
 * TODO_KAFKA_LOCK_LEADER while it is the active relay of the database, and
 * TODO_KAFKA_LOCK_SLEEPING while it waits for work: only then do writers
 * NOTIFY (see the NOTIFY trap in DESIGN.md and todo_kafka.c).
 */
#define TODO_KAFKA_LOCK_CLASS		29803
#define TODO_KAFKA_LOCK_LEADER		1
#define TODO_KAFKA_LOCK_SLEEPING	2
#define TODO_KAFKA_NOTIFY_CHANNEL	"todo_kafka"

/*
 * The rotating outbox (extension/sql/04_outbox_capture.sql): ids
 * [k * CHUNK, (k + 1) * CHUNK) go to partition outbox_(k % SLOTS).  The
 * SQL partition bounds spell the same numbers out.
 */
#define TODO_KAFKA_OUTBOX_CHUNK		4096
#define TODO_KAFKA_OUTBOX_SLOTS		3

/* One event to write into todo_kafka.outbox; NULL pointers mean SQL NULL. */
typedef struct OutboxEvent
{
	const char *kind;			/* change | custom | reminder */
	const char *stream;			/* key into todo_kafka.topics */
	const char *event_type;
	const char *source;			/* table or "publish" */
	const char *key;			/* Kafka key: task id */
	const char *user_id;
	Datum		before;			/* json, valid when has_before */
	bool		has_before;
	Datum		after;			/* json, valid when has_after */
	bool		has_after;
	Datum		changed;		/* text[], valid when has_changed */
	bool		has_changed;
	Datum		headers;		/* json, valid when has_headers */
	bool		has_headers;
} OutboxEvent;

/* outbox.c */
extern Datum outbox_write(const OutboxEvent *ev);	/* returns the event id */

/* rowjson_cache.c: what the capture trigger keeps per table */
typedef struct RowJsonEntry RowJsonEntry;
extern RowJsonEntry *rowjson_lookup(Relation rel);
extern const char *rowjson_table_name(RowJsonEntry *entry);
extern Datum rowjson_column_name(RowJsonEntry *entry, int attnum);
extern char *rowjson_column_text(RowJsonEntry *entry, int attnum, Datum value);

/* rowjson.c: a row image as json */
extern Datum rowjson_render_row(RowJsonEntry *entry, const Datum *values,
								const bool *isnull, const bool *only_cols);

/* todo_kafka.c: per-transaction context */
extern Datum todo_kafka_random_uuid(void);
extern const char *todo_kafka_actor(void);
extern const char *todo_kafka_db_role(void);
extern const char *todo_kafka_correlation_id(void);
extern const char *todo_kafka_traceparent(void);
extern void todo_kafka_note_outbox_write(void);

/* push_allowlist.c */
extern void todo_kafka_define_push_settings(void);

#endif							/* TODO_KAFKA_H */
