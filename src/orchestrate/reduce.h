/*
 * reduce.h — reducers: from several answers to one question (ensemble
 * members, or n samples of one model: self-consistency) to one answer,
 * with an honest measure of how much the answers agree (spec:
 * inference-plane-setup → Reducer Strategies; issue: the reducers must
 * extract and normalise the final answer before voting).
 *
 * Published evidence for small local models: voting over several samples
 * helps on answers that can be checked — numbers, options, yes/no, short
 * facts — and only if equal answers are recognised as equal ("42", "42.0",
 * "The answer is 42."; "(B)", "b", "Option B").  So each text is first
 * reduced to an answer key; texts with no extractable short answer are
 * compared by word overlap instead.
 *
 * Pure functions (no threads, no heap, no global state), so every rule is
 * unit-tested and fuzzed, and any thread may call them.
 */
#ifndef BRG_ORCHESTRATE_REDUCE_H
#define BRG_ORCHESTRATE_REDUCE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define REDUCE_MAX_CANDIDATES 16
#define ANSWER_KEY_MAX        128

enum reduce_strategy {
	REDUCE_WEIGHTED_CONSENSUS, /* votes weighted by each candidate's confidence */
	REDUCE_MAJORITY_VOTE,      /* one candidate, one vote */
	REDUCE_HIGHEST_CONFIDENCE, /* the single most confident candidate */
};

/*
 * A critic's score in [0, 1] from its text: the last "score" followed by
 * "N/D", "N out of D", "N%", or a bare number (read as out of 1 when <= 1,
 * else out of 10); -1 when there is none or it is out of range ("11/10").
 * NULL reads as no score.  No heap; any thread.
 */
double answer_parse_score(const char *text);

/* -1 for an unknown name; names as in the spec ("weighted_consensus"...). */
int reduce_strategy_parse(const char *s);
const char *reduce_strategy_name(enum reduce_strategy s);

enum answer_kind {
	ANSWER_NUMBER, /* key: canonical decimal ("42", "-3.5"; "1/4" → "0.25"; "50%" → "50") */
	ANSWER_CHOICE, /* key: one upper-case letter A..J ("(b)", "Option B", "answer: b") */
	ANSWER_YESNO,  /* key: "yes" or "no" (also true/false, correct/incorrect) */
	ANSWER_SHORT,  /* key: a short phrase, lower-cased, punctuation and articles dropped */
	ANSWER_FREE,   /* nothing short to extract: compared by word overlap */
};

const char *answer_kind_name(enum answer_kind k);

struct answer {
	enum answer_kind kind;
	char key[ANSWER_KEY_MAX]; /* "" for ANSWER_FREE */
};

/*
 * The final answer of one model output.  Looks, in this order, for an
 * explicit marker near the end — the last "\boxed{…}", the last "####"
 * followed by a number (GSM8K), the sentence after the last "answer:" /
 * "answer is" / "answer =", the sentence after the last "therefore" /
 * "thus" / "hence" — else the last line with a letter or digit, and
 * classifies the first of these that holds a short answer (rules and
 * examples: docs/reducers.md; ANSWER_SHORT only after the first three
 * markers).  Never fails: an output with nothing short in it is
 * ANSWER_FREE.  'text' may be any bytes up to its NUL; a NULL text is
 * ANSWER_FREE; a NULL 'out' is ignored.  Linear in the text, no
 * allocation; the key is NUL-terminated valid UTF-8 (invalid input bytes
 * never reach it).  Any thread.
 */
void answer_extract(const char *text, struct answer *out);

/*
 * Similarity of two free texts in [0, 1]: word-set overlap (Jaccard:
 * |A ∩ B| / |A ∪ B|) over lower-cased words — runs of ASCII letters and
 * digits and non-ASCII bytes (Unicode punctuation such as curly quotes
 * and dashes separates words).  Reads the first 4096 words of each text.
 * 1 for two texts without words; NULL reads as "".  Symmetric.  Uses
 * about 64 KiB of stack, no heap.  Any thread.
 */
double answer_text_similarity(const char *a, const char *b);

struct candidate {
	const char *text;  /* the model's output */
	double confidence; /* in [0, 1]: e.g. exp(mean token log-probability); < 0 or NaN:
	                    * unknown; above 1: read as 1 */
};

struct reduction {
	size_t winner;        /* index into the candidates: the answer to return */
	struct answer answer; /* the winner's extracted answer */
	/* Candidates that agree with the winner, itself included: same kind
	 * and key, or — both ANSWER_FREE — similarity >= REDUCE_FREE_AGREE
	 * to the winner's text.  Different kinds never agree. */
	size_t n_agree;
	/* Agreement in [0, 1]: for majority_vote and highest_confidence the
	 * share of candidates that agree with the winner (n_agree / n); for
	 * weighted_consensus the agreeing candidates' share of the total
	 * weight, where a candidate's weight is its confidence (unknown: 0.5);
	 * if every weight is 0, n_agree / n. */
	double agreement;
	/* Confidence of the result in [0, 1]: the mean weight of the agreeing
	 * candidates times the agreement. */
	double confidence;
	/* A candidate that does not agree with the winner scored level on the
	 * strategy's first criterion (votes, weight, or confidence); the tie was
	 * broken as documented in reduce.c and docs/reducers.md. */
	bool is_tie;
};

/* Two free texts agree at this word overlap or more: most of their words
 * shared, as in a near-copy or a light rewording.  Two answers worded
 * independently often share less even when they say the same thing —
 * which is why a free-text vote is weak evidence (docs/reducers.md). */
#define REDUCE_FREE_AGREE 0.6

/*
 * Reduces n (1..REDUCE_MAX_CANDIDATES) candidates.  Each candidate's
 * group is the set of candidates that agree with it (for keyed answers:
 * equal key; for free texts: its similar neighbours).  The strategy picks
 * the best group — majority_vote by size, then weight, then lowest first
 * index; weighted_consensus by weight, then size, then lowest first index;
 * highest_confidence takes the most confident candidate, lowest index on
 * a tie — and within it the candidate that best represents the group
 * (most confident, then the one most similar to the others, then the
 * lowest index — deterministic).  On success *out is filled; on error it
 * is zeroed.  Errors: BRG_E_BAD_REQUEST for n out of range, NULL
 * candidates, out or candidate text, or an unknown strategy.  Borrows
 * everything; no heap; any thread.
 */
enum brg_err reduce(enum reduce_strategy s, const struct candidate *c, size_t n,
                    struct reduction *out, struct brg_error *err);

#endif
