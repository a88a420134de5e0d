/*-------------------------------------------------------------------------
 *
 * sink.c
 *	  the runtime's side of a sink service: one call per batch, and the
 *	  search for the bad event when a batch is refused
 *
 * A sink service (tkc_service.sink: the audit log, the projection) writes
 * a whole batch with one statement in one transaction.  tkc_sink_run()
 * gives it the batch's events, in offset order:
 *	 - no database session: every event DOWN, the sink is not called;
 *	 - the batch written (OK), or DOWN: that result for every event;
 *	 - the batch refused (DEAD or RETRY): the events are written one by one
 *	   so that only the bad one is retried or dead-lettered; once an event
 *	   of a partition did not succeed (RETRY, DOWN), the later events of
 *	   that partition are not tried this round (TKC_NOT_TRIED, offered again
 *	   with the next round, no attempt counted), so a sink that keeps its
 *	   offsets never sees offset n+1 before n.
 * The rows written, and the events that were already there (OK, nothing
 * written), are counted on /metrics as todo_kafka_<service>_<unit>_written_total
 * and _<unit>_present_total (unit: tkc_service.sink_unit).
 *
 * Called by a batch (batch.c) only.
 *
 * IDENTIFICATION
 *	  consumers/runtime/sink.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "runtime.h"

static void
set_all(tkc_event **evs, int n, tkc_result *results, tkc_result r)
{
	for (int i = 0; i < n; i++)
	{
		results[i] = r;
		if (i > 0)
			memcpy(evs[i]->error, evs[0]->error, sizeof(evs[i]->error));
	}
}

static int
sink_write(tkc_worker *w, tkc_event **evs, int n, tkc_result *results)
{
	tkc_sink_call call = w->rt->svc->sink;
	const char *what = w->rt->svc->sink_unit;
	int			written = 0;
	tkc_result	r;
	int32_t		blocked[64];
	int			nblocked = 0;

	if (tkc_pg(w) == NULL)
	{
		tkc_fail(evs[0], "database unavailable");
		set_all(evs, n, results, TKC_DOWN);
		return 0;
	}
	r = call(w, evs, n, &written);
	if (!((r == TKC_DEAD || r == TKC_RETRY) && n > 1))
	{
		set_all(evs, n, results, r);
		return r == TKC_OK ? written : 0;
	}

	/* find the bad event: one by one, in offset order */
	tk_log(TK_LOG_WARNING, "batch of %d %s refused (%s); writing them one by one",
		   n, what, evs[0]->error);
	written = 0;
	for (int i = 0; i < n; i++)
	{
		bool		wait = nblocked == 64;
		int			one = 0;

		for (int k = 0; k < nblocked; k++)
			wait = wait || blocked[k] == evs[i]->partition;
		if (wait)
		{
			results[i] = TKC_NOT_TRIED;
			continue;
		}
		if (tkc_pg(w) == NULL)
		{
			tkc_fail(evs[i], "database unavailable");
			results[i] = TKC_DOWN;
		}
		else
			results[i] = call(w, &evs[i], 1, &one);
		if (results[i] == TKC_OK)
			written += one;
		else if (results[i] == TKC_RETRY || results[i] == TKC_DOWN)
			blocked[nblocked++] = evs[i]->partition;
	}
	return written;
}

void
tkc_sink_run(tkc_worker *w, tkc_event **evs, int n, tkc_result *results)
{
	const char *what = w->rt->svc->sink_unit;
	int			written = sink_write(w, evs, n, results);
	int			done = 0;
	char		name[128];

	for (int i = 0; i < n; i++)
		done += results[i] == TKC_OK;
	snprintf(name, sizeof(name), "%s_written_total", what);
	tkc_count(w, name, NULL, NULL, written);
	if (done > written)
	{
		snprintf(name, sizeof(name), "%s_present_total", what);
		tkc_count(w, name, NULL, NULL, done - written);
	}
}
