/*
 * str.h — copying a C string into a fixed-size array.
 */
#ifndef BRG_CORE_STR_H
#define BRG_CORE_STR_H

#include <stddef.h>
#include <string.h>

/*
 * Copies 'src' into dst[0, size), cut to size - 1 bytes and always
 * NUL-terminated (size > 0); NULL copies as "".  What snprintf(dst, size,
 * "%s", src) does, without a format parser: it runs many times on every
 * request.  Can't fail.
 */
static inline void str_copy(char *dst, size_t size, const char *src)
{
	if (!src)
		src = "";
	size_t n = strnlen(src, size - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Appends 'src' to the string in dst[0, size) the same way: cut to fit,
 * always NUL-terminated.  Can't fail. */
static inline void str_append(char *dst, size_t size, const char *src)
{
	size_t at = strnlen(dst, size - 1);
	str_copy(dst + at, size - at, src);
}

/* The decimal digits of v, written backwards ending just before 'end'
 * (20 bytes at most before it); returns the first.  Can't fail. */
static inline char *str_digits(unsigned long long v, char *end)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return end;
}

#endif
