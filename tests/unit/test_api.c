/*
 * test_api.c — unit tests for api/request.c (JSON body → struct
 * api_request, every refusal with its code and "param" detail) and the
 * spec's error body built by api/reply.c's api_error_json().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_int.h"

#define USER_MSG   "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"
#define CHAT(...)  "{\"model\":\"m\"," USER_MSG __VA_ARGS__ "}"
#define COMPL(...) "{\"model\":\"m\"" __VA_ARGS__ "}"

/* The "param" detail, or NULL when there is none. */
static const char *param_of(const struct brg_error *e)
{
	for (size_t i = 0; i < e->n_details; i++)
		if (strcmp(e->details[i].key, "param") == 0)
			return e->details[i].s;
	return NULL;
}

static void parse_chat_ok(const char *json, struct api_request *r)
{
	struct brg_error e;
	brg_error_clear(&e);
	enum brg_err rc = api_parse_chat(json, strlen(json), r, &e);
	if (rc)
		fail_msg("%s: %s", json, e.message);
	assert_true(r->is_chat);
}

static void parse_completion_ok(const char *json, struct api_request *r)
{
	struct brg_error e;
	brg_error_clear(&e);
	enum brg_err rc = api_parse_completion(json, strlen(json), r, &e);
	if (rc)
		fail_msg("%s: %s", json, e.message);
	assert_false(r->is_chat);
}

typedef enum brg_err (*parse_fn)(const char *, size_t, struct api_request *, struct brg_error *);

/* Asserts 'json' (of 'len' bytes) is refused with 'code' and 'param' (NULL: no param). */
static void expect_refusal(parse_fn parse, const char *json, size_t len, enum brg_err code,
                           const char *param)
{
	struct api_request r;
	struct brg_error e;
	brg_error_clear(&e);
	enum brg_err rc = parse(json, len, &r, &e);
	if (rc != code)
		fail_msg("%s: got %s (%s), want %s", json, brg_err_code(rc), e.message,
		         brg_err_code(code));
	assert_int_equal(e.code, code);
	assert_true(e.message[0] != '\0');
	if (param)
		assert_string_equal(param_of(&e) ? param_of(&e) : "(none)", param);
	else
		assert_null(param_of(&e));
	assert_null(r.root); /* freed on error */
	assert_null(r.msgs);
}

static void chat_refused(const char *json, enum brg_err code, const char *param)
{
	expect_refusal(api_parse_chat, json, strlen(json), code, param);
}

static void completion_refused(const char *json, enum brg_err code, const char *param)
{
	expect_refusal(api_parse_completion, json, strlen(json), code, param);
}

/* ---- chat: accepted ---- */

static void test_chat_minimal_gets_defaults(void **state)
{
	(void)state;
	struct api_request r;
	parse_chat_ok(CHAT(), &r);
	assert_string_equal(r.model, "m");
	assert_int_equal(r.n_msgs, 1);
	assert_string_equal(r.msgs[0].role, "user");
	assert_string_equal(r.msgs[0].content, "hi");
	assert_int_equal(r.n, 1);
	assert_false(r.is_stream);
	assert_false(r.include_usage);
	assert_null(r.task_type);
	assert_int_equal(r.mode, ORCH_SINGLE);
	assert_int_equal(r.priority, 2);
	assert_int_equal(r.params.n_max_tokens, -1);
	assert_true(r.params.temperature == 1.0f);
	assert_false(r.params.has_seed);
	assert_int_equal(r.params.n_stops, 0);
	api_request_fini(&r);
	assert_null(r.root);
}

static void test_chat_all_sampling_fields_set(void **state)
{
	(void)state;
	struct api_request r;
	parse_chat_ok(CHAT(",\"temperature\":0.5,\"top_p\":0.25,\"top_k\":40,\"min_p\":0.125,"
	                   "\"seed\":42,\"presence_penalty\":-1.5,\"frequency_penalty\":1.25,"
	                   "\"n\":3,\"max_tokens\":10,\"user\":\"u-1\""),
	              &r);
	assert_true(r.params.temperature == 0.5f);
	assert_true(r.params.top_p == 0.25f);
	assert_int_equal(r.params.top_k, 40);
	assert_true(r.params.min_p == 0.125f);
	assert_true(r.params.has_seed);
	assert_int_equal(r.params.seed, 42);
	assert_true(r.params.presence_penalty == -1.5f);
	assert_true(r.params.frequency_penalty == 1.25f);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.params.n_max_tokens, 10);
	api_request_fini(&r);
}

static void test_chat_stream_and_extensions_set(void **state)
{
	(void)state;
	struct api_request r;
	parse_chat_ok(CHAT(",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
	                   "\"task_type\":\"code\",\"orchestration_mode\":\"critique\","
	                   "\"priority\":1,\"config\":\"D2\",\"stream_steps\":true"),
	              &r);
	assert_true(r.is_stream);
	assert_true(r.include_usage);
	assert_string_equal(r.task_type, "code");
	assert_string_equal(r.mode, "critique");
	assert_string_equal(r.preset, "D2");
	assert_true(r.is_stream_steps);
	assert_int_equal(r.priority, 1);
	api_request_fini(&r);
}

static void test_chat_max_completion_tokens_wins_over_max_tokens(void **state)
{
	(void)state;
	struct api_request r;
	parse_chat_ok(CHAT(",\"max_completion_tokens\":7,\"max_tokens\":99"), &r);
	assert_int_equal(r.params.n_max_tokens, 7);
	api_request_fini(&r);
	parse_chat_ok(CHAT(",\"max_tokens\":99,\"max_completion_tokens\":8"), &r);
	assert_int_equal(r.params.n_max_tokens, 8);
	api_request_fini(&r);
}

static void test_chat_stop_string_and_list(void **state)
{
	(void)state;
	struct api_request r;
	parse_chat_ok(CHAT(",\"stop\":\"END\""), &r);
	assert_int_equal(r.params.n_stops, 1);
	assert_string_equal(r.params.stops[0], "END");
	api_request_fini(&r);
	parse_chat_ok(CHAT(",\"stop\":[\"a\",\"bb\",\"c\",\"\\n\"]"), &r);
	assert_int_equal(r.params.n_stops, 4);
	assert_string_equal(r.params.stops[1], "bb");
	assert_string_equal(r.params.stops[3], "\n");
	api_request_fini(&r);
}

static void test_chat_stop_of_256_bytes_accepted(void **state)
{
	(void)state;
	char json[512], stop[257];
	memset(stop, 's', 256);
	stop[256] = '\0';
	snprintf(json, sizeof json, CHAT(",\"stop\":\"%s\""), stop);
	struct api_request r;
	parse_chat_ok(json, &r);
	assert_int_equal(strlen(r.params.stops[0]), 256);
	api_request_fini(&r);
}

static void test_chat_nulls_mean_absent(void **state)
{
	(void)state;
	struct api_request r;
	parse_chat_ok(CHAT(",\"temperature\":null,\"n\":null,\"stop\":null,\"stream_options\":null,"
	                   "\"task_type\":null,\"tools\":null,\"response_format\":null"),
	              &r);
	assert_true(r.params.temperature == 1.0f);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.params.n_stops, 0);
	assert_null(r.task_type);
	api_request_fini(&r);
}

static void test_chat_content_parts_joined_with_newline(void **state)
{
	(void)state;
	struct api_request r;
	parse_chat_ok("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
	              "{\"type\":\"text\",\"text\":\"one\"},{\"type\":\"text\",\"text\":\"two\"},"
	              "{\"type\":\"text\",\"text\":\"three\"}]}]}",
	              &r);
	assert_string_equal(r.msgs[0].content, "one\ntwo\nthree");
	api_request_fini(&r);
}

static void test_chat_developer_role_maps_to_system(void **state)
{
	(void)state;
	struct api_request r;
	parse_chat_ok("{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"be "
	              "brief\"},{\"role\":\"user\",\"content\":\"hi\"}]}",
	              &r);
	assert_int_equal(r.n_msgs, 2);
	assert_string_equal(r.msgs[0].role, "system");
	assert_string_equal(r.msgs[0].content, "be brief");
	assert_string_equal(r.msgs[1].role, "user");
	api_request_fini(&r);
}

static void test_chat_assistant_null_or_missing_content_ok(void **state)
{
	(void)state;
	struct api_request r;
	parse_chat_ok("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
	              "{\"role\":\"assistant\",\"content\":null},{\"role\":\"assistant\"},"
	              "{\"role\":\"tool\",\"content\":\"t\"}]}",
	              &r);
	assert_int_equal(r.n_msgs, 4);
	assert_string_equal(r.msgs[1].role, "assistant");
	assert_string_equal(r.msgs[1].content, "");
	assert_string_equal(r.msgs[2].content, "");
	assert_string_equal(r.msgs[3].role, "tool");
	api_request_fini(&r);
}

static void test_chat_unsupported_fields_in_neutral_form_accepted(void **state)
{
	(void)state;
	struct api_request r;
	parse_chat_ok(CHAT(",\"tools\":[],\"logprobs\":false,\"logit_bias\":{},"
	                   "\"response_format\":{\"type\":\"text\"},\"unknown_field\":1"),
	              &r);
	api_request_fini(&r);
}

/* ---- chat: refused ---- */

static void test_chat_bad_json_refused(void **state)
{
	(void)state;
	chat_refused("{\"model\":", BRG_E_BAD_JSON, NULL);
	chat_refused("", BRG_E_BAD_JSON, NULL);
	chat_refused(CHAT() " trailing", BRG_E_BAD_JSON, NULL);
}

static void test_chat_body_not_object_refused(void **state)
{
	(void)state;
	chat_refused("[1,2]", BRG_E_BAD_REQUEST, "body");
	chat_refused("{}", BRG_E_BAD_REQUEST, "model");
	chat_refused("\"text\"", BRG_E_BAD_JSON, NULL); /* jansson: top level must be [ or { */
}

static void test_chat_missing_or_bad_model_refused(void **state)
{
	(void)state;
	chat_refused("{" USER_MSG "}", BRG_E_BAD_REQUEST, "model");
	chat_refused("{\"model\":\"\"," USER_MSG "}", BRG_E_BAD_REQUEST, "model");
	chat_refused("{\"model\":7," USER_MSG "}", BRG_E_BAD_REQUEST, "model");
}

static void test_chat_missing_or_empty_messages_refused(void **state)
{
	(void)state;
	chat_refused("{\"model\":\"m\",\"messages\":[]}", BRG_E_BAD_REQUEST, "messages");
	chat_refused("{\"model\":\"m\"}", BRG_E_BAD_REQUEST, "messages");
	chat_refused("{\"model\":\"m\",\"messages\":{}}", BRG_E_BAD_REQUEST, "messages");
}

static void test_chat_bad_role_refused(void **state)
{
	(void)state;
	chat_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
	             BRG_E_BAD_REQUEST, "messages");
	chat_refused("{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", BRG_E_BAD_REQUEST,
	             "messages");
	chat_refused("{\"model\":\"m\",\"messages\":[\"user\"]}", BRG_E_BAD_REQUEST, "messages");
}

static void test_chat_user_without_content_refused(void **state)
{
	(void)state;
	chat_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":null}]}",
	             BRG_E_BAD_REQUEST, "messages");
	chat_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}",
	             BRG_E_BAD_REQUEST, "messages");
}

static void test_chat_non_text_content_part_refused(void **state)
{
	(void)state;
	chat_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
	             "{\"type\":\"text\",\"text\":\"a\"},"
	             "{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://x\"}}]}]}",
	             BRG_E_BAD_REQUEST, "messages");
	chat_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
	             "{\"type\":\"text\",\"text\":5}]}]}",
	             BRG_E_BAD_REQUEST, "messages");
	chat_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[\"a\"]}]}",
	             BRG_E_BAD_REQUEST, "messages");
}

static void test_chat_temperature_out_of_range_refused(void **state)
{
	(void)state;
	chat_refused(CHAT(",\"temperature\":2.5"), BRG_E_BAD_REQUEST, "temperature");
	chat_refused(CHAT(",\"temperature\":-0.1"), BRG_E_BAD_REQUEST, "temperature");
	chat_refused(CHAT(",\"temperature\":\"hot\""), BRG_E_BAD_REQUEST, "temperature");
}

static void test_chat_other_numbers_out_of_range_refused(void **state)
{
	(void)state;
	chat_refused(CHAT(",\"top_p\":1.5"), BRG_E_BAD_REQUEST, "top_p");
	chat_refused(CHAT(",\"min_p\":-1"), BRG_E_BAD_REQUEST, "min_p");
	chat_refused(CHAT(",\"presence_penalty\":3"), BRG_E_BAD_REQUEST, "presence_penalty");
	chat_refused(CHAT(",\"frequency_penalty\":-2.5"), BRG_E_BAD_REQUEST, "frequency_penalty");
	chat_refused(CHAT(",\"top_k\":-1"), BRG_E_BAD_REQUEST, "top_k");
	chat_refused(CHAT(",\"max_tokens\":0"), BRG_E_BAD_REQUEST, "max_tokens");
	chat_refused(CHAT(",\"max_completion_tokens\":0"), BRG_E_BAD_REQUEST,
	             "max_completion_tokens");
	chat_refused(CHAT(",\"seed\":1.5"), BRG_E_BAD_REQUEST, "seed");
	chat_refused(CHAT(",\"priority\":4"), BRG_E_BAD_REQUEST, "priority");
}

static void test_chat_n_out_of_range_refused(void **state)
{
	(void)state;
	chat_refused(CHAT(",\"n\":0"), BRG_E_BAD_REQUEST, "n");
	chat_refused(CHAT(",\"n\":17"), BRG_E_BAD_REQUEST, "n");
	chat_refused(CHAT(",\"n\":2.0"), BRG_E_BAD_REQUEST, "n");
}

static void test_chat_n_of_16_accepted(void **state)
{
	(void)state;
	struct api_request r;
	parse_chat_ok(CHAT(",\"n\":16"), &r);
	assert_int_equal(r.n, 16);
	api_request_fini(&r);
}

static void test_chat_bad_stops_refused(void **state)
{
	(void)state;
	chat_refused(CHAT(",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]"), BRG_E_BAD_REQUEST, "stop");
	chat_refused(CHAT(",\"stop\":\"\""), BRG_E_BAD_REQUEST, "stop");
	chat_refused(CHAT(",\"stop\":[\"a\",\"\"]"), BRG_E_BAD_REQUEST, "stop");
	chat_refused(CHAT(",\"stop\":[1]"), BRG_E_BAD_REQUEST, "stop");
	chat_refused(CHAT(",\"stop\":7"), BRG_E_BAD_REQUEST, "stop");
}

static void test_chat_stop_of_257_bytes_refused(void **state)
{
	(void)state;
	char json[512], stop[258];
	memset(stop, 's', 257);
	stop[257] = '\0';
	snprintf(json, sizeof json, CHAT(",\"stop\":\"%s\""), stop);
	chat_refused(json, BRG_E_BAD_REQUEST, "stop");
}

static void test_chat_unknown_task_type_refused(void **state)
{
	(void)state;
	chat_refused(CHAT(",\"task_type\":\"poetry\""), BRG_E_BAD_REQUEST, "task_type");
	chat_refused(CHAT(",\"task_type\":3"), BRG_E_BAD_REQUEST, "task_type");
}

static void test_chat_unknown_orchestration_mode_refused(void **state)
{
	(void)state;
	chat_refused(CHAT(",\"orchestration_mode\":\"swarm\""), BRG_E_BAD_REQUEST,
	             "orchestration_mode");
}

static void test_chat_stream_options_without_stream_refused(void **state)
{
	(void)state;
	chat_refused(CHAT(",\"stream_options\":{\"include_usage\":true}"), BRG_E_BAD_REQUEST,
	             "stream_options");
	chat_refused(CHAT(",\"stream\":false,\"stream_options\":{}"), BRG_E_BAD_REQUEST,
	             "stream_options");
	chat_refused(CHAT(",\"stream\":true,\"stream_options\":[]"), BRG_E_BAD_REQUEST,
	             "stream_options");
	chat_refused(CHAT(",\"stream\":\"yes\""), BRG_E_BAD_REQUEST, "stream");
}

static void test_chat_unsupported_features_refused(void **state)
{
	(void)state;
	chat_refused(CHAT(",\"tools\":[{\"type\":\"function\"}]"), BRG_E_BAD_REQUEST, "tools");
	chat_refused(CHAT(",\"functions\":[{\"name\":\"f\"}]"), BRG_E_BAD_REQUEST, "functions");
	chat_refused(CHAT(",\"logit_bias\":{\"50256\":-100}"), BRG_E_BAD_REQUEST, "logit_bias");
	chat_refused(CHAT(",\"logprobs\":true"), BRG_E_BAD_REQUEST, "logprobs");
	chat_refused(CHAT(",\"response_format\":{\"type\":\"json_object\"}"), BRG_E_BAD_REQUEST,
	             "response_format");
	chat_refused(CHAT(",\"response_format\":\"json\""), BRG_E_BAD_REQUEST, "response_format");
}

static void test_chat_user_must_be_string(void **state)
{
	(void)state;
	chat_refused(CHAT(",\"user\":5"), BRG_E_BAD_REQUEST, "user");
}

static void test_chat_duplicate_keys_are_bad_json(void **state)
{
	(void)state;
	chat_refused("{\"model\":\"m\",\"model\":\"n\"," USER_MSG "}", BRG_E_BAD_JSON, NULL);
	chat_refused(CHAT(",\"temperature\":1,\"temperature\":0"), BRG_E_BAD_JSON, NULL);
}

static void test_chat_invalid_utf8_is_bad_json(void **state)
{
	(void)state;
	chat_refused("{\"model\":\"m\xff\"," USER_MSG "}", BRG_E_BAD_JSON, NULL);
	chat_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\xC3\"}]}",
	             BRG_E_BAD_JSON, NULL);
}

static void test_chat_body_length_is_respected(void **state)
{
	(void)state;
	/* The body is not NUL-terminated where 'len' ends: only len bytes count. */
	const char *json = CHAT() "garbage";
	struct api_request r;
	struct brg_error e;
	brg_error_clear(&e);
	assert_int_equal(api_parse_chat(json, strlen(json) - 7, &r, &e), BRG_OK);
	api_request_fini(&r);
	expect_refusal(api_parse_chat, json, strlen(json), BRG_E_BAD_JSON, NULL);
}

/* ---- completion ---- */

static void test_completion_prompt_string_default_16_tokens(void **state)
{
	(void)state;
	struct api_request r;
	parse_completion_ok(COMPL(",\"prompt\":\"Once\""), &r);
	assert_int_equal(r.n_prompts, 1);
	assert_string_equal(r.prompts[0], "Once");
	assert_null(r.msgs);
	assert_int_equal(r.params.n_max_tokens, 16);
	assert_false(r.echo);
	api_request_fini(&r);
}

static void test_completion_prompt_array_of_two(void **state)
{
	(void)state;
	struct api_request r;
	parse_completion_ok(COMPL(",\"prompt\":[\"a\",\"b\"],\"max_tokens\":5,\"echo\":true"), &r);
	assert_int_equal(r.n_prompts, 2);
	assert_string_equal(r.prompts[0], "a");
	assert_string_equal(r.prompts[1], "b");
	assert_int_equal(r.params.n_max_tokens, 5);
	assert_true(r.echo);
	api_request_fini(&r);
}

static void test_completion_prompts_times_n_at_16_accepted(void **state)
{
	(void)state;
	struct api_request r;
	parse_completion_ok(
	    COMPL(",\"prompt\":[\"a\",\"b\"],\"n\":8,\"best_of\":8,\"suffix\":\"\""), &r);
	assert_int_equal(r.n, 8);
	api_request_fini(&r);
}

static void test_completion_token_array_prompt_refused(void **state)
{
	(void)state;
	completion_refused(COMPL(",\"prompt\":[1,2,3]"), BRG_E_BAD_REQUEST, "prompt");
	completion_refused(COMPL(",\"prompt\":[[1,2]]"), BRG_E_BAD_REQUEST, "prompt");
}

static void test_completion_missing_or_empty_prompt_refused(void **state)
{
	(void)state;
	completion_refused(COMPL(), BRG_E_BAD_REQUEST, "prompt");
	completion_refused(COMPL(",\"prompt\":[]"), BRG_E_BAD_REQUEST, "prompt");
	completion_refused(COMPL(",\"prompt\":5"), BRG_E_BAD_REQUEST, "prompt");
}

static void test_completion_more_than_16_prompts_refused(void **state)
{
	(void)state;
	completion_refused(
	    COMPL(",\"prompt\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\","
	          "\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]"),
	    BRG_E_BAD_REQUEST, "prompt");
}

static void test_completion_prompts_times_n_over_16_refused(void **state)
{
	(void)state;
	completion_refused(COMPL(",\"prompt\":[\"a\",\"b\"],\"n\":9"), BRG_E_BAD_REQUEST, "n");
}

static void test_completion_suffix_refused(void **state)
{
	(void)state;
	completion_refused(COMPL(",\"prompt\":\"a\",\"suffix\":\"tail\""), BRG_E_BAD_REQUEST,
	                   "suffix");
}

static void test_completion_best_of_over_n_refused(void **state)
{
	(void)state;
	completion_refused(COMPL(",\"prompt\":\"a\",\"best_of\":2"), BRG_E_BAD_REQUEST, "best_of");
}

static void test_completion_echo_must_be_bool(void **state)
{
	(void)state;
	completion_refused(COMPL(",\"prompt\":\"a\",\"echo\":1"), BRG_E_BAD_REQUEST, "echo");
}

static void test_completion_shares_common_checks(void **state)
{
	(void)state;
	completion_refused(COMPL(",\"prompt\":\"a\",\"temperature\":3"), BRG_E_BAD_REQUEST,
	                   "temperature");
	completion_refused("{\"prompt\":\"a\"}", BRG_E_BAD_REQUEST, "model");
	completion_refused("{\"model\":\"m\",\"prompt\":\"a\",\"prompt\":\"b\"}", BRG_E_BAD_JSON,
	                   NULL);
}

/* ---- api_error_json ---- */

static json_t *error_object(const struct brg_error *e)
{
	json_t *j = api_error_json(e);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 1);
	json_t *o = json_object_get(j, "error");
	assert_true(json_is_object(o));
	json_incref(o);
	json_decref(j);
	return o;
}

static const char *str_at(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

static void test_error_json_has_spec_fields_and_param(void **state)
{
	(void)state;
	struct brg_error e;
	brg_error_clear(&e);
	brg_fail(&e, BRG_E_BAD_REQUEST, "'temperature' must be between 0 and 2");
	brg_error_detail_str(&e, "param", "temperature");
	json_t *o = error_object(&e);
	assert_string_equal(str_at(o, "code"), "INVALID_REQUEST");
	assert_string_equal(str_at(o, "message"), "'temperature' must be between 0 and 2");
	assert_string_equal(str_at(o, "type"), "non_retriable");
	assert_string_equal(str_at(o, "provider"), "brigade");
	assert_string_equal(str_at(o, "param"), "temperature");
	json_t *d = json_object_get(o, "details");
	assert_true(json_is_object(d));
	assert_string_equal(str_at(d, "param"), "temperature");
	json_decref(o);
}

static void test_error_json_retriable_with_typed_details(void **state)
{
	(void)state;
	struct brg_error e;
	brg_error_clear(&e);
	brg_fail(&e, BRG_E_MODEL_BUSY, "all slots busy");
	brg_error_detail_int(&e, "queue_depth", 12);
	brg_error_detail_bool(&e, "loaded", 1);
	brg_error_detail_str(&e, "model", "phi");
	json_t *o = error_object(&e);
	assert_string_equal(str_at(o, "code"), "MODEL_BUSY");
	assert_string_equal(str_at(o, "type"), "retriable");
	json_t *param = json_object_get(o, "param");
	assert_true(!param || json_is_null(param)); /* OpenAI's shape: "param": null */
	json_t *d = json_object_get(o, "details");
	assert_int_equal(json_object_size(d), 3);
	assert_int_equal(json_integer_value(json_object_get(d, "queue_depth")), 12);
	assert_true(json_is_true(json_object_get(d, "loaded")));
	assert_string_equal(str_at(d, "model"), "phi");
	json_decref(o);
}

static void test_error_json_empty_message_uses_code(void **state)
{
	(void)state;
	struct brg_error e;
	brg_error_clear(&e);
	e.code = BRG_E_TIMEOUT;
	json_t *o = error_object(&e);
	assert_string_equal(str_at(o, "message"), "TIMEOUT");
	assert_string_equal(str_at(o, "type"), "retriable");
	assert_int_equal(json_object_size(json_object_get(o, "details")), 0);
	json_decref(o);
}

static void test_error_json_from_parse_refusal(void **state)
{
	(void)state;
	struct api_request r;
	struct brg_error e;
	brg_error_clear(&e);
	const char *json = CHAT(",\"n\":17");
	assert_int_equal(api_parse_chat(json, strlen(json), &r, &e), BRG_E_BAD_REQUEST);
	json_t *o = error_object(&e);
	assert_string_equal(str_at(o, "code"), "INVALID_REQUEST");
	assert_string_equal(str_at(o, "param"), "n");
	assert_non_null(strstr(str_at(o, "message"), "17"));
	json_decref(o);
}

static void test_error_json_invalid_utf8_detail_becomes_null(void **state)
{
	(void)state;
	struct brg_error e;
	brg_error_clear(&e);
	brg_fail(&e, BRG_E_MODEL_NOT_FOUND, "model not found");
	brg_error_detail_str(&e, "model",
	                     "ca\xFF"
	                     "fe");
	brg_error_detail_str(&e, "cut", "caf\xC3");
	json_t *o = error_object(&e);
	assert_string_equal(str_at(o, "code"), "MODEL_NOT_FOUND");
	json_t *d = json_object_get(o, "details");
	assert_true(json_is_null(json_object_get(d, "model")));
	/* A character cut at the end by truncation is dropped, not the value. */
	assert_string_equal(json_string_value(json_object_get(d, "cut")), "caf");
	json_decref(o);
}

/*
 * A message cut at BRG_ERR_MSG_MAX in the middle of a UTF-8 character (a
 * long task_type or model name of multi-byte characters) must still give a
 * usable error body (it once came out as {"error": {}}).
 */
static void test_error_json_message_cut_mid_character_keeps_code(void **state)
{
	(void)state;
	char tt[1024] = "a", json[2048];
	for (int i = 0; i < 300; i++)
		strcat(tt, "\xC3\xA9");
	snprintf(json, sizeof json, CHAT(",\"task_type\":\"%s\""), tt);
	struct api_request r;
	struct brg_error e;
	brg_error_clear(&e);
	assert_int_equal(api_parse_chat(json, strlen(json), &r, &e), BRG_E_BAD_REQUEST);
	json_t *o = error_object(&e);
	assert_string_equal(str_at(o, "code"), "INVALID_REQUEST");
	assert_string_equal(str_at(o, "param"), "task_type");
	assert_non_null(json_object_get(o, "message"));
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_chat_minimal_gets_defaults),
	    cmocka_unit_test(test_chat_all_sampling_fields_set),
	    cmocka_unit_test(test_chat_stream_and_extensions_set),
	    cmocka_unit_test(test_chat_max_completion_tokens_wins_over_max_tokens),
	    cmocka_unit_test(test_chat_stop_string_and_list),
	    cmocka_unit_test(test_chat_stop_of_256_bytes_accepted),
	    cmocka_unit_test(test_chat_nulls_mean_absent),
	    cmocka_unit_test(test_chat_content_parts_joined_with_newline),
	    cmocka_unit_test(test_chat_developer_role_maps_to_system),
	    cmocka_unit_test(test_chat_assistant_null_or_missing_content_ok),
	    cmocka_unit_test(test_chat_unsupported_fields_in_neutral_form_accepted),
	    cmocka_unit_test(test_chat_bad_json_refused),
	    cmocka_unit_test(test_chat_body_not_object_refused),
	    cmocka_unit_test(test_chat_missing_or_bad_model_refused),
	    cmocka_unit_test(test_chat_missing_or_empty_messages_refused),
	    cmocka_unit_test(test_chat_bad_role_refused),
	    cmocka_unit_test(test_chat_user_without_content_refused),
	    cmocka_unit_test(test_chat_non_text_content_part_refused),
	    cmocka_unit_test(test_chat_temperature_out_of_range_refused),
	    cmocka_unit_test(test_chat_other_numbers_out_of_range_refused),
	    cmocka_unit_test(test_chat_n_out_of_range_refused),
	    cmocka_unit_test(test_chat_n_of_16_accepted),
	    cmocka_unit_test(test_chat_bad_stops_refused),
	    cmocka_unit_test(test_chat_stop_of_257_bytes_refused),
	    cmocka_unit_test(test_chat_unknown_task_type_refused),
	    cmocka_unit_test(test_chat_unknown_orchestration_mode_refused),
	    cmocka_unit_test(test_chat_stream_options_without_stream_refused),
	    cmocka_unit_test(test_chat_unsupported_features_refused),
	    cmocka_unit_test(test_chat_user_must_be_string),
	    cmocka_unit_test(test_chat_duplicate_keys_are_bad_json),
	    cmocka_unit_test(test_chat_invalid_utf8_is_bad_json),
	    cmocka_unit_test(test_chat_body_length_is_respected),
	    cmocka_unit_test(test_completion_prompt_string_default_16_tokens),
	    cmocka_unit_test(test_completion_prompt_array_of_two),
	    cmocka_unit_test(test_completion_prompts_times_n_at_16_accepted),
	    cmocka_unit_test(test_completion_token_array_prompt_refused),
	    cmocka_unit_test(test_completion_missing_or_empty_prompt_refused),
	    cmocka_unit_test(test_completion_more_than_16_prompts_refused),
	    cmocka_unit_test(test_completion_prompts_times_n_over_16_refused),
	    cmocka_unit_test(test_completion_suffix_refused),
	    cmocka_unit_test(test_completion_best_of_over_n_refused),
	    cmocka_unit_test(test_completion_echo_must_be_bool),
	    cmocka_unit_test(test_completion_shares_common_checks),
	    cmocka_unit_test(test_error_json_has_spec_fields_and_param),
	    cmocka_unit_test(test_error_json_retriable_with_typed_details),
	    cmocka_unit_test(test_error_json_empty_message_uses_code),
	    cmocka_unit_test(test_error_json_from_parse_refusal),
	    cmocka_unit_test(test_error_json_invalid_utf8_detail_becomes_null),
	    cmocka_unit_test(test_error_json_message_cut_mid_character_keeps_code),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
