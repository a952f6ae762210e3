/*
 * test_core.c — unit tests for core/: the error table and error details,
 * the capped buffer, the producer → consumer gen_stream (with producers on
 * real threads), generation defaults and log level names.
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/gen.h"
#include "core/log.h"
#include "core/pump.h"
#include "core/stream.h"

/* ---- err.c ---- */

static void test_err_table_http_status(void **state)
{
	(void)state;
	assert_int_equal(brg_err_http_status(BRG_OK), 200);
	assert_int_equal(brg_err_http_status(BRG_E_BAD_JSON), 400);
	assert_int_equal(brg_err_http_status(BRG_E_UNAUTHORIZED), 401);
	assert_int_equal(brg_err_http_status(BRG_E_MODEL_NOT_FOUND), 404);
	assert_int_equal(brg_err_http_status(BRG_E_METHOD), 405);
	assert_int_equal(brg_err_http_status(BRG_E_TOO_LARGE), 413);
	assert_int_equal(brg_err_http_status(BRG_E_NOT_IMPLEMENTED), 501);
	assert_int_equal(brg_err_http_status(BRG_E_MODEL_BUSY), 503);
	assert_int_equal(brg_err_http_status(BRG_E_TIMEOUT), 504);
	assert_int_equal(brg_err_http_status(BRG_E_CANCELLED), 499);
}

static void test_err_out_of_range_is_internal_500(void **state)
{
	(void)state;
	assert_int_equal(brg_err_http_status(BRG_ERR__COUNT), 500);
	assert_string_equal(brg_err_code(BRG_ERR__COUNT), "INTERNAL_ERROR");
	assert_int_equal(brg_err_is_retriable(BRG_ERR__COUNT), 0);
}

static void test_err_table_spec_codes(void **state)
{
	(void)state;
	assert_string_equal(brg_err_code(BRG_OK), "OK");
	assert_string_equal(brg_err_code(BRG_E_BAD_REQUEST), "INVALID_REQUEST");
	assert_string_equal(brg_err_code(BRG_E_MODEL_NOT_FOUND), "MODEL_NOT_FOUND");
	assert_string_equal(brg_err_code(BRG_E_CONTEXT_BUDGET), "CONTEXT_BUDGET_EXCEEDED");
	assert_string_equal(brg_err_code(BRG_E_NOT_IMPLEMENTED), "MODE_NOT_AVAILABLE");
	assert_string_equal(brg_err_code(BRG_E_NOMEM), "OUT_OF_MEMORY");
}

static void test_err_table_retriable_flags(void **state)
{
	(void)state;
	assert_true(brg_err_is_retriable(BRG_E_MODEL_BUSY));
	assert_true(brg_err_is_retriable(BRG_E_MODEL_LOADING));
	assert_true(brg_err_is_retriable(BRG_E_TIMEOUT));
	assert_true(brg_err_is_retriable(BRG_E_SHUTTING_DOWN));
	assert_false(brg_err_is_retriable(BRG_E_BAD_REQUEST));
	assert_false(brg_err_is_retriable(BRG_E_MODEL_NOT_FOUND));
	assert_false(brg_err_is_retriable(BRG_E_INTERNAL));
	assert_false(brg_err_is_retriable(BRG_E_CANCELLED));
}

static void test_fail_formats_message_and_returns_code(void **state)
{
	(void)state;
	struct brg_error e;
	brg_error_clear(&e);
	enum brg_err rc = brg_fail(&e, BRG_E_BAD_REQUEST, "n must be >= %d, got %s", 1, "zero");
	assert_int_equal(rc, BRG_E_BAD_REQUEST);
	assert_int_equal(e.code, BRG_E_BAD_REQUEST);
	assert_string_equal(e.message, "n must be >= 1, got zero");
}

static void test_fail_with_null_error_still_returns_code(void **state)
{
	(void)state;
	assert_int_equal(brg_fail(NULL, BRG_E_TIMEOUT, "x"), BRG_E_TIMEOUT);
}

static void test_fail_keeps_earlier_details(void **state)
{
	(void)state;
	struct brg_error e;
	brg_error_clear(&e);
	brg_error_detail_int(&e, "limit", 5);
	brg_fail(&e, BRG_E_BAD_REQUEST, "late");
	assert_int_equal(e.n_details, 1);
	assert_string_equal(e.details[0].key, "limit");
}

static void test_fail_truncates_long_message(void **state)
{
	(void)state;
	struct brg_error e;
	char big[2 * BRG_ERR_MSG_MAX];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	brg_error_clear(&e);
	brg_fail(&e, BRG_E_INTERNAL, "%s", big);
	assert_int_equal(strlen(e.message), BRG_ERR_MSG_MAX - 1);
}

static void test_clear_resets_code_message_and_details(void **state)
{
	(void)state;
	struct brg_error e;
	brg_error_clear(&e);
	brg_fail(&e, BRG_E_INTERNAL, "boom");
	brg_error_detail_bool(&e, "b", 1);
	e.retry_after_ms = 7;
	brg_error_clear(&e);
	assert_int_equal(e.code, BRG_OK);
	assert_string_equal(e.message, "");
	assert_int_equal(e.n_details, 0);
	assert_int_equal(e.retry_after_ms, 0);
	brg_error_clear(NULL); /* harmless */
}

static void test_details_int_str_bool(void **state)
{
	(void)state;
	struct brg_error e;
	brg_error_clear(&e);
	brg_error_detail_int(&e, "limit", -42);
	brg_error_detail_str(&e, "model", "phi-4");
	brg_error_detail_bool(&e, "loaded", 5);
	assert_int_equal(e.n_details, 3);
	assert_int_equal(e.details[0].kind, BRG_DETAIL_INT);
	assert_int_equal(e.details[0].i, -42);
	assert_int_equal(e.details[1].kind, BRG_DETAIL_STR);
	assert_string_equal(e.details[1].s, "phi-4");
	assert_int_equal(e.details[2].kind, BRG_DETAIL_BOOL);
	assert_int_equal(e.details[2].i, 1); /* normalised to 0/1 */
}

static void test_detail_same_key_twice_keeps_last_value(void **state)
{
	(void)state;
	struct brg_error e;
	brg_error_clear(&e);
	brg_error_detail_str(&e, "param", "temperature");
	brg_error_detail_int(&e, "other", 1);
	brg_error_detail_str(&e, "param", "top_p");
	assert_int_equal(e.n_details, 2);
	assert_string_equal(e.details[0].key, "param");
	assert_string_equal(e.details[0].s, "top_p");
}

static void test_detail_str_null_is_empty_and_long_is_truncated(void **state)
{
	(void)state;
	struct brg_error e;
	char big[300];
	memset(big, 'y', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	brg_error_clear(&e);
	brg_error_detail_str(&e, "a", NULL);
	brg_error_detail_str(&e, "b", big);
	assert_string_equal(e.details[0].s, "");
	assert_int_equal(strlen(e.details[1].s), sizeof e.details[1].s - 1);
}

static void test_detail_table_full_drops_silently(void **state)
{
	(void)state;
	static const char *keys[] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"};
	struct brg_error e;
	brg_error_clear(&e);
	for (size_t i = 0; i < 10; i++)
		brg_error_detail_int(&e, keys[i], (long long)i);
	assert_int_equal(e.n_details, BRG_ERR_MAX_DETAILS);
	assert_string_equal(e.details[BRG_ERR_MAX_DETAILS - 1].key, "k7");
	assert_int_equal(e.details[BRG_ERR_MAX_DETAILS - 1].i, 7);
	brg_error_detail_int(NULL, "k", 1); /* NULL error: no crash */
}

/* ---- buf.c ---- */

static void test_buf_append_keeps_nul_terminated_text(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 100);
	assert_null(b.data);
	assert_int_equal(buf_append(&b, "hello", 5), BRG_OK);
	assert_int_equal(buf_append(&b, " world", 6), BRG_OK);
	assert_int_equal(b.len, 11);
	assert_string_equal(b.data, "hello world");
	buf_fini(&b);
	assert_null(b.data);
	assert_int_equal(b.max, 100);
}

static void test_buf_cap_enforced_contents_unchanged(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 8);
	assert_int_equal(buf_append(&b, "12345", 5), BRG_OK);
	assert_int_equal(buf_append(&b, "6789", 4), BRG_E_TOO_LARGE);
	assert_int_equal(b.len, 5);
	assert_string_equal(b.data, "12345");
	assert_int_equal(buf_append(&b, "678", 3), BRG_OK); /* exactly max */
	assert_int_equal(b.len, 8);
	assert_int_equal(buf_append(&b, "9", 1), BRG_E_TOO_LARGE);
	assert_string_equal(b.data, "12345678");
	buf_fini(&b);
}

static void test_buf_cap_huge_append_does_not_overflow(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 16);
	assert_int_equal(buf_append(&b, "ab", 2), BRG_OK);
	assert_int_equal(buf_append(&b, "x", SIZE_MAX), BRG_E_TOO_LARGE);
	assert_int_equal(b.len, 2);
	buf_fini(&b);
}

/* A buffer with no cap to speak of (SIZE_MAX: max + 1 wraps to 0) grows
 * like any other. */
static void test_buf_without_a_cap_grows(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, SIZE_MAX);
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf_append(&b, "0123456789", 10), BRG_OK);
	assert_int_equal(b.len, 1000);
	assert_true(b.cap > b.len);
	assert_memory_equal(b.data + 990, "0123456789", 10);
	assert_int_equal(b.data[1000], '\0');
	buf_fini(&b);
}

static void test_buf_appendf_formats(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 64);
	assert_int_equal(buf_appendf(&b, "%d-%s", 42, "x"), BRG_OK);
	assert_int_equal(buf_appendf(&b, "|%03d", 7), BRG_OK);
	assert_string_equal(b.data, "42-x|007");
	assert_int_equal(b.len, strlen("42-x|007"));
	buf_fini(&b);
}

static void test_buf_appendf_over_cap_leaves_contents(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 6);
	assert_int_equal(buf_appendf(&b, "%s", "abc"), BRG_OK);
	assert_int_equal(buf_appendf(&b, "%s", "defg"), BRG_E_TOO_LARGE);
	assert_int_equal(b.len, 3);
	assert_string_equal(b.data, "abc");
	buf_fini(&b);
}

static void test_buf_consume_drops_prefix(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 64);
	assert_int_equal(buf_append(&b, "abcdef", 6), BRG_OK);
	buf_consume(&b, 2);
	assert_int_equal(b.len, 4);
	assert_string_equal(b.data, "cdef");
	buf_consume(&b, 100); /* more than len empties it */
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	buf_fini(&b);
}

static void test_buf_take_hands_over_and_leaves_empty(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 64);
	assert_int_equal(buf_append(&b, "xyz", 3), BRG_OK);
	char *s = buf_take(&b);
	assert_string_equal(s, "xyz");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 64);
	free(s);
	s = buf_take(&b); /* an empty buffer gives "" rather than NULL */
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
}

static void test_buf_reset_empties_keeps_memory(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 64);
	assert_int_equal(buf_append(&b, "abc", 3), BRG_OK);
	char *mem = b.data;
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_ptr_equal(b.data, mem);
	assert_string_equal(b.data, "");
	assert_int_equal(buf_append(&b, "d", 1), BRG_OK);
	assert_string_equal(b.data, "d");
	buf_fini(&b);
}

/* ---- stream.c ---- */

/* What a producer thread does: pieces, then optionally on_done. */
struct producer {
	struct sink k;
	const char *pieces[4];
	size_t n_pieces;
	int piece_rc[4];
	bool has_done;
	struct gen_result res;
	unsigned delay_ms;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	if (p->delay_ms)
		sleep_ms(p->delay_ms);
	for (size_t i = 0; i < p->n_pieces; i++)
		p->piece_rc[i] = p->k.on_piece(p->k.ud, p->pieces[i], strlen(p->pieces[i]));
	if (p->has_done)
		p->k.on_done(p->k.ud, &p->res);
	return NULL;
}

static void run_producer(struct producer *p)
{
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, produce, p), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
}

static bool fd_readable(int fd)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	return poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN);
}

static void test_stream_piece_from_thread_is_delivered(void **state)
{
	(void)state;
	struct gen_stream *s = gen_stream_new(1, 1024);
	assert_non_null(s);
	struct producer p = {.k = gen_stream_sink(s, 0), .pieces = {"Hel", "lo"}, .n_pieces = 2};
	run_producer(&p);
	assert_int_equal(p.piece_rc[0], 0);
	assert_int_equal(p.piece_rc[1], 0);
	struct buf out;
	buf_init(&out, 1024);
	bool is_done = true;
	assert_int_equal(gen_stream_take(s, 0, &out, &is_done, NULL), BRG_OK);
	assert_string_equal(out.data, "Hello");
	assert_false(is_done);
	assert_false(gen_stream_all_done(s));
	buf_reset(&out);
	assert_int_equal(gen_stream_take(s, 0, &out, &is_done, NULL), BRG_OK);
	assert_int_equal(out.len, 0); /* taken text is gone */
	buf_fini(&out);
	p.k.on_done(p.k.ud, &p.res);
	gen_stream_free(s);
}

static void test_stream_done_records_result(void **state)
{
	(void)state;
	struct gen_stream *s = gen_stream_new(1, 1024);
	assert_non_null(s);
	struct producer p = {
	    .k = gen_stream_sink(s, 0), .pieces = {"x"}, .n_pieces = 1, .has_done = true};
	p.res = (struct gen_result){.finish = GEN_FINISH_LENGTH, .n_prompt = 7, .n_completion = 3};
	run_producer(&p);
	struct buf out;
	buf_init(&out, 1024);
	bool is_done = false;
	struct gen_result res = {0};
	assert_int_equal(gen_stream_take(s, 0, &out, &is_done, &res), BRG_OK);
	assert_true(is_done);
	assert_string_equal(out.data, "x");
	assert_int_equal(res.finish, GEN_FINISH_LENGTH);
	assert_int_equal(res.n_prompt, 7);
	assert_int_equal(res.n_completion, 3);
	assert_true(gen_stream_all_done(s));
	buf_fini(&out);
	gen_stream_free(s);
}

static void test_stream_fd_readable_after_piece_and_ack_clears(void **state)
{
	(void)state;
	struct gen_stream *s = gen_stream_new(1, 1024);
	assert_non_null(s);
	int fd = gen_stream_fd(s);
	assert_false(fd_readable(fd));
	struct producer p = {.k = gen_stream_sink(s, 0), .pieces = {"a"}, .n_pieces = 1};
	run_producer(&p);
	assert_true(fd_readable(fd));
	gen_stream_ack(s);
	assert_false(fd_readable(fd));
	p.k.on_done(p.k.ud, &p.res);
	assert_true(fd_readable(fd)); /* on_done wakes the consumer too */
	gen_stream_ack(s);
	gen_stream_free(s);
}

static void test_stream_cancel_makes_on_piece_ask_to_stop(void **state)
{
	(void)state;
	struct gen_stream *s = gen_stream_new(1, 1024);
	assert_non_null(s);
	const atomic_bool *flag = gen_stream_cancel_flag(s);
	assert_false(atomic_load(flag));
	struct producer p = {.k = gen_stream_sink(s, 0), .pieces = {"a"}, .n_pieces = 1};
	run_producer(&p);
	assert_int_equal(p.piece_rc[0], 0);
	gen_stream_cancel(s);
	assert_true(atomic_load(flag));
	run_producer(&p);
	assert_int_not_equal(p.piece_rc[0], 0);
	p.k.on_done(p.k.ud, &p.res);
	gen_stream_free(s);
}

static void test_stream_fail_marks_choice_done_with_error(void **state)
{
	(void)state;
	struct gen_stream *s = gen_stream_new(2, 1024);
	assert_non_null(s);
	(void)gen_stream_sink(s, 0);
	(void)gen_stream_sink(s, 1);
	struct gen_result r = {.finish = GEN_FINISH_ERROR};
	brg_error_clear(&r.error);
	brg_fail(&r.error, BRG_E_MODEL_BUSY, "busy");
	gen_stream_fail(s, 1, &r);
	assert_false(gen_stream_all_done(s));
	struct buf out;
	buf_init(&out, 16);
	bool is_done = false;
	struct gen_result got = {0};
	assert_int_equal(gen_stream_take(s, 1, &out, &is_done, &got), BRG_OK);
	assert_true(is_done);
	assert_int_equal(got.finish, GEN_FINISH_ERROR);
	assert_int_equal(got.error.code, BRG_E_MODEL_BUSY);
	assert_string_equal(got.error.message, "busy");
	gen_stream_fail(s, 0, &r);
	assert_true(gen_stream_all_done(s));
	buf_fini(&out);
	gen_stream_free(s);
}

static void test_stream_second_on_done_is_ignored(void **state)
{
	(void)state;
	struct gen_stream *s = gen_stream_new(2, 64);
	assert_non_null(s);
	struct sink k = gen_stream_sink(s, 0);
	struct gen_result r = {.finish = GEN_FINISH_STOP};
	k.on_done(k.ud, &r);
	k.on_done(k.ud, &r);
	assert_false(gen_stream_all_done(s)); /* choice 1 is still running */
	gen_stream_fail(s, 1, &r);
	assert_true(gen_stream_all_done(s));
	gen_stream_free(s);
}

static void test_stream_wait_all_done_returns_after_last_done(void **state)
{
	(void)state;
	struct gen_stream *s = gen_stream_new(2, 1024);
	assert_non_null(s);
	struct producer p0 = {.k = gen_stream_sink(s, 0), .has_done = true};
	struct producer p1 = {.k = gen_stream_sink(s, 1), .has_done = true, .delay_ms = 50};
	pthread_t t0, t1;
	assert_int_equal(pthread_create(&t0, NULL, produce, &p0), 0);
	assert_int_equal(pthread_create(&t1, NULL, produce, &p1), 0);
	gen_stream_cancel(s);
	gen_stream_wait_all_done(s);
	assert_true(gen_stream_all_done(s));
	pthread_join(t0, NULL);
	pthread_join(t1, NULL);
	gen_stream_free(s);
}

static void test_stream_text_over_cap_asks_to_stop(void **state)
{
	(void)state;
	struct gen_stream *s = gen_stream_new(1, 4);
	assert_non_null(s);
	struct producer p = {.k = gen_stream_sink(s, 0), .pieces = {"abc", "de"}, .n_pieces = 2};
	run_producer(&p);
	assert_int_equal(p.piece_rc[0], 0);
	assert_int_not_equal(p.piece_rc[1], 0);
	struct buf out;
	buf_init(&out, 64);
	bool is_done;
	assert_int_equal(gen_stream_take(s, 0, &out, &is_done, NULL), BRG_OK);
	assert_string_equal(out.data, "abc"); /* the piece that did not fit is dropped */
	buf_fini(&out);
	p.k.on_done(p.k.ud, &p.res);
	gen_stream_free(s);
}

static void test_stream_take_into_full_out_is_too_large(void **state)
{
	(void)state;
	struct gen_stream *s = gen_stream_new(1, 64);
	assert_non_null(s);
	struct sink k = gen_stream_sink(s, 0);
	assert_int_equal(k.on_piece(k.ud, "abcdef", 6), 0);
	struct buf out;
	buf_init(&out, 3);
	bool is_done;
	assert_int_equal(gen_stream_take(s, 0, &out, &is_done, NULL), BRG_E_TOO_LARGE);
	buf_fini(&out);
	k.on_done(k.ud, &(struct gen_result){0});
	gen_stream_free(s);
}

static void test_stream_free_null_is_noop(void **state)
{
	(void)state;
	gen_stream_free(NULL);
}

/* ---- gen.c ---- */

static void test_gen_default_params_are_openai_defaults(void **state)
{
	(void)state;
	struct gen_params p = gen_default_params();
	assert_int_equal(p.n_max_tokens, -1);
	assert_true(p.temperature == 1.0f);
	assert_true(p.top_p == 1.0f);
	assert_int_equal(p.top_k, 0);
	assert_true(p.min_p == 0.0f);
	assert_true(p.presence_penalty == 0.0f);
	assert_true(p.frequency_penalty == 0.0f);
	assert_false(p.has_seed);
	assert_int_equal(p.n_stops, 0);
}

static void test_gen_finish_names(void **state)
{
	(void)state;
	assert_string_equal(gen_finish_name(GEN_FINISH_STOP), "stop");
	assert_string_equal(gen_finish_name(GEN_FINISH_LENGTH), "length");
	assert_string_equal(gen_finish_name(GEN_FINISH_CANCELLED), "cancelled");
	assert_string_equal(gen_finish_name(GEN_FINISH_ERROR), "error");
	assert_string_equal(gen_finish_name((enum gen_finish)99), "error");
}

/* ---- log.c ---- */

static void test_log_level_parse_names_any_case(void **state)
{
	(void)state;
	assert_int_equal(log_level_parse("DEBUG"), LOG_DEBUG);
	assert_int_equal(log_level_parse("info"), LOG_INFO);
	assert_int_equal(log_level_parse("WARNING"), LOG_WARN);
	assert_int_equal(log_level_parse("Warn"), LOG_WARN);
	assert_int_equal(log_level_parse("error"), LOG_ERROR);
	assert_int_equal(log_level_parse("CRITICAL"), LOG_ERROR);
	assert_int_equal(log_level_parse("off"), LOG_OFF);
}

static void test_log_level_parse_unknown_is_minus_one(void **state)
{
	(void)state;
	assert_int_equal(log_level_parse("verbose"), -1);
	assert_int_equal(log_level_parse(""), -1);
	assert_int_equal(log_level_parse(NULL), -1);
}

static void test_log_set_level_round_trips(void **state)
{
	(void)state;
	enum log_level old = log_get_level();
	log_set_level(LOG_ERROR);
	assert_int_equal(log_get_level(), LOG_ERROR);
	log_debug("not printed %d", 1);
	log_set_level(old);
}

static void *finish_choice(void *arg)
{
	struct sink k = *(struct sink *)arg;
	struct gen_result res = {.finish = GEN_FINISH_STOP};
	k.on_done(k.ud, &res);
	return NULL;
}

/*
 * The consumer frees the stream as soon as the last on_done is seen; the
 * producer must not touch the stream after that (it once signalled the
 * eventfd after unlocking: a use-after-free that ASan caught in the
 * integration suite).  Many rounds give the race room to show.
 */
static void test_stream_free_right_after_last_done_is_safe(void **state)
{
	(void)state;
	for (int round = 0; round < 2000; round++) {
		struct gen_stream *s = gen_stream_new(1, 64);
		assert_non_null(s);
		struct sink k = gen_stream_sink(s, 0);
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, finish_choice, &k), 0);
		gen_stream_wait_all_done(s);
		gen_stream_free(s);
		pthread_join(t, NULL);
	}
}

/* ---- pump ---- */

static int fake_pump_calls;

static int fake_pump(struct pollfd *fds, nfds_t n, int timeout_ms)
{
	(void)fds;
	(void)n;
	(void)timeout_ms;
	fake_pump_calls++;
	return 0;
}

static void *pump_state_of_new_thread(void *arg)
{
	bool *out = arg;
	out[0] = pump_thread_is_enabled();
	out[1] = pump_thread_is_busy();
	return NULL;
}

static void test_pump_poll_is_poll_without_a_pump(void **state)
{
	(void)state;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct pollfd p = {.fd = efd, .events = POLLIN};
	assert_int_equal(pump_poll(&p, 1, 0), 0);
	uint64_t one = 1;
	assert_int_equal(write(efd, &one, sizeof one), (ssize_t)sizeof one);
	assert_int_equal(pump_poll(&p, 1, 0), 1);
	assert_true(p.revents & POLLIN);
	close(efd);
}

static void test_pump_installed_is_called_and_thread_local(void **state)
{
	(void)state;
	unsigned before = pump_thread_requests();
	pump_thread_enable();
	pump_thread_enable();
	assert_true(pump_thread_is_enabled());
	assert_int_equal(pump_thread_requests(), before + 2);
	pump_thread_set(fake_pump);
	assert_true(pump_thread_is_busy());
	fake_pump_calls = 0;
	assert_int_equal(pump_poll(NULL, 0, 1000), 0);
	assert_int_equal(fake_pump_calls, 1);
	/* Another thread sees neither the flag nor the pump. */
	bool seen[2] = {true, true};
	pthread_t t;
	pthread_create(&t, NULL, pump_state_of_new_thread, seen);
	pthread_join(t, NULL);
	assert_false(seen[0]);
	assert_false(seen[1]);
	pump_thread_set(NULL);
	assert_false(pump_thread_is_busy());
}

/* Reused eventfds must come back clear: a stale signal would wake the
 * next request's consumer for nothing. */
static void test_stream_reused_eventfd_starts_clear(void **state)
{
	(void)state;
	struct gen_stream *a = gen_stream_new(1, 64);
	assert_non_null(a);
	struct sink k = gen_stream_sink(a, 0);
	assert_int_equal(k.on_piece(k.ud, "x", 1), 0);
	struct gen_result res = {.finish = GEN_FINISH_STOP};
	k.on_done(k.ud, &res);
	int fd_a = gen_stream_fd(a);
	gen_stream_free(a); /* signalled and never acked */
	struct gen_stream *b = gen_stream_new(1, 64);
	assert_non_null(b);
	struct pollfd p = {.fd = gen_stream_fd(b), .events = POLLIN};
	assert_int_equal(p.fd, fd_a); /* the spare came back */
	assert_int_equal(poll(&p, 1, 0), 0);
	gen_stream_fail(b, 0, &res);
	gen_stream_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_err_table_http_status),
	    cmocka_unit_test(test_err_out_of_range_is_internal_500),
	    cmocka_unit_test(test_err_table_spec_codes),
	    cmocka_unit_test(test_err_table_retriable_flags),
	    cmocka_unit_test(test_fail_formats_message_and_returns_code),
	    cmocka_unit_test(test_fail_with_null_error_still_returns_code),
	    cmocka_unit_test(test_fail_keeps_earlier_details),
	    cmocka_unit_test(test_fail_truncates_long_message),
	    cmocka_unit_test(test_clear_resets_code_message_and_details),
	    cmocka_unit_test(test_details_int_str_bool),
	    cmocka_unit_test(test_detail_same_key_twice_keeps_last_value),
	    cmocka_unit_test(test_detail_str_null_is_empty_and_long_is_truncated),
	    cmocka_unit_test(test_detail_table_full_drops_silently),
	    cmocka_unit_test(test_buf_append_keeps_nul_terminated_text),
	    cmocka_unit_test(test_buf_cap_enforced_contents_unchanged),
	    cmocka_unit_test(test_buf_cap_huge_append_does_not_overflow),
	    cmocka_unit_test(test_buf_without_a_cap_grows),
	    cmocka_unit_test(test_buf_appendf_formats),
	    cmocka_unit_test(test_buf_appendf_over_cap_leaves_contents),
	    cmocka_unit_test(test_buf_consume_drops_prefix),
	    cmocka_unit_test(test_buf_take_hands_over_and_leaves_empty),
	    cmocka_unit_test(test_buf_reset_empties_keeps_memory),
	    cmocka_unit_test(test_pump_poll_is_poll_without_a_pump),
	    cmocka_unit_test(test_pump_installed_is_called_and_thread_local),
	    cmocka_unit_test(test_stream_reused_eventfd_starts_clear),
	    cmocka_unit_test(test_stream_piece_from_thread_is_delivered),
	    cmocka_unit_test(test_stream_done_records_result),
	    cmocka_unit_test(test_stream_fd_readable_after_piece_and_ack_clears),
	    cmocka_unit_test(test_stream_cancel_makes_on_piece_ask_to_stop),
	    cmocka_unit_test(test_stream_fail_marks_choice_done_with_error),
	    cmocka_unit_test(test_stream_second_on_done_is_ignored),
	    cmocka_unit_test(test_stream_wait_all_done_returns_after_last_done),
	    cmocka_unit_test(test_stream_text_over_cap_asks_to_stop),
	    cmocka_unit_test(test_stream_take_into_full_out_is_too_large),
	    cmocka_unit_test(test_stream_free_null_is_noop),
	    cmocka_unit_test(test_gen_default_params_are_openai_defaults),
	    cmocka_unit_test(test_gen_finish_names),
	    cmocka_unit_test(test_log_level_parse_names_any_case),
	    cmocka_unit_test(test_log_level_parse_unknown_is_minus_one),
	    cmocka_unit_test(test_log_set_level_round_trips),
	    cmocka_unit_test(test_stream_free_right_after_last_done_is_safe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
