/*-------------------------------------------------------------------------
 *
 * otlp.h
 *	  spans, and their export over OTLP/HTTP (off unless an endpoint is set)
 *
 * A daemon calls tk_otlp_start() once with its otlp_endpoint setting (empty:
 * off, every other call here is then almost free) and tk_otlp_stop() on
 * the way out (sends what is queued, bounded by a deadline).  Any thread
 * makes spans: tk_span_begin() (child of a trace context, or the root of a
 * new trace), tk_span_attr(), tk_span_end() (queues it).  See otlp.c for
 * the queue and the sender, otlp_proto.c for the encoding.
 *
 * IDENTIFICATION
 *	  common/otlp.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_OTLP_H
#define TK_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"
#include "trace.h"

#define TK_SPAN_MAX_ATTRS 6

/* OTLP SpanKind */
typedef enum tk_span_kind
{
	TK_SPAN_INTERNAL = 1,
	TK_SPAN_SERVER = 2,
	TK_SPAN_CLIENT = 3,
	TK_SPAN_PRODUCER = 4,
	TK_SPAN_CONSUMER = 5
} tk_span_kind;

typedef struct tk_span
{
	uint8_t		trace_id[16];
	uint8_t		span_id[8];
	uint8_t		parent_id[8];
	bool		has_parent;
	uint8_t		kind;			/* tk_span_kind */
	uint8_t		status;			/* OTLP StatusCode: 0 unset, 1 ok, 2 error */
	int			nattrs;
	uint64_t	start_ns;		/* Unix time */
	uint64_t	end_ns;
	char		name[48];
	char		status_msg[96];
	struct
	{
		char		key[40];
		char		value[88];
	}			attrs[TK_SPAN_MAX_ATTRS];
} tk_span;

extern bool tk_otlp_start(const char *endpoint, const char *service_name,
						  char *errbuf, size_t errlen);
extern void tk_otlp_stop(void);
extern bool tk_otlp_enabled(void);
extern uint64_t tk_otlp_dropped(void);	/* spans lost: queue full or send failed */

/*
 * A span starting now: a child of parent (when valid), else the root of a
 * new random trace; a random span id unless span_id is given.
 */
extern void tk_span_begin(tk_span *s, const char *name, tk_span_kind kind,
						  const tk_trace_ctx *parent, const uint8_t *span_id);
/* a no-op on a span with kind 0 (not begun: tracing off) */
extern void tk_span_attr(tk_span *s, const char *key, const char *value);
/* ends it now (error: status ERROR with that message, else OK) and queues it */
extern void tk_span_end(tk_span *s, const char *error);
/* queue a finished span (end_ns set) */
extern void tk_otlp_emit(const tk_span *s);
/* the context a child of s (or a message caused by s) carries */
extern void tk_span_context(const tk_span *s, tk_trace_ctx *ctx);
extern uint64_t tk_unix_ns(void);

/* otlp_proto.c: an ExportTraceServiceRequest of n spans, protobuf */
extern void tk_otlp_encode(tk_strbuf *out, const char *service_name,
						   const char *instance_id, const tk_span *spans, int n);

/* the endpoint without user info, query or fragment: for logs */
extern void tk_url_display(const char *url, char *out, size_t outlen);

#endif							/* TK_OTLP_H */
