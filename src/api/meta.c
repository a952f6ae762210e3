/*
 * meta.c — the response metadata of an orchestrated answer (spec: Chat
 * Completion Response → "orchestration"; Response Metadata for Upstream
 * Capture → "inference_metadata").  Every chat and completion response
 * carries both, single mode included, so a gateway captures one shape.
 */
#include "api/api_int.h"

/* A number in [0,1] rounded to 4 places, or null when unknown (< 0). */
static void share(struct jw *w, double v)
{
	if (!(v >= 0))
		jw_null(w);
	else
		jw_real(w, (double)(long long)(v * 10000 + 0.5) / 10000);
}

static void models_used(struct jw *w, const struct orch_info *in)
{
	jw_open(w, '[');
	for (size_t i = 0; i < in->n_models_used; i++)
		jw_str(w, in->models_used[i]);
	jw_close(w, ']');
}

static void orchestration(struct jw *w, const struct orch_info *in)
{
	jw_open(w, '{');
	jw_key(w, "mode");
	jw_str(w, orch_mode_name(in->mode));
	jw_key(w, "models_used");
	models_used(w, in);
	jw_key(w, "rounds");
	jw_int(w, in->rounds);
	jw_key(w, "confidence");
	share(w, in->confidence);
	if (in->agreement >= 0) {
		jw_key(w, "agreement");
		share(w, in->agreement);
	}
	if (in->is_partial) {
		jw_key(w, "partial");
		jw_bool(w, true);
		jw_key(w, "completed_steps");
		jw_int(w, in->completed_steps);
		jw_key(w, "total_steps");
		jw_int(w, in->total_steps);
		jw_key(w, "error");
		jw_str(w, in->error);
	}
	jw_close(w, '}');
}

static void inference_metadata(struct jw *w, const struct orch_info *in)
{
	jw_open(w, '{');
	jw_key(w, "config");
	jw_str(w, in->config[0] ? in->config : NULL);
	jw_key(w, "orchestration_mode");
	jw_str(w, orch_mode_name(in->mode));
	jw_key(w, "models_used");
	models_used(w, in);
	jw_key(w, "handoff_steps");
	jw_int(w, in->handoff_steps);
	jw_key(w, "compression_applied");
	jw_bool(w, in->compression_applied);
	jw_key(w, "context_utilization");
	share(w, in->context_utilization);
	jw_close(w, '}');
}

void api_write_metadata(struct jw *w, const struct orch_info *in)
{
	jw_key(w, "orchestration");
	orchestration(w, in);
	jw_key(w, "inference_metadata");
	inference_metadata(w, in);
}
