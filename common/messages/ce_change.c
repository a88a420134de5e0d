/*-------------------------------------------------------------------------
 *
 * ce_change.c
 *	  the messages of a 'change' row: task event, audit record, task updates
 *
 * tk_ce_build() (cloudevents.c) calls, for a row of kind 'change',
 * ce_add_task_event(), ce_add_audit() and, for an UPDATE, ce_build_updates(),
 * in that order: the order and the message ids are the contract described
 * in cloudevents.c's header.  Each writes its data object with the JSON
 * writer of ce_internal.h between ce_msg_start() and ce_msg_end(); row
 * images go in as the raw JSON text PostgreSQL produced.  Only UPDATE rows
 * read the images, through the span scanner of json_scan.c: to splice each
 * changed column's previous and new value into a task_updates message, to
 * diff the tags arrays element by element, and to complete the audit
 * record's before image (put_full_before).
 *
 * IDENTIFICATION
 *	  common/messages/ce_change.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ce_internal.h"

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

	ce_msg_start(c, TK_STREAM_TASK_UPDATES, row->event_id, ":update:", (*n)++,
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
	ce_msg_end(c);
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
				ce_lit_same(l, e.val, e.val_len, l->spans[j].val, l->spans[j].val_len);
		for (int j = in0; j < i && !skip; j++)
			skip = is_string_lit(l->spans[j].val, l->spans[j].val_len) &&
				ce_lit_same(l, e.val, e.val_len, l->spans[j].val, l->spans[j].val_len);
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

bool
ce_build_updates(ce_ctx *c, char *errbuf, size_t errlen)
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
	if (!ce_json_items(l, row->before, true, &nb) ||
		!(na = nb, ce_json_items(l, row->after, true, &na)) ||
		!(nc = na, ce_json_items(l, row->changed, false, &nc)))
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
		pv = ce_member(l, 0, nb, col.val, col.val_len);
		nv = ce_member(l, nb, na, col.val, col.val_len);
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

			if (pv && prev.val[0] == '[' && !ce_json_items_at(l, prev.val, false, &p1))
				c->failed = true;
			n1 = p1;
			if (nv && next.val[0] == '[' && !ce_json_items_at(l, next.val, false, &n1))
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

void
ce_add_task_event(ce_ctx *c)
{
	const tk_outbox_row *row = c->row;
	tk_strbuf  *t = &c->l->text;

	ce_msg_start(c, row->stream, row->event_id, "", -1, "task.", row->event_type);
	if (c->failed)
		return;
	put_field(t, "{\"event_type\":", row->event_type);
	put_field(t, ",\"task_id\":", row->key);
	put_field(t, ",\"user_id\":", row->user_id);
	put_raw(t, ",\"task_data\":", row->after ? row->after : row->before);
	put_field(t, ",\"timestamp\":", row->occurred_at);
	put_field(t, ",\"correlation_id\":", row->correlation_id);
	put(t, "}");
	ce_msg_end(c);
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

	if (!ce_json_items(l, row->before, true, &nb) ||
		!(na = nb, ce_json_items(l, row->after, true, &na)))
	{
		/* not two objects: pass them on as they are */
		put_raw(t, ",\"before\":", row->before);
		return;
	}
	put(t, ",\"before\":{");
	for (int i = nb; i < na; i++)
	{
		const tk_json_span *a = &l->spans[i];
		const tk_json_span *b = ce_member(l, 0, nb, a->key, a->key_len);

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

void
ce_add_audit(ce_ctx *c)
{
	const tk_outbox_row *row = c->row;
	tk_strbuf  *t = &c->l->text;

	ce_msg_start(c, TK_STREAM_AUDIT, row->event_id, ":audit", -1, "audit.", row->event_type);
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
	ce_msg_end(c);
}

