/*
 * fields.c — the typed-value layer of config/: the keys each section
 * accepts, and setting one of them from text.  Shared by the YAML reader
 * (yaml.c) and the environment reader (env.c), and by the "expected one of
 * ..." messages, so a key's rules are written once.
 *
 * The keys are tables of struct field (name, kind, range, where it is
 * stored).  Every value arrives as text, and this file decides what a valid
 * integer, string or null is: an integer is a plain, unquoted scalar of
 * decimal digits with an optional sign.
 */
#include "config/config_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

#define CFG(member)   offsetof(struct config, member)
#define MODEL(member) offsetof(struct model_config, member)

const struct field config_server_fields[] = {
    {"host", F_STR, 0, 0, CFG(host)},
    {"port", F_INT, 0, 65535, CFG(port)}, /* 0: any free port */
    {"models_dir", F_STR, 0, 0, CFG(models_dir)},
    {"log_level", F_LOG_LEVEL, 0, 0, CFG(log_level)},
    {"max_body_bytes", F_SIZE, 1024, 1073741824, CFG(max_body_bytes)},
    {"request_timeout", F_INT, 1, 86400, CFG(request_timeout_s)},
    {"api_key", F_OPT_STR, 0, 0, CFG(api_key)},
    {"api_keys_file", F_OPT_STR, 0, 0, CFG(api_keys_file)},
    {"memory_budget_mb", F_INT, 0, INT32_MAX, CFG(memory_budget_mb)}, /* 0: no budget */
    {"model_ttl", F_INT, 0, INT32_MAX, CFG(model_ttl_s)},             /* 0: never unload */
    /* admission (docs/admission.md) */
    {"max_concurrent_requests", F_INT, 1, 100000, CFG(max_concurrent_requests)},
    {"max_concurrent_per_model", F_INT, 0, 100000, CFG(max_concurrent_per_model)},
    {"queue_size", F_INT, 0, 1000000, CFG(queue_size)}, /* 0: nobody waits */
    {"queue_strategy", F_QUEUE, 0, 0, CFG(queue_strategy)},
    {"reject_when_full", F_BOOL, 0, 0, CFG(reject_when_full)},
    {"priority_enabled", F_BOOL, 0, 0, CFG(priority_enabled)},
    {"priority_levels", F_INT, 1, 3, CFG(priority_levels)},
    {"default_priority", F_INT, 1, 3, CFG(default_priority)},
    {"shutdown_grace", F_INT, 0, 86400, CFG(shutdown_grace_s)},
    /* auto-routing (docs/routing.md) */
    {"auto_route_enabled", F_BOOL, 0, 0, CFG(auto_route_enabled)},
    {"auto_route_strategy", F_ROUTE, 0, 0, CFG(auto_route_strategy)},
    {"auto_route_fallback", F_BOOL, 0, 0, CFG(auto_route_fallback)},
};
const size_t config_n_server_fields = N_OF(config_server_fields);

const struct field config_model_fields[] = {
    {"file", F_STR, 0, 0, MODEL(file)},
    {"context_length", F_INT, 16, 1048576, MODEL(context_length)},
    {"threads", F_INT, 0, 1024, MODEL(threads)},
    {"slots", F_INT, 1, 256, MODEL(slots)},
    {"gpu_layers", F_INT, -1, 100000, MODEL(gpu_layers)},
    {"roles", F_ROLES, 0, 0, MODEL(roles)},
    {"chat_template", F_OPT_STR, 0, 0, MODEL(chat_template)},
    {"batch", F_INT, 1, 65536, MODEL(batch)},
    {"max_queue", F_INT, 0, 100000, MODEL(max_queue)},
    {"pooling", F_POOLING, 0, 0, MODEL(pooling)},
    {"prefix_cache", F_BOOL, 0, 0, MODEL(prefix_cache)},
    {"prefill_helper", F_BOOL, 0, 0, MODEL(prefill_helper)},
    {"budget_system", F_INT, 0, 1048576, MODEL(budget_system)},
    {"budget_trajectory", F_INT, 0, 1048576, MODEL(budget_trajectory)},
    {"budget_handoff", F_INT, 0, 1048576, MODEL(budget_handoff)},
    {"budget_user_query", F_INT, 0, 1048576, MODEL(budget_user_query)},
};
const size_t config_n_model_fields = N_OF(config_model_fields);

const char *const config_role_names[] = {"primary", "fast", "coder", "thinker", "longctx"};
_Static_assert(N_OF(config_role_names) == CONFIG_N_ROLES, "CONFIG_N_ROLES must match the list");

const struct field *config_field_find(const struct field *fields, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(fields[i].name, name) == 0)
			return &fields[i];
	return NULL;
}

void config_join_names(char *buf, size_t len, const char *const *names, size_t n)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

void config_join_field_names(char *buf, size_t len, const struct field *fields, size_t n)
{
	const char *names[32] = {0};
	size_t k = n < N_OF(names) ? n : N_OF(names), total = 0;
	for (size_t i = 0; i < k; i++) {
		names[i] = fields[i].name;
		total += strlen(names[i]) + 2;
	}
	/* A list too long for 'buf' ends after a whole name, with ", ...". */
	while (k > 0 && total + (k < n ? 5 : 0) >= len)
		total -= strlen(names[--k]) + 2;
	config_join_names(buf, len, names, k);
	if (k < n)
		snprintf(buf + strlen(buf), len - strlen(buf), ", ...");
}

void config_describe(const struct field *f, char *buf, size_t len)
{
	switch (f->kind) {
	case F_INT:
	case F_SIZE:
		snprintf(buf, len, "an integer in %lld..%lld", f->lo, f->hi);
		break;
	case F_STR:
		snprintf(buf, len, "a non-empty string");
		break;
	case F_OPT_STR:
		snprintf(buf, len, "a string");
		break;
	case F_LOG_LEVEL:
		snprintf(buf, len, "one of debug, info, warning, error, off");
		break;
	case F_ROLES: {
		char names[128];
		config_join_names(names, sizeof names, config_role_names, CONFIG_N_ROLES);
		snprintf(buf, len, "a list of roles from %s", names);
		break;
	}
	case F_BOOL:
		snprintf(buf, len, "true or false");
		break;
	case F_URL:
		snprintf(buf, len, "an http:// or https:// URL with a host");
		break;
	case F_KIND:
		snprintf(buf, len, "openai or ollama");
		break;
	case F_POOLING:
		snprintf(buf, len, "one of mean, cls, last, none");
		break;
	case F_QUEUE:
		snprintf(buf, len, "fifo or priority");
		break;
	case F_ROUTE:
		snprintf(buf, len, "one of least_busy, round_robin, capability_match");
		break;
	case F_CLIENT:
		snprintf(buf, len, "builtin or curl");
		break;
	case F_NAMES:
		snprintf(buf, len, "a list of distinct non-empty names");
		break;
	case F_HEADERS:
		snprintf(buf, len, "a mapping of header names to one-line values");
		break;
	}
}

/* Decimal integer with an optional sign and nothing else.  *out saturates
 * at the long long limits so that huge values read as out of range. */
static bool parse_integer(const char *s, long long *out)
{
	const char *p = s;
	if (*p == '+' || *p == '-')
		p++;
	if (*p < '0' || *p > '9')
		return false;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (*end != '\0')
		return false;
	*out = v; /* ERANGE leaves LLONG_MIN/MAX: out of range either way */
	return true;
}

bool config_url_valid(const char *u)
{
	const char *host = !strncmp(u, "http://", 7)    ? u + 7
	                   : !strncmp(u, "https://", 8) ? u + 8
	                                                : NULL;
	if (!host)
		return false;
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#')
			return false;
	size_t auth_len = strcspn(host, "/");
	const char *at = memrchr(host, '@', auth_len);
	if (at) {
		auth_len -= (size_t)(at + 1 - host);
		host = at + 1;
	}
	const char *colon = NULL;
	if (*host == '[') { /* [v6]:port */
		const char *close = memchr(host, ']', auth_len);
		if (!close || close == host + 1)
			return false;
		colon = close + 1 < host + auth_len ? close + 1 : NULL;
		if (colon && *colon != ':')
			return false;
	} else {
		colon = memchr(host, ':', auth_len);
	}
	if (colon == host || auth_len == 0)
		return false;
	if (!colon)
		return true;
	size_t digits = auth_len - (size_t)(colon + 1 - host);
	long port = 0;
	for (size_t i = 0; i < digits; i++) {
		if (colon[1 + i] < '0' || colon[1 + i] > '9')
			return false;
		port = port * 10 + (colon[1 + i] - '0');
		if (port > 65535)
			return false;
	}
	return digits > 0 && port > 0;
}

static enum brg_err set_int(const struct field *f, char *at, const char *text, bool is_null,
                            bool is_quoted, const char *want, char *why, size_t why_len)
{
	long long v;
	if (is_null || !parse_integer(text, &v)) {
		snprintf(why, why_len, "'%.64s' is not %s", is_null ? "" : text, want);
		return BRG_E_CONFIG;
	}
	if (is_quoted) {
		snprintf(why, why_len, "'%.64s' is a quoted string, expected %s unquoted", text,
		         want);
		return BRG_E_CONFIG;
	}
	if (v < f->lo || v > f->hi) {
		snprintf(why, why_len, "%.64s is out of range, expected %s", text, want);
		return BRG_E_CONFIG;
	}
	if (f->kind == F_INT)
		*(int *)at = (int)v;
	else
		*(size_t *)at = (size_t)v;
	return BRG_OK;
}

static enum brg_err set_str(const struct field *f, char *at, const char *text, bool is_null,
                            const char *want, char *why, size_t why_len)
{
	bool is_empty = is_null || text[0] == '\0';
	if (is_empty && f->kind != F_OPT_STR) {
		snprintf(why, why_len, "is empty, expected %s", want);
		return BRG_E_CONFIG;
	}
	if (f->kind == F_URL && !config_url_valid(text)) {
		if (strchr(text, '@'))
			snprintf(why, why_len, "a URL with credentials is not %s", want);
		else
			snprintf(why, why_len, "'%.64s' is not %s", text, want);
		return BRG_E_CONFIG;
	}
	char *s = is_empty ? NULL : strdup(text);
	if (!is_empty && !s)
		return BRG_E_NOMEM;
	for (size_t n = s && f->kind == F_URL ? strlen(s) : 0; n > 0 && s[n - 1] == '/'; n--)
		s[n - 1] = '\0'; /* the authority has no '/', so the host stays */
	free(*(char **)at);
	*(char **)at = s;
	return BRG_OK;
}

const char *const config_pooling_names[4] = {"none", "mean", "cls", "last"};
const char *const config_queue_strategy_names[2] = {"fifo", "priority"};
const char *const config_http_client_names[2] = {"builtin", "curl"};
const char *const config_auto_route_strategy_names[3] = {"least_busy", "round_robin",
                                                         "capability_match"};

/* A word among words[0..n) (case-insensitive); its index or -1. */
static int word_index(const char *s, const char *const *words, int n)
{
	for (int i = 0; i < n; i++)
		if (strcasecmp(s, words[i]) == 0)
			return i;
	return -1;
}

static enum brg_err set_word(const struct field *f, char *at, const char *text, bool is_null,
                             const char *want, char *why, size_t why_len)
{
	static const char *const bools[] = {"false", "no", "off", "0", "true", "yes", "on", "1"};
	static const char *const kinds[] = {"openai", "ollama"};
	int i = -1;
	if (f->kind == F_POOLING && is_null) {
		*(int *)at = -1;
		return BRG_OK;
	}
	if (f->kind == F_LOG_LEVEL)
		i = is_null ? -1 : log_level_parse(text);
	else if (f->kind == F_BOOL)
		i = is_null ? -1 : word_index(text, bools, 8);
	else if (f->kind == F_POOLING)
		i = word_index(text, config_pooling_names, 4);
	else if (f->kind == F_QUEUE)
		i = is_null ? -1 : word_index(text, config_queue_strategy_names, 2);
	else if (f->kind == F_ROUTE)
		i = is_null ? -1 : word_index(text, config_auto_route_strategy_names, 3);
	else if (f->kind == F_CLIENT)
		i = is_null ? -1 : word_index(text, config_http_client_names, 2);
	else
		i = is_null ? -1 : word_index(text, kinds, 2);
	if (i < 0) {
		snprintf(why, why_len, "'%.64s' is not %s, expected %s", is_null ? "" : text,
		         f->kind == F_LOG_LEVEL ? "a log level"
		         : f->kind == F_BOOL    ? "a boolean"
		         : f->kind == F_POOLING ? "a pooling"
		         : f->kind == F_QUEUE   ? "a queue strategy"
		         : f->kind == F_ROUTE   ? "an auto-route strategy"
		         : f->kind == F_CLIENT  ? "an HTTP client"
		                                : "a provider kind",
		         want);
		return BRG_E_CONFIG;
	}
	if (f->kind == F_LOG_LEVEL || f->kind == F_POOLING || f->kind == F_QUEUE ||
	    f->kind == F_ROUTE || f->kind == F_CLIENT)
		*(int *)at = i;
	else if (f->kind == F_BOOL)
		*(bool *)at = i >= 4;
	else
		*(enum provider_kind *)at = i == 1 ? PROVIDER_OLLAMA : PROVIDER_OPENAI;
	return BRG_OK;
}

enum brg_err config_field_set(const struct field *f, void *base, const char *text, bool is_null,
                              bool is_quoted, char *why, size_t why_len)
{
	char want[160];
	config_describe(f, want, sizeof want);
	char *at = (char *)base + f->off;
	switch (f->kind) {
	case F_INT:
	case F_SIZE:
		return set_int(f, at, text, is_null, is_quoted, want, why, why_len);
	case F_LOG_LEVEL:
	case F_BOOL:
	case F_KIND:
	case F_POOLING:
	case F_QUEUE:
	case F_ROUTE:
	case F_CLIENT:
		return set_word(f, at, text, is_null, want, why, why_len);
	case F_STR:
	case F_OPT_STR:
	case F_URL:
		return set_str(f, at, text, is_null, want, why, why_len);
	case F_ROLES:
	case F_NAMES:
	case F_HEADERS:
		break;
	}
	snprintf(why, why_len, "cannot be set from text, expected %s", want);
	return BRG_E_CONFIG;
}

char *config_list_next(char *s, char **save)
{
	for (char *tok = strtok_r(s, ",", save); tok; tok = strtok_r(NULL, ",", save)) {
		tok += strspn(tok, " \t");
		size_t len = strlen(tok);
		while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
			tok[--len] = '\0';
		if (len)
			return tok;
	}
	return NULL;
}

const char *config_yaml_scalar(const yaml_node_t *node)
{
	return (const char *)node->data.scalar.value;
}

int config_word_find(const char *s, const char *const *words, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(s, words[i]) == 0)
			return (int)i;
	return -1;
}
