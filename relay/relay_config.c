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
 * The engine (precedence, config file, environment, -X, redaction,
 * path:line errors, reload semantics) is common/daemon_config.c, shared
 * with every consumer service; this file keeps only the relay's table,
 * its producer defaults and its one extra option.
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
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "relay.h"

#define OFF(f) offsetof(relay_config, f)

/* the relay's own settings (the shared ones are tk_daemon_options) */
static const tk_option relay_options[] = {
	{"poll_interval_ms", TK_OPT_INT, OFF(poll_interval_ms), "1000", 10, 3600000,
	"safety-net poll of the outbox while waiting for NOTIFY"},
	{"read_batch", TK_OPT_INT, OFF(read_batch), "2000", 1, 100000,
	"outbox rows read per query"},
	{"position_interval_ms", TK_OPT_INT, OFF(position_interval_ms), "100", 0, 60000,
	"longest wait before the outbox position is stored (published partitions are then truncated)"},
	{"standby_retry_ms", TK_OPT_INT, OFF(standby_retry_ms), "1000", 10, 60000,
	"how often a standby tries to take leadership"},
	{"reconnect_max_ms", TK_OPT_INT, OFF(reconnect_max_ms), "10000", 100, 600000,
	"cap of the PostgreSQL reconnect backoff"},
	{"flush_timeout_ms", TK_OPT_INT, OFF(flush_timeout_ms), "10000", 0, 600000,
	"how long SIGTERM waits for Kafka acknowledgements"},
	{"stats_interval_ms", TK_OPT_INT, OFF(stats_interval_ms), "5000", 100, 3600000,
	"how often the outbox backlog is measured for /metrics"},
	{"create_topics", TK_OPT_BOOL, OFF(create_topics), "true", 0, 0,
	"create missing topics from todo_kafka.topics at start-up"},
	{"reminders", TK_OPT_BOOL, OFF(reminders), "on", 0, 0,
	"fire due reminders (leader only)"},
	{"reminder_grace", TK_OPT_INT, OFF(reminder_grace), "300", 0, 31536000,
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

static const tk_cli_option relay_cli_options[] = {
	{"reminder-grace", "reminder_grace", true,
	"--reminder-grace=SECS  late reminders fire as missed after SECS (default 300)"},
	{NULL}
};

const tk_daemon_spec relay_spec = {
	.program = "todo-kafka-relay",
	.summary = "streams the todo_kafka outbox to Kafka.",
	.version = RELAY_VERSION,
	.tables = {relay_options},
	.kafka_defaults = kafka_defaults,
	.cli_options = relay_cli_options,
};

bool
relay_config_load(relay_config *out, const tk_cli *cli, char *errbuf, size_t errlen)
{
	relay_config cfg;
	void	   *own[] = {&cfg};

	memset(&cfg, 0, sizeof(cfg));
	if (!tk_daemon_config_load(&relay_spec, cli, &cfg.d, own, errbuf, errlen))
		return false;
	*out = cfg;
	return true;
}

void
relay_config_free(relay_config *cfg)
{
	void	   *own[] = {cfg};

	tk_daemon_config_free(&relay_spec, &cfg->d, own);
}

void
relay_config_print(const relay_config *cfg, FILE *out)
{
	void	   *own[] = {(void *) cfg};

	tk_daemon_config_print(&relay_spec, &cfg->d, own, out);
}
