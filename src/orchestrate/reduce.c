/*
 * reduce.c — from several answers to one question to one answer, with an
 * honest measure of agreement (spec: inference-plane-setup → Reducer
 * Strategies).  answer.c turns each text into an answer key; this file
 * votes.  User-facing rules and formulas: docs/reducers.md.
 *
 * Groups.  Candidates i and j agree when their answers have the same kind
 * and the same key, or — both ANSWER_FREE — when their word overlap is at
 * least REDUCE_FREE_AGREE.  Different kinds never agree ("42" and "yes").
 * Equal keys make a partition, but similarity is not transitive (A~B,
 * B~C, A!~C), so a group is defined per candidate: group(i) = the
 * candidates that agree with i, i itself included.  For keyed answers
 * that is simply everyone with the same key; for free texts it is i's
 * neighbourhood, and every member of it agrees with i by construction.
 * So once i wins, n_agree and agreement count exactly the candidates that
 * agree with the returned text — the number a user is shown.
 *
 * Weights.  w(i) = the candidate's confidence clamped to [0, 1]; unknown
 * (< 0 or NaN) counts as 0.5, "no information either way".
 *
 * Winner.  Every candidate i is ranked by its group; the best rank wins:
 *
 *   majority_vote       |group|, then Σw(group), then the group's lowest index
 *   weighted_consensus  Σw(group), then |group|, then the group's lowest index
 *   highest_confidence  w(i), then the lowest index
 *
 * and, for the first two, between candidates whose groups rank level —
 * the members of one group — the representative: w(i), then mean
 * similarity to the rest of its group (the most typical text), then the
 * lowest index.  Every step is deterministic; sums run in index order and
 * compare with a 1e-9 tolerance, so input order is the only tie-breaker
 * left.
 *
 * is_tie: a candidate that does not agree with the winner scored level on
 * the strategy's first criterion (the count, the weight sum, or the
 * confidence), so a later criterion decided.
 *
 * Pure and bounded: no allocation, at most n(n-1)/2 similarity
 * computations (memoised), each O(w log w) in the first 4096 words.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "orchestrate/reduce.h"

#define EPS 1e-9

struct vote {
	const struct candidate *c;
	size_t n;
	struct answer ans[REDUCE_MAX_CANDIDATES];
	double w[REDUCE_MAX_CANDIDATES];
	double sim[REDUCE_MAX_CANDIDATES][REDUCE_MAX_CANDIDATES]; /* < 0: not computed yet */
	uint32_t group[REDUCE_MAX_CANDIDATES];                    /* bit j: j agrees with i */
	double group_w[REDUCE_MAX_CANDIDATES];
	size_t group_n[REDUCE_MAX_CANDIDATES];
	size_t group_first[REDUCE_MAX_CANDIDATES];
};

static const char *const strategy_names[] = {
    [REDUCE_WEIGHTED_CONSENSUS] = "weighted_consensus",
    [REDUCE_MAJORITY_VOTE] = "majority_vote",
    [REDUCE_HIGHEST_CONFIDENCE] = "highest_confidence",
};

int reduce_strategy_parse(const char *s)
{
	for (size_t i = 0; s && i < sizeof strategy_names / sizeof *strategy_names; i++)
		if (strcmp(s, strategy_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *reduce_strategy_name(enum reduce_strategy s)
{
	if ((unsigned)s >= sizeof strategy_names / sizeof *strategy_names)
		return "unknown";
	return strategy_names[s];
}

/* The weight of a confidence: clamped to [0, 1], unknown (< 0, NaN) 0.5. */
static double weight(double confidence)
{
	if (isnan(confidence) || confidence < 0)
		return 0.5;
	return confidence > 1 ? 1 : confidence;
}

/* -1, 0, 1 as a < b, a ≈ b, a > b. */
static int cmp_near(double a, double b)
{
	return a < b - EPS ? -1 : a > b + EPS ? 1 : 0;
}

static int cmp_size(size_t a, size_t b)
{
	return (a > b) - (a < b);
}

static double sim(struct vote *v, size_t i, size_t j)
{
	if (v->sim[i][j] < 0)
		v->sim[i][j] = v->sim[j][i] = answer_text_similarity(v->c[i].text, v->c[j].text);
	return v->sim[i][j];
}

static bool agree(struct vote *v, size_t i, size_t j)
{
	if (i == j)
		return true;
	if (v->ans[i].kind != v->ans[j].kind)
		return false;
	if (v->ans[i].kind != ANSWER_FREE)
		return strcmp(v->ans[i].key, v->ans[j].key) == 0;
	return sim(v, i, j) >= REDUCE_FREE_AGREE;
}

/* Extracts every answer and builds every candidate's group. */
static void vote_init(struct vote *v, const struct candidate *c, size_t n)
{
	v->c = c;
	v->n = n;
	for (size_t i = 0; i < n; i++) {
		answer_extract(c[i].text, &v->ans[i]);
		v->w[i] = weight(c[i].confidence);
		for (size_t j = 0; j < n; j++)
			v->sim[i][j] = i == j ? 1.0 : -1.0;
	}
	for (size_t i = 0; i < n; i++) {
		v->group[i] = 0;
		v->group_w[i] = 0;
		v->group_n[i] = 0;
		v->group_first[i] = n;
		for (size_t j = 0; j < n; j++) {
			if (!agree(v, i, j))
				continue;
			v->group[i] |= (uint32_t)1 << j;
			v->group_w[i] += v->w[j];
			v->group_n[i]++;
			v->group_first[i] = j < v->group_first[i] ? j : v->group_first[i];
		}
	}
}

/* Mean similarity of i to the other members of its group (0 if alone). */
static double typicality(struct vote *v, size_t i)
{
	double sum = 0;
	for (size_t j = 0; j < v->n; j++)
		if (j != i && (v->group[i] >> j & 1))
			sum += sim(v, i, j);
	return v->group_n[i] > 1 ? sum / (double)(v->group_n[i] - 1) : 0;
}

/* The strategy's first criterion for candidate i's group (or i). */
static double primary(const struct vote *v, enum reduce_strategy s, size_t i)
{
	switch (s) {
	case REDUCE_MAJORITY_VOTE:
		return (double)v->group_n[i];
	case REDUCE_WEIGHTED_CONSENSUS:
		return v->group_w[i];
	case REDUCE_HIGHEST_CONFIDENCE:
		break;
	}
	return v->w[i];
}

/* > 0 when candidate a ranks above candidate b under strategy s. */
static int rank(struct vote *v, enum reduce_strategy s, size_t a, size_t b)
{
	int r = cmp_near(primary(v, s, a), primary(v, s, b));
	if (r != 0 || s == REDUCE_HIGHEST_CONFIDENCE)
		return r != 0 ? r : cmp_size(b, a);
	if (s == REDUCE_MAJORITY_VOTE)
		r = cmp_near(v->group_w[a], v->group_w[b]);
	else
		r = cmp_size(v->group_n[a], v->group_n[b]);
	if (r == 0)
		r = cmp_size(v->group_first[b], v->group_first[a]);
	if (r == 0)
		r = cmp_near(v->w[a], v->w[b]);
	if (r == 0)
		r = cmp_near(typicality(v, a), typicality(v, b));
	return r != 0 ? r : cmp_size(b, a);
}

/* Fills everything but 'winner' selection: counts, agreement, confidence, tie. */
static void finish(struct vote *v, enum reduce_strategy s, size_t win, struct reduction *out)
{
	double total_w = 0;
	for (size_t j = 0; j < v->n; j++)
		total_w += v->w[j];
	size_t n_agree = v->group_n[win];
	double share_n = (double)n_agree / (double)v->n;
	double agreement = share_n;
	/* All weights 0: no vote carries more than another, so count them. */
	if (s == REDUCE_WEIGHTED_CONSENSUS && total_w > 0)
		agreement = fmin(1.0, v->group_w[win] / total_w);
	out->winner = win;
	out->answer = v->ans[win];
	out->n_agree = n_agree;
	out->agreement = agreement;
	out->confidence = fmin(1.0, v->group_w[win] / (double)n_agree * agreement);
	out->is_tie = false;
	for (size_t j = 0; j < v->n; j++)
		if (!(v->group[win] >> j & 1) &&
		    cmp_near(primary(v, s, j), primary(v, s, win)) == 0)
			out->is_tie = true;
}

enum brg_err reduce(enum reduce_strategy s, const struct candidate *c, size_t n,
                    struct reduction *out, struct brg_error *err)
{
	if (out)
		memset(out, 0, sizeof *out);
	if (!out || (!c && n > 0))
		return brg_fail(err, BRG_E_BAD_REQUEST, "reduce: no candidates or no result");
	if ((unsigned)s > REDUCE_HIGHEST_CONFIDENCE)
		return brg_fail(err, BRG_E_BAD_REQUEST, "reduce: unknown strategy %d", (int)s);
	if (n < 1 || n > REDUCE_MAX_CANDIDATES)
		return brg_fail(err, BRG_E_BAD_REQUEST, "reduce: %zu candidates, expected 1..%d", n,
		                REDUCE_MAX_CANDIDATES);
	for (size_t i = 0; i < n; i++)
		if (!c[i].text)
			return brg_fail(err, BRG_E_BAD_REQUEST,
			                "reduce: candidates[%zu].text is NULL", i);
	struct vote v;
	vote_init(&v, c, n);
	size_t win = 0;
	for (size_t i = 1; i < n; i++)
		if (rank(&v, s, i, win) > 0)
			win = i;
	finish(&v, s, win, out);
	return BRG_OK;
}
