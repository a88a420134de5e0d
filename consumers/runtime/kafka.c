/*-------------------------------------------------------------------------
 *
 * kafka.c
 *	  the consumer and producer of a worker, and a produce that waits
 *
 * Every worker thread owns one consumer (group <prefix><service>) and, made
 * when first needed, one producer for dead letters and for services that
 * emit messages (the notification fan-out).  Nothing librdkafka calls back
 * is shared between workers.
 *
 * Rebalances (STYLE 38c): cooperative-sticky by default, so the callback
 * uses rd_kafka_incremental_assign/unassign (and the eager calls when the
 * user chose an eager strategy).  The callback runs inside
 * rd_kafka_consumer_poll() on the worker's own thread, i.e. between two
 * messages or while the worker waits (retry backoff, outage): it never
 * interrupts a handler.  Partitions revoked while a batch is in hand are
 * recorded in w->revoked; worker.c drops that batch's events of those
 * partitions without storing their offsets, so the new owner handles them
 * (at-least-once; the sinks absorb the repeat).  While the worker is
 * paused for an outage, newly assigned partitions are paused too.
 *
 * A service that keeps its offsets in its own sink (svc->stored_offsets, the
 * projector, the audit service) gives each newly assigned partition its start offset here,
 * before it is assigned (set_start_offsets); the group's committed offsets
 * are then never used to position it.
 *
 * tkc_produce_sync() waits for the delivery report of its one message;
 * tkc_produce_start() and tkc_produce_wait() let a batch handler produce
 * many and wait once (a tkc_acks counts the reports still due).  The
 * producer's message.timeout.ms is produce_timeout_ms, so librdkafka
 * always reports within that time and the caller's tkc_acks outlives it.
 * Callbacks run on the worker thread from rd_kafka_poll().
 *
 * IDENTIFICATION
 *	  consumers/runtime/kafka.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka_conf.h"
#include "kafka_errors.h"
#include "log.h"
#include "runtime.h"
#include "signals.h"

static void
log_partitions(tkc_worker *w, const char *what,
			   const rd_kafka_topic_partition_list_t *parts)
{
	char		buf[1024] = "";
	size_t		len = 0;

	for (int i = 0; i < parts->cnt && len < sizeof(buf) - 64; i++)
		len += snprintf(buf + len, sizeof(buf) - len, "%s%s[%d]", i ? " " : "",
						parts->elems[i].topic, (int) parts->elems[i].partition);
	tk_log(TK_LOG_INFO, "consumer %d: %s %s", w->index, what, parts->cnt ? buf : "nothing");
}

/*
 * Services that keep their offsets in their own sink (svc->stored_offsets->load):
 * set each newly assigned partition's start from it.  While the service
 * cannot tell (database down) this waits here, inside the rebalance
 * callback, with capped backoff: the partition must not start anywhere
 * else, as the group's committed offset may be ahead of the sink (after a
 * restore from a snapshot) or behind it.  false: shutdown while waiting.
 */
static bool
set_start_offsets(tkc_worker *w, rd_kafka_topic_partition_list_t *parts)
{
	tk_backoff	b;
	char		why[512];

	tk_backoff_init(&b, 200, w->rt->rc.outage_retry_max_ms, (uint64_t) w->index + 7);
	for (int i = 0; i < parts->cnt; i++)
	{
		rd_kafka_topic_partition_t *p = &parts->elems[i];
		int64_t		off = RD_KAFKA_OFFSET_INVALID;

		for (;;)
		{
			int			delay;

			if (tk_shutdown_requested)
				return false;
			if (tkc_session_connect(w, why, sizeof(why)) &&
				tkc_service_init_or_stop(w, why, sizeof(why)) &&
				w->rt->svc->stored_offsets->load(w, p->topic, p->partition, &off))
				break;
			delay = tk_backoff_next(&b);
			tk_log(TK_LOG_WARNING, "consumer %d: cannot learn where %s[%d] starts (retry in %d ms)",
				   w->index, p->topic, (int) p->partition, delay);
			for (int slept = 0; slept < delay && !tk_shutdown_requested; slept += 100)
				usleep(100 * 1000);
		}
		p->offset = off;
		if (off == RD_KAFKA_OFFSET_INVALID)
			tk_log(TK_LOG_INFO, "consumer %d: %s[%d] starts at the group's committed offset "
				   "(the service keeps none for it)", w->index, p->topic, (int) p->partition);
		else
			tk_log(TK_LOG_INFO, "consumer %d: %s[%d] starts at offset %s%lld (kept by the service)",
				   w->index, p->topic, (int) p->partition,
				   off == RD_KAFKA_OFFSET_BEGINNING ? "beginning " : "",
				   off == RD_KAFKA_OFFSET_BEGINNING ? 0LL : (long long) off);
	}
	return true;
}

/* called from rd_kafka_consumer_poll() on the worker's thread */
static void
rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	tkc_worker *w = opaque;
	bool		cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
	rd_kafka_error_t *error = NULL;
	rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
	{
		log_partitions(w, "assigned", parts);
		tkc_forget_revoked(w, parts);
		if (w->rt->svc->stored_offsets && !set_start_offsets(w, parts))
			return;				/* shutting down: assign nothing */
		if (cooperative)
			error = rd_kafka_incremental_assign(rk, parts);
		else
			rerr = rd_kafka_assign(rk, parts);
		if (w->paused && parts->cnt > 0)
			rd_kafka_pause_partitions(rk, parts);
	}
	else
	{
		log_partitions(w, "revoked", parts);
		for (int i = 0; i < parts->cnt; i++)
			rd_kafka_topic_partition_list_add(w->revoked, parts->elems[i].topic,
											  parts->elems[i].partition);
		if (cooperative)
			error = rd_kafka_incremental_unassign(rk, parts);
		else
			rerr = rd_kafka_assign(rk, NULL);
	}
	if (error)
	{
		tk_log(TK_LOG_ERROR, "consumer %d: rebalance failed: %s", w->index,
			   rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	}
	else if (rerr)
		tk_log(TK_LOG_ERROR, "consumer %d: rebalance failed: %s", w->index,
			   rd_kafka_err2str(rerr));
}

/*
 * librdkafka's threads or the poll caller.  Connection problems are said
 * once in plain words by the shared handler (common/kafka_errors.c),
 * which also feeds /healthz and /metrics; a fatal error stops the service.
 */
static void
error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	if (tk_kafka_error(rk, err, reason))
		tk_shutdown_requested = 1;
}

static int
stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	tkc_metrics_kafka_stats(json);
	return 0;					/* librdkafka frees json */
}

static rd_kafka_conf_t *
base_conf(tkc_runtime *rt, bool consumer, char *errbuf, size_t errlen)
{
	static const char *const consumer_only[] = {
		"group.", "partition.assignment.strategy", "session.timeout.ms",
		"heartbeat.interval.ms", "max.poll.interval.ms", "enable.auto.",
		"auto.commit.", "auto.offset.reset", "fetch.", "queued.",
		"isolation.level", "check.crcs", "enable.partition.eof",
		"coordinator.query.interval.ms", "consume.callback.max.messages", NULL
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	for (int i = 0; i < rt->d.kafka.n; i++)
	{
		const char *k = rt->d.kafka.items[i].key;
		bool		skip = false;

		for (int j = 0; !consumer && consumer_only[j]; j++)
			if (strncmp(k, consumer_only[j], strlen(consumer_only[j])) == 0)
				skip = true;
		if (!skip && !tk_kafka_conf_set(conf, k, rt->d.kafka.items[i].value, errbuf, errlen))
		{
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	}
	rd_kafka_conf_set_log_cb(conf, tk_kafka_log_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	tk_kafka_errors_configure(&rt->d.kafka);
	return conf;
}

rd_kafka_t *
tkc_consumer_create(tkc_worker *w, char *errbuf, size_t errlen)
{
	tkc_runtime *rt = w->rt;
	rd_kafka_conf_t *conf = base_conf(rt, true, errbuf, errlen);
	rd_kafka_t *rk;
	rd_kafka_topic_partition_list_t *topics;
	rd_kafka_resp_err_t err;
	char		v[96];

	if (conf == NULL)
		return NULL;
	snprintf(v, sizeof(v), "%d", rt->rc.stats_interval_ms);
	if (!tk_kafka_conf_set(conf, "group.id", rt->group, errbuf, errlen) ||
		!tk_kafka_conf_set(conf, "statistics.interval.ms", v, errbuf, errlen))
	{
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	snprintf(v, sizeof(v), "%s-%d", rt->program, w->index);
	tk_kafka_conf_set(conf, "client.id", v, errbuf, errlen);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rd_kafka_conf_set_stats_cb(conf, stats_cb);
	rd_kafka_conf_set_opaque(conf, w);

	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errbuf, errlen);
	if (rk == NULL)
	{
		rd_kafka_conf_destroy(conf);	/* not taken on failure */
		return NULL;
	}
	rd_kafka_poll_set_consumer(rk);

	topics = rd_kafka_topic_partition_list_new(rt->nstreams);
	for (int i = 0; i < rt->nstreams; i++)
		rd_kafka_topic_partition_list_add(topics, rt->topics[i], RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (err)
	{
		snprintf(errbuf, errlen, "could not subscribe: %s", rd_kafka_err2str(err));
		rd_kafka_destroy(rk);
		return NULL;
	}
	return rk;
}

/* from rd_kafka_poll() on the thread that produced: one report of acks */
static void
dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	tkc_acks   *acks = m->_private;

	if (acks)
	{
		if (m->err && !acks->err)
			acks->err = m->err;
		acks->pending--;
	}
}

rd_kafka_t *
tkc_producer_create(tkc_runtime *rt, char *errbuf, size_t errlen)
{
	rd_kafka_conf_t *conf = base_conf(rt, false, errbuf, errlen);
	rd_kafka_t *rk;
	char		v[32];

	if (conf == NULL)
		return NULL;
	snprintf(v, sizeof(v), "%d", rt->rc.produce_timeout_ms);
	if (!tk_kafka_conf_set(conf, "enable.idempotence", "true", errbuf, errlen) ||
		!tk_kafka_conf_set(conf, "acks", "all", errbuf, errlen) ||
		!tk_kafka_conf_set(conf, "linger.ms", "0", errbuf, errlen) ||
		!tk_kafka_conf_set(conf, "message.timeout.ms", v, errbuf, errlen))
	{
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errbuf, errlen);
	if (rk == NULL)
		rd_kafka_conf_destroy(conf);	/* not taken on failure */
	return rk;
}

bool
tkc_produce_start(rd_kafka_t *rk, tkc_acks *acks, const char *topic, const char *key,
				  const char *value, size_t len, const tk_header *headers,
				  int nheaders, char *errbuf, size_t errlen)
{
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(nheaders > 0 ? nheaders : 1);
	rd_kafka_resp_err_t err;

	for (int i = 0; i < nheaders; i++)
		rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
							headers[i].value ? -1 : 0);
	acks->pending++;
	for (;;)
	{
		err = rd_kafka_producev(rk,
								RD_KAFKA_V_TOPIC(topic),
								RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
								RD_KAFKA_V_VALUE((void *) value, len),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_HEADERS(hdrs),
								RD_KAFKA_V_OPAQUE(acks),
								RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		rd_kafka_poll(rk, 100);
	}
	if (err)
	{
		acks->pending--;
		rd_kafka_headers_destroy(hdrs);	/* not taken on failure */
		snprintf(errbuf, errlen, "could not produce to %s: %s", topic, rd_kafka_err2str(err));
		return false;
	}
	return true;
}

bool
tkc_produce_wait(rd_kafka_t *rk, tkc_acks *acks, char *errbuf, size_t errlen)
{
	/* every report comes: message.timeout.ms = produce_timeout_ms */
	while (acks->pending > 0)
		rd_kafka_poll(rk, 50);
	if (acks->err)
	{
		snprintf(errbuf, errlen, "Kafka did not acknowledge a message: %s",
				 rd_kafka_err2str(acks->err));
		return false;
	}
	return true;
}

bool
tkc_produce_sync(rd_kafka_t *rk, const char *topic, const char *key,
				 const char *value, size_t len, const tk_header *headers,
				 int nheaders, char *errbuf, size_t errlen)
{
	tkc_acks	acks = {0, 0};

	if (!tkc_produce_start(rk, &acks, topic, key, value, len, headers, nheaders,
						   errbuf, errlen))
		return false;
	if (!tkc_produce_wait(rk, &acks, errbuf, errlen))
	{
		snprintf(errbuf, errlen, "Kafka did not acknowledge the message to %s: %s",
				 topic, rd_kafka_err2str(acks.err));
		return false;
	}
	return true;
}
