/*
 * wire.c — request bodies for, and streamed events from,
 * remote backends: OpenAI-compatible servers (OpenAI, vLLM,
 * llama.cpp's server, LM Studio) and Ollama's native API; see wire.h.
 * Embeddings are in wire_embed.c, token log-probabilities in
 * wire_logprobs.c.
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

#include "core/jw.h"
#include "core/utf8.h"
#include "provider/wire_int.h"

/* ---- encoding ---------------------------------------------------------- */

/* Adds key → v to obj, taking ownership of v (NULL from a failed
 * constructor is reported as out-of-memory). */
enum brg_err wire_put(json_t *obj, const char *key, json_t *v)
{
	if (!v || json_object_set_new(obj, key, v))
		return BRG_E_NOMEM;
	return BRG_OK;
}

/* A JSON string of s (NULL: ""), *out owned by the caller.  Errors:
 * BRG_E_BAD_REQUEST when s is not UTF-8 (jansson refuses to emit it),
 * BRG_E_NOMEM. */
enum brg_err wire_string_of(const char *s, json_t **out)
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

enum brg_err wire_put_string(json_t *obj, const char *key, const char *s)
{
	json_t *v;
	enum brg_err err = wire_string_of(s, &v);
	return err ? err : wire_put(obj, key, v);
}

/* Serializes and frees 'root' (whatever err says); *out is malloc'd. */
enum brg_err wire_finish_body(json_t *root, enum brg_err err, char **out)
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

/* A generation's body is written straight into a buffer (core/jw.h); its
 * size is bounded by the client's request, checked long before here. */
#define WIRE_MAX_BODY (SIZE_MAX / 4)

/* Records a failure of our own in the writer (the first one sticks). */
static void fail(struct jw *w, enum brg_err err)
{
	if (!w->err)
		w->err = err;
}

/* A string member; NULL is sent as "". */
static void put_str(struct jw *w, const char *key, const char *s)
{
	jw_key(w, key);
	jw_str(w, s ? s : "");
}

static void put_int(struct jw *w, const char *key, long long v)
{
	jw_key(w, key);
	jw_int(w, v);
}

/* The shortest decimal that reads back as f, as a JSON real.  NaN and
 * infinity fail with BRG_E_BAD_REQUEST (JSON has no such numbers). */
static void put_float(struct jw *w, const char *key, float f)
{
	if (!isfinite(f)) {
		fail(w, BRG_E_BAD_REQUEST);
		return;
	}
	jw_key(w, key);
	jw_float(w, f);
}

static void put_messages(struct jw *w, const struct gen_request *r)
{
	jw_key(w, "messages");
	jw_open(w, '[');
	for (size_t i = 0; i < r->n_msgs; i++) {
		jw_open(w, '{');
		put_str(w, "role", r->msgs[i].role);
		put_str(w, "content", r->msgs[i].content);
		jw_close(w, '}');
	}
	jw_close(w, ']');
}

static void put_stops(struct jw *w, const struct gen_params *gp)
{
	jw_key(w, "stop");
	jw_open(w, '[');
	size_t n = gp->n_stops < GEN_MAX_STOPS ? gp->n_stops : GEN_MAX_STOPS;
	for (size_t i = 0; i < n; i++)
		jw_str(w, gp->stops[i] ? gp->stops[i] : "");
	jw_close(w, ']');
}

/*
 * The sampling fields both wire formats share, under the same rules: a
 * field is sent only when it differs from "off" (temperature always: the
 * backends' own defaults differ from OpenAI's 1).  'max_key' is the name
 * of the token limit ("max_tokens" or Ollama's "num_predict").  Ollama's
 * own defaults are top_p 0.9 and top_k 40, not "off": with is_explicit
 * both are always sent, so a request samples as the client asked.
 */
static void put_sampling(struct jw *w, const struct gen_params *gp, const char *max_key,
                         bool is_explicit)
{
	if (gp->n_max_tokens >= 0)
		put_int(w, max_key, gp->n_max_tokens);
	put_float(w, "temperature", gp->temperature);
	if (is_explicit || gp->top_p != 1.0f)
		put_float(w, "top_p", gp->top_p);
	if (is_explicit || gp->top_k > 0)
		put_int(w, "top_k", gp->top_k);
	if (gp->min_p > 0.0f)
		put_float(w, "min_p", gp->min_p);
	if (gp->presence_penalty != 0.0f)
		put_float(w, "presence_penalty", gp->presence_penalty);
	if (gp->frequency_penalty != 0.0f)
		put_float(w, "frequency_penalty", gp->frequency_penalty);
	if (gp->has_seed)
		put_int(w, "seed", gp->seed);
	if (gp->n_stops)
		put_stops(w, gp);
}

/* Opens the body: model, then messages (chat) or prompt (completion),
 * then stream: true. */
static void put_head(struct jw *w, const struct gen_request *r, const char *model)
{
	jw_open(w, '{');
	put_str(w, "model", model ? model : r->model);
	if (r->msgs)
		put_messages(w, r);
	else
		put_str(w, "prompt", r->prompt);
	jw_key(w, "stream");
	jw_bool(w, true);
}

/* Closes the body and hands it over: *out is malloc'd, NULL on error. */
static enum brg_err finish(struct jw *w, struct buf *b, char **out)
{
	jw_close(w, '}');
	enum brg_err err = w->err;
	*out = err ? NULL : buf_take(b);
	if (!err && !*out)
		err = BRG_E_NOMEM;
	buf_fini(b);
	return err == BRG_E_TOO_LARGE ? BRG_E_NOMEM : err;
}

enum brg_err wire_openai_request(const struct gen_request *r, const char *model, char **out)
{
	struct buf b;
	struct jw w;
	buf_init(&b, WIRE_MAX_BODY);
	jw_init(&w, &b);
	put_head(&w, r, model);
	jw_key(&w, "stream_options");
	jw_open(&w, '{');
	jw_key(&w, "include_usage");
	jw_bool(&w, true);
	jw_close(&w, '}');
	if (r->n_choices > 1)
		put_int(&w, "n", (long long)r->n_choices);
	put_sampling(&w, &r->params, "max_tokens", false);
	/* Legacy completions take a count of alternatives per token; OpenAI
	 * reads 0 as the sampled token alone, llama.cpp's server as "off". */
	if (r->params.want_logprobs) {
		jw_key(&w, "logprobs");
		if (r->msgs)
			jw_bool(&w, true);
		else
			jw_int(&w, 1);
	}
	return finish(&w, &b, out);
}

enum brg_err wire_ollama_request(const struct gen_request *r, const char *model, char **out)
{
	struct buf b;
	struct jw w;
	buf_init(&b, WIRE_MAX_BODY);
	jw_init(&w, &b);
	put_head(&w, r, model);
	/* /api/generate would wrap the prompt in the model's chat template;
	 * a completion prompt is meant verbatim. */
	if (!r->msgs) {
		jw_key(&w, "raw");
		jw_bool(&w, true);
	}
	jw_key(&w, "options");
	jw_open(&w, '{');
	put_sampling(&w, &r->params, "num_predict", true);
	jw_close(&w, '}');
	return finish(&w, &b, out);
}

/* ---- decoding ---------------------------------------------------------- */

/*
 * Copies msg into dst (cap bytes, NUL included; cap 0 writes nothing) as
 * valid UTF-8: whole characters only, so a cut never splits one, and '?'
 * for each byte that starts none (jansson's parse errors quote the
 * offending input, which may be anything).
 */
void wire_copy_utf8(char *dst, size_t cap, const char *msg, size_t len)
{
	if (cap == 0)
		return;
	const unsigned char *s = (const unsigned char *)msg;
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		size_t c = s[i] ? utf8_len(s + i, len - i) : 0;
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

static enum brg_err bad(struct wire_delta *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void wire_vsay(char *dst, size_t cap, const char *fmt, va_list ap)
{
	char msg[512];
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	size_t len = n < 0 ? 0 : (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
	wire_copy_utf8(dst, cap, msg, len);
}

/* Records why an event was refused; returns BRG_E_BAD_JSON. */
static enum brg_err bad(struct wire_delta *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	wire_vsay(out->error, sizeof out->error, fmt, ap);
	va_end(ap);
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
		wire_copy_utf8(dst, cap, none, strlen(none));
		return;
	}
	if (json_is_string(msg)) {
		wire_copy_utf8(dst, cap, json_string_value(msg), json_string_length(msg));
		return;
	}
	char *s = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s)
		wire_copy_utf8(dst, cap, s, strlen(s));
	else
		wire_copy_utf8(dst, cap, "upstream error", strlen("upstream error"));
	free(s);
}

/*
 * Whether root is an error object: {"error": "text"}, {"error": {"message":
 * ...}} (OpenAI, Ollama, llama.cpp) or {"object": "error", "message": ...}
 * (older vLLM).  Copies its message into dst if so.
 */
bool wire_error_object(json_t *root, char *dst, size_t cap)
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
	out->is_error = wire_error_object(root, out->error, sizeof out->error);
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
int wire_count_of(json_t *v)
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
	out->n_prompt = wire_count_of(json_object_get(usage, "prompt_tokens"));
	out->n_completion = wire_count_of(json_object_get(usage, "completion_tokens"));
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
		out->n_prompt = wire_count_of(json_object_get(root, "prompt_eval_count"));
		out->n_completion = wire_count_of(json_object_get(root, "eval_count"));
	}
	return settle(root, err, out, holder);
}

void wire_holder_free(void *holder)
{
	json_decref((json_t *)holder);
}
