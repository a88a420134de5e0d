/*-------------------------------------------------------------------------
 *
 * otlp_proto.c
 *	  spans as an OTLP ExportTraceServiceRequest, protobuf wire format
 *
 * OTLP/HTTP's default encoding is application/x-protobuf; the messages we
 * need are small, so this is a hand-written writer of the fields we set
 * (field numbers from opentelemetry-proto, collector/trace/v1 and
 * trace/v1; tests/630 decodes the result with the OpenTelemetry project's
 * own generated definitions, so a wrong number or wire type fails there):
 *	 ExportTraceServiceRequest { 1 resource_spans }
 *	 ResourceSpans { 1 resource { 1 attributes }, 2 scope_spans }
 *	 ScopeSpans { 1 scope { 1 name, 2 version }, 2 spans }
 *	 Span { 1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 6 kind,
 *			7 start_time_unix_nano (fixed64), 8 end_time_unix_nano (fixed64),
 *			9 attributes, 15 status { 2 message, 3 code } }
 *	 KeyValue { 1 key, 2 value: AnyValue { 1 string_value } }
 * A length-delimited field is written after its content: each nested
 * message is built in its own buffer, then appended with its length.
 *
 * IDENTIFICATION
 *	  common/otlp_proto.c
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "otlp.h"

#define TK_OTLP_SCOPE_VERSION "1"

#define WT_VARINT 0
#define WT_FIXED64 1
#define WT_LEN 2

static void
varint(tk_strbuf *b, uint64_t v)
{
	while (v >= 0x80)
	{
		tk_strbuf_putc(b, (char) (v | 0x80));
		v >>= 7;
	}
	tk_strbuf_putc(b, (char) v);
}

static void
tag(tk_strbuf *b, int field, int wt)
{
	varint(b, (uint64_t) field << 3 | wt);
}

static void
bytes(tk_strbuf *b, int field, const void *p, size_t n)
{
	tag(b, field, WT_LEN);
	varint(b, n);
	tk_strbuf_append(b, p, n);
}

static void
str(tk_strbuf *b, int field, const char *s)
{
	bytes(b, field, s, strlen(s));
}

static void
fixed64(tk_strbuf *b, int field, uint64_t v)
{
	char		le[8];

	for (int i = 0; i < 8; i++)
		le[i] = (char) (v >> (8 * i));
	tag(b, field, WT_FIXED64);
	tk_strbuf_append(b, le, 8);
}

/* append the message in inner as field of b; inner is reset */
static void
nested(tk_strbuf *b, int field, tk_strbuf *inner)
{
	bytes(b, field, inner->data ? inner->data : "", inner->len);
	tk_strbuf_reset(inner);
}

/* KeyValue{key, AnyValue{string_value}} as field of b */
static void
key_value(tk_strbuf *b, int field, const char *key, const char *value,
		  tk_strbuf *t1, tk_strbuf *t2)
{
	str(t2, 1, value);
	str(t1, 1, key);
	nested(t1, 2, t2);
	nested(b, field, t1);
}

static void
span(tk_strbuf *b, const tk_span *s, tk_strbuf *t1, tk_strbuf *t2)
{
	bytes(b, 1, s->trace_id, 16);
	bytes(b, 2, s->span_id, 8);
	if (s->has_parent)
		bytes(b, 4, s->parent_id, 8);
	str(b, 5, s->name);
	tag(b, 6, WT_VARINT);
	varint(b, s->kind);
	fixed64(b, 7, s->start_ns);
	fixed64(b, 8, s->end_ns);
	for (int i = 0; i < s->nattrs; i++)
		key_value(b, 9, s->attrs[i].key, s->attrs[i].value, t1, t2);
	if (s->status_msg[0])
		str(t1, 2, s->status_msg);
	if (s->status)
	{
		tag(t1, 3, WT_VARINT);
		varint(t1, s->status);
	}
	nested(b, 15, t1);
}

void
tk_otlp_encode(tk_strbuf *out, const char *service_name, const char *instance_id,
			   const tk_span *spans, int n)
{
	tk_strbuf	rs,				/* ResourceSpans */
				part,			/* Resource, ScopeSpans */
				one,			/* a Span, the scope */
				t1,
				t2;

	tk_strbuf_init(&rs);
	tk_strbuf_init(&part);
	tk_strbuf_init(&one);
	tk_strbuf_init(&t1);
	tk_strbuf_init(&t2);

	key_value(&part, 1, "service.name", service_name, &t1, &t2);
	key_value(&part, 1, "service.instance.id", instance_id, &t1, &t2);
	key_value(&part, 1, "service.namespace", "todo_kafka", &t1, &t2);
	nested(&rs, 1, &part);

	str(&one, 1, "todo_kafka");
	str(&one, 2, TK_OTLP_SCOPE_VERSION);
	nested(&part, 1, &one);
	for (int i = 0; i < n; i++)
	{
		span(&one, &spans[i], &t1, &t2);
		nested(&part, 2, &one);
	}
	nested(&rs, 2, &part);
	nested(out, 1, &rs);

	if (rs.oom || part.oom || one.oom || t1.oom || t2.oom)
		out->oom = true;
	tk_strbuf_free(&rs);
	tk_strbuf_free(&part);
	tk_strbuf_free(&one);
	tk_strbuf_free(&t1);
	tk_strbuf_free(&t2);
}
