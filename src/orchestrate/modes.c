/*
 * modes.c — the multi-model modes, each a short sequence of steps (see
 * orchestrate.h for what each does and orch_int.h for a step).  Each mode
 * ends by filling run->final and run->finish, or run->error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "orchestrate/orch_int.h"

#define ANSWER_CAP ((size_t)256 << 10) /* one member's text inside a prompt */

/* ---- common ------------------------------------------------------------- */

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static char *fmt(const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	char *s = NULL;
	if (vasprintf(&s, f, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

static void fail(struct run *run, const struct brg_error *e)
{
	run->finish = GEN_FINISH_ERROR;
	run->error = *e;
	if (run->error.code == BRG_OK)
		brg_fail(&run->error, BRG_E_ORCHESTRATION, "orchestration failed");
}

static void cancelled(struct run *run)
{
	run->finish = GEN_FINISH_CANCELLED;
}

static void answer(struct run *run, const char *text, const char *model)
{
	buf_reset(&run->final);
	if (buf_append(&run->final, text, strlen(text))) {
		struct brg_error e;
		brg_error_clear(&e);
		brg_fail(&e, BRG_E_TOO_LARGE, "the final answer exceeds the output limit");
		fail(run, &e);
		return;
	}
	run->finish = GEN_FINISH_STOP;
	snprintf(run->info->model, sizeof run->info->model, "%s", model);
}

/* The best text so far stands in for a failed later step (saga). */
static void partial(struct run *run, const char *text, const char *model, const struct step *st)
{
	answer(run, text, model);
	if (run->finish != GEN_FINISH_STOP)
		return;
	run->finish = GEN_FINISH_PARTIAL;
	run->info->is_partial = true;
	snprintf(run->info->error, sizeof run->info->error, "step %.32s on %.100s failed: %s",
	         st->name, st->m->name, st->error.message);
}

/* "(1) text\n\n(2) text..." of the ok choices of steps. */
static char *list_answers(struct step *steps, size_t n)
{
	struct buf b;
	buf_init(&b, (size_t)PLAN_MAX_MEMBERS * ANSWER_CAP);
	int k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!steps[i].is_ok)
			continue;
		const char *t = step_text(&steps[i], 0);
		size_t len = strlen(t) < ANSWER_CAP ? strlen(t) : ANSWER_CAP;
		if (buf_appendf(&b, "(%d) %.*s\n\n", ++k, (int)len, t)) {
			buf_fini(&b);
			return NULL;
		}
	}
	return buf_take(&b);
}

/* Votes over the ok steps' first choices; false when none is ok. */
static bool vote(struct run *run, struct step *steps, size_t n, struct reduction *red,
                 size_t *index)
{
	struct candidate c[REDUCE_MAX_CANDIDATES];
	size_t m = 0;
	for (size_t i = 0; i < n && m < REDUCE_MAX_CANDIDATES; i++) {
		if (!steps[i].is_ok)
			continue;
		index[m] = i;
		c[m++] = (struct candidate){step_text(&steps[i], 0), step_confidence(&steps[i], 0)};
	}
	struct brg_error e;
	brg_error_clear(&e);
	if (!m || reduce(run->o->s.reducer, c, m, red, &e))
		return false;
	run->info->agreement = red->agreement;
	run->info->confidence = red->confidence;
	return true;
}

/* The first failed step's error, for a mode with no usable answer. */
static const struct brg_error *first_error(const struct step *steps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!steps[i].is_ok)
			return &steps[i].error;
	return &steps[0].error;
}

/* ---- critique ------------------------------------------------------------ */

/* A → B critiques → A revises, until the critic's score reaches the
 * threshold or the rounds run out.  A failing critic or revision leaves
 * the last good answer, marked partial. */
void mode_critique(struct run *run)
{
	struct route_plan *p = &run->plan;
	const struct orch_settings *s = &run->o->s;
	struct step a, b;
	step_init(&a, run, "generate", "generator", &p->generator, 1);
	prompt_conversation(&a, run);
	if (steps_run(run, &a, 1)) {
		cancelled(run);
		step_fini(&a);
		return;
	}
	if (!a.is_ok) {
		fail(run, &a.error);
		step_fini(&a);
		return;
	}
	char *text = strdup(step_text(&a, 0));
	double conf = step_confidence(&a, 0);
	step_fini(&a);
	bool is_done = false;
	for (int round = 1; text && !is_done && round <= s->critique_rounds; round++) {
		run->info->rounds = round;
		step_init(&b, run, "critique", "critic", &p->critic, round);
		prompt_pair(&b, PROMPT_CRITIC,
		            fmt("Question:\n%s\n\nAnswer:\n%s", run->goal, text));
		run->info->handoff_steps++;
		if (steps_run(run, &b, 1)) {
			cancelled(run);
		} else if (!b.is_ok) {
			partial(run, text, p->generator.name, &b);
		} else if (b.score >= s->critique_threshold) {
			conf = b.score; /* the critic scored this very answer */
			is_done = true;
		} else {
			step_init(&a, run, "revise", "generator", &p->generator, round);
			prompt_conversation(&a, run);
			a.msgs[a.n_msgs++] = (struct chat_msg){"assistant", text};
			a.msgs[a.n_msgs++] = (struct chat_msg){
			    "user",
			    step_own(&a, fmt("A reviewer found these problems with your "
			                     "answer:\n%s\n\nWrite an improved answer to my "
			                     "last message. Reply with the answer only.",
			                     step_text(&b, 0)))};
			if (!a.msgs[a.n_msgs - 1].content)
				a.msgs[a.n_msgs - 1].content = "";
			run->info->handoff_steps++;
			if (steps_run(run, &a, 1)) {
				cancelled(run);
			} else if (!a.is_ok) {
				partial(run, text, p->generator.name, &a);
			} else {
				free(text);
				text = strdup(step_text(&a, 0));
				conf = step_confidence(&a, 0);
			}
			step_fini(&a);
		}
		if (run->finish != GEN_FINISH_STOP || run->info->is_partial)
			is_done = true;
		step_fini(&b);
	}
	run->info->confidence = conf;
	if (run->finish == GEN_FINISH_STOP && !run->info->is_partial && text)
		answer(run, text, p->generator.name);
	free(text);
}

/* ---- debate -------------------------------------------------------------- */

static void debate_round(struct run *run, struct step *steps, char **prev, int round)
{
	struct route_plan *p = &run->plan;
	for (size_t i = 0; i < p->n_members; i++) {
		struct step *st = &steps[i];
		step_init(st, run, "answer", "participant", &p->members[i], round);
		prompt_conversation(st, run);
		if (round == 1 || !prev[i])
			continue;
		struct buf others;
		buf_init(&others, (size_t)PLAN_MAX_MEMBERS * ANSWER_CAP);
		for (size_t k = 0, n = 0; k < p->n_members; k++)
			if (k != i && prev[k] &&
			    buf_appendf(&others, "(%zu) %.*s\n\n", ++n, (int)ANSWER_CAP, prev[k]))
				break;
		st->msgs[st->n_msgs++] = (struct chat_msg){"assistant", prev[i]};
		const char *u = step_own(
		    st,
		    fmt("Other assistants answered:\n%s\nConsider their answers, then give your "
		        "best answer to my last message. Reply with the answer only.",
		        others.data ? others.data : ""));
		st->msgs[st->n_msgs++] = (struct chat_msg){"user", u ? u : ""};
		buf_fini(&others);
	}
}

/* The reconciler (or synthesizer) over the last answers. */
static void judge(struct run *run, struct step *steps, size_t n, const char *name, const char *role,
                  const char *prompt, const struct reduction *red, size_t winner)
{
	struct route_plan *p = &run->plan;
	struct step j;
	step_init(&j, run, name, role, &p->judge, run->info->rounds);
	char *list = list_answers(steps, n);
	const char *key = red->answer.kind == ANSWER_FREE ? NULL : red->answer.key;
	prompt_pair(&j, prompt,
	            fmt("Question:\n%s\n\nAnswers:\n%sAgreement: %.0f%%%s%s\n", run->goal,
	                list ? list : "", red->agreement * 100, key ? "; most agree on: " : "",
	                key ? key : ""));
	free(list);
	run->info->handoff_steps++;
	if (steps_run(run, &j, 1))
		cancelled(run);
	else if (!j.is_ok)
		partial(run, step_text(&steps[winner], 0), steps[winner].m->name, &j);
	else
		answer(run, step_text(&j, 0), p->judge.name);
	step_fini(&j);
}

void mode_debate(struct run *run)
{
	struct route_plan *p = &run->plan;
	struct step steps[PLAN_MAX_MEMBERS];
	char *prev[PLAN_MAX_MEMBERS] = {NULL};
	struct reduction red = {0};
	size_t index[REDUCE_MAX_CANDIDATES];
	bool has_vote = false;
	for (int round = 1; round <= run->o->s.debate_rounds; round++) {
		debate_round(run, steps, prev, round);
		run->info->rounds = round;
		if (round > 1)
			run->info->handoff_steps += (int)p->n_members;
		if (steps_run(run, steps, p->n_members)) {
			cancelled(run);
			break;
		}
		has_vote = vote(run, steps, p->n_members, &red, index);
		for (size_t i = 0; i < p->n_members; i++) {
			if (steps[i].is_ok) {
				free(prev[i]);
				prev[i] = strdup(step_text(&steps[i], 0));
			}
		}
		bool is_last =
		    !has_vote || red.agreement >= 1.0 || round == run->o->s.debate_rounds;
		if (!has_vote)
			fail(run, first_error(steps, p->n_members));
		else if (is_last && p->has_judge)
			judge(run, steps, p->n_members, "reconcile", "reconciler",
			      PROMPT_RECONCILER, &red, index[red.winner]);
		else if (is_last)
			answer(run, step_text(&steps[index[red.winner]], 0),
			       steps[index[red.winner]].m->name);
		for (size_t i = 0; i < p->n_members; i++)
			step_fini(&steps[i]);
		if (is_last)
			break;
	}
	for (size_t i = 0; i < p->n_members; i++)
		free(prev[i]);
}

/* ---- ensemble ------------------------------------------------------------ */

/* Every member once, in parallel; a vote; below min_agreement a failure
 * (or the best answer, flagged, when so configured); the synthesizer, if
 * any, writes the final answer. */
void mode_ensemble(struct run *run)
{
	struct route_plan *p = &run->plan;
	const struct orch_settings *s = &run->o->s;
	struct step steps[PLAN_MAX_MEMBERS];
	for (size_t i = 0; i < p->n_members; i++) {
		step_init(&steps[i], run, "answer", "member", &p->members[i], 1);
		prompt_conversation(&steps[i], run);
	}
	run->info->rounds = 1;
	struct reduction red = {0};
	size_t index[REDUCE_MAX_CANDIDATES];
	if (steps_run(run, steps, p->n_members)) {
		cancelled(run);
	} else if (!vote(run, steps, p->n_members, &red, index)) {
		fail(run, first_error(steps, p->n_members));
	} else if (red.agreement < s->min_agreement && !s->is_best_on_disagreement) {
		struct brg_error e;
		brg_error_clear(&e);
		brg_fail(&e, BRG_E_ORCHESTRATION,
		         "the ensemble did not agree: agreement %.2f is below "
		         "ensemble_min_agreement %.2f (%zu of %zu answers agree)",
		         red.agreement, s->min_agreement, red.n_agree, p->n_members);
		brg_error_detail_int(&e, "agreeing", (long long)red.n_agree);
		brg_error_detail_int(&e, "members", (long long)p->n_members);
		brg_error_detail_str(&e, "reducer", reduce_strategy_name(s->reducer));
		fail(run, &e);
	} else if (p->has_judge) {
		judge(run, steps, p->n_members, "synthesize", "synthesizer", PROMPT_SYNTHESIZER,
		      &red, index[red.winner]);
	} else {
		answer(run, step_text(&steps[index[red.winner]], 0),
		       steps[index[red.winner]].m->name);
	}
	for (size_t i = 0; i < p->n_members; i++)
		step_fini(&steps[i]);
}

/* ---- pipeline ------------------------------------------------------------ */

/* Retriable failures get one more try after their Retry-After (200 ms
 * when none, at most 2 s); the caller decides what a second failure
 * means. */
static enum brg_err run_with_retry(struct run *run, struct step *st)
{
	enum brg_err rc = steps_run(run, st, 1);
	if (rc || st->is_ok || !brg_err_is_retriable(st->error.code))
		return rc;
	int ms = st->error.retry_after_ms <= 0     ? 200
	         : st->error.retry_after_ms > 2000 ? 2000
	                                           : st->error.retry_after_ms;
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	if (run->cancel && atomic_load(run->cancel))
		return BRG_E_CANCELLED;
	const struct plan_member *m = st->m;
	const char *name = st->name, *role = st->role;
	struct chat_msg msgs[STEP_MAX_MSGS];
	size_t n_msgs = st->n_msgs;
	memcpy(msgs, st->msgs, sizeof msgs);
	char *owned[4];
	size_t n_owned = st->n_owned;
	memcpy(owned, st->owned, sizeof owned);
	st->n_owned = 0; /* keep the texts the messages point into */
	step_fini(st);
	step_init(st, run, name, role, m, 1);
	memcpy(st->msgs, msgs, sizeof msgs);
	st->n_msgs = n_msgs;
	memcpy(st->owned, owned, sizeof owned);
	st->n_owned = n_owned;
	return steps_run(run, st, 1);
}

static const char *stage_role(const char *stage)
{
	return strcmp(stage, "draft") == 0    ? "drafter"
	       : strcmp(stage, "refine") == 0 ? "refiner"
	                                      : "validator";
}

/* Draft → refine → validate; a stage that fails (after its retry) leaves
 * the last finished stage's text as a partial answer (the saga). */
void mode_pipeline(struct run *run)
{
	struct route_plan *p = &run->plan;
	char *text = NULL;
	const char *by = NULL;
	run->info->rounds = 1;
	for (size_t i = 0; i < p->n_stages; i++) {
		const char *stage = p->stage_names[i];
		struct step st;
		step_init(&st, run, stage, stage_role(stage), &p->stages[i], 1);
		if (!text)
			prompt_conversation(&st, run);
		else
			prompt_pair(
			    &st, strcmp(stage, "validate") == 0 ? PROMPT_VALIDATOR : PROMPT_REFINER,
			    fmt("Question:\n%s\n\nAnswer:\n%s", run->goal, text));
		if (text)
			run->info->handoff_steps++;
		enum brg_err rc = run_with_retry(run, &st);
		bool is_ok = !rc && st.is_ok;
		if (rc) {
			cancelled(run);
		} else if (!st.is_ok && text) {
			partial(run, text, by, &st);
		} else if (!st.is_ok) {
			struct brg_error e = st.error;
			brg_fail(&e, e.code ? e.code : BRG_E_ORCHESTRATION,
			         "pipeline failed at its first stage (%s on %s): %s", stage,
			         st.m->name, st.error.message);
			fail(run, &e);
		} else {
			free(text);
			text = strdup(step_text(&st, 0));
			by = st.m->name;
			run->info->completed_steps++;
			run->info->confidence = step_confidence(&st, 0);
		}
		step_fini(&st);
		if (!is_ok || !text)
			break;
	}
	if (text && run->finish == GEN_FINISH_STOP &&
	    run->info->completed_steps == (int)p->n_stages)
		answer(run, text, by);
	else if (!text && run->finish == GEN_FINISH_STOP)
		fail(run, &(struct brg_error){.code = BRG_E_NOMEM});
	free(text);
}

/* ---- self-consistency ------------------------------------------------------ */

/* One model, n samples in one batched call, a vote. */
void mode_self_consistency(struct run *run)
{
	const struct orch_settings *s = &run->o->s;
	struct step st;
	step_init(&st, run, "sample", "model", &run->plan.members[0], 1);
	prompt_conversation(&st, run);
	st.n_choices = (size_t)s->sc_samples;
	/* Samples of a greedy decoder are all the same answer. */
	if (st.params.temperature <= 0)
		st.params.temperature = 0.7f;
	run->info->rounds = 1;
	if (steps_run(run, &st, 1)) {
		cancelled(run);
		step_fini(&st);
		return;
	}
	struct candidate c[REDUCE_MAX_CANDIDATES];
	size_t index[REDUCE_MAX_CANDIDATES], m = 0;
	for (size_t i = 0; i < st.n_choices; i++) {
		const struct gen_result *r = &st.res[i];
		if (r->finish != GEN_FINISH_STOP && r->finish != GEN_FINISH_LENGTH)
			continue;
		index[m] = i;
		c[m++] = (struct candidate){step_text(&st, i), step_confidence(&st, i)};
	}
	struct reduction red;
	struct brg_error e;
	brg_error_clear(&e);
	if (!m || reduce(s->reducer, c, m, &red, &e)) {
		fail(run, st.error.code ? &st.error : &e);
	} else {
		run->info->agreement = red.agreement;
		run->info->confidence = red.confidence;
		answer(run, step_text(&st, index[red.winner]), st.m->name);
	}
	step_fini(&st);
}
