/*-------------------------------------------------------------------------
 *
 * producer.c
 *	  Kafka side of the relay: produce a row's messages, handle reports
 *
 * Producer: idempotent, acks=all, compression, linger and batch from the
 * config (relay_config.c), made by common/kafka_conf.c's
 * tk_kafka_conf_new(); with enable.idempotence librdkafka retries without
 * reordering (bottledwater#7).  message.timeout.ms defaults to 0, so
 * messages wait in librdkafka while Kafka is down and rows wait in the
 * outbox behind them (the reader stops when the queue is full).
 *
 * Each row sent is registered in inflight.c, which counts its messages and
 * settles it (acked, dead, or left for a rescan) as delivery reports come;
 * this file produces and classifies.  Permanent errors: message too large,
 * invalid or corrupt message, record list too large, invalid record; also
 * rows the message builder rejects and rows whose stream has no topic.
 * Such a message is replaced by a small envelope on the dead-letter topic
 * (guarantee 6).  Everything else is retried.
 *
 * Threading contract: relay_dr_cb and relay_error_cb are served by
 * rd_kafka_poll() on the main thread, so they share the row table with
 * the reader without locks.  They never produce (a QUEUE_FULL inside a
 * callback could not poll): refused messages are queued and their
 * dead-letter envelopes sent by relay_producer_service(), after
 * rd_kafka_poll() returns, with the topic map the caller passes in.
 * Connection problems go to the shared handler (common/kafka_errors.c);
 * the log callback runs on librdkafka threads (tk_log is thread-safe).
 *
 * IDENTIFICATION
 *	  relay/producer.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "inflight.h"
#include "kafka_errors.h"
#include "messages/dead_letter.h"
#include "relay.h"
#include "signals.h"

/* a refused message waiting to be replaced by its dead-letter envelope */
typedef struct relay_refused
{
	relay_msg  *msg;
	rd_kafka_resp_err_t err;
} relay_refused;

static struct
{
	relay_refused *refused;
	int			nrefused;
	int			cap_refused;
	bool		kafka_up;
	int			queue_max;
} P = {.kafka_up = true};

bool
relay_kafka_up(void)
{
	return P.kafka_up;
}

/* ---- producing ---- */

static bool
err_is_permanent(rd_kafka_resp_err_t err)
{
	switch (err)
	{
		case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
		case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
		case RD_KAFKA_RESP_ERR_INVALID_MSG:
		case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
		case RD_KAFKA_RESP_ERR_INVALID_RECORD:
		case RD_KAFKA_RESP_ERR__INVALID_ARG:
			return true;
		default:
			return false;
	}
}

/*
 * Hand one message to librdkafka, waiting while its queue is full.
 * Returns RD_KAFKA_RESP_ERR_NO_ERROR, or the error for the caller to
 * classify (permanent errors become dead letters).
 */
static rd_kafka_resp_err_t
produce_one(rd_kafka_t *rk, relay_topic *t, const char *key, const tk_message *m,
			relay_msg *opaque)
{
	for (;;)
	{
		rd_kafka_headers_t *hdrs = rd_kafka_headers_new(m->nheaders);
		rd_kafka_resp_err_t err;

		for (int i = 0; i < m->nheaders; i++)
			rd_kafka_header_add(hdrs, m->headers[i].name, -1,
								m->headers[i].value, -1);
		/*
		 * F_COPY, not F_FREE: librdkafka allocates each message with its
		 * payload inline (one malloc either way), so copying ~1 kB out of
		 * the reusable build buffer is cheaper than a malloc of our own
		 * per message that librdkafka would free.
		 */
		err = rd_kafka_producev(rk,
								RD_KAFKA_V_RKT(t->rkt),
								RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
								RD_KAFKA_V_VALUE((void *) m->value, m->value_len),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_HEADERS(hdrs),
								RD_KAFKA_V_OPAQUE(opaque),
								RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
			return err;
		rd_kafka_headers_destroy(hdrs);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || tk_shutdown_requested > 1)
			return err;
		/* backpressure: serve delivery reports until there is room */
		rd_kafka_poll(rk, 100);
	}
}

/* send the dead-letter envelope standing for a refused message of row r */
static void
send_dead_letter(rd_kafka_t *rk, relay_topics *topics, relay_row *r,
				 const char *origin_topic, const char *origin_id,
				 const char *origin_type, size_t size,
				 rd_kafka_resp_err_t err, const char *reason)
{
	relay_topic *dl = relay_topics_find(topics, TK_STREAM_DEAD_LETTER);
	long long	id = (long long) relay_row_id(r);
	tk_message_list l;
	relay_msg  *m;

	tk_log(TK_LOG_WARNING, "outbox row %lld: message %s to \"%s\" refused for good (%s): sending it to the dead-letter topic",
		   id, origin_id, origin_topic, reason);
	relay_metrics_error("permanent");
	relay_row_dead(r, origin_topic, reason);
	tk_message_list_init(&l);
	if (dl == NULL ||
		tk_ce_build_dead_letter(relay_row_meta(r), origin_topic, origin_id, origin_type,
								size, rd_kafka_err2name(err), reason, &l) != 1 ||
		(m = relay_row_extra_msg(r, dl->topic, l.msgs[0].id, l.msgs[0].type,
								 l.msgs[0].value_len, true)) == NULL)
	{
		tk_log(TK_LOG_ERROR, "outbox row %lld: cannot send to the dead-letter topic%s; the row stays in the outbox",
			   id, dl ? "" : " (no \"dead_letter\" stream in todo_kafka.topics)");
		relay_row_failed(r);
		tk_message_list_free(&l);
		return;
	}
	err = produce_one(rk, dl, relay_row_meta(r)->key, &l.msgs[0], m);
	if (err)
	{
		tk_log(TK_LOG_ERROR, "outbox row %lld: dead-letter produce failed: %s",
			   id, rd_kafka_err2str(err));
		relay_msg_free(m);
		relay_row_failed(r);
	}
	else
		relay_row_sent(r);
	tk_message_list_free(&l);
}

/*
 * Build and produce every message of one outbox row.  Returns false only
 * when the row could not be registered (out of memory).
 */
bool
relay_producer_send_row(rd_kafka_t *rk, relay_topics *topics,
						const tk_outbox_row *row, int64_t id)
{
	static tk_message_list msgs;	/* reused: grows to the largest row */
	static relay_topic **tl;		/* reused: topic of each message */
	static const char **names;		/* reused: its name */
	static int	cap_tl;
	relay_row  *r;
	char		err[512];
	int			n;
	tk_outbox_row traced;
	char		tp[TK_TRACEPARENT_LEN + 1];
	tk_trace_ctx parent;

	row = relay_trace_row(row, &traced, tp, &parent);
	tk_message_list_clear(&msgs);
	n = tk_ce_build(row, &msgs, err, sizeof(err));
	if (n > cap_tl)
	{
		relay_topic **a = realloc(tl, sizeof(relay_topic *) * n);
		const char **b = realloc(names, sizeof(const char *) * n);

		if (a)
			tl = a;
		if (b)
			names = b;
		if (a == NULL || b == NULL)
			return false;
		cap_tl = n;
	}
	for (int i = 0; i < n; i++)
	{
		tl[i] = relay_topics_find(topics, msgs.msgs[i].stream);
		names[i] = tl[i] ? tl[i]->topic : NULL;
	}
	r = relay_inflight_add(row, id, n > 0 ? &msgs : NULL, names);
	if (r == NULL)
		return false;
	relay_row_set_trace_parent(r, &parent);

	if (n < 0)
	{
		relay_topic *t = relay_topics_find(topics, row->stream ? row->stream : "");

		send_dead_letter(rk, topics, r, t ? t->topic : "", row->event_id ? row->event_id : "",
						 row->event_type ? row->event_type : "", 0,
						 RD_KAFKA_RESP_ERR__BAD_MSG, err);
	}
	for (int i = 0; i < n; i++)
	{
		tk_message *m = &msgs.msgs[i];
		relay_topic *t = tl[i];
		relay_msg  *opaque = relay_row_msg(r, i);
		rd_kafka_resp_err_t e;

		if (t == NULL)
		{
			char		reason[256];

			snprintf(reason, sizeof(reason), "stream \"%s\" has no topic in todo_kafka.topics",
					 m->stream);
			send_dead_letter(rk, topics, r, m->stream, m->id, m->type, m->value_len,
							 RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, reason);
			continue;
		}
		e = produce_one(rk, t, row->key, m, opaque);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			relay_row_sent(r);
			continue;
		}
		if (err_is_permanent(e))
			send_dead_letter(rk, topics, r, t->topic, m->id, m->type, m->value_len, e,
							 rd_kafka_err2str(e));
		else
		{
			tk_log(TK_LOG_ERROR, "outbox row %lld: produce to \"%s\" failed: %s",
				   (long long) id, t->topic, rd_kafka_err2str(e));
			relay_metrics_error("produce");
			relay_row_failed(r);
		}
	}
	relay_row_all_sent(r);
	return true;
}

/*
 * Delivery report.  Threading: runs on the main thread inside
 * rd_kafka_poll(); must not produce or poll.
 */
static void
relay_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkmessage, void *opaque)
{
	relay_msg  *m = rkmessage->_private;
	relay_row  *r = m->row;

	(void) rk;
	(void) opaque;
	if (rkmessage->err == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		relay_latency lat;

		P.kafka_up = true;
		tk_kafka_ok();
		relay_row_latency(r, &lat);
		relay_metrics_published(m->topic, 1, m->is_dead_letter ? NULL : &lat);
		if (m->is_dead_letter)
			relay_metrics_dead_letter();
	}
	else if (err_is_permanent(rkmessage->err) && !m->is_dead_letter)
	{
		/* replaced by its dead-letter envelope in relay_producer_service() */
		if (P.nrefused == P.cap_refused)
		{
			int			cap = P.cap_refused ? P.cap_refused * 2 : 16;
			relay_refused *a = realloc(P.refused, sizeof(relay_refused) * cap);

			if (a != NULL)
			{
				P.refused = a;
				P.cap_refused = cap;
			}
		}
		if (P.nrefused < P.cap_refused)
		{
			P.refused[P.nrefused].msg = m;
			P.refused[P.nrefused].err = rkmessage->err;
			P.nrefused++;
			return;				/* keeps its pending slot */
		}
		relay_row_failed(r);
	}
	else
	{
		tk_log(TK_LOG_ERROR, "delivery to \"%s\" failed: %s; the row stays in the outbox",
			   m->topic, rd_kafka_err2str(rkmessage->err));
		relay_metrics_error("delivery");
		relay_row_failed(r);
	}
	relay_msg_free(m);
	relay_row_message_done(r);
}

/* send dead letters queued by the delivery callback; main thread */
void
relay_producer_service(rd_kafka_t *rk, relay_topics *topics)
{
	while (P.nrefused > 0)
	{
		relay_refused f = P.refused[--P.nrefused];
		relay_row  *r = f.msg->row;

		send_dead_letter(rk, topics, r, f.msg->topic, f.msg->id, f.msg->type,
						 f.msg->size, f.err, rd_kafka_err2str(f.err));
		relay_msg_free(f.msg);
		relay_row_message_done(r);
	}
}

/*
 * Error callback.  Threading: served by rd_kafka_poll() on the main thread.
 * librdkafka recovers from broker errors itself; the shared handler says
 * what is wrong once, in plain words, and rate-limits repeats; here we
 * only track whether any broker is reachable, and stop on a fatal error.
 */
static void
relay_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void) opaque;
	if (tk_kafka_error(rk, err, reason))
	{
		relay_fatal_error = 1;
		return;
	}
	relay_metrics_error("kafka");
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		P.kafka_up = false;
}

int
relay_producer_queue_room(rd_kafka_t *rk)
{
	return P.queue_max - rd_kafka_outq_len(rk);
}

rd_kafka_t *
relay_producer_create(const relay_config *cfg, char *errbuf, size_t errlen)
{
	rd_kafka_conf_t *conf = tk_kafka_conf_new("todo-kafka-relay", &cfg->d.kafka,
											  errbuf, errlen);
	rd_kafka_t *rk;
	char		value[64];
	size_t		vlen = sizeof(value);
	char		rkerr[512];

	if (conf == NULL)
		return NULL;
	if (rd_kafka_conf_get(conf, "queue.buffering.max.messages", value, &vlen) == RD_KAFKA_CONF_OK)
		P.queue_max = atoi(value);
	if (P.queue_max <= 0)
		P.queue_max = 100000;

	rd_kafka_conf_set_dr_msg_cb(conf, relay_dr_cb);
	rd_kafka_conf_set_error_cb(conf, relay_error_cb);

	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rkerr, sizeof(rkerr));
	if (rk == NULL)
	{
		snprintf(errbuf, errlen, "could not create Kafka producer: %s", rkerr);
		rd_kafka_conf_destroy(conf);	/* rd_kafka_new frees it only on success */
		return NULL;
	}
	return rk;
}
