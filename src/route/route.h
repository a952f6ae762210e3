/*
 * route.h — from the model name a client wrote to the provider and model
 * that will answer it (spec: Task Type → Role Routing).
 *
 *   "stories260k"        the first provider that has it (local first)
 *   "local:stories260k"  that provider only ("inference:" is an alias of
 *                        "local:", the name llm-gateway uses for us)
 *   "auto"               the model whose roles best fit the task_type;
 *                        with INFERENCE_AUTO_ROUTE_ENABLED, the configured
 *                        strategy's pick among the best fits (auto.c,
 *                        docs/routing.md)
 *
 * A colon that names no provider is part of the model name, so
 * Ollama-style names such as "qwen2.5:7b" pass through whole.
 */
#ifndef BRG_ROUTE_ROUTE_H
#define BRG_ROUTE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "provider/provider.h"

#define ROUTE_MAX_PROVIDERS 8
#define ROUTE_MODEL_MAX     256

struct router;

struct route_target {
	struct provider p;
	char model[ROUTE_MODEL_MAX]; /* the provider's own id */
};

/* NULL on out-of-memory.  router_free(NULL) is a no-op; it does not free
 * the providers. */
struct router *router_new(void);
void router_free(struct router *r);
/* The first provider added serves unprefixed names first.  Borrowed. */
enum brg_err router_add(struct router *r, struct provider p);
/*
 * Names no provider lists go to the provider called 'name' (the spec's
 * INFERENCE_PROVIDER), when it forwards any model.  Unknown name: no-op.
 */
void router_set_default(struct router *r, const char *name);

/*
 * How busy a model is for auto-routing's least_busy strategy: requests in
 * flight or waiting for it (admission's count).  Called on request
 * threads, concurrently; must not block.  Set before serving.
 */
typedef int (*route_load_fn)(void *ud, const struct route_target *t);
void router_set_load(struct router *r, route_load_fn fn, void *ud);

/* Whether 'task' is one of the spec's task types. */
bool route_task_known(const char *task);
/* The preferred and fallback role for a task type ("primary"/NULL for an
 * unknown or NULL task). */
void route_task_roles(const char *task, const char **preferred, const char **fallback);

/* Errors: BRG_E_MODEL_NOT_FOUND (with detail "model"). */
enum brg_err route_resolve(struct router *r, const char *name, const char *task_type,
                           struct route_target *out, struct brg_error *err);

/* Every model of every provider, in provider order. */
void route_each_model(struct router *r, model_info_fn fn, void *ud);
/* One model by client name; false when unknown. */
bool route_model(struct router *r, const char *name, model_info_fn fn, void *ud);
enum brg_err route_load(struct router *r, const char *name, struct brg_error *err);
enum brg_err route_unload(struct router *r, const char *name, struct brg_error *err);
/* Summed over providers. */
void route_readiness(struct router *r, size_t *n_loaded, size_t *n_preload_done,
                     size_t *n_preload_total);

#endif
