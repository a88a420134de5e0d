/*-------------------------------------------------------------------------
 *
 * sasl_auth.c
 *	  Kafka's SASL flow on one front connection: what to do with a request
 *
 * sasl_front.c hands every request of a connection to sasl_auth_request()
 * and does what it says: forward it to the mock broker, send the reply put
 * in "out", or close the connection (after sending "out", if not empty).
 * No I/O here, so the whole protocol decision is in one place:
 *
 *	before authentication	ApiVersions -> forward (kafka_wire.c adds the
 *							SASL APIs to the answer); SaslHandshake v0-1 ->
 *							answered, SCRAM-SHA-512 only (anything else:
 *							UNSUPPORTED_SASL_MECHANISM (33), then close);
 *							SaslAuthenticate v0-2 -> one SCRAM step
 *							(scram.c); after a v0 handshake the SCRAM
 *							messages come as raw size-prefixed tokens
 *							instead; anything else -> close.
 *	a refused proof			SaslAuthenticate error SASL_AUTHENTICATION_FAILED
 *							(58) with Kafka's message, then close (after a
 *							v0 handshake there is no error frame: close).
 *	after authentication	everything is forwarded, except a second
 *							handshake (re-authentication is not offered:
 *							session_lifetime_ms is 0) -> close.
 *
 * IDENTIFICATION
 *	  devbroker/sasl_auth.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "devbroker.h"

#define API_SASL_HANDSHAKE	17
#define API_API_VERSIONS	18
#define API_SASL_AUTH		36
#define ERR_UNSUPPORTED_SASL_MECHANISM 33
#define ERR_SASL_AUTHENTICATION_FAILED 58

/* one SCRAM message; h is NULL for a raw token (after a v0 handshake) */
static sasl_action
scram_message(sasl_auth *a, const kafka_req *h, const uint8_t *in,
			  size_t len, wbuf *out)
{
	char	   *reply = NULL;
	char		why[256];
	int			rc = scram_step(&a->scram, in, len, &reply, why, sizeof(why));
	bool		ok;

	if (rc < 0)
	{
		tk_log(TK_LOG_WARNING, "SASL_SSL client %s: SCRAM-SHA-512 authentication of user \"%s\" failed: %s",
			   a->peer, a->scram.user_name[0] ? a->scram.user_name : "?", why);
		if (h != NULL)
			kafka_sasl_auth_response(out, h, ERR_SASL_AUTHENTICATION_FAILED,
									 scram_failure_message, NULL);
		return SASL_CLOSE;
	}
	if (h != NULL)
		ok = kafka_sasl_auth_response(out, h, 0, NULL, reply);
	else
		ok = wbuf_i32(out, (int32_t) strlen(reply)) &&
			wbuf_put(out, reply, strlen(reply));
	free(reply);
	if (!ok)
		return SASL_CLOSE;
	if (rc == 1)
	{
		a->authed = true;
		tk_log(TK_LOG_INFO, "SASL_SSL client %s authenticated as \"%s\" (SCRAM-SHA-512)",
			   a->peer, a->scram.user_name);
	}
	return SASL_REPLY;
}

/*
 * One request (req: the frame after its size).  *h gets its header when
 * it is to be forwarded; replies are appended to out.
 */
sasl_action
sasl_auth_request(sasl_auth *a, const uint8_t *req, size_t len,
				  kafka_req *h, wbuf *out)
{
	char		mech[64];
	const uint8_t *bytes;
	size_t		n;

	if (a->raw_tokens && !a->authed)
		return scram_message(a, NULL, req, len, out);
	if (!kafka_request_header(req, len, h))
	{
		tk_log(TK_LOG_WARNING, "SASL_SSL client %s: malformed request header, closing", a->peer);
		return SASL_CLOSE;
	}
	if (a->authed)
	{
		if (h->api_key != API_SASL_HANDSHAKE && h->api_key != API_SASL_AUTH)
			return SASL_FORWARD;
		tk_log(TK_LOG_WARNING, "SASL_SSL client %s: re-authentication is not supported, closing", a->peer);
		return SASL_CLOSE;
	}
	switch (h->api_key)
	{
		case API_API_VERSIONS:
			return SASL_FORWARD;
		case API_SASL_HANDSHAKE:
			if (a->handshaken || h->version > 1 ||
				!kafka_sasl_mechanism(req, len, h, mech, sizeof(mech)))
				break;
			a->handshaken = true;
			a->raw_tokens = h->version == 0;
			if (strcmp(mech, "SCRAM-SHA-512") != 0)
			{
				tk_log(TK_LOG_WARNING, "SASL_SSL client %s asked for SASL mechanism \"%s\": only SCRAM-SHA-512 is enabled",
					   a->peer, mech);
				kafka_sasl_handshake_response(out, h->corr, ERR_UNSUPPORTED_SASL_MECHANISM);
				return SASL_CLOSE;
			}
			return kafka_sasl_handshake_response(out, h->corr, 0) ? SASL_REPLY : SASL_CLOSE;
		case API_SASL_AUTH:
			if (!a->handshaken || a->raw_tokens || h->version > 2 ||
				!kafka_sasl_auth_bytes(req, len, h, &bytes, &n))
				break;
			return scram_message(a, h, bytes, n, out);
		default:
			break;
	}
	tk_log(TK_LOG_WARNING, "SASL_SSL client %s: request %s v%d before SASL authentication, closing",
		   a->peer, devbroker_api_key_name(h->api_key), h->version);
	return SASL_CLOSE;
}
