/* libFuzzer target for filter preview (POST /v1beta/filters/preview, spec config-api.md
 * §10.6).
 *
 * The input is a request body, arbitrary bytes. It is parsed as the API parses bodies
 * (json_parse_strict) and handed to dest_filter_preview, as h_filter_preview does. Every
 * answer is checked against the preview contract:
 *   - success: an object with exactly the strings "input", "output" and "diff"; "input"
 *     is the request's input byte for byte; "output" is "null" or JSON text that parses;
 *     every diff line starts with ' ', '-' or '+'; the API's writer can serialise it;
 *   - failure: a non-empty message that is valid UTF-8 (it becomes the 400 body).
 * The same bytes, when they are valid UTF-8, are also previewed as the event text
 * ("input") under a few fixed filters, which drives the event parser, the actions, the
 * pretty-printer and the diff with arbitrary events. Must never crash, hang or leak.
 *
 *   make fuzz && build/fuzz/fuzz_preview fuzz/corpus/preview -max_total_time=300 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filters/filters.h"
#include "util/json.h"

static const char *const fixed_filters[] = {
    "{\"if\": \"all\", \"actions\": [{\"type\": \"blacklist_fields\", \"fields\": "
    "{\"properties\": {\"fields\": [\"name\", \"age\"]}, \"\": {\"fields\": [\"userId\"]}, "
    "\"properties.products\": {\"fields\": [\"price\"]}}}]}",
    "{\"if\": \"type = 'track' or length( userId ) < 1\", \"actions\": [{\"type\": \"whitelist_fields\", "
    "\"fields\": {\"context\": {\"fields\": [\"ip\"]}, \"properties\": {\"fields\": []}}}]}",
    "{\"if\": \"contains( event, 'a' ) or 'x' in properties.tags\", \"actions\": [{\"type\": \"drop_event\"}]}",
    "{\"if\": \"all\", \"actions\": [{\"type\": \"sample_event\", \"percent\": 0.5, \"path\": \"userId\"}]}",
};
#define NFIXED (sizeof fixed_filters / sizeof fixed_filters[0])
static json_t *filters[NFIXED];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < NFIXED; i++) {
        filters[i] = json_loads(fixed_filters[i], 0, NULL);
        if (!filters[i])
            abort();
    }
    return 0;
}

/* A UTF-8 check that jansson itself applies: json_stringn refuses invalid UTF-8. */
static void check_message(const dest_filter_error *err)
{
    size_t n = strnlen(err->message, sizeof err->message);
    if (n == 0 || n == sizeof err->message)
        abort();
    json_t *m = json_stringn(err->message, n);
    if (!m)
        abort();
    json_decref(m);
}

static void check_response(const json_t *req, json_t *resp)
{
    if (!json_is_object(resp) || json_object_size(resp) != 3)
        abort();
    const json_t *in = json_object_get(resp, "input");
    const json_t *out = json_object_get(resp, "output");
    const json_t *diff = json_object_get(resp, "diff");
    const json_t *want = json_object_get(req, "input");
    if (!json_is_string(in) || !json_is_string(out) || !json_is_string(diff) || !json_is_string(want))
        abort();
    /* input echoes the request unchanged */
    if (json_string_length(in) != json_string_length(want) ||
        memcmp(json_string_value(in), json_string_value(want), json_string_length(want)))
        abort();
    /* output is "null" or parses back */
    if (strcmp(json_string_value(out), "null")) {
        json_error_t je;
        json_t *o = json_loadb(json_string_value(out), json_string_length(out), JSON_ALLOW_NUL, &je);
        if (!o && strstr(je.text, "too big integer")) /* an event read as doubles (> 64-bit ints) */
            o = json_loadb(json_string_value(out), json_string_length(out),
                           JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
        if (!json_is_object(o))
            abort();
        json_decref(o);
    }
    /* every diff line carries its one-character prefix */
    const char *d = json_string_value(diff), *end = d + json_string_length(diff);
    for (const char *line = d; line <= end;) {
        if (line == end || (*line != ' ' && *line != '-' && *line != '+'))
            abort();
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            break;
        line = nl + 1;
    }
    /* the API writer serialises the response */
    free(json_to_string(resp));
}

static void preview(const json_t *req)
{
    dest_filter_error err;
    memset(&err, 0, sizeof err);
    json_t *resp = dest_filter_preview(req, &err);
    if (resp)
        check_response(req, resp);
    else
        check_message(&err);
    json_decref(resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char perr[256];
    json_t *req = json_parse_strict((const char *)data, size, perr, sizeof perr);
    if (req) {
        preview(req);
        json_decref(req);
    }
    /* The bytes as the event text under fixed filters. */
    json_t *input = json_stringn((const char *)data, size);
    if (!input)
        return 0; /* not valid UTF-8: it could never arrive inside a JSON request */
    for (size_t i = 0; i < NFIXED; i++) {
        json_t *r = json_pack("{s:O, s:O}", "filter", filters[i], "input", input);
        if (!r)
            abort();
        preview(r);
        json_decref(r);
    }
    json_decref(input);
    return 0;
}

/* Keep the fixed filters alive for the whole run; free them at exit for LeakSanitizer. */
static void __attribute__((destructor)) free_filters(void)
{
    for (size_t i = 0; i < NFIXED; i++)
        json_decref(filters[i]);
}
