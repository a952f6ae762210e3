// sources: src/http/keys.c src/core/*.c
// libs: -lpthread
/*
 * fuzz_keys.c — libFuzzer harness for http/keys.c: the bytes become an API
 * keys file (on tmpfs), which http_keys_open reads.
 *
 * Beyond memory safety it checks the contract: an accepted file has at
 * least one key; every non-comment line of it, trimmed, is a key that
 * matches, while the empty string never does;
 * a refused file gives BRG_E_CONFIG (or NOMEM) with a message.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "http/keys.h"

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

static char path[64];

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Every key line of 'text' must match. */
static void check_lines(struct http_keys *k, char *text)
{
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		while (is_space(*line))
			line++;
		size_t n = strlen(line);
		while (n > 0 && is_space(line[n - 1]))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		CHECK(http_keys_match(k, line));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!path[0]) {
		log_set_level(LOG_OFF);
		snprintf(path, sizeof path, "/dev/shm/brigade-fuzz-keys-%d", (int)getpid());
	}
	/* NUL bytes end a C string early; the reader sees what fgets sees. */
	FILE *f = fopen(path, "w");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	struct http_keys *k = NULL;
	struct brg_error e;
	brg_error_clear(&e);
	enum brg_err rc = http_keys_open(path, &k, &e);
	if (rc == BRG_OK) {
		CHECK(http_keys_count(k) >= 1);
		CHECK(!http_keys_match(k, ""));
		if (!memchr(data, '\0', size)) {
			char *text = malloc(size + 1);
			memcpy(text, data, size);
			text[size] = '\0';
			check_lines(k, text);
			free(text);
		}
		http_keys_free(k);
	} else {
		CHECK(!k);
		CHECK(rc == BRG_E_CONFIG || rc == BRG_E_NOMEM);
		CHECK(e.message[0]);
	}
	unlink(path);
	return 0;
}
