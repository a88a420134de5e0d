/*-------------------------------------------------------------------------
 *
 * outbox.c
 *	  write one event into todo_kafka.outbox
 *
 * Every path that produces an event (the capture trigger, publish())
 * comes through outbox_write(), so the event id, actor, correlation id and
 * traceparent are stamped in one place.
 *
 * The insert runs through SPI with a plan prepared once per backend and
 * kept (SPI_keepplan); the plan cache re-plans it if the table changes.
 * It runs with the rights of the outbox's owner, as RI triggers do
 * (SECURITY_LOCAL_USERID_CHANGE): the application role may change tasks
 * but has no privilege on the outbox itself, so it cannot forge, alter or
 * delete events.  An error aborts the transaction, which also restores the
 * user id, so no PG_TRY is needed.
 *
 * xid and occurred_at are filled by the column defaults
 * (pg_current_xact_id(), clock_timestamp()).
 *
 * IDENTIFICATION
 *	  extension/outbox.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "todo_kafka.h"

#define OUTBOX_NARGS 14

static SPIPlanPtr outbox_insert_plan = NULL;

static SPIPlanPtr
outbox_plan(void)
{
	static const Oid argtypes[OUTBOX_NARGS] = {
		UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
		TEXTOID, TEXTOID, TEXTOID, JSONOID, JSONOID, TEXTARRAYOID, JSONOID
	};

	if (outbox_insert_plan == NULL)
	{
		SPIPlanPtr	plan;

		plan = SPI_prepare("INSERT INTO todo_kafka.outbox "
						   "(event_id, kind, stream, event_type, source, key, user_id, "
						   " actor, correlation_id, traceparent, before, after, changed, headers) "
						   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
						   OUTBOX_NARGS, (Oid *) argtypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for outbox insert: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed for outbox insert");
		outbox_insert_plan = plan;
	}
	return outbox_insert_plan;
}

static Datum
outbox_new_event_id(void)
{
	pg_uuid_t  *uuid = palloc(sizeof(pg_uuid_t));

	if (!pg_strong_random(uuid->data, UUID_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values")));
	uuid->data[6] = (uuid->data[6] & 0x0f) | 0x40;	/* version 4 */
	uuid->data[8] = (uuid->data[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	return UUIDPGetDatum(uuid);
}

static void
outbox_text_arg(Datum *values, char *nulls, int i, const char *s)
{
	if (s == NULL)
	{
		values[i] = (Datum) 0;
		nulls[i] = 'n';
	}
	else
	{
		values[i] = CStringGetTextDatum(s);
		nulls[i] = ' ';
	}
}

static void
outbox_datum_arg(Datum *values, char *nulls, int i, Datum d, bool present)
{
	values[i] = present ? d : (Datum) 0;
	nulls[i] = present ? ' ' : 'n';
}

Datum
outbox_write(const OutboxEvent *ev)
{
	Datum		values[OUTBOX_NARGS];
	char		nulls[OUTBOX_NARGS];
	Oid			save_userid;
	int			save_sec_context;
	int			ret;

	values[0] = outbox_new_event_id();
	nulls[0] = ' ';
	outbox_text_arg(values, nulls, 1, ev->kind);
	outbox_text_arg(values, nulls, 2, ev->stream);
	outbox_text_arg(values, nulls, 3, ev->event_type);
	outbox_text_arg(values, nulls, 4, ev->source);
	outbox_text_arg(values, nulls, 5, ev->key);
	outbox_text_arg(values, nulls, 6, ev->user_id);
	outbox_text_arg(values, nulls, 7, todo_kafka_actor());
	outbox_text_arg(values, nulls, 8, todo_kafka_correlation_id());
	outbox_text_arg(values, nulls, 9, todo_kafka_traceparent());
	outbox_datum_arg(values, nulls, 10, ev->before, ev->has_before);
	outbox_datum_arg(values, nulls, 11, ev->after, ev->has_after);
	outbox_datum_arg(values, nulls, 12, ev->changed, ev->has_changed);
	outbox_datum_arg(values, nulls, 13, ev->headers, ev->has_headers);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(todo_kafka_outbox_owner(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);

	ret = SPI_execute_plan(outbox_plan(), values, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "outbox insert failed: %s", SPI_result_code_string(ret));

	SetUserIdAndSecContext(save_userid, save_sec_context);

	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");

	todo_kafka_note_outbox_write();
	return values[0];
}
