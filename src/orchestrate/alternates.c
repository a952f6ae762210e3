/*
 * alternates.c — auto-route fallback for the single mode
 * (INFERENCE_AUTO_ROUTE_FALLBACK; docs/routing.md).  An "auto" request
 * whose chosen model fails before any of its text reached the client,
 * with an error another model may not have, runs on the plan's next
 * candidate; the response names the model that answered.
 *
 * Each attempt goes through fallback_generate(), so the provider chain and
 * the breakers act inside it.  A retry starts from the last on_done of the
 * failed attempt, on that provider's thread.  A provider may go on reading
 * its request after that on_done until its generate() returns, so every
 * attempt has a request of its own, and the run is freed by whoever drops
 * the last reference: the delivery of the final results, or the return of
 * a generate() call.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "orchestrate/orch_int.h"
#include "core/str.h"

#define N_CANDS (1 + PLAN_MAX_ALTERNATES)

struct alt_run;

struct alt_choice {
	struct alt_run *run;
	size_t i;
};

struct alt_run {
	struct fallback *f;
	struct orch_info *info;
	struct plan_member cands[N_CANDS];
	struct gen_request reqs[N_CANDS]; /* one per attempt */
	size_t n_cands;
	size_t at;                           /* the current attempt's candidate */
	size_t n;                            /* choices, up to STEP_MAX_CHOICES */
	struct sink outer[STEP_MAX_CHOICES]; /* the caller's */
	struct sink inner[STEP_MAX_CHOICES]; /* the attempts' */
	struct alt_choice choices[STEP_MAX_CHOICES];
	struct gen_result res[STEP_MAX_CHOICES];
	pthread_mutex_t mu;
	size_t n_done; /* under mu */
	atomic_bool has_output;
	atomic_int refs; /* the delivery's, and one per generate() under way */
};

/*
 * Errors another model may not have.  Besides the retriable ones (a
 * provider down or busy, a load refused for memory): a load that failed,
 * an upstream's refusal of our key, a model the upstream lacks, and a
 * prompt longer than this model's context — the client asked for any
 * fitting model, not this one.  Not: shutdown, our own memory, the
 * request's deadline.
 */
static bool is_worth_another(enum brg_err e)
{
	switch (e) {
	case BRG_E_MODEL_LOAD:
	case BRG_E_UPSTREAM_AUTH:
	case BRG_E_MODEL_NOT_FOUND:
	case BRG_E_CONTEXT_BUDGET:
		return true;
	case BRG_E_SHUTTING_DOWN:
	case BRG_E_NOMEM:
	case BRG_E_TIMEOUT:
		return false;
	default:
		return brg_err_is_retriable(e);
	}
}

static void alt_unref(struct alt_run *r)
{
	if (atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static void deliver(struct alt_run *r)
{
	for (size_t i = 0; i < r->n; i++)
		r->outer[i].on_done(r->outer[i].ud, &r->res[i]);
	alt_unref(r);
}

/* The candidate about to answer is the one the response names. */
static void name_answerer(struct orch_info *info, const char *name)
{
	str_copy(info->model, sizeof info->model, name);
	str_copy(info->models_used[0], sizeof info->models_used[0], name);
}

/*
 * Starts candidates from 'from' on until one accepts the request.  BRG_OK:
 * an attempt runs, and the run may already be gone.  Otherwise 'e' says
 * why the last one tried refused, and nothing was delivered.
 */
static enum brg_err try_from(struct alt_run *r, size_t from, struct brg_error *e)
{
	enum brg_err rc = BRG_E_INTERNAL;
	for (size_t k = from; k < r->n_cands; k++) {
		const struct plan_member *c = &r->cands[k];
		brg_error_clear(e);
		name_answerer(r->info, c->name);
		pthread_mutex_lock(&r->mu);
		r->at = k;
		r->n_done = 0;
		memset(r->res, 0, r->n * sizeof *r->res);
		pthread_mutex_unlock(&r->mu);
		atomic_fetch_add(&r->refs, 1);
		rc = fallback_generate(r->f, c->t.p, &r->reqs[k], r->inner, e);
		bool is_last = k + 1 == r->n_cands;
		alt_unref(r); /* on an error the delivery's reference still holds it */
		if (rc == BRG_OK)
			return BRG_OK;
		if (!is_worth_another(rc) || is_last)
			return rc;
		log_warn("auto-route: %s refused the request (%s); trying %s", c->name, e->message,
		         r->cands[k + 1].name);
	}
	return rc;
}

/* The failure that sends the request on to the next candidate: the first
 * choice's error, when no text went out and another model may do better;
 * NULL when the results are the answer. */
static const struct brg_error *reason_to_move_on(const struct alt_run *r)
{
	if (atomic_load(&r->has_output) || r->at + 1 >= r->n_cands)
		return NULL;
	for (size_t i = 0; i < r->n; i++) {
		const struct brg_error *e = &r->res[i].error;
		if (r->res[i].finish == GEN_FINISH_ERROR && e->code)
			return is_worth_another(e->code) ? e : NULL;
	}
	return NULL;
}

static void attempt_ended(struct alt_run *r)
{
	const struct brg_error *e = reason_to_move_on(r);
	size_t next = r->at + 1;
	if (!e) {
		deliver(r);
		return;
	}
	log_warn("auto-route: %s failed (%s); trying %s", r->cands[r->at].name, e->message,
	         r->cands[next].name);
	struct brg_error why;
	brg_error_clear(&why);
	if (try_from(r, next, &why) == BRG_OK)
		return;
	for (size_t i = 0; i < r->n; i++)
		r->res[i] = (struct gen_result){.finish = GEN_FINISH_ERROR, .error = why};
	deliver(r);
}

static int alt_piece(void *ud, const char *utf8, size_t len)
{
	struct alt_choice *c = ud;
	atomic_store(&c->run->has_output, true);
	return c->run->outer[c->i].on_piece(c->run->outer[c->i].ud, utf8, len);
}

static void alt_done(void *ud, const struct gen_result *res)
{
	struct alt_choice *c = ud;
	struct alt_run *r = c->run;
	pthread_mutex_lock(&r->mu);
	r->res[c->i] = *res;
	bool is_last = ++r->n_done == r->n;
	pthread_mutex_unlock(&r->mu);
	if (is_last)
		attempt_ended(r);
}

/* NULL on out-of-memory. */
static struct alt_run *alt_new(struct fallback *f, const struct route_plan *plan,
                               const struct gen_request *gen, struct sink *sinks,
                               struct orch_info *info)
{
	struct alt_run *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->f = f;
	r->info = info;
	r->n = gen->n_choices;
	r->cands[0] = plan->members[0];
	r->n_cands = 1;
	for (size_t i = 0; i < plan->n_alternates && r->n_cands < N_CANDS; i++)
		r->cands[r->n_cands++] = plan->alternates[i];
	for (size_t k = 0; k < r->n_cands; k++) {
		r->reqs[k] = *gen;
		r->reqs[k].model = r->cands[k].t.model;
	}
	memcpy(r->outer, sinks, r->n * sizeof *sinks);
	for (size_t i = 0; i < r->n; i++) {
		r->choices[i] = (struct alt_choice){r, i};
		r->inner[i] = (struct sink){alt_piece, alt_done, &r->choices[i]};
	}
	pthread_mutex_init(&r->mu, NULL);
	atomic_init(&r->has_output, false);
	atomic_init(&r->refs, 1);
	return r;
}

enum brg_err alternates_generate(struct fallback *f, const struct route_plan *plan,
                                 const struct gen_request *gen, struct sink *sinks,
                                 struct orch_info *info, struct brg_error *err)
{
	if (gen->n_choices > STEP_MAX_CHOICES) /* more than api/ lets through: no fallback */
		return fallback_generate(f, plan->members[0].t.p, gen, sinks, err);
	struct alt_run *r = alt_new(f, plan, gen, sinks, info);
	if (!r)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	struct brg_error why;
	brg_error_clear(&why);
	enum brg_err rc = try_from(r, 0, &why);
	if (rc == BRG_OK)
		return BRG_OK;
	if (err)
		*err = why;
	alt_unref(r); /* nothing started: the delivery's reference is the last */
	return rc;
}
