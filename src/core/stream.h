/*
 * stream.h — the hand-off between producers of text (engine schedulers,
 * provider I/O threads) and the HTTP thread that answers one request.
 *
 * One gen_stream carries n_choices sequences.  Each choice has a sink that
 * producers call on their own thread; the sink appends text under a mutex
 * and signals an eventfd.  The consumer sleeps in poll() on that eventfd
 * (next to the client's socket, see http/), then takes what has arrived.
 * The stream also carries the request's cancel flag, which every producer
 * polls: setting it is how a vanished client stops its sequences.
 *
 * Lifetime: the consumer creates the stream, hands the sinks down, and may
 * free it only once every sink that was handed out has had its on_done
 * called (gen_stream_wait_all_done() does that after a cancel).
 */
#ifndef BRG_CORE_STREAM_H
#define BRG_CORE_STREAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/gen.h"

struct gen_stream;

/* NULL on out-of-memory or when no eventfd can be had. */
struct gen_stream *gen_stream_new(size_t n_choices, size_t max_text_bytes);
/* gen_stream_free(NULL) is a no-op.  See the lifetime rule above. */
void gen_stream_free(struct gen_stream *s);

/* The sink for choice i (i < n_choices); mark it handed out. */
struct sink gen_stream_sink(struct gen_stream *s, size_t i);
/* A sink that was handed out but whose producer failed to start (the
 * submit returned an error): records 'res' as its on_done would. */
void gen_stream_fail(struct gen_stream *s, size_t i, const struct gen_result *res);

/* The eventfd to poll for POLLIN; reading it is gen_stream_take's job. */
int gen_stream_fd(const struct gen_stream *s);
const atomic_bool *gen_stream_cancel_flag(const struct gen_stream *s);
void gen_stream_cancel(struct gen_stream *s);

/*
 * Clears the eventfd.  The consumer calls it once after each wake-up and
 * before taking from any choice, so a signal that arrives while it takes is
 * never lost.
 */
void gen_stream_ack(struct gen_stream *s);
/*
 * Moves choice i's text that has arrived so far onto the end of 'out'
 * (BRG_E_TOO_LARGE if out's cap is reached) and reports whether the choice
 * is done, copying its result into *res when it is.  Consumer thread only.
 */
enum brg_err gen_stream_take(struct gen_stream *s, size_t i, struct buf *out, bool *is_done,
                             struct gen_result *res);
/*
 * A side channel beside the choices' text: notes (orchestration step
 * events, already formatted by their producer) appended in order from any
 * thread before the choices' on_done, under the same cap as a choice's
 * text (BRG_E_TOO_LARGE: the note is dropped).  The consumer moves what
 * arrived onto 'out' with take_notes.
 */
enum brg_err gen_stream_note(struct gen_stream *s, const char *text, size_t len);
enum brg_err gen_stream_take_notes(struct gen_stream *s, struct buf *out);
/* True once every choice's on_done has been called. */
bool gen_stream_all_done(struct gen_stream *s);
/* Blocks until all_done; used after gen_stream_cancel() before freeing. */
void gen_stream_wait_all_done(struct gen_stream *s);

#endif
