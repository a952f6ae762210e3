/*
 * test_orchestrate.c — the multi-model modes against a deterministic
 * scripted provider: each mode's exact step sequence, round limits and
 * early stops, the ensemble's min_agreement failure, the pipeline's saga
 * (partial answers), self-consistency, cancellation, step events, plans
 * from presets and the pool, and that parallel members cost the slowest
 * one, not the sum.
 *
 * The scripted provider answers each generate() from its own thread after
 * a delay, like a real one.  What it answers depends on the model and on
 * the kind of step, which it recognises from the prompt (the orchestrator's
 * fixed instructions); every call is logged as "model:kind", so a test
 * compares the exact sequence.  Every wait has a timeout.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "testutil.h"

#include "config/config.h"
#include "core/err.h"
#include "core/gen.h"
#include "orchestrate/orch_int.h"
#include "orchestrate/orchestrate.h"
#include "provider/provider.h"
#include "route/plan.h"
#include "route/route.h"

#define WAIT_MS  5000
#define LOG_MAX  64
#define TEXT_MAX 512

/* ---- the script ------------------------------------------------------------ */

/* What one call answers: text, or an error code (then text is the message). */
struct reply {
	char text[TEXT_MAX];
	enum brg_err fail;
};

/* Per test: answer(model, kind, call number of that model+kind (1-based),
 * choice index) → reply. */
typedef void (*script_fn)(const char *model, const char *kind, int nth, size_t choice,
                          struct reply *out);

static struct {
	pthread_mutex_t mu;
	script_fn script;
	int delay_ms;
	char log[LOG_MAX][96];
	size_t n_log;
	int n_without_trajectory; /* calls whose system message lacked the block */
	char last_system[2048];
	int n_threads_live;
	pthread_cond_t cv;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The kind of step, from its instructions (the system message starts with
 * them; the trajectory block follows) or its last user message. */
static const char *kind_of(const struct gen_request *r)
{
	const char *sys =
	    r->n_msgs && strcmp(r->msgs[0].role, "system") == 0 ? r->msgs[0].content : "";
	const char *last = r->n_msgs ? r->msgs[r->n_msgs - 1].content : "";
	if (starts(sys, PROMPT_CRITIC))
		return "critique";
	if (starts(sys, PROMPT_RECONCILER))
		return "reconcile";
	if (starts(sys, PROMPT_SYNTHESIZER))
		return "synthesize";
	if (starts(sys, PROMPT_REFINER))
		return "refine";
	if (starts(sys, PROMPT_VALIDATOR))
		return "validate";
	if (starts(sys, context_compression_system()))
		return "compress";
	if (starts(last, "A reviewer found"))
		return "revise";
	if (starts(last, "Other assistants answered"))
		return "rebut";
	return "answer";
}

struct job {
	char model[64];
	char kind[16];
	int nth;
	size_t n;
	struct sink sinks[STEP_MAX_CHOICES];
	const atomic_bool *cancel;
};

static void *job_main(void *arg)
{
	struct job *j = arg;
	for (int waited = 0; waited < S.delay_ms; waited += 5) {
		if (j->cancel && atomic_load(j->cancel))
			break;
		sleep_ms(5);
	}
	for (size_t i = 0; i < j->n; i++) {
		struct reply rep = {.fail = BRG_OK};
		S.script(j->model, j->kind, j->nth, i, &rep);
		struct gen_result res = {
		    .finish = GEN_FINISH_STOP, .n_prompt = 10, .n_completion = 5};
		if (j->cancel && atomic_load(j->cancel)) {
			res.finish = GEN_FINISH_CANCELLED;
		} else if (rep.fail) {
			res.finish = GEN_FINISH_ERROR;
			brg_fail(&res.error, rep.fail, "%s", rep.text);
		} else {
			j->sinks[i].on_piece(j->sinks[i].ud, rep.text, strlen(rep.text));
		}
		j->sinks[i].on_done(j->sinks[i].ud, &res);
	}
	free(j);
	pthread_mutex_lock(&S.mu);
	S.n_threads_live--;
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.mu);
	return NULL;
}

static enum brg_err sp_generate(void *impl, const struct gen_request *r, struct sink *sinks,
                                struct brg_error *err)
{
	(void)impl;
	struct job *j = calloc(1, sizeof *j);
	snprintf(j->model, sizeof j->model, "%s", r->model);
	snprintf(j->kind, sizeof j->kind, "%s", kind_of(r));
	j->n = r->n_choices;
	memcpy(j->sinks, sinks, r->n_choices * sizeof *sinks);
	j->cancel = r->cancel;
	pthread_mutex_lock(&S.mu);
	char entry[96];
	snprintf(entry, sizeof entry, "%.40s:%.15s", j->model, j->kind);
	int nth = 1;
	for (size_t i = 0; i < S.n_log; i++)
		nth += strcmp(S.log[i], entry) == 0;
	j->nth = nth;
	if (S.n_log < LOG_MAX)
		snprintf(S.log[S.n_log++], sizeof S.log[0], "%s", entry);
	const char *sys =
	    r->n_msgs && strcmp(r->msgs[0].role, "system") == 0 ? r->msgs[0].content : "";
	if (!strstr(sys, "## Current Position") && strcmp(j->kind, "compress") != 0)
		S.n_without_trajectory++;
	snprintf(S.last_system, sizeof S.last_system, "%s", sys);
	S.n_threads_live++;
	pthread_mutex_unlock(&S.mu);
	pthread_t t;
	if (pthread_create(&t, NULL, job_main, j)) {
		free(j);
		return brg_fail(err, BRG_E_RESOURCE, "no thread");
	}
	pthread_detach(t);
	return BRG_OK;
}

/* Models and roles: g (primary), c (thinker), f (fast), x (coder), y (primary). */
static const char *const MODELS[] = {"g", "c", "f", "x", "y"};
static const char *const ROLES[] = {"primary", "thinker", "fast", "coder", "primary"};
static int CTX[5]; /* context length per model; 0: unknown (reset per test) */

static bool sp_has_model(void *impl, const char *id)
{
	(void)impl;
	for (size_t i = 0; i < 5; i++)
		if (strcmp(MODELS[i], id) == 0)
			return true;
	return false;
}

static bool sp_model(void *impl, const char *id, model_info_fn fn, void *ud)
{
	(void)impl;
	for (size_t i = 0; i < 5; i++) {
		if (strcmp(MODELS[i], id) != 0)
			continue;
		const char *roles[1] = {ROLES[i]};
		struct model_info mi = {.id = id,
		                        .status = "loaded",
		                        .roles = roles,
		                        .n_roles = 1,
		                        .context_length = CTX[i]};
		fn(ud, &mi);
		return true;
	}
	return false;
}

static void sp_each(void *impl, model_info_fn fn, void *ud)
{
	for (size_t i = 0; i < 5; i++)
		sp_model(impl, MODELS[i], fn, ud);
}

static const struct provider_ops SP_OPS = {
    .name = "script",
    .has_model = sp_has_model,
    .generate = sp_generate,
    .each_model = sp_each,
    .model = sp_model,
};

/* ---- the fixture ------------------------------------------------------------ */

struct fixture {
	struct router *router;
	struct config cfg;
	struct orchestrator *o;
	char *pool[5];
};

/* The client's side: collects the final answer. */
struct answer_box {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char text[TEXT_MAX * 4];
	bool is_done;
	struct gen_result res;
	int n_events;
	char events[LOG_MAX][64];
};

static int box_piece(void *ud, const char *p, size_t n)
{
	struct answer_box *b = ud;
	pthread_mutex_lock(&b->mu);
	strncat(b->text, p, n < sizeof b->text - strlen(b->text) - 1 ? n : 0);
	pthread_mutex_unlock(&b->mu);
	return 0;
}

static void box_done(void *ud, const struct gen_result *res)
{
	struct answer_box *b = ud;
	pthread_mutex_lock(&b->mu);
	b->res = *res;
	b->is_done = true;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

static void box_event(void *ud, const struct orch_step_event *ev)
{
	struct answer_box *b = ud;
	if (b->n_events < LOG_MAX)
		snprintf(b->events[b->n_events++], sizeof b->events[0], "%d:%s:%s:%s", ev->round,
		         ev->name, ev->role, ev->model);
}

static void box_wait(struct answer_box *b)
{
	long long end = now_ms() + WAIT_MS;
	pthread_mutex_lock(&b->mu);
	while (!b->is_done && now_ms() < end) {
		pthread_mutex_unlock(&b->mu);
		sleep_ms(2);
		pthread_mutex_lock(&b->mu);
	}
	bool done = b->is_done;
	pthread_mutex_unlock(&b->mu);
	assert_true(done);
}

static struct provider SP = {&SP_OPS, NULL};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	f->router = router_new();
	router_add(f->router, SP);
	for (size_t i = 0; i < 5; i++)
		f->pool[i] = (char *)MODELS[i];
	f->cfg.orch.pool = f->pool;
	f->cfg.orch.n_pool = 2; /* g and c unless a test widens it */
	f->cfg.orch.critique_max_rounds = 2;
	f->cfg.orch.critique_threshold = 0.8;
	f->cfg.orch.debate_max_rounds = 3;
	f->cfg.orch.debate_reconcile = "primary";
	f->cfg.orch.ensemble_min_agreement = 0.6;
	f->cfg.orch.ensemble_synthesis = "none";
	f->cfg.orch.ensemble_reducer = "majority_vote";
	f->cfg.orch.self_consistency_samples = 5;
	router_set_config(f->router, &f->cfg);
	S.delay_ms = 20;
	S.n_log = 0;
	S.n_without_trajectory = 0;
	memset(CTX, 0, sizeof CTX);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	long long end = now_ms() + WAIT_MS;
	pthread_mutex_lock(&S.mu);
	while (S.n_threads_live > 0 && now_ms() < end) {
		pthread_mutex_unlock(&S.mu);
		sleep_ms(2);
		pthread_mutex_lock(&S.mu);
	}
	pthread_mutex_unlock(&S.mu);
	orchestrator_free(f->o);
	router_free(f->router);
	free(f);
	return 0;
}

static struct orchestrator *orch(struct fixture *f)
{
	struct brg_error e;
	brg_error_clear(&e);
	if (!f->o)
		f->o = orchestrator_new(f->router, &f->cfg, &e);
	return f->o;
}

static const struct chat_msg QUESTION[] = {{"user", "What is 6 times 7?"}};

/* Runs one request to its end; returns the rc of orchestrate_run. */
static enum brg_err run_mode(struct fixture *f, const char *mode, const char *model,
                             struct answer_box *b, struct orch_info *info,
                             const atomic_bool *cancel)
{
	memset(b, 0, sizeof *b);
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	memset(info, 0, sizeof *info);
	struct sink sink = {box_piece, box_done, b};
	struct orch_request q = {
	    .mode = mode,
	    .model = model,
	    .gen = {.msgs = QUESTION,
	            .n_msgs = 1,
	            .params = gen_default_params(),
	            .n_choices = 1,
	            .cancel = cancel},
	    .on_step = box_event,
	    .step_ud = b,
	};
	struct brg_error e;
	brg_error_clear(&e);
	enum brg_err rc = orchestrate_run(orch(f), &q, NULL, &sink, info, &e);
	if (rc == BRG_OK)
		box_wait(b);
	return rc;
}

/* The call log, as "a,b,c". */
static const char *log_text(void)
{
	static char out[LOG_MAX * 64];
	out[0] = '\0';
	pthread_mutex_lock(&S.mu);
	for (size_t i = 0; i < S.n_log; i++) {
		if (i)
			strcat(out, ",");
		strcat(out, S.log[i]);
	}
	pthread_mutex_unlock(&S.mu);
	return out;
}

/* The call log with each run of parallel calls sorted, for parallel modes. */
static bool log_has_in_order(const char *const *want, size_t n)
{
	pthread_mutex_lock(&S.mu);
	bool ok = S.n_log == n;
	for (size_t i = 0; ok && i < n; i++)
		ok = strcmp(S.log[i], want[i]) == 0;
	pthread_mutex_unlock(&S.mu);
	return ok;
}

static bool log_has(const char *entry)
{
	pthread_mutex_lock(&S.mu);
	bool found = false;
	for (size_t i = 0; i < S.n_log && !found; i++)
		found = strcmp(S.log[i], entry) == 0;
	pthread_mutex_unlock(&S.mu);
	return found;
}

/* Runs 'mode' led by g over the first 'pool' models with 'script';
 * asserts it started. */
static void go(struct fixture *f, size_t pool, script_fn script, const char *mode,
               struct answer_box *b, struct orch_info *in)
{
	f->cfg.orch.n_pool = pool;
	S.script = script;
	assert_int_equal(run_mode(f, mode, "g", b, in, NULL), BRG_OK);
}

/* Asserts the exact call sequence. */
static void expect_log(const char *const *want, size_t n)
{
	if (!log_has_in_order(want, n))
		fail_msg("log: %s", log_text());
}

#define SAY(...) snprintf(out->text, sizeof out->text, __VA_ARGS__)

/* ---- critique ---- */

static void critique_improves(const char *model, const char *kind, int nth, size_t choice,
                              struct reply *out)
{
	(void)model;
	(void)choice;
	if (strcmp(kind, "answer") == 0)
		SAY("draft 1");
	else if (strcmp(kind, "critique") == 0)
		SAY(nth == 1 ? "Too short.\nScore: 5/10" : "Good.\nScore: 9/10");
	else
		SAY("draft %d", nth + 1);
}

static void test_critique_revises_until_the_score_reaches_the_threshold(void **state)
{
	struct fixture *f = *state;
	struct answer_box b;
	struct orch_info in;
	go(f, f->cfg.orch.n_pool, critique_improves, "critique", &b, &in);
	assert_string_equal(log_text(), "g:answer,c:critique,g:revise,c:critique");
	assert_string_equal(b.text, "draft 2");
	assert_int_equal(b.res.finish, GEN_FINISH_STOP);
	assert_int_equal(in.rounds, 2);
	assert_true(in.confidence > 0.89 && in.confidence < 0.91); /* the critic's 9/10 */
	assert_int_equal(in.n_models_used, 2);
	assert_string_equal(in.models_used[0], "g");
	assert_string_equal(in.models_used[1], "c");
	assert_int_equal(in.handoff_steps, 3);
	assert_int_equal(in.total_steps, 4);
	assert_string_equal(in.model, "g");
	assert_int_equal(b.res.n_completion, 4 * 5); /* usage sums every step */
	assert_int_equal(b.n_events, 4);
	assert_string_equal(b.events[0], "1:generate:generator:g");
	assert_string_equal(b.events[1], "1:critique:critic:c");
	assert_string_equal(b.events[2], "1:revise:generator:g");
	assert_string_equal(b.events[3], "2:critique:critic:c");
}

static void critique_never_happy(const char *model, const char *kind, int nth, size_t choice,
                                 struct reply *out)
{
	(void)model;
	(void)choice;
	if (strcmp(kind, "critique") == 0)
		SAY("Wrong.\nScore: 3/10");
	else
		SAY("draft %d", strcmp(kind, "answer") == 0 ? 1 : nth + 1);
}

static void test_critique_stops_at_max_rounds(void **state)
{
	struct fixture *f = *state;
	struct answer_box b;
	struct orch_info in;
	go(f, f->cfg.orch.n_pool, critique_never_happy, "critique", &b, &in);
	assert_string_equal(log_text(), "g:answer,c:critique,g:revise,c:critique,g:revise");
	assert_string_equal(b.text, "draft 3");
	assert_int_equal(in.rounds, 2);
	assert_true(in.confidence < 0); /* the last revision was never scored */
}

static void critique_happy_at_once(const char *model, const char *kind, int nth, size_t choice,
                                   struct reply *out)
{
	(void)model;
	(void)nth;
	(void)choice;
	SAY("%s", strcmp(kind, "critique") == 0 ? "Fine.\n**Score: 8/10**" : "first draft");
}

static void test_critique_early_stop_keeps_the_first_draft(void **state)
{
	struct fixture *f = *state;
	struct answer_box b;
	struct orch_info in;
	go(f, f->cfg.orch.n_pool, critique_happy_at_once, "critique", &b, &in);
	assert_string_equal(log_text(), "g:answer,c:critique");
	assert_string_equal(b.text, "first draft");
	assert_int_equal(in.rounds, 1);
}

static void critic_fails(const char *model, const char *kind, int nth, size_t choice,
                         struct reply *out)
{
	(void)model;
	(void)nth;
	(void)choice;
	if (strcmp(kind, "critique") == 0) {
		out->fail = BRG_E_MODEL_LOAD;
		SAY("the critic could not load");
	} else {
		SAY("the draft");
	}
}

static void test_critique_failing_critic_returns_the_draft_as_partial(void **state)
{
	struct fixture *f = *state;
	struct answer_box b;
	struct orch_info in;
	go(f, f->cfg.orch.n_pool, critic_fails, "critique", &b, &in);
	assert_string_equal(b.text, "the draft");
	assert_int_equal(b.res.finish, GEN_FINISH_PARTIAL);
	assert_true(in.is_partial);
	assert_non_null(strstr(in.error, "the critic could not load"));
}

static void test_critique_needs_a_second_model(void **state)
{
	struct fixture *f = *state;
	f->cfg.orch.n_pool = 1;
	S.script = critique_improves;
	struct answer_box b;
	struct orch_info in;
	assert_int_equal(run_mode(f, "critique", "g", &b, &in, NULL), BRG_E_BAD_REQUEST);
	assert_int_equal(S.n_log, 0);
}

/* ---- debate ---- */

static void debate_converges(const char *model, const char *kind, int nth, size_t choice,
                             struct reply *out)
{
	(void)nth;
	(void)choice;
	if (strcmp(kind, "reconcile") == 0)
		SAY("reconciled: 42");
	else if (strcmp(kind, "answer") == 0)
		SAY("The answer is %s.", strcmp(model, "g") == 0 ? "42" : "41");
	else
		SAY("The answer is 42.");
}

static void test_debate_rounds_until_agreement_then_reconciles(void **state)
{
	struct fixture *f = *state;
	struct answer_box b;
	struct orch_info in;
	go(f, f->cfg.orch.n_pool, debate_converges, "debate", &b, &in);
	/* round 1 in parallel (any order), round 2 in parallel, then g reconciles */
	assert_int_equal(S.n_log, 5);
	assert_true(log_has("g:answer") && log_has("c:answer"));
	assert_true(log_has("g:rebut") && log_has("c:rebut"));
	assert_string_equal(S.log[4], "g:reconcile");
	assert_string_equal(b.text, "reconciled: 42");
	assert_int_equal(in.rounds, 2);
	assert_true(in.agreement > 0.99);
	assert_string_equal(in.model, "g");
}

static void debate_never_agrees(const char *model, const char *kind, int nth, size_t choice,
                                struct reply *out)
{
	(void)nth;
	(void)choice;
	if (strcmp(kind, "reconcile") == 0)
		SAY("split decision");
	else
		SAY("Answer: %s", strcmp(model, "g") == 0 ? "A" : "B");
}

static void test_debate_stops_at_max_rounds(void **state)
{
	struct fixture *f = *state;
	S.script = debate_never_agrees;
	f->cfg.orch.debate_max_rounds = 2;
	struct answer_box b;
	struct orch_info in;
	assert_int_equal(run_mode(f, "debate", "g", &b, &in, NULL), BRG_OK);
	assert_int_equal(S.n_log, 5); /* 2 + 2 + reconcile */
	assert_int_equal(in.rounds, 2);
	assert_true(in.agreement > 0.49 && in.agreement < 0.51);
	assert_string_equal(b.text, "split decision");
}

static void test_debate_agreeing_at_once_needs_one_round(void **state)
{
	struct fixture *f = *state;
	S.script = critique_happy_at_once; /* everyone says "first draft" */
	struct answer_box b;
	struct orch_info in;
	assert_int_equal(run_mode(f, "debate", "g", &b, &in, NULL), BRG_OK);
	assert_int_equal(S.n_log, 3);
	assert_int_equal(in.rounds, 1);
}

/* ---- ensemble ---- */

static void ensemble_two_of_three(const char *model, const char *kind, int nth, size_t choice,
                                  struct reply *out)
{
	(void)nth;
	(void)choice;
	if (strcmp(kind, "synthesize") == 0)
		SAY("synthesis: 42");
	else
		SAY("#### %s", strcmp(model, "f") == 0 ? "17" : "42");
}

static void test_ensemble_votes_and_returns_the_majority(void **state)
{
	struct fixture *f = *state;
	struct answer_box b;
	struct orch_info in;
	go(f, 3, ensemble_two_of_three, "ensemble", &b, &in);
	assert_int_equal(S.n_log, 3);
	assert_string_equal(b.text, "#### 42");
	assert_true(in.agreement > 0.66 && in.agreement < 0.67);
	assert_int_equal(in.n_models_used, 3);
}

static void test_ensemble_synthesizer_writes_the_final_answer(void **state)
{
	struct fixture *f = *state;
	f->cfg.orch.ensemble_synthesis = "primary";
	struct answer_box b;
	struct orch_info in;
	go(f, 3, ensemble_two_of_three, "ensemble", &b, &in);
	assert_int_equal(S.n_log, 4);
	assert_string_equal(S.log[3], "g:synthesize");
	assert_string_equal(b.text, "synthesis: 42");
}

static void test_ensemble_below_min_agreement_fails(void **state)
{
	struct fixture *f = *state;
	f->cfg.orch.ensemble_min_agreement = 0.9;
	struct answer_box b;
	struct orch_info in;
	go(f, 3, ensemble_two_of_three, "ensemble", &b, &in);
	assert_int_equal(b.res.finish, GEN_FINISH_ERROR);
	assert_int_equal(b.res.error.code, BRG_E_ORCHESTRATION);
	assert_non_null(strstr(b.res.error.message, "did not agree"));
	assert_string_equal(b.text, "");
}

static void test_ensemble_below_min_agreement_best_when_configured(void **state)
{
	struct fixture *f = *state;
	f->cfg.orch.ensemble_min_agreement = 0.9;
	f->cfg.orch.ensemble_best_on_disagreement = true;
	struct answer_box b;
	struct orch_info in;
	go(f, 3, ensemble_two_of_three, "ensemble", &b, &in);
	assert_int_equal(b.res.finish, GEN_FINISH_STOP);
	assert_string_equal(b.text, "#### 42");
	assert_true(in.agreement < 0.9);
}

static void ensemble_tie(const char *model, const char *kind, int nth, size_t choice,
                         struct reply *out)
{
	(void)kind;
	(void)nth;
	(void)choice;
	SAY("Answer: %s", strcmp(model, "g") == 0 ? "A" : "B");
}

static void test_ensemble_tie_is_below_agreement_and_deterministic(void **state)
{
	struct fixture *f = *state;
	f->cfg.orch.ensemble_min_agreement = 0.5;
	struct answer_box b;
	struct orch_info in;
	go(f, f->cfg.orch.n_pool, ensemble_tie, "ensemble", &b, &in);
	assert_int_equal(b.res.finish, GEN_FINISH_STOP);
	assert_string_equal(b.text, "Answer: A"); /* the lowest index wins a tie */
}

/* Parallel members cost the slowest, not the sum. */
static void test_ensemble_members_run_concurrently(void **state)
{
	struct fixture *f = *state;
	f->cfg.orch.n_pool = 3;
	S.script = ensemble_two_of_three;
	S.delay_ms = 200;
	struct answer_box b;
	struct orch_info in;
	long long t0 = now_ms();
	assert_int_equal(run_mode(f, "ensemble", "g", &b, &in, NULL), BRG_OK);
	long long took = now_ms() - t0;
	assert_true(took >= 200);
	assert_true(took < 450); /* the sum would be 600 */
}

/* ---- pipeline ---- */

static void pipeline_ok(const char *model, const char *kind, int nth, size_t choice,
                        struct reply *out)
{
	(void)nth;
	(void)choice;
	SAY("%s by %s", kind, model);
}

static void test_pipeline_runs_draft_refine_validate(void **state)
{
	struct fixture *f = *state;
	f->cfg.orch.n_pool = 3; /* g primary, c thinker, f fast */
	struct answer_box b;
	struct orch_info in;
	go(f, f->cfg.orch.n_pool, pipeline_ok, "pipeline", &b, &in);
	static const char *const want[] = {"f:answer", "c:refine", "g:validate"};
	expect_log(want, 3);
	assert_string_equal(b.text, "validate by g");
	assert_int_equal(in.completed_steps, 3);
	assert_int_equal(in.handoff_steps, 2);
	assert_false(in.is_partial);
}

static void pipeline_validator_fails(const char *model, const char *kind, int nth, size_t choice,
                                     struct reply *out)
{
	(void)nth;
	(void)choice;
	if (strcmp(kind, "validate") == 0) {
		out->fail = BRG_E_CONTEXT_BUDGET;
		SAY("too long for the validator");
		return;
	}
	SAY("%s by %s", kind, model);
}

static void test_pipeline_saga_returns_the_best_finished_stage(void **state)
{
	struct fixture *f = *state;
	struct answer_box b;
	struct orch_info in;
	go(f, 3, pipeline_validator_fails, "pipeline", &b, &in);
	assert_string_equal(b.text, "refine by c");
	assert_int_equal(b.res.finish, GEN_FINISH_PARTIAL);
	assert_true(in.is_partial);
	assert_int_equal(in.completed_steps, 2);
	assert_int_equal(in.total_steps, 3);
	assert_non_null(strstr(in.error, "validate"));
	assert_string_equal(in.model, "c");
}

static void pipeline_drafter_fails(const char *model, const char *kind, int nth, size_t choice,
                                   struct reply *out)
{
	(void)model;
	(void)nth;
	(void)choice;
	out->fail = strcmp(kind, "answer") == 0 ? BRG_E_MODEL_LOAD : BRG_OK;
	SAY("%s", out->fail ? "drafter broken" : "fine");
}

static void test_pipeline_failing_first_stage_is_an_error(void **state)
{
	struct fixture *f = *state;
	struct answer_box b;
	struct orch_info in;
	go(f, 3, pipeline_drafter_fails, "pipeline", &b, &in);
	assert_int_equal(b.res.finish, GEN_FINISH_ERROR);
	assert_int_equal(b.res.error.code, BRG_E_MODEL_LOAD);
	assert_non_null(strstr(b.res.error.message, "first stage"));
	assert_int_equal(S.n_log, 1);
}

static void pipeline_refiner_busy_once(const char *model, const char *kind, int nth, size_t choice,
                                       struct reply *out)
{
	(void)choice;
	if (strcmp(kind, "refine") == 0 && nth == 1) {
		out->fail = BRG_E_MODEL_BUSY; /* retriable */
		SAY("busy");
		return;
	}
	SAY("%s by %s", kind, model);
}

static void test_pipeline_retries_a_retriable_failure_once(void **state)
{
	struct fixture *f = *state;
	struct answer_box b;
	struct orch_info in;
	go(f, 3, pipeline_refiner_busy_once, "pipeline", &b, &in);
	static const char *const want[] = {"f:answer", "c:refine", "c:refine", "g:validate"};
	expect_log(want, 4);
	assert_string_equal(b.text, "validate by g");
	assert_int_equal(b.res.finish, GEN_FINISH_STOP);
}

/* ---- self-consistency ---- */

static void samples_vote(const char *model, const char *kind, int nth, size_t choice,
                         struct reply *out)
{
	(void)model;
	(void)kind;
	(void)nth;
	SAY("so the answer is %s.", choice == 1 || choice == 3 ? "41" : "42");
}

static void test_self_consistency_samples_in_one_call_and_votes(void **state)
{
	struct fixture *f = *state;
	struct answer_box b;
	struct orch_info in;
	go(f, f->cfg.orch.n_pool, samples_vote, "self_consistency", &b, &in);
	assert_int_equal(S.n_log, 1); /* one batched call of 5 choices */
	assert_string_equal(b.text, "so the answer is 42.");
	assert_true(in.agreement > 0.59 && in.agreement < 0.61);
}

/* ---- cancellation, plans ---- */

static void test_cancel_stops_a_run_quickly(void **state)
{
	struct fixture *f = *state;
	f->cfg.orch.n_pool = 3;
	S.script = ensemble_two_of_three;
	S.delay_ms = 3000;
	atomic_bool cancel = false;
	struct answer_box b;
	memset(&b, 0, sizeof b);
	struct orch_info in = {0};
	struct sink sink = {box_piece, box_done, &b};
	struct orch_request q = {
	    .mode = "ensemble",
	    .model = "g",
	    .gen = {.msgs = QUESTION,
	            .n_msgs = 1,
	            .params = gen_default_params(),
	            .n_choices = 1,
	            .cancel = &cancel},
	};
	struct brg_error e;
	brg_error_clear(&e);
	assert_int_equal(orchestrate_run(orch(f), &q, NULL, &sink, &in, &e), BRG_OK);
	sleep_ms(50);
	long long t0 = now_ms();
	atomic_store(&cancel, true);
	box_wait(&b);
	assert_true(now_ms() - t0 < 500);
	assert_int_equal(b.res.finish, GEN_FINISH_CANCELLED);
}

static void test_multi_model_mode_wants_one_choice(void **state)
{
	struct fixture *f = *state;
	struct answer_box b;
	struct orch_info in = {0};
	struct sink sinks[2] = {{box_piece, box_done, &b}, {box_piece, box_done, &b}};
	struct orch_request q = {
	    .mode = "debate",
	    .model = "g",
	    .gen = {.msgs = QUESTION, .n_msgs = 1, .params = gen_default_params(), .n_choices = 2},
	};
	struct brg_error e;
	brg_error_clear(&e);
	assert_int_equal(orchestrate_run(orch(f), &q, NULL, sinks, &in, &e), BRG_E_BAD_REQUEST);
	assert_non_null(strstr(e.message, "n must be 1"));
}

static void test_preset_roles_are_used_as_written(void **state)
{
	struct fixture *f = *state;
	char *p_roles[] = {"participant"};
	char *r_roles[] = {"participant", "reconciler"};
	struct preset_member pm[] = {{"x", p_roles, 1}, {"y", r_roles, 2}};
	struct preset ps = {
	    .name = "D9", .mode = "debate", .members = pm, .n_members = 2, .is_usable = true};
	f->cfg.orch.presets = &ps;
	f->cfg.orch.n_presets = 1;
	struct route_plan plan;
	struct brg_error e;
	brg_error_clear(&e);
	struct plan_request q = {.model = "g", .preset = "D9"};
	assert_int_equal(route_plan(f->router, &q, &plan, &e), BRG_OK);
	assert_string_equal(plan.mode, "debate");
	assert_string_equal(plan.preset, "D9");
	assert_int_equal(plan.n_members, 2);
	assert_string_equal(plan.members[0].name, "x");
	assert_true(plan.has_judge);
	assert_string_equal(plan.judge.name, "y");
	/* An unusable preset is a clear request error. */
	ps.is_usable = false;
	ps.missing = "phi-4";
	assert_int_equal(route_plan(f->router, &q, &plan, &e), BRG_E_BAD_REQUEST);
	assert_non_null(strstr(e.message, "phi-4"));
	q.preset = "nope";
	assert_int_equal(route_plan(f->router, &q, &plan, &e), BRG_E_BAD_REQUEST);
	assert_non_null(strstr(e.message, "unknown preset"));
}

static void test_plan_picks_roles_from_the_pool(void **state)
{
	struct fixture *f = *state;
	f->cfg.orch.n_pool = 5;
	struct route_plan plan;
	struct brg_error e;
	brg_error_clear(&e);
	struct plan_request q = {.mode = "critique", .model = "y"};
	assert_int_equal(route_plan(f->router, &q, &plan, &e), BRG_OK);
	assert_string_equal(plan.generator.name, "y");
	assert_string_equal(plan.critic.name, "c"); /* the thinker */
	q = (struct plan_request){.mode = "pipeline", .model = "auto", .task_type = "code"};
	assert_int_equal(route_plan(f->router, &q, &plan, &e), BRG_OK);
	assert_int_equal(plan.n_stages, 3);
	assert_string_equal(plan.stages[0].name, "f"); /* fast drafts */
	assert_string_equal(plan.stages[1].name, "x"); /* a coder refines code */
	assert_string_equal(plan.stages[2].name, "x"); /* auto + code: the coder leads */
	q = (struct plan_request){.mode = "ensemble", .model = "g"};
	assert_int_equal(route_plan(f->router, &q, &plan, &e), BRG_OK);
	assert_int_equal(plan.n_members, 5);
	assert_string_equal(plan.members[0].name, "g");
}

/* ---- context management ---- */

static void test_every_step_gets_the_trajectory(void **state)
{
	struct fixture *f = *state;
	struct answer_box b;
	struct orch_info in;
	go(f, f->cfg.orch.n_pool, critique_improves, "critique", &b, &in);
	assert_int_equal(S.n_log, 4);
	assert_int_equal(S.n_without_trajectory, 0);
	/* the last step: the critic's instructions, then the block */
	assert_true(starts(S.last_system, PROMPT_CRITIC));
	assert_non_null(strstr(S.last_system, "- Goal: What is 6 times 7?"));
	if (!strstr(S.last_system, "- Step: 4/5 - critique"))
		fail_msg("system message: %s", S.last_system);
	assert_non_null(strstr(S.last_system, "- Previous:"));
}

static void long_draft_short_summary(const char *model, const char *kind, int nth, size_t choice,
                                     struct reply *out)
{
	(void)model;
	(void)nth;
	(void)choice;
	if (strcmp(kind, "answer") == 0) {
		out->text[0] = '\0';
		for (int i = 0; i < 60; i++)
			strcat(out->text, "word ");
	} else if (strcmp(kind, "compress") == 0) {
		SAY("the gist");
	} else {
		SAY("Score: 9/10");
	}
}

static void test_handoff_over_budget_is_compressed_by_the_fast_model(void **state)
{
	struct fixture *f = *state;
	f->cfg.orch.n_pool = 3; /* g, c (thinker), f (fast) */
	CTX[1] = 192;           /* the critic's window: a handoff budget of ~36 tokens */
	struct answer_box b;
	struct orch_info in;
	go(f, f->cfg.orch.n_pool, long_draft_short_summary, "critique", &b, &in);
	assert_string_equal(log_text(), "g:answer,f:compress,c:critique");
	assert_true(in.compression_applied);
	assert_true(in.context_utilization > 0 && in.context_utilization <= 1);
	assert_int_equal(b.res.finish, GEN_FINISH_STOP);
}

/* models.yaml's budget_handoff replaces the derived share: a 4096-token
 * critic fits the draft by the rule (750 tokens), not by a 20-token
 * configured handoff budget. */
static void test_configured_handoff_budget_overrides_the_rule(void **state)
{
	struct fixture *f = *state;
	CTX[1] = 4096;
	struct model_config mc = {.id = "c", .context_length = 4096, .budget_handoff = 20};
	f->cfg.models = &mc;
	f->cfg.n_models = 1;
	struct answer_box b;
	struct orch_info in;
	go(f, 3, long_draft_short_summary, "critique", &b, &in);
	assert_string_equal(log_text(), "g:answer,f:compress,c:critique");
	assert_true(in.compression_applied);
	f->cfg.n_models = 0;
	f->cfg.models = NULL;
}

static void compressor_useless(const char *model, const char *kind, int nth, size_t choice,
                               struct reply *out)
{
	long_draft_short_summary(model, kind, nth, choice, out);
	if (strcmp(kind, "compress") == 0)
		long_draft_short_summary(model, "answer", nth, choice, out); /* never shorter */
}

static void test_compression_failing_three_times_is_compression_failed(void **state)
{
	struct fixture *f = *state;
	CTX[1] = 192;
	struct answer_box b;
	struct orch_info in;
	go(f, 3, compressor_useless, "critique", &b, &in);
	assert_string_equal(log_text(), "g:answer,f:compress,f:compress,f:compress");
	/* never truncated: the draft stands, flagged, with the reason */
	assert_int_equal(b.res.finish, GEN_FINISH_PARTIAL);
	assert_true(in.is_partial);
	assert_non_null(strstr(in.error, "compress"));
	assert_false(in.compression_applied);
}

static void contaminated_draft(const char *model, const char *kind, int nth, size_t choice,
                               struct reply *out)
{
	(void)choice;
	if (strcmp(kind, "answer") == 0)
		SAY("I apologize, I made an error. That's incorrect: the answer is 42.");
	else
		SAY("%s %d by %s: the answer is 42.", kind, nth, model);
}

static void test_pipeline_quarantines_a_contaminated_handoff(void **state)
{
	struct fixture *f = *state;
	struct answer_box b;
	struct orch_info in;
	go(f, 3, contaminated_draft, "pipeline", &b, &in);
	/* The draft's three error markers are warnings, recorded as open
	 * errors; with three open errors at step 2 the refinement is rated
	 * error accumulation (high), quarantined, and refined again with
	 * fresh context. */
	static const char *const want[] = {"f:answer", "c:refine", "c:refine", "g:validate"};
	expect_log(want, 4);
	assert_string_equal(b.text, "validate 1 by g: the answer is 42.");
	assert_int_equal(b.res.finish, GEN_FINISH_STOP);
}

static void test_score_parsing(void **state)
{
	(void)state;
	assert_true(answer_parse_score("Score: 7/10") > 0.69);
	assert_true(answer_parse_score("score 0.8") > 0.79);
	assert_true(answer_parse_score("**Score:** 9 out of 10") > 0.89);
	assert_true(answer_parse_score("Score: 85%") > 0.84);
	assert_true(answer_parse_score("Score: 3/10 ... final Score: 6/10") > 0.59);
	assert_true(answer_parse_score("no number here") < 0);
	assert_true(answer_parse_score("Score: 11/10") < 0);
	assert_true(answer_parse_score(NULL) < 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_critique_revises_until_the_score_reaches_the_threshold),
	    T(test_critique_stops_at_max_rounds),
	    T(test_critique_early_stop_keeps_the_first_draft),
	    T(test_critique_failing_critic_returns_the_draft_as_partial),
	    T(test_critique_needs_a_second_model),
	    T(test_debate_rounds_until_agreement_then_reconciles),
	    T(test_debate_stops_at_max_rounds),
	    T(test_debate_agreeing_at_once_needs_one_round),
	    T(test_ensemble_votes_and_returns_the_majority),
	    T(test_ensemble_synthesizer_writes_the_final_answer),
	    T(test_ensemble_below_min_agreement_fails),
	    T(test_ensemble_below_min_agreement_best_when_configured),
	    T(test_ensemble_tie_is_below_agreement_and_deterministic),
	    T(test_ensemble_members_run_concurrently),
	    T(test_pipeline_runs_draft_refine_validate),
	    T(test_pipeline_saga_returns_the_best_finished_stage),
	    T(test_pipeline_failing_first_stage_is_an_error),
	    T(test_pipeline_retries_a_retriable_failure_once),
	    T(test_self_consistency_samples_in_one_call_and_votes),
	    T(test_cancel_stops_a_run_quickly),
	    T(test_multi_model_mode_wants_one_choice),
	    T(test_preset_roles_are_used_as_written),
	    T(test_plan_picks_roles_from_the_pool),
	    T(test_every_step_gets_the_trajectory),
	    T(test_handoff_over_budget_is_compressed_by_the_fast_model),
	    T(test_configured_handoff_budget_overrides_the_rule),
	    T(test_compression_failing_three_times_is_compression_failed),
	    T(test_pipeline_quarantines_a_contaminated_handoff),
	    T(test_score_parsing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
