/*-------------------------------------------------------------------------
 *
 * strbuf.c
 *	  growable string buffer for frontend code
 *
 * A tk_strbuf doubles its allocation as needed.  An allocation failure sets
 * "oom" and leaves the previous contents in place, so callers check once at
 * the end instead of after every append.  Not thread-safe: one owner.
 *
 * tk_strbuf_json_string() appends a JSON string literal (RFC 8259): '"' and
 * '\\' are escaped, control characters below 0x20 become \b \f \n \r \t
 * or \u00XX, everything else (UTF-8 included) is copied as is, in runs.
 * That is the set cJSON's printer escapes, so the messages built with it
 * (common/messages/) read the same as the cJSON-built ones did.
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

/* make room for n more bytes: data does not move until len + n is passed */
bool
tk_strbuf_reserve(tk_strbuf *sb, size_t n)
{
	return strbuf_reserve(sb, n);
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

void
tk_strbuf_putc(tk_strbuf *sb, char c)
{
	if (sb->len + 1 < sb->cap || strbuf_reserve(sb, 1))
	{
		sb->data[sb->len++] = c;
		sb->data[sb->len] = '\0';
	}
}

/* append s as a JSON string literal, or null when s is NULL */
void
tk_strbuf_json_string(tk_strbuf *sb, const char *s)
{
	if (s == NULL)
	{
		tk_strbuf_append(sb, "null", 4);
		return;
	}
	tk_strbuf_putc(sb, '"');
	tk_strbuf_json_chars(sb, s);
	tk_strbuf_putc(sb, '"');
}

/* append s escaped for the inside of a JSON string literal */
void
tk_strbuf_json_chars(tk_strbuf *sb, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *) s;
	const unsigned char *run;

	for (run = p;; p++)
	{
		char		esc[7];
		size_t		elen = 2;

		if (*p >= 0x20 && *p != '"' && *p != '\\')
			continue;
		if (p > run)
			tk_strbuf_append(sb, (const char *) run, p - run);
		if (*p == '\0')
			break;
		esc[0] = '\\';
		switch (*p)
		{
			case '"':
				esc[1] = '"';
				break;
			case '\\':
				esc[1] = '\\';
				break;
			case '\b':
				esc[1] = 'b';
				break;
			case '\f':
				esc[1] = 'f';
				break;
			case '\n':
				esc[1] = 'n';
				break;
			case '\r':
				esc[1] = 'r';
				break;
			case '\t':
				esc[1] = 't';
				break;
			default:
				memcpy(esc + 1, "u00", 3);
				esc[4] = hex[*p >> 4];
				esc[5] = hex[*p & 15];
				elen = 6;
				break;
		}
		tk_strbuf_append(sb, esc, elen);
		run = p + 1;
	}
}
