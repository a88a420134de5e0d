/*-------------------------------------------------------------------------
 *
 * prom.h
 *	  Prometheus text exposition helpers and a latency histogram
 *
 * IDENTIFICATION
 *	  common/prom.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_PROM_H
#define TK_PROM_H

#include <stdint.h>

#include "strbuf.h"

#define TK_HIST_BUCKETS 21

typedef struct tk_histogram
{
	uint64_t	counts[TK_HIST_BUCKETS + 1];	/* last: +Inf */
	uint64_t	count;
	double		sum;			/* seconds */
	double		max;
} tk_histogram;

extern const double tk_hist_bounds[TK_HIST_BUCKETS];

extern void tk_hist_observe(tk_histogram *h, double seconds);
extern double tk_hist_quantile(const tk_histogram *h, double q);
extern void tk_prom_header(tk_strbuf *out, const char *name, const char *type,
						   const char *help);
extern void tk_prom_sample(tk_strbuf *out, const char *name,
						   const char *label, const char *label_value,
						   double value);
extern void tk_prom_histogram(tk_strbuf *out, const char *name,
							  const char *help, const tk_histogram *h);

#endif							/* TK_PROM_H */
