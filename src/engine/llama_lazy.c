/*
 * llama_lazy.c — fills brg_llama_fn (llama_lazy.h) from a dlopen'd
 * libllama.  The one file in src/engine/ that sees the real llama.cpp
 * names rather than the macros for the pointers.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define BRG_LLAMA_LAZY_IMPL
#include "engine/llama_lazy.h"
#include "core/str.h"

/* The Makefile passes the soname it links tools and tests against. */
#ifndef BRG_LLAMA_SONAME
#define BRG_LLAMA_SONAME "libllama.v0.5.0.so"
#endif

struct brg_llama_fns brg_llama_fn;

/* dlopen(name), then dlopen(dir/name); NULL with why each failed in
 * why[0] and why[1] (the second "" when there was no 'dir' to try). */
static void *open_lib(const char *dir, char why[2][512])
{
	why[1][0] = '\0';
	void *h = dlopen(BRG_LLAMA_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (h)
		return h;
	const char *e = dlerror();
	str_copy(why[0], sizeof why[0], e ? e : BRG_LLAMA_SONAME ": not found");
	if (!dir || !*dir)
		return NULL;
	char path[4096];
	int n = snprintf(path, sizeof path, "%s/%s", dir, BRG_LLAMA_SONAME);
	if (n < 0 || (size_t)n >= sizeof path)
		return NULL;
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h)
		return h;
	e = dlerror();
	snprintf(why[1], sizeof why[1], "; %s", e ? e : "not found");
	return NULL;
}

/* Why dlsym(name) gave NULL. */
static const char *missing(const char *name)
{
	const char *e = dlerror();
	return e ? e : name;
}

enum brg_err llama_lazy_load(const char *dir, struct brg_error *err)
{
	if (brg_llama_fn.llama_log_set)
		return BRG_OK;
	char why[2][512];
	void *h = open_lib(dir, why);
	if (!h)
		return brg_fail(err, BRG_E_MODEL_LOAD, "cannot load llama.cpp: %s%s", why[0],
		                why[1]);
	/* Looked up in libllama and the libggml libraries it needs; the
	 * library stays loaded whatever happens (nothing else could use it). */
	struct brg_llama_fns fn;
#define BRG_LLAMA_SYM(name)                             \
	fn.name = (__typeof__(fn.name))dlsym(h, #name); \
	if (!fn.name)                                   \
		return brg_fail(err, BRG_E_MODEL_LOAD, "cannot load llama.cpp: %s", missing(#name));
	BRG_LLAMA_FNS(BRG_LLAMA_SYM)
#undef BRG_LLAMA_SYM
	brg_llama_fn = fn;
	return BRG_OK;
}
