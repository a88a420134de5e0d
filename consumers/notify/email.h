/*-------------------------------------------------------------------------
 *
 * email.h
 *	  email delivery over SMTP with libcurl
 *
 * tkn_email_send() builds an RFC 5322 message and sends it:
 *	 - headers Date (RFC 5322 s3.3, UTC), From, To, Subject (RFC 2047
 *	   encoded-words when not plain short ASCII), Message-ID, MIME-Version,
 *	   Content-Type text/plain; charset=utf-8, Content-Transfer-Encoding
 *	   (7bit for short-lined ASCII, else quoted-printable, so no server
 *	   needs 8BITMIME), Auto-Submitted: auto-generated (RFC 3834);
 *	 - Message-ID "<notify.ID@from-domain>" from the notification id, so a
 *	   resend carries the same id and mail clients can spot a duplicate;
 *	   an id that is not safe in a msg-id is replaced by a SHA-256 digest;
 *	 - CRLF line endings; libcurl does the SMTP dot-stuffing;
 *	 - smtp:// (with STARTTLS required when starttls is set), smtps://,
 *	   optional AUTH with username and password.
 * Addresses, the subject and the sender name are refused if they contain
 * CR or LF (header injection) or are not valid UTF-8.
 *
 * Outcomes (delivery.h; status = the last SMTP reply code), in this order:
 *	 delivered	 the server accepted the message (250 after DATA)
 *	 unavailable the server cannot take any message, whatever it is:
 *				 libcurl's error says so (tkn_curl_unusable: cannot
 *				 connect, certificate or TLS failure, STARTTLS not offered,
 *				 login denied; after a failed STARTTLS handshake the last
 *				 reply is 220, so the reply code cannot tell), a reply
 *				 that refuses every message (421, 454, 530, 534, 535, 538),
 *				 no reply at all, a timeout before the message was sent, a
 *				 URL that is not smtp:// or smtps://.  The caller pauses
 *				 email delivery and never dead-letters for it; the error
 *				 text says what to fix
 *	 permanent	 a 5xx reply to the message (recipient or message refused),
 *				 or a message that cannot be built (bad address, ...)
 *	 transient	 a 4xx reply to the message, a connection lost or a timeout
 *				 after the message started: retried, then dead-lettered
 *
 * IDENTIFICATION
 *	  consumers/notify/email.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TKN_EMAIL_H
#define TKN_EMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "delivery.h"

typedef struct tkn_smtp_config
{
	const char *url;			/* smtp://host[:port][/helo-name] or
								 * smtps://host[:port] */
	const char *from;			/* envelope and header sender, addr-spec */
	const char *from_name;		/* display name (UTF-8), NULL = none */
	const char *username;		/* AUTH; NULL = no AUTH */
	const char *password;		/* never logged */
	bool		starttls;		/* smtp://: require STARTTLS */
	const char *ca_file;		/* CA bundle for TLS; NULL = system default */
	long		timeout_ms;		/* whole session; 0 = 30000 */
} tkn_smtp_config;

typedef struct tkn_email
{
	const char *to;				/* recipient, addr-spec */
	const char *subject;		/* UTF-8, one line */
	const char *body;			/* UTF-8 plain text, LF or CRLF line ends */
	const char *id;				/* notification id: the Message-ID's left part */
	time_t		date;			/* Date header; 0 = now */
} tkn_email;

/*
 * Build the message (headers and body, CRLF line ends) as a malloc'd
 * string, its length in *len; NULL and err if the input is refused.
 */
extern char *tkn_email_build(const tkn_smtp_config *cfg, const tkn_email *msg,
							 size_t *len, char *err, size_t errlen);

/* Build and send one message to msg->to. */
extern tkn_delivery tkn_email_send(const tkn_smtp_config *cfg, const tkn_email *msg,
								   char *err, size_t errlen);

#endif							/* TKN_EMAIL_H */
