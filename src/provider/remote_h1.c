/*
 * remote_h1.c — brigade's own HTTP/1.1 client for plain-http upstreams.
 *
 * A transfer that runs on an HTTP connection's thread (remote_loop.c) to
 * an http:// provider goes through here instead of libcurl: one sendmsg
 * of the request head and body on a kept-alive connection, then the
 * thread's pump polls the socket next to the client's and reads the
 * answer straight into the transfer's body callback (h1.c frames it).
 * libcurl still carries https, the provider's I/O thread and health
 * checks — and everything when a proxy is configured (http_proxy,
 * all_proxy), so proxies and no_proxy work exactly as before.  Why:
 * libcurl's per-transfer work (set-up, its liveness poll before reusing a
 * connection, a poll after sending, the allocations) was a third of a
 * proxied request's CPU (docs/internals/http.md).
 *
 * Idle connections are the provider's, shared by every thread under a
 * mutex, so even a client's first request on a new connection finds a warm
 * upstream connection.  A connection idle for a while is checked with one
 * non-blocking peek before it is used; a reused one that the upstream
 * closed anyway (its keep-alive ran out as we sent) fails before any byte
 * of an answer, and the request is sent once more on a new connection —
 * what libcurl does too.  Addresses are resolved once per RESOLVE_TTL_MS.
 *
 * Failures end the transfer with the CURLcode libcurl would have given,
 * so the messages and error codes clients see do not depend on which
 * client carried the request.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "provider/h1.h"
#include "provider/remote_int.h"

#define MAX_ADDRS      4
#define POOL_MAX       256
#define RESOLVE_TTL_MS 30000
/* An idle connection older than this is peeked at before reuse... */
#define IDLE_CHECK_MS 1000
/* ...and one older than this is closed instead. */
#define IDLE_MAX_MS 120000
#define RECV_BYTES  16384

struct h1_target {
	char host[256];
	char port[8];
	char authority[300];
	char prefix[1024];
	char *head[3]; /* per Accept type: the header lines every request sends */
	size_t head_len[3];
	int connect_timeout_ms;
	long long request_timeout_ms;
	pthread_mutex_t mu; /* guards what follows */
	struct sockaddr_storage addrs[MAX_ADDRS];
	socklen_t addr_lens[MAX_ADDRS];
	int n_addrs;
	long long resolved_ms;
	int idle_fds[POOL_MAX];
	long long idle_since[POOL_MAX];
	size_t n_idle;
};

enum h1x_state { X_IDLE, X_CONNECTING, X_SENDING, X_READING, X_FAILED };

struct h1_xfer {
	int fd;
	enum h1x_state state;
	bool is_reused;   /* the connection came from the pool */
	bool has_retried; /* the request was sent again on a new connection */
	CURLcode pending; /* with X_FAILED: how to end it */
	long long connect_deadline;
	struct sockaddr_storage addrs[MAX_ADDRS];
	socklen_t addr_lens[MAX_ADDRS];
	int n_addrs, addr_i;
	char *head; /* request line and headers */
	size_t head_len, head_cap;
	size_t sent; /* of head then body */
	struct h1_parser parser;
};

/* ---- the target ------------------------------------------------------------ */

/* One line of the provider's header list as libcurl sends it: "Name:"
 * with nothing after removes a header (we send none: "Expect:" is one),
 * "Name;" sends it empty. */
static void put_line(char *out, size_t *len, const char *h)
{
	size_t n = strlen(h);
	if (n == 0 || h[n - 1] == ':')
		return;
	if (h[n - 1] == ';')
		*len += (size_t)sprintf(out + *len, "%.*s:\r\n", (int)(n - 1), h);
	else
		*len += (size_t)sprintf(out + *len, "%s\r\n", h);
}

/* The header block of every request: Host, then the provider's own list
 * (remote.c builds it once for libcurl), so both clients send the same
 * headers. */
static char *make_head(const struct h1_target *t, const struct curl_slist *list, size_t *len)
{
	size_t cap = 16 + strlen(t->authority);
	bool has_host = false;
	for (const struct curl_slist *l = list; l; l = l->next) {
		cap += strlen(l->data) + 3;
		has_host |= strncasecmp(l->data, "host:", 5) == 0;
	}
	char *h = malloc(cap);
	if (!h)
		return NULL;
	*len = 0;
	if (!has_host)
		*len += (size_t)sprintf(h, "Host: %s\r\n", t->authority);
	for (const struct curl_slist *l = list; l; l = l->next)
		put_line(h, len, l->data);
	return h;
}

/* Whether every line can go into a request as it is. */
static bool is_sendable(struct curl_slist *const lists[3])
{
	for (int i = 0; i < 3; i++) {
		if (!lists[i])
			return false;
		for (const struct curl_slist *l = lists[i]; l; l = l->next)
			if (strpbrk(l->data, "\r\n"))
				return false;
	}
	return true;
}

/* Whether libcurl would send plain-http requests through a proxy: then it
 * carries them, and applies no_proxy as it always has. */
static bool is_proxied(void)
{
	static const char *const vars[] = {"http_proxy", "all_proxy", "ALL_PROXY"};
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		const char *v = getenv(vars[i]);
		if (v && *v)
			return true;
	}
	return false;
}

struct h1_target *remote_h1_target_new(const struct provider_config *c,
                                       struct curl_slist *const headers[3])
{
	if (is_proxied() || !is_sendable(headers))
		return NULL;
	struct h1_target *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	if (!h1_split_url(c->base_url, t->host, sizeof t->host, t->port, sizeof t->port,
	                  t->authority, sizeof t->authority, t->prefix, sizeof t->prefix)) {
		free(t);
		return NULL;
	}
	for (int i = 0; i < 3; i++) {
		t->head[i] = make_head(t, headers[i], &t->head_len[i]);
		if (!t->head[i]) {
			remote_h1_target_free(t);
			return NULL;
		}
	}
	t->connect_timeout_ms = c->connect_timeout_ms;
	t->request_timeout_ms = (long long)c->request_timeout_s * 1000;
	pthread_mutex_init(&t->mu, NULL);
	return t;
}

void remote_h1_target_free(struct h1_target *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_idle; i++)
		close(t->idle_fds[i]);
	for (int i = 0; i < 3; i++)
		free(t->head[i]);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

/* ---- idle connections -------------------------------------------------------- */

/* Whether an idle connection still looks usable: no EOF and no stray
 * bytes waiting. */
static bool is_alive(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static int pool_take(struct h1_target *t)
{
	for (;;) {
		pthread_mutex_lock(&t->mu);
		if (!t->n_idle) {
			pthread_mutex_unlock(&t->mu);
			return -1;
		}
		size_t i = --t->n_idle; /* the most recent: warm and least likely closed */
		int fd = t->idle_fds[i];
		long long idle = brg_now_ms() - t->idle_since[i];
		pthread_mutex_unlock(&t->mu);
		if (idle < IDLE_CHECK_MS || (idle < IDLE_MAX_MS && is_alive(fd)))
			return fd;
		log_debug("closing an upstream connection idle for %lld ms that %s", idle,
		          idle < IDLE_MAX_MS ? "the upstream closed" : "was idle too long");
		close(fd);
	}
}

static void pool_put(struct h1_target *t, int fd)
{
	pthread_mutex_lock(&t->mu);
	if (t->n_idle < POOL_MAX) {
		t->idle_fds[t->n_idle] = fd;
		t->idle_since[t->n_idle++] = brg_now_ms();
		fd = -1;
	}
	pthread_mutex_unlock(&t->mu);
	if (fd >= 0)
		close(fd);
}

/* The target's addresses into h (cached for RESOLVE_TTL_MS); false when
 * the name does not resolve. */
static bool resolve(struct h1_target *t, struct h1_xfer *h)
{
	long long now = brg_now_ms();
	pthread_mutex_lock(&t->mu);
	bool is_fresh = t->n_addrs && now - t->resolved_ms < RESOLVE_TTL_MS;
	if (is_fresh) {
		h->n_addrs = t->n_addrs;
		memcpy(h->addrs, t->addrs, sizeof h->addrs);
		memcpy(h->addr_lens, t->addr_lens, sizeof h->addr_lens);
	}
	pthread_mutex_unlock(&t->mu);
	if (is_fresh)
		return true;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	if (getaddrinfo(t->host, t->port, &hints, &res) != 0)
		return false;
	h->n_addrs = 0;
	for (struct addrinfo *a = res; a && h->n_addrs < MAX_ADDRS; a = a->ai_next) {
		if (a->ai_addrlen > sizeof h->addrs[0])
			continue;
		memcpy(&h->addrs[h->n_addrs], a->ai_addr, a->ai_addrlen);
		h->addr_lens[h->n_addrs++] = a->ai_addrlen;
	}
	freeaddrinfo(res);
	if (!h->n_addrs)
		return false;
	pthread_mutex_lock(&t->mu);
	t->n_addrs = h->n_addrs;
	memcpy(t->addrs, h->addrs, sizeof t->addrs);
	memcpy(t->addr_lens, h->addr_lens, sizeof t->addr_lens);
	t->resolved_ms = now;
	pthread_mutex_unlock(&t->mu);
	return true;
}

/* ---- one transfer ------------------------------------------------------------ */

static void close_fd(struct h1_xfer *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
}

/* Ends it at the loop's next round (never inside the caller's call). */
static void fail_later(struct xfer *x, CURLcode cc)
{
	close_fd(x->h1);
	x->h1->state = X_FAILED;
	x->h1->pending = cc;
}

static void send_some(struct xfer *x);
static void open_conn(struct xfer *x, bool may_reuse);

/* A reused connection failed before any answer: the upstream closed it as
 * we sent.  Once, send again on a new one; true when it did. */
static bool retry(struct xfer *x)
{
	struct h1_xfer *h = x->h1;
	if (!h->is_reused || h->has_retried || h->parser.n_seen)
		return false;
	log_debug("%s: the upstream had closed a kept-alive connection; sending again on a new one",
	          x->rp->cfg->name);
	close_fd(h);
	h->has_retried = true;
	h->sent = 0;
	h1_parser_init(&h->parser, false); /* it saw the close: a new answer comes */
	open_conn(x, false);
	return true;
}

/* Tries the addresses from addr_i on until one connects or is connecting. */
static void try_connect(struct xfer *x)
{
	struct h1_xfer *h = x->h1;
	for (; h->addr_i < h->n_addrs; h->addr_i++) {
		const struct sockaddr *sa = (const struct sockaddr *)&h->addrs[h->addr_i];
		int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		h->fd = fd;
		if (connect(fd, sa, h->addr_lens[h->addr_i]) == 0) {
			h->state = X_SENDING;
			send_some(x);
			return;
		}
		if (errno == EINPROGRESS) {
			h->state = X_CONNECTING;
			return;
		}
		close_fd(h);
	}
	fail_later(x, CURLE_COULDNT_CONNECT);
}

static void open_conn(struct xfer *x, bool may_reuse)
{
	struct h1_xfer *h = x->h1;
	struct h1_target *t = x->rp->h1;
	int fd = may_reuse ? pool_take(t) : -1;
	h->is_reused = fd >= 0;
	if (fd >= 0) {
		h->fd = fd;
		h->state = X_SENDING;
		send_some(x);
		return;
	}
	if (!resolve(t, h)) {
		fail_later(x, CURLE_COULDNT_RESOLVE_HOST);
		return;
	}
	h->addr_i = 0;
	h->connect_deadline = brg_now_ms() + t->connect_timeout_ms;
	try_connect(x);
}

/* Sends what is left of the head and body; on to reading when all is. */
static void send_some(struct xfer *x)
{
	struct h1_xfer *h = x->h1;
	size_t body_len = strlen(x->body);
	size_t total = h->head_len + body_len;
	while (h->sent < total) {
		struct iovec iov[2];
		int n_iov = 0;
		if (h->sent < h->head_len)
			iov[n_iov++] = (struct iovec){h->head + h->sent, h->head_len - h->sent};
		size_t body_off = h->sent > h->head_len ? h->sent - h->head_len : 0;
		if (body_len > body_off)
			iov[n_iov++] =
			    (struct iovec){(char *)x->body + body_off, body_len - body_off};
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n_iov};
		ssize_t n = sendmsg(h->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* the pump waits for POLLOUT */
		if (n < 0) {
			if (!retry(x))
				fail_later(x, CURLE_SEND_ERROR);
			return;
		}
		h->sent += (size_t)n;
	}
	h->state = X_READING;
}

static char *put(char *w, const char *s, size_t n)
{
	memcpy(w, s, n);
	return w + n;
}

void remote_h1_start(struct xfer *x)
{
	struct h1_target *t = x->rp->h1;
	if (!x->h1) {
		x->h1 = malloc(sizeof *x->h1);
		if (!x->h1)
			return; /* remote_h1_is_due: ended as out of memory */
		x->h1->fd = -1;
		x->h1->head = NULL;
		x->h1->head_cap = 0;
	}
	struct h1_xfer *h = x->h1;
	size_t need = strlen(t->prefix) + strlen(x->path) + t->head_len[x->accept] + 160;
	if (need > h->head_cap) {
		char *p = realloc(h->head, need);
		if (!p) {
			h->state = X_FAILED;
			h->pending = CURLE_OUT_OF_MEMORY;
			return;
		}
		h->head = p;
		h->head_cap = need;
	}
	/* Written by hand, not by snprintf: it runs on every request. */
	char *w = h->head;
	w = put(w, "POST ", 5);
	w = put(w, t->prefix, strlen(t->prefix));
	w = put(w, x->path, strlen(x->path));
	w = put(w, " HTTP/1.1\r\n", 11);
	w = put(w, t->head[x->accept], t->head_len[x->accept]);
	if (x->traceparent[0]) {
		w = put(w, "traceparent: ", 13);
		w = put(w, x->traceparent, strlen(x->traceparent));
		w = put(w, "\r\n", 2);
	}
	w = put(w, "Content-Length: ", 16);
	char digits[24];
	char *d = str_digits(strlen(x->body), digits + sizeof digits);
	w = put(w, d, (size_t)(digits + sizeof digits - d));
	w = put(w, "\r\n\r\n", 4);
	h->head_len = (size_t)(w - h->head);
	h->sent = 0;
	h->has_retried = false;
	h1_parser_init(&h->parser, false);
	open_conn(x, true);
}

int remote_h1_fd(const struct xfer *x, short *events)
{
	const struct h1_xfer *h = x->h1;
	if (!h || h->fd < 0)
		return -1;
	switch (h->state) {
	case X_CONNECTING:
	case X_SENDING:
		*events = POLLOUT;
		return h->fd;
	case X_READING:
		*events = POLLIN;
		return h->fd;
	default:
		return -1;
	}
}

bool remote_h1_is_due(const struct xfer *x)
{
	return !x->h1 || x->h1->state == X_FAILED;
}

static int on_head(void *ud, int status)
{
	struct xfer *x = ud;
	x->status = status;
	x->retry_after_s = x->h1->parser.retry_after;
	return 0;
}

static int on_body(void *ud, const char *p, size_t n)
{
	struct xfer *x = ud;
	return x->write((char *)p, 1, n, x) != n;
}

/* The connection closed (or broke) while reading. */
static void read_end(struct xfer *x)
{
	struct h1_xfer *h = x->h1;
	bool is_nothing = h->parser.n_seen == 0;
	close_fd(h);
	if (h1_eof(&h->parser) == H1_DONE) {
		remote_xfer_finish(x, CURLE_OK);
		return;
	}
	if (is_nothing && retry(x))
		return;
	remote_xfer_finish(x, is_nothing ? CURLE_GOT_NOTHING : CURLE_PARTIAL_FILE);
}

static void read_some(struct xfer *x)
{
	struct h1_xfer *h = x->h1;
	char buf[RECV_BYTES];
	for (;;) {
		ssize_t got = recv(h->fd, buf, sizeof buf, MSG_DONTWAIT);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (got <= 0) {
			read_end(x);
			return;
		}
		size_t used = 0;
		enum h1_rc rc = h1_feed(&h->parser, buf, (size_t)got, on_head, on_body, x, &used);
		if (rc == H1_MORE) {
			if ((size_t)got < sizeof buf)
				return; /* most likely all there was: poll before reading on */
			continue;
		}
		if (rc == H1_DONE && !h->parser.is_close && used == (size_t)got) {
			pool_put(x->rp->h1, h->fd);
			h->fd = -1;
		}
		close_fd(h);
		h->state = X_IDLE;
		if (rc == H1_ERROR)
			remote_xfer_fail(x, BRG_E_UPSTREAM, "%s (%s)", h->parser.why,
			                 x->rp->cfg->base_url);
		remote_xfer_finish(x, rc == H1_DONE   ? CURLE_OK
		                      : rc == H1_STOP ? CURLE_WRITE_ERROR
		                                      : CURLE_WEIRD_SERVER_REPLY);
		return;
	}
}

void remote_h1_event(struct xfer *x, short revents)
{
	struct h1_xfer *h = x->h1;
	switch (h->state) {
	case X_CONNECTING: {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err) {
			close_fd(h);
			h->addr_i++;
			try_connect(x);
			return;
		}
		h->state = X_SENDING;
		send_some(x);
		return;
	}
	case X_SENDING:
		send_some(x);
		return;
	case X_READING:
		if (revents & (POLLIN | POLLHUP | POLLERR))
			read_some(x);
		return;
	default:
		return;
	}
}

void remote_h1_check(struct xfer *x, long long now_ms)
{
	struct h1_xfer *h = x->h1;
	if (!h) {
		remote_xfer_finish(x, CURLE_OUT_OF_MEMORY);
		return;
	}
	CURLcode cc = CURLE_OK;
	if (h->state == X_FAILED)
		cc = h->pending;
	else if ((h->state == X_CONNECTING && now_ms > h->connect_deadline) ||
	         now_ms - x->started_ms > x->rp->h1->request_timeout_ms)
		cc = CURLE_OPERATION_TIMEDOUT;
	else
		return;
	close_fd(h);
	h->state = X_IDLE;
	remote_xfer_finish(x, cc);
}

void remote_h1_drop(struct xfer *x)
{
	if (x->h1) {
		close_fd(x->h1);
		x->h1->state = X_IDLE;
	}
}

void remote_h1_free(struct xfer *x)
{
	if (!x->h1)
		return;
	close_fd(x->h1);
	free(x->h1->head);
	free(x->h1);
	x->h1 = NULL;
}
