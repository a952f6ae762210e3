/*
 * context.h — context management between the steps of a multi-model
 * request (spec: Context Management).  The orchestrator keeps one struct
 * handoff per request and, before each step, renders the trajectory block
 * and the handoff block into the step's prompt, fits them to the step
 * model's budget (compressing with the `fast` model when they do not fit —
 * before the call, never after a failure), and after each step checks the
 * output for error contamination before passing anything on.
 *
 * The rules, their numbers and their limits are in docs/context.md.
 *
 * Pure functions: no threads, no I/O, no global state.  The model calls
 * that count tokens and compress text come in as callbacks, so every rule
 * is unit-tested with scripted callbacks and fuzzed.  Any thread may call
 * any function; a struct handoff belongs to one thread at a time.  Every
 * string this module produces is valid UTF-8 (invalid input bytes become
 * U+FFFD) without NUL bytes.
 */
#ifndef BRG_ORCHESTRATE_CONTEXT_H
#define BRG_ORCHESTRATE_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

/* ---- handoff state (spec: Handoff State Object) --------------------------- */

#define HANDOFF_REQUEST_ID_MAX 64   /* bytes, NUL included */
#define HANDOFF_MAX_ITEMS      64   /* per list */
#define HANDOFF_ITEM_MAX       2048 /* bytes per list item, NUL excluded, "…" included */
#define HANDOFF_MAX_STEPS      256

/* A list of owned, valid UTF-8 strings; { NULL, 0 } is the empty list. */
struct strlist {
	char **items;
	size_t n;
};

/*
 * The structured state carried from one step to the next.  Caller-
 * allocated; handoff_init() fills it, handoff_fini() releases it.  The
 * fields may be read directly; change the strings only through
 * handoff_add() and handoff_set_context(), which keep them within their
 * caps and valid UTF-8.  Steps count from 1: current_step is the step that
 * is about to run or running; the orchestrator increments it itself.
 */
struct handoff {
	char request_id[HANDOFF_REQUEST_ID_MAX];
	char *goal; /* the user's original intent (the last user message) */
	int current_step, total_steps;
	struct strlist constraints, decisions_made, evidence_refs, active_errors, resolved_errors;
	char *compressed_context; /* NULL, or the compressed carry-over */
};

/*
 * Fills 'h' for a request of 'total_steps' steps, at step 1, with empty
 * lists and no compressed context.  Copies request_id and goal (the goal
 * keeps its full length; invalid UTF-8 becomes U+FFFD).  Then validates as
 * handoff_validate() does.  Errors: BRG_E_HANDOFF_INVALID (request_id NULL,
 * empty or 64 bytes or longer; goal NULL or blank; total_steps outside
 * 1..HANDOFF_MAX_STEPS), BRG_E_NOMEM.  On error 'h' holds nothing (a later
 * handoff_fini() is harmless); a NULL 'h' is BRG_E_BAD_REQUEST.
 */
enum brg_err handoff_init(struct handoff *h, const char *request_id, const char *goal,
                          int total_steps, struct brg_error *err)
    __attribute__((warn_unused_result));

/* Frees everything 'h' owns and zeroes it.  NULL is a no-op. */
void handoff_fini(struct handoff *h);

/*
 * Appends a copy of 'text' to 'l': invalid UTF-8 becomes U+FFFD, and text
 * longer than HANDOFF_ITEM_MAX bytes is cut at a character boundary and
 * ends with "…".  Blank text (empty or only whitespace) and text equal to
 * an item already in the list are not added (BRG_OK): the lists are sets
 * of facts, and recording the same fact twice must not count twice (see
 * contamination_apply()).  Errors: BRG_E_CONTEXT_BUDGET when the list
 * already holds HANDOFF_MAX_ITEMS items (details: "max_items"),
 * BRG_E_BAD_REQUEST for a NULL list or text, BRG_E_NOMEM.  On error the
 * list is unchanged.
 */
enum brg_err handoff_add(struct strlist *l, const char *text, struct brg_error *err)
    __attribute__((warn_unused_result));

/*
 * Replaces the compressed context with a copy of 'text' (invalid UTF-8
 * becomes U+FFFD; no length cap: fit it with context_fit() first); NULL
 * clears it.  Errors: BRG_E_BAD_REQUEST for a NULL 'h', BRG_E_NOMEM (the
 * old context is kept).
 */
enum brg_err handoff_set_context(struct handoff *h, const char *text, struct brg_error *err)
    __attribute__((warn_unused_result));

/*
 * Checks that 'h' can drive a step (spec: HandoffStateInvalidError,
 * "HandoffState missing required fields for pipeline step"), in this
 * order: request_id non-empty and NUL-terminated; goal present, not blank,
 * valid UTF-8; 1 <= total_steps <= HANDOFF_MAX_STEPS; 1 <= current_step <=
 * total_steps; each list at most HANDOFF_MAX_ITEMS non-NULL valid UTF-8
 * items of at most HANDOFF_ITEM_MAX bytes; compressed_context NULL or
 * valid UTF-8.  Errors: BRG_E_HANDOFF_INVALID for the first problem found,
 * with details "field" (the field's spec name) and, where they apply,
 * "current_step", "total_steps", "index" (the list item).  A NULL 'h' is
 * BRG_E_HANDOFF_INVALID too.
 */
enum brg_err handoff_validate(const struct handoff *h, struct brg_error *err)
    __attribute__((warn_unused_result));

/*
 * The state as one line of JSON with the spec's field names, for step
 * events, logs and the handoff cache:
 *   {"request_id":…,"goal":…,"current_step":…,"total_steps":…,
 *    "constraints":[…],"decisions_made":[…],"evidence_refs":[…],
 *    "active_errors":[…],"resolved_errors":[…],"compressed_context":null|…}
 * On BRG_OK *out is a NUL-terminated string the caller frees with free().
 * Errors: whatever handoff_validate() reports (an invalid state is not
 * serialised), BRG_E_BAD_REQUEST for a NULL 'out', BRG_E_NOMEM.  On error
 * *out is NULL.
 */
enum brg_err handoff_to_json(const struct handoff *h, char **out, struct brg_error *err)
    __attribute__((warn_unused_result));

/*
 * Parses what handoff_to_json() writes (the handoff cache's read path)
 * into 'out', which the caller later releases with handoff_fini().  The
 * five lists and compressed_context may be absent (empty, NULL); other
 * members are ignored.  List items go through handoff_add() (capped, not
 * duplicated), then the state is validated.  Errors: BRG_E_HANDOFF_INVALID
 * (not JSON, not an object, a member of the wrong type, a list over
 * HANDOFF_MAX_ITEMS, or what handoff_validate() reports; details "field"),
 * BRG_E_BAD_REQUEST for NULL arguments, BRG_E_NOMEM.  On error 'out' holds
 * nothing.
 */
enum brg_err handoff_from_json(const char *json, size_t len, struct handoff *out,
                               struct brg_error *err) __attribute__((warn_unused_result));

/*
 * The handoff block for the next step's prompt: what was decided and
 * found, never how (spec: Compression Strategy):
 *
 *   ## Handoff\n
 *   ### Decisions\n- …\n        (decisions_made)
 *   ### Constraints\n- …\n      (constraints)
 *   ### Evidence\n- …\n         (evidence_refs)
 *   ### Open errors\n- …\n      (active_errors)
 *   ### Context\n…\n            (compressed_context, newlines kept)
 *
 * Empty sections are left out; resolved_errors never appear.  Each item's
 * newlines and control characters are folded to single spaces so an item
 * cannot start a heading of its own.  Returns a string the caller frees
 * with free() — "" when there is nothing to hand off — or NULL when 'h'
 * is NULL or memory runs out.  Fit it to the handoff budget with
 * context_fit().
 */
char *handoff_render(const struct handoff *h);

/* ---- trajectory (spec: Trajectory Injection) ------------------------------ */

#define TRAJECTORY_FIELD_MAX 512 /* bytes per field value, "…" included */
#define TRAJECTORY_PREVIOUS  3   /* decisions shown under "Previous" */

/*
 * The block injected into every step's prompt so that no model loses its
 * way ("lost agent"):
 *
 *   ## Current Position\n
 *   - Goal: <goal>\n
 *   - Step: <current_step>/<total_steps> - <step_name>\n
 *   - Previous: <the last TRAJECTORY_PREVIOUS decisions, oldest first, "; ">\n
 *   - Next: <next>\n
 *   - Forbidden: <forbidden>\n
 *
 * Every value has its newlines, tabs and other control characters folded
 * to one space and is trimmed, so the block always has exactly these six
 * lines; a value longer than TRAJECTORY_FIELD_MAX bytes is cut at a
 * character boundary and ends with "…".  A NULL or blank goal, previous,
 * next or forbidden reads "none"; a NULL or blank step_name drops " - …".
 * Returns a string the caller frees with free(), or NULL when 'h' is NULL
 * or memory runs out.
 */
char *trajectory_render(const struct handoff *h, const char *step_name, const char *next,
                        const char *forbidden);

/* ---- budgets (spec: Context Budget Allocation) --------------------------- */

/* How one model's context window is shared by the parts of a step's
 * prompt and its answer, in tokens; the six parts sum to total. */
struct context_budget {
	int total, system, trajectory, handoff, user_query, generation;
};

/* The smallest context with a usable budget: the floors of the four prompt
 * parts (32 + 48 + 32 + 32 tokens) plus a quarter of the total for the
 * answer. */
#define CONTEXT_MIN_LENGTH 192

/*
 * The budget for a model with 'context_length' tokens of context.  The
 * rule reproduces the spec's two examples exactly (8192: 500/300/1500/2000,
 * generation 3892; 131072: 1000/500/4000/32000, generation 93572):
 *  - from 8192 up, each of system, trajectory, handoff and user_query
 *    follows the power law through its two spec values,
 *    share = v8K * (T/8192)^k with k = log2(v128K/v8K) / 4
 *    (system k = 0.25, trajectory 0.184, handoff 0.354, user_query 1:
 *    exactly T * 125/512);
 *  - below 8192, each part keeps its 8K share (share = v8K * T/8192),
 *    raised to a floor (system 32, trajectory 48, handoff 32, user_query
 *    32);
 *  - the shares are rounded as a running sum (user_query, handoff,
 *    system, trajectory), so each part is within one token of its share
 *    and generation, the rest, never shrinks as T grows;
 *  - if generation is then under ceil(T/4), handoff and then user_query
 *    give tokens back down to their floors.
 * Generation is at least a quarter of the total for every length from
 * CONTEXT_MIN_LENGTH up (47.5% at 8K, rising towards 75.6%).  Errors:
 * BRG_E_CONTEXT_BUDGET below CONTEXT_MIN_LENGTH (details "context_length",
 * "minimum"), BRG_E_BAD_REQUEST for a NULL 'out'.  On error *out is
 * zeroed.  No heap.
 */
enum brg_err context_budget_for(int context_length, struct context_budget *out,
                                struct brg_error *err) __attribute__((warn_unused_result));

/*
 * used_tokens / total, clamped to [0, 1], for inference_metadata's
 * context_utilization.  0 for a NULL budget, a total <= 0 or used <= 0.
 */
double context_utilization(const struct context_budget *b, int used_tokens);

/* ---- fit to budget (spec: Automated Token Budget Enforcement) ------------- */

/* The number of tokens 'text' takes for the model at hand; < 0: cannot
 * count (the fit then fails with BRG_E_CONTEXT_BUDGET). */
typedef int (*token_count_fn)(void *ud, const char *text);

/*
 * Rewrites 'text' to about 'target_tokens' tokens (ratio = target share of
 * the current length, for a compressor that thinks in ratios).  Returns a
 * malloc'd string that context_fit() takes ownership of and frees, or NULL
 * with 'err' set.  In brigade it runs the `fast` model on
 * context_compression_system() + context_compression_prompt().
 */
typedef char *(*compress_fn)(void *ud, const char *text, int target_tokens, double ratio,
                             struct brg_error *err);

#define CONTEXT_FIT_MAX_ITERATIONS 3
#define CONTEXT_FIT_MARGIN         0.9 /* the spec's 10% safety margin */

struct fit_result {
	char *text;      /* owned: fit_result_fini() or free() */
	int tokens;      /* count(text) */
	int iterations;  /* compressions tried: 0..CONTEXT_FIT_MAX_ITERATIONS */
	bool compressed; /* text is a compressor's output, not the input */
};

/*
 * Fits 'text' into 'max_tokens'.  Counts it (invalid UTF-8 first becomes
 * U+FFFD); if it fits, returns a copy.  Otherwise calls 'compress' up to
 * CONTEXT_FIT_MAX_ITERATIONS times, each time on the shortest text so far
 * with target_tokens = floor(max_tokens * 0.9) and ratio =
 * (max_tokens / current_tokens) * 0.9, and stops at the first result that
 * fits.  A result that is NULL, blank, or not shorter (in tokens) than
 * its input is discarded and counts as an iteration.  Never truncates.
 * Errors:
 *  - BRG_E_COMPRESSION when no result fit after the last iteration
 *    (details "current_tokens" of the shortest text, "budget",
 *    "iterations", "compression_attempted": true, and "last_failure" when
 *    a result was discarded or the compressor failed);
 *  - BRG_E_CONTEXT_BUDGET when 'count' fails (details "budget"), or when
 *    the text does not fit and there is nothing to try: 'compress' is
 *    NULL or max_tokens < 1 (details "current_tokens", "budget",
 *    "compression_attempted": false);
 *  - BRG_E_BAD_REQUEST for NULL text, count or out; BRG_E_NOMEM.
 * On error *out is zeroed.  The compressor gets its own struct brg_error,
 * so its details never crowd out ours.  'ud' goes to both callbacks.
 */
enum brg_err context_fit(const char *text, int max_tokens, token_count_fn count,
                         compress_fn compress, void *ud, struct fit_result *out,
                         struct brg_error *err) __attribute__((warn_unused_result));

/* Frees r->text and zeroes 'r'.  NULL is a no-op. */
void fit_result_fini(struct fit_result *r);

/*
 * The system message of a compression call (spec: Compression Strategy):
 * keep decisions, constraints, open questions, key evidence references and
 * one-line error summaries; drop raw reasoning, verbose explanations and
 * examples, stack traces, intermediate outputs and the details of resolved
 * errors; add nothing.  The same text for every call, so a prefix cache
 * can keep it.  Static storage.
 */
const char *context_compression_system(void);

/*
 * The user message of a compression call: the target ("at most N tokens,
 * about M words") and 'text' between <context> tags (invalid UTF-8 becomes
 * U+FFFD).  Returns a string the caller frees with free(), or NULL when
 * 'text' is NULL, target_tokens < 1 or memory runs out.
 */
char *context_compression_prompt(const char *text, int target_tokens);

/*
 * A cheap, deliberately high token estimate for providers that cannot
 * count: each run of ASCII letters counts ceil(length / 3), each run of
 * digits its length + 1, each other ASCII byte except the space 1, each
 * byte of a non-ASCII character 1.  Against the Llama-2 tokenizer (32K
 * vocabulary) on 437 paragraphs of English prose, markdown, code and JSON
 * it over-estimates by 1.5x (median) and fell short on 1 paragraph
 * (emoji, 0.91x); modern larger vocabularies give fewer tokens still.
 * Tiny vocabularies give more (stories260K's 512 tokens: 1.7x more than
 * this estimate on technical text), but local models count exactly.
 * 0 for NULL; saturates at INT_MAX.  Linear, no heap.
 */
int context_estimate_tokens(const char *text);

/* context_estimate_tokens() as a token_count_fn ('ud' unused). */
int context_estimate_count(void *ud, const char *text);

/* ---- error contamination (spec: Error Contamination Detection) ------------ */

enum contamination_severity { CONTAM_NONE, CONTAM_WARNING, CONTAM_HIGH, CONTAM_CRITICAL };

/* "none", "warning", "high", "critical"; "none" for out-of-range values. */
const char *contamination_severity_name(enum contamination_severity s);

#define CONTAMINATION_MAX_ISSUES 16
#define CONTAMINATION_DETAIL_MAX 256

struct contamination_issue {
	/* "error_marker_detected" | "contradiction_detected" | "error_accumulation";
	 * static storage */
	const char *type;
	char detail[CONTAMINATION_DETAIL_MAX]; /* one line, valid UTF-8 */
	enum contamination_severity severity;
};

struct contamination_report {
	struct contamination_issue issues[CONTAMINATION_MAX_ISSUES]; /* most severe first */
	size_t n;
	size_t n_omitted;                  /* issues found beyond the array (least severe) */
	enum contamination_severity worst; /* over all issues found, omitted ones too */
	bool is_valid;                     /* worst < CONTAM_HIGH */
	const char *recommendation;        /* "proceed" | "quarantine" | "abort"; static */
};

/*
 * Checks one step's output before it is handed on (rules, examples and
 * limits: docs/context.md):
 *  - error_marker_detected (warning): the spec's five markers — "I
 *    apologize", "I made an error", "That's incorrect", "hallucination",
 *    "I don't have information about" — and their spelling variants "I
 *    apologise", "That is incorrect", "I do not have information about",
 *    plus "I made a mistake"; matched as whole words from the first word
 *    on, ASCII case-insensitive, any spaces or tabs between words (but no
 *    clause break: sentence punctuation, a line break, a bracket, quote
 *    or dash), ’ as ', the last word as a prefix ("hallucinations"); one
 *    issue per marker;
 *  - contradiction_detected (high): the output negates a decision in
 *    h->decisions_made — a negation word (not, no, never, without, avoid,
 *    against, instead, rather, reject, abandon, nor, cannot, …n't) at
 *    most 3 words before the decision's key phrase, in the same clause;
 *    one issue per decision;
 *  - error_accumulation (high): h->active_errors.n > h->current_step.
 * Critical: a contradiction together with error accumulation, or three or
 * more contradictions; the issues that make it so are marked critical.
 * worst is the highest severity found; recommendation: "proceed" up to
 * warning, "quarantine" for high, "abort" for critical.  A NULL 'h' checks
 * the markers only; a NULL 'output' reads as "".  Never fails; a NULL 'out'
 * is ignored.  No heap; linear in the output per decision.
 */
void contamination_check(const struct handoff *h, const char *output,
                         struct contamination_report *out);

/*
 * The spec's warning action — "log, continue with active_errors updated":
 * adds each warning of 'r' to h->active_errors as
 * "step <current_step>: <type>: <detail>".  Idempotent (handoff_add()
 * skips duplicates).  High and critical issues are not recorded: their
 * output is quarantined or the run aborted, so it never becomes context.
 * Errors: those of handoff_add(); BRG_E_BAD_REQUEST for NULL arguments.
 */
enum brg_err contamination_apply(struct handoff *h, const struct contamination_report *r,
                                 struct brg_error *err) __attribute__((warn_unused_result));

#endif
