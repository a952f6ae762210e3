/*
 * gen.c — defaults and names for the generation types of gen.h.
 */
#include "core/gen.h"

struct gen_params gen_default_params(void)
{
	struct gen_params p = {
	    .n_max_tokens = -1,
	    .temperature = 1.0f,
	    .top_p = 1.0f,
	    .top_k = 0,
	    .min_p = 0.0f,
	};
	return p;
}

const char *gen_finish_name(enum gen_finish f)
{
	switch (f) {
	case GEN_FINISH_STOP:
		return "stop";
	case GEN_FINISH_LENGTH:
		return "length";
	case GEN_FINISH_CANCELLED:
		return "cancelled";
	case GEN_FINISH_ERROR:
		return "error";
	case GEN_FINISH_PARTIAL:
		return "partial";
	}
	return "error";
}
