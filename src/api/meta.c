/*
 * meta.c — the response metadata of an orchestrated answer (spec: Chat
 * Completion Response → "orchestration"; Response Metadata for Upstream
 * Capture → "inference_metadata").  Every chat and completion response
 * carries both, single mode included, so a gateway captures one shape.
 */
#include "api/api_int.h"

/* A number in [0,1] rounded to 4 places, or null when unknown (< 0). */
static json_t *share(double v)
{
	if (!(v >= 0))
		return json_null();
	return json_real((double)(long long)(v * 10000 + 0.5) / 10000);
}

static json_t *models_used(const struct orch_info *in)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < in->n_models_used; i++)
		json_array_append_new(a, json_string(in->models_used[i]));
	return a;
}

json_t *api_orchestration_json(const struct orch_info *in)
{
	json_t *o =
	    json_pack("{s:s, s:o, s:i, s:o}", "mode", orch_mode_name(in->mode), "models_used",
	              models_used(in), "rounds", in->rounds, "confidence", share(in->confidence));
	if (!o)
		return NULL;
	if (in->agreement >= 0)
		json_object_set_new(o, "agreement", share(in->agreement));
	if (in->is_partial) {
		json_object_set_new(o, "partial", json_true());
		json_object_set_new(o, "completed_steps", json_integer(in->completed_steps));
		json_object_set_new(o, "total_steps", json_integer(in->total_steps));
		json_object_set_new(o, "error", json_string(in->error));
	}
	return o;
}

json_t *api_inference_metadata_json(const struct orch_info *in)
{
	return json_pack("{s:o, s:s, s:o, s:i, s:b, s:o}", "config",
	                 in->config[0] ? json_string(in->config) : json_null(),
	                 "orchestration_mode", orch_mode_name(in->mode), "models_used",
	                 models_used(in), "handoff_steps", in->handoff_steps, "compression_applied",
	                 in->compression_applied, "context_utilization",
	                 share(in->context_utilization));
}

void api_add_metadata(json_t *body, const struct orch_info *in)
{
	if (!body)
		return;
	json_object_set_new(body, "orchestration", api_orchestration_json(in));
	json_object_set_new(body, "inference_metadata", api_inference_metadata_json(in));
}
