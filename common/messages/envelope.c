/*-------------------------------------------------------------------------
 *
 * envelope.c
 *	  write the CloudEvents envelope of a message (see envelope.h)
 *
 * The attribute order is fixed here and nowhere else.  Strings go through
 * tk_strbuf_json_string(), the escaper cJSON's printer would match.  A
 * string may point into sb itself only if the caller reserved room for
 * its escaped form first (message_list.c does, for ids and types).
 *
 * IDENTIFICATION
 *	  common/messages/envelope.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "envelope.h"

#define X_SCHEMA(stream, file) {stream, TK_SCHEMA_BASE file},
static const struct
{
	const char *stream;
	const char *schema;
}			stream_schemas[] = {
	TK_BUILTIN_STREAMS(X_SCHEMA)
};
#undef X_SCHEMA

/* the dataschema URI of a stream's messages, or NULL for a custom stream */
const char *
tk_stream_dataschema(const char *stream)
{
	if (stream == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(stream_schemas) / sizeof(stream_schemas[0]); i++)
		if (strcmp(stream, stream_schemas[i].stream) == 0)
			return stream_schemas[i].schema;
	return NULL;
}

/* ,"name":"value" when value is set */
static void
put_attr(tk_strbuf *sb, const char *name, const char *value)
{
	if (value == NULL)
		return;
	tk_strbuf_puts(sb, name);
	tk_strbuf_json_string(sb, value);
}

/* {"specversion":"1.0","id":..,"source":..,"type":..,"dataschema":.. */
void
tk_envelope_put_head(tk_strbuf *sb, const tk_envelope *e)
{
	tk_strbuf_puts(sb, "{\"specversion\":\"1.0\"");
	put_attr(sb, ",\"id\":", e->id);
	put_attr(sb, ",\"source\":", e->source);
	put_attr(sb, ",\"type\":", e->type);
	put_attr(sb, ",\"dataschema\":", tk_stream_dataschema(e->stream));
}

/* ,"time":.. up to and including ,"data": */
void
tk_envelope_put_context(tk_strbuf *sb, const tk_envelope *e)
{
	put_attr(sb, ",\"time\":", e->time);
	put_attr(sb, ",\"subject\":", e->subject);
	put_attr(sb, ",\"partitionkey\":", e->partitionkey);
	tk_strbuf_puts(sb, ",\"datacontenttype\":\"application/json\"");
	put_attr(sb, ",\"correlationid\":", e->correlationid);
	put_attr(sb, ",\"userid\":", e->userid);
	put_attr(sb, ",\"actor\":", e->actor);
	put_attr(sb, ",\"traceparent\":", e->traceparent);
	tk_strbuf_puts(sb, ",\"data\":");
}

void
tk_envelope_open(tk_strbuf *sb, const tk_envelope *e)
{
	tk_envelope_put_head(sb, e);
	tk_envelope_put_context(sb, e);
}

void
tk_envelope_close(tk_strbuf *sb)
{
	tk_strbuf_putc(sb, '}');
}

/* the Kafka headers of a message; returns how many */
int
tk_envelope_headers(const tk_envelope *e, tk_header h[TK_ENVELOPE_MAX_HEADERS])
{
	int			n = 0;

	h[n++] = (tk_header) {"content-type", TK_CE_CONTENT_TYPE};
	h[n++] = (tk_header) {"event-id", e->id};
	h[n++] = (tk_header) {"event-type", e->type};
	if (e->correlationid)
		h[n++] = (tk_header) {"correlation-id", e->correlationid};
	if (e->traceparent)
		h[n++] = (tk_header) {"traceparent", e->traceparent};
	return n;
}

/* now, as RFC 3339 UTC with six fraction digits and "Z" */
void
tk_rfc3339_now(char *buf, size_t len)
{
	int64_t		us = tk_wall_us();
	time_t		sec = (time_t) (us / 1000000);
	struct tm	tm;

	gmtime_r(&sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (int) ((uint64_t) us % 1000000));
}
