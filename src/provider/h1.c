/*
 * h1.c — see h1.h.
 *
 * RFC 9112 as a client needs it: lines end in LF (a CR before it is
 * dropped); interim 1xx responses are skipped; Transfer-Encoding wins over
 * Content-Length and must end in "chunked" (we never ask for another
 * coding); two different Content-Lengths, a folded header line, a chunk
 * size that is not hex or a line past H1_LINE_MAX are errors, never
 * guesses.  A body with neither framing runs to the connection's close.
 */
/* strptime and timegm need _GNU_SOURCE, which the Makefile defines. */
#include "provider/h1.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_LENGTH     ((long long)1 << 60)
#define MAX_RETRY_SECS (100LL * 365 * 24 * 3600)

void h1_parser_init(struct h1_parser *p, bool is_head)
{
	p->state = H1S_STATUS;
	p->status = 0;
	p->is_http10 = false;
	p->is_close = false;
	p->has_said_close = false;
	p->is_chunked = false;
	p->is_bodyless = is_head;
	p->length = -1;
	p->left = 0;
	p->retry_after = -1;
	p->n_seen = 0;
	p->head_bytes = 0;
	p->why = NULL;
	p->line_len = 0;
}

static enum h1_rc fail(struct h1_parser *p, const char *why)
{
	p->state = H1S_FAILED;
	p->why = why;
	return H1_ERROR;
}

static bool is_token_char(unsigned char c)
{
	return c > 32 && c < 127 && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

static const char *trim(const char *s, size_t *len)
{
	while (*len && (*s == ' ' || *s == '\t'))
		s++, (*len)--;
	while (*len && (s[*len - 1] == ' ' || s[*len - 1] == '\t'))
		(*len)--;
	return s;
}

/* Whether 'v' (len bytes) equals 'word', ignoring case. */
static bool is_word(const char *v, size_t len, const char *word)
{
	return len == strlen(word) && strncasecmp(v, word, len) == 0;
}

/* Decimal digits only, below MAX_LENGTH; -1 otherwise. */
static long long decimal(const char *v, size_t len)
{
	if (len == 0 || len > 18)
		return -1;
	long long n = 0;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (v[i] - '0');
	}
	return n < MAX_LENGTH ? n : -1;
}

/* Retry-After: delay-seconds or an HTTP-date (IMF-fixdate), as seconds
 * from now (0 for a date in the past); -1 when unreadable. */
static long long retry_after(const char *v, size_t len)
{
	long long secs = decimal(v, len);
	if (secs >= 0)
		return secs < MAX_RETRY_SECS ? secs : MAX_RETRY_SECS;
	char date[64];
	if (len >= sizeof date)
		return -1;
	memcpy(date, v, len);
	date[len] = '\0';
	struct tm tm = {0};
	const char *end = strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end || *end)
		return -1;
	time_t at = timegm(&tm), now = time(NULL);
	long long secs_left = at > now ? (long long)(at - now) : 0;
	return secs_left < MAX_RETRY_SECS ? secs_left : MAX_RETRY_SECS;
}

/* Whether the comma-separated list 'v' has 'word' as an element. */
static bool list_has(const char *v, size_t len, const char *word)
{
	while (len) {
		const char *comma = memchr(v, ',', len);
		size_t n = comma ? (size_t)(comma - v) : len;
		size_t elen = n;
		const char *e = trim(v, &elen);
		if (is_word(e, elen, word))
			return true;
		if (!comma)
			break;
		v += n + 1;
		len -= n + 1;
	}
	return false;
}

static enum h1_rc status_line(struct h1_parser *p, const char *s, size_t len)
{
	/* "HTTP/1.x SSS[ reason]" */
	if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
		return fail(p, "the upstream's answer is not an HTTP/1.x status line");
	int status = 0;
	for (int i = 9; i < 12; i++) {
		if (s[i] < '0' || s[i] > '9')
			return fail(p, "the upstream's status code is not three digits");
		status = status * 10 + (s[i] - '0');
	}
	if (status < 100 || (len > 12 && s[12] != ' '))
		return fail(p, "the upstream's status line is malformed");
	p->status = status;
	p->is_http10 = s[7] == '0';
	p->is_close = p->is_http10; /* 1.0 closes unless it says keep-alive */
	p->state = H1S_HEADER;
	return H1_MORE;
}

static enum h1_rc header_line(struct h1_parser *p, const char *s, size_t len)
{
	if (s[0] == ' ' || s[0] == '\t')
		return fail(p, "the upstream folded a header line");
	const char *colon = memchr(s, ':', len);
	if (!colon || colon == s)
		return fail(p, "the upstream sent a header line without a name");
	size_t name_len = (size_t)(colon - s);
	for (size_t i = 0; i < name_len; i++)
		if (!is_token_char((unsigned char)s[i]))
			return fail(p, "the upstream sent a malformed header name");
	size_t vlen = len - name_len - 1;
	const char *v = trim(colon + 1, &vlen);
	if (is_word(s, name_len, "content-length")) {
		long long n = decimal(v, vlen);
		if (n < 0 || (p->length >= 0 && p->length != n))
			return fail(p, "the upstream sent a bad Content-Length");
		p->length = n;
	} else if (is_word(s, name_len, "transfer-encoding")) {
		/* We send no TE header: chunked is the only coding a server may
		 * apply (identity is the absence of one). */
		if (is_word(v, vlen, "chunked"))
			p->is_chunked = true;
		else if (!is_word(v, vlen, "identity"))
			return fail(p, "the upstream used a transfer coding we did not ask for");
	} else if (is_word(s, name_len, "connection")) {
		if (list_has(v, vlen, "close")) {
			p->is_close = true;
			p->has_said_close = true;
		} else if (list_has(v, vlen, "keep-alive") && p->is_http10 && !p->has_said_close) {
			p->is_close = false;
		}
	} else if (is_word(s, name_len, "retry-after")) {
		p->retry_after = retry_after(v, vlen);
	}
	return H1_MORE;
}

/* The blank line after the headers: where the body starts, if any. */
static enum h1_rc end_of_head(struct h1_parser *p, h1_head_fn head, void *ud)
{
	if (p->status < 200 && p->status != 101) {
		/* An interim answer (100 Continue, 103 Early Hints): the final
		 * one follows on the same connection. */
		bool is_head = p->is_bodyless;
		size_t seen = p->n_seen, head_bytes = p->head_bytes;
		h1_parser_init(p, is_head);
		p->n_seen = seen;
		p->head_bytes = head_bytes;
		return H1_MORE;
	}
	if (p->status == 101)
		return fail(p, "the upstream switched protocols");
	if (p->is_chunked && p->length >= 0)
		p->is_close = true; /* both framings: trust neither for another request */
	if (head && head(ud, p->status))
		return H1_STOP;
	if (p->is_bodyless || p->status == 204 || p->status == 304) {
		p->state = H1S_DONE;
		return H1_DONE;
	}
	if (p->is_chunked) {
		p->state = H1S_CHUNK_SIZE;
	} else if (p->length >= 0) {
		p->left = p->length;
		p->state = p->left ? H1S_BODY_LENGTH : H1S_DONE;
		if (!p->left)
			return H1_DONE;
	} else {
		p->is_close = true;
		p->state = H1S_BODY_CLOSE;
	}
	return H1_MORE;
}

static enum h1_rc chunk_size_line(struct h1_parser *p, const char *s, size_t len)
{
	long long n = 0;
	size_t i = 0;
	for (; i < len; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
		        : c >= 'a' && c <= 'f' ? c - 'a' + 10
		        : c >= 'A' && c <= 'F' ? c - 'A' + 10
		                               : -1;
		if (d < 0)
			break;
		if (n >= MAX_LENGTH >> 4)
			return fail(p, "the upstream sent a chunk too large to read");
		n = n * 16 + d;
	}
	if (i == 0)
		return fail(p, "the upstream sent a chunk size that is not hex");
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i < len && s[i] != ';')
		return fail(p, "the upstream sent a malformed chunk size line");
	p->left = n;
	p->state = n ? H1S_CHUNK_DATA : H1S_TRAILER;
	return H1_MORE;
}

/* One complete line (without its LF, or CR LF) in the current state;
 * 'at': where it started in the stream. */
static enum h1_rc line(struct h1_parser *p, const char *s, size_t len, size_t at, h1_head_fn head,
                       void *ud)
{
	switch (p->state) {
	case H1S_STATUS:
		if (len == 0 && at <= 2)
			return H1_MORE; /* a stray blank line before the status line */
		return status_line(p, s, len);
	case H1S_HEADER:
		return len ? header_line(p, s, len) : end_of_head(p, head, ud);
	case H1S_CHUNK_SIZE:
		return chunk_size_line(p, s, len);
	case H1S_CHUNK_END:
		if (len)
			return fail(p, "the upstream's chunk is longer than its size");
		p->state = H1S_CHUNK_SIZE;
		return H1_MORE;
	case H1S_TRAILER:
		if (len)
			return H1_MORE; /* trailer fields: nothing we use */
		p->state = H1S_DONE;
		return H1_DONE;
	default:
		return fail(p, "internal: a line in a body state");
	}
}

static bool is_line_state(enum h1_state s)
{
	return s == H1S_STATUS || s == H1S_HEADER || s == H1S_CHUNK_SIZE || s == H1S_CHUNK_END ||
	       s == H1S_TRAILER;
}

/* Takes bytes of a line; a complete line is handled.  Returns the bytes
 * consumed in *took. */
static enum h1_rc take_line(struct h1_parser *p, const char *d, size_t n, h1_head_fn head, void *ud,
                            size_t *took)
{
	const char *lf = memchr(d, '\n', n);
	size_t part = lf ? (size_t)(lf - d) : n;
	/* The line's earlier parts, if any, are already in n_seen: where it
	 * started does not depend on how the stream was split. */
	size_t at = p->n_seen - p->line_len;
	*took = lf ? part + 1 : n;
	bool is_head_line =
	    p->state == H1S_STATUS || p->state == H1S_HEADER || p->state == H1S_TRAILER;
	if (is_head_line) {
		p->head_bytes += *took;
		if (p->head_bytes > H1_HEAD_MAX)
			return fail(p, "the upstream's headers are too large");
	}
	if (part > H1_LINE_MAX - p->line_len)
		return fail(p, "the upstream sent a line too long to read");
	const char *s = d;
	size_t len = part;
	if (p->line_len || !lf) {
		memcpy(p->line + p->line_len, d, part);
		p->line_len += part;
		if (!lf)
			return H1_MORE;
		s = p->line;
		len = p->line_len;
	}
	p->line_len = 0;
	if (len && s[len - 1] == '\r')
		len--;
	return line(p, s, len, at, head, ud);
}

enum h1_rc h1_feed(struct h1_parser *p, const char *data, size_t n, h1_head_fn head,
                   h1_body_fn body, void *ud, size_t *used)
{
	size_t i = 0;
	enum h1_rc rc = H1_MORE;
	if (p->state == H1S_FAILED) {
		*used = 0;
		return H1_ERROR;
	}
	if (p->state == H1S_DONE) {
		*used = 0;
		return H1_DONE;
	}
	while (i < n && rc == H1_MORE) {
		size_t took;
		if (is_line_state(p->state)) {
			rc = take_line(p, data + i, n - i, head, ud, &took);
		} else {
			size_t avail = n - i;
			took = p->state != H1S_BODY_CLOSE && (long long)avail > p->left
			           ? (size_t)p->left
			           : avail;
			if (p->state != H1S_BODY_CLOSE)
				p->left -= (long long)took;
			if (took && body && body(ud, data + i, took))
				rc = H1_STOP;
			if (p->state == H1S_CHUNK_DATA && p->left == 0)
				p->state = H1S_CHUNK_END;
			else if (p->state == H1S_BODY_LENGTH && p->left == 0) {
				p->state = H1S_DONE;
				if (rc == H1_MORE)
					rc = H1_DONE;
			}
		}
		i += took;
		p->n_seen += took;
	}
	*used = i;
	return rc;
}

enum h1_rc h1_eof(struct h1_parser *p)
{
	switch (p->state) {
	case H1S_DONE:
		return H1_DONE;
	case H1S_BODY_CLOSE:
		p->state = H1S_DONE;
		return H1_DONE;
	case H1S_FAILED:
		return H1_ERROR;
	case H1S_STATUS:
		if (p->n_seen == 0)
			return fail(p, "the upstream closed the connection without answering");
		/* fall through */
	default:
		return fail(p, "the upstream closed the connection mid-answer");
	}
}

static bool copy(char *out, size_t cap, const char *s, size_t len)
{
	if (len >= cap)
		return false;
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

bool h1_split_url(const char *url, char *host, size_t host_len, char *port, size_t port_len,
                  char *authority, size_t authority_len, char *prefix, size_t prefix_len)
{
	if (strncasecmp(url, "http://", 7) != 0)
		return false;
	for (const char *c = url; *c; c++)
		if ((unsigned char)*c <= 0x20 || *c == 0x7f)
			return false; /* it goes into a request line and a header */
	const char *a = url + 7;
	size_t alen = strcspn(a, "/?#");
	const char *rest = a + alen;
	if (alen == 0 || memchr(a, '@', alen) || strpbrk(rest, "?#"))
		return false;
	const char *h = a, *colon;
	size_t hlen;
	if (a[0] == '[') {
		const char *close = memchr(a, ']', alen);
		if (!close || close == a + 1)
			return false;
		h = a + 1;
		hlen = (size_t)(close - h);
		colon = close + 1 < a + alen ? close + 1 : NULL;
		if (colon && *colon != ':')
			return false;
	} else {
		colon = memchr(a, ':', alen);
		hlen = colon ? (size_t)(colon - a) : alen;
	}
	if (hlen == 0 || !copy(host, host_len, h, hlen))
		return false;
	const char *p = colon ? colon + 1 : "80";
	size_t plen = colon ? (size_t)(a + alen - p) : 2;
	long long v = plen <= 5 ? decimal(p, plen) : -1;
	if (v < 1 || v > 65535 || !copy(port, port_len, p, plen))
		return false;
	/* Host: as written, minus a default port (what curl sends too). */
	size_t auth_len = v == 80 && colon ? (size_t)(colon - a) : alen;
	if (!copy(authority, authority_len, a, auth_len))
		return false;
	size_t rlen = strlen(rest);
	while (rlen && rest[rlen - 1] == '/')
		rlen--;
	return copy(prefix, prefix_len, rest, rlen);
}
