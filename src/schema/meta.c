/*
 * meta.c — checks that a schema is itself valid, for the API's 400 answers: it must
 * compile (which gives precise messages for bad regexes, unknown types and dangling
 * $refs) and validate against the meta-schema its "$schema" names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/internal.h"

struct schema_meta {
    json_t *doc4, *doc7;
    schema_t *s4, *s7;
};

static json_t *load_file(const char *dir, const char *name, schema_error_t *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        schema_set_error(err, "", 0, "cannot load %s: %s", path, je.text);
    return j;
}

json_t *schema_meta_loader(const char *uri, void *ctx)
{
    const schema_meta_t *m = ctx;
    switch (schema_draft_of_uri(uri)) {
    case SCHEMA_DRAFT4:
        return json_incref(m->doc4);
    case SCHEMA_DRAFT6:
    case SCHEMA_DRAFT7:
        return json_incref(m->doc7);
    default:
        return NULL;
    }
}

schema_meta_t *schema_meta_load(const char *dir, schema_error_t *err)
{
    schema_meta_t *m = calloc(1, sizeof *m);
    if (!m) {
        schema_set_error(err, "", 0, "out of memory");
        return NULL;
    }
    m->doc4 = load_file(dir, "draft-04-schema.json", err);
    m->doc7 = m->doc4 ? load_file(dir, "draft-07-schema.json", err) : NULL;
    if (m->doc7) {
        /* "format": "regex" on "pattern" is the one format worth asserting here: the
         * uri formats would reject the JSON-pointer-like ids of Segment's plans. */
        uint64_t formats = 1u << FMT_REGEX_ID;
        schema_options_t o4 = {SCHEMA_DRAFT4, SCHEMA_OPT_FORCE_DRAFT, schema_meta_loader, m, NULL};
        schema_options_t o7 = {SCHEMA_DRAFT7, SCHEMA_OPT_FORCE_DRAFT, schema_meta_loader, m, NULL};
        m->s4 = schema_compile_ex(m->doc4, &o4, formats, err);
        m->s7 = m->s4 ? schema_compile_ex(m->doc7, &o7, formats, err) : NULL;
    }
    if (!m->s7) {
        schema_meta_free(m);
        return NULL;
    }
    return m;
}

void schema_meta_free(schema_meta_t *m)
{
    if (!m)
        return;
    schema_free(m->s4);
    schema_free(m->s7);
    json_decref(m->doc4);
    json_decref(m->doc7);
    free(m);
}

bool schema_meta_check(const schema_meta_t *m, json_t *schema, schema_error_t *err)
{
    if (!json_is_object(schema) && !json_is_boolean(schema)) {
        schema_set_error(err, "", 0, "a schema must be an object or a boolean");
        return false;
    }
    schema_draft_t draft = SCHEMA_DRAFT7;
    json_t *sv = json_is_object(schema) ? json_object_get(schema, "$schema") : NULL;
    if (sv) {
        draft = json_is_string(sv) ? schema_draft_of_uri(json_string_value(sv)) : SCHEMA_DRAFT_AUTO;
        if (draft == SCHEMA_DRAFT_AUTO) {
            schema_set_error(err, "/$schema", 8,
                             "unsupported $schema: use http://json-schema.org/draft-07/schema# "
                             "or http://json-schema.org/draft-04/schema#");
            return false;
        }
    }
    schema_options_t opts = {draft, 0, schema_meta_loader, (void *)m, NULL};
    schema_t *s = schema_compile(schema, &opts, err);
    if (!s)
        return false;
    schema_free(s);

    schema_result_t r = {0};
    bool ok = schema_validate(draft == SCHEMA_DRAFT4 ? m->s4 : m->s7, schema, &r);
    if (!ok) {
        /* the deepest location is the most specific one */
        const schema_violation_t *best = NULL;
        for (size_t i = 0; i < r.count; i++) {
            const schema_violation_t *v = schema_result_item(&r, i);
            if (v && (!best || v->path_len > best->path_len))
                best = v;
        }
        if (best)
            schema_set_error(err, best->path, best->path_len, "not a valid %s schema: %s",
                             draft == SCHEMA_DRAFT4 ? "draft-04" : "draft-07", best->message);
        else
            schema_set_error(err, "", 0, "not a valid schema");
    }
    schema_result_free(&r);
    return ok;
}
