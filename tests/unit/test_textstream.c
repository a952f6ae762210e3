/*
 * test_textstream.c — unit tests for engine/textstream: whole UTF-8
 * characters only, U+FFFD for invalid bytes, stop strings cut out even when
 * they span tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../common/utf8_check.h"

#include "engine/textstream.h"

#define FFFD "\xEF\xBF\xBD"

/* Collects everything a stream releases, push by push. */
struct run {
	struct textstream *ts;
	char text[4096];
	size_t len;
	size_t last_len; /* bytes released by the last push */
	bool stopped;
};

static void run_init(struct run *r, const char *const *stops, size_t n_stops)
{
	memset(r, 0, sizeof *r);
	r->ts = textstream_new(stops, n_stops);
	assert_non_null(r->ts);
}

static void push(struct run *r, const char *bytes, size_t len)
{
	size_t cap = textstream_out_cap(r->ts, len);
	char *out = malloc(cap); /* exact size, so ASan sees an overflow */
	assert_non_null(out);
	size_t n = 0;
	bool stopped = textstream_push(r->ts, bytes, len, out, &n);
	assert_true(n <= cap);
	assert_true(r->len + n <= sizeof r->text);
	memcpy(r->text + r->len, out, n);
	r->len += n;
	r->last_len = n;
	r->stopped = r->stopped || stopped;
	free(out);
}

static void push_str(struct run *r, const char *s)
{
	push(r, s, strlen(s));
}

static void flush(struct run *r)
{
	size_t cap = textstream_out_cap(r->ts, 0);
	char *out = malloc(cap);
	assert_non_null(out);
	size_t n = 0;
	textstream_flush(r->ts, out, &n);
	assert_true(n <= cap);
	memcpy(r->text + r->len, out, n);
	r->len += n;
	r->last_len = n;
	free(out);
}

static void assert_text(const struct run *r, const char *want)
{
	assert_int_equal(r->len, strlen(want));
	assert_memory_equal(r->text, want, r->len);
}

static void test_stop_string_spanning_three_tokens(void **state)
{
	const char *stops[] = {"<|end|>"};
	struct run r;
	run_init(&r, stops, 1);
	push_str(&r, "Hello <|");
	assert_text(&r, "Hello ");
	assert_int_equal(textstream_held(r.ts), 2);
	push_str(&r, "en");
	assert_false(r.stopped);
	assert_text(&r, "Hello ");
	push_str(&r, "d|> and more");
	assert_true(r.stopped);
	assert_text(&r, "Hello ");
	textstream_free(r.ts);
}

static void test_stop_at_the_very_start(void **state)
{
	const char *stops[] = {"STOP"};
	struct run r;
	run_init(&r, stops, 1);
	push_str(&r, "STOP right there");
	assert_true(r.stopped);
	assert_int_equal(r.len, 0);
	flush(&r);
	assert_int_equal(r.len, 0);
	textstream_free(r.ts);
}

static void test_two_stops_earlier_one_wins(void **state)
{
	const char *stops[] = {"world", "lo"};
	struct run r;
	run_init(&r, stops, 2);
	push_str(&r, "hello world");
	assert_true(r.stopped);
	assert_text(&r, "hel");
	textstream_free(r.ts);
}

static void test_stops_completing_together_cut_the_longest(void **state)
{
	const char *stops[] = {"b", "ab"};
	struct run r;
	run_init(&r, stops, 2);
	push_str(&r, "xab");
	assert_true(r.stopped);
	assert_text(&r, "x");
	textstream_free(r.ts);
}

static void test_result_does_not_depend_on_token_split(void **state)
{
	/* "bc" completes before "abcd" could, whether or not the bytes come
	 * in one push. */
	const char *stops[] = {"abcd", "bc"};
	struct run one, many;
	run_init(&one, stops, 2);
	run_init(&many, stops, 2);
	push_str(&one, "xabcd");
	push_str(&many, "xa");
	push_str(&many, "b");
	push_str(&many, "cd");
	assert_true(one.stopped && many.stopped);
	assert_text(&one, "xa");
	assert_text(&many, "xa");
	textstream_free(one.ts);
	textstream_free(many.ts);
}

static void test_partial_stop_prefix_released_at_flush(void **state)
{
	const char *stops[] = {"</answer>"};
	struct run r;
	run_init(&r, stops, 1);
	push_str(&r, "42 </ans");
	assert_text(&r, "42 ");
	assert_int_equal(textstream_held(r.ts), 5);
	flush(&r);
	assert_false(r.stopped);
	assert_text(&r, "42 </ans");
	assert_int_equal(textstream_held(r.ts), 0);
	textstream_free(r.ts);
}

static void test_held_prefix_released_once_it_cannot_be_a_stop(void **state)
{
	const char *stops[] = {"</s>"};
	struct run r;
	run_init(&r, stops, 1);
	push_str(&r, "a</");
	assert_text(&r, "a");
	push_str(&r, "b");
	assert_text(&r, "a</b");
	assert_int_equal(textstream_held(r.ts), 0);
	textstream_free(r.ts);
}

static void test_emoji_split_across_four_pushes_released_whole(void **state)
{
	const char emoji[] = "\xF0\x9F\x98\x80"; /* U+1F600 */
	struct run r;
	run_init(&r, NULL, 0);
	for (int i = 0; i < 3; i++) {
		push(&r, &emoji[i], 1);
		assert_int_equal(r.len, 0);
		assert_int_equal(textstream_held(r.ts), (size_t)i + 1);
	}
	push(&r, &emoji[3], 1);
	assert_text(&r, emoji);
	assert_int_equal(textstream_held(r.ts), 0);
	textstream_free(r.ts);
}

static void test_invalid_byte_becomes_replacement_char(void **state)
{
	struct run r;
	run_init(&r, NULL, 0);
	push_str(&r, "a\xFF"
	             "b\x80"
	             "c");
	assert_text(&r, "a" FFFD "b" FFFD "c");
	textstream_free(r.ts);
}

static void test_invalid_sequences_one_replacement_per_maximal_subpart(void **state)
{
	struct run r;
	run_init(&r, NULL, 0);
	/* Truncated 3-byte sequence, overlong '/', a surrogate, > U+10FFFF. */
	push_str(&r, "\xE2\x82"
	             "A"
	             "\xC0\xAF"
	             "\xED\xA0\x80"
	             "\xF4\x90\x80\x80");
	assert_text(&r, FFFD "A" FFFD FFFD FFFD FFFD FFFD FFFD FFFD FFFD FFFD);
	textstream_free(r.ts);
}

static void test_nul_byte_becomes_replacement_char(void **state)
{
	struct run r;
	run_init(&r, NULL, 0);
	push(&r, "a\0b", 3);
	assert_text(&r, "a" FFFD "b");
	textstream_free(r.ts);
}

static void test_truncated_utf8_at_flush_becomes_replacement_char(void **state)
{
	struct run r;
	run_init(&r, NULL, 0);
	push_str(&r, "ok \xE2\x82");
	assert_text(&r, "ok ");
	flush(&r);
	assert_text(&r, "ok " FFFD);
	textstream_free(r.ts);
}

static void test_no_stops_releases_everything_immediately(void **state)
{
	const char *stops[] = {"", NULL};
	struct run r;
	run_init(&r, stops, 2);
	push_str(&r, "Once upon a time");
	assert_text(&r, "Once upon a time");
	assert_int_equal(textstream_held(r.ts), 0);
	push_str(&r, " there was \xC3\xA9t\xC3\xA9");
	assert_text(&r, "Once upon a time there was \xC3\xA9t\xC3\xA9");
	textstream_free(r.ts);
}

static void test_after_a_stop_pushes_release_nothing(void **state)
{
	const char *stops[] = {"\n\n"};
	struct run r;
	run_init(&r, stops, 1);
	push_str(&r, "line\n");
	push_str(&r, "\nnext");
	assert_true(r.stopped);
	assert_text(&r, "line");
	r.stopped = false;
	push_str(&r, "more text");
	assert_false(r.stopped);
	assert_int_equal(r.last_len, 0);
	flush(&r);
	assert_text(&r, "line");
	textstream_free(r.ts);
}

static void test_stop_after_a_multibyte_character(void **state)
{
	const char *stops[] = {"\xC3\xA9!"}; /* "é!" */
	struct run r;
	run_init(&r, stops, 1);
	push_str(&r, "caf\xC3");
	assert_text(&r, "caf");
	push_str(&r, "\xA9");
	assert_text(&r, "caf");
	push_str(&r, "!?");
	assert_true(r.stopped);
	assert_text(&r, "caf");
	textstream_free(r.ts);
}

static void test_invalid_utf8_stop_is_ignored(void **state)
{
	const char *stops[] = {"\xA9"};
	struct run r;
	run_init(&r, stops, 1);
	push_str(&r, "caf\xC3\xA9");
	assert_false(r.stopped);
	assert_text(&r, "caf\xC3\xA9");
	textstream_free(r.ts);
}

static void test_large_token_with_stop_near_the_end(void **state)
{
	static char big[3000];
	memset(big, 'x', sizeof big);
	memcpy(big + 2990, "STOP", 4);
	const char *stops[] = {"STOP"};
	struct run r;
	run_init(&r, stops, 1);
	push(&r, big, sizeof big);
	assert_true(r.stopped);
	assert_int_equal(r.len, 2990);
	textstream_free(r.ts);
}

static void test_output_is_always_valid_utf8(void **state)
{
	/* Every byte value, in every position, in tiny pushes. */
	static char garbage[2048];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof garbage; i++) {
		x = x * 1103515245u + 12345u;
		garbage[i] = (char)(x >> 16);
	}
	const char *stops[] = {"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", "zz"};
	struct run r;
	run_init(&r, stops, 2);
	for (size_t i = 0; i < 1024 && !r.stopped; i += 1 + i % 3)
		push(&r, garbage + i, 1 + i % 3);
	flush(&r);
	assert_true(valid_utf8((const unsigned char *)r.text, r.len));
	textstream_free(r.ts);
}

static void test_free_null_is_a_no_op(void **state)
{
	textstream_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stop_string_spanning_three_tokens),
	    cmocka_unit_test(test_stop_at_the_very_start),
	    cmocka_unit_test(test_two_stops_earlier_one_wins),
	    cmocka_unit_test(test_stops_completing_together_cut_the_longest),
	    cmocka_unit_test(test_result_does_not_depend_on_token_split),
	    cmocka_unit_test(test_partial_stop_prefix_released_at_flush),
	    cmocka_unit_test(test_held_prefix_released_once_it_cannot_be_a_stop),
	    cmocka_unit_test(test_emoji_split_across_four_pushes_released_whole),
	    cmocka_unit_test(test_invalid_byte_becomes_replacement_char),
	    cmocka_unit_test(test_invalid_sequences_one_replacement_per_maximal_subpart),
	    cmocka_unit_test(test_nul_byte_becomes_replacement_char),
	    cmocka_unit_test(test_truncated_utf8_at_flush_becomes_replacement_char),
	    cmocka_unit_test(test_no_stops_releases_everything_immediately),
	    cmocka_unit_test(test_after_a_stop_pushes_release_nothing),
	    cmocka_unit_test(test_stop_after_a_multibyte_character),
	    cmocka_unit_test(test_invalid_utf8_stop_is_ignored),
	    cmocka_unit_test(test_large_token_with_stop_near_the_end),
	    cmocka_unit_test(test_output_is_always_valid_utf8),
	    cmocka_unit_test(test_free_null_is_a_no_op),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
