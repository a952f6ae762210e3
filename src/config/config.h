/*
 * config.h — brigade's configuration: config/models.yaml plus the spec's
 * environment overrides (spec: Configuration Reference), read once at
 * start-up and validated before the server listens.  The only libyaml user.
 *
 * Precedence, lowest to highest: built-in defaults, the YAML file, INFERENCE_*
 * environment variables, command-line flags (applied by main.c after
 * config_load).
 *
 * The file:
 *
 *   server:                      # every key optional
 *     host: 127.0.0.1            # INFERENCE_HOST
 *     port: 8085                 # INFERENCE_PORT
 *     models_dir: ../shared/models   # INFERENCE_MODELS_DIR; relative to the YAML file
 *     log_level: info            # INFERENCE_LOG_LEVEL
 *     max_body_bytes: 4194304
 *     request_timeout: 120       # INFERENCE_REQUEST_TIMEOUT, seconds
 *     api_key: ""                # INFERENCE_API_KEY; empty: no auth
 *     api_keys_file: keys.txt    # INFERENCE_API_KEYS_FILE; one key per line
 *   preload: [stories260k]       # INFERENCE_PRELOAD_MODELS=a,b
 *   models:
 *     stories260k:
 *       file: stories260K.gguf   # relative to models_dir, or absolute
 *       context_length: 2048     # tokens per slot
 *       threads: 2               # 0: all cores
 *       slots: 4                 # parallel sequences
 *       gpu_layers: 0            # INFERENCE_GPU_LAYERS overrides every model
 *       roles: [primary, fast]
 *       chat_template: chatml    # optional llama.cpp template name
 *       batch: 512               # optional, tokens per decode step
 *       max_queue: 64            # optional, waiting requests before 503
 *       pooling: mean            # optional: embeddings from a generative model
 */
#ifndef BRG_CONFIG_CONFIG_H
#define BRG_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

struct model_config {
	char *id;
	char *file;         /* as written */
	char *path;         /* resolved against models_dir */
	int context_length; /* default 4096 */
	int threads;        /* default 0 */
	int slots;          /* default 1 */
	int gpu_layers;     /* default 0 */
	int batch;          /* default 512 */
	int max_queue;      /* default 64 */
	char **roles;       /* default {"primary"} */
	size_t n_roles;
	char *chat_template; /* NULL: from the GGUF */
	int pooling;         /* -1: the GGUF's; else config_pooling_names[pooling] */
	int line;            /* where it was declared, for messages */
};

/* "none", "mean", "cls", "last": the values of model_config.pooling. */
extern const char *const config_pooling_names[4];

enum provider_kind { PROVIDER_OPENAI, PROVIDER_OLLAMA };

/* One remote backend (config/providers.yaml, or the spec's variables). */
struct provider_config {
	char *name; /* the model-name prefix: "vllm" in "vllm:m1" */
	enum provider_kind kind;
	char *base_url; /* no trailing slash; an OpenAI kind ends at its API root (.../v1) */
	char *api_key;  /* NULL: none; from api_key_env (a variable's name) or api_key */
	char **headers; /* "Name: value" */
	size_t n_headers;
	int connect_timeout_ms;    /* default 5000 */
	int first_byte_timeout_ms; /* default 60000 */
	int request_timeout_s;     /* default 600 */
	char **models;             /* served models; unprefixed names in it route here */
	size_t n_models;
	int line;
};

struct config {
	char *source;          /* the YAML path read, or NULL */
	char *host;            /* default 127.0.0.1 */
	int port;              /* default 8085 */
	char *models_dir;      /* default "models" */
	int log_level;         /* enum log_level; default LOG_INFO */
	size_t max_body_bytes; /* default 4 MiB */
	int request_timeout_s; /* default 120 */
	char *api_key;         /* NULL: no auth */
	char *api_keys_file;   /* NULL: none; more keys, one per line (http/keys.h) */
	char **preload;        /* model ids to load at start-up */
	size_t n_preload;
	struct model_config *models;
	size_t n_models;
	/* Remote providers, from config_load_providers(). */
	struct provider_config *providers;
	size_t n_providers;
	bool is_fallback_enabled; /* default false */
	char **fallback_chain;    /* provider names; "local" is the engine */
	size_t n_fallback;
	int health_interval_s;  /* default 60 */
	int health_timeout_s;   /* default 5 */
	int breaker_failures;   /* default 3 */
	int breaker_cooldown_s; /* default 30 */
	char *primary_provider; /* INFERENCE_PROVIDER; NULL: "local" */
};

/*
 * Reads 'path' (NULL: no file, defaults only) and then applies the
 * INFERENCE_* variables found in 'envp' (a NULL-terminated environ-style
 * array, so tests need not touch the process environment).  Validates
 * everything: unknown keys, wrong types, out-of-range numbers, duplicate
 * model ids, preload ids that name no model.  Errors: BRG_E_CONFIG with a
 * message "FILE:LINE: key 'KEY': what is wrong" (or "INFERENCE_X: ..." for
 * an environment variable).  On success *out is the caller's; config_free().
 * Does not check that model files exist (main.c reports that, with advice).
 * A file that cannot be read: BRG_E_CONFIG "cannot read FILE: reason"; an
 * empty file is valid (defaults).  Out of memory: BRG_E_NOMEM.
 *
 * Environment: INFERENCE_HOST, _PORT, _LOG_LEVEL, _REQUEST_TIMEOUT,
 * _MAX_BODY_BYTES, _API_KEY set the server keys of the same meaning, with
 * the same rules; INFERENCE_MODELS_DIR (relative: to the working directory);
 * INFERENCE_GPU_LAYERS sets every model's gpu_layers;
 * INFERENCE_PRELOAD_MODELS=a,b replaces 'preload' (ids must name models).
 * An empty value counts as unset — so an empty INFERENCE_API_KEY never turns
 * authentication off — except INFERENCE_PRELOAD_MODELS="", which means
 * "preload nothing".
 *
 * Paths come out absolute: models_dir (canonical when it exists) and each
 * model's path = file when absolute, else models_dir/file.
 */
enum brg_err config_load(const char *path, char *const *envp, struct config **out,
                         struct brg_error *err);

/*
 * config_load() on YAML text already in memory (len bytes; need not be
 * NUL-terminated): what the fuzz harness and tests use.  'name' stands for
 * the file in messages and its directory anchors a relative models_dir;
 * NULL: "<string>" and the working directory.  Same errors and ownership.
 */
enum brg_err config_load_string(const char *yaml, size_t len, const char *name, char *const *envp,
                                struct config **out, struct brg_error *err);

/* Frees everything; config_free(NULL) does nothing. */
void config_free(struct config *c);

/*
 * Reads a providers file (NULL: none; format and variables documented in
 * config/providers.yaml) into 'c', a config from config_load(), then the
 * spec's provider variables from 'envp' (OPENAI_API_KEY, OPENAI_API_BASE,
 * OPENAI_TIMEOUT, INFERENCE_PROVIDER with LOCAL_INFERENCE_URL /
 * LOCAL_MODEL_NAME / LOCAL_INFERENCE_TIMEOUT, ENABLE_FALLBACK,
 * FALLBACK_CHAIN, HEALTH_CHECK_INTERVAL, HEALTH_CHECK_TIMEOUT; empty counts
 * as unset), then checks that every chain entry and INFERENCE_PROVIDER name
 * "local" or a provider.  An enabled chain left empty becomes
 * INFERENCE_PROVIDER, local, then the other providers.
 *
 * Errors: BRG_E_CONFIG "FILE:LINE: key 'providers.NAME.KEY': ..." for the
 * file (unknown keys, types, ranges, URLs, duplicate or reserved names,
 * api_key with api_key_env, an api_key_env variable not set, a chain entry
 * naming no provider), "NAME: 'value' ..." for a variable, and "cannot read
 * FILE: reason"; BRG_E_NOMEM.  No message ever holds an API key or a header
 * value.  On error 'c' may be partly changed: config_free() it.
 */
enum brg_err config_load_providers(struct config *c, const char *path, char *const *envp,
                                   struct brg_error *err);

/* config_load_providers() on YAML text already in memory (len bytes; need
 * not be NUL-terminated; NULL: no file).  'name' stands for the file in
 * messages (NULL: "<string>"). */
enum brg_err config_load_providers_string(struct config *c, const char *yaml, size_t len,
                                          const char *name, char *const *envp,
                                          struct brg_error *err);

/* The provider named 'name', or NULL ("local" is never one). */
const struct provider_config *config_find_provider(const struct config *c, const char *name);

/* The model with this id, or NULL. */
const struct model_config *config_find_model(const struct config *c, const char *id);

#endif
