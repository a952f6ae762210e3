/*
 * embeddings.c — POST /v1/embeddings (OpenAI's embeddings reference; the
 * spec's create_embedding): the body is parsed by embed_json.c, routed by
 * model name, run through the fallback layer (same-model fallback only),
 * and answered in the encoding the client asked for (embed_json.c again).
 *
 * The handler waits on an eventfd next to the client's socket, like a
 * chat completion: a client that goes away cancels the work.  Embeddings
 * pass admission control like generations (docs/admission.md), under the
 * model's limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "api/api_int.h"
#include "api/metrics.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/pump.h"
#include "provider/fallback.h"

/* Largest JSON answer: 2048 inputs of 4096 floats as text fit easily. */
#define EMBED_REPLY_MAX ((size_t)1 << 30)

/* ---- the handler -------------------------------------------------------- */

/* Where the provider's answer lands; the handler sleeps on 'efd'. */
struct wait {
	int efd;
	atomic_bool is_done;
	atomic_bool cancel;
	struct embed_result res;
};

static void on_done(void *ud, struct embed_result *res)
{
	struct wait *w = ud;
	w->res = *res;
	res->vecs = NULL; /* ours now */
	atomic_store(&w->is_done, true);
	uint64_t one = 1;
	if (write(w->efd, &one, sizeof one) < 0)
		log_warn("embeddings: cannot signal the waiting request");
}

/* After a cancel: the producer still owns the sink until on_done. */
static void wait_done(struct wait *w)
{
	struct pollfd p = {.fd = w->efd, .events = POLLIN};
	uint64_t v;
	while (!atomic_load(&w->is_done))
		if (pump_poll(&p, 1, 100) > 0 && read(w->efd, &v, sizeof v) < 0)
			continue;
}

static void reply_vectors(struct http_exchange *x, const struct api_embed_request *req,
                          const struct embed_result *res)
{
	struct buf b;
	buf_init(&b, EMBED_REPLY_MAX);
	enum brg_err rc = api_embeddings_json(&b, req->model, res, req->is_base64);
	if (rc) {
		struct brg_error e;
		brg_error_clear(&e);
		brg_fail(&e, rc, "cannot encode the embeddings");
		api_reply_error(x, &e);
	} else {
		http_reply(x, 200, "application/json", b.data, b.len);
	}
	buf_fini(&b);
}

/* Waits for the answer until the deadline: HTTP_WAIT_READY when it came;
 * otherwise (the client left, the deadline passed) the work is cancelled
 * and has stopped when it returns. */
static enum http_wait_result await_answer(struct http_exchange *x, struct wait *w,
                                          long long deadline)
{
	while (!atomic_load(&w->is_done)) {
		long long left = deadline - brg_now_ms();
		enum http_wait_result hw = http_wait(x, w->efd, left > 0 ? (int)left : 0);
		if (hw == HTTP_WAIT_READY) {
			uint64_t v;
			ssize_t n = read(w->efd, &v, sizeof v); /* -1 EAGAIN: nothing to clear */
			(void)n;
			continue;
		}
		atomic_store(&w->cancel, true);
		wait_done(w);
		return hw;
	}
	return HTTP_WAIT_READY;
}

/* Submits 'req' to 't', waits and gives the turn back; replies (no reply
 * when the client went away).  The work has stopped when it returns. */
static void embed(struct api *a, struct http_exchange *x, struct api_embed_request *req,
                  const struct route_target *t, struct wait *w, long long deadline,
                  struct admit_ticket *ticket)
{
	struct brg_error e;
	brg_error_clear(&e);
	char traceparent[TRACE_PARENT_SIZE]; /* lives until the work has stopped */
	struct embed_request er = {
	    .model = t->model,
	    .inputs = req->inputs,
	    .n_inputs = req->n_inputs,
	    .dimensions = req->dimensions,
	    .cancel = &w->cancel,
	    .traceparent = obs_request_traceparent(traceparent) ? traceparent : NULL,
	};
	enum brg_err rc =
	    fallback_embed(a->fallback, t->p, &er, (struct embed_sink){on_done, w}, &e);
	enum http_wait_result hw = rc ? HTTP_WAIT_READY : await_answer(x, w, deadline);
	/* The work has stopped: the turn is free before the answer goes, so
	 * that the client's next request finds it free. */
	admit_leave(a->admit, ticket);
	if (rc) {
		api_reply_error(x, &e);
	} else if (hw == HTTP_WAIT_GONE) {
		log_info("client went away; embeddings cancelled");
	} else if (hw == HTTP_WAIT_TIMEOUT) {
		api_fail_timeout(&e, a->opts.request_timeout_s, "embedding");
		api_reply_error(x, &e);
	} else if (w->res.error.code) {
		api_reply_error(x, &w->res.error);
	} else {
		reply_vectors(x, req, &w->res);
	}
}

/* Routes 'req', waits for its turn (docs/admission.md), runs it and
 * replies (no reply when the client went away). */
static void run(struct api *a, struct http_exchange *x, struct api_embed_request *req,
                struct wait *w)
{
	long long deadline = brg_now_ms() + (long long)a->opts.request_timeout_s * 1000;
	struct brg_error e;
	brg_error_clear(&e);
	struct route_target t;
	struct admit_ticket ticket;
	enum brg_err rc = route_resolve(a->router, req->model, NULL, &t, &e);
	if (rc == BRG_OK)
		rc = api_admit_target(a, x, &t, deadline, &ticket, &e);
	if (rc == BRG_E_CANCELLED) {
		atomic_store(&w->cancel, true); /* left the queue: nothing ran, nobody to answer */
		return;
	}
	if (rc) {
		api_reply_error(x, &e);
		return;
	}
	embed(a, x, req, &t, w, deadline, &ticket); /* gives the turn back */
}

void api_embeddings(void *ud, struct http_exchange *x)
{
	struct api *a = ud;
	struct brg_error e;
	brg_error_clear(&e);
	size_t len = 0;
	const char *body = http_body(x, &len);
	struct api_embed_request req;
	if (api_parse_embeddings(body, len, &req, &e)) {
		api_reply_error(x, &e);
		api_embed_request_fini(&req);
		return;
	}
	struct wait *w = calloc(1, sizeof *w);
	if (w)
		w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!w || w->efd < 0) {
		brg_fail(&e, BRG_E_RESOURCE, "cannot wait for the embeddings (out of descriptors)");
		api_reply_error(x, &e);
	} else {
		run(a, x, &req, w);
		close(w->efd);
		free(w->res.vecs);
	}
	/* obs: a reply not noted by api_reply_* is the vectors' 200, unless cancelled. */
	api_obs_finish(a, NULL,
	               &(struct obs_facts){.model = req.model,
	                                   .prompt_tokens = w ? w->res.n_prompt : 0,
	                                   .status = w && !atomic_load(&w->cancel) ? 200 : 0});
	free(w);
	api_embed_request_fini(&req);
}
