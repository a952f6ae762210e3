/*
 * plan.c — see plan.h.  Everything here reads the configuration and the
 * providers' model lists; nothing is kept between requests.
 */
#include "route/plan.h"

#include <stdio.h>
#include <string.h>

#include "route/route_int.h"
#include "core/str.h"

#define POOL_MAX 16

struct pool {
	const char *names[POOL_MAX];
	size_t n;
};

struct roles_seen {
	const char *role;
	bool has;
};

static void roles_visit(void *ud, const struct model_info *m)
{
	struct roles_seen *s = ud;
	for (size_t i = 0; i < m->n_roles; i++)
		if (strcmp(m->roles[i], s->role) == 0)
			s->has = true;
}

/* Whether model 'name' has 'role': its provider's roles (models.yaml),
 * else INFERENCE_MODEL_ROLES's. */
static bool has_role(struct router *r, const char *name, const char *role)
{
	struct roles_seen s = {role, false};
	if (route_model(r, name, roles_visit, &s) && s.has)
		return true;
	const struct config *c = router_config(r);
	for (size_t i = 0; c && i < c->orch.n_extra_roles; i++) {
		const struct model_roles *mr = &c->orch.extra_roles[i];
		if (strcmp(mr->model, name) != 0)
			continue;
		for (size_t k = 0; k < mr->n_roles; k++)
			if (strcmp(mr->roles[k], role) == 0)
				return true;
	}
	return false;
}

static enum brg_err bad(struct brg_error *err, const char *mode, const char *fmt, const char *a)
{
	brg_fail(err, BRG_E_BAD_REQUEST, fmt, a);
	brg_error_detail_str(err, "orchestration_mode", mode);
	return BRG_E_BAD_REQUEST;
}

static enum brg_err member(struct router *r, const char *name, const char *task,
                           struct plan_member *out, struct brg_error *err)
{
	enum brg_err rc = route_resolve(r, name, task, &out->t, err);
	if (rc)
		return rc;
	str_copy(out->name, sizeof out->name, strcmp(name, "auto") == 0 ? out->t.model : name);
	return BRG_OK;
}

/* The first pool model with 'role' other than 'skip' ('prefer' first when
 * it has the role); NULL if none. */
static const char *pick(struct router *r, const struct pool *p, const char *role,
                        const char *prefer, const char *skip)
{
	if (prefer && (!skip || strcmp(prefer, skip) != 0) && has_role(r, prefer, role))
		return prefer;
	for (size_t i = 0; i < p->n; i++)
		if ((!skip || strcmp(p->names[i], skip) != 0) && has_role(r, p->names[i], role))
			return p->names[i];
	return NULL;
}

static const char *pick_other(const struct pool *p, const char *skip)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->names[i], skip) != 0)
			return p->names[i];
	return NULL;
}

/* The leading model, worked out once per plan: with auto-routing, the
 * strategy's candidates too (a round_robin pick turns a counter, so it
 * must not be asked twice). */
struct lead {
	bool is_known;
	const char *name;
	struct plan_member cands[1 + PLAN_MAX_ALTERNATES];
	size_t n_cands;
};

/* The leading model: the request's, or for "auto" the pool's best fit for
 * the task (preferred role, then fallback role, then the first); with
 * auto-routing on, the strategy's first candidate (auto.c). */
static const char *lead_of(struct router *r, const struct plan_request *q, const struct pool *p,
                           struct lead *ld)
{
	if (ld->is_known)
		return ld->name;
	ld->is_known = true;
	ld->name = q->model;
	if (q->model && strcmp(q->model, "auto") != 0)
		return ld->name;
	if (route_auto_is_enabled(r)) {
		ld->n_cands = route_auto_candidates(r, q->task_type, p->names, p->n, ld->cands,
		                                    1 + PLAN_MAX_ALTERNATES);
		if (ld->n_cands)
			ld->name = ld->cands[0].name;
		return ld->name;
	}
	const char *pref, *fb;
	route_task_roles(q->task_type, &pref, &fb);
	const char *m = pick(r, p, pref, NULL, NULL);
	if (!m && fb)
		m = pick(r, p, fb, NULL, NULL);
	ld->name = m ? m : p->n ? p->names[0] : q->model;
	return ld->name;
}

/* One model answers an auto-routed request: the first candidate, and in
 * single mode the others after it when a failure may move on. */
static enum brg_err lead_alone(struct router *r, const struct lead *ld, struct route_plan *out)
{
	const struct config *c = router_config(r);
	out->n_members = 1;
	out->members[0] = ld->cands[0];
	bool is_fallback = strcmp(out->mode, "single") == 0 && c && c->auto_route_fallback;
	for (size_t i = 1; is_fallback && i < ld->n_cands; i++)
		out->alternates[out->n_alternates++] = ld->cands[i];
	return BRG_OK;
}

/* The lead, then every other pool model, up to the cap. */
static enum brg_err all_members(struct router *r, const struct plan_request *q,
                                const struct pool *p, const char *lead, struct route_plan *out,
                                struct brg_error *err)
{
	enum brg_err rc = member(r, lead, q->task_type, &out->members[0], err);
	out->n_members = rc ? 0 : 1;
	for (size_t i = 0; !rc && i < p->n && out->n_members < PLAN_MAX_MEMBERS; i++)
		if (strcmp(p->names[i], lead) != 0)
			rc = member(r, p->names[i], q->task_type, &out->members[out->n_members++],
			            err);
	if (!rc && out->n_members < 2)
		return bad(
		    err, out->mode,
		    "orchestration_mode '%s' needs at least two models: list them in "
		    "INFERENCE_ORCHESTRATION_MODELS (or orchestration.models in models.yaml), "
		    "or choose a preset",
		    out->mode);
	return rc;
}

static bool is_role(const char *s)
{
	static const char *const roles[] = {"primary", "fast", "coder", "thinker", "longctx"};
	for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
		if (strcmp(s, roles[i]) == 0)
			return true;
	return false;
}

/* A judge named by a role or a model id; "none" or "" means none. */
static enum brg_err judge(struct router *r, const struct plan_request *q, const struct pool *p,
                          const char *lead, const char *spec, struct route_plan *out,
                          struct brg_error *err)
{
	out->has_judge = false;
	if (!spec || !*spec || strcmp(spec, "none") == 0)
		return BRG_OK;
	const char *name = spec;
	if (is_role(spec)) {
		name = pick(r, p, spec, lead, NULL);
		if (!name)
			name = lead; /* no model has the role: the leading model judges */
	}
	out->has_judge = true;
	return member(r, name, q->task_type, &out->judge, err);
}

static enum brg_err generic_critique(struct router *r, const struct plan_request *q,
                                     const struct pool *p, const char *lead, struct route_plan *out,
                                     struct brg_error *err)
{
	const char *critic = pick(r, p, "thinker", NULL, lead);
	if (!critic)
		critic = pick_other(p, lead);
	if (!critic)
		return bad(err, out->mode,
		           "orchestration_mode '%s' needs a second model as the critic: list it in "
		           "INFERENCE_ORCHESTRATION_MODELS (a 'thinker' is preferred), or choose a "
		           "preset",
		           out->mode);
	enum brg_err rc = member(r, lead, q->task_type, &out->generator, err);
	return rc ? rc : member(r, critic, q->task_type, &out->critic, err);
}

static enum brg_err generic_pipeline(struct router *r, const struct plan_request *q,
                                     const struct pool *p, const char *lead, struct route_plan *out,
                                     struct brg_error *err)
{
	const struct config *c = router_config(r);
	static const char *const def[] = {"draft", "refine", "validate"};
	size_t n = c && c->orch.n_pipeline_stages ? c->orch.n_pipeline_stages : 3;
	const char *code_role = "thinker";
	const char *pref, *fb;
	route_task_roles(q->task_type, &pref, &fb);
	if (strcmp(pref, "coder") == 0)
		code_role = "coder";
	bool is_mixed = false;
	enum brg_err rc = BRG_OK;
	for (size_t i = 0; !rc && i < n && i < PLAN_MAX_STAGES; i++) {
		const char *st =
		    c && c->orch.n_pipeline_stages ? c->orch.pipeline_stages[i] : def[i];
		const char *name = strcmp(st, "draft") == 0    ? pick(r, p, "fast", NULL, NULL)
		                   : strcmp(st, "refine") == 0 ? pick(r, p, code_role, NULL, lead)
		                                               : lead;
		if (!name)
			name = lead;
		is_mixed |= strcmp(name, lead) != 0;
		str_copy(out->stage_names[i], sizeof out->stage_names[i], st);
		rc = member(r, name, q->task_type, &out->stages[i], err);
		out->n_stages = i + 1;
	}
	if (!rc && !is_mixed) {
		/* No fast or thinking model besides the lead: hand the first
		 * stage to any other model rather than run a one-model pipeline. */
		const char *other = pick_other(p, lead);
		if (!other || out->n_stages < 2)
			return bad(
			    err, out->mode,
			    "orchestration_mode '%s' needs two different models: list them in "
			    "INFERENCE_ORCHESTRATION_MODELS (a 'fast' drafter is preferred), "
			    "or choose a preset",
			    out->mode);
		rc = member(r, other, q->task_type, &out->stages[0], err);
	}
	return rc;
}

static enum brg_err generic(struct router *r, const struct plan_request *q, const struct pool *p,
                            struct lead *ld, struct route_plan *out, struct brg_error *err)
{
	const struct config *c = router_config(r);
	const char *lead = lead_of(r, q, p, ld);
	const char *m = out->mode;
	if (!lead)
		return bad(err, m, "orchestration_mode '%s' has no model to run", m);
	if (strcmp(m, "single") == 0 || strcmp(m, "self_consistency") == 0) {
		if (ld->n_cands)
			return lead_alone(r, ld, out);
		out->n_members = 1;
		return member(r, lead, q->task_type, &out->members[0], err);
	}
	if (strcmp(m, "critique") == 0)
		return generic_critique(r, q, p, lead, out, err);
	if (strcmp(m, "pipeline") == 0)
		return generic_pipeline(r, q, p, lead, out, err);
	enum brg_err rc = all_members(r, q, p, lead, out, err);
	if (rc)
		return rc;
	if (strcmp(m, "debate") == 0)
		return judge(r, q, p, lead, c ? c->orch.debate_reconcile : "primary", out, err);
	return judge(r, q, p, lead, c ? c->orch.ensemble_synthesis : "primary", out, err);
}

static bool has_mode_role(const struct preset_member *pm, const char *role)
{
	for (size_t i = 0; i < pm->n_mode_roles; i++)
		if (strcmp(pm->mode_roles[i], role) == 0)
			return true;
	return false;
}

/* Every preset member with 'role', in order, into dst (up to cap). */
static enum brg_err with_role(struct router *r, const struct preset *ps, const char *role,
                              const char *task, struct plan_member *dst, size_t cap, size_t *n,
                              struct brg_error *err)
{
	*n = 0;
	for (size_t i = 0; i < ps->n_members && *n < cap; i++) {
		if (!has_mode_role(&ps->members[i], role))
			continue;
		enum brg_err rc = member(r, ps->members[i].model, task, &dst[(*n)++], err);
		if (rc)
			return rc;
	}
	return BRG_OK;
}

/* The preset's own parts (config/ checked their counts at load). */
static enum brg_err from_preset(struct router *r, const struct preset *ps, const char *task,
                                struct route_plan *out, struct brg_error *err)
{
	size_t n = 0;
	enum brg_err rc = BRG_OK;
	const char *m = ps->mode;
	if (strcmp(m, "single") == 0) {
		rc = with_role(r, ps, "model", task, out->members, 1, &out->n_members, err);
	} else if (strcmp(m, "critique") == 0) {
		rc = with_role(r, ps, "generator", task, &out->generator, 1, &n, err);
		if (!rc)
			rc = with_role(r, ps, "critic", task, &out->critic, 1, &n, err);
	} else if (strcmp(m, "pipeline") == 0) {
		static const char *const roles[] = {"drafter", "refiner", "validator"};
		static const char *const names[] = {"draft", "refine", "validate"};
		for (size_t i = 0; !rc && i < 3; i++) {
			rc = with_role(r, ps, roles[i], task, &out->stages[out->n_stages], 1, &n,
			               err);
			if (n)
				snprintf(out->stage_names[out->n_stages++],
				         sizeof out->stage_names[0], "%s", names[i]);
		}
	} else {
		bool is_debate = strcmp(m, "debate") == 0;
		rc = with_role(r, ps, is_debate ? "participant" : "member", task, out->members,
		               PLAN_MAX_MEMBERS, &out->n_members, err);
		if (!rc)
			rc = with_role(r, ps, is_debate ? "reconciler" : "synthesizer", task,
			               &out->judge, 1, &n, err);
		out->has_judge = n == 1;
	}
	return rc;
}

/* A fast model of the pool compresses, else the leading one; none when
 * that cannot be resolved (compression then fails clearly). */
static void compressor(struct router *r, const struct plan_request *q, const struct pool *p,
                       struct lead *ld, struct route_plan *out)
{
	const char *name = pick(r, p, "fast", NULL, NULL);
	if (!name)
		name = lead_of(r, q, p, ld);
	struct brg_error e;
	brg_error_clear(&e);
	out->has_compressor = name && member(r, name, q->task_type, &out->compressor, &e) == BRG_OK;
}

static const struct preset *find_preset(const struct config *c, const char *name)
{
	for (size_t i = 0; c && i < c->orch.n_presets; i++)
		if (strcmp(c->orch.presets[i].name, name) == 0)
			return &c->orch.presets[i];
	return NULL;
}

enum brg_err route_plan(struct router *r, const struct plan_request *q, struct route_plan *out,
                        struct brg_error *err)
{
	/* Not a memset of the whole plan (~14 KB, on every request): each
	 * member is written before a count or flag says it is there, and a
	 * plan is used only when this returns BRG_OK. */
	out->mode[0] = out->preset[0] = '\0';
	out->n_members = out->n_alternates = out->n_stages = 0;
	out->has_judge = out->has_compressor = false;
	const struct config *c = router_config(r);
	const char *pname = q->preset ? q->preset : c ? c->orch.preset : NULL;
	const struct preset *ps = NULL;
	if (pname) {
		ps = find_preset(c, pname);
		if (!ps || !ps->is_usable) {
			brg_fail(err, BRG_E_BAD_REQUEST,
			         ps ? "preset '%s' names models that are not configured: %s"
			            : "unknown preset '%s'%s",
			         pname, ps ? ps->missing : " (config/presets.yaml lists them)");
			brg_error_detail_str(err, "preset", pname);
			return BRG_E_BAD_REQUEST;
		}
		str_copy(out->preset, sizeof out->preset, ps->name);
	}
	const char *mode = q->mode             ? q->mode
	                   : ps                ? ps->mode
	                   : c && c->orch.mode ? c->orch.mode
	                                       : "single";
	str_copy(out->mode, sizeof out->mode, mode);
	struct pool p = {.n = 0};
	for (size_t i = 0; ps && i < ps->n_members && p.n < POOL_MAX; i++)
		p.names[p.n++] = ps->members[i].model;
	for (size_t i = 0; !ps && c && i < c->orch.n_pool && p.n < POOL_MAX; i++)
		p.names[p.n++] = c->orch.pool[i];
	struct lead ld = {.is_known = false};
	enum brg_err rc = ps && strcmp(ps->mode, mode) == 0
	                      ? from_preset(r, ps, q->task_type, out, err)
	                      : generic(r, q, &p, &ld, out, err);
	if (rc == BRG_OK)
		compressor(r, q, &p, &ld, out);
	return rc;
}
