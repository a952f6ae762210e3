/*
 * engine_int.h — private to src/engine/: the structs behind struct
 * engine_model and the functions the engine's files share.  Nothing outside
 * src/engine/ includes this (it is the one place llama.h is included from,
 * through llama_lazy.h: llama.cpp is loaded at the first model load).
 *
 * Files:
 *   engine.c    init, llama.cpp log routing, load/free, submit, facts
 *   template.c  choosing and rendering the chat template
 *   sample.c    one llama_sampler chain per job from its gen_params
 *   dist.c      sampling softmax(logits / T) without the chain, vectorised
 *   sched.c     the scheduler thread: slots, batching, decode, sampling
 *   prefix.c    prefix KV reuse and shared prefill: where a job lands, what
 *               of its prompt it need not decode
 *   prefill.c   the prefill helper: long prompts decoded on a second
 *               context and thread while the scheduler's slots decode
 *   embed.c     embeddings: pooling choice, a second context, embed jobs
 *   estimate.c  the memory a load will take, from the GGUF header alone
 *   llama_lazy.c  libllama by dlopen at the first load: a table of pointers
 *
 * Ownership and threads, once:
 *   - struct engine_model is created by engine_load and freed by engine_free
 *     after its scheduler thread has been joined.
 *   - The queue (q_head/q_tail/n_queued), is_stopping and is_draining are
 *     guarded by 'mu'.  slot->job and n_busy are written only by the
 *     scheduler thread, under 'mu', so that submitters see a consistent
 *     count; the scheduler itself reads them without the lock.  Everything
 *     else in a slot, the llama_context, the batch and the scratch buffers
 *     belong to the scheduler thread alone.
 *   - model, vocab, tmpl and the numbers are immutable after engine_load, so
 *     any thread may read them (tokenizing only reads the vocab).
 *   - A job is owned by the queue, then by its slot, then freed by the
 *     scheduler right after its on_done returns.
 */
#ifndef BRG_ENGINE_ENGINE_INT_H
#define BRG_ENGINE_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/llama_lazy.h"
#include "engine/textstream.h"

/* One queued or running generation. */
struct job {
	struct job *next; /* queue link */
	llama_token *tokens;
	int n_prompt;
	struct gen_params params; /* params.stops[] point into stop_copies */
	char *stop_copies[GEN_MAX_STOPS];
	struct llama_sampler *chain; /* built on the submitting thread */
	bool is_greedy;              /* the chain is greedy alone: engine_argmax does its work */
	bool is_plain;               /* temperature (and min_p) alone: dist.c does its work */
	uint64_t rng;                /* dist.c's random state */
	struct textstream *ts;
	const atomic_bool *cancel; /* borrowed; may be NULL */
	struct sink sink;
};

/*
 * One parallel sequence; its index is its llama_seq_id.  A slot with a job
 * is prefilling while n_past < job->n_prompt and decoding after that, when
 * 'last' holds the sampled token that still has to go through the model.
 * A prefilling slot with wait_on >= 0 is parked: another slot is decoding
 * the prompt prefix it shares, and prefix.c copies those cells over when
 * it is done (shared prefill).
 *
 * cache[0, n_past) are the tokens this sequence's KV cells hold: written
 * when a token enters a batch, trusted only once llama_decode succeeded
 * (n_past moves then).  They outlive the job, so a free slot still offers
 * its cells for prefix reuse until the next job that lands in it trims
 * them.
 */
struct slot {
	struct job *job;    /* NULL: free (guarded by mu) */
	uint64_t admitted;  /* admission order of its latest job: the newest yields on a
	                       failed decode; the lowest free one is least recently used */
	int n_past;         /* tokens of this sequence in the KV cache */
	llama_token *cache; /* n_ctx_slot entries; see above */
	int n_cached;       /* of the job's prompt, reused rather than decoded */
	int wait_on;        /* parked: the slot decoding our prefix, else -1 */
	uint64_t wait_for;  /* ... and its job's 'admitted' (the slot may move on) */
	int n_wait;         /* ... and how many of our prompt tokens it will hold */
	int n_completion;   /* tokens sampled, end-of-generation excluded */
	double logprob_sum; /* params.want_logprobs: log p of those tokens */
	int n_logprobs;     /* how many of them are in logprob_sum */
	llama_token last;   /* decoding: the token to feed next */
	int n_step;         /* tokens this slot put into the current batch */
	int i_logits;       /* batch index of its logits this step, -1 none */
	bool is_offloaded;  /* the prefill helper holds its prompt (prefill.c) */
};

/* The cost model behind chunked prefill (pace.c): seconds a decode-only
 * step of n slots takes (t_decode[min(n, PACE_WIDTHS - 1)]), and what each
 * prompt token adds to a step.  Scheduler thread only. */
#define PACE_WIDTHS 65
struct engine_pace {
	double t_decode[PACE_WIDTHS];
	bool has_decode[PACE_WIDTHS];
	double t_token;
	bool has_token;
	int n_last_mixed; /* prompt tokens in the latest timed mixed step */
};

/* One queued embeddings request (embed.c). */
struct embed_job;

struct engine_model {
	char *id;
	char *path;
	struct llama_model *model;
	const struct llama_vocab *vocab;
	struct llama_context *ctx;                   /* the scheduler thread's alone */
	struct ggml_threadpool *pool;                /* attached to ctx; NULL: ggml's own */
	void (*pool_free)(struct ggml_threadpool *); /* from the CPU backend */
	char *tmpl;                                  /* a llama.cpp template name or text */

	int n_ctx_slot;  /* tokens per sequence, prompt + completion */
	int n_ctx_train; /* the model's trained context */
	int n_slots;
	int n_threads; /* the scheduler's decode threads (one fewer while the helper works) */
	int n_batch;   /* tokens per decode step, >= n_slots */
	int max_queue;
	size_t mem_bytes;
	bool can_reuse; /* prefix KV reuse: asked for, and the memory allows it */

	/* engine_stats(): written by the scheduler thread, read by any. */
	atomic_uint_least64_t n_prompt_decoded;
	atomic_uint_least64_t n_prompt_reused;
	atomic_uint_least64_t n_kv_copies;
	atomic_uint_least64_t n_steps;
	atomic_uint_least64_t n_mixed_steps;
	atomic_uint_least64_t n_helper_prompts;
	atomic_uint_least64_t n_helper_tokens;
	atomic_int n_cells_live; /* KV cells of the sequences with a job, after the last step */

	pthread_mutex_t mu;
	pthread_cond_t cv; /* a job was queued, or is_stopping was set */
	struct job *q_head, *q_tail;
	int n_queued;
	bool is_stopping;  /* engine_free: the thread exits */
	bool is_draining;  /* engine_stop: cancel everything, refuse submits */
	atomic_int n_busy; /* slots holding a job; written under mu */
	pthread_t thread;
	bool has_thread;

	/* Embeddings (embed.c).  pooling is fixed at load; the embed queue is
	 * guarded by mu; ectx and ebatch belong to the scheduler thread, which
	 * creates them on the first embeddings request. */
	enum llama_pooling_type pooling; /* NONE: the model gives no embeddings */
	int n_embd;
	int n_ctx_embd; /* tokens per embeddings decode (and per input) */
	struct embed_job *e_head, *e_tail;
	int n_equeued;
	struct llama_context *ectx;
	struct llama_batch ebatch;

	/* The prefill helper (prefill.c); NULL when the model has none.
	 * has_helper_param: engine_params_want_helper() of the load. */
	struct engine_helper *helper;
	bool has_helper_param;

	/* Scheduler thread only. */
	struct engine_pace pace;
	struct slot *slots;
	struct llama_batch batch;
	uint64_t n_admitted;
	char *piece; /* llama_token_to_piece output */
	size_t piece_cap;
	char *text; /* textstream output */
	size_t text_cap;
	float *dist_scratch; /* engine_dist_scratch_floats(n_vocab) for dist.c */
};

/* n_ctx == 0 takes the trained length, but no more than this per slot:
 * modern GGUFs train on 128k tokens, and n_slots KV caches of that size
 * would exhaust memory on the machines brigade targets. */
#define N_CTX_DEFAULT_CAP 4096
/* llama.cpp's physical batch (n_ubatch) default; larger only costs memory. */
#define N_UBATCH_MAX 512

/* The context sizes engine_load asks llama.cpp for, shared with the memory
 * estimate (estimate.c) so that the two cannot drift apart.  Tokens per
 * slot: */
static inline int engine_ctx_slot(int n_ctx, int n_ctx_train)
{
	if (n_ctx > 0)
		return n_ctx;
	return n_ctx_train > 0 && n_ctx_train < N_CTX_DEFAULT_CAP ? n_ctx_train : N_CTX_DEFAULT_CAP;
}

/* The decode threads for engine_params.n_threads (0: every online core). */
static inline int engine_threads(int n_threads)
{
	if (n_threads > 0)
		return n_threads;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

/* Whether a load of 'p' gets a prefill helper (prefill.c), as far as its
 * parameters say: asked for, on the CPU (the helper splits cores), with
 * two threads to split and a second slot to decode beside the prompt.
 * engine_helper_wanted() adds what only the loaded model tells. */
static inline bool engine_params_want_helper(const struct engine_params *p)
{
	return p->has_prefill_helper && p->n_gpu_layers == 0 && engine_threads(p->n_threads) >= 2 &&
	       p->n_slots >= 2;
}

/* Tokens per decode step: every decoding slot puts one token in each step,
 * so a step must hold all. */
static inline int engine_step_batch(int n_batch, int n_slots)
{
	return n_batch > n_slots ? n_batch : n_slots;
}

/* llama.cpp's n_ubatch for a step batch of n_batch tokens. */
static inline int engine_ubatch(int n_batch)
{
	return n_batch < N_UBATCH_MAX ? n_batch : N_UBATCH_MAX;
}

/* engine.c: while the flag this points to is set, llama.cpp's warnings and
 * errors from this thread are logged as debug lines (prefill.c: a decode it
 * aborted on purpose).  Per thread; NULL by default. */
extern _Thread_local const atomic_bool *engine_llog_quiet_when;

/* engine.c: a CPU threadpool of n_threads (m->pool_free frees it), or NULL
 * (logged) when the backend has none. */
struct ggml_threadpool *engine_pool_new(struct engine_model *m, int n_threads);

/* engine.c: frees everything a job owns; job_free(NULL) does nothing. */
void engine_job_free(struct job *j);

/*
 * engine.c: loads llama.cpp (llama_lazy.h) and routes its log, once; no
 * llama.cpp, ggml or gguf function may be called before it has succeeded.
 * engine_start() calls it.  Errors: BRG_E_MODEL_LOAD (the library or a
 * symbol missing; every later call gives the same).  Thread-safe.
 */
enum brg_err engine_lib_load(struct brg_error *err);

/*
 * template.c: picks m->tmpl from 'name' (a llama.cpp template name or text),
 * else the GGUF's own template, else ChatML.  Errors: BRG_E_BAD_REQUEST when
 * 'name' is given and llama.cpp does not know it; BRG_E_NOMEM.
 */
enum brg_err engine_template_pick(struct engine_model *m, const char *name, struct brg_error *err);

/*
 * sample.c: a sampler chain for 'p' (see the file comment for the order).
 * NULL on out-of-memory.  The caller frees it with llama_sampler_free().
 */
struct llama_sampler *engine_sampler_new(const struct gen_params *p, int n_vocab);
/* Whether the chain for 'p' is greedy alone (no penalties to remember). */
bool engine_sampler_is_greedy(const struct gen_params *p);
/* Whether it is temperature (after an optional min_p) and a draw alone:
 * engine_dist_sample draws the same distribution without the chain. */
bool engine_sampler_is_plain(const struct gen_params *p, int n_vocab);

/*
 * dist.c, scheduler thread.  engine_dist_sample: draws a token from
 * softmax(logits / temperature) over n tokens, those with
 * logit - max < ln(min_p) left out (min_p 0: none), advancing *rng;
 * 'scratch' holds engine_dist_scratch_floats(n) floats (after a draw its
 * first n are the unnormalised weights exp((l - max) / T)).  -1 when the
 * logits give no distribution (NaN, infinite): use the chain then.
 * engine_rng_seed: a state for a request's seed, or a fresh one.
 */
int engine_dist_sample(const float *logits, int n, float temperature, float min_p, uint64_t *rng,
                       float *scratch);
size_t engine_dist_scratch_floats(int n_vocab);
uint64_t engine_rng_seed(bool has_seed, uint32_t seed);
uint64_t engine_rng_next(uint64_t *state);
/* The first index of the largest of logits[0, n), as llama.cpp's greedy
 * sampler picks it (a NaN is never picked over a number before it). */
int engine_argmax(const float *logits, int n);

/*
 * embed.c: sets m->pooling from 'name' ("mean", "cls", "last", "none") or,
 * when NULL, from the GGUF's <arch>.pooling_type.  BRG_E_BAD_REQUEST for
 * an unknown name.
 */
enum brg_err engine_embed_setup(struct engine_model *m, const char *name, struct brg_error *err);
/* embed.c, scheduler thread: one decode for the oldest embeddings job. */
void engine_embed_step(struct engine_model *m);
/* embed.c, scheduler thread: ends every queued embeddings job with 'e'. */
void engine_embed_cancel_all(struct engine_model *m, enum brg_err e);
/* embed.c: frees the embeddings context (scheduler thread joined). */
void engine_embed_release(struct engine_model *m);

/*
 * prefix.c, scheduler thread.  engine_prefix_pick: the free slot a queued
 * job should land in (at least one must be free); it reads only the
 * slots' caches.  engine_prefix_admit: 'j' has just landed in 's'
 * (s->job == j): keeps or copies the longest cached prefix of its prompt
 * into the slot, or parks it behind a slot that is decoding a longer one;
 * sets s->n_past and s->n_cached.  engine_prefix_resolve: after a step,
 * unparks every slot whose leader now holds what it waits for (or has
 * gone) and copies those cells over.
 */
int engine_prefix_pick(struct engine_model *m, const struct job *j);
void engine_prefix_admit(struct engine_model *m, struct slot *s);
void engine_prefix_resolve(struct engine_model *m);

/* sched.c: the scheduler thread's body; 'arg' is the struct engine_model. */
void *engine_sched_main(void *arg);

/*
 * pace.c, scheduler thread.  engine_pace_observe: a step with n_decode
 * decoding slots and n_prompt prompt tokens took 'seconds'.
 * engine_pace_budget: the prompt tokens the next step may carry when
 * n_decode slots decode in it, n_loading slots have prompt tokens for it
 * and 'room' batch places are left.
 */
void engine_pace_observe(struct engine_pace *p, int n_decode, int n_prompt, double seconds);
int engine_pace_budget(const struct engine_pace *p, int n_decode, int n_loading, int room);

/*
 * prefill.c.  engine_helper_wanted: whether engine_load gives model 'm'
 * (context, threads and slots set) a prefill helper; engine_helper_ubatch:
 * its micro-batch for a step batch of n_batch (estimate.c counts both).
 * engine_helper_start: creates it when wanted (BRG_E_MODEL_LOAD,
 * BRG_E_NOMEM, BRG_E_INTERNAL); engine_helper_stop: stops and frees it
 * (no-op without one; the scheduler thread joined).  Scheduler thread:
 * engine_helper_step takes a finished prompt back into its slot and hands
 * a long one over; engine_helper_forget: slot s's job ends while the
 * helper holds it; engine_helper_wait: sleeps a little while all that is
 * left to do is the helper's.
 */
bool engine_helper_wanted(const struct engine_model *m);
int engine_helper_ubatch(int n_batch);
enum brg_err engine_helper_start(struct engine_model *m, struct brg_error *err);
void engine_helper_stop(struct engine_model *m);
void engine_helper_step(struct engine_model *m);
void engine_helper_forget(struct engine_model *m, struct slot *s);
void engine_helper_wait(struct engine_model *m);

/* log softmax(logits)[t] over n logits (logsoftmax.c); NaN for bad input. */
double engine_log_softmax_at(const float *logits, int n, int t);

#endif
