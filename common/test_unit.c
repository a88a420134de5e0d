/*-------------------------------------------------------------------------
 *
 * test_unit.c
 *	  unit tests of the pure common code, TAP output
 *
 * No PostgreSQL, no Kafka: config file parsing and redaction, backoff,
 * the RFC 3339 parser, the histogram, the CloudEvents builder
 * (fan-out, ids, types, task_updates diff), and the plain-words mapping of
 * librdkafka's connection errors (kafka_errors.c).  Run by "make -C common check"
 * and by tests/100_unit.pl.
 *
 * IDENTIFICATION
 *	  common/test_unit.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "backoff.h"
#include "clock.h"
#include "config.h"
#include "kafka_errors.h"
#include "messages/cloudevents.h"
#include "messages/dead_letter.h"
#include "prom.h"
#include "strbuf.h"
#include "test_json.h"
#include "test_tap.h"

/* ---- config ---- */

typedef struct kv_seen
{
	char		text[1024];
} kv_seen;

static const char *
collect(void *arg, const char *key, const char *value, char *errbuf, size_t errlen)
{
	kv_seen    *s = arg;

	if (strcmp(key, "reject") == 0)
	{
		snprintf(errbuf, errlen, "rejected \"%s\"", value);
		return errbuf;
	}
	snprintf(s->text + strlen(s->text), sizeof(s->text) - strlen(s->text),
			 "[%s=%s]", key, value);
	return NULL;
}

static void
test_config(void)
{
	kv_seen		s = {""};
	char		err[256];

	ok(tk_config_parse_text("# c\n a = 1 \n\nb=two words # note\nc = \"  q #x \"\n"
							"pw = ab#cd\nkafka.sasl.password=p\n",
							"f.conf", collect, &s, err, sizeof(err)),
	   "config: valid text parses");
	ok(strcmp(s.text, "[a=1][b=two words][c=  q #x ][pw=ab#cd][kafka.sasl.password=p]") == 0,
	   "config: values trimmed, comments stripped, quotes kept");
	ok(!tk_config_parse_text("a = 1\nnovalue\n", "f.conf", collect, &s, err, sizeof(err)) &&
	   strcmp(err, "f.conf:2: syntax error: expected \"key = value\"") == 0,
	   "config: syntax error names path:line");
	ok(!tk_config_parse_text("reject = x\n", "g.conf", collect, &s, err, sizeof(err)) &&
	   strcmp(err, "g.conf:1: rejected \"x\"") == 0,
	   "config: setter errors name path:line");
	ok(!tk_config_parse_text("c = \"open\n", "h", collect, &s, err, sizeof(err)) &&
	   strstr(err, "unterminated") != NULL, "config: unterminated quote");
	ok(!tk_config_parse_text(" = 3\n", "h", collect, &s, err, sizeof(err)),
	   "config: missing key");
	ok(tk_config_is_secret("sasl.password") && tk_config_is_secret("ssl.key.password") &&
	   tk_config_is_secret("ssl.key.pem") && tk_config_is_secret("sasl.oauthbearer.config") &&
	   tk_config_is_secret("sasl.oauthbearer.client.secret") &&
	   !tk_config_is_secret("sasl.username") && !tk_config_is_secret("linger.ms"),
	   "config: secret names recognized");
	ok(strcmp(tk_config_display_value("sasl.password", "x"), "[redacted]") == 0,
	   "config: secrets displayed redacted");
	{
		long		v;
		bool		b;

		ok(tk_config_parse_int("42", 0, 100, &v) && v == 42 &&
		   !tk_config_parse_int("101", 0, 100, &v) && !tk_config_parse_int("4x", 0, 100, &v),
		   "config: integers with range");
		ok(tk_config_parse_bool("on", &b) && b && tk_config_parse_bool("false", &b) && !b &&
		   !tk_config_parse_bool("maybe", &b), "config: booleans");
	}
}

/* ---- backoff ---- */

static void
test_backoff(void)
{
	tk_backoff	b;
	int			prev = 0;
	bool		capped = true;
	bool		grows = true;

	ok(tk_backoff_delay(0, 100, 10000, 0) == 50 && tk_backoff_delay(0, 100, 10000, 0.999999) == 99,
	   "backoff: first delay is base * [0.5, 1)");
	ok(tk_backoff_delay(3, 100, 10000, 0) == 400, "backoff: doubles per attempt");
	ok(tk_backoff_delay(40, 100, 10000, 0.999999) <= 10000 &&
	   tk_backoff_delay(40, 100, 10000, 0) == 5000, "backoff: capped");
	tk_backoff_init(&b, 100, 3000, 42);
	for (int i = 0; i < 20; i++)
	{
		int			d = tk_backoff_next(&b);

		if (d > 3000 || d < 50)
			capped = false;
		if (i < 4 && d < prev / 2)
			grows = false;
		prev = d;
	}
	ok(capped, "backoff: next() stays within [base/2, max]");
	ok(grows, "backoff: next() grows");
	tk_backoff_reset(&b);
	ok(tk_backoff_next(&b) < 100, "backoff: reset starts over");
}

/* ---- clock and histogram ---- */

static void
test_clock_hist(void)
{
	tk_histogram h;

	ok(tk_parse_rfc3339_us("1970-01-01T00:00:01.5Z") == 1500000, "clock: fraction parsed");
	ok(tk_parse_rfc3339_us("2026-01-22T10:00:00.000001Z") == 1769076000000001LL,
	   "clock: RFC 3339 to microseconds");
	ok(tk_parse_rfc3339_us("garbage") == 0, "clock: garbage is 0");
	{
		/* against timegm over leap years, month ends and centuries */
		bool		same = true;
		const char *days[] = {"1970-01-01", "1999-12-31", "2000-02-29", "2000-03-01",
		"2024-02-29", "2026-12-31", "2100-03-01", "2038-01-19"};

		for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++)
		{
			struct tm	tm;
			char		ts[40];

			memset(&tm, 0, sizeof(tm));
			sscanf(days[i], "%d-%d-%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
			tm.tm_year -= 1900;
			tm.tm_mon -= 1;
			tm.tm_hour = 23;
			tm.tm_min = 59;
			tm.tm_sec = 58;
			snprintf(ts, sizeof(ts), "%sT23:59:58.25Z", days[i]);
			if (tk_parse_rfc3339_us(ts) != (int64_t) timegm(&tm) * 1000000 + 250000)
				same = false;
		}
		ok(same, "clock: RFC 3339 parser agrees with timegm");
	}
	memset(&h, 0, sizeof(h));
	for (int i = 0; i < 99; i++)
		tk_hist_observe(&h, 0.004);
	tk_hist_observe(&h, 0.2);
	ok(h.count == 100 && tk_hist_quantile(&h, 0.5) == 0.005 && tk_hist_quantile(&h, 1.0) == 0.2,
	   "histogram: quantiles from buckets, max exact");
}

/* ---- cloudevents ---- */

static cJSON *
value_of(const tk_message *m)
{
	return cJSON_Parse(m->value);
}

static const char *
hdr(const tk_message *m, const char *name)
{
	for (int i = 0; i < m->nheaders; i++)
		if (strcmp(m->headers[i].name, name) == 0)
			return m->headers[i].value;
	return NULL;
}

static void
test_cloudevents(void)
{
	tk_message_list l;
	char		err[256];
	tk_outbox_row row = {
		.id = "7", .xid = "1234", .event_id = "e1", .kind = "change",
		.stream = "task_events", .event_type = "updated",
		.source = "todo_kafka.tasks", .key = "t1", .user_id = "alice",
		.actor = "app", .db_role = "tk_app", .correlation_id = "c1", .traceparent = NULL,
		.before = "{\"title\":\"a\",\"priority\":\"low\",\"completed\":false,\"tags\":[\"x\",\"y\"],\"updated_at\":\"1\"}",
		.after = "{\"title\":\"b\",\"priority\":\"high\",\"completed\":true,\"tags\":[\"y\",\"z\"],\"updated_at\":\"2\"}",
		.changed = "[\"title\",\"priority\",\"completed\",\"tags\",\"updated_at\"]",
		.headers = NULL, .occurred_at = "2026-01-22T10:00:00.000001Z"
	};
	cJSON	   *v;
	int			n;

	tk_message_list_init(&l);
	n = tk_ce_build(&row, &l, err, sizeof(err));
	/* task event, audit, title, priority, completed, tag_added z, tag_removed x */
	ok(n == 7, "ce: update fans out to 7 messages");
	if (n != 7)
		return;
	v = value_of(&l.msgs[0]);
	ok(strcmp(l.msgs[0].stream, "task_events") == 0 &&
	   strcmp(jstr(v, "type", NULL), "task.updated") == 0 &&
	   strcmp(jstr(v, "id", NULL), "e1") == 0 &&
	   strcmp(jstr(v, "specversion", NULL), "1.0") == 0 &&
	   strcmp(jstr(v, "source", NULL), "/todo_kafka/todo_kafka.tasks") == 0 &&
	   strcmp(jstr(v, "subject", NULL), "t1") == 0 &&
	   strcmp(jstr(v, "time", NULL), "2026-01-22T10:00:00.000001Z") == 0 &&
	   strcmp(jstr(v, "data", "task_id"), "t1") == 0 &&
	   cJSON_GetObjectItemCaseSensitive(v, "traceparent") == NULL,
	   "ce: task event envelope");
	ok(strcmp(jstr(cJSON_GetObjectItemCaseSensitive(v, "data"), "task_data", "title"), "b") == 0,
	   "ce: task_data is the after image");
	cJSON_Delete(v);
	{
		/* every message: partitionkey = Kafka key (row->key), its schema */
		const char *schema[] = {"task-events", "audit", "task-updates", "task-updates",
		"task-updates", "task-updates", "task-updates"};
		bool		good = true;

		for (int i = 0; i < 7; i++)
		{
			char		want[128];

			v = value_of(&l.msgs[i]);
			snprintf(want, sizeof(want), "https://todo-kafka.dev/schemas/%s.v1.json", schema[i]);
			if (jstr(v, "partitionkey", NULL) == NULL ||
				strcmp(jstr(v, "partitionkey", NULL), "t1") != 0 ||
				jstr(v, "dataschema", NULL) == NULL ||
				strcmp(jstr(v, "dataschema", NULL), want) != 0)
			{
				good = false;
				printf("# message %d: %s\n", i, l.msgs[i].value);
			}
			cJSON_Delete(v);
		}
		ok(good, "ce: partitionkey is the Kafka key and dataschema names the schema, in every message");
	}
	ok(strcmp(hdr(&l.msgs[0], "content-type"), "application/cloudevents+json") == 0 &&
	   strcmp(hdr(&l.msgs[0], "event-id"), "e1") == 0 &&
	   strcmp(hdr(&l.msgs[0], "event-type"), "task.updated") == 0 &&
	   strcmp(hdr(&l.msgs[0], "correlation-id"), "c1") == 0 &&
	   hdr(&l.msgs[0], "traceparent") == NULL, "ce: headers");

	v = value_of(&l.msgs[1]);
	ok(strcmp(l.msgs[1].stream, "audit") == 0 &&
	   strcmp(jstr(v, "id", NULL), "e1:audit") == 0 &&
	   strcmp(jstr(v, "type", NULL), "audit.updated") == 0 &&
	   strcmp(jstr(v, "data", "operation"), "UPDATE") == 0 &&
	   strcmp(jstr(v, "data", "table"), "todo_kafka.tasks") == 0 &&
	   strcmp(jstr(v, "data", "db_role"), "tk_app") == 0 &&
	   strstr(l.msgs[1].value, "\"actor\":\"app\",\"db_role\":\"tk_app\",") != NULL &&
	   cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(v, "data"), "txid")->valuedouble == 1234,
	   "ce: audit record, db_role right after actor");
	cJSON_Delete(v);

	/* the outbox keeps only the changed columns in an UPDATE's before image */
	{
		tk_outbox_row partial = row;
		const char *full = "\"before\":{\"id\":\"t1\",\"title\":\"a \\\"q\\\"\",\"n\":1,\"tags\":[\"x\"]}";
		int			m;

		partial.after = "{\"id\":\"t1\",\"title\":\"b\",\"n\":1,\"tags\":[\"x\"]}";
		partial.before = "{\"title\":\"a \\\"q\\\"\"}";
		partial.changed = "[\"title\"]";
		tk_message_list_clear(&l);
		m = tk_ce_build(&partial, &l, err, sizeof(err));
		ok(m == 3 && strstr(l.msgs[1].value, full) != NULL,
		   "ce: audit before image completed from the after image, in column order");
		partial.before = "{\"id\":\"t1\",\"title\":\"a\",\"n\":1,\"tags\":[\"x\"]}";
		tk_message_list_clear(&l);
		m = tk_ce_build(&partial, &l, err, sizeof(err));
		ok(m == 3 && strstr(l.msgs[1].value,
							"\"before\":{\"id\":\"t1\",\"title\":\"a\",\"n\":1,\"tags\":[\"x\"]}") != NULL,
		   "ce: a full before image comes out unchanged");
		tk_message_list_clear(&l);
		m = tk_ce_build(&row, &l, err, sizeof(err));
		ok(m == 7, "ce: rebuild the first row");
	}

	{
		const char *want[][4] = {
			{"e1:update:0", "task.field_updated", "title", "b"},
			{"e1:update:1", "task.priority_changed", "priority", "high"},
			{"e1:update:2", "task.status_changed", "completed", NULL},
			{"e1:update:3", "task.tag_added", "tags", "z"},
			{"e1:update:4", "task.tag_removed", "tags", NULL},
		};
		bool		good = true;

		for (int i = 0; i < 5; i++)
		{
			v = value_of(&l.msgs[2 + i]);
			if (strcmp(l.msgs[2 + i].stream, "task_updates") != 0 ||
				strcmp(jstr(v, "id", NULL), want[i][0]) != 0 ||
				strcmp(jstr(v, "type", NULL), want[i][1]) != 0 ||
				strcmp(jstr(v, "data", "field_changed"), want[i][2]) != 0 ||
				(want[i][3] && strcmp(jstr(v, "data", "new_value"), want[i][3]) != 0) ||
				strcmp(jstr(v, "data", "changed_by"), "app") != 0)
			{
				good = false;
				printf("# mismatch at update %d: %s\n", i, l.msgs[2 + i].value);
			}
			cJSON_Delete(v);
		}
		ok(good, "ce: task_updates ids, types, fields in order; updated_at skipped");
		v = value_of(&l.msgs[6]);
		ok(strcmp(jstr(v, "data", "previous_value"), "x") == 0 &&
		   cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(v, "data"), "new_value")),
		   "ce: tag_removed has previous tag and null new value");
		cJSON_Delete(v);
	}
	tk_message_list_clear(&l);

	/* resend: identical bytes */
	{
		tk_message_list l2;
		bool		same;

		tk_message_list_init(&l2);
		tk_ce_build(&row, &l, err, sizeof(err));
		tk_ce_build(&row, &l2, err, sizeof(err));
		same = l.n == l2.n;
		for (int i = 0; same && i < l.n; i++)
			same = strcmp(l.msgs[i].value, l2.msgs[i].value) == 0;
		ok(same, "ce: building a row twice gives identical messages");
		tk_message_list_free(&l2);
		tk_message_list_clear(&l);
	}

	/* custom */
	row.kind = "custom";
	row.stream = "billing";
	row.event_type = "custom.thing";
	row.source = "publish";
	row.after = "{\"a\": 1}";
	row.before = NULL;
	row.changed = NULL;
	row.traceparent = "00-aa-bb-01";
	row.headers = "{\"x-tenant\":\"acme\",\"event-id\":\"spoof\",\"n\":5}";
	n = tk_ce_build(&row, &l, err, sizeof(err));
	v = n == 1 ? value_of(&l.msgs[0]) : NULL;
	ok(n == 1 && strcmp(jstr(v, "type", NULL), "custom.thing") == 0 &&
	   cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(v, "data"), "a")->valuedouble == 1 &&
	   strcmp(jstr(v, "traceparent", NULL), "00-aa-bb-01") == 0 &&
	   strcmp(jstr(v, "source", NULL), "/todo_kafka/publish") == 0,
	   "ce: custom event: one message, data as published");
	ok(n == 1 && cJSON_GetObjectItemCaseSensitive(v, "dataschema") == NULL &&
	   strcmp(jstr(v, "partitionkey", NULL), "t1") == 0,
	   "ce: custom stream: partitionkey, no dataschema");
	ok(n == 1 && strcmp(hdr(&l.msgs[0], "x-tenant"), "acme") == 0 &&
	   strcmp(hdr(&l.msgs[0], "event-id"), "e1") == 0 &&
	   strcmp(hdr(&l.msgs[0], "n"), "5") == 0 &&
	   strcmp(hdr(&l.msgs[0], "traceparent"), "00-aa-bb-01") == 0,
	   "ce: custom headers added, reserved ones not overridden");
	cJSON_Delete(v);
	tk_message_list_clear(&l);

	/* reminders */
	row.kind = "reminder";
	row.stream = "reminders";
	row.event_type = "sent";
	row.headers = NULL;
	n = tk_ce_build(&row, &l, err, sizeof(err));
	ok(n == 1 && strcmp(l.msgs[0].type, "task.reminder") == 0 &&
	   strstr(l.msgs[0].value, "\"dataschema\":\"https://todo-kafka.dev/schemas/reminders.v1.json\"") != NULL,
	   "ce: sent reminder is task.reminder, with the reminders schema");
	tk_message_list_clear(&l);
	row.event_type = "scheduled";
	n = tk_ce_build(&row, &l, err, sizeof(err));
	ok(n == 1 && strcmp(l.msgs[0].type, "reminder.scheduled") == 0, "ce: scheduled reminder type");
	tk_message_list_clear(&l);

	/* insert: no updates; bad kind */
	row.kind = "change";
	row.stream = "task_events";
	row.event_type = "created";
	row.changed = NULL;
	n = tk_ce_build(&row, &l, err, sizeof(err));
	v = n == 2 ? value_of(&l.msgs[1]) : NULL;
	ok(n == 2 && strcmp(jstr(v, "data", "operation"), "INSERT") == 0, "ce: insert gives task event + audit");
	cJSON_Delete(v);
	tk_message_list_clear(&l);
	row.kind = "weird";
	ok(tk_ce_build(&row, &l, err, sizeof(err)) == -1 && l.n == 0 && strstr(err, "unknown kind"),
	   "ce: unknown kind is refused");

	row.kind = "change";
	n = tk_ce_build_dead_letter(&row, "topic.x", "e1:audit", "audit.created", 123456,
								"MSG_SIZE_TOO_LARGE", "too large", &l);
	v = n == 1 ? value_of(&l.msgs[0]) : NULL;
	ok(n == 1 && strcmp(l.msgs[0].stream, "dead_letter") == 0 &&
	   strcmp(hdr(&l.msgs[0], "dlq-reason"), "too large") == 0 &&
	   strcmp(hdr(&l.msgs[0], "dlq-origin-topic"), "topic.x") == 0 &&
	   strcmp(jstr(v, "id", NULL), "e1:audit:dead-letter") == 0 &&
	   strcmp(jstr(v, "data", "error"), "MSG_SIZE_TOO_LARGE") == 0 &&
	   strcmp(jstr(v, "partitionkey", NULL), "t1") == 0 &&
	   strcmp(jstr(v, "dataschema", NULL), "https://todo-kafka.dev/schemas/dead-letter.v1.json") == 0,
	   "ce: dead-letter envelope");
	ok(n == 1 && strcmp(jstr(v, "data", "origin"), "outbox_row") == 0 &&
	   strcmp(hdr(&l.msgs[0], "dlq-origin"), "outbox_row") == 0,
	   "ce: the relay's dead letter says its origin is an outbox row");
	cJSON_Delete(v);
	tk_message_list_free(&l);
}

/*
 * The hand-written JSON (no cJSON trees since the relay's performance work):
 * every message must parse, strings must round-trip through the escaper,
 * row images are spliced, tags with escapes diff by their string value.
 */
static void
test_cloudevents_json(void)
{
	tk_message_list l;
	char		err[256];
	const char *odd = "q\"uote \\ back\nnl\ttab\001ctl \xc3\xa9t\xc3\xa9 /";
	tk_outbox_row row = {
		.id = "8", .xid = "99", .event_id = "e2", .kind = "change",
		.stream = "task_events", .event_type = "updated",
		.source = "/todo_kafka/app.items", .key = "k\"1", .user_id = NULL,
		.actor = odd, .correlation_id = odd, .traceparent = "tp",
		.before = "{\"n\": 1.50, \"tags\": [\"a\\\"b\", \"x\", \"x\", 3], \"o\": {\"k\": [1, {\"z\": null}]}, \"s\": \"caf\\u00e9\"}",
		.after = "{\"n\": 2, \"tags\": [\"x\", \"\\u0079\", \"y\"], \"o\": null, \"s\": \"caf\u00e9\"}",
		.changed = "[\"n\", \"tags\", \"o\", \"s\"]",
		.headers = NULL, .occurred_at = "2026-01-22T10:00:00.000001Z"
	};
	tk_message_list one;
	bool		all_parse = true;
	cJSON	   *v;
	int			n;

	tk_message_list_init(&l);
	tk_message_list_init(&one);
	{
		tk_strbuf	sb;
		cJSON	   *j;

		tk_strbuf_init(&sb);
		tk_strbuf_json_string(&sb, odd);
		j = cJSON_Parse(sb.data);
		ok(cJSON_IsString(j) && strcmp(j->valuestring, odd) == 0 &&
		   strstr(sb.data, "\\u0001") != NULL, "json: escaper round-trips quotes, controls, UTF-8");
		cJSON_Delete(j);
		tk_strbuf_reset(&sb);
		tk_strbuf_json_string(&sb, NULL);
		ok(strcmp(sb.data, "null") == 0, "json: NULL string is null");
		tk_strbuf_free(&sb);
	}

	/* n, tag_added y (once: \u0079 and y are the same), tag_removed a"b, o, s */
	n = tk_ce_build(&row, &l, err, sizeof(err));
	for (int i = 0; i < l.n; i++)
	{
		cJSON	   *x = value_of(&l.msgs[i]);

		if (x == NULL || strlen(l.msgs[i].value) != l.msgs[i].value_len)
		{
			all_parse = false;
			printf("# not JSON: %s\n", l.msgs[i].value);
		}
		cJSON_Delete(x);
	}
	ok(n == 7 && all_parse, "json: every message of an odd row parses");
	if (n != 7)
	{
		printf("# n = %d (%s)\n", n, n < 0 ? err : "");
		for (int i = 0; i < l.n; i++)
			printf("# %s\n", l.msgs[i].value);
		tk_message_list_free(&l);
		return;
	}
	v = value_of(&l.msgs[0]);
	ok(strcmp(jstr(v, "actor", NULL), odd) == 0 &&
	   strcmp(jstr(v, "correlationid", NULL), odd) == 0 &&
	   strcmp(jstr(v, "subject", NULL), "k\"1") == 0 &&
	   strcmp(jstr(v, "source", NULL), "/todo_kafka/app.items") == 0 &&
	   cJSON_GetObjectItemCaseSensitive(v, "userid") == NULL &&
	   strcmp(hdr(&l.msgs[0], "correlation-id"), odd) == 0 &&
	   strcmp(hdr(&l.msgs[0], "traceparent"), "tp") == 0,
	   "json: envelope strings round-trip; no userid when NULL");
	cJSON_Delete(v);
	v = value_of(&l.msgs[1]);
	ok(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(v, "data"), "txid")->valuedouble == 99 &&
	   strcmp(jstr(v, "data", "table"), "app.items") == 0 &&
	   cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(v, "data"), "user_id")) &&
	   cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(v, "data"), "db_role")),
	   "json: audit txid is a number, table from source, null user_id and db_role");
	cJSON_Delete(v);
	{
		const char *want[][3] = {
			{"task.field_updated", "n", NULL},
			{"task.tag_added", "tags", "y"},
			{"task.tag_removed", "tags", "a\"b"},
			{"task.field_updated", "o", NULL},
			{"task.field_updated", "s", NULL},
		};
		bool		good = true;

		for (int i = 0; i < 5; i++)
		{
			cJSON	   *d;

			v = value_of(&l.msgs[2 + i]);
			d = cJSON_GetObjectItemCaseSensitive(v, "data");
			if (strcmp(jstr(v, "type", NULL), want[i][0]) != 0 ||
				strcmp(jstr(d, "field_changed", NULL), want[i][1]) != 0 ||
				(i == 1 && strcmp(jstr(d, "new_value", NULL), want[i][2]) != 0) ||
				(i == 2 && strcmp(jstr(d, "previous_value", NULL), want[i][2]) != 0) ||
				(i == 0 && (cJSON_GetObjectItemCaseSensitive(d, "previous_value")->valuedouble != 1.5 ||
							cJSON_GetObjectItemCaseSensitive(d, "new_value")->valuedouble != 2)) ||
				(i == 3 && (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(d, "previous_value")) ||
							!cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(d, "new_value")))) ||
				(i == 4 && strcmp(jstr(d, "new_value", NULL), "caf\u00e9") != 0))
			{
				good = false;
				printf("# mismatch at update %d: %s\n", i, l.msgs[2 + i].value);
			}
			cJSON_Delete(v);
		}
		ok(good, "json: values spliced (numbers, objects, null); tags diffed by string value");
	}

	/* appending a second row keeps the first row's messages intact */
	{
		tk_outbox_row ins = row;
		char	   *first = strdup(l.msgs[0].value);

		ins.before = NULL;
		ins.changed = NULL;
		ins.event_type = "created";
		n = tk_ce_build(&ins, &l, err, sizeof(err));
		ok(n == 2 && l.n == 9 && strcmp(l.msgs[0].value, first) == 0 &&
		   strcmp(l.msgs[8].id, "e2:audit") == 0 &&
		   strcmp(hdr(&l.msgs[0], "event-id"), "e2") == 0,
		   "json: a second row appends, earlier messages stay valid");
		free(first);
	}

	/* malformed images: poison, nothing appended */
	row.after = "{\"n\": 2, \"tags\": [\"x\"";
	n = tk_ce_build(&row, &l, err, sizeof(err));
	ok(n == -1 && l.n == 9 && strstr(err, "malformed"), "json: malformed after image is refused");
	row.after = "{\"n\": 2} trailing";
	ok(tk_ce_build(&row, &one, err, sizeof(err)) == -1 && one.n == 0,
	   "json: trailing garbage is refused");
	tk_message_list_free(&one);
	tk_message_list_free(&l);
}

/* ---- Kafka errors in plain words ---- */

static void
test_kafka_errors(void)
{
	tk_kvlist	props = {NULL, 0};
	char		msg[1024];
	tk_kafka_problem k;

	tk_kvlist_set(&props, "bootstrap.servers", "kafka-1:9093,kafka-2:9093");
	tk_kvlist_set(&props, "security.protocol", "SASL_SSL");
	tk_kvlist_set(&props, "sasl.mechanism", "SCRAM-SHA-512");
	tk_kvlist_set(&props, "sasl.username", "relay");
	tk_kvlist_set(&props, "sasl.password", "s3cret-pw");
	tk_kvlist_set(&props, "ssl.ca.location", "/etc/kafka/ca.pem");

	/* the line the relay used to repeat every second, from the log callback */
	k = tk_kafka_explain(0, "[thrd:sasl_ssl://kafka-1:9093/bootstrap]: sasl_ssl://kafka-1:9093/bootstrap: "
						 "SASL authentication error: SaslAuthenticateRequest failed: Local: Broker transport failure "
						 "(after 3ms in state AUTH_REQ)", &props, msg, sizeof(msg));
	ok(k == TK_KAFKA_AUTH, "kafka: SASL failure is an auth problem");
	ok(strstr(msg, "sasl_ssl://kafka-1:9093") && !strstr(msg, "bootstrap]") &&
	   strstr(msg, "user \"relay\"") && strstr(msg, "SCRAM-SHA-512") &&
	   strstr(msg, "check sasl.username / sasl.password"),
	   "kafka: auth message names broker, user, mechanism and the fix");
	ok(!strstr(msg, "s3cret-pw"), "kafka: the password is never in the message");

	k = tk_kafka_explain(RD_KAFKA_RESP_ERR__AUTHENTICATION,
						 "sasl_ssl://kafka-2:9093/2: SASL authentication error: Authentication failed during "
						 "authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512",
						 &props, msg, sizeof(msg));
	ok(k == TK_KAFKA_AUTH && strstr(msg, "sasl_ssl://kafka-2:9093 ") != NULL,
	   "kafka: error event with a broker id names the broker");

	k = tk_kafka_explain(RD_KAFKA_RESP_ERR__SSL,
						 "ssl://kafka-1:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::"
						 "certificate verify failed: broker certificate could not be verified, verify that "
						 "ssl.ca.location is correctly configured or root CA certificates are installed "
						 "(after 4ms in state SSL_HANDSHAKE)", &props, msg, sizeof(msg));
	ok(k == TK_KAFKA_TLS_CA &&
	   strstr(msg, "the broker's certificate is not signed by ssl.ca.location (/etc/kafka/ca.pem)"),
	   "kafka: untrusted CA names ssl.ca.location");

	k = tk_kafka_explain(RD_KAFKA_RESP_ERR__RESOLVE,
						 "nosuch:9092/bootstrap: Failed to resolve 'nosuch:9092': Name or service not known "
						 "(after 2ms in state CONNECT)", &props, msg, sizeof(msg));
	ok(k == TK_KAFKA_RESOLVE && strstr(msg, "nosuch:9092 does not resolve") &&
	   strstr(msg, "bootstrap.servers"), "kafka: unresolvable broker");

	k = tk_kafka_explain(RD_KAFKA_RESP_ERR__TRANSPORT,
						 "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused "
						 "(after 0ms in state CONNECT)", &props, msg, sizeof(msg));
	ok(k == TK_KAFKA_REFUSED && strstr(msg, "127.0.0.1:1 refused the connection"),
	   "kafka: refused connection");
	ok(!tk_kafka_problem_is_config(k) && tk_kafka_problem_is_config(TK_KAFKA_AUTH),
	   "kafka: refused heals by itself, auth needs a config change");

	k = tk_kafka_explain(RD_KAFKA_RESP_ERR__TRANSPORT,
						 "kafka-1:9093/bootstrap: Disconnected while requesting ApiVersion: might be caused by "
						 "incorrect security.protocol configuration (connecting to a SSL listener?)",
						 &props, msg, sizeof(msg));
	ok(k == TK_KAFKA_PROTOCOL && strstr(msg, "security.protocol SASL_SSL"),
	   "kafka: wrong security.protocol");

	k = tk_kafka_explain(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "2/2 brokers are down",
						 &props, msg, sizeof(msg));
	ok(k == TK_KAFKA_ALL_DOWN && strstr(msg, "all Kafka brokers are down"),
	   "kafka: all brokers down");

	k = tk_kafka_explain(RD_KAFKA_RESP_ERR__TIMED_OUT, "something else", NULL, msg, sizeof(msg));
	ok(k == TK_KAFKA_OTHER && strcmp(msg, "kafka: _TIMED_OUT: something else") == 0,
	   "kafka: anything else keeps librdkafka's words");
	tk_kvlist_free(&props);
}

int
main(void)
{
	test_config();
	test_backoff();
	test_clock_hist();
	test_cloudevents();
	test_cloudevents_json();
	test_kafka_errors();
	printf("1..%d\n", ntests);
	return nfailed ? 1 : 0;
}
