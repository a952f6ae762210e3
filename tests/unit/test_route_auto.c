/*
 * test_route_auto.c — auto-routing (route/auto.c, docs/routing.md): each
 * strategy's pick among the best fits, ties, round-robin rotation per
 * candidate set, least_busy with injected loads and with the engine's
 * busy slots, capability_match's finer order, cold and failed models,
 * remote candidates, the order fallbacks take; the single mode's fallback
 * across candidates (orchestrate/alternates.c) after a refusal, an
 * asynchronous failure, text already sent, a non-retriable error; the
 * configuration keys; and that with auto-routing off nothing changed.
 *
 * Fake providers answer from their own thread after a short delay, like
 * real ones, and log each call as "model"; every wait has a timeout.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "config/config.h"
#include "orchestrate/orchestrate.h"
#include "route/plan.h"
#include "route/route.h"

#define WAIT_MS 5000

/* ---- fake providers -------------------------------------------------------- */

struct fake_model {
	const char *id; /* as the provider lists it ("remote:r1" for a remote) */
	const char *status;
	const char *roles[3];
	size_t n_roles;
	int ctx, slots, busy;
	enum brg_err refuse; /* generate() returns it */
	enum brg_err fail;   /* on_done carries it */
	const char *text;    /* sent before on_done */
};

struct fake {
	const char *prefix; /* ids listed as "prefix:id"; NULL: as they are */
	struct fake_model *models;
	size_t n;
};

static struct {
	pthread_mutex_t mu;
	char calls[16][64];
	size_t n_calls;
	int n_live; /* answering threads */
} L = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct fake_model *fake_find(struct fake *f, const char *id)
{
	size_t plen = f->prefix ? strlen(f->prefix) + 1 : 0;
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->models[i].id + plen, id) == 0)
			return &f->models[i];
	return NULL;
}

static bool fake_has(void *impl, const char *id)
{
	return fake_find(impl, id) != NULL;
}

/* Shows fn every model (id NULL) or the one with the provider's own id
 * 'id'; returns how many it showed. */
static size_t fake_show(struct fake *f, const char *id, model_info_fn fn, void *ud)
{
	size_t n_shown = 0;
	for (const struct fake_model *m = f->models; m < f->models + f->n; m++) {
		if (id && m != fake_find(f, id))
			continue;
		struct model_info mi = {.id = m->id,
		                        .status = m->status,
		                        .roles = m->roles,
		                        .n_roles = m->n_roles,
		                        .context_length = m->ctx,
		                        .n_slots = m->slots,
		                        .n_busy_slots = m->busy};
		fn(ud, &mi);
		n_shown++;
	}
	return n_shown;
}

static void fake_each(void *impl, model_info_fn fn, void *ud)
{
	fake_show(impl, NULL, fn, ud);
}

static bool fake_model(void *impl, const char *id, model_info_fn fn, void *ud)
{
	return fake_show(impl, id, fn, ud) > 0;
}

struct job {
	const struct fake_model *m;
	size_t n;
	struct sink sinks[4];
};

static void *job_main(void *arg)
{
	struct job *j = arg;
	sleep_ms(3);
	for (size_t i = 0; i < j->n; i++) {
		struct gen_result res = {.finish = GEN_FINISH_STOP, .n_completion = 1};
		if (j->m->text)
			j->sinks[i].on_piece(j->sinks[i].ud, j->m->text, strlen(j->m->text));
		if (j->m->fail) {
			res.finish = GEN_FINISH_ERROR;
			brg_fail(&res.error, j->m->fail, "%s failed", j->m->id);
		}
		j->sinks[i].on_done(j->sinks[i].ud, &res);
	}
	free(j);
	pthread_mutex_lock(&L.mu);
	L.n_live--;
	pthread_mutex_unlock(&L.mu);
	return NULL;
}

static enum brg_err fake_generate(void *impl, const struct gen_request *r, struct sink *sinks,
                                  struct brg_error *err)
{
	const struct fake_model *m = fake_find(impl, r->model);
	pthread_mutex_lock(&L.mu);
	if (L.n_calls < 16)
		snprintf(L.calls[L.n_calls++], sizeof L.calls[0], "%s", r->model);
	pthread_mutex_unlock(&L.mu);
	if (!m)
		return brg_fail(err, BRG_E_MODEL_NOT_FOUND, "no %s", r->model);
	if (m->refuse)
		return brg_fail(err, m->refuse, "%s refuses", m->id);
	struct job *j = calloc(1, sizeof *j);
	j->m = m;
	j->n = r->n_choices;
	memcpy(j->sinks, sinks, r->n_choices * sizeof *sinks);
	pthread_mutex_lock(&L.mu);
	L.n_live++;
	pthread_mutex_unlock(&L.mu);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, job_main, j), 0);
	pthread_detach(t);
	return BRG_OK;
}

static const struct provider_ops LOCAL_OPS = {
    .name = "local",
    .has_model = fake_has,
    .generate = fake_generate,
    .each_model = fake_each,
    .model = fake_model,
};
static const struct provider_ops REMOTE_OPS = {
    .name = "remote",
    .is_open_catalog = true,
    .has_model = fake_has,
    .generate = fake_generate,
    .each_model = fake_each,
    .model = fake_model,
};

/* ---- the fixture -------------------------------------------------------------- */

static struct {
	struct router *r;
	struct orchestrator *o;
	struct config cfg;
	struct fake local, remote;
	struct fake_model lm[6], rm[2];
	char *pool[8];
	int loads[6]; /* what the load callback says of local model i */
	int n_load_calls;
} W;

/* A local model with one role, 512 tokens of context and one slot. */
static struct fake_model M(const char *id, const char *status, const char *role) {
	return (struct fake_model){.id = id,
	                           .status = status,
	                           .roles = {role},
	                           .n_roles = role ? 1 : 0,
	                           .ctx = 512,
	                           .slots = 1};
}

static int
load_of(void *ud, const struct route_target *t)
{
	(void)ud;
	W.n_load_calls++;
	for (size_t i = 0; i < W.local.n; i++)
		if (t->p.impl == &W.local && strcmp(W.lm[i].id, t->model) == 0)
			return W.loads[i];
	return 0;
}

/* Sets the pool to the given names (NULL-terminated). */
static void pool(const char *first, ...)
{
	va_list ap;
	va_start(ap, first);
	W.cfg.orch.n_pool = 0;
	for (const char *s = first; s; s = va_arg(ap, const char *))
		W.pool[W.cfg.orch.n_pool++] = (char *)s;
	va_end(ap);
}

static int setup(void **state)
{
	memset(&W, 0, sizeof W);
	W.lm[0] = M("a", "loaded", "primary");
	W.lm[1] = M("b", "loaded", "primary");
	W.lm[2] = M("c", "loaded", "fast");
	W.local = (struct fake){.models = W.lm, .n = 3};
	W.rm[0] = (struct fake_model){.id = "remote:r1", .status = "remote"};
	W.remote = (struct fake){.prefix = "remote", .models = W.rm, .n = 1};
	W.r = router_new();
	assert_int_equal(router_add(W.r, (struct provider){&LOCAL_OPS, &W.local}), BRG_OK);
	assert_int_equal(router_add(W.r, (struct provider){&REMOTE_OPS, &W.remote}), BRG_OK);
	W.cfg.orch.pool = W.pool;
	pool("a", "b", "c", NULL);
	W.cfg.auto_route_enabled = true;
	W.cfg.auto_route_strategy = AUTO_ROUTE_ROUND_ROBIN;
	W.cfg.auto_route_fallback = true;
	router_set_config(W.r, &W.cfg);
	W.o = orchestrator_new(W.r, NULL, NULL);
	assert_non_null(W.o);
	L.n_calls = 0;
	return 0;
}

static int teardown(void **state)
{
	long long end = now_ms() + WAIT_MS;
	pthread_mutex_lock(&L.mu);
	while (L.n_live > 0 && now_ms() < end) {
		pthread_mutex_unlock(&L.mu);
		sleep_ms(2);
		pthread_mutex_lock(&L.mu);
	}
	pthread_mutex_unlock(&L.mu);
	orchestrator_free(W.o);
	router_free(W.r);
	return 0;
}

/* The plan for "auto" in single mode; its first model and, in 'alts',
 * the others in order ("b,c"). */
static const char *plan_auto(const char *task, char *alts, size_t len)
{
	static struct route_plan plan;
	struct plan_request q = {.mode = "single", .model = "auto", .task_type = task};
	struct brg_error e;
	brg_error_clear(&e);
	if (route_plan(W.r, &q, &plan, &e))
		fail_msg("route_plan: %s", e.message);
	assert_int_equal(plan.n_members, 1);
	if (alts) {
		alts[0] = '\0';
		for (size_t i = 0; i < plan.n_alternates; i++)
			snprintf(alts + strlen(alts), len - strlen(alts), "%s%s", i ? "," : "",
			         plan.alternates[i].name);
	}
	return plan.members[0].name;
}

/* Four picks in a row, as "a,b,a,b". */
static const char *four_picks(const char *task)
{
	static char out[64];
	out[0] = '\0';
	for (int i = 0; i < 4; i++)
		snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", i ? "," : "",
		         plan_auto(task, NULL, 0));
	return out;
}

/* ---- strategies ---------------------------------------------------------------- */

static void test_disabled_keeps_the_first_best_fit(void **state)
{
	W.cfg.auto_route_enabled = false;
	char alts[64];
	assert_string_equal(four_picks(NULL), "a,a,a,a");
	assert_string_equal(plan_auto(NULL, alts, sizeof alts), "a");
	assert_string_equal(alts, "");
	assert_string_equal(plan_auto("simple", NULL, 0), "c");
	assert_int_equal(W.n_load_calls, 0);
}

static void test_round_robin_alternates_between_best_fits(void **state)
{
	char alts[64];
	assert_string_equal(plan_auto(NULL, alts, sizeof alts), "a");
	assert_string_equal(alts, "b,c"); /* the other best fit, then the lower tier */
	assert_string_equal(plan_auto(NULL, alts, sizeof alts), "b");
	assert_string_equal(alts, "a,c");
	assert_string_equal(four_picks(NULL), "a,b,a,b");
}

static void test_round_robin_turns_one_counter_per_candidate_set(void **state)
{
	W.lm[3] = M("d", "loaded", "fast");
	W.local.n = 4;
	pool("a", "b", "c", "d", NULL);
	/* general: {a, b}; simple: {c, d}.  Interleaved, each set rotates on. */
	assert_string_equal(plan_auto(NULL, NULL, 0), "a");
	assert_string_equal(plan_auto("simple", NULL, 0), "c");
	assert_string_equal(plan_auto(NULL, NULL, 0), "b");
	assert_string_equal(plan_auto("simple", NULL, 0), "d");
}

static void test_balancing_never_loads_a_cold_model(void **state)
{
	W.lm[1].status = "available";
	char alts[64];
	assert_string_equal(four_picks(NULL), "a,a,a,a");
	assert_string_equal(plan_auto(NULL, alts, sizeof alts), "a");
	assert_string_equal(alts, "b,c"); /* the cold one is still a fallback */
	/* With none of the best fits loaded, they take turns (and load). */
	W.lm[0].status = "available";
	assert_string_equal(four_picks(NULL), "a,b,a,b");
}

static void test_least_busy_picks_the_model_with_fewest_requests(void **state)
{
	W.cfg.auto_route_strategy = AUTO_ROUTE_LEAST_BUSY;
	router_set_load(W.r, load_of, NULL);
	assert_string_equal(four_picks(NULL), "a,a,a,a"); /* a tie goes to config order */
	W.loads[0] = 1;
	char alts[64];
	assert_string_equal(plan_auto(NULL, alts, sizeof alts), "b");
	assert_string_equal(alts, "a,c");
	W.loads[1] = 3;
	assert_string_equal(plan_auto(NULL, NULL, 0), "a");
	assert_true(W.n_load_calls > 0);
}

static void test_least_busy_weighs_load_by_slots(void **state)
{
	W.cfg.auto_route_strategy = AUTO_ROUTE_LEAST_BUSY;
	router_set_load(W.r, load_of, NULL);
	W.lm[0].slots = 4;
	W.loads[0] = 3; /* 3 of 4 slots */
	W.loads[1] = 1; /* 1 of 1 */
	assert_string_equal(plan_auto(NULL, NULL, 0), "a");
	W.loads[0] = 4;
	assert_string_equal(plan_auto(NULL, NULL, 0), "a"); /* 4/4 ties 1/1: config order */
	W.loads[0] = 5;
	assert_string_equal(plan_auto(NULL, NULL, 0), "b");
}

static void test_least_busy_counts_busy_slots_without_admission(void **state)
{
	W.cfg.auto_route_strategy = AUTO_ROUTE_LEAST_BUSY;
	W.lm[0].busy = 1;
	assert_string_equal(plan_auto(NULL, NULL, 0), "b");
	/* Admission's count wins when it is the larger. */
	router_set_load(W.r, load_of, NULL);
	W.lm[0].busy = 0;
	W.loads[0] = 2;
	W.lm[1].busy = 1;
	assert_string_equal(plan_auto(NULL, NULL, 0), "b");
}

static void test_capability_match_orders_by_fit_then_ready_then_context(void **state)
{
	W.cfg.auto_route_strategy = AUTO_ROUTE_CAPABILITY_MATCH;
	W.lm[0] = (struct fake_model){.id = "a",
	                              .status = "loaded",
	                              .roles = {"primary", "coder"},
	                              .n_roles = 2,
	                              .ctx = 4096};
	W.lm[1] = M("b", "available", "coder");
	W.lm[2] = M("c", "loaded", "coder");
	W.lm[2].ctx = 256;
	W.lm[3] = M("d", "loaded", "coder");
	W.lm[3].ctx = 1024;
	W.lm[4] = M("e", "loaded", "primary");
	W.local.n = 5;
	pool("a", "b", "c", "d", "e", NULL);
	char alts[64];
	/* Coder as the main role beats coder as a second role; loaded beats
	 * cold; then the larger context; primary-only models last. */
	assert_string_equal(plan_auto("code", alts, sizeof alts), "d");
	assert_string_equal(alts, "c,b,a,e");
	assert_string_equal(four_picks("code"), "d,d,d,d");
}

static void test_failed_models_come_last(void **state)
{
	W.lm[0].status = "failed";
	char alts[64];
	assert_string_equal(plan_auto(NULL, alts, sizeof alts), "b");
	assert_string_equal(alts, "c,a");
	W.lm[1].status = "failed";
	W.lm[2].status = "failed";
	assert_string_equal(plan_auto(NULL, alts, sizeof alts), "a"); /* its error is the answer */
}

static void test_remote_candidate_takes_roles_from_model_roles(void **state)
{
	char *roles[] = {"coder"};
	struct model_roles mr = {.model = "remote:r1", .roles = roles, .n_roles = 1};
	W.cfg.orch.extra_roles = &mr;
	W.cfg.orch.n_extra_roles = 1;
	pool("a", "remote:r1", NULL);
	struct route_plan plan;
	struct plan_request q = {.mode = "single", .model = "auto", .task_type = "code"};
	assert_int_equal(route_plan(W.r, &q, &plan, NULL), BRG_OK);
	assert_string_equal(plan.members[0].name, "remote:r1");
	assert_ptr_equal(plan.members[0].t.p.impl, &W.remote);
	assert_string_equal(plan.members[0].t.model, "r1");
	assert_int_equal(plan.n_alternates, 1);
	assert_string_equal(plan.alternates[0].name, "a");
}

static void test_without_a_pool_every_provider_model_is_a_candidate(void **state)
{
	W.cfg.orch.n_pool = 0;
	W.rm[0].roles[0] = "primary";
	W.rm[0].n_roles = 1;
	/* a, b and remote:r1 are ready primaries; route_resolve takes turns
	 * with the plans. */
	assert_string_equal(four_picks(NULL), "a,b,remote:r1,a");
	struct route_target t;
	assert_int_equal(route_resolve(W.r, "auto", NULL, &t, NULL), BRG_OK);
	assert_string_equal(t.model, "b");
	assert_int_equal(route_resolve(W.r, "auto", NULL, &t, NULL), BRG_OK);
	assert_ptr_equal(t.p.impl, &W.remote);
	assert_string_equal(t.model, "r1"); /* the provider's own id, prefix stripped */
}

static void test_fallback_off_or_other_modes_carry_no_alternates(void **state)
{
	char alts[64];
	W.cfg.auto_route_fallback = false;
	assert_string_equal(plan_auto(NULL, alts, sizeof alts), "a");
	assert_string_equal(alts, "");
	W.cfg.auto_route_fallback = true;
	struct route_plan plan;
	struct plan_request q = {.mode = "self_consistency", .model = "auto"};
	assert_int_equal(route_plan(W.r, &q, &plan, NULL), BRG_OK);
	assert_string_equal(plan.members[0].name, "b"); /* the set's counter turned */
	assert_int_equal(plan.n_alternates, 0);
	/* A named model is never auto-routed. */
	q = (struct plan_request){.mode = "single", .model = "c"};
	assert_int_equal(route_plan(W.r, &q, &plan, NULL), BRG_OK);
	assert_string_equal(plan.members[0].name, "c");
	assert_int_equal(plan.n_alternates, 0);
}

/* ---- fallback across candidates ------------------------------------------------------ */

struct box {
	pthread_mutex_t mu;
	char text[256];
	bool is_done;
	struct gen_result res;
};

static int box_piece(void *ud, const char *p, size_t n)
{
	struct box *b = ud;
	pthread_mutex_lock(&b->mu);
	strncat(b->text, p, n);
	pthread_mutex_unlock(&b->mu);
	return 0;
}

static void box_done(void *ud, const struct gen_result *res)
{
	struct box *b = ud;
	pthread_mutex_lock(&b->mu);
	b->res = *res;
	b->is_done = true;
	pthread_mutex_unlock(&b->mu);
}

/* How the last run_auto() went. */
static struct {
	struct box b;
	struct orch_info info;
	enum brg_err rc; /* orchestrate_run's */
	char calls[128]; /* the models asked, in order: "a,b" */
} O;

static void wait_done(struct box *b)
{
	long long end = now_ms() + WAIT_MS;
	for (bool done = false; !done && now_ms() < end; sleep_ms(2)) {
		pthread_mutex_lock(&b->mu);
		done = b->is_done;
		pthread_mutex_unlock(&b->mu);
	}
	assert_true(b->is_done);
}

/* Plans and runs "auto" (single mode) to its end, into O; returns O.calls. */
static const char *run_auto(void)
{
	memset(&O, 0, sizeof O);
	pthread_mutex_init(&O.b.mu, NULL);
	struct route_plan plan;
	struct plan_request pq = {.mode = "single", .model = "auto"};
	assert_int_equal(route_plan(W.r, &pq, &plan, NULL), BRG_OK);
	struct orch_request q = {.mode = "single", .model = "auto"};
	q.gen.prompt = "hello";
	q.gen.params = gen_default_params();
	q.gen.n_choices = 1;
	struct sink sink = {box_piece, box_done, &O.b};
	brg_error_clear(&O.b.res.error);
	O.rc = orchestrate_run(W.o, &q, &plan, &sink, &O.info, &O.b.res.error);
	if (O.rc == BRG_OK)
		wait_done(&O.b);
	pthread_mutex_lock(&L.mu);
	for (size_t i = 0; i < L.n_calls; i++)
		snprintf(O.calls + strlen(O.calls), sizeof O.calls - strlen(O.calls), "%s%s",
		         i ? "," : "", L.calls[i]);
	L.n_calls = 0;
	pthread_mutex_unlock(&L.mu);
	return O.calls;
}

static void test_a_failure_before_text_moves_on_to_the_next_candidate(void **state)
{
	W.lm[0].fail = BRG_E_UPSTREAM;
	W.lm[1].text = "from b";
	assert_string_equal(run_auto(), "a,b");
	assert_int_equal(O.rc, BRG_OK);
	assert_int_equal(O.b.res.finish, GEN_FINISH_STOP);
	assert_string_equal(O.b.text, "from b");
	assert_string_equal(O.info.model, "b"); /* the response names who answered */
	assert_string_equal(O.info.models_used[0], "b");
}

static void test_a_refusal_moves_on_at_once(void **state)
{
	W.lm[0].refuse = BRG_E_PROVIDER_UNAVAILABLE;
	W.lm[1].refuse = BRG_E_MODEL_LOAD;
	W.lm[2].text = "from c";
	assert_string_equal(run_auto(), "a,b,c");
	assert_int_equal(O.rc, BRG_OK);
	assert_string_equal(O.b.text, "from c");
	assert_string_equal(O.info.model, "c");
}

static void test_a_non_retriable_error_is_returned_as_is(void **state)
{
	W.lm[0].fail = BRG_E_BAD_REQUEST;
	assert_string_equal(run_auto(), "a");
	assert_int_equal(O.rc, BRG_OK);
	assert_int_equal(O.b.res.finish, GEN_FINISH_ERROR);
	assert_int_equal(O.b.res.error.code, BRG_E_BAD_REQUEST);
	W.lm[0].fail = BRG_OK;
	W.lm[1].refuse = BRG_E_BAD_REQUEST; /* b's turn; refused before anything ran */
	assert_string_equal(run_auto(), "b");
	assert_int_equal(O.rc, BRG_E_BAD_REQUEST);
}

static void test_no_fallback_once_text_was_sent(void **state)
{
	W.lm[0].text = "partial";
	W.lm[0].fail = BRG_E_UPSTREAM;
	assert_string_equal(run_auto(), "a");
	assert_int_equal(O.b.res.error.code, BRG_E_UPSTREAM);
	assert_string_equal(O.b.text, "partial");
}

static void test_when_every_candidate_fails_the_last_error_is_returned(void **state)
{
	W.lm[0].fail = BRG_E_UPSTREAM;
	W.lm[1].refuse = BRG_E_MODEL_BUSY;
	W.lm[2].fail = BRG_E_RESOURCE;
	assert_string_equal(run_auto(), "a,b,c");
	assert_int_equal(O.rc, BRG_OK);
	assert_int_equal(O.b.res.finish, GEN_FINISH_ERROR);
	assert_int_equal(O.b.res.error.code, BRG_E_RESOURCE);
	/* Every candidate refusing at once: the last refusal, synchronously. */
	W.lm[0].refuse = W.lm[2].refuse = BRG_E_PROVIDER_UNAVAILABLE;
	assert_string_equal(run_auto(), "b,a,c"); /* b's turn first */
	assert_int_equal(O.rc, BRG_E_PROVIDER_UNAVAILABLE);
}

static void test_with_fallback_off_the_first_failure_is_returned(void **state)
{
	W.cfg.auto_route_fallback = false;
	W.lm[0].fail = BRG_E_UPSTREAM;
	assert_string_equal(run_auto(), "a");
	assert_int_equal(O.b.res.error.code, BRG_E_UPSTREAM);
	assert_string_equal(O.info.model, "a");
}

/* ---- configuration ---------------------------------------------------------------- */

static void test_config_reads_the_settings_from_yaml_and_env(void **state)
{
	static const char yaml[] = "server:\n"
	                           "  auto_route_enabled: true\n"
	                           "  auto_route_strategy: Round_Robin\n"
	                           "  auto_route_fallback: false\n";
	char *const no_env[] = {NULL};
	struct config *c;
	struct brg_error e;
	brg_error_clear(&e);
	assert_int_equal(config_load_string("", 0, NULL, no_env, &c, &e), BRG_OK);
	assert_false(c->auto_route_enabled); /* the spec's defaults */
	assert_int_equal(c->auto_route_strategy, AUTO_ROUTE_LEAST_BUSY);
	assert_true(c->auto_route_fallback);
	config_free(c);
	assert_int_equal(config_load_string(yaml, sizeof yaml - 1, NULL, no_env, &c, &e), BRG_OK);
	assert_true(c->auto_route_enabled);
	assert_int_equal(c->auto_route_strategy, AUTO_ROUTE_ROUND_ROBIN);
	assert_false(c->auto_route_fallback);
	config_free(c);
	char *env[] = {"INFERENCE_AUTO_ROUTE_STRATEGY=capability_match",
	               "INFERENCE_AUTO_ROUTE_FALLBACK=true", NULL};
	assert_int_equal(config_load_string(yaml, sizeof yaml - 1, NULL, env, &c, &e), BRG_OK);
	assert_int_equal(c->auto_route_strategy, AUTO_ROUTE_CAPABILITY_MATCH);
	assert_true(c->auto_route_fallback);
	config_free(c);
}

static void test_config_refuses_an_unknown_strategy(void **state)
{
	char *env[] = {"INFERENCE_AUTO_ROUTE_STRATEGY=fastest", NULL};
	struct config *c = NULL;
	struct brg_error e;
	brg_error_clear(&e);
	assert_int_equal(config_load_string("", 0, NULL, env, &c, &e), BRG_E_CONFIG);
	assert_non_null(strstr(e.message, "INFERENCE_AUTO_ROUTE_STRATEGY"));
	assert_non_null(strstr(e.message, "least_busy, round_robin, capability_match"));
	config_free(c);
	static const char yaml[] = "server:\n  auto_route_strategy: random\n";
	char *const no_env[] = {NULL};
	c = NULL;
	assert_int_equal(config_load_string(yaml, sizeof yaml - 1, NULL, no_env, &c, &e),
	                 BRG_E_CONFIG);
	assert_non_null(strstr(e.message, ":2:"));
	assert_non_null(strstr(e.message, "auto_route_strategy"));
	config_free(c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_disabled_keeps_the_first_best_fit),
	    T(test_round_robin_alternates_between_best_fits),
	    T(test_round_robin_turns_one_counter_per_candidate_set),
	    T(test_balancing_never_loads_a_cold_model),
	    T(test_least_busy_picks_the_model_with_fewest_requests),
	    T(test_least_busy_weighs_load_by_slots),
	    T(test_least_busy_counts_busy_slots_without_admission),
	    T(test_capability_match_orders_by_fit_then_ready_then_context),
	    T(test_failed_models_come_last),
	    T(test_remote_candidate_takes_roles_from_model_roles),
	    T(test_without_a_pool_every_provider_model_is_a_candidate),
	    T(test_fallback_off_or_other_modes_carry_no_alternates),
	    T(test_a_failure_before_text_moves_on_to_the_next_candidate),
	    T(test_a_refusal_moves_on_at_once),
	    T(test_a_non_retriable_error_is_returned_as_is),
	    T(test_no_fallback_once_text_was_sent),
	    T(test_when_every_candidate_fails_the_last_error_is_returned),
	    T(test_with_fallback_off_the_first_failure_is_returned),
	    T(test_config_reads_the_settings_from_yaml_and_env),
	    T(test_config_refuses_an_unknown_strategy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
