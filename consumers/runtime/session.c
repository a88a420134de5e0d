/*-------------------------------------------------------------------------
 *
 * session.c
 *	  a worker's PostgreSQL session, and the service's init that waits for it
 *
 * Each worker has one session (w->pg).  tkc_session_connect() gives a
 * usable one, reconnecting at most as often as the capped backoff allows
 * (200 ms doubling to outage_retry_max_ms); it has no other effect.  A
 * caller that is about to run the service (handler, offset store,
 * periodic) calls tkc_service_init_or_stop() next: the first time the
 * session is up it runs the service's init on it, and an init that fails
 * is fatal: it logs, sets the worker's exit code and requests shutdown of
 * the whole process.  The setup worker (index -1) never runs init.
 *
 * Used by the worker loop (worker.c), a batch (batch.c) and the rebalance
 * callback (kafka.c); it calls none of them.
 *
 * IDENTIFICATION
 *	  consumers/runtime/session.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>

#include "clock.h"
#include "log.h"
#include "pg.h"
#include "runtime.h"
#include "signals.h"

/* a usable session, (re)connecting at most as often as the backoff allows */
bool
tkc_session_connect(tkc_worker *w, char *why, size_t whylen)
{
	int64_t		now = tk_monotonic_ms();

	if (w->pg && PQstatus(w->pg) == CONNECTION_OK)
		return true;
	if (w->pg)
	{
		PQfinish(w->pg);
		w->pg = NULL;
	}
	if (now < w->pg_next_try_ms)
	{
		snprintf(why, whylen, "database unavailable (reconnecting)");
		return false;
	}
	w->pg = tk_pg_connect(w->rt->d.conninfo, w->rt->program);
	if (w->pg == NULL)
	{
		w->pg_next_try_ms = now + tk_backoff_next(&w->pg_backoff);
		snprintf(why, whylen, "database unavailable: cannot connect");
		return false;
	}
	tk_backoff_reset(&w->pg_backoff);
	return true;
}

/*
 * The service's init, once per worker, on a session that is up; false when
 * it failed, which stops the service (exit 1, shutdown requested).
 */
bool
tkc_service_init_or_stop(tkc_worker *w, char *why, size_t whylen)
{
	char		err[512];

	if (w->service_initialized)
		return true;
	if (w->rt->svc->init && !w->rt->svc->init(w, err, sizeof(err)))
	{
		tk_log(TK_LOG_FATAL, "%s: %s", w->rt->program, err);
		w->exit_code = TK_EXIT_FAILURE;
		tk_shutdown_requested = 1;
		snprintf(why, whylen, "service could not start: %.400s", err);
		return false;
	}
	w->service_initialized = true;
	return true;
}
