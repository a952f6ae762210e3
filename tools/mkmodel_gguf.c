/*
 * mkmodel_gguf.c — writes the F16 GGUF file of a shape (see mkmodel.h and
 * the overview at the top of mkmodel.c).
 *
 * The metadata (general.*, <arch>.*, the copied tokenizer.* keys and the
 * tensor infos, with the names and dimensions llama.cpp's loader expects in
 * src/models/llama.cpp and qwen2.cpp) is written first by gguf, then each
 * tensor's data is generated and appended in chunks, so memory stays a few
 * MB even for the 1B shape.
 *
 * Values: each tensor has its own stream, splitmix64 seeded with the seed
 * and the FNV-1a hash of the tensor name, so a tensor's values do not depend
 * on the order of tensors or on the number of layers.  Weights and biases are
 * uniform in +-1/sqrt(fan_in) (fan_in = ne[0], the row length, for weights;
 * n_embd for biases); norms are 1.0; Llama 3's rope_freqs are the real
 * "llama3" rope-scaling factors.  2-D tensors are F16, 1-D ones F32, as
 * llama.cpp's converter writes them.  Nothing depends on time, threads or
 * the machine, so one seed gives a byte-identical file.
 */
#include "mkmodel.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "llama.h"

/* Elements generated per chunk: 4 MB of floats, 2 MB of halves. */
#define CHUNK (1 << 20)

enum fill { FILL_RANDOM, FILL_ONES, FILL_ROPE_FREQS };

struct tspec {
	char name[64];
	int n_dims;
	int64_t ne[2];
	enum ggml_type type;
	enum fill fill;
	float bound; /* FILL_RANDOM: uniform in [-bound, bound) */
};

/* splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and well mixed. */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* A uniform float in [-bound, bound) from the top 24 bits of one draw. */
static float uniform(uint64_t *state, float bound)
{
	float u = (float)(splitmix64(state) >> 40) * (1.0f / 16777216.0f);
	return (2.0f * u - 1.0f) * bound;
}

/* Llama 3's per-dimension rope frequency factors, as the HF converter computes them. */
static void rope_factors(const struct shape *s, float *out, int64_t n)
{
	const struct rope_llama3 *r = s->rope_scaling;
	int head_dim = s->n_embd / s->n_head;
	double low_wavelen = r->original_ctx / r->low_freq_factor;
	double high_wavelen = r->original_ctx / r->high_freq_factor;
	for (int64_t i = 0; i < n; i++) {
		double freq = 1.0 / pow(s->rope_base, (double)(2 * i) / head_dim);
		double wavelen = 2.0 * M_PI / freq;
		if (wavelen < high_wavelen) {
			out[i] = 1.0f;
		} else if (wavelen > low_wavelen) {
			out[i] = r->factor;
		} else {
			double smooth = (r->original_ctx / wavelen - r->low_freq_factor) /
			                (r->high_freq_factor - r->low_freq_factor);
			out[i] = (float)(1.0 / ((1.0 - smooth) / r->factor + smooth));
		}
	}
}

/* Appends one tensor to 'specs'; the caller sized it (count_tensors). */
static void add_spec(struct tspec *specs, int *n, const char *name, int64_t ne0, int64_t ne1,
                     enum fill fill, float bound)
{
	struct tspec *t = &specs[(*n)++];
	snprintf(t->name, sizeof t->name, "%s", name);
	t->n_dims = ne1 > 1 ? 2 : 1;
	t->ne[0] = ne0;
	t->ne[1] = ne1;
	t->type = t->n_dims == 2 ? GGML_TYPE_F16 : GGML_TYPE_F32;
	t->fill = fill;
	t->bound = bound;
}

static int count_tensors(const struct shape *s, int n_layer)
{
	int per_layer = 9 + (s->has_qkv_bias ? 3 : 0);
	return 2 + !s->is_tied + (s->rope_scaling != NULL) + n_layer * per_layer;
}

static void add_weight(struct tspec *specs, int *n, const char *name, int64_t ne0, int64_t ne1)
{
	add_spec(specs, n, name, ne0, ne1, FILL_RANDOM, 1.0f / sqrtf((float)ne0));
}

static void add_layer(const struct shape *s, int il, struct tspec *specs, int *n)
{
	int64_t e = s->n_embd, hd = s->n_embd / s->n_head;
	int64_t q = hd * s->n_head, kv = hd * s->n_head_kv;
	float bias_bound = 1.0f / sqrtf((float)e);
	char name[64];
#define BLK(suffix) (snprintf(name, sizeof name, "blk.%d.%s", il, suffix), name)
	add_spec(specs, n, BLK("attn_norm.weight"), e, 1, FILL_ONES, 0);
	add_weight(specs, n, BLK("attn_q.weight"), e, q);
	add_weight(specs, n, BLK("attn_k.weight"), e, kv);
	add_weight(specs, n, BLK("attn_v.weight"), e, kv);
	if (s->has_qkv_bias) {
		add_spec(specs, n, BLK("attn_q.bias"), q, 1, FILL_RANDOM, bias_bound);
		add_spec(specs, n, BLK("attn_k.bias"), kv, 1, FILL_RANDOM, bias_bound);
		add_spec(specs, n, BLK("attn_v.bias"), kv, 1, FILL_RANDOM, bias_bound);
	}
	add_weight(specs, n, BLK("attn_output.weight"), q, e);
	add_spec(specs, n, BLK("ffn_norm.weight"), e, 1, FILL_ONES, 0);
	add_weight(specs, n, BLK("ffn_gate.weight"), e, s->n_ff);
	add_weight(specs, n, BLK("ffn_up.weight"), e, s->n_ff);
	add_weight(specs, n, BLK("ffn_down.weight"), s->n_ff, e);
#undef BLK
}

/* Returns the tensor list in file order (the caller frees it), or NULL on OOM. */
static struct tspec *build_specs(const struct shape *s, int n_layer, int64_t n_vocab, int *out_n)
{
	struct tspec *specs = calloc((size_t)count_tensors(s, n_layer), sizeof *specs);
	if (!specs)
		return NULL;
	int n = 0;
	add_weight(specs, &n, "token_embd.weight", s->n_embd, n_vocab);
	if (s->rope_scaling)
		add_spec(specs, &n, "rope_freqs.weight", s->n_embd / s->n_head / 2, 1,
		         FILL_ROPE_FREQS, 0);
	for (int il = 0; il < n_layer; il++)
		add_layer(s, il, specs, &n);
	add_spec(specs, &n, "output_norm.weight", s->n_embd, 1, FILL_ONES, 0);
	if (!s->is_tied)
		add_weight(specs, &n, "output.weight", s->n_embd, n_vocab);
	assert(n == count_tensors(s, n_layer));
	*out_n = n;
	return specs;
}

static void fill_chunk(const struct tspec *t, const struct shape *s, float *out, int64_t n,
                       uint64_t *state)
{
	switch (t->fill) {
	case FILL_RANDOM:
		for (int64_t i = 0; i < n; i++)
			out[i] = uniform(state, t->bound);
		break;
	case FILL_ONES:
		for (int64_t i = 0; i < n; i++)
			out[i] = 1.0f;
		break;
	case FILL_ROPE_FREQS:
		rope_factors(s, out, n);
		break;
	}
}

/* Generates one tensor's values chunk by chunk and appends them to 'f'. */
static int write_tensor(FILE *f, const struct tspec *t, const struct shape *s, uint64_t seed,
                        float *f32, ggml_fp16_t *f16)
{
	uint64_t state = seed ^ fnv1a(t->name);
	int64_t n = t->ne[0] * t->ne[1];
	for (int64_t done = 0; done < n; done += CHUNK) {
		int64_t m = n - done < CHUNK ? n - done : CHUNK;
		size_t n_written;
		fill_chunk(t, s, f32, m, &state);
		if (t->type == GGML_TYPE_F16) {
			ggml_fp32_to_fp16_row(f32, f16, m);
			n_written = fwrite(f16, sizeof *f16, (size_t)m, f);
		} else {
			n_written = fwrite(f32, sizeof *f32, (size_t)m, f);
		}
		if (n_written != (size_t)m)
			return -1;
	}
	return 0;
}

/*
 * Appends every tensor's data after the metadata, each padded with zeros to
 * the file's alignment exactly as gguf_write_to_file() would; the offsets
 * are checked against the ones the metadata announced.
 */
static int write_data(FILE *f, const struct gguf_context *g, const struct tspec *specs, int n,
                      const struct shape *s, uint64_t seed)
{
	int rc = -1;
	float *f32 = malloc(CHUNK * sizeof *f32);
	ggml_fp16_t *f16 = malloc(CHUNK * sizeof *f16);
	size_t align = gguf_get_alignment(g), off = 0;
	if (!f32 || !f16)
		goto fail;
	for (int i = 0; i < n; i++) {
		assert(off == gguf_get_tensor_offset(g, i));
		if (write_tensor(f, &specs[i], s, seed, f32, f16))
			goto fail;
		off += gguf_get_tensor_size(g, i);
		for (; off % align; off++)
			if (fputc(0, f) == EOF)
				goto fail;
	}
	rc = 0;
fail:
	free(f16);
	free(f32);
	return rc;
}

static void set_arch_u32(struct gguf_context *g, const char *arch, const char *key, uint32_t v)
{
	char k[128];
	snprintf(k, sizeof k, "%s.%s", arch, key);
	gguf_set_val_u32(g, k, v);
}

static void set_arch_f32(struct gguf_context *g, const char *arch, const char *key, float v)
{
	char k[128];
	snprintf(k, sizeof k, "%s.%s", arch, key);
	gguf_set_val_f32(g, k, v);
}

/* The general.* and <arch>.* keys, as llama.cpp's converter writes them. */
static void set_arch_kv(struct gguf_context *g, const struct shape *s, int n_layer, uint64_t seed,
                        int64_t n_vocab)
{
	const char *a = s->arch;
	char name[128];
	snprintf(name, sizeof name, "mkmodel %s seed %llu", s->name, (unsigned long long)seed);
	gguf_set_val_str(g, "general.architecture", a);
	gguf_set_val_str(g, "general.name", name);
	gguf_set_val_u32(g, "general.file_type", LLAMA_FTYPE_MOSTLY_F16);
	set_arch_u32(g, a, "block_count", (uint32_t)n_layer);
	set_arch_u32(g, a, "context_length", (uint32_t)s->n_ctx_train);
	set_arch_u32(g, a, "embedding_length", (uint32_t)s->n_embd);
	set_arch_u32(g, a, "feed_forward_length", (uint32_t)s->n_ff);
	set_arch_u32(g, a, "attention.head_count", (uint32_t)s->n_head);
	set_arch_u32(g, a, "attention.head_count_kv", (uint32_t)s->n_head_kv);
	set_arch_f32(g, a, "rope.freq_base", s->rope_base);
	set_arch_f32(g, a, "attention.layer_norm_rms_epsilon", s->rms_eps);
	if (strcmp(a, "llama") == 0) {
		set_arch_u32(g, a, "vocab_size", (uint32_t)n_vocab);
		set_arch_u32(g, a, "rope.dimension_count", (uint32_t)(s->n_embd / s->n_head));
	}
}

/* Copies every tokenizer.* key of 'vocab' into 'g'; -1 on OOM. */
static int copy_tokenizer(struct gguf_context *g, const struct gguf_context *vocab,
                          const struct shape *s)
{
	struct gguf_context *tmp = gguf_init_empty();
	if (!tmp)
		return -1;
	/* gguf has no per-key copy: copy all, then drop what is not ours. */
	gguf_set_kv(tmp, vocab);
	for (int64_t i = 0; i < gguf_get_n_kv(tmp);) {
		if (strncmp(gguf_get_key(tmp, i), "tokenizer.", 10) == 0) {
			i++;
			continue;
		}
		char *key = strdup(gguf_get_key(tmp, i));
		if (!key) {
			gguf_free(tmp);
			return -1;
		}
		gguf_remove_key(tmp, key);
		free(key);
	}
	gguf_set_kv(g, tmp);
	gguf_free(tmp);
	if (s->chat_template && gguf_find_key(g, "tokenizer.chat_template") < 0)
		gguf_set_val_str(g, "tokenizer.chat_template", s->chat_template);
	return 0;
}

/* Adds the tensor infos; the ggml context only holds their headers. */
static struct ggml_context *add_tensors(struct gguf_context *g, const struct tspec *specs, int n)
{
	struct ggml_init_params p = {
	    .mem_size = (size_t)n * ggml_tensor_overhead(),
	    .mem_buffer = NULL,
	    .no_alloc = true,
	};
	struct ggml_context *ctx = ggml_init(p);
	if (!ctx)
		return NULL;
	for (int i = 0; i < n; i++) {
		struct ggml_tensor *t =
		    ggml_new_tensor(ctx, specs[i].type, specs[i].n_dims, specs[i].ne);
		ggml_set_name(t, specs[i].name);
		gguf_add_tensor(g, t);
	}
	return ctx;
}

int mkmodel_write_f16(const struct shape *s, int n_layer, uint64_t seed,
                      const struct gguf_context *vocab, int64_t n_vocab, const char *path,
                      char *err, size_t err_len)
{
	int rc = -1, n = 0;
	struct ggml_context *ctx = NULL;
	FILE *f = NULL;
	struct gguf_context *g = gguf_init_empty();
	struct tspec *specs = build_specs(s, n_layer, n_vocab, &n);
	if (!g || !specs)
		goto oom;
	set_arch_kv(g, s, n_layer, seed, n_vocab);
	if (copy_tokenizer(g, vocab, s))
		goto oom;
	if (!(ctx = add_tensors(g, specs, n)))
		goto oom;
	if (!(f = fopen(path, "wb"))) {
		snprintf(err, err_len, "cannot create %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!gguf_write_to_file_ptr(g, f, true) || write_data(f, g, specs, n, s, seed)) {
		snprintf(err, err_len, "cannot write %s: %s", path, strerror(errno));
		goto fail;
	}
	rc = 0;
	goto fail;
oom:
	snprintf(err, err_len, "out of memory");
fail:
	if (f && fclose(f) && rc == 0) {
		snprintf(err, err_len, "cannot write %s: %s", path, strerror(errno));
		rc = -1;
	}
	ggml_free(ctx);
	free(specs);
	gguf_free(g);
	return rc;
}
