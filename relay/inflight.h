/*-------------------------------------------------------------------------
 *
 * inflight.h
 *	  the relay's rows in flight: handed to Kafka, not yet settled
 *
 * A relay_row stands for one outbox row handed to Kafka; each of its
 * messages has a relay_msg, the message's opaque in librdkafka, pointing
 * back to the row.  The producer registers a row (relay_inflight_add),
 * counts each message handed over (relay_row_sent) and reports each
 * delivery (relay_row_message_done); when all are settled the row counts
 * as settled in its window (position.c) and is forgotten, or goes to the
 * dead list (a permanent failure, relay_row_dead; the outbox reader moves
 * it to dead_letters: relay_take_dead/forget_dead in relay.h), or back to
 * a rescan (a transient one, relay_row_failed).  Nothing here touches the
 * outbox: an acknowledged row stays there until the stored position covers
 * its partition, which is then truncated (position.c).
 *
 * Threading: main thread only (delivery reports are served by
 * rd_kafka_poll() there).
 *
 * IDENTIFICATION
 *	  relay/inflight.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RELAY_INFLIGHT_H
#define RELAY_INFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "messages/cloudevents.h"
#include "relay.h"

typedef struct relay_row relay_row;

/* one message of a row: its librdkafka opaque */
typedef struct relay_msg
{
	relay_row  *row;
	bool		is_dead_letter;
	bool		own;			/* allocated by itself: freed when settled */
	size_t		size;
	const char *topic;
	const char *id;
	const char *type;
} relay_msg;

/*
 * Register row id with its built messages; topics[i] is the Kafka topic of
 * message i (NULL: none mapped).  The row starts held (all_sent false):
 * relay_row_all_sent() drops the hold.  NULL when out of memory.
 */
extern relay_row *relay_inflight_add(const tk_outbox_row *row, int64_t id,
									 const tk_message_list *msgs,
									 const char *const *topics);
extern relay_msg *relay_row_msg(relay_row *r, int i);
/* an extra message of r (a dead-letter envelope); freed by relay_msg_free */
extern relay_msg *relay_row_extra_msg(relay_row *r, const char *topic,
									  const char *id, const char *type,
									  size_t size, bool is_dead_letter);
extern void relay_msg_free(relay_msg *m);

extern int64_t relay_row_id(const relay_row *r);
extern const tk_outbox_row *relay_row_meta(const relay_row *r);
/* the application's trace context, the parent of the row's publish span */
extern void relay_row_set_trace_parent(relay_row *r, const tk_trace_ctx *parent);
extern void relay_row_latency(const relay_row *r, relay_latency *lat);

extern void relay_row_sent(relay_row *r);	/* one more message to settle */
extern void relay_row_all_sent(relay_row *r);
extern void relay_row_message_done(relay_row *r);
extern void relay_row_failed(relay_row *r);	/* leave it in the outbox */
/* a permanent failure: the first one names topic and reason */
extern void relay_row_dead(relay_row *r, const char *topic, const char *reason);

#endif							/* RELAY_INFLIGHT_H */
