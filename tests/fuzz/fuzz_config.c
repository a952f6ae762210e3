// sources: src/config/*.c src/core/*.c
// libs: -lyaml -ljansson
// cflags: -Wl,--wrap=fopen
/*
 * fuzz_config.c — libFuzzer harness for config/: arbitrary bytes as
 * models.yaml, optionally followed by a NUL and newline-separated
 * environment entries ("INFERENCE_PORT=9"), optionally followed by another
 * NUL and a providers.yaml, and by a third NUL and a presets file, through
 * config_load_string(), config_load_providers_string() (over the defaults
 * when the first failed; with no third part the models text is read as the
 * providers file too), config_load_presets_string() (with no fourth part,
 * the models text again) and config_check_presets().
 *
 * It must never crash or leak; on success the result must satisfy every
 * rule the loader promises (ranges, resolved paths, preload ids that name
 * models, provider names, URLs, chain entries, orchestration settings, each
 * preset's mode roles, an active preset that exists and is usable); on
 * failure it must be BRG_E_CONFIG (or BRG_E_NOMEM) with a message (and, for
 * config_load, no config), and a message never shows an sk-... value of a
 * *_KEY variable that appears nowhere else in the input.
 *
 * The input may name files (presets_file, INFERENCE_PRESETS_FILE, with any
 * YAML escape): fopen() is wrapped so that config/ opens none while it
 * loads (a FIFO or a tty would block, a real file would make runs depend on
 * the machine); the loader sees "No such file or directory".
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

#define MAX_ENV 16

/* Set while config/ runs: see the top comment. */
static bool is_loading;

FILE *__real_fopen(const char *path, const char *mode);
FILE *__wrap_fopen(const char *path, const char *mode);
FILE *__wrap_fopen(const char *path, const char *mode)
{
	if (is_loading) {
		errno = ENOENT;
		return NULL;
	}
	return __real_fopen(path, mode);
}

static bool in_list(const char *s, const char *const *v, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(s, v[i]) == 0)
			return true;
	return false;
}

/* No spaces, control characters or commas; 1..255 bytes. */
static bool id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f || s[i] == ',')
			return false;
	return n >= 1 && n <= 255;
}

static const char *const role_names[] = {"primary", "fast", "coder", "thinker", "longctx"};

static void check_roles(char *const *roles, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!in_list(roles[i], role_names, 5) ||
		    in_list(roles[i], (const char *const *)roles, i))
			abort();
}

/* Each mode's roles and how many members may hold each (presets.c). */
static void check_preset(const struct preset *p)
{
	static const struct {
		const char *mode, *roles[3];
		size_t min[3], max[3], min_members, max_members;
	} rules[] = {
	    {"single", {"model"}, {1}, {1}, 1, 1},
	    {"critique", {"generator", "critic"}, {1, 1}, {1, 1}, 2, 2},
	    {"debate", {"participant", "reconciler"}, {2, 1}, {99, 1}, 2, 32},
	    {"ensemble", {"member", "synthesizer"}, {2, 0}, {99, 1}, 2, 32},
	    {"pipeline", {"drafter", "refiner", "validator"}, {1, 0, 1}, {1, 1, 1}, 2, 32},
	};
	size_t r = 0, counts[3] = {0};
	while (r < 5 && (!p->mode || strcmp(p->mode, rules[r].mode) != 0))
		r++;
	if (r == 5 || !p->name || !p->name[0] || p->n_members < rules[r].min_members ||
	    p->n_members > rules[r].max_members || p->is_usable != !p->missing ||
	    (p->hardware &&
	     !in_list(p->hardware,
	              (const char *const[]){"mac-light", "mac-medium", "mac-full", "server"}, 4)) ||
	    !(p->size_gb >= 0) || (p->notes && strpbrk(p->notes, "\r\n")) || p->line < 1)
		abort();
	for (size_t i = 0; i < p->n_members; i++) {
		const struct preset_member *m = &p->members[i];
		if (!id_ok(m->model) || (m->n_mode_roles == 0 && r != 4))
			abort();
		for (size_t j = 0; j < m->n_mode_roles; j++) {
			size_t w = 0;
			while (w < 3 && (!rules[r].roles[w] ||
			                 strcmp(m->mode_roles[j], rules[r].roles[w]) != 0))
				w++;
			if (w == 3 ||
			    in_list(m->mode_roles[j], (const char *const *)m->mode_roles, j))
				abort();
			counts[w]++;
		}
	}
	for (size_t w = 0; w < 3 && rules[r].roles[w]; w++)
		if (counts[w] < rules[r].min[w] || counts[w] > rules[r].max[w])
			abort();
}

static void check_orch(const struct config *c)
{
	static const char *const modes[] = {"single",   "critique", "debate",
	                                    "ensemble", "pipeline", "self_consistency"};
	static const char *const reducers[] = {"weighted_consensus", "majority_vote",
	                                       "highest_confidence"};
	static const char *const stages[] = {"draft", "refine", "validate"};
	const struct orch_config *o = &c->orch;
	if (!in_list(o->mode, modes, 6) || o->critique_max_rounds < 1 ||
	    o->critique_max_rounds > 10 || !(o->critique_threshold >= 0) ||
	    !(o->critique_threshold <= 1) || o->debate_max_rounds < 1 ||
	    o->debate_max_rounds > 10 || !id_ok(o->debate_reconcile) ||
	    !(o->ensemble_min_agreement >= 0) || !(o->ensemble_min_agreement <= 1) ||
	    !id_ok(o->ensemble_synthesis) || !in_list(o->ensemble_reducer, reducers, 3) ||
	    o->n_pipeline_stages < 1 || o->n_pipeline_stages > 3 ||
	    o->self_consistency_samples < 2 || o->self_consistency_samples > 16 ||
	    (o->preset && !o->preset[0]) || (o->presets_file && o->presets_file[0] != '/') ||
	    (c->n_models && !o->n_pool))
		abort();
	for (size_t i = 0, last = 0; i < o->n_pipeline_stages; i++) {
		size_t w = 0;
		while (w < 3 && strcmp(o->pipeline_stages[i], stages[w]) != 0)
			w++;
		if (w == 3 || (i && w <= last))
			abort();
		last = w;
	}
	for (size_t i = 0; i < o->n_pool; i++)
		if (!id_ok(o->pool[i]) || in_list(o->pool[i], (const char *const *)o->pool, i))
			abort();
	for (size_t i = 0; i < o->n_extra_roles; i++) {
		if (!id_ok(o->extra_roles[i].model) ||
		    config_find_model(c, o->extra_roles[i].model))
			abort();
		check_roles(o->extra_roles[i].roles, o->extra_roles[i].n_roles);
	}
	for (size_t i = 0; i < o->n_presets; i++) {
		check_preset(&o->presets[i]);
		if (config_find_preset(c, o->presets[i].name) != &o->presets[i])
			abort(); /* names are unique */
	}
}

static void check_config(const struct config *c)
{
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
		check_roles(m->roles, m->n_roles);
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

/* The providers file (or the models text), then the presets text, over
 * 'c' (NULL: the defaults), then config_check_presets(). */
static void fuzz_rest(struct config *c, const char *prov, size_t prov_len, const char *presets,
                      size_t presets_len, char *const *envp, const uint8_t *data, size_t size)
{
	struct brg_error err = {0};
	is_loading = true;
	if (!c && config_load_string(NULL, 0, NULL, NULL, &c, &err) != BRG_OK) {
		is_loading = false;
		return; /* out of memory */
	}
	enum brg_err e = config_load_providers_string(
	    c, prov, prov_len, "/nonexistent/fuzz/providers.yaml", envp, &err);
	is_loading = false;
	if (e == BRG_OK)
		check_providers(c);
	else if ((e != BRG_E_CONFIG && e != BRG_E_NOMEM) || err.code != e || !err.message[0])
		abort();
	else
		check_no_secret(err.message, envp, data, size);
	/* Presets over whatever the providers left (a failed load may leave
	 * 'c' partly changed, still a config to free). */
	is_loading = true;
	e = config_load_presets_string(c, presets, presets_len, "/nonexistent/fuzz/presets.yaml",
	                               &err);
	is_loading = false;
	if (e == BRG_OK) {
		check_orch(c);
	} else if ((e != BRG_E_CONFIG && e != BRG_E_NOMEM) || err.code != e || !err.message[0] ||
	           c->orch.n_presets != 0) {
		abort();
	}
	e = config_check_presets(c, &err);
	check_orch(c);
	if (e == BRG_OK && c->orch.preset) {
		const struct preset *p = config_find_preset(c, c->orch.preset);
		if (!p || !p->is_usable)
			abort();
	} else if (e != BRG_OK && ((e != BRG_E_CONFIG && e != BRG_E_NOMEM) || !err.message[0])) {
		abort();
	}
	config_free(c);
}

/* The part of data[0..size) after the n-th NUL (n >= 1), up to the next
 * one; false when there are fewer than n NULs. */
static bool part(const uint8_t *data, size_t size, int n, const uint8_t **at, size_t *len)
{
	const uint8_t *p = data, *end = data + size;
	for (int i = 0; i < n; i++) {
		const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
		if (!nul)
			return false;
		p = nul + 1;
	}
	const uint8_t *next = memchr(p, 0, (size_t)(end - p));
	*at = p;
	*len = (size_t)((next ? next : end) - p);
	return true;
}

/* A malloc'd copy, so that a parser gets no terminator to lean on. */
static char *copy_of(const uint8_t *p, size_t len)
{
	char *s = malloc(len ? len : 1);
	memcpy(s, p, len);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t yaml_len = nul ? (size_t)(nul - data) : size;

	/* Environment entries after the first NUL, one per line. */
	char *env_text = NULL, *envp[MAX_ENV + 1] = {NULL};
	const uint8_t *at;
	size_t len;
	if (part(data, size, 1, &at, &len)) {
		env_text = malloc(len + 1);
		memcpy(env_text, at, len);
		env_text[len] = '\0';
		size_t k = 0;
		char *save = NULL;
		for (char *line = strtok_r(env_text, "\n", &save); line && k < MAX_ENV;
		     line = strtok_r(NULL, "\n", &save))
			envp[k++] = line;
	}
	/* The providers and presets files: their parts, else the models text. */
	size_t prov_len = yaml_len, presets_len = yaml_len;
	char *prov =
	    part(data, size, 2, &at, &prov_len) ? copy_of(at, prov_len) : copy_of(data, yaml_len);
	char *presets = part(data, size, 3, &at, &presets_len) ? copy_of(at, presets_len)
	                                                       : copy_of(data, yaml_len);
	char *yaml = copy_of(data, yaml_len);

	struct config *c = (struct config *)1;
	struct brg_error err = {0};
	is_loading = true;
	enum brg_err e =
	    config_load_string(yaml, yaml_len, "/nonexistent/fuzz/models.yaml", envp, &c, &err);
	is_loading = false;
	if (e == BRG_OK) {
		if (!c)
			abort();
		check_config(c);
		check_orch(c);
	} else if (c || (e != BRG_E_CONFIG && e != BRG_E_NOMEM) || err.code != e ||
	           !err.message[0]) {
		abort();
	}
	fuzz_rest(c, prov, prov_len, presets, presets_len, envp, data, size);
	free(presets);
	free(prov);
	free(yaml);
	free(env_text);
	return 0;
}
