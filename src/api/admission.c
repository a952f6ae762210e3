/*
 * admission.c — api/'s side of admission control (admit/admit.h;
 * docs/admission.md): which class a request counts under, the wait for
 * its turn next to the client's socket, the spec's 504 for a deadline,
 * and the "admission" object of GET /v1/health/inference.
 *
 * The deadline is end to end: INFERENCE_REQUEST_TIMEOUT from the moment
 * the handler got the request, across the queue and the generation.  A
 * 504 says in which phase it ran out, so a client (or an operator reading
 * logs) can tell a server that is too busy from a model that is too slow.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "obs/obs.h"

enum brg_err api_fail_timeout(struct brg_error *err, int timeout_s, const char *phase)
{
	brg_fail(err, BRG_E_TIMEOUT,
	         "request took longer than %d s (INFERENCE_REQUEST_TIMEOUT) while %s", timeout_s,
	         phase);
	brg_error_detail_str(err, "phase", phase);
	brg_error_detail_int(err, "timeout_s", timeout_s);
	return BRG_E_TIMEOUT;
}

enum brg_err api_fail_interrupted(struct api *a, struct brg_error *err)
{
	struct admit_stats s = {0};
	if (a->admit)
		admit_get_stats(a->admit, &s);
	if (s.is_closed) /* the grace period ended: the engine cancelled it */
		return brg_fail(err, BRG_E_SHUTTING_DOWN,
		                "the server shut down before this request could finish");
	return brg_fail(err, BRG_E_INTERNAL, "generation was interrupted");
}

static void keep_slots(void *ud, const struct model_info *m)
{
	*(int *)ud = m->n_slots;
}

/* The class of a request answered by one model: "provider:model". */
static void class_key(const struct route_target *t, char *key, size_t len)
{
	str_copy(key, len, t->p.ops->name);
	str_append(key, len, ":");
	str_append(key, len, t->model);
}

int api_route_load(void *ud, const struct route_target *t)
{
	struct api *a = ud;
	char key[ROUTE_MODEL_MAX + 32];
	class_key(t, key, sizeof key);
	return a->admit ? admit_model_load(a->admit, key) : 0;
}

/* A request answered by one model counts in its class, limited by the
 * model's slots when it has any (a local model). */
static void want_target(const struct route_target *t, char *key, size_t len, struct admit_want *w)
{
	class_key(t, key, len);
	w->model = key;
	w->n_slots = 0;
	if (t->p.ops->model)
		t->p.ops->model(t->p.impl, t->model, keep_slots, &w->n_slots);
}

/* Sleeps until the ticket's turn, the deadline, or the client leaving. */
static enum brg_err wait_turn(struct api *a, struct http_exchange *x, struct admit_ticket *t,
                              long long deadline_ms, struct brg_error *err)
{
	for (;;) {
		enum admit_state s = admit_poll(a->admit, t);
		if (s == ADMIT_RUNNING)
			return BRG_OK;
		if (s == ADMIT_REFUSED) {
			admit_leave(a->admit, t);
			return brg_fail(err, BRG_E_SHUTTING_DOWN,
			                "the server shut down before this request's turn came");
		}
		long long left = deadline_ms - brg_now_ms();
		enum http_wait_result w =
		    left > 0 ? http_wait(x, admit_ticket_fd(t), (int)left) : HTTP_WAIT_TIMEOUT;
		if (w == HTTP_WAIT_READY)
			continue;
		admit_leave(a->admit, t);
		if (w == HTTP_WAIT_GONE) {
			log_info("client went away while its request was queued");
			return brg_fail(err, BRG_E_CANCELLED, "the client went away while queued");
		}
		return api_fail_timeout(err, a->opts.request_timeout_s, "queued");
	}
}

enum brg_err api_admit(struct api *a, struct http_exchange *x, const struct admit_want *w,
                       long long deadline_ms, struct admit_ticket *t, struct brg_error *err)
{
	admit_ticket_init(t);
	if (!a->admit)
		return BRG_OK;
	enum brg_err rc = admit_enter(a->admit, t, w, err);
	if (rc)
		return rc;
	if (admit_ticket_fd(t) < 0)
		return BRG_OK; /* running at once */
	/* A ticket with an eventfd waits: a span of its own, and a waiting
	 * request of its model's (the key is "provider:model") meanwhile. */
	const char *colon = w->model ? strchr(w->model, ':') : NULL;
	int label = colon ? obs_model_id(colon + 1) : -1;
	long long t0 = obs_queue_wait_begin();
	if (label >= 0)
		obs_waiting_add(label, 1);
	rc = wait_turn(a, x, t, deadline_ms, err);
	if (label >= 0)
		obs_waiting_add(label, -1);
	obs_queue_wait_end(t0, rc);
	return rc;
}

/* The plan's next auto-route candidate takes the place of the first. */
static void plan_next_candidate(struct route_plan *plan)
{
	plan->members[0] = plan->alternates[0];
	plan->n_alternates--;
	memmove(plan->alternates, plan->alternates + 1,
	        plan->n_alternates * sizeof *plan->alternates);
}

enum brg_err api_admit_generation(struct api *a, struct http_exchange *x,
                                  const struct api_request *req, struct route_plan *plan,
                                  long long deadline_ms, struct admit_ticket *t,
                                  struct brg_error *err)
{
	admit_ticket_init(t);
	if (!a->admit)
		return BRG_OK;
	struct admit_want w = {.priority = req->has_priority ? req->priority : 0};
	char key[ROUTE_MODEL_MAX + 32];
	/* One model answers: it counts against that model's limit.  Several
	 * (critique, debate...): only the global limit (docs/admission.md). */
	bool is_one_model =
	    strcmp(plan->mode, "single") == 0 || strcmp(plan->mode, "self_consistency") == 0;
	if (!is_one_model || plan->n_members == 0)
		return api_admit(a, x, &w, deadline_ms, t, err);
	for (;;) {
		want_target(&plan->members[0].t, key, sizeof key, &w);
		enum brg_err rc = api_admit(a, x, &w, deadline_ms, t, err);
		/* Auto-route fallback at the door (docs/routing.md): a full
		 * queue for one candidate may still admit the next. */
		if (rc != BRG_E_RATE_LIMITED || plan->n_alternates == 0)
			return rc;
		log_info("auto-route: no room for %s; trying %s", plan->members[0].name,
		         plan->alternates[0].name);
		brg_error_clear(err);
		plan_next_candidate(plan);
	}
}

enum brg_err api_admit_target(struct api *a, struct http_exchange *x,
                              const struct route_target *target, long long deadline_ms,
                              struct admit_ticket *t, struct brg_error *err)
{
	struct admit_want w = {0};
	char key[ROUTE_MODEL_MAX + 32];
	want_target(target, key, sizeof key, &w);
	return api_admit(a, x, &w, deadline_ms, t, err);
}

json_t *api_admission_json(struct api *a)
{
	if (!a->admit)
		return NULL;
	struct admit_stats s;
	admit_get_stats(a->admit, &s);
	return json_pack("{s:i, s:i, s:i, s:i, s:i, s:s, s:b, s:I, s:I, s:I, s:b}", "running",
	                 s.n_running, "queued", s.n_waiting, "max_concurrent",
	                 s.opts.max_concurrent, "max_per_model", s.opts.max_per_model, "queue_size",
	                 s.opts.queue_size, "strategy", s.opts.is_priority ? "priority" : "fifo",
	                 "reject_when_full", s.opts.reject_when_full, "admitted",
	                 (json_int_t)s.n_admitted, "rejected", (json_int_t)s.n_rejected,
	                 "avg_service_ms", (json_int_t)s.avg_run_ms, "shutting_down", s.is_closed);
}
