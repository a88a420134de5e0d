/*-------------------------------------------------------------------------
 *
 * alert.c
 *	  alerts: an ERROR log line, a metric, and a webhook POST
 *
 * An alert is raised when a message is dead-lettered and when a
 * dependency goes down or comes back.  Each one is an ERROR (or, for a
 * recovery, INFO) log line, todo_kafka_consumer_alerts_total{kind} on
 * /metrics, and, when alert_webhook is set, a JSON POST to it with libcurl
 * (5 s timeout):
 *	 {"alert": kind, "service", "group", "message", "time", ...origin}
 * A webhook that fails is logged and counted
 * (todo_kafka_consumer_alert_webhook_failures_total) and never blocks
 * handling beyond its timeout; alerts are not queued or retried.
 *
 * Threads: called from worker threads; libcurl easy handles are per call
 * and curl_global_init ran in tkc_main before any thread started.
 *
 * IDENTIFICATION
 *	  consumers/runtime/alert.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "log.h"
#include "runtime.h"

static size_t
discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	return size * nmemb;
}

static bool
post_json(const char *url, const char *body)
{
	CURL	   *curl = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	CURLcode	rc;
	long		status = 0;

	if (curl == NULL)
		return false;
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(curl);
	if (rc != CURLE_OK || status < 200 || status > 299)
	{
		/* the URL may carry a token: name only the failure */
		tk_log(TK_LOG_WARNING, "alert webhook failed: %s",
			   rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP status not 2xx");
		return false;
	}
	return true;
}

/* log, count and POST one alert; fields (may be NULL) are merged in */
static void
raise_alert(tkc_runtime *rt, const char *kind, const char *message, cJSON *fields)
{
	cJSON	   *body = fields ? fields : cJSON_CreateObject();
	char		when[32];
	time_t		now = time(NULL);
	struct tm	tm;
	bool		ok = true;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	tk_log(strcmp(kind, "dependency_recovered") == 0 ? TK_LOG_INFO : TK_LOG_ERROR,
		   "ALERT %s: %s", kind, message);
	if (rt->rc.alert_webhook[0] && body)
	{
		char	   *text;

		cJSON_AddStringToObject(body, "alert", kind);
		cJSON_AddStringToObject(body, "service", rt->program);
		cJSON_AddStringToObject(body, "group", rt->group);
		cJSON_AddStringToObject(body, "message", message);
		cJSON_AddStringToObject(body, "time", when);
		text = cJSON_PrintUnformatted(body);
		ok = text && post_json(rt->rc.alert_webhook, text);
		cJSON_free(text);
	}
	tkc_metrics_alert(kind, ok);
	cJSON_Delete(body);
}

void
tkc_alert(tkc_runtime *rt, const char *kind, const char *fmt,...)
{
	char		msg[1024];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	raise_alert(rt, kind, msg, NULL);
}

void
tkc_alert_dead_letter(tkc_runtime *rt, const rd_kafka_message_t *m,
					  const tkc_event *ev, const char *error_kind)
{
	cJSON	   *f = cJSON_CreateObject();
	char		msg[1024];

	snprintf(msg, sizeof(msg), "message %s[%d]@%lld dead-lettered after %d attempt%s (%s): %s",
			 ev->topic, (int) ev->partition, (long long) ev->offset, ev->attempt,
			 ev->attempt == 1 ? "" : "s", error_kind, ev->error);
	if (f)
	{
		cJSON_AddStringToObject(f, "topic", ev->topic);
		cJSON_AddNumberToObject(f, "partition", ev->partition);
		cJSON_AddNumberToObject(f, "offset", (double) ev->offset);
		if (ev->key)
			cJSON_AddStringToObject(f, "key", ev->key);
		if (ev->id)
			cJSON_AddStringToObject(f, "event_id", ev->id);
		cJSON_AddStringToObject(f, "error", error_kind);
		cJSON_AddStringToObject(f, "reason", ev->error);
		cJSON_AddNumberToObject(f, "attempts", ev->attempt);
	}
	raise_alert(rt, "dead_letter", msg, f);
}
