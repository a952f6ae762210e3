/*
 * jload.h — a request body into a jansson tree, faster than json_loadb.
 *
 * jansson's own reader fetches every byte through a callback and checks
 * it on its own, which made it the largest single cost of a proxied chat
 * request (about 17k instructions for an 80-byte body).  jload walks the
 * bytes once with a table and builds the same tree through jansson's
 * constructors.  Anything it is not sure of (invalid JSON, a duplicate
 * key, a number out of range, \u0000, an escaped key, deep nesting) it
 * hands to json_loadb, so errors and their messages are jansson's.
 * fuzz_json_load checks that both give the same tree for every input.
 */
#ifndef BRG_API_JLOAD_H
#define BRG_API_JLOAD_H

#include <jansson.h>
#include <stddef.h>

/* As json_loadb(s, len, JSON_REJECT_DUPLICATES, err). */
json_t *jload(const char *s, size_t len, json_error_t *err);
/* The fast reader alone: NULL where jload would ask json_loadb (tests). */
json_t *jload_fast(const char *s, size_t len);

#endif
