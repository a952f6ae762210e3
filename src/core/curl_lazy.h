/*
 * curl_lazy.h — libcurl through a table of function pointers, filled by
 * dlopen when brigade first needs it, so that a server with no remote
 * provider and no trace collector never maps libcurl and the TLS,
 * Kerberos, LDAP, SSH and HTTP/2 libraries under it (about 2.8 MB of
 * resident memory; docs/internals/engine.md, "Idle memory").
 *
 * Include this instead of <curl/curl.h>.  After the table, every libcurl
 * function below is a macro, so call sites read as plain libcurl calls:
 *
 *   - the functions that need no handle — curl_global_init,
 *     curl_easy_init, curl_multi_init, curl_slist_append and
 *     curl_easy_strerror — are brigade functions that load libcurl first (once,
 *     thread-safe) and then call it; when it cannot be loaded they fail as
 *     libcurl documents failure (CURLE_FAILED_INIT, NULL, a fixed string)
 *     and the reason is logged once.  curl_global_cleanup does nothing when
 *     libcurl was never loaded;
 *   - the others ('#define curl_easy_perform (*brg_curl.curl_easy_perform)')
 *     take a handle, so libcurl is loaded by the time they run.
 *
 * The price: curl's compile-time checks of curl_easy_setopt arguments
 * (typecheck-gcc.h) cannot wrap a call through a pointer, so they are off.
 * A libcurl function not listed here fails the build with an undefined
 * reference (brigade does not link libcurl): add it to BRG_CURL_FNS and a
 * #define below.
 */
#ifndef BRG_CORE_CURL_LAZY_H
#define BRG_CORE_CURL_LAZY_H

#include <curl/curl.h>

#include "core/err.h"

/* curl.h's fixed-arity wrappers (or its type-checking ones) would turn
 * these calls back into calls of the real symbols. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt

/* Every libcurl function brigade calls; all in libcurl 7.68 and later.
 * Each is looked up at load, so a name listed and never called would only
 * be one more way for loading to fail. */
#define BRG_CURL_FNS(X)             \
	X(curl_global_init)         \
	X(curl_global_cleanup)      \
	X(curl_slist_append)        \
	X(curl_slist_free_all)      \
	X(curl_easy_init)           \
	X(curl_easy_setopt)         \
	X(curl_easy_perform)        \
	X(curl_easy_cleanup)        \
	X(curl_easy_getinfo)        \
	X(curl_easy_reset)          \
	X(curl_easy_strerror)       \
	X(curl_multi_init)          \
	X(curl_multi_add_handle)    \
	X(curl_multi_remove_handle) \
	X(curl_multi_poll)          \
	X(curl_multi_wakeup)        \
	X(curl_multi_perform)       \
	X(curl_multi_cleanup)       \
	X(curl_multi_info_read)     \
	X(curl_multi_socket_action) \
	X(curl_multi_setopt)

struct brg_curl_fns {
#define BRG_CURL_FIELD(name) __typeof__(&name) name;
	BRG_CURL_FNS(BRG_CURL_FIELD)
#undef BRG_CURL_FIELD
};

/* All NULL until curl_lazy_load() succeeds; read-only after that. */
extern struct brg_curl_fns brg_curl;

/*
 * dlopens libcurl.so.4 and fills brg_curl, once; later calls return the
 * first one's result.  Errors: BRG_E_INTERNAL naming the library or symbol
 * missing (dlerror's words).  Thread-safe.  Stays loaded until exit.
 */
enum brg_err curl_lazy_load(struct brg_error *err);

/* The entry points: load libcurl, then call it (see the top). */
CURLcode brg_curl_global_init(long flags);
void brg_curl_global_cleanup(void);
struct curl_slist *brg_curl_slist_append(struct curl_slist *list, const char *s);
CURL *brg_curl_easy_init(void);
const char *brg_curl_easy_strerror(CURLcode rc);
CURLM *brg_curl_multi_init(void);

#ifndef BRG_CURL_LAZY_IMPL
/* clang-format off */
#define curl_global_init         brg_curl_global_init
#define curl_global_cleanup      brg_curl_global_cleanup
#define curl_slist_append        brg_curl_slist_append
#define curl_slist_free_all      (*brg_curl.curl_slist_free_all)
#define curl_easy_init           brg_curl_easy_init
#define curl_easy_setopt         (*brg_curl.curl_easy_setopt)
#define curl_easy_perform        (*brg_curl.curl_easy_perform)
#define curl_easy_cleanup        (*brg_curl.curl_easy_cleanup)
#define curl_easy_getinfo        (*brg_curl.curl_easy_getinfo)
#define curl_easy_reset          (*brg_curl.curl_easy_reset)
#define curl_easy_strerror       brg_curl_easy_strerror
#define curl_multi_init          brg_curl_multi_init
#define curl_multi_add_handle    (*brg_curl.curl_multi_add_handle)
#define curl_multi_remove_handle (*brg_curl.curl_multi_remove_handle)
#define curl_multi_poll          (*brg_curl.curl_multi_poll)
#define curl_multi_wakeup        (*brg_curl.curl_multi_wakeup)
#define curl_multi_perform       (*brg_curl.curl_multi_perform)
#define curl_multi_cleanup       (*brg_curl.curl_multi_cleanup)
#define curl_multi_info_read     (*brg_curl.curl_multi_info_read)
#define curl_multi_socket_action (*brg_curl.curl_multi_socket_action)
#define curl_multi_setopt        (*brg_curl.curl_multi_setopt)
/* clang-format on */
#endif

#endif
