/*-------------------------------------------------------------------------
 *
 * net_guard.h
 *	  which IP addresses a request made on a user's behalf may go to
 *
 * A push endpoint is a URL a user hands us; a request to it leaves from
 * inside the operator's network.  tk_addr_classify() sorts an address
 * into public or one of the ranges such a request must never reach:
 *
 *	 loopback		127.0.0.0/8, ::1
 *	 private		10/8, 172.16/12, 192.168/16 (RFC 1918), fc00::/7
 *					(RFC 4193), fec0::/10 (old site-local)
 *	 link-local		169.254/16 (cloud metadata services live there),
 *					fe80::/10
 *	 cgnat			100.64/10 (RFC 6598, carrier-grade NAT)
 *	 multicast		224/4, ff00::/8
 *	 unspecified	0.0.0.0/8, ::
 *	 reserved		240/4 and 255.255.255.255, 192.0.0/24, 198.18/15
 *					(benchmarking), the documentation ranges, 100::/64,
 *					2001:db8::/32
 *
 * IPv6 forms that carry an IPv4 address are judged by that address:
 * IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64
 * 64:ff9b::a.b.c.d (RFC 6052) and 6to4 2002:aabb:ccdd::/48.
 *
 * The caller decides what to do with the class (tk_addr_allowed): the
 * notify service connects only to public addresses, and to loopback when
 * its development setting push_allow_loopback is on.  Pure functions, no
 * allocation, safe in any thread.
 *
 * IDENTIFICATION
 *	  common/net_guard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_NET_GUARD_H
#define TK_NET_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include <sys/socket.h>

typedef enum tk_addr_class
{
	TK_ADDR_PUBLIC = 0,
	TK_ADDR_LOOPBACK,
	TK_ADDR_PRIVATE,
	TK_ADDR_LINK_LOCAL,
	TK_ADDR_CGNAT,
	TK_ADDR_MULTICAST,
	TK_ADDR_UNSPECIFIED,
	TK_ADDR_RESERVED,
	TK_ADDR_INVALID				/* not an IPv4 or IPv6 address */
} tk_addr_class;

/* the class of a socket address (AF_INET or AF_INET6) */
extern tk_addr_class tk_addr_classify(const struct sockaddr *sa, size_t len);

/* the class of a numeric address ("10.0.0.5", "::1"); TK_ADDR_INVALID if none */
extern tk_addr_class tk_addr_classify_text(const char *ip);

/* "public", "loopback", "private", "link-local", ... for messages */
extern const char *tk_addr_class_name(tk_addr_class c);

/* may a connection go there: public always, loopback only if allowed */
extern bool tk_addr_allowed(tk_addr_class c, bool allow_loopback);

/* the numeric form of a socket address, for a message ("" if none) */
extern void tk_addr_format(const struct sockaddr *sa, size_t len, char *out, size_t outlen);

#endif							/* TK_NET_GUARD_H */
