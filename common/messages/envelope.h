/*-------------------------------------------------------------------------
 *
 * envelope.h
 *	  the CloudEvents envelope every message of todo_kafka carries
 *
 * The one writer of the envelope: the relay (cloudevents.c, once per
 * message of an outbox row), both dead letters (dead_letter.c) and the
 * notify service's fan-out write their messages with it, so that every
 * message has the same attributes in the same order:
 *
 *	 specversion "1.0", id, source, type, dataschema (from the stream, for
 *	 the built-in streams of streams.h), time, subject, partitionkey (the
 *	 Kafka key: the CloudEvents partitioning extension), datacontenttype
 *	 "application/json", correlationid, userid, actor, traceparent, data.
 *
 * An attribute whose value is NULL is left out (the relay passes "" for
 * those it always writes).  The writer writes JSON text into a tk_strbuf
 * (no cJSON tree: the relay writes millions of these, see message_list.c);
 * the caller writes the data value after tk_envelope_open() and closes
 * with tk_envelope_close().  tk_envelope_put_head() and
 * tk_envelope_put_context() are the two halves of tk_envelope_open(), for
 * the relay, which writes the context of a row once and copies it into
 * every message of the row.
 *
 * Kafka headers: content-type, event-id, event-type, correlation-id (when
 * correlationid is set), traceparent (when set): tk_envelope_headers().
 *
 * IDENTIFICATION
 *	  common/messages/envelope.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_ENVELOPE_H
#define TK_ENVELOPE_H

#include <stddef.h>

#include "strbuf.h"
#include "streams.h"

#define TK_CE_CONTENT_TYPE		"application/cloudevents+json"
#define TK_CE_SOURCE_PREFIX		"/todo_kafka/"
#define TK_ENVELOPE_MAX_HEADERS 5

/* a Kafka header */
typedef struct tk_header
{
	const char *name;
	const char *value;
} tk_header;

/* the attributes of one message; NULL leaves an attribute out */
typedef struct tk_envelope
{
	const char *id;
	const char *source;
	const char *type;
	const char *stream;			/* gives dataschema (NULL: none) */
	const char *time;			/* RFC 3339 UTC, six fraction digits, "Z" */
	const char *subject;
	const char *partitionkey;	/* the Kafka key */
	const char *correlationid;
	const char *userid;
	const char *actor;
	const char *traceparent;
} tk_envelope;

extern const char *tk_stream_dataschema(const char *stream);
extern void tk_envelope_put_head(tk_strbuf *sb, const tk_envelope *e);
extern void tk_envelope_put_context(tk_strbuf *sb, const tk_envelope *e);
extern void tk_envelope_open(tk_strbuf *sb, const tk_envelope *e);
extern void tk_envelope_close(tk_strbuf *sb);
extern int	tk_envelope_headers(const tk_envelope *e,
								tk_header h[TK_ENVELOPE_MAX_HEADERS]);
extern void tk_rfc3339_now(char *buf, size_t len);

#endif							/* TK_ENVELOPE_H */
