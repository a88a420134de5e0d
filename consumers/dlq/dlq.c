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
 * command and its selection, the connection, and the dispatch:
 *	 list, show	 read everything (dlq_read.c), print (dlq_print.c);
 *	 replay		 read everything, replay what matches (dlq_replay.c);
 *	 purge		 here: dead letters older than --older-than are forgotten:
 *				 table rows and replay records deleted, the topic's first
 *				 offset to list remembered per partition (todo_kafka.dlq_purge,
 *				 given the offsets dlq_read_topic() computed); Kafka's
 *				 retention deletes the messages.
 * Times (--since, --until, --older-than) are parsed by PostgreSQL
 * (dlq_resolve_time): RFC 3339 or an age before now.
 *
 * All SQL is extension functions granted to todo_kafka_operator (STYLE
 * 38f).  Exit status: 0 done, 1 something failed or was refused, 2 usage.
 *
 * IDENTIFICATION
 *	  consumers/dlq/dlq.c
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
#include "kafka_conf.h"
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

/*
 * A librdkafka configuration from -b, -X and the config file; the topic
 * reader (dlq_read.c) and the replay producer (dlq_replay.c) add theirs.
 */
rd_kafka_conf_t *
dlq_kafka_conf(const tk_daemon_config *d, char *err, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	for (int i = 0; i < d->kafka.n; i++)
		if (!tk_kafka_conf_set(conf, d->kafka.items[i].key, d->kafka.items[i].value, err, errlen))
		{
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	rd_kafka_conf_set_log_cb(conf, tk_kafka_log_cb);
	return conf;
}

/* a time option as wall-clock microseconds (PostgreSQL parses it) */
bool
dlq_resolve_time(PGconn *conn, const char *opt, const char *value, int64_t *us)
{
	const char *params[1] = {value};
	PGresult   *res = PQexecParams(conn,
								   "SELECT (extract(epoch FROM CASE WHEN $1 ~ '^[0-9]{4}-' "
								   "THEN $1::timestamptz ELSE now() - $1::interval END) * 1e6)::bigint",
								   1, NULL, params, NULL, NULL, 0);
	bool		ok = PQresultStatus(res) == PGRES_TUPLES_OK;

	if (ok)
		*us = atoll(PQgetvalue(res, 0, 0));
	else
		fprintf(stderr, PROGRAM ": invalid --%s \"%s\": expected an RFC 3339 time or an age such as 2h\n",
				opt, value);
	PQclear(res);
	return ok;
}

int
main(int argc, char **argv)
{
	tk_daemon_spec spec;
	tk_cli		cli;
	tk_daemon_config cfg;
	dlq_config	o;
	void	   *own[1] = {&o};
	char		err[1024];
	char	  **args = calloc(argc + 1, sizeof(char *));
	int			nargs = 0;
	const char *command = NULL;
	const char *show_id = NULL;
	PGconn	   *conn;
	char		topic[256];
	dl_list		l = {0};
	int64_t		since = 0,
				until = 0;
	int			rc = TK_EXIT_OK;

	if (args == NULL)
		return TK_EXIT_FAILURE;
	/* the command and its argument; the options go to the shared parser */
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
		else if (command == NULL)
			command = argv[i];
		else if (strcmp(command, "show") == 0 && show_id == NULL)
			show_id = argv[i];
		else
			return usage_error("unexpected argument \"%s\"", argv[i]);
	}
	if (command == NULL)
		return usage_error("%s", "no command given: list, show, replay or purge");
	if (strcmp(command, "list") != 0 && strcmp(command, "show") != 0 &&
		strcmp(command, "replay") != 0 && strcmp(command, "purge") != 0)
		return usage_error("unknown command \"%s\": expected list, show, replay or purge", command);
	if (strcmp(command, "show") == 0 && show_id == NULL)
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
	rc = TK_EXIT_OK;
	memset(&o, 0, sizeof(o));
	if (!tk_daemon_config_load(&spec, &cli, &cfg, own, err, sizeof(err)))
		return usage_error("%s", err);
	if (tk_kvlist_get(&cli.settings, "log_level") == NULL)
		cfg.log_level = TK_LOG_WARNING;	/* a tool: quiet unless asked */
	tk_log_set_level(cfg.log_level);
	if (strcmp(command, "replay") == 0 && !o.ids[0] && !o.origin_topic[0] && !o.since[0] &&
		!o.until[0] && !o.all)
		return usage_error("%s", "replay needs a selection: --id, --origin-topic, --since, --until or --all");
	if (strcmp(command, "purge") == 0 && !o.older_than[0])
		return usage_error("%s", "purge needs --older-than=AGE, e.g. --older-than='30 days'");

	conn = tk_pg_connect(cfg.conninfo, PROGRAM);
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
	if ((o.since[0] && !dlq_resolve_time(conn, "since", o.since, &since)) ||
		(o.until[0] && !dlq_resolve_time(conn, "until", o.until, &until)))
	{
		PQfinish(conn);
		return TK_EXIT_USAGE;
	}

	if (strcmp(command, "purge") == 0)
	{
		int64_t		cutoff;
		char		keep[4096];
		const char *params[3] = {o.older_than, topic, keep};
		PGresult   *res;

		if (!dlq_resolve_time(conn, "older-than", o.older_than, &cutoff))
		{
			PQfinish(conn);
			return TK_EXIT_USAGE;
		}
		if (!dlq_read_topic(&cfg, conn, topic, &l, &cutoff, keep, sizeof(keep)))
		{
			PQfinish(conn);
			return TK_EXIT_FAILURE;
		}
		res = PQexecParams(conn, "SELECT todo_kafka.dlq_purge($1::interval, $2, $3::jsonb)",
						   3, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			fprintf(stderr, PROGRAM ": purge failed: %s", PQerrorMessage(conn));
			rc = TK_EXIT_FAILURE;
		}
		else
		{
			int			gone = 0;

			for (int i = 0; i < l.n; i++)
				gone += l.items[i].failed_us < cutoff;
			printf("purged %d dead letter%s of topic %s and %s row%s of todo_kafka.dead_letters "
				   "older than %s\n(the topic's retention deletes the messages themselves)\n",
				   gone, gone == 1 ? "" : "s", topic, PQgetvalue(res, 0, 0),
				   strcmp(PQgetvalue(res, 0, 0), "1") == 0 ? "" : "s", o.older_than);
		}
		PQclear(res);
		PQfinish(conn);
		return rc;
	}

	if (!dlq_read_topic(&cfg, conn, topic, &l, NULL, NULL, 0) || !dlq_read_table(conn, &l))
	{
		PQfinish(conn);
		return TK_EXIT_FAILURE;
	}
	dlq_read_replays(conn, &l);

	if (strcmp(command, "list") == 0)
		dlq_print_list(&l, &o, since, until);
	else if (strcmp(command, "show") == 0)
	{
		rc = TK_EXIT_FAILURE;
		for (int i = 0; i < l.n; i++)
			if (strcmp(l.items[i].name, show_id) == 0)
			{
				dlq_print_one(&l.items[i]);
				rc = TK_EXIT_OK;
			}
		if (rc != TK_EXIT_OK)
			fprintf(stderr, PROGRAM ": no dead letter \"%s\" (see list)\n", show_id);
	}
	else
	{
		rd_kafka_t *producer = NULL;
		int			done = 0,
					failed = 0;

		for (int i = 0; i < l.n; i++)
			if (dlq_matches(&o, &l.items[i], since, until))
			{
				if (dlq_replay_one(conn, &producer, &cfg, &l.items[i], o.force))
					done++;
				else
					failed++;
			}
		if (o.ids[0])
		{
			/* name every id that matched nothing */
			char	   *ids = strdup(o.ids);

			for (char *tok = strtok(ids, ", "); tok; tok = strtok(NULL, ", "))
			{
				bool		found = false;

				for (int i = 0; i < l.n && !found; i++)
					found = strcmp(l.items[i].name, tok) == 0;
				if (!found)
				{
					fprintf(stderr, "%s: no such dead letter (see list)\n", tok);
					failed++;
				}
			}
			free(ids);
		}
		printf("replayed %d, refused or failed %d\n", done, failed);
		if (producer)
		{
			rd_kafka_flush(producer, 10000);
			rd_kafka_destroy(producer);
		}
		if (failed > 0)
			rc = TK_EXIT_FAILURE;
	}
	PQfinish(conn);
	return rc;
}
