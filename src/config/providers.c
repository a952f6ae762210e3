/*
 * providers.c — remote backends, the fallback chain, breakers and health
 * checks: config/providers.yaml (format: config.h and the file's own
 * comments), then the spec's variables (spec: switchable backends →
 * Configuration Strategy), then the checks that need both: every chain
 * entry and INFERENCE_PROVIDER must name "local" or a provider.
 *
 * The file goes through the same document parse and key tables as the
 * models file (yaml.c, fields.c), so messages have the same shape:
 * "FILE:LINE: key 'providers.openai.base_url': what is wrong", and a
 * variable's: "OPENAI_TIMEOUT: 'abc' is not an integer in 1..86400".
 *
 * Secrets: an API key's value never appears in a message.  Keys are never
 * validated against anything that prints them; header values are never
 * repeated; an api_key_env that does not look like a variable's name (it may
 * be a key pasted in the wrong place) is not repeated either.
 */
#include "config/config_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* main.c starts at most this many remote providers. */
#define MAX_PROVIDERS 16
#define NAME_MAX_LEN  64

/* A provider as the file gives it: what is kept, plus where its key is. */
struct entry {
	struct provider_config p;
	char *api_key_env;
};

#define ENTRY(m) offsetof(struct entry, m)
#define CFG(m)   offsetof(struct config, m)

static const struct field provider_fields[] = {
    {"kind", F_KIND, 0, 0, ENTRY(p.kind)},
    {"base_url", F_URL, 0, 0, ENTRY(p.base_url)},
    {"api_key", F_STR, 0, 0, ENTRY(p.api_key)},
    {"api_key_env", F_STR, 0, 0, ENTRY(api_key_env)},
    {"headers", F_HEADERS, 0, 0, ENTRY(p.headers)},
    {"models", F_NAMES, 0, 0, ENTRY(p.models)},
    {"connect_timeout_ms", F_INT, 1, 3600000, ENTRY(p.connect_timeout_ms)},
    {"first_byte_timeout_ms", F_INT, 1, 3600000, ENTRY(p.first_byte_timeout_ms)},
    {"request_timeout", F_INT, 1, 86400, ENTRY(p.request_timeout_s)},
    {"http_client", F_CLIENT, 0, 0, ENTRY(p.http_client)},
};
static const struct field fallback_fields[] = {
    {"enabled", F_BOOL, 0, 0, CFG(is_fallback_enabled)},
    {"chain", F_NAMES, 0, 0, CFG(fallback_chain)},
};
static const struct field health_fields[] = {
    {"interval", F_INT, 1, 86400, CFG(health_interval_s)},
    {"timeout", F_INT, 1, 3600, CFG(health_timeout_s)},
};
static const struct field breaker_fields[] = {
    {"failures", F_INT, 1, 1000, CFG(breaker_failures)},
    {"cooldown", F_INT, 1, 86400, CFG(breaker_cooldown_s)},
};

/* The top-level mappings other than 'providers', read into struct config. */
static const struct {
	const char *name;
	const struct field *fields;
	size_t n_fields;
} sections[] = {
    {"fallback", fallback_fields, N_OF(fallback_fields)},
    {"health", health_fields, N_OF(health_fields)},
    {"breaker", breaker_fields, N_OF(breaker_fields)},
};

/* Values of variables that are not stored as they are. */
static const struct field seconds_field = {"seconds", F_INT, 1, 86400, 0};
static const struct field url_field = {"url", F_URL, 0, 0, 0};

/* F_NAMES and F_HEADERS keep the count right after the array. */
_Static_assert(offsetof(struct provider_config, n_headers) ==
                   offsetof(struct provider_config, headers) + sizeof(char **),
               "n_headers must follow headers");
_Static_assert(offsetof(struct provider_config, n_models) ==
                   offsetof(struct provider_config, models) + sizeof(char **),
               "n_models must follow models");
_Static_assert(offsetof(struct config, n_fallback) ==
                   offsetof(struct config, fallback_chain) + sizeof(char **),
               "n_fallback must follow fallback_chain");

/* ---- helpers ---------------------------------------------------------- */

static void provider_free(struct provider_config *p)
{
	free(p->name);
	free(p->base_url);
	free(p->api_key);
	config_strs_free(p->headers, p->n_headers);
	config_strs_free(p->models, p->n_models);
}

static void provider_defaults(struct provider_config *p)
{
	*p = (struct provider_config){.kind = PROVIDER_OPENAI,
	                              .connect_timeout_ms = 5000,
	                              .first_byte_timeout_ms = 60000,
	                              .request_timeout_s = 600};
}

/* [a-z0-9_-]{1,64} ("local" and "inference" are checked apart). */
static bool name_valid(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n <= NAME_MAX_LEN &&
	       s[strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-")] == '\0';
}

/* [A-Za-z_][A-Za-z0-9_]*: what a shell can export. */
static bool env_name_valid(const char *s)
{
	return (*s < '0' || *s > '9') && *s &&
	       s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")] ==
	           '\0';
}

static bool is_backend(const struct config *c, const char *name)
{
	return strcmp(name, "local") == 0 || config_find_provider(c, name) != NULL;
}

/* "local, a, b": what a chain entry or INFERENCE_PROVIDER may name. */
static void backend_names(const struct config *c, char *buf, size_t len)
{
	const char *names[MAX_PROVIDERS + 1] = {"local"};
	size_t n = 1;
	for (size_t i = 0; i < c->n_providers && n < N_OF(names); i++)
		names[n++] = c->providers[i].name;
	config_join_names(buf, len, names, n);
}

/* Appends a copy of 'p' (its arrays moved, 'p' emptied) named 'name'. */
static enum brg_err provider_append(struct config *c, struct provider_config *p, const char *name)
{
	struct provider_config *v = realloc(c->providers, (c->n_providers + 1) * sizeof *v);
	if (!v)
		return BRG_E_NOMEM;
	c->providers = v;
	if (!(p->name = strdup(name)))
		return BRG_E_NOMEM;
	v[c->n_providers++] = *p;
	provider_defaults(p);
	return BRG_OK;
}

/* ---- the file --------------------------------------------------------- */

/* Reads the key from api_key_env, checks base_url and api_key. */
static enum brg_err entry_finish(struct loader *ld, yaml_node_t *k, yaml_node_t *v,
                                 const char *path, struct entry *en)
{
	char kp[160];
	if (!en->p.base_url) {
		snprintf(kp, sizeof kp, "%s.base_url", path);
		return config_yaml_fail(ld, k, kp,
		                        "missing, expected an http:// or https:// URL (for kind "
		                        "openai the API root, such as https://api.openai.com/v1)");
	}
	if (!en->api_key_env)
		return BRG_OK;
	yaml_node_t *at = config_yaml_get(ld, v, "api_key_env");
	snprintf(kp, sizeof kp, "%s.api_key_env", path);
	if (en->p.api_key)
		return config_yaml_fail(ld, at, kp, "give api_key or api_key_env, not both");
	const char *name = en->api_key_env;
	if (!env_name_valid(name))
		return config_yaml_fail(ld, at, kp,
		                        "expected the name of the environment variable that holds "
		                        "the key (letters, digits, _), not the key itself");
	const char *key = config_env_get(ld->envp, name, true);
	/* Named only when it looks like one: a mixed-case token may be a key. */
	bool is_shown = strlen(name) <= NAME_MAX_LEN &&
	                name[strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")] == '\0';
	if (!key && is_shown)
		return config_yaml_fail(ld, at, kp, "api_key_env '%s' is not set (or is empty)",
		                        name);
	if (!key)
		return config_yaml_fail(ld, at, kp,
		                        "the variable api_key_env names is not set (or is empty)");
	if (!(en->p.api_key = strdup(key)))
		return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	return BRG_OK;
}

static enum brg_err parse_provider(struct loader *ld, yaml_node_t *k, yaml_node_t *v)
{
	const char *name = (const char *)k->data.scalar.value;
	char path[128];
	snprintf(path, sizeof path, "providers.%.64s", name);
	if (strcmp(name, "local") == 0 || strcmp(name, "inference") == 0)
		return config_yaml_fail(ld, k, path,
		                        "'%s' names the embedded engine, choose another", name);
	if (!name_valid(name))
		return config_yaml_fail(ld, k, path,
		                        "'%.64s' is not a provider name, expected 1..%d characters "
		                        "from a-z 0-9 _ -",
		                        name, NAME_MAX_LEN);
	if (v->type != YAML_MAPPING_NODE)
		return config_yaml_fail(ld, v, path,
		                        "got %s, expected a mapping with at least base_url",
		                        config_yaml_kind(v));
	if (ld->c->n_providers >= MAX_PROVIDERS)
		return config_yaml_fail(ld, k, path, "too many providers, at most %d",
		                        MAX_PROVIDERS);
	struct entry en = {.api_key_env = NULL};
	provider_defaults(&en.p);
	en.p.line = (int)k->start_mark.line + 1;
	enum brg_err e =
	    config_yaml_fields(ld, v, path, provider_fields, N_OF(provider_fields), &en);
	if (!e)
		e = entry_finish(ld, k, v, path, &en);
	if (!e && provider_append(ld->c, &en.p, name))
		e = brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	provider_free(&en.p);
	free(en.api_key_env);
	return e;
}

static enum brg_err parse_providers(struct loader *ld, yaml_node_t *node)
{
	bool is_empty;
	enum brg_err e =
	    config_yaml_check_mapping(ld, node, "providers", "provider name", &is_empty);
	for (yaml_node_pair_t *p = is_empty || e ? NULL : node->data.mapping.pairs.start;
	     p && !e && p < node->data.mapping.pairs.top; p++)
		e = parse_provider(ld, yaml_document_get_node(ld->doc, p->key),
		                   yaml_document_get_node(ld->doc, p->value));
	return e;
}

/* Remembers the line of each chain entry, for the checks after the
 * variables (which may define the providers it names). */
static enum brg_err note_chain_lines(struct loader *ld, yaml_node_t *fallback)
{
	yaml_node_t *chain = config_yaml_get(ld, fallback, "chain");
	if (!chain)
		return BRG_OK;
	free(ld->chain_lines);
	ld->chain_lines = calloc(ld->c->n_fallback + 1, sizeof *ld->chain_lines);
	if (!ld->chain_lines)
		return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	for (size_t i = 0; i < ld->c->n_fallback; i++) {
		yaml_node_t *it =
		    yaml_document_get_node(ld->doc, chain->data.sequence.items.start[i]);
		ld->chain_lines[i] = (int)it->start_mark.line + 1;
	}
	return BRG_OK;
}

static enum brg_err walk_root(struct loader *ld, yaml_node_t *root)
{
	bool is_empty;
	if (root->type != YAML_MAPPING_NODE && !config_yaml_is_null(root))
		return config_yaml_fail(ld, root, NULL,
		                        "the top level is %s, expected a mapping with keys "
		                        "providers, fallback, health, breaker",
		                        config_yaml_kind(root));
	enum brg_err e = config_yaml_check_mapping(ld, root, "", "key", &is_empty);
	for (yaml_node_pair_t *p = is_empty || e ? NULL : root->data.mapping.pairs.start;
	     p && !e && p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
		const char *key = (const char *)k->data.scalar.value;
		size_t s = 0;
		while (s < N_OF(sections) && strcmp(key, sections[s].name) != 0)
			s++;
		if (strcmp(key, "providers") == 0)
			e = parse_providers(ld, v);
		else if (s < N_OF(sections))
			e = config_yaml_fields(ld, v, key, sections[s].fields, sections[s].n_fields,
			                       ld->c);
		else
			e = config_yaml_fail(ld, k, key,
			                     "unknown key, expected one of providers, fallback, "
			                     "health, breaker");
		if (!e && s == 0)
			e = note_chain_lines(ld, v);
	}
	return e;
}

/* ---- the variables ---------------------------------------------------- */

/* Sets 'base' by field 'f' from variable 'var' when it is set. */
static enum brg_err env_field(char *const *envp, const char *var, const struct field *f, void *base,
                              struct brg_error *err)
{
	const char *v = config_env_get(envp, var, true);
	char why[BRG_ERR_MSG_MAX - 64];
	enum brg_err e = v ? config_field_set(f, base, v, false, false, why, sizeof why) : BRG_OK;
	if (e)
		return brg_fail(err, e, "%s: %s", var, e == BRG_E_NOMEM ? "out of memory" : why);
	return BRG_OK;
}

/* The provider 'name', created with the defaults (and no base_url) when
 * absent; 'var' is the variable that asks, for the message. */
static enum brg_err env_provider(struct config *c, const char *name, const char *var,
                                 struct provider_config **out, struct brg_error *err)
{
	*out = (struct provider_config *)config_find_provider(c, name);
	if (*out)
		return BRG_OK;
	if (c->n_providers >= MAX_PROVIDERS)
		return brg_fail(err, BRG_E_CONFIG, "%s: cannot add provider '%s': at most %d", var,
		                name, MAX_PROVIDERS);
	struct provider_config p;
	provider_defaults(&p);
	if (provider_append(c, &p, name))
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	*out = &c->providers[c->n_providers - 1];
	return BRG_OK;
}

/* A timeout in seconds for both the first byte and the whole answer. */
static void set_timeouts(struct provider_config *p, int seconds)
{
	p->first_byte_timeout_ms = seconds <= 3600 ? seconds * 1000 : 3600000;
	p->request_timeout_s = seconds;
}

/* Replaces *dst with src (NULL: out of memory). */
static enum brg_err replace(char **dst, char *src, struct brg_error *err)
{
	if (!src)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	free(*dst);
	*dst = src;
	return BRG_OK;
}

/* OPENAI_API_BASE, OPENAI_API_KEY (either defines "openai"), OPENAI_TIMEOUT. */
static enum brg_err env_openai(struct config *c, char *const *envp, struct brg_error *err)
{
	const char *key = config_env_get(envp, "OPENAI_API_KEY", true);
	char *base = NULL;
	int timeout = 0;
	struct provider_config *p = (struct provider_config *)config_find_provider(c, "openai");
	enum brg_err e = env_field(envp, "OPENAI_API_BASE", &url_field, &base, err);
	if (!e)
		e = env_field(envp, "OPENAI_TIMEOUT", &seconds_field, &timeout, err);
	if (!e && !p && (base || key))
		e = env_provider(c, "openai", base ? "OPENAI_API_BASE" : "OPENAI_API_KEY", &p, err);
	if (!e && p && base) {
		e = replace(&p->base_url, base, err);
		base = NULL;
	}
	if (!e && p && !p->base_url)
		e = replace(&p->base_url, strdup("https://api.openai.com/v1"), err);
	if (!e && p && key)
		e = replace(&p->api_key, strdup(key), err);
	if (!e && p && timeout)
		set_timeouts(p, timeout);
	free(base);
	return e;
}

/* The local servers INFERENCE_PROVIDER may name; the first speaks Ollama's
 * API, the others OpenAI's. */
static const char *const servers[] = {"ollama", "vllm", "llamacpp", "textgen"};

/* Its index in servers[], or N_OF(servers) (also for NULL). */
static size_t server_index(const char *name)
{
	size_t s = 0;
	while (s < N_OF(servers) && (!name || strcmp(name, servers[s]) != 0))
		s++;
	return s;
}

static bool is_local_server(const char *name)
{
	return server_index(name) < N_OF(servers);
}

/* The first local-server name (ollama, vllm, ...) FALLBACK_CHAIN lists. */
static size_t chain_server(char *const *envp)
{
	const char *chain = config_env_get(envp, "FALLBACK_CHAIN", true);
	char *copy = chain ? strdup(chain) : NULL, *save = NULL;
	size_t s = N_OF(servers);
	for (char *t = copy ? strtok_r(copy, ", ", &save) : NULL; t && s == N_OF(servers);
	     t = strtok_r(NULL, ", ", &save))
		s = server_index(t);
	free(copy);
	return s;
}

/*
 * LOCAL_INFERENCE_URL (with LOCAL_MODEL_NAME, LOCAL_INFERENCE_TIMEOUT)
 * defines the local server INFERENCE_PROVIDER names (ollama, vllm,
 * llamacpp, textgen) or, when that is another provider, the one
 * FALLBACK_CHAIN names: the spec's own example is INFERENCE_PROVIDER=openai
 * with FALLBACK_CHAIN=ollama,openai.
 */
static enum brg_err env_local_server(struct config *c, char *const *envp, struct brg_error *err)
{
	const char *primary = config_env_get(envp, "INFERENCE_PROVIDER", true);
	const char *model = config_env_get(envp, "LOCAL_MODEL_NAME", true);
	char *url = NULL;
	int timeout = 0;
	size_t s = server_index(primary);
	if (s == N_OF(servers))
		s = chain_server(envp);
	const char *name = s < N_OF(servers) ? servers[s] : NULL;
	enum brg_err e = env_field(envp, "LOCAL_INFERENCE_URL", &url_field, &url, err);
	if (!e)
		e = env_field(envp, "LOCAL_INFERENCE_TIMEOUT", &seconds_field, &timeout, err);
	if (!e && primary)
		e = replace(&c->primary_provider, strdup(primary), err);
	if (e || !url || s == N_OF(servers)) {
		free(url);
		return e;
	}
	size_t n = strlen(url);
	bool is_openai = s > 0, has_v1 = n >= 3 && strcmp(url + n - 3, "/v1") == 0;
	char *full = NULL;
	if (is_openai && !has_v1 && asprintf(&full, "%s/v1", url) < 0)
		full = NULL;
	struct provider_config *p = NULL;
	e = is_openai && !has_v1 ? replace(&url, full, err) : BRG_OK;
	if (!e)
		e = env_provider(c, name, "INFERENCE_PROVIDER", &p, err);
	if (!e) {
		e = replace(&p->base_url, url, err);
		url = NULL;
	}
	if (!e && model && !config_names_has(p->models, p->n_models, model))
		e = config_names_push(&p->models, &p->n_models, model, err);
	if (!e) {
		p->kind = is_openai ? PROVIDER_OPENAI : PROVIDER_OLLAMA;
		if (timeout)
			set_timeouts(p, timeout);
	}
	free(url);
	return e;
}

/* ENABLE_FALLBACK, FALLBACK_CHAIN (replaces the file's), HEALTH_CHECK_*. */
static enum brg_err env_chain(struct loader *ld, char *const *envp)
{
	struct config *c = ld->c;
	const char *chain = config_env_get(envp, "FALLBACK_CHAIN", true);
	enum brg_err e = env_field(envp, "ENABLE_FALLBACK", &fallback_fields[0], c, ld->err);
	if (!e)
		e = env_field(envp, "HEALTH_CHECK_INTERVAL", &health_fields[0], c, ld->err);
	if (!e)
		e = env_field(envp, "HEALTH_CHECK_TIMEOUT", &health_fields[1], c, ld->err);
	if (e || !chain)
		return e;
	config_strs_free(c->fallback_chain, c->n_fallback);
	c->fallback_chain = NULL;
	c->n_fallback = 0;
	free(ld->chain_lines);
	ld->chain_lines = NULL;
	char *copy = strdup(chain), *save = NULL;
	if (!copy)
		return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	for (char *t = strtok_r(copy, ", \t", &save); t && !e; t = strtok_r(NULL, ", \t", &save))
		if (config_names_has(c->fallback_chain, c->n_fallback, t))
			e = brg_fail(ld->err, BRG_E_CONFIG,
			             "FALLBACK_CHAIN: '%.64s' is listed twice", t);
		else
			e = config_names_push(&c->fallback_chain, &c->n_fallback, t, ld->err);
	free(copy);
	return e;
}

/* ---- after both ------------------------------------------------------- */

/* An enabled chain left empty: the primary, the engine, then the rest. */
static enum brg_err default_chain(struct config *c, struct brg_error *err)
{
	const char *first = c->primary_provider ? c->primary_provider : "local";
	enum brg_err e = config_names_push(&c->fallback_chain, &c->n_fallback, first, err);
	if (!e && strcmp(first, "local") != 0)
		e = config_names_push(&c->fallback_chain, &c->n_fallback, "local", err);
	for (size_t i = 0; !e && i < c->n_providers; i++)
		if (strcmp(c->providers[i].name, first) != 0)
			e = config_names_push(&c->fallback_chain, &c->n_fallback,
			                      c->providers[i].name, err);
	return e;
}

static enum brg_err check_names(struct loader *ld)
{
	struct config *c = ld->c;
	char names[BRG_ERR_MSG_MAX / 2];
	backend_names(c, names, sizeof names);
	for (size_t i = 0; i < c->n_fallback; i++) {
		const char *n = c->fallback_chain[i];
		if (is_backend(c, n))
			continue;
		if (ld->chain_lines)
			return brg_fail(ld->err, BRG_E_CONFIG,
			                "%s:%d: key 'fallback.chain': '%.64s' names no provider, "
			                "expected one of %s",
			                ld->name, ld->chain_lines[i], n, names);
		return brg_fail(ld->err, BRG_E_CONFIG,
		                "FALLBACK_CHAIN: '%.64s' names no provider, expected one of %s", n,
		                names);
	}
	const char *p = c->primary_provider;
	if (p && !is_backend(c, p))
		return brg_fail(ld->err, BRG_E_CONFIG,
		                "INFERENCE_PROVIDER: '%.64s' names no provider, expected one of "
		                "%s%s",
		                p, names,
		                strcmp(p, "openai") == 0 ? " (OPENAI_API_KEY or OPENAI_API_BASE "
		                                           "defines openai)"
		                : is_local_server(p)     ? " (LOCAL_INFERENCE_URL defines it)"
		                                         : "");
	if (c->is_fallback_enabled && c->n_fallback == 0)
		return default_chain(c, ld->err);
	return BRG_OK;
}

/* ---- public ----------------------------------------------------------- */

enum brg_err config_load_providers_string(struct config *c, const char *yaml, size_t len,
                                          const char *name, char *const *envp,
                                          struct brg_error *err)
{
	struct loader ld = {.name = name ? name : "<string>", .c = c, .err = err, .envp = envp};
	enum brg_err e = yaml ? config_yaml_parse(&ld, yaml, len, walk_root) : BRG_OK;
	if (!e)
		e = env_openai(c, envp, err);
	if (!e)
		e = env_local_server(c, envp, err);
	if (!e)
		e = env_chain(&ld, envp);
	if (!e)
		e = check_names(&ld);
	free(ld.chain_lines);
	return e;
}

enum brg_err config_load_providers(struct config *c, const char *path, char *const *envp,
                                   struct brg_error *err)
{
	if (!path)
		return config_load_providers_string(c, NULL, 0, NULL, envp, err);
	char *yaml = NULL;
	size_t len = 0;
	enum brg_err e = config_read_file(path, &yaml, &len, err);
	if (!e)
		e = config_load_providers_string(c, yaml, len, path, envp, err);
	free(yaml);
	return e;
}

const struct provider_config *config_find_provider(const struct config *c, const char *name)
{
	for (size_t i = 0; c && name && i < c->n_providers; i++)
		if (strcmp(c->providers[i].name, name) == 0)
			return &c->providers[i];
	return NULL;
}

void config_providers_free(struct config *c)
{
	for (size_t i = 0; i < c->n_providers; i++)
		provider_free(&c->providers[i]);
	free(c->providers);
	config_strs_free(c->fallback_chain, c->n_fallback);
	free(c->primary_provider);
}
