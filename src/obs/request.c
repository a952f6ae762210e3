/*
 * request.c — following one request from api/'s route wrapper to its end
 * (see obs.h): its start, the status its reply was sent with, the W3C
 * trace it belongs to; at its end, what it counts for (metrics.c) and its
 * log line (reqlog.c).
 *
 * The request in progress is thread-local: the connection's thread runs
 * the wrapper, the handler and api/'s reply functions one request at a
 * time, so no lock and no lookup is needed to find it.  A streamed reply
 * outlives the handler; it takes a heap copy along (obs_request_detach).
 *
 * With tracing on (trace.h) a request is also a SERVER span, submitted
 * when it ends; the spans of its queue wait, orchestration steps and
 * provider calls are its descendants through the traceparent its calls
 * carry.
 */
#include "obs/obs_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/str.h"

struct obs_request {
	enum obs_endpoint ep;
	char method[8];
	char path[64];
	char trace_id[TRACE_ID_HEX]; /* "" when it belongs to no trace */
	/* What calls made for it carry (obs_request_traceparent); "" none. */
	char traceparent[TRACE_PARENT_SIZE];
	struct trace_open span;  /* its SERVER span, when is_on */
	long long queue_wait_ns; /* time it waited for admission */
	long long t_start_us;
	int status; /* 0 until a reply is noted */
	bool is_active;
	bool is_done;
	bool is_heap;
};

static _Thread_local struct obs_request cur;
static atomic_ullong n_made_up_ids;

long long obs_now_us(void)
{
	return brg_now_us();
}

/*
 * The request's place in a trace.  A W3C traceparent that does not parse
 * is ignored, as the spec asks, rather than half-trusted (trace_parse).
 * With tracing on the request gets a SERVER span, a child of the incoming
 * context or the root of a new trace, and the calls made for it carry
 * that span's context; with tracing off (or a caller that does not sample
 * the trace) a valid incoming context is passed on unchanged, as W3C asks
 * of a participant that records nothing.
 */
static void join_trace(const char *traceparent)
{
	struct trace_ctx in;
	bool has_in = traceparent && trace_parse(traceparent, &in);
	const struct trace_ctx *c = has_in ? &in : NULL;
	if (trace_open(&cur.span, c))
		c = &cur.span.ctx;
	if (!c)
		return;
	trace_hex(c->trace_id, sizeof c->trace_id, cur.trace_id);
	trace_format(c, cur.traceparent);
}

void obs_request_begin(enum obs_endpoint ep, const char *method, const char *path,
                       const char *traceparent)
{
	cur = (struct obs_request){.ep = ep, .t_start_us = obs_now_us(), .is_active = true};
	str_copy(cur.method, sizeof cur.method, method ? method : "");
	str_copy(cur.path, sizeof cur.path, path ? path : "");
	join_trace(traceparent);
}

bool obs_request_traceparent(char out[TRACE_PARENT_SIZE])
{
	bool has = cur.is_active && cur.traceparent[0];
	memcpy(out, has ? cur.traceparent : "", has ? TRACE_PARENT_SIZE : 1);
	return has;
}

bool obs_request_is_traced(void)
{
	return cur.is_active && cur.span.is_on;
}

/* Called only when a request really waits, so the clock read is cheap
 * next to the wait; the time feeds queue_wait_seconds, traced or not. */
long long obs_queue_wait_begin(void)
{
	return cur.is_active && !cur.is_done ? trace_now_ns() : 0;
}

void obs_queue_wait_end(long long start_ns, enum brg_err outcome)
{
	if (!start_ns || !cur.is_active)
		return;
	long long end_ns = trace_now_ns();
	cur.queue_wait_ns += end_ns - start_ns;
	struct trace_open o;
	if (!cur.span.is_on || !trace_open(&o, &cur.span.ctx))
		return;
	o.start_ns = start_ns;
	struct trace_span s;
	trace_span_init(&s, &o, TRACE_INTERNAL, "queue wait");
	trace_span_str(&s, "brigade.queue.outcome",
	               outcome == BRG_OK ? "admitted" : brg_err_code(outcome));
	if (outcome != BRG_OK && outcome != BRG_E_CANCELLED)
		trace_span_fail(&s, brg_err_code(outcome));
	s.end_ns = end_ns;
	trace_submit(&s);
}

void obs_request_status(int status)
{
	if (cur.is_active && !cur.is_done && !cur.status)
		cur.status = status;
}

struct obs_request *obs_request_detach(void)
{
	if (!cur.is_active || cur.is_done)
		return NULL;
	struct obs_request *q = malloc(sizeof *q);
	if (q) {
		*q = cur;
		q->is_heap = true;
		q->status = q->status ? q->status : 200;
	}
	cur.is_done = true; /* the stream's now, or (out of memory) nobody's */
	return q;
}

/* Resolves q and f into s.  'id' holds a made-up request id if needed. */
static void summarize(const struct obs_request *q, const struct obs_facts *f, struct obs_summary *s,
                      char id[32])
{
	long long now = obs_now_us();
	*s = (struct obs_summary){
	    .ep = q->ep,
	    .model = obs_model_id(f ? f->model_id : NULL),
	    .status = q->status        ? q->status
	              : f && f->status ? f->status
	                               : 499,
	    .method = q->method,
	    .path = q->path,
	    .trace_id = q->trace_id[0] ? q->trace_id : NULL,
	    .duration_s = (double)(now - q->t_start_us) / 1e6,
	    .ttft_s = -1,
	    .tpot_s = -1,
	    .queue_wait_s = -1,
	};
	if (f && f->request_id) {
		s->request_id = f->request_id;
	} else {
		snprintf(id, 32, "req-%llu", atomic_fetch_add(&n_made_up_ids, 1) + 1);
		s->request_id = id;
	}
	if (!f)
		return;
	s->model_name = f->model_id ? f->model_id : f->model;
	s->mode = f->mode;
	s->prompt_tokens = f->prompt_tokens;
	s->completion_tokens = f->completion_tokens;
	/* A request answered 200 certainly got past admission; one that
	 * failed did only if it reports a wait. */
	double waited = f->queue_wait_s > 0 ? f->queue_wait_s : (double)q->queue_wait_ns / 1e9;
	if (s->status == 200 || waited > 0)
		s->queue_wait_s = waited;
	if (q->ep == OBS_EMBEDDINGS || s->status != 200)
		return;
	/* A reply with no text at all: its first token was the end-of-text
	 * one, which arrived with the end. */
	long long first = f->t_first_us > 0 ? f->t_first_us : now;
	s->ttft_s = first > q->t_start_us ? (double)(first - q->t_start_us) / 1e6 : 0;
	if (f->max_choice_tokens >= 2 && f->t_first_us > 0)
		s->tpot_s = (double)(now - f->t_first_us) / 1e6 / (f->max_choice_tokens - 1);
}

/* The request's SERVER span (OpenTelemetry's HTTP and GenAI attribute
 * names where they have one); a 5xx marks it failed, a 4xx does not (the
 * client's doing, as OpenTelemetry's HTTP conventions have it). */
static void server_span(const struct obs_request *q, const struct obs_summary *s,
                        const struct obs_facts *f)
{
	struct trace_span sp;
	char name[sizeof q->method + sizeof q->path]; /* trace_span_init cuts it */
	snprintf(name, sizeof name, "%s %s", q->method, q->path);
	trace_span_init(&sp, &q->span, TRACE_SERVER, name);
	trace_span_str(&sp, "http.request.method", q->method);
	trace_span_str(&sp, "http.route", q->path);
	trace_span_int(&sp, "http.response.status_code", s->status);
	trace_span_str(&sp, "brigade.request_id", s->request_id);
	trace_span_str(&sp, "gen_ai.request.model", s->model_name);
	trace_span_str(&sp, "brigade.mode", s->mode);
	if (f) {
		trace_span_int(&sp, "gen_ai.usage.input_tokens", s->prompt_tokens);
		trace_span_int(&sp, "gen_ai.usage.output_tokens", s->completion_tokens);
	}
	if (q->queue_wait_ns > 0)
		trace_span_int(&sp, "brigade.queue_wait_ms", q->queue_wait_ns / 1000000);
	if (s->status >= 500) {
		char why[32];
		snprintf(why, sizeof why, "HTTP %d", s->status);
		trace_span_fail(&sp, why);
	}
	trace_submit(&sp);
}

void obs_request_finish(struct obs_request *q, const struct obs_facts *f)
{
	if (!q && cur.is_active)
		q = &cur;
	if (!q || q->is_done)
		return;
	q->is_done = true;
	struct obs_summary s;
	char id[32];
	summarize(q, f, &s, id);
	obs_record(&s);
	obs_log_request(&s, f);
	if (q->span.is_on)
		server_span(q, &s, f);
	if (q->is_heap)
		free(q);
}

void obs_request_end(void)
{
	if (cur.is_active && !cur.is_done)
		obs_request_finish(&cur, NULL);
	cur.is_active = false;
}
