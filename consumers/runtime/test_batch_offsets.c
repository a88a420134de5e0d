/*-------------------------------------------------------------------------
 *
 * test_batch_offsets.c
 *	  unit tests of a batch's ordering decisions (batch_offsets.c), no
 *	  Kafka or database
 *
 * Batches are written as strings, one letter per message in poll order:
 * the partition is a (t0 p0), b (t0 p1) or c (t1 p0: another topic, the
 * same partition number), upper case when the message is done (handled or
 * dead-lettered), lower case when not; offsets count up per partition
 * from 10.  Checks which offsets the batch stores, which message is the
 * last done of its partition, and which handler results stop a round.
 *
 * IDENTIFICATION
 *	  consumers/runtime/test_batch_offsets.c
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "runtime.h"
#include "test_tap.h"

static tkc_msg_pos batch[32];

static int
make_batch(const char *spec)
{
	int64_t		next[3] = {10, 10, 10};
	int			n = 0;

	for (const char *c = spec; *c; c++, n++)
	{
		int			k = tolower((unsigned char) *c) - 'a';

		batch[n].topic = k == 2 ? "t1" : "t0";
		batch[n].partition = k == 1 ? 1 : 0;
		batch[n].offset = next[k]++;
		batch[n].done = isupper((unsigned char) *c);
	}
	return n;
}

/* the offsets stored for spec, as "topic/partition=offset ..." */
static const char *
stored(const char *spec)
{
	static char out[256];
	tkc_msg_pos offs[32];
	int			n = make_batch(spec);
	int			k = tkc_offsets_to_store(batch, n, offs);

	out[0] = '\0';
	for (int i = 0; i < k; i++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s/%d=%lld", i ? " " : "",
				 offs[i].topic, (int) offs[i].partition, (long long) offs[i].offset);
	return k < 0 ? "error" : out;
}

/* the indexes i of spec for which tkc_last_done_of_partition is true */
static const char *
last_done(const char *spec)
{
	static char out[64];
	int			n = make_batch(spec);

	out[0] = '\0';
	for (int i = 0; i < n; i++)
		if (batch[i].done && tkc_last_done_of_partition(batch, n, i))
			snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%d", out[0] ? " " : "", i);
	return out;
}

static void
is(const char *got, const char *want, const char *name)
{
	ok(strcmp(got, want) == 0, name);
	if (strcmp(got, want) != 0)
		printf("#   got \"%s\", want \"%s\"\n", got, want);
}

int
main(void)
{
	is(stored(""), "", "an empty batch stores nothing");
	is(stored("AAA"), "t0/0=13", "all done: the offset after the last");
	is(stored("AaA"), "t0/0=11", "stops at the first not done: nothing past it, done or not");
	is(stored("aAA"), "", "first not done: the partition stores nothing");
	is(stored("ABAB"), "t0/0=12 t0/1=12", "two partitions, interleaved, each its own offset");
	is(stored("AbAB"), "t0/0=12", "a partition blocked at its first does not hold back another");
	is(stored("ACac"), "t0/0=11 t1/0=11", "the same partition number of two topics: two partitions");
	is(stored("CAcA"), "t1/0=11 t0/0=12", "partitions in order of first appearance");

	is(last_done("AAA"), "2", "last done: the last of an all-done partition");
	is(last_done("AAa"), "1", "last done: the one before a message not done");
	is(last_done("aAA"), "", "last done: none when the first is not done");
	is(last_done("ABab"), "0 1", "last done: one per partition");
	is(last_done("ACAc"), "1 2", "last done: per topic, not per partition number");

	ok(tkc_result_stops_round(TKC_RETRY), "a retry stops the round (later events keep their order)");
	ok(tkc_result_stops_round(TKC_DOWN), "an outage stops the round");
	ok(!tkc_result_stops_round(TKC_OK), "done does not stop the round");
	ok(!tkc_result_stops_round(TKC_DEAD), "dead-lettered does not stop the round");

	printf("1..%d\n", ntests);
	return nfailed != 0;
}
