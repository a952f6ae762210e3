/*
 * wire_fast.c — the common OpenAI-compatible streaming chunk, decoded
 * without building a document (see wire_decode_openai_fast in wire.h).
 *
 * A gateway request relays a handful of chunks, and parsing each into a
 * jansson tree (a malloc per key and value, a hash table per object) was
 * the largest single cost of relaying a request.  This decoder walks the
 * bytes once, allocates nothing and borrows the content from the chunk
 * when it has no escapes.  It only knows the everyday shape — one choice,
 * a delta or text, a finish reason, usage, no log-probabilities — and
 * says "not mine" for anything else (an error event, several choices,
 * logprobs, a real number, a repeated key, an escaped key, deep nesting,
 * a string longer than the scratch space), which wire_decode_openai then
 * reads.  For every chunk it accepts it must give exactly what
 * wire_decode_openai gives; fuzz_upstream.c checks that on every input.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "core/jscan.h"
#include "core/utf8.h"
#include "provider/wire.h"

#define MAX_DEPTH 32

struct scan {
	const unsigned char *p, *end;
	char *scratch; /* decoded escaped strings */
	size_t cap, used;
	bool is_dry; /* checking a string only: put() keeps nothing */
};

/* A string value: where its bytes are (borrowed from the chunk or
 * decoded into the scratch space) and whether it had escapes. */
struct str {
	const char *s;
	size_t len;
	bool has_escape;
};

static void skip_ws(struct scan *c)
{
	c->p = json_skip(c->p, c->end, JSON_WS);
}

static bool eat(struct scan *c, char ch)
{
	skip_ws(c);
	if (c->p < c->end && *c->p == (unsigned char)ch) {
		c->p++;
		return true;
	}
	return false;
}

/* One UTF-8 character starting at a byte >= 0x80, by jansson's rules
 * (which are core/utf8.h's). */
static bool utf8_step(struct scan *c)
{
	size_t n = utf8_len(c->p, (size_t)(c->end - c->p));
	c->p += n;
	return n > 0;
}

static bool put(struct scan *c, const void *bytes, size_t n)
{
	if (c->is_dry)
		return true;
	if (c->cap - c->used < n)
		return false;
	memcpy(c->scratch + c->used, bytes, n);
	c->used += n;
	return true;
}

/* One escape after the backslash, decoded into the scratch space. */
static bool unescape(struct scan *c)
{
	unsigned char u[4];
	size_t n, took = json_unescape(c->p, c->end, u, &n);
	c->p += took;
	return took && put(c, u, n);
}

/* A string at the cursor (after optional blanks).  Without escapes it is
 * borrowed from the chunk; with them it is decoded into the scratch space
 * when 'decode', else only checked (out->s is then meaningless). */
static bool string(struct scan *c, struct str *out, bool decode)
{
	skip_ws(c);
	if (c->p >= c->end || *c->p != '"')
		return false;
	const unsigned char *start = ++c->p;
	size_t mark = c->used;
	out->has_escape = false;
	c->is_dry = !decode;
	while (c->p < c->end) {
		/* The run of plain ASCII up to the next quote, backslash, control
		 * or non-ASCII byte, in one step. */
		const unsigned char *q = json_skip(c->p, c->end, JSON_PLAIN);
		if (out->has_escape && !put(c, c->p, (size_t)(q - c->p)))
			return false;
		c->p = q;
		if (c->p == c->end)
			break;
		unsigned char b = *c->p;
		if (b == '"') {
			if (out->has_escape) {
				out->s = c->scratch + mark;
				out->len = c->used - mark;
			} else {
				out->s = (const char *)start;
				out->len = (size_t)(c->p - start);
			}
			c->p++;
			return true;
		}
		if (b < 0x20)
			return false;
		if (b == '\\') {
			if (!out->has_escape && !put(c, start, (size_t)(c->p - start)))
				return false;
			out->has_escape = true;
			c->p++;
			if (!unescape(c))
				return false;
		} else { /* b >= 0x80 */
			const unsigned char *lead = c->p;
			if (!utf8_step(c) ||
			    (out->has_escape && !put(c, lead, (size_t)(c->p - lead))))
				return false;
		}
	}
	return false;
}

/* A number: only integers of at most 18 digits are ours (*v gets it);
 * reals and longer ones, which jansson may refuse or round, are not. */
static bool integer(struct scan *c, long long *v)
{
	skip_ws(c);
	bool is_neg = c->p < c->end && *c->p == '-';
	c->p += is_neg;
	const unsigned char *start = c->p;
	long long n = 0;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		if (c->p - start == 18)
			return false; /* a 19th digit could overflow */
		n = n * 10 + (*c->p++ - '0');
	}
	size_t digits = (size_t)(c->p - start);
	if (digits == 0 || (digits > 1 && *start == '0'))
		return false;
	if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E'))
		return false;
	*v = is_neg ? -n : n;
	return true;
}

static bool literal(struct scan *c, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
		return false;
	c->p += n;
	return true;
}

static bool is_null(struct scan *c)
{
	skip_ws(c);
	return literal(c, "null");
}

static bool value(struct scan *c, int depth);

/* The members of an object or the elements of an array, after the
 * opening bracket. */
static bool members(struct scan *c, int depth, bool is_object)
{
	char close = is_object ? '}' : ']';
	if (eat(c, close))
		return true;
	do {
		struct str key;
		/* jansson refuses some escaped keys ("\u0000"); not ours */
		if (is_object && (!string(c, &key, false) || key.has_escape || !eat(c, ':')))
			return false;
		if (!value(c, depth + 1))
			return false;
	} while (eat(c, ','));
	return eat(c, close);
}

/* Any value, checked and skipped. */
static bool value(struct scan *c, int depth)
{
	skip_ws(c);
	if (c->p >= c->end || depth > MAX_DEPTH)
		return false;
	struct str s;
	long long v;
	switch (*c->p) {
	case '{':
	case '[':
		return members(c, depth, *c->p++ == '{');
	case '"':
		return string(c, &s, false);
	case 't':
		return literal(c, "true");
	case 'f':
		return literal(c, "false");
	case 'n':
		return literal(c, "null");
	default:
		return integer(c, &v);
	}
}

/* Walks an object's members, handing each key to 'on_key' with the
 * cursor at its value; on_key consumes the value or returns false. */
typedef bool (*key_fn)(struct scan *c, const struct str *key, void *ud, unsigned *seen);

static bool object(struct scan *c, key_fn on_key, void *ud)
{
	if (!eat(c, '{'))
		return false;
	if (eat(c, '}'))
		return true;
	unsigned seen = 0;
	do {
		struct str key;
		if (!string(c, &key, false) || key.has_escape || !eat(c, ':'))
			return false;
		if (!on_key(c, &key, ud, &seen))
			return false;
	} while (eat(c, ','));
	return eat(c, '}');
}

static bool key_is(const struct str *k, const char *name)
{
	return k->len == strlen(name) && memcmp(k->s, name, k->len) == 0;
}

/* Marks key 'bit' seen; a key seen twice is not ours (jansson keeps the
 * last one; this decoder would have acted on the first). */
static bool first_time(unsigned *seen, unsigned bit)
{
	if (*seen & bit)
		return false;
	*seen |= bit;
	return true;
}

struct choice {
	struct wire_delta *out;
	bool has_delta;
	struct str delta_text, text;
	bool has_delta_text, has_text;
};

/* A text field: null leaves it unset; a string is kept. */
static bool text_field(struct scan *c, struct str *s, bool *has)
{
	if (is_null(c))
		return true;
	*has = true;
	return string(c, s, true);
}

static bool on_delta_key(struct scan *c, const struct str *key, void *ud, unsigned *seen)
{
	struct choice *ch = ud;
	if (key_is(key, "content"))
		return first_time(seen, 1) && text_field(c, &ch->delta_text, &ch->has_delta_text);
	return value(c, 3);
}

static bool on_choice_key(struct scan *c, const struct str *key, void *ud, unsigned *seen)
{
	struct choice *ch = ud;
	long long v;
	if (key_is(key, "index")) {
		if (!first_time(seen, 1) || !integer(c, &v) || v < 0 || v > INT_MAX)
			return false;
		ch->out->index = (int)v;
		return true;
	}
	if (key_is(key, "delta")) {
		if (!first_time(seen, 2))
			return false;
		if (is_null(c))
			return true;
		ch->has_delta = true;
		return object(c, on_delta_key, ch);
	}
	if (key_is(key, "text"))
		return first_time(seen, 4) && text_field(c, &ch->text, &ch->has_text);
	if (key_is(key, "finish_reason")) {
		struct str r;
		if (!first_time(seen, 8))
			return false;
		if (is_null(c))
			return true;
		if (!string(c, &r, false) || r.has_escape)
			return false;
		ch->out->has_finish = true;
		ch->out->finish = key_is(&r, "length") ? GEN_FINISH_LENGTH : GEN_FINISH_STOP;
		return true;
	}
	if (key_is(key, "logprobs"))
		return is_null(c);
	return value(c, 2);
}

/* "choices": null, [] or [one object]. */
static bool choices(struct scan *c, struct wire_delta *out, size_t *n_choices)
{
	if (is_null(c))
		return true;
	if (!eat(c, '['))
		return false;
	if (eat(c, ']'))
		return true;
	struct choice ch = {.out = out};
	out->index = 0;
	if (!object(c, on_choice_key, &ch) || !eat(c, ']'))
		return false;
	*n_choices = 1;
	const struct str *t = ch.has_delta ? &ch.delta_text : &ch.text;
	if (ch.has_delta ? ch.has_delta_text : ch.has_text) {
		out->text = t->s;
		out->text_len = t->len;
	}
	return true;
}

/* A count as wire_count_of reads it: a positive integer, else 0. */
static bool count(struct scan *c, int *n)
{
	skip_ws(c);
	long long v;
	if (c->p < c->end && (*c->p == '-' || (*c->p >= '0' && *c->p <= '9'))) {
		if (!integer(c, &v))
			return false;
		*n = v <= 0 ? 0 : v >= INT_MAX ? INT_MAX : (int)v;
		return true;
	}
	*n = 0;
	return value(c, 2);
}

static bool on_usage_key(struct scan *c, const struct str *key, void *ud, unsigned *seen)
{
	struct wire_delta *out = ud;
	if (key_is(key, "prompt_tokens"))
		return first_time(seen, 1) && count(c, &out->n_prompt);
	if (key_is(key, "completion_tokens"))
		return first_time(seen, 2) && count(c, &out->n_completion);
	return value(c, 2);
}

struct top {
	struct wire_delta *out;
	size_t *n_choices;
};

static bool on_top_key(struct scan *c, const struct str *key, void *ud, unsigned *seen)
{
	struct top *t = ud;
	if (key_is(key, "choices"))
		return first_time(seen, 1) && choices(c, t->out, t->n_choices);
	if (key_is(key, "usage")) {
		if (!first_time(seen, 2))
			return false;
		if (is_null(c))
			return true;
		t->out->has_usage = true;
		return object(c, on_usage_key, t->out);
	}
	if (key_is(key, "error"))
		return is_null(c); /* an error event is the general decoder's */
	if (key_is(key, "object")) {
		struct str s;
		return first_time(seen, 4) && string(c, &s, false) && !s.has_escape &&
		       !key_is(&s, "error");
	}
	return value(c, 1);
}

bool wire_decode_openai_fast(const char *data, size_t len, size_t *n_choices,
                             struct wire_delta *out, char *scratch, size_t cap)
{
	struct scan c = {
	    (const unsigned char *)data, (const unsigned char *)data + len, scratch, cap, 0, false};
	memset(out, 0, sizeof *out);
	out->index = -1;
	*n_choices = 0;
	struct top t = {out, n_choices};
	if (!object(&c, on_top_key, &t))
		return false;
	skip_ws(&c);
	return c.p == c.end;
}
