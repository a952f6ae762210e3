/*
 * test_jw.c — the JSON writer (core/jw.c): documents read back by jansson
 * as written, strings escaped as jansson escapes them, invalid UTF-8 and
 * misuse refused, the buffer's cap respected, errors sticky.
 */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../common/utf8_check.h"
#include "core/jw.h"

static void test_document_reads_back_with_commas_in_place(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 4096);
	struct jw w;
	jw_init(&w, &b);
	jw_open(&w, '{');
	jw_key(&w, "id");
	jw_str(&w, "chatcmpl-1");
	jw_key(&w, "n");
	jw_int(&w, -42);
	jw_key(&w, "min");
	jw_int(&w, LLONG_MIN);
	jw_key(&w, "empty");
	jw_open(&w, '[');
	jw_close(&w, ']');
	jw_key(&w, "list");
	jw_open(&w, '[');
	jw_int(&w, 1);
	jw_open(&w, '{');
	jw_close(&w, '}');
	jw_null(&w);
	jw_bool(&w, true);
	jw_bool(&w, false);
	jw_str(&w, NULL);
	jw_raw(&w, "{\"x\":1}", 7);
	jw_close(&w, ']');
	jw_key(&w, "r");
	jw_real(&w, 0.1);
	jw_close(&w, '}');
	assert_int_equal(w.err, BRG_OK);
	assert_string_equal(b.data, "{\"id\":\"chatcmpl-1\",\"n\":-42,\"min\":-9223372036854775808,"
	                            "\"empty\":[],\"list\":[1,{},null,"
	                            "true,false,null,{\"x\":1}],\"r\":0.1}");
	json_error_t je;
	json_t *v = json_loadb(b.data, b.len, 0, &je);
	assert_non_null(v);
	json_decref(v);
	buf_fini(&b);
}

static void test_reals_read_back_exactly_and_always_look_real(void **state)
{
	(void)state;
	static const double values[] = {0.0,       -0.0,        1.0,    0.5,   0.1,
	                                0.1234,    0.9999,      -3.25,  1e300, -2.5e-8,
	                                1e9 + 0.5, 123456789.0, 0.12345};
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		struct buf b;
		buf_init(&b, 64);
		struct jw w;
		jw_init(&w, &b);
		jw_real(&w, values[i]);
		assert_int_equal(w.err, BRG_OK);
		assert_non_null(strpbrk(b.data, ".e"));
		assert_true(strtod(b.data, NULL) == values[i]);
		assert_int_equal(signbit(strtod(b.data, NULL)), signbit(values[i]));
		buf_fini(&b);
	}
	struct buf b;
	buf_init(&b, 64);
	struct jw w;
	jw_init(&w, &b);
	jw_open(&w, '[');
	jw_real(&w, NAN);
	jw_real(&w, INFINITY);
	jw_float(&w, 0.7f);
	jw_float(&w, 2.0f);
	jw_float(&w, 1e-5f);
	jw_float(&w, NAN);
	jw_close(&w, ']');
	assert_string_equal(b.data, "[null,null,0.7,2.0,1e-05,null]");
	buf_fini(&b);
}

/* The shortest %g text that reads back, with ".0" when it looks whole:
 * what jw_float wrote before its fast path, and must still write. */
static void printf_float(float f, char *n, size_t cap)
{
	int len = 0;
	for (int prec = 1; prec <= 9; prec++) {
		len = snprintf(n, cap, "%.*g", prec, (double)f);
		if (strtof(n, NULL) == f)
			break;
	}
	if (!strpbrk(n, ".e"))
		memcpy(n + len, ".0", 3);
}

/* jw_float's fast path (below 10, at most four decimals) writes exactly
 * the text of the printf search, for every such value and random ones. */
static void test_floats_write_as_printf_would(void **state)
{
	(void)state;
	srand(11);
	for (int i = 0; i < 400000; i++) {
		float f;
		if (i < 200000) {
			f = (float)((i % 100000) / 10000.0) * (i < 100000 ? 1.0f : -1.0f);
		} else {
			uint32_t u = (uint32_t)rand() << 16 ^ (uint32_t)rand();
			memcpy(&f, &u, sizeof f);
			if (!isfinite(f))
				continue;
		}
		char want[48];
		printf_float(f, want, sizeof want);
		struct buf b;
		buf_init(&b, 64);
		struct jw w;
		jw_init(&w, &b);
		jw_float(&w, f);
		assert_string_equal(b.data, want);
		buf_fini(&b);
	}
}

/* Every string of random bytes: valid UTF-8 is written exactly as
 * jansson writes it; anything else is refused. */
static void test_strings_escape_as_jansson_does(void **state)
{
	(void)state;
	srand(7);
	for (int round = 0; round < 20000; round++) {
		unsigned char s[12];
		size_t len = (size_t)(rand() % (int)sizeof s);
		for (size_t i = 0; i < len; i++) {
			int k = rand() % 4;
			s[i] = (unsigned char)(k == 0   ? rand() % 0x20
			                       : k == 1 ? 0x20 + rand() % 0x60
			                                : rand() % 256);
		}
		unsigned char t[sizeof s]; /* NUL is a character here; the checker refuses it */
		for (size_t i = 0; i < len; i++)
			t[i] = s[i] ? s[i] : 'a';
		bool is_utf8 = valid_utf8(t, len);

		struct buf b;
		buf_init(&b, 1024);
		struct jw w;
		jw_init(&w, &b);
		jw_strn(&w, (const char *)s, len);
		json_t *j = json_stringn_nocheck((const char *)s, len);
		char *want = json_dumps(j, JSON_ENCODE_ANY);
		if (is_utf8) {
			assert_int_equal(w.err, BRG_OK);
			assert_string_equal(b.data, want);
		} else {
			assert_int_equal(w.err, BRG_E_BAD_REQUEST);
		}
		free(want);
		json_decref(j);
		buf_fini(&b);
	}
}

static void test_cap_misuse_and_sticky_errors(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 8);
	struct jw w;
	jw_init(&w, &b);
	jw_str(&w, "far too long for eight bytes");
	assert_int_equal(w.err, BRG_E_TOO_LARGE);
	size_t len = b.len;
	jw_int(&w, 1); /* sticky: nothing more is written */
	assert_int_equal(b.len, len);
	buf_fini(&b);

	buf_init(&b, 1 << 16);
	jw_init(&w, &b);
	for (int i = 0; i < JW_MAX_DEPTH; i++)
		jw_open(&w, '[');
	assert_int_equal(w.err, BRG_E_INTERNAL);
	buf_reset(&b);
	jw_init(&w, &b);
	jw_close(&w, '}');
	assert_int_equal(w.err, BRG_E_INTERNAL);
	buf_reset(&b);
	jw_init(&w, &b);
	jw_open(&w, '{');
	jw_key(&w, "k");
	jw_close(&w, '}'); /* a key without its value */
	assert_int_equal(w.err, BRG_E_INTERNAL);
	buf_fini(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_document_reads_back_with_commas_in_place),
	    cmocka_unit_test(test_reals_read_back_exactly_and_always_look_real),
	    cmocka_unit_test(test_floats_write_as_printf_would),
	    cmocka_unit_test(test_strings_escape_as_jansson_does),
	    cmocka_unit_test(test_cap_misuse_and_sticky_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
