/*-------------------------------------------------------------------------
 *
 * delivery.c
 *	  outcome names, libcurl set-up, the classification of libcurl's
 *	  errors and error text shared by the channels
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
		case TKN_UNAVAILABLE:
			return "unavailable";
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

const char *
tkn_curl_unusable(CURLcode rc)
{
	switch (rc)
	{
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_URL_MALFORMAT:
		case CURLE_NOT_BUILT_IN:
			return "the server URL cannot be used: check it";
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_RESOLVE_HOST:
			return "the server's name does not resolve: check the host name and DNS";
		case CURLE_COULDNT_CONNECT:
			return "the server cannot be reached: check that it is up and the host and port";
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_INVALIDCERTSTATUS:
			return "the server's TLS certificate does not verify: check the CA file "
				"(after a certificate rotation, its new CA) and the certificate's "
				"host name and expiry";
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CRL_BADFILE:
			return "the CA file cannot be read: check its path and that it holds PEM certificates";
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_CLIENTCERT:
		case CURLE_SSL_ENGINE_NOTFOUND:
		case CURLE_SSL_ENGINE_SETFAILED:
		case CURLE_SSL_ENGINE_INITFAILED:
			return "the TLS handshake failed: check that the server speaks TLS on this port "
				"(SMTP: smtps:// for TLS from the start, smtp:// with STARTTLS otherwise) "
				"and its TLS versions and ciphers";
		case CURLE_USE_SSL_FAILED:
			return "the server does not offer STARTTLS, which is required: fix the server, "
				"or use smtps:// if it speaks TLS from the start";
		case CURLE_LOGIN_DENIED:
		case CURLE_AUTH_ERROR:
			return "the server refused the login: check the username and password";
		case CURLE_REMOTE_ACCESS_DENIED:
			return "the server refused the session: check that it accepts this client";
		default:
			return NULL;
	}
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
