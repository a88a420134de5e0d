/*-------------------------------------------------------------------------
 *
 * push_guard.h
 *	  where a push request may go: the host lists and the addresses
 *
 * Push endpoints and gateway URLs are chosen by users (a browser's
 * PushSubscription reaches us through the chatbot), and the request leaves
 * from inside the operator's network.  Two checks, both at send time:
 *
 *	 1. the URL's host must be on a list (push_allowed_hosts for Web Push,
 *		push_gateway_allowed_hosts for gateways; common/host_allowlist.h),
 *		the same lists the extension checks at registration: the service
 *		may have been configured after a subscription was stored;
 *	 2. whatever the lists say, every address libcurl is about to connect
 *		to is checked in its open-socket callback (CURLOPT_OPENSOCKETFUNCTION,
 *		common/net_guard.h): loopback, private, link-local, CGNAT, multicast,
 *		unspecified and reserved addresses are refused before a socket
 *		exists.  The check is on the very address connected to, after
 *		resolution, so a DNS answer that changes between a check and the
 *		connect (rebinding) cannot slip through.  Plain http goes only to
 *		loopback (test receivers); proxies from the environment are not
 *		used (a proxy would resolve and connect for us, unchecked).
 *
 * Development only (the production profile refuses them, notify.c):
 * allow_loopback lets requests reach 127.0.0.0/8 and ::1, and connect_to
 * maps HOST:PORT to another host and port (CURLOPT_CONNECT_TO), so a test
 * can point a real-looking https endpoint at a local receiver; TLS is
 * still verified against the endpoint's own host name.
 *
 * IDENTIFICATION
 *	  consumers/notify/push_guard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TKN_PUSH_GUARD_H
#define TKN_PUSH_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

/* per request: what the open-socket callback allows and what it refused */
typedef struct tkn_guard
{
	bool		allow_loopback;
	bool		plain_http;		/* http:// URL: loopback only */
	bool		refused;
	char		why[256];		/* the first refusal */
	struct curl_slist *connect_to;
} tkn_guard;

/*
 * Is the host of url on list?  false with "<what> host "h" is not in
 * <setting> ..." in err otherwise (or when url does not parse).
 */
extern bool tkn_guard_host(const char *url, const char *list, const char *setting,
						   const char *what, char *err, size_t errlen);

/*
 * Arm an easy handle for url: the open-socket check, no proxy, and the
 * development connect_to list ("HOST:PORT:TO_HOST:TO_PORT", comma
 * separated; NULL or "" for none).  false (out of memory) leaves nothing
 * to free; else call tkn_guard_release() after curl_easy_cleanup().
 */
extern bool tkn_guard_arm(CURL *h, tkn_guard *g, const char *url, bool allow_loopback,
						  const char *connect_to);
extern void tkn_guard_release(tkn_guard *g);

#endif							/* TKN_PUSH_GUARD_H */
