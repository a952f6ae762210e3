/*
 * test_wire_fast.c — the document-free chunk decoder (provider/wire_fast.c):
 * what it reads, that it borrows plain text and decodes escaped text, and
 * every shape it leaves to the general decoder.  Each accepted chunk is
 * also read by wire_decode_openai and the two must agree (the fuzz harness
 * fuzz_upstream.c checks the same on generated input).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "provider/wire.h"

/* Decodes s both ways; returns whether the fast decoder took it, and
 * when it did checks that the general decoder reads the same. */
static bool fast(const char *s, struct wire_delta *f, char *scratch, size_t cap)
{
	size_t n_fast = 99;
	if (!wire_decode_openai_fast(s, strlen(s), &n_fast, f, scratch, cap))
		return false;
	struct wire_delta d;
	size_t n = 0;
	void *holder = NULL;
	assert_int_equal(wire_decode_openai(s, strlen(s), 0, &n, &d, &holder), BRG_OK);
	assert_int_equal(n_fast, n);
	assert_int_equal(f->index, d.index);
	assert_int_equal(f->has_finish, d.has_finish);
	assert_int_equal(f->finish, d.finish);
	assert_int_equal(f->has_usage, d.has_usage);
	assert_int_equal(f->n_prompt, d.n_prompt);
	assert_int_equal(f->n_completion, d.n_completion);
	assert_int_equal(f->text_len, d.text_len);
	assert_true((f->text == NULL) == (d.text == NULL));
	if (f->text_len)
		assert_memory_equal(f->text, d.text, f->text_len);
	wire_holder_free(holder);
	return true;
}

static void test_everyday_chunk_is_read_and_its_text_borrowed(void **state)
{
	(void)state;
	const char *s =
	    "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1732400000,"
	    "\"model\":\"m\",\"system_fingerprint\":null,\"choices\":[{\"index\":0,"
	    "\"delta\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"logprobs\":null,"
	    "\"finish_reason\":null}]}";
	struct wire_delta d;
	char scratch[64];
	assert_true(fast(s, &d, scratch, sizeof scratch));
	assert_int_equal(d.index, 0);
	assert_int_equal(d.text_len, 5);
	assert_ptr_equal(d.text, strstr(s, "Hello")); /* borrowed, not copied */
	assert_false(d.has_finish);
	assert_false(d.has_usage);
}

static void test_escaped_text_is_decoded_into_the_scratch_space(void **state)
{
	(void)state;
	const char *s = "{\"choices\":[{\"index\":2,\"delta\":{\"content\":"
	                "\"a\\\"b\\\\c\\/\\n\\t\\u00e9\\ud83d\\ude00\\u0000z\"}}]}";
	struct wire_delta d;
	char scratch[64];
	assert_true(fast(s, &d, scratch, sizeof scratch));
	static const char want[] = "a\"b\\c/\n\t\xc3\xa9\xf0\x9f\x98\x80\0z";
	assert_int_equal(d.index, 2);
	assert_int_equal(d.text_len, sizeof want - 1);
	assert_memory_equal(d.text, want, sizeof want - 1);
	assert_true(d.text >= scratch && d.text < scratch + sizeof scratch);
	/* too little scratch space: left to the general decoder */
	assert_false(wire_decode_openai_fast(s, strlen(s), &(size_t){0}, &d, scratch, 8));
}

static void test_finish_usage_and_completion_text(void **state)
{
	(void)state;
	struct wire_delta d;
	char scratch[16];
	assert_true(fast("{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}",
	                 &d, scratch, sizeof scratch));
	assert_true(d.has_finish);
	assert_int_equal(d.finish, GEN_FINISH_LENGTH);
	assert_null(d.text);
	assert_true(
	    fast("{ \"choices\" : [ { \"text\" : \" once\" , \"finish_reason\" : \"stop\" } ] ,"
	         " \"usage\" : { \"prompt_tokens\" : 12 , \"completion_tokens\" : 7 } }\n",
	         &d, scratch, sizeof scratch));
	assert_int_equal(d.index, 0); /* no "index": its position */
	assert_int_equal(d.text_len, 5);
	assert_int_equal(d.finish, GEN_FINISH_STOP);
	assert_true(d.has_usage);
	assert_int_equal(d.n_prompt, 12);
	assert_int_equal(d.n_completion, 7);
	assert_true(
	    fast("{\"choices\":[],\"usage\":{\"prompt_tokens\":-3,\"completion_tokens\":\"7\"}}",
	         &d, scratch, sizeof scratch));
	assert_int_equal(d.index, -1);
	assert_int_equal(d.n_prompt, 0);
	assert_int_equal(d.n_completion, 0);
	/* a delta wins over "text", as in the general decoder */
	assert_true(fast("{\"choices\":[{\"text\":\"t\",\"delta\":{\"content\":null}}]}", &d,
	                 scratch, sizeof scratch));
	assert_null(d.text);
}

static void test_unusual_shapes_are_left_to_the_general_decoder(void **state)
{
	(void)state;
	static const char *const others[] = {
	    "[DONE]",
	    "{\"error\":{\"message\":\"overloaded\"}}",
	    "{\"object\":\"error\",\"message\":\"x\"}",
	    "{\"choices\":[{\"delta\":{\"content\":\"a\"}},{\"delta\":{\"content\":\"b\"}}]}",
	    "{\"choices\":[{\"delta\":{\"content\":\"a\"},\"logprobs\":{\"content\":[]}}]}",
	    "{\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"choices\":[]}",
	    "{\"choices\":[{\"delta\":{\"content\":\"a\",\"content\":\"b\"}}]}",
	    "{\"ch\\u006fices\":[]}",
	    "{\"x\":{\"\\u0000\":1}}",
	    "{\"created\":1.5}",
	    "{\"created\":12345678901234567890}",
	    "{\"created\":9999999999999999999}", /* 19 digits: past a long long */
	    "{\"choices\":[{\"index\":-1}]}",
	    "{\"choices\":[{\"delta\":{\"content\":7}}]}",
	    "{\"choices\":[{\"delta\":{\"content\":\"\\ud800\"}}]}",
	    "{\"choices\":[{\"delta\":{\"content\":\"\xed\xa0\x80\"}}]}",
	    "{\"choices\":[{\"delta\":{\"content\":\"\x01\"}}]}",
	    "{\"choices\":[]} x",
	    "{\"choices\":[]",
	    "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
	    "]]}",
	};
	struct wire_delta d;
	char scratch[64];
	for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
		size_t n;
		if (wire_decode_openai_fast(others[i], strlen(others[i]), &n, &d, scratch,
		                            sizeof scratch))
			fail_msg("took: %s", others[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_everyday_chunk_is_read_and_its_text_borrowed),
	    cmocka_unit_test(test_escaped_text_is_decoded_into_the_scratch_space),
	    cmocka_unit_test(test_finish_usage_and_completion_text),
	    cmocka_unit_test(test_unusual_shapes_are_left_to_the_general_decoder),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
