/*
 * testutil.h — the clock helpers unit tests that wait on threads share.
 * Header-only (static inline): each test is its own program.
 */
#ifndef BRG_TESTS_TESTUTIL_H
#define BRG_TESTS_TESTUTIL_H

#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC. */
static inline long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

#endif
