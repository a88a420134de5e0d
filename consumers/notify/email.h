/*-------------------------------------------------------------------------
 *
 * email.h
 *	  email delivery over SMTP with libcurl
 *
 * tkn_email_send() builds the message (email_message.h) and sends it over
 * smtp:// (STARTTLS required when starttls is set) or smtps://, with
 * optional AUTH.
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

#include <stddef.h>

#include "delivery.h"
#include "email_message.h"

/*
 * A kept SMTP session (email.c): zero it, send with tkn_email_send_kept,
 * release with tkn_smtp_conn_close.  One thread at a time.
 */
typedef struct tkn_smtp_conn
{
	void	   *handle;			/* libcurl easy handle, NULL when none */
	long		connects;		/* connections opened so far */
} tkn_smtp_conn;

/* Build and send one message to msg->to on a session of its own. */
extern tkn_delivery tkn_email_send(const tkn_smtp_config *cfg, const tkn_email *msg,
								   char *err, size_t errlen);

/* The same on conn's session, kept open for the next message. */
extern tkn_delivery tkn_email_send_kept(tkn_smtp_conn *conn, const tkn_smtp_config *cfg,
										const tkn_email *msg, char *err, size_t errlen);
extern void tkn_smtp_conn_close(tkn_smtp_conn *conn);

#endif							/* TKN_EMAIL_H */
