/*-------------------------------------------------------------------------
 *
 * trace.c
 *	  W3C trace context: parse and format traceparent, make span ids
 *
 * See trace.h.  An all-zero trace or span id is invalid (W3C); derive and
 * random never return one.
 *
 * IDENTIFICATION
 *	  common/trace.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "trace.h"

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool
unhex(const char *s, uint8_t *out, int n)
{
	bool		nonzero = false;

	for (int i = 0; i < n; i++)
	{
		int			h = hexval(s[2 * i]),
					l = hexval(s[2 * i + 1]);

		if (h < 0 || l < 0)
			return false;
		out[i] = (uint8_t) (h << 4 | l);
		nonzero = nonzero || out[i] != 0;
	}
	return nonzero;
}

bool
tk_trace_parse(const char *tp, tk_trace_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	if (tp == NULL || strlen(tp) != TK_TRACEPARENT_LEN ||
		strncmp(tp, "00-", 3) != 0 || tp[35] != '-' || tp[52] != '-')
		return false;
	if (!unhex(tp + 3, ctx->trace_id, 16) || !unhex(tp + 36, ctx->span_id, 8))
		return false;
	if (hexval(tp[53]) < 0 || hexval(tp[54]) < 0)
		return false;
	ctx->flags = (uint8_t) (hexval(tp[53]) << 4 | hexval(tp[54]));
	ctx->valid = true;
	return true;
}

void
tk_trace_hex(const uint8_t *b, int n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < n; i++)
	{
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

void
tk_trace_format(const tk_trace_ctx *ctx, char out[TK_TRACEPARENT_LEN + 1])
{
	memcpy(out, "00-", 3);
	tk_trace_hex(ctx->trace_id, 16, out + 3);
	out[35] = '-';
	tk_trace_hex(ctx->span_id, 8, out + 36);
	out[52] = '-';
	tk_trace_hex(&ctx->flags, 1, out + 53);
}

static uint64_t
splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t
fnv(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (uint8_t) *s) * 0x100000001b3ULL;
	return (h ^ 0xff) * 0x100000001b3ULL;	/* separator: ("ab","c") != ("a","bc") */
}

static void
fill(uint64_t seed, uint8_t *out, int n)
{
	for (int i = 0; i < n; i += 8)
	{
		uint64_t	v = splitmix(seed + (uint64_t) i);

		for (int k = 0; k < 8 && i + k < n; k++)
			out[i + k] = (uint8_t) (v >> (8 * k));
	}
	if (out[0] == 0)
		out[0] = 1;				/* never all zero */
}

void
tk_trace_derive(const char *a, const char *b, const char *c, uint8_t *out, int n)
{
	fill(fnv(fnv(fnv(0xcbf29ce484222325ULL, a), b), c), out, n);
}

void
tk_trace_random(uint8_t *out, int n)
{
	static __thread uint64_t state;

	if (state == 0)
	{
		struct timespec ts;

		if (getrandom(&state, sizeof(state), 0) != sizeof(state))
		{
			clock_gettime(CLOCK_REALTIME, &ts);
			state = (uint64_t) ts.tv_nsec ^ ((uint64_t) getpid() << 32) ^ (uint64_t) (uintptr_t) &ts;
		}
	}
	state += 0x9e3779b97f4a7c15ULL;
	fill(state, out, n);
}
