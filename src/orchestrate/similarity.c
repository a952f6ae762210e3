/*
 * similarity.c — word overlap of two free texts (answer_text_similarity,
 * reduce.h).
 */
#include <stdbool.h>
#include <stdint.h>

#include "orchestrate/answer_int.h"

/* ---- similarity ------------------------------------------------------- */

static void sift_down(uint64_t *h, size_t i, size_t n)
{
	for (size_t c; (c = 2 * i + 1) < n; i = c) {
		if (c + 1 < n && h[c + 1] > h[c])
			c++;
		if (h[i] >= h[c])
			return;
		uint64_t t = h[i];
		h[i] = h[c];
		h[c] = t;
	}
}

/* Heapsort, in place: glibc's qsort may call malloc for an array this
 * size, and this runs on request threads that promise no heap use. */
static void sort_u64(uint64_t *h, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(h, i, n);
	for (size_t last = n; last-- > 1;) {
		uint64_t t = h[0];
		h[0] = h[last];
		h[last] = t;
		sift_down(h, 0, last);
	}
}

/*
 * The set of the first SIM_MAX_WORDS words of s as sorted, distinct 64-bit
 * hashes (FNV-1a of the lower-cased word).  A word is a run of ASCII
 * letters and digits and non-ASCII bytes, Unicode punctuation excluded.
 * Returns the set's size.
 */
static size_t word_set(const char *s, uint64_t *h)
{
	size_t n = 0;
	uint64_t x = 0xcbf29ce484222325u;
	bool in_word = false;
	uchar *p = (uchar *)(s ? s : "");
	for (;;) {
		size_t k = *p >= 0x80 ? answer_uni_punct_len(p, 4) : 0;
		bool is_word = k == 0 && (is_alnum(*p) || *p >= 0x80);
		if (is_word) {
			x = (x ^ to_lower(*p)) * 0x100000001b3u;
			in_word = true;
			p++;
			continue;
		}
		if (in_word) {
			h[n++] = x;
			x = 0xcbf29ce484222325u;
			in_word = false;
		}
		if (*p == 0 || n == SIM_MAX_WORDS)
			break;
		p += k ? k : 1;
	}
	sort_u64(h, n);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (u == 0 || h[u - 1] != h[i])
			h[u++] = h[i];
	return u;
}

double answer_text_similarity(const char *a, const char *b)
{
	uint64_t ha[SIM_MAX_WORDS], hb[SIM_MAX_WORDS];
	size_t na = word_set(a, ha), nb = word_set(b, hb);
	if (na == 0 && nb == 0)
		return 1.0;
	size_t i = 0, j = 0, common = 0;
	while (i < na && j < nb) {
		if (ha[i] == hb[j])
			common++, i++, j++;
		else if (ha[i] < hb[j])
			i++;
		else
			j++;
	}
	return (double)common / (double)(na + nb - common);
}
