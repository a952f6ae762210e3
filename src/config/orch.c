/*
 * orch.c — the orchestration part of the configuration (spec: Configuration
 * Reference → Orchestration, Model Role Mapping): the models.yaml
 * 'orchestration:' section, the INFERENCE_* variables that override it,
 * INFERENCE_MODEL_ROLES, finding the presets file (presets.c reads it), and
 * the checks that need the remote providers too (config_check_presets, run
 * by main.c after config_load_providers).
 *
 * A setting has one row in 'keys' below: its YAML key, its variable, its
 * kind and range, where it lives in struct orch_config.  The YAML reader
 * and the variable reader both go through set_text()/set_list(), so a
 * setting's rules and messages are written once.
 *
 * Names that may live on a remote provider (the pool, the reconcile and
 * synthesis models, a preset's members) cannot be checked while models.yaml
 * is read: the providers come later.  They are checked in
 * config_check_presets(), which says where each one was set.
 */
#include "config/config_int.h"
#include "core/str.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#define MAX_LIST 64 /* pool entries, INFERENCE_MODEL_ROLES entries */

static const char *const modes[] = {"single",   "critique", "debate",
                                    "ensemble", "pipeline", "self_consistency"};
static const char *const reducers[] = {"weighted_consensus", "majority_vote", "highest_confidence"};
static const char *const disagreement[] = {"error", "best"};
static const char *const stages[] = {"draft", "refine", "validate"};

enum key_kind {
	K_INT,    /* int in lo..hi */
	K_FRAC,   /* double in 0..1 */
	K_WORD,   /* char *: one of words, stored as written there */
	K_BEST,   /* bool: "best" (true) or "error" */
	K_NAME,   /* char *: a role or a model id */
	K_PRESET, /* char *: a preset name */
	K_PATH,   /* char *: a file; relative to the YAML file or the working directory */
	K_STAGES, /* char ** + count: pipeline stages */
	K_POOL,   /* char ** + count: model ids; none: every models.yaml model */
};

#define ORCH(m)  offsetof(struct orch_config, m)
#define WORDS(w) w, N_OF(w)

static const struct key {
	const char *key; /* under 'orchestration:' */
	const char *var;
	enum key_kind kind;
	int lo, hi;
	size_t off;
	const char *const *words;
	size_t n_words;
	size_t line_off; /* where its line is kept; 0: not kept */
} keys[] = {
    {"mode", "INFERENCE_ORCHESTRATION_MODE", K_WORD, 0, 0, ORCH(mode), WORDS(modes), 0},
    {"critique_max_rounds", "INFERENCE_CRITIQUE_MAX_ROUNDS", K_INT, 1, 10,
     ORCH(critique_max_rounds), NULL, 0, 0},
    {"critique_threshold", "INFERENCE_CRITIQUE_THRESHOLD", K_FRAC, 0, 0, ORCH(critique_threshold),
     NULL, 0, 0},
    {"debate_max_rounds", "INFERENCE_DEBATE_MAX_ROUNDS", K_INT, 1, 10, ORCH(debate_max_rounds),
     NULL, 0, 0},
    {"debate_reconcile_model", "INFERENCE_DEBATE_RECONCILE_MODEL", K_NAME, 0, 0,
     ORCH(debate_reconcile), NULL, 0, ORCH(reconcile_line)},
    {"ensemble_min_agreement", "INFERENCE_ENSEMBLE_MIN_AGREEMENT", K_FRAC, 0, 0,
     ORCH(ensemble_min_agreement), NULL, 0, 0},
    {"ensemble_synthesis_model", "INFERENCE_ENSEMBLE_SYNTHESIS_MODEL", K_NAME, 0, 0,
     ORCH(ensemble_synthesis), NULL, 0, ORCH(synthesis_line)},
    {"ensemble_reducer", "INFERENCE_ENSEMBLE_REDUCER", K_WORD, 0, 0, ORCH(ensemble_reducer),
     WORDS(reducers), 0},
    {"ensemble_on_disagreement", "INFERENCE_ENSEMBLE_ON_DISAGREEMENT", K_BEST, 0, 0,
     ORCH(ensemble_best_on_disagreement), WORDS(disagreement), 0},
    {"pipeline_stages", "INFERENCE_PIPELINE_STAGES", K_STAGES, 1, 3, ORCH(pipeline_stages),
     WORDS(stages), 0},
    {"self_consistency_samples", "INFERENCE_SELF_CONSISTENCY_SAMPLES", K_INT, 2, 16,
     ORCH(self_consistency_samples), NULL, 0, 0},
    {"models", "INFERENCE_ORCHESTRATION_MODELS", K_POOL, 0, MAX_LIST, ORCH(pool), NULL, 0,
     ORCH(pool_line)},
    {"preset", "INFERENCE_CONFIG", K_PRESET, 0, 0, ORCH(preset), NULL, 0, ORCH(preset_line)},
    {"presets_file", "INFERENCE_PRESETS_FILE", K_PATH, 0, 0, ORCH(presets_file), NULL, 0, 0},
};

_Static_assert(ORCH(n_pipeline_stages) == ORCH(pipeline_stages) + sizeof(char **),
               "n_pipeline_stages must follow pipeline_stages");
_Static_assert(ORCH(n_pool) == ORCH(pool) + sizeof(char **), "n_pool must follow pool");

/* ---- small helpers ---------------------------------------------------- */

/* A model id as a client writes it: 1..255 bytes, no spaces, control
 * characters or commas (lists are comma-separated). */
bool config_id_valid(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
		if (*p <= ' ' || *p == 0x7f || *p == ',')
			return false;
	return n > 0 && n <= CONFIG_ID_MAX;
}

bool config_preset_name_valid(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n <= CONFIG_PRESET_NAME_MAX &&
	       s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")] ==
	           '\0';
}

enum brg_err config_str_set(char **at, const char *s)
{
	char *copy = strdup(s);
	if (!copy)
		return BRG_E_NOMEM;
	free(*at);
	*at = copy;
	return BRG_OK;
}

/* A copy of v[0..n), NULL-terminated; NULL on out of memory. */
char **config_strs_dup(const char *const *v, size_t n)
{
	char **out = calloc(n + 1, sizeof *out);
	for (size_t i = 0; out && i < n; i++)
		if (!(out[i] = strdup(v[i]))) {
			config_strs_free(out, i);
			return NULL;
		}
	return out;
}

static void describe(const struct key *k, bool is_yaml, char *buf, size_t len)
{
	char words[128];
	if (k->words)
		config_join_names(words, sizeof words, k->words, k->n_words);
	switch (k->kind) {
	case K_INT:
		snprintf(buf, len, "an integer in %d..%d", k->lo, k->hi);
		break;
	case K_FRAC:
		snprintf(buf, len, "a number in 0..1");
		break;
	case K_WORD:
	case K_BEST:
		snprintf(buf, len, "one of %s", words);
		break;
	case K_NAME:
		snprintf(buf, len, "a role or a model id (no spaces or commas)");
		break;
	case K_PRESET:
		snprintf(buf, len, "a preset name (1..%d of A-Z a-z 0-9 . _ -)",
		         CONFIG_PRESET_NAME_MAX);
		break;
	case K_PATH:
		snprintf(buf, len, "a file path");
		break;
	case K_STAGES:
		snprintf(buf, len, "%s of 1..3 distinct stages from %s, in that order",
		         is_yaml ? "a list" : "a comma list", words);
		break;
	case K_POOL:
		snprintf(buf, len, "%s of distinct model ids", is_yaml ? "a list" : "a comma list");
		break;
	}
}

/* ---- one setting ------------------------------------------------------ */

static enum brg_err set_frac(double *at, const char *text, bool is_null, bool is_quoted,
                             const char *want, char *why, size_t len)
{
	char *end = NULL;
	double v =
	    is_null || !*text || text[strspn(text, "0123456789.+-eE")] ? NAN : strtod(text, &end);
	if (isnan(v) || !end || *end) {
		snprintf(why, len, "'%.64s' is not %s", is_null ? "" : text, want);
		return BRG_E_CONFIG;
	}
	if (is_quoted) {
		snprintf(why, len, "'%.64s' is a quoted string, expected %s unquoted", text, want);
		return BRG_E_CONFIG;
	}
	if (!(v >= 0.0 && v <= 1.0)) {
		snprintf(why, len, "%.64s is out of range, expected %s", text, want);
		return BRG_E_CONFIG;
	}
	*at = v;
	return BRG_OK;
}

/* Sets a scalar setting from text.  BRG_E_CONFIG with 'why', or
 * BRG_E_NOMEM. */
static enum brg_err set_text(const struct key *k, struct orch_config *o, const char *text,
                             bool is_null, bool is_quoted, bool is_yaml, char *why, size_t len)
{
	char want[160];
	describe(k, is_yaml, want, sizeof want);
	char *at = (char *)o + k->off;
	if (k->kind == K_INT) {
		struct field f = {k->key, F_INT, k->lo, k->hi, k->off};
		return config_field_set(&f, o, text, is_null, is_quoted, why, len);
	}
	if (k->kind == K_FRAC)
		return set_frac((double *)at, text, is_null, is_quoted, want, why, len);
	int w = k->words && !is_null ? config_word_find(text, k->words, k->n_words) : -1;
	bool is_ok = k->kind == K_WORD || k->kind == K_BEST ? w >= 0
	             : is_null                              ? false
	             : k->kind == K_NAME                    ? config_id_valid(text)
	             : k->kind == K_PRESET                  ? config_preset_name_valid(text)
	                                                    : text[0] != '\0';
	if (!is_ok) {
		snprintf(why, len, "'%.64s' is not %s", is_null ? "" : text, want);
		return BRG_E_CONFIG;
	}
	if (k->kind == K_BEST) {
		*(bool *)at = w == 1;
		return BRG_OK;
	}
	return config_str_set((char **)at, k->kind == K_WORD ? k->words[w] : text);
}

/* Sets a list setting from items[0..n). */
static enum brg_err set_list(const struct key *k, struct orch_config *o, const char *const *items,
                             size_t n, bool is_yaml, char *why, size_t len)
{
	char want[160];
	describe(k, is_yaml, want, sizeof want);
	const char *canon[MAX_LIST];
	if ((k->kind == K_STAGES && (n < 1 || n > 3)) || n > MAX_LIST) {
		snprintf(why, len, "%zu entries, expected %s", n, want);
		return BRG_E_CONFIG;
	}
	for (size_t i = 0; i < n; i++) {
		int w = k->kind == K_STAGES ? config_word_find(items[i], stages, N_OF(stages)) : 0;
		int before = i && k->kind == K_STAGES
		                 ? config_word_find(items[i - 1], stages, N_OF(stages))
		                 : -1;
		if (w < 0 || (k->kind == K_POOL && !config_id_valid(items[i]))) {
			snprintf(why, len, "'%.64s' is not %s", items[i],
			         k->kind == K_STAGES ? "a stage" : "a model id");
			return BRG_E_CONFIG;
		}
		if (w <= before) {
			snprintf(why, len, "'%.64s' comes after '%s', expected %s", items[i],
			         stages[before], want);
			return BRG_E_CONFIG;
		}
		if (k->kind == K_POOL && config_names_has((char *const *)items, i, items[i])) {
			snprintf(why, len, "'%.64s' is listed twice", items[i]);
			return BRG_E_CONFIG;
		}
		canon[i] = k->kind == K_STAGES ? stages[w] : items[i];
	}
	char **v = config_strs_dup(canon, n);
	if (!v)
		return BRG_E_NOMEM;
	char ***at = (char ***)((char *)o + k->off);
	size_t *count = (size_t *)((char *)o + k->off + sizeof(char **));
	config_strs_free(*at, *count);
	*at = v;
	*count = n;
	return BRG_OK;
}

/* ---- defaults and freeing --------------------------------------------- */

enum brg_err config_orch_defaults(struct orch_config *o)
{
	*o = (struct orch_config){.critique_max_rounds = 2,
	                          .critique_threshold = 0.8,
	                          .debate_max_rounds = 3,
	                          .ensemble_min_agreement = 0.7,
	                          .self_consistency_samples = 5};
	o->mode = strdup("single");
	o->debate_reconcile = strdup("primary");
	o->ensemble_synthesis = strdup("primary");
	o->ensemble_reducer = strdup("weighted_consensus");
	o->pipeline_stages = config_strs_dup(stages, N_OF(stages));
	o->n_pipeline_stages = o->pipeline_stages ? N_OF(stages) : 0;
	if (!o->mode || !o->debate_reconcile || !o->ensemble_synthesis || !o->ensemble_reducer ||
	    !o->pipeline_stages)
		return BRG_E_NOMEM;
	return BRG_OK;
}

void config_orch_free(struct orch_config *o)
{
	config_presets_free(o);
	for (size_t i = 0; i < o->n_extra_roles; i++) {
		free(o->extra_roles[i].model);
		config_strs_free(o->extra_roles[i].roles, o->extra_roles[i].n_roles);
	}
	free(o->extra_roles);
	free(o->mode);
	free(o->debate_reconcile);
	free(o->ensemble_synthesis);
	free(o->ensemble_reducer);
	config_strs_free(o->pipeline_stages, o->n_pipeline_stages);
	config_strs_free(o->pool, o->n_pool);
	free(o->preset);
	free(o->presets_file);
}

/* ---- the YAML section ------------------------------------------------- */

/* A list key's value: a sequence of non-null scalars (a null pool: none). */
static enum brg_err yaml_list(struct loader *ld, const struct key *k, yaml_node_t *v,
                              const char *path)
{
	char want[160], why[BRG_ERR_MSG_MAX - 128];
	describe(k, true, want, sizeof want);
	if (k->kind == K_POOL && config_yaml_is_null(v))
		return set_list(k, &ld->c->orch, NULL, 0, true, why, sizeof why);
	if (v->type != YAML_SEQUENCE_NODE)
		return config_yaml_fail(ld, v, path, "got %s, expected %s", config_yaml_kind(v),
		                        want);
	yaml_node_item_t *items = v->data.sequence.items.start;
	size_t n = (size_t)(v->data.sequence.items.top - items);
	if (n > MAX_LIST)
		return config_yaml_fail(ld, v, path, "%zu entries, expected at most %d", n,
		                        MAX_LIST);
	const char *texts[MAX_LIST];
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *it = yaml_document_get_node(ld->doc, items[i]);
		if (it->type != YAML_SCALAR_NODE || config_yaml_is_null(it))
			return config_yaml_fail(ld, it, path, "got %s in the list, expected %s",
			                        config_yaml_kind(it), want);
		texts[i] = config_yaml_scalar(it);
	}
	enum brg_err e = set_list(k, &ld->c->orch, texts, n, true, why, sizeof why);
	if (e == BRG_E_CONFIG)
		return config_yaml_fail(ld, v, path, "%s", why);
	return e ? brg_fail(ld->err, e, "out of memory") : BRG_OK;
}

enum brg_err config_orch_yaml(struct loader *ld, yaml_node_t *node)
{
	bool is_empty;
	enum brg_err e = config_yaml_check_mapping(ld, node, "orchestration", "key", &is_empty);
	if (e || is_empty)
		return e;
	yaml_node_pair_t *p;
	for (p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
		const struct key *key = NULL;
		for (size_t i = 0; i < N_OF(keys) && !key; i++)
			key = strcmp(keys[i].key, config_yaml_scalar(k)) == 0 ? &keys[i] : NULL;
		char path[128], want[400], why[BRG_ERR_MSG_MAX - 128];
		snprintf(path, sizeof path, "orchestration.%.64s", config_yaml_scalar(k));
		if (!key) {
			const char *names[N_OF(keys)];
			for (size_t i = 0; i < N_OF(keys); i++)
				names[i] = keys[i].key;
			config_join_names(want, sizeof want, names, N_OF(keys));
			return config_yaml_fail(ld, k, path, "unknown key, expected one of %s",
			                        want);
		}
		if (key->kind == K_STAGES || key->kind == K_POOL) {
			e = yaml_list(ld, key, v, path);
		} else if (v->type != YAML_SCALAR_NODE) {
			describe(key, true, want, sizeof want);
			e = config_yaml_fail(ld, v, path, "got %s, expected %s",
			                     config_yaml_kind(v), want);
		} else {
			e = set_text(
			    key, &ld->c->orch, config_yaml_scalar(v), config_yaml_is_null(v),
			    v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE, true, why, sizeof why);
			if (e == BRG_E_CONFIG)
				e = config_yaml_fail(ld, v, path, "%s", why);
			else if (e)
				e = brg_fail(ld->err, e, "out of memory");
		}
		if (e)
			return e;
		if (key->line_off)
			*(int *)((char *)&ld->c->orch + key->line_off) =
			    (int)k->start_mark.line + 1;
	}
	return BRG_OK;
}

/* ---- the variables ---------------------------------------------------- */

/* Splits a comma list into trimmed, non-empty items (pointers into *copy). */
static enum brg_err split_commas(const char *text, char **copy, const char **items, size_t *n)
{
	*n = 0;
	if (!(*copy = strdup(text)))
		return BRG_E_NOMEM;
	char *save = NULL;
	for (char *tok = config_list_next(*copy, &save); tok; tok = config_list_next(NULL, &save)) {
		if (*n == MAX_LIST + 1)
			break; /* already too many: set_list() says so */
		items[(*n)++] = tok;
	}
	return BRG_OK;
}

static enum brg_err env_key(struct config *c, const struct key *k, const char *v,
                            struct brg_error *err)
{
	char why[BRG_ERR_MSG_MAX - 64];
	enum brg_err e;
	if (k->kind == K_STAGES || k->kind == K_POOL) {
		const char *items[MAX_LIST + 1];
		size_t n;
		char *copy = NULL;
		e = split_commas(v, &copy, items, &n);
		if (!e)
			e = set_list(k, &c->orch, items, n, false, why, sizeof why);
		free(copy);
	} else if (k->kind == K_PATH) {
		char *path = NULL;
		e = config_path_resolve(NULL, v, &path);
		if (!e) {
			free(c->orch.presets_file);
			c->orch.presets_file = path;
		}
	} else {
		e = set_text(k, &c->orch, v, false, false, false, why, sizeof why);
	}
	if (e)
		return brg_fail(err, e, "%s: %s", k->var, e == BRG_E_NOMEM ? "out of memory" : why);
	if (k->line_off)
		*(int *)((char *)&c->orch + k->line_off) = 0;
	return BRG_OK;
}

/* One INFERENCE_MODEL_ROLES entry's roles, checked. */
static enum brg_err json_roles(const char *id, json_t *list, char ***out, size_t *n_out,
                               struct brg_error *err)
{
	char want[160];
	config_join_names(want, sizeof want, config_role_names, CONFIG_N_ROLES);
	size_t n = json_is_array(list) ? json_array_size(list) : 0;
	const char *names[CONFIG_N_ROLES];
	if (!json_is_array(list))
		return brg_fail(err, BRG_E_CONFIG,
		                "INFERENCE_MODEL_ROLES: '%.64s' is not given a list, expected a "
		                "list of roles from %s",
		                id, want);
	for (size_t i = 0; i < n; i++) {
		json_t *r = json_array_get(list, i);
		const char *s = json_is_string(r) ? json_string_value(r) : "";
		int w = json_is_string(r) && strlen(s) == json_string_length(r)
		            ? config_word_find(s, config_role_names, CONFIG_N_ROLES)
		            : -1;
		if (w < 0 || strcmp(s, config_role_names[w]) != 0)
			return brg_fail(err, BRG_E_CONFIG,
			                "INFERENCE_MODEL_ROLES: '%.64s': '%.32s' is not a role, "
			                "expected roles from %s",
			                id, s, want);
		if (config_names_has((char *const *)names, i, s))
			return brg_fail(err, BRG_E_CONFIG,
			                "INFERENCE_MODEL_ROLES: '%.64s': role '%s' is listed twice",
			                id, s);
		names[i] = config_role_names[w];
	}
	if (!(*out = config_strs_dup(names, n)))
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	*n_out = n;
	return BRG_OK;
}

/* INFERENCE_MODEL_ROLES='{"phi-4":["primary","thinker"],"vllm:m":["fast"]}':
 * a models.yaml id gets these roles instead of its own; any other id is
 * kept in orch.extra_roles. */
static enum brg_err env_model_roles(struct config *c, const char *v, struct brg_error *err)
{
	json_error_t je;
	json_t *root = json_loads(v, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(root)) {
		json_decref(root);
		return brg_fail(
		    err, BRG_E_CONFIG,
		    "INFERENCE_MODEL_ROLES: %s%.128s, expected a JSON object of model "
		    "ids to lists of roles, such as {\"phi-4\":[\"primary\",\"coder\"]}",
		    root ? "not an object" : "not valid JSON: ", root ? "" : je.text);
	}
	struct orch_config *o = &c->orch;
	enum brg_err e = BRG_OK;
	const char *id;
	json_t *list;
	json_object_foreach(root, id, list)
	{
		char **roles = NULL;
		size_t n = 0;
		if (!config_id_valid(id)) {
			e = brg_fail(err, BRG_E_CONFIG,
			             "INFERENCE_MODEL_ROLES: '%.64s' is not a model id (1..%d "
			             "characters, no spaces or commas)",
			             id, CONFIG_ID_MAX);
		} else if (o->n_extra_roles >= MAX_LIST) {
			e = brg_fail(err, BRG_E_CONFIG,
			             "INFERENCE_MODEL_ROLES: more than %d models that models.yaml "
			             "lacks",
			             MAX_LIST);
		}
		if (e || (e = json_roles(id, list, &roles, &n, err)))
			break;
		struct model_config *m = (struct model_config *)config_find_model(c, id);
		struct model_roles *x =
		    m ? NULL : realloc(o->extra_roles, (o->n_extra_roles + 1) * sizeof *x);
		if (m) {
			config_strs_free(m->roles, m->n_roles);
			m->roles = roles;
			m->n_roles = n;
			continue;
		}
		if (x)
			o->extra_roles = x;
		if (!x || !(x[o->n_extra_roles].model = strdup(id))) {
			config_strs_free(roles, n);
			e = brg_fail(err, BRG_E_NOMEM, "out of memory");
			break;
		}
		x[o->n_extra_roles].roles = roles;
		x[o->n_extra_roles++].n_roles = n;
	}
	json_decref(root);
	return e;
}

enum brg_err config_orch_env(struct config *c, char *const *envp, struct brg_error *err)
{
	enum brg_err e;
	for (size_t i = 0; i < N_OF(keys); i++) {
		const char *v = config_env_get(envp, keys[i].var, true);
		if (v && (e = env_key(c, &keys[i], v, err)))
			return e;
	}
	const char *v = config_env_get(envp, "INFERENCE_MODEL_ROLES", true);
	return v ? env_model_roles(c, v, err) : BRG_OK;
}

/* ---- after the variables ---------------------------------------------- */

enum brg_err config_orch_finish(struct config *c, const char *base, struct brg_error *err)
{
	struct orch_config *o = &c->orch;
	if (o->n_pool == 0) {
		config_strs_free(o->pool, 0);
		o->pool = calloc(c->n_models + 1, sizeof *o->pool);
		for (size_t i = 0; o->pool && i < c->n_models; i++)
			if (!(o->pool[o->n_pool++] = strdup(c->models[i].id)))
				return brg_fail(err, BRG_E_NOMEM, "out of memory");
		if (!o->pool)
			return brg_fail(err, BRG_E_NOMEM, "out of memory");
	}
	if (o->presets_file)
		return config_load_presets(c, o->presets_file, err);
	/* Else presets.yaml beside the models file, when there is one. */
	char *path = NULL;
	if (!c->source)
		return BRG_OK;
	if (config_path_resolve(base, "presets.yaml", &path))
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	if (access(path, F_OK) != 0) {
		free(path);
		return BRG_OK;
	}
	o->presets_file = path;
	return config_load_presets(c, path, err);
}

/* "FILE:LINE: key 'orchestration.KEY'" when models.yaml set it, else the
 * variable's name. */
static const char *where(const struct config *c, int line, const char *key, const char *var,
                         char *buf, size_t len)
{
	if (line > 0)
		snprintf(buf, len, "%.200s:%d: key 'orchestration.%s'",
		         c->source ? c->source : "<string>", line, key);
	else
		str_copy(buf, len, var);
	return buf;
}

/* A role, a configured model, or (for the synthesis) "none". */
static enum brg_err check_role_or_model(const struct config *c, const char *v, bool is_none_ok,
                                        const char *at, struct brg_error *err)
{
	if (config_names_has((char *const *)config_role_names, CONFIG_N_ROLES, v) ||
	    (is_none_ok && strcmp(v, "none") == 0) || config_model_configured(c, v))
		return BRG_OK;
	char roles[128];
	config_join_names(roles, sizeof roles, config_role_names, CONFIG_N_ROLES);
	return brg_fail(err, BRG_E_CONFIG,
	                "%s: '%.64s' is neither a role (%s%s) nor a configured model", at, v, roles,
	                is_none_ok ? ", or none" : "");
}

enum brg_err config_check_presets(struct config *c, struct brg_error *err)
{
	struct orch_config *o = &c->orch;
	char at[320];
	enum brg_err e;
	if (config_presets_mark(c))
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	where(c, o->pool_line, "models", "INFERENCE_ORCHESTRATION_MODELS", at, sizeof at);
	for (size_t i = 0; i < o->n_pool; i++)
		if (!config_model_configured(c, o->pool[i]))
			return brg_fail(
			    err, BRG_E_CONFIG,
			    "%s: '%.64s' names no configured model, expected a "
			    "models.yaml id, or PROVIDER:model for a configured provider",
			    at, o->pool[i]);
	where(c, o->reconcile_line, "debate_reconcile_model", "INFERENCE_DEBATE_RECONCILE_MODEL",
	      at, sizeof at);
	if ((e = check_role_or_model(c, o->debate_reconcile, false, at, err)))
		return e;
	where(c, o->synthesis_line, "ensemble_synthesis_model",
	      "INFERENCE_ENSEMBLE_SYNTHESIS_MODEL", at, sizeof at);
	if ((e = check_role_or_model(c, o->ensemble_synthesis, true, at, err)))
		return e;
	if (!o->preset)
		return BRG_OK;
	where(c, o->preset_line, "preset", "INFERENCE_CONFIG", at, sizeof at);
	const struct preset *p = config_find_preset(c, o->preset);
	if (!p && o->n_presets == 0)
		return brg_fail(
		    err, BRG_E_CONFIG,
		    "%s: no preset '%s': no presets file was read (set "
		    "INFERENCE_PRESETS_FILE, or put presets.yaml beside the models file)",
		    at, o->preset);
	if (!p) {
		const char *names[256];
		size_t n = o->n_presets < N_OF(names) ? o->n_presets : N_OF(names);
		char list[256];
		for (size_t i = 0; i < n; i++)
			names[i] = o->presets[i].name;
		config_join_names(list, sizeof list, names, n);
		return brg_fail(err, BRG_E_CONFIG, "%s: no preset '%s', expected one of %s", at,
		                o->preset, list);
	}
	if (!p->is_usable)
		return brg_fail(err, BRG_E_CONFIG,
		                "%s: preset '%s' names models that are not configured: %.200s", at,
		                p->name, p->missing);
	return BRG_OK;
}

void config_model_roles(const struct config *c, const char *id, char *const **roles,
                        size_t *n_roles)
{
	*roles = NULL;
	*n_roles = 0;
	const struct model_config *m = config_find_model(c, id);
	for (size_t i = 0; c && id && !m && i < c->orch.n_extra_roles; i++)
		if (strcmp(c->orch.extra_roles[i].model, id) == 0) {
			*roles = c->orch.extra_roles[i].roles;
			*n_roles = c->orch.extra_roles[i].n_roles;
			return;
		}
	/* "local:phi-4" and "inference:phi-4" are phi-4 (route.h). */
	if (!m && id && !strncmp(id, "local:", 6))
		m = config_find_model(c, id + 6);
	if (!m && id && !strncmp(id, "inference:", 10))
		m = config_find_model(c, id + 10);
	if (m) {
		*roles = m->roles;
		*n_roles = m->n_roles;
	}
}
