/*
 * jscan.c — see jscan.h.
 */
#include "core/jscan.h"

#include <string.h>

const unsigned char JSON_BYTE_CLASS[256] = {
    ['\t'] = JSON_WS,
    ['\n'] = JSON_WS,
    ['\r'] = JSON_WS,
    [' '] = JSON_WS | JSON_PLAIN,
    ['!'] = JSON_PLAIN,
    /* '"' (0x22) and '\\' (0x5C) are not plain; GNU ranges for the rest */
    [0x23 ... 0x5B] = JSON_PLAIN,
    [0x5D ... 0x7F] = JSON_PLAIN,
};

static long hex4(const unsigned char *p)
{
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int d = p[i] >= '0' && p[i] <= '9'   ? p[i] - '0'
		        : p[i] >= 'a' && p[i] <= 'f' ? p[i] - 'a' + 10
		        : p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 10
		                                     : -1;
		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

size_t json_unescape(const unsigned char *p, const unsigned char *end, unsigned char out[4],
                     size_t *out_len)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	if (p >= end)
		return 0;
	const char *e = memchr(from, *p, sizeof from - 1);
	if (e) {
		out[0] = (unsigned char)to[e - from];
		*out_len = 1;
		return 1;
	}
	if (*p != 'u' || end - p < 5)
		return 0;
	long cp = hex4(p + 1);
	size_t took = 5;
	if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
		return 0;
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		if (end - p < 11 || p[5] != '\\' || p[6] != 'u')
			return 0;
		long lo = hex4(p + 7);
		if (lo < 0xDC00 || lo > 0xDFFF)
			return 0;
		took = 11;
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
	}
	size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
	static const unsigned char lead[5] = {0, 0, 0xC0, 0xE0, 0xF0};
	for (size_t i = n - 1; i > 0; i--, cp >>= 6)
		out[i] = (unsigned char)(0x80 | (cp & 0x3F));
	out[0] = (unsigned char)(lead[n] | cp);
	*out_len = n;
	return took;
}
