/*-------------------------------------------------------------------------
 *
 * email_message.h
 *	  an email notification and the RFC 5322 text built from it
 *
 * tkn_email_build() (email_message.c) writes: Date (UTC), From, To,
 * Subject (RFC 2047 encoded-words unless plain short ASCII), Message-ID
 * "<notify.ID@from-domain>" from the notification id (a resend carries the
 * same id; an id unsafe in a msg-id becomes its SHA-256), text/plain UTF-8,
 * 7bit or quoted-printable (no 8BITMIME needed), Auto-Submitted (RFC 3834),
 * CRLF line ends.  Addresses, subject and sender name with CR or LF (header
 * injection) or invalid UTF-8 are refused.  Sending it is email.h's.
 *
 * IDENTIFICATION
 *	  consumers/notify/email_message.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TKN_EMAIL_MESSAGE_H
#define TKN_EMAIL_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* the SMTP settings; from and from_name also make the From header */
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
	const char *traceparent;	/* W3C trace context: Traceparent header; NULL: none */
} tkn_email;

/*
 * Build the message (headers and body, CRLF line ends) as a malloc'd
 * string, its length in *len; NULL and err if the input is refused.
 */
extern char *tkn_email_build(const tkn_smtp_config *cfg, const tkn_email *msg,
							 size_t *len, char *err, size_t errlen);

#endif							/* TKN_EMAIL_MESSAGE_H */
