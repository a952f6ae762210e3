/*
 * config.c — config/'s public API: reads config/models.yaml and the
 * INFERENCE_* overrides into a struct config; see config.h for the file
 * format and precedence, and config_int.h for which file does what.
 * Here: the defaults, reading the file, path resolution, the one loading
 * path, freeing, and the helpers the other files share.
 *
 * Paths: a relative models_dir (including the default "models") is resolved
 * against the YAML file's directory, INFERENCE_MODELS_DIR against the
 * working directory, both made absolute (and canonical when the directory
 * exists), so that messages show real paths and a later chdir changes
 * nothing.  A model's path is its 'file' when absolute, else models_dir/file.
 */
#include "config/config_int.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

/* A config file larger than this is surely a mistake (a model, a log). */
#define CONFIG_MAX_FILE_BYTES (16u << 20)

/* ---- shared helpers --------------------------------------------------- */

void config_strs_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

bool config_names_has(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

enum brg_err config_names_push(char ***v, size_t *n, const char *s, struct brg_error *err)
{
	char **nv = realloc(*v, (*n + 2) * sizeof *nv);
	if (nv)
		*v = nv;
	if (!nv || !(nv[*n] = strdup(s)))
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	nv[++*n] = NULL;
	return BRG_OK;
}

enum brg_err config_preload_add(struct config *c, const char *id, bool *is_added)
{
	*is_added = false;
	for (size_t i = 0; i < c->n_preload; i++)
		if (strcmp(c->preload[i], id) == 0)
			return BRG_OK;
	char *s = strdup(id);
	if (!s)
		return BRG_E_NOMEM;
	c->preload[c->n_preload++] = s;
	*is_added = true;
	return BRG_OK;
}

void config_model_ids(const struct config *c, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	if (c->n_models == 0)
		snprintf(buf, len, "the ids under 'models' (there are none)");
	for (size_t i = 0; i < c->n_models && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", c->models[i].id);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

const char *config_env_get(char *const *envp, const char *name, bool is_empty_unset)
{
	size_t n = strlen(name);
	for (char *const *e = envp; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return is_empty_unset && !(*e)[n + 1] ? NULL : *e + n + 1;
	return NULL;
}

/* ---- paths ------------------------------------------------------------ */

/* The directory part of 'path' ("config" for "config/models.yaml"); NULL
 * when it has none (the working directory). */
static char *dir_of(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;
	if (!slash)
		return NULL;
	return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/*
 * 'rel' made absolute against directory 'base' (NULL: the working
 * directory; relative: against the working directory too), canonical when
 * it exists.  Errors: BRG_E_NOMEM.
 */
enum brg_err config_path_resolve(const char *base, const char *rel, char **out)
{
	char cwd[PATH_MAX];
	char *joined = NULL;
	if (rel[0] == '/') {
		joined = strdup(rel);
	} else {
		bool has_cwd = (!base || base[0] != '/') && getcwd(cwd, sizeof cwd);
		const char *parts[3] = {has_cwd ? cwd : NULL, base, rel};
		size_t len = 1;
		for (int i = 0; i < 3; i++)
			len += parts[i] ? strlen(parts[i]) + 1 : 0;
		joined = malloc(len);
		if (joined) {
			joined[0] = '\0';
			for (int i = 0; i < 3; i++) {
				if (!parts[i])
					continue;
				if (joined[0] && joined[strlen(joined) - 1] != '/')
					strcat(joined, "/");
				strcat(joined, parts[i]);
			}
		}
	}
	if (!joined)
		return BRG_E_NOMEM;
	char *canon = realpath(joined, NULL);
	if (canon) {
		free(joined);
		joined = canon;
	}
	*out = joined;
	return BRG_OK;
}

/* Sets each model's path from models_dir and its file. */
static enum brg_err resolve_model_paths(struct config *c)
{
	for (size_t i = 0; i < c->n_models; i++) {
		struct model_config *m = &c->models[i];
		char *p;
		if (m->file[0] == '/') {
			p = strdup(m->file);
		} else if (asprintf(&p, "%s/%s", c->models_dir, m->file) < 0) {
			p = NULL;
		}
		if (!p)
			return BRG_E_NOMEM;
		free(m->path);
		m->path = p;
	}
	return BRG_OK;
}

/* ---- loading ---------------------------------------------------------- */

static enum brg_err config_defaults(struct config **out)
{
	struct config *c = calloc(1, sizeof *c);
	if (!c)
		return BRG_E_NOMEM;
	c->host = strdup("127.0.0.1");
	c->port = 8085;
	c->models_dir = strdup("models");
	c->otel_service_name = strdup("inference-service"); /* the spec's default */
	c->log_level = LOG_INFO;
	c->max_body_bytes = 4u << 20;
	c->request_timeout_s = 120;
	c->max_concurrent_requests = 10; /* the spec's defaults (docs/admission.md) */
	c->queue_size = 100;
	c->reject_when_full = true;
	c->priority_levels = 3;
	c->default_priority = 2;
	c->shutdown_grace_s = 30;
	c->auto_route_fallback = true; /* the spec's default (docs/routing.md) */
	c->health_interval_s = 60;
	c->health_timeout_s = 5;
	c->breaker_failures = 3;
	c->breaker_cooldown_s = 30;
	*out = c;
	if (!c->host || !c->models_dir || !c->otel_service_name || config_orch_defaults(&c->orch))
		return BRG_E_NOMEM;
	return BRG_OK;
}

/* The admission settings that depend on each other, once the file and
 * the environment have both had their say. */
static enum brg_err check_admission(const struct config *c, struct brg_error *err)
{
	if (c->default_priority <= c->priority_levels)
		return BRG_OK;
	return brg_fail(err, BRG_E_CONFIG,
	                "INFERENCE_DEFAULT_PRIORITY (server.default_priority): %d is above "
	                "INFERENCE_PRIORITY_LEVELS (server.priority_levels) %d, expected one of "
	                "the levels 1..%d",
	                c->default_priority, c->priority_levels, c->priority_levels);
}

/* The one loading path: 'yaml' NULL means no file. */
static enum brg_err load(const char *name, const char *yaml, size_t len, char *const *envp,
                         struct config **out, struct brg_error *err)
{
	struct config *c = NULL;
	char *base = NULL, *dir = NULL;
	enum brg_err e = config_defaults(&c);
	if (e)
		goto nomem;
	if (name && !(c->source = strdup(name)))
		goto nomem;
	if (yaml) {
		if ((e = config_parse_yaml(c, name ? name : "<string>", yaml, len, err)))
			goto fail;
		base = dir_of(name);
		if (name && strchr(name, '/') && !base)
			goto nomem;
	}
	/* The file's (or the default) models_dir is relative to the file. */
	if (config_path_resolve(base, c->models_dir, &dir))
		goto nomem;
	free(c->models_dir);
	c->models_dir = dir;
	/* So is its keys file. */
	if (c->api_keys_file) {
		if (config_path_resolve(base, c->api_keys_file, &dir))
			goto nomem;
		free(c->api_keys_file);
		c->api_keys_file = dir;
	}
	/* So is its presets file. */
	if (c->orch.presets_file) {
		if (config_path_resolve(base, c->orch.presets_file, &dir))
			goto nomem;
		free(c->orch.presets_file);
		c->orch.presets_file = dir;
	}
	if ((e = config_apply_env(c, envp, err)) || (e = config_orch_env(c, envp, err)) ||
	    (e = check_admission(c, err)))
		goto fail;
	if (resolve_model_paths(c))
		goto nomem;
	if ((e = config_orch_finish(c, base, err)))
		goto fail;
	free(base);
	*out = c;
	return BRG_OK;
nomem:
	e = brg_fail(err, BRG_E_NOMEM, "out of memory reading the configuration");
fail:
	free(base);
	config_free(c);
	*out = NULL;
	return e;
}

enum brg_err config_read_file(const char *path, char **out, size_t *out_len, struct brg_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return brg_fail(err, BRG_E_CONFIG, "cannot read %s: %s", path, strerror(errno));
	size_t cap = 4096, len = 0;
	char *data = malloc(cap);
	enum brg_err e = BRG_OK;
	while (data) {
		if (len + 1 >= cap) {
			char *bigger = cap < CONFIG_MAX_FILE_BYTES ? realloc(data, cap * 2) : NULL;
			if (!bigger) {
				e = cap < CONFIG_MAX_FILE_BYTES
				        ? brg_fail(err, BRG_E_NOMEM, "out of memory")
				        : brg_fail(err, BRG_E_CONFIG,
				                   "cannot read %s: larger than %u bytes", path,
				                   CONFIG_MAX_FILE_BYTES);
				break;
			}
			data = bigger;
			cap *= 2;
		}
		size_t n = fread(data + len, 1, cap - 1 - len, f);
		len += n;
		if (n == 0) {
			if (ferror(f))
				e = brg_fail(err, BRG_E_CONFIG, "cannot read %s: %s", path,
				             strerror(errno));
			break;
		}
	}
	fclose(f);
	if (!data)
		e = brg_fail(err, BRG_E_NOMEM, "out of memory");
	if (e) {
		free(data);
		return e;
	}
	data[len] = '\0';
	*out = data;
	*out_len = len;
	return BRG_OK;
}

enum brg_err config_load(const char *path, char *const *envp, struct config **out,
                         struct brg_error *err)
{
	*out = NULL;
	if (!path)
		return load(NULL, NULL, 0, envp, out, err);
	char *yaml = NULL;
	size_t len = 0;
	enum brg_err e = config_read_file(path, &yaml, &len, err);
	if (e)
		return e;
	e = load(path, yaml, len, envp, out, err);
	free(yaml);
	return e;
}

enum brg_err config_load_string(const char *yaml, size_t len, const char *name, char *const *envp,
                                struct config **out, struct brg_error *err)
{
	*out = NULL;
	return load(name, yaml ? yaml : "", yaml ? len : 0, envp, out, err);
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_models; i++) {
		struct model_config *m = &c->models[i];
		free(m->id);
		free(m->file);
		free(m->path);
		config_strs_free(m->roles, m->n_roles);
		free(m->chat_template);
	}
	free(c->models);
	config_providers_free(c);
	config_orch_free(&c->orch);
	config_strs_free(c->preload, c->n_preload);
	free(c->source);
	free(c->host);
	free(c->models_dir);
	free(c->api_key);
	free(c->api_keys_file);
	free(c->otel_endpoint);
	free(c->otel_service_name);
	free(c);
}

const struct model_config *config_find_model(const struct config *c, const char *id)
{
	for (size_t i = 0; c && id && i < c->n_models; i++)
		if (c->models[i].id && strcmp(c->models[i].id, id) == 0)
			return &c->models[i];
	return NULL;
}
