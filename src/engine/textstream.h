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
 * Copies 'stops' (n_stops strings, normally 1..GEN_STOP_MAX_LEN bytes; any
 * length works).  Empty strings and strings that are not valid UTF-8 are
 * ignored: the released text is always valid UTF-8, so they could never
 * occur in it.  NULL on out-of-memory.  textstream_free(NULL) is a no-op.
 */
struct textstream *textstream_new(const char *const *stops, size_t n_stops);
void textstream_free(struct textstream *ts);

/*
 * Feeds the bytes of one token (any length, any bytes).  Writes the text
 * that is now safe to release to out[0 .. *out_len) — whole, valid UTF-8
 * characters, not NUL-terminated; *out_len may be 0.  'out' must have room
 * for textstream_out_cap(ts, len) bytes (held text plus U+FFFD expansion of
 * every byte).  Returns true when a stop string was found: the text before
 * it has been released, the stream is finished, and later pushes (and
 * flush) release nothing and return false.  Can't fail; never allocates.
 *
 * Invalid UTF-8 becomes U+FFFD, one per maximal invalid subpart (the
 * WHATWG / Unicode "maximal subpart" rule: "\xE2\x82A" gives U+FFFD "A",
 * "\xFF\xFF" gives two); NUL becomes U+FFFD as well, so the text is always
 * a valid C string.  Stops match the text after replacement.  The stream
 * stops at the first byte where any stop is complete (the longest one if
 * several complete there), so the result does not depend on how the bytes
 * were split into tokens.
 */
bool textstream_push(struct textstream *ts, const char *bytes, size_t len, char *out,
                     size_t *out_len);
/* Bytes currently held back (input bytes of an unfinished character plus
 * text that may start a stop string). */
size_t textstream_held(const struct textstream *ts);
/*
 * A safe out capacity for a push of 'len' bytes (or flush, len = 0).  It
 * depends only on the stops and 'len', so a caller may size one buffer for
 * its largest token once.  SIZE_MAX when 'len' is absurdly large.
 */
size_t textstream_out_cap(const struct textstream *ts, size_t len);
/*
 * End of generation without a stop: releases everything held, with an
 * incomplete trailing UTF-8 sequence replaced by one U+FFFD (which, like
 * any text, is still checked against the stops).  Same out rules with
 * len = 0.  Afterwards the stream is finished: pushes and further flushes
 * release nothing.
 */
void textstream_flush(struct textstream *ts, char *out, size_t *out_len);

#endif
