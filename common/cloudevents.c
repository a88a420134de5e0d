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
 * them.  UPDATE rows scan before/after once (ce_json_items() in
 * json_scan.c: spans of member values, no tree, no allocation) to splice
 * the previous and new value of each changed column; tags are diffed on
 * their element literals.
 *
 * tk_ce_build_dead_letter() makes the small envelope sent to the dead-letter
 * stream when Kafka refuses a message for good: it names the original
 * message and the reason in headers and data, without its payload.
 *
 * Where the parts are (ce_internal.h has the map): this file decides which
 * messages a row makes and builds the custom, reminder and dead-letter
 * ones; ce_change.c writes those of a 'change' row; ce_message.c owns the
 * list's storage, the envelope and the headers (and says how memory is
 * handled and why the messages are not cJSON trees); json_scan.c reads
 * the row images of UPDATE rows.
 *
 * IDENTIFICATION
 *	  common/cloudevents.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ce_internal.h"

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

	ok = ce_ctx_begin(&c, row, out, true);
	if (ok && strcmp(row->kind, "change") == 0)
	{
		ce_add_task_event(&c);
		ce_add_audit(&c);
		ok = !c.failed;
		if (!ok)
			snprintf(errbuf, errlen, "out of memory");
		else if (row->before && row->after)
			ok = ce_build_updates(&c, errbuf, errlen);
	}
	else if (ok)
	{
		bool		reminder = strcmp(row->kind, "reminder") == 0;
		bool		due = reminder && (strcmp(row->event_type, "sent") == 0 ||
									   strcmp(row->event_type, "missed") == 0);

		ce_msg_start(&c, row->stream, row->event_id, "", -1,
					 !reminder ? "" : due ? "task." : "reminder.",
					 due ? "reminder" : row->event_type);
		if (!c.failed)
		{
			put(&out->text, row->after ? row->after : "null");
			ce_msg_end(&c);
		}
		ok = !c.failed;
		if (!ok)
			snprintf(errbuf, errlen, "out of memory");
	}
	else
		snprintf(errbuf, errlen, "out of memory");
	ce_ctx_end(&c);

	if (ok && (out->text.oom || out->scratch.oom))
	{
		snprintf(errbuf, errlen, "out of memory");
		ok = false;
	}
	if (ok)
		ce_resolve(out);
	else
	{
		/* drop what this row added, keep earlier rows' messages */
		ce_truncate_to(out, first, first_h, first_text);
		ce_resolve(out);
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
	ce_ctx_begin(&c, row, out, false);
	ce_msg_start(&c, TK_STREAM_DEAD_LETTER, origin_id, ":dead-letter", -1, "",
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
		ce_msg_end(&c);
		ce_hdr_add(&c, "dlq-reason", 0, NULL, ce_text_add(&c, reason));
		ce_hdr_add(&c, "dlq-error", 0, NULL, ce_text_add(&c, error_name));
		ce_hdr_add(&c, "dlq-origin-topic", 0, NULL, ce_text_add(&c, origin_topic));
		ce_hdr_add(&c, "dlq-origin-event-id", 0, NULL, ce_text_add(&c, origin_id));
		ce_hdr_add(&c, "dlq-outbox-id", 0, NULL, ce_text_add(&c, row->id ? row->id : ""));
	}
	ce_ctx_end(&c);
	if (c.failed || t->oom || out->scratch.oom)
	{
		ce_truncate_to(out, first, first_h, first_text);
		ce_resolve(out);
		return -1;
	}
	ce_resolve(out);
	return 1;
}
