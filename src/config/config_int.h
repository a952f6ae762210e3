/*
 * config_int.h — private to src/config/: the key tables and the functions
 * the config files share.  Nothing outside src/config/ includes this.
 *
 * Files:
 *   config.c     the public API: defaults, reading the file, path resolution,
 *                config_load/config_load_string/config_free/config_find_model
 *   yaml.c       the libyaml document walk: root, server, models, preload,
 *                and the table-driven mapping reader providers.c shares
 *   fields.c     the per-section key tables and setting one typed value from
 *                text, shared by the YAML and environment readers
 *   env.c        the INFERENCE_* environment overrides
 *   providers.c  config/providers.yaml and the spec's provider variables
 *   orch.c       orchestration: the 'orchestration:' section, its variables,
 *                INFERENCE_MODEL_ROLES, config_check_presets()
 *   presets.c    the presets file and which presets' models are configured
 *
 * Order of a load (config.c): defaults, then the YAML file (yaml.c), then
 * models_dir resolved against the file, then the environment (env.c), then
 * each model's path, then orchestration (orch.c: its variables, the default
 * pool, the presets file).  config_load_providers() (providers.c) runs after, on
 * the loaded config: the providers file, then its variables, then the
 * checks that need both (chain and INFERENCE_PROVIDER names).
 */
#ifndef BRG_CONFIG_INT_H
#define BRG_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <yaml.h>

#include "config/config.h"
#include "core/err.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- fields.c --------------------------------------------------------- */

enum field_kind {
	F_INT,       /* int, in lo..hi */
	F_SIZE,      /* size_t, in lo..hi */
	F_STR,       /* char *, non-empty */
	F_OPT_STR,   /* char *, NULL when empty or null */
	F_LOG_LEVEL, /* int, log_level_parse() */
	F_ROLES,     /* struct model_config roles/n_roles */
	F_BOOL,      /* bool: true/false, yes/no, on/off, 1/0 */
	F_URL,       /* char *: http(s)://host[:port][/path], trailing '/' dropped */
	F_KIND,      /* enum provider_kind: openai | ollama */
	F_POOLING,   /* int: -1 (null: the GGUF's), 0 none, 1 mean, 2 cls, 3 last */
	F_QUEUE,     /* int: 0 fifo, 1 priority (config_queue_strategy_names) */
	F_ROUTE,     /* int: enum auto_route_strategy (config_auto_route_strategy_names) */
	F_CLIENT,    /* int: 0 builtin, 1 curl (config_http_client_names) */
	F_NAMES,     /* char ** then size_t count: a list of distinct non-empty names */
	F_HEADERS,   /* char ** then size_t count: "Name: value" from a mapping */
};

/* F_NAMES and F_HEADERS store the count right after the array. */
#define CONFIG_COUNT_AT(base, f) ((size_t *)((char *)(base) + (f)->off + sizeof(char **)))

struct field {
	const char *name;
	enum field_kind kind;
	long long lo, hi;
	size_t off; /* into struct config, struct model_config, ... */
};

/* The keys of 'server' (into struct config) and of each model (into struct
 * model_config). */
extern const struct field config_server_fields[];
extern const size_t config_n_server_fields;
extern const struct field config_model_fields[];
extern const size_t config_n_model_fields;

/* The roles a model may take; fields.c checks the count. */
#define CONFIG_N_ROLES 5
extern const char *const config_role_names[];

/* The field named 'name' among fields[0..n), or NULL. */
const struct field *config_field_find(const struct field *fields, size_t n, const char *name);

/* "a, b, c" into buf. */
void config_join_names(char *buf, size_t len, const char *const *names, size_t n);

/* The names of fields[0..n) as "a, b, c" into buf. */
void config_join_field_names(char *buf, size_t len, const struct field *fields, size_t n);

/* What a field accepts, for "expected ..." messages. */
void config_describe(const struct field *f, char *buf, size_t len);

/*
 * Parses 'text' for field 'f' and stores it into 'base'.  'is_null': the
 * YAML value was null (or an empty plain scalar).  'is_quoted': it was a
 * quoted scalar, which is a string, never a number.  On BRG_E_CONFIG, 'why'
 * says what is wrong, ending in what was expected.  F_ROLES, F_NAMES and
 * F_HEADERS cannot be set from text (BRG_E_CONFIG).  Out of memory:
 * BRG_E_NOMEM, 'why' untouched.  An F_URL value with credentials
 * ("user:pass@") is never repeated in 'why'.
 */
enum brg_err config_field_set(const struct field *f, void *base, const char *text, bool is_null,
                              bool is_quoted, char *why, size_t why_len);

/* "http://h:1/x/" is a valid F_URL (host required, port 1..65535, no
 * spaces, query or fragment). */
bool config_url_valid(const char *url);

/* The next item of a comma list split in place: s is the copy on the first
 * call, NULL after; *save is the strtok_r state.  Items come trimmed of
 * blanks; empty ones are skipped; NULL at the end. */
char *config_list_next(char *s, char **save);
/* A scalar node's text. */
const char *config_yaml_scalar(const yaml_node_t *node);
/* The index of s among words, any case; -1 if absent. */
int config_word_find(const char *s, const char *const *words, size_t n);

/* ---- yaml.c ----------------------------------------------------------- */

/* State of one YAML file being read. */
struct loader {
	const char *name; /* for messages */
	yaml_document_t *doc;
	struct config *c;
	struct brg_error *err;
	int *preload_lines; /* models file: line of each c->preload entry */
	char *const *envp;  /* providers file: for api_key_env */
	int *chain_lines;   /* providers file: line of each fallback_chain entry */
};

/* "FILE:LINE: key 'KEY': <why>" (or "FILE:LINE: <why>" when key is NULL)
 * as BRG_E_CONFIG. */
__attribute__((format(printf, 4, 5))) enum brg_err
config_yaml_fail(struct loader *ld, const yaml_node_t *node, const char *key, const char *fmt, ...);

/* Null: ~, null, Null, NULL or nothing at all, unquoted. */
bool config_yaml_is_null(const yaml_node_t *node);

/* "a mapping", "a list", "a scalar", "nothing": for "got X" messages. */
const char *config_yaml_kind(const yaml_node_t *node);

/* Checks that 'node' is a mapping of distinct scalar keys ('what' names
 * them in the duplicate message); null counts as empty (*is_empty). */
enum brg_err config_yaml_check_mapping(struct loader *ld, yaml_node_t *node, const char *path,
                                       const char *what, bool *is_empty);

/* The value of 'key' in mapping 'map', or NULL. */
yaml_node_t *config_yaml_get(struct loader *ld, yaml_node_t *map, const char *key);

/*
 * Reads the keys of mapping 'node' (null: none) into 'base' by the table
 * 'fields'; keys are named "PREFIX.KEY" in messages.  Unknown keys, wrong
 * types and bad values are BRG_E_CONFIG at the offending line.
 */
enum brg_err config_yaml_fields(struct loader *ld, yaml_node_t *node, const char *prefix,
                                const struct field *fields, size_t n_fields, void *base);

/*
 * Parses YAML text (len bytes) as exactly one document and calls
 * walk(ld, root) on it (not for an empty document).  Syntax errors, NUL
 * characters and a second document are BRG_E_CONFIG naming ld->name.
 */
enum brg_err config_yaml_parse(struct loader *ld, const char *yaml, size_t len,
                               enum brg_err (*walk)(struct loader *ld, yaml_node_t *root));

/*
 * Parses the YAML text (len bytes) into 'c', over its defaults.  'name'
 * stands for the file in messages.  Errors: BRG_E_CONFIG, BRG_E_NOMEM, with
 * 'err' set; 'c' may then be partly filled (config_free() still works).
 */
enum brg_err config_parse_yaml(struct config *c, const char *name, const char *yaml, size_t len,
                               struct brg_error *err);

/* ---- env.c ------------------------------------------------------------ */

/*
 * Applies the INFERENCE_* variables of 'envp' to 'c' (see config.h).
 * Errors: BRG_E_CONFIG, BRG_E_NOMEM, with 'err' set.
 */
enum brg_err config_apply_env(struct config *c, char *const *envp, struct brg_error *err);

/* ---- providers.c ------------------------------------------------------ */

/* Frees c->providers, the chain and the primary provider's name. */
void config_providers_free(struct config *c);

/* ---- orch.c ----------------------------------------------------------- */

#define CONFIG_ID_MAX          255 /* a model id as a client writes it */
#define CONFIG_PRESET_NAME_MAX 64
#define CONFIG_MAX_MEMBERS     32 /* per preset */

/* Sets c->orch to the defaults (config.h).  Errors: BRG_E_NOMEM (no message
 * set); config_orch_free() still works. */
enum brg_err config_orch_defaults(struct orch_config *o);

/* Frees everything 'o' holds (not 'o'). */
void config_orch_free(struct orch_config *o);

/* The 'orchestration:' mapping of models.yaml into ld->c->orch (a relative
 * presets_file is left as written: config.c resolves it). */
enum brg_err config_orch_yaml(struct loader *ld, yaml_node_t *node);

/* The orchestration variables of 'envp' and INFERENCE_MODEL_ROLES (which
 * replaces models' roles, so run it after the models are read). */
enum brg_err config_orch_env(struct config *c, char *const *envp, struct brg_error *err);

/* After the variables: the default pool (every model), then the presets
 * file: orch.presets_file, else presets.yaml in directory 'base' (NULL: the
 * working directory) when c->source is set and that file exists. */
enum brg_err config_orch_finish(struct config *c, const char *base, struct brg_error *err);

/* 1..CONFIG_ID_MAX bytes, no spaces, control characters or commas. */
bool config_id_valid(const char *s);

/* 1..CONFIG_PRESET_NAME_MAX of A-Z a-z 0-9 . _ - */
bool config_preset_name_valid(const char *s);

/* Replaces *at with a copy of s.  Errors: BRG_E_NOMEM (*at untouched). */
enum brg_err config_str_set(char **at, const char *s);

/* A NULL-terminated copy of v[0..n); NULL when out of memory. */
char **config_strs_dup(const char *const *v, size_t n);

/* ---- presets.c -------------------------------------------------------- */

/* Frees o->presets and empties it. */
void config_presets_free(struct orch_config *o);

/* Whether a client's model id is served: see config_check_presets(). */
bool config_model_configured(const struct config *c, const char *id);

/* Sets is_usable / missing of every preset.  Errors: BRG_E_NOMEM. */
enum brg_err config_presets_mark(struct config *c);

/* ---- config.c --------------------------------------------------------- */

/*
 * The whole file at 'path', NUL-terminated (*out is the caller's).  Errors:
 * BRG_E_CONFIG "cannot read PATH: reason" (also when larger than 16 MiB),
 * BRG_E_NOMEM.
 */
enum brg_err config_read_file(const char *path, char **out, size_t *out_len, struct brg_error *err);

/* The value of NAME in an environ-style array, or NULL; an empty value
 * counts as unset when 'is_empty_unset'. */
const char *config_env_get(char *const *envp, const char *name, bool is_empty_unset);

/* Frees v[0..n) and v; NULL v does nothing. */
void config_strs_free(char **v, size_t n);

/* Whether s is among v[0..n). */
bool config_names_has(char *const *v, size_t n, const char *s);

/* Appends a copy of s to (*v, *n), keeping *v NULL-terminated.  Errors:
 * BRG_E_NOMEM with 'err' set. */
enum brg_err config_names_push(char ***v, size_t *n, const char *s, struct brg_error *err);

/* Appends 'id' to c->preload unless it is there already; c->preload must
 * have room.  Errors: BRG_E_NOMEM (no message set). */
enum brg_err config_preload_add(struct config *c, const char *id, bool *is_added);

/* "a, b, c" of the configured model ids into buf, for messages. */
void config_model_ids(const struct config *c, char *buf, size_t len);

/*
 * 'rel' made absolute against directory 'base' (NULL: the working
 * directory; relative: against the working directory too), canonical when
 * it exists.  Errors: BRG_E_NOMEM (no message set).
 */
enum brg_err config_path_resolve(const char *base, const char *rel, char **out);

#endif
