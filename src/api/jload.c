/*
 * jload.c — see jload.h.  Every path that is not plainly valid JSON
 * returns NULL from the fast reader; jload then asks jansson.
 */
#include "api/jload.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/jscan.h"
#include "core/utf8.h"

#define MAX_DEPTH  64 /* deeper is jansson's (it allows 2048) */
#define MAX_NUMBER 64

struct rd {
	const unsigned char *p, *end;
	char *tmp; /* decoded escaped strings; as long as the input */
	int depth;
};

static void skip_ws(struct rd *r)
{
	r->p = json_skip(r->p, r->end, JSON_WS);
}

static bool eat(struct rd *r, unsigned char ch)
{
	skip_ws(r);
	if (r->p < r->end && *r->p == ch) {
		r->p++;
		return true;
	}
	return false;
}

/*
 * A string at the cursor (blanks skipped).  Without escapes *s borrows
 * the input; with them it is decoded into r->tmp, which the next string
 * overwrites (so 'may_escape' is false for keys, which must outlive their
 * value).  An escape never decodes longer than it is written, so tmp, as
 * long as the input, always has room.
 */
static bool string(struct rd *r, const char **s, size_t *len, bool may_escape)
{
	if (!eat(r, '"'))
		return false;
	const unsigned char *start = r->p, *end = r->end;
	char *o = NULL;
	for (;;) {
		const unsigned char *q = json_skip(r->p, end, JSON_PLAIN);
		if (o) {
			memcpy(o, r->p, (size_t)(q - r->p));
			o += q - r->p;
		}
		r->p = q;
		if (q == end || *q < 0x20)
			return false;
		if (*q == '"') {
			r->p++;
			*s = o ? r->tmp : (const char *)start;
			*len = o ? (size_t)(o - r->tmp) : (size_t)(q - start);
			return true;
		}
		if (*q == '\\') {
			if (!may_escape)
				return false;
			if (!o) {
				memcpy(r->tmp, start, (size_t)(q - start));
				o = r->tmp + (q - start);
			}
			size_t n;
			size_t took = json_unescape(++r->p, end, (unsigned char *)o, &n);
			if (!took || (n == 1 && *o == '\0')) /* \u0000 is jansson's error */
				return false;
			r->p += took;
			o += n;
			continue;
		}
		size_t n = utf8_len(q, (size_t)(end - q)); /* q >= 0x80 */
		if (!n)
			return false;
		if (o) {
			memcpy(o, q, n);
			o += n;
		}
		r->p += n;
	}
}

static size_t digits(struct rd *r)
{
	const unsigned char *start = r->p;
	while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
		r->p++;
	return (size_t)(r->p - start);
}

/* A number by JSON's grammar, converted as jansson converts it (strtoll,
 * strtod); out of range is jansson's error. */
static json_t *number(struct rd *r)
{
	const unsigned char *start = r->p;
	bool is_real = false;
	if (r->p < r->end && *r->p == '-')
		r->p++;
	const unsigned char *int_start = r->p;
	size_t n_int = digits(r);
	if (!n_int || (n_int > 1 && *int_start == '0'))
		return NULL;
	if (r->p < r->end && *r->p == '.') {
		r->p++;
		if (!digits(r))
			return NULL;
		is_real = true;
	}
	if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
		r->p++;
		if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
			r->p++;
		if (!digits(r))
			return NULL;
		is_real = true;
	}
	size_t len = (size_t)(r->p - start);
	if (len >= MAX_NUMBER)
		return NULL;
	char text[MAX_NUMBER];
	memcpy(text, start, len);
	text[len] = '\0';
	errno = 0;
	if (!is_real) {
		long long v = strtoll(text, NULL, 10);
		return errno ? NULL : json_integer(v);
	}
	double d = strtod(text, NULL);
	return errno ? NULL : json_real(d);
}

static bool literal(struct rd *r, const char *word, size_t n)
{
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
		return false;
	r->p += n;
	return true;
}

static json_t *value(struct rd *r);

static json_t *object(struct rd *r)
{
	json_t *o = json_object();
	if (!o || eat(r, '}'))
		return o;
	do {
		const char *key;
		size_t key_len;
		if (!string(r, &key, &key_len, false) || !eat(r, ':') ||
		    json_object_getn(o, key, key_len))
			goto fail;
		json_t *v = value(r);
		if (!v || json_object_setn_new_nocheck(o, key, key_len, v))
			goto fail;
	} while (eat(r, ','));
	if (eat(r, '}'))
		return o;
fail:
	json_decref(o);
	return NULL;
}

static json_t *array(struct rd *r)
{
	json_t *a = json_array();
	if (!a || eat(r, ']'))
		return a;
	do {
		json_t *v = value(r);
		if (!v || json_array_append_new(a, v))
			goto fail;
	} while (eat(r, ','));
	if (eat(r, ']'))
		return a;
fail:
	json_decref(a);
	return NULL;
}

static json_t *value(struct rd *r)
{
	skip_ws(r);
	if (r->p >= r->end)
		return NULL;
	switch (*r->p) {
	case '"': {
		const char *s;
		size_t len;
		return string(r, &s, &len, true) ? json_stringn_nocheck(s, len) : NULL;
	}
	case '{':
	case '[': {
		if (++r->depth > MAX_DEPTH)
			return NULL;
		bool is_object = *r->p++ == '{';
		json_t *v = is_object ? object(r) : array(r);
		r->depth--;
		return v;
	}
	case 't':
		return literal(r, "true", 4) ? json_true() : NULL;
	case 'f':
		return literal(r, "false", 5) ? json_false() : NULL;
	case 'n':
		return literal(r, "null", 4) ? json_null() : NULL;
	default:
		return number(r);
	}
}

json_t *jload_fast(const char *s, size_t len)
{
	struct rd r = {(const unsigned char *)s, (const unsigned char *)s + len, NULL, 0};
	skip_ws(&r);
	if (r.p == r.end || (*r.p != '{' && *r.p != '[')) /* jansson wants one at the top */
		return NULL;
	char small[512];
	r.tmp = len <= sizeof small ? small : malloc(len);
	if (!r.tmp)
		return NULL;
	json_t *root = value(&r);
	skip_ws(&r);
	if (root && r.p != r.end) {
		json_decref(root);
		root = NULL;
	}
	if (r.tmp != small)
		free(r.tmp);
	return root;
}

json_t *jload(const char *s, size_t len, json_error_t *err)
{
	json_t *root = jload_fast(s, len);
	return root ? root : json_loadb(s, len, JSON_REJECT_DUPLICATES, err);
}
