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

#include "orchestrate/reduce.h"

#define SPAN_MAX        512  /* bytes of one answer span */
#define SHORT_MAX_WORDS 8    /* a longer phrase is not a short answer */
#define SIM_MAX_WORDS   4096 /* words of each text that similarity reads */
#define DEC_DIGITS      40   /* significant digits a number key keeps */
#define DEC_EXP_MAX     1000000

typedef const unsigned char uchar;

struct span {
	uchar *p;
	size_t len;
};

/* ---- bytes ------------------------------------------------------------ */

static bool is_digit(unsigned c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(unsigned c)
{
	return is_digit(c) || is_alpha(c);
}

static bool is_space(unsigned c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static unsigned char to_lower(unsigned c)
{
	return (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

/*
 * Length (2..4) of the valid UTF-8 sequence at p[0..len), 0 when there is
 * none; *cp gets its code point.  Reads continuation bytes one by one and
 * stops at the first that is not one, so on a NUL-terminated string any
 * 'len' is safe.
 */
static size_t utf8_decode(uchar *p, size_t len, uint32_t *cp)
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
static size_t uni_punct_len(uchar *p, size_t len)
{
	uint32_t cp = 0;
	size_t n = p[0] >= 0x80 ? utf8_decode(p, len, &cp) : 0;
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
	return uni_punct_len(p, (size_t)(end - p)) > 0;
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
		size_t k = uni_punct_len(p, (size_t)(end - p));
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
		size_t k = uni_punct_len(p, (size_t)(end - p));
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
	snprintf(out->key, sizeof out->key, "%s", key);
}

/* ---- numbers ---------------------------------------------------------- */

/*
 * A decimal number kept as text, so "0.1", "1e-1" and "0.10" become the
 * same key without binary rounding: value = 0.d[0..n) × 10^point, with no
 * leading zeros in d.  Digits past DEC_DIGITS are dropped (a key, not
 * arithmetic).
 */
struct dec {
	bool is_neg;
	char d[DEC_DIGITS];
	size_t n;
	long point;
};

static void dec_push(struct dec *x, unsigned c, bool is_frac)
{
	if (x->n == 0 && c == '0') {
		if (is_frac)
			x->point--;
		return;
	}
	if (x->n < DEC_DIGITS)
		x->d[x->n++] = (char)c;
	if (!is_frac && x->point < DEC_EXP_MAX)
		x->point++;
}

static size_t read_digits(uchar *p, uchar *end, struct dec *x, bool is_frac)
{
	uchar *q = p;
	for (; q < end && is_digit(*q); q++)
		dec_push(x, *q, is_frac);
	return (size_t)(q - p);
}

/* Digits with optional thousands separators: "1,234,567" but not "1234,567"
 * (a first group longer than three) nor "1,23" (a group not of three). */
static size_t read_int_part(uchar *p, uchar *end, struct dec *x)
{
	size_t k = read_digits(p, end, x, false);
	if (k == 0 || k > 3)
		return k;
	while (end - (p + k) >= 4 && p[k] == ',' && is_digit(p[k + 1]) && is_digit(p[k + 2]) &&
	       is_digit(p[k + 3]) && (end - (p + k) == 4 || !is_digit(p[k + 4]))) {
		read_digits(p + k + 1, p + k + 4, x, false);
		k += 4;
	}
	return k;
}

/* "e+12" after a mantissa; 0 (nothing consumed) when no digit follows. */
static size_t read_exponent(uchar *p, uchar *end, struct dec *x)
{
	uchar *q = p + 1;
	bool is_neg = false;
	if (q < end && (*q == '+' || *q == '-'))
		is_neg = *q++ == '-';
	if (q >= end || !is_digit(*q))
		return 0;
	long e = 0;
	for (; q < end && is_digit(*q); q++)
		if (e < DEC_EXP_MAX)
			e = e * 10 + (*q - '0');
	x->point += is_neg ? -e : e;
	return (size_t)(q - p);
}

/* An unsigned decimal at p: digits[,ddd]*[.digits][e±digits] or .digits.
 * Returns the bytes read, 0 when no number starts at p. */
static size_t read_decimal(uchar *p, uchar *end, struct dec *x)
{
	memset(x, 0, sizeof *x);
	uchar *q = p;
	size_t k = read_int_part(q, end, x);
	q += k;
	if (end - q >= 2 && *q == '.' && is_digit(q[1]))
		q += 1 + read_digits(q + 1, end, x, true);
	else if (k == 0)
		return 0;
	if (q < end && (*q == 'e' || *q == 'E'))
		q += read_exponent(q, end, x);
	while (x->n > 0 && x->d[x->n - 1] == '0')
		x->n--;
	return (size_t)(q - p);
}

/* The value of x as a double, from its first 17 digits (enough for the
 * 15 digits a quotient keeps); no strtod, so no locale. */
static double dec_to_double(const struct dec *x)
{
	size_t n = x->n < 17 ? x->n : 17;
	double v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (x->d[i] - '0');
	long e = x->point - (long)n; /* value = d[0..n) × 10^e */
	e = e < -400 ? -400 : e > 400 ? 400 : e;
	v = e < 0 ? v / pow(10, (double)-e) : v * pow(10, (double)e);
	return x->is_neg ? -v : v;
}

/*
 * *x = a / b, rounded to 15 significant digits (what a double holds, and
 * enough that 1/3 and 2/6 give the same key).  False for b = 0 or an
 * overflow.  printf's decimal point depends on the locale; brigade never
 * sets one, but any non-digit there is read as '.' all the same.
 */
static bool dec_divide(const struct dec *a, const struct dec *b, struct dec *x)
{
	if (b->n == 0)
		return false;
	double q = dec_to_double(a) / dec_to_double(b);
	if (!isfinite(q))
		return false;
	char buf[64];
	snprintf(buf, sizeof buf, "%.15g", fabs(q));
	for (char *c = buf; *c; c++)
		if (!is_digit((unsigned char)*c) && *c != 'e' && *c != '-' && *c != '+')
			*c = '.';
	uchar *p = (uchar *)buf;
	read_decimal(p, p + strlen(buf), x);
	x->is_neg = q < 0;
	return true;
}

/* The canonical key: no leading or trailing zeros, no exponent between
 * 1e-20 and 1e40, "0" for any zero (no "-0").  At most 2 * DEC_DIGITS + 16
 * bytes with the NUL. */
static void dec_format(const struct dec *x, char out[ANSWER_KEY_MAX])
{
	_Static_assert(ANSWER_KEY_MAX >= 2 * DEC_DIGITS + 16, "number keys must fit");
	size_t n = x->n, o = 0;
	long pt = x->point;
	if (n == 0) {
		strcpy(out, "0");
		return;
	}
	if (x->is_neg)
		out[o++] = '-';
	if (pt > DEC_DIGITS || pt < -20) {
		out[o++] = x->d[0];
		if (n > 1)
			out[o++] = '.';
		memcpy(out + o, x->d + 1, n - 1);
		o += n - 1;
		snprintf(out + o, ANSWER_KEY_MAX - o, "e%ld", pt - 1);
		return;
	}
	if (pt <= 0) {
		out[o++] = '0';
		out[o++] = '.';
		for (long i = 0; i < -pt; i++)
			out[o++] = '0';
	}
	for (size_t i = 0; i < n || (pt > 0 && i < (size_t)pt); i++) {
		if (pt > 0 && i == (size_t)pt)
			out[o++] = '.';
		out[o++] = i < n ? x->d[i] : '0';
	}
	out[o] = '\0';
}

/* "\frac{a}{b}" (also \dfrac, \tfrac) at p; bytes read, 0 if not one. */
static size_t read_latex_frac(uchar *p, uchar *end, struct dec *x)
{
	static const char *const cmds[] = {"\\frac{", "\\dfrac{", "\\tfrac{"};
	uchar *q = NULL;
	for (size_t i = 0; i < 3 && !q; i++) {
		size_t n = strlen(cmds[i]);
		if ((size_t)(end - p) > n && memcmp(p, cmds[i], n) == 0)
			q = p + n;
	}
	if (!q)
		return 0;
	struct dec a, b;
	size_t k = read_decimal(q, end, &a);
	if (k == 0 || end - (q + k) < 3 || memcmp(q + k, "}{", 2) != 0)
		return 0;
	q += k + 2;
	k = read_decimal(q, end, &b);
	if (k == 0 || q + k >= end || q[k] != '}' || !dec_divide(&a, &b, x))
		return 0;
	return (size_t)(q + k + 1 - p);
}

/*
 * "a/b" after the number x that ends at q: x becomes a / b.  A date-like
 * run "3/4/2020" or a zero denominator makes the whole run no number
 * (*is_num = false).  Returns the bytes read after q.
 */
static size_t read_fraction(uchar *q, uchar *end, struct dec *x, bool *is_num)
{
	if (end - q < 2 || *q != '/' || !is_digit(q[1]))
		return 0;
	struct dec num = *x, den;
	uchar *r = q + 1 + read_decimal(q + 1, end, &den);
	if (end - r >= 2 && *r == '/' && is_digit(r[1])) {
		while (r < end && (is_digit(*r) || *r == '/'))
			r++;
		*is_num = false;
	} else if (!dec_divide(&num, &den, x)) {
		*is_num = false;
	}
	return (size_t)(r - q);
}

/*
 * A number starting at p (span start s): optional sign ('+', '-', U+2212)
 * and '$', then a decimal, a fraction or \frac.  Not inside a word ("H2O",
 * "x2") nor a continuation ("1.2.3" → 1.2, no 3).  Returns bytes read (0:
 * none starts here); *is_num is false for a run read but not a number.
 */
static size_t number_at(uchar *s, uchar *p, uchar *end, struct dec *x, bool *is_num)
{
	if (p > s && (is_alnum(p[-1]) || p[-1] == '_'))
		return 0;
	if (p - s >= 2 && p[-1] == '.' && is_digit(p[-2]))
		return 0;
	uchar *q = p;
	bool is_neg = false;
	if (*q == '+' || *q == '-') {
		is_neg = *q++ == '-';
	} else if (end - q >= 3 && q[0] == 0xE2 && q[1] == 0x88 && q[2] == 0x92) {
		is_neg = true;
		q += 3;
	}
	if (q > p && q < end && *q == '$')
		q++;
	*is_num = true;
	size_t k = q < end && *q == '\\' ? read_latex_frac(q, end, x) : 0;
	if (k == 0) {
		if (q >= end || !(is_digit(*q) || (*q == '.' && end - q >= 2 && is_digit(q[1]))))
			return 0;
		k = read_decimal(q, end, x);
		k += read_fraction(q + k, end, x, is_num);
	}
	if (is_neg)
		x->is_neg = !x->is_neg;
	if (x->n == 0)
		x->is_neg = false;
	return (size_t)(q + k - p);
}

static bool last_number(struct span sp, struct answer *out)
{
	uchar *end = sp.p + sp.len;
	struct dec cur, best;
	bool found = false;
	for (uchar *q = sp.p; q < end;) {
		bool is_num = false;
		size_t k = number_at(sp.p, q, end, &cur, &is_num);
		if (k == 0) {
			q++;
			continue;
		}
		if (is_num) {
			best = cur;
			found = true;
		}
		q += k;
	}
	if (!found)
		return false;
	out->kind = ANSWER_NUMBER;
	dec_format(&best, out->key);
	return true;
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
		size_t k = *q >= 0x80 ? utf8_decode(q, (size_t)(end - q), &cp) : 1;
		bool is_punct = k > 1 && uni_punct_len(q, (size_t)(end - q)) > 0;
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
	       choice_anywhere(sp, false, out) || last_number(sp, out) ||
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

/* ---- similarity ------------------------------------------------------- */

static void sift_down(uint64_t *h, size_t i, size_t n)
{
	for (size_t c; (c = 2 * i + 1) < n; i = c) {
		if (c + 1 < n && h[c + 1] > h[c])
			c++;
		if (h[i] >= h[c])
			return;
		uint64_t t = h[i];
		h[i] = h[c];
		h[c] = t;
	}
}

/* Heapsort, in place: glibc's qsort may call malloc for an array this
 * size, and this runs on request threads that promise no heap use. */
static void sort_u64(uint64_t *h, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(h, i, n);
	for (size_t last = n; last-- > 1;) {
		uint64_t t = h[0];
		h[0] = h[last];
		h[last] = t;
		sift_down(h, 0, last);
	}
}

/*
 * The set of the first SIM_MAX_WORDS words of s as sorted, distinct 64-bit
 * hashes (FNV-1a of the lower-cased word).  A word is a run of ASCII
 * letters and digits and non-ASCII bytes, Unicode punctuation excluded.
 * Returns the set's size.
 */
static size_t word_set(const char *s, uint64_t *h)
{
	size_t n = 0;
	uint64_t x = 0xcbf29ce484222325u;
	bool in_word = false;
	uchar *p = (uchar *)(s ? s : "");
	for (;;) {
		size_t k = *p >= 0x80 ? uni_punct_len(p, 4) : 0;
		bool is_word = k == 0 && (is_alnum(*p) || *p >= 0x80);
		if (is_word) {
			x = (x ^ to_lower(*p)) * 0x100000001b3u;
			in_word = true;
			p++;
			continue;
		}
		if (in_word) {
			h[n++] = x;
			x = 0xcbf29ce484222325u;
			in_word = false;
		}
		if (*p == 0 || n == SIM_MAX_WORDS)
			break;
		p += k ? k : 1;
	}
	sort_u64(h, n);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (u == 0 || h[u - 1] != h[i])
			h[u++] = h[i];
	return u;
}

double answer_text_similarity(const char *a, const char *b)
{
	uint64_t ha[SIM_MAX_WORDS], hb[SIM_MAX_WORDS];
	size_t na = word_set(a, ha), nb = word_set(b, hb);
	if (na == 0 && nb == 0)
		return 1.0;
	size_t i = 0, j = 0, common = 0;
	while (i < na && j < nb) {
		if (ha[i] == hb[j])
			common++, i++, j++;
		else if (ha[i] < hb[j])
			i++;
		else
			j++;
	}
	return (double)common / (double)(na + nb - common);
}
