/*
 * config.c — reads config/models.yaml and the INFERENCE_* overrides into a
 * struct config; see config.h for the file format and precedence.
 *
 * The file is loaded with libyaml's document API (yaml_parser_load), which
 * gives every node a mark, so every message can name FILE:LINE and the key
 * path ("models.stories260k.slots") of what is wrong.  libyaml resolves no
 * types: every scalar arrives as text, and this file decides what a valid
 * integer, string or null is (an integer is a plain, unquoted scalar of
 * decimal digits with an optional sign).  Aliases are references to one node
 * in the document API, never copies, so "billion laughs" inputs cost nothing,
 * and the walk below descends a fixed schema, so a cyclic alias cannot loop.
 *
 * The keys each section accepts are tables of struct field (name, kind,
 * range, where it is stored), shared by the YAML reader, the environment
 * reader and the "expected one of ..." messages, so a key's rules are
 * written once.  Unknown keys are errors: a typo must not pass silently.
 *
 * Paths: a relative models_dir (including the default "models") is resolved
 * against the YAML file's directory, INFERENCE_MODELS_DIR against the
 * working directory, both made absolute (and canonical when the directory
 * exists), so that messages show real paths and a later chdir changes
 * nothing.  A model's path is its 'file' when absolute, else models_dir/file.
 */
#include "config/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "core/log.h"

/* A config file larger than this is surely a mistake (a model, a log). */
#define CONFIG_MAX_FILE_BYTES (16u << 20)
#define MODEL_ID_MAX          128

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

#define CFG(member)   offsetof(struct config, member)
#define MODEL(member) offsetof(struct model_config, member)

static const struct field server_fields[] = {
    {"host", F_STR, 0, 0, CFG(host)},
    {"port", F_INT, 0, 65535, CFG(port)}, /* 0: any free port */
    {"models_dir", F_STR, 0, 0, CFG(models_dir)},
    {"log_level", F_LOG_LEVEL, 0, 0, CFG(log_level)},
    {"max_body_bytes", F_SIZE, 1024, 1073741824, CFG(max_body_bytes)},
    {"request_timeout", F_INT, 1, 86400, CFG(request_timeout_s)},
    {"api_key", F_OPT_STR, 0, 0, CFG(api_key)},
};

static const struct field model_fields[] = {
    {"file", F_STR, 0, 0, MODEL(file)},
    {"context_length", F_INT, 16, 1048576, MODEL(context_length)},
    {"threads", F_INT, 0, 1024, MODEL(threads)},
    {"slots", F_INT, 1, 256, MODEL(slots)},
    {"gpu_layers", F_INT, -1, 100000, MODEL(gpu_layers)},
    {"roles", F_ROLES, 0, 0, MODEL(roles)},
    {"chat_template", F_OPT_STR, 0, 0, MODEL(chat_template)},
    {"batch", F_INT, 1, 65536, MODEL(batch)},
    {"max_queue", F_INT, 0, 100000, MODEL(max_queue)},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const root_keys[] = {"server", "preload", "models"};
static const char *const role_names[] = {"primary", "fast", "coder", "thinker", "longctx"};

/* Environment variables that set one server field (spec: Configuration
 * Reference).  INFERENCE_MODELS_DIR, _PRELOAD_MODELS and _GPU_LAYERS have
 * their own rules in apply_env(). */
static const struct {
	const char *var;
	const char *field;
} env_fields[] = {
    {"INFERENCE_HOST", "host"},
    {"INFERENCE_PORT", "port"},
    {"INFERENCE_LOG_LEVEL", "log_level"},
    {"INFERENCE_REQUEST_TIMEOUT", "request_timeout"},
    {"INFERENCE_MAX_BODY_BYTES", "max_body_bytes"},
    {"INFERENCE_API_KEY", "api_key"},
};

/* State of one file being read. */
struct loader {
	const char *name; /* for messages */
	yaml_document_t *doc;
	struct config *c;
	struct brg_error *err;
	int *preload_lines; /* line of each c->preload entry from the file */
};

/* ---- small helpers ---------------------------------------------------- */

static const struct field *field_find(const struct field *fields, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(fields[i].name, name) == 0)
			return &fields[i];
	return NULL;
}

/* "a, b, c" into buf. */
static void join_names(char *buf, size_t len, const char *const *names, size_t n)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

static void join_field_names(char *buf, size_t len, const struct field *fields, size_t n)
{
	const char *names[16];
	for (size_t i = 0; i < n && i < N_OF(names); i++)
		names[i] = fields[i].name;
	join_names(buf, len, names, n < N_OF(names) ? n : N_OF(names));
}

/* What a field accepts, for "expected ..." messages. */
static void describe(const struct field *f, char *buf, size_t len)
{
	switch (f->kind) {
	case F_INT:
	case F_SIZE:
		snprintf(buf, len, "an integer in %lld..%lld", f->lo, f->hi);
		break;
	case F_STR:
		snprintf(buf, len, "a non-empty string");
		break;
	case F_OPT_STR:
		snprintf(buf, len, "a string");
		break;
	case F_LOG_LEVEL:
		snprintf(buf, len, "one of debug, info, warning, error, off");
		break;
	case F_ROLES: {
		char names[128];
		join_names(names, sizeof names, role_names, N_OF(role_names));
		snprintf(buf, len, "a list of roles from %s", names);
		break;
	}
	}
}

/* Decimal integer with an optional sign and nothing else.  *out saturates
 * at the long long limits so that huge values read as out of range. */
static bool parse_integer(const char *s, long long *out)
{
	const char *p = s;
	if (*p == '+' || *p == '-')
		p++;
	if (*p < '0' || *p > '9')
		return false;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (*end != '\0')
		return false;
	*out = v; /* ERANGE leaves LLONG_MIN/MAX: out of range either way */
	return true;
}

/* ---- setting one value ------------------------------------------------ */

/*
 * Parses 'text' for field 'f' and stores it into 'base'.  'is_null': the
 * YAML value was null (or an empty plain scalar).  'is_quoted': it was a
 * quoted scalar, which is a string, never a number.  On BRG_E_CONFIG, 'why'
 * says what is wrong, ending in what was expected.
 */
static enum brg_err field_set(const struct field *f, void *base, const char *text, bool is_null,
                              bool is_quoted, char *why, size_t why_len)
{
	char want[160];
	describe(f, want, sizeof want);
	char *at = (char *)base + f->off;
	long long v;
	switch (f->kind) {
	case F_INT:
	case F_SIZE:
		if (is_null || !parse_integer(text, &v)) {
			snprintf(why, why_len, "'%.64s' is not %s", is_null ? "" : text, want);
			return BRG_E_CONFIG;
		}
		if (is_quoted) {
			snprintf(why, why_len, "'%.64s' is a quoted string, expected %s unquoted",
			         text, want);
			return BRG_E_CONFIG;
		}
		if (v < f->lo || v > f->hi) {
			snprintf(why, why_len, "%.64s is out of range, expected %s", text, want);
			return BRG_E_CONFIG;
		}
		if (f->kind == F_INT)
			*(int *)at = (int)v;
		else
			*(size_t *)at = (size_t)v;
		return BRG_OK;
	case F_LOG_LEVEL: {
		int lvl = is_null ? -1 : log_level_parse(text);
		if (lvl < 0) {
			snprintf(why, why_len, "'%.64s' is not a log level, expected %s",
			         is_null ? "" : text, want);
			return BRG_E_CONFIG;
		}
		*(int *)at = lvl;
		return BRG_OK;
	}
	case F_STR:
	case F_OPT_STR: {
		bool is_empty = is_null || text[0] == '\0';
		if (is_empty && f->kind == F_STR) {
			snprintf(why, why_len, "is empty, expected %s", want);
			return BRG_E_CONFIG;
		}
		char *s = is_empty ? NULL : strdup(text);
		if (!is_empty && !s)
			return BRG_E_NOMEM;
		free(*(char **)at);
		*(char **)at = s;
		return BRG_OK;
	}
	case F_ROLES:
		break;
	}
	snprintf(why, why_len, "cannot be set from text");
	return BRG_E_CONFIG;
}

/* ---- YAML nodes ------------------------------------------------------- */

static size_t node_line(const yaml_node_t *node)
{
	return node->start_mark.line + 1;
}

/* Null: ~, null, Null, NULL or nothing at all, unquoted (YAML 1.1). */
static bool node_is_null(const yaml_node_t *node)
{
	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = (const char *)node->data.scalar.value;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

static const char *node_kind(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return node_is_null(node) ? "nothing" : "a scalar";
	}
}

static const char *scalar(const yaml_node_t *node)
{
	return (const char *)node->data.scalar.value;
}

/* "FILE:LINE: key 'KEY': <why>" as BRG_E_CONFIG. */
__attribute__((format(printf, 4, 5))) static enum brg_err
fail_at(struct loader *ld, const yaml_node_t *node, const char *key, const char *fmt, ...)
{
	char why[BRG_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (key)
		return brg_fail(ld->err, BRG_E_CONFIG, "%s:%zu: key '%.96s': %s", ld->name,
		                node_line(node), key, why);
	return brg_fail(ld->err, BRG_E_CONFIG, "%s:%zu: %s", ld->name, node_line(node), why);
}

static yaml_node_t *node_at(struct loader *ld, int index)
{
	return yaml_document_get_node(ld->doc, index);
}

/* "a.b" into buf, or "b" when 'prefix' is empty. */
static const char *key_path(char *buf, size_t len, const char *prefix, const char *key)
{
	snprintf(buf, len, "%s%s%.64s", prefix, *prefix ? "." : "", key);
	return buf;
}

/*
 * Checks that 'node' is a mapping whose keys are distinct scalars.  'what'
 * names the keys in the duplicate message ("key", "model id").  A null
 * node is accepted as an empty mapping (*is_empty set).
 */
static enum brg_err check_mapping(struct loader *ld, yaml_node_t *node, const char *path,
                                  const char *what, bool *is_empty)
{
	*is_empty = node_is_null(node);
	if (*is_empty)
		return BRG_OK;
	if (node->type != YAML_MAPPING_NODE)
		return fail_at(ld, node, path, "got %s, expected a mapping of keys to values",
		               node_kind(node));
	yaml_node_pair_t *start = node->data.mapping.pairs.start;
	for (yaml_node_pair_t *p = start; p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node_at(ld, p->key);
		if (k->type != YAML_SCALAR_NODE)
			return fail_at(ld, k, path, "got %s as a key, expected a name",
			               node_kind(k));
		for (yaml_node_pair_t *q = start; q < p; q++) {
			yaml_node_t *earlier = node_at(ld, q->key);
			if (strcmp(scalar(earlier), scalar(k)) == 0) {
				char kp[256];
				key_path(kp, sizeof kp, path, scalar(k));
				return fail_at(ld, k, kp,
				               "duplicate %s, first declared at line %zu", what,
				               node_line(earlier));
			}
		}
	}
	return BRG_OK;
}

/* ---- sections --------------------------------------------------------- */

static void strs_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* Which role_names[] entry 'node' names; N_OF(role_names) when none. */
static size_t role_index(const yaml_node_t *node)
{
	size_t r = 0;
	while (node->type == YAML_SCALAR_NODE && r < N_OF(role_names) &&
	       strcmp(scalar(node), role_names[r]) != 0)
		r++;
	return node->type == YAML_SCALAR_NODE ? r : N_OF(role_names);
}

static enum brg_err parse_roles(struct loader *ld, yaml_node_t *node, const char *path,
                                struct model_config *m)
{
	char want[160];
	describe(field_find(model_fields, N_OF(model_fields), "roles"), want, sizeof want);
	if (node->type != YAML_SEQUENCE_NODE)
		return fail_at(ld, node, path, "got %s, expected %s", node_kind(node), want);
	yaml_node_item_t *items = node->data.sequence.items.start;
	size_t n = (size_t)(node->data.sequence.items.top - items);
	bool seen[N_OF(role_names)] = {false};
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *it = node_at(ld, items[i]);
		size_t r = role_index(it);
		if (it->type != YAML_SCALAR_NODE)
			return fail_at(ld, it, path, "got %s in the list, expected %s",
			               node_kind(it), want);
		if (r == N_OF(role_names))
			return fail_at(ld, it, path, "'%.64s' is not a role, expected %s",
			               scalar(it), want);
		if (seen[r])
			return fail_at(ld, it, path, "role '%s' is listed twice", role_names[r]);
		seen[r] = true;
	}
	char **roles = calloc(n + 1, sizeof *roles);
	for (size_t i = 0; roles && i < n; i++) {
		roles[i] = strdup(role_names[role_index(node_at(ld, items[i]))]);
		if (!roles[i]) {
			strs_free(roles, i);
			roles = NULL;
		}
	}
	if (!roles)
		return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	strs_free(m->roles, m->n_roles);
	m->roles = roles;
	m->n_roles = n;
	return BRG_OK;
}

/* Reads the keys of mapping 'node' into 'base' by the table 'fields'. */
static enum brg_err parse_fields(struct loader *ld, yaml_node_t *node, const char *prefix,
                                 const struct field *fields, size_t n_fields, void *base)
{
	bool is_empty;
	enum brg_err e = check_mapping(ld, node, prefix, "key", &is_empty);
	if (e || is_empty)
		return e;
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node_at(ld, p->key), *v = node_at(ld, p->value);
		char path[256], why[BRG_ERR_MSG_MAX - 128], want[160];
		key_path(path, sizeof path, prefix, scalar(k));
		const struct field *f = field_find(fields, n_fields, scalar(k));
		if (!f) {
			join_field_names(want, sizeof want, fields, n_fields);
			return fail_at(ld, k, path, "unknown key, expected one of %s", want);
		}
		if (f->kind == F_ROLES) {
			e = parse_roles(ld, v, path, base);
		} else if (v->type != YAML_SCALAR_NODE) {
			describe(f, want, sizeof want);
			return fail_at(ld, v, path, "got %s, expected %s", node_kind(v), want);
		} else {
			bool is_quoted = v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
			e = field_set(f, base, scalar(v), node_is_null(v), is_quoted, why,
			              sizeof why);
			if (e == BRG_E_CONFIG)
				return fail_at(ld, v, path, "%s", why);
		}
		if (e)
			return e == BRG_E_NOMEM ? brg_fail(ld->err, e, "out of memory") : e;
	}
	return BRG_OK;
}

static bool model_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > MODEL_ID_MAX)
		return false;
	for (const char *p = id; *p; p++) {
		char ch = *p;
		bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		          (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == ':' ||
		          ch == '-';
		if (!ok)
			return false;
	}
	return true;
}

static void model_defaults(struct model_config *m)
{
	m->context_length = 4096;
	m->threads = 0;
	m->slots = 1;
	m->gpu_layers = 0;
	m->batch = 512;
	m->max_queue = 64;
}

static enum brg_err parse_model(struct loader *ld, yaml_node_t *k, yaml_node_t *v,
                                struct model_config *m)
{
	char path[256];
	key_path(path, sizeof path, "models", scalar(k));
	if (!model_id_valid(scalar(k)))
		return fail_at(ld, k, path,
		               "'%.64s' is not a valid model id, expected 1..%d characters from "
		               "A-Z a-z 0-9 . _ : -",
		               scalar(k), MODEL_ID_MAX);
	if (v->type != YAML_MAPPING_NODE)
		return fail_at(ld, v, path, "got %s, expected a mapping with at least 'file'",
		               node_kind(v));
	model_defaults(m);
	m->line = (int)node_line(k);
	m->id = strdup(scalar(k));
	m->roles = calloc(2, sizeof *m->roles);
	if (!m->id || !m->roles || !(m->roles[0] = strdup("primary")))
		return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	m->n_roles = 1;
	enum brg_err e = parse_fields(ld, v, path, model_fields, N_OF(model_fields), m);
	if (e)
		return e;
	if (!m->file) {
		char file_path[300];
		snprintf(file_path, sizeof file_path, "%s.file", path);
		return fail_at(ld, k, file_path,
		               "missing, expected the GGUF file name (relative to models_dir)");
	}
	return BRG_OK;
}

static enum brg_err parse_models(struct loader *ld, yaml_node_t *node)
{
	bool is_empty;
	enum brg_err e = check_mapping(ld, node, "models", "model id", &is_empty);
	if (e || is_empty)
		return e;
	yaml_node_pair_t *pairs = node->data.mapping.pairs.start;
	size_t n = (size_t)(node->data.mapping.pairs.top - pairs);
	struct config *c = ld->c;
	c->models = calloc(n, sizeof *c->models);
	if (!c->models)
		return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	c->n_models = n; /* zeroed entries are safe for config_free() */
	for (size_t i = 0; i < n; i++) {
		e = parse_model(ld, node_at(ld, pairs[i].key), node_at(ld, pairs[i].value),
		                &c->models[i]);
		if (e)
			return e;
	}
	return BRG_OK;
}

/* Appends 'id' to c->preload unless it is there already. */
static enum brg_err preload_add(struct config *c, const char *id, bool *is_added)
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

static enum brg_err parse_preload(struct loader *ld, yaml_node_t *node)
{
	if (node_is_null(node))
		return BRG_OK;
	if (node->type != YAML_SEQUENCE_NODE)
		return fail_at(ld, node, "preload", "got %s, expected a list of model ids",
		               node_kind(node));
	yaml_node_item_t *items = node->data.sequence.items.start;
	size_t n = (size_t)(node->data.sequence.items.top - items);
	struct config *c = ld->c;
	c->preload = calloc(n + 1, sizeof *c->preload);
	ld->preload_lines = calloc(n + 1, sizeof *ld->preload_lines);
	if (!c->preload || !ld->preload_lines)
		return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *it = node_at(ld, items[i]);
		if (it->type != YAML_SCALAR_NODE || node_is_null(it))
			return fail_at(ld, it, "preload", "got %s in the list, expected a model id",
			               node_kind(it));
		bool is_added;
		if (preload_add(c, scalar(it), &is_added))
			return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
		if (is_added)
			ld->preload_lines[c->n_preload - 1] = (int)node_line(it);
	}
	return BRG_OK;
}

/* "a, b, c" of the configured model ids, for messages. */
static void model_ids(const struct config *c, char *buf, size_t len)
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

static enum brg_err parse_root(struct loader *ld, yaml_node_t *root)
{
	bool is_empty;
	if (root->type != YAML_MAPPING_NODE && !node_is_null(root))
		return fail_at(ld, root, NULL,
		               "the top level is %s, expected a mapping with keys server, "
		               "preload, models",
		               node_kind(root));
	enum brg_err e = check_mapping(ld, root, "", "key", &is_empty);
	if (e || is_empty)
		return e;
	yaml_node_pair_t *p;
	for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node_at(ld, p->key), *v = node_at(ld, p->value);
		const char *key = scalar(k);
		if (strcmp(key, "server") == 0) {
			e = parse_fields(ld, v, "server", server_fields, N_OF(server_fields),
			                 ld->c);
		} else if (strcmp(key, "models") == 0) {
			e = parse_models(ld, v);
		} else if (strcmp(key, "preload") == 0) {
			e = parse_preload(ld, v);
		} else {
			char want[64];
			join_names(want, sizeof want, root_keys, N_OF(root_keys));
			e = fail_at(ld, k, key, "unknown key, expected one of %s", want);
		}
		if (e)
			return e;
	}
	/* Checked after the walk: 'preload' may come before 'models'. */
	for (size_t i = 0; i < ld->c->n_preload; i++) {
		if (config_find_model(ld->c, ld->c->preload[i]))
			continue;
		char ids[256];
		model_ids(ld->c, ids, sizeof ids);
		return brg_fail(ld->err, BRG_E_CONFIG,
		                "%s:%d: key 'preload': '%.64s' names no model under 'models', "
		                "expected one of %s",
		                ld->name, ld->preload_lines[i], ld->c->preload[i], ids);
	}
	return BRG_OK;
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
static enum brg_err path_resolve(const char *base, const char *rel, char **out)
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

/* ---- environment ------------------------------------------------------ */

/* The value of NAME in an environ-style array, or NULL. */
static const char *env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (char *const *e = envp; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* INFERENCE_PRELOAD_MODELS=a,b: replaces the file's list; "" means none. */
static enum brg_err env_preload(struct config *c, const char *value, struct brg_error *err)
{
	strs_free(c->preload, c->n_preload);
	c->preload = NULL;
	c->n_preload = 0;
	size_t n = 1;
	for (const char *p = value; *p; p++)
		n += *p == ',';
	c->preload = calloc(n + 1, sizeof *c->preload);
	char *copy = strdup(value);
	enum brg_err e = c->preload && copy ? BRG_OK : BRG_E_NOMEM;
	char *save = NULL;
	for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && !e;
	     tok = strtok_r(NULL, ",", &save)) {
		tok += strspn(tok, " \t");
		size_t len = strlen(tok);
		while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
			tok[--len] = '\0';
		if (len == 0)
			continue;
		if (!config_find_model(c, tok)) {
			char ids[256];
			model_ids(c, ids, sizeof ids);
			e = brg_fail(err, BRG_E_CONFIG,
			             "INFERENCE_PRELOAD_MODELS: '%.64s' names no configured model, "
			             "expected a comma list of %s",
			             tok, ids);
			break;
		}
		bool is_added;
		e = preload_add(c, tok, &is_added);
	}
	free(copy);
	if (e == BRG_E_NOMEM)
		brg_fail(err, e, "out of memory");
	return e;
}

/*
 * Applies the INFERENCE_* variables.  An empty value counts as unset (a
 * compose file's ${VAR} of an unset variable), except for
 * INFERENCE_PRELOAD_MODELS, where "" means "preload nothing".  An empty
 * INFERENCE_API_KEY therefore never turns authentication off.
 */
static enum brg_err apply_env(struct config *c, char *const *envp, struct brg_error *err)
{
	char why[BRG_ERR_MSG_MAX - 64];
	enum brg_err e;
	for (size_t i = 0; i < N_OF(env_fields); i++) {
		const char *v = env_get(envp, env_fields[i].var);
		if (!v || !*v)
			continue;
		const struct field *f =
		    field_find(server_fields, N_OF(server_fields), env_fields[i].field);
		e = field_set(f, c, v, false, false, why, sizeof why);
		if (e)
			return brg_fail(err, e, "%s: %s", env_fields[i].var,
			                e == BRG_E_NOMEM ? "out of memory" : why);
	}
	const char *v = env_get(envp, "INFERENCE_MODELS_DIR");
	if (v && *v) {
		char *dir;
		if (path_resolve(NULL, v, &dir))
			return brg_fail(err, BRG_E_NOMEM, "out of memory");
		free(c->models_dir);
		c->models_dir = dir;
	}
	v = env_get(envp, "INFERENCE_GPU_LAYERS");
	if (v && *v) {
		const struct field *f = field_find(model_fields, N_OF(model_fields), "gpu_layers");
		struct model_config probe = {0};
		if (field_set(f, &probe, v, false, false, why, sizeof why))
			return brg_fail(err, BRG_E_CONFIG, "INFERENCE_GPU_LAYERS: %s", why);
		for (size_t i = 0; i < c->n_models; i++)
			c->models[i].gpu_layers = probe.gpu_layers;
	}
	v = env_get(envp, "INFERENCE_PRELOAD_MODELS");
	if (v && (e = env_preload(c, v, err)))
		return e;
	return BRG_OK;
}

/* ---- loading ---------------------------------------------------------- */

/* A "\0" escape in a quoted scalar would silently cut the C string short. */
static enum brg_err check_no_nul(struct loader *ld)
{
	for (yaml_node_t *n = ld->doc->nodes.start; n < ld->doc->nodes.top; n++)
		if (n->type == YAML_SCALAR_NODE && strlen(scalar(n)) != n->data.scalar.length)
			return fail_at(ld, n, NULL, "a string contains a NUL character (\\0)");
	return BRG_OK;
}

static enum brg_err config_defaults(struct config **out)
{
	struct config *c = calloc(1, sizeof *c);
	if (!c)
		return BRG_E_NOMEM;
	c->host = strdup("127.0.0.1");
	c->port = 8085;
	c->models_dir = strdup("models");
	c->log_level = LOG_INFO;
	c->max_body_bytes = 4u << 20;
	c->request_timeout_s = 120;
	*out = c;
	if (!c->host || !c->models_dir)
		return BRG_E_NOMEM;
	return BRG_OK;
}

/* Parses the YAML text into ld->c. */
static enum brg_err parse_yaml(struct loader *ld, const char *yaml, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	if (!yaml_parser_initialize(&parser))
		return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	enum brg_err e = BRG_OK;
	if (!yaml_parser_load(&parser, &doc)) {
		e = brg_fail(ld->err, BRG_E_CONFIG, "%s:%zu: YAML syntax error: %s%s%s", ld->name,
		             parser.problem_mark.line + 1, parser.problem ? parser.problem : "?",
		             parser.context ? " " : "", parser.context ? parser.context : "");
		goto done;
	}
	ld->doc = &doc;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root)
		e = check_no_nul(ld);
	if (root && !e)
		e = parse_root(ld, root);
	if (!e && root) {
		/* A second document ("---") would be silently ignored otherwise. */
		if (!yaml_parser_load(&parser, &extra)) {
			e = brg_fail(ld->err, BRG_E_CONFIG, "%s:%zu: YAML syntax error: %s",
			             ld->name, parser.problem_mark.line + 1,
			             parser.problem ? parser.problem : "?");
		} else {
			yaml_node_t *r2 = yaml_document_get_root_node(&extra);
			if (r2)
				e = fail_at(ld, r2, NULL,
				            "a second YAML document, expected exactly one");
			yaml_document_delete(&extra);
		}
	}
	ld->doc = NULL;
	yaml_document_delete(&doc);
done:
	yaml_parser_delete(&parser);
	return e;
}

/* The one loading path: 'yaml' NULL means no file. */
static enum brg_err load(const char *name, const char *yaml, size_t len, char *const *envp,
                         struct config **out, struct brg_error *err)
{
	struct config *c = NULL;
	struct loader ld = {.name = name ? name : "<string>", .err = err};
	char *base = NULL, *dir = NULL;
	enum brg_err e = config_defaults(&c);
	if (e)
		goto nomem;
	ld.c = c;
	if (name && !(c->source = strdup(name)))
		goto nomem;
	if (yaml) {
		if ((e = parse_yaml(&ld, yaml, len)))
			goto fail;
		base = dir_of(name);
		if (name && strchr(name, '/') && !base)
			goto nomem;
	}
	/* The file's (or the default) models_dir is relative to the file. */
	if (path_resolve(base, c->models_dir, &dir))
		goto nomem;
	free(c->models_dir);
	c->models_dir = dir;
	if ((e = apply_env(c, envp, err)))
		goto fail;
	if (resolve_model_paths(c))
		goto nomem;
	free(base);
	free(ld.preload_lines);
	*out = c;
	return BRG_OK;
nomem:
	e = brg_fail(err, BRG_E_NOMEM, "out of memory reading the configuration");
fail:
	free(base);
	free(ld.preload_lines);
	config_free(c);
	*out = NULL;
	return e;
}

/* The whole file, NUL-terminated; *out is the caller's. */
static enum brg_err read_file(const char *path, char **out, size_t *out_len, struct brg_error *err)
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
	enum brg_err e = read_file(path, &yaml, &len, err);
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
		strs_free(m->roles, m->n_roles);
		free(m->chat_template);
	}
	free(c->models);
	strs_free(c->preload, c->n_preload);
	free(c->source);
	free(c->host);
	free(c->models_dir);
	free(c->api_key);
	free(c);
}

const struct model_config *config_find_model(const struct config *c, const char *id)
{
	for (size_t i = 0; c && id && i < c->n_models; i++)
		if (c->models[i].id && strcmp(c->models[i].id, id) == 0)
			return &c->models[i];
	return NULL;
}
