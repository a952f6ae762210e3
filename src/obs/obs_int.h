/*
 * obs_int.h — what the files of obs/ share and nobody else sees: the
 * summary of one ended request, which request.c resolves from a request
 * and its facts, metrics.c counts and reqlog.c writes as a log line (and
 * request.c turns into its SERVER span); the JSON string writer reqlog.c
 * and otlp.c share.
 */
#ifndef BRG_OBS_INT_H
#define BRG_OBS_INT_H

#include "obs/obs.h"
#include "obs/trace.h"

/* One ended request, everything resolved.  Strings borrowed. */
struct obs_summary {
	enum obs_endpoint ep;
	int model;  /* label index; OBS_MODEL_OTHER for anything undeclared */
	int status; /* the HTTP status sent; 499 when none was */
	const char *request_id;
	const char *method;
	const char *path;
	const char *model_name; /* for the log: the label, else the client's name; may be NULL */
	const char *mode;       /* may be NULL */
	const char *trace_id;   /* 32 hex digits, or NULL */
	long long prompt_tokens;
	long long completion_tokens;
	double duration_s;
	double ttft_s;       /* < 0: not a successful generation */
	double tpot_s;       /* < 0: fewer than two tokens */
	double queue_wait_s; /* < 0: not observed (neither a 200 nor a reported wait) */
};

/* metrics.c: counts 's' (lock-free). */
void obs_record(const struct obs_summary *s);
/* metrics.c: "/v1/chat/completions" for OBS_CHAT... */
const char *obs_endpoint_path(enum obs_endpoint ep);

/* reqlog.c: writes the request's JSON line to stderr when the log level
 * lets it through; the prompts too with INFERENCE_LOG_PROMPTS=true. */
void obs_log_request(const struct obs_summary *s, const struct obs_facts *f);

/*
 * reqlog.c: appends 's' as a JSON string, escaped, taking at most *budget
 * bytes of it (cut on a UTF-8 character boundary) and charging them; NULL
 * is null; a byte that starts no valid UTF-8 character becomes U+FFFD.
 * Sets *is_cut when it had to cut.  budget NULL: no limit.  Errors: those
 * of buf_append.
 */
enum brg_err obs_json_str(struct buf *b, const char *s, size_t *budget, bool *is_cut);

/* trace.c: turns span recording on or off (otlp.c, at start and stop). */
void trace_set_enabled(bool on);

#endif
