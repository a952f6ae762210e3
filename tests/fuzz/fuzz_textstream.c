// sources: src/engine/textstream.c src/core/*.c
// libs:
/*
 * fuzz_textstream.c — libFuzzer harness for engine/textstream.
 *
 * Input layout: byte 0 picks 0..4 stop strings; each stop is a length byte
 * (1..12) and that many bytes (cut at a NUL, as a C string would be); the
 * rest is the token stream as (length byte 0..16, bytes) chunks.
 *
 * Checks against an independent reference (decode the whole stream at once
 * with maximal-subpart U+FFFD replacement, then cut at the first byte where a
 * valid stop completes, the longest one on a tie): the chunked output equals
 * the reference, is valid UTF-8 without NUL, contains no valid stop, never
 * overruns textstream_out_cap(), and the stream never holds more than a
 * stop prefix plus one unfinished character.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/textstream.h"

#include "../common/utf8_check.h"

#define MAX_STOPS 4

/* The length a lead byte announces by its bit pattern; 0: not a lead. */
static size_t announced_len(unsigned char b)
{
	if (b < 0x80)
		return 1;
	if ((b & 0xE0) == 0xC0)
		return 2;
	if ((b & 0xF0) == 0xE0)
		return 3;
	if ((b & 0xF8) == 0xF0)
		return 4;
	return 0;
}

/* Whether p[0..n) is the start of (or all of) one valid character: some
 * completion with continuation bytes is valid.  Only the second byte has a
 * narrower range than 80..BF, so one repeated pad byte suffices. */
static bool is_char_prefix(const unsigned char *p, size_t n)
{
	size_t total = announced_len(p[0]);
	if (n > total)
		return false;
	for (unsigned pad = 0x80; pad <= 0xBF; pad++) {
		unsigned char buf[4];
		memcpy(buf, p, n);
		memset(buf + n, (int)pad, total - n);
		if (valid_utf8(buf, total))
			return true;
	}
	return false;
}

/*
 * Reference decoder, by the definition of a maximal subpart: at each
 * position take the longest prefix that could start a character; a whole
 * character is copied, anything else (at least one byte) becomes one
 * U+FFFD.  'out' has room for 3 * len.  *cut_short: the input ends
 * inside a character (the stream only learns that at flush).
 */
static size_t reference_decode(const unsigned char *s, size_t len, unsigned char *out,
                               bool *cut_short)
{
	size_t o = 0;
	*cut_short = false;
	for (size_t i = 0; i < len;) {
		size_t n = 0;
		while (n < 4 && i + n < len && is_char_prefix(s + i, n + 1))
			n++;
		if (n > 0 && valid_utf8(s + i, n)) {
			memcpy(out + o, s + i, n);
			o += n;
		} else {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			*cut_short = n > 0 && i + n == len;
		}
		i += n > 0 ? n : 1;
	}
	return o;
}

struct input {
	char stops[MAX_STOPS][13];
	const char *stop_ptrs[MAX_STOPS];
	size_t n_stops;
	const uint8_t *chunks; /* (length byte, bytes) pairs */
	size_t chunks_len;
};

static void parse_input(const uint8_t *data, size_t size, struct input *in)
{
	size_t p = 0;
	memset(in, 0, sizeof *in);
	if (size > 0)
		in->n_stops = data[p++] % (MAX_STOPS + 1);
	for (size_t i = 0; i < in->n_stops; i++) {
		size_t len = p < size ? 1 + data[p++] % 12 : 0;
		if (len > size - p)
			len = size - p;
		memcpy(in->stops[i], data + p, len); /* cut at a NUL by strlen */
		in->stops[i][len] = '\0';
		in->stop_ptrs[i] = in->stops[i];
		p += len;
	}
	in->chunks = data + p;
	in->chunks_len = size - p;
}

/* The whole stream, chunk headers removed, into 'raw'. */
static size_t join_chunks(const struct input *in, unsigned char *raw)
{
	size_t n = 0;
	for (size_t p = 0; p < in->chunks_len;) {
		size_t len = in->chunks[p++] % 17;
		if (len > in->chunks_len - p)
			len = in->chunks_len - p;
		memcpy(raw + n, in->chunks + p, len);
		n += len;
		p += len;
	}
	return n;
}

/* Expected output: the decoded text cut before the first completed stop;
 * *stop_end: where that stop ends (0: no stop). */
static size_t reference_cut(const struct input *in, const unsigned char *text, size_t len,
                            size_t *stop_end)
{
	*stop_end = 0;
	for (size_t e = 1; e <= len; e++) {
		size_t best = 0;
		for (size_t i = 0; i < in->n_stops; i++) {
			size_t sl = strlen(in->stops[i]);
			if (sl == 0 || sl > e ||
			    !valid_utf8((const unsigned char *)in->stops[i], sl))
				continue;
			if (memcmp(text + e - sl, in->stops[i], sl) == 0 && sl > best)
				best = sl;
		}
		if (best > 0) {
			*stop_end = e;
			return e - best;
		}
	}
	return len;
}

static size_t max_stop_len(const struct input *in)
{
	size_t m = 0;
	for (size_t i = 0; i < in->n_stops; i++)
		if (strlen(in->stops[i]) > m)
			m = strlen(in->stops[i]);
	return m;
}

/* Runs the stream chunk by chunk; returns the bytes released into 'got'. */
static size_t run_stream(const struct input *in, struct textstream *ts, unsigned char *got,
                         bool *stopped)
{
	size_t n = 0, held_max = max_stop_len(in) + 3;
	*stopped = false;
	for (size_t p = 0; p < in->chunks_len;) {
		size_t len = in->chunks[p++] % 17;
		if (len > in->chunks_len - p)
			len = in->chunks_len - p;
		size_t cap = textstream_out_cap(ts, len);
		char *out = malloc(cap ? cap : 1); /* exact size: ASan catches overruns */
		size_t out_len = 0;
		bool s = textstream_push(ts, (const char *)in->chunks + p, len, out, &out_len);
		if (out_len > cap || (*stopped && out_len > 0) || textstream_held(ts) > held_max)
			abort();
		memcpy(got + n, out, out_len);
		n += out_len;
		*stopped = *stopped || s;
		free(out);
		p += len;
	}
	size_t cap = textstream_out_cap(ts, 0);
	char *out = malloc(cap);
	size_t out_len = 0;
	textstream_flush(ts, out, &out_len);
	if (out_len > cap || (*stopped && out_len > 0))
		abort();
	memcpy(got + n, out, out_len);
	free(out);
	return n + out_len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in;
	parse_input(data, size, &in);
	unsigned char *raw = malloc(in.chunks_len + 1);
	unsigned char *text = malloc(3 * in.chunks_len + 1);
	unsigned char *got = malloc(3 * in.chunks_len + 64);
	size_t raw_len = join_chunks(&in, raw);
	bool cut_short, got_stop;
	size_t text_len = reference_decode(raw, raw_len, text, &cut_short);
	size_t stop_end;
	size_t want_len = reference_cut(&in, text, text_len, &stop_end);
	/* A stop completed by flush's U+FFFD is cut, but flush cannot say so. */
	bool want_stop = stop_end > 0 && !(cut_short && stop_end == text_len);

	struct textstream *ts = textstream_new(in.stop_ptrs, in.n_stops);
	if (!ts)
		abort();
	size_t got_len = run_stream(&in, ts, got, &got_stop);
	textstream_free(ts);

	if (got_stop != want_stop || got_len != want_len || memcmp(got, text, got_len) != 0)
		abort();
	if (!valid_utf8(got, got_len))
		abort();
	if (stop_end == 0 && valid_utf8(raw, raw_len) &&
	    (got_len != raw_len || memcmp(got, raw, raw_len) != 0))
		abort();
	for (size_t i = 0; i < in.n_stops; i++) {
		size_t sl = strlen(in.stops[i]);
		if (sl == 0 || !valid_utf8((const unsigned char *)in.stops[i], sl))
			continue;
		if (memmem(got, got_len, in.stops[i], sl))
			abort();
	}
	free(raw);
	free(text);
	free(got);
	return 0;
}
