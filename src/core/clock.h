/*
 * clock.h — the monotonic clock every deadline and duration in brigade is
 * measured on (request timeouts, first-byte timeouts, breaker cool-downs).
 * Header-only: one call to clock_gettime, no state.
 */
#ifndef BRG_CORE_CLOCK_H
#define BRG_CORE_CLOCK_H

#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC: only differences mean anything. */
static inline long long brg_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Microseconds on the same clock: for durations shorter than a millisecond
 * (decode steps, request timings). */
static inline long long brg_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#endif
