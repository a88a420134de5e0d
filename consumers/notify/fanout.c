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
 * --stage fanout runs as a sink (tkn_fanout_sink): one plan statement for
 * a whole batch (the events as a JSON array), every message produced, then
 * one wait for all the acknowledgments, instead of a statement and a
 * Kafka round trip per event; OK only when all were acknowledged, else
 * the whole batch again (DOWN; same ids, so nothing is delivered twice).
 * A batch refused by the database is offered again event by event (the
 * runtime's sink.c), so one bad event is dead-lettered alone.
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

/* the batch's events as a JSON array of plan inputs; rows in event order */
#define PLAN_BATCH_SQL \
	"SELECT e.i, p.channel, p.title, p.body, p.due_date, p.due_local, p.time_zone" \
	"  FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(x, i)," \
	"       LATERAL todo_kafka.notification_plan(x->>'user', x->>'kind'," \
	"                 (x->>'requested')::text[], (x->>'task_id')::uuid, x->>'title'," \
	"                 (x->>'due')::timestamptz, (x->>'late')::boolean)" \
	"         WITH ORDINALITY AS p(channel, title, body, due_date, due_local, time_zone, n)" \
	" ORDER BY e.i, p.n"

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

/*
 * The data of the notification of one plan row (its columns from c on:
 * channel, title, body, due_date, due_local, time_zone), as JSON text;
 * NULL on OOM
 */
static char *
build_data(const tkc_event *ev, const char *id, const char *kind, const char *user,
		   const char *task_id, PGresult *res, int row, int c)
{
	cJSON	   *data = cJSON_CreateObject();
	char	   *out = NULL;

	if (data == NULL)
		return NULL;
	if (cJSON_AddStringToObject(data, "notification_id", id) &&
		cJSON_AddStringToObject(data, "user_id", user) &&
		cJSON_AddStringToObject(data, "channel", PQgetvalue(res, row, c)) &&
		cJSON_AddStringToObject(data, "kind", kind) &&
		cJSON_AddStringToObject(data, "task_id", task_id) &&
		cJSON_AddStringToObject(data, "title", PQgetvalue(res, row, c + 1)) &&
		cJSON_AddStringToObject(data, "body", PQgetvalue(res, row, c + 2)) &&
		add_string_or_null(data, "due_date",
						   PQgetisnull(res, row, c + 3) ? NULL : PQgetvalue(res, row, c + 3)) &&
		add_string_or_null(data, "due_local",
						   PQgetisnull(res, row, c + 4) ? NULL : PQgetvalue(res, row, c + 4)) &&
		cJSON_AddStringToObject(data, "time_zone", PQgetvalue(res, row, c + 5)) &&
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
			  const char *user, const char *task_id, PGresult *res, int row, int c,
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
	if ((data = build_data(ev, id, kind, user, task_id, res, row, c)) == NULL)
		return false;
	tk_strbuf_reset(msg);
	tk_envelope_open(msg, &env);
	tk_strbuf_puts(msg, data);
	tk_envelope_close(msg);
	cJSON_free(data);
	*nhdrs = tk_envelope_headers(&env, hdrs);
	return !msg->oom;
}

/* what notification_plan() is asked about one event */
typedef struct plan_in
{
	const char *user;
	const char *kind;
	const char *task_id;
	const char *title;			/* task.created only */
	const char *due;			/* task.created only */
	char		requested[48];	/* a reminder's method as an array literal */
	bool		reminder;
	bool		late;			/* a missed reminder */
} plan_in;

/* false when the event is not fanned out (updates, deletes ...) */
static bool
plan_input(const tkc_event *ev, plan_in *in)
{
	memset(in, 0, sizeof(*in));
	in->reminder = strcmp(ev->type, "task.reminder") == 0;
	if (!in->reminder && strcmp(ev->type, "task.created") != 0)
		return false;
	in->user = tkc_json_string(ev->data, "user_id");
	in->task_id = tkc_json_string(ev->data, "task_id");
	in->kind = in->reminder ? "reminder" : "task_created";
	if (in->reminder)
	{
		snprintf(in->requested, sizeof(in->requested), "{%s}",
				 tkc_json_string(ev->data, "notification_method"));
		in->late = strcmp(tkc_json_string(ev->data, "event_type"), "missed") == 0;
	}
	else
	{
		const cJSON *task = cJSON_GetObjectItemCaseSensitive(ev->data, "task_data");

		in->title = tkc_json_string(task, "title");
		in->due = tkc_json_string(task, "due_date");
	}
	return true;
}

/*
 * Produce the notification of plan row i of event ev (no wait: acks);
 * TKC_OK, or the result for the event with the reason in ev->error.
 */
static tkc_result
queue_row(tkc_worker *w, tkc_event *ev, const plan_in *in, PGresult *res, int row,
		  int channel_col, tk_strbuf *msg, tkc_acks *acks)
{
	char		id[512];
	char		err[256];
	tk_header	hdrs[TK_ENVELOPE_MAX_HEADERS];
	int			nhdrs = 0;

	snprintf(id, sizeof(id), "%s:%s", ev->id, PQgetvalue(res, row, channel_col));
	if (!build_message(ev, tkc_traceparent(w, ev), in->kind, in->user, in->task_id, res,
					   row, channel_col, id, msg, hdrs, &nhdrs))
	{
		tkc_fail(ev, "out of memory building notification %s", id);
		return TKC_RETRY;
	}
	if (!tkc_produce_begin(w, acks, TK_STREAM_NOTIFICATIONS, in->user, msg->data, msg->len,
						   hdrs, nhdrs, err, sizeof(err)))
	{
		/* Kafka did not take it: an outage, not the event's fault */
		tkc_fail(ev, "queueing notification %s: %s", id, err);
		return TKC_DOWN;
	}
	tkc_count(w, "queued", "channel", PQgetvalue(res, row, channel_col), 1);
	return TKC_OK;
}

/* wait for the acknowledgments of what was queued; r unless they failed */
static tkc_result
await_acks(tkc_worker *w, tkc_event *ev, tkc_acks *acks, tkc_result r)
{
	char		err[256];

	if (!tkc_produce_end(w, acks, err, sizeof(err)) && r == TKC_OK)
	{
		tkc_fail(ev, "queueing notifications: %s", err);
		r = TKC_DOWN;
	}
	return r;
}

tkc_result
tkn_fanout_handle(tkc_worker *w, tkn_worker *nw, tkc_event *ev)
{
	plan_in		in;
	const char *params[7];
	PGconn	   *conn;
	PGresult   *res;
	tk_strbuf	msg;
	tkc_acks	acks = {0, 0};
	tkc_result	r;

	if (!plan_input(ev, &in))
		return TKC_OK;			/* updates, deletes ...: nothing to say */
	conn = tkc_pg(w);
	if (conn == NULL)
		return TKC_DOWN;
	params[0] = in.user;
	params[1] = in.kind;
	params[2] = in.reminder ? in.requested : NULL;
	params[3] = in.task_id;
	params[4] = in.title;
	params[5] = in.due;
	params[6] = in.late ? "true" : "false";
	res = PQexecParams(conn, PLAN_SQL, 7, NULL, params, NULL, NULL, 0);
	r = tkc_pg_result(w, res, ev);
	if (r != TKC_OK)
	{
		PQclear(res);
		return r;
	}
	tk_strbuf_init(&msg);
	for (int i = 0; i < PQntuples(res) && r == TKC_OK; i++)
		r = queue_row(w, ev, &in, res, i, 0, &msg, &acks);
	r = await_acks(w, ev, &acks, r);
	tk_strbuf_free(&msg);
	PQclear(res);
	return r;
}

/* the batch's plan inputs as the JSON array PLAN_BATCH_SQL reads; NULL on OOM */
static char *
plan_batch_json(tkc_event **evs, int n, plan_in *in, int *planned)
{
	cJSON	   *arr = cJSON_CreateArray();
	char	   *out = NULL;
	bool		ok = arr != NULL;

	*planned = 0;
	for (int i = 0; i < n && ok; i++)
	{
		cJSON	   *x;

		if (!plan_input(evs[i], &in[i]))
		{
			in[i].user = NULL;	/* not fanned out */
			continue;
		}
		ok = (x = cJSON_CreateObject()) != NULL && cJSON_AddItemToArray(arr, x) &&
			cJSON_AddStringToObject(x, "user", in[i].user) &&
			cJSON_AddStringToObject(x, "kind", in[i].kind) &&
			add_string_or_null(x, "requested", in[i].reminder ? in[i].requested : NULL) &&
			cJSON_AddStringToObject(x, "task_id", in[i].task_id) &&
			add_string_or_null(x, "title", in[i].title) &&
			add_string_or_null(x, "due", in[i].due) &&
			cJSON_AddBoolToObject(x, "late", in[i].late);
		if (ok)
			(*planned)++;
	}
	if (ok)
		out = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	return out;
}

tkc_result
tkn_fanout_sink(tkc_worker *w, tkc_event **evs, int n, int *written)
{
	plan_in    *in = calloc(n, sizeof(plan_in));
	int		   *index = calloc(n, sizeof(int));
	char	   *json = NULL;
	const char *params[1];
	PGresult   *res = NULL;
	tk_strbuf	msg;
	tkc_acks	acks = {0, 0};
	tkc_result	r = TKC_OK;
	int			planned = 0;
	int			k = 0;

	*written = 0;
	tk_strbuf_init(&msg);
	if (in == NULL || index == NULL || (json = plan_batch_json(evs, n, in, &planned)) == NULL)
	{
		tkc_fail(evs[0], "out of memory planning %d notifications", n);
		r = TKC_RETRY;
		goto done;
	}
	if (planned == 0)
		goto done;				/* nothing to say about this batch */
	/* e.i of PLAN_BATCH_SQL counts the planned events only */
	for (int i = 0; i < n; i++)
		if (in[i].user != NULL)
			index[k++] = i;
	params[0] = json;
	res = PQexecParams(tkc_pg(w), PLAN_BATCH_SQL, 1, NULL, params, NULL, NULL, 0);
	r = tkc_pg_result(w, res, evs[0]);
	for (int row = 0; r == TKC_OK && row < PQntuples(res); row++)
	{
		int			i = index[atoi(PQgetvalue(res, row, 0)) - 1];

		r = queue_row(w, evs[i], &in[i], res, row, 1, &msg, &acks);
		if (r != TKC_OK && evs[i] != evs[0])
			memcpy(evs[0]->error, evs[i]->error, sizeof(evs[0]->error));
		else if (r == TKC_OK)
			(*written)++;
	}
	r = await_acks(w, evs[0], &acks, r);
done:
	PQclear(res);
	tk_strbuf_free(&msg);
	free(json);
	free(index);
	free(in);
	return r;
}
