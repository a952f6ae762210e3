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
 */
#include "provider/remote.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/buf.h"
#include "core/log.h"
#include "provider/sse.h"
#include "provider/wire.h"

#define POLL_ACTIVE_MS  20
#define MAX_EVENT_BYTES ((size_t)1 << 20)
#define MAX_ERROR_BODY  ((size_t)64 << 10)

struct xfer {
	struct remote_provider *rp;
	struct xfer *next;
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	struct sse_parser *parser;
	const atomic_bool *cancel;
	size_t n; /* choices in this transfer */
	struct sink *sinks;
	struct gen_result *res;
	bool *is_finished;
	bool is_cancelled;
	bool has_usage;
	bool has_failed;
	struct brg_error failure; /* valid when has_failed */
	long status;
	bool has_first_byte;
	long long started_ms;
	struct buf err_body;
};

struct remote_provider {
	const struct provider_config *cfg;
	struct provider_ops ops;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	CURLM *multi;
	struct xfer *incoming; /* guarded by mu */
	bool is_closing;       /* guarded by mu */
	bool is_drained;       /* guarded by mu: the thread finished every transfer */
	struct xfer *active;   /* I/O thread only */
};

static bool is_ollama(const struct remote_provider *rp)
{
	return rp->cfg->kind == PROVIDER_OLLAMA;
}

/* Records the transfer's failure; the first one wins. */
static void fail(struct xfer *x, enum brg_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct xfer *x, enum brg_err code, const char *fmt, ...)
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

/* Hands one decoded event to the sinks.  Returns nonzero to stop. */
static int deliver(struct xfer *x, const struct wire_delta *d)
{
	if (d->is_error) {
		fail(x, BRG_E_UPSTREAM, "upstream error: %s", d->error);
		return 1;
	}
	if (d->has_usage) {
		x->has_usage = true;
		x->res[0].n_prompt = d->n_prompt;
		x->res[0].n_completion = d->n_completion;
	}
	if (d->index < 0 || (size_t)d->index >= x->n)
		return 0;
	size_t i = (size_t)d->index;
	if (d->text && d->text_len) {
		if (!x->has_usage)
			x->res[i].n_completion++; /* an estimate until usage arrives */
		if (x->sinks[i].on_piece(x->sinks[i].ud, d->text, d->text_len)) {
			x->is_cancelled = true;
			return 1;
		}
	}
	if (d->has_finish) {
		x->res[i].finish = d->finish;
		x->is_finished[i] = true;
	}
	return 0;
}

static int on_event(void *ud, const char *data, size_t len)
{
	struct xfer *x = ud;
	struct wire_delta d;
	void *holder = NULL;
	if (is_ollama(x->rp)) {
		enum brg_err rc = wire_decode_ollama(data, len, &d, &holder);
		int stop = rc ? 1 : deliver(x, &d);
		if (rc)
			fail(x, BRG_E_UPSTREAM, "malformed event from upstream: %s", d.error);
		wire_holder_free(holder);
		return stop;
	}
	size_t n_choices = 0;
	for (size_t k = 0; k == 0 || k < n_choices; k++) {
		enum brg_err rc = wire_decode_openai(data, len, k, &n_choices, &d, &holder);
		int stop = rc ? 1 : deliver(x, &d);
		if (rc)
			fail(x, BRG_E_UPSTREAM, "malformed event from upstream: %s", d.error);
		wire_holder_free(holder);
		holder = NULL;
		if (stop)
			return 1;
	}
	return 0;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	x->has_first_byte = true;
	if (!x->status)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->status >= 400) {
		/* Keep the start of an error body for its message; drop the rest. */
		size_t room = MAX_ERROR_BODY - x->err_body.len;
		if (buf_append(&x->err_body, p, n < room ? n : room))
			log_debug("%s: error body cut", x->rp->cfg->name);
		return n;
	}
	enum brg_err rc = sse_parser_feed(x->parser, p, n, on_event, x);
	if (rc == BRG_E_TOO_LARGE)
		fail(x, BRG_E_UPSTREAM, "an upstream event exceeds %zu bytes", MAX_EVENT_BYTES);
	else if (rc && rc != BRG_E_CANCELLED)
		fail(x, BRG_E_UPSTREAM, "cannot read the upstream stream");
	return rc ? 0 : n; /* 0 aborts the transfer */
}

static void xfer_free(struct xfer *x)
{
	if (!x)
		return;
	if (x->easy)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x->body);
	sse_parser_free(x->parser);
	buf_fini(&x->err_body);
	free(x->sinks);
	free(x->res);
	free(x->is_finished);
	free(x);
}

/* The upstream's own message from an error body, if it has one. */
static void upstream_message(struct xfer *x, char *out, size_t len)
{
	struct wire_delta d;
	void *holder = NULL;
	const char *body = x->err_body.data ? x->err_body.data : "";
	if (wire_decode_openai(body, x->err_body.len, 0, &(size_t){0}, &d, &holder) == BRG_OK &&
	    d.is_error)
		snprintf(out, len, "%s", d.error);
	else
		snprintf(out, len, "no error message");
	wire_holder_free(holder);
}

/* An HTTP error status from upstream, in our error table's terms. */
static void fail_status(struct xfer *x)
{
	char msg[256];
	upstream_message(x, msg, sizeof msg);
	long s = x->status;
	enum brg_err code = s == 429               ? BRG_E_RATE_LIMITED
	                    : s == 401 || s == 403 ? BRG_E_UPSTREAM_AUTH
	                    : s == 404             ? BRG_E_MODEL_NOT_FOUND
	                    : s == 408 || s == 504 ? BRG_E_UPSTREAM_TIMEOUT
	                    : s >= 400 && s < 500  ? BRG_E_BAD_REQUEST
	                                           : BRG_E_UPSTREAM;
	fail(x, code, "upstream answered HTTP %ld: %s", s, msg);
}

static void fail_curl(struct xfer *x, CURLcode cc)
{
	enum brg_err code =
	    cc == CURLE_OPERATION_TIMEDOUT ? BRG_E_UPSTREAM_TIMEOUT : BRG_E_UPSTREAM;
	fail(x, code, "%s (%s)", curl_easy_strerror(cc), x->rp->cfg->base_url);
}

/* Ends the transfer: every choice gets its on_done, then it is freed. */
static void xfer_end(struct xfer *x, CURLcode cc)
{
	bool is_cut = false;
	if (!x->is_cancelled && !x->has_failed) {
		if (x->status >= 400)
			fail_status(x);
		else if (cc != CURLE_OK)
			fail_curl(x, cc);
		else if (sse_parser_finish(x->parser, on_event, x) != BRG_OK)
			fail(x, BRG_E_UPSTREAM, "the upstream stream ended mid-event");
	}
	for (size_t i = 0; i < x->n; i++)
		is_cut |= !x->is_finished[i];
	if (!x->is_cancelled && !x->has_failed && is_cut)
		fail(x, BRG_E_UPSTREAM, "the upstream stream ended before the answer was complete");
	for (size_t i = 0; i < x->n; i++) {
		struct gen_result *r = &x->res[i];
		if (x->is_cancelled) {
			r->finish = GEN_FINISH_CANCELLED;
		} else if (x->has_failed) {
			r->finish = GEN_FINISH_ERROR;
			r->error = x->failure;
		}
		x->sinks[i].on_done(x->sinks[i].ud, r);
	}
	if (x->has_failed)
		log_warn("%s", x->failure.message);
	xfer_free(x);
}

static void detach(struct remote_provider *rp, struct xfer *x)
{
	for (struct xfer **pp = &rp->active; *pp; pp = &(*pp)->next)
		if (*pp == x) {
			*pp = x->next;
			break;
		}
	curl_multi_remove_handle(rp->multi, x->easy);
}

/* Cancelled or past the first-byte deadline: end it now.  Removing the
 * handle mid-transfer closes the upstream connection at once, which is how
 * a client's disconnect reaches the upstream. */
static void check_deadlines(struct remote_provider *rp, bool is_closing)
{
	long long now = brg_now_ms();
	struct xfer *next;
	for (struct xfer *x = rp->active; x; x = next) {
		next = x->next;
		bool is_late =
		    !x->has_first_byte && now - x->started_ms > rp->cfg->first_byte_timeout_ms;
		if (!is_closing && !is_late && !(x->cancel && atomic_load(x->cancel)))
			continue;
		if (is_late && !is_closing)
			fail(x, BRG_E_UPSTREAM_TIMEOUT, "no answer within %d ms",
			     rp->cfg->first_byte_timeout_ms);
		else
			x->is_cancelled = true;
		detach(rp, x);
		xfer_end(x, CURLE_OK);
	}
}

static void reap(struct remote_provider *rp)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(rp->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct xfer *x = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		CURLcode cc = msg->data.result;
		detach(rp, x);
		xfer_end(x, cc);
	}
}

static void *io_main(void *arg)
{
	struct remote_provider *rp = arg;
	for (;;) {
		pthread_mutex_lock(&rp->mu);
		struct xfer *in = rp->incoming;
		rp->incoming = NULL;
		bool is_closing = rp->is_closing;
		pthread_mutex_unlock(&rp->mu);
		while (in) {
			struct xfer *x = in;
			in = in->next;
			x->next = rp->active;
			rp->active = x;
			x->started_ms = brg_now_ms();
			curl_multi_add_handle(rp->multi, x->easy);
		}
		int running = 0;
		curl_multi_perform(rp->multi, &running);
		reap(rp);
		check_deadlines(rp, is_closing);
		if (is_closing)
			break;
		curl_multi_poll(rp->multi, NULL, 0, rp->active ? POLL_ACTIVE_MS : 60000, NULL);
	}
	pthread_mutex_lock(&rp->mu);
	rp->is_drained = true;
	pthread_cond_broadcast(&rp->cv);
	pthread_mutex_unlock(&rp->mu);
	return NULL;
}

static struct curl_slist *make_headers(const struct remote_provider *rp)
{
	const struct provider_config *c = rp->cfg;
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	h = curl_slist_append(h, is_ollama(rp) ? "Accept: application/x-ndjson"
	                                       : "Accept: text/event-stream");
	/* "Expect: 100-continue" would cost a round trip on every request. */
	h = curl_slist_append(h, "Expect:");
	if (c->api_key) {
		char auth[1024];
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->api_key);
		h = curl_slist_append(h, auth);
	}
	for (size_t i = 0; i < c->n_headers; i++)
		h = curl_slist_append(h, c->headers[i]);
	return h;
}

static struct xfer *xfer_new(struct remote_provider *rp, const struct gen_request *r,
                             const char *body_json, struct sink *sinks, size_t n)
{
	struct xfer *x = calloc(1, sizeof *x);
	if (!x)
		return NULL;
	x->rp = rp;
	x->n = n;
	x->cancel = r->cancel;
	x->body = strdup(body_json);
	x->sinks = malloc(n * sizeof *x->sinks);
	x->res = calloc(n, sizeof *x->res);
	x->is_finished = calloc(n, sizeof *x->is_finished);
	x->parser = sse_parser_new(MAX_EVENT_BYTES, is_ollama(rp));
	x->easy = curl_easy_init();
	x->headers = make_headers(rp);
	buf_init(&x->err_body, MAX_ERROR_BODY);
	if (!x->body || !x->sinks || !x->res || !x->is_finished || !x->parser || !x->easy ||
	    !x->headers) {
		xfer_free(x);
		return NULL;
	}
	memcpy(x->sinks, sinks, n * sizeof *sinks);
	char url[2048];
	const char *path = is_ollama(rp) ? (r->msgs ? "/api/chat" : "/api/generate")
	                                 : (r->msgs ? "/chat/completions" : "/completions");
	snprintf(url, sizeof url, "%s%s", rp->cfg->base_url, path);
	CURL *e = x->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)rp->cfg->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)rp->cfg->request_timeout_s);
	return x;
}

/* Queues built transfers, or frees them all when the provider is closing. */
static enum brg_err submit(struct remote_provider *rp, struct xfer **xs, size_t n,
                           struct brg_error *err)
{
	pthread_mutex_lock(&rp->mu);
	bool is_closing = rp->is_closing;
	for (size_t i = 0; !is_closing && i < n; i++) {
		xs[i]->next = rp->incoming;
		rp->incoming = xs[i];
	}
	pthread_mutex_unlock(&rp->mu);
	if (is_closing) {
		for (size_t i = 0; i < n; i++)
			xfer_free(xs[i]);
		return brg_fail(err, BRG_E_SHUTTING_DOWN, "server is shutting down");
	}
	curl_multi_wakeup(rp->multi);
	return BRG_OK;
}

/* Ollama has no 'n': one request per choice, each with its own seed. */
static enum brg_err rp_generate(void *impl, const struct gen_request *r, struct sink *sinks,
                                struct brg_error *err)
{
	struct remote_provider *rp = impl;
	size_t n_xfers = is_ollama(rp) ? r->n_choices : 1;
	struct xfer *xs[64];
	if (n_xfers > sizeof xs / sizeof xs[0])
		return brg_fail(err, BRG_E_BAD_REQUEST, "too many choices for %s", rp->cfg->name);
	for (size_t i = 0; i < n_xfers; i++) {
		struct gen_request one = *r;
		char *body = NULL;
		if (is_ollama(rp) && one.params.has_seed)
			one.params.seed += (uint32_t)i;
		enum brg_err rc = is_ollama(rp) ? wire_ollama_request(&one, r->model, &body)
		                                : wire_openai_request(&one, r->model, &body);
		xs[i] = rc ? NULL
		           : xfer_new(rp, &one, body, sinks + (is_ollama(rp) ? i : 0),
		                      is_ollama(rp) ? 1 : r->n_choices);
		free(body);
		if (!xs[i]) {
			for (size_t k = 0; k < i; k++)
				xfer_free(xs[k]);
			return brg_fail(err, BRG_E_NOMEM, "out of memory");
		}
	}
	return submit(rp, xs, n_xfers, err);
}

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
	snprintf(id, sizeof id, "%s:%s", rp->cfg->name, model);
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
	struct curl_slist *h = make_headers(rp);
	if (!e || !h) {
		curl_easy_cleanup(e);
		curl_slist_free_all(h);
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	}
	char url[2048];
	snprintf(url, sizeof url, "%s%s", rp->cfg->base_url,
	         is_ollama(rp) ? "/api/tags" : "/models");
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
	curl_slist_free_all(h);
	if (cc != CURLE_OK)
		return brg_fail(err, BRG_E_UPSTREAM, "%s: %s (%s)", rp->cfg->name,
		                curl_easy_strerror(cc), rp->cfg->base_url);
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
	    .each_model = rp_each_model,
	    .model = rp_model,
	    .load = rp_load,
	    .unload = rp_load,
	    .check_health = rp_check_health,
	    .readiness = rp_readiness,
	};
	rp->multi = curl_multi_init();
	pthread_mutex_init(&rp->mu, NULL);
	pthread_cond_init(&rp->cv, NULL);
	if (!rp->multi || pthread_create(&rp->thread, NULL, io_main, rp) != 0) {
		if (rp->multi)
			curl_multi_cleanup(rp->multi);
		pthread_cond_destroy(&rp->cv);
		pthread_mutex_destroy(&rp->mu);
		free(rp);
		return NULL;
	}
	return rp;
}

void remote_provider_close(struct remote_provider *rp)
{
	pthread_mutex_lock(&rp->mu);
	rp->is_closing = true;
	pthread_mutex_unlock(&rp->mu);
	curl_multi_wakeup(rp->multi);
	pthread_mutex_lock(&rp->mu);
	while (!rp->is_drained)
		pthread_cond_wait(&rp->cv, &rp->mu);
	pthread_mutex_unlock(&rp->mu);
}

void remote_provider_free(struct remote_provider *rp)
{
	if (!rp)
		return;
	remote_provider_close(rp);
	pthread_join(rp->thread, NULL);
	curl_multi_cleanup(rp->multi);
	pthread_cond_destroy(&rp->cv);
	pthread_mutex_destroy(&rp->mu);
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
