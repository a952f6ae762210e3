/*
 * test_http_conn.c — unit tests for http/server.c's connections: keep-alive,
 * pipelining, Expect: 100-continue, HTTP/1.0, protocol errors, HEAD, the
 * connection limit, the idle timeout, quiesce and stop.  A real server on
 * 127.0.0.1 (port 0), each test with the options it needs, spoken to with
 * plain sockets (http_client.h).
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"
#include "http_client.h"

#include "http/http.h"

static atomic_int last_err;
static struct http_server *server;
static int port;

static void reply_text(struct http_exchange *x, int status, const char *s)
{
	http_reply(x, status, "text/plain", s, strlen(s));
}

static void on_error(void *ud, struct http_exchange *x, enum brg_err code, const char *message)
{
	atomic_store(&last_err, (int)code);
	reply_text(x, brg_err_http_status(code), message);
}

static void h_ok(void *ud, struct http_exchange *x)
{
	reply_text(x, 200, "ok");
}

static void h_echo(void *ud, struct http_exchange *x)
{
	size_t len;
	const char *b = http_body(x, &len);
	http_reply(x, 200, "text/plain", b, len);
}

static void h_inject(void *ud, struct http_exchange *x)
{
	http_add_header(x, "X-Bad", "a\r\nSet-Cookie: evil=1");
	http_add_header(x, "X-Good", "fine");
	reply_text(x, 200, "ok");
}

static ssize_t pull_two(void *ud, char *buf, size_t max)
{
	int *n = ud;
	if (++*n > 2)
		return 0;
	memcpy(buf, "data,", 5);
	return 5;
}

static void h_stream(void *ud, struct http_exchange *x)
{
	int *n = calloc(1, sizeof *n);
	http_reply_stream(x, 200, "text/event-stream", pull_two, free, n);
}

static atomic_bool slow_may_end;

static void h_slow(void *ud, struct http_exchange *x)
{
	while (!atomic_load(&slow_may_end))
		sleep_ms(5);
	reply_text(x, 200, "slow");
}

static const struct http_route routes[] = {
    {"GET", "/ping", h_ok, 1},       {"POST", "/echo", h_echo, 1}, {"GET", "/inject", h_inject, 1},
    {"GET", "/stream", h_stream, 1}, {"GET", "/slow", h_slow, 1},
};

static void start(int max_connections, int idle_timeout_s)
{
	struct http_opts o = http_default_opts();
	o.port = 0;
	o.max_body_bytes = 1024;
	o.max_connections = max_connections;
	o.idle_timeout_s = idle_timeout_s;
	struct brg_error err;
	brg_error_clear(&err);
	assert_int_equal(http_server_start(&o, routes, sizeof routes / sizeof routes[0], on_error,
	                                   NULL, &server, &err),
	                 BRG_OK);
	port = http_server_port(server);
	atomic_store(&last_err, -1);
}

static int stop(void **state)
{
	http_server_stop(server);
	server = NULL;
	return 0;
}

/* Reads one response framed by Content-Length from a kept-alive
 * connection: the head, then exactly the body.  Returns the status and
 * copies the body into 'body'. */
static int read_one(int fd, char *body, size_t cap)
{
	char head[4096];
	size_t len = 0;
	while (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0) {
		assert_true(len + 1 < sizeof head);
		assert_int_equal(recv(fd, head + len, 1, 0), 1);
		len++;
	}
	head[len] = '\0';
	int status = -1;
	sscanf(head, "HTTP/1.1 %d", &status);
	const char *cl = strcasestr(head, "\r\nContent-Length: ");
	assert_non_null(cl);
	size_t n = strtoul(cl + 18, NULL, 10);
	assert_true(n < cap);
	for (size_t got = 0; got < n;) {
		ssize_t r = recv(fd, body + got, n - got, 0);
		assert_true(r > 0);
		got += (size_t)r;
	}
	body[n] = '\0';
	return status;
}

static void raw(const char *text, struct response *r)
{
	int fd = connect_to(port);
	send_all(fd, text, strlen(text));
	read_response(fd, r);
}

/* The server has closed fd: recv sees the end (or a reset) at once. */
static bool is_closed(int fd, int within_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, within_ms) != 1)
		return false;
	char c;
	return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

static void test_keep_alive_serves_requests_in_turn_on_one_connection(void **state)
{
	start(16, 10);
	int fd = connect_to(port);
	char body[64];
	for (int i = 0; i < 3; i++) {
		const char *rq = "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
		send_all(fd, rq, strlen(rq));
		assert_int_equal(read_one(fd, body, sizeof body), 200);
		assert_string_equal(body, "hello");
	}
	close(fd);
}

static void test_pipelined_requests_are_answered_in_order(void **state)
{
	start(16, 10);
	int fd = connect_to(port);
	const char *rq = "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\none"
	                 "GET /ping HTTP/1.1\r\nHost: h\r\n\r\n"
	                 "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                 "3\r\ntwo\r\n0\r\n\r\n"
	                 "GET /nowhere HTTP/1.1\r\nHost: h\r\n\r\n";
	send_all(fd, rq, strlen(rq));
	char body[64];
	assert_int_equal(read_one(fd, body, sizeof body), 200);
	assert_string_equal(body, "one");
	assert_int_equal(read_one(fd, body, sizeof body), 200);
	assert_string_equal(body, "ok");
	assert_int_equal(read_one(fd, body, sizeof body), 200);
	assert_string_equal(body, "two");
	assert_int_equal(read_one(fd, body, sizeof body), 404);
	close(fd);
}

static void test_expect_continue_gets_100_before_the_body(void **state)
{
	start(16, 10);
	int fd = connect_to(port);
	const char *rq = "POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
	                 "Content-Length: 4\r\n\r\n";
	send_all(fd, rq, strlen(rq));
	char interim[26] = {0};
	for (size_t got = 0; got < 25;) {
		ssize_t n = recv(fd, interim + got, 25 - got, 0);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_string_equal(interim, "HTTP/1.1 100 Continue\r\n\r\n");
	send_all(fd, "body", 4);
	char body[16];
	assert_int_equal(read_one(fd, body, sizeof body), 200);
	assert_string_equal(body, "body");
	close(fd);
}

static void test_expect_continue_over_the_limit_is_413_without_100(void **state)
{
	start(16, 10);
	struct response r;
	raw("POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: "
	    "5000\r\n\r\n",
	    &r);
	assert_int_equal(r.status, 413);
	assert_null(strstr(r.raw, "100 Continue"));
	assert_true(has_header(&r, "Connection: close"));
	assert_int_equal(atomic_load(&last_err), BRG_E_TOO_LARGE);
	response_free(&r);
}

static void test_http10_closes_unless_kept_alive(void **state)
{
	start(16, 10);
	struct response r;
	raw("GET /ping HTTP/1.0\r\n\r\n", &r); /* read_response reads to the close */
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok");
	assert_true(has_header(&r, "Connection: close"));
	response_free(&r);

	int fd = connect_to(port);
	const char *rq = "GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
	char body[16];
	for (int i = 0; i < 2; i++) {
		send_all(fd, rq, strlen(rq));
		assert_int_equal(read_one(fd, body, sizeof body), 200);
	}
	close(fd);
}

static void test_http10_stream_is_unchunked_and_ends_with_the_close(void **state)
{
	start(16, 10);
	struct response r;
	raw("GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_false(has_header(&r, "Transfer-Encoding:"));
	assert_string_equal(r.body, "data,data,");
	response_free(&r);

	raw("GET /stream HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", &r);
	assert_true(has_header(&r, "Transfer-Encoding: chunked"));
	assert_string_equal(r.body, "5\r\ndata,\r\n5\r\ndata,\r\n0\r\n\r\n");
	response_free(&r);
}

static void test_protocol_errors_are_answered_through_on_error_and_close(void **state)
{
	static const struct {
		const char *rq;
		int status;
	} cases[] = {
	    {"GARBAGE\r\n\r\n", 400},
	    {"GET /ping HTTP/1.1\r\n\r\n", 400}, /* no Host */
	    {"GET /ping HTTP/2.0\r\nHost: h\r\n\r\n", 505},
	    {"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab",
	     400},
	    {"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n"
	     "\r\nabc",
	     400},
	    {"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
	    {"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
	    {"GET /a%zzb HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	    {"GET /ping HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\n\r\n", 417},
	};
	start(16, 10);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		atomic_store(&last_err, -1);
		struct response r;
		raw(cases[i].rq, &r); /* reads to the close: the server closed */
		assert_int_equal(r.status, cases[i].status);
		assert_int_equal(atomic_load(&last_err), BRG_E_BAD_REQUEST);
		assert_true(has_header(&r, "Connection: close"));
		response_free(&r);
	}
}

static void test_head_over_32k_is_431(void **state)
{
	start(16, 10);
	size_t n = 40 * 1024;
	char *rq = malloc(n + 64);
	int k = snprintf(rq, 64, "GET /ping HTTP/1.1\r\nHost: h\r\nX-Big: ");
	memset(rq + k, 'a', n);
	memcpy(rq + k + n, "\r\n\r\n", 5);
	struct response r;
	raw(rq, &r);
	assert_int_equal(r.status, 431);
	response_free(&r);
	free(rq);
}

static void test_head_request_gets_length_but_no_body(void **state)
{
	start(16, 10);
	struct response r;
	raw("HEAD /ping HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 405); /* routes name GET; the answer still has no body */
	assert_int_equal(r.body_len, 0);
	assert_non_null(strcasestr(r.raw, "\r\nContent-Length: "));
	assert_null(strstr(r.raw, "\r\nContent-Length: 0\r\n"));
	response_free(&r);
}

static void test_reply_has_date_and_no_injected_header(void **state)
{
	start(16, 10);
	struct response r;
	raw("GET /inject HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Date: "));
	assert_true(has_header(&r, "X-Good: fine"));
	assert_false(has_header(&r, "Set-Cookie"));
	assert_false(has_header(&r, "X-Bad"));
	response_free(&r);
}

static void test_connections_past_the_limit_are_closed(void **state)
{
	start(2, 10);
	int a = connect_to(port), b = connect_to(port);
	char body[16];
	const char *rq = "GET /ping HTTP/1.1\r\nHost: h\r\n\r\n";
	send_all(a, rq, strlen(rq));
	assert_int_equal(read_one(a, body, sizeof body), 200);
	send_all(b, rq, strlen(rq));
	assert_int_equal(read_one(b, body, sizeof body), 200);
	int c = connect_to(port);
	assert_true(is_closed(c, 2000));
	close(c);
	close(b); /* a place frees up */
	sleep_ms(100);
	int d = connect_to(port);
	send_all(d, rq, strlen(rq));
	assert_int_equal(read_one(d, body, sizeof body), 200);
	close(d);
	close(a);
}

static void test_idle_connection_is_closed_after_the_timeout(void **state)
{
	start(16, 1);
	int fd = connect_to(port);
	long t0 = now_ms();
	assert_false(is_closed(fd, 500));
	assert_true(is_closed(fd, 3000));
	long took = now_ms() - t0;
	assert_true(took >= 900 && took < 3000);
	close(fd);
}

static void *get_slow(void *arg)
{
	struct response *r = arg;
	int fd = connect_to(port);
	const char *rq = "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n";
	send_all(fd, rq, strlen(rq));
	read_response(fd, r); /* to the close: the reply says Connection: close */
	return NULL;
}

static void test_quiesce_refuses_new_clients_and_signals_when_answered(void **state)
{
	start(16, 10);
	atomic_store(&slow_may_end, false);
	struct response r;
	pthread_t t;
	pthread_create(&t, NULL, get_slow, &r);
	sleep_ms(100);
	http_server_quiesce(server);
	struct pollfd p = {.fd = http_server_idle_fd(server), .events = POLLIN};
	assert_int_equal(poll(&p, 1, 100), 0); /* /slow is in progress */

	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), -1);
	assert_int_equal(errno, ECONNREFUSED);
	close(fd);

	atomic_store(&slow_may_end, true);
	assert_int_equal(poll(&p, 1, 2000), 1);
	pthread_join(t, NULL);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Connection: close"));
	response_free(&r);
}

static void test_stop_wakes_idle_kept_alive_connections(void **state)
{
	start(16, 60);
	int fd = connect_to(port);
	const char *rq = "GET /ping HTTP/1.1\r\nHost: h\r\n\r\n";
	char body[16];
	send_all(fd, rq, strlen(rq));
	assert_int_equal(read_one(fd, body, sizeof body), 200);
	long t0 = now_ms();
	http_server_stop(server);
	server = NULL;
	assert_true(now_ms() - t0 < 1000);
	assert_true(is_closed(fd, 1000));
	close(fd);
}

static int stop_if_running(void **state)
{
	return server ? stop(state) : 0;
}

#define T(f) cmocka_unit_test_teardown(f, stop_if_running)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_keep_alive_serves_requests_in_turn_on_one_connection),
	    T(test_pipelined_requests_are_answered_in_order),
	    T(test_expect_continue_gets_100_before_the_body),
	    T(test_expect_continue_over_the_limit_is_413_without_100),
	    T(test_http10_closes_unless_kept_alive),
	    T(test_http10_stream_is_unchunked_and_ends_with_the_close),
	    T(test_protocol_errors_are_answered_through_on_error_and_close),
	    T(test_head_over_32k_is_431),
	    T(test_head_request_gets_length_but_no_body),
	    T(test_reply_has_date_and_no_injected_header),
	    T(test_connections_past_the_limit_are_closed),
	    T(test_idle_connection_is_closed_after_the_timeout),
	    T(test_quiesce_refuses_new_clients_and_signals_when_answered),
	    T(test_stop_wakes_idle_kept_alive_connections),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
