/*
 * test_budget.c — unit tests for the local models' memory budget and idle
 * TTL: engine_estimate() against what llama.cpp itself allocates (the one
 * test that calls llama.cpp directly, to read its own report), then the
 * local provider under INFERENCE_MEMORY_BUDGET_MB / INFERENCE_MODEL_TTL
 * with the real stories260K model: eviction of the least recently used
 * idle model, refusal while the memory is busy (the running generation
 * finishing untouched), refusal of a model bigger than the budget, two
 * loads racing for one model's room, and TTL unloads.  Models are found in
 * $BRIGADE_MODELS_DIR, default ../shared/models.  Every wait has a
 * timeout.
 */
#include <errno.h>
#include <math.h>
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

#include "llama.h"

#include "config/config.h"
#include "core/log.h"
#include "engine/engine.h"
#include "provider/local.h"

#define BACKEND_DIR "deps/llama-bin/bins/linux-x64"
#define WAIT_MS     60000
#define MIB         (1024.0 * 1024.0)

/* A stories260K model section under id 'id': at 256 tokens x 1 slot its
 * estimate is 3.8 MB (weights 1.1, KV 0.2, compute 2.5). */
#define STORY(id) "  " id ":\n    file: stories260K.gguf\n    context_length: 256\n    threads: 1\n"

static const char *models_dir(void)
{
	const char *dir = getenv("BRIGADE_MODELS_DIR");
	return dir && *dir ? dir : "../shared/models";
}

static char *model_path(const char *file)
{
	char *path = NULL;
	assert_true(asprintf(&path, "%s/%s", models_dir(), file) > 0);
	return path;
}

/* ---- engine_estimate against llama.cpp's own report ---- */

/* What llama.cpp logs about the buffers of one context. */
static struct {
	double kv_mib, compute_mib, output_mib;
	unsigned kv_cells, n_seqs, n_streams; /* cells per stream */
	int n_layers;
} seen;

static void capture_log(enum ggml_log_level level, const char *text, void *ud)
{
	const char *at;
	if ((at = strstr(text, "llama_kv_cache: size = ")))
		sscanf(at, "llama_kv_cache: size = %lf MiB ( %u cells, %d layers, %u/%u seqs",
		       &seen.kv_mib, &seen.kv_cells, &seen.n_layers, &seen.n_seqs, &seen.n_streams);
	else if ((at = strstr(text, "compute buffer size = ")))
		sscanf(at, "compute buffer size = %lf", &seen.compute_mib);
	else if ((at = strstr(text, "output buffer size = ")))
		sscanf(at, "output buffer size = %lf", &seen.output_mib);
}

/* Loads 'p' the way engine.c's create_context does (or prefill.c's helper
 * context: one sequence, n_ctx_slot cells, a micro-batch of n_ubatch) and
 * records llama.cpp's report in 'seen'; returns llama_model_size(). */
static uint64_t llama_report_ctx(const struct engine_params *p, int n_ctx_slot, int n_seqs,
                                 int n_ubatch, int *n_kv_values)
{
	memset(&seen, 0, sizeof seen);
	ggml_log_callback old_cb;
	void *old_ud;
	llama_log_get(&old_cb, &old_ud);
	llama_log_set(capture_log, NULL);
	struct llama_model_params mp = llama_model_default_params();
	mp.n_gpu_layers = 0;
	struct llama_model *model = llama_model_load_from_file(p->path, mp);
	assert_non_null(model);
	struct llama_context_params cp = llama_context_default_params();
	cp.n_ctx = (uint32_t)(n_ctx_slot * n_seqs);
	cp.n_seq_max = (uint32_t)n_seqs;
	cp.kv_unified = true;
	cp.n_batch = (uint32_t)(n_seqs == 1 ? n_ubatch : p->n_batch);
	cp.n_ubatch = (uint32_t)n_ubatch;
	cp.n_threads = cp.n_threads_batch = 1;
	struct llama_context *ctx = llama_init_from_model(model, cp);
	assert_non_null(ctx);
	/* Per cell: K and V of every layer, head size x KV heads each. */
	int head = llama_model_n_embd(model) / llama_model_n_head(model);
	*n_kv_values = llama_model_n_layer(model) * 2 * head * llama_model_n_head_kv(model);
	uint64_t size = llama_model_size(model);
	llama_free(ctx);
	llama_model_free(model);
	llama_log_set(old_cb, old_ud);
	return size;
}

static uint64_t llama_report(const struct engine_params *p, int n_ctx_slot, int *n_kv_values)
{
	int n_ubatch = p->n_batch < 512 ? p->n_batch : 512;
	return llama_report_ctx(p, n_ctx_slot, p->n_slots, n_ubatch, n_kv_values);
}

/* With 2 threads and the slots >= 2 of 'p', the estimate grows by the
 * prefill helper's context: by llama.cpp's KV count exactly, and by an
 * allowance at or above its compute and output buffers. */
static void check_helper_estimate(struct engine_params p, const struct engine_estimate *without,
                                  int n_ctx_slot)
{
	p.has_prefill_helper = true;
	p.n_threads = 2;
	struct engine_estimate e;
	assert_int_equal(engine_estimate(&p, &e, NULL), BRG_OK);
	int n_kv_values = 0;
	int n_ubatch = p.n_batch < 128 ? p.n_batch : 128;
	llama_report_ctx(&p, n_ctx_slot, 1, n_ubatch, &n_kv_values);
	assert_true(fabs((double)(e.kv_bytes - without->kv_bytes) / MIB - seen.kv_mib) < 0.01);
	double reserved = seen.compute_mib + seen.output_mib;
	double added = (double)(e.compute_bytes - without->compute_bytes) / MIB;
	if (added < reserved - 0.01 || added > reserved + 8)
		fail_msg("helper: compute allowance %.2f MiB, llama.cpp reserved %.2f MiB", added,
		         reserved);
	assert_int_equal(e.total_bytes, e.weights_bytes + e.kv_bytes + e.compute_bytes);
}

static void check_estimate(const char *file, int n_ctx, int n_slots, int want_ctx_slot,
                           int want_cells)
{
	char *path = model_path(file);
	struct engine_params p = engine_default_params();
	p.path = path;
	p.n_ctx = n_ctx;
	p.n_slots = n_slots;
	p.has_prefill_helper = false; /* checked on its own below */
	struct engine_estimate e;
	struct brg_error err = {0};
	if (engine_estimate(&p, &e, &err) != BRG_OK)
		fail_msg("engine_estimate(%s): %s", file, err.message);
	assert_int_equal(e.n_ctx_slot, want_ctx_slot);
	assert_int_equal(e.n_kv_cells, want_cells);
	assert_int_equal(e.total_bytes, e.weights_bytes + e.kv_bytes + e.compute_bytes);

	/* Weights: the tensors' data; the file adds its header (and vocab). */
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	long file_size = ftell(fp);
	fclose(fp);
	assert_true(e.weights_bytes < (size_t)file_size);
	if (strcmp(file, "stories260K.gguf") == 0) /* a 512-token vocab: a small header */
		assert_true(e.weights_bytes > (size_t)file_size * 97 / 100);

	int n_kv_values = 0;
	uint64_t model_size = llama_report(&p, want_ctx_slot, &n_kv_values);
	assert_int_equal(e.weights_bytes, model_size);
	/* KV: exact, by the formula and by llama.cpp's own count. */
	assert_int_equal(seen.n_streams, 1); /* one unified buffer for every slot */
	assert_int_equal(seen.kv_cells, (unsigned)want_cells);
	assert_int_equal(e.kv_bytes, (size_t)want_cells * (size_t)n_kv_values * 2);
	assert_true(fabs(e.kv_bytes / MIB - seen.kv_mib) < 0.01);
	/* Compute: an allowance at or above what llama.cpp reserved, by < 8 MiB. */
	double reserved = seen.compute_mib + seen.output_mib;
	assert_true(reserved > 0);
	if (e.compute_bytes / MIB < reserved - 0.01 || e.compute_bytes / MIB > reserved + 8)
		fail_msg("%s: compute allowance %.2f MiB, llama.cpp reserved %.2f MiB", file,
		         e.compute_bytes / MIB, reserved);
	if (n_slots >= 2)
		check_helper_estimate(p, &e, want_ctx_slot);
	free(path);
}

static void test_estimate_matches_what_llama_cpp_allocates(void **state)
{
	/* n_ctx 0: the trained 2048 tokens (under the 4096 cap). */
	check_estimate("stories260K.gguf", 0, 1, 2048, 2048);
	/* 3 x 100 tokens: llama.cpp pads 300 to 512. */
	check_estimate("stories260K.gguf", 100, 3, 100, 512);
	/* F16, 1 layer, a 32,000-token vocabulary: the logits dominate. */
	check_estimate("llama-2-tiny-random.gguf", 0, 2, 4096, 8192);
}

static void test_estimate_of_a_missing_or_non_gguf_file_fails(void **state)
{
	struct engine_params p = engine_default_params();
	struct engine_estimate e;
	struct brg_error err = {0};
	p.path = "/nonexistent/model.gguf";
	assert_int_equal(engine_estimate(&p, &e, &err), BRG_E_MODEL_LOAD);
	assert_non_null(strstr(err.message, "/nonexistent/model.gguf"));
	char *yaml = write_yaml("not: a gguf\n");
	p.path = yaml;
	assert_int_equal(engine_estimate(&p, &e, &err), BRG_E_MODEL_LOAD);
	assert_non_null(strstr(err.message, "not a GGUF"));
	p.n_slots = 0;
	assert_int_equal(engine_estimate(&p, &e, NULL), BRG_E_CONFIG);
	unlink(yaml);
	free(yaml);
}

/* ---- the provider under a budget ---- */

struct fx {
	struct config *cfg;
	struct local_provider *lp;
	struct provider p;
};

/* A provider over the YAML 'body' (preload:, models:; no server section),
 * with 'env' ("INFERENCE_MEMORY_BUDGET_MB=6", or NULL) in its environment:
 * the variables are the budget's usual way in. */
static void fx_open(struct fx *f, const char *env, const char *body)
{
	char dir[512];
	snprintf(dir, sizeof dir, "INFERENCE_MODELS_DIR=%s", models_dir());
	char *const envp[] = {dir, (char *)env, NULL};
	struct brg_error err = {0};
	enum brg_err rc = config_load_string(body, strlen(body), NULL, envp, &f->cfg, &err);
	if (rc != BRG_OK)
		fail_msg("config: %s", err.message);
	f->lp = local_provider_new(f->cfg);
	assert_non_null(f->lp);
	f->p = local_provider_get(f->lp);
}

struct seen_model {
	char status[16];
	char error[BRG_ERR_MSG_MAX];
	long long memory_mb;
};

static void on_model(void *ud, const struct model_info *m)
{
	struct seen_model *s = ud;
	snprintf(s->status, sizeof s->status, "%s", m->status);
	snprintf(s->error, sizeof s->error, "%s", m->error ? m->error : "");
	s->memory_mb = m->memory_mb;
}

static struct seen_model model_of(struct fx *f, const char *id)
{
	struct seen_model s = {0};
	assert_true(f->p.ops->model(f->p.impl, id, on_model, &s));
	return s;
}

static void add_loaded_mb(void *ud, const struct model_info *m)
{
	if (strcmp(m->status, "loaded") == 0)
		*(long long *)ud += m->memory_mb;
}

/* Checks the budget's promise once more — the loaded models' memory_mb
 * add up to no more than the budget — and frees the fixture. */
static void fx_close(struct fx *f)
{
	long long held_mb = 0;
	f->p.ops->each_model(f->p.impl, add_loaded_mb, &held_mb);
	if (f->cfg->memory_budget_mb > 0)
		assert_true(held_mb <= f->cfg->memory_budget_mb);
	local_provider_free(f->lp);
	config_free(f->cfg);
}

static bool is_status(struct fx *f, const char *id, const char *status)
{
	return strcmp(model_of(f, id).status, status) == 0;
}

/* One generation's outcome; 'delay_ms' per piece keeps it in flight. */
struct outcome {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int delay_ms;
	int n_pieces;
	bool is_done;
	struct gen_result res;
};

static int outcome_piece(void *ud, const char *utf8, size_t len)
{
	struct outcome *o = ud;
	if (o->delay_ms)
		sleep_ms(o->delay_ms);
	pthread_mutex_lock(&o->mu);
	o->n_pieces++;
	pthread_mutex_unlock(&o->mu);
	return 0;
}

static void outcome_done(void *ud, const struct gen_result *res)
{
	struct outcome *o = ud;
	pthread_mutex_lock(&o->mu);
	o->res = *res;
	o->is_done = true;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

static void outcome_init(struct outcome *o, int delay_ms)
{
	memset(o, 0, sizeof *o);
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	o->delay_ms = delay_ms;
}

/* Waits for on_done, then frees the outcome's lock. */
static void outcome_wait(struct outcome *o)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&o->mu);
	while (!o->is_done && pthread_cond_timedwait(&o->cv, &o->mu, &until) != ETIMEDOUT)
		;
	bool is_done = o->is_done;
	pthread_mutex_unlock(&o->mu);
	assert_true(is_done);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
}

/* Starts n_max greedy tokens on 'model' into 'o'. */
static enum brg_err start(struct fx *f, const char *model, int n_max, struct outcome *o,
                          struct brg_error *err)
{
	struct gen_request r = {.model = model, .prompt = "Once upon a time", .n_choices = 1};
	r.params = gen_default_params();
	r.params.temperature = 0.0f;
	r.params.n_max_tokens = n_max;
	struct sink s = {outcome_piece, outcome_done, o};
	return f->p.ops->generate(f->p.impl, &r, &s, err);
}

/* Runs a short generation to its end; fails the test on any error. */
static void run_once(struct fx *f, const char *model)
{
	struct outcome o;
	outcome_init(&o, 0);
	struct brg_error err = {0};
	if (start(f, model, 4, &o, &err) != BRG_OK)
		fail_msg("generate %s: %s", model, err.message);
	outcome_wait(&o);
	assert_int_equal(o.res.finish, GEN_FINISH_LENGTH);
	assert_int_equal(o.res.n_completion, 4);
}

static long long detail_int(const struct brg_error *e, const char *key)
{
	for (size_t i = 0; i < e->n_details; i++)
		if (strcmp(e->details[i].key, key) == 0)
			return e->details[i].i;
	fail_msg("no detail %s in: %s", key, e->message);
	return -1;
}

static void test_loading_b_evicts_idle_a_when_both_do_not_fit(void **state)
{
	struct fx f;
	fx_open(&f, "INFERENCE_MEMORY_BUDGET_MB=6", "models:\n" STORY("a") STORY("b"));
	run_once(&f, "a");
	assert_true(is_status(&f, "a", "loaded"));
	run_once(&f, "b");
	assert_true(is_status(&f, "a", "available"));
	assert_true(is_status(&f, "b", "loaded"));
	/* memory_mb of a loaded model is the estimate the budget counted. */
	struct engine_params p = engine_default_params();
	char *path = model_path("stories260K.gguf");
	p.path = path;
	p.n_ctx = 256;
	struct engine_estimate e;
	assert_int_equal(engine_estimate(&p, &e, NULL), BRG_OK);
	assert_int_equal(model_of(&f, "b").memory_mb, (long long)((e.total_bytes + MIB - 1) / MIB));
	free(path);
	fx_close(&f);
}

static void test_eviction_takes_the_least_recently_used(void **state)
{
	struct fx f;
	fx_open(&f, "INFERENCE_MEMORY_BUDGET_MB=8", "models:\n" STORY("a") STORY("b") STORY("c"));
	run_once(&f, "a");
	run_once(&f, "b");
	sleep_ms(5);
	run_once(&f, "a"); /* b is now the least recently used */
	run_once(&f, "c");
	assert_true(is_status(&f, "a", "loaded"));
	assert_true(is_status(&f, "b", "available"));
	assert_true(is_status(&f, "c", "loaded"));
	fx_close(&f);
}

static void test_busy_model_is_not_evicted_and_load_is_refused_retriable(void **state)
{
	struct fx f;
	fx_open(&f, "INFERENCE_MEMORY_BUDGET_MB=6", "models:\n" STORY("a") STORY("b"));
	struct outcome busy;
	outcome_init(&busy, 2); /* 200 tokens, >= 0.4 s */
	struct brg_error err = {0};
	assert_int_equal(start(&f, "a", 200, &busy, &err), BRG_OK);

	struct outcome refused;
	outcome_init(&refused, 0);
	assert_int_equal(start(&f, "b", 4, &refused, &err), BRG_E_RESOURCE);
	assert_true(brg_err_is_retriable(err.code));
	assert_int_equal(brg_err_http_status(err.code), 503);
	assert_non_null(strstr(err.message, "cannot load model b"));
	assert_non_null(strstr(err.message, "a (4 MB, 1 in flight)"));
	assert_int_equal(detail_int(&err, "budget_mb"), 6);
	assert_int_equal(detail_int(&err, "needed_mb"), 4);
	assert_true(is_status(&f, "b", "available"));
	assert_false(refused.is_done); /* the sink was never called */

	outcome_wait(&busy);
	assert_int_equal(busy.res.finish, GEN_FINISH_LENGTH);
	assert_int_equal(busy.res.n_completion, 200);
	assert_int_equal(busy.n_pieces > 0, 1);
	/* Once a is idle, b gets its room. */
	run_once(&f, "b");
	assert_true(is_status(&f, "a", "available"));
	pthread_cond_destroy(&refused.cv);
	pthread_mutex_destroy(&refused.mu);
	fx_close(&f);
}

static void test_model_over_the_whole_budget_is_refused_for_good(void **state)
{
	struct fx f;
	fx_open(&f, "INFERENCE_MEMORY_BUDGET_MB=3", "models:\n" STORY("a"));
	struct outcome o;
	outcome_init(&o, 0);
	struct brg_error err = {0};
	assert_int_equal(start(&f, "a", 4, &o, &err), BRG_E_MODEL_LOAD);
	assert_false(brg_err_is_retriable(err.code));
	assert_non_null(strstr(err.message, "model a needs an estimated 4 MB"));
	assert_non_null(strstr(err.message, "weights 2 MB"));
	assert_non_null(strstr(err.message, "budget of 3 MB (INFERENCE_MEMORY_BUDGET_MB)"));
	assert_int_equal(detail_int(&err, "needed_mb"), 4);
	assert_int_equal(detail_int(&err, "budget_mb"), 3);
	assert_int_equal(detail_int(&err, "weights_mb"), 2);
	assert_int_equal(detail_int(&err, "kv_mb"), 1);
	assert_int_equal(detail_int(&err, "compute_mb"), 3);
	struct seen_model m = model_of(&f, "a");
	assert_string_equal(m.status, "failed");
	assert_non_null(strstr(m.error, "more than the whole memory budget"));
	/* An explicit load says the same. */
	assert_int_equal(f.p.ops->load(f.p.impl, "a", &err), BRG_E_MODEL_LOAD);
	pthread_cond_destroy(&o.cv);
	pthread_mutex_destroy(&o.mu);
	fx_close(&f);
}

struct loader {
	struct fx *f;
	const char *id;
	enum brg_err rc;
	pthread_t thread;
};

static void *loader_main(void *arg)
{
	struct loader *l = arg;
	l->rc = l->f->p.ops->load(l->f->p.impl, l->id, NULL);
	return NULL;
}

static void test_two_racing_loads_never_share_the_room(void **state)
{
	for (int round = 0; round < 3; round++) {
		struct fx f;
		fx_open(&f, "INFERENCE_MEMORY_BUDGET_MB=6", "models:\n" STORY("a") STORY("b"));
		struct loader l[2] = {{&f, "a", BRG_OK, 0}, {&f, "b", BRG_OK, 0}};
		for (int i = 0; i < 2; i++)
			assert_int_equal(pthread_create(&l[i].thread, NULL, loader_main, &l[i]), 0);
		for (int i = 0; i < 2; i++)
			pthread_join(l[i].thread, NULL);
		int n_loaded = is_status(&f, "a", "loaded") + is_status(&f, "b", "loaded");
		int n_ok = (l[0].rc == BRG_OK) + (l[1].rc == BRG_OK);
		assert_int_equal(n_loaded, 1);
		assert_true(n_ok >= 1);
		for (int i = 0; i < 2; i++)
			assert_true(l[i].rc == BRG_OK || l[i].rc == BRG_E_RESOURCE);
		fx_close(&f);
	}
}

static void test_no_budget_loads_everything(void **state)
{
	struct fx f;
	fx_open(&f, NULL, "models:\n" STORY("a") STORY("b") STORY("c"));
	run_once(&f, "a");
	run_once(&f, "b");
	run_once(&f, "c");
	assert_true(is_status(&f, "a", "loaded") && is_status(&f, "b", "loaded"));
	fx_close(&f);
}

/* Polls every 10 ms for up to max_ms. */
static bool wait_status(struct fx *f, const char *id, const char *status, int max_ms)
{
	for (int waited = 0; waited <= max_ms; waited += 10, sleep_ms(10))
		if (is_status(f, id, status))
			return true;
	return false;
}

static void test_ttl_unloads_an_idle_model_and_the_next_request_reloads_it(void **state)
{
	struct fx f;
	fx_open(&f, "INFERENCE_MODEL_TTL=1", "preload: [a]\nmodels:\n" STORY("a") STORY("b"));
	struct brg_error err = {0};
	assert_int_equal(local_provider_preload(f.lp, &err), BRG_OK);
	assert_true(wait_status(&f, "a", "loaded", WAIT_MS));
	long long t0 = now_ms();
	size_t n_loaded, n_done, n_total;
	f.p.ops->readiness(f.p.impl, &n_loaded, &n_done, &n_total);
	assert_int_equal(n_loaded, 1);
	assert_true(wait_status(&f, "a", "available", 10000));
	assert_true(now_ms() - t0 >= 900); /* not before the TTL */
	/* Still ready: the next request loads it again. */
	f.p.ops->readiness(f.p.impl, &n_loaded, &n_done, &n_total);
	assert_int_equal(n_loaded, 1);
	assert_int_equal(n_done, 1);
	run_once(&f, "a");
	assert_true(is_status(&f, "a", "loaded"));
	/* A model with work in flight is not idle, however long it runs. */
	struct outcome busy;
	outcome_init(&busy, 8); /* 200 tokens, >= 1.6 s */
	assert_int_equal(start(&f, "a", 200, &busy, &err), BRG_OK);
	sleep_ms(1300);
	assert_false(busy.is_done);
	assert_true(is_status(&f, "a", "loaded"));
	outcome_wait(&busy);
	assert_int_equal(busy.res.finish, GEN_FINISH_LENGTH);
	assert_int_equal(busy.res.n_completion, 200);
	/* A client's unload is not the TTL's: not ready any more. */
	assert_true(wait_status(&f, "a", "available", 10000));
	assert_int_equal(f.p.ops->unload(f.p.impl, "a", &err), BRG_OK);
	f.p.ops->readiness(f.p.impl, &n_loaded, &n_done, &n_total);
	assert_int_equal(n_loaded, 0);
	fx_close(&f);
}

/* ---- configuration ---- */

static enum brg_err load_with_env(const char *server, char *const *envp, struct config **out,
                                  struct brg_error *err)
{
	char yaml[512];
	snprintf(yaml, sizeof yaml, "server:\n%s", server);
	return config_load_string(yaml, strlen(yaml), "m.yaml", envp, out, err);
}

static void test_config_reads_and_checks_budget_and_ttl(void **state)
{
	struct config *c = NULL;
	struct brg_error err = {0};
	char *const none[] = {NULL};
	assert_int_equal(load_with_env("  port: 1\n", none, &c, &err), BRG_OK);
	assert_int_equal(c->memory_budget_mb, 0);
	assert_int_equal(c->model_ttl_s, 0);
	config_free(c);
	assert_int_equal(
	    load_with_env("  memory_budget_mb: 8192\n  model_ttl: 600\n", none, &c, &err), BRG_OK);
	assert_int_equal(c->memory_budget_mb, 8192);
	assert_int_equal(c->model_ttl_s, 600);
	config_free(c);
	char *const env[] = {"INFERENCE_MEMORY_BUDGET_MB=4096", "INFERENCE_MODEL_TTL=30", NULL};
	assert_int_equal(load_with_env("  memory_budget_mb: 8192\n", env, &c, &err), BRG_OK);
	assert_int_equal(c->memory_budget_mb, 4096);
	assert_int_equal(c->model_ttl_s, 30);
	config_free(c);

	char *const bad_budget[] = {"INFERENCE_MEMORY_BUDGET_MB=lots", NULL};
	assert_int_equal(load_with_env("", bad_budget, &c, &err), BRG_E_CONFIG);
	assert_non_null(
	    strstr(err.message, "INFERENCE_MEMORY_BUDGET_MB: 'lots' is not an integer"));
	char *const bad_ttl[] = {"INFERENCE_MODEL_TTL=-5", NULL};
	assert_int_equal(load_with_env("", bad_ttl, &c, &err), BRG_E_CONFIG);
	assert_non_null(strstr(err.message, "INFERENCE_MODEL_TTL: -5 is out of range"));
	assert_int_equal(load_with_env("  model_ttl: 1.5\n", none, &c, &err), BRG_E_CONFIG);
	assert_non_null(strstr(err.message, "model_ttl"));
}

int main(void)
{
	/* LOG_OFF by default: the refusals log expected warnings. */
	log_set_level(getenv("BRIGADE_TEST_LOG") ? LOG_DEBUG : LOG_OFF);
	struct brg_error err = {0};
	if (engine_init(BACKEND_DIR, &err) != BRG_OK || engine_start(&err) != BRG_OK) {
		fprintf(stderr, "test_budget: engine_init: %s\n", err.message);
		return 1;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_estimate_matches_what_llama_cpp_allocates),
	    cmocka_unit_test(test_estimate_of_a_missing_or_non_gguf_file_fails),
	    cmocka_unit_test(test_loading_b_evicts_idle_a_when_both_do_not_fit),
	    cmocka_unit_test(test_eviction_takes_the_least_recently_used),
	    cmocka_unit_test(test_busy_model_is_not_evicted_and_load_is_refused_retriable),
	    cmocka_unit_test(test_model_over_the_whole_budget_is_refused_for_good),
	    cmocka_unit_test(test_two_racing_loads_never_share_the_room),
	    cmocka_unit_test(test_no_budget_loads_everything),
	    cmocka_unit_test(test_ttl_unloads_an_idle_model_and_the_next_request_reloads_it),
	    cmocka_unit_test(test_config_reads_and_checks_budget_and_ttl),
	};
	int n_failed = cmocka_run_group_tests(tests, NULL, NULL);
	engine_shutdown();
	return n_failed;
}
