/*
 * upstream.c — a fast fake OpenAI-compatible upstream for the gateway
 * benchmark (bench/gateway/run.sh).
 *
 * The benchmark sends the same load to this server directly and through
 * brigade; the difference is what brigade adds.  So this server must cost
 * as little as possible and the same for every request: one thread, one
 * epoll set, non-blocking sockets, HTTP/1.1 keep-alive, answers built from
 * strings made once at start-up.  It is still a real HTTP server: a request
 * is complete when its headers (up to the blank line) and its
 * Content-Length body have arrived, bytes after it stay in the buffer for
 * the next request (pipelining), and a partial write waits for EPOLLOUT.
 *
 *   GET  /v1/models            the one model "fake"
 *   POST /v1/chat/completions  a fixed chat.completion; with "stream": true
 *                              a chunked text/event-stream: role, content and
 *                              finish chunks (plus a usage chunk when
 *                              stream_options.include_usage is true), [DONE]
 *   anything else              404 with an OpenAI error body
 *
 * Usage: upstream PORT   (0 picks a free port; the chosen one is printed as
 * "listening on http://127.0.0.1:PORT").  SIGUSR1 prints the counters so far
 * as "stats connections=N requests=M" on stdout (how the benchmark sees
 * whether a gateway reuses its upstream connections).  SIGINT/SIGTERM end it
 * cleanly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"

#define MAX_HEADER_BYTES ((size_t)16 << 10)
#define MAX_BODY_BYTES   ((size_t)1 << 20)
#define READ_CHUNK       ((size_t)16 << 10)
#define MAX_EVENTS       64

struct conn {
	int fd;
	char *in; /* bytes read, not yet consumed by a complete request */
	size_t in_len, in_cap;
	char *out; /* bytes to write; out_off of them already written */
	size_t out_len, out_off, out_cap;
	bool wants_out;  /* EPOLLOUT is registered */
	bool must_close; /* close once out is written */
};

/* The answers, built once; each is a complete HTTP response. */
struct answers {
	char *models;
	char *chat;
	char *stream;
	char *stream_usage;
	char *not_found;
	char *bad_request;
	char *too_large;
};

static char *xstrdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A heap string from fmt; exits on allocation failure (a benchmark tool). */
static char *xstrdup_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		perror("vasprintf");
		exit(1);
	}
	return s;
}

static char *json_response(int status, const char *reason, const char *body)
{
	return xstrdup_printf("HTTP/1.1 %d %s\r\n"
	                      "Content-Type: application/json\r\n"
	                      "Content-Length: %zu\r\n"
	                      "\r\n%s",
	                      status, reason, strlen(body), body);
}

/* Appends one chunk of the chunked transfer coding: "LEN\r\nDATA\r\n". */
static void append_chunk(char **acc, const char *data)
{
	char *next = xstrdup_printf("%s%zx\r\n%s\r\n", *acc, strlen(data), data);
	free(*acc);
	*acc = next;
}

static char *stream_response(long created, bool has_usage)
{
	const char *usage_null = has_usage ? ",\"usage\":null" : "";
	char *acc = xstrdup_printf("HTTP/1.1 200 OK\r\n"
	                           "Content-Type: text/event-stream\r\n"
	                           "Cache-Control: no-cache\r\n"
	                           "Transfer-Encoding: chunked\r\n"
	                           "\r\n");
	const char *deltas[3] = {
	    "{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null",
	    "{\"content\":\"Hello from the fake upstream.\"},\"finish_reason\":null",
	    "{},\"finish_reason\":\"stop\"",
	};
	for (int i = 0; i < 3; i++) {
		char *ev = xstrdup_printf(
		    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","
		    "\"created\":%ld,\"model\":\"fake\",\"choices\":[{\"index\":0,\"delta\":%s}]%s}"
		    "\n\n",
		    created, deltas[i], usage_null);
		append_chunk(&acc, ev);
		free(ev);
	}
	if (has_usage) {
		char *ev = xstrdup_printf(
		    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","
		    "\"created\":%ld,\"model\":\"fake\",\"choices\":[],\"usage\":"
		    "{\"prompt_tokens\":1,\"completion_tokens\":6,\"total_tokens\":7}}\n\n",
		    created);
		append_chunk(&acc, ev);
		free(ev);
	}
	append_chunk(&acc, "data: [DONE]\n\n");
	char *done = xstrdup_printf("%s0\r\n\r\n", acc);
	free(acc);
	return done;
}

static void answers_init(struct answers *a)
{
	long created = (long)time(NULL);
	a->models =
	    json_response(200, "OK",
	                  "{\"object\":\"list\",\"data\":[{\"id\":\"fake\",\"object\":\"model\","
	                  "\"created\":0,\"owned_by\":\"bench\"}]}");
	char *chat = xstrdup_printf(
	    "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":%ld,"
	    "\"model\":\"fake\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
	    "\"content\":\"Hello from the fake upstream.\"},\"finish_reason\":\"stop\"}],"
	    "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":6,\"total_tokens\":7}}",
	    created);
	a->chat = json_response(200, "OK", chat);
	free(chat);
	a->stream = stream_response(created, false);
	a->stream_usage = stream_response(created, true);
	a->not_found = json_response(404, "Not Found",
	                             "{\"error\":{\"message\":\"not found\",\"type\":"
	                             "\"invalid_request_error\",\"code\":\"not_found\"}}");
	a->bad_request = json_response(400, "Bad Request",
	                               "{\"error\":{\"message\":\"malformed request\",\"type\":"
	                               "\"invalid_request_error\",\"code\":\"bad_request\"}}");
	a->too_large = json_response(413, "Payload Too Large",
	                             "{\"error\":{\"message\":\"request too large\",\"type\":"
	                             "\"invalid_request_error\",\"code\":\"too_large\"}}");
}

static void answers_fini(struct answers *a)
{
	free(a->models);
	free(a->chat);
	free(a->stream);
	free(a->stream_usage);
	free(a->not_found);
	free(a->bad_request);
	free(a->too_large);
}

/* True when JSON text has "key" followed by optional spaces, ':', optional
 * spaces and "true".  Enough for the bodies brigade and the load generator
 * send; not a JSON parser. */
static bool has_true(const char *s, size_t len, const char *key)
{
	size_t key_len = strlen(key);
	const char *end = s + len;
	for (const char *p = s; (p = memmem(p, (size_t)(end - p), key, key_len)) != NULL;) {
		p += key_len;
		const char *q = p;
		while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
			q++;
		if (q >= end || *q != ':')
			continue;
		q++;
		while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
			q++;
		if ((size_t)(end - q) >= 4 && memcmp(q, "true", 4) == 0)
			return true;
	}
	return false;
}

/* Grows *buf to hold need bytes; false when need is over cap. */
static bool reserve(char **buf, size_t *cap, size_t need, size_t limit)
{
	if (need <= *cap)
		return true;
	if (need > limit)
		return false;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	if (n > limit)
		n = limit;
	char *p = realloc(*buf, n);
	if (!p)
		return false;
	*buf = p;
	*cap = n;
	return true;
}

static bool queue_out(struct conn *c, const char *data, size_t len)
{
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (!reserve(&c->out, &c->out_cap, c->out_len + len, SIZE_MAX / 2))
		return false;
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	return true;
}

/* Header value of name (case-insensitive) within the header block, or NULL;
 * *val_len gets its length without surrounding spaces. */
static const char *header_value(const char *hdr, size_t hdr_len, const char *name, size_t *val_len)
{
	size_t name_len = strlen(name);
	const char *end = hdr + hdr_len;
	const char *line = memchr(hdr, '\n', hdr_len); /* skip the request line */
	while (line && ++line < end) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			eol = end;
		if ((size_t)(eol - line) > name_len && line[name_len] == ':' &&
		    strncasecmp(line, name, name_len) == 0) {
			const char *v = line + name_len + 1;
			const char *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			*val_len = (size_t)(ve - v);
			return v;
		}
		line = eol;
	}
	return NULL;
}

enum parse { PARSE_MORE, PARSE_DONE, PARSE_BAD, PARSE_TOO_LARGE };

/* Requests answered and connections accepted since start-up. */
static unsigned long long n_requests, n_accepted;

/* Tries to take one complete request from c->in; on PARSE_DONE queues its
 * answer and sets *used to the bytes it spanned. */
static enum parse handle_one(struct conn *c, const struct answers *a, size_t *used)
{
	const char *hdr_end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	if (!hdr_end)
		return c->in_len > MAX_HEADER_BYTES ? PARSE_TOO_LARGE : PARSE_MORE;
	size_t hdr_len = (size_t)(hdr_end - c->in) + 4;

	size_t v_len = 0;
	const char *te = header_value(c->in, hdr_len, "Transfer-Encoding", &v_len);
	if (te)
		return PARSE_BAD; /* chunked request bodies: not needed by any client here */
	size_t body_len = 0;
	const char *cl = header_value(c->in, hdr_len, "Content-Length", &v_len);
	if (cl) {
		char num[24];
		if (v_len == 0 || v_len >= sizeof num)
			return PARSE_BAD;
		memcpy(num, cl, v_len);
		num[v_len] = '\0';
		char *e = NULL;
		errno = 0;
		unsigned long long n = strtoull(num, &e, 10);
		if (errno || *e || num[0] == '-')
			return PARSE_BAD;
		if (n > MAX_BODY_BYTES)
			return PARSE_TOO_LARGE;
		body_len = (size_t)n;
	}
	if (c->in_len < hdr_len + body_len)
		return PARSE_MORE;
	*used = hdr_len + body_len;

	const char *conn_hdr = header_value(c->in, hdr_len, "Connection", &v_len);
	const char *req_end = memchr(c->in, '\r', hdr_len); /* the request line's end */
	bool is_http10 = req_end && memmem(c->in, (size_t)(req_end - c->in), "HTTP/1.0", 8);
	if (conn_hdr ? (v_len == 5 && strncasecmp(conn_hdr, "close", 5) == 0) : is_http10)
		c->must_close = true;

	const char *body = c->in + hdr_len;
	const char *ans = a->not_found;
	if (strncmp(c->in, "GET /v1/models ", 15) == 0) {
		ans = a->models;
	} else if (strncmp(c->in, "POST /v1/chat/completions ", 26) == 0) {
		if (has_true(body, body_len, "\"stream\""))
			ans = has_true(body, body_len, "\"include_usage\"") ? a->stream_usage
			                                                    : a->stream;
		else
			ans = a->chat;
	}
	n_requests++;
	return queue_out(c, ans, strlen(ans)) ? PARSE_DONE : PARSE_BAD;
}

static void conn_free(struct conn *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/* Writes what it can; true while the connection lives on (bytes still
 * pending, or all written on a keep-alive connection), false when it is
 * broken or finished. */
static bool flush_out(int ep, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->wants_out) {
				struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
				                         .data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				c->wants_out = true;
			}
			return true;
		}
		return false;
	}
	c->out_off = c->out_len = 0;
	if (c->wants_out) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		c->wants_out = false;
	}
	return !c->must_close;
}

/* Reads everything available and answers each complete request; false when
 * the connection should be closed. */
static bool on_readable(int ep, struct conn *c, const struct answers *a)
{
	bool is_eof = false;
	while (!is_eof) {
		if (!reserve(&c->in, &c->in_cap, c->in_len + READ_CHUNK,
		             MAX_HEADER_BYTES + MAX_BODY_BYTES + READ_CHUNK))
			return false;
		ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (n > 0) {
			c->in_len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0)
			return false;
		is_eof = true; /* answer what came before the end, then close */
	}
	size_t off = 0;
	while (!c->must_close) {
		size_t used = 0;
		/* handle_one works on the buffer's start, so slide consumed bytes out. */
		if (off) {
			memmove(c->in, c->in + off, c->in_len - off);
			c->in_len -= off;
			off = 0;
		}
		enum parse p = handle_one(c, a, &used);
		if (p == PARSE_MORE)
			break;
		if (p == PARSE_BAD || p == PARSE_TOO_LARGE) {
			const char *ans = p == PARSE_BAD ? a->bad_request : a->too_large;
			queue_out(c, ans, strlen(ans));
			c->must_close = true;
			c->in_len = 0;
			break;
		}
		off = used;
	}
	if (off) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	if (is_eof)
		c->must_close = true;
	return flush_out(ep, c);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s PORT   (0 = any free port)\n", argv[0]);
		return 2;
	}
	char *end = NULL;
	long port = strtol(argv[1], &end, 10);
	if (*end || port < 0 || port > 65535) {
		fprintf(stderr, "upstream: bad port '%s'\n", argv[1]);
		return 2;
	}

	int lfd = -1, sfd = -1, bound = 0;
	int ep = serve_start((int)port, SIGUSR1, &lfd, &bound, &sfd);
	if (ep < 0) {
		perror("upstream: listen");
		return 1;
	}

	struct answers a;
	answers_init(&a);
	printf("listening on http://127.0.0.1:%d\n", bound);
	fflush(stdout);

	/* Every open connection, so a clean exit frees them all. */
	size_t n_conns = 0, cap_conns = 64;
	struct conn **conns = calloc(cap_conns, sizeof *conns);
	bool is_running = conns != NULL;
	while (is_running) {
		struct epoll_event evs[MAX_EVENTS];
		int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &sfd) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
					if (si.ssi_signo != SIGUSR1) {
						is_running = false;
						continue;
					}
					printf("stats connections=%llu requests=%llu\n", n_accepted,
					       n_requests);
					fflush(stdout);
				}
				if (!is_running)
					break;
				continue;
			}
			if (evs[i].data.ptr == NULL) {
				int fd;
				while ((fd = accept4(lfd, NULL, NULL,
				                     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					int one = 1;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					struct conn *c = calloc(1, sizeof *c);
					if (n_conns == cap_conns) {
						struct conn **g =
						    realloc(conns, 2 * cap_conns * sizeof *conns);
						if (g) {
							conns = g;
							cap_conns *= 2;
						}
					}
					if (!c || n_conns == cap_conns) {
						free(c);
						close(fd);
						continue;
					}
					c->fd = fd;
					n_accepted++;
					struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
					conns[n_conns++] = c;
				}
				continue;
			}
			if (evs[i].data.ptr == &ep)
				continue; /* its connection was closed earlier in this batch */
			struct conn *c = evs[i].data.ptr;
			bool keep = true;
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				keep = on_readable(ep, c, &a);
			else if (evs[i].events & EPOLLOUT)
				keep = flush_out(ep, c);
			if (!keep) {
				/* Later events in this batch may name c: blank them out. */
				for (int j = i + 1; j < n; j++)
					if (evs[j].data.ptr == c)
						evs[j].data.ptr = &ep;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				for (size_t k = 0; k < n_conns; k++)
					if (conns[k] == c) {
						conns[k] = conns[--n_conns];
						break;
					}
				conn_free(c);
			}
		}
	}
	for (size_t k = 0; k < n_conns; k++)
		conn_free(conns[k]);
	free(conns);
	answers_fini(&a);
	close(ep);
	close(lfd);
	close(sfd);
	return 0;
}
