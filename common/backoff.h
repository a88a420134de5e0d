/*-------------------------------------------------------------------------
 *
 * backoff.h
 *	  capped exponential backoff with jitter
 *
 * IDENTIFICATION
 *	  common/backoff.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_BACKOFF_H
#define TK_BACKOFF_H

#include <stdint.h>

typedef struct tk_backoff
{
	int			base_ms;		/* first delay */
	int			max_ms;			/* cap */
	int			attempt;		/* failures since the last success */
	uint64_t	rng;			/* xorshift state for the jitter */
} tk_backoff;

extern void tk_backoff_init(tk_backoff *b, int base_ms, int max_ms, uint64_t seed);
extern int	tk_backoff_next(tk_backoff *b);
extern void tk_backoff_reset(tk_backoff *b);
extern int	tk_backoff_delay(int attempt, int base_ms, int max_ms, double jitter);

#endif							/* TK_BACKOFF_H */
