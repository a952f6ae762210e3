/*
 * prefix.c — prefix KV reuse and shared prefill: which free slot a queued
 * job lands in, and how much of its prompt it need not decode.  Called by
 * the scheduler (sched.c) at admission and after every step; only the
 * scheduler thread runs this code.
 *
 * Every slot mirrors the tokens its KV cells hold in slot->cache[0, n_past)
 * (sched.c appends a token when llama_decode has put it in the cells), and
 * the cells outlive the job: a free slot keeps them until a new job lands
 * there.  A job's prompt is compared with every slot's tokens; the longest
 * common prefix, at most n_prompt - 1 tokens (the last prompt token is
 * always decoded, for the logits of the first sample), is reused:
 *   - in place: the job landed in the slot that holds it; the cells past it
 *     are removed (llama_memory_seq_rm) and decoding resumes at n_common;
 *   - copied: another slot, free or busy, holds a longer one; the landing
 *     slot is cleared, the other's cells copied in (llama_memory_seq_cp),
 *     and the copy cut back to n_common;
 *   - shared prefill: a slot that is still decoding its prompt (the first
 *     of n choices, or any request with the same long system prompt that
 *     came just before) will hold a longer one than any cache does now.
 *     The job parks (wait_on) instead of decoding that prefix a second
 *     time; after each step engine_prefix_resolve() checks its leader and,
 *     once the leader holds the shared tokens, copies them.  A parked slot
 *     puts nothing in the batch, so n choices of one prompt cost one
 *     prefill plus one token each, and the later choices start one step
 *     after the first.
 *
 * Where a job lands: the free slot whose cached tokens it would destroy
 * the fewest of (n_past minus what it keeps; fewer than REUSE_MIN_GAIN
 * count as none), then the one that keeps the most, then the least
 * recently used.  A conversation's next turn lands on its own cells (it
 * loses at most the few end-of-turn tokens its template renders anew); an
 * unrelated prompt takes an empty or a stale slot and copies a shared
 * system prompt from wherever it is cached, rather than cutting the tail
 * off another conversation's cache.
 *
 * A copy or a wait must save at least REUSE_MIN_GAIN tokens of prefill, or
 * the whole prompt: a parked job starts a step late, and a copied prefix
 * stays shared, so the cells of a short one are not worth the bookkeeping.
 * In-place reuse costs nothing and needs no minimum.
 *
 * Correctness: the cells of a sequence are the ones its own decodes wrote
 * (n_past only moves after llama_decode succeeded, and a failed decode
 * removes what it left), or a copy of another sequence's cells, which is
 * the same computation: the K/V of a token depend only on the tokens
 * before it.  Positions continue at n_common.  The KV buffer is unified
 * (engine.c), so a copy copies no data: llama_memory_seq_cp tags the
 * source's cells in [0, n) with the destination's sequence too, at once.
 * The copy therefore holds exactly the source's cells at the time of the
 * call; a cell stays until no sequence is tagged on it, so the source may
 * decode on or be trimmed by a job that lands in it afterwards.
 */
#include <assert.h>
#include <string.h>

#include "core/log.h"
#include "engine/engine_int.h"

/* Below this, a copy or a wait costs more than decoding the tokens. */
#define REUSE_MIN_GAIN 16

/* The most of a prompt that may come from the cache: all but the last. */
static int reusable(const struct job *j)
{
	return j->n_prompt - 1;
}

static int common_prefix(const llama_token *a, const llama_token *b, int n)
{
	int i = 0;
	while (i < n && a[i] == b[i])
		i++;
	return i;
}

/*
 * How many of j's prompt tokens slot 'i' holds in its KV cells, ready for
 * reuse.  A sliding-window cache may have dropped the first cells of a
 * long sequence (llama_memory_seq_pos_min > 0); such a slot offers none.
 */
static int cached(struct engine_model *m, int i, const struct job *j)
{
	const struct slot *s = &m->slots[i];
	if (!m->can_reuse || s->n_past == 0)
		return 0;
	if (llama_memory_seq_pos_min(llama_get_memory(m->ctx), i) > 0)
		return 0;
	int n = s->n_past < reusable(j) ? s->n_past : reusable(j);
	return common_prefix(j->tokens, s->cache, n);
}

static bool is_worth(int gain, int n_total, const struct job *j)
{
	return gain > 0 && (gain >= REUSE_MIN_GAIN || n_total == reusable(j));
}

int engine_prefix_pick(struct engine_model *m, const struct job *j)
{
	int best = -1, best_keep = 0, best_loss = 0;
	for (int i = 0; i < m->n_slots; i++) {
		const struct slot *s = &m->slots[i];
		if (s->job)
			continue;
		int keep = cached(m, i, j);
		int loss = s->n_past - keep;
		if (loss < REUSE_MIN_GAIN)
			loss = 0; /* e.g. the end-of-turn tokens after a previous answer */
		bool is_better = best < 0 || loss < best_loss ||
		                 (loss == best_loss && keep > best_keep) ||
		                 (loss == best_loss && keep == best_keep &&
		                  s->admitted < m->slots[best].admitted);
		if (is_better) {
			best = i;
			best_keep = keep;
			best_loss = loss;
		}
	}
	assert(best >= 0);
	return best;
}

/* Keeps the first 'n' of slot s's cells and drops the rest. */
static void keep_prefix(struct engine_model *m, struct slot *s, int n)
{
	llama_memory_t mem = llama_get_memory(m->ctx);
	llama_seq_id seq = (llama_seq_id)(s - m->slots);
	/* A partial removal can fail (a memory that cannot cut a sequence);
	 * removing a whole sequence never does. */
	if (n == 0 || !llama_memory_seq_rm(mem, seq, n, -1)) {
		llama_memory_seq_rm(mem, seq, -1, -1);
		n = 0;
	}
	s->n_past = n;
}

/* Replaces slot dst's cells with the first 'n' of slot src's (shared). */
static void copy_prefix(struct engine_model *m, struct slot *dst, const struct slot *src, int n)
{
	llama_memory_t mem = llama_get_memory(m->ctx);
	llama_seq_id d = (llama_seq_id)(dst - m->slots);
	llama_memory_seq_rm(mem, d, -1, -1);
	llama_memory_seq_cp(mem, (llama_seq_id)(src - m->slots), d, 0, n);
	memcpy(dst->cache, src->cache, (size_t)n * sizeof *dst->cache);
	atomic_fetch_add(&m->n_kv_copies, 1);
	keep_prefix(m, dst, n);
}

/*
 * The most slot s's job can reuse from the caches as they are: its own
 * cells, or another slot's when a copy is worth it.  *src is that slot
 * (s itself for in place).
 */
static int best_cached(struct engine_model *m, struct slot *s, int *src)
{
	const struct job *j = s->job;
	int own = cached(m, (int)(s - m->slots), j);
	int n_best = own;
	*src = (int)(s - m->slots);
	for (int i = 0; i < m->n_slots; i++) {
		if (&m->slots[i] == s)
			continue;
		int n = cached(m, i, j);
		if (n > n_best) {
			n_best = n;
			*src = i;
		}
	}
	if (!is_worth(n_best - own, n_best, j)) {
		*src = (int)(s - m->slots);
		n_best = own;
	}
	return n_best;
}

/* Gives slot s the first 'n' of slot src's cells: in place when src is s. */
static void take(struct engine_model *m, struct slot *s, int src, int n)
{
	if (&m->slots[src] == s)
		keep_prefix(m, s, n);
	else
		copy_prefix(m, s, &m->slots[src], n);
	s->n_cached = s->n_past;
	log_debug("model %s: slot %d reuses %d of %d prompt tokens (%s %d)", m->id,
	          (int)(s - m->slots), s->n_past, s->job->n_prompt,
	          &m->slots[src] == s ? "in place, slot" : "copied from slot", src);
}

/*
 * The slot admitted before s that is still decoding its prompt and shares
 * the longest prefix with s's job (of its prompt, not of its cells: the
 * cells are still being written); that length in *n_out, or -1.
 */
static int best_leader(struct engine_model *m, const struct slot *s, int *n_out)
{
	const struct job *j = s->job;
	int best = -1;
	*n_out = 0;
	for (int i = 0; m->can_reuse && i < m->n_slots; i++) {
		const struct slot *t = &m->slots[i];
		if (t == s || !t->job || t->admitted > s->admitted || t->n_past >= t->job->n_prompt)
			continue;
		int n = t->job->n_prompt < reusable(j) ? t->job->n_prompt : reusable(j);
		n = common_prefix(j->tokens, t->job->tokens, n);
		if (n > *n_out) {
			*n_out = n;
			best = i;
		}
	}
	return best;
}

void engine_prefix_admit(struct engine_model *m, struct slot *s)
{
	int src, n_lead;
	int n = best_cached(m, s, &src);
	int lead = best_leader(m, s, &n_lead);
	s->wait_on = -1;
	if (lead >= 0 && is_worth(n_lead - n, n_lead, s->job)) {
		/* Park: keep what is ours meanwhile; the leader's cells come later. */
		take(m, s, (int)(s - m->slots), cached(m, (int)(s - m->slots), s->job));
		s->wait_on = lead;
		s->wait_for = m->slots[lead].admitted;
		s->n_wait = n_lead;
		log_debug("model %s: slot %d waits for slot %d to decode %d shared prompt tokens",
		          m->id, (int)(s - m->slots), lead, n_lead);
		return;
	}
	take(m, s, src, n);
}

/*
 * The leader of parked slot s has what s waits for, or never will: it
 * finished, was cancelled or failed (its slot may even hold a new job).
 * A leader that is itself parked holds less than it will; s waits on.
 */
static bool is_ready(const struct engine_model *m, const struct slot *s)
{
	const struct slot *l = &m->slots[s->wait_on];
	if (!l->job || l->admitted != s->wait_for)
		return true;
	return l->wait_on < 0 && (l->n_past >= s->n_wait || l->n_past >= l->job->n_prompt);
}

/*
 * Unparks the ready slots oldest first, so that when a leader went away
 * without decoding the shared prefix, the oldest of its followers takes
 * over and the others park again behind it (engine_prefix_admit picks
 * only older leaders, so the chain cannot loop).  A slot that parks again
 * is not ready at once: its new leader is parked or has not yet decoded
 * the prefix, or the cache would already have offered it.
 */
void engine_prefix_resolve(struct engine_model *m)
{
	for (;;) {
		struct slot *first = NULL;
		for (int i = 0; i < m->n_slots; i++) {
			struct slot *s = &m->slots[i];
			if (s->job && s->wait_on >= 0 && is_ready(m, s) &&
			    (!first || s->admitted < first->admitted))
				first = s;
		}
		if (!first)
			return;
		engine_prefix_admit(m, first); /* the leader's cells, or the best now */
	}
}
