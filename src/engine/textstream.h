/*
 * textstream.h — turns a sequence's raw token bytes into the text a client
 * may see: whole UTF-8 characters only, invalid bytes replaced by U+FFFD,
 * and stop strings cut out even when they span tokens.
 *
 * Pure and single-threaded (one per slot, owned by the scheduler thread);
 * no llama.cpp here, so it is unit-tested and fuzzed on its own.
 *
 * The rule: text is held back while it could still be the start of a stop
 * string or of a UTF-8 character; everything before that is released.  When
 * a stop string appears, the text before it is released and the stream
 * reports the stop; the stop string and everything after it never leave.
 */
#ifndef BRG_ENGINE_TEXTSTREAM_H
#define BRG_ENGINE_TEXTSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

struct textstream;

/*
 * Copies 'stops' (n_stops strings, each 1..GEN_STOP_MAX_LEN bytes; empty
 * strings are ignored).  NULL on out-of-memory.  textstream_free(NULL) is
 * a no-op.
 */
struct textstream *textstream_new(const char *const *stops, size_t n_stops);
void textstream_free(struct textstream *ts);

/*
 * Feeds the bytes of one token.  Appends to 'out' (caller's buffer of
 * capacity 'out_cap') the text that is now safe to release and sets
 * *out_len.  Returns true when a stop string was found: the stream is then
 * finished and later pushes release nothing.  out_cap must be at least
 * textstream_out_cap(ts, len) (room for U+FFFD expansion of every byte).
 */
bool textstream_push(struct textstream *ts, const char *bytes, size_t len, char *out,
                     size_t *out_len);
/* Bytes currently held back. */
size_t textstream_held(const struct textstream *ts);
/* A safe out_cap for a push of 'len' bytes. */
size_t textstream_out_cap(const struct textstream *ts, size_t len);
/*
 * End of generation without a stop: releases everything held, with an
 * incomplete trailing UTF-8 sequence replaced by U+FFFD.  Same out rules
 * with len = 0.
 */
void textstream_flush(struct textstream *ts, char *out, size_t *out_len);

#endif
