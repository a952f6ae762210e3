/*
 * chat.c — POST /v1/chat/completions and POST /v1/completions: one run of
 * a validated request, answered as one JSON body or as server-sent events.
 *
 * A run owns a gen_stream with one choice per (prompt, n) pair.  It starts
 * every choice through orchestrate/, then sleeps in http_wait() on the
 * stream's eventfd and the client's socket.  If the client goes away the
 * run cancels its choices and waits for their on_done before freeing
 * anything — producers never write into freed memory.
 *
 * Streaming follows OpenAI's chunk format: a first chunk per choice with
 * the role (chat), content deltas, a chunk with finish_reason, a usage
 * chunk with empty choices when stream_options.include_usage is set, then
 * "data: [DONE]".  An error after the stream has started becomes an event
 * {"error": {...}} (the SDKs raise it) followed by [DONE].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

#include "api/api_int.h"
#include "api/metrics.h"
#include "core/clock.h"
#include "core/buf.h"
#include "core/jw.h"
#include "core/log.h"
#include "core/stream.h"

#define SSE_MAX ((size_t)64 << 20)

struct run {
	struct api *a;
	struct http_exchange *x;
	struct api_request req;
	struct gen_stream *s;
	size_t n_choices;
	struct orch_info info;
	char id[48];
	long long created;
	long long deadline_ms;      /* end to end from arrival, the queue included */
	struct admit_ticket ticket; /* the run's place in admission (admit/admit.h) */
	struct buf text[API_MAX_N];
	bool is_done[API_MAX_N];
	bool is_finish_sent[API_MAX_N];
	/* streaming */
	struct buf notes; /* orchestration step events not yet sent */
	struct buf out;
	bool has_sent_roles;
	bool has_sent_end;
	/* observability (obs/obs.h) */
	long long t_first_us;                /* when the first text arrived; 0: not yet */
	struct obs_request *obs;             /* the stream's; NULL: the handler thread's */
	char traceparent[TRACE_PARENT_SIZE]; /* what its provider calls carry; "" none */
	/* Not zeroed by run_new (40 KB a request, most of it never read):
	 * route_plan fills the plan, run_start clears n_choices results. */
	struct route_plan plan; /* made once: admission counts it, orchestrate/ runs it */
	struct gen_result res[API_MAX_N];
};

/* A thread's id generator: xoshiro256** seeded once from getrandom (a
 * system call per request was 1 of its 7), so ids stay unpredictable
 * across threads and restarts without costing one. */
static uint64_t next_random(void)
{
	static _Thread_local uint64_t s[4];
	static _Thread_local bool is_seeded;
	if (!is_seeded) {
		if (getrandom(s, sizeof s, 0) != (ssize_t)sizeof s)
			for (size_t i = 0; i < 4; i++)
				s[i] = ((uint64_t)rand() << 32) ^ (uint64_t)rand() ^
				       (uint64_t)brg_now_us() << i;
		s[0] |= 1; /* never all zero */
		is_seeded = true;
	}
	uint64_t x = s[1] * 5, r = (x << 7 | x >> 57) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = s[3] << 45 | s[3] >> 19;
	return r;
}

static void make_id(char *out, size_t len, const char *prefix)
{
	static const char alphabet[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	size_t n = (size_t)snprintf(out, len, "%s", prefix);
	for (size_t i = 0; i < 24 && n + 1 < len; i++)
		out[n++] = alphabet[next_random() % (sizeof alphabet - 1)];
	out[n] = '\0';
}

static void run_observe(struct run *r);

/*
 * Stops the work and gives its turn back (admit/admit.h).  Called before
 * the last bytes of an answer are handed to http/, so that a client's
 * next request, sent the moment this answer ends, finds the turn free
 * rather than a full queue.  Idempotent.
 */
static void run_stop(struct run *r)
{
	if (r->s) {
		/* Producers may still hold sinks: stop them and wait them out. */
		gen_stream_cancel(r->s);
		gen_stream_wait_all_done(r->s);
	}
	admit_leave(r->a->admit, &r->ticket);
}

/* The run's last word when it fails. */
static void run_reply_error(struct run *r, const struct brg_error *e)
{
	run_stop(r);
	api_reply_error(r->x, e);
}

static void run_free(struct run *r)
{
	if (!r)
		return;
	run_observe(r);
	run_stop(r);
	gen_stream_free(r->s);
	for (size_t i = 0; i < API_MAX_N; i++)
		buf_fini(&r->text[i]);
	buf_fini(&r->out);
	buf_fini(&r->notes);
	api_request_fini(&r->req);
	free(r);
}

static struct run *run_new(struct api *a, struct http_exchange *x)
{
	struct run *r = malloc(sizeof *r);
	if (!r)
		return NULL;
	memset(r, 0, offsetof(struct run, plan));
	r->a = a;
	r->x = x;
	r->created = (long long)time(NULL);
	obs_request_traceparent(r->traceparent); /* a copy: the stream outlives the handler */
	r->deadline_ms = brg_now_ms() + (long long)a->opts.request_timeout_s * 1000;
	admit_ticket_init(&r->ticket);
	for (size_t i = 0; i < API_MAX_N; i++)
		buf_init(&r->text[i], a->opts.max_output_bytes);
	buf_init(&r->out, SSE_MAX);
	buf_init(&r->notes, SSE_MAX);
	return r;
}

/* An orchestration step, as a named SSE event whose data is a chunk with
 * no choices (so an SDK that yields every event still sees a chunk).
 * Runs on the orchestrator's thread. */
static void on_step(void *ud, const struct orch_step_event *ev)
{
	struct run *r = ud;
	json_t *step = json_pack("{s:i, s:i, s:s, s:s, s:s, s:s, s:I}", "index", ev->index, "round",
	                         ev->round, "name", ev->name, "role", ev->role, "model", ev->model,
	                         "text", ev->text, "elapsed_ms", (json_int_t)ev->elapsed_ms);
	if (step && ev->score >= 0)
		json_object_set_new(step, "score", json_real(ev->score));
	if (step && ev->error)
		json_object_set_new(step, "error", json_string(ev->error));
	json_t *c = json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", r->id, "object",
	                      "chat.completion.chunk", "created", (json_int_t)r->created, "model",
	                      ev->model, "choices", "orchestration_step", step);
	char *data = c ? json_dumps(c, JSON_COMPACT) : NULL;
	json_decref(c);
	char *event = NULL;
	if (data && asprintf(&event, "event: orchestration.step\ndata: %s\n\n", data) > 0 &&
	    gen_stream_note(r->s, event, strlen(event)))
		log_warn("stream %s: a step event was dropped (over the size limit)", r->id);
	free(event);
	free(data);
}

/* Starts every choice.  Errors only when nothing could start; a later
 * prompt's failure is recorded on its choices (they end in error). */
static enum brg_err run_start(struct run *r, struct brg_error *err)
{
	r->n_choices = (r->req.is_chat ? 1 : r->req.n_prompts) * r->req.n;
	memset(r->res, 0, r->n_choices * sizeof r->res[0]);
	r->s = gen_stream_new(r->n_choices, r->a->opts.max_output_bytes);
	if (!r->s)
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	size_t n_prompts = r->req.is_chat ? 1 : r->req.n_prompts;
	for (size_t p = 0; p < n_prompts; p++) {
		struct sink sinks[API_MAX_N];
		for (size_t i = 0; i < r->req.n; i++)
			sinks[i] = gen_stream_sink(r->s, p * r->req.n + i);
		struct orch_request o = {
		    .id = r->id,
		    .mode = r->req.mode,
		    .model = r->req.model,
		    .task_type = r->req.task_type,
		    .preset = r->req.preset,
		    .fallback = r->a->fallback,
		    .on_step = r->req.is_stream && r->req.is_stream_steps ? on_step : NULL,
		    .step_ud = r,
		    .gen = {.msgs = r->req.msgs,
		            .n_msgs = r->req.n_msgs,
		            .prompt = r->req.is_chat ? NULL : r->req.prompts[p],
		            .params = r->req.params,
		            .n_choices = r->req.n,
		            .cancel = gen_stream_cancel_flag(r->s),
		            .traceparent = r->traceparent[0] ? r->traceparent : NULL},
		};
		enum brg_err rc = orchestrate_run(r->a->orch, &o, &r->plan, sinks, &r->info, err);
		if (rc == BRG_OK)
			continue;
		/* Mark every choice that never started as failed, so waiting
		 * for all of them terminates. */
		struct gen_result res = {.finish = GEN_FINISH_ERROR, .error = *err};
		res.error.code = rc;
		for (size_t c = p * r->req.n; c < r->n_choices; c++)
			gen_stream_fail(r->s, c, &res);
		if (p == 0)
			return rc;
		gen_stream_cancel(r->s);
		break;
	}
	return BRG_OK;
}

/* Moves what arrived into r->text and r->res.  Consumer thread. */
static enum brg_err run_collect(struct run *r)
{
	gen_stream_ack(r->s);
	if (gen_stream_take_notes(r->s, &r->notes))
		return BRG_E_TOO_LARGE;
	for (size_t i = 0; i < r->n_choices; i++) {
		if (r->is_done[i] && r->text[i].len == 0)
			continue;
		enum brg_err rc = gen_stream_take(r->s, i, &r->text[i], &r->is_done[i], &r->res[i]);
		if (rc)
			return rc;
		if (r->text[i].len && !r->t_first_us)
			r->t_first_us = obs_now_us();
	}
	return BRG_OK;
}

static bool run_all_done(const struct run *r)
{
	for (size_t i = 0; i < r->n_choices; i++)
		if (!r->is_done[i])
			return false;
	return true;
}

/* The first failed choice's error, as the request's; BRG_OK if none. */
static enum brg_err run_error(const struct run *r, struct brg_error *err)
{
	for (size_t i = 0; i < r->n_choices; i++) {
		const struct gen_result *g = &r->res[i];
		if (!r->is_done[i] || g->finish == GEN_FINISH_STOP ||
		    g->finish == GEN_FINISH_LENGTH || g->finish == GEN_FINISH_PARTIAL)
			continue;
		if (g->finish == GEN_FINISH_ERROR && g->error.code) {
			*err = g->error;
			return err->code;
		}
		return api_fail_interrupted(r->a, err); /* cancelled, yet the client is here */
	}
	return BRG_OK;
}

/* The run's token counts as usage reports them; *longest: the most
 * tokens one choice generated. */
static void run_usage(const struct run *r, long long *n_prompt, long long *n_cached,
                      long long *n_completion, int *longest)
{
	*n_prompt = *n_cached = *n_completion = *longest = 0;
	for (size_t i = 0; i < r->n_choices; i++) {
		if (i % r->req.n == 0) { /* each prompt counts once */
			*n_prompt += r->res[i].n_prompt;
			*n_cached += r->res[i].n_cached;
		}
		*n_completion += r->res[i].n_completion;
		if (r->res[i].n_completion > *longest)
			*longest = r->res[i].n_completion;
	}
}

/* Ends the request's observation (obs/obs.h): its metrics, its log line. */
static void run_observe(struct run *r)
{
	long long n_prompt, n_cached, n_completion;
	int longest;
	run_usage(r, &n_prompt, &n_cached, &n_completion, &longest);
	struct obs_facts f = {
	    .request_id = r->id,
	    .model = r->info.model[0] ? r->info.model : r->req.model,
	    .mode = r->info.model[0] ? orch_mode_name(r->info.mode) : r->req.mode,
	    .prompt_tokens = n_prompt,
	    .completion_tokens = n_completion,
	    .max_choice_tokens = longest,
	    .t_first_us = r->t_first_us,
	    .msgs = r->req.msgs,
	    .n_msgs = r->req.n_msgs,
	    .prompts = r->req.is_chat ? NULL : r->req.prompts,
	    .n_prompts = r->req.n_prompts,
	};
	api_obs_finish(r->a, r->obs, &f);
}

static void write_usage(struct jw *w, const struct run *r)
{
	long long n_prompt, n_cached, n_completion;
	int longest;
	run_usage(r, &n_prompt, &n_cached, &n_completion, &longest);
	jw_open(w, '{');
	jw_key(w, "prompt_tokens");
	jw_int(w, n_prompt);
	jw_key(w, "completion_tokens");
	jw_int(w, n_completion);
	jw_key(w, "total_tokens");
	jw_int(w, n_prompt + n_completion);
	jw_key(w, "prompt_tokens_details");
	jw_open(w, '{');
	jw_key(w, "cached_tokens");
	jw_int(w, n_cached);
	jw_close(w, '}');
	jw_close(w, '}');
}

static const char *finish_name(const struct gen_result *g)
{
	return g->finish == GEN_FINISH_LENGTH    ? "length"
	       : g->finish == GEN_FINISH_PARTIAL ? "partial"
	                                         : "stop";
}

static void write_choice(struct jw *w, const struct run *r, size_t i)
{
	const struct buf *t = &r->text[i];
	const char *p = t->data ? t->data : "";
	jw_open(w, '{');
	if (r->req.is_chat) {
		jw_key(w, "index");
		jw_int(w, (long long)i);
		jw_key(w, "message");
		jw_open(w, '{');
		jw_key(w, "role");
		jw_str(w, "assistant");
		jw_key(w, "content");
		jw_strn(w, p, t->len);
		jw_key(w, "refusal");
		jw_null(w);
		jw_close(w, '}');
	} else {
		jw_key(w, "text");
		jw_strn(w, p, t->len);
		jw_key(w, "index");
		jw_int(w, (long long)i);
	}
	jw_key(w, "logprobs");
	jw_null(w);
	jw_key(w, "finish_reason");
	jw_str(w, finish_name(&r->res[i]));
	jw_close(w, '}');
}

/* The members every response object and chunk starts with. */
static void write_head(struct jw *w, const struct run *r, const char *object)
{
	jw_key(w, "id");
	jw_str(w, r->id);
	jw_key(w, "object");
	jw_str(w, object);
	jw_key(w, "created");
	jw_int(w, r->created);
	jw_key(w, "model");
	jw_str(w, r->info.model);
	jw_key(w, "system_fingerprint");
	jw_null(w);
}

/* The whole answer, written straight into the (unused) stream buffer. */
static void reply_complete(struct run *r)
{
	struct jw w;
	jw_init(&w, &r->out);
	jw_open(&w, '{');
	write_head(&w, r, r->req.is_chat ? "chat.completion" : "text_completion");
	jw_key(&w, "choices");
	jw_open(&w, '[');
	for (size_t i = 0; i < r->n_choices; i++)
		write_choice(&w, r, i);
	jw_close(&w, ']');
	jw_key(&w, "usage");
	write_usage(&w, r);
	api_write_metadata(&w, &r->info);
	jw_close(&w, '}');
	if (w.err) {
		struct brg_error e;
		brg_error_clear(&e);
		brg_fail(&e, w.err == BRG_E_BAD_REQUEST ? BRG_E_INTERNAL : w.err,
		         w.err == BRG_E_BAD_REQUEST
		             ? "the model produced text that cannot be encoded"
		             : "cannot encode the response");
		api_reply_error(r->x, &e);
		return;
	}
	api_reply_body(r->x, 200, r->out.data, r->out.len);
}

/* echo: the legacy completions endpoint returns prompt + completion. */
static enum brg_err prepend_prompts(struct run *r)
{
	for (size_t i = 0; r->req.echo && i < r->n_choices; i++) {
		const char *p = r->req.prompts[i / r->req.n];
		struct buf b;
		buf_init(&b, r->text[i].max + strlen(p));
		if (buf_append(&b, p, strlen(p)) ||
		    buf_append(&b, r->text[i].data ? r->text[i].data : "", r->text[i].len)) {
			buf_fini(&b);
			return BRG_E_NOMEM;
		}
		buf_fini(&r->text[i]);
		r->text[i] = b;
	}
	return BRG_OK;
}

/* Waits for every choice; replies.  The run is freed by the caller. */
static void run_blocking(struct run *r)
{
	struct brg_error e;
	brg_error_clear(&e);
	while (!run_all_done(r)) {
		long long left = r->deadline_ms - brg_now_ms();
		enum http_wait_result w =
		    http_wait(r->x, gen_stream_fd(r->s), left > 0 ? (int)left : 0);
		if (w == HTTP_WAIT_GONE) {
			log_info("client went away; cancelling %s", r->id);
			return; /* no reply: http/ drops the connection */
		}
		if (w == HTTP_WAIT_TIMEOUT) {
			api_fail_timeout(&e, r->a->opts.request_timeout_s, "generating");
			run_reply_error(r, &e);
			return;
		}
		if (run_collect(r)) {
			brg_fail(&e, BRG_E_TOO_LARGE,
			         "the generated text exceeds the output limit");
			run_reply_error(r, &e);
			return;
		}
	}
	run_stop(r); /* every choice is done: the turn is free before the answer goes */
	if (run_error(r, &e) || prepend_prompts(r)) {
		if (e.code == BRG_OK)
			brg_fail(&e, BRG_E_NOMEM, "out of memory");
		api_reply_error(r->x, &e);
		return;
	}
	reply_complete(r);
}

/* ---- streaming ---------------------------------------------------------- */

/* An error event, built by api_error_json. */
static void sse_event(struct run *r, json_t *v)
{
	char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	if (s && buf_appendf(&r->out, "data: %s\n\n", s))
		log_warn("stream %s: event dropped (buffer full)", r->id);
	free(s);
}

/* A chunk is written straight into the outgoing buffer: "data: " and the
 * chunk's head here, its choices by the caller, the rest by chunk_end. */
static void chunk_begin(struct run *r, struct jw *w, size_t *mark)
{
	*mark = r->out.len;
	jw_init(w, &r->out);
	w->err = buf_append(&r->out, "data: ", 6);
	jw_open(w, '{');
	write_head(w, r, r->req.is_chat ? "chat.completion.chunk" : "text_completion");
	jw_key(w, "choices");
	jw_open(w, '[');
}

/* Closes the choices, adds usage (null, or the totals when 'usage') and
 * the metadata when asked; a chunk that could not be written whole is
 * taken back out. */
static void chunk_end(struct run *r, struct jw *w, size_t mark, bool usage, bool metadata)
{
	jw_close(w, ']');
	if (usage) {
		jw_key(w, "usage");
		write_usage(w, r);
	} else if (r->req.include_usage) {
		jw_key(w, "usage");
		jw_null(w);
	}
	if (metadata) /* the last chunk of a choice says how the answer was made */
		api_write_metadata(w, &r->info);
	jw_close(w, '}');
	if (!w->err)
		w->err = buf_append(&r->out, "\n\n", 2);
	if (w->err) {
		buf_truncate(&r->out, mark);
		log_warn("stream %s: event dropped (%s)", r->id, brg_err_code(w->err));
	}
}

/* One choice's chunk: text (may be NULL) and/or its finish_reason. */
static void sse_choice(struct run *r, size_t i, const char *text, size_t len, const char *role,
                       const char *finish)
{
	struct jw w;
	size_t mark;
	chunk_begin(r, &w, &mark);
	jw_open(&w, '{');
	jw_key(&w, "index");
	jw_int(&w, (long long)i);
	if (r->req.is_chat) {
		jw_key(&w, "delta");
		jw_open(&w, '{');
		if (role) {
			jw_key(&w, "role");
			jw_str(&w, role);
		}
		if (text) {
			jw_key(&w, "content");
			jw_strn(&w, text, len);
		}
		jw_close(&w, '}');
	} else {
		jw_key(&w, "text");
		jw_strn(&w, text ? text : "", text ? len : 0);
	}
	jw_key(&w, "logprobs");
	jw_null(&w);
	jw_key(&w, "finish_reason");
	jw_str(&w, finish);
	jw_close(&w, '}');
	chunk_end(r, &w, mark, false, finish != NULL);
}

static void sse_end(struct run *r, const struct brg_error *e)
{
	r->has_sent_end = true;
	run_stop(r);
	if (e) {
		/* No [DONE] after an error: a client must never take a broken
		 * answer for a complete one. */
		sse_event(r, api_error_json(e));
		return;
	}
	if (r->req.include_usage) {
		struct jw w;
		size_t mark;
		chunk_begin(r, &w, &mark);
		chunk_end(r, &w, mark, true, false);
	}
	if (buf_append(&r->out, "data: [DONE]\n\n", 14))
		log_warn("stream %s: [DONE] dropped", r->id);
}

/* Turns the collected text and finishes into events. */
static void sse_emit(struct run *r)
{
	struct brg_error e;
	brg_error_clear(&e);
	if (r->notes.len) {
		if (buf_append(&r->out, r->notes.data, r->notes.len))
			log_warn("stream %s: step events dropped (buffer full)", r->id);
		buf_reset(&r->notes);
	}
	for (size_t i = 0; i < r->n_choices; i++) {
		struct buf *t = &r->text[i];
		if (t->len)
			sse_choice(r, i, t->data, t->len, NULL, NULL);
		buf_reset(t);
		enum gen_finish f = r->res[i].finish;
		if (r->is_done[i] && !r->is_finish_sent[i] &&
		    (f == GEN_FINISH_STOP || f == GEN_FINISH_LENGTH || f == GEN_FINISH_PARTIAL)) {
			sse_choice(r, i, NULL, 0, NULL, finish_name(&r->res[i]));
			r->is_finish_sent[i] = true;
		}
	}
	if (run_all_done(r))
		sse_end(r, run_error(r, &e) ? &e : NULL);
}

/* Collects newly arrived text and turns it into events. */
static void sse_progress(struct run *r)
{
	if (run_collect(r)) {
		struct brg_error e;
		brg_error_clear(&e);
		brg_fail(&e, BRG_E_TOO_LARGE, "the generated text exceeds the output limit");
		gen_stream_cancel(r->s);
		sse_end(r, &e);
		return;
	}
	sse_emit(r);
}

static ssize_t sse_pull(void *ud, char *dst, size_t max)
{
	struct run *r = ud;
	for (;;) {
		if (r->out.len) {
			size_t n = r->out.len < max ? r->out.len : max;
			memcpy(dst, r->out.data, n);
			buf_consume(&r->out, n);
			return (ssize_t)n;
		}
		if (r->has_sent_end)
			return 0;
		long long left = r->deadline_ms - brg_now_ms();
		enum http_wait_result w =
		    http_wait(r->x, gen_stream_fd(r->s), left > 0 ? (int)left : 0);
		if (w == HTTP_WAIT_GONE) {
			log_info("client went away; cancelling %s", r->id);
			return -1;
		}
		if (w == HTTP_WAIT_TIMEOUT) {
			/* An error event and no [DONE]: the answer is cut short. */
			struct brg_error e;
			brg_error_clear(&e);
			api_fail_timeout(&e, r->a->opts.request_timeout_s, "generating");
			gen_stream_cancel(r->s);
			sse_end(r, &e);
			continue;
		}
		sse_progress(r);
	}
}

static void sse_free(void *ud)
{
	run_free(ud);
}

static bool has_text(const struct run *r)
{
	if (r->notes.len) /* a step event: the stream has begun */
		return true;
	for (size_t i = 0; i < r->n_choices; i++)
		if (r->text[i].len)
			return true;
	return false;
}

/*
 * Holds the response until the first text or the end, so that a failure
 * before any byte (a prompt too long, an upstream that refuses) is a real
 * HTTP status rather than an event inside a 200 stream.  Returns true when
 * the stream took ownership of the run.
 */
static bool run_streaming(struct run *r)
{
	struct brg_error e;
	brg_error_clear(&e);
	while (!has_text(r) && !run_all_done(r)) {
		long long left = r->deadline_ms - brg_now_ms();
		enum http_wait_result w =
		    http_wait(r->x, gen_stream_fd(r->s), left > 0 ? (int)left : 0);
		if (w == HTTP_WAIT_GONE)
			return false; /* no reply: http/ drops the connection */
		if (w == HTTP_WAIT_TIMEOUT) {
			api_fail_timeout(&e, r->a->opts.request_timeout_s, "generating");
			run_reply_error(r, &e);
			return false;
		}
		if (run_collect(r)) {
			brg_fail(&e, BRG_E_TOO_LARGE,
			         "the generated text exceeds the output limit");
			run_reply_error(r, &e);
			return false;
		}
	}
	if (!has_text(r) && run_error(r, &e)) {
		run_reply_error(r, &e);
		return false;
	}
	for (size_t i = 0; r->req.is_chat && i < r->n_choices; i++)
		sse_choice(r, i, "", 0, "assistant", NULL);
	sse_emit(r);
	r->obs = obs_request_detach(); /* the stream ends the request */
	http_reply_stream(r->x, 200, "text/event-stream", sse_pull, sse_free, r);
	return true;
}

/*
 * Plans the request once (route/plan.h): with auto-routing a second plan
 * could name another model than the one admission counted.  Several
 * prompts share the response's one "model", so they get no auto-route
 * fallback, which could answer each prompt from another model.
 */
static enum brg_err run_plan(struct run *r, struct brg_error *err)
{
	struct plan_request q = {
	    .mode = r->req.mode,
	    .model = r->req.model,
	    .task_type = r->req.task_type,
	    .preset = r->req.preset,
	};
	enum brg_err rc = route_plan(r->a->router, &q, &r->plan, err);
	if (rc == BRG_OK && !r->req.is_chat && r->req.n_prompts > 1)
		r->plan.n_alternates = 0;
	return rc;
}

static void handle(struct api *a, struct http_exchange *x, bool is_chat)
{
	struct brg_error e;
	brg_error_clear(&e);
	struct run *r = run_new(a, x);
	if (!r) {
		brg_fail(&e, BRG_E_NOMEM, "out of memory");
		api_reply_error(x, &e);
		return;
	}
	size_t len;
	const char *body = http_body(x, &len);
	enum brg_err rc = is_chat ? api_parse_chat(body, len, &r->req, &e)
	                          : api_parse_completion(body, len, &r->req, &e);
	make_id(r->id, sizeof r->id, is_chat ? "chatcmpl-" : "cmpl-");
	if (rc == BRG_OK)
		rc = run_plan(r, &e);
	/* Wait for a turn (docs/admission.md): the deadline counts from here. */
	if (rc == BRG_OK)
		rc = api_admit_generation(a, x, &r->req, &r->plan, r->deadline_ms, &r->ticket, &e);
	if (rc == BRG_OK)
		rc = run_start(r, &e);
	if (rc) {
		if (rc != BRG_E_CANCELLED) /* else the client left the queue: nobody to answer */
			run_reply_error(r, &e);
		run_free(r);
		return;
	}
	if (r->req.is_stream && run_streaming(r))
		return; /* the stream frees the run */
	if (!r->req.is_stream)
		run_blocking(r);
	run_free(r);
}

void api_chat_completions(void *ud, struct http_exchange *x)
{
	handle(ud, x, true);
}

void api_completions(void *ud, struct http_exchange *x)
{
	handle(ud, x, false);
}
