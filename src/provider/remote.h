/*
 * remote.h — the provider for remote backends over HTTP: any
 * OpenAI-compatible server (vLLM, llama-server, LocalAI, OpenAI itself;
 * kind "openai") and Ollama's native API (kind "ollama").  Requests are
 * re-encoded for the upstream, answers relayed to the sinks event by event
 * as they arrive — never buffered whole.  Embeddings (the 'embed' op) are
 * the exception: nothing streams, so the answer is collected (capped at
 * 256 MiB) and delivered at once.  A client that goes away closes the
 * upstream request within one poll interval (20 ms).
 */
#ifndef BRG_PROVIDER_REMOTE_H
#define BRG_PROVIDER_REMOTE_H

#include "config/config.h"
#include "provider/provider.h"

struct remote_provider;

/*
 * Starts the provider's I/O thread.  'cfg' is borrowed and must outlive it.
 * Call remote_global_init() once per process first.  NULL on failure.
 */
struct remote_provider *remote_provider_new(const struct provider_config *cfg);
/* Cancels every transfer (each sink gets its on_done) and refuses new
 * ones; returns once every on_done has been called. */
void remote_provider_close(struct remote_provider *rp);
/* Joins the I/O thread and frees.  NULL is a no-op. */
void remote_provider_free(struct remote_provider *rp);
struct provider remote_provider_get(struct remote_provider *rp);

/* libcurl's process-wide set-up; not thread-safe, call from main. */
enum brg_err remote_global_init(struct brg_error *err);
void remote_global_cleanup(void);

#endif
