/*-------------------------------------------------------------------------
 *
 * kafka_wire.c
 *	  the Kafka responses the SASL front rewrites on their way to the client
 *
 * The front (sasl_front.c) relays whole frames (int32 size + payload) and
 * passes almost every response through untouched.  Three are rewritten,
 * parsed with the layouts of the Kafka protocol guide:
 *
 *	ApiVersions (18)	the mock does not speak SASL, so SaslHandshake (17,
 *						v0-1) and SaslAuthenticate (36, v0-2) are added; and
 *						Metadata is capped at v8, FindCoordinator at v2 (the
 *						last non-flexible versions, the ones parsed below)
 *						and DescribeCluster (60) dropped, so that no response
 *						naming a broker reaches the client unrewritten.  The
 *						v3+ (flexible: compact array, tagged fields) and
 *						v0-2 layouts are both handled.
 *	Metadata (3) v0-8	each broker's host/port -> its front listener
 *	FindCoordinator (10) v0-2	the coordinator's host/port, likewise
 *
 * librdkafka 2.0.2's mock itself offers Metadata, FindCoordinator and
 * ApiVersions v0-2 only, so with it the caps change nothing; they keep the
 * front safe should a newer mock offer flexible versions.
 *
 * Everything after the rewritten part is copied verbatim.  A response that
 * does not parse (truncated, a version we capped away) makes the rewrite
 * fail, and the front closes that connection: never a crash, never an
 * unrewritten mock address.
 *
 * IDENTIFICATION
 *	  devbroker/kafka_wire.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "devbroker.h"

#define API_METADATA		3
#define API_FIND_COORD		10
#define API_SASL_HANDSHAKE	17
#define API_API_VERSIONS	18
#define API_SASL_AUTH		36
#define API_DESCRIBE_CLUSTER 60
#define FRONT_HOST			"127.0.0.1"

bool
wbuf_put(wbuf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 4096;
		uint8_t    *d;

		while (cap < b->len + n)
			cap *= 2;
		d = realloc(b->data, cap);
		if (d == NULL)
			return false;
		b->data = d;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return true;
}

bool
wbuf_i16(wbuf *b, int v)
{
	uint8_t		x[2] = {(uint8_t) (v >> 8), (uint8_t) v};

	return wbuf_put(b, x, 2);
}

bool
wbuf_i32(wbuf *b, int32_t v)
{
	uint32_t	u = (uint32_t) v;
	uint8_t		x[4] = {u >> 24, u >> 16, u >> 8, u};

	return wbuf_put(b, x, 4);
}

bool
wbuf_str(wbuf *b, const char *s)
{
	size_t		n = strlen(s);

	return wbuf_i16(b, (int) n) && wbuf_put(b, s, n);
}

static bool
wbuf_uvarint(wbuf *b, uint32_t v)
{
	while (v >= 0x80)
	{
		uint8_t		c = (uint8_t) (v | 0x80);

		if (!wbuf_put(b, &c, 1))
			return false;
		v >>= 7;
	}
	{
		uint8_t		c = (uint8_t) v;

		return wbuf_put(b, &c, 1);
	}
}

/* drop the first n bytes */
void
wbuf_consume(wbuf *b, size_t n)
{
	if (n >= b->len)
		b->len = 0;
	else
	{
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
}

/* a bounds-checked reader; any overrun sets bad */
typedef struct rd
{
	const uint8_t *p;
	size_t		len;
	size_t		off;
	bool		bad;
} rd;

static const uint8_t *
rd_take(rd *r, size_t n)
{
	const uint8_t *at = r->p + r->off;

	if (r->bad || n > r->len - r->off)
	{
		r->bad = true;
		return NULL;
	}
	r->off += n;
	return at;
}

static int32_t
rd_int(rd *r, size_t n)
{
	const uint8_t *x = rd_take(r, n);
	uint32_t	v = 0;
	size_t		i;

	if (x == NULL)
		return 0;
	for (i = 0; i < n; i++)
		v = (v << 8) | x[i];
	return n == 2 ? (int16_t) v : (int32_t) v;
}

static uint32_t
rd_uvarint(rd *r)
{
	uint32_t	v = 0;
	int			shift;

	for (shift = 0; shift < 35; shift += 7)
	{
		const uint8_t *c = rd_take(r, 1);

		if (c == NULL)
			return 0;
		v |= (uint32_t) (*c & 0x7f) << shift;
		if (!(*c & 0x80))
			return v;
	}
	r->bad = true;
	return 0;
}

/* int16-length string; nullable allows -1 */
static void
rd_skip_str(rd *r, bool nullable)
{
	int32_t		n = rd_int(r, 2);

	if (n < 0 && !(nullable && n == -1))
		r->bad = true;
	else if (n > 0)
		rd_take(r, (size_t) n);
}

/* tagged fields: uvarint count, then (uvarint tag, uvarint size, bytes) */
static void
rd_skip_tags(rd *r)
{
	uint32_t	n = rd_uvarint(r);

	while (n-- > 0 && !r->bad)
	{
		rd_uvarint(r);
		rd_take(r, rd_uvarint(r));
	}
}

/* node_id, host, port: copy with host/port pointing at the front */
static bool
copy_broker(rd *r, wbuf *out, port_map_fn map)
{
	int32_t		node = rd_int(r, 4);
	int16_t		hostlen = (int16_t) rd_int(r, 2);
	const uint8_t *host = hostlen > 0 ? rd_take(r, (size_t) hostlen) : NULL;
	int32_t		port = rd_int(r, 4);
	int			front = r->bad ? 0 : map(port);

	if (r->bad || hostlen < 0)
		return false;
	if (!wbuf_i32(out, node))
		return false;
	if (front > 0)
		return wbuf_str(out, FRONT_HOST) && wbuf_i32(out, front);
	return wbuf_i16(out, hostlen) && wbuf_put(out, host, (size_t) hostlen) &&
		wbuf_i32(out, port);
}

/* copy r[from .. current] verbatim */
static bool
copy_span(rd *r, size_t from, wbuf *out)
{
	return !r->bad && wbuf_put(out, r->p + from, r->off - from);
}

static bool
rewrite_api_versions(rd *r, int16_t version, wbuf *out, port_map_fn map)
{
	size_t		from = r->off;
	int16_t		err = (int16_t) rd_int(r, 2);
	bool		flex = version >= 3;
	int32_t		n;
	wbuf		entries = {0};
	int32_t		kept = 0;
	int32_t		i;
	bool		ok;

	(void) map;
	/*
	 * An error (UNSUPPORTED_VERSION: the mock answers ApiVersions up to v2,
	 * librdkafka asks v3 first) lists ApiVersions' own range, in a layout of
	 * the mock's own: pass it on, the client retries with a version it has.
	 */
	if (err != 0)
	{
		r->off = from;
		return !r->bad;
	}
	n = flex ? (int32_t) rd_uvarint(r) - 1 : rd_int(r, 4);
	if (r->bad || n < 0 || n > 10000)
		return false;
	for (i = 0; i < n && !r->bad; i++)
	{
		int16_t		key = (int16_t) rd_int(r, 2);
		int16_t		min = (int16_t) rd_int(r, 2);
		int16_t		max = (int16_t) rd_int(r, 2);
		size_t		tags = r->off;

		if (flex)
			rd_skip_tags(r);
		if (key == API_SASL_HANDSHAKE || key == API_SASL_AUTH ||
			key == API_DESCRIBE_CLUSTER)
			continue;
		if (key == API_METADATA && max > 8)
			max = 8;
		if (key == API_FIND_COORD && max > 2)
			max = 2;
		if (min > max)
			continue;
		wbuf_i16(&entries, key);
		wbuf_i16(&entries, min);
		wbuf_i16(&entries, max);
		if (flex && !wbuf_put(&entries, r->p + tags, r->off - tags))
			r->bad = true;
		kept++;
	}
	/* SaslHandshake v0-1, SaslAuthenticate v0-2, answered by the front */
	wbuf_i16(&entries, API_SASL_HANDSHAKE);
	wbuf_i16(&entries, 0);
	wbuf_i16(&entries, 1);
	if (flex)
		wbuf_put(&entries, "", 1);
	wbuf_i16(&entries, API_SASL_AUTH);
	wbuf_i16(&entries, 0);
	wbuf_i16(&entries, 2);
	if (flex)
		wbuf_put(&entries, "", 1);
	kept += 2;
	ok = !r->bad && wbuf_i16(out, 0) &&
		(flex ? wbuf_uvarint(out, (uint32_t) kept + 1) : wbuf_i32(out, kept)) &&
		entries.data != NULL && wbuf_put(out, entries.data, entries.len);
	free(entries.data);
	return ok;
}

static bool
rewrite_metadata(rd *r, int16_t version, wbuf *out, port_map_fn map)
{
	size_t		from = r->off;
	int32_t		n;
	int32_t		i;

	if (version > 8)
		return false;
	if (version >= 3)
		rd_int(r, 4);			/* throttle_time_ms */
	n = rd_int(r, 4);
	if (r->bad || n < 0 || !copy_span(r, from, out))
		return false;
	for (i = 0; i < n; i++)
	{
		if (!copy_broker(r, out, map))
			return false;
		if (version >= 1)
		{
			from = r->off;
			rd_skip_str(r, true);	/* rack */
			if (!copy_span(r, from, out))
				return false;
		}
	}
	return true;
}

static bool
rewrite_find_coordinator(rd *r, int16_t version, wbuf *out, port_map_fn map)
{
	size_t		from = r->off;

	if (version > 2)
		return false;
	if (version >= 1)
		rd_int(r, 4);			/* throttle_time_ms */
	rd_int(r, 2);				/* error_code */
	if (version >= 1)
		rd_skip_str(r, true);	/* error_message */
	return copy_span(r, from, out) && copy_broker(r, out, map);
}

/* patch the int32 size at out->data[start] to the bytes after it */
static void
set_frame_size(wbuf *out, size_t start)
{
	uint32_t	size = (uint32_t) (out->len - start - 4);
	uint8_t    *p = out->data + start;

	p[0] = size >> 24;
	p[1] = size >> 16;
	p[2] = size >> 8;
	p[3] = size;
}

/*
 * Rewrite one response frame (resp: the payload after the size, starting
 * with the correlation id) into out as a whole frame, size included.
 * Responses of other APIs are copied as they are.  False: malformed.
 */
bool
kafka_rewrite_response(int16_t api_key, int16_t version,
					   const uint8_t *resp, size_t len, port_map_fn map,
					   wbuf *out)
{
	rd			r = {resp, len, 0, false};
	size_t		start = out->len;
	bool		ok;

	if (!wbuf_i32(out, 0) || rd_take(&r, 4) == NULL || !wbuf_put(out, resp, 4))
		return false;
	switch (api_key)
	{
		case API_API_VERSIONS:
			ok = rewrite_api_versions(&r, version, out, map);
			break;
		case API_METADATA:
			ok = rewrite_metadata(&r, version, out, map);
			break;
		case API_FIND_COORD:
			ok = rewrite_find_coordinator(&r, version, out, map);
			break;
		default:
			ok = true;
			break;
	}
	/* the rest, verbatim */
	ok = ok && !r.bad && wbuf_put(out, resp + r.off, len - r.off);
	if (!ok)
	{
		out->len = start;
		return false;
	}
	set_frame_size(out, start);
	return true;
}

/*
 * A request's api_key, api_version, correlation_id, and where its body
 * starts: after client_id, and after the header's tagged fields for the
 * flexible versions the front parses (SaslAuthenticate v2+).
 */
bool
kafka_request_header(const uint8_t *req, size_t len, kafka_req *h)
{
	rd			r = {req, len, 0, false};

	h->api_key = (int16_t) rd_int(&r, 2);
	h->version = (int16_t) rd_int(&r, 2);
	h->corr = rd_int(&r, 4);
	if (r.bad)
		return false;
	rd_skip_str(&r, true);		/* client_id */
	if (h->api_key == API_SASL_AUTH && h->version >= 2)
		rd_skip_tags(&r);
	h->body = r.off;
	return !r.bad;
}

/* SaslHandshake v0-1 request: the mechanism, NUL-terminated into buf */
bool
kafka_sasl_mechanism(const uint8_t *req, size_t len, const kafka_req *h,
					 char *buf, size_t buflen)
{
	rd			r = {req, len, h->body, false};
	int32_t		n = rd_int(&r, 2);
	const uint8_t *s = n >= 0 ? rd_take(&r, (size_t) n) : NULL;

	if (s == NULL || (size_t) n >= buflen)
		return false;
	memcpy(buf, s, (size_t) n);
	buf[n] = '\0';
	return true;
}

/* SaslAuthenticate v0-2 request: the SASL bytes */
bool
kafka_sasl_auth_bytes(const uint8_t *req, size_t len, const kafka_req *h,
					  const uint8_t **bytes, size_t *n)
{
	rd			r = {req, len, h->body, false};
	int64_t		m = h->version >= 2 ? (int64_t) rd_uvarint(&r) - 1 : rd_int(&r, 4);

	*bytes = m >= 0 ? rd_take(&r, (size_t) m) : NULL;
	*n = (size_t) (m > 0 ? m : 0);
	return *bytes != NULL;
}

/* SaslHandshake response (v0 and v1 alike): err, mechanisms [SCRAM-SHA-512] */
bool
kafka_sasl_handshake_response(wbuf *out, int32_t corr, int16_t err)
{
	size_t		start = out->len;
	bool		ok = wbuf_i32(out, 0) && wbuf_i32(out, corr) && wbuf_i16(out, err) &&
		wbuf_i32(out, 1) && wbuf_str(out, "SCRAM-SHA-512");

	if (ok)
		set_frame_size(out, start);
	return ok;
}

/* SaslAuthenticate response v0-2: err, message (NULL: none), SASL bytes */
bool
kafka_sasl_auth_response(wbuf *out, const kafka_req *h, int16_t err,
						 const char *msg, const char *bytes)
{
	size_t		start = out->len;
	size_t		n = bytes ? strlen(bytes) : 0;
	bool		flex = h->version >= 2;
	bool		ok = wbuf_i32(out, 0) && wbuf_i32(out, h->corr) &&
		(!flex || wbuf_put(out, "", 1)) && wbuf_i16(out, err);

	if (flex)
		ok = ok && wbuf_uvarint(out, msg ? (uint32_t) strlen(msg) + 1 : 0) &&
			(!msg || wbuf_put(out, msg, strlen(msg))) &&
			wbuf_uvarint(out, (uint32_t) n + 1);
	else
		ok = ok && (msg ? wbuf_str(out, msg) : wbuf_i16(out, -1)) &&
			wbuf_i32(out, (int32_t) n);
	ok = ok && wbuf_put(out, bytes, n);
	if (h->version >= 1)		/* session_lifetime_ms: no re-authentication */
		ok = ok && wbuf_i32(out, 0) && wbuf_i32(out, 0);
	if (flex)
		ok = ok && wbuf_put(out, "", 1);
	if (ok)
		set_frame_size(out, start);
	return ok;
}
