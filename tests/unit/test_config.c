/*
 * test_config.c — unit tests for config/: the models.yaml format, its
 * validation messages (file, line, key), and the INFERENCE_* overrides.
 * providers.yaml has its own file, test_config_providers.c.  Each test
 * writes its YAML to a fresh temporary file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "config/config.h"
#include "core/log.h"

static char *const no_env[] = {NULL};

/* Loads 'yaml' from a temporary file, expecting success. */
static struct config *load_ok(const char *yaml, char *const *envp)
{
	char *path = write_yaml(yaml);
	struct config *c = NULL;
	struct brg_error err = {0};
	enum brg_err e = config_load(path, envp, &c, &err);
	if (e)
		print_error("unexpected error: %s\n", err.message);
	assert_int_equal(e, BRG_OK);
	assert_non_null(c);
	assert_string_equal(c->source, path);
	unlink(path);
	free(path);
	return c;
}

/*
 * Loads 'yaml', expecting BRG_E_CONFIG with a message that starts
 * "FILE:LINE: key 'KEY':" and contains 'also' (when not NULL).
 */
static void load_fails(const char *yaml, char *const *envp, int line, const char *key,
                       const char *also)
{
	char *path = write_yaml(yaml);
	struct config *c = (struct config *)1;
	struct brg_error err = {0};
	assert_int_equal(config_load(path, envp, &c, &err), BRG_E_CONFIG);
	assert_null(c);
	assert_int_equal(err.code, BRG_E_CONFIG);
	char want[512];
	snprintf(want, sizeof want, "%s:%d: key '%s': ", path, line, key);
	if (strncmp(err.message, want, strlen(want)) != 0)
		fail_msg("message '%s' does not start with '%s'", err.message, want);
	if (also && !strstr(err.message, also))
		fail_msg("message '%s' lacks '%s'", err.message, also);
	unlink(path);
	free(path);
}

static const char full_yaml[] = "server:\n"
                                "  host: 0.0.0.0\n"
                                "  port: 9000\n"
                                "  models_dir: /srv/models\n"
                                "  log_level: debug\n"
                                "  max_body_bytes: 65536\n"
                                "  request_timeout: 30\n"
                                "  api_key: sk-local\n"
                                "preload: [tiny, stories260k]\n"
                                "models:\n"
                                "  stories260k:\n"
                                "    file: stories260K.gguf\n"
                                "    context_length: 2048\n"
                                "    threads: 2\n"
                                "    slots: 4\n"
                                "    gpu_layers: -1\n"
                                "    roles: [primary, fast]\n"
                                "    chat_template: chatml\n"
                                "    batch: 256\n"
                                "    max_queue: 8\n"
                                "    prefill_helper: false\n"
                                "  tiny:\n"
                                "    file: /abs/tiny.gguf\n";

static void test_valid_full_file_sets_every_key(void **state)
{
	struct config *c = load_ok(full_yaml, no_env);
	assert_string_equal(c->host, "0.0.0.0");
	assert_int_equal(c->port, 9000);
	assert_string_equal(c->models_dir, "/srv/models");
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_int_equal(c->max_body_bytes, 65536);
	assert_int_equal(c->request_timeout_s, 30);
	assert_string_equal(c->api_key, "sk-local");
	assert_int_equal(c->n_preload, 2);
	assert_string_equal(c->preload[0], "tiny");
	assert_string_equal(c->preload[1], "stories260k");
	assert_int_equal(c->n_models, 2);
	const struct model_config *m = &c->models[0];
	assert_string_equal(m->id, "stories260k");
	assert_string_equal(m->file, "stories260K.gguf");
	assert_string_equal(m->path, "/srv/models/stories260K.gguf");
	assert_int_equal(m->context_length, 2048);
	assert_int_equal(m->threads, 2);
	assert_int_equal(m->slots, 4);
	assert_int_equal(m->gpu_layers, -1);
	assert_int_equal(m->n_roles, 2);
	assert_string_equal(m->roles[0], "primary");
	assert_string_equal(m->roles[1], "fast");
	assert_string_equal(m->chat_template, "chatml");
	assert_int_equal(m->batch, 256);
	assert_int_equal(m->max_queue, 8);
	assert_false(m->prefill_helper);
	assert_int_equal(m->line, 11);
	config_free(c);
}

static void test_model_defaults_apply_when_keys_are_absent(void **state)
{
	struct config *c = load_ok("models:\n  m:\n    file: m.gguf\n", no_env);
	const struct model_config *m = &c->models[0];
	assert_int_equal(m->context_length, 4096);
	assert_int_equal(m->threads, 0);
	assert_int_equal(m->slots, 1);
	assert_int_equal(m->gpu_layers, 0);
	assert_int_equal(m->batch, 512);
	assert_int_equal(m->max_queue, 64);
	assert_true(m->prefill_helper);
	assert_int_equal(m->n_roles, 1);
	assert_string_equal(m->roles[0], "primary");
	assert_null(m->chat_template);
	assert_null(c->api_key);
	assert_int_equal(c->n_preload, 0);
	config_free(c);
}

static void test_absolute_file_path_is_kept(void **state)
{
	struct config *c = load_ok(full_yaml, no_env);
	assert_string_equal(config_find_model(c, "tiny")->path, "/abs/tiny.gguf");
	config_free(c);
}

static void test_unknown_key_reports_line_and_key(void **state)
{
	load_fails("server:\n"
	           "  port: 8085\n"
	           "models:\n"
	           "  m:\n"
	           "    file: m.gguf\n"
	           "    slots: 2\n"
	           "    slotz: 4\n",
	           no_env, 7, "models.m.slotz", "unknown key, expected one of file, ");
	load_fails("sever:\n  port: 1\n", no_env, 1, "sever", "expected one of server, preload");
}

static void test_wrong_type_reports_line_and_key(void **state)
{
	load_fails("server:\n  port: [1, 2]\n", no_env, 2, "server.port",
	           "got a list, expected an integer in 0..65535");
	load_fails("models:\n  m:\n    file: m.gguf\n    slots: four\n", no_env, 4,
	           "models.m.slots", "'four' is not an integer in 1..256");
	load_fails("server:\n  port: \"8085\"\n", no_env, 2, "server.port",
	           "'8085' is a quoted string, expected an integer in 0..65535 unquoted");
	load_fails("models:\n  m: m.gguf\n", no_env, 2, "models.m",
	           "got a scalar, expected a mapping with at least 'file'");
	load_fails("server: [a]\n", no_env, 1, "server", "got a list");
}

static void test_port_out_of_range_reports_the_range(void **state)
{
	load_fails("# comment\nserver:\n  port: 70000\n", no_env, 3, "server.port",
	           "70000 is out of range, expected an integer in 0..65535");
	load_fails("server:\n  port: -1\n", no_env, 2, "server.port", "out of range");
	load_fails("models:\n  m:\n    file: m.gguf\n    context_length: 99999999999999999999\n",
	           no_env, 4, "models.m.context_length", "out of range");
}

static void test_duplicate_model_id_names_the_first(void **state)
{
	load_fails("models:\n"
	           "  m:\n"
	           "    file: a.gguf\n"
	           "  m:\n"
	           "    file: b.gguf\n",
	           no_env, 4, "models.m", "duplicate model id, first declared at line 2");
}

static void test_duplicate_key_is_an_error(void **state)
{
	load_fails("server:\n  port: 1\n  port: 2\n", no_env, 3, "server.port",
	           "duplicate key, first declared at line 2");
}

static void test_invalid_model_id_is_an_error(void **state)
{
	load_fails("models:\n  \"bad id\":\n    file: a.gguf\n", no_env, 2, "models.bad id",
	           "not a valid model id");
}

static void test_missing_file_key_is_an_error(void **state)
{
	load_fails("models:\n  m:\n    slots: 2\n", no_env, 2, "models.m.file", "missing");
}

static void test_unknown_role_lists_the_roles(void **state)
{
	load_fails("models:\n  m:\n    file: m.gguf\n    roles: [primary,\n      chef]\n", no_env,
	           5, "models.m.roles",
	           "'chef' is not a role, expected a list of roles from primary, fast, coder, "
	           "thinker, longctx");
}

static void test_preload_of_unknown_id_is_an_error(void **state)
{
	load_fails("preload:\n  - m\n  - nope\nmodels:\n  m:\n    file: m.gguf\n", no_env, 3,
	           "preload", "'nope' names no model under 'models', expected one of m");
}

static void test_bad_log_level_is_an_error(void **state)
{
	load_fails("server:\n  log_level: loud\n", no_env, 2, "server.log_level",
	           "'loud' is not a log level");
}

static void test_yaml_syntax_error_reports_the_line(void **state)
{
	char *path = write_yaml("server:\n  port: 1\n  host: [oops\n");
	struct config *c;
	struct brg_error err = {0};
	assert_int_equal(config_load(path, no_env, &c, &err), BRG_E_CONFIG);
	assert_non_null(strstr(err.message, "YAML syntax error"));
	assert_int_equal(strncmp(err.message, path, strlen(path)), 0);
	unlink(path);
	free(path);
}

static void test_env_overrides_win_over_file(void **state)
{
	char *const env[] = {
	    "PATH=/usr/bin",
	    "INFERENCE_HOST=10.0.0.1",
	    "INFERENCE_PORT=9999",
	    "INFERENCE_LOG_LEVEL=WARNING",
	    "INFERENCE_REQUEST_TIMEOUT=7",
	    "INFERENCE_API_KEY=secret",
	    "INFERENCE_MAX_BODY_BYTES=2048",
	    "INFERENCE_PRELOAD_MODELS= stories260k ,",
	    "INFERENCE_MODELS_DIR=/env/models",
	    NULL,
	};
	struct config *c = load_ok(full_yaml, env);
	assert_string_equal(c->host, "10.0.0.1");
	assert_int_equal(c->port, 9999);
	assert_int_equal(c->log_level, LOG_WARN);
	assert_int_equal(c->request_timeout_s, 7);
	assert_string_equal(c->api_key, "secret");
	assert_int_equal(c->max_body_bytes, 2048);
	assert_int_equal(c->n_preload, 1);
	assert_string_equal(c->preload[0], "stories260k");
	assert_string_equal(c->models[0].path, "/env/models/stories260K.gguf");
	config_free(c);
}

static void test_env_empty_value_counts_as_unset(void **state)
{
	char *const env[] = {"INFERENCE_PORT=", "INFERENCE_API_KEY=", NULL};
	struct config *c = load_ok(full_yaml, env);
	assert_int_equal(c->port, 9000);
	assert_string_equal(c->api_key, "sk-local");
	config_free(c);
}

static void test_env_preload_empty_preloads_nothing(void **state)
{
	char *const env[] = {"INFERENCE_PRELOAD_MODELS=", NULL};
	struct config *c = load_ok(full_yaml, env);
	assert_int_equal(c->n_preload, 0);
	config_free(c);
}

static void test_env_preload_of_unknown_id_is_an_error(void **state)
{
	char *const env[] = {"INFERENCE_PRELOAD_MODELS=tiny,ghost", NULL};
	char *path = write_yaml(full_yaml);
	struct config *c;
	struct brg_error err = {0};
	assert_int_equal(config_load(path, env, &c, &err), BRG_E_CONFIG);
	assert_non_null(strstr(err.message, "INFERENCE_PRELOAD_MODELS: 'ghost'"));
	unlink(path);
	free(path);
}

static void test_env_gpu_layers_applies_to_all_models(void **state)
{
	char *const env[] = {"INFERENCE_GPU_LAYERS=-1", NULL};
	struct config *c = load_ok("models:\n"
	                           "  a:\n    file: a.gguf\n    gpu_layers: 10\n"
	                           "  b:\n    file: b.gguf\n",
	                           env);
	assert_int_equal(c->models[0].gpu_layers, -1);
	assert_int_equal(c->models[1].gpu_layers, -1);
	config_free(c);
}

static void test_env_invalid_value_names_the_variable(void **state)
{
	struct {
		const char *var, *message;
	} cases[] = {
	    {"INFERENCE_PORT=abc", "INFERENCE_PORT: 'abc' is not an integer in 0..65535"},
	    {"INFERENCE_PORT=65536", "INFERENCE_PORT: 65536 is out of range"},
	    {"INFERENCE_GPU_LAYERS=-2", "INFERENCE_GPU_LAYERS: -2 is out of range"},
	    {"INFERENCE_LOG_LEVEL=chatty", "INFERENCE_LOG_LEVEL: 'chatty' is not a log level"},
	    {"INFERENCE_MAX_BODY_BYTES=12", "INFERENCE_MAX_BODY_BYTES: 12 is out of range"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *const env[] = {(char *)cases[i].var, NULL};
		struct config *c;
		struct brg_error err = {0};
		assert_int_equal(config_load(NULL, env, &c, &err), BRG_E_CONFIG);
		assert_null(c);
		if (strncmp(err.message, cases[i].message, strlen(cases[i].message)) != 0)
			fail_msg("got '%s', want '%s...'", err.message, cases[i].message);
	}
}

static void test_relative_models_dir_resolves_against_file_dir(void **state)
{
	char dir[] = "/tmp/brigade-test-config-dir-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char sub[PATH_MAX], file[PATH_MAX];
	snprintf(sub, sizeof sub, "%s/weights", dir);
	snprintf(file, sizeof file, "%s/models.yaml", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fputs("server:\n  models_dir: weights\nmodels:\n  m:\n    file: m.gguf\n", f);
	fclose(f);

	struct config *c;
	struct brg_error err = {0};
	assert_int_equal(config_load(file, no_env, &c, &err), BRG_OK);
	char *want_dir = realpath(sub, NULL);
	char want_path[PATH_MAX + 16];
	snprintf(want_path, sizeof want_path, "%s/m.gguf", want_dir);
	assert_string_equal(c->models_dir, want_dir);
	assert_string_equal(c->models[0].path, want_path);
	config_free(c);

	/* INFERENCE_MODELS_DIR, relative, is against the working directory. */
	char *const env[] = {"INFERENCE_MODELS_DIR=elsewhere", NULL};
	assert_int_equal(config_load(file, env, &c, &err), BRG_OK);
	char cwd[PATH_MAX], want_env[PATH_MAX + 16];
	assert_non_null(getcwd(cwd, sizeof cwd));
	snprintf(want_env, sizeof want_env, "%s/elsewhere", cwd);
	assert_string_equal(c->models_dir, want_env);
	config_free(c);

	free(want_dir);
	unlink(file);
	rmdir(sub);
	rmdir(dir);
}

static void test_pooling_and_keys_file(void **state)
{
	(void)state;
	struct config *c = load_ok("server:\n"
	                           "  api_keys_file: keys.txt\n"
	                           "models:\n"
	                           "  a: {file: a.gguf, pooling: mean}\n"
	                           "  b: {file: b.gguf, pooling: LAST}\n"
	                           "  c: {file: c.gguf}\n",
	                           no_env);
	assert_string_equal(config_pooling_names[c->models[0].pooling], "mean");
	assert_string_equal(config_pooling_names[c->models[1].pooling], "last");
	assert_int_equal(c->models[2].pooling, -1); /* the GGUF's own */
	/* Relative to the file's folder, like models_dir. */
	assert_string_equal(c->api_keys_file, "/tmp/keys.txt");
	config_free(c);
	char *env[] = {"INFERENCE_API_KEYS_FILE=/etc/brigade/keys", NULL};
	c = load_ok("models: {}\n", env);
	assert_string_equal(c->api_keys_file, "/etc/brigade/keys");
	config_free(c);
	load_fails("models:\n  a:\n    file: a.gguf\n    pooling: max\n", no_env, 4,
	           "models.a.pooling", "one of mean, cls, last, none");
}

static void test_config_find_model_finds_by_id(void **state)
{
	struct config *c = load_ok(full_yaml, no_env);
	const struct model_config *m = config_find_model(c, "tiny");
	assert_non_null(m);
	assert_string_equal(m->id, "tiny");
	assert_ptr_equal(config_find_model(c, "stories260k"), &c->models[0]);
	assert_null(config_find_model(c, "Tiny"));
	assert_null(config_find_model(c, NULL));
	assert_null(config_find_model(NULL, "tiny"));
	config_free(c);
}

static void test_missing_file_cannot_be_read(void **state)
{
	struct config *c;
	struct brg_error err = {0};
	assert_int_equal(config_load("/nonexistent/brigade.yaml", no_env, &c, &err), BRG_E_CONFIG);
	assert_string_equal(err.message,
	                    "cannot read /nonexistent/brigade.yaml: No such file or directory");
}

static void test_empty_file_gives_defaults(void **state)
{
	struct config *c = load_ok("", no_env);
	assert_string_equal(c->host, "127.0.0.1");
	assert_int_equal(c->port, 8085);
	assert_int_equal(c->log_level, LOG_INFO);
	assert_int_equal(c->max_body_bytes, 4u << 20);
	assert_int_equal(c->request_timeout_s, 120);
	assert_null(c->api_key);
	assert_int_equal(c->n_models, 0);
	config_free(c);
	c = load_ok("# only a comment\n", no_env);
	assert_int_equal(c->n_models, 0);
	config_free(c);
}

static void test_null_path_gives_defaults_without_models(void **state)
{
	struct config *c;
	struct brg_error err = {0};
	assert_int_equal(config_load(NULL, no_env, &c, &err), BRG_OK);
	assert_null(c->source);
	assert_int_equal(c->n_models, 0);
	assert_int_equal(c->port, 8085);
	assert_true(c->models_dir[0] == '/');
	config_free(c);
	config_free(NULL);
}

static void test_load_string_names_the_source_in_messages(void **state)
{
	static const char yaml[] = "server:\n  port: -1\nGARBAGE";
	struct config *c;
	struct brg_error err = {0};
	assert_int_equal(config_load_string(yaml, sizeof yaml - 8, "inline.yaml", no_env, &c, &err),
	                 BRG_E_CONFIG);
	assert_string_equal(err.message, "inline.yaml:2: key 'server.port': -1 is out of range, "
	                                 "expected an integer in 0..65535");
	assert_int_equal(config_load_string("models: ~\n", 10, NULL, no_env, &c, &err), BRG_OK);
	assert_int_equal(c->n_models, 0);
	config_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_full_file_sets_every_key),
	    cmocka_unit_test(test_model_defaults_apply_when_keys_are_absent),
	    cmocka_unit_test(test_absolute_file_path_is_kept),
	    cmocka_unit_test(test_unknown_key_reports_line_and_key),
	    cmocka_unit_test(test_wrong_type_reports_line_and_key),
	    cmocka_unit_test(test_port_out_of_range_reports_the_range),
	    cmocka_unit_test(test_duplicate_model_id_names_the_first),
	    cmocka_unit_test(test_duplicate_key_is_an_error),
	    cmocka_unit_test(test_invalid_model_id_is_an_error),
	    cmocka_unit_test(test_missing_file_key_is_an_error),
	    cmocka_unit_test(test_unknown_role_lists_the_roles),
	    cmocka_unit_test(test_preload_of_unknown_id_is_an_error),
	    cmocka_unit_test(test_bad_log_level_is_an_error),
	    cmocka_unit_test(test_yaml_syntax_error_reports_the_line),
	    cmocka_unit_test(test_env_overrides_win_over_file),
	    cmocka_unit_test(test_env_empty_value_counts_as_unset),
	    cmocka_unit_test(test_env_preload_empty_preloads_nothing),
	    cmocka_unit_test(test_env_preload_of_unknown_id_is_an_error),
	    cmocka_unit_test(test_env_gpu_layers_applies_to_all_models),
	    cmocka_unit_test(test_env_invalid_value_names_the_variable),
	    cmocka_unit_test(test_relative_models_dir_resolves_against_file_dir),
	    cmocka_unit_test(test_pooling_and_keys_file),
	    cmocka_unit_test(test_config_find_model_finds_by_id),
	    cmocka_unit_test(test_missing_file_cannot_be_read),
	    cmocka_unit_test(test_empty_file_gives_defaults),
	    cmocka_unit_test(test_null_path_gives_defaults_without_models),
	    cmocka_unit_test(test_load_string_names_the_source_in_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
