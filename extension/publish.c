/*-------------------------------------------------------------------------
 *
 * publish.c
 *	  todo_kafka.publish(): custom events through the same outbox
 *
 * The extensibility story of the spec (user story 5): an application adds
 * a stream to todo_kafka.topics and publishes its own events with
 * publish(stream, key, event_type, data, headers).  They travel through
 * the outbox like captured changes, in the caller's transaction, so they
 * are published only if it commits, in order per key.
 *
 * todo_kafka.emit() is the internal twin used by the extension's own SQL
 * (reminders): it also sets the outbox kind and the user id.  It is
 * granted to nobody.
 *
 * publish() refuses every built-in stream, all of whose messages follow a
 * published schema (schemas/): task_events, task_updates, audit (since
 * 0.3.0), reminders (since 0.4.0), notifications and dead_letter (after
 * 0.5.0).  A custom event there would break every consumer of
 * those topics.  Audit records are made by the relay from captured changes
 * only, so an application cannot put a forged one on the audit topic;
 * notifications are queued by todo-kafka-notify, which delivers each one
 * it reads, so a custom event there would be a forged notification; dead
 * letters are written by the relay and the consumer services, and an
 * operator replays them, so a forged one could be replayed onto any topic.
 * The check is in the module, not in SQL (same signature), so it holds
 * whatever version of the extension's SQL is installed.  emit(), granted
 * to nobody, does not check this.
 *
 * Input is checked before anything is written: the stream must exist,
 * the key must be non-empty, the event type must be a dotted name, data
 * must be present and headers must be a JSON object of string values.
 *
 * IDENTIFICATION
 *	  extension/publish.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "todo_kafka.h"

PG_FUNCTION_INFO_V1(todo_kafka_publish);
PG_FUNCTION_INFO_V1(todo_kafka_emit);

#define PUBLISH_MAX_NAME 200

static SPIPlanPtr publish_stream_plan = NULL;

/* does the stream exist in todo_kafka.topics? */
static bool
publish_stream_exists(const char *stream)
{
	Datum		values[1];
	int			ret;
	bool		found;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (publish_stream_plan == NULL)
	{
		Oid			argtypes[1] = {TEXTOID};
		SPIPlanPtr	plan = SPI_prepare("SELECT 1 FROM todo_kafka.topics WHERE stream = $1",
									   1, argtypes);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "could not prepare the stream lookup");
		publish_stream_plan = plan;
	}
	values[0] = CStringGetTextDatum(stream);
	ret = SPI_execute_plan(publish_stream_plan, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "stream lookup failed: %s", SPI_result_code_string(ret));
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

static bool
publish_valid_event_type(const char *s)
{
	size_t		len = strlen(s);
	size_t		i;

	if (len == 0 || len > PUBLISH_MAX_NAME)
		return false;
	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || (i > 0 && (c == '.' || c == '_' || c == '-'))))
			return false;
	}
	return true;
}

/* headers must be an object whose values are all strings */
static void
publish_check_headers(Jsonb *headers)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			depth = 0;

	if (!JB_ROOT_IS_OBJECT(headers))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("headers must be a JSON object"),
				 errhint("Pass headers as '{\"name\": \"value\"}'.")));

	it = JsonbIteratorInit(&headers->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
			depth++;
		else if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
			depth--;
		if (tok == WJB_VALUE && v.type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("header values must be strings"),
					 errhint("Kafka headers are strings: quote numbers and booleans.")));
		if (depth > 1 || tok == WJB_BEGIN_ARRAY)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("header values must be strings"),
					 errhint("Kafka headers are strings: nested objects and arrays are not allowed.")));
	}
}

static Datum
publish_jsonb_as_json(Jsonb *jb)
{
	return CStringGetTextDatum(JsonbToCString(NULL, &jb->root, VARSIZE(jb)));
}

/* refuse the built-in streams (see the file header) */
static void
publish_check_stream(const char *stream)
{
#define PUBLISH_BUILTIN(name, schema) name,
	static const char *const builtin[] = {TK_BUILTIN_STREAMS(PUBLISH_BUILTIN) NULL};
#undef PUBLISH_BUILTIN
	const char *detail;
	int			i;

	if (strcmp(stream, TK_STREAM_AUDIT) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot publish to the \"%s\" stream", stream),
				 errhint("Audit records are made only from captured changes.")));
	for (i = 0; builtin[i] && strcmp(stream, builtin[i]) != 0; i++)
		;
	if (builtin[i] == NULL)
		return;
	if (strcmp(stream, TK_STREAM_NOTIFICATIONS) == 0)
		detail = "Its messages are the notifications todo-kafka-notify queues and delivers, and follow a published schema.";
	else if (strcmp(stream, TK_STREAM_DEAD_LETTER) == 0)
		detail = "Its messages are the dead letters the relay and the consumer services write, and follow a published schema.";
	else
		detail = "Its messages are made by todo_kafka from task changes and follow a published schema.";
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot publish to the \"%s\" stream", stream),
			 errdetail("%s", detail),
			 errhint("Publish custom events to a stream of your own: INSERT INTO todo_kafka.topics (stream, topic) VALUES ('my_events', 'app.my.events').")));
}

/*
 * Check stream, key and event type and fill the common part of an event.
 */
static void
publish_prepare(OutboxEvent *ev, const char *kind, text *stream_t, text *key_t,
				text *event_type_t, Jsonb *data)
{
	char	   *stream = text_to_cstring(stream_t);
	char	   *key = text_to_cstring(key_t);
	char	   *event_type = text_to_cstring(event_type_t);

	if (!publish_stream_exists(stream))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown stream \"%s\"", stream),
				 errhint("Add it first: INSERT INTO todo_kafka.topics (stream, topic) VALUES ('%s', '<kafka topic>').",
						 stream)));
	if (key[0] == '\0' || strlen(key) > PUBLISH_MAX_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event key must be 1 to %d characters long", PUBLISH_MAX_NAME),
				 errdetail("The key becomes the Kafka message key; events with one key stay in order.")));
	if (!publish_valid_event_type(event_type))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid event type: \"%s\"", event_type),
				 errhint("Use letters, digits, '.', '_' and '-', starting with a letter or digit, e.g. 'invoice.paid'.")));

	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->stream = stream;
	ev->event_type = event_type;
	ev->source = "publish";
	ev->key = key;
	ev->after = publish_jsonb_as_json(data);
	ev->has_after = true;
}

/*
 * todo_kafka_publish
 *		publish(stream text, key text, event_type text, data jsonb,
 *				headers jsonb DEFAULT '{}') RETURNS uuid
 *
 * Writes one 'custom' outbox row and returns its event id, which is the
 * CloudEvents id the message will carry on Kafka.
 */
Datum
todo_kafka_publish(PG_FUNCTION_ARGS)
{
	OutboxEvent ev;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream, key, event_type and data must not be null")));
	publish_check_stream(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	publish_prepare(&ev, "custom", PG_GETARG_TEXT_PP(0), PG_GETARG_TEXT_PP(1),
					PG_GETARG_TEXT_PP(2), PG_GETARG_JSONB_P(3));
	if (!PG_ARGISNULL(4))
	{
		Jsonb	   *headers = PG_GETARG_JSONB_P(4);

		publish_check_headers(headers);
		ev.headers = publish_jsonb_as_json(headers);
		ev.has_headers = true;
	}

	PG_RETURN_DATUM(outbox_write(&ev));
}

/*
 * todo_kafka_emit
 *		emit(kind text, stream text, key text, event_type text,
 *			 user_id text, data jsonb, source text) RETURNS uuid
 *
 * Internal: writes one outbox row of the given kind ('custom' or
 * 'reminder') for the extension's own SQL.  user_id may be NULL.
 */
Datum
todo_kafka_emit(PG_FUNCTION_ARGS)
{
	OutboxEvent ev;
	char	   *kind;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) ||
		PG_ARGISNULL(3) || PG_ARGISNULL(5) || PG_ARGISNULL(6))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("kind, stream, key, event_type, data and source must not be null")));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (strcmp(kind, "custom") != 0 && strcmp(kind, "reminder") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid outbox kind: \"%s\"", kind),
				 errhint("Use custom or reminder; changes are captured by the trigger.")));

	publish_prepare(&ev, kind, PG_GETARG_TEXT_PP(1), PG_GETARG_TEXT_PP(2),
					PG_GETARG_TEXT_PP(3), PG_GETARG_JSONB_P(5));
	if (!PG_ARGISNULL(4))
		ev.user_id = text_to_cstring(PG_GETARG_TEXT_PP(4));
	ev.source = text_to_cstring(PG_GETARG_TEXT_PP(6));

	PG_RETURN_DATUM(outbox_write(&ev));
}
