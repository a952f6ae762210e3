/*
 * answer_int.h — what answer.c (where the answer is, choices, yes/no,
 * short phrases), number.c (numbers as keys) and similarity.c (word
 * overlap) share.  Private to src/orchestrate/.
 */
#ifndef BRG_ORCHESTRATE_ANSWER_INT_H
#define BRG_ORCHESTRATE_ANSWER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "orchestrate/reduce.h"

#define SPAN_MAX        512  /* bytes of one answer span */
#define SHORT_MAX_WORDS 8    /* a longer phrase is not a short answer */
#define SIM_MAX_WORDS   4096 /* words of each text that similarity reads */
#define DEC_DIGITS      40   /* significant digits a number key keeps */
#define DEC_EXP_MAX     1000000

typedef const unsigned char uchar;

struct span {
	uchar *p;
	size_t len;
};

static inline bool is_digit(unsigned c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_alpha(unsigned c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool is_alnum(unsigned c)
{
	return is_digit(c) || is_alpha(c);
}

static inline bool is_space(unsigned c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static inline unsigned char to_lower(unsigned c)
{
	return (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

/*
 * Length (2..4) of the valid UTF-8 sequence at p[0..len), 0 when there is
 * none; *cp gets its code point (answer.c).
 */
size_t answer_utf8_decode(uchar *p, size_t len, uint32_t *cp);
/* Length of a Unicode punctuation or space character at p, 0 for anything
 * else (answer.c). */
size_t answer_uni_punct_len(uchar *p, size_t len);
/* The last number of the span as an ANSWER_NUMBER key; false when there
 * is none (number.c). */
bool answer_last_number(struct span sp, struct answer *out);

#endif
