// sources: src/provider/sse.c src/provider/wire*.c src/core/*.c
// libs: -ljansson
/*
 * fuzz_upstream.c — libFuzzer harness for what a remote backend sends
 * back: provider/sse framing (SSE or NDJSON) and provider/wire decoding of
 * each framed event, plus wire's encoding of event text as a request; and
 * the whole stream as an embeddings answer (OpenAI's and Ollama's).
 *
 * Input layout: byte 0 picks the mode (bit 0: NDJSON, else SSE), the cap
 * (bits 1-2: 8, 64, 512 or 65536 bytes) and the split pattern (bits 3-7:
 * 0 feeds one byte at a time, others seed a generator of piece sizes
 * 0..2*seed, empty pieces included; seed % 4 + 1 is also the number of
 * inputs the embeddings answer is read for); the rest is the byte stream.
 *
 * Checks: the stream fed in pieces gives the same events and the same
 * result as the stream fed at once; a failed parser keeps returning its
 * error; no event exceeds the cap and each is NUL-terminated; decoding
 * never leaves text pointing at freed memory (ASan), a failed decode holds
 * nothing, and every error message is valid UTF-8 within its array; a
 * choice's log-probabilities are a count >= 0 and a finite sum <= 0 (0
 * when the count is); encoding an event as a prompt succeeds exactly when
 * it is UTF-8 and the body reads back to the same text, as a chat prompt
 * and as an embeddings input, asking for logprobs (OpenAI only) exactly
 * when the request wanted them.  An event starting with '!' makes the
 * callback ask to stop, so cancellation is split-tested too.  Every event
 * the fast chunk decoder accepts must decode the same through jansson.  Embeddings answers: a
 * refusal holds no vectors, gives a known code and a UTF-8 reason; a success holds exactly n_inputs
 * × dim finite floats (ASan checks the allocation's size as every one is read), dim >= 1, within
 * WIRE_EMBED_MAX_FLOATS.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "provider/sse.h"
#include "provider/wire.h"

#include "../common/utf8_check.h"

#define CHECK(x)                 \
	do {                     \
		if (!(x))        \
			abort(); \
	} while (0)

static const size_t CAPS[4] = {8, 64, 512, 65536};

/* The events one run saw, each as its length then its bytes. */
struct run {
	bool is_ndjson;
	bool is_decoding;
	size_t cap;
	struct buf log; /* each event as its length, then its bytes */
};

static void log_append(struct run *r, const void *p, size_t n)
{
	CHECK(buf_append(&r->log, p, n) == BRG_OK);
}

static void check_delta(enum brg_err rc, const struct wire_delta *d, void *holder)
{
	const char *end = memchr(d->error, '\0', sizeof d->error);
	CHECK(end);
	CHECK(valid_utf8((const unsigned char *)d->error, (size_t)(end - d->error)));
	CHECK(d->index >= -1);
	CHECK(d->n_logprobs >= 0);
	CHECK(isfinite(d->logprob_sum) && d->logprob_sum <= 0.0);
	CHECK(d->n_logprobs > 0 || d->logprob_sum == 0.0);
	if (rc) {
		CHECK(rc == BRG_E_BAD_JSON);
		CHECK(!holder && !d->text && d->error[0]);
		return;
	}
	/* Touch every byte of the borrowed text: ASan checks it is alive. */
	volatile unsigned char sum = 0;
	for (size_t i = 0; d->text && i < d->text_len; i++)
		sum += (unsigned char)d->text[i];
	(void)sum;
	CHECK(d->text || d->text_len == 0);
}

/* The fast decoder, where it accepts an event, reads it exactly as the
 * general one does (with a scratch space too small for some escaped
 * texts, so giving up on those is exercised as well). */
static void check_fast(const char *data, size_t len)
{
	struct wire_delta f, d;
	char scratch[64];
	size_t n_fast = 99, n_choices = 0;
	void *holder = NULL;
	bool is_fast = wire_decode_openai_fast(data, len, &n_fast, &f, scratch, sizeof scratch);
	if (!is_fast)
		return;
	enum brg_err rc = wire_decode_openai(data, len, 0, &n_choices, &d, &holder);
	CHECK(rc == BRG_OK && !d.is_error && !d.is_done);
	CHECK(n_fast == n_choices && n_fast <= 1);
	CHECK(f.index == d.index && f.has_finish == d.has_finish && f.finish == d.finish);
	CHECK(f.has_usage == d.has_usage && f.n_prompt == d.n_prompt &&
	      f.n_completion == d.n_completion);
	CHECK(d.n_logprobs == 0 && f.n_logprobs == 0 && !f.is_error && !f.is_done);
	CHECK((f.text == NULL) == (d.text == NULL) && f.text_len == d.text_len);
	CHECK(f.text_len == 0 || memcmp(f.text, d.text, f.text_len) == 0);
	wire_holder_free(holder);
}

static void decode(const struct run *r, const char *data, size_t len)
{
	struct wire_delta d;
	void *holder = NULL;
	if (r->is_ndjson) {
		enum brg_err rc = wire_decode_ollama(data, len, &d, &holder);
		check_delta(rc, &d, holder);
		CHECK(rc || d.is_error || d.index == 0);
		wire_holder_free(holder);
		return;
	}
	check_fast(data, len);
	size_t n_choices = 0;
	for (size_t k = 0; k == 0 || k < n_choices; k++) {
		enum brg_err rc = wire_decode_openai(data, len, k, &n_choices, &d, &holder);
		check_delta(rc, &d, holder);
		wire_holder_free(holder);
		holder = NULL;
		if (rc)
			break;
	}
}

/* Encodes the event as a prompt (with itself as a stop) and reads it back. */
static void encode(const struct run *r, const char *data, size_t len)
{
	if (strlen(data) != len)
		return;
	struct gen_request req = {.prompt = data, .params = gen_default_params(), .n_choices = 2};
	req.params.n_stops = 1;
	req.params.stops[0] = data;
	req.params.want_logprobs = len & 1;
	char *body = NULL;
	enum brg_err rc = r->is_ndjson ? wire_ollama_request(&req, "m", &body)
	                               : wire_openai_request(&req, "m", &body);
	bool is_utf8 = valid_utf8((const unsigned char *)data, len);
	CHECK(rc == (is_utf8 ? BRG_OK : BRG_E_BAD_REQUEST));
	if (rc) {
		CHECK(!body);
		return;
	}
	json_t *v = json_loads(body, 0, NULL);
	CHECK(v);
	json_t *prompt = json_object_get(v, "prompt");
	CHECK(json_string_length(prompt) == len);
	CHECK(memcmp(json_string_value(prompt), data, len) == 0);
	json_t *lp = json_object_get(v, "logprobs");
	if (req.params.want_logprobs && !r->is_ndjson)
		CHECK(json_integer_value(lp) == 1);
	else
		CHECK(!lp && !json_object_get(json_object_get(v, "options"), "logprobs"));
	json_decref(v);
	free(body);

	/* As an embeddings input: text, then the same bytes as token ids. */
	int32_t tokens[8];
	size_t n_tokens = len < 8 ? len : 8;
	for (size_t i = 0; i < n_tokens; i++)
		tokens[i] = (unsigned char)data[i];
	const struct embed_input in[] = {{.text = data}, {.tokens = tokens, .n_tokens = n_tokens}};
	struct embed_request er = {.model = "m", .inputs = in, .n_inputs = 2};
	rc = r->is_ndjson ? wire_ollama_embed_request(data, "m", &body)
	                  : wire_openai_embed_request(&er, "m", &body);
	CHECK(rc == (is_utf8 ? BRG_OK : BRG_E_BAD_REQUEST));
	if (rc) {
		CHECK(!body);
		return;
	}
	v = json_loads(body, 0, NULL);
	CHECK(v);
	json_t *text = r->is_ndjson ? json_object_get(v, "prompt")
	                            : json_array_get(json_object_get(v, "input"), 0);
	CHECK(json_string_length(text) == len);
	CHECK(memcmp(json_string_value(text), data, len) == 0);
	if (!r->is_ndjson) {
		json_t *ids = json_array_get(json_object_get(v, "input"), 1);
		CHECK(json_array_size(ids) == n_tokens);
		for (size_t i = 0; i < n_tokens; i++)
			CHECK(json_integer_value(json_array_get(ids, i)) == tokens[i]);
	}
	json_decref(v);
	free(body);
}

static void check_why(const char *why, size_t why_len)
{
	const char *end = memchr(why, '\0', why_len);
	CHECK(end);
	CHECK(valid_utf8((const unsigned char *)why, (size_t)(end - why)));
}

/* The whole stream as an embeddings answer, both ways. */
static void decode_embeddings(const char *s, size_t len, size_t n_inputs)
{
	struct embed_result r;
	char why[64];
	enum brg_err rc = wire_decode_openai_embeddings(s, len, n_inputs, &r, why, sizeof why);
	check_why(why, sizeof why);
	if (rc) {
		CHECK(rc == BRG_E_BAD_JSON || rc == BRG_E_UPSTREAM || rc == BRG_E_NOMEM);
		CHECK(!r.vecs && r.dim == 0 && r.n_inputs == 0 && why[0]);
	} else {
		CHECK(r.vecs && r.dim >= 1 && r.n_inputs == n_inputs && r.n_prompt >= 0);
		CHECK((size_t)r.dim <= WIRE_EMBED_MAX_FLOATS / n_inputs);
		for (size_t i = 0; i < n_inputs * (size_t)r.dim; i++)
			CHECK(isfinite(r.vecs[i]));
		free(r.vecs);
	}

	float *vec = (float *)why;
	int dim = -1;
	rc = wire_decode_ollama_embedding(s, len, &vec, &dim, why, sizeof why);
	check_why(why, sizeof why);
	if (rc) {
		CHECK(rc == BRG_E_BAD_JSON || rc == BRG_E_UPSTREAM || rc == BRG_E_BAD_REQUEST ||
		      rc == BRG_E_NOMEM);
		CHECK(!vec && dim == 0 && why[0]);
	} else {
		CHECK(vec && dim >= 1 && (size_t)dim <= WIRE_EMBED_MAX_FLOATS);
		for (int i = 0; i < dim; i++)
			CHECK(isfinite(vec[i]));
		free(vec);
	}
}

static int on_event(void *ud, const char *data, size_t len)
{
	struct run *r = ud;
	CHECK(len <= r->cap);
	CHECK(data[len] == '\0');
	log_append(r, &len, sizeof len);
	log_append(r, data, len);
	if (r->is_decoding) {
		decode(r, data, len);
		encode(r, data, len);
	}
	return len && data[0] == '!';
}

/* The next piece size: 1 for seed 0, else xorshift in 0..2*seed. */
static size_t next_piece(uint32_t *state, unsigned seed)
{
	if (seed == 0)
		return 1;
	*state ^= *state << 13;
	*state ^= *state >> 17;
	*state ^= *state << 5;
	return *state % (2 * seed + 1);
}

static enum brg_err feed_split(struct sse_parser *p, const char *s, size_t len, unsigned seed,
                               struct run *r)
{
	uint32_t state = 0x9E3779B9u ^ seed;
	enum brg_err first = BRG_OK;
	for (size_t i = 0; i < len;) {
		size_t n = next_piece(&state, seed);
		if (n > len - i)
			n = len - i;
		enum brg_err rc = sse_parser_feed(p, s + i, n, on_event, r);
		/* Once failed, a parser keeps its error and reads nothing more. */
		CHECK(!first || rc == first);
		if (rc && !first)
			first = rc;
		i += n;
	}
	enum brg_err rc = sse_parser_finish(p, on_event, r);
	CHECK(!first || rc == first);
	return first ? first : rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool is_ndjson = data[0] & 1;
	size_t cap = CAPS[(data[0] >> 1) & 3];
	unsigned seed = data[0] >> 3;
	const char *s = (const char *)data + 1;
	size_t len = size - 1;

	struct run whole = {.is_ndjson = is_ndjson, .cap = cap};
	buf_init(&whole.log, SIZE_MAX);
	struct sse_parser *p = sse_parser_new(cap, is_ndjson);
	CHECK(p);
	enum brg_err rc_whole = sse_parser_feed(p, s, len, on_event, &whole);
	enum brg_err rc_finish = sse_parser_finish(p, on_event, &whole);
	CHECK(!rc_whole || rc_finish == rc_whole);
	rc_whole = rc_whole ? rc_whole : rc_finish;
	sse_parser_free(p);

	struct run split = {.is_ndjson = is_ndjson, .is_decoding = true, .cap = cap};
	buf_init(&split.log, SIZE_MAX);
	p = sse_parser_new(cap, is_ndjson);
	CHECK(p);
	enum brg_err rc_split = feed_split(p, s, len, seed, &split);
	sse_parser_free(p);

	CHECK(rc_whole == rc_split);
	CHECK(rc_whole == BRG_OK || rc_whole == BRG_E_TOO_LARGE || rc_whole == BRG_E_CANCELLED);
	CHECK(whole.log.len == split.log.len);
	CHECK(whole.log.len == 0 || memcmp(whole.log.data, split.log.data, whole.log.len) == 0);
	buf_fini(&whole.log);
	buf_fini(&split.log);

	decode_embeddings(s, len, seed % 4 + 1);
	return 0;
}
