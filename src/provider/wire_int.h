/*
 * wire_int.h — what wire.c shares with wire_logprobs.c: the jansson-level
 * helpers behind wire.h.  Private to src/provider/wire*.c (jansson stays
 * out of wire.h).
 */
#ifndef BRG_PROVIDER_WIRE_INT_H
#define BRG_PROVIDER_WIRE_INT_H

#include <jansson.h>

/*
 * Reads a choice's "logprobs" value (v: the value, may be NULL) into *sum
 * and *n: the sum of the natural-log probabilities it carries and how many
 * there were.  Both shapes are read, whichever endpoint sent them: chat's
 * {"content": [{"logprob": x, ...}, ...]} and legacy completions'
 * {"token_logprobs": [x, null, ...]}.  Lenient: the numbers feed a
 * confidence, never the answer, so anything odd is skipped, not refused —
 * a missing or null value, a value of the wrong type, an entry without a
 * finite number.  A log-probability above 0 (a rounding error upstream)
 * counts as 0, one below -9999 (vLLM's stand-in for -inf) as -9999, so
 * the sum stays finite.  This function can't fail; *sum 0 and *n 0 when nothing
 * was read.
 */
void wire_logprobs_sum(json_t *v, double *sum, int *n);

#endif
