/*
 * server.c — libmicrohttpd glue: body collection with a cap, routing, auth,
 * replies, streamed replies and the client-disconnect watch.  See http.h.
 *
 * libmicrohttpd calls on_access() several times per request: once with the
 * headers, once per body chunk, once more when the body is complete.  We
 * only dispatch on the last call, so handlers always see the whole body.
 */
#include "http/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/pump.h"
#include "core/log.h"
#include "http/keys.h"

#define MAX_HEADERS 8

struct http_server {
	struct MHD_Daemon *d;
	const struct http_route *routes;
	size_t n_routes;
	http_error_fn on_error;
	void *ud;
	size_t max_body_bytes;
	char *api_key;
	struct http_keys *keys; /* NULL: no keys file */
	int port;
	int quiesced_fd; /* the listening socket after http_server_quiesce, else -1 */
	/* Requests begun and not yet completed (answered or dropped), and an
	 * eventfd signalled when that reaches 0 after the quiesce: a graceful
	 * shutdown waits for the last response to be sent, not only made. */
	atomic_int n_active;
	atomic_bool is_quiesced;
	int idle_efd;
};

struct http_exchange {
	struct http_server *s;
	struct MHD_Connection *conn;
	int fd;
	char *method;
	char *path;
	char *param;
	struct buf body;
	bool is_too_large;
	bool has_replied;
	enum MHD_Result result;
	size_t n_headers;
	char *headers[MAX_HEADERS][2];
};

struct http_opts http_default_opts(void)
{
	struct http_opts o = {
	    .host = "127.0.0.1",
	    .port = 8085,
	    .max_body_bytes = 4u << 20,
	    .idle_timeout_s = 60,
	    .max_connections = 1024,
	};
	return o;
}

const char *http_method(const struct http_exchange *x)
{
	return x->method;
}
const char *http_path(const struct http_exchange *x)
{
	return x->path;
}
const char *http_param(const struct http_exchange *x)
{
	return x->param ? x->param : "";
}

const char *http_body(const struct http_exchange *x, size_t *len)
{
	*len = x->body.len;
	return x->body.data ? x->body.data : "";
}

const char *http_header(const struct http_exchange *x, const char *name)
{
	return MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND, name);
}

void http_add_header(struct http_exchange *x, const char *name, const char *value)
{
	if (x->n_headers == MAX_HEADERS)
		return;
	x->headers[x->n_headers][0] = strdup(name);
	x->headers[x->n_headers][1] = strdup(value);
	x->n_headers++;
}

static void queue(struct http_exchange *x, int status, const char *content_type,
                  struct MHD_Response *r)
{
	if (!r) {
		x->result = MHD_NO;
		return;
	}
	if (content_type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	for (size_t i = 0; i < x->n_headers; i++)
		if (x->headers[i][0] && x->headers[i][1])
			MHD_add_response_header(r, x->headers[i][0], x->headers[i][1]);
	x->result = MHD_queue_response(x->conn, (unsigned)status, r);
	MHD_destroy_response(r);
}

void http_reply(struct http_exchange *x, int status, const char *content_type, const char *body,
                size_t len)
{
	if (x->has_replied)
		return;
	x->has_replied = true;
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	queue(x, status, content_type, r);
}

struct stream_ctx {
	http_pull_fn pull;
	void (*free_ud)(void *);
	void *ud;
	bool has_ended;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream_ctx *sc = cls;
	(void)pos;
	if (sc->has_ended)
		return MHD_CONTENT_READER_END_OF_STREAM;
	ssize_t n = sc->pull(sc->ud, buf, max);
	if (n > 0)
		return n;
	sc->has_ended = true;
	return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
	struct stream_ctx *sc = cls;
	if (sc->free_ud)
		sc->free_ud(sc->ud);
	free(sc);
}

void http_reply_stream(struct http_exchange *x, int status, const char *content_type,
                       http_pull_fn pull, void (*free_ud)(void *), void *ud)
{
	struct stream_ctx *sc = calloc(1, sizeof *sc);
	if (x->has_replied || !sc) {
		free(sc);
		if (free_ud)
			free_ud(ud);
		if (!x->has_replied)
			x->result = MHD_NO;
		return;
	}
	x->has_replied = true;
	*sc = (struct stream_ctx){pull, free_ud, ud, false};
	struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
	                                                           stream_read, sc, stream_free);
	if (!r) {
		stream_free(sc);
		x->result = MHD_NO;
		return;
	}
	/* Proxies must pass events through as they come. */
	MHD_add_response_header(r, "Cache-Control", "no-cache");
	MHD_add_response_header(r, "X-Accel-Buffering", "no");
	queue(x, status, content_type, r);
}

enum http_wait_result http_wait(struct http_exchange *x, int fd, int timeout_ms)
{
	struct pollfd p[2] = {
	    {.fd = fd, .events = POLLIN},
	    /* POLLRDHUP: the peer closed its side; we never ask for POLLIN
	     * here, so a pipelined next request does not look like news. */
	    {.fd = x->fd, .events = POLLRDHUP},
	};
	nfds_t n_fds = x->fd >= 0 ? 2 : 1;
	long long deadline = timeout_ms >= 0 ? brg_now_ms() + timeout_ms : -1;
	int left = timeout_ms;
	for (;;) {
		/* A pump (core/pump.h) may return early, having moved its own
		 * work: only the clock says when the time is up. */
		int n = pump_poll(p, n_fds, left);
		if (n < 0 && errno != EINTR)
			return HTTP_WAIT_GONE; /* cannot watch the client: treat as gone */
		if (n > 0) {
			if (x->fd >= 0 &&
			    (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
				return HTTP_WAIT_GONE;
			if (p[0].revents & (POLLERR | POLLNVAL))
				return HTTP_WAIT_GONE;
			if (p[0].revents)
				return HTTP_WAIT_READY;
		}
		if (deadline >= 0) {
			long long now = brg_now_ms();
			if (now >= deadline)
				return HTTP_WAIT_TIMEOUT;
			left = (int)(deadline - now);
		}
	}
}

/* Matches 'path' against 'pattern'; on a match with "{id}" stores the
 * matched text in *param (malloc'd). */
static bool route_match(const char *pattern, const char *path, char **param)
{
	const char *hole = strstr(pattern, "{id}");
	if (!hole)
		return strcmp(pattern, path) == 0;
	size_t pre = (size_t)(hole - pattern);
	const char *suf = hole + 4;
	size_t suf_len = strlen(suf), path_len = strlen(path);
	if (path_len <= pre + suf_len || strncmp(path, pattern, pre) != 0 ||
	    strcmp(path + path_len - suf_len, suf) != 0)
		return false;
	*param = strndup(path + pre, path_len - pre - suf_len);
	return *param != NULL;
}

static bool is_authorized(const struct http_server *s, const struct http_exchange *x)
{
	if (!s->api_key && !s->keys)
		return true;
	const char *h = http_header(x, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	bool ok = false;
	if (s->api_key) {
		/* Constant-time over the key's length: no early exit on a mismatch. */
		size_t n = strlen(s->api_key), m = strlen(h);
		unsigned diff = (unsigned)(n ^ m);
		for (size_t i = 0; i < n; i++)
			diff |= (unsigned char)s->api_key[i] ^ (unsigned char)(i < m ? h[i] : 0);
		ok = diff == 0;
	}
	if (s->keys)
		ok |= http_keys_match(s->keys, h);
	return ok;
}

static void dispatch(struct http_exchange *x)
{
	struct http_server *s = x->s;
	bool path_known = false;
	for (size_t i = 0; i < s->n_routes; i++) {
		const struct http_route *r = &s->routes[i];
		char *param = NULL;
		if (!route_match(r->pattern, x->path, &param))
			continue;
		path_known = true;
		if (strcmp(r->method, x->method) != 0) {
			free(param);
			continue;
		}
		x->param = param;
		if (!r->is_public && !is_authorized(s, x)) {
			s->on_error(s->ud, x, BRG_E_UNAUTHORIZED, "missing or invalid API key");
			return;
		}
		/* Every wait on this thread goes through http_wait (core/pump.h):
		 * a remote transfer may run its I/O here, without a hand-off. */
		pump_thread_enable();
		r->fn(s->ud, x);
		return;
	}
	if (path_known)
		s->on_error(s->ud, x, BRG_E_METHOD, "method not allowed for this path");
	else
		s->on_error(s->ud, x, BRG_E_NOT_FOUND, "no such endpoint");
}

static void reply_too_large(struct http_exchange *x)
{
	char msg[128];
	snprintf(msg, sizeof msg, "request body exceeds the %zu-byte limit", x->s->max_body_bytes);
	x->s->on_error(x->s->ud, x, BRG_E_TOO_LARGE, msg);
}

static struct http_exchange *exchange_new(struct http_server *s, struct MHD_Connection *conn,
                                          const char *url, const char *method)
{
	struct http_exchange *x = calloc(1, sizeof *x);
	if (!x)
		return NULL;
	x->s = s;
	x->conn = conn;
	x->method = strdup(method);
	x->path = strdup(url);
	x->result = MHD_YES;
	buf_init(&x->body, s->max_body_bytes);
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	x->fd = ci ? ci->connect_fd : -1;
	if (!x->method || !x->path) {
		free(x->method);
		free(x->path);
		free(x);
		return NULL;
	}
	return x;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct http_exchange *x = *con_cls;
	(void)version;
	if (!x) {
		x = exchange_new(s, conn, url, method);
		if (!x)
			return MHD_NO;
		*con_cls = x;
		atomic_fetch_add(&s->n_active, 1);
		/* Refuse an announced oversize body before reading any of it. */
		const char *cl =
		    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > s->max_body_bytes) {
			x->is_too_large = true;
			reply_too_large(x);
		}
		return x->result;
	}
	if (*upload_data_size) {
		if (!x->is_too_large && buf_append(&x->body, upload_data, *upload_data_size))
			x->is_too_large = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (x->has_replied)
		return x->result;
	if (x->is_too_large)
		reply_too_large(x);
	else
		dispatch(x);
	if (!x->has_replied)
		x->result = MHD_NO; /* the handler dropped the client on purpose */
	return x->result;
}

static void signal_idle(struct http_server *s)
{
	uint64_t one = 1;
	if (write(s->idle_efd, &one, sizeof one) < 0)
		log_warn("http: cannot signal that the last request ended");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct http_exchange *x = *con_cls;
	(void)conn;
	if (!x)
		return;
	if (atomic_fetch_sub(&s->n_active, 1) == 1 && atomic_load(&s->is_quiesced))
		signal_idle(s);
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		log_debug("http: %s %s ended early (libmicrohttpd reason %d)", x->method, x->path,
		          (int)toe);
	for (size_t i = 0; i < x->n_headers; i++) {
		free(x->headers[i][0]);
		free(x->headers[i][1]);
	}
	buf_fini(&x->body);
	free(x->param);
	free(x->method);
	free(x->path);
	free(x);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	(void)cls;
	vsnprintf(line, sizeof line, fmt, ap);
	size_t n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	log_debug("http: %s", line);
}

static enum brg_err resolve(const struct http_opts *o, struct sockaddr_storage *ss,
                            struct brg_error *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char port[16];
	snprintf(port, sizeof port, "%d", o->port);
	int rc = getaddrinfo(o->host, port, &hints, &res);
	if (rc != 0 || !res)
		return brg_fail(err, BRG_E_CONFIG, "cannot resolve host '%s': %s", o->host,
		                gai_strerror(rc));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return BRG_OK;
}

enum brg_err http_server_start(const struct http_opts *o, const struct http_route *routes,
                               size_t n_routes, http_error_fn on_error, void *ud,
                               struct http_server **out, struct brg_error *err)
{
	struct sockaddr_storage ss = {0};
	enum brg_err rc = resolve(o, &ss, err);
	if (rc)
		return rc;
	struct http_server *s = calloc(1, sizeof *s);
	if (!s)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	*s = (struct http_server){.routes = routes,
	                          .n_routes = n_routes,
	                          .on_error = on_error,
	                          .ud = ud,
	                          .max_body_bytes = o->max_body_bytes,
	                          .quiesced_fd = -1,
	                          .idle_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
	if (s->idle_efd < 0) {
		free(s);
		return brg_fail(err, BRG_E_RESOURCE, "cannot create an eventfd: %s",
		                strerror(errno));
	}
	if (o->api_key && *o->api_key)
		s->api_key = strdup(o->api_key);
	if (o->api_keys_file && (rc = http_keys_open(o->api_keys_file, &s->keys, err))) {
		free(s->api_key);
		close(s->idle_efd);
		free(s);
		return rc;
	}
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	                 MHD_USE_POLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->d = MHD_start_daemon(
	    /* The logger goes first so that it also sees errors about the rest. */
	    flags, (uint16_t)o->port, NULL, NULL, on_access, s, MHD_OPTION_EXTERNAL_LOGGER,
	    on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
	    s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->idle_timeout_s,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections, MHD_OPTION_END);
	if (!s->d) {
		free(s->api_key);
		http_keys_free(s->keys);
		close(s->idle_efd);
		free(s);
		return brg_fail(err, BRG_E_CONFIG, "cannot listen on %s:%d (port in use?)", o->host,
		                o->port);
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di ? di->port : o->port;
	*out = s;
	return BRG_OK;
}

int http_server_port(const struct http_server *s)
{
	return s->port;
}

int http_server_idle_fd(const struct http_server *s)
{
	return s->idle_efd;
}

void http_server_quiesce(struct http_server *s)
{
	if (!s || atomic_exchange(&s->is_quiesced, true))
		return;
	/* Either this sees 0 or the last on_completed sees the flag. */
	if (atomic_load(&s->n_active) == 0)
		signal_idle(s);
	MHD_socket fd = MHD_quiesce_daemon(s->d);
	if (fd == MHD_INVALID_SOCKET)
		return;
	/* libmicrohttpd no longer polls it, but its threads may still hold it
	 * until MHD_stop_daemon: shut it down now, close it after.  On Linux a
	 * listening socket shut down for reading leaves the listen state, so
	 * connection attempts are refused and the backlog is reset. */
	if (shutdown(fd, SHUT_RDWR) != 0)
		log_warn("http: cannot shut the listening socket down: %s", strerror(errno));
	s->quiesced_fd = fd;
}

void http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	if (s->quiesced_fd >= 0)
		close(s->quiesced_fd);
	close(s->idle_efd);
	free(s->api_key);
	http_keys_free(s->keys);
	free(s);
}
