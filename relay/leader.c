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

#include "pg.h"
#include "relay.h"

PGconn *
relay_pg_connect(const char *conninfo)
{
	return tk_pg_connect(conninfo, "todo-kafka-relay");
}

bool
relay_try_leadership(PGconn *conn, bool *is_leader)
{
	char		v[8] = "";

	if (!tk_pg_exec_value(conn, "SELECT pg_catalog.pg_try_advisory_lock(29803, 1)",
					   v, sizeof(v)))
		return false;
	*is_leader = (strcmp(v, "t") == 0);
	return true;
}

bool
relay_listen(PGconn *conn)
{
	return tk_pg_exec_value(conn, "LISTEN " RELAY_NOTIFY_CHANNEL, NULL, 0);
}

/* take (blocking; nobody else takes it for long) or release the sleep lock */
bool
relay_sleep_lock(PGconn *conn, bool take)
{
	return tk_pg_exec_value(conn, take ?
						 "SELECT pg_catalog.pg_advisory_lock(29803, 2)" :
						 "SELECT pg_catalog.pg_advisory_unlock(29803, 2)",
						 NULL, 0);
}

int
relay_drain_notifies(PGconn *conn)
{
	return tk_pg_drain_notifies(conn);
}
