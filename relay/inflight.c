/*-------------------------------------------------------------------------
 *
 * inflight.c
 *	  the relay's rows in flight, and the lists of settled rows
 *
 * Row accounting (guarantee 1): every outbox row handed to Kafka gets a
 * relay_row with a count of unsettled messages; each message's opaque
 * (relay_msg) points to its row.  Each delivery report decrements the
 * count; when it reaches zero, and every message was handed over, the row
 * is settled:
 *	 - all acked: the row counts as settled in its window (position.c) and
 *	   is forgotten at once, so memory holds only rows in flight however
 *	   large a window is (a backlog after an outage is one window);
 *	 - some message refused for good (relay_row_dead, guarantee 6): that
 *	   message was replaced by its dead-letter envelope; once that is acked
 *	   the row goes to the "dead" list, which outbox_reader.c moves to
 *	   todo_kafka.dead_letters; it counts as settled once moved;
 *	 - a transient failure (relay_row_failed; only possible with a finite
 *	   message.timeout.ms): its window cannot settle, and a rescan is
 *	   requested, so it is read and sent again with the same ids.
 * The reader skips ids known here, so a rescan (after a reconnect) does
 * not send a row that is still in flight twice; such a row joins the
 * window that met it again (relay_row_rejoin), so that window cannot
 * settle before it.  Rows acknowledged after the settled position are
 * sent again by a rescan (at-least-once, same message ids).
 *
 * Memory: ONE allocation holds the relay_row, its messages' opaques and
 * every string they point to (the row's small fields for dead-letter
 * envelopes, each message's topic, id and type); only dead-letter
 * replacements get their own (relay_msg.own).
 *
 * Threading: main thread only, no locks (see inflight.h).
 *
 * IDENTIFICATION
 *	  relay/inflight.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "inflight.h"
#include "relay.h"

struct relay_row
{
	int64_t		id;
	uint64_t	window;			/* position.c window it is counted in */
	int64_t		occurred_us;	/* occurred_at, for the latency histograms */
	int64_t		read_us;		/* when the relay read it (handed it over) */
	int			pending;		/* messages not yet settled */
	bool		all_sent;		/* every message handed to librdkafka */
	bool		failed;			/* transient failure: resend later */
	char	   *dead_topic;		/* first permanent failure */
	char	   *dead_reason;
	tk_outbox_row meta;			/* small fields, for dead-letter envelopes */
	tk_trace_ctx trace_parent;	/* of its publish span (tracing.c) */
	relay_row  *hnext;
	int			nmsgs;
	relay_msg	msgs[];			/* then the strings */
};

static struct
{
	relay_row **buckets;
	int			nbuckets;		/* power of two */
	int64_t		count;
	relay_dead_row *dead;
	int			ndead;
	int			cap_dead;
	bool		rescan;
} F;

/* ---- the table, by outbox id ---- */

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

	if (F.count >= (int64_t) F.nbuckets)
	{
		int			n = F.nbuckets ? F.nbuckets * 2 : 4096;
		relay_row **nb = calloc(n, sizeof(relay_row *));

		if (nb != NULL)
		{
			for (int i = 0; i < F.nbuckets; i++)
			{
				relay_row  *e = F.buckets[i];

				while (e)
				{
					relay_row  *next = e->hnext;
					unsigned	h = row_hash(e->id) & (n - 1);

					e->hnext = nb[h];
					nb[h] = e;
					e = next;
				}
			}
			free(F.buckets);
			F.buckets = nb;
			F.nbuckets = n;
		}
	}
	b = row_hash(r->id) & (F.nbuckets - 1);
	r->hnext = F.buckets[b];
	F.buckets[b] = r;
	F.count++;
}

static relay_row *
table_find(int64_t id)
{
	relay_row  *e;

	if (F.nbuckets == 0)
		return NULL;
	for (e = F.buckets[row_hash(id) & (F.nbuckets - 1)]; e; e = e->hnext)
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

	if (F.nbuckets == 0)
		return;
	for (pp = &F.buckets[row_hash(id) & (F.nbuckets - 1)]; *pp; pp = &(*pp)->hnext)
	{
		if ((*pp)->id == id)
		{
			relay_row  *r = *pp;

			*pp = r->hnext;
			F.count--;
			row_free(r);
			return;
		}
	}
}

int64_t
relay_rows_in_flight(void)
{
	return F.count;
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
relay_row *
relay_inflight_add(const tk_outbox_row *row, int64_t id,
				   const tk_message_list *msgs, const char *const *topics)
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
		len += (topics[i] ? strlen(topics[i]) + 1 : 0) +
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
		m->topic = topics[i] ? block_str(&p, topics[i]) : NULL;
		m->id = block_str(&p, msgs->msgs[i].id);
		m->type = block_str(&p, msgs->msgs[i].type);
	}
	r->nmsgs = n;
	r->id = id;
	r->occurred_us = tk_parse_rfc3339_us(row->occurred_at);
	r->read_us = tk_wall_us();
	r->pending = 1;				/* held until every message is handed over */
	r->window = relay_position_current_window();
	relay_position_row_added(r->window);
	table_insert(r);
	return r;
}

/* a dead-letter replacement's opaque: its own allocation */
relay_msg *
relay_row_extra_msg(relay_row *r, const char *topic, const char *id,
					const char *type, size_t size, bool is_dead_letter)
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

void
relay_msg_free(relay_msg *m)
{
	if (m->own)
		free(m);
}


relay_msg *
relay_row_msg(relay_row *r, int i)
{
	return &r->msgs[i];
}

int64_t
relay_row_id(const relay_row *r)
{
	return r->id;
}

const tk_outbox_row *
relay_row_meta(const relay_row *r)
{
	return &r->meta;
}

/*
 * A message of r was acknowledged now: its latency and the two stages it
 * splits into (see relay_latency in relay.h); -1 where occurred_at is
 * unknown.
 */
void
relay_row_latency(const relay_row *r, relay_latency *lat)
{
	int64_t		now = tk_wall_us();

	lat->ack_s = (double) (now - r->read_us) / 1e6;
	lat->total_s = r->occurred_us ? (double) (now - r->occurred_us) / 1e6 : -1;
	lat->read_s = r->occurred_us ? (double) (r->read_us - r->occurred_us) / 1e6 : -1;
}

void
relay_row_sent(relay_row *r)
{
	r->pending++;
}

void
relay_row_all_sent(relay_row *r)
{
	r->all_sent = true;
	relay_row_message_done(r);	/* drop the hold taken at registration */
}

void
relay_row_failed(relay_row *r)
{
	r->failed = true;
}

void
relay_row_dead(relay_row *r, const char *topic, const char *reason)
{
	if (r->dead_reason == NULL)
	{
		r->dead_topic = strdup(topic);
		r->dead_reason = strdup(reason);
	}
}

/* ---- settling ---- */

static void
row_settle(relay_row *r)
{
	if (r->failed)
	{
		/* leave it in the outbox; the next full scan sends it again */
		F.rescan = true;
		table_remove(r->id);
		return;
	}
	relay_metrics_row_done(r->meta.stream ? r->meta.stream : "");
	relay_trace_published(&r->meta, &r->trace_parent, r->read_us, r->nmsgs, r->dead_reason);
	if (r->dead_reason)
	{
		if (F.ndead == F.cap_dead)
		{
			int			cap = F.cap_dead ? F.cap_dead * 2 : 16;
			relay_dead_row *d = realloc(F.dead, sizeof(relay_dead_row) * cap);

			if (d == NULL)
				return;			/* stays in flight until restart: never lost */
			F.dead = d;
			F.cap_dead = cap;
		}
		F.dead[F.ndead].id = r->id;
		F.dead[F.ndead].topic = r->dead_topic;
		F.dead[F.ndead].reason = r->dead_reason;
		F.ndead++;
		return;
	}
	relay_position_row_settled(r->window);
	table_remove(r->id);
}

void
relay_row_set_trace_parent(relay_row *r, const tk_trace_ctx *parent)
{
	r->trace_parent = *parent;
}

void
relay_row_message_done(relay_row *r)
{
	r->pending--;
	if (r->all_sent && r->pending == 0)
		row_settle(r);
}

/*
 * A row the reader met again (a rescan) and skipped: if it is not settled,
 * count it in the reader's current window too, which then cannot settle
 * before it.  False when the row is not known here (read it).
 */
bool
relay_row_rejoin(int64_t id)
{
	relay_row  *r = table_find(id);
	uint64_t	w;

	if (r == NULL)
		return false;
	w = relay_position_current_window();
	if (r->window != w)
	{
		relay_position_row_added(w);
		r->window = w;
	}
	return true;
}


int
relay_take_dead(relay_dead_row **rows)
{
	*rows = F.dead;
	return F.ndead;
}

/* the first n dead rows were moved to todo_kafka.dead_letters */
void
relay_forget_dead(relay_dead_row *rows, int n)
{
	for (int i = 0; i < n; i++)
	{
		relay_row  *r = table_find(rows[i].id);

		if (r != NULL)
			relay_position_row_settled(r->window);
		table_remove(rows[i].id);	/* frees topic and reason */
	}
	memmove(F.dead, F.dead + n, sizeof(relay_dead_row) * (F.ndead - n));
	F.ndead -= n;
}

bool
relay_take_rescan(void)
{
	bool		r = F.rescan;

	F.rescan = false;
	return r;
}

