/*
 * fuzz_schema.c — libFuzzer target for src/schema: compile a schema, validate an
 * instance in both modes and through a view of its own, render the violations, and
 * (sometimes) run the meta-schema check. Must never crash, leak or hang; the modes and
 * the views must agree.
 *
 * Input: one flag byte, then a JSON schema, then the instance (whatever follows the
 * schema's closing token). Flags: bit 0 asserts "format"; bits 1-2 force a draft
 * (0 = from "$schema", 1 = draft-04, 2 = draft-06, 3 = draft-07); bit 3 runs
 * schema_meta_check. Remote $refs resolve to the meta-schemas (loaded from
 * data/metaschemas when run from the repository root) and to one fixed document.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "util/jview.h"

static schema_meta_t *meta;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    meta = schema_meta_load("data/metaschemas", NULL);
    return 0;
}

static json_t *loader(const char *uri, void *ctx)
{
    (void)ctx;
    json_t *j = meta ? schema_meta_loader(uri, meta) : NULL;
    if (j)
        return j;
    if (strcmp(uri, "http://example.com/remote.json") == 0)
        return json_loads("{\"definitions\": {\"int\": {\"type\": \"integer\"},"
                          " \"ref\": {\"$ref\": \"#/definitions/int\"},"
                          " \"back\": {\"$ref\": \"http://example.com/remote.json#/definitions/ref\"}}}",
                          0, NULL);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned flags = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    json_error_t je;
    json_t *schema = json_loadb(text, len,
                                JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY | JSON_ALLOW_NUL |
                                    JSON_REJECT_DUPLICATES,
                                &je);
    if (!schema)
        return 0;
    size_t used = je.position > 0 && (size_t)je.position <= len ? (size_t)je.position : len;
    json_t *inst = json_loadb(text + used, len - used, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!inst)
        inst = json_object();

    static const schema_draft_t drafts[] = {SCHEMA_DRAFT_AUTO, SCHEMA_DRAFT4, SCHEMA_DRAFT6,
                                            SCHEMA_DRAFT7};
    schema_draft_t draft = drafts[(flags >> 1) & 3];
    schema_options_t opts = {draft,
                             (draft ? SCHEMA_OPT_FORCE_DRAFT : 0u) |
                                 ((flags & 1) ? SCHEMA_OPT_FORMAT_ASSERT : 0u),
                             loader, NULL, NULL};
    schema_error_t err;
    if ((flags & 8) && meta)
        schema_meta_check(meta, schema, &err);
    schema_t *s = schema_compile(schema, &opts, &err);
    if (s) {
        schema_result_t r = {0};
        bool quick = schema_validate(s, inst, NULL);
        bool full = schema_validate(s, inst, &r);
        if (quick != full || full != (r.count == 0))
            abort();
        /* a view built by the caller gives the same answer */
        jview_doc_t *d = jview_doc_new();
        const jview_t *v = d ? jview_add(d, inst) : NULL;
        schema_result_t r2 = {0};
        if (v && (schema_validate_view(s, v, &r2) != full || r2.count != r.count))
            abort();
        schema_result_free(&r2);
        jview_doc_free(d);
        for (size_t i = 0; i < r.count; i++) {
            const schema_violation_t *v = schema_result_item(&r, i);
            if (!v || !v->path || !v->message || !v->keyword || !v->schema_path ||
                v->path[0] != (v->path_len ? '/' : '\0'))
                abort();
        }
        json_t *out = schema_result_json(&r);
        if (!out)
            abort(); /* every string of a violation must be valid UTF-8 */
        free(json_dumps(out, JSON_COMPACT));
        json_decref(out);
        schema_result_free(&r);
        schema_free(s);
    } else if (err.message[0] == '\0') {
        abort(); /* every failure explains itself */
    }
    json_decref(inst);
    json_decref(schema);
    return 0;
}
