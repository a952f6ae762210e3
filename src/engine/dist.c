/*
 * dist.c — sampling from the whole distribution, fast: the path every
 * request with a temperature and no truncation takes (the OpenAI default:
 * temperature 1, top_p 1), optionally with min_p.
 *
 * llama.cpp's chain (temp, dist) first copies every logit into an array
 * of (id, logit, p) — 1.8 MB for a 152k vocabulary — then scales each
 * logit, then calls expf on each, one at a time: 1.4-1.6 ms a token per
 * sequence on this 2-core machine, while both cores' llama.cpp threads
 * wait for the scheduler.  With 8 streams that was 12.7 ms of every 107 ms
 * step.  Here the logits are read where llama.cpp left them, exp is
 * computed eight at a time (Cephes' polynomial, within 2 ulp; AVX2 with
 * FMA where the processor has them), and the weights and their block sums
 * go to one scratch array that the draw walks block by block: 0.19 ms a
 * token, and 2.5 ms a step for those 8 streams.
 *
 * The distribution is the chain's: p(i) ∝ exp((l_i - max) / T), and with
 * min_p (applied to the raw logits, before the temperature, as in the
 * chain's order) every token with l_i - max < ln(min_p) gets 0.  The
 * random numbers are our own (splitmix64, seeded from the request's seed
 * or from a process-wide sequence), so a seed reproduces brigade's own
 * output, not llama.cpp's.
 */
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine_int.h"

/* Tokens per block sum: the draw scans the block sums, then one block. */
#define DIST_BLOCK 1024

/* Eight floats at a time: one AVX register, two SSE ones in the baseline
 * build.  Every function taking or returning one is inlined, so the
 * warning about passing them between differently built functions does
 * not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) v8f splat(float x)
{
	return (v8f){x, x, x, x, x, x, x, x};
}

/*
 * exp(x) for eight x <= 0 (anything above 0 is taken as 0; NaN is not
 * expected).  Below -87 the result is 0: those tokens are 1e-38 of the
 * top one, and a float cannot hold much less.  Cephes' expf: x = n ln 2 +
 * r with n the nearest integer and ln 2 in two parts (so r keeps its
 * precision), exp(r) by a minimax polynomial on |r| <= ln(2) / 2, times
 * 2^n built in the exponent bits.  Within 2 units in the last place.
 */
static inline __attribute__((always_inline)) v8f exp8(const v8f *in)
{
	const v8f magic = splat(12582912.0f); /* 1.5 × 2^23: rounds to an integer */
	v8f x = *in;
	v8i is_tiny = x < splat(-87.0f);
	v8i is_pos = x > splat(0.0f);
	x = (v8f)((v8i)x & ~(is_tiny | is_pos)); /* out of range: 0, fixed below */
	v8f r = x * splat(1.44269504088896341f) + magic;
	v8f n = r - magic;
	x = x - n * splat(0.693359375f) - n * splat(-2.12194440e-4f);
	v8f z = x * x;
	v8f p = splat(1.9875691500e-4f);
	p = p * x + splat(1.3981999507e-3f);
	p = p * x + splat(8.3334519073e-3f);
	p = p * x + splat(4.1665795894e-2f);
	p = p * x + splat(1.6666665459e-1f);
	p = p * x + splat(5.0000001201e-1f);
	p = p * z + x + splat(1.0f);
	v8i bits = ((v8i)r - (v8i)magic + 127) << 23;
	return (v8f)((v8i)(p * (v8f)bits) & ~is_tiny);
}

static inline v8f load8(const float *p)
{
	v8f v;
	memcpy(&v, p, sizeof v);
	return v;
}

static inline float hsum(const v8f *p)
{
	v8f v = *p;
	return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

static inline float exp1(float x)
{
	v8f v = splat(x);
	return exp8(&v)[0];
}

/*
 * Fills w[0, n) with the unnormalised weights and sums[k] with the sum of
 * block k; returns the total.  Built twice, for AVX2 with FMA and for the
 * baseline; weigh() picks one for this processor.
 */
static inline __attribute__((always_inline)) double
weigh_body(const float *logits, int n, float inv_t, float min_p, float *w, double *sums)
{
	v8f vmax = splat(-INFINITY);
	int i = 0;
	for (; i + 8 <= n; i += 8) {
		v8f x = load8(logits + i);
		v8i gt = x > vmax;
		vmax = (v8f)(((v8i)x & gt) | ((v8i)vmax & ~gt));
	}
	float max = -INFINITY;
	for (int k = 0; k < 8; k++)
		max = vmax[k] > max ? vmax[k] : max;
	for (; i < n; i++)
		max = logits[i] > max ? logits[i] : max;
	/* min_p keeps l - max >= ln(min_p): lower logits weigh 0. */
	float floor = min_p > 0.0f ? max + logf(min_p) : -INFINITY;
	double total = 0.0;
	for (int b = 0; b * DIST_BLOCK < n; b++) {
		int lo = b * DIST_BLOCK, hi = lo + DIST_BLOCK < n ? lo + DIST_BLOCK : n;
		v8f acc = splat(0.0f);
		int j = lo;
		for (; j + 8 <= hi; j += 8) {
			v8f l = load8(logits + j);
			v8i keep = l >= splat(floor);
			v8f x = (l - splat(max)) * splat(inv_t);
			v8f e = (v8f)((v8i)exp8(&x) & keep);
			memcpy(w + j, &e, sizeof e);
			acc += e;
		}
		float s = hsum(&acc);
		for (; j < hi; j++) {
			w[j] = logits[j] >= floor ? exp1((logits[j] - max) * inv_t) : 0.0f;
			s += w[j];
		}
		sums[b] = s;
		total += s;
	}
	return total;
}

__attribute__((target("avx2,fma"), optimize("fp-contract=fast"))) static double
weigh_avx2(const float *logits, int n, float inv_t, float min_p, float *w, double *sums)
{
	return weigh_body(logits, n, inv_t, min_p, w, sums);
}

static double weigh_base(const float *logits, int n, float inv_t, float min_p, float *w,
                         double *sums)
{
	return weigh_body(logits, n, inv_t, min_p, w, sums);
}

static double weigh(const float *logits, int n, float inv_t, float min_p, float *w, double *sums)
{
	/* Racing first calls store the same answer. */
	static atomic_int has_avx2 = -1;
	int has = atomic_load_explicit(&has_avx2, memory_order_relaxed);
	if (has < 0) {
		has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
		atomic_store_explicit(&has_avx2, has, memory_order_relaxed);
	}
	return has ? weigh_avx2(logits, n, inv_t, min_p, w, sums)
	           : weigh_base(logits, n, inv_t, min_p, w, sums);
}

uint64_t engine_rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

uint64_t engine_rng_seed(bool has_seed, uint32_t seed)
{
	if (has_seed)
		return 0x5eed000000000000u ^ seed;
	/* A process-wide sequence started from the kernel's randomness once,
	 * 0 meaning not yet (should it ever step onto 0, a chance of 2^-64 a
	 * request, the next call just starts it afresh): unseeded requests
	 * differ from each other and from run to run. */
	static atomic_uint_least64_t next;
	if (atomic_load(&next) == 0) {
		uint64_t s = 0;
		if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s)
			s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
		uint_least64_t zero = 0;
		atomic_compare_exchange_strong(&next, &zero, s | 1);
	}
	uint64_t s = atomic_fetch_add(&next, 0x9e3779b97f4a7c15u);
	return engine_rng_next(&s);
}

size_t engine_dist_scratch_floats(int n_vocab)
{
	int n_blocks = (n_vocab + DIST_BLOCK - 1) / DIST_BLOCK;
	/* The weights, then the block sums (doubles, two floats each). */
	return (size_t)n_vocab + 2 * (size_t)n_blocks + 2;
}

int engine_dist_sample(const float *logits, int n, float temperature, float min_p, uint64_t *rng,
                       float *scratch)
{
	if (n <= 0 || !(temperature > 0.0f))
		return -1;
	float *w = scratch;
	/* The block sums after the weights, 8-byte aligned. */
	uintptr_t at = (uintptr_t)(scratch + n);
	double *sums = (double *)((at + 7) & ~(uintptr_t)7);
	double total = weigh(logits, n, 1.0f / temperature, min_p, w, sums);
	if (!(total > 0.0) || !isfinite(total))
		return -1; /* NaN or infinite logits: not ours to judge */
	/* A double in [0, 1) from the top 53 bits. */
	double u = (double)(engine_rng_next(rng) >> 11) * 0x1.0p-53;
	double target = u * total, run = 0.0;
	int n_blocks = (n + DIST_BLOCK - 1) / DIST_BLOCK;
	int b = 0;
	while (b < n_blocks - 1 && run + sums[b] <= target)
		run += sums[b++];
	int lo = b * DIST_BLOCK, hi = lo + DIST_BLOCK < n ? lo + DIST_BLOCK : n;
	int last = -1;
	for (int i = lo; i < hi; i++) {
		if (w[i] <= 0.0f)
			continue;
		last = i;
		run += w[i];
		if (run > target)
			return i;
	}
	/* Rounding left the target past this block's end: its last weighed
	 * token, or the last weighed one anywhere. */
	if (last >= 0)
		return last;
	for (int i = n - 1; i >= 0; i--)
		if (w[i] > 0.0f)
			return i;
	return -1;
}
