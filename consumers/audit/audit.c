/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  todo-kafka-audit: the audit trail, todo.audit.log -> todo_kafka.audit_log
 *
 * A sink service on the runtime (consumers/runtime/consumer.h): a batch is
 * ONE call of todo_kafka.audit_consume() (extension/sql/07_audit.sql,
 * 09_audit_offsets.sql), one transaction appending the records and storing
 * the offsets.  Idempotent by event id; rows are chained by sha256(previous
 * hash || content) per partition in offset order (verify_audit() finds a
 * broken link).  A refused batch is retried one by one so only the bad
 * record is dead-lettered; a database down or a missing grant pauses.
 * Accepted are only records the relay made from captured changes (id
 * "<event_id>:audit", type "audit.<event_type>"); they carry actor (the
 * application's claim) and db_role (session_user, unforgeable), and the
 * trace id of the message's traceparent (trace_id, outside the hash).  Also
 * accepted: administrative operations, type "admin.<operation>" with
 * data.table "admin_operations" (extension/sql/15_admin_audit.sql).
 *
 * Offsets live in the database (consumers/runtime/sink_offsets.c), so a
 * restored database resumes from its own position; a group it holds none
 * for starts at its committed offsets.  A last-of-partition dead letter
 * moves the offset past it (audit_skip()).  A start below the low
 * watermark refuses (exit 2) unless --allow-gap.  Worker 0 runs
 * purge_audit(retention_days) every purge_interval_s (it anchors what
 * remains and refuses below todo_kafka.audit_retention: extension/sql/
 * 08_audit_purge.sql) and verify_audit() every verify_interval_s, into
 * the gauge todo_kafka_audit_chains_broken (alert: deploy/prometheus/).
 *
 * IDENTIFICATION
 *	  consumers/audit/audit.c
 *
 *-------------------------------------------------------------------------
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "consumer.h"
#include "log.h"
#include "strbuf.h"

typedef struct audit_config
{
	int			retention_days;
	int			purge_interval_s;
	int			verify_interval_s;
} audit_config;

#define OFF(f) offsetof(audit_config, f)

static const tk_option audit_options[] = {
	{"retention_days", TK_OPT_INT, OFF(retention_days), "90", 1, 36500,
	"audit entries older than this are purged"},
	{"purge_interval_s", TK_OPT_INT, OFF(purge_interval_s), "3600", 10, 604800,
	"how often the retention purge runs"},
	{"verify_interval_s", TK_OPT_INT, OFF(verify_interval_s), "3600", 0, 604800,
	"how often verify_audit() checks every chain (0: never)"},
	{NULL}
};

static const char *const audit_streams[] = {TK_STREAM_AUDIT, NULL};

static const char *const operations[] = {"INSERT", "UPDATE", "DELETE", NULL};

/* the record is one the relay made from a captured change */
static bool
audit_validate(const void *config, tkc_event *ev)
{
	const char *event_id;
	const char *event_type;
	const char *operation;
	size_t		n;
	bool		known = false;

	if (!cJSON_IsObject(ev->data))
	{
		tkc_fail(ev, "not an audit record: \"data\" must be an object");
		return false;
	}
	event_id = tkc_json_string(ev->data, "event_id");
	event_type = tkc_json_string(ev->data, "event_type");
	operation = tkc_json_string(ev->data, "operation");
	if (event_id == NULL || event_type == NULL || operation == NULL ||
		tkc_json_string(ev->data, "timestamp") == NULL)
	{
		tkc_fail(ev, "not an audit record: data.event_id, data.event_type, data.operation "
				 "and data.timestamp must be strings");
		return false;
	}
	for (int i = 0; operations[i]; i++)
		known = known || strcmp(operation, operations[i]) == 0;
	if (!known)
	{
		tkc_fail(ev, "not an audit record: data.operation \"%.32s\" is not INSERT, UPDATE or DELETE",
				 operation);
		return false;
	}
	/* an administrative operation: record_admin_operation() wrote it */
	if (strncmp(event_type, "admin.", 6) == 0)
	{
		const char *table = tkc_json_string(ev->data, "table");

		if (strcmp(ev->type, event_type) != 0 || table == NULL ||
			strcmp(table, "admin_operations") != 0)
		{
			tkc_fail(ev, "not an admin audit record: type \"%.64s\" must be data.event_type "
					 "\"%.64s\" and data.table \"admin_operations\"", ev->type, event_type);
			return false;
		}
		return true;
	}
	n = strlen(event_id);
	if (strncmp(ev->id, event_id, n) != 0 || strcmp(ev->id + n, ":audit") != 0 ||
		strncmp(ev->type, "audit.", 6) != 0 || strcmp(ev->type + 6, event_type) != 0)
	{
		tkc_fail(ev, "not an audit record made by the relay from a captured change: "
				 "id \"%.64s\" and type \"%.64s\" must be \"%.40s:audit\" and \"audit.%.32s\"",
				 ev->id, ev->type, event_id, event_type);
		return false;
	}
	return true;
}

/* one audit_append() call for n records; the result applies to all */
static tkc_result
append(tkc_worker *w, tkc_event **evs, int n, int *inserted)
{
	tk_strbuf	arr;

	tk_strbuf_init(&arr);
	tk_strbuf_putc(&arr, '[');
	for (int i = 0; i < n; i++)
	{
		char	   *data = cJSON_PrintUnformatted(evs[i]->data);
		char		trace_id[33];

		tk_strbuf_puts(&arr, i ? ",{\"topic\":" : "{\"topic\":");
		tk_strbuf_json_string(&arr, evs[i]->topic);
		if (tkc_event_trace_id(evs[i], trace_id))
			tk_strbuf_printf(&arr, ",\"trace_id\":\"%s\"", trace_id);
		tk_strbuf_printf(&arr, ",\"partition\":%d,\"offset\":%lld,\"data\":%s}",
						 (int) evs[i]->partition, (long long) evs[i]->offset,
						 data ? data : "null");
		cJSON_free(data);
	}
	const char *params[1] = {tkc_group(w)};

	return tkc_pg_count_array(w, "SELECT todo_kafka.audit_consume($1, $2::jsonb)", 1, params,
							  &arr, evs[0], inserted);
}

#define OFFSETS_FN "todo_kafka.audit_offsets"
#define MAX_PARTITIONS 1024

static bool allow_gap = false;

/* stored_offsets->load: where the database says, else the beginning */
static bool
audit_start_offset(tkc_worker *w, const char *topic, int32_t partition, int64_t *offset)
{
	return tkc_sink_start_offset(w, OFFSETS_FN, tkc_group(w), topic, partition, offset);
}

/* stored_offsets->skip_dead_letter: the stored offset moves past ev */
static tkc_result
audit_dead_lettered(tkc_worker *w, tkc_event *ev)
{
	char		part[16];
	char		off[32];
	const char *params[4] = {tkc_group(w), ev->topic, part, off};
	PGresult   *res;
	tkc_result	r;

	snprintf(part, sizeof(part), "%d", (int) ev->partition);
	snprintf(off, sizeof(off), "%lld", (long long) ev->offset);
	res = PQexecParams(tkc_pg(w), "SELECT todo_kafka.audit_skip($1, $2, $3::int, $4::bigint)",
					   4, NULL, params, NULL, NULL, 0);
	r = tkc_pg_result(w, res, ev);
	PQclear(res);
	return r;
}

/* setup hook: every partition's start must still be in the topic */
static int
audit_setup(tkc_worker *w)
{
	const char *topic = tkc_topic(w, "audit");
	int64_t		low[MAX_PARTITIONS];
	int64_t		start;
	int			nparts = tkc_sink_low_watermarks(w, topic, low, MAX_PARTITIONS);
	int			p;

	if (nparts < 0)
		return TK_EXIT_FAILURE;
	p = tkc_sink_check_gap(w, OFFSETS_FN, tkc_group(w), topic, low, nparts, &start);
	if (p == -2)
		return TK_EXIT_FAILURE;
	if (p >= 0 && !allow_gap)
	{
		tkc_sink_log_gap("cannot continue the audit trail", topic, low, nparts,
						 "and the audit log does not hold them yet, so the trail would have a gap");
		tk_log(TK_LOG_INFO, "hint: %s[%d] would start at %lld, before its oldest event %lld: "
			   "the database was restored to a point (or the service stopped for longer) "
			   "than the topic's retention; --allow-gap starts anyway and the trail misses "
			   "the events in between", topic, p, (long long) start, (long long) low[p]);
		return TK_EXIT_USAGE;
	}
	if (p >= 0)
		tk_log(TK_LOG_WARNING, "--allow-gap: %s[%d] starts at %lld; its events %lld to %lld "
			   "are missing from the audit trail", topic, p, (long long) low[p],
			   (long long) start, (long long) low[p] - 1);
	return TKC_SETUP_CONTINUE;
}

/* verification: worker 0, at start and every verify_interval_s */
static void
audit_verify(tkc_worker *w, const audit_config *cfg)
{
	static int64_t next_verify_ms;
	PGresult   *res;

	if (cfg->verify_interval_s == 0 || tk_monotonic_ms() < next_verify_ms)
		return;
	next_verify_ms = tk_monotonic_ms() + (int64_t) cfg->verify_interval_s * 1000;
	res = PQexec(tkc_pg(w), "SELECT count(*) FILTER (WHERE NOT ok), "
				 "min(format('chain %s, entry %s: %s', chain, seq, problem)) "
				 "FROM todo_kafka.verify_audit()");
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		long		broken = atol(PQgetvalue(res, 0, 0));

		if (broken > 0)
			tk_log(TK_LOG_ERROR, "audit log verification: %ld broken chain(s), first: %s",
				   broken, PQgetvalue(res, 0, 1));
		tkc_gauge(w, "chains_broken", broken);
	}
	else
		tk_log(TK_LOG_WARNING, "audit log verification failed: %s", PQerrorMessage(tkc_pg(w)));
	PQclear(res);
}

/* retention: worker 0, every purge_interval_s; and verification */
static void
audit_periodic(tkc_worker *w)
{
	static int64_t next_purge_ms;
	const audit_config *cfg = tkc_config(w);
	char		days[16];
	const char *params[1] = {days};
	PGresult   *res;

	audit_verify(w, cfg);
	if (tk_monotonic_ms() < next_purge_ms)
		return;
	next_purge_ms = tk_monotonic_ms() + (int64_t) cfg->purge_interval_s * 1000;
	snprintf(days, sizeof(days), "%d", cfg->retention_days);
	res = PQexecParams(tkc_pg(w),
					   "SELECT todo_kafka.purge_audit(pg_catalog.make_interval(days => $1::int))",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		long		purged = atol(PQgetvalue(res, 0, 0));

		if (purged > 0)
			tk_log(TK_LOG_INFO, "retention: purged %ld audit entries older than %d days",
				   purged, cfg->retention_days);
		tkc_count(w, "records_purged_total", NULL, NULL, purged);
	}
	else
		tk_log(TK_LOG_WARNING, "retention purge failed: %s", PQerrorMessage(tkc_pg(w)));
	PQclear(res);
}

static const tkc_service audit_service = {
	.name = "audit",
	.summary = "keeps the searchable, tamper-evident audit trail (todo_kafka.audit_log).",
	.db_role = "todo_kafka_audit_writer",
	.streams = audit_streams,
	.options = audit_options,
	.config_size = sizeof(audit_config),
	.validate = audit_validate,
	.sink = append,
	.sink_unit = "records",
	.periodic = audit_periodic,
	.periodic_ms = 10000,
	.stored_offsets = &(const tkc_offset_store) {
		.load = audit_start_offset,
		.skip_dead_letter = audit_dead_lettered,
	},
	.setup = audit_setup,
	.notes = "Search: SELECT * FROM todo_kafka.search_audit(p_user_id => 'alice');\n"
	"Verify:  SELECT * FROM todo_kafka.verify_audit();   (as todo_kafka_auditor)\n"
	"      --allow-gap            start although the topic no longer holds events the\n"
	"                             audit log is missing (restore older than retention)\n",
};

int
main(int argc, char **argv)
{
	/* the flag is taken out of argv; the runtime parses the rest */
	allow_gap = tkc_take_flag(&argc, argv, "--allow-gap");
	return tkc_main(&audit_service, argc, argv);
}
