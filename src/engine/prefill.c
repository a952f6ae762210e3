/*
 * prefill.c — the prefill helper: a second llama_context on its own thread
 * that decodes one long prompt while the scheduler keeps the model's other
 * streams decoding (docs/internals/engine.md, "The prefill helper").
 *
 * Why: on a CPU, a prompt token in a small chunk costs about as much as a
 * decode step, so chunked prefill in the scheduler's context (pace.c) can
 * keep a stream's gap near twice its gap alone only by loading the prompt
 * a few tokens a step — minutes for 4,000 tokens.  Split the cores instead:
 * the scheduler decodes its streams with one thread fewer, and the helper
 * decodes the prompt in full micro-batches on the thread it frees.  The
 * stream slows by the share of one core; the prompt loads at the speed of
 * one.
 *
 * The hand-off, all on the scheduler thread (engine_helper_step):
 *   1. A prefilling slot with at least HELPER_MIN_TOKENS of its prompt left
 *      while another slot decodes goes to an idle helper: its prompt tokens
 *      are copied (the job may be cancelled and freed while the helper
 *      works), and so are the KV cells it already holds (a reused prefix),
 *      through llama_state_seq_get_data.  The slot is marked offloaded:
 *      build_batch skips it; the scheduler drops to n_threads - 1.
 *   2. The helper restores those cells into its own one-sequence context,
 *      decodes the rest of the prompt except its last token (which the
 *      scheduler decodes, for the logits it samples from), and writes the
 *      sequence's cells back out.
 *   3. The scheduler puts them into the slot's sequence with
 *      llama_state_seq_set_data, moves n_past and the token mirror, and
 *      goes back to n_threads.  The slot then decodes its last prompt token
 *      like any other.
 * When the scheduler has nothing of its own left to decode (the streams
 * ended), the helper yields at its next chunk boundary: what it has decoded
 * comes back the same way, and the scheduler finishes the prompt on every
 * thread (or hands it over again if streams come back).
 * A job that ends while offloaded (cancelled, engine stopping) is forgotten:
 * the helper's abort callback stops its decode, and its result is dropped
 * when it comes back.  A failed decode or restore sends the slot back to
 * the scheduler's own prefill from scratch: slower, never wrong.
 *
 * Threads: the helper's context, batch and buffers are the helper thread's
 * while its state is BUSY and the scheduler's otherwise; 'state' and
 * 'is_stopping' are guarded by h->mu, and the helper signals m->cv (under
 * m->mu) when it is done, so a scheduler sleeping for it wakes up.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "engine/engine_int.h"

/* A prompt shorter than this stays in the scheduler's paced prefill: it is
 * in within a few dozen steps, and a hand-off costs two state copies. */
#define HELPER_MIN_TOKENS 128
/* The helper's micro-batch.  Its compute buffer is sized for this many rows
 * of logits (llama.cpp reserves them even though the helper asks for
 * none); a single thread's matrix products are as fast at 128 rows as at
 * 512. */
#define HELPER_UBATCH 128

/* The helper thread's nice value, against the scheduler's 0. */
#define HELPER_NICE 10

enum helper_state { HELPER_IDLE, HELPER_BUSY, HELPER_DONE };

struct engine_helper {
	struct llama_context *ctx;
	struct llama_batch batch;
	int n_batch;
	pthread_t thread;
	bool has_thread;
	/* The scheduler's threadpool while the helper works: one thread fewer.
	 * Switching pools pauses the idle one; lowering the thread count of
	 * one pool would leave its spare worker spinning between graphs
	 * (ggml polls for work), on the core the helper needs. */
	struct ggml_threadpool *pool_fewer;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum helper_state state; /* guarded by mu */
	bool is_stopping;        /* guarded by mu */
	atomic_bool abort;       /* the job was forgotten: stop decoding */
	atomic_bool yield;       /* the scheduler idles: stop after this chunk */

	/* The work: slot 'slot' of admission 'admitted'; decode
	 * tokens[n_from, n_to) after the cells [0, n_from) held in 'state'.
	 * Out: the sequence's cells [0, n_to) in 'state', is_ok. */
	int slot;
	uint64_t admitted;
	llama_token *tokens; /* n_ctx_slot entries */
	int n_from, n_to;
	long long t_start_us; /* when it was handed over */
	uint8_t *state_buf;
	size_t state_len, state_cap;
	bool is_ok;
};

static bool should_abort(void *ud)
{
	struct engine_helper *h = ud;
	return atomic_load_explicit(&h->abort, memory_order_relaxed);
}

static bool ensure_state(struct engine_helper *h, size_t need)
{
	if (h->state_cap >= need)
		return true;
	uint8_t *grown = realloc(h->state_buf, need);
	if (!grown)
		return false;
	h->state_buf = grown;
	h->state_cap = need;
	return true;
}

/* Helper thread: the work in h, on h->ctx.  True when every token is in. */
static bool decode_prompt(struct engine_helper *h)
{
	llama_memory_t mem = llama_get_memory(h->ctx);
	llama_memory_clear(mem, true);
	if (h->n_from > 0 && llama_state_seq_set_data(h->ctx, h->state_buf, h->state_len, 0) == 0)
		return false;
	for (int pos = h->n_from; pos < h->n_to;) {
		int n = h->n_to - pos < h->n_batch ? h->n_to - pos : h->n_batch;
		h->batch.n_tokens = n;
		for (int k = 0; k < n; k++) {
			h->batch.token[k] = h->tokens[pos + k];
			h->batch.pos[k] = pos + k;
			h->batch.n_seq_id[k] = 1;
			h->batch.seq_id[k][0] = 0;
			h->batch.logits[k] = false;
		}
		if (llama_decode(h->ctx, h->batch) != 0)
			return false; /* 2: aborted; anything else, a failure */
		pos += n;
		if (pos < h->n_to && atomic_load(&h->yield)) {
			h->n_to = pos; /* the scheduler takes the rest on every thread */
			break;
		}
	}
	if (h->n_to == h->n_from)
		return true; /* nothing new: the slot's cells are still in place */
	size_t need = llama_state_seq_get_size(h->ctx, 0);
	if (!ensure_state(h, need))
		return false;
	h->state_len = llama_state_seq_get_data(h->ctx, h->state_buf, h->state_cap, 0);
	llama_memory_clear(mem, true);
	return h->state_len > 0;
}

static void *helper_main(void *arg)
{
	struct engine_model *m = arg;
	struct engine_helper *h = m->helper;
	engine_llog_quiet_when = &h->abort;
	/* Background work: when a third thread wants a core (an HTTP thread
	 * sending tokens, the client), it should come out of the prompt's
	 * share, not the streams'.  Linux nices threads one by one. */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), HELPER_NICE) != 0)
		log_debug("model %s: the prefill thread keeps its priority", m->id);
	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->is_stopping && h->state != HELPER_BUSY)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->is_stopping)
			break;
		pthread_mutex_unlock(&h->mu);
		bool is_ok = !atomic_load(&h->abort) && decode_prompt(h);
		pthread_mutex_lock(&h->mu);
		h->is_ok = is_ok;
		h->state = HELPER_DONE;
		pthread_mutex_unlock(&h->mu);
		/* Wake a scheduler that sleeps because all it has left is ours. */
		pthread_mutex_lock(&m->mu);
		pthread_cond_broadcast(&m->cv);
		pthread_mutex_unlock(&m->mu);
		pthread_mutex_lock(&h->mu);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

bool engine_helper_wanted(const struct engine_model *m)
{
	return m->has_helper_param && !llama_model_is_recurrent(m->model) &&
	       !llama_model_is_hybrid(m->model);
}

int engine_helper_ubatch(int n_batch)
{
	return n_batch < HELPER_UBATCH ? n_batch : HELPER_UBATCH;
}

enum brg_err engine_helper_start(struct engine_model *m, struct brg_error *err)
{
	if (!engine_helper_wanted(m))
		return BRG_OK;
	struct engine_helper *h = calloc(1, sizeof *h);
	if (!h)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	m->helper = h;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	atomic_init(&h->abort, false);
	atomic_init(&h->yield, false);
	h->n_batch = engine_helper_ubatch(m->n_batch);
	struct llama_context_params cp = llama_context_default_params();
	cp.n_ctx = (uint32_t)m->n_ctx_slot;
	cp.n_seq_max = 1;
	cp.n_batch = (uint32_t)h->n_batch;
	cp.n_ubatch = (uint32_t)h->n_batch;
	cp.n_threads = 1;
	cp.n_threads_batch = 1;
	cp.no_perf = true;
	cp.abort_callback = should_abort;
	cp.abort_callback_data = h;
	h->ctx = llama_init_from_model(m->model, cp);
	h->tokens = malloc((size_t)m->n_ctx_slot * sizeof *h->tokens);
	if (!h->ctx || !h->tokens)
		return brg_fail(
		    err, BRG_E_MODEL_LOAD,
		    "cannot create the prefill context of %d tokens for %s (out of memory?)",
		    m->n_ctx_slot, m->path);
	h->batch = llama_batch_init(h->n_batch, 0, 1);
	if (m->pool)
		h->pool_fewer = engine_pool_new(m, m->n_threads - 1);
	if (pthread_create(&h->thread, NULL, helper_main, m) != 0)
		return brg_fail(err, BRG_E_INTERNAL, "cannot start the prefill thread of %s",
		                m->id);
	h->has_thread = true;
	return BRG_OK;
}

void engine_helper_stop(struct engine_model *m)
{
	struct engine_helper *h = m->helper;
	if (!h)
		return;
	if (h->has_thread) {
		atomic_store(&h->abort, true);
		pthread_mutex_lock(&h->mu);
		h->is_stopping = true;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->thread, NULL);
	}
	if (h->batch.token)
		llama_batch_free(h->batch);
	if (h->ctx)
		llama_free(h->ctx);
	if (h->pool_fewer) {
		if (m->ctx)
			llama_attach_threadpool(m->ctx, m->pool, NULL);
		m->pool_free(h->pool_fewer);
	}
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h->tokens);
	free(h->state_buf);
	free(h);
	m->helper = NULL;
}

static enum helper_state state_of(struct engine_helper *h)
{
	pthread_mutex_lock(&h->mu);
	enum helper_state st = h->state;
	pthread_mutex_unlock(&h->mu);
	return st;
}

/* The scheduler decodes with n threads: the whole pool, or the smaller. */
static void set_threads(struct engine_model *m, int n)
{
	struct engine_helper *h = m->helper;
	if (h->pool_fewer)
		llama_attach_threadpool(m->ctx, n < m->n_threads ? h->pool_fewer : m->pool, NULL);
	llama_set_n_threads(m->ctx, n, n);
}

/* Puts the helper's cells into slot s, or sends s back to prefill from
 * scratch when they cannot be restored. */
static void take_back(struct engine_model *m, struct slot *s)
{
	struct engine_helper *h = m->helper;
	llama_seq_id seq = (llama_seq_id)(s - m->slots);
	s->is_offloaded = false;
	if (h->is_ok && h->n_to == h->n_from) {
		/* It yielded before decoding anything; the cells never left. */
		log_debug("model %s: prefill helper: slot %d back with nothing new", m->id,
		          (int)seq);
		return;
	}
	long long t0 = brg_now_us();
	if (h->is_ok && llama_state_seq_set_data(m->ctx, h->state_buf, h->state_len, seq) > 0) {
		memcpy(s->cache + h->n_from, h->tokens + h->n_from,
		       (size_t)(h->n_to - h->n_from) * sizeof *s->cache);
		atomic_fetch_add(&m->n_prompt_decoded, (uint_least64_t)(h->n_to - h->n_from));
		atomic_fetch_add(&m->n_helper_tokens, (uint_least64_t)(h->n_to - h->n_from));
		s->n_past = h->n_to;
		long long t1 = brg_now_us();
		log_debug(
		    "model %s: prefill helper: slot %d back with %d of %d prompt tokens after "
		    "%.1f s (%.1f MB restored in %.1f ms)",
		    m->id, (int)seq, h->n_to, s->job->n_prompt, (double)(t1 - h->t_start_us) * 1e-6,
		    (double)h->state_len * 1e-6, (double)(t1 - t0) * 1e-3);
		return;
	}
	log_warn("model %s: the prefill helper failed; slot %d prefills its prompt itself", m->id,
	         (int)seq);
	llama_memory_seq_rm(llama_get_memory(m->ctx), seq, -1, -1);
	s->n_past = 0;
	s->n_cached = 0;
}

/* The prefilling slot to hand over, if one qualifies; see the file comment. */
static struct slot *candidate(struct engine_model *m)
{
	struct slot *best = NULL;
	bool is_decoding = false;
	for (int i = 0; i < m->n_slots; i++) {
		struct slot *s = &m->slots[i];
		if (!s->job || s->is_offloaded)
			continue;
		if (s->n_past >= s->job->n_prompt) {
			is_decoding = true;
			continue;
		}
		if (s->wait_on < 0 && s->job->n_prompt - 1 - s->n_past >= HELPER_MIN_TOKENS &&
		    (!best || s->admitted < best->admitted))
			best = s;
	}
	return is_decoding ? best : NULL;
}

/* Hands slot s's prompt to the idle helper; false leaves it with us. */
static bool hand_over(struct engine_model *m, struct slot *s)
{
	struct engine_helper *h = m->helper;
	llama_seq_id seq = (llama_seq_id)(s - m->slots);
	h->state_len = 0;
	if (s->n_past > 0) {
		size_t need = llama_state_seq_get_size(m->ctx, seq);
		if (!ensure_state(h, need))
			return false;
		h->state_len = llama_state_seq_get_data(m->ctx, h->state_buf, h->state_cap, seq);
		if (h->state_len == 0)
			return false;
	}
	h->slot = (int)seq;
	h->admitted = s->admitted;
	h->n_from = s->n_past;
	h->n_to = s->job->n_prompt - 1;
	memcpy(h->tokens, s->job->tokens, (size_t)h->n_to * sizeof *h->tokens);
	atomic_store(&h->abort, false);
	atomic_store(&h->yield, false);
	h->t_start_us = brg_now_us();
	atomic_fetch_add(&m->n_helper_prompts, 1);
	log_debug("model %s: prefill helper: takes slot %d's prompt, tokens %d to %d", m->id,
	          (int)seq, h->n_from, h->n_to);
	s->is_offloaded = true;
	set_threads(m, m->n_threads - 1);
	pthread_mutex_lock(&h->mu);
	h->state = HELPER_BUSY;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	return true;
}

void engine_helper_step(struct engine_model *m)
{
	struct engine_helper *h = m->helper;
	if (!h)
		return;
	enum helper_state st = state_of(h);
	if (st == HELPER_BUSY)
		return;
	if (st == HELPER_DONE) {
		struct slot *s = &m->slots[h->slot];
		if (s->job && s->is_offloaded && s->admitted == h->admitted)
			take_back(m, s);
		pthread_mutex_lock(&h->mu);
		h->state = HELPER_IDLE;
		pthread_mutex_unlock(&h->mu);
		set_threads(m, m->n_threads);
		/* Tens of MB for a long prompt: not kept for the next one. */
		free(h->state_buf);
		h->state_buf = NULL;
		h->state_cap = 0;
	}
	struct slot *s = candidate(m);
	if (s && !hand_over(m, s))
		log_warn("model %s: out of memory for a prefill hand-off", m->id);
}

void engine_helper_forget(struct engine_model *m, struct slot *s)
{
	if (!s->is_offloaded)
		return;
	s->is_offloaded = false;
	atomic_store(&m->helper->abort, true); /* its result is dropped in engine_helper_step */
}

void engine_helper_wait(struct engine_model *m)
{
	struct engine_helper *h = m->helper;
	if (!h || state_of(h) != HELPER_BUSY)
		return;
	/* Nothing of our own to decode: the streams the helper made room for
	 * are gone, so the prompt goes faster here on every thread.  The
	 * helper stops at its next chunk boundary and hands over what it has;
	 * engine_helper_step hands the prompt over again if streams come back. */
	atomic_store(&h->yield, true);
	/* Bounded, so that a cancelled job is noticed by sweep() soon. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += 20 * 1000 * 1000;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&m->mu);
	if (!m->is_stopping && !m->q_head && !m->e_head && state_of(h) == HELPER_BUSY)
		pthread_cond_timedwait(&m->cv, &m->mu, &until);
	pthread_mutex_unlock(&m->mu);
}
