/*
 * test_config_orch.c — unit tests for config/orch.c and config/presets.c:
 * the orchestration defaults, the models.yaml 'orchestration:' section, its
 * INFERENCE_* variables and INFERENCE_MODEL_ROLES, the presets file and each
 * mode's role rules, the shipped config/presets.yaml against the spec's
 * tables, which presets are usable, and config_check_presets()'s messages.
 * Files go to a fresh temporary directory per test.  Run from the
 * repository root (tools/run-unit.sh does), for config/presets.yaml.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

static char *const no_env[] = {NULL};

/* A fresh directory for one test's files; rm_dir() removes it. */
static char *make_dir(void)
{
	char *dir = strdup("/tmp/brigade-test-orch-XXXXXX");
	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	return dir;
}

/* Writes 'text' to DIR/NAME; returns the path (free() it). */
static char *write_file(const char *dir, const char *name, const char *text)
{
	char *path;
	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	fclose(f);
	return path;
}

static void rm_dir(char *dir)
{
	char *cmd;
	assert_true(asprintf(&cmd, "rm -rf '%s'", dir) > 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(dir);
}

/* config_load() of 'yaml' written to DIR/models.yaml (NULL: no file). */
static enum brg_err load_in(const char *dir, const char *yaml, char *const *envp, struct config **c,
                            struct brg_error *err)
{
	char *path = yaml ? write_file(dir, "models.yaml", yaml) : NULL;
	enum brg_err e = config_load(path, envp, c, err);
	free(path);
	return e;
}

static struct config *load_ok(const char *yaml, char *const *envp)
{
	char *dir = make_dir();
	struct config *c = NULL;
	struct brg_error err = {0};
	enum brg_err e = load_in(dir, yaml, envp, &c, &err);
	if (e)
		print_error("unexpected error: %s\n", err.message);
	assert_int_equal(e, BRG_OK);
	rm_dir(dir);
	return c;
}

/* Expects BRG_E_CONFIG whose message starts with 'start' (after
 * "DIR/models.yaml:" when 'is_file') and contains 'also'. */
static void load_fails(const char *yaml, char *const *envp, bool is_file, const char *start,
                       const char *also)
{
	char *dir = make_dir();
	struct config *c = (struct config *)1;
	struct brg_error err = {0};
	assert_int_equal(load_in(dir, yaml, envp, &c, &err), BRG_E_CONFIG);
	assert_null(c);
	char want[512];
	snprintf(want, sizeof want, "%s%s%s", is_file ? dir : "", is_file ? "/models.yaml:" : "",
	         start);
	if (strncmp(err.message, want, strlen(want)) != 0)
		fail_msg("message '%s' does not start with '%s'", err.message, want);
	if (also && !strstr(err.message, also))
		fail_msg("message '%s' lacks '%s'", err.message, also);
	rm_dir(dir);
}

static const char two_models[] = "models:\n"
                                 "  phi-4:\n"
                                 "    file: phi-4.gguf\n"
                                 "    roles: [primary, thinker, coder]\n"
                                 "  deepseek-r1-7b:\n"
                                 "    file: ds.gguf\n"
                                 "    roles: [thinker]\n";

/* ---- settings --------------------------------------------------------- */

static void test_orch_defaults(void **state)
{
	struct config *c = load_ok(two_models, no_env);
	const struct orch_config *o = &c->orch;
	assert_string_equal(o->mode, "single");
	assert_int_equal(o->critique_max_rounds, 2);
	assert_true(o->critique_threshold == 0.8);
	assert_int_equal(o->debate_max_rounds, 3);
	assert_string_equal(o->debate_reconcile, "primary");
	assert_true(o->ensemble_min_agreement == 0.7);
	assert_string_equal(o->ensemble_synthesis, "primary");
	assert_string_equal(o->ensemble_reducer, "weighted_consensus");
	assert_false(o->ensemble_best_on_disagreement);
	assert_int_equal(o->n_pipeline_stages, 3);
	assert_string_equal(o->pipeline_stages[0], "draft");
	assert_string_equal(o->pipeline_stages[1], "refine");
	assert_string_equal(o->pipeline_stages[2], "validate");
	assert_int_equal(o->self_consistency_samples, 5);
	assert_int_equal(o->n_pool, 2); /* every model, in file order */
	assert_string_equal(o->pool[0], "phi-4");
	assert_string_equal(o->pool[1], "deepseek-r1-7b");
	assert_null(o->preset);
	assert_null(o->presets_file); /* none beside the file */
	assert_int_equal(o->n_presets, 0);
	assert_int_equal(o->n_extra_roles, 0);
	struct brg_error err = {0};
	assert_int_equal(config_check_presets(c, &err), BRG_OK);
	config_free(c);
	/* No file at all: an empty pool. */
	assert_int_equal(config_load(NULL, no_env, &c, &err), BRG_OK);
	assert_int_equal(c->orch.n_pool, 0);
	assert_string_equal(c->orch.mode, "single");
	config_free(c);
}

static void test_orch_env_valid_values(void **state)
{
	char *env[] = {"INFERENCE_ORCHESTRATION_MODE=Debate",
	               "INFERENCE_CRITIQUE_MAX_ROUNDS=10",
	               "INFERENCE_CRITIQUE_THRESHOLD=0.25",
	               "INFERENCE_DEBATE_MAX_ROUNDS=1",
	               "INFERENCE_DEBATE_RECONCILE_MODEL=phi-4",
	               "INFERENCE_ENSEMBLE_MIN_AGREEMENT=1",
	               "INFERENCE_ENSEMBLE_SYNTHESIS_MODEL=none",
	               "INFERENCE_ENSEMBLE_REDUCER=majority_vote",
	               "INFERENCE_ENSEMBLE_ON_DISAGREEMENT=best",
	               "INFERENCE_PIPELINE_STAGES= draft , validate",
	               "INFERENCE_SELF_CONSISTENCY_SAMPLES=16",
	               "INFERENCE_ORCHESTRATION_MODELS=deepseek-r1-7b,vllm:llama3",
	               "INFERENCE_CONFIG=D3",
	               NULL};
	struct config *c = load_ok(two_models, env);
	const struct orch_config *o = &c->orch;
	assert_string_equal(o->mode, "debate");
	assert_int_equal(o->critique_max_rounds, 10);
	assert_true(o->critique_threshold == 0.25);
	assert_int_equal(o->debate_max_rounds, 1);
	assert_string_equal(o->debate_reconcile, "phi-4");
	assert_true(o->ensemble_min_agreement == 1.0);
	assert_string_equal(o->ensemble_synthesis, "none");
	assert_string_equal(o->ensemble_reducer, "majority_vote");
	assert_true(o->ensemble_best_on_disagreement);
	assert_int_equal(o->n_pipeline_stages, 2);
	assert_string_equal(o->pipeline_stages[0], "draft");
	assert_string_equal(o->pipeline_stages[1], "validate");
	assert_int_equal(o->self_consistency_samples, 16);
	assert_int_equal(o->n_pool, 2);
	assert_string_equal(o->pool[0], "deepseek-r1-7b");
	assert_string_equal(o->pool[1], "vllm:llama3");
	assert_string_equal(o->preset, "D3");
	config_free(c);
	char *more[] = {"INFERENCE_ORCHESTRATION_MODE=self_consistency",
	                "INFERENCE_ENSEMBLE_REDUCER=highest_confidence",
	                "INFERENCE_ENSEMBLE_ON_DISAGREEMENT=error", NULL};
	c = load_ok(two_models, more);
	assert_string_equal(c->orch.mode, "self_consistency");
	assert_string_equal(c->orch.ensemble_reducer, "highest_confidence");
	assert_false(c->orch.ensemble_best_on_disagreement);
	config_free(c);
}

static void test_orch_env_invalid_values_name_the_variable(void **state)
{
	static const char *const cases[][2] = {
	    {"INFERENCE_ORCHESTRATION_MODE=solo",
	     "INFERENCE_ORCHESTRATION_MODE: 'solo' is not one of single, critique, debate, "
	     "ensemble, pipeline, self_consistency"},
	    {"INFERENCE_CRITIQUE_MAX_ROUNDS=0", "INFERENCE_CRITIQUE_MAX_ROUNDS: 0 is out of range"},
	    {"INFERENCE_CRITIQUE_MAX_ROUNDS=two",
	     "INFERENCE_CRITIQUE_MAX_ROUNDS: 'two' is not an integer in 1..10"},
	    {"INFERENCE_CRITIQUE_THRESHOLD=1.5",
	     "INFERENCE_CRITIQUE_THRESHOLD: 1.5 is out of range, expected a number in 0..1"},
	    {"INFERENCE_CRITIQUE_THRESHOLD=high", "INFERENCE_CRITIQUE_THRESHOLD: 'high' is not"},
	    {"INFERENCE_CRITIQUE_THRESHOLD=nan", "INFERENCE_CRITIQUE_THRESHOLD: 'nan' is not"},
	    {"INFERENCE_DEBATE_MAX_ROUNDS=11", "INFERENCE_DEBATE_MAX_ROUNDS: 11 is out of range"},
	    {"INFERENCE_DEBATE_RECONCILE_MODEL=a b",
	     "INFERENCE_DEBATE_RECONCILE_MODEL: 'a b' is not a role or a model id"},
	    {"INFERENCE_ENSEMBLE_MIN_AGREEMENT=-0.1",
	     "INFERENCE_ENSEMBLE_MIN_AGREEMENT: -0.1 is out of range"},
	    {"INFERENCE_ENSEMBLE_SYNTHESIS_MODEL=x,y",
	     "INFERENCE_ENSEMBLE_SYNTHESIS_MODEL: 'x,y' is not"},
	    {"INFERENCE_ENSEMBLE_REDUCER=average",
	     "INFERENCE_ENSEMBLE_REDUCER: 'average' is not one of weighted_consensus, "
	     "majority_vote, highest_confidence"},
	    {"INFERENCE_ENSEMBLE_ON_DISAGREEMENT=ignore",
	     "INFERENCE_ENSEMBLE_ON_DISAGREEMENT: 'ignore' is not one of error, best"},
	    {"INFERENCE_PIPELINE_STAGES=draft,polish",
	     "INFERENCE_PIPELINE_STAGES: 'polish' is not a stage"},
	    {"INFERENCE_PIPELINE_STAGES=draft,draft",
	     "INFERENCE_PIPELINE_STAGES: 'draft' comes after 'draft'"},
	    {"INFERENCE_PIPELINE_STAGES=validate,draft",
	     "INFERENCE_PIPELINE_STAGES: 'draft' comes after 'validate', expected a comma list"},
	    {"INFERENCE_PIPELINE_STAGES=,", "INFERENCE_PIPELINE_STAGES: 0 entries, expected"},
	    {"INFERENCE_SELF_CONSISTENCY_SAMPLES=1",
	     "INFERENCE_SELF_CONSISTENCY_SAMPLES: 1 is out of range, expected an integer in 2..16"},
	    {"INFERENCE_SELF_CONSISTENCY_SAMPLES=17",
	     "INFERENCE_SELF_CONSISTENCY_SAMPLES: 17 is out of range"},
	    {"INFERENCE_ORCHESTRATION_MODELS=phi-4,phi-4",
	     "INFERENCE_ORCHESTRATION_MODELS: 'phi-4' is listed twice"},
	    {"INFERENCE_CONFIG=D 3", "INFERENCE_CONFIG: 'D 3' is not a preset name"},
	    {"INFERENCE_PRESETS_FILE=/nonexistent/presets.yaml",
	     "cannot read /nonexistent/presets.yaml: "},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *env[] = {(char *)cases[i][0], NULL};
		load_fails(two_models, env, false, cases[i][1], NULL);
	}
}

static void test_orch_env_empty_values_are_unset(void **state)
{
	char *env[] = {"INFERENCE_ORCHESTRATION_MODE=",
	               "INFERENCE_CRITIQUE_MAX_ROUNDS=",
	               "INFERENCE_CRITIQUE_THRESHOLD=",
	               "INFERENCE_DEBATE_MAX_ROUNDS=",
	               "INFERENCE_DEBATE_RECONCILE_MODEL=",
	               "INFERENCE_ENSEMBLE_MIN_AGREEMENT=",
	               "INFERENCE_ENSEMBLE_SYNTHESIS_MODEL=",
	               "INFERENCE_ENSEMBLE_REDUCER=",
	               "INFERENCE_ENSEMBLE_ON_DISAGREEMENT=",
	               "INFERENCE_PIPELINE_STAGES=",
	               "INFERENCE_SELF_CONSISTENCY_SAMPLES=",
	               "INFERENCE_ORCHESTRATION_MODELS=",
	               "INFERENCE_CONFIG=",
	               "INFERENCE_PRESETS_FILE=",
	               "INFERENCE_MODEL_ROLES=",
	               NULL};
	struct config *c = load_ok("orchestration:\n  mode: critique\n  critique_max_rounds: 4\n"
	                           "  models: [phi-4]\n  preset: S1\n",
	                           env);
	assert_string_equal(c->orch.mode, "critique"); /* the file's, not "" */
	assert_int_equal(c->orch.critique_max_rounds, 4);
	assert_true(c->orch.critique_threshold == 0.8);
	assert_int_equal(c->orch.n_pipeline_stages, 3);
	assert_int_equal(c->orch.n_pool, 1);
	assert_string_equal(c->orch.preset, "S1");
	assert_null(c->orch.presets_file);
	config_free(c);
}

static void test_orch_yaml_section_sets_every_key(void **state)
{
	char *dir = make_dir();
	char *presets = write_file(dir, "mine.yaml", "presets:\n");
	char *yaml = NULL;
	assert_true(asprintf(&yaml,
	                     "%sorchestration:\n"
	                     "  mode: ensemble\n"
	                     "  critique_max_rounds: 3\n"
	                     "  critique_threshold: 0.5\n"
	                     "  debate_max_rounds: 4\n"
	                     "  debate_reconcile_model: thinker\n"
	                     "  ensemble_min_agreement: .9\n"
	                     "  ensemble_synthesis_model: phi-4\n"
	                     "  ensemble_reducer: highest_confidence\n"
	                     "  ensemble_on_disagreement: best\n"
	                     "  pipeline_stages: [refine, validate]\n"
	                     "  self_consistency_samples: 7\n"
	                     "  models: [phi-4, openai:gpt-4o]\n"
	                     "  preset: D3\n"
	                     "  presets_file: mine.yaml\n",
	                     two_models) > 0);
	struct config *c = NULL;
	struct brg_error err = {0};
	assert_int_equal(load_in(dir, yaml, no_env, &c, &err), BRG_OK);
	const struct orch_config *o = &c->orch;
	assert_string_equal(o->mode, "ensemble");
	assert_int_equal(o->critique_max_rounds, 3);
	assert_true(o->critique_threshold == 0.5);
	assert_int_equal(o->debate_max_rounds, 4);
	assert_string_equal(o->debate_reconcile, "thinker");
	assert_true(o->ensemble_min_agreement == 0.9);
	assert_string_equal(o->ensemble_synthesis, "phi-4");
	assert_string_equal(o->ensemble_reducer, "highest_confidence");
	assert_true(o->ensemble_best_on_disagreement);
	assert_int_equal(o->n_pipeline_stages, 2);
	assert_string_equal(o->pipeline_stages[0], "refine");
	assert_int_equal(o->self_consistency_samples, 7);
	assert_int_equal(o->n_pool, 2);
	assert_string_equal(o->pool[1], "openai:gpt-4o");
	assert_string_equal(o->preset, "D3");
	assert_int_equal(o->pool_line, 20);
	assert_int_equal(o->preset_line, 21);
	char real[PATH_MAX];
	assert_non_null(realpath(presets, real));
	assert_string_equal(o->presets_file, real); /* relative to the YAML file */
	config_free(c);
	/* The variables win over the file. */
	char *env[] = {"INFERENCE_ORCHESTRATION_MODE=pipeline", "INFERENCE_CONFIG=S1",
	               "INFERENCE_ORCHESTRATION_MODELS=deepseek-r1-7b", NULL};
	assert_int_equal(load_in(dir, yaml, env, &c, &err), BRG_OK);
	assert_string_equal(c->orch.mode, "pipeline");
	assert_string_equal(c->orch.preset, "S1");
	assert_int_equal(c->orch.preset_line, 0);
	assert_int_equal(c->orch.pool_line, 0);
	assert_string_equal(c->orch.pool[0], "deepseek-r1-7b");
	config_free(c);
	free(yaml);
	free(presets);
	rm_dir(dir);
}

static void test_orch_yaml_errors_name_line_and_key(void **state)
{
	load_fails("orchestration:\n  mdoe: single\n", no_env, true,
	           "2: key 'orchestration.mdoe': unknown key, expected one of mode, "
	           "critique_max_rounds",
	           NULL);
	load_fails("orchestration:\n  mode: solo\n", no_env, true,
	           "2: key 'orchestration.mode': ", "'solo' is not one of single");
	load_fails("orchestration:\n  critique_max_rounds: 11\n", no_env, true,
	           "2: key 'orchestration.critique_max_rounds': 11 is out of range", NULL);
	load_fails("orchestration:\n  critique_threshold: \"0.5\"\n", no_env, true,
	           "2: key 'orchestration.critique_threshold': '0.5' is a quoted string", NULL);
	load_fails("orchestration:\n  ensemble_min_agreement: 2\n", no_env, true,
	           "2: key 'orchestration.ensemble_min_agreement': 2 is out of range", NULL);
	load_fails("orchestration:\n  pipeline_stages: draft\n", no_env, true,
	           "2: key 'orchestration.pipeline_stages': got a scalar, expected a list", NULL);
	load_fails("orchestration:\n  pipeline_stages: []\n", no_env, true,
	           "2: key 'orchestration.pipeline_stages': 0 entries", NULL);
	load_fails("orchestration:\n  pipeline_stages: [draft, [refine]]\n", no_env, true,
	           "2: key 'orchestration.pipeline_stages': got a list in the list", NULL);
	load_fails("orchestration:\n  models: [a, a]\n", no_env, true,
	           "2: key 'orchestration.models': 'a' is listed twice", NULL);
	load_fails("orchestration:\n  mode: [single]\n", no_env, true,
	           "2: key 'orchestration.mode': got a list", NULL);
	load_fails("orchestration:\n  preset: ~\n", no_env, true,
	           "2: key 'orchestration.preset': '' is not a preset name", NULL);
	load_fails("orchestration:\n  mode: single\n  mode: debate\n", no_env, true,
	           "3: key 'orchestration.mode': duplicate key", NULL);
	load_fails("orchestration: [1]\n", no_env, true, "1: key 'orchestration': got a list",
	           NULL);
	load_fails("orchestration:\n  presets_file: nothere.yaml\n", no_env, false, "cannot read ",
	           "nothere.yaml");
	/* A null pool is the default pool. */
	struct config *c = load_ok("orchestration:\n  models:\n" /* null */
	                           "models:\n  m:\n    file: m.gguf\n",
	                           no_env);
	assert_int_equal(c->orch.n_pool, 1);
	assert_string_equal(c->orch.pool[0], "m");
	config_free(c);
}

/* ---- INFERENCE_MODEL_ROLES -------------------------------------------- */

static void test_model_roles_env(void **state)
{
	char *env[] = {"INFERENCE_MODEL_ROLES={\"phi-4\":[\"coder\"],\"vllm:llama3\":[\"fast\","
	               "\"primary\"],\"gpt-oss-20b\":[]}",
	               NULL};
	struct config *c = load_ok(two_models, env);
	char *const *roles;
	size_t n;
	config_model_roles(c, "phi-4", &roles, &n); /* a local id: replaced */
	assert_int_equal(n, 1);
	assert_string_equal(roles[0], "coder");
	config_model_roles(c, "local:phi-4", &roles, &n);
	assert_int_equal(n, 1);
	config_model_roles(c, "deepseek-r1-7b", &roles, &n); /* untouched */
	assert_int_equal(n, 1);
	assert_string_equal(roles[0], "thinker");
	config_model_roles(c, "inference:deepseek-r1-7b", &roles, &n);
	assert_int_equal(n, 1);
	config_model_roles(c, "vllm:llama3", &roles, &n);
	assert_int_equal(n, 2);
	assert_string_equal(roles[0], "fast");
	assert_string_equal(roles[1], "primary");
	config_model_roles(c, "gpt-oss-20b", &roles, &n);
	assert_int_equal(n, 0);
	config_model_roles(c, "nobody", &roles, &n);
	assert_null(roles);
	assert_int_equal(n, 0);
	assert_int_equal(c->orch.n_extra_roles, 2);
	assert_string_equal(c->orch.extra_roles[0].model, "vllm:llama3");
	config_free(c);

	static const char *const bad[][2] = {
	    {"INFERENCE_MODEL_ROLES={\"phi-4\":", "INFERENCE_MODEL_ROLES: not valid JSON: "},
	    {"INFERENCE_MODEL_ROLES=[\"phi-4\"]", "INFERENCE_MODEL_ROLES: not an object"},
	    {"INFERENCE_MODEL_ROLES={\"phi-4\":[\"wizard\"]}",
	     "INFERENCE_MODEL_ROLES: 'phi-4': 'wizard' is not a role, expected roles from "
	     "primary, fast, coder, thinker, longctx"},
	    {"INFERENCE_MODEL_ROLES={\"phi-4\":[\"Primary\"]}",
	     "INFERENCE_MODEL_ROLES: 'phi-4': 'Primary' is not a role"},
	    {"INFERENCE_MODEL_ROLES={\"phi-4\":[1]}", "INFERENCE_MODEL_ROLES: 'phi-4': '' is not"},
	    {"INFERENCE_MODEL_ROLES={\"phi-4\":\"primary\"}",
	     "INFERENCE_MODEL_ROLES: 'phi-4' is not given a list"},
	    {"INFERENCE_MODEL_ROLES={\"phi-4\":[\"fast\",\"fast\"]}",
	     "INFERENCE_MODEL_ROLES: 'phi-4': role 'fast' is listed twice"},
	    {"INFERENCE_MODEL_ROLES={\"a b\":[\"fast\"]}",
	     "INFERENCE_MODEL_ROLES: 'a b' is not a model id"},
	    {"INFERENCE_MODEL_ROLES={\"x\":[],\"x\":[]}", "INFERENCE_MODEL_ROLES: not valid JSON"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *e1[] = {(char *)bad[i][0], NULL};
		load_fails(two_models, e1, false, bad[i][1], NULL);
	}
}

/* ---- the presets file ------------------------------------------------- */

static struct config *presets_ok(const char *yaml)
{
	struct config *c = load_ok(two_models, no_env);
	struct brg_error err = {0};
	enum brg_err e = config_load_presets_string(c, yaml, strlen(yaml), "p.yaml", &err);
	if (e)
		print_error("unexpected error: %s\n", err.message);
	assert_int_equal(e, BRG_OK);
	return c;
}

/* Expects "p.yaml:LINE: key 'KEY': " then 'also' somewhere. */
static void presets_fail(const char *yaml, int line, const char *key, const char *also)
{
	struct config *c = load_ok(two_models, no_env);
	struct brg_error err = {0};
	assert_int_equal(config_load_presets_string(c, yaml, strlen(yaml), "p.yaml", &err),
	                 BRG_E_CONFIG);
	assert_int_equal(c->orch.n_presets, 0);
	char want[256];
	snprintf(want, sizeof want, "p.yaml:%d: key '%s': ", line, key);
	if (strncmp(err.message, want, strlen(want)) != 0)
		fail_msg("message '%s' does not start with '%s'", err.message, want);
	if (also && !strstr(err.message, also))
		fail_msg("message '%s' lacks '%s'", err.message, also);
	config_free(c);
}

static void test_presets_file_sets_every_key(void **state)
{
	struct config *c = presets_ok("presets:\n"
	                              "  D3:\n"
	                              "    mode: debate\n"
	                              "    hardware: mac-full\n"
	                              "    size_gb: 12.3\n"
	                              "    notes: Both generate, phi-4 reconciles\n"
	                              "    members:\n"
	                              "      phi-4: [participant, reconciler]\n"
	                              "      deepseek-r1-7b: [participant]\n"
	                              "  mine:\n"
	                              "    members: {vllm:m: [model]}\n"
	                              "    mode: single\n");
	assert_int_equal(c->orch.n_presets, 2);
	const struct preset *p = config_find_preset(c, "D3");
	assert_non_null(p);
	assert_string_equal(p->name, "D3");
	assert_string_equal(p->mode, "debate");
	assert_string_equal(p->hardware, "mac-full");
	assert_true(p->size_gb > 12.29 && p->size_gb < 12.31);
	assert_string_equal(p->notes, "Both generate, phi-4 reconciles");
	assert_int_equal(p->line, 2);
	assert_int_equal(p->n_members, 2);
	assert_string_equal(p->members[0].model, "phi-4");
	assert_int_equal(p->members[0].n_mode_roles, 2);
	assert_string_equal(p->members[0].mode_roles[1], "reconciler");
	assert_string_equal(p->members[1].mode_roles[0], "participant");
	assert_true(p->is_usable);
	assert_null(p->missing);
	p = config_find_preset(c, "mine");
	assert_non_null(p);
	assert_null(p->hardware);
	assert_null(p->notes);
	assert_true(p->size_gb == 0);
	assert_false(p->is_usable); /* no provider vllm */
	assert_string_equal(p->missing, "vllm:m");
	assert_null(config_find_preset(c, "d3"));
	assert_null(config_find_preset(c, "D4"));
	config_free(c);
	c = presets_ok("");
	assert_int_equal(c->orch.n_presets, 0);
	config_free(c);
	c = presets_ok("presets:\n");
	assert_int_equal(c->orch.n_presets, 0);
	config_free(c);
}

static void test_presets_each_mode_role_rules(void **state)
{
	static const char *const valid[] = {
	    "presets:\n  s:\n    mode: single\n    members: {a: [model]}\n",
	    "presets:\n  c:\n    mode: critique\n    members: {a: [generator], b: [critic]}\n",
	    "presets:\n  d:\n    mode: debate\n    members: {a: [participant], b: [participant], "
	    "c: [reconciler]}\n",
	    "presets:\n  e:\n    mode: ensemble\n    members: {a: [member], b: [member]}\n",
	    "presets:\n  e:\n    mode: ensemble\n    members: {a: [member, synthesizer], b: "
	    "[member]}\n",
	    "presets:\n  p:\n    mode: pipeline\n    members: {a: [drafter], b: [validator]}\n",
	    "presets:\n  p:\n    mode: pipeline\n    members: {a: [drafter], b: [refiner], c: "
	    "[validator], d: []}\n",
	    "presets:\n  p:\n    mode: pipeline\n    members: {a: [drafter, validator], b: "
	    "[refiner]}\n",
	};
	for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
		config_free(presets_ok(valid[i]));
	static const struct {
		const char *members, *mode, *also;
	} bad[] = {
	    {"{a: [model], b: [model]}", "single", "single needs exactly 1 member, got 2"},
	    {"{a: [generator]}", "single", "'generator' is not a single role, expected model"},
	    {"{a: [generator, critic], b: [critic]}", "critique",
	     "critique needs exactly 1 critic"},
	    {"{a: [generator, critic]}", "critique", "critique needs exactly 2 members, got 1"},
	    {"{a: [generator], b: [generator]}", "critique", "critique needs exactly 1 generator"},
	    {"{a: [generator], b: []}", "critique", "got an empty list, expected a list of"},
	    {"{a: [participant, reconciler]}", "debate", "debate needs at least 2 members"},
	    {"{a: [participant], b: [reconciler]}", "debate",
	     "debate needs at least 2 participants, got 1"},
	    {"{a: [participant], b: [participant]}", "debate",
	     "debate needs exactly 1 reconciler, got 0"},
	    {"{a: [participant, reconciler], b: [participant, reconciler]}", "debate",
	     "exactly 1 reconciler, got 2"},
	    {"{a: [member]}", "ensemble", "ensemble needs at least 2 members, got 1"},
	    {"{a: [member, synthesizer], b: [synthesizer]}", "ensemble",
	     "ensemble needs at least 2 members, got 1"},
	    {"{a: [member, synthesizer], b: [member, synthesizer]}", "ensemble",
	     "ensemble needs at most 1 synthesizer, got 2"},
	    {"{a: [member, member], b: [member]}", "ensemble", "role 'member' is listed twice"},
	    {"{a: [drafter], b: [refiner]}", "pipeline",
	     "pipeline needs exactly 1 validator, got 0"},
	    {"{a: [drafter], b: [drafter, validator]}", "pipeline", "exactly 1 drafter, got 2"},
	    {"{a: [drafter, refiner, validator]}", "pipeline", "pipeline needs at least 2 members"},
	    {"{a: [drafter, refiner], b: [refiner, validator]}", "pipeline",
	     "pipeline needs at most 1 refiner, got 2"},
	    {"{a: [drafter], b: [validator], c: [critic]}", "pipeline",
	     "'critic' is not a pipeline role, expected drafter, refiner, validator"},
	    {"{a: drafter, b: [validator]}", "pipeline", "got a scalar, expected a list of"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char yaml[256];
		snprintf(yaml, sizeof yaml, "presets:\n  X:\n    mode: %s\n    members: %s\n",
		         bad[i].mode, bad[i].members);
		bool is_member = strstr(bad[i].also, "role") || strstr(bad[i].also, "list");
		char key[64];
		snprintf(key, sizeof key, "presets.X.members%s", is_member ? "." : "");
		/* A member's own error names it: presets.X.members.a or .b */
		if (is_member) {
			struct config *c = load_ok(two_models, no_env);
			struct brg_error err = {0};
			assert_int_equal(
			    config_load_presets_string(c, yaml, strlen(yaml), "p.yaml", &err),
			    BRG_E_CONFIG);
			if (!strstr(err.message, "p.yaml:4: key 'presets.X.members.") ||
			    !strstr(err.message, bad[i].also))
				fail_msg("case %zu: message '%s'", i, err.message);
			config_free(c);
		} else {
			presets_fail(yaml, 4, "presets.X.members", bad[i].also);
		}
	}
}

static void test_presets_file_errors_name_line_and_key(void **state)
{
	presets_fail("preset:\n", 1, "preset", "unknown key, expected presets");
	presets_fail("presets:\n  D3:\n    mode: debate\n    size: 1\n", 4, "presets.D3.size",
	             "unknown key, expected one of mode, hardware, size_gb, notes, members");
	presets_fail("presets:\n  D3:\n    members: {a: [model]}\n", 2, "presets.D3.mode",
	             "missing, expected single, critique, debate, ensemble or pipeline");
	presets_fail("presets:\n  D3:\n    mode: single\n", 2, "presets.D3.members",
	             "missing, expected a mapping of model ids");
	presets_fail("presets:\n  D3:\n    mode: quorum\n", 3, "presets.D3.mode",
	             "'quorum' is not one of single, critique, debate, ensemble, pipeline");
	presets_fail("presets:\n  D3:\n    mode: self_consistency\n", 3, "presets.D3.mode", NULL);
	presets_fail("presets:\n  D3:\n    mode: single\n    hardware: laptop\n", 4,
	             "presets.D3.hardware",
	             "is not one of mac-light, mac-medium, mac-full, server");
	presets_fail("presets:\n  D3:\n    mode: single\n    size_gb: big\n", 4,
	             "presets.D3.size_gb", "'big' is not a number");
	presets_fail("presets:\n  D3:\n    mode: single\n    size_gb: -1\n", 4,
	             "presets.D3.size_gb", NULL);
	presets_fail("presets:\n  D3:\n    mode: single\n    notes: |\n      a\n      b\n", 4,
	             "presets.D3.notes", "got several lines");
	presets_fail("presets:\n  D 3:\n    mode: single\n", 2, "presets.D 3", "not a preset name");
	presets_fail("presets:\n  D3: debate\n", 2, "presets.D3", "got a scalar");
	presets_fail("presets:\n  D3:\n    mode: single\n    members: {a: [model]}\n"
	             "  D3:\n    mode: single\n    members: {a: [model]}\n",
	             5, "presets.D3", "duplicate preset name, first declared at line 2");
	presets_fail("presets:\n  D3:\n    mode: single\n    members:\n      a: [model]\n"
	             "      a: [model]\n",
	             6, "presets.D3.members.a", "duplicate model id");
	presets_fail("presets:\n  D3:\n    mode: single\n    members:\n      a b: [model]\n", 5,
	             "presets.D3.members.a b", "not a model id");
	presets_fail("presets:\n  D3:\n    mode: single\n    members: []\n", 4,
	             "presets.D3.members", "got a list");
	presets_fail("presets:\n  D3:\n    mode: single\n    members:\n", 4, "presets.D3.members",
	             "single needs exactly 1 member, got 0");
	/* A file that is not there, named explicitly. */
	struct config *c = load_ok(two_models, no_env);
	struct brg_error err = {0};
	assert_int_equal(config_load_presets(c, "/nonexistent/presets.yaml", &err), BRG_E_CONFIG);
	assert_string_equal(err.message,
	                    "cannot read /nonexistent/presets.yaml: No such file or directory");
	config_free(c);
}

/* ---- the shipped file ------------------------------------------------- */

static const char *const spec_names[] = {
    "S1", "S2", "S3", "S4", "S5",  "S6",  "S7",  "S8",  "D1",  "D2",  "D3", "D4", "D5",
    "D6", "D7", "D8", "D9", "D10", "D11", "D12", "D13", "D14", "D15", "T1", "T2", "T3",
    "T4", "T5", "T6", "T7", "T8",  "T9",  "T10", "T11", "T12", "T13", "Q1", "Q2", "Q3",
    "Q4", "Q5", "Q6", "Q7", "P1",  "P2",  "P3",  "P4",  "P5",  "P6"};

/* The spec's Mode column, in spec_names' order. */
static const char *const spec_modes[] = {
    "single",   "single",   "single",   "single",   "single",   "single",   "single",
    "single",   "pipeline", "critique", "debate",   "critique", "pipeline", "pipeline",
    "critique", "critique", "critique", "debate",   "pipeline", "critique", "debate",
    "critique", "critique", "pipeline", "ensemble", "pipeline", "debate",   "pipeline",
    "pipeline", "ensemble", "debate",   "ensemble", "pipeline", "pipeline", "pipeline",
    "pipeline", "ensemble", "pipeline", "ensemble", "debate",   "ensemble", "pipeline",
    "ensemble", "ensemble", "pipeline", "debate",   "ensemble", "pipeline", "ensemble"};

/* The roles 'model' has in preset 'p', as "a,b"; "" when it has none,
 * "-" when it is not a member. */
static const char *roles_of(const struct preset *p, const char *model)
{
	static char buf[64];
	for (size_t i = 0; i < p->n_members; i++) {
		if (strcmp(p->members[i].model, model) != 0)
			continue;
		buf[0] = '\0';
		for (size_t j = 0; j < p->members[i].n_mode_roles; j++)
			snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", j ? "," : "",
			         p->members[i].mode_roles[j]);
		return buf;
	}
	return "-";
}

static void test_shipped_presets_match_the_spec(void **state)
{
	struct config *c = NULL;
	struct brg_error err = {0};
	assert_int_equal(config_load(NULL, no_env, &c, &err), BRG_OK);
	enum brg_err e = config_load_presets(c, "config/presets.yaml", &err);
	if (e)
		fail_msg("config/presets.yaml: %s", err.message);
	_Static_assert(sizeof spec_names / sizeof spec_names[0] == 49, "8+15+13+7+6");
	/* 41 in the spec's title, 49 in its tables: S1-S8, D1-D15, T1-T13,
	 * Q1-Q7, P1-P6 — every one of the tables. */
	assert_int_equal(c->orch.n_presets, sizeof spec_names / sizeof spec_names[0]);
	for (size_t i = 0; i < c->orch.n_presets; i++) {
		assert_string_equal(c->orch.presets[i].name, spec_names[i]);
		assert_string_equal(c->orch.presets[i].mode, spec_modes[i]);
		assert_non_null(c->orch.presets[i].hardware);
		assert_true(c->orch.presets[i].size_gb > 0);
		assert_false(c->orch.presets[i].is_usable); /* no models configured */
	}
	const struct preset *p = config_find_preset(c, "D1");
	assert_int_equal(p->n_members, 2);
	assert_string_equal(roles_of(p, "llama-3.2-3b"), "drafter");
	assert_string_equal(roles_of(p, "phi-4"), "validator");
	assert_string_equal(p->hardware, "mac-medium");
	assert_true(p->size_gb > 9.89 && p->size_gb < 9.91);
	p = config_find_preset(c, "D3");
	assert_string_equal(roles_of(p, "phi-4"), "participant,reconciler");
	assert_string_equal(roles_of(p, "deepseek-r1-7b"), "participant");
	assert_string_equal(p->hardware, "mac-full");
	assert_string_equal(p->missing, "phi-4, deepseek-r1-7b");
	p = config_find_preset(c, "D2");
	assert_string_equal(roles_of(p, "phi-4"), "generator");
	assert_string_equal(roles_of(p, "qwen2.5-7b"), "critic");
	p = config_find_preset(c, "D8");
	assert_string_equal(roles_of(p, "phi-3-medium-128k"), "generator");
	assert_string_equal(roles_of(p, "phi-4"), "critic");
	assert_string_equal(p->hardware, "server");
	p = config_find_preset(c, "D15");
	assert_string_equal(roles_of(p, "gpt-oss-20b"), "generator");
	assert_string_equal(roles_of(p, "granite-20b-code"), "critic");
	p = config_find_preset(c, "T1");
	assert_string_equal(roles_of(p, "llama-3.2-3b"), "drafter");
	assert_string_equal(roles_of(p, "qwen2.5-7b"), "refiner");
	assert_string_equal(roles_of(p, "phi-4"), "validator");
	p = config_find_preset(c, "T2");
	assert_int_equal(p->n_members, 3);
	assert_string_equal(roles_of(p, "phi-4"), "member,synthesizer");
	assert_string_equal(roles_of(p, "deepseek-r1-7b"), "member");
	assert_string_equal(roles_of(p, "llama-3.2-3b"), "member");
	assert_true(p->size_gb > 14.29 && p->size_gb < 14.31);
	p = config_find_preset(c, "T13");
	assert_string_equal(roles_of(p, "phi-4"), "refiner");
	assert_string_equal(roles_of(p, "granite-8b-code-128k"), "validator");
	p = config_find_preset(c, "S7");
	assert_string_equal(roles_of(p, "gpt-oss-20b"), "model");
	assert_string_equal(p->hardware, "server");
	p = config_find_preset(c, "S4");
	assert_string_equal(p->hardware, "mac-light");
	p = config_find_preset(c, "Q1");
	assert_int_equal(p->n_members, 4);
	assert_string_equal(roles_of(p, "qwen2.5-7b"), "member");
	assert_string_equal(roles_of(p, "phi-4"), "member,synthesizer");
	assert_true(p->size_gb > 18.69 && p->size_gb < 18.71);
	p = config_find_preset(c, "Q4");
	assert_string_equal(roles_of(p, "phi-4"), "participant,reconciler");
	assert_string_equal(roles_of(p, "llama-3.2-3b"), "-");
	p = config_find_preset(c, "P4");
	assert_int_equal(p->n_members, 7);
	assert_string_equal(roles_of(p, "gpt-oss-20b"), "member");
	assert_string_equal(roles_of(p, "granite-20b-code"), "-");
	p = config_find_preset(c, "P6");
	assert_int_equal(p->n_members, 8);
	assert_string_equal(p->mode, "ensemble");
	assert_true(p->size_gb > 53.19 && p->size_gb < 53.21);
	static const char *const eight[] = {
	    "llama-3.2-3b", "qwen2.5-7b",        "deepseek-r1-7b", "granite-8b-code-128k",
	    "phi-4",        "phi-3-medium-128k", "gpt-oss-20b",    "granite-20b-code"};
	for (size_t i = 0; i < 8; i++)
		assert_string_not_equal(roles_of(p, eight[i]), "-");
	config_free(c);
}

/* ---- usable presets and config_check_presets -------------------------- */

static const char usable_presets[] = "presets:\n"
                                     "  L:\n"
                                     "    mode: debate\n"
                                     "    members:\n"
                                     "      phi-4: [participant, reconciler]\n"
                                     "      local:deepseek-r1-7b: [participant]\n"
                                     "  R:\n"
                                     "    mode: critique\n"
                                     "    members: {phi-4: [generator], vllm:m: [critic]}\n"
                                     "  G:\n"
                                     "    mode: single\n"
                                     "    members: {gpt-4o: [model]}\n"
                                     "  U:\n"
                                     "    mode: ensemble\n"
                                     "    members: {ghost: [member], phi-4: [member], "
                                     "openai:x: [member], nope:y: [member]}\n";

/* two_models + usable_presets in DIR/presets.yaml beside it + providers
 * 'vllm' (serving gpt-4o) and 'openai'. */
static enum brg_err check_with(char *const *envp, const char *extra_yaml, struct config **c,
                               struct brg_error *err)
{
	char *dir = make_dir();
	char *presets = write_file(dir, "presets.yaml", usable_presets);
	char *yaml = NULL;
	assert_true(asprintf(&yaml, "%s%s", two_models, extra_yaml ? extra_yaml : "") > 0);
	enum brg_err e = load_in(dir, yaml, envp, c, err);
	if (!e)
		assert_string_equal((*c)->orch.presets_file, presets); /* found beside */
	static const char prov[] = "providers:\n"
	                           "  vllm:\n    base_url: http://v:8000/v1\n    models: [gpt-4o]\n"
	                           "  openai:\n    base_url: https://api.openai.com/v1\n";
	if (!e)
		e = config_load_providers_string(*c, prov, strlen(prov), "prov.yaml", no_env, err);
	if (!e)
		e = config_check_presets(*c, err);
	free(yaml);
	free(presets);
	rm_dir(dir);
	return e;
}

static void test_presets_usable_by_configured_models(void **state)
{
	struct config *c = NULL;
	struct brg_error err = {0};
	enum brg_err e = check_with(no_env, NULL, &c, &err);
	if (e)
		fail_msg("%s", err.message);
	const struct preset *p = config_find_preset(c, "L");
	assert_true(p->is_usable); /* local ids, "local:" prefix */
	assert_null(p->missing);
	p = config_find_preset(c, "R");
	assert_true(p->is_usable); /* vllm:m, vllm a provider */
	p = config_find_preset(c, "G");
	assert_true(p->is_usable); /* gpt-4o: a model vllm lists */
	p = config_find_preset(c, "U");
	assert_false(p->is_usable);
	assert_string_equal(p->missing, "ghost, nope:y");
	config_free(c);
	/* Before the providers, only local models count. */
	char *dir = make_dir();
	char *presets = write_file(dir, "presets.yaml", usable_presets);
	assert_int_equal(load_in(dir, two_models, no_env, &c, &err), BRG_OK);
	assert_true(config_find_preset(c, "L")->is_usable);
	assert_false(config_find_preset(c, "R")->is_usable);
	assert_string_equal(config_find_preset(c, "R")->missing, "vllm:m");
	config_free(c);
	free(presets);
	rm_dir(dir);
}

static void check_fails(char *const *envp, const char *extra_yaml, const char *want)
{
	struct config *c = NULL;
	struct brg_error err = {0};
	enum brg_err e = check_with(envp, extra_yaml, &c, &err);
	assert_int_equal(e, BRG_E_CONFIG);
	if (strstr(want, "models.yaml:")) {
		if (!strstr(err.message, want))
			fail_msg("message '%s' lacks '%s'", err.message, want);
	} else if (strcmp(err.message, want) != 0) {
		fail_msg("message '%s' is not '%s'", err.message, want);
	}
	config_free(c);
}

static void test_check_presets_active_preset_and_pool(void **state)
{
	char *ok_env[] = {"INFERENCE_CONFIG=R",
	                  "INFERENCE_ORCHESTRATION_MODELS=phi-4,vllm:x,gpt-4o",
	                  "INFERENCE_DEBATE_RECONCILE_MODEL=openai:gpt-4o",
	                  "INFERENCE_ENSEMBLE_SYNTHESIS_MODEL=none", NULL};
	struct config *c = NULL;
	struct brg_error err = {0};
	enum brg_err e = check_with(ok_env, NULL, &c, &err);
	if (e)
		fail_msg("%s", err.message);
	config_free(c);

	char *unusable[] = {"INFERENCE_CONFIG=U", NULL};
	check_fails(unusable, NULL,
	            "INFERENCE_CONFIG: preset 'U' names models that are not configured: ghost, "
	            "nope:y");
	char *unknown[] = {"INFERENCE_CONFIG=D3", NULL};
	check_fails(unknown, NULL, "INFERENCE_CONFIG: no preset 'D3', expected one of L, R, G, U");
	check_fails(no_env, "orchestration:\n  preset: U\n",
	            "models.yaml:9: key 'orchestration.preset': preset 'U' names models that are "
	            "not configured: ghost, nope:y");
	char *pool[] = {"INFERENCE_ORCHESTRATION_MODELS=phi-4,ghost", NULL};
	check_fails(pool, NULL,
	            "INFERENCE_ORCHESTRATION_MODELS: 'ghost' names no configured model, expected a "
	            "models.yaml id, or PROVIDER:model for a configured provider");
	check_fails(no_env, "orchestration:\n  models: [phi-4, nope:m]\n",
	            "models.yaml:9: key 'orchestration.models': 'nope:m' names no configured");
	char *reconcile[] = {"INFERENCE_DEBATE_RECONCILE_MODEL=ghost", NULL};
	check_fails(reconcile, NULL,
	            "INFERENCE_DEBATE_RECONCILE_MODEL: 'ghost' is neither a role (primary, fast, "
	            "coder, thinker, longctx) nor a configured model");
	check_fails(no_env, "orchestration:\n  ensemble_synthesis_model: ghost\n",
	            "models.yaml:9: key 'orchestration.ensemble_synthesis_model': 'ghost' is "
	            "neither a role (primary, fast, coder, thinker, longctx, or none)");

	/* An active preset with no presets file at all. */
	char *env[] = {"INFERENCE_CONFIG=D3", NULL};
	assert_int_equal(config_load(NULL, env, &c, &err), BRG_OK);
	assert_int_equal(config_check_presets(c, &err), BRG_E_CONFIG);
	assert_string_equal(err.message,
	                    "INFERENCE_CONFIG: no preset 'D3': no presets file was read (set "
	                    "INFERENCE_PRESETS_FILE, or put presets.yaml beside the models file)");
	config_free(c);
}

static void test_presets_file_variable_and_shipped_active_preset(void **state)
{
	/* INFERENCE_PRESETS_FILE names the shipped file; D3's models are local. */
	char *dir = make_dir();
	char *env[] = {"INFERENCE_PRESETS_FILE=config/presets.yaml", "INFERENCE_CONFIG=D3", NULL};
	struct config *c = NULL;
	struct brg_error err = {0};
	assert_int_equal(load_in(dir, two_models, env, &c, &err), BRG_OK);
	assert_int_equal(c->orch.presets_file[0], '/');
	assert_non_null(strstr(c->orch.presets_file, "/config/presets.yaml"));
	assert_int_equal(config_check_presets(c, &err), BRG_OK);
	assert_true(config_find_preset(c, "D3")->is_usable);
	assert_true(config_find_preset(c, "S1")->is_usable);
	assert_false(config_find_preset(c, "D1")->is_usable);
	assert_string_equal(config_find_preset(c, "D1")->missing, "llama-3.2-3b");
	config_free(c);
	char *d1[] = {"INFERENCE_PRESETS_FILE=config/presets.yaml", "INFERENCE_CONFIG=D1", NULL};
	assert_int_equal(load_in(dir, two_models, d1, &c, &err), BRG_OK);
	assert_int_equal(config_check_presets(c, &err), BRG_E_CONFIG);
	assert_string_equal(err.message, "INFERENCE_CONFIG: preset 'D1' names models that are not "
	                                 "configured: llama-3.2-3b");
	config_free(c);
	/* A broken presets file beside models.yaml stops the load. */
	char *bad = write_file(dir, "presets.yaml", "presets:\n  X: 1\n");
	assert_int_equal(load_in(dir, two_models, no_env, &c, &err), BRG_E_CONFIG);
	assert_null(c);
	assert_non_null(strstr(err.message, "/presets.yaml:2: key 'presets.X': got a scalar"));
	free(bad);
	rm_dir(dir);
}

/* ---- per-model context budgets ---- */

static void test_model_budget_parts_parse_and_must_leave_room(void **state)
{
	(void)state;
	struct config *c = load_ok("models:\n"
	                           "  m:\n"
	                           "    file: m.gguf\n"
	                           "    context_length: 4096\n"
	                           "    budget_handoff: 800\n"
	                           "    budget_user_query: 1200\n",
	                           no_env);
	assert_int_equal(c->models[0].budget_handoff, 800);
	assert_int_equal(c->models[0].budget_user_query, 1200);
	assert_int_equal(c->models[0].budget_system, 0); /* derived */
	config_free(c);
	load_fails("models:\n"
	           "  m:\n"
	           "    file: m.gguf\n"
	           "    context_length: 1024\n"
	           "    budget_handoff: 600\n"
	           "    budget_user_query: 500\n",
	           no_env, true, "2:", "leave nothing to generate");
	load_fails("models:\n  m:\n    file: m.gguf\n    budget_system: -1\n", no_env, true,
	           "4:", "budget_system");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_model_budget_parts_parse_and_must_leave_room),
	    cmocka_unit_test(test_orch_defaults),
	    cmocka_unit_test(test_orch_env_valid_values),
	    cmocka_unit_test(test_orch_env_invalid_values_name_the_variable),
	    cmocka_unit_test(test_orch_env_empty_values_are_unset),
	    cmocka_unit_test(test_orch_yaml_section_sets_every_key),
	    cmocka_unit_test(test_orch_yaml_errors_name_line_and_key),
	    cmocka_unit_test(test_model_roles_env),
	    cmocka_unit_test(test_presets_file_sets_every_key),
	    cmocka_unit_test(test_presets_each_mode_role_rules),
	    cmocka_unit_test(test_presets_file_errors_name_line_and_key),
	    cmocka_unit_test(test_shipped_presets_match_the_spec),
	    cmocka_unit_test(test_presets_usable_by_configured_models),
	    cmocka_unit_test(test_check_presets_active_preset_and_pool),
	    cmocka_unit_test(test_presets_file_variable_and_shipped_active_preset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
