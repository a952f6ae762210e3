/*
 * test_engine_prefill.c — unit tests for how prompts reach the KV cache:
 * prefix KV reuse (in place and copied between slots), shared prefill of
 * n choices and of prompts that arrive together, and chunked prefill paced
 * so that decoding slots keep streaming while a long prompt loads, or
 * handed to the prefill helper's own context and thread.  Real stories260K
 * throughout; the fixture is engine_fixture.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/log.h"
#include "engine_fixture.h"

static int group_setup(void **state)
{
	return engine_fixture_init();
}

static int group_teardown(void **state)
{
	engine_shutdown();
	return 0;
}

/* ---- prefix KV reuse and shared prefill ---- */

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

/*
 * Fills every slot of 'm' with a long generation, so that jobs submitted
 * next wait in the queue and are admitted together, in one step, when
 * release_slots() cancels these: without it the scheduler may admit the
 * first job and decode part of its prompt before the test thread has
 * queued the others (a race the test would lose under ASan or valgrind).
 */
static void hold_slots(struct engine_model *m, int n, struct tsink *blk)
{
	struct gen_params g = greedy(400);
	for (int i = 0; i < n; i++) {
		tsink_init(&blk[i]);
		assert_int_equal(
		    engine_submit(m, "Hello", &g, &blk[i].cancel, sink_of(&blk[i]), NULL), BRG_OK);
	}
	for (int i = 0; i < n; i++)
		assert_true(tsink_wait(&blk[i], true)); /* decoding: its prompt is in */
}

static void release_slots(int n, struct tsink *blk)
{
	for (int i = 0; i < n; i++)
		atomic_store(&blk[i].cancel, true);
	for (int i = 0; i < n; i++) {
		assert_true(tsink_wait(&blk[i], false));
		tsink_fini(&blk[i]);
	}
}

/* Three different questions after one story start, admitted together with
 * 8 tokens a step: the start is decoded once, each tail by its own job. */
static void test_prompts_sharing_a_prefix_prefill_it_once(void **state)
{
	struct engine_model *m = load_reuse(3, 8, true);
	const char *p[3] = {STORY_START " She saw a big red ball.",
	                    STORY_START " Tom came to play with them.",
	                    STORY_START " The sun was hot and bright."};
	int n_shared = engine_count_tokens(m, STORY_START);
	struct gen_params g = greedy(20);
	struct tsink t[3], ref, blk[3];
	hold_slots(m, 3, blk);
	/* three decoding sequences fill some of the cells, never more than all */
	double kv = engine_kv_usage(m);
	assert_true(kv > 0 && kv <= 1);
	uint64_t n_before = stats_of(m).n_prompt_decoded;
	for (int i = 0; i < 3; i++) {
		tsink_init(&t[i]);
		assert_int_equal(engine_submit(m, p[i], &g, NULL, sink_of(&t[i]), NULL), BRG_OK);
	}
	release_slots(3, blk);
	uint64_t n_decoded = n_before + (uint64_t)n_shared;
	for (int i = 0; i < 3; i++) {
		assert_true(tsink_wait(&t[i], false));
		if (i == 0) { /* at most the BOS a blocker's cells hold */
			assert_true(t[i].res.n_cached <= 1);
			n_decoded -= (uint64_t)t[i].res.n_cached;
		} else {
			assert_int_equal(t[i].res.n_cached, n_shared);
		}
		n_decoded += (uint64_t)(t[i].res.n_prompt - n_shared);
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

/* ---- chunked prefill ---- */

/* A prompt of about 'n_words' words: STORY_START, then sentences. */
static char *long_prompt(int n_words)
{
	static const char *words[] = {"The", "dog", "ran", "to",  "the",  "park", "and",  "Lily",
	                              "saw", "a",   "big", "red", "ball", "near", "tree."};
	size_t cap = sizeof STORY_START + (size_t)n_words * 8;
	char *p = malloc(cap);
	assert_non_null(p);
	size_t len = (size_t)snprintf(p, cap, "%s", STORY_START);
	for (int i = 0; i < n_words; i++)
		len += (size_t)snprintf(p + len, cap - len, " %s", words[i % 15]);
	return p;
}

static int pieces_of(struct tsink *t)
{
	pthread_mutex_lock(&t->mu);
	int n = t->n_pieces;
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* Waits until 't' has 'n' pieces or is done, at most WAIT_S seconds. */
static void wait_pieces(struct tsink *t, int n)
{
	struct timespec until = deadline(WAIT_S);
	int rc = 0;
	pthread_mutex_lock(&t->mu);
	while (rc != ETIMEDOUT && t->n_pieces < n && !t->n_done)
		rc = pthread_cond_timedwait(&t->cv, &t->mu, &until);
	pthread_mutex_unlock(&t->mu);
}

/* stories260K, 2 threads, no prefix reuse, with or without the helper. */
static struct engine_model *load_prefill(int n_slots, int n_ctx, bool has_helper)
{
	return load_stories(n_slots, 512, n_ctx, false, has_helper);
}

/* Submits STORY_START to 'a' and waits until it streams (8 pieces). */
static void start_stream(struct engine_model *m, const struct gen_params *g, struct tsink *a)
{
	assert_int_equal(engine_submit(m, STORY_START, g, &a->cancel, sink_of(a), NULL), BRG_OK);
	wait_pieces(a, 8);
	if (pieces_of(a) < 8)
		fail_msg("the stream gave %d pieces (done: %d): %s", a->n_pieces, a->n_done,
		         a->text);
}

/* What the tests below share: a stream of 'stream_tokens' in slot 0 (sink
 * a), a long prompt of 'words' words for sink b, and the engine's counters
 * once the stream runs. */
struct beside {
	struct engine_model *m;
	char *prompt;
	struct tsink a, b;
	struct engine_stats before;
};

static void beside_start(struct beside *x, int n_slots, int n_ctx, bool has_helper, int words,
                         int stream_tokens)
{
	struct gen_params ga = greedy(stream_tokens);
	x->m = load_prefill(n_slots, n_ctx, has_helper);
	x->prompt = long_prompt(words);
	tsink_init(&x->a);
	tsink_init(&x->b);
	start_stream(x->m, &ga, &x->a);
	x->before = stats_of(x->m);
}

/* Frees what beside_start made (the engine may be freed and NULL already). */
static void beside_fini(struct beside *x)
{
	engine_free(x->m);
	free(x->prompt);
	tsink_fini(&x->a);
	tsink_fini(&x->b);
}

/* Slot 0 streams; a ~370-token prompt arrives in slot 1.  Without the
 * prefill helper its prefill is paced (pace.c): it goes in over several
 * steps that also carry the stream's token, so the stream keeps producing
 * while the prompt loads, and the prompt's answer is the one a cold model
 * gives it at once. */
static void test_prefill_interleaves_with_a_running_stream(void **state)
{
	struct beside x;
	beside_start(&x, 2, 512, false, 200, 400);
	struct gen_params gb = greedy(8);
	struct tsink ref;
	int a_before = pieces_of(&x.a);
	assert_int_equal(engine_submit(x.m, x.prompt, &gb, NULL, sink_of(&x.b), NULL), BRG_OK);
	assert_true(tsink_wait(&x.b, true));
	int a_during = pieces_of(&x.a) - a_before;
	assert_true(tsink_wait(&x.b, false));
	struct engine_stats after = stats_of(x.m);
	assert_true(x.b.res.n_prompt > 250);
	assert_int_equal(x.b.res.n_completion, 8);
	/* Several steps carried a chunk of the prompt next to the stream's token. */
	assert_true(after.n_mixed_steps - x.before.n_mixed_steps >= 3);
	assert_true(a_during >= 3);
	run_cold(x.prompt, 8, &ref);
	assert_string_equal(x.b.text, ref.text);
	atomic_store(&x.a.cancel, true); /* not needed any more: a cancelled job frees its slot */
	assert_true(tsink_wait(&x.a, false));
	beside_fini(&x);
	tsink_fini(&ref);
}

/* 'text' is the 8 tokens a cold 1-slot model of n_ctx tokens answers
 * 'prompt' with. */
static void assert_cold_answer(const char *prompt, int n_ctx, const char *text)
{
	struct tsink ref;
	run_cold_ctx(prompt, 8, n_ctx, &ref);
	assert_string_equal(text, ref.text);
	tsink_fini(&ref);
}

/* Slot 0 streams; a ~370-token prompt arrives in slot 1 and goes to the
 * prefill helper: the stream goes on meanwhile, the prompt's cells come
 * back into slot 1, and its answer is the one it gets alone.  The stream's
 * text is not compared: it decodes on one thread while the helper works,
 * and llama.cpp rounds its sums differently with another thread count, so
 * greedy text may part ways at a near-tie (seen after ~300 tokens). */
static void test_helper_prefills_a_long_prompt_beside_a_stream(void **state)
{
	struct beside x;
	beside_start(&x, 2, 512, true, 200, 300);
	struct gen_params gb = greedy(8);
	assert_int_equal(engine_submit(x.m, x.prompt, &gb, NULL, sink_of(&x.b), NULL), BRG_OK);
	assert_true(tsink_wait(&x.b, false));
	assert_true(tsink_wait(&x.a, false));
	struct engine_stats after = stats_of(x.m);
	assert_true(x.b.res.n_prompt > 250);
	assert_int_equal(x.b.res.n_completion, 8);
	assert_int_equal(after.n_helper_prompts - x.before.n_helper_prompts, 1);
	/* Only the prompt's last token went through the scheduler's context. */
	assert_true(after.n_mixed_steps - x.before.n_mixed_steps <= 1);
	assert_int_equal(after.n_prompt_decoded - x.before.n_prompt_decoded, x.b.res.n_prompt);
	assert_int_equal(x.a.res.n_completion, 300);
	assert_cold_answer(x.prompt, 512, x.b.text);
	beside_fini(&x);
}

/* Waits until the helper has taken 'n' prompts in all, at most WAIT_S s. */
static void wait_handoffs(struct engine_model *m, uint64_t n)
{
	long long until = brg_now_us() + (long long)WAIT_S * 1000000;
	while (stats_of(m).n_helper_prompts < n && brg_now_us() < until) {
		struct timespec ms = {0, 1000 * 1000};
		nanosleep(&ms, NULL);
	}
	assert_true(stats_of(m).n_helper_prompts >= n);
}

/* The stream the helper made room for goes away while a ~1,700-token prompt
 * is with it: the helper stops at a chunk boundary, and the scheduler
 * finishes the prompt on both threads.  The answer is still the cold one. */
static void test_helper_yields_when_the_streams_are_gone(void **state)
{
	struct beside x;
	beside_start(&x, 2, 2048, true, 900, 1500);
	struct gen_params gb = greedy(8);
	assert_int_equal(engine_submit(x.m, x.prompt, &gb, NULL, sink_of(&x.b), NULL), BRG_OK);
	wait_handoffs(x.m, x.before.n_helper_prompts + 1);
	atomic_store(&x.a.cancel, true);
	assert_true(tsink_wait(&x.a, false));
	assert_true(tsink_wait(&x.b, false));
	struct engine_stats after = stats_of(x.m);
	uint64_t by_helper = after.n_helper_tokens - x.before.n_helper_tokens;
	assert_int_equal(x.b.res.n_completion, 8);
	assert_int_equal(after.n_prompt_decoded - x.before.n_prompt_decoded, x.b.res.n_prompt);
	if (by_helper >= (uint64_t)x.b.res.n_prompt - 1)
		fail_msg("the helper decoded all %d prompt tokens: it did not yield",
		         x.b.res.n_prompt);
	engine_free(x.m);
	x.m = NULL;
	assert_cold_answer(x.prompt, 2048, x.b.text);
	beside_fini(&x);
}

/* A prompt cancelled while it may be with the helper ends CANCELLED; the
 * helper then takes the next long prompt, whose answer is still right. */
static void test_helper_survives_a_cancelled_prompt(void **state)
{
	struct beside x;
	beside_start(&x, 3, 2048, true, 900, 1500);
	struct gen_params gb = greedy(8);
	struct tsink c;
	tsink_init(&c);
	assert_int_equal(engine_submit(x.m, x.prompt, &gb, &x.b.cancel, sink_of(&x.b), NULL),
	                 BRG_OK);
	struct timespec ms = {0, 3 * 1000 * 1000};
	nanosleep(&ms, NULL);
	atomic_store(&x.b.cancel, true);
	assert_true(tsink_wait(&x.b, false));
	assert_int_equal(x.b.res.finish, GEN_FINISH_CANCELLED);
	assert_int_equal(engine_submit(x.m, x.prompt, &gb, NULL, sink_of(&c), NULL), BRG_OK);
	assert_true(tsink_wait(&c, false));
	assert_int_equal(c.res.finish, GEN_FINISH_LENGTH);
	struct engine_stats after = stats_of(x.m);
	assert_true(after.n_helper_prompts - x.before.n_helper_prompts >= 1);
	atomic_store(&x.a.cancel, true);
	assert_true(tsink_wait(&x.a, false));
	engine_free(x.m);
	x.m = NULL;
	assert_cold_answer(x.prompt, 2048, c.text);
	beside_fini(&x);
	tsink_fini(&c);
}

/* Nothing decodes beside it: a long prompt goes in as one batch. */
static void test_prompt_alone_takes_the_whole_batch(void **state)
{
	struct engine_model *m = load_reuse(2, 512, false);
	char *prompt = long_prompt(200);
	struct gen_params g = greedy(4);
	struct tsink t;
	tsink_init(&t);
	run(m, prompt, &g, &t);
	assert_true(t.res.n_prompt > 250);
	assert_int_equal(t.res.n_completion, 4);
	struct engine_stats st = stats_of(m);
	assert_int_equal(st.n_steps, 4); /* one prefill step, then 3 decode steps */
	assert_int_equal(st.n_mixed_steps, 0);
	engine_free(m);
	free(prompt);
	tsink_fini(&t);
}

int main(void)
{
	log_set_level(getenv("BRIGADE_TEST_LOG") ? LOG_DEBUG : LOG_WARN);
	/* BRIGADE_TEST_FILTER="*prefix*": some tests only (under valgrind, say). */
	if (getenv("BRIGADE_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BRIGADE_TEST_FILTER"));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prefix_reuse_repeated_prompt_in_place),
	    cmocka_unit_test(test_prefix_reuse_copies_from_another_slot),
	    cmocka_unit_test(test_prefix_reuse_covers_the_previous_answer),
	    cmocka_unit_test(test_prefix_reuse_after_a_cancelled_job),
	    cmocka_unit_test(test_n_choices_share_one_prefill),
	    cmocka_unit_test(test_n_choices_share_a_chunked_prefill),
	    cmocka_unit_test(test_prompts_sharing_a_prefix_prefill_it_once),
	    cmocka_unit_test(test_parked_jobs_outlive_their_leader),
	    cmocka_unit_test(test_prefill_interleaves_with_a_running_stream),
	    cmocka_unit_test(test_helper_prefills_a_long_prompt_beside_a_stream),
	    cmocka_unit_test(test_helper_survives_a_cancelled_prompt),
	    cmocka_unit_test(test_helper_yields_when_the_streams_are_gone),
	    cmocka_unit_test(test_prompt_alone_takes_the_whole_batch),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
