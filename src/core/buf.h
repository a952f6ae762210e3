/*
 * buf.h — a growable byte buffer with a size cap fixed at birth (the curl
 * rule: every buffer knows how large it may grow).  Always NUL-terminated so
 * the contents can be used as a C string when they hold text.
 */
#ifndef BRG_CORE_BUF_H
#define BRG_CORE_BUF_H

#include <stddef.h>
#include <string.h>

#include "core/err.h"

struct buf {
	char *data; /* NULL until the first append */
	size_t len;
	size_t cap;
	size_t max; /* appends that would pass this fail with BRG_E_TOO_LARGE */
};

/* Caller-allocated; buf_fini() releases.  Can't fail. */
void buf_init(struct buf *b, size_t max);
void buf_fini(struct buf *b);
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* buf_append's growing path; call buf_append. */
enum brg_err buf_append_grow(struct buf *b, const void *p, size_t n)
    __attribute__((warn_unused_result));

/* Errors: BRG_E_TOO_LARGE past the cap, BRG_E_NOMEM.  Inline because the
 * JSON writer appends a few bytes at a time, hundreds of times a request:
 * when the bytes fit (cap never exceeds max + 1, so they are within the
 * cap too) it is a copy and no call. */
__attribute__((warn_unused_result)) static inline enum brg_err buf_append(struct buf *b,
                                                                          const void *p, size_t n)
{
	if (n >= b->cap - b->len)
		return buf_append_grow(b, p, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return BRG_OK;
}

enum brg_err buf_appendf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
/* Keeps the first n bytes (n <= len): takes back what was appended since
 * len was n. */
void buf_truncate(struct buf *b, size_t n);
/* Removes the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Hands the contents to the caller (free() them) and leaves 'b' empty. */
char *buf_take(struct buf *b);

#endif
