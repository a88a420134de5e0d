/*-------------------------------------------------------------------------
 *
 * project_modes.c
 *	  todo-kafka-project: where the projection starts: stored offsets, the
 *	  modes (--snapshot, --replay, --restore), the gap check, snapshots
 *
 * Offsets live in the database, written with the rows (project_apply.c).
 * The stored_offsets->load hook reads todo_kafka.project_offsets() for each
 * assigned partition; none stored means the beginning of the topic.  The
 * reading and the gap check are the runtime's (sink_offsets.c), shared
 * with the audit service.
 *
 * The setup hook runs once before anything is consumed:
 *	 --snapshot	 project_snapshot() now, print its id, exit 0;
 *	 --replay	 with no gap (every partition's low watermark is 0) or
 *				 --allow-gap, project_reset() empties the view and the
 *				 offsets; with a gap (retention deleted the first events)
 *				 the newest snapshot whose offsets are at or past every
 *				 low watermark is restored instead; without one, exit 2;
 *	 --restore	 the newest snapshot, if it covers the gap (else exit 2,
 *				 also when there is no snapshot at all);
 *	 normal		 every stored offset (0 when none) must be at or past its
 *				 partition's low watermark, else exit 2 unless --allow-gap:
 *				 the projector was stopped longer than the retention.
 * A refusal names the partitions that lost events and how to proceed.
 *
 * Snapshots: the periodic hook (worker 0, every second) takes one every
 * snapshot_interval_s (0: never), keeping the newest snapshots_keep.
 * project_snapshot() blocks applies while it copies, so the rows and
 * offsets of a snapshot agree.
 *
 * At most MAX_PARTITIONS partitions are checked.
 *
 * IDENTIFICATION
 *	  consumers/project/project_modes.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "consumer.h"
#include "log.h"
#include "project_int.h"

#define MAX_PARTITIONS 1024

/* ---- offsets and snapshots in the database ---- */

#define OFFSETS_FN "todo_kafka.project_offsets"

/* stored_offsets->load: where the database says, else the beginning */
bool
project_start_offset(tkc_worker *w, const char *topic, int32_t partition, int64_t *offset)
{
	return tkc_sink_start_offset(w, OFFSETS_FN, NULL, topic, partition, offset);
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
	tkc_sink_log_gap(what, topic, low, nparts,
					 "and no snapshot covers the gap, so the read model would be incomplete");
	tk_log(TK_LOG_INFO, "hint: a replay from zero is only complete within the topic's "
		   "retention (7 days for todo.task.events); take snapshots more often than that "
		   "(snapshot_interval_s), or pass --allow-gap to build from what the topic still holds");
}

/* setup hook: the modes, and the gap check of every start */
int
project_setup(tkc_worker *w)
{
	const project_config *cfg = tkc_config(w);
	PGconn	   *conn = tkc_pg(w);
	const char *topic = tkc_topic(w, TK_STREAM_TASK_EVENTS);
	int64_t		low[MAX_PARTITIONS];
	int			nparts;
	char		err[512];
	char		out[64];
	long long	snap;

	if (project_run_mode == MODE_SNAPSHOT)
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

	nparts = tkc_sink_low_watermarks(w, topic, low, MAX_PARTITIONS);
	if (nparts < 0)
		return TK_EXIT_FAILURE;

	if (project_run_mode == MODE_REPLAY)
	{
		bool		gap = false;

		for (int p = 0; p < nparts; p++)
			gap = gap || low[p] > 0;
		if (!gap || project_allow_gap)
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

	if (project_run_mode == MODE_RESTORE)
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
	{
		int64_t		start;
		int			p = tkc_sink_check_gap(w, OFFSETS_FN, NULL, topic, low, nparts, &start);

		if (p == -2)
			return TK_EXIT_FAILURE;
		if (p >= 0 && !project_allow_gap)
		{
			int64_t		stored = tkc_sink_stored_offset(conn, OFFSETS_FN, NULL, topic, p,
														NULL, err, sizeof(err));

			refuse_gap(stored < 0 ? "cannot build the read model" : "cannot continue the read model",
					   topic, low, nparts);
			tk_log(TK_LOG_INFO, "hint: %s[%d] would start at %lld; --restore starts from a "
				   "snapshot that covers the gap, if there is one", topic, p, (long long) start);
			return TK_EXIT_USAGE;
		}
	}
	return TKC_SETUP_CONTINUE;
}

/* periodic snapshots: worker 0 */
void
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
