/*
 * env.c — the INFERENCE_* environment overrides (spec: Configuration
 * Reference), applied over the YAML file and before command-line flags.
 * Variables are read from an environ-style array, never the process
 * environment, so tests need not touch it.
 *
 * The server variables go through the same field table and rules as the
 * YAML keys (fields.c); the OTEL_* ones, which have no YAML key, through
 * a table of their own.  INFERENCE_MODELS_DIR is resolved against the
 * working directory, not the YAML file's.
 */
#include "config/config_int.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Environment variables that set one server field.  INFERENCE_MODELS_DIR,
 * _PRELOAD_MODELS and _GPU_LAYERS have their own rules in
 * config_apply_env(). */
static const struct {
	const char *var;
	const char *field;
} env_fields[] = {
    {"INFERENCE_HOST", "host"},
    {"INFERENCE_PORT", "port"},
    {"INFERENCE_LOG_LEVEL", "log_level"},
    {"INFERENCE_REQUEST_TIMEOUT", "request_timeout"},
    {"INFERENCE_MAX_BODY_BYTES", "max_body_bytes"},
    {"INFERENCE_API_KEY", "api_key"},
    {"INFERENCE_MEMORY_BUDGET_MB", "memory_budget_mb"},
    {"INFERENCE_MODEL_TTL", "model_ttl"},
    {"INFERENCE_MAX_CONCURRENT_REQUESTS", "max_concurrent_requests"},
    {"INFERENCE_MAX_CONCURRENT_PER_MODEL", "max_concurrent_per_model"},
    {"INFERENCE_QUEUE_SIZE", "queue_size"},
    {"INFERENCE_QUEUE_STRATEGY", "queue_strategy"},
    {"INFERENCE_REJECT_WHEN_FULL", "reject_when_full"},
    {"INFERENCE_PRIORITY_ENABLED", "priority_enabled"},
    {"INFERENCE_PRIORITY_LEVELS", "priority_levels"},
    {"INFERENCE_DEFAULT_PRIORITY", "default_priority"},
    {"INFERENCE_SHUTDOWN_GRACE", "shutdown_grace"},
    {"INFERENCE_AUTO_ROUTE_ENABLED", "auto_route_enabled"},
    {"INFERENCE_AUTO_ROUTE_STRATEGY", "auto_route_strategy"},
    {"INFERENCE_AUTO_ROUTE_FALLBACK", "auto_route_fallback"},
};

/* INFERENCE_PRELOAD_MODELS=a,b: replaces the file's list; "" means none. */
static enum brg_err env_preload(struct config *c, const char *value, struct brg_error *err)
{
	config_strs_free(c->preload, c->n_preload);
	c->preload = NULL;
	c->n_preload = 0;
	size_t n = 1;
	for (const char *p = value; *p; p++)
		n += *p == ',';
	c->preload = calloc(n + 1, sizeof *c->preload);
	char *copy = strdup(value);
	enum brg_err e = c->preload && copy ? BRG_OK : BRG_E_NOMEM;
	char *save = NULL;
	for (char *tok = copy ? config_list_next(copy, &save) : NULL; tok && !e;
	     tok = config_list_next(NULL, &save)) {
		if (!config_find_model(c, tok)) {
			char ids[256];
			config_model_ids(c, ids, sizeof ids);
			e = brg_fail(err, BRG_E_CONFIG,
			             "INFERENCE_PRELOAD_MODELS: '%.64s' names no configured model, "
			             "expected a comma list of %s",
			             tok, ids);
			break;
		}
		bool is_added;
		e = config_preload_add(c, tok, &is_added);
	}
	free(copy);
	if (e == BRG_E_NOMEM)
		brg_fail(err, e, "out of memory");
	return e;
}

/*
 * OTEL_*: tracing (config.h, docs/observability.md).  The spec defaults
 * OTEL_ENABLED to true, but a server that exports to a collector nobody
 * runs only logs failures: tracing is on when an endpoint is set, unless
 * OTEL_ENABLED=false; OTEL_ENABLED=true alone exports to localhost's
 * OTLP/HTTP port.
 */
static enum brg_err env_otel(struct config *c, char *const *envp, struct brg_error *err)
{
	static const struct field fields[] = {
	    {"OTEL_ENABLED", F_BOOL, 0, 0, offsetof(struct config, is_tracing)},
	    {"OTEL_EXPORTER_OTLP_ENDPOINT", F_URL, 0, 0, offsetof(struct config, otel_endpoint)},
	    {"OTEL_SERVICE_NAME", F_STR, 0, 0, offsetof(struct config, otel_service_name)},
	};
	char why[BRG_ERR_MSG_MAX - 64];
	const char *enabled = config_env_get(envp, fields[0].name, true);
	for (size_t i = 0; i < N_OF(fields); i++) {
		const char *v = config_env_get(envp, fields[i].name, true);
		enum brg_err e =
		    v ? config_field_set(&fields[i], c, v, false, false, why, sizeof why) : BRG_OK;
		if (e)
			return brg_fail(err, e, "%s: %s", fields[i].name,
			                e == BRG_E_NOMEM ? "out of memory" : why);
	}
	if (!enabled)
		c->is_tracing = c->otel_endpoint != NULL;
	else if (c->is_tracing && !c->otel_endpoint &&
	         config_str_set(&c->otel_endpoint, "http://localhost:4318"))
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	return BRG_OK;
}

/*
 * An empty value counts as unset (a compose file's ${VAR} of an unset
 * variable), except for INFERENCE_PRELOAD_MODELS, where "" means "preload
 * nothing".  An empty INFERENCE_API_KEY therefore never turns
 * authentication off.
 */
enum brg_err config_apply_env(struct config *c, char *const *envp, struct brg_error *err)
{
	char why[BRG_ERR_MSG_MAX - 64];
	enum brg_err e;
	for (size_t i = 0; i < N_OF(env_fields); i++) {
		const char *v = config_env_get(envp, env_fields[i].var, false);
		if (!v || !*v)
			continue;
		const struct field *f = config_field_find(
		    config_server_fields, config_n_server_fields, env_fields[i].field);
		e = config_field_set(f, c, v, false, false, why, sizeof why);
		if (e)
			return brg_fail(err, e, "%s: %s", env_fields[i].var,
			                e == BRG_E_NOMEM ? "out of memory" : why);
	}
	const char *v = config_env_get(envp, "INFERENCE_MODELS_DIR", false);
	if (v && *v) {
		char *dir;
		if (config_path_resolve(NULL, v, &dir))
			return brg_fail(err, BRG_E_NOMEM, "out of memory");
		free(c->models_dir);
		c->models_dir = dir;
	}
	v = config_env_get(envp, "INFERENCE_API_KEYS_FILE", false);
	if (v && *v) {
		char *path;
		if (config_path_resolve(NULL, v, &path))
			return brg_fail(err, BRG_E_NOMEM, "out of memory");
		free(c->api_keys_file);
		c->api_keys_file = path;
	}
	v = config_env_get(envp, "INFERENCE_GPU_LAYERS", false);
	if (v && *v) {
		const struct field *f =
		    config_field_find(config_model_fields, config_n_model_fields, "gpu_layers");
		struct model_config probe = {0};
		if (config_field_set(f, &probe, v, false, false, why, sizeof why))
			return brg_fail(err, BRG_E_CONFIG, "INFERENCE_GPU_LAYERS: %s", why);
		for (size_t i = 0; i < c->n_models; i++)
			c->models[i].gpu_layers = probe.gpu_layers;
	}
	v = config_env_get(envp, "INFERENCE_PRELOAD_MODELS", false);
	if (v && (e = env_preload(c, v, err)))
		return e;
	return env_otel(c, envp, err);
}
