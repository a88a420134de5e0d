/*-------------------------------------------------------------------------
 *
 * delivery_int.h
 *	  helpers shared by the channel implementations (not for callers)
 *
 * IDENTIFICATION
 *	  consumers/notify/delivery_int.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TKN_DELIVERY_INT_H
#define TKN_DELIVERY_INT_H

#include <curl/curl.h>

#include "delivery.h"

#define TKN_USER_AGENT "todo-kafka-notify"

/* snprintf into a caller's error buffer; err may be NULL */
extern void tkn_errorf(char *err, size_t errlen, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/* a tkn_delivery with no Retry-After */
extern tkn_delivery tkn_outcome(tkn_result result, long status);

/*
 * Copy at most n bytes of a server's reply into dst for an error text,
 * control and non-ASCII bytes replaced by spaces, trailing spaces cut.
 */
extern void tkn_quote_reply(char *dst, size_t dstlen, const char *src, size_t n);

/*
 * Whether libcurl's error rc by itself means the server cannot be used for
 * any message (TKN_UNAVAILABLE): its name does not resolve, it cannot be
 * connected to, TLS cannot be set up (handshake, certificate verification,
 * the CA file or a client certificate), STARTTLS is refused or not offered,
 * the login or the session is refused.  Returns what to check, for the
 * error text; NULL when rc does not say so by itself (a reply to the
 * message, a timeout, a connection lost mid-way: the protocol's status
 * decides).  The one place that classifies libcurl's errors.
 */
extern const char *tkn_curl_unusable(CURLcode rc);

#endif							/* TKN_DELIVERY_INT_H */
