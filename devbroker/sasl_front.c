/*-------------------------------------------------------------------------
 *
 * sasl_front.c
 *	  --sasl-ssl: a TLS + SASL/SCRAM-SHA-512 listener in front of each broker
 *
 * librdkafka's mock cluster speaks PLAINTEXT only and answers no SASL
 * request, so with --sasl-ssl CERT,KEY the devbroker puts one front
 * listener on 127.0.0.1 before each mock broker and prints the fronts'
 * addresses as bootstrap.servers.  A client connection to a front goes:
 *
 *	1. TLS (OpenSSL, the given certificate chain and key; TLS 1.2+);
 *	2. Kafka's SASL flow, decided by sasl_auth.c: ApiVersions is forwarded
 *	   to the mock and its response gets SaslHandshake and SaslAuthenticate
 *	   added (kafka_wire.c); SaslHandshake and SaslAuthenticate are answered
 *	   here, carrying the SCRAM-SHA-512 exchange (scram.c); a wrong password
 *	   gets SASL_AUTHENTICATION_FAILED (58), then the connection closes;
 *	3. then whole frames are relayed both ways, the responses that name
 *	   brokers (Metadata, FindCoordinator) rewritten to the fronts' ports,
 *	   so a client is never sent to a mock port.
 *
 * One detached thread per connection (a dev tool: a handful of clients),
 * the client socket non-blocking under OpenSSL, the mock's socket blocking
 * (loopback).  Responses are matched to requests by correlation id, to know
 * their API and version.  Bad input (a TLS failure, an oversized or
 * malformed frame) closes that connection only.  Passwords are never seen
 * here: scram.c holds only salted keys.
 *
 * IDENTIFICATION
 *	  devbroker/sasl_front.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "devbroker.h"

#define MAX_FRAME			(100 * 1024 * 1024)
#define PENDING_MAX			1024	/* requests awaiting a response, per conn */
#define IO_TIMEOUT_MS		30000

static SSL_CTX *ssl_ctx;
static int	nfront;
static int	mock_ports[DEVBROKER_MAX_BROKERS];
static int	front_ports[DEVBROKER_MAX_BROKERS];
static int	listen_fds[DEVBROKER_MAX_BROKERS];

typedef struct conn
{
	int			cfd;			/* client, non-blocking, under ssl */
	int			bfd;			/* mock broker, blocking */
	SSL		   *ssl;
	int			mock_port;
	char		peer[64];
	wbuf		cin;			/* bytes read from the client */
	wbuf		bin;			/* bytes read from the mock */
	wbuf		out;			/* a frame being built for the client */
	sasl_auth	auth;			/* the SASL state (sasl_auth.c) */
	kafka_req	pending[PENDING_MAX];	/* ring, oldest overwritten */
	int			npending;
	int			pending_next;
} conn;

static int
map_port(int mock_port)
{
	int			i;

	for (i = 0; i < nfront; i++)
		if (mock_ports[i] == mock_port)
			return front_ports[i];
	return 0;
}

static const char *
ssl_error_text(void)
{
	static __thread char buf[256];
	unsigned long e = ERR_get_error();

	if (e == 0)
		return errno ? strerror(errno) : "connection closed";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

/* wait for the client socket to become readable/writable per SSL's wish */
static bool
wait_ssl(conn *c, int ret)
{
	struct pollfd p = {c->cfd, 0, 0};
	int			e = SSL_get_error(c->ssl, ret);

	if (e == SSL_ERROR_WANT_READ)
		p.events = POLLIN;
	else if (e == SSL_ERROR_WANT_WRITE)
		p.events = POLLOUT;
	else
		return false;
	return poll(&p, 1, IO_TIMEOUT_MS) == 1;
}

static bool
ssl_write_all(conn *c, const uint8_t *data, size_t len)
{
	while (len > 0)
	{
		int			n = SSL_write(c->ssl, data, len > 65536 ? 65536 : (int) len);

		if (n > 0)
		{
			data += n;
			len -= (size_t) n;
		}
		else if (!wait_ssl(c, n))
			return false;
	}
	return true;
}

static bool
send_all(int fd, const uint8_t *data, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = send(fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		data += n;
		len -= (size_t) n;
	}
	return true;
}

/* send c->out to the client and empty it */
static bool
flush_out(conn *c)
{
	bool		ok = ssl_write_all(c, c->out.data, c->out.len);

	c->out.len = 0;
	return ok;
}

static void
remember(conn *c, const kafka_req *h)
{
	c->pending[c->pending_next] = *h;
	c->pending_next = (c->pending_next + 1) % PENDING_MAX;
	if (c->npending < PENDING_MAX)
		c->npending++;
}

static bool
forward(conn *c, const kafka_req *h, const uint8_t *frame, size_t len)
{
	remember(c, h);
	return send_all(c->bfd, frame, len);
}

/* one whole request frame from the client (size included) */
static bool
client_frame(conn *c, const uint8_t *frame, size_t len)
{
	kafka_req	h;
	sasl_action act = sasl_auth_request(&c->auth, frame + 4, len - 4, &h, &c->out);

	if (c->out.len > 0 && !flush_out(c))
		return false;
	if (act == SASL_FORWARD)
		return forward(c, &h, frame, len);
	return act == SASL_REPLY;
}

/* one whole response frame from the mock (size included) */
static bool
broker_frame(conn *c, const uint8_t *frame, size_t len)
{
	int32_t		corr = (int32_t) (((uint32_t) frame[4] << 24) | ((uint32_t) frame[5] << 16) |
								  ((uint32_t) frame[6] << 8) | frame[7]);
	int			i;

	for (i = 0; i < c->npending; i++)
	{
		int			k = (c->pending_next - 1 - i + PENDING_MAX) % PENDING_MAX;
		kafka_req	h = c->pending[k];

		if (h.corr != corr)
			continue;
		if (!kafka_rewrite_response(h.api_key, h.version, frame + 4, len - 4,
									map_port, &c->out))
		{
			tk_log(TK_LOG_WARNING, "SASL_SSL client %s: could not rewrite the %s v%d response (%zu bytes), closing",
				   c->peer, devbroker_api_key_name(h.api_key), h.version, len - 4);
			return false;
		}
		return flush_out(c);
	}
	/* not a request we know of: pass it on */
	return ssl_write_all(c, frame, len);
}

/* hand each whole frame in buf to fn; false: close the connection */
static bool
frames(conn *c, wbuf *buf, bool (*fn) (conn *, const uint8_t *, size_t))
{
	while (buf->len >= 4)
	{
		uint32_t	size = ((uint32_t) buf->data[0] << 24) | ((uint32_t) buf->data[1] << 16) |
			((uint32_t) buf->data[2] << 8) | buf->data[3];

		if (size < 4 || size > MAX_FRAME)
		{
			tk_log(TK_LOG_WARNING, "SASL_SSL client %s: frame of %u bytes, closing", c->peer, size);
			return false;
		}
		if (buf->len < 4 + (size_t) size)
			break;
		if (!fn(c, buf->data, 4 + (size_t) size))
			return false;
		wbuf_consume(buf, 4 + (size_t) size);
	}
	return true;
}

/* drain what the client sent; false: closed or broken */
static bool
read_client(conn *c)
{
	uint8_t		tmp[16384];

	for (;;)
	{
		int			n = SSL_read(c->ssl, tmp, sizeof(tmp));

		if (n > 0)
		{
			if (!wbuf_put(&c->cin, tmp, (size_t) n))
				return false;
			continue;
		}
		if (SSL_get_error(c->ssl, n) == SSL_ERROR_WANT_READ)
			return frames(c, &c->cin, client_frame);
		return false;
	}
}

static bool
read_broker(conn *c)
{
	uint8_t		tmp[16384];
	ssize_t		n = recv(c->bfd, tmp, sizeof(tmp), 0);

	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0)
	{
		tk_log(TK_LOG_INFO, "SASL_SSL client %s: broker on port %d closed the connection",
			   c->peer, c->mock_port);
		return false;
	}
	return wbuf_put(&c->bin, tmp, (size_t) n) && frames(c, &c->bin, broker_frame);
}

static bool
tls_accept(conn *c)
{
	for (;;)
	{
		int			rc = SSL_accept(c->ssl);

		if (rc == 1)
			return true;
		if (!wait_ssl(c, rc))
		{
			tk_log(TK_LOG_WARNING, "SASL_SSL client %s: TLS handshake failed (%s), closing",
				   c->peer, ssl_error_text());
			return false;
		}
	}
}

static int
connect_broker(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
	int			fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int			one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0)
	{
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void *
conn_main(void *arg)
{
	conn	   *c = arg;

	c->ssl = SSL_new(ssl_ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->cfd) != 1 || !tls_accept(c))
		goto done;
	c->bfd = connect_broker(c->mock_port);
	if (c->bfd < 0)
	{
		tk_log(TK_LOG_WARNING, "SASL_SSL client %s: broker on port %d is not reachable (%s), closing",
			   c->peer, c->mock_port, strerror(errno));
		goto done;
	}
	for (;;)
	{
		struct pollfd p[2] = {{c->cfd, POLLIN, 0}, {c->bfd, POLLIN, 0}};

		if (SSL_pending(c->ssl) == 0 && poll(p, 2, -1) < 0)
		{
			if (errno == EINTR)
				continue;
			break;
		}
		if ((SSL_pending(c->ssl) > 0 || p[0].revents) && !read_client(c))
			break;
		if (p[1].revents && !read_broker(c))
			break;
	}
	if (!c->auth.authed)
		tk_log(TK_LOG_DEBUG, "SASL_SSL client %s closed before authenticating", c->peer);

done:
	if (c->ssl != NULL)
	{
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	close(c->cfd);
	if (c->bfd >= 0)
		close(c->bfd);
	scram_session_free(&c->auth.scram);
	free(c->cin.data);
	free(c->bin.data);
	free(c->out.data);
	free(c);
	return NULL;
}

static void *
accept_main(void *arg)
{
	(void) arg;
	for (;;)
	{
		struct pollfd p[DEVBROKER_MAX_BROKERS];
		int			i;

		for (i = 0; i < nfront; i++)
		{
			p[i].fd = listen_fds[i];
			p[i].events = POLLIN;
			p[i].revents = 0;
		}
		if (poll(p, (nfds_t) nfront, -1) < 0)
			continue;
		for (i = 0; i < nfront; i++)
		{
			struct sockaddr_in sa;
			socklen_t	salen = sizeof(sa);
			int			fd;
			conn	   *c;
			pthread_t	th;
			int			one = 1;

			if (!p[i].revents)
				continue;
			fd = accept4(listen_fds[i], (struct sockaddr *) &sa, &salen,
						 SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			c = calloc(1, sizeof(conn));
			if (c == NULL)
			{
				close(fd);
				continue;
			}
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			c->cfd = fd;
			c->bfd = -1;
			c->mock_port = mock_ports[i];
			c->auth.peer = c->peer;
			snprintf(c->peer, sizeof(c->peer), "%s:%d (front port %d)",
					 inet_ntoa(sa.sin_addr), ntohs(sa.sin_port), front_ports[i]);
			if (pthread_create(&th, NULL, conn_main, c) != 0)
			{
				tk_log(TK_LOG_WARNING, "SASL_SSL client %s: no thread, closing", c->peer);
				close(fd);
				free(c);
				continue;
			}
			pthread_detach(th);
		}
	}
	return NULL;
}

static int
listen_loopback(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t	salen = sizeof(sa);
	int			fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0 ||
		listen(fd, 64) != 0 ||
		getsockname(fd, (struct sockaddr *) &sa, &salen) != 0)
	{
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

/*
 * Start a front per broker of mock_bootstrap ("host:port,...").  Sets
 * *front_bootstrap (malloc'd) to the fronts' list.  Logs and returns -1
 * on a bad certificate/key or a socket failure.
 */
int
sasl_front_start(const char *mock_bootstrap, const char *cert,
				 const char *key, char **front_bootstrap)
{
	const char *p = mock_bootstrap;
	wbuf		list = {0};
	pthread_t	th;

	ssl_ctx = SSL_CTX_new(TLS_server_method());
	if (ssl_ctx == NULL ||
		!SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION) ||
		SSL_CTX_use_certificate_chain_file(ssl_ctx, cert) != 1 ||
		SSL_CTX_use_PrivateKey_file(ssl_ctx, key, SSL_FILETYPE_PEM) != 1 ||
		SSL_CTX_check_private_key(ssl_ctx) != 1)
	{
		tk_log(TK_LOG_ERROR, "--sasl-ssl: could not load certificate \"%s\" and key \"%s\": %s",
			   cert, key, ssl_error_text());
		return -1;
	}
	SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

	while (p != NULL && *p != '\0' && nfront < DEVBROKER_MAX_BROKERS)
	{
		const char *colon = strchr(p, ':');
		char		addr[64];
		int			n;

		if (colon == NULL)
			break;
		mock_ports[nfront] = atoi(colon + 1);
		listen_fds[nfront] = listen_loopback(&front_ports[nfront]);
		if (listen_fds[nfront] < 0)
		{
			tk_log(TK_LOG_ERROR, "--sasl-ssl: could not listen on 127.0.0.1: %s", strerror(errno));
			return -1;
		}
		n = snprintf(addr, sizeof(addr), "%s127.0.0.1:%d", nfront ? "," : "",
					 front_ports[nfront]);
		if (!wbuf_put(&list, addr, (size_t) n))
			return -1;
		tk_log(TK_LOG_INFO, "SASL_SSL front 127.0.0.1:%d -> broker 127.0.0.1:%d",
			   front_ports[nfront], mock_ports[nfront]);
		nfront++;
		p = strchr(colon, ',');
		if (p != NULL)
			p++;
	}
	if (nfront == 0 || !wbuf_put(&list, "", 1))
		return -1;
	*front_bootstrap = (char *) list.data;
	if (pthread_create(&th, NULL, accept_main, NULL) != 0)
	{
		tk_log(TK_LOG_ERROR, "--sasl-ssl: could not start the listener thread");
		return -1;
	}
	pthread_detach(th);
	return 0;
}
