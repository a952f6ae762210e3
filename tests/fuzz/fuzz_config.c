// sources: src/config/*.c src/core/*.c
// libs: -lyaml
/*
 * fuzz_config.c — libFuzzer harness for config/: arbitrary bytes as
 * models.yaml, optionally followed by a NUL and newline-separated
 * environment entries ("INFERENCE_PORT=9"), through config_load_string().
 *
 * It must never crash or leak; on success the result must satisfy every
 * rule the loader promises (ranges, resolved paths, preload ids that name
 * models); on failure it must be BRG_E_CONFIG (or BRG_E_NOMEM) with a
 * message and no config.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t yaml_len = nul ? (size_t)(nul - data) : size;

	/* Environment entries after the NUL, one per line. */
	char *env_text = NULL, *envp[MAX_ENV + 1] = {NULL};
	if (nul) {
		size_t n = size - yaml_len - 1;
		env_text = malloc(n + 1);
		memcpy(env_text, nul + 1, n);
		env_text[n] = '\0';
		size_t k = 0;
		char *save = NULL;
		for (char *line = strtok_r(env_text, "\n", &save); line && k < MAX_ENV;
		     line = strtok_r(NULL, "\n", &save))
			envp[k++] = line;
	}

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
		config_free(c);
	} else if (c || (e != BRG_E_CONFIG && e != BRG_E_NOMEM) || err.code != e ||
	           !err.message[0]) {
		abort();
	}
	free(yaml);
	free(env_text);
	return 0;
}
