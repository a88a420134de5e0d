/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  one consumer thread: its session, its waits, its life from start to
 *	  leaving the group
 *
 * A worker owns one librdkafka consumer (kafka.c), one PostgreSQL session
 * (session.c: reconnect with capped backoff; the service's init runs once,
 * after the first session is up) and, when needed, one producer.  Its
 * loop takes one batch at a time (batch.c explains a batch: validate,
 * handle, retry, dead-letter, store offsets), then runs the service's
 * periodic housekeeping (worker 0 only).  Waits and outages are pause.c's.
 * The setup worker (tkc_run_setup) is the other life a worker has: one
 * session, no consumer, the service's setup hook in the main thread.
 * This file calls those; none of them calls back into it.
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
	w.service_initialized = true;	/* the setup worker runs no init */
	tk_backoff_init(&w.pg_backoff, 200, rt->rc.outage_retry_max_ms, (uint64_t) getpid());
	while (!tkc_session_connect(&w, why, sizeof(why)))
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
	/* early, so init errors show at once */
	if (tkc_session_connect(w, why, sizeof(why)))
		(void) tkc_service_init_or_stop(w, why, sizeof(why));

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
			if (tkc_session_connect(w, why, sizeof(why)) &&
				tkc_service_init_or_stop(w, why, sizeof(why)))
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
