/*-------------------------------------------------------------------------
 *
 * cloudevents.h
 *	  turn an outbox row into Kafka messages (CloudEvents 1.0, structured)
 *
 * The relay's entry point: tk_ce_build() appends the messages of one
 * outbox row to a tk_message_list (message_list.h).  Which messages a row
 * makes is described in cloudevents.c; the envelope they carry in
 * envelope.h; the stream names in streams.h.
 *
 * IDENTIFICATION
 *	  common/messages/cloudevents.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_CLOUDEVENTS_H
#define TK_CLOUDEVENTS_H

#include <stddef.h>

#include "message_list.h"
#include "streams.h"

extern int	tk_ce_build(const tk_outbox_row *row, tk_message_list *out,
						char *errbuf, size_t errlen);

#endif							/* TK_CLOUDEVENTS_H */
