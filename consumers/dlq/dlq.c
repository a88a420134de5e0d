/*-------------------------------------------------------------------------
 *
 * dlq.c
 *	  todo-kafka-dlq: the operator's tool for dead letters: list, show,
 *	  replay once to the original topic, purge
 *
 * Where dead letters are:
 *	 - the dead-letter topic (todo.dead.letter, from todo_kafka.topic_of):
 *	   envelopes of the consumer services (common/dead_letter.c: the
 *	   original key and value kept in data.key and data.payload or
 *	   data.payload_base64, origin topic/partition/offset) and the relay's
 *	   notices of poison outbox rows (no payload; data.outbox_id);
 *	 - the table todo_kafka.dead_letters: the relay's poison rows, whole.
 * A dead letter is named by where it lies: "<partition>:<offset>" of the
 * dead-letter topic, or "db:<id>" of the table.  The topic is read with a
 * plain assigned consumer (no group, nothing committed) from its start (or
 * from where the last purge left it) up to the high watermarks taken when
 * the tool started.
 *
 * Replay, once: for each selected dead letter, in one database transaction,
 * todo_kafka.dlq_claim_replay() records it (refused when it was replayed
 * before, unless --force), the original key and value are produced to the
 * original topic AND partition (so the key's order is kept) by an
 * idempotent acks=all producer, and the transaction commits only after
 * Kafka acknowledged; a message Kafka did not take leaves no record.  A
 * table row goes back into the outbox (todo_kafka.dlq_requeue_outbox, the
 * same record) and the relay publishes it.  A relay notice on the topic is
 * refused with a pointer to its table row.
 *
 * Purge: dead letters older than --older-than are forgotten: table rows and
 * replay records deleted, the topic's first offset to list remembered per
 * partition (todo_kafka.dlq_purge); Kafka's retention deletes the messages.
 *
 * All SQL is extension functions granted to todo_kafka_operator (STYLE
 * 38f).  Exit status: 0 done, 1 something failed or was refused, 2 usage.
 *
 * IDENTIFICATION
 *	  consumers/dlq/dlq.c
 *
 *-------------------------------------------------------------------------
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>

#include "base64.h"
#include "clock.h"
#include "daemon_config.h"
#include "kafka_conf.h"
#include "log.h"
#include "pg.h"

#define PROGRAM "todo-kafka-dlq"

typedef struct dlq_config
{
	char	   *ids;			/* --id, comma separated */
	char	   *origin_topic;
	char	   *since;
	char	   *until;
	char	   *older_than;
	bool		force;
	bool		all;
} dlq_config;

#define OFF(f) offsetof(dlq_config, f)

static const tk_option dlq_options[] = {
	{"id", TK_OPT_STRING, OFF(ids), "", 0, 0, "dead letters to replay (comma separated)"},
	{"origin_topic", TK_OPT_STRING, OFF(origin_topic), "", 0, 0, "select by original topic"},
	{"since", TK_OPT_STRING, OFF(since), "", 0, 0, "select dead letters failed at or after"},
	{"until", TK_OPT_STRING, OFF(until), "", 0, 0, "select dead letters failed before"},
	{"older_than", TK_OPT_STRING, OFF(older_than), "", 0, 0, "purge age"},
	{"force", TK_OPT_BOOL, OFF(force), "false", 0, 0, "replay again what was replayed"},
	{"all", TK_OPT_BOOL, OFF(all), "false", 0, 0, "select every dead letter"},
	{NULL}
};

static const tk_cli_option dlq_cli[] = {
	{"id", "id", true, ""},
	{"origin-topic", "origin_topic", true, ""},
	{"since", "since", true, ""},
	{"until", "until", true, ""},
	{"older-than", "older_than", true, ""},
	{"force", "force", false, ""},
	{"all", "all", false, ""},
	{NULL}
};

/* one dead letter, from the topic or the table */
typedef struct dead_letter
{
	char		name[48];		/* "p:o" or "db:id" */
	int64_t		failed_us;		/* when it failed (wall clock, us) */
	char	   *error;
	char	   *reason;
	char	   *origin_topic;
	int32_t		origin_partition;	/* -1 unknown */
	int64_t		origin_offset;	/* -1 unknown */
	char	   *key;
	char	   *event_id;
	char	   *event_type;
	char	   *group;
	char	   *payload;		/* the original value, NULL when none */
	size_t		payload_len;
	char	   *outbox_id;		/* relay notices and rows */
	char	   *raw;			/* the envelope or the row, as JSON text */
	bool		from_table;
	int			replays;		/* from dead_letter_replays */
} dead_letter;

typedef struct dl_list
{
	dead_letter *items;
	int			n;
	int			cap;
} dl_list;

static void
usage(FILE *out)
{
	fprintf(out,
			PROGRAM " %s\n"
			"Lists, shows, replays and purges dead letters: messages a service could not\n"
			"handle (topic todo.dead.letter) and outbox rows the relay could not publish\n"
			"(table todo_kafka.dead_letters).\n\n"
			"Usage:\n"
			"  " PROGRAM " [OPTION]... list [--origin-topic=T] [--since=T] [--until=T]\n"
			"  " PROGRAM " [OPTION]... show ID\n"
			"  " PROGRAM " [OPTION]... replay (--id=ID[,ID...] | --origin-topic=T | --since=T | --until=T | --all) [--force]\n"
			"  " PROGRAM " [OPTION]... purge --older-than=AGE\n\n"
			"IDs: \"P:O\" is the message at partition P, offset O of the dead-letter topic;\n"
			"\"db:N\" is row N of todo_kafka.dead_letters (a relay poison row).\n"
			"Times: RFC 3339 (2026-01-22T10:00:00Z) or an age before now (30m, 2h, 7 days).\n\n"
			"Replay sends the original key and value to the original topic and partition\n"
			"(a relay poison row goes back into the outbox) and records it: a second\n"
			"replay of the same dead letter is refused unless --force.  Fix the cause\n"
			"first (a bug in the service, a missing grant); the service handles the\n"
			"replayed message like any other.\n\n"
			"Options:\n"
			"  -d, --dbname=CONNINFO      libpq connection string (env TODO_KAFKA_DB)\n"
			"  -b, --brokers=LIST         Kafka bootstrap servers (env TODO_KAFKA_BROKERS)\n"
			"  -X PROPERTY=VALUE          set any librdkafka property (repeatable)\n"
			"  -c, --config=FILE          read \"key = value\" settings (as the daemons)\n"
			"      --log-level=LEVEL      debug, info, warning (default), error\n"
			"      --force                replay again what was replayed already\n"
			"  -h, --help                 show this help and exit\n\n"
			"Examples:\n"
			"  " PROGRAM " -d dbname=app -b kafka:9092 list\n"
			"  " PROGRAM " -d dbname=app -b kafka:9092 list --origin-topic=todo.audit.log --since=1h\n"
			"  " PROGRAM " -d dbname=app -b kafka:9092 show 0:17\n"
			"  " PROGRAM " -d dbname=app -b kafka:9092 replay --id=0:17,db:3\n"
			"  " PROGRAM " -d dbname=app -b kafka:9092 replay --origin-topic=todo.audit.log --since=2026-01-22T00:00:00Z\n"
			"  " PROGRAM " -d dbname=app -b kafka:9092 purge --older-than='30 days'\n\n"
			"The database role needs todo_kafka_operator (GRANT todo_kafka_operator TO ...).\n"
			"Exit status: 0 done, 1 a failure or a refused replay, 2 usage error.\n",
			TK_VERSION);
}

static int
usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, PROGRAM ": ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry \"" PROGRAM " --help\" for more information.\n");
	return TK_EXIT_USAGE;
}

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
	cJSON_Delete(root);
}

static rd_kafka_conf_t *
kafka_conf(const tk_daemon_config *d, char *err, size_t errlen)
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
static bool
read_topic(const tk_daemon_config *cfg, PGconn *conn, const char *topic, dl_list *out,
		   int64_t *keep_from_cutoff_us, char *keep_json, size_t keep_len)
{
	char		err[512];
	rd_kafka_conf_t *conf = kafka_conf(cfg, err, sizeof(err));
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
static bool
read_table(PGconn *conn, dl_list *out)
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

static void
read_replays(PGconn *conn, dl_list *l)
{
	PGresult   *res = PQexec(conn, "SELECT dead_letter, replays FROM todo_kafka.dlq_replays()");

	for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++)
		for (int k = 0; k < l->n; k++)
			if (strcmp(l->items[k].name, PQgetvalue(res, i, 0)) == 0)
				l->items[k].replays = atoi(PQgetvalue(res, i, 1));
	PQclear(res);
}

/* a time option as wall-clock microseconds (PostgreSQL parses it) */
static bool
resolve_time(PGconn *conn, const char *opt, const char *value, int64_t *us)
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

static void
format_age(int64_t failed_us, char *buf, size_t len)
{
	int64_t		s = failed_us > 0 ? (tk_wall_us() - failed_us) / 1000000 : -1;

	if (s < 0)
		snprintf(buf, len, "?");
	else if (s < 120)
		snprintf(buf, len, "%llds", (long long) s);
	else if (s < 7200)
		snprintf(buf, len, "%lldm", (long long) s / 60);
	else if (s < 172800)
		snprintf(buf, len, "%lldh", (long long) s / 3600);
	else
		snprintf(buf, len, "%lldd", (long long) s / 86400);
}

static bool
matches(const dlq_config *o, const dead_letter *d, int64_t since, int64_t until)
{
	if (o->origin_topic[0] && (d->origin_topic == NULL || strcmp(o->origin_topic, d->origin_topic) != 0))
		return false;
	if (o->since[0] && d->failed_us < since)
		return false;
	if (o->until[0] && d->failed_us >= until)
		return false;
	if (o->ids[0])
	{
		char	   *ids = strdup(o->ids);
		bool		found = false;

		for (char *tok = strtok(ids, ", "); tok && !found; tok = strtok(NULL, ", "))
			found = strcmp(tok, d->name) == 0;
		free(ids);
		return found;
	}
	return true;
}

static void
print_list(const dl_list *l, const dlq_config *o, int64_t since, int64_t until)
{
	int			shown = 0;

	printf("%-10s %-6s %-18s %-40s %-8s %s\n", "ID", "AGE", "ERROR", "ORIGIN", "REPLAYED", "REASON");
	for (int i = 0; i < l->n; i++)
	{
		const dead_letter *d = &l->items[i];
		char		age[16];
		char		origin[256];

		if (!matches(o, d, since, until))
			continue;
		format_age(d->failed_us, age, sizeof(age));
		if (d->origin_partition >= 0)
			snprintf(origin, sizeof(origin), "%s[%d]@%lld", d->origin_topic ? d->origin_topic : "?",
					 (int) d->origin_partition, (long long) d->origin_offset);
		else if (d->outbox_id)
			snprintf(origin, sizeof(origin), "%s (outbox row %s)",
					 d->origin_topic ? d->origin_topic : "?", d->outbox_id);
		else
			snprintf(origin, sizeof(origin), "%s", d->origin_topic ? d->origin_topic : "?");
		char		replayed[16];

		snprintf(replayed, sizeof(replayed), d->replays == 0 ? "no" : d->replays == 1 ? "yes" : "%dx",
				 d->replays);
		printf("%-10s %-6s %-18s %-40s %-8s %s\n", d->name, age, d->error ? d->error : "?", origin,
			   replayed, d->reason ? d->reason : "");
		shown++;
	}
	printf("(%d dead letter%s)\n", shown, shown == 1 ? "" : "s");
}

static void
print_one(const dead_letter *d)
{
	char		age[16];
	cJSON	   *raw = cJSON_Parse(d->raw);
	char	   *pretty = raw ? cJSON_Print(raw) : NULL;

	format_age(d->failed_us, age, sizeof(age));
	printf("id:              %s\n", d->name);
	printf("where:           %s\n", d->from_table ? "table todo_kafka.dead_letters (relay poison row)"
		   : "dead-letter topic");
	printf("age:             %s\n", age);
	printf("error:           %s\n", d->error ? d->error : "");
	printf("reason:          %s\n", d->reason ? d->reason : "");
	printf("origin topic:    %s\n", d->origin_topic ? d->origin_topic : "");
	if (d->origin_partition >= 0)
		printf("origin position: partition %d, offset %lld\n", (int) d->origin_partition,
			   (long long) d->origin_offset);
	if (d->outbox_id)
		printf("outbox row:      %s\n", d->outbox_id);
	printf("key:             %s\n", d->key ? d->key : "(none)");
	printf("event id:        %s\n", d->event_id ? d->event_id : "");
	printf("event type:      %s\n", d->event_type ? d->event_type : "");
	if (d->group)
		printf("consumer group:  %s\n", d->group);
	printf("replayed:        %s", d->replays ? "yes" : "no");
	if (d->replays > 1)
		printf(" (%d times)", d->replays);
	printf("\n%s:\n%s\n", d->from_table ? "row" : "envelope", pretty ? pretty : d->raw);
	if (d->payload)
		printf("original value (%zu bytes):\n%.*s\n", d->payload_len, (int) d->payload_len, d->payload);
	cJSON_free(pretty);
	cJSON_Delete(raw);
}

typedef struct dr_state
{
	volatile bool done;
	rd_kafka_resp_err_t err;
} dr_state;

static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	dr_state   *s = m->_private;

	s->err = m->err;
	s->done = true;
}

/* produce one message and wait for Kafka's acknowledgement */
static bool
produce_acked(rd_kafka_t *rk, const dead_letter *d, char *err, size_t errlen)
{
	dr_state	s = {false, RD_KAFKA_RESP_ERR_NO_ERROR};
	rd_kafka_headers_t *h = rd_kafka_headers_new(4);
	rd_kafka_resp_err_t e;

	rd_kafka_header_add(h, "content-type", -1, "application/cloudevents+json", -1);
	if (d->event_id)
		rd_kafka_header_add(h, "event-id", -1, d->event_id, -1);
	if (d->event_type)
		rd_kafka_header_add(h, "event-type", -1, d->event_type, -1);
	rd_kafka_header_add(h, "dlq-replayed-from", -1, d->name, -1);
	e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(d->origin_topic),
						  RD_KAFKA_V_PARTITION(d->origin_partition >= 0 ? d->origin_partition
											   : RD_KAFKA_PARTITION_UA),
						  RD_KAFKA_V_KEY(d->key, d->key ? strlen(d->key) : 0),
						  RD_KAFKA_V_VALUE(d->payload, d->payload_len),
						  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
						  RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(&s), RD_KAFKA_V_END);
	if (e)
	{
		rd_kafka_headers_destroy(h);
		snprintf(err, errlen, "%s", rd_kafka_err2str(e));
		return false;
	}
	while (!s.done)
		rd_kafka_poll(rk, 50);	/* message.timeout.ms bounds the wait */
	if (s.err)
		snprintf(err, errlen, "%s", rd_kafka_err2str(s.err));
	return !s.err;
}

/* the database's refusal in one line: message, detail, hint */
static void
print_refusal(const char *name, const PGresult *res, PGconn *conn)
{
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);

	fprintf(stderr, "%s: refused: %s%s%s%s%s\n", name,
			primary ? primary : PQerrorMessage(conn),
			detail ? ". " : "", detail ? detail : "", hint ? " " : "", hint ? hint : "");
}

static bool
exec_ok(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);
	bool		ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	PQclear(res);
	return ok;
}

/* one replay; true when done */
static bool
replay_one(PGconn *conn, rd_kafka_t **producer, const tk_daemon_config *cfg,
		   const dead_letter *d, bool force)
{
	char		err[512];
	PGresult   *res;
	const char *params[6];
	char		part[16],
				off[32];

	if (d->from_table)
	{
		const char *id = d->name + 3;

		params[0] = id;
		params[1] = force ? "true" : "false";
		res = PQexecParams(conn, "SELECT todo_kafka.dlq_requeue_outbox($1::bigint, $2::boolean)",
						   2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			print_refusal(d->name, res, conn);
			PQclear(res);
			return false;
		}
		printf("%s: outbox row re-queued as outbox row %s; the relay publishes it to %s\n",
			   d->name, PQgetvalue(res, 0, 0), d->origin_topic);
		PQclear(res);
		return true;
	}
	if (d->payload == NULL || d->origin_topic == NULL)
	{
		const char *hint = "";
		char		hbuf[128] = "";

		if (d->outbox_id)
		{
			snprintf(hbuf, sizeof(hbuf), " It is the relay's notice of outbox row %s, whose "
					 "whole row is kept in todo_kafka.dead_letters: replay that (see list, ids db:N).",
					 d->outbox_id);
			hint = hbuf;
		}
		fprintf(stderr, "%s: refused: the dead letter carries no original message to replay.%s\n",
				d->name, hint);
		return false;
	}
	if (*producer == NULL)
	{
		rd_kafka_conf_t *conf = kafka_conf(cfg, err, sizeof(err));

		if (conf == NULL ||
			!tk_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err)) ||
			!tk_kafka_conf_set(conf, "acks", "all", err, sizeof(err)) ||
			!tk_kafka_conf_set(conf, "message.timeout.ms", "30000", err, sizeof(err)))
		{
			fprintf(stderr, PROGRAM ": %s\n", err);
			return false;
		}
		rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
		if ((*producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))) == NULL)
		{
			fprintf(stderr, PROGRAM ": %s\n", err);
			return false;
		}
	}
	snprintf(part, sizeof(part), "%d", (int) d->origin_partition);
	snprintf(off, sizeof(off), "%lld", (long long) d->origin_offset);
	params[0] = d->name;
	params[1] = d->origin_topic;
	params[2] = d->origin_partition >= 0 ? part : NULL;
	params[3] = d->origin_offset >= 0 ? off : NULL;
	params[4] = d->event_id;
	params[5] = force ? "true" : "false";
	if (!exec_ok(conn, "BEGIN"))
	{
		fprintf(stderr, "%s: %s", d->name, PQerrorMessage(conn));
		return false;
	}
	res = PQexecParams(conn, "SELECT todo_kafka.dlq_claim_replay($1, $2, $3::int, $4::bigint, $5, $6::boolean)",
					   6, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		print_refusal(d->name, res, conn);
		PQclear(res);
		exec_ok(conn, "ROLLBACK");
		return false;
	}
	PQclear(res);
	if (!produce_acked(*producer, d, err, sizeof(err)))
	{
		fprintf(stderr, "%s: Kafka did not take the replay (%s); nothing recorded\n", d->name, err);
		exec_ok(conn, "ROLLBACK");
		return false;
	}
	if (!exec_ok(conn, "COMMIT"))
	{
		fprintf(stderr, "%s: replayed, but recording it failed: %s", d->name, PQerrorMessage(conn));
		return false;
	}
	printf("%s: replayed to %s[%d] (key %s)\n", d->name, d->origin_topic,
		   (int) d->origin_partition, d->key ? d->key : "none");
	return true;
}

int
main(int argc, char **argv)
{
	tk_daemon_spec spec;
	tk_cli		cli;
	tk_daemon_config cfg;
	dlq_config	o;
	void	   *own[1] = {&o};
	char		err[1024];
	char	  **args = calloc(argc + 1, sizeof(char *));
	int			nargs = 0;
	const char *command = NULL;
	const char *show_id = NULL;
	PGconn	   *conn;
	char		topic[256];
	dl_list		l = {0};
	int64_t		since = 0,
				until = 0;
	int			rc = TK_EXIT_OK;

	if (args == NULL)
		return TK_EXIT_FAILURE;
	/* the command and its argument; the options go to the shared parser */
	args[nargs++] = argv[0];
	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
		{
			usage(stdout);
			return TK_EXIT_OK;
		}
		if (argv[i][0] == '-')
		{
			args[nargs++] = argv[i];
			/* an option's separate argument */
			if ((strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "-b") == 0 ||
				 strcmp(argv[i], "-X") == 0 || strcmp(argv[i], "-c") == 0 ||
				 (strncmp(argv[i], "--", 2) == 0 && strchr(argv[i], '=') == NULL &&
				  strcmp(argv[i], "--force") != 0 && strcmp(argv[i], "--all") != 0 &&
				  strcmp(argv[i], "--version") != 0 && strcmp(argv[i], "--show-config") != 0)) &&
				i + 1 < argc)
				args[nargs++] = argv[++i];
		}
		else if (command == NULL)
			command = argv[i];
		else if (strcmp(command, "show") == 0 && show_id == NULL)
			show_id = argv[i];
		else
			return usage_error("unexpected argument \"%s\"", argv[i]);
	}
	if (command == NULL)
		return usage_error("%s", "no command given: list, show, replay or purge");
	if (strcmp(command, "list") != 0 && strcmp(command, "show") != 0 &&
		strcmp(command, "replay") != 0 && strcmp(command, "purge") != 0)
		return usage_error("unknown command \"%s\": expected list, show, replay or purge", command);
	if (strcmp(command, "show") == 0 && show_id == NULL)
		return usage_error("%s", "show needs the ID of a dead letter (see list)");

	memset(&spec, 0, sizeof(spec));
	spec.program = PROGRAM;
	spec.summary = "the operator's dead-letter tool";
	spec.version = TK_VERSION;
	spec.tables[0] = dlq_options;
	spec.cli_options = dlq_cli;
	rc = tk_cli_parse(&spec, nargs, args, &cli);
	if (rc >= 0)
		return rc;
	rc = TK_EXIT_OK;
	memset(&o, 0, sizeof(o));
	if (!tk_daemon_config_load(&spec, &cli, &cfg, own, err, sizeof(err)))
		return usage_error("%s", err);
	if (tk_kvlist_get(&cli.settings, "log_level") == NULL)
		cfg.log_level = TK_LOG_WARNING;	/* a tool: quiet unless asked */
	tk_log_set_level(cfg.log_level);
	if (strcmp(command, "replay") == 0 && !o.ids[0] && !o.origin_topic[0] && !o.since[0] &&
		!o.until[0] && !o.all)
		return usage_error("%s", "replay needs a selection: --id, --origin-topic, --since, --until or --all");
	if (strcmp(command, "purge") == 0 && !o.older_than[0])
		return usage_error("%s", "purge needs --older-than=AGE, e.g. --older-than='30 days'");

	conn = tk_pg_connect(cfg.conninfo, PROGRAM);
	if (conn == NULL)
	{
		fprintf(stderr, PROGRAM ": cannot connect to the database\n");
		return TK_EXIT_FAILURE;
	}
	if (!tk_pg_exec_value(conn, "SELECT todo_kafka.topic_of('dead_letter')", topic, sizeof(topic)))
	{
		fprintf(stderr, PROGRAM ": cannot learn the dead-letter topic: %s"
				"hint: the role needs todo_kafka_operator and the extension 0.4.0\n",
				PQerrorMessage(conn));
		PQfinish(conn);
		return TK_EXIT_FAILURE;
	}
	if ((o.since[0] && !resolve_time(conn, "since", o.since, &since)) ||
		(o.until[0] && !resolve_time(conn, "until", o.until, &until)))
	{
		PQfinish(conn);
		return TK_EXIT_USAGE;
	}

	if (strcmp(command, "purge") == 0)
	{
		int64_t		cutoff;
		char		keep[4096];
		const char *params[3] = {o.older_than, topic, keep};
		PGresult   *res;

		if (!resolve_time(conn, "older-than", o.older_than, &cutoff))
		{
			PQfinish(conn);
			return TK_EXIT_USAGE;
		}
		if (!read_topic(&cfg, conn, topic, &l, &cutoff, keep, sizeof(keep)))
		{
			PQfinish(conn);
			return TK_EXIT_FAILURE;
		}
		res = PQexecParams(conn, "SELECT todo_kafka.dlq_purge($1::interval, $2, $3::jsonb)",
						   3, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			fprintf(stderr, PROGRAM ": purge failed: %s", PQerrorMessage(conn));
			rc = TK_EXIT_FAILURE;
		}
		else
		{
			int			gone = 0;

			for (int i = 0; i < l.n; i++)
				gone += l.items[i].failed_us < cutoff;
			printf("purged %d dead letter%s of topic %s and %s row%s of todo_kafka.dead_letters "
				   "older than %s\n(the topic's retention deletes the messages themselves)\n",
				   gone, gone == 1 ? "" : "s", topic, PQgetvalue(res, 0, 0),
				   strcmp(PQgetvalue(res, 0, 0), "1") == 0 ? "" : "s", o.older_than);
		}
		PQclear(res);
		PQfinish(conn);
		return rc;
	}

	if (!read_topic(&cfg, conn, topic, &l, NULL, NULL, 0) || !read_table(conn, &l))
	{
		PQfinish(conn);
		return TK_EXIT_FAILURE;
	}
	read_replays(conn, &l);

	if (strcmp(command, "list") == 0)
		print_list(&l, &o, since, until);
	else if (strcmp(command, "show") == 0)
	{
		rc = TK_EXIT_FAILURE;
		for (int i = 0; i < l.n; i++)
			if (strcmp(l.items[i].name, show_id) == 0)
			{
				print_one(&l.items[i]);
				rc = TK_EXIT_OK;
			}
		if (rc != TK_EXIT_OK)
			fprintf(stderr, PROGRAM ": no dead letter \"%s\" (see list)\n", show_id);
	}
	else
	{
		rd_kafka_t *producer = NULL;
		int			done = 0,
					failed = 0;

		for (int i = 0; i < l.n; i++)
			if (matches(&o, &l.items[i], since, until))
			{
				if (replay_one(conn, &producer, &cfg, &l.items[i], o.force))
					done++;
				else
					failed++;
			}
		if (o.ids[0])
		{
			/* name every id that matched nothing */
			char	   *ids = strdup(o.ids);

			for (char *tok = strtok(ids, ", "); tok; tok = strtok(NULL, ", "))
			{
				bool		found = false;

				for (int i = 0; i < l.n && !found; i++)
					found = strcmp(l.items[i].name, tok) == 0;
				if (!found)
				{
					fprintf(stderr, "%s: no such dead letter (see list)\n", tok);
					failed++;
				}
			}
			free(ids);
		}
		printf("replayed %d, refused or failed %d\n", done, failed);
		if (producer)
		{
			rd_kafka_flush(producer, 10000);
			rd_kafka_destroy(producer);
		}
		if (failed > 0)
			rc = TK_EXIT_FAILURE;
	}
	PQfinish(conn);
	return rc;
}
