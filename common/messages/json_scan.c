/*-------------------------------------------------------------------------
 *
 * json_scan.c
 *	  split a JSON row image into spans of members and elements
 *
 * UPDATE rows need the previous and new value of each changed column, and
 * the audit record needs the whole old row (ce_change.c).  The row images
 * are PostgreSQL's own row_to_json() text, so instead of parsing them into
 * a tree this scanner records, for each member of an object (or element of
 * an array), where its key literal and its value text are: a tk_json_span,
 * pointing into the row's string.  Spans are appended to the list's
 * reusable l->spans array, so a steady stream of rows allocates nothing;
 * ce_json_items() checks the whole text first (a malformed image makes a
 * poison row, not a bad message), ce_json_items_at() splits one value
 * already checked (the tags arrays inside an image).
 *
 * Values are copied into messages as the text they are, never re-encoded.
 * Keys and strings are compared as literals: PostgreSQL's escape_json
 * spells a string one way, so equal strings are equal bytes; only literals
 * with escapes are decoded (into l->scratch, given back at once) to compare
 * them safely with other spellings (ce_lit_same).
 *
 * Nesting deeper than CE_MAX_DEPTH is refused rather than recursed into.
 *
 * IDENTIFICATION
 *	  common/messages/json_scan.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <string.h>

#include "ce_internal.h"

#define CE_MAX_DEPTH 64

static const char *
skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* p at '"': returns the position after the closing quote, or NULL */
static const char *
skip_string(const char *p)
{
	for (p++; *p; p++)
	{
		if (*p == '"')
			return p + 1;
		if (*p == '\\')
		{
			if (p[1] == '\0')
				return NULL;
			p++;
		}
		else if ((unsigned char) *p < 0x20)
			return NULL;
	}
	return NULL;
}

/* returns the position after the JSON value starting at p (no ws), or NULL */
static const char *
skip_value(const char *p, int depth)
{
	char		close;

	if (depth > CE_MAX_DEPTH)
		return NULL;
	switch (*p)
	{
		case '"':
			return skip_string(p);
		case '{':
		case '[':
			close = *p == '{' ? '}' : ']';
			p = skip_ws(p + 1);
			if (*p == close)
				return p + 1;
			for (;;)
			{
				if (close == '}')
				{
					if (*p != '"' || (p = skip_string(p)) == NULL)
						return NULL;
					p = skip_ws(p);
					if (*p != ':')
						return NULL;
					p = skip_ws(p + 1);
				}
				if ((p = skip_value(p, depth + 1)) == NULL)
					return NULL;
				p = skip_ws(p);
				if (*p == close)
					return p + 1;
				if (*p != ',')
					return NULL;
				p = skip_ws(p + 1);
			}
		default:
			{
				const char *q = p;

				while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
					   *p == '-' || *p == '+' || *p == '.' || *p == 'E')
					p++;
				return p > q ? p : NULL;
			}
	}
}

/*
 * Append the members (object) or elements (array) of the well-formed JSON
 * value at p to l->spans from index *n on.  false: out of memory.
 */
bool
ce_json_items_at(tk_message_list *l, const char *p, bool object, int *n)
{
	char		close = object ? '}' : ']';

	p = skip_ws(p + 1);
	if (*p == close)
		return true;
	for (;;)
	{
		tk_json_span *sp;
		const char *k = NULL;
		const char *kend = NULL;
		const char *v;

		if (object)
		{
			k = p;
			kend = skip_string(p);
			p = skip_ws(skip_ws(kend) + 1);
		}
		v = p;
		p = skip_value(p, 1);
		if (!ce_grow((void **) &l->spans, &l->cap_spans, *n + 1, sizeof(tk_json_span)))
			return false;
		sp = &l->spans[(*n)++];
		sp->key = k;
		sp->key_len = k ? (size_t) (kend - k) : 0;
		sp->val = v;
		sp->val_len = p - v;
		p = skip_ws(p);
		if (*p == close)
			return true;
		p = skip_ws(p + 1);
	}
}

/*
 * The same for a whole text, checked first: false when json is not one
 * well-formed object (object) or array, or out of memory.
 */
bool
ce_json_items(tk_message_list *l, const char *json, bool object, int *n)
{
	const char *p = skip_ws(json);
	const char *end;

	if (*p != (object ? '{' : '['))
		return false;
	end = skip_value(p, 0);
	if (end == NULL || *skip_ws(end) != '\0')
		return false;
	return ce_json_items_at(l, p, object, n);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static unsigned
hex4(const char *p)
{
	unsigned	v = 0;

	for (int i = 0; i < 4; i++)
	{
		int			h = hexval(p[i]);

		if (h < 0)
			return 0xFFFFFFFF;
		v = v * 16 + h;
	}
	return v;
}

/* append the decoded content of string literal lit (with quotes) to sb */
static void
lit_decode(tk_strbuf *sb, const char *lit, size_t len)
{
	const char *p = lit + 1;
	const char *end = lit + len - 1;

	while (p < end)
	{
		unsigned	cp;
		char		u[4];
		int			n;

		if (*p != '\\')
		{
			const char *q = p;

			while (q < end && *q != '\\')
				q++;
			tk_strbuf_append(sb, p, q - p);
			p = q;
			continue;
		}
		p++;
		switch (*p)
		{
			case 'b':
				tk_strbuf_putc(sb, '\b');
				break;
			case 'f':
				tk_strbuf_putc(sb, '\f');
				break;
			case 'n':
				tk_strbuf_putc(sb, '\n');
				break;
			case 'r':
				tk_strbuf_putc(sb, '\r');
				break;
			case 't':
				tk_strbuf_putc(sb, '\t');
				break;
			case 'u':
				if (end - p < 5 || (cp = hex4(p + 1)) == 0xFFFFFFFF)
				{
					tk_strbuf_putc(sb, 'u');
					break;
				}
				p += 4;
				if (cp >= 0xD800 && cp < 0xDC00 && end - p >= 7 &&
					p[1] == '\\' && p[2] == 'u')
				{
					unsigned	lo = hex4(p + 3);

					if (lo >= 0xDC00 && lo < 0xE000)
					{
						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
						p += 6;
					}
				}
				if (cp < 0x80)
					u[0] = cp, n = 1;
				else if (cp < 0x800)
					u[0] = 0xC0 | (cp >> 6), u[1] = 0x80 | (cp & 0x3F), n = 2;
				else if (cp < 0x10000)
					u[0] = 0xE0 | (cp >> 12), u[1] = 0x80 | ((cp >> 6) & 0x3F),
						u[2] = 0x80 | (cp & 0x3F), n = 3;
				else
					u[0] = 0xF0 | (cp >> 18), u[1] = 0x80 | ((cp >> 12) & 0x3F),
						u[2] = 0x80 | ((cp >> 6) & 0x3F), u[3] = 0x80 | (cp & 0x3F), n = 4;
				tk_strbuf_append(sb, u, n);
				break;
			default:			/* \" \\ \/ */
				tk_strbuf_putc(sb, *p);
				break;
		}
		p++;
	}
}

/*
 * Do two string literals denote the same string?  PostgreSQL's escape_json
 * spells a string one way, so equal strings are equal bytes; literals with
 * escapes are decoded and compared to be safe with other spellings.
 */
bool
ce_lit_same(tk_message_list *l, const char *a, size_t alen, const char *b, size_t blen)
{
	tk_strbuf  *sc = &l->scratch;
	size_t		mark = sc->len;
	size_t		da;
	bool		same;

	if (alen == blen && memcmp(a, b, alen) == 0)
		return true;
	if (memchr(a, '\\', alen) == NULL && memchr(b, '\\', blen) == NULL)
		return false;
	lit_decode(sc, a, alen);
	da = sc->len - mark;
	lit_decode(sc, b, blen);
	same = !sc->oom && sc->len - mark - da == da &&
		memcmp(sc->data + mark, sc->data + mark + da, da) == 0;
	sc->len = mark;
	return same;
}

/* the member of object items [from, to) whose key is the literal key */
const tk_json_span *
ce_member(tk_message_list *l, int from, int to, const char *key, size_t key_len)
{
	for (int i = from; i < to; i++)
		if (ce_lit_same(l, l->spans[i].key, l->spans[i].key_len, key, key_len))
			return &l->spans[i];
	return NULL;
}

