/*
 * answer.c — the final answer of one model output as a short key that
 * equal answers share ("42", "B", "yes", "paris"), and word overlap for
 * outputs that have none.  The first half of the reducers (reduce.h):
 * reduce.c votes on what this file extracts.  User-facing rules and
 * examples: docs/reducers.md.
 *
 * Where the answer is.  One forward pass over the text records the last
 * occurrence of each marker; then up to five spans are tried in this order
 * and the first that yields a key wins:
 *
 *   1. the contents of the last \boxed{…}           (MATH style)
 *   2. the rest of the line after the last "####"   (GSM8K style; only
 *      when a number follows, so a markdown "#### Step 3" heading is not one)
 *   3. the sentence after the last "answer:", "answer is", "answer ="
 *   4. the sentence after the last "therefore", "thus", "hence"
 *   5. the last line that has a letter or digit in it
 *
 * What it is.  Within a span, in this order: a choice letter or a yes/no
 * word at its head ("(B) …", "Yes, …"); "option X" / "(X)" anywhere; the
 * last number; "(x)" in lower case anywhere; and — in spans 1 and 3 only,
 * where a marker vouches for it — a phrase of at most SHORT_MAX_WORDS
 * words.  A span that yields nothing hands over to the next.
 *
 * Bounds.  Marker search is one pass with constant work per byte; every
 * span is at most SPAN_MAX bytes; the last-line search visits each byte at
 * most once.  So extraction is linear in the text, reads nothing outside
 * it, and never allocates.  Keys are ASCII except SHORT keys, which keep
 * valid UTF-8 and drop invalid bytes, so a key is always valid UTF-8 and
 * can go into a JSON body as it is.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "orchestrate/answer_int.h"
#include "orchestrate/reduce.h"
#include "core/str.h"

/* ---- bytes ------------------------------------------------------------ */

/*
 * Length (2..4) of the valid UTF-8 sequence at p[0..len), 0 when there is
 * none; *cp gets its code point.  Reads continuation bytes one by one and
 * stops at the first that is not one, so on a NUL-terminated string any
 * 'len' is safe.
 */
size_t answer_utf8_decode(uchar *p, size_t len, uint32_t *cp)
{
	uint32_t v, min;
	size_t n;
	if (p[0] >= 0xC2 && p[0] <= 0xDF) {
		n = 2, v = p[0] & 0x1Fu, min = 0x80;
	} else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		n = 3, v = p[0] & 0x0Fu, min = 0x800;
	} else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		n = 4, v = p[0] & 0x07u, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if (i >= len || (p[i] & 0xC0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3Fu);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return n;
}

/*
 * Length of a Unicode punctuation or space character at p (curly quotes,
 * dashes, ellipsis, no-break space, guillemets, CJK full stop and
 * brackets, full-width ASCII punctuation), 0 for anything else.  Models
 * emit these around answers ("“Paris”") and they must not glue to words.
 */
size_t answer_uni_punct_len(uchar *p, size_t len)
{
	uint32_t cp = 0;
	size_t n = p[0] >= 0x80 ? answer_utf8_decode(p, len, &cp) : 0;
	if (n == 0)
		return 0;
	bool is_punct = cp == 0xA0 || cp == 0xA1 || cp == 0xAB || cp == 0xB7 || cp == 0xBB ||
	                cp == 0xBF || (cp >= 0x2000 && cp <= 0x206F) ||
	                (cp >= 0x3000 && cp <= 0x3003) || (cp >= 0x3008 && cp <= 0x3011) ||
	                (cp >= 0xFF01 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF1F);
	return is_punct ? n : 0;
}

/* Whether a word ends at p: end of span, or neither an ASCII letter or
 * digit nor a non-ASCII letter (a non-ASCII byte that is not punctuation). */
static bool is_boundary(uchar *p, uchar *end)
{
	if (p >= end)
		return true;
	if (*p < 0x80)
		return !is_alnum(*p);
	return answer_uni_punct_len(p, (size_t)(end - p)) > 0;
}

/* strlen(w) when the word w (lower case) starts at p, case-insensitively,
 * and ends at a word boundary; else 0. */
static size_t word_at(uchar *p, uchar *end, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (to_lower(p[i]) != (unsigned char)w[i])
			return 0;
	return is_boundary(p + n, end) ? n : 0;
}

static uchar *skip_space(uchar *p, uchar *end)
{
	while (p < end && is_space(*p))
		p++;
	return p;
}

/* Skips blanks and the decoration models put around answers: markdown
 * emphasis, quotes, colons, '>' and '#'.  Not '-', '+', '(' or '$': they
 * can belong to the answer. */
static uchar *skip_noise(uchar *p, uchar *end)
{
	while (p < end) {
		size_t k = answer_uni_punct_len(p, (size_t)(end - p));
		if (k > 0)
			p += k;
		else if (is_space(*p) || (*p != 0 && strchr("*_\"'`:>#~", *p)))
			p++;
		else
			break;
	}
	return p;
}

/* The first byte after closing decoration (emphasis, quotes). */
static uchar *skip_closers(uchar *p, uchar *end)
{
	while (p < end) {
		size_t k = answer_uni_punct_len(p, (size_t)(end - p));
		if (k > 0)
			p += k;
		else if (*p != 0 && strchr("*_\"'`", *p))
			p++;
		else
			break;
	}
	return p;
}

static void set_answer(struct answer *out, enum answer_kind kind, const char *key)
{
	out->kind = kind;
	str_copy(out->key, sizeof out->key, key);
}

/* ---- choices and yes/no ----------------------------------------------- */

static bool is_choice_letter(unsigned c)
{
	c = to_lower(c);
	return c >= 'a' && c <= 'j';
}

static void set_choice(struct answer *out, unsigned c)
{
	char key[2] = {(char)(to_lower(c) - 'a' + 'A'), '\0'};
	set_answer(out, ANSWER_CHOICE, key);
}

/* Words after which a lone head letter is still a choice: "B because …". */
static bool is_connective(uchar *p, uchar *end)
{
	static const char *const words[] = {"because", "since", "as", "which", "is"};
	for (size_t i = 0; i < sizeof words / sizeof *words; i++)
		if (word_at(p, end, words[i]))
			return true;
	return false;
}

/*
 * The letter after "option" or "choice": "B", "(b)", "[C]", ": d".  A
 * lower-case letter followed by a word is not one unless 'any_case' ("an
 * option a user has" names no option).
 */
static bool named_choice(uchar *p, uchar *end, bool any_case, struct answer *out)
{
	p = skip_noise(p, end);
	if (end - p >= 3 && (*p == '(' || *p == '[') && is_choice_letter(p[1]) &&
	    (p[2] == ')' || p[2] == ']')) {
		set_choice(out, p[1]);
		return true;
	}
	if (p >= end || !is_choice_letter(*p) || !is_boundary(p + 1, end))
		return false;
	uchar *q = skip_closers(p + 1, end);
	if (!any_case && *p >= 'a' && q < end && is_space(*q))
		return false;
	set_choice(out, *p);
	return true;
}

/*
 * A choice at the head of a span: "(B)", "[b]", "Option B", "choice (c)",
 * or a lone letter followed by the end, by one of ". ) : ]" and a blank
 * (in a marker span: by any punctuation), or by a connective ("B because
 * …").  "A cat sat" is not one: a letter followed by an ordinary word is
 * an article or a pronoun.
 */
static bool head_choice(struct span sp, bool is_marker, struct answer *out)
{
	uchar *end = sp.p + sp.len, *p = skip_noise(sp.p, end);
	size_t k = word_at(p, end, "option");
	k = k ? k : word_at(p, end, "choice");
	if (k > 0)
		return named_choice(p + k, end, true, out);
	if (end - p >= 3 && (*p == '(' || *p == '[') && is_choice_letter(p[1]) &&
	    (p[2] == ')' || p[2] == ']')) {
		set_choice(out, p[1]);
		return true;
	}
	if (p >= end || !is_choice_letter(*p) || !is_boundary(p + 1, end))
		return false;
	uchar *q = skip_closers(p + 1, end);
	bool ok = q >= end;
	if (!ok && strchr(".):]", *q) && *q != '\0')
		ok = q + 1 >= end || is_space(q[1]) || skip_closers(q + 1, end) > q + 1;
	if (!ok && is_marker && *q < 0x80 && !is_alnum(*q) && !is_space(*q))
		ok = true;
	if (!ok && is_space(*q))
		ok = is_connective(skip_space(q, end), end);
	if (ok)
		set_choice(out, *p);
	return ok;
}

/*
 * "option X" / "choice X" anywhere, and "(X)" not glued to a word ("f(A)"
 * is not one) — upper-case X only, or any case when 'any_case'.  The
 * first one wins: in "(B), not (A)" the answer comes first.
 */
static bool choice_anywhere(struct span sp, bool any_case, struct answer *out)
{
	uchar *end = sp.p + sp.len;
	for (uchar *q = sp.p; q < end; q++) {
		if (q > sp.p && is_alnum(q[-1]))
			continue;
		size_t k = any_case ? 0 : word_at(q, end, "option");
		k = k || any_case ? k : word_at(q, end, "choice");
		if (k > 0 && named_choice(q + k, end, false, out))
			return true;
		if (*q != '(' || end - q < 3 || q[2] != ')' || !is_choice_letter(q[1]))
			continue;
		if (any_case || (q[1] >= 'A' && q[1] <= 'J')) {
			set_choice(out, q[1]);
			return true;
		}
	}
	return false;
}

/*
 * A yes/no word at the head of a span: yes/no, true/false,
 * correct/incorrect.  Outside a marker span the word must stand alone or
 * be followed by punctuation ("No, because …"), so "No problem!" is not
 * an answer.
 */
static bool head_yesno(struct span sp, bool is_marker, struct answer *out)
{
	static const struct {
		const char *word, *key;
	} words[] = {{"yes", "yes"},  {"no", "no"},       {"true", "yes"},
	             {"false", "no"}, {"correct", "yes"}, {"incorrect", "no"}};
	uchar *end = sp.p + sp.len, *p = skip_noise(sp.p, end);
	for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
		size_t k = word_at(p, end, words[i].word);
		if (k == 0)
			continue;
		uchar *q = skip_closers(p + k, end);
		if (!is_marker && q < end && is_space(*q) && skip_space(q, end) < end)
			return false;
		set_answer(out, ANSWER_YESNO, words[i].key);
		return true;
	}
	return false;
}

/* ---- short phrases ---------------------------------------------------- */

/*
 * A short phrase: words lower-cased and joined by one space; ASCII and
 * Unicode punctuation, blanks and invalid bytes separate words, except
 * apostrophes and periods, which are dropped ("U.S." → "us", "don't" →
 * "dont").  One leading article is dropped.  False for no word, more than
 * SHORT_MAX_WORDS words, or a key that would not fit.
 */
static bool short_phrase(struct span sp, struct answer *out)
{
	char key[ANSWER_KEY_MAX];
	size_t len = 0, n_words = 0;
	bool in_word = false;
	uchar *end = sp.p + sp.len;
	for (uchar *q = sp.p; q < end;) {
		uint32_t cp = 0;
		size_t k = *q >= 0x80 ? answer_utf8_decode(q, (size_t)(end - q), &cp) : 1;
		bool is_punct = k > 1 && answer_uni_punct_len(q, (size_t)(end - q)) > 0;
		if (*q == '\'' || *q == '.' || cp == 0x2019) {
			q += k ? k : 1;
			continue;
		}
		if (k == 0 || is_punct || (*q < 0x80 && !is_alnum(*q))) {
			in_word = false;
			q += k ? k : 1;
			continue;
		}
		if (!in_word && ++n_words > SHORT_MAX_WORDS + 1)
			return false;
		if (len + k + 2 > sizeof key)
			return false;
		if (!in_word && len > 0)
			key[len++] = ' ';
		for (size_t i = 0; i < k; i++)
			key[len++] = (char)to_lower(q[i]);
		in_word = true;
		q += k;
	}
	key[len] = '\0';
	static const char *const articles[] = {"a ", "an ", "the "};
	for (size_t i = 0; i < 3 && n_words > 1; i++) {
		size_t n = strlen(articles[i]);
		if (strncmp(key, articles[i], n) == 0) {
			memmove(key, key + n, len - n + 1);
			n_words--;
			break;
		}
	}
	if (n_words == 0 || n_words > SHORT_MAX_WORDS)
		return false;
	set_answer(out, ANSWER_SHORT, key);
	return true;
}

/* ---- spans ------------------------------------------------------------ */

/* Cuts a span that hit SPAN_MAX back to its last blank, so that no token
 * (a number) is cut in two. */
static uchar *cut_at_space(uchar *p, uchar *q)
{
	for (uchar *r = q; r > p; r--)
		if (is_space(r[-1]))
			return r - 1;
	return q;
}

/* The sentence that starts at p, after blanks and decoration (so
 * "answer:\n\n42" finds 42): up to a line break, ". " "! " "? " or the
 * end, at most SPAN_MAX bytes. */
static struct span sentence_at(uchar *p, uchar *end)
{
	p = skip_noise(p, end);
	uchar *lim = (size_t)(end - p) > SPAN_MAX ? p + SPAN_MAX : end, *q = p;
	for (; q < lim && *q != '\n'; q++)
		if ((*q == '.' || *q == '!' || *q == '?') && (q + 1 >= end || is_space(q[1])))
			break;
	if (q == lim && lim < end)
		q = cut_at_space(p, q);
	return (struct span){p, (size_t)(q - p)};
}

/* "\text{B}" → "B": a LaTeX command whose braces hold the whole span is
 * unwrapped (a few levels: "\textbf{\text{B}}"). */
static struct span unwrap_command(struct span sp)
{
	for (int i = 0; i < 4 && sp.len >= 4 && sp.p[0] == '\\' && sp.p[sp.len - 1] == '}'; i++) {
		uchar *end = sp.p + sp.len, *r = sp.p + 1;
		while (r < end && is_alpha(*r))
			r++;
		if (r == sp.p + 1 || *r != '{')
			break;
		uchar *c = r;
		int depth = 0;
		for (; c < end; c++) {
			if (*c == '{')
				depth++;
			else if (*c == '}' && --depth == 0)
				break;
		}
		if (c != end - 1)
			break;
		sp = (struct span){r + 1, (size_t)(c - r - 1)};
	}
	return sp;
}

/* The contents of the braces opened just before p, nested braces allowed,
 * at most SPAN_MAX bytes. */
static struct span braced_at(uchar *p, uchar *end)
{
	uchar *lim = (size_t)(end - p) > SPAN_MAX ? p + SPAN_MAX : end, *q = p;
	int depth = 0;
	for (; q < lim; q++) {
		if (*q == '{')
			depth++;
		else if (*q == '}' && depth-- == 0)
			break;
	}
	return unwrap_command((struct span){p, (size_t)(q - p)});
}

/* The last line with a letter or digit (or any non-ASCII byte) in it,
 * trimmed; at most its last SPAN_MAX bytes, starting at a token. */
static struct span last_line(uchar *t, size_t len)
{
	uchar *end = t + len;
	while (end > t) {
		uchar *s = end;
		bool has_text = false;
		for (; s > t && s[-1] != '\n'; s--)
			has_text = has_text || is_alnum(s[-1]) || s[-1] >= 0x80;
		if (has_text) {
			if ((size_t)(end - s) > SPAN_MAX) {
				uchar *cut = end - SPAN_MAX, *r = cut;
				while (r < end && !is_space(*r))
					r++;
				s = r < end ? r : cut;
			}
			while (s < end && is_space(*s))
				s++;
			while (end > s && is_space(end[-1]))
				end--;
			return (struct span){s, (size_t)(end - s)};
		}
		if (s == t)
			break;
		end = s - 1;
	}
	return (struct span){t, 0};
}

struct marks {
	uchar *boxed;  /* just after the last "\boxed{" */
	uchar *hashes; /* just after the last "####" that a number follows */
	uchar *answer; /* just after the last "answer:" / "answer is" / "answer =" */
	uchar *so;     /* just after the last "therefore" / "thus" / "hence" */
};

/* "answer", blanks or emphasis, then ':' '=' or "is"; bytes to skip, or 0. */
static size_t answer_marker(uchar *p, uchar *end)
{
	static const char w[] = "answer";
	if ((size_t)(end - p) < sizeof w - 1)
		return 0;
	for (size_t i = 0; i < sizeof w - 1; i++)
		if (to_lower(p[i]) != (unsigned char)w[i])
			return 0;
	uchar *q = p + sizeof w - 1;
	while (q < end && (*q == ' ' || *q == '\t' || *q == '*' || *q == '_'))
		q++;
	if (q < end && (*q == ':' || *q == '='))
		return (size_t)(q + 1 - p);
	size_t k = word_at(q, end, "is");
	return k ? (size_t)(q + k - p) : 0;
}

/* "####", blanks, then the start of a number: the GSM8K answer line. */
static bool is_gsm8k_marker(uchar *p, uchar *end)
{
	uchar *q = p + 4;
	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	return q < end && (is_digit(*q) || (*q != '\0' && strchr("+-$.", *q)) || *q == 0xE2);
}

static void find_marks(uchar *t, size_t len, struct marks *m)
{
	uchar *end = t + len;
	memset(m, 0, sizeof *m);
	for (uchar *p = t; p < end; p++) {
		if (*p == '\\' && end - p > 7 && memcmp(p, "\\boxed{", 7) == 0) {
			m->boxed = p + 7;
		} else if (*p == '#' && (p == t || p[-1] != '#')) {
			uchar *q = p;
			while (q < end && *q == '#')
				q++;
			if (q - p == 4 && is_gsm8k_marker(p, end))
				m->hashes = q;
			p = q - 1;
		} else if (is_alpha(*p) && (p == t || !is_alnum(p[-1]))) {
			size_t k = answer_marker(p, end);
			if (k > 0) {
				m->answer = p + k;
			} else if ((k = word_at(p, end, "therefore")) ||
			           (k = word_at(p, end, "thus")) ||
			           (k = word_at(p, end, "hence"))) {
				m->so = p + k;
			}
		}
	}
}

/* Classifies one span; false when it holds no key (the next span is tried). */
static bool classify(struct span sp, bool is_marker, bool allow_short, struct answer *out)
{
	if (sp.len == 0)
		return false;
	return head_choice(sp, is_marker, out) || head_yesno(sp, is_marker, out) ||
	       choice_anywhere(sp, false, out) || answer_last_number(sp, out) ||
	       choice_anywhere(sp, true, out) || (allow_short && short_phrase(sp, out));
}

void answer_extract(const char *text, struct answer *out)
{
	if (!out)
		return;
	set_answer(out, ANSWER_FREE, "");
	if (!text)
		return;
	uchar *t = (uchar *)text;
	size_t len = strlen(text);
	uchar *end = t + len;
	struct marks m;
	find_marks(t, len, &m);
	if (m.boxed && classify(braced_at(m.boxed, end), true, true, out))
		return;
	if (m.hashes) {
		uchar *q = m.hashes;
		while (q < end && *q != '\n' && q - m.hashes < SPAN_MAX)
			q++;
		if (classify((struct span){m.hashes, (size_t)(q - m.hashes)}, true, false, out))
			return;
	}
	if (m.answer && classify(sentence_at(m.answer, end), true, true, out))
		return;
	if (m.so && classify(sentence_at(m.so, end), false, false, out))
		return;
	if (classify(last_line(t, len), false, false, out))
		return;
	set_answer(out, ANSWER_FREE, "");
}

const char *answer_kind_name(enum answer_kind k)
{
	switch (k) {
	case ANSWER_NUMBER:
		return "number";
	case ANSWER_CHOICE:
		return "choice";
	case ANSWER_YESNO:
		return "yesno";
	case ANSWER_SHORT:
		return "short";
	case ANSWER_FREE:
		return "free";
	}
	return "unknown";
}
