/*
 * jw.c — see jw.h.
 */
#include "core/jw.h"

#include "core/jscan.h"
#include "core/str.h"
#include "core/utf8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jw_init(struct jw *w, struct buf *b)
{
	*w = (struct jw){.b = b};
}

static void out(struct jw *w, const void *p, size_t n)
{
	if (!w->err)
		w->err = buf_append(w->b, p, n);
}

/* One byte: with the length known here, buf_append inlines to a store
 * when the byte fits. */
static inline void out1(struct jw *w, char ch)
{
	if (!w->err)
		w->err = buf_append(w->b, &ch, 1);
}

/* Before any value: the comma between members, or nothing after a key. */
static bool begin_value(struct jw *w)
{
	if (w->err)
		return false;
	if (w->is_after_key) {
		w->is_after_key = false;
		return true;
	}
	uint64_t bit = (uint64_t)1 << w->depth;
	if (w->has_member & bit)
		out1(w, ',');
	w->has_member |= bit;
	return !w->err;
}

void jw_open(struct jw *w, char bracket)
{
	if (!begin_value(w))
		return;
	if (w->depth + 1 >= JW_MAX_DEPTH) {
		w->err = BRG_E_INTERNAL;
		return;
	}
	out1(w, bracket);
	w->depth++;
	w->has_member &= ~((uint64_t)1 << w->depth);
}

void jw_close(struct jw *w, char bracket)
{
	if (w->err)
		return;
	if (w->depth == 0 || w->is_after_key) {
		w->err = BRG_E_INTERNAL;
		return;
	}
	w->depth--;
	out1(w, bracket);
}

static void quoted(struct jw *w, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
	out1(w, '"');
	while (p < end && !w->err) {
		unsigned char c = *p;
		if (JSON_BYTE_CLASS[c] & JSON_PLAIN) {
			p++;
			continue;
		}
		if (c >= 0x80) {
			size_t n = utf8_len(p, (size_t)(end - p));
			if (!n)
				w->err = BRG_E_BAD_REQUEST;
			p += n;
			continue;
		}
		out(w, run, (size_t)(p - run));
		char esc[8];
		const char *named = c == '"'    ? "\\\""
		                    : c == '\\' ? "\\\\"
		                    : c == '\b' ? "\\b"
		                    : c == '\f' ? "\\f"
		                    : c == '\n' ? "\\n"
		                    : c == '\r' ? "\\r"
		                    : c == '\t' ? "\\t"
		                                : NULL;
		if (!named) {
			snprintf(esc, sizeof esc, "\\u%04X", c);
			named = esc;
		}
		out(w, named, strlen(named));
		run = ++p;
	}
	out(w, run, (size_t)(p - run));
	out1(w, '"');
}

void jw_keyn(struct jw *w, const char *key, size_t n)
{
	if (w->is_after_key || !begin_value(w))
		return;
	struct buf *b = w->b;
	if (n + 3 < b->cap - b->len) { /* the common case: "key": in place */
		char *d = b->data + b->len;
		d[0] = '"';
		memcpy(d + 1, key, n);
		memcpy(d + 1 + n, "\":", 3); /* with the NUL */
		b->len += n + 3;
	} else {
		out1(w, '"');
		out(w, key, n);
		out(w, "\":", 2);
	}
	w->is_after_key = true;
}

void jw_strn(struct jw *w, const char *s, size_t len)
{
	if (begin_value(w))
		quoted(w, s, len);
}

void jw_str(struct jw *w, const char *s)
{
	if (!s)
		jw_null(w);
	else
		jw_strn(w, s, strlen(s));
}

void jw_int(struct jw *w, long long v)
{
	char n[24];
	unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
	char *p = str_digits(u, n + sizeof n);
	if (v < 0)
		*--p = '-';
	jw_raw(w, p, (size_t)(n + sizeof n - p));
}

/* Numbers with at most four decimals (shares, scores: the common case)
 * without printf: "I.F" with F's trailing zeros dropped, one kept. */
static bool short_real(struct jw *w, double v)
{
	double a = fabs(v);
	if (!(a < 1e9))
		return false;
	long long x = (long long)(a * 10000 + 0.5);
	if ((double)x / 10000 != a)
		return false;
	char n[32];
	char *end = n + sizeof n;
	int frac = (int)(x % 10000);
	int places = 4;
	while (places > 1 && frac % 10 == 0) {
		frac /= 10;
		places--;
	}
	for (int i = 0; i < places; i++, frac /= 10)
		*--end = (char)('0' + frac % 10);
	*--end = '.';
	char *p = str_digits((unsigned long long)(x / 10000), end);
	if (signbit(v))
		*--p = '-';
	jw_raw(w, p, (size_t)(n + sizeof n - p));
	return true;
}

/* A float below 10 in magnitude with at most four decimals (0.7, 0.95:
 * sampling settings, written on every upstream request) without printf.
 * In that range the fewest decimals that read back as f are the fewest
 * significant digits %g would search for, and %g prints them without an
 * exponent, so the text is the one the loop in jw_float gives. */
static bool short_float(struct jw *w, float f)
{
	float a = fabsf(f);
	if (!(a < 10.0f))
		return false;
	static const double scale[5] = {1, 10, 100, 1000, 10000};
	for (int d = 0; d <= 4; d++) {
		long long x = llround((double)a * scale[d]);
		if ((float)((double)x / scale[d]) != a)
			continue;
		char n[16];
		char *end = n + sizeof n;
		if (d == 0)
			*--end = '0';
		for (int i = 0; i < d; i++, x /= 10)
			*--end = (char)('0' + x % 10);
		*--end = '.';
		char *p = str_digits((unsigned long long)x, end);
		if (signbit(f))
			*--p = '-';
		jw_raw(w, p, (size_t)(n + sizeof n - p));
		return true;
	}
	return false;
}

/* A number printed by %g, written as jansson writes a real: with ".0"
 * when it has neither a point nor an exponent (n has room for it). */
static void raw_real(struct jw *w, char *n, int len)
{
	if (!strpbrk(n, ".e")) {
		memcpy(n + len, ".0", 3);
		len += 2;
	}
	jw_raw(w, n, (size_t)len);
}

void jw_real(struct jw *w, double v)
{
	if (!isfinite(v)) {
		jw_null(w);
		return;
	}
	if (short_real(w, v))
		return;
	/* the shortest of %.15g .. %.17g that reads back the same */
	char n[40];
	int len = 0;
	for (int prec = 15; prec <= 17; prec++) {
		len = snprintf(n, sizeof n, "%.*g", prec, v);
		if (strtod(n, NULL) == v)
			break;
	}
	raw_real(w, n, len);
}

void jw_float(struct jw *w, float f)
{
	if (!isfinite(f)) {
		jw_null(w);
		return;
	}
	if (short_float(w, f))
		return;
	char n[40];
	int len = 0;
	for (int prec = 1; prec <= 9; prec++) { /* 9 digits always read back */
		len = snprintf(n, sizeof n, "%.*g", prec, (double)f);
		if (strtof(n, NULL) == f)
			break;
	}
	raw_real(w, n, len);
}

void jw_bool(struct jw *w, bool v)
{
	jw_raw(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_null(struct jw *w)
{
	jw_raw(w, "null", 4);
}

void jw_raw(struct jw *w, const char *json, size_t len)
{
	if (begin_value(w))
		out(w, json, len);
}
