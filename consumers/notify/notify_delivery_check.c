/*-------------------------------------------------------------------------
 *
 * notify_delivery_check.c
 *	  send one push or one email from the command line (a test driver)
 *
 * Built by "make check-delivery", not installed.  tests/300_notify_delivery.pl
 * runs it against real receivers (tests/lib/push_receiver.py and
 * smtp_sink.py).  Prints one line on stdout,
 *	 result=<delivered|gone|permanent|transient|unavailable> status=<n> retry_after=<n>
 * and the error text, if any, on stderr.  Exit status: 0 delivered,
 * 2 gone, 3 permanent, 4 transient, 5 unavailable, 1 usage or setup error.
 *
 *	 notify_delivery_check vapid-public --vapid-key K --subject S
 *	 notify_delivery_check push --vapid-key K --subject S --endpoint URL
 *		 --p256dh P --auth A --payload TEXT [--ttl N] [--urgency U] [--topic T]
 *	 notify_delivery_check gateway --url URL --payload JSON [--authorization-env VAR]
 *	 push and gateway also take [--allowed-hosts LIST] [--gateway-allowed-hosts
 *		 LIST] [--allow-loopback] [--connect-to HOST:PORT:TO_HOST:TO_PORT,...]
 *		 (push_guard.h; without them the service's defaults apply)
 *	 notify_delivery_check email --url SMTP_URL --from ADDR [--from-name N]
 *		 --to ADDR --subject S --body TEXT --id ID [--date EPOCH]
 *		 [--user U --password-env VAR] [--starttls] [--ca-file F]
 *
 * Secrets come from the environment (--password-env, --authorization-env)
 * so they do not show in ps; the VAPID key is normally a file path.
 *
 * IDENTIFICATION
 *	  consumers/notify/notify_delivery_check.c
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "email.h"
#include "webpush.h"

static void
usage(void)
{
	fprintf(stderr,
			"usage: notify_delivery_check vapid-public|push|gateway|email [options]\n"
			"  --vapid-key K --subject S       VAPID key (PEM file/text or base64url) and contact\n"
			"  --endpoint URL --p256dh P --auth A   the push subscription\n"
			"  --payload TEXT                  push payload or gateway JSON\n"
			"  --ttl N (86400) --urgency U (normal) --topic T\n"
			"  --url URL                       gateway URL or smtp(s):// URL\n"
			"  --authorization-env VAR         gateway Authorization value from $VAR\n"
			"  --from ADDR --from-name N --to ADDR --subject S --body TEXT --id ID\n"
			"  --date EPOCH --user U --password-env VAR --starttls --ca-file F\n"
			"  --timeout-ms N\n"
			"  --allowed-hosts LIST --gateway-allowed-hosts LIST --allow-loopback\n"
			"  --connect-to HOST:PORT:TO_HOST:TO_PORT,...\n");
	exit(1);
}

static int
report(tkn_delivery d, const char *err)
{
	printf("result=%s status=%ld retry_after=%ld\n", tkn_result_name(d.result),
		   d.status, d.retry_after);
	if (d.result != TKN_DELIVERED)
		fprintf(stderr, "%s\n", err);
	switch (d.result)
	{
		case TKN_DELIVERED:
			return 0;
		case TKN_GONE:
			return 2;
		case TKN_PERMANENT:
			return 3;
		case TKN_TRANSIENT:
			return 4;
		case TKN_UNAVAILABLE:
			return 5;
	}
	return 1;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"vapid-key", required_argument, NULL, 'k'},
		{"subject", required_argument, NULL, 's'},
		{"endpoint", required_argument, NULL, 'e'},
		{"p256dh", required_argument, NULL, 'p'},
		{"auth", required_argument, NULL, 'a'},
		{"payload", required_argument, NULL, 'P'},
		{"ttl", required_argument, NULL, 't'},
		{"urgency", required_argument, NULL, 'u'},
		{"topic", required_argument, NULL, 'T'},
		{"url", required_argument, NULL, 'U'},
		{"authorization-env", required_argument, NULL, 'A'},
		{"from", required_argument, NULL, 'f'},
		{"from-name", required_argument, NULL, 'n'},
		{"to", required_argument, NULL, 'r'},
		{"body", required_argument, NULL, 'b'},
		{"id", required_argument, NULL, 'i'},
		{"date", required_argument, NULL, 'd'},
		{"user", required_argument, NULL, 'l'},
		{"password-env", required_argument, NULL, 'w'},
		{"starttls", no_argument, NULL, 'S'},
		{"ca-file", required_argument, NULL, 'c'},
		{"timeout-ms", required_argument, NULL, 'm'},
		{"allowed-hosts", required_argument, NULL, 'H'},
		{"gateway-allowed-hosts", required_argument, NULL, 'G'},
		{"allow-loopback", no_argument, NULL, 'L'},
		{"connect-to", required_argument, NULL, 'C'},
		{NULL, 0, NULL, 0}
	};
	const char *mode;
	const char *vapid_key = NULL,
			   *payload = "",
			   *url = NULL;
	tkn_push_subscription sub = {NULL, NULL, NULL};
	tkn_push_options popt;
	tkn_smtp_config smtp;
	tkn_email mail;
	char		err[1024] = "";
	tkn_vapid  *v;
	int			c,
				rc;

	if (argc < 2)
		usage();
	mode = argv[1];
	tkn_push_options_init(&popt);
	memset(&smtp, 0, sizeof(smtp));
	memset(&mail, 0, sizeof(mail));
	optind = 2;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 'k':
				vapid_key = optarg;
				break;
			case 's':
				mail.subject = optarg;
				break;
			case 'e':
				sub.endpoint = optarg;
				break;
			case 'p':
				sub.p256dh = optarg;
				break;
			case 'a':
				sub.auth = optarg;
				break;
			case 'P':
				payload = optarg;
				break;
			case 't':
				popt.ttl = atoi(optarg);
				break;
			case 'u':
				popt.urgency = optarg;
				break;
			case 'T':
				popt.topic = optarg;
				break;
			case 'U':
				url = optarg;
				break;
			case 'A':
				popt.authorization = getenv(optarg);
				break;
			case 'f':
				smtp.from = optarg;
				break;
			case 'n':
				smtp.from_name = optarg;
				break;
			case 'r':
				mail.to = optarg;
				break;
			case 'b':
				mail.body = optarg;
				break;
			case 'i':
				mail.id = optarg;
				break;
			case 'd':
				mail.date = (time_t) atoll(optarg);
				break;
			case 'l':
				smtp.username = optarg;
				break;
			case 'w':
				smtp.password = getenv(optarg);
				break;
			case 'S':
				smtp.starttls = true;
				break;
			case 'c':
				smtp.ca_file = optarg;
				popt.ca_file = optarg;
				break;
			case 'm':
				smtp.timeout_ms = popt.timeout_ms = atol(optarg);
				break;
			case 'H':
				popt.allowed_hosts = optarg;
				break;
			case 'G':
				popt.gateway_allowed_hosts = optarg;
				break;
			case 'L':
				popt.allow_loopback = true;
				break;
			case 'C':
				popt.connect_to = optarg;
				break;
			default:
				usage();
		}
	}
	if (!tkn_delivery_global_init(err, sizeof(err)))
	{
		fprintf(stderr, "%s\n", err);
		return 1;
	}

	if (strcmp(mode, "vapid-public") == 0 || strcmp(mode, "push") == 0)
	{
		/* --subject is the VAPID subject here */
		v = tkn_vapid_load(vapid_key, mail.subject, err, sizeof(err));
		if (v == NULL)
		{
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		if (strcmp(mode, "vapid-public") == 0)
		{
			printf("%s\n", tkn_vapid_public_key(v));
			rc = 0;
		}
		else
			rc = report(tkn_webpush_send(v, &sub, payload, strlen(payload), &popt,
										 err, sizeof(err)), err);
		tkn_vapid_free(v);
	}
	else if (strcmp(mode, "gateway") == 0)
		rc = report(tkn_gateway_post(url, payload, strlen(payload), &popt, err, sizeof(err)),
					err);
	else if (strcmp(mode, "email") == 0)
	{
		smtp.url = url;
		rc = report(tkn_email_send(&smtp, &mail, err, sizeof(err)), err);
	}
	else
		usage();
	tkn_delivery_global_cleanup();
	return rc;
}
