/*-------------------------------------------------------------------------
 *
 * test_unit.c
 *	  unit tests of the pure common code, TAP output
 *
 * No PostgreSQL, no Kafka: config file parsing and redaction, backoff,
 * the RFC 3339 parser, the histogram, and the plain-words mapping of
 * librdkafka's connection errors (kafka_errors.c).  The message contract
 * (messages/) is tested in test_messages.c.  Run by "make -C common check"
 * and by tests/100_unit.pl.
 *
 * IDENTIFICATION
 *	  common/test_unit.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "clock.h"
#include "config.h"
#include "kafka_errors.h"
#include "otlp.h"
#include "prom.h"
#include "test_tap.h"

/* ---- config ---- */

typedef struct kv_seen
{
	char		text[1024];
} kv_seen;

static const char *
collect(void *arg, const char *key, const char *value, char *errbuf, size_t errlen)
{
	kv_seen    *s = arg;

	if (strcmp(key, "reject") == 0)
	{
		snprintf(errbuf, errlen, "rejected \"%s\"", value);
		return errbuf;
	}
	snprintf(s->text + strlen(s->text), sizeof(s->text) - strlen(s->text),
			 "[%s=%s]", key, value);
	return NULL;
}

static void
test_config(void)
{
	kv_seen		s = {""};
	char		err[256];

	ok(tk_config_parse_text("# c\n a = 1 \n\nb=two words # note\nc = \"  q #x \"\n"
							"pw = ab#cd\nkafka.sasl.password=p\n",
							"f.conf", collect, &s, err, sizeof(err)),
	   "config: valid text parses");
	ok(strcmp(s.text, "[a=1][b=two words][c=  q #x ][pw=ab#cd][kafka.sasl.password=p]") == 0,
	   "config: values trimmed, comments stripped, quotes kept");
	ok(!tk_config_parse_text("a = 1\nnovalue\n", "f.conf", collect, &s, err, sizeof(err)) &&
	   strcmp(err, "f.conf:2: syntax error: expected \"key = value\"") == 0,
	   "config: syntax error names path:line");
	ok(!tk_config_parse_text("reject = x\n", "g.conf", collect, &s, err, sizeof(err)) &&
	   strcmp(err, "g.conf:1: rejected \"x\"") == 0,
	   "config: setter errors name path:line");
	ok(!tk_config_parse_text("c = \"open\n", "h", collect, &s, err, sizeof(err)) &&
	   strstr(err, "unterminated") != NULL, "config: unterminated quote");
	ok(!tk_config_parse_text(" = 3\n", "h", collect, &s, err, sizeof(err)),
	   "config: missing key");
	ok(tk_config_is_secret("sasl.password") && tk_config_is_secret("ssl.key.password") &&
	   tk_config_is_secret("ssl.key.pem") && tk_config_is_secret("sasl.oauthbearer.config") &&
	   tk_config_is_secret("sasl.oauthbearer.client.secret") &&
	   !tk_config_is_secret("sasl.username") && !tk_config_is_secret("linger.ms"),
	   "config: secret names recognized");
	ok(strcmp(tk_config_display_value("sasl.password", "x"), "[redacted]") == 0,
	   "config: secrets displayed redacted");
	{
		long		v;
		bool		b;

		ok(tk_config_parse_int("42", 0, 100, &v) && v == 42 &&
		   !tk_config_parse_int("101", 0, 100, &v) && !tk_config_parse_int("4x", 0, 100, &v),
		   "config: integers with range");
		ok(tk_config_parse_bool("on", &b) && b && tk_config_parse_bool("false", &b) && !b &&
		   !tk_config_parse_bool("maybe", &b), "config: booleans");
	}
}

/* ---- backoff ---- */

static void
test_backoff(void)
{
	tk_backoff	b;
	int			prev = 0;
	bool		capped = true;
	bool		grows = true;

	ok(tk_backoff_delay(0, 100, 10000, 0) == 50 && tk_backoff_delay(0, 100, 10000, 0.999999) == 99,
	   "backoff: first delay is base * [0.5, 1)");
	ok(tk_backoff_delay(3, 100, 10000, 0) == 400, "backoff: doubles per attempt");
	ok(tk_backoff_delay(40, 100, 10000, 0.999999) <= 10000 &&
	   tk_backoff_delay(40, 100, 10000, 0) == 5000, "backoff: capped");
	tk_backoff_init(&b, 100, 3000, 42);
	for (int i = 0; i < 20; i++)
	{
		int			d = tk_backoff_next(&b);

		if (d > 3000 || d < 50)
			capped = false;
		if (i < 4 && d < prev / 2)
			grows = false;
		prev = d;
	}
	ok(capped, "backoff: next() stays within [base/2, max]");
	ok(grows, "backoff: next() grows");
	tk_backoff_reset(&b);
	ok(tk_backoff_next(&b) < 100, "backoff: reset starts over");
}

/* ---- clock and histogram ---- */

static void
test_clock_hist(void)
{
	tk_histogram h;

	ok(tk_parse_rfc3339_us("1970-01-01T00:00:01.5Z") == 1500000, "clock: fraction parsed");
	ok(tk_parse_rfc3339_us("2026-01-22T10:00:00.000001Z") == 1769076000000001LL,
	   "clock: RFC 3339 to microseconds");
	ok(tk_parse_rfc3339_us("garbage") == 0, "clock: garbage is 0");
	{
		/* against timegm over leap years, month ends and centuries */
		bool		same = true;
		const char *days[] = {"1970-01-01", "1999-12-31", "2000-02-29", "2000-03-01",
		"2024-02-29", "2026-12-31", "2100-03-01", "2038-01-19"};

		for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++)
		{
			struct tm	tm;
			char		ts[40];

			memset(&tm, 0, sizeof(tm));
			sscanf(days[i], "%d-%d-%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
			tm.tm_year -= 1900;
			tm.tm_mon -= 1;
			tm.tm_hour = 23;
			tm.tm_min = 59;
			tm.tm_sec = 58;
			snprintf(ts, sizeof(ts), "%sT23:59:58.25Z", days[i]);
			if (tk_parse_rfc3339_us(ts) != (int64_t) timegm(&tm) * 1000000 + 250000)
				same = false;
		}
		ok(same, "clock: RFC 3339 parser agrees with timegm");
	}
	memset(&h, 0, sizeof(h));
	for (int i = 0; i < 99; i++)
		tk_hist_observe(&h, 0.004);
	tk_hist_observe(&h, 0.2);
	ok(h.count == 100 && tk_hist_quantile(&h, 0.5) == 0.005 && tk_hist_quantile(&h, 1.0) == 0.2,
	   "histogram: quantiles from buckets, max exact");
}

/* ---- Kafka errors in plain words ---- */

static void
test_kafka_errors(void)
{
	tk_kvlist	props = {NULL, 0};
	char		msg[1024];
	tk_kafka_problem k;

	tk_kvlist_set(&props, "bootstrap.servers", "kafka-1:9093,kafka-2:9093");
	tk_kvlist_set(&props, "security.protocol", "SASL_SSL");
	tk_kvlist_set(&props, "sasl.mechanism", "SCRAM-SHA-512");
	tk_kvlist_set(&props, "sasl.username", "relay");
	tk_kvlist_set(&props, "sasl.password", "s3cret-pw");
	tk_kvlist_set(&props, "ssl.ca.location", "/etc/kafka/ca.pem");

	/* the line the relay used to repeat every second, from the log callback */
	k = tk_kafka_explain(0, "[thrd:sasl_ssl://kafka-1:9093/bootstrap]: sasl_ssl://kafka-1:9093/bootstrap: "
						 "SASL authentication error: SaslAuthenticateRequest failed: Local: Broker transport failure "
						 "(after 3ms in state AUTH_REQ)", &props, msg, sizeof(msg));
	ok(k == TK_KAFKA_AUTH, "kafka: SASL failure is an auth problem");
	ok(strstr(msg, "sasl_ssl://kafka-1:9093") && !strstr(msg, "bootstrap]") &&
	   strstr(msg, "user \"relay\"") && strstr(msg, "SCRAM-SHA-512") &&
	   strstr(msg, "check sasl.username / sasl.password"),
	   "kafka: auth message names broker, user, mechanism and the fix");
	ok(!strstr(msg, "s3cret-pw"), "kafka: the password is never in the message");

	k = tk_kafka_explain(RD_KAFKA_RESP_ERR__AUTHENTICATION,
						 "sasl_ssl://kafka-2:9093/2: SASL authentication error: Authentication failed during "
						 "authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512",
						 &props, msg, sizeof(msg));
	ok(k == TK_KAFKA_AUTH && strstr(msg, "sasl_ssl://kafka-2:9093 ") != NULL,
	   "kafka: error event with a broker id names the broker");

	k = tk_kafka_explain(RD_KAFKA_RESP_ERR__SSL,
						 "ssl://kafka-1:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::"
						 "certificate verify failed: broker certificate could not be verified, verify that "
						 "ssl.ca.location is correctly configured or root CA certificates are installed "
						 "(after 4ms in state SSL_HANDSHAKE)", &props, msg, sizeof(msg));
	ok(k == TK_KAFKA_TLS_CA &&
	   strstr(msg, "the broker's certificate is not signed by ssl.ca.location (/etc/kafka/ca.pem)"),
	   "kafka: untrusted CA names ssl.ca.location");

	k = tk_kafka_explain(RD_KAFKA_RESP_ERR__RESOLVE,
						 "nosuch:9092/bootstrap: Failed to resolve 'nosuch:9092': Name or service not known "
						 "(after 2ms in state CONNECT)", &props, msg, sizeof(msg));
	ok(k == TK_KAFKA_RESOLVE && strstr(msg, "nosuch:9092 does not resolve") &&
	   strstr(msg, "bootstrap.servers"), "kafka: unresolvable broker");

	k = tk_kafka_explain(RD_KAFKA_RESP_ERR__TRANSPORT,
						 "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused "
						 "(after 0ms in state CONNECT)", &props, msg, sizeof(msg));
	ok(k == TK_KAFKA_REFUSED && strstr(msg, "127.0.0.1:1 refused the connection"),
	   "kafka: refused connection");
	ok(!tk_kafka_problem_is_config(k) && tk_kafka_problem_is_config(TK_KAFKA_AUTH),
	   "kafka: refused heals by itself, auth needs a config change");

	k = tk_kafka_explain(RD_KAFKA_RESP_ERR__TRANSPORT,
						 "kafka-1:9093/bootstrap: Disconnected while requesting ApiVersion: might be caused by "
						 "incorrect security.protocol configuration (connecting to a SSL listener?)",
						 &props, msg, sizeof(msg));
	ok(k == TK_KAFKA_PROTOCOL && strstr(msg, "security.protocol SASL_SSL"),
	   "kafka: wrong security.protocol");

	k = tk_kafka_explain(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "2/2 brokers are down",
						 &props, msg, sizeof(msg));
	ok(k == TK_KAFKA_ALL_DOWN && strstr(msg, "all Kafka brokers are down"),
	   "kafka: all brokers down");

	k = tk_kafka_explain(RD_KAFKA_RESP_ERR__TIMED_OUT, "something else", NULL, msg, sizeof(msg));
	ok(k == TK_KAFKA_OTHER && strcmp(msg, "kafka: _TIMED_OUT: something else") == 0,
	   "kafka: anything else keeps librdkafka's words");
	tk_kvlist_free(&props);
}

static void
test_trace(void)
{
	const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	tk_trace_ctx c,
				d;
	char		out[TK_TRACEPARENT_LEN + 1];
	uint8_t		a[16],
				b[16];
	char		url[128];

	ok(tk_trace_parse(tp, &c) && c.valid && c.flags == 1 && c.trace_id[0] == 0x4b &&
	   c.span_id[7] == 0xb7, "trace: traceparent parsed");
	tk_trace_format(&c, out);
	ok(strcmp(out, tp) == 0, "trace: formatted back the same");
	ok(!tk_trace_parse(NULL, &d) && !tk_trace_parse("", &d) &&
	   !tk_trace_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &d) &&
	   !tk_trace_parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", &d) &&
	   !tk_trace_parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01", &d) &&
	   !tk_trace_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX: y", &d) &&
	   !d.valid, "trace: a bad traceparent is refused (version, case, zero id, extra text)");
	tk_trace_derive("x", "1", NULL, a, 16);
	tk_trace_derive("x", "1", NULL, b, 16);
	ok(memcmp(a, b, 16) == 0, "trace: derive gives the same id for the same input");
	tk_trace_derive("x1", "", NULL, b, 16);
	ok(memcmp(a, b, 16) != 0, "trace: derive keeps its inputs apart");
	tk_url_display("https://user:tok@otel.example:4318/v1/traces?k=secret", url, sizeof(url));
	ok(strcmp(url, "https://otel.example:4318/v1/traces") == 0, "otlp: endpoint shown without credentials");
}

int
main(void)
{
	test_trace();
	test_config();
	test_backoff();
	test_clock_hist();
	test_kafka_errors();
	printf("1..%d\n", ntests);
	return nfailed ? 1 : 0;
}
