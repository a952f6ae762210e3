/*
 * test_embeddings.c — embeddings end to end below HTTP: the request parser
 * and the answer's encodings (api/embeddings.c), the engine's pooled
 * vectors from a real model (engine/embed.c, stories260K with mean
 * pooling), and the fallback layer's same-model-only rule
 * (provider/fallback.c) with scripted providers.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "api/api_int.h"
#include "core/log.h"
#include "engine/engine.h"
#include "provider/fallback.h"

#define BACKEND_DIR "deps/llama-bin/bins/linux-x64"
#define WAIT_S      30

/* ---- a sink that waits for one answer ---- */

struct esink {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n_done;
	struct embed_result res; /* vecs kept */
};

static void on_done(void *ud, struct embed_result *res)
{
	struct esink *s = ud;
	pthread_mutex_lock(&s->mu);
	s->res = *res;
	res->vecs = NULL;
	s->n_done++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void esink_init(struct esink *s)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
}

static void esink_fini(struct esink *s)
{
	free(s->res.vecs);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
}

static void esink_wait(struct esink *s)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += WAIT_S;
	pthread_mutex_lock(&s->mu);
	while (s->n_done == 0)
		assert_int_equal(pthread_cond_timedwait(&s->cv, &s->mu, &t), 0);
	pthread_mutex_unlock(&s->mu);
}

static struct embed_sink sink_of(struct esink *s)
{
	return (struct embed_sink){on_done, s};
}

/* ---- api: parsing ---- */

static void parse_ok(const char *json, struct api_embed_request *r)
{
	struct brg_error e = {0};
	enum brg_err rc = api_parse_embeddings(json, strlen(json), r, &e);
	if (rc)
		fail_msg("%s: %s", json, e.message);
}

static void parse_refused(const char *json, const char *param)
{
	struct api_embed_request r;
	struct brg_error e = {0};
	assert_int_equal(api_parse_embeddings(json, strlen(json), &r, &e), BRG_E_BAD_REQUEST);
	bool has = false;
	for (size_t i = 0; i < e.n_details; i++)
		has |= strcmp(e.details[i].key, "param") == 0 && strcmp(e.details[i].s, param) == 0;
	if (!has)
		fail_msg("%s: no param %s (%s)", json, param, e.message);
	api_embed_request_fini(&r);
}

static void test_parse_string_and_defaults(void **state)
{
	(void)state;
	struct api_embed_request r;
	parse_ok("{\"model\":\"m\",\"input\":\"hello\"}", &r);
	assert_string_equal(r.model, "m");
	assert_int_equal(r.n_inputs, 1);
	assert_string_equal(r.inputs[0].text, "hello");
	assert_false(r.is_base64);
	assert_int_equal(r.dimensions, 0);
	api_embed_request_fini(&r);
}

static void test_parse_all_input_shapes(void **state)
{
	(void)state;
	struct api_embed_request r;
	parse_ok("{\"model\":\"m\",\"input\":[\"a\",\"b\",\"c\"],\"encoding_format\":\"base64\","
	         "\"dimensions\":8,\"user\":\"u\"}",
	         &r);
	assert_int_equal(r.n_inputs, 3);
	assert_string_equal(r.inputs[2].text, "c");
	assert_true(r.is_base64);
	assert_int_equal(r.dimensions, 8);
	api_embed_request_fini(&r);
	parse_ok("{\"model\":\"m\",\"input\":[1,2,3]}", &r);
	assert_int_equal(r.n_inputs, 1);
	assert_null(r.inputs[0].text);
	assert_int_equal(r.inputs[0].n_tokens, 3);
	assert_int_equal(r.inputs[0].tokens[2], 3);
	api_embed_request_fini(&r);
	parse_ok("{\"model\":\"m\",\"input\":[[7],[8,9]]}", &r);
	assert_int_equal(r.n_inputs, 2);
	assert_int_equal(r.inputs[0].n_tokens, 1);
	assert_int_equal(r.inputs[0].tokens[0], 7);
	assert_int_equal(r.inputs[1].n_tokens, 2);
	assert_int_equal(r.inputs[1].tokens[1], 9);
	api_embed_request_fini(&r);
}

static void test_parse_refusals_name_the_param(void **state)
{
	(void)state;
	parse_refused("{\"input\":\"a\"}", "model");
	parse_refused("{\"model\":\"\",\"input\":\"a\"}", "model");
	parse_refused("{\"model\":\"m\"}", "input");
	const char *inputs[] = {"\"\"", "[]",         "[\"\"]", "[\"a\",1]",   "[[1],\"a\"]",
	                        "[-1]", "[[]]",       "[1.5]",  "5",           "null",
	                        "{}",   "[[1],[-2]]", "[true]", "[2147483648]"};
	char json[128];
	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
		snprintf(json, sizeof json, "{\"model\":\"m\",\"input\":%s}", inputs[i]);
		parse_refused(json, "input");
	}
	parse_refused("{\"model\":\"m\",\"input\":\"a\",\"encoding_format\":\"int8\"}",
	              "encoding_format");
	parse_refused("{\"model\":\"m\",\"input\":\"a\",\"dimensions\":0}", "dimensions");
	parse_refused("{\"model\":\"m\",\"input\":\"a\",\"dimensions\":\"8\"}", "dimensions");
	parse_refused("{\"model\":\"m\",\"input\":\"a\",\"user\":5}", "user");
	parse_refused("[1]", "body");
}

static void test_parse_2049_inputs_refused(void **state)
{
	(void)state;
	size_t cap = 32 + 4 * 2049;
	char *json = malloc(cap);
	size_t n = (size_t)snprintf(json, cap, "{\"model\":\"m\",\"input\":[");
	for (int i = 0; i < 2049; i++)
		n += (size_t)snprintf(json + n, cap - n, "%s\"a\"", i ? "," : "");
	snprintf(json + n, cap - n, "]}");
	parse_refused(json, "input");
	free(json);
}

static void test_parse_bad_json(void **state)
{
	(void)state;
	struct api_embed_request r;
	struct brg_error e = {0};
	assert_int_equal(api_parse_embeddings("{\"model\":", 9, &r, &e), BRG_E_BAD_JSON);
	api_embed_request_fini(&r);
	assert_int_equal(
	    api_parse_embeddings("{\"model\":\"a\",\"model\":\"b\",\"input\":\"x\"}", 37, &r, &e),
	    BRG_E_BAD_JSON);
	api_embed_request_fini(&r);
	/* jansson refuses NUL inside strings: no input is silently cut short. */
	const char *nul = "{\"model\":\"m\",\"input\":\"a\\u0000b\"}";
	assert_int_equal(api_parse_embeddings(nul, strlen(nul), &r, &e), BRG_E_BAD_JSON);
	api_embed_request_fini(&r);
}

/* ---- api: the answer ---- */

static void test_json_floats_and_usage(void **state)
{
	(void)state;
	float v[4] = {0.5f, -0.25f, 1.0f / 3.0f, NAN};
	struct embed_result res = {.vecs = v, .n_inputs = 2, .dim = 2, .n_prompt = 7};
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(api_embeddings_json(&b, "m\"x", &res, false), BRG_OK);
	json_error_t je;
	json_t *o = json_loads(b.data, 0, &je);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "object")), "list");
	assert_string_equal(json_string_value(json_object_get(o, "model")), "m\"x");
	json_t *data = json_object_get(o, "data");
	assert_int_equal(json_array_size(data), 2);
	json_t *e1 = json_object_get(json_array_get(data, 1), "embedding");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(data, 1), "index")), 1);
	/* %.9g round-trips the float exactly. */
	assert_true((float)json_number_value(json_array_get(e1, 0)) == 1.0f / 3.0f);
	assert_true(json_number_value(json_array_get(e1, 1)) == 0.0); /* NaN has no JSON */
	json_t *usage = json_object_get(o, "usage");
	assert_int_equal(json_integer_value(json_object_get(usage, "prompt_tokens")), 7);
	assert_int_equal(json_integer_value(json_object_get(usage, "total_tokens")), 7);
	json_decref(o);
	buf_fini(&b);
}

static void test_json_base64_is_little_endian_float32(void **state)
{
	(void)state;
	/* 1.0f = 00 00 80 3f, 2.0f = 00 00 00 40, -0.5f = 00 00 00 bf */
	float v[3] = {1.0f, 2.0f, -0.5f};
	struct embed_result res = {.vecs = v, .n_inputs = 1, .dim = 3};
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(api_embeddings_json(&b, "m", &res, true), BRG_OK);
	assert_non_null(strstr(b.data, "\"embedding\":\"AACAPwAAAEAAAAC/\""));
	buf_reset(&b);
	float one[1] = {1.0f}; /* 4 bytes: one '=' of padding... twice */
	res = (struct embed_result){.vecs = one, .n_inputs = 1, .dim = 1};
	assert_int_equal(api_embeddings_json(&b, "m", &res, true), BRG_OK);
	assert_non_null(strstr(b.data, "\"embedding\":\"AACAPw==\""));
	buf_fini(&b);
}

static void test_json_respects_the_buffer_cap(void **state)
{
	(void)state;
	float v[64] = {0};
	struct embed_result res = {.vecs = v, .n_inputs = 1, .dim = 64};
	struct buf b;
	buf_init(&b, 100);
	assert_int_equal(api_embeddings_json(&b, "m", &res, false), BRG_E_TOO_LARGE);
	buf_fini(&b);
}

/* ---- engine ---- */

static char *model_path(const char *file)
{
	const char *dir = getenv("BRIGADE_MODELS_DIR");
	static char path[2][1024];
	static int next;
	char *p = path[next++ % 2];
	snprintf(p, sizeof path[0], "%s/%s", dir && *dir ? dir : "../shared/models", file);
	return p;
}

static struct engine_model *load(const char *file, const char *pooling)
{
	struct engine_params p = engine_default_params();
	p.id = "m";
	p.path = model_path(file);
	p.n_ctx = 64;
	p.n_slots = 2;
	p.n_threads = 1;
	p.pooling = pooling;
	struct engine_model *m = NULL;
	struct brg_error e = {0};
	if (engine_load(&p, &m, &e))
		fail_msg("load %s: %s", file, e.message);
	return m;
}

/* Embeds 'texts'; returns the vectors (caller frees) and checks success. */
static float *embed(struct engine_model *m, const char *const *texts, size_t n, int *n_prompt)
{
	struct embed_input in[64];
	for (size_t i = 0; i < n; i++)
		in[i] = (struct embed_input){.text = texts[i]};
	struct embed_request r = {.model = "m", .inputs = in, .n_inputs = n};
	struct esink s;
	esink_init(&s);
	struct brg_error e = {0};
	if (engine_embed(m, &r, sink_of(&s), &e))
		fail_msg("engine_embed: %s", e.message);
	esink_wait(&s);
	assert_int_equal(s.res.error.code, BRG_OK);
	assert_int_equal(s.res.n_inputs, n);
	assert_int_equal(s.res.dim, engine_n_embd(m));
	if (n_prompt)
		*n_prompt = s.res.n_prompt;
	float *v = s.res.vecs;
	s.res.vecs = NULL;
	esink_fini(&s);
	return v;
}

static double dot(const float *a, const float *b, int n)
{
	double s = 0;
	for (int i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

static void test_engine_mean_pooling_unit_vectors(void **state)
{
	(void)state;
	struct engine_model *m = load("stories260K.gguf", "mean");
	assert_string_equal(engine_pooling_name(m), "mean");
	assert_int_equal(engine_n_embd(m), 64);
	const char *texts[] = {"Once upon a time", "The dog ran home", "Once upon a time"};
	int n_prompt = 0;
	float *v = embed(m, texts, 3, &n_prompt);
	int d = engine_n_embd(m);
	assert_true(n_prompt >= 3 * 3);
	for (int i = 0; i < 3; i++)
		assert_true(fabs(dot(v + i * d, v + i * d, d) - 1.0) < 1e-5);
	assert_true(dot(v, v + 2 * d, d) > 0.99999); /* same text, same vector */
	assert_true(dot(v, v + d, d) < 0.999);
	free(v);
	engine_free(m);
}

static void test_engine_batches_past_one_decode_consistently(void **state)
{
	(void)state;
	struct engine_model *m = load("stories260K.gguf", "last");
	const char *texts[40];
	for (int i = 0; i < 40; i++)
		texts[i] = i % 2 ? "a cat" : "the big red ball rolled";
	float *v = embed(m, texts, 40, NULL);
	int d = engine_n_embd(m);
	float *alone = embed(m, texts + 1, 1, NULL);
	for (int i = 1; i < 40; i += 2)
		assert_true(dot(v + i * d, alone, d) > 0.99999);
	free(alone);
	free(v);
	engine_free(m);
}

static void test_engine_refusals(void **state)
{
	(void)state;
	struct engine_model *none = load("llama-2-tiny-random.gguf", NULL);
	assert_null(engine_pooling_name(none));
	struct embed_input in = {.text = "hi"};
	struct embed_request r = {.model = "m", .inputs = &in, .n_inputs = 1};
	struct esink s;
	esink_init(&s);
	struct brg_error e = {0};
	assert_int_equal(engine_embed(none, &r, sink_of(&s), &e), BRG_E_BAD_REQUEST);
	assert_non_null(strstr(e.message, "does not produce embeddings"));
	engine_free(none);

	struct engine_model *m = load("stories260K.gguf", "cls");
	r.dimensions = 8;
	assert_int_equal(engine_embed(m, &r, sink_of(&s), &e), BRG_E_BAD_REQUEST);
	r.dimensions = 0;
	int32_t bad_ids[] = {1, 512};
	in = (struct embed_input){.tokens = bad_ids, .n_tokens = 2};
	assert_int_equal(engine_embed(m, &r, sink_of(&s), &e), BRG_E_BAD_REQUEST);
	in = (struct embed_input){.tokens = bad_ids, .n_tokens = 0};
	assert_int_equal(engine_embed(m, &r, sink_of(&s), &e), BRG_E_BAD_REQUEST);
	char long_text[2048];
	memset(long_text, 0, sizeof long_text);
	for (int i = 0; i < 300; i++)
		strcat(long_text, "dog ");
	in = (struct embed_input){.text = long_text};
	assert_int_equal(engine_embed(m, &r, sink_of(&s), &e), BRG_E_CONTEXT_BUDGET);
	assert_int_equal(s.n_done, 0); /* refused: the sink is never called */
	esink_fini(&s);
	engine_free(m);
}

static void test_engine_unknown_pooling_fails_load(void **state)
{
	(void)state;
	struct engine_params p = engine_default_params();
	p.path = model_path("stories260K.gguf");
	p.n_ctx = 64;
	p.pooling = "max";
	struct engine_model *m = NULL;
	struct brg_error e = {0};
	assert_int_equal(engine_load(&p, &m, &e), BRG_E_BAD_REQUEST);
	assert_null(m);
}

static void test_engine_free_ends_queued_embeddings(void **state)
{
	(void)state;
	struct engine_model *m = load("stories260K.gguf", "mean");
	struct embed_input in[64];
	for (int i = 0; i < 64; i++)
		in[i] = (struct embed_input){.text = "a long enough text about a small dog"};
	struct embed_request r = {.model = "m", .inputs = in, .n_inputs = 64};
	struct esink s[4];
	for (int i = 0; i < 4; i++) {
		esink_init(&s[i]);
		struct brg_error e = {0};
		assert_int_equal(engine_embed(m, &r, sink_of(&s[i]), &e), BRG_OK);
	}
	engine_free(m); /* every sink hears once: finished or shutting down */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(s[i].n_done, 1);
		assert_true(s[i].res.error.code == BRG_OK ||
		            s[i].res.error.code == BRG_E_SHUTTING_DOWN);
		esink_fini(&s[i]);
	}
}

/* ---- fallback: same model only ---- */

struct fake {
	const char *name;
	const char *model;   /* the one model it serves */
	enum brg_err answer; /* the result it reports */
	int n_calls;
	struct provider_ops ops;
};

static bool fake_has(void *impl, const char *id)
{
	return strcmp(((struct fake *)impl)->model, id) == 0;
}

static enum brg_err fake_embed(void *impl, const struct embed_request *r, struct embed_sink sink,
                               struct brg_error *err)
{
	(void)err;
	struct fake *f = impl;
	f->n_calls++;
	struct embed_result res = {.n_inputs = r->n_inputs, .dim = 2};
	brg_error_clear(&res.error);
	if (f->answer) {
		brg_fail(&res.error, f->answer, "%s failed", f->name);
	} else {
		res.vecs = calloc(r->n_inputs * 2, sizeof *res.vecs);
		res.vecs[0] = (float)f->n_calls;
	}
	sink.on_done(sink.ud, &res); /* before embed() returns: the deferred path */
	free(res.vecs);
	return BRG_OK;
}

static void fake_init(struct fake *f, const char *name, const char *model, enum brg_err answer)
{
	*f = (struct fake){.name = name, .model = model, .answer = answer};
	f->ops = (struct provider_ops){.name = name, .has_model = fake_has, .embed = fake_embed};
}

static struct fallback *chain_of(struct fake *a, struct fake *b, struct fake *c)
{
	struct fallback_opts o = {.is_enabled = true,
	                          .breaker_failures = 3,
	                          .breaker_cooldown_s = 60,
	                          .health_interval_s = 3600,
	                          .health_timeout_s = 1};
	struct fallback *f = fallback_new(&o);
	fallback_add(f, (struct provider){&a->ops, a}, 0, "default-a");
	fallback_add(f, (struct provider){&b->ops, b}, 1, "default-b");
	fallback_add(f, (struct provider){&c->ops, c}, 2, "default-c");
	return f;
}

static void run_chain(struct fallback *f, struct fake *first, struct esink *s, struct brg_error *e)
{
	struct embed_input in = {.text = "x"};
	struct embed_request r = {.model = "emb", .inputs = &in, .n_inputs = 1};
	esink_init(s);
	assert_int_equal(
	    fallback_embed(f, (struct provider){&first->ops, first}, &r, sink_of(s), e), BRG_OK);
	esink_wait(s);
}

static void test_fallback_skips_providers_without_the_model(void **state)
{
	(void)state;
	struct fake a, b, c;
	fake_init(&a, "a", "emb", BRG_E_UPSTREAM);
	fake_init(&b, "b", "other", BRG_OK); /* would answer, but with another model */
	fake_init(&c, "c", "emb", BRG_OK);
	struct fallback *f = chain_of(&a, &b, &c);
	struct esink s;
	struct brg_error e = {0};
	run_chain(f, &a, &s, &e);
	assert_int_equal(s.res.error.code, BRG_OK);
	assert_int_equal(a.n_calls, 1);
	assert_int_equal(b.n_calls, 0);
	assert_int_equal(c.n_calls, 1);
	assert_non_null(s.res.vecs);
	esink_fini(&s);
	fallback_free(f);
}

static void test_fallback_all_down_lists_each_provider(void **state)
{
	(void)state;
	struct fake a, b, c;
	fake_init(&a, "a", "emb", BRG_E_UPSTREAM);
	fake_init(&b, "b", "other", BRG_OK);
	fake_init(&c, "c", "emb", BRG_E_UPSTREAM_TIMEOUT);
	struct fallback *f = chain_of(&a, &b, &c);
	struct esink s;
	struct brg_error e = {0};
	run_chain(f, &a, &s, &e);
	assert_int_equal(s.res.error.code, BRG_E_PROVIDER_UNAVAILABLE);
	assert_null(s.res.vecs);
	assert_int_equal(b.n_calls, 0);
	int n_named = 0;
	for (size_t i = 0; i < s.res.error.n_details; i++) {
		const char *k = s.res.error.details[i].key;
		n_named += strcmp(k, "a") == 0 || strcmp(k, "b") == 0 || strcmp(k, "c") == 0;
	}
	assert_int_equal(n_named, 3);
	esink_fini(&s);
	fallback_free(f);
}

static void test_fallback_client_errors_do_not_fall_back(void **state)
{
	(void)state;
	struct fake a, b, c;
	fake_init(&a, "a", "emb", BRG_E_BAD_REQUEST);
	fake_init(&b, "b", "emb", BRG_OK);
	fake_init(&c, "c", "emb", BRG_OK);
	struct fallback *f = chain_of(&a, &b, &c);
	struct esink s;
	struct brg_error e = {0};
	run_chain(f, &a, &s, &e);
	assert_int_equal(s.res.error.code, BRG_E_BAD_REQUEST);
	assert_int_equal(b.n_calls + c.n_calls, 0);
	esink_fini(&s);
	fallback_free(f);
}

static void test_fallback_provider_without_embeddings_is_bad_request(void **state)
{
	(void)state;
	struct fake a;
	fake_init(&a, "a", "emb", BRG_OK);
	a.ops.embed = NULL;
	struct embed_input in = {.text = "x"};
	struct embed_request r = {.model = "emb", .inputs = &in, .n_inputs = 1};
	struct esink s;
	esink_init(&s);
	struct brg_error e = {0};
	assert_int_equal(fallback_embed(NULL, (struct provider){&a.ops, &a}, &r, sink_of(&s), &e),
	                 BRG_E_BAD_REQUEST);
	assert_int_equal(s.n_done, 0);
	esink_fini(&s);
}

static int group_setup(void **state)
{
	(void)state;
	struct brg_error err = {0};
	if (engine_init(BACKEND_DIR, &err) != BRG_OK) {
		fprintf(stderr, "engine_init: %s\n", err.message);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	engine_shutdown();
	return 0;
}

int main(void)
{
	log_set_level(getenv("BRIGADE_TEST_LOG") ? LOG_DEBUG : LOG_ERROR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_string_and_defaults),
	    cmocka_unit_test(test_parse_all_input_shapes),
	    cmocka_unit_test(test_parse_refusals_name_the_param),
	    cmocka_unit_test(test_parse_2049_inputs_refused),
	    cmocka_unit_test(test_parse_bad_json),
	    cmocka_unit_test(test_json_floats_and_usage),
	    cmocka_unit_test(test_json_base64_is_little_endian_float32),
	    cmocka_unit_test(test_json_respects_the_buffer_cap),
	    cmocka_unit_test(test_engine_mean_pooling_unit_vectors),
	    cmocka_unit_test(test_engine_batches_past_one_decode_consistently),
	    cmocka_unit_test(test_engine_refusals),
	    cmocka_unit_test(test_engine_unknown_pooling_fails_load),
	    cmocka_unit_test(test_engine_free_ends_queued_embeddings),
	    cmocka_unit_test(test_fallback_skips_providers_without_the_model),
	    cmocka_unit_test(test_fallback_all_down_lists_each_provider),
	    cmocka_unit_test(test_fallback_client_errors_do_not_fall_back),
	    cmocka_unit_test(test_fallback_provider_without_embeddings_is_bad_request),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
