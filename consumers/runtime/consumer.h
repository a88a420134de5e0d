/*-------------------------------------------------------------------------
 *
 * consumer.h
 *	  the consumer runtime: what a todo_kafka consumer service writes
 *
 * Writing a new service (consumers/<name>/, program todo-kafka-<name>):
 *	 1. Handler: a tkc_service with its streams and ONE shape: handle (one
 *		event at a time; results OK, RETRY, DEAD, DOWN) or sink (one call
 *		per batch, one statement, one transaction); validate for the fields
 *		it uses; main() is one line: return tkc_main(&svc, argc, argv).
 *		A Makefile of three lines (PROGRAM, SRCS, include ../service.mk).
 *	 2. SQL: the service writes only through extension functions (STYLE
 *		38f: a sink function taking a JSON array, idempotent by event id),
 *		granted to the service's OWN role (todo_kafka_<role>, db_role
 *		here) and to no other; the role is added to the extension's roles
 *		and grants, and to tests/405_service_roles.pl.
 *	 3. Schema: a stream it produces has a JSON schema in schemas/ and an
 *		entry in common/messages/streams.h.
 *	 4. Tests: tests/NNN_<name>_*.pl on start_stack (real PostgreSQL, the
 *		devbroker), each able to fail: delivery, a dead letter, an outage.
 *	 5. README: a "### todo-kafka-<name>" section under The consumer
 *		services (what it does, its settings, its role), and its settings in
 *		docs/reference.md (scripts/gen-reference).
 *
 * The runtime owns everything else: command line, config file and
 * environment (common/daemon_config.c), the consumer group
 * (<group_prefix><name>), one librdkafka consumer per worker thread
 * (--consumers N), the poll loop, offsets (stored only after handling, or
 * in the sink's own transaction: stored_offsets), retries with backoff and
 * jitter, dead letters, alerts, pausing on a dependency outage, a
 * PostgreSQL session per worker, /metrics and /healthz, signals (runtime.c,
 * worker.c, batch.c).
 *
 * Threads: init, handle or sink, periodic and fini of one worker run on
 * that worker's thread only; each worker has its own PGconn and state.
 * Workers share nothing the service must lock, unless the service itself
 * shares state between them.
 *
 * IDENTIFICATION
 *	  consumers/runtime/consumer.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TKC_CONSUMER_H
#define TKC_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "daemon_config.h"
#include "messages/envelope.h"
#include "options.h"
#include "otlp.h"
#include "strbuf.h"

/* what became of one event */
typedef enum tkc_result
{
	TKC_OK,						/* handled: its offset may be stored */
	TKC_RETRY,					/* failed this time: retry with backoff, then
								 * dead-letter after max_attempts */
	TKC_DEAD,					/* can never succeed: dead-letter now */
	TKC_DOWN					/* a dependency is down (not the event's
								 * fault): pause, wait, try again, no attempt
								 * counted, never dead-lettered for it */
} tkc_result;

/* tkc_offset_store.load: read the partition from its first offset */
#define TKC_OFFSET_BEGINNING (-2)
/* tkc_offset_store.load: from the group's committed offset after all */
#define TKC_OFFSET_COMMITTED (-1001)

/* tkc_service.setup: go on and start the workers */
#define TKC_SETUP_CONTINUE (-1)

/*
 * One consumed message.  The envelope was checked before the handler sees
 * it: value is JSON, a CloudEvent 1.0 with string id, source and type; data
 * is its "data" member (may be NULL).  Everything is owned by the runtime
 * and valid during the call.  On failure the handler writes the reason
 * into error (tkc_fail), which goes to the log, the dead-letter headers and
 * the alert.
 */
typedef struct tkc_event
{
	const char *topic;
	int32_t		partition;
	int64_t		offset;
	const char *key;			/* NUL-terminated copy, NULL when none */
	const char *value;			/* as received, NOT NUL-terminated */
	size_t		value_len;
	int64_t		timestamp_ms;	/* Kafka message timestamp, -1 if none */

	const cJSON *ce;			/* the parsed CloudEvent */
	const char *id;
	const char *type;
	const char *source;
	const char *subject;		/* NULL when absent */
	const char *time;			/* NULL when absent */
	const cJSON *data;			/* NULL when absent */

	int			attempt;		/* 1 on the first try */
	char		error[512];		/* why it failed (tkc_fail) */
} tkc_event;

typedef struct tkc_worker tkc_worker;

/* tkc_service.sink: write evs[0..n-1] in one transaction */
typedef tkc_result (*tkc_sink_call) (tkc_worker *w, tkc_event **evs, int n,
									 int *written);

/*
 * Where a service that keeps its offsets in its sink (tkc_service.
 * stored_offsets) tells the runtime about them.  Both hooks run on the
 * worker's thread with its database session up.
 */
typedef struct tkc_offset_store
{
	/*
	 * Where a newly assigned partition starts, called from the rebalance
	 * callback (the runtime reconnects and asks again, with backoff, while
	 * it returns false, e.g. the database is down).  Sets *offset to the
	 * next offset to read, TKC_OFFSET_BEGINNING, or TKC_OFFSET_COMMITTED
	 * (the group's committed offset, auto.offset.reset when none).
	 * tkc_sink_start_offset() is a ready body.
	 */
	bool		(*load) (tkc_worker *w, const char *topic, int32_t partition,
						 int64_t *offset);

	/*
	 * The sink must also count the events it never saw because they were
	 * dead-lettered, or a partition whose last events were dead-lettered
	 * starts before them again after a restart and dead-letters them
	 * again.  Called once every event of a batch is finished, for each
	 * partition whose last finished event (ev) went to the dead-letter
	 * topic; it records that the partition is done up to and including ev.
	 * Returns TKC_OK, or (reason in ev->error) anything else when the sink
	 * cannot be written now: the runtime waits as for a dependency that is
	 * down (partitions paused) and asks again, until it works, the
	 * partition is revoked or the worker shuts down (then the event is read
	 * and dead-lettered once more by the next owner: at least once).
	 */
	tkc_result	(*skip_dead_letter) (tkc_worker *w, tkc_event *ev);
} tkc_offset_store;

typedef struct tkc_service
{
	const char *name;			/* "audit": todo-kafka-audit, group
								 * todo-chatbot-audit */
	const char *summary;		/* one line for --help */
	const char *db_role;		/* the role its login needs (README Roles),
								 * named in hints */
	const char *const *streams; /* logical streams consumed (NULL ended),
								 * topics from todo_kafka.topic_of() */
	const char *const *produces;	/* streams it only writes to with
									 * tkc_produce() (NULL ended), or NULL */
	const tk_option *options;	/* the service's own settings, or NULL */
	size_t		config_size;	/* size of the struct they are bound to */
	const tk_cli_option *cli_options;	/* extra long options, or NULL */
	const char *notes;			/* extra --help text, or NULL */

	/*
	 * Optional: check the service's settings once they are read, with the
	 * profile ("development" or "production"); false (reason in errbuf)
	 * refuses to start, exit 2, like any configuration error.
	 */
	bool		(*check_config) (const void *config, const char *profile,
								 char *errbuf, size_t errlen);

	/*
	 * Optional: check the fields the handler uses before it runs; false
	 * (with a reason in ev->error) dead-letters the event at once.
	 */
	bool		(*validate) (const void *config, tkc_event *ev);
	/* once per worker, after its PostgreSQL session is up; false = fatal */
	bool		(*init) (tkc_worker *w, char *errbuf, size_t errlen);

	/*
	 * The two shapes of a service: set exactly one of handle and sink.
	 *
	 * handle: one event at a time, in offset order (the notifier).  The
	 * runtime stops a batch at the first event that is not finished (RETRY,
	 * DOWN), so one task's events keep their order.
	 *
	 * sink: one call per batch (one statement, one transaction: the audit
	 * log, the projection); writes evs[0..n-1] and returns one result for
	 * all of them, setting *written to the rows it actually wrote (repeats
	 * it skipped do not count).  A refused batch (DEAD, RETRY) is offered
	 * again one event at a time so only the bad one is retried or
	 * dead-lettered, and a partition's later events wait for its earlier
	 * ones (the sink never sees offset n+1 before n).  sink_unit names
	 * what it writes on /metrics: todo_kafka_<service>_<unit>_written_total
	 * and _<unit>_present_total (handled, already there).
	 */
	tkc_result	(*handle) (tkc_worker *w, tkc_event *ev);
	tkc_sink_call sink;
	const char *sink_unit;		/* "records", "events" */

	/* optional housekeeping, worker 0 only, every periodic_ms */
	void		(*periodic) (tkc_worker *w);
	int			periodic_ms;
	void		(*fini) (tkc_worker *w);

	/*
	 * Optional, for a service that keeps its offsets in its own sink, in the
	 * transaction of its effects (STYLE 38e: the projector, the audit
	 * service): then the group's committed offsets never position a
	 * partition.  See tkc_offset_store.
	 */
	const tkc_offset_store *stored_offsets;

	/*
	 * Optional: once, in the main thread, after the configuration and the
	 * topics are known and before any worker starts.  w is a setup worker
	 * (index -1) with a database session of its own and no consumer:
	 * tkc_pg, tkc_config, tkc_topic, tkc_watermarks and tkc_partition_count
	 * work.  Returns TKC_SETUP_CONTINUE to start the workers, or an exit
	 * code (0, 1, 2) to exit with at once: one-shot commands and refusals
	 * (the projector's --snapshot, --replay).
	 */
	int			(*setup) (tkc_worker *w);
} tkc_service;

extern int	tkc_main(const tkc_service *svc, int argc, char **argv);

/* for handlers */
extern const void *tkc_config(tkc_worker *w);	/* the service's settings */
extern void *tkc_state(tkc_worker *w);
extern void tkc_set_state(tkc_worker *w, void *state);
extern int	tkc_worker_index(tkc_worker *w);
extern const char *tkc_group(tkc_worker *w);	/* <group_prefix><name> */
extern PGconn *tkc_pg(tkc_worker *w);	/* NULL while the database is down */
extern const char *tkc_topic(tkc_worker *w, const char *stream);

extern void tkc_fail(tkc_event *ev, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/*
 * Whether this is the event's last attempt: a TKC_RETRY now dead-letters
 * it (RETRIES_EXHAUSTED) instead of trying again, so a handler can record
 * that in its own sink.
 */
extern bool tkc_last_attempt(tkc_worker *w, const tkc_event *ev);

/*
 * Map a statement's outcome to a result: OK, DOWN (connection lost, or a
 * deployment problem such as a missing grant, which is no event's fault),
 * DEAD (the data is wrong) or RETRY; the reason goes to ev->error.
 */
extern tkc_result tkc_pg_result(tkc_worker *w, const PGresult *res, tkc_event *ev);

/*
 * For a sink: arr holds a JSON array being built ("[" and the items); this
 * closes it, runs sql (a statement returning one integer, e.g. the rows
 * the sink function wrote) with the text params[0..nparams-1] (at most
 * TKC_PG_MAX_PARAMS - 1) and the array as the last parameter, maps its
 * outcome like tkc_pg_result, sets *count on TKC_OK, and frees arr.  Out
 * of memory while building arr: TKC_RETRY, without a query.
 */
#define TKC_PG_MAX_PARAMS 8
extern tkc_result tkc_pg_count_array(tkc_worker *w, const char *sql, int nparams,
									 const char *const *params, tk_strbuf *arr,
									 tkc_event *ev, int *count);

/*
 * Produce one message to a stream's topic and wait until Kafka
 * acknowledged it (acks=all, idempotent).  false: not acknowledged within
 * the timeout or refused, reason in errbuf; the caller returns TKC_RETRY
 * or TKC_DOWN.
 */
extern bool tkc_produce(tkc_worker *w, const char *stream, const char *key,
						const char *value, size_t len,
						const tk_header *headers, int nheaders,
						char *errbuf, size_t errlen);

/*
 * Several messages, one wait (a batch handler): tkc_produce_begin each
 * message (in order: the producer is idempotent, a partition keeps it),
 * then tkc_produce_end, which waits until Kafka acknowledged or refused
 * every one begun; call it also after a failed begin (acks points at
 * what is still in flight).  false: a message not acknowledged or refused,
 * reason in errbuf; what was acknowledged stays on the topic, so the caller
 * must be able to produce the whole batch again (same ids).
 */
typedef struct tkc_acks
{
	volatile int pending;		/* begun, not yet reported */
	int			err;			/* the first failure (rd_kafka_resp_err_t) */
} tkc_acks;

extern bool tkc_produce_begin(tkc_worker *w, tkc_acks *acks, const char *stream,
							  const char *key, const char *value, size_t len,
							  const tk_header *headers, int nheaders,
							  char *errbuf, size_t errlen);
extern bool tkc_produce_end(tkc_worker *w, tkc_acks *acks, char *errbuf, size_t errlen);

/*
 * A partition's low and high watermarks (first retained offset, next offset
 * to be written), asked of the broker; false with the reason in errbuf.
 */
extern bool tkc_watermarks(tkc_worker *w, const char *topic, int32_t partition,
						   int64_t *low, int64_t *high, char *errbuf, size_t errlen);

/* the partition count of a topic, or -1 with the reason in errbuf */
extern int	tkc_partition_count(tkc_worker *w, const char *topic,
								char *errbuf, size_t errlen);

/* a labelled counter on /metrics: todo_kafka_<service>_<name>_total{label="value"} */
extern void tkc_count(tkc_worker *w, const char *name, const char *label,
					  const char *value, double add);
/* a gauge on /metrics: todo_kafka_<service>_<name>, set to value */
extern void tkc_gauge(tkc_worker *w, const char *name, double value);

/*
 * For services that keep their offsets in their own sink (sink_offsets.c).
 * offsets_fn names an extension function returning (kafka_partition,
 * next_offset) rows for (topic), or, when group is not NULL, for (group,
 * topic): e.g. "todo_kafka.project_offsets", "todo_kafka.audit_offsets".
 *	 tkc_sink_stored_offset: the stored next offset of topic[partition], -1
 *		when none, -2 on error (reason in err); *any (may be NULL): whether
 *		any partition has one;
 *	 tkc_sink_start_offset: a tkc_offset_store.load body: stored, else the
 *		beginning, or with a group that has none at all, the group's
 *		committed offset (TKC_OFFSET_COMMITTED);
 *	 tkc_sink_low_watermarks: low[p] for every partition of topic (at most
 *		max); returns the partition count, -1 on error (logged);
 *	 tkc_sink_check_gap: -1 when every partition starts (stored offset, 0
 *		when none) at or past its low watermark, or a group has none stored;
 *		else the first partition that does not, with its start in *start;
 *		-2 on error (logged);
 *	 tkc_sink_log_gap: the FATAL line of a refusal, naming the partitions
 *		whose oldest events are gone, then consequence;
 *	 tkc_take_flag: remove flag from argv (before tkc_main), true if given.
 */
extern int64_t tkc_sink_stored_offset(PGconn *conn, const char *offsets_fn, const char *group,
									  const char *topic, int32_t partition, bool *any,
									  char *err, size_t errlen);
extern bool tkc_sink_start_offset(tkc_worker *w, const char *offsets_fn, const char *group,
								  const char *topic, int32_t partition, int64_t *offset);
extern int	tkc_sink_low_watermarks(tkc_worker *w, const char *topic, int64_t *low, int max);
extern int	tkc_sink_check_gap(tkc_worker *w, const char *offsets_fn, const char *group,
							   const char *topic, const int64_t *low, int nparts,
							   int64_t *start);
extern void tkc_sink_log_gap(const char *what, const char *topic, const int64_t *low,
							 int nparts, const char *consequence);
extern bool tkc_take_flag(int *argc, char **argv, const char *flag);

/* cJSON helpers for handlers: a member's string value, or NULL */
extern const char *tkc_json_string(const cJSON *obj, const char *name);

/*
 * Tracing (runtime/trace.c; spans only with otlp_endpoint set).
 * tkc_event_trace_id: the event's trace id, 32 hex digits ("" and false
 * when it carries no traceparent).  tkc_traceparent: what a message
 * produced because of ev carries (the process span when tracing, else
 * ev's own traceparent; NULL when none); valid until the next call.
 * tkc_span_start/finish: a span of a side effect (an email, a push, an
 * inbox row), a child of the event's process span; both do nothing when
 * tracing is off (tk_span_attr on such a span too).  finish: error NULL
 * when it succeeded.
 */
extern bool tkc_event_trace_id(const tkc_event *ev, char out[33]);
extern const char *tkc_traceparent(tkc_worker *w, const tkc_event *ev);
extern void tkc_span_start(tkc_worker *w, tk_span *s, const char *name);
extern void tkc_span_finish(tk_span *s, const char *error);

#endif							/* TKC_CONSUMER_H */
