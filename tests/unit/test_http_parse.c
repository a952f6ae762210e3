/*
 * test_http_parse.c — unit tests for http/parse: the request head (whole,
 * at every split point, and each way it is refused), field lookup, what
 * the head says about the body and the connection, the chunked body
 * decoder (whole, at every split point and byte by byte, with its limits)
 * and the decoding of a request path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/parse.h"

/* ---- heads ---------------------------------------------------------------- */

/* Parses the first n bytes of s from a buffer of exactly n bytes, so
 * ASan sees any read past them. */
static long parse_n(const char *s, size_t n, struct http_head *h)
{
	char *copy = malloc(n ? n : 1);
	assert_non_null(copy);
	memcpy(copy, s, n);
	long rc = http_parse_head(copy, n, h);
	if (rc > 0) {
		/* Keep the pointers meaningful: make them point into s. */
		h->method = s + (h->method - copy);
		h->target = s + (h->target - copy);
		for (size_t i = 0; i < h->n_fields; i++) {
			h->fields[i].name = s + (h->fields[i].name - copy);
			h->fields[i].value = s + (h->fields[i].value - copy);
		}
	}
	free(copy);
	return rc;
}

/*
 * Parses s whole, then every prefix of it: a prefix gives 0 until the
 * whole gives its result, and the same result (and the same head) from
 * then on.  Returns the whole's result; the whole's head is in *h.
 */
static long parse_every_split(const char *s, struct http_head *h)
{
	size_t len = strlen(s);
	long rc = parse_n(s, len, h);
	struct http_head *q = malloc(sizeof *q);
	assert_non_null(q);
	bool has_result = false;
	for (size_t k = 0; k <= len; k++) {
		long r = parse_n(s, k, q);
		if (rc > 0) {
			assert_int_equal(r, (size_t)rc <= k ? rc : 0);
		} else {
			/* An error may show before the end, and then stays. */
			if (has_result)
				assert_int_equal(r, rc);
			assert_true(r == 0 || r == rc);
			has_result = r != 0;
		}
		if (r > 0) {
			assert_ptr_equal(q->method, h->method);
			assert_ptr_equal(q->target, h->target);
			assert_int_equal(q->n_fields, h->n_fields);
			assert_memory_equal(q->fields, h->fields,
			                    h->n_fields * sizeof h->fields[0]);
		}
	}
	free(q);
	return rc;
}

static void check_field(const struct http_head *h, size_t i, const char *name, const char *value)
{
	assert_true(i < h->n_fields);
	assert_int_equal(h->fields[i].name_len, strlen(name));
	assert_memory_equal(h->fields[i].name, name, strlen(name));
	assert_int_equal(h->fields[i].value_len, strlen(value));
	assert_memory_equal(h->fields[i].value, value, strlen(value));
}

static void test_complete_head_points_into_the_buffer(void **state)
{
	struct http_head h;
	const char *head = "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: localhost:8085\r\n"
	                   "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n";
	char r[512];
	snprintf(r, sizeof r, "%s{}GET / HTTP/1.1\r\n", head);
	assert_int_equal(parse_every_split(r, &h), strlen(head));
	assert_ptr_equal(h.method, r);
	assert_int_equal(h.method_len, 4);
	assert_ptr_equal(h.target, r + 5);
	assert_int_equal(h.target_len, strlen("/v1/chat/completions?x=1"));
	assert_int_equal(h.minor, 1);
	assert_int_equal(h.n_fields, 3);
	check_field(&h, 0, "Host", "localhost:8085");
	check_field(&h, 1, "Content-Type", "application/json");
	check_field(&h, 2, "Content-Length", "2");

	/* No fields at all; other targets; HTTP/1.0. */
	assert_int_equal(parse_every_split("GET * HTTP/1.0\r\n\r\n", &h), 18);
	assert_int_equal(h.minor, 0);
	assert_int_equal(h.n_fields, 0);
	assert_int_equal(h.target_len, 1);
	assert_int_equal(parse_every_split("OPTIONS http://h/p HTTP/1.1\r\nHost: h\r\n\r\n", &h),
	                 40);
	assert_int_equal(h.method_len, 7);
	assert_int_equal(h.target_len, 10);
	/* Methods are any token, case kept; obs-text in a value is kept. */
	const char *m = "m-1! /%C3%A9 HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n";
	assert_int_equal(parse_every_split(m, &h), strlen(m));
	assert_memory_equal(h.method, "m-1!", 4);
	check_field(&h, 0, "X", "caf\xc3\xa9");
}

static void test_incomplete_heads_are_zero(void **state)
{
	struct http_head h;
	assert_int_equal(http_parse_head(NULL, 0, &h), 0);
	assert_int_equal(http_parse_head("GET", 3, &h), 0);
	assert_int_equal(http_parse_head("GET / HTTP/1.1\r\n", 16, &h), 0);
	assert_int_equal(http_parse_head("GET / HTTP/1.1\r\nHost: x\r\n\r", 26, &h), 0);
	assert_int_equal(http_parse_head("\r\n\r", 3, &h), 0);
}

static void test_empty_lines_before_the_request_line_are_skipped(void **state)
{
	struct http_head h;
	const char *r = "\r\n\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(parse_every_split(r, &h), strlen(r));
	assert_ptr_equal(h.method, r + 5);
	assert_int_equal(h.target_len, 2);
	/* A CR that does not start a CR LF is not an empty line. */
	assert_int_equal(parse_every_split("\rGET / HTTP/1.1\r\n\r\n", &h), -400);
	assert_int_equal(parse_every_split("\r\r\nGET / HTTP/1.1\r\n\r\n", &h), -400);
}

static void test_lf_only_lines_are_accepted(void **state)
{
	struct http_head h;
	const char *r = "GET /x HTTP/1.1\nHost: a \nAccept: */*\r\n\nbody";
	assert_int_equal(parse_every_split(r, &h), strlen(r) - 4);
	assert_int_equal(h.n_fields, 2);
	check_field(&h, 0, "Host", "a");
	check_field(&h, 1, "Accept", "*/*");
	assert_int_equal(parse_every_split("\nGET / HTTP/1.0\n\n", &h), 17);
}

static void check_all(const char *const *heads, size_t n, long want)
{
	struct http_head h;
	for (size_t i = 0; i < n; i++) {
		print_message("%s\n", heads[i]);
		assert_int_equal(parse_every_split(heads[i], &h), want);
	}
}

static void test_malformed_request_lines_are_400(void **state)
{
	static const char *const bad[] = {
	    "GET  / HTTP/1.1\r\n\r\n",
	    "GET /  HTTP/1.1\r\n\r\n",
	    " GET / HTTP/1.1\r\n\r\n",
	    "GET / HTTP/1.1 \r\n\r\n",
	    "GET\t/ HTTP/1.1\r\n\r\n",
	    "GET /a\tb HTTP/1.1\r\n\r\n",
	    "GET /\x7f HTTP/1.1\r\n\r\n",
	    "GET /\r HTTP/1.1\r\n\r\n",
	    "G(T / HTTP/1.1\r\n\r\n",
	    "GET\r\n\r\n",
	    "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
	    "GET / HTTP/1.1\r\r\n\r\n",
	    "GET / http/1.1\r\n\r\n",
	    "GET / HTTP/1.\r\n\r\n",
	    "GET / HTTP/1.10\r\n\r\n",
	    "GET / HTTP/11\r\n\r\n",
	    "GET / HTTP/a.1\r\n\r\n",
	    "GET / HTTPS/1.1\r\n\r\n",
	};
	check_all(bad, sizeof bad / sizeof bad[0], -400);
}

static void test_missing_version_is_400(void **state)
{
	static const char *const bad[] = {
	    "GET /\r\n\r\n",
	    "GET / \r\n\r\n",
	    "GET /\n\n",
	};
	check_all(bad, sizeof bad / sizeof bad[0], -400);
}

static void test_bad_field_lines_are_400(void **state)
{
	static const char *const bad[] = {
	    "GET / HTTP/1.1\r\nHost : x\r\n\r\n",   /* space before the colon */
	    "GET / HTTP/1.1\r\nHost\t: x\r\n\r\n",  /* tab before the colon */
	    "GET / HTTP/1.1\r\nHo st: x\r\n\r\n",   /* not a token */
	    "GET / HTTP/1.1\r\n(x): y\r\n\r\n",     /* not a token */
	    "GET / HTTP/1.1\r\n: x\r\n\r\n",        /* no name */
	    "GET / HTTP/1.1\r\nHost x\r\n\r\n",     /* no colon */
	    "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", /* obs-fold */
	    "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n",
	    "GET / HTTP/1.1\r\n Host: x\r\n\r\n", /* whitespace before the first field */
	    "GET / HTTP/1.1\r\n \r\n\r\n",
	    "GET / HTTP/1.1\r\nX: a\x01"
	    "b\r\n\r\n", /* control characters in a value */
	    "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n",
	    "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
	    "GET / HTTP/1.1\r\nX: \x1b[0m\r\n\r\n",
	    "GET / HTTP/1.1\r\nX: a\r\r\n\r\n",
	    "GET / HTTP/1.1\r\n\rX: a\r\n\r\n",
	};
	check_all(bad, sizeof bad / sizeof bad[0], -400);

	/* A NUL, which strlen cannot carry. */
	struct http_head h;
	const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
	assert_int_equal(http_parse_head(nul, sizeof nul - 1, &h), -400);
}

/* A head with n fields "Xi: i". */
static char *with_fields(size_t n)
{
	size_t cap = 64 + n * 16;
	char *r = malloc(cap);
	assert_non_null(r);
	size_t at = (size_t)snprintf(r, cap, "GET / HTTP/1.1\r\n");
	for (size_t i = 0; i < n; i++)
		at += (size_t)snprintf(r + at, cap - at, "X%zu: %zu\r\n", i, i);
	snprintf(r + at, cap - at, "\r\n");
	return r;
}

static void test_more_than_max_fields_is_431(void **state)
{
	struct http_head h;
	char *r = with_fields(HTTP_MAX_FIELDS);
	assert_int_equal(parse_every_split(r, &h), strlen(r));
	assert_int_equal(h.n_fields, HTTP_MAX_FIELDS);
	check_field(&h, HTTP_MAX_FIELDS - 1, "X63", "63");
	free(r);
	r = with_fields(HTTP_MAX_FIELDS + 1);
	assert_int_equal(parse_every_split(r, &h), -431);
	free(r);
}

static void test_versions_other_than_1_0_and_1_1_are_505(void **state)
{
	static const char *const other[] = {
	    "GET / HTTP/2.0\r\n\r\n", "GET / HTTP/1.2\r\nHost: x\r\n\r\n",
	    "GET / HTTP/0.9\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	    "GET / HTTP/9.9\n\n",
	};
	check_all(other, sizeof other / sizeof other[0], -505);
}

static void test_values_are_trimmed_of_spaces_and_tabs(void **state)
{
	struct http_head h;
	const char *r =
	    "GET / HTTP/1.1\r\nA:  \t a  b \t \r\nB:\r\nC: \t \r\nD:x\r\nE:\tx\ty\r\n\r\n";
	assert_int_equal(parse_every_split(r, &h), strlen(r));
	assert_int_equal(h.n_fields, 5);
	check_field(&h, 0, "A", "a  b");
	check_field(&h, 1, "B", "");
	check_field(&h, 2, "C", "");
	check_field(&h, 3, "D", "x");
	check_field(&h, 4, "E", "x\ty");
}

static void test_field_lookup_ignores_case_and_finds_the_first(void **state)
{
	struct http_head h;
	const char *r = "GET / HTTP/1.1\r\nX-Key: one\r\nHOST: h\r\nx-key: two\r\n\r\n";
	assert_int_equal(http_parse_head(r, strlen(r), &h), strlen(r));
	size_t len = 99;
	const char *v = http_head_field(&h, "x-KEY", &len);
	assert_ptr_equal(v, strstr(r, "one"));
	assert_int_equal(len, 3);
	v = http_head_field(&h, "host", &len);
	assert_non_null(v);
	assert_int_equal(len, 1);
	assert_null(http_head_field(&h, "X-Ke", &len));
	assert_null(http_head_field(&h, "X-Keys", &len));
	assert_null(http_head_field(&h, "", &len));
}

/* ---- framing -------------------------------------------------------------- */

/* The framing of "<request line>\r\n<fields>\r\n". */
static int framing(const char *request_line, const char *fields, struct http_framing *f)
{
	char r[2048];
	snprintf(r, sizeof r, "%s\r\n%s\r\n", request_line, fields);
	struct http_head h;
	assert_int_equal(http_parse_head(r, strlen(r), &h), strlen(r));
	memset(f, 0x5a, sizeof *f);
	int status = http_head_framing(&h, f);
	struct http_framing again;
	assert_int_equal(http_head_framing(&h, &again), status);
	assert_int_equal(again.is_chunked, f->is_chunked);
	assert_int_equal(again.length, f->length);
	assert_int_equal(again.is_keep_alive, f->is_keep_alive);
	assert_int_equal(again.expects_continue, f->expects_continue);
	return status;
}

#define POST11 "POST / HTTP/1.1"
#define POST10 "POST / HTTP/1.0"

static void test_content_length(void **state)
{
	struct http_framing f;
	assert_int_equal(framing(POST11, "Host: h\r\n", &f), 0);
	assert_false(f.is_chunked);
	assert_int_equal(f.length, 0);
	assert_true(f.is_keep_alive);
	assert_false(f.expects_continue);
	assert_int_equal(framing(POST11, "Host: h\r\nContent-Length: 42\r\n", &f), 0);
	assert_int_equal(f.length, 42);
	assert_int_equal(framing(POST11, "Host: h\r\ncontent-length:007\r\n", &f), 0);
	assert_int_equal(f.length, 7);
	/* Given twice, or as a list, with equal values: one. */
	assert_int_equal(
	    framing(POST11, "Host: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n", &f), 0);
	assert_int_equal(f.length, 5);
	assert_int_equal(framing(POST11, "Host: h\r\nContent-Length: 5, 5\r\n", &f), 0);
	assert_int_equal(f.length, 5);
	assert_int_equal(framing(POST11, "Host: h\r\nContent-Length: 5,5 ,\t5\r\n", &f), 0);
	assert_int_equal(f.length, 5);
	assert_int_equal(framing(POST11, "Host: h\r\nContent-Length: 18446744073709551615\r\n", &f),
	                 0);
	assert_int_equal(f.length, 18446744073709551615ull);

	static const char *const bad[] = {
	    "Content-Length: 5\r\nContent-Length: 6\r\n",
	    "Content-Length: 5, 6\r\n",
	    "Content-Length: 5,,5\r\n",
	    "Content-Length: 5,\r\n",
	    "Content-Length:\r\n",
	    "Content-Length: +5\r\n",
	    "Content-Length: -5\r\n",
	    "Content-Length: 0x5\r\n",
	    "Content-Length: 5a\r\n",
	    "Content-Length: 5 5\r\n",
	    "Content-Length: 5.0\r\n",
	    "Content-Length: 18446744073709551616\r\n",
	    "Content-Length: 99999999999999999999999999\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char fields[256];
		snprintf(fields, sizeof fields, "Host: h\r\n%s", bad[i]);
		print_message("%s", bad[i]);
		assert_int_equal(framing(POST11, fields, &f), 400);
		assert_false(f.is_keep_alive);
		assert_int_equal(framing(POST10, bad[i], &f), 400);
	}
}

static void test_transfer_encoding(void **state)
{
	struct http_framing f;
	assert_int_equal(framing(POST11, "Host: h\r\nTransfer-Encoding: chunked\r\n", &f), 0);
	assert_true(f.is_chunked);
	assert_int_equal(f.length, 0);
	assert_int_equal(framing(POST11, "Host: h\r\ntransfer-encoding:  CHUNKED \r\n", &f), 0);
	assert_true(f.is_chunked);

	/* Both framings: a smuggling attempt, or a proxy's mistake. */
	assert_int_equal(
	    framing(POST11, "Host: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n", &f),
	    400);
	assert_false(f.is_keep_alive);
	assert_int_equal(
	    framing(POST11, "Host: h\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n", &f),
	    400);
	assert_int_equal(framing(POST10, "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", &f),
	                 400);

	static const char *const other[] = {
	    "Transfer-Encoding: gzip\r\n",
	    "Transfer-Encoding: gzip, chunked\r\n",
	    "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
	    "Transfer-Encoding: chunked, chunked\r\n",
	    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
	    "Transfer-Encoding: chunked,\r\n",
	    "Transfer-Encoding: chunked;q=1\r\n",
	    "Transfer-Encoding: identity\r\n",
	    "Transfer-Encoding: chunkedx\r\n",
	    "Transfer-Encoding:\r\n",
	};
	for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
		char fields[256];
		snprintf(fields, sizeof fields, "Host: h\r\n%s", other[i]);
		print_message("%s", other[i]);
		assert_int_equal(framing(POST11, fields, &f), 501);
		assert_false(f.is_keep_alive);
	}
	/* HTTP/1.0 has no transfer codings at all (RFC 9112 §6.1). */
	assert_int_equal(framing(POST10, "Transfer-Encoding: chunked\r\n", &f), 501);
	assert_int_equal(framing(POST10, "Host: h\r\nTransfer-Encoding: gzip\r\n", &f), 501);
}

static void test_host(void **state)
{
	struct http_framing f;
	assert_int_equal(framing(POST11, "", &f), 400);
	assert_int_equal(framing(POST11, "Content-Length: 1\r\n", &f), 400);
	assert_int_equal(framing(POST11, "Host: a\r\nHost: a\r\n", &f), 400);
	assert_int_equal(framing(POST11, "host: a\r\nHOST: b\r\n", &f), 400);
	assert_int_equal(framing(POST11, "hOsT:\r\n", &f), 0);
	assert_int_equal(framing(POST10, "", &f), 0);
	assert_int_equal(framing(POST10, "Host: a\r\n", &f), 0);
	/* More than one Host is refused in any version (RFC 9112 §3.2). */
	assert_int_equal(framing(POST10, "Host: a\r\nHost: b\r\n", &f), 400);
}

static void test_keep_alive(void **state)
{
	static const struct {
		const char *line, *fields;
		bool is_keep_alive;
	} cases[] = {
	    {POST11, "Host: h\r\n", true},
	    {POST11, "Host: h\r\nConnection: close\r\n", false},
	    {POST11, "Host: h\r\nConnection: CLOSE\r\n", false},
	    {POST11, "Host: h\r\nConnection: TE , Close\r\n", false},
	    {POST11, "Host: h\r\nConnection: upgrade\r\nConnection: te, close\r\n", false},
	    {POST11, "Host: h\r\nConnection: keep-alive, close\r\n", false},
	    {POST11, "Host: h\r\nConnection: closed\r\n", true},
	    {POST11, "Host: h\r\nConnection: keep-alive\r\n", true},
	    {POST11, "Host: h\r\nX-Connection: close\r\n", true},
	    {POST10, "", false},
	    {POST10, "Connection: keep-alive\r\n", true},
	    {POST10, "Connection: Keep-Alive\r\n", true},
	    {POST10, "Connection: te,KEEP-ALIVE\r\n", true},
	    {POST10, "Connection: te\r\nConnection: x, keep-alive\r\n", true},
	    {POST10, "Connection: keep-alives\r\n", false},
	    /* Both said: close wins. */
	    {POST10, "Connection: keep-alive\r\nConnection: close\r\n", false},
	    {POST10, "Connection: close, keep-alive\r\n", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct http_framing f;
		print_message("%s: %s", cases[i].line, cases[i].fields);
		assert_int_equal(framing(cases[i].line, cases[i].fields, &f), 0);
		assert_int_equal(f.is_keep_alive, cases[i].is_keep_alive);
	}
}

static void test_expect(void **state)
{
	struct http_framing f;
	assert_int_equal(framing(POST11, "Host: h\r\nExpect: 100-continue\r\n", &f), 0);
	assert_true(f.expects_continue);
	assert_true(f.is_keep_alive);
	assert_int_equal(framing(POST11, "Host: h\r\nexpect:  100-Continue\t\r\n", &f), 0);
	assert_true(f.expects_continue);
	assert_int_equal(framing(POST11, "Host: h\r\nEXPECT: 100-CONTINUE\r\n", &f), 0);
	assert_true(f.expects_continue);

	assert_int_equal(framing(POST11, "Host: h\r\nExpect: 200-ok\r\n", &f), 417);
	assert_false(f.expects_continue);
	assert_false(f.is_keep_alive);
	assert_int_equal(framing(POST11, "Host: h\r\nExpect: 100-continue, x\r\n", &f), 417);
	assert_int_equal(framing(POST11, "Host: h\r\nExpect: 100-continue\r\nExpect: x\r\n", &f),
	                 417);
	assert_int_equal(framing(POST11, "Host: h\r\nExpect:\r\n", &f), 417);

	/* An HTTP/1.0 request's expectations are ignored (RFC 9110 §10.1.1). */
	assert_int_equal(framing(POST10, "Expect: 100-continue\r\n", &f), 0);
	assert_false(f.expects_continue);
	assert_int_equal(framing(POST10, "Expect: something-else\r\n", &f), 0);
	assert_false(f.expects_continue);
}

static void test_framing_errors_rank_400_then_501_then_417(void **state)
{
	struct http_framing f;
	assert_int_equal(framing(POST11, "Transfer-Encoding: gzip\r\nExpect: x\r\n", &f), 400);
	assert_int_equal(framing(POST11, "Host: h\r\nTransfer-Encoding: gzip\r\nExpect: x\r\n", &f),
	                 501);
}

/* ---- chunked bodies ------------------------------------------------------- */

struct chunked_run {
	enum http_chunked_result rc;
	size_t used;
	struct buf body;
};

/*
 * Decodes s (len bytes) into a body capped at 'cap': a first piece of
 * 'first' bytes, then pieces of 'piece' bytes (0: all the rest), each in
 * a buffer of its own; stops at the first result other than MORE, and
 * checks that the decoder then says the same again, using nothing.
 */
static void chunk_pieces(struct chunked_run *r, const char *s, size_t len, size_t cap, size_t first,
                         size_t piece)
{
	struct http_chunked c = {0};
	buf_init(&r->body, cap);
	r->rc = HTTP_CHUNKED_MORE;
	r->used = 0;
	size_t at = 0;
	for (bool is_first = true; r->rc == HTTP_CHUNKED_MORE && (at < len || is_first);
	     is_first = false) {
		size_t n = is_first ? first : piece ? piece : len - at;
		if (n > len - at)
			n = len - at;
		char *copy = malloc(n ? n : 1);
		assert_non_null(copy);
		memcpy(copy, s + at, n);
		size_t used = 99999;
		r->rc = http_chunked_feed(&c, copy, n, &r->body, &used);
		free(copy);
		assert_true(used <= n);
		if (r->rc == HTTP_CHUNKED_MORE)
			assert_int_equal(used, n);
		r->used += used;
		at += n;
	}
	if (r->rc != HTTP_CHUNKED_MORE) {
		size_t body_len = r->body.len, used = 99;
		for (int i = 0; i < 2; i++) {
			assert_int_equal(http_chunked_feed(&c, "0\r\n\r\n", 5, &r->body, &used),
			                 r->rc);
			assert_int_equal(used, 0);
		}
		assert_int_equal(r->body.len, body_len);
	}
}

/*
 * Decodes s whole, at every split point, and byte by byte: each gives
 * rc, 'body' and 'used' bytes used in all.
 */
static void check_chunked_len(const char *s, size_t len, size_t cap, enum http_chunked_result rc,
                              const char *body, size_t used)
{
	size_t body_len = body ? strlen(body) : 0;
	for (size_t k = 0; k <= len + 1; k++) {
		struct chunked_run r;
		/* k == len + 1: byte by byte. */
		if (k <= len)
			chunk_pieces(&r, s, len, cap, k, 0);
		else
			chunk_pieces(&r, s, len, cap, 1, 1);
		assert_int_equal(r.rc, rc);
		assert_int_equal(r.used, used);
		if (body) {
			assert_int_equal(r.body.len, body_len);
			assert_memory_equal(r.body.data ? r.body.data : "", body, body_len);
		}
		assert_true(r.body.len <= cap);
		buf_fini(&r.body);
	}
}

static void check_chunked(const char *s, size_t cap, enum http_chunked_result rc, const char *body,
                          size_t used)
{
	print_message("%s\n", s);
	check_chunked_len(s, strlen(s), cap, rc, body, used);
}

static void test_chunked_body_with_extensions_and_trailers(void **state)
{
	const char *b = "5;name=value\r\nhello\r\n"
	                "1 ; a=\"b;c\"\r\n,\r\n"
	                "6\t;x\r\n world\r\n"
	                "0;last\r\n"
	                "X-Trailer: 1\r\nX-Checksum: abc\r\n"
	                "\r\n";
	check_chunked(b, SIZE_MAX, HTTP_CHUNKED_DONE, "hello, world", strlen(b));
	check_chunked("0\r\n\r\n", 16, HTTP_CHUNKED_DONE, "", 5);
	check_chunked("1 \r\nx\r\n0\r\n\r\n", 16, HTTP_CHUNKED_DONE, "x", 12);
}

static void test_chunked_sizes_in_any_case_hex_and_lf_only_lines(void **state)
{
	char body[0x1f + 1], b[256];
	memset(body, 'x', sizeof body - 1);
	body[sizeof body - 1] = '\0';
	snprintf(b, sizeof b, "1F\r\n%s\r\na\n0123456789\n00A\r\nABCDEFGHIJ\n000\nT: 1\n\n", body);
	char want[128];
	snprintf(want, sizeof want, "%s0123456789ABCDEFGHIJ", body);
	check_chunked(b, 1024, HTTP_CHUNKED_DONE, want, strlen(b));
}

static void test_chunked_done_leaves_what_follows_unused(void **state)
{
	const char *b = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
	check_chunked(b, 1024, HTTP_CHUNKED_DONE, "abc", strlen(b) - 18);
	/* An empty feed takes nothing. */
	struct http_chunked c = {0};
	struct buf out;
	buf_init(&out, 16);
	size_t used = 99;
	assert_int_equal(http_chunked_feed(&c, "", 0, &out, &used), HTTP_CHUNKED_MORE);
	assert_int_equal(used, 0);
	buf_fini(&out);
}

static void test_malformed_chunks_are_bad_where_they_go_wrong(void **state)
{
	static const struct {
		const char *body;
		size_t used; /* the offending byte */
	} cases[] = {
	    {"x\r\n", 0},
	    {"\r\n", 0},
	    {";x\r\n", 0},
	    {" 5\r\nhello\r\n", 0},
	    {"5x\r\nhello\r\n", 1},
	    {"5 x\r\nhello\r\n", 2},
	    {"5\r\r\nhello\r\n", 2},
	    {"5;a\x01\r\nhello\r\n", 3},
	    {"5;a\x7f\r\nhello\r\n", 3},
	    {"5\r\nhelloX\r\n0\r\n\r\n", 8}, /* no CRLF after the data */
	    {"5\r\nhello\rX\n0\r\n\r\n", 9}, /* a CR without its LF */
	    {"5\r\nhello\r\r\n0\r\n\r\n", 9},
	    {"3\r\nabcd\r\n0\r\n\r\n", 6},
	    {"0\r\n \r\n\r\n", 3},        /* a trailer line that folds */
	    {"0\r\nX: a\x01\r\n\r\n", 7}, /* a control character in a trailer */
	    {"0\r\nX: a\rb\r\n\r\n", 8},
	    {"0\r\n\rX", 4},
	    {"8000000000000001\r\n", 15}, /* past 2^63 */
	    {"10000000000000000\r\n", 16},
	    {"ffffffffffffffffffff\r\n", 15},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_chunked(cases[i].body, 1024, HTTP_CHUNKED_BAD, NULL, cases[i].used);
	/* 2^63 itself may be announced, and the body's cap refuses it. */
	check_chunked("8000000000000000\r\n", SIZE_MAX, HTTP_CHUNKED_MORE, "", 18);
	check_chunked("8000000000000000\r\n", 1 << 20, HTTP_CHUNKED_TOO_LARGE, "", 17);
	/* Leading zeros are not a size. */
	check_chunked("00000000000000000000000000001\r\nx\r\n0\r\n\r\n", 16, HTTP_CHUNKED_DONE, "x",
	              39);
}

/* A size line "1;xxx…" or a trailer line "X: vvv…", 'line_len' bytes
 * without its CR LF, within a whole body. */
static char *with_long_line(size_t line_len, bool is_trailer)
{
	char *b = malloc(line_len + 64);
	assert_non_null(b);
	size_t at = 0;
	if (is_trailer) {
		at = (size_t)sprintf(b, "1\r\nx\r\n0\r\nX: ");
		memset(b + at, 'v', line_len - 3);
		at += line_len - 3;
		strcpy(b + at, "\r\n\r\n");
	} else {
		memcpy(b, "1;", 2);
		memset(b + 2, 'x', line_len - 2);
		strcpy(b + line_len, "\r\nx\r\n0\r\n\r\n");
	}
	return b;
}

static void test_lines_over_4_kib_are_bad(void **state)
{
	for (int is_trailer = 0; is_trailer < 2; is_trailer++) {
		char *b = with_long_line(4096, is_trailer);
		check_chunked_len(b, strlen(b), 16, HTTP_CHUNKED_DONE, "x", strlen(b));
		free(b);
		b = with_long_line(4097, is_trailer);
		size_t start = is_trailer ? strlen("1\r\nx\r\n0\r\n") : 0;
		check_chunked_len(b, strlen(b), 16, HTTP_CHUNKED_BAD, is_trailer ? "x" : "",
		                  start + 4096);
		free(b);
	}
}

static void test_chunk_past_the_cap_is_too_large_at_its_size_line(void **state)
{
	const char *b = "5\r\nhello\r\n4\r\nabcd\r\n0\r\n\r\n";
	check_chunked(b, 9, HTTP_CHUNKED_DONE, "helloabcd", strlen(b));
	/* Refused before any of it is kept: the same at every split. */
	check_chunked(b, 8, HTTP_CHUNKED_TOO_LARGE, "hello", 12);
	check_chunked(b, 4, HTTP_CHUNKED_TOO_LARGE, "", 2);
	check_chunked("3;x\nabc\n", 2, HTTP_CHUNKED_TOO_LARGE, "", 3);
}

/* ---- paths ---------------------------------------------------------------- */

static void check_path(const char *in, long want, const char *out)
{
	char p[256];
	size_t len = strlen(in);
	memcpy(p, in, len);
	print_message("%s\n", in);
	assert_int_equal(http_decode_path(p, len), want);
	if (want >= 0)
		assert_memory_equal(p, out, (size_t)want);
}

static void test_decode_path(void **state)
{
	check_path("/v1/models", 10, "/v1/models");
	check_path("", 0, "");
	check_path("/a%2Fb", 4, "/a/b");
	check_path("/a%2fb", 4, "/a/b");
	check_path("/%41%42c", 4, "/ABc");
	check_path("/%e2%82%AC", 4, "/\xe2\x82\xac");
	check_path("/a+b", 4, "/a+b");
	check_path("/v1/models?x=1&y=%zz", 10, "/v1/models");
	check_path("?x", 0, "");
	check_path("/a%3Fb?c", 4, "/a?b");
	check_path("/%25", 2, "/%");
	check_path("/%", -1, NULL);
	check_path("/%4", -1, NULL);
	check_path("/%4?x", -1, NULL);
	check_path("/%4g", -1, NULL);
	check_path("/%g4", -1, NULL);
	check_path("/% 1", -1, NULL);
	check_path("/a%00b", -1, NULL);
	check_path("/%0", -1, NULL);
	check_path("/%01", 2, "/\x01");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_complete_head_points_into_the_buffer),
	    cmocka_unit_test(test_incomplete_heads_are_zero),
	    cmocka_unit_test(test_empty_lines_before_the_request_line_are_skipped),
	    cmocka_unit_test(test_lf_only_lines_are_accepted),
	    cmocka_unit_test(test_malformed_request_lines_are_400),
	    cmocka_unit_test(test_missing_version_is_400),
	    cmocka_unit_test(test_bad_field_lines_are_400),
	    cmocka_unit_test(test_more_than_max_fields_is_431),
	    cmocka_unit_test(test_versions_other_than_1_0_and_1_1_are_505),
	    cmocka_unit_test(test_values_are_trimmed_of_spaces_and_tabs),
	    cmocka_unit_test(test_field_lookup_ignores_case_and_finds_the_first),
	    cmocka_unit_test(test_content_length),
	    cmocka_unit_test(test_transfer_encoding),
	    cmocka_unit_test(test_host),
	    cmocka_unit_test(test_keep_alive),
	    cmocka_unit_test(test_expect),
	    cmocka_unit_test(test_framing_errors_rank_400_then_501_then_417),
	    cmocka_unit_test(test_chunked_body_with_extensions_and_trailers),
	    cmocka_unit_test(test_chunked_sizes_in_any_case_hex_and_lf_only_lines),
	    cmocka_unit_test(test_chunked_done_leaves_what_follows_unused),
	    cmocka_unit_test(test_malformed_chunks_are_bad_where_they_go_wrong),
	    cmocka_unit_test(test_lines_over_4_kib_are_bad),
	    cmocka_unit_test(test_chunk_past_the_cap_is_too_large_at_its_size_line),
	    cmocka_unit_test(test_decode_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
