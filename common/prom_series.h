/*-------------------------------------------------------------------------
 *
 * prom_series.h
 *	  a thread-safe registry of labelled counters and gauges for /metrics
 *
 * IDENTIFICATION
 *	  common/prom_series.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_PROM_SERIES_H
#define TK_PROM_SERIES_H

#include <pthread.h>
#include <stdbool.h>

#include "strbuf.h"

typedef struct tk_series tk_series;

typedef struct tk_series_set
{
	pthread_mutex_t lock;
	tk_series  *items;
	int			n;
	int			cap;
} tk_series_set;

#define TK_SERIES_SET_INIT {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0}

/*
 * labels: the text between the braces, already formatted, e.g.
 * topic="t",partition="0" (tk_series_label() escapes one pair); "" for none.
 * help is used the first time a name is seen.
 */
extern void tk_series_add(tk_series_set *s, const char *name, const char *type,
						  const char *help, const char *labels, double add);
extern void tk_series_set_value(tk_series_set *s, const char *name, const char *type,
								const char *help, const char *labels, double value);
/* a family shown (HELP/TYPE, no sample) before its first add or set */
extern void tk_series_declare(tk_series_set *s, const char *name, const char *type,
							  const char *help);
extern void tk_series_remove(tk_series_set *s, const char *name, const char *labels);
extern void tk_series_render(tk_series_set *s, tk_strbuf *out);
extern void tk_series_label(char *buf, size_t len, const char *name, const char *value);

#endif							/* TK_PROM_SERIES_H */
