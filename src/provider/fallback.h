/*
 * fallback.h — the fallback chain, circuit breakers and health checks
 * that sit between orchestrate/ and the providers (spec: switchable
 * backends → fallback chain, health checks).
 *
 * A request routed to a provider in the chain that fails *before any of
 * its text reached the client* with a retriable error (refused, timeout,
 * 5xx, 429, overloaded) is run again on the next provider of the chain —
 * with the same model if that provider serves it, else its default model.
 * Once text has been delivered, nothing switches: the error goes to the
 * client.  Every provider has a breaker: K consecutive provider faults
 * open it for a cool-down, during which the chain skips it; a successful
 * request or health check closes it.  A background thread checks every
 * provider that can be checked, every interval.
 */
#ifndef BRG_PROVIDER_FALLBACK_H
#define BRG_PROVIDER_FALLBACK_H

#include <stdbool.h>

#include "core/err.h"
#include "core/gen.h"
#include "provider/provider.h"

struct fallback_opts {
	bool is_enabled;        /* ENABLE_FALLBACK */
	int breaker_failures;   /* consecutive faults that open a breaker */
	int breaker_cooldown_s; /* how long it stays open */
	int health_interval_s;  /* HEALTH_CHECK_INTERVAL */
	int health_timeout_s;   /* HEALTH_CHECK_TIMEOUT */
};

struct fallback;

/* NULL on out-of-memory.  fallback_free(NULL) is a no-op; it stops the
 * health thread first. */
struct fallback *fallback_new(const struct fallback_opts *o);
void fallback_free(struct fallback *f);

/*
 * Registers a provider (borrowed; by its ops->name).  chain_position >= 0
 * puts it in the chain at that rank (lower first); -1 keeps it out of the
 * chain but still under a breaker.  default_model (borrowed, may be NULL)
 * is what a fallback asks this provider for when it does not serve the
 * request's model.  Call before fallback_start.
 */
enum brg_err fallback_add(struct fallback *f, struct provider p, int chain_position,
                          const char *default_model);
/* Starts the health thread (a first round of checks runs at once). */
enum brg_err fallback_start(struct fallback *f, struct brg_error *err);

/*
 * Runs 'r' on 'p' (one of the registered providers), falling back as
 * described above.  Same contract as provider_ops.generate: on BRG_OK each
 * sink gets exactly one on_done.  'r' and what it points to must stay valid
 * until the last on_done.  When every provider tried has failed, the
 * choices end with BRG_E_PROVIDER_UNAVAILABLE whose details name each
 * provider and its error.  A provider whose breaker is open fails at once
 * with BRG_E_PROVIDER_UNAVAILABLE when there is nothing to fall back to.
 */
enum brg_err fallback_generate(struct fallback *f, struct provider p, const struct gen_request *r,
                               struct sink *sinks, struct brg_error *err);

/*
 * The same for embeddings (provider_ops.embed's contract), except that a
 * fallback goes only to providers that serve the same model id: vectors of
 * different models are not comparable.  BRG_E_BAD_REQUEST when the routed
 * provider has no embeddings.
 */
enum brg_err fallback_embed(struct fallback *f, struct provider p, const struct embed_request *r,
                            struct embed_sink sink, struct brg_error *err);

struct provider_health {
	const char *name;
	const char *state; /* "healthy", "unhealthy", "open" (breaker), "unknown" */
	int consecutive_failures;
	long long latency_ms;     /* of the last check; -1 if never checked */
	long long checked_at;     /* Unix seconds; 0 if never */
	const char *last_error;   /* or NULL */
	int chain_position;       /* -1: not in the chain */
	struct provider provider; /* for listing its models */
};

/* Every registered provider, in chain order then the rest.  Thread-safe;
 * strings valid during the callback only. */
void fallback_each_health(struct fallback *f, void (*fn)(void *ud, const struct provider_health *h),
                          void *ud);

#endif
