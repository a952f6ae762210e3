// sources: src/provider/h1.c src/core/buf.c
/*
 * fuzz_h1.c — libFuzzer harness for provider/h1: the incremental HTTP/1.1
 * response parser and h1_split_url.
 *
 * Input layout: byte 0 picks whether the request was HEAD (bit 0) and the
 * split pattern (bits 1-7: 0 feeds one byte at a time, others seed a
 * generator of piece sizes 0..2*seed, empty pieces included, each piece
 * in a buffer of its own so ASan sees a read past it); the rest is the
 * byte stream from the upstream, and, up to its first NUL, a URL.
 *
 * Checks, on the stream: fed in pieces it gives the same result, the same
 * body bytes, the same status, framing, is_close, Content-Length and
 * Retry-After (within 2 s: a date is read against the clock), the same
 * bytes used in all (but not after an error: where it stopped reading
 * may differ) and the same h1_eof result as fed at once.  *used never
 * exceeds what was fed, and is all of it with H1_MORE; after H1_DONE or
 * H1_ERROR another feed returns the same with used 0, and an error always
 * has a reason.  The head callback runs at most once, before any body
 * byte, for a final status 200..999 (never 1xx or 101), which is also the
 * parser's.  Body bytes never exceed a Content-Length that framed the
 * body, equal it when the response is done, and are none for HEAD, 204 and
 * 304.  The body callback asks to stop whenever its bytes hold a '!': the
 * bytes it was given must then end exactly at *used, and feeding the rest
 * from there reads on as if nothing had stopped (so stopping is split-
 * tested too); the head callback asks to stop for a status ending in 9,
 * where reading ends for good.  h1_eof gives H1_DONE exactly when the
 * body ran to the close or the response was done.
 *
 * On the URL, with roomy buffers and with small ones: small buffers
 * succeed only where roomy ones do, with the same parts; an accepted URL's
 * parts are NUL-terminated in their buffers, the host is not empty, the
 * port is 1 to 5 digits worth 1..65535, the authority is the host
 * (bracketed where the URL bracketed it) plus ":port" unless the port is
 * 80, the prefix is "" or starts with '/' and does not end with one; and
 * "http://" + authority + prefix splits again into the same parts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "provider/h1.h"

#define CHECK(x)                 \
	do {                     \
		if (!(x))        \
			abort(); \
	} while (0)

/* One run over the stream. */
struct run {
	struct h1_parser p;
	struct buf body; /* every body byte handed over */
	int n_heads;
	int head_status;
	bool did_body_stop;   /* the last body callback asked to stop */
	const char *last_end; /* one past the last body byte handed over */
	enum h1_rc rc;        /* the last result */
	size_t used;          /* bytes used in all */
	enum h1_state state_at_eof;
	enum h1_rc eof;
};

static int on_head(void *ud, int status)
{
	struct run *r = ud;
	CHECK(r->n_heads == 0 && r->body.len == 0);
	CHECK(status >= 200 && status <= 999);
	CHECK(status == r->p.status);
	r->n_heads++;
	r->head_status = status;
	return status % 10 == 9;
}

static int on_body(void *ud, const char *p, size_t n)
{
	struct run *r = ud;
	CHECK(r->n_heads == 1);
	CHECK(n > 0);
	CHECK(!r->p.is_bodyless && r->p.status != 204 && r->p.status != 304);
	CHECK(buf_append(&r->body, p, n) == BRG_OK);
	if (r->p.length >= 0 && !r->p.is_chunked)
		CHECK(r->body.len <= (size_t)r->p.length);
	r->last_end = p + n;
	r->did_body_stop = memchr(p, '!', n) != NULL;
	return r->did_body_stop;
}

/* The next piece size: 1 for seed 0, else xorshift in 0..2*seed. */
static size_t next_piece(uint32_t *state, unsigned seed)
{
	if (seed == 0)
		return 1;
	*state ^= *state << 13;
	*state ^= *state >> 17;
	*state ^= *state << 5;
	return *state % (2 * seed + 1);
}

/* Feeds one piece, resuming after each stop the body asked for.  False
 * when the response has ended (done, failed or stopped by the head). */
static bool feed_piece(struct run *r, const char *buf, size_t n)
{
	size_t off = 0;
	for (;;) {
		r->did_body_stop = false;
		size_t used = (size_t)-1;
		enum h1_rc rc = h1_feed(&r->p, buf + off, n - off, on_head, on_body, r, &used);
		CHECK(used <= n - off);
		r->rc = rc;
		r->used += used;
		switch (rc) {
		case H1_MORE:
			CHECK(used == n - off);
			CHECK(r->p.state != H1S_DONE && r->p.state != H1S_FAILED);
			return true;
		case H1_STOP:
			if (!r->did_body_stop) {
				/* The head callback: reading ends here. */
				CHECK(r->n_heads == 1 && r->head_status % 10 == 9);
				return false;
			}
			CHECK(r->last_end == buf + off + used);
			off += used;
			continue;
		case H1_DONE:
			CHECK(r->p.state == H1S_DONE);
			CHECK(h1_feed(&r->p, buf, n, on_head, on_body, r, &used) == H1_DONE);
			CHECK(used == 0);
			return false;
		case H1_ERROR:
			CHECK(r->p.state == H1S_FAILED && r->p.why);
			CHECK(h1_feed(&r->p, buf, n, on_head, on_body, r, &used) == H1_ERROR);
			CHECK(used == 0);
			CHECK(r->p.why);
			return false;
		}
		CHECK(false);
	}
}

static void finish(struct run *r)
{
	r->state_at_eof = r->p.state;
	r->eof = h1_eof(&r->p);
	bool is_ended = r->state_at_eof == H1S_BODY_CLOSE || r->state_at_eof == H1S_DONE;
	CHECK((r->eof == H1_DONE) == is_ended);
	if (r->eof == H1_ERROR)
		CHECK(r->p.state == H1S_FAILED && r->p.why);
	else
		CHECK(r->eof == H1_DONE && r->p.state == H1S_DONE);

	const struct h1_parser *p = &r->p;
	if (p->length >= 0 && !p->is_chunked && r->n_heads) {
		CHECK(r->body.len <= (size_t)p->length);
		if (r->rc == H1_DONE && !p->is_bodyless && p->status != 204 && p->status != 304)
			CHECK(r->body.len == (size_t)p->length);
	}
	if (p->is_bodyless || p->status == 204 || p->status == 304)
		CHECK(r->body.len == 0);
	CHECK(p->retry_after >= -1);
}

static void run_whole(struct run *r, const char *s, size_t len, bool is_head)
{
	h1_parser_init(&r->p, is_head);
	feed_piece(r, s, len);
	finish(r);
}

static void run_split(struct run *r, const char *s, size_t len, bool is_head, unsigned seed)
{
	h1_parser_init(&r->p, is_head);
	uint32_t state = 0x9E3779B9u ^ seed;
	for (size_t i = 0; i < len;) {
		size_t n = next_piece(&state, seed);
		if (n > len - i)
			n = len - i;
		char *piece = malloc(n ? n : 1);
		CHECK(piece);
		memcpy(piece, s + i, n);
		bool is_going = feed_piece(r, piece, n);
		free(piece);
		if (!is_going)
			break;
		i += n;
	}
	finish(r);
}

static bool is_near(long long a, long long b)
{
	return a == b || (a >= 0 && b >= 0 && (a > b ? a - b : b - a) <= 2);
}

static void compare(const struct run *a, const struct run *b)
{
	CHECK(a->rc == b->rc);
	if (a->rc != H1_ERROR)
		CHECK(a->used == b->used);
	CHECK(a->state_at_eof == b->state_at_eof && a->eof == b->eof);
	CHECK(a->p.status == b->p.status);
	CHECK(a->p.is_http10 == b->p.is_http10);
	CHECK(a->p.is_close == b->p.is_close);
	CHECK(a->p.is_chunked == b->p.is_chunked);
	CHECK(a->p.length == b->p.length);
	CHECK(is_near(a->p.retry_after, b->p.retry_after));
	CHECK(a->n_heads == b->n_heads && a->head_status == b->head_status);
	CHECK(a->body.len == b->body.len);
	CHECK(a->body.len == 0 || memcmp(a->body.data, b->body.data, a->body.len) == 0);
}

/* The URL's parts, each in a buffer of exactly its size (ASan). */
struct parts {
	size_t host_len, port_len, authority_len, prefix_len;
	char *host, *port, *authority, *prefix;
	bool ok;
};

static void split_into(struct parts *o, const char *url, size_t h, size_t pt, size_t a, size_t pr)
{
	o->host_len = h, o->port_len = pt, o->authority_len = a, o->prefix_len = pr;
	o->host = malloc(h ? h : 1);
	o->port = malloc(pt ? pt : 1);
	o->authority = malloc(a ? a : 1);
	o->prefix = malloc(pr ? pr : 1);
	CHECK(o->host && o->port && o->authority && o->prefix);
	o->ok = h1_split_url(url, o->host, h, o->port, pt, o->authority, a, o->prefix, pr);
}

static void parts_free(struct parts *o)
{
	free(o->host);
	free(o->port);
	free(o->authority);
	free(o->prefix);
}

static bool is_terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static void check_url(const char *url, uint8_t sizes)
{
	struct parts big, small;
	size_t cap = strlen(url) + 8;
	split_into(&big, url, cap, cap, cap, cap);
	split_into(&small, url, sizes % 17, sizes % 7, sizes % 23, sizes % 13);
	if (small.ok) {
		CHECK(big.ok);
		CHECK(strcmp(small.host, big.host) == 0 && strcmp(small.port, big.port) == 0);
		CHECK(strcmp(small.authority, big.authority) == 0);
		CHECK(strcmp(small.prefix, big.prefix) == 0);
	}
	parts_free(&small);
	if (!big.ok) {
		parts_free(&big);
		return;
	}
	CHECK(is_terminated(big.host, cap) && is_terminated(big.port, cap));
	CHECK(is_terminated(big.authority, cap) && is_terminated(big.prefix, cap));
	CHECK(big.host[0] != '\0');

	size_t port_len = strlen(big.port);
	CHECK(port_len >= 1 && port_len <= 5);
	long port = 0;
	for (size_t i = 0; i < port_len; i++) {
		CHECK(big.port[i] >= '0' && big.port[i] <= '9');
		port = port * 10 + (big.port[i] - '0');
	}
	CHECK(port >= 1 && port <= 65535);

	size_t prefix_len = strlen(big.prefix);
	CHECK(prefix_len == 0 || (big.prefix[0] == '/' && big.prefix[prefix_len - 1] != '/'));

	/* authority = host or [host], then ":port" unless the port is 80. */
	bool is_bracketed = big.authority[0] == '[';
	char *want = malloc(2 * cap + 16);
	CHECK(want);
	if (is_bracketed)
		snprintf(want, 2 * cap + 16, "[%s]", big.host);
	else
		snprintf(want, 2 * cap + 16, "%s", big.host);
	if (port != 80) {
		strcat(want, ":");
		strcat(want, big.port);
	}
	CHECK(strcmp(want, big.authority) == 0);

	/* Splits again into the same parts. */
	snprintf(want, 2 * cap + 16, "http://%s%s", big.authority, big.prefix);
	struct parts again;
	split_into(&again, want, cap + 8, cap + 8, cap + 8, cap + 8);
	CHECK(again.ok);
	CHECK(strcmp(again.host, big.host) == 0);
	CHECK(strcmp(again.authority, big.authority) == 0);
	CHECK(strcmp(again.prefix, big.prefix) == 0);
	CHECK(strtol(again.port, NULL, 10) == port);
	parts_free(&again);
	free(want);
	parts_free(&big);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool is_head = data[0] & 1;
	unsigned seed = data[0] >> 1;
	const char *s = (const char *)data + 1;
	size_t len = size - 1;

	struct run *whole = calloc(1, sizeof *whole);
	struct run *split = calloc(1, sizeof *split);
	CHECK(whole && split);
	buf_init(&whole->body, SIZE_MAX);
	buf_init(&split->body, SIZE_MAX);
	run_whole(whole, s, len, is_head);
	run_split(split, s, len, is_head, seed);
	compare(whole, split);
	buf_fini(&whole->body);
	buf_fini(&split->body);
	free(whole);
	free(split);

	char *url = malloc(len + 1);
	CHECK(url);
	memcpy(url, s, len);
	url[len] = '\0';
	check_url(url, data[0]);
	free(url);
	return 0;
}
