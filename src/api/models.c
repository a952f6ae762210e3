/*
 * models.c — /v1/models (list, get, load, unload) and the health checks
 * (spec: API Contract → Models List Response; Health Checks).
 *
 * Model objects carry both OpenAI's fields (id, object, created, owned_by)
 * and the spec's (status, memory_mb, context_length, roles).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"
#include "provider/fallback.h"

static json_t *model_json(const struct model_info *m)
{
	json_t *roles = json_array();
	for (size_t i = 0; i < m->n_roles; i++)
		json_array_append_new(roles, json_string(m->roles[i]));
	json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:I, s:i, s:o, s:i, s:i}", "id", m->id,
	                      "object", "model", "created", (json_int_t)m->created, "owned_by",
	                      m->owned_by, "status", m->status, "memory_mb",
	                      (json_int_t)m->memory_mb, "context_length", m->context_length,
	                      "roles", roles, "slots", m->n_slots, "busy_slots", m->n_busy_slots);
	if (o && m->error)
		json_object_set_new(o, "error", json_string(m->error));
	return o;
}

static void collect(void *ud, const struct model_info *m)
{
	json_t *o = model_json(m);
	if (o)
		json_array_append_new(ud, o);
}

void api_models_list(void *ud, struct http_exchange *x)
{
	struct api *a = ud;
	json_t *data = json_array();
	route_each_model(a->router, collect, data);
	json_t *body = json_pack("{s:s, s:o, s:s?, s:s}", "object", "list", "data", data, "config",
	                         a->opts.config_name, "orchestration_mode", "single");
	api_reply_json(x, 200, body);
}

static void keep_one(void *ud, const struct model_info *m)
{
	json_t **out = ud;
	*out = model_json(m);
}

static void reply_model(struct api *a, struct http_exchange *x, const char *id)
{
	json_t *o = NULL;
	if (route_model(a->router, id, keep_one, &o) && o) {
		api_reply_json(x, 200, o);
		return;
	}
	struct brg_error e;
	brg_error_clear(&e);
	brg_fail(&e, BRG_E_MODEL_NOT_FOUND, "model '%s' not found; GET /v1/models lists them", id);
	brg_error_detail_str(&e, "model", id);
	api_reply_error(x, &e);
}

void api_models_get(void *ud, struct http_exchange *x)
{
	reply_model(ud, x, http_param(x));
}

typedef enum brg_err (*model_action_fn)(struct router *r, const char *name, struct brg_error *err);

/* Runs a load or unload, then answers with the model's object. */
static void model_action(struct api *a, struct http_exchange *x, model_action_fn fn)
{
	struct brg_error e;
	brg_error_clear(&e);
	if (fn(a->router, http_param(x), &e)) {
		api_reply_error(x, &e);
		return;
	}
	reply_model(a, x, http_param(x));
}

/* Load blocks until the model is ready. */
void api_models_load(void *ud, struct http_exchange *x)
{
	model_action(ud, x, route_load);
}

/* Unload waits for the model's in-flight requests to finish first. */
void api_models_unload(void *ud, struct http_exchange *x)
{
	model_action(ud, x, route_unload);
}

void api_health(void *ud, struct http_exchange *x)
{
	(void)ud;
	api_reply_json(x, 200, json_pack("{s:s}", "status", "ok"));
}

static void collect_loaded(void *ud, const struct model_info *m)
{
	if (strcmp(m->status, "loaded") == 0)
		json_array_append_new(ud, json_string(m->id));
}

/* Ready: preloading has finished and at least one model is loaded. */
void api_health_ready(void *ud, struct http_exchange *x)
{
	struct api *a = ud;
	size_t n_loaded, n_done, n_total;
	route_readiness(a->router, &n_loaded, &n_done, &n_total);
	if (n_done < n_total || n_loaded == 0) {
		char progress[64];
		snprintf(progress, sizeof progress, "%zu/%zu", n_done, n_total);
		const char *reason = n_done < n_total ? "Models still loading" : "No models loaded";
		api_reply_json(x, 503,
		               json_pack("{s:s, s:s, s:s}", "status", "not_ready", "reason", reason,
		                         "progress", progress));
		return;
	}
	json_t *loaded = json_array();
	route_each_model(a->router, collect_loaded, loaded);
	api_reply_json(x, 200,
	               json_pack("{s:s, s:s?, s:o, s:s}", "status", "ready", "config",
	                         a->opts.config_name, "loaded_models", loaded, "orchestration_mode",
	                         "single"));
}

static void collect_id(void *ud, const struct model_info *m)
{
	json_array_append_new(ud, json_string(m->id));
}

struct health_walk {
	json_t *providers;
	size_t n, n_healthy;
};

static void health_one(void *ud, const struct provider_health *h)
{
	struct health_walk *w = ud;
	json_t *models = json_array();
	h->provider.ops->each_model(h->provider.impl, collect_id, models);
	json_t *o = json_pack(
	    "{s:s, s:s, s:i, s:o, s:o}", "name", h->name, "state", h->state, "consecutive_failures",
	    h->consecutive_failures, "models", models, "chain_position",
	    h->chain_position >= 0 ? json_integer(h->chain_position) : json_null());
	if (!o)
		return;
	json_object_set_new(o, "latency_ms",
	                    h->latency_ms >= 0 ? json_integer(h->latency_ms) : json_null());
	json_object_set_new(o, "checked_at",
	                    h->checked_at ? json_integer(h->checked_at) : json_null());
	json_t *e = h->last_error ? json_string(h->last_error) : NULL;
	json_object_set_new(o, "last_error", e ? e : json_null());
	json_array_append_new(w->providers, o);
	w->n++;
	w->n_healthy += strcmp(h->state, "healthy") == 0;
}

/* GET /v1/health/inference (spec: switchable backends): every provider's
 * health, latency and models, and admission's queue and limits.  Always
 * 200: this is a report, and /health is the liveness check. */
void api_health_inference(void *ud, struct http_exchange *x)
{
	struct api *a = ud;
	struct health_walk w = {.providers = json_array()};
	if (a->fallback)
		fallback_each_health(a->fallback, health_one, &w);
	const char *status = w.n_healthy == w.n ? "healthy"
	                     : w.n_healthy      ? "degraded"
	                                        : "unhealthy";
	json_t *body = json_pack("{s:s, s:o}", "status", status, "providers", w.providers);
	json_t *adm = api_admission_json(a); /* queue depth and limits (docs/admission.md) */
	if (body && adm)
		json_object_set_new(body, "admission", adm);
	else
		json_decref(adm);
	if (body && a->opts.auto_route_strategy) /* how "auto" chooses (docs/routing.md) */
		json_object_set_new(body, "auto_route",
		                    json_pack("{s:b, s:s, s:b}", "enabled", a->opts.is_auto_route,
		                              "strategy", a->opts.auto_route_strategy, "fallback",
		                              a->opts.is_auto_route_fallback));
	api_reply_json(x, 200, body);
}
