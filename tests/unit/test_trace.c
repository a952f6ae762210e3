/*
 * test_trace.c — unit tests for obs/trace.c and obs/otlp.c: the W3C
 * traceparent header (round trips, and everything W3C says to refuse),
 * span ids, a span's OTLP/HTTP JSON read back with jansson, the exporter's
 * bounded queue (a full one drops and counts, never blocks), and, through
 * a tiny HTTP receiver on a loopback socket, the spans of one request: its
 * SERVER span continuing an incoming trace, its queue wait, and one CLIENT
 * span per provider call of the fallback chain, whose context the provider
 * receives.  Also the OTEL_* variables, and that with tracing off an
 * incoming context passes through untouched.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "testutil.h"

#include "config/config.h"
#include "core/log.h"
#include "obs/obs.h"
#include "obs/trace.h"
#include "provider/fallback.h"
#include "provider/provider.h"

#define TRACE_HEX "4bf92f3577b34da6a3ce929d0e0e4736"
#define SPAN_HEX  "00f067aa0ba902b7"
#define INCOMING  "00-" TRACE_HEX "-" SPAN_HEX "-01"
#define CLOSED    "http://127.0.0.1:9" /* the discard port: nobody listens */

/* ---- traceparent -------------------------------------------------------- */

static void test_traceparent_parse_and_format_round_trip(void **state)
{
	(void)state;
	struct trace_ctx c;
	assert_true(trace_parse(INCOMING, &c));
	char hex[TRACE_ID_HEX];
	trace_hex(c.trace_id, 16, hex);
	assert_string_equal(hex, TRACE_HEX);
	trace_hex(c.span_id, 8, hex);
	assert_string_equal(hex, SPAN_HEX);
	assert_int_equal(c.flags, 1);
	char out[TRACE_PARENT_SIZE];
	trace_format(&c, out);
	assert_string_equal(out, INCOMING);
	/* A later version's extra fields are dropped: we speak version 00. */
	assert_true(trace_parse("cc-" TRACE_HEX "-" SPAN_HEX "-09-what-ever", &c));
	trace_format(&c, out);
	assert_string_equal(out, "00-" TRACE_HEX "-" SPAN_HEX "-09");
	for (int i = 0; i < 100; i++) {
		struct trace_ctx r = {.flags = (uint8_t)i}, back;
		trace_random(r.trace_id, 16);
		trace_random(r.span_id, 8);
		trace_format(&r, out);
		assert_int_equal(strlen(out), TRACE_PARENT_LEN);
		assert_true(trace_parse(out, &back));
		assert_memory_equal(&r, &back, sizeof r);
	}
}

static void test_traceparent_rejects_what_w3c_rejects(void **state)
{
	(void)state;
	static const char *bad[] = {
	    "",
	    "garbage",
	    "00-" TRACE_HEX "-" SPAN_HEX,                          /* no flags */
	    "00-" TRACE_HEX "-" SPAN_HEX "-1",                     /* short flags */
	    "00-" TRACE_HEX "-" SPAN_HEX "-01-extra",              /* version 00 ends there */
	    "00-" TRACE_HEX "-" SPAN_HEX "-010",                   /* too long */
	    "ff-" TRACE_HEX "-" SPAN_HEX "-01",                    /* version ff is invalid */
	    "0g-" TRACE_HEX "-" SPAN_HEX "-01",                    /* not hex */
	    "00-00000000000000000000000000000000-" SPAN_HEX "-01", /* zero trace id */
	    "00-" TRACE_HEX "-0000000000000000-01",                /* zero span id */
	    "00-4BF92F3577B34DA6A3CE929D0E0E4736-" SPAN_HEX "-01", /* uppercase */
	    "00-" TRACE_HEX "-00F067AA0BA902B7-01",                /* uppercase */
	    "00-" TRACE_HEX "-" SPAN_HEX "-0A",                    /* uppercase */
	    "00_" TRACE_HEX "-" SPAN_HEX "-01",                    /* separators */
	    "00-" TRACE_HEX "_" SPAN_HEX "-01",
	    "00-" TRACE_HEX "-" SPAN_HEX "_01",
	    "01-" TRACE_HEX "-" SPAN_HEX "-01x",                  /* later version: '-' after */
	    "00-4bf92f3577b34da6a3ce929d0e0e473-" SPAN_HEX "-01", /* short trace id */
	};
	struct trace_ctx c;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (trace_parse(bad[i], &c))
			fail_msg("'%s' was accepted", bad[i]);
	assert_false(trace_parse(NULL, &c));
}

static void test_ids_are_random_and_never_zero(void **state)
{
	(void)state;
	uint8_t prev[8] = {0}, id[8];
	for (int i = 0; i < 1000; i++) {
		trace_random(id, sizeof id);
		assert_true(memcmp(id, (uint8_t[8]){0}, 8) != 0);
		assert_true(memcmp(id, prev, 8) != 0);
		memcpy(prev, id, 8);
	}
}

/* ---- OTLP JSON ---------------------------------------------------------- */

/* A span with fixed ids, parent SPAN_HEX, as trace_open would make it. */
static void fixed_span(struct trace_span *s, enum trace_kind kind, const char *name)
{
	struct trace_open o = {.is_on = true, .start_ns = 1700000000123456789LL};
	assert_true(trace_parse(INCOMING, &o.ctx));
	memcpy(o.parent_id, o.ctx.span_id, 8);
	memcpy(o.ctx.span_id, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	trace_span_init(s, &o, kind, name);
	s->end_ns = 1700000000223456789LL;
}

static json_t *otlp_of(const struct trace_span *spans, size_t n, const char *service)
{
	struct buf b;
	buf_init(&b, (size_t)1 << 20);
	assert_int_equal(trace_otlp_json(&b, service, spans, n), BRG_OK);
	json_error_t je;
	json_t *v = json_loadb(b.data, b.len, 0, &je);
	if (!v)
		fail_msg("not JSON (%s): %.*s", je.text, (int)b.len, b.data);
	buf_fini(&b);
	return v;
}

static json_t *attr_value(json_t *span, const char *key)
{
	size_t i;
	json_t *a;
	json_array_foreach(json_object_get(span, "attributes"), i, a)
	{
		if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0)
			return json_object_get(a, "value");
	}
	return NULL;
}

static void test_span_encodes_as_otlp_json(void **state)
{
	(void)state;
	struct trace_span s[2];
	fixed_span(&s[0], TRACE_CLIENT, "provider \"vllm\"");
	trace_span_str(&s[0], "brigade.provider", "vllm");
	trace_span_int(&s[0], "http.response.status_code", 503);
	trace_span_str(&s[0], "brigade.odd", "bad \xff byte and \"quotes\"\n");
	trace_span_fail(&s[0], "upstream said: no");
	fixed_span(&s[1], TRACE_SERVER, "root");
	memset(s[1].parent_id, 0, 8);
	json_t *v = otlp_of(s, 2, "my-service");
	json_t *rs = json_array_get(json_object_get(v, "resourceSpans"), 0);
	json_t *res_attr =
	    json_array_get(json_object_get(json_object_get(rs, "resource"), "attributes"), 0);
	assert_string_equal(json_string_value(json_object_get(res_attr, "key")), "service.name");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(res_attr, "value"), "stringValue")),
	    "my-service");
	json_t *ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(ss, "scope"), "name")), "brigade");
	json_t *spans = json_object_get(ss, "spans");
	assert_int_equal(json_array_size(spans), 2);
	json_t *c = json_array_get(spans, 0);
	assert_string_equal(json_string_value(json_object_get(c, "traceId")), TRACE_HEX);
	assert_string_equal(json_string_value(json_object_get(c, "spanId")), "0102030405060708");
	assert_string_equal(json_string_value(json_object_get(c, "parentSpanId")), SPAN_HEX);
	assert_string_equal(json_string_value(json_object_get(c, "name")), "provider \"vllm\"");
	assert_int_equal(json_integer_value(json_object_get(c, "kind")), 3);
	assert_string_equal(json_string_value(json_object_get(c, "startTimeUnixNano")),
	                    "1700000000123456789");
	assert_string_equal(json_string_value(json_object_get(c, "endTimeUnixNano")),
	                    "1700000000223456789");
	assert_string_equal(
	    json_string_value(json_object_get(attr_value(c, "brigade.provider"), "stringValue")),
	    "vllm");
	assert_string_equal(json_string_value(json_object_get(
	                        attr_value(c, "http.response.status_code"), "intValue")),
	                    "503");
	assert_string_equal(
	    json_string_value(json_object_get(attr_value(c, "brigade.odd"), "stringValue")),
	    "bad \xef\xbf\xbd byte and \"quotes\"\n");
	json_t *st = json_object_get(c, "status");
	assert_int_equal(json_integer_value(json_object_get(st, "code")), 2);
	assert_string_equal(json_string_value(json_object_get(st, "message")), "upstream said: no");
	json_t *root = json_array_get(spans, 1);
	assert_null(json_object_get(root, "parentSpanId"));
	assert_int_equal(json_integer_value(json_object_get(root, "kind")), 2);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(root, "status"), "code")), 0);
	json_decref(v);
}

static void test_long_values_are_cut_on_a_character(void **state)
{
	(void)state;
	struct trace_span s;
	fixed_span(&s, TRACE_INTERNAL, "x");
	char longer[200];
	memset(longer, 'a', sizeof longer);
	memcpy(longer + TRACE_STR_MAX - 2, "\xc3\xa9\xc3\xa9", 4); /* é straddles the cut */
	longer[sizeof longer - 1] = '\0';
	trace_span_str(&s, "k", longer);
	assert_int_equal(strlen(s.attrs[0].s), TRACE_STR_MAX - 2);
	for (int i = 0; i < 20; i++)
		trace_span_int(&s, "n", i);
	assert_int_equal(s.n_attrs, TRACE_MAX_ATTRS);
	json_decref(otlp_of(&s, 1, "svc")); /* still valid JSON */
}

/* ---- the exporter's queue ----------------------------------------------- */

static struct trace_export_opts opts_to(const char *endpoint, int queue_size)
{
	struct trace_export_opts o = trace_export_default_opts();
	o.endpoint = endpoint;
	o.queue_size = queue_size;
	o.interval_ms = 60000; /* only a full batch or the stop sends */
	return o;
}

static void test_full_queue_drops_and_counts_without_blocking(void **state)
{
	(void)state;
	struct trace_export_stats before, after;
	trace_export_get_stats(&before);
	struct trace_export_opts o = opts_to(CLOSED, 4);
	struct brg_error e;
	brg_error_clear(&e);
	assert_int_equal(trace_export_start(&o, &e), BRG_OK);
	assert_true(trace_is_enabled());
	struct trace_span s;
	fixed_span(&s, TRACE_INTERNAL, "x");
	long long t0 = now_ms();
	for (int i = 0; i < 10; i++)
		trace_submit(&s);
	assert_true(now_ms() - t0 < 500);
	trace_export_get_stats(&after);
	assert_int_equal(after.n_dropped_full - before.n_dropped_full, 6);
	t0 = now_ms();
	trace_export_stop(); /* sends the 4 to a closed port: they fail */
	assert_true(now_ms() - t0 < 3000);
	assert_false(trace_is_enabled());
	trace_export_get_stats(&after);
	assert_int_equal(after.n_dropped_error - before.n_dropped_error, 4);
	assert_int_equal(after.n_exported, before.n_exported);
	trace_submit(&s); /* stopped: ignored */
	trace_export_get_stats(&before);
	assert_int_equal(before.n_dropped_full, after.n_dropped_full);
}

static void test_start_needs_an_endpoint(void **state)
{
	(void)state;
	struct trace_export_opts o = opts_to(NULL, 4);
	struct brg_error e;
	brg_error_clear(&e);
	assert_int_equal(trace_export_start(&o, &e), BRG_E_CONFIG);
	assert_false(trace_is_enabled());
	trace_export_stop(); /* not started: no-op */
}

/* ---- a receiver --------------------------------------------------------- */

#define MAX_POSTS 8

/* Accepts connections one at a time, stores each POST's path and body,
 * answers 200 and closes. */
struct receiver {
	int fd;
	int port;
	pthread_t thread;
	char paths[MAX_POSTS][64];
	char *bodies[MAX_POSTS];
	int n_posts;
};

/* Reads one request from c into rv; false on a broken one. */
static bool read_request(struct receiver *rv, int c)
{
	size_t cap = (size_t)4 << 20, len = 0;
	char *buf = calloc(1, cap + 1);
	char *end = NULL;
	while (!end && len < cap) {
		ssize_t n = read(c, buf + len, cap - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		end = strstr(buf, "\r\n\r\n");
	}
	const char *cl = end ? strcasestr(buf, "content-length:") : NULL;
	size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0, head = end ? (size_t)(end + 4 - buf) : 0;
	while (end && len < head + want && len < cap) {
		ssize_t n = read(c, buf + len, cap - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (!end || len < head + want || rv->n_posts == MAX_POSTS) {
		free(buf);
		return false;
	}
	sscanf(buf, "POST %63s", rv->paths[rv->n_posts]);
	rv->bodies[rv->n_posts++] = strndup(buf + head, want);
	free(buf);
	return true;
}

static void *receiver_main(void *arg)
{
	struct receiver *rv = arg;
	for (;;) {
		int c = accept(rv->fd, NULL, NULL);
		if (c < 0)
			return NULL; /* shut down */
		static const char ok[] =
		    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
		    "2\r\nConnection: close\r\n\r\n{}";
		if (read_request(rv, c) && write(c, ok, sizeof ok - 1) < 0)
			fail_msg("cannot answer");
		close(c);
	}
}

static void receiver_start(struct receiver *rv)
{
	memset(rv, 0, sizeof *rv);
	rv->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof a;
	assert_int_equal(bind(rv->fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(rv->fd, 8), 0);
	assert_int_equal(getsockname(rv->fd, (struct sockaddr *)&a, &alen), 0);
	rv->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&rv->thread, NULL, receiver_main, rv), 0);
}

/* Stops it; returns every span received, in order (json_decref it). */
static json_t *receiver_stop(struct receiver *rv)
{
	shutdown(rv->fd, SHUT_RDWR);
	pthread_join(rv->thread, NULL);
	close(rv->fd);
	json_t *all = json_array();
	for (int i = 0; i < rv->n_posts; i++) {
		assert_string_equal(rv->paths[i], "/v1/traces");
		json_t *v = json_loads(rv->bodies[i], 0, NULL);
		assert_non_null(v);
		json_t *rs = json_array_get(json_object_get(v, "resourceSpans"), 0);
		json_t *ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
		json_array_extend(all, json_object_get(ss, "spans"));
		json_decref(v);
		free(rv->bodies[i]);
	}
	return all;
}

/* Starts the exporter towards rv. */
static void export_to(struct receiver *rv)
{
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", rv->port); /* the '/' is dropped */
	struct trace_export_opts o = opts_to(url, 64);
	struct brg_error e;
	brg_error_clear(&e);
	assert_int_equal(trace_export_start(&o, &e), BRG_OK);
}

static json_t *span_named(json_t *spans, const char *name)
{
	size_t i;
	json_t *s;
	json_array_foreach(spans, i, s)
	{
		if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
			return s;
	}
	fail_msg("no span named %s", name);
	return NULL;
}

static const char *str_of(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* ---- one request's spans ------------------------------------------------ */

static void test_request_span_continues_the_incoming_trace(void **state)
{
	(void)state;
	struct receiver rv;
	receiver_start(&rv);
	export_to(&rv);
	obs_request_begin(OBS_CHAT, "POST", "/v1/chat/completions", INCOMING);
	assert_true(obs_request_is_traced());
	char tp[TRACE_PARENT_SIZE];
	assert_true(obs_request_traceparent(tp));
	assert_memory_equal(tp, "00-" TRACE_HEX "-", 36);
	assert_memory_not_equal(tp + 36, SPAN_HEX, 16); /* our span, not the caller's */
	long long t0 = obs_queue_wait_begin();
	assert_true(t0 > 0);
	obs_queue_wait_end(t0, BRG_OK);
	obs_request_status(200);
	obs_request_finish(NULL, &(struct obs_facts){.model = "m", .mode = "single"});
	obs_request_end();
	/* Without a traceparent a request starts a trace of its own. */
	obs_request_begin(OBS_EMBEDDINGS, "POST", "/v1/embeddings", "junk");
	char tp2[TRACE_PARENT_SIZE];
	assert_true(obs_request_traceparent(tp2));
	assert_memory_not_equal(tp2 + 3, TRACE_HEX, 32);
	obs_request_finish(NULL, NULL);
	obs_request_end();
	trace_export_stop();
	json_t *spans = receiver_stop(&rv);
	assert_int_equal(json_array_size(spans), 3);
	json_t *srv = span_named(spans, "POST /v1/chat/completions");
	assert_string_equal(str_of(srv, "traceId"), TRACE_HEX);
	assert_string_equal(str_of(srv, "parentSpanId"), SPAN_HEX);
	assert_memory_equal(str_of(srv, "spanId"), tp + 36, 16);
	assert_int_equal(json_integer_value(json_object_get(srv, "kind")), 2);
	assert_string_equal(str_of(attr_value(srv, "http.response.status_code"), "intValue"),
	                    "200");
	assert_string_equal(str_of(attr_value(srv, "brigade.mode"), "stringValue"), "single");
	json_t *q = span_named(spans, "queue wait");
	assert_string_equal(str_of(q, "traceId"), TRACE_HEX);
	assert_string_equal(str_of(q, "parentSpanId"), str_of(srv, "spanId"));
	assert_int_equal(json_integer_value(json_object_get(q, "kind")), 1);
	json_t *emb = span_named(spans, "POST /v1/embeddings");
	assert_null(json_object_get(emb, "parentSpanId"));
	assert_memory_equal(str_of(emb, "traceId"), tp2 + 3, 32);
	/* No reply was noted: 499, which is no server error. */
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(emb, "status"), "code")), 0);
	json_decref(spans);
}

static void test_tracing_off_passes_the_context_through(void **state)
{
	(void)state;
	assert_false(trace_is_enabled());
	obs_request_begin(OBS_CHAT, "POST", "/v1/chat/completions", INCOMING);
	assert_false(obs_request_is_traced());
	char tp[TRACE_PARENT_SIZE];
	assert_true(obs_request_traceparent(tp));
	assert_string_equal(tp, INCOMING);
	long long t0 = obs_queue_wait_begin(); /* timed for the metric, not traced */
	assert_true(t0 > 0);
	obs_queue_wait_end(t0, BRG_OK);
	obs_request_end();
	obs_request_begin(OBS_CHAT, "POST", "/v1/chat/completions", NULL);
	assert_false(obs_request_traceparent(tp));
	assert_string_equal(tp, "");
	obs_request_end();
	struct trace_open o;
	assert_false(trace_open(&o, NULL));
	assert_false(trace_open_child(&o, INCOMING));
}

static void test_unsampled_caller_gets_no_spans(void **state)
{
	(void)state;
	struct receiver rv;
	receiver_start(&rv);
	export_to(&rv);
	const char *unsampled = "00-" TRACE_HEX "-" SPAN_HEX "-00";
	obs_request_begin(OBS_CHAT, "POST", "/v1/chat/completions", unsampled);
	assert_false(obs_request_is_traced());
	char tp[TRACE_PARENT_SIZE];
	assert_true(obs_request_traceparent(tp));
	assert_string_equal(tp, unsampled);
	obs_request_end();
	trace_export_stop();
	json_t *spans = receiver_stop(&rv);
	assert_int_equal(json_array_size(spans), 0);
	json_decref(spans);
}

/* ---- provider calls ----------------------------------------------------- */

/* A provider that fails every call, or answers inside it; it keeps the
 * traceparent it was called with. */
struct fake {
	bool is_failing;
	char seen[TRACE_PARENT_SIZE];
	int n_calls;
};

static bool fake_has_model(void *impl, const char *id)
{
	(void)impl;
	(void)id;
	return true;
}

static enum brg_err fake_generate(void *impl, const struct gen_request *r, struct sink *sinks,
                                  struct brg_error *err)
{
	struct fake *f = impl;
	f->n_calls++;
	snprintf(f->seen, sizeof f->seen, "%s", r->traceparent ? r->traceparent : "");
	if (f->is_failing)
		return brg_fail(err, BRG_E_UPSTREAM, "upstream returned 500");
	for (size_t i = 0; i < r->n_choices; i++)
		sinks[i].on_done(sinks[i].ud, &(struct gen_result){.finish = GEN_FINISH_STOP});
	return BRG_OK;
}

static void count_done(void *ud, const struct gen_result *res)
{
	(void)res;
	(*(int *)ud)++;
}

static const struct provider_ops ops_a = {
    .name = "a", .has_model = fake_has_model, .generate = fake_generate};
static const struct provider_ops ops_b = {
    .name = "b", .has_model = fake_has_model, .generate = fake_generate};

/* Runs one generation on a (failing) with b behind it in the chain. */
static void generate_via_chain(struct fake *a, struct fake *b, const char *traceparent)
{
	struct fallback_opts fo = {.is_enabled = true, .breaker_failures = 100};
	struct fallback *f = fallback_new(&fo);
	assert_int_equal(fallback_add(f, (struct provider){&ops_a, a}, 0, "m"), BRG_OK);
	assert_int_equal(fallback_add(f, (struct provider){&ops_b, b}, 1, "m"), BRG_OK);
	int n_done = 0;
	struct sink sink = {NULL, count_done, &n_done};
	struct gen_request r = {.model = "m",
	                        .prompt = "hi",
	                        .params = gen_default_params(),
	                        .n_choices = 1,
	                        .traceparent = traceparent};
	struct brg_error e;
	brg_error_clear(&e);
	assert_int_equal(fallback_generate(f, (struct provider){&ops_a, a}, &r, &sink, &e), BRG_OK);
	assert_int_equal(n_done, 1);
	fallback_free(f);
}

static void test_provider_calls_are_client_spans_carrying_their_context(void **state)
{
	(void)state;
	struct receiver rv;
	receiver_start(&rv);
	export_to(&rv);
	struct fake a = {.is_failing = true}, b = {0};
	generate_via_chain(&a, &b, INCOMING);
	trace_export_stop();
	json_t *spans = receiver_stop(&rv);
	assert_int_equal(json_array_size(spans), 2);
	json_t *sa = span_named(spans, "provider a"), *sb = span_named(spans, "provider b");
	for (int i = 0; i < 2; i++) {
		json_t *s = i ? sb : sa;
		assert_string_equal(str_of(s, "traceId"), TRACE_HEX);
		assert_string_equal(str_of(s, "parentSpanId"), SPAN_HEX);
		assert_int_equal(json_integer_value(json_object_get(s, "kind")), 3);
		assert_string_equal(str_of(attr_value(s, "gen_ai.operation.name"), "stringValue"),
		                    "text_completion");
	}
	/* Each provider got its own attempt's span as the parent. */
	assert_memory_equal(a.seen, "00-" TRACE_HEX "-", 36);
	assert_memory_equal(a.seen + 36, str_of(sa, "spanId"), 16);
	assert_memory_equal(b.seen + 36, str_of(sb, "spanId"), 16);
	assert_string_equal(str_of(attr_value(sa, "brigade.outcome"), "stringValue"),
	                    "UPSTREAM_ERROR");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(sa, "status"), "code")),
	                 2);
	assert_string_equal(str_of(attr_value(sb, "brigade.outcome"), "stringValue"), "ok");
	assert_string_equal(str_of(attr_value(sb, "brigade.attempt"), "intValue"), "2");
	json_decref(spans);
}

static void test_provider_calls_pass_the_context_through_when_off(void **state)
{
	(void)state;
	struct fake a = {.is_failing = true}, b = {0};
	generate_via_chain(&a, &b, INCOMING);
	assert_string_equal(a.seen, INCOMING);
	assert_string_equal(b.seen, INCOMING);
	generate_via_chain(&a, &b, NULL);
	assert_string_equal(b.seen, "");
}

/* ---- configuration ------------------------------------------------------ */

static struct config *load(char *const *envp)
{
	struct config *c = NULL;
	struct brg_error e;
	brg_error_clear(&e);
	if (config_load_string("", 0, NULL, envp, &c, &e) != BRG_OK)
		fail_msg("%s", e.message);
	return c;
}

static void test_otel_variables(void **state)
{
	(void)state;
	struct config *c = load((char *[]){NULL});
	assert_false(c->is_tracing);
	assert_null(c->otel_endpoint);
	assert_string_equal(c->otel_service_name, "inference-service");
	config_free(c);
	c = load((char *[]){"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318/",
	                    "OTEL_SERVICE_NAME=brigade-1", NULL});
	assert_true(c->is_tracing);
	assert_string_equal(c->otel_endpoint, "http://collector:4318");
	assert_string_equal(c->otel_service_name, "brigade-1");
	config_free(c);
	c = load((char *[]){"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318",
	                    "OTEL_ENABLED=false", NULL});
	assert_false(c->is_tracing);
	config_free(c);
	c = load((char *[]){"OTEL_ENABLED=true", NULL});
	assert_true(c->is_tracing);
	assert_string_equal(c->otel_endpoint, "http://localhost:4318");
	config_free(c);
	c = load((char *[]){"OTEL_ENABLED=", "OTEL_EXPORTER_OTLP_ENDPOINT=", NULL}); /* unset */
	assert_false(c->is_tracing);
	config_free(c);
	struct brg_error e;
	brg_error_clear(&e);
	c = NULL;
	assert_int_equal(
	    config_load_string("", 0, NULL,
	                       (char *[]){"OTEL_EXPORTER_OTLP_ENDPOINT=collector", NULL}, &c, &e),
	    BRG_E_CONFIG);
	assert_non_null(strstr(e.message, "OTEL_EXPORTER_OTLP_ENDPOINT"));
	config_free(c);
	c = NULL;
	assert_int_equal(
	    config_load_string("", 0, NULL, (char *[]){"OTEL_ENABLED=maybe", NULL}, &c, &e),
	    BRG_E_CONFIG);
	assert_non_null(strstr(e.message, "OTEL_ENABLED"));
	config_free(c);
}

int main(void)
{
	log_set_level(getenv("BRIGADE_TEST_LOG") ? LOG_DEBUG : LOG_OFF);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_traceparent_parse_and_format_round_trip),
	    cmocka_unit_test(test_traceparent_rejects_what_w3c_rejects),
	    cmocka_unit_test(test_ids_are_random_and_never_zero),
	    cmocka_unit_test(test_span_encodes_as_otlp_json),
	    cmocka_unit_test(test_long_values_are_cut_on_a_character),
	    cmocka_unit_test(test_full_queue_drops_and_counts_without_blocking),
	    cmocka_unit_test(test_start_needs_an_endpoint),
	    cmocka_unit_test(test_request_span_continues_the_incoming_trace),
	    cmocka_unit_test(test_tracing_off_passes_the_context_through),
	    cmocka_unit_test(test_unsampled_caller_gets_no_spans),
	    cmocka_unit_test(test_provider_calls_are_client_spans_carrying_their_context),
	    cmocka_unit_test(test_provider_calls_pass_the_context_through_when_off),
	    cmocka_unit_test(test_otel_variables),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
