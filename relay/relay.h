/*-------------------------------------------------------------------------
 *
 * relay.h
 *	  shared declarations of todo-kafka-relay
 *
 * Threads: everything here belongs to the main thread (the event loop in
 * main.c), except relay_metrics, which the HTTP thread reads under its
 * mutex.  librdkafka's delivery-report callback runs on the main thread
 * from rd_kafka_poll().
 *
 * IDENTIFICATION
 *	  relay/relay.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RELAY_H
#define RELAY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "messages/cloudevents.h"
#include "daemon_config.h"
#include "kafka_conf.h"
#include "log.h"
#include "trace.h"

/* exit codes */
#define RELAY_EXIT_OK		TK_EXIT_OK
#define RELAY_EXIT_FAILURE	TK_EXIT_FAILURE
#define RELAY_EXIT_USAGE	TK_EXIT_USAGE

/* set by signal handlers and callbacks, acted on by the main loop (main.c) */
extern volatile sig_atomic_t relay_fatal_error;

/* ---- relay_config.c ---- */

typedef struct relay_config
{
	tk_daemon_config d;			/* database, brokers, metrics, profile, kafka */
	int			poll_interval_ms;	/* safety-net poll while asleep */
	int			read_batch;		/* rows per outbox page */
	int			position_interval_ms;	/* max wait before storing the position */
	int			standby_retry_ms;	/* leadership retry period */
	int			reconnect_max_ms;	/* backoff cap */
	int			flush_timeout_ms;	/* at shutdown */
	int			stats_interval_ms;	/* backlog query period */
	bool		create_topics;
	bool		reminders;		/* fire due reminders (reminders.c) */
	int			reminder_grace;	/* seconds after which a late one is missed */
} relay_config;

extern const tk_daemon_spec relay_spec;

extern bool relay_config_load(relay_config *cfg, const tk_cli *cli,
							  char *errbuf, size_t errlen);
extern void relay_config_free(relay_config *cfg);
extern void relay_config_print(const relay_config *cfg, FILE *out);

/* ---- relay_metrics.c ---- */

/*
 * A published message's latency, in seconds (-1: unknown), and the two
 * stages it splits into at the moment the relay read its row: read_s, from
 * occurred_at to the read (the writer's commit, and the wait for the
 * relay's pass), and ack_s, from the read to Kafka's acknowledgement (the
 * message's build, librdkafka's batching and the broker's round trip).
 */
typedef struct relay_latency
{
	double		total_s;
	double		read_s;
	double		ack_s;
} relay_latency;

extern void relay_metrics_init(void);
/* lat: NULL for a message whose latency is not the row's (a dead letter) */
extern void relay_metrics_published(const char *topic, int messages,
									const relay_latency *lat);
extern void relay_metrics_row_done(const char *stream);
extern void relay_metrics_error(const char *kind);
extern void relay_metrics_dead_letter(void);
extern void relay_metrics_wakeup(const char *reason);
extern void relay_metrics_reminders_fired(const char *status, int n, double max_late_s);
extern void relay_metrics_backlog(int64_t rows, double oldest_age_s);
extern void relay_metrics_truncated(int partitions);
extern void relay_metrics_state(bool pg_connected, bool leader, bool kafka_up,
								int64_t rows_in_flight);
extern bool relay_metrics_start(const char *listen, char *errbuf, size_t errlen);
extern void relay_metrics_stop(void);

/* ---- topics_admin.c ---- */

typedef struct relay_topic
{
	char	   *stream;
	char	   *topic;
	int			partitions;
	int			replication_factor;
	long long	retention_ms;
	rd_kafka_topic_t *rkt;
} relay_topic;

typedef struct relay_topics
{
	relay_topic *items;
	int			n;
} relay_topics;

extern bool relay_topics_load(PGconn *conn, rd_kafka_t *rk, relay_topics *topics,
							  bool ensure);
extern void relay_topics_free(relay_topics *topics);
extern relay_topic *relay_topics_find(relay_topics *topics, const char *stream);

/* ---- producer.c ---- */

extern rd_kafka_t *relay_producer_create(const relay_config *cfg,
										 char *errbuf, size_t errlen);
extern int	relay_producer_queue_room(rd_kafka_t *rk);
extern void relay_producer_service(rd_kafka_t *rk, relay_topics *topics);
extern bool relay_producer_send_row(rd_kafka_t *rk, relay_topics *topics,
									const tk_outbox_row *row, int64_t id);
extern bool relay_kafka_up(void);

/* ---- inflight.c (the producer's side of it: inflight.h) ---- */

extern int64_t relay_rows_in_flight(void);

/* a known row met again by the reader: skip it (see inflight.c) */
extern bool relay_row_rejoin(int64_t id);

typedef struct relay_dead_row
{
	int64_t		id;
	char	   *topic;
	char	   *reason;
} relay_dead_row;

extern int	relay_take_dead(relay_dead_row **rows);
extern void relay_forget_dead(relay_dead_row *rows, int n);
extern bool relay_take_rescan(void);

/* ---- position.c ---- */

extern void relay_position_set(const char *snapshot, int64_t max_id);
extern bool relay_position_settled(const char **snapshot, int64_t *max_id);
extern void relay_position_drop_windows(void);
extern uint64_t relay_position_open_window(void);
extern uint64_t relay_position_current_window(void);
extern void relay_position_row_added(uint64_t seq);
extern void relay_position_row_settled(uint64_t seq);
extern void relay_position_close_window(uint64_t seq, const char *snapshot,
										int64_t max_id);
extern void relay_position_open(const char *conninfo);
extern void relay_position_close(void);
extern void relay_position_store(bool force, int interval_ms);
extern int64_t relay_position_store_due_ms(int interval_ms);
extern bool relay_position_load(PGconn *conn);

/* ---- outbox_reader.c ---- */

typedef struct relay_reader relay_reader;

typedef enum relay_pass_result
{
	PASS_ROWS,					/* produced rows; call again at once */
	PASS_MORE,					/* window or page not finished; call again */
	PASS_EMPTY,					/* window finished with nothing new */
	PASS_BACKPRESSURE,			/* producer queue full: poll Kafka first */
	PASS_INFLIGHT,				/* starting over: rows still in flight first */
	PASS_ERROR					/* query failed: see PQstatus */
} relay_pass_result;

extern relay_reader *relay_reader_create(void);
extern void relay_reader_reset(relay_reader *rd);
extern relay_pass_result relay_reader_pass(relay_reader *rd, PGconn *conn,
										   rd_kafka_t *rk, relay_topics *topics,
										   int batch);
extern int	relay_reader_in_progress(relay_reader *rd, uint64_t **xids);
extern bool relay_reader_still_running(relay_reader *rd, const uint64_t *xids, int n);
extern bool relay_reader_window_open(relay_reader *rd);
extern bool relay_reader_prefetch_begin(relay_reader *rd, PGconn *conn, int batch);
extern bool relay_reader_prefetch_end(relay_reader *rd, PGconn *conn);
extern bool relay_move_dead(PGconn *conn);
extern bool relay_query_backlog(PGconn *conn);

/* ---- pass_schedule.c ---- */

/* the leader's pass schedule; main.c reads next_pass_at */
typedef struct relay_schedule
{
	int64_t		next_pass_at;
	int64_t		last_rows_at;
	bool		sleeping;		/* holding the sleep lock */
	bool		rechecking;		/* the pass after taking it is due */
	const char *wake_reason;	/* why a sleeping relay is passing */
	uint64_t   *suspects;		/* in progress at the re-check */
	int			nsuspects;
	int			recheck_delay;
} relay_schedule;

typedef enum relay_schedule_result
{
	SCHEDULE_OK,				/* pass done, next one scheduled */
	SCHEDULE_PROGRESS,			/* the same, and the outbox answered: reset backoff */
	SCHEDULE_PG_FAILED			/* a statement failed: see PQstatus */
} relay_schedule_result;

extern void relay_schedule_start(relay_schedule *s);
extern void relay_schedule_lost(relay_schedule *s);
extern void relay_schedule_wake(relay_schedule *s, const char *reason);
extern void relay_schedule_retry(relay_schedule *s, int delay_ms);
/* run one outbox pass now, then schedule the next (next_pass_at) */
extern relay_schedule_result relay_run_pass(relay_schedule *s, relay_reader *rd,
											PGconn *conn, rd_kafka_t *rk,
											relay_topics *topics,
											const relay_config *cfg);

/* ---- reminders.c ---- */

extern void relay_reminders_reset(void);
extern void relay_reminders_changed(void);
extern int64_t relay_reminders_due_at(void);
extern int	relay_reminders_fire(PGconn *conn, int grace_s);

/* ---- leader.c ---- */

typedef enum relay_pg_state
{
	PGS_DISCONNECTED,
	PGS_STANDBY,				/* connected, another relay leads */
	PGS_LEADER
} relay_pg_state;

extern PGconn *relay_pg_connect(const char *conninfo);

/* tracing.c: the publish span of each row (off without otlp_endpoint) */
extern void relay_trace_connected(PGconn *conn);
extern const tk_outbox_row *relay_trace_row(const tk_outbox_row *row, tk_outbox_row *copy,
											char tp[TK_TRACEPARENT_LEN + 1],
											tk_trace_ctx *parent);
extern void relay_trace_published(const tk_outbox_row *meta, const tk_trace_ctx *parent,
								  int64_t read_us, int nmsgs, const char *dead_reason);
extern void relay_log_api_error(PGconn *conn, const PGresult *res,
								const char *function, const char *doing);
extern bool relay_try_leadership(PGconn *conn, bool *is_leader);
extern bool relay_sleep_lock(PGconn *conn, bool take);
extern int	relay_drain_notifies(PGconn *conn);

#endif							/* RELAY_H */
