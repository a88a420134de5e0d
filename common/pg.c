/*-------------------------------------------------------------------------
 *
 * pg.c
 *	  PostgreSQL session helpers shared by the todo_kafka daemons
 *
 * tk_pg_connect() opens a session the way every daemon wants it: named by
 * application_name, with statement and idle-in-transaction timeouts so a
 * daemon's session is never the one blocking writers for long.  It logs
 * the conninfo without its password.  Reconnect policy (capped backoff)
 * stays with the caller's loop.
 *
 * tk_pg_classify() turns a failed statement into what the caller should
 * do, by SQLSTATE class (Appendix A of the PostgreSQL docs):
 *	 - no connection, class 08 (connection exception), 57P01-57P03 (admin
 *	   shutdown, crash shutdown, cannot connect now): TK_PG_CONNECTION;
 *	 - class 42 (syntax or access rule), 3F (invalid schema), 28 (invalid
 *	   authorization), 0A (not supported), 39 (external routine): the
 *	   deployment is wrong (a missing grant, an old extension version), the
 *	   same for every message: TK_PG_SETUP, which a consumer treats like a
 *	   dependency that is down rather than emptying its topic into the
 *	   dead-letter queue;
 *	 - class 22 (data exception), 23 (integrity constraint), P0002 (no data
 *	   found), and P0001 (raise_exception) : TK_PG_DATA, the message's fault;
 *	 - anything else (40001 serialization, 40P01 deadlock, 53 resources,
 *	   55P03 lock not available, 57014 statement timeout): TK_PG_TRANSIENT.
 *
 * Every function runs synchronous libpq calls on the calling thread; one
 * PGconn belongs to one thread.
 *
 * IDENTIFICATION
 *	  common/pg.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "options.h"
#include "pg.h"

/* run a command returning at most one row; on success copy the first value */
bool
tk_pg_exec_value(PGconn *conn, const char *sql, char *value, size_t len)
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
tk_pg_connect(const char *conninfo, const char *application_name)
{
	PGconn	   *conn = PQconnectdb(conninfo);
	char	   *display;
	char		sql[256];

	if (PQstatus(conn) != CONNECTION_OK)
	{
		tk_log(TK_LOG_WARNING, "could not connect to PostgreSQL: %s",
			   PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	/* our session must never be the one blocking writers for long */
	snprintf(sql, sizeof(sql),
			 "SET application_name = '%s'; "
			 "SET statement_timeout = '60s'; "
			 "SET idle_in_transaction_session_timeout = '60s'",
			 application_name);
	if (!tk_pg_exec_value(conn, sql, NULL, 0))
	{
		PQfinish(conn);
		return NULL;
	}
	display = tk_conninfo_display(conninfo);
	tk_log(TK_LOG_INFO, "connected to PostgreSQL (%s)", display ? display : "");
	free(display);
	return conn;
}

/*
 * Read whatever arrived on the socket and count the notifications.
 * Returns -1 when the connection is broken (PQconsumeInput failed).
 */
int
tk_pg_drain_notifies(PGconn *conn)
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

static bool
class_is(const char *state, const char *cls)
{
	return strncmp(state, cls, strlen(cls)) == 0;
}

tk_pg_failure
tk_pg_classify(PGconn *conn, const PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	const char *state;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return TK_PG_OK;
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
		return TK_PG_CONNECTION;
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (state == NULL)
		return TK_PG_CONNECTION;	/* no server answer: libpq lost it */
	if (class_is(state, "08") || strcmp(state, "57P01") == 0 ||
		strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0)
		return TK_PG_CONNECTION;
	if (class_is(state, "42") || class_is(state, "3F") || class_is(state, "28") ||
		class_is(state, "0A") || class_is(state, "39"))
		return TK_PG_SETUP;
	if (class_is(state, "22") || class_is(state, "23") ||
		strcmp(state, "P0002") == 0 || strcmp(state, "P0001") == 0)
		return TK_PG_DATA;
	return TK_PG_TRANSIENT;
}

/* "SQLSTATE: message" of a failed statement, one line */
const char *
tk_pg_error_text(PGconn *conn, const PGresult *res, char *buf, size_t len)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char	   *nl;

	if (msg == NULL)
		msg = conn ? PQerrorMessage(conn) : "no connection";
	snprintf(buf, len, "%s%s%s", state ? state : "", state ? ": " : "", msg);
	if ((nl = strchr(buf, '\n')) != NULL)
		*nl = '\0';
	return buf;
}
