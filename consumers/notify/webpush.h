/*-------------------------------------------------------------------------
 *
 * webpush.h
 *	  push delivery: the Web Push protocol browsers use, or a JSON gateway
 *
 * Web Push (what a browser's PushSubscription points at): RFC 8291
 * encryption (aes128gcm, RFC 8188) to the subscription's p256dh key and
 * auth secret; RFC 8292 VAPID, an ES256 JWT (aud = endpoint origin, exp
 * 12 h, sub = contact) as "Authorization: vapid t=<jwt>, k=<key>"; RFC
 * 8030 POST with TTL, Urgency, optionally Topic.  Gateway mode: a plain
 * JSON POST to a configured URL (ntfy, an FCM/APNs relay).
 *
 * Outcomes (delivery.h): 2xx delivered; 404/410 gone; 408, 429, 5xx and
 * network errors transient (retry_after from Retry-After); other statuses
 * permanent, as are malformed keys or a payload over one 4096-byte record.
 * Where a request may go (push_guard.h): an endpoint host off
 * allowed_hosts is gone with status 0, a gateway off gateway_allowed_hosts
 * permanent, both before sending; a connection refused for its address
 * (loopback, private, link-local ...) is permanent.
 *
 * Usage:
 *	 tkn_vapid *v = tkn_vapid_load(pem_path, contact, err, sizeof(err));
 *	 puts(tkn_vapid_public_key(v));		-- give this to the browsers
 *	 tkn_push_subscription sub = {endpoint, p256dh, auth};
 *	 d = tkn_webpush_send(v, &sub, json, len, NULL, err, sizeof(err));
 *	 tkn_vapid_free(v);
 * A tkn_vapid is read-only after loading and may be shared by threads.
 *
 * IDENTIFICATION
 *	  consumers/notify/webpush.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TKN_WEBPUSH_H
#define TKN_WEBPUSH_H

#include <stdbool.h>
#include <stddef.h>

#include "delivery.h"

/* largest payload that fits one aes128gcm record of 4096 bytes (RFC 8291 s4) */
#define TKN_WEBPUSH_MAX_PAYLOAD 3993

typedef struct tkn_vapid tkn_vapid;

/* a browser's PushSubscription, keys as base64url (as toJSON() gives them) */
typedef struct tkn_push_subscription
{
	const char *endpoint;		/* https://push.example.net/... */
	const char *p256dh;			/* the user agent's P-256 public key, 65
								 * bytes uncompressed */
	const char *auth;			/* the 16-byte auth secret */
} tkn_push_subscription;

typedef struct tkn_push_options
{
	int			ttl;			/* seconds the push service may keep it;
								 * default 86400 (tkn_push_options_init) */
	const char *urgency;		/* very-low | low | normal | high; NULL =
								 * normal */
	const char *topic;			/* replaces an undelivered message with the
								 * same topic; NULL = none (<= 32 base64url
								 * chars) */
	const char *authorization;	/* gateway mode: Authorization header value
								 * (e.g. "Bearer ..."), NULL = none; never
								 * logged */
	const char *ca_file;		/* CA bundle for TLS; NULL = system default */
	long		timeout_ms;		/* whole request; default 10000 */
	/* where requests may go (push_guard.h) */
	const char *allowed_hosts;	/* Web Push endpoint hosts; default the
								 * public push services
								 * (TK_PUSH_ALLOWED_HOSTS_DEFAULT) */
	const char *gateway_allowed_hosts;	/* gateway hosts; default "" (none) */
	bool		allow_loopback; /* development: loopback addresses too */
	const char *connect_to;		/* development: HOST:PORT:TO_HOST:TO_PORT,...
								 * (CURLOPT_CONNECT_TO); NULL = none */
} tkn_push_options;

extern void tkn_push_options_init(tkn_push_options *opt);

/*
 * Load the application server's VAPID key: a PEM file path, PEM text
 * ("-----BEGIN ..."), or the raw 32-byte private key as base64url (what
 * the web-push tools print).  subject: "mailto:..." or "https:...", the
 * contact push services use (RFC 8292 s2.1).  NULL and err on failure.
 */
extern tkn_vapid *tkn_vapid_load(const char *key_pem_or_b64, const char *subject,
								 char *err, size_t errlen);
extern void tkn_vapid_free(tkn_vapid *v);

/* the public key, base64url of the 65-byte point: applicationServerKey */
extern const char *tkn_vapid_public_key(const tkn_vapid *v);

/*
 * Encrypt payload (len bytes, at most TKN_WEBPUSH_MAX_PAYLOAD) for sub and
 * POST it to sub->endpoint with VAPID.  opt may be NULL (defaults).
 */
extern tkn_delivery tkn_webpush_send(const tkn_vapid *v,
									 const tkn_push_subscription *sub,
									 const char *payload, size_t len,
									 const tkn_push_options *opt,
									 char *err, size_t errlen);

/*
 * Gateway mode: POST json (Content-Type: application/json) to url.  Only
 * opt->authorization, ca_file and timeout_ms are used.
 */
extern tkn_delivery tkn_gateway_post(const char *url, const char *json, size_t len,
									 const tkn_push_options *opt,
									 char *err, size_t errlen);

/*
 * The RFC 8291 encryption alone, for tests: writes the aes128gcm body
 * (86-byte header, one record) to out (room for len + 103 bytes) and
 * returns its length, 0 and err on failure.
 */
extern size_t tkn_webpush_encrypt(const tkn_push_subscription *sub,
								  const char *payload, size_t len,
								  unsigned char *out, char *err, size_t errlen);

#endif							/* TKN_WEBPUSH_H */
