/*
 * test_config_providers.c — unit tests for config/providers.c: the
 * providers.yaml format, its validation messages (file, line, key), the
 * spec's variables (OPENAI_*, LOCAL_INFERENCE_*, FALLBACK_CHAIN…), and
 * that API keys never reach a message.  Each test writes its YAML to a
 * fresh temporary file.
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

/* A stand-in API key: no message may ever contain "sekrit". */
#define SECRET "sekrit-0123456789"

/* config_load_providers() of 'yaml' (NULL: no file) over a default config;
 * returns the error and leaves the message in *err, the path in *path. */
static enum brg_err prov_load(const char *yaml, char *const *envp, struct config **c,
                              struct brg_error *err, char **path)
{
	assert_int_equal(config_load(NULL, no_env, c, err), BRG_OK);
	*path = yaml ? write_yaml(yaml) : NULL;
	enum brg_err e = config_load_providers(*c, *path, envp, err);
	if (*path)
		unlink(*path);
	return e;
}

static struct config *prov_ok(const char *yaml, char *const *envp)
{
	struct config *c;
	struct brg_error err = {0};
	char *path;
	enum brg_err e = prov_load(yaml, envp, &c, &err, &path);
	if (e)
		print_error("unexpected error: %s\n", err.message);
	assert_int_equal(e, BRG_OK);
	free(path);
	return c;
}

/* Expects BRG_E_CONFIG whose message starts "FILE:LINE: key 'KEY': " (line
 * 0: starts with 'key', a variable's "NAME: "), contains 'also' and never
 * the secret. */
static void prov_fails(const char *yaml, char *const *envp, int line, const char *key,
                       const char *also)
{
	struct config *c;
	struct brg_error err = {0};
	char *path, want[512];
	assert_int_equal(prov_load(yaml, envp, &c, &err, &path), BRG_E_CONFIG);
	if (line)
		snprintf(want, sizeof want, "%s:%d: key '%s': ", path, line, key);
	else
		snprintf(want, sizeof want, "%s", key);
	if (strncmp(err.message, want, strlen(want)) != 0)
		fail_msg("message '%s' does not start with '%s'", err.message, want);
	if (also && !strstr(err.message, also))
		fail_msg("message '%s' lacks '%s'", err.message, also);
	if (strstr(err.message, "sekrit"))
		fail_msg("message '%s' shows a key", err.message);
	config_free(c);
	free(path);
}

static void test_providers_full_file_sets_every_key(void **state)
{
	static const char yaml[] = "providers:\n"
	                           "  openai:\n"
	                           "    kind: openai\n"
	                           "    base_url: https://api.openai.com/v1/\n"
	                           "    api_key_env: MY_OPENAI_KEY\n"
	                           "    headers: {OpenAI-Organization: org-123, X-B: 'a b'}\n"
	                           "    connect_timeout_ms: 1500\n"
	                           "    first_byte_timeout_ms: 20000\n"
	                           "    request_timeout: 300\n"
	                           "    models: [gpt-4o-mini, gpt-4o]\n"
	                           "  ollama:\n"
	                           "    kind: ollama\n"
	                           "    base_url: http://127.0.0.1:11434\n"
	                           "    api_key: " SECRET "\n"
	                           "    http_client: curl\n"
	                           "fallback:\n"
	                           "  enabled: true\n"
	                           "  chain: [local, openai, ollama]\n"
	                           "health: {interval: 30, timeout: 2}\n"
	                           "breaker: {failures: 5, cooldown: 90}\n";
	char *env[] = {"MY_OPENAI_KEY=" SECRET, NULL};
	struct config *c = prov_ok(yaml, env);
	assert_int_equal(c->n_providers, 2);
	const struct provider_config *o = config_find_provider(c, "openai");
	assert_ptr_equal(o, &c->providers[0]);
	assert_int_equal(o->kind, PROVIDER_OPENAI);
	assert_string_equal(o->base_url, "https://api.openai.com/v1");
	assert_string_equal(o->api_key, SECRET);
	assert_int_equal(o->n_headers, 2);
	assert_string_equal(o->headers[0], "OpenAI-Organization: org-123");
	assert_string_equal(o->headers[1], "X-B: a b");
	assert_int_equal(o->connect_timeout_ms, 1500);
	assert_int_equal(o->first_byte_timeout_ms, 20000);
	assert_int_equal(o->request_timeout_s, 300);
	assert_int_equal(o->http_client, 0); /* builtin by default */
	assert_int_equal(o->n_models, 2);
	assert_string_equal(o->models[1], "gpt-4o");
	assert_int_equal(o->line, 2);
	const struct provider_config *l = config_find_provider(c, "ollama");
	assert_int_equal(l->kind, PROVIDER_OLLAMA);
	assert_string_equal(l->base_url, "http://127.0.0.1:11434");
	assert_string_equal(l->api_key, SECRET);
	assert_int_equal(l->connect_timeout_ms, 5000);
	assert_int_equal(l->first_byte_timeout_ms, 60000);
	assert_int_equal(l->request_timeout_s, 600);
	assert_int_equal(l->http_client, 1);
	assert_int_equal(l->n_headers + l->n_models, 0);
	assert_true(c->is_fallback_enabled);
	assert_int_equal(c->n_fallback, 3);
	assert_string_equal(c->fallback_chain[2], "ollama");
	assert_int_equal(c->health_interval_s, 30);
	assert_int_equal(c->health_timeout_s, 2);
	assert_int_equal(c->breaker_failures, 5);
	assert_int_equal(c->breaker_cooldown_s, 90);
	assert_null(c->primary_provider);
	assert_null(config_find_provider(c, "local"));
	config_free(c);
}

static void test_providers_defaults_and_shipped_example(void **state)
{
	struct config *c = prov_ok(NULL, no_env);
	assert_int_equal(c->n_providers + c->n_fallback, 0);
	assert_false(c->is_fallback_enabled);
	assert_int_equal(c->health_interval_s, 60);
	assert_int_equal(c->health_timeout_s, 5);
	assert_int_equal(c->breaker_failures, 3);
	assert_int_equal(c->breaker_cooldown_s, 30);
	struct brg_error err = {0};
	if (access("config/providers.yaml", R_OK) == 0) /* tests run from the repository */
		assert_int_equal(config_load_providers(c, "config/providers.yaml", no_env, &err),
		                 BRG_OK);
	config_free(c);
	c = prov_ok("", no_env);
	config_free(c);
}

static void test_providers_file_errors_name_line_and_key(void **state)
{
#define P(body) "providers:\n  a:\n    base_url: http://h\n" body
	static const struct {
		const char *yaml;
		int line;
		const char *key, *also;
	} cases[] = {
	    {"bogus: 1\n", 1, "bogus", "expected one of providers, fallback, health, breaker"},
	    {P("    colour: red\n"), 4, "providers.a.colour", "unknown key, expected one of kind"},
	    {"fallback:\n  enable: true\n", 2, "fallback.enable", "expected one of enabled, chain"},
	    {"providers: [a]\n", 1, "providers", "got a list"},
	    {"providers:\n  a: http://h\n", 2, "providers.a", "got a scalar"},
	    {"providers:\n  a:\n    base_url: [x]\n", 3, "providers.a.base_url", "got a list"},
	    {P("    connect_timeout_ms: 0\n"), 4, "providers.a.connect_timeout_ms", "1..3600000"},
	    {P("    first_byte_timeout_ms: 3600001\n"), 4, "providers.a.first_byte_timeout_ms",
	     "out of range"},
	    {P("    request_timeout: 86401\n"), 4, "providers.a.request_timeout", "1..86400"},
	    {P("    request_timeout: '5'\n"), 4, "providers.a.request_timeout", "quoted"},
	    {"health:\n  interval: 0\n", 2, "health.interval", "1..86400"},
	    {"health:\n  timeout: 3601\n", 2, "health.timeout", "1..3600"},
	    {"breaker:\n  failures: 1001\n", 2, "breaker.failures", "1..1000"},
	    {"breaker:\n  cooldown: soon\n", 2, "breaker.cooldown", "'soon' is not an integer"},
	    {"breaker:\n  cooldown: 0\n", 2, "breaker.cooldown", "1..86400"},
	    {"fallback:\n  enabled: maybe\n", 2, "fallback.enabled", "true or false"},
	    {"providers:\n  a:\n    base_url: ftp://h\n", 3, "providers.a.base_url", "https://"},
	    {"providers:\n  a:\n    base_url: http://\n", 3, "providers.a.base_url", "with a host"},
	    {"providers:\n  a:\n    base_url: http://h:99999\n", 3, "providers.a.base_url", NULL},
	    {"providers:\n  a:\n    base_url: https://u:" SECRET "@h:x\n", 3,
	     "providers.a.base_url", "credentials"},
	    {P("    kind: llama\n"), 4, "providers.a.kind", "expected openai or ollama"},
	    {P("    http_client: libcurl\n"), 4, "providers.a.http_client",
	     "expected builtin or curl"},
	    {"providers:\n  a:\n    kind: ollama\n", 2, "providers.a.base_url", "missing"},
	    {"providers:\n  a: {base_url: http://h}\n  a: {base_url: http://i}\n", 3, "providers.a",
	     "duplicate provider name, first declared at line 2"},
	    {P("    kind: openai\n    kind: ollama\n"), 5, "providers.a.kind", "duplicate key"},
	    {"providers:\n  local: {base_url: http://h}\n", 2, "providers.local",
	     "embedded engine"},
	    {"providers:\n  inference: {base_url: http://h}\n", 2, "providers.inference", NULL},
	    {"providers:\n  Open_AI: {base_url: http://h}\n", 2, "providers.Open_AI", "a-z 0-9"},
	    {P("    api_key: " SECRET "\n    api_key_env: A_KEY\n"), 5, "providers.a.api_key_env",
	     "not both"},
	    {P("    api_key_env: UNSET_KEY\n"), 4, "providers.a.api_key_env",
	     "api_key_env 'UNSET_KEY' is not set"},
	    {P("    api_key_env: EMPTY_KEY\n"), 4, "providers.a.api_key_env", "is not set"},
	    {P("    api_key_env: " SECRET "\n"), 4, "providers.a.api_key_env",
	     "not the key itself"},
	    {P("    api_key_env: sekritAbcDef\n"), 4, "providers.a.api_key_env", "is not set"},
	    {P("    api_key: ''\n"), 4, "providers.a.api_key", "empty"},
	    {P("    headers: {Bad Name: x}\n"), 4, "providers.a.headers.Bad Name", "header name"},
	    {P("    headers: [x]\n"), 4, "providers.a.headers", "expected a mapping"},
	    {P("    headers:\n      Authorization: \"Bearer " SECRET "\\nX\"\n"), 5,
	     "providers.a.headers.Authorization", "one-line"},
	    {P("    models: [m, m]\n"), 4, "providers.a.models", "'m' is listed twice"},
	    {P("    models: gpt\n"), 4, "providers.a.models", "expected a list"},
	    {"fallback:\n  chain: [local, nope]\n", 2, "fallback.chain",
	     "'nope' names no provider"},
	    {"fallback:\n  chain:\n    - local\n    - nope\n", 4, "fallback.chain",
	     "expected one of local"},
	    {"fallback:\n  chain: [local, local]\n", 2, "fallback.chain", "listed twice"},
	    {"fallback: {}\nfallback: {}\n", 2, "fallback", "duplicate key"},
	};
#undef P
	char *env[] = {"EMPTY_KEY=", "OTHER=" SECRET, NULL};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		prov_fails(cases[i].yaml, env, cases[i].line, cases[i].key, cases[i].also);
	prov_fails("providers:\n  a: [\n", env, 0, "", ":3: YAML syntax error"); /* no key */
}

static void test_providers_env_creates_and_overrides(void **state)
{
	char *create[] = {"OPENAI_API_KEY=" SECRET, "OPENAI_TIMEOUT=30", NULL};
	struct config *c = prov_ok(NULL, create);
	const struct provider_config *o = config_find_provider(c, "openai");
	assert_int_equal(c->n_providers, 1);
	assert_int_equal(o->kind, PROVIDER_OPENAI);
	assert_string_equal(o->base_url, "https://api.openai.com/v1");
	assert_string_equal(o->api_key, SECRET);
	assert_int_equal(o->first_byte_timeout_ms, 30000);
	assert_int_equal(o->request_timeout_s, 30);
	config_free(c);
	char *base[] = {"OPENAI_API_BASE=http://proxy:9000/v1/", "OPENAI_API_KEY=", NULL};
	c = prov_ok("providers:\n  openai:\n    base_url: https://x/v1\n    api_key: k\n", base);
	o = config_find_provider(c, "openai");
	assert_int_equal(c->n_providers, 1);
	assert_string_equal(o->base_url, "http://proxy:9000/v1");
	assert_string_equal(o->api_key, "k"); /* empty OPENAI_API_KEY: unset */
	config_free(c);
	char *timeout_only[] = {"OPENAI_TIMEOUT=30", "OPENAI_API_KEY=", NULL};
	c = prov_ok(NULL, timeout_only);
	assert_int_equal(c->n_providers, 0);
	config_free(c);
}

static void test_providers_env_local_server_defines_provider(void **state)
{
	char *vllm[] = {"INFERENCE_PROVIDER=vllm", "LOCAL_INFERENCE_URL=http://h:8000",
	                "LOCAL_MODEL_NAME=llama3.1:8b", "LOCAL_INFERENCE_TIMEOUT=120", NULL};
	struct config *c = prov_ok(NULL, vllm);
	const struct provider_config *p = config_find_provider(c, "vllm");
	assert_non_null(p);
	assert_string_equal(c->primary_provider, "vllm");
	assert_int_equal(p->kind, PROVIDER_OPENAI);
	assert_string_equal(p->base_url, "http://h:8000/v1");
	assert_int_equal(p->n_models, 1);
	assert_string_equal(p->models[0], "llama3.1:8b");
	assert_int_equal(p->first_byte_timeout_ms, 120000);
	assert_int_equal(p->request_timeout_s, 120);
	config_free(c);
	char *llamacpp[] = {"INFERENCE_PROVIDER=llamacpp", "LOCAL_INFERENCE_URL=http://h/v1/",
	                    NULL};
	c = prov_ok(NULL, llamacpp);
	assert_string_equal(config_find_provider(c, "llamacpp")->base_url, "http://h/v1");
	config_free(c);
	char *ollama[] = {"INFERENCE_PROVIDER=ollama", "LOCAL_INFERENCE_URL=http://o:11434/", NULL};
	c = prov_ok("providers:\n  ollama: {kind: openai, base_url: http://x}\n", ollama);
	p = config_find_provider(c, "ollama");
	assert_int_equal(c->n_providers, 1);
	assert_int_equal(p->kind, PROVIDER_OLLAMA);
	assert_string_equal(p->base_url, "http://o:11434");
	config_free(c);
	char *local[] = {"INFERENCE_PROVIDER=local", "LOCAL_INFERENCE_URL=http://h:8000", NULL};
	c = prov_ok(NULL, local);
	assert_int_equal(c->n_providers, 0);
	config_free(c);
	c = prov_ok(NULL, local + 1); /* no INFERENCE_PROVIDER: the URL defines nothing */
	assert_int_equal(c->n_providers, 0);
	assert_null(c->primary_provider);
	config_free(c);
	char *no_url[] = {"INFERENCE_PROVIDER=vllm", NULL};
	prov_fails(NULL, no_url, 0, "INFERENCE_PROVIDER: 'vllm' names no provider",
	           "LOCAL_INFERENCE_URL");
	char *no_key[] = {"INFERENCE_PROVIDER=openai", NULL};
	prov_fails(NULL, no_key, 0, "INFERENCE_PROVIDER: 'openai'", "OPENAI_API_KEY");
	char *from_file[] = {"INFERENCE_PROVIDER=mine", NULL};
	c = prov_ok("providers:\n  mine: {base_url: http://m}\n", from_file);
	assert_string_equal(c->primary_provider, "mine");
	config_free(c);
}

/* The spec's own .env example: the chain names the local server. */
static void test_providers_env_spec_example_defines_chained_local_server(void **state)
{
	char *env[] = {"INFERENCE_PROVIDER=openai",
	               "OPENAI_API_KEY=sk-test",
	               "ENABLE_FALLBACK=true",
	               "FALLBACK_CHAIN=ollama,openai",
	               "LOCAL_INFERENCE_URL=http://ollama:11434",
	               "LOCAL_MODEL_NAME=llama3.1:8b",
	               NULL};
	struct config *c = prov_ok(NULL, env);
	const struct provider_config *o = config_find_provider(c, "ollama");
	assert_non_null(o);
	assert_int_equal(o->kind, PROVIDER_OLLAMA);
	assert_string_equal(o->base_url, "http://ollama:11434");
	assert_string_equal(o->models[0], "llama3.1:8b");
	assert_non_null(config_find_provider(c, "openai"));
	assert_string_equal(c->primary_provider, "openai");
	assert_int_equal(c->n_fallback, 2);
	assert_string_equal(c->fallback_chain[0], "ollama");
	config_free(c);
}

static void test_providers_env_fallback_chain(void **state)
{
	char *env[] = {"OPENAI_API_KEY=" SECRET,          "ENABLE_FALLBACK=yes",
	               "FALLBACK_CHAIN= openai, local ,", "HEALTH_CHECK_INTERVAL=10",
	               "HEALTH_CHECK_TIMEOUT=3",          NULL};
	struct config *c = prov_ok("fallback:\n  enabled: false\n  chain: [local, nope]\n", env);
	assert_true(c->is_fallback_enabled);
	assert_int_equal(c->n_fallback, 2);
	assert_string_equal(c->fallback_chain[0], "openai");
	assert_string_equal(c->fallback_chain[1], "local");
	assert_int_equal(c->health_interval_s, 10);
	assert_int_equal(c->health_timeout_s, 3);
	config_free(c);
	char *dflt[] = {"OPENAI_API_KEY=" SECRET, "INFERENCE_PROVIDER=openai", "ENABLE_FALLBACK=1",
	                NULL};
	c = prov_ok("providers:\n  b: {base_url: http://b}\n", dflt);
	assert_int_equal(c->n_fallback, 3); /* primary, the engine, the rest */
	assert_string_equal(c->fallback_chain[0], "openai");
	assert_string_equal(c->fallback_chain[1], "local");
	assert_string_equal(c->fallback_chain[2], "b");
	config_free(c);
	char *bad[] = {"OPENAI_API_KEY=" SECRET, "FALLBACK_CHAIN=local,vllm", NULL};
	prov_fails(NULL, bad, 0,
	           "FALLBACK_CHAIN: 'vllm' names no provider, expected one of local, "
	           "openai",
	           NULL);
	char *twice[] = {"FALLBACK_CHAIN=local,local", NULL};
	prov_fails(NULL, twice, 0, "FALLBACK_CHAIN: 'local' is listed twice", NULL);
}

static void test_providers_env_invalid_values_name_the_variable(void **state)
{
	static const char *const cases[][2] = {
	    {"OPENAI_TIMEOUT=abc", "OPENAI_TIMEOUT: 'abc' is not an integer in 1..86400"},
	    {"LOCAL_INFERENCE_TIMEOUT=0", "LOCAL_INFERENCE_TIMEOUT: 0 is out of range"},
	    {"HEALTH_CHECK_INTERVAL=-5", "HEALTH_CHECK_INTERVAL: -5 is out of range"},
	    {"HEALTH_CHECK_TIMEOUT=3601", "HEALTH_CHECK_TIMEOUT: 3601 is out of range"},
	    {"ENABLE_FALLBACK=maybe", "ENABLE_FALLBACK: 'maybe' is not a boolean"},
	    {"OPENAI_API_BASE=api.openai.com", "OPENAI_API_BASE: 'api.openai.com' is not an http"},
	    {"LOCAL_INFERENCE_URL=http://:80", "LOCAL_INFERENCE_URL: 'http://:80' is not"},
	    {"OPENAI_API_BASE=http://me:" SECRET "@x:y", "OPENAI_API_BASE: a URL with credentials"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *env[] = {(char *)cases[i][0], "OPENAI_API_KEY=" SECRET, NULL};
		prov_fails(NULL, env, 0, cases[i][1], NULL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_providers_full_file_sets_every_key),
	    cmocka_unit_test(test_providers_defaults_and_shipped_example),
	    cmocka_unit_test(test_providers_file_errors_name_line_and_key),
	    cmocka_unit_test(test_providers_env_creates_and_overrides),
	    cmocka_unit_test(test_providers_env_local_server_defines_provider),
	    cmocka_unit_test(test_providers_env_spec_example_defines_chained_local_server),
	    cmocka_unit_test(test_providers_env_fallback_chain),
	    cmocka_unit_test(test_providers_env_invalid_values_name_the_variable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
