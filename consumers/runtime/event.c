/*-------------------------------------------------------------------------
 *
 * event.c
 *	  read a consumed message as a CloudEvent, or say why it is not one
 *
 * Every message on our topics is a CloudEvents 1.0 structured-mode JSON
 * document (DESIGN.md, Messages).  Before a handler runs, the runtime
 * checks what every handler relies on: the value is JSON (cJSON, STYLE
 * 38), an object, "specversion" is "1.0", "id", "source" and "type" are
 * non-empty strings, "subject" and "time" are strings when present.  A
 * message that fails can never succeed, so it is dead-lettered at once,
 * without retries, with the reason (INVALID_INPUT).  The service's own
 * validate() then checks the data fields it uses.
 *
 * IDENTIFICATION
 *	  consumers/runtime/event.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

void
tkc_fail(tkc_event *ev, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(ev->error, sizeof(ev->error), fmt, ap);
	va_end(ap);
}

const char *
tkc_json_string(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* a required, non-empty string attribute */
static bool
required(tkc_event *ev, const char *name, const char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev->ce, name);

	if (v == NULL)
	{
		tkc_fail(ev, "not a CloudEvent: attribute \"%s\" is missing", name);
		return false;
	}
	if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
	{
		tkc_fail(ev, "not a CloudEvent: attribute \"%s\" must be a non-empty string", name);
		return false;
	}
	*out = v->valuestring;
	return true;
}

static bool
optional(tkc_event *ev, const char *name, const char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev->ce, name);

	*out = NULL;
	if (v == NULL || cJSON_IsNull(v))
		return true;
	if (!cJSON_IsString(v))
	{
		tkc_fail(ev, "not a CloudEvent: attribute \"%s\" must be a string", name);
		return false;
	}
	*out = v->valuestring;
	return true;
}

/*
 * Fill ev from m.  *root receives the parsed document (free with
 * cJSON_Delete) and *key a NUL-terminated copy of the key (free); both are
 * set even when the message is invalid, as far as they could be made.
 */
bool
tkc_event_parse(tkc_event *ev, const rd_kafka_message_t *m, cJSON **root, char **key)
{
	const char *spec;
	const char *end = NULL;
	rd_kafka_timestamp_type_t tstype;

	memset(ev, 0, sizeof(*ev));
	*root = NULL;
	*key = m->key ? strndup(m->key, m->key_len) : NULL;
	ev->topic = rd_kafka_topic_name(m->rkt);
	ev->partition = m->partition;
	ev->offset = m->offset;
	ev->key = *key;
	ev->value = m->payload;
	ev->value_len = m->len;
	ev->timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
	ev->attempt = 1;

	if (m->payload == NULL || m->len == 0)
	{
		tkc_fail(ev, "empty message: expected a CloudEvents JSON document");
		return false;
	}
	/* the _Opts form reports the error position per call (thread-safe) */
	*root = cJSON_ParseWithLengthOpts(m->payload, m->len, &end, false);
	if (*root == NULL)
	{
		long		pos = end ? (long) (end - (const char *) m->payload) : -1;

		if (pos >= 0 && (size_t) pos <= m->len)
			tkc_fail(ev, "not JSON: syntax error at byte %ld", pos);
		else
			tkc_fail(ev, "not JSON");
		return false;
	}
	ev->ce = *root;
	if (!cJSON_IsObject(*root))
	{
		tkc_fail(ev, "not a CloudEvent: the JSON value is not an object");
		return false;
	}
	if (!required(ev, "specversion", &spec))
		return false;
	if (strcmp(spec, "1.0") != 0)
	{
		tkc_fail(ev, "not a CloudEvent 1.0: specversion is \"%.32s\"", spec);
		return false;
	}
	if (!required(ev, "id", &ev->id) || !required(ev, "source", &ev->source) ||
		!required(ev, "type", &ev->type) || !optional(ev, "subject", &ev->subject) ||
		!optional(ev, "time", &ev->time))
		return false;
	ev->data = cJSON_GetObjectItemCaseSensitive(*root, "data");
	return true;
}
