/*
 * jw.h — a JSON writer that appends straight into a struct buf.
 *
 * Building a response as a jansson tree and then serialising it cost a
 * malloc per key and value and a second pass over everything; a reply to a
 * relayed request spent more time there than anywhere else in brigade.
 * This writer emits the same compact JSON in one pass: it places commas
 * and colons itself, escapes strings as jansson does (", \, \b \f \n \r
 * \t, other controls as \u00XX in capitals, everything else raw UTF-8) and refuses
 * text that is not UTF-8.  Errors are sticky: after the first failure
 * every call does nothing and w->err says what went wrong, so a caller
 * writes a whole document and checks once.
 *
 *   struct jw w;
 *   jw_init(&w, &buf);
 *   jw_open(&w, '{');
 *   jw_key(&w, "id");  jw_str(&w, id);
 *   jw_key(&w, "n");   jw_int(&w, 3);
 *   jw_close(&w, '}');
 *   if (w.err) ...
 */
#ifndef BRG_CORE_JW_H
#define BRG_CORE_JW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"

#define JW_MAX_DEPTH 64

struct jw {
	struct buf *b;    /* borrowed */
	enum brg_err err; /* BRG_OK, BRG_E_BAD_REQUEST (text not UTF-8), BRG_E_TOO_LARGE,
	                     BRG_E_NOMEM or BRG_E_INTERNAL (misuse: too deep, unbalanced) */
	unsigned depth;
	uint64_t has_member; /* bit d: the container at depth d has one already */
	bool is_after_key;
};

void jw_init(struct jw *w, struct buf *b);
/* '{' or '['; jw_close with the matching bracket. */
void jw_open(struct jw *w, char bracket);
void jw_close(struct jw *w, char bracket);
/* An object member's name: a literal of the program's, written as is
 * (nothing in it needs escaping), never text from outside.  Inline so a
 * literal's length is known when compiling, not counted each time. */
void jw_keyn(struct jw *w, const char *key, size_t len);
static inline void jw_key(struct jw *w, const char *key)
{
	jw_keyn(w, key, strlen(key));
}
/* A string value; NULL writes null. */
void jw_str(struct jw *w, const char *s);
void jw_strn(struct jw *w, const char *s, size_t len);
void jw_int(struct jw *w, long long v);
/* A number as jansson writes a real (always with a '.' or an exponent);
 * NaN and infinities, which JSON cannot hold, write null. */
void jw_real(struct jw *w, double v);
/* The shortest decimal that reads back as f, written as a real; NaN and
 * infinities write null. */
void jw_float(struct jw *w, float f);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
/* A value that is already JSON (trusted, copied as is). */
void jw_raw(struct jw *w, const char *json, size_t len);

#endif
