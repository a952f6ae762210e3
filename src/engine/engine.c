/*
 * engine.c — the engine's public face: process-wide llama.cpp set-up and
 * log routing, loading and freeing a model, and engine_submit(), which
 * tokenizes on the caller's thread and queues the job for the model's
 * scheduler thread (sched.c).  The design essay and the ownership rules are
 * in engine_int.h; the request path is provider/local → engine_submit →
 * sched.c → the job's sink.
 *
 * Invariants kept here:
 *   - A submit that returns an error never touched the sink and queued
 *     nothing; one that returns BRG_OK handed its job to the scheduler,
 *     which calls on_done exactly once.
 *   - Every queued prompt fits its slot with room for one generated token
 *     (n_prompt < n_ctx_slot), so the scheduler never has to refuse one.
 *
 * The only global mutable state of the engine is the llama.cpp log line
 * assembler below (llama.cpp's logger is itself process-wide) and the
 * once-only loading of llama.cpp and start of the backends.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "engine/engine_int.h"
#include "core/str.h"

/*
 * llama.cpp log routing.  llama_log_set() installs one callback for the
 * whole process (llama.cpp and ggml keep it in globals), so its state is
 * process-wide too: set once, right after llama.cpp is loaded.  llama.cpp
 * writes a line in pieces — several calls, GGML_LOG_LEVEL_CONT for the
 * continuations, the newline in the last one — and from any thread that
 * calls into it, so pieces are assembled under a mutex and one core/log
 * line is written per newline.
 */
static struct {
	pthread_mutex_t mu;
	enum ggml_log_level level;
	size_t len;
	char line[1024];
} llog = {.mu = PTHREAD_MUTEX_INITIALIZER, .level = GGML_LOG_LEVEL_INFO};

/* Writes the assembled line (lock held). */
static void llog_emit(void)
{
	if (llog.len == 0)
		return;
	llog.line[llog.len] = '\0';
	switch (llog.level) {
	case GGML_LOG_LEVEL_WARN:
		log_warn("llama.cpp: %s", llog.line);
		break;
	case GGML_LOG_LEVEL_ERROR:
		log_error("llama.cpp: %s", llog.line);
		break;
	default: /* INFO and DEBUG: llama.cpp's INFO is a chatty load report */
		log_debug("llama.cpp: %s", llog.line);
		break;
	}
	llog.len = 0;
}

_Thread_local const atomic_bool *engine_llog_quiet_when;

static void llog_callback(enum ggml_log_level level, const char *text, void *ud)
{
	(void)ud;
	/* A decode this thread aborted on purpose: llama.cpp's error about it
	 * is no news. */
	if (engine_llog_quiet_when && atomic_load(engine_llog_quiet_when) &&
	    level != GGML_LOG_LEVEL_CONT)
		level = GGML_LOG_LEVEL_DEBUG;
	pthread_mutex_lock(&llog.mu);
	if (level != GGML_LOG_LEVEL_CONT) {
		llog_emit(); /* a new event: whatever was pending had no newline */
		llog.level = level;
	}
	for (const char *p = text; p && *p; p++) {
		if (*p == '\n') {
			llog_emit();
			continue;
		}
		if (llog.len == sizeof llog.line - 1)
			llog_emit(); /* an overlong line goes out in parts */
		llog.line[llog.len++] = *p;
	}
	pthread_mutex_unlock(&llog.mu);
}

struct engine_params engine_default_params(void)
{
	struct engine_params p = {
	    .id = "model",
	    .n_ctx = 0,
	    .n_slots = 1,
	    .n_threads = 0,
	    .n_gpu_layers = 0,
	    .n_batch = 512,
	    .max_queue = 64,
	    .can_reuse_prefix = true,
	    .has_prefill_helper = true,
	};
	return p;
}

/*
 * llama.cpp itself (libllama, libggml, libggml-base, libstdc++: about 3 MB
 * resident) is loaded by dlopen at the first model load or GGUF estimate,
 * and the ggml backends start at the first model load, not at engine_init:
 * a server that serves only remote models, or has not loaded one yet,
 * maps none of it and runs none of llama.cpp's set-up.  The second piece
 * of process-wide state.
 */
static struct {
	pthread_once_t lib_once, once;
	char dir[4096]; /* "": ggml's default paths */
	bool is_loaded;
	bool is_started;
	char lib_why[1200]; /* non-empty: loading llama.cpp failed */
	char why[4200];     /* non-empty: starting failed */
} boot = {.lib_once = PTHREAD_ONCE_INIT, .once = PTHREAD_ONCE_INIT};

static void lib_run(void)
{
	struct brg_error e;
	brg_error_clear(&e);
	if (llama_lazy_load(boot.dir[0] ? boot.dir : NULL, &e)) {
		str_copy(boot.lib_why, sizeof boot.lib_why, e.message);
		return;
	}
	/* Route the log first so that backend loading is routed too. */
	llama_log_set(llog_callback, NULL);
	boot.is_loaded = true;
}

enum brg_err engine_lib_load(struct brg_error *err)
{
	pthread_once(&boot.lib_once, lib_run);
	if (!boot.is_loaded)
		return brg_fail(err, BRG_E_MODEL_LOAD, "%s", boot.lib_why);
	return BRG_OK;
}

static void boot_run(void)
{
	if (boot.dir[0])
		ggml_backend_load_all_from_path(boot.dir);
	else
		ggml_backend_load_all();
	if (ggml_backend_dev_count() == 0) {
		snprintf(boot.why, sizeof boot.why, "no ggml backend found in %s",
		         boot.dir[0] ? boot.dir : "the default paths");
		return;
	}
	llama_backend_init();
	boot.is_started = true;
}

enum brg_err engine_start(struct brg_error *err)
{
	enum brg_err rc = engine_lib_load(err);
	if (rc)
		return rc;
	pthread_once(&boot.once, boot_run);
	if (!boot.is_started)
		return brg_fail(err, BRG_E_MODEL_LOAD, "%s", boot.why);
	return BRG_OK;
}

enum brg_err engine_init(const char *backend_dir, struct brg_error *err)
{
	(void)err;
	str_copy(boot.dir, sizeof boot.dir, backend_dir ? backend_dir : "");
	return BRG_OK;
}

void engine_shutdown(void)
{
	if (boot.is_started)
		llama_backend_free();
	pthread_mutex_lock(&llog.mu);
	llog_emit();
	pthread_mutex_unlock(&llog.mu);
}

void engine_job_free(struct job *j)
{
	if (!j)
		return;
	free(j->tokens);
	for (size_t i = 0; i < GEN_MAX_STOPS; i++)
		free(j->stop_copies[i]);
	if (j->chain)
		llama_sampler_free(j->chain);
	textstream_free(j->ts);
	free(j);
}

static enum brg_err check_params(const struct engine_params *p, struct brg_error *err)
{
	const char *id = p->id ? p->id : "model";
	if (!p->path)
		return brg_fail(err, BRG_E_CONFIG, "model %s: no file", id);
	enum brg_err rc = engine_lib_load(err);
	if (rc)
		return rc;
	if (p->n_slots < 1 || (size_t)p->n_slots > llama_max_parallel_sequences())
		return brg_fail(err, BRG_E_CONFIG, "model %s: slots must be 1..%zu", id,
		                llama_max_parallel_sequences());
	if (p->n_ctx < 0 || p->n_batch < 1 || p->max_queue < 0 || p->n_threads < 0)
		return brg_fail(err, BRG_E_CONFIG,
		                "model %s: context, batch, max_queue and threads must be >= 0 "
		                "(batch >= 1)",
		                id);
	if ((long long)p->n_ctx * p->n_slots > INT32_MAX)
		return brg_fail(err, BRG_E_CONFIG, "model %s: context x slots is too large", id);
	return BRG_OK;
}

static enum brg_err load_weights(struct engine_model *m, const struct engine_params *p,
                                 struct brg_error *err)
{
	struct stat st;
	if (stat(p->path, &st) != 0)
		return brg_fail(err, BRG_E_MODEL_LOAD, "cannot open model file %s: %s", p->path,
		                strerror(errno));
	struct llama_model_params mp = llama_model_default_params();
	mp.n_gpu_layers = p->n_gpu_layers < 0 ? 999 : p->n_gpu_layers;
	m->model = llama_model_load_from_file(p->path, mp);
	if (!m->model)
		return brg_fail(err, BRG_E_MODEL_LOAD,
		                "cannot load model file %s (not a GGUF model llama.cpp "
		                "supports, or out of memory; see the log)",
		                p->path);
	m->vocab = llama_model_get_vocab(m->model);
	m->n_ctx_train = llama_model_n_ctx_train(m->model);
	m->mem_bytes = (size_t)llama_model_size(m->model);
	return BRG_OK;
}

/*
 * Gives the context a persistent CPU threadpool.  Without one, ggml's CPU
 * backend creates and joins a throw-away pool of threads on every
 * llama_decode; a freshly created worker tends to start on its creator's
 * core, and the two then spin at ggml's barriers on one core while the
 * other sits idle.  Measured on an otherwise idle 2-core VM, stories260K,
 * 2 threads, one greedy stream: anywhere from 7 to 4,000 tok/s from run to
 * run without the pool, 6,000 to 6,700 with it (llama-cli and llama-bench
 * attach one too).  The CPU backend is loaded at run time, so its
 * threadpool functions are looked up through the backend registry.  A
 * failure here only costs speed, so it is logged, not returned.
 */
struct ggml_threadpool *engine_pool_new(struct engine_model *m, int n_threads)
{
	typedef struct ggml_threadpool *(*pool_new_fn)(struct ggml_threadpool_params *);
	ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
	if (!cpu)
		return NULL;
	ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(cpu);
	pool_new_fn pool_new =
	    (pool_new_fn)ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new");
	m->pool_free = (void (*)(struct ggml_threadpool *))ggml_backend_reg_get_proc_address(
	    reg, "ggml_threadpool_free");
	if (!pool_new || !m->pool_free) {
		log_warn("model %s: the CPU backend has no threadpool API; decoding may be slower",
		         m->id);
		return NULL;
	}
	struct ggml_threadpool_params tpp = ggml_threadpool_params_default(n_threads);
	struct ggml_threadpool *pool = pool_new(&tpp);
	if (!pool)
		log_warn("model %s: cannot create a threadpool of %d threads", m->id, n_threads);
	return pool;
}

static void attach_threadpool(struct engine_model *m, int n_threads)
{
	m->pool = engine_pool_new(m, n_threads);
	if (m->pool)
		llama_attach_threadpool(m->ctx, m->pool, NULL);
}

static enum brg_err create_context(struct engine_model *m, const struct engine_params *p,
                                   struct brg_error *err)
{
	m->n_ctx_slot = engine_ctx_slot(p->n_ctx, m->n_ctx_train);
	m->n_batch = engine_step_batch(p->n_batch, p->n_slots);
	int n_threads = engine_threads(p->n_threads);
	m->n_threads = n_threads;
	struct llama_context_params cp = llama_context_default_params();
	cp.n_ctx = (uint32_t)m->n_ctx_slot * (uint32_t)p->n_slots;
	cp.n_seq_max = (uint32_t)p->n_slots;
	/*
	 * One unified KV buffer for every slot.  With a stream per slot
	 * (kv_unified false) llama.cpp splits a batch into micro-batches of
	 * consecutive sequence ids holding equal token counts, and each
	 * micro-batch reads all the weights again: eight streams in scattered
	 * slots, or one stream beside a prompt chunk, cost several decodes a
	 * step (measured: a stream's gap went from 30 ms to 180 ms p50 while a
	 * 4,000-token prompt loaded).  Unified, any mix of slots and chunk
	 * sizes is one pass, and a prefix copy between slots (prefix.c) only
	 * tags the cells with one more sequence.  No slot can starve another:
	 * the scheduler keeps each slot's prompt + completion within
	 * n_ctx_slot, so the slots together never need more than the
	 * n_ctx_slot x n_slots cells allocated.
	 */
	cp.kv_unified = true;
	cp.n_batch = (uint32_t)m->n_batch;
	cp.n_ubatch = (uint32_t)engine_ubatch(m->n_batch);
	cp.n_threads = n_threads;
	cp.n_threads_batch = n_threads;
	cp.no_perf = true;
	m->ctx = llama_init_from_model(m->model, cp);
	if (!m->ctx)
		return brg_fail(err, BRG_E_MODEL_LOAD,
		                "cannot create a context of %u tokens for %s (out of memory?)",
		                cp.n_ctx, p->path);
	/* llama.cpp rounds each stream up to 256 cells; we keep to n_ctx_slot. */
	if (llama_n_ctx_seq(m->ctx) < (uint32_t)m->n_ctx_slot)
		m->n_ctx_slot = (int)llama_n_ctx_seq(m->ctx);
	attach_threadpool(m, n_threads);
	m->batch = llama_batch_init(m->n_batch, 0, 1);
	return BRG_OK;
}

/*
 * Each slot's token mirror of its KV cells (prefix.c), sized now that the
 * context has fixed n_ctx_slot.  Prefix reuse needs cells that can be cut
 * at any position and copied between sequences: recurrent and hybrid
 * memories keep one state per sequence instead, so they start every
 * prompt from scratch.
 */
static enum brg_err alloc_caches(struct engine_model *m, const struct engine_params *p,
                                 struct brg_error *err)
{
	for (int i = 0; i < m->n_slots; i++) {
		m->slots[i].cache = malloc((size_t)m->n_ctx_slot * sizeof *m->slots[i].cache);
		if (!m->slots[i].cache)
			return brg_fail(err, BRG_E_NOMEM, "out of memory");
	}
	m->can_reuse = p->can_reuse_prefix && !llama_model_is_recurrent(m->model) &&
	               !llama_model_is_hybrid(m->model);
	m->dist_scratch =
	    malloc(engine_dist_scratch_floats(llama_vocab_n_tokens(m->vocab)) * sizeof(float));
	if (!m->dist_scratch)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	return BRG_OK;
}

static enum brg_err alloc_model(const struct engine_params *p, struct engine_model **out,
                                struct brg_error *err)
{
	struct engine_model *m = calloc(1, sizeof *m);
	if (!m)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	m->id = strdup(p->id ? p->id : "model");
	m->path = strdup(p->path);
	m->slots = calloc((size_t)p->n_slots, sizeof *m->slots);
	m->n_slots = p->n_slots;
	m->max_queue = p->max_queue;
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	atomic_init(&m->n_busy, 0);
	atomic_init(&m->n_prompt_decoded, 0);
	atomic_init(&m->n_prompt_reused, 0);
	atomic_init(&m->n_kv_copies, 0);
	atomic_init(&m->n_steps, 0);
	atomic_init(&m->n_mixed_steps, 0);
	atomic_init(&m->n_helper_prompts, 0);
	atomic_init(&m->n_helper_tokens, 0);
	m->has_helper_param = engine_params_want_helper(p);
	for (int i = 0; i < p->n_slots && m->slots; i++)
		m->slots[i].wait_on = -1;
	*out = m;
	if (!m->id || !m->path || !m->slots)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	return BRG_OK;
}

/* Frees what engine_load built; the scheduler thread must not be running. */
static void release(struct engine_model *m)
{
	engine_embed_release(m);
	engine_helper_stop(m); /* before the model its context uses */
	if (m->batch.token)
		llama_batch_free(m->batch);
	if (m->ctx)
		llama_free(m->ctx);
	if (m->pool)
		m->pool_free(m->pool); /* after the context that used it */
	if (m->model)
		llama_model_free(m->model);
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	free(m->piece);
	free(m->text);
	free(m->dist_scratch);
	for (int i = 0; m->slots && i < m->n_slots; i++)
		free(m->slots[i].cache);
	free(m->slots);
	free(m->tmpl);
	free(m->path);
	free(m->id);
	free(m);
}

enum brg_err engine_load(const struct engine_params *p, struct engine_model **out,
                         struct brg_error *err)
{
	struct engine_model *m = NULL;
	*out = NULL;
	enum brg_err rc = check_params(p, err);
	if (!rc)
		rc = engine_start(err);
	if (rc)
		return rc;
	rc = alloc_model(p, &m, err);
	if (rc)
		goto fail;
	rc = load_weights(m, p, err);
	if (rc)
		goto fail;
	rc = engine_template_pick(m, p->chat_template, err);
	if (rc)
		goto fail;
	rc = create_context(m, p, err);
	if (rc)
		goto fail;
	rc = alloc_caches(m, p, err);
	if (rc)
		goto fail;
	rc = engine_helper_start(m, err);
	if (rc)
		goto fail;
	/* Report what a memory budget counts (estimate.c), not only the weights. */
	struct engine_estimate est;
	if (engine_estimate(p, &est, NULL) == BRG_OK)
		m->mem_bytes = est.total_bytes;
	rc = engine_embed_setup(m, p->pooling, err);
	if (rc)
		goto fail;
	if (!m->batch.token) {
		rc = brg_fail(err, BRG_E_NOMEM, "out of memory");
		goto fail;
	}
	if (pthread_create(&m->thread, NULL, engine_sched_main, m) != 0) {
		rc = brg_fail(err, BRG_E_RESOURCE, "cannot start the scheduler thread for %s",
		              m->id);
		goto fail;
	}
	m->has_thread = true;
	log_info("model %s loaded from %s: %d slots x %d tokens", m->id, m->path, m->n_slots,
	         m->n_ctx_slot);
	*out = m;
	return BRG_OK;
fail:
	if (m)
		release(m);
	return rc;
}

void engine_free(struct engine_model *m)
{
	if (!m)
		return;
	if (m->has_thread) {
		pthread_mutex_lock(&m->mu);
		m->is_stopping = true;
		pthread_cond_signal(&m->cv);
		pthread_mutex_unlock(&m->mu);
		/* The thread cancels every queued and running job before it exits. */
		pthread_join(m->thread, NULL);
	}
	release(m);
}

void engine_stop(struct engine_model *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->mu);
	m->is_draining = true;
	pthread_cond_signal(&m->cv);
	pthread_mutex_unlock(&m->mu);
}

int engine_n_ctx(const struct engine_model *m)
{
	return m->n_ctx_slot;
}

int engine_n_ctx_train(const struct engine_model *m)
{
	return m->n_ctx_train;
}

int engine_n_slots(const struct engine_model *m)
{
	return m->n_slots;
}

int engine_n_busy_slots(const struct engine_model *m)
{
	return atomic_load(&m->n_busy);
}

double engine_kv_usage(const struct engine_model *m)
{
	double cells = (double)m->n_ctx_slot * m->n_slots;
	int live = atomic_load_explicit(&m->n_cells_live, memory_order_relaxed);
	if (atomic_load(&m->n_busy) == 0 || cells <= 0)
		return 0;
	return live >= cells ? 1.0 : live / cells;
}

size_t engine_memory_bytes(const struct engine_model *m)
{
	return m->mem_bytes;
}

void engine_stats(const struct engine_model *m, struct engine_stats *out)
{
	out->n_prompt_decoded = atomic_load(&m->n_prompt_decoded);
	out->n_prompt_reused = atomic_load(&m->n_prompt_reused);
	out->n_kv_copies = atomic_load(&m->n_kv_copies);
	out->n_steps = atomic_load(&m->n_steps);
	out->n_mixed_steps = atomic_load(&m->n_mixed_steps);
	out->n_helper_prompts = atomic_load(&m->n_helper_prompts);
	out->n_helper_tokens = atomic_load(&m->n_helper_tokens);
}

/*
 * Tokenizes 'text' the way the model wants a prompt: BOS when the vocab
 * asks for one, special tokens parsed (a rendered chat template contains
 * them), and never two BOS when the text already starts with it.  The BOS
 * is added here rather than by llama_tokenize(add_special): that would
 * also append EOS for vocabs that ask for one (wrong for a prompt that is
 * to be continued) and warns when the text brings its own BOS.  *out is
 * malloc'd.  Errors: BRG_E_NOMEM, BRG_E_TOO_LARGE.  Thread-safe: reads only
 * the vocab.
 */
static enum brg_err tokenize(const struct engine_model *m, const char *text, llama_token **out,
                             int *n_out, struct brg_error *err)
{
	size_t len = strlen(text);
	if (len > INT32_MAX - 8)
		return brg_fail(err, BRG_E_TOO_LARGE, "prompt too long");
	int32_t cap = (int32_t)len + 8; /* a token covers >= 1 byte; + specials */
	llama_token *toks = NULL;
	int32_t n;
	for (;;) {
		/* toks[0] is kept free for the BOS. */
		llama_token *grown = realloc(toks, ((size_t)cap + 1) * sizeof *toks);
		if (!grown) {
			free(toks);
			return brg_fail(err, BRG_E_NOMEM, "out of memory");
		}
		toks = grown;
		n = llama_tokenize(m->vocab, text, (int32_t)len, toks + 1, cap, false, true);
		if (n >= 0)
			break;
		if (n == INT32_MIN || -n >= INT32_MAX) {
			free(toks);
			return brg_fail(err, BRG_E_TOO_LARGE, "prompt too long");
		}
		cap = -n;
	}
	llama_token bos = llama_vocab_bos(m->vocab);
	if (llama_vocab_get_add_bos(m->vocab) && bos != LLAMA_TOKEN_NULL &&
	    (n == 0 || toks[1] != bos)) {
		toks[0] = bos;
		n++;
	} else {
		memmove(toks, toks + 1, (size_t)n * sizeof *toks);
	}
	*out = toks;
	*n_out = n;
	return BRG_OK;
}

int engine_count_tokens(struct engine_model *m, const char *text)
{
	llama_token *toks = NULL;
	int n = 0;
	if (!text || tokenize(m, text, &toks, &n, NULL) != BRG_OK)
		return -1;
	free(toks);
	return n;
}

/* Builds the job (tokens already set): stops copied, sampler and stream made. */
static enum brg_err job_fill(struct engine_model *m, struct job *j, const struct gen_params *p,
                             struct brg_error *err)
{
	j->params = *p;
	if (p->n_stops > GEN_MAX_STOPS)
		return brg_fail(err, BRG_E_BAD_REQUEST, "at most %d stop strings", GEN_MAX_STOPS);
	for (size_t i = 0; i < GEN_MAX_STOPS; i++)
		j->params.stops[i] = NULL;
	for (size_t i = 0; i < p->n_stops; i++) {
		if (!p->stops[i] || strlen(p->stops[i]) > GEN_STOP_MAX_LEN)
			return brg_fail(err, BRG_E_BAD_REQUEST,
			                "stop[%zu] must be a string of at most %d bytes", i,
			                GEN_STOP_MAX_LEN);
		j->stop_copies[i] = strdup(p->stops[i]);
		if (!j->stop_copies[i])
			return brg_fail(err, BRG_E_NOMEM, "out of memory");
		j->params.stops[i] = j->stop_copies[i];
	}
	j->chain = engine_sampler_new(&j->params, llama_vocab_n_tokens(m->vocab));
	j->is_greedy = engine_sampler_is_greedy(&j->params);
	j->is_plain = engine_sampler_is_plain(&j->params, llama_vocab_n_tokens(m->vocab));
	j->rng = engine_rng_seed(j->params.has_seed, j->params.seed);
	j->ts = textstream_new(j->params.stops, j->params.n_stops);
	if (!j->chain || !j->ts)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	return BRG_OK;
}

/* Appends 'j' to the queue unless the model is stopping or the queue is full. */
static enum brg_err enqueue(struct engine_model *m, struct job *j, struct brg_error *err)
{
	enum brg_err rc = BRG_OK;
	pthread_mutex_lock(&m->mu);
	/* Queued jobs that free slots will take at once are not waiting. */
	int n_free = m->n_slots - atomic_load(&m->n_busy);
	int n_waiting = m->n_queued - n_free;
	if (m->is_stopping || m->is_draining) {
		rc = brg_fail(err, BRG_E_SHUTTING_DOWN, "model %s is shutting down", m->id);
	} else if (n_waiting >= m->max_queue) {
		rc = brg_fail(err, BRG_E_MODEL_BUSY, "model %s has %d requests waiting", m->id,
		              n_waiting > 0 ? n_waiting : 0);
	} else {
		if (m->q_tail)
			m->q_tail->next = j;
		else
			m->q_head = j;
		m->q_tail = j;
		m->n_queued++;
		pthread_cond_signal(&m->cv);
	}
	pthread_mutex_unlock(&m->mu);
	return rc;
}

enum brg_err engine_submit(struct engine_model *m, const char *prompt, const struct gen_params *p,
                           const atomic_bool *cancel, struct sink sink, struct brg_error *err)
{
	enum brg_err rc;
	struct job *j = calloc(1, sizeof *j);
	if (!j)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	rc = tokenize(m, prompt ? prompt : "", &j->tokens, &j->n_prompt, err);
	if (rc)
		goto fail;
	if (j->n_prompt == 0) {
		rc = brg_fail(err, BRG_E_BAD_REQUEST, "the prompt is empty");
		goto fail;
	}
	if (j->n_prompt >= m->n_ctx_slot) {
		rc = brg_fail(err, BRG_E_CONTEXT_BUDGET,
		              "Content cannot fit in %s context window (%d/%d tokens)", m->id,
		              j->n_prompt, m->n_ctx_slot);
		brg_error_detail_int(err, "current_tokens", j->n_prompt);
		brg_error_detail_int(err, "budget", m->n_ctx_slot);
		brg_error_detail_str(err, "model", m->id);
		goto fail;
	}
	rc = job_fill(m, j, p, err);
	if (rc)
		goto fail;
	j->cancel = cancel;
	j->sink = sink;
	rc = enqueue(m, j, err);
	if (rc)
		goto fail;
	return BRG_OK;
fail:
	engine_job_free(j);
	return rc;
}
