/*
 * test_fallback.c — unit tests for provider/fallback: the fallback chain
 * (which errors switch providers, which model the next one is asked for,
 * no switch once text went out), the "every provider failed" error and
 * its details, circuit breakers, health checks and their listing.
 *
 * Every provider here is a fake defined below, scripted per test: its
 * generate() either fails at once (FAKE_FAIL), finishes every choice
 * inside the call (FAKE_SYNC — and then reads the request once more, as a
 * real provider may, so that a run freed too early is caught by ASan), or
 * finishes from its own thread after a delay (FAKE_ASYNC).  Every wait has
 * a timeout, so a broken fallback fails a test instead of hanging it.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "testutil.h"

#include "core/err.h"
#include "core/gen.h"
#include "core/log.h"
#include "provider/fallback.h"
#include "provider/provider.h"

#define MAX_CHOICES 4
#define MAX_SEEN    16
#define MAX_THREADS 64
#define WAIT_MS     3000
#define TEXT_MAX    256

/* ---- producer threads: every one is joined before a test ends ---- */

static pthread_mutex_t threads_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t threads[MAX_THREADS];
static size_t n_threads;

static bool threads_push(pthread_t t)
{
	pthread_mutex_lock(&threads_mu);
	bool ok = n_threads < MAX_THREADS;
	if (ok)
		threads[n_threads++] = t;
	pthread_mutex_unlock(&threads_mu);
	return ok;
}

/* Joins every producer thread, including those started by a thread being
 * joined (a retry runs on the failed attempt's thread). */
static void threads_reap(void)
{
	for (;;) {
		pthread_mutex_lock(&threads_mu);
		if (n_threads == 0) {
			pthread_mutex_unlock(&threads_mu);
			return;
		}
		pthread_t t = threads[--n_threads];
		pthread_mutex_unlock(&threads_mu);
		pthread_join(t, NULL);
	}
}

/* ---- the fake provider ---- */

enum fake_mode {
	FAKE_FAIL,  /* generate() returns script.code; no sink is called */
	FAKE_SYNC,  /* every choice finishes inside generate() */
	FAKE_ASYNC, /* a thread finishes every choice after delay_ms */
};

struct script {
	enum fake_mode mode;
	/* FAKE_FAIL: what generate() returns.  Otherwise each choice's end:
	 * BRG_OK finishes with GEN_FINISH_STOP, else GEN_FINISH_ERROR. */
	enum brg_err code;
	const char *text; /* sent on every choice before it ends; NULL: none */
	int delay_ms;     /* FAKE_ASYNC */
};

struct fake {
	struct provider_ops ops;
	const char *name;
	const char *models[4];
	size_t n_models;
	pthread_mutex_t mu;
	/* under mu */
	struct script script;
	enum brg_err health_rc;
	long long health_latency_ms;
	int n_generate;
	int n_health;
	int n_post_reads; /* FAKE_SYNC: request read after the last on_done */
	char seen[MAX_SEEN][64];
	size_t n_seen;
	const struct sink *last_sinks;
};

/* The message a fake's error carries. */
static void fake_msg(char *buf, size_t n, const char *name, enum brg_err code)
{
	snprintf(buf, n, "%s: scripted %s", name, brg_err_code(code));
}

static void finish_all(const char *name, const struct script *s, const struct sink *sinks, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s->text && *s->text)
			sinks[i].on_piece(sinks[i].ud, s->text, strlen(s->text));
		struct gen_result res = {.finish = GEN_FINISH_STOP, .n_prompt = 3};
		brg_error_clear(&res.error);
		if (s->code) {
			char msg[128];
			fake_msg(msg, sizeof msg, name, s->code);
			res.finish = GEN_FINISH_ERROR;
			brg_fail(&res.error, s->code, "%s", msg);
		} else {
			res.n_completion = 1;
		}
		sinks[i].on_done(sinks[i].ud, &res);
	}
}

struct job {
	const char *name;
	struct script s;
	size_t n;
	struct sink sinks[MAX_CHOICES];
};

static void *job_main(void *arg)
{
	struct job *j = arg;
	sleep_ms(j->s.delay_ms);
	finish_all(j->name, &j->s, j->sinks, j->n);
	free(j);
	return NULL;
}

static bool fake_has_model(void *impl, const char *id)
{
	struct fake *fk = impl;
	for (size_t i = 0; i < fk->n_models; i++)
		if (strcmp(fk->models[i], id) == 0)
			return true;
	return false;
}

static enum brg_err fake_generate(void *impl, const struct gen_request *r, struct sink *sinks,
                                  struct brg_error *err)
{
	struct fake *fk = impl;
	pthread_mutex_lock(&fk->mu);
	struct script s = fk->script;
	fk->n_generate++;
	if (fk->n_seen < MAX_SEEN)
		snprintf(fk->seen[fk->n_seen++], sizeof fk->seen[0], "%s", r->model);
	fk->last_sinks = sinks;
	pthread_mutex_unlock(&fk->mu);
	if (r->n_choices < 1 || r->n_choices > MAX_CHOICES)
		return brg_fail(err, BRG_E_INTERNAL, "fake: bad n_choices %zu", r->n_choices);
	if (s.mode == FAKE_FAIL) {
		char msg[128];
		fake_msg(msg, sizeof msg, fk->name, s.code);
		return brg_fail(err, s.code, "%s", msg);
	}
	if (s.mode == FAKE_SYNC) {
		finish_all(fk->name, &s, sinks, r->n_choices);
		/* A provider may still read the request after its last on_done,
		 * until generate() returns: the run must still be there. */
		size_t len = strlen(r->model);
		pthread_mutex_lock(&fk->mu);
		if (len > 0 && r->n_choices >= 1 && r->prompt)
			fk->n_post_reads++;
		pthread_mutex_unlock(&fk->mu);
		return BRG_OK;
	}
	struct job *j = calloc(1, sizeof *j);
	if (!j)
		return brg_fail(err, BRG_E_NOMEM, "fake: out of memory");
	j->name = fk->name;
	j->s = s;
	j->n = r->n_choices;
	memcpy(j->sinks, sinks, j->n * sizeof *sinks);
	pthread_t t;
	if (pthread_create(&t, NULL, job_main, j) != 0) {
		free(j);
		return brg_fail(err, BRG_E_INTERNAL, "fake: cannot start a thread");
	}
	if (!threads_push(t)) {
		pthread_join(t, NULL);
		return BRG_OK; /* the job ran; only the bookkeeping is full */
	}
	return BRG_OK;
}

static void fake_each_model(void *impl, model_info_fn fn, void *ud)
{
	struct fake *fk = impl;
	for (size_t i = 0; i < fk->n_models; i++) {
		struct model_info m = {
		    .id = fk->models[i], .status = "available", .owned_by = "fake"};
		fn(ud, &m);
	}
}

static enum brg_err fake_check_health(void *impl, int timeout_ms, long long *latency_ms,
                                      struct brg_error *err)
{
	struct fake *fk = impl;
	(void)timeout_ms;
	pthread_mutex_lock(&fk->mu);
	enum brg_err rc = fk->health_rc;
	*latency_ms = fk->health_latency_ms;
	fk->n_health++;
	pthread_mutex_unlock(&fk->mu);
	if (rc) {
		char msg[128];
		fake_msg(msg, sizeof msg, fk->name, rc);
		return brg_fail(err, rc, "%s", msg);
	}
	return BRG_OK;
}

/* 'models' is a NULL-terminated list (at most 4). */
static void fake_init(struct fake *fk, const char *name, struct script s, const char *const *models)
{
	memset(fk, 0, sizeof *fk);
	fk->name = name;
	fk->ops = (struct provider_ops){
	    .name = name,
	    .is_open_catalog = true,
	    .has_model = fake_has_model,
	    .generate = fake_generate,
	    .each_model = fake_each_model,
	    .check_health = fake_check_health,
	};
	for (size_t i = 0; models && models[i] && i < 4; i++)
		fk->models[fk->n_models++] = models[i];
	pthread_mutex_init(&fk->mu, NULL);
	fk->script = s;
	fk->health_latency_ms = 5;
}

static void fake_destroy(struct fake *fk)
{
	pthread_mutex_destroy(&fk->mu);
}

static struct provider prov(struct fake *fk)
{
	return (struct provider){&fk->ops, fk};
}

static void fake_set(struct fake *fk, struct script s)
{
	pthread_mutex_lock(&fk->mu);
	fk->script = s;
	pthread_mutex_unlock(&fk->mu);
}

static void fake_set_health(struct fake *fk, enum brg_err rc, long long latency_ms)
{
	pthread_mutex_lock(&fk->mu);
	fk->health_rc = rc;
	fk->health_latency_ms = latency_ms;
	pthread_mutex_unlock(&fk->mu);
}

static int n_generate(struct fake *fk)
{
	pthread_mutex_lock(&fk->mu);
	int n = fk->n_generate;
	pthread_mutex_unlock(&fk->mu);
	return n;
}

static int n_health(struct fake *fk)
{
	pthread_mutex_lock(&fk->mu);
	int n = fk->n_health;
	pthread_mutex_unlock(&fk->mu);
	return n;
}

static const struct script FAIL_UPSTREAM = {FAKE_FAIL, BRG_E_UPSTREAM, NULL, 0};

/* ---- the collecting sink ---- */

struct coll;

struct slot {
	struct coll *c;
	size_t i;
};

struct coll {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t n;
	struct slot slots[MAX_CHOICES];
	struct sink sinks[MAX_CHOICES];
	char text[MAX_CHOICES][TEXT_MAX];
	size_t len[MAX_CHOICES];
	int n_done[MAX_CHOICES];
	int n_late_pieces; /* pieces after that choice's on_done */
	struct gen_result res[MAX_CHOICES];
};

static int coll_piece(void *ud, const char *utf8, size_t len)
{
	struct slot *s = ud;
	struct coll *c = s->c;
	pthread_mutex_lock(&c->mu);
	if (c->n_done[s->i])
		c->n_late_pieces++;
	size_t room = TEXT_MAX - 1 - c->len[s->i];
	size_t k = len < room ? len : room;
	memcpy(c->text[s->i] + c->len[s->i], utf8, k);
	c->len[s->i] += k;
	c->text[s->i][c->len[s->i]] = '\0';
	pthread_mutex_unlock(&c->mu);
	return 0;
}

static void coll_done(void *ud, const struct gen_result *res)
{
	struct slot *s = ud;
	struct coll *c = s->c;
	pthread_mutex_lock(&c->mu);
	c->n_done[s->i]++;
	c->res[s->i] = *res;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void coll_init(struct coll *c, size_t n)
{
	memset(c, 0, sizeof *c);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&c->mu, NULL);
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		c->slots[i] = (struct slot){c, i};
		c->sinks[i] = (struct sink){coll_piece, coll_done, &c->slots[i]};
	}
}

static void coll_destroy(struct coll *c)
{
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
}

static bool all_done_locked(const struct coll *c)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->n_done[i] == 0)
			return false;
	return true;
}

static bool coll_all_done(struct coll *c)
{
	pthread_mutex_lock(&c->mu);
	bool done = all_done_locked(c);
	pthread_mutex_unlock(&c->mu);
	return done;
}

/* Waits until every choice has its on_done (fails the test after
 * WAIT_MS), then joins the producers so that nothing can still arrive. */
static void coll_wait(struct coll *c)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&c->mu);
	bool done;
	while (!(done = all_done_locked(c)))
		if (pthread_cond_timedwait(&c->cv, &c->mu, &until) != 0 && !all_done_locked(c))
			break;
	done = all_done_locked(c);
	pthread_mutex_unlock(&c->mu);
	if (!done)
		fail_msg("timed out waiting for on_done");
	threads_reap();
}

/* Every choice ended exactly once, with 'finish' and 'code', after 'text'. */
static void assert_each(struct coll *c, enum gen_finish finish, enum brg_err code, const char *text)
{
	assert_int_equal(c->n_late_pieces, 0);
	for (size_t i = 0; i < c->n; i++) {
		assert_int_equal(c->n_done[i], 1);
		assert_int_equal(c->res[i].finish, finish);
		assert_int_equal(c->res[i].error.code, code);
		assert_string_equal(c->text[i], text);
	}
}

static void assert_no_done(struct coll *c)
{
	for (size_t i = 0; i < c->n; i++) {
		assert_int_equal(c->n_done[i], 0);
		assert_int_equal(c->len[i], 0);
	}
}

/* ---- helpers ---- */

static atomic_bool no_cancel;

static struct gen_request request(const char *model, size_t n_choices)
{
	struct gen_request r = {.model = model, .prompt = "hello", .n_choices = n_choices};
	r.params = gen_default_params();
	r.cancel = &no_cancel;
	return r;
}

static struct fallback *fb_new(bool is_enabled, int breaker_failures, int cooldown_s,
                               int interval_s)
{
	struct fallback_opts o = {.is_enabled = is_enabled,
	                          .breaker_failures = breaker_failures,
	                          .breaker_cooldown_s = cooldown_s,
	                          .health_interval_s = interval_s,
	                          .health_timeout_s = 1};
	struct fallback *f = fallback_new(&o);
	assert_non_null(f);
	return f;
}

static void add(struct fallback *f, struct fake *fk, int pos, const char *default_model)
{
	assert_int_equal(fallback_add(f, prov(fk), pos, default_model), BRG_OK);
}

static const struct brg_detail *detail(const struct brg_error *e, const char *key)
{
	for (size_t i = 0; i < e->n_details; i++)
		if (strcmp(e->details[i].key, key) == 0)
			return &e->details[i];
	return NULL;
}

/* 'e' names provider 'name' with that fake's error 'code'. */
static void assert_detail(const struct brg_error *e, const char *name, enum brg_err code)
{
	const struct brg_detail *d = detail(e, name);
	if (!d)
		fail_msg("no detail for provider %s", name);
	assert_int_equal(d->kind, BRG_DETAIL_STR);
	char want[128];
	fake_msg(want, sizeof want, name, code);
	assert_string_equal(d->s, want);
}

static enum brg_err gen(struct fallback *f, struct fake *fk, const char *model, struct coll *c,
                        struct brg_error *err)
{
	static struct gen_request r; /* must outlive the call: valid until on_done */
	r = request(model, c->n);
	brg_error_clear(err);
	return fallback_generate(f, prov(fk), &r, c->sinks, err);
}

/* One whole request to 'fk' with one choice; returns its outcome: the
 * synchronous error, else the choice's error code. */
static enum brg_err gen_one(struct fallback *f, struct fake *fk, struct brg_error *out)
{
	struct coll c;
	coll_init(&c, 1);
	struct brg_error err;
	enum brg_err rc = gen(f, fk, "m", &c, &err);
	if (rc == BRG_OK) {
		coll_wait(&c);
		assert_int_equal(c.n_done[0], 1);
		rc = c.res[0].error.code;
		if (out)
			*out = c.res[0].error;
	} else {
		assert_no_done(&c);
		if (out)
			*out = err;
	}
	coll_destroy(&c);
	return rc;
}

/* ---- health listing, copied out of the callback ---- */

struct hrow {
	char name[32];
	char state[16];
	int consecutive_failures;
	long long latency_ms;
	long long checked_at;
	bool has_last_error;
	char last_error[BRG_ERR_MSG_MAX];
	int chain_position;
	struct provider provider;
};

struct hlist {
	struct hrow rows[16];
	size_t n;
};

static void on_health(void *ud, const struct provider_health *h)
{
	struct hlist *l = ud;
	if (l->n >= 16)
		return;
	struct hrow *r = &l->rows[l->n++];
	snprintf(r->name, sizeof r->name, "%s", h->name);
	snprintf(r->state, sizeof r->state, "%s", h->state);
	r->consecutive_failures = h->consecutive_failures;
	r->latency_ms = h->latency_ms;
	r->checked_at = h->checked_at;
	r->has_last_error = h->last_error != NULL;
	snprintf(r->last_error, sizeof r->last_error, "%s", h->last_error ? h->last_error : "");
	r->chain_position = h->chain_position;
	r->provider = h->provider;
}

static struct hrow health_of(struct fallback *f, const char *name)
{
	struct hlist l = {0};
	fallback_each_health(f, on_health, &l);
	for (size_t i = 0; i < l.n; i++)
		if (strcmp(l.rows[i].name, name) == 0)
			return l.rows[i];
	fail_msg("no health row for %s", name);
	return l.rows[0];
}

/* Polls until 'name' is in 'state' after at least 'min_checks' checks of
 * 'fk'; false after 'ms'. */
static bool wait_health(struct fallback *f, struct fake *fk, const char *state, int min_checks,
                        int ms)
{
	long long until = now_ms() + ms;
	for (;;) {
		if (n_health(fk) >= min_checks) {
			struct hrow h = health_of(f, fk->name);
			if (h.checked_at != 0 && strcmp(h.state, state) == 0)
				return true;
		}
		if (now_ms() > until)
			return false;
		sleep_ms(5);
	}
}

static void model_count(void *ud, const struct model_info *m)
{
	(void)m;
	(*(int *)ud)++;
}

/* ---- pass-through ---- */

static void test_unregistered_provider_is_called_directly(void **state)
{
	(void)state;
	struct fake a, b, c;
	const char *const mods[] = {"m", NULL};
	fake_init(&a, "a", FAIL_UPSTREAM, mods);
	fake_init(&b, "b", (struct script){FAKE_SYNC, BRG_OK, "from-b", 0}, mods);
	fake_init(&c, "c", (struct script){FAKE_SYNC, BRG_OK, "direct", 0}, mods);
	struct fallback *f = fb_new(true, 2, 60, 60);
	add(f, &a, 0, NULL);
	add(f, &b, 1, NULL);

	/* c is not registered: its generate gets the caller's own sinks. */
	struct coll k;
	coll_init(&k, 2);
	struct brg_error err;
	assert_int_equal(gen(f, &c, "m", &k, &err), BRG_OK);
	assert_ptr_equal(c.last_sinks, k.sinks);
	assert_true(coll_all_done(&k));
	assert_each(&k, GEN_FINISH_STOP, BRG_OK, "direct");
	assert_string_equal(c.seen[0], "m");
	coll_destroy(&k);

	/* A finish error passes through untouched. */
	fake_set(&c, (struct script){FAKE_ASYNC, BRG_E_RATE_LIMITED, NULL, 5});
	coll_init(&k, 1);
	assert_int_equal(gen(f, &c, "m", &k, &err), BRG_OK);
	coll_wait(&k);
	assert_each(&k, GEN_FINISH_ERROR, BRG_E_RATE_LIMITED, "");
	coll_destroy(&k);

	/* A synchronous error is returned as is: no fallback to the chain. */
	fake_set(&c, FAIL_UPSTREAM);
	coll_init(&k, 1);
	assert_int_equal(gen(f, &c, "m", &k, &err), BRG_E_UPSTREAM);
	assert_int_equal(err.code, BRG_E_UPSTREAM);
	assert_string_equal(err.message, "c: scripted UPSTREAM_ERROR");
	assert_int_equal(err.n_details, 0);
	assert_no_done(&k);
	coll_destroy(&k);

	/* No fallback object at all: the same. */
	fake_set(&c, (struct script){FAKE_SYNC, BRG_OK, "plain", 0});
	coll_init(&k, 1);
	struct gen_request r = request("m", 1);
	assert_int_equal(fallback_generate(NULL, prov(&c), &r, k.sinks, &err), BRG_OK);
	assert_ptr_equal(c.last_sinks, k.sinks);
	assert_each(&k, GEN_FINISH_STOP, BRG_OK, "plain");
	coll_destroy(&k);

	assert_int_equal(n_generate(&c), 4);
	assert_int_equal(n_generate(&a), 0);
	assert_int_equal(n_generate(&b), 0);
	fallback_free(f);
	fake_destroy(&a);
	fake_destroy(&b);
	fake_destroy(&c);
}

static void test_registered_provider_that_succeeds_is_not_switched(void **state)
{
	(void)state;
	struct fake a, b;
	const char *const mods[] = {"m", NULL};
	fake_init(&a, "a", (struct script){FAKE_ASYNC, BRG_OK, "from-a", 5}, mods);
	fake_init(&b, "b", (struct script){FAKE_SYNC, BRG_OK, "from-b", 0}, mods);
	struct fallback *f = fb_new(true, 2, 60, 60);
	add(f, &a, 0, NULL);
	add(f, &b, 1, NULL);
	struct coll k;
	coll_init(&k, 2);
	struct brg_error err;
	assert_int_equal(gen(f, &a, "m", &k, &err), BRG_OK);
	coll_wait(&k);
	assert_each(&k, GEN_FINISH_STOP, BRG_OK, "from-a");
	assert_int_equal(k.res[0].n_completion, 1);
	assert_int_equal(k.res[1].n_prompt, 3);
	assert_int_equal(n_generate(&b), 0);
	coll_destroy(&k);
	fallback_free(f);
	fake_destroy(&a);
	fake_destroy(&b);
}

/* ---- falling back ---- */

static void test_sync_upstream_error_falls_back_with_the_same_model_when_served(void **state)
{
	(void)state;
	struct fake a, b;
	const char *const amods[] = {"shared", NULL};
	const char *const bmods[] = {"b-default", "shared", NULL};
	fake_init(&a, "a", FAIL_UPSTREAM, amods);
	fake_init(&b, "b", (struct script){FAKE_ASYNC, BRG_OK, "from-b", 5}, bmods);
	struct fallback *f = fb_new(true, 5, 60, 60);
	add(f, &a, 0, "a-default");
	add(f, &b, 1, "b-default");
	struct coll k;
	coll_init(&k, 2);
	struct brg_error err;
	assert_int_equal(gen(f, &a, "shared", &k, &err), BRG_OK);
	coll_wait(&k);
	assert_each(&k, GEN_FINISH_STOP, BRG_OK, "from-b");
	assert_int_equal(n_generate(&a), 1);
	assert_int_equal(n_generate(&b), 1);
	assert_string_equal(a.seen[0], "shared");
	assert_string_equal(b.seen[0], "shared");
	coll_destroy(&k);
	fallback_free(f);
	fake_destroy(&a);
	fake_destroy(&b);
}

static void test_sync_upstream_error_falls_back_to_the_default_model_when_not_served(void **state)
{
	(void)state;
	struct fake a, b;
	const char *const amods[] = {"a-only", NULL};
	const char *const bmods[] = {"b-default", NULL};
	fake_init(&a, "a", FAIL_UPSTREAM, amods);
	fake_init(&b, "b", (struct script){FAKE_SYNC, BRG_OK, "from-b", 0}, bmods);
	struct fallback *f = fb_new(true, 5, 60, 60);
	add(f, &a, 0, NULL);
	add(f, &b, 1, "b-default");
	struct coll k;
	coll_init(&k, 1);
	struct brg_error err;
	assert_int_equal(gen(f, &a, "a-only", &k, &err), BRG_OK);
	coll_wait(&k);
	assert_each(&k, GEN_FINISH_STOP, BRG_OK, "from-b");
	assert_string_equal(a.seen[0], "a-only");
	assert_int_equal(b.n_seen, 1);
	assert_string_equal(b.seen[0], "b-default");
	coll_destroy(&k);
	fallback_free(f);
	fake_destroy(&a);
	fake_destroy(&b);
}

static void test_member_without_the_model_or_a_default_is_skipped(void **state)
{
	(void)state;
	struct fake a, b, c;
	const char *const amods[] = {"m", NULL};
	const char *const other[] = {"other", NULL};
	fake_init(&a, "a", FAIL_UPSTREAM, amods);
	fake_init(&b, "b", (struct script){FAKE_SYNC, BRG_OK, "from-b", 0}, other);
	fake_init(&c, "c", (struct script){FAKE_SYNC, BRG_OK, "from-c", 0}, other);
	struct fallback *f = fb_new(true, 5, 60, 60);
	add(f, &a, 0, NULL);
	add(f, &b, 1, NULL); /* neither "m" nor a default */
	add(f, &c, 2, "other");
	struct coll k;
	coll_init(&k, 1);
	struct brg_error err;
	assert_int_equal(gen(f, &a, "m", &k, &err), BRG_OK);
	coll_wait(&k);
	assert_each(&k, GEN_FINISH_STOP, BRG_OK, "from-c");
	assert_int_equal(n_generate(&b), 0);
	assert_string_equal(c.seen[0], "other");
	coll_destroy(&k);
	fallback_free(f);
	fake_destroy(&a);
	fake_destroy(&b);
	fake_destroy(&c);
}

static void test_async_rate_limited_without_pieces_falls_back_once_per_choice(void **state)
{
	(void)state;
	const char *const mods[] = {"m", NULL};
	/* b finishing from its own thread, then inside generate() (called on
	 * a's thread, from a's last on_done). */
	const struct script bs[] = {{FAKE_ASYNC, BRG_OK, "from-b", 5},
	                            {FAKE_SYNC, BRG_OK, "from-b", 0}};
	for (size_t v = 0; v < 2; v++) {
		struct fake a, b;
		fake_init(&a, "a", (struct script){FAKE_ASYNC, BRG_E_RATE_LIMITED, NULL, 10}, mods);
		fake_init(&b, "b", bs[v], mods);
		struct fallback *f = fb_new(true, 5, 60, 60);
		add(f, &a, 0, NULL);
		add(f, &b, 1, NULL);
		struct coll k;
		coll_init(&k, 3);
		struct brg_error err;
		assert_int_equal(gen(f, &a, "m", &k, &err), BRG_OK);
		coll_wait(&k);
		assert_each(&k, GEN_FINISH_STOP, BRG_OK, "from-b");
		assert_int_equal(n_generate(&a), 1);
		assert_int_equal(n_generate(&b), 1);
		assert_string_equal(b.seen[0], "m");
		if (bs[v].mode == FAKE_SYNC)
			assert_int_equal(b.n_post_reads, 1);
		coll_destroy(&k);
		fallback_free(f);
		fake_destroy(&a);
		fake_destroy(&b);
	}
}

static void test_error_after_a_piece_does_not_fall_back(void **state)
{
	(void)state;
	const char *const mods[] = {"m", NULL};
	const struct script as[] = {{FAKE_ASYNC, BRG_E_UPSTREAM, "partial", 5},
	                            {FAKE_SYNC, BRG_E_UPSTREAM, "partial", 0}};
	for (size_t v = 0; v < 2; v++) {
		struct fake a, b;
		fake_init(&a, "a", as[v], mods);
		fake_init(&b, "b", (struct script){FAKE_SYNC, BRG_OK, "from-b", 0}, mods);
		struct fallback *f = fb_new(true, 5, 60, 60);
		add(f, &a, 0, NULL);
		add(f, &b, 1, NULL);
		struct coll k;
		coll_init(&k, 2);
		struct brg_error err;
		assert_int_equal(gen(f, &a, "m", &k, &err), BRG_OK);
		coll_wait(&k);
		assert_each(&k, GEN_FINISH_ERROR, BRG_E_UPSTREAM, "partial");
		assert_string_equal(k.res[0].error.message, "a: scripted UPSTREAM_ERROR");
		assert_int_equal(n_generate(&b), 0);
		coll_destroy(&k);
		fallback_free(f);
		fake_destroy(&a);
		fake_destroy(&b);
	}
}

static void test_non_retriable_errors_do_not_fall_back(void **state)
{
	(void)state;
	const char *const mods[] = {"m", NULL};
	const enum brg_err codes[] = {BRG_E_BAD_REQUEST, BRG_E_CONTEXT_BUDGET, BRG_E_SHUTTING_DOWN};
	for (size_t v = 0; v < sizeof codes / sizeof codes[0]; v++) {
		struct fake a, b;
		fake_init(&a, "a", (struct script){FAKE_FAIL, codes[v], NULL, 0}, mods);
		fake_init(&b, "b", (struct script){FAKE_SYNC, BRG_OK, "from-b", 0}, mods);
		struct fallback *f = fb_new(true, 5, 60, 60);
		add(f, &a, 0, NULL);
		add(f, &b, 1, NULL);
		char want[128];
		fake_msg(want, sizeof want, "a", codes[v]);

		/* returned by generate() */
		struct coll k;
		coll_init(&k, 2);
		struct brg_error err;
		assert_int_equal(gen(f, &a, "m", &k, &err), codes[v]);
		assert_int_equal(err.code, codes[v]);
		assert_string_equal(err.message, want);
		assert_int_equal(err.n_details, 0);
		assert_no_done(&k);
		coll_destroy(&k);

		/* as the finish of every choice, from a's thread */
		fake_set(&a, (struct script){FAKE_ASYNC, codes[v], NULL, 5});
		coll_init(&k, 2);
		assert_int_equal(gen(f, &a, "m", &k, &err), BRG_OK);
		coll_wait(&k);
		assert_each(&k, GEN_FINISH_ERROR, codes[v], "");
		assert_string_equal(k.res[1].error.message, want);
		assert_int_equal(k.res[1].error.n_details, 0);
		coll_destroy(&k);

		assert_int_equal(n_generate(&a), 2);
		assert_int_equal(n_generate(&b), 0);
		fallback_free(f);
		fake_destroy(&a);
		fake_destroy(&b);
	}
}

static void test_all_failing_sync_gives_provider_unavailable_with_each_error(void **state)
{
	(void)state;
	struct fake a, b, c;
	const char *const mods[] = {"m", NULL};
	fake_init(&a, "a", FAIL_UPSTREAM, mods);
	fake_init(&b, "b", (struct script){FAKE_FAIL, BRG_E_UPSTREAM_TIMEOUT, NULL, 0}, mods);
	fake_init(&c, "c", (struct script){FAKE_FAIL, BRG_E_RATE_LIMITED, NULL, 0}, mods);
	struct fallback *f = fb_new(true, 5, 60, 60);
	add(f, &c, 2, NULL);
	add(f, &a, 0, NULL);
	add(f, &b, 1, NULL);
	struct coll k;
	coll_init(&k, 2);
	struct brg_error err;
	assert_int_equal(gen(f, &a, "m", &k, &err), BRG_E_PROVIDER_UNAVAILABLE);
	assert_int_equal(err.code, BRG_E_PROVIDER_UNAVAILABLE);
	assert_int_equal(err.n_details, 3);
	assert_detail(&err, "a", BRG_E_UPSTREAM);
	assert_detail(&err, "b", BRG_E_UPSTREAM_TIMEOUT);
	assert_detail(&err, "c", BRG_E_RATE_LIMITED);
	assert_no_done(&k);
	assert_int_equal(n_generate(&a), 1);
	assert_int_equal(n_generate(&b), 1);
	assert_int_equal(n_generate(&c), 1);
	coll_destroy(&k);
	fallback_free(f);
	fake_destroy(&a);
	fake_destroy(&b);
	fake_destroy(&c);
}

static void test_all_failing_async_gives_provider_unavailable_on_every_choice(void **state)
{
	(void)state;
	const char *const mods[] = {"m", NULL};
	/* v0: every member finishes with an error from its thread.
	 * v1: a from its thread, b refuses synchronously (on a's thread), c
	 *     finishes with an error inside generate(). */
	const struct script scripts[2][3] = {
	    {{FAKE_ASYNC, BRG_E_RATE_LIMITED, NULL, 5},
	     {FAKE_ASYNC, BRG_E_UPSTREAM, NULL, 5},
	     {FAKE_ASYNC, BRG_E_UPSTREAM_TIMEOUT, NULL, 5}},
	    {{FAKE_ASYNC, BRG_E_RATE_LIMITED, NULL, 5},
	     {FAKE_FAIL, BRG_E_UPSTREAM, NULL, 0},
	     {FAKE_SYNC, BRG_E_UPSTREAM_TIMEOUT, NULL, 0}},
	};
	for (size_t v = 0; v < 2; v++) {
		struct fake a, b, c;
		fake_init(&a, "a", scripts[v][0], mods);
		fake_init(&b, "b", scripts[v][1], mods);
		fake_init(&c, "c", scripts[v][2], mods);
		struct fallback *f = fb_new(true, 5, 60, 60);
		add(f, &a, 0, NULL);
		add(f, &b, 1, NULL);
		add(f, &c, 2, NULL);
		struct coll k;
		coll_init(&k, 2);
		struct brg_error err;
		assert_int_equal(gen(f, &a, "m", &k, &err), BRG_OK);
		coll_wait(&k);
		assert_each(&k, GEN_FINISH_ERROR, BRG_E_PROVIDER_UNAVAILABLE, "");
		for (size_t i = 0; i < 2; i++) {
			assert_int_equal(k.res[i].error.n_details, 3);
			assert_detail(&k.res[i].error, "a", BRG_E_RATE_LIMITED);
			assert_detail(&k.res[i].error, "b", BRG_E_UPSTREAM);
			assert_detail(&k.res[i].error, "c", BRG_E_UPSTREAM_TIMEOUT);
		}
		assert_int_equal(n_generate(&a), 1);
		assert_int_equal(n_generate(&b), 1);
		assert_int_equal(n_generate(&c), 1);
		coll_destroy(&k);
		fallback_free(f);
		fake_destroy(&a);
		fake_destroy(&b);
		fake_destroy(&c);
	}
}

static void test_disabled_fallback_does_not_switch(void **state)
{
	(void)state;
	struct fake a, b;
	const char *const mods[] = {"m", NULL};
	fake_init(&a, "a", FAIL_UPSTREAM, mods);
	fake_init(&b, "b", (struct script){FAKE_SYNC, BRG_OK, "from-b", 0}, mods);
	struct fallback *f = fb_new(false, 5, 60, 60);
	add(f, &a, 0, NULL);
	add(f, &b, 1, NULL);
	struct brg_error err;
	assert_int_equal(gen_one(f, &a, &err), BRG_E_UPSTREAM);
	assert_string_equal(err.message, "a: scripted UPSTREAM_ERROR");
	assert_int_equal(err.n_details, 0);
	fake_set(&a, (struct script){FAKE_ASYNC, BRG_E_RATE_LIMITED, NULL, 5});
	assert_int_equal(gen_one(f, &a, &err), BRG_E_RATE_LIMITED);
	assert_string_equal(err.message, "a: scripted RATE_LIMITED");
	fake_set(&a, (struct script){FAKE_SYNC, BRG_E_RATE_LIMITED, NULL, 0});
	assert_int_equal(gen_one(f, &a, &err), BRG_E_RATE_LIMITED);
	assert_int_equal(n_generate(&a), 3);
	assert_int_equal(n_generate(&b), 0);
	fallback_free(f);
	fake_destroy(&a);
	fake_destroy(&b);
}

static void test_provider_outside_the_chain_does_not_fall_back(void **state)
{
	(void)state;
	struct fake a, b;
	const char *const mods[] = {"m", NULL};
	fake_init(&a, "a", FAIL_UPSTREAM, mods);
	fake_init(&b, "b", (struct script){FAKE_SYNC, BRG_OK, "from-b", 0}, mods);
	struct fallback *f = fb_new(true, 5, 60, 60);
	add(f, &a, -1, NULL);
	add(f, &b, 0, NULL);
	assert_int_equal(gen_one(f, &a, NULL), BRG_E_UPSTREAM);
	fake_set(&a, (struct script){FAKE_ASYNC, BRG_E_UPSTREAM, NULL, 5});
	assert_int_equal(gen_one(f, &a, NULL), BRG_E_UPSTREAM);
	assert_int_equal(n_generate(&b), 0);
	fallback_free(f);
	fake_destroy(&a);
	fake_destroy(&b);
}

/* ---- completion inside generate() ---- */

static void test_sync_completion_inside_generate_with_three_choices(void **state)
{
	(void)state;
	struct fake a, b;
	const char *const mods[] = {"m", NULL};
	fake_init(&a, "a", (struct script){FAKE_SYNC, BRG_OK, "abc", 0}, mods);
	fake_init(&b, "b", (struct script){FAKE_SYNC, BRG_OK, "from-b", 0}, mods);
	struct fallback *f = fb_new(true, 5, 60, 60);
	add(f, &a, 0, NULL);
	add(f, &b, 1, NULL);
	struct coll k;
	coll_init(&k, 3);
	struct brg_error err;
	assert_int_equal(gen(f, &a, "m", &k, &err), BRG_OK);
	/* Everything was delivered before fallback_generate returned. */
	assert_true(coll_all_done(&k));
	assert_each(&k, GEN_FINISH_STOP, BRG_OK, "abc");
	assert_int_equal(a.n_post_reads, 1);
	assert_int_equal(n_generate(&b), 0);
	coll_destroy(&k);
	fallback_free(f);
	fake_destroy(&a);
	fake_destroy(&b);
}

static void test_sync_failure_falls_back_to_a_sync_completion_with_three_choices(void **state)
{
	(void)state;
	const char *const mods[] = {"m", NULL};
	/* a refuses in generate(), or finishes every choice with an error
	 * inside generate() (then reads the request: the retry must wait). */
	const struct script as[] = {{FAKE_FAIL, BRG_E_UPSTREAM, NULL, 0},
	                            {FAKE_SYNC, BRG_E_RATE_LIMITED, NULL, 0}};
	for (size_t v = 0; v < 2; v++) {
		struct fake a, b;
		fake_init(&a, "a", as[v], mods);
		fake_init(&b, "b", (struct script){FAKE_SYNC, BRG_OK, "xyz", 0}, mods);
		struct fallback *f = fb_new(true, 5, 60, 60);
		add(f, &a, 0, NULL);
		add(f, &b, 1, NULL);
		struct coll k;
		coll_init(&k, 3);
		struct brg_error err;
		assert_int_equal(gen(f, &a, "m", &k, &err), BRG_OK);
		assert_true(coll_all_done(&k));
		assert_each(&k, GEN_FINISH_STOP, BRG_OK, "xyz");
		assert_int_equal(n_generate(&a), 1);
		assert_int_equal(n_generate(&b), 1);
		assert_int_equal(b.n_post_reads, 1);
		if (as[v].mode == FAKE_SYNC)
			assert_int_equal(a.n_post_reads, 1);
		coll_destroy(&k);
		fallback_free(f);
		fake_destroy(&a);
		fake_destroy(&b);
	}
}

static void test_sync_completions_all_failing_end_every_choice_before_return(void **state)
{
	(void)state;
	struct fake a, b;
	const char *const mods[] = {"m", NULL};
	fake_init(&a, "a", (struct script){FAKE_SYNC, BRG_E_UPSTREAM, NULL, 0}, mods);
	fake_init(&b, "b", (struct script){FAKE_SYNC, BRG_E_RATE_LIMITED, NULL, 0}, mods);
	struct fallback *f = fb_new(true, 5, 60, 60);
	add(f, &a, 0, NULL);
	add(f, &b, 1, NULL);
	struct coll k;
	coll_init(&k, 3);
	struct brg_error err;
	assert_int_equal(gen(f, &a, "m", &k, &err), BRG_OK);
	assert_true(coll_all_done(&k));
	assert_each(&k, GEN_FINISH_ERROR, BRG_E_PROVIDER_UNAVAILABLE, "");
	assert_detail(&k.res[2].error, "a", BRG_E_UPSTREAM);
	assert_detail(&k.res[2].error, "b", BRG_E_RATE_LIMITED);
	assert_int_equal(a.n_post_reads, 1);
	assert_int_equal(b.n_post_reads, 1);
	coll_destroy(&k);
	fallback_free(f);
	fake_destroy(&a);
	fake_destroy(&b);
}

/* ---- breakers ---- */

static void test_breaker_opens_after_k_faults_and_lets_a_call_through_after_cooldown(void **state)
{
	(void)state;
	struct fake a, b;
	const char *const mods[] = {"m", NULL};
	fake_init(&a, "a", FAIL_UPSTREAM, mods);
	fake_init(&b, "b", (struct script){FAKE_ASYNC, BRG_E_UPSTREAM, NULL, 2}, mods);
	struct fallback *f = fb_new(true, 2, 1, 60);
	add(f, &a, -1, NULL);
	add(f, &b, -1, NULL);

	/* Faults returned by generate() (a) and as finish errors (b). */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(gen_one(f, &a, NULL), BRG_E_UPSTREAM);
		assert_int_equal(gen_one(f, &b, NULL), BRG_E_UPSTREAM);
	}
	struct fake *both[] = {&a, &b};
	for (size_t v = 0; v < 2; v++) {
		struct brg_error err;
		assert_int_equal(gen_one(f, both[v], &err), BRG_E_PROVIDER_UNAVAILABLE);
		assert_int_equal(n_generate(both[v]), 2);
		const struct brg_detail *d = detail(&err, "provider");
		assert_non_null(d);
		assert_string_equal(d->s, both[v]->name);
		struct hrow h = health_of(f, both[v]->name);
		assert_string_equal(h.state, "open");
		assert_int_equal(h.consecutive_failures, 2);
		assert_true(h.has_last_error);
	}

	sleep_ms(1100);
	/* a recovers: its call goes through and closes the breaker. */
	fake_set(&a, (struct script){FAKE_SYNC, BRG_OK, "back", 0});
	assert_int_equal(gen_one(f, &a, NULL), BRG_OK);
	assert_int_equal(n_generate(&a), 3);
	struct hrow h = health_of(f, "a");
	assert_string_equal(h.state, "healthy");
	assert_int_equal(h.consecutive_failures, 0);
	/* b's trial call goes through, fails, and opens it again at once. */
	assert_int_equal(gen_one(f, &b, NULL), BRG_E_UPSTREAM);
	assert_int_equal(n_generate(&b), 3);
	assert_int_equal(gen_one(f, &b, NULL), BRG_E_PROVIDER_UNAVAILABLE);
	assert_int_equal(n_generate(&b), 3);
	assert_string_equal(health_of(f, "b").state, "open");

	fallback_free(f);
	fake_destroy(&a);
	fake_destroy(&b);
}

static void test_breaker_count_is_reset_by_a_success(void **state)
{
	(void)state;
	struct fake a;
	const char *const mods[] = {"m", NULL};
	fake_init(&a, "a", FAIL_UPSTREAM, mods);
	struct fallback *f = fb_new(true, 2, 60, 60);
	add(f, &a, -1, NULL);
	assert_int_equal(gen_one(f, &a, NULL), BRG_E_UPSTREAM);
	assert_int_equal(health_of(f, "a").consecutive_failures, 1);
	fake_set(&a, (struct script){FAKE_ASYNC, BRG_OK, "ok", 2});
	assert_int_equal(gen_one(f, &a, NULL), BRG_OK);
	assert_int_equal(health_of(f, "a").consecutive_failures, 0);
	fake_set(&a, FAIL_UPSTREAM);
	assert_int_equal(gen_one(f, &a, NULL), BRG_E_UPSTREAM);
	struct hrow h = health_of(f, "a");
	assert_int_equal(h.consecutive_failures, 1);
	assert_string_not_equal(h.state, "open");
	/* Still closed: this call reaches the provider (and opens it). */
	assert_int_equal(gen_one(f, &a, NULL), BRG_E_UPSTREAM);
	assert_int_equal(n_generate(&a), 4);
	assert_string_equal(health_of(f, "a").state, "open");
	fallback_free(f);
	fake_destroy(&a);
}

static void test_breaker_ignores_non_fault_errors(void **state)
{
	(void)state;
	struct fake a;
	const char *const mods[] = {"m", NULL};
	fake_init(&a, "a", (struct script){FAKE_FAIL, BRG_E_BAD_REQUEST, NULL, 0}, mods);
	struct fallback *f = fb_new(true, 2, 60, 60);
	add(f, &a, -1, NULL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(gen_one(f, &a, NULL), BRG_E_BAD_REQUEST);
	fake_set(&a, (struct script){FAKE_ASYNC, BRG_E_BAD_REQUEST, NULL, 2});
	for (int i = 0; i < 2; i++)
		assert_int_equal(gen_one(f, &a, NULL), BRG_E_BAD_REQUEST);
	assert_int_equal(n_generate(&a), 5);
	struct hrow h = health_of(f, "a");
	assert_int_equal(h.consecutive_failures, 0);
	assert_string_not_equal(h.state, "open");
	fallback_free(f);
	fake_destroy(&a);
}

static void test_open_breaker_in_the_chain_is_skipped(void **state)
{
	(void)state;
	struct fake a, b;
	const char *const mods[] = {"m", NULL};
	fake_init(&a, "a", FAIL_UPSTREAM, mods);
	fake_init(&b, "b", (struct script){FAKE_SYNC, BRG_OK, "from-b", 0}, mods);
	struct fallback *f = fb_new(true, 1, 60, 60);
	add(f, &a, 0, NULL);
	add(f, &b, 1, NULL);
	assert_int_equal(gen_one(f, &a, NULL), BRG_OK); /* a fails, opens; b answers */
	assert_string_equal(health_of(f, "a").state, "open");
	assert_int_equal(gen_one(f, &a, NULL), BRG_OK); /* straight to b */
	assert_int_equal(n_generate(&a), 1);
	assert_int_equal(n_generate(&b), 2);

	/* With b failing too, the error names both. */
	fake_set(&b, (struct script){FAKE_FAIL, BRG_E_UPSTREAM_TIMEOUT, NULL, 0});
	struct brg_error err;
	assert_int_equal(gen_one(f, &a, &err), BRG_E_PROVIDER_UNAVAILABLE);
	assert_non_null(detail(&err, "a"));
	assert_detail(&err, "b", BRG_E_UPSTREAM_TIMEOUT);
	assert_int_equal(n_generate(&a), 1);
	fallback_free(f);
	fake_destroy(&a);
	fake_destroy(&b);
}

/*
 * Every attempt reports its own error: an error returned by a later member
 * must not carry details of earlier attempts (it once carried the
 * "provider": "a" that the open-breaker path added, on b's 400).
 */
static void test_error_from_a_later_member_carries_no_details_of_earlier_attempts(void **state)
{
	(void)state;
	struct fake a, b;
	const char *const mods[] = {"m", NULL};
	fake_init(&a, "a", FAIL_UPSTREAM, mods);
	fake_init(&b, "b", (struct script){FAKE_FAIL, BRG_E_BAD_REQUEST, NULL, 0}, mods);
	struct fallback *f = fb_new(true, 1, 60, 60);
	add(f, &a, 0, NULL);
	add(f, &b, 1, NULL);
	struct brg_error err;
	assert_int_equal(gen_one(f, &a, &err), BRG_E_BAD_REQUEST); /* opens a's breaker */
	assert_int_equal(gen_one(f, &a, &err), BRG_E_BAD_REQUEST); /* a skipped: open */
	assert_int_equal(n_generate(&a), 1);
	assert_string_equal(err.message, "b: scripted INVALID_REQUEST");
	assert_null(detail(&err, "provider"));
	assert_int_equal(err.n_details, 0);
	fallback_free(f);
	fake_destroy(&a);
	fake_destroy(&b);
}

/* ---- health ---- */

static void test_each_health_lists_the_chain_by_position_then_the_others(void **state)
{
	(void)state;
	struct fake a, b, c, d, e;
	const char *const mods[] = {"m1", "m2", NULL};
	fake_init(&a, "a", FAIL_UPSTREAM, mods);
	fake_init(&b, "b", FAIL_UPSTREAM, mods);
	fake_init(&c, "c", FAIL_UPSTREAM, mods);
	fake_init(&d, "d", FAIL_UPSTREAM, mods);
	fake_init(&e, "e", FAIL_UPSTREAM, mods);
	d.ops.check_health = NULL; /* nothing to check: as healthy as the process */
	struct fallback *f = fb_new(true, 2, 60, 60);
	add(f, &c, -1, NULL);
	add(f, &b, 5, NULL);
	add(f, &a, 1, NULL);
	add(f, &d, -1, NULL);
	add(f, &e, 3, NULL);
	struct hlist l = {0};
	fallback_each_health(f, on_health, &l);
	assert_int_equal(l.n, 5);
	const char *names[] = {"a", "e", "b", "c", "d"};
	const int pos[] = {1, 3, 5, -1, -1};
	struct fake *fakes[] = {&a, &e, &b, &c, &d};
	for (size_t i = 0; i < 5; i++) {
		assert_string_equal(l.rows[i].name, names[i]);
		assert_int_equal(l.rows[i].chain_position, pos[i]);
		assert_ptr_equal(l.rows[i].provider.impl, fakes[i]);
		assert_ptr_equal(l.rows[i].provider.ops, &fakes[i]->ops);
		assert_int_equal(l.rows[i].latency_ms, -1);
		assert_int_equal(l.rows[i].checked_at, 0);
		assert_false(l.rows[i].has_last_error);
		assert_int_equal(l.rows[i].consecutive_failures, 0);
		assert_string_equal(l.rows[i].state, i == 4 ? "healthy" : "unknown");
	}
	int n_models = 0;
	l.rows[0].provider.ops->each_model(l.rows[0].provider.impl, model_count, &n_models);
	assert_int_equal(n_models, 2);
	fallback_free(f);
	fake_destroy(&a);
	fake_destroy(&b);
	fake_destroy(&c);
	fake_destroy(&d);
	fake_destroy(&e);
}

static void test_health_check_marks_unhealthy_then_healthy_and_closes_the_breaker(void **state)
{
	(void)state;
	struct fake a, d;
	const char *const mods[] = {"m", NULL};
	fake_init(&a, "a", FAIL_UPSTREAM, mods);
	fake_init(&d, "d", FAIL_UPSTREAM, mods);
	d.ops.check_health = NULL;
	fake_set_health(&a, BRG_E_UPSTREAM, 7);
	struct fallback *f = fb_new(true, 2, 60, 1);
	add(f, &a, -1, NULL);
	add(f, &d, -1, NULL);
	struct brg_error err;
	brg_error_clear(&err);
	long long t0 = (long long)time(NULL);
	assert_int_equal(fallback_start(f, &err), BRG_OK);

	/* The first round runs at once. */
	assert_true(wait_health(f, &a, "unhealthy", 1, 900));
	struct hrow h = health_of(f, "a");
	assert_true(h.has_last_error);
	assert_string_equal(h.last_error, "a: scripted UPSTREAM_ERROR");
	assert_int_equal(h.latency_ms, 7);
	assert_true(h.checked_at >= t0 && h.checked_at <= t0 + 2);
	assert_string_equal(health_of(f, "d").state, "healthy");
	assert_int_equal(health_of(f, "d").latency_ms, -1);

	/* Now it answers; meanwhile requests open its breaker. */
	fake_set_health(&a, BRG_OK, 3);
	assert_int_equal(gen_one(f, &a, NULL), BRG_E_UPSTREAM);
	assert_int_equal(gen_one(f, &a, NULL), BRG_E_UPSTREAM);
	h = health_of(f, "a");
	assert_string_equal(h.state, "open");
	assert_int_equal(h.consecutive_failures, 2);
	assert_int_equal(gen_one(f, &a, NULL), BRG_E_PROVIDER_UNAVAILABLE);

	/* The next round (an interval later) closes the breaker. */
	assert_true(wait_health(f, &a, "healthy", 2, 2500));
	h = health_of(f, "a");
	assert_int_equal(h.consecutive_failures, 0);
	assert_int_equal(h.latency_ms, 3);
	fake_set(&a, (struct script){FAKE_SYNC, BRG_OK, "back", 0});
	assert_int_equal(gen_one(f, &a, NULL), BRG_OK);
	assert_int_equal(n_generate(&a), 3);

	long long t = now_ms();
	fallback_free(f);
	assert_true(now_ms() - t < 300);
	fake_destroy(&a);
	fake_destroy(&d);
}

static void test_fallback_free_stops_the_health_thread_promptly(void **state)
{
	(void)state;
	struct fake a;
	const char *const mods[] = {"m", NULL};
	fake_init(&a, "a", FAIL_UPSTREAM, mods);
	struct fallback *f = fb_new(true, 2, 60, 30);
	add(f, &a, 0, NULL);
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(fallback_start(f, &err), BRG_OK);
	assert_true(wait_health(f, &a, "healthy", 1, 900));
	long long t = now_ms();
	fallback_free(f);
	assert_true(now_ms() - t < 300);
	assert_int_equal(n_health(&a), 1);
	fake_destroy(&a);

	/* Never started, and NULL: nothing to stop. */
	fallback_free(fb_new(true, 2, 60, 30));
	fallback_free(NULL);
}

int main(void)
{
	log_set_level(LOG_OFF);
	atomic_init(&no_cancel, false);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unregistered_provider_is_called_directly),
	    cmocka_unit_test(test_registered_provider_that_succeeds_is_not_switched),
	    cmocka_unit_test(test_sync_upstream_error_falls_back_with_the_same_model_when_served),
	    cmocka_unit_test(
	        test_sync_upstream_error_falls_back_to_the_default_model_when_not_served),
	    cmocka_unit_test(test_member_without_the_model_or_a_default_is_skipped),
	    cmocka_unit_test(test_async_rate_limited_without_pieces_falls_back_once_per_choice),
	    cmocka_unit_test(test_error_after_a_piece_does_not_fall_back),
	    cmocka_unit_test(test_non_retriable_errors_do_not_fall_back),
	    cmocka_unit_test(test_all_failing_sync_gives_provider_unavailable_with_each_error),
	    cmocka_unit_test(test_all_failing_async_gives_provider_unavailable_on_every_choice),
	    cmocka_unit_test(test_disabled_fallback_does_not_switch),
	    cmocka_unit_test(test_provider_outside_the_chain_does_not_fall_back),
	    cmocka_unit_test(test_sync_completion_inside_generate_with_three_choices),
	    cmocka_unit_test(test_sync_failure_falls_back_to_a_sync_completion_with_three_choices),
	    cmocka_unit_test(test_sync_completions_all_failing_end_every_choice_before_return),
	    cmocka_unit_test(
	        test_breaker_opens_after_k_faults_and_lets_a_call_through_after_cooldown),
	    cmocka_unit_test(test_breaker_count_is_reset_by_a_success),
	    cmocka_unit_test(test_breaker_ignores_non_fault_errors),
	    cmocka_unit_test(test_open_breaker_in_the_chain_is_skipped),
	    cmocka_unit_test(test_error_from_a_later_member_carries_no_details_of_earlier_attempts),
	    cmocka_unit_test(test_each_health_lists_the_chain_by_position_then_the_others),
	    cmocka_unit_test(test_health_check_marks_unhealthy_then_healthy_and_closes_the_breaker),
	    cmocka_unit_test(test_fallback_free_stops_the_health_thread_promptly),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
