// sources: src/api/request.c src/api/jload.c src/route/*.c src/orchestrate/*.c
// sources: src/provider/fallback.c src/core/*.c src/obs/*.c src/config/*.c
// libs: -ljansson -lyaml -lpthread
/*
 * fuzz_chat_request.c — libFuzzer harness for api/request.c: the bytes go
 * to api_parse_chat and api_parse_completion as a request body.
 *
 * Beyond memory safety it checks the parser's contract: an accepted request
 * satisfies every limit the validator claims (model non-empty, n and
 * prompts × n within 16, at most 4 stops of 1..256 bytes, sampling values
 * in range, roles from the known set, every message with content); a
 * refused one carries a message and, for BRG_E_BAD_REQUEST, a "param"
 * detail; and the struct is left zeroed (nothing to free) after a refusal.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

static bool has_param(const struct brg_error *e)
{
	for (size_t i = 0; i < e->n_details; i++)
		if (strcmp(e->details[i].key, "param") == 0 && e->details[i].s[0])
			return true;
	return false;
}

static bool is_known_role(const char *role)
{
	static const char *const roles[] = {"system", "user", "assistant", "tool"};
	for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
		if (strcmp(role, roles[i]) == 0)
			return true;
	return false;
}

static void check_params(const struct gen_params *p)
{
	CHECK(p->n_max_tokens == -1 || (p->n_max_tokens >= 1 && p->n_max_tokens <= 1 << 24));
	CHECK(p->temperature >= 0 && p->temperature <= 2);
	CHECK(p->top_p >= 0 && p->top_p <= 1);
	CHECK(p->min_p >= 0 && p->min_p <= 1);
	CHECK(p->top_k >= 0);
	CHECK(p->presence_penalty >= -2 && p->presence_penalty <= 2);
	CHECK(p->frequency_penalty >= -2 && p->frequency_penalty <= 2);
	CHECK(p->n_stops <= GEN_MAX_STOPS);
	for (size_t i = 0; i < p->n_stops; i++) {
		size_t len = strlen(p->stops[i]);
		CHECK(len <= GEN_STOP_MAX_LEN);
	}
}

static void check_accepted(const struct api_request *r)
{
	CHECK(r->root && r->model && r->model[0]);
	CHECK(r->n >= 1 && r->n <= API_MAX_N);
	CHECK(r->priority >= 1 && r->priority <= 3);
	CHECK(!r->include_usage || r->is_stream);
	CHECK(!r->task_type || route_task_known(r->task_type));
	CHECK(!r->mode || orch_mode_parse(r->mode) >= 0);
	check_params(&r->params);
	if (r->is_chat) {
		CHECK(r->n_msgs >= 1 && r->msgs);
		for (size_t i = 0; i < r->n_msgs; i++)
			CHECK(is_known_role(r->msgs[i].role) && r->msgs[i].content);
	} else {
		CHECK(r->n_prompts >= 1 && r->n_prompts <= API_MAX_PROMPTS);
		CHECK(r->n_prompts * r->n <= API_MAX_N);
		for (size_t i = 0; i < r->n_prompts; i++)
			CHECK(r->prompts[i]);
	}
}

static void check_refused(enum brg_err rc, const struct brg_error *e, const struct api_request *r)
{
	CHECK(rc == BRG_E_BAD_JSON || rc == BRG_E_BAD_REQUEST || rc == BRG_E_NOMEM);
	CHECK(e->code == rc && e->message[0]);
	CHECK(rc != BRG_E_BAD_REQUEST || has_param(e));
	CHECK(!r->root && !r->msgs && !r->owned && r->n_owned == 0);
}

typedef enum brg_err (*parse_fn)(const char *, size_t, struct api_request *, struct brg_error *);

static void run(parse_fn parse, const char *body, size_t len)
{
	struct api_request r;
	struct brg_error e;
	brg_error_clear(&e);
	enum brg_err rc = parse(body, len, &r, &e);
	if (rc == BRG_OK) {
		check_accepted(&r);
		api_request_fini(&r);
	} else {
		check_refused(rc, &e, &r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly 'size' bytes, so reading past the body is caught. */
	char *body = malloc(size ? size : 1);
	if (!body)
		return 0;
	memcpy(body, data, size);
	run(api_parse_chat, body, size);
	run(api_parse_completion, body, size);
	free(body);
	return 0;
}
