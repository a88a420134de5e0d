/*-------------------------------------------------------------------------
 *
 * pause.c
 *	  waiting while staying in the group, and dependency outages
 *
 * Waiting (retry backoff, a dependency that is down, a sink that cannot
 * store an offset) never stops the consumer: tkc_wait_paused() pauses the
 * worker's partitions and keeps calling rd_kafka_consumer_poll(), so the
 * worker stays in the group and serves rebalances; anything polled
 * meanwhile is stashed (tkc_stash_push) and handled with the next batch.
 * An outage raises one alert when it starts (tkc_outage_begin) and one
 * when it ends, and shows on /healthz and /metrics meanwhile.
 *
 * Used by a batch (batch.c) and the worker loop (worker.c); it calls
 * only metrics.c and alert.c.
 *
 * IDENTIFICATION
 *	  consumers/runtime/pause.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "runtime.h"
#include "signals.h"

void
tkc_stash_push(tkc_worker *w, rd_kafka_message_t *m)
{
	if (w->nstash == w->cap_stash)
	{
		int			cap = w->cap_stash ? w->cap_stash * 2 : 256;
		rd_kafka_message_t **s = realloc(w->stash, sizeof(*s) * cap);

		if (s == NULL)
		{
			/* cannot keep it: it is redelivered, as its offset is not stored */
			tk_log(TK_LOG_ERROR, "out of memory: dropping a polled message, it will be redelivered");
			rd_kafka_message_destroy(m);
			return;
		}
		w->stash = s;
		w->cap_stash = cap;
	}
	w->stash[w->nstash++] = m;
}

void
tkc_set_paused(tkc_worker *w, bool pause)
{
	rd_kafka_topic_partition_list_t *parts = NULL;

	if (w->paused == pause)
		return;
	if (rd_kafka_assignment(w->consumer, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts)
	{
		if (parts->cnt > 0)
		{
			if (pause)
				rd_kafka_pause_partitions(w->consumer, parts);
			else
				rd_kafka_resume_partitions(w->consumer, parts);
		}
		rd_kafka_topic_partition_list_destroy(parts);
	}
	w->paused = pause;
}

/* a polled message that carries an error instead of data */
void
tkc_consumer_error(tkc_worker *w, rd_kafka_message_t *m)
{
	if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
		tk_log(TK_LOG_WARNING, "consumer %d: %s", w->index, rd_kafka_message_errstr(m));
	rd_kafka_message_destroy(m);
}

/* wait ms with the partitions paused, serving the group; false on shutdown */
bool
tkc_wait_paused(tkc_worker *w, int ms)
{
	int64_t		deadline = tk_monotonic_ms() + ms;

	tkc_set_paused(w, true);
	while (!tk_shutdown_requested)
	{
		int64_t		left = deadline - tk_monotonic_ms();
		rd_kafka_message_t *m;

		if (left <= 0)
			return true;
		m = rd_kafka_consumer_poll(w->consumer, left < 100 ? (int) left : 100);
		if (m == NULL)
			continue;
		if (m->err)
			tkc_consumer_error(w, m);
		else
			tkc_stash_push(w, m);
	}
	return false;
}

/* ---- outages ---- */

void
tkc_outage_begin(tkc_worker *w, const char *why)
{
	if (w->outage)
		return;
	w->outage = true;
	tkc_metrics_outage(w->index, true, why);
	tkc_alert(w->rt, "dependency_down",
			  "consumer %d pauses its partitions: %s; nothing is dead-lettered while it waits",
			  w->index, why);
}

void
tkc_outage_end(tkc_worker *w)
{
	if (!w->outage)
		return;
	w->outage = false;
	tkc_metrics_outage(w->index, false, NULL);
	tkc_alert(w->rt, "dependency_recovered", "consumer %d resumes its partitions", w->index);
}

