/*
 * main.c — the brigade command: wiring and CLI only.
 *
 *   brigade serve   [--config FILE] [--host H] [--port N]   run the server
 *   brigade models  [--config FILE]                         list configured models
 *   brigade verify  [--config FILE]                         check config and model files
 *
 * Exit status: 0 success, 1 runtime failure, 2 bad configuration or usage.
 *
 * SIGTERM or SIGINT stops the server gracefully (docs/admission.md): new
 * connections are refused, running and queued requests are served for up
 * to INFERENCE_SHUTDOWN_GRACE seconds (a second signal cuts that short),
 * then whatever remains is cancelled, and the exit status is 0.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admit/admit.h"
#include "api/api.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/curl_lazy.h"
#include "core/log.h"
#include "engine/engine.h"
#include "http/http.h"
#include "http/keys.h"
#include "obs/trace.h"
#include "orchestrate/orchestrate.h"
#include "provider/fallback.h"
#include "provider/local.h"
#include "provider/remote.h"
#include "route/plan.h"
#include "route/route.h"

#define BRIGADE_VERSION "0.1.0"

extern char **environ;

static const char usage[] =
    "brigade " BRIGADE_VERSION " — OpenAI-compatible LLM inference server\n"
    "\n"
    "Usage:\n"
    "  brigade serve  [--config FILE] [--providers FILE] [--host HOST] [--port PORT]\n"
    "  brigade models [--config FILE]   list configured models and their files\n"
    "  brigade verify [--config FILE]   check the configuration and model files\n"
    "  brigade --help | --version\n"
    "\n"
    "Options:\n"
    "  --config FILE  models/server configuration (default: config/models.yaml if present)\n"
    "  --providers FILE  remote backends, fallback chain, health checks\n"
    "                 (default: config/providers.yaml if present)\n"
    "  --host HOST    address to listen on (default 127.0.0.1; INFERENCE_HOST)\n"
    "  --port PORT    port to listen on, 0 for any free port (default 8085; INFERENCE_PORT)\n"
    "\n"
    "Environment (override the file): INFERENCE_HOST, INFERENCE_PORT, INFERENCE_MODELS_DIR,\n"
    "  INFERENCE_PRELOAD_MODELS, INFERENCE_LOG_LEVEL, INFERENCE_GPU_LAYERS,\n"
    "  INFERENCE_REQUEST_TIMEOUT, INFERENCE_API_KEY, INFERENCE_API_KEYS_FILE,\n"
    "  INFERENCE_MAX_BODY_BYTES, INFERENCE_MEMORY_BUDGET_MB, INFERENCE_MODEL_TTL;\n"
    "  admission: INFERENCE_MAX_CONCURRENT_REQUESTS, INFERENCE_MAX_CONCURRENT_PER_MODEL,\n"
    "  INFERENCE_QUEUE_SIZE, INFERENCE_QUEUE_STRATEGY, INFERENCE_REJECT_WHEN_FULL,\n"
    "  INFERENCE_PRIORITY_ENABLED, INFERENCE_PRIORITY_LEVELS, INFERENCE_DEFAULT_PRIORITY,\n"
    "  INFERENCE_SHUTDOWN_GRACE; INFERENCE_LOG_PROMPTS=true puts prompts in the\n"
    "  request log (off by default);\n"
    "  model \"auto\": INFERENCE_AUTO_ROUTE_ENABLED, INFERENCE_AUTO_ROUTE_STRATEGY\n"
    "  (least_busy | round_robin | capability_match), INFERENCE_AUTO_ROUTE_FALLBACK;\n"
    "  remote backends: INFERENCE_PROVIDER, OPENAI_API_KEY, OPENAI_API_BASE,\n"
    "  OPENAI_TIMEOUT, LOCAL_INFERENCE_URL, LOCAL_MODEL_NAME, LOCAL_INFERENCE_TIMEOUT,\n"
    "  ENABLE_FALLBACK, FALLBACK_CHAIN, HEALTH_CHECK_INTERVAL, HEALTH_CHECK_TIMEOUT;\n"
    "  tracing: OTEL_EXPORTER_OTLP_ENDPOINT (OTLP/HTTP, e.g. http://localhost:4318; set:\n"
    "  tracing on), OTEL_ENABLED (false: off), OTEL_SERVICE_NAME (inference-service).\n"
    "  BRIGADE_BACKEND_DIR: folder of the ggml backend libraries, and of libllama\n"
    "  when the binary's RUNPATH has none (found next to the binary's deps/ by\n"
    "  default).\n"
    "\n"
    "Endpoints: POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings,\n"
    "  GET /v1/models, GET /v1/models/{id}, POST /v1/models/{id}/load,\n"
    "  POST /v1/models/{id}/unload,"
    " GET /health, GET /health/ready,\n"
    "  GET /v1/health/inference, GET /metrics.\n";

struct cli {
	const char *command;
	const char *config;
	const char *providers;
	const char *host;
	int port; /* -1: not given */
};

static int parse_cli(int argc, char **argv, struct cli *c)
{
	*c = (struct cli){.port = -1};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			exit(0);
		} else if (!strcmp(a, "--version")) {
			puts("brigade " BRIGADE_VERSION);
			exit(0);
		} else if ((!strcmp(a, "--config") || !strcmp(a, "--providers") ||
		            !strcmp(a, "--host") || !strcmp(a, "--port")) &&
		           i + 1 < argc) {
			const char *v = argv[++i];
			if (!strcmp(a, "--config"))
				c->config = v;
			else if (!strcmp(a, "--providers"))
				c->providers = v;
			else if (!strcmp(a, "--host"))
				c->host = v;
			else {
				char *end;
				long p = strtol(v, &end, 10);
				if (*end || p < 0 || p > 65535) {
					fprintf(stderr,
					        "brigade: --port: '%s' is not a port number\n", v);
					return 2;
				}
				c->port = (int)p;
			}
		} else if (!c->command && a[0] != '-') {
			c->command = a;
		} else {
			fprintf(stderr, "brigade: unknown or incomplete option '%s'\n\n%s", a,
			        usage);
			return 2;
		}
	}
	if (!c->command) {
		fputs(usage, stderr);
		return 2;
	}
	if (!c->config && access("config/models.yaml", R_OK) == 0)
		c->config = "config/models.yaml";
	if (!c->providers && access("config/providers.yaml", R_OK) == 0)
		c->providers = "config/providers.yaml";
	return 0;
}

static struct config *load_config(const struct cli *c)
{
	struct config *cfg = NULL;
	struct brg_error e;
	brg_error_clear(&e);
	if (config_load(c->config, environ, &cfg, &e) ||
	    config_load_providers(cfg, c->providers, environ, &e) ||
	    config_check_presets(cfg, &e)) {
		fprintf(stderr, "brigade: configuration error: %s\n", e.message);
		config_free(cfg);
		return NULL;
	}
	if (c->host) {
		free(cfg->host);
		cfg->host = strdup(c->host);
	}
	if (c->port >= 0)
		cfg->port = c->port;
	log_set_level((enum log_level)cfg->log_level);
	return cfg;
}

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

/* Every preloaded model's file must exist; others only warn. */
static int check_files(const struct config *cfg, bool is_strict)
{
	int rc = 0;
	for (size_t i = 0; i < cfg->n_models; i++) {
		const struct model_config *m = &cfg->models[i];
		if (file_exists(m->path))
			continue;
		bool is_preload = false;
		for (size_t k = 0; k < cfg->n_preload; k++)
			is_preload |= strcmp(cfg->preload[k], m->id) == 0;
		fprintf(
		    stderr,
		    "brigade: %s: model '%s' wants the GGUF file %s, which does not exist.\n"
		    "  Put a .gguf file there, or point 'file:' in %s (or INFERENCE_MODELS_DIR)\n"
		    "  at one you have.\n",
		    is_preload || is_strict ? "error" : "warning", m->id, m->path,
		    cfg->source ? cfg->source : "your config");
		if (is_preload || is_strict)
			rc = 2;
	}
	return rc;
}

/* The keys file must give at least one key before anything starts. */
static int check_keys(const struct config *cfg)
{
	if (!cfg->api_keys_file)
		return 0;
	struct http_keys *k = NULL;
	struct brg_error e;
	brg_error_clear(&e);
	if (http_keys_open(cfg->api_keys_file, &k, &e)) {
		fprintf(stderr, "brigade: error: %s\n", e.message);
		return 2;
	}
	log_info("API keys file %s: %zu keys", cfg->api_keys_file, http_keys_count(k));
	http_keys_free(k);
	return 0;
}

static int cmd_models(const struct config *cfg)
{
	printf("%-24s %-8s %-6s %-6s %s\n", "ID", "CONTEXT", "SLOTS", "FILE", "PATH");
	for (size_t i = 0; i < cfg->n_models; i++) {
		const struct model_config *m = &cfg->models[i];
		printf("%-24s %-8d %-6d %-6s %s\n", m->id, m->context_length, m->slots,
		       file_exists(m->path) ? "ok" : "absent", m->path);
	}
	return 0;
}

static const char *backend_dir(char *buf, size_t len)
{
	const char *env = getenv("BRIGADE_BACKEND_DIR");
	if (env && *env)
		return env;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	static const char *rel[] = {"/../deps/llama-bin/bins/linux-x64",
	                            "/../../deps/llama-bin/bins/linux-x64"};
	for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
		int k = snprintf(buf, len, "%s%s", exe, rel[i]);
		if (k > 0 && (size_t)k < len && access(buf, R_OK) == 0)
			return buf;
	}
	return NULL;
}

/* The next SIGINT or SIGTERM from 'sfd' (a signalfd); 0 if it fails. */
static int read_signal(int sfd)
{
	struct signalfd_siginfo si;
	for (;;) {
		ssize_t n = read(sfd, &si, sizeof si);
		if (n == (ssize_t)sizeof si)
			return (int)si.ssi_signo;
		if (n < 0 && errno == EINTR)
			continue;
		return 0;
	}
}

/*
 * Graceful shutdown (docs/admission.md): no new connections, no new
 * inference requests on open ones (503 SHUTTING_DOWN); running and queued
 * requests go on until every request in progress has been answered, the
 * grace period ends, or a second signal comes.  Then waiting requests are
 * refused; the caller's teardown cancels the running ones (and then calls
 * wait_answered).  Returns whether every request had been answered.
 */
static bool drain(struct http_server *http, struct admit *adm, int sfd, int grace_s)
{
	http_server_quiesce(http);
	admit_close(adm);
	struct admit_stats st;
	admit_get_stats(adm, &st);
	log_info("draining %d running and %d queued requests, for up to %d s "
	         "(INFERENCE_SHUTDOWN_GRACE)",
	         st.n_running, st.n_waiting, grace_s);
	struct pollfd p[2] = {{.fd = http_server_idle_fd(http), .events = POLLIN},
	                      {.fd = sfd, .events = POLLIN}};
	long long deadline = brg_now_ms() + (long long)grace_s * 1000;
	for (long long left = grace_s * 1000LL; left > 0; left = deadline - brg_now_ms()) {
		int n = poll(p, 2, (int)left);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && p[0].revents) {
			log_info("drained: every request has been answered");
			return true;
		}
		if (n > 0 && p[1].revents) {
			log_warn("signal %d again: not waiting any longer", read_signal(sfd));
			break;
		}
	}
	admit_get_stats(adm, &st);
	log_warn("shutting down with %d requests running (cancelled) and %d queued (refused)",
	         st.n_running, st.n_waiting);
	admit_refuse_waiting(adm);
	return false;
}

/* After the grace period: the refused and the cancelled get a moment to
 * have their error answers sent before the connections are closed. */
static void wait_answered(struct http_server *http)
{
	struct pollfd p = {.fd = http_server_idle_fd(http), .events = POLLIN};
	if (poll(&p, 1, 5000) == 0)
		log_warn("closing connections with requests still in progress");
}

/* Admission control from the configuration (docs/admission.md). */
static struct admit *admission_new(const struct config *cfg)
{
	struct admit_opts o = admit_default_opts();
	o.max_concurrent = cfg->max_concurrent_requests;
	o.max_per_model = cfg->max_concurrent_per_model;
	o.queue_size = cfg->queue_size;
	/* The spec has both: either one turns the priority order on. */
	o.is_priority = cfg->queue_strategy == 1 || cfg->priority_enabled;
	o.n_levels = cfg->priority_levels;
	o.default_priority = cfg->default_priority;
	o.reject_when_full = cfg->reject_when_full;
	log_info("admission: %d at once, %s queue of %d (%s), per model %s", o.max_concurrent,
	         o.is_priority ? "priority" : "fifo", o.queue_size,
	         o.reject_when_full ? "429 when full" : "waits past it",
	         o.max_per_model ? "fixed" : "local slots");
	return admit_new(&o);
}

/* Everything that answers generations, and the chain over them. */
struct backends {
	struct local_provider *local;
	struct remote_provider *remotes[16];
	size_t n_remotes;
	struct router *router;
	struct fallback *fallback;
	struct orchestrator *orch;
};

static int chain_position(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_fallback; i++)
		if (strcmp(cfg->fallback_chain[i], name) == 0)
			return (int)i;
	return -1;
}

/* What the local engine offers when a chain falls back to it. */
static const char *local_default_model(const struct config *cfg)
{
	if (cfg->n_preload)
		return cfg->preload[0];
	return cfg->n_models ? cfg->models[0].id : NULL;
}

static enum brg_err backends_start(struct backends *b, const struct config *cfg,
                                   struct brg_error *e)
{
	struct fallback_opts fo = {.is_enabled = cfg->is_fallback_enabled,
	                           .breaker_failures = cfg->breaker_failures,
	                           .breaker_cooldown_s = cfg->breaker_cooldown_s,
	                           .health_interval_s = cfg->health_interval_s,
	                           .health_timeout_s = cfg->health_timeout_s};
	b->local = local_provider_new(cfg);
	b->router = router_new();
	b->fallback = fallback_new(&fo);
	if (!b->local || !b->router || !b->fallback)
		return brg_fail(e, BRG_E_NOMEM, "out of memory");
	struct provider lp = local_provider_get(b->local);
	if (router_add(b->router, lp) ||
	    fallback_add(b->fallback, lp, chain_position(cfg, "local"), local_default_model(cfg)))
		return brg_fail(e, BRG_E_INTERNAL, "too many providers");
	for (size_t i = 0; i < cfg->n_providers && i < 16; i++) {
		const struct provider_config *pc = &cfg->providers[i];
		struct remote_provider *rp = remote_provider_new(pc);
		if (!rp)
			return brg_fail(e, BRG_E_INTERNAL, "cannot start provider %s", pc->name);
		b->remotes[b->n_remotes++] = rp;
		struct provider p = remote_provider_get(rp);
		if (router_add(b->router, p) ||
		    fallback_add(b->fallback, p, chain_position(cfg, pc->name),
		                 pc->n_models ? pc->models[0] : NULL))
			return brg_fail(e, BRG_E_INTERNAL, "too many providers");
		log_info("provider %s (%s) at %s", pc->name,
		         pc->kind == PROVIDER_OLLAMA ? "ollama" : "openai", pc->base_url);
	}
	if (cfg->primary_provider)
		router_set_default(b->router, cfg->primary_provider);
	router_set_config(b->router, cfg);
	b->orch = orchestrator_new(b->router, cfg, e);
	if (!b->orch)
		return e->code;
	return fallback_start(b->fallback, e);
}

/* Stop producers first so waiting handlers finish; the HTTP server is
 * stopped between close and free by the caller. */
static void backends_close(struct backends *b)
{
	if (b->local)
		local_provider_close(b->local);
	for (size_t i = 0; i < b->n_remotes; i++)
		remote_provider_close(b->remotes[i]);
}

static void backends_free(struct backends *b)
{
	orchestrator_free(b->orch); /* its runs end once their providers closed */
	fallback_free(b->fallback);
	for (size_t i = 0; i < b->n_remotes; i++)
		remote_provider_free(b->remotes[i]);
	local_provider_free(b->local);
	router_free(b->router);
}

/* OTLP tracing, when configured (docs/observability.md → Tracing). */
static enum brg_err tracing_start(const struct config *cfg, struct brg_error *e)
{
	if (!cfg->is_tracing)
		return BRG_OK;
	struct trace_export_opts o = trace_export_default_opts();
	o.endpoint = cfg->otel_endpoint;
	o.service_name = cfg->otel_service_name;
	return trace_export_start(&o, e);
}

static int serve(struct config *cfg)
{
	struct brg_error e;
	brg_error_clear(&e);
	char dir[PATH_MAX];
	/* Block the stop signals before any thread starts, so every thread
	 * inherits the mask and only sigwait() sees them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	/* libcurl (and the TLS, Kerberos and other libraries under it, ~3 MB
	 * resident) is loaded (dlopen) and set up only for a server that talks
	 * to remote providers or a collector. */
	bool needs_curl = cfg->n_providers > 0 || cfg->is_tracing;
	if (sfd < 0 || engine_init(backend_dir(dir, sizeof dir), &e) ||
	    (needs_curl && (curl_lazy_load(&e) || remote_global_init(&e)))) {
		fprintf(stderr, "brigade: %s\n", sfd < 0 ? strerror(errno) : e.message);
		if (sfd >= 0)
			close(sfd);
		return 1;
	}
	struct backends b = {0};
	struct http_server *http = NULL;
	struct admit *adm = admission_new(cfg);
	bool is_drained = true;
	int rc = 1;
	if (!adm) {
		brg_fail(&e, BRG_E_RESOURCE, "cannot set up admission control (out of memory)");
		goto fail;
	}
	if (tracing_start(cfg, &e))
		goto fail;
	if (backends_start(&b, cfg, &e))
		goto fail;
	struct api a = {.router = b.router,
	                .orch = b.orch,
	                .fallback = b.fallback,
	                .admit = adm,
	                .opts = {.request_timeout_s = cfg->request_timeout_s,
	                         .max_output_bytes = (size_t)16 << 20,
	                         .is_auto_route = cfg->auto_route_enabled,
	                         .auto_route_strategy =
	                             config_auto_route_strategy_names[cfg->auto_route_strategy],
	                         .is_auto_route_fallback = cfg->auto_route_fallback}};
	/* least_busy counts what admission holds for each model. */
	router_set_load(b.router, api_route_load, &a);
	if (cfg->auto_route_enabled)
		log_info("auto-routing: %s, fallback %s", a.opts.auto_route_strategy,
		         cfg->auto_route_fallback ? "on" : "off");
	struct http_opts ho = http_default_opts();
	ho.host = cfg->host;
	ho.port = cfg->port;
	ho.max_body_bytes = cfg->max_body_bytes;
	ho.api_key = cfg->api_key;
	ho.api_keys_file = cfg->api_keys_file;
	size_t n_routes;
	const struct http_route *routes = api_routes(&n_routes);
	if (http_server_start(&ho, routes, n_routes, api_on_http_error, &a, &http, &e))
		goto fail;
	/* Tests and scripts read this line to learn the port. */
	printf("brigade listening on http://%s:%d\n", cfg->host, http_server_port(http));
	fflush(stdout);
	if (local_provider_preload(b.local, &e))
		log_error("%s", e.message);
	int sig = read_signal(sfd);
	log_info("signal %d: shutting down", sig);
	is_drained = drain(http, adm, sfd, cfg->shutdown_grace_s);
	rc = 0;
fail:
	if (rc)
		fprintf(stderr, "brigade: %s\n", e.message);
	backends_close(&b); /* cancels what still runs */
	if (!is_drained)
		wait_answered(http);
	http_server_stop(http); /* every handler has left admission after this */
	backends_free(&b);
	admit_free(adm);
	trace_export_stop(); /* every span is in: send them, 2 s at most */
	if (needs_curl)
		remote_global_cleanup();
	engine_shutdown();
	close(sfd);
	return rc;
}

/* brigade verify: which presets can run with the models configured. */
static void list_presets(const struct config *cfg)
{
	size_t n_usable = 0;
	for (size_t i = 0; i < cfg->orch.n_presets; i++)
		n_usable += cfg->orch.presets[i].is_usable;
	if (!cfg->orch.n_presets)
		return;
	printf("presets: %zu of %zu usable with the models configured\n", n_usable,
	       cfg->orch.n_presets);
	for (size_t i = 0; i < cfg->orch.n_presets; i++) {
		const struct preset *p = &cfg->orch.presets[i];
		if (p->is_usable)
			printf("  %-4s %-9s ready\n", p->name, p->mode);
		else
			printf("  %-4s %-9s needs %s\n", p->name, p->mode, p->missing);
	}
}

int main(int argc, char **argv)
{
	struct cli c;
	int rc = parse_cli(argc, argv, &c);
	if (rc)
		return rc;
	if (strcmp(c.command, "serve") && strcmp(c.command, "models") &&
	    strcmp(c.command, "verify")) {
		fprintf(stderr, "brigade: unknown command '%s'\n\n%s", c.command, usage);
		return 2;
	}
	struct config *cfg = load_config(&c);
	if (!cfg)
		return 2;
	if (!strcmp(c.command, "models"))
		rc = cmd_models(cfg);
	else if (!strcmp(c.command, "verify") && (check_files(cfg, true) || check_keys(cfg)))
		rc = 2;
	else if (!strcmp(c.command, "verify")) {
		list_presets(cfg);
		printf("configuration ok\n");
	} else
		rc = check_files(cfg, false) || check_keys(cfg) ? 2 : serve(cfg);
	config_free(cfg);
	return rc;
}
