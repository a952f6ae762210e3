/*
 * testutil.h — helpers several unit tests share: the clock, for tests
 * that wait on threads, and a temporary YAML file, for the config tests.
 * Header-only (static inline): each test is its own program.  Include it
 * after <cmocka.h>.
 */
#ifndef BRG_TESTS_TESTUTIL_H
#define BRG_TESTS_TESTUTIL_H

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

/* Milliseconds on CLOCK_MONOTONIC: the clock brigade's deadlines use. */
static inline long long now_ms(void)
{
	return brg_now_ms();
}

static inline void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Writes 'yaml' to a new temporary file; returns its path (free() it). */
static inline char *write_yaml(const char *yaml)
{
	char *path = strdup("/tmp/brigade-test-config-XXXXXX.yaml");
	assert_non_null(path);
	int fd = mkstemps(path, 5);
	assert_true(fd >= 0);
	size_t len = strlen(yaml);
	assert_int_equal(write(fd, yaml, len), (ssize_t)len);
	close(fd);
	return path;
}

#endif
