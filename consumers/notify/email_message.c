/*-------------------------------------------------------------------------
 *
 * email_message.c
 *	  build an RFC 5322 plain-text message (tkn_email_build)
 *
 *	 1. validate: addresses are plain ASCII addr-specs (no display part,
 *		no CR/LF, no spaces or specials), subject and sender name are
 *		valid UTF-8 without line breaks, the body is valid UTF-8 without
 *		NUL.  These checks are what makes the header block injection-safe:
 *		nothing the user controls can end a header line.
 *	 2. headers, each ending in CRLF, folded lines under 78 characters
 *		where we produce them: the subject stays as is when it is short
 *		printable ASCII (and does not look like an encoded-word), otherwise
 *		it becomes RFC 2047 "=?UTF-8?B?...?=" words of at most 39 input
 *		bytes, cut at UTF-8 character boundaries, one per folded line.
 *	 3. the body with CRLF line ends; 7bit when every line is ASCII and at
 *		most 998 bytes (RFC 5322 s2.1.1), else quoted-printable (RFC 2045
 *		s6.7) with soft breaks at 76 characters.
 * Pure string work: no I/O, no libcurl (email.c sends the result).
 *
 * IDENTIFICATION
 *	  consumers/notify/email_message.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "base64.h"
#include "delivery_int.h"
#include "email_message.h"
#include "strbuf.h"
#include "trace.h"

#define SUBJECT_PLAIN_MAX 68	/* "Subject: " + 68 < 78 */
#define WORD_INPUT_MAX	39		/* 39 bytes -> 52 base64 chars -> a 64-char word */
#define LINE_MAX_OCTETS 998
#define QP_LINE_MAX		76

/*
 * Length of the UTF-8 sequence starting at s (at most n bytes), 0 if it is
 * not valid UTF-8 (overlong, surrogate, beyond U+10FFFF, truncated).
 */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	uint32_t	cp;
	size_t		len,
				i;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++)
	{
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static bool
utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		n = strlen(s);
	size_t		i = 0;

	while (i < n)
	{
		size_t		l = utf8_seq(p + i, n - i);

		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

/* NULL if the text is a usable header value, else the reason */
static const char *
header_text_problem(const char *s)
{
	if (strpbrk(s, "\r\n") != NULL)
		return "it contains a line break (CR or LF), which could inject headers";
	if (!utf8_valid(s))
		return "it is not valid UTF-8";
	return NULL;
}

/* NULL if a is a plain ASCII addr-spec (local@domain), else the reason */
static const char *
address_problem(const char *a)
{
	const char *at = strrchr(a, '@');
	const char *p;

	if (a[0] == '\0')
		return "it is empty";
	if (strpbrk(a, "\r\n") != NULL)
		return "it contains a line break (CR or LF), which could inject headers";
	if (strlen(a) > 254)
		return "it is longer than 254 characters";
	for (p = a; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c <= 0x20 || c >= 0x7f)
			return "it contains a space, a control or a non-ASCII character";
		if (strchr("<>()[]\\,;:\"", c) != NULL)
			return "it contains one of < > ( ) [ ] \\ , ; : \" (give only user@example.com, "
				"no display name)";
	}
	if (at == NULL || at == a || at[1] == '\0')
		return "it is not of the form user@domain";
	if (strchr(a, '@') != at)
		return "it contains more than one @";
	if (at - a > 64)
		return "its local part is longer than 64 characters";
	for (p = at + 1; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			return "its domain has a character other than letters, digits, - and .";
	if (at[1] == '.' || p[-1] == '.' || strstr(at, "..") != NULL)
		return "its domain has an empty label";
	return NULL;
}

/*
 * The left part of the Message-ID: the id itself when it is a safe
 * dot-atom (letters, digits, . _ -, at most 64), else the first 128 bits of
 * its SHA-256 in hex.  Either way the same id gives the same Message-ID.
 */
static bool
message_id_left(const char *id, char *out, size_t outlen)
{
	size_t		n = strlen(id);
	bool		safe = n > 0 && n <= 64 && id[0] != '.' && id[n - 1] != '.' &&
		strstr(id, "..") == NULL;
	const char *p;

	for (p = id; safe && *p; p++)
		safe = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			(*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-';
	if (safe)
		return (size_t) snprintf(out, outlen, "%s", id) < outlen;
	else
	{
		unsigned char md[32];
		unsigned int mdlen = 0;
		int			i;

		if (outlen < 33 || !EVP_Digest(id, n, md, &mdlen, EVP_sha256(), NULL))
			return false;
		for (i = 0; i < 16; i++)
			snprintf(out + 2 * i, 3, "%02x", md[i]);
		return true;
	}
}

/* RFC 5322 s3.3 date-time in UTC, e.g. "Tue, 01 Jul 2025 09:05:00 +0000" */
static void
rfc5322_date(time_t t, char *out, size_t outlen)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm	tm;

	gmtime_r(&t, &tm);
	snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d +0000",
			 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
			 tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * Append s as RFC 2047 B-encoded words, each from at most WORD_INPUT_MAX
 * bytes cut at a character boundary, separated by a fold (CRLF SP).
 */
static void
put_encoded_words(tk_strbuf *sb, const char *s)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		n = strlen(s);
	size_t		i = 0;
	char		word[TK_B64_LEN(WORD_INPUT_MAX) + 1];

	while (i < n || i == 0)
	{
		size_t		take = 0;

		while (i + take < n)
		{
			size_t		l = utf8_seq(p + i + take, n - i - take);

			if (take + l > WORD_INPUT_MAX)
				break;
			take += l;
		}
		if (i > 0)
			tk_strbuf_puts(sb, "\r\n ");
		tk_b64_encode(p + i, take, word, false);
		tk_strbuf_printf(sb, "=?UTF-8?B?%s?=", word);
		i += take;
		if (n == 0)
			break;
	}
}

static bool
is_plain_ascii(const char *s, size_t max)
{
	const char *p;

	if (strlen(s) > max || strstr(s, "=?") != NULL)
		return false;
	for (p = s; *p; p++)
		if ((unsigned char) *p < 0x20 || (unsigned char) *p > 0x7e)
			return false;
	return true;
}

/* From: "Name" <addr> or =?UTF-8?B?...?= <addr> */
static void
put_from(tk_strbuf *sb, const tkn_smtp_config *cfg)
{
	const char *p;

	tk_strbuf_puts(sb, "From: ");
	if (cfg->from_name != NULL && cfg->from_name[0] != '\0')
	{
		if (is_plain_ascii(cfg->from_name, 60))
		{
			tk_strbuf_putc(sb, '"');
			for (p = cfg->from_name; *p; p++)
			{
				if (*p == '"' || *p == '\\')
					tk_strbuf_putc(sb, '\\');
				tk_strbuf_putc(sb, *p);
			}
			tk_strbuf_putc(sb, '"');
		}
		else
			put_encoded_words(sb, cfg->from_name);
		tk_strbuf_puts(sb, " ");
	}
	tk_strbuf_printf(sb, "<%s>\r\n", cfg->from);
}

/* split the body into lines (LF, CRLF or CR) and report its shape */
static void
body_shape(const char *body, bool *ascii, size_t *longest)
{
	const unsigned char *p;
	size_t		col = 0;

	*ascii = true;
	*longest = 0;
	for (p = (const unsigned char *) body; *p; p++)
	{
		if (*p == '\r' || *p == '\n')
		{
			col = 0;
			continue;
		}
		if (*p >= 0x80 || (*p < 0x20 && *p != '\t') || *p == 0x7f)
			*ascii = false;
		if (++col > *longest)
			*longest = col;
	}
}

/* one line (without its end) in quoted-printable, then CRLF */
static void
put_qp_line(tk_strbuf *sb, const unsigned char *s, size_t n)
{
	size_t		col = 0;
	size_t		i;

	for (i = 0; i < n; i++)
	{
		unsigned char c = s[i];
		char		tok[4];
		size_t		toklen;

		if ((c == ' ' || c == '\t') && i == n - 1)
			toklen = (size_t) snprintf(tok, sizeof(tok), "=%02X", c);
		else if ((c >= 33 && c <= 126 && c != '=') || c == ' ' || c == '\t')
		{
			tok[0] = (char) c;
			tok[1] = '\0';
			toklen = 1;
		}
		else
			toklen = (size_t) snprintf(tok, sizeof(tok), "=%02X", c);
		/* leave room for the "=" of a soft break */
		if (col + toklen > QP_LINE_MAX - 1)
		{
			tk_strbuf_puts(sb, "=\r\n");
			col = 0;
		}
		tk_strbuf_append(sb, tok, toklen);
		col += toklen;
	}
	tk_strbuf_puts(sb, "\r\n");
}

/* the body, line by line, with CRLF ends; qp: quoted-printable */
static void
put_body(tk_strbuf *sb, const char *body, bool qp)
{
	const char *p = body;

	while (*p)
	{
		size_t		n = strcspn(p, "\r\n");

		if (qp)
			put_qp_line(sb, (const unsigned char *) p, n);
		else
		{
			tk_strbuf_append(sb, p, n);
			tk_strbuf_puts(sb, "\r\n");
		}
		p += n;
		if (p[0] == '\r' && p[1] == '\n')
			p += 2;
		else if (*p)
			p++;
	}
}

char *
tkn_email_build(const tkn_smtp_config *cfg, const tkn_email *msg, size_t *len,
				char *err, size_t errlen)
{
	const char *why;
	char		left[80];
	char		date[64];
	tk_trace_ctx trace;
	const char *domain;
	bool		ascii;
	size_t		longest;
	bool		qp;
	tk_strbuf	sb;

	if (cfg->from == NULL || (why = address_problem(cfg->from)) != NULL)
	{
		tkn_errorf(err, errlen, "email sender address refused: %s",
				   cfg->from ? why : "it is not set");
		return NULL;
	}
	if (msg->to == NULL || (why = address_problem(msg->to)) != NULL)
	{
		tkn_errorf(err, errlen, "email recipient address refused: %s",
				   msg->to ? why : "it is not set");
		return NULL;
	}
	if (cfg->from_name != NULL && (why = header_text_problem(cfg->from_name)) != NULL)
	{
		tkn_errorf(err, errlen, "email sender name refused: %s", why);
		return NULL;
	}
	if (msg->subject == NULL || (why = header_text_problem(msg->subject)) != NULL)
	{
		tkn_errorf(err, errlen, "email subject refused: %s", msg->subject ? why : "it is not set");
		return NULL;
	}
	if (msg->body == NULL || !utf8_valid(msg->body))
	{
		tkn_errorf(err, errlen, "email body refused: %s",
				   msg->body ? "it is not valid UTF-8" : "it is not set");
		return NULL;
	}
	if (msg->id == NULL || !message_id_left(msg->id, left, sizeof(left)))
	{
		tkn_errorf(err, errlen, "email: a notification id is needed for the Message-ID");
		return NULL;
	}
	domain = strrchr(cfg->from, '@') + 1;
	rfc5322_date(msg->date ? msg->date : time(NULL), date, sizeof(date));
	body_shape(msg->body, &ascii, &longest);
	qp = !ascii || longest > LINE_MAX_OCTETS;

	tk_strbuf_init(&sb);
	tk_strbuf_printf(&sb, "Date: %s\r\n", date);
	put_from(&sb, cfg);
	tk_strbuf_printf(&sb, "To: <%s>\r\n", msg->to);
	tk_strbuf_puts(&sb, "Subject: ");
	if (is_plain_ascii(msg->subject, SUBJECT_PLAIN_MAX))
		tk_strbuf_puts(&sb, msg->subject);
	else
		put_encoded_words(&sb, msg->subject);
	tk_strbuf_puts(&sb, "\r\n");
	tk_strbuf_printf(&sb, "Message-ID: <notify.%s@%s>\r\n", left, domain);
	if (tk_trace_parse(msg->traceparent, &trace))
	{
		char		tp[TK_TRACEPARENT_LEN + 1];

		tk_trace_format(&trace, tp);	/* checked and rewritten: no injection */
		tk_strbuf_printf(&sb, "Traceparent: %s\r\n", tp);
	}
	tk_strbuf_puts(&sb, "MIME-Version: 1.0\r\n"
				   "Content-Type: text/plain; charset=utf-8\r\n");
	tk_strbuf_printf(&sb, "Content-Transfer-Encoding: %s\r\n", qp ? "quoted-printable" : "7bit");
	tk_strbuf_puts(&sb, "Auto-Submitted: auto-generated\r\n\r\n");
	put_body(&sb, msg->body, qp);
	if (sb.oom || sb.data == NULL)
	{
		tkn_errorf(err, errlen, "out of memory");
		tk_strbuf_free(&sb);
		return NULL;
	}
	*len = sb.len;
	return sb.data;
}
