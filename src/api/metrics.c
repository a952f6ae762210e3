/*
 * metrics.c — GET /metrics and the wrappers that follow each inference
 * request (see metrics.h; the registry itself is obs/).
 *
 * Requests that http/ refuses before any handler runs (a bad API key, an
 * unknown path, a body over the limit) are not followed: they never reach
 * a wrapper, and their paths would be client text anyway.
 */
#include "api/metrics.h"

#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "core/str.h"

/* The largest exposition: 64 models' histograms fit many times over. */
#define METRICS_MAX ((size_t)8 << 20)

static void keep_id(void *ud, const struct model_info *m)
{
	str_copy(ud, ROUTE_MODEL_MAX, m->id);
}

void api_obs_finish(struct api *a, struct obs_request *q, struct obs_facts *f)
{
	char id[ROUTE_MODEL_MAX];
	if (f->model && !f->model_id && route_model(a->router, f->model, keep_id, id))
		f->model_id = id;
	obs_request_finish(q, f);
}

/* A local model (the only kind with slots): its busy slots and KV now,
 * and its engine's counters. */
static void slots_of(void *ud, const struct model_info *m)
{
	(void)ud;
	if (m->n_slots <= 0)
		return;
	bool is_loaded = strcmp(m->status, "loaded") == 0;
	obs_model_slots(m->id, is_loaded ? m->n_busy_slots : 0, m->n_slots,
	                is_loaded ? m->kv_usage : 0);
	obs_model_engine(m->id, &m->engine);
}

void api_metrics(void *ud, struct http_exchange *x)
{
	struct api *a = ud;
	route_each_model(a->router, slots_of, NULL);
	struct buf b;
	buf_init(&b, METRICS_MAX);
	enum brg_err rc = obs_render(&b);
	if (rc == BRG_OK)
		http_reply(x, 200, OBS_CONTENT_TYPE, b.data ? b.data : "", b.len);
	else
		api_on_http_error(a, x, rc, "cannot render the metrics");
	buf_fini(&b);
}

static void observe(void *ud, struct http_exchange *x, enum obs_endpoint ep, http_handler_fn fn)
{
	obs_request_begin(ep, http_method(x), http_path(x), http_header(x, "traceparent"));
	/* W3C Trace Context Level 2's response header: the client learns
	 * which trace (and which span of ours) its request became. */
	char tp[TRACE_PARENT_SIZE];
	if (obs_request_is_traced() && obs_request_traceparent(tp))
		http_add_header(x, "traceresponse", tp);
	fn(ud, x);
	obs_request_end();
}

void api_chat_completions_observed(void *ud, struct http_exchange *x)
{
	observe(ud, x, OBS_CHAT, api_chat_completions);
}

void api_completions_observed(void *ud, struct http_exchange *x)
{
	observe(ud, x, OBS_COMPLETIONS, api_completions);
}

void api_embeddings_observed(void *ud, struct http_exchange *x)
{
	observe(ud, x, OBS_EMBEDDINGS, api_embeddings);
}
