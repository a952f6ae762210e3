/*
 * metrics.c — the metrics registry and its Prometheus text exposition
 * (format 0.0.4: https://prometheus.io/docs/instrumenting/exposition_formats/).
 * See obs.h and docs/observability.md for the list.
 *
 * Storage is fixed at compile time: one slot per declared model (plus
 * "other"), one per provider.  Names are appended under a mutex and
 * published by a release store of the count, so readers walk them without
 * a lock; every value is an atomic updated with relaxed ordering — a
 * scrape is a snapshot of independent counters, not a transaction.  A
 * histogram keeps per-bucket counts and is made cumulative when rendered,
 * its _count being the sum of the buckets read, so "+Inf" always equals
 * _count within one scrape.
 *
 * Names are "brigade_<what>".  vLLM spells its own "vllm:<what>", but
 * promtool's linter rejects colons in exported names (they are reserved
 * for recording rules), and /metrics must pass it; the suffixes follow
 * vLLM's, so a vLLM panel needs only its prefix changed.
 */
#include "obs/obs_int.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PREFIX      "brigade_"
#define MAX_BUCKETS 32

/* Upper bounds, seconds.  vLLM's (vllm/engine/metrics.py), with a few
 * finer ones below where a small local model lands. */
static const double latency_le[] = {0.005, 0.01, 0.025, 0.05,  0.1,   0.3,   0.5,   0.8,  1.0,
                                    1.5,   2.0,  2.5,   5.0,   10.0,  15.0,  20.0,  30.0, 40.0,
                                    50.0,  60.0, 120.,  240.0, 480.0, 960.0, 1920., 7680.};
static const double ttft_le[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                 0.25,  0.5,   0.75, 1.0,  2.5,  5.0,  7.5,  10.0,
                                 20.0,  40.0,  80.0, 160., 640., 2560.};
static const double tpot_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1,
                                 0.15,  0.2,    0.3,   0.4,  0.5,   0.75, 1.0,   2.5,
                                 5.0,   7.5,    10.0,  20.0, 40.0,  80.0};

struct bounds {
	const double *le;
	size_t n;
};
#define BOUNDS(a) ((struct bounds){a, sizeof a / sizeof a[0]})

struct hist {
	_Atomic uint64_t n[MAX_BUCKETS + 1]; /* per bucket, not cumulative; the last is +Inf */
	_Atomic uint64_t sum_us;
};

/* The statuses brigade's error table can produce (core/err.h), and 408. */
static const int statuses[] = {200, 400, 401, 404, 405, 408, 413, 415,
                               422, 429, 499, 500, 501, 502, 503, 504};
#define N_STATUSES (sizeof statuses / sizeof statuses[0] + 1) /* + any other */

struct model_slot {
	char name[OBS_NAME_MAX + 1];
	atomic_bool is_local;
	_Atomic uint64_t requests[OBS_N_ENDPOINTS][N_STATUSES];
	struct hist duration[OBS_N_ENDPOINTS];
	struct hist ttft, tpot, queue_wait;
	_Atomic uint64_t prompt_tokens, generation_tokens;
	atomic_int running; /* sequences started on a provider, not yet ended */
	atomic_int waiting; /* requests waiting for admission */
	atomic_int n_busy, n_slots;
	atomic_int kv_ppm; /* kv_cache_usage_perc in millionths */
	/* From obs_engine_counts: queries are prompt tokens decoded plus reused,
	 * hits the reused ones. */
	_Atomic uint64_t prefix_queries, prefix_hits, kv_copies, helper_prompts, helper_tokens;
	atomic_bool is_loaded, has_loaded;
	_Atomic uint64_t load_us;
};

struct provider_slot {
	char name[OBS_NAME_MAX + 1];
	atomic_bool is_up;
	_Atomic uint64_t fallbacks_to[OBS_MAX_PROVIDERS];
};

static struct model_slot models[OBS_MAX_MODELS + 1]; /* [OBS_MODEL_OTHER]: "other" */
static atomic_int n_models;
static struct provider_slot providers[OBS_MAX_PROVIDERS];
static atomic_int n_providers;
static pthread_mutex_t names_mu = PTHREAD_MUTEX_INITIALIZER; /* writers of names only */

static const char *const endpoint_paths[OBS_N_ENDPOINTS] = {"/v1/chat/completions",
                                                            "/v1/completions", "/v1/embeddings"};

const char *obs_endpoint_path(enum obs_endpoint ep)
{
	return endpoint_paths[ep];
}

/* ---- names -------------------------------------------------------------- */

int obs_model_id(const char *id)
{
	int n = atomic_load_explicit(&n_models, memory_order_acquire);
	for (int i = 0; id && i < n; i++)
		if (strcmp(models[i].name, id) == 0)
			return i;
	return OBS_MODEL_OTHER;
}

void obs_model_declare(const char *id, bool is_local)
{
	if (!id || strlen(id) > OBS_NAME_MAX)
		return;
	pthread_mutex_lock(&names_mu);
	int i = obs_model_id(id);
	int n = atomic_load_explicit(&n_models, memory_order_relaxed);
	/* "other" is taken: a model of that name shares its series. */
	if (i == OBS_MODEL_OTHER && n < OBS_MAX_MODELS && strcmp(id, "other") != 0) {
		strcpy(models[n].name, id);
		atomic_store_explicit(&n_models, n + 1, memory_order_release);
		i = n;
	}
	if (is_local && i != OBS_MODEL_OTHER)
		atomic_store(&models[i].is_local, true);
	pthread_mutex_unlock(&names_mu);
}

int obs_provider_declare(const char *name, bool is_up)
{
	if (!name || strlen(name) > OBS_NAME_MAX)
		return -1;
	pthread_mutex_lock(&names_mu);
	int n = atomic_load_explicit(&n_providers, memory_order_relaxed), i = 0;
	while (i < n && strcmp(providers[i].name, name) != 0)
		i++;
	if (i == n && n < OBS_MAX_PROVIDERS) {
		strcpy(providers[n].name, name);
		atomic_store_explicit(&n_providers, n + 1, memory_order_release);
	}
	if (i < OBS_MAX_PROVIDERS)
		atomic_store(&providers[i].is_up, is_up);
	pthread_mutex_unlock(&names_mu);
	return i < OBS_MAX_PROVIDERS ? i : -1;
}

/* ---- events ------------------------------------------------------------- */

static void add(_Atomic uint64_t *v, uint64_t n)
{
	atomic_fetch_add_explicit(v, n, memory_order_relaxed);
}

void obs_model_loaded(const char *id, double seconds)
{
	obs_model_declare(id, true);
	int i = obs_model_id(id);
	if (i == OBS_MODEL_OTHER)
		return;
	atomic_store(&models[i].load_us, (uint64_t)(seconds * 1e6 + 0.5));
	atomic_store(&models[i].has_loaded, true);
	atomic_store(&models[i].is_loaded, true);
}

void obs_model_unloaded(const char *id)
{
	int i = obs_model_id(id);
	if (i != OBS_MODEL_OTHER)
		atomic_store(&models[i].is_loaded, false);
}

void obs_model_slots(const char *id, int n_busy, int n_slots, double kv_usage)
{
	int i = obs_model_id(id);
	if (i == OBS_MODEL_OTHER)
		return;
	atomic_store_explicit(&models[i].n_busy, n_busy, memory_order_relaxed);
	atomic_store_explicit(&models[i].n_slots, n_slots, memory_order_relaxed);
	int ppm = kv_usage > 0 ? (int)(kv_usage * 1e6 + 0.5) : 0;
	atomic_store_explicit(&models[i].kv_ppm, ppm > 1000000 ? 1000000 : ppm,
	                      memory_order_relaxed);
}

void obs_model_engine(const char *id, const struct obs_engine_counts *c)
{
	int i = obs_model_id(id);
	if (i == OBS_MODEL_OTHER)
		return;
	struct model_slot *m = &models[i];
	atomic_store_explicit(&m->prefix_queries, c->prompt_decoded + c->prompt_reused,
	                      memory_order_relaxed);
	atomic_store_explicit(&m->prefix_hits, c->prompt_reused, memory_order_relaxed);
	atomic_store_explicit(&m->kv_copies, c->kv_copies, memory_order_relaxed);
	atomic_store_explicit(&m->helper_prompts, c->helper_prompts, memory_order_relaxed);
	atomic_store_explicit(&m->helper_tokens, c->helper_tokens, memory_order_relaxed);
}

void obs_running_add(int model, int delta)
{
	if (model >= 0 && model <= OBS_MODEL_OTHER)
		atomic_fetch_add_explicit(&models[model].running, delta, memory_order_relaxed);
}

void obs_waiting_add(int model, int delta)
{
	if (model >= 0 && model <= OBS_MODEL_OTHER)
		atomic_fetch_add_explicit(&models[model].waiting, delta, memory_order_relaxed);
}

void obs_provider_up(int provider, bool is_up)
{
	if (provider >= 0 && provider < OBS_MAX_PROVIDERS)
		atomic_store_explicit(&providers[provider].is_up, is_up, memory_order_relaxed);
}

void obs_fallback(int from, int to)
{
	if (from >= 0 && from < OBS_MAX_PROVIDERS && to >= 0 && to < OBS_MAX_PROVIDERS)
		add(&providers[from].fallbacks_to[to], 1);
}

static void observe(struct hist *h, struct bounds b, double v)
{
	size_t i = 0;
	while (i < b.n && v > b.le[i])
		i++;
	add(&h->n[i], 1);
	add(&h->sum_us, v > 0 ? (uint64_t)(v * 1e6 + 0.5) : 0);
}

static size_t status_index(int status)
{
	size_t i = 0;
	while (i < N_STATUSES - 1 && statuses[i] != status)
		i++;
	return i;
}

void obs_record(const struct obs_summary *s)
{
	struct model_slot *m = &models[s->model];
	add(&m->requests[s->ep][status_index(s->status)], 1);
	observe(&m->duration[s->ep], BOUNDS(latency_le), s->duration_s);
	if (s->ttft_s >= 0)
		observe(&m->ttft, BOUNDS(ttft_le), s->ttft_s);
	if (s->tpot_s >= 0)
		observe(&m->tpot, BOUNDS(tpot_le), s->tpot_s);
	if (s->queue_wait_s >= 0)
		observe(&m->queue_wait, BOUNDS(latency_le), s->queue_wait_s);
	if (s->prompt_tokens > 0)
		add(&m->prompt_tokens, (uint64_t)s->prompt_tokens);
	if (s->completion_tokens > 0)
		add(&m->generation_tokens, (uint64_t)s->completion_tokens);
}

void obs_reset(void)
{
	pthread_mutex_lock(&names_mu);
	memset(models, 0, sizeof models);
	memset(providers, 0, sizeof providers);
	atomic_store(&n_models, 0);
	atomic_store(&n_providers, 0);
	pthread_mutex_unlock(&names_mu);
}

/* ---- exposition --------------------------------------------------------- */

struct label {
	const char *key;
	const char *value;
};

/* A label value: backslash, double quote and line feed are escaped. */
static enum brg_err escaped(struct buf *b, const char *s)
{
	enum brg_err rc = BRG_OK;
	for (; *s && !rc; s++) {
		const char *e = *s == '\\'   ? "\\\\"
		                : *s == '"'  ? "\\\""
		                : *s == '\n' ? "\\n"
		                             : NULL;
		rc = e ? buf_append(b, e, 2) : buf_append(b, s, 1);
	}
	return rc;
}

/* One sample: name{labels} value */
static enum brg_err sample(struct buf *b, const char *name, const char *suffix,
                           const struct label *l, size_t n, const char *value)
{
	enum brg_err rc = buf_appendf(b, PREFIX "%s%s", name, suffix);
	for (size_t i = 0; i < n && !rc; i++) {
		rc = buf_appendf(b, "%s%s=\"", i ? "," : "{", l[i].key);
		if (!rc)
			rc = escaped(b, l[i].value);
		if (!rc)
			rc = buf_append(b, i + 1 < n ? "\"" : "\"}", i + 1 < n ? 1 : 2);
	}
	return rc ? rc : buf_appendf(b, " %s\n", value);
}

static enum brg_err sample_u64(struct buf *b, const char *name, const struct label *l, size_t n,
                               uint64_t v)
{
	char s[32];
	snprintf(s, sizeof s, "%llu", (unsigned long long)v);
	return sample(b, name, "", l, n, s);
}

static enum brg_err sample_f64(struct buf *b, const char *name, const struct label *l, size_t n,
                               double v)
{
	char s[40];
	snprintf(s, sizeof s, "%.6f", v);
	return sample(b, name, "", l, n, s);
}

static enum brg_err family(struct buf *b, const char *name, const char *type, const char *help)
{
	return buf_appendf(b, "# HELP " PREFIX "%s %s\n# TYPE " PREFIX "%s %s\n", name, help, name,
	                   type);
}

/* A histogram's series for one label set; nothing when it is empty. */
static enum brg_err histogram(struct buf *b, const char *name, struct bounds bd,
                              const struct hist *h, const struct label *l, size_t n)
{
	uint64_t c[MAX_BUCKETS + 1], total = 0;
	for (size_t i = 0; i <= bd.n; i++)
		total += c[i] = atomic_load_explicit(&h->n[i], memory_order_relaxed);
	if (total == 0)
		return BRG_OK;
	struct label ll[4];
	assert(n < sizeof ll / sizeof ll[0]);
	memcpy(ll, l, n * sizeof *l);
	char le[32], v[32], sum[40];
	enum brg_err rc = BRG_OK;
	uint64_t cum = 0;
	for (size_t i = 0; i <= bd.n && !rc; i++) {
		cum += c[i];
		if (i < bd.n)
			snprintf(le, sizeof le, "%g", bd.le[i]);
		ll[n] = (struct label){"le", i < bd.n ? le : "+Inf"};
		snprintf(v, sizeof v, "%llu", (unsigned long long)cum);
		rc = sample(b, name, "_bucket", ll, n + 1, v);
	}
	snprintf(sum, sizeof sum, "%.6f", (double)atomic_load(&h->sum_us) / 1e6);
	snprintf(v, sizeof v, "%llu", (unsigned long long)total);
	if (!rc)
		rc = sample(b, name, "_sum", l, n, sum);
	return rc ? rc : sample(b, name, "_count", l, n, v);
}

static const char *model_name(int i)
{
	return i == OBS_MODEL_OTHER ? "other" : models[i].name;
}

/* The k-th model of a walk over the n declared ones and then "other"
 * (k = 0..n). */
static int model_at(int k, int n)
{
	return k < n ? k : OBS_MODEL_OTHER;
}

static enum brg_err render_requests(struct buf *b, int n)
{
	enum brg_err rc = family(b, "requests_total", "counter",
	                         "Inference requests by endpoint, model and HTTP status.");
	for (int k = 0; k <= n; k++)
		for (int ep = 0; ep < OBS_N_ENDPOINTS; ep++)
			for (size_t s = 0; s < N_STATUSES && !rc; s++) {
				int i = model_at(k, n);
				uint64_t v = atomic_load_explicit(&models[i].requests[ep][s],
				                                  memory_order_relaxed);
				char code[8] = "other";
				if (s < N_STATUSES - 1)
					snprintf(code, sizeof code, "%d", statuses[s]);
				struct label l[] = {{"endpoint", endpoint_paths[ep]},
				                    {"model", model_name(i)},
				                    {"status", code}};
				if (v)
					rc = sample_u64(b, "requests_total", l, 3, v);
			}
	if (!rc)
		rc = family(b, "request_duration_seconds", "histogram",
		            "Time from a request's arrival to the end of its reply.");
	for (int k = 0; k <= n; k++)
		for (int ep = 0; ep < OBS_N_ENDPOINTS && !rc; ep++) {
			int i = model_at(k, n);
			struct label l[] = {{"endpoint", endpoint_paths[ep]},
			                    {"model", model_name(i)}};
			rc = histogram(b, "request_duration_seconds", BOUNDS(latency_le),
			               &models[i].duration[ep], l, 2);
		}
	return rc;
}

/* The per-model histograms: which one, its name, help and bounds. */
static const struct {
	const char *name;
	const char *help;
	size_t offset;
	int bounds; /* 0 latency, 1 ttft, 2 tpot */
} model_hists[] = {
    {"time_to_first_token_seconds", "Time from arrival to the first generated text.",
     offsetof(struct model_slot, ttft), 1},
    {"time_per_output_token_seconds",
     "Mean time between generated tokens after the first, one sample per request.",
     offsetof(struct model_slot, tpot), 2},
    {"queue_wait_seconds", "Time a request waited for admission before it ran.",
     offsetof(struct model_slot, queue_wait), 0},
};

static enum brg_err render_model_hists(struct buf *b, int n)
{
	const struct bounds bds[] = {BOUNDS(latency_le), BOUNDS(ttft_le), BOUNDS(tpot_le)};
	enum brg_err rc = BRG_OK;
	for (size_t k = 0; k < sizeof model_hists / sizeof model_hists[0] && !rc; k++) {
		rc = family(b, model_hists[k].name, "histogram", model_hists[k].help);
		for (int j = 0; j <= n && !rc; j++) {
			int i = model_at(j, n);
			const struct hist *h =
			    (const struct hist *)((const char *)&models[i] + model_hists[k].offset);
			struct label l[] = {{"model", model_name(i)}};
			rc = histogram(b, model_hists[k].name, bds[model_hists[k].bounds], h, l, 1);
		}
	}
	return rc;
}

/*
 * Running and waiting.  A local model's running sequences are its busy
 * slots; the sequences started on it beyond those wait (in the engine's
 * queue, or for the model to load).  A remote model's running ones are
 * those in flight to it.  Admission's queue adds to waiting.
 */
static long long running_of(const struct model_slot *m)
{
	if (atomic_load(&m->is_local))
		return atomic_load_explicit(&m->n_busy, memory_order_relaxed);
	return atomic_load_explicit(&m->running, memory_order_relaxed);
}

static long long waiting_of(const struct model_slot *m)
{
	long long v = atomic_load_explicit(&m->waiting, memory_order_relaxed);
	if (atomic_load(&m->is_local)) {
		long long started = atomic_load_explicit(&m->running, memory_order_relaxed);
		long long busy = running_of(m);
		v += started > busy ? started - busy : 0;
	}
	return v;
}

static long long prompt_tokens_of(const struct model_slot *m)
{
	return (long long)atomic_load_explicit(&m->prompt_tokens, memory_order_relaxed);
}

static long long generation_tokens_of(const struct model_slot *m)
{
	return (long long)atomic_load_explicit(&m->generation_tokens, memory_order_relaxed);
}

/* The families with one sample per model: every declared one, and
 * "other" when it is not 0. */
static const struct {
	const char *name;
	const char *type;
	const char *help;
	long long (*value)(const struct model_slot *m);
} per_model[] = {
    {"prompt_tokens_total", "counter", "Prompt tokens of ended requests, as their usage said.",
     prompt_tokens_of},
    {"generation_tokens_total", "counter",
     "Generated tokens of ended requests, as their usage said.", generation_tokens_of},
    {"num_requests_running", "gauge",
     "Sequences running: in a local model's slots, or in flight to a remote provider.", running_of},
    {"num_requests_waiting", "gauge",
     "Sequences and requests waiting: for admission, for a local model's slot or load.",
     waiting_of},
};

static enum brg_err render_per_model(struct buf *b, int n)
{
	enum brg_err rc = BRG_OK;
	for (size_t f = 0; f < sizeof per_model / sizeof per_model[0] && !rc; f++) {
		rc = family(b, per_model[f].name, per_model[f].type, per_model[f].help);
		for (int k = 0; k <= n && !rc; k++) {
			int i = model_at(k, n);
			long long v = per_model[f].value(&models[i]);
			struct label l[] = {{"model", model_name(i)}};
			if (v > 0 || i != OBS_MODEL_OTHER)
				rc =
				    sample_u64(b, per_model[f].name, l, 1, v > 0 ? (uint64_t)v : 0);
		}
	}
	return rc;
}

static enum brg_err render_local(struct buf *b, int n)
{
	enum brg_err rc =
	    family(b, "kv_cache_usage_perc", "gauge",
	           "Share (0-1) of a loaded local model's KV cache cells that running sequences "
	           "fill.");
	for (int i = 0; i < n && !rc; i++) {
		const struct model_slot *m = &models[i];
		struct label l[] = {{"model", m->name}};
		if (atomic_load(&m->is_local) && atomic_load(&m->is_loaded))
			rc = sample_f64(b, "kv_cache_usage_perc", l, 1,
			                (double)atomic_load(&m->kv_ppm) / 1e6);
	}
	if (!rc)
		rc = family(b, "model_loaded", "gauge", "1 while a local model is loaded, else 0.");
	for (int i = 0; i < n && !rc; i++) {
		struct label l[] = {{"model", models[i].name}};
		if (atomic_load(&models[i].is_local))
			rc = sample_u64(b, "model_loaded", l, 1, atomic_load(&models[i].is_loaded));
	}
	if (!rc)
		rc = family(b, "model_load_seconds", "gauge",
		            "How long a local model's last load took.");
	for (int i = 0; i < n && !rc; i++) {
		struct label l[] = {{"model", models[i].name}};
		if (atomic_load(&models[i].has_loaded))
			rc = sample_f64(b, "model_load_seconds", l, 1,
			                (double)atomic_load(&models[i].load_us) / 1e6);
	}
	return rc;
}

/* One counter family over the local models: the field at 'offset' of
 * each model_slot. */
static enum brg_err engine_family(struct buf *b, int n, const char *name, const char *help,
                                  size_t offset)
{
	enum brg_err rc = family(b, name, "counter", help);
	for (int i = 0; i < n && !rc; i++) {
		const struct model_slot *m = &models[i];
		const _Atomic uint64_t *v = (const _Atomic uint64_t *)((const char *)m + offset);
		struct label l[] = {{"model", m->name}};
		if (atomic_load(&m->is_local))
			rc = sample_u64(b, name, l, 1,
			                atomic_load_explicit(v, memory_order_relaxed));
	}
	return rc;
}

/* The engines' counters: prefix caching (vLLM's names) and the helper. */
static enum brg_err render_engine(struct buf *b, int n)
{
	struct {
		const char *name, *help;
		size_t offset;
	} fs[] = {
	    {"prefix_cache_queries_total",
	     "Prompt tokens a local model looked up in its KV cache: decoded plus reused.",
	     offsetof(struct model_slot, prefix_queries)},
	    {"prefix_cache_hits_total",
	     "Prompt tokens a local model took from cached KV cells instead of decoding them.",
	     offsetof(struct model_slot, prefix_hits)},
	    {"prefix_cache_copies_total",
	     "Cached prompt prefixes copied from one slot's KV cells to another's.",
	     offsetof(struct model_slot, kv_copies)},
	    {"prefill_helper_prompts_total",
	     "Prompts a local model's prefill helper decoded while other slots streamed.",
	     offsetof(struct model_slot, helper_prompts)},
	    {"prefill_helper_tokens_total", "Prompt tokens the prefill helper decoded.",
	     offsetof(struct model_slot, helper_tokens)},
	};
	enum brg_err rc = BRG_OK;
	for (size_t k = 0; k < sizeof fs / sizeof fs[0] && !rc; k++)
		rc = engine_family(b, n, fs[k].name, fs[k].help, fs[k].offset);
	return rc;
}

static enum brg_err render_providers(struct buf *b)
{
	int n = atomic_load_explicit(&n_providers, memory_order_acquire);
	enum brg_err rc = family(b, "provider_up", "gauge",
	                         "1 when a provider's last health check passed (or it has none).");
	for (int i = 0; i < n && !rc; i++) {
		struct label l[] = {{"provider", providers[i].name}};
		rc = sample_u64(b, "provider_up", l, 1, atomic_load(&providers[i].is_up));
	}
	if (!rc)
		rc = family(b, "fallbacks_total", "counter",
		            "Times the fallback chain moved on from one provider to the next.");
	for (int i = 0; i < n && !rc; i++)
		for (int k = 0; k < n && !rc; k++) {
			uint64_t v = atomic_load_explicit(&providers[i].fallbacks_to[k],
			                                  memory_order_relaxed);
			struct label l[] = {{"from", providers[i].name}, {"to", providers[k].name}};
			if (v)
				rc = sample_u64(b, "fallbacks_total", l, 2, v);
		}
	return rc;
}

/* The span exporter's counters (trace.h), while tracing is on. */
static enum brg_err render_traces(struct buf *b)
{
	if (!trace_is_enabled())
		return BRG_OK;
	struct trace_export_stats st;
	trace_export_get_stats(&st);
	enum brg_err rc =
	    family(b, "trace_spans_exported_total", "counter", "Spans an OTLP receiver accepted.");
	if (!rc)
		rc = sample_u64(b, "trace_spans_exported_total", NULL, 0, st.n_exported);
	if (!rc)
		rc = family(b, "trace_spans_dropped_total", "counter",
		            "Spans never exported: the queue was full, or their export failed.");
	struct label full[] = {{"reason", "queue_full"}}, failed[] = {{"reason", "export_failed"}};
	if (!rc)
		rc = sample_u64(b, "trace_spans_dropped_total", full, 1, st.n_dropped_full);
	return rc ? rc : sample_u64(b, "trace_spans_dropped_total", failed, 1, st.n_dropped_error);
}

enum brg_err obs_render(struct buf *out)
{
	int n = atomic_load_explicit(&n_models, memory_order_acquire);
	enum brg_err rc = render_requests(out, n);
	if (!rc)
		rc = render_model_hists(out, n);
	if (!rc)
		rc = render_per_model(out, n);
	if (!rc)
		rc = render_local(out, n);
	if (!rc)
		rc = render_engine(out, n);
	if (!rc)
		rc = render_providers(out);
	return rc ? rc : render_traces(out);
}
