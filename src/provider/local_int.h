/*
 * local_int.h — private to the local provider: the registry's structs and
 * what local.c (the registry, loads, generation) and local_budget.c (the
 * memory budget, least-recently-used eviction, the idle reaper) share.
 *
 * One mutex, lp->mu, guards every field below but cfg (immutable) and
 * eng's own internals; lp->cv announces state changes (a load finished, an
 * unload finished, a reference dropped).  A model's memory counts against
 * the budget while it is LOADED or UNLOADING, and while it is LOADING once
 * the budget admitted it (has_room): so two loads can never both pass the
 * check for the same memory.
 */
#ifndef BRG_PROVIDER_LOCAL_INT_H
#define BRG_PROVIDER_LOCAL_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "engine/engine.h"
#include "provider/local.h"

enum lm_state { LM_AVAILABLE, LM_LOADING, LM_LOADED, LM_UNLOADING, LM_FAILED };

struct local_model {
	const struct model_config *cfg;
	enum lm_state state;
	struct engine_model *eng;
	int refs;        /* in-flight sequences, plus callers between acquire and submit */
	int n_finishing; /* of refs: sequences inside their on_done, about to release */
	char error[BRG_ERR_MSG_MAX];
	struct engine_estimate est; /* from the budget's admission (budget set only) */
	bool has_room;              /* LOADING: admitted by the budget, est counts */
	/* Unloaded by the budget or the idle TTL rather than by a client since
	 * its last load: the next request loads it again, so readiness still
	 * counts it. */
	bool was_auto_unloaded;
	long long last_used_ms; /* brg_now_ms() at load, acquire and release */
	/* The engine counters of its earlier loads, added up when each was
	 * freed: /metrics counts across reloads. */
	struct obs_engine_counts before;
};

struct local_provider {
	const struct config *cfg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct local_model *models;
	size_t n_models;
	pthread_t preload_thread;
	bool has_preload_thread;
	size_t n_preload_done;
	bool is_closing;
	pthread_cond_t reap_cv; /* CLOCK_MONOTONIC; signalled at close */
	pthread_t reap_thread;  /* when cfg->model_ttl_s > 0 */
	bool has_reap_thread;
};

/* Bytes to MiB, rounded up: the unit of memory_mb and of the budget. */
static inline long long local_mb(size_t bytes)
{
	return (long long)((bytes + (1u << 20) - 1) >> 20);
}

/* local.c: the engine parameters a model's config asks for. */
struct engine_params local_engine_params(const struct model_config *c);

/* local.c, lock held, m LOADED: marks it UNLOADING, waits for refs == 0,
 * frees the engine with the lock dropped, and leaves it AVAILABLE. */
void local_unload_locked(struct local_provider *lp, struct local_model *m);

/*
 * local_budget.c, lock held, m LOADING (set by the caller, not yet
 * admitted).  With no budget: BRG_OK at once.  Otherwise estimates m
 * (engine_estimate, with the lock dropped) and makes room for it by
 * unloading idle loaded models, least recently used first (the lock is
 * dropped while each is freed), then sets m->has_room.  Never touches a
 * model with work in flight.  Errors: BRG_E_MODEL_LOAD (the model alone
 * is over the budget, or cannot be estimated: it can never load),
 * BRG_E_RESOURCE (the memory is held by models in use; retriable),
 * BRG_E_SHUTTING_DOWN.  m->state is left to the caller.
 */
enum brg_err local_budget_admit(struct local_provider *lp, struct local_model *m,
                                struct brg_error *err);

/*
 * local_budget.c: sets up lp->reap_cv and, when cfg->model_ttl_s > 0,
 * starts the thread that unloads models idle (refs == 0) for that long.
 * False when the thread cannot start (nothing to undo then but
 * local_reaper_stop).  local_reaper_stop: wakes and joins it (is_closing
 * must be set) and destroys reap_cv.
 */
bool local_reaper_start(struct local_provider *lp);
void local_reaper_stop(struct local_provider *lp);

#endif
