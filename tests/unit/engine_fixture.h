/*
 * engine_fixture.h — what the engine unit tests share: a sink that collects
 * one job's text and result (struct tsink), waits with timeouts so a broken
 * scheduler fails a test instead of hanging it, and loaders for the real
 * models in $BRIGADE_MODELS_DIR (default ../shared/models; tests run from
 * the repository root).  Header-only, static inline: each test file is one
 * program.  Include after cmocka.h.
 */
#ifndef BRG_TESTS_ENGINE_FIXTURE_H
#define BRG_TESTS_ENGINE_FIXTURE_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/utf8_check.h"

#include "core/clock.h"
#include "engine/engine.h"

#define BACKEND_DIR  "deps/llama-bin/bins/linux-x64"
#define STORIES      "stories260K.gguf"
#define RANDOM_VOCAB "llama-2-tiny-random.gguf"
#define WAIT_S       30
/* The vocabularies' sizes: a greedy token is the most likely one, so its
 * probability is at least 1/n_vocab. */
#define STORIES_N_VOCAB 512
#define RANDOM_N_VOCAB  32000

/* ---- test sink: collects one job's text and result ---- */

struct tsink {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char text[32768];
	size_t len;
	int n_pieces;
	bool are_pieces_utf8; /* every piece on its own was valid UTF-8 */
	int n_done;
	struct gen_result res;
	atomic_bool cancel;
	bool cancel_on_first_piece;
};

static inline int on_piece(void *ud, const char *utf8, size_t len)
{
	struct tsink *t = ud;
	pthread_mutex_lock(&t->mu);
	if (!valid_utf8((const unsigned char *)utf8, len))
		t->are_pieces_utf8 = false;
	if (t->len + len < sizeof t->text) {
		memcpy(t->text + t->len, utf8, len);
		t->len += len;
		t->text[t->len] = '\0';
	}
	t->n_pieces++;
	if (t->cancel_on_first_piece)
		atomic_store(&t->cancel, true);
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	return 0;
}

static inline void on_done(void *ud, const struct gen_result *res)
{
	struct tsink *t = ud;
	pthread_mutex_lock(&t->mu);
	t->res = *res;
	t->n_done++;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

static inline void tsink_init(struct tsink *t)
{
	memset(t, 0, sizeof *t);
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	atomic_init(&t->cancel, false);
	t->are_pieces_utf8 = true;
}

static inline void tsink_fini(struct tsink *t)
{
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
}

static inline struct sink sink_of(struct tsink *t)
{
	return (struct sink){.on_piece = on_piece, .on_done = on_done, .ud = t};
}

static inline struct timespec deadline(int seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	return ts;
}

/* Waits until on_done (or, with want_piece, a first piece) has arrived. */
static inline bool tsink_wait(struct tsink *t, bool want_piece)
{
	/* BRIGADE_TEST_WAIT_S: more time under valgrind. */
	const char *env = getenv("BRIGADE_TEST_WAIT_S");
	struct timespec until = deadline(env && atoi(env) > 0 ? atoi(env) : WAIT_S);
	int rc = 0;
	pthread_mutex_lock(&t->mu);
	while (rc != ETIMEDOUT && (want_piece ? t->n_pieces == 0 && !t->n_done : !t->n_done))
		rc = pthread_cond_timedwait(&t->cv, &t->mu, &until);
	bool ok = want_piece ? t->n_pieces > 0 || t->n_done : t->n_done > 0;
	pthread_mutex_unlock(&t->mu);
	return ok;
}

/* ---- helpers ---- */

static inline char *model_path(const char *file)
{
	const char *dir = getenv("BRIGADE_MODELS_DIR");
	if (!dir || !*dir)
		dir = "../shared/models";
	static char path[4][1024];
	static int next;
	char *p = path[next++ % 4];
	snprintf(p, sizeof path[0], "%s/%s", dir, file);
	return p;
}

static inline struct engine_model *load(const char *file, int n_slots, int n_ctx)
{
	struct engine_params p = engine_default_params();
	p.id = "stories260k";
	p.path = model_path(file);
	p.n_slots = n_slots;
	p.n_ctx = n_ctx;
	p.n_threads = 2;
	struct engine_model *m = NULL;
	struct brg_error err = {0};
	enum brg_err rc = engine_load(&p, &m, &err);
	if (rc)
		fail_msg("engine_load(%s): %s", p.path, err.message);
	return m;
}

static inline struct gen_params greedy(int n_max)
{
	struct gen_params g = gen_default_params();
	g.temperature = 0.0f;
	g.n_max_tokens = n_max;
	return g;
}

/* Submits and waits; fails the test on a submit error or a timeout. */
static inline void run(struct engine_model *m, const char *prompt, const struct gen_params *g,
                       struct tsink *t)
{
	struct brg_error err = {0};
	enum brg_err rc = engine_submit(m, prompt, g, &t->cancel, sink_of(t), &err);
	if (rc)
		fail_msg("engine_submit: %s", err.message);
	assert_true(tsink_wait(t, false));
	assert_int_equal(t->n_done, 1);
}

static inline const struct brg_detail *find_detail(const struct brg_error *e, const char *key)
{
	for (size_t i = 0; i < e->n_details; i++)
		if (strcmp(e->details[i].key, key) == 0)
			return &e->details[i];
	return NULL;
}

static inline double now_s(void)
{
	return (double)brg_now_us() / 1e6;
}

/* ---- prefix KV reuse and shared prefill ---- */

#define STORY_START                                                                        \
	"Once upon a time, there was a little girl named Lily. She loved to play outside " \
	"in the sun with her dog. One day, her mom took her to the park."

/* stories260K with n_slots x 512 tokens, n_batch per step, reuse on or off. */
/* stories260K on 2 threads, 'n_ctx' tokens a slot, with or without
 * prefix reuse and the prefill helper (prefill.c). */
static inline struct engine_model *load_stories(int n_slots, int n_batch, int n_ctx, bool can_reuse,
                                                bool has_helper)
{
	struct engine_params p = engine_default_params();
	p.path = model_path(STORIES);
	p.n_slots = n_slots;
	p.n_ctx = n_ctx;
	p.n_threads = 2;
	p.n_batch = n_batch;
	p.can_reuse_prefix = can_reuse;
	p.has_prefill_helper = has_helper;
	struct engine_model *m = NULL;
	assert_int_equal(engine_load(&p, &m, NULL), BRG_OK);
	return m;
}

static inline struct engine_model *load_reuse(int n_slots, int n_batch, bool can_reuse)
{
	return load_stories(n_slots, n_batch, 512, can_reuse, true);
}

static inline struct engine_stats stats_of(const struct engine_model *m)
{
	struct engine_stats st;
	engine_stats(m, &st);
	return st;
}

/* n choices of one prompt, as provider/local submits them (seed + i), all
 * queued at once; waits for every one. */
static inline void run_choices(struct engine_model *m, const char *prompt,
                               const struct gen_params *g, int n, struct tsink *t)
{
	for (int i = 0; i < n; i++) {
		struct gen_params gi = *g;
		gi.seed = g->seed + (uint32_t)i;
		tsink_init(&t[i]);
		assert_int_equal(engine_submit(m, prompt, &gi, &t[i].cancel, sink_of(&t[i]), NULL),
		                 BRG_OK);
	}
	for (int i = 0; i < n; i++) {
		assert_true(tsink_wait(&t[i], false));
		assert_int_equal(t[i].n_done, 1);
	}
}

/* The text 'prompt' gives at temperature 0 on a model that reuses nothing. */
static inline void run_cold_ctx(const char *prompt, int n_max, int n_ctx, struct tsink *t)
{
	struct engine_model *ref = load_stories(1, 512, n_ctx, false, true);
	struct gen_params g = greedy(n_max);
	tsink_init(t);
	run(ref, prompt, &g, t);
	assert_int_equal(t->res.n_cached, 0);
	assert_int_equal(stats_of(ref).n_prompt_reused, 0);
	engine_free(ref);
}

static inline void run_cold(const char *prompt, int n_max, struct tsink *t)
{
	run_cold_ctx(prompt, n_max, 512, t);
}

/* Once per test program: the backends, then llama.cpp.  0 or -1. */
static inline int engine_fixture_init(void)
{
	struct brg_error err = {0};
	if (engine_init(BACKEND_DIR, &err) != BRG_OK) {
		fprintf(stderr, "engine_init: %s\n", err.message);
		return -1;
	}
	return 0;
}

#endif
