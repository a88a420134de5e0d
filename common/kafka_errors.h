/*-------------------------------------------------------------------------
 *
 * kafka_errors.h
 *	  one handler for Kafka connection problems, for every daemon
 *
 * IDENTIFICATION
 *	  common/kafka_errors.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_KAFKA_ERRORS_H
#define TK_KAFKA_ERRORS_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "kvlist.h"
#include "strbuf.h"

typedef enum tk_kafka_problem
{
	TK_KAFKA_OK = 0,
	TK_KAFKA_AUTH,				/* SASL login refused, mechanism not offered */
	TK_KAFKA_TLS_CA,			/* broker certificate not signed by our CA */
	TK_KAFKA_TLS,				/* other TLS handshake failure */
	TK_KAFKA_PROTOCOL,			/* security.protocol does not match the listener */
	TK_KAFKA_RESOLVE,			/* broker name does not resolve */
	TK_KAFKA_REFUSED,			/* nothing listens at the broker's address */
	TK_KAFKA_ALL_DOWN,			/* no broker reachable */
	TK_KAFKA_OTHER				/* anything else librdkafka reports */
} tk_kafka_problem;

/* remember the settings the messages name (user, mechanism, CA, servers) */
extern void tk_kafka_errors_configure(const tk_kvlist *props);

/*
 * Pure: classify one librdkafka error (code, or 0 for a log line, and its
 * text) and put it in plain words with the fix into buf.
 */
extern tk_kafka_problem tk_kafka_explain(int err, const char *reason,
										 const tk_kvlist *props,
										 char *buf, size_t len);
extern const char *tk_kafka_problem_name(tk_kafka_problem p);

/*
 * From an error_cb: a fatal error is logged and returns true (the caller
 * shuts down); anything else is explained, logged once, then repeats are
 * counted and summed up at most every TK_KAFKA_REPEAT_S seconds.
 */
#define TK_KAFKA_REPEAT_S 60
extern bool tk_kafka_error(rd_kafka_t *rk, int err, const char *reason);

/* from the log callback: true if the line was a known problem (handled) */
extern bool tk_kafka_error_log_line(int level, const char *fac, const char *buf);

/* Kafka answered (a delivery, a message): the current problem is over */
extern void tk_kafka_ok(void);

/*
 * The current problem (reported in the last TK_KAFKA_CURRENT_S seconds and
 * not cleared since), its text in buf; TK_KAFKA_OK when none.  Thread-safe.
 */
#define TK_KAFKA_CURRENT_S 30
extern tk_kafka_problem tk_kafka_current(char *buf, size_t len);

/* does this problem need a configuration change (never heals by itself)? */
extern bool tk_kafka_problem_is_config(tk_kafka_problem p);

/* /healthz: append "; kafka: <problem>" and tell if it is a config problem */
extern bool tk_kafka_health(tk_strbuf *out);

/* /metrics: todo_kafka_kafka_errors_total{kind} */
extern void tk_kafka_errors_render(tk_strbuf *out);

#endif							/* TK_KAFKA_ERRORS_H */
