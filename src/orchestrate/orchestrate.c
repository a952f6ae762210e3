/*
 * orchestrate.c — see orchestrate.h.  The single mode is a direct provider
 * call (alternates.c when auto-routing left fallbacks in the plan); a
 * multi-model mode gets a plan from route/, then a thread that
 * runs the mode (modes.c) and hands the final answer to the client's sink.
 */
#include "orchestrate/orchestrate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "orchestrate/orch_int.h"
#include "core/str.h"

static const char *mode_names[] = {"single",   "critique", "debate",
                                   "ensemble", "pipeline", "self_consistency"};

int orch_mode_parse(const char *s)
{
	for (size_t i = 0; s && i < sizeof mode_names / sizeof mode_names[0]; i++)
		if (strcmp(s, mode_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *orch_mode_name(enum orch_mode m)
{
	return mode_names[m];
}

/* The configured settings; built-in defaults when there is no
 * configuration (unit tests) or it was never filled. */
static void settings_from(const struct config *cfg, struct orch_settings *s)
{
	*s = (struct orch_settings){
	    .critique_rounds = 2,
	    .critique_threshold = 0.8,
	    .debate_rounds = 3,
	    .min_agreement = 0.7,
	    .reducer = REDUCE_WEIGHTED_CONSENSUS,
	    .sc_samples = 5,
	};
	const struct orch_config *c = cfg ? &cfg->orch : NULL;
	if (!c || c->critique_max_rounds <= 0)
		return;
	s->critique_rounds = c->critique_max_rounds;
	s->critique_threshold = c->critique_threshold;
	s->debate_rounds = c->debate_max_rounds > 0 ? c->debate_max_rounds : 3;
	s->min_agreement = c->ensemble_min_agreement;
	s->is_best_on_disagreement = c->ensemble_best_on_disagreement;
	if (c->self_consistency_samples > 0)
		s->sc_samples = c->self_consistency_samples;
	int r = c->ensemble_reducer ? reduce_strategy_parse(c->ensemble_reducer) : -1;
	if (r >= 0)
		s->reducer = (enum reduce_strategy)r;
	if (s->sc_samples > STEP_MAX_CHOICES)
		s->sc_samples = STEP_MAX_CHOICES;
}

struct orchestrator *orchestrator_new(struct router *r, const struct config *cfg,
                                      struct brg_error *err)
{
	if (cfg && cfg->orch.ensemble_reducer &&
	    reduce_strategy_parse(cfg->orch.ensemble_reducer) < 0) {
		brg_fail(err, BRG_E_CONFIG, "unknown ensemble reducer '%s'",
		         cfg->orch.ensemble_reducer);
		return NULL;
	}
	struct orchestrator *o = calloc(1, sizeof *o);
	if (!o) {
		brg_fail(err, BRG_E_NOMEM, "out of memory");
		return NULL;
	}
	o->router = r;
	o->cfg = cfg;
	settings_from(cfg, &o->s);
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	return o;
}

void orchestrator_free(struct orchestrator *o)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->mu);
	while (o->n_running > 0)
		pthread_cond_wait(&o->cv, &o->mu);
	pthread_mutex_unlock(&o->mu);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
	free(o);
}

/* ---- single -------------------------------------------------------------- */

static enum brg_err run_single(struct orchestrator *o, struct orch_request *req,
                               const struct route_plan *plan, struct sink *sinks,
                               struct orch_info *info, struct brg_error *err)
{
	const struct plan_member *m = &plan->members[0];
	str_copy(info->model, sizeof info->model, m->name);
	str_copy(info->models_used[0], sizeof info->models_used[0], m->name);
	info->n_models_used = 1;
	info->rounds = 1;
	info->total_steps = 1;
	info->completed_steps = 1;
	(void)o;
	if (plan->n_alternates)
		return alternates_generate(req->fallback, plan, &req->gen, sinks, info, err);
	req->gen.model = m->t.model;
	enum brg_err rc = fallback_generate(req->fallback, m->t.p, &req->gen, sinks, err);
	req->gen.model = NULL; /* 'plan' ends here; providers copied what they keep */
	return rc;
}

/* ---- multi-model --------------------------------------------------------- */

static const char *last_user(const struct gen_request *g)
{
	for (size_t i = g->n_msgs; i > 0; i--)
		if (strcmp(g->msgs[i - 1].role, "user") == 0)
			return g->msgs[i - 1].content;
	return g->n_msgs ? g->msgs[g->n_msgs - 1].content : "";
}

static void deliver(struct run *run)
{
	struct gen_result res = {.finish = run->finish};
	res.n_prompt = (int)(run->n_prompt > INT32_MAX ? INT32_MAX : run->n_prompt);
	res.n_completion = (int)(run->n_completion > INT32_MAX ? INT32_MAX : run->n_completion);
	if (run->finish == GEN_FINISH_ERROR)
		res.error = run->error;
	else if (run->final.len &&
	         run->sink.on_piece(run->sink.ud, run->final.data, run->final.len))
		res.finish = GEN_FINISH_CANCELLED;
	if (!isfinite(run->info->confidence))
		run->info->confidence = -1;
	run->sink.on_done(run->sink.ud, &res);
}

static void *run_main(void *arg)
{
	struct run *run = arg;
	struct orchestrator *o = run->o;
	switch (run->mode) {
	case ORCH_CRITIQUE:
		mode_critique(run);
		break;
	case ORCH_DEBATE:
		mode_debate(run);
		break;
	case ORCH_ENSEMBLE:
		mode_ensemble(run);
		break;
	case ORCH_PIPELINE:
		mode_pipeline(run);
		break;
	case ORCH_SELF_CONSISTENCY:
	case ORCH_SINGLE:
		mode_self_consistency(run);
		break;
	}
	log_info("orchestration %s: %d steps, %s", orch_mode_name(run->mode),
	         run->info->total_steps, gen_finish_name(run->finish));
	deliver(run); /* after this, nothing of the request may be touched */
	carry_end(run);
	buf_fini(&run->final);
	free(run);
	pthread_mutex_lock(&o->mu);
	o->n_running--;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

static enum brg_err run_start(struct orchestrator *o, struct orch_request *req,
                              const struct route_plan *plan, enum orch_mode mode,
                              struct sink *sinks, struct orch_info *info, struct brg_error *err)
{
	struct run *run = calloc(1, sizeof *run);
	if (!run)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	run->o = o;
	run->plan = *plan;
	run->mode = mode;
	run->gen = req->gen;
	run->goal = last_user(&req->gen);
	run->sink = sinks[0];
	run->cancel = req->gen.cancel;
	run->fallback = req->fallback;
	run->info = info;
	run->on_step = req->on_step;
	run->step_ud = req->step_ud;
	run->finish = GEN_FINISH_STOP;
	if (carry_begin(run, req->id, err)) {
		free(run);
		return err->code;
	}
	buf_init(&run->final, STEP_TEXT_MAX);
	info->confidence = -1;
	info->agreement = -1;
	info->context_utilization = -1;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&o->mu);
	o->n_running++;
	pthread_t t;
	int rc = pthread_create(&t, &attr, run_main, run);
	if (rc)
		o->n_running--;
	pthread_mutex_unlock(&o->mu);
	pthread_attr_destroy(&attr);
	if (rc) {
		carry_end(run);
		buf_fini(&run->final);
		free(run);
		return brg_fail(err, BRG_E_RESOURCE, "cannot start the orchestration (no thread)");
	}
	return BRG_OK;
}

/* A plan for a caller that brought none (tests, tools) into *out (heap:
 * a plan is several kilobytes; free() it).  route_plan()'s errors. */
static enum brg_err plan_here(struct orchestrator *o, const struct orch_request *req,
                              struct route_plan **out, struct brg_error *err)
{
	struct plan_request q = {
	    .mode = req->mode,
	    .model = req->model,
	    .task_type = req->task_type,
	    .preset = req->preset,
	};
	*out = malloc(sizeof **out);
	if (!*out)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	enum brg_err rc = route_plan(o->router, &q, *out, err);
	if (rc) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

static enum brg_err run_planned(struct orchestrator *o, struct orch_request *req,
                                const struct route_plan *plan, struct sink *sinks,
                                struct orch_info *info, struct brg_error *err)
{
	int m = orch_mode_parse(plan->mode);
	if (m < 0) {
		brg_fail(err, BRG_E_BAD_REQUEST, "unknown orchestration_mode '%s'", plan->mode);
		brg_error_detail_str(err, "orchestration_mode", plan->mode);
		return BRG_E_BAD_REQUEST;
	}
	info->mode = (enum orch_mode)m;
	str_copy(info->config, sizeof info->config, plan->preset);
	if (m == ORCH_SINGLE)
		return run_single(o, req, plan, sinks, info, err);
	if (!req->gen.msgs || req->gen.n_choices != 1) {
		brg_fail(err, BRG_E_BAD_REQUEST,
		         req->gen.msgs ? "orchestration_mode '%s' gives one answer: n must be 1"
		                       : "orchestration_mode '%s' needs chat messages "
		                         "(/v1/chat/completions)",
		         plan->mode);
		brg_error_detail_str(err, "orchestration_mode", plan->mode);
		return BRG_E_BAD_REQUEST;
	}
	return run_start(o, req, plan, (enum orch_mode)m, sinks, info, err);
}

enum brg_err orchestrate_run(struct orchestrator *o, struct orch_request *req,
                             const struct route_plan *plan, struct sink *sinks,
                             struct orch_info *info, struct brg_error *err)
{
	if (plan)
		return run_planned(o, req, plan, sinks, info, err);
	struct route_plan *own;
	enum brg_err rc = plan_here(o, req, &own, err);
	if (rc)
		return rc;
	rc = run_planned(o, req, own, sinks, info, err);
	free(own); /* run_start copied it; single's providers copied what they keep */
	return rc;
}
