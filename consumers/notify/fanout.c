/*-------------------------------------------------------------------------
 *
 * fanout.c
 *	  todo-kafka-notify, fan-out stage: one queued notification per channel
 *
 * Input (validated before the handler runs; anything else is skipped):
 *	 task.created	(todo.task.events) data {task_id, user_id, task_data
 *					{title, due_date ...}}: kind task_created, the channels
 *					the user enabled for new tasks
 *	 task.reminder	(todo.reminders, a reminder that fired) data
 *					{event_type sent|missed, reminder_id, task_id, user_id,
 *					notification_method, scheduled_time ...}: kind reminder,
 *					the reminder's own method if the user has it enabled
 * todo_kafka.notification_plan() decides the channels (settings, quiet
 * hours) and writes the title and body, with the due time in the user's
 * time zone.  Each channel becomes one message on todo.notifications:
 *
 *	 key	the user id (a user's notifications stay in order)
 *	 value	CloudEvent, type notification.requested, id
 *			<source event id>:<channel>, time = the source event's time,
 *			source /todo_kafka/notify, subject = task id, data
 *			{notification_id (= id), user_id, channel, kind, task_id,
 *			 title, body, due_date (RFC 3339 UTC or null), due_local,
 *			 time_zone, source_event_id, source_type, reminder_id,
 *			 scheduled_time}
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
#include <time.h>

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

/* the notification.requested message of one plan row; NULL on OOM */
static char *
build_message(const tkc_event *ev, const char *kind, const char *user,
			  const char *task_id, PGresult *res, int row, char *id, size_t idlen)
{
	const char *channel = PQgetvalue(res, row, 0);
	const char *corr = tkc_json_string(ev->ce, "correlationid");
	cJSON	   *root = cJSON_CreateObject();
	cJSON	   *data;
	char	   *out = NULL;
	char		now[32];

	snprintf(id, idlen, "%s:%s", ev->id, channel);
	if (root == NULL)
		return NULL;
	if (ev->time == NULL)
	{
		time_t		t = time(NULL);
		struct tm	tm;

		gmtime_r(&t, &tm);
		strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	if (!cJSON_AddStringToObject(root, "specversion", "1.0") ||
		!cJSON_AddStringToObject(root, "id", id) ||
		!cJSON_AddStringToObject(root, "source", "/todo_kafka/notify") ||
		!cJSON_AddStringToObject(root, "type", TKN_TYPE_REQUESTED) ||
		!cJSON_AddStringToObject(root, "subject", task_id) ||
		!cJSON_AddStringToObject(root, "time", ev->time ? ev->time : now) ||
		!cJSON_AddStringToObject(root, "datacontenttype", "application/json") ||
		(corr && !cJSON_AddStringToObject(root, "correlationid", corr)) ||
		!cJSON_AddStringToObject(root, "userid", user) ||
		(data = cJSON_AddObjectToObject(root, "data")) == NULL ||
		!cJSON_AddStringToObject(data, "notification_id", id) ||
		!cJSON_AddStringToObject(data, "user_id", user) ||
		!cJSON_AddStringToObject(data, "channel", channel) ||
		!cJSON_AddStringToObject(data, "kind", kind) ||
		!cJSON_AddStringToObject(data, "task_id", task_id) ||
		!cJSON_AddStringToObject(data, "title", PQgetvalue(res, row, 1)) ||
		!cJSON_AddStringToObject(data, "body", PQgetvalue(res, row, 2)) ||
		!add_string_or_null(data, "due_date",
							PQgetisnull(res, row, 3) ? NULL : PQgetvalue(res, row, 3)) ||
		!add_string_or_null(data, "due_local",
							PQgetisnull(res, row, 4) ? NULL : PQgetvalue(res, row, 4)) ||
		!cJSON_AddStringToObject(data, "time_zone", PQgetvalue(res, row, 5)) ||
		!cJSON_AddStringToObject(data, "source_event_id", ev->id) ||
		!cJSON_AddStringToObject(data, "source_type", ev->type) ||
		!add_string_or_null(data, "reminder_id", tkc_json_string(ev->data, "reminder_id")) ||
		!add_string_or_null(data, "scheduled_time", tkc_json_string(ev->data, "scheduled_time")))
		goto done;
	out = cJSON_PrintUnformatted(root);
done:
	cJSON_Delete(root);
	return out;
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

	for (int i = 0; i < PQntuples(res) && r == TKC_OK; i++)
	{
		char		id[512];
		char		err[256];
		char	   *msg = build_message(ev, kind, user, task_id, res, i, id, sizeof(id));
		const char *corr = tkc_json_string(ev->ce, "correlationid");
		tk_header	hdrs[4] = {
			{"content-type", "application/cloudevents+json"},
			{"event-id", id},
			{"event-type", TKN_TYPE_REQUESTED},
			{"correlation-id", corr},
		};

		if (msg == NULL)
		{
			tkc_fail(ev, "out of memory building notification %s", id);
			r = TKC_RETRY;
		}
		else if (!tkc_produce(w, TKN_STREAM_NOTIFICATIONS, user, msg, strlen(msg),
							  hdrs, corr ? 4 : 3, err, sizeof(err)))
		{
			/* Kafka did not take it: an outage, not the event's fault */
			tkc_fail(ev, "queueing notification %s: %s", id, err);
			r = TKC_DOWN;
		}
		else
			tkc_count(w, "queued", "channel", PQgetvalue(res, i, 0), 1);
		cJSON_free(msg);
	}
	PQclear(res);
	return r;
}
