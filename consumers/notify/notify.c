/*-------------------------------------------------------------------------
 *
 * notify.c
 *	  todo-kafka-notify: new tasks and fired reminders reach the user by
 *	  email, Web Push and the in-app inbox, each once
 *
 * Two stages on the consumer runtime (consumers/runtime/consumer.h):
 *	 fan-out   (fanout.c) task.created and task.reminder (sent/missed) ->
 *			   one notification.requested per channel on todo.notifications,
 *			   key = user id, id = <source event id>:<channel>
 *	 delivery  (deliver.c) -> email, push, in-app, each (notification,
 *			   channel, target) once through the delivery log
 *			   (extension/sql/11_notify_delivery.sql)
 *
 * --stage (or TODO_KAFKA_STAGE; not the config file: the stage picks the
 * consumer group before the file is read): all (default, both stages,
 * group todo-chatbot-notify), fanout, email, realtime (push and in-app),
 * each in group todo-chatbot-notify-<stage>, reading every message of its
 * topics and skipping what is not its business.  Why: a user's channels
 * share a partition (key = user), so with --stage all an SMTP outage
 * (TKC_DOWN, paused) also holds up push and in-app; split, the email group
 * waits alone.
 *
 * Threads: every handler runs on its worker's thread with that worker's
 * tkn_worker (init); settings are read-only; libcurl was initialised once
 * in main() before the runtime started any thread.
 *
 * IDENTIFICATION
 *	  consumers/notify/notify.c
 *
 *-------------------------------------------------------------------------
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_allowlist.h"
#include "log.h"
#include "notify.h"

#define OFF(f) offsetof(tkn_config, f)

static const tk_option notify_options[] = {
	{"stage", TK_OPT_STRING, OFF(stage), "all", 0, 0,
	"all | fanout | email | realtime (--stage or TODO_KAFKA_STAGE only)"},
	{"smtp_url", TK_OPT_STRING, OFF(smtp_url), "smtp://localhost:25", 0, 0,
	"SMTP server: smtp://host[:port] or smtps://host[:port]"},
	{"smtp_from", TK_OPT_STRING, OFF(smtp_from), "todo-kafka@localhost", 0, 0,
	"sender address (envelope and From)"},
	{"smtp_from_name", TK_OPT_STRING, OFF(smtp_from_name), "Todo notifications", 0, 0,
	"display name of the sender"},
	{"smtp_username", TK_OPT_STRING, OFF(smtp_username), "", 0, 0,
	"SMTP AUTH user; empty = no AUTH"},
	{"smtp_password", TK_OPT_SECRET, OFF(smtp_password), "", 0, 0,
	"SMTP AUTH password (better: TODO_KAFKA_SMTP_PASSWORD)"},
	{"smtp_starttls", TK_OPT_BOOL, OFF(smtp_starttls), "false", 0, 0,
	"require STARTTLS on smtp:// URLs"},
	{"smtp_ca_file", TK_OPT_STRING, OFF(smtp_ca_file), "", 0, 0,
	"CA bundle for the SMTP server's certificate; empty = system"},
	{"smtp_timeout_ms", TK_OPT_INT, OFF(smtp_timeout_ms), "30000", 100, 600000,
	"time limit of one SMTP session"},
	{"vapid_key", TK_OPT_STRING, OFF(vapid_key), "", 0, 0,
	"VAPID private key: PEM file path (or base64url); empty = no Web Push"},
	{"vapid_subject", TK_OPT_STRING, OFF(vapid_subject), "mailto:todo-kafka@localhost", 0, 0,
	"VAPID contact (mailto: or https:) given to push services"},
	{"push_ttl", TK_OPT_INT, OFF(push_ttl), "86400", 0, 2419200,
	"seconds a push service may hold an undelivered push"},
	{"push_timeout_ms", TK_OPT_INT, OFF(push_timeout_ms), "10000", 100, 600000,
	"time limit of one push request"},
	{"push_ca_file", TK_OPT_STRING, OFF(push_ca_file), "", 0, 0,
	"CA bundle for push services and gateways; empty = system"},
	{"push_gateway_authorization", TK_OPT_SECRET, OFF(push_gateway_authorization), "", 0, 0,
	"Authorization header for push gateways (e.g. \"Bearer ...\")"},
	{"push_allowed_hosts", TK_OPT_STRING, OFF(push_allowed_hosts), TK_PUSH_ALLOWED_HOSTS_DEFAULT, 0, 0,
	"hosts Web Push endpoints may be on (*.domain for subdomains, * for any)"},
	{"push_gateway_allowed_hosts", TK_OPT_STRING, OFF(push_gateway_allowed_hosts), "", 0, 0,
	"hosts push gateways may be on; empty = no gateway"},
	{"push_allow_loopback", TK_OPT_BOOL, OFF(push_allow_loopback), "false", 0, 0,
	"development: let pushes reach loopback addresses (refused in production)"},
	{"push_connect_to", TK_OPT_STRING, OFF(push_connect_to), "", 0, 0,
	"development: HOST:PORT:TO_HOST:TO_PORT,... (refused in production)"},
	{"resend_interrupted", TK_OPT_BOOL, OFF(resend_interrupted), "false", 0, 0,
	"resend an email/push whose attempt died mid-send (at least once)"},
	{"delivery_log_days", TK_OPT_INT, OFF(delivery_log_days), "30", 1, 3650,
	"days the delivery log keeps a row (purged hourly)"},
	{NULL}
};

static const tk_cli_option notify_cli_options[] = {
	{"stage", "stage", true,
	"--stage=STAGE          all | fanout | email | realtime (default all)"},
	{NULL}
};

/* the fan-out stage only writes the notifications stream (.produces) */
static const char *const fanout_streams[] = {TK_STREAM_TASK_EVENTS, TK_STREAM_REMINDERS, NULL};
static const char *const produced_streams[] = {TK_STREAM_NOTIFICATIONS, NULL};
static const char *const delivery_streams[] = {TK_STREAM_NOTIFICATIONS, NULL};
static const char *const all_streams[] = {TK_STREAM_TASK_EVENTS, TK_STREAM_REMINDERS,
	TK_STREAM_NOTIFICATIONS, NULL};

static const char *const stage_names[] = {"all", "fanout", "email", "realtime"};

/* which stage an event belongs to, by its CloudEvents type */
static bool
is_delivery(const tkc_event *ev)
{
	return strcmp(ev->type, TKN_TYPE_REQUESTED) == 0;
}

static bool
notify_validate(const void *config, tkc_event *ev)
{
	if (is_delivery(ev))
		return tkn_deliver_validate(config, ev);
	return tkn_fanout_validate(config, ev);
}

static tkn_stage current_stage;

/* the development-only push settings have no place in production */
static bool
notify_check_config(const void *config, const char *profile, char *errbuf, size_t errlen)
{
	const tkn_config *cfg = config;

	if (strcmp(profile, "production") != 0)
		return true;
	if (cfg->push_allow_loopback)
	{
		snprintf(errbuf, errlen, "production profile refuses push_allow_loopback = true "
				 "(it lets user-supplied push endpoints reach this host): remove it");
		return false;
	}
	if (cfg->push_connect_to[0])
	{
		snprintf(errbuf, errlen, "production profile refuses push_connect_to "
				 "(a development mapping of push hosts): remove it");
		return false;
	}
	return true;
}

static bool
notify_init(tkc_worker *w, char *errbuf, size_t errlen)
{
	const tkn_config *cfg = tkc_config(w);
	tkn_worker *nw;

	if (strcmp(cfg->stage, stage_names[current_stage]) != 0)
	{
		snprintf(errbuf, errlen,
				 "stage \"%s\" from the config file differs from \"%s\": give it with --stage or TODO_KAFKA_STAGE",
				 cfg->stage, stage_names[current_stage]);
		return false;
	}
	nw = calloc(1, sizeof(*nw));
	if (nw == NULL)
	{
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	nw->stage = current_stage;
	nw->cfg = cfg;

	nw->smtp.url = cfg->smtp_url;
	nw->smtp.from = cfg->smtp_from;
	nw->smtp.from_name = cfg->smtp_from_name[0] ? cfg->smtp_from_name : NULL;
	nw->smtp.username = cfg->smtp_username[0] ? cfg->smtp_username : NULL;
	nw->smtp.password = cfg->smtp_password[0] ? cfg->smtp_password : NULL;
	nw->smtp.starttls = cfg->smtp_starttls;
	nw->smtp.ca_file = cfg->smtp_ca_file[0] ? cfg->smtp_ca_file : NULL;
	nw->smtp.timeout_ms = cfg->smtp_timeout_ms;

	tkn_push_options_init(&nw->push);
	nw->push.ttl = cfg->push_ttl;
	nw->push.timeout_ms = cfg->push_timeout_ms;
	nw->push.ca_file = cfg->push_ca_file[0] ? cfg->push_ca_file : NULL;
	nw->push.allowed_hosts = cfg->push_allowed_hosts;
	nw->push.gateway_allowed_hosts = cfg->push_gateway_allowed_hosts;
	nw->push.allow_loopback = cfg->push_allow_loopback;
	nw->push.connect_to = cfg->push_connect_to[0] ? cfg->push_connect_to : NULL;

	if (cfg->vapid_key[0] && current_stage != TKN_STAGE_FANOUT &&
		current_stage != TKN_STAGE_EMAIL)
	{
		nw->vapid = tkn_vapid_load(cfg->vapid_key, cfg->vapid_subject, errbuf, errlen);
		if (nw->vapid == NULL)
		{
			free(nw);
			return false;
		}
		if (tkc_worker_index(w) == 0)
			tk_log(TK_LOG_INFO, "web push enabled, application server key %s",
				   tkn_vapid_public_key(nw->vapid));
	}
	else if (tkc_worker_index(w) == 0 && current_stage != TKN_STAGE_FANOUT &&
			 current_stage != TKN_STAGE_EMAIL)
		tk_log(TK_LOG_WARNING,
			   "vapid_key is not set: pushes to Web Push subscriptions will be dead-lettered");
	tkc_set_state(w, nw);
	return true;
}

static tkc_result
notify_handle(tkc_worker *w, tkc_event *ev)
{
	tkn_worker *nw = tkc_state(w);

	if (is_delivery(ev))
	{
		if (nw->stage == TKN_STAGE_FANOUT)
			return TKC_OK;
		return tkn_deliver_handle(w, nw, ev);
	}
	if (nw->stage != TKN_STAGE_ALL && nw->stage != TKN_STAGE_FANOUT)
		return TKC_OK;
	return tkn_fanout_handle(w, nw, ev);
}

/* --stage fanout: a batch at a time */
static tkc_result
notify_fanout_sink(tkc_worker *w, tkc_event **evs, int n, int *written)
{
	return tkn_fanout_sink(w, evs, n, written);
}

/* worker 0, hourly: the delivery log's retention */
static void
notify_periodic(tkc_worker *w)
{
	tkn_worker *nw = tkc_state(w);
	PGconn	   *conn = tkc_pg(w);
	char		days[32];
	const char *params[1];
	PGresult   *res;

	if (conn == NULL || nw == NULL || nw->stage == TKN_STAGE_FANOUT)
		return;
	snprintf(days, sizeof(days), "%d days", nw->cfg->delivery_log_days);
	params[0] = days;
	res = PQexecParams(conn, "SELECT todo_kafka.purge_notification_deliveries($1::interval)",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		tk_log(TK_LOG_WARNING, "purging the delivery log failed: %s", PQerrorMessage(conn));
	else if (atol(PQgetvalue(res, 0, 0)) > 0)
		tk_log(TK_LOG_INFO, "purged %s delivery log rows older than %s",
			   PQgetvalue(res, 0, 0), days);
	PQclear(res);
}

static void
notify_fini(tkc_worker *w)
{
	tkn_worker *nw = tkc_state(w);

	if (nw == NULL)
		return;
	tkn_vapid_free(nw->vapid);
	tkn_smtp_conn_close(&nw->smtp_conn);
	free(nw);
	tkc_set_state(w, NULL);
}

#define NOTIFY_SERVICE(svc_name, svc_streams, ...) \
	{ \
		.name = svc_name, \
		.summary = "delivers new tasks and reminders by email, Web Push and in-app.", \
		.db_role = "todo_kafka_notifier", \
		.streams = svc_streams, \
		.produces = produced_streams, \
		.options = notify_options, \
		.config_size = sizeof(tkn_config), \
		.cli_options = notify_cli_options, \
		.notes = "Stages: all (default), or fanout + email + realtime as separate\n" \
			"processes so an SMTP outage does not hold up push and in-app.\n", \
		.check_config = notify_check_config, \
		.validate = notify_validate, \
		.init = notify_init, \
		__VA_ARGS__, \
		.periodic = notify_periodic, \
		.periodic_ms = 3600 * 1000, \
		.fini = notify_fini, \
	}

static const tkc_service notify_services[] = {
	NOTIFY_SERVICE("notify", all_streams, .handle = notify_handle),
	/* alone, fan-out plans and produces a whole batch at once (fanout.c) */
	NOTIFY_SERVICE("notify-fanout", fanout_streams,
				   .sink = notify_fanout_sink, .sink_unit = "notifications"),
	NOTIFY_SERVICE("notify-email", delivery_streams, .handle = notify_handle),
	NOTIFY_SERVICE("notify-realtime", delivery_streams, .handle = notify_handle),
};

/* --stage X, --stage=X or TODO_KAFKA_STAGE, before the runtime parses argv */
static const char *
find_stage(int argc, char **argv)
{
	const char *stage = getenv("TODO_KAFKA_STAGE");

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strncmp(argv[i], "--stage=", 8) == 0)
			stage = argv[i] + 8;
		else if (strcmp(argv[i], "--stage") == 0 && i + 1 < argc)
			stage = argv[++i];
	}
	return stage ? stage : "all";
}

int
main(int argc, char **argv)
{
	const char *stage = find_stage(argc, argv);
	char		err[256];
	int			rc;
	int			i;

	for (i = 0; i < 4; i++)
		if (strcmp(stage, stage_names[i]) == 0)
			break;
	if (i == 4)
	{
		fprintf(stderr, "todo-kafka-notify: unknown stage \"%s\" (all, fanout, email or realtime)\n",
				stage);
		return TK_EXIT_USAGE;
	}
	current_stage = (tkn_stage) i;
	if (!tkn_delivery_global_init(err, sizeof(err)))
	{
		fprintf(stderr, "todo-kafka-notify: %s\n", err);
		return TK_EXIT_FAILURE;
	}
	rc = tkc_main(&notify_services[i], argc, argv);
	tkn_delivery_global_cleanup();
	return rc;
}
