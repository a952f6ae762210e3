/*
 * pace.c — how many prompt tokens a decode step may carry while other
 * slots are streaming (chunked prefill with a time budget).
 *
 * A step that holds only the decoding slots' tokens costs about the time
 * to read the weights once (t_decode).  Every prompt token added to it
 * costs its own compute on top (t_token), and on a CPU that is large: a
 * 512-token chunk next to a streaming slot makes that slot's next token
 * wait a hundred decode steps.  So while any slot decodes, a step gets at
 * most PACE_SHARE × t_decode worth of prompt tokens: the stream's gap
 * stays near (1 + PACE_SHARE) × its gap alone, and the prompt still loads
 * at a good fraction of full speed, because the weights read for the
 * decode tokens serve the prompt chunk too.  With nothing decoding, a
 * prompt takes the whole batch.
 *
 * That share is per request, not per step: when more prompts are loading
 * than slots are streaming (a burst of requests just after the first one
 * started), the prompts get PACE_SHARE × t_decode each per streaming slot,
 * n_loading ÷ n_decode times one step's worth together.  Every request,
 * streaming or loading, gets about the same time of each step, so a burst
 * starts together — a wider batch, fewer steps in all — instead of one
 * prompt per few steps while the first stream runs alone.  One stream next
 * to one long prompt keeps the single share.
 *
 * Both costs are learnt from the steps the scheduler times (exponential
 * moving averages), so the pace follows the machine, the model, the
 * number of streams and how deep into its prompt a slot is.  A decode
 * step's cost depends on how many slots decode in it — on a CPU each slot
 * costs about as much as a prompt token — so it is learnt per width.  A
 * width not timed yet is estimated from the nearest one timed, plus or
 * minus a prompt token's cost per slot; without that, a burst (where every
 * step is mixed and wider than the last) would charge the new slots'
 * decoding to the prompt tokens and starve them.  Until a prompt token's
 * cost has been seen, the budget is PACE_FIRST tokens, and it at most
 * doubles from one mixed step to the next, so one noisy timing (a mixed
 * step that seemed to cost nothing) cannot buy a whole batch.
 */
#include "engine/engine_int.h"

/* Prompt time per step, as a share of a decode-only step. */
#define PACE_SHARE 1.0
/* Budget before any mixed step has been timed, and the least it gets. */
#define PACE_FIRST 16
#define PACE_MIN   4
/* Weight of the newest observation in the moving averages. */
#define PACE_ALPHA 0.25

static double ema(double old, double x, bool has_old)
{
	return has_old ? old + PACE_ALPHA * (x - old) : x;
}

static int width(int n_decode)
{
	return n_decode < PACE_WIDTHS ? n_decode : PACE_WIDTHS - 1;
}

/* What a decode-only step of n_decode slots costs, from the nearest width
 * timed; false when none is. */
static bool decode_cost(const struct engine_pace *p, int n_decode, double *t)
{
	int w = width(n_decode);
	for (int d = 0; d < PACE_WIDTHS; d++) {
		int k = w - d >= 1 && p->has_decode[w - d]            ? w - d
		        : w + d < PACE_WIDTHS && p->has_decode[w + d] ? w + d
		                                                      : 0;
		if (k == 0)
			continue;
		double per_slot = p->has_token ? p->t_token : p->t_decode[k] / k;
		double x = p->t_decode[k] + (n_decode - k) * per_slot;
		/* Never below the narrowest step's share: the weights are read
		 * however few slots decode. */
		*t = x > p->t_decode[k] * 0.5 ? x : p->t_decode[k] * 0.5;
		return true;
	}
	return false;
}

void engine_pace_observe(struct engine_pace *p, int n_decode, int n_prompt, double seconds)
{
	if (n_prompt == 0) {
		if (n_decode > 0) {
			int w = width(n_decode);
			p->t_decode[w] = ema(p->t_decode[w], seconds, p->has_decode[w]);
			p->has_decode[w] = true;
		}
		return;
	}
	/* What the prompt tokens cost beyond the decode step they rode on.  A
	 * step with no decoding slot charges its whole time to its prompt
	 * tokens, which overstates the marginal cost a little: safe. */
	double extra = seconds;
	if (n_decode > 0) {
		double t;
		if (!decode_cost(p, n_decode, &t))
			return; /* nothing to subtract yet */
		extra -= t;
	}
	double per_token = extra > 0 ? extra / n_prompt : 0.0;
	p->t_token = ema(p->t_token, per_token, p->has_token);
	p->has_token = true;
	if (n_decode > 0)
		p->n_last_mixed = n_prompt;
}

int engine_pace_budget(const struct engine_pace *p, int n_decode, int n_loading, int room)
{
	if (n_decode == 0 || room <= 0)
		return room;
	double share = PACE_SHARE;
	if (n_loading > n_decode)
		share *= (double)n_loading / n_decode;
	int budget = PACE_FIRST;
	double t_decode;
	if (p->has_token && decode_cost(p, n_decode, &t_decode)) {
		double n = p->t_token > 0 ? share * t_decode / p->t_token : (double)room;
		budget = n >= (double)room ? room : (int)n;
	}
	int cap = 2 * p->n_last_mixed > PACE_FIRST ? 2 * p->n_last_mixed : PACE_FIRST;
	if (budget > cap)
		budget = cap;
	if (budget < PACE_MIN)
		budget = PACE_MIN;
	return budget < room ? budget : room;
}
