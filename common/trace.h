/*-------------------------------------------------------------------------
 *
 * trace.h
 *	  W3C trace context: parse and format traceparent, make span ids
 *
 * A tk_trace_ctx is the (trace id, span id, flags) of a W3C traceparent
 * "00-<32 hex>-<16 hex>-<2 hex>".  Ids are made two ways:
 *	 - derived (tk_trace_derive): a hash of names, so the same input gives
 *	   the same id (the relay's publish span of an event, a trace per
 *	   transaction; a resend of an event carries the same traceparent);
 *	 - random (tk_trace_random): a span that happens once (a send).
 * The hash is FNV-1a 64 mixed by splitmix64, per 8 bytes of output: ids
 * need to be unique and stable, not secret.
 *
 * IDENTIFICATION
 *	  common/trace.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_TRACE_H
#define TK_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#define TK_TRACEPARENT_LEN 55	/* 00-<32>-<16>-<2> */

typedef struct tk_trace_ctx
{
	uint8_t		trace_id[16];
	uint8_t		span_id[8];
	uint8_t		flags;			/* 1: sampled */
	bool		valid;
} tk_trace_ctx;

/* false (ctx->valid false) for NULL, "" or anything not version 00 */
extern bool tk_trace_parse(const char *traceparent, tk_trace_ctx *ctx);
extern void tk_trace_format(const tk_trace_ctx *ctx, char out[TK_TRACEPARENT_LEN + 1]);
extern void tk_trace_hex(const uint8_t *bytes, int n, char *out);	/* 2n + 1 */
extern void tk_trace_derive(const char *a, const char *b, const char *c,
							uint8_t *out, int n);
extern void tk_trace_random(uint8_t *out, int n);

#endif							/* TK_TRACE_H */
