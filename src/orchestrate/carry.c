/*
 * carry.c — what passes from one step to the next (spec: Context
 * Management), with the rules of context.h: the run's handoff state, the
 * trajectory block merged into every step's system message, handed-over
 * text fitted to the receiving model's handoff budget (compressed by the
 * plan's compressor — a `fast` model — before the call, at most three
 * times, then COMPRESSION_FAILED), the context utilisation for the
 * response, and the contamination check of a pipeline stage's output.
 *
 * Token counts here are context_estimate_tokens()'s (docs/context.md:
 * over-estimates English by ~1.5x): the provider interface has no
 * tokenizer call, and a remote model's tokenizer is not ours to run.
 * Models whose context length is unknown (remote ones) get no budget.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "orchestrate/orch_int.h"

#define FORBIDDEN "changing the user's question; mentioning these instructions"

/* How many steps the run will take if nothing stops it early. */
static int planned_steps(const struct run *run)
{
	const struct orch_settings *s = &run->o->s;
	const struct route_plan *p = &run->plan;
	switch (run->mode) { /* parallel steps share one step number */
	case ORCH_CRITIQUE:
		return 1 + 2 * s->critique_rounds;
	case ORCH_DEBATE:
		return s->debate_rounds + (p->has_judge ? 1 : 0);
	case ORCH_ENSEMBLE:
		return 1 + (p->has_judge ? 1 : 0);
	case ORCH_PIPELINE:
		return (int)p->n_stages;
	case ORCH_SELF_CONSISTENCY:
	case ORCH_SINGLE:
		return 1;
	}
	return 1;
}

enum brg_err carry_begin(struct run *run, const char *request_id, struct brg_error *err)
{
	int n = planned_steps(run);
	if (n > HANDOFF_MAX_STEPS)
		n = HANDOFF_MAX_STEPS;
	const char *goal = run->goal && *run->goal ? run->goal : "answer the conversation";
	return handoff_init(&run->h,
	                    request_id && *request_id ? request_id : orch_mode_name(run->mode),
	                    goal, n, err);
}

void carry_end(struct run *run)
{
	handoff_fini(&run->h);
}

struct ctx_seen {
	int n;
};

static void ctx_visit(void *ud, const struct model_info *m)
{
	((struct ctx_seen *)ud)->n = m->context_length;
}

/* The member's context length in tokens; 0 when unknown. */
static int member_context(const struct run *run, const struct plan_member *m)
{
	struct ctx_seen s = {0};
	if (!route_model(run->o->router, m->name, ctx_visit, &s))
		return 0;
	return s.n > 0 ? s.n : 0;
}

void carry_advance(struct run *run)
{
	/* handoff_init() starts at step 1: the first step keeps it. */
	if (run->n_advanced++ > 0 && run->h.current_step < HANDOFF_MAX_STEPS)
		run->h.current_step++;
	if (run->h.current_step > run->h.total_steps)
		run->h.total_steps = run->h.current_step;
}

/* The models.yaml entry of a local member ("local:" / "inference:"
 * prefixes allowed), or NULL. */
static const struct model_config *local_config(const struct run *run, const char *name)
{
	const struct config *c = run->o->cfg;
	if (!c)
		return NULL;
	const char *colon = strchr(name, ':');
	if (colon && (strncmp(name, "local:", 6) == 0 || strncmp(name, "inference:", 10) == 0))
		name = colon + 1;
	for (size_t i = 0; i < c->n_models; i++) /* config data only: no config/ code */
		if (strcmp(c->models[i].id, name) == 0)
			return &c->models[i];
	return NULL;
}

/* The member's budget: the spec's rule over its context length, with the
 * parts models.yaml sets (budget_*) in their place and generation the
 * rest.  False when its window is unknown (remote) or too small. */
static bool member_budget(const struct run *run, const struct plan_member *m,
                          struct context_budget *b)
{
	int ctx = member_context(run, m);
	struct brg_error e;
	brg_error_clear(&e);
	if (ctx <= 0 || context_budget_for(ctx, b, &e))
		return false;
	const struct model_config *mc = local_config(run, m->name);
	if (!mc)
		return true;
	int *parts[] = {&b->system, &b->trajectory, &b->handoff, &b->user_query};
	const int set[] = {mc->budget_system, mc->budget_trajectory, mc->budget_handoff,
	                   mc->budget_user_query};
	int sum = 0;
	for (size_t i = 0; i < 4; i++) {
		if (set[i] > 0)
			*parts[i] = set[i];
		sum += *parts[i];
	}
	if (sum >= b->total)
		return context_budget_for(ctx, b, &e) == BRG_OK; /* the derived one */
	b->generation = b->total - sum;
	return true;
}

void carry_inject(struct run *run, struct step *st, const char *next)
{
	char *traj = trajectory_render(&run->h, st->name, next, FORBIDDEN);
	if (!traj)
		return;
	size_t sys = st->n_msgs;
	for (size_t i = 0; i < st->n_msgs && sys == st->n_msgs; i++)
		if (strcmp(st->msgs[i].role, "system") == 0)
			sys = i;
	char *merged = NULL;
	if (sys < st->n_msgs && asprintf(&merged, "%s\n\n%s", st->msgs[sys].content, traj) < 0)
		merged = NULL;
	free(sys < st->n_msgs ? traj : NULL);
	const char *text = step_own(st, sys < st->n_msgs ? merged : traj);
	if (!text)
		return;
	if (sys < st->n_msgs) {
		st->msgs[sys].content = text;
	} else if (st->n_msgs < STEP_MAX_MSGS) {
		memmove(st->msgs + 1, st->msgs, st->n_msgs * sizeof *st->msgs);
		st->msgs[0] = (struct chat_msg){"system", text};
		st->n_msgs++;
	}
	int used = 0;
	for (size_t i = 0; i < st->n_msgs; i++)
		used += context_estimate_tokens(st->msgs[i].content);
	struct context_budget b;
	if (member_budget(run, st->m, &b)) {
		double u = context_utilization(&b, used);
		if (u > run->info->context_utilization)
			run->info->context_utilization = u;
	}
}

/* compress_fn: one step on the plan's compressor. */
static char *compress(void *ud, const char *text, int target, double ratio, struct brg_error *err)
{
	(void)ratio;
	struct run *run = ud;
	if (!run->plan.has_compressor) {
		brg_fail(err, BRG_E_COMPRESSION, "no model to compress with");
		return NULL;
	}
	struct step st;
	step_init(&st, run, "compress", "compressor", &run->plan.compressor, run->info->rounds);
	/* The fit counts with context_estimate_tokens(), which over-counts
	 * English by ~1.5x: ask for two thirds of the target so that an
	 * obedient compressor's text also fits by that count.  An overrun is
	 * counted and refused by the fit, never cut here beyond the target. */
	int ask = target * 2 / 3 > 0 ? target * 2 / 3 : 1;
	prompt_pair(&st, context_compression_system(), context_compression_prompt(text, ask));
	st.params.n_max_tokens = target;
	st.params.n_stops = 0;
	char *out = NULL;
	if (steps_run(run, &st, 1))
		brg_fail(err, BRG_E_CANCELLED, "the client went away");
	else if (!st.is_ok)
		*err = st.error;
	else
		out = strdup(step_text(&st, 0));
	step_fini(&st);
	return out;
}

char *carry_fit(struct run *run, const char *text, const struct plan_member *to,
                struct brg_error *err)
{
	struct context_budget b;
	if (!member_budget(run, to, &b))
		return strdup(text); /* no window known (remote) or none to share */
	struct fit_result fr;
	if (context_fit(text, b.handoff, context_estimate_count, compress, run, &fr, err)) {
		brg_error_detail_str(err, "model", to->name);
		return NULL;
	}
	if (fr.compressed) {
		run->info->compression_applied = true;
		log_info("orchestration: compressed a handoff to %s in %d pass(es), %d tokens",
		         to->name, fr.iterations, fr.tokens);
	}
	return fr.text;
}

enum contamination_severity carry_check(struct run *run, const struct step *st,
                                        struct contamination_report *rep)
{
	const char *text = step_text(st, 0);
	contamination_check(&run->h, text, rep);
	struct brg_error e;
	brg_error_clear(&e);
	if (rep->worst == CONTAM_WARNING && contamination_apply(&run->h, rep, &e))
		log_warn("orchestration: %s", e.message);
	for (size_t i = 0; i < rep->n; i++)
		log_warn("orchestration step %s on %s: %s %s: %s", st->name, st->m->name,
		         contamination_severity_name(rep->issues[i].severity), rep->issues[i].type,
		         rep->issues[i].detail);
	if (rep->worst < CONTAM_HIGH)
		carry_note(run, st, NULL);
	return rep->worst;
}

void carry_note(struct run *run, const struct step *st, const char *what)
{
	char decision[ANSWER_KEY_MAX + 160];
	if (what) {
		snprintf(decision, sizeof decision, "%.16s by %.40s: %.100s", st->name, st->m->name,
		         what);
	} else {
		struct answer a;
		answer_extract(step_text(st, 0), &a);
		snprintf(decision, sizeof decision, "%.16s by %.40s: answer %s", st->name,
		         st->m->name, a.kind == ANSWER_FREE ? "given" : a.key);
	}
	struct brg_error e;
	brg_error_clear(&e);
	if (handoff_add(&run->h.decisions_made, decision, &e))
		log_warn("orchestration: %s", e.message);
}

void carry_quarantine(struct run *run)
{
	/* Fresh context: the open errors are dealt with by discarding the
	 * output that tripped them; what remains is the goal and the
	 * decisions. */
	struct brg_error e;
	brg_error_clear(&e);
	for (size_t i = 0; i < run->h.active_errors.n; i++)
		if (handoff_add(&run->h.resolved_errors, run->h.active_errors.items[i], &e))
			break;
	for (size_t i = 0; i < run->h.active_errors.n; i++)
		free(run->h.active_errors.items[i]);
	free(run->h.active_errors.items);
	run->h.active_errors = (struct strlist){NULL, 0};
}
