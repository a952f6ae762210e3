/*
 * trace.h — OpenTelemetry tracing (spec: Observability → OpenTelemetry
 * Tracing; docs/observability.md → Tracing): the W3C Trace Context header
 * that joins brigade's spans to a caller's trace and hands it on to
 * upstream providers, the spans themselves, and their export as OTLP/HTTP
 * JSON by one background thread.
 *
 * A span is opened where its work starts (struct trace_open: ids and start
 * time, a few dozen bytes the caller keeps) and built in full only where
 * it ends (struct trace_span, on the stack), then submitted: copied into a
 * bounded lock-free queue.  Submitting never blocks and never allocates; a
 * full queue drops the span and counts it.  The exporter thread encodes
 * and POSTs batches, so no request thread ever waits on the network or on
 * JSON for tracing.
 *
 * Off (the default, until trace_export_start()) every call here is a
 * branch on one flag: no ids, no clock reads, no copies.
 */
#ifndef BRG_OBS_TRACE_H
#define BRG_OBS_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define TRACE_PARENT_LEN  55 /* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define TRACE_PARENT_SIZE 56 /* with its NUL */
#define TRACE_ID_HEX      33 /* 32 hex digits and a NUL */
#define TRACE_NAME_MAX    64
#define TRACE_STR_MAX     80 /* a string attribute's bytes, NUL included; longer ones are cut */
#define TRACE_MAX_ATTRS   10

/* OTLP's SpanKind numbers. */
enum trace_kind { TRACE_INTERNAL = 1, TRACE_SERVER = 2, TRACE_CLIENT = 3 };
/* OTLP's StatusCode numbers. */
enum trace_status { TRACE_UNSET = 0, TRACE_OK = 1, TRACE_ERROR = 2 };

#define TRACE_FLAG_SAMPLED 0x01

/* A position in a trace: what one traceparent header carries. */
struct trace_ctx {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t flags; /* TRACE_FLAG_SAMPLED: the caller records this trace */
};

/* ---- W3C traceparent ---------------------------------------------------- */

/*
 * Parses a traceparent header: "version-traceid-parentid-flags" in
 * lowercase hex, 2-32-16-2 digits.  Refused (false, *out untouched):
 * NULL, a wrong length or separator, uppercase or other non-hex digits,
 * version ff, an all-zero trace or span id; version 00 with anything after
 * the flags.  A later version may carry more after a '-' (W3C: parse what
 * version 00 defines and ignore the rest).  Can't fail otherwise.
 */
bool trace_parse(const char *header, struct trace_ctx *out);
/* Writes c as a version-00 traceparent (TRACE_PARENT_LEN characters). */
void trace_format(const struct trace_ctx *c, char out[TRACE_PARENT_SIZE]);
/* Lowercase hex of n bytes into out (2n + 1 bytes, NUL included). */
void trace_hex(const uint8_t *bytes, size_t n, char *out);

/* ---- spans -------------------------------------------------------------- */

/* Whether spans are recorded (between trace_export_start and _stop).
 * Any thread; a relaxed load. */
bool trace_is_enabled(void);
/* Unix time in nanoseconds (CLOCK_REALTIME): span timestamps. */
long long trace_now_ns(void);
/* n random bytes, not all zero, from this thread's generator (seeded once
 * per thread from getrandom): no lock, no system call after the first. */
void trace_random(uint8_t *out, size_t n);

/* A span that has started: kept by whoever will end it. */
struct trace_open {
	struct trace_ctx ctx; /* its own: the trace, its span id, the flags */
	uint8_t parent_id[8]; /* all zero: the root of its trace */
	long long start_ns;   /* trace_now_ns() at the start */
	bool is_on;           /* false: nothing to end (tracing off, or not sampled) */
};

/*
 * Opens a span, now: a child of 'parent', or (parent NULL) the root of a
 * new, sampled trace.  Returns o->is_on: false when tracing is off or the
 * parent is not sampled (parent-based sampling: a caller that does not
 * record a trace gets no spans from us either).  Can't fail.
 */
bool trace_open(struct trace_open *o, const struct trace_ctx *parent);
/* trace_open() under the context of a traceparent header; a NULL or
 * invalid one opens nothing (the work belongs to no traced request). */
bool trace_open_child(struct trace_open *o, const char *traceparent);

struct trace_attr {
	const char *key; /* a string literal: never copied */
	bool is_int;
	long long i;
	char s[TRACE_STR_MAX];
};

/* A finished span, as the exporter sends it.  Plain data: copyable. */
struct trace_span {
	struct trace_ctx ctx;
	uint8_t parent_id[8];
	enum trace_kind kind;
	char name[TRACE_NAME_MAX];
	long long start_ns, end_ns;
	enum trace_status status;
	char message[TRACE_STR_MAX]; /* with TRACE_ERROR: why */
	size_t n_attrs;
	struct trace_attr attrs[TRACE_MAX_ATTRS];
};

/* Builds a span from 'o' (which must be on), ending now. */
void trace_span_init(struct trace_span *s, const struct trace_open *o, enum trace_kind kind,
                     const char *name);
/* Adds an attribute ('key' a string literal); NULL 'v' adds nothing, nor
 * does a full table.  Values longer than TRACE_STR_MAX - 1 are cut on a
 * UTF-8 character boundary. */
void trace_span_str(struct trace_span *s, const char *key, const char *v);
void trace_span_int(struct trace_span *s, const char *key, long long v);
/* Marks the span failed with 'message' (NULL: none). */
void trace_span_fail(struct trace_span *s, const char *message);

/* ---- export (otlp.c) ---------------------------------------------------- */

struct trace_export_opts {
	const char *endpoint;     /* base URL: spans go to <endpoint>/v1/traces */
	const char *service_name; /* resource attribute service.name */
	int queue_size;           /* spans waiting at most; rounded up to a power of two */
	int batch_size;           /* spans per POST at most */
	int interval_ms;          /* the longest a span waits for its batch */
	int timeout_ms;           /* per POST, and for the flush at stop */
};

/* endpoint NULL, service "inference-service", 2048 spans, batches of 512,
 * 1 s, 2 s. */
struct trace_export_opts trace_export_default_opts(void);

/*
 * Starts the exporter thread and turns tracing on.  Strings are copied.
 * Call from main, after curl_global_init; again only after
 * trace_export_stop().  Errors: BRG_E_CONFIG (no endpoint), BRG_E_INTERNAL
 * (already started), BRG_E_NOMEM, BRG_E_RESOURCE (no thread or eventfd).
 */
enum brg_err trace_export_start(const struct trace_export_opts *o, struct brg_error *err);
/* Turns tracing off, sends what is queued (at most timeout_ms in all),
 * stops the thread and frees the queue.  No-op when not started. */
void trace_export_stop(void);
/* Hands a finished span to the exporter (copied).  Never blocks: with the
 * queue full it is dropped and counted.  No-op when not started.  Any
 * thread. */
void trace_submit(const struct trace_span *s);

struct trace_export_stats {
	unsigned long long n_exported;      /* spans a receiver accepted (2xx) */
	unsigned long long n_dropped_full;  /* spans dropped: the queue was full */
	unsigned long long n_dropped_error; /* spans dropped: their POST failed */
};
/* Counters since the process started (they survive a stop).  Lock-free. */
void trace_export_get_stats(struct trace_export_stats *out);

/*
 * Appends an OTLP/HTTP JSON ExportTraceServiceRequest carrying spans[0..n)
 * of service 'service_name'.  Errors: BRG_E_TOO_LARGE (out's cap),
 * BRG_E_NOMEM.  The exporter's encoder; tests read it back.
 */
enum brg_err trace_otlp_json(struct buf *out, const char *service_name,
                             const struct trace_span *spans, size_t n);

#endif
