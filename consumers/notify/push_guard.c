/*-------------------------------------------------------------------------
 *
 * push_guard.c
 *	  the host lists and the address check of push requests (push_guard.h)
 *
 * The open-socket callback runs on the thread of curl_easy_perform(),
 * once per address libcurl tries (both families with happy eyeballs); it
 * writes only to its request's tkn_guard.  A refused address makes the
 * attempt fail as if the connection was refused, so libcurl goes on to the
 * next address and reports CURLE_COULDNT_CONNECT when none was allowed;
 * the caller then reads g->refused (webpush.c: a permanent failure).
 *
 * IDENTIFICATION
 *	  consumers/notify/push_guard.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <string.h>

#include <sys/socket.h>

#include "delivery_int.h"
#include "host_allowlist.h"
#include "net_guard.h"
#include "push_guard.h"

bool
tkn_guard_host(const char *url, const char *list, const char *setting,
			   const char *what, char *err, size_t errlen)
{
	CURLU	   *u = curl_url();
	char	   *host = NULL;
	bool		ok = false;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		tkn_errorf(err, errlen, "%s: the URL does not parse", what);
	else if (!(ok = tk_host_allowed(host, list)))
		tkn_errorf(err, errlen, "%s host \"%.100s\" is not in %s: refused (requests go only "
				   "to the hosts the operator lists there)", what, host, setting);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

static curl_socket_t
guard_open(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	tkn_guard  *g = clientp;
	tk_addr_class c = tk_addr_classify(&a->addr, a->addrlen);
	char		addr[64];
	const char *why = NULL;

	if (g->plain_http && c != TK_ADDR_LOOPBACK)
		why = "plain http goes only to a loopback test receiver: use https";
	else if (c == TK_ADDR_LOOPBACK && !g->allow_loopback)
		why = "a loopback address (push_allow_loopback is for development only)";
	else if (!tk_addr_allowed(c, g->allow_loopback))
		why = tk_addr_class_name(c);
	if (why == NULL)
		return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (!g->refused)
	{
		tk_addr_format(&a->addr, a->addrlen, addr, sizeof(addr));
		snprintf(g->why, sizeof(g->why), "%s: %s%s", addr[0] ? addr : "?",
				 why, c == TK_ADDR_LOOPBACK || g->plain_http ? ""
				 : " address: push requests go to public addresses only");
		g->refused = true;
	}
	return CURL_SOCKET_BAD;
}

bool
tkn_guard_arm(CURL *h, tkn_guard *g, const char *url, bool allow_loopback,
			  const char *connect_to)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL;

	memset(g, 0, sizeof(*g));
	g->allow_loopback = allow_loopback;
	/* anything but a URL that parses as https is held to loopback */
	g->plain_http = u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
		strcmp(scheme, "https") != 0;
	curl_free(scheme);
	curl_url_cleanup(u);
	for (const char *p = connect_to ? connect_to : ""; *p;)
	{
		char		entry[300];
		size_t		n;
		struct curl_slist *l;

		p += strspn(p, ", \t");
		n = strcspn(p, ", \t");
		if (n == 0)
			break;
		snprintf(entry, sizeof(entry), "%.*s", (int) n, p);
		if ((l = curl_slist_append(g->connect_to, entry)) == NULL)
		{
			tkn_guard_release(g);
			return false;
		}
		g->connect_to = l;
		p += n;
	}
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, guard_open);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, g);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	if (g->connect_to)
		curl_easy_setopt(h, CURLOPT_CONNECT_TO, g->connect_to);
	return true;
}

void
tkn_guard_release(tkn_guard *g)
{
	curl_slist_free_all(g->connect_to);
	g->connect_to = NULL;
}
