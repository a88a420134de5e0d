/*-------------------------------------------------------------------------
 *
 * runtime.h
 *	  internal declarations of the consumer runtime (not for services)
 *
 * IDENTIFICATION
 *	  consumers/runtime/runtime.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TKC_RUNTIME_H
#define TKC_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>

#include <librdkafka/rdkafka.h>

#include "backoff.h"
#include "consumer.h"
#include "otlp.h"
#include "prom.h"

#define TKC_MAX_STREAMS 8

/* a result the runtime gives an event it did not offer this round (batch.c, sink.c) */
#define TKC_NOT_TRIED ((tkc_result) -1)

/* the runtime's own settings (runtime_config.c) */
typedef struct tkc_runtime_config
{
	char	   *group_prefix;
	int			consumers;
	int			max_attempts;
	int			retry_base_ms;
	int			retry_max_ms;
	int			outage_retry_max_ms;
	int			batch_size;
	char	   *alert_webhook;
	int			produce_timeout_ms;
	int			stats_interval_ms;
} tkc_runtime_config;

/* everything the workers share, read-only once they run */
typedef struct tkc_runtime
{
	const tkc_service *svc;
	char		program[64];	/* todo-kafka-<name> */
	char		group[256];
	tk_daemon_config d;
	tkc_runtime_config rc;
	void	   *svc_config;		/* the service's settings */
	int			nstreams;
	const char *streams[TKC_MAX_STREAMS];
	char	   *topics[TKC_MAX_STREAMS];
	char	   *dead_letter_topic;
	int			nproduced;		/* streams written, not consumed */
	const char *produced[TKC_MAX_STREAMS];
	char	   *produced_topics[TKC_MAX_STREAMS];
	int			partitions;		/* most partitions of a consumed topic */
} tkc_runtime;

struct tkc_worker
{
	tkc_runtime *rt;
	int			index;
	pthread_t	thread;
	rd_kafka_t *consumer;
	rd_kafka_t *producer;		/* dead letters and tkc_produce, made lazily */
	PGconn	   *pg;
	tk_backoff	pg_backoff;
	int64_t		pg_next_try_ms;
	void	   *state;			/* the service's */
	bool		service_initialized;	/* svc->init ran (session.c) */
	int64_t		next_periodic_ms;
	uint64_t	rng;			/* retry jitter */

	/* partitions revoked while a batch was in hand (rebalance_cb) */
	rd_kafka_topic_partition_list_t *revoked;
	/* the batch in hand, from its first polled message to its release */
	struct tkc_item *hand;
	int			nhand;
	/* messages polled while waiting (retry, outage): handled next */
	rd_kafka_message_t **stash;
	int			nstash;
	int			cap_stash;
	bool		paused;
	bool		outage;			/* a dependency is down */
	bool		tracing;		/* trace is the process span in hand */
	tk_span		trace;
	char		traceparent[TK_TRACEPARENT_LEN + 1];	/* tkc_traceparent */
	int			exit_code;
};

/* runtime_config.c */
extern const tk_option tkc_runtime_options[];
extern const char *const tkc_consumer_kafka_defaults[][2];

/* batch.c: the messages of one batch */
typedef enum tkc_item_state
{
	ITEM_PENDING,
	ITEM_DONE,					/* handled or dead-lettered: offset may be stored */
	ITEM_ABANDONED				/* partition revoked or shutdown: not stored */
} tkc_item_state;

typedef struct tkc_item
{
	rd_kafka_message_t *m;
	tkc_event	ev;
	cJSON	   *root;
	char	   *key;
	tkc_item_state state;
	bool		invalid;		/* to the dead-letter topic, not the handler */
	bool		dead_lettered;	/* done by going to the dead-letter topic */
} tkc_item;

/* a message of a batch, as batch_offsets.c's decisions see it */
typedef struct tkc_msg_pos
{
	const char *topic;
	int32_t		partition;
	int64_t		offset;
	bool		done;			/* handled or dead-lettered */
} tkc_msg_pos;

/* batch_offsets.c: pure, unit-tested (test_batch_offsets.c) */
extern int	tkc_offsets_to_store(const tkc_msg_pos *pos, int n, tkc_msg_pos *out);
extern bool tkc_last_done_of_partition(const tkc_msg_pos *pos, int n, int i);
extern bool tkc_result_stops_round(tkc_result r);

extern int	tkc_batch_collect(tkc_worker *w, tkc_item *b, int max);
extern void tkc_batch_process(tkc_worker *w, tkc_item *b, int n);
extern void tkc_batch_sink_dead_letters(tkc_worker *w, tkc_item *b, int n);
extern void tkc_batch_store_offsets(tkc_worker *w, tkc_item *b, int n);
extern void tkc_batch_free(tkc_item *b, int n);

/* revoked.c: partitions revoked while messages of them are in hand */
extern bool tkc_is_revoked(tkc_worker *w, const char *topic, int32_t partition);
extern void tkc_drop_revoked(tkc_worker *w, tkc_item *b, int n);
extern void tkc_forget_revoked(tkc_worker *w, const rd_kafka_topic_partition_list_t *parts);

/* pause.c: waiting while staying in the group, outages */
extern void tkc_stash_push(tkc_worker *w, rd_kafka_message_t *m);
extern void tkc_set_paused(tkc_worker *w, bool pause);
extern void tkc_consumer_error(tkc_worker *w, rd_kafka_message_t *m);
extern bool tkc_wait_paused(tkc_worker *w, int ms);
extern void tkc_outage_begin(tkc_worker *w, const char *why);
extern void tkc_outage_end(tkc_worker *w);

/* session.c: the worker's PostgreSQL session; the service's init */
extern bool tkc_session_connect(tkc_worker *w, char *why, size_t whylen);
extern bool tkc_service_init_or_stop(tkc_worker *w, char *why, size_t whylen);

/* worker.c: a worker's thread, and the setup worker */
extern void *tkc_worker_run(void *arg);
extern int	tkc_run_setup(tkc_runtime *rt);

/* sink.c: a sink service's batch; one result per event */
extern void tkc_sink_run(tkc_worker *w, tkc_event **evs, int n, tkc_result *results);

/* event.c: parse and check the envelope; false with reason in ev->error */
extern bool tkc_event_parse(tkc_event *ev, const rd_kafka_message_t *m,
							cJSON **root, char **key);

/* kafka.c */
extern rd_kafka_t *tkc_consumer_create(tkc_worker *w, char *errbuf, size_t errlen);
extern rd_kafka_t *tkc_producer_create(tkc_runtime *rt, char *errbuf, size_t errlen);
extern bool tkc_produce_sync(rd_kafka_t *rk, const char *topic, const char *key,
							 const char *value, size_t len,
							 const tk_header *headers, int nheaders,
							 char *errbuf, size_t errlen);
extern bool tkc_produce_start(rd_kafka_t *rk, tkc_acks *acks, const char *topic,
							  const char *key, const char *value, size_t len,
							  const tk_header *headers, int nheaders,
							  char *errbuf, size_t errlen);
extern bool tkc_produce_wait(rd_kafka_t *rk, tkc_acks *acks, char *errbuf, size_t errlen);

/* dead_letter.c (runtime side): send one event to the dead-letter topic */
extern bool tkc_dead_letter(tkc_worker *w, const rd_kafka_message_t *m,
							const tkc_event *ev, const char *error_kind);

/* alert.c */
extern void tkc_alert(tkc_runtime *rt, const char *kind, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));
extern void tkc_alert_dead_letter(tkc_runtime *rt, const rd_kafka_message_t *m,
								  const tkc_event *ev, const char *error_kind);

/* trace.c: process spans (handle(): begin/end; a sink's batch: after it) */
extern void tkc_trace_begin(tkc_worker *w, const tkc_event *ev);
extern void tkc_trace_end(tkc_worker *w, const tkc_event *ev, tkc_result r);
extern void tkc_trace_sink(tkc_worker *w, tkc_event **evs, int n,
						   const tkc_result *res, uint64_t start_ns);

/* metrics.c */
extern void tkc_metrics_init(tkc_runtime *rt);
extern bool tkc_metrics_start(const char *listen, char *errbuf, size_t errlen);
extern void tkc_metrics_stop(void);
extern void tkc_metrics_handled(const char *topic, tkc_result r, double seconds);
extern void tkc_metrics_retried(const char *topic);
extern void tkc_metrics_dead_lettered(const char *topic, const char *kind);
extern void tkc_metrics_outage(int worker, bool down, const char *reason);
extern void tkc_metrics_kafka_stats(const char *json);
extern void tkc_metrics_count(const char *name, const char *label,
							  const char *value, double add);
extern void tkc_metrics_gauge(const char *name, double value);
extern void tkc_metrics_alert(const char *kind, bool webhook_ok);

#endif							/* TKC_RUNTIME_H */
