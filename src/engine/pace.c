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
 * Both costs are learnt from the steps the scheduler times (exponential
 * moving averages), so the pace follows the machine, the model, the
 * number of streams and how deep into its prompt a slot is.  Until a
 * prompt token's cost has been seen, the budget is PACE_FIRST tokens, and
 * it at most doubles from one mixed step to the next, so one noisy timing
 * (a mixed step that seemed to cost nothing) cannot buy a whole batch.
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

void engine_pace_observe(struct engine_pace *p, int n_decode, int n_prompt, double seconds)
{
	if (n_prompt == 0) {
		if (n_decode > 0) {
			p->t_decode = ema(p->t_decode, seconds, p->has_decode);
			p->has_decode = true;
		}
		return;
	}
	/* What the prompt tokens cost beyond the decode step they rode on.  A
	 * step with no decoding slot charges its whole time to its prompt
	 * tokens, which overstates the marginal cost a little: safe. */
	double extra = seconds;
	if (n_decode > 0) {
		if (!p->has_decode)
			return; /* nothing to subtract yet */
		extra -= p->t_decode;
	}
	double per_token = extra > 0 ? extra / n_prompt : 0.0;
	p->t_token = ema(p->t_token, per_token, p->has_token);
	p->has_token = true;
	if (n_decode > 0)
		p->n_last_mixed = n_prompt;
}

int engine_pace_budget(const struct engine_pace *p, int n_decode, int room)
{
	if (n_decode == 0 || room <= 0)
		return room;
	int budget = PACE_FIRST;
	if (p->has_decode && p->has_token) {
		double n = p->t_token > 0 ? PACE_SHARE * p->t_decode / p->t_token : (double)room;
		budget = n >= (double)room ? room : (int)n;
	}
	int cap = 2 * p->n_last_mixed > PACE_FIRST ? 2 * p->n_last_mixed : PACE_FIRST;
	if (budget > cap)
		budget = cap;
	if (budget < PACE_MIN)
		budget = PACE_MIN;
	return budget < room ? budget : room;
}
