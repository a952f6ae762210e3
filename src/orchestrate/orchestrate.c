/*
 * orchestrate.c — see orchestrate.h.
 */
#include "orchestrate/orchestrate.h"

#include <stdio.h>
#include <string.h>

static const char *mode_names[] = {"single", "critique", "debate", "ensemble", "pipeline"};

int orch_mode_parse(const char *s)
{
	for (size_t i = 0; s && i < sizeof mode_names / sizeof mode_names[0]; i++)
		if (strcmp(s, mode_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *orch_mode_name(enum orch_mode m)
{
	return mode_names[m];
}

enum brg_err orchestrate_run(struct router *r, struct orch_request *req, struct sink *sinks,
                             struct orch_info *info, struct brg_error *err)
{
	if (req->mode != ORCH_SINGLE) {
		brg_fail(err, BRG_E_NOT_IMPLEMENTED,
		         "orchestration_mode '%s' is not available yet in this build; use 'single'",
		         orch_mode_name(req->mode));
		brg_error_detail_str(err, "orchestration_mode", orch_mode_name(req->mode));
		return BRG_E_NOT_IMPLEMENTED;
	}
	struct route_target t;
	enum brg_err rc = route_resolve(r, req->model, req->task_type, &t, err);
	if (rc)
		return rc;
	snprintf(info->model, sizeof info->model, "%s", req->model);
	if (strcmp(req->model, "auto") == 0)
		snprintf(info->model, sizeof info->model, "%s", t.model);
	req->gen.model = t.model;
	rc = fallback_generate(req->fallback, t.p, &req->gen, sinks, err);
	req->gen.model = NULL; /* 't' ends here; providers copied what they keep */
	return rc;
}
