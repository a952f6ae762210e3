/*
 * test_logsoftmax.c — engine_log_softmax_at (engine/logsoftmax.c) against
 * an exact double-precision log-softmax: random logits of every vocabulary
 * size that matters (tails of 1..3 lanes, 512, 32,000, 151,936), extreme
 * spreads, a single logit, and bad input.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "engine/engine_int.h"
#include "testutil.h"

static uint64_t rng = 0x9E3779B97F4A7C15u;

static float uniform(float lo, float hi)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return lo + (hi - lo) * (float)((rng >> 11) * (1.0 / 9007199254740992.0));
}

static double exact(const float *l, int n, int t)
{
	double max = l[0];
	for (int i = 1; i < n; i++)
		max = l[i] > max ? l[i] : max;
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += exp((double)l[i] - max);
	return (double)l[t] - max - log(sum);
}

static void check(int n, float lo, float hi)
{
	float *l = malloc((size_t)n * sizeof *l);
	assert_non_null(l);
	for (int i = 0; i < n; i++)
		l[i] = uniform(lo, hi);
	int ts[] = {0, n / 2, n - 1};
	for (size_t k = 0; k < 3; k++) {
		double got = engine_log_softmax_at(l, n, ts[k]), want = exact(l, n, ts[k]);
		if (!(fabs(got - want) <= 1e-5 + 1e-6 * fabs(want)))
			fail_msg("n=%d t=%d: %.9f, exact %.9f", n, ts[k], got, want);
	}
	free(l);
}

static void test_matches_exact_log_softmax(void **state)
{
	(void)state;
	int sizes[] = {1, 2, 3, 4, 5, 7, 8, 512, 32000, 32003, 151936};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		check(sizes[i], -10, 10);
		check(sizes[i], -300, 40); /* most terms underflow */
		check(sizes[i], 1e4f, 1e4f + 5);
	}
}

static void test_a_peaked_distribution_is_near_zero_for_its_peak(void **state)
{
	(void)state;
	float l[1000];
	for (int i = 0; i < 1000; i++)
		l[i] = -50;
	l[123] = 50;
	assert_true(fabs(engine_log_softmax_at(l, 1000, 123)) < 1e-6);
	assert_true(engine_log_softmax_at(l, 1000, 0) < -99);
}

static void test_bad_input_is_nan(void **state)
{
	(void)state;
	float l[4] = {0};
	assert_true(isnan(engine_log_softmax_at(NULL, 4, 0)));
	assert_true(isnan(engine_log_softmax_at(l, 0, 0)));
	assert_true(isnan(engine_log_softmax_at(l, 4, 4)));
	assert_true(isnan(engine_log_softmax_at(l, 4, -1)));
	assert_true(fabs(engine_log_softmax_at(l, 4, 2) - log(0.25)) < 1e-6);
}

/* Not a pass/fail: how long one 32k-vocabulary token costs. */
static void test_report_speed(void **state)
{
	(void)state;
	enum { N = 32000, REPS = 200 };
	static float l[N];
	for (int i = 0; i < N; i++)
		l[i] = uniform(-20, 20);
	long long t0 = now_ms();
	double sink = 0;
	for (int r = 0; r < REPS; r++)
		sink += engine_log_softmax_at(l, N, r);
	long long dt = now_ms() - t0;
	print_message("log-softmax over 32000 logits: %.1f us per token (%g)\n",
	              (double)dt * 1000.0 / REPS, sink);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_matches_exact_log_softmax),
	    cmocka_unit_test(test_a_peaked_distribution_is_near_zero_for_its_peak),
	    cmocka_unit_test(test_bad_input_is_nan),
	    cmocka_unit_test(test_report_speed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
