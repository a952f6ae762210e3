/*
 * wire_embed.c — embeddings on the wire (see wire.h): request bodies for
 * OpenAI-compatible and Ollama upstreams, and decoding their answers
 * (floats or base64), checked row by row.
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "provider/wire.h"
#include "provider/wire_int.h"

/* ---- embeddings ---------------------------------------------------------- */

/*
 * An embeddings answer arrives whole (nothing streams), so it is decoded
 * in one go, and strictly: a vector in the wrong row, of the wrong length
 * or with a value float32 cannot hold would silently corrupt the client's
 * index, so any doubt refuses the whole answer.
 */

/* One input: a JSON string, or an array of token ids. */
static enum brg_err append_input(json_t *list, const struct embed_input *in)
{
	json_t *v;
	if (in->text) {
		enum brg_err err = wire_string_of(in->text, &v);
		if (err)
			return err;
	} else {
		v = json_array();
		for (size_t i = 0; v && i < in->n_tokens; i++)
			if (json_array_append_new(v, json_integer(in->tokens[i]))) {
				json_decref(v);
				v = NULL;
			}
	}
	if (!v || json_array_append_new(list, v))
		return BRG_E_NOMEM;
	return BRG_OK;
}

enum brg_err wire_openai_embed_request(const struct embed_request *r, const char *model, char **out)
{
	json_t *root = json_object();
	if (!root) {
		*out = NULL;
		return BRG_E_NOMEM;
	}
	enum brg_err err = wire_put_string(root, "model", model ? model : r->model);
	json_t *list = err ? NULL : json_array();
	if (!err)
		err = wire_put(root, "input", list); /* root holds it; 'list' stays valid */
	for (size_t i = 0; !err && i < r->n_inputs; i++)
		err = append_input(list, &r->inputs[i]);
	if (!err)
		err = wire_put_string(root, "encoding_format", "float");
	if (!err && r->dimensions > 0)
		err = wire_put(root, "dimensions", json_integer(r->dimensions));
	return wire_finish_body(root, err, out);
}

enum brg_err wire_ollama_embed_request(const char *text, const char *model, char **out)
{
	json_t *root = json_object();
	if (!root) {
		*out = NULL;
		return BRG_E_NOMEM;
	}
	enum brg_err err = wire_put_string(root, "model", model);
	if (!err)
		err = wire_put_string(root, "prompt", text);
	return wire_finish_body(root, err, out);
}

static enum brg_err refuse(char *why, size_t why_len, enum brg_err code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records why an answer was refused; returns 'code'. */
static enum brg_err refuse(char *why, size_t why_len, enum brg_err code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	wire_vsay(why, why_len, fmt, ap);
	va_end(ap);
	return code;
}

/* The value of base64 digit c, or -1. */
static int b64_digit(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/*
 * Decodes standard base64 (RFC 4648, padding optional) into dst, or with
 * dst NULL only checks it.  Returns the decoded length, or SIZE_MAX when s
 * is not base64.
 */
static size_t b64_decode(const char *s, size_t len, unsigned char *dst)
{
	size_t n_pad = 0;
	while (n_pad < 2 && len > n_pad && s[len - 1 - n_pad] == '=')
		n_pad++;
	if (n_pad && (len % 4) != 0)
		return SIZE_MAX;
	len -= n_pad;
	if (len % 4 == 1)
		return SIZE_MAX;
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		int d = b64_digit((unsigned char)s[i]);
		if (d < 0)
			return SIZE_MAX;
		acc = (acc << 6) | (uint32_t)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (dst)
				dst[n] = (unsigned char)(acc >> bits);
			n++;
		}
	}
	return n;
}

/* How many floats an embedding holds: an array's length, or a base64
 * string's float32 count.  SIZE_MAX when it is neither. */
static size_t embedding_len(json_t *e)
{
	if (json_is_array(e))
		return json_array_size(e);
	if (!json_is_string(e))
		return SIZE_MAX;
	size_t n = b64_decode(json_string_value(e), json_string_length(e), NULL);
	return n == SIZE_MAX || n % 4 ? SIZE_MAX : n / 4;
}

/*
 * Writes the embedding's dim floats (dim from embedding_len) to dst.
 * Returns the position of the first value that is not a finite float32
 * (a non-number, or a number past float32's range), or SIZE_MAX when all
 * are.
 */
static size_t embedding_fill(json_t *e, size_t dim, float *dst)
{
	if (json_is_string(e)) {
		unsigned char *bytes = (unsigned char *)dst;
		b64_decode(json_string_value(e), json_string_length(e), bytes);
		for (size_t i = 0; i < dim; i++) {
			const unsigned char *b = bytes + 4 * i;
			uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
			             (uint32_t)b[3] << 24;
			memcpy(&dst[i], &u, sizeof u);
			if (!isfinite(dst[i]))
				return i;
		}
		return SIZE_MAX;
	}
	for (size_t i = 0; i < dim; i++) {
		json_t *v = json_array_get(e, i);
		if (!json_is_number(v))
			return i;
		dst[i] = (float)json_number_value(v);
		if (!isfinite(dst[i]))
			return i;
	}
	return SIZE_MAX;
}

/* Parses an embeddings answer that must be a JSON object and not an error
 * object.  On error *root is NULL. */
static enum brg_err parse_answer(const char *data, size_t len, json_t **root, char *why,
                                 size_t why_len)
{
	json_error_t je;
	*root = json_loadb(data, len, 0, &je);
	if (!*root)
		return refuse(why, why_len, BRG_E_BAD_JSON, "upstream sent invalid JSON: %s",
		              je.text);
	enum brg_err err = BRG_OK;
	if (!json_is_object(*root))
		err = refuse(why, why_len, BRG_E_BAD_JSON, "upstream answer is not a JSON object");
	else if (wire_error_object(*root, why, why_len))
		err = BRG_E_UPSTREAM;
	if (err) {
		json_decref(*root);
		*root = NULL;
	}
	return err;
}

/*
 * Puts each entry of 'list' in rows[] by its index and measures the
 * common length of the embeddings into *dim (see
 * wire_decode_openai_embeddings for the rules).
 */
static enum brg_err index_rows(json_t *list, size_t n, json_t **rows, size_t *dim, char *why,
                               size_t why_len)
{
	for (size_t k = 0; k < n; k++) {
		json_t *e = json_array_get(list, k);
		if (!json_is_object(e))
			return refuse(why, why_len, BRG_E_BAD_JSON, "data[%zu] is not an object",
			              k);
		json_t *index = json_object_get(e, "index");
		json_int_t i = index ? (json_is_integer(index) ? json_integer_value(index) : -1)
		                     : (json_int_t)k;
		if (i < 0 || (size_t)i >= n)
			return refuse(why, why_len, BRG_E_BAD_JSON,
			              "data[%zu].index is not an index below %zu", k, n);
		if (rows[i])
			return refuse(why, why_len, BRG_E_BAD_JSON,
			              "data[%zu]: index %lld appears twice", k, (long long)i);
		rows[i] = e;
		size_t d = embedding_len(json_object_get(e, "embedding"));
		if (d == SIZE_MAX)
			return refuse(why, why_len, BRG_E_BAD_JSON,
			              "data[%zu].embedding is neither an array nor base64 float32s",
			              k);
		if (d == 0)
			return refuse(why, why_len, BRG_E_BAD_JSON, "data[%zu].embedding is empty",
			              k);
		if (k == 0 && d > WIRE_EMBED_MAX_FLOATS / n)
			return refuse(why, why_len, BRG_E_BAD_JSON,
			              "%zu embeddings of %zu values exceed %zu values", n, d,
			              WIRE_EMBED_MAX_FLOATS);
		if (k == 0)
			*dim = d;
		else if (d != *dim)
			return refuse(why, why_len, BRG_E_BAD_JSON,
			              "data[%zu].embedding has %zu values but data[0]'s has %zu", k,
			              d, *dim);
	}
	return BRG_OK;
}

enum brg_err wire_decode_openai_embeddings(const char *data, size_t len, size_t n_inputs,
                                           struct embed_result *out, char *why, size_t why_len)
{
	out->vecs = NULL;
	out->n_inputs = 0;
	out->dim = 0;
	out->n_prompt = 0;
	wire_copy_utf8(why, why_len, "", 0);
	json_t *root;
	enum brg_err err = parse_answer(data, len, &root, why, why_len);
	if (err)
		return err;
	json_t **rows = NULL;
	float *vecs = NULL;
	size_t dim = 0;
	json_t *list = json_object_get(root, "data");
	if (!json_is_array(list)) {
		err = refuse(why, why_len, BRG_E_BAD_JSON, "\"data\" is not an array");
		goto fail;
	}
	if (n_inputs == 0 || json_array_size(list) != n_inputs) {
		err = refuse(why, why_len, BRG_E_BAD_JSON, "%zu embeddings for %zu inputs",
		             json_array_size(list), n_inputs);
		goto fail;
	}
	rows = calloc(n_inputs, sizeof *rows);
	if (!rows) {
		err = refuse(why, why_len, BRG_E_NOMEM, "out of memory");
		goto fail;
	}
	err = index_rows(list, n_inputs, rows, &dim, why, why_len);
	if (err)
		goto fail;
	vecs = malloc(n_inputs * dim * sizeof *vecs);
	if (!vecs) {
		err = refuse(why, why_len, BRG_E_NOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n_inputs; i++) {
		size_t bad_at =
		    embedding_fill(json_object_get(rows[i], "embedding"), dim, vecs + i * dim);
		if (bad_at != SIZE_MAX) {
			err = refuse(why, why_len, BRG_E_BAD_JSON,
			             "embedding %zu, value %zu is not a finite float32", i, bad_at);
			goto fail;
		}
	}
	json_t *usage = json_object_get(root, "usage");
	out->n_prompt =
	    json_is_object(usage) ? wire_count_of(json_object_get(usage, "prompt_tokens")) : 0;
	out->vecs = vecs;
	out->n_inputs = n_inputs;
	out->dim = (int)dim;
	free(rows);
	json_decref(root);
	return BRG_OK;
fail:
	free(vecs);
	free(rows);
	json_decref(root);
	return err;
}

enum brg_err wire_decode_ollama_embedding(const char *data, size_t len, float **vec, int *dim,
                                          char *why, size_t why_len)
{
	*vec = NULL;
	*dim = 0;
	wire_copy_utf8(why, why_len, "", 0);
	json_t *root;
	enum brg_err err = parse_answer(data, len, &root, why, why_len);
	if (err)
		return err;
	float *v = NULL;
	json_t *e = json_object_get(root, "embedding");
	size_t n = json_array_size(e);
	if (!json_is_array(e))
		err = refuse(why, why_len, BRG_E_BAD_JSON, "the answer has no \"embedding\" array");
	else if (n == 0)
		err = refuse(why, why_len, BRG_E_BAD_REQUEST,
		             "Ollama returned an empty embedding: the model does not produce "
		             "embeddings (use an embedding model)");
	else if (n > WIRE_EMBED_MAX_FLOATS)
		err = refuse(why, why_len, BRG_E_BAD_JSON, "an embedding of %zu values exceeds %zu",
		             n, WIRE_EMBED_MAX_FLOATS);
	else if (!(v = malloc(n * sizeof *v)))
		err = refuse(why, why_len, BRG_E_NOMEM, "out of memory");
	size_t bad_at = err ? SIZE_MAX : embedding_fill(e, n, v);
	if (bad_at != SIZE_MAX)
		err = refuse(why, why_len, BRG_E_BAD_JSON,
		             "embedding value %zu is not a finite float32", bad_at);
	json_decref(root);
	if (err) {
		free(v);
		return err;
	}
	*vec = v;
	*dim = (int)n;
	return BRG_OK;
}
