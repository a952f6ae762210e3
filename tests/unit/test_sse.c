/*
 * test_sse.c — unit tests for provider/sse: WHATWG event-stream framing and
 * NDJSON lines, fed in pieces split anywhere, with a cap that fails for
 * good once passed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "provider/sse.h"

/* Every event seen, each followed by '|' (test data never holds one). */
struct log {
	char text[8192];
	size_t len;
	size_t n_events;
	size_t max_len; /* the longest event seen */
	bool is_all_nul_terminated;
	size_t stop_after; /* return nonzero from the callback at this event; 0: never */
};

static int record(void *ud, const char *data, size_t len)
{
	struct log *l = ud;
	if (data[len] != '\0')
		l->is_all_nul_terminated = false;
	if (len > l->max_len)
		l->max_len = len;
	l->n_events++;
	if (l->len + len + 1 < sizeof l->text) {
		memcpy(l->text + l->len, data, len);
		l->len += len;
		l->text[l->len++] = '|';
		l->text[l->len] = '\0';
	}
	return l->stop_after && l->n_events == l->stop_after;
}

static void log_init(struct log *l)
{
	memset(l, 0, sizeof *l);
	l->is_all_nul_terminated = true;
}

/* Feeds s in one piece, then finishes; returns the first error. */
static enum brg_err run(struct sse_parser *p, const char *s, struct log *l)
{
	enum brg_err err = sse_parser_feed(p, s, strlen(s), record, l);
	if (err)
		return err;
	return sse_parser_finish(p, record, l);
}

/* Parses s with a fresh parser, one piece; the events joined by '|'. */
static const char *events_of(const char *s, bool is_ndjson, struct log *l)
{
	struct sse_parser *p = sse_parser_new(1024, is_ndjson);
	assert_non_null(p);
	log_init(l);
	assert_int_equal(run(p, s, l), BRG_OK);
	sse_parser_free(p);
	assert_true(l->is_all_nul_terminated);
	return l->text;
}

static void test_lf_crlf_and_cr_line_endings_frame_the_same_events(void **state)
{
	struct log l;
	assert_string_equal(events_of("data: a\n\ndata: b\n\n", false, &l), "a|b|");
	assert_string_equal(events_of("data: a\r\n\r\ndata: b\r\n\r\n", false, &l), "a|b|");
	assert_string_equal(events_of("data: a\r\rdata: b\r\r", false, &l), "a|b|");
	assert_string_equal(events_of("data: a\r\n\rdata: b\n\r\n", false, &l), "a|b|");
}

static void test_cr_ending_one_piece_and_lf_starting_next_is_one_line_ending(void **state)
{
	struct sse_parser *p = sse_parser_new(1024, false);
	struct log l;
	log_init(&l);
	assert_int_equal(sse_parser_feed(p, "data: a\r", 8, record, &l), BRG_OK);
	/* Were the LF a second line ending, "a" would be dispatched here. */
	assert_int_equal(sse_parser_feed(p, "\ndata: b\r", 9, record, &l), BRG_OK);
	assert_int_equal(l.n_events, 0);
	assert_int_equal(sse_parser_feed(p, "\n\r\n", 3, record, &l), BRG_OK);
	assert_string_equal(l.text, "a\nb|");
	sse_parser_free(p);
}

static void test_data_lines_join_with_lf_and_only_one_space_is_dropped(void **state)
{
	struct log l;
	assert_string_equal(events_of("data:x\ndata: y\ndata:  z\n\n", false, &l), "x\ny\n z|");
	assert_string_equal(events_of("data:\ndata:\n\n", false, &l), "\n|");
	assert_string_equal(events_of("data: {\"a\": 1}\n\n", false, &l), "{\"a\": 1}|");
	/* The colon splits at its first occurrence only. */
	assert_string_equal(events_of("data: a:b: c\n\n", false, &l), "a:b: c|");
}

static void test_comments_and_other_fields_are_ignored(void **state)
{
	struct log l;
	const char *s = ": keep-alive\n"
	                "event: message\nid: 7\nretry: 1000\n"
	                "data: x\n"
	                ":another comment\n"
	                "dataa: no\nDATA: no\n data: no\n"
	                "\n";
	assert_string_equal(events_of(s, false, &l), "x|");
	assert_int_equal(l.n_events, 1);
}

static void test_field_without_colon_is_a_name_with_empty_value(void **state)
{
	struct log l;
	assert_string_equal(events_of("data\n\n", false, &l), "|");
	assert_int_equal(l.n_events, 1);
	assert_string_equal(events_of("data\ndata: x\n\n", false, &l), "\nx|");
	assert_string_equal(events_of("something\n\n", false, &l), "");
}

static void test_event_without_data_lines_is_not_reported(void **state)
{
	struct log l;
	assert_string_equal(events_of("event: ping\n\n\n\n: c\n\ndata: a\n\n", false, &l), "a|");
	assert_int_equal(l.n_events, 1);
}

static void test_unterminated_event_is_dropped_at_finish(void **state)
{
	struct log l;
	assert_string_equal(events_of("data: a\n\ndata: b\n", false, &l), "a|");
	assert_string_equal(events_of("data: a\n\ndata: b", false, &l), "a|");
}

static void test_leading_bom_is_skipped_once_even_when_split(void **state)
{
	struct sse_parser *p = sse_parser_new(1024, false);
	struct log l;
	log_init(&l);
	assert_int_equal(sse_parser_feed(p, "\xEF", 1, record, &l), BRG_OK);
	assert_int_equal(sse_parser_feed(p, "\xBB", 1, record, &l), BRG_OK);
	assert_int_equal(sse_parser_feed(p,
	                                 "\xBF"
	                                 "data: a\n\n",
	                                 10, record, &l),
	                 BRG_OK);
	assert_string_equal(l.text, "a|");
	sse_parser_free(p);
	/* A second BOM is content: it makes the first line an unknown field. */
	assert_string_equal(events_of("\xEF\xBB\xBF\xEF\xBB\xBF"
	                              "data: a\n\ndata: b\n\n",
	                              false, &l),
	                    "b|");
}

static void test_bytes_that_only_start_a_bom_are_content(void **state)
{
	struct log l;
	assert_string_equal(events_of("\xEF\xBB"
	                              "x\n",
	                              true, &l),
	                    "\xEF\xBB"
	                    "x|");
	assert_string_equal(events_of("\xEF", true, &l), "\xEF|");
	assert_string_equal(events_of("\xEF\xBB\xBF{}\n", true, &l), "{}|");
}

static void test_every_split_of_a_stream_gives_the_same_events(void **state)
{
	const char *s = "\xEF\xBB\xBF: hi\r\n"
	                "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\n\r\n"
	                "data: one\rdata: two\r\r"
	                "event: x\ndata:three\n\n"
	                "data: [DONE]\n\n";
	const char *want = "{\"choices\":[{\"delta\":{\"content\":\"a\"}}]}|one\ntwo|three|[DONE]|";
	size_t len = strlen(s);
	for (size_t i = 0; i <= len; i++) {
		for (size_t j = i; j <= len; j++) {
			struct sse_parser *p = sse_parser_new(64, false);
			struct log l;
			log_init(&l);
			assert_int_equal(sse_parser_feed(p, s, i, record, &l), BRG_OK);
			assert_int_equal(sse_parser_feed(p, s + i, j - i, record, &l), BRG_OK);
			assert_int_equal(sse_parser_feed(p, s + j, len - j, record, &l), BRG_OK);
			assert_int_equal(sse_parser_finish(p, record, &l), BRG_OK);
			assert_string_equal(l.text, want);
			sse_parser_free(p);
		}
	}
}

static void test_byte_by_byte_feed_gives_the_same_events(void **state)
{
	const char *s = "{\"message\":{\"content\":\"hi\"}}\r\n\n  \n{\"done\":true}";
	struct sse_parser *p = sse_parser_new(64, true);
	struct log l;
	log_init(&l);
	for (size_t i = 0; s[i]; i++)
		assert_int_equal(sse_parser_feed(p, s + i, 1, record, &l), BRG_OK);
	assert_int_equal(sse_parser_finish(p, record, &l), BRG_OK);
	assert_string_equal(l.text, "{\"message\":{\"content\":\"hi\"}}|{\"done\":true}|");
	sse_parser_free(p);
}

static void test_event_exactly_at_cap_is_delivered(void **state)
{
	struct sse_parser *p = sse_parser_new(5, false);
	struct log l;
	log_init(&l);
	/* Five bytes of data: two lines and the LF that joins them. */
	assert_int_equal(run(p, "data: ab\ndata: cd\n\ndata: 12345\n\n", &l), BRG_OK);
	assert_string_equal(l.text, "ab\ncd|12345|");
	assert_int_equal(l.max_len, 5);
	sse_parser_free(p);
}

static void test_event_over_cap_fails_and_parser_stays_failed(void **state)
{
	struct sse_parser *p = sse_parser_new(5, false);
	struct log l;
	log_init(&l);
	const char *s = "data: ok\n\ndata: abc\ndata: de\n\n";
	assert_int_equal(sse_parser_feed(p, s, strlen(s), record, &l), BRG_E_TOO_LARGE);
	assert_string_equal(l.text, "ok|");
	assert_int_equal(sse_parser_feed(p, "data: x\n\n", 9, record, &l), BRG_E_TOO_LARGE);
	assert_int_equal(sse_parser_finish(p, record, &l), BRG_E_TOO_LARGE);
	assert_int_equal(l.n_events, 1);
	sse_parser_free(p);
}

static void test_pending_line_over_cap_fails_before_it_ends(void **state)
{
	struct sse_parser *p = sse_parser_new(4, false);
	struct log l;
	log_init(&l);
	/* A comment may be as long as the longest data line, "data: " + 4. */
	assert_int_equal(sse_parser_feed(p, ":123456789", 10, record, &l), BRG_OK);
	assert_int_equal(sse_parser_feed(p, "x", 1, record, &l), BRG_E_TOO_LARGE);
	assert_int_equal(sse_parser_feed(p, "\n", 1, record, &l), BRG_E_TOO_LARGE);
	sse_parser_free(p);
}

static void test_large_event_fed_in_small_pieces_arrives_whole(void **state)
{
	size_t n = 1 << 20;
	struct sse_parser *p = sse_parser_new(n, false);
	char piece[4096];
	memset(piece, 'x', sizeof piece);
	struct log l;
	log_init(&l);
	assert_int_equal(sse_parser_feed(p, "data: ", 6, record, &l), BRG_OK);
	for (size_t i = 0; i < n; i += sizeof piece)
		assert_int_equal(sse_parser_feed(p, piece, sizeof piece, record, &l), BRG_OK);
	assert_int_equal(sse_parser_feed(p, "\n\n", 2, record, &l), BRG_OK);
	assert_int_equal(l.n_events, 1);
	assert_int_equal(l.max_len, n);
	assert_true(l.is_all_nul_terminated);
	sse_parser_free(p);
}

static void test_nonzero_from_callback_cancels_for_good(void **state)
{
	struct sse_parser *p = sse_parser_new(64, false);
	struct log l;
	log_init(&l);
	l.stop_after = 1;
	const char *s = "data: a\n\ndata: b\n\n";
	assert_int_equal(sse_parser_feed(p, s, strlen(s), record, &l), BRG_E_CANCELLED);
	assert_int_equal(l.n_events, 1);
	assert_int_equal(sse_parser_feed(p, s, strlen(s), record, &l), BRG_E_CANCELLED);
	assert_int_equal(sse_parser_finish(p, record, &l), BRG_E_CANCELLED);
	assert_int_equal(l.n_events, 1);
	sse_parser_free(p);
}

static void test_event_with_nul_byte_keeps_its_length(void **state)
{
	struct sse_parser *p = sse_parser_new(64, false);
	struct log l;
	log_init(&l);
	assert_int_equal(sse_parser_feed(p, "data: a\0b\n\n", 11, record, &l), BRG_OK);
	assert_int_equal(l.max_len, 3);
	assert_memory_equal(l.text, "a\0b|", 4);
	sse_parser_free(p);
}

static void test_ndjson_splits_on_lf_and_strips_one_trailing_cr(void **state)
{
	struct log l;
	assert_string_equal(events_of("{\"a\":1}\n{\"b\":2}\r\n{\"c\":\r3}\n", true, &l),
	                    "{\"a\":1}|{\"b\":2}|{\"c\":\r3}|");
}

static void test_ndjson_skips_blank_and_whitespace_only_lines(void **state)
{
	struct log l;
	assert_string_equal(events_of("\n\r\n  \t \r\n{}\n\n \n[]\n", true, &l), "{}|[]|");
	assert_int_equal(l.n_events, 2);
}

static void test_ndjson_finish_reports_final_unterminated_line(void **state)
{
	struct log l;
	assert_string_equal(events_of("{\"a\":1}\n{\"done\":true}", true, &l),
	                    "{\"a\":1}|{\"done\":true}|");
	assert_string_equal(events_of("{\"a\":1}\n{\"done\":true}\r", true, &l),
	                    "{\"a\":1}|{\"done\":true}|");
	assert_string_equal(events_of("{\"a\":1}\n   ", true, &l), "{\"a\":1}|");
}

static void test_ndjson_line_at_cap_with_crlf_passes_and_longer_fails(void **state)
{
	struct sse_parser *p = sse_parser_new(4, true);
	struct log l;
	log_init(&l);
	/* "abcd\r" is one byte over the cap until the LF shows the CR is framing. */
	assert_int_equal(sse_parser_feed(p, "abcd\r", 5, record, &l), BRG_OK);
	assert_int_equal(sse_parser_feed(p, "\nabcdef", 7, record, &l), BRG_E_TOO_LARGE);
	assert_string_equal(l.text, "abcd|");
	assert_int_equal(sse_parser_finish(p, record, &l), BRG_E_TOO_LARGE);
	sse_parser_free(p);

	/* Five bytes without a CR: refused when the line ends, or at finish. */
	p = sse_parser_new(4, true);
	log_init(&l);
	assert_int_equal(sse_parser_feed(p, "abcde\n", 6, record, &l), BRG_E_TOO_LARGE);
	sse_parser_free(p);
	p = sse_parser_new(4, true);
	assert_int_equal(sse_parser_feed(p, "abcde", 5, record, &l), BRG_OK);
	assert_int_equal(sse_parser_finish(p, record, &l), BRG_E_TOO_LARGE);
	assert_int_equal(l.n_events, 0);
	sse_parser_free(p);
}

static void test_ndjson_does_not_treat_cr_as_a_line_ending(void **state)
{
	struct log l;
	assert_string_equal(events_of("a\rb\n", true, &l), "a\rb|");
}

static void test_parser_starts_a_new_stream_after_finish(void **state)
{
	struct sse_parser *p = sse_parser_new(64, false);
	struct log l;
	log_init(&l);
	assert_int_equal(run(p, "data: a\n\ndata: lost", &l), BRG_OK);
	assert_int_equal(run(p,
	                     "\xEF\xBB\xBF"
	                     "data: b\n\n",
	                     &l),
	                 BRG_OK);
	assert_string_equal(l.text, "a|b|");
	sse_parser_free(p);
}

static void test_zero_cap_allows_only_empty_events(void **state)
{
	struct sse_parser *p = sse_parser_new(0, false);
	struct log l;
	log_init(&l);
	assert_int_equal(sse_parser_feed(p, "data:\n\n", 7, record, &l), BRG_OK);
	assert_int_equal(l.n_events, 1);
	assert_int_equal(sse_parser_feed(p, "data: x\n\n", 9, record, &l), BRG_E_TOO_LARGE);
	sse_parser_free(p);
}

static void test_free_null_is_a_no_op(void **state)
{
	sse_parser_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lf_crlf_and_cr_line_endings_frame_the_same_events),
	    cmocka_unit_test(test_cr_ending_one_piece_and_lf_starting_next_is_one_line_ending),
	    cmocka_unit_test(test_data_lines_join_with_lf_and_only_one_space_is_dropped),
	    cmocka_unit_test(test_comments_and_other_fields_are_ignored),
	    cmocka_unit_test(test_field_without_colon_is_a_name_with_empty_value),
	    cmocka_unit_test(test_event_without_data_lines_is_not_reported),
	    cmocka_unit_test(test_unterminated_event_is_dropped_at_finish),
	    cmocka_unit_test(test_leading_bom_is_skipped_once_even_when_split),
	    cmocka_unit_test(test_bytes_that_only_start_a_bom_are_content),
	    cmocka_unit_test(test_every_split_of_a_stream_gives_the_same_events),
	    cmocka_unit_test(test_byte_by_byte_feed_gives_the_same_events),
	    cmocka_unit_test(test_event_exactly_at_cap_is_delivered),
	    cmocka_unit_test(test_event_over_cap_fails_and_parser_stays_failed),
	    cmocka_unit_test(test_pending_line_over_cap_fails_before_it_ends),
	    cmocka_unit_test(test_large_event_fed_in_small_pieces_arrives_whole),
	    cmocka_unit_test(test_nonzero_from_callback_cancels_for_good),
	    cmocka_unit_test(test_event_with_nul_byte_keeps_its_length),
	    cmocka_unit_test(test_ndjson_splits_on_lf_and_strips_one_trailing_cr),
	    cmocka_unit_test(test_ndjson_skips_blank_and_whitespace_only_lines),
	    cmocka_unit_test(test_ndjson_finish_reports_final_unterminated_line),
	    cmocka_unit_test(test_ndjson_line_at_cap_with_crlf_passes_and_longer_fails),
	    cmocka_unit_test(test_ndjson_does_not_treat_cr_as_a_line_ending),
	    cmocka_unit_test(test_parser_starts_a_new_stream_after_finish),
	    cmocka_unit_test(test_zero_cap_allows_only_empty_events),
	    cmocka_unit_test(test_free_null_is_a_no_op),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
