/*-------------------------------------------------------------------------
 *
 * push_allowlist.c
 *	  the hosts push endpoints and push gateways may be on:
 *	  todo_kafka.push_allowed_hosts, todo_kafka.push_gateway_allowed_hosts
 *
 * A push endpoint comes from a user's browser through the chatbot, so
 * whoever holds a chat session chooses it; the notify service POSTs to it
 * from inside the operator's network.  Registration (add_push_subscription,
 * set_push_gateway in extension/sql/10_notify_settings.sql) therefore
 * refuses a host that is not on the operator's list; todo-kafka-notify
 * checks again with its own settings of the same names before each send,
 * and checks every address it connects to (common/net_guard.h).
 *
 * Settings, superuser only (PGC_SUSET: ALTER DATABASE/ROLE ... SET,
 * ALTER SYSTEM or postgresql.conf), so the application role cannot widen
 * them for its own session:
 *	 todo_kafka.push_allowed_hosts			default: the public browser push
 *											services (common/host_allowlist.h)
 *	 todo_kafka.push_gateway_allowed_hosts	default empty: no gateway until the
 *											operator names one
 * The list syntax and the matching are common/host_allowlist.h, shared with
 * the notify service.  A value SET by a non-superuser before this library
 * was loaded in the session is a placeholder that PostgreSQL refuses (with
 * a WARNING) when the definition below arrives; calling the C function
 * loads the library first, so the plpgsql check never reads a placeholder.
 * ALTER ROLE/DATABASE ... SET of one needs a superuser (sql/push_allowlist.sql).
 *
 * IDENTIFICATION
 *	  extension/push_allowlist.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "todo_kafka.h"
#include "../common/host_allowlist.h"

static char *tk_push_allowed_hosts = NULL;
static char *tk_push_gateway_allowed_hosts = NULL;

/* called from _PG_init */
void
todo_kafka_define_push_settings(void)
{
	DefineCustomStringVariable("todo_kafka.push_allowed_hosts",
							   "Hosts that Web Push subscription endpoints may be on.",
							   "Comma-separated host names; *.example.com for any host under "
							   "example.com; * for any host.  Default: the public browser push services.",
							   &tk_push_allowed_hosts,
							   TK_PUSH_ALLOWED_HOSTS_DEFAULT,
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("todo_kafka.push_gateway_allowed_hosts",
							   "Hosts that push gateway URLs may be on.",
							   "Same syntax as todo_kafka.push_allowed_hosts.  Default: none.",
							   &tk_push_gateway_allowed_hosts,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
}

PG_FUNCTION_INFO_V1(todo_kafka_push_host_allowed);

/*
 * todo_kafka_push_host_allowed
 *		push_host_allowed(p_host text, p_gateway boolean) RETURNS boolean
 *
 * Is p_host (a URL's host part, IPv6 in brackets) on
 * todo_kafka.push_gateway_allowed_hosts (p_gateway) or
 * todo_kafka.push_allowed_hosts.  STRICT; used by notify_check_push_host().
 */
Datum
todo_kafka_push_host_allowed(PG_FUNCTION_ARGS)
{
	char	   *host = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		gateway = PG_GETARG_BOOL(1);

	PG_RETURN_BOOL(tk_host_allowed(host, gateway ? tk_push_gateway_allowed_hosts
								   : tk_push_allowed_hosts));
}
