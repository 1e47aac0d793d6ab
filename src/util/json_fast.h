/* json_fast — a one-pass reader that builds jansson values straight from a buffer; the fast
 * path of json_parse_strict (util/json.h), which is what callers use.
 *
 * Returns a value only when jansson (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES) would return
 * an equal one and no value is nested deeper than JSON_FAST_MAX_DEPTH; NULL otherwise,
 * errors and rarities alike (the caller then asks jansson, whose answer is authoritative). */
#ifndef MANIFOLD_JSON_FAST_H
#define MANIFOLD_JSON_FAST_H
#include <jansson.h>
#include <stddef.h>

#define JSON_FAST_MAX_DEPTH 64 /* = json.c's JSON_MAX_DEPTH */

json_t *json_fast_parse(const char *data, size_t len);

#endif
