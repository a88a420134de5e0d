/*-------------------------------------------------------------------------
 *
 * prom_series.c
 *	  a thread-safe registry of labelled counters and gauges for /metrics
 *
 * Daemons that count by label (per topic, per partition, per kind) add to
 * a tk_series_set instead of keeping their own arrays and repeating
 * lock/find/add/unlock: tk_series_add() for counters, tk_series_set_value()
 * for gauges, tk_series_render() for the Prometheus text, grouped by name
 * with one HELP/TYPE header each, in first-seen order.  A series is found
 * by linear search: daemons have tens of series, not thousands.
 * tk_series_declare() names a family before its first sample, so /metrics
 * shows its HELP/TYPE from the start (a scrape, an alert rule or a
 * dashboard can tell "none yet" from "not exported").
 *
 * Threading: every function takes the set's mutex; callable from any
 * thread, including the HTTP thread that renders.
 *
 * IDENTIFICATION
 *	  common/prom_series.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom_series.h"

struct tk_series
{
	char	   *name;
	const char *type;			/* static: "counter" or "gauge" */
	const char *help;			/* static */
	char	   *labels;
	double		value;
	bool		sampled;		/* false: declared, no sample yet */
};

static tk_series *
find_or_add(tk_series_set *s, const char *name, const char *type,
			const char *help, const char *labels)
{
	tk_series  *t;

	for (int i = 0; i < s->n; i++)
		if (strcmp(s->items[i].name, name) == 0 && strcmp(s->items[i].labels, labels) == 0)
			return &s->items[i];
	if (s->n == s->cap)
	{
		int			cap = s->cap ? s->cap * 2 : 32;
		tk_series  *items = realloc(s->items, sizeof(tk_series) * cap);

		if (items == NULL)
			return NULL;
		s->items = items;
		s->cap = cap;
	}
	t = &s->items[s->n];
	t->name = strdup(name);
	t->labels = strdup(labels);
	if (t->name == NULL || t->labels == NULL)
	{
		free(t->name);
		free(t->labels);
		return NULL;
	}
	t->type = type;
	t->help = help;
	t->value = 0;
	t->sampled = false;
	s->n++;
	return t;
}

void
tk_series_add(tk_series_set *s, const char *name, const char *type,
			  const char *help, const char *labels, double add)
{
	tk_series  *t;

	pthread_mutex_lock(&s->lock);
	if ((t = find_or_add(s, name, type, help, labels)) != NULL)
	{
		t->value += add;
		t->sampled = true;
	}
	pthread_mutex_unlock(&s->lock);
}

void
tk_series_set_value(tk_series_set *s, const char *name, const char *type,
					const char *help, const char *labels, double value)
{
	tk_series  *t;

	pthread_mutex_lock(&s->lock);
	if ((t = find_or_add(s, name, type, help, labels)) != NULL)
	{
		t->value = value;
		t->sampled = true;
	}
	pthread_mutex_unlock(&s->lock);
}

void
tk_series_declare(tk_series_set *s, const char *name, const char *type, const char *help)
{
	pthread_mutex_lock(&s->lock);
	(void) find_or_add(s, name, type, help, "");
	pthread_mutex_unlock(&s->lock);
}

/* forget a series (a gauge of something this process no longer has) */
void
tk_series_remove(tk_series_set *s, const char *name, const char *labels)
{
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->items[i].name, name) == 0 && strcmp(s->items[i].labels, labels) == 0)
		{
			free(s->items[i].name);
			free(s->items[i].labels);
			memmove(&s->items[i], &s->items[i + 1], sizeof(tk_series) * (s->n - i - 1));
			s->n--;
			break;
		}
	pthread_mutex_unlock(&s->lock);
}

void
tk_series_render(tk_series_set *s, tk_strbuf *out)
{
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->n; i++)
	{
		bool		first = true;

		for (int j = 0; j < i; j++)
			if (strcmp(s->items[j].name, s->items[i].name) == 0)
				first = false;
		if (!first)
			continue;
		tk_strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", s->items[i].name,
						 s->items[i].help, s->items[i].name, s->items[i].type);
		for (int j = i; j < s->n; j++)
		{
			if (strcmp(s->items[j].name, s->items[i].name) != 0 || !s->items[j].sampled)
				continue;
			tk_strbuf_printf(out, "%s%s%s%s %.17g\n", s->items[j].name,
							 s->items[j].labels[0] ? "{" : "", s->items[j].labels,
							 s->items[j].labels[0] ? "}" : "", s->items[j].value);
		}
	}
	pthread_mutex_unlock(&s->lock);
}

/* name="value" with the value escaped as the text format requires */
void
tk_series_label(char *buf, size_t len, const char *name, const char *value)
{
	size_t		o = (size_t) snprintf(buf, len, "%s=\"", name);

	for (const char *p = value ? value : ""; *p && o + 3 < len; p++)
	{
		if (*p == '\\' || *p == '"')
		{
			buf[o++] = '\\';
			buf[o++] = *p;
		}
		else if (*p == '\n')
		{
			buf[o++] = '\\';
			buf[o++] = 'n';
		}
		else
			buf[o++] = *p;
	}
	if (o + 2 <= len)
	{
		buf[o++] = '"';
		buf[o] = '\0';
	}
	else if (len > 0)
		buf[len - 1] = '\0';
}
