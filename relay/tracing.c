/*-------------------------------------------------------------------------
 *
 * tracing.c
 *	  the relay's spans: one "publish" span per outbox row
 *
 * Only with otlp_endpoint set (common/otlp.c); otherwise messages carry
 * the application's traceparent as they always did, or none.
 *
 * With tracing on, every row gets a trace context before its messages are
 * built (relay_trace_row), and the messages carry it as their traceparent,
 * so each consumer's spans are children of the relay's publish span:
 *	 trace id	the application's (todo_kafka.traceparent at capture), or,
 *				when it set none, a new trace per transaction: derived from
 *				the cluster's system identifier and the row's xid8 (every
 *				row of one transaction shares it; no two clusters or
 *				transactions do);
 *	 span id	the publish span's, derived from the event id;
 *	 flags		the application's, else 01 (sampled).
 * Everything is a function of the row, so a resend (a rescan, a restart,
 * another relay) builds byte-identical messages: same ids, same
 * traceparent; the capture path in PostgreSQL pays nothing.
 * The publish span (kind PRODUCER, parent = the application's span when
 * given, else a root) starts when the relay read the row and ends when
 * every message of it is settled (relay_trace_published, from inflight.c):
 * acknowledged, or dead-lettered (status ERROR with the reason).  A row
 * that failed transiently is sent again later and reports its span then.
 *
 * IDENTIFICATION
 *	  relay/tracing.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <string.h>

#include "otlp.h"
#include "pg.h"
#include "relay.h"

static char cluster_id[32];

/* after each connect: the cluster's identity, once */
void
relay_trace_connected(PGconn *conn)
{
	if (!tk_otlp_enabled() || cluster_id[0])
		return;
	if (!tk_pg_exec_value(conn, "SELECT system_identifier FROM pg_catalog.pg_control_system()",
						  cluster_id, sizeof(cluster_id)))
		tk_log(TK_LOG_WARNING, "tracing: cannot read the cluster's system identifier; "
			   "new traces are derived from transaction ids alone");
}

/*
 * The row as the relay sends it when tracing: *copy with its traceparent
 * replaced (tp holds it); *parent the application's context (valid or not).
 * Returns row itself when tracing is off.
 */
const tk_outbox_row *
relay_trace_row(const tk_outbox_row *row, tk_outbox_row *copy,
				char tp[TK_TRACEPARENT_LEN + 1], tk_trace_ctx *parent)
{
	tk_trace_ctx ctx;

	memset(parent, 0, sizeof(*parent));
	if (!tk_otlp_enabled())
		return row;
	if (tk_trace_parse(row->traceparent, parent))
		ctx = *parent;
	else
	{
		tk_trace_derive("todo_kafka.transaction", cluster_id, row->xid, ctx.trace_id, 16);
		ctx.flags = 1;
	}
	tk_trace_derive("todo_kafka.publish", row->event_id, NULL, ctx.span_id, 8);
	ctx.valid = true;
	tk_trace_format(&ctx, tp);
	*copy = *row;
	copy->traceparent = tp;
	return copy;
}

/* a settled row: its publish span */
void
relay_trace_published(const tk_outbox_row *meta, const tk_trace_ctx *parent,
					  int64_t read_us, int nmsgs, const char *dead_reason)
{
	tk_trace_ctx ctx;
	tk_span		s;
	char		n[16];

	if (!tk_otlp_enabled() || !tk_trace_parse(meta->traceparent, &ctx))
		return;
	tk_span_begin(&s, "outbox publish", TK_SPAN_PRODUCER, parent, ctx.span_id);
	memcpy(s.trace_id, ctx.trace_id, 16);	/* a new trace has no parent */
	s.start_ns = (uint64_t) read_us * 1000;
	tk_span_attr(&s, "messaging.system", "kafka");
	tk_span_attr(&s, "messaging.operation", "publish");
	tk_span_attr(&s, "cloudevents.event_id", meta->event_id);
	tk_span_attr(&s, "todo_kafka.outbox_id", meta->id);
	tk_span_attr(&s, "todo_kafka.stream", meta->stream);
	snprintf(n, sizeof(n), "%d", nmsgs);
	tk_span_attr(&s, "messaging.batch.message_count", n);
	tk_span_end(&s, dead_reason);
}
