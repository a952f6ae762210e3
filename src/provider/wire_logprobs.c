/*
 * wire_logprobs.c — the sampled tokens' log-probabilities in an
 * OpenAI-compatible streaming chunk (see wire_int.h), which the
 * orchestrator turns into a model's confidence: exp(mean log p).
 *
 * Called by wire.c's chunk decoder for each choice it reports.  It only
 * reads the chunk's jansson document and keeps nothing.  Unlike the rest of
 * the decoder it never refuses an event: an upstream that sends odd
 * log-probabilities still streams a good answer, and the worst a skipped
 * entry can do is leave the confidence a little less informed.
 *
 * The shapes (OpenAI, vLLM, llama.cpp's server, LM Studio):
 *   chat         "logprobs": {"content": [{"token": "Hi", "logprob": -0.1,
 *                             "bytes": [...], "top_logprobs": [...]}, ...]}
 *   completions  "logprobs": {"tokens": [...], "token_logprobs": [-0.1, ...],
 *                             "top_logprobs": [...], "text_offset": [...]}
 * where the first token_logprobs entry of an echoed prompt may be null.
 */
#include <limits.h>
#include <math.h>

#include "provider/wire_int.h"

/* The lowest log-probability one token counts for: vLLM's own stand-in
 * for -inf, and far enough down (p = e^-9999) that no real token reaches
 * it, while a sum of INT_MAX of them stays finite. */
#define LOGPROB_FLOOR (-9999.0)

/* Adds one log-probability if it is a finite number (integers allowed),
 * kept within [LOGPROB_FLOOR, 0]: a positive one is rounding upstream. */
static void add(json_t *x, double *sum, int *n)
{
	if (!json_is_number(x) || *n == INT_MAX)
		return;
	double lp = json_number_value(x);
	if (!isfinite(lp))
		return;
	*sum += lp > 0.0 ? 0.0 : lp < LOGPROB_FLOOR ? LOGPROB_FLOOR : lp;
	(*n)++;
}

void wire_logprobs_sum(json_t *v, double *sum, int *n)
{
	*sum = 0.0;
	*n = 0;
	if (!json_is_object(v))
		return;
	json_t *content = json_object_get(v, "content");
	json_t *tokens = json_object_get(v, "token_logprobs");
	size_t i;
	json_t *e;
	if (json_is_array(content)) {
		json_array_foreach(content, i, e)
		{
			if (json_is_object(e))
				add(json_object_get(e, "logprob"), sum, n);
		}
	} else if (json_is_array(tokens)) {
		json_array_foreach(tokens, i, e)
		{
			add(e, sum, n);
		}
	}
}
