/*
 * route.c — model-name prefixes, the task → role table, and "auto"
 * routing (auto.c when auto-routing is on).  See route.h.  The role
 * table is data (spec: Task Type → Role Routing), read-only after
 * start-up.
 */
#include "route/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/plan.h"
#include "route/route_int.h"
#include "core/str.h"

static const struct {
	const char *task;
	const char *preferred;
	const char *fallback;
} task_roles[] = {
    {"general", "primary", NULL},       {"chat", "primary", NULL},
    {"summarize", "primary", NULL},     {"explain", "primary", NULL},
    {"code", "coder", "primary"},       {"debug", "coder", "primary"},
    {"refactor", "coder", "primary"},   {"review", "coder", "primary"},
    {"test", "coder", "primary"},       {"analyze", "thinker", "primary"},
    {"reason", "thinker", "primary"},   {"plan", "thinker", "primary"},
    {"compare", "thinker", "primary"},  {"debate", "thinker", "primary"},
    {"simple", "fast", "primary"},      {"quick", "fast", "primary"},
    {"classify", "fast", "primary"},    {"extract", "fast", "primary"},
    {"document", "longctx", "thinker"}, {"summarize_long", "longctx", "thinker"},
    {"rag", "longctx", "thinker"},
};

#define N_TASKS (sizeof task_roles / sizeof task_roles[0])

struct router *router_new(void)
{
	struct router *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->default_provider = -1;
	for (size_t i = 0; i < ROUTE_RR_SLOTS; i++)
		atomic_init(&r->rr[i], 0);
	return r;
}

void router_set_default(struct router *r, const char *name)
{
	for (size_t i = 0; i < r->n_providers; i++)
		if (strcmp(r->providers[i].ops->name, name) == 0 &&
		    r->providers[i].ops->is_open_catalog)
			r->default_provider = (int)i;
}

void router_set_config(struct router *r, const struct config *cfg)
{
	r->cfg = cfg;
}

void router_set_load(struct router *r, route_load_fn fn, void *ud)
{
	r->load = fn;
	r->load_ud = ud;
}

const struct config *router_config(const struct router *r)
{
	return r->cfg;
}

void router_free(struct router *r)
{
	free(r);
}

enum brg_err router_add(struct router *r, struct provider p)
{
	if (r->n_providers == ROUTE_MAX_PROVIDERS)
		return BRG_E_INTERNAL;
	r->providers[r->n_providers++] = p;
	return BRG_OK;
}

bool route_task_known(const char *task)
{
	for (size_t i = 0; task && i < N_TASKS; i++)
		if (strcmp(task_roles[i].task, task) == 0)
			return true;
	return false;
}

void route_task_roles(const char *task, const char **preferred, const char **fallback)
{
	*preferred = "primary";
	*fallback = NULL;
	for (size_t i = 0; task && i < N_TASKS; i++)
		if (strcmp(task_roles[i].task, task) == 0) {
			*preferred = task_roles[i].preferred;
			*fallback = task_roles[i].fallback;
		}
}

/* Splits "prefix:model" when prefix names a provider. */
static const struct provider *by_prefix(struct router *r, const char *name, const char **model)
{
	const char *colon = strchr(name, ':');
	if (!colon)
		return NULL;
	size_t n = (size_t)(colon - name);
	for (size_t i = 0; i < r->n_providers; i++) {
		const char *pn = r->providers[i].ops->name;
		bool is_alias =
		    n == 9 && strncmp(name, "inference", 9) == 0 && strcmp(pn, "local") == 0;
		if (is_alias || (strlen(pn) == n && strncmp(name, pn, n) == 0)) {
			*model = colon + 1;
			return &r->providers[i];
		}
	}
	return NULL;
}

struct auto_pick {
	const char *preferred, *fallback;
	size_t provider;      /* the provider being visited */
	size_t best_provider; /* the one that listed the pick */
	char best[ROUTE_MODEL_MAX];
	int best_score;
};

static bool has_role(const struct model_info *m, const char *role)
{
	for (size_t i = 0; role && i < m->n_roles; i++)
		if (strcmp(m->roles[i], role) == 0)
			return true;
	return false;
}

/* Preferred role beats fallback beats any; a loaded model beats one that
 * would have to load first. */
static void auto_visit(void *ud, const struct model_info *m)
{
	struct auto_pick *a = ud;
	int score = has_role(m, a->preferred) ? 6 : has_role(m, a->fallback) ? 4 : 2;
	if (strcmp(m->status, "loaded") == 0)
		score += 1;
	if (strcmp(m->status, "failed") == 0)
		score = 0;
	if (score > a->best_score) {
		a->best_score = score;
		a->best_provider = a->provider;
		str_copy(a->best, sizeof a->best, m->id);
	}
}

static enum brg_err not_found(const char *name, struct brg_error *err)
{
	brg_fail(err, BRG_E_MODEL_NOT_FOUND, "model '%s' not found; GET /v1/models lists them",
	         name);
	brg_error_detail_str(err, "model", name);
	return BRG_E_MODEL_NOT_FOUND;
}

enum brg_err route_resolve(struct router *r, const char *name, const char *task_type,
                           struct route_target *out, struct brg_error *err)
{
	const char *model = name;
	const struct provider *p = by_prefix(r, name, &model);
	if (strlen(model) >= ROUTE_MODEL_MAX || !*model)
		return not_found(name, err);
	if (p) {
		if (!p->ops->is_open_catalog && !p->ops->has_model(p->impl, model))
			return not_found(name, err);
		out->p = *p;
		str_copy(out->model, sizeof out->model, model);
		return BRG_OK;
	}
	if (strcmp(name, "auto") == 0 && route_auto_is_enabled(r)) {
		struct plan_member first;
		if (!route_auto_candidates(r, task_type, NULL, 0, &first, 1))
			return not_found(name, err);
		*out = first.t;
		return BRG_OK;
	}
	if (strcmp(name, "auto") == 0) {
		struct auto_pick a = {.best_score = 0};
		route_task_roles(task_type, &a.preferred, &a.fallback);
		for (a.provider = 0; a.provider < r->n_providers; a.provider++) {
			const struct provider *q = &r->providers[a.provider];
			q->ops->each_model(q->impl, auto_visit, &a);
		}
		if (a.best_score == 0)
			return not_found(name, err);
		out->p = r->providers[a.best_provider];
		str_copy(out->model, sizeof out->model, a.best);
		return BRG_OK;
	}
	for (size_t i = 0; i < r->n_providers; i++) {
		if (r->providers[i].ops->has_model(r->providers[i].impl, model)) {
			out->p = r->providers[i];
			str_copy(out->model, sizeof out->model, model);
			return BRG_OK;
		}
	}
	if (r->default_provider >= 0) {
		out->p = r->providers[r->default_provider];
		str_copy(out->model, sizeof out->model, model);
		return BRG_OK;
	}
	return not_found(name, err);
}

void route_each_model(struct router *r, model_info_fn fn, void *ud)
{
	for (size_t i = 0; i < r->n_providers; i++)
		r->providers[i].ops->each_model(r->providers[i].impl, fn, ud);
}

bool route_model(struct router *r, const char *name, model_info_fn fn, void *ud)
{
	struct route_target t;
	if (strcmp(name, "auto") == 0 || route_resolve(r, name, NULL, &t, NULL))
		return false;
	return t.p.ops->model(t.p.impl, t.model, fn, ud);
}

enum brg_err route_load(struct router *r, const char *name, struct brg_error *err)
{
	struct route_target t;
	enum brg_err rc = strcmp(name, "auto") == 0 ? not_found(name, err)
	                                            : route_resolve(r, name, NULL, &t, err);
	return rc ? rc : t.p.ops->load(t.p.impl, t.model, err);
}

enum brg_err route_unload(struct router *r, const char *name, struct brg_error *err)
{
	struct route_target t;
	enum brg_err rc = strcmp(name, "auto") == 0 ? not_found(name, err)
	                                            : route_resolve(r, name, NULL, &t, err);
	return rc ? rc : t.p.ops->unload(t.p.impl, t.model, err);
}

void route_readiness(struct router *r, size_t *n_loaded, size_t *n_done, size_t *n_total)
{
	*n_loaded = *n_done = *n_total = 0;
	for (size_t i = 0; i < r->n_providers; i++) {
		size_t a, b, c;
		r->providers[i].ops->readiness(r->providers[i].impl, &a, &b, &c);
		*n_loaded += a;
		*n_done += b;
		*n_total += c;
	}
}
