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
 *	 time (occurred_at, RFC 3339 UTC), subject (the task id = outbox key),
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
 *					   data {event_id, actor, operation, event_type, table,
 *					   task_id, user_id, before, after, changed_fields, txid,
 *					   timestamp, correlation_id}
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
 * validated them), so the common case never parses them; only UPDATE rows
 * parse before/after to compute field changes.
 *
 * tk_ce_build_dead_letter() makes the small envelope sent to the dead-letter
 * stream when Kafka refuses a message for good: it names the original
 * message and the reason in headers and data, without its payload.
 *
 * Memory: cJSON trees are built and freed here; each tk_message owns its
 * malloc'd strings until tk_message_list_clear().
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

static const char *const reserved_headers[] = {
	"content-type", "event-id", "event-type", "correlation-id", "traceparent", NULL
};

void
tk_message_list_init(tk_message_list *l)
{
	l->msgs = NULL;
	l->n = 0;
	l->cap = 0;
}

void
tk_message_list_clear(tk_message_list *l)
{
	for (int i = 0; i < l->n; i++)
	{
		tk_message *m = &l->msgs[i];

		free(m->id);
		free(m->type);
		free(m->value);
		for (int h = 0; h < m->nheaders; h++)
		{
			free(m->headers[h].name);
			free(m->headers[h].value);
		}
		free(m->headers);
	}
	l->n = 0;
}

void
tk_message_list_free(tk_message_list *l)
{
	tk_message_list_clear(l);
	free(l->msgs);
	tk_message_list_init(l);
}

static tk_message *
list_push(tk_message_list *l)
{
	tk_message *m;

	if (l->n == l->cap)
	{
		int			cap = l->cap ? l->cap * 2 : 8;
		tk_message *p = realloc(l->msgs, sizeof(tk_message) * cap);

		if (p == NULL)
			return NULL;
		l->msgs = p;
		l->cap = cap;
	}
	m = &l->msgs[l->n++];
	memset(m, 0, sizeof(*m));
	return m;
}

static char *
str_concat(const char *a, const char *b, const char *c)
{
	size_t		la = strlen(a),
				lb = strlen(b),
				lc = c ? strlen(c) : 0;
	char	   *s = malloc(la + lb + lc + 1);

	if (s == NULL)
		return NULL;
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	if (c)
		memcpy(s + la + lb, c, lc);
	s[la + lb + lc] = '\0';
	return s;
}

static bool
msg_add_header(tk_message *m, const char *name, const char *value)
{
	tk_header  *h = realloc(m->headers, sizeof(tk_header) * (m->nheaders + 1));

	if (h == NULL)
		return false;
	m->headers = h;
	h[m->nheaders].name = strdup(name);
	h[m->nheaders].value = strdup(value);
	if (h[m->nheaders].name == NULL || h[m->nheaders].value == NULL)
	{
		free(h[m->nheaders].name);
		free(h[m->nheaders].value);
		return false;
	}
	m->nheaders++;
	return true;
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

static void
add_string_or_null(cJSON *obj, const char *name, const char *value)
{
	if (value)
		cJSON_AddStringToObject(obj, name, value);
	else
		cJSON_AddNullToObject(obj, name);
}

/* embed PostgreSQL-made JSON text as is */
static void
add_raw_or_null(cJSON *obj, const char *name, const char *json)
{
	if (json)
		cJSON_AddRawToObject(obj, name, json);
	else
		cJSON_AddNullToObject(obj, name);
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
 * Finish message m: wrap data (ownership taken) in the CloudEvents envelope,
 * render it and set the headers.  Returns false on out-of-memory.
 */
static bool
ce_finish(const tk_outbox_row *row, tk_message *m, const char *stream,
		  const char *id, const char *type, cJSON *data)
{
	cJSON	   *root = cJSON_CreateObject();
	cJSON	   *custom = NULL;
	const char *table = row_table(row);
	char	   *source = NULL;
	bool		ok = false;

	m->stream = stream;
	m->id = strdup(id);
	m->type = strdup(type);
	source = (row->source && row->source[0] == '/') ?
		strdup(row->source) : str_concat(CE_SOURCE_PREFIX, table, NULL);
	if (root == NULL || m->id == NULL || m->type == NULL || source == NULL)
	{
		cJSON_Delete(data);
		goto done;
	}

	cJSON_AddStringToObject(root, "specversion", "1.0");
	cJSON_AddStringToObject(root, "id", id);
	cJSON_AddStringToObject(root, "source", source);
	cJSON_AddStringToObject(root, "type", type);
	cJSON_AddStringToObject(root, "time", row->occurred_at ? row->occurred_at : "");
	cJSON_AddStringToObject(root, "subject", row->key ? row->key : "");
	cJSON_AddStringToObject(root, "datacontenttype", "application/json");
	cJSON_AddStringToObject(root, "correlationid",
							row->correlation_id ? row->correlation_id : "");
	if (row->user_id)
		cJSON_AddStringToObject(root, "userid", row->user_id);
	cJSON_AddStringToObject(root, "actor", row->actor ? row->actor : "");
	if (row->traceparent && row->traceparent[0])
		cJSON_AddStringToObject(root, "traceparent", row->traceparent);
	if (data == NULL)
		data = cJSON_CreateNull();
	cJSON_AddItemToObject(root, "data", data);

	m->value = cJSON_PrintUnformatted(root);
	if (m->value == NULL)
		goto done;
	m->value_len = strlen(m->value);

	if (!msg_add_header(m, "content-type", "application/cloudevents+json") ||
		!msg_add_header(m, "event-id", id) ||
		!msg_add_header(m, "event-type", type) ||
		!msg_add_header(m, "correlation-id",
						row->correlation_id ? row->correlation_id : ""))
		goto done;
	if (row->traceparent && row->traceparent[0] &&
		!msg_add_header(m, "traceparent", row->traceparent))
		goto done;

	if (row->headers)
		custom = cJSON_Parse(row->headers);
	if (cJSON_IsObject(custom))
	{
		cJSON	   *h;

		cJSON_ArrayForEach(h, custom)
		{
			bool		reserved = false;
			char	   *printed = NULL;

			for (int i = 0; reserved_headers[i]; i++)
				if (strcasecmp(h->string, reserved_headers[i]) == 0)
					reserved = true;
			if (reserved)
				continue;
			if (!cJSON_IsString(h))
				printed = cJSON_PrintUnformatted(h);
			if (!msg_add_header(m, h->string,
								cJSON_IsString(h) ? h->valuestring :
								(printed ? printed : "")))
			{
				cJSON_free(printed);
				goto done;
			}
			cJSON_free(printed);
		}
	}
	ok = true;

done:
	cJSON_Delete(custom);
	cJSON_Delete(root);
	free(source);
	return ok;
}

/* the task_events message of a change row */
static cJSON *
task_event_data(const tk_outbox_row *row)
{
	cJSON	   *d = cJSON_CreateObject();

	if (d == NULL)
		return NULL;
	cJSON_AddStringToObject(d, "event_type", row->event_type);
	add_string_or_null(d, "task_id", row->key);
	add_string_or_null(d, "user_id", row->user_id);
	add_raw_or_null(d, "task_data", row->after ? row->after : row->before);
	add_string_or_null(d, "timestamp", row->occurred_at);
	add_string_or_null(d, "correlation_id", row->correlation_id);
	return d;
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

static cJSON *
audit_data(const tk_outbox_row *row)
{
	cJSON	   *d = cJSON_CreateObject();

	if (d == NULL)
		return NULL;
	cJSON_AddStringToObject(d, "event_id", row->event_id);
	add_string_or_null(d, "actor", row->actor);
	cJSON_AddStringToObject(d, "operation", row_operation(row));
	cJSON_AddStringToObject(d, "event_type", row->event_type);
	cJSON_AddStringToObject(d, "table", row_table(row));
	add_string_or_null(d, "task_id", row->key);
	add_string_or_null(d, "user_id", row->user_id);
	add_raw_or_null(d, "before", row->before);
	add_raw_or_null(d, "after", row->after);
	add_raw_or_null(d, "changed_fields", row->changed);
	if (is_digits(row->xid))
		cJSON_AddRawToObject(d, "txid", row->xid);
	else
		add_string_or_null(d, "txid", row->xid);
	add_string_or_null(d, "timestamp", row->occurred_at);
	add_string_or_null(d, "correlation_id", row->correlation_id);
	return d;
}

/* append one task_updates message; prev/next are copied */
static bool
add_update(const tk_outbox_row *row, tk_message_list *out, int *n,
		   const char *event_type, const char *field,
		   const cJSON *prev, const cJSON *next)
{
	cJSON	   *d = cJSON_CreateObject();
	tk_message *m;
	char		id[256];
	char	   *type;
	bool		ok;

	if (d == NULL)
		return false;
	cJSON_AddStringToObject(d, "event_type", event_type);
	add_string_or_null(d, "task_id", row->key);
	add_string_or_null(d, "user_id", row->user_id);
	cJSON_AddStringToObject(d, "field_changed", field);
	cJSON_AddItemToObject(d, "previous_value",
						  prev ? cJSON_Duplicate(prev, true) : cJSON_CreateNull());
	cJSON_AddItemToObject(d, "new_value",
						  next ? cJSON_Duplicate(next, true) : cJSON_CreateNull());
	add_string_or_null(d, "changed_by", row->actor);
	add_string_or_null(d, "timestamp", row->occurred_at);
	add_string_or_null(d, "correlation_id", row->correlation_id);

	snprintf(id, sizeof(id), "%s:update:%d", row->event_id, (*n)++);
	type = str_concat("task.", event_type, NULL);
	m = list_push(out);
	if (m == NULL || type == NULL)
	{
		free(type);
		cJSON_Delete(d);
		return false;
	}
	ok = ce_finish(row, m, TK_STREAM_TASK_UPDATES, id, type, d);
	free(type);
	return ok;
}

static bool
array_has_string(const cJSON *arr, const char *s)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, arr)
		if (cJSON_IsString(e) && strcmp(e->valuestring, s) == 0)
		return true;
	return false;
}

/* earlier elements of arr up to (not including) stop contain s? */
static bool
seen_before(const cJSON *arr, const cJSON *stop, const char *s)
{
	const cJSON *e;

	for (e = arr ? arr->child : NULL; e && e != stop; e = e->next)
		if (cJSON_IsString(e) && strcmp(e->valuestring, s) == 0)
			return true;
	return false;
}

/* one message per tag that appears in "in" but not in "notin" */
static bool
add_tag_diff(const tk_outbox_row *row, tk_message_list *out, int *n,
			 const char *event_type, const cJSON *in, const cJSON *notin,
			 bool added)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, in)
	{
		if (!cJSON_IsString(e) || array_has_string(notin, e->valuestring) ||
			seen_before(in, e, e->valuestring))
			continue;
		if (!add_update(row, out, n, event_type, "tags",
						added ? NULL : e, added ? e : NULL))
			return false;
	}
	return true;
}

static bool
build_updates(const tk_outbox_row *row, tk_message_list *out,
			  char *errbuf, size_t errlen)
{
	cJSON	   *before = NULL;
	cJSON	   *after = NULL;
	cJSON	   *changed = NULL;
	const cJSON *col;
	int			n = 0;
	bool		ok = false;

	if (row->changed == NULL)
		return true;
	before = cJSON_Parse(row->before);
	after = cJSON_Parse(row->after);
	changed = cJSON_Parse(row->changed);
	if (!cJSON_IsObject(before) || !cJSON_IsObject(after) || !cJSON_IsArray(changed))
	{
		snprintf(errbuf, errlen, "outbox row %s: malformed before, after or changed",
				 row->id);
		goto done;
	}

	cJSON_ArrayForEach(col, changed)
	{
		const char *name;
		const cJSON *prev;
		const cJSON *next;

		if (!cJSON_IsString(col))
			continue;
		name = col->valuestring;
		if (strcmp(name, "updated_at") == 0)
			continue;
		prev = cJSON_GetObjectItemCaseSensitive(before, name);
		next = cJSON_GetObjectItemCaseSensitive(after, name);
		if (strcmp(name, "tags") == 0 &&
			(cJSON_IsArray(prev) || cJSON_IsNull(prev) || prev == NULL) &&
			(cJSON_IsArray(next) || cJSON_IsNull(next) || next == NULL))
		{
			if (!add_tag_diff(row, out, &n, "tag_added", next, prev, true) ||
				!add_tag_diff(row, out, &n, "tag_removed", prev, next, false))
				goto oom;
			continue;
		}
		if (!add_update(row, out, &n,
						strcmp(name, "completed") == 0 ? "status_changed" :
						strcmp(name, "priority") == 0 ? "priority_changed" :
						"field_updated",
						name, prev, next))
			goto oom;
	}
	ok = true;
	goto done;

oom:
	snprintf(errbuf, errlen, "out of memory");
done:
	cJSON_Delete(before);
	cJSON_Delete(after);
	cJSON_Delete(changed);
	return ok;
}

static bool
build_one(const tk_outbox_row *row, tk_message_list *out, const char *stream,
		  const char *id, const char *type_prefix, const char *type,
		  cJSON *data)
{
	tk_message *m = list_push(out);
	char	   *t = str_concat(type_prefix, type, NULL);
	bool		ok;

	if (m == NULL || t == NULL)
	{
		free(t);
		cJSON_Delete(data);
		return false;
	}
	ok = ce_finish(row, m, stream, id, t, data);
	free(t);
	return ok;
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
	bool		ok;

	if (row->event_id == NULL || row->kind == NULL || row->stream == NULL ||
		row->event_type == NULL)
	{
		snprintf(errbuf, errlen, "outbox row %s: missing event_id, kind, stream or event_type",
				 row->id ? row->id : "?");
		return -1;
	}

	if (strcmp(row->kind, "change") == 0)
	{
		char		audit_id[128];

		snprintf(audit_id, sizeof(audit_id), "%s:audit", row->event_id);
		ok = build_one(row, out, row->stream, row->event_id, "task.",
					   row->event_type, task_event_data(row)) &&
			build_one(row, out, TK_STREAM_AUDIT, audit_id, "audit.",
					  row->event_type, audit_data(row));
		if (!ok)
			snprintf(errbuf, errlen, "out of memory");
		else if (row->before && row->after)
			ok = build_updates(row, out, errbuf, errlen);
	}
	else if (strcmp(row->kind, "custom") == 0 || strcmp(row->kind, "reminder") == 0)
	{
		bool		reminder = strcmp(row->kind, "reminder") == 0;
		bool		due = reminder && (strcmp(row->event_type, "sent") == 0 ||
									   strcmp(row->event_type, "missed") == 0);
		cJSON	   *data = row->after ? cJSON_CreateRaw(row->after) : cJSON_CreateNull();

		ok = build_one(row, out, row->stream, row->event_id,
					   !reminder ? "" : due ? "task." : "reminder.",
					   due ? "reminder" : row->event_type, data);
		if (!ok)
			snprintf(errbuf, errlen, "out of memory");
	}
	else
	{
		snprintf(errbuf, errlen, "outbox row %s: unknown kind \"%s\"", row->id, row->kind);
		ok = false;
	}

	if (!ok)
	{
		/* drop what this row added, keep earlier rows' messages */
		tk_message_list tail = {out->msgs + first, out->n - first, 0};

		tk_message_list_clear(&tail);
		out->n = first;
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
	cJSON	   *d = cJSON_CreateObject();
	tk_outbox_row bare = *row;
	tk_message *m;
	char		id[256];
	char		num[32];

	/* the dead-letter envelope carries no custom headers of the original */
	bare.headers = NULL;
	row = &bare;
	if (d == NULL)
		return -1;
	cJSON_AddRawToObject(d, "outbox_id", is_digits(row->id) ? row->id : "null");
	add_string_or_null(d, "event_id", row->event_id);
	cJSON_AddStringToObject(d, "message_id", origin_id);
	cJSON_AddStringToObject(d, "message_type", origin_type);
	cJSON_AddStringToObject(d, "origin_topic", origin_topic);
	add_string_or_null(d, "key", row->key);
	cJSON_AddNumberToObject(d, "message_size", (double) origin_size);
	cJSON_AddStringToObject(d, "error", error_name);
	cJSON_AddStringToObject(d, "reason", reason);
	add_string_or_null(d, "timestamp", row->occurred_at);
	add_string_or_null(d, "correlation_id", row->correlation_id);

	snprintf(id, sizeof(id), "%s:dead-letter", origin_id);
	m = list_push(out);
	if (m == NULL)
	{
		cJSON_Delete(d);
		return -1;
	}
	if (!ce_finish(row, m, TK_STREAM_DEAD_LETTER, id, "todo_kafka.dead_letter", d))
		return -1;
	snprintf(num, sizeof(num), "%s", row->id ? row->id : "");
	if (!msg_add_header(m, "dlq-reason", reason) ||
		!msg_add_header(m, "dlq-error", error_name) ||
		!msg_add_header(m, "dlq-origin-topic", origin_topic) ||
		!msg_add_header(m, "dlq-origin-event-id", origin_id) ||
		!msg_add_header(m, "dlq-outbox-id", num))
		return -1;
	return 1;
}
