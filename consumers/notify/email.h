/*-------------------------------------------------------------------------
 *
 * email.h
 *	  email delivery over SMTP with libcurl
 *
 * tkn_email_build() (email_message.c) writes the message: Date (UTC),
 * From, To, Subject (RFC 2047 encoded-words unless plain short ASCII),
 * Message-ID "<notify.ID@from-domain>" from the notification id (a resend
 * carries the same id; an id unsafe in a msg-id becomes its SHA-256),
 * text/plain UTF-8, 7bit or quoted-printable (no 8BITMIME needed),
 * Auto-Submitted (RFC 3834), CRLF line ends.  Addresses, subject and sender
 * name with CR or LF (header injection) or invalid UTF-8 are refused.
 * tkn_email_send() (email.c) sends it over smtp:// (STARTTLS required when
 * starttls is set) or smtps://, with optional AUTH.
 *
 * Outcomes (delivery.h; status = the last SMTP reply code), in this order:
 *	 delivered	 the server accepted the message (250 after DATA)
 *	 unavailable the server cannot take any message: libcurl says so
 *				 (tkn_curl_unusable: cannot connect, TLS or STARTTLS failure,
 *				 login denied), a reply refusing every message (421, 454,
 *				 530, 534, 535, 538), no reply, a timeout before the message
 *				 was sent, a URL not smtp:// or smtps://.  The caller pauses
 *				 email delivery, never dead-letters; the error says what to fix
 *	 permanent	 a 5xx reply to the message, or a message that cannot be built
 *	 transient	 a 4xx reply, a connection lost or a timeout after the
 *				 message started: retried, then dead-lettered
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
