/*
 * context_int.h — what context.c, handoff.c and contamination.c share and
 * nobody else needs: the one routine that turns arbitrary bytes into the
 * valid, capped, optionally single-line UTF-8 that every string of the
 * context module is made of.
 */
#ifndef BRG_ORCHESTRATE_CONTEXT_INT_H
#define BRG_ORCHESTRATE_CONTEXT_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/utf8.h"
#include "core/err.h"

#define CONTEXT_ELLIPSIS     "\xE2\x80\xA6" /* U+2026 … */
#define CONTEXT_REPLACEMENT  "\xEF\xBF\xBD" /* U+FFFD */
#define CONTEXT_TEXT_UNLIMIT ((size_t)-1 / 2)

/* Whether 's' is NULL or holds only ASCII whitespace and control bytes. */
bool context_is_blank(const char *s);

/*
 * Appends src[0..len) to 'b' as valid UTF-8: each byte that does not start
 * a valid character becomes U+FFFD.  With 'fold', each run of ASCII
 * whitespace and control characters, C1 controls, U+2028 and U+2029
 * becomes one space, and leading and trailing ones are dropped, so the
 * text is one line.  At most 'max' bytes (>= 3) are appended: longer text
 * is cut at a character boundary and ends with "…".  Errors: those of
 * buf_append() (the bytes appended so far stay).
 */
enum brg_err context_text_append(struct buf *b, const char *src, size_t len, size_t max, bool fold)
    __attribute__((warn_unused_result));

/* The same into dst[0..cap) (cap >= 4), always NUL-terminated; can't fail. */
void context_text_copy(char *dst, size_t cap, const char *src, size_t len, bool fold);

/* A malloc'd copy of 's' made by context_text_append() without folding,
 * at most 'max' bytes; NULL when memory runs out. */
char *context_text_dup(const char *s, size_t max);

#endif
