/*
 * engine.h — brigade's embedded llama.cpp engine; the only module that
 * includes llama.h.
 *
 * One struct engine_model is one loaded GGUF file with one llama_context of
 * 'n_slots' parallel sequences and one scheduler thread that owns that
 * context.  Callers submit generations from any thread; the scheduler admits
 * them into free slots between decode steps (continuous batching), decodes
 * all active slots in one llama_batch per step, samples each, and pushes
 * text to each job's sink.  A job whose cancel flag is set is dropped, and
 * its slot freed, at the next step.  A prompt prefix that some slot's KV
 * cells already hold, or that a slot is decoding right now, is not decoded
 * again (prefix.c; docs/internals/engine.md).
 */
#ifndef BRG_ENGINE_ENGINE_H
#define BRG_ENGINE_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/embed.h"
#include "core/err.h"
#include "core/gen.h"

struct engine_model;

struct engine_params {
	const char *id;            /* model id for messages and error details */
	const char *path;          /* GGUF file */
	int n_ctx;                 /* context per slot (tokens); 0: the model's trained length */
	int n_slots;               /* parallel sequences */
	int n_threads;             /* 0: all cores */
	int n_gpu_layers;          /* -1: all */
	int n_batch;               /* max tokens per decode step */
	int max_queue;             /* jobs waiting for a slot before submit says MODEL_BUSY */
	const char *chat_template; /* NULL: the GGUF's, else ChatML; or a llama.cpp template name */
	const char *pooling; /* embeddings: "mean" | "cls" | "last" | "none"; NULL: the GGUF's */
	/* Reuse the KV cells of a cached prompt prefix (true by default): a
	 * shared system prompt or an earlier turn is decoded once, and n
	 * choices of one prompt share its prefill.  false: every job decodes
	 * its whole prompt (for comparisons and tests). */
	bool can_reuse_prefix;
	/* A second context on its own thread takes long prompts' prefill while
	 * other slots decode (true by default; used with 2+ threads and 2+
	 * slots, engine/prefill.c).  false: every prompt is prefilled in the
	 * scheduler's context, paced between decode steps. */
	bool has_prefill_helper;
};

struct engine_params engine_default_params(void);

/*
 * Once per process, before any other engine call: notes 'backend_dir'
 * (NULL: ggml's default paths).  llama.cpp itself (libllama and the libggml
 * libraries, by dlopen: the soname through the executable's RUNPATH, else
 * in 'backend_dir'), its log routed into core/log, and the ggml backends
 * found in 'backend_dir' (the CPU variant for this processor) are loaded at
 * the first engine_load, which fails with BRG_E_MODEL_LOAD when any is
 * missing; an idle or remote-only server never maps them.  Can't fail.
 * Not thread-safe.
 */
enum brg_err engine_init(const char *backend_dir, struct brg_error *err);
/* Loads llama.cpp and starts the backends now, once (engine_load calls
 * it); for callers that use llama.cpp directly.  Errors: BRG_E_MODEL_LOAD
 * (no libllama, or no backend).  Thread-safe. */
enum brg_err engine_start(struct brg_error *err);
void engine_shutdown(void);

/*
 * Loads the model, creates its context and starts its scheduler thread.
 * Errors: BRG_E_MODEL_LOAD (file missing, not GGUF, out of memory; the
 * message says which), BRG_E_BAD_REQUEST for a chat_template name llama.cpp
 * does not know.  On success *out is the caller's; engine_free() frees it.
 */
enum brg_err engine_load(const struct engine_params *p, struct engine_model **out,
                         struct brg_error *err);

/*
 * Stops the scheduler: every queued or running job finishes with
 * GEN_FINISH_CANCELLED (its on_done is called), then the thread is joined and
 * everything freed.  engine_free(NULL) does nothing.
 */
void engine_free(struct engine_model *m);

/*
 * Refuses new submits (BRG_E_SHUTTING_DOWN) and cancels every queued and
 * running job: each gets its on_done with GEN_FINISH_CANCELLED at the
 * scheduler's next step.  The model stays allocated until engine_free().
 * Thread-safe; used at shutdown so that waiting HTTP handlers finish.
 */
void engine_stop(struct engine_model *m);

/* Facts about a loaded model; thread-safe, can't fail. */
int engine_n_ctx(const struct engine_model *m); /* per slot */
int engine_n_ctx_train(const struct engine_model *m);
int engine_n_slots(const struct engine_model *m);
int engine_n_busy_slots(const struct engine_model *m); /* slots holding a job now */
/* The share (0-1) of the KV cache's cells that running sequences fill,
 * as of the last decode step (vLLM's kv_cache_usage_perc); 0 when idle.
 * Cells a prefix shares count once per sequence, so it is capped at 1. */
double engine_kv_usage(const struct engine_model *m);
size_t engine_memory_bytes(const struct engine_model *m);

/* Counters since engine_load; each is monotonic. */
struct engine_stats {
	uint64_t n_prompt_decoded; /* prompt tokens that went through llama_decode */
	uint64_t n_prompt_reused;  /* taken from KV cells instead: the sum of n_cached */
	uint64_t n_kv_copies;      /* prefixes copied from one slot's cells to another's */
	uint64_t n_steps;          /* llama_decode calls that generated or prefilled */
	uint64_t n_mixed_steps;    /* ... that carried prompt tokens next to decoding slots */
	uint64_t n_helper_prompts; /* prompts handed to the prefill helper (prefill.c) */
	uint64_t n_helper_tokens;  /* ... and the prompt tokens it decoded */
};

/*
 * Fills *out.  Thread-safe, can't fail; the counters are read one by one,
 * so they agree with each other only when the model is idle.  A job's
 * counts are in before its on_done is called.
 */
void engine_stats(const struct engine_model *m, struct engine_stats *out);

/*
 * Renders messages through the chat template (the config override, the
 * GGUF's own, or ChatML when the file has none), ending with the assistant
 * turn's opening.  *out is malloc'd, NUL-terminated, the caller's.  Errors:
 * BRG_E_BAD_REQUEST (template rejects the messages), BRG_E_NOMEM.
 * Thread-safe.
 */
enum brg_err engine_chat_render(struct engine_model *m, const struct chat_msg *msgs, size_t n,
                                char **out, struct brg_error *err);

/*
 * Queues one generation of 'prompt' (text; the BOS token is added when the
 * model wants one, never twice).  Tokenizes on the caller's thread so that a
 * prompt that cannot fit fails here: BRG_E_CONTEXT_BUDGET with details
 * current_tokens, budget, model.  BRG_E_MODEL_BUSY when max_queue jobs
 * already wait.  On BRG_OK the engine owns the job: 'sink' gets its pieces
 * and exactly one on_done from the scheduler thread.  'p' is copied.
 * 'cancel' is borrowed and must stay valid until on_done; setting it asks
 * the scheduler to drop the job at its next step.  On error the sink is
 * never called.
 */
enum brg_err engine_submit(struct engine_model *m, const char *prompt, const struct gen_params *p,
                           const atomic_bool *cancel, struct sink sink, struct brg_error *err);

/*
 * The pooling that makes this model's embeddings ("mean", "cls", "last"),
 * or NULL when it gives none; and the size of its vectors.  Thread-safe.
 */
const char *engine_pooling_name(const struct engine_model *m);
int engine_n_embd(const struct engine_model *m);

/*
 * Queues one embeddings request: every input is tokenized here (special
 * tokens added as the vocab wants: BOS, or CLS/SEP for BERT-like models)
 * and the vectors are computed by the scheduler thread between generation
 * steps, several inputs per decode, each pooled and L2-normalised.
 * Errors: BRG_E_BAD_REQUEST (the model gives no embeddings; dimensions
 * other than its own; an empty input or a token id outside the
 * vocabulary; detail "param"), BRG_E_CONTEXT_BUDGET (an input longer than
 * engine_n_ctx), BRG_E_MODEL_BUSY, BRG_E_SHUTTING_DOWN.  On BRG_OK 'sink'
 * gets exactly one on_done from the scheduler thread; r->cancel is polled
 * between decodes.  'r' need not outlive the call.
 */
enum brg_err engine_embed(struct engine_model *m, const struct embed_request *r,
                          struct embed_sink sink, struct brg_error *err);

/* Tokens 'text' would take (with BOS); -1 on failure.  Thread-safe. */
int engine_count_tokens(struct engine_model *m, const char *text);

/*
 * What loading 'p' will take, read from the GGUF header alone (no tensor
 * is loaded; estimate.c has the formulas): the weights (the tensors' data),
 * the KV cache (F16 K and V for every attention layer and every cell of
 * every slot, with the context sizes engine_load will use), and an
 * allowance for llama.cpp's compute and output buffers.  A loaded model's
 * engine_memory_bytes() is the same total.  The embeddings context, made
 * on a model's first embeddings request, is not counted.  Errors:
 * BRG_E_MODEL_LOAD (the file is missing, not GGUF, or lacks
 * general.architecture / <arch>.block_count / <arch>.embedding_length,
 * or llama.cpp cannot be loaded), BRG_E_CONFIG (slots or batch < 1,
 * context < 0).  Loads llama.cpp (not the backends) when the file exists.
 * Thread-safe; needs no engine_init().  'err' may be NULL.
 */
struct engine_estimate {
	size_t weights_bytes;
	size_t kv_bytes;
	size_t compute_bytes;
	size_t total_bytes; /* the sum of the three */
	int n_ctx_slot;     /* tokens per slot the load will ask for */
	int n_kv_cells;     /* KV cells over all slots, after llama.cpp rounds them up */
};

enum brg_err engine_estimate(const struct engine_params *p, struct engine_estimate *out,
                             struct brg_error *err);

#endif
