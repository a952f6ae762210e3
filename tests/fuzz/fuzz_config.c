// sources: src/config/*.c src/core/*.c
// libs: -lyaml
/*
 * fuzz_config.c — libFuzzer harness for config/: arbitrary bytes as
 * models.yaml, optionally followed by a NUL and newline-separated
 * environment entries ("INFERENCE_PORT=9"), optionally followed by another
 * NUL and a providers.yaml, through config_load_string() and then
 * config_load_providers_string() (over the defaults when the first failed;
 * with no third part the models text is read as the providers file too).
 *
 * It must never crash or leak; on success the result must satisfy every
 * rule the loader promises (ranges, resolved paths, preload ids that name
 * models, provider names, URLs, chain entries); on failure it must be
 * BRG_E_CONFIG (or BRG_E_NOMEM) with a message (and, for config_load, no
 * config), and a message never shows an sk-... value of a *_KEY variable
 * that appears nowhere else in the input.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

#define MAX_ENV 16

static void check_config(const struct config *c)
{
	static const char *const roles[] = {"primary", "fast", "coder", "thinker", "longctx"};
	if (!c->host || !c->host[0] || c->port < 0 || c->port > 65535 || !c->models_dir ||
	    c->models_dir[0] != '/' || c->max_body_bytes < 1024 || c->request_timeout_s < 1 ||
	    (c->api_key && !c->api_key[0]) || c->log_level < 0)
		abort();
	for (size_t i = 0; i < c->n_models; i++) {
		const struct model_config *m = &c->models[i];
		if (!m->id || !m->file || !m->path || m->path[0] != '/' || m->slots < 1 ||
		    m->context_length < 16 || m->gpu_layers < -1 || m->batch < 1 || m->line < 1)
			abort();
		if (config_find_model(c, m->id) != m) /* ids are unique */
			abort();
		for (size_t r = 0; r < m->n_roles; r++) {
			size_t k = 0;
			while (k < 5 && strcmp(m->roles[r], roles[k]) != 0)
				k++;
			if (k == 5)
				abort();
		}
	}
	for (size_t i = 0; i < c->n_preload; i++)
		if (!config_find_model(c, c->preload[i]))
			abort();
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= 64 && s[strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-")] == 0 &&
	       strcmp(s, "local") != 0 && strcmp(s, "inference") != 0;
}

static bool is_backend(const struct config *c, const char *name)
{
	return strcmp(name, "local") == 0 || config_find_provider(c, name) != NULL;
}

static void check_provider(const struct config *c, const struct provider_config *p)
{
	const char *u = p->base_url;
	size_t n = u ? strlen(u) : 0;
	if (!p->name || !name_ok(p->name) || config_find_provider(c, p->name) != p || !u ||
	    (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) || u[n - 1] == '/' ||
	    strpbrk(u, " \t\r\n?#") || (p->api_key && !p->api_key[0]) ||
	    (p->kind != PROVIDER_OPENAI && p->kind != PROVIDER_OLLAMA) ||
	    p->connect_timeout_ms < 1 || p->connect_timeout_ms > 3600000 ||
	    p->first_byte_timeout_ms < 1 || p->first_byte_timeout_ms > 3600000 ||
	    p->request_timeout_s < 1 || p->request_timeout_s > 86400)
		abort();
	for (size_t i = 0; i < p->n_headers; i++)
		if (!strstr(p->headers[i], ": ") || strpbrk(p->headers[i], "\r\n"))
			abort();
	for (size_t i = 0; i < p->n_models; i++)
		if (!p->models[i][0])
			abort();
}

static void check_providers(const struct config *c)
{
	if (c->n_providers > 16 || c->health_interval_s < 1 || c->health_interval_s > 86400 ||
	    c->health_timeout_s < 1 || c->health_timeout_s > 3600 || c->breaker_failures < 1 ||
	    c->breaker_failures > 1000 || c->breaker_cooldown_s < 1 ||
	    c->breaker_cooldown_s > 86400 || (c->is_fallback_enabled && c->n_fallback == 0) ||
	    (c->primary_provider && !is_backend(c, c->primary_provider)))
		abort();
	for (size_t i = 0; i < c->n_providers; i++)
		check_provider(c, &c->providers[i]);
	for (size_t i = 0; i < c->n_fallback; i++) {
		if (!is_backend(c, c->fallback_chain[i]))
			abort();
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->fallback_chain[i], c->fallback_chain[j]) == 0)
				abort();
	}
}

/* A message must not show the value of a *_KEY variable that looks like a
 * key ("sk-..."), unless the input has that text somewhere else too. */
static void check_no_secret(const char *msg, char *const *envp, const uint8_t *data, size_t size)
{
	for (size_t i = 0; envp[i]; i++) {
		const char *eq = strchr(envp[i], '=');
		const char *v = eq ? eq + 1 : NULL;
		if (!v || eq - envp[i] < 4 || strncmp(eq - 4, "_KEY", 4) != 0 ||
		    strncmp(v, "sk-", 3) != 0 || strlen(v) < 8 || !strstr(msg, v))
			continue;
		size_t n = strlen(v), seen = 0;
		for (const uint8_t *p = data; (p = memmem(p, size - (size_t)(p - data), v, n)); p++)
			seen++;
		if (seen < 2) /* only in its own variable */
			abort();
	}
}

/* The providers file (or the models text) over 'c' (NULL: the defaults). */
static void fuzz_providers(struct config *c, const char *yaml, size_t len, char *const *envp,
                           const uint8_t *data, size_t size)
{
	struct brg_error err = {0};
	if (!c && config_load_string(NULL, 0, NULL, NULL, &c, &err) != BRG_OK)
		return; /* out of memory */
	enum brg_err e = config_load_providers_string(
	    c, yaml, len, "/nonexistent/fuzz/providers.yaml", envp, &err);
	if (e == BRG_OK)
		check_providers(c);
	else if ((e != BRG_E_CONFIG && e != BRG_E_NOMEM) || err.code != e || !err.message[0])
		abort();
	else
		check_no_secret(err.message, envp, data, size);
	config_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t yaml_len = nul ? (size_t)(nul - data) : size;
	const uint8_t *nul2 = nul ? memchr(nul + 1, 0, size - yaml_len - 1) : NULL;

	/* Environment entries after the NUL, one per line. */
	char *env_text = NULL, *envp[MAX_ENV + 1] = {NULL};
	if (nul) {
		size_t n = (size_t)((nul2 ? nul2 : data + size) - (nul + 1));
		env_text = malloc(n + 1);
		memcpy(env_text, nul + 1, n);
		env_text[n] = '\0';
		size_t k = 0;
		char *save = NULL;
		for (char *line = strtok_r(env_text, "\n", &save); line && k < MAX_ENV;
		     line = strtok_r(NULL, "\n", &save))
			envp[k++] = line;
	}
	/* The providers file: after the second NUL, else the models text. */
	size_t prov_len = nul2 ? size - (size_t)(nul2 + 1 - data) : yaml_len;
	char *prov = malloc(prov_len ? prov_len : 1);
	memcpy(prov, nul2 ? nul2 + 1 : data, prov_len);

	/* Copied so that the parser gets no terminator to lean on. */
	char *yaml = malloc(yaml_len ? yaml_len : 1);
	memcpy(yaml, data, yaml_len);
	struct config *c = (struct config *)1;
	struct brg_error err = {0};
	enum brg_err e =
	    config_load_string(yaml, yaml_len, "/nonexistent/fuzz/models.yaml", envp, &c, &err);
	if (e == BRG_OK) {
		if (!c)
			abort();
		check_config(c);
	} else if (c || (e != BRG_E_CONFIG && e != BRG_E_NOMEM) || err.code != e ||
	           !err.message[0]) {
		abort();
	}
	fuzz_providers(c, prov, prov_len, envp, data, size);
	free(prov);
	free(yaml);
	free(env_text);
	return 0;
}
