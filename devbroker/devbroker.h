/*-------------------------------------------------------------------------
 *
 * devbroker.h
 *	  shared declarations of todo-kafka-devbroker
 *
 * The development broker is split by concern:
 *
 *	todo-kafka-devbroker.c	command line, startup, signals, main loop
 *	command.c				executing control commands, one answer line each
 *	names.c					the names they accept: API keys, error codes, topics
 *	input.c					line-oriented command sources (stdin, FIFO)
 *
 * Logging, signals and config parsing come from common/.
 *
 * Everything runs on the main thread; librdkafka's mock cluster runs its own
 * thread, and every rd_kafka_mock_*() call used here hands a command to that
 * thread and waits for its reply, so no locking is needed on our side.
 *
 * IDENTIFICATION
 *	  devbroker/devbroker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DEVBROKER_H
#define DEVBROKER_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define DEVBROKER_MAX_BROKERS		64
#define DEVBROKER_MAX_PARTITIONS	10000
#define DEVBROKER_LINE_MAX			1024

/* logging and signals come from common/ */
#include "kafka_conf.h"
#include "log.h"
#include "signals.h"

/* command.c */
typedef struct devbroker_state
{
	rd_kafka_t *rk;				/* handle that owns the mock cluster */
	rd_kafka_mock_cluster_t *mcluster;
	const char *bootstrap;		/* owned by the mock cluster */
	int			broker_cnt;		/* broker ids are 1 .. broker_cnt */
	bool		broker_up[DEVBROKER_MAX_BROKERS + 1];
	int			replication_factor;
	int			topic_cnt;		/* topics created by us (not auto-created) */
	long		command_cnt;
} devbroker_state;

extern int	devbroker_create_topic(devbroker_state *st, const char *name,
								   int partitions, char *msg, size_t msglen);
extern void devbroker_execute(devbroker_state *st, const char *line,
							  char *answer, size_t answerlen);
extern const char *devbroker_command_help(void);

/* names.c */
extern bool devbroker_parse_api_key(const char *s, int16_t *key);
extern const char *devbroker_api_key_name(int16_t key);
extern bool devbroker_parse_error_code(const char *s, rd_kafka_resp_err_t *err);
extern bool devbroker_valid_topic_name(const char *name);

/* input.c */
typedef struct line_source
{
	const char *name;			/* "stdin" or the FIFO path */
	int			fd;				/* -1 when closed */
	bool		is_fifo;		/* reopen on EOF instead of closing for good */
	char		buf[DEVBROKER_LINE_MAX];
	size_t		len;
	bool		discarding;		/* skipping the rest of an overlong line */
} line_source;

typedef void (*line_handler) (const char *line, void *arg);

extern int	line_source_open_fifo(line_source *src, const char *path,
								  bool *created);
extern void line_source_init_fd(line_source *src, const char *name, int fd);
extern void line_source_read(line_source *src, line_handler handler,
							 void *arg);

#endif							/* DEVBROKER_H */
