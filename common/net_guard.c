/*-------------------------------------------------------------------------
 *
 * net_guard.c
 *	  IP address classes for outgoing requests made on a user's behalf
 *
 * See net_guard.h for the ranges and why.  IPv4 is compared as a host
 * order 32-bit number against (network, prefix length) pairs; IPv6 by its
 * leading bytes, after taking out an embedded IPv4 address.
 *
 * IDENTIFICATION
 *	  common/net_guard.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "net_guard.h"

typedef struct v4_range
{
	uint32_t	net;
	int			bits;
	tk_addr_class class;
} v4_range;

#define V4(a, b, c, d) (((uint32_t) (a) << 24) | ((uint32_t) (b) << 16) | ((uint32_t) (c) << 8) | (uint32_t) (d))

static const v4_range v4_ranges[] = {
	{V4(0, 0, 0, 0), 8, TK_ADDR_UNSPECIFIED},
	{V4(127, 0, 0, 0), 8, TK_ADDR_LOOPBACK},
	{V4(10, 0, 0, 0), 8, TK_ADDR_PRIVATE},
	{V4(172, 16, 0, 0), 12, TK_ADDR_PRIVATE},
	{V4(192, 168, 0, 0), 16, TK_ADDR_PRIVATE},
	{V4(169, 254, 0, 0), 16, TK_ADDR_LINK_LOCAL},
	{V4(100, 64, 0, 0), 10, TK_ADDR_CGNAT},
	{V4(224, 0, 0, 0), 4, TK_ADDR_MULTICAST},
	{V4(240, 0, 0, 0), 4, TK_ADDR_RESERVED},	/* and 255.255.255.255 */
	{V4(192, 0, 0, 0), 24, TK_ADDR_RESERVED},
	{V4(192, 0, 2, 0), 24, TK_ADDR_RESERVED},
	{V4(198, 18, 0, 0), 15, TK_ADDR_RESERVED},
	{V4(198, 51, 100, 0), 24, TK_ADDR_RESERVED},
	{V4(203, 0, 113, 0), 24, TK_ADDR_RESERVED},
};

static tk_addr_class
classify_v4(uint32_t a)
{
	for (size_t i = 0; i < sizeof(v4_ranges) / sizeof(v4_ranges[0]); i++)
	{
		uint32_t	mask = 0xffffffffu << (32 - v4_ranges[i].bits);

		if ((a & mask) == v4_ranges[i].net)
			return v4_ranges[i].class;
	}
	return TK_ADDR_PUBLIC;
}

static uint32_t
v4_at(const unsigned char *b)
{
	return V4(b[0], b[1], b[2], b[3]);
}

static bool
zeros(const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

static tk_addr_class
classify_v6(const unsigned char *b)
{
	static const unsigned char nat64[12] = {0x00, 0x64, 0xff, 0x9b};

	if (zeros(b, 15))
		return b[15] == 1 ? TK_ADDR_LOOPBACK : b[15] == 0 ? TK_ADDR_UNSPECIFIED
			: classify_v4(v4_at(b + 12));	/* ::a.b.c.d (compatible) */
	if (zeros(b, 10) && b[10] == 0xff && b[11] == 0xff)
		return classify_v4(v4_at(b + 12));	/* ::ffff:a.b.c.d (mapped) */
	if (zeros(b, 12))
		return classify_v4(v4_at(b + 12));	/* ::a.b.c.d (compatible) */
	if (memcmp(b, nat64, 12) == 0)
		return classify_v4(v4_at(b + 12));	/* 64:ff9b::a.b.c.d (NAT64) */
	if (b[0] == 0x20 && b[1] == 0x02)
		return classify_v4(v4_at(b + 2));	/* 2002:aabb:ccdd:: (6to4) */
	if ((b[0] & 0xfe) == 0xfc)
		return TK_ADDR_PRIVATE; /* fc00::/7 */
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
		return TK_ADDR_LINK_LOCAL;	/* fe80::/10 */
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
		return TK_ADDR_PRIVATE; /* fec0::/10 */
	if (b[0] == 0xff)
		return TK_ADDR_MULTICAST;
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
		return TK_ADDR_RESERVED;	/* 2001:db8::/32 */
	if (b[0] == 0x01 && zeros(b + 1, 7))
		return TK_ADDR_RESERVED;	/* 100::/64, discard */
	return TK_ADDR_PUBLIC;
}

tk_addr_class
tk_addr_classify(const struct sockaddr *sa, size_t len)
{
	if (sa == NULL)
		return TK_ADDR_INVALID;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		return classify_v4(ntohl(((const struct sockaddr_in *) sa)->sin_addr.s_addr));
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		return classify_v6(((const struct sockaddr_in6 *) sa)->sin6_addr.s6_addr);
	return TK_ADDR_INVALID;
}

tk_addr_class
tk_addr_classify_text(const char *ip)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (ip == NULL)
		return TK_ADDR_INVALID;
	if (inet_pton(AF_INET, ip, &a4) == 1)
		return classify_v4(ntohl(a4.s_addr));
	if (inet_pton(AF_INET6, ip, &a6) == 1)
		return classify_v6(a6.s6_addr);
	return TK_ADDR_INVALID;
}

const char *
tk_addr_class_name(tk_addr_class c)
{
	switch (c)
	{
		case TK_ADDR_PUBLIC:
			return "public";
		case TK_ADDR_LOOPBACK:
			return "loopback";
		case TK_ADDR_PRIVATE:
			return "private";
		case TK_ADDR_LINK_LOCAL:
			return "link-local";
		case TK_ADDR_CGNAT:
			return "carrier-grade NAT";
		case TK_ADDR_MULTICAST:
			return "multicast";
		case TK_ADDR_UNSPECIFIED:
			return "unspecified";
		case TK_ADDR_RESERVED:
			return "reserved";
		case TK_ADDR_INVALID:
			break;
	}
	return "not an IP address";
}

bool
tk_addr_allowed(tk_addr_class c, bool allow_loopback)
{
	return c == TK_ADDR_PUBLIC || (c == TK_ADDR_LOOPBACK && allow_loopback);
}

void
tk_addr_format(const struct sockaddr *sa, size_t len, char *out, size_t outlen)
{
	if (outlen == 0)
		return;
	out[0] = '\0';
	if (sa != NULL && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, out, outlen);
	else if (sa != NULL && sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) sa)->sin6_addr, out, outlen);
}
