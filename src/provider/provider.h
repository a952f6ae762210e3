/*
 * provider.h — one interface for everything that can answer a generation:
 * the local llama.cpp engine today, remote OpenAI-compatible backends next.
 * A provider is a table of function pointers plus its own state, so route/
 * and orchestrate/ never know whether a model is local or remote.
 */
#ifndef BRG_PROVIDER_PROVIDER_H
#define BRG_PROVIDER_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/embed.h"
#include "core/err.h"
#include "core/gen.h"
#include "obs/obs.h"

/* What /v1/models shows of one model.  Strings borrowed from the provider,
 * valid during the callback only. */
struct model_info {
	const char *id;
	const char *status; /* "loaded", "available", "loading", "failed" */
	const char *error;  /* why it failed, or NULL */
	long long memory_mb;
	int context_length;
	const char *const *roles;
	size_t n_roles;
	const char *owned_by;
	long long created; /* Unix time: the model file's modification time */
	int n_slots;
	int n_busy_slots;
	double kv_usage; /* share of its KV cells running sequences fill (engine_kv_usage) */
	/* A local model's engine counters since the server started, every
	 * load of it added up (engine_stats); zero for a remote model. */
	struct obs_engine_counts engine;
};

typedef void (*model_info_fn)(void *ud, const struct model_info *m);

struct provider_ops {
	const char *name; /* also the model-name prefix: "local" in "local:phi-4" */
	/* True when any model named with this provider's prefix is forwarded,
	 * listed or not (a remote server knows its own catalogue). */
	bool is_open_catalog;
	/* Whether this provider serves model 'id'. */
	bool (*has_model)(void *impl, const char *id);
	/*
	 * Starts r->n_choices sequences.  On BRG_OK every sinks[i] gets exactly
	 * one on_done (a choice that could not start gets on_done with
	 * GEN_FINISH_ERROR).  On an error return no sink is ever called.
	 */
	enum brg_err (*generate)(void *impl, const struct gen_request *r, struct sink *sinks,
	                         struct brg_error *err);
	/*
	 * Computes one vector per input.  Same contract as generate: on BRG_OK
	 * sink.on_done is called exactly once (res->error says whether it
	 * worked); on an error return never.  NULL: this provider has no
	 * embeddings at all.  Errors before any work: BRG_E_BAD_REQUEST (the
	 * model does not produce embeddings, an input it cannot take),
	 * BRG_E_CONTEXT_BUDGET (an input longer than the model's context).
	 */
	enum brg_err (*embed)(void *impl, const struct embed_request *r, struct embed_sink sink,
	                      struct brg_error *err);
	void (*each_model)(void *impl, model_info_fn fn, void *ud);
	/* Info for one model; false when unknown. */
	bool (*model)(void *impl, const char *id, model_info_fn fn, void *ud);
	/* Blocking; errors: BRG_E_MODEL_NOT_FOUND, BRG_E_MODEL_LOAD, BRG_E_RESOURCE
	 * (a memory budget held by busy models: retriable). */
	enum brg_err (*load)(void *impl, const char *id, struct brg_error *err);
	/* Blocking until in-flight work on the model is done. */
	enum brg_err (*unload)(void *impl, const char *id, struct brg_error *err);
	/*
	 * Blocking reachability check for health monitoring (a remote's models
	 * endpoint), within timeout_ms; sets *latency_ms.  NULL: nothing to
	 * check (the local engine is as healthy as the process).
	 */
	enum brg_err (*check_health)(void *impl, int timeout_ms, long long *latency_ms,
	                             struct brg_error *err);
	/* Readiness: models loaded, preloads finished / wanted. */
	void (*readiness)(void *impl, size_t *n_loaded, size_t *n_preload_done,
	                  size_t *n_preload_total);
};

struct provider {
	const struct provider_ops *ops;
	void *impl;
};

#endif
