/*
 * exchange.c — one request on its connection's thread: what the handler
 * reads (method, path, headers, body), routing and auth, and the reply,
 * written to the socket as soon as the handler makes it.  See http.h.
 *
 * A complete reply is one sendmsg of the head and the body.  A streamed
 * reply waits until the handler has returned (as libmicrohttpd's content
 * reader did), then pulls and sends one chunk at a time.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/pump.h"
#include "core/str.h"
#include "http/http_int.h"
#include "http/keys.h"

/* The largest piece of a streamed reply, and room for its chunk framing. */
#define STREAM_PIECE (16 * 1024)
#define CHUNK_HEAD   10 /* up to 8 hex digits and CRLF */

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

/* server.c has NUL-terminated every field's name and value in place. */
const char *http_header(const struct http_exchange *x, const char *name)
{
	size_t len;
	if (!x->head)
		return NULL;
	const char *v = http_head_field(x->head, name, &len);
	return !v ? NULL : len ? v : "";
}

static bool is_header_text(const char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n')
			return false;
	return true;
}

void http_add_header(struct http_exchange *x, const char *name, const char *value)
{
	/* A header that would split the head is dropped, never sent. */
	if (!is_header_text(name) || !is_header_text(value)) {
		log_warn("http: dropping a response header with a line break");
		return;
	}
	if (buf_appendf(x->extra, "%s: %s\r\n", name, value))
		log_warn("http: out of memory for a response header");
}

static const char *reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 417:
		return "Expectation Failed";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 499:
		return "Client Closed Request";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

/* The Date header's value (RFC 9110 §6.6.1), formatted once a second. */
static const char *http_date(void)
{
	static _Thread_local time_t tl_sec = -1;
	static _Thread_local char tl_text[32];
	time_t now = time(NULL);
	if (now != tl_sec) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(tl_text, sizeof tl_text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		tl_sec = now;
	}
	return tl_text;
}

static enum brg_err put(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

static enum brg_err put_uint(struct buf *b, unsigned long long v)
{
	char d[24];
	char *p = str_digits(v, d + sizeof d);
	return buf_append(b, p, (size_t)(d + sizeof d - p));
}

/* Writes the status line and headers into 'head' (emptied first).  'len'
 * < 0: chunked (HTTP/1.1) or to the close (HTTP/1.0).  Formatted by hand:
 * it runs on every request. */
static enum brg_err format_head(struct http_exchange *x, struct buf *head, int status,
                                const char *content_type, long long len)
{
	if (len < 0 && x->minor == 0)
		x->is_keep_alive = false;
	if (atomic_load(&x->s->is_quiesced))
		x->is_keep_alive = false; /* clients move off a server going down */
	buf_reset(head);
	enum brg_err rc = buf_append(head, "HTTP/1.1 ", 9);
	rc = rc ? rc : put_uint(head, (unsigned)status);
	rc = rc ? rc : buf_append(head, " ", 1);
	rc = rc ? rc : put(head, reason(status));
	rc = rc ? rc : buf_append(head, "\r\nDate: ", 8);
	rc = rc ? rc : put(head, http_date());
	rc = rc ? rc : buf_append(head, "\r\n", 2);
	if (content_type) {
		rc = rc ? rc : buf_append(head, "Content-Type: ", 14);
		rc = rc ? rc : put(head, content_type);
		rc = rc ? rc : buf_append(head, "\r\n", 2);
	}
	if (len >= 0) {
		rc = rc ? rc : buf_append(head, "Content-Length: ", 16);
		rc = rc ? rc : put_uint(head, (unsigned long long)len);
		rc = rc ? rc : buf_append(head, "\r\n", 2);
	} else if (x->minor > 0) {
		rc = rc ? rc : put(head, "Transfer-Encoding: chunked\r\n");
	}
	if (x->extra->len)
		rc = rc ? rc : buf_append(head, x->extra->data, x->extra->len);
	if (!x->is_keep_alive)
		rc = rc ? rc : put(head, "Connection: close\r\n");
	else if (x->minor == 0)
		rc = rc ? rc : put(head, "Connection: keep-alive\r\n");
	return rc ? rc : buf_append(head, "\r\n", 2);
}

bool http_send_all(int fd, const char *head, size_t head_len, const char *body, size_t len)
{
	struct iovec iov[2] = {{(void *)head, head_len}, {(void *)body, len}};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
	if (!head_len) {
		m.msg_iov = iov + 1;
		m.msg_iovlen = 1;
	}
	while (m.msg_iovlen) {
		ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false; /* gone, or past the send timeout */
		while (m.msg_iovlen && (size_t)n >= m.msg_iov->iov_len) {
			n -= (ssize_t)m.msg_iov->iov_len;
			m.msg_iov++;
			m.msg_iovlen--;
		}
		if (m.msg_iovlen) {
			m.msg_iov->iov_base = (char *)m.msg_iov->iov_base + n;
			m.msg_iov->iov_len -= (size_t)n;
		}
	}
	return true;
}

void http_reply(struct http_exchange *x, int status, const char *content_type, const char *body,
                size_t len)
{
	if (x->has_replied)
		return;
	x->has_replied = true;
	if (x->forced_status)
		status = x->forced_status;
	struct buf *head = x->out;
	if (format_head(x, head, status, content_type, (long long)len)) {
		x->has_failed = true;
	} else if (!http_send_all(x->fd, head->data, head->len, body, x->is_head ? 0 : len)) {
		log_debug("http: %s %s: the client left before its reply was sent", x->method,
		          x->path);
		x->has_failed = true;
	}
}

void http_reply_stream(struct http_exchange *x, int status, const char *content_type,
                       http_pull_fn pull, void (*free_ud)(void *), void *ud)
{
	if (x->has_replied) {
		if (free_ud)
			free_ud(ud);
		return;
	}
	x->has_replied = true;
	/* Proxies must pass events through as they come. */
	http_add_header(x, "Cache-Control", "no-cache");
	http_add_header(x, "X-Accel-Buffering", "no");
	if (format_head(x, x->out, status, content_type, -1) ||
	    !http_send_all(x->fd, x->out->data, x->out->len, NULL, 0)) {
		x->has_failed = true;
		if (free_ud)
			free_ud(ud);
		return;
	}
	x->stream = (struct http_stream){pull, free_ud, ud};
}

/* Pulls one piece into buf + CHUNK_HEAD and frames it; returns the bytes
 * to send from *start, 0 at the clean end, -1 on a pull error. */
static ssize_t next_piece(struct http_exchange *x, char *buf, char **start)
{
	ssize_t n = x->stream.pull(x->stream.ud, buf + CHUNK_HEAD, STREAM_PIECE);
	if (n <= 0)
		return n;
	if (x->minor == 0) { /* HTTP/1.0: no framing, the close ends it */
		*start = buf + CHUNK_HEAD;
		return n;
	}
	char hex[CHUNK_HEAD + 1];
	int h = snprintf(hex, sizeof hex, "%zx\r\n", (size_t)n);
	*start = buf + CHUNK_HEAD - h;
	memcpy(*start, hex, (size_t)h);
	memcpy(buf + CHUNK_HEAD + n, "\r\n", 2);
	return h + n + 2;
}

void http_run_stream(struct http_exchange *x)
{
	char *buf = malloc(CHUNK_HEAD + STREAM_PIECE + 2);
	for (;;) {
		char *start = NULL;
		ssize_t n = buf ? next_piece(x, buf, &start) : -1;
		if (n < 0) {
			x->has_failed = true; /* no last chunk: the client sees a cut */
			break;
		}
		if (n == 0) {
			if (x->minor > 0 && !http_send_all(x->fd, "0\r\n\r\n", 5, NULL, 0))
				x->has_failed = true;
			break;
		}
		if (!http_send_all(x->fd, start, (size_t)n, NULL, 0)) {
			x->has_failed = true;
			break;
		}
	}
	free(buf);
	if (x->stream.free_ud)
		x->stream.free_ud(x->stream.ud);
	x->stream = (struct http_stream){0};
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

void http_dispatch(struct http_exchange *x)
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

void http_fail(struct http_exchange *x, int status, enum brg_err code, const char *message)
{
	x->forced_status = status;
	x->is_keep_alive = false;
	x->s->on_error(x->s->ud, x, code, message);
}
