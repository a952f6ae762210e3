/*
 * yaml.c — walks models.yaml, as a libyaml document, into a struct config:
 * the root keys, 'server', 'models' and 'preload' ('orchestration' is read
 * by orch.c).  The only libyaml user.
 *
 * The file is loaded with libyaml's document API (yaml_parser_load), which
 * gives every node a mark, so every message can name FILE:LINE and the key
 * path ("models.stories260k.slots") of what is wrong.  libyaml resolves no
 * types: every scalar arrives as text, typed by the field tables of
 * fields.c.  Aliases are references to one node in the document API, never
 * copies, so "billion laughs" inputs cost nothing, and the walk below
 * descends a fixed schema, so a cyclic alias cannot loop.
 *
 * Unknown keys are errors: a typo must not pass silently.
 *
 * The document parse and the table-driven mapping reader are shared with
 * providers.c (config_yaml_parse, config_yaml_fields).
 */
#include "config/config_int.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#define MODEL_ID_MAX 128

static const char *const root_keys[] = {"server", "preload", "models", "orchestration"};

/* ---- YAML nodes ------------------------------------------------------- */

static size_t node_line(const yaml_node_t *node)
{
	return node->start_mark.line + 1;
}

/* Null: ~, null, Null, NULL or nothing at all, unquoted (YAML 1.1). */
bool config_yaml_is_null(const yaml_node_t *node)
{
	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = (const char *)node->data.scalar.value;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

const char *config_yaml_kind(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return config_yaml_is_null(node) ? "nothing" : "a scalar";
	}
}

static const char *scalar(const yaml_node_t *node)
{
	return (const char *)node->data.scalar.value;
}

enum brg_err config_yaml_fail(struct loader *ld, const yaml_node_t *node, const char *key,
                              const char *fmt, ...)
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
enum brg_err config_yaml_check_mapping(struct loader *ld, yaml_node_t *node, const char *path,
                                       const char *what, bool *is_empty)
{
	*is_empty = config_yaml_is_null(node);
	if (*is_empty)
		return BRG_OK;
	if (node->type != YAML_MAPPING_NODE)
		return config_yaml_fail(ld, node, path,
		                        "got %s, expected a mapping of keys to values",
		                        config_yaml_kind(node));
	yaml_node_pair_t *start = node->data.mapping.pairs.start;
	for (yaml_node_pair_t *p = start; p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node_at(ld, p->key);
		if (k->type != YAML_SCALAR_NODE)
			return config_yaml_fail(ld, k, path, "got %s as a key, expected a name",
			                        config_yaml_kind(k));
		for (yaml_node_pair_t *q = start; q < p; q++) {
			yaml_node_t *earlier = node_at(ld, q->key);
			if (strcmp(scalar(earlier), scalar(k)) == 0) {
				char kp[256];
				key_path(kp, sizeof kp, path, scalar(k));
				return config_yaml_fail(ld, k, kp,
				                        "duplicate %s, first declared at line %zu",
				                        what, node_line(earlier));
			}
		}
	}
	return BRG_OK;
}

/* ---- sections --------------------------------------------------------- */

/* Which config_role_names[] entry 'node' names; CONFIG_N_ROLES when none. */
static size_t role_index(const yaml_node_t *node)
{
	size_t r = 0;
	while (node->type == YAML_SCALAR_NODE && r < CONFIG_N_ROLES &&
	       strcmp(scalar(node), config_role_names[r]) != 0)
		r++;
	return node->type == YAML_SCALAR_NODE ? r : CONFIG_N_ROLES;
}

static enum brg_err parse_roles(struct loader *ld, yaml_node_t *node, const char *path,
                                struct model_config *m)
{
	char want[160];
	config_describe(config_field_find(config_model_fields, config_n_model_fields, "roles"),
	                want, sizeof want);
	if (node->type != YAML_SEQUENCE_NODE)
		return config_yaml_fail(ld, node, path, "got %s, expected %s",
		                        config_yaml_kind(node), want);
	yaml_node_item_t *items = node->data.sequence.items.start;
	size_t n = (size_t)(node->data.sequence.items.top - items);
	bool seen[CONFIG_N_ROLES] = {false};
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *it = node_at(ld, items[i]);
		size_t r = role_index(it);
		if (it->type != YAML_SCALAR_NODE)
			return config_yaml_fail(ld, it, path, "got %s in the list, expected %s",
			                        config_yaml_kind(it), want);
		if (r == CONFIG_N_ROLES)
			return config_yaml_fail(ld, it, path, "'%.64s' is not a role, expected %s",
			                        scalar(it), want);
		if (seen[r])
			return config_yaml_fail(ld, it, path, "role '%s' is listed twice",
			                        config_role_names[r]);
		seen[r] = true;
	}
	char **roles = calloc(n + 1, sizeof *roles);
	for (size_t i = 0; roles && i < n; i++) {
		roles[i] = strdup(config_role_names[role_index(node_at(ld, items[i]))]);
		if (!roles[i]) {
			config_strs_free(roles, i);
			roles = NULL;
		}
	}
	if (!roles)
		return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	config_strs_free(m->roles, m->n_roles);
	m->roles = roles;
	m->n_roles = n;
	return BRG_OK;
}

/* F_NAMES: a list of distinct non-empty scalars (null: an empty list). */
static enum brg_err parse_names(struct loader *ld, yaml_node_t *node, const char *path,
                                const struct field *f, void *base)
{
	char want[160];
	config_describe(f, want, sizeof want);
	if (node->type != YAML_SEQUENCE_NODE && !config_yaml_is_null(node))
		return config_yaml_fail(ld, node, path, "got %s, expected %s",
		                        config_yaml_kind(node), want);
	yaml_node_item_t *items =
	    node->type == YAML_SEQUENCE_NODE ? node->data.sequence.items.start : NULL;
	size_t n = items ? (size_t)(node->data.sequence.items.top - items) : 0;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *it = node_at(ld, items[i]);
		if (it->type != YAML_SCALAR_NODE || !*scalar(it) || config_yaml_is_null(it))
			return config_yaml_fail(ld, it, path, "got %s in the list, expected %s",
			                        config_yaml_kind(it), want);
		for (size_t j = 0; j < i; j++)
			if (strcmp(scalar(node_at(ld, items[j])), scalar(it)) == 0)
				return config_yaml_fail(ld, it, path, "'%.64s' is listed twice",
				                        scalar(it));
	}
	char **v = calloc(n + 1, sizeof *v);
	for (size_t i = 0; v && i < n; i++)
		if (!(v[i] = strdup(scalar(node_at(ld, items[i]))))) {
			config_strs_free(v, i);
			v = NULL;
		}
	if (!v)
		return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	char ***at = (char ***)((char *)base + f->off);
	config_strs_free(*at, *CONFIG_COUNT_AT(base, f));
	*at = v;
	*CONFIG_COUNT_AT(base, f) = n;
	return BRG_OK;
}

/* An HTTP header name: an RFC 9110 token. */
static bool header_name_valid(const char *s)
{
	return *s && s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	                         "!#$%&'*+-.^_`|~")] == '\0';
}

/* F_HEADERS: a mapping of header names to one-line values.  Values may be
 * secrets (Authorization), so messages never repeat them. */
static enum brg_err parse_headers(struct loader *ld, yaml_node_t *node, const char *path,
                                  const struct field *f, void *base)
{
	bool is_empty;
	enum brg_err e = config_yaml_check_mapping(ld, node, path, "header", &is_empty);
	if (e || is_empty)
		return e;
	char ***at = (char ***)((char *)base + f->off);
	size_t *n = CONFIG_COUNT_AT(base, f);
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node_at(ld, p->key), *v = node_at(ld, p->value);
		char kp[352];
		key_path(kp, sizeof kp, path, scalar(k));
		if (!header_name_valid(scalar(k)))
			return config_yaml_fail(ld, k, kp,
			                        "not a header name (letters, digits "
			                        "and !#$%%&'*+-.^_`|~)");
		if (v->type != YAML_SCALAR_NODE || config_yaml_is_null(v) ||
		    strpbrk(scalar(v), "\r\n"))
			return config_yaml_fail(ld, v, kp, "got %s, expected a one-line value",
			                        v->type == YAML_SCALAR_NODE &&
			                                !config_yaml_is_null(v)
			                            ? "several lines"
			                            : config_yaml_kind(v));
		char **nv = realloc(*at, (*n + 2) * sizeof *nv);
		if (nv)
			*at = nv;
		if (!nv || asprintf(&nv[*n], "%s: %s", scalar(k), scalar(v)) < 0)
			return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
		nv[++*n] = NULL;
	}
	return BRG_OK;
}

/* One key of a table-driven mapping. */
static enum brg_err parse_field(struct loader *ld, const struct field *f, yaml_node_t *v,
                                const char *path, void *base)
{
	char why[BRG_ERR_MSG_MAX - 128], want[160];
	enum brg_err e;
	if (f->kind == F_ROLES)
		return parse_roles(ld, v, path, base);
	if (f->kind == F_NAMES)
		return parse_names(ld, v, path, f, base);
	if (f->kind == F_HEADERS)
		return parse_headers(ld, v, path, f, base);
	if (v->type != YAML_SCALAR_NODE) {
		config_describe(f, want, sizeof want);
		return config_yaml_fail(ld, v, path, "got %s, expected %s", config_yaml_kind(v),
		                        want);
	}
	bool is_quoted = v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
	e = config_field_set(f, base, scalar(v), config_yaml_is_null(v), is_quoted, why,
	                     sizeof why);
	if (e == BRG_E_CONFIG)
		return config_yaml_fail(ld, v, path, "%s", why);
	return e ? brg_fail(ld->err, e, "out of memory") : BRG_OK;
}

enum brg_err config_yaml_fields(struct loader *ld, yaml_node_t *node, const char *prefix,
                                const struct field *fields, size_t n_fields, void *base)
{
	bool is_empty;
	enum brg_err e = config_yaml_check_mapping(ld, node, prefix, "key", &is_empty);
	if (e || is_empty)
		return e;
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node_at(ld, p->key), *v = node_at(ld, p->value);
		char path[256], want[512];
		key_path(path, sizeof path, prefix, scalar(k));
		const struct field *f = config_field_find(fields, n_fields, scalar(k));
		if (!f) {
			config_join_field_names(want, sizeof want, fields, n_fields);
			return config_yaml_fail(ld, k, path, "unknown key, expected one of %s",
			                        want);
		}
		if ((e = parse_field(ld, f, v, path, base)))
			return e;
	}
	return BRG_OK;
}

yaml_node_t *config_yaml_get(struct loader *ld, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node_at(ld, p->key);
		if (k->type == YAML_SCALAR_NODE && strcmp(scalar(k), key) == 0)
			return node_at(ld, p->value);
	}
	return NULL;
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
	m->pooling = -1;
	m->prefix_cache = true;
	m->prefill_helper = true;
}

static enum brg_err parse_model(struct loader *ld, yaml_node_t *k, yaml_node_t *v,
                                struct model_config *m)
{
	char path[256];
	key_path(path, sizeof path, "models", scalar(k));
	if (!model_id_valid(scalar(k)))
		return config_yaml_fail(
		    ld, k, path,
		    "'%.64s' is not a valid model id, expected 1..%d characters from "
		    "A-Z a-z 0-9 . _ : -",
		    scalar(k), MODEL_ID_MAX);
	if (v->type != YAML_MAPPING_NODE)
		return config_yaml_fail(ld, v, path,
		                        "got %s, expected a mapping with at least 'file'",
		                        config_yaml_kind(v));
	model_defaults(m);
	m->line = (int)node_line(k);
	m->id = strdup(scalar(k));
	m->roles = calloc(2, sizeof *m->roles);
	if (!m->id || !m->roles || !(m->roles[0] = strdup("primary")))
		return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	m->n_roles = 1;
	enum brg_err e =
	    config_yaml_fields(ld, v, path, config_model_fields, config_n_model_fields, m);
	if (e)
		return e;
	if (!m->file) {
		char file_path[300];
		snprintf(file_path, sizeof file_path, "%s.file", path);
		return config_yaml_fail(
		    ld, k, file_path,
		    "missing, expected the GGUF file name (relative to models_dir)");
	}
	long long parts = (long long)m->budget_system + m->budget_trajectory + m->budget_handoff +
	                  m->budget_user_query;
	if (parts >= m->context_length)
		return config_yaml_fail(
		    ld, k, path,
		    "budget_system + budget_trajectory + budget_handoff + "
		    "budget_user_query = %lld tokens leave nothing to generate in "
		    "context_length %d",
		    parts, m->context_length);
	return BRG_OK;
}

static enum brg_err parse_models(struct loader *ld, yaml_node_t *node)
{
	bool is_empty;
	enum brg_err e = config_yaml_check_mapping(ld, node, "models", "model id", &is_empty);
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

static enum brg_err parse_preload(struct loader *ld, yaml_node_t *node)
{
	if (config_yaml_is_null(node))
		return BRG_OK;
	if (node->type != YAML_SEQUENCE_NODE)
		return config_yaml_fail(ld, node, "preload", "got %s, expected a list of model ids",
		                        config_yaml_kind(node));
	yaml_node_item_t *items = node->data.sequence.items.start;
	size_t n = (size_t)(node->data.sequence.items.top - items);
	struct config *c = ld->c;
	c->preload = calloc(n + 1, sizeof *c->preload);
	ld->preload_lines = calloc(n + 1, sizeof *ld->preload_lines);
	if (!c->preload || !ld->preload_lines)
		return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *it = node_at(ld, items[i]);
		if (it->type != YAML_SCALAR_NODE || config_yaml_is_null(it))
			return config_yaml_fail(ld, it, "preload",
			                        "got %s in the list, expected a model id",
			                        config_yaml_kind(it));
		bool is_added;
		if (config_preload_add(c, scalar(it), &is_added))
			return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
		if (is_added)
			ld->preload_lines[c->n_preload - 1] = (int)node_line(it);
	}
	return BRG_OK;
}

static enum brg_err parse_root(struct loader *ld, yaml_node_t *root)
{
	bool is_empty;
	if (root->type != YAML_MAPPING_NODE && !config_yaml_is_null(root))
		return config_yaml_fail(ld, root, NULL,
		                        "the top level is %s, expected a mapping with keys server, "
		                        "preload, models, orchestration",
		                        config_yaml_kind(root));
	enum brg_err e = config_yaml_check_mapping(ld, root, "", "key", &is_empty);
	if (e || is_empty)
		return e;
	yaml_node_pair_t *p;
	for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node_at(ld, p->key), *v = node_at(ld, p->value);
		const char *key = scalar(k);
		if (strcmp(key, "server") == 0) {
			e = config_yaml_fields(ld, v, "server", config_server_fields,
			                       config_n_server_fields, ld->c);
		} else if (strcmp(key, "models") == 0) {
			e = parse_models(ld, v);
		} else if (strcmp(key, "preload") == 0) {
			e = parse_preload(ld, v);
		} else if (strcmp(key, "orchestration") == 0) {
			e = config_orch_yaml(ld, v);
		} else {
			char want[64];
			config_join_names(want, sizeof want, root_keys, N_OF(root_keys));
			e = config_yaml_fail(ld, k, key, "unknown key, expected one of %s", want);
		}
		if (e)
			return e;
	}
	/* Checked after the walk: 'preload' may come before 'models'. */
	for (size_t i = 0; i < ld->c->n_preload; i++) {
		if (config_find_model(ld->c, ld->c->preload[i]))
			continue;
		char ids[256];
		config_model_ids(ld->c, ids, sizeof ids);
		return brg_fail(ld->err, BRG_E_CONFIG,
		                "%s:%d: key 'preload': '%.64s' names no model under 'models', "
		                "expected one of %s",
		                ld->name, ld->preload_lines[i], ld->c->preload[i], ids);
	}
	return BRG_OK;
}

/* ---- loading ---------------------------------------------------------- */

/* A "\0" escape in a quoted scalar would silently cut the C string short. */
static enum brg_err check_no_nul(struct loader *ld)
{
	for (yaml_node_t *n = ld->doc->nodes.start; n < ld->doc->nodes.top; n++)
		if (n->type == YAML_SCALAR_NODE && strlen(scalar(n)) != n->data.scalar.length)
			return config_yaml_fail(ld, n, NULL,
			                        "a string contains a NUL character (\\0)");
	return BRG_OK;
}

enum brg_err config_yaml_parse(struct loader *ld, const char *yaml, size_t len,
                               enum brg_err (*walk)(struct loader *ld, yaml_node_t *root))
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
		e = walk(ld, root);
	if (!e && root) {
		/* A second document ("---") would be silently ignored otherwise. */
		if (!yaml_parser_load(&parser, &extra)) {
			e = brg_fail(ld->err, BRG_E_CONFIG, "%s:%zu: YAML syntax error: %s",
			             ld->name, parser.problem_mark.line + 1,
			             parser.problem ? parser.problem : "?");
		} else {
			yaml_node_t *r2 = yaml_document_get_root_node(&extra);
			if (r2)
				e = config_yaml_fail(
				    ld, r2, NULL, "a second YAML document, expected exactly one");
			yaml_document_delete(&extra);
		}
	}
	ld->doc = NULL;
	yaml_document_delete(&doc);
done:
	yaml_parser_delete(&parser);
	return e;
}

enum brg_err config_parse_yaml(struct config *c, const char *name, const char *yaml, size_t len,
                               struct brg_error *err)
{
	struct loader ld = {.name = name, .c = c, .err = err};
	enum brg_err e = config_yaml_parse(&ld, yaml, len, parse_root);
	free(ld.preload_lines);
	return e;
}
