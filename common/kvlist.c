/*-------------------------------------------------------------------------
 *
 * kvlist.c
 *	  an ordered list of string settings (librdkafka properties, -X flags)
 *
 * Setting a key again replaces its value in place, so the order is the
 * order keys were first set.  Used by kafka_conf.c (properties handed to
 * librdkafka), kafka_errors.c (which settings to name in an explanation)
 * and daemon_config.c.  No I/O, no global state.
 *
 * IDENTIFICATION
 *	  common/kvlist.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "kvlist.h"

bool
tk_kvlist_set(tk_kvlist *l, const char *key, const char *value)
{
	char	   *v = strdup(value);
	tk_kv	   *items;

	if (v == NULL)
		return false;
	for (int i = 0; i < l->n; i++)
	{
		if (strcmp(l->items[i].key, key) == 0)
		{
			free(l->items[i].value);
			l->items[i].value = v;
			return true;
		}
	}
	items = realloc(l->items, sizeof(tk_kv) * (l->n + 1));
	if (items == NULL)
	{
		free(v);
		return false;
	}
	l->items = items;
	l->items[l->n].key = strdup(key);
	l->items[l->n].value = v;
	if (l->items[l->n].key == NULL)
	{
		free(v);
		return false;
	}
	l->n++;
	return true;
}

const char *
tk_kvlist_get(const tk_kvlist *l, const char *key)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->items[i].key, key) == 0)
			return l->items[i].value;
	return NULL;
}

bool
tk_kvlist_copy(tk_kvlist *dst, const tk_kvlist *src)
{
	dst->items = NULL;
	dst->n = 0;
	for (int i = 0; i < src->n; i++)
		if (!tk_kvlist_set(dst, src->items[i].key, src->items[i].value))
			return false;
	return true;
}

void
tk_kvlist_free(tk_kvlist *l)
{
	for (int i = 0; i < l->n; i++)
	{
		free(l->items[i].key);
		free(l->items[i].value);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

bool
tk_kvlist_equal(const tk_kvlist *a, const tk_kvlist *b)
{
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n; i++)
	{
		const char *v = tk_kvlist_get(b, a->items[i].key);

		if (v == NULL || strcmp(v, a->items[i].value) != 0)
			return false;
	}
	return true;
}
