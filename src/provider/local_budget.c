/*
 * local_budget.c — the local provider's memory budget and idle unloading
 * (INFERENCE_MEMORY_BUDGET_MB, INFERENCE_MODEL_TTL; docs/configuration.md).
 *
 * Before a model loads, engine_estimate() reads its GGUF header for what
 * it will take (weights + KV cache + compute buffers).  A model bigger
 * than the whole budget is refused for good.  Otherwise, while what is
 * held (models loaded, being unloaded, or admitted and loading) plus the
 * newcomer would pass the budget, the idle loaded model (refs == 0) used
 * least recently goes; a model with work in flight is never touched, so
 * no running generation is cancelled or waited for on a load's behalf.
 * When only busy models are left, the load is refused with a retriable
 * 503 naming them.  Everything runs under lp->mu (local_int.h), which is
 * dropped only to read the header and to free an evicted engine; the
 * admitted model's has_room is set under the lock, so two loads never
 * count the same free memory.
 *
 * The reaper thread, when a TTL is set, sleeps until the next model would
 * have been idle for the TTL, unloads it, and goes back to sleep; "idle"
 * is measured from the last acquire or release (local.c), the clock the
 * eviction order uses too.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "provider/local_int.h"
#include "core/str.h"

/* Bytes a model holds against the budget now (see local_int.h). */
static size_t held_bytes(const struct local_model *m)
{
	bool holds = m->state == LM_LOADED || m->state == LM_UNLOADING ||
	             (m->state == LM_LOADING && m->has_room);
	return holds ? m->est.total_bytes : 0;
}

static size_t held_total(const struct local_provider *lp)
{
	size_t sum = 0;
	for (size_t i = 0; i < lp->n_models; i++)
		sum += held_bytes(&lp->models[i]);
	return sum;
}

/* The idle loaded model used least recently, or NULL. */
static struct local_model *lru_idle(struct local_provider *lp)
{
	struct local_model *best = NULL;
	for (size_t i = 0; i < lp->n_models; i++) {
		struct local_model *m = &lp->models[i];
		if (m->state == LM_LOADED && m->refs == 0 &&
		    (!best || m->last_used_ms < best->last_used_ms))
			best = m;
	}
	return best;
}

/*
 * Whether memory will come back without anyone's work having to end: an
 * engine is being freed right now, or a model's every reference belongs
 * to a sequence inside its on_done (quick by the sink contract), so it is
 * idle in a moment.  The caller waits for lp->cv then, rather than
 * refusing a client whose previous request has only just ended.
 */
static bool is_freeing(const struct local_provider *lp)
{
	for (size_t i = 0; i < lp->n_models; i++) {
		const struct local_model *m = &lp->models[i];
		if (m->refs == m->n_finishing && (m->state == LM_UNLOADING || m->refs > 0))
			return true;
	}
	return false;
}

static void detail_split(struct brg_error *err, const struct local_model *m, int budget_mb)
{
	brg_error_detail_str(err, "model", m->cfg->id);
	brg_error_detail_int(err, "needed_mb", local_mb(m->est.total_bytes));
	brg_error_detail_int(err, "budget_mb", budget_mb);
}

static enum brg_err refuse_too_big(const struct local_model *m, int budget_mb,
                                   struct brg_error *err)
{
	const struct engine_estimate *e = &m->est;
	brg_fail(err, BRG_E_MODEL_LOAD,
	         "model %s needs an estimated %lld MB (weights %lld MB, KV cache %lld MB for %d "
	         "slots x %d tokens, compute %lld MB), more than the whole memory budget of %d MB "
	         "(INFERENCE_MEMORY_BUDGET_MB)",
	         m->cfg->id, local_mb(e->total_bytes), local_mb(e->weights_bytes),
	         local_mb(e->kv_bytes), m->cfg->slots, e->n_ctx_slot, local_mb(e->compute_bytes),
	         budget_mb);
	detail_split(err, m, budget_mb);
	brg_error_detail_int(err, "weights_mb", local_mb(e->weights_bytes));
	brg_error_detail_int(err, "kv_mb", local_mb(e->kv_bytes));
	brg_error_detail_int(err, "compute_mb", local_mb(e->compute_bytes));
	return BRG_E_MODEL_LOAD;
}

/* "a (4 MB, 2 in flight), b (5 MB, loading)": the models holding memory,
 * but self. */
static void holders(const struct local_provider *lp, const struct local_model *self, char *buf,
                    size_t len)
{
	static const char *const what[] = {"", "loading", "", "unloading", ""};
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < lp->n_models && used < len; i++) {
		const struct local_model *m = &lp->models[i];
		if (m == self || held_bytes(m) == 0)
			continue;
		char state[32];
		if (m->state == LM_LOADED)
			snprintf(state, sizeof state, "%d in flight", m->refs);
		else
			str_copy(state, sizeof state, what[m->state]);
		int w = snprintf(buf + used, len - used, "%s%s (%lld MB, %s)", used ? ", " : "",
		                 m->cfg->id, local_mb(m->est.total_bytes), state);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

static enum brg_err refuse_busy(const struct local_provider *lp, const struct local_model *m,
                                size_t held, int budget_mb, struct brg_error *err)
{
	char names[256];
	holders(lp, m, names, sizeof names);
	brg_fail(err, BRG_E_RESOURCE,
	         "cannot load model %s now: it needs an estimated %lld MB, and %lld MB of the "
	         "%d MB memory budget (INFERENCE_MEMORY_BUDGET_MB) is held by models in use: %s; "
	         "retry when they are idle",
	         m->cfg->id, local_mb(m->est.total_bytes), local_mb(held), budget_mb, names);
	detail_split(err, m, budget_mb);
	brg_error_detail_int(err, "held_mb", local_mb(held));
	return BRG_E_RESOURCE;
}

/* Unloads idle models, least recently used first, until m fits. */
static enum brg_err make_room(struct local_provider *lp, struct local_model *m, int budget_mb,
                              struct brg_error *err)
{
	size_t budget = (size_t)budget_mb << 20;
	for (;;) {
		if (lp->is_closing)
			return brg_fail(err, BRG_E_SHUTTING_DOWN, "server is shutting down");
		size_t held = held_total(lp);
		if (held + m->est.total_bytes <= budget) {
			m->has_room = true;
			return BRG_OK;
		}
		struct local_model *victim = lru_idle(lp);
		if (victim) {
			log_info(
			    "model %s unloaded to make room for %s (budget %d MB: %lld MB held, "
			    "%lld MB needed)",
			    victim->cfg->id, m->cfg->id, budget_mb, local_mb(held),
			    local_mb(m->est.total_bytes));
			local_unload_locked(lp, victim);
			victim->was_auto_unloaded = true;
		} else if (is_freeing(lp)) {
			pthread_cond_wait(&lp->cv, &lp->mu);
		} else {
			return refuse_busy(lp, m, held, budget_mb, err);
		}
	}
}

enum brg_err local_budget_admit(struct local_provider *lp, struct local_model *m,
                                struct brg_error *err)
{
	int budget_mb = lp->cfg->memory_budget_mb;
	m->has_room = false;
	if (budget_mb <= 0)
		return BRG_OK;
	struct engine_params p = local_engine_params(m->cfg);
	struct engine_estimate est;
	pthread_mutex_unlock(&lp->mu);
	enum brg_err rc = engine_estimate(&p, &est, err);
	pthread_mutex_lock(&lp->mu);
	if (rc) { /* a file that cannot be estimated cannot load either */
		if (err)
			err->code = BRG_E_MODEL_LOAD;
		return BRG_E_MODEL_LOAD;
	}
	m->est = est;
	if (est.total_bytes > (size_t)budget_mb << 20)
		return refuse_too_big(m, budget_mb, err);
	return make_room(lp, m, budget_mb, err);
}

/* ---- the idle reaper -------------------------------------------------- */

/* The loaded model idle for ttl_ms by 'now', or NULL; *next is lowered to
 * the time the next one will be. */
static struct local_model *find_expired(struct local_provider *lp, long long ttl_ms, long long now,
                                        long long *next)
{
	for (size_t i = 0; i < lp->n_models; i++) {
		struct local_model *m = &lp->models[i];
		if (m->state != LM_LOADED || m->refs > 0)
			continue;
		long long due = m->last_used_ms + ttl_ms;
		if (due <= now)
			return m;
		if (due < *next)
			*next = due;
	}
	return NULL;
}

static void *reap_main(void *arg)
{
	struct local_provider *lp = arg;
	long long ttl_ms = (long long)lp->cfg->model_ttl_s * 1000;
	pthread_mutex_lock(&lp->mu);
	while (!lp->is_closing) {
		long long now = brg_now_ms();
		long long next = now + ttl_ms;
		struct local_model *m = find_expired(lp, ttl_ms, now, &next);
		if (m) {
			log_info("model %s unloaded after %lld s idle (INFERENCE_MODEL_TTL=%d)",
			         m->cfg->id, (now - m->last_used_ms) / 1000, lp->cfg->model_ttl_s);
			local_unload_locked(lp, m);
			m->was_auto_unloaded = true;
			continue;
		}
		/* A release only pushes a deadline later, so sleeping until 'next'
		 * misses nothing; close signals reap_cv. */
		struct timespec until = {(time_t)(next / 1000), (long)(next % 1000) * 1000000L};
		pthread_cond_timedwait(&lp->reap_cv, &lp->mu, &until);
	}
	pthread_mutex_unlock(&lp->mu);
	return NULL;
}

bool local_reaper_start(struct local_provider *lp)
{
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* brg_now_ms()'s clock */
	pthread_cond_init(&lp->reap_cv, &attr);
	pthread_condattr_destroy(&attr);
	if (lp->cfg->model_ttl_s <= 0)
		return true;
	if (pthread_create(&lp->reap_thread, NULL, reap_main, lp) != 0)
		return false;
	lp->has_reap_thread = true;
	return true;
}

void local_reaper_stop(struct local_provider *lp)
{
	pthread_mutex_lock(&lp->mu);
	pthread_cond_signal(&lp->reap_cv);
	pthread_mutex_unlock(&lp->mu);
	if (lp->has_reap_thread)
		pthread_join(lp->reap_thread, NULL);
	lp->has_reap_thread = false;
	pthread_cond_destroy(&lp->reap_cv);
}
