/*-------------------------------------------------------------------------
 *
 * batch.c
 *	  one batch of a worker: collect, validate, handle, retry, dead-letter,
 *	  store offsets
 *
 * Each worker (worker.c) owns whole partitions and runs one batch at a time:
 *	 1. Collect up to batch_size messages, the stash first (what was polled
 *		while the last batch waited), waiting <= 100 ms (STYLE 31).
 *	 2. Read each as a CloudEvent (event.c); the service validates it, and
 *		invalid input is dead-lettered at once (INVALID_INPUT).
 *	 3. Handle: a sink service's sink on all (sink.c), else handle() one by
 *		one in offset order.  OK: done.  DEAD: dead-lettered (PERMANENT).
 *		RETRY: again after a capped, jittered backoff; after max_attempts
 *		dead-lettered (RETRIES_EXHAUSTED).  DOWN: a dependency is down, no
 *		attempt counted, never dead-lettered: pause and retry (pause.c).
 *		NOT_TRIED: an earlier event of its partition got RETRY or DOWN, so
 *		it waits (a sink must not apply offset n+1 before n).
 *	 4. Store offsets only once EVERY event of the batch is done
 *		(batch_offsets.c): a crash means "again from the last stored offset",
 *		at least once, no gap.  A sink keeping its own offsets is told of a
 *		partition whose last event was dead-lettered (skip_dead_letter).
 * Events of partitions revoked mid-batch are dropped unstored (revoked.c).
 * SIGTERM: the handler call in progress finishes; a waiting batch is left
 * to the next owner; offsets are committed, then the consumer closes
 * (STYLE 34).  Everything here runs on the worker's own thread.
 *
 * IDENTIFICATION
 *	  consumers/runtime/batch.c
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

/* ---- one batch ---- */

static void
item_init(tkc_item *it, rd_kafka_message_t *m)
{
	it->m = m;
	it->root = NULL;
	it->key = NULL;
	it->state = ITEM_PENDING;
	it->invalid = false;
	it->dead_lettered = false;
}

/* dead-letter b and mark it done; false when Kafka would not take it */
static bool
dead_letter(tkc_worker *w, tkc_item *it, const char *kind)
{
	if (!tkc_dead_letter(w, it->m, &it->ev, kind))
		return false;
	it->state = ITEM_DONE;
	it->dead_lettered = true;
	return true;
}

int
tkc_batch_collect(tkc_worker *w, tkc_item *b, int max)
{
	int			n = 0;
	int			from_stash = w->nstash < max ? w->nstash : max;

	w->hand = b;
	for (int i = 0; i < from_stash; i++)
		item_init(&b[n++], w->stash[i]);
	memmove(w->stash, w->stash + from_stash, sizeof(*w->stash) * (w->nstash - from_stash));
	w->nstash -= from_stash;
	w->nhand = n;

	while (n < max && !tk_shutdown_requested)
	{
		rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, n == 0 ? 100 : 0);

		if (m == NULL)
			break;
		if (m->err)
		{
			tkc_consumer_error(w, m);
			continue;
		}
		item_init(&b[n++], m);
		w->nhand = n;			/* in hand at once: a rebalance may come next */
	}
	return n;
}

/* run the handler on the pending items; fills res[] in item order */
static void
run_handler(tkc_worker *w, tkc_item *b, int n, int *idx, int np, tkc_result *res)
{
	const tkc_service *svc = w->rt->svc;
	int64_t		t0 = tk_wall_us();

	if (svc->sink)
	{
		tkc_event **evs = malloc(sizeof(*evs) * np);

		if (evs == NULL)
		{
			for (int k = 0; k < np; k++)
			{
				res[k] = TKC_RETRY;
				tkc_fail(&b[idx[k]].ev, "out of memory");
			}
			return;
		}
		for (int k = 0; k < np; k++)
		{
			evs[k] = &b[idx[k]].ev;
			evs[k]->error[0] = '\0';
			res[k] = TKC_RETRY;
		}
		{
			uint64_t	start_ns = tk_unix_ns();

			tkc_sink_run(w, evs, np, res);
			tkc_trace_sink(w, evs, np, res, start_ns);
		}
		free(evs);
		for (int k = 0; k < np; k++)
			tkc_metrics_handled(b[idx[k]].ev.topic, res[k],
								(double) (tk_wall_us() - t0) / 1e6 / np);
		return;
	}
	/* one by one, in order; stop at the first that did not finish */
	for (int k = 0; k < np; k++)
	{
		int64_t		t1 = tk_wall_us();

		b[idx[k]].ev.error[0] = '\0';
		tkc_trace_begin(w, &b[idx[k]].ev);
		res[k] = svc->handle(w, &b[idx[k]].ev);
		tkc_trace_end(w, &b[idx[k]].ev, res[k]);
		tkc_metrics_handled(b[idx[k]].ev.topic, res[k], (double) (tk_wall_us() - t1) / 1e6);
		if (tkc_result_stops_round(res[k]))
		{
			for (int j = k + 1; j < np; j++)
				res[j] = TKC_NOT_TRIED;
			break;
		}
	}
	(void) n;
}

void
tkc_batch_process(tkc_worker *w, tkc_item *b, int n)
{
	tkc_runtime *rt = w->rt;
	int		   *idx = malloc(sizeof(int) * n);
	tkc_result *res = malloc(sizeof(tkc_result) * n);
	tk_backoff	down_backoff;

	tk_backoff_init(&down_backoff, 200, rt->rc.outage_retry_max_ms, w->rng++);
	if (idx == NULL || res == NULL)
	{
		/* nothing is stored: the batch is redelivered */
		for (int i = 0; i < n; i++)
			b[i].state = ITEM_ABANDONED;
		free(idx);
		free(res);
		return;
	}

	/* envelope and service checks: invalid input is dead-lettered at once */
	for (int i = 0; i < n; i++)
	{
		bool		valid = tkc_event_parse(&b[i].ev, b[i].m, &b[i].root, &b[i].key);

		if (valid && rt->svc->validate)
			valid = rt->svc->validate(rt->svc_config, &b[i].ev);
		if (!valid)
		{
			tk_log(TK_LOG_WARNING, "invalid message %s[%d]@%lld: %s", b[i].ev.topic,
				   (int) b[i].ev.partition, (long long) b[i].ev.offset, b[i].ev.error);
			b[i].invalid = true;
		}
	}

	for (;;)
	{
		int			np = 0;
		bool		down = false;
		bool		retry = false;
		int			retry_attempt = 0;
		char		why[512] = "";

		tkc_drop_revoked(w, b, n);
		for (int i = 0; i < n; i++)
			if (b[i].state == ITEM_PENDING)
				idx[np++] = i;
		if (np == 0)
			break;

		/* invalid input goes to the dead-letter topic, the rest to the handler */
		{
			int			nh = 0;

			for (int k = 0; k < np; k++)
			{
				tkc_item	   *it = &b[idx[k]];

				if (!it->invalid)
					idx[nh++] = idx[k];
				else if (!dead_letter(w, it, "INVALID_INPUT"))
				{
					down = true;
					snprintf(why, sizeof(why), "Kafka does not take dead letters");
				}
			}
			np = nh;
		}
		if (!down && np > 0 && !(tkc_session_connect(w, why, sizeof(why)) &&
								 tkc_service_init_or_stop(w, why, sizeof(why))))
			down = true;
		else if (!down)
		{
			if (!down && np > 0)
				run_handler(w, b, n, idx, np, res);
			for (int k = 0; !down && k < np; k++)
			{
				tkc_item	   *it = &b[idx[k]];

				switch ((int) res[k])
				{
					case TKC_OK:
						it->state = ITEM_DONE;
						break;
					case TKC_DEAD:
						if (!dead_letter(w, it, "PERMANENT"))
						{
							down = true;
							snprintf(why, sizeof(why), "Kafka does not take dead letters");
						}
						break;
					case TKC_RETRY:
						if (it->ev.attempt >= rt->rc.max_attempts)
						{
							if (!dead_letter(w, it, "RETRIES_EXHAUSTED"))
							{
								down = true;
								snprintf(why, sizeof(why), "Kafka does not take dead letters");
							}
							break;
						}
						tk_log(TK_LOG_WARNING, "%s[%d]@%lld failed (attempt %d of %d), will retry: %s",
							   it->ev.topic, (int) it->ev.partition, (long long) it->ev.offset,
							   it->ev.attempt, rt->rc.max_attempts, it->ev.error);
						tkc_metrics_retried(it->ev.topic);
						if (it->ev.attempt > retry_attempt)
							retry_attempt = it->ev.attempt;
						it->ev.attempt++;
						retry = true;
						break;
					case TKC_DOWN:
						if (!down)
							snprintf(why, sizeof(why), "%s", it->ev.error[0] ? it->ev.error : "a dependency is down");
						down = true;
						break;
					default:	/* not tried this round */
						break;
				}
			}
		}

		if (down)
		{
			if (tk_shutdown_requested)
				break;
			tkc_outage_begin(w, why);
			if (!tkc_wait_paused(w, tk_backoff_next(&down_backoff)))
				break;
			continue;
		}
		if (w->outage)
		{
			tkc_outage_end(w);
			tk_backoff_reset(&down_backoff);
		}
		if (retry)
		{
			int			delay;

			w->rng ^= w->rng << 13;
			w->rng ^= w->rng >> 7;
			w->rng ^= w->rng << 17;
			delay = tk_backoff_delay(retry_attempt - 1, rt->rc.retry_base_ms, rt->rc.retry_max_ms,
									 (double) (w->rng >> 11) / (double) (1ULL << 53));
			if (tk_shutdown_requested || !tkc_wait_paused(w, delay))
				break;
		}
	}
	/* shutdown while waiting: whatever is unfinished belongs to the next owner */
	for (int i = 0; i < n; i++)
		if (b[i].state == ITEM_PENDING)
			b[i].state = ITEM_ABANDONED;
	if (w->outage && !tk_shutdown_requested)
		tkc_outage_end(w);
	tkc_set_paused(w, false);
	free(idx);
	free(res);
}

/* the batch's messages as batch_offsets.c sees them; NULL when out of memory */
static tkc_msg_pos *
batch_positions(tkc_item *b, int n)
{
	tkc_msg_pos *pos = malloc(sizeof(*pos) * (n > 0 ? n : 1));

	if (pos == NULL)
		return NULL;
	for (int i = 0; i < n; i++)
	{
		pos[i].topic = rd_kafka_topic_name(b[i].m->rkt);
		pos[i].partition = b[i].m->partition;
		pos[i].offset = b[i].m->offset;
		pos[i].done = b[i].state == ITEM_DONE;
	}
	return pos;
}

/*
 * Tell a service that keeps its offsets in its sink
 * (svc->stored_offsets->skip_dead_letter) about each partition whose last finished message was dead-lettered: the
 * sink never saw it, so its stored offset would stay before it and a
 * restart would dead-letter it again.  Runs after the whole batch is
 * finished, so the sink never hears of offset n+1 before n was written
 * (invalid input is dead-lettered before the handler runs for the earlier
 * messages of its round).  A sink that cannot be written is waited for
 * like a dependency that is down.
 */
void
tkc_batch_sink_dead_letters(tkc_worker *w, tkc_item *b, int n)
{
	const tkc_service *svc = w->rt->svc;
	tk_backoff	backoff;
	tkc_msg_pos *pos;

	if (svc->stored_offsets == NULL)
		return;
	if ((pos = batch_positions(b, n)) == NULL)
	{
		tk_log(TK_LOG_WARNING, "consumer %d: out of memory: the sink is not told of this batch's dead letters (a restart dead-letters them again)",
			   w->index);
		return;
	}
	tk_backoff_init(&backoff, 200, w->rt->rc.outage_retry_max_ms, w->rng++);
	for (int i = 0; i < n; i++)
	{
		tkc_item   *it = &b[i];

		if (it->state != ITEM_DONE || !it->dead_lettered || !tkc_last_done_of_partition(pos, n, i))
			continue;
		for (;;)
		{
			char		why[512];

			/* revoked: the new owner starts before it and dead-letters it again */
			if (tkc_is_revoked(w, it->ev.topic, it->ev.partition))
				break;
			if (tkc_session_connect(w, why, sizeof(why)) &&
				tkc_service_init_or_stop(w, why, sizeof(why)))
			{
				it->ev.error[0] = '\0';
				if (svc->stored_offsets->skip_dead_letter(w, &it->ev) == TKC_OK)
					break;
				snprintf(why, sizeof(why), "cannot store the offset after dead letter %s[%d]@%lld: %s",
						 it->ev.topic, (int) it->ev.partition, (long long) it->ev.offset,
						 it->ev.error[0] ? it->ev.error : "unknown error");
			}
			if (tk_shutdown_requested)
			{
				tk_log(TK_LOG_WARNING, "%s (shutting down: it will be dead-lettered again)", why);
				break;
			}
			tkc_outage_begin(w, why);
			if (!tkc_wait_paused(w, tk_backoff_next(&backoff)))
				break;
		}
	}
	free(pos);
	if (w->outage && !tk_shutdown_requested)
		tkc_outage_end(w);
	tkc_set_paused(w, false);
}

/* store, per partition, the offset after the batch's last message (batch_offsets.c) */
void
tkc_batch_store_offsets(tkc_worker *w, tkc_item *b, int n)
{
	tkc_msg_pos *pos = batch_positions(b, n);
	tkc_msg_pos *offs = malloc(sizeof(*offs) * (n > 0 ? n : 1));
	int			nstore = pos && offs ? tkc_offsets_to_store(pos, n, offs) : -1;
	rd_kafka_resp_err_t err;

	if (nstore < 0)
		tk_log(TK_LOG_WARNING, "consumer %d: out of memory: offsets not stored (the batch is handled again)",
			   w->index);
	if (nstore > 0)
	{
		rd_kafka_topic_partition_list_t *store = rd_kafka_topic_partition_list_new(nstore);

		for (int i = 0; i < nstore; i++)
			rd_kafka_topic_partition_list_add(store, offs[i].topic, offs[i].partition)->offset =
				offs[i].offset;
		if ((err = rd_kafka_offsets_store(w->consumer, store)) != 0)
			tk_log(TK_LOG_DEBUG, "consumer %d: offsets not stored (%s): partitions moved",
				   w->index, rd_kafka_err2str(err));
		rd_kafka_topic_partition_list_destroy(store);
	}
	free(pos);
	free(offs);
}

void
tkc_batch_free(tkc_item *b, int n)
{
	for (int i = 0; i < n; i++)
	{
		cJSON_Delete(b[i].root);
		free(b[i].key);
		rd_kafka_message_destroy(b[i].m);
	}
}
