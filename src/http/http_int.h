/*
 * http_int.h — what server.c (connections) and exchange.c (one request's
 * accessors and replies) share.  Not for use outside src/http/.
 */
#ifndef BRG_HTTP_HTTP_INT_H
#define BRG_HTTP_HTTP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "http/http.h"
#include "http/parse.h"

/* A request head may be this long; a longer one gets 431. */
#define HTTP_MAX_HEAD (32 * 1024)

struct conn;

struct http_server {
	int listen_fd;
	int port;
	pthread_t accept_thread;
	const struct http_route *routes;
	size_t n_routes;
	http_error_fn on_error;
	void *ud;
	size_t max_body_bytes;
	int idle_timeout_s;
	int max_connections;
	char *api_key;
	struct http_keys *keys; /* NULL: no keys file */

	pthread_mutex_t mu; /* guards the connection list and each conn's fd */
	struct conn *conns;
	int n_conns; /* threads not yet finished */
	bool is_stopping;

	/* Requests begun and not yet completed (answered or dropped), and an
	 * eventfd signalled when that reaches 0 after the quiesce: a graceful
	 * shutdown waits for the last response to be sent, not only made. */
	atomic_int n_active;
	atomic_bool is_quiesced;
	int idle_efd;
};

/* A streamed reply, run once the handler has returned. */
struct http_stream {
	http_pull_fn pull;
	void (*free_ud)(void *);
	void *ud;
};

struct http_exchange {
	struct http_server *s;
	int fd;             /* the client's socket */
	int minor;          /* HTTP/1.<minor> */
	bool is_head;       /* HEAD: no body in the reply */
	bool is_keep_alive; /* cleared when the connection must end after this reply */
	const char *method;
	const char *path;
	char *param;
	const struct http_head *head;
	struct buf body;
	struct buf *extra; /* response header lines that http_add_header added */
	struct buf *out;   /* where the reply's head is written */
	int forced_status; /* non-zero: the status of the error http/ itself replies */
	bool has_replied;
	bool has_failed;           /* the reply could not be written: drop the connection */
	struct http_stream stream; /* .pull non-NULL: a streamed reply is pending */
};

/* exchange.c */
/* Sends the whole of head, then body, blocking; false when the client is
 * gone or too slow (the socket's send timeout). */
bool http_send_all(int fd, const char *head, size_t head_len, const char *body, size_t len);
/* Runs the pending streamed reply to its end and frees it. */
void http_run_stream(struct http_exchange *x);
/* Routes x to its handler (or a 404/405/401 through on_error). */
void http_dispatch(struct http_exchange *x);
/* An error http/ finds itself: on_error's body with 'status'. */
void http_fail(struct http_exchange *x, int status, enum brg_err code, const char *message);

#endif
