/*-------------------------------------------------------------------------
 *
 * runtime.c
 *	  tkc_main: from argv to running consumer threads and back to exit 0
 *
 * Start-up, in order:
 *	 1. command line, config file, environment (common/daemon_config.c):
 *		the shared daemon settings, the runtime's (runtime_config.c), then
 *		the service's own table (checked by its check_config hook, if any,
 *		e.g. against the profile); --consumers N and --group-prefix are the
 *		runtime's long options.  Usage and configuration errors exit 2 with
 *		the reason; --show-config prints the result with secrets redacted.
 *	 2. signals (common/signals.c: a second SIGTERM exits at once), libcurl.
 *	 3. topics: the service names logical streams; their Kafka topics come
 *		from the database (todo_kafka.topic_of(), an extension function
 *		granted to each service's role), so renaming a topic is an UPDATE of
 *		todo_kafka.topics, as for the relay.  The dead-letter topic too.
 *		PostgreSQL not up yet: wait with capped backoff (a service may start
 *		before its database); a missing function or grant: exit 1 saying
 *		which.
 *	 4. the service's setup hook, when it has one (worker.c
 *		tkc_run_setup): one-shot commands and start-up checks that must run
 *		before anything is consumed (the projector's --replay, --snapshot);
 *		it may end the process with its exit code.
 *	 5. /metrics and /healthz (metrics.c), then N worker threads
 *		(worker.c), each a member of the group <group_prefix><name>.
 * The main thread then only waits: SIGHUP re-reads the configuration and
 * applies log_level (other changes need a restart, and it says so); on
 * SIGTERM the workers finish their batch, commit and leave the group, and
 * the process exits 0.
 *
 * IDENTIFICATION
 *	  consumers/runtime/runtime.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "clock.h"
#include "log.h"
#include "pg.h"
#include "runtime.h"
#include "signals.h"

static const tk_cli_option runtime_cli_options[] = {
	{"consumers", "consumers", true,
	"--consumers=N          consumer threads in this process (default 1)"},
	{"group-prefix", "group_prefix", true,
	"--group-prefix=PREFIX  consumer group prefix (default todo-chatbot-)"},
	{"alert-webhook", "alert_webhook", true,
	"--alert-webhook=URL    POST a JSON alert per dead letter and outage"},
};

#define N_RUNTIME_CLI (sizeof(runtime_cli_options) / sizeof(runtime_cli_options[0]))

/* the runtime's long options followed by the service's */
static tk_cli_option *
merged_cli_options(const tkc_service *svc)
{
	int			n = 0;
	tk_cli_option *all;

	for (int i = 0; svc->cli_options && svc->cli_options[i].name; i++)
		n++;
	all = calloc(N_RUNTIME_CLI + n + 1, sizeof(tk_cli_option));
	if (all == NULL)
		return NULL;
	memcpy(all, runtime_cli_options, sizeof(runtime_cli_options));
	for (int i = 0; i < n; i++)
		all[N_RUNTIME_CLI + i] = svc->cli_options[i];
	return all;
}

/* one stream's topic from the database; NULL (logged) when it cannot be had */
static char *
topic_of(PGconn *conn, const char *stream, const char *db_role)
{
	const char *params[1] = {stream};
	PGresult   *res = PQexecParams(conn, "SELECT todo_kafka.topic_of($1)", 1, NULL,
								   params, NULL, NULL, 0);
	char		err[512];
	char	   *topic = NULL;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		topic = strdup(PQgetvalue(res, 0, 0));
	else
	{
		tk_log(TK_LOG_FATAL, "cannot learn the topic of stream \"%s\": %s", stream,
			   tk_pg_error_text(conn, res, err, sizeof(err)));
		tk_log(TK_LOG_INFO, "hint: the database needs todo_kafka 0.3.0 or later "
			   "(ALTER EXTENSION todo_kafka UPDATE) and the service's login needs "
			   "%s (GRANT %s TO <login>)", db_role, db_role);
	}
	PQclear(res);
	return topic;
}

/* ask the database for each stream's topic; 0 ok, else an exit code */
static int
resolve_topics(tkc_runtime *rt)
{
	tk_backoff	b;
	PGconn	   *conn = NULL;
	bool		ok = true;

	tk_backoff_init(&b, 200, rt->rc.outage_retry_max_ms, (uint64_t) getpid());
	while (!tk_shutdown_requested && (conn = tk_pg_connect(rt->d.conninfo, rt->program)) == NULL)
	{
		int			delay = tk_backoff_next(&b);

		tk_log(TK_LOG_WARNING, "waiting for PostgreSQL to learn the topics (retry in %d ms)", delay);
		for (int slept = 0; slept < delay && !tk_shutdown_requested; slept += 100)
			usleep(100 * 1000);
	}
	if (conn == NULL)
		return TK_EXIT_OK;		/* shut down while waiting */

	for (int i = 0; ok && i < rt->nstreams; i++)
		ok = (rt->topics[i] = topic_of(conn, rt->streams[i], rt->svc->db_role)) != NULL;
	for (int i = 0; ok && i < rt->nproduced; i++)
		ok = (rt->produced_topics[i] = topic_of(conn, rt->produced[i], rt->svc->db_role)) != NULL;
	ok = ok && (rt->dead_letter_topic = topic_of(conn, TK_STREAM_DEAD_LETTER, rt->svc->db_role)) != NULL;
	PQfinish(conn);
	if (!ok)
		return TK_EXIT_FAILURE;
	for (int i = 0; i < rt->nstreams; i++)
		tk_log(TK_LOG_INFO, "consuming stream %s = topic %s", rt->streams[i], rt->topics[i]);
	return TK_EXIT_OK;
}

static void
reload(const tk_daemon_spec *spec, const tk_cli *cli, tkc_runtime *rt)
{
	tk_daemon_config d;
	tkc_runtime_config rc;
	void	   *svc_config = calloc(1, rt->svc->config_size ? rt->svc->config_size : 1);
	void	   *own[] = {&rc, svc_config};
	char		err[1024];

	memset(&rc, 0, sizeof(rc));
	if (svc_config == NULL)
		return;
	if (!tk_daemon_config_load(spec, cli, &d, own, err, sizeof(err)))
		tk_log(TK_LOG_ERROR, "reload failed, keeping the old configuration: %s", err);
	else
	{
		tk_log_set_level(d.log_level);
		tk_log(TK_LOG_INFO, "configuration re-read: log_level applied; other changes take effect on restart");
		tk_daemon_config_free(spec, &d, own);
	}
	free(svc_config);
}

int
tkc_main(const tkc_service *svc, int argc, char **argv)
{
	static tkc_runtime rt;
	tk_daemon_spec spec;
	tk_cli		cli;
	tkc_worker *workers;
	void	   *own[2];
	char		err[1024];
	static char notes[4096];
	int			rc;
	int			exit_code = TK_EXIT_OK;

	if ((svc->handle == NULL) == (svc->sink == NULL) || (svc->sink && svc->sink_unit == NULL) ||
		(svc->stored_offsets && (svc->stored_offsets->load == NULL ||
								 svc->stored_offsets->skip_dead_letter == NULL)))
	{
		/* a programming error of the service, not a configuration error */
		fprintf(stderr, "todo-kafka-%s: the service must set exactly one of handle and sink "
				"(and sink_unit with sink; stored_offsets needs both hooks): see "
				"consumers/runtime/consumer.h\n", svc->name);
		return TK_EXIT_FAILURE;
	}
	memset(&rt, 0, sizeof(rt));
	rt.svc = svc;
	snprintf(rt.program, sizeof(rt.program), "todo-kafka-%s", svc->name);
	memset(&spec, 0, sizeof(spec));
	spec.program = rt.program;
	spec.summary = svc->summary;
	spec.version = TK_VERSION;
	spec.tables[0] = tkc_runtime_options;
	spec.tables[1] = svc->options;
	spec.kafka_defaults = tkc_consumer_kafka_defaults;
	spec.cli_options = merged_cli_options(svc);
	snprintf(notes, sizeof(notes), "Database login: a member of role %s and of no other "
			 "todo_kafka role.\n%s", svc->db_role, svc->notes ? svc->notes : "");
	spec.notes = notes;
	rt.svc_config = calloc(1, svc->config_size ? svc->config_size : 1);
	if (spec.cli_options == NULL || rt.svc_config == NULL)
	{
		fprintf(stderr, "%s: out of memory\n", rt.program);
		return TK_EXIT_FAILURE;
	}
	for (int i = 0; svc->streams[i] && rt.nstreams < TKC_MAX_STREAMS; i++)
		rt.streams[rt.nstreams++] = svc->streams[i];
	for (int i = 0; svc->produces && svc->produces[i] && rt.nproduced < TKC_MAX_STREAMS; i++)
		rt.produced[rt.nproduced++] = svc->produces[i];

	rc = tk_cli_parse(&spec, argc, argv, &cli);
	if (rc >= 0)
		return rc;
	own[0] = &rt.rc;
	own[1] = rt.svc_config;
	if (!tk_daemon_config_load(&spec, &cli, &rt.d, own, err, sizeof(err)) ||
		(svc->check_config && !svc->check_config(rt.svc_config, rt.d.profile, err, sizeof(err))))
	{
		fprintf(stderr, "%s: %s\n", rt.program, err);
		return TK_EXIT_USAGE;
	}
	if (cli.show_config)
	{
		tk_daemon_config_print(&spec, &rt.d, own, stdout);
		return TK_EXIT_OK;
	}
	snprintf(rt.group, sizeof(rt.group), "%s%s", rt.rc.group_prefix, svc->name);
	tk_log_set_level(rt.d.log_level);
	tk_signals_install(true, 1);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	tkc_metrics_init(&rt);
	tk_daemon_log_start(&spec, &rt.d);

	if ((rc = resolve_topics(&rt)) != TK_EXIT_OK || tk_shutdown_requested)
		return rc;
	if ((rc = tkc_run_setup(&rt)) != TKC_SETUP_CONTINUE)
		return rc;
	if (!tkc_metrics_start(rt.d.metrics_listen, err, sizeof(err)))
	{
		tk_log(TK_LOG_FATAL, "%s", err);
		return TK_EXIT_FAILURE;
	}
	if (!tk_otlp_start(rt.d.otlp_endpoint, rt.program, err, sizeof(err)))
	{
		tk_log(TK_LOG_FATAL, "%s", err);
		return TK_EXIT_FAILURE;
	}

	tk_log(TK_LOG_INFO, "group %s: starting %d consumer%s", rt.group, rt.rc.consumers,
		   rt.rc.consumers == 1 ? "" : "s");
	workers = calloc(rt.rc.consumers, sizeof(tkc_worker));
	if (workers == NULL)
		return TK_EXIT_FAILURE;
	for (int i = 0; i < rt.rc.consumers; i++)
	{
		workers[i].rt = &rt;
		workers[i].index = i;
		if (pthread_create(&workers[i].thread, NULL, tkc_worker_run, &workers[i]) != 0)
		{
			tk_log(TK_LOG_FATAL, "could not start consumer thread %d", i);
			tk_shutdown_requested = 1;
			rt.rc.consumers = i;
			exit_code = TK_EXIT_FAILURE;
			break;
		}
	}

	while (!tk_shutdown_requested)
	{
		usleep(100 * 1000);
		if (tk_reload_requested)
		{
			tk_reload_requested = 0;
			reload(&spec, &cli, &rt);
		}
	}
	tk_log(TK_LOG_INFO, "shutting down: finishing the messages in hand");
	for (int i = 0; i < rt.rc.consumers; i++)
	{
		pthread_join(workers[i].thread, NULL);
		if (workers[i].exit_code > exit_code)
			exit_code = workers[i].exit_code;
	}
	tkc_metrics_stop();
	tk_otlp_stop();
	free(workers);
	tk_daemon_config_free(&spec, &rt.d, own);
	tk_cli_free(&cli);
	curl_global_cleanup();
	tk_log(TK_LOG_INFO, "%s stopped", rt.program);
	return exit_code;
}
