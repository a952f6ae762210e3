/*
 * remote_embed.c — embeddings from remote providers: the 'embed' op of
 * remote.c's provider (remote_int.h).
 *
 * OpenAI-compatible upstreams get one POST {base}/embeddings carrying
 * every input, always asking for floats (brigade's API layer encodes
 * base64 for its own client: not every OpenAI-compatible server can).
 * Ollama's /api/embeddings takes one text per request, so its inputs go
 * one after the other on the same handle (keep-alive reuses the
 * connection), the first failure ending the lot; it reports no token
 * count, so n_prompt is 0.
 *
 * Nothing streams: the answer is collected whole (capped), decoded by
 * wire.c and delivered through the sink's on_done, exactly once, on the
 * provider's I/O thread.  The transfer rides the same loop as generations,
 * so it gets the same headers, timeouts, first-byte deadline and 20 ms
 * cancel polling; a cancel or the provider closing removes the handle at
 * once, which closes the upstream connection.
 *
 * Upstream statuses map as for chat with one difference: a 404 here most
 * often means the upstream has no embeddings endpoint, or the model is not
 * an embedding model — the client's choice of model, so a 400 saying so.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "provider/remote_int.h"
#include "provider/wire.h"

/* The largest answer collected: 64 Mi floats as JSON text fit. */
#define MAX_ANSWER_BYTES ((size_t)256 << 20)

struct embed_xfer {
	struct xfer x;
	struct embed_sink sink;
	char **bodies; /* one request body (OpenAI) or one per input (Ollama) */
	size_t n_bodies;
	size_t cur; /* the body in flight */
	size_t n_inputs;
	struct buf answer;
	struct embed_result res; /* Ollama fills vecs row by row */
};

static struct embed_xfer *embed_of(struct xfer *x)
{
	return (struct embed_xfer *)((char *)x - offsetof(struct embed_xfer, x));
}

static void embed_free(struct xfer *x)
{
	if (!x)
		return;
	struct embed_xfer *ex = embed_of(x);
	remote_xfer_fini(&ex->x);
	for (size_t i = 0; ex->bodies && i < ex->n_bodies; i++)
		free(ex->bodies[i]);
	free(ex->bodies);
	buf_fini(&ex->answer);
	free(ex->res.vecs);
	free(ex);
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct embed_xfer *ex = embed_of(ud);
	size_t n = size * nmemb;
	if (remote_xfer_error_body(&ex->x, p, n))
		return n;
	enum brg_err rc = buf_append(&ex->answer, p, n);
	if (rc == BRG_E_TOO_LARGE)
		remote_xfer_fail(&ex->x, BRG_E_UPSTREAM,
		                 "the upstream's answer is too large (over %zu MiB)",
		                 MAX_ANSWER_BYTES >> 20);
	else if (rc)
		remote_xfer_fail(&ex->x, BRG_E_NOMEM,
		                 "out of memory reading the upstream's answer");
	return rc ? 0 : n; /* 0 aborts the transfer */
}

/* A refused answer, in our error table's terms. */
static void fail_decode(struct embed_xfer *ex, enum brg_err rc, const char *why)
{
	struct xfer *x = &ex->x;
	if (rc == BRG_E_UPSTREAM)
		remote_xfer_fail(x, BRG_E_UPSTREAM, "upstream error: %s", why);
	else if (rc == BRG_E_BAD_JSON)
		remote_xfer_fail(x, BRG_E_UPSTREAM, "malformed embeddings from upstream: %s", why);
	else
		remote_xfer_fail(x, rc, "%s", why);
}

/* Adds one Ollama vector as row ex->cur.  Takes ownership of 'vec'. */
static void add_row(struct embed_xfer *ex, float *vec, int dim)
{
	struct embed_result *r = &ex->res;
	if (ex->cur == 0) {
		if ((size_t)dim > WIRE_EMBED_MAX_FLOATS / ex->n_inputs)
			remote_xfer_fail(&ex->x, BRG_E_UPSTREAM,
			                 "%zu embeddings of %d values are too many", ex->n_inputs,
			                 dim);
		else if (!(r->vecs = malloc(ex->n_inputs * (size_t)dim * sizeof *r->vecs)))
			remote_xfer_fail(&ex->x, BRG_E_NOMEM, "out of memory");
		r->dim = dim;
	} else if (dim != r->dim) {
		remote_xfer_fail(&ex->x, BRG_E_UPSTREAM,
		                 "input %zu gave %d values but input 0 gave %d", ex->cur, dim,
		                 r->dim);
	}
	if (!ex->x.has_failed)
		memcpy(r->vecs + ex->cur * (size_t)dim, vec, (size_t)dim * sizeof *vec);
	free(vec);
}

/*
 * Reads the answer to the request in flight into ex->res, or records why
 * it cannot.  Returns true when another request must follow (Ollama's
 * next input), with the handle already pointing at it.
 */
static bool read_answer(struct embed_xfer *ex)
{
	char why[256];
	const char *data = ex->answer.data ? ex->answer.data : "";
	size_t len = ex->answer.len;
	if (!remote_is_ollama(ex->x.rp)) {
		enum brg_err rc = wire_decode_openai_embeddings(data, len, ex->n_inputs, &ex->res,
		                                                why, sizeof why);
		if (rc)
			fail_decode(ex, rc, why);
		return false;
	}
	float *vec;
	int dim;
	enum brg_err rc = wire_decode_ollama_embedding(data, len, &vec, &dim, why, sizeof why);
	if (rc) {
		fail_decode(ex, rc, why);
		return false;
	}
	add_row(ex, vec, dim);
	if (ex->x.has_failed)
		return false;
	if (++ex->cur < ex->n_bodies) {
		buf_reset(&ex->answer);
		remote_xfer_request(&ex->x, "/api/embeddings", ex->bodies[ex->cur]);
		return true;
	}
	ex->res.n_inputs = ex->n_inputs;
	ex->res.n_prompt = 0; /* /api/embeddings reports no count */
	return false;
}

/* Ends a request: starts the next one (Ollama), or delivers and frees. */
static void embed_end(struct xfer *x, CURLcode cc)
{
	struct embed_xfer *ex = embed_of(x);
	if (!x->is_cancelled && !x->has_failed) {
		long s = remote_xfer_status(x);
		if (s >= 400)
			remote_xfer_fail_status(x, BRG_E_BAD_REQUEST,
			                        "upstream has no embeddings endpoint or model");
		else if (cc != CURLE_OK)
			remote_xfer_fail_curl(x, cc);
		else if (s < 200 || s >= 300)
			remote_xfer_fail(x, BRG_E_UPSTREAM, "upstream answered HTTP %ld", s);
		else if (read_answer(ex)) {
			remote_xfer_start(x);
			return;
		}
	}
	struct embed_result *r = &ex->res;
	const char *name = x->rp->cfg->name;
	if (x->is_cancelled || x->has_failed) {
		free(r->vecs);
		*r = (struct embed_result){0};
	}
	brg_error_clear(&r->error);
	if (x->is_cancelled && x->is_closing) {
		brg_fail(&r->error, BRG_E_SHUTTING_DOWN, "%s: server is shutting down", name);
	} else if (x->is_cancelled) {
		brg_fail(&r->error, BRG_E_CANCELLED, "%s: embeddings cancelled", name);
	} else if (x->has_failed) {
		r->error = x->failure;
		log_warn("%s", x->failure.message);
	}
	ex->sink.on_done(ex->sink.ud, r);
	embed_free(x); /* frees vecs unless the receiver kept them */
}

static const struct xfer_ops EMBED_OPS = {embed_end, embed_free};

/* A refusal before any work: the provider's name and the parameter. */
static enum brg_err refuse(struct brg_error *err, const struct remote_provider *rp,
                           const char *param, const char *msg)
{
	brg_fail(err, BRG_E_BAD_REQUEST, "%s: %s", rp->cfg->name, msg);
	brg_error_detail_str(err, "param", param);
	brg_error_detail_str(err, "provider", rp->cfg->name);
	return BRG_E_BAD_REQUEST;
}

enum brg_err remote_embed(void *impl, const struct embed_request *r, struct embed_sink sink,
                          struct brg_error *err)
{
	struct remote_provider *rp = impl;
	bool is_ollama = remote_is_ollama(rp);
	if (r->n_inputs == 0 || r->n_inputs > EMBED_MAX_INPUTS)
		return refuse(err, rp, "input", "an embeddings request takes 1 to 2048 inputs");
	if (is_ollama && r->dimensions > 0)
		return refuse(err, rp, "dimensions",
		              "dimensions is not supported by Ollama's /api/embeddings");
	for (size_t i = 0; is_ollama && i < r->n_inputs; i++)
		if (!r->inputs[i].text)
			return refuse(err, rp, "input",
			              "the ollama provider takes text inputs only");

	struct embed_xfer *ex = calloc(1, sizeof *ex);
	if (!ex)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	buf_init(&ex->answer, MAX_ANSWER_BYTES);
	ex->sink = sink;
	ex->n_inputs = r->n_inputs;
	ex->n_bodies = is_ollama ? r->n_inputs : 1;
	ex->bodies = calloc(ex->n_bodies, sizeof *ex->bodies);
	remote_xfer_init(&ex->x, rp, &EMBED_OPS, r->cancel, "application/json", r->traceparent,
	                 on_body);
	enum brg_err rc = ex->bodies ? BRG_OK : BRG_E_NOMEM;
	for (size_t i = 0; !rc && i < ex->n_bodies; i++)
		rc = is_ollama
		         ? wire_ollama_embed_request(r->inputs[i].text, r->model, &ex->bodies[i])
		         : wire_openai_embed_request(r, r->model, &ex->bodies[i]);
	if (rc) {
		embed_free(&ex->x);
		if (rc == BRG_E_BAD_REQUEST)
			return refuse(err, rp, "input", "an input is not valid UTF-8");
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	}
	remote_xfer_request(&ex->x, is_ollama ? "/api/embeddings" : "/embeddings", ex->bodies[0]);
	struct xfer *x = &ex->x;
	return remote_submit(rp, &x, 1, err);
}
