/*
 * test_reduce.c — unit tests for orchestrate/answer.c and reduce.c: the
 * final answer is found and normalised so equal answers vote together,
 * look-alikes ("A cat sat") are not mistaken for answers, and every
 * strategy reports the winner, agreement, confidence and ties exactly as
 * docs/reducers.md says.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../common/utf8_check.h"

#include "orchestrate/reduce.h"

#define UNKNOWN (-1.0)

struct case_ {
	const char *text;
	enum answer_kind kind;
	const char *key;
};

#define N_OF(a) (sizeof(a) / sizeof *(a))

static void check_cases(const struct case_ *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct answer a;
		memset(&a, 0x55, sizeof a);
		answer_extract(cases[i].text, &a);
		if (a.kind != cases[i].kind || strcmp(a.key, cases[i].key) != 0)
			fail_msg("%zu: \"%s\" → %s \"%s\", want %s \"%s\"", i, cases[i].text,
			         answer_kind_name(a.kind), a.key, answer_kind_name(cases[i].kind),
			         cases[i].key);
	}
}

/* ---- extraction: numbers ---------------------------------------------- */

static void test_equal_numbers_share_one_key(void **state)
{
	(void)state;
	static const struct case_ cases[] = {
	    {"42", ANSWER_NUMBER, "42"},
	    {"42.0", ANSWER_NUMBER, "42"},
	    {"+42", ANSWER_NUMBER, "42"},
	    {"4.20e1", ANSWER_NUMBER, "42"},
	    {"0042", ANSWER_NUMBER, "42"},
	    {"The answer is 42.", ANSWER_NUMBER, "42"},
	    {"1,234", ANSWER_NUMBER, "1234"},
	    {"12,345,678.9", ANSWER_NUMBER, "12345678.9"},
	    {"$1,234.50", ANSWER_NUMBER, "1234.5"},
	    {"0.050", ANSWER_NUMBER, "0.05"},
	    {".5", ANSWER_NUMBER, "0.5"},
	    {"1e-30", ANSWER_NUMBER, "1e-30"},
	    {"2.5E+3", ANSWER_NUMBER, "2500"},
	    {"123456789012345678901234567890", ANSWER_NUMBER, "123456789012345678901234567890"},
	};
	check_cases(cases, N_OF(cases));
}

static void test_negative_numbers_keep_their_sign(void **state)
{
	(void)state;
	static const struct case_ cases[] = {
	    {"-7", ANSWER_NUMBER, "-7"},
	    {"The answer is -0.5.", ANSWER_NUMBER, "-0.5"},
	    {"It is \xE2\x88\x92"
	     "3 degrees",
	     ANSWER_NUMBER, "-3"}, /* U+2212 minus */
	    {"a loss of -$5", ANSWER_NUMBER, "-5"},
	    {"-0", ANSWER_NUMBER, "0"},
	    /* A minus between numbers is subtraction, not a sign. */
	    {"10-3", ANSWER_NUMBER, "3"},
	    {"10 - 3", ANSWER_NUMBER, "3"},
	};
	check_cases(cases, N_OF(cases));
}

static void test_percent_sign_is_dropped(void **state)
{
	(void)state;
	static const struct case_ cases[] = {
	    {"50%", ANSWER_NUMBER, "50"},
	    {"The answer is 12.5 %", ANSWER_NUMBER, "12.5"},
	    {"50 percent", ANSWER_NUMBER, "50"},
	};
	check_cases(cases, N_OF(cases));
}

static void test_fractions_become_decimals(void **state)
{
	(void)state;
	static const struct case_ cases[] = {
	    {"1/4", ANSWER_NUMBER, "0.25"},
	    {"-1/8", ANSWER_NUMBER, "-0.125"},
	    {"1/3", ANSWER_NUMBER, "0.333333333333333"},
	    {"2/6", ANSWER_NUMBER, "0.333333333333333"},
	    {"\\boxed{\\frac{3}{4}}", ANSWER_NUMBER, "0.75"},
	    {"\\dfrac{1}{2}", ANSWER_NUMBER, "0.5"},
	    {"0/5", ANSWER_NUMBER, "0"},
	    /* Dates and division by zero are no numbers. */
	    {"3/4/2020", ANSWER_FREE, ""},
	    {"1/0", ANSWER_FREE, ""},
	};
	check_cases(cases, N_OF(cases));
}

static void test_final_number_of_the_answer_span_wins(void **state)
{
	(void)state;
	static const struct case_ cases[] = {
	    {"So 3 + 4 = 7.", ANSWER_NUMBER, "7"},
	    {"Natalia sold 48 clips in April and 24 in May.\n48 + 24 = 72\n#### 72\n",
	     ANSWER_NUMBER, "72"},
	    {"We get $x = 17$, so the result is \\boxed{17}.", ANSWER_NUMBER, "17"},
	    {"**Answer:** 42", ANSWER_NUMBER, "42"},
	    {"The answer is 3, since 1 + 2 = 3.", ANSWER_NUMBER, "3"},
	    {"Therefore, the total is 1,000,000 dollars.\nHope this helps!", ANSWER_NUMBER,
	     "1000000"},
	    {"The answer is:\n\n  12\n", ANSWER_NUMBER, "12"},
	    /* boxed beats a later answer line; the answer marker beats the last line. */
	    {"\\boxed{5}\nAnswer: 6", ANSWER_NUMBER, "5"},
	    {"The answer is 8. I checked 3 times.", ANSWER_NUMBER, "8"},
	    /* An earlier "answer" used as a word is no marker. */
	    {"To find the answer, add 2 and 2.\nSo 4.", ANSWER_NUMBER, "4"},
	};
	check_cases(cases, N_OF(cases));
}

static void test_digits_inside_words_are_not_numbers(void **state)
{
	(void)state;
	static const struct case_ cases[] = {
	    {"H2O", ANSWER_FREE, ""},
	    {"x2 and y3", ANSWER_FREE, ""},
	    {"version 1.2.3", ANSWER_NUMBER, "1.2"},
	    /* A markdown heading "#### Step 3" is no GSM8K marker. */
	    {"#### Step 3\nWe add the parts together and report the sum", ANSWER_FREE, ""},
	};
	check_cases(cases, N_OF(cases));
}

/* ---- extraction: choices, yes/no, short -------------------------------- */

static void test_choice_forms_share_one_key(void **state)
{
	(void)state;
	static const struct case_ cases[] = {
	    {"(B)", ANSWER_CHOICE, "B"},
	    {"B)", ANSWER_CHOICE, "B"},
	    {"b.", ANSWER_CHOICE, "B"},
	    {"B", ANSWER_CHOICE, "B"},
	    {"**C**", ANSWER_CHOICE, "C"},
	    {"[d]", ANSWER_CHOICE, "D"},
	    {"Option B", ANSWER_CHOICE, "B"},
	    {"choice (e)", ANSWER_CHOICE, "E"},
	    {"The answer is B", ANSWER_CHOICE, "B"},
	    {"answer: (c)", ANSWER_CHOICE, "C"},
	    {"Answer:\n\n(D)", ANSWER_CHOICE, "D"},
	    {"The correct answer is option (C).", ANSWER_CHOICE, "C"},
	    {"The answer is B, because A is wrong.", ANSWER_CHOICE, "B"},
	    {"The answer is B because the others fail.", ANSWER_CHOICE, "B"},
	    {"Both fit, but I pick (J) here", ANSWER_CHOICE, "J"},
	    {"B) 42 apples", ANSWER_CHOICE, "B"},
	    {"\\boxed{\\text{B}}", ANSWER_CHOICE, "B"},
	    {"The answer is \xE2\x80\x9C"
	     "A\xE2\x80\x9D.",
	     ANSWER_CHOICE, "A"}, /* “A” */
	};
	check_cases(cases, N_OF(cases));
}

static void test_letters_that_are_words_are_not_choices(void **state)
{
	(void)state;
	static const struct case_ cases[] = {
	    {"A cat sat", ANSWER_FREE, ""},
	    {"I hope this helps.", ANSWER_FREE, ""},
	    {"The answer is a cat.", ANSWER_SHORT, "cat"},
	    {"Answer: Big Ben", ANSWER_SHORT, "big ben"},
	    {"(K)", ANSWER_FREE, ""},        /* only A..J */
	    {"f(A) grows", ANSWER_FREE, ""}, /* a function, not an option */
	    {"It was an option a user had", ANSWER_FREE, ""},
	    {"Answer: Alpha", ANSWER_SHORT, "alpha"},
	};
	check_cases(cases, N_OF(cases));
}

static void test_yes_no_forms_share_one_key(void **state)
{
	(void)state;
	static const struct case_ cases[] = {
	    {"Yes.", ANSWER_YESNO, "yes"},
	    {"no", ANSWER_YESNO, "no"},
	    {"True", ANSWER_YESNO, "yes"},
	    {"false", ANSWER_YESNO, "no"},
	    {"correct", ANSWER_YESNO, "yes"},
	    {"Incorrect!", ANSWER_YESNO, "no"},
	    {"**No**, because it rains.", ANSWER_YESNO, "no"},
	    {"The answer is yes because it rains.", ANSWER_YESNO, "yes"},
	    /* "No problem" is politeness, not an answer. */
	    {"No problem, glad to help", ANSWER_FREE, ""},
	    {"Yesterday it rained", ANSWER_FREE, ""},
	};
	check_cases(cases, N_OF(cases));
}

static void test_short_answers_are_normalised(void **state)
{
	(void)state;
	static const struct case_ cases[] = {
	    {"The answer is: Paris.", ANSWER_SHORT, "paris"},
	    {"Final answer: New  York City!", ANSWER_SHORT, "new york city"},
	    {"The answer is \xE2\x80\x9CParis\xE2\x80\x9D.", ANSWER_SHORT, "paris"},
	    {"Answer: the U.S.", ANSWER_SHORT, "us"},
	    {"answer = An apple", ANSWER_SHORT, "apple"},
	    {"\\boxed{Paris}", ANSWER_SHORT, "paris"},
	    {"Answer: Zürich", ANSWER_SHORT, "z\xC3\xBCrich"},
	    /* Only after a marker: a bare last line is free text. */
	    {"Paris", ANSWER_FREE, ""},
	    /* More than eight words is no short answer. */
	    {"The answer is that blue light scatters more than red light in the air", ANSWER_FREE,
	     ""},
	};
	check_cases(cases, N_OF(cases));
}

static void test_free_text_and_bad_input(void **state)
{
	(void)state;
	static const struct case_ cases[] = {
	    {"", ANSWER_FREE, ""},
	    {"\n\n  \n", ANSWER_FREE, ""},
	    {"Rust ownership moves values; borrowing lends them.", ANSWER_FREE, ""},
	    {"\xFF\xFE\x80 answer: \xC0\xAF", ANSWER_FREE, ""},
	    {"answer:", ANSWER_FREE, ""},
	    {"\\boxed{", ANSWER_FREE, ""},
	    {"####", ANSWER_FREE, ""},
	};
	check_cases(cases, N_OF(cases));
	struct answer a;
	answer_extract(NULL, &a);
	assert_int_equal(a.kind, ANSWER_FREE);
	assert_string_equal(a.key, "");
	answer_extract("42", NULL); /* ignored, no crash */
}

static void test_short_key_drops_invalid_utf8(void **state)
{
	(void)state;
	struct answer a;
	answer_extract("Answer: caf\xC3\xA9\xFF au \xE2\x82 lait", &a);
	assert_int_equal(a.kind, ANSWER_SHORT);
	assert_string_equal(a.key, "caf\xC3\xA9 au lait");
	assert_true(valid_utf8((const unsigned char *)a.key, strlen(a.key)));
}

/* A large output: still found, still bounded, key still fits. */
static void test_long_texts_are_handled(void **state)
{
	(void)state;
	size_t n = 300 * 1000;
	char *t = malloc(n + 64);
	assert_non_null(t);
	for (size_t i = 0; i < n; i++)
		t[i] = "ab 1.\n(x)"[i % 9];
	strcpy(t + n, "\nThe answer is 5.");
	struct answer a;
	answer_extract(t, &a);
	assert_int_equal(a.kind, ANSWER_NUMBER);
	assert_string_equal(a.key, "5");

	/* One number of 300,000 digits: a span holds its last 512 bytes, and
	 * a key its first 40 significant digits. */
	memset(t, '7', n);
	t[n] = '\0';
	answer_extract(t, &a);
	assert_int_equal(a.kind, ANSWER_NUMBER);
	assert_string_equal(a.key, "7.777777777777777777777777777777777777777e511");

	/* The same inside \boxed{}, whose span is also capped. */
	memcpy(t, "\\boxed{", 7);
	answer_extract(t, &a);
	assert_int_equal(a.kind, ANSWER_NUMBER);
	assert_string_equal(a.key, "7.777777777777777777777777777777777777777e511");
	free(t);
}

/* ---- similarity -------------------------------------------------------- */

static void test_similarity_is_word_set_jaccard(void **state)
{
	(void)state;
	assert_true(answer_text_similarity("the cat sat", "the cat sat") == 1.0);
	assert_true(answer_text_similarity("The CAT, sat!", "the cat sat") == 1.0);
	assert_true(answer_text_similarity("the cat sat", "the cat ran") == 0.5);
	assert_true(answer_text_similarity("a a a b", "b a") == 1.0);
	assert_true(answer_text_similarity("alpha beta", "gamma delta") == 0.0);
	assert_true(answer_text_similarity("", "") == 1.0);
	assert_true(answer_text_similarity("...", "!!!") == 1.0);
	assert_true(answer_text_similarity(NULL, "") == 1.0);
	assert_true(answer_text_similarity("word", "") == 0.0);
	/* Non-ASCII letters are part of words; curly quotes are not. */
	assert_true(answer_text_similarity("caf\xC3\xA9 au lait", "cafe au lait") == 0.5);
	assert_true(answer_text_similarity("\xE2\x80\x9CParis\xE2\x80\x9D", "paris") == 1.0);
}

static void test_similarity_is_symmetric(void **state)
{
	(void)state;
	const char *t[] = {"one two three", "two three four five", "", "\xFF\xFE", "ONE"};
	for (size_t i = 0; i < N_OF(t); i++)
		for (size_t j = 0; j < N_OF(t); j++)
			assert_true(answer_text_similarity(t[i], t[j]) ==
			            answer_text_similarity(t[j], t[i]));
}

/* Only the first 4096 words of each text count. */
static void test_similarity_reads_first_4096_words(void **state)
{
	(void)state;
	size_t n = 5000;
	char *a = malloc(n * 8 + 1), *b = malloc(n * 8 + 1);
	assert_non_null(a);
	assert_non_null(b);
	size_t la = 0, lb = 0;
	for (size_t i = 0; i < n; i++) {
		la += (size_t)sprintf(a + la, "w%zu ", i);
		if (i < 4096)
			lb += (size_t)sprintf(b + lb, "w%zu ", i);
	}
	assert_true(answer_text_similarity(a, b) == 1.0);
	free(a);
	free(b);
}

/* ---- reduce: strategies ------------------------------------------------ */

static struct reduction run(enum reduce_strategy s, const struct candidate *c, size_t n)
{
	struct reduction r;
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(reduce(s, c, n, &r, &err), BRG_OK);
	assert_int_equal(err.code, BRG_OK);
	return r;
}

static void assert_near(double got, double want)
{
	if (fabs(got - want) > 1e-12)
		fail_msg("got %.17g, want %.17g", got, want);
}

static void test_strategy_names_round_trip(void **state)
{
	(void)state;
	assert_int_equal(reduce_strategy_parse("weighted_consensus"), REDUCE_WEIGHTED_CONSENSUS);
	assert_int_equal(reduce_strategy_parse("majority_vote"), REDUCE_MAJORITY_VOTE);
	assert_int_equal(reduce_strategy_parse("highest_confidence"), REDUCE_HIGHEST_CONFIDENCE);
	assert_int_equal(reduce_strategy_parse("ensemble"), -1);
	assert_int_equal(reduce_strategy_parse("Majority_Vote"), -1);
	assert_int_equal(reduce_strategy_parse(NULL), -1);
	assert_string_equal(reduce_strategy_name(REDUCE_MAJORITY_VOTE), "majority_vote");
	assert_string_equal(reduce_strategy_name((enum reduce_strategy)99), "unknown");
	assert_string_equal(answer_kind_name(ANSWER_YESNO), "yesno");
}

static void test_majority_counts_equal_answers_written_differently(void **state)
{
	(void)state;
	const struct candidate c[] = {
	    {"6 * 7 = 42", UNKNOWN}, {"The answer is 41.", UNKNOWN},
	    {"#### 42.0", UNKNOWN},  {"So we get 40 + 2 = 42", UNKNOWN},
	    {"Answer: 43", UNKNOWN},
	};
	struct reduction r = run(REDUCE_MAJORITY_VOTE, c, 5);
	assert_int_equal(r.answer.kind, ANSWER_NUMBER);
	assert_string_equal(r.answer.key, "42");
	assert_int_equal(r.n_agree, 3);
	assert_near(r.agreement, 0.6);
	assert_near(r.confidence, 0.5 * 0.6);
	assert_false(r.is_tie);
	/* All unknown: the representative is the text most like the others. */
	assert_true(r.winner == 0 || r.winner == 2 || r.winner == 3);
}

static void test_majority_tie_goes_to_more_confidence(void **state)
{
	(void)state;
	const struct candidate c[] = {
	    {"7", 0.5}, {"7", 0.5}, {"8", 0.9}, {"8", 0.2}, {"9", 1.0},
	};
	struct reduction r = run(REDUCE_MAJORITY_VOTE, c, 5);
	assert_string_equal(r.answer.key, "8");
	assert_int_equal(r.winner, 2); /* the most confident of the group */
	assert_int_equal(r.n_agree, 2);
	assert_near(r.agreement, 0.4);
	assert_near(r.confidence, 0.55 * 0.4);
	assert_true(r.is_tie);
}

static void test_majority_full_tie_goes_to_first_group(void **state)
{
	(void)state;
	const struct candidate c[] = {{"(C)", 0.7}, {"(A)", 0.6}, {"(A)", 0.8}, {"(C)", 0.7}};
	struct reduction r = run(REDUCE_MAJORITY_VOTE, c, 4);
	assert_string_equal(r.answer.key, "C");
	assert_int_equal(r.winner, 0);
	assert_near(r.agreement, 0.5);
	assert_true(r.is_tie);
}

static void test_weighted_confident_minority_beats_unconfident_majority(void **state)
{
	(void)state;
	const struct candidate c[] = {
	    {"41", 0.3}, {"42", 0.9}, {"41", 0.3}, {"42", 0.9}, {"41", 0.3},
	};
	struct reduction r = run(REDUCE_WEIGHTED_CONSENSUS, c, 5);
	assert_string_equal(r.answer.key, "42");
	assert_int_equal(r.winner, 1);
	assert_int_equal(r.n_agree, 2);
	assert_near(r.agreement, 1.8 / 2.7);
	assert_near(r.confidence, 0.9 * (1.8 / 2.7));
	assert_false(r.is_tie);
	/* The same candidates by plain count. */
	r = run(REDUCE_MAJORITY_VOTE, c, 5);
	assert_string_equal(r.answer.key, "41");
	assert_near(r.agreement, 0.6);
}

static void test_weighted_slightly_confident_minority_loses(void **state)
{
	(void)state;
	const struct candidate c[] = {
	    {"41", 0.5}, {"42", 0.6}, {"41", 0.5}, {"42", 0.6}, {"41", 0.5},
	};
	struct reduction r = run(REDUCE_WEIGHTED_CONSENSUS, c, 5);
	assert_string_equal(r.answer.key, "41");
	assert_int_equal(r.winner, 0);
	assert_int_equal(r.n_agree, 3);
	assert_near(r.agreement, 1.5 / 2.7);
	assert_near(r.confidence, 0.5 * (1.5 / 2.7));
}

static void test_weighted_unknown_confidence_counts_half(void **state)
{
	(void)state;
	const struct candidate c[] = {{"yes", UNKNOWN}, {"no", 0.4}, {"Yes.", NAN}, {"no", 2.0}};
	/* weights 0.5, 0.4, 0.5, 1.0 (clamped): yes 1.0 vs no 1.4 */
	struct reduction r = run(REDUCE_WEIGHTED_CONSENSUS, c, 4);
	assert_string_equal(r.answer.key, "no");
	assert_int_equal(r.winner, 3);
	assert_near(r.agreement, 1.4 / 2.4);
	assert_near(r.confidence, 0.7 * (1.4 / 2.4));
}

static void test_weighted_tie_goes_to_larger_group(void **state)
{
	(void)state;
	const struct candidate c[] = {{"A.", 0.8}, {"B.", 0.4}, {"B.", 0.4}};
	struct reduction r = run(REDUCE_WEIGHTED_CONSENSUS, c, 3);
	assert_string_equal(r.answer.key, "B");
	assert_int_equal(r.winner, 1);
	assert_near(r.agreement, 0.5);
	assert_true(r.is_tie);
}

static void test_weighted_all_zero_confidence_counts_votes(void **state)
{
	(void)state;
	const struct candidate c[] = {{"1", 0}, {"2", 0}, {"2", 0}};
	struct reduction r = run(REDUCE_WEIGHTED_CONSENSUS, c, 3);
	assert_string_equal(r.answer.key, "2");
	assert_near(r.agreement, 2.0 / 3.0);
	assert_near(r.confidence, 0);
	assert_true(r.is_tie); /* every group weighed 0 */
}

static void test_highest_confidence_takes_most_confident(void **state)
{
	(void)state;
	const struct candidate c[] = {{"12", 0.3}, {"13", 0.95}, {"12", 0.4}, {"13", UNKNOWN}};
	struct reduction r = run(REDUCE_HIGHEST_CONFIDENCE, c, 4);
	assert_int_equal(r.winner, 1);
	assert_string_equal(r.answer.key, "13");
	assert_int_equal(r.n_agree, 2);
	assert_near(r.agreement, 0.5);
	assert_near(r.confidence, (0.95 + 0.5) / 2 * 0.5);
	assert_false(r.is_tie);
}

static void test_highest_confidence_tie_goes_to_lowest_index(void **state)
{
	(void)state;
	const struct candidate c[] = {{"(A)", 0.3}, {"(B)", 0.9}, {"(C)", 0.9}};
	struct reduction r = run(REDUCE_HIGHEST_CONFIDENCE, c, 3);
	assert_int_equal(r.winner, 1);
	assert_near(r.agreement, 1.0 / 3.0);
	assert_true(r.is_tie);
	/* Level confidence on the same answer is no tie. */
	const struct candidate d[] = {{"(B)", 0.9}, {"b", 0.9}, {"(C)", 0.1}};
	r = run(REDUCE_HIGHEST_CONFIDENCE, d, 3);
	assert_int_equal(r.winner, 0);
	assert_false(r.is_tie);
	assert_near(r.agreement, 2.0 / 3.0);
}

static void test_one_candidate_agrees_with_itself(void **state)
{
	(void)state;
	const struct candidate c[] = {{"anything at all", 0.8}};
	for (int s = 0; s <= REDUCE_HIGHEST_CONFIDENCE; s++) {
		struct reduction r = run((enum reduce_strategy)s, c, 1);
		assert_int_equal(r.winner, 0);
		assert_int_equal(r.n_agree, 1);
		assert_near(r.agreement, 1.0);
		assert_near(r.confidence, 0.8);
		assert_false(r.is_tie);
	}
	const struct candidate z[] = {{"42", 0}};
	struct reduction r = run(REDUCE_WEIGHTED_CONSENSUS, z, 1);
	assert_near(r.agreement, 1.0);
	assert_near(r.confidence, 0);
}

static void test_different_kinds_never_agree(void **state)
{
	(void)state;
	const struct candidate c[] = {
	    {"Answer: 1", UNKNOWN},   /* number 1 */
	    {"Answer: yes", UNKNOWN}, /* yes */
	    {"(A)", UNKNOWN},         /* choice A */
	    {"Answer: one", UNKNOWN}, /* short "one" */
	};
	struct reduction r = run(REDUCE_MAJORITY_VOTE, c, 4);
	assert_int_equal(r.n_agree, 1);
	assert_near(r.agreement, 0.25);
	assert_int_equal(r.winner, 0);
	assert_true(r.is_tie);
}

/* ---- reduce: free text ------------------------------------------------- */

static void test_free_texts_group_by_similarity(void **state)
{
	(void)state;
	const struct candidate c[] = {
	    {"Photosynthesis happens in the chloroplasts of plant cells", 0.9},
	    {"The mitochondria is the powerhouse of the cell and makes energy", 0.5},
	    {"the mitochondria is the powerhouse of the cell, it makes energy", 0.6},
	    {"Mitochondria: the powerhouse of the cell that makes energy", 0.4},
	};
	struct reduction r = run(REDUCE_MAJORITY_VOTE, c, 4);
	assert_int_equal(r.answer.kind, ANSWER_FREE);
	assert_string_equal(r.answer.key, "");
	assert_int_equal(r.winner, 2);
	assert_int_equal(r.n_agree, 3);
	assert_near(r.agreement, 0.75);
	assert_near(r.confidence, 0.5 * 0.75);
	for (size_t i = 1; i < 4; i++)
		assert_true(answer_text_similarity(c[2].text, c[i].text) >= REDUCE_FREE_AGREE);
	assert_true(answer_text_similarity(c[0].text, c[2].text) < REDUCE_FREE_AGREE);
}

/*
 * Similarity is not transitive: with A~B, B~C and A!~C the text in the
 * middle wins and counts only the texts that really agree with it.
 */
static void test_free_text_winner_is_the_centre(void **state)
{
	(void)state;
	const struct candidate c[] = {
	    {"w1 w2 w3 w4 w5 w6 w7 w8 w9 w10", UNKNOWN},
	    {"w3 w4 w5 w6 w7 w8 w9 w10 w11 w12", UNKNOWN},
	    {"w5 w6 w7 w8 w9 w10 w11 w12 w13 w14", UNKNOWN},
	};
	assert_true(answer_text_similarity(c[0].text, c[1].text) >= REDUCE_FREE_AGREE);
	assert_true(answer_text_similarity(c[1].text, c[2].text) >= REDUCE_FREE_AGREE);
	assert_true(answer_text_similarity(c[0].text, c[2].text) < REDUCE_FREE_AGREE);
	struct reduction r = run(REDUCE_MAJORITY_VOTE, c, 3);
	assert_int_equal(r.winner, 1);
	assert_int_equal(r.n_agree, 3);
	assert_near(r.agreement, 1.0);
	assert_false(r.is_tie);
	r = run(REDUCE_HIGHEST_CONFIDENCE, c, 3); /* all 0.5: index 0 */
	assert_int_equal(r.winner, 0);
	assert_int_equal(r.n_agree, 2);
	assert_near(r.agreement, 2.0 / 3.0);
}

/* A key and a free text never agree, however alike their words. */
static void test_free_text_never_agrees_with_a_key(void **state)
{
	(void)state;
	const struct candidate c[] = {
	    {"Answer: paris", 0.9}, /* short "paris" */
	    {"answer paris", 0.2},  /* no marker: free text */
	    {"answer paris", 0.2},
	};
	assert_true(answer_text_similarity(c[0].text, c[1].text) == 1.0);
	struct reduction r = run(REDUCE_MAJORITY_VOTE, c, 3);
	assert_int_equal(r.answer.kind, ANSWER_FREE);
	assert_int_equal(r.winner, 1);
	assert_int_equal(r.n_agree, 2);
	r = run(REDUCE_WEIGHTED_CONSENSUS, c, 3);
	assert_int_equal(r.answer.kind, ANSWER_SHORT);
	assert_int_equal(r.n_agree, 1);
	assert_near(r.agreement, 0.9 / 1.3);
}

/* ---- reduce: bad input ------------------------------------------------- */

static void test_bad_input_is_rejected(void **state)
{
	(void)state;
	const struct candidate ok[REDUCE_MAX_CANDIDATES + 1] = {{"1", 0.5}};
	const struct candidate nul[] = {{"1", 0.5}, {NULL, 0.5}};
	struct reduction r;
	struct brg_error err;

	brg_error_clear(&err);
	assert_int_equal(reduce(REDUCE_MAJORITY_VOTE, ok, 0, &r, &err), BRG_E_BAD_REQUEST);
	assert_int_equal(err.code, BRG_E_BAD_REQUEST);
	assert_int_equal(reduce(REDUCE_MAJORITY_VOTE, ok, REDUCE_MAX_CANDIDATES + 1, &r, &err),
	                 BRG_E_BAD_REQUEST);
	brg_error_clear(&err);
	assert_int_equal(reduce(REDUCE_MAJORITY_VOTE, nul, 2, &r, &err), BRG_E_BAD_REQUEST);
	assert_non_null(strstr(err.message, "candidates[1].text"));
	assert_int_equal(reduce(REDUCE_MAJORITY_VOTE, NULL, 3, &r, &err), BRG_E_BAD_REQUEST);
	assert_int_equal(reduce(REDUCE_MAJORITY_VOTE, ok, 1, NULL, &err), BRG_E_BAD_REQUEST);
	assert_int_equal(reduce((enum reduce_strategy)7, ok, 1, &r, &err), BRG_E_BAD_REQUEST);
	assert_int_equal(reduce(REDUCE_MAJORITY_VOTE, ok, 0, &r, NULL), BRG_E_BAD_REQUEST);
	/* The result is zeroed on error. */
	assert_int_equal(r.n_agree, 0);
	assert_int_equal(r.winner, 0);

	/* Sixteen is allowed. */
	const struct candidate many[REDUCE_MAX_CANDIDATES] = {
	    {"1", 0.1}, {"1", 0.1}, {"1", 0.1}, {"1", 0.1}, {"1", 0.1}, {"1", 0.1},
	    {"1", 0.1}, {"1", 0.1}, {"1", 0.1}, {"1", 0.1}, {"1", 0.1}, {"1", 0.1},
	    {"1", 0.1}, {"1", 0.1}, {"1", 0.1}, {"2", 0.9},
	};
	r = run(REDUCE_WEIGHTED_CONSENSUS, many, REDUCE_MAX_CANDIDATES);
	assert_string_equal(r.answer.key, "1");
	assert_int_equal(r.n_agree, 15);
	assert_near(r.agreement, 1.5 / 2.4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_equal_numbers_share_one_key),
	    cmocka_unit_test(test_negative_numbers_keep_their_sign),
	    cmocka_unit_test(test_percent_sign_is_dropped),
	    cmocka_unit_test(test_fractions_become_decimals),
	    cmocka_unit_test(test_final_number_of_the_answer_span_wins),
	    cmocka_unit_test(test_digits_inside_words_are_not_numbers),
	    cmocka_unit_test(test_choice_forms_share_one_key),
	    cmocka_unit_test(test_letters_that_are_words_are_not_choices),
	    cmocka_unit_test(test_yes_no_forms_share_one_key),
	    cmocka_unit_test(test_short_answers_are_normalised),
	    cmocka_unit_test(test_free_text_and_bad_input),
	    cmocka_unit_test(test_short_key_drops_invalid_utf8),
	    cmocka_unit_test(test_long_texts_are_handled),
	    cmocka_unit_test(test_similarity_is_word_set_jaccard),
	    cmocka_unit_test(test_similarity_is_symmetric),
	    cmocka_unit_test(test_similarity_reads_first_4096_words),
	    cmocka_unit_test(test_strategy_names_round_trip),
	    cmocka_unit_test(test_majority_counts_equal_answers_written_differently),
	    cmocka_unit_test(test_majority_tie_goes_to_more_confidence),
	    cmocka_unit_test(test_majority_full_tie_goes_to_first_group),
	    cmocka_unit_test(test_weighted_confident_minority_beats_unconfident_majority),
	    cmocka_unit_test(test_weighted_slightly_confident_minority_loses),
	    cmocka_unit_test(test_weighted_unknown_confidence_counts_half),
	    cmocka_unit_test(test_weighted_tie_goes_to_larger_group),
	    cmocka_unit_test(test_weighted_all_zero_confidence_counts_votes),
	    cmocka_unit_test(test_highest_confidence_takes_most_confident),
	    cmocka_unit_test(test_highest_confidence_tie_goes_to_lowest_index),
	    cmocka_unit_test(test_one_candidate_agrees_with_itself),
	    cmocka_unit_test(test_different_kinds_never_agree),
	    cmocka_unit_test(test_free_texts_group_by_similarity),
	    cmocka_unit_test(test_free_text_winner_is_the_centre),
	    cmocka_unit_test(test_free_text_never_agrees_with_a_key),
	    cmocka_unit_test(test_bad_input_is_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
