/*
 * err.c — lookups into the error table of err.h and the helpers that fill a
 * struct brg_error.  No allocation: an error path must never fail itself.
 */
#include "core/err.h"
#include "core/str.h"

#include <stdio.h>
#include <string.h>

static const struct {
	int status;
	const char *code;
	int retriable;
} rows[] = {
#define BRG_ERR_ROW(e, status, code, retriable) {status, code, retriable},
    BRG_ERRORS(BRG_ERR_ROW)
#undef BRG_ERR_ROW
};

/*
 * Truncation by vsnprintf may cut a multi-byte UTF-8 character; JSON
 * encoders then refuse the whole string.  Drop an incomplete trailing
 * sequence so a truncated message is still valid text.
 */
static void trim_partial_utf8(char *s)
{
	size_t n = strlen(s), k = 0;
	while (k < 4 && k < n && ((unsigned char)s[n - 1 - k] & 0xC0) == 0x80)
		k++;
	if (k == n)
		return;
	unsigned char lead = (unsigned char)s[n - 1 - k];
	size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
	if (lead >= 0x80 && want > k + 1)
		s[n - 1 - k] = '\0';
}

int brg_err_http_status(enum brg_err e)
{
	if ((unsigned)e >= BRG_ERR__COUNT)
		return 500;
	return rows[e].status;
}

const char *brg_err_code(enum brg_err e)
{
	if ((unsigned)e >= BRG_ERR__COUNT)
		return "INTERNAL_ERROR";
	return rows[e].code;
}

int brg_err_is_retriable(enum brg_err e)
{
	if ((unsigned)e >= BRG_ERR__COUNT)
		return 0;
	return rows[e].retriable;
}

void brg_error_clear(struct brg_error *e)
{
	if (!e)
		return;
	e->code = BRG_OK;
	e->message[0] = '\0';
	e->n_details = 0;
	e->retry_after_ms = 0;
}

enum brg_err brg_fail(struct brg_error *e, enum brg_err code, const char *fmt, ...)
{
	if (!e)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	trim_partial_utf8(e->message);
	e->code = code;
	return code;
}

static struct brg_detail *detail_add(struct brg_error *e, const char *key)
{
	if (!e || e->n_details >= BRG_ERR_MAX_DETAILS)
		return NULL;
	/* A key set twice keeps its last value, so details stay a JSON object. */
	for (size_t i = 0; i < e->n_details; i++)
		if (strcmp(e->details[i].key, key) == 0)
			return &e->details[i];
	struct brg_detail *d = &e->details[e->n_details++];
	d->key = key;
	return d;
}

void brg_error_detail_int(struct brg_error *e, const char *key, long long v)
{
	struct brg_detail *d = detail_add(e, key);
	if (d) {
		d->kind = BRG_DETAIL_INT;
		d->i = v;
	}
}

void brg_error_detail_str(struct brg_error *e, const char *key, const char *v)
{
	struct brg_detail *d = detail_add(e, key);
	if (d) {
		d->kind = BRG_DETAIL_STR;
		str_copy(d->s, sizeof d->s, v ? v : "");
		trim_partial_utf8(d->s);
	}
}

void brg_error_detail_bool(struct brg_error *e, const char *key, int v)
{
	struct brg_detail *d = detail_add(e, key);
	if (d) {
		d->kind = BRG_DETAIL_BOOL;
		d->i = v != 0;
	}
}
