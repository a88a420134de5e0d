/*-------------------------------------------------------------------------
 *
 * kafka_errors.c
 *	  one handler for Kafka connection problems, for every daemon
 *
 * librdkafka reports an unusable broker twice (a "FAIL" log line and an
 * error event), again on every reconnect, in its own words.  This says it
 * once, plainly, naming the broker, the settings and the fix
 * (tk_kafka_explain(), pure, unit-tested).  Kinds: auth (SASL login or
 * mechanism refused), tls_ca (certificate not signed by ssl.ca.location),
 * tls, protocol (the listener speaks another security.protocol), resolve,
 * refused (nothing listens), all_down, other (librdkafka's text).
 *
 * The first report of a kind is logged (ERROR when configuration must
 * change, else WARNING); repeats within TK_KAFKA_REPEAT_S are counted and
 * the next one after logs "still failing" with the count.  Log-callback
 * reports are logged alike but not counted (the error event follows).
 * Error events count into todo_kafka_kafka_errors_total{kind}; the last
 * problem is "current" for /healthz until tk_kafka_ok() or
 * TK_KAFKA_CURRENT_S without a repeat.
 *
 * Threading: error_cb runs on the polling thread, the log callback on
 * librdkafka's threads, /healthz and /metrics on the HTTP thread: all
 * state is under one mutex; tk_kafka_ok() takes it only when a problem is
 * current, so the delivery path stays lock-free.
 *
 * IDENTIFICATION
 *	  common/kafka_errors.c
 *
 *-------------------------------------------------------------------------
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka_errors.h"
#include "log.h"
#include "prom_series.h"

#define NKINDS (TK_KAFKA_OTHER + 1)

static const char *const kind_names[NKINDS] = {
	"ok", "auth", "tls_ca", "tls", "protocol", "resolve", "refused",
	"all_down", "other"
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static tk_kvlist settings;		/* copy of the daemon's Kafka properties */
static struct
{
	time_t		last_logged;	/* 0: never */
	long		repeats;		/* since last_logged */
}			kinds[NKINDS];
static tk_kafka_problem current = TK_KAFKA_OK;
static time_t current_seen;
static char current_text[512];
static atomic_bool any_current;
static tk_series_set series = TK_SERIES_SET_INIT;

#define ERRORS_TOTAL "todo_kafka_kafka_errors_total", "counter", \
	"Kafka client errors by kind (auth, tls_ca, tls, protocol, resolve, refused, all_down, other)"

const char *
tk_kafka_problem_name(tk_kafka_problem p)
{
	return (p >= 0 && p < NKINDS) ? kind_names[p] : "other";
}

bool
tk_kafka_problem_is_config(tk_kafka_problem p)
{
	return p == TK_KAFKA_AUTH || p == TK_KAFKA_TLS_CA || p == TK_KAFKA_TLS ||
		p == TK_KAFKA_PROTOCOL || p == TK_KAFKA_RESOLVE;
}

void
tk_kafka_errors_configure(const tk_kvlist *props)
{
	pthread_mutex_lock(&lock);
	tk_kvlist_free(&settings);
	tk_kvlist_copy(&settings, props);
	pthread_mutex_unlock(&lock);
}

static const char *
setting(const tk_kvlist *props, const char *key, const char *dflt)
{
	const char *v = props ? tk_kvlist_get(props, key) : NULL;

	return v && *v ? v : dflt;
}

/*
 * The broker a reason names: "[thrd:X]: X: text" or "X: text" where X is
 * "proto://host:port/id" or "host:port/id"; the "/id" (bootstrap, broker
 * id) is dropped.  Copies "" when the text names none.
 */
static void
broker_of(const char *reason, char *buf, size_t len)
{
	const char *p = reason;
	const char *end;
	size_t		n;

	buf[0] = '\0';
	if (strncmp(p, "[thrd:", 6) == 0 && (end = strstr(p, "]: ")) != NULL)
		p = end + 3;
	end = strstr(p, ": ");
	if (end == NULL || memchr(p, ' ', end - p) != NULL || memchr(p, ':', end - p) == NULL)
		return;
	n = end - p;
	{
		const char *host = p;
		const char *slash;

		if ((slash = strstr(p, "://")) != NULL && slash < end)
			host = slash + 3;
		slash = memchr(host, '/', end - host);
		if (slash)
			n = slash - p;
	}
	if (n >= len)
		n = len - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
}

static bool
has(const char *s, const char *needle)
{
	return strstr(s, needle) != NULL;
}

tk_kafka_problem
tk_kafka_explain(int err, const char *reason, const tk_kvlist *props,
				 char *buf, size_t len)
{
	char		broker[256];
	const char *servers = setting(props, "bootstrap.servers", "(not set)");
	const char *mech = setting(props, "sasl.mechanism",
							   setting(props, "sasl.mechanisms", "GSSAPI"));
	const char *user = setting(props, "sasl.username", "(not set)");
	const char *proto = setting(props, "security.protocol", "plaintext");
	const char *ca = setting(props, "ssl.ca.location", NULL);
	const char *b;

	if (reason == NULL)
		reason = "";
	broker_of(reason, broker, sizeof(broker));
	b = broker[0] ? broker : servers;

	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || has(reason, "brokers are down"))
	{
		snprintf(buf, len, "all Kafka brokers are down (bootstrap.servers %s); waiting for one to come back",
				 servers);
		return TK_KAFKA_ALL_DOWN;
	}
	if (has(reason, "Unsupported SASL mechanism") ||
		(has(reason, "SASL") && has(reason, "mechanism handshake failed")))
	{
		snprintf(buf, len, "Kafka broker %s does not offer SASL mechanism %s: check sasl.mechanism",
				 b, mech);
		return TK_KAFKA_AUTH;
	}
	if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
		err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
		has(reason, "SASL authentication error") ||
		has(reason, "Authentication failed"))
	{
		snprintf(buf, len, "Kafka broker %s refused the login of user \"%s\" with SASL %s: check sasl.username / sasl.password",
				 b, user, mech);
		return TK_KAFKA_AUTH;
	}
	if (has(reason, "certificate verify failed") ||
		has(reason, "broker certificate could not be verified"))
	{
		if (ca)
			snprintf(buf, len, "the certificate of Kafka broker %s could not be verified: the broker's certificate is not signed by ssl.ca.location (%s); point ssl.ca.location at the CA that signed it",
					 b, ca);
		else
			snprintf(buf, len, "the certificate of Kafka broker %s could not be verified: the broker's certificate is not signed by ssl.ca.location (not set: the system's CA certificates were used); set ssl.ca.location to the CA that signed it",
					 b);
		return TK_KAFKA_TLS_CA;
	}
	if (has(reason, "incorrect security.protocol") || has(reason, "wrong version number") ||
		has(reason, "packet length too long"))
	{
		snprintf(buf, len, "Kafka broker %s does not speak security.protocol %s on that port: check security.protocol and the port in bootstrap.servers",
				 b, proto);
		return TK_KAFKA_PROTOCOL;
	}
	if (err == RD_KAFKA_RESP_ERR__SSL || has(reason, "SSL handshake failed"))
	{
		snprintf(buf, len, "the TLS handshake with Kafka broker %s failed: check the ssl.* settings (%s)",
				 b, reason);
		return TK_KAFKA_TLS;
	}
	if (err == RD_KAFKA_RESP_ERR__RESOLVE || has(reason, "Failed to resolve"))
	{
		snprintf(buf, len, "the name of Kafka broker %s does not resolve: check bootstrap.servers (%s) and DNS",
				 b, servers);
		return TK_KAFKA_RESOLVE;
	}
	if (has(reason, "Connection refused"))
	{
		snprintf(buf, len, "Kafka broker %s refused the connection: is it running and listening there? check bootstrap.servers (%s)",
				 b, servers);
		return TK_KAFKA_REFUSED;
	}
	snprintf(buf, len, "kafka: %s: %s", err ? rd_kafka_err2name(err) : "log", reason);
	return TK_KAFKA_OTHER;
}

/* log text for kind k now, rate-limited; called with the lock held */
static void
say(tk_kafka_problem k, const char *text, const char *raw, bool count)
{
	time_t		now = time(NULL);
	tk_log_level level = tk_kafka_problem_is_config(k) ? TK_LOG_ERROR : TK_LOG_WARNING;

	current = k;
	current_seen = now;
	snprintf(current_text, sizeof(current_text), "%s", text);
	atomic_store(&any_current, true);
	if (kinds[k].last_logged == 0)
	{
		tk_log(level, "%s", text);
		kinds[k].last_logged = now;
		kinds[k].repeats = 0;
	}
	else if (now - kinds[k].last_logged >= TK_KAFKA_REPEAT_S)
	{
		tk_log(level, "still: %s (%ld more times in the last %ld s)", text,
			   kinds[k].repeats + 1, (long) (now - kinds[k].last_logged));
		kinds[k].last_logged = now;
		kinds[k].repeats = 0;
	}
	else if (count)
		kinds[k].repeats++;
	tk_log(TK_LOG_DEBUG, "kafka: %s", raw);
}

static void
count_error(tk_kafka_problem k)
{
	char		l[64];

	tk_series_label(l, sizeof(l), "kind", tk_kafka_problem_name(k));
	tk_series_add(&series, ERRORS_TOTAL, l, 1);
}

bool
tk_kafka_error(rd_kafka_t *rk, int err, const char *reason)
{
	char		text[1024];
	tk_kafka_problem k;

	if (err == RD_KAFKA_RESP_ERR__FATAL)
	{
		char		buf[512];

		rd_kafka_fatal_error(rk, buf, sizeof(buf));
		tk_log(TK_LOG_FATAL, "fatal Kafka error: %s", buf);
		count_error(TK_KAFKA_OTHER);
		return true;
	}
	pthread_mutex_lock(&lock);
	k = tk_kafka_explain(err, reason, &settings, text, sizeof(text));
	say(k, text, reason ? reason : "", true);
	pthread_mutex_unlock(&lock);
	count_error(k);
	return false;
}

bool
tk_kafka_error_log_line(int level, const char *fac, const char *buf)
{
	char		text[1024];
	tk_kafka_problem k;

	if (level > 4)
		return false;
	pthread_mutex_lock(&lock);
	k = tk_kafka_explain(0, buf, &settings, text, sizeof(text));
	if (k != TK_KAFKA_OTHER)
		say(k, text, buf, false);
	pthread_mutex_unlock(&lock);
	return k != TK_KAFKA_OTHER;
}

void
tk_kafka_ok(void)
{
	if (!atomic_load_explicit(&any_current, memory_order_relaxed))
		return;
	pthread_mutex_lock(&lock);
	if (current != TK_KAFKA_OK)
		tk_log(TK_LOG_INFO, "Kafka answers again (the last problem was: %s)", current_text);
	current = TK_KAFKA_OK;
	current_text[0] = '\0';
	for (int i = 0; i < NKINDS; i++)
		kinds[i].last_logged = 0;
	atomic_store(&any_current, false);
	pthread_mutex_unlock(&lock);
}

tk_kafka_problem
tk_kafka_current(char *buf, size_t len)
{
	tk_kafka_problem k;

	pthread_mutex_lock(&lock);
	if (current != TK_KAFKA_OK && time(NULL) - current_seen > TK_KAFKA_CURRENT_S)
		current = TK_KAFKA_OK;
	k = current;
	if (buf)
		snprintf(buf, len, "%s", k == TK_KAFKA_OK ? "" : current_text);
	pthread_mutex_unlock(&lock);
	return k;
}

bool
tk_kafka_health(tk_strbuf *out)
{
	char		text[512];
	tk_kafka_problem k = tk_kafka_current(text, sizeof(text));

	if (k == TK_KAFKA_OK)
		return true;
	tk_strbuf_printf(out, "; kafka %s: %s", tk_kafka_problem_name(k), text);
	return !tk_kafka_problem_is_config(k);
}

void
tk_kafka_errors_render(tk_strbuf *out)
{
	/* shown before the first error, so "no errors" is not "not exported" */
	tk_series_declare(&series, ERRORS_TOTAL);
	tk_series_render(&series, out);
}
