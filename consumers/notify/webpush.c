/*-------------------------------------------------------------------------
 *
 * webpush.c
 *	  Web Push (RFC 8030) and JSON gateway delivery: the HTTP side
 *
 * tkn_webpush_send() checks the options (Urgency, Topic, TTL), encrypts
 * the payload (webpush_encrypt.c), signs a VAPID JWT for the endpoint's
 * origin (webpush_vapid.c) and POSTs the aes128gcm body; tkn_gateway_post()
 * POSTs plain JSON to a gateway.  Both classify the outcome the same way
 * (webpush.h): 2xx delivered, 404/410 gone, 408/429/5xx and network errors
 * transient, anything else permanent, with advice per status.
 *
 * HTTP: one libcurl easy handle per send, no redirects (a push service
 * does not redirect, and a redirect must not carry the Authorization
 * header elsewhere), https (http only to loopback), only to the hosts and
 * addresses push_guard.h allows, "Expect:" disabled so a small
 * POST is not held back waiting for 100-continue.  The first bytes of the
 * response body go into the error text: push services explain a refusal
 * there ("invalid JWT", "payload too large").
 *
 * Secrets: the Authorization header (VAPID JWT or the gateway's
 * credentials) is cleansed after the request and never logged.  The
 * endpoint URL is a capability, so errors name only its origin.
 *
 * IDENTIFICATION
 *	  consumers/notify/webpush.c
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "delivery_int.h"
#include "host_allowlist.h"
#include "push_guard.h"
#include "strbuf.h"
#include "webpush_int.h"

#define REPLY_SNIPPET	200

void
tkn_push_options_init(tkn_push_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->ttl = 86400;
	opt->timeout_ms = 10000;
	opt->allowed_hosts = TK_PUSH_ALLOWED_HOSTS_DEFAULT;
	opt->gateway_allowed_hosts = "";
}

/*
 * "scheme://host[:port]" of an http(s) URL, lower case, the port only when
 * it is not the scheme's default: the JWT's aud (RFC 8292 s2).
 */
static bool
url_origin(const char *url, char *out, size_t outlen)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL,
			   *host = NULL,
			   *port = NULL;
	bool		ok = false;
	char	   *p;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto done;
	if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)
		goto done;
	if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_NO_DEFAULT_PORT) != CURLUE_OK)
		port = NULL;
	for (p = host; *p; p++)
		*p = (char) tolower((unsigned char) *p);
	ok = (size_t) snprintf(out, outlen, "%s://%s%s%s", scheme, host,
						   port ? ":" : "", port ? port : "") < outlen;
done:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return ok;
}

typedef struct reply_buf
{
	char		data[REPLY_SNIPPET];
	size_t		len;
} reply_buf;

static size_t
reply_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	reply_buf  *r = userdata;
	size_t		n = size * nmemb;
	size_t		room = sizeof(r->data) - r->len;

	memcpy(r->data + r->len, ptr, n < room ? n : room);
	r->len += n < room ? n : room;
	return n;					/* read and drop the rest */
}

static const char *
status_advice(long status, bool vapid)
{
	switch (status)
	{
		case 400:
			return "the request was rejected as malformed";
		case 401:
		case 403:
			return vapid ? "the VAPID authorization was refused: check that the VAPID key "
				"is the one the subscription was made with (applicationServerKey)"
				: "the authorization was refused: check the gateway's credentials";
		case 404:
		case 410:
			return "the subscription expired or was unsubscribed: remove it";
		case 413:
			return "the payload is too large: send less";
		case 429:
			return "rate limited: retry later";
		default:
			return status >= 500 ? "server error: retry later" : "the message was refused";
	}
}

/*
 * POST body to url with the given extra headers; classify the outcome.
 * what names the receiver in error texts (an origin, never a whole URL).
 */
static tkn_delivery
http_post(const char *url, struct curl_slist *headers, const void *body, size_t len,
		  const tkn_push_options *opt, const char *what, bool vapid,
		  char *err, size_t errlen)
{
	char		curl_err[CURL_ERROR_SIZE] = "";
	char		reply[REPLY_SNIPPET + 1];
	reply_buf	rb = {.len = 0};
	tkn_delivery d = tkn_outcome(TKN_TRANSIENT, 0);
	curl_off_t	retry_after = 0;
	CURLcode	rc;
	tkn_guard	guard;
	CURL	   *h = curl_easy_init();

	if (h == NULL || !tkn_guard_arm(h, &guard, url, opt->allow_loopback, opt->connect_to))
	{
		tkn_errorf(err, errlen, "could not create a libcurl handle (out of memory?)");
		curl_easy_cleanup(h);
		return d;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_USERAGENT, TKN_USER_AGENT);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, opt->timeout_ms > 0 ? opt->timeout_ms : 10000L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, reply_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &rb);
	if (opt->ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, opt->ca_file);

	rc = curl_easy_perform(h);
	if (rc != CURLE_OK)
	{
		if (guard.refused && rc == CURLE_COULDNT_CONNECT)
		{
			d.result = TKN_PERMANENT;
			tkn_errorf(err, errlen, "%s: refused to connect to %s", what, guard.why);
		}
		else if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
		{
			d.result = TKN_PERMANENT;
			tkn_errorf(err, errlen, "%s: %s: the URL must be http(s)://host/...",
					   what, curl_easy_strerror(rc));
		}
		else
			tkn_errorf(err, errlen, "%s: %s (will retry)", what,
					   curl_err[0] ? curl_err : curl_easy_strerror(rc));
		curl_easy_cleanup(h);
		tkn_guard_release(&guard);
		return d;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &d.status);
	if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
		d.retry_after = (long) retry_after;
	curl_easy_cleanup(h);
	tkn_guard_release(&guard);

	if (d.status >= 200 && d.status < 300)
		d.result = TKN_DELIVERED;
	else if (d.status == 404 || d.status == 410)
		d.result = TKN_GONE;
	else if (d.status == 408 || d.status == 429 || d.status >= 500)
		d.result = TKN_TRANSIENT;
	else
		d.result = TKN_PERMANENT;
	if (d.result != TKN_DELIVERED)
	{
		tkn_quote_reply(reply, sizeof(reply), rb.data, rb.len);
		tkn_errorf(err, errlen, "%s answered HTTP %ld: %s%s%s%s", what, d.status,
				   status_advice(d.status, vapid), reply[0] ? " (response: \"" : "", reply,
				   reply[0] ? "\")" : "");
	}
	return d;
}

/* append a header line; on failure the list is kept and *failed is set */
static void
add_header(struct curl_slist **list, const char *line, bool *failed)
{
	struct curl_slist *l = line ? curl_slist_append(*list, line) : NULL;

	if (l == NULL)
		*failed = true;
	else
		*list = l;
}

static bool
valid_urgency(const char *u)
{
	return strcmp(u, "very-low") == 0 || strcmp(u, "low") == 0 ||
		strcmp(u, "normal") == 0 || strcmp(u, "high") == 0;
}

static bool
valid_topic(const char *t)
{
	size_t		n = strlen(t);
	const char *p;

	if (n == 0 || n > 32)
		return false;
	for (p = t; *p; p++)
		if (!isalnum((unsigned char) *p) && *p != '-' && *p != '_')
			return false;
	return true;
}

tkn_delivery
tkn_webpush_send(const tkn_vapid *v, const tkn_push_subscription *sub,
				 const char *payload, size_t len, const tkn_push_options *opt,
				 char *err, size_t errlen)
{
	tkn_push_options defaults;
	char		origin[512];
	char		what[600];
	const char *urgency;
	unsigned char *body = NULL;
	size_t		bodylen;
	tk_strbuf	auth;
	tk_strbuf	line;
	struct curl_slist *headers = NULL;
	bool		failed = false;
	tkn_delivery d = tkn_outcome(TKN_PERMANENT, 0);

	if (opt == NULL)
	{
		tkn_push_options_init(&defaults);
		opt = &defaults;
	}
	urgency = opt->urgency ? opt->urgency : "normal";
	if (sub->endpoint == NULL || !url_origin(sub->endpoint, origin, sizeof(origin)))
	{
		tkn_errorf(err, errlen, "push subscription: the endpoint is not an http(s) URL");
		return d;
	}
	snprintf(what, sizeof(what), "push service %s", origin);
	if (!tkn_guard_host(sub->endpoint, opt->allowed_hosts ? opt->allowed_hosts
						: TK_PUSH_ALLOWED_HOSTS_DEFAULT, "push_allowed_hosts",
						"push endpoint", err, errlen))
		return tkn_outcome(TKN_GONE, 0);	/* never sent: remove it */
	if (!valid_urgency(urgency))
	{
		tkn_errorf(err, errlen, "push urgency \"%.20s\" is not one of very-low, low, normal, "
				   "high (RFC 8030 s5.3)", urgency);
		return d;
	}
	if (opt->topic != NULL && !valid_topic(opt->topic))
	{
		tkn_errorf(err, errlen, "push topic must be 1 to 32 characters of the base64url "
				   "alphabet (RFC 8030 s5.4)");
		return d;
	}
	if (opt->ttl < 0)
	{
		tkn_errorf(err, errlen, "push TTL must be 0 or more seconds");
		return d;
	}
	body = malloc(len + HEADER_LEN + 1 + TAG_LEN);
	if (body == NULL)
	{
		tkn_errorf(err, errlen, "out of memory");
		return d;
	}
	bodylen = tkn_webpush_encrypt(sub, payload, len, body, err, errlen);
	if (bodylen == 0)
	{
		free(body);
		return d;
	}

	tk_strbuf_init(&auth);
	tk_strbuf_init(&line);
	if (!tkn_vapid_header(v, origin, &auth))
	{
		tkn_errorf(err, errlen, "VAPID: signing the JWT failed: %s", tkn_ossl_error());
		goto done;
	}
	add_header(&headers, auth.data, &failed);
	tk_strbuf_printf(&line, "TTL: %d", opt->ttl);
	add_header(&headers, line.data, &failed);
	tk_strbuf_reset(&line);
	tk_strbuf_printf(&line, "Urgency: %s", urgency);
	add_header(&headers, line.data, &failed);
	if (opt->topic != NULL)
	{
		tk_strbuf_reset(&line);
		tk_strbuf_printf(&line, "Topic: %s", opt->topic);
		add_header(&headers, line.data, &failed);
	}
	add_header(&headers, "Content-Encoding: aes128gcm", &failed);
	add_header(&headers, "Content-Type: application/octet-stream", &failed);
	add_header(&headers, "Expect:", &failed);
	if (failed || line.oom)
	{
		tkn_errorf(err, errlen, "out of memory");
		goto done;
	}
	d = http_post(sub->endpoint, headers, body, bodylen, opt, what, true, err, errlen);

done:
	curl_slist_free_all(headers);
	if (auth.data != NULL)
		OPENSSL_cleanse(auth.data, auth.len);
	tk_strbuf_free(&auth);
	tk_strbuf_free(&line);
	free(body);
	return d;
}

tkn_delivery
tkn_gateway_post(const char *url, const char *json, size_t len,
				 const tkn_push_options *opt, char *err, size_t errlen)
{
	tkn_push_options defaults;
	char		origin[512];
	char		what[600];
	tk_strbuf	authz;
	struct curl_slist *headers = NULL;
	bool		failed = false;
	tkn_delivery d = tkn_outcome(TKN_PERMANENT, 0);

	if (opt == NULL)
	{
		tkn_push_options_init(&defaults);
		opt = &defaults;
	}
	if (url == NULL || !url_origin(url, origin, sizeof(origin)))
	{
		tkn_errorf(err, errlen, "push gateway: the URL is not an http(s) URL");
		return d;
	}
	snprintf(what, sizeof(what), "push gateway %s", origin);
	if (!tkn_guard_host(url, opt->gateway_allowed_hosts ? opt->gateway_allowed_hosts : "",
						"push_gateway_allowed_hosts", "push gateway", err, errlen))
		return d;
	tk_strbuf_init(&authz);
	if (opt->authorization != NULL)
	{
		if (strpbrk(opt->authorization, "\r\n") != NULL)
		{
			tkn_errorf(err, errlen, "push gateway: the authorization value contains a line break");
			return d;
		}
		tk_strbuf_printf(&authz, "Authorization: %s", opt->authorization);
		add_header(&headers, authz.data, &failed);
	}
	add_header(&headers, "Content-Type: application/json", &failed);
	add_header(&headers, "Expect:", &failed);
	if (failed || authz.oom)
		tkn_errorf(err, errlen, "out of memory");
	else
		d = http_post(url, headers, json, len, opt, what, false, err, errlen);
	curl_slist_free_all(headers);
	if (authz.data != NULL)
		OPENSSL_cleanse(authz.data, authz.len);
	tk_strbuf_free(&authz);
	return d;
}
