/*
 * presets.c — the presets file (spec: Configuration Presets; format in
 * config/presets.yaml's header): named sets of models, the mode they run
 * in and what each one does there, checked against the mode's rules when
 * read; and whether each preset's models are configured (mark), which
 * needs the providers too, so it runs again from config_check_presets().
 *
 * A preset names models as a client writes them ("phi-4", "vllm:llama3"),
 * so a member's id is only checked for shape here.  The rules per mode are
 * one table, mode_rules, read by parse_members().
 */
#include "config/config_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PRESETS 256
#define SIZE_GB_MAX 100000.0

static const char *const hardware_tags[] = {"mac-light", "mac-medium", "mac-full", "server"};

/* "Any number of members" in mode_rules. */
#define MANY CONFIG_MAX_MEMBERS

/* What a preset's members may do, by mode (spec: Orchestration Modes). */
static const struct mode_rule {
	const char *mode;
	const char *roles[3];
	size_t n_roles;
	size_t min[3], max[3]; /* members holding each role */
	size_t min_members, max_members;
	bool has_idle; /* a member may hold no role (pipeline: no stage of its own) */
} mode_rules[] = {
    /* clang-format off */
    {"single",   {"model"},                           1, {1},       {1},       1, 1,    false},
    {"critique", {"generator", "critic"},             2, {1, 1},    {1, 1},    2, 2,    false},
    {"debate",   {"participant", "reconciler"},       2, {2, 1},    {MANY, 1}, 2, MANY, false},
    {"ensemble", {"member", "synthesizer"},           2, {2, 0},    {MANY, 1}, 2, MANY, false},
    {"pipeline", {"drafter", "refiner", "validator"}, 3, {1, 0, 1}, {1, 1, 1}, 2, MANY, true},
    /* clang-format on */
};

void config_presets_free(struct orch_config *o)
{
	for (size_t i = 0; i < o->n_presets; i++) {
		struct preset *p = &o->presets[i];
		for (size_t j = 0; j < p->n_members; j++) {
			free(p->members[j].model);
			config_strs_free(p->members[j].mode_roles, p->members[j].n_mode_roles);
		}
		free(p->members);
		free(p->name);
		free(p->mode);
		free(p->hardware);
		free(p->notes);
		free(p->missing);
	}
	free(o->presets);
	o->presets = NULL;
	o->n_presets = 0;
}

/* ---- reading -------------------------------------------------------- */

static const struct mode_rule *rule_find(const char *mode)
{
	for (size_t i = 0; i < N_OF(mode_rules); i++)
		if (strcmp(mode_rules[i].mode, mode) == 0)
			return &mode_rules[i];
	return NULL;
}

/* "exactly 1 reconciler", "at least 2 participants", "at most 1 refiner". */
static void need_text(char *buf, size_t len, size_t min, size_t max, const char *what)
{
	size_t n = min == max ? min : max >= MANY ? min : max;
	snprintf(buf, len, "%s %zu %s%s",
	         min == max    ? "exactly"
	         : max >= MANY ? "at least"
	                       : "at most",
	         n, what, n == 1 ? "" : "s");
}

/* One member: 'model: [role, ...]' with the roles of the preset's mode. */
static enum brg_err parse_member(struct loader *ld, const struct mode_rule *r, yaml_node_t *k,
                                 yaml_node_t *v, const char *path, struct preset_member *m)
{
	char kp[400], want[96];
	snprintf(kp, sizeof kp, "%s.%.64s", path, config_yaml_scalar(k));
	config_join_names(want, sizeof want, r->roles, r->n_roles);
	if (!config_id_valid(config_yaml_scalar(k)))
		return config_yaml_fail(ld, k, kp,
		                        "not a model id (1..%d characters, no spaces or commas)",
		                        CONFIG_ID_MAX);
	size_t n = v->type == YAML_SEQUENCE_NODE
	               ? (size_t)(v->data.sequence.items.top - v->data.sequence.items.start)
	               : 0;
	if (v->type != YAML_SEQUENCE_NODE || (n == 0 && !r->has_idle))
		return config_yaml_fail(
		    ld, v, kp, "got %s, expected a list of %s roles from %s",
		    n == 0 && v->type == YAML_SEQUENCE_NODE ? "an empty list" : config_yaml_kind(v),
		    r->mode, want);
	const char *names[3];
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *it = yaml_document_get_node(ld->doc, v->data.sequence.items.start[i]);
		size_t w = 0;
		while (it->type == YAML_SCALAR_NODE && w < r->n_roles &&
		       strcmp(config_yaml_scalar(it), r->roles[w]) != 0)
			w++;
		if (it->type != YAML_SCALAR_NODE || w == r->n_roles)
			return config_yaml_fail(
			    ld, it, kp, "'%.64s' is not a %s role, expected %s",
			    it->type == YAML_SCALAR_NODE ? config_yaml_scalar(it) : "", r->mode,
			    want);
		if (config_names_has((char *const *)names, i, r->roles[w]))
			return config_yaml_fail(ld, it, kp, "role '%s' is listed twice",
			                        r->roles[w]);
		names[i] = r->roles[w];
	}
	m->model = strdup(config_yaml_scalar(k));
	m->mode_roles = config_strs_dup(names, n);
	m->n_mode_roles = m->mode_roles ? n : 0;
	if (!m->model || !m->mode_roles)
		return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	return BRG_OK;
}

/* The members of 'p' (its mode known), then the mode's rules over them. */
static enum brg_err parse_members(struct loader *ld, yaml_node_t *node, const char *path,
                                  struct preset *p)
{
	const struct mode_rule *r = rule_find(p->mode);
	bool is_empty;
	enum brg_err e = config_yaml_check_mapping(ld, node, path, "model id", &is_empty);
	yaml_node_pair_t *pairs = is_empty || e ? NULL : node->data.mapping.pairs.start;
	size_t n = pairs ? (size_t)(node->data.mapping.pairs.top - pairs) : 0, counts[3] = {0};
	if (!e && n > CONFIG_MAX_MEMBERS)
		return config_yaml_fail(ld, node, path, "%zu members, expected at most %d", n,
		                        CONFIG_MAX_MEMBERS);
	if (!e && n && !(p->members = calloc(n, sizeof *p->members)))
		return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	for (size_t i = 0; !e && i < n; i++) {
		p->n_members = i + 1;
		e = parse_member(ld, r, yaml_document_get_node(ld->doc, pairs[i].key),
		                 yaml_document_get_node(ld->doc, pairs[i].value), path,
		                 &p->members[i]);
		for (size_t j = 0; !e && j < p->members[i].n_mode_roles; j++)
			for (size_t w = 0; w < r->n_roles; w++)
				counts[w] += strcmp(p->members[i].mode_roles[j], r->roles[w]) == 0;
	}
	if (e)
		return e;
	char need[96];
	if (n < r->min_members || n > r->max_members) {
		need_text(need, sizeof need, r->min_members, r->max_members, "member");
		return config_yaml_fail(ld, node, path, "%s needs %s, got %zu", r->mode, need, n);
	}
	for (size_t w = 0; w < r->n_roles; w++) {
		if (counts[w] >= r->min[w] && counts[w] <= r->max[w])
			continue;
		need_text(need, sizeof need, r->min[w], r->max[w], r->roles[w]);
		return config_yaml_fail(ld, node, path, "%s needs %s, got %zu", r->mode, need,
		                        counts[w]);
	}
	return BRG_OK;
}

/* One scalar key of a preset: mode, hardware, size_gb or notes. */
static enum brg_err preset_scalar(struct loader *ld, yaml_node_t *v, const char *key,
                                  const char *path, struct preset *p)
{
	static const char *const preset_modes[] = {"single", "critique", "debate", "ensemble",
	                                           "pipeline"};
	char kp[160], want[128];
	snprintf(kp, sizeof kp, "%s.%s", path, key);
	bool is_mode = strcmp(key, "mode") == 0, is_hw = strcmp(key, "hardware") == 0;
	const char *text = v->type == YAML_SCALAR_NODE ? config_yaml_scalar(v) : "";
	if (is_mode || is_hw) {
		const char *const *words = is_mode ? preset_modes : hardware_tags;
		size_t n = is_mode ? N_OF(preset_modes) : N_OF(hardware_tags);
		int w = v->type == YAML_SCALAR_NODE ? config_word_find(text, words, n) : -1;
		config_join_names(want, sizeof want, words, n);
		if (w < 0)
			return config_yaml_fail(ld, v, kp, "'%.64s' is not one of %s", text, want);
		if (config_str_set(is_mode ? &p->mode : &p->hardware, words[w]))
			return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
		return BRG_OK;
	}
	if (strcmp(key, "size_gb") == 0) {
		char *end = NULL;
		double gb = NAN;
		if (v->type == YAML_SCALAR_NODE &&
		    v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && *text &&
		    !text[strspn(text, "0123456789.")])
			gb = strtod(text, &end);
		if (isnan(gb) || *end || gb > SIZE_GB_MAX)
			return config_yaml_fail(ld, v, kp, "'%.64s' is not a number in 0..%.0f",
			                        text, SIZE_GB_MAX);
		p->size_gb = gb;
		return BRG_OK;
	}
	if (v->type != YAML_SCALAR_NODE || strpbrk(text, "\r\n"))
		return config_yaml_fail(ld, v, kp, "got %s, expected one line of text",
		                        v->type == YAML_SCALAR_NODE ? "several lines"
		                                                    : config_yaml_kind(v));
	free(p->notes);
	p->notes = config_yaml_is_null(v) ? NULL : strdup(text);
	if (!config_yaml_is_null(v) && !p->notes)
		return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	return BRG_OK;
}

static enum brg_err parse_preset(struct loader *ld, yaml_node_t *k, yaml_node_t *v,
                                 struct preset *p)
{
	static const char *const preset_keys[] = {"mode", "hardware", "size_gb", "notes",
	                                          "members"};
	char path[96], kp[192], want[96];
	snprintf(path, sizeof path, "presets.%.64s", config_yaml_scalar(k));
	if (!config_preset_name_valid(config_yaml_scalar(k)))
		return config_yaml_fail(ld, k, path,
		                        "not a preset name, expected 1..%d characters from A-Z "
		                        "a-z 0-9 . _ -",
		                        CONFIG_PRESET_NAME_MAX);
	if (v->type != YAML_MAPPING_NODE)
		return config_yaml_fail(ld, v, path,
		                        "got %s, expected a mapping with mode and members",
		                        config_yaml_kind(v));
	bool is_empty;
	enum brg_err e = config_yaml_check_mapping(ld, v, path, "key", &is_empty);
	p->line = (int)k->start_mark.line + 1;
	if (!e && !(p->name = strdup(config_yaml_scalar(k))))
		e = brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
	yaml_node_pair_t *q;
	for (q = v->data.mapping.pairs.start; !e && q < v->data.mapping.pairs.top; q++) {
		yaml_node_t *qk = yaml_document_get_node(ld->doc, q->key);
		const char *key = config_yaml_scalar(qk);
		snprintf(kp, sizeof kp, "%s.%.64s", path, key);
		config_join_names(want, sizeof want, preset_keys, N_OF(preset_keys));
		if (!config_names_has((char *const *)preset_keys, N_OF(preset_keys), key))
			e = config_yaml_fail(ld, qk, kp, "unknown key, expected one of %s", want);
		else if (strcmp(key, "members") != 0)
			e = preset_scalar(ld, yaml_document_get_node(ld->doc, q->value), key, path,
			                  p);
	}
	const char *lacks = e ? NULL : !p->mode ? "mode" : "members";
	yaml_node_t *members = config_yaml_get(ld, v, "members");
	if (!e && (!p->mode || !members)) {
		snprintf(kp, sizeof kp, "%s.%s", path, lacks);
		return config_yaml_fail(ld, k, kp, "missing, expected %s",
		                        !p->mode ? "single, critique, debate, ensemble or pipeline"
		                                 : "a mapping of model ids to their roles");
	}
	if (!e) {
		snprintf(kp, sizeof kp, "%s.members", path);
		e = parse_members(ld, members, kp, p);
	}
	return e;
}

static enum brg_err parse_presets_root(struct loader *ld, yaml_node_t *root)
{
	struct orch_config *o = &ld->c->orch;
	bool is_empty;
	if (root->type != YAML_MAPPING_NODE && !config_yaml_is_null(root))
		return config_yaml_fail(
		    ld, root, NULL, "the top level is %s, expected a mapping with the key presets",
		    config_yaml_kind(root));
	enum brg_err e = config_yaml_check_mapping(ld, root, "", "key", &is_empty);
	yaml_node_pair_t *p = e || is_empty ? NULL : root->data.mapping.pairs.start;
	for (; p && p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
		if (strcmp(config_yaml_scalar(k), "presets") != 0)
			return config_yaml_fail(ld, k, config_yaml_scalar(k),
			                        "unknown key, expected presets");
		yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
		if ((e = config_yaml_check_mapping(ld, v, "presets", "preset name", &is_empty)) ||
		    is_empty)
			return e;
		yaml_node_pair_t *pairs = v->data.mapping.pairs.start;
		size_t n = (size_t)(v->data.mapping.pairs.top - pairs);
		if (n > MAX_PRESETS)
			return config_yaml_fail(ld, v, "presets",
			                        "%zu presets, expected at most %d", n, MAX_PRESETS);
		if (!(o->presets = calloc(n, sizeof *o->presets)))
			return brg_fail(ld->err, BRG_E_NOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			o->n_presets =
			    i + 1; /* zeroed entries are safe for config_presets_free() */
			e = parse_preset(ld, yaml_document_get_node(ld->doc, pairs[i].key),
			                 yaml_document_get_node(ld->doc, pairs[i].value),
			                 &o->presets[i]);
			if (e)
				return e;
		}
	}
	return e;
}

/* ---- configured models ------------------------------------------------ */

/* Whether a client's model id names a model brigade can serve: a
 * models.yaml id, "local:"/"inference:" and one, "PROVIDER:model" for a
 * configured provider, or a name some provider lists (route.h's rules). */
bool config_model_configured(const struct config *c, const char *id)
{
	if (config_find_model(c, id))
		return true;
	const char *colon = strchr(id, ':');
	char prefix[65];
	if (colon && colon[1] && (size_t)(colon - id) < sizeof prefix) {
		memcpy(prefix, id, (size_t)(colon - id));
		prefix[colon - id] = '\0';
		if (strcmp(prefix, "local") == 0 || strcmp(prefix, "inference") == 0)
			return config_find_model(c, colon + 1) != NULL;
		if (config_find_provider(c, prefix))
			return true;
	}
	for (size_t i = 0; i < c->n_providers; i++)
		if (config_names_has(c->providers[i].models, c->providers[i].n_models, id))
			return true;
	return false;
}

/* Sets is_usable and missing of every preset by what 'c' configures now. */
enum brg_err config_presets_mark(struct config *c)
{
	for (size_t i = 0; i < c->orch.n_presets; i++) {
		struct preset *p = &c->orch.presets[i];
		const char *missing[CONFIG_MAX_MEMBERS];
		size_t n = 0;
		for (size_t j = 0; j < p->n_members; j++)
			if (!config_model_configured(c, p->members[j].model))
				missing[n++] = p->members[j].model;
		free(p->missing);
		p->missing = NULL;
		p->is_usable = n == 0;
		if (n == 0)
			continue;
		size_t len = 1;
		for (size_t j = 0; j < n; j++)
			len += strlen(missing[j]) + 2;
		if (!(p->missing = malloc(len)))
			return BRG_E_NOMEM;
		config_join_names(p->missing, len, missing, n);
	}
	return BRG_OK;
}

/* ---- the API ---------------------------------------------------------- */

enum brg_err config_load_presets_string(struct config *c, const char *yaml, size_t len,
                                        const char *name, struct brg_error *err)
{
	struct loader ld = {.name = name ? name : "<string>", .c = c, .err = err};
	config_presets_free(&c->orch);
	enum brg_err e =
	    config_yaml_parse(&ld, yaml ? yaml : "", yaml ? len : 0, parse_presets_root);
	if (!e && config_presets_mark(c))
		e = brg_fail(err, BRG_E_NOMEM, "out of memory");
	if (e)
		config_presets_free(&c->orch);
	return e;
}

enum brg_err config_load_presets(struct config *c, const char *path, struct brg_error *err)
{
	char *yaml = NULL;
	size_t len = 0;
	config_presets_free(&c->orch);
	enum brg_err e = path ? config_read_file(path, &yaml, &len, err) : BRG_OK;
	if (!e && path)
		e = config_load_presets_string(c, yaml, len, path, err);
	free(yaml);
	return e;
}

const struct preset *config_find_preset(const struct config *c, const char *name)
{
	for (size_t i = 0; c && name && i < c->orch.n_presets; i++)
		if (strcmp(c->orch.presets[i].name, name) == 0)
			return &c->orch.presets[i];
	return NULL;
}
