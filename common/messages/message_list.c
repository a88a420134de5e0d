/*-------------------------------------------------------------------------
 *
 * message_list.c
 *	  a tk_message_list's storage, and the envelope and headers of a message
 *
 * The builders (cloudevents.c, ce_change.c, dead_letter.c) make a message
 * in three steps: ce_msg_start() appends a message slot, its id, type and
 * headers, and the envelope up to "data": (envelope.c writes it); the
 * builder writes the data into list->text (ce_internal.h's writer);
 * ce_msg_end() closes it.  ce_ctx_begin() prepares, once per row, what
 * every message of the row shares (the source, the envelope's context:
 * time, subject, partitionkey, correlation, user, actor, traceparent).
 *
 * Why not cJSON (STYLE.md rule 38): the relay builds two to seven messages
 * per outbox row, and cJSON trees cost about half of the relay's CPU per
 * row in a drain profile (bench/RESULTS.md), so messages are written
 * straight into one reusable buffer with tk_strbuf_json_string() (cJSON's
 * escapes).  cJSON still parses the custom headers of publish() rows.
 *
 * Memory: a list keeps its buffers between rows; ids, types, values and
 * header values live in list->text, referenced by offset while building
 * (the buffer may move) and resolved to pointers by ce_resolve() when a
 * build returns; ce_truncate_to() drops a failed build's messages.
 * Headers: a message's headers are the slots from its h0 up to the next
 * message's h0, so a header added after ce_msg_end() belongs to the last
 * message (the relay's dead letter adds its dlq-* headers that way).
 *
 * IDENTIFICATION
 *	  common/messages/message_list.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "ce_internal.h"

static const char *const reserved_headers[] = {
	"content-type", "event-id", "event-type", "correlation-id", "traceparent", NULL
};

void
tk_message_list_init(tk_message_list *l)
{
	memset(l, 0, sizeof(*l));
	tk_strbuf_init(&l->text);
	tk_strbuf_init(&l->scratch);
}

void
tk_message_list_clear(tk_message_list *l)
{
	l->n = 0;
	l->nh = 0;
	tk_strbuf_reset(&l->text);
	tk_strbuf_reset(&l->scratch);
	l->text.oom = l->scratch.oom = false;
}

void
tk_message_list_free(tk_message_list *l)
{
	tk_strbuf_free(&l->text);
	tk_strbuf_free(&l->scratch);
	free(l->msgs);
	free(l->slots);
	free(l->hslots);
	free(l->headers);
	free(l->spans);
	tk_message_list_init(l);
}

/* ---- storage ---- */

bool
ce_grow(void **p, int *cap, int need, size_t elem)
{
	int			n = *cap ? *cap : 16;
	void	   *q;

	if (need <= *cap)
		return true;
	while (n < need)
		n *= 2;
	q = realloc(*p, elem * n);
	if (q == NULL)
		return false;
	*p = q;
	*cap = n;
	return true;
}

/* append s to text with its terminator; returns its offset */
size_t
ce_text_add(ce_ctx *c, const char *s)
{
	size_t		off = c->l->text.len;

	tk_strbuf_append(&c->l->text, s, strlen(s) + 1);
	return off;
}

void
ce_hdr_add(ce_ctx *c, const char *name, size_t name_off,
		   const char *value, size_t value_off)
{
	tk_message_list *l = c->l;
	tk_hdr_slot *h;

	if (l->nh == l->cap_h)
	{
		int			cap = l->cap_h;
		tk_header  *nh;

		if (!ce_grow((void **) &l->hslots, &cap, l->nh + 1, sizeof(tk_hdr_slot)) ||
			(nh = realloc(l->headers, sizeof(tk_header) * cap)) == NULL)
		{
			c->failed = true;
			return;
		}
		l->headers = nh;
		l->cap_h = cap;			/* headers follow hslots' capacity */
	}
	h = &l->hslots[l->nh++];
	h->name = name;
	h->name_off = name_off;
	h->value = value;
	h->value_off = value_off;
}

/* make every message's pointers point into the (final) buffers */
void
ce_resolve(tk_message_list *l)
{
	tk_header  *hs = l->headers;

	for (int i = 0; i < l->nh; i++)
	{
		tk_hdr_slot *h = &l->hslots[i];

		hs[i].name = h->name ? h->name : l->text.data + h->name_off;
		hs[i].value = h->value ? h->value : l->text.data + h->value_off;
	}
	for (int i = 0; i < l->n; i++)
	{
		tk_msg_slot *s = &l->slots[i];
		tk_message *m = &l->msgs[i];
		int			h1 = i + 1 < l->n ? l->slots[i + 1].h0 : l->nh;

		m->id = l->text.data + s->id;
		m->type = l->text.data + s->type;
		m->value = l->text.data + s->value;
		m->value_len = s->value_len;
		m->headers = hs + s->h0;
		m->nheaders = h1 - s->h0;
	}
}

/*
 * Per-row preparation: the envelope parts every message shares, the header
 * values, and the custom headers (parsed once).
 */
bool
ce_ctx_begin(ce_ctx *c, const tk_outbox_row *row, tk_message_list *l,
			 bool custom_headers)
{
	tk_strbuf  *sc = &l->scratch;
	bool		trace = row->traceparent && row->traceparent[0];
	tk_envelope env = {0};

	memset(c, 0, sizeof(*c));
	c->row = row;
	c->l = l;
	tk_strbuf_reset(sc);

	/* the source, unescaped: written into each message's head */
	c->source_off = l->text.len;
	if (row->source && row->source[0] == '/')
		ce_text_add(c, row->source);
	else
	{
		put(&l->text, TK_CE_SOURCE_PREFIX);
		ce_text_add(c, row_table(row));
	}

	/* the rest of the envelope, the same in every message of the row */
	env.time = row->occurred_at ? row->occurred_at : "";
	env.subject = row->key ? row->key : "";
	env.partitionkey = row->key;	/* the Kafka key of every message */
	env.correlationid = row->correlation_id ? row->correlation_id : "";
	env.userid = row->user_id;
	env.actor = row->actor ? row->actor : "";
	env.traceparent = trace ? row->traceparent : NULL;
	tk_envelope_put_context(sc, &env);

	c->corr_off = ce_text_add(c, row->correlation_id ? row->correlation_id : "");
	c->has_trace = trace;
	if (trace)
		c->trace_off = ce_text_add(c, row->traceparent);

	if (custom_headers && row->headers)
	{
		cJSON	   *h = cJSON_Parse(row->headers);
		cJSON	   *e;
		int			n = cJSON_GetArraySize(h);

		if (cJSON_IsObject(h) && n > 0 &&
			(c->custom = malloc(sizeof(size_t) * 2 * n)) != NULL)
		{
			cJSON_ArrayForEach(e, h)
			{
				bool		reserved = false;
				char	   *printed = NULL;

				for (int i = 0; reserved_headers[i]; i++)
					if (strcasecmp(e->string, reserved_headers[i]) == 0)
						reserved = true;
				if (reserved)
					continue;
				if (!cJSON_IsString(e))
					printed = cJSON_PrintUnformatted(e);
				c->custom[2 * c->ncustom] = ce_text_add(c, e->string);
				c->custom[2 * c->ncustom + 1] =
					ce_text_add(c, cJSON_IsString(e) ? e->valuestring :
								printed ? printed : "");
				c->ncustom++;
				cJSON_free(printed);
			}
		}
		else if (cJSON_IsObject(h) && n > 0)
			c->failed = true;
		cJSON_Delete(h);
	}
	return !c->failed && !sc->oom;
}

void
ce_ctx_end(ce_ctx *c)
{
	free(c->custom);
	c->custom = NULL;
}

/*
 * Start a message: id = id_base + id_suffix (+ id_n when >= 0), type =
 * type_prefix + type; write the envelope up to "data": and the headers.
 * The caller writes the data, then calls ce_msg_end().
 */
void
ce_msg_start(ce_ctx *c, const char *stream, const char *id_base,
			 const char *id_suffix, int id_n, const char *type_prefix,
			 const char *type)
{
	tk_message_list *l = c->l;
	tk_strbuf  *t = &l->text;
	tk_msg_slot *s;
	tk_message *m;
	tk_envelope env = {0};

	if (l->n == l->cap)
	{
		int			cap = l->cap;
		tk_msg_slot *ns;

		if (!ce_grow((void **) &l->msgs, &cap, l->n + 1, sizeof(tk_message)) ||
			(ns = realloc(l->slots, sizeof(tk_msg_slot) * cap)) == NULL)
		{
			c->failed = true;
			return;
		}
		l->slots = ns;
		l->cap = cap;			/* slots follow msgs' capacity */
	}
	m = &l->msgs[l->n];
	s = &l->slots[l->n];
	l->n++;
	memset(m, 0, sizeof(*m));
	m->stream = stream;

	s->id = t->len;
	put(t, id_base);
	put(t, id_suffix);
	if (id_n >= 0)
		tk_strbuf_printf(t, "%d", id_n);
	tk_strbuf_putc(t, '\0');
	s->type = t->len;
	put(t, type_prefix);
	put(t, type);
	tk_strbuf_putc(t, '\0');

	s->h0 = l->nh;
	ce_hdr_add(c, "content-type", 0, TK_CE_CONTENT_TYPE, 0);
	ce_hdr_add(c, "event-id", 0, NULL, s->id);
	ce_hdr_add(c, "event-type", 0, NULL, s->type);
	ce_hdr_add(c, "correlation-id", 0, NULL, c->corr_off);
	if (c->has_trace)
		ce_hdr_add(c, "traceparent", 0, NULL, c->trace_off);
	for (int i = 0; i < c->ncustom; i++)
		ce_hdr_add(c, NULL, c->custom[2 * i], NULL, c->custom[2 * i + 1]);

	/*
	 * The head: id, source and type are in text itself, so room for their
	 * escaped forms is reserved first (the buffer cannot move under them).
	 */
	s->value = t->len;
	if (!tk_strbuf_reserve(t, 6 * (strlen(t->data + s->id) + strlen(t->data + s->type) +
								   strlen(t->data + c->source_off)) + 256))
	{
		c->failed = true;
		return;
	}
	env.id = t->data + s->id;
	env.source = t->data + c->source_off;
	env.type = t->data + s->type;
	env.stream = stream;
	tk_envelope_put_head(t, &env);
	tk_strbuf_append(t, l->scratch.data, l->scratch.len);
}

void
ce_msg_end(ce_ctx *c)
{
	tk_message_list *l = c->l;
	tk_msg_slot *s = &l->slots[l->n - 1];

	tk_envelope_close(&l->text);
	s->value_len = l->text.len - s->value;
	tk_strbuf_putc(&l->text, '\0');
}

/* undo a failed build: drop what it appended */
void
ce_truncate_to(tk_message_list *l, int n, int nh, size_t text_len)
{
	l->n = n;
	l->nh = nh;
	l->text.len = text_len;
	if (l->text.data)
		l->text.data[text_len] = '\0';
	l->text.oom = l->scratch.oom = false;
}

