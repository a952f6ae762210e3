/*
 * plan.h — who plays which part in a multi-model request (spec: Model Role
 * Mapping, Orchestration Role Assignments, Configuration Presets).
 *
 * A plan names, for one request, the models of its mode and what each one
 * does: critique's generator and critic, debate's participants and
 * reconciler, ensemble's members and synthesizer, pipeline's stages,
 * self-consistency's one model.  orchestrate/ runs the plan; it never
 * picks a model itself.
 *
 * Where the parts come from:
 *  - a preset (the request's "config", else INFERENCE_CONFIG) whose mode
 *    is the request's: its members' mode roles, as written;
 *  - otherwise the request's model takes the leading part (generator,
 *    first participant or member, validator) and the others come from
 *    the pool — the preset's models when one is in effect, else
 *    INFERENCE_ORCHESTRATION_MODELS (default: every models.yaml model) —
 *    by their roles (primary | fast | coder | thinker | longctx):
 *      critique: critic = a thinker, else any other model;
 *      debate:   participants = the model and every other in the pool;
 *                reconciler = INFERENCE_DEBATE_RECONCILE_MODEL (a role:
 *                the first pool model that has it, the request's model
 *                first; or a model id);
 *      ensemble: members as debate's; synthesizer =
 *                INFERENCE_ENSEMBLE_SYNTHESIS_MODEL the same way, or none;
 *      pipeline: INFERENCE_PIPELINE_STAGES; draft = a fast model, refine =
 *                a coder for code tasks, a thinker otherwise, validate =
 *                the request's model; each falls back to the request's
 *                model, and the plan needs two different models.
 *    "auto" as the model picks the leading model by task_type's role;
 *    with auto-routing on (INFERENCE_AUTO_ROUTE_ENABLED, docs/routing.md)
 *    the configured strategy picks it among the pool's best fits, and a
 *    single-mode plan carries the other candidates, in the strategy's
 *    order, for INFERENCE_AUTO_ROUTE_FALLBACK.
 *
 * Read-only after start-up; any thread.
 */
#ifndef BRG_ROUTE_PLAN_H
#define BRG_ROUTE_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/err.h"
#include "route/route.h"

#define PLAN_MAX_MEMBERS    8
#define PLAN_MAX_STAGES     3
#define PLAN_MAX_ALTERNATES 7

struct plan_member {
	char name[ROUTE_MODEL_MAX]; /* as a client writes it: for models_used */
	struct route_target t;
};

struct route_plan {
	char mode[24];   /* single | critique | debate | ensemble | pipeline | self_consistency */
	char preset[32]; /* "" when no preset is in effect */
	/* critique */
	struct plan_member generator, critic;
	/* debate participants, ensemble members, or the single /
	 * self-consistency model (members[0]) */
	struct plan_member members[PLAN_MAX_MEMBERS];
	size_t n_members;
	/* single mode, model "auto", auto-route fallback on: who answers
	 * instead, in order, when members[0] fails before any text */
	struct plan_member alternates[PLAN_MAX_ALTERNATES];
	size_t n_alternates;
	/* debate's reconciler, ensemble's synthesizer */
	bool has_judge;
	struct plan_member judge;
	/* who compresses text over a budget: a `fast` model, else the lead */
	bool has_compressor;
	struct plan_member compressor;
	/* pipeline, in order */
	struct plan_member stages[PLAN_MAX_STAGES];
	char stage_names[PLAN_MAX_STAGES][16]; /* draft | refine | validate */
	size_t n_stages;
};

struct plan_request {
	const char *mode;      /* NULL: the preset's, else INFERENCE_ORCHESTRATION_MODE */
	const char *model;     /* the request's model, or "auto" */
	const char *task_type; /* may be NULL */
	const char *preset;    /* the request's "config", or NULL for the active one */
};

/* Borrowed; must outlive the router.  NULL: defaults, no presets, and an
 * empty pool (multi-model modes then fail with a clear message). */
void router_set_config(struct router *r, const struct config *cfg);

/*
 * Fills *out for the request.  Plan each request once: with auto-routing's
 * round_robin every plan for "auto" takes the next model.  Errors: BRG_E_BAD_REQUEST (an unknown or
 * unusable preset, or a mode the configured models cannot fill: the
 * message says which part is missing and how to configure it; details
 * "preset" / "orchestration_mode"), BRG_E_MODEL_NOT_FOUND (a named model
 * no provider serves).
 */
enum brg_err route_plan(struct router *r, const struct plan_request *q, struct route_plan *out,
                        struct brg_error *err);

#endif
