/*-------------------------------------------------------------------------
 *
 * delivery.c
 *	  outcome names, libcurl set-up and error text shared by the channels
 *
 * IDENTIFICATION
 *	  consumers/notify/delivery.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>

#include <curl/curl.h>

#include "delivery.h"
#include "delivery_int.h"

const char *
tkn_result_name(tkn_result r)
{
	switch (r)
	{
		case TKN_DELIVERED:
			return "delivered";
		case TKN_GONE:
			return "gone";
		case TKN_PERMANENT:
			return "permanent";
		case TKN_TRANSIENT:
			return "transient";
	}
	return "unknown";
}

bool
tkn_delivery_global_init(char *err, size_t errlen)
{
	CURLcode	rc = curl_global_init(CURL_GLOBAL_DEFAULT);

	if (rc != CURLE_OK)
	{
		tkn_errorf(err, errlen, "could not initialize libcurl: %s",
				   curl_easy_strerror(rc));
		return false;
	}
	return true;
}

void
tkn_delivery_global_cleanup(void)
{
	curl_global_cleanup();
}

void
tkn_errorf(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

tkn_delivery
tkn_outcome(tkn_result result, long status)
{
	tkn_delivery d;

	d.result = result;
	d.status = status;
	d.retry_after = -1;
	return d;
}

void
tkn_quote_reply(char *dst, size_t dstlen, const char *src, size_t n)
{
	size_t		o = 0;
	size_t		i;

	if (dstlen == 0)
		return;
	for (i = 0; i < n && o + 1 < dstlen; i++)
	{
		unsigned char c = (unsigned char) src[i];

		dst[o++] = (c >= 0x20 && c < 0x7f) ? (char) c : ' ';
	}
	/* trim the spaces a trailing CRLF became */
	while (o > 0 && dst[o - 1] == ' ')
		o--;
	dst[o] = '\0';
}
