/*
 * route_int.h — what the files of route/ share (route.c, plan.c, auto.c).
 * Private to src/route/.
 */
#ifndef BRG_ROUTE_ROUTE_INT_H
#define BRG_ROUTE_ROUTE_INT_H

#include <stdatomic.h>

#include "config/config.h"
#include "route/plan.h"
#include "route/route.h"

/* Round-robin counters, one per candidate set (by a hash of its names;
 * sets that collide share one, which only shifts where each starts). */
#define ROUTE_RR_SLOTS 32

struct router {
	struct provider providers[ROUTE_MAX_PROVIDERS];
	size_t n_providers;
	int default_provider;     /* -1: none */
	const struct config *cfg; /* presets, roles and the pool (plan.c); may be NULL */
	route_load_fn load;       /* least_busy's measure (auto.c); NULL: busy slots only */
	void *load_ud;
	atomic_uint rr[ROUTE_RR_SLOTS];
};

/* The configuration given to router_set_config(), or NULL. */
const struct config *router_config(const struct router *r);

/* Whether "auto" goes through auto.c's strategies (INFERENCE_AUTO_ROUTE_ENABLED). */
bool route_auto_is_enabled(const struct router *r);

/*
 * auto.c: the candidates for model "auto" and 'task' (may be NULL), best
 * first in the configured strategy's order (docs/routing.md), into
 * out[0..cap); returns how many.  They are drawn from names[0..n_names)
 * (the pool: client-written names) or, when n_names is 0, from every
 * model of every provider.  Names that no provider serves are skipped.
 * A round_robin call advances its set's counter: call it once per
 * request.  Can't fail; 0 when nothing is configured.
 */
size_t route_auto_candidates(struct router *r, const char *task, const char *const *names,
                             size_t n_names, struct plan_member *out, size_t cap);

#endif
