/*-------------------------------------------------------------------------
 *
 * dlq_int.h
 *	  todo-kafka-dlq: what its files share (private to tools/dlq/)
 *
 * The tool is one pass: dlq.c parses the command line and the config,
 * connects, then dlq_read.c collects every dead letter (the dead-letter
 * topic, then the table todo_kafka.dead_letters, then the replay counts)
 * into one dl_list; dlq_print.c selects from it and prints (list, show),
 * dlq_replay.c replays the selected ones; dlq_conf.c holds what they all
 * build on (the Kafka configuration, times).  The list lives until exit and
 * is never freed: a command, not a service.
 *
 * A dead letter is named by where it lies: "<partition>:<offset>" of the
 * dead-letter topic, or "db:<id>" of the table (dead_letter.name).
 *
 * IDENTIFICATION
 *	  tools/dlq/dlq_int.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_DLQ_INT_H
#define TK_DLQ_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>

#include "daemon_config.h"

#define PROGRAM "todo-kafka-dlq"

typedef struct dlq_config
{
	char	   *ids;			/* --id, comma separated */
	char	   *origin_topic;
	char	   *since;
	char	   *until;
	char	   *older_than;
	bool		force;
	bool		all;
} dlq_config;

/* one Kafka header of the original message; value NULL for a null header */
typedef struct dl_header
{
	char	   *name;
	char	   *value;
	size_t		value_len;
} dl_header;

/* one dead letter, from the topic or the table */
typedef struct dead_letter
{
	char		name[48];		/* "p:o" or "db:id" */
	int64_t		failed_us;		/* when it failed (wall clock, us) */
	char	   *error;
	char	   *reason;
	char	   *origin_topic;
	int32_t		origin_partition;	/* -1 unknown */
	int64_t		origin_offset;	/* -1 unknown */
	char	   *key;
	char	   *event_id;
	char	   *event_type;
	char	   *group;
	char	   *payload;		/* the original value, NULL when none */
	size_t		payload_len;
	dl_header  *headers;		/* the original headers, in order */
	int			nheaders;
	bool		has_headers;	/* the envelope kept them (data.headers) */
	char	   *outbox_id;		/* relay notices and rows */
	char	   *raw;			/* the envelope or the row, as JSON text */
	bool		from_table;
	int			replays;		/* from dead_letter_replays */
} dead_letter;

typedef struct dl_list
{
	dead_letter *items;
	int			n;
	int			cap;
} dl_list;

/* dlq_conf.c: what the commands build on */
extern rd_kafka_conf_t *dlq_kafka_conf(const tk_daemon_config *d, char *err, size_t errlen);
extern bool dlq_resolve_time(PGconn *conn, const char *opt, const char *value, int64_t *us);

/* dlq_read.c: collecting the dead letters */
extern bool dlq_read_topic(const tk_daemon_config *cfg, PGconn *conn, const char *topic,
						   dl_list *out, int64_t *keep_from_cutoff_us, char *keep_json,
						   size_t keep_len);
extern bool dlq_read_table(PGconn *conn, dl_list *out);
extern void dlq_read_replays(PGconn *conn, dl_list *l);

/* dlq_print.c: selection and output */
extern bool dlq_matches(const dlq_config *o, const dead_letter *d, int64_t since, int64_t until);
extern void dlq_print_list(const dl_list *l, const dlq_config *o, int64_t since, int64_t until);
extern void dlq_print_one(const dead_letter *d);

/* dlq_replay.c: replay once */
extern bool dlq_replay_one(PGconn *conn, rd_kafka_t **producer, const tk_daemon_config *cfg,
						   const dead_letter *d, bool force);

#endif							/* TK_DLQ_INT_H */
