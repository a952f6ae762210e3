/*
 * test_jload.c — the fast JSON reader (api/jload.c): request bodies read
 * to the tree jansson builds; whatever it is not sure of handed to
 * jansson, whose errors come back unchanged.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/jload.h"

static void assert_same_as_jansson(const char *s)
{
	json_error_t je;
	json_t *ref = json_loadb(s, strlen(s), JSON_REJECT_DUPLICATES, &je);
	json_t *fast = jload_fast(s, strlen(s));
	assert_non_null(ref);
	assert_non_null(fast);
	assert_true(json_equal(ref, fast));
	size_t flags = JSON_PRESERVE_ORDER | JSON_COMPACT;
	char *a = json_dumps(ref, flags), *b = json_dumps(fast, flags);
	assert_string_equal(a, b);
	free(a);
	free(b);
	json_decref(ref);
	json_decref(fast);
}

static void test_bodies_read_as_jansson_reads_them(void **state)
{
	(void)state;
	assert_same_as_jansson(
	    "{\"model\":\"fake\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
	    "\"max_tokens\":16}");
	assert_same_as_jansson(" {\"temperature\":0.7,\"top_p\":1e-3,\"seed\":-42,\"n\":-0,"
	                       "\"neg\":-0.0,\"big\":9223372036854775807,\"x\":null,"
	                       "\"t\":true,\"f\":false,\"e\":{},\"a\":[[],[1,[2]]]}\r\n\t");
	assert_same_as_jansson("{\"s\":\"tab\\there \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r "
	                       "\\u00e9 \\ud83d\\ude00 caf\xc3\xa9 \xf0\x9f\x98\x80 \x7f\"}");
	assert_same_as_jansson("[\"top-level arrays are fine too\"]");
}

/* Each of these is one jansson refuses or one the fast reader leaves to
 * it: the fast reader says NULL, jload gives jansson's answer. */
static void test_what_it_is_not_sure_of_goes_to_jansson(void **state)
{
	(void)state;
	static const char *refused[] = {
	    "",
	    "  ",
	    "\"a string at the top\"",
	    "42",
	    "{\"a\":1,\"a\":2}",
	    "{\"k\":\"\\u0000\"}",
	    "{\"\\u0041\":1}",
	    "{\"n\":01}",
	    "{\"n\":1.}",
	    "{\"n\":-}",
	    "{\"n\":1e}",
	    "{\"n\":1e400}",
	    "{\"n\":9223372036854775808}",
	    "{\"s\":\"\xed\xa0\x80\"}",
	    "{\"s\":\"\\ud800\"}",
	    "{\"s\":\"\\udc00\"}",
	    "{\"s\":\"a\nb\"}",
	    "{\"a\":1,}",
	    "[1,]",
	    "{\"a\":tru}",
	    "{\"a\":truex}",
	    "{} {}",
	    "{\"a\":1} x",
	};
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
		const char *s = refused[i];
		json_t *fast = jload_fast(s, strlen(s));
		assert_null(fast);
		json_error_t want, got;
		json_t *ref = json_loadb(s, strlen(s), JSON_REJECT_DUPLICATES, &want);
		json_t *all = jload(s, strlen(s), &got);
		assert_int_equal(!ref, !all);
		if (ref) {
			assert_true(json_equal(ref, all));
		} else {
			assert_string_equal(want.text, got.text);
			assert_int_equal(want.line, got.line);
			assert_int_equal(want.column, got.column);
		}
		json_decref(ref);
		json_decref(all);
	}
}

/* Deep nesting is jansson's (it knows its own limit). */
static void test_deep_nesting_goes_to_jansson(void **state)
{
	(void)state;
	char s[300];
	memset(s, '[', 100);
	memset(s + 100, ']', 100);
	s[200] = '\0';
	assert_null(jload_fast(s, 200));
	json_error_t je;
	json_t *v = jload(s, 200, &je);
	assert_non_null(v);
	json_decref(v);
	memset(s, '[', 60);
	memset(s + 60, ']', 60);
	s[120] = '\0';
	assert_same_as_jansson(s);
}

/* A body longer than the reader's stack scratch, with escapes. */
static void test_long_escaped_strings(void **state)
{
	(void)state;
	size_t n = 5000;
	char *s = malloc(n * 2 + 32);
	strcpy(s, "{\"content\":\"");
	size_t len = strlen(s);
	for (size_t i = 0; i < n; i++) {
		memcpy(s + len, i % 7 ? "ab" : "\\n", 2);
		len += 2;
	}
	strcpy(s + len, "\"}");
	assert_same_as_jansson(s);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bodies_read_as_jansson_reads_them),
	    cmocka_unit_test(test_what_it_is_not_sure_of_goes_to_jansson),
	    cmocka_unit_test(test_deep_nesting_goes_to_jansson),
	    cmocka_unit_test(test_long_escaped_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
