/*
 * embed_json.c — the JSON of /v1/embeddings: the request body → struct
 * api_embed_request, with OpenAI's rules (input is a string, strings,
 * token ids or arrays of token ids; at most 2048 of them; none empty), and
 * the answer: the vectors as JSON numbers or, for encoding_format
 * "base64" (what the official SDKs ask for by default), little-endian
 * float32 bytes in base64 — a quarter of the size, and no float printing.
 * Pure (jansson and core/ only), so the fuzz harness drives it directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/jload.h"

static enum brg_err bad(struct brg_error *err, const char *param, const char *msg)
{
	brg_fail(err, BRG_E_BAD_REQUEST, "%s", msg);
	brg_error_detail_str(err, "param", param);
	return BRG_E_BAD_REQUEST;
}

static const char input_shape[] = "'input' must be a non-empty string, an array of non-empty "
                                  "strings, an array of token ids, or an array of arrays of "
                                  "token ids (at most 2048 items)";

/* An array of token ids (integers 0..INT32_MAX), at least one. */
static bool is_token_array(json_t *a)
{
	if (!json_is_array(a) || json_array_size(a) == 0)
		return false;
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v)
	{
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > INT32_MAX)
			return false;
	}
	return true;
}

static bool is_text(json_t *v)
{
	return json_is_string(v) && json_string_length(v) > 0 &&
	       strlen(json_string_value(v)) == json_string_length(v); /* no NUL inside */
}

/* Adds one input: text, or the ids of token array 'a' copied into r->tokens. */
static enum brg_err add_input(struct api_embed_request *r, json_t *v, size_t *tok_at)
{
	struct embed_input *in = &r->inputs[r->n_inputs++];
	if (json_is_string(v)) {
		*in = (struct embed_input){.text = json_string_value(v)};
		return BRG_OK;
	}
	in->tokens = r->tokens + *tok_at;
	in->n_tokens = json_array_size(v);
	for (size_t k = 0; k < in->n_tokens; k++)
		r->tokens[(*tok_at)++] = (int32_t)json_integer_value(json_array_get(v, k));
	return BRG_OK;
}

/* Fills r->inputs from 'input', whose shape is one of input_shape's. */
static enum brg_err parse_input(struct api_embed_request *r, json_t *input, struct brg_error *err)
{
	size_t n = 1, n_tokens = 0;
	json_t *items = NULL; /* the array of inputs, or NULL for a single one */
	if (is_text(input)) {
	} else if (is_token_array(input)) {
		n_tokens = json_array_size(input);
	} else if (json_is_array(input) && json_array_size(input) > 0 &&
	           json_array_size(input) <= EMBED_MAX_INPUTS) {
		items = input;
		n = json_array_size(input);
		bool is_strings = is_text(json_array_get(input, 0));
		size_t i;
		json_t *v;
		json_array_foreach(input, i, v)
		{
			if (is_strings ? !is_text(v) : !is_token_array(v))
				return bad(err, "input", input_shape);
			if (!is_strings)
				n_tokens += json_array_size(v);
		}
	} else {
		return bad(err, "input", input_shape);
	}
	r->inputs = calloc(n, sizeof *r->inputs);
	r->tokens = malloc((n_tokens ? n_tokens : 1) * sizeof *r->tokens);
	if (!r->inputs || !r->tokens)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	size_t at = 0;
	for (size_t i = 0; i < n; i++)
		add_input(r, items ? json_array_get(items, i) : input, &at);
	return BRG_OK;
}

enum brg_err api_parse_embeddings(const char *body, size_t len, struct api_embed_request *r,
                                  struct brg_error *err)
{
	memset(r, 0, sizeof *r);
	json_error_t je;
	r->root = jload(body, len, &je);
	if (!r->root)
		return brg_fail(err, BRG_E_BAD_JSON,
		                "request body is not valid JSON: %s (line %d, column %d)", je.text,
		                je.line, je.column);
	if (!json_is_object(r->root))
		return bad(err, "body", "request body must be a JSON object");
	json_t *m = json_object_get(r->root, "model");
	if (!json_is_string(m) || json_string_length(m) == 0)
		return bad(err, "model", "'model' is required and must be a non-empty string");
	r->model = json_string_value(m);
	json_t *input = json_object_get(r->root, "input");
	if (!input)
		return bad(err, "input", "'input' is required");
	enum brg_err rc = parse_input(r, input, err);
	if (rc)
		return rc;
	json_t *f = json_object_get(r->root, "encoding_format");
	if (f && !json_is_null(f)) {
		const char *s = json_is_string(f) ? json_string_value(f) : "";
		if (strcmp(s, "base64") == 0)
			r->is_base64 = true;
		else if (strcmp(s, "float") != 0)
			return bad(err, "encoding_format",
			           "'encoding_format' must be float or base64");
	}
	json_t *d = json_object_get(r->root, "dimensions");
	if (d && !json_is_null(d)) {
		if (!json_is_integer(d) || json_integer_value(d) < 1 ||
		    json_integer_value(d) > 65536)
			return bad(err, "dimensions",
			           "'dimensions' must be an integer in 1..65536");
		r->dimensions = (int)json_integer_value(d);
	}
	json_t *u = json_object_get(r->root, "user");
	if (u && !json_is_null(u) && !json_is_string(u))
		return bad(err, "user", "'user' must be a string");
	return BRG_OK;
}

void api_embed_request_fini(struct api_embed_request *r)
{
	free(r->inputs);
	free(r->tokens);
	json_decref(r->root);
	memset(r, 0, sizeof *r);
}

/* ---- the answer --------------------------------------------------------- */

static enum brg_err append_base64(struct buf *b, const float *v, int n)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n_bytes = (size_t)n * 4;
	char out[4 * 64];
	size_t o = 0;
	unsigned char chunk[3];
	for (size_t i = 0; i < n_bytes; i += 3) {
		size_t k = 0;
		for (; k < 3 && i + k < n_bytes; k++) {
			uint32_t bits;
			memcpy(&bits, &v[(i + k) / 4], 4);
			chunk[k] = (unsigned char)(bits >> (8 * ((i + k) % 4))); /* little-endian */
		}
		uint32_t w = (uint32_t)chunk[0] << 16 | (k > 1 ? (uint32_t)chunk[1] << 8 : 0) |
		             (k > 2 ? chunk[2] : 0);
		out[o++] = alphabet[w >> 18 & 63];
		out[o++] = alphabet[w >> 12 & 63];
		out[o++] = k > 1 ? alphabet[w >> 6 & 63] : '=';
		out[o++] = k > 2 ? alphabet[w & 63] : '=';
		if (o == sizeof out) {
			enum brg_err rc = buf_append(b, out, o);
			if (rc)
				return rc;
			o = 0;
		}
	}
	return buf_append(b, out, o);
}

static enum brg_err append_floats(struct buf *b, const float *v, int n)
{
	enum brg_err rc = buf_append(b, "[", 1);
	for (int i = 0; i < n && !rc; i++) {
		/* %.9g round-trips a float; JSON has no NaN or infinity. */
		double d = v[i] == v[i] && v[i] - v[i] == 0 ? (double)v[i] : 0.0;
		rc = buf_appendf(b, i ? ",%.9g" : "%.9g", d);
	}
	return rc ? rc : buf_append(b, "]", 1);
}

/*
 * OpenAI's list of embedding objects.  Built by hand: jansson would print
 * each float with 17 digits and allocate a node per number.
 */
enum brg_err api_embeddings_json(struct buf *b, const char *model, const struct embed_result *res,
                                 bool is_base64)
{
	json_t *name = json_string(model);
	char *quoted = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;
	json_decref(name);
	if (!quoted)
		return BRG_E_NOMEM;
	enum brg_err rc = buf_append(b, "{\"object\":\"list\",\"data\":[", 25);
	for (size_t i = 0; i < res->n_inputs && !rc; i++) {
		const float *v = res->vecs + i * (size_t)res->dim;
		rc = buf_appendf(
		    b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
		if (!rc && is_base64) {
			rc = buf_append(b, "\"", 1);
			rc = rc ? rc : append_base64(b, v, res->dim);
			rc = rc ? rc : buf_append(b, "\"}", 2);
		} else if (!rc) {
			rc = append_floats(b, v, res->dim);
			rc = rc ? rc : buf_append(b, "}", 1);
		}
	}
	if (!rc)
		rc = buf_appendf(
		    b, "],\"model\":%s,\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d}}",
		    quoted, res->n_prompt, res->n_prompt);
	free(quoted);
	return rc;
}
