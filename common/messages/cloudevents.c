/*-------------------------------------------------------------------------
 *
 * cloudevents.c
 *	  turn an outbox row into Kafka messages (CloudEvents 1.0, structured)
 *
 * Pure code: no I/O, no global state, thread-safe.  The relay calls
 * tk_ce_build() once per outbox row.  Every message carries the envelope
 * of envelope.h (source "/todo_kafka/<table>", time = occurred_at, subject
 * and partitionkey = the outbox key), plus the custom headers of publish().
 *
 * Fan-out (the list order is part of the contract: ids use positions):
 *	 kind 'change'	 1. the row's stream (task_events): type task.<event_type>,
 *					   id = event_id, data {event_type, task_id, user_id,
 *					   task_data, timestamp, correlation_id}
 *					 2. audit: type audit.<event_type>, id = <event_id>:audit,
 *					   data {event_id, actor, db_role, operation, ...,
 *					   before (completed from after for UPDATEs), after,
 *					   changed_fields, txid, timestamp, correlation_id}
 *					 3. task_updates (UPDATE only): one message per changed
 *					   column in outbox.changed order (updated_at skipped;
 *					   tags: tag_added/tag_removed per tag), id =
 *					   <event_id>:update:<n>; see ce_change.c.
 *	 kind 'custom'	 the row's stream only: type = event_type, data = after.
 *	 kind 'reminder' the row's stream only: data = after; type task.reminder
 *					 for sent/missed (the one consumers act on), else
 *					 reminder.<event_type>.
 * Row images are embedded as raw JSON text (PostgreSQL produced and
 * validated them); UPDATE rows are scanned once (json_scan.c) to splice
 * the previous and new value of each changed column.  A row that cannot
 * become messages is a poison row; a message Kafka refuses for good is
 * replaced by a dead letter (dead_letter.c).
 *
 * IDENTIFICATION
 *	  common/messages/cloudevents.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ce_internal.h"

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
