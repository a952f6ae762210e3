/*
 * trace.c — the W3C traceparent header, span ids and spans (trace.h).
 * The exporter is otlp.c.
 *
 * Ids come from a per-thread xorshift128+ generator seeded from getrandom()
 * the first time a thread needs one: trace and span ids must be unique,
 * not secret (W3C Trace Context §"Privacy"), and a request thread must not
 * take a lock or make a system call for each span.
 */
#include "obs/obs_int.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static atomic_bool is_enabled;

bool trace_is_enabled(void)
{
	return atomic_load_explicit(&is_enabled, memory_order_relaxed);
}

void trace_set_enabled(bool on)
{
	atomic_store(&is_enabled, on);
}

long long trace_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- ids ---------------------------------------------------------------- */

static _Thread_local uint64_t rng[2];

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void seed(void)
{
	uint64_t s = 0;
	if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s) {
		/* No entropy (very early boot): the clock and this thread's
		 * address still differ between threads and processes. */
		s = (uint64_t)trace_now_ns() ^ (uint64_t)(uintptr_t)&rng;
	}
	rng[0] = splitmix(&s);
	rng[1] = splitmix(&s);
	if (!rng[0] && !rng[1])
		rng[1] = 1;
}

static uint64_t next(void)
{
	if (!rng[0] && !rng[1])
		seed();
	uint64_t s1 = rng[0];
	const uint64_t s0 = rng[1];
	rng[0] = s0;
	s1 ^= s1 << 23;
	rng[1] = s1 ^ s0 ^ (s1 >> 18) ^ (s0 >> 5);
	return rng[1] + s0;
}

static bool is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

void trace_random(uint8_t *out, size_t n)
{
	do {
		for (size_t i = 0; i < n; i += 8) {
			uint64_t v = next();
			memcpy(out + i, &v, n - i < 8 ? n - i : 8);
		}
	} while (is_zero(out, n)); /* W3C: an all-zero id is invalid */
}

/* ---- traceparent -------------------------------------------------------- */

static int hex_val(char c)
{
	/* Lowercase only: W3C Trace Context §3.2.2 */
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* n bytes from 2n hex digits; false on any other character. */
static bool unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

bool trace_parse(const char *h, struct trace_ctx *out)
{
	if (!h || strnlen(h, TRACE_PARENT_LEN) < TRACE_PARENT_LEN)
		return false;
	uint8_t version;
	struct trace_ctx c;
	if (!unhex(h, &version, 1) || version == 0xff || h[2] != '-' ||
	    !unhex(h + 3, c.trace_id, 16) || h[35] != '-' || !unhex(h + 36, c.span_id, 8) ||
	    h[52] != '-' || !unhex(h + 53, &c.flags, 1))
		return false;
	/* Version 00 ends at the flags; a later one may go on after a '-'. */
	if (version == 0 ? h[55] != '\0' : h[55] != '\0' && h[55] != '-')
		return false;
	if (is_zero(c.trace_id, 16) || is_zero(c.span_id, 8))
		return false;
	*out = c;
	return true;
}

void trace_hex(const uint8_t *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}

void trace_format(const struct trace_ctx *c, char out[TRACE_PARENT_SIZE])
{
	memcpy(out, "00-", 3);
	trace_hex(c->trace_id, 16, out + 3);
	out[35] = '-';
	trace_hex(c->span_id, 8, out + 36);
	out[52] = '-';
	trace_hex(&c->flags, 1, out + 53);
}

/* ---- spans -------------------------------------------------------------- */

bool trace_open(struct trace_open *o, const struct trace_ctx *parent)
{
	o->is_on = false;
	if (!trace_is_enabled() || (parent && !(parent->flags & TRACE_FLAG_SAMPLED)))
		return false;
	if (parent) {
		memcpy(o->ctx.trace_id, parent->trace_id, sizeof o->ctx.trace_id);
		memcpy(o->parent_id, parent->span_id, sizeof o->parent_id);
		o->ctx.flags = parent->flags;
	} else {
		trace_random(o->ctx.trace_id, sizeof o->ctx.trace_id);
		memset(o->parent_id, 0, sizeof o->parent_id);
		o->ctx.flags = TRACE_FLAG_SAMPLED;
	}
	trace_random(o->ctx.span_id, sizeof o->ctx.span_id);
	o->start_ns = trace_now_ns();
	o->is_on = true;
	return true;
}

bool trace_open_child(struct trace_open *o, const char *traceparent)
{
	struct trace_ctx parent;
	o->is_on = false;
	if (!traceparent || !trace_is_enabled() || !trace_parse(traceparent, &parent))
		return false;
	return trace_open(o, &parent);
}

/* Copies at most max - 1 bytes of s, cut on a UTF-8 character boundary. */
static void copy_cut(char *dst, size_t max, const char *s)
{
	size_t n = strnlen(s, max);
	if (n == max) {
		n = max - 1;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
}

void trace_span_init(struct trace_span *s, const struct trace_open *o, enum trace_kind kind,
                     const char *name)
{
	s->ctx = o->ctx;
	memcpy(s->parent_id, o->parent_id, sizeof s->parent_id);
	s->kind = kind;
	copy_cut(s->name, sizeof s->name, name ? name : "");
	s->start_ns = o->start_ns;
	s->end_ns = trace_now_ns();
	s->status = TRACE_UNSET;
	s->message[0] = '\0';
	s->n_attrs = 0;
}

void trace_span_str(struct trace_span *s, const char *key, const char *v)
{
	if (!v || s->n_attrs == TRACE_MAX_ATTRS)
		return;
	struct trace_attr *a = &s->attrs[s->n_attrs++];
	a->key = key;
	a->is_int = false;
	copy_cut(a->s, sizeof a->s, v);
}

void trace_span_int(struct trace_span *s, const char *key, long long v)
{
	if (s->n_attrs == TRACE_MAX_ATTRS)
		return;
	struct trace_attr *a = &s->attrs[s->n_attrs++];
	a->key = key;
	a->is_int = true;
	a->i = v;
}

void trace_span_fail(struct trace_span *s, const char *message)
{
	s->status = TRACE_ERROR;
	copy_cut(s->message, sizeof s->message, message ? message : "");
}
