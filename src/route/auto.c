/*
 * auto.c — auto-routing: which of the models that fit a request answers
 * model "auto" when INFERENCE_AUTO_ROUTE_ENABLED is on (spec:
 * Configuration Reference → Auto-Routing; docs/routing.md).
 *
 * A candidate's fit is its tier: it has the task's preferred role (3),
 * else its fallback role (2), else any role (1); a model that failed to
 * load is tier 0.  Within the best tier the strategy orders the models
 * that are ready — loaded, or remote — and only when none is ready the
 * ones that would load first: balancing never loads a model (the spec
 * balances "when multiple models loaded"; a load for balance's sake could
 * evict the very model it balances against under a memory budget).
 *
 *   least_busy        fewest requests in flight or waiting per slot
 *                     (nginx's weighted least_conn, slots as weights)
 *   round_robin       in turn, one atomic counter per candidate set
 *   capability_match  no balancing: tier, then how early the role comes in
 *                     the model's roles (its main role first), then ready,
 *                     then the larger context
 *
 * Ties go to configuration order.  After the strategy's order come the
 * rest — the best tier's cold models, then lower tiers, failed ones last —
 * in capability order, so a fallback walks from the best fits down.
 *
 * Nothing here locks: the providers answer from their own state, the load
 * callback is admission's, and the counters are atomics.
 */
#include <stdio.h>
#include <string.h>

#include "route/route_int.h"
#include "core/str.h"

#define SCAN_MAX 16 /* models looked at: the pool holds at most 16 too */

struct cand {
	struct plan_member m;
	int tier;      /* 3 preferred role, 2 fallback role, 1 any, 0 failed */
	int role_at;   /* where the fitting role stands in the model's list */
	bool is_ready; /* loaded, or remote: it answers without loading first */
	int ctx;       /* context_length; 0 unknown */
	int n_slots;   /* parallel sequences; 0 unknown (remote) */
	int load;      /* requests in flight or waiting */
	size_t order;  /* place in the pool or in the providers' lists */
};

/* What scoring one model needs besides its model_info. */
struct scorer {
	const struct config *cfg;
	const char *preferred, *fallback;
	struct cand *c;
};

bool route_auto_is_enabled(const struct router *r)
{
	return r->cfg && r->cfg->auto_route_enabled;
}

static int role_at(const char *const *roles, size_t n, const char *role)
{
	for (size_t i = 0; role && i < n; i++)
		if (strcmp(roles[i], role) == 0)
			return (int)i;
	return -1;
}

static bool is_status(const struct model_info *mi, const char *s)
{
	return mi->status && strcmp(mi->status, s) == 0;
}

/* Scores s->c from its provider's info; roles from INFERENCE_MODEL_ROLES
 * when the provider has none (a remote model). */
static void score(void *ud, const struct model_info *mi)
{
	struct scorer *s = ud;
	struct cand *c = s->c;
	const char *const *roles = mi->roles;
	size_t n = mi->n_roles;
	if (!n && s->cfg) {
		char *const *extra;
		config_model_roles(s->cfg, c->m.name, &extra, &n);
		roles = (const char *const *)extra;
	}
	int at = role_at(roles, n, s->preferred);
	c->tier = 3;
	if (at < 0) {
		at = role_at(roles, n, s->fallback);
		c->tier = at < 0 ? 1 : 2;
	}
	c->role_at = at < 0 ? 0 : at;
	if (is_status(mi, "failed"))
		c->tier = 0;
	c->is_ready = is_status(mi, "loaded") || is_status(mi, "remote");
	c->ctx = mi->context_length;
	c->n_slots = mi->n_slots;
	c->load = mi->n_busy_slots;
}

/* Every model of one provider, as candidates named as /v1/models lists
 * them. */
struct lister {
	struct scorer s;
	struct cand *cs;
	size_t n;
	const struct provider *p;
};

static void list_one(void *ud, const struct model_info *mi)
{
	struct lister *l = ud;
	size_t plen = strlen(l->p->ops->name);
	if (l->n == SCAN_MAX || strlen(mi->id) >= ROUTE_MODEL_MAX)
		return;
	struct cand *c = &l->cs[l->n];
	*c = (struct cand){.order = l->n};
	str_copy(c->m.name, sizeof c->m.name, mi->id);
	/* A remote lists "vllm:m1"; the provider's own id is "m1". */
	bool is_prefixed = !strncmp(mi->id, l->p->ops->name, plen) && mi->id[plen] == ':';
	c->m.t.p = *l->p;
	str_copy(c->m.t.model, sizeof c->m.t.model, mi->id + (is_prefixed ? plen + 1 : 0));
	l->s.c = c;
	score(&l->s, mi);
	l->n++;
}

/* The candidates, unordered, into cs[0..SCAN_MAX); returns how many. */
static size_t gather(struct router *r, const struct scorer *base, const char *const *names,
                     size_t n_names, struct cand *cs)
{
	struct lister l = {.s = *base, .cs = cs};
	for (size_t i = 0; !n_names && i < r->n_providers; i++) {
		l.p = &r->providers[i];
		l.p->ops->each_model(l.p->impl, list_one, &l);
	}
	for (size_t i = 0; i < n_names && l.n < SCAN_MAX; i++) {
		struct cand *c = &cs[l.n];
		*c = (struct cand){.tier = 1, .order = l.n};
		/* "auto" in a pool would send us round in circles. */
		if (strcmp(names[i], "auto") == 0 || strlen(names[i]) >= ROUTE_MODEL_MAX ||
		    route_resolve(r, names[i], NULL, &c->m.t, NULL))
			continue;
		str_copy(c->m.name, sizeof c->m.name, names[i]);
		l.s.c = c;
		if (c->m.t.p.ops->model)
			c->m.t.p.ops->model(c->m.t.p.impl, c->m.t.model, score, &l.s);
		l.n++;
	}
	for (size_t i = 0; r->load && i < l.n; i++) {
		int n = r->load(r->load_ud, &cs[i].m.t);
		if (n > cs[i].load) /* admission's count, or the engine's when larger */
			cs[i].load = n;
	}
	return l.n;
}

static bool fits_better(const struct cand *a, const struct cand *b)
{
	if (a->tier != b->tier)
		return a->tier > b->tier;
	if (a->role_at != b->role_at)
		return a->role_at < b->role_at;
	if (a->is_ready != b->is_ready)
		return a->is_ready;
	if (a->ctx != b->ctx)
		return a->ctx > b->ctx;
	return a->order < b->order;
}

/* Load per slot, compared without division; a remote counts as one slot. */
static bool is_less_busy(const struct cand *a, const struct cand *b)
{
	long long wa = a->n_slots > 0 ? a->n_slots : 1, wb = b->n_slots > 0 ? b->n_slots : 1;
	long long la = (long long)a->load * wb, lb = (long long)b->load * wa;
	if (la != lb)
		return la < lb;
	return a->order < b->order;
}

/* Insertion sort of idx[0..n) (a handful) by 'before'. */
static void sort_idx(const struct cand *cs, size_t *idx, size_t n,
                     bool (*before)(const struct cand *, const struct cand *))
{
	for (size_t i = 1; i < n; i++) {
		size_t v = idx[i], k = i;
		while (k > 0 && before(&cs[v], &cs[idx[k - 1]])) {
			idx[k] = idx[k - 1];
			k--;
		}
		idx[k] = v;
	}
}

/* FNV-1a over the set's names, each with its NUL: which round-robin
 * counter the set turns. */
static size_t set_slot(const struct cand *cs, const size_t *set, size_t n)
{
	unsigned long long h = 14695981039346656037ull;
	for (size_t i = 0; i < n; i++) {
		const char *p = cs[set[i]].m.name;
		do
			h = (h ^ (unsigned char)*p) * 1099511628211ull;
		while (*p++);
	}
	return (size_t)(h % ROUTE_RR_SLOTS);
}

/*
 * Orders the balanced set — the best tier's ready models, else all of the
 * best tier — by the strategy into set[], and returns its size; 'ranked'
 * is every candidate in capability order.
 */
static size_t balance(struct router *r, int strategy, const struct cand *cs, const size_t *ranked,
                      size_t n, size_t *set)
{
	int best = cs[ranked[0]].tier;
	bool has_ready = false;
	for (size_t i = 0; i < n; i++)
		has_ready |= cs[i].tier == best && cs[i].is_ready;
	size_t n_set = 0;
	for (size_t i = 0; i < n; i++)
		if (cs[i].tier == best && (cs[i].is_ready || !has_ready))
			set[n_set++] = i; /* in configuration order */
	if (strategy == AUTO_ROUTE_LEAST_BUSY) {
		sort_idx(cs, set, n_set, is_less_busy);
	} else {
		unsigned turn = atomic_fetch_add_explicit(&r->rr[set_slot(cs, set, n_set)], 1,
		                                          memory_order_relaxed);
		size_t rotated[SCAN_MAX];
		for (size_t i = 0; i < n_set; i++)
			rotated[i] = set[(turn + i) % n_set];
		memcpy(set, rotated, n_set * sizeof *set);
	}
	return n_set;
}

size_t route_auto_candidates(struct router *r, const char *task, const char *const *names,
                             size_t n_names, struct plan_member *out, size_t cap)
{
	struct scorer base = {.cfg = r->cfg};
	route_task_roles(task, &base.preferred, &base.fallback);
	struct cand cs[SCAN_MAX];
	size_t n = gather(r, &base, names, n_names, cs);
	if (n == 0)
		return 0;
	size_t ranked[SCAN_MAX];
	for (size_t i = 0; i < n; i++)
		ranked[i] = i; /* cs[] is in configuration order */
	sort_idx(cs, ranked, n, fits_better);
	int strategy = r->cfg ? r->cfg->auto_route_strategy : AUTO_ROUTE_LEAST_BUSY;
	size_t set[SCAN_MAX], n_set = 0;
	if (strategy != AUTO_ROUTE_CAPABILITY_MATCH)
		n_set = balance(r, strategy, cs, ranked, n, set);
	bool is_taken[SCAN_MAX] = {false};
	size_t n_out = 0;
	for (size_t i = 0; i < n_set && n_out < cap; i++) {
		is_taken[set[i]] = true;
		out[n_out++] = cs[set[i]].m;
	}
	for (size_t i = 0; i < n && n_out < cap; i++)
		if (!is_taken[ranked[i]])
			out[n_out++] = cs[ranked[i]].m;
	return n_out;
}
