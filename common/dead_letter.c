/*-------------------------------------------------------------------------
 *
 * dead_letter.c
 *	  the dead-letter envelope of a consumed message, from its origin
 *
 * A consumer service that gives up on a message (invalid input, a handler
 * that failed max_attempts times, a permanent refusal) sends this envelope
 * to the dead_letter stream (todo.dead.letter).  It is a CloudEvent like
 * every message of ours, type "todo_kafka.dead_letter" (the type of the
 * relay's poison-row envelope, cloudevents.c), id
 * "<topic>/<partition>/<offset>:dead-letter" (stable, so sending it twice
 * after a crash gives the same id), dataschema = the dead-letter schema
 * (schemas/dead-letter.v1.json), subject and partitionkey = the original
 * key (when it has one), and data:
 *	 origin_topic, origin_partition, origin_offset, key, event_id,
 *	 event_type, error, reason, attempts, consumer_group, failed_at, and the
 *	 original value: "payload" (a string) when it is valid UTF-8, else
 *	 "payload_base64", so an operator can replay it to its topic as it was;
 *	 and the original message's Kafka headers, in order, as "headers": an
 *	 array of {"name", "value"} ("value" null for a null header, and
 *	 "value_base64" instead when the value is not valid UTF-8), so a replay
 *	 carries its correlation-id, traceparent and whatever else the producer
 *	 set.  "headers" was added within schema v1 (optional there): dead
 *	 letters written before it have none.
 * The same facts are headers, so tools can route without parsing:
 *	 dlq-origin-topic, dlq-origin-partition, dlq-origin-offset,
 *	 dlq-origin-key, dlq-origin-event-id, dlq-error, dlq-reason,
 *	 dlq-attempts, dlq-consumer-group, dlq-failed-at, plus content-type,
 *	 event-id and event-type like every message.
 * The Kafka key of the envelope is the original key (same partition choice
 * for one task's dead letters).
 *
 * Built with cJSON (STYLE rule 38): dead letters are rare, so clarity wins
 * over the relay's hand-written writer.  No I/O, no global state.
 *
 * IDENTIFICATION
 *	  common/dead_letter.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "base64.h"
#include "clock.h"
#include "dead_letter.h"

bool
tk_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = p[i];
		int			n;
		uint32_t	cp;

		if (c == 0)
			return false;		/* cJSON strings stop at NUL */
		if (c < 0x80)
		{
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0)
			n = 1, cp = c & 0x1F;
		else if ((c & 0xF0) == 0xE0)
			n = 2, cp = c & 0x0F;
		else if ((c & 0xF8) == 0xF0)
			n = 3, cp = c & 0x07;
		else
			return false;
		if (i + n >= len)
			return false;		/* truncated sequence */
		for (int k = 1; k <= n; k++)
		{
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
			cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n + 1;
	}
	return true;
}

static void
now_rfc3339(char *buf, size_t len)
{
	int64_t		us = tk_wall_us();
	time_t		sec = (time_t) (us / 1000000);
	struct tm	tm;

	gmtime_r(&sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (int) ((uint64_t) us % 1000000));
}

/* a value as a string member when it is valid UTF-8, else base64 */
static bool
add_bytes(cJSON *obj, const char *name, const char *b64_name, const void *value, size_t len)
{
	char	   *buf;
	bool		ok;

	if (tk_utf8_valid(value, len))
	{
		if ((buf = strndup(value, len)) == NULL)
			return false;
		ok = cJSON_AddStringToObject(obj, name, buf) != NULL;
	}
	else
	{
		if ((buf = malloc(TK_B64_LEN(len) + 1)) == NULL)
			return false;
		tk_b64_encode((const uint8_t *) value, len, buf, false);
		ok = cJSON_AddStringToObject(obj, b64_name, buf) != NULL;
	}
	free(buf);
	return ok;
}

/* data.headers: the original message's headers, in order */
static bool
add_origin_headers(cJSON *data, const tk_dl_origin *o)
{
	cJSON	   *arr = cJSON_AddArrayToObject(data, "headers");

	if (arr == NULL)
		return false;
	for (int i = 0; i < o->nheaders; i++)
	{
		const tk_dl_header *h = &o->headers[i];
		cJSON	   *item = cJSON_CreateObject();

		if (item == NULL || !cJSON_AddItemToArray(arr, item))
		{
			cJSON_Delete(item);
			return false;
		}
		if (cJSON_AddStringToObject(item, "name", h->name) == NULL)
			return false;
		if (h->value == NULL)
		{
			if (cJSON_AddNullToObject(item, "value") == NULL)
				return false;
		}
		else if (!add_bytes(item, "value", "value_base64", h->value, h->value_len))
			return false;
	}
	return true;
}

static bool
add_header(tk_dl_message *m, const char *name, const char *value)
{
	char	   *v = strdup(value ? value : "");

	if (v == NULL || m->nheaders >= TK_DL_MAX_HEADERS)
	{
		free(v);
		return false;
	}
	m->hbuf[m->nheaders] = v;
	m->headers[m->nheaders].name = name;
	m->headers[m->nheaders].value = v;
	m->nheaders++;
	return true;
}

static void
add_string_or_null(cJSON *obj, const char *name, const char *value)
{
	if (value)
		cJSON_AddStringToObject(obj, name, value);
	else
		cJSON_AddNullToObject(obj, name);
}

bool
tk_dead_letter_build(const tk_dl_origin *o, tk_dl_message *out)
{
	cJSON	   *root = cJSON_CreateObject();
	cJSON	   *data;
	char		failed_at[96];
	char		num[32];
	bool		ok = false;

	memset(out, 0, sizeof(*out));
	if (root == NULL)
		return false;
	now_rfc3339(failed_at, sizeof(failed_at));
	if (asprintf(&out->id, "%s/%d/%lld:dead-letter", o->topic, (int) o->partition,
				 (long long) o->offset) < 0)
	{
		out->id = NULL;
		goto done;
	}
	cJSON_AddStringToObject(root, "specversion", "1.0");
	cJSON_AddStringToObject(root, "id", out->id);
	cJSON_AddStringToObject(root, "source", o->source ? o->source : "/todo_kafka/consumers");
	cJSON_AddStringToObject(root, "type", "todo_kafka.dead_letter");
	cJSON_AddStringToObject(root, "dataschema", tk_ce_dataschema(TK_STREAM_DEAD_LETTER));
	cJSON_AddStringToObject(root, "time", failed_at);
	if (o->key)
	{
		cJSON_AddStringToObject(root, "subject", o->key);
		/* the envelope's Kafka key is the original key */
		cJSON_AddStringToObject(root, "partitionkey", o->key);
	}
	cJSON_AddStringToObject(root, "datacontenttype", "application/json");
	data = cJSON_AddObjectToObject(root, "data");
	if (data == NULL)
		goto done;
	cJSON_AddStringToObject(data, "origin_topic", o->topic);
	cJSON_AddNumberToObject(data, "origin_partition", o->partition);
	cJSON_AddNumberToObject(data, "origin_offset", (double) o->offset);
	add_string_or_null(data, "key", o->key);
	add_string_or_null(data, "event_id", o->event_id);
	add_string_or_null(data, "event_type", o->event_type);
	cJSON_AddStringToObject(data, "error", o->error);
	cJSON_AddStringToObject(data, "reason", o->reason);
	cJSON_AddNumberToObject(data, "attempts", o->attempts);
	add_string_or_null(data, "consumer_group", o->consumer_group);
	cJSON_AddStringToObject(data, "failed_at", failed_at);
	if (o->payload == NULL)
		cJSON_AddNullToObject(data, "payload");
	else if (!add_bytes(data, "payload", "payload_base64", o->payload, o->payload_len))
		goto done;
	if (!add_origin_headers(data, o))
		goto done;
	out->value = cJSON_PrintUnformatted(root);
	if (out->value == NULL)
		goto done;
	out->value_len = strlen(out->value);

	ok = add_header(out, "content-type", "application/cloudevents+json") &&
		add_header(out, "event-id", out->id) &&
		add_header(out, "event-type", "todo_kafka.dead_letter") &&
		add_header(out, "dlq-origin-topic", o->topic);
	snprintf(num, sizeof(num), "%d", (int) o->partition);
	ok = ok && add_header(out, "dlq-origin-partition", num);
	snprintf(num, sizeof(num), "%lld", (long long) o->offset);
	ok = ok && add_header(out, "dlq-origin-offset", num) &&
		add_header(out, "dlq-origin-key", o->key) &&
		add_header(out, "dlq-origin-event-id", o->event_id) &&
		add_header(out, "dlq-error", o->error) &&
		add_header(out, "dlq-reason", o->reason);
	snprintf(num, sizeof(num), "%d", o->attempts);
	ok = ok && add_header(out, "dlq-attempts", num) &&
		add_header(out, "dlq-consumer-group", o->consumer_group) &&
		add_header(out, "dlq-failed-at", failed_at);

done:
	cJSON_Delete(root);
	if (!ok)
		tk_dead_letter_free(out);
	return ok;
}

void
tk_dead_letter_free(tk_dl_message *m)
{
	for (int i = 0; i < m->nheaders; i++)
		free(m->hbuf[i]);
	if (m->value)
		cJSON_free(m->value);
	free(m->id);
	memset(m, 0, sizeof(*m));
}
