/*
 * sse.c — incremental server-sent-events and NDJSON framing; see sse.h.
 *
 * Sits between libcurl's write callback and the wire decoders on the remote
 * provider path: bytes arrive in pieces of any size and split anywhere (a
 * CRLF pair, a UTF-8 BOM, a "data:" prefix may straddle two pieces), and
 * what comes out must not depend on where the splits fell.
 *
 * Invariants:
 *   - 'line' holds the bytes of the current line seen so far, its terminator
 *     excluded; 'event' holds the joined data lines of the current SSE event.
 *     Both are capped buffers (core/buf) reused across lines and events, so
 *     memory grows geometrically to at most about twice the cap and never
 *     per byte.
 *   - Every limit is checked on quantities that do not depend on the split
 *     (a line's length so far only grows; an event's length only grows), so
 *     a feed fails at the same point of the stream however it was cut.
 *   - Once a call fails, 'err' keeps the error and every later feed or
 *     finish returns it without looking at its input: the framing state is
 *     no longer trustworthy after an event was refused half-way.
 *
 * spec: WHATWG HTML, "Server-sent events", 9.2.5 (parsing an event stream)
 * and 9.2.6 (interpreting an event stream).
 */
#include "provider/sse.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

/* The longest non-value part of a line that can still carry a legal event:
 * "data: " (field name, colon, the one dropped space). */
#define DATA_PREFIX_LEN 6

static const unsigned char BOM[3] = {0xEF, 0xBB, 0xBF};

struct sse_parser {
	size_t max;       /* max_event_bytes */
	bool is_ndjson;   /* NDJSON framing instead of SSE */
	enum brg_err err; /* sticky: BRG_OK until a call fails */
	size_t n_bom;     /* BOM bytes matched so far at the stream's start */
	bool is_past_bom; /* the stream's first non-BOM byte has been seen */
	bool is_after_cr; /* the last line ended in CR: a following LF belongs to it */
	bool has_data;    /* the current SSE event has at least one data line */
	struct buf line;
	struct buf event;
};

struct sse_parser *sse_parser_new(size_t max_event_bytes, bool is_ndjson)
{
	struct sse_parser *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->max = max_event_bytes;
	p->is_ndjson = is_ndjson;
	/*
	 * A line may exceed an event by its framing: SSE's "data: " prefix,
	 * NDJSON's trailing CR (stripped only once the LF shows up).  Beyond
	 * that a line cannot produce a legal event, so it is refused as soon
	 * as it grows past the slack, before it ends.
	 */
	size_t slack = is_ndjson ? 1 : DATA_PREFIX_LEN;
	size_t line_max = max_event_bytes > SIZE_MAX / 2 ? SIZE_MAX / 2 : max_event_bytes + slack;
	buf_init(&p->line, line_max);
	buf_init(&p->event, max_event_bytes);
	return p;
}

void sse_parser_free(struct sse_parser *p)
{
	if (!p)
		return;
	buf_fini(&p->line);
	buf_fini(&p->event);
	free(p);
}

/* Records 'err' as the parser's final state and returns it. */
static enum brg_err fail(struct sse_parser *p, enum brg_err err)
{
	p->err = err;
	return err;
}

/* Hands one event to the caller; its buffer is NUL-terminated by core/buf
 * except before the first append, hence the "" fallback. */
static enum brg_err emit(struct sse_parser *p, const char *data, size_t len, sse_event_fn fn,
                         void *ud)
{
	assert(len <= p->max);
	if (fn(ud, data ? data : "", len))
		return fail(p, BRG_E_CANCELLED);
	return BRG_OK;
}

/*
 * One SSE line, terminator excluded (spec 9.2.6): blank dispatches, ":"
 * starts a comment, otherwise "name:value" with one optional space after
 * the colon, or a bare field name with an empty value.  Only "data"
 * matters to us; "event", "id" and "retry" steer browsers, not brigade.
 */
static enum brg_err sse_line(struct sse_parser *p, const char *s, size_t len, sse_event_fn fn,
                             void *ud)
{
	if (len == 0) {
		if (!p->has_data)
			return BRG_OK;
		p->has_data = false;
		enum brg_err err = emit(p, p->event.data, p->event.len, fn, ud);
		buf_reset(&p->event);
		return err;
	}
	if (s[0] == ':')
		return BRG_OK;
	const char *colon = memchr(s, ':', len);
	size_t name_len = colon ? (size_t)(colon - s) : len;
	if (name_len != 4 || memcmp(s, "data", 4) != 0)
		return BRG_OK;
	const char *value = colon ? colon + 1 : s + len;
	size_t value_len = (size_t)(s + len - value);
	if (value_len && value[0] == ' ') {
		value++;
		value_len--;
	}
	/* Check the whole addition first so a refused line leaves no half. */
	size_t add = value_len + (p->has_data ? 1 : 0);
	if (add > p->max || p->event.len > p->max - add)
		return fail(p, BRG_E_TOO_LARGE);
	enum brg_err err = BRG_OK;
	if (p->has_data)
		err = buf_append(&p->event, "\n", 1);
	if (!err)
		err = buf_append(&p->event, value, value_len);
	if (err)
		return fail(p, err);
	p->has_data = true;
	return BRG_OK;
}

static bool is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!strchr(" \t\r\f\v", s[i]) || s[i] == '\0')
			return false;
	return true;
}

/* One NDJSON line, LF excluded: a trailing CR is dropped, blank lines are
 * skipped (servers send keep-alive newlines), the rest is one event. */
static enum brg_err ndjson_line(struct sse_parser *p, sse_event_fn fn, void *ud)
{
	size_t len = p->line.len;
	if (len && p->line.data[len - 1] == '\r')
		len--;
	if (len > p->max)
		return fail(p, BRG_E_TOO_LARGE);
	if (is_blank(p->line.data, len))
		return BRG_OK;
	p->line.data[len] = '\0';
	return emit(p, p->line.data, len, fn, ud);
}

/* The position of the first line terminator in s[0..len), or len.  Two
 * memchr passes (LF, then a CR before it, which is rare) instead of a byte
 * loop: events are a few hundred bytes and every one is scanned. */
static size_t find_eol(const struct sse_parser *p, const char *s, size_t len)
{
	const char *lf = memchr(s, '\n', len);
	size_t n = lf ? (size_t)(lf - s) : len;
	if (!p->is_ndjson) {
		const char *cr = memchr(s, '\r', n);
		if (cr)
			n = (size_t)(cr - s);
	}
	return n;
}

/*
 * Frames s[0..len), which holds no BOM bytes still to be matched.  SSE
 * lines complete within the piece are read in place; everything else goes
 * through 'line' (NDJSON always, since events are handed out NUL-terminated).
 */
static enum brg_err frame(struct sse_parser *p, const char *s, size_t len, sse_event_fn fn,
                          void *ud)
{
	size_t i = 0;
	while (i < len) {
		if (p->is_after_cr) {
			p->is_after_cr = false;
			if (s[i] == '\n') {
				i++;
				continue;
			}
		}
		size_t n = find_eol(p, s + i, len - i);
		enum brg_err err = BRG_OK;
		if (n == len - i) {
			err = buf_append(&p->line, s + i, n);
			return err ? fail(p, err) : BRG_OK;
		}
		p->is_after_cr = s[i + n] == '\r';
		if (p->is_ndjson || p->line.len) {
			err = buf_append(&p->line, s + i, n);
			if (err)
				return fail(p, err);
			err = p->is_ndjson ? ndjson_line(p, fn, ud)
			                   : sse_line(p, p->line.data, p->line.len, fn, ud);
			buf_reset(&p->line);
		} else if (n > p->line.max) {
			return fail(p, BRG_E_TOO_LARGE);
		} else {
			err = sse_line(p, s + i, n, fn, ud);
		}
		if (err)
			return err;
		i += n + 1;
	}
	return BRG_OK;
}

/*
 * Strips a UTF-8 BOM from the very start of the stream, however it was
 * split; bytes that turn out not to be one are framed as ordinary input.
 * Advances *s and *len past what it consumed.
 */
static enum brg_err skip_bom(struct sse_parser *p, const char **s, size_t *len, sse_event_fn fn,
                             void *ud)
{
	while (!p->is_past_bom && *len) {
		if ((unsigned char)**s == BOM[p->n_bom]) {
			(*s)++;
			(*len)--;
			if (++p->n_bom == sizeof BOM)
				p->is_past_bom = true;
			continue;
		}
		p->is_past_bom = true;
		enum brg_err err = frame(p, (const char *)BOM, p->n_bom, fn, ud);
		if (err)
			return err;
	}
	return BRG_OK;
}

enum brg_err sse_parser_feed(struct sse_parser *p, const char *bytes, size_t len, sse_event_fn fn,
                             void *ud)
{
	if (p->err)
		return p->err;
	enum brg_err err = skip_bom(p, &bytes, &len, fn, ud);
	if (err)
		return err;
	return frame(p, bytes, len, fn, ud);
}

enum brg_err sse_parser_finish(struct sse_parser *p, sse_event_fn fn, void *ud)
{
	if (p->err)
		return p->err;
	/* A stream of one or two BOM bytes: they were content after all. */
	enum brg_err err = BRG_OK;
	if (!p->is_past_bom && p->n_bom)
		err = frame(p, (const char *)BOM, p->n_bom, fn, ud);
	if (!err && p->is_ndjson && p->line.len)
		err = ndjson_line(p, fn, ud);
	if (err)
		return err;
	/* SSE: an unterminated line or event is discarded (spec 9.2.6, end of
	 * file).  Either way the parser is ready for a new stream. */
	buf_reset(&p->line);
	buf_reset(&p->event);
	p->n_bom = 0;
	p->is_past_bom = false;
	p->is_after_cr = false;
	p->has_data = false;
	return BRG_OK;
}
