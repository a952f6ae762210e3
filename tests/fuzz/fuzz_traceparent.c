// sources: src/obs/trace.c src/obs/otlp.c src/obs/reqlog.c src/core/*.c
// libs: -ljansson -lpthread
/*
 * fuzz_traceparent.c — libFuzzer harness for obs/trace.c's W3C traceparent
 * parser and obs/otlp.c's span encoder.
 *
 * The bytes, up to the first NUL, are a traceparent header.  Checks: an
 * accepted header has the W3C shape (separators in place, version not ff,
 * version 00 exactly 55 characters, ids not all zero); formatting what was
 * parsed gives back its ids and flags byte for byte, and parses again to
 * the same context.  Then the same text, as a span's name, attribute,
 * error message and service name, always encodes to JSON that jansson
 * (which insists on valid UTF-8) reads back.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "obs/trace.h"

static void check(bool ok)
{
	if (!ok)
		abort();
}

static bool is_zeros(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '0')
			return false;
	return true;
}

static void check_parse(const char *s)
{
	struct trace_ctx c;
	if (!trace_parse(s, &c))
		return;
	size_t len = strlen(s);
	check(len >= TRACE_PARENT_LEN);
	check(s[2] == '-' && s[35] == '-' && s[52] == '-');
	check(strncmp(s, "ff", 2) != 0);
	check(strncmp(s, "00", 2) != 0 || len == TRACE_PARENT_LEN);
	check(len == TRACE_PARENT_LEN || s[TRACE_PARENT_LEN] == '-');
	check(!is_zeros(s + 3, 32) && !is_zeros(s + 36, 16));
	char out[TRACE_PARENT_SIZE];
	trace_format(&c, out);
	check(strlen(out) == TRACE_PARENT_LEN);
	check(memcmp(out, "00-", 3) == 0);
	check(memcmp(out + 3, s + 3, TRACE_PARENT_LEN - 3) == 0);
	struct trace_ctx again;
	check(trace_parse(out, &again));
	check(memcmp(&again, &c, sizeof c) == 0);
}

static void check_encoding(const char *s)
{
	struct trace_open o = {.is_on = true, .start_ns = 1};
	trace_random(o.ctx.trace_id, sizeof o.ctx.trace_id);
	trace_random(o.ctx.span_id, sizeof o.ctx.span_id);
	struct trace_span sp;
	trace_span_init(&sp, &o, TRACE_SERVER, s);
	trace_span_str(&sp, "text", s);
	trace_span_int(&sp, "n", (long long)strlen(s));
	trace_span_fail(&sp, s);
	struct buf b;
	buf_init(&b, (size_t)1 << 20);
	check(trace_otlp_json(&b, s, &sp, 1) == BRG_OK);
	json_t *v = json_loadb(b.data, b.len, 0, NULL);
	check(v != NULL);
	json_decref(v);
	buf_fini(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_parse(s);
	check_encoding(s);
	free(s);
	return 0;
}
