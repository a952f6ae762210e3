/*
 * gen.h — the shape of one generation as it travels down the request path
 * (api → route → orchestrate → provider → engine) and the sink its tokens
 * travel back up through.  Every layer speaks these types, so streaming and
 * non-streaming, local and remote share one path.
 */
#ifndef BRG_CORE_GEN_H
#define BRG_CORE_GEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* One chat message; strings are borrowed from the request. */
struct chat_msg {
	const char *role;
	const char *content;
};

#define GEN_MAX_STOPS    4
#define GEN_STOP_MAX_LEN 256

/* Sampling and limits for one sequence.  Start from gen_default_params(). */
struct gen_params {
	int n_max_tokens;  /* -1: until the context is full */
	float temperature; /* 0: greedy */
	float top_p;       /* 1: off */
	int top_k;         /* 0: off */
	float min_p;       /* 0: off */
	float presence_penalty;
	float frequency_penalty;
	bool has_seed;
	uint32_t seed;
	size_t n_stops;
	const char *stops[GEN_MAX_STOPS]; /* borrowed; the engine copies them */
	/* Ask the producer for the sampled tokens' log-probabilities
	 * (gen_result.logprob_sum): the orchestrator's confidence. */
	bool want_logprobs;
};

/* OpenAI's defaults: temperature 1, top_p 1, no limit, no stops. */
struct gen_params gen_default_params(void);

enum gen_finish {
	GEN_FINISH_STOP,      /* end-of-generation token or a stop string */
	GEN_FINISH_LENGTH,    /* max tokens or the context filled up */
	GEN_FINISH_CANCELLED, /* the consumer went away */
	GEN_FINISH_ERROR,     /* see 'err' */
	GEN_FINISH_PARTIAL,   /* orchestration: an earlier step's text stands in (saga) */
};

/* "stop", "length", "cancelled", "error", "partial". */
const char *gen_finish_name(enum gen_finish f);

struct gen_result {
	enum gen_finish finish;
	int n_prompt;     /* tokens in the prompt as the model saw it */
	int n_cached;     /* of those, reused from the KV cache */
	int n_completion; /* tokens sampled, the end-of-generation token excluded */
	/* With gen_params.want_logprobs: the sum of the natural-log
	 * probabilities of n_logprobs sampled tokens, each under the model's
	 * full distribution before any sampler changed it (temperature, top-k
	 * ...).  n_logprobs 0: unknown (not asked, or the producer cannot
	 * tell: Ollama). */
	double logprob_sum;
	int n_logprobs;
	/* error.code is BRG_OK unless finish == GEN_FINISH_ERROR; then the
	 * message and details are what the client will see. */
	struct brg_error error;
};

/*
 * Where a producer delivers one sequence's text.  on_piece gets whole UTF-8
 * characters only (never a split character) and never any part of a stop
 * string; it returns nonzero to ask the producer to stop.  on_done is called
 * exactly once, last; after it returns the producer never touches 'ud'
 * again.  Both run on the producer's thread (an engine scheduler thread or a
 * provider's I/O thread), so they must be quick and must not block.
 */
struct sink {
	int (*on_piece)(void *ud, const char *utf8, size_t len);
	void (*on_done)(void *ud, const struct gen_result *res);
	void *ud;
};

/*
 * One request for generation as providers see it: either chat messages or a
 * raw prompt, n_choices independent sequences of it, and the request's
 * cancel flag.  Everything is borrowed from the caller for the duration of
 * the provider call; producers copy what they keep.
 */
struct gen_request {
	const char *model;           /* the provider's own model id */
	const struct chat_msg *msgs; /* chat; NULL for a raw prompt */
	size_t n_msgs;
	const char *prompt; /* raw completion prompt when msgs is NULL */
	struct gen_params params;
	size_t n_choices; /* >= 1; choice i samples with seed + i */
	const atomic_bool *cancel;
	/* W3C trace context for this call ("00-<trace>-<span>-<flags>"), sent
	 * upstream as the traceparent header by remote providers; NULL: none. */
	const char *traceparent;
};

#endif
