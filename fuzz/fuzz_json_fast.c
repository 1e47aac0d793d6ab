/* Fuzz target: the fast JSON reader against jansson, differentially. Whenever the fast
 * reader returns a value, jansson must accept the same bytes with the same value (and the
 * depth rule must hold, which json_parse_strict then relies on). It may give up where jansson
 * succeeds; it must never succeed where jansson fails. */
#include "util/json_fast.h"
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int depth(const json_t *v)
{
    int d = 0;
    const char *k;
    json_t *c;
    size_t i;
    if (json_is_object(v))
        json_object_foreach((json_t *)v, k, c) if (depth(c) + 1 > d) d = depth(c) + 1;
    if (json_is_array(v))
        json_array_foreach(v, i, c) if (depth(c) + 1 > d) d = depth(c) + 1;
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *fast = json_fast_parse((const char *)data, size);
    if (!fast)
        return 0;
    json_error_t e;
    json_t *ref = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    assert(ref);
    assert(json_equal(fast, ref));
    /* json_equal compares reals by value: also the kinds, integer vs real. */
    char *a = json_dumps(fast, JSON_ENCODE_ANY | JSON_SORT_KEYS), *b = json_dumps(ref, JSON_ENCODE_ANY | JSON_SORT_KEYS);
    assert(a && b && !strcmp(a, b));
    free(a), free(b);
    assert(depth(fast) <= JSON_FAST_MAX_DEPTH);
    json_decref(ref);
    json_decref(fast);
    return 0;
}
