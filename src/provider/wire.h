/*
 * wire.h — brigade's requests and answers in the wire formats of remote
 * backends: OpenAI-compatible JSON (chat completions, streaming chunks,
 * embeddings) and Ollama's native /api/chat and /api/embeddings.  Encoding
 * builds the body brigade sends upstream; decoding turns one upstream event
 * (or one whole embeddings answer) into what a sink needs.
 *
 * Pure (jansson to read, core/jw.h to write), so both directions are
 * unit-tested and fuzzed.
 */
#ifndef BRG_PROVIDER_WIRE_H
#define BRG_PROVIDER_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/embed.h"
#include "core/err.h"
#include "core/gen.h"

/*
 * The JSON body for POST {base}/chat/completions (or /completions when
 * r->msgs is NULL) asking for r->n_choices choices, streamed, with
 * stream_options.include_usage so usage comes back.  'model' is the
 * upstream's own name (prefix already stripped).  Only fields the request
 * set are sent (an unset top_k is not sent: OpenAI itself rejects it);
 * temperature always is.  params.want_logprobs asks for the sampled
 * tokens' log-probabilities: "logprobs": true for chat, "logprobs": 1 for
 * a raw prompt (legacy completions take the number of top alternatives).
 * A NULL 'model' sends r->model.  *out is malloc'd, NULL on error.
 * Errors: BRG_E_BAD_REQUEST (a string that is not UTF-8, a float that is
 * NaN or infinite), BRG_E_NOMEM.
 */
enum brg_err wire_openai_request(const struct gen_request *r, const char *model, char **out);

/* The JSON body for Ollama's POST /api/chat (or /api/generate for a raw
 * prompt), streamed, options mapped (num_predict, temperature, top_p,
 * top_k, min_p, seed, stop, presence/frequency penalties) under the same
 * only-what-is-set rules.  r->n_choices is ignored: Ollama has no "n", so
 * the caller sends one request per choice.  Same errors. */
enum brg_err wire_ollama_request(const struct gen_request *r, const char *model, char **out);

/* What one upstream event says. */
struct wire_delta {
	int index;        /* choice index; -1 when the event has no choice */
	const char *text; /* content delta, borrowed from the event (may be NULL) */
	size_t text_len;
	bool has_finish;        /* finish_reason present and non-null */
	enum gen_finish finish; /* "length" → LENGTH; anything else → STOP */
	bool has_usage;
	int n_prompt, n_completion;
	/* The choice's log-probabilities in this event (OpenAI only): their
	 * sum and count; 0 and 0 when it carries none that could be read
	 * (see wire_logprobs_sum in wire_int.h: odd ones are skipped). */
	double logprob_sum;
	int n_logprobs;
	bool is_done;    /* "[DONE]" (OpenAI) or "done": true (Ollama) */
	bool is_error;   /* an {"error": ...} event */
	char error[256]; /* its message */
};

/*
 * Decodes one OpenAI streaming event ("data:" payload): a
 * chat.completion.chunk or text_completion chunk, "[DONE]", or an error
 * object.  A chunk may carry several choices: wire_decode_openai reports
 * the choice at position 'k' of the "choices" array and sets *n_choices to
 * the array's length, so the caller loops k = 0.. while k < *n_choices
 * (usage is reported with k == 0).  A k past the array gives index -1 and
 * no text; k == 0 on an empty or missing array does too, and still
 * reports the chunk's usage.  The choice's log-probabilities
 * (choices[k].logprobs) are summed into logprob_sum / n_logprobs; they
 * never make an event fail.  n_choices may be NULL.  The parsed document
 * must be kept alive while 'out->text' is used: *holder receives it and
 * the caller releases it with wire_holder_free() (void * to keep jansson
 * out of this header).  An error event ({"error": ...}, or vLLM's
 * {"object": "error"}) is BRG_OK with is_error set.  out->error is always
 * valid UTF-8, cut between characters.  Errors: BRG_E_BAD_JSON (not a JSON object, or content that
 * is not a string or null; out->error says why, *holder is NULL and
 * nothing else in 'out' is set).
 */
enum brg_err wire_decode_openai(const char *data, size_t len, size_t k, size_t *n_choices,
                                struct wire_delta *out, void **holder);

/*
 * The everyday chunk without a document (wire_fast.c): true when the event
 * is a chunk of at most one choice with no log-probabilities, no error
 * and nothing a general reading could see differently; out and *n_choices
 * are then exactly what wire_decode_openai(data, len, 0, ...) gives, and
 * out->text points into 'data' or into 'scratch' (cap bytes, used for
 * text with escapes).  False: nothing is promised about 'out'; decode the
 * event with wire_decode_openai.  Never fails otherwise, never allocates.
 */
bool wire_decode_openai_fast(const char *data, size_t len, size_t *n_choices,
                             struct wire_delta *out, char *scratch, size_t cap);

/* One Ollama NDJSON line from /api/chat or /api/generate: message.content
 * or response, done, done_reason, prompt_eval_count, eval_count, error.
 * Always choice 0.  Same holder rule; errors: BRG_E_BAD_JSON. */
enum brg_err wire_decode_ollama(const char *data, size_t len, struct wire_delta *out,
                                void **holder);

/* Releases a holder from the decoders; NULL is a no-op. */
void wire_holder_free(void *holder);

/* ---- embeddings ---------------------------------------------------------- */

/* The most floats one embeddings answer may carry (n_inputs × dim): 256 MiB
 * as float32, far past any real model (2048 inputs × 4096 dims is 8 Mi). */
#define WIRE_EMBED_MAX_FLOATS ((size_t)64 << 20)

/*
 * The JSON body for POST {base}/embeddings: "model" ('model', or r->model
 * when NULL), "input" — always an array, one element per input in order: a
 * string, or an array of token ids — "encoding_format": "float" (brigade
 * encodes base64 for its own client itself: not every OpenAI-compatible
 * server can), and "dimensions" only when r->dimensions > 0.  *out is
 * malloc'd, NULL on error.  Errors: BRG_E_BAD_REQUEST (a text that is not
 * UTF-8), BRG_E_NOMEM.
 */
enum brg_err wire_openai_embed_request(const struct embed_request *r, const char *model,
                                       char **out);

/* The JSON body for Ollama's POST /api/embeddings, which takes one text:
 * {"model", "prompt"}.  Same ownership and errors. */
enum brg_err wire_ollama_embed_request(const char *text, const char *model, char **out);

/*
 * Decodes a whole OpenAI embeddings answer, {"data": [{"index": i,
 * "embedding": [...]}, ...], "usage": {"prompt_tokens": N}}, for a request
 * of n_inputs inputs.  "data" must hold exactly n_inputs entries, each
 * index 0..n_inputs-1 exactly once, in any order (an entry without "index"
 * takes its position); row i of out->vecs is the entry whose index is i.
 * An embedding is an array of finite numbers (integers allowed) or, for an
 * upstream that ignores encoding_format, a base64 string of little-endian
 * float32s; every one has the same length dim >= 1, and n_inputs × dim is
 * at most WIRE_EMBED_MAX_FLOATS.  A missing or odd usage gives n_prompt 0.
 *
 * On BRG_OK out->vecs (malloc'd, the caller's), n_inputs, dim and n_prompt
 * are set; on error out->vecs is NULL and the counts 0.  out->error is
 * never touched.  'why' (why_len bytes, may be 0) receives the reason for
 * an error as NUL-terminated UTF-8, cut between characters.  Errors:
 * BRG_E_BAD_JSON (not a JSON object, or a shape, count or number that is
 * wrong), BRG_E_UPSTREAM (the body is an error object: 'why' is its
 * message), BRG_E_NOMEM.
 */
enum brg_err wire_decode_openai_embeddings(const char *data, size_t len, size_t n_inputs,
                                           struct embed_result *out, char *why, size_t why_len);

/*
 * Decodes Ollama's /api/embeddings answer, {"embedding": [...]}: *vec gets
 * *dim floats (malloc'd, the caller's; dim <= WIRE_EMBED_MAX_FLOATS).  On
 * error *vec is NULL and *dim 0.  Errors: BRG_E_BAD_JSON (not an object,
 * no array, a value that is not a finite float), BRG_E_UPSTREAM (an error
 * object), BRG_E_BAD_REQUEST (an empty array: Ollama's answer for a model
 * that does not produce embeddings), BRG_E_NOMEM; 'why' as above.
 */
enum brg_err wire_decode_ollama_embedding(const char *data, size_t len, float **vec, int *dim,
                                          char *why, size_t why_len);

#endif
