/*
 * sse.h — incremental parsers for what remote backends stream back:
 * server-sent events (OpenAI-compatible servers) and newline-delimited JSON
 * (Ollama).  Bytes arrive in arbitrary pieces from libcurl; the parsers keep
 * what they need across pieces, with a cap, and hand out whole events.
 *
 * Pure, single-threaded, no I/O: unit-tested and fuzzed on their own.
 */
#ifndef BRG_PROVIDER_SSE_H
#define BRG_PROVIDER_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

/* Called once per complete event (SSE: the joined "data:" lines of one
 * event, without the trailing newline; NDJSON: one non-empty line).
 * 'data' is NUL-terminated (it may hold other NULs: trust 'len') and valid
 * only during the call.  Return nonzero to stop parsing (feed then returns
 * BRG_E_CANCELLED).  It must not feed or finish the parser that called it. */
typedef int (*sse_event_fn)(void *ud, const char *data, size_t len);

struct sse_parser;

/*
 * max_event_bytes caps one event (or one NDJSON line); a longer one makes
 * feed fail with BRG_E_TOO_LARGE.  A pending line may pass the cap only by
 * its framing (SSE's "data: ", NDJSON's trailing CR); a longer one fails as
 * soon as it passes that, before it ends.  Memory grows geometrically with
 * the largest event, never per byte.  is_ndjson selects the NDJSON framing.
 * NULL on out-of-memory; sse_parser_free(NULL) is a no-op.
 */
struct sse_parser *sse_parser_new(size_t max_event_bytes, bool is_ndjson);
void sse_parser_free(struct sse_parser *p);

/*
 * Feeds bytes; calls 'fn' for every event completed by them.  SSE rules
 * (WHATWG): lines end in LF, CRLF or CR; "data:" lines (one optional space
 * after the colon is dropped) accumulate, joined by LF; a blank line ends the
 * event; ":" comments and other fields (event, id, retry) are ignored; a
 * line without a colon is a field name with an empty value; an event with
 * no data lines is not reported.  A CR ending one piece and an LF starting
 * the next are one line ending.  NDJSON: lines end in LF (a trailing CR is
 * dropped) and blank lines are skipped.  A leading UTF-8 BOM is skipped,
 * however it is split.  The events do not depend on how the bytes were cut.
 * Errors: BRG_E_TOO_LARGE, BRG_E_CANCELLED, BRG_E_NOMEM; after any of them
 * the parser stays failed: later feeds and finish return the same error
 * without reading their input.
 */
enum brg_err sse_parser_feed(struct sse_parser *p, const char *bytes, size_t len, sse_event_fn fn,
                             void *ud);

/* End of input: NDJSON reports a last line without a newline; SSE drops
 * an unterminated event (the spec says so).  Same errors as feed.  On
 * BRG_OK the parser is back in its initial state, ready for a new stream. */
enum brg_err sse_parser_finish(struct sse_parser *p, sse_event_fn fn, void *ud);

#endif
