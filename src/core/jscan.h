/*
 * jscan.h — byte-level pieces shared by brigade's JSON readers (the
 * request reader api/jload.c and the upstream chunk decoder
 * provider/wire_fast.c): what each byte is, and one escape decoded.
 * No JSON library behind it; the rules are jansson's, which those readers
 * must agree with.
 */
#ifndef BRG_CORE_JSCAN_H
#define BRG_CORE_JSCAN_H

#include <stddef.h>

/* What a JSON byte is, for scanners that take one table load per byte:
 * JSON_WS for the four blanks, JSON_PLAIN for ASCII a string holds as is
 * (not '"', '\\', a control byte or a byte >= 0x80). */
enum { JSON_WS = 1, JSON_PLAIN = 2 };
extern const unsigned char JSON_BYTE_CLASS[256];

/* The first byte at or after p (before end) not of 'class': the scanners'
 * two hot loops, past blanks (JSON_WS) and runs of plain string bytes
 * (JSON_PLAIN). */
static inline const unsigned char *json_skip(const unsigned char *p, const unsigned char *end,
                                             unsigned char class)
{
	while (p < end && (JSON_BYTE_CLASS[*p] & class))
		p++;
	return p;
}

/* One JSON escape: p points after the backslash, end bounds it.  Writes
 * the character's UTF-8 (1-4 bytes, \u0000 as a NUL byte) to out and
 * returns how many bytes of input it took (a surrogate pair is 11); 0
 * when it is not a valid escape (jansson's rules: no lone surrogates). */
size_t json_unescape(const unsigned char *p, const unsigned char *end, unsigned char out[4],
                     size_t *out_len);

#endif
