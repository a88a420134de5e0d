/*-------------------------------------------------------------------------
 *
 * relay_api.c
 *	  the relay's leadership and sleep announcement: relay_lead(),
 *	  relay_sleeping(bool)
 *
 * The advisory-lock keys and the wake-up channel live in todo_kafka.h
 * alone; the commit-time wake-up (todo_kafka.c) probes the same sleep
 * lock.  These two functions are what the relay calls (EXECUTE granted to
 * todo_kafka_relay only; extension/sql/05_relay_api.sql), so it needs no
 * copy of the keys.  Both take session-level locks through the server's
 * own pg_*advisory_lock functions, so they behave exactly like those:
 * the locks outlive the calling transaction and go with the session.
 *
 * IDENTIFICATION
 *	  extension/relay_api.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/async.h"
#include "fmgr.h"
#include "utils/fmgrprotos.h"

#include "todo_kafka.h"

PG_FUNCTION_INFO_V1(todo_kafka_relay_lead);
PG_FUNCTION_INFO_V1(todo_kafka_relay_sleeping);

/*
 * todo_kafka_relay_lead
 *		relay_lead() RETURNS boolean
 *
 * Try to become the database's active relay: the leader lock, without
 * waiting.  The winner also LISTENs on the wake-up channel (it takes
 * effect when the calling statement's transaction commits).
 */
Datum
todo_kafka_relay_lead(PG_FUNCTION_ARGS)
{
	Datum		won = DirectFunctionCall2(pg_try_advisory_lock_int4,
										  Int32GetDatum(TODO_KAFKA_LOCK_CLASS),
										  Int32GetDatum(TODO_KAFKA_LOCK_LEADER));

	if (DatumGetBool(won))
		Async_Listen(TODO_KAFKA_NOTIFY_CHANNEL);
	PG_RETURN_DATUM(won);
}

/*
 * todo_kafka_relay_sleeping
 *		relay_sleeping(sleeping boolean) RETURNS boolean
 *
 * true: take the sleep lock, waiting if need be (writers only probe it);
 * from then on committing writers NOTIFY.  false: release it; returns
 * false (with the server's warning) if this session did not hold it.
 */
Datum
todo_kafka_relay_sleeping(PG_FUNCTION_ARGS)
{
	Datum		key1 = Int32GetDatum(TODO_KAFKA_LOCK_CLASS);
	Datum		key2 = Int32GetDatum(TODO_KAFKA_LOCK_SLEEPING);

	if (PG_GETARG_BOOL(0))
	{
		DirectFunctionCall2(pg_advisory_lock_int4, key1, key2);
		PG_RETURN_BOOL(true);
	}
	PG_RETURN_DATUM(DirectFunctionCall2(pg_advisory_unlock_int4, key1, key2));
}
