/*
 * wire_int.h — what wire.c shares with wire_logprobs.c: the jansson-level
 * helpers behind wire.h.  Private to src/provider/wire*.c (jansson stays
 * out of wire.h).
 */
#ifndef BRG_PROVIDER_WIRE_INT_H
#define BRG_PROVIDER_WIRE_INT_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

/*
 * Reads a choice's "logprobs" value (v: the value, may be NULL) into *sum
 * and *n: the sum of the natural-log probabilities it carries and how many
 * there were.  Both shapes are read, whichever endpoint sent them: chat's
 * {"content": [{"logprob": x, ...}, ...]} and legacy completions'
 * {"token_logprobs": [x, null, ...]}.  Lenient: the numbers feed a
 * confidence, never the answer, so anything odd is skipped, not refused —
 * a missing or null value, a value of the wrong type, an entry without a
 * finite number.  A log-probability above 0 (a rounding error upstream)
 * counts as 0, one below -9999 (vLLM's stand-in for -inf) as -9999, so
 * the sum stays finite.  This function can't fail; *sum 0 and *n 0 when nothing
 * was read.
 */
void wire_logprobs_sum(json_t *v, double *sum, int *n);

/* wire.c's jansson helpers, shared with wire_embed.c. */
/* Copies a message into dst (cap bytes), cut at a character boundary,
 * invalid UTF-8 dropped. */
void wire_copy_utf8(char *dst, size_t cap, const char *msg, size_t len);
/* A token count from JSON: a non-negative integer, else 0. */
int wire_count_of(json_t *v);
/* Whether root is an upstream error object; its message into dst. */
bool wire_error_object(json_t *root, char *dst, size_t cap);
/* Serializes and frees root (whatever err says); *out is malloc'd. */
enum brg_err wire_finish_body(json_t *root, enum brg_err err, char **out);
/* Sets obj[key] = v (stolen); BRG_E_NOMEM when v is NULL. */
enum brg_err wire_put(json_t *obj, const char *key, json_t *v);
/* obj[key] = s as a JSON string (invalid UTF-8 refused). */
enum brg_err wire_put_string(json_t *obj, const char *key, const char *s);
/* A JSON string of s; BRG_E_BAD_REQUEST for invalid UTF-8. */
enum brg_err wire_string_of(const char *s, json_t **out);
/* Formats a message into dst (cap bytes) as wire_copy_utf8 copies. */
void wire_vsay(char *dst, size_t cap, const char *fmt, va_list ap);

#endif
