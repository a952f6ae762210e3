/*
 * orch_int.h — what the orchestrator's files share: the run of one
 * multi-model request (orchestrate.c), its steps (step.c), the modes
 * (modes.c) and the prompts (prompts.c).  Private to src/orchestrate/.
 *
 * A run lives on its own thread.  Each step is one generation on one
 * member, through the provider interface, into a gen_stream of its own;
 * the run's thread waits on the steps' eventfds and on the client's
 * cancel flag.  Nothing of a run is shared with another thread except
 * through those streams.
 */
#ifndef BRG_ORCHESTRATE_ORCH_INT_H
#define BRG_ORCHESTRATE_ORCH_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/buf.h"
#include "core/stream.h"
#include "obs/trace.h"
#include "orchestrate/context.h"
#include "orchestrate/orchestrate.h"
#include "orchestrate/reduce.h"

#define STEP_MAX_CHOICES REDUCE_MAX_CANDIDATES
#define STEP_MAX_MSGS    64
#define STEP_TEXT_MAX    ((size_t)1 << 20)

struct orch_settings {
	int critique_rounds;
	double critique_threshold;
	int debate_rounds;
	double min_agreement;
	enum reduce_strategy reducer;
	bool is_best_on_disagreement;
	int sc_samples;
};

struct orchestrator {
	struct router *router;
	const struct config *cfg;
	struct orch_settings s;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n_running; /* runs whose thread has not finished */
};

/* One generation on one member: the prompt in, the text out. */
struct step {
	const char *name; /* see orch_step_event */
	const char *role;
	const struct plan_member *m;
	int round;
	struct chat_msg msgs[STEP_MAX_MSGS];
	size_t n_msgs;
	char *owned[6]; /* message texts this step made (freed with it) */
	size_t n_owned;
	size_t n_choices; /* 1, or self-consistency's samples */
	struct gen_params params;
	/* out */
	struct gen_stream *s;
	struct buf text[STEP_MAX_CHOICES];
	struct gen_result res[STEP_MAX_CHOICES];
	bool is_done[STEP_MAX_CHOICES];
	bool is_ok; /* every choice finished (stop or length) */
	struct brg_error error;
	long long t0_ms, elapsed_ms;
	double score; /* critique steps: the parsed score, else -1 */
	/* tracing (obs/trace.h): the step's INTERNAL span, and the context
	 * its provider call carries */
	struct trace_open span;
	char traceparent[TRACE_PARENT_SIZE];
};

struct run {
	struct orchestrator *o;
	struct route_plan plan;
	enum orch_mode mode;
	struct gen_request gen; /* the client's; msgs borrowed until the final on_done */
	const char *goal;       /* the last user message */
	struct handoff h;       /* carried from step to step (carry.c) */
	int n_advanced;         /* carry_advance() calls so far */
	struct sink sink;       /* the client's, one choice */
	const atomic_bool *cancel;
	struct fallback *fallback;
	struct orch_info *info;
	orch_step_fn on_step;
	void *step_ud;
	int n_events;
	long long n_prompt, n_completion; /* over every step */
	/* the answer */
	struct buf final;
	enum gen_finish finish;
	struct brg_error error; /* with finish == GEN_FINISH_ERROR */
};

/* ---- step.c ---- */

/* Sets up a step; the caller then fills msgs (step_own() for made text). */
void step_init(struct step *st, struct run *run, const char *name, const char *role,
               const struct plan_member *m, int round);
/* Takes ownership of a malloc'd text for a message; NULL on a full table
 * (the text is freed). */
const char *step_own(struct step *st, char *text);
void step_fini(struct step *st);
/* Starts every step, waits for all (or the client's cancel), emits their
 * events, and adds their tokens to the run.  BRG_E_CANCELLED when the
 * client went away (every step stopped and drained); otherwise BRG_OK —
 * each step's is_ok / error says how it ended. */
enum brg_err steps_run(struct run *run, struct step *steps, size_t n);
/* The text of choice i ("" when none). */
const char *step_text(const struct step *st, size_t i);
/* exp(mean token log-probability) of choice i; -1 when unknown. */
double step_confidence(const struct step *st, size_t i);
/* Records a model in info->models_used (once). */
void run_note_model(struct run *run, const char *name);

/* ---- carry.c: context management between steps ---- */

enum brg_err carry_begin(struct run *run, const char *request_id, struct brg_error *err);
void carry_end(struct run *run);
/* A new step (or group of parallel steps, which share its number). */
void carry_advance(struct run *run);
/* Before starting st (its messages built): the trajectory block merged
 * into its system message, the utilisation noted. */
void carry_inject(struct run *run, struct step *st, const char *next);
/* 'text' fitted to the handoff budget of 'to' (malloc'd); NULL with err
 * (COMPRESSION_FAILED, CONTEXT_BUDGET_EXCEEDED, CANCELLED) otherwise. */
char *carry_fit(struct run *run, const char *text, const struct plan_member *to,
                struct brg_error *err);
/* A finished step's output: contamination checked against the handoff
 * (warnings recorded), its answer recorded as a decision unless high. */
enum contamination_severity carry_check(struct run *run, const struct step *st,
                                        struct contamination_report *rep);
/* Records what a finished step decided, as the handoff's decisions
 * (shown as "Previous" in later steps): 'what', or its answer. */
void carry_note(struct run *run, const struct step *st, const char *what);
/* Fresh context after a quarantined output: open errors resolved. */
void carry_quarantine(struct run *run);

/* ---- modes.c: each fills run->final / finish / error ---- */

void mode_critique(struct run *run);
void mode_debate(struct run *run);
void mode_ensemble(struct run *run);
void mode_pipeline(struct run *run);
void mode_self_consistency(struct run *run);

/* ---- alternates.c: the single mode's auto-route fallback ---- */

/* Runs 'gen' on plan->members[0], then on plan->alternates in order while
 * an attempt fails, before any text, with an error another model may not
 * have (docs/routing.md); info->model names the one that answered.  Same
 * contract as fallback_generate(). */
enum brg_err alternates_generate(struct fallback *f, const struct route_plan *plan,
                                 const struct gen_request *gen, struct sink *sinks,
                                 struct orch_info *info, struct brg_error *err);

/* ---- prompts.c ---- */

/* The client's conversation, as the first messages of st. */
void prompt_conversation(struct step *st, const struct run *run);
/* A system + user pair: 'system' borrowed (static text), 'user' made. */
void prompt_pair(struct step *st, const char *system, char *user);

extern const char *const PROMPT_CRITIC;
extern const char *const PROMPT_RECONCILER;
extern const char *const PROMPT_SYNTHESIZER;
extern const char *const PROMPT_REFINER;
extern const char *const PROMPT_VALIDATOR;

#endif
