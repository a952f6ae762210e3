/*
 * obs.h — brigade's observability: the process-wide metrics registry that
 * GET /metrics renders in Prometheus' text format 0.0.4, and the one JSON
 * log line written when each inference request ends (docs/observability.md).
 *
 * The registry is the one piece of global mutable state DESIGN.md allows
 * outside main.c.  Every value is a C11 atomic: recording a request, a
 * token count or a gauge change takes no lock.  Names (models, providers)
 * are declared once, at start-up, from the configuration; a name nobody
 * declared — a client's free text — is counted under model="other" and
 * never makes a series of its own, so a scrape's size is bounded by the
 * configuration, not by the clients.
 *
 * A request is followed from api/'s route wrapper to its end:
 *
 *   obs_request_begin()      the wrapper, before the handler (this thread)
 *   obs_request_status()     api/'s reply functions: the status sent
 *   obs_request_detach()     a streamed reply takes the request along
 *   obs_request_finish()     the handler or the stream, with the facts
 *   obs_request_end()        the wrapper, after the handler
 *
 * The request in progress lives in thread-local storage of the HTTP
 * connection's thread (one request at a time per thread: http/'s
 * thread-per-connection mode); a stream that outlives its handler carries
 * a heap copy.  Ending a request records its metrics and writes its line.
 */
#ifndef BRG_OBS_OBS_H
#define BRG_OBS_OBS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/gen.h"
#include "obs/trace.h"

#define OBS_MAX_MODELS    64             /* declared model names; more share "other" */
#define OBS_MAX_PROVIDERS 16             /* as many as the fallback chain holds */
#define OBS_MODEL_OTHER   OBS_MAX_MODELS /* the label of every undeclared name */
#define OBS_NAME_MAX      128            /* longer names are not declared */

#define OBS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The endpoints whose requests are counted; their paths are the label. */
enum obs_endpoint { OBS_CHAT, OBS_COMPLETIONS, OBS_EMBEDDINGS, OBS_N_ENDPOINTS };

/* Microseconds on CLOCK_MONOTONIC: the clock of every duration here. */
long long obs_now_us(void);

/* ---- names -------------------------------------------------------------- */

/*
 * Declares 'id' (a configured model, never a client's text) as a label
 * value; is_local: served by the embedded engine (it then has
 * model_loaded, KV and slot gauges).  Declaring again only adds
 * is_local.  Silently ignored when the table is full or the name is
 * longer than OBS_NAME_MAX.  Thread-safe.
 */
void obs_model_declare(const char *id, bool is_local);
/* The label index of a declared id; OBS_MODEL_OTHER for NULL or anything
 * undeclared.  Lock-free. */
int obs_model_id(const char *id);
/* Declares a provider (by its name) with its first up state; returns its
 * index for obs_provider_up and obs_fallback, -1 when the table is full.
 * Declaring a name again returns the same index. */
int obs_provider_declare(const char *name, bool is_up);

/* ---- events (lock-free; any thread) ------------------------------------- */

/* A local model finished loading in 'seconds' (declares it local), or
 * was unloaded. */
void obs_model_loaded(const char *id, double seconds);
void obs_model_unloaded(const char *id);
/* A loaded local model's slots right now: n_busy of n_slots hold a
 * sequence (both 0 when it is not loaded), which fill the share
 * kv_usage (0-1) of its KV cells.  Set at scrape time. */
void obs_model_slots(const char *id, int n_busy, int n_slots, double kv_usage);
/* A local model's engine counters since the server started (every load
 * added up): prompt tokens decoded and reused from cached KV cells,
 * prefixes copied between slots, prompts and tokens the prefill helper
 * took.  Set at scrape time. */
struct obs_engine_counts {
	uint64_t prompt_decoded, prompt_reused, kv_copies, helper_prompts, helper_tokens;
};
void obs_model_engine(const char *id, const struct obs_engine_counts *c);
/* Sequences started on a provider for 'model' (a label index), and
 * their end (negative delta): brigade_num_requests_running. */
void obs_running_add(int model, int delta);
/* Requests waiting for admission for 'model' (a label index): the
 * admission queue's hook into brigade_num_requests_waiting. */
void obs_waiting_add(int model, int delta);
/* The health check's verdict on provider 'provider' (an index from
 * obs_provider_declare; -1 is ignored). */
void obs_provider_up(int provider, bool is_up);
/* The fallback chain moved on from provider 'from' to 'to'. */
void obs_fallback(int from, int to);

/* ---- requests ----------------------------------------------------------- */

struct obs_request;

/*
 * What the handler knows when its request ends.  Every pointer is
 * borrowed for the call; any field may be left 0/NULL.
 */
struct obs_facts {
	const char *request_id; /* NULL: obs makes one up ("req-N") */
	const char *model;      /* as the client wrote it: for the log line */
	const char *model_id;   /* the declared id it resolved to: the label */
	const char *mode;       /* orchestration mode name */
	/* The status of a reply sent without api/'s reply functions (a
	 * streamed one, raw bytes); used when none was noted.  0: none was
	 * sent — the client went away (499). */
	int status;
	long long prompt_tokens;
	long long completion_tokens;
	int max_choice_tokens; /* the longest choice's tokens: per-token time */
	long long t_first_us;  /* obs_now_us() when the first text arrived; 0: none */
	double queue_wait_s;   /* time spent waiting for admission (observed when > 0 or 200) */
	const struct chat_msg *msgs; /* logged with INFERENCE_LOG_PROMPTS=true only */
	size_t n_msgs;
	const char *const *prompts; /* raw prompts (completions), likewise */
	size_t n_prompts;
};

/*
 * Starts following a request on this thread.  'method' and 'path' are
 * copied (truncated); 'traceparent' is the W3C header or NULL.  With
 * tracing on (trace.h) the request gets a SERVER span: a child of a valid
 * 'traceparent', else the root of a new trace.  The log line carries the
 * trace's id.
 */
void obs_request_begin(enum obs_endpoint ep, const char *method, const char *path,
                       const char *traceparent);
/*
 * The traceparent that calls made for this thread's request carry
 * upstream (gen_request.traceparent): its SERVER span's context when it
 * is traced, else a valid incoming one passed on as it came (version 00).
 * False, with out "", when there is neither.  Copy it: it belongs to this
 * thread's request.
 */
bool obs_request_traceparent(char out[TRACE_PARENT_SIZE]);
/* Whether this thread's request has a SERVER span. */
bool obs_request_is_traced(void);
/*
 * A queue wait of this thread's request: _begin() when the request starts
 * to wait returns a start time (0 when no request is followed here: then
 * _end() does nothing); _end() adds the wait to the request's
 * queue_wait_seconds and, when it is traced, submits an INTERNAL span
 * "queue wait" with the wait's 'outcome' (BRG_OK: admitted).
 */
long long obs_queue_wait_begin(void);
void obs_queue_wait_end(long long start_ns, enum brg_err outcome);
/* Notes the HTTP status of this thread's request's reply; the first one
 * noted counts.  No-op when no request is followed here. */
void obs_request_status(int status);
/*
 * Hands this thread's request to a streamed reply that outlives the
 * handler (status 200): returns a heap copy that obs_request_finish()
 * frees, or NULL (nothing followed, or out of memory: then nothing is
 * recorded).
 */
struct obs_request *obs_request_detach(void);
/*
 * Ends request 'q' (NULL: this thread's) with 'f' (NULL: no facts — it
 * failed before a handler knew anything): records its metrics and writes
 * its log line.  A request ends once; later calls are no-ops.  Takes
 * ownership of a detached 'q'.
 */
void obs_request_finish(struct obs_request *q, const struct obs_facts *f);
/* Stops following this thread's request, finishing it without facts if
 * nobody did and it was not detached. */
void obs_request_end(void);

/* ---- exposition --------------------------------------------------------- */

/* Appends every metric in the text format 0.0.4.  Errors: BRG_E_TOO_LARGE
 * (out's cap), BRG_E_NOMEM. */
enum brg_err obs_render(struct buf *out);

/* Whether INFERENCE_LOG_PROMPTS=true (read once from the environment). */
bool obs_log_prompts(void);

/* For tests: forgets every name and zeroes every metric.  No other thread
 * may use obs meanwhile. */
void obs_reset(void);

#endif
