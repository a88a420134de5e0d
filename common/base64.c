/*-------------------------------------------------------------------------
 *
 * base64.c
 *	  base64 and base64url (RFC 4648): Web Push keys, dead-letter payloads
 *
 * See base64.h.  Small and table-driven; no allocation.
 *
 * IDENTIFICATION
 *	  common/base64.c
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "base64.h"

static const char b64_std[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
tk_b64_encode(const uint8_t *in, size_t n, char *out, bool url)
{
	const char *alpha = url ? b64_url : b64_std;
	size_t		o = 0;
	size_t		i;

	for (i = 0; i + 2 < n; i += 3)
	{
		uint32_t	v = ((uint32_t) in[i] << 16) | ((uint32_t) in[i + 1] << 8) | in[i + 2];

		out[o++] = alpha[(v >> 18) & 63];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
		out[o++] = alpha[v & 63];
	}
	if (i < n)
	{
		uint32_t	v = (uint32_t) in[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t) in[i + 1] << 8;
		out[o++] = alpha[(v >> 18) & 63];
		out[o++] = alpha[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = alpha[(v >> 6) & 63];
		else if (!url)
			out[o++] = '=';
		if (!url)
			out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

bool
tk_b64_decode(const char *in, uint8_t *out, size_t outmax, size_t *outlen)
{
	size_t		len = strlen(in);
	uint32_t	acc = 0;
	int			bits = 0;
	size_t		o = 0;
	size_t		i;

	while (len > 0 && in[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return false;
	for (i = 0; i < len; i++)
	{
		int			v = b64_value(in[i]);

		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t) v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			if (o >= outmax)
				return false;
			out[o++] = (uint8_t) (acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	*outlen = o;
	return true;
}
