/*
 * embed.h — the shape of one embeddings request as it travels down the
 * request path (api → route → provider → engine) and of its answer coming
 * back.  Unlike a generation nothing streams: the producer hands back every
 * vector at once, through one callback on its own thread, so the HTTP
 * thread can keep watching the client's socket while it waits.
 */
#ifndef BRG_CORE_EMBED_H
#define BRG_CORE_EMBED_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define EMBED_MAX_INPUTS 2048 /* OpenAI's limit per request */

/* One input: text, or (text NULL) token ids.  Borrowed from the request. */
struct embed_input {
	const char *text;
	const int32_t *tokens;
	size_t n_tokens;
};

/* Everything is borrowed from the caller until the sink's on_done. */
struct embed_request {
	const char *model; /* the provider's own model id */
	const struct embed_input *inputs;
	size_t n_inputs; /* 1..EMBED_MAX_INPUTS */
	int dimensions;  /* 0: the model's own size */
	const atomic_bool *cancel;
	const char *traceparent; /* as in struct gen_request; NULL: none */
};

struct embed_result {
	/* n_inputs × dim floats, row i is input i; malloc'd, and the receiver's
	 * to free (set it to NULL to keep it).  NULL on error. */
	float *vecs;
	size_t n_inputs;
	int dim;
	int n_prompt; /* tokens read, all inputs together */
	/* BRG_OK, or why nothing came back (message and details for the client;
	 * BRG_E_CANCELLED when the cancel flag stopped it). */
	struct brg_error error;
};

/*
 * Where a producer delivers the answer: on_done exactly once, on the
 * producer's thread; after it returns the producer never touches 'ud'.
 */
struct embed_sink {
	void (*on_done)(void *ud, struct embed_result *res);
	void *ud;
};

#endif
