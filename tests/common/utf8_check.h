/*
 * utf8_check.h — a strict UTF-8 validator for tests, written apart from
 * the code under test (src/engine/textstream.c): no NUL, no overlong
 * forms, no surrogates, nothing past U+10FFFF, nothing truncated.
 * Header-only so unit tests and fuzz harnesses share it without a build
 * step of their own.
 */
#ifndef BRG_TESTS_UTF8_CHECK_H
#define BRG_TESTS_UTF8_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool valid_utf8(const unsigned char *s, size_t len)
{
	static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n;
		if (s[i] == 0)
			return false;
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xE0) == 0xC0) {
			n = 2;
			cp = s[i] & 0x1F;
		} else if ((s[i] & 0xF0) == 0xE0) {
			n = 3;
			cp = s[i] & 0x0F;
		} else if ((s[i] & 0xF8) == 0xF0) {
			n = 4;
			cp = s[i] & 0x07;
		} else {
			return false;
		}
		if (i + n > len)
			return false;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n;
	}
	return true;
}

#endif
