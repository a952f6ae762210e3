/*
 * prompts.c — what each kind of step is asked.  The wording is short and
 * plain on purpose: small local models follow short instructions better
 * than long ones, and every instruction asks for the answer alone, so the
 * next step and the reducers see an answer, not a preamble.
 */
#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"

const char *const PROMPT_CRITIC =
    "You review answers. List the concrete problems of the answer below: factual "
    "errors, wrong reasoning, missing parts, unclear wording. Be brief. End with one "
    "line of the form \"Score: N/10\", where 10 means the answer needs no change.";

const char *const PROMPT_RECONCILER =
    "Several assistants answered the same question; their answers follow. Where they "
    "agree, keep what they agree on; where they differ, decide which is right and why. "
    "Reply with the single best answer to the question, without mentioning the "
    "assistants.";

const char *const PROMPT_SYNTHESIZER =
    "Several assistants answered the same question and voted; their answers and the "
    "answer most of them agree on follow. Write the final answer to the question: "
    "complete, correct, consistent with the agreed answer unless it is clearly wrong. "
    "Reply with the answer only.";

const char *const PROMPT_REFINER =
    "Improve the draft answer below: fix errors, fill gaps, make it clear and "
    "complete. Reply with the improved answer only.";

const char *const PROMPT_VALIDATOR =
    "Check the answer below against the question: correct any error you find. Reply "
    "with the final answer only.";

void prompt_conversation(struct step *st, const struct run *run)
{
	const struct gen_request *g = &run->gen;
	for (size_t i = 0; i < g->n_msgs && st->n_msgs < STEP_MAX_MSGS - 2; i++)
		st->msgs[st->n_msgs++] = g->msgs[i];
}

void prompt_pair(struct step *st, const char *system, char *user)
{
	const char *u = step_own(st, user);
	st->msgs[st->n_msgs++] = (struct chat_msg){"system", system};
	st->msgs[st->n_msgs++] = (struct chat_msg){"user", u ? u : ""};
}
