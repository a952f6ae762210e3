/*
 * context.c — token budgets, fit-to-budget with compression, the
 * compression prompt, the fallback token estimate, and the text cleaning
 * that every string of the context module goes through (spec: Context
 * Management).  See context.h for the contracts and docs/context.md for
 * the reasoning behind each number.
 *
 * Invariant: every string this file hands out was built by
 * context_text_append(), so it is valid UTF-8 without NUL bytes.
 */
#include "orchestrate/context.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrate/context_int.h"

/* ---- text cleaning --------------------------------------------------------- */

bool context_is_blank(const char *s)
{
	if (!s)
		return true;
	for (; *s; s++)
		if ((unsigned char)*s > 0x20 && *s != 0x7F)
			return false;
	return true;
}

/* Characters that folding turns into a space: ASCII whitespace and
 * controls, C1 controls (U+0080..U+009F, NEL among them), and the Unicode
 * line and paragraph separators — everything a renderer may start a new
 * line at. */
static bool is_fold_char(const unsigned char *s, size_t n)
{
	if (n == 1)
		return s[0] <= 0x20 || s[0] == 0x7F;
	if (n == 2)
		return s[0] == 0xC2 && s[1] <= 0x9F;
	return n == 3 && s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0xA8 || s[2] == 0xA9);
}

/* Where cleaned text goes: a growable buffer or a fixed array. */
struct out {
	struct buf *b;
	char *dst;
	size_t len, max; /* bytes written by this call, and its limit */
	bool is_full;
	enum brg_err err;
};

static bool put(struct out *o, const char *p, size_t n)
{
	if (o->len + n > o->max) {
		o->is_full = true;
		return false;
	}
	if (o->b) {
		enum brg_err e = buf_append(o->b, p, n);
		if (e) {
			o->err = e;
			return false;
		}
	} else {
		memcpy(o->dst + o->len, p, n);
	}
	o->len += n;
	return true;
}

/* Cuts what this call wrote back to max - 3 bytes at a character boundary
 * (and a trailing space) and ends it with "…". */
static void cut(struct out *o, char *base)
{
	size_t at = o->max - 3;
	if (at >= o->len) /* the end of what was written is a boundary */
		at = o->len;
	else
		while (at > 0 && ((unsigned char)base[at] & 0xC0) == 0x80)
			at--;
	while (at > 0 && base[at - 1] == ' ')
		at--;
	if (o->b) {
		o->b->len -= o->len - at;
		o->b->data[o->b->len] = '\0';
	}
	o->len = at;
	o->is_full = false;
	put(o, CONTEXT_ELLIPSIS, 3);
}

/* Writes the verbatim bytes src[*span, *span + *span_len) collected so far:
 * one copy per run of clean text rather than one per character. */
static void flush(struct out *o, const char *src, size_t span, size_t *span_len)
{
	if (*span_len > 0)
		put(o, src + span, *span_len);
	*span_len = 0;
}

static void clean(struct out *o, const char *src, size_t len, bool fold)
{
	const unsigned char *u = (const unsigned char *)src;
	size_t start = o->b ? o->b->len : 0, span = 0, span_len = 0;
	bool has_space = false;
	for (size_t i = 0; i < len && !o->is_full && !o->err;) {
		size_t n = utf8_len(u + i, len - i);
		if (n && fold && is_fold_char(u + i, n)) {
			flush(o, src, span, &span_len);
			has_space = o->len > 0;
			i += n;
			continue;
		}
		if (has_space) {
			flush(o, src, span, &span_len);
			put(o, " ", 1);
			has_space = false;
			continue; /* this character again, now with nothing pending */
		}
		if (n == 0) {
			flush(o, src, span, &span_len);
			put(o, CONTEXT_REPLACEMENT, 3);
			i++;
			continue;
		}
		if (o->len + span_len + n > o->max) {
			flush(o, src, span, &span_len);
			o->is_full = true;
			break;
		}
		if (span_len == 0)
			span = i;
		span_len += n;
		i += n;
	}
	if (!o->is_full && !o->err)
		flush(o, src, span, &span_len);
	if (o->is_full && !o->err)
		cut(o, o->b ? o->b->data + start : o->dst);
}

enum brg_err context_text_append(struct buf *b, const char *src, size_t len, size_t max, bool fold)
{
	struct out o = {.b = b, .max = max};
	clean(&o, src, len, fold);
	return o.err;
}

void context_text_copy(char *dst, size_t cap, const char *src, size_t len, bool fold)
{
	struct out o = {.dst = dst, .max = cap - 1};
	clean(&o, src ? src : "", src ? len : 0, fold);
	dst[o.len] = '\0';
}

char *context_text_dup(const char *s, size_t max)
{
	struct buf b;
	buf_init(&b, CONTEXT_TEXT_UNLIMIT);
	if (context_text_append(&b, s, strlen(s), max, false)) {
		buf_fini(&b);
		return NULL;
	}
	return buf_take(&b);
}

/* ---- budgets ---------------------------------------------------------------- */

/* The spec's two examples (spec: Context Budget Allocation), the floors
 * below which a part stops being useful, in the order system, trajectory,
 * handoff, user_query. */
#define ANCHOR_LOW  8192
#define ANCHOR_HIGH 131072
static const int at_low[4] = {500, 300, 1500, 2000};
static const int at_high[4] = {1000, 500, 4000, 32000};
static const int floor_of[4] = {32, 48, 32, 32};

static double share_for(int i, int total)
{
	double x = (double)total / ANCHOR_LOW;
	if (total < ANCHOR_LOW)
		return at_low[i] * x;
	/* log2(ANCHOR_HIGH / ANCHOR_LOW) = 4 doublings between the anchors. */
	double k = log2((double)at_high[i] / at_low[i]) / 4.0;
	return at_low[i] * pow(x, k);
}

/* Rounding each part on its own can make two of them grow by one token
 * as the context grows by one, so the answer's share would shrink.
 * Rounding the running sum instead (user_query first, so it too only
 * grows) keeps every part within a token of its share, the anchors
 * exact, and generation non-decreasing: the shares grow by less than one
 * token per token. */
static const int rounding_order[4] = {3, 2, 0, 1};

enum brg_err context_budget_for(int context_length, struct context_budget *out,
                                struct brg_error *err)
{
	if (!out)
		return brg_fail(err, BRG_E_BAD_REQUEST, "context_budget_for: no output");
	memset(out, 0, sizeof *out);
	if (context_length < CONTEXT_MIN_LENGTH) {
		brg_error_detail_int(err, "context_length", context_length);
		brg_error_detail_int(err, "minimum", CONTEXT_MIN_LENGTH);
		return brg_fail(err, BRG_E_CONTEXT_BUDGET,
		                "a context of %d tokens is too small to share between prompt and "
		                "answer (minimum %d)",
		                context_length, CONTEXT_MIN_LENGTH);
	}
	long part[4], sum = 0;
	double acc = 0;
	for (int k = 0; k < 4; k++) {
		int i = rounding_order[k];
		double share = share_for(i, context_length);
		acc += share < floor_of[i] ? floor_of[i] : share;
		part[i] = lround(acc) - sum;
		sum += part[i];
	}
	/* The floors may have eaten the answer's quarter: take it back from the
	 * handoff (compressible), then from the query. */
	long want = ((long)context_length + 3) / 4;
	for (int i = 2; i < 4 && context_length - sum < want; i++) {
		long give = part[i] - floor_of[i];
		long need = want - (context_length - sum);
		give = give < need ? give : need;
		part[i] -= give;
		sum -= give;
	}
	/* Holds for every length from CONTEXT_MIN_LENGTH up: the floors sum to
	 * 3/4 of it. */
	if (context_length - sum < want)
		return brg_fail(err, BRG_E_INTERNAL, "budget rule broken at %d", context_length);
	out->total = context_length;
	out->system = (int)part[0];
	out->trajectory = (int)part[1];
	out->handoff = (int)part[2];
	out->user_query = (int)part[3];
	out->generation = (int)(context_length - sum);
	return BRG_OK;
}

double context_utilization(const struct context_budget *b, int used_tokens)
{
	if (!b || b->total <= 0 || used_tokens <= 0)
		return 0.0;
	if (used_tokens >= b->total)
		return 1.0;
	return (double)used_tokens / b->total;
}

/* ---- fit to budget ------------------------------------------------------------ */

void fit_result_fini(struct fit_result *r)
{
	if (!r)
		return;
	free(r->text);
	memset(r, 0, sizeof *r);
}

/* The state of one fit: the shortest text so far and why the last
 * compression result was thrown away. */
struct fit {
	char *text;
	int tokens;
	char last_failure[128];
};

static enum brg_err count_failed(int max_tokens, struct brg_error *err)
{
	brg_error_detail_int(err, "budget", max_tokens);
	return brg_fail(err, BRG_E_CONTEXT_BUDGET, "cannot count the tokens of the context");
}

/*
 * One compression attempt.  BRG_OK with f updated when the result is
 * shorter; BRG_OK with f unchanged and last_failure set when it was
 * discarded; an error only when counting fails or memory runs out.
 */
static enum brg_err compress_once(struct fit *f, int max_tokens, token_count_fn count,
                                  compress_fn compress, void *ud, struct brg_error *err)
{
	struct brg_error cerr;
	brg_error_clear(&cerr);
	int target = (int)floor(max_tokens * CONTEXT_FIT_MARGIN);
	double ratio = (double)max_tokens / f->tokens * CONTEXT_FIT_MARGIN;
	char *raw = compress(ud, f->text, target < 1 ? 1 : target, ratio, &cerr);
	if (!raw) {
		const char *why = cerr.message[0] ? cerr.message : "the compressor failed";
		context_text_copy(f->last_failure, sizeof f->last_failure, why, strlen(why), true);
		return BRG_OK;
	}
	char *c = context_text_dup(raw, CONTEXT_TEXT_UNLIMIT);
	free(raw);
	if (!c)
		return brg_fail(err, BRG_E_NOMEM, "out of memory compressing the context");
	if (context_is_blank(c)) {
		free(c);
		snprintf(f->last_failure, sizeof f->last_failure,
		         "the compressor returned no text");
		return BRG_OK;
	}
	int n = count(ud, c);
	if (n < 0) {
		free(c);
		return count_failed(max_tokens, err);
	}
	if (n >= f->tokens) {
		free(c);
		snprintf(f->last_failure, sizeof f->last_failure,
		         "the compressor returned %d tokens for %d", n, f->tokens);
		return BRG_OK;
	}
	free(f->text);
	f->text = c;
	f->tokens = n;
	return BRG_OK;
}

static enum brg_err cannot_fit(const struct fit *f, int max_tokens, bool is_attempted,
                               struct brg_error *err)
{
	brg_error_detail_int(err, "current_tokens", f->tokens);
	brg_error_detail_int(err, "budget", max_tokens);
	if (!is_attempted) {
		brg_error_detail_bool(err, "compression_attempted", 0);
		return brg_fail(err, BRG_E_CONTEXT_BUDGET, "Context budget exceeded: %d/%d tokens",
		                f->tokens, max_tokens);
	}
	brg_error_detail_int(err, "iterations", CONTEXT_FIT_MAX_ITERATIONS);
	brg_error_detail_bool(err, "compression_attempted", 1);
	if (f->last_failure[0])
		brg_error_detail_str(err, "last_failure", f->last_failure);
	return brg_fail(err, BRG_E_COMPRESSION,
	                "Could not compress to %d tokens after %d iterations (shortest: %d tokens)",
	                max_tokens, CONTEXT_FIT_MAX_ITERATIONS, f->tokens);
}

enum brg_err context_fit(const char *text, int max_tokens, token_count_fn count,
                         compress_fn compress, void *ud, struct fit_result *out,
                         struct brg_error *err)
{
	if (!out)
		return brg_fail(err, BRG_E_BAD_REQUEST, "context_fit: no output");
	memset(out, 0, sizeof *out);
	if (!text || !count)
		return brg_fail(err, BRG_E_BAD_REQUEST, "context_fit: no text or no counter");
	struct fit f = {.text = context_text_dup(text, CONTEXT_TEXT_UNLIMIT)};
	enum brg_err rc = BRG_OK;
	if (!f.text)
		return brg_fail(err, BRG_E_NOMEM, "out of memory fitting the context");
	f.tokens = count(ud, f.text);
	if (f.tokens < 0) {
		rc = count_failed(max_tokens, err);
		goto fail;
	}
	int it = 0;
	if (f.tokens > max_tokens && (!compress || max_tokens < 1)) {
		rc = cannot_fit(&f, max_tokens, false, err);
		goto fail;
	}
	while (f.tokens > max_tokens && it < CONTEXT_FIT_MAX_ITERATIONS) {
		it++;
		rc = compress_once(&f, max_tokens, count, compress, ud, err);
		if (rc)
			goto fail;
	}
	if (f.tokens > max_tokens) {
		rc = cannot_fit(&f, max_tokens, true, err);
		goto fail;
	}
	out->text = f.text;
	out->tokens = f.tokens;
	out->iterations = it;
	/* Past iteration 0 only an accepted, shorter result can fit. */
	out->compressed = it > 0;
	return BRG_OK;
fail:
	free(f.text);
	return rc;
}

/* ---- compression prompt ---------------------------------------------------- */

/* spec: Compression Strategy — the Preserve and Drop columns, in order. */
static const char compression_system[] =
    "You compress the working notes that one step of a multi-step task hands to the next "
    "step. Rewrite the notes you are given so that they are short enough for the stated "
    "target and lose nothing the next step needs.\n"
    "\n"
    "Keep, stated once and plainly:\n"
    "- decisions made;\n"
    "- constraints discovered;\n"
    "- open questions;\n"
    "- key evidence references (file names, URLs, identifiers, numbers, quotes that "
    "decisions rest on);\n"
    "- error summaries, one line each, for errors that are still open.\n"
    "\n"
    "Drop:\n"
    "- raw reasoning chains (how a decision was reached);\n"
    "- verbose explanations and examples;\n"
    "- stack traces and logs;\n"
    "- intermediate outputs and drafts;\n"
    "- the details of errors that were resolved.\n"
    "\n"
    "Do not add facts, opinions or advice, do not answer the task, and do not comment on "
    "the notes. Write short bullet lines under the headings Decisions, Constraints, Open "
    "questions, Evidence and Errors, leaving out a heading with nothing under it. Output "
    "only the compressed notes.";

const char *context_compression_system(void)
{
	return compression_system;
}

char *context_compression_prompt(const char *text, int target_tokens)
{
	if (!text || target_tokens < 1)
		return NULL;
	struct buf b;
	buf_init(&b, CONTEXT_TEXT_UNLIMIT);
	/* About 3/4 of a word per token in English (context_estimate_tokens()
	 * is about 1.3 tokens per word); a word count is what a small model
	 * can aim for. */
	long words = (long)target_tokens * 3 / 4;
	if (buf_appendf(&b,
	                "Compress these notes to at most %d tokens (about %ld words).\n\n"
	                "<context>\n",
	                target_tokens, words < 1 ? 1 : words) ||
	    context_text_append(&b, text, strlen(text), CONTEXT_TEXT_UNLIMIT, false) ||
	    buf_append(&b, "\n</context>", 11)) {
		buf_fini(&b);
		return NULL;
	}
	return buf_take(&b);
}

/* ---- token estimate ---------------------------------------------------------- */

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

int context_estimate_tokens(const char *text)
{
	if (!text)
		return 0;
	const unsigned char *s = (const unsigned char *)text;
	unsigned long long n = 0;
	while (*s && n < INT_MAX) {
		size_t run = 0;
		if (is_alpha(*s)) {
			while (is_alpha(s[run]))
				run++;
			n += (run + 2) / 3;
		} else if (is_digit(*s)) {
			/* Llama-family tokenizers split numbers into single digits,
			 * and the number itself often starts a new token. */
			while (is_digit(s[run]))
				run++;
			n += run + 1;
		} else {
			run = 1;
			n += *s != ' ';
		}
		s += run;
	}
	return n < INT_MAX ? (int)n : INT_MAX;
}

int context_estimate_count(void *ud, const char *text)
{
	(void)ud;
	return context_estimate_tokens(text);
}
