/*
 * test_dist.c — unit tests for engine/dist.c, sampling from the whole
 * distribution without llama.cpp's chain: the draws follow softmax(l / T)
 * (checked against the exact probabilities over hundreds of thousands of
 * draws), min_p and -inf leave tokens out, a seed replays, and logits
 * with no distribution give -1 so the caller falls back to the chain.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "engine/engine_int.h"

static float *scratch_for(int n)
{
	float *s = malloc(engine_dist_scratch_floats(n) * sizeof *s);
	assert_non_null(s);
	return s;
}

/* Exact softmax(l / T), min_p applied to the raw logits, in double. */
static void exact(const float *l, int n, double t, double min_p, double *p)
{
	double max = -INFINITY, sum = 0.0;
	for (int i = 0; i < n; i++)
		max = l[i] > max ? l[i] : max;
	for (int i = 0; i < n; i++) {
		bool keep = min_p <= 0.0 || l[i] - max >= log(min_p);
		p[i] = keep && isfinite(l[i]) ? exp((l[i] - max) / t) : 0.0;
		sum += p[i];
	}
	for (int i = 0; i < n; i++)
		p[i] /= sum;
}

/*
 * Draws 'draws' tokens and checks them against the exact probabilities:
 * each token expected 50 times or more on its own, the rest together (a
 * normal approximation does not hold for a rare token's count), within 5
 * standard deviations; a token of probability 0 never.
 */
static void check_follows(const float *l, int n, float t, float min_p, int draws)
{
	float *s = scratch_for(n);
	double *p = malloc((size_t)n * sizeof *p);
	int *count = calloc((size_t)n, sizeof *count);
	assert_true(p && count);
	exact(l, n, t, min_p, p);
	uint64_t rng = engine_rng_seed(true, 42);
	for (int k = 0; k < draws; k++) {
		int i = engine_dist_sample(l, n, t, min_p, &rng, s);
		assert_true(i >= 0 && i < n);
		count[i]++;
	}
	double rare_p = 0.0;
	int rare_count = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] == 0.0) {
			assert_int_equal(count[i], 0);
		} else if (p[i] * draws < 50.0) {
			rare_p += p[i];
			rare_count += count[i];
		} else {
			double mean = p[i] * draws, sd = sqrt(draws * p[i] * (1.0 - p[i]));
			if (fabs(count[i] - mean) > 5.0 * sd)
				fail_msg("token %d: %d draws, expected %.1f (sd %.1f)", i, count[i],
				         mean, sd);
		}
	}
	double mean = rare_p * draws, sd = sqrt(draws * rare_p * (1.0 - rare_p));
	if (fabs(rare_count - mean) > 5.0 * sd + 1.0)
		fail_msg("rare tokens: %d draws, expected %.1f (sd %.1f)", rare_count, mean, sd);
	free(count);
	free(p);
	free(s);
}

/* A few tokens hold most of the mass, in different blocks and in the
 * tail that is not a multiple of eight; the rest are spread low. */
static float *skewed(int n)
{
	float *l = malloc((size_t)n * sizeof *l);
	assert_non_null(l);
	uint32_t x = 7;
	for (int i = 0; i < n; i++) {
		x = x * 1664525u + 1013904223u;
		l[i] = -8.0f + 4.0f * (float)(x >> 8) / (float)(1u << 24);
	}
	l[n / 2] = 1.5f;
	l[n - 1] = 1.0f;
	if (n > 5) {
		l[3] = 2.0f;
		l[n - 5] = 0.2f;
	}
	return l;
}

static void test_draws_follow_softmax(void **state)
{
	(void)state;
	int sizes[] = {1, 7, 9, 1024, 1025, 3001};
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		int n = sizes[k];
		float *l = skewed(n);
		check_follows(l, n, 1.0f, 0.0f, 100000);
		free(l);
	}
}

static void test_temperature_sharpens_and_flattens(void **state)
{
	(void)state;
	float *l = skewed(3001);
	check_follows(l, 3001, 0.5f, 0.0f, 200000);
	check_follows(l, 3001, 2.0f, 0.0f, 200000);
	free(l);
}

/* min_p keeps the tokens within ln(min_p) of the best raw logit, whatever
 * the temperature: 0.6 of the top token's weight stays, 0.4 goes. */
static void test_min_p_leaves_the_tail_out(void **state)
{
	(void)state;
	float l[5] = {0.0f, logf(0.6f), logf(0.4f), logf(0.52f), logf(0.47f)};
	check_follows(l, 5, 1.0f, 0.5f, 100000);
	check_follows(l, 5, 3.0f, 0.5f, 100000);
	float *w = skewed(3001);
	check_follows(w, 3001, 1.0f, 0.05f, 100000);
	free(w);
}

/* After a draw the scratch holds each token's weight, exp((l - max) / T):
 * the vectorised exp agrees with libm's expf to a few parts in 10^7. */
static void test_weights_match_libm_exp(void **state)
{
	(void)state;
	int n = 4099;
	float *l = malloc((size_t)n * sizeof *l);
	float *s = scratch_for(n);
	assert_non_null(l);
	for (int i = 0; i < n; i++)
		l[i] = 3.0f - 90.0f * (float)i / (float)n; /* 3 down to -87 */
	uint64_t rng = 3;
	float ts[] = {1.0f, 0.7f, 1.3f};
	for (size_t k = 0; k < 3; k++) {
		assert_true(engine_dist_sample(l, n, ts[k], 0.0f, &rng, s) >= 0);
		for (int i = 0; i < n; i++) {
			/* The same float argument, so that only exp itself differs. */
			double want = expf((l[i] - 3.0f) * (1.0f / ts[k]));
			if (want < 1e-37)
				continue; /* underflows to 0 by design */
			double rel = fabs(s[i] - want) / want;
			if (rel > 3e-7)
				fail_msg("T %.1f, logit %g: weight %.9g, exp gives %.9g", ts[k],
				         l[i], s[i], want);
		}
	}
	free(s);
	free(l);
}

/* Logits far below the best weigh nothing rather than a denormal: a
 * float's exp underflows near -87, and the draw must never land there. */
static void test_far_and_infinite_logits_are_never_drawn(void **state)
{
	(void)state;
	float l[20];
	for (int i = 0; i < 20; i++)
		l[i] = i % 3 == 0 ? -INFINITY : i % 3 == 1 ? -200.0f : 0.0f;
	check_follows(l, 20, 1.0f, 0.0f, 20000);
	for (int i = 0; i < 20; i++)
		l[i] = i == 13 ? 0.0f : -INFINITY;
	float *s = scratch_for(20);
	uint64_t rng = 1;
	for (int k = 0; k < 100; k++)
		assert_int_equal(engine_dist_sample(l, 20, 0.7f, 0.0f, &rng, s), 13);
	free(s);
}

/* No distribution: every logit -inf, an infinite maximum, or a
 * temperature that is not positive.  -1, so the chain decides. */
static void test_no_distribution_gives_minus_one(void **state)
{
	(void)state;
	float *s = scratch_for(16);
	uint64_t rng = 1;
	float l[16];
	for (int i = 0; i < 16; i++)
		l[i] = -INFINITY;
	assert_int_equal(engine_dist_sample(l, 16, 1.0f, 0.0f, &rng, s), -1);
	for (int i = 0; i < 16; i++)
		l[i] = (float)i;
	l[4] = INFINITY;
	assert_int_equal(engine_dist_sample(l, 16, 1.0f, 0.0f, &rng, s), -1);
	l[4] = 4.0f;
	assert_int_equal(engine_dist_sample(l, 16, 0.0f, 0.0f, &rng, s), -1);
	assert_int_equal(engine_dist_sample(l, 0, 1.0f, 0.0f, &rng, s), -1);
	assert_true(engine_dist_sample(l, 16, 1.0f, 0.0f, &rng, s) >= 0);
	free(s);
}

/* A NaN logit is left out; the others keep their distribution. */
static void test_nan_logit_is_left_out(void **state)
{
	(void)state;
	float l[11];
	for (int i = 0; i < 11; i++)
		l[i] = (float)(i % 4) * 0.5f;
	l[2] = NAN;
	l[10] = NAN;
	float *s = scratch_for(11);
	uint64_t rng = 9;
	for (int k = 0; k < 5000; k++) {
		int t = engine_dist_sample(l, 11, 1.0f, 0.0f, &rng, s);
		assert_true(t >= 0 && t < 11 && t != 2 && t != 10);
	}
	free(s);
}

/* A seed replays its draws; another seed, or none, draws differently. */
static void test_seed_replays(void **state)
{
	(void)state;
	int n = 3001;
	float *l = skewed(n);
	for (int i = 0; i < n; i++)
		l[i] = 0.0f; /* uniform: two sequences agree by chance 1 in 3001 a draw */
	float *s = scratch_for(n);
	int a[32], b[32], c[32], d[32], e[32];
	uint64_t ra = engine_rng_seed(true, 5), rb = engine_rng_seed(true, 5),
	         rc = engine_rng_seed(true, 6), rd = engine_rng_seed(false, 0),
	         re = engine_rng_seed(false, 0);
	int same_c = 0, same_d = 0;
	for (int k = 0; k < 32; k++) {
		a[k] = engine_dist_sample(l, n, 1.0f, 0.0f, &ra, s);
		b[k] = engine_dist_sample(l, n, 1.0f, 0.0f, &rb, s);
		c[k] = engine_dist_sample(l, n, 1.0f, 0.0f, &rc, s);
		d[k] = engine_dist_sample(l, n, 1.0f, 0.0f, &rd, s);
		e[k] = engine_dist_sample(l, n, 1.0f, 0.0f, &re, s);
		assert_int_equal(a[k], b[k]);
		same_c += a[k] == c[k];
		same_d += d[k] == e[k];
	}
	assert_true(same_c < 4);
	assert_true(same_d < 4);
	free(s);
	free(l);
}

/* Which requests take this path: a temperature and no truncation other
 * than min_p.  top_k, top_p < 1, penalties or greedy keep the chain. */
static void test_which_params_are_plain(void **state)
{
	(void)state;
	struct gen_params p = gen_default_params();
	assert_true(engine_sampler_is_plain(&p, 1000));
	p.min_p = 0.1f;
	assert_true(engine_sampler_is_plain(&p, 1000));
	p.top_k = 1000;
	assert_true(engine_sampler_is_plain(&p, 1000));
	p.top_k = 40;
	assert_false(engine_sampler_is_plain(&p, 1000));
	p = gen_default_params();
	p.top_p = 0.9f;
	assert_false(engine_sampler_is_plain(&p, 1000));
	p = gen_default_params();
	p.presence_penalty = 0.5f;
	assert_false(engine_sampler_is_plain(&p, 1000));
	p = gen_default_params();
	p.temperature = 0.0f;
	assert_false(engine_sampler_is_plain(&p, 1000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_draws_follow_softmax),
	    cmocka_unit_test(test_temperature_sharpens_and_flattens),
	    cmocka_unit_test(test_min_p_leaves_the_tail_out),
	    cmocka_unit_test(test_weights_match_libm_exp),
	    cmocka_unit_test(test_far_and_infinite_logits_are_never_drawn),
	    cmocka_unit_test(test_no_distribution_gives_minus_one),
	    cmocka_unit_test(test_nan_logit_is_left_out),
	    cmocka_unit_test(test_seed_replays),
	    cmocka_unit_test(test_which_params_are_plain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
