/*
 * test_obs.c — unit tests for obs/: the Prometheus exposition (escaping,
 * cumulative histogram buckets ending in +Inf, _sum and _count), counters
 * that add up across threads, undeclared model names that make no series,
 * a request's status and its detaching into a stream, the gauges of local
 * models and providers, and the JSON request line.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "obs/obs.h"

#define CHAT_PATH "/v1/chat/completions"

static char *render(void)
{
	struct buf b;
	buf_init(&b, (size_t)8 << 20);
	assert_int_equal(obs_render(&b), BRG_OK);
	char *s = buf_take(&b);
	return s ? s : strdup("");
}

/* The value of the sample named exactly 'series' (name{labels}), or -1. */
static double value_of(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static size_t count_lines(const char *text, const char *prefix)
{
	size_t n = 0, len = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		n += strncmp(p, prefix, len) == 0;
	return n;
}

/* One chat request that ends with 'status' and 'f' (may be NULL). */
static void request(int status, const struct obs_facts *f)
{
	obs_request_begin(OBS_CHAT, "POST", CHAT_PATH, NULL);
	if (status)
		obs_request_status(status);
	obs_request_finish(NULL, f);
	obs_request_end();
}

static double requests_of(const char *text, const char *model, const char *status)
{
	char series[256];
	snprintf(series, sizeof series,
	         "brigade_requests_total{endpoint=\"" CHAT_PATH "\",model=\"%s\",status=\"%s\"}",
	         model, status);
	return value_of(text, series);
}

static int setup(void **state)
{
	(void)state;
	obs_reset();
	return 0;
}

static void test_every_sample_has_help_and_type(void **state)
{
	(void)state;
	obs_model_declare("m", true);
	request(200, &(struct obs_facts){.model_id = "m", .prompt_tokens = 2});
	char *t = render();
	for (char *line = t; *line; line = strchr(line, '\n') + 1) {
		if (line[0] == '#')
			continue;
		char name[128];
		size_t k = strcspn(line, "{ ");
		assert_true(k < sizeof name);
		memcpy(name, line, k);
		name[k] = '\0';
		/* A histogram's samples belong to the family without the suffix. */
		static const char *suffixes[] = {"_bucket", "_sum", "_count"};
		char type_line[200];
		snprintf(type_line, sizeof type_line, "# TYPE %s ", name);
		for (size_t i = 0; i < 3 && !strstr(t, type_line); i++) {
			size_t sl = strlen(suffixes[i]);
			if (k > sl && strcmp(name + k - sl, suffixes[i]) == 0)
				snprintf(type_line, sizeof type_line, "# TYPE %.*s histogram",
				         (int)(k - sl), name);
		}
		if (!strstr(t, type_line))
			fail_msg("no TYPE for %s", name);
		assert_memory_equal(name, "brigade_", 8);
	}
	assert_non_null(strstr(t, "# HELP brigade_requests_total "));
	free(t);
}

static void test_label_values_are_escaped(void **state)
{
	(void)state;
	obs_model_declare("we\"ird\\name\nx", false);
	request(200, &(struct obs_facts){.model_id = "we\"ird\\name\nx"});
	char *t = render();
	assert_true(requests_of(t, "we\\\"ird\\\\name\\nx", "200") == 1);
	assert_null(strstr(t, "name\nx"));
	free(t);
}

static void test_histogram_is_cumulative_with_inf_sum_and_count(void **state)
{
	(void)state;
	obs_model_declare("m", false);
	/* Time to first token is t_first - start: ~3 ms, ~15 ms, ~2 s. */
	long long offsets_us[] = {3000, 15000, 2000000};
	for (size_t i = 0; i < 3; i++) {
		obs_request_begin(OBS_CHAT, "POST", CHAT_PATH, NULL);
		obs_request_status(200);
		struct obs_facts f = {.model_id = "m", .t_first_us = obs_now_us() + offsets_us[i]};
		obs_request_finish(NULL, &f);
		obs_request_end();
	}
	char *t = render();
	const char *b = "brigade_time_to_first_token_seconds_bucket{model=\"m\",le=\"%s\"}";
	struct {
		const char *le;
		double want;
	} rows[] = {{"0.001", 0}, {"0.005", 1}, {"0.01", 1}, {"0.02", 2},
	            {"2", -1},    {"2.5", 3},   {"2560", 3}, {"+Inf", 3}};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char series[128];
		snprintf(series, sizeof series, b, rows[i].le);
		assert_true(value_of(t, series) == rows[i].want);
	}
	/* Cumulative: never decreasing, and +Inf is _count. */
	double last = 0;
	size_t n = 0;
	for (const char *p = strstr(t, "brigade_time_to_first_token_seconds_bucket"); p;
	     p = strstr(p + 1, "brigade_time_to_first_token_seconds_bucket")) {
		double v = strtod(strchr(p, '}') + 2, NULL);
		assert_true(v >= last);
		last = v;
		n++;
	}
	assert_int_equal(n, 23); /* 22 bounds and +Inf */
	assert_true(value_of(t, "brigade_time_to_first_token_seconds_count{model=\"m\"}") == 3);
	double sum = value_of(t, "brigade_time_to_first_token_seconds_sum{model=\"m\"}");
	assert_true(sum > 2.017 && sum < 2.030);
	free(t);
}

#define N_THREADS    8
#define N_PER_THREAD 2000

static void *hammer(void *arg)
{
	(void)arg;
	int m = obs_model_id("m");
	for (int i = 0; i < N_PER_THREAD; i++) {
		obs_running_add(m, 2);
		request(200, &(struct obs_facts){
		                 .model_id = "m", .prompt_tokens = 3, .completion_tokens = 5});
		obs_running_add(m, -2);
	}
	return NULL;
}

static void test_counters_from_threads_add_up(void **state)
{
	(void)state;
	obs_model_declare("m", false);
	pthread_t th[N_THREADS];
	for (int i = 0; i < N_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(th[i], NULL);
	char *t = render();
	double n = N_THREADS * N_PER_THREAD;
	assert_true(requests_of(t, "m", "200") == n);
	assert_true(value_of(t, "brigade_prompt_tokens_total{model=\"m\"}") == 3 * n);
	assert_true(value_of(t, "brigade_generation_tokens_total{model=\"m\"}") == 5 * n);
	assert_true(value_of(t, "brigade_request_duration_seconds_count{endpoint=\"" CHAT_PATH
	                        "\",model=\"m\"}") == n);
	assert_true(value_of(t, "brigade_num_requests_running{model=\"m\"}") == 0);
	free(t);
}

static void test_unknown_models_count_as_other_and_add_no_series(void **state)
{
	(void)state;
	obs_model_declare("m", false);
	request(200, &(struct obs_facts){.model_id = "client-made-0"});
	char *before = render();
	size_t n_lines = count_lines(before, "brigade_");
	for (int i = 1; i < 100; i++) {
		char name[32];
		snprintf(name, sizeof name, "client-made-%d", i);
		request(200, &(struct obs_facts){.model_id = name, .model = name});
		assert_int_equal(obs_model_id(name), OBS_MODEL_OTHER);
	}
	char *after = render();
	assert_int_equal(count_lines(after, "brigade_"), n_lines);
	assert_null(strstr(after, "client-made"));
	assert_true(requests_of(after, "other", "200") == 100);
	assert_true(requests_of(after, "m", "200") == -1);
	free(before);
	free(after);
}

static void test_first_status_counts_and_none_is_499(void **state)
{
	(void)state;
	obs_request_begin(OBS_CHAT, "POST", CHAT_PATH, NULL);
	obs_request_status(404);
	obs_request_status(200); /* http/ ignores a second reply: so do we */
	obs_request_end();
	request(0, NULL);                               /* the client went away */
	request(0, &(struct obs_facts){.status = 200}); /* a raw reply, not noted */
	obs_request_status(500);                        /* no request followed: no-op */
	char *t = render();
	assert_true(requests_of(t, "other", "404") == 1);
	assert_true(requests_of(t, "other", "499") == 1);
	assert_true(requests_of(t, "other", "200") == 1);
	assert_true(requests_of(t, "other", "500") == -1);
	free(t);
}

static void test_detached_request_ends_with_the_stream(void **state)
{
	(void)state;
	obs_model_declare("m", false);
	obs_request_begin(OBS_CHAT, "POST", CHAT_PATH, NULL);
	struct obs_request *q = obs_request_detach();
	assert_non_null(q);
	obs_request_status(500); /* the thread's request is the stream's now */
	obs_request_end();
	char *t = render();
	assert_true(requests_of(t, "m", "200") == -1);
	free(t);
	obs_request_finish(q, &(struct obs_facts){.model_id = "m", .completion_tokens = 4});
	t = render();
	assert_true(requests_of(t, "m", "200") == 1);
	assert_true(value_of(t, "brigade_time_to_first_token_seconds_count{model=\"m\"}") == 1);
	free(t);
}

static void test_local_model_and_provider_gauges(void **state)
{
	(void)state;
	obs_model_declare("remote:x", false);
	obs_model_loaded("m", 1.5);
	obs_model_slots("m", 1, 4, 0.125);
	obs_running_add(obs_model_id("m"), 3);
	obs_running_add(obs_model_id("remote:x"), 2);
	obs_waiting_add(obs_model_id("remote:x"), 1);
	int a = obs_provider_declare("a", true), b = obs_provider_declare("b", false);
	assert_int_equal(obs_provider_declare("a", true), a);
	obs_fallback(a, b);
	obs_fallback(a, b);
	obs_model_engine("m", &(struct obs_engine_counts){.prompt_decoded = 10,
	                                                  .prompt_reused = 30,
	                                                  .kv_copies = 2,
	                                                  .helper_prompts = 1,
	                                                  .helper_tokens = 200});
	char *t = render();
	assert_true(value_of(t, "brigade_prefix_cache_queries_total{model=\"m\"}") == 40);
	assert_true(value_of(t, "brigade_prefix_cache_hits_total{model=\"m\"}") == 30);
	assert_true(value_of(t, "brigade_prefix_cache_copies_total{model=\"m\"}") == 2);
	assert_true(value_of(t, "brigade_prefill_helper_prompts_total{model=\"m\"}") == 1);
	assert_true(value_of(t, "brigade_prefill_helper_tokens_total{model=\"m\"}") == 200);
	assert_true(value_of(t, "brigade_prefix_cache_hits_total{model=\"remote:x\"}") == -1);
	assert_true(value_of(t, "brigade_num_requests_running{model=\"m\"}") == 1);
	assert_true(value_of(t, "brigade_num_requests_waiting{model=\"m\"}") == 2);
	assert_true(value_of(t, "brigade_num_requests_running{model=\"remote:x\"}") == 2);
	assert_true(value_of(t, "brigade_num_requests_waiting{model=\"remote:x\"}") == 1);
	assert_true(value_of(t, "brigade_kv_cache_usage_perc{model=\"m\"}") == 0.125);
	assert_true(value_of(t, "brigade_model_loaded{model=\"m\"}") == 1);
	assert_true(value_of(t, "brigade_model_load_seconds{model=\"m\"}") == 1.5);
	assert_true(value_of(t, "brigade_model_loaded{model=\"remote:x\"}") == -1);
	assert_true(value_of(t, "brigade_provider_up{provider=\"b\"}") == 0);
	assert_true(value_of(t, "brigade_fallbacks_total{from=\"a\",to=\"b\"}") == 2);
	assert_true(value_of(t, "brigade_fallbacks_total{from=\"b\",to=\"a\"}") == -1);
	free(t);
	obs_model_unloaded("m");
	obs_provider_up(b, true);
	t = render();
	assert_true(value_of(t, "brigade_model_loaded{model=\"m\"}") == 0);
	assert_true(value_of(t, "brigade_kv_cache_usage_perc{model=\"m\"}") == -1);
	assert_true(value_of(t, "brigade_provider_up{provider=\"b\"}") == 1);
	free(t);
}

/* Runs one request with stderr captured; returns what was written. */
static char *logged(const char *traceparent, const struct obs_facts *f)
{
	char path[] = "/tmp/brigade-test-obs-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stderr);
	int saved = dup(2);
	dup2(fd, 2);
	log_set_level(LOG_INFO);
	obs_request_begin(OBS_CHAT, "POST", CHAT_PATH, traceparent);
	obs_request_status(200);
	obs_request_finish(NULL, f);
	obs_request_end();
	log_set_level(LOG_OFF);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	char *out = calloc(1, 8192);
	assert_non_null(out);
	ssize_t n = pread(fd, out, 8191, 0);
	assert_true(n >= 0);
	close(fd);
	unlink(path);
	return out;
}

static void test_request_line_has_its_fields_and_never_the_prompt(void **state)
{
	(void)state;
	obs_model_declare("m", false);
	struct chat_msg msgs[] = {{"user", "the SECRET prompt"}};
	struct obs_facts f = {.request_id = "chatcmpl-1",
	                      .model = "local:m",
	                      .model_id = "m",
	                      .mode = "single",
	                      .prompt_tokens = 7,
	                      .completion_tokens = 9,
	                      .msgs = msgs,
	                      .n_msgs = 1};
	char *line = logged("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &f);
	static const char *want[] = {"{\"ts\":\"",
	                             "\"level\":\"info\"",
	                             "\"msg\":\"request\"",
	                             "\"request_id\":\"chatcmpl-1\"",
	                             "\"method\":\"POST\"",
	                             "\"path\":\"" CHAT_PATH "\"",
	                             "\"model\":\"m\"",
	                             "\"mode\":\"single\"",
	                             "\"status\":200",
	                             "\"prompt_tokens\":7",
	                             "\"completion_tokens\":9",
	                             "\"duration_ms\":",
	                             "\"ttft_ms\":",
	                             "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}\n"};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		if (!strstr(line, want[i]))
			fail_msg("'%s' lacks %s", line, want[i]);
	assert_null(strstr(line, "SECRET"));
	assert_int_equal(count_lines(line, "{"), 1);
	free(line);
}

static void test_malformed_traceparent_is_ignored(void **state)
{
	(void)state;
	static const char *bad[] = {
	    "",
	    "garbage",
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
	    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
	    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *line = logged(bad[i], NULL);
		if (!strstr(line, "\"trace_id\":null}"))
			fail_msg("'%s' gave %s", bad[i], line);
		free(line);
	}
	/* A later version may carry more after the flags. */
	char *line = logged("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more", NULL);
	assert_non_null(strstr(line, "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\""));
	assert_non_null(strstr(line, "\"request_id\":\"req-")); /* none given: made up */
	free(line);
}

int main(void)
{
	log_set_level(getenv("BRIGADE_TEST_LOG") ? LOG_DEBUG : LOG_OFF);
	unsetenv("INFERENCE_LOG_PROMPTS");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_every_sample_has_help_and_type, setup),
	    cmocka_unit_test_setup(test_label_values_are_escaped, setup),
	    cmocka_unit_test_setup(test_histogram_is_cumulative_with_inf_sum_and_count, setup),
	    cmocka_unit_test_setup(test_counters_from_threads_add_up, setup),
	    cmocka_unit_test_setup(test_unknown_models_count_as_other_and_add_no_series, setup),
	    cmocka_unit_test_setup(test_first_status_counts_and_none_is_499, setup),
	    cmocka_unit_test_setup(test_detached_request_ends_with_the_stream, setup),
	    cmocka_unit_test_setup(test_local_model_and_provider_gauges, setup),
	    cmocka_unit_test_setup(test_request_line_has_its_fields_and_never_the_prompt, setup),
	    cmocka_unit_test_setup(test_malformed_traceparent_is_ignored, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
