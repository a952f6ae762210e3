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
 *     memory_budget_mb: 8192     # INFERENCE_MEMORY_BUDGET_MB; 0: no budget
 *     model_ttl: 600             # INFERENCE_MODEL_TTL, seconds idle before unload; 0: never
 *     max_concurrent_requests: 10   # INFERENCE_MAX_CONCURRENT_REQUESTS (docs/admission.md)
 *     max_concurrent_per_model: 0   # INFERENCE_MAX_CONCURRENT_PER_MODEL; 0: local slots
 *     queue_size: 100               # INFERENCE_QUEUE_SIZE; 0: no waiting
 *     queue_strategy: fifo          # INFERENCE_QUEUE_STRATEGY: fifo | priority
 *     reject_when_full: true        # INFERENCE_REJECT_WHEN_FULL
 *     priority_enabled: false       # INFERENCE_PRIORITY_ENABLED; true: priority strategy
 *     priority_levels: 3            # INFERENCE_PRIORITY_LEVELS, 1..3
 *     default_priority: 2           # INFERENCE_DEFAULT_PRIORITY
 *     shutdown_grace: 30            # INFERENCE_SHUTDOWN_GRACE, seconds
 *     auto_route_enabled: false     # INFERENCE_AUTO_ROUTE_ENABLED (docs/routing.md)
 *     auto_route_strategy: least_busy  # INFERENCE_AUTO_ROUTE_STRATEGY: least_busy |
 *                                   # round_robin | capability_match
 *     auto_route_fallback: true     # INFERENCE_AUTO_ROUTE_FALLBACK
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
 *       prefix_cache: true       # optional: reuse cached prompt prefixes
 *       prefill_helper: true     # optional: long prompts prefill on their own thread
 *       budget_handoff: 1500     # optional: orchestration context budget parts
 *                                # (budget_system, _trajectory, _handoff, _user_query)
 *   orchestration:               # every key optional; INFERENCE_* variables win
 *     mode: single               # INFERENCE_ORCHESTRATION_MODE
 *     critique_max_rounds: 2     # and the other keys of struct orch_config below
 *     models: [a, b, vllm:c]     # INFERENCE_ORCHESTRATION_MODELS; the pool
 *     preset: D3                 # INFERENCE_CONFIG
 *     presets_file: presets.yaml # INFERENCE_PRESETS_FILE; relative to the YAML file
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
	/* Reuse cached prompt prefixes across requests (default true).  false:
	 * every request decodes its whole prompt — seeded sampling then repeats
	 * exactly, since the prompt's last token is always decoded in the same
	 * batch shape (with reuse it may be decoded alone, and float rounding
	 * can tip a sample near a tie). */
	bool prefix_cache;
	/* A second context on its own thread prefills long prompts while other
	 * slots decode (default true; used on the CPU, gpu_layers 0, with 2+
	 * threads and 2+ slots): the
	 * streams lose a thread's share instead of stalling behind the prompt.
	 * Costs one slot's KV and a compute buffer (docs/configuration.md). */
	bool prefill_helper;
	/* Orchestration context budget, tokens (docs/context.md); 0: derived
	 * from context_length by the spec's rule.  Generation gets the rest. */
	int budget_system, budget_trajectory, budget_handoff, budget_user_query;
	int line; /* where it was declared, for messages */
};

/* The values of config.auto_route_strategy; config_auto_route_strategy_names
 * spells them ("least_busy", "round_robin", "capability_match"). */
enum auto_route_strategy {
	AUTO_ROUTE_LEAST_BUSY,
	AUTO_ROUTE_ROUND_ROBIN,
	AUTO_ROUTE_CAPABILITY_MATCH,
};
extern const char *const config_auto_route_strategy_names[3];

/* "none", "mean", "cls", "last": the values of model_config.pooling. */
extern const char *const config_pooling_names[4];
/* "fifo", "priority": the values of config.queue_strategy. */
extern const char *const config_queue_strategy_names[2];
/* A provider's http_client: 0 builtin (plain http only), 1 curl. */
extern const char *const config_http_client_names[2];

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
	int http_client;           /* config_http_client_names: 0 builtin (default), 1 curl */
	char **models;             /* served models; unprefixed names in it route here */
	size_t n_models;
	int line;
};

/*
 * One preset (config/presets.yaml; spec: Configuration Presets): a named
 * set of models and the mode they run in, with what each model does in it.
 * Mode roles: critique "generator" / "critic"; debate "participant" /
 * "reconciler"; ensemble "member" / "synthesizer"; pipeline "drafter" /
 * "refiner" / "validator"; single "model".
 */
struct preset_member {
	char *model;       /* a model id as a client would write it ("phi-4", "vllm:m") */
	char **mode_roles; /* e.g. {"participant", "reconciler"} */
	size_t n_mode_roles;
};

struct preset {
	char *name; /* "D3" */
	char *mode; /* single | critique | debate | ensemble | pipeline */
	struct preset_member *members;
	size_t n_members;
	char *hardware; /* tag: mac-light | mac-medium | mac-full | server */
	double size_gb; /* the models' total size, as the spec lists it */
	char *notes;    /* NULL or one line */
	bool is_usable; /* every member names a configured model (set at load) */
	char *missing;  /* when !is_usable: "phi-4, deepseek-r1-7b" (the unconfigured ones) */
	int line;
};

/* A model id → its roles (primary | fast | coder | thinker | longctx), for
 * models that have no models.yaml entry (remote ones: "vllm:llama3"), from
 * INFERENCE_MODEL_ROLES; local models keep theirs in model_config.roles. */
struct model_roles {
	char *model;
	char **roles;
	size_t n_roles;
};

/* Orchestration (spec: Configuration Reference → Orchestration): the YAML
 * 'orchestration:' section, then the INFERENCE_* variables. */
struct orch_config {
	char *mode;                /* INFERENCE_ORCHESTRATION_MODE; default "single" */
	int critique_max_rounds;   /* INFERENCE_CRITIQUE_MAX_ROUNDS; default 2; 1..10 */
	double critique_threshold; /* INFERENCE_CRITIQUE_THRESHOLD; default 0.8; 0..1 */
	int debate_max_rounds;     /* INFERENCE_DEBATE_MAX_ROUNDS; default 3; 1..10 */
	char *debate_reconcile; /* INFERENCE_DEBATE_RECONCILE_MODEL; default "primary": a role or a
	                           model id */
	double ensemble_min_agreement; /* INFERENCE_ENSEMBLE_MIN_AGREEMENT; default 0.7; 0..1 */
	char *ensemble_synthesis; /* INFERENCE_ENSEMBLE_SYNTHESIS_MODEL; default "primary"; "none":
	                             the reducer's pick */
	char *ensemble_reducer;   /* INFERENCE_ENSEMBLE_REDUCER; default "weighted_consensus"
	                             (reduce.h names) */
	bool ensemble_best_on_disagreement; /* INFERENCE_ENSEMBLE_ON_DISAGREEMENT=best|error;
	                                       default false (error) */
	char **pipeline_stages; /* INFERENCE_PIPELINE_STAGES; default draft,refine,validate */
	size_t n_pipeline_stages;
	int self_consistency_samples; /* INFERENCE_SELF_CONSISTENCY_SAMPLES; default 5; 2..16 */
	/* The models a multi-model mode may use when no preset is chosen:
	 * INFERENCE_ORCHESTRATION_MODELS=a,b,vllm:c; default: every model in
	 * models.yaml, in file order. */
	char **pool;
	size_t n_pool;
	char *preset;       /* INFERENCE_CONFIG: the active preset's name, or NULL */
	char *presets_file; /* INFERENCE_PRESETS_FILE; default: presets.yaml beside the models file,
	                       if it exists */
	struct preset *presets;
	size_t n_presets;
	struct model_roles
	    *extra_roles; /* INFERENCE_MODEL_ROLES entries for ids models.yaml lacks */
	size_t n_extra_roles;
	/* For the messages of config_check_presets(): the models.yaml line
	 * that set 'pool', 'preset', 'debate_reconcile', 'ensemble_synthesis';
	 * 0 when a variable or the default did. */
	int pool_line, preset_line, reconcile_line, synthesis_line;
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
	/* Local models' memory, MiB (docs/configuration.md): a load that would
	 * pass it unloads idle models, least recently used first, or is
	 * refused.  0 (default): no budget. */
	int memory_budget_mb;
	int model_ttl_s; /* unload a local model idle this long; 0 (default): never */
	char **preload;  /* model ids to load at start-up */
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
	struct orch_config orch;
	/* Tracing (docs/observability.md → Tracing), from the OTEL_* variables
	 * only: on when OTEL_EXPORTER_OTLP_ENDPOINT is set, unless
	 * OTEL_ENABLED=false; OTEL_ENABLED=true without an endpoint exports to
	 * http://localhost:4318 (OTLP/HTTP's port: brigade does not speak
	 * the gRPC protocol of the spec's 4317). */
	bool is_tracing;
	char *otel_endpoint;     /* OTLP/HTTP base URL (spans go to /v1/traces); NULL: none */
	char *otel_service_name; /* OTEL_SERVICE_NAME; default "inference-service" */
	/* Admission (docs/admission.md; spec: Request Handling, Queue
	 * Behavior, Priority Queue).  Generation and embedding requests only. */
	int max_concurrent_requests;  /* running at once; default 10 */
	int max_concurrent_per_model; /* 0 (default): a local model's slots, remote: none */
	int queue_size;               /* waiting at most; default 100; 0: nobody waits */
	int queue_strategy;           /* config_queue_strategy_names[]: 0 fifo (default) */
	bool reject_when_full;        /* default true: 429; false: wait past queue_size */
	bool priority_enabled;        /* default false; true means queue_strategy priority */
	int priority_levels;          /* 1..3, default 3 (3 is the highest) */
	int default_priority;         /* 1..priority_levels, default 2 */
	int shutdown_grace_s;         /* SIGTERM: drain this long, then cancel; default 30 */
	/* Auto-routing (docs/routing.md): how model "auto" chooses among the
	 * models that fit the request's task_type. */
	bool auto_route_enabled;  /* default false: the first best fit, as always */
	int auto_route_strategy;  /* enum auto_route_strategy; default least_busy */
	bool auto_route_fallback; /* default true: a failed pick moves on to the next */
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
 * _MAX_BODY_BYTES, _API_KEY, _MEMORY_BUDGET_MB, _MODEL_TTL and the
 * admission ones (_MAX_CONCURRENT_REQUESTS, _MAX_CONCURRENT_PER_MODEL,
 * _QUEUE_SIZE, _QUEUE_STRATEGY, _REJECT_WHEN_FULL, _PRIORITY_ENABLED,
 * _PRIORITY_LEVELS, _DEFAULT_PRIORITY, _SHUTDOWN_GRACE) and the
 * auto-routing ones (_AUTO_ROUTE_ENABLED, _AUTO_ROUTE_STRATEGY,
 * _AUTO_ROUTE_FALLBACK) set the server keys of the same meaning, with the
 * same rules; default_priority must not
 * exceed priority_levels; INFERENCE_MODELS_DIR
 * (relative: to the working directory); INFERENCE_GPU_LAYERS sets every
 * model's gpu_layers; INFERENCE_PRELOAD_MODELS=a,b replaces 'preload' (ids
 * must name models).  An empty value counts as unset — so an empty
 * INFERENCE_API_KEY never turns authentication off — except
 * INFERENCE_PRELOAD_MODELS="", which means "preload nothing".
 *
 * OTEL_ENABLED, OTEL_EXPORTER_OTLP_ENDPOINT (an http(s) URL) and
 * OTEL_SERVICE_NAME set the tracing fields (above).
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

/*
 * Reads a presets file (format: config/presets.yaml's header) into
 * c->orch.presets, replacing any there, and marks each preset usable or not
 * by the models configured so far (see config_check_presets()).
 * config_load() already calls it for orch.presets_file, or for presets.yaml
 * beside the models file when that exists.  Errors: BRG_E_CONFIG "cannot
 * read PATH: reason" or "FILE:LINE: key 'presets.D3.members': what is wrong"
 * (unknown keys, a mode's roles: single one "model"; critique one
 * "generator" and one "critic", two members; debate two or more
 * "participant", one "reconciler"; ensemble two or more "member", at most
 * one "synthesizer"; pipeline one "drafter", at most one "refiner", one
 * "validator", two or more members, a member with [] has no stage);
 * BRG_E_NOMEM.  On error c->orch has no presets.
 */
enum brg_err config_load_presets(struct config *c, const char *path, struct brg_error *err);

/* config_load_presets() on YAML text already in memory (len bytes; need not
 * be NUL-terminated).  'name' stands for the file in messages (NULL:
 * "<string>"). */
enum brg_err config_load_presets_string(struct config *c, const char *yaml, size_t len,
                                        const char *name, struct brg_error *err);

/*
 * The checks that need the providers too: call after
 * config_load_providers().  Sets is_usable / missing of every preset (a
 * member is configured when it is a models.yaml id, "local:" or
 * "inference:" and one, "PROVIDER:model" for a configured provider, or a
 * name a provider lists in its 'models'); checks that every pool entry is
 * configured, that debate_reconcile and ensemble_synthesis name a role or a
 * configured model ("none" too for the synthesis), and that the active
 * preset (orch.preset) exists and is usable.  Errors: BRG_E_CONFIG, e.g.
 * "INFERENCE_CONFIG: preset 'D3' names models that are not configured:
 * phi-4, deepseek-r1-7b" (or "FILE:LINE: key 'orchestration.preset': ..."
 * when models.yaml set it); BRG_E_NOMEM.  Other unusable presets are no
 * error: `brigade verify` lists them.
 */
enum brg_err config_check_presets(struct config *c, struct brg_error *err);

/* The preset called 'name' (case-sensitive), or NULL. */
const struct preset *config_find_preset(const struct config *c, const char *name);

/* The roles of a model id as a client writes it: models.yaml's roles, else
 * INFERENCE_MODEL_ROLES's; NULL/0 when it has none. */
void config_model_roles(const struct config *c, const char *id, char *const **roles,
                        size_t *n_roles);

/* The provider named 'name', or NULL ("local" is never one). */
const struct provider_config *config_find_provider(const struct config *c, const char *name);

/* The model with this id, or NULL. */
const struct model_config *config_find_model(const struct config *c, const char *id);

#endif
