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
 *	sasl_front.c			--sasl-ssl: TLS + SASL listeners in front of the brokers
 *	sasl_auth.c				the SASL flow of one connection (what to do per request)
 *	kafka_wire.c			the Kafka responses the front rewrites (broker addresses)
 *	scram.c					SCRAM-SHA-512, the server side
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
#include <stdint.h>

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

/* scram.c */
typedef enum scram_state
{
	SCRAM_WAIT_FIRST = 0,
	SCRAM_WAIT_FINAL,
	SCRAM_DONE,
	SCRAM_FAILED
} scram_state;

struct scram_user;
typedef struct scram_session
{
	scram_state state;
	char		user_name[256];
	const struct scram_user *user;
	char	   *gs2_header;
	char	   *client_first_bare;
	char	   *server_first;
	char	   *nonce;
} scram_session;

extern const char *const scram_failure_message;
extern int	scram_add_user(char *spec, char *err, size_t errlen);
extern int	scram_user_count(void);
extern int	scram_step(scram_session *s, const uint8_t *in, size_t inlen,
					   char **out, char *why, size_t whylen);
extern void scram_session_free(scram_session *s);

/* kafka_wire.c: growable byte buffers and the rewritten responses */
typedef struct wbuf
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
} wbuf;

/* front port for a mock broker's port, 0 if none (sasl_front.c) */
typedef int (*port_map_fn) (int mock_port);

extern bool wbuf_put(wbuf *b, const void *p, size_t n);
extern bool wbuf_i16(wbuf *b, int v);
extern bool wbuf_i32(wbuf *b, int32_t v);
extern bool wbuf_str(wbuf *b, const char *s);	/* int16 length + bytes */
extern void wbuf_consume(wbuf *b, size_t n);
extern bool kafka_rewrite_response(int16_t api_key, int16_t version,
								   const uint8_t *resp, size_t len,
								   port_map_fn map, wbuf *out);

typedef struct kafka_req
{
	int16_t		api_key;
	int16_t		version;
	int32_t		corr;
	size_t		body;			/* offset of the body in the request */
} kafka_req;

extern bool kafka_request_header(const uint8_t *req, size_t len, kafka_req *h);
extern bool kafka_sasl_mechanism(const uint8_t *req, size_t len,
								 const kafka_req *h, char *buf, size_t buflen);
extern bool kafka_sasl_auth_bytes(const uint8_t *req, size_t len,
								  const kafka_req *h, const uint8_t **bytes,
								  size_t *n);
extern bool kafka_sasl_handshake_response(wbuf *out, int32_t corr, int16_t err);
extern bool kafka_sasl_auth_response(wbuf *out, const kafka_req *h, int16_t err,
									 const char *msg, const char *bytes);

/* sasl_auth.c */
typedef enum sasl_action
{
	SASL_FORWARD,				/* send the request on to the mock broker */
	SASL_REPLY,					/* the reply is in out; keep going */
	SASL_CLOSE					/* send out (if any), then close */
} sasl_action;

typedef struct sasl_auth
{
	const char *peer;			/* for the log */
	bool		handshaken;		/* SaslHandshake done */
	bool		raw_tokens;		/* ... with v0: raw SASL tokens follow */
	bool		authed;
	scram_session scram;
} sasl_auth;

extern sasl_action sasl_auth_request(sasl_auth *a, const uint8_t *req,
									 size_t len, kafka_req *h, wbuf *out);

/* sasl_front.c */
extern int	sasl_front_start(const char *mock_bootstrap, const char *cert,
							 const char *key, char **front_bootstrap);

#endif							/* DEVBROKER_H */
