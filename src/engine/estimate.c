/*
 * estimate.c — how much memory loading a model will take, from its GGUF
 * header alone: what the local provider's memory budget counts before it
 * loads a model (provider/local_budget.c), and what a loaded model reports
 * as engine_memory_bytes().  ggml's gguf reader parses the header and the
 * tensor table without allocating any tensor data, so this costs one read
 * of the metadata (for a 150k-token vocabulary, a few MB and milliseconds).
 *
 * The three parts, in bytes:
 *
 *   weights  = the sum of the tensors' sizes in the file (what llama.cpp
 *              maps or copies; the file adds only its header).
 *   KV       = cells x sum over layers of (n_embd_k_gqa + n_embd_v_gqa) x 2,
 *              F16 K and V being llama.cpp's default cache types, where
 *              n_embd_k_gqa = key_length x head_count_kv of the layer
 *              (key_length defaults to embedding_length / head_count, and
 *              value_length likewise), and cells = slots x n_ctx_slot
 *              padded to a multiple of 256 as llama.cpp does
 *              (llama-context.cpp): one unified buffer for every slot
 *              (engine.c).  n_ctx_slot is engine_ctx_slot(): the configured
 *              context, else the trained one capped at 4096.
 *   compute  = n_ubatch x (4 n_vocab + 2 n_ctx_seq + 8 n_embd), n_ctx_seq
 *              being a slot's share of the cells padded to 256,
 *              + 4 n_vocab x slots + 1 MiB, an allowance for llama.cpp's
 *              scheduler buffer and its logits output buffer.  The buffer's
 *              peak is the F32 logits of one micro-batch, next to the F16
 *              attention mask of one slot's cells (flash attention, which
 *              llama.cpp picks on CPU, never materialises K x Q) and a few
 *              rows of hidden state; the output buffer holds one row of
 *              logits per slot.  Against what llama.cpp 0.5.0 reported on
 *              CPU (stories260K, llama-2-tiny-random, and the tiny-llama,
 *              Qwen2.5-0.5B and Llama-3.2-1B shapes of tools/mkmodel; 1-4
 *              slots x 2048-4096 tokens) this is 0.7-5 MiB above it, never
 *              below.
 *
 * With a prefill helper (engine_params.has_prefill_helper, 2+ threads, 2+
 * slots; prefill.c), its context adds one slot's KV (n_ctx_slot cells
 * padded to 256) and a compute allowance by the same rule for its smaller
 * micro-batch and one sequence.
 *
 * Recurrent and hybrid models (no head_count) get no KV term; sliding-
 * window layers are counted as full ones, which overstates them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/engine_int.h"

#define KV_BYTES_PER_VALUE 2 /* F16 */
#define COMPUTE_FIXED      (1u << 20)
#define CELL_PAD           256 /* llama.cpp pads contexts to this (GGML_PAD(n_ctx, 256)) */

/* The hyper-parameters the estimate needs. */
struct shape {
	uint64_t n_layer, n_embd, n_vocab, n_ctx_train;
	uint64_t n_head, head_k, head_v; /* layer 0's heads; per-head sizes */
	uint64_t kv_per_cell;            /* (n_embd_k_gqa + n_embd_v_gqa) summed over layers */
};

static uint64_t non_negative(int64_t v)
{
	return v < 0 ? 0 : (uint64_t)v;
}

/* Element i of integer data of type t (a scalar is element 0). */
static uint64_t int_at(enum gguf_type t, const void *data, size_t i)
{
	switch (t) {
	case GGUF_TYPE_UINT8:
		return ((const uint8_t *)data)[i];
	case GGUF_TYPE_INT8:
		return non_negative(((const int8_t *)data)[i]);
	case GGUF_TYPE_UINT16:
		return ((const uint16_t *)data)[i];
	case GGUF_TYPE_INT16:
		return non_negative(((const int16_t *)data)[i]);
	case GGUF_TYPE_UINT32:
		return ((const uint32_t *)data)[i];
	case GGUF_TYPE_INT32:
		return non_negative(((const int32_t *)data)[i]);
	case GGUF_TYPE_UINT64:
		return ((const uint64_t *)data)[i];
	case GGUF_TYPE_INT64:
		return non_negative(((const int64_t *)data)[i]);
	default:
		return 0;
	}
}

static bool is_int_type(enum gguf_type t)
{
	return t <= GGUF_TYPE_INT32 || t == GGUF_TYPE_UINT64 || t == GGUF_TYPE_INT64;
}

/*
 * The integer at "<arch>.<suffix>": a scalar, or element i of an integer
 * array (llama.cpp allows per-layer arrays for head counts; an array
 * shorter than i + 1 gives its last element).  False when the key is
 * missing or not an integer; negative values read as 0.
 */
static bool get_int(const struct gguf_context *g, const char *arch, const char *suffix, size_t i,
                    uint64_t *out)
{
	char key[256];
	snprintf(key, sizeof key, "%s.%s", arch, suffix);
	int64_t id = gguf_find_key(g, key);
	if (id < 0)
		return false;
	enum gguf_type t = gguf_get_kv_type(g, id);
	if (t == GGUF_TYPE_ARRAY) {
		enum gguf_type et = gguf_get_arr_type(g, id);
		size_t n = gguf_get_arr_n(g, id);
		if (!is_int_type(et) || n == 0)
			return false;
		*out = int_at(et, gguf_get_arr_data(g, id), i < n ? i : n - 1);
		return true;
	}
	if (!is_int_type(t))
		return false;
	*out = int_at(t, gguf_get_val_data(g, id), 0);
	return true;
}

/* The vocabulary size: the tokenizer's token list, else <arch>.vocab_size. */
static uint64_t vocab_size(const struct gguf_context *g, const char *arch)
{
	int64_t id = gguf_find_key(g, "tokenizer.ggml.tokens");
	if (id >= 0 && gguf_get_kv_type(g, id) == GGUF_TYPE_ARRAY)
		return gguf_get_arr_n(g, id);
	uint64_t n = 0;
	return get_int(g, arch, "vocab_size", 0, &n) ? n : 0;
}

/* Fills everything of *s but nothing it cannot find; false when a
 * required key (block_count, embedding_length) is missing. */
static bool read_shape(const struct gguf_context *g, const char *arch, struct shape *s)
{
	memset(s, 0, sizeof *s);
	if (!get_int(g, arch, "block_count", 0, &s->n_layer) ||
	    !get_int(g, arch, "embedding_length", 0, &s->n_embd))
		return false;
	(void)get_int(g, arch, "context_length", 0, &s->n_ctx_train);
	s->n_vocab = vocab_size(g, arch);
	if (!get_int(g, arch, "attention.head_count", 0, &s->n_head) || s->n_head == 0)
		return true; /* no attention: no KV cache */
	if (!get_int(g, arch, "attention.key_length", 0, &s->head_k))
		s->head_k = s->n_embd / s->n_head;
	if (!get_int(g, arch, "attention.value_length", 0, &s->head_v))
		s->head_v = s->n_embd / s->n_head;
	for (uint64_t il = 0; il < s->n_layer; il++) {
		uint64_t n_head_kv = 0;
		if (!get_int(g, arch, "attention.head_count_kv", il, &n_head_kv))
			(void)get_int(g, arch, "attention.head_count", il, &n_head_kv);
		s->kv_per_cell += (s->head_k + s->head_v) * n_head_kv;
	}
	return true;
}

static uint64_t pad_cells(uint64_t n)
{
	return (n + CELL_PAD - 1) / CELL_PAD * CELL_PAD;
}

/* The KV term for 'cells' cells (see the top). */
static uint64_t kv_bytes(const struct shape *s, uint64_t cells)
{
	return cells * s->kv_per_cell * KV_BYTES_PER_VALUE;
}

/* The compute term of one context: micro-batches of n_ubatch, n_seqs
 * sequences of n_ctx_seq cells each (see the top). */
static uint64_t compute_bytes(const struct shape *s, uint64_t n_ubatch, uint64_t n_ctx_seq,
                              uint64_t n_seqs)
{
	return n_ubatch * (4 * s->n_vocab + 2 * n_ctx_seq + 8 * s->n_embd) +
	       4 * s->n_vocab * n_seqs + COMPUTE_FIXED;
}

/* The estimate from the shape and the load parameters (see the top). */
static void compute_parts(const struct shape *s, size_t weights, const struct engine_params *p,
                          struct engine_estimate *out)
{
	int n_ctx_train = s->n_ctx_train > INT32_MAX ? INT32_MAX : (int)s->n_ctx_train;
	uint64_t slots = (uint64_t)p->n_slots;
	out->n_ctx_slot = engine_ctx_slot(p->n_ctx, n_ctx_train);
	uint64_t cells = pad_cells((uint64_t)out->n_ctx_slot * slots);
	/* The mask term of the compute allowance: a slot's share of the cells
	 * matched what llama.cpp reserved, unified or not (see the top). */
	uint64_t n_ctx_seq = pad_cells(cells / slots);
	uint64_t n_ubatch = (uint64_t)engine_ubatch(engine_step_batch(p->n_batch, p->n_slots));
	out->n_kv_cells = cells > INT32_MAX ? INT32_MAX : (int)cells;
	out->weights_bytes = weights;
	out->kv_bytes = (size_t)kv_bytes(s, cells);
	out->compute_bytes = (size_t)compute_bytes(s, n_ubatch, n_ctx_seq, slots);
	if (engine_params_want_helper(p) && s->kv_per_cell > 0) {
		/* The prefill helper's context: one sequence of n_ctx_slot cells. */
		uint64_t h_cells = pad_cells((uint64_t)out->n_ctx_slot);
		uint64_t h_ubatch =
		    (uint64_t)engine_helper_ubatch(engine_step_batch(p->n_batch, p->n_slots));
		out->kv_bytes += (size_t)kv_bytes(s, h_cells);
		out->compute_bytes += (size_t)compute_bytes(s, h_ubatch, h_cells, 1);
	}
	out->total_bytes = out->weights_bytes + out->kv_bytes + out->compute_bytes;
}

enum brg_err engine_estimate(const struct engine_params *p, struct engine_estimate *out,
                             struct brg_error *err)
{
	const char *id = p->id ? p->id : "model";
	memset(out, 0, sizeof *out);
	if (!p->path || p->n_slots < 1 || p->n_batch < 1 || p->n_ctx < 0)
		return brg_fail(
		    err, BRG_E_CONFIG,
		    "model %s: a file, slots >= 1, batch >= 1 and context >= 0 are needed "
		    "for its memory estimate",
		    id);
	struct stat st;
	if (stat(p->path, &st) != 0)
		return brg_fail(err, BRG_E_MODEL_LOAD, "cannot open model file %s: %s", p->path,
		                strerror(errno));
	enum brg_err rc = engine_lib_load(err);
	if (rc)
		return rc;
	struct gguf_init_params gp = {.no_alloc = true, .ctx = NULL};
	struct gguf_context *g = gguf_init_from_file(p->path, gp);
	if (!g)
		return brg_fail(err, BRG_E_MODEL_LOAD, "cannot read model file %s: not a GGUF file",
		                p->path);
	int64_t arch_id = gguf_find_key(g, "general.architecture");
	struct shape s;
	if (arch_id < 0 || gguf_get_kv_type(g, arch_id) != GGUF_TYPE_STRING ||
	    !read_shape(g, gguf_get_val_str(g, arch_id), &s)) {
		rc = brg_fail(err, BRG_E_MODEL_LOAD,
		              "model file %s lacks general.architecture, <arch>.block_count or "
		              "<arch>.embedding_length",
		              p->path);
	} else {
		size_t weights = 0;
		for (int64_t i = 0; i < gguf_get_n_tensors(g); i++)
			weights += gguf_get_tensor_size(g, i);
		compute_parts(&s, weights, p, out);
	}
	gguf_free(g);
	return rc;
}
