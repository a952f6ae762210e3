// sources: src/orchestrate/context.c src/orchestrate/handoff.c src/orchestrate/contamination.c
// sources: src/core/err.c src/core/buf.c src/core/utf8.c
// libs: -ljansson -lm
/*
 * fuzz_context.c — libFuzzer harness for orchestrate/context.c, handoff.c
 * and contamination.c.
 *
 * Input layout: byte 0 sets the state (bits 0-2: active errors to add,
 * bits 3-4: current_step - 1 of 4 steps, bits 5-7: the budget for the fit
 * in units of 4 tokens), bytes 1-4 a context length (little-endian); the
 * rest is split at NUL into the output, the goal, the step name, next,
 * forbidden, then up to 70 decisions.  Each piece is copied into a buffer
 * of exactly its size so that any read past the NUL is an ASan report;
 * the whole rest is also parsed as a handoff JSON document.
 *
 * Checks: every produced string is valid UTF-8 within its cap; list items
 * are unique; the trajectory block has its six lines; the contamination
 * report is deterministic and self-consistent (worst, is_valid,
 * recommendation, detail lines) and applying it is idempotent; the JSON
 * form round-trips byte for byte; budgets sum to the total and leave a
 * quarter; the estimate is sub-additive and at most two per byte; a fit
 * either fits its budget or fails with a budget or compression error.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrate/context.h"

#include "../common/utf8_check.h"

#define MAX_PIECES 75

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void check_text(const char *s, size_t max)
{
	check(s != NULL);
	size_t n = strlen(s);
	check(n <= max);
	check(valid_utf8((const unsigned char *)s, n));
}

/* One line: no control characters at all. */
static void check_line(const char *s, size_t max)
{
	check_text(s, max);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		check(*p >= 0x20 && *p != 0x7F);
}

static void check_list(const struct strlist *l)
{
	check(l->n <= HANDOFF_MAX_ITEMS);
	for (size_t i = 0; i < l->n; i++) {
		check_text(l->items[i], HANDOFF_ITEM_MAX);
		for (size_t j = 0; j < i; j++)
			check(strcmp(l->items[i], l->items[j]) != 0);
	}
}

static void check_trajectory(const struct handoff *h, const char *const *p)
{
	static const char *const prefixes[] = {"## Current Position", "- Goal: ", "- Step: ",
	                                       "- Previous: ",        "- Next: ", "- Forbidden: "};
	char *t = trajectory_render(h, p[0], p[1], p[2]);
	check_text(t, 8 * TRAJECTORY_FIELD_MAX);
	const char *line = t;
	for (size_t i = 0; i < 6; i++) {
		const char *end = strchr(line, '\n');
		check(end != NULL);
		check(strncmp(line, prefixes[i], strlen(prefixes[i])) == 0);
		for (const char *c = line; c < end; c++)
			check((unsigned char)*c >= 0x20 && *c != 0x7F);
		line = end + 1;
	}
	check(*line == '\0');
	free(t);
	char *r = handoff_render(h);
	check(r != NULL && valid_utf8((const unsigned char *)r, strlen(r)));
	free(r);
}

static void check_report(struct handoff *h, const char *output)
{
	struct contamination_report a, b;
	memset(&a, 0x55, sizeof a);
	memset(&b, 0xAA, sizeof b);
	contamination_check(h, output, &a);
	contamination_check(h, output, &b);
	check(a.n <= CONTAMINATION_MAX_ISSUES && a.n == b.n && a.n_omitted == b.n_omitted);
	check(a.worst == b.worst && a.is_valid == b.is_valid);
	check(a.is_valid == (a.worst < CONTAM_HIGH));
	check(strcmp(a.recommendation, a.worst == CONTAM_CRITICAL ? "abort"
	                               : a.worst == CONTAM_HIGH   ? "quarantine"
	                                                          : "proceed") == 0);
	enum contamination_severity max = CONTAM_NONE, prev = CONTAM_CRITICAL;
	for (size_t i = 0; i < a.n; i++) {
		const struct contamination_issue *is = &a.issues[i];
		check(memchr(is->detail, '\0', sizeof is->detail) != NULL);
		check_line(is->detail, CONTAMINATION_DETAIL_MAX - 1);
		check(strcmp(is->detail, b.issues[i].detail) == 0 &&
		      is->severity == b.issues[i].severity);
		check(strcmp(is->type, "error_marker_detected") == 0 ||
		      strcmp(is->type, "contradiction_detected") == 0 ||
		      strcmp(is->type, "error_accumulation") == 0);
		check(is->severity >= CONTAM_WARNING && is->severity <= CONTAM_CRITICAL);
		check(is->severity <= prev); /* most severe first */
		prev = is->severity;
		max = is->severity > max ? is->severity : max;
	}
	check(a.n_omitted > 0 ? a.worst >= max : a.worst == max);
	check((a.n == 0) == (a.worst == CONTAM_NONE) || a.n_omitted > 0);

	size_t before = h->active_errors.n;
	enum brg_err rc = contamination_apply(h, &a, NULL);
	check(rc == BRG_OK || rc == BRG_E_CONTEXT_BUDGET);
	size_t after = h->active_errors.n;
	check(after >= before);
	rc = contamination_apply(h, &a, NULL);
	check(rc == BRG_OK || rc == BRG_E_CONTEXT_BUDGET);
	if (rc == BRG_OK)
		check(h->active_errors.n == after);
	check_list(&h->active_errors);
}

static void check_json(const struct handoff *h)
{
	char *json = NULL, *again = NULL;
	struct handoff back;
	check(handoff_to_json(h, &json, NULL) == BRG_OK);
	check(handoff_from_json(json, strlen(json), &back, NULL) == BRG_OK);
	check(handoff_to_json(&back, &again, NULL) == BRG_OK);
	check(strcmp(json, again) == 0);
	free(json);
	free(again);
	handoff_fini(&back);
}

static void check_parse(const uint8_t *data, size_t size)
{
	struct handoff h;
	enum brg_err rc = handoff_from_json((const char *)data, size, &h, NULL);
	if (rc == BRG_OK) {
		check(handoff_validate(&h, NULL) == BRG_OK);
		check_json(&h);
	} else {
		check(rc == BRG_E_HANDOFF_INVALID);
		check(h.goal == NULL && h.decisions_made.n == 0);
	}
	handoff_fini(&h);
}

static void check_budget(int length)
{
	struct context_budget b;
	enum brg_err rc = context_budget_for(length, &b, NULL);
	if (length < CONTEXT_MIN_LENGTH) {
		check(rc == BRG_E_CONTEXT_BUDGET && b.total == 0);
		return;
	}
	check(rc == BRG_OK);
	long long sum =
	    (long long)b.system + b.trajectory + b.handoff + b.user_query + b.generation;
	check(sum == length && b.generation >= (length + 3LL) / 4);
	check(b.system >= 32 && b.trajectory >= 48 && b.handoff >= 32 && b.user_query >= 32);
	double u = context_utilization(&b, length / 2);
	check(u >= 0 && u <= 1);
}

static void check_estimate(const char *s)
{
	size_t n = strlen(s);
	int all = context_estimate_tokens(s);
	check(all >= 0 && (size_t)all <= 2 * n);
	char *head = strndup(s, n / 2);
	check(head != NULL);
	check(all <= context_estimate_tokens(head) + context_estimate_tokens(s + n / 2));
	free(head);
	char *p = context_compression_prompt(s, 100);
	check_text(p, (size_t)-1);
	free(p);
}

/* Keeps the first half of the bytes, UTF-8 or not: context_fit() must
 * clean up after it. */
static char *halve(void *ud, const char *text, int target_tokens, double ratio,
                   struct brg_error *err)
{
	(void)ud;
	check(target_tokens >= 1 && ratio > 0 && ratio < 0.9 + 1e-9);
	(void)err;
	return strndup(text, strlen(text) / 2);
}

static void check_fit(const char *s, int budget)
{
	struct fit_result r;
	struct brg_error err;
	brg_error_clear(&err);
	enum brg_err rc = context_fit(s, budget, context_estimate_count, halve, NULL, &r, &err);
	if (rc == BRG_OK) {
		check_text(r.text, (size_t)-1);
		check(r.tokens <= budget && r.tokens == context_estimate_tokens(r.text));
		check(r.iterations <= CONTEXT_FIT_MAX_ITERATIONS &&
		      r.compressed == (r.iterations > 0));
		fit_result_fini(&r);
	} else {
		check(rc == BRG_E_COMPRESSION || rc == BRG_E_CONTEXT_BUDGET);
		check(r.text == NULL && err.code == rc);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5)
		return 0;
	uint8_t flags = data[0];
	int32_t length;
	memcpy(&length, data + 1, 4);
	check_parse(data + 5, size - 5);

	char *piece[MAX_PIECES];
	size_t n = 0, at = 5;
	while (n < MAX_PIECES && at <= size) {
		const uint8_t *nul = memchr(data + at, 0, size - at);
		size_t len = nul ? (size_t)(nul - (data + at)) : size - at;
		piece[n] = malloc(len + 1);
		if (!piece[n])
			break;
		memcpy(piece[n], data + at, len);
		piece[n][len] = '\0';
		n++;
		at += len + 1;
	}
	const char *output = n > 0 ? piece[0] : "";
	struct handoff h;
	if (handoff_init(&h, "fuzz", n > 1 ? piece[1] : NULL, 4, NULL) != BRG_OK)
		check(handoff_init(&h, "fuzz", "goal", 4, NULL) == BRG_OK);
	check_text(h.goal, (size_t)-1);
	h.current_step = ((flags >> 3) & 3) + 1;
	for (size_t i = 5; i < n; i++) {
		enum brg_err rc = handoff_add(&h.decisions_made, piece[i], NULL);
		check(rc == BRG_OK || (rc == BRG_E_CONTEXT_BUDGET && h.decisions_made.n == 64));
	}
	check_list(&h.decisions_made);
	for (int i = 0; i < (flags & 7); i++) {
		char e[16] = "error 0";
		e[6] = (char)('0' + i);
		check(handoff_add(&h.active_errors, e, NULL) == BRG_OK);
	}
	check(handoff_set_context(&h, output, NULL) == BRG_OK);
	const char *fields[3] = {n > 2 ? piece[2] : NULL, n > 3 ? piece[3] : NULL,
	                         n > 4 ? piece[4] : NULL};
	check_trajectory(&h, fields);
	check_report(&h, output);
	check_report(&h, n > 5 ? piece[5] : NULL);
	check_json(&h);
	check_budget(length);
	check_estimate(output);
	check_fit(output, (flags >> 5) * 4);
	handoff_fini(&h);
	for (size_t i = 0; i < n; i++)
		free(piece[i]);
	return 0;
}
