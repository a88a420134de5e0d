/*
 * bench/plain_producer.c
 *	  baseline for bench/relay: a plain librdkafka producer
 *
 * Sends COUNT messages to TOPIC with the relay's producer settings
 * (idempotent, acks=all, snappy, linger 5 ms, batch 16384), waits for every
 * ack and prints "messages=<n> seconds=<s> rate=<msgs/s>".
 *
 * Like for like with the relay: the values are real relay messages, read
 * from SAMPLES (one JSON value per line, as kcat prints them) and sent in
 * turn, so snappy compresses the same bytes; each message carries the four
 * headers the relay sends (content-type, event-id, event-type,
 * correlation-id) with values of the same length; keys are task-id-like
 * uuids.  What the relay does on top (read PostgreSQL, build the JSON,
 * track and delete rows) is what the ratio measures.
 *
 * usage: plain_producer [-r ROWS_PER_S -s SECONDS [-b BURST]] [-X prop=value]...
 *			BROKERS TOPIC COUNT SAMPLES [TOPIC COUNT SAMPLES]...
 * With -r, paced mode instead (see paced()): COUNT is ignored; -b releases
 * the rows BURST at a time, as a relay pass hands a page of rows over.
 * -X sets a librdkafka property after the defaults (bench/relay passes the
 * same -X to the relay and to this baseline).
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static long acked;
static long failed;
static double *latencies;		/* paced mode: produce->ack of each message */
static long burst = 1;			/* paced mode: rows released together (-b) */
static long nlatencies;

static double now_s(void);

/* delivery report: runs on this thread from rd_kafka_poll */
static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void) rk;
	(void) opaque;
	if (m->err)
		failed++;
	else
		acked++;
	if (latencies != NULL && m->_private != NULL)
		latencies[nlatencies++] = now_s() - *(double *) m->_private;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* one TOPIC COUNT SAMPLES triple, its samples loaded */
typedef struct topic_spec
{
	const char *name;
	long		count;
	char	  **lines;
	size_t	   *lens;
	long		nlines;
} topic_spec;

static bool
load_samples(const char *path, topic_spec *t)
{
	FILE	   *f = fopen(path, "r");
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;

	if (f == NULL)
	{
		perror(path);
		return false;
	}
	while ((len = getline(&line, &cap, f)) > 0)
	{
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		t->lines = realloc(t->lines, sizeof(char *) * (t->nlines + 1));
		t->lens = realloc(t->lens, sizeof(size_t) * (t->nlines + 1));
		t->lines[t->nlines] = strdup(line);
		t->lens[t->nlines++] = (size_t) len;
	}
	fclose(f);
	free(line);
	if (t->nlines == 0)
	{
		fprintf(stderr, "%s: no samples\n", path);
		return false;
	}
	return true;
}

/* message i of t, with the relay's four headers; opaque for the report */
static rd_kafka_resp_err_t
send_message(rd_kafka_t *rk, const topic_spec *t, long i, void *opaque)
{
	char		key[64];
	char		id[64];
	long		k = i % t->nlines;

	snprintf(key, sizeof(key), "%08lx-0000-4000-8000-%012lx", i * 2654435761UL, i);
	snprintf(id, sizeof(id), "%08lx-1111-4000-8000-%012lx", i * 40503UL, i);
	return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(t->name),
							 RD_KAFKA_V_KEY(key, strlen(key)),
							 RD_KAFKA_V_VALUE(t->lines[k], t->lens[k]),
							 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
							 RD_KAFKA_V_OPAQUE(opaque),
							 RD_KAFKA_V_HEADER("content-type", "application/cloudevents+json", -1),
							 RD_KAFKA_V_HEADER("event-id", id, -1),
							 RD_KAFKA_V_HEADER("event-type", "task.created", -1),
							 RD_KAFKA_V_HEADER("correlation-id", key, -1),
							 RD_KAFKA_V_END);
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/*
 * Paced mode (-r ROWS_PER_S -s SECONDS): a "row" is one message to each
 * TOPIC, sent on a fixed schedule (row i at i / rate), with rd_kafka_poll()
 * between, after one warm-up message per topic; prints produce->ack
 * p50/p99/max over every message.  The floor
 * of the relay's ack stage: the same messages at the same rate, with no
 * PostgreSQL in front.
 */
static int
paced(rd_kafka_t *rk, topic_spec *topics, int ntopics, double rate, double seconds)
{
	long		rows = (long) (rate * seconds);
	long		n = rows * ntopics;
	double	   *sent_at = calloc(n, sizeof(double));
	double		t0 = now_s();
	long		next = 0;

	/* warm up: connections and metadata, as a running relay has them */
	for (int t = 0; t < ntopics; t++)
		send_message(rk, &topics[t], 0, NULL);
	rd_kafka_flush(rk, 10000);
	acked = failed = 0;
	t0 = now_s();
	latencies = calloc(n, sizeof(double));
	if (sent_at == NULL || latencies == NULL)
		return 1;
	while (next < rows)
	{
		double		now = now_s();

		/* with -b B, rows are released B at a time (a relay pass of B rows) */
		while (next < rows && t0 + (burst > 1 ? (next / burst) * burst : next) / rate <= now)
		{
			for (int t = 0; t < ntopics; t++)
			{
				long		m = next * ntopics + t;

				sent_at[m] = now_s();
				while (send_message(rk, &topics[t], next, &sent_at[m]) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
					rd_kafka_poll(rk, 1);
			}
			next++;
		}
		rd_kafka_poll(rk, 1);
	}
	while (acked + failed < n)
		rd_kafka_poll(rk, 50);
	qsort(latencies, nlatencies, sizeof(double), cmp_double);
	{
		long		over250 = 0,
					over500 = 0;

		for (long i = 0; i < nlatencies; i++)
		{
			over250 += latencies[i] > 0.25;
			over500 += latencies[i] > 0.5;
		}
		printf("paced rows/s=%.0f messages=%ld failed=%ld produce->ack p50=%.4f p99=%.4f max=%.4f"
			   " over250ms=%.2f%% over500ms=%.2f%%\n",
			   rows / (now_s() - t0), acked, failed,
			   nlatencies ? latencies[nlatencies / 2] : 0,
			   nlatencies ? latencies[(long) (nlatencies * 0.99)] : 0,
			   nlatencies ? latencies[nlatencies - 1] : 0,
			   nlatencies ? 100.0 * over250 / nlatencies : 0,
			   nlatencies ? 100.0 * over500 / nlatencies : 0);
	}
	return failed ? 1 : 0;
}

int
main(int argc, char **argv)
{
	char		err[512];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	double		t0,
				t1;
	long		total = 0;
	double		rate = 0,
				seconds = 0;
	int			ntopics;
	topic_spec *topics;
	const char *props[][2] = {
		{"enable.idempotence", "true"}, {"acks", "all"},
		{"compression.codec", "snappy"}, {"linger.ms", "5"},
		{"batch.size", "16384"}, {"message.timeout.ms", "0"},
		{"queue.buffering.max.messages", "100000"}
	};

	conf = rd_kafka_conf_new();
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err));
	while (argc > 2 && (strcmp(argv[1], "-r") == 0 || strcmp(argv[1], "-s") == 0 ||
						strcmp(argv[1], "-b") == 0))
	{
		if (argv[1][1] == 'b')
			burst = atol(argv[2]);
		else
			*(argv[1][1] == 'r' ? &rate : &seconds) = atof(argv[2]);
		argv += 2;
		argc -= 2;
	}
	while (argc > 2 && strcmp(argv[1], "-X") == 0)
	{
		char	   *eq = strchr(argv[2], '=');

		if (eq == NULL)
		{
			fprintf(stderr, "-X %s: expected prop=value\n", argv[2]);
			return 2;
		}
		*eq = '\0';
		if (rd_kafka_conf_set(conf, argv[2], eq + 1, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		{
			fprintf(stderr, "%s\n", err);
			return 2;
		}
		argv += 2;
		argc -= 2;
	}
	if (argc < 5 || (argc - 2) % 3 != 0)
	{
		fprintf(stderr, "usage: plain_producer [-r ROWS_PER_S -s SECONDS [-b BURST]] [-X prop=value]... BROKERS TOPIC COUNT SAMPLES [TOPIC COUNT SAMPLES]...\n");
		return 2;
	}
	rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof(err));
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (rk == NULL)
	{
		fprintf(stderr, "%s\n", err);
		return 1;
	}

	ntopics = (argc - 2) / 3;
	topics = calloc(ntopics, sizeof(topic_spec));
	for (int t = 0; t < ntopics; t++)
	{
		topics[t].name = argv[2 + 3 * t];
		topics[t].count = atol(argv[3 + 3 * t]);
		if (!load_samples(argv[4 + 3 * t], &topics[t]))
			return 2;
	}

	if (rate > 0)
		return paced(rk, topics, ntopics, rate, seconds);

	t0 = now_s();
	for (int t = 0; t < ntopics; t++)
	{
		for (long i = 0; i < topics[t].count; i++)
		{
			while (send_message(rk, &topics[t], i, NULL) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
				rd_kafka_poll(rk, 10);
			rd_kafka_poll(rk, 0);
		}
		total += topics[t].count;
	}
	while (acked + failed < total)
		rd_kafka_poll(rk, 50);
	t1 = now_s();
	printf("messages=%ld failed=%ld seconds=%.3f rate=%.0f\n", acked, failed, t1 - t0,
		   acked / (t1 - t0));
	rd_kafka_destroy(rk);
	return failed ? 1 : 0;
}
