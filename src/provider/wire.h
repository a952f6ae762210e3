/*
 * wire.h — brigade's requests and answers in the wire formats of remote
 * backends: OpenAI-compatible JSON (chat completions, streaming chunks) and
 * Ollama's native /api/chat.  Encoding builds the body brigade sends
 * upstream; decoding turns one upstream event into what a sink needs.
 *
 * Pure (jansson only), so both directions are unit-tested and fuzzed.
 */
#ifndef BRG_PROVIDER_WIRE_H
#define BRG_PROVIDER_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "core/gen.h"

/*
 * The JSON body for POST {base}/chat/completions (or /completions when
 * r->msgs is NULL) asking for r->n_choices choices, streamed, with
 * stream_options.include_usage so usage comes back.  'model' is the
 * upstream's own name (prefix already stripped).  Only fields the request
 * set are sent (an unset top_k is not sent: OpenAI itself rejects it);
 * temperature always is.  A NULL 'model' sends r->model.  *out is malloc'd,
 * NULL on error.  Errors: BRG_E_BAD_REQUEST (a string that is not UTF-8, a
 * float that is NaN or infinite), BRG_E_NOMEM.
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
 * reports the chunk's usage.  n_choices may be NULL.  The parsed document must be kept alive while
 * 'out->text' is used: *holder receives it and the caller releases it with
 * wire_holder_free() (void * to keep jansson out of this header).  An
 * error event ({"error": ...}, or vLLM's {"object": "error"}) is BRG_OK
 * with is_error set.  out->error is always valid UTF-8, cut between
 * characters.  Errors: BRG_E_BAD_JSON (not a JSON object, or content that
 * is not a string or null; out->error says why, *holder is NULL and
 * nothing else in 'out' is set).
 */
enum brg_err wire_decode_openai(const char *data, size_t len, size_t k, size_t *n_choices,
                                struct wire_delta *out, void **holder);

/* One Ollama NDJSON line from /api/chat or /api/generate: message.content
 * or response, done, done_reason, prompt_eval_count, eval_count, error.
 * Always choice 0.  Same holder rule; errors: BRG_E_BAD_JSON. */
enum brg_err wire_decode_ollama(const char *data, size_t len, struct wire_delta *out,
                                void **holder);

/* Releases a holder from the decoders; NULL is a no-op. */
void wire_holder_free(void *holder);

#endif
