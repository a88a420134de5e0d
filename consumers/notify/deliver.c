/*-------------------------------------------------------------------------
 *
 * deliver.c
 *	  todo-kafka-notify, delivery stage: a queued notification reaches its
 *	  channel once
 *
 * Input: notification.requested on todo.notifications (fanout.c).
 *	 in_app	 todo_kafka.deliver_in_app(): inbox row (with the trace id),
 *			 delivery log row and NOTIFY in one transaction; a redelivery
 *			 does nothing
 *	 email	 SMTP to the user's address (email.h), Message-ID from the id
 *	 push	 every Web Push subscription (webpush.h) and the JSON gateway
 * Tracing: a span per send ("email send", "push send") and per inbox row
 * ("inbox insert"), children of the message's process span (runtime
 * trace.c); an email carries a Traceparent header.
 *
 * Email and push cannot join a transaction, so each send to a target is
 * bracketed by the delivery log (extension/sql/11_notify_delivery.sql):
 * delivery_claim() commits 'sending' before, delivery_done()/_retry() the
 * outcome after; done targets are skipped on a retry.  An attempt killed
 * mid-send is not repeated unless resend_interrupted (no second email);
 * it is logged as a WARNING and counted.
 *
 * Outcomes (delivery.h), worst target wins: SMTP unavailable (connect, TLS,
 * login, 421 ...) TKC_DOWN; other transient (4xx, push 429/5xx/network)
 * TKC_RETRY, 'dead_lettered' on the last attempt; permanent (5xx, push
 * 400/403/413; 404, which also removes the subscription) TKC_DEAD; 410
 * removes it and is done; an endpoint off push_allowed_hosts is removed,
 * TKC_DEAD.  Replaying a dead letter claims its row again.  Logs name
 * notification ids, never push endpoints (capability URLs), keys or
 * passwords.  Runs on worker threads with the worker's tkn_worker.
 *
 * IDENTIFICATION
 *	  consumers/notify/deliver.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "notify.h"

/* the fields of one queued notification */
typedef struct tkn_note
{
	const char *id;
	const char *user;
	const char *channel;
	const char *kind;
	const char *task_id;
	const char *title;
	const char *body;
	const char *due_local;
	const char *traceparent;	/* tkc_traceparent(): the email's header */
	char		trace_id[33];	/* kept in the inbox row; "" when none */
} tkn_note;

static void
note_from(const tkc_event *ev, tkn_note *n)
{
	n->id = tkc_json_string(ev->data, "notification_id");
	n->user = tkc_json_string(ev->data, "user_id");
	n->channel = tkc_json_string(ev->data, "channel");
	n->kind = tkc_json_string(ev->data, "kind");
	n->task_id = tkc_json_string(ev->data, "task_id");
	n->title = tkc_json_string(ev->data, "title");
	n->body = tkc_json_string(ev->data, "body");
	n->due_local = tkc_json_string(ev->data, "due_local");
}

bool
tkn_deliver_validate(const void *config, tkc_event *ev)
{
	tkn_note	n;

	if (!cJSON_IsObject(ev->data))
	{
		tkc_fail(ev, "notification without a data object");
		return false;
	}
	note_from(ev, &n);
	if (n.id == NULL || n.user == NULL || n.channel == NULL || n.kind == NULL ||
		n.title == NULL || n.body == NULL || n.id[0] == '\0' || n.user[0] == '\0')
	{
		tkc_fail(ev, "notification lacks one of data.notification_id, user_id, channel, kind, title, body");
		return false;
	}
	if (strlen(n.id) > 300)
	{
		tkc_fail(ev, "data.notification_id is longer than 300 bytes");
		return false;
	}
	if (strcmp(n.channel, "email") != 0 && strcmp(n.channel, "push") != 0 &&
		strcmp(n.channel, "in_app") != 0)
	{
		tkc_fail(ev, "unknown notification channel \"%s\"", n.channel);
		return false;
	}
	return true;
}

/* run one statement; its result (rows in *resp, to be cleared) */
static tkc_result
run(tkc_worker *w, tkc_event *ev, const char *sql, int nparams,
	const char *const *params, PGresult **resp)
{
	PGconn	   *conn = tkc_pg(w);
	PGresult   *res;
	tkc_result	r;

	*resp = NULL;
	if (conn == NULL)
	{
		tkc_fail(ev, "the database is not reachable");
		return TKC_DOWN;
	}
	res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	r = tkc_pg_result(w, res, ev);
	if (r != TKC_OK)
		PQclear(res);
	else
		*resp = res;
	return r;
}

static tkc_result
run_void(tkc_worker *w, tkc_event *ev, const char *sql, int nparams,
		 const char *const *params)
{
	PGresult   *res;
	tkc_result	r = run(w, ev, sql, nparams, params, &res);

	PQclear(res);
	return r;
}

static tkc_result
deliver_in_app(tkc_worker *w, tkc_event *ev, const tkn_note *n)
{
	const char *params[7] = {n->id, n->user, n->kind, n->task_id, n->title, n->body,
	n->trace_id[0] ? n->trace_id : NULL};
	PGresult   *res;
	tkc_result	r;
	tk_span		span;

	tkc_span_start(w, &span, "inbox insert");
	tk_span_attr(&span, "todo_kafka.notification_id", n->id);
	r = run(w, ev, "SELECT todo_kafka.deliver_in_app($1, $2, $3, $4::uuid, $5, $6, $7)",
			7, params, &res);
	tkc_span_finish(&span, r == TKC_OK ? NULL : ev->error[0] ? ev->error : "not delivered");
	if (r != TKC_OK)
		return r;
	tkc_count(w, strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? "delivered" : "skipped",
			  "channel", "in_app", 1);
	PQclear(res);
	return TKC_OK;
}

static char *
email_body(const tkn_note *n)
{
	size_t		len = strlen(n->body) + strlen(n->id) + 128;
	char	   *b = malloc(len);

	if (b)
		snprintf(b, len, "%s\n\n-- \nSent by todo_kafka (notification %s).\n", n->body, n->id);
	return b;
}

/* the JSON a push carries: what a service worker shows */
static char *
push_payload(const tkn_note *n, bool gateway)
{
	cJSON	   *root = cJSON_CreateObject();
	char	   *out = NULL;

	if (root == NULL)
		return NULL;
	if (cJSON_AddStringToObject(root, "title", n->title) &&
		cJSON_AddStringToObject(root, gateway ? "message" : "body", n->body) &&
		cJSON_AddStringToObject(root, "notification_id", n->id) &&
		cJSON_AddStringToObject(root, "kind", n->kind) &&
		(n->task_id == NULL || cJSON_AddStringToObject(root, "task_id", n->task_id)) &&
		(!gateway || cJSON_AddStringToObject(root, "user_id", n->user)))
		out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return out;
}

/* send to one target; the outcome and, on failure, the reason in err */
static tkn_delivery
send_one(tkn_worker *nw, const tkn_note *n, const char *mode, const char *target,
		 const char *p256dh, const char *auth, char *err, size_t errlen)
{
	tkn_delivery d = {TKN_PERMANENT, 0, -1};
	char	   *text;

	if (strcmp(mode, "email") == 0)
	{
		tkn_email	mail = {target, n->title, NULL, n->id, 0, n->traceparent};

		if ((text = email_body(n)) == NULL)
		{
			snprintf(err, errlen, "out of memory");
			d.result = TKN_TRANSIENT;
			return d;
		}
		mail.body = text;
		d = tkn_email_send_kept(&nw->smtp_conn, &nw->smtp, &mail, err, errlen);
	}
	else
	{
		bool		gateway = strcmp(mode, "gateway") == 0;
		tkn_push_options opt = nw->push;

		if (!gateway && nw->vapid == NULL)
		{
			snprintf(err, errlen, "Web Push is not configured: set vapid_key");
			return d;
		}
		if ((text = push_payload(n, gateway)) == NULL)
		{
			snprintf(err, errlen, "out of memory");
			d.result = TKN_TRANSIENT;
			return d;
		}
		if (gateway)
		{
			opt.authorization = nw->cfg->push_gateway_authorization[0]
				? nw->cfg->push_gateway_authorization : NULL;
			d = tkn_gateway_post(target, text, strlen(text), &opt, err, errlen);
		}
		else
		{
			tkn_push_subscription sub = {target, p256dh, auth};

			opt.urgency = strcmp(n->kind, "reminder") == 0 ? "high" : "normal";
			d = tkn_webpush_send(nw->vapid, &sub, text, strlen(text), &opt, err, errlen);
		}
	}
	free(text);
	return d;
}

/* claim, send, record: one target */
static tkc_result
deliver_target(tkc_worker *w, tkn_worker *nw, tkc_event *ev, const tkn_note *n,
			   const char *mode, const char *target, const char *p256dh, const char *auth)
{
	const char *claim[5] = {n->id, n->channel, target, n->user,
	nw->cfg->resend_interrupted ? "true" : "false"};
	const char *done[6] = {n->id, n->channel, target, n->user, NULL, NULL};
	char		err[512] = "";
	char		detail[600];
	PGresult   *res;
	tkn_delivery d;
	tkc_result	r;
	tk_span		span;

	r = run(w, ev, "SELECT todo_kafka.delivery_claim($1, $2, $3, $4, $5::boolean)",
			5, claim, &res);
	if (r != TKC_OK)
		return r;
	if (strcmp(PQgetvalue(res, 0, 0), "claimed") != 0)
	{
		if (strcmp(PQgetvalue(res, 0, 0), "interrupted") == 0)
		{
			tk_log(TK_LOG_WARNING,
				   "notification %s (%s): an earlier attempt was interrupted mid-send; not sent again",
				   n->id, mode);
			tkc_count(w, "interrupted", "channel", n->channel, 1);
		}
		else
			tkc_count(w, "skipped", "channel", n->channel, 1);
		PQclear(res);
		return TKC_OK;
	}
	PQclear(res);

	tkc_span_start(w, &span, strcmp(mode, "email") == 0 ? "email send" : "push send");
	tk_span_attr(&span, "todo_kafka.notification_id", n->id);
	tk_span_attr(&span, "todo_kafka.delivery_mode", mode);
	d = send_one(nw, n, mode, target, p256dh, auth, err, sizeof(err));
	tkc_span_finish(&span, d.result == TKN_DELIVERED ? NULL : err[0] ? err : tkn_result_name(d.result));
	snprintf(detail, sizeof(detail), "%s %ld%s%s", tkn_result_name(d.result), d.status,
			 err[0] ? ": " : "", err);
	done[5] = detail;
	switch (d.result)
	{
		case TKN_DELIVERED:
			done[4] = "delivered";
			tkc_count(w, "delivered", "channel", n->channel, 1);
			tk_log(TK_LOG_DEBUG, "notification %s delivered by %s", n->id, mode);
			break;
		case TKN_GONE:
			if (strcmp(mode, "webpush") == 0)
			{
				const char *gone[1] = {target};

				done[4] = "gone";
				r = run_void(w, ev, "SELECT todo_kafka.push_subscription_gone($1)", 1, gone);
				if (r != TKC_OK)
					return r;
				tkc_count(w, "subscriptions_removed", "status",
						  d.status == 0 ? "refused" : d.status == 404 ? "404" : "410", 1);
				if (d.status == 0)	/* never sent: push_allowed_hosts (webpush.h) */
				{
					tk_log(TK_LOG_WARNING, "notification %s: push subscription of user \"%s\" removed: %s",
						   n->id, n->user, err);
					tkc_fail(ev, "%s; subscription removed", err);
					r = TKC_DEAD;
				}
				else
					tk_log(TK_LOG_INFO, "notification %s: push subscription of user \"%s\" is gone (%ld), removed",
						   n->id, n->user, d.status);
				if (d.status == 404)
				{
					tkc_fail(ev, "push endpoint answered 404 Not Found: subscription removed");
					r = TKC_DEAD;
				}
			}
			else
			{
				done[4] = "dead_lettered";
				tkc_fail(ev, "push gateway: %s", err);
				r = TKC_DEAD;
			}
			break;
		case TKN_PERMANENT:
			done[4] = "dead_lettered";
			tkc_fail(ev, "%s delivery refused for good: %s", mode, err);
			r = TKC_DEAD;
			break;
		case TKN_TRANSIENT:
		case TKN_UNAVAILABLE:
			{
				const char *retry[4] = {n->id, n->channel, target, detail};
				bool		down = d.result == TKN_UNAVAILABLE && strcmp(mode, "email") == 0;
				tkc_result	rr;

				tkc_count(w, "transient_failures", "channel", n->channel, 1);
				if (!down && tkc_last_attempt(w, ev))
				{
					/* the runtime dead-letters it now: the log says so */
					done[4] = "dead_lettered";
					tkc_fail(ev, "%s delivery failed on the last attempt (%d): %s",
							 mode, ev->attempt, err);
					r = TKC_RETRY;
					break;
				}
				rr = run_void(w, ev, "SELECT todo_kafka.delivery_retry($1, $2, $3, $4)", 4, retry);
				if (rr != TKC_OK)
					return rr;
				tkc_fail(ev, "%s delivery failed: %s", mode, err);
				/* the SMTP server is unusable: pause email, count no attempt */
				return down ? TKC_DOWN : TKC_RETRY;
			}
	}
	{
		tkc_result rr = run_void(w, ev,
								 "SELECT todo_kafka.delivery_done($1, $2, $3, $4, $5, $6)",
								 6, done);

		if (rr != TKC_OK)
			return rr;
	}
	return r;
}

/* how bad a result is, to report the worst of several targets */
static int
severity(tkc_result r)
{
	switch (r)
	{
		case TKC_OK:
			return 0;
		case TKC_DEAD:
			return 1;
		case TKC_RETRY:
			return 2;
		case TKC_DOWN:
			return 3;
	}
	return 3;
}

tkc_result
tkn_deliver_handle(tkc_worker *w, tkn_worker *nw, tkc_event *ev)
{
	tkn_note	n;
	const char *params[2];
	PGresult   *res;
	tkc_result	worst = TKC_OK;
	bool		email;

	note_from(ev, &n);
	n.traceparent = tkc_traceparent(w, ev);
	tkc_event_trace_id(ev, n.trace_id);
	email = strcmp(n.channel, "email") == 0;
	if ((nw->stage == TKN_STAGE_EMAIL && !email) ||
		(nw->stage == TKN_STAGE_REALTIME && email))
		return TKC_OK;			/* another stage's */
	if (strcmp(n.channel, "in_app") == 0)
		return deliver_in_app(w, ev, &n);

	params[0] = n.user;
	params[1] = n.channel;
	worst = run(w, ev, "SELECT mode, target, p256dh, auth FROM todo_kafka.notification_targets($1, $2)",
				2, params, &res);
	if (worst != TKC_OK)
		return worst;
	if (PQntuples(res) == 0)
		tkc_count(w, "no_target", "channel", n.channel, 1);
	for (int i = 0; i < PQntuples(res); i++)
	{
		tkc_result r = deliver_target(w, nw, ev, &n, PQgetvalue(res, i, 0),
									  PQgetvalue(res, i, 1),
									  PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2),
									  PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3));

		if (severity(r) > severity(worst))
			worst = r;
		if (r == TKC_DOWN)
			break;				/* the server is down: the rest would fail too */
	}
	PQclear(res);
	return worst;
}
