/*-------------------------------------------------------------------------
 *
 * dlq.c
 *	  todo-kafka-dlq: the operator's tool for dead letters: list, show,
 *	  replay once to the original topic, purge
 *
 * Where dead letters are:
 *	 - the dead-letter topic (todo.dead.letter, from todo_kafka.topic_of):
 *	   envelopes of the consumer services (common/dead_letter.c: the
 *	   original key and value kept in data.key and data.payload or
 *	   data.payload_base64, origin topic/partition/offset) and the relay's
 *	   notices of poison outbox rows (no payload; data.outbox_id);
 *	 - the table todo_kafka.dead_letters: the relay's poison rows, whole.
 * A dead letter is named by where it lies: "<partition>:<offset>" of the
 * dead-letter topic, or "db:<id>" of the table.
 *
 * This file is the command line: the options (the common config engine,
 * not the consumer runtime: a command, not a service), the checks of the
 * command and its selection (parse_request), the connection, and one
 * function per command:
 *	 list, show	 read everything (dlq_read.c), print (dlq_print.c);
 *	 replay		 read everything, replay what matches (dlq_replay.c);
 *	 purge		 cmd_purge: dead letters older than --older-than are forgotten:
 *				 table rows and replay records deleted, the topic's first
 *				 offset to list remembered per partition (todo_kafka.dlq_purge,
 *				 given the offsets dlq_read_topic() computed); Kafka's
 *				 retention deletes the messages.
 * Times (--since, --until, --older-than) are parsed by PostgreSQL
 * (dlq_resolve_time, dlq_conf.c): RFC 3339 or an age before now.
 *
 * All SQL is extension functions granted to todo_kafka_operator (STYLE
 * 38f).  Exit status: 0 done, 1 something failed or was refused, 2 usage.
 *
 * IDENTIFICATION
 *	  tools/dlq/dlq.c
 *
 *-------------------------------------------------------------------------
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>

#include "daemon_config.h"
#include "dlq_int.h"
#include "log.h"
#include "pg.h"

#define OFF(f) offsetof(dlq_config, f)

static const tk_option dlq_options[] = {
	{"id", TK_OPT_STRING, OFF(ids), "", 0, 0, "dead letters to replay (comma separated)"},
	{"origin_topic", TK_OPT_STRING, OFF(origin_topic), "", 0, 0, "select by original topic"},
	{"since", TK_OPT_STRING, OFF(since), "", 0, 0, "select dead letters failed at or after"},
	{"until", TK_OPT_STRING, OFF(until), "", 0, 0, "select dead letters failed before"},
	{"older_than", TK_OPT_STRING, OFF(older_than), "", 0, 0, "purge age"},
	{"force", TK_OPT_BOOL, OFF(force), "false", 0, 0, "replay again what was replayed"},
	{"all", TK_OPT_BOOL, OFF(all), "false", 0, 0, "select every dead letter"},
	{NULL}
};

static const tk_cli_option dlq_cli[] = {
	{"id", "id", true, ""},
	{"origin-topic", "origin_topic", true, ""},
	{"since", "since", true, ""},
	{"until", "until", true, ""},
	{"older-than", "older_than", true, ""},
	{"force", "force", false, ""},
	{"all", "all", false, ""},
	{NULL}
};

static void
usage(FILE *out)
{
	fprintf(out,
			PROGRAM " %s\n"
			"Lists, shows, replays and purges dead letters: messages a service could not\n"
			"handle (topic todo.dead.letter) and outbox rows the relay could not publish\n"
			"(table todo_kafka.dead_letters).\n\n"
			"Usage:\n"
			"  " PROGRAM " [OPTION]... list [--origin-topic=T] [--since=T] [--until=T]\n"
			"  " PROGRAM " [OPTION]... show ID\n"
			"  " PROGRAM " [OPTION]... replay (--id=ID[,ID...] | --origin-topic=T | --since=T | --until=T | --all) [--force]\n"
			"  " PROGRAM " [OPTION]... purge --older-than=AGE\n\n"
			"IDs: \"P:O\" is the message at partition P, offset O of the dead-letter topic;\n"
			"\"db:N\" is row N of todo_kafka.dead_letters (a relay poison row).\n"
			"Times: RFC 3339 (2026-01-22T10:00:00Z) or an age before now (30m, 2h, 7 days).\n\n"
			"Replay sends the original key and value to the original topic and partition\n"
			"(a relay poison row goes back into the outbox) and records it: a second\n"
			"replay of the same dead letter is refused unless --force.  Fix the cause\n"
			"first (a bug in the service, a missing grant); the service handles the\n"
			"replayed message like any other.\n\n"
			"Options:\n"
			"  -d, --dbname=CONNINFO      libpq connection string (env TODO_KAFKA_DB)\n"
			"  -b, --brokers=LIST         Kafka bootstrap servers (env TODO_KAFKA_BROKERS)\n"
			"  -X PROPERTY=VALUE          set any librdkafka property (repeatable)\n"
			"  -c, --config=FILE          read \"key = value\" settings (as the daemons)\n"
			"      --log-level=LEVEL      debug, info, warning (default), error\n"
			"      --force                replay again what was replayed already\n"
			"  -h, --help                 show this help and exit\n\n"
			"Examples:\n"
			"  " PROGRAM " -d dbname=app -b kafka:9092 list\n"
			"  " PROGRAM " -d dbname=app -b kafka:9092 list --origin-topic=todo.audit.log --since=1h\n"
			"  " PROGRAM " -d dbname=app -b kafka:9092 show 0:17\n"
			"  " PROGRAM " -d dbname=app -b kafka:9092 replay --id=0:17,db:3\n"
			"  " PROGRAM " -d dbname=app -b kafka:9092 replay --origin-topic=todo.audit.log --since=2026-01-22T00:00:00Z\n"
			"  " PROGRAM " -d dbname=app -b kafka:9092 purge --older-than='30 days'\n\n"
			"The database role needs todo_kafka_operator (GRANT todo_kafka_operator TO ...).\n"
			"Exit status: 0 done, 1 a failure or a refused replay, 2 usage error.\n",
			TK_VERSION);
}

static int
usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, PROGRAM ": ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry \"" PROGRAM " --help\" for more information.\n");
	return TK_EXIT_USAGE;
}

/* what the command line asked for */
typedef struct dlq_request
{
	const char *command;		/* list, show, replay, purge */
	const char *show_id;		/* show's argument */
	tk_daemon_config cfg;
	dlq_config	o;
} dlq_request;

/*
 * Split the command and its argument from the options, which go to the
 * shared parser, then check what each command needs.  Returns -1 to go
 * on, or an exit code (--help, --version, a usage error).
 */
static int
parse_request(int argc, char **argv, dlq_request *req)
{
	tk_daemon_spec spec;
	tk_cli		cli;
	void	   *own[1] = {&req->o};
	char		err[1024];
	char	  **args = calloc(argc + 1, sizeof(char *));
	int			nargs = 0;
	int			rc;

	if (args == NULL)
		return TK_EXIT_FAILURE;
	args[nargs++] = argv[0];
	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
		{
			usage(stdout);
			return TK_EXIT_OK;
		}
		if (argv[i][0] == '-')
		{
			args[nargs++] = argv[i];
			/* an option's separate argument */
			if ((strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "-b") == 0 ||
				 strcmp(argv[i], "-X") == 0 || strcmp(argv[i], "-c") == 0 ||
				 (strncmp(argv[i], "--", 2) == 0 && strchr(argv[i], '=') == NULL &&
				  strcmp(argv[i], "--force") != 0 && strcmp(argv[i], "--all") != 0 &&
				  strcmp(argv[i], "--version") != 0 && strcmp(argv[i], "--show-config") != 0)) &&
				i + 1 < argc)
				args[nargs++] = argv[++i];
		}
		else if (req->command == NULL)
			req->command = argv[i];
		else if (strcmp(req->command, "show") == 0 && req->show_id == NULL)
			req->show_id = argv[i];
		else
			return usage_error("unexpected argument \"%s\"", argv[i]);
	}
	if (req->command == NULL)
		return usage_error("%s", "no command given: list, show, replay or purge");
	if (strcmp(req->command, "list") != 0 && strcmp(req->command, "show") != 0 &&
		strcmp(req->command, "replay") != 0 && strcmp(req->command, "purge") != 0)
		return usage_error("unknown command \"%s\": expected list, show, replay or purge",
						   req->command);
	if (strcmp(req->command, "show") == 0 && req->show_id == NULL)
		return usage_error("%s", "show needs the ID of a dead letter (see list)");

	memset(&spec, 0, sizeof(spec));
	spec.program = PROGRAM;
	spec.summary = "the operator's dead-letter tool";
	spec.version = TK_VERSION;
	spec.tables[0] = dlq_options;
	spec.cli_options = dlq_cli;
	rc = tk_cli_parse(&spec, nargs, args, &cli);
	if (rc >= 0)
		return rc;
	if (!tk_daemon_config_load(&spec, &cli, &req->cfg, own, err, sizeof(err)))
		return usage_error("%s", err);
	if (tk_kvlist_get(&cli.settings, "log_level") == NULL)
		req->cfg.log_level = TK_LOG_WARNING;	/* a tool: quiet unless asked */
	tk_log_set_level(req->cfg.log_level);
	if (strcmp(req->command, "replay") == 0 && !req->o.ids[0] && !req->o.origin_topic[0] &&
		!req->o.since[0] && !req->o.until[0] && !req->o.all)
		return usage_error("%s", "replay needs a selection: --id, --origin-topic, --since, --until or --all");
	if (strcmp(req->command, "purge") == 0 && !req->o.older_than[0])
		return usage_error("%s", "purge needs --older-than=AGE, e.g. --older-than='30 days'");
	return -1;
}

/*
 * purge: dead letters older than --older-than are forgotten (table rows
 * and replay records deleted, the topic's first offset to list kept per
 * partition); Kafka's retention deletes the messages.
 */
static int
cmd_purge(dlq_request *req, PGconn *conn, const char *topic)
{
	int64_t		cutoff;
	char		keep[4096];
	const char *params[3] = {req->o.older_than, topic, keep};
	dl_list		l = {0};
	PGresult   *res;
	int			gone = 0;

	if (!dlq_resolve_time(conn, "older-than", req->o.older_than, &cutoff))
		return TK_EXIT_USAGE;
	if (!dlq_read_topic(&req->cfg, conn, topic, &l, &cutoff, keep, sizeof(keep)))
		return TK_EXIT_FAILURE;
	res = PQexecParams(conn, "SELECT todo_kafka.dlq_purge($1::interval, $2, $3::jsonb)",
					   3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, PROGRAM ": purge failed: %s", PQerrorMessage(conn));
		PQclear(res);
		return TK_EXIT_FAILURE;
	}
	for (int i = 0; i < l.n; i++)
		gone += l.items[i].failed_us < cutoff;
	printf("purged %d dead letter%s of topic %s and %s row%s of todo_kafka.dead_letters "
		   "older than %s\n(the topic's retention deletes the messages themselves)\n",
		   gone, gone == 1 ? "" : "s", topic, PQgetvalue(res, 0, 0),
		   strcmp(PQgetvalue(res, 0, 0), "1") == 0 ? "" : "s", req->o.older_than);
	PQclear(res);
	return TK_EXIT_OK;
}

/* show: one dead letter, whole */
static int
cmd_show(dlq_request *req, const dl_list *l)
{
	int			rc = TK_EXIT_FAILURE;

	for (int i = 0; i < l->n; i++)
		if (strcmp(l->items[i].name, req->show_id) == 0)
		{
			dlq_print_one(&l->items[i]);
			rc = TK_EXIT_OK;
		}
	if (rc != TK_EXIT_OK)
		fprintf(stderr, PROGRAM ": no dead letter \"%s\" (see list)\n", req->show_id);
	return rc;
}

/* each --id that names no dead letter, said on stderr; how many */
static int
unknown_ids(const char *list, const dl_list *l)
{
	char	   *ids = strdup(list);
	int			unknown = 0;

	if (ids == NULL)
		return 1;
	for (char *tok = strtok(ids, ", "); tok; tok = strtok(NULL, ", "))
	{
		bool		found = false;

		for (int i = 0; i < l->n && !found; i++)
			found = strcmp(l->items[i].name, tok) == 0;
		if (!found)
		{
			fprintf(stderr, "%s: no such dead letter (see list)\n", tok);
			unknown++;
		}
	}
	free(ids);
	return unknown;
}

/* replay: each selected dead letter once to where it came from */
static int
cmd_replay(dlq_request *req, PGconn *conn, const dl_list *l, int64_t since, int64_t until)
{
	rd_kafka_t *producer = NULL;
	int			done = 0,
				failed = 0;

	for (int i = 0; i < l->n; i++)
		if (dlq_matches(&req->o, &l->items[i], since, until))
		{
			if (dlq_replay_one(conn, &producer, &req->cfg, &l->items[i], req->o.force))
				done++;
			else
				failed++;
		}
	if (req->o.ids[0])
		failed += unknown_ids(req->o.ids, l);
	printf("replayed %d, refused or failed %d\n", done, failed);
	if (producer)
	{
		rd_kafka_flush(producer, 10000);
		rd_kafka_destroy(producer);
	}
	return failed > 0 ? TK_EXIT_FAILURE : TK_EXIT_OK;
}

/* list, show, replay: read every dead letter, then act on the selection */
static int
cmd_read_all(dlq_request *req, PGconn *conn, const char *topic, int64_t since, int64_t until)
{
	dl_list		l = {0};

	if (!dlq_read_topic(&req->cfg, conn, topic, &l, NULL, NULL, 0) || !dlq_read_table(conn, &l))
		return TK_EXIT_FAILURE;
	dlq_read_replays(conn, &l);
	if (strcmp(req->command, "list") == 0)
	{
		dlq_print_list(&l, &req->o, since, until);
		return TK_EXIT_OK;
	}
	if (strcmp(req->command, "show") == 0)
		return cmd_show(req, &l);
	return cmd_replay(req, conn, &l, since, until);
}

int
main(int argc, char **argv)
{
	dlq_request req;
	PGconn	   *conn;
	char		topic[256];
	int64_t		since = 0,
				until = 0;
	int			rc;

	memset(&req, 0, sizeof(req));
	rc = parse_request(argc, argv, &req);
	if (rc >= 0)
		return rc;
	conn = tk_pg_connect(req.cfg.conninfo, PROGRAM);
	if (conn == NULL)
	{
		fprintf(stderr, PROGRAM ": cannot connect to the database\n");
		return TK_EXIT_FAILURE;
	}
	if (!tk_pg_exec_value(conn, "SELECT todo_kafka.topic_of('dead_letter')", topic, sizeof(topic)))
	{
		fprintf(stderr, PROGRAM ": cannot learn the dead-letter topic: %s"
				"hint: the role needs todo_kafka_operator and the extension 0.4.0\n",
				PQerrorMessage(conn));
		PQfinish(conn);
		return TK_EXIT_FAILURE;
	}
	if ((req.o.since[0] && !dlq_resolve_time(conn, "since", req.o.since, &since)) ||
		(req.o.until[0] && !dlq_resolve_time(conn, "until", req.o.until, &until)))
		rc = TK_EXIT_USAGE;
	else if (strcmp(req.command, "purge") == 0)
		rc = cmd_purge(&req, conn, topic);
	else
		rc = cmd_read_all(&req, conn, topic, since, until);
	PQfinish(conn);
	return rc;
}
