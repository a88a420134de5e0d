/*
 * bench/plain_producer.c
 *	  baseline for bench/relay: a plain librdkafka producer
 *
 * Sends COUNT messages of SIZE bytes to TOPIC with the relay's producer
 * settings (idempotent, acks=all, snappy, linger 5 ms, batch 16384), keys
 * spread like task ids, waits for every ack and prints
 * "messages=<n> seconds=<s> rate=<msgs/s>".
 *
 * usage: plain_producer BROKERS TOPIC COUNT SIZE [TOPIC2 COUNT2 SIZE2]
 */
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

	if (argc < 5 || (argc - 2) % 3 != 0)
	{
		fprintf(stderr, "usage: %s BROKERS TOPIC COUNT SIZE [TOPIC COUNT SIZE]...\n", argv[0]);
		return 2;
	}
	conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof(err));
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err));
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
		size_t		size = (size_t) atol(argv[a + 2]);
		char	   *buf = malloc(size + 1);

		memset(buf, 'x', size);
		for (long i = 0; i < count; i++)
		{
			char		key[40];

			snprintf(key, sizeof(key), "%08lx-0000-4000-8000-%012lx", i * 2654435761UL, i);
			memcpy(buf, key, size < 36 ? size : 36);
			while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
									 RD_KAFKA_V_KEY(key, strlen(key)),
									 RD_KAFKA_V_VALUE(buf, size),
									 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
									 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
				rd_kafka_poll(rk, 10);
			rd_kafka_poll(rk, 0);
		}
		total += count;
		free(buf);
	}
	while (acked + failed < total)
		rd_kafka_poll(rk, 50);
	t1 = now_s();
	printf("messages=%ld failed=%ld seconds=%.3f rate=%.0f\n", acked, failed, t1 - t0,
		   acked / (t1 - t0));
	rd_kafka_destroy(rk);
	return failed ? 1 : 0;
}
