/*-------------------------------------------------------------------------
 *
 * test_messages.c
 *	  unit tests of the message contract (messages/), TAP output
 *
 * The one envelope writer (envelope.c), the consumed-message dead letter
 * (dead_letter.c), and the relay's messages of an outbox row
 * (cloudevents.c: fan-out, ids, types, the task_updates diff, the
 * hand-written JSON, the outbox row's dead letter).  Run by
 * "make -C common check" and by tests/100_unit.pl.
 *
 * IDENTIFICATION
 *	  common/test_messages.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "messages/cloudevents.h"
#include "messages/dead_letter.h"
#include "messages/envelope.h"
#include "strbuf.h"
#include "test_json.h"
#include "test_tap.h"

static int
streq(const char *a, const char *b)
{
	return a != NULL && strcmp(a, b) == 0;
}

/*
 * The one envelope writer (messages/envelope.c): every built-in stream's
 * message names its schema and carries its Kafka key as partitionkey,
 * whoever writes it (notify's fan-out, a consumer's dead letter).
 */
static void
test_envelope(void)
{
	tk_envelope e = {
		.id = "e1:email", .source = "/todo_kafka/notify", .type = "notification.requested",
		.stream = TK_STREAM_NOTIFICATIONS, .time = "2030-01-02T08:00:00.000000Z",
		.subject = "t1", .partitionkey = "ana", .userid = "ana"
	};
	tk_header	h[TK_ENVELOPE_MAX_HEADERS];
	tk_strbuf	sb;
	cJSON	   *v;
	tk_dl_origin o = {
		.topic = "x.audit", .partition = 2, .offset = 17, .key = "t1",
		.payload = "{}", .payload_len = 2, .error = "INVALID_INPUT", .reason = "bad",
		.attempts = 1, .consumer_group = "g"
	};
	tk_dl_message dl;
	int			n;

	tk_strbuf_init(&sb);
	tk_envelope_open(&sb, &e);
	tk_strbuf_puts(&sb, "{\"x\":1}");
	tk_envelope_close(&sb);
	v = cJSON_Parse(sb.data);
	ok(v && streq(jstr(v, "dataschema", NULL), TK_SCHEMA_BASE "notifications.v1.json") &&
	   streq(jstr(v, "partitionkey", NULL), "ana") &&
	   streq(jstr(v, "specversion", NULL), "1.0") &&
	   cJSON_GetObjectItem(v, "correlationid") == NULL,
	   "envelope: dataschema from the stream, partitionkey, unset attributes left out");
	cJSON_Delete(v);
	n = tk_envelope_headers(&e, h);
	ok(n == 3 && streq(h[1].name, "event-id") && streq(h[1].value, "e1:email"),
	   "envelope: headers without correlation-id when there is none");
	e.stream = "my_events";
	tk_strbuf_reset(&sb);
	tk_envelope_open(&sb, &e);
	ok(strstr(sb.data, "dataschema") == NULL, "envelope: a custom stream has no dataschema");
	tk_strbuf_free(&sb);

	ok(tk_dead_letter_build(&o, &dl), "dead letter of a consumed message builds");
	v = cJSON_Parse(dl.value);
	ok(v && streq(jstr(v, "data", "origin"), "consumed_message") &&
	   streq(jstr(v, "partitionkey", NULL), "t1") &&
	   streq(jstr(v, "dataschema", NULL), TK_SCHEMA_BASE "dead-letter.v1.json") &&
	   streq(jstr(v, "id", NULL), "x.audit/2/17:dead-letter"),
	   "dead letter of a consumed message: origin, partitionkey, dataschema, id");
	n = -1;
	for (int i = 0; i < dl.nheaders; i++)
		if (strcmp(dl.headers[i].name, "dlq-origin") == 0)
			n = i;
	ok(n >= 0 && streq(dl.headers[n].value, "consumed_message"),
	   "dead letter of a consumed message: dlq-origin header");
	cJSON_Delete(v);
	tk_dead_letter_free(&dl);
}

/* ---- the relay's messages of an outbox row (cloudevents.c) ---- */

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

int
main(void)
{
	test_envelope();
	test_cloudevents();
	test_cloudevents_json();
	printf("1..%d\n", ntests);
	return nfailed ? 1 : 0;
}
