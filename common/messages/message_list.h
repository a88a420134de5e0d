/*-------------------------------------------------------------------------
 *
 * message_list.h
 *	  built messages: the outbox row they come from, and the list they go in
 *
 * A tk_message_list holds the messages of one or more outbox rows, built
 * by tk_ce_build() (cloudevents.h) or tk_ce_build_dead_letter()
 * (dead_letter.h); the relay hands each to Kafka.  Its storage and the
 * per-row envelope parts are message_list.c's (see there for memory).
 *
 * IDENTIFICATION
 *	  common/messages/message_list.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_MESSAGE_LIST_H
#define TK_MESSAGE_LIST_H

#include <stddef.h>

#include "envelope.h"
#include "strbuf.h"

/*
 * One outbox row as text, exactly as selected by the relay (see
 * relay/outbox_reader.c for the query).  NULL means SQL NULL.
 */
typedef struct tk_outbox_row
{
	const char *id;				/* outbox id */
	const char *xid;			/* writing transaction (xid8) */
	const char *event_id;		/* uuid */
	const char *kind;			/* change | custom | reminder */
	const char *stream;			/* key into todo_kafka.topics */
	const char *event_type;
	const char *source;			/* table name or "/todo_kafka/<table>" */
	const char *key;			/* task id: Kafka key and CE subject */
	const char *user_id;
	const char *actor;			/* who the application says it is */
	const char *db_role;		/* session_user at capture; NULL before 0.3.0 */
	const char *correlation_id;
	const char *traceparent;
	const char *before;			/* json row image */
	const char *after;			/* json row image, or custom data */
	const char *changed;		/* json array of changed column names */
	const char *headers;		/* json object of custom headers */
	const char *occurred_at;	/* RFC 3339, UTC */
} tk_outbox_row;

/*
 * A built message.  Every pointer points into the list's own storage or
 * into the row's strings (the caller keeps the row alive while it uses the
 * messages); all of them stay valid until the list is cleared or the next
 * build appends to it.
 */
typedef struct tk_message
{
	const char *stream;			/* logical stream (static or row->stream) */
	const char *id;				/* CloudEvents id, also header event-id */
	const char *type;			/* CloudEvents type, also header event-type */
	const char *value;			/* JSON text, NUL-terminated */
	size_t		value_len;
	const tk_header *headers;
	int			nheaders;
} tk_message;

typedef struct tk_msg_slot tk_msg_slot;
typedef struct tk_hdr_slot tk_hdr_slot;
typedef struct tk_json_span tk_json_span;

/*
 * Messages of one or more rows.  Reused row after row (clear, build): its
 * buffers grow to the largest row seen and are not freed in between, so a
 * steady stream of rows allocates nothing here.
 */
typedef struct tk_message_list
{
	tk_message *msgs;
	int			n;
	int			cap;
	/* storage (private to message_list.c) */
	tk_strbuf	text;			/* ids, types, values, custom headers */
	tk_strbuf	scratch;		/* per-row envelope parts */
	tk_msg_slot *slots;			/* offsets into text, per message */
	tk_hdr_slot *hslots;		/* header slots, per message in order */
	int			nh;
	int			cap_h;			/* of hslots and headers */
	tk_header  *headers;		/* resolved headers (msgs[i].headers) */
	tk_json_span *spans;		/* JSON members and elements of a row */
	int			cap_spans;
} tk_message_list;

extern void tk_message_list_init(tk_message_list *l);
extern void tk_message_list_clear(tk_message_list *l);
extern void tk_message_list_free(tk_message_list *l);

#endif							/* TK_MESSAGE_LIST_H */
