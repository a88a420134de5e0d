/*-------------------------------------------------------------------------
 *
 * pg.h
 *	  PostgreSQL session helpers shared by the todo_kafka daemons
 *
 * IDENTIFICATION
 *	  common/pg.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_PG_H
#define TK_PG_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

/* what a failed statement means for the work that ran it */
typedef enum tk_pg_failure
{
	TK_PG_OK,					/* it succeeded */
	TK_PG_CONNECTION,			/* the server or the session is gone: reconnect, wait */
	TK_PG_SETUP,				/* privileges, missing objects: not the data's fault */
	TK_PG_DATA,					/* the input is wrong: retrying cannot help */
	TK_PG_TRANSIENT				/* deadlock, serialization, resources: retry */
} tk_pg_failure;

extern PGconn *tk_pg_connect(const char *conninfo, const char *application_name);
extern bool tk_pg_exec_value(PGconn *conn, const char *sql, char *value, size_t len);
extern int	tk_pg_drain_notifies(PGconn *conn);
extern tk_pg_failure tk_pg_classify(PGconn *conn, const PGresult *res);
extern const char *tk_pg_error_text(PGconn *conn, const PGresult *res,
									char *buf, size_t len);

#endif							/* TK_PG_H */
