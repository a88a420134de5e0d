/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  one consumer thread: poll, handle, retry, dead-letter, store offsets
 *
 * Each worker (--consumers N threads, or N processes, all in the service's
 * group; Kafka gives each member whole partitions) runs this loop:
 *
 *	 1. Collect a batch: up to batch_size messages, waiting at most 100 ms
 *		for the first (STYLE 31/38b: flags are checked often), taking first
 *		what was polled while the previous batch waited (the stash).
 *	 2. Read each as a CloudEvent (event.c) and let the service validate the
 *		fields it uses.  Invalid input can never succeed: it goes to the
 *		dead-letter topic at once, without retries (INVALID_INPUT).
 *	 3. Handle the rest: handle_batch() on all of them, or handle() one by
 *		one in offset order, stopping at the first event that did not
 *		finish, so one task's events keep their order.  Results:
 *		  OK    done;
 *		  DEAD  dead-lettered now (PERMANENT);
 *		  RETRY tried again after a backoff with jitter (retry_base_ms,
 *				doubling, capped at retry_max_ms); after max_attempts it is
 *				dead-lettered (RETRIES_EXHAUSTED) with an alert;
 *		  DOWN  a dependency is down: not the event's fault, no attempt is
 *				counted.  The worker pauses its partitions, raises an alert
 *				once, and tries again with capped backoff
 *				(outage_retry_max_ms) until it works, then resumes and says
 *				so.  The topic is never emptied into the dead-letter queue
 *				by an outage.  A database session that cannot be opened is
 *				the same outage, as is a dead letter Kafka will not take.
 *		While waiting the worker keeps calling rd_kafka_consumer_poll()
 *		(partitions paused), so it stays in the group and rebalances are
 *		served; anything polled meanwhile is stashed for the next batch.
 *	 4. Store offsets: for each partition, the offset after the last event
 *		of the batch, once EVERY event of the batch is done (handled or
 *		dead-lettered).  Auto commit sends them (runtime_config.c).  So an
 *		offset is stored only after its message was handled, and a crash
 *		at any point means "handle again from the last stored offset": at
 *		least once, no gap; the sinks make repeats harmless.
 * Partitions revoked while a batch was in hand (kafka.c) lose their
 * events from the batch and the stash without a stored offset: the new
 * owner handles them.
 *
 * Shutdown (SIGTERM): the handler call in progress finishes and its batch
 * completes unless it is waiting (retry backoff, outage), in which case
 * the unfinished events are left for the next owner; stored offsets are
 * committed synchronously, then rd_kafka_consumer_close() leaves the
 * group cleanly (STYLE 34) and the thread returns.
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

typedef enum item_state
{
	ITEM_PENDING,
	ITEM_DONE,					/* handled or dead-lettered: offset may be stored */
	ITEM_ABANDONED				/* partition revoked or shutdown: not stored */
} item_state;

typedef struct item
{
	rd_kafka_message_t *m;
	tkc_event	ev;
	cJSON	   *root;
	char	   *key;
	item_state	state;
	bool		invalid;		/* to the dead-letter topic, not the handler */
} item;

/* ---- accessors for services (consumer.h) ---- */

const void *
tkc_config(tkc_worker *w)
{
	return w->rt->svc_config;
}

void *
tkc_state(tkc_worker *w)
{
	return w->state;
}

void
tkc_set_state(tkc_worker *w, void *state)
{
	w->state = state;
}

int
tkc_worker_index(tkc_worker *w)
{
	return w->index;
}

const char *
tkc_group(tkc_worker *w)
{
	return w->rt->group;
}

PGconn *
tkc_pg(tkc_worker *w)
{
	return w->pg && PQstatus(w->pg) == CONNECTION_OK ? w->pg : NULL;
}

const char *
tkc_topic(tkc_worker *w, const char *stream)
{
	for (int i = 0; i < w->rt->nstreams; i++)
		if (strcmp(w->rt->streams[i], stream) == 0)
			return w->rt->topics[i];
	for (int i = 0; i < w->rt->nproduced; i++)
		if (strcmp(w->rt->produced[i], stream) == 0)
			return w->rt->produced_topics[i];
	if (strcmp(stream, TK_STREAM_DEAD_LETTER) == 0)
		return w->rt->dead_letter_topic;
	return NULL;
}

void
tkc_count(tkc_worker *w, const char *name, const char *label, const char *value,
		  double add)
{
	tkc_metrics_count(name, label, value, add);
}

tkc_result
tkc_pg_result(tkc_worker *w, const PGresult *res, tkc_event *ev)
{
	char		buf[400];

	switch (tk_pg_classify(w->pg, res))
	{
		case TK_PG_OK:
			return TKC_OK;
		case TK_PG_CONNECTION:
			tkc_fail(ev, "database unavailable: %s", tk_pg_error_text(w->pg, res, buf, sizeof(buf)));
			return TKC_DOWN;
		case TK_PG_SETUP:
			tkc_fail(ev, "database refuses the service's call (check the extension version "
					 "and the grants of role todo_kafka_consumer): %s",
					 tk_pg_error_text(w->pg, res, buf, sizeof(buf)));
			return TKC_DOWN;
		case TK_PG_DATA:
			tkc_fail(ev, "rejected by the database: %s", tk_pg_error_text(w->pg, res, buf, sizeof(buf)));
			return TKC_DEAD;
		case TK_PG_TRANSIENT:
			break;
	}
	tkc_fail(ev, "database error: %s", tk_pg_error_text(w->pg, res, buf, sizeof(buf)));
	return TKC_RETRY;
}

bool
tkc_produce(tkc_worker *w, const char *stream, const char *key, const char *value,
			size_t len, const tk_header *headers, int nheaders,
			char *errbuf, size_t errlen)
{
	const char *topic = tkc_topic(w, stream);

	if (topic == NULL)
	{
		snprintf(errbuf, errlen, "no topic known for stream \"%s\"", stream);
		return false;
	}
	if (w->producer == NULL &&
		(w->producer = tkc_producer_create(w->rt, errbuf, errlen)) == NULL)
		return false;
	return tkc_produce_sync(w->producer, topic, key, value, len, headers, nheaders,
							errbuf, errlen);
}

/* ---- the database session ---- */

/* a usable session, (re)connecting at most as often as the backoff allows */
static bool
ensure_pg(tkc_worker *w, char *why, size_t whylen)
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

static void
stash_push(tkc_worker *w, rd_kafka_message_t *m)
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

static void
set_paused(tkc_worker *w, bool pause)
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
static void
consumer_error(tkc_worker *w, rd_kafka_message_t *m)
{
	if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
		tk_log(TK_LOG_WARNING, "consumer %d: %s", w->index, rd_kafka_message_errstr(m));
	rd_kafka_message_destroy(m);
}

/* wait ms with the partitions paused, serving the group; false on shutdown */
static bool
wait_paused(tkc_worker *w, int ms)
{
	int64_t		deadline = tk_monotonic_ms() + ms;

	set_paused(w, true);
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
			consumer_error(w, m);
		else
			stash_push(w, m);
	}
	return false;
}

/* ---- outages ---- */

static void
outage_begin(tkc_worker *w, const char *why)
{
	if (w->outage)
		return;
	w->outage = true;
	tkc_metrics_outage(w->index, true, why);
	tkc_alert(w->rt, "dependency_down",
			  "consumer %d pauses its partitions: %s; nothing is dead-lettered while it waits",
			  w->index, why);
}

static void
outage_end(tkc_worker *w)
{
	if (!w->outage)
		return;
	w->outage = false;
	tkc_metrics_outage(w->index, false, NULL);
	tkc_alert(w->rt, "dependency_recovered", "consumer %d resumes its partitions", w->index);
}

/* ---- revocations ---- */

static bool
is_revoked(tkc_worker *w, const char *topic, int32_t partition)
{
	return rd_kafka_topic_partition_list_find(w->revoked, topic, partition) != NULL;
}

static void
drop_revoked(tkc_worker *w, item *b, int n)
{
	int			kept = 0;

	if (w->revoked->cnt == 0)
		return;
	for (int i = 0; i < n; i++)
		if (b[i].state == ITEM_PENDING &&
			is_revoked(w, rd_kafka_topic_name(b[i].m->rkt), b[i].m->partition))
			b[i].state = ITEM_ABANDONED;
	for (int i = 0; i < w->nstash; i++)
	{
		rd_kafka_message_t *m = w->stash[i];

		if (is_revoked(w, rd_kafka_topic_name(m->rkt), m->partition))
			rd_kafka_message_destroy(m);
		else
			w->stash[kept++] = m;
	}
	w->nstash = kept;
}

/* ---- one batch ---- */

/* dead-letter b and mark it done; false when Kafka would not take it */
static bool
dead_letter(tkc_worker *w, item *it, const char *kind)
{
	if (!tkc_dead_letter(w, it->m, &it->ev, kind))
		return false;
	it->state = ITEM_DONE;
	return true;
}

static int
collect(tkc_worker *w, item *b, int max)
{
	int			n = 0;
	int			from_stash = w->nstash < max ? w->nstash : max;

	for (int i = 0; i < from_stash; i++)
		b[n++].m = w->stash[i];
	memmove(w->stash, w->stash + from_stash, sizeof(*w->stash) * (w->nstash - from_stash));
	w->nstash -= from_stash;

	while (n < max && !tk_shutdown_requested)
	{
		rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, n == 0 ? 100 : 0);

		if (m == NULL)
			break;
		if (m->err)
		{
			consumer_error(w, m);
			continue;
		}
		b[n++].m = m;
	}
	for (int i = 0; i < n; i++)
	{
		b[i].root = NULL;
		b[i].key = NULL;
		b[i].state = ITEM_PENDING;
		b[i].invalid = false;
	}
	return n;
}

/* run the handler on the pending items; fills res[] in item order */
static void
run_handler(tkc_worker *w, item *b, int n, int *idx, int np, tkc_result *res)
{
	const tkc_service *svc = w->rt->svc;
	int64_t		t0 = tk_wall_us();

	if (svc->handle_batch)
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
		svc->handle_batch(w, evs, np, res);
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
		res[k] = svc->handle(w, &b[idx[k]].ev);
		tkc_metrics_handled(b[idx[k]].ev.topic, res[k], (double) (tk_wall_us() - t1) / 1e6);
		if (res[k] == TKC_RETRY || res[k] == TKC_DOWN)
		{
			for (int j = k + 1; j < np; j++)
				res[j] = -1;	/* not tried */
			break;
		}
	}
	(void) n;
}

static void
process(tkc_worker *w, item *b, int n)
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

		drop_revoked(w, b, n);
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
				item	   *it = &b[idx[k]];

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
		if (!down && np > 0 && !ensure_pg(w, why, sizeof(why)))
			down = true;
		else if (!down)
		{
			if (!down && np > 0)
				run_handler(w, b, n, idx, np, res);
			for (int k = 0; !down && k < np; k++)
			{
				item	   *it = &b[idx[k]];

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
			outage_begin(w, why);
			if (!wait_paused(w, tk_backoff_next(&down_backoff)))
				break;
			continue;
		}
		if (w->outage)
		{
			outage_end(w);
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
			if (tk_shutdown_requested || !wait_paused(w, delay))
				break;
		}
	}
	/* shutdown while waiting: whatever is unfinished belongs to the next owner */
	for (int i = 0; i < n; i++)
		if (b[i].state == ITEM_PENDING)
			b[i].state = ITEM_ABANDONED;
	if (w->outage && !tk_shutdown_requested)
		outage_end(w);
	set_paused(w, false);
	free(idx);
	free(res);
}

/* store, per partition, the offset after the batch's last message */
static void
store_offsets(tkc_worker *w, item *b, int n)
{
	rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(8);
	rd_kafka_resp_err_t err;

	/* a partition with an abandoned message stores nothing past it */
	for (int i = 0; i < n; i++)
	{
		rd_kafka_topic_partition_t *p;
		const char *topic = rd_kafka_topic_name(b[i].m->rkt);

		p = rd_kafka_topic_partition_list_find(offs, topic, b[i].m->partition);
		if (p == NULL)
		{
			p = rd_kafka_topic_partition_list_add(offs, topic, b[i].m->partition);
			p->offset = RD_KAFKA_OFFSET_INVALID;
			p->opaque = NULL;
		}
		if (p->opaque)			/* blocked by an abandoned message */
			continue;
		if (b[i].state == ITEM_DONE)
			p->offset = b[i].m->offset + 1;
		else
			p->opaque = (void *) 1;
	}
	{
		rd_kafka_topic_partition_list_t *store = rd_kafka_topic_partition_list_new(offs->cnt);

		for (int i = 0; i < offs->cnt; i++)
			if (offs->elems[i].offset >= 0)
				rd_kafka_topic_partition_list_add(store, offs->elems[i].topic,
												  offs->elems[i].partition)->offset = offs->elems[i].offset;
		if (store->cnt > 0 && (err = rd_kafka_offsets_store(w->consumer, store)) != 0)
			tk_log(TK_LOG_DEBUG, "consumer %d: offsets not stored (%s): partitions moved",
				   w->index, rd_kafka_err2str(err));
		rd_kafka_topic_partition_list_destroy(store);
	}
	rd_kafka_topic_partition_list_destroy(offs);
}

static void
free_batch(item *b, int n)
{
	for (int i = 0; i < n; i++)
	{
		cJSON_Delete(b[i].root);
		free(b[i].key);
		rd_kafka_message_destroy(b[i].m);
	}
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

void *
tkc_worker_run(void *arg)
{
	tkc_worker *w = arg;
	tkc_runtime *rt = w->rt;
	char		err[512];
	char		why[512];
	item	   *batch = calloc(rt->rc.batch_size, sizeof(item));

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
	(void) ensure_pg(w, why, sizeof(why));	/* early, so init errors show at once */

	while (!tk_shutdown_requested)
	{
		int			n = collect(w, batch, rt->rc.batch_size);

		if (n > 0)
		{
			process(w, batch, n);
			drop_revoked(w, batch, n);
			store_offsets(w, batch, n);
			free_batch(batch, n);
			rd_kafka_topic_partition_list_destroy(w->revoked);
			w->revoked = rd_kafka_topic_partition_list_new(8);
		}
		if (w->index == 0 && rt->svc->periodic && tk_monotonic_ms() >= w->next_periodic_ms)
		{
			w->next_periodic_ms = tk_monotonic_ms() + rt->svc->periodic_ms;
			if (ensure_pg(w, why, sizeof(why)))
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
