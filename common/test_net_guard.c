/*-------------------------------------------------------------------------
 *
 * test_net_guard.c
 *	  unit tests of net_guard.c and host_allowlist.h, TAP output
 *
 * The address classes a push request must never reach (each range at its
 * edges, IPv4 inside the IPv6 forms that carry it) and the host list
 * syntax (exact names, "*.suffix" on a label boundary, "*", case and
 * trailing dots).  Run by "make -C common check" and by tests/100_unit.pl.
 *
 * IDENTIFICATION
 *	  common/test_net_guard.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "host_allowlist.h"
#include "net_guard.h"
#include "test_tap.h"

static void
is_class(const char *ip, tk_addr_class want)
{
	char		name[160];
	tk_addr_class got = tk_addr_classify_text(ip);

	snprintf(name, sizeof(name), "%s is %s", ip, tk_addr_class_name(want));
	ok(got == want, name);
	if (got != want)
		printf("# got %s\n", tk_addr_class_name(got));
}

static void
host(const char *h, const char *list, bool want)
{
	char		name[300];

	snprintf(name, sizeof(name), "\"%s\" %s [%s]", h, want ? "in" : "not in", list);
	ok(tk_host_allowed(h, list) == want, name);
}

int
main(void)
{
	static const struct
	{
		const char *ip;
		tk_addr_class class;
	}			cases[] = {
		/* the addresses */
		{"169.254.169.254", TK_ADDR_LINK_LOCAL},
		{"10.0.0.5", TK_ADDR_PRIVATE},
		{"127.0.0.1", TK_ADDR_LOOPBACK},
		{"::1", TK_ADDR_LOOPBACK},
		/* range edges */
		{"126.255.255.255", TK_ADDR_PUBLIC},
		{"127.255.255.254", TK_ADDR_LOOPBACK},
		{"128.0.0.1", TK_ADDR_PUBLIC},
		{"9.255.255.255", TK_ADDR_PUBLIC},
		{"10.255.255.255", TK_ADDR_PRIVATE},
		{"11.0.0.0", TK_ADDR_PUBLIC},
		{"172.15.255.255", TK_ADDR_PUBLIC},
		{"172.16.0.0", TK_ADDR_PRIVATE},
		{"172.31.255.255", TK_ADDR_PRIVATE},
		{"172.32.0.0", TK_ADDR_PUBLIC},
		{"192.167.255.255", TK_ADDR_PUBLIC},
		{"192.168.1.1", TK_ADDR_PRIVATE},
		{"192.169.0.0", TK_ADDR_PUBLIC},
		{"169.253.255.255", TK_ADDR_PUBLIC},
		{"169.254.0.0", TK_ADDR_LINK_LOCAL},
		{"169.255.0.0", TK_ADDR_PUBLIC},
		{"100.63.255.255", TK_ADDR_PUBLIC},
		{"100.64.0.0", TK_ADDR_CGNAT},
		{"100.127.255.255", TK_ADDR_CGNAT},
		{"100.128.0.0", TK_ADDR_PUBLIC},
		{"0.0.0.0", TK_ADDR_UNSPECIFIED},
		{"0.1.2.3", TK_ADDR_UNSPECIFIED},
		{"223.255.255.255", TK_ADDR_PUBLIC},
		{"224.0.0.1", TK_ADDR_MULTICAST},
		{"239.255.255.255", TK_ADDR_MULTICAST},
		{"240.0.0.1", TK_ADDR_RESERVED},
		{"255.255.255.255", TK_ADDR_RESERVED},
		{"198.18.0.1", TK_ADDR_RESERVED},
		{"8.8.8.8", TK_ADDR_PUBLIC},
		{"142.250.74.106", TK_ADDR_PUBLIC},
		/* IPv6 */
		{"::", TK_ADDR_UNSPECIFIED},
		{"::2", TK_ADDR_UNSPECIFIED},
		{"fc00::1", TK_ADDR_PRIVATE},
		{"fd12:3456::1", TK_ADDR_PRIVATE},
		{"fe80::1", TK_ADDR_LINK_LOCAL},
		{"febf:ffff::1", TK_ADDR_LINK_LOCAL},
		{"fec0::1", TK_ADDR_PRIVATE},
		{"ff02::1", TK_ADDR_MULTICAST},
		{"2001:db8::1", TK_ADDR_RESERVED},
		{"2a00:1450:4001:82b::200a", TK_ADDR_PUBLIC},
		{"2606:4700::1111", TK_ADDR_PUBLIC},
		/* IPv4 inside IPv6 */
		{"::ffff:127.0.0.1", TK_ADDR_LOOPBACK},
		{"::ffff:7f00:1", TK_ADDR_LOOPBACK},
		{"::ffff:169.254.169.254", TK_ADDR_LINK_LOCAL},
		{"::ffff:10.0.0.5", TK_ADDR_PRIVATE},
		{"::ffff:8.8.8.8", TK_ADDR_PUBLIC},
		{"::127.0.0.1", TK_ADDR_LOOPBACK},
		{"::10.1.2.3", TK_ADDR_PRIVATE},
		{"64:ff9b::a9fe:a9fe", TK_ADDR_LINK_LOCAL},
		{"64:ff9b::808:808", TK_ADDR_PUBLIC},
		{"2002:a00:5::1", TK_ADDR_PRIVATE},
		{"2002:7f00:1::", TK_ADDR_LOOPBACK},
		{"2002:808:808::1", TK_ADDR_PUBLIC},
		/* not addresses */
		{"localhost", TK_ADDR_INVALID},
		{"2130706433", TK_ADDR_INVALID},
		{"", TK_ADDR_INVALID},
	};
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	char		text[64];

	printf("# net_guard: address classes\n");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_class(cases[i].ip, cases[i].class);

	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	inet_pton(AF_INET, "169.254.169.254", &s4.sin_addr);
	ok(tk_addr_classify((struct sockaddr *) &s4, sizeof(s4)) == TK_ADDR_LINK_LOCAL,
	   "sockaddr_in 169.254.169.254 is link-local");
	ok(tk_addr_classify((struct sockaddr *) &s4, 4) == TK_ADDR_INVALID,
	   "a truncated sockaddr is not an address");
	tk_addr_format((struct sockaddr *) &s4, sizeof(s4), text, sizeof(text));
	ok(strcmp(text, "169.254.169.254") == 0, "sockaddr_in formats");
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
	ok(tk_addr_classify((struct sockaddr *) &s6, sizeof(s6)) == TK_ADDR_LOOPBACK,
	   "sockaddr_in6 ::ffff:127.0.0.1 is loopback");
	tk_addr_format((struct sockaddr *) &s6, sizeof(s6), text, sizeof(text));
	ok(strcmp(text, "::ffff:127.0.0.1") == 0, "sockaddr_in6 formats");

	ok(tk_addr_allowed(TK_ADDR_PUBLIC, false), "public: allowed");
	ok(!tk_addr_allowed(TK_ADDR_LOOPBACK, false), "loopback: refused by default");
	ok(tk_addr_allowed(TK_ADDR_LOOPBACK, true), "loopback: allowed when asked (development)");
	ok(!tk_addr_allowed(TK_ADDR_PRIVATE, true), "private: refused even with loopback allowed");
	ok(!tk_addr_allowed(TK_ADDR_LINK_LOCAL, true), "link-local: refused even with loopback allowed");
	ok(!tk_addr_allowed(TK_ADDR_INVALID, true), "not an address: refused");

	printf("# host_allowlist\n");
	host("fcm.googleapis.com", TK_PUSH_ALLOWED_HOSTS_DEFAULT, true);
	host("FCM.GoogleAPIs.com.", TK_PUSH_ALLOWED_HOSTS_DEFAULT, true);
	host("android.googleapis.com", TK_PUSH_ALLOWED_HOSTS_DEFAULT, true);
	host("updates.push.services.mozilla.com", TK_PUSH_ALLOWED_HOSTS_DEFAULT, true);
	host("web.push.apple.com", TK_PUSH_ALLOWED_HOSTS_DEFAULT, true);
	host("wns2-by3p.notify.windows.com", TK_PUSH_ALLOWED_HOSTS_DEFAULT, true);
	host("notify.windows.com", TK_PUSH_ALLOWED_HOSTS_DEFAULT, false);
	host("evilnotify.windows.com", TK_PUSH_ALLOWED_HOSTS_DEFAULT, false);
	host("wns2-by3p.notify.windows.com.evil.example", TK_PUSH_ALLOWED_HOSTS_DEFAULT, false);
	host("x.fcm.googleapis.com", TK_PUSH_ALLOWED_HOSTS_DEFAULT, false);
	host("fcm.googleapis.com.evil.example", TK_PUSH_ALLOWED_HOSTS_DEFAULT, false);
	host("googleapis.com", TK_PUSH_ALLOWED_HOSTS_DEFAULT, false);
	host("169.254.169.254", TK_PUSH_ALLOWED_HOSTS_DEFAULT, false);
	host("metadata.google.internal", TK_PUSH_ALLOWED_HOSTS_DEFAULT, false);
	host("10.0.0.5", TK_PUSH_ALLOWED_HOSTS_DEFAULT, false);
	host("localhost", TK_PUSH_ALLOWED_HOSTS_DEFAULT, false);
	host("[::1]", TK_PUSH_ALLOWED_HOSTS_DEFAULT, false);
	host("127.0.0.1", TK_PUSH_ALLOWED_HOSTS_DEFAULT, false);
	host("", TK_PUSH_ALLOWED_HOSTS_DEFAULT, false);
	host(".", "*", false);
	host("ntfy.example.org", "", false);
	host("ntfy.example.org", "ntfy.example.org", true);
	host("ntfy.example.org", " push.example.net ,\tntfy.example.org. ", true);
	host("ntfy.example.org", "ntfy.example.org.evil", false);
	host("anything.example", "*", true);
	host("127.0.0.1", "127.0.0.1", true);
	host("[::1]", "127.0.0.1,[::1]", true);

	printf("1..%d\n", ntests);
	return nfailed ? 1 : 0;
}
