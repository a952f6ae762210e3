/*
 * wire.c — request bodies for, and streamed events and embeddings answers
 * from, remote backends: OpenAI-compatible servers (OpenAI, vLLM,
 * llama.cpp's server, LM Studio) and Ollama's native API; see wire.h.
 *
 * On the request path this is the last step before libcurl (encoding) and
 * the first after sse.c has framed an event (decoding).  It owns no state:
 * every call builds or parses one jansson document and hands it back.
 *
 * Encoding sends only what the request set, so each backend keeps its own
 * defaults for the rest.  Floats are written in their shortest round-trip
 * form ("0.7", not 0.699999988079071), which is what a person reading an
 * upstream's request log expects.
 *
 * Decoding is strict about shapes that change meaning (content that is not
 * a string, choices that are not an array) and lenient about counts (usage
 * numbers that are missing or odd become 0): a wrong token count must not
 * kill a stream whose text is fine.
 */
#include "provider/wire.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "provider/wire_int.h"

/* ---- encoding ---------------------------------------------------------- */

/* Adds key → v to obj, taking ownership of v (NULL from a failed
 * constructor is reported as out-of-memory). */
static enum brg_err put(json_t *obj, const char *key, json_t *v)
{
	if (!v || json_object_set_new(obj, key, v))
		return BRG_E_NOMEM;
	return BRG_OK;
}

/* A JSON string of s (NULL: ""), *out owned by the caller.  Errors:
 * BRG_E_BAD_REQUEST when s is not UTF-8 (jansson refuses to emit it),
 * BRG_E_NOMEM. */
static enum brg_err string_of(const char *s, json_t **out)
{
	size_t len = s ? strlen(s) : 0;
	*out = json_stringn(s ? s : "", len);
	if (*out)
		return BRG_OK;
	/* Only an allocation failure makes the unchecked constructor fail. */
	json_t *raw = json_stringn_nocheck(s ? s : "", len);
	json_decref(raw);
	return raw ? BRG_E_BAD_REQUEST : BRG_E_NOMEM;
}

static enum brg_err put_string(json_t *obj, const char *key, const char *s)
{
	json_t *v;
	enum brg_err err = string_of(s, &v);
	return err ? err : put(obj, key, v);
}

/* The shortest decimal that reads back as f, as a JSON real.  Errors:
 * BRG_E_BAD_REQUEST for NaN or infinity (JSON has no such numbers). */
static enum brg_err put_float(json_t *obj, const char *key, float f)
{
	if (!isfinite(f))
		return BRG_E_BAD_REQUEST;
	char s[32];
	for (int prec = 1; prec <= 9; prec++) {
		snprintf(s, sizeof s, "%.*g", prec, (double)f);
		if (strtof(s, NULL) == f)
			break;
	}
	return put(obj, key, json_real(strtod(s, NULL)));
}

static enum brg_err put_messages(json_t *obj, const struct gen_request *r)
{
	json_t *msgs = json_array();
	if (!msgs || json_object_set_new(obj, "messages", msgs))
		return BRG_E_NOMEM;
	for (size_t i = 0; i < r->n_msgs; i++) {
		json_t *m = json_object();
		if (!m || json_array_append_new(msgs, m))
			return BRG_E_NOMEM;
		enum brg_err err = put_string(m, "role", r->msgs[i].role);
		if (!err)
			err = put_string(m, "content", r->msgs[i].content);
		if (err)
			return err;
	}
	return BRG_OK;
}

static enum brg_err put_stops(json_t *obj, const struct gen_params *gp)
{
	json_t *stops = json_array();
	if (!stops || json_object_set_new(obj, "stop", stops))
		return BRG_E_NOMEM;
	size_t n = gp->n_stops < GEN_MAX_STOPS ? gp->n_stops : GEN_MAX_STOPS;
	for (size_t i = 0; i < n; i++) {
		json_t *v;
		enum brg_err err = string_of(gp->stops[i], &v);
		if (err)
			return err;
		if (json_array_append_new(stops, v))
			return BRG_E_NOMEM;
	}
	return BRG_OK;
}

/*
 * The sampling fields both wire formats share, under the same rules: a
 * field is sent only when it differs from "off" (temperature always: the
 * backends' own defaults differ from OpenAI's 1).  'max_key' is the name
 * of the token limit ("max_tokens" or Ollama's "num_predict").  Ollama's
 * own defaults are top_p 0.9 and top_k 40, not "off": with is_explicit
 * both are always sent, so a request samples as the client asked.
 */
static enum brg_err put_sampling(json_t *obj, const struct gen_params *gp, const char *max_key,
                                 bool is_explicit)
{
	enum brg_err err = BRG_OK;
	if (gp->n_max_tokens >= 0)
		err = put(obj, max_key, json_integer(gp->n_max_tokens));
	if (!err)
		err = put_float(obj, "temperature", gp->temperature);
	if (!err && (is_explicit || gp->top_p != 1.0f))
		err = put_float(obj, "top_p", gp->top_p);
	if (!err && (is_explicit || gp->top_k > 0))
		err = put(obj, "top_k", json_integer(gp->top_k));
	if (!err && gp->min_p > 0.0f)
		err = put_float(obj, "min_p", gp->min_p);
	if (!err && gp->presence_penalty != 0.0f)
		err = put_float(obj, "presence_penalty", gp->presence_penalty);
	if (!err && gp->frequency_penalty != 0.0f)
		err = put_float(obj, "frequency_penalty", gp->frequency_penalty);
	if (!err && gp->has_seed)
		err = put(obj, "seed", json_integer(gp->seed));
	if (!err && gp->n_stops)
		err = put_stops(obj, gp);
	return err;
}

/* model, then messages (chat) or prompt (completion), then stream: true. */
static enum brg_err put_head(json_t *obj, const struct gen_request *r, const char *model)
{
	enum brg_err err = put_string(obj, "model", model ? model : r->model);
	if (!err)
		err = r->msgs ? put_messages(obj, r) : put_string(obj, "prompt", r->prompt);
	if (!err)
		err = put(obj, "stream", json_true());
	return err;
}

/* Serializes and frees 'root' (whatever err says); *out is malloc'd. */
static enum brg_err finish_body(json_t *root, enum brg_err err, char **out)
{
	*out = NULL;
	if (!err) {
		*out = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
		if (!*out)
			err = BRG_E_NOMEM;
	}
	json_decref(root);
	return err;
}

enum brg_err wire_openai_request(const struct gen_request *r, const char *model, char **out)
{
	json_t *root = json_object();
	if (!root) {
		*out = NULL;
		return BRG_E_NOMEM;
	}
	enum brg_err err = put_head(root, r, model);
	json_t *opts = err ? NULL : json_pack("{s:b}", "include_usage", 1);
	if (!err)
		err = put(root, "stream_options", opts);
	if (!err && r->n_choices > 1)
		err = put(root, "n", json_integer((json_int_t)r->n_choices));
	if (!err)
		err = put_sampling(root, &r->params, "max_tokens", false);
	/* Legacy completions take a count of alternatives per token; OpenAI
	 * reads 0 as the sampled token alone, llama.cpp's server as "off". */
	if (!err && r->params.want_logprobs)
		err = put(root, "logprobs", r->msgs ? json_true() : json_integer(1));
	return finish_body(root, err, out);
}

enum brg_err wire_ollama_request(const struct gen_request *r, const char *model, char **out)
{
	json_t *root = json_object();
	if (!root) {
		*out = NULL;
		return BRG_E_NOMEM;
	}
	enum brg_err err = put_head(root, r, model);
	/* /api/generate would wrap the prompt in the model's chat template;
	 * a completion prompt is meant verbatim. */
	if (!err && !r->msgs)
		err = put(root, "raw", json_true());
	json_t *opts = err ? NULL : json_object();
	if (!err)
		err = put(root, "options", opts);
	if (!err)
		err = put_sampling(opts, &r->params, "num_predict", true);
	return finish_body(root, err, out);
}

/* ---- decoding ---------------------------------------------------------- */

/* The length of the well-formed UTF-8 character at s (RFC 3629: no
 * overlongs, no surrogates, nothing past U+10FFFF), 0 if there is none. */
static size_t utf8_char_len(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */
	if (c > 0 && c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4;
	else
		return 0;
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

/*
 * Copies msg into dst (cap bytes, NUL included; cap 0 writes nothing) as
 * valid UTF-8: whole characters only, so a cut never splits one, and '?'
 * for each byte that starts none (jansson's parse errors quote the
 * offending input, which may be anything).
 */
static void copy_utf8(char *dst, size_t cap, const char *msg, size_t len)
{
	if (cap == 0)
		return;
	const unsigned char *s = (const unsigned char *)msg;
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		size_t c = utf8_char_len(s + i, len - i);
		const char *src = c ? msg + i : "?";
		size_t src_len = c ? c : 1;
		if (n + src_len >= cap)
			break;
		memcpy(dst + n, src, src_len);
		n += src_len;
		i += src_len;
	}
	dst[n] = '\0';
}

static void set_error(struct wire_delta *out, const char *msg, size_t len)
{
	copy_utf8(out->error, sizeof out->error, msg, len);
}

static enum brg_err bad(struct wire_delta *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records why an event was refused; returns BRG_E_BAD_JSON. */
static enum brg_err bad(struct wire_delta *out, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	size_t len = n < 0 ? 0 : (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
	set_error(out, msg, len);
	return BRG_E_BAD_JSON;
}

static void delta_init(struct wire_delta *out)
{
	memset(out, 0, sizeof *out);
	out->index = -1;
}

/* Parses one event that must be a JSON object. */
static enum brg_err parse(const char *data, size_t len, struct wire_delta *out, json_t **root)
{
	json_error_t je;
	/* JSON_ALLOW_NUL: a model may well emit "\u0000"; text carries its
	 * length, so it passes through rather than failing the stream. */
	*root = json_loadb(data, len, JSON_ALLOW_NUL, &je);
	if (!*root)
		return bad(out, "upstream sent invalid JSON: %s", je.text);
	if (!json_is_object(*root)) {
		json_decref(*root);
		*root = NULL;
		return bad(out, "upstream event is not a JSON object");
	}
	return BRG_OK;
}

/* Copies an error's description into dst: a string, an object's
 * "message", or failing those the whole value as JSON.  Never empty: an
 * empty message says that it is one. */
static void describe(char *dst, size_t cap, json_t *e)
{
	json_t *msg = json_is_object(e) ? json_object_get(e, "message") : e;
	if (json_is_string(msg) && json_string_length(msg) == 0) {
		const char *none = "upstream error without a message";
		copy_utf8(dst, cap, none, strlen(none));
		return;
	}
	if (json_is_string(msg)) {
		copy_utf8(dst, cap, json_string_value(msg), json_string_length(msg));
		return;
	}
	char *s = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s)
		copy_utf8(dst, cap, s, strlen(s));
	else
		copy_utf8(dst, cap, "upstream error", strlen("upstream error"));
	free(s);
}

/*
 * Whether root is an error object: {"error": "text"}, {"error": {"message":
 * ...}} (OpenAI, Ollama, llama.cpp) or {"object": "error", "message": ...}
 * (older vLLM).  Copies its message into dst if so.
 */
static bool error_object(json_t *root, char *dst, size_t cap)
{
	json_t *e = json_object_get(root, "error");
	json_t *obj = json_object_get(root, "object");
	if (e && !json_is_null(e))
		describe(dst, cap, e);
	else if (json_is_string(obj) && strcmp(json_string_value(obj), "error") == 0)
		describe(dst, cap, root);
	else
		return false;
	return true;
}

/* Whether root is an error event; fills out->is_error and out->error. */
static bool upstream_error(json_t *root, struct wire_delta *out)
{
	out->is_error = error_object(root, out->error, sizeof out->error);
	return out->is_error;
}

/* A text field: absent or null leaves out->text NULL; a string is borrowed
 * from the document; anything else is refused. */
static enum brg_err text_of(json_t *v, const char *what, struct wire_delta *out)
{
	if (!v || json_is_null(v))
		return BRG_OK;
	if (!json_is_string(v))
		return bad(out, "%s is not a string", what);
	out->text = json_string_value(v);
	out->text_len = json_string_length(v);
	return BRG_OK;
}

/* A token count, clamped to [0, INT_MAX]; anything but a number is 0. */
static int count_of(json_t *v)
{
	double d = json_number_value(v);
	if (!(d > 0))
		return 0;
	return d >= (double)INT_MAX ? INT_MAX : (int)d;
}

static void finish_of(json_t *reason, struct wire_delta *out)
{
	out->has_finish = true;
	bool is_length = json_is_string(reason) && strcmp(json_string_value(reason), "length") == 0;
	out->finish = is_length ? GEN_FINISH_LENGTH : GEN_FINISH_STOP;
}

/* choices[k] of an OpenAI chunk: index, text (chat delta or completion
 * text), finish_reason and logprobs; *n_choices gets the array's length. */
static enum brg_err openai_choice(json_t *root, size_t k, size_t *n_choices, struct wire_delta *out)
{
	json_t *choices = json_object_get(root, "choices");
	if (!choices || json_is_null(choices))
		return BRG_OK;
	if (!json_is_array(choices))
		return bad(out, "\"choices\" is not an array");
	*n_choices = json_array_size(choices);
	json_t *c = json_array_get(choices, k);
	if (!c)
		return BRG_OK;
	if (!json_is_object(c))
		return bad(out, "choices[%zu] is not an object", k);
	json_t *index = json_object_get(c, "index");
	if (!index) {
		out->index = k > INT_MAX ? INT_MAX : (int)k;
	} else if (!json_is_integer(index) || json_integer_value(index) < 0 ||
	           json_integer_value(index) > INT_MAX) {
		return bad(out, "choices[%zu].index is not a valid index", k);
	} else {
		out->index = (int)json_integer_value(index);
	}
	json_t *delta = json_object_get(c, "delta");
	enum brg_err err;
	if (delta && !json_is_null(delta)) {
		if (!json_is_object(delta))
			return bad(out, "choices[%zu].delta is not an object", k);
		err = text_of(json_object_get(delta, "content"), "delta.content", out);
	} else {
		err = text_of(json_object_get(c, "text"), "choices[].text", out);
	}
	if (err)
		return err;
	json_t *reason = json_object_get(c, "finish_reason");
	if (reason && !json_is_null(reason)) {
		if (!json_is_string(reason))
			return bad(out, "choices[%zu].finish_reason is not a string", k);
		finish_of(reason, out);
	}
	wire_logprobs_sum(json_object_get(c, "logprobs"), &out->logprob_sum, &out->n_logprobs);
	return BRG_OK;
}

static enum brg_err openai_usage(json_t *root, struct wire_delta *out)
{
	json_t *usage = json_object_get(root, "usage");
	if (!usage || json_is_null(usage))
		return BRG_OK;
	if (!json_is_object(usage))
		return bad(out, "\"usage\" is not an object");
	out->has_usage = true;
	out->n_prompt = count_of(json_object_get(usage, "prompt_tokens"));
	out->n_completion = count_of(json_object_get(usage, "completion_tokens"));
	return BRG_OK;
}

/* Whether the payload is OpenAI's end marker, surrounding blanks allowed. */
static bool is_done_marker(const char *s, size_t len)
{
	while (len && strchr(" \t\r\n", s[0]) && s[0])
		s++, len--;
	while (len && strchr(" \t\r\n", s[len - 1]) && s[len - 1])
		len--;
	return len == 6 && memcmp(s, "[DONE]", 6) == 0;
}

/* Ends a decode: on success hands root to the caller, on failure frees it
 * and leaves only out->error set, so nothing points into freed memory. */
static enum brg_err settle(json_t *root, enum brg_err err, struct wire_delta *out, void **holder)
{
	if (!err) {
		*holder = root;
		return BRG_OK;
	}
	json_decref(root);
	char why[sizeof out->error];
	memcpy(why, out->error, sizeof why);
	delta_init(out);
	memcpy(out->error, why, sizeof why);
	return err;
}

enum brg_err wire_decode_openai(const char *data, size_t len, size_t k, size_t *n_choices,
                                struct wire_delta *out, void **holder)
{
	size_t n_dummy;
	if (!n_choices)
		n_choices = &n_dummy;
	*n_choices = 0;
	*holder = NULL;
	delta_init(out);
	if (is_done_marker(data, len)) {
		out->is_done = true;
		return BRG_OK;
	}
	json_t *root;
	enum brg_err err = parse(data, len, out, &root);
	if (err)
		return err;
	if (upstream_error(root, out))
		return settle(root, BRG_OK, out, holder);
	err = openai_choice(root, k, n_choices, out);
	if (!err && k == 0)
		err = openai_usage(root, out);
	if (err)
		*n_choices = 0;
	return settle(root, err, out, holder);
}

enum brg_err wire_decode_ollama(const char *data, size_t len, struct wire_delta *out, void **holder)
{
	*holder = NULL;
	delta_init(out);
	json_t *root;
	enum brg_err err = parse(data, len, out, &root);
	if (err)
		return err;
	if (upstream_error(root, out))
		return settle(root, BRG_OK, out, holder);
	out->index = 0;
	json_t *msg = json_object_get(root, "message");
	if (msg && !json_is_null(msg)) {
		if (!json_is_object(msg))
			return settle(root, bad(out, "\"message\" is not an object"), out, holder);
		err = text_of(json_object_get(msg, "content"), "message.content", out);
	} else {
		err = text_of(json_object_get(root, "response"), "response", out);
	}
	json_t *done = json_object_get(root, "done");
	if (!err && done && !json_is_null(done) && !json_is_boolean(done))
		err = bad(out, "\"done\" is not a boolean");
	if (!err && json_is_true(done)) {
		out->is_done = true;
		finish_of(json_object_get(root, "done_reason"), out);
		out->has_usage = true;
		out->n_prompt = count_of(json_object_get(root, "prompt_eval_count"));
		out->n_completion = count_of(json_object_get(root, "eval_count"));
	}
	return settle(root, err, out, holder);
}

void wire_holder_free(void *holder)
{
	json_decref((json_t *)holder);
}

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
		enum brg_err err = string_of(in->text, &v);
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
	enum brg_err err = put_string(root, "model", model ? model : r->model);
	json_t *list = err ? NULL : json_array();
	if (!err)
		err = put(root, "input", list); /* root holds it; 'list' stays valid */
	for (size_t i = 0; !err && i < r->n_inputs; i++)
		err = append_input(list, &r->inputs[i]);
	if (!err)
		err = put_string(root, "encoding_format", "float");
	if (!err && r->dimensions > 0)
		err = put(root, "dimensions", json_integer(r->dimensions));
	return finish_body(root, err, out);
}

enum brg_err wire_ollama_embed_request(const char *text, const char *model, char **out)
{
	json_t *root = json_object();
	if (!root) {
		*out = NULL;
		return BRG_E_NOMEM;
	}
	enum brg_err err = put_string(root, "model", model);
	if (!err)
		err = put_string(root, "prompt", text);
	return finish_body(root, err, out);
}

static enum brg_err refuse(char *why, size_t why_len, enum brg_err code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records why an answer was refused; returns 'code'. */
static enum brg_err refuse(char *why, size_t why_len, enum brg_err code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	size_t len = n < 0 ? 0 : (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
	copy_utf8(why, why_len, msg, len);
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
	else if (error_object(*root, why, why_len))
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
	copy_utf8(why, why_len, "", 0);
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
	    json_is_object(usage) ? count_of(json_object_get(usage, "prompt_tokens")) : 0;
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
	copy_utf8(why, why_len, "", 0);
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
