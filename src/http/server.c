/*
 * server.c — brigade's HTTP/1.1 server: the listening socket, one thread
 * per connection, and each connection's request loop.  See http.h, and
 * docs/internals/http.md for why it is ours and not libmicrohttpd.
 *
 * A connection's thread blocks in recv() for the next request (the
 * socket's receive timeout is the idle limit), parses its head
 * (http/parse.h), reads its body, and runs the handler itself; the
 * handler's reply goes to the socket as soon as it is made (exchange.c).
 * Bytes past one request are the next one's (pipelining).  An accept
 * thread starts the connection threads and joins the finished ones;
 * http_server_stop shuts every socket down, which wakes every blocked
 * thread, and joins them all.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "http/http_int.h"
#include "http/keys.h"

#define READ_PIECE   (16 * 1024)
#define LINGER_MS    1000 /* reading what a refused client still sends */
#define LINGER_BYTES (4u << 20)

struct conn {
	struct http_server *s;
	struct conn *next;
	pthread_t thread;
	int fd; /* -1 once closed; changed under s->mu */
	bool is_done;
	char *in; /* bytes read and not yet used: the head, then what follows */
	size_t in_len, in_cap;
	struct buf out, extra; /* reply heads and added headers, reused */
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

/* ---- reading ------------------------------------------------------------ */

/* Reads more into c->in, which never moves once allocated: the request's
 * method, path and headers point into it while its body is read.
 * Returns the bytes read; 0 when the client closed, went silent past the
 * idle limit, or the buffer is full. */
static size_t read_more(struct conn *c)
{
	if (!c->in) {
		c->in_cap = HTTP_MAX_HEAD + READ_PIECE;
		if (!(c->in = malloc(c->in_cap)))
			return 0;
	}
	if (c->in_len == c->in_cap)
		return 0;
	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0; /* closed, reset, or the receive timeout */
		c->in_len += (size_t)n;
		return (size_t)n;
	}
}

/* Reads the body the head announced into x->body, starting with the
 * bytes already read past the head (at c->in + *used; *used grows by
 * what the body took).  Returns 0, or the status to refuse it with. */
static int read_body(struct conn *c, struct http_exchange *x, const struct http_framing *f,
                     size_t *used)
{
	if (f->is_chunked) {
		struct http_chunked ch = {0};
		size_t head_len = *used;
		for (;;) {
			size_t n = 0;
			enum http_chunked_result r =
			    http_chunked_feed(&ch, c->in + *used, c->in_len - *used, &x->body, &n);
			*used += n;
			if (r == HTTP_CHUNKED_DONE)
				return 0;
			if (r == HTTP_CHUNKED_BAD)
				return 400;
			if (r == HTTP_CHUNKED_TOO_LARGE)
				return 413;
			/* All taken: read the next piece over it.  The head stays, and
			 * it is at most HTTP_MAX_HEAD, so there is room. */
			c->in_len = *used = head_len;
			if (!read_more(c))
				return -1;
		}
	}
	if (f->length > x->s->max_body_bytes)
		return 413;
	size_t want = (size_t)f->length;
	size_t have = c->in_len - *used < want ? c->in_len - *used : want;
	if (buf_append(&x->body, c->in + *used, have))
		return 413;
	*used += have;
	char piece[READ_PIECE];
	while (x->body.len < want) {
		size_t room = want - x->body.len < sizeof piece ? want - x->body.len : sizeof piece;
		ssize_t n = recv(c->fd, piece, room, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (buf_append(&x->body, piece, (size_t)n))
			return 413;
	}
	return 0;
}

/* Ends a connection whose client may still be sending (a refused body):
 * closing with unread bytes would reset it, and the client could lose
 * the answer it was sent.  Reads and drops what comes for a moment. */
static void linger(int fd)
{
	if (shutdown(fd, SHUT_WR) != 0)
		return;
	char sink[READ_PIECE];
	size_t total = 0;
	long long deadline = brg_now_ms() + LINGER_MS;
	for (long long left = LINGER_MS; left > 0 && total < LINGER_BYTES;
	     left = deadline - brg_now_ms()) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)left) <= 0)
			return;
		ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
		if (n <= 0)
			return;
		total += (size_t)n;
	}
}

/* ---- one request ---------------------------------------------------------- */

static void request_begin(struct http_server *s)
{
	atomic_fetch_add(&s->n_active, 1);
}

static void signal_idle(struct http_server *s)
{
	uint64_t one = 1;
	if (write(s->idle_efd, &one, sizeof one) < 0)
		log_warn("http: cannot signal that the last request ended");
}

static void request_end(struct http_server *s)
{
	if (atomic_fetch_sub(&s->n_active, 1) == 1 && atomic_load(&s->is_quiesced))
		signal_idle(s);
}

/* NUL-terminates the method, the path (decoded) and every field value in
 * place: what follows each is a separator the parser has already read. */
static bool terminate_in_place(struct http_head *h, struct http_exchange *x)
{
	((char *)h->method)[h->method_len] = '\0';
	char *target = (char *)h->target;
	target[h->target_len] = '\0';
	long n = http_decode_path(target, h->target_len);
	if (n < 0)
		return false;
	target[n] = '\0';
	for (size_t i = 0; i < h->n_fields; i++) {
		((char *)h->fields[i].name)[h->fields[i].name_len] = '\0';
		if (h->fields[i].value_len)
			((char *)h->fields[i].value)[h->fields[i].value_len] = '\0';
	}
	x->method = h->method;
	x->path = target;
	return true;
}

static const char *refusal(int status)
{
	switch (status) {
	case 413:
		return "request body is too large";
	case 417:
		return "only Expect: 100-continue is supported";
	case 431:
		return "request head is too large";
	case 501:
		return "unsupported Transfer-Encoding";
	case 505:
		return "only HTTP/1.0 and HTTP/1.1 are supported";
	default:
		return "malformed HTTP request";
	}
}

/* Answers a request http/ refuses itself.  413 keeps its limit in the
 * message; the others are protocol errors. */
static void refuse(struct http_exchange *x, int status)
{
	if (status == 413) {
		char msg[128];
		snprintf(msg, sizeof msg, "request body exceeds the %zu-byte limit",
		         x->s->max_body_bytes);
		http_fail(x, 413, BRG_E_TOO_LARGE, msg);
		return;
	}
	http_fail(x, status, BRG_E_BAD_REQUEST, refusal(status));
}

/* Starts an exchange on c: counted as in progress until request_end. */
static void exchange_begin(struct conn *c, struct http_exchange *x, int minor)
{
	*x = (struct http_exchange){.s = c->s,
	                            .fd = c->fd,
	                            .minor = minor,
	                            .method = "",
	                            .path = "",
	                            .extra = &c->extra,
	                            .out = &c->out};
	buf_reset(&c->extra);
	buf_init(&x->body, c->s->max_body_bytes);
	request_begin(c->s);
}

/* Serves the request whose head is c->in[0, head_len).  Returns whether
 * the connection carries on; on true, c->in holds only what followed. */
static bool serve(struct conn *c, struct http_head *h, size_t head_len)
{
	struct http_server *s = c->s;
	struct http_exchange x;
	exchange_begin(c, &x, h->minor);
	struct http_framing f = {0};
	int status = terminate_in_place(h, &x) ? http_head_framing(h, &f) : 400;
	x.head = h;
	x.is_head = strcmp(x.method, "HEAD") == 0;
	x.is_keep_alive = f.is_keep_alive;
	size_t used = head_len;
	bool has_body = f.is_chunked || f.length > 0;
	if (!status && f.expects_continue && has_body && c->in_len == head_len &&
	    (f.is_chunked || f.length <= s->max_body_bytes))
		(void)http_send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, NULL, 0);
	if (!status)
		status = read_body(c, &x, &f, &used);
	bool has_read_all = status == 0;
	if (status > 0)
		refuse(&x, status);
	else if (status == 0)
		http_dispatch(&x);
	if (x.stream.pull)
		http_run_stream(&x);
	request_end(s);
	bool carries_on = has_read_all && x.has_replied && !x.has_failed && x.is_keep_alive;
	if (status > 0 && x.has_replied && !x.has_failed)
		linger(c->fd);
	buf_fini(&x.body);
	free(x.param);
	if (carries_on) {
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;
	}
	return carries_on;
}

/* ---- connections ---------------------------------------------------------- */

static void conn_close(struct conn *c)
{
	pthread_mutex_lock(&c->s->mu);
	close(c->fd);
	c->fd = -1;
	c->is_done = true;
	c->s->n_conns--;
	pthread_mutex_unlock(&c->s->mu);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct http_head h;
	for (;;) {
		long n = http_parse_head(c->in, c->in_len, &h);
		if ((n == 0 && c->in_len >= HTTP_MAX_HEAD) || n > HTTP_MAX_HEAD)
			n = -431;
		if (n == 0) {
			if (!read_more(c))
				break;
			continue;
		}
		if (n < 0) {
			struct http_exchange x;
			exchange_begin(c, &x, 1);
			refuse(&x, (int)-n);
			request_end(c->s);
			buf_fini(&x.body);
			linger(c->fd);
			break;
		}
		if (!serve(c, &h, (size_t)n))
			break;
	}
	conn_close(c);
	return NULL;
}

static void set_timeouts(int fd, int seconds)
{
	struct timeval tv = {.tv_sec = seconds > 0 ? seconds : 0};
	int one = 1;
	/* Replies are written whole, and stream pieces must not wait for an
	 * acknowledgement of the one before. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static void conn_free(struct conn *c)
{
	free(c->in);
	buf_fini(&c->out);
	buf_fini(&c->extra);
	free(c);
}

/* Joins and frees the connections whose threads have finished.  Called
 * with s->mu held. */
static void reap(struct http_server *s)
{
	for (struct conn **p = &s->conns; *p;) {
		struct conn *c = *p;
		if (!c->is_done) {
			p = &c->next;
			continue;
		}
		*p = c->next;
		pthread_join(c->thread, NULL);
		conn_free(c);
	}
}

static void conn_start(struct http_server *s, int fd)
{
	struct conn *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return;
	}
	c->s = s;
	c->fd = fd;
	buf_init(&c->out, HTTP_MAX_HEAD);
	buf_init(&c->extra, HTTP_MAX_HEAD);
	set_timeouts(fd, s->idle_timeout_s);
	pthread_mutex_lock(&s->mu);
	reap(s);
	bool is_full = s->n_conns >= s->max_connections || s->is_stopping;
	if (!is_full && pthread_create(&c->thread, NULL, conn_main, c) == 0) {
		c->next = s->conns;
		s->conns = c;
		s->n_conns++;
		c = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	if (c) {
		log_debug("http: refusing a connection (%s)",
		          is_full ? "at the connection limit" : "cannot start a thread");
		close(fd);
		conn_free(c);
	}
}

static void *accept_main(void *arg)
{
	struct http_server *s = arg;
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_start(s, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			log_warn("http: cannot accept a connection: %s", strerror(errno));
			nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
			continue;
		}
		return NULL; /* EINVAL: the socket was shut down (quiesce or stop) */
	}
}

/* ---- the server ------------------------------------------------------------ */

static enum brg_err listen_on(const struct http_opts *o, int *fd_out, int *port,
                              struct brg_error *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char port_text[16];
	snprintf(port_text, sizeof port_text, "%d", o->port);
	int rc = getaddrinfo(o->host, port_text, &hints, &res);
	if (rc != 0 || !res)
		return brg_fail(err, BRG_E_CONFIG, "cannot resolve host '%s': %s", o->host,
		                gai_strerror(rc));
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return brg_fail(err, BRG_E_CONFIG, "cannot listen on %s:%d: %s", o->host, o->port,
		                strerror(e));
	}
	freeaddrinfo(res);
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	*port = o->port;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		*port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
		                                 : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	*fd_out = fd;
	return BRG_OK;
}

static void server_free(struct http_server *s)
{
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->idle_efd >= 0)
		close(s->idle_efd);
	pthread_mutex_destroy(&s->mu);
	free(s->api_key);
	http_keys_free(s->keys);
	free(s);
}

enum brg_err http_server_start(const struct http_opts *o, const struct http_route *routes,
                               size_t n_routes, http_error_fn on_error, void *ud,
                               struct http_server **out, struct brg_error *err)
{
	struct http_server *s = calloc(1, sizeof *s);
	if (!s)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	*s = (struct http_server){.listen_fd = -1,
	                          .routes = routes,
	                          .n_routes = n_routes,
	                          .on_error = on_error,
	                          .ud = ud,
	                          .max_body_bytes = o->max_body_bytes,
	                          .idle_timeout_s = o->idle_timeout_s,
	                          .max_connections = o->max_connections,
	                          .idle_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
	pthread_mutex_init(&s->mu, NULL);
	enum brg_err rc = BRG_OK;
	if (s->idle_efd < 0)
		rc = brg_fail(err, BRG_E_RESOURCE, "cannot create an eventfd: %s", strerror(errno));
	if (!rc && o->api_key && *o->api_key && !(s->api_key = strdup(o->api_key)))
		rc = brg_fail(err, BRG_E_NOMEM, "out of memory");
	if (!rc && o->api_keys_file)
		rc = http_keys_open(o->api_keys_file, &s->keys, err);
	if (!rc)
		rc = listen_on(o, &s->listen_fd, &s->port, err);
	if (!rc && pthread_create(&s->accept_thread, NULL, accept_main, s) != 0)
		rc = brg_fail(err, BRG_E_RESOURCE, "cannot start the accept thread");
	if (rc) {
		server_free(s);
		return rc;
	}
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
	/* Either this sees 0 or the last request_end sees the flag. */
	if (atomic_load(&s->n_active) == 0)
		signal_idle(s);
	/* On Linux a listening socket shut down for reading leaves the listen
	 * state: connection attempts are refused, the backlog is reset, and
	 * the accept thread's accept() fails, which ends it. */
	if (shutdown(s->listen_fd, SHUT_RDWR) != 0)
		log_warn("http: cannot shut the listening socket down: %s", strerror(errno));
}

void http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	if (!atomic_load(&s->is_quiesced))
		shutdown(s->listen_fd, SHUT_RDWR);
	pthread_join(s->accept_thread, NULL);
	pthread_mutex_lock(&s->mu);
	s->is_stopping = true;
	/* Wakes every thread blocked on its client: recv() returns 0, a
	 * handler's http_wait() sees the client gone. */
	for (struct conn *c = s->conns; c; c = c->next)
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&s->mu);
	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		pthread_join(c->thread, NULL);
		conn_free(c);
	}
	s->conns = NULL;
	server_free(s);
}
