/*
 * admit.c — admission control; see admit.h for the contract and
 * docs/admission.md for the behaviour a client sees.
 *
 * Data: each class (a model, or "no model" for orchestrated requests)
 * holds its waiting tickets in one intrusive FIFO list per priority level
 * (with the FIFO strategy every ticket goes to level 0).  A binary heap
 * holds exactly the classes that could start a waiter now — some waiting,
 * under their own limit — ordered by their first waiter: higher level
 * first, then earlier arrival.  So the next request to run is the heap's
 * top whenever the server is under its global limit, and every operation
 * is O(1) on the lists plus O(log n) on the heap.
 *
 * Invariant (after every call, under the mutex): the server is at its
 * global limit or the heap is empty — nobody waits who could run.  That
 * is why a new arrival may start at once without looking at the queue:
 * if it has room, no waiter ahead of it could have used that room.
 *
 * Classes are created on first use and freed when nothing of theirs waits
 * or runs, so model names from clients (remote catalogues are open) cannot
 * grow the table without bound.
 */
#include "admit/admit.h"

#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"

#define N_BUCKETS    64
#define NOT_IN_HEAP  SIZE_MAX
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS (600 * 1000)

struct tlist {
	struct admit_ticket *head, *tail;
};

struct admit_class {
	char *key; /* NULL: the no-model class */
	int limit; /* 0: none */
	int n_running, n_waiting;
	struct tlist q[ADMIT_MAX_LEVELS]; /* q[l]: level l+1; the highest is served first */
	size_t heap_at;                   /* NOT_IN_HEAP unless it could start a waiter */
	struct admit_class *next;         /* hash chain */
};

struct admit {
	pthread_mutex_t mu;
	struct admit_opts o;
	int n_running, n_waiting;
	unsigned long long next_seq;
	struct admit_class none; /* requests without a model */
	struct admit_class *buckets[N_BUCKETS];
	struct admit_class **heap; /* capacity > n_waiting, so a push never fails */
	size_t n_heap, heap_cap;
	long long avg_run_ms;
	long long n_admitted, n_rejected;
	bool is_closed;
	bool has_warned_over; /* the queue passed queue_size (reject_when_full off) */
};

static int clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

struct admit_opts admit_default_opts(void)
{
	return (struct admit_opts){
	    .max_concurrent = 10,
	    .queue_size = 100,
	    .n_levels = 3,
	    .default_priority = 2,
	    .reject_when_full = true,
	};
}

struct admit *admit_new(const struct admit_opts *o)
{
	struct admit *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->o = *o;
	a->o.max_concurrent = clamp(o->max_concurrent, 1, INT32_MAX);
	a->o.max_per_model = clamp(o->max_per_model, 0, INT32_MAX);
	a->o.queue_size = clamp(o->queue_size, 0, INT32_MAX);
	a->o.n_levels = clamp(o->n_levels, 1, ADMIT_MAX_LEVELS);
	a->o.default_priority = clamp(o->default_priority, 1, a->o.n_levels);
	a->none.heap_at = NOT_IN_HEAP;
	a->heap_cap = 16;
	a->heap = malloc(a->heap_cap * sizeof *a->heap);
	if (!a->heap || pthread_mutex_init(&a->mu, NULL)) {
		free(a->heap);
		free(a);
		return NULL;
	}
	return a;
}

void admit_free(struct admit *a)
{
	if (!a)
		return;
	assert(a->n_running == 0 && a->n_waiting == 0);
	for (size_t i = 0; i < N_BUCKETS; i++)
		while (a->buckets[i]) {
			struct admit_class *c = a->buckets[i];
			a->buckets[i] = c->next;
			free(c->key);
			free(c);
		}
	pthread_mutex_destroy(&a->mu);
	free(a->heap);
	free(a);
}

void admit_ticket_init(struct admit_ticket *t)
{
	*t = (struct admit_ticket){.state = ADMIT_IDLE, .efd = -1};
}

int admit_ticket_fd(const struct admit_ticket *t)
{
	return t->efd;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;
	if (fd >= 0 && write(fd, &one, sizeof one) < 0)
		log_warn("admission: cannot wake a waiting request");
}

/* ---- lists and the heap (all under a->mu) ------------------------------ */

static void list_append(struct tlist *l, struct admit_ticket *t)
{
	t->next = NULL;
	t->prev = l->tail;
	if (l->tail)
		l->tail->next = t;
	else
		l->head = t;
	l->tail = t;
}

static void list_remove(struct tlist *l, struct admit_ticket *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		l->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		l->tail = t->prev;
	t->prev = t->next = NULL;
}

static struct admit_ticket *first_waiter(const struct admit_class *c)
{
	for (int l = ADMIT_MAX_LEVELS - 1; l >= 0; l--)
		if (c->q[l].head)
			return c->q[l].head;
	return NULL;
}

/* Whether class x's first waiter goes before class y's. */
static bool goes_first(const struct admit_class *x, const struct admit_class *y)
{
	const struct admit_ticket *a = first_waiter(x), *b = first_waiter(y);
	return a->level != b->level ? a->level > b->level : a->seq < b->seq;
}

static void heap_set(struct admit *a, size_t i, struct admit_class *c)
{
	a->heap[i] = c;
	c->heap_at = i;
}

static void sift_up(struct admit *a, size_t i)
{
	struct admit_class *c = a->heap[i];
	while (i > 0 && goes_first(c, a->heap[(i - 1) / 2])) {
		heap_set(a, i, a->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(a, i, c);
}

static void sift_down(struct admit *a, size_t i)
{
	struct admit_class *c = a->heap[i];
	for (;;) {
		size_t k = 2 * i + 1;
		if (k >= a->n_heap)
			break;
		if (k + 1 < a->n_heap && goes_first(a->heap[k + 1], a->heap[k]))
			k++;
		if (!goes_first(a->heap[k], c))
			break;
		heap_set(a, i, a->heap[k]);
		i = k;
	}
	heap_set(a, i, c);
}

static bool can_start(const struct admit_class *c)
{
	return c->n_waiting > 0 && (c->limit <= 0 || c->n_running < c->limit);
}

/* Restores "in the heap exactly when it could start a waiter, in place". */
static void update(struct admit *a, struct admit_class *c)
{
	bool is_in = c->heap_at != NOT_IN_HEAP;
	if (!can_start(c)) {
		if (!is_in)
			return;
		size_t i = c->heap_at;
		struct admit_class *last = a->heap[--a->n_heap];
		c->heap_at = NOT_IN_HEAP;
		if (last != c) {
			heap_set(a, i, last);
			sift_up(a, i);
			sift_down(a, last->heap_at);
		}
		return;
	}
	if (!is_in) {
		assert(a->n_heap < a->heap_cap);
		heap_set(a, a->n_heap++, c);
	}
	sift_up(a, c->heap_at);
	sift_down(a, c->heap_at);
}

static void start_running(struct admit *a, struct admit_class *c, struct admit_ticket *t)
{
	c->n_running++;
	a->n_running++;
	a->n_admitted++;
	t->state = ADMIT_RUNNING;
	t->cls = c;
	t->t_run_ms = brg_now_ms();
}

/* Starts waiters while the server has room: the heap's top each time. */
static void hand_on(struct admit *a)
{
	while (a->n_running < a->o.max_concurrent && a->n_heap > 0) {
		struct admit_class *c = a->heap[0];
		struct admit_ticket *t = first_waiter(c);
		list_remove(&c->q[t->level], t);
		c->n_waiting--;
		a->n_waiting--;
		start_running(a, c, t);
		signal_fd(t->efd);
		update(a, c);
	}
}

/* ---- classes ------------------------------------------------------------ */

static size_t bucket_of(const char *key)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % N_BUCKETS;
}

/* The class for 'key' (NULL: the no-model one), created when new; NULL
 * on out-of-memory. */
static struct admit_class *class_get(struct admit *a, const char *key)
{
	if (!key)
		return &a->none;
	size_t b = bucket_of(key);
	for (struct admit_class *c = a->buckets[b]; c; c = c->next)
		if (strcmp(c->key, key) == 0)
			return c;
	struct admit_class *c = calloc(1, sizeof *c);
	if (!c || !(c->key = strdup(key))) {
		free(c);
		return NULL;
	}
	c->heap_at = NOT_IN_HEAP;
	c->next = a->buckets[b];
	a->buckets[b] = c;
	return c;
}

/* Frees a class that nothing waits in or runs under. */
static void class_put(struct admit *a, struct admit_class *c)
{
	if (c == &a->none || c->n_running || c->n_waiting)
		return;
	assert(c->heap_at == NOT_IN_HEAP);
	struct admit_class **p = &a->buckets[bucket_of(c->key)];
	while (*p != c)
		p = &(*p)->next;
	*p = c->next;
	free(c->key);
	free(c);
}

/* ---- entering and leaving ------------------------------------------------ */

/* How long until the queue ahead would have drained: the recent service
 * time times the waiters (plus this one) over the parallelism. */
static int retry_after_ms(const struct admit *a, const struct admit_class *c)
{
	long long per = a->avg_run_ms > 0 ? a->avg_run_ms : RETRY_MIN_MS;
	int parallel = a->o.max_concurrent;
	if (c->limit > 0 && c->limit < parallel)
		parallel = c->limit;
	long long ms = per * (a->n_waiting + 1) / parallel;
	return ms < RETRY_MIN_MS ? RETRY_MIN_MS : ms > RETRY_MAX_MS ? RETRY_MAX_MS : (int)ms;
}

static enum brg_err reject_full(struct admit *a, struct admit_class *c, struct brg_error *err)
{
	int ms = retry_after_ms(a, c);
	int n_running = a->n_running, n_waiting = a->n_waiting;
	a->n_rejected++;
	class_put(a, c);
	pthread_mutex_unlock(&a->mu);
	brg_fail(err, BRG_E_RATE_LIMITED,
	         "the server is at capacity: %d requests running and %d queued (queue size "
	         "%d); retry after %d s",
	         n_running, n_waiting, a->o.queue_size, (ms + 999) / 1000);
	brg_error_detail_int(err, "running", n_running);
	brg_error_detail_int(err, "queued", n_waiting);
	brg_error_detail_int(err, "queue_size", a->o.queue_size);
	brg_error_detail_int(err, "retry_after_ms", ms);
	if (err)
		err->retry_after_ms = ms;
	return BRG_E_RATE_LIMITED;
}

/* Queues 't' in class 'c'.  Called and returns with a->mu held. */
static enum brg_err enqueue(struct admit *a, struct admit_class *c, struct admit_ticket *t,
                            int priority, struct brg_error *err)
{
	if ((size_t)a->n_waiting + 1 >= a->heap_cap) {
		size_t cap = a->heap_cap * 2;
		struct admit_class **h = realloc(a->heap, cap * sizeof *h);
		if (!h)
			return brg_fail(err, BRG_E_NOMEM, "out of memory");
		a->heap = h;
		a->heap_cap = cap;
	}
	t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->efd < 0)
		return brg_fail(err, BRG_E_RESOURCE,
		                "cannot queue the request (out of descriptors)");
	t->level = a->o.is_priority ? priority - 1 : 0;
	t->seq = a->next_seq++;
	t->state = ADMIT_WAITING;
	t->cls = c;
	list_append(&c->q[t->level], t);
	c->n_waiting++;
	a->n_waiting++;
	if (a->n_waiting > a->o.queue_size && !a->has_warned_over) {
		a->has_warned_over = true;
		log_warn("admission: %d requests queued, past the queue size %d "
		         "(INFERENCE_REJECT_WHEN_FULL=false lets them wait)",
		         a->n_waiting, a->o.queue_size);
	}
	update(a, c);
	return BRG_OK;
}

enum brg_err admit_enter(struct admit *a, struct admit_ticket *t, const struct admit_want *w,
                         struct brg_error *err)
{
	int prio = w->priority ? w->priority : a->o.default_priority;
	if (prio < 1 || prio > a->o.n_levels) {
		brg_fail(err, BRG_E_BAD_REQUEST,
		         "'priority' must be an integer from 1 to %d (%d is the highest), got %d",
		         a->o.n_levels, a->o.n_levels, prio);
		brg_error_detail_str(err, "param", "priority");
		return BRG_E_BAD_REQUEST;
	}
	int limit = a->o.max_per_model > 0 ? a->o.max_per_model : w->n_slots > 0 ? w->n_slots : 0;
	pthread_mutex_lock(&a->mu);
	if (a->is_closed) {
		pthread_mutex_unlock(&a->mu);
		return brg_fail(err, BRG_E_SHUTTING_DOWN, "the server is shutting down");
	}
	struct admit_class *c = class_get(a, w->model);
	if (!c) {
		pthread_mutex_unlock(&a->mu);
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	}
	if (w->model && c->limit != limit) { /* a model reloaded with other slots */
		c->limit = limit;
		update(a, c);
		hand_on(a);
	}
	enum brg_err rc = BRG_OK;
	if (a->n_running < a->o.max_concurrent && (c->limit <= 0 || c->n_running < c->limit))
		start_running(a, c, t);
	else if (a->n_waiting >= a->o.queue_size && (a->o.reject_when_full || !a->o.queue_size))
		return reject_full(a, c, err); /* unlocks */
	else if ((rc = enqueue(a, c, t, prio, err)))
		class_put(a, c);
	pthread_mutex_unlock(&a->mu);
	return rc;
}

enum admit_state admit_poll(struct admit *a, struct admit_ticket *t)
{
	uint64_t v;
	if (t->efd >= 0 && read(t->efd, &v, sizeof v) < 0) {
		/* EAGAIN: nothing to clear */
	}
	pthread_mutex_lock(&a->mu);
	enum admit_state s = t->state;
	pthread_mutex_unlock(&a->mu);
	return s;
}

void admit_leave(struct admit *a, struct admit_ticket *t)
{
	if (!a || t->state == ADMIT_IDLE)
		return;
	pthread_mutex_lock(&a->mu);
	struct admit_class *c = t->cls;
	if (t->state == ADMIT_WAITING) {
		list_remove(&c->q[t->level], t);
		c->n_waiting--;
		a->n_waiting--;
		update(a, c);
		class_put(a, c);
	} else if (t->state == ADMIT_RUNNING) {
		long long ms = brg_now_ms() - t->t_run_ms;
		a->avg_run_ms = a->avg_run_ms ? (a->avg_run_ms * 7 + ms) / 8 : (ms > 0 ? ms : 1);
		c->n_running--;
		a->n_running--;
		update(a, c);
		hand_on(a);
		class_put(a, c);
	} /* REFUSED: its counts went at the refusal */
	if (a->n_waiting <= a->o.queue_size)
		a->has_warned_over = false;
	t->state = ADMIT_IDLE;
	t->cls = NULL;
	pthread_mutex_unlock(&a->mu);
	if (t->efd >= 0)
		close(t->efd);
	t->efd = -1;
}

/* ---- shutdown and stats ---------------------------------------------------- */

void admit_close(struct admit *a)
{
	pthread_mutex_lock(&a->mu);
	a->is_closed = true;
	pthread_mutex_unlock(&a->mu);
}

static void refuse_class(struct admit *a, struct admit_class *c)
{
	for (int l = 0; l < ADMIT_MAX_LEVELS; l++)
		while (c->q[l].head) {
			struct admit_ticket *t = c->q[l].head;
			list_remove(&c->q[l], t);
			c->n_waiting--;
			a->n_waiting--;
			t->state = ADMIT_REFUSED;
			t->cls = NULL;
			signal_fd(t->efd);
		}
	update(a, c);
}

void admit_refuse_waiting(struct admit *a)
{
	pthread_mutex_lock(&a->mu);
	refuse_class(a, &a->none);
	for (size_t i = 0; i < N_BUCKETS; i++)
		for (struct admit_class *c = a->buckets[i], *next; c; c = next) {
			next = c->next;
			refuse_class(a, c);
			class_put(a, c);
		}
	pthread_mutex_unlock(&a->mu);
}

int admit_model_load(struct admit *a, const char *model)
{
	pthread_mutex_lock(&a->mu);
	int n = 0;
	for (const struct admit_class *c = a->buckets[bucket_of(model)]; c; c = c->next)
		if (strcmp(c->key, model) == 0)
			n = c->n_running + c->n_waiting;
	pthread_mutex_unlock(&a->mu);
	return n;
}

void admit_get_stats(struct admit *a, struct admit_stats *out)
{
	pthread_mutex_lock(&a->mu);
	*out = (struct admit_stats){
	    .n_running = a->n_running,
	    .n_waiting = a->n_waiting,
	    .n_admitted = a->n_admitted,
	    .n_rejected = a->n_rejected,
	    .avg_run_ms = a->avg_run_ms,
	    .is_closed = a->is_closed,
	    .opts = a->o,
	};
	pthread_mutex_unlock(&a->mu);
}
