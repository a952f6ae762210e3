/*
 * reqlog.c — the one JSON line written to stderr when an inference request
 * ends (docs/observability.md):
 *
 *   {"ts":"2025-01-02T03:04:05.678Z","level":"info","msg":"request",
 *    "request_id":"chatcmpl-…","method":"POST","path":"/v1/chat/completions",
 *    "model":"phi-4","mode":"single","status":200,"prompt_tokens":12,
 *    "completion_tokens":40,"duration_ms":812.4,"ttft_ms":95.1,"trace_id":null}
 *
 * It sits beside core/log's human lines on the same stream and obeys the
 * same INFERENCE_LOG_LEVEL: "info", or "warn" for a 5xx.  What the client
 * sent is never in it unless INFERENCE_LOG_PROMPTS=true, which adds the
 * messages or prompts (at most PROMPTS_MAX bytes of them).
 */
#include "obs/obs_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"

#define LINE_MAX_BYTES ((size_t)1 << 20)
#define PROMPTS_MAX    ((size_t)64 << 10)

static pthread_once_t prompts_once = PTHREAD_ONCE_INIT;
static bool is_logging_prompts;

static void read_env(void)
{
	const char *v = getenv("INFERENCE_LOG_PROMPTS");
	is_logging_prompts = v && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
	                           strcasecmp(v, "yes") == 0 || strcasecmp(v, "on") == 0);
}

bool obs_log_prompts(void)
{
	pthread_once(&prompts_once, read_env);
	return is_logging_prompts;
}

/* The length of the valid UTF-8 character at s (n bytes left), or 0 when
 * the byte there starts none (a stray continuation, an overlong form, a
 * surrogate, past U+10FFFF, cut short): JSON text must be UTF-8, and a
 * receiver may refuse a whole body for one stray byte. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len = c < 0x80                ? 1
	             : c >= 0xC2 && c < 0xE0 ? 2
	             : c >= 0xE0 && c < 0xF0 ? 3
	             : c >= 0xF0 && c < 0xF5 ? 4
	                                     : 0;
	if (len <= 1 || len > n)
		return len > n ? 0 : len;
	unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
	unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return len;
}

enum brg_err obs_json_str(struct buf *b, const char *s, size_t *budget, bool *is_cut)
{
	if (!s)
		return buf_append(b, "null", 4);
	size_t n = strlen(s);
	if (budget && n > *budget) {
		n = *budget;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
		*is_cut = true;
	}
	if (budget)
		*budget -= n;
	enum brg_err rc = buf_append(b, "\"", 1);
	for (size_t i = 0; i < n && !rc;) {
		unsigned char c = (unsigned char)s[i];
		size_t len = utf8_len((const unsigned char *)s + i, n - i);
		if (c == '"' || c == '\\')
			rc = buf_appendf(b, "\\%c", c);
		else if (c == '\n')
			rc = buf_append(b, "\\n", 2);
		else if (c < 0x20)
			rc = buf_appendf(b, "\\u%04x", c);
		else if (!len)
			rc = buf_append(b, "\\ufffd", 6);
		else
			rc = buf_append(b, &s[i], len);
		i += len ? len : 1;
	}
	return rc ? rc : buf_append(b, "\"", 1);
}

/* ,"messages":[{"role":…,"content":…}…] or ,"prompt":[…] */
static enum brg_err prompts(struct buf *b, const struct obs_facts *f)
{
	size_t budget = PROMPTS_MAX;
	bool is_cut = false;
	enum brg_err rc = buf_appendf(b, ",\"%s\":[", f->msgs ? "messages" : "prompt");
	for (size_t i = 0; f->msgs && i < f->n_msgs && !rc; i++) {
		rc = buf_appendf(b, "%s{\"role\":", i ? "," : "");
		if (!rc)
			rc = obs_json_str(b, f->msgs[i].role, NULL, NULL);
		if (!rc)
			rc = buf_append(b, ",\"content\":", 11);
		if (!rc)
			rc = obs_json_str(b, f->msgs[i].content, &budget, &is_cut);
		if (!rc)
			rc = buf_append(b, "}", 1);
	}
	for (size_t i = 0; !f->msgs && i < f->n_prompts && !rc; i++) {
		if (i)
			rc = buf_append(b, ",", 1);
		if (!rc)
			rc = obs_json_str(b, f->prompts[i], &budget, &is_cut);
	}
	if (!rc)
		rc = buf_append(b, "]", 1);
	if (!rc && is_cut)
		rc = buf_append(b, ",\"prompt_truncated\":true", 24);
	return rc;
}

static enum brg_err ms_or_null(struct buf *b, const char *key, double seconds)
{
	if (seconds < 0)
		return buf_appendf(b, ",\"%s\":null", key);
	return buf_appendf(b, ",\"%s\":%.3f", key, seconds * 1000);
}

static enum brg_err line(struct buf *b, const struct obs_summary *s, const struct obs_facts *f,
                         bool is_warn)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char when[32];
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	enum brg_err rc =
	    buf_appendf(b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"request\"", when,
	                ts.tv_nsec / 1000000, is_warn ? "warn" : "info");
	const char *strs[][2] = {{"request_id", s->request_id},
	                         {"method", s->method},
	                         {"path", s->path},
	                         {"model", s->model_name},
	                         {"mode", s->mode}};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0] && !rc; i++) {
		rc = buf_appendf(b, ",\"%s\":", strs[i][0]);
		if (!rc)
			rc = obs_json_str(b, strs[i][1], NULL, NULL);
	}
	if (!rc)
		rc = buf_appendf(b,
		                 ",\"status\":%d,\"prompt_tokens\":%lld,\"completion_tokens\":%lld",
		                 s->status, s->prompt_tokens, s->completion_tokens);
	if (!rc)
		rc = ms_or_null(b, "duration_ms", s->duration_s);
	if (!rc)
		rc = ms_or_null(b, "ttft_ms", s->ttft_s);
	if (!rc)
		rc = buf_append(b, ",\"trace_id\":", 12);
	if (!rc)
		rc = obs_json_str(b, s->trace_id, NULL, NULL);
	if (!rc && f && obs_log_prompts() && (f->msgs || f->prompts))
		rc = prompts(b, f);
	return rc ? rc : buf_append(b, "}\n", 2);
}

void obs_log_request(const struct obs_summary *s, const struct obs_facts *f)
{
	bool is_warn = s->status >= 500;
	if ((is_warn ? LOG_WARN : LOG_INFO) < log_get_level())
		return;
	struct buf b;
	buf_init(&b, LINE_MAX_BYTES);
	if (line(&b, s, f, is_warn) == BRG_OK)
		fputs(b.data, stderr); /* one call: stdio's lock keeps the line whole */
	else
		log_warn("request %s: its log line is too large to write", s->request_id);
	buf_fini(&b);
}
