/*-------------------------------------------------------------------------
 *
 * leader.c
 *	  PostgreSQL session of the relay: leadership and the sleep lock
 *
 * Leadership (guarantee 5): one relay per database holds a session-level
 * advisory lock, taken without waiting by todo_kafka.relay_lead() on the
 * same connection that reads the outbox; the winner also LISTENs on the
 * wake-up channel.  A standby keeps its connection and retries every
 * standby_retry_ms; when the leader dies its session ends, the lock is
 * freed and the next try succeeds.  Losing the connection loses the lock,
 * so after any reconnect the relay is a standby until it wins the lock
 * again, and only then reads.
 *
 * Wake-up (DESIGN.md, the NOTIFY trap): the extension sends NOTIFY at
 * commit only while some session holds the sleep lock.  The relay takes
 * it when it runs out of work (todo_kafka.relay_sleeping(true): "I sleep")
 * and releases it when it is busy, so busy periods cost writers no NOTIFY.
 * The re-check after taking the lock lives in main.c.
 *
 * The lock keys and the channel are the extension's (todo_kafka.h); the
 * relay only calls its functions (extension/sql/05_relay_api.sql, with
 * the position they keep).
 *
 * Every function here runs synchronous libpq calls on the main thread and
 * returns false when the query failed; the caller then checks PQstatus to
 * tell a lost connection (reconnect) from a failed statement.
 *
 * IDENTIFICATION
 *	  relay/leader.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "relay.h"

PGconn *
relay_pg_connect(const char *conninfo)
{
	return tk_pg_connect(conninfo, "todo-kafka-relay");
}

/*
 * Log a failed call of the extension's relay API: a missing function
 * (SQLSTATE 42883) means the extension's SQL is older than this relay
 * needs, which ALTER EXTENSION UPDATE fixes; anything else as it came.
 */
void
relay_log_api_error(PGconn *conn, const PGresult *res, const char *function,
					const char *doing)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (state && strcmp(state, "42883") == 0)
		tk_log(TK_LOG_ERROR, "%s does not exist: the extension is older than %s; run ALTER EXTENSION todo_kafka UPDATE",
			   function, RELAY_VERSION);
	else
		tk_log(TK_LOG_ERROR, "could not %s: %s", doing, PQerrorMessage(conn));
}

/* try to lead; the winner LISTENs for wake-ups from then on */
bool
relay_try_leadership(PGconn *conn, bool *is_leader)
{
	char		v[8] = "";

	if (!tk_pg_exec_value(conn, "SELECT todo_kafka.relay_lead()", v, sizeof(v)))
		return false;
	*is_leader = (strcmp(v, "t") == 0);
	return true;
}

/* announce sleep (blocking; nobody else takes the lock for long) or busy */
bool
relay_sleep_lock(PGconn *conn, bool take)
{
	return tk_pg_exec_value(conn, take ?
							"SELECT todo_kafka.relay_sleeping(true)" :
							"SELECT todo_kafka.relay_sleeping(false)",
							NULL, 0);
}

int
relay_drain_notifies(PGconn *conn)
{
	return tk_pg_drain_notifies(conn);
}
