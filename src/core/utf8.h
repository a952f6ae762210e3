/*
 * utf8.h — strict UTF-8 (RFC 3629): no overlong forms, no surrogates,
 * nothing past U+10FFFF, nothing truncated.  The one validator every
 * module uses, so text that one layer accepts the next never refuses.
 */
#ifndef BRG_CORE_UTF8_H
#define BRG_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the character starting at s[0] (len >= 1 bytes readable): 1
 * for any ASCII byte (NUL included), 2-4 for a valid sequence, 0 when the
 * bytes are not one. */
size_t utf8_len(const unsigned char *s, size_t len);
/* Whether s[0..len) is valid UTF-8 without NUL bytes. */
bool utf8_valid(const char *s, size_t len);

#endif
