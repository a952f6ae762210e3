/*
 * remote.c — see remote.h.
 *
 * One I/O thread per remote provider drives a libcurl multi handle.
 * generate() builds the upstream request on the caller's thread, queues it
 * and wakes the I/O thread (curl_multi_wakeup); everything after that —
 * bytes in, SSE/NDJSON framing (sse.c), event decoding (wire.c), sink
 * calls, the end of the transfer — happens on the I/O thread, so a
 * transfer's state needs no lock.  While transfers are active the thread
 * polls every 20 ms to notice cancel flags and first-byte timeouts; idle,
 * it sleeps until woken.
 *
 * An OpenAI-compatible upstream carries all n choices in one request (the
 * chunks say which choice they belong to); Ollama has no 'n', so each
 * choice is its own request with seed + i.
 *
 * Embeddings (remote_embed.c) ride the same thread and loop: the loop
 * knows only struct xfer (remote_int.h) and ends each transfer through its
 * ops, so this file holds the loop, the common transfer set-up and error
 * mapping, and the streamed generations.
 */
#include "provider/remote.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/buf.h"
#include "core/log.h"
#include "provider/remote_int.h"
#include "provider/sse.h"
#include "provider/wire.h"
#include "core/str.h"

#define MAX_EVENT_BYTES   ((size_t)1 << 20)
#define MAX_RETRY_AFTER_S 3600

/* A streamed generation: one request carrying 'n' choices. */
struct gen_xfer {
	struct xfer x;
	char *body;
	struct sse_parser *parser;
	size_t n; /* choices in this transfer */
	struct sink *sinks;
	struct gen_result *res;
	bool *is_finished;
	bool has_usage;
	bool want_logprobs; /* the request asked for them: sum what arrives */
};

static struct gen_xfer *gen_of(struct xfer *x)
{
	return (struct gen_xfer *)((char *)x - offsetof(struct gen_xfer, x));
}

bool remote_is_ollama(const struct remote_provider *rp)
{
	return rp->cfg->kind == PROVIDER_OLLAMA;
}

/* base_url for messages and logs: without any "user:password@", which
 * would be a credential. */
static void url_for_humans(const char *url, char *out, size_t len)
{
	const char *host = strstr(url, "://");
	host = host ? host + 3 : url;
	const char *at = strchr(host, '@');
	const char *slash = strchr(host, '/');
	if (at && (!slash || at < slash))
		snprintf(out, len, "%.*s%s", (int)(host - url), url, at + 1);
	else
		str_copy(out, len, url);
}

void remote_xfer_fail(struct xfer *x, enum brg_err code, const char *fmt, ...)
{
	if (x->has_failed)
		return;
	x->has_failed = true;
	va_list ap;
	va_start(ap, fmt);
	char msg[BRG_ERR_MSG_MAX];
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* brg_fail trims a character cut by truncation. */
	brg_error_clear(&x->failure);
	brg_fail(&x->failure, code, "%s: %s", x->rp->cfg->name, msg);
	brg_error_detail_str(&x->failure, "provider", x->rp->cfg->name);
	if (x->status)
		brg_error_detail_int(&x->failure, "upstream_status", x->status);
}

/* ---- the common transfer ------------------------------------------------ */

static struct curl_slist *make_headers(const struct remote_provider *rp, const char *accept,
                                       const char *traceparent)
{
	const struct provider_config *c = rp->cfg;
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	char line[128];
	snprintf(line, sizeof line, "Accept: %s", accept);
	h = curl_slist_append(h, line);
	/* "Expect: 100-continue" would cost a round trip on every request. */
	h = curl_slist_append(h, "Expect:");
	if (c->api_key) {
		char auth[1024];
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->api_key);
		h = curl_slist_append(h, auth);
	}
	for (size_t i = 0; i < c->n_headers; i++)
		h = curl_slist_append(h, c->headers[i]);
	if (traceparent && strlen(traceparent) < 64) {
		snprintf(line, sizeof line, "traceparent: %s", traceparent);
		h = curl_slist_append(h, line);
	}
	return h;
}

/* The index of 'accept' in REMOTE_ACCEPTS; -1 when it is not there. */
static int accept_index(const char *accept)
{
	static const char *const accepts[] = REMOTE_ACCEPTS;
	for (int i = 0; i < (int)(sizeof accepts / sizeof accepts[0]); i++)
		if (strcmp(accept, accepts[i]) == 0)
			return i;
	return -1;
}

/* The provider's prebuilt headers for 'accept'; NULL when it has none. */
static struct curl_slist *shared_headers(const struct remote_provider *rp, const char *accept)
{
	int i = accept_index(accept);
	return i < 0 ? NULL : rp->headers[i];
}

void remote_xfer_init(struct xfer *x, struct remote_provider *rp, const struct xfer_ops *ops,
                      const atomic_bool *cancel, const char *accept, const char *traceparent,
                      curl_write_callback write)
{
	int i = accept_index(accept);
	x->ops = ops;
	x->rp = rp;
	x->cancel = cancel;
	x->write = write;
	x->retry_after_s = -1;
	x->accept = i < 0 ? 2 : i; /* every caller passes one of them */
	x->traceparent[0] = '\0';
	if (traceparent && strlen(traceparent) < sizeof x->traceparent)
		strcpy(x->traceparent, traceparent);
	buf_init(&x->err_body, REMOTE_MAX_ERROR_BODY);
}

void remote_xfer_request(struct xfer *x, const char *path, const char *body)
{
	x->path = path;
	x->body = body;
}

enum brg_err remote_xfer_use_curl(struct xfer *x)
{
	static const char *const accepts[] = REMOTE_ACCEPTS;
	const struct remote_provider *rp = x->rp;
	x->easy = remote_loop_easy();
	x->headers = x->traceparent[0] ? NULL : rp->headers[x->accept];
	if (!x->headers) {
		x->headers =
		    make_headers(rp, accepts[x->accept], x->traceparent[0] ? x->traceparent : NULL);
		x->owns_headers = true;
	}
	if (!x->easy || !x->headers)
		return BRG_E_NOMEM;
	CURL *e = x->easy;
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, x->write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)rp->cfg->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)rp->cfg->request_timeout_s);
	return BRG_OK;
}

void remote_xfer_curl_request(struct xfer *x)
{
	char url[2048];
	snprintf(url, sizeof url, "%s%s", x->rp->cfg->base_url, x->path);
	curl_easy_setopt(x->easy, CURLOPT_URL, url);
	curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
}

void remote_xfer_fini(struct xfer *x)
{
	if (x->easy)
		remote_loop_easy_done(x->easy);
	if (x->owns_headers)
		curl_slist_free_all(x->headers);
	remote_h1_free(x);
	buf_fini(&x->err_body);
}

bool remote_xfer_error_body(struct xfer *x, const char *p, size_t n)
{
	x->has_first_byte = true;
	if (remote_xfer_status(x) < 400)
		return false;
	/* Keep the start of an error body for its message; drop the rest. */
	size_t room = REMOTE_MAX_ERROR_BODY - x->err_body.len;
	if (buf_append(&x->err_body, p, n < room ? n : room))
		log_debug("%s: error body cut", x->rp->cfg->name);
	return true;
}

long remote_xfer_status(struct xfer *x)
{
	if (!x->status && x->easy)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	return x->status;
}

/* The upstream's own message from an error body, if it has one. */
static void upstream_message(const struct xfer *x, char *out, size_t len)
{
	struct wire_delta d;
	void *holder = NULL;
	const char *body = x->err_body.data ? x->err_body.data : "";
	if (wire_decode_openai(body, x->err_body.len, 0, &(size_t){0}, &d, &holder) == BRG_OK &&
	    d.is_error)
		str_copy(out, len, d.error);
	else
		snprintf(out, len, "no error message");
	wire_holder_free(holder);
}

void remote_xfer_fail_status(struct xfer *x, enum brg_err not_found, const char *what)
{
	char msg[256];
	upstream_message(x, msg, sizeof msg);
	long s = remote_xfer_status(x);
	enum brg_err code = s == 429               ? BRG_E_RATE_LIMITED
	                    : s == 401 || s == 403 ? BRG_E_UPSTREAM_AUTH
	                    : s == 404             ? not_found
	                    : s == 408 || s == 504 ? BRG_E_UPSTREAM_TIMEOUT
	                    : s >= 400 && s < 500  ? BRG_E_BAD_REQUEST
	                                           : BRG_E_UPSTREAM;
	if (s == 404 && what)
		remote_xfer_fail(x, code, "%s (HTTP 404): %s", what, msg);
	else
		remote_xfer_fail(x, code, "upstream answered HTTP %ld: %s", s, msg);
	/* Pass the upstream's Retry-After on to our client (seconds only;
	 * both clients read both forms of the header). */
	curl_off_t secs = x->retry_after_s;
	if (x->easy && curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &secs) != CURLE_OK)
		secs = 0;
	if (brg_err_is_retriable(code) && secs > 0)
		x->failure.retry_after_ms =
		    (int)(secs < MAX_RETRY_AFTER_S ? secs : MAX_RETRY_AFTER_S) * 1000;
}

void remote_xfer_fail_curl(struct xfer *x, CURLcode cc)
{
	enum brg_err code =
	    cc == CURLE_OPERATION_TIMEDOUT ? BRG_E_UPSTREAM_TIMEOUT : BRG_E_UPSTREAM;
	char url[1024];
	url_for_humans(x->rp->cfg->base_url, url, sizeof url);
	remote_xfer_fail(x, code, "%s (%s)", curl_easy_strerror(cc), url);
}

/* ---- streamed generations ------------------------------------------------ */

/* Hands one decoded event to the sinks.  Returns nonzero to stop. */
static int deliver(struct gen_xfer *g, const struct wire_delta *d)
{
	if (d->is_error) {
		remote_xfer_fail(&g->x, BRG_E_UPSTREAM, "upstream error: %s", d->error);
		return 1;
	}
	if (d->has_usage) {
		g->has_usage = true;
		g->res[0].n_prompt = d->n_prompt;
		g->res[0].n_completion = d->n_completion;
	}
	if (d->index < 0 || (size_t)d->index >= g->n)
		return 0;
	size_t i = (size_t)d->index;
	if (d->text && d->text_len) {
		if (!g->has_usage)
			g->res[i].n_completion++; /* an estimate until usage arrives */
		if (g->sinks[i].on_piece(g->sinks[i].ud, d->text, d->text_len)) {
			g->x.is_cancelled = true;
			return 1;
		}
	}
	if (g->want_logprobs && d->n_logprobs > 0 &&
	    g->res[i].n_logprobs <= INT_MAX - d->n_logprobs) {
		g->res[i].logprob_sum += d->logprob_sum;
		g->res[i].n_logprobs += d->n_logprobs;
	}
	if (d->has_finish) {
		g->res[i].finish = d->finish;
		g->is_finished[i] = true;
	}
	return 0;
}

static int on_event(void *ud, const char *data, size_t len)
{
	struct gen_xfer *g = ud;
	struct wire_delta d;
	void *holder = NULL;
	if (remote_is_ollama(g->x.rp)) {
		enum brg_err rc = wire_decode_ollama(data, len, &d, &holder);
		int stop = rc ? 1 : deliver(g, &d);
		if (rc)
			remote_xfer_fail(&g->x, BRG_E_UPSTREAM, "malformed event from upstream: %s",
			                 d.error);
		wire_holder_free(holder);
		return stop;
	}
	size_t n_choices = 0;
	char scratch[4096];
	if (wire_decode_openai_fast(data, len, &n_choices, &d, scratch, sizeof scratch))
		return deliver(g, &d);
	for (size_t k = 0; k == 0 || k < n_choices; k++) {
		enum brg_err rc = wire_decode_openai(data, len, k, &n_choices, &d, &holder);
		int stop = rc ? 1 : deliver(g, &d);
		if (rc)
			remote_xfer_fail(&g->x, BRG_E_UPSTREAM, "malformed event from upstream: %s",
			                 d.error);
		wire_holder_free(holder);
		holder = NULL;
		if (stop)
			return 1;
	}
	return 0;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
	struct gen_xfer *g = gen_of(ud);
	size_t n = size * nmemb;
	if (remote_xfer_error_body(&g->x, p, n))
		return n;
	enum brg_err rc = sse_parser_feed(g->parser, p, n, on_event, g);
	if (rc == BRG_E_TOO_LARGE)
		remote_xfer_fail(&g->x, BRG_E_UPSTREAM, "an upstream event exceeds %zu bytes",
		                 MAX_EVENT_BYTES);
	else if (rc && rc != BRG_E_CANCELLED)
		remote_xfer_fail(&g->x, BRG_E_UPSTREAM, "cannot read the upstream stream");
	return rc ? 0 : n; /* 0 aborts the transfer */
}

static void gen_free(struct xfer *x)
{
	if (!x)
		return;
	struct gen_xfer *g = gen_of(x);
	remote_xfer_fini(&g->x);
	free(g->body);
	sse_parser_free(g->parser);
	free(g->sinks);
	free(g->res);
	free(g->is_finished);
	free(g);
}

/* Ends the transfer: every choice gets its on_done, then it is freed. */
static void gen_end(struct xfer *x, CURLcode cc)
{
	struct gen_xfer *g = gen_of(x);
	bool is_cut = false;
	if (!x->is_cancelled && !x->has_failed) {
		if (remote_xfer_status(x) >= 400)
			remote_xfer_fail_status(x, BRG_E_MODEL_NOT_FOUND, NULL);
		else if (cc != CURLE_OK)
			remote_xfer_fail_curl(x, cc);
		else if (sse_parser_finish(g->parser, on_event, g) != BRG_OK)
			remote_xfer_fail(x, BRG_E_UPSTREAM, "the upstream stream ended mid-event");
	}
	for (size_t i = 0; i < g->n; i++)
		is_cut |= !g->is_finished[i];
	if (!x->is_cancelled && !x->has_failed && is_cut)
		remote_xfer_fail(x, BRG_E_UPSTREAM,
		                 "the upstream stream ended before the answer was complete");
	for (size_t i = 0; i < g->n; i++) {
		struct gen_result *r = &g->res[i];
		if (x->is_cancelled) {
			r->finish = GEN_FINISH_CANCELLED;
		} else if (x->has_failed) {
			r->finish = GEN_FINISH_ERROR;
			r->error = x->failure;
		}
		g->sinks[i].on_done(g->sinks[i].ud, r);
	}
	if (x->has_failed)
		log_warn("%s", x->failure.message);
	gen_free(x);
}

static const struct xfer_ops GEN_OPS = {gen_end, gen_free};

static struct xfer *gen_new(struct remote_provider *rp, const struct gen_request *r,
                            const char *body_json, struct sink *sinks, size_t n)
{
	struct gen_xfer *g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	bool is_ollama = remote_is_ollama(rp);
	remote_xfer_init(&g->x, rp, &GEN_OPS, r->cancel,
	                 is_ollama ? "application/x-ndjson" : "text/event-stream", r->traceparent,
	                 on_write);
	g->n = n;
	g->want_logprobs = r->params.want_logprobs && !is_ollama; /* Ollama sends none */
	g->body = strdup(body_json);
	g->sinks = malloc(n * sizeof *g->sinks);
	g->res = calloc(n, sizeof *g->res);
	g->is_finished = calloc(n, sizeof *g->is_finished);
	g->parser = sse_parser_new(MAX_EVENT_BYTES, is_ollama);
	if (!g->body || !g->sinks || !g->res || !g->is_finished || !g->parser) {
		gen_free(&g->x);
		return NULL;
	}
	memcpy(g->sinks, sinks, n * sizeof *sinks);
	const char *path = is_ollama ? (r->msgs ? "/api/chat" : "/api/generate")
	                             : (r->msgs ? "/chat/completions" : "/completions");
	remote_xfer_request(&g->x, path, g->body);
	return &g->x;
}

/* Ollama has no 'n': one request per choice, each with its own seed. */
static enum brg_err rp_generate(void *impl, const struct gen_request *r, struct sink *sinks,
                                struct brg_error *err)
{
	struct remote_provider *rp = impl;
	bool is_ollama = remote_is_ollama(rp);
	size_t n_xfers = is_ollama ? r->n_choices : 1;
	struct xfer *xs[64];
	if (n_xfers > sizeof xs / sizeof xs[0])
		return brg_fail(err, BRG_E_BAD_REQUEST, "too many choices for %s", rp->cfg->name);
	for (size_t i = 0; i < n_xfers; i++) {
		struct gen_request one = *r;
		char *body = NULL;
		if (is_ollama && one.params.has_seed)
			one.params.seed += (uint32_t)i;
		enum brg_err rc = is_ollama ? wire_ollama_request(&one, r->model, &body)
		                            : wire_openai_request(&one, r->model, &body);
		xs[i] = rc ? NULL
		           : gen_new(rp, &one, body, sinks + (is_ollama ? i : 0),
		                     is_ollama ? 1 : r->n_choices);
		free(body);
		if (!xs[i]) {
			for (size_t k = 0; k < i; k++)
				gen_free(xs[k]);
			return brg_fail(err, BRG_E_NOMEM, "out of memory");
		}
	}
	return remote_submit(rp, xs, n_xfers, err);
}

/* ---- the provider -------------------------------------------------------- */

static bool rp_has_model(void *impl, const char *id)
{
	const struct provider_config *c = ((struct remote_provider *)impl)->cfg;
	for (size_t i = 0; i < c->n_models; i++)
		if (strcmp(c->models[i], id) == 0)
			return true;
	return false;
}

static void info_of(const struct remote_provider *rp, const char *model, model_info_fn fn, void *ud)
{
	char id[512];
	str_copy(id, sizeof id, rp->cfg->name);
	str_append(id, sizeof id, ":");
	str_append(id, sizeof id, model);
	struct model_info mi = {.id = id, .status = "remote", .owned_by = rp->cfg->name};
	fn(ud, &mi);
}

static void rp_each_model(void *impl, model_info_fn fn, void *ud)
{
	struct remote_provider *rp = impl;
	for (size_t i = 0; i < rp->cfg->n_models; i++)
		info_of(rp, rp->cfg->models[i], fn, ud);
}

static bool rp_model(void *impl, const char *id, model_info_fn fn, void *ud)
{
	info_of(impl, id, fn, ud); /* an open catalogue: every name is forwarded */
	return true;
}

static enum brg_err rp_load(void *impl, const char *id, struct brg_error *err)
{
	struct remote_provider *rp = impl;
	return brg_fail(err, BRG_E_BAD_REQUEST,
	                "'%s:%s' is served by a remote provider, which loads its own models",
	                rp->cfg->name, id);
}

static size_t discard(char *p, size_t size, size_t nmemb, void *ud)
{
	(void)p;
	(void)ud;
	return size * nmemb;
}

/* GET the models endpoint: reachable and answering 2xx means healthy.
 * Runs on the health thread with its own easy handle. */
static enum brg_err rp_check_health(void *impl, int timeout_ms, long long *latency_ms,
                                    struct brg_error *err)
{
	struct remote_provider *rp = impl;
	CURL *e = curl_easy_init();
	struct curl_slist *own = NULL, *h = shared_headers(rp, "application/json");
	if (!h)
		h = own = make_headers(rp, "application/json", NULL);
	if (!e || !h) {
		curl_easy_cleanup(e);
		curl_slist_free_all(own);
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	}
	char url[2048];
	snprintf(url, sizeof url, "%s%s", rp->cfg->base_url,
	         remote_is_ollama(rp) ? "/api/tags" : "/models");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	long long t0 = brg_now_ms();
	CURLcode cc = curl_easy_perform(e);
	*latency_ms = brg_now_ms() - t0;
	long status = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(e);
	curl_slist_free_all(own);
	char human[1024];
	url_for_humans(rp->cfg->base_url, human, sizeof human);
	if (cc != CURLE_OK)
		return brg_fail(err, BRG_E_UPSTREAM, "%s: %s (%s)", rp->cfg->name,
		                curl_easy_strerror(cc), human);
	if (status < 200 || status >= 300)
		return brg_fail(err, BRG_E_UPSTREAM, "%s: health check answered HTTP %ld",
		                rp->cfg->name, status);
	return BRG_OK;
}

static void rp_readiness(void *impl, size_t *n_loaded, size_t *n_done, size_t *n_total)
{
	(void)impl;
	*n_loaded = *n_done = *n_total = 0;
}

struct provider remote_provider_get(struct remote_provider *rp)
{
	struct provider p = {&rp->ops, rp};
	return p;
}

static void free_headers(struct remote_provider *rp)
{
	for (size_t i = 0; i < sizeof rp->headers / sizeof rp->headers[0]; i++)
		curl_slist_free_all(rp->headers[i]);
}

struct remote_provider *remote_provider_new(const struct provider_config *cfg)
{
	struct remote_provider *rp = calloc(1, sizeof *rp);
	if (!rp)
		return NULL;
	rp->cfg = cfg;
	rp->ops = (struct provider_ops){
	    .name = cfg->name,
	    .is_open_catalog = true,
	    .has_model = rp_has_model,
	    .generate = rp_generate,
	    .embed = remote_embed,
	    .each_model = rp_each_model,
	    .model = rp_model,
	    .load = rp_load,
	    .unload = rp_load,
	    .check_health = rp_check_health,
	    .readiness = rp_readiness,
	};
	static const char *const accepts[] = REMOTE_ACCEPTS;
	for (size_t i = 0; i < sizeof accepts / sizeof accepts[0]; i++)
		rp->headers[i] = make_headers(rp, accepts[i], NULL); /* NULL: made per transfer */
	rp->h1 = cfg->http_client == 0 ? remote_h1_target_new(cfg, rp->headers) : NULL;
	if (remote_loop_start(rp)) {
		remote_h1_target_free(rp->h1);
		free_headers(rp);
		free(rp);
		return NULL;
	}
	return rp;
}

void remote_provider_close(struct remote_provider *rp)
{
	remote_loop_close(rp);
}

void remote_provider_free(struct remote_provider *rp)
{
	if (!rp)
		return;
	remote_loop_free(rp);
	remote_h1_target_free(rp->h1);
	free_headers(rp);
	free(rp);
}

enum brg_err remote_global_init(struct brg_error *err)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return brg_fail(err, BRG_E_INTERNAL, "libcurl failed to initialise");
	return BRG_OK;
}

void remote_global_cleanup(void)
{
	curl_global_cleanup();
}
