/*-------------------------------------------------------------------------
 *
 * host_allowlist.h
 *	  is a host name on an operator's list (push_allowed_hosts)
 *
 * Shared, header-only, by the extension (todo_kafka.push_host_allowed(),
 * where a push endpoint or gateway URL is registered) and todo-kafka-notify
 * (again before each send), so both read a list the same way.  Pure string
 * work: no allocation, no locale, usable in the backend and in threads.
 *
 * A list is entries separated by commas and/or white space, compared
 * without regard to ASCII case, a trailing dot ignored on either side:
 *	 fcm.googleapis.com	 that host exactly
 *	 *.notify.windows.com	 any host under notify.windows.com (a whole label
 *						 boundary: "evilnotify.windows.com" does not match),
 *						 not notify.windows.com itself
 *	 *					 any host (the address checks of net_guard.h still
 *						 apply at send time)
 * An IP literal is an entry like any other: "127.0.0.1", "[::1]" (with
 * brackets, as the host part of a URL has it).
 *
 * The defaults are the public browser push services (README, notify):
 * Chrome and other Chromium browsers use Firebase Cloud Messaging
 * (fcm.googleapis.com, formerly android.googleapis.com), Firefox Mozilla's
 * autopush (updates.push.services.mozilla.com), Safari Apple's web push
 * service (web.push.apple.com; Apple asks servers to allow *.push.apple.com)
 * and Edge Windows Push Notification Services (wns2-*.notify.windows.com).
 *
 * IDENTIFICATION
 *	  common/host_allowlist.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_HOST_ALLOWLIST_H
#define TK_HOST_ALLOWLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define TK_PUSH_ALLOWED_HOSTS_DEFAULT \
	"fcm.googleapis.com, android.googleapis.com, updates.push.services.mozilla.com, " \
	"*.push.apple.com, *.notify.windows.com"

/* n bytes of a and b equal, ASCII letters compared without case */
static inline bool
tk_ascii_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		char		x = (a[i] >= 'A' && a[i] <= 'Z') ? (char) (a[i] + 32) : a[i];
		char		y = (b[i] >= 'A' && b[i] <= 'Z') ? (char) (b[i] + 32) : b[i];

		if (x != y)
			return false;
	}
	return true;
}

static inline bool
tk_list_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* is host (a URL's host part) matched by an entry of list */
static inline bool
tk_host_allowed(const char *host, const char *list)
{
	size_t		hlen = host ? strlen(host) : 0;
	const char *p = list ? list : "";

	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	if (hlen == 0)
		return false;
	while (*p)
	{
		const char *e;
		size_t		n;

		while (tk_list_sep(*p))
			p++;
		for (e = p; *e && !tk_list_sep(*e); e++)
			;
		n = (size_t) (e - p);
		if (n > 0 && p[n - 1] == '.')
			n--;
		if (n == 1 && p[0] == '*')
			return true;
		if (n > 2 && p[0] == '*' && p[1] == '.')
		{
			/* ".suffix" must end the host after at least one label */
			if (hlen > n - 1 && tk_ascii_ieq(host + hlen - (n - 1), p + 1, n - 1))
				return true;
		}
		else if (n > 0 && n == hlen && tk_ascii_ieq(host, p, n))
			return true;
		p = e;
	}
	return false;
}

#endif							/* TK_HOST_ALLOWLIST_H */
