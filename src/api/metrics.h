/*
 * metrics.h — api/'s side of observability (obs/obs.h): GET /metrics, the
 * route wrappers that follow each inference request from arrival to end,
 * and the resolving of a client's model name into the label it counts
 * under.
 */
#ifndef BRG_API_METRICS_H
#define BRG_API_METRICS_H

#include "api/api.h"
#include "obs/obs.h"

/*
 * GET /metrics: Prometheus' text format 0.0.4.  Behind the API key like
 * every /v1 endpoint when one is set (Prometheus sends it with
 * authorization: {credentials: KEY} in its scrape config).  The local
 * models' slot gauges are read from the engine as the scrape is made.
 */
void api_metrics(void *ud, struct http_exchange *x);

/* The route table's handlers for the inference endpoints: each follows
 * its request (obs_request_begin/end) around the real handler. */
void api_chat_completions_observed(void *ud, struct http_exchange *x);
void api_completions_observed(void *ud, struct http_exchange *x);
void api_embeddings_observed(void *ud, struct http_exchange *x);

/*
 * Ends request 'q' (NULL: this thread's) with 'f' — obs_request_finish —
 * after resolving f->model (a name as a client writes it: "local:phi-4",
 * "phi-4", "vllm:m") into the model id it counts under, unless f->model_id
 * is already set.  f is borrowed.
 */
void api_obs_finish(struct api *a, struct obs_request *q, struct obs_facts *f);

#endif
