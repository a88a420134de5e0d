/*
 * bench/plain_consumer.c
 *	  baseline for the consumer services: a plain librdkafka consumer
 *
 * Joins a fresh group, reads TOPIC from the beginning until COUNT messages
 * arrived, parsing each value with cJSON when -j is given (what every
 * service does before its handler runs), and prints
 * "messages=<n> seconds=<s> rate=<msgs/s>", timed from the first message
 * to the last so the group join is not counted (the services are timed the
 * same way, from their first to their last row).
 *
 * usage: plain_consumer [-j] [-X prop=value]... BROKERS TOPIC COUNT
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *topics;
	rd_kafka_t *rk;
	char		err[512];
	char		group[64];
	int			parse = 0;
	int			c;
	long		count,
				n = 0;
	double		t0 = 0,
				t1 = 0;

	snprintf(group, sizeof(group), "plain-%d", (int) getpid());
	rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
	rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof(err));
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
	while ((c = getopt(argc, argv, "jX:")) != -1)
	{
		char	   *eq;

		if (c == 'j')
			parse = 1;
		else if (c == 'X' && (eq = strchr(optarg, '=')) != NULL)
		{
			*eq = '\0';
			if (rd_kafka_conf_set(conf, optarg, eq + 1, err, sizeof(err)) != RD_KAFKA_CONF_OK)
			{
				fprintf(stderr, "%s\n", err);
				return 2;
			}
		}
		else
		{
			fprintf(stderr, "usage: plain_consumer [-j] [-X prop=value]... BROKERS TOPIC COUNT\n");
			return 2;
		}
	}
	if (argc - optind != 3)
	{
		fprintf(stderr, "usage: plain_consumer [-j] [-X prop=value]... BROKERS TOPIC COUNT\n");
		return 2;
	}
	rd_kafka_conf_set(conf, "bootstrap.servers", argv[optind], err, sizeof(err));
	count = atol(argv[optind + 2]);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (rk == NULL)
	{
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	rd_kafka_poll_set_consumer(rk);
	topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, argv[optind + 1], RD_KAFKA_PARTITION_UA);
	rd_kafka_subscribe(rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);

	while (n < count)
	{
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);

		if (m == NULL)
			continue;
		if (!m->err)
		{
			if (n++ == 0)
				t0 = now();
			if (parse)
				cJSON_Delete(cJSON_ParseWithLength(m->payload, m->len));
			t1 = now();
		}
		rd_kafka_message_destroy(m);
	}
	printf("messages=%ld seconds=%.3f rate=%.0f\n", n, t1 - t0, n / (t1 - t0));
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return 0;
}
