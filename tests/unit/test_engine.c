/*
 * test_engine.c — unit tests for engine/: loading, chat templates, and the
 * scheduler's behaviour with real models (stories260K for coherent text,
 * llama-2-tiny-random for a real 32k vocabulary that emits broken UTF-8).
 * Models are found in $BRIGADE_MODELS_DIR, default ../shared/models (tests
 * run from the repository root).  Every wait has a timeout, so a broken
 * scheduler fails a test instead of hanging it.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../common/utf8_check.h"

#include "core/log.h"
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

static int on_piece(void *ud, const char *utf8, size_t len)
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

static void on_done(void *ud, const struct gen_result *res)
{
	struct tsink *t = ud;
	pthread_mutex_lock(&t->mu);
	t->res = *res;
	t->n_done++;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

static void tsink_init(struct tsink *t)
{
	memset(t, 0, sizeof *t);
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	atomic_init(&t->cancel, false);
	t->are_pieces_utf8 = true;
}

static void tsink_fini(struct tsink *t)
{
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
}

static struct sink sink_of(struct tsink *t)
{
	return (struct sink){.on_piece = on_piece, .on_done = on_done, .ud = t};
}

static struct timespec deadline(int seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	return ts;
}

/* Waits until on_done (or, with want_piece, a first piece) has arrived. */
static bool tsink_wait(struct tsink *t, bool want_piece)
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

static char *model_path(const char *file)
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

static struct engine_model *load(const char *file, int n_slots, int n_ctx)
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

static struct gen_params greedy(int n_max)
{
	struct gen_params g = gen_default_params();
	g.temperature = 0.0f;
	g.n_max_tokens = n_max;
	return g;
}

/* Submits and waits; fails the test on a submit error or a timeout. */
static void run(struct engine_model *m, const char *prompt, const struct gen_params *g,
                struct tsink *t)
{
	struct brg_error err = {0};
	enum brg_err rc = engine_submit(m, prompt, g, &t->cancel, sink_of(t), &err);
	if (rc)
		fail_msg("engine_submit: %s", err.message);
	assert_true(tsink_wait(t, false));
	assert_int_equal(t->n_done, 1);
}

static const struct brg_detail *find_detail(const struct brg_error *e, const char *key)
{
	for (size_t i = 0; i < e->n_details; i++)
		if (strcmp(e->details[i].key, key) == 0)
			return &e->details[i];
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- group fixture: stories260K, 4 slots x 512 tokens ---- */

static int group_setup(void **state)
{
	struct brg_error err = {0};
	if (engine_init(BACKEND_DIR, &err) != BRG_OK) {
		fprintf(stderr, "engine_init: %s\n", err.message);
		return -1;
	}
	*state = load(STORIES, 4, 512);
	return *state ? 0 : -1;
}

static int group_teardown(void **state)
{
	engine_free(*state);
	engine_shutdown();
	return 0;
}

/* ---- tests ---- */

static void test_load_reports_slots_and_context(void **state)
{
	struct engine_model *m = *state;
	assert_int_equal(engine_n_ctx(m), 512);
	assert_int_equal(engine_n_slots(m), 4);
	assert_int_equal(engine_n_busy_slots(m), 0);
	assert_true(engine_n_ctx_train(m) > 0);
	assert_true(engine_memory_bytes(m) > 0);
}

static void test_load_missing_file_is_model_load_error(void **state)
{
	struct engine_params p = engine_default_params();
	p.path = "/nonexistent/dir/missing.gguf";
	struct engine_model *m = (void *)1;
	struct brg_error err = {0};
	assert_int_equal(engine_load(&p, &m, &err), BRG_E_MODEL_LOAD);
	assert_null(m);
	assert_non_null(strstr(err.message, "/nonexistent/dir/missing.gguf"));
}

static void test_load_unknown_chat_template_is_bad_request(void **state)
{
	struct engine_params p = engine_default_params();
	p.path = model_path(STORIES);
	p.chat_template = "no-such-template";
	struct engine_model *m = NULL;
	struct brg_error err = {0};
	assert_int_equal(engine_load(&p, &m, &err), BRG_E_BAD_REQUEST);
	assert_null(m);
	assert_non_null(strstr(err.message, "unknown chat template no-such-template"));
}

static void test_chat_render_falls_back_to_chatml(void **state)
{
	struct chat_msg msgs[] = {{"system", "Be brief."}, {"user", "Tell a story."}};
	char *out = NULL;
	struct brg_error err = {0};
	assert_int_equal(engine_chat_render(*state, msgs, 2, &out, &err), BRG_OK);
	assert_non_null(strstr(out, "<|im_start|>user\nTell a story."));
	const char *tail = "<|im_start|>assistant\n";
	size_t n = strlen(out);
	assert_true(n > strlen(tail));
	assert_string_equal(out + n - strlen(tail), tail);
	free(out);
}

static void test_greedy_generation_is_deterministic(void **state)
{
	struct gen_params g = greedy(20);
	struct tsink a, b;
	tsink_init(&a);
	tsink_init(&b);
	run(*state, "Once upon a time", &g, &a);
	run(*state, "Once upon a time", &g, &b);
	assert_int_equal(a.res.finish, GEN_FINISH_LENGTH);
	assert_int_equal(a.res.n_completion, 20);
	assert_true(a.res.n_prompt > 1);
	assert_true(a.len > 0);
	assert_string_equal(a.text, b.text);
	tsink_fini(&a);
	tsink_fini(&b);
}

static void test_greedy_is_deterministic_with_other_slots_busy(void **state)
{
	struct engine_model *m = *state;
	struct gen_params g = greedy(40);
	struct gen_params hot = gen_default_params();
	hot.n_max_tokens = 60;
	hot.has_seed = true;
	struct tsink alone, busy, other[3];
	tsink_init(&alone);
	tsink_init(&busy);
	run(m, "Once upon a time", &g, &alone);
	const char *prompts[] = {"Lily had a dog.", "The sun was hot.", "Tom saw a big"};
	for (int i = 0; i < 3; i++) {
		tsink_init(&other[i]);
		hot.seed = (uint32_t)i;
		assert_int_equal(engine_submit(m, prompts[i], &hot, NULL, sink_of(&other[i]), NULL),
		                 BRG_OK);
	}
	run(m, "Once upon a time", &g, &busy);
	for (int i = 0; i < 3; i++) {
		assert_true(tsink_wait(&other[i], false));
		tsink_fini(&other[i]);
	}
	assert_string_equal(alone.text, busy.text);
	tsink_fini(&alone);
	tsink_fini(&busy);
}

static void test_stop_string_cuts_output_before_it(void **state)
{
	struct gen_params g = greedy(40);
	struct tsink full, cut;
	tsink_init(&full);
	tsink_init(&cut);
	run(*state, "Once upon a time", &g, &full);
	assert_true(full.len > 24);
	/* A 6-byte stop taken from the middle, starting at a word boundary. */
	const char *sp = strchr(full.text + 10, ' ');
	assert_non_null(sp);
	assert_true(sp + 6 <= full.text + full.len);
	char stop[7];
	memcpy(stop, sp, 6);
	stop[6] = '\0';
	size_t expect_len = (size_t)(strstr(full.text, stop) - full.text);

	g.stops[0] = stop;
	g.n_stops = 1;
	run(*state, "Once upon a time", &g, &cut);
	assert_int_equal(cut.res.finish, GEN_FINISH_STOP);
	assert_int_equal(cut.len, expect_len);
	assert_memory_equal(cut.text, full.text, expect_len);
	assert_null(strstr(cut.text, stop));
	assert_true(cut.res.n_completion < 40);
	tsink_fini(&full);
	tsink_fini(&cut);
}

static void test_prompt_over_context_is_budget_error(void **state)
{
	char prompt[8192] = "";
	for (int i = 0; i < 200; i++)
		strcat(prompt, "Once upon a time ");
	struct gen_params g = greedy(4);
	struct tsink t;
	tsink_init(&t);
	struct brg_error err = {0};
	assert_int_equal(engine_submit(*state, prompt, &g, NULL, sink_of(&t), &err),
	                 BRG_E_CONTEXT_BUDGET);
	const struct brg_detail *cur = find_detail(&err, "current_tokens");
	const struct brg_detail *budget = find_detail(&err, "budget");
	const struct brg_detail *model = find_detail(&err, "model");
	assert_non_null(cur);
	assert_non_null(budget);
	assert_non_null(model);
	assert_int_equal(budget->i, 512);
	assert_true(cur->i > budget->i);
	assert_string_equal(model->s, "stories260k");
	assert_non_null(strstr(err.message, "Content cannot fit in stories260k context window"));
	assert_int_equal(t.n_pieces, 0);
	assert_int_equal(t.n_done, 0);
	tsink_fini(&t);
}

static void test_count_tokens_adds_bos_once(void **state)
{
	struct engine_model *m = *state;
	int n_empty = engine_count_tokens(m, "");
	int n = engine_count_tokens(m, "Once upon a time");
	assert_true(n_empty >= 1); /* the BOS alone */
	assert_true(n > n_empty);
	/* A text that already starts with BOS does not get a second one. */
	assert_int_equal(engine_count_tokens(m, "<s>Once upon a time"), n);
}

static void test_eight_jobs_share_four_slots(void **state)
{
	struct engine_model *m = *state;
	struct gen_params g = gen_default_params();
	g.n_max_tokens = 16;
	g.temperature = 0.8f;
	g.top_k = 40;
	g.top_p = 0.9f;
	g.min_p = 0.05f;
	g.frequency_penalty = 0.5f;
	g.has_seed = true;
	struct tsink t[8];
	for (int i = 0; i < 8; i++) {
		tsink_init(&t[i]);
		g.seed = (uint32_t)i;
		struct brg_error err = {0};
		assert_int_equal(
		    engine_submit(m, "Once upon a time", &g, &t[i].cancel, sink_of(&t[i]), &err),
		    BRG_OK);
	}
	assert_true(engine_n_busy_slots(m) <= 4);
	for (int i = 0; i < 8; i++) {
		assert_true(tsink_wait(&t[i], false));
		assert_int_equal(t[i].n_done, 1);
		assert_int_equal(t[i].res.finish, GEN_FINISH_LENGTH);
		assert_int_equal(t[i].res.n_completion, 16);
		tsink_fini(&t[i]);
	}
	assert_int_equal(engine_n_busy_slots(m), 0);
}

static void test_cancel_frees_the_slot(void **state)
{
	struct engine_model *m = load(STORIES, 1, 4096);
	struct gen_params g = greedy(2000);
	struct tsink a, b;
	tsink_init(&a);
	tsink_init(&b);
	a.cancel_on_first_piece = true;
	double t0 = now_s();
	run(m, "Once upon a time", &g, &a);
	double elapsed = now_s() - t0;
	assert_int_equal(a.res.finish, GEN_FINISH_CANCELLED);
	assert_true(a.res.n_completion < 100);
	assert_true(elapsed < 10.0); /* generous: CI machines are shared */
	g.n_max_tokens = 8;
	run(m, "Once upon a time", &g, &b);
	assert_int_equal(b.res.finish, GEN_FINISH_LENGTH);
	assert_int_equal(b.res.n_completion, 8);
	engine_free(m);
	tsink_fini(&a);
	tsink_fini(&b);
}

static void test_full_queue_is_model_busy(void **state)
{
	struct engine_params p = engine_default_params();
	p.id = "tiny";
	p.path = model_path(STORIES);
	p.n_slots = 1;
	p.n_ctx = 4096;
	p.n_threads = 2;
	p.max_queue = 1;
	struct engine_model *m = NULL;
	assert_int_equal(engine_load(&p, &m, NULL), BRG_OK);
	struct gen_params g = greedy(4000);
	struct tsink a, b, c;
	tsink_init(&a);
	tsink_init(&b);
	tsink_init(&c);
	assert_int_equal(engine_submit(m, "Once", &g, &a.cancel, sink_of(&a), NULL), BRG_OK);
	assert_true(tsink_wait(&a, true)); /* a holds the only slot */
	assert_int_equal(engine_submit(m, "Once", &g, &b.cancel, sink_of(&b), NULL), BRG_OK);
	struct brg_error err = {0};
	assert_int_equal(engine_submit(m, "Once", &g, &c.cancel, sink_of(&c), &err),
	                 BRG_E_MODEL_BUSY);
	assert_non_null(strstr(err.message, "model tiny has 1 requests waiting"));
	/* A waiting job that is cancelled ends without ever getting a slot. */
	atomic_store(&b.cancel, true);
	assert_true(tsink_wait(&b, false));
	assert_int_equal(b.res.finish, GEN_FINISH_CANCELLED);
	assert_int_equal(b.n_pieces, 0);
	atomic_store(&a.cancel, true);
	assert_true(tsink_wait(&a, false));
	assert_int_equal(c.n_done, 0);
	engine_free(m);
	tsink_fini(&a);
	tsink_fini(&b);
	tsink_fini(&c);
}

static void test_random_vocab_stream_is_valid_utf8(void **state)
{
	struct engine_model *m = load(RANDOM_VOCAB, 1, 512);
	struct gen_params g = gen_default_params();
	g.n_max_tokens = 64;
	g.temperature = 1.0f;
	g.has_seed = true;
	g.seed = 7;
	struct tsink t;
	tsink_init(&t);
	run(m, "Hello", &g, &t);
	assert_true(t.res.finish == GEN_FINISH_LENGTH || t.res.finish == GEN_FINISH_STOP);
	assert_true(t.res.n_completion > 0);
	assert_true(t.are_pieces_utf8);
	assert_true(valid_utf8((const unsigned char *)t.text, t.len));
	engine_free(m);
	tsink_fini(&t);
}

static void test_free_cancels_active_and_queued_jobs(void **state)
{
	struct engine_model *m = load(STORIES, 2, 4096);
	struct gen_params g = greedy(4000);
	struct tsink t[3];
	for (int i = 0; i < 3; i++) {
		tsink_init(&t[i]);
		assert_int_equal(
		    engine_submit(m, "Once upon a time", &g, &t[i].cancel, sink_of(&t[i]), NULL),
		    BRG_OK);
	}
	assert_true(tsink_wait(&t[0], true));
	assert_true(tsink_wait(&t[1], true));
	engine_free(m); /* t[2] is still queued: both slots are busy */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(t[i].n_done, 1);
		assert_int_equal(t[i].res.finish, GEN_FINISH_CANCELLED);
		tsink_fini(&t[i]);
	}
	assert_int_equal(t[2].n_pieces, 0);
}

static void test_stop_cancels_jobs_and_refuses_submits(void **state)
{
	struct engine_model *m = load(STORIES, 1, 4096);
	struct gen_params g = greedy(4000);
	struct tsink a, b;
	tsink_init(&a);
	tsink_init(&b);
	assert_int_equal(engine_submit(m, "Once", &g, &a.cancel, sink_of(&a), NULL), BRG_OK);
	assert_true(tsink_wait(&a, true));
	engine_stop(m);
	assert_true(tsink_wait(&a, false));
	assert_int_equal(a.res.finish, GEN_FINISH_CANCELLED);
	assert_int_equal(engine_submit(m, "Once", &g, &b.cancel, sink_of(&b), NULL),
	                 BRG_E_SHUTTING_DOWN);
	assert_int_equal(b.n_done, 0);
	engine_free(m);
	assert_int_equal(a.n_done, 1);
	tsink_fini(&a);
	tsink_fini(&b);
}

static void test_small_batch_prefills_prompt_in_chunks(void **state)
{
	/* 8 tokens per step: a ~40-token prompt takes several steps, and the
	 * second job's prefill shares steps with the first one's decoding. */
	struct engine_params p = engine_default_params();
	p.path = model_path(STORIES);
	p.n_slots = 2;
	p.n_ctx = 512;
	p.n_threads = 2;
	p.n_batch = 8;
	struct engine_model *m = NULL;
	assert_int_equal(engine_load(&p, &m, NULL), BRG_OK);
	const char *prompt = "Once upon a time, there was a little girl named Lily. She loved to "
	                     "play outside in the park with her big red ball and her dog.";
	struct gen_params g = greedy(24);
	struct tsink big, a, b;
	tsink_init(&big);
	tsink_init(&a);
	tsink_init(&b);
	run(*state, prompt, &g, &big); /* the 512-token-batch model */
	assert_int_equal(engine_submit(m, prompt, &g, NULL, sink_of(&a), NULL), BRG_OK);
	assert_int_equal(engine_submit(m, prompt, &g, NULL, sink_of(&b), NULL), BRG_OK);
	assert_true(tsink_wait(&a, false));
	assert_true(tsink_wait(&b, false));
	assert_true(a.res.n_prompt > 3 * 8);
	assert_int_equal(a.res.n_completion, 24);
	assert_int_equal(b.res.n_completion, 24);
	assert_string_equal(a.text, big.text);
	assert_string_equal(b.text, big.text);
	engine_free(m);
	tsink_fini(&big);
	tsink_fini(&a);
	tsink_fini(&b);
}

static void test_zero_max_tokens_finishes_with_length(void **state)
{
	struct gen_params g = greedy(0);
	struct tsink t;
	tsink_init(&t);
	run(*state, "Once upon a time", &g, &t);
	assert_int_equal(t.res.finish, GEN_FINISH_LENGTH);
	assert_int_equal(t.res.n_completion, 0);
	assert_int_equal(t.n_pieces, 0);
	tsink_fini(&t);
}

/* Greedy with and without log-probabilities: the same text, and with them
 * one finite, negative log p per completion token, each at least
 * log(1/n_vocab) since a greedy token is the most likely one. */
static void check_greedy_logprobs(struct engine_model *m, const char *prompt, int n_max,
                                  int n_vocab)
{
	struct gen_params g = greedy(n_max);
	struct tsink plain, lp;
	tsink_init(&plain);
	tsink_init(&lp);
	run(m, prompt, &g, &plain);
	g.want_logprobs = true;
	run(m, prompt, &g, &lp);
	assert_int_equal(plain.res.n_logprobs, 0);
	assert_true(plain.res.logprob_sum == 0.0);
	assert_true(lp.res.n_completion > 0);
	assert_int_equal(lp.res.n_logprobs, lp.res.n_completion);
	assert_int_equal(lp.res.n_completion, plain.res.n_completion);
	assert_string_equal(lp.text, plain.text);
	assert_true(isfinite(lp.res.logprob_sum));
	assert_true(lp.res.logprob_sum < 0.0);
	double mean = lp.res.logprob_sum / lp.res.n_logprobs;
	assert_true(mean > log(1.0 / n_vocab));
	tsink_fini(&plain);
	tsink_fini(&lp);
}

static void test_greedy_logprobs_count_every_token(void **state)
{
	check_greedy_logprobs(*state, "Once upon a time", 20, STORIES_N_VOCAB);
}

static void test_random_vocab_greedy_logprobs(void **state)
{
	struct engine_model *m = load(RANDOM_VOCAB, 1, 512);
	check_greedy_logprobs(m, "Hello", 24, RANDOM_N_VOCAB);
	engine_free(m);
}

static void test_sampled_logprobs_count_every_token(void **state)
{
	struct gen_params g = gen_default_params();
	g.n_max_tokens = 32;
	g.temperature = 1.5f;
	g.top_k = 20;
	g.has_seed = true;
	g.seed = 3;
	g.want_logprobs = true;
	struct tsink t;
	tsink_init(&t);
	run(*state, "Once upon a time", &g, &t);
	assert_true(t.res.n_completion > 0);
	assert_int_equal(t.res.n_logprobs, t.res.n_completion);
	assert_true(isfinite(t.res.logprob_sum));
	assert_true(t.res.logprob_sum < 0.0);
	tsink_fini(&t);
}

/* A stop string ends the job early: the count still matches the tokens. */
static void test_logprobs_end_at_a_stop_string(void **state)
{
	struct gen_params g = greedy(40);
	struct tsink full, cut;
	tsink_init(&full);
	tsink_init(&cut);
	run(*state, "Once upon a time", &g, &full);
	const char *sp = strchr(full.text + 10, ' ');
	assert_non_null(sp);
	char stop[7];
	memcpy(stop, sp, 6);
	stop[6] = '\0';
	g.stops[0] = stop;
	g.n_stops = 1;
	g.want_logprobs = true;
	run(*state, "Once upon a time", &g, &cut);
	assert_int_equal(cut.res.finish, GEN_FINISH_STOP);
	assert_true(cut.res.n_completion < 40);
	assert_int_equal(cut.res.n_logprobs, cut.res.n_completion);
	assert_true(cut.res.logprob_sum < 0.0);
	tsink_fini(&full);
	tsink_fini(&cut);
}

/* ---- prefix KV reuse and shared prefill ---- */

#define STORY_START                                                                        \
	"Once upon a time, there was a little girl named Lily. She loved to play outside " \
	"in the sun with her dog. One day, her mom took her to the park."

/* stories260K with n_slots x 512 tokens, n_batch per step, reuse on or off. */
static struct engine_model *load_reuse(int n_slots, int n_batch, bool can_reuse)
{
	struct engine_params p = engine_default_params();
	p.path = model_path(STORIES);
	p.n_slots = n_slots;
	p.n_ctx = 512;
	p.n_threads = 2;
	p.n_batch = n_batch;
	p.can_reuse_prefix = can_reuse;
	struct engine_model *m = NULL;
	assert_int_equal(engine_load(&p, &m, NULL), BRG_OK);
	return m;
}

static struct engine_stats stats_of(const struct engine_model *m)
{
	struct engine_stats st;
	engine_stats(m, &st);
	return st;
}

/* n choices of one prompt, as provider/local submits them (seed + i), all
 * queued at once; waits for every one. */
static void run_choices(struct engine_model *m, const char *prompt, const struct gen_params *g,
                        int n, struct tsink *t)
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
static void run_cold(const char *prompt, int n_max, struct tsink *t)
{
	struct engine_model *ref = load_reuse(1, 512, false);
	struct gen_params g = greedy(n_max);
	tsink_init(t);
	run(ref, prompt, &g, t);
	assert_int_equal(t->res.n_cached, 0);
	assert_int_equal(stats_of(ref).n_prompt_reused, 0);
	engine_free(ref);
}

static void test_prefix_reuse_repeated_prompt_in_place(void **state)
{
	struct engine_model *m = load_reuse(1, 512, true);
	struct gen_params g = greedy(40);
	struct tsink cold, warm;
	tsink_init(&cold);
	tsink_init(&warm);
	run(m, STORY_START, &g, &cold);
	int n = cold.res.n_prompt;
	assert_int_equal(cold.res.n_cached, 0);
	assert_int_equal(stats_of(m).n_prompt_decoded, n);
	run(m, STORY_START, &g, &warm);
	assert_int_equal(warm.res.n_prompt, n);
	assert_int_equal(warm.res.n_cached, n - 1); /* the last token is decoded again */
	struct engine_stats st = stats_of(m);
	assert_int_equal(st.n_prompt_decoded, n + 1);
	assert_int_equal(st.n_prompt_reused, n - 1);
	assert_int_equal(st.n_kv_copies, 0);
	assert_string_equal(warm.text, cold.text);
	engine_free(m);
	tsink_fini(&cold);
	tsink_fini(&warm);
}

static void test_prefix_reuse_copies_from_another_slot(void **state)
{
	struct engine_model *m = load_reuse(2, 512, true);
	const char *a = STORY_START " She saw a big red ball.";
	const char *c = STORY_START " Tom came to play with them.";
	int n_shared = engine_count_tokens(m, STORY_START);
	struct gen_params g = greedy(40);
	struct tsink ta, tc, ref;
	tsink_init(&ta);
	tsink_init(&tc);
	run(m, a, &g, &ta); /* slot 0 now holds a's cells */
	run(m, c, &g, &tc); /* lands in the empty slot, copies the story start */
	assert_true(n_shared > 40);
	assert_int_equal(tc.res.n_cached, n_shared);
	struct engine_stats st = stats_of(m);
	assert_int_equal(st.n_kv_copies, 1);
	assert_int_equal(st.n_prompt_decoded, ta.res.n_prompt + tc.res.n_prompt - n_shared);
	run_cold(c, 40, &ref);
	assert_string_equal(tc.text, ref.text);
	engine_free(m);
	tsink_fini(&ta);
	tsink_fini(&tc);
	tsink_fini(&ref);
}

/* The continuation of a conversation finds its own earlier answer cached. */
static void test_prefix_reuse_covers_the_previous_answer(void **state)
{
	struct engine_model *m = load_reuse(1, 512, true);
	struct gen_params g = greedy(30);
	struct tsink first, next, ref;
	tsink_init(&first);
	tsink_init(&next);
	run(m, STORY_START, &g, &first);
	char prompt[sizeof first.text + 256];
	snprintf(prompt, sizeof prompt, "%s%s Then", STORY_START, first.text);
	run(m, prompt, &g, &next);
	assert_true(next.res.n_cached > first.res.n_prompt + 10);
	run_cold(prompt, 30, &ref);
	assert_string_equal(next.text, ref.text);
	engine_free(m);
	tsink_fini(&first);
	tsink_fini(&next);
	tsink_fini(&ref);
}

/* A cancelled job leaves only what was decoded: the sampled token it never
 * fed back is not in its cells, and the next job still matches exactly. */
static void test_prefix_reuse_after_a_cancelled_job(void **state)
{
	struct engine_model *m = load_reuse(1, 512, true);
	struct gen_params g = greedy(400);
	struct tsink gone, again, ref;
	tsink_init(&gone);
	tsink_init(&again);
	gone.cancel_on_first_piece = true;
	run(m, STORY_START, &g, &gone);
	assert_int_equal(gone.res.finish, GEN_FINISH_CANCELLED);
	g.n_max_tokens = 40;
	run(m, STORY_START, &g, &again);
	assert_int_equal(again.res.n_cached, again.res.n_prompt - 1);
	run_cold(STORY_START, 40, &ref);
	assert_string_equal(again.text, ref.text);
	engine_free(m);
	tsink_fini(&gone);
	tsink_fini(&again);
	tsink_fini(&ref);
}

/* n = 4 choices: the texts of a model that prefills each choice itself,
 * seed for seed, from one evaluation of the prompt plus one token each. */
static void check_choices_share_prefill(int n_batch)
{
	enum { N = 4 };
	struct engine_model *m = load_reuse(N, n_batch, true);
	struct engine_model *ref = load_reuse(N, n_batch, false);
	struct gen_params g = gen_default_params();
	g.n_max_tokens = 40;
	g.temperature = 0.9f;
	g.top_k = 40;
	g.has_seed = true;
	g.seed = 100;
	struct tsink t[N], r[N];
	run_choices(ref, STORY_START, &g, N, r);
	run_choices(m, STORY_START, &g, N, t);
	int n = t[0].res.n_prompt, n_cold = 0;
	for (int i = 0; i < N; i++) {
		assert_string_equal(t[i].text, r[i].text);
		assert_int_equal(t[i].res.n_completion, r[i].res.n_completion);
		assert_true(t[i].res.n_cached == 0 || t[i].res.n_cached == n - 1);
		n_cold += t[i].res.n_cached == 0;
	}
	assert_int_equal(n_cold, 1);
	assert_string_not_equal(r[0].text, r[1].text); /* the seeds do differ */
	struct engine_stats st = stats_of(m);
	assert_int_equal(st.n_prompt_decoded, n + N - 1);
	assert_int_equal(st.n_kv_copies, N - 1);
	assert_int_equal(stats_of(ref).n_prompt_decoded, N * n);
	for (int i = 0; i < N; i++) {
		tsink_fini(&t[i]);
		tsink_fini(&r[i]);
	}
	engine_free(m);
	engine_free(ref);
}

static void test_n_choices_share_one_prefill(void **state)
{
	check_choices_share_prefill(512);
}

/* 8 tokens a step: the first choice prefills in chunks while the others
 * stay parked, then they copy its cells. */
static void test_n_choices_share_a_chunked_prefill(void **state)
{
	check_choices_share_prefill(8);
}

/* Three different questions after one story start, sent together with 8
 * tokens a step: the start is decoded once, each tail by its own job. */
static void test_prompts_sharing_a_prefix_prefill_it_once(void **state)
{
	struct engine_model *m = load_reuse(3, 8, true);
	const char *p[3] = {STORY_START " She saw a big red ball.",
	                    STORY_START " Tom came to play with them.",
	                    STORY_START " The sun was hot and bright."};
	int n_shared = engine_count_tokens(m, STORY_START);
	struct gen_params g = greedy(20);
	struct tsink t[3], ref;
	for (int i = 0; i < 3; i++) {
		tsink_init(&t[i]);
		assert_int_equal(engine_submit(m, p[i], &g, NULL, sink_of(&t[i]), NULL), BRG_OK);
	}
	int n_decoded = n_shared;
	for (int i = 0; i < 3; i++) {
		assert_true(tsink_wait(&t[i], false));
		assert_int_equal(t[i].res.n_cached, i == 0 ? 0 : n_shared);
		n_decoded += t[i].res.n_prompt - n_shared;
		run_cold(p[i], 20, &ref);
		assert_string_equal(t[i].text, ref.text);
		tsink_fini(&ref);
		tsink_fini(&t[i]);
	}
	assert_int_equal(stats_of(m).n_prompt_decoded, n_decoded);
	engine_free(m);
}

/* The leader ends before it decodes anything (max_tokens 0): the parked
 * jobs behind it unpark and prefill for themselves. */
static void test_parked_jobs_outlive_their_leader(void **state)
{
	struct engine_model *m = load_reuse(3, 8, true);
	struct gen_params none = greedy(0), g = greedy(30);
	struct tsink lead, t[2], ref;
	tsink_init(&lead);
	assert_int_equal(engine_submit(m, STORY_START, &none, NULL, sink_of(&lead), NULL), BRG_OK);
	run_choices(m, STORY_START, &g, 2, t);
	assert_true(tsink_wait(&lead, false));
	assert_int_equal(lead.res.finish, GEN_FINISH_LENGTH);
	run_cold(STORY_START, 30, &ref);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(t[i].res.finish, GEN_FINISH_LENGTH);
		assert_string_equal(t[i].text, ref.text);
		tsink_fini(&t[i]);
	}
	assert_int_equal(stats_of(m).n_prompt_decoded, t[0].res.n_prompt + 1);
	engine_free(m);
	tsink_fini(&lead);
	tsink_fini(&ref);
}

int main(void)
{
	log_set_level(getenv("BRIGADE_TEST_LOG") ? LOG_DEBUG : LOG_WARN);
	/* BRIGADE_TEST_FILTER="*prefix*": some tests only (under valgrind, say). */
	if (getenv("BRIGADE_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BRIGADE_TEST_FILTER"));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load_reports_slots_and_context),
	    cmocka_unit_test(test_load_missing_file_is_model_load_error),
	    cmocka_unit_test(test_load_unknown_chat_template_is_bad_request),
	    cmocka_unit_test(test_chat_render_falls_back_to_chatml),
	    cmocka_unit_test(test_greedy_generation_is_deterministic),
	    cmocka_unit_test(test_greedy_is_deterministic_with_other_slots_busy),
	    cmocka_unit_test(test_stop_string_cuts_output_before_it),
	    cmocka_unit_test(test_prompt_over_context_is_budget_error),
	    cmocka_unit_test(test_count_tokens_adds_bos_once),
	    cmocka_unit_test(test_eight_jobs_share_four_slots),
	    cmocka_unit_test(test_small_batch_prefills_prompt_in_chunks),
	    cmocka_unit_test(test_zero_max_tokens_finishes_with_length),
	    cmocka_unit_test(test_greedy_logprobs_count_every_token),
	    cmocka_unit_test(test_sampled_logprobs_count_every_token),
	    cmocka_unit_test(test_logprobs_end_at_a_stop_string),
	    cmocka_unit_test(test_random_vocab_greedy_logprobs),
	    cmocka_unit_test(test_cancel_frees_the_slot),
	    cmocka_unit_test(test_full_queue_is_model_busy),
	    cmocka_unit_test(test_random_vocab_stream_is_valid_utf8),
	    cmocka_unit_test(test_free_cancels_active_and_queued_jobs),
	    cmocka_unit_test(test_stop_cancels_jobs_and_refuses_submits),
	    cmocka_unit_test(test_prefix_reuse_repeated_prompt_in_place),
	    cmocka_unit_test(test_prefix_reuse_copies_from_another_slot),
	    cmocka_unit_test(test_prefix_reuse_covers_the_previous_answer),
	    cmocka_unit_test(test_prefix_reuse_after_a_cancelled_job),
	    cmocka_unit_test(test_n_choices_share_one_prefill),
	    cmocka_unit_test(test_n_choices_share_a_chunked_prefill),
	    cmocka_unit_test(test_prompts_sharing_a_prefix_prefill_it_once),
	    cmocka_unit_test(test_parked_jobs_outlive_their_leader),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
