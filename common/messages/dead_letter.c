/*-------------------------------------------------------------------------
 *
 * dead_letter.c
 *	  the dead letters: one envelope, one schema, two origins
 *
 * A dead letter goes to the dead_letter stream (todo.dead.letter) in place
 * of a message that will never be handled.  Schema:
 * schemas/dead-letter.v1.json; type "todo_kafka.dead_letter"; the
 * envelope of envelope.h; the Kafka key and partitionkey are the original
 * key.  data.origin (and the header dlq-origin) says which kind it is:
 *
 *	 "outbox_row"	the relay's: a message of an outbox row that Kafka
 *					refused for good (tk_ce_build_dead_letter).  id
 *					"<message id>:dead-letter"; data {origin, outbox_id,
 *					event_id, message_id, message_type, origin_topic, key,
 *					message_size, error, reason, timestamp, correlation_id};
 *					no payload: the row is kept in todo_kafka.dead_letters.
 *	 "consumed_message" a consumer service's: a consumed message it gave
 *					up on (tk_dead_letter_build).  id
 *					"<topic>/<partition>/<offset>:dead-letter" (stable over
 *					a crash and resend); data {origin, origin_topic,
 *					origin_partition, origin_offset, key, event_id,
 *					event_type, error, reason, attempts, consumer_group,
 *					failed_at, payload or payload_base64 (the original
 *					value, for replay), headers [{name, value or
 *					value_base64}] (the original Kafka headers, in order)}.
 * Both repeat the facts as dlq-* headers, so tools route without parsing.
 * data.origin was added within v1 (an additive, optional member): older
 * dead letters are told apart by outbox_id vs origin_partition.
 *
 * IDENTIFICATION
 *	  common/messages/dead_letter.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base64.h"
#include "ce_internal.h"
#include "dead_letter.h"

#define DL_TYPE "todo_kafka.dead_letter"

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

static void
add_string_or_null(cJSON *obj, const char *name, const char *value)
{
	if (value)
		cJSON_AddStringToObject(obj, name, value);
	else
		cJSON_AddNullToObject(obj, name);
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

/* data of a consumed message's dead letter, as a cJSON object */
static cJSON *
consumed_data(const tk_dl_origin *o, const char *failed_at)
{
	cJSON	   *data = cJSON_CreateObject();

	if (data == NULL)
		return NULL;
	cJSON_AddStringToObject(data, "origin", TK_DL_ORIGIN_CONSUMED_MESSAGE);
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
	if ((o->payload == NULL ? cJSON_AddNullToObject(data, "payload") == NULL
		 : !add_bytes(data, "payload", "payload_base64", o->payload, o->payload_len)) ||
		!add_origin_headers(data, o))
	{
		cJSON_Delete(data);
		return NULL;
	}
	return data;
}

/*
 * A consumer service's dead letter for the consumed message o.  Data is
 * built with cJSON (dead letters are rare, so clarity wins over the
 * relay's writer), the envelope by envelope.c.  No I/O, no global state.
 */
bool
tk_dead_letter_build(const tk_dl_origin *o, tk_dl_message *out)
{
	tk_envelope env = {0};
	tk_header	eh[TK_ENVELOPE_MAX_HEADERS];
	tk_strbuf	sb;
	cJSON	   *data = NULL;
	char	   *text = NULL;
	char		failed_at[96];
	char		num[32];
	bool		ok = false;
	int			n;

	memset(out, 0, sizeof(*out));
	tk_strbuf_init(&sb);
	tk_rfc3339_now(failed_at, sizeof(failed_at));
	if (asprintf(&out->id, "%s/%d/%lld:dead-letter", o->topic, (int) o->partition,
				 (long long) o->offset) < 0)
	{
		out->id = NULL;
		return false;
	}
	env.id = out->id;
	env.source = o->source ? o->source : TK_CE_SOURCE_PREFIX "consumers";
	env.type = DL_TYPE;
	env.stream = TK_STREAM_DEAD_LETTER;
	env.time = failed_at;
	env.subject = o->key;
	env.partitionkey = o->key;	/* the envelope's Kafka key is the original key */
	if ((data = consumed_data(o, failed_at)) == NULL ||
		(text = cJSON_PrintUnformatted(data)) == NULL)
		goto done;
	tk_envelope_open(&sb, &env);
	tk_strbuf_puts(&sb, text);
	tk_envelope_close(&sb);
	if (sb.oom)
		goto done;
	out->value = sb.data;
	out->value_len = sb.len;
	sb.data = NULL;

	n = tk_envelope_headers(&env, eh);
	ok = true;
	for (int i = 0; i < n && ok; i++)
		ok = add_header(out, eh[i].name, eh[i].value);
	ok = ok && add_header(out, "dlq-origin", TK_DL_ORIGIN_CONSUMED_MESSAGE) &&
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
	cJSON_free(text);
	cJSON_Delete(data);
	tk_strbuf_free(&sb);
	if (!ok)
		tk_dead_letter_free(out);
	return ok;
}

void
tk_dead_letter_free(tk_dl_message *m)
{
	for (int i = 0; i < m->nheaders; i++)
		free(m->hbuf[i]);
	free(m->value);
	free(m->id);
	memset(m, 0, sizeof(*m));
}

/*
 * The relay's dead letter for message origin_id of outbox row `row`, which
 * Kafka refused for good; appended to out.  Returns 1, or -1 when out of
 * memory.  Built like the row's other messages (message_list.c), with the
 * row's envelope context (subject, partitionkey, correlationid, ...).
 */
int
tk_ce_build_dead_letter(const tk_outbox_row *row, const char *origin_topic,
						const char *origin_id, const char *origin_type,
						size_t origin_size, const char *error_name,
						const char *reason, tk_message_list *out)
{
	int			first = out->n;
	int			first_h = out->nh;
	size_t		first_text = out->text.len;
	tk_strbuf  *t = &out->text;
	ce_ctx		c;

	/* the dead-letter envelope carries no custom headers of the original */
	ce_ctx_begin(&c, row, out, false);
	ce_msg_start(&c, TK_STREAM_DEAD_LETTER, origin_id, ":dead-letter", -1, "", DL_TYPE);
	if (!c.failed)
	{
		put_field(t, "{\"origin\":", TK_DL_ORIGIN_OUTBOX_ROW);
		put_raw(t, ",\"outbox_id\":", is_digits(row->id) ? row->id : "null");
		put_field(t, ",\"event_id\":", row->event_id);
		put_field(t, ",\"message_id\":", origin_id);
		put_field(t, ",\"message_type\":", origin_type);
		put_field(t, ",\"origin_topic\":", origin_topic);
		put_field(t, ",\"key\":", row->key);
		tk_strbuf_printf(t, ",\"message_size\":%zu", origin_size);
		put_field(t, ",\"error\":", error_name);
		put_field(t, ",\"reason\":", reason);
		put_field(t, ",\"timestamp\":", row->occurred_at);
		put_field(t, ",\"correlation_id\":", row->correlation_id);
		put(t, "}");
		ce_msg_end(&c);
		ce_hdr_add(&c, "dlq-origin", 0, TK_DL_ORIGIN_OUTBOX_ROW, 0);
		ce_hdr_add(&c, "dlq-reason", 0, NULL, ce_text_add(&c, reason));
		ce_hdr_add(&c, "dlq-error", 0, NULL, ce_text_add(&c, error_name));
		ce_hdr_add(&c, "dlq-origin-topic", 0, NULL, ce_text_add(&c, origin_topic));
		ce_hdr_add(&c, "dlq-origin-event-id", 0, NULL, ce_text_add(&c, origin_id));
		ce_hdr_add(&c, "dlq-outbox-id", 0, NULL, ce_text_add(&c, row->id ? row->id : ""));
	}
	ce_ctx_end(&c);
	if (c.failed || t->oom || out->scratch.oom)
	{
		ce_truncate_to(out, first, first_h, first_text);
		ce_resolve(out);
		return -1;
	}
	ce_resolve(out);
	return 1;
}
