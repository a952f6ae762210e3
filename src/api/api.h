/*
 * api.h — brigade's endpoints: the OpenAI surface (/v1/chat/completions,
 * /v1/completions, /v1/models...) and brigade's own (load/unload, health).
 * api/ turns JSON into the internal request structs (jansson), validates
 * them, hands them to orchestrate/, and encodes what comes back — JSON or
 * SSE.  It never talks to llama.cpp.
 */
#ifndef BRG_API_API_H
#define BRG_API_API_H

#include <stdbool.h>
#include <stddef.h>

#include "http/http.h"
#include "route/route.h"

struct api_opts {
	int request_timeout_s;   /* end to end, queue included: then 504 (docs/admission.md) */
	size_t max_output_bytes; /* per choice */
	const char *config_name; /* preset name shown by /health/ready, or NULL */
	/* Auto-routing as configured (docs/routing.md), shown by
	 * /v1/health/inference; strategy NULL: not shown. */
	bool is_auto_route;
	const char *auto_route_strategy;
	bool is_auto_route_fallback;
};

struct fallback;
struct admit;

struct api {
	struct router *router;     /* borrowed */
	struct orchestrator *orch; /* borrowed */
	struct fallback *fallback; /* borrowed; may be NULL */
	struct admit *admit;       /* borrowed; NULL: no admission control (admit/admit.h) */
	struct api_opts opts;
};

/* The routing table to pass to http_server_start with the struct api as ud. */
const struct http_route *api_routes(size_t *n);
/* The http_error_fn for http_server_start. */
void api_on_http_error(void *ud, struct http_exchange *x, enum brg_err code, const char *message);
/* The route_load_fn for router_set_load() (ud: the struct api): requests
 * running or queued for the model in admission. */
int api_route_load(void *ud, const struct route_target *t);

#endif
