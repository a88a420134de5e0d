/*-------------------------------------------------------------------------
 *
 * webpush_int.h
 *	  what the Web Push files share (not for callers: use webpush.h)
 *
 * Web Push delivery (webpush.h) is three files, one concern each:
 *
 *	 webpush_vapid.c	the application server's identity: loading the
 *						VAPID key, P-256 key helpers, the ES256 JWT and the
 *						"Authorization: vapid" header (RFC 8292);
 *	 webpush_encrypt.c	the message encryption of RFC 8291 (ECDH, HKDF,
 *						the aes128gcm coding of RFC 8188);
 *	 webpush.c			delivery: the endpoint's origin, the HTTP POST and
 *						the classification of its outcome, the Web Push
 *						headers (TTL, Urgency, Topic) and gateway mode.
 * (push_guard.c, with its own header, says where a request may go.)
 *
 * IDENTIFICATION
 *	  consumers/notify/webpush_int.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TKN_WEBPUSH_INT_H
#define TKN_WEBPUSH_INT_H

#include <stdbool.h>

#include <openssl/evp.h>

#include "strbuf.h"
#include "webpush.h"

#define P256_POINT_LEN	65		/* 0x04 || x || y */
#define P256_SCALAR_LEN 32
#define HEADER_LEN		(16 + 4 + 1 + P256_POINT_LEN)	/* aes128gcm header */
#define TAG_LEN			16		/* AES-GCM tag */

/* the first OpenSSL error as text, for an error message (per thread) */
extern const char *tkn_ossl_error(void);

/* the uncompressed public point of an EC key */
extern bool tkn_ec_public_point(EVP_PKEY *key, unsigned char out[P256_POINT_LEN]);

/* an EVP_PKEY from P-256 key material: priv may be NULL (public key only) */
extern EVP_PKEY *tkn_p256_from_parts(const BIGNUM *priv,
									 const unsigned char pub[P256_POINT_LEN]);

/* append "Authorization: vapid t=<jwt>, k=<public key>" for origin to out */
extern bool tkn_vapid_header(const tkn_vapid *v, const char *origin, tk_strbuf *out);

#endif							/* TKN_WEBPUSH_INT_H */
