/*-------------------------------------------------------------------------
 *
 * daemon_config.c
 *	  command line, environment and config file of every todo_kafka daemon
 *
 * Sources, later ones winning (the same for the relay and every consumer
 * service):
 *	 1. the defaults of the option tables (also printed by --help): the
 *		settings every daemon shares (tk_daemon_options below), then the
 *		daemon's own tables (spec->tables);
 *	 2. the config file (-c FILE): "key = value" lines with the names of the
 *		tables, plus "kafka.<property> = value" for any librdkafka property;
 *	 3. the environment: TODO_KAFKA_DB and TODO_KAFKA_BROKERS, and for any
 *		setting TODO_KAFKA_<NAME> (upper case), e.g. TODO_KAFKA_SMTP_PASSWORD,
 *		and TODO_KAFKA_KAFKA_<PROPERTY> for kafka.<property> (dots as
 *		underscores), so secrets need not be written into files or argv;
 *	 4. the command line: -d, -b, --metrics-listen, --profile, --log-level,
 *		the daemon's own long options (spec->cli_options), -X property=value.
 * tk_daemon_config_load() builds a complete new configuration on every call,
 * so a reload (SIGHUP) with a bad file returns false and the caller keeps
 * its old configuration (pgbouncer: "tolerant to errors").  Every error
 * says what was wrong and where (config file errors as path:line), and the
 * caller exits 2 (TK_EXIT_USAGE).
 *
 * Kafka properties are all checked against librdkafka at load time, so a
 * typo is a usage error, not a runtime failure.  Secrets: values of
 * secret-looking properties (tk_config_is_secret), TK_OPT_SECRET settings
 * and the password of the conninfo are never printed.
 *
 * IDENTIFICATION
 *	  common/daemon_config.c
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon_config.h"
#include "http_metrics.h"

#define OFF(f) offsetof(tk_daemon_config, f)

extern char **environ;

const tk_option tk_daemon_options[] = {
	{"database", TK_OPT_CONNINFO, OFF(conninfo), "", 0, 0,
	"libpq connection string (-d, TODO_KAFKA_DB)"},
	{"brokers", TK_OPT_STRING, OFF(brokers), "", 0, 0,
	"Kafka bootstrap servers (-b, TODO_KAFKA_BROKERS)"},
	{"metrics_listen", TK_OPT_STRING, OFF(metrics_listen), "", 0, 0,
	"HOST:PORT for /metrics and /healthz; empty: off"},
	{"otlp_endpoint", TK_OPT_SECRET, OFF(otlp_endpoint), "", 0, 0,
	"OTLP/HTTP collector URL for spans (POSTs to /v1/traces); empty: off; the dlq tool makes none"},
	{"profile", TK_OPT_PROFILE, OFF(profile), "development", 0, 0,
	"development or production (production requires SASL_SSL)"},
	{"log_level", TK_OPT_LOGLEVEL, OFF(log_level), "info", 0, 0,
	"debug, info, warning or error"},
	{NULL}
};

/* the tables of a daemon bound to their structs; returns how many */
static int
bind_tables(const tk_daemon_spec *spec, tk_daemon_config *base, void *const *own,
			tk_option_set *sets)
{
	int			n = 0;

	sets[n].opts = tk_daemon_options;
	sets[n++].base = base;
	for (int i = 0; i < TK_DAEMON_MAX_TABLES && spec->tables[i]; i++)
	{
		sets[n].opts = spec->tables[i];
		sets[n++].base = own[i];
	}
	return n;
}

typedef struct load_ctx
{
	tk_option_set sets[TK_DAEMON_MAX_TABLES + 1];
	int			nsets;
	tk_kvlist  *kafka;
} load_ctx;

static const char *
set_named(load_ctx *lc, const char *key, const char *value, char *errbuf, size_t errlen)
{
	for (int i = 0; i < lc->nsets; i++)
	{
		const tk_option *o = tk_options_find(lc->sets[i].opts, key);

		if (o)
			return tk_options_set(o, lc->sets[i].base, value, errbuf, errlen);
	}
	snprintf(errbuf, errlen, "unknown setting \"%s\"", key);
	return errbuf;
}

/* config file setter: table names and kafka.<property> */
static const char *
config_file_setter(void *arg, const char *key, const char *value,
				   char *errbuf, size_t errlen)
{
	load_ctx   *lc = arg;

	if (strncmp(key, "kafka.", 6) == 0)
	{
		if (key[6] == '\0')
			return "missing librdkafka property name after \"kafka.\"";
		return tk_kvlist_set(lc->kafka, key + 6, value) ? NULL : "out of memory";
	}
	return set_named(lc, key, value, errbuf, errlen);
}

static bool
apply_override(load_ctx *lc, const char *name, const char *value,
			   const char *origin, char *errbuf, size_t errlen)
{
	char		err[512];
	const char *msg;

	if (value == NULL)
		return true;
	msg = set_named(lc, name, value, err, sizeof(err));
	if (msg != NULL)
	{
		snprintf(errbuf, errlen, "%s: %s", origin, msg);
		return false;
	}
	return true;
}

/*
 * TODO_KAFKA_KAFKA_<PROPERTY>: the config file key kafka.<property> as an
 * environment variable (upper case, dots as underscores), e.g.
 * TODO_KAFKA_KAFKA_SASL_PASSWORD for kafka.sasl.password, so a Kafka
 * password can live in a systemd EnvironmentFile of mode 0600 rather than
 * in the config file or argv.  An unknown property names its variable.
 */
static bool
apply_kafka_environment(load_ctx *lc, char *errbuf, size_t errlen)
{
	static const char prefix[] = "TODO_KAFKA_KAFKA_";
	rd_kafka_conf_t *conf = NULL;
	bool		ok = true;

	for (char **e = environ; ok && *e; e++)
	{
		const char *name = *e + sizeof(prefix) - 1;
		const char *eq = strchr(*e, '=');
		char		prop[256];
		char		err[512];
		size_t		n;

		if (strncmp(*e, prefix, sizeof(prefix) - 1) != 0 || eq == NULL)
			continue;
		n = eq - name;
		if (n == 0 || n >= sizeof(prop))
		{
			snprintf(errbuf, errlen, "%.*s: expected %s<PROPERTY>, e.g. %sSASL_PASSWORD",
					 (int) (eq - *e), *e, prefix, prefix);
			ok = false;
			break;
		}
		for (size_t i = 0; i < n; i++)
			prop[i] = name[i] == '_' ? '.' : tolower((unsigned char) name[i]);
		prop[n] = '\0';
		if (conf == NULL)
			conf = rd_kafka_conf_new();
		if (!tk_kafka_conf_set(conf, prop, eq + 1, err, sizeof(err)))
		{
			snprintf(errbuf, errlen, "%.*s: %s", (int) (eq - *e), *e, err);
			ok = false;
		}
		else if (!tk_kvlist_set(lc->kafka, prop, eq + 1))
		{
			snprintf(errbuf, errlen, "out of memory");
			ok = false;
		}
	}
	if (conf)
		rd_kafka_conf_destroy(conf);
	return ok;
}

/* TODO_KAFKA_<NAME> for every setting; the two short forms first */
static bool
apply_environment(load_ctx *lc, char *errbuf, size_t errlen)
{
	if (!apply_override(lc, "database", getenv("TODO_KAFKA_DB"), "TODO_KAFKA_DB", errbuf, errlen) ||
		!apply_override(lc, "brokers", getenv("TODO_KAFKA_BROKERS"), "TODO_KAFKA_BROKERS", errbuf, errlen))
		return false;
	for (int i = 0; i < lc->nsets; i++)
	{
		for (const tk_option *o = lc->sets[i].opts; o->name; o++)
		{
			char		var[128];
			size_t		k = snprintf(var, sizeof(var), "TODO_KAFKA_");

			for (const char *s = o->name; *s && k + 1 < sizeof(var); s++)
				var[k++] = toupper((unsigned char) *s);
			var[k] = '\0';
			if (!apply_override(lc, o->name, getenv(var), var, errbuf, errlen))
				return false;
		}
	}
	return apply_kafka_environment(lc, errbuf, errlen);
}

void
tk_daemon_config_free(const tk_daemon_spec *spec, tk_daemon_config *base, void *const *own)
{
	tk_option_set sets[TK_DAEMON_MAX_TABLES + 1];
	int			n = bind_tables(spec, base, own, sets);

	for (int i = 0; i < n; i++)
		tk_options_free(sets[i].opts, sets[i].base);
	free(base->config_file);
	base->config_file = NULL;
	tk_kvlist_free(&base->kafka);
}

static bool
check_kafka_properties(const tk_kvlist *kafka, char *errbuf, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	bool		ok = true;

	for (int i = 0; ok && i < kafka->n; i++)
	{
		const char *k = kafka->items[i].key;

		/* a codec librdkafka lacks falls back (producer side), not an error */
		if (strcmp(k, "compression.codec") == 0 || strcmp(k, "compression.type") == 0)
			continue;
		ok = tk_kafka_conf_set(conf, k, kafka->items[i].value, errbuf, errlen);
	}
	rd_kafka_conf_destroy(conf);
	return ok;
}

/*
 * Build a complete configuration into base and own[] (zeroed structs of the
 * daemon's tables).  On failure everything is freed again and errbuf says
 * why.
 */
bool
tk_daemon_config_load(const tk_daemon_spec *spec, const tk_cli *cli,
					  tk_daemon_config *base, void *const *own,
					  char *errbuf, size_t errlen)
{
	load_ctx	lc;
	char		host[256];
	int			port;

	memset(base, 0, sizeof(*base));
	lc.nsets = bind_tables(spec, base, own, lc.sets);
	lc.kafka = &base->kafka;
	for (int i = 0; i < lc.nsets; i++)
		if (!tk_options_defaults(lc.sets[i].opts, lc.sets[i].base, errbuf, errlen))
			goto fail;
	for (int i = 0; spec->kafka_defaults && spec->kafka_defaults[i][0]; i++)
		tk_kvlist_set(&base->kafka, spec->kafka_defaults[i][0], spec->kafka_defaults[i][1]);

	if (cli->config_file)
	{
		base->config_file = strdup(cli->config_file);
		if (!tk_config_parse_file(cli->config_file, config_file_setter, &lc,
								  errbuf, errlen))
			goto fail;
	}
	if (!apply_environment(&lc, errbuf, errlen))
		goto fail;
	for (int i = 0; i < cli->settings.n; i++)
	{
		char		origin[128];
		const char *key = cli->settings.items[i].key;

		snprintf(origin, sizeof(origin), "%s", strcmp(key, "database") == 0 ? "-d" :
				 strcmp(key, "brokers") == 0 ? "-b" : "command line");
		if (strcmp(origin, "command line") == 0)
		{
			snprintf(origin, sizeof(origin), "--");
			for (size_t k = 0; key[k] && k + 3 < sizeof(origin); k++)
			{
				origin[k + 2] = key[k] == '_' ? '-' : key[k];
				origin[k + 3] = '\0';
			}
		}
		if (!apply_override(&lc, key, cli->settings.items[i].value, origin, errbuf, errlen))
			goto fail;
	}
	for (int i = 0; i < cli->kafka.n; i++)
		tk_kvlist_set(&base->kafka, cli->kafka.items[i].key, cli->kafka.items[i].value);

	/* -b / brokers is the bootstrap list unless a property says otherwise */
	if (base->brokers[0] && tk_kvlist_get(&base->kafka, "bootstrap.servers") == NULL)
		tk_kvlist_set(&base->kafka, "bootstrap.servers", base->brokers);

	if (base->conninfo[0] == '\0')
	{
		snprintf(errbuf, errlen,
				 "no database given: use -d CONNINFO, TODO_KAFKA_DB or \"database\" in the config file");
		goto fail;
	}
	if (tk_kvlist_get(&base->kafka, "bootstrap.servers") == NULL &&
		tk_kvlist_get(&base->kafka, "metadata.broker.list") == NULL)
	{
		snprintf(errbuf, errlen,
				 "no Kafka brokers given: use -b BROKERS, TODO_KAFKA_BROKERS or \"brokers\" in the config file");
		goto fail;
	}
	if (base->metrics_listen[0] &&
		!tk_http_parse_listen(base->metrics_listen, host, sizeof(host), &port))
	{
		snprintf(errbuf, errlen, "invalid metrics listen address \"%s\": expected HOST:PORT",
				 base->metrics_listen);
		goto fail;
	}
	if (base->otlp_endpoint[0] &&
		strncmp(base->otlp_endpoint, "http://", 7) != 0 &&
		strncmp(base->otlp_endpoint, "https://", 8) != 0)
	{
		/* not echoed: it may hold credentials */
		snprintf(errbuf, errlen, "invalid otlp_endpoint: expected an http:// or https:// URL "
				 "(the collector's OTLP/HTTP base, e.g. http://localhost:4318)");
		goto fail;
	}
	if (strcmp(base->profile, "production") == 0 &&
		!tk_kafka_check_production(&base->kafka, errbuf, errlen))
		goto fail;
	if (!check_kafka_properties(&base->kafka, errbuf, errlen))
		goto fail;
	return true;

fail:
	tk_daemon_config_free(spec, base, own);
	return false;
}

void
tk_daemon_config_print(const tk_daemon_spec *spec, const tk_daemon_config *base,
					   void *const *own, FILE *out)
{
	tk_option_set sets[TK_DAEMON_MAX_TABLES + 1];
	int			n = bind_tables(spec, (tk_daemon_config *) base, own, sets);

	for (int i = 0; i < n; i++)
		tk_options_print(sets[i].opts, sets[i].base, out);
	for (int i = 0; i < base->kafka.n; i++)
		fprintf(out, "kafka.%s = %s\n", base->kafka.items[i].key,
				tk_config_display_value(base->kafka.items[i].key,
										base->kafka.items[i].value));
}

static void
usage(const tk_daemon_spec *spec, FILE *out)
{
	fprintf(out,
			"%s %s\n\n"
			"Usage:\n"
			"  %s -d CONNINFO -b BROKERS [OPTION]...\n\n"
			"Options:\n"
			"  -d, --dbname=CONNINFO      libpq connection string (env TODO_KAFKA_DB)\n"
			"  -b, --brokers=LIST         Kafka bootstrap servers (env TODO_KAFKA_BROKERS)\n"
			"  -X PROPERTY=VALUE          set any librdkafka property (repeatable)\n"
			"  -c, --config=FILE          read \"key = value\" settings from FILE\n"
			"      --metrics-listen=HOST:PORT  serve /metrics and /healthz\n"
			"      --otlp-endpoint=URL    export spans over OTLP/HTTP (off by default)\n"
			"      --profile=NAME         development (default) or production\n"
			"      --log-level=LEVEL      debug, info (default), warning, error\n",
			spec->program, spec->summary, spec->program);
	for (const tk_cli_option *c = spec->cli_options; c && c->name; c++)
		fprintf(out, "      %s\n", c->usage);
	fprintf(out,
			"      --show-config          print the effective configuration and exit\n"
			"  -h, --help                 show this help and exit\n"
			"  -V, --version              show the version and exit\n\n"
			"Config file settings and their defaults:\n");
	tk_options_usage(tk_daemon_options, out);
	for (int i = 0; i < TK_DAEMON_MAX_TABLES && spec->tables[i]; i++)
		tk_options_usage(spec->tables[i], out);
	fprintf(out, "  kafka.PROPERTY       librdkafka property; defaults:\n");
	for (int i = 0; spec->kafka_defaults && spec->kafka_defaults[i][0]; i++)
		fprintf(out, "      %s = %s\n", spec->kafka_defaults[i][0], spec->kafka_defaults[i][1]);
	fprintf(out,
			"\nPrecedence: defaults < config file < environment (TODO_KAFKA_<SETTING>,\n"
			"TODO_KAFKA_KAFKA_<PROPERTY> with dots as underscores) < command line.\n"
			"SIGHUP re-reads the config file; SIGTERM drains and exits.\n"
			"Exit status: 0 clean shutdown, 1 runtime failure, 2 usage or configuration error.\n");
	if (spec->notes)
		fprintf(out, "\n%s", spec->notes);
}

static int
usage_error(const tk_daemon_spec *spec, const char *what, const char *arg)
{
	fprintf(stderr, "%s: %s \"%s\"\nTry \"%s --help\" for more information.\n",
			spec->program, what, arg, spec->program);
	return TK_EXIT_USAGE;
}

void
tk_cli_free(tk_cli *cli)
{
	tk_kvlist_free(&cli->settings);
	tk_kvlist_free(&cli->kafka);
}

#define TK_CLI_MAX_LONGOPTS 48
#define TK_CLI_OWN_BASE 1000	/* above every short option character */

/*
 * Parse argv into cli.  Returns -1 to go on, or an exit status (0 after
 * --help/--version, 2 on a usage error, already reported on stderr).
 */
int
tk_cli_parse(const tk_daemon_spec *spec, int argc, char **argv, tk_cli *cli)
{
	static const struct option common[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"brokers", required_argument, NULL, 'b'},
		{"config", required_argument, NULL, 'c'},
		{"metrics-listen", required_argument, NULL, 1},
		{"profile", required_argument, NULL, 2},
		{"log-level", required_argument, NULL, 3},
		{"show-config", no_argument, NULL, 4},
		{"otlp-endpoint", required_argument, NULL, 5},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
	};
	struct option longopts[TK_CLI_MAX_LONGOPTS];
	int			n = 0;
	int			c;

	memset(cli, 0, sizeof(*cli));
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		longopts[n++] = common[i];
	for (int i = 0; spec->cli_options && spec->cli_options[i].name &&
		 n < TK_CLI_MAX_LONGOPTS - 1; i++)
	{
		longopts[n].name = spec->cli_options[i].name;
		longopts[n].has_arg = spec->cli_options[i].has_arg ? required_argument : no_argument;
		longopts[n].flag = NULL;
		longopts[n++].val = TK_CLI_OWN_BASE + i;
	}
	memset(&longopts[n], 0, sizeof(longopts[n]));

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":d:b:c:X:hV", longopts, NULL)) != -1)
	{
		char		key[256];
		const char *value;

		switch (c)
		{
			case 'd':
				tk_kvlist_set(&cli->settings, "database", optarg);
				break;
			case 'b':
				tk_kvlist_set(&cli->settings, "brokers", optarg);
				break;
			case 'c':
				cli->config_file = optarg;
				break;
			case 'X':
				if (!tk_config_split_kv(optarg, key, sizeof(key), &value))
				{
					fprintf(stderr, "%s: invalid -X argument: expected PROPERTY=VALUE\n",
							spec->program);
					return TK_EXIT_USAGE;
				}
				tk_kvlist_set(&cli->kafka, key, value);
				break;
			case 1:
				tk_kvlist_set(&cli->settings, "metrics_listen", optarg);
				break;
			case 2:
				tk_kvlist_set(&cli->settings, "profile", optarg);
				break;
			case 3:
				tk_kvlist_set(&cli->settings, "log_level", optarg);
				break;
			case 4:
				cli->show_config = true;
				break;
			case 5:
				tk_kvlist_set(&cli->settings, "otlp_endpoint", optarg);
				break;
			case 'h':
				usage(spec, stdout);
				return TK_EXIT_OK;
			case 'V':
				printf("%s %s (librdkafka %s)\n", spec->program, spec->version,
					   rd_kafka_version_str());
				return TK_EXIT_OK;
			case ':':
				fprintf(stderr, "%s: option \"%s\" requires an argument\n"
						"Try \"%s --help\" for more information.\n",
						spec->program, argv[optind - 1], spec->program);
				return TK_EXIT_USAGE;
			default:
				if (c >= TK_CLI_OWN_BASE)
				{
					const tk_cli_option *o = &spec->cli_options[c - TK_CLI_OWN_BASE];

					tk_kvlist_set(&cli->settings, o->key, o->has_arg ? optarg : "true");
					break;
				}
				return usage_error(spec, "unknown option", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error(spec, "unexpected argument", argv[optind]);
	return -1;
}

/* the start-up line and the Kafka properties (debug), secrets redacted */
void
tk_daemon_log_start(const tk_daemon_spec *spec, const tk_daemon_config *base)
{
	const char *boot = tk_kvlist_get(&base->kafka, "bootstrap.servers");

	tk_log(TK_LOG_INFO, "%s %s starting (profile %s, brokers %s)", spec->program,
		   spec->version, base->profile, boot ? boot : "(from properties)");
	for (int i = 0; i < base->kafka.n; i++)
		tk_log(TK_LOG_DEBUG, "kafka property %s = %s", base->kafka.items[i].key,
			   tk_config_display_value(base->kafka.items[i].key,
									   base->kafka.items[i].value));
}
