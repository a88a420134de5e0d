/*-------------------------------------------------------------------------
 *
 * email.c
 *	  send one email over SMTP with libcurl (tkn_email_send)
 *
 * MAIL FROM, one RCPT TO, DATA from a read callback over the text
 * email_message.c built.  libcurl escapes lines starting with "." and
 * appends the final ".".  A tkn_smtp_conn keeps one libcurl easy handle
 * from message to message (curl_easy_reset keeps its live connections), so
 * the SMTP session, and its TLS handshake and login, is set up once, not
 * once per message.  A kept session is dropped after any outcome but
 * delivered; one that fails before any byte of the message was sent (the
 * server closed it while idle) is retried once on a new connection, which
 * cannot send a message twice.  The outcome
 * (delivered, unavailable, permanent, transient) is classified as email.h
 * describes: what refuses every message pauses email delivery, what
 * refuses this message is permanent or transient.  libcurl's error is
 * asked first: after a failed STARTTLS handshake the last reply is 220,
 * so the reply code alone cannot tell.
 *
 * IDENTIFICATION
 *	  consumers/notify/email.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "delivery_int.h"
#include "email.h"

/*
 * Replies that refuse every message alike, whichever command they answer:
 * 421 service closing, 454 TLS or authentication temporarily unavailable,
 * 530 authentication (or STARTTLS) required, 534 mechanism too weak, 535
 * credentials refused, 538 encryption required for the mechanism.
 */
static bool
server_wide_reply(long status)
{
	return status == 421 || status == 454 || status == 530 || status == 534 ||
		status == 535 || status == 538;
}

typedef struct upload
{
	const char *data;
	size_t		len;
	size_t		pos;
} upload;

static size_t
upload_read(char *buf, size_t size, size_t nitems, void *userdata)
{
	upload	   *u = userdata;
	size_t		n = size * nitems;

	if (n > u->len - u->pos)
		n = u->len - u->pos;
	memcpy(buf, u->data + u->pos, n);
	u->pos += n;
	return n;
}

/*
 * One SMTP transaction on h (new or kept); *nothing_sent: no byte of DATA
 * went out; *connects: connections it opened.  The options point into this
 * frame, so h is reset before returning (its connection stays).
 */
static tkn_delivery
send_on(CURL *h, const tkn_smtp_config *cfg, const char *to, const char *text, size_t len,
		bool *nothing_sent, long *connects, char *err, size_t errlen)
{
	char		curl_err[CURL_ERROR_SIZE] = "";
	char		path[300];
	tkn_delivery d = tkn_outcome(TKN_PERMANENT, 0);
	struct curl_slist *rcpt;
	upload		up = {text, len, 0};
	long		timeout;
	const char *hint;
	CURLcode	rc;

	*nothing_sent = true;
	snprintf(path, sizeof(path), "<%s>", to);
	rcpt = curl_slist_append(NULL, path);
	if (rcpt == NULL)
	{
		tkn_errorf(err, errlen, "out of memory");
		d.result = TKN_TRANSIENT;
		return d;
	}
	curl_easy_reset(h);
	timeout = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000L;
	snprintf(path, sizeof(path), "<%s>", cfg->from);
	curl_easy_setopt(h, CURLOPT_URL, cfg->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, path);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, upload_read);
	curl_easy_setopt(h, CURLOPT_READDATA, &up);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t) len);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout < 10000 ? timeout : 10000L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
	if (cfg->starttls)
		curl_easy_setopt(h, CURLOPT_USE_SSL, (long) CURLUSESSL_ALL);
	if (cfg->username != NULL)
	{
		curl_easy_setopt(h, CURLOPT_USERNAME, cfg->username);
		curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->password ? cfg->password : "");
	}
	if (cfg->ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file);

	rc = curl_easy_perform(h);
	*nothing_sent = up.pos == 0;
	*connects = 0;
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, connects);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &d.status);
	curl_easy_reset(h);			/* no pointer into this frame stays behind */
	if (!curl_err[0])
		snprintf(curl_err, sizeof(curl_err), "%s", curl_easy_strerror(rc));
	if (rc == CURLE_OK)
		d.result = TKN_DELIVERED;
	else if ((hint = tkn_curl_unusable(rc)) != NULL)
	{
		d.result = TKN_UNAVAILABLE;
		tkn_errorf(err, errlen, "SMTP server unusable: %s (%s)", hint, curl_err);
	}
	else if (server_wide_reply(d.status))
	{
		d.result = TKN_UNAVAILABLE;
		tkn_errorf(err, errlen, "SMTP server unusable: it answered %ld: %s%s", d.status, curl_err,
				   d.status == 421 || d.status == 454 ? "" :
				   " (check the SMTP username and password, and smtp_starttls)");
	}
	else if (d.status == 0 || (rc == CURLE_OPERATION_TIMEDOUT && up.pos == 0))
	{
		/* no reply at all, or none in time before the message was sent */
		d.result = TKN_UNAVAILABLE;
		tkn_errorf(err, errlen, "SMTP server unusable: it does not answer: %s", curl_err);
	}
	else if (d.status >= 500 && d.status < 600)
	{
		d.result = TKN_PERMANENT;
		tkn_errorf(err, errlen, "SMTP server refused the message for good: %s", curl_err);
	}
	else if (d.status >= 400 && d.status < 500)
	{
		d.result = TKN_TRANSIENT;
		tkn_errorf(err, errlen, "SMTP server deferred the message: %s", curl_err);
	}
	else
	{
		d.result = TKN_TRANSIENT;
		tkn_errorf(err, errlen, "SMTP: %s (last reply %ld)", curl_err, d.status);
	}
	curl_slist_free_all(rcpt);
	return d;
}

tkn_delivery
tkn_email_send_kept(tkn_smtp_conn *conn, const tkn_smtp_config *cfg, const tkn_email *msg,
					char *err, size_t errlen)
{
	tkn_delivery d = tkn_outcome(TKN_PERMANENT, 0);
	bool		nothing_sent;
	bool		kept;
	long		connects = 0;
	char	   *text;
	size_t		len = 0;

	if (cfg->url == NULL ||
		(strncmp(cfg->url, "smtp://", 7) != 0 && strncmp(cfg->url, "smtps://", 8) != 0))
	{
		tkn_errorf(err, errlen, "SMTP URL must start with smtp:// or smtps://");
		d.result = TKN_UNAVAILABLE; /* a configuration error: pause, do not drop */
		return d;
	}
	text = tkn_email_build(cfg, msg, &len, err, errlen);
	if (text == NULL)
		return d;
	for (int attempt = 0; attempt < 2; attempt++)
	{
		kept = conn->handle != NULL;
		if (!kept && (conn->handle = curl_easy_init()) == NULL)
		{
			tkn_errorf(err, errlen, "out of memory");
			d.result = TKN_TRANSIENT;
			break;
		}
		d = send_on(conn->handle, cfg, msg->to, text, len, &nothing_sent, &connects,
					err, errlen);
		conn->connects += connects;
		if (d.result == TKN_DELIVERED)
			break;
		/* after a failure the session's state is unknown: start a new one next time */
		tkn_smtp_conn_close(conn);
		/* a kept session the server closed while idle: once more, on a new one */
		if (!(kept && connects == 0 && nothing_sent))
			break;
		if (err != NULL && errlen > 0)
			err[0] = '\0';
	}
	free(text);
	return d;
}

void
tkn_smtp_conn_close(tkn_smtp_conn *conn)
{
	if (conn->handle != NULL)
		curl_easy_cleanup(conn->handle);
	conn->handle = NULL;
}

tkn_delivery
tkn_email_send(const tkn_smtp_config *cfg, const tkn_email *msg, char *err, size_t errlen)
{
	tkn_smtp_conn conn = {NULL, 0};
	tkn_delivery d = tkn_email_send_kept(&conn, cfg, msg, err, errlen);

	tkn_smtp_conn_close(&conn);
	return d;
}
