/*
 * err.h — brigade's one error table.
 *
 * Every fallible function returns enum brg_err.  The table below is the
 * spec's exception hierarchy (spec: Error Handling) turned into data: each
 * row gives the enum value, the HTTP status a client sees, the spec's error
 * code string, and whether a retry may succeed ("retriable" vs
 * "non_retriable" in the JSON body).  api/ turns a row plus a struct
 * brg_error into the spec's JSON error body; nothing else maps errors to
 * statuses.
 */
#ifndef BRG_CORE_ERR_H
#define BRG_CORE_ERR_H

#include <stdarg.h>
#include <stddef.h>

/*      enum                  http  spec code                    retriable */
#define BRG_ERRORS(X)                                                 \
	X(BRG_OK, 200, "OK", 0)                                       \
	X(BRG_E_BAD_REQUEST, 400, "INVALID_REQUEST", 0)               \
	X(BRG_E_BAD_JSON, 400, "INVALID_JSON", 0)                     \
	X(BRG_E_CONTEXT_BUDGET, 400, "CONTEXT_BUDGET_EXCEEDED", 0)    \
	X(BRG_E_UNAUTHORIZED, 401, "UNAUTHORIZED", 0)                 \
	X(BRG_E_NOT_FOUND, 404, "NOT_FOUND", 0)                       \
	X(BRG_E_MODEL_NOT_FOUND, 404, "MODEL_NOT_FOUND", 0)           \
	X(BRG_E_METHOD, 405, "METHOD_NOT_ALLOWED", 0)                 \
	X(BRG_E_TOO_LARGE, 413, "PAYLOAD_TOO_LARGE", 0)               \
	X(BRG_E_MEDIA_TYPE, 415, "UNSUPPORTED_MEDIA_TYPE", 0)         \
	X(BRG_E_HANDOFF_INVALID, 422, "HANDOFF_STATE_INVALID", 0)     \
	X(BRG_E_COMPRESSION, 422, "COMPRESSION_FAILED", 0)            \
	X(BRG_E_INTERNAL, 500, "INTERNAL_ERROR", 0)                   \
	X(BRG_E_ORCHESTRATION, 500, "ORCHESTRATION_FAILED", 0)        \
	X(BRG_E_MODEL_LOAD, 500, "MODEL_LOAD_FAILED", 0)              \
	X(BRG_E_NOT_IMPLEMENTED, 501, "MODE_NOT_AVAILABLE", 0)        \
	X(BRG_E_MODEL_BUSY, 503, "MODEL_BUSY", 1)                     \
	X(BRG_E_MODEL_LOADING, 503, "MODEL_LOADING", 1)               \
	X(BRG_E_RESOURCE, 503, "TEMPORARY_RESOURCE_ERROR", 1)         \
	X(BRG_E_SHUTTING_DOWN, 503, "SHUTTING_DOWN", 1)               \
	X(BRG_E_TIMEOUT, 504, "TIMEOUT", 1)                           \
	X(BRG_E_RATE_LIMITED, 429, "RATE_LIMITED", 1)                 \
	X(BRG_E_UPSTREAM, 502, "UPSTREAM_ERROR", 1)                   \
	X(BRG_E_UPSTREAM_AUTH, 502, "UPSTREAM_AUTH_FAILED", 0)        \
	X(BRG_E_UPSTREAM_TIMEOUT, 504, "UPSTREAM_TIMEOUT", 1)         \
	X(BRG_E_PROVIDER_UNAVAILABLE, 503, "PROVIDER_UNAVAILABLE", 1) \
	X(BRG_E_CANCELLED, 499, "CLIENT_CLOSED_REQUEST", 0)           \
	X(BRG_E_CONFIG, 500, "CONFIG_ERROR", 0)                       \
	X(BRG_E_NOMEM, 503, "OUT_OF_MEMORY", 1)

enum brg_err {
#define BRG_ERR_ENUM(e, status, code, retriable) e,
	BRG_ERRORS(BRG_ERR_ENUM)
#undef BRG_ERR_ENUM
	    BRG_ERR__COUNT
};

/* The HTTP status for 'e'.  Can't fail; an out-of-range value gives 500. */
int brg_err_http_status(enum brg_err e);
/* The spec's error code string ("MODEL_NOT_FOUND").  Static storage. */
const char *brg_err_code(enum brg_err e);
/* Whether a retry may succeed (the spec's RetriableError family). */
int brg_err_is_retriable(enum brg_err e);

/*
 * The detail that travels with an error to the client: a message and up to
 * BRG_ERR_MAX_DETAILS typed key/value pairs (the spec body's "details").
 * Caller-allocated, usually one per request; fixed size so that filling it
 * can never fail.
 */
#define BRG_ERR_MAX_DETAILS 8
#define BRG_ERR_MSG_MAX     512

enum brg_detail_kind { BRG_DETAIL_INT, BRG_DETAIL_STR, BRG_DETAIL_BOOL };

struct brg_detail {
	const char *key; /* static storage */
	enum brg_detail_kind kind;
	long long i;
	char s[128];
};

struct brg_error {
	enum brg_err code;
	char message[BRG_ERR_MSG_MAX];
	size_t n_details;
	struct brg_detail details[BRG_ERR_MAX_DETAILS];
	int retry_after_ms; /* retriable errors only; 0 = default */
};

/* Resets 'e' to BRG_OK with no message.  'e' may be NULL. */
void brg_error_clear(struct brg_error *e);
/*
 * Sets code and printf-style message and returns 'code', so a caller can
 * write `return brg_fail(err, BRG_E_BAD_REQUEST, "n must be >= 1");`.
 * 'e' may be NULL (the code is still returned).  Earlier details are kept.
 */
enum brg_err brg_fail(struct brg_error *e, enum brg_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends a detail; silently drops it when the table is full. */
void brg_error_detail_int(struct brg_error *e, const char *key, long long v);
void brg_error_detail_str(struct brg_error *e, const char *key, const char *v);
void brg_error_detail_bool(struct brg_error *e, const char *key, int v);

#endif
