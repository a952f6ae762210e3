/*
 * orchestrate.h — runs a request in its orchestration mode (spec:
 * Orchestration Modes; docs/orchestration.md says which mode suits which
 * task).
 *
 *   single            one model answers (the plain path: no thread, the
 *                     provider streams straight to the client)
 *   critique          generator answers; critic scores and criticises;
 *                     generator revises — up to critique_max_rounds,
 *                     stopping once the critic's score reaches the threshold
 *   debate            participants answer in parallel; agreement measured;
 *                     later rounds show each the others' answers, until they
 *                     agree or debate_max_rounds; the reconciler answers
 *   ensemble          members answer in parallel; a reducer votes; below
 *                     ensemble_min_agreement the request fails (or, when so
 *                     configured, returns the best answer flagged); the
 *                     synthesizer, if any, writes the final answer
 *   pipeline          draft → refine → validate, each stage on its model;
 *                     a failing stage returns the best finished stage's
 *                     text with finish_reason "partial" (saga)
 *   self_consistency  one model sampled n times in one batched call, the
 *                     answers reduced by vote
 *
 * Who plays which part comes from route/plan.h.  The orchestrator sees
 * only the provider interface (through provider/fallback.h), so local and
 * remote members mix freely; parallel steps run concurrently on their own
 * schedulers or providers.
 *
 * A multi-model mode runs on a thread of its own, which waits for each
 * step and delivers the final answer to the caller's sink like any
 * producer: on_piece with the text, then on_done.  The caller's cancel
 * flag (gen.cancel) stops it between and during steps.
 */
#ifndef BRG_ORCHESTRATE_ORCHESTRATE_H
#define BRG_ORCHESTRATE_ORCHESTRATE_H

#include <stdbool.h>

#include "config/config.h"
#include "core/err.h"
#include "core/gen.h"
#include "provider/fallback.h"
#include "route/plan.h"
#include "route/route.h"

enum orch_mode {
	ORCH_SINGLE,
	ORCH_CRITIQUE,
	ORCH_DEBATE,
	ORCH_ENSEMBLE,
	ORCH_PIPELINE,
	ORCH_SELF_CONSISTENCY,
};

/* -1 for an unknown name. */
int orch_mode_parse(const char *s);
const char *orch_mode_name(enum orch_mode m);

#define ORCH_MAX_USED 12

/* One finished step, for the client that asked to watch (a named SSE
 * event) and for logs.  Strings live for the call only. */
struct orch_step_event {
	int index;        /* 1, 2, ... in the order steps finished */
	int round;        /* critique/debate round, else 1 */
	const char *name; /* generate | critique | revise | answer | reconcile | synthesize |
	                   * draft | refine | validate | sample */
	const char *role; /* generator | critic | participant | reconciler | member |
	                   * synthesizer | drafter | refiner | validator | model */
	const char *model;
	const char *text;  /* what the step produced ("" when it failed) */
	const char *error; /* NULL, or why the step failed */
	double score;      /* critique: the critic's score in [0,1]; else -1 */
	long long elapsed_ms;
};

typedef void (*orch_step_fn)(void *ud, const struct orch_step_event *ev);

struct orch_request {
	const char *id;            /* the response's id, for the handoff state and logs */
	const char *mode;          /* NULL: the preset's or the configured default */
	const char *model;         /* as the client wrote it */
	const char *task_type;     /* may be NULL */
	const char *preset;        /* the request's "config", or NULL */
	struct gen_request gen;    /* gen.model is set for the provider call only */
	struct fallback *fallback; /* NULL: no chain, no breakers */
	orch_step_fn on_step;      /* NULL: nobody watches */
	void *step_ud;
};

/*
 * What answered and how, for the response body (spec: "orchestration" and
 * "inference_metadata").  Filled before the final on_done; the caller
 * reads it once every choice is done.
 */
struct orch_info {
	char model[ROUTE_MODEL_MAX]; /* the model that wrote the final answer */
	enum orch_mode mode;
	char config[32]; /* the preset, or "" */
	char models_used[ORCH_MAX_USED][ROUTE_MODEL_MAX];
	size_t n_models_used;
	int rounds;
	double confidence; /* [0,1]; < 0: unknown (docs/orchestration.md) */
	double agreement;  /* [0,1] for debate/ensemble/self-consistency; < 0: not measured */
	int handoff_steps; /* steps whose output went on to another step */
	int total_steps;   /* steps run */
	bool is_partial;   /* pipeline saga: the answer is an earlier stage's */
	int completed_steps;
	char error[BRG_ERR_MSG_MAX + 160]; /* with is_partial: why the run stopped */
	bool compression_applied;
	double context_utilization; /* the largest prompt's share of its model's context; < 0
	                               unknown */
};

struct orchestrator;

/* Settings from cfg->orch (borrowed; must outlive it).  NULL on
 * out-of-memory or settings that name an unknown reducer (BRG_E_CONFIG). */
struct orchestrator *orchestrator_new(struct router *r, const struct config *cfg,
                                      struct brg_error *err);
/* Waits for running multi-model requests to end (they are cancelled by
 * their clients' flags or finish); NULL is a no-op. */
void orchestrator_free(struct orchestrator *o);

/*
 * Starts the request as 'plan' says (borrowed; route_plan() of the
 * request's mode, model, task_type and preset: the caller plans once and
 * admits by the same plan); NULL: planned here.  On BRG_OK each of the
 * gen.n_choices sinks gets one on_done (see provider.h).  Errors (nothing
 * started): BRG_E_BAD_REQUEST (a mode the configuration cannot fill, n > 1
 * with a multi-model mode), BRG_E_MODEL_NOT_FOUND, BRG_E_RESOURCE (no
 * thread), anything route/ or the provider returns for single.
 */
enum brg_err orchestrate_run(struct orchestrator *o, struct orch_request *req,
                             const struct route_plan *plan, struct sink *sinks,
                             struct orch_info *info, struct brg_error *err);

#endif
