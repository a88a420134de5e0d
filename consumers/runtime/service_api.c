/*-------------------------------------------------------------------------
 *
 * service_api.c
 *	  what a service's handler may call (consumer.h): its settings and
 *	  state, its session, topics, output messages, metrics, watermarks
 *
 * Everything here runs on the calling worker's thread and touches only
 * that worker (or the read-only runtime), so handlers need no locks.
 * tkc_pg_result() is the one place that turns a PostgreSQL outcome into a
 * runtime result (common/pg.c classifies the SQLSTATE): a connection lost
 * or a deployment problem is TKC_DOWN (pause, never dead-letter), bad data
 * TKC_DEAD, anything else TKC_RETRY.
 *
 * IDENTIFICATION
 *	  consumers/runtime/service_api.c
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

bool
tkc_last_attempt(tkc_worker *w, const tkc_event *ev)
{
	return ev->attempt >= w->rt->rc.max_attempts;
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

void
tkc_gauge(tkc_worker *w, const char *name, double value)
{
	tkc_metrics_gauge(name, value);
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
					 "and that the service's login is a member of %s): %s",
					 w->rt->svc->db_role, tk_pg_error_text(w->pg, res, buf, sizeof(buf)));
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

/* a statement returning one integer; its outcome as tkc_pg_result */
static tkc_result
pg_count(tkc_worker *w, const char *sql, int nparams, const char *const *params,
			 tkc_event *ev, int *count)
{
	PGresult   *res = PQexecParams(tkc_pg(w), sql, nparams, NULL, params, NULL, NULL, 0);
	tkc_result	r = tkc_pg_result(w, res, ev);

	if (r == TKC_OK)
		*count = PQntuples(res) > 0 ? atoi(PQgetvalue(res, 0, 0)) : 0;
	PQclear(res);
	return r;
}

tkc_result
tkc_pg_count_array(tkc_worker *w, const char *sql, int nparams, const char *const *params,
				   tk_strbuf *arr, tkc_event *ev, int *count)
{
	const char *all[TKC_PG_MAX_PARAMS];
	tkc_result	r;

	tk_strbuf_putc(arr, ']');
	if (arr->oom || nparams >= TKC_PG_MAX_PARAMS)
	{
		tkc_fail(ev, arr->oom ? "out of memory" : "too many parameters");
		tk_strbuf_free(arr);
		return TKC_RETRY;
	}
	for (int i = 0; i < nparams; i++)
		all[i] = params[i];
	all[nparams] = arr->data;
	r = pg_count(w, sql, nparams + 1, all, ev, count);
	tk_strbuf_free(arr);
	return r;
}

bool
tkc_produce_begin(tkc_worker *w, tkc_acks *acks, const char *stream, const char *key,
				  const char *value, size_t len, const tk_header *headers, int nheaders,
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
	return tkc_produce_start(w->producer, acks, topic, key, value, len, headers, nheaders,
							 errbuf, errlen);
}

bool
tkc_produce_end(tkc_worker *w, tkc_acks *acks, char *errbuf, size_t errlen)
{
	if (w->producer == NULL)	/* nothing was begun */
		return acks->pending == 0 && acks->err == 0;
	return tkc_produce_wait(w->producer, acks, errbuf, errlen);
}

bool
tkc_produce(tkc_worker *w, const char *stream, const char *key, const char *value,
			size_t len, const tk_header *headers, int nheaders,
			char *errbuf, size_t errlen)
{
	tkc_acks	acks = {0, 0};
	bool		begun = tkc_produce_begin(w, &acks, stream, key, value, len, headers,
										  nheaders, errbuf, errlen);

	return tkc_produce_end(w, &acks, errbuf, errlen) && begun;
}

/* the handle to ask the broker with: the consumer, else the producer */
static rd_kafka_t *
query_handle(tkc_worker *w, char *errbuf, size_t errlen)
{
	if (w->consumer)
		return w->consumer;
	if (w->producer == NULL)
		w->producer = tkc_producer_create(w->rt, errbuf, errlen);
	return w->producer;
}

bool
tkc_watermarks(tkc_worker *w, const char *topic, int32_t partition, int64_t *low,
			   int64_t *high, char *errbuf, size_t errlen)
{
	rd_kafka_t *rk = query_handle(w, errbuf, errlen);
	rd_kafka_resp_err_t err;

	if (rk == NULL)
		return false;
	err = rd_kafka_query_watermark_offsets(rk, topic, partition, low, high, 10000);
	if (err)
	{
		snprintf(errbuf, errlen, "cannot learn the offsets of %s[%d]: %s", topic,
				 (int) partition, rd_kafka_err2str(err));
		return false;
	}
	return true;
}

int
tkc_partition_count(tkc_worker *w, const char *topic, char *errbuf, size_t errlen)
{
	rd_kafka_t *rk = query_handle(w, errbuf, errlen);
	rd_kafka_topic_t *rkt;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err;
	int			n = -1;

	if (rk == NULL)
		return -1;
	rkt = rd_kafka_topic_new(rk, topic, NULL);
	if (rkt == NULL)
	{
		snprintf(errbuf, errlen, "cannot use topic %s", topic);
		return -1;
	}
	err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
	if (err)
		snprintf(errbuf, errlen, "cannot read the metadata of %s: %s", topic, rd_kafka_err2str(err));
	else if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt <= 0)
		snprintf(errbuf, errlen, "topic %s is not known to the brokers%s%s", topic,
				 md->topic_cnt == 1 && md->topics[0].err ? ": " : "",
				 md->topic_cnt == 1 && md->topics[0].err ? rd_kafka_err2str(md->topics[0].err) : "");
	else
		n = md->topics[0].partition_cnt;
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	return n;
}
