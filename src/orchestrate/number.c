/*
 * number.c — numbers as answer keys (see answer.c for where they are
 * looked for, docs/reducers.md for the rules).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "orchestrate/answer_int.h"

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

bool answer_last_number(struct span sp, struct answer *out)
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
