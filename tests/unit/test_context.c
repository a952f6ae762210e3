/*
 * test_context.c — unit tests for orchestrate/context.c, handoff.c and
 * contamination.c: budgets reproduce the spec's two examples and stay
 * usable down to tiny contexts, the fit loop compresses at most three
 * times and never truncates, the handoff state validates, renders and
 * survives a JSON round trip, the trajectory block keeps its six lines
 * whatever the inputs hold, and contamination is reported with the
 * severities and recommendations docs/context.md promises.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../common/utf8_check.h"

#include "orchestrate/context.h"
#include "orchestrate/context_int.h"

#define N_OF(a) (sizeof(a) / sizeof *(a))

static const struct brg_detail *find_detail(const struct brg_error *e, const char *key)
{
	for (size_t i = 0; i < e->n_details; i++)
		if (strcmp(e->details[i].key, key) == 0)
			return &e->details[i];
	return NULL;
}

static long long detail_int(const struct brg_error *e, const char *key)
{
	const struct brg_detail *d = find_detail(e, key);
	if (!d)
		fail_msg("no detail \"%s\"", key);
	return d->i;
}

static const char *detail_str(const struct brg_error *e, const char *key)
{
	const struct brg_detail *d = find_detail(e, key);
	if (!d || d->kind != BRG_DETAIL_STR)
		fail_msg("no string detail \"%s\"", key);
	return d->s;
}

static void assert_utf8(const char *s)
{
	assert_non_null(s);
	if (!valid_utf8((const unsigned char *)s, strlen(s)))
		fail_msg("not valid UTF-8: \"%s\"", s);
}

static void init_state(struct handoff *h, const char *goal, int total_steps)
{
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(handoff_init(h, "req-1", goal, total_steps, &err), BRG_OK);
}

static void add(struct strlist *l, const char *text)
{
	assert_int_equal(handoff_add(l, text, NULL), BRG_OK);
}

/* ---- text cleaning ------------------------------------------------------------------ */

static void test_text_is_cleaned_folded_and_cut_at_boundaries(void **state)
{
	(void)state;
	char out[10]; /* 9 bytes of text */
	memset(out, 0x55, sizeof out);
	/* 6 bytes, then a 4-byte character that does not fit: cut at the end
	 * of what was written. */
	context_text_copy(out, sizeof out, "abcdef\xF0\x9F\x98\x80", 10, false);
	assert_string_equal(out, "abcdef\xE2\x80\xA6");
	/* Inside a character: the cut moves back to its start. */
	context_text_copy(out, sizeof out, "abcde\xE2\x82\xAC\xE2\x82\xAC", 11, false);
	assert_string_equal(out, "abcde\xE2\x80\xA6");
	/* Exactly 9 bytes fit whole. */
	context_text_copy(out, sizeof out, "abcdefghi", 9, false);
	assert_string_equal(out, "abcdefghi");
	/* Folding: runs become one space, ends are trimmed, also before "…". */
	context_text_copy(out, sizeof out, " \n a\r\n\tb \x01", 9, true);
	assert_string_equal(out, "a b");
	context_text_copy(out, sizeof out, "abcde     fghij", 15, true);
	assert_string_equal(out, "abcde\xE2\x80\xA6");
	/* Invalid bytes, overlong forms and surrogates become U+FFFD. */
	context_text_copy(out, sizeof out, "\xC0\xAF\xED\xA0\x80", 5, false);
	assert_string_equal(out, "\xEF\xBF\xBD\xEF\xBF\xBD\xE2\x80\xA6");
	context_text_copy(out, sizeof out, NULL, 3, false);
	assert_string_equal(out, "");

	struct buf b;
	buf_init(&b, 1024);
	assert_int_equal(buf_append(&b, "x:", 2), BRG_OK);
	assert_int_equal(context_text_append(&b, "y\xFFz", 3, 100, false), BRG_OK);
	assert_string_equal(b.data, "x:y\xEF\xBF\xBDz");
	buf_fini(&b);
	assert_true(utf8_valid("\xF4\x8F\xBF\xBF", 4));
	assert_false(utf8_valid("\xF4\x90\x80\x80", 4)); /* past U+10FFFF */
	assert_false(utf8_valid("\xE0\x80\xAF", 3));     /* overlong */
}

/* ---- budgets ------------------------------------------------------------------- */

static void check_budget(int total, int system, int trajectory, int handoff, int user_query,
                         int generation)
{
	struct context_budget b;
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(context_budget_for(total, &b, &err), BRG_OK);
	if (b.total != total || b.system != system || b.trajectory != trajectory ||
	    b.handoff != handoff || b.user_query != user_query || b.generation != generation)
		fail_msg("%d: %d/%d/%d/%d/%d, want %d/%d/%d/%d/%d", total, b.system, b.trajectory,
		         b.handoff, b.user_query, b.generation, system, trajectory, handoff,
		         user_query, generation);
}

static void test_budget_reproduces_the_spec_examples(void **state)
{
	(void)state;
	check_budget(8192, 500, 300, 1500, 2000, 3892);      /* llama-3.2-3b */
	check_budget(131072, 1000, 500, 4000, 32000, 93572); /* granite-8b-code-128k */
}

static void test_budget_scales_between_and_beyond_the_examples(void **state)
{
	(void)state;
	check_budget(16384, 594, 341, 1917, 4000, 9532);
	check_budget(32768, 708, 387, 2449, 8000, 21224);
	check_budget(65536, 841, 440, 3130, 16000, 45125);
	check_budget(262144, 1189, 568, 5112, 64000, 191275);
	check_budget(1048576, 1682, 733, 8347, 256000, 781814);
	check_budget(INT_MAX, 11314, 2988, 123865, 524288000, 1623057480);
	/* Below 8K every part keeps its 8K share. */
	check_budget(4096, 250, 150, 750, 1000, 1946);
	check_budget(2048, 125, 75, 375, 500, 973);
}

static void test_budget_stays_usable_for_tiny_contexts(void **state)
{
	(void)state;
	check_budget(1024, 62, 48, 188, 250, 476);
	check_budget(512, 32, 48, 94, 125, 213);
	check_budget(256, 32, 48, 46, 63, 67);
	check_budget(200, 32, 48, 32, 38, 50); /* handoff, then query, gave tokens back */
	check_budget(CONTEXT_MIN_LENGTH, 32, 48, 32, 32, 48);

	struct context_budget b;
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(context_budget_for(CONTEXT_MIN_LENGTH - 1, &b, &err),
	                 BRG_E_CONTEXT_BUDGET);
	assert_int_equal(detail_int(&err, "context_length"), CONTEXT_MIN_LENGTH - 1);
	assert_int_equal(detail_int(&err, "minimum"), CONTEXT_MIN_LENGTH);
	assert_int_equal(b.total, 0);
	assert_int_equal(context_budget_for(0, &b, NULL), BRG_E_CONTEXT_BUDGET);
	assert_int_equal(context_budget_for(-5, &b, NULL), BRG_E_CONTEXT_BUDGET);
	assert_int_equal(context_budget_for(8192, NULL, NULL), BRG_E_BAD_REQUEST);
}

static void test_budget_parts_always_sum_and_leave_a_quarter(void **state)
{
	(void)state;
	struct context_budget prev = {0};
	for (int t = CONTEXT_MIN_LENGTH; t <= 140000; t += (t < 9000 ? 1 : 97)) {
		struct context_budget b;
		assert_int_equal(context_budget_for(t, &b, NULL), BRG_OK);
		long sum = (long)b.system + b.trajectory + b.handoff + b.user_query + b.generation;
		if (sum != t || b.generation < (t + 3) / 4 || b.system < 32 || b.trajectory < 48 ||
		    b.handoff < 32 || b.user_query < 32)
			fail_msg("%d: %d/%d/%d/%d/%d", t, b.system, b.trajectory, b.handoff,
			         b.user_query, b.generation);
		/* More context never means less room for the answer or the query. */
		assert_true(b.generation >= prev.generation);
		assert_true(b.user_query >= prev.user_query);
		prev = b;
	}
}

static void test_utilization_is_a_clamped_share(void **state)
{
	(void)state;
	struct context_budget b = {.total = 8192};
	assert_true(context_utilization(&b, 4096) == 0.5);
	assert_true(context_utilization(&b, 8192) == 1.0);
	assert_true(context_utilization(&b, 9000) == 1.0);
	assert_true(context_utilization(&b, 0) == 0.0);
	assert_true(context_utilization(&b, -3) == 0.0);
	assert_true(context_utilization(NULL, 10) == 0.0);
	struct context_budget zero = {0};
	assert_true(context_utilization(&zero, 10) == 0.0);
}

/* ---- fit to budget ---------------------------------------------------------------- */

/* A counter that counts words, and a compressor that plays a script. */
struct script {
	const char *outputs[4]; /* NULL: fail with 'failure' */
	const char *failure;
	int calls;
	int targets[4];
	double ratios[4];
	const char *inputs[4];
	int fail_count_at; /* the call of count() that fails; 0: none */
	int counts;
};

static int count_words(void *ud, const char *text)
{
	struct script *s = ud;
	if (s && ++s->counts == s->fail_count_at)
		return -1;
	int n = 0;
	for (const char *p = text; *p; p++)
		n += *p != ' ' && (p == text || p[-1] == ' ');
	return n;
}

static char *scripted(void *ud, const char *text, int target_tokens, double ratio,
                      struct brg_error *err)
{
	struct script *s = ud;
	int i = s->calls++;
	assert_true(i < 4);
	s->targets[i] = target_tokens;
	s->ratios[i] = ratio;
	s->inputs[i] = strdup(text); /* freed by free_script() */
	if (!s->outputs[i]) {
		if (s->failure)
			brg_fail(err, BRG_E_UPSTREAM, "%s", s->failure);
		return NULL;
	}
	return strdup(s->outputs[i]);
}

static void free_script(struct script *s)
{
	for (int i = 0; i < 4; i++)
		free((char *)s->inputs[i]);
}

#define TEN   "a b c d e f g h i j"
#define EIGHT "a b c d e f g h"
#define FIVE  "a b c d e"
#define FOUR  "a b c d"

static void test_fit_returns_text_that_fits_unchanged(void **state)
{
	(void)state;
	struct script s = {0};
	struct fit_result r;
	assert_int_equal(context_fit(FIVE, 5, count_words, scripted, &s, &r, NULL), BRG_OK);
	assert_string_equal(r.text, FIVE);
	assert_int_equal(r.tokens, 5);
	assert_int_equal(r.iterations, 0);
	assert_false(r.compressed);
	assert_int_equal(s.calls, 0);
	fit_result_fini(&r);
	assert_null(r.text);
	fit_result_fini(NULL);
}

static void test_fit_compresses_once_with_the_spec_ratio(void **state)
{
	(void)state;
	struct script s = {.outputs = {FOUR}};
	struct fit_result r;
	assert_int_equal(context_fit(TEN, 5, count_words, scripted, &s, &r, NULL), BRG_OK);
	assert_string_equal(r.text, FOUR);
	assert_int_equal(r.tokens, 4);
	assert_int_equal(r.iterations, 1);
	assert_true(r.compressed);
	/* ratio = (target / current) * 0.9; target tokens = 90% of the budget. */
	assert_int_equal(s.targets[0], 4);
	assert_true(s.ratios[0] > 0.45 - 1e-12 && s.ratios[0] < 0.45 + 1e-12);
	assert_string_equal(s.inputs[0], TEN);
	fit_result_fini(&r);
	free_script(&s);
}

static void test_fit_compresses_twice_and_three_times(void **state)
{
	(void)state;
	struct script two = {.outputs = {EIGHT, FIVE}};
	struct fit_result r;
	assert_int_equal(context_fit(TEN, 5, count_words, scripted, &two, &r, NULL), BRG_OK);
	assert_string_equal(r.text, FIVE);
	assert_int_equal(r.iterations, 2);
	/* The second call works on the first result, with the ratio for it. */
	assert_string_equal(two.inputs[1], EIGHT);
	assert_true(two.ratios[1] > 5.0 / 8 * 0.9 - 1e-12 && two.ratios[1] < 5.0 / 8 * 0.9 + 1e-12);
	fit_result_fini(&r);
	free_script(&two);

	struct script three = {.outputs = {"a b c d e f g h i", EIGHT, FOUR}};
	assert_int_equal(context_fit(TEN, 5, count_words, scripted, &three, &r, NULL), BRG_OK);
	assert_string_equal(r.text, FOUR);
	assert_int_equal(r.iterations, 3);
	assert_true(r.compressed);
	fit_result_fini(&r);
	free_script(&three);
}

static void test_fit_fails_after_three_compressions(void **state)
{
	(void)state;
	struct script s = {.outputs = {"a b c d e f g h i", EIGHT, "a b c d e f g"}};
	struct fit_result r;
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(context_fit(TEN, 5, count_words, scripted, &s, &r, &err),
	                 BRG_E_COMPRESSION);
	assert_int_equal(err.code, BRG_E_COMPRESSION);
	assert_int_equal(s.calls, CONTEXT_FIT_MAX_ITERATIONS);
	assert_int_equal(detail_int(&err, "current_tokens"), 7);
	assert_int_equal(detail_int(&err, "budget"), 5);
	assert_int_equal(detail_int(&err, "iterations"), 3);
	assert_int_equal(detail_int(&err, "compression_attempted"), 1);
	assert_null(find_detail(&err, "last_failure")); /* every result was shorter */
	assert_non_null(strstr(err.message, "after 3 iterations"));
	assert_null(r.text);
	free_script(&s);
}

static void test_fit_discards_longer_empty_and_failed_results(void **state)
{
	(void)state;
	/* Longer, then blank, then a failure: the input is retried each time. */
	struct script s = {.outputs = {"a b c d e f g h i j k l", "  \n ", NULL},
	                   .failure = "fast model unavailable"};
	struct fit_result r;
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(context_fit(TEN, 5, count_words, scripted, &s, &r, &err),
	                 BRG_E_COMPRESSION);
	assert_string_equal(s.inputs[1], TEN);
	assert_string_equal(s.inputs[2], TEN);
	assert_int_equal(detail_int(&err, "current_tokens"), 10);
	assert_string_equal(detail_str(&err, "last_failure"), "fast model unavailable");
	/* The compressor's own error code does not leak into ours. */
	assert_int_equal(err.code, BRG_E_COMPRESSION);
	free_script(&s);

	/* A result that is not shorter is discarded too; a later one fits. */
	struct script equal = {.outputs = {TEN, "", FOUR}};
	assert_int_equal(context_fit(TEN, 5, count_words, scripted, &equal, &r, NULL), BRG_OK);
	assert_string_equal(r.text, FOUR);
	assert_int_equal(r.iterations, 3);
	fit_result_fini(&r);
	free_script(&equal);

	struct script longer = {
	    .outputs = {"a b c d e f g h i j k", "a b c d e f g h i j k", "a b c d e f g h i j k"}};
	brg_error_clear(&err);
	assert_int_equal(context_fit(TEN, 5, count_words, scripted, &longer, &r, &err),
	                 BRG_E_COMPRESSION);
	assert_string_equal(detail_str(&err, "last_failure"),
	                    "the compressor returned 11 tokens for 10");
	free_script(&longer);
}

static void test_fit_fails_when_tokens_cannot_be_counted(void **state)
{
	(void)state;
	struct script s = {.fail_count_at = 1};
	struct fit_result r;
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(context_fit(TEN, 5, count_words, scripted, &s, &r, &err),
	                 BRG_E_CONTEXT_BUDGET);
	assert_int_equal(detail_int(&err, "budget"), 5);
	assert_int_equal(s.calls, 0);

	/* Counting the compressed text fails. */
	struct script later = {.outputs = {FOUR}, .fail_count_at = 2};
	brg_error_clear(&err);
	assert_int_equal(context_fit(TEN, 5, count_words, scripted, &later, &r, &err),
	                 BRG_E_CONTEXT_BUDGET);
	assert_null(r.text);
	free_script(&later);
}

static void test_fit_without_a_way_to_compress_is_a_budget_error(void **state)
{
	(void)state;
	struct fit_result r;
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(context_fit(TEN, 5, count_words, NULL, NULL, &r, &err),
	                 BRG_E_CONTEXT_BUDGET);
	assert_int_equal(detail_int(&err, "current_tokens"), 10);
	assert_int_equal(detail_int(&err, "budget"), 5);
	assert_int_equal(detail_int(&err, "compression_attempted"), 0);
	assert_non_null(strstr(err.message, "10/5"));

	struct script s = {.outputs = {""}};
	assert_int_equal(context_fit(TEN, 0, count_words, scripted, &s, &r, NULL),
	                 BRG_E_CONTEXT_BUDGET);
	assert_int_equal(s.calls, 0);
	assert_int_equal(context_fit("", 0, count_words, scripted, &s, &r, NULL), BRG_OK);
	fit_result_fini(&r);

	assert_int_equal(context_fit(NULL, 5, count_words, NULL, NULL, &r, NULL),
	                 BRG_E_BAD_REQUEST);
	assert_int_equal(context_fit(TEN, 5, NULL, NULL, NULL, &r, NULL), BRG_E_BAD_REQUEST);
	assert_int_equal(context_fit(TEN, 5, count_words, NULL, NULL, NULL, NULL),
	                 BRG_E_BAD_REQUEST);
}

static void test_fit_output_is_valid_utf8(void **state)
{
	(void)state;
	struct fit_result r;
	assert_int_equal(context_fit("caf\xC3 ok", 5, count_words, NULL, NULL, &r, NULL), BRG_OK);
	assert_string_equal(r.text, "caf\xEF\xBF\xBD ok");
	fit_result_fini(&r);
	struct script s = {.outputs = {"bad\xFF"}};
	assert_int_equal(context_fit(TEN, 5, count_words, scripted, &s, &r, NULL), BRG_OK);
	assert_string_equal(r.text, "bad\xEF\xBF\xBD");
	fit_result_fini(&r);
	free_script(&s);
}

/* ---- compression prompt and estimate --------------------------------------------- */

static void test_compression_prompt_follows_the_spec_table(void **state)
{
	(void)state;
	const char *sys = context_compression_system();
	static const char *const kept[] = {"decisions made", "constraints discovered",
	                                   "open questions", "key evidence references",
	                                   "error summaries"};
	static const char *const dropped[] = {"raw reasoning chains", "verbose explanations",
	                                      "stack traces", "intermediate outputs",
	                                      "errors that were resolved"};
	for (size_t i = 0; i < N_OF(kept); i++)
		assert_non_null(strstr(sys, kept[i]));
	for (size_t i = 0; i < N_OF(dropped); i++)
		assert_non_null(strstr(sys, dropped[i]));
	assert_ptr_equal(sys, context_compression_system());

	char *p = context_compression_prompt("notes\xFF", 120);
	assert_string_equal(p, "Compress these notes to at most 120 tokens (about 90 words).\n\n"
	                       "<context>\nnotes\xEF\xBF\xBD\n</context>");
	free(p);
	p = context_compression_prompt("x", 1);
	assert_non_null(strstr(p, "at most 1 tokens (about 1 words)"));
	free(p);
	assert_null(context_compression_prompt(NULL, 10));
	assert_null(context_compression_prompt("x", 0));
}

static void test_estimate_follows_its_documented_rule(void **state)
{
	(void)state;
	assert_int_equal(context_estimate_tokens(NULL), 0);
	assert_int_equal(context_estimate_tokens(""), 0);
	assert_int_equal(context_estimate_tokens("   "), 0);
	assert_int_equal(context_estimate_tokens("a"), 1);
	assert_int_equal(context_estimate_tokens("abc"), 1);
	assert_int_equal(context_estimate_tokens("abcd"), 2);
	assert_int_equal(context_estimate_tokens("hello world"), 4);
	assert_int_equal(context_estimate_tokens("12345"), 6);
	assert_int_equal(context_estimate_tokens("a,b\n"), 4);
	assert_int_equal(context_estimate_tokens("\xC3\xA9t\xC3\xA9"), 5); /* été */
	assert_int_equal(context_estimate_count(NULL, "abc abc"), 2);
}

static void test_estimate_does_not_undercount_a_llama_tokenizer(void **state)
{
	(void)state;
	/* Token counts measured with the Llama-2 vocabulary (llama.cpp,
	 * llama-2-tiny-random.gguf, no BOS). */
	static const struct {
		const char *text;
		int tokens;
	} cases[] = {
	    {"Once upon a time, there was a little girl named Lily.", 14},
	    {"The quick brown fox jumps over the lazy dog.", 12},
	};
	for (size_t i = 0; i < N_OF(cases); i++)
		assert_true(context_estimate_tokens(cases[i].text) >= cases[i].tokens);
}

/* ---- handoff state ------------------------------------------------------------------ */

static void test_handoff_init_fills_the_spec_fields(void **state)
{
	(void)state;
	struct handoff h;
	init_state(&h, "Write a haiku", 3);
	assert_string_equal(h.request_id, "req-1");
	assert_string_equal(h.goal, "Write a haiku");
	assert_int_equal(h.current_step, 1);
	assert_int_equal(h.total_steps, 3);
	assert_int_equal(h.decisions_made.n, 0);
	assert_null(h.compressed_context);
	handoff_fini(&h);
	handoff_fini(&h); /* harmless twice */
	handoff_fini(NULL);
}

static void expect_init_invalid(const char *id, const char *goal, int steps, const char *field)
{
	struct handoff h;
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(handoff_init(&h, id, goal, steps, &err), BRG_E_HANDOFF_INVALID);
	assert_string_equal(detail_str(&err, "field"), field);
	assert_null(h.goal);
	handoff_fini(&h);
}

static void test_handoff_init_rejects_missing_fields(void **state)
{
	(void)state;
	char long_id[HANDOFF_REQUEST_ID_MAX + 1];
	memset(long_id, 'x', HANDOFF_REQUEST_ID_MAX);
	long_id[HANDOFF_REQUEST_ID_MAX] = '\0';
	expect_init_invalid(NULL, "g", 1, "request_id");
	expect_init_invalid("", "g", 1, "request_id");
	expect_init_invalid(long_id, "g", 1, "request_id");
	expect_init_invalid("r", NULL, 1, "goal");
	expect_init_invalid("r", " \n\t", 1, "goal");
	expect_init_invalid("r", "g", 0, "total_steps");
	expect_init_invalid("r", "g", HANDOFF_MAX_STEPS + 1, "total_steps");
	long_id[HANDOFF_REQUEST_ID_MAX - 1] = '\0'; /* 63 bytes fit */
	struct handoff h;
	assert_int_equal(handoff_init(&h, long_id, "g", HANDOFF_MAX_STEPS, NULL), BRG_OK);
	handoff_fini(&h);
	assert_int_equal(handoff_init(NULL, "r", "g", 1, NULL), BRG_E_BAD_REQUEST);
}

static void test_handoff_add_copies_skips_duplicates_and_blanks(void **state)
{
	(void)state;
	struct strlist l = {0};
	char text[] = "use PostgreSQL";
	add(&l, text);
	text[0] = 'U'; /* a copy was kept */
	add(&l, "use PostgreSQL");
	add(&l, "");
	add(&l, " \n ");
	add(&l, "bad \xC0 byte");
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[0], "use PostgreSQL");
	assert_string_equal(l.items[1], "bad \xEF\xBF\xBD byte");
	assert_int_equal(handoff_add(NULL, "x", NULL), BRG_E_BAD_REQUEST);
	assert_int_equal(handoff_add(&l, NULL, NULL), BRG_E_BAD_REQUEST);
	struct handoff h = {.constraints = l};
	handoff_fini(&h);
}

static void test_handoff_add_caps_items_and_length(void **state)
{
	(void)state;
	struct strlist l = {0};
	char item[32];
	for (int i = 0; i < HANDOFF_MAX_ITEMS; i++) {
		snprintf(item, sizeof item, "fact %d", i);
		add(&l, item);
	}
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(handoff_add(&l, "one too many", &err), BRG_E_CONTEXT_BUDGET);
	assert_int_equal(detail_int(&err, "max_items"), HANDOFF_MAX_ITEMS);
	assert_int_equal(l.n, HANDOFF_MAX_ITEMS);
	assert_int_equal(handoff_add(&l, "fact 3", NULL), BRG_OK); /* a duplicate is no error */

	/* 2044 ASCII bytes and two 3-byte characters: cut inside the first
	 * character, so the cut moves back to its start. */
	char *big = malloc(HANDOFF_ITEM_MAX + 16);
	memset(big, 'a', 2044);
	strcpy(big + 2044, "\xE2\x82\xAC\xE2\x82\xAC");
	struct strlist m = {0};
	add(&m, big);
	assert_int_equal(strlen(m.items[0]), 2044 + 3);
	assert_string_equal(m.items[0] + 2044, "\xE2\x80\xA6");
	assert_utf8(m.items[0]);
	/* Exactly HANDOFF_ITEM_MAX bytes are kept whole. */
	memset(big, 'b', HANDOFF_ITEM_MAX);
	big[HANDOFF_ITEM_MAX] = '\0';
	add(&m, big);
	assert_int_equal(strlen(m.items[1]), HANDOFF_ITEM_MAX);
	assert_int_equal(memcmp(m.items[1], big, HANDOFF_ITEM_MAX), 0);
	free(big);
	struct handoff h = {.decisions_made = l, .evidence_refs = m};
	handoff_fini(&h);
}

static void expect_invalid(const struct handoff *h, const char *field)
{
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(handoff_validate(h, &err), BRG_E_HANDOFF_INVALID);
	assert_string_equal(detail_str(&err, "field"), field);
	assert_string_equal(brg_err_code(err.code), "HANDOFF_STATE_INVALID");
}

static void test_handoff_validate_names_the_bad_field(void **state)
{
	(void)state;
	struct handoff h;
	init_state(&h, "goal", 3);
	assert_int_equal(handoff_validate(&h, NULL), BRG_OK);

	h.current_step = 4;
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(handoff_validate(&h, &err), BRG_E_HANDOFF_INVALID);
	assert_string_equal(detail_str(&err, "field"), "current_step");
	assert_int_equal(detail_int(&err, "current_step"), 4);
	assert_int_equal(detail_int(&err, "total_steps"), 3);
	h.current_step = 0;
	expect_invalid(&h, "current_step");
	h.current_step = 1;

	h.total_steps = 0;
	expect_invalid(&h, "total_steps");
	h.total_steps = 3;

	char *goal = h.goal;
	h.goal = NULL;
	expect_invalid(&h, "goal");
	h.goal = "   ";
	expect_invalid(&h, "goal");
	h.goal = "bad \xFF";
	expect_invalid(&h, "goal");
	h.goal = goal;

	h.request_id[0] = '\0';
	expect_invalid(&h, "request_id");
	strcpy(h.request_id, "req-1");

	add(&h.active_errors, "e1");
	char *saved = h.active_errors.items[0];
	h.active_errors.items[0] = NULL;
	brg_error_clear(&err);
	assert_int_equal(handoff_validate(&h, &err), BRG_E_HANDOFF_INVALID);
	assert_string_equal(detail_str(&err, "field"), "active_errors");
	assert_int_equal(detail_int(&err, "index"), 0);
	h.active_errors.items[0] = saved;
	h.evidence_refs.n = 1; /* no array */
	expect_invalid(&h, "evidence_refs");
	h.evidence_refs.n = 0;

	h.compressed_context = "\xC3";
	expect_invalid(&h, "compressed_context");
	h.compressed_context = NULL;
	assert_int_equal(handoff_validate(&h, NULL), BRG_OK);
	expect_invalid(NULL, "handoff");
	handoff_fini(&h);
}

static void test_handoff_set_context_copies_and_clears(void **state)
{
	(void)state;
	struct handoff h;
	init_state(&h, "g", 1);
	assert_int_equal(handoff_set_context(&h, "line 1\nline 2", NULL), BRG_OK);
	assert_string_equal(h.compressed_context, "line 1\nline 2");
	assert_int_equal(handoff_set_context(&h, NULL, NULL), BRG_OK);
	assert_null(h.compressed_context);
	assert_int_equal(handoff_set_context(NULL, "x", NULL), BRG_E_BAD_REQUEST);
	handoff_fini(&h);
}

/* ---- JSON -------------------------------------------------------------------------- */

static void fill_example(struct handoff *h)
{
	init_state(h, "Design a cache \xE2\x80\x94 \"fast\"", 3);
	h->current_step = 2;
	add(&h->constraints, "memory < 1 GiB");
	add(&h->decisions_made, "use Redis");
	add(&h->decisions_made, "TTL 15 min");
	add(&h->evidence_refs, "docs/cache.md#ttl");
	add(&h->active_errors, "step 1: error_marker_detected: marker");
	add(&h->resolved_errors, "old error");
	assert_int_equal(handoff_set_context(h, "- open: eviction?\n", NULL), BRG_OK);
}

static const char example_json[] =
    "{\"request_id\":\"req-1\",\"goal\":\"Design a cache \xE2\x80\x94 \\\"fast\\\"\","
    "\"current_step\":2,\"total_steps\":3,\"constraints\":[\"memory < 1 GiB\"],"
    "\"decisions_made\":[\"use Redis\",\"TTL 15 min\"],"
    "\"evidence_refs\":[\"docs/cache.md#ttl\"],"
    "\"active_errors\":[\"step 1: error_marker_detected: marker\"],"
    "\"resolved_errors\":[\"old error\"],\"compressed_context\":\"- open: eviction?\\n\"}";

static void test_handoff_json_round_trip(void **state)
{
	(void)state;
	struct handoff h, back;
	fill_example(&h);
	char *json = NULL;
	assert_int_equal(handoff_to_json(&h, &json, NULL), BRG_OK);
	assert_string_equal(json, example_json);

	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(handoff_from_json(json, strlen(json), &back, &err), BRG_OK);
	assert_string_equal(back.goal, h.goal);
	assert_int_equal(back.current_step, 2);
	assert_int_equal(back.decisions_made.n, 2);
	assert_string_equal(back.decisions_made.items[1], "TTL 15 min");
	assert_string_equal(back.compressed_context, h.compressed_context);
	char *again = NULL;
	assert_int_equal(handoff_to_json(&back, &again, NULL), BRG_OK);
	assert_string_equal(again, json);
	free(json);
	free(again);
	handoff_fini(&back);
	handoff_fini(&h);

	/* The lists and the context may be left out. */
	const char *minimal = "{\"request_id\":\"r\",\"goal\":\"g\",\"current_step\":1,"
	                      "\"total_steps\":1,\"compressed_context\":null,\"extra\":[1]}";
	assert_int_equal(handoff_from_json(minimal, strlen(minimal), &back, NULL), BRG_OK);
	assert_int_equal(back.constraints.n, 0);
	assert_null(back.compressed_context);
	handoff_fini(&back);
}

static void expect_json_invalid(const char *json, const char *field)
{
	struct handoff h;
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(handoff_from_json(json, strlen(json), &h, &err), BRG_E_HANDOFF_INVALID);
	assert_string_equal(detail_str(&err, "field"), field);
	assert_null(h.goal);
	assert_int_equal(h.decisions_made.n, 0);
}

static void test_handoff_from_json_rejects_bad_state(void **state)
{
	(void)state;
	expect_json_invalid("not json", "handoff");
	expect_json_invalid("[1,2]", "handoff");
	expect_json_invalid("{\"request_id\":\"r\",\"goal\":\"g\",\"total_steps\":1}",
	                    "current_step");
	expect_json_invalid("{\"request_id\":\"r\",\"goal\":\"g\",\"current_step\":\"1\","
	                    "\"total_steps\":1}",
	                    "current_step");
	expect_json_invalid("{\"request_id\":\"r\",\"current_step\":1,\"total_steps\":1}", "goal");
	expect_json_invalid("{\"goal\":\"g\",\"current_step\":1,\"total_steps\":1}", "request_id");
	expect_json_invalid("{\"request_id\":\"r\",\"goal\":\"g\",\"current_step\":5,"
	                    "\"total_steps\":2}",
	                    "current_step");
	expect_json_invalid("{\"request_id\":\"r\",\"goal\":\"g\",\"current_step\":1,"
	                    "\"total_steps\":99999999999}",
	                    "total_steps");
	expect_json_invalid("{\"request_id\":\"r\",\"goal\":\"g\",\"current_step\":1,"
	                    "\"total_steps\":1,\"constraints\":\"x\"}",
	                    "constraints");
	expect_json_invalid("{\"request_id\":\"r\",\"goal\":\"g\",\"current_step\":1,"
	                    "\"total_steps\":1,\"evidence_refs\":[1]}",
	                    "evidence_refs");
	expect_json_invalid("{\"request_id\":\"r\",\"goal\":\"g\",\"current_step\":1,"
	                    "\"total_steps\":1,\"compressed_context\":7}",
	                    "compressed_context");
	expect_json_invalid("{\"request_id\":\"r\",\"request_id\":\"s\",\"goal\":\"g\","
	                    "\"current_step\":1,\"total_steps\":1}",
	                    "handoff");

	char big[64 + 70 * 8] = "{\"request_id\":\"r\",\"goal\":\"g\",\"current_step\":1,"
	                        "\"total_steps\":1,\"constraints\":[";
	for (int i = 0; i < HANDOFF_MAX_ITEMS + 1; i++)
		snprintf(big + strlen(big), sizeof big - strlen(big), "%s\"c%d\"", i ? "," : "", i);
	strcat(big, "]}");
	expect_json_invalid(big, "constraints");

	struct handoff h;
	assert_int_equal(handoff_from_json(NULL, 0, &h, NULL), BRG_E_BAD_REQUEST);
	assert_int_equal(handoff_from_json("{}", 2, NULL, NULL), BRG_E_BAD_REQUEST);
}

static void test_handoff_to_json_refuses_invalid_state(void **state)
{
	(void)state;
	struct handoff h;
	init_state(&h, "g", 2);
	h.current_step = 3;
	char *json = (char *)"sentinel";
	assert_int_equal(handoff_to_json(&h, &json, NULL), BRG_E_HANDOFF_INVALID);
	assert_null(json);
	assert_int_equal(handoff_to_json(&h, NULL, NULL), BRG_E_BAD_REQUEST);
	handoff_fini(&h);
}

/* ---- prompt blocks ------------------------------------------------------------------ */

static void test_trajectory_renders_the_spec_block(void **state)
{
	(void)state;
	struct handoff h;
	init_state(&h, "Write a sorting function in C", 3);
	h.current_step = 2;
	add(&h.decisions_made, "use merge sort");
	add(&h.decisions_made, "stable order");
	add(&h.decisions_made, "no recursion");
	add(&h.decisions_made, "size_t indices");
	char *t = trajectory_render(&h, "refine", "whether the draft handles empty input",
	                            "changing the signature");
	assert_string_equal(t, "## Current Position\n"
	                       "- Goal: Write a sorting function in C\n"
	                       "- Step: 2/3 - refine\n"
	                       "- Previous: stable order; no recursion; size_t indices\n"
	                       "- Next: whether the draft handles empty input\n"
	                       "- Forbidden: changing the signature\n");
	free(t);
	handoff_fini(&h);
}

static void test_trajectory_fills_gaps_with_none(void **state)
{
	(void)state;
	struct handoff h;
	init_state(&h, "g", 1);
	char *t = trajectory_render(&h, NULL, "", " \n");
	assert_string_equal(t, "## Current Position\n- Goal: g\n- Step: 1/1\n- Previous: none\n"
	                       "- Next: none\n- Forbidden: none\n");
	free(t);
	/* Only a line separator: folds to nothing. */
	t = trajectory_render(&h, "\xE2\x80\xA8", NULL, NULL);
	assert_non_null(strstr(t, "- Step: 1/1\n"));
	free(t);
	assert_null(trajectory_render(NULL, "s", "n", "f"));
	handoff_fini(&h);
}

static void test_trajectory_folds_lines_so_the_block_keeps_its_shape(void **state)
{
	(void)state;
	struct handoff h;
	init_state(&h, "line one\n## Current Position\r\n- Step: 9/9\tand\x01more", 2);
	add(&h.decisions_made, "a\n\nb");
	char *t = trajectory_render(&h, "draft\n", "next\xC2\x85step", "bad \xFF byte\xE2\x80\xA9");
	assert_string_equal(t, "## Current Position\n"
	                       "- Goal: line one ## Current Position - Step: 9/9 and more\n"
	                       "- Step: 1/2 - draft\n"
	                       "- Previous: a b\n"
	                       "- Next: next step\n"
	                       "- Forbidden: bad \xEF\xBF\xBD byte\n");
	free(t);
	handoff_fini(&h);
}

static void test_trajectory_cuts_long_fields(void **state)
{
	(void)state;
	char goal[2000];
	memset(goal, 'x', sizeof goal - 1);
	goal[sizeof goal - 1] = '\0';
	struct handoff h;
	init_state(&h, goal, 1);
	char *t = trajectory_render(&h, NULL, NULL, NULL);
	assert_utf8(t);
	const char *g = strstr(t, "- Goal: ") + 8;
	const char *end = strchr(g, '\n');
	assert_int_equal(end - g, TRAJECTORY_FIELD_MAX);
	assert_memory_equal(end - 3, "\xE2\x80\xA6", 3);
	free(t);
	handoff_fini(&h);
}

static void test_handoff_render_keeps_conclusions_only(void **state)
{
	(void)state;
	struct handoff h;
	fill_example(&h);
	add(&h.decisions_made, "multi\nline\n### Fake heading");
	char *r = handoff_render(&h);
	assert_string_equal(r, "## Handoff\n"
	                       "### Decisions\n- use Redis\n- TTL 15 min\n"
	                       "- multi line ### Fake heading\n"
	                       "### Constraints\n- memory < 1 GiB\n"
	                       "### Evidence\n- docs/cache.md#ttl\n"
	                       "### Open errors\n- step 1: error_marker_detected: marker\n"
	                       "### Context\n- open: eviction?\n");
	assert_null(strstr(r, "old error")); /* resolved errors are dropped */
	free(r);
	handoff_fini(&h);

	init_state(&h, "g", 1);
	add(&h.resolved_errors, "fixed");
	r = handoff_render(&h);
	assert_string_equal(r, "");
	free(r);
	assert_int_equal(handoff_set_context(&h, "no newline", NULL), BRG_OK);
	r = handoff_render(&h);
	assert_string_equal(r, "## Handoff\n### Context\nno newline\n");
	free(r);
	assert_null(handoff_render(NULL));
	handoff_fini(&h);
}

/* ---- contamination ---------------------------------------------------------------- */

static struct contamination_report check(const struct handoff *h, const char *output)
{
	struct contamination_report r;
	memset(&r, 0x55, sizeof r);
	contamination_check(h, output, &r);
	for (size_t i = 0; i < r.n; i++)
		assert_utf8(r.issues[i].detail);
	return r;
}

static void expect_marker(const char *output, const char *marker)
{
	struct contamination_report r = check(NULL, output);
	if (r.n != 1 || strcmp(r.issues[0].type, "error_marker_detected") != 0)
		fail_msg("\"%s\": %zu issues", output, r.n);
	char want[128];
	snprintf(want, sizeof want, "marker \"%s\"", marker);
	if (strncmp(r.issues[0].detail, want, strlen(want)) != 0)
		fail_msg("\"%s\": detail %s", output, r.issues[0].detail);
	assert_int_equal(r.issues[0].severity, CONTAM_WARNING);
	assert_int_equal(r.worst, CONTAM_WARNING);
	assert_true(r.is_valid);
	assert_string_equal(r.recommendation, "proceed");
}

static void test_each_error_marker_is_a_warning(void **state)
{
	(void)state;
	expect_marker("I apologize for the confusion.", "I apologize");
	expect_marker("Sorry, I made an error above.", "I made an error");
	expect_marker("That's incorrect: the sum is 5.", "That's incorrect");
	expect_marker("This looks like a hallucination.", "hallucination");
	expect_marker("I don't have information about that library.",
	              "I don't have information about");
	expect_marker("I apologise.", "I apologise");
	expect_marker("I made a mistake in step 2.", "I made a mistake");
	expect_marker("That is incorrect.", "That is incorrect");
	expect_marker("I do not have information about it.", "I do not have information about");
	/* Case, curly apostrophes, line breaks and plurals. */
	expect_marker("i APOLOGIZE", "I apologize");
	expect_marker("That\xE2\x80\x99s incorrect", "That's incorrect");
	expect_marker("I don\xE2\x80\x99t have\tinformation   about it",
	              "I don't have information about");
	expect_marker("several hallucinations", "hallucination");
	struct contamination_report r = check(NULL, "First I\napologize.");
	assert_int_equal(r.n, 0); /* a line break between the words is a clause break */
	r = check(NULL, "AI apologizes? hi apologize. That's correct. delusional");
	assert_int_equal(r.n, 0);
	/* The detail quotes the output. */
	r = check(NULL, "well, I   Apologize!");
	assert_string_equal(r.issues[0].detail, "marker \"I apologize\": \"I Apologize\"");
}

static void test_clean_output_proceeds(void **state)
{
	(void)state;
	struct handoff h;
	init_state(&h, "g", 3);
	add(&h.decisions_made, "use PostgreSQL");
	struct contamination_report r = check(&h, "We use PostgreSQL with a pool of 20.");
	assert_int_equal(r.n, 0);
	assert_int_equal(r.n_omitted, 0);
	assert_int_equal(r.worst, CONTAM_NONE);
	assert_true(r.is_valid);
	assert_string_equal(r.recommendation, "proceed");
	r = check(&h, NULL);
	assert_int_equal(r.n, 0);
	contamination_check(&h, "x", NULL); /* ignored */
	handoff_fini(&h);
}

static void expect_contradiction(const char *decision, const char *output, const char *excerpt)
{
	struct handoff h;
	init_state(&h, "g", 3);
	add(&h.decisions_made, decision);
	struct contamination_report r = check(&h, output);
	if (r.n != 1 || strcmp(r.issues[0].type, "contradiction_detected") != 0)
		fail_msg("\"%s\" vs \"%s\": %zu issues", decision, output, r.n);
	char want[256];
	snprintf(want, sizeof want, "output negates decision \"%s\": \"%s\"", decision, excerpt);
	assert_string_equal(r.issues[0].detail, want);
	assert_int_equal(r.issues[0].severity, CONTAM_HIGH);
	assert_int_equal(r.worst, CONTAM_HIGH);
	assert_false(r.is_valid);
	assert_string_equal(r.recommendation, "quarantine");
	handoff_fini(&h);
}

static void expect_no_contradiction(const char *decision, const char *output)
{
	struct handoff h;
	init_state(&h, "g", 3);
	add(&h.decisions_made, decision);
	struct contamination_report r = check(&h, output);
	if (r.n != 0)
		fail_msg("\"%s\" vs \"%s\": %s", decision, output, r.issues[0].detail);
	handoff_fini(&h);
}

static void test_negated_decisions_are_contradictions(void **state)
{
	(void)state;
	expect_contradiction("use PostgreSQL", "We should not use PostgreSQL here.",
	                     "not use PostgreSQL");
	expect_contradiction("use PostgreSQL", "Let's go with MySQL instead of PostgreSQL.",
	                     "instead of PostgreSQL");
	expect_contradiction("Use PostgreSQL", "I'd pick SQLite rather than postgresql",
	                     "rather than postgresql");
	expect_contradiction("use PostgreSQL", "It works fine without PostgreSQL.",
	                     "without PostgreSQL");
	expect_contradiction("use PostgreSQL", "We won\xE2\x80\x99t \t use PostgreSQL",
	                     "won\xE2\x80\x99t use PostgreSQL");
	expect_contradiction("use PostgreSQL", "Never use PostgreSQL for this.",
	                     "Never use PostgreSQL");
	expect_contradiction("We decided to use PostgreSQL for sessions", "dont use PostgreSQL",
	                     "dont use PostgreSQL");
	expect_contradiction("cache results for 15 minutes", "Do not cache results at all.",
	                     "not cache results");
	expect_contradiction("PostgreSQL 16.2", "avoid PostgreSQL 16.2 please",
	                     "avoid PostgreSQL 16.2");
	expect_contradiction("use Redis", "neither Memcached nor Redis", "nor Redis");
}

static void test_mentions_that_do_not_negate_are_not_contradictions(void **state)
{
	(void)state;
	expect_no_contradiction("use PostgreSQL", "Use PostgreSQL, not MySQL.");
	expect_no_contradiction("use PostgreSQL", "No problem, PostgreSQL works.");
	expect_no_contradiction("use PostgreSQL", "not only PostgreSQL but also Redis");
	expect_no_contradiction("use PostgreSQL", "We use MySQL instead.");
	expect_no_contradiction("use PostgreSQL", "I would not recommend anything other than "
	                                          "PostgreSQL.");
	expect_no_contradiction("use PostgreSQL", "not. PostgreSQL is fine");
	expect_no_contradiction("use PostgreSQL", "PostgreSQLite is not PostgreSQL's cousin");
	/* Documented limits: negation after the phrase, or too far before it. */
	expect_no_contradiction("use PostgreSQL", "PostgreSQL is not a good fit.");
	expect_no_contradiction("use PostgreSQL", "not going to be needing PostgreSQL");
	/* Negative decisions, and keys too short to match, are not checked. */
	expect_no_contradiction("do not use MongoDB", "Don't avoid MongoDB");
	expect_no_contradiction("use C", "not C");
	expect_no_contradiction("", "not anything");
}

static void test_error_accumulation_is_high(void **state)
{
	(void)state;
	struct handoff h;
	init_state(&h, "g", 3);
	h.current_step = 2;
	add(&h.active_errors, "e1");
	add(&h.active_errors, "e2");
	struct contamination_report r = check(&h, "fine");
	assert_int_equal(r.n, 0); /* 2 errors at step 2: not growing faster than the steps */
	add(&h.active_errors, "e3");
	r = check(&h, "fine");
	assert_int_equal(r.n, 1);
	assert_string_equal(r.issues[0].type, "error_accumulation");
	assert_string_equal(r.issues[0].detail, "3 active errors at step 2 of 3");
	assert_int_equal(r.worst, CONTAM_HIGH);
	assert_string_equal(r.recommendation, "quarantine");
	handoff_fini(&h);
}

static void test_critical_contamination_aborts(void **state)
{
	(void)state;
	struct handoff h;
	init_state(&h, "g", 3);
	add(&h.decisions_made, "use PostgreSQL");
	add(&h.active_errors, "e1");
	add(&h.active_errors, "e2");
	struct contamination_report r = check(&h, "I apologize, we must not use PostgreSQL.");
	assert_int_equal(r.n, 3);
	/* Most severe first. */
	assert_string_equal(r.issues[0].type, "error_accumulation");
	assert_int_equal(r.issues[0].severity, CONTAM_CRITICAL);
	assert_string_equal(r.issues[1].type, "contradiction_detected");
	assert_int_equal(r.issues[1].severity, CONTAM_CRITICAL);
	assert_string_equal(r.issues[2].type, "error_marker_detected");
	assert_int_equal(r.issues[2].severity, CONTAM_WARNING);
	assert_int_equal(r.worst, CONTAM_CRITICAL);
	assert_false(r.is_valid);
	assert_string_equal(r.recommendation, "abort");
	handoff_fini(&h);

	init_state(&h, "g", 3);
	add(&h.decisions_made, "use PostgreSQL");
	add(&h.decisions_made, "use Redis");
	add(&h.decisions_made, "use Kubernetes");
	r = check(&h, "No PostgreSQL, no Redis.");
	assert_int_equal(r.worst, CONTAM_HIGH);
	r = check(&h, "No PostgreSQL, no Redis, never Kubernetes.");
	assert_int_equal(r.n, 3);
	assert_int_equal(r.worst, CONTAM_CRITICAL);
	assert_string_equal(r.recommendation, "abort");
	handoff_fini(&h);
}

static void test_report_keeps_the_most_severe_issues(void **state)
{
	(void)state;
	struct handoff h;
	init_state(&h, "g", 3);
	char decision[32], output[2048] = "I apologize. hallucination.";
	for (int i = 0; i < 20; i++) {
		snprintf(decision, sizeof decision, "use tool%d", i);
		add(&h.decisions_made, decision);
		snprintf(output + strlen(output), sizeof output - strlen(output), " no tool%d.", i);
	}
	struct contamination_report r = check(&h, output);
	assert_int_equal(r.n, CONTAMINATION_MAX_ISSUES);
	assert_int_equal(r.n_omitted, 20 + 2 - CONTAMINATION_MAX_ISSUES);
	for (size_t i = 0; i < r.n; i++)
		assert_string_equal(r.issues[i].type, "contradiction_detected");
	assert_int_equal(r.worst, CONTAM_CRITICAL);
	handoff_fini(&h);
}

static void test_report_details_are_valid_utf8(void **state)
{
	(void)state;
	struct handoff h;
	init_state(&h, "g", 3);
	add(&h.decisions_made, "use \xC3\xA9t\xC3\xA9 caf\xC3\xA9");
	char output[600] = "I apologize \xFF\xFE";
	strcat(output, " never use \xC3\xA9t\xC3\xA9 caf\xC3\xA9");
	struct contamination_report r = check(&h, output);
	assert_int_equal(r.n, 2);
	assert_non_null(strstr(r.issues[0].detail, "\"never use \xC3\xA9t\xC3\xA9"));
	handoff_fini(&h);
}

static void test_apply_records_warnings_once(void **state)
{
	(void)state;
	struct handoff h;
	init_state(&h, "g", 3);
	h.current_step = 2;
	add(&h.decisions_made, "use PostgreSQL");
	struct contamination_report r = check(&h, "I apologize. Hallucination! not PostgreSQL");
	assert_int_equal(r.n, 3);
	assert_int_equal(contamination_apply(&h, &r, NULL), BRG_OK);
	assert_int_equal(contamination_apply(&h, &r, NULL), BRG_OK); /* idempotent */
	assert_int_equal(h.active_errors.n, 2);
	assert_string_equal(
	    h.active_errors.items[0],
	    "step 2: error_marker_detected: marker \"I apologize\": \"I apologize\"");
	assert_string_equal(h.active_errors.items[1], "step 2: error_marker_detected: marker "
	                                              "\"hallucination\": \"Hallucination\"");
	assert_int_equal(contamination_apply(NULL, &r, NULL), BRG_E_BAD_REQUEST);
	assert_int_equal(contamination_apply(&h, NULL, NULL), BRG_E_BAD_REQUEST);
	handoff_fini(&h);
}

static void test_severity_names(void **state)
{
	(void)state;
	assert_string_equal(contamination_severity_name(CONTAM_NONE), "none");
	assert_string_equal(contamination_severity_name(CONTAM_WARNING), "warning");
	assert_string_equal(contamination_severity_name(CONTAM_HIGH), "high");
	assert_string_equal(contamination_severity_name(CONTAM_CRITICAL), "critical");
	assert_string_equal(contamination_severity_name((enum contamination_severity)9), "none");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_is_cleaned_folded_and_cut_at_boundaries),
	    cmocka_unit_test(test_budget_reproduces_the_spec_examples),
	    cmocka_unit_test(test_budget_scales_between_and_beyond_the_examples),
	    cmocka_unit_test(test_budget_stays_usable_for_tiny_contexts),
	    cmocka_unit_test(test_budget_parts_always_sum_and_leave_a_quarter),
	    cmocka_unit_test(test_utilization_is_a_clamped_share),
	    cmocka_unit_test(test_fit_returns_text_that_fits_unchanged),
	    cmocka_unit_test(test_fit_compresses_once_with_the_spec_ratio),
	    cmocka_unit_test(test_fit_compresses_twice_and_three_times),
	    cmocka_unit_test(test_fit_fails_after_three_compressions),
	    cmocka_unit_test(test_fit_discards_longer_empty_and_failed_results),
	    cmocka_unit_test(test_fit_fails_when_tokens_cannot_be_counted),
	    cmocka_unit_test(test_fit_without_a_way_to_compress_is_a_budget_error),
	    cmocka_unit_test(test_fit_output_is_valid_utf8),
	    cmocka_unit_test(test_compression_prompt_follows_the_spec_table),
	    cmocka_unit_test(test_estimate_follows_its_documented_rule),
	    cmocka_unit_test(test_estimate_does_not_undercount_a_llama_tokenizer),
	    cmocka_unit_test(test_handoff_init_fills_the_spec_fields),
	    cmocka_unit_test(test_handoff_init_rejects_missing_fields),
	    cmocka_unit_test(test_handoff_add_copies_skips_duplicates_and_blanks),
	    cmocka_unit_test(test_handoff_add_caps_items_and_length),
	    cmocka_unit_test(test_handoff_validate_names_the_bad_field),
	    cmocka_unit_test(test_handoff_set_context_copies_and_clears),
	    cmocka_unit_test(test_handoff_json_round_trip),
	    cmocka_unit_test(test_handoff_from_json_rejects_bad_state),
	    cmocka_unit_test(test_handoff_to_json_refuses_invalid_state),
	    cmocka_unit_test(test_trajectory_renders_the_spec_block),
	    cmocka_unit_test(test_trajectory_fills_gaps_with_none),
	    cmocka_unit_test(test_trajectory_folds_lines_so_the_block_keeps_its_shape),
	    cmocka_unit_test(test_trajectory_cuts_long_fields),
	    cmocka_unit_test(test_handoff_render_keeps_conclusions_only),
	    cmocka_unit_test(test_each_error_marker_is_a_warning),
	    cmocka_unit_test(test_clean_output_proceeds),
	    cmocka_unit_test(test_negated_decisions_are_contradictions),
	    cmocka_unit_test(test_mentions_that_do_not_negate_are_not_contradictions),
	    cmocka_unit_test(test_error_accumulation_is_high),
	    cmocka_unit_test(test_critical_contamination_aborts),
	    cmocka_unit_test(test_report_keeps_the_most_severe_issues),
	    cmocka_unit_test(test_report_details_are_valid_utf8),
	    cmocka_unit_test(test_apply_records_warnings_once),
	    cmocka_unit_test(test_severity_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
