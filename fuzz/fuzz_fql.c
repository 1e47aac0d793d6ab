/* libFuzzer target for the FQL engine and filter actions.
 *
 * The input is FQL text (any bytes, NULs included). It is compiled; when it
 * compiles, the program is dumped and evaluated against a fixed set of events
 * chosen to reach every value type (nested objects, lists, NUL bytes in keys
 * and strings, non-ASCII, deep nesting), and then used as the "if" of a filter
 * that is applied and previewed, which exercises the actions, the JSON writer
 * and the diff. Must never crash, hang or leak.
 *
 *   make fuzz && build/fuzz/fuzz_fql fuzz/corpus/fql -max_total_time=300 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filters/filters.h"
#include "fql/fql.h"

static const char *const event_texts[] = {
    "{\"event\": \"Button Clicked\", \"type\": \"track\", \"userId\": \"u1\","
    " \"context\": {\"library\": {\"name\": \"analytics.js\", \"version\": \"1.0\"}, \"ip\": \"1.2.3.4\"},"
    " \"properties\": {\"features\": [\"discounts\", \"dark-mode\"], \"n\": 3, \"r\": 2.5,"
    " \"products\": [{\"id\": 1, \"price\": 2}, {\"id\": 3, \"price\": 4.5}], \"e\": [], \"o\": {}}}",
    "{\"userId\": \"abc\", \"x\": 1, \"flag\": true, \"s\": \"true\", \"nullfield\": null,"
    " \"arr\": [\"a\", \"b\"], \"f\": false}",
    "{}",
    "{\"key\": \"a\\u0000b\", \"ключ\": \"ÀÉÎ ΣΑΣ ア ☺ \\ud83d\\ude00\", \"a.b\": {\"c d\": [1, [2, [3]]]},"
    " \"1st\": -0.0, \"big\": 9007199254740993, \"neg\": -9223372036854775808, \"TRUE\": true}",
    "{\"d\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{\"v\": [[[1]]]}]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
};
#define NEVENTS (sizeof event_texts / sizeof event_texts[0])
static json_t *events[NEVENTS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < NEVENTS; i++) {
        events[i] = json_loads(event_texts[i], JSON_ALLOW_NUL, NULL);
        if (!events[i])
            abort();
    }
    /* jansson cannot parse a NUL inside a key, but events may carry one. */
    json_object_setn_new(events[3], "k\0ey", 4, json_string("v"));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fql_error err;
    fql_program *p = fql_compile((const char *)data, size, &err);
    if (!p) {
        /* Messages must be NUL-terminated, valid UTF-8 and usable in JSON. */
        json_t *m = json_string(err.message);
        if (!m || err.column == 0)
            abort();
        json_decref(m);
        return 0;
    }
    free(fql_program_dump(p));
    for (size_t i = 0; i < NEVENTS; i++) {
        int r = fql_eval(p, events[i]);
        if (r != 0 && r != 1)
            abort();
    }
    fql_free(p);

    /* The same text as a filter condition: apply and preview. */
    json_t *filter = json_pack(
        "{s:s%, s:[{s:s, s:{s:{s:[s]}, s:{s:[s]}}}, {s:s, s:{s:{s:[s, s]}}}], s:b}", "if",
        (const char *)data, size, "actions", "type", "blacklist_fields", "fields", "context",
        "fields", "ip", "properties.products", "fields", "price", "type", "whitelist_fields",
        "fields", "properties", "fields", "products", "n", "enabled", 1);
    if (!filter)
        return 0; /* not valid UTF-8: jansson refuses it, nothing to test */
    dest_filter_error ferr;
    dest_filter *f = dest_filter_compile(filter, &ferr);
    if (f) {
        for (size_t i = 0; i < NEVENTS; i++)
            json_decref(dest_filters_apply(&f, 1, events[i], false));
        dest_filter_free(f);
        json_t *req = json_pack("{s:O, s:s}", "filter", filter, "input", event_texts[0]);
        json_t *resp = req ? dest_filter_preview(req, &ferr) : NULL;
        if (req && !resp)
            abort(); /* a filter that compiles must preview a valid event */
        json_decref(resp);
        json_decref(req);
    }
    json_decref(filter);
    return 0;
}
