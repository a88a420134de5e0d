/*-------------------------------------------------------------------------
 *
 * relay_metrics.c
 *	  the relay's counters, /metrics rendering and /healthz verdict
 *
 * Threading contract: the relay_metrics_* update functions are called by
 * the main thread (the event loop and the delivery-report callback it
 * runs); render_metrics() and render_health() run on libmicrohttpd's
 * thread.  Both sides take metrics_lock; updates are a few additions, so
 * the lock is held for nanoseconds and the scrape copies what it needs.
 *
 * Health: "ok" while connected to PostgreSQL and Kafka is reachable (or
 * this relay is a standby) and Kafka does not refuse us for a reason only
 * a configuration change fixes (SASL login, certificate: kafka_errors.c);
 * otherwise "degraded: <reasons>" with HTTP 503.  Any current Kafka
 * problem is appended in plain words; /metrics adds
 * todo_kafka_kafka_errors_total{kind}.
 *
 * IDENTIFICATION
 *	  relay/relay_metrics.c
 *
 *-------------------------------------------------------------------------
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "http_metrics.h"
#include "kafka_errors.h"
#include "prom.h"
#include "relay.h"

#define MAX_LABELS 64

typedef struct labelled
{
	char		label[128];
	double		value;
} labelled;

typedef struct labelled_set
{
	labelled	items[MAX_LABELS];
	int			n;
} labelled_set;

static struct
{
	pthread_mutex_t lock;
	labelled_set messages;		/* per topic */
	labelled_set rows;			/* per stream */
	labelled_set errors;		/* per kind */
	labelled_set wakeups;		/* per reason */
	labelled_set reminders;		/* fired, per status (sent, missed) */
	double		reminder_late_max;	/* fire time - scheduled time */
	tk_histogram reminder_late;	/* per firing round: its latest sent one */
	tk_histogram latency;		/* occurred_at -> ack */
	tk_histogram read_stage;	/* occurred_at -> read by a pass */
	tk_histogram ack_stage;		/* read -> ack */
	double		dead_letters;
	int64_t		backlog;
	double		oldest_age;
	double		truncations;
	int64_t		in_flight;
	bool		pg_connected;
	bool		leader;
	bool		kafka_up;
	time_t		started;
} metrics = {.lock = PTHREAD_MUTEX_INITIALIZER};

static tk_http_server *metrics_server;

static void
labelled_add(labelled_set *s, const char *label, double v)
{
	for (int i = 0; i < s->n; i++)
	{
		if (strcmp(s->items[i].label, label) == 0)
		{
			s->items[i].value += v;
			return;
		}
	}
	if (s->n == MAX_LABELS)
		return;
	snprintf(s->items[s->n].label, sizeof(s->items[s->n].label), "%s", label);
	s->items[s->n].value = v;
	s->n++;
}

void
relay_metrics_init(void)
{
	pthread_mutex_lock(&metrics.lock);
	metrics.started = time(NULL);
	metrics.kafka_up = true;
	pthread_mutex_unlock(&metrics.lock);
}

void
relay_metrics_published(const char *topic, int messages, const relay_latency *lat)
{
	pthread_mutex_lock(&metrics.lock);
	labelled_add(&metrics.messages, topic, messages);
	if (lat != NULL && lat->total_s >= 0)
	{
		tk_hist_observe(&metrics.latency, lat->total_s);
		tk_hist_observe(&metrics.read_stage, lat->read_s);
	}
	if (lat != NULL)
		tk_hist_observe(&metrics.ack_stage, lat->ack_s);
	pthread_mutex_unlock(&metrics.lock);
}

void
relay_metrics_row_done(const char *stream)
{
	pthread_mutex_lock(&metrics.lock);
	labelled_add(&metrics.rows, stream, 1);
	pthread_mutex_unlock(&metrics.lock);
}

void
relay_metrics_error(const char *kind)
{
	pthread_mutex_lock(&metrics.lock);
	labelled_add(&metrics.errors, kind, 1);
	pthread_mutex_unlock(&metrics.lock);
}

void
relay_metrics_dead_letter(void)
{
	pthread_mutex_lock(&metrics.lock);
	metrics.dead_letters++;
	pthread_mutex_unlock(&metrics.lock);
}

void
relay_metrics_wakeup(const char *reason)
{
	pthread_mutex_lock(&metrics.lock);
	labelled_add(&metrics.wakeups, reason, 1);
	pthread_mutex_unlock(&metrics.lock);
}

void
relay_metrics_reminders_fired(const char *status, int n, double max_late_s)
{
	pthread_mutex_lock(&metrics.lock);
	labelled_add(&metrics.reminders, status, n);
	/* missed ones are late by design (the relay was away): not lateness */
	if (strcmp(status, "sent") == 0)
		tk_hist_observe(&metrics.reminder_late, max_late_s);
	if (max_late_s > metrics.reminder_late_max)
		metrics.reminder_late_max = max_late_s;
	pthread_mutex_unlock(&metrics.lock);
}

void
relay_metrics_truncated(int partitions)
{
	pthread_mutex_lock(&metrics.lock);
	metrics.truncations += partitions;
	pthread_mutex_unlock(&metrics.lock);
}

void
relay_metrics_backlog(int64_t rows, double oldest_age_s)
{
	pthread_mutex_lock(&metrics.lock);
	metrics.backlog = rows;
	metrics.oldest_age = oldest_age_s;
	pthread_mutex_unlock(&metrics.lock);
}

void
relay_metrics_state(bool pg_connected, bool leader, bool kafka_up, int64_t rows_in_flight)
{
	pthread_mutex_lock(&metrics.lock);
	metrics.pg_connected = pg_connected;
	metrics.leader = leader;
	metrics.kafka_up = kafka_up;
	metrics.in_flight = rows_in_flight;
	pthread_mutex_unlock(&metrics.lock);
}

static void
render_set(tk_strbuf *out, const char *name, const char *type, const char *help,
		   const char *label, const labelled_set *s)
{
	tk_prom_header(out, name, type, help);
	for (int i = 0; i < s->n; i++)
		tk_prom_sample(out, name, label, s->items[i].label, s->items[i].value);
}

/* /metrics: runs on the HTTP thread */
static void
render_metrics(void *arg, tk_strbuf *out)
{
	(void) arg;
	pthread_mutex_lock(&metrics.lock);
	render_set(out, "todo_kafka_relay_messages_published_total", "counter",
			   "Messages acknowledged by Kafka, per topic.", "topic", &metrics.messages);
	render_set(out, "todo_kafka_relay_rows_published_total", "counter",
			   "Outbox rows fully published (every message acknowledged), per stream.",
			   "stream", &metrics.rows);
	render_set(out, "todo_kafka_relay_errors_total", "counter",
			   "Errors, per kind.", "kind", &metrics.errors);
	render_set(out, "todo_kafka_relay_wakeups_total", "counter",
			   "Passes over the outbox started from sleep, per reason.", "reason",
			   &metrics.wakeups);
	render_set(out, "todo_kafka_relay_reminders_fired_total", "counter",
			   "Reminders fired by this relay, per status (sent, missed).", "status",
			   &metrics.reminders);
	tk_prom_header(out, "todo_kafka_relay_reminder_lateness_max_seconds", "gauge",
				   "Largest fire time minus scheduled time of a reminder since start.");
	tk_prom_sample(out, "todo_kafka_relay_reminder_lateness_max_seconds", NULL, NULL,
				   metrics.reminder_late_max);
	tk_prom_histogram(out, "todo_kafka_relay_reminder_lateness_seconds",
					  "Per firing round of sent reminders, the largest fire time minus scheduled time.",
					  &metrics.reminder_late);
	tk_prom_histogram(out, "todo_kafka_relay_publish_latency_seconds",
					  "Time from the outbox row's occurred_at to Kafka's acknowledgement.",
					  &metrics.latency);
	tk_prom_header(out, "todo_kafka_relay_publish_latency_max_seconds", "gauge",
				   "Largest commit->ack latency seen since start.");
	tk_prom_sample(out, "todo_kafka_relay_publish_latency_max_seconds", NULL, NULL, metrics.latency.max);
	tk_prom_histogram(out, "todo_kafka_relay_read_delay_seconds",
					  "First stage of the publish latency: from occurred_at to the relay's read of the row (the writer's commit and the wait for a pass).",
					  &metrics.read_stage);
	tk_prom_histogram(out, "todo_kafka_relay_ack_delay_seconds",
					  "Second stage of the publish latency: from the relay's read of the row to Kafka's acknowledgement.",
					  &metrics.ack_stage);
	tk_prom_header(out, "todo_kafka_relay_dead_letters_total", "counter",
				   "Messages Kafka refused for good, sent to the dead-letter topic.");
	tk_prom_sample(out, "todo_kafka_relay_dead_letters_total", NULL, NULL, metrics.dead_letters);
	tk_prom_header(out, "todo_kafka_relay_outbox_backlog_rows", "gauge",
				   "Outbox rows not yet published at the last measurement (beyond the stored position).");
	tk_prom_sample(out, "todo_kafka_relay_outbox_backlog_rows", NULL, NULL, (double) metrics.backlog);
	tk_prom_header(out, "todo_kafka_relay_outbox_oldest_age_seconds", "gauge",
				   "Age of the oldest outbox row not yet published at the last measurement.");
	tk_prom_sample(out, "todo_kafka_relay_outbox_oldest_age_seconds", NULL, NULL, metrics.oldest_age);
	tk_prom_header(out, "todo_kafka_relay_outbox_truncations_total", "counter",
				   "Outbox partitions emptied with TRUNCATE once every row in them was published.");
	tk_prom_sample(out, "todo_kafka_relay_outbox_truncations_total", NULL, NULL, metrics.truncations);
	tk_prom_header(out, "todo_kafka_relay_rows_in_flight", "gauge",
				   "Rows handed to Kafka and not yet acknowledged, or acknowledged in a window not yet settled.");
	tk_prom_sample(out, "todo_kafka_relay_rows_in_flight", NULL, NULL, (double) metrics.in_flight);
	tk_prom_header(out, "todo_kafka_relay_leader", "gauge",
				   "1 when this relay holds the leadership lock.");
	tk_prom_sample(out, "todo_kafka_relay_leader", NULL, NULL, metrics.leader ? 1 : 0);
	tk_prom_header(out, "todo_kafka_relay_postgres_connected", "gauge",
				   "1 when connected to PostgreSQL.");
	tk_prom_sample(out, "todo_kafka_relay_postgres_connected", NULL, NULL, metrics.pg_connected ? 1 : 0);
	tk_prom_header(out, "todo_kafka_relay_kafka_up", "gauge",
				   "1 unless all Kafka brokers are unreachable.");
	tk_prom_sample(out, "todo_kafka_relay_kafka_up", NULL, NULL, metrics.kafka_up ? 1 : 0);
	tk_prom_header(out, "todo_kafka_relay_start_time_seconds", "gauge",
				   "Start time of the relay, Unix seconds.");
	tk_prom_sample(out, "todo_kafka_relay_start_time_seconds", NULL, NULL, (double) metrics.started);
	pthread_mutex_unlock(&metrics.lock);
	tk_kafka_errors_render(out);
}

/* /healthz: runs on the HTTP thread */
static bool
render_health(void *arg, tk_strbuf *out)
{
	bool		ok;
	tk_strbuf	kafka;
	bool		kafka_ok;

	(void) arg;
	/* the current Kafka problem, in plain words (common/kafka_errors.c) */
	tk_strbuf_init(&kafka);
	kafka_ok = tk_kafka_health(&kafka);
	pthread_mutex_lock(&metrics.lock);
	ok = metrics.pg_connected && (metrics.kafka_up || !metrics.leader) && kafka_ok;
	if (ok)
		tk_strbuf_printf(out, "ok %s", metrics.leader ? "leader" : "standby");
	else
		tk_strbuf_printf(out, "degraded:%s%s%s",
						 metrics.pg_connected ? "" : " postgresql unreachable",
						 metrics.kafka_up ? "" : " kafka unreachable",
						 kafka_ok ? "" : " kafka misconfigured");
	pthread_mutex_unlock(&metrics.lock);
	if (kafka.data)
		tk_strbuf_puts(out, kafka.data);
	tk_strbuf_free(&kafka);
	return ok;
}

bool
relay_metrics_start(const char *listen, char *errbuf, size_t errlen)
{
	if (listen == NULL || listen[0] == '\0')
		return true;
	metrics_server = tk_http_start(listen, render_metrics, render_health, NULL,
								   errbuf, errlen);
	return metrics_server != NULL;
}

void
relay_metrics_stop(void)
{
	tk_http_stop(metrics_server);
	metrics_server = NULL;
}
