/*
 * local.h — the provider that serves configured GGUF models through the
 * embedded engine.  It owns the model registry: which configured models
 * are loaded, loading (with progress for /health/ready), or failed; loads a
 * model on its first request (as Ollama does) or on /load; unloads only
 * after the model's in-flight sequences have finished, so an unload never
 * loses work.  Under a memory budget (config memory_budget_mb) a load first
 * unloads idle models, least recently used first, or is refused:
 * BRG_E_MODEL_LOAD when the model alone is over the budget,
 * BRG_E_RESOURCE (503, retriable) while busy models hold the memory.  With
 * model_ttl set, a thread unloads models idle that long.  See
 * docs/configuration.md.
 */
#ifndef BRG_PROVIDER_LOCAL_H
#define BRG_PROVIDER_LOCAL_H

#include "config/config.h"
#include "provider/provider.h"

struct local_provider;

/* 'cfg' is borrowed and must outlive the provider.  NULL on out-of-memory
 * or when the idle-unload thread (model_ttl > 0) cannot start. */
struct local_provider *local_provider_new(const struct config *cfg);
/*
 * Shutdown, first half: refuses new work (BRG_E_SHUTTING_DOWN), cancels
 * every in-flight sequence and waits until each has called its on_done, so
 * HTTP handlers waiting on them return.  The provider stays valid for
 * calls (which fail) until local_provider_free().
 */
void local_provider_close(struct local_provider *lp);
/* Joins the preload and idle-unload threads and unloads everything.  NULL
 * is a no-op. */
void local_provider_free(struct local_provider *lp);
struct provider local_provider_get(struct local_provider *lp);
/* Starts loading cfg->preload in the background (one model at a time). */
enum brg_err local_provider_preload(struct local_provider *lp, struct brg_error *err);

#endif
