// sources: src/api/jload.c src/core/jscan.c src/core/utf8.c
// libs: -ljansson
/*
 * fuzz_json_load.c — libFuzzer harness for api/jload.c, differential
 * against jansson's own reader.
 *
 * The bytes are a request body.  Checks: whenever the fast reader accepts
 * them, json_loadb(JSON_REJECT_DUPLICATES) accepts them too and gives the
 * same tree (json_equal, and the same text when both are dumped in order,
 * which also tells -0.0 from 0.0 and keeps member order); jload as a whole
 * succeeds exactly when json_loadb does.  The fast reader may refuse what
 * jansson accepts (it then hands over): never the other way round.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/jload.h"

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void same_text(json_t *a, json_t *b)
{
	size_t flags = JSON_PRESERVE_ORDER | JSON_ENCODE_ANY | JSON_COMPACT;
	char *x = json_dumps(a, flags), *y = json_dumps(b, flags);
	check(x && y && strcmp(x, y) == 0);
	free(x);
	free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	json_error_t je;
	json_t *ref = json_loadb(s, size, JSON_REJECT_DUPLICATES, &je);
	json_t *fast = jload_fast(s, size);
	if (fast) {
		check(ref != NULL);
		check(json_equal(fast, ref));
		same_text(fast, ref);
	}
	json_t *all = jload(s, size, &je);
	check(!all == !ref);
	if (all)
		same_text(all, ref);
	json_decref(all);
	json_decref(fast);
	json_decref(ref);
	return 0;
}
