/*
 * test_wire.c — unit tests for provider/wire: request bodies for OpenAI-
 * compatible servers and Ollama carry exactly the fields a request set, and
 * streamed events (chunks, [DONE], errors, NDJSON lines) decode to the
 * right deltas, with malformed ones refused and messages cut safely;
 * log-probabilities are asked for only when wanted, summed per choice, and
 * odd ones skipped without failing the event.
 * Embeddings: request bodies in order and always asking for floats;
 * answers put each vector in its row by index, and anything that could put
 * a wrong vector in a client's index (counts, indexes, sizes, values) is
 * refused with a reason.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "../common/utf8_check.h"

#include "provider/wire.h"

static const struct chat_msg MSGS[] = {
    {.role = "system", .content = "Be brief."},
    {.role = "user", .content = "Hi \xC3\xA9"},
};

static struct gen_request chat_request(void)
{
	struct gen_request r = {
	    .model = "local-name",
	    .msgs = MSGS,
	    .n_msgs = 2,
	    .params = gen_default_params(),
	    .n_choices = 1,
	};
	return r;
}

static struct gen_request prompt_request(void)
{
	struct gen_request r = chat_request();
	r.msgs = NULL;
	r.n_msgs = 0;
	r.prompt = "Once upon";
	return r;
}

/* Sets every sampling field to something other than "off". */
static void set_all_params(struct gen_params *p)
{
	p->n_max_tokens = 16;
	p->temperature = 0.7f;
	p->top_p = 0.9f;
	p->top_k = 40;
	p->min_p = 0.05f;
	p->presence_penalty = -0.5f;
	p->frequency_penalty = 0.25f;
	p->has_seed = true;
	p->seed = 4000000000u;
	p->n_stops = 2;
	p->stops[0] = "\n\n";
	p->stops[1] = "END";
}

typedef enum brg_err (*encode_fn)(const struct gen_request *, const char *, char **);

/* Encodes r and parses the body back; *text gets the body itself. */
static json_t *encode(encode_fn fn, const struct gen_request *r, const char *model, char **text)
{
	char *body = NULL;
	assert_int_equal(fn(r, model, &body), BRG_OK);
	assert_non_null(body);
	json_t *v = json_loads(body, 0, NULL);
	assert_non_null(v);
	if (text)
		*text = body;
	else
		free(body);
	return v;
}

static void assert_keys(json_t *obj, const char *const *keys, size_t n_keys)
{
	assert_int_equal(json_object_size(obj), n_keys);
	for (size_t i = 0; i < n_keys; i++)
		assert_non_null(json_object_get(obj, keys[i]));
}

static void test_openai_chat_defaults_send_only_required_fields_and_temperature(void **state)
{
	struct gen_request r = chat_request();
	json_t *v = encode(wire_openai_request, &r, "gpt-x", NULL);
	static const char *const keys[] = {"model", "messages", "stream", "stream_options",
	                                   "temperature"};
	assert_keys(v, keys, 5);
	assert_string_equal(json_string_value(json_object_get(v, "model")), "gpt-x");
	assert_true(json_is_true(json_object_get(v, "stream")));
	assert_true(
	    json_is_true(json_object_get(json_object_get(v, "stream_options"), "include_usage")));
	assert_true(json_real_value(json_object_get(v, "temperature")) == 1.0);
	json_t *msgs = json_object_get(v, "messages");
	assert_int_equal(json_array_size(msgs), 2);
	json_t *m1 = json_array_get(msgs, 1);
	assert_string_equal(json_string_value(json_object_get(m1, "role")), "user");
	assert_string_equal(json_string_value(json_object_get(m1, "content")), "Hi \xC3\xA9");
	json_decref(v);
}

static void test_openai_completion_sends_prompt_instead_of_messages(void **state)
{
	struct gen_request r = prompt_request();
	json_t *v = encode(wire_openai_request, &r, NULL, NULL);
	assert_null(json_object_get(v, "messages"));
	assert_string_equal(json_string_value(json_object_get(v, "prompt")), "Once upon");
	/* Without a model argument the request's own model is sent. */
	assert_string_equal(json_string_value(json_object_get(v, "model")), "local-name");
	json_decref(v);
}

static void test_openai_sends_every_set_sampling_field(void **state)
{
	struct gen_request r = chat_request();
	r.n_choices = 3;
	set_all_params(&r.params);
	char *text;
	json_t *v = encode(wire_openai_request, &r, "m", &text);
	assert_int_equal(json_integer_value(json_object_get(v, "n")), 3);
	assert_int_equal(json_integer_value(json_object_get(v, "max_tokens")), 16);
	assert_int_equal(json_integer_value(json_object_get(v, "top_k")), 40);
	assert_int_equal(json_integer_value(json_object_get(v, "seed")), 4000000000LL);
	json_t *stop = json_object_get(v, "stop");
	assert_int_equal(json_array_size(stop), 2);
	assert_string_equal(json_string_value(json_array_get(stop, 1)), "END");
	/* Floats in their shortest form, as a person would write them. */
	assert_non_null(strstr(text, "\"temperature\":0.7,"));
	assert_non_null(strstr(text, "\"top_p\":0.9,"));
	assert_non_null(strstr(text, "\"min_p\":0.05,"));
	assert_non_null(strstr(text, "\"presence_penalty\":-0.5,"));
	assert_non_null(strstr(text, "\"frequency_penalty\":0.25,"));
	free(text);
	json_decref(v);
}

static void test_openai_zero_max_tokens_and_zero_temperature_are_sent(void **state)
{
	struct gen_request r = chat_request();
	r.params.n_max_tokens = 0;
	r.params.temperature = 0.0f;
	json_t *v = encode(wire_openai_request, &r, "m", NULL);
	assert_int_equal(json_integer_value(json_object_get(v, "max_tokens")), 0);
	assert_true(json_number_value(json_object_get(v, "temperature")) == 0.0);
	assert_null(json_object_get(v, "n"));
	json_decref(v);
}

static void test_non_utf8_text_or_non_finite_float_is_bad_request(void **state)
{
	struct gen_request r = prompt_request();
	r.prompt = "bad \xFF byte";
	char *body = (char *)"untouched";
	assert_int_equal(wire_openai_request(&r, "m", &body), BRG_E_BAD_REQUEST);
	assert_null(body);
	r = chat_request();
	r.params.n_stops = 1;
	r.params.stops[0] = "\xC3";
	assert_int_equal(wire_ollama_request(&r, "m", &body), BRG_E_BAD_REQUEST);
	assert_null(body);
	r = chat_request();
	r.params.temperature = INFINITY;
	assert_int_equal(wire_openai_request(&r, "m", &body), BRG_E_BAD_REQUEST);
	assert_null(body);
}

/* Ollama's own defaults (top_p 0.9, top_k 40) are not "off": brigade sends
 * both so a request samples as the client asked. */
static void test_ollama_chat_defaults_send_temperature_top_p_top_k(void **state)
{
	struct gen_request r = chat_request();
	json_t *v = encode(wire_ollama_request, &r, "llama3", NULL);
	static const char *const keys[] = {"model", "messages", "stream", "options"};
	assert_keys(v, keys, 4);
	static const char *const opts[] = {"temperature", "top_p", "top_k"};
	json_t *o = json_object_get(v, "options");
	assert_keys(o, opts, 3);
	assert_int_equal(json_integer_value(json_object_get(o, "top_k")), 0);
	assert_true(json_real_value(json_object_get(o, "top_p")) == 1.0);
	assert_string_equal(json_string_value(json_object_get(v, "model")), "llama3");
	json_decref(v);
}

static void test_ollama_maps_every_set_field_into_options(void **state)
{
	struct gen_request r = chat_request();
	set_all_params(&r.params);
	r.n_choices = 4; /* not Ollama's business: the caller fans out */
	char *text;
	json_t *v = encode(wire_ollama_request, &r, "llama3", &text);
	assert_null(json_object_get(v, "n"));
	json_t *o = json_object_get(v, "options");
	static const char *const opts[] = {
	    "num_predict",      "temperature",       "top_p", "top_k", "min_p", "seed",
	    "presence_penalty", "frequency_penalty", "stop"};
	assert_keys(o, opts, 9);
	assert_int_equal(json_integer_value(json_object_get(o, "num_predict")), 16);
	assert_int_equal(json_array_size(json_object_get(o, "stop")), 2);
	assert_non_null(strstr(text, "\"temperature\":0.7"));
	free(text);
	json_decref(v);
}

static void test_ollama_prompt_goes_to_generate_as_raw(void **state)
{
	struct gen_request r = prompt_request();
	json_t *v = encode(wire_ollama_request, &r, "llama3", NULL);
	static const char *const keys[] = {"model", "prompt", "stream", "raw", "options"};
	assert_keys(v, keys, 5);
	assert_true(json_is_true(json_object_get(v, "raw")));
	json_decref(v);
}

/* want_logprobs asks OpenAI-compatible servers for the sampled tokens'
 * log-probabilities: a boolean for chat, a count of alternatives for
 * legacy completions; Ollama is never asked. */
static void test_openai_asks_for_logprobs_only_when_wanted(void **state)
{
	struct gen_request chat = chat_request();
	struct gen_request prompt = prompt_request();
	json_t *v = encode(wire_openai_request, &chat, NULL, NULL);
	assert_null(json_object_get(v, "logprobs"));
	json_decref(v);
	v = encode(wire_openai_request, &prompt, NULL, NULL);
	assert_null(json_object_get(v, "logprobs"));
	json_decref(v);
	chat.params.want_logprobs = true;
	prompt.params.want_logprobs = true;
	v = encode(wire_openai_request, &chat, NULL, NULL);
	assert_true(json_is_true(json_object_get(v, "logprobs")));
	assert_null(json_object_get(v, "top_logprobs"));
	json_decref(v);
	v = encode(wire_openai_request, &prompt, NULL, NULL);
	json_t *lp = json_object_get(v, "logprobs");
	assert_true(json_is_integer(lp));
	assert_int_equal(json_integer_value(lp), 1);
	json_decref(v);
	v = encode(wire_ollama_request, &chat, "llama3", NULL);
	assert_null(json_object_get(v, "logprobs"));
	assert_null(json_object_get(json_object_get(v, "options"), "logprobs"));
	json_decref(v);
}

/* ---- decoding ---------------------------------------------------------- */

static enum brg_err openai(const char *s, size_t k, size_t *n, struct wire_delta *d, void **h)
{
	return wire_decode_openai(s, strlen(s), k, n, d, h);
}

static void test_done_marker_is_done_with_surrounding_blanks(void **state)
{
	struct wire_delta d;
	void *h;
	size_t n = 9;
	assert_int_equal(openai(" [DONE]\r\n", 0, &n, &d, &h), BRG_OK);
	assert_true(d.is_done);
	assert_int_equal(n, 0);
	assert_int_equal(d.index, -1);
	assert_null(h);
	assert_int_equal(openai("[DONE] x", 0, &n, &d, &h), BRG_E_BAD_JSON);
	assert_int_equal(openai("[done]", 0, &n, &d, &h), BRG_E_BAD_JSON);
}

static void test_chat_chunk_gives_delta_content_and_index(void **state)
{
	struct wire_delta d;
	void *h;
	size_t n;
	const char *s =
	    "{\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
	    "\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"finish_reason\":null}],"
	    "\"usage\":null}";
	assert_int_equal(openai(s, 0, &n, &d, &h), BRG_OK);
	assert_int_equal(n, 1);
	assert_int_equal(d.index, 0);
	assert_int_equal(d.text_len, 3);
	assert_memory_equal(d.text, "Hel", 3);
	assert_false(d.has_finish);
	assert_false(d.has_usage);
	assert_false(d.is_done || d.is_error);
	wire_holder_free(h);
}

static void test_completion_chunk_gives_text(void **state)
{
	struct wire_delta d;
	void *h;
	size_t n;
	const char *s = "{\"object\":\"text_completion\",\"choices\":[{\"index\":1,\"text\":\" a\","
	                "\"finish_reason\":null}]}";
	assert_int_equal(openai(s, 0, &n, &d, &h), BRG_OK);
	assert_int_equal(d.index, 1);
	assert_string_equal(d.text, " a");
	wire_holder_free(h);
}

static void test_finish_reason_length_is_length_and_any_other_is_stop(void **state)
{
	struct wire_delta d;
	void *h;
	size_t n;
	static const char *const reasons[] = {"stop", "length", "content_filter", "tool_calls"};
	for (size_t i = 0; i < 4; i++) {
		char s[256];
		snprintf(s, sizeof s,
		         "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"%s\"}]}",
		         reasons[i]);
		assert_int_equal(openai(s, 0, &n, &d, &h), BRG_OK);
		assert_true(d.has_finish);
		assert_int_equal(d.finish, i == 1 ? GEN_FINISH_LENGTH : GEN_FINISH_STOP);
		assert_null(d.text);
		wire_holder_free(h);
	}
}

static void test_null_content_and_null_finish_give_nothing(void **state)
{
	struct wire_delta d;
	void *h;
	size_t n;
	const char *s = "{\"choices\":[{\"index\":0,\"delta\":{\"content\":null},"
	                "\"finish_reason\":null}]}";
	assert_int_equal(openai(s, 0, &n, &d, &h), BRG_OK);
	assert_int_equal(d.index, 0);
	assert_null(d.text);
	assert_int_equal(d.text_len, 0);
	assert_false(d.has_finish);
	wire_holder_free(h);
}

static void test_choice_k_of_several_and_usage_only_with_k_zero(void **state)
{
	const char *s =
	    "{\"choices\":[{\"index\":1,\"delta\":{\"content\":\"b\"}},"
	    "{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"length\"}],"
	    "\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}";
	struct wire_delta d;
	void *h;
	size_t n = 0;
	assert_int_equal(openai(s, 0, &n, &d, &h), BRG_OK);
	assert_int_equal(n, 2);
	assert_int_equal(d.index, 1);
	assert_string_equal(d.text, "b");
	assert_true(d.has_usage);
	assert_int_equal(d.n_prompt, 7);
	assert_int_equal(d.n_completion, 3);
	wire_holder_free(h);
	assert_int_equal(openai(s, 1, &n, &d, &h), BRG_OK);
	assert_int_equal(d.index, 0);
	assert_string_equal(d.text, "a");
	assert_true(d.has_finish);
	assert_int_equal(d.finish, GEN_FINISH_LENGTH);
	assert_false(d.has_usage);
	wire_holder_free(h);
}

static void test_usage_chunk_with_empty_choices_gives_no_choice_and_usage(void **state)
{
	struct wire_delta d;
	void *h;
	size_t n = 5;
	const char *s = "{\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":4}}";
	assert_int_equal(openai(s, 0, &n, &d, &h), BRG_OK);
	assert_int_equal(n, 0);
	assert_int_equal(d.index, -1);
	assert_null(d.text);
	assert_true(d.has_usage);
	assert_int_equal(d.n_prompt, 12);
	assert_int_equal(d.n_completion, 4);
	wire_holder_free(h);
}

static void test_odd_usage_counts_become_zero_or_are_clamped(void **state)
{
	struct wire_delta d;
	void *h;
	size_t n;
	const char *s = "{\"choices\":[],\"usage\":{\"prompt_tokens\":-3,\"completion_tokens\":"
	                "99999999999}}";
	assert_int_equal(openai(s, 0, &n, &d, &h), BRG_OK);
	assert_int_equal(d.n_prompt, 0);
	assert_int_equal(d.n_completion, 2147483647);
	wire_holder_free(h);
	assert_int_equal(openai("{\"usage\":{\"prompt_tokens\":\"7\"}}", 0, &n, &d, &h), BRG_OK);
	assert_true(d.has_usage);
	assert_int_equal(d.n_prompt, 0);
	wire_holder_free(h);
}

static void test_error_object_and_error_string_are_errors(void **state)
{
	struct wire_delta d;
	void *h;
	size_t n;
	assert_int_equal(
	    openai("{\"error\":{\"message\":\"rate limited\",\"type\":\"x\"}}", 0, &n, &d, &h),
	    BRG_OK);
	assert_true(d.is_error);
	assert_string_equal(d.error, "rate limited");
	wire_holder_free(h);
	assert_int_equal(openai("{\"error\":\"model not found\"}", 0, &n, &d, &h), BRG_OK);
	assert_true(d.is_error);
	assert_string_equal(d.error, "model not found");
	wire_holder_free(h);
	/* Older vLLM: the error is the object itself. */
	assert_int_equal(
	    openai("{\"object\":\"error\",\"message\":\"too long\",\"code\":400}", 0, &n, &d, &h),
	    BRG_OK);
	assert_true(d.is_error);
	assert_string_equal(d.error, "too long");
	wire_holder_free(h);
	/* No message anywhere: the error value itself, as JSON. */
	assert_int_equal(openai("{\"error\":{\"code\":500}}", 0, &n, &d, &h), BRG_OK);
	assert_true(d.is_error);
	assert_string_equal(d.error, "{\"code\":500}");
	wire_holder_free(h);
	/* "error": null is no error. */
	assert_int_equal(openai("{\"error\":null,\"choices\":[]}", 0, &n, &d, &h), BRG_OK);
	assert_false(d.is_error);
	wire_holder_free(h);
}

static void test_content_that_is_not_a_string_is_bad_json(void **state)
{
	static const char *const bad[] = {
	    "{\"choices\":[{\"delta\":{\"content\":3}}]}",
	    "{\"choices\":[{\"delta\":{\"content\":[\"a\"]}}]}",
	    "{\"choices\":[{\"delta\":{\"content\":{}}}]}",
	    "{\"choices\":[{\"text\":true}]}",
	    "{\"choices\":[{\"delta\":\"a\"}]}",
	    "{\"choices\":{}}",
	    "{\"choices\":[3]}",
	    "{\"choices\":[{\"index\":-1}]}",
	    "{\"choices\":[{\"index\":\"0\"}]}",
	    "{\"choices\":[{\"finish_reason\":1}]}",
	    "{\"usage\":[]}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct wire_delta d;
		void *h = (void *)1;
		size_t n = 7;
		assert_int_equal(openai(bad[i], 0, &n, &d, &h), BRG_E_BAD_JSON);
		assert_null(h);
		assert_null(d.text);
		assert_int_equal(n, 0);
		assert_true(d.error[0] != '\0');
	}
}

static void test_non_object_or_malformed_json_is_bad_json(void **state)
{
	static const char *const bad[] = {"[1]", "\"x\"", "3", "null", "", "{\"a\":", "{} {}"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct wire_delta d;
		void *h;
		size_t n;
		assert_int_equal(openai(bad[i], 0, &n, &d, &h), BRG_E_BAD_JSON);
		assert_null(h);
		assert_true(strlen(d.error) > 0);
		assert_int_equal(wire_decode_ollama(bad[i], strlen(bad[i]), &d, &h),
		                 BRG_E_BAD_JSON);
		assert_null(h);
	}
}

static void test_long_error_message_is_cut_between_characters(void **state)
{
	/* 200 two-byte characters after two ASCII bytes: a plain cut at 255
	 * bytes would end in the middle of one. */
	char s[1024];
	size_t len = (size_t)snprintf(s, sizeof s, "{\"error\":\"xx");
	for (int i = 0; i < 200; i++)
		len += (size_t)snprintf(s + len, sizeof s - len, "\xC3\xA9");
	snprintf(s + len, sizeof s - len, "\"}");
	struct wire_delta d;
	void *h;
	size_t n;
	assert_int_equal(openai(s, 0, &n, &d, &h), BRG_OK);
	assert_true(d.is_error);
	assert_int_equal(strlen(d.error), 254);
	assert_true(valid_utf8((const unsigned char *)d.error, strlen(d.error)));
	wire_holder_free(h);
}

static void test_parse_error_quoting_bad_bytes_gives_valid_utf8_message(void **state)
{
	struct wire_delta d;
	void *h;
	size_t n;
	assert_int_equal(openai("\xFF\xFE garbage", 0, &n, &d, &h), BRG_E_BAD_JSON);
	assert_true(strlen(d.error) > 0);
	assert_true(valid_utf8((const unsigned char *)d.error, strlen(d.error)));
}

static void test_text_is_borrowed_with_its_length_until_holder_is_freed(void **state)
{
	char *s = strdup("{\"choices\":[{\"delta\":{\"content\":\"a\\u0000b\"}}]}");
	struct wire_delta d;
	void *h;
	size_t n;
	assert_int_equal(openai(s, 0, &n, &d, &h), BRG_OK);
	free(s);
	/* ASan would catch a borrow from s; the escaped NUL is kept. */
	assert_int_equal(d.text_len, 3);
	assert_memory_equal(d.text, "a\0b", 3);
	wire_holder_free(h);
	wire_holder_free(NULL);
}

static enum brg_err ollama(const char *s, struct wire_delta *d, void **h)
{
	return wire_decode_ollama(s, strlen(s), d, h);
}

/* Decodes choice k of s, which must succeed, into *d; returns the holder
 * (d->text points into it), which the caller frees. */
static void *decode_ok(const char *s, size_t k, struct wire_delta *d)
{
	void *h;
	size_t n;
	assert_int_equal(openai(s, k, &n, d, &h), BRG_OK);
	return h;
}

static void test_chunk_without_logprobs_gives_none(void **state)
{
	struct wire_delta d;
	wire_holder_free(
	    decode_ok("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}", 0, &d));
	assert_int_equal(d.n_logprobs, 0);
	assert_true(d.logprob_sum == 0.0);
	wire_holder_free(decode_ok(
	    "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"logprobs\":null}]}", 0,
	    &d));
	assert_int_equal(d.n_logprobs, 0);
}

static void test_chat_chunk_logprobs_are_summed_per_choice(void **state)
{
	struct wire_delta d;
	const char *s =
	    "{\"object\":\"chat.completion.chunk\",\"choices\":["
	    "{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"logprobs\":{\"content\":["
	    "{\"token\":\"Hel\",\"logprob\":-0.5,\"bytes\":[72,101,108],\"top_logprobs\":["
	    "{\"token\":\"Hel\",\"logprob\":-0.5,\"bytes\":null}]},"
	    "{\"token\":\"lo\",\"logprob\":-0.25,\"bytes\":[108,111],\"top_logprobs\":[]}],"
	    "\"refusal\":null},\"finish_reason\":null},"
	    "{\"index\":1,\"delta\":{\"content\":\"Hi\"},\"logprobs\":{\"content\":["
	    "{\"token\":\"Hi\",\"logprob\":-2}]}}]}";
	void *h = decode_ok(s, 0, &d);
	assert_int_equal(d.index, 0);
	assert_memory_equal(d.text, "Hello", 5);
	assert_int_equal(d.n_logprobs, 2);
	assert_true(d.logprob_sum == -0.75);
	wire_holder_free(h);
	wire_holder_free(decode_ok(s, 1, &d));
	assert_int_equal(d.index, 1);
	assert_int_equal(d.n_logprobs, 1); /* an integer is a number too */
	assert_true(d.logprob_sum == -2.0);
}

static void test_completion_chunk_token_logprobs_skip_nulls(void **state)
{
	struct wire_delta d;
	void *h =
	    decode_ok("{\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\" a b\","
	              "\"logprobs\":{\"tokens\":[\"<s>\",\" a\",\" b\"],"
	              "\"token_logprobs\":[null,-1.5,-0.5],\"top_logprobs\":[null,{\" a\":-1.5},"
	              "{\" b\":-0.5}],\"text_offset\":[0,0,2]},\"finish_reason\":null}]}",
	              0, &d);
	assert_string_equal(d.text, " a b");
	assert_int_equal(d.n_logprobs, 2);
	assert_true(d.logprob_sum == -2.0);
	wire_holder_free(h);
	/* llama.cpp's server answers completions in chat's shape: read too. */
	wire_holder_free(
	    decode_ok("{\"choices\":[{\"index\":0,\"text\":\"x\",\"logprobs\":{\"content\":["
	              "{\"id\":87,\"token\":\"x\",\"logprob\":-0.125}]}}]}",
	              0, &d));
	assert_int_equal(d.n_logprobs, 1);
	assert_true(d.logprob_sum == -0.125);
}

/* Logprobs feed a confidence only: odd ones are skipped, never refused,
 * and the chunk's text and finish still come through. */
static void test_odd_logprobs_are_ignored_not_refused(void **state)
{
	static const char *const odd[] = {
	    "\"x\"",
	    "[-1]",
	    "-1",
	    "{}",
	    "{\"content\":\"x\"}",
	    "{\"content\":null,\"token_logprobs\":{\"a\":-1}}",
	    "{\"content\":[-1,\"x\",null,[],{},{\"logprob\":\"-0.1\"},{\"logprob\":null},"
	    "{\"logprob\":true},{\"logprob\":[-1]},{\"logprob\":\"-Infinity\"}]}",
	    "{\"token_logprobs\":[\"-1\",true,null,{},[],\"NaN\"]}",
	};
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		char s[512];
		snprintf(s, sizeof s,
		         "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},"
		         "\"logprobs\":%s,\"finish_reason\":\"stop\"}]}",
		         odd[i]);
		struct wire_delta d;
		void *h = decode_ok(s, 0, &d);
		assert_int_equal(d.n_logprobs, 0);
		assert_true(d.logprob_sum == 0.0);
		assert_string_equal(d.text, "ok");
		assert_true(d.has_finish);
		wire_holder_free(h);
	}
	/* Good entries beside bad ones still count. */
	struct wire_delta d;
	wire_holder_free(
	    decode_ok("{\"choices\":[{\"delta\":{},\"logprobs\":{\"content\":["
	              "{\"logprob\":\"x\"},{\"logprob\":-1},null,{\"logprob\":-3}]}}]}",
	              0, &d));
	assert_int_equal(d.n_logprobs, 2);
	assert_true(d.logprob_sum == -4.0);
}

/* jansson has no NaN or infinity: values past a double's range are
 * invalid JSON (the event fails as before).  The extremes that do parse
 * are kept within [-9999, 0] so that sums stay finite: a positive log p
 * is rounding and counts as 0. */
static void test_extreme_logprobs_stay_finite(void **state)
{
	struct wire_delta d;
	wire_holder_free(decode_ok("{\"choices\":[{\"text\":\"\",\"logprobs\":{\"token_logprobs\":"
	                           "[-1e308,-1e308,-1e-400,1e-7,0.5,0,-20000,-1.5]}}]}",
	                           0, &d));
	assert_int_equal(d.n_logprobs, 8);
	assert_true(d.logprob_sum == -3 * 9999.0 - 1.5);
	void *h = (void *)1;
	size_t n;
	assert_int_equal(openai("{\"choices\":[{\"text\":\"\",\"logprobs\":{\"token_logprobs\":"
	                        "[-1e400]}}]}",
	                        0, &n, &d, &h),
	                 BRG_E_BAD_JSON);
	assert_null(h);
	assert_int_equal(d.n_logprobs, 0);
}

static void test_ollama_line_gives_message_content_or_response_as_choice_zero(void **state)
{
	struct wire_delta d;
	void *h;
	const char *s = "{\"model\":\"llama3\",\"created_at\":\"2024-01-01T00:00:00Z\","
	                "\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}";
	assert_int_equal(ollama(s, &d, &h), BRG_OK);
	assert_int_equal(d.index, 0);
	assert_string_equal(d.text, "Hi");
	assert_false(d.is_done || d.has_finish || d.has_usage || d.is_error);
	wire_holder_free(h);
	assert_int_equal(ollama("{\"response\":\" there\",\"done\":false}", &d, &h), BRG_OK);
	assert_int_equal(d.index, 0);
	assert_string_equal(d.text, " there");
	wire_holder_free(h);
}

static void test_ollama_done_line_gives_finish_and_usage(void **state)
{
	struct wire_delta d;
	void *h;
	const char *s = "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"
	                "\"done_reason\":\"length\",\"prompt_eval_count\":26,\"eval_count\":8}";
	assert_int_equal(ollama(s, &d, &h), BRG_OK);
	assert_true(d.is_done);
	assert_true(d.has_finish);
	assert_int_equal(d.finish, GEN_FINISH_LENGTH);
	assert_true(d.has_usage);
	assert_int_equal(d.n_prompt, 26);
	assert_int_equal(d.n_completion, 8);
	wire_holder_free(h);
	/* A cached prompt may come without prompt_eval_count. */
	assert_int_equal(ollama("{\"response\":\"\",\"done\":true,\"done_reason\":\"stop\","
	                        "\"eval_count\":2}",
	                        &d, &h),
	                 BRG_OK);
	assert_int_equal(d.finish, GEN_FINISH_STOP);
	assert_int_equal(d.n_prompt, 0);
	assert_int_equal(d.n_completion, 2);
	wire_holder_free(h);
}

static void test_ollama_error_line_is_an_error(void **state)
{
	struct wire_delta d;
	void *h;
	assert_int_equal(ollama("{\"error\":\"model 'x' not found\"}", &d, &h), BRG_OK);
	assert_true(d.is_error);
	assert_string_equal(d.error, "model 'x' not found");
	wire_holder_free(h);
}

static void test_ollama_wrong_shapes_are_bad_json(void **state)
{
	static const char *const bad[] = {
	    "{\"message\":{\"content\":1}}",
	    "{\"message\":\"hi\"}",
	    "{\"response\":[]}",
	    "{\"response\":\"a\",\"done\":\"true\"}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct wire_delta d;
		void *h;
		assert_int_equal(ollama(bad[i], &d, &h), BRG_E_BAD_JSON);
		assert_null(h);
		assert_null(d.text);
	}
}

/* ---- embeddings ---------------------------------------------------------- */

static const int32_t TOKENS[] = {1, 400, 300};

static const struct embed_input EMBED_INPUTS[] = {
    {.text = "Hi \xC3\xA9"},
    {.tokens = TOKENS, .n_tokens = 3},
    {.text = "second text"},
};

static struct embed_request embed_request(void)
{
	struct embed_request r = {.model = "own-name", .inputs = EMBED_INPUTS, .n_inputs = 3};
	return r;
}

static void test_openai_embed_request_sends_every_input_in_order_asking_for_floats(void **state)
{
	struct embed_request r = embed_request();
	char *body = NULL;
	assert_int_equal(wire_openai_embed_request(&r, "up-name", &body), BRG_OK);
	json_t *v = json_loads(body, 0, NULL);
	assert_non_null(v);
	static const char *const keys[] = {"model", "input", "encoding_format"};
	assert_keys(v, keys, 3);
	assert_string_equal(json_string_value(json_object_get(v, "model")), "up-name");
	assert_string_equal(json_string_value(json_object_get(v, "encoding_format")), "float");
	json_t *input = json_object_get(v, "input");
	assert_int_equal(json_array_size(input), 3);
	assert_string_equal(json_string_value(json_array_get(input, 0)), "Hi \xC3\xA9");
	json_t *toks = json_array_get(input, 1);
	assert_int_equal(json_array_size(toks), 3);
	assert_int_equal(json_integer_value(json_array_get(toks, 1)), 400);
	assert_string_equal(json_string_value(json_array_get(input, 2)), "second text");
	json_decref(v);
	free(body);

	/* One input is still an array; dimensions only when asked; NULL model
	 * sends the request's own. */
	r.n_inputs = 1;
	r.dimensions = 256;
	assert_int_equal(wire_openai_embed_request(&r, NULL, &body), BRG_OK);
	v = json_loads(body, 0, NULL);
	assert_int_equal(json_array_size(json_object_get(v, "input")), 1);
	assert_int_equal(json_integer_value(json_object_get(v, "dimensions")), 256);
	assert_string_equal(json_string_value(json_object_get(v, "model")), "own-name");
	json_decref(v);
	free(body);
}

static void test_ollama_embed_request_sends_model_and_prompt(void **state)
{
	char *body = NULL;
	assert_int_equal(wire_ollama_embed_request("Hi \xC3\xA9", "nomic", &body), BRG_OK);
	json_t *v = json_loads(body, 0, NULL);
	static const char *const keys[] = {"model", "prompt"};
	assert_keys(v, keys, 2);
	assert_string_equal(json_string_value(json_object_get(v, "model")), "nomic");
	assert_string_equal(json_string_value(json_object_get(v, "prompt")), "Hi \xC3\xA9");
	json_decref(v);
	free(body);
}

static void test_embed_request_with_non_utf8_text_is_bad_request(void **state)
{
	const struct embed_input in[] = {{.text = "ok"}, {.text = "bad \xFF"}};
	struct embed_request r = {.model = "m", .inputs = in, .n_inputs = 2};
	char *body = (char *)"untouched";
	assert_int_equal(wire_openai_embed_request(&r, "m", &body), BRG_E_BAD_REQUEST);
	assert_null(body);
	body = (char *)"untouched";
	assert_int_equal(wire_ollama_embed_request("\xC3", "m", &body), BRG_E_BAD_REQUEST);
	assert_null(body);
}

/* Decodes an OpenAI answer for n inputs; 'why' is checked to be UTF-8. */
static enum brg_err openai_embed(const char *s, size_t n, struct embed_result *out, char *why,
                                 size_t why_len)
{
	memset(out, 0xAB, sizeof *out); /* the decoder must set what it promises */
	enum brg_err rc = wire_decode_openai_embeddings(s, strlen(s), n, out, why, why_len);
	if (why_len) {
		assert_non_null(memchr(why, '\0', why_len));
		assert_true(valid_utf8((const unsigned char *)why, strlen(why)));
	}
	if (rc) {
		assert_null(out->vecs);
		assert_int_equal(out->dim, 0);
		assert_int_equal(out->n_inputs, 0);
		assert_true(why_len == 0 || strlen(why) > 0);
	}
	return rc;
}

static void test_openai_embeddings_put_each_row_by_its_index_with_usage(void **state)
{
	const char *s = "{\"object\":\"list\",\"model\":\"m\",\"data\":["
	                "{\"object\":\"embedding\",\"index\":2,\"embedding\":[5,6.5]},"
	                "{\"object\":\"embedding\",\"index\":0,\"embedding\":[1,-2]},"
	                "{\"object\":\"embedding\",\"index\":1,\"embedding\":[0.25,1e-3]}],"
	                "\"usage\":{\"prompt_tokens\":7,\"total_tokens\":7}}";
	struct embed_result r;
	char why[128];
	assert_int_equal(openai_embed(s, 3, &r, why, sizeof why), BRG_OK);
	assert_int_equal(r.n_inputs, 3);
	assert_int_equal(r.dim, 2);
	assert_int_equal(r.n_prompt, 7);
	const float want[] = {1, -2, 0.25f, 1e-3f, 5, 6.5f};
	for (size_t i = 0; i < 6; i++)
		assert_true(r.vecs[i] == want[i]);
	free(r.vecs);
}

static void test_openai_embeddings_without_index_or_usage_take_positions_and_zero(void **state)
{
	struct embed_result r;
	char why[128];
	assert_int_equal(openai_embed("{\"data\":[{\"embedding\":[1]},{\"embedding\":[2]}]}", 2, &r,
	                              why, sizeof why),
	                 BRG_OK);
	assert_true(r.vecs[0] == 1 && r.vecs[1] == 2);
	assert_int_equal(r.n_prompt, 0);
	free(r.vecs);
	/* Odd usage is not worth refusing vectors over. */
	assert_int_equal(
	    openai_embed("{\"data\":[{\"embedding\":[1]}],\"usage\":5}", 1, &r, why, sizeof why),
	    BRG_OK);
	assert_int_equal(r.n_prompt, 0);
	free(r.vecs);
}

static void test_openai_embeddings_with_the_wrong_count_are_refused(void **state)
{
	struct embed_result r;
	char why[128];
	const char *two =
	    "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":1,\"embedding\":[2]}]}";
	assert_int_equal(openai_embed(two, 3, &r, why, sizeof why), BRG_E_BAD_JSON);
	assert_non_null(strstr(why, "2 embeddings for 3 inputs"));
	assert_int_equal(openai_embed(two, 1, &r, why, sizeof why), BRG_E_BAD_JSON);
	assert_int_equal(openai_embed("{\"data\":[]}", 1, &r, why, sizeof why), BRG_E_BAD_JSON);
	assert_int_equal(openai_embed("{\"data\":{}}", 1, &r, why, sizeof why), BRG_E_BAD_JSON);
	assert_int_equal(openai_embed("{}", 1, &r, why, sizeof why), BRG_E_BAD_JSON);
}

static void test_duplicate_or_out_of_range_index_is_refused(void **state)
{
	static const char *const bad[] = {
	    "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":0,\"embedding\":[2]}]}",
	    "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":2,\"embedding\":[2]}]}",
	    "{\"data\":[{\"index\":-1,\"embedding\":[1]},{\"index\":1,\"embedding\":[2]}]}",
	    "{\"data\":[{\"index\":\"0\",\"embedding\":[1]},{\"index\":1,\"embedding\":[2]}]}",
	    "{\"data\":[{\"index\":0.0,\"embedding\":[1]},{\"index\":1,\"embedding\":[2]}]}",
	    /* Position 1 is index 1 too: a duplicate. */
	    "{\"data\":[{\"index\":1,\"embedding\":[1]},{\"embedding\":[2]}]}",
	    "{\"data\":[{\"index\":0,\"embedding\":[1]},[2]]}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct embed_result r;
		char why[128];
		assert_int_equal(openai_embed(bad[i], 2, &r, why, sizeof why), BRG_E_BAD_JSON);
	}
	struct embed_result r;
	char why[128];
	openai_embed(bad[0], 2, &r, why, sizeof why);
	assert_non_null(strstr(why, "appears twice"));
}

static void test_mixed_or_empty_embeddings_are_refused(void **state)
{
	static const char *const bad[] = {
	    "{\"data\":[{\"index\":0,\"embedding\":[1,2]},{\"index\":1,\"embedding\":[3]}]}",
	    "{\"data\":[{\"index\":0,\"embedding\":[]},{\"index\":1,\"embedding\":[]}]}",
	    "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":1}]}",
	    "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":1,\"embedding\":{}}]}",
	    "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":1,\"embedding\":null}]}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct embed_result r;
		char why[128];
		assert_int_equal(openai_embed(bad[i], 2, &r, why, sizeof why), BRG_E_BAD_JSON);
	}
	struct embed_result r;
	char why[128];
	openai_embed(bad[0], 2, &r, why, sizeof why);
	assert_non_null(strstr(why, "has 1 values but data[0]'s has 2"));
}

static void test_values_that_are_not_finite_float32_are_refused(void **state)
{
	/* 1e39 is a fine double but past float32; NaN, Infinity and 1e400 are
	 * not JSON at all. */
	static const char *const bad[] = {
	    "{\"data\":[{\"embedding\":[1,1e39]}]}",
	    "{\"data\":[{\"embedding\":[-1e39]}]}",
	    "{\"data\":[{\"embedding\":[1,\"2\"]}]}",
	    "{\"data\":[{\"embedding\":[null]}]}",
	    "{\"data\":[{\"embedding\":[true]}]}",
	    "{\"data\":[{\"embedding\":[[1]]}]}",
	    "{\"data\":[{\"embedding\":[NaN]}]}",
	    "{\"data\":[{\"embedding\":[Infinity]}]}",
	    "{\"data\":[{\"embedding\":[1e400]}]}",
	    "{\"data\":[{\"embedding\":[1,]}]}",
	    "{\"data\":[{\"embedding\":[99999999999999999999999]}]}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct embed_result r;
		char why[128];
		assert_int_equal(openai_embed(bad[i], 1, &r, why, sizeof why), BRG_E_BAD_JSON);
	}
	/* Large but finite, and integers, are fine. */
	struct embed_result r;
	char why[128];
	assert_int_equal(
	    openai_embed("{\"data\":[{\"embedding\":[3e38,-7,0]}]}", 1, &r, why, sizeof why),
	    BRG_OK);
	assert_true(r.vecs[0] == 3e38f && r.vecs[1] == -7.0f && r.vecs[2] == 0.0f);
	free(r.vecs);
}

/* base64 of the little-endian float32s 1.5, -2, 0.25 and of NaN. */
#define B64_THREE "AADAPwAAAMAAAIA+"
#define B64_NAN   "AADAfw=="

static void test_base64_embedding_is_read_as_little_endian_float32(void **state)
{
	struct embed_result r;
	char why[128];
	assert_int_equal(openai_embed("{\"data\":[{\"index\":0,\"embedding\":\"" B64_THREE "\"},"
	                              "{\"index\":1,\"embedding\":[1,2,3]}]}",
	                              2, &r, why, sizeof why),
	                 BRG_OK);
	assert_int_equal(r.dim, 3);
	assert_true(r.vecs[0] == 1.5f && r.vecs[1] == -2.0f && r.vecs[2] == 0.25f);
	assert_true(r.vecs[3] == 1.0f && r.vecs[5] == 3.0f);
	free(r.vecs);
	/* Padding is optional: one float is 4 bytes, "AADAPw" without "==". */
	assert_int_equal(
	    openai_embed("{\"data\":[{\"embedding\":\"AADAPw\"}]}", 1, &r, why, sizeof why),
	    BRG_OK);
	assert_true(r.dim == 1 && r.vecs[0] == 1.5f);
	free(r.vecs);
	static const char *const bad[] = {
	    "{\"data\":[{\"embedding\":\"" B64_NAN "\"}]}",
	    "{\"data\":[{\"embedding\":\"AADA\"}]}",     /* 3 bytes: not whole floats */
	    "{\"data\":[{\"embedding\":\"AAD*Pw==\"}]}", /* not base64 */
	    "{\"data\":[{\"embedding\":\"AADAP\"}]}",    /* a dangling digit */
	    "{\"data\":[{\"embedding\":\"AADAPw=\"}]}",  /* padding to no multiple of 4 */
	    "{\"data\":[{\"embedding\":\"\"}]}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(openai_embed(bad[i], 1, &r, why, sizeof why), BRG_E_BAD_JSON);
}

static void test_too_many_floats_are_refused_before_allocating(void **state)
{
	/* 2048 inputs × 32769 values pass 64 Mi floats; the first entry says so. */
	size_t n = 2048, dim = WIRE_EMBED_MAX_FLOATS / 2048 + 1;
	size_t b64_len = (dim * 4 + 2) / 3 * 4;
	char *s = malloc(b64_len + n * 4 + 64);
	assert_non_null(s);
	size_t len = (size_t)sprintf(s, "{\"data\":[{\"embedding\":\"");
	memset(s + len, 'A', b64_len);
	len += b64_len;
	len += (size_t)sprintf(s + len, "\"}");
	for (size_t i = 1; i < n; i++)
		len += (size_t)sprintf(s + len, ",{}");
	sprintf(s + len, "]}");
	struct embed_result r;
	char why[128];
	assert_int_equal(openai_embed(s, n, &r, why, sizeof why), BRG_E_BAD_JSON);
	assert_non_null(strstr(why, "exceed"));
	free(s);
}

static void test_embeddings_error_object_is_upstream_error_with_its_message(void **state)
{
	struct embed_result r;
	char why[128];
	assert_int_equal(openai_embed("{\"error\":{\"message\":\"model is not an embedding model\","
	                              "\"type\":\"invalid_request_error\"}}",
	                              1, &r, why, sizeof why),
	                 BRG_E_UPSTREAM);
	assert_string_equal(why, "model is not an embedding model");
	assert_int_equal(openai_embed("{\"object\":\"error\",\"message\":\"vllm says no\"}", 1, &r,
	                              why, sizeof why),
	                 BRG_E_UPSTREAM);
	assert_string_equal(why, "vllm says no");
	/* An empty message still gives a reason (the fuzzer found this). */
	assert_int_equal(openai_embed("{\"error\":\"\"}", 1, &r, why, sizeof why), BRG_E_UPSTREAM);
	assert_string_equal(why, "upstream error without a message");
}

static void test_embeddings_answer_that_is_not_a_json_object_is_bad_json(void **state)
{
	static const char *const bad[] = {
	    "", "[1]", "null", "{\"data\":", "\xFF\xFE", "{\"data\":[{\"embedding\":[1]}]} x"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct embed_result r;
		char why[128];
		assert_int_equal(openai_embed(bad[i], 1, &r, why, sizeof why), BRG_E_BAD_JSON);
		float *v = (float *)1;
		int dim = 7;
		assert_int_equal(
		    wire_decode_ollama_embedding(bad[i], strlen(bad[i]), &v, &dim, why, sizeof why),
		    BRG_E_BAD_JSON);
		assert_null(v);
		assert_int_equal(dim, 0);
	}
}

static void test_embeddings_reason_is_cut_between_characters_and_may_be_absent(void **state)
{
	/* An upstream message of 100 two-byte characters into 16 bytes. */
	char s[512];
	size_t len = (size_t)snprintf(s, sizeof s, "{\"error\":\"x");
	for (int i = 0; i < 100; i++)
		len += (size_t)snprintf(s + len, sizeof s - len, "\xC3\xA9");
	snprintf(s + len, sizeof s - len, "\"}");
	struct embed_result r;
	char why[16];
	assert_int_equal(openai_embed(s, 1, &r, why, sizeof why), BRG_E_UPSTREAM);
	assert_int_equal(strlen(why), 15);
	/* No room for a reason at all is fine too. */
	assert_int_equal(openai_embed("{}", 1, &r, NULL, 0), BRG_E_BAD_JSON);
}

static enum brg_err ollama_embed(const char *s, float **v, int *dim, char *why)
{
	enum brg_err rc = wire_decode_ollama_embedding(s, strlen(s), v, dim, why, 128);
	assert_true(valid_utf8((const unsigned char *)why, strlen(why)));
	if (rc) {
		assert_null(*v);
		assert_int_equal(*dim, 0);
		assert_true(strlen(why) > 0);
	}
	return rc;
}

static void test_ollama_embedding_gives_its_floats(void **state)
{
	float *v;
	int dim;
	char why[128];
	assert_int_equal(ollama_embed("{\"embedding\":[0.5,-1,2e-3]}", &v, &dim, why), BRG_OK);
	assert_int_equal(dim, 3);
	assert_true(v[0] == 0.5f && v[1] == -1.0f && v[2] == 2e-3f);
	free(v);
}

static void test_ollama_empty_embedding_says_the_model_does_not_embed(void **state)
{
	float *v;
	int dim;
	char why[128];
	assert_int_equal(ollama_embed("{\"embedding\":[]}", &v, &dim, why), BRG_E_BAD_REQUEST);
	assert_non_null(strstr(why, "does not produce embeddings"));
}

static void test_ollama_embedding_errors_and_wrong_shapes(void **state)
{
	float *v;
	int dim;
	char why[128];
	assert_int_equal(ollama_embed("{\"error\":\"model 'x' not found\"}", &v, &dim, why),
	                 BRG_E_UPSTREAM);
	assert_string_equal(why, "model 'x' not found");
	static const char *const bad[] = {
	    "{}",
	    "{\"embedding\":null}",
	    "{\"embedding\":\"AADAPw==\"}",
	    "{\"embedding\":[1,\"2\"]}",
	    "{\"embedding\":[1e39]}",
	    "{\"embeddings\":[[1]]}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(ollama_embed(bad[i], &v, &dim, why), BRG_E_BAD_JSON);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_openai_chat_defaults_send_only_required_fields_and_temperature),
	    cmocka_unit_test(test_openai_completion_sends_prompt_instead_of_messages),
	    cmocka_unit_test(test_openai_sends_every_set_sampling_field),
	    cmocka_unit_test(test_openai_zero_max_tokens_and_zero_temperature_are_sent),
	    cmocka_unit_test(test_non_utf8_text_or_non_finite_float_is_bad_request),
	    cmocka_unit_test(test_ollama_chat_defaults_send_temperature_top_p_top_k),
	    cmocka_unit_test(test_ollama_maps_every_set_field_into_options),
	    cmocka_unit_test(test_ollama_prompt_goes_to_generate_as_raw),
	    cmocka_unit_test(test_openai_asks_for_logprobs_only_when_wanted),
	    cmocka_unit_test(test_done_marker_is_done_with_surrounding_blanks),
	    cmocka_unit_test(test_chat_chunk_gives_delta_content_and_index),
	    cmocka_unit_test(test_completion_chunk_gives_text),
	    cmocka_unit_test(test_finish_reason_length_is_length_and_any_other_is_stop),
	    cmocka_unit_test(test_null_content_and_null_finish_give_nothing),
	    cmocka_unit_test(test_choice_k_of_several_and_usage_only_with_k_zero),
	    cmocka_unit_test(test_usage_chunk_with_empty_choices_gives_no_choice_and_usage),
	    cmocka_unit_test(test_odd_usage_counts_become_zero_or_are_clamped),
	    cmocka_unit_test(test_error_object_and_error_string_are_errors),
	    cmocka_unit_test(test_content_that_is_not_a_string_is_bad_json),
	    cmocka_unit_test(test_non_object_or_malformed_json_is_bad_json),
	    cmocka_unit_test(test_long_error_message_is_cut_between_characters),
	    cmocka_unit_test(test_parse_error_quoting_bad_bytes_gives_valid_utf8_message),
	    cmocka_unit_test(test_text_is_borrowed_with_its_length_until_holder_is_freed),
	    cmocka_unit_test(test_chunk_without_logprobs_gives_none),
	    cmocka_unit_test(test_chat_chunk_logprobs_are_summed_per_choice),
	    cmocka_unit_test(test_completion_chunk_token_logprobs_skip_nulls),
	    cmocka_unit_test(test_odd_logprobs_are_ignored_not_refused),
	    cmocka_unit_test(test_extreme_logprobs_stay_finite),
	    cmocka_unit_test(test_ollama_line_gives_message_content_or_response_as_choice_zero),
	    cmocka_unit_test(test_ollama_done_line_gives_finish_and_usage),
	    cmocka_unit_test(test_ollama_error_line_is_an_error),
	    cmocka_unit_test(test_ollama_wrong_shapes_are_bad_json),
	    cmocka_unit_test(
	        test_openai_embed_request_sends_every_input_in_order_asking_for_floats),
	    cmocka_unit_test(test_ollama_embed_request_sends_model_and_prompt),
	    cmocka_unit_test(test_embed_request_with_non_utf8_text_is_bad_request),
	    cmocka_unit_test(test_openai_embeddings_put_each_row_by_its_index_with_usage),
	    cmocka_unit_test(test_openai_embeddings_without_index_or_usage_take_positions_and_zero),
	    cmocka_unit_test(test_openai_embeddings_with_the_wrong_count_are_refused),
	    cmocka_unit_test(test_duplicate_or_out_of_range_index_is_refused),
	    cmocka_unit_test(test_mixed_or_empty_embeddings_are_refused),
	    cmocka_unit_test(test_values_that_are_not_finite_float32_are_refused),
	    cmocka_unit_test(test_base64_embedding_is_read_as_little_endian_float32),
	    cmocka_unit_test(test_too_many_floats_are_refused_before_allocating),
	    cmocka_unit_test(test_embeddings_error_object_is_upstream_error_with_its_message),
	    cmocka_unit_test(test_embeddings_answer_that_is_not_a_json_object_is_bad_json),
	    cmocka_unit_test(test_embeddings_reason_is_cut_between_characters_and_may_be_absent),
	    cmocka_unit_test(test_ollama_embedding_gives_its_floats),
	    cmocka_unit_test(test_ollama_empty_embedding_says_the_model_does_not_embed),
	    cmocka_unit_test(test_ollama_embedding_errors_and_wrong_shapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
