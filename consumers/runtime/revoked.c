/*-------------------------------------------------------------------------
 *
 * revoked.c
 *	  partitions revoked while messages of them are in hand
 *
 * The rebalance callback (kafka.c) runs inside rd_kafka_consumer_poll() on
 * the worker's thread, i.e. between two messages of a batch or while the
 * worker waits.  A partition it revokes is listed in w->revoked; the
 * batch (batch.c) and the worker loop (worker.c) then drop that
 * partition's messages from the batch in hand and the stash without
 * storing their offsets, so the new owner handles them (at least once).
 * The list is emptied after each batch (worker.c), and a partition given
 * back is forgotten at once (tkc_forget_revoked).
 *
 * Used by kafka.c, batch.c and worker.c; it calls none of them.
 *
 * IDENTIFICATION
 *	  consumers/runtime/revoked.c
 *
 *-------------------------------------------------------------------------
 */
#include "runtime.h"

bool
tkc_is_revoked(tkc_worker *w, const char *topic, int32_t partition)
{
	return rd_kafka_topic_partition_list_find(w->revoked, topic, partition) != NULL;
}

void
tkc_drop_revoked(tkc_worker *w, tkc_item *b, int n)
{
	int			kept = 0;

	if (w->revoked->cnt == 0)
		return;
	for (int i = 0; i < n; i++)
		if (b[i].state == ITEM_PENDING &&
			tkc_is_revoked(w, rd_kafka_topic_name(b[i].m->rkt), b[i].m->partition))
			b[i].state = ITEM_ABANDONED;
	for (int i = 0; i < w->nstash; i++)
	{
		rd_kafka_message_t *m = w->stash[i];

		if (tkc_is_revoked(w, rd_kafka_topic_name(m->rkt), m->partition))
			rd_kafka_message_destroy(m);
		else
			w->stash[kept++] = m;
	}
	w->nstash = kept;
}

/*
 * Partitions assigned again after a revocation (a group session that timed
 * out while every broker was down revokes everything, then gives the same
 * partitions back): what is in hand of them was polled before, under the
 * old assignment, and is dropped now; the revocation is then forgotten, so
 * the messages polled under the new assignment are handled.  Without this,
 * a revocation that came while no batch was in hand stayed listed until
 * the next batch, which then dropped the new assignment's messages without
 * handling them (found by tests/soak; tests/503).
 */
void
tkc_forget_revoked(tkc_worker *w, const rd_kafka_topic_partition_list_t *parts)
{
	bool		any = false;

	for (int i = 0; i < parts->cnt && !any; i++)
		any = tkc_is_revoked(w, parts->elems[i].topic, parts->elems[i].partition);
	if (!any)
		return;
	tkc_drop_revoked(w, w->hand, w->nhand);
	for (int i = 0; i < parts->cnt; i++)
		rd_kafka_topic_partition_list_del(w->revoked, parts->elems[i].topic,
										  parts->elems[i].partition);
}
