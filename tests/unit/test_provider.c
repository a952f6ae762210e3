/*
 * test_provider.c — unit tests for provider/local: the model registry
 * (listing, on-demand and explicit loads, failed loads, unloads that wait
 * for in-flight work, preload readiness) and shutdown, all through the
 * struct provider_ops table with the real stories260K model.  Models are
 * found in $BRIGADE_MODELS_DIR, default ../shared/models (tests run from
 * the repository root).  Every wait has a timeout, so a broken provider
 * fails a test instead of hanging it.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "testutil.h"

#include "config/config.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/stream.h"
#include "engine/engine.h"
#include "provider/local.h"

#define BACKEND_DIR "deps/llama-bin/bins/linux-x64"
#define WAIT_S      60
#define MAX_CHOICES 4
#define TEXT_MAX    (1 << 20)
/*
 * The "long" generation that unload and close meet in flight.  The gate
 * sink below holds it at its first piece until the call under test is
 * provably waiting, so it need not be long to be in flight; it is kept
 * short because attention cost grows with length: 3000 tokens in a 4096
 * context take 5-8 s on an idle 2-core machine and over 60 s on a busy one.
 */
#define LONG_TOKENS 300

/* A model section for stories260K under id 'id' (a string literal). */
#define STORIES(id, ctx, slots)                                                 \
	"  " id ":\n    file: stories260K.gguf\n    context_length: " #ctx "\n" \
	"    slots: " #slots "\n    threads: 2\n"

/* ---- fixture: a config built from YAML text and a provider over it ---- */

struct fx {
	struct config *cfg;
	struct local_provider *lp;
	struct provider p;
};

static const char *models_dir(void)
{
	const char *dir = getenv("BRIGADE_MODELS_DIR");
	return dir && *dir ? dir : "../shared/models";
}

/* 'body' is the YAML after the server section (preload:, models:). */
static void fx_open(struct fx *f, const char *body)
{
	char yaml[4096];
	snprintf(yaml, sizeof yaml, "server:\n  models_dir: \"%s\"\n%s", models_dir(), body);
	char *const no_env[] = {NULL};
	struct brg_error err = {0};
	if (config_load_string(yaml, strlen(yaml), NULL, no_env, &f->cfg, &err) != BRG_OK)
		fail_msg("config_load_string: %s", err.message);
	f->lp = local_provider_new(f->cfg);
	assert_non_null(f->lp);
	f->p = local_provider_get(f->lp);
}

static void fx_close(struct fx *f)
{
	local_provider_free(f->lp);
	config_free(f->cfg);
}

/* ---- model info, copied out of the callback ---- */

struct info {
	char id[64];
	char status[16];
	char error[BRG_ERR_MSG_MAX];
	bool has_error;
	long long memory_mb;
	int context_length;
	char roles[4][16];
	size_t n_roles;
	char owned_by[32];
	int n_slots;
	int n_busy_slots;
};

struct info_list {
	struct info items[8];
	size_t n;
};

static void copy_info(struct info *o, const struct model_info *m)
{
	memset(o, 0, sizeof *o);
	snprintf(o->id, sizeof o->id, "%s", m->id);
	snprintf(o->status, sizeof o->status, "%s", m->status);
	o->has_error = m->error != NULL;
	snprintf(o->error, sizeof o->error, "%s", m->error ? m->error : "");
	o->memory_mb = m->memory_mb;
	o->context_length = m->context_length;
	o->n_roles = m->n_roles;
	for (size_t i = 0; i < m->n_roles && i < 4; i++)
		snprintf(o->roles[i], sizeof o->roles[i], "%s", m->roles[i]);
	snprintf(o->owned_by, sizeof o->owned_by, "%s", m->owned_by);
	o->n_slots = m->n_slots;
	o->n_busy_slots = m->n_busy_slots;
}

static void on_info(void *ud, const struct model_info *m)
{
	struct info_list *l = ud;
	if (l->n < sizeof l->items / sizeof l->items[0])
		copy_info(&l->items[l->n], m);
	l->n++;
}

static struct info info_of(struct fx *f, const char *id)
{
	struct info_list l = {0};
	assert_true(f->p.ops->model(f->p.impl, id, on_info, &l));
	assert_int_equal(l.n, 1);
	return l.items[0];
}

/* ---- time ---- */

static struct timespec deadline(int seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	return ts;
}

static bool wait_status(struct fx *f, const char *id, const char *status)
{
	long long until = now_ms() + WAIT_S * 1000LL;
	while (strcmp(info_of(f, id).status, status) != 0) {
		if (now_ms() > until)
			return false;
		sleep_ms(2);
	}
	return true;
}

/* ---- generation through a gen_stream ---- */

static struct gen_request request(const char *model, const char *prompt, int n_max,
                                  size_t n_choices)
{
	struct gen_request r = {.model = model, .prompt = prompt, .n_choices = n_choices};
	r.params = gen_default_params();
	r.params.temperature = 0.0f;
	r.params.n_max_tokens = n_max;
	return r;
}

/* Calls generate with the stream's sinks (or 'sinks' when not NULL). */
static enum brg_err generate(struct fx *f, struct gen_request *r, struct gen_stream *s,
                             struct sink *sinks, struct brg_error *err)
{
	struct sink own[MAX_CHOICES];
	assert_true(r->n_choices <= MAX_CHOICES);
	for (size_t i = 0; i < r->n_choices; i++)
		own[i] = gen_stream_sink(s, i);
	r->cancel = gen_stream_cancel_flag(s);
	return f->p.ops->generate(f->p.impl, r, sinks ? sinks : own, err);
}

static bool wait_done(struct gen_stream *s)
{
	long long until = now_ms() + WAIT_S * 1000LL;
	while (!gen_stream_all_done(s)) {
		if (now_ms() > until)
			return false;
		sleep_ms(2);
	}
	return true;
}

/* Choice i's text so far (the caller frees it) and whether it is done. */
static char *take(struct gen_stream *s, size_t i, bool *is_done, struct gen_result *res)
{
	struct buf b;
	buf_init(&b, TEXT_MAX);
	assert_int_equal(gen_stream_take(s, i, &b, is_done, res), BRG_OK);
	char *text = buf_take(&b);
	buf_fini(&b);
	return text ? text : calloc(1, 1);
}

/* A finished choice's text and result. */
static char *take_done(struct gen_stream *s, size_t i, struct gen_result *res)
{
	bool is_done = false;
	char *text = take(s, i, &is_done, res);
	assert_true(is_done);
	return text;
}

/* No sink of the stream has had a piece or an on_done. */
static void assert_untouched(struct gen_stream *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool is_done = true;
		char *text = take(s, i, &is_done, NULL);
		assert_false(is_done);
		assert_string_equal(text, "");
		free(text);
	}
}

/* Runs one generation to its end; fails on an error or a timeout. */
static struct gen_stream *run(struct fx *f, struct gen_request *r)
{
	struct gen_stream *s = gen_stream_new(r->n_choices, TEXT_MAX);
	assert_non_null(s);
	struct brg_error err = {0};
	if (generate(f, r, s, NULL, &err) != BRG_OK)
		fail_msg("generate: %s", err.message);
	assert_true(wait_done(s));
	return s;
}

/* ---- a sink that holds its first piece until opened ---- */

/* Wraps a stream sink: the first piece blocks the scheduler until
 * gate_open(), so the generation is provably in flight meanwhile; on_done
 * records whether 'watch' (the blocking call under test has returned) was
 * already set. */
struct gate {
	struct sink inner;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool has_piece;
	bool is_open;
	const atomic_bool *watch;
	bool was_watch_set_at_done;
	int n_done;
};

static int gate_piece(void *ud, const char *utf8, size_t len)
{
	struct gate *g = ud;
	struct timespec until = deadline(WAIT_S);
	pthread_mutex_lock(&g->mu);
	g->has_piece = true;
	pthread_cond_broadcast(&g->cv);
	while (!g->is_open && pthread_cond_timedwait(&g->cv, &g->mu, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&g->mu);
	return g->inner.on_piece(g->inner.ud, utf8, len);
}

static void gate_done(void *ud, const struct gen_result *res)
{
	struct gate *g = ud;
	pthread_mutex_lock(&g->mu);
	g->was_watch_set_at_done = atomic_load(g->watch);
	g->n_done++;
	pthread_mutex_unlock(&g->mu);
	g->inner.on_done(g->inner.ud, res);
}

static struct sink gate_init(struct gate *g, struct sink inner, const atomic_bool *watch)
{
	memset(g, 0, sizeof *g);
	g->inner = inner;
	g->watch = watch;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	return (struct sink){gate_piece, gate_done, g};
}

static bool gate_wait_piece(struct gate *g)
{
	struct timespec until = deadline(WAIT_S);
	pthread_mutex_lock(&g->mu);
	while (!g->has_piece && pthread_cond_timedwait(&g->cv, &g->mu, &until) != ETIMEDOUT)
		;
	bool ok = g->has_piece;
	pthread_mutex_unlock(&g->mu);
	return ok;
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->is_open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static void gate_fini(struct gate *g)
{
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
}

/* ---- a blocking provider call on its own thread ---- */

struct call {
	struct fx *f;
	const char *id; /* unload this model; NULL: local_provider_close */
	enum brg_err rc;
	atomic_bool has_returned;
	pthread_t thread;
};

static void *call_main(void *arg)
{
	struct call *c = arg;
	if (c->id)
		c->rc = c->f->p.ops->unload(c->f->p.impl, c->id, NULL);
	else
		local_provider_close(c->f->lp);
	atomic_store(&c->has_returned, true);
	return NULL;
}

static void call_start(struct call *c, struct fx *f, const char *id)
{
	c->f = f;
	c->id = id;
	c->rc = BRG_E_INTERNAL;
	atomic_init(&c->has_returned, false);
	assert_int_equal(pthread_create(&c->thread, NULL, call_main, c), 0);
}

static bool call_join(struct call *c)
{
	struct timespec until = deadline(WAIT_S);
	return pthread_timedjoin_np(c->thread, NULL, &until) == 0;
}

/* ---- tests ---- */

static void test_has_model_is_true_only_for_configured_ids(void **state)
{
	struct fx f;
	fx_open(&f, "models:\n" STORIES("a", 256, 1) STORIES("b", 256, 1));
	assert_string_equal(f.p.ops->name, "local");
	assert_true(f.p.ops->has_model(f.p.impl, "a"));
	assert_true(f.p.ops->has_model(f.p.impl, "b"));
	assert_false(f.p.ops->has_model(f.p.impl, "c"));
	assert_false(f.p.ops->has_model(f.p.impl, ""));
	struct info_list l = {0};
	assert_false(f.p.ops->model(f.p.impl, "c", on_info, &l));
	assert_int_equal(l.n, 0);
	fx_close(&f);
}

static void test_each_model_lists_config_in_order_as_available(void **state)
{
	struct fx f;
	fx_open(&f, "models:\n"
	            "  zeta:\n    file: stories260K.gguf\n    context_length: 512\n"
	            "    slots: 3\n    roles: [fast, coder]\n"
	            "  alpha:\n    file: stories260K.gguf\n");
	struct info_list l = {0};
	f.p.ops->each_model(f.p.impl, on_info, &l);
	assert_int_equal(l.n, 2);
	const struct info *z = &l.items[0], *a = &l.items[1];
	assert_string_equal(z->id, "zeta");
	assert_string_equal(a->id, "alpha");
	for (size_t i = 0; i < 2; i++) {
		assert_string_equal(l.items[i].status, "available");
		assert_false(l.items[i].has_error);
		assert_string_equal(l.items[i].owned_by, "brigade");
		assert_true(l.items[i].memory_mb > 0); /* the file's size, unloaded */
		assert_int_equal(l.items[i].n_busy_slots, 0);
	}
	assert_int_equal(z->context_length, 512);
	assert_int_equal(z->n_slots, 3);
	assert_int_equal(z->n_roles, 2);
	assert_string_equal(z->roles[0], "fast");
	assert_string_equal(z->roles[1], "coder");
	assert_int_equal(a->context_length, 4096); /* the config's defaults */
	assert_int_equal(a->n_slots, 1);
	assert_int_equal(a->n_roles, 1);
	assert_string_equal(a->roles[0], "primary");
	fx_close(&f);
}

static void test_generate_loads_on_demand_and_runs_every_choice(void **state)
{
	struct fx f;
	fx_open(&f, "models:\n" STORIES("a", 256, 2));
	assert_string_equal(info_of(&f, "a").status, "available");
	struct gen_request r = request("a", "Once upon a time", 12, 2);
	struct gen_stream *s = run(&f, &r);
	struct info i = info_of(&f, "a");
	assert_string_equal(i.status, "loaded");
	assert_true(i.memory_mb > 0);
	for (size_t k = 0; k < 2; k++) {
		struct gen_result res;
		char *text = take_done(s, k, &res);
		assert_int_equal(res.finish, GEN_FINISH_LENGTH);
		assert_int_equal(res.n_completion, 12);
		assert_true(res.n_prompt > 0);
		assert_true(strlen(text) > 0);
		free(text);
	}
	gen_stream_free(s);
	fx_close(&f);
}

/* Choice 0's and choice 1's text of one seeded, sampled generation. */
static void sample_two(struct fx *f, uint32_t seed, char **c0, char **c1)
{
	/* 12 tokens tell seeds apart; the longer a sampled run, the likelier
	 * that one step's batch shape (both choices admitted in one step, or
	 * one step apart) tips a sample near a tie and the texts part. */
	struct gen_request r = request("a", "Once upon a time", 12, 2);
	r.params.temperature = 1.0f;
	r.params.has_seed = true;
	r.params.seed = seed;
	struct gen_stream *s = run(f, &r);
	struct gen_result res;
	*c0 = take_done(s, 0, &res);
	*c1 = take_done(s, 1, &res);
	gen_stream_free(s);
}

/* Seeded sampling repeats exactly only when every prompt is decoded the
 * same way: with prefix reuse the second run decodes just the last prompt
 * token, and float rounding can tip a sample near a tie (as llama-server
 * warns for cache_prompt) — so this test turns reuse off. */
static void test_choice_i_samples_with_seed_plus_i(void **state)
{
	struct fx f;
	fx_open(&f, "models:\n" STORIES("a", 256, 2) "    prefix_cache: false\n");
	char *a0, *a1, *b0, *b1, *c0, *c1;
	sample_two(&f, 42, &a0, &a1);
	sample_two(&f, 42, &b0, &b1);
	sample_two(&f, 43, &c0, &c1);
	assert_string_not_equal(a0, a1); /* seeds 42 and 43 */
	assert_string_equal(a0, b0);     /* same seed, same text */
	assert_string_equal(a1, b1);
	assert_string_equal(a1, c0); /* choice 1 of seed 42 is choice 0 of 43 */
	free(a0), free(a1), free(b0), free(b1), free(c0), free(c1);
	fx_close(&f);
}

static void test_generate_unknown_model_is_not_found_without_sinks(void **state)
{
	struct fx f;
	fx_open(&f, "models:\n" STORIES("a", 256, 1));
	struct gen_request r = request("nope", "Once", 4, 2);
	struct gen_stream *s = gen_stream_new(2, TEXT_MAX);
	struct brg_error err = {0};
	assert_int_equal(generate(&f, &r, s, NULL, &err), BRG_E_MODEL_NOT_FOUND);
	assert_non_null(strstr(err.message, "nope"));
	assert_untouched(s, 2);
	assert_string_equal(info_of(&f, "a").status, "available"); /* nothing loaded */
	gen_stream_free(s);
	fx_close(&f);
}

static void test_prompt_over_context_is_budget_error_without_sinks(void **state)
{
	struct fx f;
	fx_open(&f, "models:\n" STORIES("a", 64, 2));
	char prompt[4096] = "";
	for (int i = 0; i < 40; i++)
		strcat(prompt, "Once upon a time ");
	struct gen_request r = request("a", prompt, 4, 2);
	struct gen_stream *s = gen_stream_new(2, TEXT_MAX);
	struct brg_error err = {0};
	assert_int_equal(generate(&f, &r, s, NULL, &err), BRG_E_CONTEXT_BUDGET);
	assert_int_equal(err.code, BRG_E_CONTEXT_BUDGET);
	assert_untouched(s, 2);
	/* Every reference taken for the two choices was given back: the unload
	 * does not wait forever. */
	struct call c;
	call_start(&c, &f, "a");
	assert_true(call_join(&c));
	assert_int_equal(c.rc, BRG_OK);
	assert_string_equal(info_of(&f, "a").status, "available");
	gen_stream_free(s);
	fx_close(&f);
}

static void test_load_of_missing_file_fails_with_reason(void **state)
{
	struct fx f;
	fx_open(&f, "models:\n  ghost:\n    file: no-such-model.gguf\n");
	struct brg_error err = {0};
	assert_int_equal(f.p.ops->load(f.p.impl, "ghost", &err), BRG_E_MODEL_LOAD);
	assert_true(strlen(err.message) > 0);
	struct info i = info_of(&f, "ghost");
	assert_string_equal(i.status, "failed");
	assert_true(i.has_error);
	assert_string_equal(i.error, err.message);
	/* A request retries the load and fails the same way, touching no sink. */
	struct gen_request r = request("ghost", "Once", 4, 1);
	struct gen_stream *s = gen_stream_new(1, TEXT_MAX);
	assert_int_equal(generate(&f, &r, s, NULL, &err), BRG_E_MODEL_LOAD);
	assert_untouched(s, 1);
	/* Unloading a failed model clears the failure. */
	assert_int_equal(f.p.ops->unload(f.p.impl, "ghost", &err), BRG_OK);
	i = info_of(&f, "ghost");
	assert_string_equal(i.status, "available");
	assert_false(i.has_error);
	gen_stream_free(s);
	fx_close(&f);
}

static void test_unload_waits_for_in_flight_generation_to_finish(void **state)
{
	struct fx f;
	fx_open(&f, "models:\n" STORIES("a", 512, 1));
	struct gen_request r = request("a", "Once upon a time", LONG_TOKENS, 1);
	struct gen_stream *s = gen_stream_new(1, TEXT_MAX);
	struct call c;
	struct gate g;
	struct sink gated = gate_init(&g, gen_stream_sink(s, 0), &c.has_returned);
	struct brg_error err = {0};
	assert_int_equal(generate(&f, &r, s, &gated, &err), BRG_OK);
	assert_true(gate_wait_piece(&g)); /* in flight, held at its first piece */
	call_start(&c, &f, "a");
	assert_true(wait_status(&f, "a", "unloading"));
	assert_false(atomic_load(&c.has_returned));
	gate_open(&g);
	assert_true(call_join(&c));
	assert_int_equal(c.rc, BRG_OK);
	assert_int_equal(g.n_done, 1);
	assert_false(g.was_watch_set_at_done); /* on_done came before unload returned */
	struct gen_result res;
	free(take_done(s, 0, &res));
	assert_int_equal(res.finish, GEN_FINISH_LENGTH); /* the work was not lost */
	assert_int_equal(res.n_completion, LONG_TOKENS);
	assert_string_equal(info_of(&f, "a").status, "available");
	gate_fini(&g);
	gen_stream_free(s);
	fx_close(&f);
}

static void test_unload_of_unloaded_is_ok_and_of_unknown_is_not_found(void **state)
{
	struct fx f;
	fx_open(&f, "models:\n" STORIES("a", 256, 1));
	struct brg_error err = {0};
	assert_int_equal(f.p.ops->unload(f.p.impl, "a", &err), BRG_OK);
	assert_string_equal(info_of(&f, "a").status, "available");
	assert_int_equal(f.p.ops->unload(f.p.impl, "nope", &err), BRG_E_MODEL_NOT_FOUND);
	assert_non_null(strstr(err.message, "nope"));
	/* And a loaded one with nothing in flight unloads at once. */
	assert_int_equal(f.p.ops->load(f.p.impl, "a", &err), BRG_OK);
	assert_string_equal(info_of(&f, "a").status, "loaded");
	assert_int_equal(f.p.ops->unload(f.p.impl, "a", &err), BRG_OK);
	assert_string_equal(info_of(&f, "a").status, "available");
	fx_close(&f);
}

static void readiness(struct fx *f, size_t *n_loaded, size_t *n_done, size_t *n_total)
{
	f->p.ops->readiness(f->p.impl, n_loaded, n_done, n_total);
}

static void test_preload_reports_readiness_when_done(void **state)
{
	struct fx f;
	fx_open(&f, "preload: [a]\nmodels:\n" STORIES("a", 256, 1) STORIES("b", 256, 1));
	size_t n_loaded = 9, n_done = 9, n_total = 9;
	readiness(&f, &n_loaded, &n_done, &n_total);
	assert_int_equal(n_loaded, 0);
	assert_int_equal(n_done, 0);
	assert_int_equal(n_total, 1);
	struct brg_error err = {0};
	assert_int_equal(local_provider_preload(f.lp, &err), BRG_OK);
	long long until = now_ms() + WAIT_S * 1000LL;
	do {
		sleep_ms(2);
		readiness(&f, &n_loaded, &n_done, &n_total);
	} while (n_done < n_total && now_ms() < until);
	assert_int_equal(n_done, 1);
	assert_int_equal(n_total, 1);
	assert_int_equal(n_loaded, 1);
	assert_string_equal(info_of(&f, "a").status, "loaded");
	assert_string_equal(info_of(&f, "b").status, "available");
	fx_close(&f);
}

static void test_preload_without_preload_list_is_ok(void **state)
{
	struct fx f;
	fx_open(&f, "models:\n" STORIES("a", 256, 1));
	struct brg_error err = {0};
	assert_int_equal(local_provider_preload(f.lp, &err), BRG_OK);
	size_t n_loaded = 9, n_done = 9, n_total = 9;
	readiness(&f, &n_loaded, &n_done, &n_total);
	assert_int_equal(n_loaded, 0);
	assert_int_equal(n_done, 0);
	assert_int_equal(n_total, 0);
	fx_close(&f);
}

/* Waits until the provider refuses work: local_provider_close has set its
 * flag and stopped the engines (both under the lock it then waits with). */
static bool wait_refusing(struct fx *f, const char *id)
{
	long long until = now_ms() + WAIT_S * 1000LL;
	while (f->p.ops->load(f->p.impl, id, NULL) != BRG_E_SHUTTING_DOWN) {
		if (now_ms() > until)
			return false;
		sleep_ms(2);
	}
	return true;
}

static void test_close_cancels_running_generation_and_refuses_new_work(void **state)
{
	struct fx f;
	fx_open(&f, "models:\n" STORIES("a", 512, 1));
	struct gen_request r = request("a", "Once upon a time", LONG_TOKENS, 1);
	struct gen_stream *s = gen_stream_new(1, TEXT_MAX);
	struct call c;
	struct gate g;
	struct sink gated = gate_init(&g, gen_stream_sink(s, 0), &c.has_returned);
	struct brg_error err = {0};
	assert_int_equal(generate(&f, &r, s, &gated, &err), BRG_OK);
	assert_true(gate_wait_piece(&g));
	call_start(&c, &f, NULL);
	assert_true(wait_refusing(&f, "a"));
	assert_false(atomic_load(&c.has_returned)); /* close waits for on_done */
	gate_open(&g);
	assert_true(call_join(&c));
	assert_int_equal(g.n_done, 1);
	assert_false(g.was_watch_set_at_done);
	struct gen_result res;
	free(take_done(s, 0, &res));
	/* engine_stop's contract: running jobs end CANCELLED, not ERROR. */
	assert_int_equal(res.finish, GEN_FINISH_CANCELLED);
	assert_true(res.n_completion < LONG_TOKENS);
	/* After close every request is refused and no sink is called. */
	struct gen_stream *s2 = gen_stream_new(1, TEXT_MAX);
	struct gen_request r2 = request("a", "Once", 4, 1);
	assert_int_equal(generate(&f, &r2, s2, NULL, &err), BRG_E_SHUTTING_DOWN);
	assert_untouched(s2, 1);
	assert_int_equal(f.p.ops->load(f.p.impl, "a", &err), BRG_E_SHUTTING_DOWN);
	gate_fini(&g);
	gen_stream_free(s2);
	gen_stream_free(s);
	fx_close(&f);
}

static void test_close_with_nothing_loaded_returns_at_once(void **state)
{
	struct fx f;
	fx_open(&f, "models:\n" STORIES("a", 256, 1));
	local_provider_close(f.lp);
	struct gen_request r = request("a", "Once", 4, 1);
	struct gen_stream *s = gen_stream_new(1, TEXT_MAX);
	struct brg_error err = {0};
	assert_int_equal(generate(&f, &r, s, NULL, &err), BRG_E_SHUTTING_DOWN);
	assert_untouched(s, 1);
	assert_string_equal(info_of(&f, "a").status, "available"); /* not loaded by it */
	gen_stream_free(s);
	fx_close(&f);
}

static void test_free_null_is_a_no_op(void **state)
{
	local_provider_free(NULL);
}

static int group_setup(void **state)
{
	struct brg_error err = {0};
	if (engine_init(BACKEND_DIR, &err) != BRG_OK) {
		fprintf(stderr, "engine_init: %s\n", err.message);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	engine_shutdown();
	return 0;
}

int main(void)
{
	/* LOG_OFF by default: the failed-load test logs an expected error. */
	log_set_level(getenv("BRIGADE_TEST_LOG") ? LOG_DEBUG : LOG_OFF);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_has_model_is_true_only_for_configured_ids),
	    cmocka_unit_test(test_each_model_lists_config_in_order_as_available),
	    cmocka_unit_test(test_generate_loads_on_demand_and_runs_every_choice),
	    cmocka_unit_test(test_choice_i_samples_with_seed_plus_i),
	    cmocka_unit_test(test_generate_unknown_model_is_not_found_without_sinks),
	    cmocka_unit_test(test_prompt_over_context_is_budget_error_without_sinks),
	    cmocka_unit_test(test_load_of_missing_file_fails_with_reason),
	    cmocka_unit_test(test_unload_waits_for_in_flight_generation_to_finish),
	    cmocka_unit_test(test_unload_of_unloaded_is_ok_and_of_unknown_is_not_found),
	    cmocka_unit_test(test_preload_reports_readiness_when_done),
	    cmocka_unit_test(test_preload_without_preload_list_is_ok),
	    cmocka_unit_test(test_close_cancels_running_generation_and_refuses_new_work),
	    cmocka_unit_test(test_close_with_nothing_loaded_returns_at_once),
	    cmocka_unit_test(test_free_null_is_a_no_op),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
