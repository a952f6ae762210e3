/*
 * local.c — the local provider: a registry of configured models over
 * engine/.  See local.h.
 *
 * One mutex guards every model's state; a condition variable announces
 * state changes (load finished, in-flight count dropped).  Loading happens
 * outside the lock, by whichever thread asked first; others wait for it.
 * Every started sequence holds a reference on its model, dropped in its
 * on_done, so unload waits for refs == 0 before engine_free().  on_done runs
 * on the model's own scheduler thread, which is why the last reference is
 * never the one that frees the engine.  Before a model loads, the memory
 * budget (local_budget.c) admits it, unloading idle models to make room;
 * the structs and the locking rule are in local_int.h.
 */
#include "provider/local.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "engine/engine.h"
#include "obs/obs.h"
#include "provider/local_int.h"
#include "core/str.h"

static const char *state_names[] = {"available", "loading", "loaded", "unloading", "failed"};

/* One started sequence: forwards to the caller's sink, then drops the
 * model reference. */
struct job {
	struct sink inner;
	struct local_provider *lp;
	struct local_model *m;
};

static struct local_model *find(struct local_provider *lp, const char *id)
{
	for (size_t i = 0; i < lp->n_models; i++)
		if (strcmp(lp->models[i].cfg->id, id) == 0)
			return &lp->models[i];
	return NULL;
}

struct engine_params local_engine_params(const struct model_config *c)
{
	struct engine_params p = engine_default_params();
	p.id = c->id;
	p.path = c->path;
	p.n_ctx = c->context_length;
	p.n_slots = c->slots;
	p.n_threads = c->threads;
	p.n_gpu_layers = c->gpu_layers;
	p.n_batch = c->batch;
	p.max_queue = c->max_queue;
	p.chat_template = c->chat_template;
	p.pooling = c->pooling >= 0 ? config_pooling_names[c->pooling] : NULL;
	p.can_reuse_prefix = c->prefix_cache;
	p.has_prefill_helper = c->prefill_helper;
	return p;
}

/* Called with the lock held and m->state == LM_LOADING set by the caller;
 * drops the lock while loading. */
static enum brg_err load_locked(struct local_provider *lp, struct local_model *m,
                                struct brg_error *err)
{
	const struct model_config *c = m->cfg;
	struct engine_params p = local_engine_params(c);
	pthread_mutex_unlock(&lp->mu);
	long long t0 = brg_now_ms();
	struct engine_model *eng = NULL;
	struct brg_error local;
	brg_error_clear(&local);
	enum brg_err rc = engine_load(&p, &eng, &local);
	pthread_mutex_lock(&lp->mu);
	if (rc) {
		/* Whatever the engine's reason (a bad file, an unknown template
		 * name), the client sees one code: the model could not load. */
		rc = BRG_E_MODEL_LOAD;
		local.code = rc;
		m->state = LM_FAILED;
		str_copy(m->error, sizeof m->error, local.message);
		log_error("model %s failed to load: %s", c->id, local.message);
		if (err)
			*err = local;
	} else {
		m->state = LM_LOADED;
		m->eng = eng;
		m->error[0] = '\0';
		m->last_used_ms = brg_now_ms();
		obs_model_loaded(c->id, (double)(brg_now_ms() - t0) / 1000);
		log_info("model %s loaded in %lld ms (%s, %d slots x %d tokens)", c->id,
		         brg_now_ms() - t0, c->path, engine_n_slots(eng), engine_n_ctx(eng));
	}
	m->was_auto_unloaded = false;
	pthread_cond_broadcast(&lp->cv);
	return rc;
}

/*
 * Lock held, m AVAILABLE or FAILED: the budget admits it, then it loads.
 * A model that can never fit fails as a bad file does (FAILED, with the
 * reason in /v1/models); one refused for now, or at shutdown, is left as
 * it was.  'err' may be NULL (preload).
 */
static enum brg_err start_load_locked(struct local_provider *lp, struct local_model *m,
                                      struct brg_error *err)
{
	enum lm_state was = m->state;
	m->state = LM_LOADING;
	struct brg_error local;
	brg_error_clear(&local);
	enum brg_err rc = local_budget_admit(lp, m, &local);
	if (rc == BRG_OK)
		return load_locked(lp, m, err);
	m->has_room = false;
	if (brg_err_is_retriable(rc)) {
		m->state = was;
	} else {
		m->state = LM_FAILED;
		m->was_auto_unloaded = false;
		str_copy(m->error, sizeof m->error, local.message);
	}
	if (rc != BRG_E_SHUTTING_DOWN)
		log_warn("model %s not loaded: %s", m->cfg->id, local.message);
	pthread_cond_broadcast(&lp->cv);
	if (err)
		*err = local;
	return rc;
}

/* Makes 'm' loaded (loading it here or waiting for whoever is), then takes
 * 'n' references.  Lock held on entry and exit. */
static enum brg_err acquire_locked(struct local_provider *lp, struct local_model *m, int n,
                                   struct brg_error *err)
{
	for (;;) {
		if (lp->is_closing)
			return brg_fail(err, BRG_E_SHUTTING_DOWN, "server is shutting down");
		switch (m->state) {
		case LM_LOADED:
			m->refs += n;
			m->last_used_ms = brg_now_ms();
			return BRG_OK;
		case LM_LOADING:
		case LM_UNLOADING:
			pthread_cond_wait(&lp->cv, &lp->mu);
			break;
		case LM_AVAILABLE:
		case LM_FAILED: {
			enum brg_err rc = start_load_locked(lp, m, err);
			if (rc)
				return rc;
			break;
		}
		}
	}
}

/* Drops n references, n_done of them from sequences that were finishing
 * (see finishing()). */
static void release_done(struct local_provider *lp, struct local_model *m, int n, int n_done)
{
	pthread_mutex_lock(&lp->mu);
	m->refs -= n;
	m->n_finishing -= n_done;
	m->last_used_ms = brg_now_ms();
	pthread_cond_broadcast(&lp->cv);
	pthread_mutex_unlock(&lp->mu);
}

static void release(struct local_provider *lp, struct local_model *m, int n)
{
	release_done(lp, m, n, 0);
}

/*
 * A sequence's on_done is about to run; its reference drops right after.
 * The caller's client may send its next request the moment on_done
 * returns, before that, so the memory budget must see the model as about
 * to be idle then, not busy (local_budget.c waits for it).
 */
static void finishing(struct local_provider *lp, struct local_model *m)
{
	pthread_mutex_lock(&lp->mu);
	m->n_finishing++;
	pthread_mutex_unlock(&lp->mu);
}

static int job_piece(void *ud, const char *utf8, size_t len)
{
	struct job *j = ud;
	return j->inner.on_piece(j->inner.ud, utf8, len);
}

static void job_done(void *ud, const struct gen_result *res)
{
	struct job *j = ud;
	finishing(j->lp, j->m);
	j->inner.on_done(j->inner.ud, res);
	release_done(j->lp, j->m, 1, 1);
	free(j);
}

static void fail_choice(struct sink s, const struct brg_error *e)
{
	struct gen_result res = {.finish = GEN_FINISH_ERROR, .error = *e};
	s.on_done(s.ud, &res);
}

/* Submits choice i; on failure reports it through the sink unless it is
 * the first choice, whose error becomes the call's own. */
static enum brg_err start_choice(struct local_provider *lp, struct local_model *m,
                                 const struct gen_request *r, const char *prompt, size_t i,
                                 struct sink out, struct brg_error *err)
{
	struct gen_params p = r->params;
	if (p.has_seed)
		p.seed += (uint32_t)i;
	struct job *j = malloc(sizeof *j);
	struct brg_error local;
	brg_error_clear(&local);
	enum brg_err rc = BRG_E_NOMEM;
	if (j) {
		*j = (struct job){out, lp, m};
		struct sink s = {job_piece, job_done, j};
		rc = engine_submit(m->eng, prompt, &p, r->cancel, s, &local);
	} else {
		brg_fail(&local, BRG_E_NOMEM, "out of memory");
	}
	if (rc == BRG_OK)
		return BRG_OK;
	free(j);
	release(lp, m, 1);
	if (i == 0) {
		if (err)
			*err = local;
		return rc;
	}
	fail_choice(out, &local);
	return BRG_OK;
}

static enum brg_err lp_generate(void *impl, const struct gen_request *r, struct sink *sinks,
                                struct brg_error *err)
{
	struct local_provider *lp = impl;
	pthread_mutex_lock(&lp->mu);
	struct local_model *m = find(lp, r->model);
	enum brg_err rc =
	    m ? acquire_locked(lp, m, (int)r->n_choices, err)
	      : brg_fail(err, BRG_E_MODEL_NOT_FOUND, "model '%s' not found", r->model);
	pthread_mutex_unlock(&lp->mu);
	if (rc)
		return rc;
	char *rendered = NULL;
	const char *prompt = r->prompt;
	if (r->msgs) {
		rc = engine_chat_render(m->eng, r->msgs, r->n_msgs, &rendered, err);
		if (rc) {
			release(lp, m, (int)r->n_choices);
			return rc;
		}
		prompt = rendered;
	}
	for (size_t i = 0; i < r->n_choices; i++) {
		rc = start_choice(lp, m, r, prompt, i, sinks[i], err);
		if (rc) {
			/* Only choice 0 can fail here: nothing started. */
			release(lp, m, (int)(r->n_choices - 1));
			break;
		}
	}
	free(rendered);
	return rc;
}

/* One embeddings request: forwards to the caller's sink, then drops the
 * model reference. */
struct embed_job {
	struct embed_sink inner;
	struct local_provider *lp;
	struct local_model *m;
};

static void embed_done(void *ud, struct embed_result *res)
{
	struct embed_job *j = ud;
	finishing(j->lp, j->m);
	j->inner.on_done(j->inner.ud, res);
	release_done(j->lp, j->m, 1, 1);
	free(j);
}

static enum brg_err lp_embed(void *impl, const struct embed_request *r, struct embed_sink sink,
                             struct brg_error *err)
{
	struct local_provider *lp = impl;
	pthread_mutex_lock(&lp->mu);
	struct local_model *m = find(lp, r->model);
	enum brg_err rc =
	    m ? acquire_locked(lp, m, 1, err)
	      : brg_fail(err, BRG_E_MODEL_NOT_FOUND, "model '%s' not found", r->model);
	pthread_mutex_unlock(&lp->mu);
	if (rc)
		return rc;
	struct embed_job *j = malloc(sizeof *j);
	if (!j) {
		release(lp, m, 1);
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	}
	*j = (struct embed_job){sink, lp, m};
	rc = engine_embed(m->eng, r, (struct embed_sink){embed_done, j}, err);
	if (rc) {
		free(j);
		release(lp, m, 1);
	}
	return rc;
}

static bool lp_has_model(void *impl, const char *id)
{
	struct local_provider *lp = impl;
	return find(lp, id) != NULL; /* the configured set never changes */
}

static long long file_mb(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? local_mb((size_t)st.st_size) : 0;
}

static long long file_mtime(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_mtime : 0;
}

/* Adds engine 'e''s counters (none when NULL) to *to. */
static void add_stats(struct obs_engine_counts *to, const struct engine_model *e)
{
	struct engine_stats s = {0};
	if (e)
		engine_stats(e, &s);
	to->prompt_decoded += s.n_prompt_decoded;
	to->prompt_reused += s.n_prompt_reused;
	to->kv_copies += s.n_kv_copies;
	to->helper_prompts += s.n_helper_prompts;
	to->helper_tokens += s.n_helper_tokens;
}

static void info_of(struct local_model *m, model_info_fn fn, void *ud)
{
	struct model_info mi = {
	    .id = m->cfg->id,
	    .status = state_names[m->state],
	    .error = m->state == LM_FAILED ? m->error : NULL,
	    .memory_mb = m->eng ? local_mb(engine_memory_bytes(m->eng)) : file_mb(m->cfg->path),
	    .context_length = m->cfg->context_length,
	    .roles = (const char *const *)m->cfg->roles,
	    .n_roles = m->cfg->n_roles,
	    .owned_by = "brigade",
	    .created = file_mtime(m->cfg->path),
	    .n_slots = m->cfg->slots,
	    .n_busy_slots = m->eng ? engine_n_busy_slots(m->eng) : 0,
	    .kv_usage = m->eng ? engine_kv_usage(m->eng) : 0,
	    .engine = m->before,
	};
	add_stats(&mi.engine, m->eng);
	fn(ud, &mi);
}

static void lp_each_model(void *impl, model_info_fn fn, void *ud)
{
	struct local_provider *lp = impl;
	pthread_mutex_lock(&lp->mu);
	for (size_t i = 0; i < lp->n_models; i++)
		info_of(&lp->models[i], fn, ud);
	pthread_mutex_unlock(&lp->mu);
}

static bool lp_model(void *impl, const char *id, model_info_fn fn, void *ud)
{
	struct local_provider *lp = impl;
	pthread_mutex_lock(&lp->mu);
	struct local_model *m = find(lp, id);
	if (m)
		info_of(m, fn, ud);
	pthread_mutex_unlock(&lp->mu);
	return m != NULL;
}

static enum brg_err lp_load(void *impl, const char *id, struct brg_error *err)
{
	struct local_provider *lp = impl;
	pthread_mutex_lock(&lp->mu);
	struct local_model *m = find(lp, id);
	enum brg_err rc = m ? acquire_locked(lp, m, 0, err)
	                    : brg_fail(err, BRG_E_MODEL_NOT_FOUND, "model '%s' not found", id);
	pthread_mutex_unlock(&lp->mu);
	return rc;
}

void local_unload_locked(struct local_provider *lp, struct local_model *m)
{
	m->state = LM_UNLOADING;
	while (m->refs > 0)
		pthread_cond_wait(&lp->cv, &lp->mu);
	struct engine_model *eng = m->eng;
	m->eng = NULL;
	add_stats(&m->before, eng);
	pthread_mutex_unlock(&lp->mu);
	engine_free(eng);
	pthread_mutex_lock(&lp->mu);
	m->state = LM_AVAILABLE;
	obs_model_unloaded(m->cfg->id);
	pthread_cond_broadcast(&lp->cv);
	log_info("model %s unloaded", m->cfg->id);
}

static enum brg_err lp_unload(void *impl, const char *id, struct brg_error *err)
{
	struct local_provider *lp = impl;
	pthread_mutex_lock(&lp->mu);
	struct local_model *m = find(lp, id);
	if (!m) {
		pthread_mutex_unlock(&lp->mu);
		return brg_fail(err, BRG_E_MODEL_NOT_FOUND, "model '%s' not found", id);
	}
	while (m->state == LM_LOADING || m->state == LM_UNLOADING)
		pthread_cond_wait(&lp->cv, &lp->mu);
	if (m->state == LM_LOADED)
		local_unload_locked(lp, m);
	else if (m->state == LM_FAILED)
		m->state = LM_AVAILABLE;
	m->was_auto_unloaded = false; /* a client's unload: readiness stops counting it */
	pthread_mutex_unlock(&lp->mu);
	return BRG_OK;
}

/*
 * n_loaded counts the models that serve a request without a client loading
 * them first: loaded ones, and those the memory budget or the idle TTL
 * unloaded, which the next request loads again.  So a server whose
 * preloaded model was unloaded for being idle stays ready; one whose
 * client unloaded every model does not.
 */
static void lp_readiness(void *impl, size_t *n_loaded, size_t *n_done, size_t *n_total)
{
	struct local_provider *lp = impl;
	pthread_mutex_lock(&lp->mu);
	*n_loaded = 0;
	for (size_t i = 0; i < lp->n_models; i++)
		*n_loaded += lp->models[i].state == LM_LOADED || lp->models[i].was_auto_unloaded;
	*n_done = lp->n_preload_done;
	*n_total = lp->cfg->n_preload;
	pthread_mutex_unlock(&lp->mu);
}

static const struct provider_ops local_ops = {
    .name = "local",
    .has_model = lp_has_model,
    .generate = lp_generate,
    .embed = lp_embed,
    .each_model = lp_each_model,
    .model = lp_model,
    .load = lp_load,
    .unload = lp_unload,
    .readiness = lp_readiness,
};

struct provider local_provider_get(struct local_provider *lp)
{
	struct provider p = {&local_ops, lp};
	return p;
}

struct local_provider *local_provider_new(const struct config *cfg)
{
	struct local_provider *lp = calloc(1, sizeof *lp);
	if (!lp)
		return NULL;
	lp->models = calloc(cfg->n_models ? cfg->n_models : 1, sizeof *lp->models);
	if (!lp->models) {
		free(lp);
		return NULL;
	}
	lp->cfg = cfg;
	lp->n_models = cfg->n_models;
	for (size_t i = 0; i < cfg->n_models; i++)
		lp->models[i].cfg = &cfg->models[i];
	pthread_mutex_init(&lp->mu, NULL);
	pthread_cond_init(&lp->cv, NULL);
	if (!local_reaper_start(lp)) {
		local_provider_free(lp);
		return NULL;
	}
	return lp;
}

static void *preload_main(void *arg)
{
	struct local_provider *lp = arg;
	pthread_mutex_lock(&lp->mu);
	for (size_t i = 0; i < lp->cfg->n_preload && !lp->is_closing; i++) {
		struct local_model *m = find(lp, lp->cfg->preload[i]);
		if (m && (m->state == LM_AVAILABLE || m->state == LM_FAILED))
			(void)start_load_locked(lp, m, NULL);
		/* A request may be loading it already: it counts once it is done. */
		while (m && m->state == LM_LOADING && !lp->is_closing)
			pthread_cond_wait(&lp->cv, &lp->mu);
		lp->n_preload_done++;
		pthread_cond_broadcast(&lp->cv);
	}
	pthread_mutex_unlock(&lp->mu);
	return NULL;
}

enum brg_err local_provider_preload(struct local_provider *lp, struct brg_error *err)
{
	if (lp->cfg->n_preload == 0)
		return BRG_OK;
	if (pthread_create(&lp->preload_thread, NULL, preload_main, lp) != 0)
		return brg_fail(err, BRG_E_INTERNAL, "cannot start the preload thread");
	lp->has_preload_thread = true;
	return BRG_OK;
}

void local_provider_close(struct local_provider *lp)
{
	pthread_mutex_lock(&lp->mu);
	lp->is_closing = true;
	pthread_cond_broadcast(&lp->cv);
	pthread_cond_signal(&lp->reap_cv);
	for (size_t i = 0; i < lp->n_models; i++)
		if (lp->models[i].eng)
			engine_stop(lp->models[i].eng);
	for (size_t i = 0; i < lp->n_models; i++)
		while (lp->models[i].refs > 0)
			pthread_cond_wait(&lp->cv, &lp->mu);
	pthread_mutex_unlock(&lp->mu);
}

void local_provider_free(struct local_provider *lp)
{
	if (!lp)
		return;
	pthread_mutex_lock(&lp->mu);
	lp->is_closing = true;
	pthread_cond_broadcast(&lp->cv);
	pthread_mutex_unlock(&lp->mu);
	if (lp->has_preload_thread)
		pthread_join(lp->preload_thread, NULL);
	local_reaper_stop(lp);
	/* engine_free cancels whatever still runs; each on_done drops its
	 * reference, so there is no waiting on refs here. */
	for (size_t i = 0; i < lp->n_models; i++)
		engine_free(lp->models[i].eng);
	pthread_cond_destroy(&lp->cv);
	pthread_mutex_destroy(&lp->mu);
	free(lp->models);
	free(lp);
}
