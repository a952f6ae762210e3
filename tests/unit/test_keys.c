/*
 * test_keys.c — unit tests for http/keys.c: the keys file's format, exact
 * matching, and reloading when the file changes (keeping the last good
 * keys when the new file is broken).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "http/keys.h"

static char dir[64];
static char path[128];

static void write_file(const char *text)
{
	char tmp[160];
	snprintf(tmp, sizeof tmp, "%s.new", path);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(rename(tmp, path), 0); /* a new inode, as deploy tools do */
}

static struct http_keys *open_ok(const char *text)
{
	write_file(text);
	struct http_keys *k = NULL;
	struct brg_error e = {0};
	if (http_keys_open(path, &k, &e))
		fail_msg("%s", e.message);
	return k;
}

static void open_fails(const char *text, const char *why)
{
	write_file(text);
	struct http_keys *k = NULL;
	struct brg_error e = {0};
	assert_int_equal(http_keys_open(path, &k, &e), BRG_E_CONFIG);
	assert_null(k);
	if (!strstr(e.message, why))
		fail_msg("'%s' does not say '%s'", e.message, why);
}

static void test_format_comments_blanks_and_trimming(void **state)
{
	(void)state;
	struct http_keys *k = open_ok("# keys\n\nalpha\n  beta\t\n\r\ngamma\r\n#delta\n");
	assert_int_equal(http_keys_count(k), 3);
	assert_true(http_keys_match(k, "alpha"));
	assert_true(http_keys_match(k, "beta"));
	assert_true(http_keys_match(k, "gamma"));
	assert_false(http_keys_match(k, "delta"));
	assert_false(http_keys_match(k, "#delta"));
	assert_false(http_keys_match(k, "# keys"));
	assert_false(http_keys_match(k, ""));
	http_keys_free(k);
}

static void test_match_is_exact(void **state)
{
	(void)state;
	struct http_keys *k = open_ok("sk-0123456789\n");
	assert_true(http_keys_match(k, "sk-0123456789"));
	assert_false(http_keys_match(k, "sk-012345678"));
	assert_false(http_keys_match(k, "sk-0123456789 "));
	assert_false(http_keys_match(k, "sk-01234567890"));
	assert_false(http_keys_match(k, "SK-0123456789"));
	http_keys_free(k);
}

static void test_bad_files_refused_with_reason(void **state)
{
	(void)state;
	open_fails("# only a comment\n\n", "has no key");
	open_fails("", "has no key");
	open_fails("good\nbad key\n", "line 2");
	char *long_line = malloc(5000);
	memset(long_line, 'a', 4999);
	long_line[4999] = '\0';
	open_fails(long_line, "longer than");
	free(long_line);
	struct http_keys *k = NULL;
	struct brg_error e = {0};
	assert_int_equal(http_keys_open("/nonexistent/keys", &k, &e), BRG_E_CONFIG);
	assert_non_null(strstr(e.message, "/nonexistent/keys"));
}

static void test_reload_on_change_and_keep_last_good(void **state)
{
	(void)state;
	struct http_keys *k = open_ok("one\ntwo\n");
	write_file("two\nthree\n");
	/* Within the first second nothing is reread. */
	assert_true(http_keys_match(k, "one"));
	usleep(1100 * 1000);
	assert_false(http_keys_match(k, "one")); /* this call rereads */
	assert_true(http_keys_match(k, "three"));
	assert_int_equal(http_keys_count(k), 2);
	write_file("bad key\n");
	usleep(1100 * 1000);
	assert_true(http_keys_match(k, "three")); /* kept */
	unlink(path);
	usleep(1100 * 1000);
	assert_true(http_keys_match(k, "two")); /* kept while missing */
	write_file("four\n");
	usleep(1100 * 1000);
	assert_true(http_keys_match(k, "four"));
	assert_false(http_keys_match(k, "two"));
	http_keys_free(k);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/brigade-keys-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof path, "%s/keys", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char tmp[160];
	snprintf(tmp, sizeof tmp, "%s.new", path);
	unlink(tmp);
	unlink(path);
	rmdir(dir);
	return 0;
}

int main(void)
{
	log_set_level(getenv("BRIGADE_TEST_LOG") ? LOG_DEBUG : LOG_OFF);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format_comments_blanks_and_trimming),
	    cmocka_unit_test(test_match_is_exact),
	    cmocka_unit_test(test_bad_files_refused_with_reason),
	    cmocka_unit_test(test_reload_on_change_and_keep_last_good),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
