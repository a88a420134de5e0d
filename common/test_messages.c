/*-------------------------------------------------------------------------
 *
 * test_messages.c
 *	  unit tests of the message contract (messages/), TAP output
 *
 * The one envelope writer (envelope.c) and the consumed-message dead
 * letter (dead_letter.c); the relay's outbox-row messages are tested in
 * test_unit.c.  Run by "make -C common check" and by tests/100_unit.pl.
 *
 * IDENTIFICATION
 *	  common/test_messages.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "messages/dead_letter.h"
#include "messages/envelope.h"
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

int
main(void)
{
	test_envelope();
	printf("1..%d\n", ntests);
	return nfailed ? 1 : 0;
}
