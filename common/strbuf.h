/*-------------------------------------------------------------------------
 *
 * strbuf.h
 *	  growable string buffer for frontend code
 *
 * IDENTIFICATION
 *	  common/strbuf.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_STRBUF_H
#define TK_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tk_strbuf
{
	char	   *data;			/* always NUL-terminated once initialized */
	size_t		len;
	size_t		cap;
	bool		oom;			/* an allocation failed; contents truncated */
} tk_strbuf;

extern void tk_strbuf_init(tk_strbuf *sb);
extern void tk_strbuf_reset(tk_strbuf *sb);
extern void tk_strbuf_free(tk_strbuf *sb);
extern bool tk_strbuf_reserve(tk_strbuf *sb, size_t n);
extern void tk_strbuf_append(tk_strbuf *sb, const char *s, size_t n);
extern void tk_strbuf_puts(tk_strbuf *sb, const char *s);
extern void tk_strbuf_putc(tk_strbuf *sb, char c);
extern void tk_strbuf_json_string(tk_strbuf *sb, const char *s);
extern void tk_strbuf_json_chars(tk_strbuf *sb, const char *s);
extern void tk_strbuf_printf(tk_strbuf *sb, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

#endif							/* TK_STRBUF_H */
