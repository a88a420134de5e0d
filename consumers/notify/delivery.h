/*-------------------------------------------------------------------------
 *
 * delivery.h
 *	  what every delivery channel of todo-kafka-notify reports
 *
 * A send returns a tkn_delivery: the outcome class the caller acts on and
 * the protocol status behind it.  The classes map onto the consumer
 * runtime's handler results:
 *
 *	 TKN_DELIVERED	 the receiver accepted it: record it in the delivery log
 *	 TKN_GONE		 the push subscription no longer exists (HTTP 404/410),
 *					 or (status 0) its endpoint's host is not allowed
 *					 (push_allowed_hosts): remove it, do not retry
 *	 TKN_PERMANENT	 the receiver refused it for good (bad request, payload
 *					 too large, recipient refused, bad configuration):
 *					 dead-letter with the error text
 *	 TKN_TRANSIENT	 try again later (network error, timeout, HTTP 429/5xx,
 *					 SMTP 4xx); retry_after is the receiver's hint
 *	 TKN_UNAVAILABLE the server cannot be used for any message, through no
 *					 fault of this one: it cannot be reached, TLS cannot be
 *					 set up (certificate, CA file, handshake, STARTTLS
 *					 refused), the login is denied (tkn_curl_unusable() in
 *					 delivery_int.h decides by libcurl's error); the
 *					 caller pauses the channel and never dead-letters for it
 *
 * Error texts (the err/errlen buffers of every call) say what went wrong
 * and how to fix it; they never contain a private key, an auth secret or
 * a password.
 *
 * The senders use libcurl: call tkn_delivery_global_init() once at start,
 * before any thread is created, and tkn_delivery_global_cleanup() at exit.
 * After that every send may run on any thread (each uses its own handle).
 *
 * IDENTIFICATION
 *	  consumers/notify/delivery.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TKN_DELIVERY_H
#define TKN_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>

typedef enum tkn_result
{
	TKN_DELIVERED = 0,
	TKN_GONE,
	TKN_PERMANENT,
	TKN_TRANSIENT,
	TKN_UNAVAILABLE
} tkn_result;

typedef struct tkn_delivery
{
	tkn_result	result;
	long		status;			/* HTTP status or last SMTP reply code; 0 if
								 * none was received */
	long		retry_after;	/* seconds (Retry-After), -1 if not given */
} tkn_delivery;

/* "delivered", "gone", "permanent", "transient", "unavailable" */
extern const char *tkn_result_name(tkn_result r);

extern bool tkn_delivery_global_init(char *err, size_t errlen);
extern void tkn_delivery_global_cleanup(void);

#endif							/* TKN_DELIVERY_H */
