/*
 * contamination.c — error contamination detection between steps (spec:
 * Error Contamination Detection: "errors are sticky — once incorrect
 * assumptions enter context, they bias subsequent reasoning").  A step's
 * output is checked before it becomes the next step's context; the
 * orchestrator acts on the report (spec: Actions on Detection).
 *
 * Everything works on words: runs of ASCII letters and digits and of
 * non-ASCII letters, with inner apostrophes (' or ’) kept, compared after
 * ASCII lower-casing.  A clause break is sentence punctuation followed by
 * a space or the end, a newline, a bracket, a quote or a dash.  Both
 * detectors walk the output once, in a window of the last WINDOW words, so
 * the check is linear, allocation-free and cannot be fooled by line
 * breaks or extra spaces between the words of a phrase.  The rules, with
 * what they miss and what they wrongly flag, are in docs/context.md.
 */
#include "orchestrate/context.h"

#include <stdio.h>
#include <string.h>

#include "orchestrate/context_int.h"

#define WORD_MAX     48 /* normalised bytes kept per word, NUL included */
#define WINDOW       8  /* a key phrase (4 words) + the negation window (3) + 1 */
#define KEY_WORDS    4
#define NEGATION_GAP 3
#define EXCERPT_MAX  96

struct word {
	size_t off, len;     /* in the source text */
	char norm[WORD_MAX]; /* lower-cased, ’ as ', NUL-terminated */
	bool is_long;        /* did not fit norm: never equal to a word of ours */
	bool after_break;    /* a clause break since the previous word */
};

struct words {
	const unsigned char *s;
	size_t len, pos;
};

/* ---- words ------------------------------------------------------------------------ */

static size_t char_len(const struct words *w, size_t pos)
{
	size_t n = utf8_len(w->s + pos, w->len - pos);
	return n ? n : 1;
}

static bool is_apostrophe(const unsigned char *s, size_t n)
{
	return (n == 1 && s[0] == '\'') ||
	       (n == 3 && s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0x98 || s[2] == 0x99));
}

/* Letters and digits; non-ASCII characters except Latin-1 punctuation and
 * symbols (U+0080..U+00BF), the General Punctuation block (U+2000..U+206F)
 * and CJK punctuation (U+3000..U+303F); invalid bytes separate words. */
static bool is_word_char(const unsigned char *s, size_t n)
{
	if (n == 1)
		return (s[0] >= '0' && s[0] <= '9') ||
		       ((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z');
	if (n == 2)
		return !(s[0] == 0xC2);
	if (n == 3)
		return !(s[0] == 0xE2 && (s[1] == 0x80 || s[1] == 0x81)) &&
		       !(s[0] == 0xE3 && s[1] == 0x80) &&
		       !(s[0] == 0xEF && s[1] == 0xBF && s[2] == 0xBD);
	return n == 4 && utf8_len(s, 4) == 4;
}

static bool is_break(const struct words *w, size_t pos, size_t n)
{
	const unsigned char *s = w->s + pos;
	if (n == 3 && s[0] == 0xE2 && s[1] == 0x80)
		return (s[2] >= 0x93 && s[2] <= 0x94) || s[2] == 0x9C || s[2] == 0x9D ||
		       s[2] == 0xA6;
	if (n != 1)
		return false;
	if (strchr("\n\r()[]{}\"", s[0]) && s[0] != '\0')
		return true;
	/* "16.2", "e.g", "1,000": punctuation inside a token is no break. */
	if (strchr(".,;:!?", s[0]) && s[0] != '\0')
		return pos + 1 >= w->len || !is_word_char(s + 1, char_len(w, pos + 1));
	return false;
}

static void norm_append(struct word *out, size_t *at, const unsigned char *s, size_t n)
{
	if (*at + n >= WORD_MAX) {
		out->is_long = true;
		return;
	}
	for (size_t k = 0; k < n; k++)
		out->norm[(*at)++] = (char)(s[k] >= 'A' && s[k] <= 'Z' ? s[k] | 0x20 : s[k]);
	out->norm[*at] = '\0';
}

static bool next_word(struct words *w, struct word *out)
{
	bool has_break = false;
	while (w->pos < w->len) {
		size_t n = char_len(w, w->pos);
		if (is_word_char(w->s + w->pos, n))
			break;
		has_break |= is_break(w, w->pos, n);
		w->pos += n;
	}
	if (w->pos >= w->len)
		return false;
	size_t at = 0;
	out->off = w->pos;
	out->after_break = has_break;
	out->is_long = false;
	out->norm[0] = '\0';
	while (w->pos < w->len) {
		const unsigned char *s = w->s + w->pos;
		size_t n = char_len(w, w->pos);
		if (is_word_char(s, n)) {
			norm_append(out, &at, s, n);
		} else if (is_apostrophe(s, n) && w->pos + n < w->len &&
		           is_word_char(s + n, char_len(w, w->pos + n))) {
			norm_append(out, &at, (const unsigned char *)"'", 1);
		} else {
			break;
		}
		w->pos += n;
	}
	out->len = w->pos - out->off;
	return true;
}

static bool is_word(const struct word *w, const char *s)
{
	/* The first byte settles most comparisons: one is made per word of the
	 * output for each decision. */
	return !w->is_long && w->norm[0] == s[0] && strcmp(w->norm, s) == 0;
}

static bool in_set(const struct word *w, const char *const *set)
{
	for (; *set; set++)
		if (is_word(w, *set))
			return true;
	return false;
}

/* ---- the tables ---------------------------------------------------------------------- */

/* spec: ErrorContaminationDetector.ERROR_MARKERS, then the same phrases as
 * models also write them.  Matched word by word, the last word as a prefix. */
static const struct {
	const char *name;
	const char *words[7];
} markers[] = {
    {"I apologize", {"i", "apologize"}},
    {"I made an error", {"i", "made", "an", "error"}},
    {"That's incorrect", {"that's", "incorrect"}},
    {"hallucination", {"hallucination"}},
    {"I don't have information about", {"i", "don't", "have", "information", "about"}},
    {"I apologise", {"i", "apologise"}},
    {"I made a mistake", {"i", "made", "a", "mistake"}},
    {"That is incorrect", {"that", "is", "incorrect"}},
    {"I do not have information about", {"i", "do", "not", "have", "information", "about"}},
};
#define N_MARKERS (sizeof markers / sizeof *markers)

/* Words that negate what follows them. */
static const char *const negations[] = {
    "not",      "no",        "never",   "cannot",   "without",   "avoid",      "avoids",
    "avoided",  "avoiding",  "against", "instead",  "rather",    "reject",     "rejects",
    "rejected", "rejecting", "abandon", "abandons", "abandoned", "abandoning", "neither",
    "nor",      "dont",      "doesnt",  "didnt",    "wont",      "wouldnt",    "shouldnt",
    "cant",     "isnt",      "arent",   "wasnt",    "werent",    "couldnt",    "mustnt",
    "neednt",   "hasnt",     "havent",  "hadnt",    NULL,
};

/* "not only X" and "not just X" do not negate X. */
static const char *const limiters[] = {"only", "just", "merely", NULL};

/* Leading words of a decision that say "we chose" rather than what. */
static const char *const choosing[] = {
    "use",    "uses",   "using",   "used",   "choose",   "chose",    "chosen", "pick",
    "picked", "adopt",  "adopted", "select", "selected", "prefer",   "keep",   "stick",
    "go",     "settle", "settled", "decide", "decided",  "decision", "we",     "i",
    "will",   "shall",  "should",  "must",   "to",       "the",      "a",      "an",
    "with",   "on",     "let's",   "lets",   NULL,
};

/* Words that end a key phrase: what follows qualifies it. */
static const char *const qualifiers[] = {
    "for",   "in",    "with",  "on",    "at",      "to",     "as",   "because",
    "since", "so",    "and",   "but",   "or",      "when",   "if",   "via",
    "over",  "by",    "from",  "of",    "instead", "rather", "than", "which",
    "that",  "where", "while", "until", "unless",  "into",   "per",  NULL,
};

static bool is_negation(const struct word *w)
{
	if (w->is_long)
		return false;
	size_t n = strlen(w->norm);
	return in_set(w, negations) || (n > 3 && strcmp(w->norm + n - 3, "n't") == 0);
}

/* ---- decisions ---------------------------------------------------------------------- */

struct key {
	char words[KEY_WORDS][WORD_MAX];
	size_t n;
	const char *decision;
	bool is_found;
	size_t ex_off, ex_len; /* the negating phrase in the output */
};

/*
 * The key phrase of a decision: its words after the leading "choosing"
 * words, up to a qualifier, a clause break or KEY_WORDS words.  False —
 * the decision is not checked — when it holds a negation up to there
 * (negative decisions would need the opposite test), a word too long to
 * compare, or fewer than 3 letters to match.
 */
static bool decision_key(const char *decision, struct key *k)
{
	struct words it = {(const unsigned char *)decision, strlen(decision), 0};
	struct word w;
	size_t letters = 0;
	k->n = 0;
	k->decision = decision;
	k->is_found = false;
	while (next_word(&it, &w)) {
		if (w.is_long || is_negation(&w))
			return false;
		if (k->n == 0 && in_set(&w, choosing))
			continue;
		if (k->n > 0 && (w.after_break || in_set(&w, qualifiers)))
			break;
		strcpy(k->words[k->n++], w.norm);
		letters += strlen(w.norm);
		if (k->n == KEY_WORDS)
			break;
	}
	return k->n > 0 && letters >= 3;
}

/* The word 'back' words before the newest one in the window. */
static const struct word *at(const struct word *win, size_t n_seen, size_t back)
{
	return &win[(n_seen - 1 - back) % WINDOW];
}

/* Whether the newest words end the key phrase with a negation at most
 * NEGATION_GAP words before it in the same clause; records the excerpt. */
static bool negates(const struct word *win, size_t n_seen, struct key *k)
{
	if (n_seen < k->n)
		return false;
	for (size_t j = 0; j < k->n; j++) {
		const struct word *w = at(win, n_seen, k->n - 1 - j);
		if (!is_word(w, k->words[j]) || (j > 0 && w->after_break))
			return false;
	}
	const struct word *first = at(win, n_seen, k->n - 1), *last = at(win, n_seen, 0);
	for (size_t g = 1; g <= NEGATION_GAP && !first->after_break; g++) {
		size_t back = k->n - 1 + g;
		if (back >= n_seen)
			break;
		const struct word *c = at(win, n_seen, back);
		bool is_limited = g > 1 && in_set(at(win, n_seen, back - 1), limiters);
		if (is_negation(c) && !(is_word(c, "not") && is_limited)) {
			k->ex_off = c->off;
			k->ex_len = last->off + last->len - c->off;
			return true;
		}
		if (c->after_break)
			break;
	}
	return false;
}

/* ---- markers ------------------------------------------------------------------------ */

struct marker_hit {
	bool is_found;
	size_t off, len;
};

static bool marker_matches(const struct word *win, size_t n_seen, size_t m)
{
	size_t n = 0;
	while (n < 7 && markers[m].words[n])
		n++;
	if (n_seen < n)
		return false;
	for (size_t j = 0; j < n; j++) {
		const struct word *w = at(win, n_seen, n - 1 - j);
		const char *want = markers[m].words[j];
		if (j > 0 && w->after_break)
			return false;
		if (j + 1 < n ? !is_word(w, want) : strncmp(w->norm, want, strlen(want)) != 0)
			return false;
	}
	return true;
}

/* ---- the check -------------------------------------------------------------------- */

static void add_issue(struct contamination_report *r, const char *type,
                      enum contamination_severity sev, const char *detail)
{
	if (sev > r->worst)
		r->worst = sev;
	if (r->n >= CONTAMINATION_MAX_ISSUES) {
		r->n_omitted++;
		return;
	}
	struct contamination_issue *i = &r->issues[r->n++];
	i->type = type;
	i->severity = sev;
	context_text_copy(i->detail, sizeof i->detail, detail, strlen(detail), true);
}

/* One pass over the output: every marker and key phrase found. */
static void scan(const char *output, struct key *keys, size_t n_keys, struct marker_hit *hits)
{
	struct word win[WINDOW];
	struct words it = {(const unsigned char *)output, strlen(output), 0};
	size_t n_seen = 0;
	while (next_word(&it, &win[n_seen % WINDOW])) {
		n_seen++;
		for (size_t m = 0; m < N_MARKERS; m++) {
			if (!hits[m].is_found && marker_matches(win, n_seen, m)) {
				const struct word *w = at(win, n_seen, 0);
				size_t words = 0;
				while (words < 7 && markers[m].words[words])
					words++;
				hits[m].is_found = true;
				hits[m].off = at(win, n_seen, words - 1)->off;
				hits[m].len = w->off + w->len - hits[m].off;
			}
		}
		for (size_t k = 0; k < n_keys; k++)
			if (!keys[k].is_found && negates(win, n_seen, &keys[k]))
				keys[k].is_found = true;
	}
}

static void report_contradictions(struct contamination_report *out, const char *output,
                                  const struct key *keys, size_t n_keys, bool is_critical)
{
	for (size_t k = 0; k < n_keys; k++) {
		if (!keys[k].is_found)
			continue;
		char decision[EXCERPT_MAX], excerpt[EXCERPT_MAX], detail[CONTAMINATION_DETAIL_MAX];
		context_text_copy(decision, sizeof decision, keys[k].decision,
		                  strlen(keys[k].decision), true);
		context_text_copy(excerpt, sizeof excerpt, output + keys[k].ex_off, keys[k].ex_len,
		                  true);
		snprintf(detail, sizeof detail, "output negates decision \"%s\": \"%s\"", decision,
		         excerpt);
		add_issue(out, "contradiction_detected",
		          is_critical ? CONTAM_CRITICAL : CONTAM_HIGH, detail);
	}
}

static void report_markers(struct contamination_report *out, const char *output,
                           const struct marker_hit *hits)
{
	for (size_t m = 0; m < N_MARKERS; m++) {
		if (!hits[m].is_found)
			continue;
		char excerpt[EXCERPT_MAX], detail[CONTAMINATION_DETAIL_MAX];
		context_text_copy(excerpt, sizeof excerpt, output + hits[m].off, hits[m].len, true);
		snprintf(detail, sizeof detail, "marker \"%s\": \"%s\"", markers[m].name, excerpt);
		add_issue(out, "error_marker_detected", CONTAM_WARNING, detail);
	}
}

void contamination_check(const struct handoff *h, const char *output,
                         struct contamination_report *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof *out);
	if (!output)
		output = "";
	struct key keys[HANDOFF_MAX_ITEMS];
	struct marker_hit hits[N_MARKERS] = {{0}};
	size_t n_keys = 0;
	const struct strlist *d = h ? &h->decisions_made : NULL;
	for (size_t i = 0; d && d->items && i < d->n && i < HANDOFF_MAX_ITEMS; i++)
		if (d->items[i] && decision_key(d->items[i], &keys[n_keys]))
			n_keys++;
	scan(output, keys, n_keys, hits);

	size_t n_contra = 0;
	for (size_t k = 0; k < n_keys; k++)
		n_contra += keys[k].is_found;
	bool is_accumulating =
	    h && h->active_errors.n > (size_t)(h->current_step < 0 ? 0 : h->current_step);
	/* Critical: the errors are already compounding and the output now
	 * turns on the plan too, or it turns on most of it — a fresh retry of
	 * the same trajectory is unlikely to do better. */
	bool is_critical = (n_contra > 0 && is_accumulating) || n_contra >= 3;
	if (is_accumulating) {
		char detail[CONTAMINATION_DETAIL_MAX];
		snprintf(detail, sizeof detail, "%zu active errors at step %d of %d",
		         h->active_errors.n, h->current_step, h->total_steps);
		add_issue(out, "error_accumulation", is_critical ? CONTAM_CRITICAL : CONTAM_HIGH,
		          detail);
	}
	report_contradictions(out, output, keys, n_keys, is_critical);
	report_markers(out, output, hits);
	out->is_valid = out->worst < CONTAM_HIGH;
	out->recommendation = out->worst == CONTAM_CRITICAL ? "abort"
	                      : out->worst == CONTAM_HIGH   ? "quarantine"
	                                                    : "proceed";
}

const char *contamination_severity_name(enum contamination_severity s)
{
	switch (s) {
	case CONTAM_WARNING:
		return "warning";
	case CONTAM_HIGH:
		return "high";
	case CONTAM_CRITICAL:
		return "critical";
	case CONTAM_NONE:
		break;
	}
	return "none";
}

enum brg_err contamination_apply(struct handoff *h, const struct contamination_report *r,
                                 struct brg_error *err)
{
	if (!h || !r)
		return brg_fail(err, BRG_E_BAD_REQUEST, "contamination_apply: no state or report");
	for (size_t i = 0; i < r->n && i < CONTAMINATION_MAX_ISSUES; i++) {
		const struct contamination_issue *is = &r->issues[i];
		if (is->severity != CONTAM_WARNING)
			continue;
		char line[CONTAMINATION_DETAIL_MAX + 64];
		snprintf(line, sizeof line, "step %d: %s: %s", h->current_step,
		         is->type ? is->type : "issue", is->detail);
		enum brg_err rc = handoff_add(&h->active_errors, line, err);
		if (rc)
			return rc;
	}
	return BRG_OK;
}
