/*
 * otlp.c — the span exporter (trace.h): a bounded queue that request
 * threads drop finished spans into, and one thread that sends them in
 * batches as OTLP/HTTP JSON (opentelemetry-proto's ExportTraceServiceRequest
 * in its JSON mapping) to <OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces.
 *
 * The queue is Dmitry Vyukov's bounded MPMC ring (used here with one
 * consumer): each cell carries a sequence number that says whose turn it
 * is, so a producer claims a cell with one compare-and-swap on the tail
 * and publishes it with one release store — no lock, no allocation, and
 * never a wait: a full ring drops the span and counts it.  Producers wake
 * the exporter (an eventfd write) only when the queue reaches a full
 * batch; otherwise it wakes every interval.
 *
 * Export failures are never retried: a collector that is down would
 * otherwise make brigade queue, resend and log without end.  A failed
 * batch is counted as dropped, and only the first failure of a streak is
 * logged (at warn), with the recovery at info.
 *
 * This is the one libcurl user outside provider/: the exporter is an HTTP
 * client of its own, with its own thread and handle, and sharing the
 * providers' event loop would tie span delivery to upstream traffic.
 */
#include "obs/obs_int.h"

#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/curl_lazy.h"
#include "core/log.h"
#include "core/str.h"

#define BODY_MAX ((size_t)16 << 20) /* a full batch of the largest spans fits many times */

struct cell {
	atomic_size_t seq; /* == position: free for the producer of that position;
	                    * == position + 1: holds its span, for the consumer */
	struct trace_span span;
};

static struct {
	atomic_bool is_started;
	atomic_int n_submitting; /* producers between their check and their store */
	struct cell *cells;
	size_t mask;
	atomic_size_t tail; /* the next position a producer claims */
	atomic_size_t head; /* the next position the exporter takes */
	int efd;
	pthread_t thread;
	atomic_bool is_stopping;
	long long stop_deadline_ms;
	char *url;
	char *service;
	size_t batch_size;
	int interval_ms, timeout_ms;
	struct trace_span *batch;
	bool is_failing; /* the exporter thread's: the last POST failed */
	atomic_ullong n_exported, n_dropped_full, n_dropped_error;
} ex = {.efd = -1};

struct trace_export_opts trace_export_default_opts(void)
{
	return (struct trace_export_opts){
	    .service_name = "inference-service", /* the spec's OTEL_SERVICE_NAME default */
	    .queue_size = 2048,
	    .batch_size = 512,
	    .interval_ms = 1000,
	    .timeout_ms = 2000,
	};
}

/* ---- the queue ---------------------------------------------------------- */

static bool enqueue(const struct trace_span *s, size_t *out_pos)
{
	size_t pos = atomic_load_explicit(&ex.tail, memory_order_relaxed);
	for (;;) {
		struct cell *c = &ex.cells[pos & ex.mask];
		size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		intptr_t dif = (intptr_t)seq - (intptr_t)pos;
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&ex.tail, &pos, pos + 1,
			                                          memory_order_relaxed,
			                                          memory_order_relaxed)) {
				c->span = *s;
				atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
				*out_pos = pos;
				return true;
			}
		} else if (dif < 0) {
			return false; /* the cell still holds a span a lap behind: full */
		} else {
			pos = atomic_load_explicit(&ex.tail, memory_order_relaxed);
		}
	}
}

/* The exporter's side: false when the next cell is not published yet. */
static bool dequeue(struct trace_span *out)
{
	size_t pos = atomic_load_explicit(&ex.head, memory_order_relaxed);
	struct cell *c = &ex.cells[pos & ex.mask];
	size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
	if (seq != pos + 1)
		return false;
	*out = c->span;
	atomic_store_explicit(&c->seq, pos + ex.mask + 1, memory_order_release);
	atomic_store_explicit(&ex.head, pos + 1, memory_order_release);
	return true;
}

static size_t queued(void)
{
	return atomic_load(&ex.tail) - atomic_load(&ex.head);
}

static void wake(void)
{
	uint64_t one = 1;
	if (write(ex.efd, &one, sizeof one) < 0) {
		/* EAGAIN: the counter is full, so it is readable anyway. */
	}
}

void trace_submit(const struct trace_span *s)
{
	/* The count lets trace_export_stop() wait out a producer that saw the
	 * exporter running, before it frees the ring (seq_cst both sides). */
	atomic_fetch_add(&ex.n_submitting, 1);
	if (atomic_load(&ex.is_started)) {
		size_t pos;
		if (!enqueue(s, &pos))
			atomic_fetch_add_explicit(&ex.n_dropped_full, 1, memory_order_relaxed);
		else if (pos + 1 - atomic_load_explicit(&ex.head, memory_order_relaxed) ==
		         ex.batch_size)
			wake(); /* a batch is full: send it now */
	}
	atomic_fetch_sub(&ex.n_submitting, 1);
}

void trace_export_get_stats(struct trace_export_stats *out)
{
	out->n_exported = atomic_load_explicit(&ex.n_exported, memory_order_relaxed);
	out->n_dropped_full = atomic_load_explicit(&ex.n_dropped_full, memory_order_relaxed);
	out->n_dropped_error = atomic_load_explicit(&ex.n_dropped_error, memory_order_relaxed);
}

/* ---- the encoding ------------------------------------------------------- */

static enum brg_err attr_json(struct buf *b, const char *sep, const char *key,
                              const struct trace_attr *a)
{
	enum brg_err rc = buf_appendf(b, "%s{\"key\":", sep);
	if (!rc)
		rc = obs_json_str(b, key, NULL, NULL);
	if (!rc && a->is_int)
		return buf_appendf(b, ",\"value\":{\"intValue\":\"%lld\"}}", a->i);
	if (!rc)
		rc = buf_appendf(b, ",\"value\":{\"stringValue\":");
	if (!rc)
		rc = obs_json_str(b, a->s, NULL, NULL);
	return rc ? rc : buf_append(b, "}}", 2);
}

static enum brg_err span_json(struct buf *b, const struct trace_span *s)
{
	char trace[TRACE_ID_HEX], span[17], parent[17];
	trace_hex(s->ctx.trace_id, 16, trace);
	trace_hex(s->ctx.span_id, 8, span);
	trace_hex(s->parent_id, 8, parent);
	bool is_root = strcmp(parent, "0000000000000000") == 0;
	enum brg_err rc = buf_appendf(b, "{\"traceId\":\"%s\",\"spanId\":\"%s\"", trace, span);
	if (!rc && !is_root)
		rc = buf_appendf(b, ",\"parentSpanId\":\"%s\"", parent);
	if (!rc)
		rc = buf_append(b, ",\"name\":", 8);
	if (!rc)
		rc = obs_json_str(b, s->name, NULL, NULL);
	if (!rc)
		rc = buf_appendf(b,
		                 ",\"kind\":%d,\"startTimeUnixNano\":\"%lld\",\"endTimeUnixNano\":"
		                 "\"%lld\",\"attributes\":[",
		                 (int)s->kind, s->start_ns, s->end_ns);
	for (size_t i = 0; i < s->n_attrs && !rc; i++)
		rc = attr_json(b, i ? "," : "", s->attrs[i].key, &s->attrs[i]);
	if (!rc)
		rc = buf_appendf(b, "],\"status\":{\"code\":%d", (int)s->status);
	if (!rc && s->status == TRACE_ERROR && s->message[0]) {
		rc = buf_append(b, ",\"message\":", 11);
		if (!rc)
			rc = obs_json_str(b, s->message, NULL, NULL);
	}
	return rc ? rc : buf_append(b, "}}", 2);
}

enum brg_err trace_otlp_json(struct buf *out, const char *service_name,
                             const struct trace_span *spans, size_t n)
{
	struct trace_attr svc = {.key = "service.name"};
	str_copy(svc.s, sizeof svc.s, service_name ? service_name : "");
	static const char head[] = "{\"resourceSpans\":[{\"resource\":{\"attributes\":[";
	enum brg_err rc = buf_append(out, head, sizeof head - 1);
	if (!rc)
		rc = attr_json(out, "", svc.key, &svc);
	if (!rc)
		rc = buf_appendf(
		    out, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"brigade\"},\"spans\":[");
	for (size_t i = 0; i < n && !rc; i++) {
		if (i)
			rc = buf_append(out, ",", 1);
		if (!rc)
			rc = span_json(out, &spans[i]);
	}
	return rc ? rc : buf_append(out, "]}]}]}", 6);
}

/* ---- the exporter thread ------------------------------------------------ */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* POSTs 'body'; true on a 2xx.  'why' says what went wrong otherwise. */
static bool post(CURL *c, const struct buf *body, long timeout_ms, char *why, size_t why_len)
{
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_URL, ex.url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	if (rc != CURLE_OK)
		str_copy(why, why_len, errbuf[0] ? errbuf : curl_easy_strerror(rc));
	else if (status < 200 || status > 299)
		snprintf(why, why_len, "HTTP %ld", status);
	return rc == CURLE_OK && status >= 200 && status <= 299;
}

/* Encodes and sends ex.batch[0..n); counts the outcome. */
static void send_batch(CURL *c, struct buf *body, size_t n, long timeout_ms)
{
	char why[CURL_ERROR_SIZE + 32] = "out of memory";
	buf_reset(body);
	bool is_ok = c && timeout_ms > 0 && !trace_otlp_json(body, ex.service, ex.batch, n) &&
	             post(c, body, timeout_ms, why, sizeof why);
	if (is_ok) {
		atomic_fetch_add_explicit(&ex.n_exported, n, memory_order_relaxed);
		if (ex.is_failing)
			log_info("tracing: exporting to %s again", ex.url);
		ex.is_failing = false;
		return;
	}
	if (timeout_ms <= 0)
		snprintf(why, sizeof why, "no time left at shutdown");
	atomic_fetch_add_explicit(&ex.n_dropped_error, n, memory_order_relaxed);
	if (!ex.is_failing)
		log_warn("tracing: %zu spans not exported to %s: %s (dropped; further failures "
		         "are not logged until an export succeeds)",
		         n, ex.url, why);
	ex.is_failing = true;
}

/* Sleeps until a full batch is queued, the interval passes, or stop. */
static void nap(void)
{
	if (atomic_load(&ex.is_stopping) || queued() >= ex.batch_size)
		return;
	struct pollfd p = {.fd = ex.efd, .events = POLLIN};
	if (poll(&p, 1, ex.interval_ms) > 0) {
		uint64_t v;
		if (read(ex.efd, &v, sizeof v) < 0) {
			/* EAGAIN: another wake-up took it; nothing to clear */
		}
	}
}

static void *export_main(void *arg)
{
	(void)arg;
	CURL *c = curl_easy_init();
	struct buf body;
	buf_init(&body, BODY_MAX);
	for (;;) {
		nap();
		bool is_stopping = atomic_load(&ex.is_stopping);
		size_t n = 0;
		while (n < ex.batch_size && dequeue(&ex.batch[n]))
			n++;
		long timeout_ms = ex.timeout_ms;
		if (is_stopping) {
			long long left = ex.stop_deadline_ms - brg_now_ms();
			timeout_ms = left < timeout_ms ? (long)left : timeout_ms;
		}
		if (n)
			send_batch(c, &body, n, timeout_ms);
		if (is_stopping && n == 0)
			break;
	}
	buf_fini(&body);
	curl_easy_cleanup(c);
	return NULL;
}

/* ---- start and stop ----------------------------------------------------- */

static void release(void)
{
	if (ex.efd >= 0)
		close(ex.efd);
	ex.efd = -1;
	free(ex.cells);
	free(ex.batch);
	free(ex.url);
	free(ex.service);
	ex.cells = NULL;
	ex.batch = NULL;
	ex.url = ex.service = NULL;
}

static size_t pow2_at_least(size_t n)
{
	size_t p = 2;
	while (p < n)
		p <<= 1;
	return p;
}

enum brg_err trace_export_start(const struct trace_export_opts *o, struct brg_error *err)
{
	if (!o->endpoint || !*o->endpoint)
		return brg_fail(err, BRG_E_CONFIG, "tracing needs OTEL_EXPORTER_OTLP_ENDPOINT");
	if (atomic_load(&ex.is_started))
		return brg_fail(err, BRG_E_INTERNAL, "tracing is already started");
	size_t cap = pow2_at_least(o->queue_size > 0 ? (size_t)o->queue_size : 2);
	ex.mask = cap - 1;
	ex.batch_size = o->batch_size > 0 ? (size_t)o->batch_size : 1;
	ex.interval_ms = o->interval_ms > 0 ? o->interval_ms : 1000;
	ex.timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 2000;
	ex.cells = calloc(cap, sizeof *ex.cells);
	ex.batch = calloc(ex.batch_size, sizeof *ex.batch);
	ex.service = strdup(o->service_name ? o->service_name : "inference-service");
	size_t len = strlen(o->endpoint);
	while (len > 0 && o->endpoint[len - 1] == '/')
		len--;
	if (asprintf(&ex.url, "%.*s/v1/traces", (int)len, o->endpoint) < 0)
		ex.url = NULL;
	ex.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!ex.cells || !ex.batch || !ex.service || !ex.url || ex.efd < 0) {
		bool is_fd = ex.efd < 0;
		release();
		return is_fd ? brg_fail(err, BRG_E_RESOURCE, "tracing: no eventfd")
		             : brg_fail(err, BRG_E_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < cap; i++)
		atomic_init(&ex.cells[i].seq, i);
	atomic_store(&ex.tail, 0);
	atomic_store(&ex.head, 0);
	atomic_store(&ex.is_stopping, false);
	ex.is_failing = false;
	if (pthread_create(&ex.thread, NULL, export_main, NULL) != 0) {
		release();
		return brg_fail(err, BRG_E_RESOURCE, "tracing: cannot start the exporter thread");
	}
	atomic_store(&ex.is_started, true);
	trace_set_enabled(true);
	log_info("tracing: OTLP/HTTP JSON to %s as service %s", ex.url, ex.service);
	return BRG_OK;
}

void trace_export_stop(void)
{
	if (!atomic_load(&ex.is_started))
		return;
	trace_set_enabled(false);
	atomic_store(&ex.is_started, false);
	while (atomic_load(&ex.n_submitting) > 0)
		sched_yield(); /* a producer is mid-copy: a few instructions */
	ex.stop_deadline_ms = brg_now_ms() + ex.timeout_ms;
	atomic_store(&ex.is_stopping, true);
	wake();
	pthread_join(ex.thread, NULL);
	release();
}
