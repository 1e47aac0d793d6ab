/* POST /v1beta/workspaces/{ws}:import — makes the workspace what a canonical document
 * (docs/export-import.md) says, in ONE transaction: every resource of the document is
 * created, updated or left unchanged, and every resource of an exported kind that the
 * document does not name is deleted. Each change goes through the engine's cores
 * (engine_create_in / engine_update_in / engine_delete_in) with the kind's own hooks, so
 * it is validated and audited exactly as the ordinary API call would be; the first change
 * that fails rolls everything back and answers 400 (or the hook's status) naming the
 * resource. ?validate_only=true runs the same import and rolls it back: the answer is the
 * plan, {"changes": [{"action", "name"}]}, and nothing is stored.
 *
 * import_check (the document's shape) is the entry point of fuzz/fuzz_ws_doc.c. */
#include "api/workspace_import.h"
#include "api/workspace_doc.h"
#include "util/json.h"
#include "util/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHY_MAX 512

/* ---- the document's shape ------------------------------------------------------------ */

/* a function's type is a top-level create field */
static bool field_ok(const kind *k, const char *key)
{
    return !strcmp(key, "name") || str_in(k->fields, key) || str_in(k->top_fields, key);
}

bool import_check(const json_t *doc, const char *ws_slug, char *why, size_t cap)
{
    if (!json_is_object(doc))
        return snprintf(why, cap, "the document must be a JSON object"), false;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)doc, key, v) {
        bool known = !strcmp(key, "version") || !strcmp(key, "workspace");
        for (size_t i = 0; i < doc_nsections && !known; i++)
            known = !strcmp(key, doc_sections[i].key);
        if (!known)
            return snprintf(why, cap, "unknown field '%s' in the document", key), false;
    }
    json_t *ver = json_object_get(doc, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) != WS_DOC_VERSION)
        return snprintf(why, cap, "version must be %d", WS_DOC_VERSION), false;
    const char *ws = json_string_value(json_object_get(doc, "workspace"));
    if (!ws)
        return snprintf(why, cap, "workspace is required: the slug of the workspace it is imported into"), false;
    if (strcmp(ws, ws_slug))
        return snprintf(why, cap, "the document is for workspace '%.100s', not '%.100s' (edit its \"workspace\" "
                                  "to import it here)", ws, ws_slug), false;
    for (size_t i = 0; i < doc_nsections; i++) {
        const doc_section *s = &doc_sections[i];
        json_t *arr = json_object_get(doc, s->key);
        if (!arr)
            continue;
        if (!json_is_array(arr))
            return snprintf(why, cap, "%s must be a list", s->key), false;
        size_t j;
        json_t *e;
        json_array_foreach(arr, j, e) {
            if (!json_is_object(e))
                return snprintf(why, cap, "%s[%zu] must be an object", s->key, j), false;
            const char *name = json_string_value(json_object_get(e, "name"));
            if (!name)
                return snprintf(why, cap, "%s[%zu].name is required (a name relative to the workspace)", s->key, j),
                       false;
            char w[200];
            if (!doc_name_ok(s, name, w, sizeof w))
                return snprintf(why, cap, "%s[%zu].name '%.200s': %s", s->key, j, name, w), false;
            json_object_foreach(e, key, v) if (!field_ok(s->k, key))
                return snprintf(why, cap, "%s[%zu] (%.200s): unknown field '%s'", s->key, j, name, key), false;
            for (size_t m = 0; m < j; m++)
                if (!strcmp(json_string_value(json_object_get(json_array_get(arr, m), "name")), name))
                    return snprintf(why, cap, "%s: '%.200s' is named twice", s->key, name), false;
        }
    }
    return true;
}

/* ---- secrets ------------------------------------------------------------------------- */

/* Replaces every "<redacted>" in d by the value at the same place in cur (the resource as
 * stored, secrets in clear): "keep the current value". Lists of {name, …} match by name.
 * False, with the place in where, when cur has no value there. */
static bool restore_secrets(json_t *d, const json_t *cur, buf *where)
{
    size_t mark = where->len;
    if (json_is_object(d)) {
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(d, tmp, k, v) {
            json_t *cv = json_object_get(cur, k);
            if (json_is_string(v) && !strcmp(json_string_value(v), EXPORT_REDACTED)) {
                if (!cv || (json_is_string(cv) && !strcmp(json_string_value(cv), EXPORT_REDACTED))) {
                    buf_printf(where, ".%s", k);
                    return false;
                }
                json_object_set(d, k, (json_t *)cv);
                continue;
            }
            buf_printf(where, ".%s", k);
            if (!restore_secrets(v, cv, where))
                return false;
            where->len = mark;
            if (where->data)
                where->data[mark] = '\0';
        }
    } else if (json_is_array(d)) {
        size_t i;
        json_t *v;
        json_array_foreach(d, i, v) {
            const json_t *cv = NULL;
            const char *n = json_string_value(json_object_get(v, "name"));
            if (n) { /* by name: the lists are by setting name, and documents are edited */
                size_t j;
                json_t *x;
                json_array_foreach((json_t *)cur, j, x) if (json_is_object(x) &&
                                                            !strcmp(json_string_value(json_object_get(x, "name")) ?: "", n))
                    cv = x;
                buf_printf(where, "[%s]", n);
            } else {
                cv = json_array_get(cur, i);
                buf_printf(where, "[%zu]", i);
            }
            if (json_is_string(v) && !strcmp(json_string_value(v), EXPORT_REDACTED)) {
                if (!cv)
                    return false;
                json_array_set(d, i, (json_t *)cv);
            } else if (!restore_secrets(v, cv, where)) {
                return false;
            }
            where->len = mark;
            if (where->data)
                where->data[mark] = '\0';
        }
    }
    return true;
}

/* ---- applying ------------------------------------------------------------------------ */

/* The failure a hook answered, named after the resource: "workspaces/w/…: message". */
static void name_failure(call *c, const char *full)
{
    json_t *e = json_loadb(c->resp->body.data ? c->resp->body.data : "", c->resp->body.len, 0, NULL);
    const char *msg = json_string_value(json_object_get(e, "error"));
    int code = (int)json_integer_value(json_object_get(e, "code"));
    char *m = strdup(msg ? msg : "failed");
    fail(c, c->resp->status >= 400 ? c->resp->status : 400, code ? code : CODE_INVALID, "%s: %s", full, m);
    free(m);
    json_decref(e);
}

static void add_change(json_t *changes, const char *action, const char *rel)
{
    json_array_append_new(changes, json_pack("{s:s, s:s}", "action", action, "name", rel));
}

typedef struct import_run {
    call *c;
    txn *t;
    json_t *changes;
    bool touched[16]; /* per section: something changed (after_commit hooks) */
    bool dropped;     /* policies went with a deleted resource: forget cached grants */
    const char *ws;
} import_run;

/* Updates full from obj (the document's form, secrets restored) where it differs from cur. */
static bool apply_update(import_run *run, const doc_section *s, const char *full, json_t *obj, json_t *cur)
{
    call *c = run->c;
    const kind *k = s->k;
    json_t *paths = json_array();
    json_t *keys = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) json_object_set_new(keys, key, json_true());
    json_object_foreach(cur, key, v) json_object_set_new(keys, key, json_true());
    bool ok = true;
    json_object_foreach(keys, key, v) {
        json_t *want = json_object_get(obj, key), *have = json_object_get(cur, key);
        if (json_equal(want, have) || (!want && json_is_null(have)))
            continue;
        if (!str_in(k->mask_paths, key)) {
            ok = fail(c, 400, CODE_INVALID,
                      "%s: %s cannot be changed in place (the API has no update for it): delete the %s in one "
                      "import and create it in the next",
                      full, key, k->name);
            break;
        }
        json_array_append_new(paths, json_string(key));
    }
    if (ok) {
        res_row r = {0};
        /* replace: the resource ends up holding exactly the document's entries */
        int rc = engine_update_in(c, run->t, k, full, obj, paths, false, true, &r, NULL);
        res_row_clear(&r);
        if (rc < 0)
            fail(c, 503, CODE_UNAVAILABLE, "the resource is being changed concurrently; retry");
        if (rc != 1) {
            name_failure(c, full);
            ok = false;
        }
    }
    json_decref(keys);
    json_decref(paths);
    return ok;
}

static bool apply_create(import_run *run, const doc_section *s, const char *full, json_t *obj)
{
    call *c = run->c;
    const kind *k = s->k;
    if (k->id_mode == ID_SINGLETON) { /* born with its parent: the parent is missing */
        return fail(c, 400, CODE_INVALID, "%s: its %s is neither in the workspace nor in the document", full,
                    k == &kind_schema_config ? "source" : "parent");
    }
    if (k->id_mode == ID_GENERATED) {
        /* The document's id is kept (exports stay identical across workspaces); it must be
         * one the server could have made: the kind's prefix and a KSUID-like tail. */
        const char *prefix = k->id_prefix_for ? k->id_prefix_for(c, obj, obj) : k->id_prefix;
        if (!prefix) {
            name_failure(c, full);
            return false;
        }
        const char *id = strrchr(full, '/') + 1;
        size_t pl = strlen(prefix);
        bool good = !strncmp(id, prefix, pl) && id[pl];
        for (const char *p = id + pl; good && *p; p++)
            good = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z');
        if (!good)
            return fail(c, 400, CODE_INVALID, "%s: a %s id must be %s followed by letters and digits", full, k->name,
                        prefix);
    }
    if (k == &kind_policy) { /* its resource is relative to the workspace in the document */
        const char *res = json_string_value(json_object_get(obj, "resource"));
        if (res) {
            buf b = {0};
            buf_printf(&b, "workspaces/%s%s%s", run->ws, *res ? "/" : "", res);
            json_object_set_new(obj, "resource", json_string(buf_cstr(&b)));
            buf_free(&b);
        }
    }
    bool ok;
    if (k->import_create) {
        ok = k->import_create(c, run->t, full, obj);
    } else {
        char *parent = strndup(full, (size_t)(strrchr(full, '/') - full));
        *strrchr(parent, '/') = '\0'; /* without "/<collection>" */
        json_t *stored = json_object();
        res_row r = {0};
        ok = engine_create_in(c, run->t, k, parent, full, obj, stored, &r);
        free(r.body);
        free(r.view);
        json_decref(stored);
        free(parent);
    }
    if (!ok)
        name_failure(c, full);
    return ok;
}

static bool apply_section(import_run *run, size_t si, json_t *entries)
{
    call *c = run->c;
    const doc_section *s = &doc_sections[si];
    json_t *cur = doc_current(c, run->t, s, true);
    if (!cur)
        return false;
    bool ok = true;
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        const char *rel = json_string_value(json_object_get(e, "name"));
        buf full = {0};
        buf_printf(&full, "workspaces/%s/%s", run->ws, rel);
        json_t *obj = json_deep_copy(e);
        json_object_del(obj, "name");
        json_t *have = json_object_get(cur, rel);
        buf where = {0};
        buf_puts(&where, s->k->name);
        if (!restore_secrets(obj, have, &where)) {
            ok = fail(c, 400, CODE_INVALID,
                      "%s: %s is \"%s\" and the workspace has no value to keep: give the value", buf_cstr(&full),
                      buf_cstr(&where), EXPORT_REDACTED);
        } else if (have && json_equal(obj, have)) {
            add_change(run->changes, "unchanged", rel);
        } else if (have) {
            ok = apply_update(run, s, buf_cstr(&full), obj, have);
            if (ok)
                add_change(run->changes, "update", rel), run->touched[si] = true;
        } else {
            ok = apply_create(run, s, buf_cstr(&full), obj);
            if (ok)
                add_change(run->changes, "create", rel), run->touched[si] = true;
        }
        buf_free(&where);
        json_decref(obj);
        buf_free(&full);
        if (!ok)
            break;
    }
    json_decref(cur);
    return ok;
}

/* Deletes the section's resources that the document does not name. */
static bool delete_section(import_run *run, size_t si, json_t *entries)
{
    call *c = run->c;
    const doc_section *s = &doc_sections[si];
    if (s->k->id_mode == ID_SINGLETON)
        return true; /* goes with its parent */
    json_t *cur = doc_current(c, run->t, s, false);
    if (!cur)
        return false;
    json_t *named = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) json_object_set_new(named, json_string_value(json_object_get(e, "name")), json_true());
    /* in the store's order (by name), so that plans are stable */
    const char **names = calloc(json_object_size(cur) + 1, sizeof *names);
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(cur, k, v) if (!json_object_get(named, k)) names[n++] = k;
    bool ok = true;
    for (size_t j = 0; j < n && ok; j++) {
        buf full = {0};
        buf_printf(&full, "workspaces/%s/%s", run->ws, names[j]);
        ok = engine_delete_in(c, run->t, s->k, buf_cstr(&full), false, &run->dropped);
        if (ok)
            add_change(run->changes, "delete", names[j]), run->touched[si] = true;
        else
            name_failure(c, buf_cstr(&full));
        buf_free(&full);
    }
    free(names);
    json_decref(named);
    json_decref(cur);
    return ok;
}

void h_ws_import(call *c)
{
    bool dry;
    if (!engine_validate_only(c, &dry))
        return;
    json_t *doc = call_body(c);
    if (!doc)
        return;
    char why[WHY_MAX];
    if (!import_check(doc, c->ws.slug, why, sizeof why))
        return (void)fail(c, 400, CODE_INVALID, "%s", why);
    txn t;
    if (store_begin(c->api->st, &t, true) != ST_OK)
        return (void)fail_store(c, ST_ERROR, "workspace");
    import_run run = {.c = c, .t = &t, .changes = json_array(), .ws = c->ws.slug};
    json_t *empty = json_array();
    c->tx = &t;
    bool ok = true;
    for (size_t i = 0; i < doc_nsections && ok; i++) {
        json_t *arr = json_object_get(doc, doc_sections[i].key);
        ok = apply_section(&run, i, arr ? arr : empty);
    }
    for (size_t i = doc_nsections; i-- > 0 && ok;) {
        json_t *arr = json_object_get(doc, doc_sections[i].key);
        ok = delete_section(&run, i, arr ? arr : empty);
    }
    c->tx = NULL;
    json_decref(empty);
    if (!ok || dry) {
        store_rollback(&t);
    } else if (store_commit(&t) != ST_OK) {
        fail_store(c, ST_ERROR, "workspace");
        ok = false;
    } else {
        /* what the ordinary calls do once they have committed */
        if (run.dropped)
            auth_forget_all();
        for (size_t i = 0; i < doc_nsections; i++)
            if (run.touched[i] && doc_sections[i].k->after_commit)
                doc_sections[i].k->after_commit(c);
    }
    if (ok)
        reply(c, json_pack("{s:O}", "changes", run.changes));
    json_decref(run.changes);
}
