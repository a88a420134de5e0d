/*-------------------------------------------------------------------------
 *
 * fanout.c
 *	  todo-kafka-notify, fan-out stage: one queued notification per channel
 *
 * Input (validated before the handler runs; anything else is skipped):
 * task.created (todo.task.events: kind task_created, the channels the user
 * enabled for new tasks) and task.reminder (todo.reminders, fired: kind
 * reminder, the reminder's own method if the user has it enabled).
 * todo_kafka.notification_plan() decides the channels (settings, quiet
 * hours) and writes the title and body, with the due time in the user's
 * time zone.  Each channel becomes one message on todo.notifications, key
 * = partitionkey = the user id (a user's notifications stay in order), in
 * the envelope of common/messages/envelope.h: type notification.requested,
 * id <source event id>:<channel>, source /todo_kafka/notify, subject =
 * task id, time and correlationid from the source event, traceparent
 * tkc_traceparent() (the fan-out's process span when tracing, else the
 * source event's);
 * data as schemas/notifications.v1.json (notification_id = id, channel,
 * kind, title, body, due_date, due_local, time_zone, source_event_id ...).
 *
 * Everything in a message is a function of the source event and the
 * settings, so a redelivered event queues the same messages again under
 * the same ids; the delivery log makes the second copy a no-op.  The
 * handler returns OK only after Kafka acknowledged every message of the
 * event (tkc_produce waits), so a crash in between means a redelivery,
 * never a lost channel.  A message Kafka does not acknowledge is an outage
 * (TKC_DOWN: pause and wait), so fan-out never dead-letters for it.
 *
 * IDENTIFICATION
 *	  consumers/notify/fanout.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify.h"

#define PLAN_SQL \
	"SELECT channel, title, body, due_date, due_local, time_zone" \
	"  FROM todo_kafka.notification_plan($1, $2, $3::text[], $4::uuid, $5," \
	"                                    $6::timestamptz, $7::boolean)"

/* a method we can put into an array literal as is */
static bool
plain_word(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) > 32)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
			return false;
	return true;
}

bool
tkn_fanout_validate(const void *config, tkc_event *ev)
{
	bool		created = strcmp(ev->type, "task.created") == 0;
	bool		reminder = strcmp(ev->type, "task.reminder") == 0;
	const char *user;

	if (!created && !reminder)
		return true;			/* not ours: skipped by the handler */
	if (!cJSON_IsObject(ev->data))
	{
		tkc_fail(ev, "%s event without a data object", ev->type);
		return false;
	}
	user = tkc_json_string(ev->data, "user_id");
	if (user == NULL || user[0] == '\0')
	{
		tkc_fail(ev, "%s event without data.user_id", ev->type);
		return false;
	}
	if (tkc_json_string(ev->data, "task_id") == NULL)
	{
		tkc_fail(ev, "%s event without data.task_id", ev->type);
		return false;
	}
	if (reminder)
	{
		const char *et = tkc_json_string(ev->data, "event_type");

		if (et == NULL || (strcmp(et, "sent") != 0 && strcmp(et, "missed") != 0))
		{
			tkc_fail(ev, "task.reminder event whose data.event_type is not sent or missed");
			return false;
		}
		if (!plain_word(tkc_json_string(ev->data, "notification_method")))
		{
			tkc_fail(ev, "task.reminder event without a valid data.notification_method");
			return false;
		}
	}
	return true;
}

static cJSON *
add_string_or_null(cJSON *obj, const char *name, const char *value)
{
	return value ? cJSON_AddStringToObject(obj, name, value)
		: cJSON_AddNullToObject(obj, name);
}

/* the data of the notification of one plan row, as JSON text; NULL on OOM */
static char *
build_data(const tkc_event *ev, const char *id, const char *kind, const char *user,
		   const char *task_id, PGresult *res, int row)
{
	cJSON	   *data = cJSON_CreateObject();
	char	   *out = NULL;

	if (data == NULL)
		return NULL;
	if (cJSON_AddStringToObject(data, "notification_id", id) &&
		cJSON_AddStringToObject(data, "user_id", user) &&
		cJSON_AddStringToObject(data, "channel", PQgetvalue(res, row, 0)) &&
		cJSON_AddStringToObject(data, "kind", kind) &&
		cJSON_AddStringToObject(data, "task_id", task_id) &&
		cJSON_AddStringToObject(data, "title", PQgetvalue(res, row, 1)) &&
		cJSON_AddStringToObject(data, "body", PQgetvalue(res, row, 2)) &&
		add_string_or_null(data, "due_date",
						   PQgetisnull(res, row, 3) ? NULL : PQgetvalue(res, row, 3)) &&
		add_string_or_null(data, "due_local",
						   PQgetisnull(res, row, 4) ? NULL : PQgetvalue(res, row, 4)) &&
		cJSON_AddStringToObject(data, "time_zone", PQgetvalue(res, row, 5)) &&
		cJSON_AddStringToObject(data, "source_event_id", ev->id) &&
		cJSON_AddStringToObject(data, "source_type", ev->type) &&
		add_string_or_null(data, "reminder_id", tkc_json_string(ev->data, "reminder_id")) &&
		add_string_or_null(data, "scheduled_time", tkc_json_string(ev->data, "scheduled_time")))
		out = cJSON_PrintUnformatted(data);
	cJSON_Delete(data);
	return out;
}

/*
 * The notification.requested message of one plan row, in msg (the shared
 * envelope of common/messages/envelope.h around build_data's data), and
 * its headers; false when out of memory.
 */
static bool
build_message(const tkc_event *ev, const char *traceparent, const char *kind,
			  const char *user, const char *task_id, PGresult *res, int row,
			  const char *id, tk_strbuf *msg, tk_header hdrs[TK_ENVELOPE_MAX_HEADERS],
			  int *nhdrs)
{
	tk_envelope env = {0};
	char		now[48];
	char	   *data;

	if (ev->time == NULL)
		tk_rfc3339_now(now, sizeof(now));
	env.id = id;
	env.source = TK_CE_SOURCE_PREFIX "notify";
	env.type = TKN_TYPE_REQUESTED;
	env.stream = TK_STREAM_NOTIFICATIONS;
	env.time = ev->time ? ev->time : now;
	env.subject = task_id;
	env.partitionkey = user;	/* the Kafka key: a user's notifications stay in order */
	env.correlationid = tkc_json_string(ev->ce, "correlationid");
	env.userid = user;
	env.traceparent = traceparent;
	if ((data = build_data(ev, id, kind, user, task_id, res, row)) == NULL)
		return false;
	tk_strbuf_reset(msg);
	tk_envelope_open(msg, &env);
	tk_strbuf_puts(msg, data);
	tk_envelope_close(msg);
	cJSON_free(data);
	*nhdrs = tk_envelope_headers(&env, hdrs);
	return !msg->oom;
}

tkc_result
tkn_fanout_handle(tkc_worker *w, tkn_worker *nw, tkc_event *ev)
{
	bool		reminder = strcmp(ev->type, "task.reminder") == 0;
	const char *user = tkc_json_string(ev->data, "user_id");
	const char *task_id = tkc_json_string(ev->data, "task_id");
	const char *kind = reminder ? "reminder" : "task_created";
	const char *title = NULL;
	const char *due = NULL;
	char		requested[48];
	const char *params[7];
	PGconn	   *conn;
	PGresult   *res;
	tk_strbuf	msg;
	tkc_result	r;

	if (!reminder && strcmp(ev->type, "task.created") != 0)
		return TKC_OK;			/* updates, deletes ...: nothing to say */
	conn = tkc_pg(w);
	if (conn == NULL)
		return TKC_DOWN;

	if (reminder)
		snprintf(requested, sizeof(requested), "{%s}",
				 tkc_json_string(ev->data, "notification_method"));
	else
	{
		const cJSON *task = cJSON_GetObjectItemCaseSensitive(ev->data, "task_data");

		title = tkc_json_string(task, "title");
		due = tkc_json_string(task, "due_date");
	}
	params[0] = user;
	params[1] = kind;
	params[2] = reminder ? requested : NULL;
	params[3] = task_id;
	params[4] = title;
	params[5] = due;
	params[6] = reminder && strcmp(tkc_json_string(ev->data, "event_type"), "missed") == 0
		? "true" : "false";
	res = PQexecParams(conn, PLAN_SQL, 7, NULL, params, NULL, NULL, 0);
	r = tkc_pg_result(w, res, ev);
	if (r != TKC_OK)
	{
		PQclear(res);
		return r;
	}

	tk_strbuf_init(&msg);
	for (int i = 0; i < PQntuples(res) && r == TKC_OK; i++)
	{
		char		id[512];
		char		err[256];
		tk_header	hdrs[TK_ENVELOPE_MAX_HEADERS];
		int			nhdrs = 0;

		snprintf(id, sizeof(id), "%s:%s", ev->id, PQgetvalue(res, i, 0));
		if (!build_message(ev, tkc_traceparent(w, ev), kind, user, task_id, res, i, id,
						   &msg, hdrs, &nhdrs))
		{
			tkc_fail(ev, "out of memory building notification %s", id);
			r = TKC_RETRY;
		}
		else if (!tkc_produce(w, TK_STREAM_NOTIFICATIONS, user, msg.data, msg.len,
							  hdrs, nhdrs, err, sizeof(err)))
		{
			/* Kafka did not take it: an outage, not the event's fault */
			tkc_fail(ev, "queueing notification %s: %s", id, err);
			r = TKC_DOWN;
		}
		else
			tkc_count(w, "queued", "channel", PQgetvalue(res, i, 0), 1);
	}
	tk_strbuf_free(&msg);
	PQclear(res);
	return r;
}
