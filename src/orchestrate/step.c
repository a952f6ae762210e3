/*
 * step.c — running steps: one generation each, started together, waited
 * for together.  See orch_int.h.
 */
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "orchestrate/orch_int.h"

/* How often the wait looks at the client's cancel flag. */
#define CANCEL_POLL_MS 50

void step_init(struct step *st, struct run *run, const char *name, const char *role,
               const struct plan_member *m, int round)
{
	memset(st, 0, sizeof *st);
	st->name = name;
	st->role = role;
	st->m = m;
	st->round = round;
	st->n_choices = 1;
	st->params = run->gen.params;
	st->params.want_logprobs = true; /* confidence, where the producer can tell */
	st->score = -1;
	brg_error_clear(&st->error);
	for (size_t i = 0; i < STEP_MAX_CHOICES; i++)
		buf_init(&st->text[i], STEP_TEXT_MAX);
}

const char *step_own(struct step *st, char *text)
{
	if (!text || st->n_owned == sizeof st->owned / sizeof st->owned[0]) {
		free(text);
		return NULL;
	}
	st->owned[st->n_owned++] = text;
	return text;
}

/* Ends the step's span: failed with 'failure', else as the step ended. */
static void step_trace_end(struct step *st, const char *failure)
{
	if (!st->span.is_on)
		return;
	st->span.is_on = false;
	struct trace_span s;
	char name[TRACE_NAME_MAX];
	snprintf(name, sizeof name, "step %s", st->name);
	trace_span_init(&s, &st->span, TRACE_INTERNAL, name);
	trace_span_str(&s, "brigade.step", st->name);
	trace_span_str(&s, "brigade.role", st->role);
	trace_span_str(&s, "gen_ai.request.model", st->m->name);
	trace_span_int(&s, "brigade.round", st->round);
	if (failure || !st->is_ok)
		trace_span_fail(&s, failure ? failure : st->error.message);
	trace_submit(&s);
}

void step_fini(struct step *st)
{
	step_trace_end(st, "cancelled"); /* a step that never settled */
	if (st->s) {
		gen_stream_cancel(st->s);
		gen_stream_wait_all_done(st->s);
		gen_stream_free(st->s);
		st->s = NULL;
	}
	for (size_t i = 0; i < st->n_owned; i++)
		free(st->owned[i]);
	st->n_owned = 0;
	for (size_t i = 0; i < STEP_MAX_CHOICES; i++)
		buf_fini(&st->text[i]);
}

const char *step_text(const struct step *st, size_t i)
{
	return st->text[i].data ? st->text[i].data : "";
}

double step_confidence(const struct step *st, size_t i)
{
	const struct gen_result *r = &st->res[i];
	if (r->n_logprobs <= 0 || !isfinite(r->logprob_sum))
		return -1;
	return exp(r->logprob_sum / r->n_logprobs);
}

void run_note_model(struct run *run, const char *name)
{
	struct orch_info *in = run->info;
	for (size_t i = 0; i < in->n_models_used; i++)
		if (strcmp(in->models_used[i], name) == 0)
			return;
	if (in->n_models_used < ORCH_MAX_USED)
		snprintf(in->models_used[in->n_models_used++], sizeof in->models_used[0], "%s",
		         name);
}

static void step_start(struct run *run, struct step *st)
{
	st->t0_ms = brg_now_ms();
	if (trace_open_child(&st->span, run->gen.traceparent))
		trace_format(&st->span.ctx, st->traceparent);
	st->s = gen_stream_new(st->n_choices, STEP_TEXT_MAX);
	struct brg_error e;
	brg_error_clear(&e);
	if (!st->s) {
		brg_fail(&st->error, BRG_E_NOMEM, "out of memory");
		for (size_t i = 0; i < st->n_choices; i++)
			st->is_done[i] = true;
		return;
	}
	struct sink sinks[STEP_MAX_CHOICES];
	for (size_t i = 0; i < st->n_choices; i++)
		sinks[i] = gen_stream_sink(st->s, i);
	struct gen_request g = {
	    .model = st->m->t.model,
	    .msgs = st->msgs,
	    .n_msgs = st->n_msgs,
	    .params = st->params,
	    .n_choices = st->n_choices,
	    .cancel = gen_stream_cancel_flag(st->s),
	    .traceparent = st->span.is_on ? st->traceparent : run->gen.traceparent,
	};
	enum brg_err rc = fallback_generate(run->fallback, st->m->t.p, &g, sinks, &e);
	if (rc) {
		struct gen_result res = {.finish = GEN_FINISH_ERROR, .error = e};
		res.error.code = rc;
		for (size_t i = 0; i < st->n_choices; i++)
			gen_stream_fail(st->s, i, &res);
	}
}

/* Takes what arrived; true once every choice is done. */
static bool step_collect(struct step *st)
{
	if (!st->s)
		return true;
	gen_stream_ack(st->s);
	bool all = true;
	for (size_t i = 0; i < st->n_choices; i++) {
		if (st->is_done[i])
			continue;
		if (gen_stream_take(st->s, i, &st->text[i], &st->is_done[i], &st->res[i])) {
			gen_stream_cancel(st->s); /* over the text cap: stop it */
		}
		all &= st->is_done[i];
	}
	return all;
}

/* Sets is_ok / error from the choices' results. */
static void step_settle(struct step *st)
{
	st->elapsed_ms = brg_now_ms() - st->t0_ms;
	st->is_ok = st->error.code == BRG_OK;
	for (size_t i = 0; st->is_ok && i < st->n_choices; i++) {
		const struct gen_result *r = &st->res[i];
		if (r->finish == GEN_FINISH_STOP || r->finish == GEN_FINISH_LENGTH)
			continue;
		st->is_ok = false;
		if (r->finish == GEN_FINISH_ERROR && r->error.code)
			st->error = r->error;
		else
			brg_fail(&st->error, BRG_E_ORCHESTRATION, "the step was interrupted");
	}
	step_trace_end(st, NULL);
}

static void step_event(struct run *run, const struct step *st)
{
	struct orch_info *in = run->info;
	in->total_steps++;
	run->n_prompt += st->res[0].n_prompt;
	for (size_t i = 0; i < st->n_choices; i++)
		run->n_completion += st->res[i].n_completion;
	if (!st->is_ok)
		log_warn("orchestration step %s on %s failed: %s", st->name, st->m->name,
		         st->error.message);
	if (!run->on_step)
		return;
	struct orch_step_event ev = {
	    .index = ++run->n_events,
	    .round = st->round,
	    .name = st->name,
	    .role = st->role,
	    .model = st->m->name,
	    .text = st->is_ok ? step_text(st, 0) : "",
	    .error = st->is_ok ? NULL : st->error.message,
	    .score = st->score,
	    .elapsed_ms = st->elapsed_ms,
	};
	run->on_step(run->step_ud, &ev);
}

/* Stops every step and waits until their producers let go. */
static void steps_cancel(struct step *steps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (steps[i].s)
			gen_stream_cancel(steps[i].s);
	for (size_t i = 0; i < n; i++)
		if (steps[i].s)
			gen_stream_wait_all_done(steps[i].s);
}

enum brg_err steps_run(struct run *run, struct step *steps, size_t n)
{
	bool done[PLAN_MAX_MEMBERS * 2] = {false};
	if (n > sizeof done / sizeof done[0])
		n = sizeof done / sizeof done[0];
	for (size_t i = 0; i < n; i++)
		step_start(run, &steps[i]);
	for (;;) {
		size_t n_left = 0;
		struct pollfd fds[sizeof done / sizeof done[0]];
		for (size_t i = 0; i < n; i++) {
			if (done[i])
				continue;
			if (step_collect(&steps[i])) {
				done[i] = true;
				step_settle(&steps[i]);
				if (steps[i].score < 0 && strcmp(steps[i].name, "critique") == 0)
					steps[i].score =
					    answer_parse_score(step_text(&steps[i], 0));
				step_event(run, &steps[i]);
				continue;
			}
			fds[n_left++] =
			    (struct pollfd){.fd = gen_stream_fd(steps[i].s), .events = POLLIN};
		}
		if (!n_left) {
			/* In plan order, not finishing order: models_used is stable. */
			for (size_t i = 0; i < n; i++)
				run_note_model(run, steps[i].m->name);
			return BRG_OK;
		}
		if (run->cancel && atomic_load(run->cancel)) {
			steps_cancel(steps, n);
			return BRG_E_CANCELLED;
		}
		poll(fds, n_left, CANCEL_POLL_MS);
	}
}
