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
 * usage: plain_producer [-X prop=value]... BROKERS TOPIC COUNT SAMPLES
 *			[TOPIC COUNT SAMPLES]...
 * -X sets a librdkafka property after the defaults (bench/relay passes the
 * same -X to the relay and to this baseline).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static long acked;
static long failed;

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
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
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
	const char *props[][2] = {
		{"enable.idempotence", "true"}, {"acks", "all"},
		{"compression.codec", "snappy"}, {"linger.ms", "5"},
		{"batch.size", "16384"}, {"message.timeout.ms", "0"},
		{"queue.buffering.max.messages", "100000"}
	};

	conf = rd_kafka_conf_new();
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err));
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
		fprintf(stderr, "usage: plain_producer [-X prop=value]... BROKERS TOPIC COUNT SAMPLES [TOPIC COUNT SAMPLES]...\n");
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

	t0 = now_s();
	for (int a = 2; a + 2 < argc; a += 3)
	{
		const char *topic = argv[a];
		long		count = atol(argv[a + 1]);
		char	  **lines = NULL;
		size_t	   *lens = NULL;
		long		nlines = 0;
		FILE	   *f = fopen(argv[a + 2], "r");
		char	   *line = NULL;
		size_t		cap = 0;
		ssize_t		len;

		if (f == NULL)
		{
			perror(argv[a + 2]);
			return 2;
		}
		while ((len = getline(&line, &cap, f)) > 0)
		{
			if (line[len - 1] == '\n')
				line[--len] = '\0';
			if (len == 0)
				continue;
			lines = realloc(lines, sizeof(char *) * (nlines + 1));
			lens = realloc(lens, sizeof(size_t) * (nlines + 1));
			lines[nlines] = strdup(line);
			lens[nlines++] = (size_t) len;
		}
		fclose(f);
		free(line);
		if (nlines == 0)
		{
			fprintf(stderr, "%s: no samples\n", argv[a + 2]);
			return 2;
		}
		for (long i = 0; i < count; i++)
		{
			char		key[64];
			char		id[64];
			long		k = i % nlines;

			snprintf(key, sizeof(key), "%08lx-0000-4000-8000-%012lx", i * 2654435761UL, i);
			snprintf(id, sizeof(id), "%08lx-1111-4000-8000-%012lx", i * 40503UL, i);
			while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
									 RD_KAFKA_V_KEY(key, strlen(key)),
									 RD_KAFKA_V_VALUE(lines[k], lens[k]),
									 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
									 RD_KAFKA_V_HEADER("content-type", "application/cloudevents+json", -1),
									 RD_KAFKA_V_HEADER("event-id", id, -1),
									 RD_KAFKA_V_HEADER("event-type", "task.created", -1),
									 RD_KAFKA_V_HEADER("correlation-id", key, -1),
									 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
				rd_kafka_poll(rk, 10);
			rd_kafka_poll(rk, 0);
		}
		total += count;
		for (long i = 0; i < nlines; i++)
			free(lines[i]);
		free(lines);
		free(lens);
	}
	while (acked + failed < total)
		rd_kafka_poll(rk, 50);
	t1 = now_s();
	printf("messages=%ld failed=%ld seconds=%.3f rate=%.0f\n", acked, failed, t1 - t0,
		   acked / (t1 - t0));
	rd_kafka_destroy(rk);
	return failed ? 1 : 0;
}
