/*-------------------------------------------------------------------------
 *
 * leader.c
 *	  PostgreSQL session of the relay: leadership, LISTEN, sleep lock
 *
 * Leadership (guarantee 5): one relay per database holds the session-level
 * advisory lock (29803, 1), taken with pg_try_advisory_lock on the same
 * connection that reads the outbox.  A standby keeps its connection and
 * retries every standby_retry_ms; when the leader dies its session ends,
 * the lock is freed and the next try succeeds.  Losing the connection
 * loses the lock, so after any reconnect the relay is a standby until it
 * wins the lock again, and only then reads.
 *
 * Wake-up (DESIGN.md, the NOTIFY trap): the extension sends NOTIFY
 * todo_kafka at commit only while some session holds the advisory lock
 * (29803, 2).  The relay takes that lock when it runs out of work ("I
 * sleep") and releases it when it is busy, so busy periods cost writers no
 * NOTIFY.  The re-check after taking the lock lives in main.c.
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

#include "relay.h"

/* run a command returning one row; on success copy the first value */
static bool
pg_exec_value(PGconn *conn, const char *sql, char *value, size_t len)
{
	PGresult   *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	bool		ok = (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK);

	if (!ok)
		tk_log(TK_LOG_ERROR, "query failed: %s", PQerrorMessage(conn));
	else if (value && PQntuples(res) > 0)
		snprintf(value, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return ok;
}

PGconn *
relay_pg_connect(const char *conninfo)
{
	PGconn	   *conn = PQconnectdb(conninfo);
	char	   *display;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		tk_log(TK_LOG_WARNING, "could not connect to PostgreSQL: %s",
			   PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	/* our session must never be the one blocking writers for long */
	if (!pg_exec_value(conn,
					   "SET application_name = 'todo-kafka-relay'; "
					   "SET statement_timeout = '60s'; "
					   "SET idle_in_transaction_session_timeout = '60s'",
					   NULL, 0))
	{
		PQfinish(conn);
		return NULL;
	}
	display = tk_conninfo_display(conninfo);
	tk_log(TK_LOG_INFO, "connected to PostgreSQL (%s)", display ? display : "");
	free(display);
	return conn;
}

bool
relay_try_leadership(PGconn *conn, bool *is_leader)
{
	char		v[8] = "";

	if (!pg_exec_value(conn, "SELECT pg_catalog.pg_try_advisory_lock(29803, 1)",
					   v, sizeof(v)))
		return false;
	*is_leader = (strcmp(v, "t") == 0);
	return true;
}

bool
relay_listen(PGconn *conn)
{
	return pg_exec_value(conn, "LISTEN " RELAY_NOTIFY_CHANNEL, NULL, 0);
}

/* take (blocking; nobody else takes it for long) or release the sleep lock */
bool
relay_sleep_lock(PGconn *conn, bool take)
{
	return pg_exec_value(conn, take ?
						 "SELECT pg_catalog.pg_advisory_lock(29803, 2)" :
						 "SELECT pg_catalog.pg_advisory_unlock(29803, 2)",
						 NULL, 0);
}

/*
 * Read whatever arrived on the socket and count the notifications.
 * Returns -1 when the connection is broken (PQconsumeInput failed).
 */
int
relay_drain_notifies(PGconn *conn)
{
	PGnotify   *n;
	int			count = 0;

	if (!PQconsumeInput(conn))
	{
		tk_log(TK_LOG_WARNING, "lost connection to PostgreSQL: %s", PQerrorMessage(conn));
		return -1;
	}
	while ((n = PQnotifies(conn)) != NULL)
	{
		count++;
		PQfreemem(n);
	}
	return count;
}
