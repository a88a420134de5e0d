/*-------------------------------------------------------------------------
 *
 * trace.c
 *	  the runtime's spans: one "process" span per message, and the API a
 *	  service uses for the spans of its side effects
 *
 * With otlp_endpoint set (common/otlp.c), each message a worker handles
 * gets a process span (kind CONSUMER, "<topic> process"), a child of the
 * message's traceparent (the relay's publish span, or the notifier's
 * fan-out); a message without one starts a new trace.  Its span id is
 * derived from the service and the event id, so a message a service
 * produces because of an event (the notifier's fan-out) is the same on a
 * redelivery (a retried or redelivered message reports its process span
 * again under the same id, one per attempt).  Handler services (notify): the span brackets handle(); the
 * service adds the spans of its side effects with tkc_span_start() and
 * tkc_span_finish() (email send, push send, inbox insert), and passes
 * tkc_traceparent() on to the messages it produces.  Sink services (audit,
 * project): one call writes the batch, so every event of it gets a
 * process span and a child "<service> write" span (kind CLIENT, the
 * database write), both as long as that call.
 *
 * tkc_event_trace_id() reads an event's trace id (for the rows and
 * headers that keep it) whether or not spans are exported.  All of it
 * runs on the worker's own thread (w->trace).
 *
 * IDENTIFICATION
 *	  consumers/runtime/trace.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <string.h>

#include "runtime.h"

static void
event_context(const tkc_event *ev, tk_trace_ctx *ctx)
{
	tk_trace_parse(tkc_json_string(ev->ce, "traceparent"), ctx);
}

bool
tkc_event_trace_id(const tkc_event *ev, char out[33])
{
	tk_trace_ctx ctx;

	event_context(ev, &ctx);
	if (ctx.valid)
		tk_trace_hex(ctx.trace_id, 16, out);
	else
		out[0] = '\0';
	return ctx.valid;
}

/* the id of ev's process span in this service: the same on every attempt */
static void
process_span_id(tkc_worker *w, const tkc_event *ev, uint8_t id[8])
{
	tk_trace_derive("todo_kafka.process", w->rt->svc->name, ev->id, id, 8);
}

static void
process_begin(tkc_worker *w, const tkc_event *ev, tk_span *s)
{
	tk_trace_ctx parent;
	uint8_t		id[8];
	char		part[16];

	event_context(ev, &parent);
	process_span_id(w, ev, id);
	tk_span_begin(s, "process", TK_SPAN_CONSUMER, &parent, id);
	snprintf(s->name, sizeof(s->name), "%s process", ev->topic ? ev->topic : "");
	snprintf(part, sizeof(part), "%d", (int) ev->partition);
	tk_span_attr(s, "messaging.system", "kafka");
	tk_span_attr(s, "messaging.destination.name", ev->topic);
	tk_span_attr(s, "messaging.kafka.partition", part);
	tk_span_attr(s, "messaging.consumer.group.name", w->rt->group);
	tk_span_attr(s, "cloudevents.event_id", ev->id);
	tk_span_attr(s, "cloudevents.event_type", ev->type);
}

static const char *
error_of(const tkc_event *ev, tkc_result r)
{
	if (r == TKC_OK)
		return NULL;
	return ev->error[0] ? ev->error : "not handled";
}

/* handler services: around handle() */
void
tkc_trace_begin(tkc_worker *w, const tkc_event *ev)
{
	w->tracing = tk_otlp_enabled();
	if (!w->tracing)
		return;
	process_begin(w, ev, &w->trace);
}

void
tkc_trace_end(tkc_worker *w, const tkc_event *ev, tkc_result r)
{
	if (!w->tracing)
		return;
	w->tracing = false;
	tk_span_end(&w->trace, error_of(ev, r));
}

/* sink services: after the call that wrote evs[0..n-1], started at start_ns */
void
tkc_trace_sink(tkc_worker *w, tkc_event **evs, int n, const tkc_result *res,
			   uint64_t start_ns)
{
	char		name[48];

	if (!tk_otlp_enabled())
		return;
	snprintf(name, sizeof(name), "%s write", w->rt->svc->name);
	for (int i = 0; i < n; i++)
	{
		tk_span		p,
					c;
		tk_trace_ctx ctx;

		if (res[i] == TKC_NOT_TRIED)
			continue;
		process_begin(w, evs[i], &p);
		p.start_ns = start_ns;
		tk_span_context(&p, &ctx);
		tk_span_begin(&c, name, TK_SPAN_CLIENT, &ctx, NULL);
		c.start_ns = start_ns;
		tk_span_attr(&c, "db.system", "postgresql");
		tk_span_attr(&c, "todo_kafka.sink", w->rt->svc->sink_unit);
		tk_span_attr(&c, "cloudevents.event_id", evs[i]->id);
		tk_span_end(&c, error_of(evs[i], res[i]));
		tk_span_end(&p, error_of(evs[i], res[i]));
	}
}

/* ---- for services (consumer.h) ---- */

const char *
tkc_traceparent(tkc_worker *w, const tkc_event *ev)
{
	tk_trace_ctx ctx;

	if (w->tracing)
		tk_span_context(&w->trace, &ctx);
	else if (tk_otlp_enabled() && w->rt->svc->sink != NULL &&
			 (event_context(ev, &ctx), ctx.valid))
	{
		/*
		 * a sink: ev's process span is reported after the call
		 * (tkc_trace_sink), but it is ev's trace and a derived span id, so
		 * it is known now (an event without a traceparent starts a random
		 * trace when that span is made: its messages keep the event's none)
		 */
		process_span_id(w, ev, ctx.span_id);
		ctx.flags = 1;
	}
	else
		return tkc_json_string(ev->ce, "traceparent");
	tk_trace_format(&ctx, w->traceparent);
	return w->traceparent;
}

void
tkc_span_start(tkc_worker *w, tk_span *s, const char *name)
{
	tk_trace_ctx ctx;

	s->kind = 0;				/* off: tk_span_attr and finish do nothing */
	s->nattrs = 0;
	if (!w->tracing)
		return;
	tk_span_context(&w->trace, &ctx);
	tk_span_begin(s, name, TK_SPAN_CLIENT, &ctx, NULL);
}

void
tkc_span_finish(tk_span *s, const char *error)
{
	if (s->kind != 0)
		tk_span_end(s, error);
}
