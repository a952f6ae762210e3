/*
 * test_h1.c — unit tests for provider/h1: the incremental HTTP/1.1
 * response parser (status line, headers, Content-Length, chunked and
 * read-until-close bodies, interim 1xx answers, Retry-After, the
 * Connection rules of 1.0 and 1.1), fed whole, at every split point and
 * byte by byte; the errors that fail it for good; and h1_split_url.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "provider/h1.h"

/* What the callbacks saw. */
struct seen {
	char body[16384];
	size_t body_len;
	int n_heads;
	int head_status;
	bool is_body_before_head;
	int stop_head;          /* the head callback returns this */
	size_t stop_body_after; /* stop once this many body bytes arrived; 0: never */
	const char *last_end;   /* one past the last body byte handed over */
};

static int on_head(void *ud, int status)
{
	struct seen *s = ud;
	s->n_heads++;
	s->head_status = status;
	return s->stop_head;
}

static int on_body(void *ud, const char *p, size_t n)
{
	struct seen *s = ud;
	if (s->n_heads == 0)
		s->is_body_before_head = true;
	assert_true(s->body_len + n <= sizeof s->body);
	memcpy(s->body + s->body_len, p, n);
	s->body_len += n;
	s->last_end = p + n;
	return s->stop_body_after && s->body_len >= s->stop_body_after;
}

/*
 * Feeds s: a first piece of 'first' bytes, then pieces of 'piece' bytes
 * (0: all the rest), each in a buffer of its own so ASan sees any read
 * past it; stops at the first result other than H1_MORE.  *used: the
 * bytes consumed in all.
 */
static enum h1_rc feed_pieces(struct h1_parser *p, const char *s, size_t len, size_t first,
                              size_t piece, struct seen *seen, size_t *used)
{
	enum h1_rc rc = H1_MORE;
	size_t at = 0;
	*used = 0;
	for (bool is_first = true; rc == H1_MORE && (at < len || is_first); is_first = false) {
		size_t n = is_first ? first : piece ? piece : len - at;
		if (n > len - at)
			n = len - at;
		char *copy = malloc(n ? n : 1);
		assert_non_null(copy);
		memcpy(copy, s + at, n);
		size_t took = 99999;
		rc = h1_feed(p, copy, n, on_head, on_body, seen, &took);
		assert_true(took <= n);
		free(copy);
		*used += took;
		at += n;
	}
	return rc;
}

/* Parses s (len bytes) fed at once with a fresh parser. */
static enum h1_rc parse_len(struct h1_parser *p, const char *s, size_t len, bool is_head,
                            struct seen *seen, size_t *used)
{
	h1_parser_init(p, is_head);
	memset(seen, 0, sizeof *seen);
	return feed_pieces(p, s, len, len, 0, seen, used);
}

static enum h1_rc parse(struct h1_parser *p, const char *s, bool is_head, struct seen *seen,
                        size_t *used)
{
	return parse_len(p, s, strlen(s), is_head, seen, used);
}

static void check_same(const struct h1_parser *a, const struct seen *sa, enum h1_rc rc_a,
                       size_t used_a, const struct h1_parser *b, const struct seen *sb,
                       enum h1_rc rc_b, size_t used_b)
{
	assert_int_equal(rc_a, rc_b);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->is_close, b->is_close);
	assert_int_equal(a->is_chunked, b->is_chunked);
	assert_int_equal(a->length, b->length);
	assert_int_equal(a->retry_after, b->retry_after);
	assert_int_equal(sa->n_heads, sb->n_heads);
	assert_int_equal(sa->head_status, sb->head_status);
	assert_false(sb->is_body_before_head);
	assert_int_equal(sa->body_len, sb->body_len);
	assert_memory_equal(sa->body, sb->body, sa->body_len);
	if (rc_a != H1_ERROR)
		assert_int_equal(used_a, used_b);
}

/*
 * Parses s whole, then split at every point, then byte by byte, checking
 * every way gives the same result, body, fields and bytes used.  Leaves
 * the whole run's parser and callbacks in *p, *seen; returns its result.
 */
static enum h1_rc parse_every_way(struct h1_parser *p, const char *s, bool is_head,
                                  struct seen *seen, size_t *used)
{
	size_t len = strlen(s);
	enum h1_rc rc = parse(p, s, is_head, seen, used);
	assert_false(seen->is_body_before_head);
	struct h1_parser q;
	struct seen t;
	for (size_t k = 0; k <= len + 1; k++) {
		/* k == len + 1: byte by byte. */
		h1_parser_init(&q, is_head);
		memset(&t, 0, sizeof t);
		size_t u;
		enum h1_rc r = k <= len ? feed_pieces(&q, s, len, k, 0, &t, &u)
		                        : feed_pieces(&q, s, len, 1, 1, &t, &u);
		check_same(p, seen, rc, *used, &q, &t, r, u);
	}
	return rc;
}

/* Checks that the parser failed and stays failed. */
static void check_failed(struct h1_parser *p)
{
	assert_int_equal(p->state, H1S_FAILED);
	assert_non_null(p->why);
	size_t used = 99;
	assert_int_equal(h1_feed(p, "HTTP/1.1 200 OK\r\n\r\n", 19, NULL, NULL, NULL, &used),
	                 H1_ERROR);
	assert_int_equal(used, 0);
	assert_int_equal(h1_eof(p), H1_ERROR);
	assert_int_equal(p->state, H1S_FAILED);
}

static void test_content_length_body_fed_whole(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	const char *r = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n"
	                "\r\nhello world";
	assert_int_equal(parse(&p, r, false, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(r));
	assert_int_equal(p.status, 200);
	assert_int_equal(p.length, 11);
	assert_false(p.is_close);
	assert_false(p.is_chunked);
	assert_false(p.is_http10);
	assert_int_equal(p.retry_after, -1);
	assert_int_equal(s.n_heads, 1);
	assert_int_equal(s.head_status, 200);
	assert_int_equal(s.body_len, 11);
	assert_memory_equal(s.body, "hello world", 11);
	assert_int_equal(h1_eof(&p), H1_DONE);
	/* A finished parser reads nothing more. */
	assert_int_equal(h1_feed(&p, "x", 1, on_head, on_body, &s, &used), H1_DONE);
	assert_int_equal(used, 0);
}

static void test_content_length_body_same_at_every_split_and_byte_by_byte(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 26\r\nX-Other: a, b\r\n"
	                "\r\nabcdefghijklmnopqrstuvwxyz";
	assert_int_equal(parse_every_way(&p, r, false, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(r));
	assert_int_equal(s.body_len, 26);
	assert_memory_equal(s.body, "abcdefghijklmnopqrstuvwxyz", 26);
}

static void test_content_length_zero_is_done_at_the_blank_line(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(parse_every_way(&p, r, false, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(r));
	assert_int_equal(s.n_heads, 1);
	assert_int_equal(s.body_len, 0);
	assert_false(p.is_close);
}

static void test_chunked_with_extensions_and_trailers_at_every_split(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	const char *r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                "5;name=value\r\nhello\r\n"
	                "1 ; a=\"b;c\"\r\n,\r\n"
	                "6\r\n world\r\n"
	                "0;last\r\n"
	                "X-Trailer: 1\r\nX-Checksum: abc\r\n"
	                "\r\n";
	assert_int_equal(parse_every_way(&p, r, false, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(r));
	assert_true(p.is_chunked);
	assert_false(p.is_close);
	assert_int_equal(p.length, -1);
	assert_int_equal(s.body_len, 12);
	assert_memory_equal(s.body, "hello, world", 12);
	assert_int_equal(h1_eof(&p), H1_DONE);
}

static void test_chunk_sizes_in_uppercase_and_lowercase_hex(void **state)
{
	char body[0x1F + 1];
	memset(body, 'x', sizeof body - 1);
	body[sizeof body - 1] = '\0';
	char r[512];
	snprintf(r, sizeof r,
	         "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
	         "1F\r\n%s\r\na\r\n0123456789\r\n00A\r\nABCDEFGHIJ\r\n0\r\n\r\n",
	         body);
	struct h1_parser p;
	struct seen s;
	size_t used;
	assert_int_equal(parse_every_way(&p, r, false, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(r));
	assert_int_equal(s.body_len, 0x1F + 10 + 10);
	assert_memory_equal(s.body, body, 0x1F);
	assert_memory_equal(s.body + 0x1F, "0123456789ABCDEFGHIJ", 20);
}

static void test_body_without_framing_runs_to_close(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	const char *r =
	    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it\r\n\r\nand more";
	assert_int_equal(parse_every_way(&p, r, false, &s, &used), H1_MORE);
	assert_int_equal(used, strlen(r));
	assert_int_equal(p.state, H1S_BODY_CLOSE);
	assert_true(p.is_close);
	assert_int_equal(s.body_len, strlen("all of it\r\n\r\nand more"));
	assert_memory_equal(s.body, "all of it\r\n\r\nand more", s.body_len);
	assert_int_equal(h1_eof(&p), H1_DONE);
	assert_int_equal(p.state, H1S_DONE);
	assert_int_equal(h1_eof(&p), H1_DONE);
}

static void test_http10_closes_unless_it_says_keep_alive(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	assert_int_equal(
	    parse(&p, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, &s, &used), H1_DONE);
	assert_true(p.is_http10);
	assert_true(p.is_close);

	assert_int_equal(parse_every_way(&p,
	                                 "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
	                                 "Content-Length: 2\r\n\r\nok",
	                                 false, &s, &used),
	                 H1_DONE);
	assert_true(p.is_http10);
	assert_false(p.is_close);
	assert_memory_equal(s.body, "ok", 2);

	/* keep-alive cannot keep a connection whose body ends at its close. */
	assert_int_equal(parse(&p, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nto the end",
	                       false, &s, &used),
	                 H1_MORE);
	assert_true(p.is_close);
	assert_int_equal(h1_eof(&p), H1_DONE);

	/* A close said once stays said, whatever line comes after it. */
	assert_int_equal(parse(&p,
	                       "HTTP/1.0 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\n"
	                       "Content-Length: 2\r\n\r\nok",
	                       false, &s, &used),
	                 H1_DONE);
	assert_true(p.is_close);
}

static void test_connection_close_on_http11(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	assert_int_equal(parse_every_way(&p,
	                                 "HTTP/1.1 200 OK\r\nConnection: close\r\n"
	                                 "Content-Length: 2\r\n\r\nok",
	                                 false, &s, &used),
	                 H1_DONE);
	assert_true(p.is_close);
	/* As one element of a list, in any case. */
	assert_int_equal(parse(&p,
	                       "HTTP/1.1 200 OK\r\nConnection: TE , CLOSE\r\n"
	                       "Content-Length: 0\r\n\r\n",
	                       false, &s, &used),
	                 H1_DONE);
	assert_true(p.is_close);
	/* keep-alive on 1.1 changes nothing; "closed" is not "close". */
	assert_int_equal(parse(&p,
	                       "HTTP/1.1 200 OK\r\nConnection: keep-alive, closed\r\n"
	                       "Content-Length: 0\r\n\r\n",
	                       false, &s, &used),
	                 H1_DONE);
	assert_false(p.is_close);
}

static void test_100_continue_then_200_calls_head_once_with_200(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	const char *r = "HTTP/1.1 100 Continue\r\n\r\n"
	                "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n"
	                "Content-Length: 99\r\nRetry-After: 5\r\n\r\n"
	                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
	assert_int_equal(parse_every_way(&p, r, false, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(r));
	assert_int_equal(s.n_heads, 1);
	assert_int_equal(s.head_status, 200);
	assert_int_equal(p.status, 200);
	/* Nothing of the interim answers' headers carries over. */
	assert_int_equal(p.length, 3);
	assert_int_equal(p.retry_after, -1);
	assert_memory_equal(s.body, "abc", 3);
}

static void test_204_and_304_have_no_body(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	const char *r204 = "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n";
	assert_int_equal(parse_every_way(&p, r204, false, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(r204));
	assert_int_equal(s.n_heads, 1);
	assert_int_equal(s.head_status, 204);
	assert_int_equal(s.body_len, 0);
	assert_false(p.is_close);

	/* No framing at all, yet not a body to the close. */
	const char *r304 = "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\nHTTP/1.1 200";
	assert_int_equal(parse_every_way(&p, r304, false, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(r304) - strlen("HTTP/1.1 200"));
	assert_int_equal(s.head_status, 304);
	assert_int_equal(s.body_len, 0);
	assert_false(p.is_close);
}

static void test_response_to_head_has_no_body_whatever_its_headers_say(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
	assert_int_equal(parse_every_way(&p, r, true, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(r));
	assert_int_equal(p.length, 1000);
	assert_int_equal(s.n_heads, 1);
	assert_int_equal(s.body_len, 0);

	r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	assert_int_equal(parse_every_way(&p, r, true, &s, &used), H1_DONE);
	assert_int_equal(s.body_len, 0);

	/* Without any framing: still done, and the connection can go on. */
	r = "HTTP/1.1 200 OK\r\n\r\n";
	assert_int_equal(parse_every_way(&p, r, true, &s, &used), H1_DONE);
	assert_false(p.is_close);

	/* An interim answer keeps the parser's HEAD-ness. */
	r = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n";
	assert_int_equal(parse_every_way(&p, r, true, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(r));
	assert_int_equal(s.body_len, 0);
}

static void test_bytes_after_the_response_are_not_used(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	const char *first = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
	char r[256];
	snprintf(r, sizeof r, "%sHTTP/1.1 200 OK\r\n garbage", first);
	assert_int_equal(parse_every_way(&p, r, false, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(first));
	assert_int_equal(s.body_len, 3);

	const char *chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                      "3\r\nabc\r\n0\r\n\r\n";
	snprintf(r, sizeof r, "%sXYZ", chunked);
	assert_int_equal(parse_every_way(&p, r, false, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(chunked));
}

/* Parses each whole and at every split point; each must fail for good. */
static void check_all_fail(const char *const *responses, size_t n)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	for (size_t i = 0; i < n; i++) {
		print_message("%s\n", responses[i]);
		assert_int_equal(parse_every_way(&p, responses[i], false, &s, &used), H1_ERROR);
		check_failed(&p);
		assert_int_equal(s.n_heads, 0);
		assert_int_equal(s.body_len, 0);
	}
}

static void test_malformed_responses_fail_and_stay_failed(void **state)
{
	static const char *const bad[] = {
	    "SSH-2.0-OpenSSH_9.6\r\n",
	    "<html>not http</html>\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
	    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n",
	    "HTTP/1.1 200 OK\r\n\tX-Folded: a\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nNoColonHere\r\n\r\n",
	    "HTTP/1.1 200 OK\r\n: no name\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n\x1f\x8b\r\n0\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n",
	    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
	    "HTTP/1.1 099 Low\r\n\r\n",
	    "HTTP/1.1 2000 OK\r\n\r\n",
	    "HTTP/1.1 200OK\r\n\r\n",
	};
	check_all_fail(bad, sizeof bad / sizeof bad[0]);
}

static void test_bad_chunk_framing_fails_after_the_head(void **state)
{
	static const char *const bad[] = {
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "10000000000000000\r\n",
	};
	struct h1_parser p;
	struct seen s;
	size_t used;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		print_message("%s\n", bad[i]);
		assert_int_equal(parse_every_way(&p, bad[i], false, &s, &used), H1_ERROR);
		check_failed(&p);
		assert_int_equal(s.n_heads, 1);
	}
	/* The chunk's own bytes did arrive before its missing CRLF was seen. */
	assert_int_equal(parse(&p, bad[4], false, &s, &used), H1_ERROR);
	assert_int_equal(s.body_len, 3);
	assert_memory_equal(s.body, "abc", 3);
}

/* "HTTP/1.1 200 OK\r\n" then "X: vvv...\r\n" with the line (its CR
 * included) 'line_len' bytes long, then the rest. */
static char *with_long_line(size_t line_len, const char *rest)
{
	const char *status = "HTTP/1.1 200 OK\r\n";
	size_t total = strlen(status) + line_len + 1 + strlen(rest) + 1;
	char *r = malloc(total);
	assert_non_null(r);
	strcpy(r, status);
	char *l = r + strlen(status);
	memcpy(l, "X: ", 3);
	memset(l + 3, 'v', line_len - 4);
	memcpy(l + line_len - 1, "\r\n", 2);
	strcpy(l + line_len + 1, rest);
	return r;
}

static void test_line_of_exactly_line_max_is_read_and_one_more_fails(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	char *r = with_long_line(H1_LINE_MAX, "Content-Length: 0\r\n\r\n");
	assert_int_equal(parse(&p, r, false, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(r));
	struct seen t = {0};
	h1_parser_init(&p, false);
	assert_int_equal(feed_pieces(&p, r, strlen(r), 1, 1, &t, &used), H1_DONE);
	free(r);

	r = with_long_line(H1_LINE_MAX + 1, "Content-Length: 0\r\n\r\n");
	assert_int_equal(parse(&p, r, false, &s, &used), H1_ERROR);
	check_failed(&p);
	h1_parser_init(&p, false);
	memset(&t, 0, sizeof t);
	assert_int_equal(feed_pieces(&p, r, strlen(r), 1, 1, &t, &used), H1_ERROR);
	check_failed(&p);
	free(r);

	/* A line that never ends fails as soon as it is too long. */
	r = with_long_line(2 * H1_LINE_MAX, "");
	r[strlen(r) - 2] = '\0'; /* no CR LF */
	h1_parser_init(&p, false);
	memset(&t, 0, sizeof t);
	assert_int_equal(feed_pieces(&p, r, strlen(r), 1000, 1000, &t, &used), H1_ERROR);
	check_failed(&p);
	free(r);
}

/* A head of exactly 'total' bytes: the status line, Content-Length: 0,
 * padding header lines and the blank line. */
static char *head_of_size(size_t total)
{
	char *r = malloc(total + 1);
	assert_non_null(r);
	const char *start = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n";
	size_t at = strlen(start);
	memcpy(r, start, at);
	while (total - at - 2 > 0) {
		size_t left = total - at - 2;
		/* Lines of 100 bytes, or the rest (at least "P:\r\n", 4 bytes). */
		size_t n = left >= 104 ? 100 : left;
		assert_true(n >= 4);
		memcpy(r + at, "P:", 2);
		memset(r + at + 2, 'p', n - 4);
		memcpy(r + at + n - 2, "\r\n", 2);
		at += n;
	}
	memcpy(r + at, "\r\n", 3);
	assert_int_equal(strlen(r), total);
	return r;
}

static void test_head_of_head_max_is_read_and_one_byte_more_fails(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	char *r = head_of_size(H1_HEAD_MAX);
	assert_int_equal(parse(&p, r, false, &s, &used), H1_DONE);
	assert_int_equal(used, H1_HEAD_MAX);
	assert_int_equal(s.n_heads, 1);
	free(r);

	r = head_of_size(H1_HEAD_MAX + 1);
	assert_int_equal(parse(&p, r, false, &s, &used), H1_ERROR);
	check_failed(&p);
	assert_int_equal(s.n_heads, 0);
	free(r);
}

static void test_interim_answers_count_toward_head_max(void **state)
{
	/* 1xx heads of 1000 bytes each, 70 of them: past the cap together. */
	size_t n = 70, one = 1000;
	char *r = malloc(n * one + 64);
	assert_non_null(r);
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(r + at, "HTTP/1.1 100 Continue\r\nP:", 25);
		memset(r + at + 25, 'p', one - 25 - 4);
		memcpy(r + at + one - 4, "\r\n\r\n", 4);
		at += one;
	}
	strcpy(r + at, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	struct h1_parser p;
	struct seen s;
	size_t used;
	assert_int_equal(parse(&p, r, false, &s, &used), H1_ERROR);
	check_failed(&p);
	free(r);
}

static void test_two_equal_content_lengths_are_one(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	assert_int_equal(parse_every_way(&p,
	                                 "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
	                                 "content-length:3  \r\n\r\nabc",
	                                 false, &s, &used),
	                 H1_DONE);
	assert_int_equal(p.length, 3);
	assert_int_equal(s.body_len, 3);
}

/* We send no TE header, so chunked is the only coding a server may apply:
 * "gzip, chunked" is refused (in the malformed list above) rather than
 * handing compressed bytes on as text; "CHUNKED" is still chunked. */
static void test_only_chunked_or_identity_transfer_codings_are_read(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	assert_int_equal(parse_every_way(&p,
	                                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n"
	                                 "\r\n2\r\nok\r\n0\r\n\r\n",
	                                 false, &s, &used),
	                 H1_DONE);
	assert_true(p.is_chunked);
	assert_int_equal(s.body_len, 2);

	/* identity alone: the Content-Length frames the body. */
	assert_int_equal(parse(&p,
	                       "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n"
	                       "Content-Length: 2\r\n\r\nok",
	                       false, &s, &used),
	                 H1_DONE);
	assert_false(p.is_chunked);
	assert_int_equal(s.body_len, 2);
}

static void test_chunked_and_content_length_chunked_wins_and_closes(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n"
	                "\r\n4\r\nbody\r\n0\r\n\r\n";
	assert_int_equal(parse_every_way(&p, r, false, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(r));
	assert_true(p.is_chunked);
	assert_true(p.is_close);
	assert_int_equal(s.body_len, 4);
	assert_memory_equal(s.body, "body", 4);

	/* In the other order too. */
	r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n"
	    "\r\n4\r\nbody\r\n0\r\n\r\n";
	assert_int_equal(parse(&p, r, false, &s, &used), H1_DONE);
	assert_true(p.is_close);
	assert_int_equal(s.body_len, 4);
}

static void test_eof_before_anything_or_mid_answer_is_an_error(void **state)
{
	struct h1_parser p;
	h1_parser_init(&p, false);
	assert_int_equal(h1_eof(&p), H1_ERROR);
	assert_non_null(strstr(p.why, "without answering"));
	check_failed(&p);

	static const char *const cut[] = {
	    "H",
	    "HTTP/1.1 200 OK\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
	    "HTTP/1.1 100 Continue\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
		struct seen s;
		size_t used;
		print_message("%s\n", cut[i]);
		assert_int_equal(parse(&p, cut[i], false, &s, &used), H1_MORE);
		assert_int_equal(used, strlen(cut[i]));
		assert_int_equal(h1_eof(&p), H1_ERROR);
		assert_non_null(strstr(p.why, "mid-answer"));
		check_failed(&p);
	}
}

static void test_body_callback_stop_says_where_it_stopped(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
	char r[128];
	snprintf(r, sizeof r, "%s0123456789", head);
	/* Byte by byte, stopping at the 4th body byte. */
	h1_parser_init(&p, false);
	memset(&s, 0, sizeof s);
	s.stop_body_after = 4;
	assert_int_equal(feed_pieces(&p, r, strlen(r), 1, 1, &s, &used), H1_STOP);
	assert_int_equal(used, strlen(head) + 4);
	assert_int_equal(s.body_len, 4);

	/* Fed at once: the stop comes after the body bytes handed over, and
	 * *used points just past them. */
	h1_parser_init(&p, false);
	memset(&s, 0, sizeof s);
	s.stop_body_after = 1;
	assert_int_equal(h1_feed(&p, r, strlen(r), on_head, on_body, &s, &used), H1_STOP);
	assert_int_equal(used, strlen(r));
	assert_ptr_equal(s.last_end, r + used);

	/* A stop inside a chunk leaves the rest of the stream readable. */
	const char *c = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
	h1_parser_init(&p, false);
	memset(&s, 0, sizeof s);
	s.stop_body_after = 1;
	assert_int_equal(h1_feed(&p, c, strlen(c), on_head, on_body, &s, &used), H1_STOP);
	assert_ptr_equal(s.last_end, c + used);
	assert_int_equal(s.body_len, 3);
	s.stop_body_after = 0;
	size_t more;
	assert_int_equal(h1_feed(&p, c + used, strlen(c) - used, on_head, on_body, &s, &more),
	                 H1_DONE);
	assert_int_equal(used + more, strlen(c));
	assert_int_equal(s.body_len, 7);
	assert_memory_equal(s.body, "abcdefg", 7);
	assert_int_equal(s.n_heads, 1);
}

static void test_head_callback_stop_stops_before_the_body(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	const char *head = "HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\n";
	char r[128];
	snprintf(r, sizeof r, "%sbusy", head);
	for (size_t k = 0; k <= strlen(r); k++) {
		h1_parser_init(&p, false);
		memset(&s, 0, sizeof s);
		s.stop_head = 1;
		assert_int_equal(feed_pieces(&p, r, strlen(r), k, 0, &s, &used), H1_STOP);
		assert_int_equal(used, strlen(head));
		assert_int_equal(s.n_heads, 1);
		assert_int_equal(s.head_status, 503);
		assert_int_equal(s.body_len, 0);
	}
	/* Even where no body follows. */
	h1_parser_init(&p, false);
	memset(&s, 0, sizeof s);
	s.stop_head = 1;
	const char *r204 = "HTTP/1.1 204 No Content\r\n\r\n";
	assert_int_equal(h1_feed(&p, r204, strlen(r204), on_head, on_body, &s, &used), H1_STOP);
	assert_int_equal(used, strlen(r204));
}

static long long retry_after_of(const char *value)
{
	char r[256];
	snprintf(r, sizeof r,
	         "HTTP/1.1 429 Too Many\r\nRetry-After: %s\r\nContent-Length: 0\r\n\r\n", value);
	struct h1_parser p;
	struct seen s;
	size_t used;
	assert_int_equal(parse(&p, r, false, &s, &used), H1_DONE);
	assert_int_equal(s.head_status, 429);
	return p.retry_after;
}

static void test_retry_after_seconds_dates_and_garbage(void **state)
{
	assert_int_equal(retry_after_of("120"), 120);
	assert_int_equal(retry_after_of("0"), 0);
	assert_int_equal(retry_after_of("  7  "), 7);

	char date[64];
	time_t at = time(NULL) + 300;
	struct tm tm;
	gmtime_r(&at, &tm);
	assert_true(strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm) > 0);
	long long secs = retry_after_of(date);
	print_message("%s -> %lld\n", date, secs);
	assert_true(secs >= 295 && secs <= 305);

	assert_int_equal(retry_after_of("Sun, 06 Nov 1994 08:49:37 GMT"), 0);

	assert_int_equal(retry_after_of("soon"), -1);
	assert_int_equal(retry_after_of("-5"), -1);
	assert_int_equal(retry_after_of("1.5"), -1);
	assert_int_equal(retry_after_of("Sun, 06 Nov 1994 08:49:37 PST"), -1);
	assert_int_equal(retry_after_of("Sun, 06 Nov 1994 08:49:37 GMT trailing"), -1);
	/* Past 18 digits is unreadable. */
	assert_int_equal(retry_after_of("1234567890123456789"), -1);
	/* A long but readable number is capped (at 100 years). */
	assert_int_equal(retry_after_of("999999999999"), 100LL * 365 * 24 * 3600);
}

static void test_status_line_forms(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	assert_int_equal(
	    parse_every_way(&p, "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, &s, &used),
	    H1_DONE);
	assert_int_equal(p.status, 200);
	assert_int_equal(parse(&p, "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", false, &s, &used),
	                 H1_DONE);
	assert_int_equal(p.status, 404);
	assert_int_equal(parse(&p, "HTTP/1.1 599 Any reason: at all\r\nContent-Length: 0\r\n\r\n",
	                       false, &s, &used),
	                 H1_DONE);
	assert_int_equal(s.head_status, 599);
	assert_int_equal(parse(&p, "HTTP/1.1 999 x\r\nContent-Length: 0\r\n\r\n", false, &s, &used),
	                 H1_DONE);
	assert_int_equal(s.head_status, 999);

	static const char *const bad[] = {
	    "HTTP/1.1 20\r\n\r\n",      "HTTP/2 200\r\n\r\n",       "HTTP/1.2 200 OK\r\n\r\n",
	    "http/1.1 200 OK\r\n\r\n",  "HTTP/1.1  200 OK\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n",
	    "HTTP/1.1\t200 OK\r\n\r\n", " HTTP/1.1 200 OK\r\n\r\n",
	};
	check_all_fail(bad, sizeof bad / sizeof bad[0]);
}

static void test_lf_only_line_endings(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	const char *r = "HTTP/1.1 200 OK\nContent-Length: 2\nX-A: b\n\nok";
	assert_int_equal(parse_every_way(&p, r, false, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(r));
	assert_memory_equal(s.body, "ok", 2);

	r = "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\nT: 1\n\n";
	assert_int_equal(parse_every_way(&p, r, false, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(r));
	assert_int_equal(s.body_len, 2);
}

static void test_blank_lines_before_the_status_line_are_skipped_at_every_split(void **state)
{
	struct h1_parser p;
	struct seen s;
	size_t used;
	const char *r = "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(parse_every_way(&p, r, false, &s, &used), H1_DONE);
	assert_int_equal(used, strlen(r));
	r = "\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(parse_every_way(&p, r, false, &s, &used), H1_DONE);
	r = "\n\n\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(parse_every_way(&p, r, false, &s, &used), H1_DONE);
	/* Not forever. */
	r = "\r\n\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(parse_every_way(&p, r, false, &s, &used), H1_ERROR);
	/* Nor between an interim answer and the final one. */
	r = "HTTP/1.1 100 Continue\r\n\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(parse_every_way(&p, r, false, &s, &used), H1_ERROR);
}

/* Splits url into buffers of 64 bytes; false when h1_split_url is. */
struct parts {
	char host[64], port[64], authority[64], prefix[64];
};

static bool split(const char *url, struct parts *o)
{
	memset(o, 'Z', sizeof *o);
	return h1_split_url(url, o->host, sizeof o->host, o->port, sizeof o->port, o->authority,
	                    sizeof o->authority, o->prefix, sizeof o->prefix);
}

static void check_split(const char *url, const char *host, const char *port, const char *authority,
                        const char *prefix)
{
	struct parts o;
	print_message("%s\n", url);
	assert_true(split(url, &o));
	assert_string_equal(o.host, host);
	assert_string_equal(o.port, port);
	assert_string_equal(o.authority, authority);
	assert_string_equal(o.prefix, prefix);
}

static void test_split_url_accepts_http_urls(void **state)
{
	check_split("http://127.0.0.1:8000/v1", "127.0.0.1", "8000", "127.0.0.1:8000", "/v1");
	check_split("http://example.com", "example.com", "80", "example.com", "");
	check_split("http://example.com/", "example.com", "80", "example.com", "");
	check_split("http://example.com:80/a/b/", "example.com", "80", "example.com", "/a/b");
	check_split("http://example.com:80", "example.com", "80", "example.com", "");
	check_split("HTTP://h/x", "h", "80", "h", "/x");
	check_split("Http://h:1/x//", "h", "1", "h:1", "/x");
	check_split("http://h:65535", "h", "65535", "h:65535", "");
	check_split("http://[::1]:9000/v1", "::1", "9000", "[::1]:9000", "/v1");
	check_split("http://[::1]/v1", "::1", "80", "[::1]", "/v1");
	check_split("http://[fe80::1]:80", "fe80::1", "80", "[fe80::1]", "");
}

static void test_split_url_rejects_what_it_cannot_reach(void **state)
{
	static const char *const bad[] = {
	    "https://example.com/v1",
	    "ftp://example.com",
	    "example.com:80",
	    "http:/example.com",
	    "http://user:pw@h/",
	    "http://user@h",
	    "http://h:0",
	    "http://h:65536",
	    "http://h:123456",
	    "http://h:abc",
	    "http://h:",
	    "http://h:-1",
	    "http://:80",
	    "http://",
	    "http:///v1",
	    "http://h/?q",
	    "http://h?q",
	    "http://h/v1#frag",
	    "http://[::1",
	    "http://[]:80",
	    "http://[::1]x",
	    "http://[::1]:",
	    "http://h/v1\r\nX: y",
	    "http://h /v1",
	    "http://h/v 1",
	    "http://h/v1\x7f",
	    "",
	};
	struct parts o;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		print_message("%s\n", bad[i]);
		assert_false(split(bad[i], &o));
	}
}

static void test_split_url_parts_that_do_not_fit_are_refused(void **state)
{
	const char *url = "http://example.com:8000/v1/api";
	char host[16], port[8], authority[32], prefix[16];
	assert_true(h1_split_url(url, host, sizeof host, port, sizeof port, authority,
	                         sizeof authority, prefix, sizeof prefix));
	assert_string_equal(host, "example.com");
	assert_string_equal(authority, "example.com:8000");
	assert_string_equal(prefix, "/v1/api");
	/* Each part exactly one byte too long for its buffer (no room for NUL). */
	assert_false(h1_split_url(url, host, 11, port, sizeof port, authority, sizeof authority,
	                          prefix, sizeof prefix));
	assert_true(h1_split_url(url, host, 12, port, sizeof port, authority, sizeof authority,
	                         prefix, sizeof prefix));
	assert_false(h1_split_url(url, host, sizeof host, port, 4, authority, sizeof authority,
	                          prefix, sizeof prefix));
	assert_true(h1_split_url(url, host, sizeof host, port, 5, authority, sizeof authority,
	                         prefix, sizeof prefix));
	assert_false(h1_split_url(url, host, sizeof host, port, sizeof port, authority, 16, prefix,
	                          sizeof prefix));
	assert_true(h1_split_url(url, host, sizeof host, port, sizeof port, authority, 17, prefix,
	                         sizeof prefix));
	assert_false(h1_split_url(url, host, sizeof host, port, sizeof port, authority,
	                          sizeof authority, prefix, 7));
	assert_true(h1_split_url(url, host, sizeof host, port, sizeof port, authority,
	                         sizeof authority, prefix, 8));
	/* The default port still needs room for "80". */
	assert_false(h1_split_url("http://h", host, sizeof host, port, 2, authority,
	                          sizeof authority, prefix, sizeof prefix));
	/* An empty prefix needs one byte. */
	assert_false(h1_split_url("http://h/", host, sizeof host, port, sizeof port, authority,
	                          sizeof authority, prefix, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_content_length_body_fed_whole),
	    cmocka_unit_test(test_content_length_body_same_at_every_split_and_byte_by_byte),
	    cmocka_unit_test(test_content_length_zero_is_done_at_the_blank_line),
	    cmocka_unit_test(test_chunked_with_extensions_and_trailers_at_every_split),
	    cmocka_unit_test(test_chunk_sizes_in_uppercase_and_lowercase_hex),
	    cmocka_unit_test(test_body_without_framing_runs_to_close),
	    cmocka_unit_test(test_http10_closes_unless_it_says_keep_alive),
	    cmocka_unit_test(test_connection_close_on_http11),
	    cmocka_unit_test(test_100_continue_then_200_calls_head_once_with_200),
	    cmocka_unit_test(test_204_and_304_have_no_body),
	    cmocka_unit_test(test_response_to_head_has_no_body_whatever_its_headers_say),
	    cmocka_unit_test(test_bytes_after_the_response_are_not_used),
	    cmocka_unit_test(test_malformed_responses_fail_and_stay_failed),
	    cmocka_unit_test(test_bad_chunk_framing_fails_after_the_head),
	    cmocka_unit_test(test_line_of_exactly_line_max_is_read_and_one_more_fails),
	    cmocka_unit_test(test_head_of_head_max_is_read_and_one_byte_more_fails),
	    cmocka_unit_test(test_interim_answers_count_toward_head_max),
	    cmocka_unit_test(test_two_equal_content_lengths_are_one),
	    cmocka_unit_test(test_only_chunked_or_identity_transfer_codings_are_read),
	    cmocka_unit_test(test_chunked_and_content_length_chunked_wins_and_closes),
	    cmocka_unit_test(test_eof_before_anything_or_mid_answer_is_an_error),
	    cmocka_unit_test(test_body_callback_stop_says_where_it_stopped),
	    cmocka_unit_test(test_head_callback_stop_stops_before_the_body),
	    cmocka_unit_test(test_retry_after_seconds_dates_and_garbage),
	    cmocka_unit_test(test_status_line_forms),
	    cmocka_unit_test(test_lf_only_line_endings),
	    cmocka_unit_test(test_blank_lines_before_the_status_line_are_skipped_at_every_split),
	    cmocka_unit_test(test_split_url_accepts_http_urls),
	    cmocka_unit_test(test_split_url_rejects_what_it_cannot_reach),
	    cmocka_unit_test(test_split_url_parts_that_do_not_fit_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
