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
 *     curl_easy_init, curl_multi_init, curl_share_init, curl_url,
 *     curl_slist_append, curl_version(_info), the *_strerror ones and
 *     curl_getdate — are brigade functions that load libcurl first (once,
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
#undef curl_share_setopt
#undef curl_multi_setopt

/* Every libcurl function brigade may call; all in libcurl 7.68 and later. */
#define BRG_CURL_FNS(X)             \
	X(curl_global_init)         \
	X(curl_global_cleanup)      \
	X(curl_version)             \
	X(curl_version_info)        \
	X(curl_getdate)             \
	X(curl_free)                \
	X(curl_slist_append)        \
	X(curl_slist_free_all)      \
	X(curl_easy_init)           \
	X(curl_easy_setopt)         \
	X(curl_easy_perform)        \
	X(curl_easy_cleanup)        \
	X(curl_easy_getinfo)        \
	X(curl_easy_duphandle)      \
	X(curl_easy_reset)          \
	X(curl_easy_pause)          \
	X(curl_easy_recv)           \
	X(curl_easy_send)           \
	X(curl_easy_upkeep)         \
	X(curl_easy_escape)         \
	X(curl_easy_unescape)       \
	X(curl_easy_strerror)       \
	X(curl_multi_init)          \
	X(curl_multi_add_handle)    \
	X(curl_multi_remove_handle) \
	X(curl_multi_fdset)         \
	X(curl_multi_wait)          \
	X(curl_multi_poll)          \
	X(curl_multi_wakeup)        \
	X(curl_multi_perform)       \
	X(curl_multi_cleanup)       \
	X(curl_multi_info_read)     \
	X(curl_multi_strerror)      \
	X(curl_multi_socket_action) \
	X(curl_multi_timeout)       \
	X(curl_multi_setopt)        \
	X(curl_multi_assign)        \
	X(curl_share_init)          \
	X(curl_share_setopt)        \
	X(curl_share_cleanup)       \
	X(curl_share_strerror)      \
	X(curl_url)                 \
	X(curl_url_cleanup)         \
	X(curl_url_dup)             \
	X(curl_url_get)             \
	X(curl_url_set)

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
char *brg_curl_version(void);
curl_version_info_data *brg_curl_version_info(CURLversion v);
time_t brg_curl_getdate(const char *p, const time_t *unused);
struct curl_slist *brg_curl_slist_append(struct curl_slist *list, const char *s);
CURL *brg_curl_easy_init(void);
const char *brg_curl_easy_strerror(CURLcode rc);
CURLM *brg_curl_multi_init(void);
const char *brg_curl_multi_strerror(CURLMcode rc);
CURLSH *brg_curl_share_init(void);
const char *brg_curl_share_strerror(CURLSHcode rc);
CURLU *brg_curl_url(void);

#ifndef BRG_CURL_LAZY_IMPL
/* clang-format off */
#define curl_global_init         brg_curl_global_init
#define curl_global_cleanup      brg_curl_global_cleanup
#define curl_version             brg_curl_version
#define curl_version_info        brg_curl_version_info
#define curl_getdate             brg_curl_getdate
#define curl_free                (*brg_curl.curl_free)
#define curl_slist_append        brg_curl_slist_append
#define curl_slist_free_all      (*brg_curl.curl_slist_free_all)
#define curl_easy_init           brg_curl_easy_init
#define curl_easy_setopt         (*brg_curl.curl_easy_setopt)
#define curl_easy_perform        (*brg_curl.curl_easy_perform)
#define curl_easy_cleanup        (*brg_curl.curl_easy_cleanup)
#define curl_easy_getinfo        (*brg_curl.curl_easy_getinfo)
#define curl_easy_duphandle      (*brg_curl.curl_easy_duphandle)
#define curl_easy_reset          (*brg_curl.curl_easy_reset)
#define curl_easy_pause          (*brg_curl.curl_easy_pause)
#define curl_easy_recv           (*brg_curl.curl_easy_recv)
#define curl_easy_send           (*brg_curl.curl_easy_send)
#define curl_easy_upkeep         (*brg_curl.curl_easy_upkeep)
#define curl_easy_escape         (*brg_curl.curl_easy_escape)
#define curl_easy_unescape       (*brg_curl.curl_easy_unescape)
#define curl_easy_strerror       brg_curl_easy_strerror
#define curl_multi_init          brg_curl_multi_init
#define curl_multi_add_handle    (*brg_curl.curl_multi_add_handle)
#define curl_multi_remove_handle (*brg_curl.curl_multi_remove_handle)
#define curl_multi_fdset         (*brg_curl.curl_multi_fdset)
#define curl_multi_wait          (*brg_curl.curl_multi_wait)
#define curl_multi_poll          (*brg_curl.curl_multi_poll)
#define curl_multi_wakeup        (*brg_curl.curl_multi_wakeup)
#define curl_multi_perform       (*brg_curl.curl_multi_perform)
#define curl_multi_cleanup       (*brg_curl.curl_multi_cleanup)
#define curl_multi_info_read     (*brg_curl.curl_multi_info_read)
#define curl_multi_strerror      brg_curl_multi_strerror
#define curl_multi_socket_action (*brg_curl.curl_multi_socket_action)
#define curl_multi_timeout       (*brg_curl.curl_multi_timeout)
#define curl_multi_setopt        (*brg_curl.curl_multi_setopt)
#define curl_multi_assign        (*brg_curl.curl_multi_assign)
#define curl_share_init          brg_curl_share_init
#define curl_share_setopt        (*brg_curl.curl_share_setopt)
#define curl_share_cleanup       (*brg_curl.curl_share_cleanup)
#define curl_share_strerror      brg_curl_share_strerror
#define curl_url                 brg_curl_url
#define curl_url_cleanup         (*brg_curl.curl_url_cleanup)
#define curl_url_dup             (*brg_curl.curl_url_dup)
#define curl_url_get             (*brg_curl.curl_url_get)
#define curl_url_set             (*brg_curl.curl_url_set)
/* clang-format on */
#endif

#endif
