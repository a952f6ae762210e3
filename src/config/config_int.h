/*
 * config_int.h — private to src/config/: the key tables and the functions
 * the config files share.  Nothing outside src/config/ includes this.
 *
 * Files:
 *   config.c  the public API: defaults, reading the file, path resolution,
 *             config_load/config_load_string/config_free/config_find_model
 *   yaml.c    the libyaml document walk: root, server, models, preload
 *   fields.c  the per-section key tables and setting one typed value from
 *             text, shared by the YAML and environment readers
 *   env.c     the INFERENCE_* environment overrides
 *
 * Order of a load (config.c): defaults, then the YAML file (yaml.c), then
 * models_dir resolved against the file, then the environment (env.c), then
 * each model's path.
 */
#ifndef BRG_CONFIG_INT_H
#define BRG_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

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
};

struct field {
	const char *name;
	enum field_kind kind;
	long long lo, hi;
	size_t off; /* into struct config or struct model_config */
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
 * says what is wrong, ending in what was expected.  F_ROLES cannot be set
 * from text (BRG_E_CONFIG).  Out of memory: BRG_E_NOMEM, 'why' untouched.
 */
enum brg_err config_field_set(const struct field *f, void *base, const char *text, bool is_null,
                              bool is_quoted, char *why, size_t why_len);

/* ---- yaml.c ----------------------------------------------------------- */

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

/* ---- config.c --------------------------------------------------------- */

/* ---- providers.c -------------------------------------------------------- */

/* Frees c->providers, the chain and the primary provider's name. */
void config_providers_free(struct config *c);

/* Frees v[0..n) and v; NULL v does nothing. */
void config_strs_free(char **v, size_t n);

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
