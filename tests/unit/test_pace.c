/*
 * test_pace.c — unit tests for engine/pace.c, the time budget of chunked
 * prefill: how many prompt tokens a step may carry next to decoding slots,
 * learnt from timed steps.  Pure arithmetic, so the timings are made up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "engine/engine_int.h"

/* Feeds 'n' identical observations. */
static void observe(struct engine_pace *p, int n, int n_decode, int n_prompt, double s)
{
	for (int i = 0; i < n; i++)
		engine_pace_observe(p, n_decode, n_prompt, s);
}

static void test_no_decoding_slot_takes_the_whole_batch(void **state)
{
	struct engine_pace p = {0};
	assert_int_equal(engine_pace_budget(&p, 0, 1, 512), 512);
	observe(&p, 5, 1, 0, 0.030);
	observe(&p, 5, 1, 16, 0.030 + 16 * 0.008);
	assert_int_equal(engine_pace_budget(&p, 0, 1, 512), 512);
}

static void test_untimed_budget_is_small(void **state)
{
	struct engine_pace p = {0};
	int b = engine_pace_budget(&p, 1, 1, 511);
	assert_true(b >= 1 && b <= 32);
}

/* Decode 30 ms, 8 ms a prompt token: a mixed step may add one decode
 * step's time of prompt, 30 / 8 = 3.75 tokens, and never less than the
 * floor that keeps a long prompt moving. */
static void test_budget_is_one_decode_step_of_prompt(void **state)
{
	struct engine_pace p = {0};
	observe(&p, 10, 1, 0, 0.030);
	observe(&p, 10, 1, 2, 0.030 + 2 * 0.002);
	/* 2 ms a token: 15 tokens fit in 30 ms. */
	int b = engine_pace_budget(&p, 1, 1, 511);
	assert_true(b >= 13 && b <= 16);
	observe(&p, 30, 1, b, 0.030 + b * 0.008);
	b = engine_pace_budget(&p, 1, 1, 511);
	assert_true(b >= 3 && b <= 5);
}

/* On a fast machine a prompt token is cheap: the budget grows, doubling
 * at most per step, up to the room left in the batch. */
static void test_cheap_tokens_grow_the_budget_gradually(void **state)
{
	struct engine_pace p = {0};
	observe(&p, 5, 4, 0, 0.010);
	int b = engine_pace_budget(&p, 4, 1, 508);
	for (int i = 0; i < 12; i++) {
		engine_pace_observe(&p, 4, b, 0.010 + b * 0.00001);
		int next = engine_pace_budget(&p, 4, 1, 508);
		assert_true(next <= 2 * b || next <= 16);
		b = next;
	}
	assert_int_equal(b, 508);
}

/* A mixed step timed faster than a decode step alone (noise) must not
 * buy a whole batch at once. */
static void test_noisy_fast_step_cannot_buy_the_batch(void **state)
{
	struct engine_pace p = {0};
	observe(&p, 5, 1, 0, 0.030);
	engine_pace_observe(&p, 1, 16, 0.020);
	int b = engine_pace_budget(&p, 1, 1, 511);
	assert_true(b <= 32);
}

/* Prompt steps without decoding slots teach the token cost too. */
static void test_prompt_only_steps_teach_the_token_cost(void **state)
{
	struct engine_pace p = {0};
	observe(&p, 3, 0, 512, 512 * 0.008);
	observe(&p, 3, 1, 0, 0.030);
	int b = engine_pace_budget(&p, 1, 1, 511);
	assert_true(b >= 3 && b <= 5);
}

/* A burst: every step is mixed and one slot wider than the last, so no
 * decode-only step ever times the new width.  The new slots' decoding must
 * not be charged to the prompt tokens (here a slot costs 10 ms, a prompt
 * token 9 ms): the learnt token cost stays near 9 ms and the budget does
 * not sink to the floor. */
static void test_widening_burst_keeps_the_token_cost(void **state)
{
	struct engine_pace p = {0};
	observe(&p, 3, 1, 0, 0.022);
	engine_pace_observe(&p, 0, 16, 0.012 + 16 * 0.009);
	for (int w = 1; w <= 7; w++) {
		int b = engine_pace_budget(&p, w, 8 - w, 512 - w);
		assert_true(b >= 4);
		engine_pace_observe(&p, w, b, 0.012 + 0.010 * w + 0.009 * b);
	}
	assert_true(p.t_token > 0.006 && p.t_token < 0.013);
}

/* More prompts loading than slots streaming: each prompt gets one
 * streaming slot's share, so together they get n_loading / n_decode
 * decode steps' worth; never less than one step's. */
static void test_loading_prompts_share_by_request(void **state)
{
	struct engine_pace p = {0};
	observe(&p, 10, 1, 0, 0.030);
	engine_pace_observe(&p, 1, 64, 0.030 + 64 * 0.002);
	int one = engine_pace_budget(&p, 1, 1, 511);
	int four = engine_pace_budget(&p, 1, 4, 511);
	assert_true(one >= 13 && one <= 16);
	assert_true(four >= 4 * one - 4 && four <= 4 * one + 4);
	/* Four streams, four prompts: one share, a four-wide step's worth. */
	int even = engine_pace_budget(&p, 4, 4, 508);
	assert_true(even >= one && even <= 2 * one);
	/* Fewer prompts than streams: still one whole step's worth. */
	assert_int_equal(engine_pace_budget(&p, 4, 1, 508), even);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_decoding_slot_takes_the_whole_batch),
	    cmocka_unit_test(test_untimed_budget_is_small),
	    cmocka_unit_test(test_budget_is_one_decode_step_of_prompt),
	    cmocka_unit_test(test_cheap_tokens_grow_the_budget_gradually),
	    cmocka_unit_test(test_noisy_fast_step_cannot_buy_the_batch),
	    cmocka_unit_test(test_prompt_only_steps_teach_the_token_cost),
	    cmocka_unit_test(test_widening_burst_keeps_the_token_cost),
	    cmocka_unit_test(test_loading_prompts_share_by_request),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
