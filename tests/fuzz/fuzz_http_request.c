// sources: src/http/parse.c src/core/buf.c
/*
 * fuzz_http_request.c — libFuzzer harness for http/parse: the request
 * head, its framing, chunked bodies and path decoding.
 *
 * Input layout: byte 0 seeds the split pattern (0 feeds one byte at a
 * time, others seed a generator of piece sizes 0..2*seed); byte 1 picks
 * the chunked body's cap (255: none, else 3 bytes a step); the rest is
 * what a client sent: a head, and the chunked body after it (the whole of
 * it when it is not a head).  Every call sees a buffer of exactly the
 * bytes it is given, so ASan sees any read past them.
 *
 * Checks, on the head: every prefix gives 0 or the whole's result, and
 * once not 0 the same from then on; a complete head gives 0 for one byte
 * less and the same head for exactly its bytes; errors are -400, -431 or
 * -505.  A complete head's count is at most len; its method, target,
 * names and values lie inside it, the method a token followed by a SP,
 * the target followed by a SP, each name a token followed by ':', each
 * value trimmed, without CR, LF or NUL, and followed by a byte of the head
 * (the server writes NULs there); http_head_field finds each name's first
 * field.  Framing: the same twice; 0, 400, 417 or 501; never keep-alive
 * after an error; when accepted, an HTTP/1.1 head has one Host, chunked
 * means no Content-Length, and the length is the first Content-Length
 * value.  Chunked: pieces give the same result, body and bytes used as
 * all at once; *used never passes what was fed and is all of it with
 * MORE; a finished decoder says the same again using nothing; the body
 * never passes its cap.  Path: decoding never grows the path, and
 * matches a plain reference decoder byte for byte.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "http/parse.h"

#define CHECK(x)                 \
	do {                     \
		if (!(x))        \
			abort(); \
	} while (0)

#define MAX_PREFIXES 256

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

static char *copy_of(const char *s, size_t n)
{
	char *c = malloc(n ? n : 1);
	CHECK(c);
	memcpy(c, s, n);
	return c;
}

static bool is_tchar(unsigned char c)
{
	return c > 32 && c < 127 && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool same_name(const char *a, size_t a_len, const char *b, size_t b_len)
{
	if (a_len != b_len)
		return false;
	for (size_t i = 0; i < a_len; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

/* A head http_parse_head called complete: everything points inside it. */
static void check_head(const char *buf, long n, const struct http_head *h)
{
	const char *end = buf + n;
	CHECK(h->method == buf || (h->method > buf && h->method < end));
	CHECK(h->method_len > 0 && h->method + h->method_len < end);
	for (size_t i = 0; i < h->method_len; i++)
		CHECK(is_tchar((unsigned char)h->method[i]));
	CHECK(h->method[h->method_len] == ' ');
	CHECK(h->target == h->method + h->method_len + 1);
	CHECK(h->target_len > 0 && h->target + h->target_len < end);
	CHECK(h->target[h->target_len] == ' ');
	CHECK(h->minor == 0 || h->minor == 1);
	CHECK(h->n_fields <= HTTP_MAX_FIELDS);
	for (size_t i = 0; i < h->n_fields; i++) {
		const struct http_field *f = &h->fields[i];
		CHECK(f->name > h->target && f->name_len > 0 && f->name + f->name_len < end);
		for (size_t k = 0; k < f->name_len; k++)
			CHECK(is_tchar((unsigned char)f->name[k]));
		CHECK(f->name[f->name_len] == ':');
		CHECK(f->value > f->name + f->name_len && f->value + f->value_len < end);
		if (f->value_len) {
			CHECK(f->value[0] != ' ' && f->value[0] != '\t');
			CHECK(f->value[f->value_len - 1] != ' ' &&
			      f->value[f->value_len - 1] != '\t');
		}
		for (size_t k = 0; k < f->value_len; k++)
			CHECK(f->value[k] != '\r' && f->value[k] != '\n' && f->value[k] != '\0');
		if (i)
			CHECK(f->name > h->fields[i - 1].value);
	}
}

/* http_head_field finds, for each field's name in any case, the first
 * field of that name. */
static void check_lookup(const struct http_head *h)
{
	for (size_t i = 0; i < h->n_fields; i++) {
		const struct http_field *f = &h->fields[i];
		char *name = malloc(f->name_len + 1);
		CHECK(name);
		for (size_t k = 0; k < f->name_len; k++)
			name[k] = (char)(i & 1 ? lower(f->name[k]) : f->name[k]);
		name[f->name_len] = '\0';
		size_t first = 0;
		while (
		    !same_name(h->fields[first].name, h->fields[first].name_len, name, f->name_len))
			first++;
		size_t len = (size_t)-1;
		CHECK(http_head_field(h, name, &len) == h->fields[first].value);
		CHECK(len == h->fields[first].value_len);
		free(name);
	}
}

/* Parses s[0, n) from a buffer of its own; the head's pointers are moved
 * to point into s. */
static long parse_copy(const char *s, size_t n, struct http_head *h)
{
	char *c = copy_of(s, n);
	long r = http_parse_head(c, n, h);
	CHECK(r == 0 || r == -400 || r == -431 || r == -505 || (r > 0 && (size_t)r <= n));
	if (r > 0) {
		check_head(c, r, h);
		h->method = s + (h->method - c);
		h->target = s + (h->target - c);
		for (size_t i = 0; i < h->n_fields; i++) {
			h->fields[i].name = s + (h->fields[i].name - c);
			h->fields[i].value = s + (h->fields[i].value - c);
		}
	}
	free(c);
	return r;
}

static bool same_head(const struct http_head *a, const struct http_head *b)
{
	return a->method == b->method && a->method_len == b->method_len && a->target == b->target &&
	       a->target_len == b->target_len && a->minor == b->minor &&
	       a->n_fields == b->n_fields &&
	       memcmp(a->fields, b->fields, a->n_fields * sizeof a->fields[0]) == 0;
}

/* Growing prefixes, as a server reads them: 0 until the whole's result,
 * then that result. */
static void check_prefixes(const char *s, size_t len, long whole, const struct http_head *h,
                           unsigned seed)
{
	struct http_head *q = malloc(sizeof *q);
	CHECK(q);
	uint32_t state = 0x9E3779B9u ^ seed;
	bool has_result = false;
	size_t p = 0;
	for (int i = 0; i < MAX_PREFIXES && p <= len; i++, p += next_piece(&state, seed) + 1) {
		long r = parse_copy(s, p, q);
		if (whole > 0) {
			CHECK(r == ((size_t)whole <= p ? whole : 0));
			if (r > 0)
				CHECK(same_head(q, h));
		} else {
			CHECK(r == 0 || r == whole);
			CHECK(!has_result || r == whole);
			has_result = r != 0;
		}
	}
	if (whole > 0) {
		CHECK(parse_copy(s, (size_t)whole - 1, q) == 0);
		CHECK(parse_copy(s, (size_t)whole, q) == whole && same_head(q, h));
	}
	free(q);
}

/* The first element of the first Content-Length; false when unreadable. */
static bool first_length(const struct http_head *h, unsigned long long *out)
{
	for (size_t i = 0; i < h->n_fields; i++) {
		const struct http_field *f = &h->fields[i];
		if (!same_name(f->name, f->name_len, "content-length", 14))
			continue;
		size_t k = 0;
		*out = 0;
		while (k < f->value_len && f->value[k] >= '0' && f->value[k] <= '9')
			*out = *out * 10 + (unsigned)(f->value[k++] - '0');
		return k > 0;
	}
	return false;
}

static size_t count(const struct http_head *h, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < h->n_fields; i++)
		n += same_name(h->fields[i].name, h->fields[i].name_len, name, strlen(name));
	return n;
}

static void check_framing(const struct http_head *h)
{
	struct http_framing a, b;
	int status = http_head_framing(h, &a);
	CHECK(http_head_framing(h, &b) == status);
	CHECK(a.is_chunked == b.is_chunked && a.length == b.length &&
	      a.is_keep_alive == b.is_keep_alive && a.expects_continue == b.expects_continue);
	CHECK(status == 0 || status == 400 || status == 417 || status == 501);
	if (status) {
		CHECK(!a.is_keep_alive);
		return;
	}
	size_t n_length = count(h, "content-length"), n_te = count(h, "transfer-encoding");
	if (h->minor == 1)
		CHECK(count(h, "host") == 1);
	else
		CHECK(!a.expects_continue && n_te == 0 && count(h, "host") <= 1);
	CHECK(a.is_chunked == (n_te > 0));
	if (a.is_chunked)
		CHECK(n_length == 0 && a.length == 0);
	unsigned long long length;
	if (n_length) {
		CHECK(first_length(h, &length));
		CHECK(a.length == length);
	} else {
		CHECK(a.length == 0);
	}
}

struct chunked_run {
	enum http_chunked_result rc;
	size_t used;
	struct buf body;
};

/* Feeds one piece from a buffer of its own; false once finished. */
static bool feed_chunked(struct http_chunked *c, struct chunked_run *r, const char *s, size_t n)
{
	char *piece = copy_of(s, n);
	size_t used = (size_t)-1;
	r->rc = http_chunked_feed(c, piece, n, &r->body, &used);
	CHECK(used <= n);
	CHECK(r->body.len <= r->body.max);
	r->used += used;
	if (r->rc == HTTP_CHUNKED_MORE) {
		CHECK(used == n);
	} else {
		CHECK(r->rc == HTTP_CHUNKED_DONE || r->rc == HTTP_CHUNKED_BAD ||
		      r->rc == HTTP_CHUNKED_TOO_LARGE);
		size_t len = r->body.len;
		CHECK(http_chunked_feed(c, piece, n, &r->body, &used) == r->rc && used == 0);
		CHECK(r->body.len == len);
	}
	free(piece);
	return r->rc == HTTP_CHUNKED_MORE;
}

static void check_chunked(const char *s, size_t len, size_t cap, unsigned seed)
{
	struct chunked_run whole = {.rc = HTTP_CHUNKED_MORE}, split = {.rc = HTTP_CHUNKED_MORE};
	buf_init(&whole.body, cap);
	buf_init(&split.body, cap);
	struct http_chunked c = {0};
	feed_chunked(&c, &whole, s, len);

	struct http_chunked d = {0};
	uint32_t state = 0x85EBCA6Bu ^ seed;
	for (size_t i = 0; i < len;) {
		size_t n = next_piece(&state, seed);
		if (n > len - i)
			n = len - i;
		if (!feed_chunked(&d, &split, s + i, n))
			break;
		i += n;
	}
	CHECK(whole.rc == split.rc && whole.used == split.used);
	CHECK(whole.body.len == split.body.len);
	CHECK(whole.body.len == 0 || memcmp(whole.body.data, split.body.data, whole.body.len) == 0);
	CHECK(whole.body.len <= whole.used);
	buf_fini(&whole.body);
	buf_fini(&split.body);
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The plainest reading of parse.h's http_decode_path, into 'out'. */
static long reference_decode(const char *in, size_t len, char *out)
{
	size_t w = 0;
	for (size_t i = 0; i < len && in[i] != '?'; i++) {
		if (in[i] != '%') {
			out[w++] = in[i];
			continue;
		}
		if (len - i < 3 || hex(in[i + 1]) < 0 || hex(in[i + 2]) < 0)
			return -1;
		char c = (char)(hex(in[i + 1]) * 16 + hex(in[i + 2]));
		if (c == '\0')
			return -1;
		out[w++] = c;
		i += 2;
	}
	return (long)w;
}

static void check_path(const char *s, size_t len)
{
	char *path = copy_of(s, len), *want = malloc(len + 1);
	CHECK(want);
	long n = http_decode_path(path, len);
	CHECK(n >= -1 && (n < 0 || (size_t)n <= len));
	const char *q = memchr(s, '?', len);
	if (q)
		CHECK(n <= q - s);
	CHECK(reference_decode(s, len, want) == n);
	if (n > 0)
		CHECK(memcmp(path, want, (size_t)n) == 0);
	free(path);
	free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	unsigned seed = data[0];
	size_t cap = data[1] == 255 ? SIZE_MAX : (size_t)data[1] * 3;
	const char *s = (const char *)data + 2;
	size_t len = size - 2;

	struct http_head *h = malloc(sizeof *h);
	CHECK(h);
	long n = parse_copy(s, len, h);
	check_prefixes(s, len, n, h, seed);
	if (n > 0) {
		check_lookup(h);
		check_framing(h);
		check_path(h->target, h->target_len);
	} else {
		check_path(s, len < 512 ? len : 512);
	}
	size_t at = n > 0 ? (size_t)n : 0;
	check_chunked(s + at, len - at, cap, seed);
	free(h);
	return 0;
}
