/*
 * embed.c — embeddings from a loaded model (POST /v1/embeddings).
 *
 * Whether a model gives embeddings is its pooling: how the per-token
 * states of an input become one vector (mean of all tokens, the first
 * "CLS" token, or the last token).  Embedding models (BERT, nomic, bge…)
 * declare it in the GGUF as <arch>.pooling_type; a generative model
 * declares none, and gives embeddings only when models.yaml asks for a
 * pooling — it is then the user's choice, never a silent default, because
 * vectors from a model that was not trained for them are poor.
 *
 * The vectors are computed on the model's scheduler thread, which owns a
 * second llama_context made for embeddings (embeddings on, the pooling
 * set, one unified KV stream), created on the first request so models that
 * never embed pay nothing.  Each scheduler turn runs one decode of the
 * oldest embeddings job — as many of its inputs as fit in n_ctx_embd
 * tokens and EMBED_SEQ_MAX sequences — between generation steps, so a
 * large embeddings batch slows running streams down but never stalls
 * them.  Vectors are L2-normalised, as OpenAI's are.
 */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "engine/engine_int.h"

/* Sequences per embeddings decode. */
#define EMBED_SEQ_MAX 16

struct embed_job {
	struct embed_job *next;
	llama_token **toks; /* per input */
	int *n_toks;
	size_t n_inputs;
	size_t n_done; /* inputs whose vector is in vecs */
	int n_prompt;
	float *vecs;
	const atomic_bool *cancel; /* borrowed until on_done */
	struct embed_sink sink;
};

static const struct {
	const char *name;
	enum llama_pooling_type type;
} poolings[] = {
    {"none", LLAMA_POOLING_TYPE_NONE},
    {"mean", LLAMA_POOLING_TYPE_MEAN},
    {"cls", LLAMA_POOLING_TYPE_CLS},
    {"last", LLAMA_POOLING_TYPE_LAST},
};

static void job_free(struct embed_job *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n_inputs && j->toks; i++)
		free(j->toks[i]);
	free(j->toks);
	free(j->n_toks);
	free(j->vecs);
	free(j);
}

/* The GGUF's own pooling; NONE when it declares none (or a reranker's). */
static enum llama_pooling_type gguf_pooling(const struct engine_model *m)
{
	char arch[64], key[96], val[16];
	if (llama_model_meta_val_str(m->model, "general.architecture", arch, sizeof arch) < 0)
		return LLAMA_POOLING_TYPE_NONE;
	snprintf(key, sizeof key, "%s.pooling_type", arch);
	if (llama_model_meta_val_str(m->model, key, val, sizeof val) < 0)
		return LLAMA_POOLING_TYPE_NONE;
	int v = atoi(val);
	if (v == LLAMA_POOLING_TYPE_MEAN || v == LLAMA_POOLING_TYPE_CLS ||
	    v == LLAMA_POOLING_TYPE_LAST)
		return (enum llama_pooling_type)v;
	return LLAMA_POOLING_TYPE_NONE;
}

enum brg_err engine_embed_setup(struct engine_model *m, const char *name, struct brg_error *err)
{
	m->n_embd = llama_model_n_embd_out(m->model);
	m->n_ctx_embd = m->n_ctx_slot;
	m->pooling = LLAMA_POOLING_TYPE_NONE;
	/* An encoder-decoder model (T5) has no pooled output to give. */
	if (llama_model_has_encoder(m->model) && llama_model_has_decoder(m->model))
		return BRG_OK;
	if (!name) {
		m->pooling = gguf_pooling(m);
		return BRG_OK;
	}
	for (size_t i = 0; i < sizeof poolings / sizeof poolings[0]; i++) {
		if (strcmp(name, poolings[i].name) == 0) {
			m->pooling = poolings[i].type;
			return BRG_OK;
		}
	}
	return brg_fail(err, BRG_E_BAD_REQUEST,
	                "model %s: pooling must be mean, cls, last or none, not '%s'", m->id, name);
}

const char *engine_pooling_name(const struct engine_model *m)
{
	if (m->pooling == LLAMA_POOLING_TYPE_NONE)
		return NULL;
	for (size_t i = 0; i < sizeof poolings / sizeof poolings[0]; i++)
		if (poolings[i].type == m->pooling)
			return poolings[i].name;
	return NULL;
}

int engine_n_embd(const struct engine_model *m)
{
	return m->n_embd;
}

/*
 * Tokens of one text input, with the special tokens the vocab adds to a
 * whole sequence (BOS; CLS and SEP for BERT-like vocabs; EOS where the
 * model's pooling reads it).  Special-token text in the input stays text.
 */
static enum brg_err tokenize_input(const struct engine_model *m, const char *text, size_t i,
                                   llama_token **out, int *n_out, struct brg_error *err)
{
	size_t len = strlen(text);
	if (len > INT32_MAX / 2)
		return brg_fail(err, BRG_E_TOO_LARGE, "input[%zu] is too long", i);
	int32_t cap = (int32_t)len + 8;
	llama_token *toks = NULL;
	for (;;) {
		llama_token *grown = realloc(toks, (size_t)cap * sizeof *toks);
		if (!grown) {
			free(toks);
			return brg_fail(err, BRG_E_NOMEM, "out of memory");
		}
		toks = grown;
		int32_t n = llama_tokenize(m->vocab, text, (int32_t)len, toks, cap, true, false);
		if (n >= 0) {
			*out = toks;
			*n_out = n;
			return BRG_OK;
		}
		if (n == INT32_MIN) {
			free(toks);
			return brg_fail(err, BRG_E_TOO_LARGE, "input[%zu] is too long", i);
		}
		cap = -n;
	}
}

/* Copies token ids after checking each is in the vocabulary. */
static enum brg_err copy_tokens(const struct engine_model *m, const struct embed_input *in,
                                size_t i, llama_token **out, int *n_out, struct brg_error *err)
{
	int n_vocab = llama_vocab_n_tokens(m->vocab);
	if (in->n_tokens > INT32_MAX)
		return brg_fail(err, BRG_E_TOO_LARGE, "input[%zu] is too long", i);
	for (size_t k = 0; k < in->n_tokens; k++) {
		if (in->tokens[k] < 0 || in->tokens[k] >= n_vocab) {
			brg_error_detail_str(err, "param", "input");
			return brg_fail(err, BRG_E_BAD_REQUEST,
			                "input[%zu][%zu] is %d, not a token id of model %s (0..%d)",
			                i, k, (int)in->tokens[k], m->id, n_vocab - 1);
		}
	}
	*out = malloc((in->n_tokens ? in->n_tokens : 1) * sizeof **out);
	if (!*out)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	memcpy(*out, in->tokens, in->n_tokens * sizeof **out);
	*n_out = (int)in->n_tokens;
	return BRG_OK;
}

static enum brg_err job_fill(struct engine_model *m, struct embed_job *j,
                             const struct embed_request *r, struct brg_error *err)
{
	j->toks = calloc(r->n_inputs, sizeof *j->toks);
	j->n_toks = calloc(r->n_inputs, sizeof *j->n_toks);
	j->vecs = malloc(r->n_inputs * (size_t)m->n_embd * sizeof *j->vecs);
	if (!j->toks || !j->n_toks || !j->vecs)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	j->n_inputs = r->n_inputs;
	for (size_t i = 0; i < r->n_inputs; i++) {
		const struct embed_input *in = &r->inputs[i];
		enum brg_err rc =
		    in->text ? tokenize_input(m, in->text, i, &j->toks[i], &j->n_toks[i], err)
		             : copy_tokens(m, in, i, &j->toks[i], &j->n_toks[i], err);
		if (rc)
			return rc;
		if (j->n_toks[i] == 0) {
			brg_error_detail_str(err, "param", "input");
			return brg_fail(err, BRG_E_BAD_REQUEST, "input[%zu] is empty", i);
		}
		if (j->n_toks[i] > m->n_ctx_embd) {
			brg_fail(err, BRG_E_CONTEXT_BUDGET,
			         "input[%zu] cannot fit in %s context window (%d/%d tokens)", i,
			         m->id, j->n_toks[i], m->n_ctx_embd);
			brg_error_detail_int(err, "current_tokens", j->n_toks[i]);
			brg_error_detail_int(err, "budget", m->n_ctx_embd);
			brg_error_detail_str(err, "model", m->id);
			return BRG_E_CONTEXT_BUDGET;
		}
		j->n_prompt += j->n_toks[i];
	}
	return BRG_OK;
}

static enum brg_err check_request(const struct engine_model *m, const struct embed_request *r,
                                  struct brg_error *err)
{
	if (m->pooling == LLAMA_POOLING_TYPE_NONE) {
		brg_error_detail_str(err, "model", m->id);
		return brg_fail(
		    err, BRG_E_BAD_REQUEST,
		    "model %s does not produce embeddings: its file declares no pooling; "
		    "use an embedding model, or set pooling (mean, cls or last) for it "
		    "in models.yaml",
		    m->id);
	}
	if (r->n_inputs == 0 || r->n_inputs > EMBED_MAX_INPUTS) {
		brg_error_detail_str(err, "param", "input");
		return brg_fail(err, BRG_E_BAD_REQUEST, "input must have 1..%d items",
		                EMBED_MAX_INPUTS);
	}
	if (r->dimensions > 0 && r->dimensions != m->n_embd) {
		brg_error_detail_str(err, "param", "dimensions");
		return brg_fail(err, BRG_E_BAD_REQUEST,
		                "model %s gives vectors of %d dimensions; it cannot give %d", m->id,
		                m->n_embd, r->dimensions);
	}
	return BRG_OK;
}

enum brg_err engine_embed(struct engine_model *m, const struct embed_request *r,
                          struct embed_sink sink, struct brg_error *err)
{
	enum brg_err rc = check_request(m, r, err);
	if (rc)
		return rc;
	struct embed_job *j = calloc(1, sizeof *j);
	if (!j)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	rc = job_fill(m, j, r, err);
	if (rc) {
		job_free(j);
		return rc;
	}
	j->cancel = r->cancel;
	j->sink = sink;
	pthread_mutex_lock(&m->mu);
	if (m->is_stopping || m->is_draining) {
		rc = brg_fail(err, BRG_E_SHUTTING_DOWN, "model %s is shutting down", m->id);
	} else if (m->n_equeued >= m->max_queue) {
		rc = brg_fail(err, BRG_E_MODEL_BUSY, "model %s has %d embeddings requests waiting",
		              m->id, m->n_equeued);
	} else {
		if (m->e_tail)
			m->e_tail->next = j;
		else
			m->e_head = j;
		m->e_tail = j;
		m->n_equeued++;
		pthread_cond_signal(&m->cv);
	}
	pthread_mutex_unlock(&m->mu);
	if (rc)
		job_free(j);
	return rc;
}

/* Unlinks the head job (scheduler thread), reports its end, frees it. */
static void finish(struct engine_model *m, enum brg_err e, const char *msg)
{
	pthread_mutex_lock(&m->mu);
	struct embed_job *j = m->e_head;
	m->e_head = j->next;
	if (!m->e_head)
		m->e_tail = NULL;
	m->n_equeued--;
	pthread_mutex_unlock(&m->mu);
	struct embed_result res = {
	    .n_inputs = j->n_inputs, .dim = m->n_embd, .n_prompt = j->n_prompt};
	brg_error_clear(&res.error);
	if (e) {
		brg_fail(&res.error, e, "%s", msg);
	} else {
		res.vecs = j->vecs;
		j->vecs = NULL;
	}
	j->sink.on_done(j->sink.ud, &res);
	free(res.vecs); /* unless the receiver kept it */
	job_free(j);
}

/* The embeddings context: made once, on the scheduler thread. */
static bool ensure_context(struct engine_model *m)
{
	if (m->ectx)
		return true;
	struct llama_context_params cp = llama_context_default_params();
	cp.embeddings = true;
	cp.pooling_type = m->pooling;
	cp.n_ctx = (uint32_t)m->n_ctx_embd;
	/* Non-causal models need a whole sequence in one micro-batch. */
	cp.n_batch = cp.n_ubatch = (uint32_t)m->n_ctx_embd;
	cp.n_seq_max = EMBED_SEQ_MAX;
	cp.kv_unified = true;
	int n_threads = llama_n_threads(m->ctx);
	cp.n_threads = cp.n_threads_batch = n_threads;
	cp.no_perf = true;
	m->ectx = llama_init_from_model(m->model, cp);
	if (!m->ectx)
		return false;
	if (m->pool)
		llama_attach_threadpool(m->ectx, m->pool, NULL);
	m->ebatch = llama_batch_init(m->n_ctx_embd, 0, 1);
	if (!m->ebatch.token) {
		llama_free(m->ectx);
		m->ectx = NULL;
		return false;
	}
	return true;
}

static void normalize(const float *in, float *out, int n)
{
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += (double)in[i] * in[i];
	float scale = sum > 0 ? (float)(1.0 / sqrt(sum)) : 0.0f;
	for (int i = 0; i < n; i++)
		out[i] = in[i] * scale;
}

/* Puts as many of j's remaining inputs as fit into m->ebatch; returns how many. */
static int pack(struct engine_model *m, const struct embed_job *j)
{
	struct llama_batch *b = &m->ebatch;
	b->n_tokens = 0;
	int n_seq = 0;
	for (size_t i = j->n_done; i < j->n_inputs && n_seq < EMBED_SEQ_MAX; i++, n_seq++) {
		if (b->n_tokens + j->n_toks[i] > m->n_ctx_embd)
			break;
		for (int k = 0; k < j->n_toks[i]; k++) {
			int t = b->n_tokens++;
			b->token[t] = j->toks[i][k];
			b->pos[t] = k;
			b->n_seq_id[t] = 1;
			b->seq_id[t][0] = n_seq;
			b->logits[t] = true;
		}
	}
	return n_seq;
}

void engine_embed_step(struct engine_model *m)
{
	struct embed_job *j = m->e_head; /* only this thread unlinks it */
	if (j->cancel && atomic_load(j->cancel)) {
		finish(m, BRG_E_CANCELLED, "cancelled");
		return;
	}
	if (!ensure_context(m)) {
		finish(m, BRG_E_RESOURCE, "cannot create the embeddings context (out of memory?)");
		return;
	}
	int n_seq = pack(m, j);
	llama_memory_clear(llama_get_memory(m->ectx), true);
	int ret = llama_decode(m->ectx, m->ebatch);
	if (ret != 0) {
		log_warn("model %s: embeddings llama_decode returned %d for %d tokens", m->id, ret,
		         m->ebatch.n_tokens);
		finish(m, BRG_E_INTERNAL, "llama_decode failed");
		return;
	}
	for (int s = 0; s < n_seq; s++) {
		const float *e = llama_get_embeddings_seq(m->ectx, s);
		if (!e) {
			finish(m, BRG_E_INTERNAL, "llama.cpp gave no pooled embedding");
			return;
		}
		normalize(e, j->vecs + (j->n_done + (size_t)s) * (size_t)m->n_embd, m->n_embd);
	}
	j->n_done += (size_t)n_seq;
	if (j->n_done == j->n_inputs)
		finish(m, BRG_OK, NULL);
}

void engine_embed_cancel_all(struct engine_model *m, enum brg_err e)
{
	for (;;) {
		pthread_mutex_lock(&m->mu);
		bool has_job = m->e_head != NULL;
		pthread_mutex_unlock(&m->mu);
		if (!has_job)
			return;
		finish(m, e,
		       e == BRG_E_SHUTTING_DOWN ? "the model is being unloaded or the server "
		                                  "is shutting down"
		                                : brg_err_code(e));
	}
}

void engine_embed_release(struct engine_model *m)
{
	if (m->ebatch.token)
		llama_batch_free(m->ebatch);
	if (m->ectx)
		llama_free(m->ectx);
}
