/*
 * keys.h — the API keys file: many inbound keys, one per line, so that
 * each client or team has its own and one can be revoked without touching
 * the others.  The file is read at start-up and again whenever it changes
 * (noticed within a second of the next request), so keys rotate without a
 * restart.  A file that breaks after start-up keeps the last good keys.
 *
 * Format: one key per line; blank lines and lines starting with '#' are
 * skipped; spaces and tabs around a key are trimmed; a key may not contain
 * whitespace.
 */
#ifndef BRG_HTTP_KEYS_H
#define BRG_HTTP_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

struct http_keys;

/*
 * Reads 'path'.  Errors: BRG_E_CONFIG (missing or unreadable file, no key
 * in it, a line with whitespace inside a key: the message gives the line),
 * BRG_E_NOMEM.  On success *out is the caller's; http_keys_free() frees it.
 */
enum brg_err http_keys_open(const char *path, struct http_keys **out, struct brg_error *err);
void http_keys_free(struct http_keys *k);

/*
 * Whether 'presented' is one of the keys.  The comparison takes the same
 * time whichever key matches and wherever a mismatch is.  Rereads the file
 * first when it changed (checked at most once per second).  Thread-safe.
 */
bool http_keys_match(struct http_keys *k, const char *presented);

/* How many keys are in force now.  Thread-safe. */
size_t http_keys_count(struct http_keys *k);

#endif
