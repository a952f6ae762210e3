/*
 * sched.c — one scheduler thread per loaded model: continuous batching over
 * its slots, the way llama-server and llama.cpp's examples/parallel do it.
 *
 * Each turn of the loop:
 *   1. Under the lock: drop queued jobs whose cancel flag is set, move the
 *      oldest queued jobs into free slots (FIFO; prefix.c picks the slot and
 *      sets up the prompt prefix it can reuse, or parks the job behind a
 *      slot that is decoding the same prefix), or sleep on the condvar
 *      when there is nothing to do (never a busy wait).
 *   2. Finish slots whose job was cancelled (their slot is free at once).
 *      Then prefill.c takes a prompt the helper has finished back into its
 *      slot, and hands a long one to the helper when other slots decode
 *      (those slots then decode with one thread fewer; an offloaded slot
 *      stays out of the batches until its cells come back).
 *   3. Build one llama_batch: each decoding slot's last sampled token, then
 *      prompt chunks of the prefilling slots that are not parked, oldest
 *      first: up to n_batch tokens when no slot decodes, else as many as
 *      pace.c's time budget allows, so streams keep their pace while a
 *      long prompt loads (chunked prefill); logits only where a token will
 *      be sampled.  The decode is timed for pace.c.
 *   4. llama_decode, then sample each slot that has logits (greedy by
 *      engine_argmax, plain temperature by dist.c, anything else by the
 *      job's llama.cpp chain; adding the token's log-probability to the
 *      slot's sum when its job asked for it), push the piece through the
 *      slot's textstream to its sink, and finish the slot on
 *      end-of-generation, a stop string, max tokens or a full context.
 *   5. Unpark the slots whose leader now holds their shared prefix
 *      (prefix.c copies those cells over).
 *   6. When an embeddings job waits, one decode of it on the embeddings
 *      context (embed.c): embeddings share the model's thread and cores
 *      with generation, a step each.
 * New jobs join between steps; a finished slot is reused at the next step,
 * and its KV cells stay for prefix reuse until then.
 *
 * Invariants:
 *   - Only this thread touches m->ctx, m->batch and the slots' counters.
 *   - slot->job changes only on this thread, under m->mu (submitters read
 *     n_busy under the same lock to decide MODEL_BUSY).
 *   - Sinks are called without m->mu held, so they may call back into the
 *     engine (engine_n_busy_slots, even engine_submit).
 *   - Every job gets exactly one on_done, then is freed; its slot is freed
 *     before on_done so that the consumer sees the slot available.
 *   - slot->cache[0, n_past) are the tokens in the slot's KV cells: n_past
 *     moves only after a successful llama_decode, and a failed one removes
 *     what it left past n_past.
 *   - Every step makes progress: each active slot that is neither parked
 *     nor offloaded puts at least one token into the batch (n_batch >=
 *     n_slots); when all that is left is the helper's, the loop sleeps on
 *     the condvar (20 ms at most, so cancels are seen) until it is done;
 *     a parked slot waits on an older slot that is decoding its prompt,
 *     and is unparked in the same turn that slot finishes or gets there;
 *     a failing decode fails one job.  So the loop can neither stall nor
 *     spin.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/clock.h"
#include "core/log.h"
#include "engine/engine_int.h"

static bool is_cancelled(const struct job *j)
{
	return j->cancel && atomic_load(j->cancel);
}

/* Reports the end of a job that never reached a slot, and frees it. */
static void finish_queued(struct job *j, enum gen_finish f)
{
	struct gen_result r = {.finish = f, .n_prompt = j->n_prompt};
	j->sink.on_done(j->sink.ud, &r);
	engine_job_free(j);
}

/*
 * Frees slot 's', then reports the job's end and frees it.  'msg' is for
 * GEN_FINISH_ERROR.  The slot's KV cells and their token mirror stay
 * (n_past, cache): they are valid, and the next job may reuse them.
 */
static void finish(struct engine_model *m, struct slot *s, enum gen_finish f, enum brg_err e,
                   const char *msg)
{
	struct job *j = s->job;
	struct gen_result r = {
	    .finish = f,
	    .n_prompt = j->n_prompt,
	    .n_cached = s->n_cached,
	    .n_completion = s->n_completion,
	    .logprob_sum = s->logprob_sum,
	    .n_logprobs = s->n_logprobs,
	};
	brg_error_clear(&r.error);
	if (e)
		brg_fail(&r.error, e, "%s", msg ? msg : brg_err_code(e));
	pthread_mutex_lock(&m->mu);
	s->job = NULL;
	atomic_fetch_sub(&m->n_busy, 1);
	pthread_mutex_unlock(&m->mu);
	engine_helper_forget(m, s);
	s->n_step = 0;
	s->i_logits = -1;
	s->wait_on = -1;
	atomic_fetch_add(&m->n_prompt_reused, (uint_least64_t)s->n_cached);
	j->sink.on_done(j->sink.ud, &r);
	engine_job_free(j);
}

/* Grows a scratch buffer to at least 'need' bytes. */
static bool ensure(char **buf, size_t *cap, size_t need)
{
	if (*cap >= need && *buf)
		return true;
	size_t n = *cap ? *cap : 64;
	while (n < need)
		n *= 2;
	char *grown = realloc(*buf, n);
	if (!grown)
		return false;
	*buf = grown;
	*cap = n;
	return true;
}

/* Sends released text to the sink; false when the sink asked to stop. */
static bool emit(const struct job *j, const char *text, size_t len)
{
	if (len == 0 || !j->sink.on_piece)
		return true;
	return j->sink.on_piece(j->sink.ud, text, len) == 0;
}

/* End without a stop string: release what the textstream held back, finish. */
static void finish_flushed(struct engine_model *m, struct slot *s, enum gen_finish f)
{
	struct job *j = s->job;
	size_t len = 0;
	if (!ensure(&m->text, &m->text_cap, textstream_out_cap(j->ts, 0))) {
		finish(m, s, GEN_FINISH_ERROR, BRG_E_NOMEM, "out of memory");
		return;
	}
	textstream_flush(j->ts, m->text, &len);
	emit(j, m->text, len); /* the job ends either way */
	finish(m, s, f, BRG_OK, NULL);
}

/* The bytes of token 't' into m->piece; their length, or -1 out of memory. */
static int32_t piece(struct engine_model *m, llama_token t)
{
	if (!ensure(&m->piece, &m->piece_cap, 64))
		return -1;
	int32_t n = llama_token_to_piece(m->vocab, t, m->piece, (int32_t)m->piece_cap, 0, false);
	if (n < 0) {
		if (!ensure(&m->piece, &m->piece_cap, (size_t)-n))
			return -1;
		n = llama_token_to_piece(m->vocab, t, m->piece, (int32_t)m->piece_cap, 0, false);
	}
	return n;
}

/*
 * Adds log p(t) under the model's raw distribution at batch row s->i_logits
 * to the slot's sum: logit[t] - logsumexp(logits), with the maximum taken
 * out first so that no exp overflows.  The logits are llama.cpp's own
 * output, which llama_sampler_sample copies before its samplers change
 * anything, so they are the model's distribution before temperature, top-k
 * and the rest.  A non-finite result (logits the model got wrong) is left
 * out rather than poisoning the sum.  One pass over the vocabulary for the
 * maximum, one for the sum: O(n_vocab) per token, only when asked.
 */
static void add_logprob(struct engine_model *m, struct slot *s, llama_token t)
{
	const float *logits = llama_get_logits_ith(m->ctx, s->i_logits);
	int n_vocab = llama_vocab_n_tokens(m->vocab);
	if (!logits || t < 0 || t >= n_vocab)
		return;
	double lp = engine_log_softmax_at(logits, n_vocab, t);
	if (!isfinite(lp))
		return;
	s->logprob_sum += lp;
	s->n_logprobs++;
}

/* Handles token 't' just sampled for slot 's': output it, or finish. */
static void take_token(struct engine_model *m, struct slot *s, llama_token t)
{
	struct job *j = s->job;
	if (llama_vocab_is_eog(m->vocab, t)) {
		finish_flushed(m, s, GEN_FINISH_STOP); /* EOG is neither counted nor shown */
		return;
	}
	s->n_completion++;
	if (j->params.want_logprobs)
		add_logprob(m, s, t);
	int32_t n = piece(m, t);
	if (n < 0 || !ensure(&m->text, &m->text_cap, textstream_out_cap(j->ts, (size_t)n))) {
		finish(m, s, GEN_FINISH_ERROR, BRG_E_NOMEM, "out of memory");
		return;
	}
	size_t len = 0;
	bool is_stop = textstream_push(j->ts, m->piece, (size_t)n, m->text, &len);
	if (!emit(j, m->text, len)) {
		finish(m, s, GEN_FINISH_CANCELLED, BRG_OK, NULL);
		return;
	}
	if (is_stop) {
		finish(m, s, GEN_FINISH_STOP, BRG_OK, NULL);
		return;
	}
	/* 't' would sit at position n_past; prompt + completion <= n_ctx_slot. */
	bool is_full = s->n_past + 1 >= m->n_ctx_slot;
	bool is_max = j->params.n_max_tokens >= 0 && s->n_completion >= j->params.n_max_tokens;
	if (is_full || is_max) {
		finish_flushed(m, s, GEN_FINISH_LENGTH);
		return;
	}
	s->last = t;
}

/*
 * Lock held.  Unlinks cancelled queued jobs onto *dropped, then moves the
 * oldest queued jobs into free slots (FIFO), each into the slot prefix.c
 * picks, which also sets up the KV cells it starts from: the longest
 * cached prefix of its prompt, or a wait for a slot still decoding it.
 * The cells of a finished job are kept until then, for that reuse.
 */
static void admit(struct engine_model *m, struct job **dropped)
{
	for (struct job **pp = &m->q_head; *pp;) {
		struct job *j = *pp;
		if (!is_cancelled(j)) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		j->next = *dropped;
		*dropped = j;
		m->n_queued--;
	}
	m->q_tail = NULL;
	for (struct job *j = m->q_head; j; j = j->next)
		m->q_tail = j;
	while (m->q_head && atomic_load(&m->n_busy) < m->n_slots) {
		struct job *j = m->q_head;
		m->q_head = j->next;
		if (!m->q_head)
			m->q_tail = NULL;
		m->n_queued--;
		j->next = NULL;
		struct slot *s = &m->slots[engine_prefix_pick(m, j)];
		s->job = j;
		s->admitted = ++m->n_admitted;
		s->n_completion = 0;
		s->logprob_sum = 0.0;
		s->n_logprobs = 0;
		s->n_step = 0;
		s->i_logits = -1;
		atomic_fetch_add(&m->n_busy, 1);
		engine_prefix_admit(m, s);
	}
}

/* Finishes slots whose job was cancelled or asked for no tokens at all. */
static void sweep(struct engine_model *m)
{
	for (int i = 0; i < m->n_slots; i++) {
		struct slot *s = &m->slots[i];
		if (!s->job)
			continue;
		if (is_cancelled(s->job))
			finish(m, s, GEN_FINISH_CANCELLED, BRG_OK, NULL);
		else if (s->job->params.n_max_tokens == 0)
			finish(m, s, GEN_FINISH_LENGTH, BRG_OK, NULL);
	}
}

static void batch_add(struct llama_batch *b, llama_token t, llama_pos pos, llama_seq_id seq,
                      bool has_logits)
{
	int i = b->n_tokens++;
	b->token[i] = t;
	b->pos[i] = pos;
	b->n_seq_id[i] = 1;
	b->seq_id[i][0] = seq;
	b->logits[i] = has_logits;
}

/* Whether slot s has prompt tokens this step could carry. */
static bool is_loading(const struct slot *s)
{
	return s->job && s->wait_on < 0 && !s->is_offloaded && s->n_past < s->job->n_prompt;
}

/* The prefilling slot admitted first that has no chunk in this batch yet. */
static struct slot *next_prefill(struct engine_model *m)
{
	struct slot *best = NULL;
	for (int i = 0; i < m->n_slots; i++) {
		struct slot *s = &m->slots[i];
		if (is_loading(s) && s->n_step == 0 && (!best || s->admitted < best->admitted))
			best = s;
	}
	return best;
}

/* The token slot s draws from its logits this step. */
static llama_token sample(struct engine_model *m, struct slot *s)
{
	struct job *j = s->job;
	int n_vocab = llama_vocab_n_tokens(m->vocab);
	if (j->is_greedy || j->is_plain) {
		const float *logits = llama_get_logits_ith(m->ctx, s->i_logits);
		if (logits && j->is_greedy)
			return engine_argmax(logits, n_vocab);
		int t = logits ? engine_dist_sample(logits, n_vocab, j->params.temperature,
		                                    j->params.min_p, &j->rng, m->dist_scratch)
		               : -1;
		if (t >= 0)
			return t;
	}
	return llama_sampler_sample(j->chain, m->ctx, s->i_logits);
}

/*
 * Fills m->batch for this step: every decoding slot's token, then prompt
 * chunks up to the pace.c budget (the whole batch when no slot decodes).
 * Returns the token count; *n_decode and *n_prompt say what they are.
 */
static int build_batch(struct engine_model *m, int *n_decode, int *n_prompt)
{
	struct llama_batch *b = &m->batch;
	b->n_tokens = 0;
	for (int i = 0; i < m->n_slots; i++) {
		struct slot *s = &m->slots[i];
		s->n_step = 0;
		s->i_logits = -1;
		if (!s->job || s->n_past < s->job->n_prompt)
			continue;
		s->i_logits = b->n_tokens;
		s->n_step = 1;
		s->cache[s->n_past] = s->last;
		batch_add(b, s->last, s->n_past, i, true);
	}
	*n_decode = b->n_tokens;
	int n_loading = 0;
	for (int i = 0; i < m->n_slots; i++)
		n_loading += is_loading(&m->slots[i]);
	int budget = engine_pace_budget(&m->pace, *n_decode, n_loading, m->n_batch - *n_decode);
	struct slot *s;
	while (b->n_tokens - *n_decode < budget && (s = next_prefill(m))) {
		const struct job *j = s->job;
		int n = j->n_prompt - s->n_past;
		if (n > budget - (b->n_tokens - *n_decode))
			n = budget - (b->n_tokens - *n_decode);
		bool is_last = s->n_past + n == j->n_prompt;
		for (int k = 0; k < n; k++) {
			int pos = s->n_past + k;
			bool has_logits = is_last && k == n - 1;
			if (has_logits)
				s->i_logits = b->n_tokens;
			s->cache[pos] = j->tokens[pos];
			batch_add(b, j->tokens[pos], pos, (llama_seq_id)(s - m->slots), has_logits);
		}
		s->n_step = n;
	}
	*n_prompt = b->n_tokens - *n_decode;
	return b->n_tokens;
}

/*
 * llama_decode failed.  Whatever part of the batch reached the KV cache is
 * removed (each slot goes back to its n_past), and the newest job in the
 * batch fails, so the next step is smaller and the loop cannot spin.  With
 * every slot's n_past < n_ctx_slot and n_ctx_slot x n_slots cells, a return
 * of 1 (no KV room) should not happen; this is the guard if it does.
 */
static void recover(struct engine_model *m, int ret)
{
	llama_memory_t mem = llama_get_memory(m->ctx);
	struct slot *newest = NULL;
	for (int i = 0; i < m->n_slots; i++) {
		struct slot *s = &m->slots[i];
		if (!s->job || s->n_step == 0)
			continue;
		llama_memory_seq_rm(mem, i, s->n_past, -1);
		if (!newest || s->admitted > newest->admitted)
			newest = s;
	}
	log_warn("model %s: llama_decode returned %d for %d tokens; failing the newest job", m->id,
	         ret, m->batch.n_tokens);
	if (newest)
		finish(m, newest, GEN_FINISH_ERROR, ret == 1 ? BRG_E_RESOURCE : BRG_E_INTERNAL,
		       ret == 1 ? "no room in the KV cache" : "llama_decode failed");
}

/* One decode step over every active slot; false when there was nothing to
 * decode (every active slot's prompt is with the prefill helper). */
static bool step(struct engine_model *m)
{
	int n_decode, n_prompt;
	if (build_batch(m, &n_decode, &n_prompt) == 0)
		return false;
	long long t0 = brg_now_us();
	int ret = llama_decode(m->ctx, m->batch);
	if (ret != 0) {
		recover(m, ret);
		return true;
	}
	engine_pace_observe(&m->pace, n_decode, n_prompt, (double)(brg_now_us() - t0) * 1e-6);
	atomic_fetch_add(&m->n_steps, 1);
	if (n_decode > 0 && n_prompt > 0)
		atomic_fetch_add(&m->n_mixed_steps, 1);
	/* Counted before any sampling, so that a job's on_done sees its share. */
	int n_live = 0;
	for (int i = 0; i < m->n_slots; i++) {
		struct slot *s = &m->slots[i];
		if (s->job) {
			s->n_past += s->n_step; /* now cache[0, n_past) is in the cells */
			n_live += s->n_past;
		}
	}
	atomic_store_explicit(&m->n_cells_live, n_live, memory_order_relaxed);
	atomic_fetch_add(&m->n_prompt_decoded, (uint_least64_t)n_prompt);
	for (int i = 0; i < m->n_slots; i++) {
		struct slot *s = &m->slots[i];
		if (!s->job || s->n_step == 0 || s->i_logits < 0)
			continue; /* idle, or a prompt chunk that is not the last */
		take_token(m, s, sample(m, s));
	}
	return true;
}

/* engine_stop or engine_free: every running and queued job ends CANCELLED. */
static void cancel_all(struct engine_model *m)
{
	for (int i = 0; i < m->n_slots; i++)
		if (m->slots[i].job)
			finish(m, &m->slots[i], GEN_FINISH_CANCELLED, BRG_OK, NULL);
	pthread_mutex_lock(&m->mu);
	struct job *q = m->q_head;
	m->q_head = m->q_tail = NULL;
	m->n_queued = 0;
	pthread_mutex_unlock(&m->mu);
	while (q) {
		struct job *next = q->next;
		finish_queued(q, GEN_FINISH_CANCELLED);
		q = next;
	}
	engine_embed_cancel_all(m, BRG_E_SHUTTING_DOWN);
}

void *engine_sched_main(void *arg)
{
	struct engine_model *m = arg;
	for (;;) {
		struct job *dropped = NULL;
		pthread_mutex_lock(&m->mu);
		while (!m->is_stopping && !m->q_head && !m->e_head && atomic_load(&m->n_busy) == 0)
			pthread_cond_wait(&m->cv, &m->mu);
		bool has_embed = m->e_head != NULL;
		bool is_stopping = m->is_stopping;
		bool is_draining = m->is_draining;
		if (!is_stopping && !is_draining)
			admit(m, &dropped);
		pthread_mutex_unlock(&m->mu);
		while (dropped) {
			struct job *next = dropped->next;
			finish_queued(dropped, GEN_FINISH_CANCELLED);
			dropped = next;
		}
		if (is_stopping)
			break;
		if (is_draining) {
			/* engine_stop: nothing new can be queued; sleep until freed. */
			cancel_all(m);
			continue;
		}
		sweep(m);
		engine_helper_step(m);
		bool did_step = step(m);
		engine_prefix_resolve(m);
		if (has_embed)
			engine_embed_step(m);
		else if (!did_step)
			engine_helper_wait(m);
	}
	cancel_all(m);
	return NULL;
}
