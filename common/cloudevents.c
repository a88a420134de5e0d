/*-------------------------------------------------------------------------
 *
 * cloudevents.c
 *	  turn an outbox row into Kafka messages (CloudEvents 1.0, structured)
 *
 * Pure code: no I/O, no global state, thread-safe.  The relay calls
 * tk_ce_build() once per outbox row; consumers may reuse the same types.
 *
 * Every value is a CloudEvents 1.0 structured-mode JSON document:
 *	 specversion "1.0", id, source "/todo_kafka/<table>", type,
 *	 dataschema (the message's JSON Schema, for the built-in streams: see
 *	 tk_ce_dataschema), time (occurred_at, RFC 3339 UTC with "Z" and six
 *	 fraction digits), subject (the task id = outbox key), partitionkey
 *	 (the Kafka key, the CloudEvents partitioning extension; = subject),
 *	 datacontenttype "application/json", correlationid, userid (when known),
 *	 actor, traceparent (only when set), data.
 * Headers: content-type "application/cloudevents+json", event-id,
 * event-type, correlation-id, traceparent (when set), then the custom
 * headers of publish() (reserved names skipped).
 *
 * Fan-out (the list order is part of the contract: ids use positions):
 *	 kind 'change'	 1. the row's stream (task_events): type task.<event_type>,
 *					   id = event_id, data {event_type, task_id, user_id,
 *					   task_data (after, or before for deletes), timestamp,
 *					   correlation_id}
 *					 2. audit: type audit.<event_type>, id = <event_id>:audit,
 *					   data {event_id, actor, db_role, operation, event_type, table,
 *					   task_id, user_id, before, after, changed_fields, txid,
 *					   timestamp, correlation_id}; an UPDATE's before image,
 *					   kept in the outbox for the changed columns only, is
 *					   completed from the after image (put_full_before)
 *					 3. task_updates (UPDATE only): one message per changed
 *					   column in the order of outbox.changed, updated_at
 *					   skipped; "tags" gives one tag_added per new tag (in
 *					   the new array's order) then one tag_removed per
 *					   dropped tag (old array's order); "completed" gives
 *					   status_changed, "priority" priority_changed, any other
 *					   column field_updated.  id = <event_id>:update:<n>, n
 *					   counting from 0 in that order; type task.<event_type>.
 *	 kind 'custom'	 the row's stream only: type = event_type, data = after.
 *	 kind 'reminder' the row's stream only: data = after; type task.reminder
 *					 for sent/missed (the one consumers act on), else
 *					 reminder.<event_type>.
 * Row images are embedded as raw JSON text (PostgreSQL produced and
 * validated them, row_to_json/escape_json), so the common case never parses
 * them.  UPDATE rows scan before/after once (json_items() below: spans of
 * member values, no tree, no allocation) to splice the previous and new
 * value of each changed column; tags are diffed on their element literals.
 *
 * tk_ce_build_dead_letter() makes the small envelope sent to the dead-letter
 * stream when Kafka refuses a message for good: it names the original
 * message and the reason in headers and data, without its payload.
 *
 * Why not cJSON (STYLE.md rule 38): the relay builds two to seven messages
 * per outbox row, and building each as a cJSON tree (one allocation per
 * node and string, then a printed copy, then the tree freed) cost about
 * half of the relay's CPU per row in a drain profile (bench/RESULTS.md).
 * Messages are therefore written straight into one reusable buffer with
 * tk_strbuf_json_string() as the escaper (the same escapes cJSON's printer
 * makes), and the parts shared by every message of a row (source, time,
 * subject, correlation, user, actor, traceparent) are escaped once per row.
 * cJSON is still used to parse the custom headers of publish() rows (rare,
 * and their values must be unescaped).
 *
 * Memory: a tk_message_list keeps its buffers between rows; ids, types,
 * values and header values of its messages live in list->text, referenced
 * by offset while building (the buffer may move) and resolved to pointers
 * when a build call returns.  A build allocates only when a buffer grows.
 *
 * IDENTIFICATION
 *	  common/cloudevents.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "cloudevents.h"

#define CE_SOURCE_PREFIX "/todo_kafka/"
#define CE_MAX_DEPTH 64

static const char *const reserved_headers[] = {
	"content-type", "event-id", "event-type", "correlation-id", "traceparent", NULL
};

/*
 * The schema of each built-in stream's messages (schemas/<name>.v1.json).
 * Custom streams of publish() carry no dataschema: their data is the
 * application's.
 */
static const struct
{
	const char *stream;
	const char *schema;
}			ce_schemas[] = {
	{"task_events", TK_SCHEMA_BASE "task-events.v1.json"},
	{TK_STREAM_TASK_UPDATES, TK_SCHEMA_BASE "task-updates.v1.json"},
	{TK_STREAM_AUDIT, TK_SCHEMA_BASE "audit.v1.json"},
	{"reminders", TK_SCHEMA_BASE "reminders.v1.json"},
	{"notifications", TK_SCHEMA_BASE "notifications.v1.json"},
	{TK_STREAM_DEAD_LETTER, TK_SCHEMA_BASE "dead-letter.v1.json"},
};

/* the dataschema URI of a stream's messages, or NULL for a custom stream */
const char *
tk_ce_dataschema(const char *stream)
{
	if (stream == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(ce_schemas) / sizeof(ce_schemas[0]); i++)
		if (strcmp(stream, ce_schemas[i].stream) == 0)
			return ce_schemas[i].schema;
	return NULL;
}

/* a message under construction: offsets into list->text */
struct tk_msg_slot
{
	size_t		id;
	size_t		type;
	size_t		value;
	size_t		value_len;
	int			h0;				/* first header slot */
};

/* a header: static strings or offsets into list->text */
struct tk_hdr_slot
{
	const char *name;			/* NULL: name_off */
	size_t		name_off;
	const char *value;			/* NULL: value_off */
	size_t		value_off;
};

/* a JSON member (key literal with quotes + value) or array element */
struct tk_json_span
{
	const char *key;
	size_t		key_len;
	const char *val;
	size_t		val_len;
};

/* state of one build call */
typedef struct ce_ctx
{
	const tk_outbox_row *row;
	tk_message_list *l;
	size_t		source_off;		/* in scratch: ,"source":"..." */
	size_t		source_len;
	size_t		common_off;		/* in scratch: "time":...,"traceparent":..., */
	size_t		common_len;
	size_t		corr_off;		/* in text: correlation id (or "") */
	size_t		trace_off;		/* in text: traceparent */
	bool		has_trace;
	int			ncustom;		/* custom header pairs in text */
	size_t	   *custom;			/* name_off, value_off pairs */
	bool		failed;			/* out of memory */
} ce_ctx;

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

static bool
grow(void **p, int *cap, int need, size_t elem)
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
static size_t
text_add(ce_ctx *c, const char *s)
{
	size_t		off = c->l->text.len;

	tk_strbuf_append(&c->l->text, s, strlen(s) + 1);
	return off;
}

static void
hdr_add(ce_ctx *c, const char *name, size_t name_off,
		const char *value, size_t value_off)
{
	tk_message_list *l = c->l;
	tk_hdr_slot *h;

	if (l->nh == l->cap_h)
	{
		int			cap = l->cap_h;
		tk_header  *nh;

		if (!grow((void **) &l->hslots, &cap, l->nh + 1, sizeof(tk_hdr_slot)) ||
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
static void
resolve(tk_message_list *l)
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

/* ---- JSON writing ---- */

static void
put(tk_strbuf *sb, const char *s)
{
	tk_strbuf_append(sb, s, strlen(s));
}

/* ,"name":<string or null> */
static void
put_field(tk_strbuf *sb, const char *name, const char *value)
{
	put(sb, name);
	tk_strbuf_json_string(sb, value);
}

/* ,"name":<raw JSON or null> */
static void
put_raw(tk_strbuf *sb, const char *name, const char *json)
{
	put(sb, name);
	put(sb, json ? json : "null");
}

/* JSON-escape the string at text + off into text itself */
static void
put_text_string(tk_strbuf *sb, size_t off)
{
	size_t		n = strlen(sb->data + off);

	/* reserved: the source cannot move while it is copied */
	if (tk_strbuf_reserve(sb, 6 * n + 2))
		tk_strbuf_json_string(sb, sb->data + off);
}

/* the table name: outbox.source without the "/todo_kafka/" prefix */
static const char *
row_table(const tk_outbox_row *row)
{
	const char *s = row->source ? row->source : "";

	if (strncmp(s, CE_SOURCE_PREFIX, strlen(CE_SOURCE_PREFIX)) == 0)
		return s + strlen(CE_SOURCE_PREFIX);
	return s;
}

static bool
is_digits(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/*
 * Per-row preparation: the envelope parts every message shares, the header
 * values, and the custom headers (parsed once).
 */
static bool
ctx_begin(ce_ctx *c, const tk_outbox_row *row, tk_message_list *l,
		  bool custom_headers)
{
	tk_strbuf  *sc = &l->scratch;
	bool		trace = row->traceparent && row->traceparent[0];

	memset(c, 0, sizeof(*c));
	c->row = row;
	c->l = l;
	tk_strbuf_reset(sc);

	c->source_off = sc->len;
	put(sc, ",\"source\":");
	if (row->source && row->source[0] == '/')
		tk_strbuf_json_string(sc, row->source);
	else
	{
		put(sc, "\"" CE_SOURCE_PREFIX);
		tk_strbuf_json_chars(sc, row_table(row));
		tk_strbuf_putc(sc, '"');
	}
	c->source_len = sc->len - c->source_off;

	c->common_off = sc->len;
	put_field(sc, ",\"time\":", row->occurred_at ? row->occurred_at : "");
	put_field(sc, ",\"subject\":", row->key ? row->key : "");
	if (row->key)				/* the Kafka key of every message of the row */
		put_field(sc, ",\"partitionkey\":", row->key);
	put(sc, ",\"datacontenttype\":\"application/json\"");
	put_field(sc, ",\"correlationid\":", row->correlation_id ? row->correlation_id : "");
	if (row->user_id)
		put_field(sc, ",\"userid\":", row->user_id);
	put_field(sc, ",\"actor\":", row->actor ? row->actor : "");
	if (trace)
		put_field(sc, ",\"traceparent\":", row->traceparent);
	put(sc, ",\"data\":");
	c->common_len = sc->len - c->common_off;

	c->corr_off = text_add(c, row->correlation_id ? row->correlation_id : "");
	c->has_trace = trace;
	if (trace)
		c->trace_off = text_add(c, row->traceparent);

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
				c->custom[2 * c->ncustom] = text_add(c, e->string);
				c->custom[2 * c->ncustom + 1] =
					text_add(c, cJSON_IsString(e) ? e->valuestring :
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

static void
ctx_end(ce_ctx *c)
{
	free(c->custom);
	c->custom = NULL;
}

/*
 * Start a message: id = id_base + id_suffix (+ id_n when >= 0), type =
 * type_prefix + type; write the envelope up to "data": and the headers.
 * The caller writes the data, then calls msg_end().
 */
static void
msg_start(ce_ctx *c, const char *stream, const char *id_base,
		  const char *id_suffix, int id_n, const char *type_prefix,
		  const char *type)
{
	tk_message_list *l = c->l;
	tk_strbuf  *t = &l->text;
	tk_msg_slot *s;
	tk_message *m;
	const char *schema;

	if (l->n == l->cap)
	{
		int			cap = l->cap;
		tk_msg_slot *ns;

		if (!grow((void **) &l->msgs, &cap, l->n + 1, sizeof(tk_message)) ||
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
	hdr_add(c, "content-type", 0, "application/cloudevents+json", 0);
	hdr_add(c, "event-id", 0, NULL, s->id);
	hdr_add(c, "event-type", 0, NULL, s->type);
	hdr_add(c, "correlation-id", 0, NULL, c->corr_off);
	if (c->has_trace)
		hdr_add(c, "traceparent", 0, NULL, c->trace_off);
	for (int i = 0; i < c->ncustom; i++)
		hdr_add(c, NULL, c->custom[2 * i], NULL, c->custom[2 * i + 1]);

	s->value = t->len;
	put(t, "{\"specversion\":\"1.0\",\"id\":");
	put_text_string(t, s->id);
	tk_strbuf_append(t, l->scratch.data + c->source_off, c->source_len);
	put(t, ",\"type\":");
	put_text_string(t, s->type);
	if ((schema = tk_ce_dataschema(stream)) != NULL)
		put_field(t, ",\"dataschema\":", schema);
	tk_strbuf_append(t, l->scratch.data + c->common_off, c->common_len);
}

static void
msg_end(ce_ctx *c)
{
	tk_message_list *l = c->l;
	tk_msg_slot *s = &l->slots[l->n - 1];

	tk_strbuf_putc(&l->text, '}');
	s->value_len = l->text.len - s->value;
	tk_strbuf_putc(&l->text, '\0');
}

/* ---- JSON scanning (UPDATE rows) ---- */

static const char *
skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* p at '"': returns the position after the closing quote, or NULL */
static const char *
skip_string(const char *p)
{
	for (p++; *p; p++)
	{
		if (*p == '"')
			return p + 1;
		if (*p == '\\')
		{
			if (p[1] == '\0')
				return NULL;
			p++;
		}
		else if ((unsigned char) *p < 0x20)
			return NULL;
	}
	return NULL;
}

/* returns the position after the JSON value starting at p (no ws), or NULL */
static const char *
skip_value(const char *p, int depth)
{
	char		close;

	if (depth > CE_MAX_DEPTH)
		return NULL;
	switch (*p)
	{
		case '"':
			return skip_string(p);
		case '{':
		case '[':
			close = *p == '{' ? '}' : ']';
			p = skip_ws(p + 1);
			if (*p == close)
				return p + 1;
			for (;;)
			{
				if (close == '}')
				{
					if (*p != '"' || (p = skip_string(p)) == NULL)
						return NULL;
					p = skip_ws(p);
					if (*p != ':')
						return NULL;
					p = skip_ws(p + 1);
				}
				if ((p = skip_value(p, depth + 1)) == NULL)
					return NULL;
				p = skip_ws(p);
				if (*p == close)
					return p + 1;
				if (*p != ',')
					return NULL;
				p = skip_ws(p + 1);
			}
		default:
			{
				const char *q = p;

				while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
					   *p == '-' || *p == '+' || *p == '.' || *p == 'E')
					p++;
				return p > q ? p : NULL;
			}
	}
}

/*
 * Append the members (object) or elements (array) of the well-formed JSON
 * value at p to l->spans from index *n on.  false: out of memory.
 */
static bool
json_items_at(tk_message_list *l, const char *p, bool object, int *n)
{
	char		close = object ? '}' : ']';

	p = skip_ws(p + 1);
	if (*p == close)
		return true;
	for (;;)
	{
		tk_json_span *sp;
		const char *k = NULL;
		const char *kend = NULL;
		const char *v;

		if (object)
		{
			k = p;
			kend = skip_string(p);
			p = skip_ws(skip_ws(kend) + 1);
		}
		v = p;
		p = skip_value(p, 1);
		if (!grow((void **) &l->spans, &l->cap_spans, *n + 1, sizeof(tk_json_span)))
			return false;
		sp = &l->spans[(*n)++];
		sp->key = k;
		sp->key_len = k ? (size_t) (kend - k) : 0;
		sp->val = v;
		sp->val_len = p - v;
		p = skip_ws(p);
		if (*p == close)
			return true;
		p = skip_ws(p + 1);
	}
}

/*
 * The same for a whole text, checked first: false when json is not one
 * well-formed object (object) or array, or out of memory.
 */
static bool
json_items(tk_message_list *l, const char *json, bool object, int *n)
{
	const char *p = skip_ws(json);
	const char *end;

	if (*p != (object ? '{' : '['))
		return false;
	end = skip_value(p, 0);
	if (end == NULL || *skip_ws(end) != '\0')
		return false;
	return json_items_at(l, p, object, n);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static unsigned
hex4(const char *p)
{
	unsigned	v = 0;

	for (int i = 0; i < 4; i++)
	{
		int			h = hexval(p[i]);

		if (h < 0)
			return 0xFFFFFFFF;
		v = v * 16 + h;
	}
	return v;
}

/* append the decoded content of string literal lit (with quotes) to sb */
static void
lit_decode(tk_strbuf *sb, const char *lit, size_t len)
{
	const char *p = lit + 1;
	const char *end = lit + len - 1;

	while (p < end)
	{
		unsigned	cp;
		char		u[4];
		int			n;

		if (*p != '\\')
		{
			const char *q = p;

			while (q < end && *q != '\\')
				q++;
			tk_strbuf_append(sb, p, q - p);
			p = q;
			continue;
		}
		p++;
		switch (*p)
		{
			case 'b':
				tk_strbuf_putc(sb, '\b');
				break;
			case 'f':
				tk_strbuf_putc(sb, '\f');
				break;
			case 'n':
				tk_strbuf_putc(sb, '\n');
				break;
			case 'r':
				tk_strbuf_putc(sb, '\r');
				break;
			case 't':
				tk_strbuf_putc(sb, '\t');
				break;
			case 'u':
				if (end - p < 5 || (cp = hex4(p + 1)) == 0xFFFFFFFF)
				{
					tk_strbuf_putc(sb, 'u');
					break;
				}
				p += 4;
				if (cp >= 0xD800 && cp < 0xDC00 && end - p >= 7 &&
					p[1] == '\\' && p[2] == 'u')
				{
					unsigned	lo = hex4(p + 3);

					if (lo >= 0xDC00 && lo < 0xE000)
					{
						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
						p += 6;
					}
				}
				if (cp < 0x80)
					u[0] = cp, n = 1;
				else if (cp < 0x800)
					u[0] = 0xC0 | (cp >> 6), u[1] = 0x80 | (cp & 0x3F), n = 2;
				else if (cp < 0x10000)
					u[0] = 0xE0 | (cp >> 12), u[1] = 0x80 | ((cp >> 6) & 0x3F),
						u[2] = 0x80 | (cp & 0x3F), n = 3;
				else
					u[0] = 0xF0 | (cp >> 18), u[1] = 0x80 | ((cp >> 12) & 0x3F),
						u[2] = 0x80 | ((cp >> 6) & 0x3F), u[3] = 0x80 | (cp & 0x3F), n = 4;
				tk_strbuf_append(sb, u, n);
				break;
			default:			/* \" \\ \/ */
				tk_strbuf_putc(sb, *p);
				break;
		}
		p++;
	}
}

static bool
is_string_lit(const char *v, size_t len)
{
	return len >= 2 && v[0] == '"';
}

/*
 * Do two string literals denote the same string?  PostgreSQL's escape_json
 * spells a string one way, so equal strings are equal bytes; literals with
 * escapes are decoded and compared to be safe with other spellings.
 */
static bool
lit_same(tk_message_list *l, const char *a, size_t alen, const char *b, size_t blen)
{
	tk_strbuf  *sc = &l->scratch;
	size_t		mark = sc->len;
	size_t		da;
	bool		same;

	if (alen == blen && memcmp(a, b, alen) == 0)
		return true;
	if (memchr(a, '\\', alen) == NULL && memchr(b, '\\', blen) == NULL)
		return false;
	lit_decode(sc, a, alen);
	da = sc->len - mark;
	lit_decode(sc, b, blen);
	same = !sc->oom && sc->len - mark - da == da &&
		memcmp(sc->data + mark, sc->data + mark + da, da) == 0;
	sc->len = mark;
	return same;
}

/* does string literal lit denote s (a name without escapes)? */
static bool
lit_is(const char *lit, size_t len, const char *s)
{
	size_t		n = strlen(s);

	return len == n + 2 && memcmp(lit + 1, s, n) == 0;
}

/* the member of object items [from, to) whose key is the literal key */
static const tk_json_span *
member(tk_message_list *l, int from, int to, const char *key, size_t key_len)
{
	for (int i = from; i < to; i++)
		if (lit_same(l, l->spans[i].key, l->spans[i].key_len, key, key_len))
			return &l->spans[i];
	return NULL;
}

/* ---- the messages ---- */

static void
put_value(tk_strbuf *sb, const char *name, const tk_json_span *v)
{
	put(sb, name);
	if (v)
		tk_strbuf_append(sb, v->val, v->val_len);
	else
		put(sb, "null");
}

/* one task_updates message; prev/next are JSON value spans or NULL */
static void
add_update(ce_ctx *c, int *n, const char *event_type, const char *field_lit,
		   size_t field_len, const tk_json_span *prev, const tk_json_span *next)
{
	const tk_outbox_row *row = c->row;
	tk_strbuf  *t = &c->l->text;

	msg_start(c, TK_STREAM_TASK_UPDATES, row->event_id, ":update:", (*n)++,
			  "task.", event_type);
	if (c->failed)
		return;
	put(t, "{\"event_type\":\"");
	put(t, event_type);
	put_field(t, "\",\"task_id\":", row->key);
	put_field(t, ",\"user_id\":", row->user_id);
	put(t, ",\"field_changed\":");
	tk_strbuf_append(t, field_lit, field_len);
	put_value(t, ",\"previous_value\":", prev);
	put_value(t, ",\"new_value\":", next);
	put_field(t, ",\"changed_by\":", row->actor);
	put_field(t, ",\"timestamp\":", row->occurred_at);
	put_field(t, ",\"correlation_id\":", row->correlation_id);
	put(t, "}");
	msg_end(c);
}

/* one message per tag (string) in items [in0, in1) absent from [no0, no1) */
static void
add_tag_diff(ce_ctx *c, int *n, const char *event_type, const char *field_lit,
			 size_t field_len, int in0, int in1, int no0, int no1, bool added)
{
	tk_message_list *l = c->l;

	for (int i = in0; i < in1 && !c->failed; i++)
	{
		tk_json_span e = l->spans[i];
		bool		skip = !is_string_lit(e.val, e.val_len);

		for (int j = no0; j < no1 && !skip; j++)
			skip = is_string_lit(l->spans[j].val, l->spans[j].val_len) &&
				lit_same(l, e.val, e.val_len, l->spans[j].val, l->spans[j].val_len);
		for (int j = in0; j < i && !skip; j++)
			skip = is_string_lit(l->spans[j].val, l->spans[j].val_len) &&
				lit_same(l, e.val, e.val_len, l->spans[j].val, l->spans[j].val_len);
		if (!skip)
			add_update(c, n, event_type, field_lit, field_len,
					   added ? NULL : &e, added ? &e : NULL);
	}
}

/* is span v a JSON array, null or absent (a tags value we can diff)? */
static bool
array_or_null(const tk_json_span *v)
{
	return v == NULL || v->val[0] == '[' || (v->val_len == 4 && memcmp(v->val, "null", 4) == 0);
}

static bool
build_updates(ce_ctx *c, char *errbuf, size_t errlen)
{
	const tk_outbox_row *row = c->row;
	tk_message_list *l = c->l;
	int			nb = 0,
				na,
				nc,
				ns;
	int			n = 0;

	if (row->changed == NULL)
		return true;
	if (!json_items(l, row->before, true, &nb) ||
		!(na = nb, json_items(l, row->after, true, &na)) ||
		!(nc = na, json_items(l, row->changed, false, &nc)))
	{
		snprintf(errbuf, errlen, "outbox row %s: malformed before, after or changed",
				 row->id);
		return false;
	}
	ns = nc;
	for (int i = na; i < nc && !c->failed; i++)
	{
		tk_json_span col = l->spans[i];
		const tk_json_span *pv;
		const tk_json_span *nv;
		tk_json_span prev,
					next;

		if (!is_string_lit(col.val, col.val_len) ||
			lit_is(col.val, col.val_len, "updated_at"))
			continue;
		/* copies: spans may move when tag elements are appended */
		pv = member(l, 0, nb, col.val, col.val_len);
		nv = member(l, nb, na, col.val, col.val_len);
		if (pv)
			prev = *pv;
		if (nv)
			next = *nv;
		if (lit_is(col.val, col.val_len, "tags") && array_or_null(pv) && array_or_null(nv))
		{
			/* elements: old tags [p0, p1), new tags [p1, n1) */
			int			p0 = ns,
						p1 = ns,
						n1;

			if (pv && prev.val[0] == '[' && !json_items_at(l, prev.val, false, &p1))
				c->failed = true;
			n1 = p1;
			if (nv && next.val[0] == '[' && !json_items_at(l, next.val, false, &n1))
				c->failed = true;
			add_tag_diff(c, &n, "tag_added", col.val, col.val_len, p1, n1, p0, p1, true);
			add_tag_diff(c, &n, "tag_removed", col.val, col.val_len, p0, p1, p1, n1, false);
			continue;
		}
		add_update(c, &n,
				   lit_is(col.val, col.val_len, "completed") ? "status_changed" :
				   lit_is(col.val, col.val_len, "priority") ? "priority_changed" :
				   "field_updated",
				   col.val, col.val_len, pv ? &prev : NULL, nv ? &next : NULL);
	}
	if (c->failed)
		snprintf(errbuf, errlen, "out of memory");
	return !c->failed;
}

static const char *
row_operation(const tk_outbox_row *row)
{
	if (row->before == NULL)
		return "INSERT";
	if (row->after == NULL)
		return "DELETE";
	return "UPDATE";
}

static void
add_task_event(ce_ctx *c)
{
	const tk_outbox_row *row = c->row;
	tk_strbuf  *t = &c->l->text;

	msg_start(c, row->stream, row->event_id, "", -1, "task.", row->event_type);
	if (c->failed)
		return;
	put_field(t, "{\"event_type\":", row->event_type);
	put_field(t, ",\"task_id\":", row->key);
	put_field(t, ",\"user_id\":", row->user_id);
	put_raw(t, ",\"task_data\":", row->after ? row->after : row->before);
	put_field(t, ",\"timestamp\":", row->occurred_at);
	put_field(t, ",\"correlation_id\":", row->correlation_id);
	put(t, "}");
	msg_end(c);
}

/*
 * The audit record's before image of an UPDATE.  The outbox keeps only the
 * changed columns in an UPDATE's before image (the capture trigger saves
 * the json work and WAL); the others equal the after image.  So walk the
 * after image's members in order and take each value from the before image
 * when it has that member: the result is the text row_to_json() gives for
 * the old row.  A full before image (older rows) comes out unchanged.
 */
static void
put_full_before(ce_ctx *c)
{
	const tk_outbox_row *row = c->row;
	tk_message_list *l = c->l;
	tk_strbuf  *t = &l->text;
	int			nb = 0,
				na;

	if (!json_items(l, row->before, true, &nb) ||
		!(na = nb, json_items(l, row->after, true, &na)))
	{
		/* not two objects: pass them on as they are */
		put_raw(t, ",\"before\":", row->before);
		return;
	}
	put(t, ",\"before\":{");
	for (int i = nb; i < na; i++)
	{
		const tk_json_span *a = &l->spans[i];
		const tk_json_span *b = member(l, 0, nb, a->key, a->key_len);

		if (i > nb)
			put(t, ",");
		tk_strbuf_append(t, a->key, a->key_len);
		put(t, ":");
		if (b)
			tk_strbuf_append(t, b->val, b->val_len);
		else
			tk_strbuf_append(t, a->val, a->val_len);
	}
	put(t, "}");
}

static void
add_audit(ce_ctx *c)
{
	const tk_outbox_row *row = c->row;
	tk_strbuf  *t = &c->l->text;

	msg_start(c, TK_STREAM_AUDIT, row->event_id, ":audit", -1, "audit.", row->event_type);
	if (c->failed)
		return;
	put_field(t, "{\"event_id\":", row->event_id);
	put_field(t, ",\"actor\":", row->actor);
	put_field(t, ",\"db_role\":", row->db_role);
	put_field(t, ",\"operation\":", row_operation(row));
	put_field(t, ",\"event_type\":", row->event_type);
	put_field(t, ",\"table\":", row_table(row));
	put_field(t, ",\"task_id\":", row->key);
	put_field(t, ",\"user_id\":", row->user_id);
	if (row->before && row->after)
		put_full_before(c);
	else
		put_raw(t, ",\"before\":", row->before);
	put_raw(t, ",\"after\":", row->after);
	put_raw(t, ",\"changed_fields\":", row->changed);
	if (is_digits(row->xid))
		put_raw(t, ",\"txid\":", row->xid);
	else
		put_field(t, ",\"txid\":", row->xid);
	put_field(t, ",\"timestamp\":", row->occurred_at);
	put_field(t, ",\"correlation_id\":", row->correlation_id);
	put(t, "}");
	msg_end(c);
}

/* undo a failed build: drop what it appended */
static void
truncate_to(tk_message_list *l, int n, int nh, size_t text_len)
{
	l->n = n;
	l->nh = nh;
	l->text.len = text_len;
	if (l->text.data)
		l->text.data[text_len] = '\0';
	l->text.oom = l->scratch.oom = false;
}

/*
 * Build every message of one outbox row, appended to out.  Returns the number
 * of messages added, or -1 with a reason in errbuf when the row cannot be
 * turned into messages (unknown kind, malformed images): a poison row.
 */
int
tk_ce_build(const tk_outbox_row *row, tk_message_list *out,
			char *errbuf, size_t errlen)
{
	int			first = out->n;
	int			first_h = out->nh;
	size_t		first_text = out->text.len;
	ce_ctx		c;
	bool		ok;

	if (row->event_id == NULL || row->kind == NULL || row->stream == NULL ||
		row->event_type == NULL)
	{
		snprintf(errbuf, errlen, "outbox row %s: missing event_id, kind, stream or event_type",
				 row->id ? row->id : "?");
		return -1;
	}
	if (strcmp(row->kind, "change") != 0 && strcmp(row->kind, "custom") != 0 &&
		strcmp(row->kind, "reminder") != 0)
	{
		snprintf(errbuf, errlen, "outbox row %s: unknown kind \"%s\"", row->id, row->kind);
		return -1;
	}

	ok = ctx_begin(&c, row, out, true);
	if (ok && strcmp(row->kind, "change") == 0)
	{
		add_task_event(&c);
		add_audit(&c);
		ok = !c.failed;
		if (!ok)
			snprintf(errbuf, errlen, "out of memory");
		else if (row->before && row->after)
			ok = build_updates(&c, errbuf, errlen);
	}
	else if (ok)
	{
		bool		reminder = strcmp(row->kind, "reminder") == 0;
		bool		due = reminder && (strcmp(row->event_type, "sent") == 0 ||
									   strcmp(row->event_type, "missed") == 0);

		msg_start(&c, row->stream, row->event_id, "", -1,
				  !reminder ? "" : due ? "task." : "reminder.",
				  due ? "reminder" : row->event_type);
		if (!c.failed)
		{
			put(&out->text, row->after ? row->after : "null");
			msg_end(&c);
		}
		ok = !c.failed;
		if (!ok)
			snprintf(errbuf, errlen, "out of memory");
	}
	else
		snprintf(errbuf, errlen, "out of memory");
	ctx_end(&c);

	if (ok && (out->text.oom || out->scratch.oom))
	{
		snprintf(errbuf, errlen, "out of memory");
		ok = false;
	}
	if (ok)
		resolve(out);
	else
	{
		/* drop what this row added, keep earlier rows' messages */
		truncate_to(out, first, first_h, first_text);
		resolve(out);
		return -1;
	}
	return out->n - first;
}

int
tk_ce_build_dead_letter(const tk_outbox_row *row, const char *origin_topic,
						const char *origin_id, const char *origin_type,
						size_t origin_size, const char *error_name,
						const char *reason, tk_message_list *out)
{
	int			first = out->n;
	int			first_h = out->nh;
	size_t		first_text = out->text.len;
	tk_strbuf  *t = &out->text;
	ce_ctx		c;

	/* the dead-letter envelope carries no custom headers of the original */
	ctx_begin(&c, row, out, false);
	msg_start(&c, TK_STREAM_DEAD_LETTER, origin_id, ":dead-letter", -1, "",
			  "todo_kafka.dead_letter");
	if (!c.failed)
	{
		put_raw(t, "{\"outbox_id\":", is_digits(row->id) ? row->id : "null");
		put_field(t, ",\"event_id\":", row->event_id);
		put_field(t, ",\"message_id\":", origin_id);
		put_field(t, ",\"message_type\":", origin_type);
		put_field(t, ",\"origin_topic\":", origin_topic);
		put_field(t, ",\"key\":", row->key);
		tk_strbuf_printf(t, ",\"message_size\":%zu", origin_size);
		put_field(t, ",\"error\":", error_name);
		put_field(t, ",\"reason\":", reason);
		put_field(t, ",\"timestamp\":", row->occurred_at);
		put_field(t, ",\"correlation_id\":", row->correlation_id);
		put(t, "}");
		msg_end(&c);
		hdr_add(&c, "dlq-reason", 0, NULL, text_add(&c, reason));
		hdr_add(&c, "dlq-error", 0, NULL, text_add(&c, error_name));
		hdr_add(&c, "dlq-origin-topic", 0, NULL, text_add(&c, origin_topic));
		hdr_add(&c, "dlq-origin-event-id", 0, NULL, text_add(&c, origin_id));
		hdr_add(&c, "dlq-outbox-id", 0, NULL, text_add(&c, row->id ? row->id : ""));
	}
	ctx_end(&c);
	if (c.failed || t->oom || out->scratch.oom)
	{
		truncate_to(out, first, first_h, first_text);
		resolve(out);
		return -1;
	}
	resolve(out);
	return 1;
}
