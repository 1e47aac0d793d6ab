/* Fuzz target: the request-body parser and our JSON writer. Whatever parses must write
 * out as JSON that parses again to an equal value (shortest-real output included). */
#include "util/json.h"
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    json_t *v = json_parse_strict((const char *)data, size, err, sizeof err);
    if (!v)
        return 0;
    char *s = json_to_string(v);
    json_t *again = json_parse_strict(s, strlen(s), err, sizeof err);
    assert(again);
    assert(json_equal(v, again));
    json_decref(again);
    json_decref(v);
    free(s);
    return 0;
}
