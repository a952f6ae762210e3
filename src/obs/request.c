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
 */
#include "obs/obs_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"

struct obs_request {
	enum obs_endpoint ep;
	char method[8];
	char path[64];
	char trace_id[33]; /* "" when the request carried no valid traceparent */
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

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool is_zeros(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '0')
			return false;
	return true;
}

/*
 * W3C Trace Context: "version-traceid-parentid-flags", lowercase hex, 2-32-
 * 16-2 digits.  Version ff is invalid, and so are all-zero ids; version 00
 * has nothing after the flags, a later one may (after a '-').  Anything
 * else is ignored, as the spec asks, rather than half-trusted.
 */
static void trace_id_of(const char *h, char out[33])
{
	out[0] = '\0';
	size_t n = h ? strlen(h) : 0;
	if (n < 55 || !is_hex(h, 2) || strncmp(h, "ff", 2) == 0 || h[2] != '-' ||
	    !is_hex(h + 3, 32) || is_zeros(h + 3, 32) || h[35] != '-' || !is_hex(h + 36, 16) ||
	    is_zeros(h + 36, 16) || h[52] != '-' || !is_hex(h + 53, 2))
		return;
	if (strncmp(h, "00", 2) == 0 ? n != 55 : n > 55 && h[55] != '-')
		return;
	memcpy(out, h + 3, 32);
	out[32] = '\0';
}

void obs_request_begin(enum obs_endpoint ep, const char *method, const char *path,
                       const char *traceparent)
{
	cur = (struct obs_request){.ep = ep, .t_start_us = obs_now_us(), .is_active = true};
	snprintf(cur.method, sizeof cur.method, "%s", method ? method : "");
	snprintf(cur.path, sizeof cur.path, "%s", path ? path : "");
	trace_id_of(traceparent, cur.trace_id);
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
	if (s->status == 200 || f->queue_wait_s > 0)
		s->queue_wait_s = f->queue_wait_s > 0 ? f->queue_wait_s : 0;
	if (q->ep == OBS_EMBEDDINGS || s->status != 200)
		return;
	/* A reply with no text at all: its first token was the end-of-text
	 * one, which arrived with the end. */
	long long first = f->t_first_us > 0 ? f->t_first_us : now;
	s->ttft_s = first > q->t_start_us ? (double)(first - q->t_start_us) / 1e6 : 0;
	if (f->max_choice_tokens >= 2 && f->t_first_us > 0)
		s->tpot_s = (double)(now - f->t_first_us) / 1e6 / (f->max_choice_tokens - 1);
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
	if (q->is_heap)
		free(q);
}

void obs_request_end(void)
{
	if (cur.is_active && !cur.is_done)
		obs_request_finish(&cur, NULL);
	cur.is_active = false;
}
