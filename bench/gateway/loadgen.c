/*
 * loadgen.c — an open-loop, constant-rate HTTP/1.1 load generator for the
 * gateway benchmark (bench/gateway/run.sh), in the manner of wrk2.
 *
 * Request i is due at t0 + i/rate, whatever happened to the requests before
 * it.  Its latency runs from that scheduled time, not from the moment it
 * was written, to the last byte of its response.  A request that falls due
 * while every connection is still waiting for an answer waits for the next
 * free connection, and that wait counts in its latency: a server that
 * stalls is charged for every request the stall delayed, which a
 * closed-loop tool (send, wait, send) would quietly leave out — the
 * "coordinated omission" that makes slow servers look fast.
 *
 * One thread and one epoll set drive C keep-alive connections; the sleep
 * until the next due time is epoll_pwait2's nanosecond timeout with the
 * timer slack set to 1 ns (epoll_wait's millisecond one where pwait2 is
 * missing).  A response is complete when its
 * Content-Length body, or its chunked body up to the 0-chunk and trailers,
 * has arrived.  Non-2xx answers, lost connections and requests still
 * unanswered DRAIN_S seconds after the last was due are errors; a
 * text/event-stream answer without "data: [DONE]" is an error too (a
 * stream that ended with an error event).  Latencies of successful
 * requests due after the warm-up go into an array sized rate * seconds
 * before the run starts; nothing grows while it runs.
 *
 * Usage: loadgen HOST PORT PATH BODY CONNECTIONS RATE SECONDS WARMUP
 *   BODY: the request body, "@FILE" to read it from FILE, or "" for a GET.
 * Prints one line:
 *   requests=N errors=E rate=R p50_us= p90_us= p99_us= p999_us= max_us=
 *   mean_us= total=T total_errors=TE lag_max_us= lag_mean_us=
 * requests/errors/rate and the latencies cover the measured window only;
 * total and total_errors cover warm-up and window (what the server did
 * while a CPU-time sample was taken); lag is how late requests were
 * written after their due time (busy connections included).  The first
 * error response is copied to stderr.  With LOADGEN_DUMP=FILE set, every
 * measured latency (µs, in completion order) is written to FILE, one a line,
 * for histograms.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_RESPONSE_BYTES ((size_t)4 << 20)
#define READ_CHUNK         ((size_t)16 << 10)
#define DRAIN_S            10
#define MAX_CONNS          4096
#define ERROR_COPY_BYTES   2048

struct conn {
	int fd;
	bool is_busy;
	bool wants_out;
	size_t req_off; /* bytes of the request written so far */
	uint64_t idx;   /* the request in flight */
	/* The response being read.  Chunked bodies are decoded in place: the
	 * decoded bytes sit at in[hdr_len .. hdr_len + body_len). */
	char *in;
	size_t in_len, in_cap;
	size_t hdr_len; /* 0 until the header block is complete */
	int status;
	bool is_chunked, is_until_close, is_sse, must_close;
	size_t content_len; /* when neither chunked nor until-close */
	size_t chunk_pos;   /* chunked: the next chunk-size line */
	size_t body_len;    /* chunked: bytes decoded so far */
	bool is_last_chunk; /* chunked: the 0-chunk was seen; trailers follow */
};

struct run {
	const char *host;
	int port;
	char *req;
	size_t req_len;
	double rate;
	uint64_t t0;
	uint64_t n_total, n_warmup; /* requests scheduled; the first n_warmup are warm-up */
	uint64_t next_send;
	struct conn *conns;
	size_t n_conns;
	size_t *idle; /* a stack of idle connection indexes */
	size_t n_idle;
	size_t n_busy;
	int ep;
	uint64_t *lat; /* ns, successful measured requests */
	size_t n_lat;
	uint64_t n_done, n_err, n_meas_done, n_meas_err;
	uint64_t last_meas_done_ns;
	uint64_t lag_max, lag_sum, n_lag;
	bool has_shown_error;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* When request i is due. */
static uint64_t due_ns(const struct run *r, uint64_t i)
{
	return r->t0 + (uint64_t)llround((double)i * 1e9 / r->rate);
}

/* How many requests are due by time t. */
static uint64_t n_due_at(const struct run *r, uint64_t t)
{
	if (t < r->t0)
		return 0;
	uint64_t n = (uint64_t)floor((double)(t - r->t0) * r->rate / 1e9) + 1;
	while (n > 0 && due_ns(r, n - 1) > t) /* rounding guard */
		n--;
	while (n < r->n_total && due_ns(r, n) <= t)
		n++;
	return n < r->n_total ? n : r->n_total;
}

/* A blocking connect, then non-blocking; -1 on failure. */
static int dial(const char *host, int port)
{
	char ps[16];
	snprintf(ps, sizeof ps, "%d", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	if (getaddrinfo(host, ps, &hints, &ai) != 0)
		return -1;
	int fd = -1;
	for (struct addrinfo *p = ai; p; p = p->ai_next) {
		fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, p->ai_addr, p->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static void reset_response(struct conn *c)
{
	c->hdr_len = 0;
	c->status = 0;
	c->is_chunked = c->is_until_close = c->is_sse = c->must_close = false;
	c->content_len = c->chunk_pos = c->body_len = 0;
	c->is_last_chunk = false;
}

static void set_events(struct run *r, struct conn *c, bool wants_out)
{
	if (c->wants_out == wants_out)
		return;
	struct epoll_event ev = {.events = EPOLLIN | (wants_out ? EPOLLOUT : 0), .data.ptr = c};
	epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->wants_out = wants_out;
}

/* (Re)opens connection c; false when the server cannot be reached. */
static bool conn_open(struct run *r, struct conn *c)
{
	c->fd = dial(r->host, r->port);
	if (c->fd < 0)
		return false;
	c->in_len = 0;
	c->wants_out = false;
	reset_response(c);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev);
	return true;
}

static void conn_close(struct run *r, struct conn *c)
{
	if (c->fd < 0)
		return;
	epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
}

static void show_error(struct run *r, const struct conn *c, const char *why)
{
	if (r->has_shown_error)
		return;
	r->has_shown_error = true;
	fprintf(stderr, "loadgen: first error (request %llu): %s\n", (unsigned long long)c->idx,
	        why);
	if (c->hdr_len) {
		size_t body = c->is_chunked ? c->body_len : c->in_len - c->hdr_len;
		size_t n = c->hdr_len + body;
		if (n > ERROR_COPY_BYTES)
			n = ERROR_COPY_BYTES;
		fprintf(stderr, "%.*s\n", (int)n, c->in);
	}
}

/* Books request c->idx as finished at time t; ok says whether it succeeded. */
static void finish(struct run *r, struct conn *c, bool ok, uint64_t t)
{
	bool is_measured = c->idx >= r->n_warmup;
	r->n_done++;
	if (!ok)
		r->n_err++;
	if (is_measured) {
		r->n_meas_done++;
		r->last_meas_done_ns = t;
		if (!ok)
			r->n_meas_err++;
		else
			r->lat[r->n_lat++] = t - due_ns(r, c->idx);
	}
	c->is_busy = false;
	r->n_busy--;
}

/* Connection c broke (or the server closed it): its request, if any, is an
 * error; reconnect so the run keeps its C connections.  An idle connection
 * is already on the idle stack; a busy one goes back on it, reconnected or
 * not (send_due retries a closed one). */
static void conn_broken(struct run *r, struct conn *c, const char *why)
{
	bool was_busy = c->is_busy;
	if (was_busy) {
		show_error(r, c, why);
		finish(r, c, false, now_ns());
	}
	conn_close(r, c);
	if (!conn_open(r, c))
		fprintf(stderr, "loadgen: reconnect to %s:%d failed: %s\n", r->host, r->port,
		        strerror(errno));
	if (was_busy)
		r->idle[r->n_idle++] = (size_t)(c - r->conns);
}

/* Header value of name (case-insensitive) in c's header block, or NULL. */
static const char *header_value(const struct conn *c, const char *name, size_t *val_len)
{
	size_t name_len = strlen(name);
	const char *end = c->in + c->hdr_len;
	const char *line = memchr(c->in, '\n', c->hdr_len);
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

static bool has_token(const char *v, size_t len, const char *tok)
{
	return v && memmem(v, len, tok, strlen(tok)) != NULL;
}

enum parse { PARSE_MORE, PARSE_DONE, PARSE_BAD };

/* Parses the header block once it is complete. */
static enum parse parse_head(struct conn *c)
{
	const char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	if (!end)
		return c->in_len > MAX_RESPONSE_BYTES / 4 ? PARSE_BAD : PARSE_MORE;
	c->hdr_len = (size_t)(end - c->in) + 4;
	if (c->hdr_len < 12 || memcmp(c->in, "HTTP/1.", 7) != 0)
		return PARSE_BAD;
	c->status = atoi(c->in + 9);
	size_t len = 0;
	const char *v = header_value(c, "Transfer-Encoding", &len);
	c->is_chunked = has_token(v, len, "chunked");
	v = header_value(c, "Connection", &len);
	c->must_close = has_token(v, len, "close") || memcmp(c->in, "HTTP/1.0", 8) == 0;
	v = header_value(c, "Content-Type", &len);
	c->is_sse = has_token(v, len, "text/event-stream");
	if (c->is_chunked) {
		c->chunk_pos = c->hdr_len;
		return PARSE_MORE;
	}
	v = header_value(c, "Content-Length", &len);
	if (v) {
		char *e = NULL;
		c->content_len = (size_t)strtoull(v, &e, 10);
		if (e == v || c->content_len > MAX_RESPONSE_BYTES)
			return PARSE_BAD;
	} else if (c->status == 204 || c->status == 304) {
		c->content_len = 0;
	} else {
		c->is_until_close = true;
	}
	return PARSE_MORE;
}

/* Advances a chunked body as far as the bytes go; PARSE_DONE at its end. */
static enum parse parse_chunks(struct conn *c)
{
	for (;;) {
		char *line = c->in + c->chunk_pos;
		size_t avail = c->in_len - c->chunk_pos;
		char *eol = memmem(line, avail, "\r\n", 2);
		if (!eol)
			return avail > 1024 ? PARSE_BAD : PARSE_MORE;
		if (c->is_last_chunk) {
			/* Trailers, up to an empty line. */
			c->chunk_pos += (size_t)(eol - line) + 2;
			if (eol == line)
				return PARSE_DONE;
			continue;
		}
		char *e = NULL;
		unsigned long long size = strtoull(line, &e, 16);
		if (e == line || size > MAX_RESPONSE_BYTES)
			return PARSE_BAD;
		size_t data = (size_t)(eol - line) + 2;
		if (size == 0) {
			c->is_last_chunk = true;
			c->chunk_pos += data;
			continue;
		}
		if (avail < data + size + 2)
			return PARSE_MORE;
		if (memcmp(line + data + size, "\r\n", 2) != 0)
			return PARSE_BAD;
		memmove(c->in + c->hdr_len + c->body_len, line + data, (size_t)size);
		c->body_len += (size_t)size;
		c->chunk_pos += data + (size_t)size + 2;
	}
}

/* The bytes of the current response, when it is complete; 0 otherwise. */
static size_t response_end(struct conn *c, enum parse *out)
{
	*out = PARSE_MORE;
	if (!c->hdr_len && (*out = parse_head(c)) == PARSE_BAD)
		return 0;
	if (!c->hdr_len)
		return 0;
	if (c->is_chunked) {
		*out = parse_chunks(c);
		return *out == PARSE_DONE ? c->chunk_pos : 0;
	}
	if (c->is_until_close)
		return 0;
	if (c->in_len >= c->hdr_len + c->content_len) {
		*out = PARSE_DONE;
		return c->hdr_len + c->content_len;
	}
	return 0;
}

static bool response_ok(struct run *r, struct conn *c)
{
	if (c->status < 200 || c->status > 299) {
		char why[64];
		snprintf(why, sizeof why, "HTTP status %d", c->status);
		show_error(r, c, why);
		return false;
	}
	if (c->is_sse) {
		size_t body = c->is_chunked ? c->body_len : c->content_len;
		if (!memmem(c->in + c->hdr_len, body, "data: [DONE]", 12)) {
			show_error(r, c, "event stream without data: [DONE]");
			return false;
		}
	}
	return true;
}

static void on_readable(struct run *r, struct conn *c)
{
	bool is_eof = false;
	for (;;) {
		if (c->in_cap - c->in_len < READ_CHUNK) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 2 * READ_CHUNK;
			char *p =
			    cap <= MAX_RESPONSE_BYTES + READ_CHUNK ? realloc(c->in, cap) : NULL;
			if (!p) {
				conn_broken(r, c, "response too large");
				return;
			}
			c->in = p;
			c->in_cap = cap;
		}
		ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (n > 0) {
			c->in_len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		is_eof = true;
		break;
	}
	if (!c->is_busy) {
		/* Nothing asked: bytes or an end here mean the server dropped the
		 * connection (idle timeout) or misbehaved; a spurious wake-up is
		 * harmless. */
		if (is_eof || c->in_len)
			conn_broken(r, c, "idle connection closed");
		return;
	}
	enum parse p;
	size_t used = response_end(c, &p);
	if (p == PARSE_BAD) {
		conn_broken(r, c, "malformed response");
		return;
	}
	if (!used && is_eof && c->is_until_close && c->hdr_len) {
		used = c->in_len;
		c->must_close = true;
	}
	if (!used) {
		if (is_eof)
			conn_broken(r, c, "connection closed mid-response");
		return;
	}
	uint64_t t = now_ns();
	finish(r, c, response_ok(r, c), t);
	r->idle[r->n_idle++] = (size_t)(c - r->conns);
	if (c->must_close || is_eof || used < c->in_len) {
		/* The server ends this connection (or sent more than asked). */
		conn_close(r, c);
		conn_open(r, c); /* on failure send_due tries again */
		return;
	}
	c->in_len = 0;
	reset_response(c);
}

static void write_request(struct run *r, struct conn *c)
{
	while (c->req_off < r->req_len) {
		ssize_t n = write(c->fd, r->req + c->req_off, r->req_len - c->req_off);
		if (n > 0) {
			c->req_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			set_events(r, c, true);
			return;
		}
		conn_broken(r, c, "write failed");
		return;
	}
	set_events(r, c, false);
}

/* Hands every due request to an idle connection, oldest first. */
static void send_due(struct run *r, uint64_t t)
{
	uint64_t n_due = n_due_at(r, t);
	while (r->next_send < n_due && r->n_idle > 0) {
		struct conn *c = &r->conns[r->idle[--r->n_idle]];
		c->idx = r->next_send++;
		c->is_busy = true;
		r->n_busy++;
		c->req_off = 0;
		if (c->idx >= r->n_warmup) {
			uint64_t lag = t - due_ns(r, c->idx);
			r->lag_sum += lag;
			r->n_lag++;
			if (lag > r->lag_max)
				r->lag_max = lag;
		}
		if (c->fd < 0 && !conn_open(r, c)) {
			show_error(r, c, "cannot reconnect");
			finish(r, c, false, t);
			r->idle[r->n_idle++] = (size_t)(c - r->conns);
			return; /* try again at the next wake-up */
		}
		write_request(r, c);
	}
}

/* epoll_pwait2 (Linux 5.11) sleeps to the nanosecond; where it is missing
 * (older kernels, valgrind) epoll_wait rounds the sleep up to a millisecond,
 * so requests go out later but latency still counts from their due time. */
static int wait_events(int ep, struct epoll_event *evs, int n, const struct timespec *ts)
{
	static bool is_pwait2_missing;
	if (!is_pwait2_missing) {
		int got = epoll_pwait2(ep, evs, n, ts, NULL);
		if (got >= 0 || errno != ENOSYS)
			return got;
		is_pwait2_missing = true;
	}
	long long ms = (long long)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
	return epoll_wait(ep, evs, n, ms > 60000 ? 60000 : (int)ms);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v, in µs. */
static double pct_us(const uint64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t k = (size_t)ceil(p * (double)n);
	if (k < 1)
		k = 1;
	return (double)v[k - 1] / 1000.0;
}

static char *read_body(const char *arg, size_t *out_len)
{
	if (arg[0] != '@') {
		*out_len = strlen(arg);
		return strdup(arg);
	}
	FILE *f = fopen(arg + 1, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t cap = 0, len = 0;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			char *p = realloc(buf, cap);
			if (!p) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = p;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	*out_len = len;
	return buf;
}

static char *build_request(const char *host, int port, const char *path, const char *body,
                           size_t body_len, size_t *out_len)
{
	char *req = NULL;
	int n;
	if (body_len)
		n = asprintf(&req,
		             "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
		             "Accept: */*\r\nContent-Length: %zu\r\n\r\n%.*s",
		             path, host, port, body_len, (int)body_len, body);
	else
		n = asprintf(&req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: */*\r\n\r\n", path,
		             host, port);
	if (n < 0)
		return NULL;
	*out_len = (size_t)n;
	return req;
}

static bool parse_num(const char *s, double lo, double hi, double *out)
{
	char *e = NULL;
	double v = strtod(s, &e);
	if (e == s || *e || !(v >= lo && v <= hi))
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	if (argc != 9) {
		fprintf(stderr,
		        "usage: %s HOST PORT PATH BODY CONNECTIONS RATE SECONDS WARMUP\n"
		        "  BODY: the JSON body, @FILE to read it, or \"\" for GET\n",
		        argv[0]);
		return 2;
	}
	double port, conns, rate, secs, warm;
	if (!parse_num(argv[2], 1, 65535, &port) || !parse_num(argv[5], 1, MAX_CONNS, &conns) ||
	    !parse_num(argv[6], 0.001, 1e7, &rate) || !parse_num(argv[7], 0.001, 86400, &secs) ||
	    !parse_num(argv[8], 0, 86400, &warm)) {
		fprintf(stderr, "loadgen: bad number among the arguments\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* Sleep until each due time, not up to 50 µs after it. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

	struct run r = {.host = argv[1], .port = (int)port, .rate = rate};
	size_t body_len = 0;
	char *body = read_body(argv[4], &body_len);
	if (!body) {
		fprintf(stderr, "loadgen: cannot read %s\n", argv[4] + 1);
		return 2;
	}
	r.req = build_request(r.host, r.port, argv[3], body, body_len, &r.req_len);
	free(body);
	r.n_warmup = (uint64_t)llround(warm * rate);
	uint64_t n_meas = (uint64_t)llround(secs * rate);
	r.n_total = r.n_warmup + n_meas;
	r.n_conns = (size_t)conns;
	r.conns = calloc(r.n_conns, sizeof *r.conns);
	r.idle = calloc(r.n_conns, sizeof *r.idle);
	r.lat = calloc(n_meas ? n_meas : 1, sizeof *r.lat);
	r.ep = epoll_create1(EPOLL_CLOEXEC);
	int rc = 1;
	if (!r.req || !r.conns || !r.idle || !r.lat || r.ep < 0) {
		fprintf(stderr, "loadgen: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < r.n_conns; i++)
		r.conns[i].fd = -1;
	for (size_t i = 0; i < r.n_conns; i++) {
		if (!conn_open(&r, &r.conns[i])) {
			fprintf(stderr, "loadgen: cannot connect to %s:%d: %s\n", r.host, r.port,
			        strerror(errno));
			goto out;
		}
		r.idle[r.n_idle++] = r.n_conns - 1 - i; /* connection 0 on top */
	}

	r.t0 = now_ns() + 1000000; /* 1 ms from now */
	uint64_t deadline = due_ns(&r, r.n_total) + (uint64_t)DRAIN_S * 1000000000u;
	for (;;) {
		uint64_t t = now_ns();
		send_due(&r, t);
		if (r.next_send >= r.n_total && r.n_busy == 0)
			break;
		if (t >= deadline)
			break;
		/* Sleep until the next request falls due (if one could be sent
		 * then), or until a connection has news. */
		uint64_t wake = deadline;
		if (r.next_send < r.n_total && r.n_idle > 0) {
			uint64_t due = due_ns(&r, r.next_send);
			if (due < wake)
				wake = due;
		}
		struct timespec ts = {0, 0};
		if (wake > t) {
			ts.tv_sec = (time_t)((wake - t) / 1000000000u);
			ts.tv_nsec = (long)((wake - t) % 1000000000u);
		}
		struct epoll_event evs[64];
		int n = wait_events(r.ep, evs, 64, &ts);
		if (n < 0 && errno != EINTR) {
			perror("loadgen: epoll_wait");
			goto out;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->fd < 0)
				continue;
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				on_readable(&r, c);
			else if ((evs[i].events & EPOLLOUT) && c->is_busy)
				write_request(&r, c);
		}
	}
	/* Whatever is still unanswered or unsent at the deadline failed. */
	for (size_t i = 0; i < r.n_conns; i++)
		if (r.conns[i].is_busy) {
			show_error(&r, &r.conns[i], "no answer before the drain deadline");
			finish(&r, &r.conns[i], false, now_ns());
		}
	for (; r.next_send < r.n_total; r.next_send++) {
		r.n_done++;
		r.n_err++;
		if (r.next_send >= r.n_warmup) {
			r.n_meas_done++;
			r.n_meas_err++;
		}
	}

	const char *dump = getenv("LOADGEN_DUMP");
	if (dump && *dump) {
		FILE *f = fopen(dump, "w");
		if (!f) {
			fprintf(stderr, "loadgen: cannot write %s\n", dump);
		} else {
			for (size_t i = 0; i < r.n_lat; i++)
				fprintf(f, "%.1f\n", (double)r.lat[i] / 1000.0);
			fclose(f);
		}
	}
	qsort(r.lat, r.n_lat, sizeof *r.lat, cmp_u64);
	double sum = 0;
	for (size_t i = 0; i < r.n_lat; i++)
		sum += (double)r.lat[i];
	uint64_t span = r.last_meas_done_ns > due_ns(&r, r.n_warmup)
	                    ? r.last_meas_done_ns - due_ns(&r, r.n_warmup)
	                    : 1;
	printf("requests=%zu errors=%llu rate=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f "
	       "p999_us=%.1f max_us=%.1f mean_us=%.1f total=%llu total_errors=%llu "
	       "lag_max_us=%.1f lag_mean_us=%.1f\n",
	       r.n_lat, (unsigned long long)r.n_meas_err,
	       (double)r.n_meas_done * 1e9 / (double)span, pct_us(r.lat, r.n_lat, 0.50),
	       pct_us(r.lat, r.n_lat, 0.90), pct_us(r.lat, r.n_lat, 0.99),
	       pct_us(r.lat, r.n_lat, 0.999), r.n_lat ? (double)r.lat[r.n_lat - 1] / 1000.0 : 0.0,
	       r.n_lat ? sum / (double)r.n_lat / 1000.0 : 0.0, (unsigned long long)r.n_done,
	       (unsigned long long)r.n_err, (double)r.lag_max / 1000.0,
	       r.n_lag ? (double)r.lag_sum / (double)r.n_lag / 1000.0 : 0.0);
	fflush(stdout);
	rc = 0;
out:
	if (r.conns)
		for (size_t i = 0; i < r.n_conns; i++) {
			conn_close(&r, &r.conns[i]);
			free(r.conns[i].in);
		}
	if (r.ep >= 0)
		close(r.ep);
	free(r.conns);
	free(r.idle);
	free(r.lat);
	free(r.req);
	return rc;
}
