/*-------------------------------------------------------------------------
 *
 * prom.c
 *	  Prometheus text exposition helpers and a latency histogram
 *
 * The histogram has fixed buckets from 1 ms to 60 s, 5 ms apart or closer
 * between 5 and 50 ms, around the relay's 25 ms latency goal.  Observing is O(buckets) with no
 * allocation.  These functions keep no state of their own: the caller
 * serializes access to a histogram (the relay holds its metrics mutex).
 *
 * Label values are escaped as the text format requires (\\, \", \n).
 *
 * IDENTIFICATION
 *	  common/prom.c
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <string.h>

#include "prom.h"

const double tk_hist_bounds[TK_HIST_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04,
	0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
};

void
tk_hist_observe(tk_histogram *h, double seconds)
{
	int			i;

	if (seconds < 0)
		seconds = 0;
	for (i = 0; i < TK_HIST_BUCKETS; i++)
		if (seconds <= tk_hist_bounds[i])
			break;
	h->counts[i]++;
	h->count++;
	h->sum += seconds;
	if (seconds > h->max)
		h->max = seconds;
}

/* upper bound of the bucket holding quantile q (as Prometheus would) */
double
tk_hist_quantile(const tk_histogram *h, double q)
{
	uint64_t	rank;
	uint64_t	acc = 0;

	if (h->count == 0)
		return 0;
	rank = (uint64_t) ceil(q * (double) h->count);
	if (rank == 0)
		rank = 1;
	for (int i = 0; i < TK_HIST_BUCKETS; i++)
	{
		acc += h->counts[i];
		if (acc >= rank)
			return tk_hist_bounds[i] < h->max ? tk_hist_bounds[i] : h->max;
	}
	return h->max;
}

void
tk_prom_header(tk_strbuf *out, const char *name, const char *type, const char *help)
{
	tk_strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
tk_prom_sample(tk_strbuf *out, const char *name, const char *label,
			   const char *label_value, double value)
{
	tk_strbuf_puts(out, name);
	if (label)
	{
		tk_strbuf_printf(out, "{%s=\"", label);
		for (const char *p = label_value; *p; p++)
		{
			if (*p == '\\' || *p == '"')
				tk_strbuf_printf(out, "\\%c", *p);
			else if (*p == '\n')
				tk_strbuf_puts(out, "\\n");
			else
				tk_strbuf_append(out, p, 1);
		}
		tk_strbuf_puts(out, "\"}");
	}
	if (value == floor(value) && fabs(value) < 1e15)
		tk_strbuf_printf(out, " %.0f\n", value);
	else
		tk_strbuf_printf(out, " %.6g\n", value);
}

void
tk_prom_histogram(tk_strbuf *out, const char *name, const char *help,
				  const tk_histogram *h)
{
	uint64_t	acc = 0;

	tk_prom_header(out, name, "histogram", help);
	for (int i = 0; i < TK_HIST_BUCKETS; i++)
	{
		acc += h->counts[i];
		tk_strbuf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name,
						 tk_hist_bounds[i], (unsigned long long) acc);
	}
	tk_strbuf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name,
					 (unsigned long long) h->count);
	tk_strbuf_printf(out, "%s_sum %.6f\n%s_count %llu\n", name, h->sum,
					 name, (unsigned long long) h->count);
}
