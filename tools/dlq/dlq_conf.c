/*-------------------------------------------------------------------------
 *
 * dlq_conf.c
 *	  todo-kafka-dlq: what every command builds on: the librdkafka
 *	  configuration from the tool's settings, and times parsed by
 *	  PostgreSQL
 *
 * Used by the command line (dlq.c), the topic reader (dlq_read.c) and the
 * replay producer (dlq_replay.c); it calls none of them.
 *
 * IDENTIFICATION
 *	  tools/dlq/dlq_conf.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>

#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>

#include "dlq_int.h"
#include "kafka_conf.h"

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

