/*
 * http.h — brigade's HTTP front door: its own HTTP/1.1 server
 * (server.c, exchange.c; framing in parse.h).
 *
 * It accepts connections, reads bodies up to a cap, checks the API key,
 * matches the route table, and hands each request to its handler as an
 * opaque struct http_exchange.  It knows nothing of JSON or models: errors it
 * finds itself (404, 405, 401, 413, and protocol errors: 400, 417, 431,
 * 501, 505) go to the caller's error formatter; the reply it makes then
 * carries http/'s status whatever status the formatter passes.
 *
 * Threads: one per connection.  A handler runs on its connection's thread
 * and may block there: waiting for tokens is done with http_wait(), which
 * sleeps in poll() on the producer's eventfd *and* on the client's socket,
 * so a client that goes away is noticed while its request is queued,
 * prefilling or decoding — not at the next write.
 */
#ifndef BRG_HTTP_HTTP_H
#define BRG_HTTP_HTTP_H

#include <stddef.h>
#include <sys/types.h>

#include "core/err.h"

struct http_server;
struct http_exchange;

typedef void (*http_handler_fn)(void *ud, struct http_exchange *x);
/* Formats an error that http/ found before any handler ran. */
typedef void (*http_error_fn)(void *ud, struct http_exchange *x, enum brg_err code,
                              const char *message);

/*
 * One row of the routing table.  A pattern is a literal path, optionally
 * with one "{id}" part that matches any non-empty text, slashes included
 * ("/v1/models/{id}/load" matches "/v1/models/org/m:q4/load").  Rows are
 * tried in order; a path that matches a row with another method gives 405.
 */
struct http_route {
	const char *method;
	const char *pattern;
	http_handler_fn fn;
	int is_public; /* reachable without the API key (health checks) */
};

struct http_opts {
	const char *host;      /* numeric address or name; "0.0.0.0" for all */
	int port;              /* 0: pick a free port (see http_server_port) */
	size_t max_body_bytes; /* larger bodies get 413 */
	const char *api_key;   /* NULL or "": no auth */
	/* NULL: none; else a file of more keys, reread when it changes
	 * (http/keys.h).  Either the key or any of the file's is accepted. */
	const char *api_keys_file;
	int idle_timeout_s; /* idle keep-alive / slow upload limit */
	int max_connections;
};

struct http_opts http_default_opts(void);

/*
 * Binds and starts serving.  'routes' and 'ud' are borrowed and must outlive
 * the server.  Errors: BRG_E_CONFIG (cannot bind: the message says why).
 */
enum brg_err http_server_start(const struct http_opts *o, const struct http_route *routes,
                               size_t n_routes, http_error_fn on_error, void *ud,
                               struct http_server **out, struct brg_error *err);
int http_server_port(const struct http_server *s);
/*
 * The first step of a graceful shutdown: stops accepting connections while
 * the open ones carry on.  The listening socket is shut down too, so a new
 * client is refused at once (ECONNREFUSED) instead of waiting in the
 * kernel's backlog for an accept that never comes.  Idempotent; NULL is a
 * no-op.  Any thread.
 */
void http_server_quiesce(struct http_server *s);
/* An eventfd that becomes readable once the server is quiesced and no
 * request is in progress: every one has been answered (its last byte
 * handed to the socket) or dropped.  Idle keep-alive connections do not
 * count.  For poll(); do not read or close it. */
int http_server_idle_fd(const struct http_server *s);
/* Stops accepting, waits for connection threads, frees.  NULL is a no-op. */
void http_server_stop(struct http_server *s);

/* The request.  Strings live as long as the exchange. */
const char *http_method(const struct http_exchange *x);
const char *http_path(const struct http_exchange *x);
const char *http_param(const struct http_exchange *x); /* the {id} part, or "" */
const char *http_body(const struct http_exchange *x, size_t *len);
const char *http_header(const struct http_exchange *x, const char *name); /* NULL if absent */

/* Adds a response header (e.g. Retry-After) to the reply that follows. */
void http_add_header(struct http_exchange *x, const char *name, const char *value);

/*
 * Replies with a complete body, written to the socket before this returns
 * (the handler's clean-up is then off the client's clock).  Exactly one
 * http_reply or http_reply_stream per exchange; a second is ignored.
 */
void http_reply(struct http_exchange *x, int status, const char *content_type, const char *body,
                size_t len);

/*
 * Pull callback of a streamed (chunked) reply, called on the connection's
 * thread: it may block (use http_wait), then writes up to 'max' bytes into
 * 'buf' and returns how many; 0 ends the stream cleanly, -1 drops the
 * connection.  It is never called again after returning 0 or -1.
 */
typedef ssize_t (*http_pull_fn)(void *ud, char *buf, size_t max);

/* Replies with a chunked stream (to an HTTP/1.0 client: unframed, ended by
 * the close).  The head goes out now; 'pull' is called once the handler
 * has returned.  Takes ownership of 'ud': 'free_ud' is called once the
 * stream has ended or the connection dropped. */
void http_reply_stream(struct http_exchange *x, int status, const char *content_type,
                       http_pull_fn pull, void (*free_ud)(void *), void *ud);

enum http_wait_result { HTTP_WAIT_READY, HTTP_WAIT_GONE, HTTP_WAIT_TIMEOUT };

/*
 * Sleeps until 'fd' is readable (READY), the client has closed its side of
 * the connection (GONE), or 'timeout_ms' passes (TIMEOUT; -1 waits forever).
 */
enum http_wait_result http_wait(struct http_exchange *x, int fd, int timeout_ms);

#endif
