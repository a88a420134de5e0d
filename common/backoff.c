/*-------------------------------------------------------------------------
 *
 * backoff.c
 *	  capped exponential backoff with jitter
 *
 * The n-th consecutive failure (n from 0) waits
 *	   min(max, base * 2^n) * (0.5 + jitter / 2),  jitter in [0, 1)
 * so the delay is never below half the nominal value (no hammering a
 * recovering server: pgbouncer's "if server bounces, don't retry too fast")
 * and never above the cap, and many daemons restarting together spread out.
 * tk_backoff_delay() is the pure formula (unit-tested); tk_backoff_next()
 * adds the attempt counter and a private xorshift generator.  Not
 * thread-safe: one tk_backoff per retry loop.
 *
 * IDENTIFICATION
 *	  common/backoff.c
 *
 *-------------------------------------------------------------------------
 */
#include "backoff.h"

void
tk_backoff_init(tk_backoff *b, int base_ms, int max_ms, uint64_t seed)
{
	b->base_ms = base_ms > 0 ? base_ms : 1;
	b->max_ms = max_ms >= b->base_ms ? max_ms : b->base_ms;
	b->attempt = 0;
	b->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
}

void
tk_backoff_reset(tk_backoff *b)
{
	b->attempt = 0;
}

int
tk_backoff_delay(int attempt, int base_ms, int max_ms, double jitter)
{
	double		nominal = base_ms;

	for (int i = 0; i < attempt && nominal < max_ms; i++)
		nominal *= 2;
	if (nominal > max_ms)
		nominal = max_ms;
	if (jitter < 0)
		jitter = 0;
	if (jitter >= 1)
		jitter = 0.999999;
	return (int) (nominal * (0.5 + jitter / 2));
}

int
tk_backoff_next(tk_backoff *b)
{
	uint64_t	x = b->rng;
	int			delay;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	b->rng = x;
	delay = tk_backoff_delay(b->attempt, b->base_ms, b->max_ms,
							 (double) (x >> 11) / (double) (1ULL << 53));
	if (b->attempt < 62)
		b->attempt++;
	return delay;
}
