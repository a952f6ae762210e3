/*
 * triad.c — the machine's memory bandwidth, STREAM-style: a[i] = b[i] +
 * s * c[i] over arrays far larger than the caches, on T threads (each its
 * own slice), best of R repetitions.  Bytes moved per element: 24 (two
 * reads, one write), the STREAM convention; write-allocate traffic is not
 * counted, so like STREAM this slightly under-reports what the bus does.
 *
 * Decoding one token reads every weight once, so bandwidth ÷ weight bytes
 * is the ceiling of single-stream decode speed (bench/engine/ceiling.sh).
 *
 * Usage: triad [THREADS (default: online CPUs)] [MiB per array (default 512)]
 * Prints "triad_gbps=X threads=T mib=M" on stdout.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define REPS 7

struct slice {
	double *a, *b, *c;
	size_t n;
	pthread_barrier_t *bar;
	double best_s;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
	struct slice *s = arg;
	for (size_t i = 0; i < s->n; i++) { /* first touch: pages on this thread */
		s->a[i] = 0;
		s->b[i] = 1;
		s->c[i] = 2;
	}
	s->best_s = 1e30;
	for (int r = 0; r < REPS; r++) {
		pthread_barrier_wait(s->bar);
		double t0 = now_s();
		for (size_t i = 0; i < s->n; i++)
			s->a[i] = s->b[i] + 3.0 * s->c[i];
		pthread_barrier_wait(s->bar);
		double dt = now_s() - t0;
		if (dt < s->best_s)
			s->best_s = dt;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long t = argc > 1 ? atol(argv[1]) : sysconf(_SC_NPROCESSORS_ONLN);
	long mib = argc > 2 ? atol(argv[2]) : 512;
	if (t < 1 || t > 256 || mib < 16 || mib > 65536) {
		fprintf(stderr, "usage: triad [THREADS 1..256] [MiB per array 16..65536]\n");
		return 2;
	}
	size_t n = (size_t)mib * 1024 * 1024 / sizeof(double);
	double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
	struct slice *sl = calloc((size_t)t, sizeof *sl);
	pthread_t *th = calloc((size_t)t, sizeof *th);
	pthread_barrier_t bar;
	if (!a || !b || !c || !sl || !th || pthread_barrier_init(&bar, NULL, (unsigned)t)) {
		fprintf(stderr, "triad: out of memory\n");
		return 1;
	}
	size_t per = n / (size_t)t;
	for (long i = 0; i < t; i++) {
		size_t off = (size_t)i * per;
		sl[i] =
		    (struct slice){a + off, b + off, c + off, i == t - 1 ? n - off : per, &bar, 0};
		pthread_create(&th[i], NULL, run, &sl[i]);
	}
	double best = 0;
	for (long i = 0; i < t; i++) {
		pthread_join(th[i], NULL);
		if (sl[i].best_s > best)
			best = sl[i].best_s; /* the slowest slice bounds the step */
	}
	double gbps = 24.0 * (double)n / best / 1e9;
	printf("triad_gbps=%.2f threads=%ld mib=%ld\n", gbps, t, mib);
	pthread_barrier_destroy(&bar);
	free(a);
	free(b);
	free(c);
	free(sl);
	free(th);
	return 0;
}
