/*-------------------------------------------------------------------------
 *
 * metrics.c
 *	  /metrics and /healthz of a consumer service
 *
 * Series (Prometheus text; every name starts todo_kafka_consumer_ and
 * carries service="<name>" via the job, not a label):
 *	 processed_total{topic}			events handled OK
 *	 retried_total{topic}			handling attempts that will be retried
 *	 dead_lettered_total{topic,error}	sent to the dead-letter topic
 *	 handling_seconds				histogram of one handler call per event
 *	 lag{topic,partition,group}		consumer lag from librdkafka statistics
 *	 dependency_up					0 while a worker waits for a dependency
 *	 alerts_total{kind}, alert_webhook_failures_total
 *	 and the service's own counters and gauges, todo_kafka_<service>_<name>
 *	 (a stage, e.g. notify-email, counts under its service: notify).
 * /healthz is 503 while any worker is paused for an outage (with the
 * reason) or Kafka refuses us for a reason only a configuration change
 * fixes (common/kafka_errors.c, named in the body), else 200.  The body
 * names any current Kafka problem; todo_kafka_kafka_errors_total{kind}
 * counts them.
 *
 * Threads: workers and librdkafka's stats callback write; the HTTP thread
 * (libmicrohttpd) reads.  Labelled series go through common/prom_series.c,
 * which locks; the histogram and the outage table have their own mutex.
 *
 * IDENTIFICATION
 *	  consumers/runtime/metrics.c
 *
 *-------------------------------------------------------------------------
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "http_metrics.h"
#include "kafka_errors.h"
#include "prom_series.h"
#include "runtime.h"

#define MAX_WORKERS 64

/* name, type, help of the runtime's labelled families */
#define PROCESSED	"todo_kafka_consumer_processed_total", "counter", "Events handled successfully"
#define RETRIED		"todo_kafka_consumer_retried_total", "counter", \
	"Failed handling attempts that are retried"
#define DEAD_LETTERED "todo_kafka_consumer_dead_lettered_total", "counter", \
	"Messages sent to the dead-letter topic"
#define ALERTS		"todo_kafka_consumer_alerts_total", "counter", \
	"Alerts raised (dead letters, dependency outages)"
#define WEBHOOK_FAILURES "todo_kafka_consumer_alert_webhook_failures_total", "counter", \
	"Alert webhook POSTs that failed"
#define DEPENDENCY_UP "todo_kafka_consumer_dependency_up", "gauge", \
	"1 when every dependency answers, 0 while a worker waits for one"
#define LAG			"todo_kafka_consumer_lag", "gauge", \
	"Messages behind the partition's end (librdkafka statistics)"

static tk_series_set series = TK_SERIES_SET_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static tk_histogram handling;
static char outage[MAX_WORKERS][256];	/* "" = up */
static tk_http_server *server;
static tkc_runtime *runtime;


void
tkc_metrics_init(tkc_runtime *rt)
{
	runtime = rt;
	/* every family on /metrics from the start, samples or not */
	tk_series_declare(&series, PROCESSED);
	tk_series_declare(&series, RETRIED);
	tk_series_declare(&series, DEAD_LETTERED);
	tk_series_declare(&series, ALERTS);
	tk_series_declare(&series, WEBHOOK_FAILURES);
	tk_series_declare(&series, LAG);
	tk_series_set_value(&series, DEPENDENCY_UP, "", 1);
}

void
tkc_metrics_handled(const char *topic, tkc_result r, double seconds)
{
	char		l[256];

	pthread_mutex_lock(&lock);
	tk_hist_observe(&handling, seconds);
	pthread_mutex_unlock(&lock);
	if (r == TKC_OK)
	{
		tk_series_label(l, sizeof(l), "topic", topic);
		tk_series_add(&series, PROCESSED, l, 1);
	}
}

void
tkc_metrics_retried(const char *topic)
{
	char		l[256];

	tk_series_label(l, sizeof(l), "topic", topic);
	tk_series_add(&series, RETRIED, l, 1);
}

void
tkc_metrics_dead_lettered(const char *topic, const char *kind)
{
	char		l1[256],
				l2[128],
				l[400];

	tk_series_label(l1, sizeof(l1), "topic", topic);
	tk_series_label(l2, sizeof(l2), "error", kind);
	snprintf(l, sizeof(l), "%s,%s", l1, l2);
	tk_series_add(&series, DEAD_LETTERED, l, 1);
}

void
tkc_metrics_alert(const char *kind, bool webhook_ok)
{
	char		l[128];

	tk_series_label(l, sizeof(l), "kind", kind);
	tk_series_add(&series, ALERTS, l, 1);
	if (!webhook_ok)
		tk_series_add(&series, WEBHOOK_FAILURES, "", 1);
}

void
tkc_metrics_outage(int worker, bool down, const char *reason)
{
	bool		any = false;

	if (worker < 0 || worker >= MAX_WORKERS)
		return;
	pthread_mutex_lock(&lock);
	snprintf(outage[worker], sizeof(outage[worker]), "%s", down ? (reason ? reason : "down") : "");
	for (int i = 0; i < MAX_WORKERS; i++)
		any = any || outage[i][0];
	pthread_mutex_unlock(&lock);
	tk_series_set_value(&series, DEPENDENCY_UP, "", any ? 0 : 1);
}

/*
 * todo_kafka_<service>_<name>: a stage of a service ("notify-email") counts
 * under its service ("notify"), so every stage exports the same names (a
 * hyphen is not allowed in a metric name either); the job tells them apart.
 * A counter's name ends in _total, as Prometheus's conventions (and
 * promtool check metrics) want.
 */
static void
service_metric(char *buf, size_t len, const char *name, bool counter)
{
	const char *svc = runtime ? runtime->svc->name : "service";
	size_t		n = strlen(name);
	bool		total = n >= 6 && strcmp(name + n - 6, "_total") == 0;

	snprintf(buf, len, "todo_kafka_%.*s_%s%s", (int) strcspn(svc, "-"), svc, name,
			 counter && !total ? "_total" : "");
}

void
tkc_metrics_count(const char *name, const char *label, const char *value, double add)
{
	char		full[256];
	char		l[256] = "";

	service_metric(full, sizeof(full), name, true);
	if (label)
		tk_series_label(l, sizeof(l), label, value);
	tk_series_add(&series, full, "counter", "Service counter", l, add);
}

void
tkc_metrics_gauge(const char *name, double value)
{
	char		full[256];

	service_metric(full, sizeof(full), name, false);
	tk_series_set_value(&series, full, "gauge", "Service gauge", "", value);
}

/* librdkafka statistics (stats_cb, a librdkafka thread): consumer lag */
void
tkc_metrics_kafka_stats(const char *json)
{
	cJSON	   *root = cJSON_Parse(json);
	const cJSON *topics = root ? cJSON_GetObjectItemCaseSensitive(root, "topics") : NULL;
	const cJSON *t;

	cJSON_ArrayForEach(t, topics)
	{
		const cJSON *parts = cJSON_GetObjectItemCaseSensitive(t, "partitions");
		const cJSON *p;

		cJSON_ArrayForEach(p, parts)
		{
			const cJSON *lag = cJSON_GetObjectItemCaseSensitive(p, "consumer_lag");
			const cJSON *id = cJSON_GetObjectItemCaseSensitive(p, "partition");
			const cJSON *state = cJSON_GetObjectItemCaseSensitive(p, "fetch_state");
			char		l1[256],
						l2[300],
						l[600];

			if (!cJSON_IsNumber(lag) || !cJSON_IsNumber(id) || id->valuedouble < 0)
				continue;
			tk_series_label(l1, sizeof(l1), "topic", t->string);
			tk_series_label(l2, sizeof(l2), "group", runtime ? runtime->group : "");
			snprintf(l, sizeof(l), "%s,partition=\"%d\",%s", l1, id->valueint, l2);
			/*
			 * Not fetching it (revoked, e.g. to another process of the
			 * group: fetch_state none/stopping/stopped) or no lag known
			 * (-1): drop the series.  librdkafka keeps listing a revoked
			 * partition with its old committed offset, so its "lag" grew
			 * on as the new owner consumed (tests/soak saw 24 on a partition
			 * the process had given up minutes before).
			 */
			if (lag->valuedouble < 0 || !cJSON_IsString(state) ||
				strcmp(state->valuestring, "none") == 0 ||
				strncmp(state->valuestring, "stop", 4) == 0)
				tk_series_remove(&series, "todo_kafka_consumer_lag", l);
			else
				tk_series_set_value(&series, LAG, l, lag->valuedouble);
		}
	}
	cJSON_Delete(root);
}

static void
render(void *arg, tk_strbuf *out)
{
	tk_histogram h;

	pthread_mutex_lock(&lock);
	h = handling;
	pthread_mutex_unlock(&lock);
	tk_series_render(&series, out);
	tk_kafka_errors_render(out);
	tk_prom_histogram(out, "todo_kafka_consumer_handling_seconds",
					  "Time to handle one event (handler call, per event)", &h);
}

static bool
health(void *arg, tk_strbuf *out)
{
	bool		ok = true;
	bool		kafka_ok;
	tk_strbuf	kafka;

	/* the current Kafka problem, in plain words (common/kafka_errors.c) */
	tk_strbuf_init(&kafka);
	kafka_ok = tk_kafka_health(&kafka);
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_WORKERS; i++)
	{
		if (outage[i][0])
		{
			tk_strbuf_printf(out, "%sconsumer %d waits: %s", ok ? "degraded: " : "; ",
							 i, outage[i]);
			ok = false;
		}
	}
	pthread_mutex_unlock(&lock);
	if (ok && !kafka_ok)
		tk_strbuf_puts(out, "degraded: kafka misconfigured");
	else if (ok)
		tk_strbuf_printf(out, "ok %s group %s", runtime ? runtime->program : "",
						 runtime ? runtime->group : "");
	if (kafka.data)
		tk_strbuf_puts(out, kafka.data);
	tk_strbuf_free(&kafka);
	return ok && kafka_ok;
}

bool
tkc_metrics_start(const char *listen, char *errbuf, size_t errlen)
{
	if (listen == NULL || listen[0] == '\0')
		return true;
	server = tk_http_start(listen, render, health, NULL, errbuf, errlen);
	return server != NULL;
}

void
tkc_metrics_stop(void)
{
	if (server)
		tk_http_stop(server);
	server = NULL;
}
