// sources: src/orchestrate/answer.c src/orchestrate/number.c src/orchestrate/similarity.c
// sources: src/orchestrate/reduce.c src/orchestrate/score.c src/core/err.c
// libs: -lm
/*
 * fuzz_reduce.c — libFuzzer harness for orchestrate/answer.c and reduce.c.
 *
 * Input layout: the bytes are split at NUL into up to REDUCE_MAX_CANDIDATES
 * pieces; each piece's first byte is its candidate's confidence (below 16:
 * unknown; 16: NaN; 17: 2.0; else (b - 18) / 237, so 0..1) and the rest is
 * its text, copied into a buffer of exactly its size so that any read past
 * the NUL is an ASan report.
 *
 * Checks: extraction is deterministic, its key NUL-terminated within
 * ANSWER_KEY_MAX, empty iff ANSWER_FREE, valid UTF-8 and in its kind's
 * canonical form; similarity is in [0, 1], symmetric and 1 on itself;
 * every strategy returns a winner < n, 0 <= agreement, confidence <= 1,
 * 1 <= n_agree <= n, n_agree equal to an independent count of the
 * candidates that agree with the winner, the share n_agree / n where the
 * strategy says so, the winner's own answer, and the same result twice.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrate/reduce.h"

#include "../common/utf8_check.h"

static void check(bool ok)
{
	if (!ok)
		abort();
}

static bool is_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

/* [-]D[.D][eE], no leading zero before a longer integer part, no trailing
 * zero after the point, "0" only unsigned. */
static bool is_canonical_number(const char *k)
{
	if (strcmp(k, "0") == 0)
		return true;
	if (*k == '-')
		k++;
	if (strcmp(k, "0") == 0)
		return false;
	const char *e = strchr(k, 'e');
	size_t mlen = e ? (size_t)(e - k) : strlen(k);
	if (e) {
		const char *x = e + 1 + (e[1] == '-');
		if (!is_digits(x, strlen(x)))
			return false;
	}
	const char *dot = memchr(k, '.', mlen);
	size_t ilen = dot ? (size_t)(dot - k) : mlen;
	if (!is_digits(k, ilen) || (ilen > 1 && k[0] == '0'))
		return false;
	if (dot) {
		size_t flen = mlen - ilen - 1;
		if (!is_digits(dot + 1, flen) || dot[flen] == '0')
			return false;
	}
	return true;
}

static bool is_canonical_short(const char *k)
{
	size_t n = strlen(k), words = 1;
	if (n == 0 || k[0] == ' ' || k[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (k[i] >= 'A' && k[i] <= 'Z')
			return false;
		if (k[i] == ' ' && k[i + 1] == ' ')
			return false;
		words += k[i] == ' ';
	}
	return words <= 8;
}

static void check_answer(const char *text, struct answer *a)
{
	struct answer b;
	memset(a, 0x55, sizeof *a);
	memset(&b, 0xAA, sizeof b);
	answer_extract(text, a);
	answer_extract(text, &b);
	check(a->kind >= ANSWER_NUMBER && a->kind <= ANSWER_FREE);
	check(memchr(a->key, '\0', ANSWER_KEY_MAX) != NULL);
	check(a->kind == b.kind && strcmp(a->key, b.key) == 0);
	size_t n = strlen(a->key);
	check((n == 0) == (a->kind == ANSWER_FREE));
	check(valid_utf8((const unsigned char *)a->key, n));
	switch (a->kind) {
	case ANSWER_NUMBER:
		check(is_canonical_number(a->key));
		break;
	case ANSWER_CHOICE:
		check(n == 1 && a->key[0] >= 'A' && a->key[0] <= 'J');
		break;
	case ANSWER_YESNO:
		check(strcmp(a->key, "yes") == 0 || strcmp(a->key, "no") == 0);
		break;
	case ANSWER_SHORT:
		check(is_canonical_short(a->key));
		break;
	case ANSWER_FREE:
		break;
	}
}

static double confidence_of(uint8_t b)
{
	if (b < 16)
		return -1;
	if (b == 16)
		return NAN;
	if (b == 17)
		return 2.0;
	return (b - 18) / 237.0;
}

static bool same_answer(const struct answer *a, const struct answer *b)
{
	return a->kind == b->kind && strcmp(a->key, b->key) == 0;
}

static void check_reduce(enum reduce_strategy s, const struct candidate *c,
                         const struct answer *ans, double sim[][REDUCE_MAX_CANDIDATES], size_t n)
{
	struct reduction r, again;
	struct brg_error err;
	check(reduce(s, c, n, &r, &err) == BRG_OK);
	check(reduce(s, c, n, &again, NULL) == BRG_OK);
	check(r.winner < n);
	check(r.n_agree >= 1 && r.n_agree <= n);
	check(r.agreement >= 0 && r.agreement <= 1);
	check(r.confidence >= 0 && r.confidence <= 1);
	check(same_answer(&r.answer, &ans[r.winner]));
	check(r.winner == again.winner && r.n_agree == again.n_agree &&
	      r.agreement == again.agreement && r.confidence == again.confidence &&
	      r.is_tie == again.is_tie && same_answer(&r.answer, &again.answer));
	size_t n_agree = 0;
	for (size_t j = 0; j < n; j++) {
		bool agree = ans[j].kind == r.answer.kind &&
		             (r.answer.kind == ANSWER_FREE ? sim[r.winner][j] >= REDUCE_FREE_AGREE
		                                           : strcmp(ans[j].key, r.answer.key) == 0);
		n_agree += agree || j == r.winner;
	}
	check(n_agree == r.n_agree);
	if (s != REDUCE_WEIGHTED_CONSENSUS)
		check(r.agreement == (double)r.n_agree / (double)n);
	if (n == 1)
		check(r.winner == 0 && r.agreement == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *texts[REDUCE_MAX_CANDIDATES];
	struct candidate c[REDUCE_MAX_CANDIDATES];
	struct answer ans[REDUCE_MAX_CANDIDATES];
	static double sim[REDUCE_MAX_CANDIDATES][REDUCE_MAX_CANDIDATES];
	size_t n = 0, at = 0;
	while (n < REDUCE_MAX_CANDIDATES && at < size) {
		const uint8_t *nul = memchr(data + at, 0, size - at);
		size_t len = nul ? (size_t)(nul - (data + at)) : size - at;
		c[n].confidence = len > 0 ? confidence_of(data[at]) : -1;
		size_t tlen = len > 0 ? len - 1 : 0;
		texts[n] = malloc(tlen + 1);
		if (!texts[n])
			break;
		memcpy(texts[n], data + at + (len > 0), tlen);
		texts[n][tlen] = '\0';
		c[n].text = texts[n];
		n++;
		at += len + 1;
	}
	for (size_t i = 0; i < n; i++) {
		check_answer(texts[i], &ans[i]);
		double sc = answer_parse_score(texts[i]);
		if (!(sc == -1 || (sc >= 0 && sc <= 1)))
			abort(); /* a score is in [0, 1] or absent */
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < n; j++) {
			sim[i][j] = answer_text_similarity(texts[i], texts[j]);
			check(sim[i][j] >= 0 && sim[i][j] <= 1);
		}
		check(sim[i][i] == 1);
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			check(sim[i][j] == sim[j][i]);
	if (n > 0) {
		check_reduce(REDUCE_WEIGHTED_CONSENSUS, c, ans, sim, n);
		check_reduce(REDUCE_MAJORITY_VOTE, c, ans, sim, n);
		check_reduce(REDUCE_HIGHEST_CONFIDENCE, c, ans, sim, n);
	} else {
		struct reduction r;
		check(reduce(REDUCE_MAJORITY_VOTE, c, 0, &r, NULL) == BRG_E_BAD_REQUEST);
	}
	for (size_t i = 0; i < n; i++)
		free(texts[i]);
	return 0;
}
