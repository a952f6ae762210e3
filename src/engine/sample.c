/*
 * sample.c — builds one llama.cpp sampler chain per job from its
 * gen_params.  The chain is created on the submitting thread (it touches no
 * llama_context) and used only by the scheduler thread afterwards.
 *
 * Order, as llama-server builds it:
 *   temperature <= 0:  [penalties] greedy
 *   otherwise:         [penalties] [top_k] [top_p] [min_p] temp dist(seed)
 * Penalties come first so that they act on the whole distribution before
 * any truncation.  Greedy is a pure argmax, so temperature 0 is fully
 * deterministic whatever else the scheduler is doing.  The scheduler skips
 * the chain for greedy (engine_argmax) and for temperature with at most
 * min_p (dist.c); the chain stays built as their fallback.
 */
#include "engine/engine_int.h"

/* The OpenAI penalties look back this many tokens (llama-server's default). */
#define PENALTY_LAST_N 64

static bool add(struct llama_sampler *chain, struct llama_sampler *s)
{
	if (!s)
		return false;
	llama_sampler_chain_add(chain, s); /* the chain owns 's' from here on */
	return true;
}

bool engine_sampler_is_greedy(const struct gen_params *p)
{
	return p->temperature <= 0.0f && p->frequency_penalty == 0.0f &&
	       p->presence_penalty == 0.0f;
}

bool engine_sampler_is_plain(const struct gen_params *p, int n_vocab)
{
	return p->temperature > 0.0f && p->frequency_penalty == 0.0f &&
	       p->presence_penalty == 0.0f && (p->top_k <= 0 || p->top_k >= n_vocab) &&
	       p->top_p >= 1.0f;
}

/*
 * Greedy without the chain.  llama_sampler_sample copies every logit into
 * an array of (id, logit, p) — 1.8 MB for a 152k vocabulary, per token per
 * sequence — and its greedy sampler then compares each entry with the
 * entry at the best index so far, a load that waits on the previous
 * iteration: 0.8 ms a token here, 3-8 % of a decode step.  Keeping the best
 * value in a register picks the same token (the same strict '>', so the
 * first of equal maxima, and a NaN never wins) in about 0.1 ms.
 */
int engine_argmax(const float *logits, int n)
{
	int best = 0;
	float max = logits[0];
	for (int i = 1; i < n; i++)
		if (logits[i] > max) {
			max = logits[i];
			best = i;
		}
	return best;
}

struct llama_sampler *engine_sampler_new(const struct gen_params *p, int n_vocab)
{
	struct llama_sampler_chain_params cp = llama_sampler_chain_default_params();
	cp.no_perf = true;
	struct llama_sampler *chain = llama_sampler_chain_init(cp);
	if (!chain)
		return NULL;
	bool ok = true;
	if (p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f)
		ok = add(chain,
		         llama_sampler_init_penalties(n_vocab, PENALTY_LAST_N, 1.0f,
		                                      p->frequency_penalty, p->presence_penalty));
	if (p->temperature <= 0.0f) {
		ok = ok && add(chain, llama_sampler_init_greedy());
		goto done;
	}
	if (ok && p->top_k > 0)
		ok = add(chain, llama_sampler_init_top_k(p->top_k));
	if (ok && p->top_p < 1.0f)
		ok = add(chain, llama_sampler_init_top_p(p->top_p, 1));
	if (ok && p->min_p > 0.0f)
		ok = add(chain, llama_sampler_init_min_p(p->min_p, 1));
	ok = ok && add(chain, llama_sampler_init_temp(p->temperature));
	/* LLAMA_DEFAULT_SEED asks llama.cpp for a fresh random seed. */
	ok = ok && add(chain, llama_sampler_init_dist(p->has_seed ? p->seed : LLAMA_DEFAULT_SEED));
done:
	if (!ok) {
		llama_sampler_free(chain);
		return NULL;
	}
	return chain;
}
