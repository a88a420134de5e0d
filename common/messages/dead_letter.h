/*-------------------------------------------------------------------------
 *
 * dead_letter.h
 *	  the dead letters of both origins (see dead_letter.c)
 *
 * IDENTIFICATION
 *	  common/messages/dead_letter.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_DEAD_LETTER_H
#define TK_DEAD_LETTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "message_list.h"

/* data.origin and the dlq-origin header: which kind of dead letter */
#define TK_DL_ORIGIN_OUTBOX_ROW			"outbox_row"
#define TK_DL_ORIGIN_CONSUMED_MESSAGE	"consumed_message"

#define TK_DL_MAX_HEADERS 15

/* one Kafka header of the original message: value NULL for a null header */
typedef struct tk_dl_header
{
	const char *name;
	const void *value;
	size_t		value_len;
} tk_dl_header;

/* a consumed message that failed: where it came from and why it failed */
typedef struct tk_dl_origin
{
	const char *topic;
	int32_t		partition;
	int64_t		offset;
	const char *key;			/* NULL when none */
	const char *event_id;		/* CloudEvents id, NULL if unreadable */
	const char *event_type;		/* CloudEvents type, NULL if unreadable */
	const char *payload;		/* the original value, kept for replay */
	size_t		payload_len;
	const tk_dl_header *headers;	/* the original headers, in order, kept
									 * for replay */
	int			nheaders;
	const char *error;			/* kind: INVALID_INPUT, HANDLER_FAILED, ... */
	const char *reason;			/* one line for people */
	int			attempts;
	const char *consumer_group;
	const char *source;			/* CloudEvents source of the envelope */
} tk_dl_origin;

/* a built envelope: value and headers, owned by the struct */
typedef struct tk_dl_message
{
	char	   *value;
	size_t		value_len;
	char	   *id;
	tk_header	headers[TK_DL_MAX_HEADERS];
	int			nheaders;
	char	   *hbuf[TK_DL_MAX_HEADERS];	/* storage of header values */
} tk_dl_message;

/* the relay's: a message of an outbox row that Kafka refused for good */
extern int	tk_ce_build_dead_letter(const tk_outbox_row *row,
									const char *origin_topic,
									const char *origin_id,
									const char *origin_type,
									size_t origin_size,
									const char *error_name,
									const char *reason,
									tk_message_list *out);
/* a consumer service's: a consumed message it gave up on */
extern bool tk_dead_letter_build(const tk_dl_origin *o, tk_dl_message *out);
extern void tk_dead_letter_free(tk_dl_message *m);
extern bool tk_utf8_valid(const char *s, size_t len);

#endif							/* TK_DEAD_LETTER_H */
