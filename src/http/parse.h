/*
 * parse.h — HTTP/1.x request framing for http/server.c: the request head,
 * what it says about the body and the connection, and chunked bodies.
 * Pure functions over bytes: no I/O, no allocation (the chunked decoder
 * appends to a caller's buf).  Unit-tested at every split point and fuzzed
 * (tests/fuzz/fuzz_http_request.c).
 *
 * Strictness follows RFC 9112 where a lenient reading could let a proxy in
 * front of brigade and brigade disagree about where a request ends
 * (request smuggling): conflicting or malformed Content-Length, any
 * Transfer-Encoding but "chunked", both Transfer-Encoding and
 * Content-Length, whitespace before a field's colon, obsolete line
 * folding and control characters are errors.  A lone LF is accepted
 * wherever CRLF is (RFC 9112 §2.2), as nginx and libmicrohttpd do.
 */
#ifndef BRG_HTTP_PARSE_H
#define BRG_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

#define HTTP_MAX_FIELDS 64

/* Pointers into the buffer given to http_parse_head; not NUL-terminated. */
struct http_field {
	const char *name; /* as sent (compare case-insensitively) */
	size_t name_len;
	const char *value; /* leading and trailing spaces and tabs removed */
	size_t value_len;
};

struct http_head {
	const char *method; /* a token: "GET", "POST"… (case-sensitive) */
	size_t method_len;
	const char *target; /* as sent: "/v1/models?x=1", "*", "http://h/p" */
	size_t target_len;
	int minor; /* HTTP/1.<minor>: 0 or 1 */
	size_t n_fields;
	struct http_field fields[HTTP_MAX_FIELDS];
};

/*
 * Parses the request head at the start of buf[0, len).  Empty lines before
 * the request line are skipped (RFC 9112 §2.2).  Returns:
 *   > 0   the head is complete: the count of bytes it took, through the
 *         blank line that ends it; *h points into buf;
 *   0     not complete yet: read more and call again with the whole head;
 *   < 0   minus an HTTP status: -400 malformed, -431 more than
 *         HTTP_MAX_FIELDS fields, -505 a version other than HTTP/1.0 or
 *         HTTP/1.1 (a well-formed "HTTP/d.d" that is not 1.0 or 1.1).
 * Lines are judged once complete, but for the method: a byte that cannot
 * be in one is -400 at once (a TLS hello needs no LF).  So as bytes are
 * added the result stays 0 until it is the whole head's, then stays that.
 * A head longer than the caller wants is the caller's to refuse (431):
 * this function has no size limit of its own.
 */
long http_parse_head(const char *buf, size_t len, struct http_head *h);

/* The value of the first field named 'name' (case-insensitive), its
 * length in *len; NULL when absent. */
const char *http_head_field(const struct http_head *h, const char *name, size_t *len);

struct http_framing {
	bool is_chunked;           /* Transfer-Encoding: chunked */
	unsigned long long length; /* Content-Length, 0 when absent */
	bool is_keep_alive;        /* the connection may carry another request */
	bool expects_continue;     /* Expect: 100-continue (HTTP/1.1 only) */
};

/*
 * What the head says about its body and its connection.  Returns 0, or an
 * HTTP status:
 *   400  Content-Length not a plain decimal number, too large for 64 bits,
 *        or given twice with different values (a list "5, 5" of equal
 *        values counts as one); both Transfer-Encoding and
 *        Content-Length; HTTP/1.1 without a Host field, or more than
 *        one Host field in any version (RFC 9112 §3.2);
 *   501  a Transfer-Encoding other than a single "chunked" (any case);
 *        HTTP/1.0 with any Transfer-Encoding;
 *   417  an Expect other than "100-continue" (any case) in HTTP/1.1
 *        (HTTP/1.0's expectations are ignored).
 * Keep-alive: HTTP/1.1 unless a Connection field lists "close"; HTTP/1.0
 * only when one lists "keep-alive" and none "close" (lists are
 * comma-separated tokens, any case, spread over any number of Connection
 * fields); never after an error.
 */
int http_head_framing(const struct http_head *h, struct http_framing *f);

/* Incremental decoder of a chunked body (RFC 9112 §7.1).  Zero it to start. */
struct http_chunked {
	int state;
	unsigned long long left; /* data bytes left in the current chunk */
	size_t line_len;         /* bytes of the current size or trailer line */
};

enum http_chunked_result {
	HTTP_CHUNKED_MORE = 0, /* all of in was used; feed the next bytes */
	HTTP_CHUNKED_DONE,     /* the last chunk and the trailers are read */
	HTTP_CHUNKED_BAD,      /* malformed: answer 400 and close */
	HTTP_CHUNKED_TOO_LARGE /* a chunk would pass 'out''s cap (checked at its
	                          size line, before any of it is appended), or
	                          'out' could not grow: 413 */
};

/*
 * Decodes in[0, len), appending chunk data to 'out'.  *used is set to the
 * bytes taken: all of them with MORE; up to the end of the body with DONE
 * (what follows is the next request's); where it stopped with BAD or
 * TOO_LARGE.  Chunk extensions and trailer fields are read and dropped; a
 * size line or a trailer line over 4 KiB is BAD, as is a chunk size past
 * 2^63.  After DONE, BAD or TOO_LARGE the decoder returns the same again
 * with *used 0.
 */
enum http_chunked_result http_chunked_feed(struct http_chunked *c, const char *in, size_t len,
                                           struct buf *out, size_t *used);

/*
 * Decodes the %XX escapes of a request target's path in place (up to the
 * first '?', which ends it: the query is dropped).  Returns the new
 * length, or -1 for a bad escape ('%' without two hex digits) or an
 * escaped NUL.  '+' stays '+' (it means a space only in queries).
 */
long http_decode_path(char *path, size_t len);

#endif
