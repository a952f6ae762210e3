/*
 * test_http.c — unit tests for http/server.c through http.h: a real server
 * on 127.0.0.1 (port 0) with a small table of test handlers, spoken to with
 * plain sockets.  Every request carries "Connection: close" so a response
 * is read until the server closes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
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
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include "http_client.h"

#include "core/pump.h"
#include "http/http.h"

#define MAX_BODY   (256u * 1024)
#define API_KEY    "k"
#define AUTH       "Authorization: Bearer " API_KEY "\r\n"
#define NO_WAIT    (-1)
#define BIG_BODY_N (200u * 1024)

/* What handlers on connection threads report back to the test thread. */
struct ctx {
	atomic_int last_err; /* the code the error callback got, or -1 */
	atomic_int n_freed;  /* free_ud calls of streamed replies */
	atomic_int wait_result;
	atomic_long wait_ms;
	atomic_bool has_waited;
	atomic_int pump_rounds;
	atomic_bool was_pump_enabled; /* http/ enabled the handler's thread */
};

static struct ctx g;
static struct http_server *server;
static int port;

static void reply_text(struct http_exchange *x, int status, const char *s)
{
	http_reply(x, status, "text/plain", s, strlen(s));
}

/* ---- handlers ---- */

static void on_error(void *ud, struct http_exchange *x, enum brg_err code, const char *message)
{
	struct ctx *c = ud;
	atomic_store(&c->last_err, (int)code);
	reply_text(x, brg_err_http_status(code), message);
}

static void h_ok(void *ud, struct http_exchange *x)
{
	reply_text(x, 200, "ok");
}

static void h_param(void *ud, struct http_exchange *x)
{
	char s[512];
	snprintf(s, sizeof s, "%s %s param=[%s]", http_method(x), http_path(x), http_param(x));
	reply_text(x, 200, s);
}

/* FNV-1a, to check a large body arrived byte for byte. */
static uint32_t fnv1a(const char *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

static void h_body(void *ud, struct http_exchange *x)
{
	size_t len = 0;
	const char *b = http_body(x, &len);
	char s[64];
	snprintf(s, sizeof s, "len=%zu hash=%08x", len, fnv1a(b, len));
	reply_text(x, 200, s);
}

static void h_header(void *ud, struct http_exchange *x)
{
	const char *v = http_header(x, "X-Hello");
	http_add_header(x, "X-Test", "yes");
	reply_text(x, 200, v ? v : "(none)");
}

static void h_reply_twice(void *ud, struct http_exchange *x)
{
	reply_text(x, 201, "first");
	reply_text(x, 500, "second");
}

struct pieces {
	struct ctx *c;
	int next;
};

static ssize_t pull_three(void *ud, char *buf, size_t max)
{
	static const char *const texts[] = {"one,", "two,", "three"};
	struct pieces *p = ud;
	if (p->next == 3)
		return 0;
	const char *t = texts[p->next++];
	size_t n = strlen(t);
	if (n > max)
		return -1; /* no cmocka asserts off the test thread */
	memcpy(buf, t, n);
	return (ssize_t)n;
}

static ssize_t pull_fail(void *ud, char *buf, size_t max)
{
	return -1;
}

static void free_pieces(void *ud)
{
	struct pieces *p = ud;
	atomic_fetch_add(&p->c->n_freed, 1);
	free(p);
}

static void h_stream(void *ud, struct http_exchange *x)
{
	struct pieces *p = calloc(1, sizeof *p);
	p->c = ud;
	http_reply_stream(x, 200, "text/event-stream", pull_three, free_pieces, p);
}

static void h_stream_fail(void *ud, struct http_exchange *x)
{
	struct pieces *p = calloc(1, sizeof *p);
	p->c = ud;
	http_reply_stream(x, 200, "text/event-stream", pull_fail, free_pieces, p);
}

static const char *wait_name(enum http_wait_result r)
{
	return r == HTTP_WAIT_READY ? "READY" : r == HTTP_WAIT_GONE ? "GONE" : "TIMEOUT";
}

/* Waits on an eventfd; records the result and how long it took. */
static void wait_and_record(struct ctx *c, struct http_exchange *x, int efd, int timeout_ms)
{
	long t0 = now_ms();
	enum http_wait_result r = http_wait(x, efd, timeout_ms);
	atomic_store(&c->wait_ms, now_ms() - t0);
	atomic_store(&c->wait_result, (int)r);
	atomic_store(&c->has_waited, true);
	reply_text(x, 200, wait_name(r));
}

static void h_wait_gone(void *ud, struct http_exchange *x)
{
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	wait_and_record(ud, x, efd, 5000); /* nobody ever signals efd */
	close(efd);
}

static void h_wait_timeout(void *ud, struct http_exchange *x)
{
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	wait_and_record(ud, x, efd, 100);
	close(efd);
}

static void *signal_later(void *arg)
{
	int efd = *(int *)arg;
	uint64_t one = 1;
	sleep_ms(50);
	ssize_t n = write(efd, &one, sizeof one);
	(void)n;
	return NULL;
}

static void h_wait_ready(void *ud, struct http_exchange *x)
{
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_t t;
	pthread_create(&t, NULL, signal_later, &efd);
	wait_and_record(ud, x, efd, 5000);
	pthread_join(t, NULL);
	close(efd);
}

/* A pump (core/pump.h) that returns early every time, doing "work": the
 * fifth round plays a producer on this very thread and signals the fd. */
static _Thread_local int pump_efd = -1;
static _Thread_local int pump_rounds;
static _Thread_local int pump_signal_round;

static int test_pump(struct pollfd *fds, nfds_t n, int timeout_ms)
{
	if (++pump_rounds == pump_signal_round) {
		uint64_t one = 1;
		ssize_t w = write(pump_efd, &one, sizeof one);
		(void)w;
	}
	/* Rounds of at most 10 ms: returning 0 before the caller's time is up
	 * is what a pump does after its own work. */
	return poll(fds, n, timeout_ms < 0 || timeout_ms > 10 ? 10 : timeout_ms);
}

static void wait_pumped(void *ud, struct http_exchange *x, int signal_round, int timeout_ms)
{
	struct ctx *c = ud;
	atomic_store(&c->was_pump_enabled, pump_thread_is_enabled());
	pump_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pump_rounds = 0;
	pump_signal_round = signal_round;
	pump_thread_set(test_pump);
	long t0 = now_ms();
	enum http_wait_result r = http_wait(x, pump_efd, timeout_ms);
	atomic_store(&c->wait_ms, now_ms() - t0);
	atomic_store(&c->pump_rounds, pump_rounds);
	pump_thread_set(NULL);
	close(pump_efd);
	reply_text(x, 200, wait_name(r));
}

static void h_wait_pumped(void *ud, struct http_exchange *x)
{
	wait_pumped(ud, x, 5, 5000);
}

static void h_wait_pumped_timeout(void *ud, struct http_exchange *x)
{
	wait_pumped(ud, x, -1, 100);
}

static const struct http_route routes[] = {
    {"GET", "/ping", h_ok, 1},
    {"GET", "/secret", h_ok, 0},
    {"POST", "/v1/models/{id}/load", h_param, 0},
    {"GET", "/v1/models/{id}", h_param, 0},
    {"POST", "/echo", h_body, 0},
    {"GET", "/header", h_header, 0},
    {"GET", "/twice", h_reply_twice, 0},
    {"GET", "/stream", h_stream, 0},
    {"GET", "/stream-fail", h_stream_fail, 0},
    {"GET", "/wait/gone", h_wait_gone, 0},
    {"GET", "/wait/timeout", h_wait_timeout, 0},
    {"GET", "/wait/ready", h_wait_ready, 0},
    {"GET", "/wait/pumped", h_wait_pumped, 0},
    {"GET", "/wait/pumped-timeout", h_wait_pumped_timeout, 0},
};

static int connect_server(void)
{
	return connect_to(port);
}

/* Sends "METHOD path" with 'headers' (each ending in CRLF) and 'body'. */
static void request(const char *method, const char *path, const char *headers, const char *body,
                    struct response *r)
{
	char head[1024];
	size_t body_len = body ? strlen(body) : 0;
	int n = snprintf(head, sizeof head,
	                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
	                 "Content-Length: %zu\r\n\r\n",
	                 method, path, headers, body_len);
	int fd = connect_server();
	send_all(fd, head, (size_t)n);
	if (body_len)
		send_all(fd, body, body_len);
	read_response(fd, r);
}

/* ---- fixture ---- */

static int server_up(void **state)
{
	struct http_opts o = http_default_opts();
	o.port = 0;
	o.max_body_bytes = MAX_BODY;
	o.api_key = API_KEY;
	o.idle_timeout_s = 10;
	struct brg_error err;
	brg_error_clear(&err);
	if (http_server_start(&o, routes, sizeof routes / sizeof routes[0], on_error, &g, &server,
	                      &err) != BRG_OK)
		return -1;
	port = http_server_port(server);
	return port > 0 ? 0 : -1;
}

static int server_down(void **state)
{
	http_server_stop(server);
	return 0;
}

static int reset_ctx(void **state)
{
	atomic_store(&g.last_err, -1);
	atomic_store(&g.n_freed, 0);
	atomic_store(&g.wait_result, -1);
	atomic_store(&g.wait_ms, -1);
	atomic_store(&g.has_waited, false);
	return 0;
}

/* ---- tests ---- */

static void test_route_param_spans_slashes_and_colons(void **state)
{
	struct response r;
	request("POST", "/v1/models/org/m:q4/load", AUTH, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "POST /v1/models/org/m:q4/load param=[org/m:q4]");
	assert_int_equal(atomic_load(&g.last_err), -1);
	response_free(&r);
}

static void test_route_param_without_suffix(void **state)
{
	struct response r;
	request("GET", "/v1/models/org/m:q4", AUTH, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "GET /v1/models/org/m:q4 param=[org/m:q4]");
	response_free(&r);
}

static void test_route_ignores_query_string(void **state)
{
	struct response r;
	request("GET", "/ping?x=1", "", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok");
	response_free(&r);
}

static void test_unknown_path_is_404_via_error_callback(void **state)
{
	struct response r;
	request("GET", "/nope", AUTH, NULL, &r);
	assert_int_equal(r.status, 404);
	assert_int_equal(atomic_load(&g.last_err), BRG_E_NOT_FOUND);
	response_free(&r);
}

static void test_known_path_wrong_method_is_405(void **state)
{
	struct response r;
	request("GET", "/echo", AUTH, NULL, &r);
	assert_int_equal(r.status, 405);
	assert_int_equal(atomic_load(&g.last_err), BRG_E_METHOD);
	response_free(&r);
}

static void test_empty_id_does_not_match_param_route(void **state)
{
	struct response r;
	request("POST", "/v1/models/", AUTH, NULL, &r);
	assert_int_equal(r.status, 404);
	assert_int_equal(atomic_load(&g.last_err), BRG_E_NOT_FOUND);
	response_free(&r);
}

static void test_large_body_in_several_writes_arrives_complete(void **state)
{
	char *body = malloc(BIG_BODY_N);
	for (size_t i = 0; i < BIG_BODY_N; i++)
		body[i] = (char)('a' + (i * 7 + i / 1000) % 26);
	char head[256];
	int n = snprintf(head, sizeof head,
	                 "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" AUTH
	                 "Content-Length: %u\r\n\r\n",
	                 BIG_BODY_N);
	int fd = connect_server();
	send_all(fd, head, (size_t)n);
	for (size_t off = 0; off < BIG_BODY_N; off += BIG_BODY_N / 4) {
		send_all(fd, body + off, BIG_BODY_N / 4);
		sleep_ms(5);
	}
	struct response r;
	read_response(fd, &r);
	char want[64];
	snprintf(want, sizeof want, "len=%u hash=%08x", BIG_BODY_N, fnv1a(body, BIG_BODY_N));
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, want);
	response_free(&r);
	free(body);
}

static void test_content_length_over_limit_is_413(void **state)
{
	char head[256];
	int n = snprintf(head, sizeof head,
	                 "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" AUTH
	                 "Content-Length: %u\r\n\r\n",
	                 MAX_BODY + 1);
	int fd = connect_server();
	send_all(fd, head, (size_t)n); /* the body is never sent: refused up front */
	struct response r;
	read_response(fd, &r);
	assert_int_equal(r.status, 413);
	assert_int_equal(atomic_load(&g.last_err), BRG_E_TOO_LARGE);
	response_free(&r);
}

static void send_chunk(int fd, const char *p, size_t n)
{
	char line[32];
	int k = snprintf(line, sizeof line, "%zx\r\n", n);
	send_all(fd, line, (size_t)k);
	send_all(fd, p, n);
	send_all(fd, "\r\n", 2);
}

static void test_chunked_upload_over_limit_is_413(void **state)
{
	static char piece[64 * 1024];
	memset(piece, 'z', sizeof piece);
	static const char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" AUTH
	                           "Transfer-Encoding: chunked\r\n\r\n";
	int fd = connect_server();
	send_all(fd, head, sizeof head - 1);
	for (size_t i = 0; i < MAX_BODY / sizeof piece + 1; i++)
		send_chunk(fd, piece, sizeof piece);
	send_all(fd, "0\r\n\r\n", 5);
	struct response r;
	read_response(fd, &r);
	assert_int_equal(r.status, 413);
	assert_int_equal(atomic_load(&g.last_err), BRG_E_TOO_LARGE);
	response_free(&r);
}

static void test_chunked_upload_under_limit_arrives_complete(void **state)
{
	static const char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" AUTH
	                           "Transfer-Encoding: chunked\r\n\r\n";
	int fd = connect_server();
	send_all(fd, head, sizeof head - 1);
	send_chunk(fd, "hello ", 6);
	send_chunk(fd, "world", 5);
	send_all(fd, "0\r\n\r\n", 5);
	struct response r;
	read_response(fd, &r);
	char want[64];
	snprintf(want, sizeof want, "len=11 hash=%08x", fnv1a("hello world", 11));
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, want);
	response_free(&r);
}

static void test_missing_api_key_is_401(void **state)
{
	struct response r;
	request("GET", "/secret", "", NULL, &r);
	assert_int_equal(r.status, 401);
	assert_int_equal(atomic_load(&g.last_err), BRG_E_UNAUTHORIZED);
	response_free(&r);
}

static void test_wrong_api_key_is_401(void **state)
{
	static const char *const bad[] = {
	    "Authorization: Bearer kk\r\n", "Authorization: Bearer \r\n",
	    "Authorization: Bearer x\r\n",  "Authorization: k\r\n",
	    "Authorization: Basic k\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct response r;
		atomic_store(&g.last_err, -1);
		request("GET", "/secret", bad[i], NULL, &r);
		assert_int_equal(r.status, 401);
		assert_int_equal(atomic_load(&g.last_err), BRG_E_UNAUTHORIZED);
		response_free(&r);
	}
}

static void test_correct_api_key_passes(void **state)
{
	struct response r;
	request("GET", "/secret", AUTH, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok");
	assert_int_equal(atomic_load(&g.last_err), -1);
	response_free(&r);
}

static void test_public_route_needs_no_key(void **state)
{
	struct response r;
	request("GET", "/ping", "", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(atomic_load(&g.last_err), -1);
	response_free(&r);
}

static void test_add_header_appears_and_request_header_readable(void **state)
{
	struct response r;
	request("GET", "/header", AUTH "X-Hello: there\r\n", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "X-Test: yes\r\n"));
	assert_string_equal(r.body, "there");
	response_free(&r);
}

static void test_second_reply_is_ignored(void **state)
{
	struct response r;
	request("GET", "/twice", AUTH, NULL, &r);
	assert_int_equal(r.status, 201);
	assert_string_equal(r.body, "first");
	response_free(&r);
}

/* free_ud may run just after the last byte is sent; give it a moment. */
static int wait_freed(void)
{
	for (int i = 0; i < 200 && atomic_load(&g.n_freed) == 0; i++)
		sleep_ms(10);
	sleep_ms(50); /* and a moment more, to catch a second call */
	return atomic_load(&g.n_freed);
}

static void test_stream_sends_pieces_chunked_and_frees_once(void **state)
{
	struct response r;
	request("GET", "/stream", AUTH, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Transfer-Encoding: chunked\r\n"));
	assert_true(has_header(&r, "Content-Type: text/event-stream\r\n"));
	char body[256];
	size_t n_chunks = 0;
	assert_true(dechunk(r.body, r.body + r.body_len, body, sizeof body, &n_chunks));
	assert_string_equal(body, "one,two,three");
	assert_int_equal(n_chunks, 3);
	assert_int_equal(wait_freed(), 1);
	response_free(&r);
}

static void test_stream_pull_error_drops_connection_and_frees_once(void **state)
{
	struct response r;
	request("GET", "/stream-fail", AUTH, NULL, &r);
	/* Headers may or may not have gone out; the body must not end cleanly. */
	assert_null(strstr(r.raw, "\r\n0\r\n\r\n"));
	assert_int_equal(wait_freed(), 1);
	response_free(&r);
}

static void test_wait_gone_when_client_closes(void **state)
{
	static const char req[] =
	    "GET /wait/gone HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" AUTH "\r\n";
	int fd = connect_server();
	send_all(fd, req, sizeof req - 1);
	sleep_ms(100); /* let the handler reach http_wait */
	long t0 = now_ms();
	close(fd);
	while (!atomic_load(&g.has_waited) && now_ms() - t0 < 4000)
		sleep_ms(5);
	assert_true(atomic_load(&g.has_waited));
	assert_int_equal(atomic_load(&g.wait_result), HTTP_WAIT_GONE);
	assert_true(now_ms() - t0 < 1000); /* well under the 5 s timeout */
}

static void test_wait_timeout_when_nothing_happens(void **state)
{
	struct response r;
	request("GET", "/wait/timeout", AUTH, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "TIMEOUT");
	assert_true(atomic_load(&g.wait_ms) >= 90);
	assert_true(atomic_load(&g.wait_ms) < 2000);
	response_free(&r);
}

static void test_wait_ready_when_fd_written_from_thread(void **state)
{
	struct response r;
	request("GET", "/wait/ready", AUTH, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "READY");
	assert_true(atomic_load(&g.wait_ms) < 2000);
	response_free(&r);
}

/* A pump's early returns are its own work, not the end of the wait. */
static void test_wait_pumps_until_fd_ready(void **state)
{
	struct response r;
	request("GET", "/wait/pumped", AUTH, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "READY");
	assert_true(atomic_load(&g.was_pump_enabled));
	assert_int_equal(atomic_load(&g.pump_rounds), 5); /* signalled in round 5 */
	response_free(&r);
}

static void test_wait_pumped_times_out_on_the_clock(void **state)
{
	struct response r;
	request("GET", "/wait/pumped-timeout", AUTH, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "TIMEOUT");
	assert_true(atomic_load(&g.wait_ms) >= 90);
	assert_true(atomic_load(&g.pump_rounds) >= 5); /* 10 ms rounds */
	response_free(&r);
}

static void test_start_on_unbindable_address_is_config_error(void **state)
{
	struct http_opts o = http_default_opts();
	o.host = "192.0.2.1"; /* TEST-NET-1: no local interface has it */
	o.port = 0;
	struct http_server *s = NULL;
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(http_server_start(&o, routes, 1, on_error, &g, &s, &err), BRG_E_CONFIG);
	assert_int_equal(err.code, BRG_E_CONFIG);
	assert_null(s);
	http_server_stop(NULL); /* harmless */
}

static void test_start_on_port_in_use_is_config_error(void **state)
{
	struct http_opts o = http_default_opts();
	o.port = port; /* the fixture's server holds it */
	struct http_server *s = NULL;
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(http_server_start(&o, routes, 1, on_error, &g, &s, &err), BRG_E_CONFIG);
	assert_non_null(strstr(err.message, "cannot listen"));
}

#define T(f) cmocka_unit_test_setup(f, reset_ctx)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_route_param_spans_slashes_and_colons),
	    T(test_route_param_without_suffix),
	    T(test_route_ignores_query_string),
	    T(test_unknown_path_is_404_via_error_callback),
	    T(test_known_path_wrong_method_is_405),
	    T(test_empty_id_does_not_match_param_route),
	    T(test_large_body_in_several_writes_arrives_complete),
	    T(test_content_length_over_limit_is_413),
	    T(test_chunked_upload_over_limit_is_413),
	    T(test_chunked_upload_under_limit_arrives_complete),
	    T(test_missing_api_key_is_401),
	    T(test_wrong_api_key_is_401),
	    T(test_correct_api_key_passes),
	    T(test_public_route_needs_no_key),
	    T(test_add_header_appears_and_request_header_readable),
	    T(test_second_reply_is_ignored),
	    T(test_stream_sends_pieces_chunked_and_frees_once),
	    T(test_stream_pull_error_drops_connection_and_frees_once),
	    T(test_wait_gone_when_client_closes),
	    T(test_wait_timeout_when_nothing_happens),
	    T(test_wait_ready_when_fd_written_from_thread),
	    T(test_wait_pumps_until_fd_ready),
	    T(test_wait_pumped_times_out_on_the_clock),
	    T(test_start_on_unbindable_address_is_config_error),
	    T(test_start_on_port_in_use_is_config_error),
	};
	return cmocka_run_group_tests(tests, server_up, server_down);
}
