/*-------------------------------------------------------------------------
 *
 * runtime_config.c
 *	  the settings every consumer service has, and its librdkafka defaults
 *
 * Offsets (STYLE 38b, librdkafka INTRODUCTION.md "At-least-once
 * processing"): enable.auto.offset.store=false and auto commit on.  The
 * runtime stores an offset (rd_kafka_offsets_store) only after its message
 * was handled or dead-lettered, and librdkafka commits stored offsets in
 * the background and on close.  Chosen over explicit commits because a
 * commit per batch would add a broker round trip to every batch for
 * nothing: what was stored but not yet committed when the process dies is
 * handled again, which the sinks absorb (idempotent by event id).
 *
 * auto.offset.reset=earliest: a new group starts at the beginning of the
 * topic, so a service deployed after the relay still sees every retained
 * event.  cooperative-sticky rebalancing moves only the partitions that
 * must move.  session.timeout.ms=10000: a SIGKILLed member's partitions
 * move to the survivors within ~10 s instead of 45.
 *
 * fetch.wait.max.ms=20 (librdkafka: 500): a fetch that finds no new data
 * waits at most this long at the broker.  A real broker answers as soon as
 * data arrives, so there it only bounds idle fetches (at most 50/s per
 * broker); the devbroker (librdkafka's mock cluster) answers only when the
 * wait ends, which with 500 ms put 0.1-0.5 s on every event's latency
 * (bench/RESULTS.md, audit).
 *
 * IDENTIFICATION
 *	  consumers/runtime/runtime_config.c
 *
 *-------------------------------------------------------------------------
 */
#include <stddef.h>

#include "runtime.h"

#define OFF(f) offsetof(tkc_runtime_config, f)

const tk_option tkc_runtime_options[] = {
	{"group_prefix", TK_OPT_STRING, OFF(group_prefix), "todo-chatbot-", 0, 0,
	"consumer group = prefix + service name"},
	{"consumers", TK_OPT_INT, OFF(consumers), "1", 1, 64,
	"consumer threads in this process (--consumers)"},
	{"max_attempts", TK_OPT_INT, OFF(max_attempts), "5", 1, 100,
	"handling attempts before a message is dead-lettered"},
	{"retry_base_ms", TK_OPT_INT, OFF(retry_base_ms), "200", 1, 600000,
	"first retry delay (doubles, with jitter)"},
	{"retry_max_ms", TK_OPT_INT, OFF(retry_max_ms), "10000", 1, 3600000,
	"longest retry delay"},
	{"outage_retry_max_ms", TK_OPT_INT, OFF(outage_retry_max_ms), "10000", 10, 3600000,
	"longest wait between checks while a dependency is down"},
	{"batch_size", TK_OPT_INT, OFF(batch_size), "500", 1, 100000,
	"most messages handled in one batch"},
	{"alert_webhook", TK_OPT_SECRET, OFF(alert_webhook), "", 0, 0,
	"URL that receives a JSON POST per alert; empty: off (never printed: such URLs carry tokens)"},
	{"produce_timeout_ms", TK_OPT_INT, OFF(produce_timeout_ms), "30000", 100, 3600000,
	"how long a dead letter or output message waits for Kafka's ack"},
	{"stats_interval_ms", TK_OPT_INT, OFF(stats_interval_ms), "5000", 100, 3600000,
	"librdkafka statistics (consumer lag on /metrics) period"},
	{NULL}
};

const char *const tkc_consumer_kafka_defaults[][2] = {
	{"enable.auto.commit", "true"},
	{"enable.auto.offset.store", "false"},
	{"auto.offset.reset", "earliest"},
	{"partition.assignment.strategy", "cooperative-sticky"},
	{"session.timeout.ms", "10000"},
	{"heartbeat.interval.ms", "1000"},
	{"fetch.wait.max.ms", "20"},
	{NULL, NULL}
};
