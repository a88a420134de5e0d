/*-------------------------------------------------------------------------
 *
 * kvlist.h
 *	  an ordered list of string settings (see kvlist.c)
 *
 * IDENTIFICATION
 *	  common/kvlist.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_KVLIST_H
#define TK_KVLIST_H

#include <stdbool.h>

typedef struct tk_kv
{
	char	   *key;
	char	   *value;
} tk_kv;

/* ordered property list; setting a key again replaces its value */
typedef struct tk_kvlist
{
	tk_kv	   *items;
	int			n;
} tk_kvlist;

extern bool tk_kvlist_set(tk_kvlist *l, const char *key, const char *value);
extern const char *tk_kvlist_get(const tk_kvlist *l, const char *key);
extern bool tk_kvlist_copy(tk_kvlist *dst, const tk_kvlist *src);
extern void tk_kvlist_free(tk_kvlist *l);
extern bool tk_kvlist_equal(const tk_kvlist *a, const tk_kvlist *b);

#endif							/* TK_KVLIST_H */
