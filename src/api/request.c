/*
 * request.c — JSON body → struct api_request, with every check the spec
 * and OpenAI define (spec: API Contract; OpenAI's chat/completions and
 * completions references).  Unknown fields are ignored, as OpenAI's own
 * server does, but a field whose meaning we cannot honour (tools, logprobs,
 * response_format json, logit_bias) is refused rather than silently
 * dropped: a client that asked for JSON output must not get prose.
 */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/jload.h"
#include "core/buf.h"
#include "route/route.h"

static enum brg_err bad(struct brg_error *err, const char *param, const char *fmt, const char *a)
{
	brg_fail(err, BRG_E_BAD_REQUEST, fmt, a);
	brg_error_detail_str(err, "param", param);
	return BRG_E_BAD_REQUEST;
}

/* Optional number in [lo, hi]; absent or null leaves *out alone. */
static enum brg_err get_number(json_t *o, const char *key, double lo, double hi, float *out,
                               struct brg_error *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return BRG_OK;
	if (!json_is_number(v))
		return bad(err, key, "'%s' must be a number", key);
	double d = json_number_value(v);
	if (d < lo || d > hi) {
		brg_fail(err, BRG_E_BAD_REQUEST, "'%s' must be between %g and %g, got %g", key, lo,
		         hi, d);
		brg_error_detail_str(err, "param", key);
		return BRG_E_BAD_REQUEST;
	}
	*out = (float)d;
	return BRG_OK;
}

static enum brg_err get_int(json_t *o, const char *key, long long lo, long long hi, long long *out,
                            bool *is_set, struct brg_error *err)
{
	json_t *v = json_object_get(o, key);
	if (is_set)
		*is_set = false;
	if (!v || json_is_null(v))
		return BRG_OK;
	if (!json_is_integer(v))
		return bad(err, key, "'%s' must be an integer", key);
	long long i = json_integer_value(v);
	if (i < lo || i > hi) {
		brg_fail(err, BRG_E_BAD_REQUEST, "'%s' must be between %lld and %lld, got %lld",
		         key, lo, hi, i);
		brg_error_detail_str(err, "param", key);
		return BRG_E_BAD_REQUEST;
	}
	*out = i;
	if (is_set)
		*is_set = true;
	return BRG_OK;
}

static enum brg_err get_bool(json_t *o, const char *key, bool *out, struct brg_error *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return BRG_OK;
	if (!json_is_boolean(v))
		return bad(err, key, "'%s' must be true or false", key);
	*out = json_is_true(v);
	return BRG_OK;
}

static enum brg_err get_string(json_t *o, const char *key, const char **out, struct brg_error *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return BRG_OK;
	if (!json_is_string(v))
		return bad(err, key, "'%s' must be a string", key);
	*out = json_string_value(v);
	return BRG_OK;
}

static enum brg_err add_stop(json_t *s, struct gen_params *p, struct brg_error *err)
{
	if (!json_is_string(s))
		return bad(err, "stop", "'stop' must be a string or an array of strings%s", "");
	size_t len = json_string_length(s);
	if (len == 0 || len > GEN_STOP_MAX_LEN)
		return bad(err, "stop", "each stop string must be 1 to 256 bytes%s", "");
	p->stops[p->n_stops++] = json_string_value(s);
	return BRG_OK;
}

static enum brg_err parse_stop(json_t *o, struct gen_params *p, struct brg_error *err)
{
	json_t *v = json_object_get(o, "stop");
	if (!v || json_is_null(v))
		return BRG_OK;
	if (!json_is_array(v))
		return add_stop(v, p, err);
	if (json_array_size(v) > GEN_MAX_STOPS)
		return bad(err, "stop", "'stop' takes at most 4 strings%s", "");
	size_t i;
	json_t *s;
	json_array_foreach(v, i, s)
	{
		enum brg_err rc = add_stop(s, p, err);
		if (rc)
			return rc;
	}
	return BRG_OK;
}

/* Fields whose meaning we cannot honour yet: refuse, never ignore. */
static enum brg_err refuse_unsupported(json_t *o, struct brg_error *err)
{
	static const char *non_empty[] = {"tools", "functions", "logit_bias"};
	for (size_t i = 0; i < sizeof non_empty / sizeof non_empty[0]; i++) {
		json_t *v = json_object_get(o, non_empty[i]);
		bool is_used = (json_is_array(v) && json_array_size(v) > 0) ||
		               (json_is_object(v) && json_object_size(v) > 0);
		if (is_used)
			return bad(err, non_empty[i], "'%s' is not supported by this server yet",
			           non_empty[i]);
	}
	json_t *lp = json_object_get(o, "logprobs");
	if (lp && (json_is_true(lp) || json_is_integer(lp)))
		return bad(err, "logprobs", "'%s' is not supported by this server yet", "logprobs");
	json_t *rf = json_object_get(o, "response_format");
	if (rf && !json_is_null(rf)) {
		const char *t = json_string_value(json_object_get(rf, "type"));
		if (!t || strcmp(t, "text") != 0)
			return bad(
			    err, "response_format",
			    "'response_format' other than {\"type\": \"text\"} is not supported "
			    "yet%s",
			    "");
	}
	return BRG_OK;
}

static enum brg_err parse_sampling(json_t *o, struct api_request *r, struct brg_error *err)
{
	struct gen_params *p = &r->params;
	long long v = 0, n = 1;
	bool is_set = false;
	enum brg_err rc;
	if ((rc = get_number(o, "temperature", 0, 2, &p->temperature, err)) ||
	    (rc = get_number(o, "top_p", 0, 1, &p->top_p, err)) ||
	    (rc = get_number(o, "min_p", 0, 1, &p->min_p, err)) ||
	    (rc = get_number(o, "presence_penalty", -2, 2, &p->presence_penalty, err)) ||
	    (rc = get_number(o, "frequency_penalty", -2, 2, &p->frequency_penalty, err)))
		return rc;
	if ((rc = get_int(o, "top_k", 0, 1 << 20, &v, &is_set, err)))
		return rc;
	if (is_set)
		p->top_k = (int)v;
	if ((rc = get_int(o, "max_tokens", 1, 1 << 24, &v, &is_set, err)))
		return rc;
	if (is_set)
		p->n_max_tokens = (int)v;
	if ((rc = get_int(o, "max_completion_tokens", 1, 1 << 24, &v, &is_set, err)))
		return rc;
	if (is_set)
		p->n_max_tokens = (int)v;
	v = 0;
	if ((rc = get_int(o, "seed", INT64_MIN, INT64_MAX, &v, &p->has_seed, err)))
		return rc;
	p->seed = (uint32_t)v;
	if ((rc = get_int(o, "n", 1, API_MAX_N, &n, NULL, err)))
		return rc;
	r->n = (size_t)n;
	return parse_stop(o, p, err);
}

static enum brg_err parse_extensions(json_t *o, struct api_request *r, struct brg_error *err)
{
	enum brg_err rc;
	long long prio = 2;
	if ((rc = get_string(o, "task_type", &r->task_type, err)) ||
	    (rc = get_string(o, "orchestration_mode", &r->mode, err)) ||
	    (rc = get_string(o, "config", &r->preset, err)) ||
	    (rc = get_bool(o, "stream_steps", &r->is_stream_steps, err)) ||
	    (rc = get_int(o, "priority", 1, ADMIT_MAX_LEVELS, &prio, &r->has_priority, err)))
		return rc;
	if (r->task_type && !route_task_known(r->task_type))
		return bad(
		    err, "task_type",
		    "unknown task_type '%s' (known: general, chat, summarize, explain, code, "
		    "debug, refactor, review, test, analyze, reason, plan, compare, debate, "
		    "simple, quick, classify, extract, document, summarize_long, rag)",
		    r->task_type);
	if (r->mode && orch_mode_parse(r->mode) < 0)
		return bad(err, "orchestration_mode",
		           "unknown orchestration_mode '%s' (known: single, critique, debate, "
		           "ensemble, pipeline, self_consistency)",
		           r->mode);
	r->priority = (int)prio;
	return BRG_OK;
}

static enum brg_err parse_stream(json_t *o, struct api_request *r, struct brg_error *err)
{
	enum brg_err rc = get_bool(o, "stream", &r->is_stream, err);
	if (rc)
		return rc;
	json_t *so = json_object_get(o, "stream_options");
	if (!so || json_is_null(so))
		return BRG_OK;
	if (!json_is_object(so))
		return bad(err, "stream_options", "'stream_options' must be an object%s", "");
	if (!r->is_stream)
		return bad(err, "stream_options",
		           "'stream_options' is only allowed when 'stream' is true%s", "");
	return get_bool(so, "include_usage", &r->include_usage, err);
}

/* The parts common to both endpoints. */
static enum brg_err parse_common(const char *body, size_t len, struct api_request *r,
                                 struct brg_error *err)
{
	memset(r, 0, sizeof *r);
	r->params = gen_default_params();
	r->n = 1;
	r->priority = 2;
	json_error_t je;
	r->root = jload(body, len, &je);
	if (!r->root) {
		brg_fail(err, BRG_E_BAD_JSON,
		         "request body is not valid JSON: %s (line %d, column %d)", je.text,
		         je.line, je.column);
		return BRG_E_BAD_JSON;
	}
	if (!json_is_object(r->root))
		return bad(err, "body", "request body must be a JSON object%s", "");
	json_t *m = json_object_get(r->root, "model");
	if (!m || !json_is_string(m) || json_string_length(m) == 0)
		return bad(err, "model", "'model' is required and must be a non-empty string%s",
		           "");
	r->model = json_string_value(m);
	enum brg_err rc;
	const char *user = NULL;
	if ((rc = refuse_unsupported(r->root, err)) || (rc = parse_sampling(r->root, r, err)) ||
	    (rc = parse_stream(r->root, r, err)) || (rc = parse_extensions(r->root, r, err)) ||
	    (rc = get_string(r->root, "user", &user, err)))
		return rc;
	return BRG_OK;
}

static enum brg_err keep(struct api_request *r, char *s, struct brg_error *err)
{
	char **o = realloc(r->owned, (r->n_owned + 1) * sizeof *o);
	if (!o) {
		free(s);
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	}
	r->owned = o;
	r->owned[r->n_owned++] = s;
	return BRG_OK;
}

/* Content parts: text parts are joined with newlines; others refused. */
static enum brg_err content_parts(struct api_request *r, json_t *parts, size_t i, const char **out,
                                  struct brg_error *err)
{
	struct buf b;
	buf_init(&b, (size_t)1 << 30);
	size_t k;
	json_t *part;
	json_array_foreach(parts, k, part)
	{
		const char *type = json_string_value(json_object_get(part, "type"));
		json_t *text = json_object_get(part, "text");
		if (!type || strcmp(type, "text") != 0 || !json_is_string(text)) {
			buf_fini(&b);
			brg_fail(
			    err, BRG_E_BAD_REQUEST,
			    "messages[%zu].content[%zu]: only {\"type\": \"text\", \"text\": ...} "
			    "parts are supported",
			    i, k);
			brg_error_detail_str(err, "param", "messages");
			return BRG_E_BAD_REQUEST;
		}
		if ((k > 0 && buf_append(&b, "\n", 1)) ||
		    buf_append(&b, json_string_value(text), json_string_length(text))) {
			buf_fini(&b);
			return brg_fail(err, BRG_E_NOMEM, "out of memory");
		}
	}
	char *s = buf_take(&b);
	if (!s)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	*out = s;
	return keep(r, s, err);
}

static enum brg_err parse_message(struct api_request *r, json_t *m, size_t i, struct brg_error *err)
{
	static const char *roles[] = {"system", "developer", "user", "assistant", "tool"};
	const char *role = json_string_value(json_object_get(m, "role"));
	bool is_known = false;
	for (size_t k = 0; role && k < sizeof roles / sizeof roles[0]; k++)
		is_known |= strcmp(role, roles[k]) == 0;
	if (!json_is_object(m) || !is_known) {
		brg_fail(
		    err, BRG_E_BAD_REQUEST,
		    "messages[%zu].role must be one of system, developer, user, assistant, tool",
		    i);
		brg_error_detail_str(err, "param", "messages");
		return BRG_E_BAD_REQUEST;
	}
	/* llama.cpp's templates know "system", not OpenAI's newer "developer". */
	r->msgs[i].role = strcmp(role, "developer") == 0 ? "system" : role;
	json_t *c = json_object_get(m, "content");
	if (json_is_string(c)) {
		r->msgs[i].content = json_string_value(c);
		return BRG_OK;
	}
	if (json_is_array(c))
		return content_parts(r, c, i, &r->msgs[i].content, err);
	if ((!c || json_is_null(c)) && strcmp(role, "assistant") == 0) {
		r->msgs[i].content = "";
		return BRG_OK;
	}
	brg_fail(err, BRG_E_BAD_REQUEST,
	         "messages[%zu].content must be a string or an array of text parts", i);
	brg_error_detail_str(err, "param", "messages");
	return BRG_E_BAD_REQUEST;
}

enum brg_err api_parse_chat(const char *body, size_t len, struct api_request *r,
                            struct brg_error *err)
{
	enum brg_err rc = parse_common(body, len, r, err);
	if (rc)
		goto fail;
	r->is_chat = true;
	json_t *msgs = json_object_get(r->root, "messages");
	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		rc = bad(err, "messages", "'messages' is required and must be a non-empty array%s",
		         "");
		goto fail;
	}
	r->n_msgs = json_array_size(msgs);
	r->msgs = calloc(r->n_msgs, sizeof *r->msgs);
	if (!r->msgs) {
		rc = brg_fail(err, BRG_E_NOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < r->n_msgs; i++)
		if ((rc = parse_message(r, json_array_get(msgs, i), i, err)))
			goto fail;
	return BRG_OK;
fail:
	api_request_fini(r);
	return rc;
}

static enum brg_err parse_prompts(struct api_request *r, struct brg_error *err)
{
	json_t *p = json_object_get(r->root, "prompt");
	if (json_is_string(p)) {
		r->prompts[r->n_prompts++] = json_string_value(p);
		return BRG_OK;
	}
	size_t n = json_is_array(p) ? json_array_size(p) : 0;
	if (n == 0 || n > API_MAX_PROMPTS)
		return bad(err, "prompt",
		           "'prompt' is required: a string or an array of 1 to 16 strings%s", "");
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_array_get(p, i);
		if (!json_is_string(s))
			return bad(err, "prompt",
			           "'prompt' must be a string or an array of strings (token arrays "
			           "are not supported)%s",
			           "");
		r->prompts[r->n_prompts++] = json_string_value(s);
	}
	if (r->n_prompts * r->n > API_MAX_N)
		return bad(err, "n", "prompts times 'n' must be at most 16%s", "");
	return BRG_OK;
}

enum brg_err api_parse_completion(const char *body, size_t len, struct api_request *r,
                                  struct brg_error *err)
{
	enum brg_err rc = parse_common(body, len, r, err);
	if (rc)
		goto fail;
	/* The legacy endpoint's default is 16 tokens (OpenAI's). */
	if (!json_object_get(r->root, "max_tokens") ||
	    json_is_null(json_object_get(r->root, "max_tokens")))
		r->params.n_max_tokens = 16;
	const char *suffix = NULL;
	long long best_of = 0;
	if ((rc = parse_prompts(r, err)) || (rc = get_bool(r->root, "echo", &r->echo, err)) ||
	    (rc = get_string(r->root, "suffix", &suffix, err)) ||
	    (rc = get_int(r->root, "best_of", 0, API_MAX_N, &best_of, NULL, err)))
		goto fail;
	if (suffix && *suffix) {
		rc = bad(err, "suffix", "'suffix' is not supported by this server yet%s", "");
		goto fail;
	}
	if (best_of > (long long)r->n) {
		rc = bad(err, "best_of", "'best_of' greater than 'n' is not supported yet%s", "");
		goto fail;
	}
	return BRG_OK;
fail:
	api_request_fini(r);
	return rc;
}

void api_request_fini(struct api_request *r)
{
	for (size_t i = 0; i < r->n_owned; i++)
		free(r->owned[i]);
	free(r->owned);
	free(r->msgs);
	json_decref(r->root);
	memset(r, 0, sizeof *r);
}
