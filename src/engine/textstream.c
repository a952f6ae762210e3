/*
 * textstream.c — the per-slot filter between sampled token bytes and the
 * sink; see textstream.h.
 *
 * Two stages, run one input byte at a time so that a token of any length
 * is handled without allocation:
 *
 *   1. A UTF-8 decoder (the WHATWG "UTF-8 decode" algorithm, which is also
 *      Unicode's "maximal subpart" practice, the one browsers and Python's
 *      errors="replace" follow) turns bytes into whole characters.  Up to 3
 *      bytes of an unfinished character wait in dec[].  Each maximal invalid
 *      subpart — an invalid lead byte, a stray continuation byte, or the
 *      start of a sequence cut short by a byte that cannot continue it
 *      (overlong forms, surrogates and code points past U+10FFFF are caught
 *      by the second byte's range) — becomes one U+FFFD.  NUL becomes U+FFFD
 *      too: a sink's text must be usable as a C string.
 *
 *   2. A stop matcher sees only valid characters.  Each stop string has a
 *      Knuth–Morris–Pratt automaton whose state is the length of the longest
 *      suffix of the text so far that is a prefix of that stop.  The largest
 *      state over all stops is exactly how much text must be held back (it
 *      could still become a stop); everything before it is released.  When a
 *      state reaches its stop's length, the stop has occurred.
 *
 * Stop semantics: the stream stops at the first byte where any stop string
 * is complete, and releases the text before that occurrence; when several
 * stops complete at the same byte, the longest (earliest-starting) one is
 * cut.  Because decisions are made byte by byte, the released text does not
 * depend on how the bytes were split into tokens.
 *
 * Stops that are not valid UTF-8 are ignored like empty ones: the released
 * text is always valid UTF-8, so such a stop can never occur in it as text,
 * and matching one byte-wise could cut a character in half.  With only
 * valid stops, every match and every held-back suffix starts on a
 * character boundary (a valid stop starts with a lead byte), so releasing
 * "everything before" never splits a character.
 */
#include "engine/textstream.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

static const unsigned char replacement[3] = {0xEF, 0xBF, 0xBD}; /* U+FFFD */

struct stop {
	unsigned char *s;
	size_t len;
	size_t *fail; /* KMP failure function: fail[i] = border of s[0..i] */
	size_t state; /* longest suffix of the text that is a prefix of s */
};

struct textstream {
	struct stop *stops;
	size_t n_stops;
	size_t max_stop_len;

	/* Stage 1: the unfinished character. */
	unsigned char dec[4];
	size_t dec_len;
	size_t dec_need;      /* total length of the character; 0: none */
	unsigned char lo, hi; /* allowed range of the next byte */

	/* Stage 2: valid text that may still start a stop string. */
	unsigned char *pending; /* capacity max_stop_len - 1 + 4 */
	size_t pending_len;

	bool is_stopped; /* a stop string was found */
	bool is_done;    /* stopped or flushed: nothing more leaves */
};

/* Where released text goes during one push or flush. */
struct sinkbuf {
	char *out;
	size_t len;
};

static void kmp_build(struct stop *st)
{
	st->fail[0] = 0;
	size_t k = 0;
	for (size_t i = 1; i < st->len; i++) {
		while (k > 0 && st->s[i] != st->s[k])
			k = st->fail[k - 1];
		if (st->s[i] == st->s[k])
			k++;
		st->fail[i] = k;
	}
}

struct textstream *textstream_new(const char *const *stops, size_t n_stops)
{
	struct textstream *ts = calloc(1, sizeof *ts);
	if (!ts)
		return NULL;
	if (n_stops > 0) {
		ts->stops = calloc(n_stops, sizeof *ts->stops);
		if (!ts->stops)
			goto fail;
	}
	for (size_t i = 0; i < n_stops; i++) {
		const char *s = stops[i];
		size_t len = s ? strlen(s) : 0;
		if (len == 0 || !utf8_valid(s, len))
			continue;
		struct stop *st = &ts->stops[ts->n_stops++];
		st->s = malloc(len);
		st->fail = malloc(len * sizeof *st->fail);
		if (!st->s || !st->fail)
			goto fail;
		memcpy(st->s, s, len);
		st->len = len;
		kmp_build(st);
		if (len > ts->max_stop_len)
			ts->max_stop_len = len;
	}
	/* Held text is at most max_stop_len - 1 bytes, plus one new character. */
	ts->pending = malloc(ts->max_stop_len + 4);
	if (!ts->pending)
		goto fail;
	return ts;
fail:
	textstream_free(ts);
	return NULL;
}

void textstream_free(struct textstream *ts)
{
	if (!ts)
		return;
	for (size_t i = 0; i < ts->n_stops; i++) {
		free(ts->stops[i].s);
		free(ts->stops[i].fail);
	}
	free(ts->stops);
	free(ts->pending);
	free(ts);
}

/* Moves the first n pending bytes to the output. */
static void release(struct textstream *ts, size_t n, struct sinkbuf *sb)
{
	memcpy(sb->out + sb->len, ts->pending, n);
	sb->len += n;
	ts->pending_len -= n;
	memmove(ts->pending, ts->pending + n, ts->pending_len);
}

/*
 * Stage 2: takes one whole, valid character.  Returns true when it
 * completed a stop string; the text before the stop has then been released
 * and the stream is finished.
 */
static bool feed_char(struct textstream *ts, const unsigned char *c, size_t n, struct sinkbuf *sb)
{
	assert(ts->pending_len + n <= ts->max_stop_len + 4);
	memcpy(ts->pending + ts->pending_len, c, n);
	ts->pending_len += n;

	size_t hold = 0, cut = 0;
	for (size_t i = 0; i < ts->n_stops; i++) {
		struct stop *st = &ts->stops[i];
		for (size_t k = 0; k < n; k++) {
			while (st->state > 0 && st->s[st->state] != c[k])
				st->state = st->fail[st->state - 1];
			if (st->s[st->state] == c[k])
				st->state++;
			/* Valid stops only end where a character ends. */
			assert(st->state < st->len || k == n - 1);
		}
		if (st->state == st->len && st->len > cut)
			cut = st->len;
		if (st->state > hold)
			hold = st->state;
	}
	if (cut > 0) {
		release(ts, ts->pending_len - cut, sb);
		ts->pending_len = 0;
		ts->is_stopped = ts->is_done = true;
		return true;
	}
	release(ts, ts->pending_len - hold, sb);
	return false;
}

/* Stage 1: takes one input byte.  Returns true when a stop was found. */
static bool feed_byte(struct textstream *ts, unsigned char b, struct sinkbuf *sb)
{
	if (ts->dec_need > 0) {
		if (b >= ts->lo && b <= ts->hi) {
			ts->dec[ts->dec_len++] = b;
			ts->lo = 0x80;
			ts->hi = 0xBF;
			if (ts->dec_len < ts->dec_need)
				return false;
			size_t n = ts->dec_len;
			ts->dec_len = ts->dec_need = 0;
			return feed_char(ts, ts->dec, n, sb);
		}
		/* The unfinished sequence is one maximal invalid subpart; 'b'
		 * itself is then decoded afresh. */
		ts->dec_len = ts->dec_need = 0;
		if (feed_char(ts, replacement, sizeof replacement, sb))
			return true;
	}
	if (b >= 0x01 && b <= 0x7F)
		return feed_char(ts, &b, 1, sb);
	ts->lo = 0x80;
	ts->hi = 0xBF;
	if (b >= 0xC2 && b <= 0xDF) {
		ts->dec_need = 2;
	} else if (b >= 0xE0 && b <= 0xEF) {
		ts->dec_need = 3;
		ts->lo = b == 0xE0 ? 0xA0 : 0x80; /* overlong */
		ts->hi = b == 0xED ? 0x9F : 0xBF; /* surrogates */
	} else if (b >= 0xF0 && b <= 0xF4) {
		ts->dec_need = 4;
		ts->lo = b == 0xF0 ? 0x90 : 0x80; /* overlong */
		ts->hi = b == 0xF4 ? 0x8F : 0xBF; /* past U+10FFFF */
	} else {
		/* NUL, a stray continuation byte, C0, C1, F5..FF. */
		return feed_char(ts, replacement, sizeof replacement, sb);
	}
	ts->dec[0] = b;
	ts->dec_len = 1;
	return false;
}

bool textstream_push(struct textstream *ts, const char *bytes, size_t len, char *out,
                     size_t *out_len)
{
	struct sinkbuf sb = {out, 0};
	bool found = false;
	if (!ts->is_done) {
		for (size_t i = 0; i < len && !found; i++)
			found = feed_byte(ts, (unsigned char)bytes[i], &sb);
	}
	*out_len = sb.len;
	return found;
}

size_t textstream_held(const struct textstream *ts)
{
	return ts->pending_len + ts->dec_len;
}

size_t textstream_out_cap(const struct textstream *ts, size_t len)
{
	/* Held text (< max_stop_len), then at most 3 output bytes for each of
	 * the up to 3 waiting decoder bytes and each new byte. */
	size_t fixed = ts->max_stop_len + 3 * 3 + 4;
	if (len > (SIZE_MAX - fixed) / 3)
		return SIZE_MAX;
	return fixed + 3 * len;
}

void textstream_flush(struct textstream *ts, char *out, size_t *out_len)
{
	struct sinkbuf sb = {out, 0};
	if (!ts->is_done) {
		bool found = false;
		if (ts->dec_need > 0) {
			/* A character cut short by the end of generation.  It goes
			 * through the matcher like any other text, so a stop string
			 * ending in U+FFFD is still cut. */
			ts->dec_len = ts->dec_need = 0;
			found = feed_char(ts, replacement, sizeof replacement, &sb);
		}
		if (!found)
			release(ts, ts->pending_len, &sb);
		ts->is_done = true;
	}
	*out_len = sb.len;
}
