/*
 * reply.c — JSON replies and the spec's error body (spec: Error Response
 * Format):
 *
 *   {"error": {"code": "MODEL_NOT_FOUND", "message": "...",
 *              "type": "non_retriable", "provider": "brigade",
 *              "param": "model", "details": {...}}}
 *
 * "param" is OpenAI's field naming the offending request field (null when
 * none); the official SDKs read code, message, type and param from it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/metrics.h"
#include "core/log.h"

json_t *api_error_json(const struct brg_error *e)
{
	json_t *details = json_object();
	const char *param = NULL;
	for (size_t i = 0; i < e->n_details; i++) {
		const struct brg_detail *d = &e->details[i];
		json_t *v = d->kind == BRG_DETAIL_INT    ? json_integer(d->i)
		            : d->kind == BRG_DETAIL_BOOL ? json_boolean(d->i)
		                                         : json_string(d->s);
		if (strcmp(d->key, "param") == 0)
			param = d->s;
		json_object_set_new(details, d->key, v ? v : json_null());
	}
	json_t *body = json_object();
	json_t *msg = json_string(e->message[0] ? e->message : brg_err_code(e->code));
	json_object_set_new(body, "code", json_string(brg_err_code(e->code)));
	/* Messages quote client input; if one is still not valid UTF-8, the
	 * code stands in for it rather than losing the whole body. */
	json_object_set_new(body, "message", msg ? msg : json_string(brg_err_code(e->code)));
	json_object_set_new(
	    body, "type",
	    json_string(brg_err_is_retriable(e->code) ? "retriable" : "non_retriable"));
	json_object_set_new(body, "provider", json_string("brigade"));
	json_t *p = param ? json_string(param) : NULL;
	json_object_set_new(body, "param", p ? p : json_null());
	json_object_set_new(body, "details", details);
	return json_pack("{s:o}", "error", body);
}

void api_reply_body(struct http_exchange *x, int status, const char *json, size_t len)
{
	obs_request_status(status); /* the request's status, for obs/ */
	http_reply(x, status, "application/json", json, len);
}

void api_reply_json(struct http_exchange *x, int status, json_t *v)
{
	char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	if (!s) {
		static const char oom[] =
		    "{\"error\":{\"code\":\"INTERNAL_ERROR\",\"message\":\"cannot "
		    "encode the response\",\"type\":\"non_retriable\","
		    "\"provider\":\"brigade\",\"details\":{}}}";
		api_reply_body(x, 500, oom, sizeof oom - 1);
		return;
	}
	api_reply_body(x, status, s, strlen(s));
	free(s);
}

void api_reply_error(struct http_exchange *x, const struct brg_error *e)
{
	int status = brg_err_http_status(e->code);
	if (brg_err_is_retriable(e->code)) {
		char secs[16];
		int ms = e->retry_after_ms > 0 ? e->retry_after_ms : 1000;
		snprintf(secs, sizeof secs, "%d", (ms + 999) / 1000);
		http_add_header(x, "Retry-After", secs);
	}
	if (status >= 500)
		log_warn("%s %s -> %d %s: %s", http_method(x), http_path(x), status,
		         brg_err_code(e->code), e->message);
	else
		log_debug("%s %s -> %d %s: %s", http_method(x), http_path(x), status,
		          brg_err_code(e->code), e->message);
	api_reply_json(x, status, api_error_json(e));
}

void api_on_http_error(void *ud, struct http_exchange *x, enum brg_err code, const char *message)
{
	struct brg_error e;
	(void)ud;
	brg_error_clear(&e);
	brg_fail(&e, code, "%s", message);
	if (code == BRG_E_NOT_FOUND || code == BRG_E_METHOD) {
		brg_error_detail_str(&e, "method", http_method(x));
		brg_error_detail_str(&e, "path", http_path(x));
	}
	api_reply_error(x, &e);
}

static const struct http_route routes[] = {
    {"POST", "/v1/chat/completions", api_chat_completions_observed, 0},
    {"POST", "/v1/completions", api_completions_observed, 0},
    {"POST", "/v1/embeddings", api_embeddings_observed, 0},
    {"GET", "/v1/models", api_models_list, 0},
    {"POST", "/v1/models/{id}/load", api_models_load, 0},
    {"POST", "/v1/models/{id}/unload", api_models_unload, 0},
    {"GET", "/v1/models/{id}", api_models_get, 0},
    {"GET", "/health", api_health, 1},
    {"GET", "/health/ready", api_health_ready, 1},
    {"GET", "/v1/health/inference", api_health_inference, 0},
    {"GET", "/metrics", api_metrics, 0},
};

const struct http_route *api_routes(size_t *n)
{
	*n = sizeof routes / sizeof routes[0];
	return routes;
}
