/*
 * test_route.c — unit tests for route/ (prefixes, aliases, "auto" task
 * routing, the task → role table) and orchestrate/ ("single" reaches the
 * provider with its own model id; multi-model modes are refused), against
 * fake providers defined here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "orchestrate/orchestrate.h"
#include "route/route.h"

/* ---- a fake provider ---- */

struct fake_model {
	const char *id;
	const char *status;
	const char *roles[3];
	size_t n_roles;
};

struct fake {
	const struct fake_model *models;
	size_t n_models;
	enum brg_err generate_rc; /* what generate returns */
	int n_generate;
	char last_model[ROUTE_MODEL_MAX];
	size_t last_n_choices;
	char last_loaded[ROUTE_MODEL_MAX];
	char last_unloaded[ROUTE_MODEL_MAX];
};

static const struct fake_model *fake_find(struct fake *f, const char *id)
{
	for (size_t i = 0; i < f->n_models; i++)
		if (strcmp(f->models[i].id, id) == 0)
			return &f->models[i];
	return NULL;
}

static bool fake_has_model(void *impl, const char *id)
{
	return fake_find(impl, id) != NULL;
}

static void fake_visit(const struct fake_model *m, model_info_fn fn, void *ud)
{
	struct model_info mi = {.id = m->id,
	                        .status = m->status,
	                        .roles = m->roles,
	                        .n_roles = m->n_roles,
	                        .owned_by = "test"};
	fn(ud, &mi);
}

static void fake_each_model(void *impl, model_info_fn fn, void *ud)
{
	struct fake *f = impl;
	for (size_t i = 0; i < f->n_models; i++)
		fake_visit(&f->models[i], fn, ud);
}

static bool fake_model_info(void *impl, const char *id, model_info_fn fn, void *ud)
{
	const struct fake_model *m = fake_find(impl, id);
	if (m)
		fake_visit(m, fn, ud);
	return m != NULL;
}

static enum brg_err fake_generate(void *impl, const struct gen_request *r, struct sink *sinks,
                                  struct brg_error *err)
{
	struct fake *f = impl;
	f->n_generate++;
	snprintf(f->last_model, sizeof f->last_model, "%s", r->model);
	f->last_n_choices = r->n_choices;
	if (f->generate_rc)
		return brg_fail(err, f->generate_rc, "fake refuses");
	struct gen_result res = {.finish = GEN_FINISH_STOP};
	for (size_t i = 0; i < r->n_choices; i++)
		sinks[i].on_done(sinks[i].ud, &res);
	return BRG_OK;
}

static enum brg_err fake_load(void *impl, const char *id, struct brg_error *err)
{
	struct fake *f = impl;
	snprintf(f->last_loaded, sizeof f->last_loaded, "%s", id);
	return BRG_OK;
}

static enum brg_err fake_unload(void *impl, const char *id, struct brg_error *err)
{
	struct fake *f = impl;
	snprintf(f->last_unloaded, sizeof f->last_unloaded, "%s", id);
	return BRG_OK;
}

static void fake_readiness(void *impl, size_t *n_loaded, size_t *n_done, size_t *n_total)
{
	struct fake *f = impl;
	*n_loaded = 0;
	for (size_t i = 0; i < f->n_models; i++)
		*n_loaded += strcmp(f->models[i].status, "loaded") == 0;
	*n_done = 1;
	*n_total = 2;
}

#define FAKE_OPS(n)                                                                         \
	{                                                                                   \
		.name = n, .has_model = fake_has_model, .generate = fake_generate,          \
		.each_model = fake_each_model, .model = fake_model_info, .load = fake_load, \
		.unload = fake_unload, .readiness = fake_readiness,                         \
	}

static const struct provider_ops local_ops = FAKE_OPS("local");
static const struct provider_ops remote_ops = FAKE_OPS("remote");

static const struct fake_model local_models[] = {
    {"gen", "available", {"primary"}, 1},
    {"shared", "available", {"fast"}, 1},
};
static const struct fake_model remote_models[] = {
    {"shared", "loaded", {"primary"}, 1},
    {"coder-7b", "available", {"coder", "fast"}, 2},
    {"qwen2.5:7b", "available", {NULL}, 0},
    {"only-remote", "loaded", {NULL}, 0},
};

/* Two providers, "local" first. */
struct world {
	struct router *r;
	struct orchestrator *o;
	struct fake local, remote;
};

static struct world w;

static int world_up(void **state)
{
	memset(&w, 0, sizeof w);
	w.local = (struct fake){.models = local_models, .n_models = 2};
	w.remote = (struct fake){.models = remote_models, .n_models = 4};
	w.r = router_new();
	if (!w.r || router_add(w.r, (struct provider){&local_ops, &w.local}) ||
	    router_add(w.r, (struct provider){&remote_ops, &w.remote}))
		return -1;
	w.o = orchestrator_new(w.r, NULL, NULL);
	return w.o ? 0 : -1;
}

static int world_down(void **state)
{
	orchestrator_free(w.o);
	router_free(w.r);
	return 0;
}

/* A router with one "local" provider holding 'models'. */
static struct router *one_provider(struct fake *f, const struct fake_model *models, size_t n)
{
	*f = (struct fake){.models = models, .n_models = n};
	struct router *r = router_new();
	assert_non_null(r);
	assert_int_equal(router_add(r, (struct provider){&local_ops, f}), BRG_OK);
	return r;
}

static void resolve_ok(const char *name, const char *task, const struct fake *want_impl,
                       const char *want_model)
{
	struct route_target t;
	struct brg_error e;
	brg_error_clear(&e);
	enum brg_err rc = route_resolve(w.r, name, task, &t, &e);
	if (rc)
		fail_msg("%s: %s", name, e.message);
	assert_ptr_equal(t.p.impl, want_impl);
	assert_string_equal(t.model, want_model);
}

static const char *detail(const struct brg_error *e, const char *key)
{
	for (size_t i = 0; i < e->n_details; i++)
		if (strcmp(e->details[i].key, key) == 0)
			return e->details[i].s;
	return NULL;
}

static void resolve_not_found(struct router *r, const char *name, const char *task)
{
	struct route_target t;
	struct brg_error e;
	brg_error_clear(&e);
	assert_int_equal(route_resolve(r, name, task, &t, &e), BRG_E_MODEL_NOT_FOUND);
	assert_int_equal(e.code, BRG_E_MODEL_NOT_FOUND);
	assert_non_null(detail(&e, "model"));
	assert_string_equal(detail(&e, "model"), name);
}

/* ---- route ---- */

static void test_unprefixed_name_resolves_to_first_provider_having_it(void **state)
{
	resolve_ok("shared", NULL, &w.local, "shared");
	resolve_ok("gen", NULL, &w.local, "gen");
	resolve_ok("only-remote", NULL, &w.remote, "only-remote");
}

static void test_provider_prefix_picks_that_provider(void **state)
{
	resolve_ok("local:shared", NULL, &w.local, "shared");
	resolve_ok("remote:shared", NULL, &w.remote, "shared");
}

static void test_inference_prefix_is_alias_of_local(void **state)
{
	resolve_ok("inference:gen", NULL, &w.local, "gen");
	resolve_not_found(w.r, "inference:only-remote", NULL);
}

static void test_prefix_of_provider_lacking_model_is_not_found(void **state)
{
	resolve_not_found(w.r, "local:only-remote", NULL);
	resolve_not_found(w.r, "local:", NULL);
}

static void test_unknown_prefix_is_part_of_model_name(void **state)
{
	resolve_ok("qwen2.5:7b", NULL, &w.remote, "qwen2.5:7b");
	resolve_ok("remote:qwen2.5:7b", NULL, &w.remote, "qwen2.5:7b");
}

static void test_unknown_model_is_not_found_with_model_detail(void **state)
{
	struct route_target t;
	struct brg_error e;
	brg_error_clear(&e);
	assert_int_equal(route_resolve(w.r, "nope", NULL, &t, &e), BRG_E_MODEL_NOT_FOUND);
	assert_string_equal(detail(&e, "model"), "nope");
	assert_non_null(strstr(e.message, "'nope'"));
	resolve_not_found(w.r, "", NULL);
	resolve_not_found(w.r, "other:gen", NULL);
}

static void test_model_name_too_long_is_not_found(void **state)
{
	char name[ROUTE_MODEL_MAX + 10];
	memset(name, 'x', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	struct route_target t;
	assert_int_equal(route_resolve(w.r, name, NULL, &t, NULL), BRG_E_MODEL_NOT_FOUND);
}

static void test_auto_code_picks_coder_role(void **state)
{
	resolve_ok("auto", "code", &w.remote, "coder-7b");
	resolve_ok("auto", "debug", &w.remote, "coder-7b");
}

static void test_auto_without_preferred_role_falls_back_to_primary(void **state)
{
	static const struct fake_model models[] = {
	    {"fast-1", "available", {"fast"}, 1},
	    {"main", "available", {"primary"}, 1},
	    {"think", "available", {"thinker"}, 1},
	};
	struct fake f;
	struct router *r = one_provider(&f, models, 3);
	struct route_target t;
	assert_int_equal(route_resolve(r, "auto", "code", &t, NULL), BRG_OK);
	assert_string_equal(t.model, "main");
	assert_int_equal(route_resolve(r, "auto", "reason", &t, NULL), BRG_OK);
	assert_string_equal(t.model, "think");
	router_free(r);
}

static void test_auto_without_task_picks_primary(void **state)
{
	static const struct fake_model models[] = {
	    {"coder", "loaded", {"coder"}, 1},
	    {"main", "available", {"primary"}, 1},
	};
	struct fake f;
	struct router *r = one_provider(&f, models, 2);
	struct route_target t;
	assert_int_equal(route_resolve(r, "auto", NULL, &t, NULL), BRG_OK);
	assert_string_equal(t.model, "main");
	assert_int_equal(route_resolve(r, "auto", "general", &t, NULL), BRG_OK);
	assert_string_equal(t.model, "main");
	router_free(r);
}

/*
 * "auto" here picks remote's loaded primary "shared"; local also has a model
 * with that id (role fast).  The pick must go to the provider that listed
 * it, not to the first provider that happens to have the same id.
 */
static void test_auto_routes_to_provider_that_listed_the_pick(void **state)
{
	resolve_ok("auto", NULL, &w.remote, "shared");
}

static void test_auto_prefers_loaded_among_equal_roles(void **state)
{
	static const struct fake_model models[] = {
	    {"cold", "available", {"primary"}, 1},
	    {"warm", "loaded", {"primary"}, 1},
	};
	struct fake f;
	struct router *r = one_provider(&f, models, 2);
	struct route_target t;
	assert_int_equal(route_resolve(r, "auto", NULL, &t, NULL), BRG_OK);
	assert_string_equal(t.model, "warm");
	router_free(r);
}

static void test_auto_skips_failed_models(void **state)
{
	static const struct fake_model models[] = {
	    {"broken-coder", "failed", {"coder"}, 1},
	    {"main", "available", {"primary"}, 1},
	};
	struct fake f;
	struct router *r = one_provider(&f, models, 2);
	struct route_target t;
	assert_int_equal(route_resolve(r, "auto", "code", &t, NULL), BRG_OK);
	assert_string_equal(t.model, "main");
	router_free(r);
}

static void test_auto_with_only_failed_models_is_not_found(void **state)
{
	static const struct fake_model models[] = {{"broken", "failed", {"primary"}, 1}};
	struct fake f;
	struct router *r = one_provider(&f, models, 1);
	resolve_not_found(r, "auto", "code");
	router_free(r);
}

static void test_route_task_known(void **state)
{
	assert_true(route_task_known("code"));
	assert_true(route_task_known("general"));
	assert_true(route_task_known("summarize_long"));
	assert_true(route_task_known("rag"));
	assert_false(route_task_known("poetry"));
	assert_false(route_task_known("CODE"));
	assert_false(route_task_known(""));
	assert_false(route_task_known(NULL));
}

static void test_route_task_roles_table(void **state)
{
	const char *pref, *fb;
	route_task_roles("code", &pref, &fb);
	assert_string_equal(pref, "coder");
	assert_string_equal(fb, "primary");
	route_task_roles("document", &pref, &fb);
	assert_string_equal(pref, "longctx");
	assert_string_equal(fb, "thinker");
	route_task_roles("chat", &pref, &fb);
	assert_string_equal(pref, "primary");
	assert_null(fb);
	route_task_roles(NULL, &pref, &fb);
	assert_string_equal(pref, "primary");
	assert_null(fb);
}

struct seen {
	char ids[8][ROUTE_MODEL_MAX];
	size_t n;
};

static void collect(void *ud, const struct model_info *m)
{
	struct seen *s = ud;
	if (s->n < 8)
		snprintf(s->ids[s->n++], ROUTE_MODEL_MAX, "%s", m->id);
}

static void test_each_model_visits_all_in_provider_order(void **state)
{
	struct seen s = {.n = 0};
	route_each_model(w.r, collect, &s);
	assert_int_equal(s.n, 6);
	assert_string_equal(s.ids[0], "gen");
	assert_string_equal(s.ids[1], "shared");
	assert_string_equal(s.ids[2], "shared");
	assert_string_equal(s.ids[5], "only-remote");
}

static void test_route_model_looks_up_one_by_client_name(void **state)
{
	struct seen s = {.n = 0};
	assert_true(route_model(w.r, "remote:coder-7b", collect, &s));
	assert_int_equal(s.n, 1);
	assert_string_equal(s.ids[0], "coder-7b");
	assert_false(route_model(w.r, "nope", collect, &s));
	assert_false(route_model(w.r, "auto", collect, &s));
	assert_int_equal(s.n, 1);
}

static void test_load_and_unload_reach_provider_with_its_own_id(void **state)
{
	struct brg_error e;
	brg_error_clear(&e);
	assert_int_equal(route_load(w.r, "remote:coder-7b", &e), BRG_OK);
	assert_string_equal(w.remote.last_loaded, "coder-7b");
	assert_int_equal(route_unload(w.r, "inference:gen", &e), BRG_OK);
	assert_string_equal(w.local.last_unloaded, "gen");
	assert_int_equal(route_load(w.r, "auto", &e), BRG_E_MODEL_NOT_FOUND);
	assert_int_equal(route_unload(w.r, "missing", &e), BRG_E_MODEL_NOT_FOUND);
}

static void test_readiness_sums_over_providers(void **state)
{
	size_t loaded, done, total;
	route_readiness(w.r, &loaded, &done, &total);
	assert_int_equal(loaded, 2); /* remote's "shared" and "only-remote" */
	assert_int_equal(done, 2);
	assert_int_equal(total, 4);
}

static void test_router_add_refuses_past_max_providers(void **state)
{
	struct router *r = router_new();
	struct fake f = {.n_models = 0};
	for (int i = 0; i < ROUTE_MAX_PROVIDERS; i++)
		assert_int_equal(router_add(r, (struct provider){&local_ops, &f}), BRG_OK);
	assert_int_not_equal(router_add(r, (struct provider){&local_ops, &f}), BRG_OK);
	router_free(r);
	router_free(NULL);
}

/* ---- orchestrate ---- */

struct done_count {
	int n_done[4];
};

static void count_done(void *ud, const struct gen_result *res)
{
	int *n = ud;
	(*n)++;
}

static int ignore_piece(void *ud, const char *utf8, size_t len)
{
	return 0;
}

static struct orch_request orch_req(const char *mode, const char *model, const char *task,
                                    size_t n_choices)
{
	struct orch_request q = {.mode = mode, .model = model, .task_type = task};
	q.gen.prompt = "hello";
	q.gen.params = gen_default_params();
	q.gen.n_choices = n_choices;
	return q;
}

static void sinks_for(struct done_count *c, struct sink *sinks, size_t n)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < n; i++)
		sinks[i] = (struct sink){ignore_piece, count_done, &c->n_done[i]};
}

static void test_orchestrate_single_passes_resolved_model_id(void **state)
{
	struct orch_request q = orch_req("single", "remote:coder-7b", NULL, 2);
	struct sink sinks[2];
	struct done_count c;
	sinks_for(&c, sinks, 2);
	struct orch_info info;
	struct brg_error e;
	brg_error_clear(&e);
	assert_int_equal(orchestrate_run(w.o, &q, NULL, sinks, &info, &e), BRG_OK);
	assert_int_equal(w.remote.n_generate, 1);
	assert_int_equal(w.local.n_generate, 0);
	assert_string_equal(w.remote.last_model, "coder-7b");
	assert_int_equal(w.remote.last_n_choices, 2);
	assert_string_equal(info.model, "remote:coder-7b"); /* as the client wrote it */
	assert_int_equal(c.n_done[0], 1);
	assert_int_equal(c.n_done[1], 1);
}

static void test_orchestrate_auto_reports_picked_model(void **state)
{
	struct orch_request q = orch_req("single", "auto", "code", 1);
	struct sink sinks[1];
	struct done_count c;
	sinks_for(&c, sinks, 1);
	struct orch_info info;
	assert_int_equal(orchestrate_run(w.o, &q, NULL, sinks, &info, NULL), BRG_OK);
	assert_string_equal(w.remote.last_model, "coder-7b");
	assert_string_equal(info.model, "coder-7b");
	assert_int_equal(c.n_done[0], 1);
}

/* Without models to fill the other parts, a multi-model mode is a clear
 * 400 before anything runs (test_orchestrate.c runs the modes). */
static void test_orchestrate_multi_model_mode_without_pool_is_400(void **state)
{
	static const char *const modes[] = {"critique", "debate", "ensemble", "pipeline"};
	for (size_t i = 0; i < 4; i++) {
		struct orch_request q = orch_req(modes[i], "gen", NULL, 1);
		struct sink sinks[1];
		struct done_count c;
		sinks_for(&c, sinks, 1);
		struct orch_info info;
		struct brg_error e;
		brg_error_clear(&e);
		assert_int_equal(orchestrate_run(w.o, &q, NULL, sinks, &info, &e),
		                 BRG_E_BAD_REQUEST);
		assert_string_equal(detail(&e, "orchestration_mode"), modes[i]);
		assert_non_null(strstr(e.message, "INFERENCE_ORCHESTRATION_MODELS"));
		assert_int_equal(c.n_done[0], 0);
	}
	assert_int_equal(w.local.n_generate + w.remote.n_generate, 0);
}

static void test_orchestrate_unknown_model_never_generates(void **state)
{
	struct orch_request q = orch_req("single", "missing", NULL, 1);
	struct sink sinks[1];
	struct done_count c;
	sinks_for(&c, sinks, 1);
	struct orch_info info;
	struct brg_error e;
	brg_error_clear(&e);
	assert_int_equal(orchestrate_run(w.o, &q, NULL, sinks, &info, &e), BRG_E_MODEL_NOT_FOUND);
	assert_string_equal(detail(&e, "model"), "missing");
	assert_int_equal(w.local.n_generate + w.remote.n_generate, 0);
	assert_int_equal(c.n_done[0], 0);
}

static void test_orchestrate_returns_provider_error(void **state)
{
	w.local.generate_rc = BRG_E_MODEL_BUSY;
	struct orch_request q = orch_req("single", "gen", NULL, 1);
	struct sink sinks[1];
	struct done_count c;
	sinks_for(&c, sinks, 1);
	struct orch_info info;
	struct brg_error e;
	brg_error_clear(&e);
	assert_int_equal(orchestrate_run(w.o, &q, NULL, sinks, &info, &e), BRG_E_MODEL_BUSY);
	assert_int_equal(e.code, BRG_E_MODEL_BUSY);
	assert_int_equal(w.local.n_generate, 1);
	assert_int_equal(c.n_done[0], 0);
}

static void test_orch_mode_parse_and_name_round_trip(void **state)
{
	static const char *names[] = {"single",   "critique", "debate",
	                              "ensemble", "pipeline", "self_consistency"};
	for (int i = 0; i < 6; i++) {
		assert_int_equal(orch_mode_parse(names[i]), i);
		assert_string_equal(orch_mode_name((enum orch_mode)i), names[i]);
	}
	assert_int_equal(orch_mode_parse("SINGLE"), -1);
	assert_int_equal(orch_mode_parse("swarm"), -1);
	assert_int_equal(orch_mode_parse(""), -1);
	assert_int_equal(orch_mode_parse(NULL), -1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, world_up, world_down)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_unprefixed_name_resolves_to_first_provider_having_it),
	    T(test_provider_prefix_picks_that_provider),
	    T(test_inference_prefix_is_alias_of_local),
	    T(test_prefix_of_provider_lacking_model_is_not_found),
	    T(test_unknown_prefix_is_part_of_model_name),
	    T(test_unknown_model_is_not_found_with_model_detail),
	    T(test_model_name_too_long_is_not_found),
	    T(test_auto_code_picks_coder_role),
	    T(test_auto_without_preferred_role_falls_back_to_primary),
	    T(test_auto_without_task_picks_primary),
	    T(test_auto_routes_to_provider_that_listed_the_pick),
	    T(test_auto_prefers_loaded_among_equal_roles),
	    T(test_auto_skips_failed_models),
	    T(test_auto_with_only_failed_models_is_not_found),
	    T(test_route_task_known),
	    T(test_route_task_roles_table),
	    T(test_each_model_visits_all_in_provider_order),
	    T(test_route_model_looks_up_one_by_client_name),
	    T(test_load_and_unload_reach_provider_with_its_own_id),
	    T(test_readiness_sums_over_providers),
	    T(test_router_add_refuses_past_max_providers),
	    T(test_orchestrate_single_passes_resolved_model_id),
	    T(test_orchestrate_auto_reports_picked_model),
	    T(test_orchestrate_multi_model_mode_without_pool_is_400),
	    T(test_orchestrate_unknown_model_never_generates),
	    T(test_orchestrate_returns_provider_error),
	    T(test_orch_mode_parse_and_name_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
