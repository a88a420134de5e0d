/*-------------------------------------------------------------------------
 *
 * producer.c
 *	  Kafka side of the relay: produce a row's messages, track their acks
 *
 * Producer: idempotent, acks=all, compression, linger and batch from the
 * config (relay_config.c); with enable.idempotence librdkafka retries
 * without reordering (bottledwater#7).  message.timeout.ms defaults to 0,
 * so messages wait in librdkafka while Kafka is down and rows wait in the
 * outbox behind them (the reader stops when the queue is full).
 *
 * Row accounting (guarantee 1): every outbox row handed to Kafka gets a
 * relay_row with a count of unsettled messages; each message's opaque
 * points to its row.  The delivery-report callback decrements the count;
 * when it reaches zero the row is settled:
 *	 - all acked: its id goes to the "acked" list, deleted from the outbox
 *	   by outbox_reader.c in batches;
 *	 - some message refused for good (poison, guarantee 6): that message was
 *	   replaced by a small envelope on the dead-letter topic; once that is
 *	   acked the row goes to the "dead" list, which outbox_reader.c moves to
 *	   todo_kafka.dead_letters and deletes in one statement;
 *	 - a transient failure (only possible with a finite message.timeout.ms):
 *	   the row stays in the outbox and a rescan is requested, so it is sent
 *	   again with the same ids.
 * Rows stay in the in-flight table until their DELETE succeeded; the reader
 * skips in-flight ids, so a rescan (after a reconnect) never sends a row
 * twice within one relay process.
 *
 * Permanent errors: message too large, invalid or corrupt message, record
 * list too large, invalid record; also rows the message builder rejects and
 * rows whose stream has no topic.  Everything else is retried.
 *
 * Threading contract: relay_dr_cb and relay_error_cb are served by
 * rd_kafka_poll() on the main thread, so they share the row table with
 * the reader without locks.  They never produce (a QUEUE_FULL inside a
 * callback could not poll): dead-letter replacements are queued and sent
 * by relay_producer_service() after rd_kafka_poll() returns.
 * relay_log_cb runs on librdkafka threads (tk_log is thread-safe).
 *
 * IDENTIFICATION
 *	  relay/producer.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "relay.h"
#include "signals.h"

/*
 * A row in flight: ONE allocation holds the relay_row, its messages'
 * opaques (msgs[]) and every string they point to (the row's small fields
 * for dead-letter envelopes, each message's topic, id and type).  Only
 * dead-letter replacements get their own allocation (relay_msg.own).
 */
typedef struct relay_msg
{
	relay_row  *row;
	bool		is_dead_letter;
	bool		own;			/* allocated by itself: free when settled */
	size_t		size;
	const char *topic;
	const char *id;
	const char *type;
} relay_msg;

struct relay_row
{
	int64_t		id;
	int64_t		occurred_us;	/* occurred_at, for the latency histogram */
	int			pending;		/* messages not yet settled */
	bool		all_sent;		/* every message handed to librdkafka */
	bool		failed;			/* transient failure: resend later */
	char	   *dead_topic;		/* first permanent failure */
	char	   *dead_reason;
	tk_outbox_row meta;			/* small fields, for dead-letter envelopes */
	relay_row  *hnext;
	int			nmsgs;
	relay_msg	msgs[];			/* then the strings */
};

/* a refused message waiting to be replaced by its dead-letter envelope */
typedef struct relay_refused
{
	relay_msg  *msg;
	rd_kafka_resp_err_t err;
} relay_refused;

static struct
{
	relay_row **buckets;
	int			nbuckets;		/* power of two */
	int64_t		count;
	int64_t    *acked;
	int			nacked;
	int			cap_acked;
	int64_t		first_ack_ms;	/* monotonic time of the oldest unflushed ack */
	relay_dead_row *dead;
	int			ndead;
	int			cap_dead;
	relay_refused *refused;
	int			nrefused;
	int			cap_refused;
	bool		rescan;
	bool		kafka_up;
	int			queue_max;
	relay_topics *topics;		/* current map, for dead-letter routing */
	time_t		last_error_log;
} P = {.kafka_up = true};

/* ---- in-flight table ---- */

static unsigned
row_hash(int64_t id)
{
	uint64_t	x = (uint64_t) id * 0x9E3779B97F4A7C15ULL;

	return (unsigned) (x >> 32);
}

static void
table_insert(relay_row *r)
{
	unsigned	b;

	if (P.count >= (int64_t) P.nbuckets)
	{
		int			n = P.nbuckets ? P.nbuckets * 2 : 4096;
		relay_row **nb = calloc(n, sizeof(relay_row *));

		if (nb != NULL)
		{
			for (int i = 0; i < P.nbuckets; i++)
			{
				relay_row  *e = P.buckets[i];

				while (e)
				{
					relay_row  *next = e->hnext;
					unsigned	h = row_hash(e->id) & (n - 1);

					e->hnext = nb[h];
					nb[h] = e;
					e = next;
				}
			}
			free(P.buckets);
			P.buckets = nb;
			P.nbuckets = n;
		}
	}
	b = row_hash(r->id) & (P.nbuckets - 1);
	r->hnext = P.buckets[b];
	P.buckets[b] = r;
	P.count++;
}

static relay_row *
table_find(int64_t id)
{
	relay_row  *e;

	if (P.nbuckets == 0)
		return NULL;
	for (e = P.buckets[row_hash(id) & (P.nbuckets - 1)]; e; e = e->hnext)
		if (e->id == id)
			return e;
	return NULL;
}

static void
row_free(relay_row *r)
{
	free(r->dead_topic);
	free(r->dead_reason);
	free(r);
}

static void
table_remove(int64_t id)
{
	relay_row **pp;

	if (P.nbuckets == 0)
		return;
	for (pp = &P.buckets[row_hash(id) & (P.nbuckets - 1)]; *pp; pp = &(*pp)->hnext)
	{
		if ((*pp)->id == id)
		{
			relay_row  *r = *pp;

			*pp = r->hnext;
			P.count--;
			row_free(r);
			return;
		}
	}
}

bool
relay_row_in_flight(int64_t id)
{
	return table_find(id) != NULL;
}

int64_t
relay_rows_in_flight(void)
{
	return P.count;
}

bool
relay_kafka_up(void)
{
	return P.kafka_up;
}

/* append string s to the row block at *p; NULL stays NULL */
static const char *
block_str(char **p, const char *s)
{
	char	   *d = *p;
	size_t		n;

	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	memcpy(d, s, n);
	*p += n;
	return d;
}

/*
 * One allocation for the row, its n messages' opaques and their strings:
 * the small fields of the row, and topic/id/type of each message (topic
 * names are copied: the topic map may be reloaded while messages fly).
 */
static relay_row *
row_new(const tk_outbox_row *row, int64_t id, const tk_message_list *msgs,
		relay_topic *const *topics)
{
	const char *const *src[] = {
		&row->id, &row->xid, &row->event_id, &row->kind, &row->stream,
		&row->event_type, &row->source, &row->key, &row->user_id,
		&row->actor, &row->correlation_id, &row->traceparent,
		&row->occurred_at
	};
	size_t		len = 0;
	int			n = msgs ? msgs->n : 0;
	relay_row  *r;
	char	   *p;

	for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++)
		len += *src[i] ? strlen(*src[i]) + 1 : 0;
	for (int i = 0; i < n; i++)
		len += (topics[i] ? strlen(topics[i]->topic) + 1 : 0) +
			strlen(msgs->msgs[i].id) + 1 + strlen(msgs->msgs[i].type) + 1;
	r = malloc(sizeof(relay_row) + sizeof(relay_msg) * n + len);
	if (r == NULL)
		return NULL;
	memset(r, 0, sizeof(relay_row));
	p = (char *) &r->msgs[n];
	r->meta.id = block_str(&p, row->id);
	r->meta.xid = block_str(&p, row->xid);
	r->meta.event_id = block_str(&p, row->event_id);
	r->meta.kind = block_str(&p, row->kind);
	r->meta.stream = block_str(&p, row->stream);
	r->meta.event_type = block_str(&p, row->event_type);
	r->meta.source = block_str(&p, row->source);
	r->meta.key = block_str(&p, row->key);
	r->meta.user_id = block_str(&p, row->user_id);
	r->meta.actor = block_str(&p, row->actor);
	r->meta.correlation_id = block_str(&p, row->correlation_id);
	r->meta.traceparent = block_str(&p, row->traceparent);
	r->meta.occurred_at = block_str(&p, row->occurred_at);
	for (int i = 0; i < n; i++)
	{
		relay_msg  *m = &r->msgs[i];

		m->row = r;
		m->is_dead_letter = false;
		m->own = false;
		m->size = msgs->msgs[i].value_len;
		m->topic = topics[i] ? block_str(&p, topics[i]->topic) : NULL;
		m->id = block_str(&p, msgs->msgs[i].id);
		m->type = block_str(&p, msgs->msgs[i].type);
	}
	r->nmsgs = n;
	r->id = id;
	r->occurred_us = tk_parse_rfc3339_us(row->occurred_at);
	return r;
}

/* a dead-letter replacement's opaque: its own allocation */
static relay_msg *
msg_new(relay_row *r, const char *topic, const char *id, const char *type,
		size_t size, bool is_dead_letter)
{
	size_t		lt = strlen(topic) + 1,
				li = strlen(id) + 1,
				ly = strlen(type) + 1;
	relay_msg  *m = malloc(sizeof(relay_msg) + lt + li + ly);
	char	   *text;

	if (m == NULL)
		return NULL;
	text = (char *) (m + 1);
	m->row = r;
	m->is_dead_letter = is_dead_letter;
	m->own = true;
	m->size = size;
	memcpy(text, topic, lt);
	memcpy(text + lt, id, li);
	memcpy(text + lt + li, type, ly);
	m->topic = text;
	m->id = text + lt;
	m->type = text + lt + li;
	return m;
}

static void
msg_free(relay_msg *m)
{
	if (m->own)
		free(m);
}

/* ---- settling ---- */

static void
row_settle(relay_row *r)
{
	if (r->failed)
	{
		/* leave it in the outbox; the next full scan sends it again */
		P.rescan = true;
		table_remove(r->id);
		return;
	}
	relay_metrics_row_done(r->meta.stream ? r->meta.stream : "");
	if (r->dead_reason)
	{
		if (P.ndead == P.cap_dead)
		{
			int			cap = P.cap_dead ? P.cap_dead * 2 : 16;
			relay_dead_row *d = realloc(P.dead, sizeof(relay_dead_row) * cap);

			if (d == NULL)
				return;			/* stays in flight until restart: never lost */
			P.dead = d;
			P.cap_dead = cap;
		}
		P.dead[P.ndead].id = r->id;
		P.dead[P.ndead].topic = r->dead_topic;
		P.dead[P.ndead].reason = r->dead_reason;
		P.ndead++;
		return;
	}
	if (P.nacked == P.cap_acked)
	{
		int			cap = P.cap_acked ? P.cap_acked * 2 : 4096;
		int64_t    *a = realloc(P.acked, sizeof(int64_t) * cap);

		if (a == NULL)
			return;
		P.acked = a;
		P.cap_acked = cap;
	}
	if (P.nacked == 0)
		P.first_ack_ms = tk_monotonic_ms();
	P.acked[P.nacked++] = r->id;
}

static void
row_message_done(relay_row *r)
{
	r->pending--;
	if (r->all_sent && r->pending == 0)
		row_settle(r);
}

int
relay_take_acked(int64_t **ids)
{
	*ids = P.acked;
	return P.nacked;
}

/* the first n ids of the acked list were deleted from the outbox */
void
relay_forget_acked(int64_t *ids, int n)
{
	for (int i = 0; i < n; i++)
		table_remove(ids[i]);
	memmove(P.acked, P.acked + n, sizeof(int64_t) * (P.nacked - n));
	P.nacked -= n;
	if (P.nacked > 0)
		P.first_ack_ms = tk_monotonic_ms();
}

int64_t
relay_oldest_ack_ms(void)
{
	return P.nacked > 0 ? tk_monotonic_ms() - P.first_ack_ms : -1;
}

int
relay_take_dead(relay_dead_row **rows)
{
	*rows = P.dead;
	return P.ndead;
}

/* the first n dead rows were moved to todo_kafka.dead_letters */
void
relay_forget_dead(relay_dead_row *rows, int n)
{
	for (int i = 0; i < n; i++)
		table_remove(rows[i].id);	/* frees topic and reason */
	memmove(P.dead, P.dead + n, sizeof(relay_dead_row) * (P.ndead - n));
	P.ndead -= n;
}

bool
relay_take_rescan(void)
{
	bool		r = P.rescan;

	P.rescan = false;
	return r;
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

/* send the dead-letter envelope standing for refused message m */
static void
send_dead_letter(rd_kafka_t *rk, relay_row *r, const char *origin_topic,
				 const char *origin_id, const char *origin_type, size_t size,
				 rd_kafka_resp_err_t err, const char *reason)
{
	relay_topic *dl = relay_topics_find(P.topics, TK_STREAM_DEAD_LETTER);
	tk_message_list l;
	relay_msg  *m;

	tk_log(TK_LOG_WARNING, "outbox row %lld: message %s to \"%s\" refused for good (%s): sending it to the dead-letter topic",
		   (long long) r->id, origin_id, origin_topic, reason);
	relay_metrics_error("permanent");
	if (r->dead_reason == NULL)
	{
		r->dead_topic = strdup(origin_topic);
		r->dead_reason = strdup(reason);
	}
	tk_message_list_init(&l);
	if (dl == NULL ||
		tk_ce_build_dead_letter(&r->meta, origin_topic, origin_id, origin_type,
								size, rd_kafka_err2name(err), reason, &l) != 1 ||
		(m = msg_new(r, dl->topic, l.msgs[0].id, l.msgs[0].type,
					 l.msgs[0].value_len, true)) == NULL)
	{
		tk_log(TK_LOG_ERROR, "outbox row %lld: cannot send to the dead-letter topic%s; the row stays in the outbox",
			   (long long) r->id, dl ? "" : " (no \"dead_letter\" stream in todo_kafka.topics)");
		r->failed = true;
		tk_message_list_free(&l);
		return;
	}
	err = produce_one(rk, dl, r->meta.key, &l.msgs[0], m);
	if (err)
	{
		tk_log(TK_LOG_ERROR, "outbox row %lld: dead-letter produce failed: %s",
			   (long long) r->id, rd_kafka_err2str(err));
		msg_free(m);
		r->failed = true;
	}
	else
		r->pending++;
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
	static relay_topic **tl;
	static int	cap_tl;
	relay_row  *r;
	char		err[512];
	int			n;

	P.topics = topics;
	tk_message_list_clear(&msgs);
	n = tk_ce_build(row, &msgs, err, sizeof(err));
	if (n > cap_tl)
	{
		relay_topic **a = realloc(tl, sizeof(relay_topic *) * n);

		if (a == NULL)
			return false;
		tl = a;
		cap_tl = n;
	}
	for (int i = 0; i < n; i++)
		tl[i] = relay_topics_find(topics, msgs.msgs[i].stream);
	r = row_new(row, id, n > 0 ? &msgs : NULL, tl);
	if (r == NULL)
		return false;
	table_insert(r);
	r->pending = 1;				/* held until every message is handed over */

	if (n < 0)
	{
		relay_topic *t = relay_topics_find(topics, row->stream ? row->stream : "");

		send_dead_letter(rk, r, t ? t->topic : "", row->event_id ? row->event_id : "",
						 row->event_type ? row->event_type : "", 0,
						 RD_KAFKA_RESP_ERR__BAD_MSG, err);
	}
	for (int i = 0; i < n; i++)
	{
		tk_message *m = &msgs.msgs[i];
		relay_topic *t = tl[i];
		relay_msg  *opaque = &r->msgs[i];
		rd_kafka_resp_err_t e;

		if (t == NULL)
		{
			char		reason[256];

			snprintf(reason, sizeof(reason), "stream \"%s\" has no topic in todo_kafka.topics",
					 m->stream);
			send_dead_letter(rk, r, m->stream, m->id, m->type, m->value_len,
							 RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, reason);
			continue;
		}
		e = produce_one(rk, t, row->key, m, opaque);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			r->pending++;
			continue;
		}
		if (err_is_permanent(e))
			send_dead_letter(rk, r, t->topic, m->id, m->type, m->value_len, e,
							 rd_kafka_err2str(e));
		else
		{
			tk_log(TK_LOG_ERROR, "outbox row %lld: produce to \"%s\" failed: %s",
				   (long long) id, t->topic, rd_kafka_err2str(e));
			relay_metrics_error("produce");
			r->failed = true;
		}
	}
	r->all_sent = true;
	row_message_done(r);		/* drop the hold */
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
		double		lat = r->occurred_us ?
			(double) (tk_wall_us() - r->occurred_us) / 1e6 : -1;

		P.kafka_up = true;
		relay_metrics_published(m->topic, 1, m->is_dead_letter ? -1 : lat);
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
		r->failed = true;
	}
	else
	{
		tk_log(TK_LOG_ERROR, "delivery to \"%s\" failed: %s; the row stays in the outbox",
			   m->topic, rd_kafka_err2str(rkmessage->err));
		relay_metrics_error("delivery");
		r->failed = true;
	}
	msg_free(m);
	row_message_done(r);
}

/* send dead letters queued by the delivery callback; main thread */
void
relay_producer_service(rd_kafka_t *rk)
{
	while (P.nrefused > 0)
	{
		relay_refused f = P.refused[--P.nrefused];
		relay_row  *r = f.msg->row;

		send_dead_letter(rk, r, f.msg->topic, f.msg->id, f.msg->type,
						 f.msg->size, f.err, rd_kafka_err2str(f.err));
		msg_free(f.msg);
		row_message_done(r);
	}
}

/*
 * Error callback.  Threading: served by rd_kafka_poll() on the main thread.
 * librdkafka recovers from broker errors itself; log them (rate-limited)
 * and track whether any broker is reachable.
 */
static void
relay_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	time_t		now = time(NULL);

	(void) opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL)
	{
		char		buf[512];

		rd_kafka_fatal_error(rk, buf, sizeof(buf));
		tk_log(TK_LOG_FATAL, "fatal Kafka producer error: %s", buf);
		relay_fatal_error = 1;
		return;
	}
	relay_metrics_error("kafka");
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
	{
		if (P.kafka_up)
			tk_log(TK_LOG_WARNING, "all Kafka brokers are down; rows wait in the outbox");
		P.kafka_up = false;
		return;
	}
	if (now - P.last_error_log >= 10)
	{
		tk_log(TK_LOG_WARNING, "kafka: %s: %s", rd_kafka_err2name(err), reason);
		P.last_error_log = now;
	}
}

int
relay_producer_queue_room(rd_kafka_t *rk)
{
	return P.queue_max - rd_kafka_outq_len(rk);
}

rd_kafka_t *
relay_producer_create(const relay_config *cfg, char *errbuf, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	char		value[64];
	size_t		vlen = sizeof(value);
	char		rkerr[512];

	rd_kafka_conf_set(conf, "client.id", "todo-kafka-relay", NULL, 0);
	for (int i = 0; i < cfg->d.kafka.n; i++)
	{
		const char *k = cfg->d.kafka.items[i].key;
		const char *v = cfg->d.kafka.items[i].value;

		if (strcmp(k, "compression.codec") == 0 || strcmp(k, "compression.type") == 0)
		{
			if (rd_kafka_conf_set(conf, k, v, rkerr, sizeof(rkerr)) != RD_KAFKA_CONF_OK)
			{
				tk_log(TK_LOG_WARNING, "compression \"%s\" is not supported by this librdkafka (%s); using none",
					   v, rkerr);
				rd_kafka_conf_set(conf, k, "none", NULL, 0);
			}
			continue;
		}
		if (!tk_kafka_conf_set(conf, k, v, errbuf, errlen))
		{
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	}
	if (rd_kafka_conf_get(conf, "queue.buffering.max.messages", value, &vlen) == RD_KAFKA_CONF_OK)
		P.queue_max = atoi(value);
	if (P.queue_max <= 0)
		P.queue_max = 100000;

	rd_kafka_conf_set_dr_msg_cb(conf, relay_dr_cb);
	rd_kafka_conf_set_error_cb(conf, relay_error_cb);
	rd_kafka_conf_set_log_cb(conf, tk_kafka_log_cb);

	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rkerr, sizeof(rkerr));
	if (rk == NULL)
	{
		snprintf(errbuf, errlen, "could not create Kafka producer: %s", rkerr);
		rd_kafka_conf_destroy(conf);	/* rd_kafka_new frees it only on success */
		return NULL;
	}
	return rk;
}
