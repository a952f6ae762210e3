/*
 * api_int.h — what the files of api/ share and nobody else sees.
 */
#ifndef BRG_API_INT_H
#define BRG_API_INT_H

#include <jansson.h>
#include <stdbool.h>

#include "admit/admit.h"
#include "api/api.h"
#include "core/buf.h"
#include "core/embed.h"
#include "core/jw.h"
#include "core/gen.h"
#include "orchestrate/orchestrate.h"

#define API_MAX_N       16 /* choices per request (n, times prompts) */
#define API_MAX_PROMPTS 16 /* prompts in one /v1/completions call */

/* A validated chat or completion request.  Strings point into 'root' or
 * into 'owned'; api_request_fini() frees both. */
struct api_request {
	json_t *root;
	bool is_chat;
	const char *model;
	struct chat_msg *msgs;
	size_t n_msgs;
	const char *prompts[API_MAX_PROMPTS];
	size_t n_prompts;
	char **owned;
	size_t n_owned;
	struct gen_params params;
	size_t n; /* choices per prompt */
	bool is_stream;
	bool include_usage;
	bool echo;
	const char *task_type;
	const char *mode;     /* orchestration_mode; NULL: the preset's or the default */
	const char *preset;   /* "config": a preset's name (brigade extension); NULL: none */
	bool is_stream_steps; /* "stream_steps": each orchestration step as an SSE event */
	int priority;         /* "priority": 1..3 (3 highest); 2 when absent */
	bool has_priority;    /* the body set it (else admission uses its default) */
};

/* meta.c: writes the members "orchestration" and "inference_metadata"
 * (spec) into the object 'w' is in. */
void api_write_metadata(struct jw *w, const struct orch_info *in);

/* Parses and validates a /v1/chat/completions or /v1/completions body.
 * Errors: BRG_E_BAD_JSON, BRG_E_BAD_REQUEST (detail "param" names the
 * field).  On error 'out' needs no fini. */
enum brg_err api_parse_chat(const char *body, size_t len, struct api_request *out,
                            struct brg_error *err);
enum brg_err api_parse_completion(const char *body, size_t len, struct api_request *out,
                                  struct brg_error *err);
void api_request_fini(struct api_request *r);

/* A validated /v1/embeddings request.  Strings point into 'root'. */
struct api_embed_request {
	json_t *root;
	const char *model;
	struct embed_input *inputs;
	size_t n_inputs;
	int32_t *tokens; /* every token-array input's ids */
	bool is_base64;
	int dimensions; /* 0: the model's own */
};

/* Errors: BRG_E_BAD_JSON, BRG_E_BAD_REQUEST (detail "param"), BRG_E_NOMEM.
 * 'out' needs api_embed_request_fini() either way. */
enum brg_err api_parse_embeddings(const char *body, size_t len, struct api_embed_request *out,
                                  struct brg_error *err);
void api_embed_request_fini(struct api_embed_request *r);
/* Appends OpenAI's embeddings list for 'res' to 'b'.  Errors: BRG_E_TOO_LARGE,
 * BRG_E_NOMEM. */
enum brg_err api_embeddings_json(struct buf *b, const char *model, const struct embed_result *res,
                                 bool is_base64);

/* Replies with the spec's JSON error body (and Retry-After when retriable). */
void api_reply_error(struct http_exchange *x, const struct brg_error *e);
/* Replies 'status' with the JSON encoding of 'v' (stolen). */
void api_reply_json(struct http_exchange *x, int status, json_t *v);
/* Replies with a JSON body that is already written (copied). */
void api_reply_body(struct http_exchange *x, int status, const char *json, size_t len);
/* The spec's error object {"error": {...}} (new reference). */
json_t *api_error_json(const struct brg_error *e);

/*
 * admission.c: admission control (admit/admit.h) for one request.  Each
 * initialises 't', then waits for the request's turn until 'deadline_ms'
 * (brg_now_ms() clock) and returns BRG_OK with 't' RUNNING (or IDLE when
 * the server has no admission control): admit_leave() it when the work has
 * stopped.  Errors ('t' IDLE): those of admit_enter(), BRG_E_TIMEOUT
 * (phase "queued"), BRG_E_SHUTTING_DOWN, and BRG_E_CANCELLED when the
 * client went away (no reply then).
 */
enum brg_err api_admit(struct api *a, struct http_exchange *x, const struct admit_want *w,
                       long long deadline_ms, struct admit_ticket *t, struct brg_error *err);
/* A chat or completion request: its plan (route_plan(), the one
 * orchestrate_run() then runs) says which model's limit counts (one model:
 * that one's; a multi-model mode: only the global limit).  When that
 * model's queue is full (BRG_E_RATE_LIMITED) and the plan has auto-route
 * alternates, the next takes its place in the plan and tries instead. */
enum brg_err api_admit_generation(struct api *a, struct http_exchange *x,
                                  const struct api_request *req, struct route_plan *plan,
                                  long long deadline_ms, struct admit_ticket *t,
                                  struct brg_error *err);
/* A request for one resolved model (embeddings). */
enum brg_err api_admit_target(struct api *a, struct http_exchange *x,
                              const struct route_target *target, long long deadline_ms,
                              struct admit_ticket *t, struct brg_error *err);
/* The spec's 504 for INFERENCE_REQUEST_TIMEOUT, with details "phase"
 * (queued | generating | embedding) and "timeout_s".  Returns BRG_E_TIMEOUT. */
enum brg_err api_fail_timeout(struct brg_error *err, int timeout_s, const char *phase);
/* A generation cancelled while its client still waited: BRG_E_SHUTTING_DOWN
 * when the server is shutting down (the grace period ended), else
 * BRG_E_INTERNAL.  Returns the code it set. */
enum brg_err api_fail_interrupted(struct api *a, struct brg_error *err);
/* The "admission" object of /v1/health/inference (new reference); NULL
 * when the server has no admission control. */
json_t *api_admission_json(struct api *a);

/* Handlers. */
void api_chat_completions(void *ud, struct http_exchange *x);
void api_completions(void *ud, struct http_exchange *x);
void api_embeddings(void *ud, struct http_exchange *x);
void api_models_list(void *ud, struct http_exchange *x);
void api_models_get(void *ud, struct http_exchange *x);
void api_models_load(void *ud, struct http_exchange *x);
void api_models_unload(void *ud, struct http_exchange *x);
void api_health(void *ud, struct http_exchange *x);
void api_health_ready(void *ud, struct http_exchange *x);
void api_health_inference(void *ud, struct http_exchange *x);

#endif
