/*-------------------------------------------------------------------------
 *
 * streams.h
 *	  the built-in streams of todo_kafka and the schema of each
 *
 * One list, included by the backend (extension/todo_kafka.h: publish()
 * refuses these streams) and by the daemons (the relay's fan-out and dead
 * letters, the consumer runtime's dead letters, the services' streams).
 * It is plain C (macros only) so that the backend can include it without
 * linking anything of common/.
 *
 * A stream is a key of todo_kafka.topics (the SQL install seeds one row per
 * built-in stream; tests/111_schemas.pl checks that the seeded rows and
 * this list agree).  Every message of a built-in stream names its JSON
 * Schema in the CloudEvents "dataschema" attribute as TK_SCHEMA_BASE
 * followed by the schema file's name (schemas/<file>, whose $id it is):
 * see tk_stream_dataschema() in envelope.c.  Custom streams (publish())
 * carry no dataschema: their data is the application's.
 *
 * TK_BUILTIN_STREAMS(X) expands X(name, schema file) once per stream.
 *
 * IDENTIFICATION
 *	  common/messages/streams.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_STREAMS_H
#define TK_STREAMS_H

#define TK_STREAM_TASK_EVENTS	"task_events"
#define TK_STREAM_TASK_UPDATES	"task_updates"
#define TK_STREAM_AUDIT			"audit"
#define TK_STREAM_REMINDERS		"reminders"
#define TK_STREAM_NOTIFICATIONS "notifications"
#define TK_STREAM_DEAD_LETTER	"dead_letter"

#define TK_SCHEMA_BASE			"https://todo-kafka.dev/schemas/"

#define TK_BUILTIN_STREAMS(X) \
	X(TK_STREAM_TASK_EVENTS, "task-events.v1.json") \
	X(TK_STREAM_TASK_UPDATES, "task-updates.v1.json") \
	X(TK_STREAM_AUDIT, "audit.v1.json") \
	X(TK_STREAM_REMINDERS, "reminders.v1.json") \
	X(TK_STREAM_NOTIFICATIONS, "notifications.v1.json") \
	X(TK_STREAM_DEAD_LETTER, "dead-letter.v1.json")

#endif							/* TK_STREAMS_H */
