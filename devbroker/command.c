/*-------------------------------------------------------------------------
 *
 * command.c
 *	  control commands of todo-kafka-devbroker (fault injection)
 *
 * A command is one line of whitespace-separated words; every command gets
 * exactly one answer line, "ok ..." or "error: ...", which the caller writes
 * to stdout.  Empty lines and lines starting with '#' are ignored and get no
 * answer.
 *
 * Each command maps onto one call of librdkafka 2.0.2's mock API
 * (rdkafka_mock.h); nothing here reaches into the mock's internals.  What
 * that API cannot do is refused with an explanation rather than faked:
 *
 *	- request errors are per API key, for the whole cluster or one broker;
 *	  2.0.2 has no per-topic request errors.  The only per-topic fault is the
 *	  topic error returned in Metadata responses (rd_kafka_mock_topic_set_error),
 *	  which stays until cleared.
 *	- a broker taken down disconnects its clients and refuses new connections,
 *	  but partition leadership does not move (the header says so); use
 *	  "leader" to move it by hand.
 *	- "down all"/"up all" loop over the broker ids rather than passing -1,
 *	  so each broker's change is confirmed (and tracked for "status") one
 *	  by one.  Each mock call is a round trip to the mock thread, which in
 *	  2.0.2 sometimes answers only after its 1 s poll timeout, so a command
 *	  can take a second or more; its answer comes once the change is done.
 *
 * IDENTIFICATION
 *	  devbroker/command.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "devbroker.h"

#define MAX_WORDS			8
#define MAX_ERROR_COUNT		100000
#define MAX_RTT_MS			600000

static const char command_help[] =
	"Control commands (one per line on stdin or the --control FIFO; each gets\n"
	"one answer line on stdout, \"ok ...\" or \"error: ...\"):\n"
	"  down ID|all                      take a broker (or all) down: clients are\n"
	"                                   disconnected and new connections refused\n"
	"  up ID|all                        let a broker (or all) accept connections again\n"
	"  error [broker ID] API ERR [COUNT]\n"
	"                                   fail the next COUNT (default 1) requests of\n"
	"                                   API (name like Produce, Fetch, Metadata, or\n"
	"                                   number) with ERR (name like\n"
	"                                   NOT_LEADER_FOR_PARTITION, _TRANSPORT, or\n"
	"                                   number), cluster-wide or on one broker\n"
	"  error TOPIC Metadata ERR         return ERR for TOPIC in Metadata responses\n"
	"                                   until cleared (the only per-topic fault the\n"
	"                                   librdkafka 2.0.2 mock supports)\n"
	"  clear API|TOPIC                  drop pending cluster-wide errors of API, or\n"
	"                                   the Metadata error of TOPIC\n"
	"  topic NAME PARTITIONS            create another topic\n"
	"  leader TOPIC PARTITION ID        move a partition's leader to broker ID\n"
	"                                   (-1: leaderless)\n"
	"  rtt ID|all MS                    delay the broker's responses by MS ms\n"
	"  status                           one line: brokers up/down, topics, bootstrap\n"
	"  help                             one line listing the commands\n";

const char *
devbroker_command_help(void)
{
	return command_help;
}

static void
answer(char *buf, size_t len, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

static void
answer(char *buf, size_t len, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/*
 * Resolve "ID" or "all" to a broker id range.  Returns false (with the
 * answer filled in) if it is neither.
 */
static bool
parse_broker_range(devbroker_state *st, const char *s, int *first, int *last,
				   char *ans, size_t anslen)
{
	long		id;

	if (strcmp(s, "all") == 0)
	{
		*first = 1;
		*last = st->broker_cnt;
		return true;
	}
	if (tk_config_parse_int(s, 1, st->broker_cnt, &id))
	{
		*first = *last = (int) id;
		return true;
	}
	answer(ans, anslen, "error: invalid broker \"%s\": use a broker id from 1 to %d, or \"all\"",
		   s, st->broker_cnt);
	return false;
}

/*
 * Create a topic with the cluster's replication factor.  Used for the
 * startup topics and the "topic" command.  Returns 0 or -1, with a message
 * in either case.
 */
int
devbroker_create_topic(devbroker_state *st, const char *name, int partitions,
					   char *msg, size_t msglen)
{
	rd_kafka_resp_err_t err;

	if (!devbroker_valid_topic_name(name))
	{
		answer(msg, msglen, "invalid topic name \"%s\": use 1 to 249 of [a-zA-Z0-9._-]",
			   name);
		return -1;
	}
	if (partitions < 1 || partitions > DEVBROKER_MAX_PARTITIONS)
	{
		answer(msg, msglen, "invalid partition count %d for topic \"%s\": use 1 to %d",
			   partitions, name, DEVBROKER_MAX_PARTITIONS);
		return -1;
	}
	err = rd_kafka_mock_topic_create(st->mcluster, name, partitions,
									 st->replication_factor);
	if (err)
	{
		answer(msg, msglen, "could not create topic \"%s\": %s (%s)",
			   name, rd_kafka_err2name(err), rd_kafka_err2str(err));
		return -1;
	}
	st->topic_cnt++;
	answer(msg, msglen, "topic %s partitions=%d replication=%d",
		   name, partitions, st->replication_factor);
	return 0;
}

static void
cmd_updown(devbroker_state *st, bool up, char **w, int nw,
		   char *ans, size_t anslen)
{
	int			first;
	int			last;
	int			id;

	if (nw != 2)
	{
		answer(ans, anslen, "error: usage: %s ID|all", w[0]);
		return;
	}
	if (!parse_broker_range(st, w[1], &first, &last, ans, anslen))
		return;

	for (id = first; id <= last; id++)
	{
		rd_kafka_resp_err_t err;

		err = up ? rd_kafka_mock_broker_set_up(st->mcluster, id)
			: rd_kafka_mock_broker_set_down(st->mcluster, id);
		if (err)
		{
			answer(ans, anslen, "error: could not set broker %d %s: %s",
				   id, w[0], rd_kafka_err2str(err));
			return;
		}
		st->broker_up[id] = up;
		tk_log(TK_LOG_INFO, "broker %d is %s", id, up ? "up" : "down");
	}
	if (first == last)
		answer(ans, anslen, "ok %s %d", w[0], first);
	else
		answer(ans, anslen, "ok %s all (brokers 1-%d)", w[0], last);
}

/*
 * error [broker ID] API ERR [COUNT]
 * error TOPIC Metadata ERR
 */
static void
cmd_error(devbroker_state *st, char **w, int nw, char *ans, size_t anslen)
{
	int16_t		key;
	rd_kafka_resp_err_t err;
	long		cnt = 1;
	long		broker = -1;
	int			i = 1;

	if (nw >= 3 && strcmp(w[1], "broker") == 0)
	{
		if (!tk_config_parse_int(w[2], 1, st->broker_cnt, &broker))
		{
			answer(ans, anslen, "error: invalid broker \"%s\": use a broker id from 1 to %d",
				   w[2], st->broker_cnt);
			return;
		}
		i = 3;
	}
	else if (nw >= 2 && !devbroker_parse_api_key(w[1], &key))
	{
		/* per-topic form: error TOPIC Metadata ERR */
		if (nw < 4 || !devbroker_parse_api_key(w[2], &key) || key != 3)
		{
			answer(ans, anslen, "error: \"%s\" is not an API; per-topic errors exist only for Metadata in the librdkafka 2.0.2 mock: use \"error TOPIC Metadata ERR\", or \"error API ERR COUNT\" for all topics",
				   w[1]);
			return;
		}
		if (nw != 4)
		{
			answer(ans, anslen, "error: a topic's Metadata error has no COUNT: it stays until \"clear %s\"",
				   w[1]);
			return;
		}
		if (!devbroker_valid_topic_name(w[1]))
		{
			answer(ans, anslen, "error: invalid topic name \"%s\"", w[1]);
			return;
		}
		if (!devbroker_parse_error_code(w[3], &err))
		{
			answer(ans, anslen, "error: unknown error code \"%s\": use a number or a librdkafka name such as UNKNOWN_TOPIC_OR_PART",
				   w[3]);
			return;
		}
		rd_kafka_mock_topic_set_error(st->mcluster, w[1], err);
		tk_log(TK_LOG_INFO, "topic %s: Metadata error %s until cleared",
			   w[1], rd_kafka_err2name(err));
		answer(ans, anslen, "ok error topic %s Metadata %s (until \"clear %s\")",
			   w[1], rd_kafka_err2name(err), w[1]);
		return;
	}

	if (nw - i < 2 || nw - i > 3)
	{
		answer(ans, anslen, "error: usage: error [broker ID] API ERR [COUNT], or error TOPIC Metadata ERR");
		return;
	}
	if (!devbroker_parse_api_key(w[i], &key))
	{
		answer(ans, anslen, "error: unknown API \"%s\": use a name such as Produce, Fetch, Metadata, or a number",
			   w[i]);
		return;
	}
	if (!devbroker_parse_error_code(w[i + 1], &err))
	{
		answer(ans, anslen, "error: unknown error code \"%s\": use a number or a librdkafka name such as NOT_LEADER_FOR_PARTITION",
			   w[i + 1]);
		return;
	}
	if (nw - i == 3 && !tk_config_parse_int(w[i + 2], 1, MAX_ERROR_COUNT, &cnt))
	{
		answer(ans, anslen, "error: invalid count \"%s\": use 1 to %d",
			   w[i + 2], MAX_ERROR_COUNT);
		return;
	}

	if (broker < 0)
	{
		rd_kafka_resp_err_t *errs;
		long		j;

		errs = malloc(sizeof(*errs) * (size_t) cnt);
		if (errs == NULL)
		{
			answer(ans, anslen, "error: out of memory");
			return;
		}
		for (j = 0; j < cnt; j++)
			errs[j] = err;
		rd_kafka_mock_push_request_errors_array(st->mcluster, key,
												(size_t) cnt, errs);
		free(errs);
	}
	else
	{
		long		j;

		/* the va-arg API takes (err, rtt) pairs, so push them one at a time */
		for (j = 0; j < cnt; j++)
		{
			rd_kafka_resp_err_t perr;

			perr = rd_kafka_mock_broker_push_request_error_rtts(st->mcluster,
																(int32_t) broker,
																key, 1, err, 0);
			if (perr)
			{
				answer(ans, anslen, "error: could not push error on broker %ld: %s",
					   broker, rd_kafka_err2str(perr));
				return;
			}
		}
	}

	if (broker < 0)
		tk_log(TK_LOG_INFO, "next %ld %s request(s) fail with %s",
			   cnt, devbroker_api_key_name(key), rd_kafka_err2name(err));
	else
		tk_log(TK_LOG_INFO, "next %ld %s request(s) on broker %ld fail with %s",
			   cnt, devbroker_api_key_name(key), broker, rd_kafka_err2name(err));
	if (broker < 0)
		answer(ans, anslen, "ok error %s %s x%ld", devbroker_api_key_name(key),
			   rd_kafka_err2name(err), cnt);
	else
		answer(ans, anslen, "ok error broker %ld %s %s x%ld", broker,
			   devbroker_api_key_name(key), rd_kafka_err2name(err), cnt);
}

static void
cmd_clear(devbroker_state *st, char **w, int nw, char *ans, size_t anslen)
{
	int16_t		key;

	if (nw != 2)
	{
		answer(ans, anslen, "error: usage: clear API|TOPIC");
		return;
	}
	if (devbroker_parse_api_key(w[1], &key))
	{
		rd_kafka_mock_clear_request_errors(st->mcluster, key);
		tk_log(TK_LOG_INFO, "cleared pending %s errors", devbroker_api_key_name(key));
		answer(ans, anslen, "ok clear %s", devbroker_api_key_name(key));
		return;
	}
	if (!devbroker_valid_topic_name(w[1]))
	{
		answer(ans, anslen, "error: \"%s\" is neither an API nor a topic name", w[1]);
		return;
	}
	rd_kafka_mock_topic_set_error(st->mcluster, w[1], RD_KAFKA_RESP_ERR_NO_ERROR);
	tk_log(TK_LOG_INFO, "topic %s: Metadata error cleared", w[1]);
	answer(ans, anslen, "ok clear topic %s", w[1]);
}

static void
cmd_topic(devbroker_state *st, char **w, int nw, char *ans, size_t anslen)
{
	long		partitions;
	char		msg[512];

	if (nw != 3)
	{
		answer(ans, anslen, "error: usage: topic NAME PARTITIONS");
		return;
	}
	if (!tk_config_parse_int(w[2], 1, DEVBROKER_MAX_PARTITIONS, &partitions))
	{
		answer(ans, anslen, "error: invalid partition count \"%s\": use 1 to %d",
			   w[2], DEVBROKER_MAX_PARTITIONS);
		return;
	}
	if (devbroker_create_topic(st, w[1], (int) partitions, msg, sizeof(msg)) != 0)
	{
		answer(ans, anslen, "error: %s", msg);
		return;
	}
	tk_log(TK_LOG_INFO, "created %s", msg);
	answer(ans, anslen, "ok %s", msg);
}

static void
cmd_leader(devbroker_state *st, char **w, int nw, char *ans, size_t anslen)
{
	long		partition;
	long		broker;
	rd_kafka_resp_err_t err;

	if (nw != 4)
	{
		answer(ans, anslen, "error: usage: leader TOPIC PARTITION ID");
		return;
	}
	if (!devbroker_valid_topic_name(w[1]))
	{
		answer(ans, anslen, "error: invalid topic name \"%s\"", w[1]);
		return;
	}
	if (!tk_config_parse_int(w[2], 0, DEVBROKER_MAX_PARTITIONS - 1, &partition))
	{
		answer(ans, anslen, "error: invalid partition \"%s\"", w[2]);
		return;
	}
	if (!tk_config_parse_int(w[3], -1, st->broker_cnt, &broker) || broker == 0)
	{
		answer(ans, anslen, "error: invalid broker \"%s\": use 1 to %d, or -1 for no leader",
			   w[3], st->broker_cnt);
		return;
	}
	err = rd_kafka_mock_partition_set_leader(st->mcluster, w[1],
											 (int32_t) partition,
											 (int32_t) broker);
	if (err)
	{
		answer(ans, anslen, "error: could not set leader: %s", rd_kafka_err2str(err));
		return;
	}
	tk_log(TK_LOG_INFO, "leader of %s [%ld] is now broker %ld",
		   w[1], partition, broker);
	answer(ans, anslen, "ok leader %s %ld %ld", w[1], partition, broker);
}

static void
cmd_rtt(devbroker_state *st, char **w, int nw, char *ans, size_t anslen)
{
	int			first;
	int			last;
	int			id;
	long		ms;

	if (nw != 3)
	{
		answer(ans, anslen, "error: usage: rtt ID|all MS");
		return;
	}
	if (!parse_broker_range(st, w[1], &first, &last, ans, anslen))
		return;
	if (!tk_config_parse_int(w[2], 0, MAX_RTT_MS, &ms))
	{
		answer(ans, anslen, "error: invalid delay \"%s\": use 0 to %d ms",
			   w[2], MAX_RTT_MS);
		return;
	}
	for (id = first; id <= last; id++)
	{
		rd_kafka_resp_err_t err;

		err = rd_kafka_mock_broker_set_rtt(st->mcluster, id, (int) ms);
		if (err)
		{
			answer(ans, anslen, "error: could not set rtt of broker %d: %s",
				   id, rd_kafka_err2str(err));
			return;
		}
	}
	tk_log(TK_LOG_INFO, "rtt of broker(s) %s is now %ld ms", w[1], ms);
	answer(ans, anslen, "ok rtt %s %ld", w[1], ms);
}

static void
cmd_status(devbroker_state *st, char *ans, size_t anslen)
{
	char		up[256] = "";
	char		down[256] = "";
	int			id;

	for (id = 1; id <= st->broker_cnt; id++)
	{
		char	   *list = st->broker_up[id] ? up : down;
		size_t		len = strlen(list);

		snprintf(list + len, sizeof(up) - len, "%s%d", len ? "," : "", id);
	}
	answer(ans, anslen, "ok status brokers=%d up=%s down=%s topics=%d commands=%ld bootstrap=%s",
		   st->broker_cnt, up[0] ? up : "-", down[0] ? down : "-",
		   st->topic_cnt, st->command_cnt, st->bootstrap);
}

/*
 * Execute one command line; "answer" receives the answer line (without
 * newline), or an empty string for a blank or comment line.
 */
void
devbroker_execute(devbroker_state *st, const char *line, char *ans,
				  size_t anslen)
{
	char		copy[DEVBROKER_LINE_MAX + 1];
	char	   *w[MAX_WORDS];
	int			nw = 0;
	char	   *save = NULL;
	char	   *tok;

	ans[0] = '\0';
	snprintf(copy, sizeof(copy), "%s", line);
	for (tok = strtok_r(copy, " \t", &save); tok != NULL;
		 tok = strtok_r(NULL, " \t", &save))
	{
		if (nw == MAX_WORDS)
		{
			answer(ans, anslen, "error: too many words in command");
			return;
		}
		w[nw++] = tok;
	}
	if (nw == 0 || w[0][0] == '#')
		return;

	st->command_cnt++;
	if (strcmp(w[0], "down") == 0)
		cmd_updown(st, false, w, nw, ans, anslen);
	else if (strcmp(w[0], "up") == 0)
		cmd_updown(st, true, w, nw, ans, anslen);
	else if (strcmp(w[0], "error") == 0)
		cmd_error(st, w, nw, ans, anslen);
	else if (strcmp(w[0], "clear") == 0)
		cmd_clear(st, w, nw, ans, anslen);
	else if (strcmp(w[0], "topic") == 0)
		cmd_topic(st, w, nw, ans, anslen);
	else if (strcmp(w[0], "leader") == 0)
		cmd_leader(st, w, nw, ans, anslen);
	else if (strcmp(w[0], "rtt") == 0)
		cmd_rtt(st, w, nw, ans, anslen);
	else if (strcmp(w[0], "status") == 0 && nw == 1)
		cmd_status(st, ans, anslen);
	else if (strcmp(w[0], "help") == 0 && nw == 1)
		answer(ans, anslen, "ok commands: down ID|all; up ID|all; error [broker ID] API ERR [COUNT]; error TOPIC Metadata ERR; clear API|TOPIC; topic NAME PARTITIONS; leader TOPIC PARTITION ID; rtt ID|all MS; status; help");
	else
		answer(ans, anslen, "error: unknown command \"%s\"%s; try \"help\"",
			   w[0], (strcmp(w[0], "status") == 0 || strcmp(w[0], "help") == 0)
			   ? " with arguments" : "");
}
