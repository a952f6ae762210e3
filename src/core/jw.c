/*
 * jw.c — see jw.h.
 */
#include "core/jw.h"

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
		out(w, ",", 1);
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
	out(w, &bracket, 1);
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
	out(w, &bracket, 1);
}

static void quoted(struct jw *w, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
	out(w, "\"", 1);
	while (p < end && !w->err) {
		unsigned char c = *p;
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
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
	out(w, "\"", 1);
}

void jw_key(struct jw *w, const char *key)
{
	if (w->is_after_key || !begin_value(w))
		return;
	size_t n = strlen(key);
	out(w, "\"", 1);
	out(w, key, n);
	out(w, "\":", 2);
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
