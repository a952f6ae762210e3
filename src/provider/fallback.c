/*
 * fallback.c — see fallback.h.
 *
 * One mutex guards every member's breaker and health state; a run (one
 * request's journey down the chain) has its own mutex for counting its
 * choices' on_done.  A retry starts from inside the last on_done of the
 * failed attempt, on that provider's thread; nothing touches the run after
 * a provider accepted it, because the run may end (and be freed) on another
 * thread at any moment after that.
 */
#include "provider/fallback.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "obs/obs.h"
#include "core/str.h"

#define MAX_MEMBERS 16

struct member {
	struct provider p;
	int chain_position;
	const char *default_model;
	int obs_id; /* its index in obs/'s providers */
	/* guarded by fallback.mu */
	int consecutive_failures;
	long long open_until_ms;
	bool has_check;
	bool is_healthy;
	bool has_succeeded;
	long long latency_ms;
	long long checked_at;
	char last_error[BRG_ERR_MSG_MAX];
};

struct fallback {
	struct fallback_opts o;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct member members[MAX_MEMBERS];
	size_t n_members;
	size_t order[MAX_MEMBERS]; /* chain members, by position */
	size_t n_chain;
	pthread_t health;
	bool has_health;
	bool is_stopping;
};

/*
 * The hand-shake between a provider call and the end of its attempt.  A
 * provider may finish before its generate()/embed() returns, yet still
 * read the request until it does, so an attempt that ends during the call
 * is ended by the caller once the call returns, not by the completion.
 * Guarded by the run's mutex.
 */
struct gate {
	bool is_calling;
	bool is_ended;
};

static void gate_enter(pthread_mutex_t *mu, struct gate *g)
{
	pthread_mutex_lock(mu);
	g->is_calling = true;
	g->is_ended = false;
	pthread_mutex_unlock(mu);
}

/* After the call: true when the attempt ended during it (end it now). */
static bool gate_leave(pthread_mutex_t *mu, struct gate *g)
{
	pthread_mutex_lock(mu);
	g->is_calling = false;
	bool is_ended = g->is_ended;
	pthread_mutex_unlock(mu);
	return is_ended;
}

/* From the completion, mutex held: true when the call is still on and the
 * end is left to gate_leave()'s caller. */
static bool gate_defer(struct gate *g)
{
	if (g->is_calling)
		g->is_ended = true;
	return g->is_calling;
}

/*
 * The tracing of one request's provider calls: a CLIENT span per attempt,
 * a child of the caller's context, whose own context the attempt carries
 * upstream (gen_request.traceparent).  With tracing off, or no context,
 * the caller's traceparent (if any) passes through unchanged.  Owned by
 * whoever owns the run, like the rest of it.
 */
struct call_trace {
	struct trace_ctx parent;
	bool has_parent;
	struct trace_open span;              /* the current attempt's, when is_on */
	char traceparent[TRACE_PARENT_SIZE]; /* what the attempt carries */
	int n_attempts;
};

/* Returns what the request should carry now: NULL when nothing. */
static const char *call_trace_init(struct call_trace *t, const char *traceparent)
{
	t->has_parent = traceparent && trace_parse(traceparent, &t->parent);
	if (!t->has_parent)
		return NULL;
	trace_format(&t->parent, t->traceparent);
	return t->traceparent;
}

/* Right before a provider call. */
static void call_trace_begin(struct call_trace *t)
{
	t->n_attempts++;
	if (t->has_parent && trace_open(&t->span, &t->parent))
		trace_format(&t->span.ctx, t->traceparent);
}

/* Once the call has ended, as 'e' says (NULL: it answered). */
static void call_trace_end(struct call_trace *t, const char *provider, const char *model,
                           const char *operation, const struct brg_error *e)
{
	if (!t->span.is_on)
		return;
	t->span.is_on = false;
	struct trace_span s;
	char name[TRACE_NAME_MAX];
	snprintf(name, sizeof name, "provider %s", provider);
	trace_span_init(&s, &t->span, TRACE_CLIENT, name);
	trace_span_str(&s, "brigade.provider", provider);
	trace_span_str(&s, "gen_ai.operation.name", operation);
	trace_span_str(&s, "gen_ai.request.model", model);
	trace_span_int(&s, "brigade.attempt", t->n_attempts);
	trace_span_str(&s, "brigade.outcome", e ? brg_err_code(e->code) : "ok");
	if (e)
		trace_span_fail(&s, e->message);
	trace_submit(&s);
}

struct run;

struct choice {
	struct run *run;
	size_t i;
};

struct run {
	struct fallback *f;
	struct gen_request req;
	char model[256];      /* what the current attempt asks for */
	char orig_model[256]; /* what the client asked for */
	size_t n;
	struct sink *outer; /* copied: the caller's array may not outlive the call */
	struct sink *inner;
	struct choice *choices;
	struct gen_result *res;
	pthread_mutex_t mu;
	size_t n_done;
	struct gate gate; /* under mu */
	atomic_bool has_output;
	size_t member;          /* the provider of the current attempt */
	int obs_model;          /* the current attempt's model, as obs/ counts it */
	int cursor;             /* index into f->order of the next candidate; -1: no chain */
	unsigned tried_mask;    /* members already tried */
	struct brg_error tried; /* details: provider name → its error */
	struct call_trace trace;
};

/* Errors that are the provider's fault, as opposed to the request's. */
static bool is_fault(enum brg_err e)
{
	return e == BRG_E_UPSTREAM || e == BRG_E_UPSTREAM_TIMEOUT || e == BRG_E_RATE_LIMITED ||
	       e == BRG_E_UPSTREAM_AUTH || e == BRG_E_PROVIDER_UNAVAILABLE ||
	       e == BRG_E_MODEL_LOAD || e == BRG_E_RESOURCE;
}

/* Errors worth another provider: the request itself was fine. */
static bool is_worth_retry(enum brg_err e)
{
	return brg_err_is_retriable(e) && e != BRG_E_SHUTTING_DOWN && e != BRG_E_NOMEM;
}

static void record(struct fallback *f, size_t m, const struct brg_error *e)
{
	struct member *mb = &f->members[m];
	pthread_mutex_lock(&f->mu);
	if (!e || !is_fault(e->code)) {
		mb->consecutive_failures = 0;
		mb->open_until_ms = 0;
		mb->has_succeeded = true;
	} else {
		str_copy(mb->last_error, sizeof mb->last_error, e->message);
		if (++mb->consecutive_failures >= f->o.breaker_failures &&
		    mb->open_until_ms <= brg_now_ms()) {
			mb->open_until_ms =
			    brg_now_ms() + (long long)f->o.breaker_cooldown_s * 1000;
			log_warn("provider %s: circuit open for %d s after %d failures",
			         mb->p.ops->name, f->o.breaker_cooldown_s,
			         mb->consecutive_failures);
		}
	}
	pthread_mutex_unlock(&f->mu);
}

static bool is_open(struct fallback *f, size_t m)
{
	pthread_mutex_lock(&f->mu);
	bool open = f->members[m].open_until_ms > brg_now_ms();
	pthread_mutex_unlock(&f->mu);
	return open;
}

/* PROVIDER_UNAVAILABLE, naming the provider, while member m's breaker is
 * open; BRG_OK otherwise. */
static enum brg_err refuse_if_open(struct fallback *f, size_t m, struct brg_error *e)
{
	if (!is_open(f, m))
		return BRG_OK;
	const char *name = f->members[m].p.ops->name;
	brg_fail(e, BRG_E_PROVIDER_UNAVAILABLE, "%s: circuit open after repeated failures", name);
	brg_error_detail_str(e, "provider", name);
	return BRG_E_PROVIDER_UNAVAILABLE;
}

static int find(const struct fallback *f, struct provider p)
{
	for (size_t i = 0; i < f->n_members; i++)
		if (f->members[i].p.impl == p.impl && f->members[i].p.ops == p.ops)
			return (int)i;
	return -1;
}

static void run_free(struct run *r)
{
	pthread_mutex_destroy(&r->mu);
	free(r->outer);
	free(r->inner);
	free(r->choices);
	free(r->res);
	free(r);
}

/* Every choice has its result: hand them up and end the run. */
static void deliver(struct run *r)
{
	for (size_t i = 0; i < r->n; i++)
		r->outer[i].on_done(r->outer[i].ud, &r->res[i]);
	run_free(r);
}

static void note_tried(struct run *r, size_t m, const struct brg_error *e)
{
	/* Provider names live as long as the configuration: fine as keys. */
	brg_error_detail_str(&r->tried, r->f->members[m].p.ops->name, e->message);
}

/* The model to ask member m for: the request's if it serves it, else its
 * default.  NULL when it has neither. */
static const char *model_for(struct run *r, size_t m, bool is_first)
{
	const struct member *mb = &r->f->members[m];
	if (is_first || mb->p.ops->has_model(mb->p.impl, r->orig_model))
		return r->orig_model;
	return mb->default_model;
}

static void keep_obs_id(void *ud, const struct model_info *mi)
{
	*(int *)ud = obs_model_id(mi->id);
}

/* How obs/ counts 'model' of provider p: under the id p lists it by. */
static int obs_model_of(struct provider p, const char *model)
{
	int id = OBS_MODEL_OTHER;
	if (p.ops->model)
		p.ops->model(p.impl, model, keep_obs_id, &id);
	return id;
}

static void attempt_ended(struct run *r);

static const char *operation_of(const struct run *r)
{
	return r->req.msgs ? "chat" : "text_completion";
}

/* Tries member m.  BRG_OK: the attempt runs and owns the run. */
static enum brg_err try_member(struct run *r, size_t m, bool is_first, struct brg_error *e)
{
	/* Each attempt reports its own error: no details left from the last. */
	brg_error_clear(e);
	r->tried_mask |= 1u << m;
	const char *model = model_for(r, m, is_first);
	if (!model)
		return brg_fail(e, BRG_E_PROVIDER_UNAVAILABLE, "%s: no model to fall back to",
		                r->f->members[m].p.ops->name);
	if (refuse_if_open(r->f, m, e))
		return BRG_E_PROVIDER_UNAVAILABLE;
	str_copy(r->model, sizeof r->model, model);
	r->req.model = r->model;
	r->member = m;
	r->n_done = 0;
	memset(r->res, 0, r->n * sizeof *r->res);
	struct provider p = r->f->members[m].p;
	r->obs_model = obs_model_of(p, r->model);
	obs_running_add(r->obs_model, (int)r->n);
	call_trace_begin(&r->trace);
	gate_enter(&r->mu, &r->gate);
	enum brg_err rc = p.ops->generate(p.impl, &r->req, r->inner, e);
	bool is_ended = gate_leave(&r->mu, &r->gate);
	if (rc) {
		call_trace_end(&r->trace, p.ops->name, r->model, operation_of(r), e);
		obs_running_add(r->obs_model, -(int)r->n);
		record(r->f, m, e);
		return rc;
	}
	if (is_ended)
		attempt_ended(r); /* deferred from inner_done */
	return BRG_OK;            /* the run may be gone now: do not touch it */
}

/*
 * Walks the chain from *cursor, calling try_one(run, m) on each member not
 * yet in *tried_mask, until one accepts the request (BRG_OK: an attempt
 * runs).  Otherwise 'e' is the error to report: the last one when it is
 * not worth another provider, else PROVIDER_UNAVAILABLE with every
 * provider's error (collected in *tried) in its details.  Shared by
 * generations and embeddings.
 */
static enum brg_err walk_chain(struct fallback *f, int *cursor, unsigned *tried_mask,
                               struct brg_error *tried,
                               enum brg_err (*try_one)(void *run, size_t m, struct brg_error *e),
                               void *run, size_t from, struct brg_error *e)
{
	while (*cursor >= 0 && (size_t)*cursor < f->n_chain) {
		size_t m = f->order[(*cursor)++];
		if (*tried_mask & (1u << m))
			continue;
		obs_fallback(f->members[from].obs_id, f->members[m].obs_id);
		from = m;
		enum brg_err rc = try_one(run, m, e);
		if (rc == BRG_OK)
			return BRG_OK;
		if (!is_worth_retry(rc))
			return rc;
		brg_error_detail_str(tried, f->members[m].p.ops->name, e->message);
	}
	*e = *tried;
	brg_fail(e, BRG_E_PROVIDER_UNAVAILABLE,
	         "every provider failed; details has each one's error");
	return BRG_E_PROVIDER_UNAVAILABLE;
}

static enum brg_err try_later_member(void *run, size_t m, struct brg_error *e)
{
	return try_member(run, m, false, e);
}

/* Moves on down the chain from member 'from', which failed. */
static enum brg_err try_next(struct run *r, size_t from, struct brg_error *e)
{
	return walk_chain(r->f, &r->cursor, &r->tried_mask, &r->tried, try_later_member, r, from,
	                  e);
}

/* The first error among the attempt's choices, or NULL. */
static const struct brg_error *attempt_error(const struct run *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->res[i].finish == GEN_FINISH_ERROR && r->res[i].error.code)
			return &r->res[i].error;
	return NULL;
}

static void attempt_ended(struct run *r)
{
	obs_running_add(r->obs_model, -(int)r->n);
	const struct brg_error *e = attempt_error(r);
	call_trace_end(&r->trace, r->f->members[r->member].p.ops->name, r->model, operation_of(r),
	               e);
	record(r->f, r->member, e);
	if (!e || atomic_load(&r->has_output) || !is_worth_retry(e->code) || r->cursor < 0) {
		deliver(r);
		return;
	}
	note_tried(r, r->member, e);
	struct brg_error next;
	brg_error_clear(&next);
	if (try_next(r, r->member, &next) == BRG_OK)
		return;
	for (size_t i = 0; i < r->n; i++) {
		r->res[i].finish = GEN_FINISH_ERROR;
		r->res[i].error = next;
	}
	deliver(r);
}

static int inner_piece(void *ud, const char *utf8, size_t len)
{
	struct choice *c = ud;
	atomic_store(&c->run->has_output, true);
	return c->run->outer[c->i].on_piece(c->run->outer[c->i].ud, utf8, len);
}

static void inner_done(void *ud, const struct gen_result *res)
{
	struct choice *c = ud;
	struct run *r = c->run;
	pthread_mutex_lock(&r->mu);
	r->res[c->i] = *res;
	bool is_last = ++r->n_done == r->n;
	bool is_deferred = is_last && gate_defer(&r->gate);
	pthread_mutex_unlock(&r->mu);
	if (is_last && !is_deferred)
		attempt_ended(r);
}

static struct run *run_new(struct fallback *f, const struct gen_request *req, struct sink *sinks)
{
	struct run *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->outer = calloc(req->n_choices, sizeof *r->outer);
	r->inner = calloc(req->n_choices, sizeof *r->inner);
	r->choices = calloc(req->n_choices, sizeof *r->choices);
	r->res = calloc(req->n_choices, sizeof *r->res);
	if (!r->outer || !r->inner || !r->choices || !r->res) {
		free(r->outer);
		free(r->inner);
		free(r->choices);
		free(r->res);
		free(r);
		return NULL;
	}
	pthread_mutex_init(&r->mu, NULL);
	atomic_init(&r->has_output, false);
	r->f = f;
	r->req = *req;
	r->req.traceparent = call_trace_init(&r->trace, req->traceparent);
	str_copy(r->orig_model, sizeof r->orig_model, req->model);
	r->n = req->n_choices;
	memcpy(r->outer, sinks, r->n * sizeof *sinks);
	brg_error_clear(&r->tried);
	for (size_t i = 0; i < r->n; i++) {
		r->choices[i] = (struct choice){r, i};
		r->inner[i] = (struct sink){inner_piece, inner_done, &r->choices[i]};
	}
	return r;
}

enum brg_err fallback_generate(struct fallback *f, struct provider p, const struct gen_request *r,
                               struct sink *sinks, struct brg_error *err)
{
	int m = f ? find(f, p) : -1;
	if (m < 0)
		return p.ops->generate(p.impl, r, sinks, err);
	struct run *run = run_new(f, r, sinks);
	if (!run)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	bool is_chained = f->o.is_enabled && f->members[m].chain_position >= 0;
	run->cursor = is_chained ? 0 : -1;
	enum brg_err rc = try_member(run, (size_t)m, true, err);
	if (rc == BRG_OK)
		return BRG_OK;
	if (is_chained && is_worth_retry(rc)) {
		note_tried(run, (size_t)m, err);
		rc = try_next(run, (size_t)m, err);
		if (rc == BRG_OK)
			return BRG_OK;
	}
	run_free(run);
	return rc;
}

/* ---- embeddings --------------------------------------------------------- */

/*
 * An embeddings request's journey down the chain.  Unlike a generation it
 * falls back only to providers that serve the very same model: vectors
 * from another model live in another space, and mixing them into one
 * index would corrupt it silently.  Same threading rules as struct run.
 */
struct erun {
	struct fallback *f;
	struct embed_request req;
	struct embed_sink outer;
	pthread_mutex_t mu;
	struct gate gate;        /* under mu, as in struct run */
	struct embed_result res; /* the current attempt's; vecs owned */
	size_t member;
	int cursor;
	unsigned tried_mask;
	struct brg_error tried;
	struct call_trace trace;
};

static void erun_deliver(struct erun *r)
{
	r->outer.on_done(r->outer.ud, &r->res);
	free(r->res.vecs);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static void erun_attempt_ended(struct erun *r);

static void erun_done(void *ud, struct embed_result *res)
{
	struct erun *r = ud;
	pthread_mutex_lock(&r->mu);
	r->res = *res;
	res->vecs = NULL; /* ours now */
	bool is_deferred = gate_defer(&r->gate);
	pthread_mutex_unlock(&r->mu);
	if (!is_deferred)
		erun_attempt_ended(r);
}

static enum brg_err erun_try_member(struct erun *r, size_t m, bool is_first, struct brg_error *e)
{
	brg_error_clear(e);
	r->tried_mask |= 1u << m;
	struct provider p = r->f->members[m].p;
	if (!p.ops->embed)
		return brg_fail(e, is_first ? BRG_E_BAD_REQUEST : BRG_E_PROVIDER_UNAVAILABLE,
		                "provider %s does not serve embeddings", p.ops->name);
	if (!is_first && !p.ops->has_model(p.impl, r->req.model))
		return brg_fail(e, BRG_E_PROVIDER_UNAVAILABLE,
		                "%s does not serve model %s (embeddings fall back to the same "
		                "model only)",
		                p.ops->name, r->req.model);
	if (refuse_if_open(r->f, m, e))
		return BRG_E_PROVIDER_UNAVAILABLE;
	r->member = m;
	call_trace_begin(&r->trace);
	gate_enter(&r->mu, &r->gate);
	enum brg_err rc = p.ops->embed(p.impl, &r->req, (struct embed_sink){erun_done, r}, e);
	bool is_ended = gate_leave(&r->mu, &r->gate);
	if (rc) {
		call_trace_end(&r->trace, p.ops->name, r->req.model, "embeddings", e);
		record(r->f, m, e);
		return rc;
	}
	if (is_ended)
		erun_attempt_ended(r);
	return BRG_OK;
}

static enum brg_err erun_try_later_member(void *run, size_t m, struct brg_error *e)
{
	return erun_try_member(run, m, false, e);
}

static enum brg_err erun_try_next(struct erun *r, size_t from, struct brg_error *e)
{
	return walk_chain(r->f, &r->cursor, &r->tried_mask, &r->tried, erun_try_later_member, r,
	                  from, e);
}

static void erun_attempt_ended(struct erun *r)
{
	const struct brg_error *e = r->res.error.code ? &r->res.error : NULL;
	call_trace_end(&r->trace, r->f->members[r->member].p.ops->name, r->req.model, "embeddings",
	               e);
	record(r->f, r->member, e);
	if (!e || !is_worth_retry(e->code) || r->cursor < 0) {
		erun_deliver(r);
		return;
	}
	brg_error_detail_str(&r->tried, r->f->members[r->member].p.ops->name, e->message);
	free(r->res.vecs);
	r->res.vecs = NULL;
	struct brg_error next;
	brg_error_clear(&next);
	if (erun_try_next(r, r->member, &next) == BRG_OK)
		return;
	r->res.error = next;
	erun_deliver(r);
}

enum brg_err fallback_embed(struct fallback *f, struct provider p, const struct embed_request *r,
                            struct embed_sink sink, struct brg_error *err)
{
	int m = f ? find(f, p) : -1;
	if (m < 0) {
		if (!p.ops->embed)
			return brg_fail(err, BRG_E_BAD_REQUEST,
			                "provider %s does not serve embeddings", p.ops->name);
		return p.ops->embed(p.impl, r, sink, err);
	}
	struct erun *run = calloc(1, sizeof *run);
	if (!run)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	pthread_mutex_init(&run->mu, NULL);
	run->f = f;
	run->req = *r;
	run->req.traceparent = call_trace_init(&run->trace, r->traceparent);
	run->outer = sink;
	brg_error_clear(&run->tried);
	bool is_chained = f->o.is_enabled && f->members[m].chain_position >= 0;
	run->cursor = is_chained ? 0 : -1;
	enum brg_err rc = erun_try_member(run, (size_t)m, true, err);
	if (rc == BRG_OK)
		return BRG_OK;
	if (is_chained && is_worth_retry(rc)) {
		brg_error_detail_str(&run->tried, p.ops->name, err->message);
		rc = erun_try_next(run, (size_t)m, err);
		if (rc == BRG_OK)
			return BRG_OK;
	}
	pthread_mutex_destroy(&run->mu);
	free(run);
	return rc;
}

/* ---- health ------------------------------------------------------------ */

static void check_one(struct fallback *f, size_t m)
{
	struct member *mb = &f->members[m];
	struct brg_error e;
	brg_error_clear(&e);
	long long latency = -1;
	enum brg_err rc =
	    mb->p.ops->check_health(mb->p.impl, f->o.health_timeout_s * 1000, &latency, &e);
	pthread_mutex_lock(&f->mu);
	mb->has_check = true;
	mb->is_healthy = rc == BRG_OK;
	mb->latency_ms = latency;
	mb->checked_at = (long long)time(NULL);
	obs_provider_up(mb->obs_id, rc == BRG_OK);
	if (rc == BRG_OK) {
		/* A provider that answers again is given its chance back. */
		mb->consecutive_failures = 0;
		mb->open_until_ms = 0;
	} else {
		str_copy(mb->last_error, sizeof mb->last_error, e.message);
	}
	pthread_mutex_unlock(&f->mu);
}

static void *health_main(void *arg)
{
	struct fallback *f = arg;
	for (;;) {
		for (size_t m = 0; m < f->n_members; m++)
			if (f->members[m].p.ops->check_health)
				check_one(f, m);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += f->o.health_interval_s;
		pthread_mutex_lock(&f->mu);
		while (!f->is_stopping && pthread_cond_timedwait(&f->cv, &f->mu, &until) == 0)
			;
		bool is_stopping = f->is_stopping;
		pthread_mutex_unlock(&f->mu);
		if (is_stopping)
			return NULL;
	}
}

static const char *state_of(const struct member *mb)
{
	if (mb->open_until_ms > brg_now_ms())
		return "open";
	if (mb->has_check)
		return mb->is_healthy ? "healthy" : "unhealthy";
	return mb->has_succeeded || !mb->p.ops->check_health ? "healthy" : "unknown";
}

void fallback_each_health(struct fallback *f, void (*fn)(void *ud, const struct provider_health *h),
                          void *ud)
{
	size_t idx[MAX_MEMBERS], n = 0;
	for (size_t k = 0; k < f->n_chain; k++)
		idx[n++] = f->order[k];
	for (size_t m = 0; m < f->n_members; m++)
		if (f->members[m].chain_position < 0)
			idx[n++] = m;
	pthread_mutex_lock(&f->mu);
	for (size_t k = 0; k < n; k++) {
		const struct member *mb = &f->members[idx[k]];
		struct provider_health h = {
		    .name = mb->p.ops->name,
		    .state = state_of(mb),
		    .consecutive_failures = mb->consecutive_failures,
		    .latency_ms = mb->has_check ? mb->latency_ms : -1,
		    .checked_at = mb->checked_at,
		    .last_error = mb->last_error[0] ? mb->last_error : NULL,
		    .chain_position = mb->chain_position,
		    .provider = mb->p,
		};
		fn(ud, &h);
	}
	pthread_mutex_unlock(&f->mu);
}

/* ---- lifetime ------------------------------------------------------------ */

struct fallback *fallback_new(const struct fallback_opts *o)
{
	struct fallback *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->o = *o;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	return f;
}

/* A model a provider lists: a label value; one with slots is local. */
static void obs_declare(void *ud, const struct model_info *mi)
{
	(void)ud;
	obs_model_declare(mi->id, mi->n_slots > 0);
}

enum brg_err fallback_add(struct fallback *f, struct provider p, int chain_position,
                          const char *default_model)
{
	if (f->n_members == MAX_MEMBERS)
		return BRG_E_INTERNAL;
	size_t m = f->n_members++;
	f->members[m] =
	    (struct member){.p = p,
	                    .chain_position = chain_position,
	                    .default_model = default_model,
	                    .obs_id = obs_provider_declare(p.ops->name, !p.ops->check_health),
	                    .latency_ms = -1};
	/* Its catalogue becomes obs/'s label values, before any request. */
	if (p.ops->each_model)
		p.ops->each_model(p.impl, obs_declare, NULL);
	if (chain_position < 0)
		return BRG_OK;
	/* Keep the chain sorted by position (insertion sort: a handful). */
	size_t k = f->n_chain++;
	while (k > 0 && f->members[f->order[k - 1]].chain_position > chain_position) {
		f->order[k] = f->order[k - 1];
		k--;
	}
	f->order[k] = m;
	return BRG_OK;
}

enum brg_err fallback_start(struct fallback *f, struct brg_error *err)
{
	if (pthread_create(&f->health, NULL, health_main, f) != 0)
		return brg_fail(err, BRG_E_INTERNAL, "cannot start the health-check thread");
	f->has_health = true;
	return BRG_OK;
}

void fallback_free(struct fallback *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->is_stopping = true;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	if (f->has_health)
		pthread_join(f->health, NULL);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}
