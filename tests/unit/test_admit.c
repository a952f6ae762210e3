/*
 * test_admit.c — unit tests for admit/: the global and per-model limits,
 * FIFO and priority order, a full queue refused with a Retry-After
 * estimate, leaving the queue, deadlines kept by waiting threads, the
 * shutdown steps, and the admission settings of config/.  Every wait is
 * bounded (poll with a timeout, joins of threads that are).
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admit/admit.h"
#include "config/config.h"
#include "core/log.h"
#include "testutil.h"

static struct admit *make(int max, int queue, bool is_priority)
{
	struct admit_opts o = admit_default_opts();
	o.max_concurrent = max;
	o.queue_size = queue;
	o.is_priority = is_priority;
	struct admit *a = admit_new(&o);
	assert_non_null(a);
	return a;
}

static enum admit_state enter(struct admit *a, struct admit_ticket *t, const char *model,
                              int n_slots, int priority)
{
	admit_ticket_init(t);
	struct admit_want w = {.model = model, .n_slots = n_slots, .priority = priority};
	struct brg_error e = {0};
	enum brg_err rc = admit_enter(a, t, &w, &e);
	if (rc)
		fail_msg("admit_enter: %s", e.message);
	return admit_poll(a, t);
}

/* Whether fd becomes readable within ms. */
static bool readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, ms) == 1;
}

static void test_global_limit_then_waiting_in_turn(void **state)
{
	(void)state;
	struct admit *a = make(2, 10, false);
	struct admit_ticket t[3];
	assert_int_equal(enter(a, &t[0], NULL, 0, 0), ADMIT_RUNNING);
	assert_int_equal(enter(a, &t[1], NULL, 0, 0), ADMIT_RUNNING);
	assert_int_equal(enter(a, &t[2], NULL, 0, 0), ADMIT_WAITING);
	assert_true(admit_ticket_fd(&t[2]) >= 0);
	assert_false(readable(admit_ticket_fd(&t[2]), 0));
	admit_leave(a, &t[0]);
	assert_true(readable(admit_ticket_fd(&t[2]), 1000));
	assert_int_equal(admit_poll(a, &t[2]), ADMIT_RUNNING);
	struct admit_stats s;
	admit_get_stats(a, &s);
	assert_int_equal(s.n_running, 2);
	assert_int_equal(s.n_waiting, 0);
	assert_int_equal(s.n_admitted, 3);
	admit_leave(a, &t[1]);
	admit_leave(a, &t[2]);
	admit_leave(a, &t[2]); /* idle: a no-op */
	assert_int_equal(admit_ticket_fd(&t[2]), -1);
	admit_free(a);
}

static void test_model_limit_blocks_only_that_model(void **state)
{
	(void)state;
	struct admit *a = make(10, 10, false);
	struct admit_ticket a1, a2, b1, o1;
	assert_int_equal(enter(a, &a1, "local:a", 1, 0), ADMIT_RUNNING);
	assert_int_equal(enter(a, &a2, "local:a", 1, 0), ADMIT_WAITING);
	assert_int_equal(enter(a, &b1, "local:b", 1, 0), ADMIT_RUNNING);
	assert_int_equal(enter(a, &o1, NULL, 0, 0), ADMIT_RUNNING); /* orchestrated: global only */
	admit_leave(a, &b1);
	assert_int_equal(admit_poll(a, &a2), ADMIT_WAITING); /* b's place is not a's */
	admit_leave(a, &a1);
	assert_int_equal(admit_poll(a, &a2), ADMIT_RUNNING);
	admit_leave(a, &a2);
	admit_leave(a, &o1);
	admit_free(a);

	/* max_per_model overrides the slots; 0 slots (remote) means no limit. */
	struct admit_opts o = admit_default_opts();
	o.max_per_model = 2;
	a = admit_new(&o);
	struct admit_ticket t[3], r[5];
	assert_int_equal(enter(a, &t[0], "local:a", 1, 0), ADMIT_RUNNING);
	assert_int_equal(enter(a, &t[1], "local:a", 1, 0), ADMIT_RUNNING);
	assert_int_equal(enter(a, &t[2], "local:a", 1, 0), ADMIT_WAITING);
	for (int i = 0; i < 2; i++) /* under max_per_model 2, a remote is limited too */
		assert_int_equal(enter(a, &r[i], "vllm:m", 0, 0), ADMIT_RUNNING);
	assert_int_equal(enter(a, &r[2], "vllm:m", 0, 0), ADMIT_WAITING);
	for (int i = 0; i < 3; i++)
		admit_leave(a, &t[i]);
	for (int i = 0; i < 3; i++)
		admit_leave(a, &r[i]);
	admit_free(a);
	a = make(10, 10, false);
	for (int i = 0; i < 5; i++)
		assert_int_equal(enter(a, &r[i], "vllm:m", 0, 0), ADMIT_RUNNING);
	for (int i = 0; i < 5; i++)
		admit_leave(a, &r[i]);
	admit_free(a);
}

/* Enters one running ticket and then waiters with 'prios'; returns the
 * order (indexes into prios) in which the waiters got their turn. */
static void served_order(bool is_priority, const int *prios, int n, int *order)
{
	struct admit *a = make(1, 10, is_priority);
	struct admit_ticket first, t[8];
	assert_int_equal(enter(a, &first, NULL, 0, 2), ADMIT_RUNNING);
	for (int i = 0; i < n; i++)
		assert_int_equal(enter(a, &t[i], NULL, 0, prios[i]), ADMIT_WAITING);
	struct admit_ticket *running = &first;
	for (int k = 0; k < n; k++) {
		admit_leave(a, running);
		running = NULL;
		for (int i = 0; i < n; i++)
			if (t[i].state == ADMIT_RUNNING) {
				assert_null(running); /* exactly one at a time */
				running = &t[i];
				order[k] = i;
			}
		assert_non_null(running);
	}
	admit_leave(a, running);
	admit_free(a);
}

static void test_fifo_ignores_priority(void **state)
{
	(void)state;
	const int prios[] = {1, 3, 2, 3, 1};
	int order[5];
	served_order(false, prios, 5, order);
	for (int i = 0; i < 5; i++)
		assert_int_equal(order[i], i);
}

static void test_priority_order_fifo_within_a_level(void **state)
{
	(void)state;
	const int prios[] = {1, 3, 2, 3, 1, 0 /* default: 2 */};
	const int want[] = {1, 3, 2, 5, 0, 4};
	int order[6];
	served_order(true, prios, 6, order);
	for (int i = 0; i < 6; i++)
		assert_int_equal(order[i], want[i]);
}

static void test_priority_out_of_range_is_bad_request(void **state)
{
	(void)state;
	struct admit_opts o = admit_default_opts();
	o.n_levels = 2;
	o.default_priority = 1;
	struct admit *a = admit_new(&o);
	struct admit_ticket t;
	admit_ticket_init(&t);
	struct brg_error e = {0};
	struct admit_want w = {.priority = 3};
	assert_int_equal(admit_enter(a, &t, &w, &e), BRG_E_BAD_REQUEST);
	assert_int_equal(t.state, ADMIT_IDLE);
	assert_string_equal(e.details[0].key, "param");
	assert_string_equal(e.details[0].s, "priority");
	assert_non_null(strstr(e.message, "1 to 2"));
	w.priority = -1;
	assert_int_equal(admit_enter(a, &t, &w, &e), BRG_E_BAD_REQUEST);
	w.priority = 0; /* the default */
	assert_int_equal(admit_enter(a, &t, &w, &e), BRG_OK);
	admit_leave(a, &t);
	admit_free(a);
}

static void test_full_queue_is_rate_limited_with_retry_after(void **state)
{
	(void)state;
	struct admit *a = make(1, 2, false);
	struct admit_ticket t[4];
	/* One service time of ~500 ms feeds the estimate. */
	assert_int_equal(enter(a, &t[0], NULL, 0, 0), ADMIT_RUNNING);
	sleep_ms(500);
	admit_leave(a, &t[0]);
	assert_int_equal(enter(a, &t[0], NULL, 0, 0), ADMIT_RUNNING);
	assert_int_equal(enter(a, &t[1], NULL, 0, 0), ADMIT_WAITING);
	assert_int_equal(enter(a, &t[2], NULL, 0, 0), ADMIT_WAITING);
	admit_ticket_init(&t[3]);
	struct brg_error e = {0};
	struct admit_want w = {0};
	assert_int_equal(admit_enter(a, &t[3], &w, &e), BRG_E_RATE_LIMITED);
	assert_int_equal(t[3].state, ADMIT_IDLE);
	/* ~500 ms each for the 2 waiting and this one, one at a time. */
	assert_in_range(e.retry_after_ms, 1400, 4000);
	assert_non_null(strstr(e.message, "queue size 2"));
	struct admit_stats s;
	admit_get_stats(a, &s);
	assert_int_equal(s.n_rejected, 1);
	assert_int_equal(s.n_waiting, 2);
	for (int i = 0; i < 3; i++)
		admit_leave(a, &t[i]);
	admit_free(a);

	/* Estimates never go under 1 s. */
	a = make(1, 0, false);
	assert_int_equal(enter(a, &t[0], NULL, 0, 0), ADMIT_RUNNING);
	assert_int_equal(admit_enter(a, &t[1], &w, &e),
	                 BRG_E_RATE_LIMITED); /* size 0: no waiting */
	assert_int_equal(e.retry_after_ms, 1000);
	admit_leave(a, &t[0]);
	admit_free(a);
}

static void test_not_rejecting_waits_past_the_size(void **state)
{
	(void)state;
	struct admit_opts o = admit_default_opts();
	o.max_concurrent = 1;
	o.queue_size = 1;
	o.reject_when_full = false;
	struct admit *a = admit_new(&o);
	struct admit_ticket t[4];
	assert_int_equal(enter(a, &t[0], NULL, 0, 0), ADMIT_RUNNING);
	for (int i = 1; i < 4; i++)
		assert_int_equal(enter(a, &t[i], NULL, 0, 0), ADMIT_WAITING);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(admit_poll(a, &t[i]), ADMIT_RUNNING);
		admit_leave(a, &t[i]);
	}
	admit_free(a);
	/* Size 0 still means nobody waits. */
	o.queue_size = 0;
	a = admit_new(&o);
	assert_int_equal(enter(a, &t[0], NULL, 0, 0), ADMIT_RUNNING);
	struct brg_error e = {0};
	struct admit_want w = {0};
	admit_ticket_init(&t[1]);
	assert_int_equal(admit_enter(a, &t[1], &w, &e), BRG_E_RATE_LIMITED);
	admit_leave(a, &t[0]);
	admit_free(a);
}

static void test_leaving_the_queue_passes_the_turn_on(void **state)
{
	(void)state;
	struct admit *a = make(1, 10, false);
	struct admit_ticket t[4];
	for (int i = 0; i < 4; i++)
		enter(a, &t[i], "local:m", 1, 0);
	admit_leave(a, &t[1]); /* a client went away while queued */
	admit_leave(a, &t[2]);
	struct admit_stats s;
	admit_get_stats(a, &s);
	assert_int_equal(s.n_waiting, 1);
	admit_leave(a, &t[0]);
	assert_int_equal(admit_poll(a, &t[3]), ADMIT_RUNNING);
	admit_leave(a, &t[3]);
	admit_get_stats(a, &s);
	assert_int_equal(s.n_running + s.n_waiting, 0);
	admit_free(a);
}

/* A request thread: waits for its turn until its deadline, like api/. */
struct waiter {
	struct admit *a;
	struct admit_ticket t;
	int deadline_ms; /* from the start */
	enum admit_state got;
	long long waited_ms;
};

static void *wait_thread(void *ud)
{
	struct waiter *w = ud;
	long long t0 = now_ms(), deadline = t0 + w->deadline_ms;
	enum admit_state s;
	while ((s = admit_poll(w->a, &w->t)) == ADMIT_WAITING) {
		long long left = deadline - now_ms();
		if (left <= 0 || !readable(admit_ticket_fd(&w->t), (int)left))
			break;
	}
	w->got = s;
	w->waited_ms = now_ms() - t0;
	admit_leave(w->a, &w->t);
	return NULL;
}

static void test_deadline_while_queued_and_turn_across_threads(void **state)
{
	(void)state;
	struct admit *a = make(1, 10, false);
	struct admit_ticket first;
	enter(a, &first, NULL, 0, 0);
	struct waiter w[2] = {{.a = a, .deadline_ms = 150}, {.a = a, .deadline_ms = 5000}};
	pthread_t th[2];
	for (int i = 0; i < 2; i++) {
		enter(a, &w[i].t, NULL, 0, 0);
		assert_int_equal(pthread_create(&th[i], NULL, wait_thread, &w[i]), 0);
	}
	pthread_join(th[0], NULL); /* its deadline passes in the queue */
	assert_int_equal(w[0].got, ADMIT_WAITING);
	assert_in_range(w[0].waited_ms, 140, 2000);
	admit_leave(a, &first); /* the second one's turn */
	pthread_join(th[1], NULL);
	assert_int_equal(w[1].got, ADMIT_RUNNING);
	assert_true(w[1].waited_ms < 4000);
	struct admit_stats s;
	admit_get_stats(a, &s);
	assert_int_equal(s.n_running + s.n_waiting, 0);
	admit_free(a);
}

static void test_close_refuses_new_then_refuse_waiting(void **state)
{
	(void)state;
	struct admit *a = make(1, 10, false);
	struct admit_ticket t[3];
	enter(a, &t[0], NULL, 0, 0);
	enter(a, &t[1], NULL, 0, 0);
	admit_close(a);
	struct brg_error e = {0};
	struct admit_want w = {0};
	admit_ticket_init(&t[2]);
	assert_int_equal(admit_enter(a, &t[2], &w, &e), BRG_E_SHUTTING_DOWN);
	struct admit_stats s;
	admit_get_stats(a, &s);
	assert_true(s.is_closed);
	admit_leave(a, &t[0]); /* queued ones are still served */
	assert_int_equal(admit_poll(a, &t[1]), ADMIT_RUNNING);
	admit_leave(a, &t[1]);
	admit_free(a);

	/* After the grace period: waiting tickets are refused. */
	a = make(1, 10, false);
	enter(a, &t[0], "local:m", 1, 0);
	enter(a, &t[1], "local:m", 1, 0);
	enter(a, &t[2], NULL, 0, 0);
	admit_close(a);
	admit_refuse_waiting(a);
	assert_true(readable(admit_ticket_fd(&t[1]), 1000));
	assert_int_equal(admit_poll(a, &t[1]), ADMIT_REFUSED);
	assert_int_equal(admit_poll(a, &t[2]), ADMIT_REFUSED);
	admit_get_stats(a, &s);
	assert_int_equal(s.n_waiting, 0);
	assert_int_equal(s.n_running, 1); /* the caller cancels it */
	admit_leave(a, &t[1]);
	admit_leave(a, &t[2]);
	admit_leave(a, &t[0]);
	admit_get_stats(a, &s);
	assert_int_equal(s.n_running, 0);
	admit_free(a);
}

/* Random traffic over three models and orchestrated requests: each time a
 * request leaves, the one that starts is the best waiter (highest
 * priority, then earliest) among those whose model has room — checked
 * against a brute-force model of the rules. */
struct sim {
	struct admit_ticket t[200];
	int model[200], prio[200];
	int limit[4];
};

static int sim_running(const struct sim *s, int n, int model, int except)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += i != except && s->t[i].state == ADMIT_RUNNING &&
		     (model < 0 || s->model[i] == model);
	return k;
}

/* Who should start once 'leaving' has left; -1: nobody. */
static int sim_expect(const struct sim *s, int n, int max, int leaving)
{
	if (sim_running(s, n, -1, leaving) >= max)
		return -1;
	int best = -1;
	for (int i = 0; i < n; i++) {
		int m = s->model[i];
		if (s->t[i].state != ADMIT_WAITING ||
		    (s->limit[m] && sim_running(s, n, m, leaving) >= s->limit[m]))
			continue;
		if (best < 0 || s->prio[i] > s->prio[best])
			best = i; /* ties: the earlier (lower index) stays */
	}
	return best;
}

static void test_random_traffic_keeps_order_and_limits(void **state)
{
	(void)state;
	static const char *names[] = {"local:a", "local:b", "vllm:c", NULL};
	static struct sim s = {.limit = {1, 2, 0, 0}};
	const int n = 200, max = 3;
	struct admit *a = make(max, 1000, true);
	srand(7);
	for (int i = 0; i < n; i++) {
		s.model[i] = rand() % 4;
		s.prio[i] = 1 + rand() % 3;
		enter(a, &s.t[i], names[s.model[i]], s.limit[s.model[i]], s.prio[i]);
	}
	int n_started_later = 0;
	for (int step = 0; step < n; step++) {
		int running[200], k = 0;
		for (int i = 0; i < n; i++)
			if (s.t[i].state == ADMIT_RUNNING)
				running[k++] = i;
		assert_true(k > 0); /* someone always runs while anyone waits */
		int leaving = running[rand() % k];
		int want = sim_expect(&s, n, max, leaving);
		bool was_waiting[200];
		for (int i = 0; i < n; i++)
			was_waiting[i] = s.t[i].state == ADMIT_WAITING;
		admit_leave(a, &s.t[leaving]);
		int got = -1;
		for (int i = 0; i < n; i++)
			if (was_waiting[i] && s.t[i].state == ADMIT_RUNNING) {
				assert_int_equal(got, -1); /* one place freed: one start */
				got = i;
			}
		assert_int_equal(got, want);
		n_started_later += got >= 0;
	}
	assert_true(n_started_later > 100);
	admit_free(a);
}

static void test_config_admission_keys_and_variables(void **state)
{
	(void)state;
	struct config *c = NULL;
	struct brg_error e = {0};
	char *no_env[] = {NULL};
	assert_int_equal(config_load_string("", 0, NULL, no_env, &c, &e), BRG_OK);
	assert_int_equal(c->max_concurrent_requests, 10);
	assert_int_equal(c->max_concurrent_per_model, 0);
	assert_int_equal(c->queue_size, 100);
	assert_int_equal(c->queue_strategy, 0);
	assert_true(c->reject_when_full);
	assert_false(c->priority_enabled);
	assert_int_equal(c->priority_levels, 3);
	assert_int_equal(c->default_priority, 2);
	assert_int_equal(c->shutdown_grace_s, 30);
	config_free(c);

	static const char yaml[] = "server:\n  queue_strategy: priority\n  queue_size: 5\n"
	                           "  max_concurrent_requests: 2\n  shutdown_grace: 0\n";
	char *env[] = {"INFERENCE_QUEUE_SIZE=7", "INFERENCE_REJECT_WHEN_FULL=false",
	               "INFERENCE_PRIORITY_ENABLED=true", "INFERENCE_MAX_CONCURRENT_PER_MODEL=3",
	               NULL};
	assert_int_equal(config_load_string(yaml, sizeof yaml - 1, NULL, env, &c, &e), BRG_OK);
	assert_int_equal(c->queue_strategy, 1);
	assert_int_equal(c->queue_size, 7);
	assert_int_equal(c->max_concurrent_requests, 2);
	assert_int_equal(c->max_concurrent_per_model, 3);
	assert_int_equal(c->shutdown_grace_s, 0);
	assert_false(c->reject_when_full);
	assert_true(c->priority_enabled);
	config_free(c);

	static const struct {
		const char *env, *want;
	} bad[] = {
	    {"INFERENCE_QUEUE_STRATEGY=lifo",
	     "INFERENCE_QUEUE_STRATEGY: 'lifo' is not a queue strategy"},
	    {"INFERENCE_MAX_CONCURRENT_REQUESTS=0",
	     "INFERENCE_MAX_CONCURRENT_REQUESTS: 0 is out of range"},
	    {"INFERENCE_QUEUE_SIZE=-1", "INFERENCE_QUEUE_SIZE: -1 is out of range"},
	    {"INFERENCE_PRIORITY_LEVELS=4", "INFERENCE_PRIORITY_LEVELS: 4 is out of range"},
	    {"INFERENCE_REJECT_WHEN_FULL=maybe", "INFERENCE_REJECT_WHEN_FULL: 'maybe'"},
	    {"INFERENCE_SHUTDOWN_GRACE=x", "INFERENCE_SHUTDOWN_GRACE: 'x'"},
	    {"INFERENCE_PRIORITY_LEVELS=1",
	     "INFERENCE_DEFAULT_PRIORITY (server.default_priority): 2"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *one[] = {(char *)bad[i].env, NULL};
		assert_int_equal(config_load_string("", 0, NULL, one, &c, &e), BRG_E_CONFIG);
		if (strncmp(e.message, bad[i].want, strlen(bad[i].want)) != 0)
			fail_msg("'%s' gave '%s'", bad[i].env, e.message);
	}
	static const char bad_yaml[] = "server:\n  queue_strategy: random\n";
	assert_int_equal(
	    config_load_string(bad_yaml, sizeof bad_yaml - 1, "m.yaml", no_env, &c, &e),
	    BRG_E_CONFIG);
	assert_non_null(strstr(e.message, "m.yaml:2: key 'server.queue_strategy'"));
	assert_non_null(strstr(e.message, "expected fifo or priority"));
}

int main(void)
{
	log_set_level(getenv("BRIGADE_TEST_LOG") ? LOG_DEBUG : LOG_OFF);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_global_limit_then_waiting_in_turn),
	    cmocka_unit_test(test_model_limit_blocks_only_that_model),
	    cmocka_unit_test(test_fifo_ignores_priority),
	    cmocka_unit_test(test_priority_order_fifo_within_a_level),
	    cmocka_unit_test(test_priority_out_of_range_is_bad_request),
	    cmocka_unit_test(test_full_queue_is_rate_limited_with_retry_after),
	    cmocka_unit_test(test_not_rejecting_waits_past_the_size),
	    cmocka_unit_test(test_leaving_the_queue_passes_the_turn_on),
	    cmocka_unit_test(test_deadline_while_queued_and_turn_across_threads),
	    cmocka_unit_test(test_close_refuses_new_then_refuse_waiting),
	    cmocka_unit_test(test_random_traffic_keeps_order_and_limits),
	    cmocka_unit_test(test_config_admission_keys_and_variables),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
