/*
 * test_engine.c — unit tests for engine/: loading, chat templates, and the
 * scheduler's behaviour with real models (stories260K for coherent text,
 * llama-2-tiny-random for a real 32k vocabulary that emits broken UTF-8).
 * Prefix reuse, shared and chunked prefill are in test_engine_prefill.c;
 * what both share is engine_fixture.h.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/log.h"
#include "engine/engine_int.h"
#include "engine_fixture.h"

/* ---- group fixture: stories260K, 4 slots x 512 tokens ---- */

static int group_setup(void **state)
{
	if (engine_fixture_init() != 0)
		return -1;
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

/* engine_argmax, the scheduler's greedy shortcut, picks the token
 * llama.cpp's greedy sampler picks: the first of equal maxima, never a NaN,
 * -inf only when everything is. */
static void test_argmax_picks_what_llama_greedy_picks(void **state)
{
	(void)state;
	struct llama_sampler *g = llama_sampler_init_greedy();
	assert_non_null(g);
	uint32_t x = 12345;
	for (int t = 0; t < 20000; t++) {
		float logits[64];
		llama_token_data d[64];
		int n = 1 + (int)(x % 64);
		for (int i = 0; i < n; i++) {
			x = x * 1664525u + 1013904223u;
			int r = (int)((x >> 24) % 12);
			logits[i] = r == 0 ? NAN : r == 1 ? -INFINITY : (float)(r % 5);
			d[i] = (llama_token_data){i, logits[i], 0.0f};
		}
		llama_token_data_array a = {d, (size_t)n, -1, false};
		llama_sampler_apply(g, &a);
		assert_true(a.selected >= 0 && a.selected < n);
		assert_int_equal(engine_argmax(logits, n), d[a.selected].id);
	}
	llama_sampler_free(g);
}

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

int main(void)
{
	log_set_level(getenv("BRIGADE_TEST_LOG") ? LOG_DEBUG : LOG_WARN);
	/* BRIGADE_TEST_FILTER="*prefix*": some tests only (under valgrind, say). */
	if (getenv("BRIGADE_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BRIGADE_TEST_FILTER"));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_argmax_picks_what_llama_greedy_picks),
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
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
