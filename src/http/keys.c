/*
 * keys.c — see keys.h.
 *
 * The keys live in one array swapped whole on reload, under a rwlock:
 * requests read concurrently, a reload (rare) writes.  The file's identity
 * (inode, size, modification time in ns) says whether it changed.
 */
#include "http/keys.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/log.h"

#define RECHECK_MS     1000
#define MAX_LINE_BYTES 4096

struct http_keys {
	char *path;
	pthread_rwlock_t lock;
	char **keys; /* guarded by lock */
	size_t n_keys;
	pthread_mutex_t check_mu; /* one reload at a time */
	long long checked_ms;     /* guarded by check_mu */
	struct stat seen;         /* guarded by check_mu */
};

static void keys_free(char **keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One line's key into *key (NULL for a blank or comment line). */
static enum brg_err parse_line(char *line, char **key)
{
	*key = NULL;
	while (is_space(*line))
		line++;
	size_t n = strlen(line);
	while (n > 0 && is_space(line[n - 1]))
		line[--n] = '\0';
	if (n == 0 || line[0] == '#')
		return BRG_OK;
	for (size_t i = 0; i < n; i++)
		if (is_space(line[i]) || (unsigned char)line[i] < 0x20)
			return BRG_E_CONFIG;
	*key = strdup(line);
	return *key ? BRG_OK : BRG_E_NOMEM;
}

static enum brg_err read_keys(const char *path, char ***out, size_t *n_out, struct stat *st,
                              struct brg_error *err)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return brg_fail(err, BRG_E_CONFIG, "API keys file %s: %s", path, strerror(errno));
	if (fstat(fileno(f), st) != 0) {
		fclose(f);
		return brg_fail(err, BRG_E_CONFIG, "API keys file %s: %s", path, strerror(errno));
	}
	char **keys = NULL;
	size_t n = 0;
	char line[MAX_LINE_BYTES];
	enum brg_err rc = BRG_OK;
	for (int lineno = 1; !rc && fgets(line, sizeof line, f); lineno++) {
		char *key;
		if (!strchr(line, '\n') && !feof(f)) {
			rc = brg_fail(err, BRG_E_CONFIG,
			              "API keys file %s, line %d: longer than %d bytes", path,
			              lineno, MAX_LINE_BYTES - 2);
			break;
		}
		rc = parse_line(line, &key);
		if (rc == BRG_E_CONFIG)
			brg_fail(err, rc,
			         "API keys file %s, line %d: a key cannot contain whitespace", path,
			         lineno);
		if (rc || !key)
			continue;
		char **grown = realloc(keys, (n + 1) * sizeof *keys);
		if (!grown) {
			free(key);
			rc = BRG_E_NOMEM;
			break;
		}
		keys = grown;
		keys[n++] = key;
	}
	if (!rc && ferror(f))
		rc = brg_fail(err, BRG_E_CONFIG, "API keys file %s: read error", path);
	fclose(f);
	if (rc == BRG_E_NOMEM)
		brg_fail(err, rc, "out of memory");
	if (!rc && n == 0)
		rc = brg_fail(err, BRG_E_CONFIG, "API keys file %s has no key", path);
	if (rc) {
		keys_free(keys, n);
		return rc;
	}
	*out = keys;
	*n_out = n;
	return BRG_OK;
}

enum brg_err http_keys_open(const char *path, struct http_keys **out, struct brg_error *err)
{
	*out = NULL;
	struct http_keys *k = calloc(1, sizeof *k);
	if (!k || !(k->path = strdup(path))) {
		free(k);
		return brg_fail(err, BRG_E_NOMEM, "out of memory");
	}
	enum brg_err rc = read_keys(path, &k->keys, &k->n_keys, &k->seen, err);
	if (rc) {
		free(k->path);
		free(k);
		return rc;
	}
	if (k->seen.st_mode & S_IROTH)
		log_warn("API keys file %s is readable by every user (chmod 600 it)", path);
	pthread_rwlock_init(&k->lock, NULL);
	pthread_mutex_init(&k->check_mu, NULL);
	k->checked_ms = brg_now_ms();
	*out = k;
	return BRG_OK;
}

void http_keys_free(struct http_keys *k)
{
	if (!k)
		return;
	keys_free(k->keys, k->n_keys);
	pthread_rwlock_destroy(&k->lock);
	pthread_mutex_destroy(&k->check_mu);
	free(k->path);
	free(k);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Rereads the file when it changed since the last look. */
static void maybe_reload(struct http_keys *k)
{
	if (pthread_mutex_trylock(&k->check_mu) != 0)
		return; /* another request is looking */
	long long now = brg_now_ms();
	struct stat st;
	if (now - k->checked_ms < RECHECK_MS) {
		pthread_mutex_unlock(&k->check_mu);
		return;
	}
	k->checked_ms = now;
	bool exists = stat(k->path, &st) == 0;
	if (exists ? same_file(&st, &k->seen) : k->seen.st_ino == 0) {
		pthread_mutex_unlock(&k->check_mu); /* unchanged, or still missing */
		return;
	}
	char **keys = NULL;
	size_t n = 0;
	struct brg_error e;
	brg_error_clear(&e);
	struct stat seen;
	if (read_keys(k->path, &keys, &n, &seen, &e) != BRG_OK) {
		/* Remember this state of the file so the warning is not repeated
		 * every second; a fixed file has another identity and is read. */
		if (exists)
			k->seen = st;
		else
			memset(&k->seen, 0, sizeof k->seen);
		log_warn("%s; keeping the %zu keys read before", e.message, k->n_keys);
		pthread_mutex_unlock(&k->check_mu);
		return;
	}
	k->seen = seen;
	pthread_rwlock_wrlock(&k->lock);
	char **old = k->keys;
	size_t n_old = k->n_keys;
	k->keys = keys;
	k->n_keys = n;
	pthread_rwlock_unlock(&k->lock);
	keys_free(old, n_old);
	log_info("API keys file %s reloaded: %zu keys", k->path, n);
	pthread_mutex_unlock(&k->check_mu);
}

/* Constant-time over the key's length: no early exit on a mismatch. */
static unsigned differs(const char *key, const char *p, size_t p_len)
{
	size_t n = strlen(key);
	unsigned diff = (unsigned)(n ^ p_len);
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)key[i] ^ (unsigned char)(i < p_len ? p[i] : 0);
	return diff;
}

bool http_keys_match(struct http_keys *k, const char *presented)
{
	maybe_reload(k);
	size_t len = strlen(presented);
	bool ok = false;
	pthread_rwlock_rdlock(&k->lock);
	/* Every key is compared, so the time does not say which one matched. */
	for (size_t i = 0; i < k->n_keys; i++)
		ok |= differs(k->keys[i], presented, len) == 0;
	pthread_rwlock_unlock(&k->lock);
	return ok;
}

size_t http_keys_count(struct http_keys *k)
{
	pthread_rwlock_rdlock(&k->lock);
	size_t n = k->n_keys;
	pthread_rwlock_unlock(&k->lock);
	return n;
}
