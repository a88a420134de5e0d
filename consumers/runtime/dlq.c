/*-------------------------------------------------------------------------
 *
 * dlq.c
 *	  send a consumed message that cannot be handled to the dead-letter topic
 *
 * The envelope is common/messages/dead_letter.c's (origin kind and headers,
 * the original value and Kafka headers kept for replay).  The send waits
 * for Kafka's acknowledgement: the
 * caller stores the message's offset only when this returned true, so a
 * dead letter is never lost between the two topics.  When Kafka does not
 * take it, the caller treats Kafka as a dependency that is down (pause,
 * retry), never as a reason to skip the message.
 *
 * IDENTIFICATION
 *	  consumers/runtime/dlq.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>

#include "messages/dead_letter.h"
#include "log.h"
#include "runtime.h"

/*
 * The message's Kafka headers, in order, pointing into m (valid while m
 * is); *out is malloc'd (NULL when there are none).  false: out of memory.
 */
static bool
origin_headers(const rd_kafka_message_t *m, tk_dl_header **out, int *n)
{
	rd_kafka_headers_t *hdrs;
	size_t		count;

	*out = NULL;
	*n = 0;
	/* the const cast: librdkafka parses the headers into m on first use */
	if (rd_kafka_message_headers((rd_kafka_message_t *) m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
		(count = rd_kafka_header_cnt(hdrs)) == 0)
		return true;
	if ((*out = calloc(count, sizeof(tk_dl_header))) == NULL)
		return false;
	for (size_t i = 0; i < count; i++)
	{
		tk_dl_header *h = &(*out)[*n];

		if (rd_kafka_header_get_all(hdrs, i, &h->name, &h->value, &h->value_len) !=
			RD_KAFKA_RESP_ERR_NO_ERROR)
			break;
		(*n)++;
	}
	return true;
}

bool
tkc_dead_letter(tkc_worker *w, const rd_kafka_message_t *m, const tkc_event *ev,
				const char *error_kind)
{
	tkc_runtime *rt = w->rt;
	tk_dl_origin o;
	tk_dl_message dl;
	tk_dl_header *headers = NULL;
	char		source[128];
	char		err[512];
	bool		ok;

	if (w->producer == NULL)
	{
		w->producer = tkc_producer_create(rt, err, sizeof(err));
		if (w->producer == NULL)
		{
			tk_log(TK_LOG_ERROR, "could not create the dead-letter producer: %s", err);
			return false;
		}
	}
	snprintf(source, sizeof(source), "/todo_kafka/consumers/%s", rt->svc->name);
	o.topic = ev->topic;
	o.partition = ev->partition;
	o.offset = ev->offset;
	o.key = ev->key;
	o.event_id = ev->id;
	o.event_type = ev->type;
	o.payload = m->payload;
	o.payload_len = m->len;
	if (!origin_headers(m, &headers, &o.nheaders))
	{
		tk_log(TK_LOG_ERROR, "out of memory building a dead letter");
		return false;
	}
	o.headers = headers;
	o.error = error_kind;
	o.reason = ev->error[0] ? ev->error : "unknown";
	o.attempts = ev->attempt;
	o.consumer_group = rt->group;
	o.source = source;
	ok = tk_dead_letter_build(&o, &dl);
	free(headers);
	if (!ok)
	{
		tk_log(TK_LOG_ERROR, "out of memory building a dead letter");
		return false;
	}
	ok = tkc_produce_sync(w->producer, rt->dead_letter_topic, ev->key, dl.value,
						  dl.value_len, dl.headers, dl.nheaders, err, sizeof(err));
	tk_dead_letter_free(&dl);
	if (!ok)
	{
		tk_log(TK_LOG_WARNING, "could not dead-letter %s[%d]@%lld: %s", ev->topic,
			   (int) ev->partition, (long long) ev->offset, err);
		return false;
	}
	tkc_metrics_dead_lettered(ev->topic, error_kind);
	tkc_alert_dead_letter(rt, m, ev, error_kind);
	return true;
}
