/*
 * admit.h — admission control: how many generation and embedding requests
 * run at once, and the bounded queue where the others wait their turn
 * (spec: Concurrency & Scaling; Configuration Reference → Request
 * Handling, Queue Behavior, Priority Queue; docs/admission.md).
 *
 * A request enters with a ticket (caller-allocated).  It runs at once when
 * the server is under INFERENCE_MAX_CONCURRENT_REQUESTS and its model under
 * its own limit; otherwise it waits in the queue — ordered by priority
 * level (with the priority strategy), first come first served within a
 * level — or is refused when the queue is full.  A waiting ticket gets an
 * eventfd that becomes readable when its turn comes, so the HTTP thread
 * sleeps in poll() on it next to the client's socket (http_wait) and a
 * client that goes away leaves the queue at once.
 *
 * Requests are grouped into classes by model ("local:phi-4"); a class has
 * its own limit (0: none).  Orchestrated requests enter without a model:
 * they count only against the global limit.
 *
 * Cost: entering, leaving and handing a turn on are O(log n) in the number
 * of models with waiting requests (a heap of the classes that could run,
 * keyed by their first waiter), under one mutex held briefly.  Nothing
 * polls: turns are handed on when a running request leaves.
 *
 * Threads: every function may be called from any thread, except that one
 * ticket is used by one thread at a time.
 */
#ifndef BRG_ADMIT_ADMIT_H
#define BRG_ADMIT_ADMIT_H

#include <stdbool.h>

#include "core/err.h"

#define ADMIT_MAX_LEVELS 3 /* priorities 1 (low) .. 3 (high) */

struct admit;
struct admit_class;

struct admit_opts {
	int max_concurrent;   /* requests running at once, >= 1 */
	int max_per_model;    /* > 0: every model's limit; 0: the n_slots hint of admit_enter */
	int queue_size;       /* requests waiting, >= 0; 0: nobody waits */
	bool is_priority;     /* order the queue by priority level; false: FIFO */
	int n_levels;         /* 1..ADMIT_MAX_LEVELS */
	int default_priority; /* 1..n_levels */
	/* true: a request that finds the queue full is refused (429).
	 * false: it waits anyway, past queue_size, bounded by its deadline. */
	bool reject_when_full;
};

/* max_concurrent 10, max_per_model 0, queue_size 100, FIFO, 3 levels,
 * default 2, reject when full: the spec's defaults. */
struct admit_opts admit_default_opts(void);

/* NULL on out-of-memory or when no eventfd can be had.  'o' is copied;
 * out-of-range values are clamped into range. */
struct admit *admit_new(const struct admit_opts *o);
/* Every ticket must have left.  admit_free(NULL) is a no-op. */
void admit_free(struct admit *a);

enum admit_state {
	ADMIT_IDLE,    /* not entered, or left */
	ADMIT_WAITING, /* in the queue */
	ADMIT_RUNNING, /* its turn came: it counts against the limits */
	ADMIT_REFUSED, /* shut down while waiting: it never ran */
};

/* A caller-allocated place in line.  Fields are admit.c's; read them only
 * through the functions below. */
struct admit_ticket {
	struct admit_ticket *prev, *next; /* in its class's level list */
	struct admit_class *cls;
	enum admit_state state;
	int level;              /* 0-based list index */
	unsigned long long seq; /* arrival order */
	int efd;                /* -1 unless the ticket has waited */
	long long t_run_ms;     /* when it started running */
};

/* Makes 't' IDLE.  Can't fail. */
void admit_ticket_init(struct admit_ticket *t);

struct admit_want {
	const char *model; /* class key ("local:phi-4"); NULL: only the global limit */
	int n_slots;       /* the model's parallel sequences, 0 unknown: its limit
	                    * when max_per_model is 0 (0: no limit) */
	int priority;      /* 1..n_levels; 0: the default priority */
};

/*
 * Puts 't' (IDLE) in line.  BRG_OK: 't' is RUNNING, or WAITING — then poll
 * admit_ticket_fd() and call admit_poll() when it is readable.  Errors (t
 * stays IDLE): BRG_E_BAD_REQUEST (priority outside 1..n_levels; detail
 * "param": "priority"), BRG_E_RATE_LIMITED (the queue is full;
 * err->retry_after_ms estimated from recent service times, >= 1 s),
 * BRG_E_SHUTTING_DOWN (after admit_close), BRG_E_RESOURCE (no eventfd),
 * BRG_E_NOMEM.
 */
enum brg_err admit_enter(struct admit *a, struct admit_ticket *t, const struct admit_want *w,
                         struct brg_error *err) __attribute__((warn_unused_result));

/* The eventfd to poll for POLLIN while 't' is WAITING; -1 otherwise. */
int admit_ticket_fd(const struct admit_ticket *t);

/*
 * After a wake-up: clears the eventfd and reports 't's state (WAITING after
 * a spurious wake-up).  REFUSED: shut down before its turn came — the
 * caller answers BRG_E_SHUTTING_DOWN and still calls admit_leave().
 */
enum admit_state admit_poll(struct admit *a, struct admit_ticket *t);

/*
 * Leaves the line: a WAITING ticket leaves the queue, a RUNNING one frees
 * its place for the next (and its run time feeds the Retry-After
 * estimate).  Closes the eventfd; 't' is IDLE after.  No-op on an IDLE
 * ticket.  Can't fail.
 */
void admit_leave(struct admit *a, struct admit_ticket *t);

/*
 * Shutdown, first step: new tickets get BRG_E_SHUTTING_DOWN; waiting and
 * running ones keep their places and are served.  Can't fail.
 */
void admit_close(struct admit *a);
/* Shutdown after the grace period: every WAITING ticket becomes REFUSED
 * (its eventfd is signalled).  Running ones are the caller's to cancel. */
void admit_refuse_waiting(struct admit *a);

struct admit_stats {
	int n_running;
	int n_waiting;
	long long n_admitted; /* since start: tickets that ran */
	long long n_rejected; /* since start: refused because the queue was full */
	long long avg_run_ms; /* recent service time (moving average); 0: none yet */
	bool is_closed;
	struct admit_opts opts;
};

void admit_get_stats(struct admit *a, struct admit_stats *out);

/* Tickets running or waiting in class 'model' (a key as admit_want.model
 * gives it): how busy that model is, for auto-routing's least_busy.
 * Never creates the class; 0 when it has none. */
int admit_model_load(struct admit *a, const char *model);

#endif
