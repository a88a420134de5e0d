/*-------------------------------------------------------------------------
 *
 * base64.h
 *	  base64 and base64url (RFC 4648) for the delivery channels
 *
 * Web Push keys travel as base64url without padding (RFC 8291, RFC 8292);
 * RFC 2047 encoded-words use standard base64 with padding.  The decoder
 * accepts either alphabet, with or without padding, because subscriptions
 * copied from different browsers and libraries come both ways.
 *
 * IDENTIFICATION
 *	  common/base64.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_B64_H
#define TK_B64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* characters tk_b64_encode() writes for n bytes, without the NUL */
#define TK_B64_LEN(n) ((((n) + 2) / 3) * 4)

/*
 * Encode n bytes into out (room for TK_B64_LEN(n) + 1), NUL-terminated.
 * url: base64url without padding; else standard base64 with padding.
 * Returns the length written.
 */
extern size_t tk_b64_encode(const uint8_t *in, size_t n, char *out, bool url);

/*
 * Decode base64 or base64url text (padding optional) into out; fails on
 * a character outside both alphabets, impossible length, or more than
 * outmax bytes.  *outlen gets the decoded length.
 */
extern bool tk_b64_decode(const char *in, uint8_t *out, size_t outmax,
						   size_t *outlen);

#endif							/* TK_B64_H */
