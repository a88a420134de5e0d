/*-------------------------------------------------------------------------
 *
 * sink_offsets.c
 *	  for services that keep their Kafka offsets in their own sink: where
 *	  a partition starts, and the refusal of a silent gap
 *
 * A service storing offsets in the transaction of its effects (STYLE 38e:
 * the projector, the audit service) resumes from its database, never from
 * the group's committed offsets, which are ahead after a restore.  It names
 * an extension function returning (kafka_partition, next_offset) for a
 * topic (offsets_fn: "todo_kafka.project_offsets"; with a group it takes
 * (group, topic): "todo_kafka.audit_offsets").  A partition without one
 * starts at the beginning; a group the database holds none for at all
 * (new, or older than its offsets) at the group's committed offsets.
 *
 *	 tkc_sink_stored_offset	 one partition's stored next offset;
 *	 tkc_sink_start_offset	 a start_offset hook: stored, else the beginning;
 *	 tkc_sink_low_watermarks each partition's first retained offset;
 *	 tkc_sink_check_gap		 a normal start's check: every partition at or
 *							 past its low watermark, or events the sink never
 *							 saw are gone (restore or stop older than the
 *							 retention): refuse unless the gap is allowed;
 *	 tkc_sink_log_gap		 the refusal's message, shared by every mode;
 *	 tkc_take_flag			 takes --allow-gap out of argv before tkc_main().
 *
 * IDENTIFICATION
 *	  consumers/runtime/sink_offsets.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "log.h"

/* the query's parameters: (topic) or, with a group, (group, topic) */
int64_t
tkc_sink_stored_offset(PGconn *conn, const char *offsets_fn, const char *group,
					   const char *topic, int32_t partition, bool *any,
					   char *err, size_t errlen)
{
	char		sql[256];
	const char *params[2] = {group ? group : topic, topic};
	PGresult   *res;
	int64_t		off = -1;

	snprintf(sql, sizeof(sql), "SELECT kafka_partition, next_offset FROM %s($1%s)",
			 offsets_fn, group ? ", $2" : "");
	res = PQexecParams(conn, sql, group ? 2 : 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		snprintf(err, errlen, "cannot read the stored offsets (%s): %s", offsets_fn,
				 PQerrorMessage(conn));
		PQclear(res);
		return -2;
	}
	if (any)
		*any = PQntuples(res) > 0;
	for (int i = 0; i < PQntuples(res); i++)
		if (atoi(PQgetvalue(res, i, 0)) == partition)
			off = atoll(PQgetvalue(res, i, 1));
	PQclear(res);
	return off;
}

bool
tkc_sink_start_offset(tkc_worker *w, const char *offsets_fn, const char *group,
					  const char *topic, int32_t partition, int64_t *offset)
{
	char		err[512];
	bool		any;
	int64_t		off = tkc_sink_stored_offset(tkc_pg(w), offsets_fn, group, topic, partition,
											 &any, err, sizeof(err));

	if (off == -2)
	{
		tk_log(TK_LOG_WARNING, "%s", err);
		return false;
	}
	if (off >= 0)
		*offset = off;
	else if (group != NULL && !any)
		*offset = TKC_OFFSET_COMMITTED;
	else
		*offset = TKC_OFFSET_BEGINNING;
	return true;
}

int
tkc_sink_low_watermarks(tkc_worker *w, const char *topic, int64_t *low, int max)
{
	char		err[512];
	int64_t		high;
	int			nparts = tkc_partition_count(w, topic, err, sizeof(err));

	if (nparts < 0)
	{
		tk_log(TK_LOG_FATAL, "%s", err);
		return -1;
	}
	if (nparts > max)
		nparts = max;
	for (int p = 0; p < nparts; p++)
		if (!tkc_watermarks(w, topic, p, &low[p], &high, err, sizeof(err)))
		{
			tk_log(TK_LOG_FATAL, "%s", err);
			return -1;
		}
	return nparts;
}

void
tkc_sink_log_gap(const char *what, const char *topic, const int64_t *low, int nparts,
				 const char *consequence)
{
	char		where[256] = "";
	size_t		len = 0;

	for (int p = 0; p < nparts && len < sizeof(where) - 40; p++)
		if (low[p] > 0)
			len += snprintf(where + len, sizeof(where) - len, "%s%s[%d] starts at %lld",
							len ? ", " : "", topic, p, (long long) low[p]);
	tk_log(TK_LOG_FATAL, "%s: the topic no longer holds its oldest events (%s: deleted by "
		   "retention) %s", what, where, consequence);
}

int
tkc_sink_check_gap(tkc_worker *w, const char *offsets_fn, const char *group, const char *topic,
				   const int64_t *low, int nparts, int64_t *start)
{
	char		err[512];

	for (int p = 0; p < nparts; p++)
	{
		bool		any;
		int64_t		off = tkc_sink_stored_offset(tkc_pg(w), offsets_fn, group, topic, p,
												 &any, err, sizeof(err));

		if (off == -2)
		{
			tk_log(TK_LOG_FATAL, "%s", err);
			return -2;
		}
		if (group != NULL && !any)
			return -1;			/* the group's committed offsets: Kafka's to keep */
		*start = off < 0 ? 0 : off;
		if (*start < low[p])
			return p;
	}
	return -1;
}

bool
tkc_take_flag(int *argc, char **argv, const char *flag)
{
	int			n = 1;
	bool		found = false;

	if (*argc < 1)
		return false;
	for (int i = 1; i < *argc; i++)
	{
		if (strcmp(argv[i], flag) == 0)
			found = true;
		else
			argv[n++] = argv[i];
	}
	argv[n] = NULL;
	*argc = n;
	return found;
}
