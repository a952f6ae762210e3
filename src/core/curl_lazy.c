/*
 * curl_lazy.c — fills brg_curl (curl_lazy.h) from a dlopen'd libcurl, and
 * the entry points that load it on first use.  The one file that sees the
 * real libcurl names rather than the macros.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#define BRG_CURL_LAZY_IMPL
#include "core/curl_lazy.h"
#include "core/log.h"

#define CURL_SONAME "libcurl.so.4"

struct brg_curl_fns brg_curl;

static struct {
	pthread_once_t once;
	atomic_bool is_loaded;
	char why[512]; /* non-empty: loading failed */
} lib = {.once = PTHREAD_ONCE_INIT};

/* Why dlsym(name) gave NULL. */
static const char *missing(const char *name)
{
	const char *e = dlerror();
	return e ? e : name;
}

static void load(void)
{
	void *h = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(lib.why, sizeof lib.why, "cannot load libcurl: %s",
		         e ? e : CURL_SONAME ": not found");
		log_error("%s", lib.why);
		return;
	}
	struct brg_curl_fns fn;
#define BRG_CURL_SYM(name)                                                                    \
	fn.name = (__typeof__(fn.name))dlsym(h, #name);                                       \
	if (!fn.name) {                                                                       \
		snprintf(lib.why, sizeof lib.why, "cannot load libcurl: %s", missing(#name)); \
		log_error("%s", lib.why);                                                     \
		return;                                                                       \
	}
	BRG_CURL_FNS(BRG_CURL_SYM)
#undef BRG_CURL_SYM
	brg_curl = fn;
	lib.is_loaded = true;
}

/* Loads libcurl once; whether it is loaded. */
static bool ready(void)
{
	pthread_once(&lib.once, load);
	return lib.is_loaded;
}

enum brg_err curl_lazy_load(struct brg_error *err)
{
	if (!ready())
		return brg_fail(err, BRG_E_INTERNAL, "%s", lib.why);
	return BRG_OK;
}

CURLcode brg_curl_global_init(long flags)
{
	return ready() ? brg_curl.curl_global_init(flags) : CURLE_FAILED_INIT;
}

void brg_curl_global_cleanup(void)
{
	/* Not loaded, or loaded by another thread right now: nothing to undo
	 * that this thread set up. */
	if (lib.is_loaded)
		brg_curl.curl_global_cleanup();
}

struct curl_slist *brg_curl_slist_append(struct curl_slist *list, const char *s)
{
	return ready() ? brg_curl.curl_slist_append(list, s) : NULL;
}

CURL *brg_curl_easy_init(void)
{
	return ready() ? brg_curl.curl_easy_init() : NULL;
}

const char *brg_curl_easy_strerror(CURLcode rc)
{
	return ready() ? brg_curl.curl_easy_strerror(rc) : lib.why;
}

CURLM *brg_curl_multi_init(void)
{
	return ready() ? brg_curl.curl_multi_init() : NULL;
}
