/*
 * mkmodel.h — what the two halves of tools/mkmodel share: the description
 * of a model's shape (mkmodel.c holds the table of real ones and the CLI)
 * and the F16 GGUF writer (mkmodel_gguf.c).
 */
#ifndef MKMODEL_H
#define MKMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

/* Llama 3's rope scaling ("rope_type": "llama3" in config.json). */
struct rope_llama3 {
	float factor, low_freq_factor, high_freq_factor;
	int original_ctx;
};

struct shape {
	const char *name;
	const char *arch;  /* llama.cpp architecture name: "llama" or "qwen2" */
	const char *vocab; /* ggml-vocab-<vocab>.gguf */
	int n_layer, n_embd, n_ff, n_head, n_head_kv, n_ctx_train;
	float rope_base, rms_eps;
	bool has_qkv_bias;                      /* Qwen2 has biases on q, k and v */
	bool is_tied;                           /* no output.weight: the output reuses token_embd */
	const struct rope_llama3 *rope_scaling; /* NULL: plain RoPE */
	const char *chat_template;              /* set only when the vocab file has none */
	const char *about;
};

/*
 * Writes the F16 model of shape 's' with 'n_layer' layers and the weights
 * of 'seed' to 'path' (created or truncated), with every tokenizer.* key of
 * 'vocab', whose tokenizer.ggml.tokens array holds 'n_vocab' tokens.
 * Returns 0, or -1 with the reason in 'err' (a partial file may remain at
 * 'path'; the caller removes it).  Borrows everything.
 */
int mkmodel_write_f16(const struct shape *s, int n_layer, uint64_t seed,
                      const struct gguf_context *vocab, int64_t n_vocab, const char *path,
                      char *err, size_t err_len);

#endif
