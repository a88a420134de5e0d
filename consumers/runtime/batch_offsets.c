/*-------------------------------------------------------------------------
 *
 * batch_offsets.c
 *	  the pure decisions of a batch (batch.c): which offsets it stores,
 *	  which dead letters a sink keeping its own offsets is told of, when
 *	  one-by-one handling stops
 *
 * A batch's messages are in poll order, so within a partition in offset
 * order.  The rules, which keep every partition in order (an offset is
 * stored only after its message and every earlier message of its
 * partition were done: handled or dead-lettered):
 *	 - tkc_offsets_to_store: per partition, the offset after its last
 *	   message that is done with every earlier one done; a partition whose
 *	   first message is not done stores nothing;
 *	 - tkc_last_done_of_partition: message i is the one whose offset + 1
 *	   that would store (batch.c tells svc->dead_lettered of it when it
 *	   was dead-lettered);
 *	 - tkc_result_stops_round: handle() one by one stops at the first
 *	   event that did not finish (RETRY, DOWN); the rest wait a round.
 * No Kafka and no database here: common/test_unit-style TAP tests in
 * test_batch_offsets.c.
 *
 * IDENTIFICATION
 *	  consumers/runtime/batch_offsets.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

static bool
same_partition(const tkc_msg_pos *a, const tkc_msg_pos *b)
{
	return a->partition == b->partition && strcmp(a->topic, b->topic) == 0;
}

int
tkc_offsets_to_store(const tkc_msg_pos *pos, int n, tkc_msg_pos *out)
{
	bool	   *blocked = calloc(n > 0 ? n : 1, sizeof(bool));
	int			nparts = 0;
	int			nout = 0;

	if (blocked == NULL)
		return -1;
	/* out[] first holds every partition, in order of first appearance */
	for (int i = 0; i < n; i++)
	{
		int			p = 0;

		while (p < nparts && !same_partition(&out[p], &pos[i]))
			p++;
		if (p == nparts)
		{
			out[nparts] = pos[i];
			out[nparts++].offset = -1;
		}
		if (blocked[p])
			continue;
		if (pos[i].done)
			out[p].offset = pos[i].offset + 1;
		else
			blocked[p] = true;	/* nothing past it is stored */
	}
	free(blocked);
	for (int p = 0; p < nparts; p++)
		if (out[p].offset >= 0)
			out[nout++] = out[p];
	return nout;
}

bool
tkc_last_done_of_partition(const tkc_msg_pos *pos, int n, int i)
{
	for (int j = 0; j < n; j++)
	{
		if (j == i || !same_partition(&pos[j], &pos[i]))
			continue;
		if (j < i && !pos[j].done)
			return false;		/* blocked: nothing past pos[j] is stored */
		if (j > i && pos[j].done)
			return false;
	}
	return true;
}

bool
tkc_result_stops_round(tkc_result r)
{
	return r == TKC_RETRY || r == TKC_DOWN;
}
