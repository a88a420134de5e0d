/*-------------------------------------------------------------------------
 *
 * dlq_read.c
 *	  todo-kafka-dlq: collect the dead letters of the topic and the table
 *
 * The dead-letter topic is read with a plain assigned consumer (no group,
 * nothing committed) from its start, or from where the last purge left it
 * (todo_kafka.dlq_purged), up to the high watermarks taken when the read
 * began; a partition already at its end is not assigned.
 * Each message becomes a dead_letter named "<partition>:<offset>":
 *	 - a consumer service's envelope (common/dead_letter.c) gives the error,
 *	   reason, origin topic/partition/offset, key, event id and type, the
 *	   consumer group, the original value (data.payload, or
 *	   data.payload_base64 decoded; NULL when there is none) and the
 *	   original headers (data.headers; absent from dead letters written
 *	   before the envelope kept them);
 *	 - a relay notice of a poison outbox row has no value, only
 *	   data.outbox_id: the whole row is in the table;
 *	 - anything that is not a CloudEvent with data is listed as UNREADABLE.
 * The time of failure is data.failed_at, else the message's timestamp.
 *
 * For purge, dlq_read_topic() also computes per partition the first offset
 * to keep: it advances past each leading message older than the cutoff,
 * and stops at the first younger one (offsets are kept, not holes), and
 * gives it as the JSON object todo_kafka.dlq_purge() takes.
 *
 * The table todo_kafka.dead_letters (todo_kafka.dlq_table_rows()) adds the
 * relay's poison rows as "db:<id>", error POISON_ROW; then each dead
 * letter's replay count comes from todo_kafka.dlq_replays().
 *
 * Reading waits at most 30 s for the topic's end, then warns and lists
 * what it has.  Memory is malloc'd and kept until exit.
 *
 * IDENTIFICATION
 *	  tools/dlq/dlq_read.c
 *
 *-------------------------------------------------------------------------
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>

#include "base64.h"
#include "clock.h"
#include "dlq_int.h"
#include "kafka_conf.h"
#include "log.h"

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static const char *
json_str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t
json_int(const cJSON *o, const char *name, int64_t def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsNumber(v) ? (int64_t) v->valuedouble : def;
}

static dead_letter *
dl_add(dl_list *l)
{
	if (l->n == l->cap)
	{
		int			cap = l->cap ? l->cap * 2 : 64;
		dead_letter *items = realloc(l->items, sizeof(*items) * cap);

		if (items == NULL)
			return NULL;
		l->items = items;
		l->cap = cap;
	}
	memset(&l->items[l->n], 0, sizeof(dead_letter));
	l->items[l->n].origin_partition = -1;
	l->items[l->n].origin_offset = -1;
	return &l->items[l->n++];
}

/* the original value from payload_base64; NULL when it is not base64 */
static char *
unbase64(const char *s, size_t *len)
{
	size_t		max = strlen(s) / 4 * 3 + 3;
	char	   *out = malloc(max);

	if (out && !tk_b64_decode(s, (uint8_t *) out, max, len))
	{
		free(out);
		out = NULL;
	}
	return out;
}

/*
 * The original headers from data.headers ([{name, value | value_base64}],
 * value null for a null header); an element that is not one is skipped.
 */
static void
origin_headers(dead_letter *d, const cJSON *arr)
{
	const cJSON *h;
	int			n = cJSON_GetArraySize(arr);

	if (!cJSON_IsArray(arr))
		return;
	d->has_headers = true;
	if (n == 0 || (d->headers = calloc(n, sizeof(dl_header))) == NULL)
		return;
	cJSON_ArrayForEach(h, arr)
	{
		dl_header  *out = &d->headers[d->nheaders];
		const char *name = json_str(h, "name");
		const cJSON *value = cJSON_GetObjectItemCaseSensitive(h, "value");
		const char *b64 = json_str(h, "value_base64");

		if (name == NULL)
			continue;
		if (cJSON_IsString(value))
		{
			out->value = strdup(value->valuestring);
			out->value_len = strlen(value->valuestring);
		}
		else if (b64 != NULL)
			out->value = unbase64(b64, &out->value_len);
		else if (!cJSON_IsNull(value))
			continue;
		out->name = strdup(name);
		d->nheaders++;
	}
}

/* fill d from a dead-letter envelope of the topic */
static void
from_envelope(dead_letter *d, const rd_kafka_message_t *m)
{
	cJSON	   *root = cJSON_ParseWithLength(m->payload, m->len);
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
	rd_kafka_timestamp_type_t tstype;
	int64_t		ts = rd_kafka_message_timestamp(m, &tstype);
	const char *failed_at = json_str(data, "failed_at");
	const char *p;

	snprintf(d->name, sizeof(d->name), "%d:%lld", (int) m->partition, (long long) m->offset);
	d->raw = strndup(m->payload ? m->payload : "", m->len);
	d->failed_us = ts >= 0 ? ts * 1000 : 0;
	if (failed_at && tk_parse_rfc3339_us(failed_at) > 0)
		d->failed_us = tk_parse_rfc3339_us(failed_at);
	if (!cJSON_IsObject(data))
	{
		d->error = strdup("UNREADABLE");
		d->reason = strdup("the dead-letter message is not a CloudEvent with data");
		cJSON_Delete(root);
		return;
	}
	d->error = dup_or_null(json_str(data, "error"));
	d->reason = dup_or_null(json_str(data, "reason"));
	d->origin_topic = dup_or_null(json_str(data, "origin_topic"));
	d->origin_partition = (int32_t) json_int(data, "origin_partition", -1);
	d->origin_offset = json_int(data, "origin_offset", -1);
	d->key = dup_or_null(json_str(data, "key"));
	d->event_id = dup_or_null(json_str(data, "event_id"));
	d->event_type = dup_or_null(json_str(data, "event_type") ? json_str(data, "event_type")
								: json_str(data, "message_type"));
	d->group = dup_or_null(json_str(data, "consumer_group"));
	if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(data, "outbox_id")))
	{
		char		buf[32];

		snprintf(buf, sizeof(buf), "%lld", (long long) json_int(data, "outbox_id", 0));
		d->outbox_id = strdup(buf);
	}
	if ((p = json_str(data, "payload")) != NULL)
	{
		d->payload = strdup(p);
		d->payload_len = strlen(p);
	}
	else if ((p = json_str(data, "payload_base64")) != NULL)
		d->payload = unbase64(p, &d->payload_len);
	origin_headers(d, cJSON_GetObjectItemCaseSensitive(data, "headers"));
	cJSON_Delete(root);
}

/* the first offset of each partition still to list (after purges) */
static int64_t
purged_before(PGconn *conn, const char *topic, int32_t partition)
{
	const char *params[1] = {topic};
	PGresult   *res = PQexecParams(conn, "SELECT kafka_partition, keep_from_offset "
								   "FROM todo_kafka.dlq_purged($1)", 1, NULL, params, NULL, NULL, 0);
	int64_t		keep = 0;

	for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++)
		if (atoi(PQgetvalue(res, i, 0)) == partition)
			keep = atoll(PQgetvalue(res, i, 1));
	PQclear(res);
	return keep;
}

/* read the dead-letter topic up to its current end */
bool
dlq_read_topic(const tk_daemon_config *cfg, PGconn *conn, const char *topic, dl_list *out,
		   int64_t *keep_from_cutoff_us, char *keep_json, size_t keep_len)
{
	char		err[512];
	rd_kafka_conf_t *conf = dlq_kafka_conf(cfg, err, sizeof(err));
	rd_kafka_t *rk;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt;
	rd_kafka_topic_partition_list_t *parts;
	int64_t    *high;
	int64_t    *keep;
	int			left = 0;
	int			nparts;
	size_t		kl = 0;
	int64_t		deadline;

	if (conf == NULL ||
		!tk_kafka_conf_set(conf, "group.id", PROGRAM, err, sizeof(err)) ||
		!tk_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) ||
		!tk_kafka_conf_set(conf, "enable.partition.eof", "false", err, sizeof(err)) ||
		(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err))) == NULL)
	{
		tk_log(TK_LOG_ERROR, "kafka: %s", err);
		return false;
	}
	rkt = rd_kafka_topic_new(rk, topic, NULL);
	if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
		md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt <= 0)
	{
		tk_log(TK_LOG_ERROR, "cannot read the partitions of the dead-letter topic %s", topic);
		if (md)
			rd_kafka_metadata_destroy(md);
		rd_kafka_topic_destroy(rkt);
		rd_kafka_destroy(rk);
		return false;
	}
	nparts = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	high = calloc(nparts, sizeof(int64_t));
	keep = calloc(nparts, sizeof(int64_t));
	parts = rd_kafka_topic_partition_list_new(nparts);
	for (int p = 0; p < nparts; p++)
	{
		int64_t		low;

		if (rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high[p], 10000))
		{
			tk_log(TK_LOG_ERROR, "cannot learn the offsets of %s[%d]", topic, p);
			rd_kafka_destroy(rk);
			return false;
		}
		keep[p] = purged_before(conn, topic, p);
		if (keep[p] < low)
			keep[p] = low;
		if (keep[p] < high[p])
		{
			rd_kafka_topic_partition_list_add(parts, topic, p)->offset = keep[p];
			left++;
		}
	}
	if (left > 0)
		rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	deadline = tk_monotonic_ms() + 30000;
	while (left > 0 && tk_monotonic_ms() < deadline)
	{
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);

		if (m == NULL)
			continue;
		if (!m->err && m->partition < nparts && m->offset < high[m->partition])
		{
			dead_letter *d = dl_add(out);

			if (d)
				from_envelope(d, m);
			/* purge: the first offset to keep is the first one not too old */
			if (keep_from_cutoff_us && d && d->failed_us < *keep_from_cutoff_us &&
				keep[m->partition] == m->offset)
				keep[m->partition] = m->offset + 1;
			if (m->offset + 1 >= high[m->partition])
				left--;
		}
		else if (m->err)
			tk_log(TK_LOG_WARNING, "kafka: %s", rd_kafka_message_errstr(m));
		rd_kafka_message_destroy(m);
	}
	if (left > 0)
		tk_log(TK_LOG_WARNING, "the dead-letter topic was not read to its end within 30 s");
	if (keep_json)
	{
		kl = snprintf(keep_json, keep_len, "{");
		for (int p = 0; p < nparts && kl < keep_len - 40; p++)
			kl += snprintf(keep_json + kl, keep_len - kl, "%s\"%d\":%lld", p ? "," : "", p,
						   (long long) keep[p]);
		snprintf(keep_json + kl, keep_len - kl, "}");
	}
	free(high);
	free(keep);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return true;
}

/* the relay's poison rows of todo_kafka.dead_letters */
bool
dlq_read_table(PGconn *conn, dl_list *out)
{
	PGresult   *res = PQexec(conn, "SELECT id, outbox_id, event_id, topic, reason, row_data, "
							 "extract(epoch FROM failed_at)::float8 FROM todo_kafka.dlq_table_rows()");

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		tk_log(TK_LOG_ERROR, "cannot read todo_kafka.dead_letters: %s", PQerrorMessage(conn));
		PQclear(res);
		return false;
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		dead_letter *d = dl_add(out);
		cJSON	   *row;

		if (d == NULL)
			break;
		snprintf(d->name, sizeof(d->name), "db:%s", PQgetvalue(res, i, 0));
		d->from_table = true;
		d->outbox_id = strdup(PQgetvalue(res, i, 1));
		d->event_id = strdup(PQgetvalue(res, i, 2));
		d->origin_topic = strdup(PQgetvalue(res, i, 3));
		d->reason = strdup(PQgetvalue(res, i, 4));
		d->error = strdup("POISON_ROW");
		d->raw = strdup(PQgetvalue(res, i, 5));
		d->failed_us = (int64_t) (atof(PQgetvalue(res, i, 6)) * 1e6);
		row = cJSON_Parse(d->raw);
		d->key = dup_or_null(json_str(row, "key"));
		d->event_type = dup_or_null(json_str(row, "event_type"));
		cJSON_Delete(row);
	}
	PQclear(res);
	return true;
}

void
dlq_read_replays(PGconn *conn, dl_list *l)
{
	PGresult   *res = PQexec(conn, "SELECT dead_letter, replays FROM todo_kafka.dlq_replays()");

	for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++)
		for (int k = 0; k < l->n; k++)
			if (strcmp(l->items[k].name, PQgetvalue(res, i, 0)) == 0)
				l->items[k].replays = atoi(PQgetvalue(res, i, 1));
	PQclear(res);
}
