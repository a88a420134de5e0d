/*-------------------------------------------------------------------------
 *
 * http_metrics.c
 *	  /metrics and /healthz over HTTP (libmicrohttpd)
 *
 * The server runs in libmicrohttpd's own polling thread
 * (MHD_USE_INTERNAL_POLLING_THREAD), so a slow scraper never stalls the
 * daemon's main loop.  Threading contract: the metrics and health
 * callbacks run on that thread, concurrently with the main loop; they must
 * only read state the daemon publishes under its own lock (the relay's
 * relay_metrics.c holds a mutex).  Only GET and HEAD are served:
 *	 /metrics  200, text/plain; version=0.0.4
 *	 /healthz  200 "ok ..." when healthy, 503 "degraded: ..." otherwise
 *	 else	   404
 * The listen address is "HOST:PORT", "[v6addr]:PORT" or ":PORT" (all
 * addresses).
 *
 * IDENTIFICATION
 *	  common/http_metrics.c
 *
 *-------------------------------------------------------------------------
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "http_metrics.h"

struct tk_http_server
{
	struct MHD_Daemon *daemon;
	tk_http_metrics_fn render_metrics;	/* the daemon's /metrics text */
	tk_http_health_fn health;
	void	   *arg;
};

#if MHD_VERSION < 0x00097002
typedef int tk_mhd_result;
#else
typedef enum MHD_Result tk_mhd_result;
#endif

static tk_mhd_result
http_reply(struct MHD_Connection *conn, unsigned int status,
		   const char *content_type, tk_strbuf *body)
{
	struct MHD_Response *resp;
	tk_mhd_result ret;

	resp = MHD_create_response_from_buffer(body->len, body->data ? body->data : "",
										   MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* request handler: runs on libmicrohttpd's thread */
static tk_mhd_result
http_handler(void *cls, struct MHD_Connection *conn, const char *url,
			 const char *method, const char *version, const char *upload_data,
			 size_t *upload_data_size, void **con_cls)
{
	tk_http_server *srv = cls;
	tk_strbuf	body;
	tk_mhd_result ret;

	(void) version;
	(void) upload_data;
	(void) upload_data_size;
	(void) con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
	{
		tk_strbuf_init(&body);
		tk_strbuf_puts(&body, "method not allowed\n");
		ret = http_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", &body);
		tk_strbuf_free(&body);
		return ret;
	}

	tk_strbuf_init(&body);
	if (strcmp(url, "/metrics") == 0)
	{
		srv->render_metrics(srv->arg, &body);
		ret = http_reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", &body);
	}
	else if (strcmp(url, "/healthz") == 0)
	{
		bool		ok = srv->health(srv->arg, &body);

		tk_strbuf_puts(&body, "\n");
		ret = http_reply(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
						 "text/plain", &body);
	}
	else
	{
		tk_strbuf_puts(&body, "not found\n");
		ret = http_reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", &body);
	}
	tk_strbuf_free(&body);
	return ret;
}

bool
tk_http_parse_listen(const char *listen, char *host, size_t hostlen, int *port)
{
	const char *colon;
	const char *h = listen;
	size_t		n;
	char	   *end;
	long		p;

	if (listen[0] == '[')
	{
		const char *rb = strchr(listen, ']');

		if (rb == NULL || rb[1] != ':')
			return false;
		h = listen + 1;
		n = (size_t) (rb - h);
		colon = rb + 1;
	}
	else
	{
		colon = strrchr(listen, ':');
		if (colon == NULL)
			return false;
		n = (size_t) (colon - listen);
	}
	if (n >= hostlen)
		return false;
	memcpy(host, h, n);
	host[n] = '\0';
	p = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || p < 0 || p > 65535)
		return false;
	*port = (int) p;
	return true;
}

tk_http_server *
tk_http_start(const char *listen, tk_http_metrics_fn metrics,
			  tk_http_health_fn health, void *arg, char *errbuf, size_t errlen)
{
	char		host[256];
	char		portstr[16];
	int			port;
	struct addrinfo hints;
	struct addrinfo *ai = NULL;
	tk_http_server *srv;
	int			rc;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (!tk_http_parse_listen(listen, host, sizeof(host), &port))
	{
		snprintf(errbuf, errlen, "invalid listen address \"%s\": expected HOST:PORT", listen);
		return NULL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &ai);
	if (rc != 0)
	{
		snprintf(errbuf, errlen, "could not resolve listen address \"%s\": %s",
				 listen, gai_strerror(rc));
		return NULL;
	}
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;

	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
	{
		freeaddrinfo(ai);
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	srv->render_metrics = metrics;
	srv->health = health;
	srv->arg = arg;
	srv->daemon = MHD_start_daemon(flags, (uint16_t) port, NULL, NULL,
								   http_handler, srv,
								   MHD_OPTION_SOCK_ADDR, ai->ai_addr,
								   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 10,
								   MHD_OPTION_END);
	freeaddrinfo(ai);
	if (srv->daemon == NULL)
	{
		snprintf(errbuf, errlen, "could not listen on \"%s\" for metrics", listen);
		free(srv);
		return NULL;
	}
	return srv;
}

void
tk_http_stop(tk_http_server *srv)
{
	if (srv == NULL)
		return;
	MHD_stop_daemon(srv->daemon);
	free(srv);
}
