/*-------------------------------------------------------------------------
 *
 * strbuf.c
 *	  growable string buffer for frontend code
 *
 * A tk_strbuf doubles its allocation as needed.  An allocation failure sets
 * "oom" and leaves the previous contents in place, so callers check once at
 * the end instead of after every append.  Not thread-safe: one owner.
 *
 * IDENTIFICATION
 *	  common/strbuf.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

void
tk_strbuf_init(tk_strbuf *sb)
{
	sb->data = NULL;
	sb->len = 0;
	sb->cap = 0;
	sb->oom = false;
}

void
tk_strbuf_reset(tk_strbuf *sb)
{
	sb->len = 0;
	if (sb->data)
		sb->data[0] = '\0';
}

void
tk_strbuf_free(tk_strbuf *sb)
{
	free(sb->data);
	tk_strbuf_init(sb);
}

/* make room for n more bytes plus the terminator */
static bool
strbuf_reserve(tk_strbuf *sb, size_t n)
{
	size_t		need = sb->len + n + 1;
	size_t		cap;
	char	   *p;

	if (need <= sb->cap)
		return true;
	cap = sb->cap ? sb->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(sb->data, cap);
	if (p == NULL)
	{
		sb->oom = true;
		return false;
	}
	sb->data = p;
	sb->cap = cap;
	return true;
}

void
tk_strbuf_append(tk_strbuf *sb, const char *s, size_t n)
{
	if (!strbuf_reserve(sb, n))
		return;
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

void
tk_strbuf_puts(tk_strbuf *sb, const char *s)
{
	tk_strbuf_append(sb, s, strlen(s));
}

void
tk_strbuf_printf(tk_strbuf *sb, const char *fmt,...)
{
	va_list		ap;
	int			n;

	if (!strbuf_reserve(sb, 64))
		return;
	va_start(ap, fmt);
	n = vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t) n >= sb->cap - sb->len)
	{
		if (!strbuf_reserve(sb, (size_t) n))
		{
			sb->data[sb->len] = '\0';
			return;
		}
		va_start(ap, fmt);
		vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap);
		va_end(ap);
	}
	sb->len += (size_t) n;
}
