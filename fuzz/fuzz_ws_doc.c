/* Fuzz target: a workspace import document is an attacker's whole request body. Parsing
 * (json_parse_strict) and the shape check (import_check: sections, workspace-relative
 * names, fields) must never crash, and whatever parses must write canonically (json_write_sorted)
 * into JSON that parses back to an equal value. */
#include "api/workspace_doc.h"
#include "api/workspace_import.h"
#include "util/json.h"
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256], why[512];
    json_t *doc = json_parse_strict((const char *)data, size, err, sizeof err);
    if (!doc)
        return 0;
    (void)import_check(doc, "myworkspace", why, sizeof why);
    buf out = {0};
    json_write_sorted(&out, doc);
    json_t *again = json_parse_strict(out.data ? out.data : "", out.len, err, sizeof err);
    assert(again && json_equal(doc, again));
    json_decref(again);
    buf_free(&out);
    json_decref(doc);
    return 0;
}
