// sources: src/api/embed_json.c src/api/jload.c src/core/*.c
// libs: -ljansson -lpthread
/*
 * fuzz_embed_request.c — libFuzzer harness for api/embed_json.c: the bytes
 * go to api_parse_embeddings as a /v1/embeddings body, and an accepted
 * request's shape is turned into an answer in both encodings.
 *
 * Beyond memory safety it checks the parser's contract: an accepted request
 * has a non-empty model, 1..2048 inputs, each either non-empty text or a
 * non-empty list of non-negative token ids, and dimensions 0 or 1..65536;
 * a refused one carries a message and, for BRG_E_BAD_REQUEST, a "param"
 * detail.  The encoder's JSON answer must parse back with one embedding per
 * input, and its base64 strings must have the length of dim float32s.
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
		if (strcmp(e->details[i].key, "param") == 0)
			return true;
	return false;
}

static void check_accepted(const struct api_embed_request *r)
{
	CHECK(r->root && r->model && r->model[0]);
	CHECK(r->n_inputs >= 1 && r->n_inputs <= EMBED_MAX_INPUTS);
	CHECK(r->dimensions >= 0 && r->dimensions <= 65536);
	for (size_t i = 0; i < r->n_inputs; i++) {
		const struct embed_input *in = &r->inputs[i];
		if (in->text) {
			CHECK(in->text[0]);
			continue;
		}
		CHECK(in->n_tokens >= 1 && in->tokens);
		for (size_t k = 0; k < in->n_tokens; k++)
			CHECK(in->tokens[k] >= 0);
	}
}

/* Encodes vectors of the request's shape and parses the answer back. */
static void check_answer(const struct api_embed_request *r, bool is_base64)
{
	int dim = r->dimensions ? r->dimensions % 97 + 1 : 3;
	float *v = calloc(r->n_inputs * (size_t)dim, sizeof *v);
	CHECK(v);
	for (size_t i = 0; i < r->n_inputs * (size_t)dim; i++)
		v[i] = (float)i / 7.0f - 3.0f;
	struct embed_result res = {.vecs = v, .n_inputs = r->n_inputs, .dim = dim, .n_prompt = 1};
	struct buf b;
	buf_init(&b, (size_t)64 << 20);
	CHECK(api_embeddings_json(&b, r->model, &res, is_base64) == BRG_OK);
	json_error_t je;
	json_t *o = json_loadb(b.data, b.len, 0, &je);
	CHECK(o);
	json_t *data = json_object_get(o, "data");
	CHECK(json_array_size(data) == r->n_inputs);
	CHECK(strcmp(json_string_value(json_object_get(o, "model")), r->model) == 0);
	json_t *e = json_object_get(json_array_get(data, 0), "embedding");
	if (is_base64)
		CHECK(json_string_length(e) == ((size_t)dim * 4 + 2) / 3 * 4);
	else
		CHECK(json_array_size(e) == (size_t)dim);
	json_decref(o);
	buf_fini(&b);
	free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly 'size' bytes, so reading past the body is caught. */
	char *body = malloc(size ? size : 1);
	if (!body)
		return 0;
	memcpy(body, data, size);
	struct api_embed_request r;
	struct brg_error e;
	brg_error_clear(&e);
	enum brg_err rc = api_parse_embeddings(body, size, &r, &e);
	if (rc == BRG_OK) {
		check_accepted(&r);
		check_answer(&r, r.is_base64);
	} else {
		CHECK(rc == BRG_E_BAD_JSON || rc == BRG_E_BAD_REQUEST || rc == BRG_E_NOMEM);
		CHECK(e.code == rc && e.message[0]);
		CHECK(rc != BRG_E_BAD_REQUEST || has_param(&e));
	}
	api_embed_request_fini(&r);
	free(body);
	return 0;
}
