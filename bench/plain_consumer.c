/*
 * bench/plain_consumer.c
 *	  baseline for bench/project: a plain librdkafka consumer
 *
 * Reads TOPIC from the beginning of every partition to the high watermarks
 * seen at start (assigned, no group, nothing committed), touching each
 * message's payload (a byte sum, so nothing is optimized away), and prints
 * "messages=<n> bytes=<b> seconds=<s> rate=<msgs/s>".  It does no JSON
 * parsing and no database work: what todo-kafka-project does on top of
 * this (parse the CloudEvent, build the batch, apply it in PostgreSQL) is
 * what the ratio measures.
 *
 * usage: plain_consumer [-X prop=value]... BROKERS TOPIC
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

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
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	const struct rd_kafka_metadata *md;
	rd_kafka_topic_partition_list_t *parts;
	int64_t    *high;
	int			nparts,
				left = 0,
				argi = 1;
	long		n = 0;
	long long	bytes = 0;
	unsigned	sum = 0;
	double		t0;

	rd_kafka_conf_set(conf, "group.id", "plain-consumer-bench", NULL, 0);
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
	while (argi + 1 < argc && strcmp(argv[argi], "-X") == 0)
	{
		char	   *eq = strchr(argv[argi + 1], '=');

		if (eq == NULL)
			return 2;
		*eq = '\0';
		if (rd_kafka_conf_set(conf, argv[argi + 1], eq + 1, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		{
			fprintf(stderr, "%s\n", err);
			return 2;
		}
		argi += 2;
	}
	if (argc - argi != 2)
	{
		fprintf(stderr, "usage: plain_consumer [-X prop=value]... BROKERS TOPIC\n");
		return 2;
	}
	rd_kafka_conf_set(conf, "bootstrap.servers", argv[argi], NULL, 0);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (rk == NULL)
	{
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (rd_kafka_metadata(rk, 0, rd_kafka_topic_new(rk, argv[argi + 1], NULL), &md, 10000) ||
		md->topic_cnt != 1 || md->topics[0].partition_cnt <= 0)
	{
		fprintf(stderr, "no metadata for %s\n", argv[argi + 1]);
		return 1;
	}
	nparts = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	high = calloc(nparts, sizeof(int64_t));
	parts = rd_kafka_topic_partition_list_new(nparts);
	for (int p = 0; p < nparts; p++)
	{
		int64_t		low;

		if (rd_kafka_query_watermark_offsets(rk, argv[argi + 1], p, &low, &high[p], 10000))
			return 1;
		if (high[p] > low)
		{
			rd_kafka_topic_partition_list_add(parts, argv[argi + 1], p)->offset = RD_KAFKA_OFFSET_BEGINNING;
			left++;
		}
	}
	t0 = now_s();
	rd_kafka_assign(rk, parts);
	while (left > 0)
	{
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);

		if (m == NULL)
			continue;
		if (!m->err)
		{
			n++;
			bytes += m->len;
			for (size_t i = 0; i < m->len; i += 64)
				sum += ((unsigned char *) m->payload)[i];
			if (m->offset + 1 == high[m->partition])
				left--;
		}
		rd_kafka_message_destroy(m);
	}
	printf("messages=%ld bytes=%lld seconds=%.3f rate=%.0f\n", n, bytes, now_s() - t0,
		   n / (now_s() - t0));
	(void) sum;
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	free(high);
	return 0;
}
