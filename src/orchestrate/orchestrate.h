/*
 * orchestrate.h — runs a request in its orchestration mode (spec:
 * Orchestration Modes).  This build runs "single"; the multi-model modes
 * are parsed and validated so clients get a clear, stable error until they
 * land — never a fake answer.
 */
#ifndef BRG_ORCHESTRATE_ORCHESTRATE_H
#define BRG_ORCHESTRATE_ORCHESTRATE_H

#include "core/err.h"
#include "core/gen.h"
#include "provider/fallback.h"
#include "route/route.h"

enum orch_mode { ORCH_SINGLE, ORCH_CRITIQUE, ORCH_DEBATE, ORCH_ENSEMBLE, ORCH_PIPELINE };

/* -1 for an unknown name. */
int orch_mode_parse(const char *s);
const char *orch_mode_name(enum orch_mode m);

struct orch_request {
	enum orch_mode mode;
	const char *model;         /* as the client wrote it */
	const char *task_type;     /* may be NULL */
	struct gen_request gen;    /* gen.model is set for the provider call only */
	struct fallback *fallback; /* NULL: no chain, no breakers */
};

/* What answered, for the response body. */
struct orch_info {
	char model[ROUTE_MODEL_MAX];
};

/*
 * Starts the request; on BRG_OK each of the gen.n_choices sinks gets one
 * on_done (see provider.h).  Errors: BRG_E_NOT_IMPLEMENTED for a multi-model
 * mode, anything route/ or the provider returns.
 */
enum brg_err orchestrate_run(struct router *r, struct orch_request *req, struct sink *sinks,
                             struct orch_info *info, struct brg_error *err);

#endif
