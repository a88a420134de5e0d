/*-------------------------------------------------------------------------
 *
 * http_metrics.h
 *	  /metrics and /healthz over HTTP (libmicrohttpd)
 *
 * IDENTIFICATION
 *	  common/http_metrics.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_HTTP_METRICS_H
#define TK_HTTP_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

typedef struct tk_http_server tk_http_server;

/* append the Prometheus text to out */
typedef void (*tk_http_metrics_fn) (void *arg, tk_strbuf *out);

/* append a one-line status to out; return true when healthy */
typedef bool (*tk_http_health_fn) (void *arg, tk_strbuf *out);

extern tk_http_server *tk_http_start(const char *listen,
									 tk_http_metrics_fn metrics,
									 tk_http_health_fn health, void *arg,
									 char *errbuf, size_t errlen);
extern void tk_http_stop(tk_http_server *srv);
extern bool tk_http_parse_listen(const char *listen, char *host, size_t hostlen,
								 int *port);

#endif							/* TK_HTTP_METRICS_H */
