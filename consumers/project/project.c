/*-------------------------------------------------------------------------
 *
 * project.c
 *	  todo-kafka-project: the read model of tasks (todo_kafka.task_view),
 *	  built from the task events topic alone, with snapshots and replay
 *
 * A handler on the consumer runtime (consumers/runtime/consumer.h).  Each
 * batch becomes ONE call of todo_kafka.project_apply(topic, events)
 * (extension 0.4.0, granted to todo_kafka_consumer): the view rows AND the
 * partitions' next offsets are written in that one transaction, so the
 * projection is exactly-once without Kafka's committed offsets (STYLE 38e).
 * SIGKILL at any point loses either both or neither.  Where each assigned
 * partition starts comes from the database too (start_offset hook:
 * todo_kafka.project_offsets()); events below a partition's stored offset
 * are skipped by project_apply, so a redelivery is never applied twice.
 *
 * What is projected: task.<created|updated|completed|deleted|
 * recurring-created> events of the tasks table (source task_source); the
 * view row is the event's data.task_data (the whole row image; a delete
 * removes the row).  Other events (other types, a tracked application
 * table on the same stream) only advance the offsets.  Timestamps and
 * intervals are read by PostgreSQL, so any RFC 3339 offset ("Z" or
 * "+02:00") and PostgreSQL or ISO 8601 interval text work.  An event of
 * ours without a uuid task_id or an object task_data is invalid input
 * (dead-lettered at once).
 *
 * Modes (command line only, so a config file cannot make every restart a
 * rebuild; the setup hook runs them before anything is consumed):
 *	 --snapshot	 take a snapshot now (project_snapshot) and exit 0;
 *	 --replay	 rebuild from the start of the topic: empty the view and the
 *				 offsets, then run.  When the topic no longer holds its
 *				 first events (a partition's low watermark > 0: retention
 *				 deleted them), the newest snapshot that covers the gap is
 *				 restored instead; without one the replay is refused with
 *				 exit 2: it would build a silently incomplete read model.
 *	 --restore	 restore the newest snapshot and replay only what came after
 *				 (exit 2 when there is none, or events after it are gone).
 * A normal start makes the same check: stored offsets below the low
 * watermark (the projector was stopped longer than the retention) refuse
 * with exit 2, unless --allow-gap says an incomplete model is acceptable.
 *
 * Snapshots: worker 0 takes one every snapshot_interval_s (0: never) and
 * keeps the newest snapshots_keep.  project_snapshot() blocks applies
 * while it copies, so rows and offsets of a snapshot agree.
 *
 * IDENTIFICATION
 *	  consumers/project/project.c
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

#define MAX_PARTITIONS 1024

typedef struct project_config
{
	int			snapshot_interval_s;
	int			snapshots_keep;
	char	   *task_source;
} project_config;

#define OFF(f) offsetof(project_config, f)

static const tk_option project_options[] = {
	{"snapshot_interval_s", TK_OPT_INT, OFF(snapshot_interval_s), "3600", 0, 31536000,
	"seconds between snapshots of the read model; 0: only --snapshot"},
	{"snapshots_keep", TK_OPT_INT, OFF(snapshots_keep), "3", 1, 1000,
	"snapshots kept; older ones are pruned"},
	{"task_source", TK_OPT_STRING, OFF(task_source), "/todo_kafka/todo_kafka.tasks", 0, 0,
	"CloudEvents source of the events projected; empty: any source"},
	{NULL}
};

static const tk_cli_option project_cli_options[] = {
	{"snapshot-interval-s", "snapshot_interval_s", true,
	"--snapshot-interval-s=SECS  seconds between snapshots (default 3600, 0: off)"},
	{"snapshots-keep", "snapshots_keep", true,
	"--snapshots-keep=N     snapshots kept, older ones pruned (default 3)"},
	{NULL}
};

static const char *const project_streams[] = {"task_events", NULL};

static const char *const task_types[] = {
	"created", "updated", "completed", "deleted", "recurring-created", NULL
};

typedef enum project_mode
{
	MODE_RUN,
	MODE_SNAPSHOT,
	MODE_REPLAY,
	MODE_RESTORE
} project_mode;

static project_mode mode = MODE_RUN;
static bool allow_gap = false;

/* the event type we project ("created" ...), or NULL for any other event */
static const char *
task_type(const project_config *cfg, const tkc_event *ev)
{
	if (strncmp(ev->type, "task.", 5) != 0)
		return NULL;
	if (cfg->task_source[0] && strcmp(ev->source, cfg->task_source) != 0)
		return NULL;
	for (int i = 0; task_types[i]; i++)
		if (strcmp(ev->type + 5, task_types[i]) == 0)
			return task_types[i];
	return NULL;
}

static bool
is_uuid(const char *s)
{
	if (s == NULL || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++)
	{
		bool		dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') ||
								   (s[i] >= 'a' && s[i] <= 'f') ||
								   (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	}
	return true;
}

/* the fields the handler uses: data.task_id (uuid) and data.task_data */
static bool
project_validate(const void *config, tkc_event *ev)
{
	const project_config *cfg = config;
	const char *type = task_type(cfg, ev);
	const cJSON *task_data;

	if (type == NULL)
		return true;			/* not ours: only its offset counts */
	if (!cJSON_IsObject(ev->data))
	{
		tkc_fail(ev, "not a task event: \"data\" must be an object");
		return false;
	}
	if (!is_uuid(tkc_json_string(ev->data, "task_id")))
	{
		tkc_fail(ev, "not a task event: data.task_id must be a uuid");
		return false;
	}
	task_data = cJSON_GetObjectItemCaseSensitive(ev->data, "task_data");
	if (!cJSON_IsObject(task_data) && strcmp(type, "deleted") != 0)
	{
		tkc_fail(ev, "not a task event: data.task_data must be an object");
		return false;
	}
	return true;
}

/* one project_apply() call for n events (one topic); the result applies to all */
static tkc_result
apply(tkc_worker *w, tkc_event **evs, int n, int *applied)
{
	const project_config *cfg = tkc_config(w);
	tk_strbuf	arr;
	PGresult   *res;
	const char *params[2];
	tkc_result	r;

	tk_strbuf_init(&arr);
	tk_strbuf_putc(&arr, '[');
	for (int i = 0; i < n; i++)
	{
		const char *type = task_type(cfg, evs[i]);

		tk_strbuf_printf(&arr, "%s{\"partition\":%d,\"offset\":%lld,\"type\":", i ? "," : "",
						 (int) evs[i]->partition, (long long) evs[i]->offset);
		if (type == NULL)
			tk_strbuf_puts(&arr, "null}");
		else
		{
			const cJSON *td = cJSON_GetObjectItemCaseSensitive(evs[i]->data, "task_data");
			char	   *data = cJSON_IsObject(td) ? cJSON_PrintUnformatted(td) : NULL;

			tk_strbuf_json_string(&arr, type);
			tk_strbuf_puts(&arr, ",\"task_id\":");
			tk_strbuf_json_string(&arr, tkc_json_string(evs[i]->data, "task_id"));
			tk_strbuf_printf(&arr, ",\"task_data\":%s}", data ? data : "null");
			cJSON_free(data);
		}
	}
	tk_strbuf_putc(&arr, ']');
	if (arr.oom)
	{
		tk_strbuf_free(&arr);
		tkc_fail(evs[0], "out of memory");
		return TKC_RETRY;
	}
	params[0] = evs[0]->topic;
	params[1] = arr.data;
	res = PQexecParams(tkc_pg(w), "SELECT todo_kafka.project_apply($1, $2::jsonb)", 2, NULL,
					   params, NULL, NULL, 0);
	r = tkc_pg_result(w, res, evs[0]);
	if (r == TKC_OK)
		*applied = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	tk_strbuf_free(&arr);
	return r;
}

static void
project_handle_batch(tkc_worker *w, tkc_event **evs, int n, tkc_result *results)
{
	int			applied = 0;
	tkc_result	r;

	if (tkc_pg(w) == NULL)
	{
		for (int i = 0; i < n; i++)
		{
			tkc_fail(evs[i], "database unavailable");
			results[i] = TKC_DOWN;
		}
		return;
	}
	r = apply(w, evs, n, &applied);
	if ((r == TKC_DEAD || r == TKC_RETRY) && n > 1)
	{
		/*
		 * Find the bad event: one by one, in offset order.  Once an event
		 * of a partition did not succeed (RETRY, DOWN), the later ones of
		 * that partition wait (LATER): applying offset n+1 would move the
		 * stored offset past n, and n would then be skipped as applied.
		 */
		int32_t		blocked[64];
		int			nblocked = 0;

		tk_log(TK_LOG_WARNING, "projection batch of %d refused (%s); applying one by one",
			   n, evs[0]->error);
		for (int i = 0; i < n; i++)
		{
			bool		wait = false;

			for (int k = 0; k < nblocked; k++)
				wait = wait || blocked[k] == evs[i]->partition;
			if (wait || (nblocked == 64))
			{
				results[i] = TKC_LATER;
				continue;
			}
			project_handle_batch(w, &evs[i], 1, &results[i]);
			if (results[i] == TKC_RETRY || results[i] == TKC_DOWN)
				blocked[nblocked++] = evs[i]->partition;
		}
		return;
	}
	for (int i = 0; i < n; i++)
	{
		results[i] = r;
		if (i > 0)
			memcpy(evs[i]->error, evs[0]->error, sizeof(evs[i]->error));
	}
	if (r == TKC_OK)
	{
		tkc_count(w, "events_applied_total", NULL, NULL, applied);
		if (n - applied > 0)
			tkc_count(w, "events_already_applied_total", NULL, NULL, n - applied);
	}
}

/* ---- offsets and snapshots in the database ---- */

/* the stored next offset of topic[partition]; -1 when none; -2 on error */
static int64_t
stored_offset(PGconn *conn, const char *topic, int32_t partition, char *err, size_t errlen)
{
	const char *params[1] = {topic};
	PGresult   *res = PQexecParams(conn, "SELECT kafka_partition, next_offset FROM todo_kafka.project_offsets($1)",
								   1, NULL, params, NULL, NULL, 0);
	int64_t		off = -1;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		snprintf(err, errlen, "cannot read the projection offsets: %s", PQerrorMessage(conn));
		PQclear(res);
		return -2;
	}
	for (int i = 0; i < PQntuples(res); i++)
		if (atoi(PQgetvalue(res, i, 0)) == partition)
			off = atoll(PQgetvalue(res, i, 1));
	PQclear(res);
	return off;
}

/* start_offset hook: where the database says, else the beginning */
static bool
project_start_offset(tkc_worker *w, const char *topic, int32_t partition, int64_t *offset)
{
	char		err[512];
	int64_t		off = stored_offset(tkc_pg(w), topic, partition, err, sizeof(err));

	if (off == -2)
	{
		tk_log(TK_LOG_WARNING, "%s", err);
		return false;
	}
	*offset = off < 0 ? TKC_OFFSET_BEGINNING : off;
	return true;
}

/* a scalar query; false with the error in err */
static bool
query_value(PGconn *conn, const char *sql, int nparams, const char *const *params,
			char *out, size_t outlen, char *err, size_t errlen)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	bool		ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;

	if (ok)
		snprintf(out, outlen, "%s", PQgetvalue(res, 0, 0));
	else
		snprintf(err, errlen, "%s", PQerrorMessage(conn));
	PQclear(res);
	return ok;
}

static bool
take_snapshot(PGconn *conn, int keep, char *id, size_t idlen, char *err, size_t errlen)
{
	char		k[16];
	const char *params[1] = {k};

	snprintf(k, sizeof(k), "%d", keep);
	return query_value(conn, "SELECT todo_kafka.project_snapshot($1::int)", 1, params,
					   id, idlen, err, errlen);
}

/*
 * The newest snapshot whose offsets are at or past every partition's low
 * watermark (nothing after it was deleted), or, with newest_only, the
 * newest if it is such.  Returns its id, 0 when none, -1 on error.
 */
static long long
covering_snapshot(PGconn *conn, const char *topic, const int64_t *low, int nparts,
				  bool newest_only, char *err, size_t errlen)
{
	const char *params[1] = {topic};
	PGresult   *res;
	long long	found = 0;

	res = PQexecParams(conn,
					   "SELECT s.id, coalesce(jsonb_object_agg(o->>'partition', o->'next_offset') "
					   "  FILTER (WHERE o->>'topic' = $1), '{}')::text "
					   "FROM todo_kafka.project_snapshots() s "
					   "LEFT JOIN LATERAL jsonb_array_elements(s.offsets) o ON true "
					   "GROUP BY s.id ORDER BY s.id DESC",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		snprintf(err, errlen, "cannot read the snapshots: %s", PQerrorMessage(conn));
		PQclear(res);
		return -1;
	}
	for (int i = 0; i < PQntuples(res) && found == 0; i++)
	{
		cJSON	   *offs = cJSON_Parse(PQgetvalue(res, i, 1));
		bool		covers = offs != NULL;

		for (int p = 0; covers && p < nparts; p++)
		{
			char		key[16];
			const cJSON *v;

			snprintf(key, sizeof(key), "%d", p);
			v = cJSON_GetObjectItemCaseSensitive(offs, key);
			covers = (cJSON_IsNumber(v) ? (int64_t) v->valuedouble : 0) >= low[p];
		}
		cJSON_Delete(offs);
		if (covers)
			found = atoll(PQgetvalue(res, i, 0));
		if (newest_only)
			break;
	}
	PQclear(res);
	return found;
}

static bool
restore(PGconn *conn, long long id, char *err, size_t errlen)
{
	char		idtext[32];
	char		out[32];
	const char *params[1] = {idtext};

	snprintf(idtext, sizeof(idtext), "%lld", id);
	return query_value(conn, "SELECT todo_kafka.project_restore($1::bigint)", 1, params,
					   out, sizeof(out), err, errlen);
}

static void
refuse_gap(const char *what, const char *topic, const int64_t *low, int nparts)
{
	char		where[256] = "";
	size_t		len = 0;

	for (int p = 0; p < nparts && len < sizeof(where) - 40; p++)
		if (low[p] > 0)
			len += snprintf(where + len, sizeof(where) - len, "%s%s[%d] starts at %lld",
							len ? ", " : "", topic, p, (long long) low[p]);
	tk_log(TK_LOG_FATAL, "%s: the topic no longer holds its oldest events (%s: deleted by "
		   "retention) and no snapshot covers the gap, so the read model would be incomplete",
		   what, where);
	tk_log(TK_LOG_INFO, "hint: a replay from zero is only complete within the topic's "
		   "retention (7 days for todo.task.events); take snapshots more often than that "
		   "(snapshot_interval_s), or pass --allow-gap to build from what the topic still holds");
}

/* setup hook: the modes, and the gap check of every start */
static int
project_setup(tkc_worker *w)
{
	const project_config *cfg = tkc_config(w);
	PGconn	   *conn = tkc_pg(w);
	const char *topic = tkc_topic(w, "task_events");
	int64_t		low[MAX_PARTITIONS];
	int64_t		high;
	int			nparts;
	char		err[512];
	char		out[64];
	long long	snap;

	if (mode == MODE_SNAPSHOT)
	{
		if (!take_snapshot(conn, cfg->snapshots_keep, out, sizeof(out), err, sizeof(err)))
		{
			tk_log(TK_LOG_FATAL, "snapshot failed: %s", err);
			return TK_EXIT_FAILURE;
		}
		tk_log(TK_LOG_INFO, "snapshot %s taken (keeping the newest %d)", out, cfg->snapshots_keep);
		printf("snapshot %s\n", out);
		return TK_EXIT_OK;
	}

	nparts = tkc_partition_count(w, topic, err, sizeof(err));
	if (nparts < 0)
	{
		tk_log(TK_LOG_FATAL, "%s", err);
		return TK_EXIT_FAILURE;
	}
	if (nparts > MAX_PARTITIONS)
		nparts = MAX_PARTITIONS;
	for (int p = 0; p < nparts; p++)
		if (!tkc_watermarks(w, topic, p, &low[p], &high, err, sizeof(err)))
		{
			tk_log(TK_LOG_FATAL, "%s", err);
			return TK_EXIT_FAILURE;
		}

	if (mode == MODE_REPLAY)
	{
		bool		gap = false;

		for (int p = 0; p < nparts; p++)
			gap = gap || low[p] > 0;
		if (!gap || allow_gap)
		{
			if (!query_value(conn, "SELECT todo_kafka.project_reset()::text", 0, NULL,
							 out, sizeof(out), err, sizeof(err)))
			{
				tk_log(TK_LOG_FATAL, "replay: cannot empty the read model: %s", err);
				return TK_EXIT_FAILURE;
			}
			tk_log(gap ? TK_LOG_WARNING : TK_LOG_INFO,
				   "replay: read model emptied; rebuilding from the start of %s%s", topic,
				   gap ? " (--allow-gap: events already deleted by retention are missing)" : "");
			return TKC_SETUP_CONTINUE;
		}
		snap = covering_snapshot(conn, topic, low, nparts, false, err, sizeof(err));
		if (snap < 0)
		{
			tk_log(TK_LOG_FATAL, "replay: %s", err);
			return TK_EXIT_FAILURE;
		}
		if (snap == 0)
		{
			refuse_gap("cannot replay", topic, low, nparts);
			return TK_EXIT_USAGE;
		}
		if (!restore(conn, snap, err, sizeof(err)))
		{
			tk_log(TK_LOG_FATAL, "replay: cannot restore snapshot %lld: %s", snap, err);
			return TK_EXIT_FAILURE;
		}
		tk_log(TK_LOG_INFO, "replay: the topic's oldest events are gone; rebuilding from "
			   "snapshot %lld, which covers them", snap);
		return TKC_SETUP_CONTINUE;
	}

	if (mode == MODE_RESTORE)
	{
		snap = covering_snapshot(conn, topic, low, nparts, true, err, sizeof(err));
		if (snap < 0)
		{
			tk_log(TK_LOG_FATAL, "restore: %s", err);
			return TK_EXIT_FAILURE;
		}
		if (snap == 0)
		{
			if (!query_value(conn, "SELECT count(*) FROM todo_kafka.project_snapshots()", 0,
							 NULL, out, sizeof(out), err, sizeof(err)) || atol(out) == 0)
			{
				tk_log(TK_LOG_FATAL, "cannot restore: there is no snapshot of the read model");
				tk_log(TK_LOG_INFO, "hint: take one with --snapshot, or rebuild with --replay");
			}
			else
				refuse_gap("cannot restore the newest snapshot", topic, low, nparts);
			return TK_EXIT_USAGE;
		}
		if (!restore(conn, snap, err, sizeof(err)))
		{
			tk_log(TK_LOG_FATAL, "restore: cannot restore snapshot %lld: %s", snap, err);
			return TK_EXIT_FAILURE;
		}
		tk_log(TK_LOG_INFO, "restore: read model restored from snapshot %lld; replaying what came after", snap);
		return TKC_SETUP_CONTINUE;
	}

	/* a normal start: the stored offsets must still be in the topic */
	for (int p = 0; p < nparts; p++)
	{
		int64_t		off = stored_offset(conn, topic, p, err, sizeof(err));

		if (off == -2)
		{
			tk_log(TK_LOG_FATAL, "%s", err);
			return TK_EXIT_FAILURE;
		}
		if ((off < 0 ? 0 : off) < low[p] && !allow_gap)
		{
			refuse_gap(off < 0 ? "cannot build the read model" : "cannot continue the read model",
					   topic, low, nparts);
			tk_log(TK_LOG_INFO, "hint: %s[%d] would start at %lld; --restore starts from a "
				   "snapshot that covers the gap, if there is one", topic, p,
				   (long long) (off < 0 ? 0 : off));
			return TK_EXIT_USAGE;
		}
	}
	return TKC_SETUP_CONTINUE;
}

/* periodic snapshots: worker 0 */
static void
project_periodic(tkc_worker *w)
{
	static int64_t next_ms;
	const project_config *cfg = tkc_config(w);
	char		id[32];
	char		err[512];
	int64_t		t0;

	if (cfg->snapshot_interval_s <= 0)
		return;
	if (next_ms == 0)
		next_ms = tk_monotonic_ms() + (int64_t) cfg->snapshot_interval_s * 1000;
	if (tk_monotonic_ms() < next_ms)
		return;
	next_ms = tk_monotonic_ms() + (int64_t) cfg->snapshot_interval_s * 1000;
	t0 = tk_monotonic_ms();
	if (take_snapshot(tkc_pg(w), cfg->snapshots_keep, id, sizeof(id), err, sizeof(err)))
	{
		tk_log(TK_LOG_INFO, "snapshot %s taken in %lld ms", id, (long long) (tk_monotonic_ms() - t0));
		tkc_count(w, "snapshots_total", NULL, NULL, 1);
	}
	else
		tk_log(TK_LOG_WARNING, "snapshot failed: %s", err);
}

static const tkc_service project_service = {
	.name = "project",
	.summary = "keeps the read model of tasks (todo_kafka.task_view) from the task events.",
	.streams = project_streams,
	.options = project_options,
	.config_size = sizeof(project_config),
	.cli_options = project_cli_options,
	.validate = project_validate,
	.handle_batch = project_handle_batch,
	.periodic = project_periodic,
	.periodic_ms = 1000,
	.start_offset = project_start_offset,
	.setup = project_setup,
	.notes =
	"Modes (command line only):\n"
	"      --replay               rebuild the read model from the start of the topic;\n"
	"                             refused (exit 2) when retention already deleted\n"
	"                             events no snapshot covers\n"
	"      --restore              start from the newest snapshot, replay what came after\n"
	"      --snapshot             take a snapshot now and exit\n"
	"      --allow-gap            accept a read model missing events retention deleted\n"
	"A replay from zero is only complete within the topic's retention (7 days).\n\n"
	"Examples:\n"
	"  todo-kafka-project -d 'dbname=app' -b kafka:9092\n"
	"  todo-kafka-project -d 'dbname=app' -b kafka:9092 --snapshot\n"
	"  todo-kafka-project -d 'dbname=app' -b kafka:9092 --restore\n"
	"Read:  SELECT * FROM todo_kafka.task_view WHERE user_id = 'alice';\n",
};

int
main(int argc, char **argv)
{
	int			n = 0;

	/* the modes are taken out of argv; the runtime parses the rest */
	for (int i = 0; i < argc; i++)
	{
		project_mode m = MODE_RUN;

		if (i > 0 && strcmp(argv[i], "--replay") == 0)
			m = MODE_REPLAY;
		else if (i > 0 && strcmp(argv[i], "--restore") == 0)
			m = MODE_RESTORE;
		else if (i > 0 && strcmp(argv[i], "--snapshot") == 0)
			m = MODE_SNAPSHOT;
		else if (i > 0 && strcmp(argv[i], "--allow-gap") == 0)
		{
			allow_gap = true;
			continue;
		}
		if (m == MODE_RUN)
		{
			argv[n++] = argv[i];
			continue;
		}
		if (mode != MODE_RUN && mode != m)
		{
			fprintf(stderr, "todo-kafka-project: --replay, --restore and --snapshot exclude each other\n"
					"Try \"todo-kafka-project --help\" for more information.\n");
			return TK_EXIT_USAGE;
		}
		mode = m;
	}
	argv[n] = NULL;
	return tkc_main(&project_service, n, argv);
}
