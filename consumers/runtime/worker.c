/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  one consumer thread: its session, its waits, its life from start to
 *	  leaving the group
 *
 * A worker owns one librdkafka consumer (kafka.c), one PostgreSQL session
 * (tkc_ensure_pg: reconnect with capped backoff; the service's init runs
 * once, after the first session is up) and, when needed, one producer.
 * Its loop takes one batch at a time (batch.c explains a batch: validate,
 * handle, retry, dead-letter, store offsets), then runs the service's
 * periodic housekeeping (worker 0 only).
 *
 * Waiting (retry backoff, a dependency that is down) never stops the
 * consumer: tkc_wait_paused() pauses the worker's partitions and keeps
 * calling rd_kafka_consumer_poll(), so the worker stays in the group and
 * serves rebalances; anything polled meanwhile is stashed for the next
 * batch.  An outage raises one alert when it starts (tkc_outage_begin) and
 * one when it ends, and shows on /healthz meanwhile.
 *
 * Shutdown (SIGTERM): the batch in hand completes unless it is waiting, in
 * which case its unfinished events are left for the next owner; stored
 * offsets are committed synchronously, then rd_kafka_consumer_close()
 * leaves the group cleanly (STYLE 34) and the thread returns.
 *
 * IDENTIFICATION
 *	  consumers/runtime/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "pg.h"
#include "runtime.h"
#include "signals.h"

/* ---- the database session ---- */

/* a usable session, (re)connecting at most as often as the backoff allows */
bool
tkc_ensure_pg(tkc_worker *w, char *why, size_t whylen)
{
	int64_t		now = tk_monotonic_ms();
	char		err[512];

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
	if (!w->initialized && w->rt->svc->init)
	{
		if (!w->rt->svc->init(w, err, sizeof(err)))
		{
			tk_log(TK_LOG_FATAL, "%s: %s", w->rt->program, err);
			w->exit_code = TK_EXIT_FAILURE;
			tk_shutdown_requested = 1;
			snprintf(why, whylen, "service could not start: %.400s", err);
			return false;
		}
	}
	w->initialized = true;
	return true;
}

/* ---- waiting while staying in the group ---- */

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

/* how many partitions the consumed topics have; warn when N exceeds them */
static void
check_partitions(tkc_worker *w)
{
	tkc_runtime *rt = w->rt;
	int			most = 0;

	for (int i = 0; i < rt->nstreams; i++)
	{
		rd_kafka_topic_t *rkt = rd_kafka_topic_new(w->consumer, rt->topics[i], NULL);
		const struct rd_kafka_metadata *md = NULL;

		if (rkt && rd_kafka_metadata(w->consumer, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			if (md->topic_cnt == 1 && md->topics[0].partition_cnt > most)
				most = md->topics[0].partition_cnt;
			rd_kafka_metadata_destroy(md);
		}
		if (rkt)
			rd_kafka_topic_destroy(rkt);
	}
	if (most > 0 && rt->rc.consumers > most)
		tk_log(TK_LOG_WARNING, "%d consumers but the topics have at most %d partitions: "
			   "%d consumer%s will stay idle (each consumer owns whole partitions)",
			   rt->rc.consumers, most, rt->rc.consumers - most,
			   rt->rc.consumers - most == 1 ? "" : "s");
}

/*
 * The service's setup hook, in the main thread, before the workers start:
 * a worker of index -1 with its own session (svc->init is not run for it)
 * and no consumer.  Returns TKC_SETUP_CONTINUE or an exit code.
 */
int
tkc_run_setup(tkc_runtime *rt)
{
	tkc_worker	w;
	char		why[512];
	int			rc;

	if (rt->svc->setup == NULL)
		return TKC_SETUP_CONTINUE;
	memset(&w, 0, sizeof(w));
	w.rt = rt;
	w.index = -1;
	w.initialized = true;
	tk_backoff_init(&w.pg_backoff, 200, rt->rc.outage_retry_max_ms, (uint64_t) getpid());
	while (!tkc_ensure_pg(&w, why, sizeof(why)))
	{
		if (tk_shutdown_requested)
			return TK_EXIT_OK;
		tk_log(TK_LOG_WARNING, "setup: %s", why);
		usleep(200 * 1000);
	}
	rc = rt->svc->setup(&w);
	if (w.producer)
		rd_kafka_destroy(w.producer);
	if (w.pg)
		PQfinish(w.pg);
	return rc;
}

void *
tkc_worker_run(void *arg)
{
	tkc_worker *w = arg;
	tkc_runtime *rt = w->rt;
	char		err[512];
	char		why[512];
	tkc_item	   *batch = calloc(rt->rc.batch_size, sizeof(tkc_item));

	w->revoked = rd_kafka_topic_partition_list_new(8);
	tk_backoff_init(&w->pg_backoff, 200, rt->rc.outage_retry_max_ms, (uint64_t) getpid() * 31 + w->index);
	w->rng = (uint64_t) tk_wall_us() ^ ((uint64_t) w->index << 32) ^ 0x9E3779B97F4A7C15ULL;
	w->consumer = tkc_consumer_create(w, err, sizeof(err));
	if (w->consumer == NULL || batch == NULL)
	{
		tk_log(TK_LOG_FATAL, "consumer %d: %s", w->index, batch ? err : "out of memory");
		w->exit_code = TK_EXIT_FAILURE;
		tk_shutdown_requested = 1;
		free(batch);
		return NULL;
	}
	if (w->index == 0)
		check_partitions(w);
	(void) tkc_ensure_pg(w, why, sizeof(why));	/* early, so init errors show at once */

	while (!tk_shutdown_requested)
	{
		int			n = tkc_batch_collect(w, batch, rt->rc.batch_size);

		if (n > 0)
		{
			tkc_batch_process(w, batch, n);
			tkc_drop_revoked(w, batch, n);
			tkc_batch_sink_dead_letters(w, batch, n);
			tkc_batch_store_offsets(w, batch, n);
			tkc_batch_free(batch, n);
			w->nhand = 0;
			rd_kafka_topic_partition_list_destroy(w->revoked);
			w->revoked = rd_kafka_topic_partition_list_new(8);
		}
		if (w->index == 0 && rt->svc->periodic && tk_monotonic_ms() >= w->next_periodic_ms)
		{
			w->next_periodic_ms = tk_monotonic_ms() + rt->svc->periodic_ms;
			if (tkc_ensure_pg(w, why, sizeof(why)))
				rt->svc->periodic(w);
		}
	}

	/* leave cleanly: commit what was stored, then leave the group */
	for (int i = 0; i < w->nstash; i++)
		rd_kafka_message_destroy(w->stash[i]);
	w->nstash = 0;
	{
		rd_kafka_resp_err_t err = rd_kafka_commit(w->consumer, NULL, 0);

		/* __NO_OFFSET: auto commit already sent everything stored */
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
			tk_log(TK_LOG_INFO, "consumer %d: offsets committed", w->index);
		else
			tk_log(TK_LOG_WARNING, "consumer %d: final commit failed: %s (the next owner "
				   "handles the last messages again)", w->index, rd_kafka_err2str(err));
	}
	rd_kafka_consumer_close(w->consumer);
	rd_kafka_destroy(w->consumer);
	if (w->producer)
	{
		rd_kafka_flush(w->producer, rt->rc.produce_timeout_ms);
		rd_kafka_destroy(w->producer);
	}
	if (rt->svc->fini)
		rt->svc->fini(w);
	if (w->pg)
		PQfinish(w->pg);
	rd_kafka_topic_partition_list_destroy(w->revoked);
	free(w->stash);
	free(batch);
	return NULL;
}
