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
#include "core/str.h"

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
	str_copy(run->info->model, sizeof run->info->model, model);
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

/* Sets the handoff-failure outcome: the text so far stands in (partial)
 * when there is one, else the run fails. */
static void handoff_failed(struct run *run, const char *text, const char *by,
                           const struct plan_member *to, const struct brg_error *e)
{
	struct step fake = {.name = "handoff", .m = to, .error = *e};
	if (e->code == BRG_E_CANCELLED)
		cancelled(run);
	else if (text)
		partial(run, text, by, &fake);
	else
		fail(run, e);
}

/* The critic on 'text'; false when the run ended (failure or cancel). */
static bool critique_once(struct run *run, struct step *b, const char *text, int round)
{
	struct route_plan *p = &run->plan;
	struct brg_error e;
	brg_error_clear(&e);
	step_init(b, run, "critique", "critic", &p->critic, round);
	char *fitted = carry_fit(run, text, &p->critic, &e);
	if (!fitted) {
		handoff_failed(run, text, p->generator.name, &p->critic, &e);
		return false;
	}
	prompt_pair(b, PROMPT_CRITIC, fmt("Question:\n%s\n\nAnswer:\n%s", run->goal, fitted));
	free(fitted);
	carry_advance(run);
	carry_inject(run, b, "the generator revises its answer unless the score is high enough");
	run->info->handoff_steps++;
	if (steps_run(run, b, 1)) {
		cancelled(run);
		return false;
	}
	if (!b->is_ok) {
		partial(run, text, p->generator.name, b);
		return false;
	}
	char what[64];
	if (b->score >= 0)
		snprintf(what, sizeof what, "score %.2f", b->score);
	else
		snprintf(what, sizeof what, "no score given");
	carry_note(run, b, what);
	return true;
}

/* The generator revises 'text' after critique 'crit'; the revision
 * replaces *text.  False when the run ended. */
static bool revise_once(struct run *run, char **text, double *conf, const char *crit, int round)
{
	struct route_plan *p = &run->plan;
	struct brg_error e;
	brg_error_clear(&e);
	char *fitted = carry_fit(run, crit, &p->generator, &e);
	if (!fitted) {
		handoff_failed(run, *text, p->generator.name, &p->generator, &e);
		return false;
	}
	struct step a;
	step_init(&a, run, "revise", "generator", &p->generator, round);
	prompt_conversation(&a, run);
	a.msgs[a.n_msgs++] = (struct chat_msg){"assistant", *text};
	const char *u = step_own(&a, fmt("A reviewer found these problems with your answer:\n%s\n\n"
	                                 "Write an improved answer to my last message. Reply with "
	                                 "the answer only.",
	                                 fitted));
	free(fitted);
	a.msgs[a.n_msgs++] = (struct chat_msg){"user", u ? u : ""};
	carry_advance(run);
	carry_inject(run, &a, "the critic reviews the revision");
	run->info->handoff_steps++;
	bool ok = false;
	if (steps_run(run, &a, 1)) {
		cancelled(run);
	} else if (!a.is_ok) {
		partial(run, *text, p->generator.name, &a);
	} else {
		carry_note(run, &a, NULL);
		char *t = strdup(step_text(&a, 0));
		ok = t != NULL;
		if (ok) {
			free(*text);
			*text = t;
			*conf = step_confidence(&a, 0);
		}
	}
	step_fini(&a);
	return ok;
}

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
	carry_advance(run);
	carry_inject(run, &a, "the critic reviews this answer");
	enum brg_err rc = steps_run(run, &a, 1);
	if (rc || !a.is_ok) {
		if (rc)
			cancelled(run);
		else
			fail(run, &a.error);
		step_fini(&a);
		return;
	}
	carry_note(run, &a, NULL);
	char *text = strdup(step_text(&a, 0));
	double conf = step_confidence(&a, 0);
	step_fini(&a);
	bool is_going = text != NULL;
	for (int round = 1; is_going && round <= s->critique_rounds; round++) {
		run->info->rounds = round;
		is_going = critique_once(run, &b, text, round);
		if (is_going && b.score >= s->critique_threshold) {
			conf = b.score; /* the critic scored this very answer */
			is_going = false;
		} else if (is_going) {
			is_going = revise_once(run, &text, &conf, step_text(&b, 0), round);
		}
		step_fini(&b);
	}
	run->info->confidence = conf;
	if (run->finish == GEN_FINISH_STOP && !run->info->is_partial && text)
		answer(run, text, p->generator.name);
	free(text);
}

/* ---- debate -------------------------------------------------------------- */

/* Builds round 'round' of the debate; later rounds show each participant
 * the others' previous answers, fitted to its budget.  False (err set)
 * when that cannot be done. */
static bool debate_round(struct run *run, struct step *steps, char **prev, int round,
                         struct brg_error *err)
{
	struct route_plan *p = &run->plan;
	bool ok = true;
	carry_advance(run); /* the participants answer as one step */
	for (size_t i = 0; i < p->n_members; i++) {
		struct step *st = &steps[i];
		step_init(st, run, "answer", "participant", &p->members[i], round);
		prompt_conversation(st, run);
		if (round > 1 && prev[i] && ok) {
			struct buf others;
			buf_init(&others, (size_t)PLAN_MAX_MEMBERS * ANSWER_CAP);
			for (size_t k = 0, n = 0; k < p->n_members; k++)
				if (k != i && prev[k] &&
				    buf_appendf(&others, "(%zu) %.*s\n\n", ++n, (int)ANSWER_CAP,
				                prev[k]))
					break;
			char *fitted = carry_fit(run, others.data ? others.data : "", st->m, err);
			buf_fini(&others);
			ok = fitted != NULL;
			st->msgs[st->n_msgs++] = (struct chat_msg){"assistant", prev[i]};
			const char *u = step_own(
			    st,
			    fmt("Other assistants answered:\n%s\nConsider their answers, then give "
			        "your best answer to my last message. Reply with the answer only.",
			        fitted ? fitted : ""));
			free(fitted);
			st->msgs[st->n_msgs++] = (struct chat_msg){"user", u ? u : ""};
		}
		carry_inject(run, st,
		             "the answers are compared; a reconciler writes the final one");
	}
	return ok;
}

/* The reconciler (or synthesizer) over the last answers. */
static void judge(struct run *run, struct step *steps, size_t n, const char *name, const char *role,
                  const char *prompt, const struct reduction *red, size_t winner)
{
	struct route_plan *p = &run->plan;
	struct step j;
	step_init(&j, run, name, role, &p->judge, run->info->rounds);
	char *list = list_answers(steps, n);
	struct brg_error e;
	brg_error_clear(&e);
	char *fitted = list ? carry_fit(run, list, &p->judge, &e) : NULL;
	free(list);
	if (!fitted) {
		if (!e.code)
			brg_fail(&e, BRG_E_NOMEM, "out of memory");
		handoff_failed(run, step_text(&steps[winner], 0), steps[winner].m->name, &p->judge,
		               &e);
		step_fini(&j);
		return;
	}
	const char *key = red->answer.kind == ANSWER_FREE ? NULL : red->answer.key;
	prompt_pair(&j, prompt,
	            fmt("Question:\n%s\n\nAnswers:\n%sAgreement: %.0f%%%s%s\n", run->goal, fitted,
	                red->agreement * 100, key ? "; most agree on: " : "", key ? key : ""));
	free(fitted);
	carry_advance(run);
	carry_inject(run, &j, "this answer goes to the user");
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
		struct brg_error e;
		brg_error_clear(&e);
		if (!debate_round(run, steps, prev, round, &e)) {
			const char *best = has_vote ? prev[index[red.winner]] : NULL;
			handoff_failed(run, best, best ? p->members[index[red.winner]].name : NULL,
			               &p->members[0], &e);
			for (size_t i = 0; i < p->n_members; i++)
				step_fini(&steps[i]);
			break;
		}
		run->info->rounds = round;
		if (round > 1)
			run->info->handoff_steps += (int)p->n_members;
		if (steps_run(run, steps, p->n_members)) {
			cancelled(run);
			break;
		}
		has_vote = vote(run, steps, p->n_members, &red, index);
		if (has_vote) {
			char what[64];
			snprintf(what, sizeof what, "round %d agreement %.2f", round,
			         red.agreement);
			carry_note(run, &steps[index[red.winner]], what);
		}
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
	carry_advance(run); /* the members answer as one step */
	for (size_t i = 0; i < p->n_members; i++) {
		step_init(&steps[i], run, "answer", "member", &p->members[i], 1);
		prompt_conversation(&steps[i], run);
		carry_inject(run, &steps[i], "the members' answers are put to a vote");
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

static const char *stage_role(const char *stage)
{
	return strcmp(stage, "draft") == 0    ? "drafter"
	       : strcmp(stage, "refine") == 0 ? "refiner"
	                                      : "validator";
}

/* Builds stage i on input 'text' (NULL: the conversation itself), the
 * input fitted to the stage model's budget.  False (err set) when the
 * input cannot be fitted. */
static bool stage_build(struct run *run, size_t i, const char *text, struct step *st,
                        struct brg_error *err)
{
	struct route_plan *p = &run->plan;
	const char *stage = p->stage_names[i];
	step_init(st, run, stage, stage_role(stage), &p->stages[i], 1);
	if (!text) {
		prompt_conversation(st, run);
	} else {
		char *fitted = carry_fit(run, text, st->m, err);
		if (!fitted)
			return false;
		prompt_pair(st, strcmp(stage, "validate") == 0 ? PROMPT_VALIDATOR : PROMPT_REFINER,
		            fmt("Question:\n%s\n\nAnswer:\n%s", run->goal, fitted));
		free(fitted);
	}
	carry_advance(run);
	carry_inject(run, st,
	             i + 1 < p->n_stages ? p->stage_names[i + 1] : "this answer goes to the user");
	return true;
}

/* Waits out a retriable failure's Retry-After (200 ms when none, at most
 * 2 s); false when the client left meanwhile. */
static bool backoff(struct run *run, const struct brg_error *e)
{
	int ms = e->retry_after_ms <= 0 ? 200 : e->retry_after_ms > 2000 ? 2000 : e->retry_after_ms;
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	return !(run->cancel && atomic_load(run->cancel));
}

/*
 * Runs stage i; st is settled on return (is_ok, error).  A retriable
 * failure gets one more try after its Retry-After; an output the
 * contamination check rates high is quarantined — dropped, the open
 * errors resolved — and the stage runs once more with fresh context; a
 * critical one, or a second high one, fails the stage.  BRG_E_CANCELLED
 * when the client went away.
 */
static enum brg_err stage_run(struct run *run, size_t i, const char *text, struct step *st)
{
	bool is_retried = false, is_quarantined = false;
	for (;;) {
		struct brg_error e;
		brg_error_clear(&e);
		if (!stage_build(run, i, text, st, &e)) {
			st->is_ok = false;
			st->error = e;
			return e.code == BRG_E_CANCELLED ? BRG_E_CANCELLED : BRG_OK;
		}
		if (steps_run(run, st, 1))
			return BRG_E_CANCELLED;
		if (!st->is_ok) {
			if (is_retried || !brg_err_is_retriable(st->error.code))
				return BRG_OK;
			is_retried = true;
			if (!backoff(run, &st->error))
				return BRG_E_CANCELLED;
			step_fini(st);
			continue;
		}
		struct contamination_report rep;
		enum contamination_severity sev = carry_check(run, st, &rep);
		if (sev < CONTAM_HIGH)
			return BRG_OK;
		if (sev == CONTAM_CRITICAL || is_quarantined) {
			st->is_ok = false;
			brg_fail(&st->error, BRG_E_ORCHESTRATION,
			         "the output of %s on %s is contaminated (%s): %s", st->name,
			         st->m->name, rep.issues[0].type, rep.issues[0].detail);
			return BRG_OK;
		}
		is_quarantined = true;
		carry_quarantine(run);
		step_fini(st);
	}
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
		struct step st;
		if (text)
			run->info->handoff_steps++;
		enum brg_err rc = stage_run(run, i, text, &st);
		bool is_ok = !rc && st.is_ok;
		if (rc) {
			cancelled(run);
		} else if (!st.is_ok && text) {
			partial(run, text, by, &st);
		} else if (!st.is_ok) {
			struct brg_error e = st.error;
			brg_fail(&e, e.code ? e.code : BRG_E_ORCHESTRATION,
			         "pipeline failed at its first stage (%s on %s): %s", st.name,
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
		fail(run, &(struct brg_error){.code = BRG_E_NOMEM, .message = "out of memory"});
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
	carry_advance(run);
	carry_inject(run, &st, "the samples are put to a vote");
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
