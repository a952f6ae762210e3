/*
 * remote_int.h — what remote.c (the provider, its I/O thread and the
 * streamed generations) shares with remote_embed.c (embeddings): the
 * provider's state and the part of a transfer the I/O loop knows.
 * Private to src/provider/remote*.c.
 *
 * A transfer is a struct xfer embedded first in its kind's own struct
 * (struct gen_xfer, struct embed_xfer), so the loop can end any transfer
 * through its ops without knowing what it carries.  Everything about a
 * queued transfer happens on the provider's I/O thread.
 */
#ifndef BRG_PROVIDER_REMOTE_INT_H
#define BRG_PROVIDER_REMOTE_INT_H

#include "core/curl_lazy.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/buf.h"
#include "provider/remote.h"

#define REMOTE_MAX_ERROR_BODY ((size_t)64 << 10)

struct h1_target;
struct h1_xfer;

/*
 * A set of running transfers and the libcurl multi handle that drives
 * them: the provider's I/O thread has one, and so may an HTTP thread that
 * runs its transfers itself (remote_loop.c).  Only its thread touches it.
 */
struct xloop {
	CURLM *multi;
	struct xfer *active;
};

struct remote_provider {
	const struct provider_config *cfg;
	struct provider_ops ops;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct xloop io;       /* the I/O thread's */
	struct xfer *incoming; /* guarded by mu: queued for the I/O thread */
	atomic_bool is_closing;
	bool is_drained; /* guarded by mu: the thread finished every transfer */
	/* The request headers for each Accept type (REMOTE_ACCEPTS), built
	 * once: every transfer without a trace context shares them. */
	struct curl_slist *headers[3];
	/* Plain-http upstreams: brigade's own HTTP/1.1 client carries the
	 * transfers that run on an HTTP thread (remote_h1.c); else NULL. */
	struct h1_target *h1;
};

/* The Accept types of the transfers: SSE, NDJSON (Ollama), plain JSON. */
#define REMOTE_ACCEPTS                                                          \
	{                                                                       \
		"text/event-stream", "application/x-ndjson", "application/json" \
	}

struct xfer;

struct xfer_ops {
	/*
	 * Called on the I/O thread once the transfer has left the multi handle
	 * (cc: how libcurl ended it; CURLE_OK when the loop cut it, with
	 * is_cancelled or has_failed set).  Delivers the outcome and frees the
	 * transfer — or starts its next request with remote_xfer_start().
	 */
	void (*end)(struct xfer *x, CURLcode cc);
	/* Frees a transfer that was never started (the provider was closing). */
	void (*free)(struct xfer *x);
};

struct xfer {
	const struct xfer_ops *ops;
	struct remote_provider *rp;
	struct xloop *loop; /* set by remote_submit */
	struct xfer *next;
	/* The request, kept until a transport is chosen (remote_submit). */
	curl_write_callback write; /* the body callback; its userdata is x */
	int accept;                /* index into REMOTE_ACCEPTS */
	char traceparent[64];      /* "" when none */
	const char *path;          /* under the provider's base URL */
	const char *body;          /* borrowed: outlives the transfer */
	/* libcurl carries it (easy set), or brigade's own client (h1 set). */
	CURL *easy;
	struct curl_slist *headers;
	bool owns_headers; /* else they are the provider's shared ones */
	struct h1_xfer *h1;
	const atomic_bool *cancel;
	bool is_cancelled;        /* the cancel flag, or the provider closing, cut it */
	bool is_closing;          /* with is_cancelled: it was the provider closing */
	bool has_failed;          /* the first failure is recorded in 'failure' */
	struct brg_error failure; /* valid when has_failed */
	long status;              /* the upstream's HTTP status, 0 until known */
	long long retry_after_s;  /* the own client's Retry-After; -1 when none */
	bool has_first_byte;
	long long started_ms;
	struct buf err_body; /* the start of an error answer's body */
};

/*
 * Sets up the common part of a POST to base_url + path (remote_xfer_request)
 * with our headers (JSON body, 'accept' — one of REMOTE_ACCEPTS —, the
 * key, the configured extra headers, 'traceparent' when not NULL) and
 * timeouts, and 'write' as the body callback (its userdata is x), whichever
 * transport carries it.
 */
void remote_xfer_init(struct xfer *x, struct remote_provider *rp, const struct xfer_ops *ops,
                      const atomic_bool *cancel, const char *accept, const char *traceparent,
                      curl_write_callback write);
/* The request to send next: 'body' is borrowed and must outlive it. */
void remote_xfer_request(struct xfer *x, const char *path, const char *body);
/* Gives the transfer to libcurl: an easy handle with every setting.
 * Errors: BRG_E_NOMEM (remote_xfer_fini() releases what was made). */
enum brg_err remote_xfer_use_curl(struct xfer *x);
/* Points its easy handle at the request (remote_xfer_start calls it). */
void remote_xfer_curl_request(struct xfer *x);
void remote_xfer_fini(struct xfer *x);

/* Starts built transfers: on the calling thread's own loop when it may run
 * one (remote_loop.c), else queued to the I/O thread, which is woken; when
 * the provider is closing, frees them all (ops->free) and fails with
 * BRG_E_SHUTTING_DOWN. */
enum brg_err remote_submit(struct remote_provider *rp, struct xfer **xs, size_t n,
                           struct brg_error *err);
/* From ops->end, on the transfer's loop: starts its (next) request on the
 * same handle, with fresh per-request state and deadlines. */
void remote_xfer_start(struct xfer *x);
/* Takes a transfer off its loop (its transport lets go of it) and ends it
 * through ops->end. */
void remote_xfer_finish(struct xfer *x, CURLcode cc);

/*
 * The body callbacks' common first step: notes the first byte and the
 * status; for an error status keeps the start of the body (for its
 * message) and returns true — the callback then returns n.
 */
bool remote_xfer_error_body(struct xfer *x, const char *p, size_t n);
/* The HTTP status, asking libcurl when no body byte told it yet. */
long remote_xfer_status(struct xfer *x);

/* Records the transfer's failure, with the provider's name and the
 * upstream's status as details; the first one wins. */
void remote_xfer_fail(struct xfer *x, enum brg_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A libcurl failure: timeouts are BRG_E_UPSTREAM_TIMEOUT, the rest
 * BRG_E_UPSTREAM. */
void remote_xfer_fail_curl(struct xfer *x, CURLcode cc);
/*
 * An HTTP error status: 429 → BRG_E_RATE_LIMITED (with the upstream's
 * Retry-After), 401/403 → BRG_E_UPSTREAM_AUTH, 408/504 →
 * BRG_E_UPSTREAM_TIMEOUT, 404 → 'not_found' (it means different things to
 * different endpoints), other 4xx → BRG_E_BAD_REQUEST, the rest
 * BRG_E_UPSTREAM; the message carries the upstream's own, after 'what'.
 */
void remote_xfer_fail_status(struct xfer *x, enum brg_err not_found, const char *what);

/* The I/O thread (remote_loop.c): start it; close ends every transfer and
 * refuses new ones (waits until the thread has drained); free joins it. */
enum brg_err remote_loop_start(struct remote_provider *rp);
void remote_loop_close(struct remote_provider *rp);
void remote_loop_free(struct remote_provider *rp);

/* An easy handle: a spare one of the calling thread's loop (its settings
 * reset) or a new one.  Done: kept as a spare when the thread has a loop
 * with room, else cleaned up; NULL is a no-op. */
CURL *remote_loop_easy(void);
void remote_loop_easy_done(CURL *e);

/* ---- brigade's own HTTP/1.1 client (remote_h1.c) ----------------------- */

/* What a provider's transfers need to reach it: NULL when its base URL is
 * not plain http (or memory ran out: libcurl then carries everything). */
struct h1_target *remote_h1_target_new(const struct provider_config *c,
                                       struct curl_slist *const headers[3]);
void remote_h1_target_free(struct h1_target *t);
/* Sends x's request (remote_xfer_start calls it).  A failure here is
 * reported by remote_h1_check at the loop's next round, never inside the
 * caller's call. */
void remote_h1_start(struct xfer *x);
/* The descriptor x waits on and for what (0: nothing to wait for). */
int remote_h1_fd(const struct xfer *x, short *events);
/* Whether x has news that needs no waiting (a failure to report). */
bool remote_h1_is_due(const struct xfer *x);
/* x's descriptor is ready: does its I/O; may end it. */
void remote_h1_event(struct xfer *x, short revents);
/* Ends x if it failed or passed its connect or total deadline. */
void remote_h1_check(struct xfer *x, long long now_ms);
/* The transfer leaves its loop: a connection still open closes. */
void remote_h1_drop(struct xfer *x);
void remote_h1_free(struct xfer *x);

/* Whether the provider speaks Ollama's native API. */
bool remote_is_ollama(const struct remote_provider *rp);

/* The provider's embeddings (remote_embed.c), for its ops table. */
enum brg_err remote_embed(void *impl, const struct embed_request *r, struct embed_sink sink,
                          struct brg_error *err);

#endif
