/*-------------------------------------------------------------------------
 *
 * otlp.c
 *	  span queue and the OTLP/HTTP sender thread
 *
 * Off unless tk_otlp_start() got an endpoint.  Then tk_otlp_emit() copies
 * a finished span into a bounded ring (TK_OTLP_QUEUE spans) under a mutex
 * and returns: the hot path never waits for the network, and a full ring
 * drops the span (counted, and reported by the sender).  One sender thread takes up to TK_OTLP_BATCH
 * spans when that many are queued or once a second, encodes them as an
 * ExportTraceServiceRequest (otlp_proto.c) and POSTs it to
 * <endpoint>/v1/traces (application/x-protobuf; the endpoint as given when
 * it already ends in /v1/traces) with libcurl, 5 s timeout.  A failed
 * export (no answer, not 2xx) drops that batch: tracing never holds up or
 * stops a daemon; a warning says so at most once a minute, with the count
 * of spans lost so far.  The endpoint is logged without its user info or
 * query (tk_url_display), as credentials may be in it.
 * tk_otlp_stop() wakes the sender, which sends what is queued (bounded by
 * the timeout) and exits.
 *
 * Resource: service.name = the daemon's program name, service.instance.id
 * = <host>:<pid>.
 *
 * IDENTIFICATION
 *	  common/otlp.c
 *
 *-------------------------------------------------------------------------
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "log.h"
#include "otlp.h"

#define TK_OTLP_QUEUE 4096
#define TK_OTLP_BATCH 512
#define TK_OTLP_TIMEOUT_MS 5000
#define TK_OTLP_WARN_EVERY_S 60

static struct
{
	atomic_bool on;
	atomic_uint_fast64_t dropped;
	atomic_uint_fast64_t full;	/* dropped by tk_otlp_emit: ring full */
	uint64_t	full_seen;		/* of those, counted in dropped (sender) */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t	thread;
	bool		stopping;
	tk_span    *ring;
	int			head;			/* next to send */
	int			count;
	char	   *url;
	char		display[256];
	char		service[64];
	char		instance[128];
	time_t		last_warn;
}			X = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

uint64_t
tk_unix_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

void
tk_url_display(const char *url, char *out, size_t outlen)
{
	const char *scheme = strstr(url, "://");
	const char *host = scheme ? scheme + 3 : url;
	size_t		hostlen = strcspn(host, "/?#");
	const char *at = memchr(host, '@', hostlen);
	size_t		pathlen;

	if (at)
	{
		hostlen -= (size_t) (at + 1 - host);
		host = at + 1;
	}
	pathlen = strcspn(host + hostlen, "?#");
	snprintf(out, outlen, "%.*s%s%.*s%.*s", scheme ? (int) (scheme - url) : 0, url,
			 scheme ? "://" : "", (int) hostlen, host, (int) pathlen, host + hostlen);
}

static size_t
discard(char *p, size_t size, size_t n, void *ud)
{
	(void) p;
	(void) ud;
	return size * n;
}

static void
lost(int n, const char *why)
{
	time_t		now = time(NULL);
	uint64_t	total = atomic_fetch_add(&X.dropped, n) + n;

	if (now - X.last_warn < TK_OTLP_WARN_EVERY_S)
		return;
	X.last_warn = now;
	tk_log(TK_LOG_WARNING, "OTLP export to %s failed: %s; %llu spans lost so far "
		   "(tracing goes on; next warning in a minute at the earliest)",
		   X.display, why, (unsigned long long) total);
}

static void
post(CURL *curl, tk_strbuf *body, int n)
{
	char		err[CURL_ERROR_SIZE] = "";
	long		status = 0;
	CURLcode	rc;

	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) body->len);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, err);
	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK)
		lost(n, err[0] ? err : curl_easy_strerror(rc));
	else if (status < 200 || status > 299)
	{
		char		why[64];

		snprintf(why, sizeof(why), "HTTP status %ld", status);
		lost(n, why);
	}
}

static void *
sender(void *arg)
{
	CURL	   *curl = curl_easy_init();
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
	tk_span    *batch = malloc(sizeof(tk_span) * TK_OTLP_BATCH);
	tk_strbuf	body;

	(void) arg;
	tk_strbuf_init(&body);
	if (curl)
	{
		curl_easy_setopt(curl, CURLOPT_URL, X.url);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) TK_OTLP_TIMEOUT_MS);
		curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	}
	for (;;)
	{
		int			n;
		bool		stop;

		pthread_mutex_lock(&X.lock);
		if (!X.stopping && X.count < TK_OTLP_BATCH)
		{
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&X.wake, &X.lock, &until);
		}
		n = X.count < TK_OTLP_BATCH ? X.count : TK_OTLP_BATCH;
		for (int i = 0; i < n && batch; i++)
			batch[i] = X.ring[(X.head + i) % TK_OTLP_QUEUE];
		X.head = (X.head + n) % TK_OTLP_QUEUE;
		X.count -= n;
		stop = X.stopping && X.count == 0;
		pthread_mutex_unlock(&X.lock);

		if (atomic_load(&X.full) > X.full_seen)
		{
			uint64_t	full = atomic_load(&X.full);

			lost((int) (full - X.full_seen), "queue full (the collector takes spans slower than they come)");
			X.full_seen = full;
		}
		if (n > 0 && (curl == NULL || batch == NULL))
			lost(n, "out of memory");
		else if (n > 0)
		{
			tk_strbuf_reset(&body);
			tk_otlp_encode(&body, X.service, X.instance, batch, n);
			if (body.oom)
				lost(n, "out of memory");
			else
				post(curl, &body, n);
		}
		if (stop)
			break;
	}
	tk_strbuf_free(&body);
	free(batch);
	curl_slist_free_all(hdrs);
	if (curl)
		curl_easy_cleanup(curl);
	return NULL;
}

bool
tk_otlp_start(const char *endpoint, const char *service_name, char *errbuf, size_t errlen)
{
	size_t		len;
	char		host[64] = "";

	if (endpoint == NULL || endpoint[0] == '\0' || atomic_load(&X.on))
		return true;
	len = strlen(endpoint);
	while (len > 0 && endpoint[len - 1] == '/')
		len--;
	X.url = malloc(len + 16);
	X.ring = calloc(TK_OTLP_QUEUE, sizeof(tk_span));
	if (X.url == NULL || X.ring == NULL)
	{
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	if (len >= 10 && strncmp(endpoint + len - 10, "/v1/traces", 10) == 0)
		snprintf(X.url, len + 16, "%.*s", (int) len, endpoint);
	else
		snprintf(X.url, len + 16, "%.*s/v1/traces", (int) len, endpoint);
	tk_url_display(X.url, X.display, sizeof(X.display));
	snprintf(X.service, sizeof(X.service), "%s", service_name);
	gethostname(host, sizeof(host) - 1);
	snprintf(X.instance, sizeof(X.instance), "%s:%d", host, (int) getpid());
	curl_global_init(CURL_GLOBAL_DEFAULT);
	X.stopping = false;
	if (pthread_create(&X.thread, NULL, sender, NULL) != 0)
	{
		snprintf(errbuf, errlen, "cannot start the OTLP sender thread");
		return false;
	}
	atomic_store(&X.on, true);
	tk_log(TK_LOG_INFO, "exporting spans over OTLP/HTTP to %s", X.display);
	return true;
}

void
tk_otlp_stop(void)
{
	if (!atomic_exchange(&X.on, false))
		return;
	pthread_mutex_lock(&X.lock);
	X.stopping = true;
	pthread_cond_signal(&X.wake);
	pthread_mutex_unlock(&X.lock);
	pthread_join(X.thread, NULL);
	if (atomic_load(&X.dropped) > 0)
		tk_log(TK_LOG_WARNING, "OTLP: %llu spans were lost in all",
			   (unsigned long long) atomic_load(&X.dropped));
	free(X.url);
	free(X.ring);
	X.url = NULL;
	X.ring = NULL;
	X.head = X.count = 0;
}

bool
tk_otlp_enabled(void)
{
	return atomic_load_explicit(&X.on, memory_order_relaxed);
}

uint64_t
tk_otlp_dropped(void)
{
	return atomic_load(&X.dropped);
}

void
tk_otlp_emit(const tk_span *s)
{
	if (!tk_otlp_enabled())
		return;
	pthread_mutex_lock(&X.lock);
	if (X.ring && X.count < TK_OTLP_QUEUE)
	{
		X.ring[(X.head + X.count) % TK_OTLP_QUEUE] = *s;
		if (++X.count == TK_OTLP_BATCH)
			pthread_cond_signal(&X.wake);
		pthread_mutex_unlock(&X.lock);
		return;
	}
	pthread_mutex_unlock(&X.lock);
	atomic_fetch_add(&X.full, 1);	/* the sender counts and reports it */
}

/* ---- spans ---- */

void
tk_span_begin(tk_span *s, const char *name, tk_span_kind kind,
			  const tk_trace_ctx *parent, const uint8_t *span_id)
{
	memset(s, 0, offsetof(tk_span, attrs));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->kind = (uint8_t) kind;
	if (parent && parent->valid)
	{
		memcpy(s->trace_id, parent->trace_id, 16);
		memcpy(s->parent_id, parent->span_id, 8);
		s->has_parent = true;
	}
	else
		tk_trace_random(s->trace_id, 16);
	if (span_id)
		memcpy(s->span_id, span_id, 8);
	else
		tk_trace_random(s->span_id, 8);
	s->start_ns = tk_unix_ns();
}

void
tk_span_attr(tk_span *s, const char *key, const char *value)
{
	if (s->kind == 0 || s->nattrs >= TK_SPAN_MAX_ATTRS || value == NULL)
		return;					/* not begun (tracing off), or full */
	snprintf(s->attrs[s->nattrs].key, sizeof(s->attrs[0].key), "%s", key);
	snprintf(s->attrs[s->nattrs].value, sizeof(s->attrs[0].value), "%s", value);
	s->nattrs++;
}

void
tk_span_end(tk_span *s, const char *error)
{
	s->end_ns = tk_unix_ns();
	s->status = error ? 2 : 1;
	if (error)
		snprintf(s->status_msg, sizeof(s->status_msg), "%s", error);
	tk_otlp_emit(s);
}

void
tk_span_context(const tk_span *s, tk_trace_ctx *ctx)
{
	memcpy(ctx->trace_id, s->trace_id, 16);
	memcpy(ctx->span_id, s->span_id, 8);
	ctx->flags = 1;
	ctx->valid = true;
}
