/*
 * buf.c — capped growable buffer; see buf.h.
 */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void buf_fini(struct buf *b)
{
	free(b->data);
	buf_init(b, b->max);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static enum brg_err reserve(struct buf *b, size_t extra)
{
	if (extra > b->max || b->len > b->max - extra)
		return BRG_E_TOO_LARGE;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return BRG_OK;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	if (cap - 1 > b->max) /* never hold more than the cap allows (max + 1 may wrap) */
		cap = b->max + 1;
	char *p = realloc(b->data, cap);
	if (!p)
		return BRG_E_NOMEM;
	b->data = p;
	b->cap = cap;
	return BRG_OK;
}

enum brg_err buf_append_grow(struct buf *b, const void *p, size_t n)
{
	enum brg_err err = reserve(b, n);
	if (err)
		return err;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return BRG_OK;
}

enum brg_err buf_appendf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return BRG_E_INTERNAL;
	enum brg_err err = reserve(b, (size_t)n);
	if (err)
		return err;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return BRG_OK;
}

void buf_truncate(struct buf *b, size_t n)
{
	if (n >= b->len)
		return;
	b->len = n;
	b->data[n] = '\0';
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

char *buf_take(struct buf *b)
{
	char *p = b->data;
	if (!p)
		p = calloc(1, 1);
	buf_init(b, b->max);
	return p;
}
