/*-------------------------------------------------------------------------
 *
 * ce_internal.h
 *	  what the CloudEvents files share (not for callers: use cloudevents.h)
 *
 * Building messages from outbox rows is five files, one concern each,
 * each calling only the ones below it:
 *
 *	 cloudevents.c	tk_ce_build: which messages a row makes; custom and
 *					reminder rows;
 *	 dead_letter.c	both dead letters (an outbox row's refused message, a
 *					consumed message a service gave up on);
 *	 ce_change.c	the messages of a 'change' row: task event, audit
 *					record, task updates;
 *	 json_scan.c	the scanner that splits a row image into spans of
 *					members and elements (ce_json_items), for UPDATE rows;
 *	 message_list.c	the storage of a tk_message_list (one text buffer, slots
 *					of offsets resolved to pointers at the end of a build),
 *					the per-row envelope parts (ce_ctx_begin) and the
 *					envelope and headers of one message (ce_msg_start,
 *					ce_msg_end), written by envelope.c.
 *
 * The data is written with the few inline functions below (put,
 * put_field, put_raw) over tk_strbuf_json_string(), the escaper: see
 * message_list.c for why messages are text and not cJSON trees.
 * Functions shared between the files carry the ce_ prefix.
 *
 * IDENTIFICATION
 *	  common/messages/ce_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_CE_INTERNAL_H
#define TK_CE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "envelope.h"
#include "message_list.h"
#include "strbuf.h"

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
	size_t		source_off;		/* in text: the source, unescaped */
	size_t		corr_off;		/* in text: correlation id (or "") */
	size_t		trace_off;		/* in text: traceparent */
	bool		has_trace;
	int			ncustom;		/* custom header pairs in text */
	size_t	   *custom;			/* name_off, value_off pairs */
	bool		failed;			/* out of memory */
} ce_ctx;

/* ---- storage and envelope (message_list.c) ---- */

extern bool ce_grow(void **p, int *cap, int need, size_t elem);
extern size_t ce_text_add(ce_ctx *c, const char *s);
extern void ce_hdr_add(ce_ctx *c, const char *name, size_t name_off,
					   const char *value, size_t value_off);
extern void ce_resolve(tk_message_list *l);
extern void ce_truncate_to(tk_message_list *l, int n, int nh, size_t text_len);
extern bool ce_ctx_begin(ce_ctx *c, const tk_outbox_row *row, tk_message_list *l,
						 bool custom_headers);
extern void ce_ctx_end(ce_ctx *c);
extern void ce_msg_start(ce_ctx *c, const char *stream, const char *id_base,
						 const char *id_suffix, int id_n, const char *type_prefix,
						 const char *type);
extern void ce_msg_end(ce_ctx *c);

/* ---- JSON scanning (json_scan.c) ---- */

extern bool ce_json_items_at(tk_message_list *l, const char *p, bool object, int *n);
extern bool ce_json_items(tk_message_list *l, const char *json, bool object, int *n);
extern bool ce_lit_same(tk_message_list *l, const char *a, size_t alen,
						const char *b, size_t blen);
extern const tk_json_span *ce_member(tk_message_list *l, int from, int to,
									 const char *key, size_t key_len);

static inline bool
is_string_lit(const char *v, size_t len)
{
	return len >= 2 && v[0] == '"';
}

/* does string literal lit denote s (a name without escapes)? */
static inline bool
lit_is(const char *lit, size_t len, const char *s)
{
	size_t		n = strlen(s);

	return len == n + 2 && memcmp(lit + 1, s, n) == 0;
}

/* ---- the messages of a 'change' row (ce_change.c) ---- */

extern void ce_add_task_event(ce_ctx *c);
extern void ce_add_audit(ce_ctx *c);
extern bool ce_build_updates(ce_ctx *c, char *errbuf, size_t errlen);

/* ---- JSON writing ---- */

static inline void
put(tk_strbuf *sb, const char *s)
{
	tk_strbuf_append(sb, s, strlen(s));
}

/* ,"name":<string or null> */
static inline void
put_field(tk_strbuf *sb, const char *name, const char *value)
{
	put(sb, name);
	tk_strbuf_json_string(sb, value);
}

/* ,"name":<raw JSON or null> */
static inline void
put_raw(tk_strbuf *sb, const char *name, const char *json)
{
	put(sb, name);
	put(sb, json ? json : "null");
}

/* the table name: outbox.source without the "/todo_kafka/" prefix */
static inline const char *
row_table(const tk_outbox_row *row)
{
	const char *s = row->source ? row->source : "";

	if (strncmp(s, TK_CE_SOURCE_PREFIX, strlen(TK_CE_SOURCE_PREFIX)) == 0)
		return s + strlen(TK_CE_SOURCE_PREFIX);
	return s;
}

static inline bool
is_digits(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

#endif							/* TK_CE_INTERNAL_H */
