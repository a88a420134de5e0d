/*-------------------------------------------------------------------------
 *
 * project_apply.c
 *	  todo-kafka-project: validate task events and apply a batch in one
 *	  transaction
 *
 * Projected: task.<created|updated|completed|deleted|recurring-created> of
 * the tasks table (source task_source; empty: any); the view row is the
 * event's data.task_data, a delete removes it.  Other events only advance
 * the offsets (type null).  An event of ours without a uuid task_id or an
 * object task_data (a delete may omit it) fails validate: dead-lettered.
 *
 * A batch is ONE call of todo_kafka.project_apply(topic, events) with a
 * JSON array of {partition, offset, type, task_id, task_data}: view rows
 * and next offsets in one transaction (STYLE 38e); events below a stored
 * offset are skipped.  Timestamps and intervals are read by PostgreSQL.
 * A refused batch is applied one by one in offset order, a partition's
 * later events held back after a failure (the runtime's sink shape); no
 * database: all DOWN.  project_dead_lettered() stores the offset past a
 * last-of-partition dead letter (skip_dead_letter), so a restart does not
 * dead-letter it again.
 *
 * Called on the worker threads; each worker has its own connection
 * (tkc_pg) and nothing here is shared between them.
 *
 * IDENTIFICATION
 *	  consumers/project/project_apply.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "log.h"
#include "project_int.h"
#include "strbuf.h"

static const char *const task_types[] = {
	"created", "updated", "completed", "deleted", "recurring-created", NULL
};

/* the event type we project ("created" ...), or NULL for any other event */
static const char *
task_type(const project_config *cfg, const tkc_event *ev)
{
	if (strncmp(ev->type, "task.", 5) != 0)
		return NULL;
	if (cfg->task_source[0] && strcmp(ev->source, cfg->task_source) != 0)
		return NULL;
	for (int i = 0; task_types[i]; i++)
		if (strcmp(ev->type + 5, task_types[i]) == 0)
			return task_types[i];
	return NULL;
}

static bool
is_uuid(const char *s)
{
	if (s == NULL || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++)
	{
		bool		dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') ||
								   (s[i] >= 'a' && s[i] <= 'f') ||
								   (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	}
	return true;
}

/* the fields the handler uses: data.task_id (uuid) and data.task_data */
bool
project_validate(const void *config, tkc_event *ev)
{
	const project_config *cfg = config;
	const char *type = task_type(cfg, ev);
	const cJSON *task_data;

	if (type == NULL)
		return true;			/* not ours: only its offset counts */
	if (!cJSON_IsObject(ev->data))
	{
		tkc_fail(ev, "not a task event: \"data\" must be an object");
		return false;
	}
	if (!is_uuid(tkc_json_string(ev->data, "task_id")))
	{
		tkc_fail(ev, "not a task event: data.task_id must be a uuid");
		return false;
	}
	task_data = cJSON_GetObjectItemCaseSensitive(ev->data, "task_data");
	if (!cJSON_IsObject(task_data) && strcmp(type, "deleted") != 0)
	{
		tkc_fail(ev, "not a task event: data.task_data must be an object");
		return false;
	}
	return true;
}

/*
 * One project_apply() call for n events (one topic); the result applies to
 * all.  offsets_only: pass every event as not a task change (type null),
 * so only the offsets move.
 */
static tkc_result
apply_events(tkc_worker *w, tkc_event **evs, int n, int *applied, bool offsets_only)
{
	const project_config *cfg = tkc_config(w);
	tk_strbuf	arr;
	const char *params[1];

	tk_strbuf_init(&arr);
	tk_strbuf_putc(&arr, '[');
	for (int i = 0; i < n; i++)
	{
		const char *type = offsets_only ? NULL : task_type(cfg, evs[i]);

		tk_strbuf_printf(&arr, "%s{\"partition\":%d,\"offset\":%lld,\"type\":", i ? "," : "",
						 (int) evs[i]->partition, (long long) evs[i]->offset);
		if (type == NULL)
			tk_strbuf_puts(&arr, "null}");
		else
		{
			const cJSON *td = cJSON_GetObjectItemCaseSensitive(evs[i]->data, "task_data");
			char	   *data = cJSON_IsObject(td) ? cJSON_PrintUnformatted(td) : NULL;

			tk_strbuf_json_string(&arr, type);
			tk_strbuf_puts(&arr, ",\"task_id\":");
			tk_strbuf_json_string(&arr, tkc_json_string(evs[i]->data, "task_id"));
			tk_strbuf_printf(&arr, ",\"task_data\":%s}", data ? data : "null");
			cJSON_free(data);
		}
	}
	params[0] = evs[0]->topic;
	return tkc_pg_count_array(w, "SELECT todo_kafka.project_apply($1, $2::jsonb)", 1, params,
							  &arr, evs[0], applied);
}

/*
 * The runtime's stored_offsets->skip_dead_letter hook: ev, the last finished event of its
 * partition, went to the dead-letter topic.  It goes to project_apply() as
 * an event that is not a task change, so the partition's stored offset
 * moves past it in projection_offsets, in one transaction, like the offset
 * of any event; a restart then starts after it instead of dead-lettering
 * it again.  (It is counted in projection_offsets.events, as read.)
 */
tkc_result
project_dead_lettered(tkc_worker *w, tkc_event *ev)
{
	int			applied;

	return apply_events(w, &ev, 1, &applied, true);
}

/*
 * The sink: one project_apply() per batch.  The runtime offers refused
 * batches one by one, and a partition whose event did not succeed holds
 * its later events back: applying offset n+1 would move the stored offset
 * past n, and n would then be skipped as applied.
 */
tkc_result
project_apply_batch(tkc_worker *w, tkc_event **evs, int n, int *applied)
{
	return apply_events(w, evs, n, applied, false);
}
