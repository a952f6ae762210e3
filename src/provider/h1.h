/*
 * h1.h — the pure half of brigade's own HTTP/1.1 client: an incremental
 * parser for one response (status line, headers, a body framed by
 * Content-Length, chunked transfer coding or the connection's close) and
 * the URL split that the request line and Host header need.
 *
 * brigade talks to plain-http upstreams on an HTTP connection's own thread
 * with this client (remote_h1.c), not libcurl: a proxied request then
 * costs one send, one poll and one receive, and none of libcurl's
 * per-transfer set-up (docs/internals/http.md).  No I/O here: unit-tested
 * and fuzzed on its own.
 */
#ifndef BRG_PROVIDER_H1_H
#define BRG_PROVIDER_H1_H

#include <stdbool.h>
#include <stddef.h>

/* A status line or header line longer than this is refused. */
#define H1_LINE_MAX 8192
/* All the header (and trailer) lines of one response together. */
#define H1_HEAD_MAX ((size_t)64 << 10)

enum h1_rc {
	H1_MORE,  /* every byte consumed, the response goes on */
	H1_DONE,  /* the response ended ('used' says where) */
	H1_STOP,  /* the body callback asked to stop */
	H1_ERROR, /* not HTTP/1.x as we read it: 'why' says what */
};

/* Body bytes, de-chunked, valid during the call.  Nonzero stops. */
typedef int (*h1_body_fn)(void *ud, const char *p, size_t n);
/* Called once the headers of the final (non-1xx) response are read,
 * before any body byte; nonzero stops for good (the response cannot be
 * read on). */
typedef int (*h1_head_fn)(void *ud, int status);

enum h1_state {
	H1S_STATUS,
	H1S_HEADER,
	H1S_BODY_LENGTH,
	H1S_BODY_CLOSE,
	H1S_CHUNK_SIZE,
	H1S_CHUNK_DATA,
	H1S_CHUNK_END,
	H1S_TRAILER,
	H1S_DONE,
	H1S_FAILED,
};

struct h1_parser {
	enum h1_state state;
	int status;            /* of the final response; 0 until its status line */
	bool is_http10;        /* the server spoke HTTP/1.0 */
	bool is_close;         /* the connection cannot carry another request */
	bool has_said_close;   /* a Connection: close was seen (keep-alive cannot undo it) */
	bool is_chunked;       /* Transfer-Encoding: chunked */
	bool is_bodyless;      /* a response to HEAD, or 204/304: no body */
	long long length;      /* Content-Length, -1 when none */
	long long left;        /* body bytes (or this chunk's) still to come */
	long long retry_after; /* Retry-After in seconds (HTTP-date resolved), -1 when none */
	size_t n_seen;         /* every byte fed so far */
	size_t head_bytes;     /* header and trailer bytes of this response */
	const char *why;       /* with H1_ERROR */
	size_t line_len;
	char line[H1_LINE_MAX];
};

/* Ready for a response; 'is_head': the request was HEAD (no body follows). */
void h1_parser_init(struct h1_parser *p, bool is_head);

/*
 * Feeds received bytes.  Calls 'head' once the final response's headers
 * are read and 'body' with its body bytes (both may be NULL).  *used gets
 * how many bytes were consumed: all of them unless it returns H1_DONE
 * early (anything after a response is not ours to read) or H1_STOP.  After
 * H1_ERROR the parser stays failed.
 */
enum h1_rc h1_feed(struct h1_parser *p, const char *data, size_t n, h1_head_fn head,
                   h1_body_fn body, void *ud, size_t *used);

/* The connection closed: H1_DONE when that ends the body (no length was
 * given), else H1_ERROR ('why': nothing arrived, or it was cut). */
enum h1_rc h1_eof(struct h1_parser *p);

/*
 * Splits an http:// URL ("http://host[:port][/prefix]") into the host for
 * the resolver (brackets of an IPv6 literal removed), the port (default
 * "80"), the Host header's value and the path prefix ("" or "/..." without
 * a trailing slash).  False for anything else: another scheme, user
 * information, a query or fragment, an empty host, a bad port, or a part
 * that does not fit its buffer.
 */
bool h1_split_url(const char *url, char *host, size_t host_len, char *port, size_t port_len,
                  char *authority, size_t authority_len, char *prefix, size_t prefix_len);

#endif
