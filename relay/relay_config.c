/*-------------------------------------------------------------------------
 *
 * relay_config.c
 *	  command line, environment and config file of todo-kafka-relay
 *
 * Sources, later ones winning:
 *	 1. the defaults table below (also printed by --help),
 *	 2. the config file (-c FILE): "key = value" lines with the names of the
 *		table, plus "kafka.<property> = value" for any librdkafka property,
 *	 3. the environment: TODO_KAFKA_DB, TODO_KAFKA_BROKERS,
 *	 4. the command line: -d, -b, --metrics-listen, --profile, --log-level,
 *		--reminder-grace, -X property=value.
 * relay_config_load() builds a complete new relay_config from scratch on
 * every call, so a reload (SIGHUP) with a bad file returns false and the
 * caller keeps its old configuration (pgbouncer: "tolerant to errors").
 *
 * Producer defaults follow the infrastructure spec: idempotent, acks=all,
 * snappy compression, linger 5 ms, batch 16384 bytes.  message.timeout.ms
 * is 0 (never give up): a row's messages wait in librdkafka until Kafka
 * takes them, so a long outage never reorders a task's events by resending.
 *
 * Secrets: values of secret-looking properties (tk_config_is_secret) and
 * the password of the conninfo are never printed.
 *
 * IDENTIFICATION
 *	  relay/relay_config.c
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "http_metrics.h"
#include "relay.h"

typedef enum opt_type
{
	OPT_STRING,
	OPT_INT,
	OPT_BOOL,
	OPT_LOGLEVEL,
	OPT_PROFILE
} opt_type;

typedef struct relay_option
{
	const char *name;
	opt_type	type;
	size_t		offset;
	const char *def;
	long		min;
	long		max;
	const char *help;
} relay_option;

#define OFF(f) offsetof(relay_config, f)

/* the one defaults table */
static const relay_option relay_options[] = {
	{"database", OPT_STRING, OFF(conninfo), "", 0, 0,
	"libpq connection string (-d, TODO_KAFKA_DB)"},
	{"brokers", OPT_STRING, OFF(brokers), "", 0, 0,
	"Kafka bootstrap servers (-b, TODO_KAFKA_BROKERS)"},
	{"metrics_listen", OPT_STRING, OFF(metrics_listen), "", 0, 0,
	"HOST:PORT for /metrics and /healthz; empty: off"},
	{"profile", OPT_PROFILE, OFF(profile), "development", 0, 0,
	"development or production (production requires SASL_SSL)"},
	{"log_level", OPT_LOGLEVEL, OFF(log_level), "info", 0, 0,
	"debug, info, warning or error"},
	{"poll_interval_ms", OPT_INT, OFF(poll_interval_ms), "1000", 10, 3600000,
	"safety-net poll of the outbox while waiting for NOTIFY"},
	{"read_batch", OPT_INT, OFF(read_batch), "2000", 1, 100000,
	"outbox rows read per query"},
	{"delete_batch", OPT_INT, OFF(delete_batch), "5000", 1, 100000,
	"acknowledged rows deleted per statement"},
	{"delete_delay_ms", OPT_INT, OFF(delete_delay_ms), "20", 0, 60000,
	"longest wait before deleting acknowledged rows"},
	{"standby_retry_ms", OPT_INT, OFF(standby_retry_ms), "1000", 10, 60000,
	"how often a standby tries to take leadership"},
	{"reconnect_max_ms", OPT_INT, OFF(reconnect_max_ms), "10000", 100, 600000,
	"cap of the PostgreSQL reconnect backoff"},
	{"flush_timeout_ms", OPT_INT, OFF(flush_timeout_ms), "10000", 0, 600000,
	"how long SIGTERM waits for Kafka acknowledgements"},
	{"stats_interval_ms", OPT_INT, OFF(stats_interval_ms), "5000", 100, 3600000,
	"how often the outbox backlog is measured for /metrics"},
	{"create_topics", OPT_BOOL, OFF(create_topics), "true", 0, 0,
	"create missing topics from todo_kafka.topics at start-up"},
	{"reminders", OPT_BOOL, OFF(reminders), "on", 0, 0,
	"fire due reminders (leader only)"},
	{"reminder_grace", OPT_INT, OFF(reminder_grace), "300", 0, 31536000,
	"seconds late after which a reminder fires as missed (--reminder-grace)"},
	{NULL}
};

/* librdkafka defaults (overridable by kafka.* and -X) */
static const char *const kafka_defaults[][2] = {
	{"enable.idempotence", "true"},
	{"acks", "all"},
	{"compression.codec", "snappy"},
	{"linger.ms", "5"},
	{"batch.size", "16384"},
	{"message.timeout.ms", "0"},
	{"retry.backoff.ms", "100"},
	{"queue.buffering.max.messages", "100000"},
	{NULL, NULL}
};

static void *
opt_ptr(relay_config *cfg, const relay_option *o)
{
	return (char *) cfg + o->offset;
}

static const char *
opt_set(relay_config *cfg, const relay_option *o, const char *value,
		char *errbuf, size_t errlen)
{
	void	   *p = opt_ptr(cfg, o);
	long		v;
	bool		b;
	tk_log_level l;

	switch (o->type)
	{
		case OPT_STRING:
			free(*(char **) p);
			*(char **) p = strdup(value);
			return *(char **) p ? NULL : "out of memory";
		case OPT_INT:
			if (!tk_config_parse_int(value, o->min, o->max, &v))
			{
				snprintf(errbuf, errlen,
						 "invalid value for \"%s\": \"%s\" (expected an integer from %ld to %ld)",
						 o->name, value, o->min, o->max);
				return errbuf;
			}
			*(int *) p = (int) v;
			return NULL;
		case OPT_BOOL:
			if (!tk_config_parse_bool(value, &b))
			{
				snprintf(errbuf, errlen, "invalid value for \"%s\": \"%s\" (expected true or false)",
						 o->name, value);
				return errbuf;
			}
			*(bool *) p = b;
			return NULL;
		case OPT_LOGLEVEL:
			if (!tk_log_parse_level(value, &l))
			{
				snprintf(errbuf, errlen,
						 "invalid value for \"%s\": \"%s\" (expected debug, info, warning or error)",
						 o->name, value);
				return errbuf;
			}
			*(tk_log_level *) p = l;
			return NULL;
		case OPT_PROFILE:
			if (strcmp(value, "development") != 0 && strcmp(value, "production") != 0)
			{
				snprintf(errbuf, errlen,
						 "invalid value for \"%s\": \"%s\" (expected development or production)",
						 o->name, value);
				return errbuf;
			}
			free(*(char **) p);
			*(char **) p = strdup(value);
			return *(char **) p ? NULL : "out of memory";
	}
	return "internal error: unknown option type";
}

static const relay_option *
opt_find(const char *name)
{
	for (const relay_option *o = relay_options; o->name; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

/* config file setter: table names and kafka.<property> */
static const char *
config_file_setter(void *arg, const char *key, const char *value,
				   char *errbuf, size_t errlen)
{
	relay_config *cfg = arg;
	const relay_option *o;

	if (strncmp(key, "kafka.", 6) == 0)
	{
		if (key[6] == '\0')
			return "missing librdkafka property name after \"kafka.\"";
		return tk_kvlist_set(&cfg->kafka, key + 6, value) ? NULL : "out of memory";
	}
	o = opt_find(key);
	if (o == NULL)
	{
		snprintf(errbuf, errlen, "unknown setting \"%s\"", key);
		return errbuf;
	}
	return opt_set(cfg, o, value, errbuf, errlen);
}

void
relay_config_free(relay_config *cfg)
{
	for (const relay_option *o = relay_options; o->name; o++)
	{
		if (o->type == OPT_STRING || o->type == OPT_PROFILE)
		{
			free(*(char **) opt_ptr(cfg, o));
			*(char **) opt_ptr(cfg, o) = NULL;
		}
	}
	free(cfg->config_file);
	cfg->config_file = NULL;
	tk_kvlist_free(&cfg->kafka);
}

static bool
apply_override(relay_config *cfg, const char *name, const char *value,
			   const char *origin, char *errbuf, size_t errlen)
{
	char		err[512];
	const char *msg;

	if (value == NULL)
		return true;
	msg = opt_set(cfg, opt_find(name), value, err, sizeof(err));
	if (msg != NULL)
	{
		snprintf(errbuf, errlen, "%s: %s", origin, msg);
		return false;
	}
	return true;
}

bool
relay_config_load(relay_config *out, const relay_cli *cli, char *errbuf, size_t errlen)
{
	relay_config cfg;
	char		err[512];
	char		host[256];
	int			port;

	memset(&cfg, 0, sizeof(cfg));
	for (const relay_option *o = relay_options; o->name; o++)
	{
		if (opt_set(&cfg, o, o->def, err, sizeof(err)) != NULL)
		{
			snprintf(errbuf, errlen, "bad default for %s", o->name);
			goto fail;
		}
	}
	for (int i = 0; kafka_defaults[i][0]; i++)
		tk_kvlist_set(&cfg.kafka, kafka_defaults[i][0], kafka_defaults[i][1]);

	if (cli->config_file)
	{
		cfg.config_file = strdup(cli->config_file);
		if (!tk_config_parse_file(cli->config_file, config_file_setter, &cfg,
								  errbuf, errlen))
			goto fail;
	}

	if (!apply_override(&cfg, "database", getenv("TODO_KAFKA_DB"), "TODO_KAFKA_DB", errbuf, errlen) ||
		!apply_override(&cfg, "brokers", getenv("TODO_KAFKA_BROKERS"), "TODO_KAFKA_BROKERS", errbuf, errlen) ||
		!apply_override(&cfg, "database", cli->conninfo, "-d", errbuf, errlen) ||
		!apply_override(&cfg, "brokers", cli->brokers, "-b", errbuf, errlen) ||
		!apply_override(&cfg, "metrics_listen", cli->metrics_listen, "--metrics-listen", errbuf, errlen) ||
		!apply_override(&cfg, "profile", cli->profile, "--profile", errbuf, errlen) ||
		!apply_override(&cfg, "log_level", cli->log_level, "--log-level", errbuf, errlen) ||
		!apply_override(&cfg, "reminder_grace", cli->reminder_grace, "--reminder-grace", errbuf, errlen))
		goto fail;
	for (int i = 0; i < cli->kafka.n; i++)
		tk_kvlist_set(&cfg.kafka, cli->kafka.items[i].key, cli->kafka.items[i].value);

	/* -b / brokers is the bootstrap list unless a property says otherwise */
	if (cfg.brokers[0] && tk_kvlist_get(&cfg.kafka, "bootstrap.servers") == NULL)
		tk_kvlist_set(&cfg.kafka, "bootstrap.servers", cfg.brokers);

	if (cfg.conninfo[0] == '\0')
	{
		snprintf(errbuf, errlen,
				 "no database given: use -d CONNINFO, TODO_KAFKA_DB or \"database\" in the config file");
		goto fail;
	}
	if (tk_kvlist_get(&cfg.kafka, "bootstrap.servers") == NULL &&
		tk_kvlist_get(&cfg.kafka, "metadata.broker.list") == NULL)
	{
		snprintf(errbuf, errlen,
				 "no Kafka brokers given: use -b BROKERS, TODO_KAFKA_BROKERS or \"brokers\" in the config file");
		goto fail;
	}
	if (cfg.metrics_listen[0] &&
		!tk_http_parse_listen(cfg.metrics_listen, host, sizeof(host), &port))
	{
		snprintf(errbuf, errlen, "invalid metrics listen address \"%s\": expected HOST:PORT",
				 cfg.metrics_listen);
		goto fail;
	}
	if (strcmp(cfg.profile, "production") == 0 &&
		!tk_kafka_check_production(&cfg.kafka, errbuf, errlen))
		goto fail;

	/* check every Kafka property now, so a typo is a usage error */
	{
		rd_kafka_conf_t *conf = rd_kafka_conf_new();
		bool		ok = true;

		for (int i = 0; ok && i < cfg.kafka.n; i++)
		{
			const char *k = cfg.kafka.items[i].key;

			if (strcmp(k, "compression.codec") == 0 || strcmp(k, "compression.type") == 0)
				continue;		/* checked with a fallback in producer.c */
			ok = tk_kafka_conf_set(conf, k, cfg.kafka.items[i].value, errbuf, errlen);
		}
		rd_kafka_conf_destroy(conf);
		if (!ok)
			goto fail;
	}

	*out = cfg;
	return true;

fail:
	relay_config_free(&cfg);
	return false;
}

/* conninfo without its password, for logs */
char *
relay_conninfo_display(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	char	   *buf;
	size_t		len = 0;

	if (opts == NULL)
		return strdup("(unparsable conninfo)");
	buf = calloc(1, strlen(conninfo) + 64);
	if (buf == NULL)
	{
		PQconninfoFree(opts);
		return NULL;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		if (o->val == NULL || o->val[0] == '\0' || strcmp(o->keyword, "password") == 0)
			continue;
		len += sprintf(buf + len, "%s%s=%s", len ? " " : "", o->keyword,
					   strlen(o->val) > 64 ? "..." : o->val);
		if (len > strlen(conninfo) + 32)
			break;
	}
	PQconninfoFree(opts);
	return buf;
}

void
relay_config_print(const relay_config *cfg, FILE *out)
{
	for (const relay_option *o = relay_options; o->name; o++)
	{
		void	   *p = opt_ptr((relay_config *) cfg, o);

		switch (o->type)
		{
			case OPT_STRING:
			case OPT_PROFILE:
				if (strcmp(o->name, "database") == 0)
				{
					char	   *d = relay_conninfo_display(*(char **) p);

					fprintf(out, "%s = %s\n", o->name, d ? d : "");
					free(d);
				}
				else
					fprintf(out, "%s = %s\n", o->name, *(char **) p);
				break;
			case OPT_INT:
				fprintf(out, "%s = %d\n", o->name, *(int *) p);
				break;
			case OPT_BOOL:
				fprintf(out, "%s = %s\n", o->name, *(bool *) p ? "true" : "false");
				break;
			case OPT_LOGLEVEL:
				fprintf(out, "%s = %s\n", o->name,
						tk_log_level_name(*(tk_log_level *) p));
				break;
		}
	}
	for (int i = 0; i < cfg->kafka.n; i++)
		fprintf(out, "kafka.%s = %s\n", cfg->kafka.items[i].key,
				tk_config_display_value(cfg->kafka.items[i].key,
										cfg->kafka.items[i].value));
}

static void
usage(FILE *out)
{
	fprintf(out,
			"todo-kafka-relay streams the todo_kafka outbox to Kafka.\n\n"
			"Usage:\n"
			"  todo-kafka-relay -d CONNINFO -b BROKERS [OPTION]...\n\n"
			"Options:\n"
			"  -d, --dbname=CONNINFO      libpq connection string (env TODO_KAFKA_DB)\n"
			"  -b, --brokers=LIST         Kafka bootstrap servers (env TODO_KAFKA_BROKERS)\n"
			"  -X PROPERTY=VALUE          set any librdkafka property (repeatable)\n"
			"  -c, --config=FILE          read \"key = value\" settings from FILE\n"
			"      --metrics-listen=HOST:PORT  serve /metrics and /healthz\n"
			"      --profile=NAME         development (default) or production\n"
			"      --log-level=LEVEL      debug, info (default), warning, error\n"
			"      --reminder-grace=SECS  late reminders fire as missed after SECS (default 300)\n"
			"      --show-config          print the effective configuration and exit\n"
			"  -h, --help                 show this help and exit\n"
			"  -V, --version              show the version and exit\n\n"
			"Config file settings and their defaults:\n");
	for (const relay_option *o = relay_options; o->name; o++)
		fprintf(out, "  %-20s %-12s %s\n", o->name,
				o->def[0] ? o->def : "(none)", o->help);
	fprintf(out, "  kafka.PROPERTY       librdkafka property; defaults:\n");
	for (int i = 0; kafka_defaults[i][0]; i++)
		fprintf(out, "      %s = %s\n", kafka_defaults[i][0], kafka_defaults[i][1]);
	fprintf(out,
			"\nPrecedence: defaults < config file < environment < command line.\n"
			"SIGHUP re-reads the config file; SIGTERM drains and exits.\n"
			"Exit status: 0 clean shutdown, 1 runtime failure, 2 usage or configuration error.\n");
}

/*
 * Parse argv into cli.  Returns -1 to go on, or an exit status (0 after
 * --help/--version, 2 on a usage error, already reported on stderr).
 */
int
relay_cli_parse(int argc, char **argv, relay_cli *cli)
{
	static const struct option longopts[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"brokers", required_argument, NULL, 'b'},
		{"config", required_argument, NULL, 'c'},
		{"metrics-listen", required_argument, NULL, 1},
		{"profile", required_argument, NULL, 2},
		{"log-level", required_argument, NULL, 3},
		{"show-config", no_argument, NULL, 4},
		{"reminder-grace", required_argument, NULL, 5},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	int			c;

	memset(cli, 0, sizeof(*cli));
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":d:b:c:X:hV", longopts, NULL)) != -1)
	{
		char		key[256];
		const char *value;

		switch (c)
		{
			case 'd':
				cli->conninfo = optarg;
				break;
			case 'b':
				cli->brokers = optarg;
				break;
			case 'c':
				cli->config_file = optarg;
				break;
			case 'X':
				if (!tk_config_split_kv(optarg, key, sizeof(key), &value))
				{
					fprintf(stderr, "todo-kafka-relay: invalid -X argument: expected PROPERTY=VALUE\n");
					return RELAY_EXIT_USAGE;
				}
				tk_kvlist_set(&cli->kafka, key, value);
				break;
			case 1:
				cli->metrics_listen = optarg;
				break;
			case 2:
				cli->profile = optarg;
				break;
			case 3:
				cli->log_level = optarg;
				break;
			case 4:
				cli->show_config = true;
				break;
			case 5:
				cli->reminder_grace = optarg;
				break;
			case 'h':
				usage(stdout);
				return RELAY_EXIT_OK;
			case 'V':
				printf("todo-kafka-relay %s (librdkafka %s)\n", RELAY_VERSION,
					   rd_kafka_version_str());
				return RELAY_EXIT_OK;
			case ':':
				fprintf(stderr, "todo-kafka-relay: option \"%s\" requires an argument\n"
						"Try \"todo-kafka-relay --help\" for more information.\n",
						argv[optind - 1]);
				return RELAY_EXIT_USAGE;
			default:
				fprintf(stderr, "todo-kafka-relay: unknown option \"%s\"\n"
						"Try \"todo-kafka-relay --help\" for more information.\n",
						argv[optind - 1]);
				return RELAY_EXIT_USAGE;
		}
	}
	if (optind < argc)
	{
		fprintf(stderr, "todo-kafka-relay: unexpected argument \"%s\"\n"
				"Try \"todo-kafka-relay --help\" for more information.\n", argv[optind]);
		return RELAY_EXIT_USAGE;
	}
	return -1;
}
