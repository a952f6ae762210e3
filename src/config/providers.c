/*
 * providers.c — remote backends, the fallback chain, breakers and health
 * checks: config/providers.yaml, then the spec's variables (spec:
 * switchable backends → Configuration Strategy).  Same message style as
 * the models file: "FILE:LINE: key 'KEY': what is wrong".  An API key's
 * value never appears in a message.
 */
#include "config/config_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#define MAX_PROVIDERS 16

struct pload {
	const char *name;
	yaml_document_t *doc;
	struct config *c;
	char *const *envp;
	struct brg_error *err;
};

__attribute__((format(printf, 4, 5))) static enum brg_err
fail_at(struct pload *pl, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
	char why[BRG_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	return brg_fail(pl->err, BRG_E_CONFIG, "%s:%zu: key '%s': %s", pl->name,
	                (size_t)n->start_mark.line + 1, key, why);
}

static const char *env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; envp && envp[i]; i++)
		if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
			return envp[i][n + 1] ? envp[i] + n + 1 : NULL; /* empty = unset */
	return NULL;
}

static const char *text(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static enum brg_err want_int(struct pload *pl, yaml_node_t *v, const char *key, long lo, long hi,
                             int *out)
{
	const char *s = text(v);
	char *end = NULL;
	long x = s ? strtol(s, &end, 10) : 0;
	if (!s || !*s || *end || v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return fail_at(pl, v, key, "expected an integer in %ld..%ld", lo, hi);
	if (x < lo || x > hi)
		return fail_at(pl, v, key, "%ld is out of range, expected an integer in %ld..%ld",
		               x, lo, hi);
	*out = (int)x;
	return BRG_OK;
}

static enum brg_err want_str(struct pload *pl, yaml_node_t *v, const char *key, char **out)
{
	const char *s = text(v);
	if (!s || !*s)
		return fail_at(pl, v, key, "expected a non-empty string");
	free(*out);
	*out = strdup(s);
	return *out ? BRG_OK : brg_fail(pl->err, BRG_E_NOMEM, "out of memory");
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
	for (size_t i = 0; s && i < 4; i++) {
		if (!strcasecmp(s, yes[i]))
			return *out = true, true;
		if (!strcasecmp(s, no[i]))
			return *out = false, true;
	}
	return false;
}

/* Appends a copy of s to (*v, *n). */
static enum brg_err push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof *nv);
	if (!nv)
		return BRG_E_NOMEM;
	*v = nv;
	if (!(nv[*n] = strdup(s)))
		return BRG_E_NOMEM;
	(*n)++;
	return BRG_OK;
}

static enum brg_err want_list(struct pload *pl, yaml_node_t *v, const char *key, char ***out,
                              size_t *n_out)
{
	if (v->type != YAML_SEQUENCE_NODE)
		return fail_at(pl, v, key, "expected a list of names");
	config_strs_free(*out, *n_out);
	*out = NULL;
	*n_out = 0;
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = yaml_document_get_node(pl->doc, *it);
		if (!text(item) || !*text(item))
			return fail_at(pl, item, key, "expected a list of non-empty names");
		if (push(out, n_out, text(item)))
			return brg_fail(pl->err, BRG_E_NOMEM, "out of memory");
	}
	return BRG_OK;
}

/* http(s)://host[...], stored without a trailing slash. */
static bool url_valid(const char *u)
{
	const char *host = !strncmp(u, "http://", 7)    ? u + 7
	                   : !strncmp(u, "https://", 8) ? u + 8
	                                                : NULL;
	return host && *host && *host != '/' && !strpbrk(u, " \t\r\n");
}

static void strip_slash(char *u)
{
	size_t n = strlen(u);
	while (n > 8 && u[n - 1] == '/')
		u[--n] = '\0';
}

static bool name_valid(const char *s)
{
	if (!*s || strlen(s) > 64 || !strcmp(s, "local") || !strcmp(s, "inference"))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '-'))
			return false;
	return true;
}

static struct provider_config *provider_add(struct config *c, const char *name)
{
	if (c->n_providers == MAX_PROVIDERS)
		return NULL;
	struct provider_config *np = realloc(c->providers, (c->n_providers + 1) * sizeof *np);
	if (!np)
		return NULL;
	c->providers = np;
	struct provider_config *p = &np[c->n_providers];
	*p = (struct provider_config){.name = strdup(name),
	                              .kind = PROVIDER_OPENAI,
	                              .connect_timeout_ms = 5000,
	                              .first_byte_timeout_ms = 60000,
	                              .request_timeout_s = 600};
	if (!p->name)
		return NULL;
	c->n_providers++;
	return p;
}

static enum brg_err headers_of(struct pload *pl, yaml_node_t *v, const char *key,
                               struct provider_config *p)
{
	if (v->type != YAML_MAPPING_NODE)
		return fail_at(pl, v, key, "expected a mapping of header names to values");
	for (yaml_node_pair_t *kv = v->data.mapping.pairs.start; kv < v->data.mapping.pairs.top;
	     kv++) {
		yaml_node_t *hk = yaml_document_get_node(pl->doc, kv->key);
		yaml_node_t *hv = yaml_document_get_node(pl->doc, kv->value);
		if (!text(hk) || !*text(hk) || !text(hv) || strpbrk(text(hv), "\r\n") ||
		    strpbrk(text(hk), ": \r\n"))
			return fail_at(pl, hk, key,
			               "expected header names mapped to one-line values");
		char line[1024];
		snprintf(line, sizeof line, "%s: %s", text(hk), text(hv));
		if (push(&p->headers, &p->n_headers, line))
			return brg_fail(pl->err, BRG_E_NOMEM, "out of memory");
	}
	return BRG_OK;
}

/* One key of a provider's mapping. */
static enum brg_err provider_key(struct pload *pl, struct provider_config *p, const char *k,
                                 yaml_node_t *v, const char *path, const char **key_env)
{
	if (!strcmp(k, "kind")) {
		const char *s = text(v);
		if (!s || (strcmp(s, "openai") && strcmp(s, "ollama")))
			return fail_at(pl, v, path, "expected openai or ollama");
		p->kind = strcmp(s, "ollama") ? PROVIDER_OPENAI : PROVIDER_OLLAMA;
		return BRG_OK;
	}
	if (!strcmp(k, "base_url")) {
		if (!text(v) || !url_valid(text(v)))
			return fail_at(pl, v, path,
			               "expected an http:// or https:// URL with a host");
		return want_str(pl, v, path, &p->base_url);
	}
	if (!strcmp(k, "api_key"))
		return want_str(pl, v, path, &p->api_key);
	if (!strcmp(k, "api_key_env")) {
		if (!text(v) || !*text(v))
			return fail_at(pl, v, path, "expected the name of an environment variable");
		*key_env = text(v);
		return BRG_OK;
	}
	if (!strcmp(k, "headers"))
		return headers_of(pl, v, path, p);
	if (!strcmp(k, "models"))
		return want_list(pl, v, path, &p->models, &p->n_models);
	if (!strcmp(k, "connect_timeout_ms"))
		return want_int(pl, v, path, 1, 3600000, &p->connect_timeout_ms);
	if (!strcmp(k, "first_byte_timeout_ms"))
		return want_int(pl, v, path, 1, 3600000, &p->first_byte_timeout_ms);
	if (!strcmp(k, "request_timeout"))
		return want_int(pl, v, path, 1, 86400, &p->request_timeout_s);
	return fail_at(
	    pl, v, path,
	    "unknown key, expected one of kind, base_url, api_key, api_key_env, headers, "
	    "models, connect_timeout_ms, first_byte_timeout_ms, request_timeout");
}

static enum brg_err parse_provider(struct pload *pl, yaml_node_t *kn, yaml_node_t *v)
{
	const char *name = text(kn);
	char path[256];
	if (!name || !name_valid(name))
		return fail_at(pl, kn, name ? name : "providers",
		               "a provider name is [a-z0-9_-]+ and not 'local' or 'inference'");
	if (config_find_provider(pl->c, name))
		return fail_at(pl, kn, name, "provider '%s' is defined twice", name);
	if (v->type != YAML_MAPPING_NODE)
		return fail_at(pl, v, name, "expected a mapping with at least kind and base_url");
	struct provider_config *p = provider_add(pl->c, name);
	if (!p)
		return fail_at(pl, kn, name, "too many providers (at most %d)", MAX_PROVIDERS);
	p->line = (int)kn->start_mark.line + 1;
	const char *key_env = NULL;
	for (yaml_node_pair_t *kv = v->data.mapping.pairs.start; kv < v->data.mapping.pairs.top;
	     kv++) {
		yaml_node_t *k = yaml_document_get_node(pl->doc, kv->key);
		yaml_node_t *val = yaml_document_get_node(pl->doc, kv->value);
		snprintf(path, sizeof path, "providers.%s.%s", name, text(k) ? text(k) : "?");
		enum brg_err rc = provider_key(pl, p, text(k) ? text(k) : "", val, path, &key_env);
		if (rc)
			return rc;
	}
	snprintf(path, sizeof path, "providers.%s", name);
	if (!p->base_url)
		return fail_at(pl, kn, path, "base_url is required");
	strip_slash(p->base_url);
	if (key_env && p->api_key)
		return fail_at(pl, kn, path, "give api_key or api_key_env, not both");
	if (key_env) {
		const char *val = env_get(pl->envp, key_env);
		if (!val)
			return fail_at(pl, kn, path, "api_key_env '%s' is not set", key_env);
		p->api_key = strdup(val);
	}
	return BRG_OK;
}

/* fallback / health / breaker: small mappings of scalars. */
static enum brg_err parse_section(struct pload *pl, const char *section, yaml_node_t *v)
{
	if (v->type != YAML_MAPPING_NODE)
		return fail_at(pl, v, section, "expected a mapping");
	struct config *c = pl->c;
	for (yaml_node_pair_t *kv = v->data.mapping.pairs.start; kv < v->data.mapping.pairs.top;
	     kv++) {
		yaml_node_t *kn = yaml_document_get_node(pl->doc, kv->key);
		yaml_node_t *val = yaml_document_get_node(pl->doc, kv->value);
		const char *k = text(kn) ? text(kn) : "?";
		char path[128];
		snprintf(path, sizeof path, "%s.%s", section, k);
		enum brg_err rc;
		if (!strcmp(section, "fallback") && !strcmp(k, "enabled"))
			rc = parse_bool(text(val), &c->is_fallback_enabled)
			         ? BRG_OK
			         : fail_at(pl, val, path, "expected true or false");
		else if (!strcmp(section, "fallback") && !strcmp(k, "chain"))
			rc = want_list(pl, val, path, &c->fallback_chain, &c->n_fallback);
		else if (!strcmp(section, "health") && !strcmp(k, "interval"))
			rc = want_int(pl, val, path, 1, 86400, &c->health_interval_s);
		else if (!strcmp(section, "health") && !strcmp(k, "timeout"))
			rc = want_int(pl, val, path, 1, 3600, &c->health_timeout_s);
		else if (!strcmp(section, "breaker") && !strcmp(k, "failures"))
			rc = want_int(pl, val, path, 1, 1000, &c->breaker_failures);
		else if (!strcmp(section, "breaker") && !strcmp(k, "cooldown"))
			rc = want_int(pl, val, path, 1, 86400, &c->breaker_cooldown_s);
		else
			rc = fail_at(pl, kn, path, "unknown key, expected %s",
			             !strcmp(section, "fallback") ? "enabled, chain"
			             : !strcmp(section, "health") ? "interval, timeout"
			                                          : "failures, cooldown");
		if (rc)
			return rc;
	}
	return BRG_OK;
}

static enum brg_err parse_root(struct pload *pl, yaml_node_t *root)
{
	if (!root || (root->type == YAML_SCALAR_NODE && !*text(root)))
		return BRG_OK; /* an empty file */
	if (root->type != YAML_MAPPING_NODE)
		return fail_at(pl, root, "(top)", "expected a mapping");
	for (yaml_node_pair_t *kv = root->data.mapping.pairs.start;
	     kv < root->data.mapping.pairs.top; kv++) {
		yaml_node_t *kn = yaml_document_get_node(pl->doc, kv->key);
		yaml_node_t *v = yaml_document_get_node(pl->doc, kv->value);
		const char *k = text(kn) ? text(kn) : "?";
		enum brg_err rc = BRG_OK;
		if (!strcmp(k, "providers") && v->type == YAML_MAPPING_NODE) {
			for (yaml_node_pair_t *p = v->data.mapping.pairs.start;
			     !rc && p < v->data.mapping.pairs.top; p++)
				rc = parse_provider(pl, yaml_document_get_node(pl->doc, p->key),
				                    yaml_document_get_node(pl->doc, p->value));
		} else if (!strcmp(k, "providers")) {
			rc = fail_at(pl, v, k, "expected a mapping of provider names");
		} else if (!strcmp(k, "fallback") || !strcmp(k, "health") ||
		           !strcmp(k, "breaker")) {
			rc = parse_section(pl, k, v);
		} else {
			rc = fail_at(
			    pl, kn, k,
			    "unknown key, expected one of providers, fallback, health, breaker");
		}
		if (rc)
			return rc;
	}
	return BRG_OK;
}

static enum brg_err read_file(const char *path, char **out, size_t *len, struct brg_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return brg_fail(err, BRG_E_CONFIG, "cannot read %s", path);
	char *b = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n == cap) {
			char *nb = cap < (1u << 24) ? realloc(b, cap = cap ? cap * 2 : 4096) : NULL;
			if (!nb) {
				free(b);
				fclose(f);
				return brg_fail(err, BRG_E_CONFIG, "%s is too large", path);
			}
			b = nb;
		}
		size_t r = fread(b + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	*out = b;
	*len = n;
	return BRG_OK;
}

static enum brg_err load_file(struct config *c, const char *path, char *const *envp,
                              struct brg_error *err)
{
	char *yaml = NULL;
	size_t len = 0;
	enum brg_err rc = read_file(path, &yaml, &len, err);
	if (rc)
		return rc;
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = brg_fail(err, BRG_E_CONFIG, "%s:%zu: %s", path, parser.problem_mark.line + 1,
		              parser.problem ? parser.problem : "cannot parse YAML");
	} else {
		struct pload pl = {path, &doc, c, envp, err};
		rc = parse_root(&pl, yaml_document_get_root_node(&doc));
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	free(yaml);
	return rc;
}

/* ---- environment ---------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static enum brg_err
env_fail(struct brg_error *err, const char *name, const char *fmt, ...)
{
	char why[BRG_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	return brg_fail(err, BRG_E_CONFIG, "%s: %s", name, why);
}

static enum brg_err env_int(char *const *envp, const char *name, long lo, long hi, int *out,
                            struct brg_error *err)
{
	const char *s = env_get(envp, name);
	if (!s)
		return BRG_OK;
	char *end;
	long x = strtol(s, &end, 10);
	if (*end || x < lo || x > hi)
		return env_fail(err, name, "'%.32s' is not an integer in %ld..%ld", s, lo, hi);
	*out = (int)x;
	return BRG_OK;
}

static struct provider_config *find_or_add(struct config *c, const char *name, const char *base)
{
	struct provider_config *p = (struct provider_config *)config_find_provider(c, name);
	if (!p && (p = provider_add(c, name)))
		p->base_url = strdup(base);
	return p;
}

static enum brg_err env_url(struct provider_config *p, const char *var, const char *url,
                            const char *suffix, struct brg_error *err)
{
	if (!url_valid(url))
		return env_fail(err, var, "'%.64s' is not an http:// or https:// URL", url);
	char buf[1024];
	size_t n = strlen(url);
	while (n > 8 && url[n - 1] == '/')
		n--;
	bool has_suffix =
	    n >= strlen(suffix) && !strncmp(url + n - strlen(suffix), suffix, strlen(suffix));
	snprintf(buf, sizeof buf, "%.*s%s", (int)n, url, has_suffix ? "" : suffix);
	free(p->base_url);
	p->base_url = strdup(buf);
	return p->base_url ? BRG_OK : brg_fail(err, BRG_E_NOMEM, "out of memory");
}

/* OPENAI_API_BASE, OPENAI_API_KEY, OPENAI_TIMEOUT. */
static enum brg_err env_openai(struct config *c, char *const *envp, struct brg_error *err)
{
	const char *base = env_get(envp, "OPENAI_API_BASE"), *key = env_get(envp, "OPENAI_API_KEY");
	int timeout = 0;
	enum brg_err rc = env_int(envp, "OPENAI_TIMEOUT", 1, 86400, &timeout, err);
	if (rc)
		return rc;
	if (!base && !key && !timeout)
		return BRG_OK;
	struct provider_config *p = find_or_add(c, "openai", "https://api.openai.com/v1");
	if (!p || !p->base_url)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	if (base && (rc = env_url(p, "OPENAI_API_BASE", base, "", err)))
		return rc;
	if (key) {
		free(p->api_key);
		p->api_key = strdup(key);
	}
	if (timeout) {
		p->first_byte_timeout_ms = timeout * 1000;
		p->request_timeout_s = timeout;
	}
	return BRG_OK;
}

/* INFERENCE_PROVIDER=ollama|vllm|llamacpp|textgen with LOCAL_INFERENCE_URL. */
static enum brg_err env_local_server(struct config *c, char *const *envp, struct brg_error *err)
{
	const char *name = env_get(envp, "INFERENCE_PROVIDER");
	const char *url = env_get(envp, "LOCAL_INFERENCE_URL");
	const char *model = env_get(envp, "LOCAL_MODEL_NAME");
	int timeout = 0;
	enum brg_err rc = env_int(envp, "LOCAL_INFERENCE_TIMEOUT", 1, 86400, &timeout, err);
	if (rc || !name)
		return rc;
	free(c->primary_provider);
	c->primary_provider = strdup(name);
	static const char *known[] = {"ollama", "vllm", "llamacpp", "textgen"};
	bool is_known = false;
	for (size_t i = 0; i < N_OF(known); i++)
		is_known |= !strcmp(name, known[i]);
	if (!is_known || !url)
		return BRG_OK;
	struct provider_config *p = find_or_add(c, name, url);
	if (!p)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	p->kind = strcmp(name, "ollama") ? PROVIDER_OPENAI : PROVIDER_OLLAMA;
	if ((rc = env_url(p, "LOCAL_INFERENCE_URL", url, p->kind == PROVIDER_OLLAMA ? "" : "/v1",
	                  err)))
		return rc;
	if (model && push(&p->models, &p->n_models, model))
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	if (timeout) {
		p->first_byte_timeout_ms = timeout * 1000;
		p->request_timeout_s = timeout;
	}
	return BRG_OK;
}

static enum brg_err env_chain(struct config *c, char *const *envp, struct brg_error *err)
{
	const char *on = env_get(envp, "ENABLE_FALLBACK"), *chain = env_get(envp, "FALLBACK_CHAIN");
	if (on && !parse_bool(on, &c->is_fallback_enabled))
		return env_fail(err, "ENABLE_FALLBACK", "'%.16s' is not true or false", on);
	if (chain) {
		config_strs_free(c->fallback_chain, c->n_fallback);
		c->fallback_chain = NULL;
		c->n_fallback = 0;
		char *copy = strdup(chain), *save = NULL;
		for (char *t = copy ? strtok_r(copy, ", ", &save) : NULL; t;
		     t = strtok_r(NULL, ", ", &save))
			if (push(&c->fallback_chain, &c->n_fallback, t)) {
				free(copy);
				return brg_fail(err, BRG_E_NOMEM, "out of memory");
			}
		free(copy);
	}
	enum brg_err rc =
	    env_int(envp, "HEALTH_CHECK_INTERVAL", 1, 86400, &c->health_interval_s, err);
	return rc ? rc : env_int(envp, "HEALTH_CHECK_TIMEOUT", 1, 3600, &c->health_timeout_s, err);
}

static bool is_backend(const struct config *c, const char *name)
{
	return !strcmp(name, "local") || config_find_provider(c, name) != NULL;
}

/* Names in the chain and INFERENCE_PROVIDER must name a backend; an enabled
 * chain left empty is the primary, then the engine, then the rest. */
static enum brg_err check_names(struct config *c, struct brg_error *err)
{
	for (size_t i = 0; i < c->n_fallback; i++)
		if (!is_backend(c, c->fallback_chain[i]))
			return brg_fail(
			    err, BRG_E_CONFIG,
			    "fallback chain: '%.64s' is neither 'local' nor a configured provider",
			    c->fallback_chain[i]);
	if (c->primary_provider && !is_backend(c, c->primary_provider))
		return env_fail(err, "INFERENCE_PROVIDER",
		                "'%.64s' is neither 'local' nor a configured provider (set "
		                "LOCAL_INFERENCE_URL to define it)",
		                c->primary_provider);
	if (!c->is_fallback_enabled || c->n_fallback)
		return BRG_OK;
	const char *first = c->primary_provider ? c->primary_provider : "local";
	if (push(&c->fallback_chain, &c->n_fallback, first))
		return BRG_E_NOMEM;
	if (strcmp(first, "local") && push(&c->fallback_chain, &c->n_fallback, "local"))
		return BRG_E_NOMEM;
	for (size_t i = 0; i < c->n_providers; i++)
		if (strcmp(c->providers[i].name, first) &&
		    push(&c->fallback_chain, &c->n_fallback, c->providers[i].name))
			return BRG_E_NOMEM;
	return BRG_OK;
}

enum brg_err config_load_providers(struct config *c, const char *path, char *const *envp,
                                   struct brg_error *err)
{
	enum brg_err rc = BRG_OK;
	if (path)
		rc = load_file(c, path, envp, err);
	if (!rc)
		rc = env_openai(c, envp, err);
	if (!rc)
		rc = env_local_server(c, envp, err);
	if (!rc)
		rc = env_chain(c, envp, err);
	if (!rc)
		rc = check_names(c, err);
	return rc;
}

const struct provider_config *config_find_provider(const struct config *c, const char *name)
{
	for (size_t i = 0; c && name && i < c->n_providers; i++)
		if (!strcmp(c->providers[i].name, name))
			return &c->providers[i];
	return NULL;
}

void config_providers_free(struct config *c)
{
	for (size_t i = 0; i < c->n_providers; i++) {
		struct provider_config *p = &c->providers[i];
		free(p->name);
		free(p->base_url);
		free(p->api_key);
		config_strs_free(p->headers, p->n_headers);
		config_strs_free(p->models, p->n_models);
	}
	free(c->providers);
	config_strs_free(c->fallback_chain, c->n_fallback);
	free(c->primary_provider);
}
