/* Sources (spec §7) and their schema config (§7.5): descriptors and hooks for the engine. */
#include "api/engine.h"
#include "store/delivery_metrics.h"
#include "util/json.h"
#include "util/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- source ---- */

static const char *const source_fields[] = {"name", "catalog_name", "labels", "display_name", "parent",
                                            "create_time", "write_keys", "library_config", "function_config", NULL};
static const char *const no_paths[] = {NULL};


static bool check_labels(call *c, json_t *labels)
{
    if (!json_is_object(labels))
        return fail(c, 400, CODE_INVALID, "source.labels must be an object of strings");
    const char *k;
    json_t *v;
    json_object_foreach(labels, k, v) {
        if (!json_is_string(v))
            return fail(c, 400, CODE_INVALID, "source.labels.%s must be a string", k);
        if (!*k || strlen(k) > 128 || json_string_length(v) > 1024)
            return fail(c, 400, CODE_INVALID, "source.labels: keys are 1 to 128 bytes, values up to 1024");
    }
    return true;
}

/* A source function's settings values (spec §7 function_config, functions-runtime.md §8):
 * [{name, value, type?}] checked against the function's definitions into {name: value}. A
 * sensitive value written back as the mask keeps nothing (a new source has none). */
static bool function_config(call *c, json_t *entries, json_t *fn, json_t *out)
{
    if (!json_is_array(entries))
        return fail(c, 400, CODE_INVALID, "source.function_config must be a list of {name, value}");
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        static const char *const fields[] = {"name", "value", "type", "display_name", NULL};
        char where[64];
        snprintf(where, sizeof where, "source.function_config[%zu]", i);
        if (!json_is_object(e) || !check_fields(c, e, where, fields))
            return json_is_object(e) ? false : fail(c, 400, CODE_INVALID, "%s must be an object", where);
        const char *n = json_string_value(json_object_get(e, "name"));
        if (!n)
            return fail(c, 400, CODE_INVALID, "%s.name is required", where);
        if (strrchr(n, '/'))
            n = strrchr(n, '/') + 1; /* a full setting name: its last segment */
        json_t *def = NULL, *s;
        size_t j;
        json_array_foreach(json_object_get(fn, "settings"), j, s) if (!strcmp(json_string_value(json_object_get(s, "name")), n)) def = s;
        if (!def)
            return fail(c, 400, CODE_INVALID, "%s: the function has no setting '%s'", where, n);
        json_t *v = json_object_get(e, "value");
        const char *type = json_string_value(json_object_get(def, "type"));
        if (!v)
            return fail(c, 400, CODE_INVALID, "%s.value is required", where);
        if (json_is_true(json_object_get(def, "sensitive")) && json_is_string(v) && !strcmp(json_string_value(v), SECRET_MASK))
            continue;
        if (type && !fn_value_fits(type, v))
            return fail(c, 400, CODE_INVALID, "%s.value does not fit the setting's type %s", where, type);
        json_object_set(out, n, v);
    }
    return true;
}

static bool source_create(call *c, json_t *obj, const char *name, json_t *body)
{
    const char *slug = strrchr(name, '/') + 1;
    if (!valid_slug(slug))
        return fail(c, 400, CODE_INVALID,
                    "invalid source slug '%s': use 1 to 100 of a-z, 0-9, '_' and '-', starting with a letter or digit", slug);
    const char *cn = json_string_value(json_object_get(obj, "catalog_name"));
    if (!cn || !*cn)
        return fail(c, 400, CODE_INVALID, "source.catalog_name is required");
    const cat_item *it = catalog_find(&c->api->cat->sources, cn);
    char *fn_name = NULL;
    json_t *fn = NULL, *fcfg = json_object_get(obj, "function_config");
    if (!it || (strchr(cn, '/') && strcmp(it->name, cn))) {
        /* Not in the catalog: "catalog/sources/<catalog_id>" of a source function (§13). */
        const char *id = strncmp(cn, "catalog/sources/", 16) ? (strchr(cn, '/') ? NULL : cn) : cn + 16;
        int rc = id ? fn_by_catalog_id(c, NULL, true, id, &fn_name, &fn) : ST_NOT_FOUND;
        if (rc == ST_ERROR)
            return fail_store(c, rc, "source function");
        if (rc != ST_OK)
            return fail(c, 400, CODE_INVALID, "unknown source.catalog_name '%s'", cn);
        it = NULL;
    }
    if (fcfg && !fn) {
        json_decref(fn);
        return fail(c, 400, CODE_INVALID, "source.function_config is only for sources of a source function");
    }
    json_t *fvals = json_object();
    if (fn && fcfg && !function_config(c, fcfg, fn, fvals)) {
        json_decref(fvals);
        json_decref(fn);
        free(fn_name);
        return false;
    }
    if (fn) {
        buf n = {0};
        buf_printf(&n, "catalog/sources/%s", json_string_value(json_object_get(fn, "catalog_id")));
        json_object_set_new(body, "catalog_name", json_string(n.data));
        json_object_set_new(body, "function", json_string(fn_name));
        json_object_set(body, "function_config", fvals);
        buf_free(&n);
        free(fn_name);
        json_decref(fn);
    }
    json_decref(fvals);
    json_t *labels = json_object_get(obj, "labels");
    if (labels && !check_labels(c, labels))
        return false;
    json_t *dn = json_object_get(obj, "display_name");
    if (dn && (!json_is_string(dn) || json_string_length(dn) > 200))
        return fail(c, 400, CODE_INVALID, "source.display_name must be a string of at most 200 bytes");
    char key[33];
    random_alnum(key, 32);
    if (it)
        json_object_set_new(body, "catalog_name", json_string(it->name));
    json_object_set_new(body, "display_name", json_string(dn && json_string_length(dn) ? json_string_value(dn) : slug));
    json_object_set_new(body, "write_keys", json_pack("[s]", key));
    json_object_set_new(body, "library_config",
                        json_pack("{s:b, s:b, s:b, s:s}", "metrics_enabled", 0, "retry_queue", 0,
                                  "cross_domain_id_enabled", 0, "api_host", ""));
    json_object_set_new(body, "labels", labels ? json_incref(labels) : json_object());
    return true;
}

/* function_config as read back: one {name, value, type} per setting of the function,
 * sensitive values masked (with their secret_version) like destination passwords. When the
 * function is gone nothing tells the secrets apart: every value is masked. */
static json_t *render_function_config(call *c, const res_row *r, const char *fname, json_t *vals)
{
    json_t *list = json_array();
    txn t;
    res_row fr = {0};
    store_begin(c->api->st, &t, false);
    int rc = store_res_get(&t, fname, &fr);
    store_end(&t);
    json_t *fn = rc == ST_OK ? json_loads(fr.body, 0, NULL) : NULL;
    res_row_clear(&fr);
    size_t i;
    json_t *s;
    if (fn) {
        json_array_foreach(json_object_get(fn, "settings"), i, s) {
            const char *n = json_string_value(json_object_get(s, "name"));
            const char *type = json_string_value(json_object_get(s, "type"));
            json_t *v = json_object_get(vals, n);
            json_t *e = json_pack("{s:s, s:o, s:s}", "name", n, "value", v ? json_incref(v) : json_string(""), "type",
                                  type ? type : "string");
            if (!v && type) { /* unset: the type's zero value */
                json_object_set_new(e, "value", !strcmp(type, "boolean") ? json_false() : !strcmp(type, "text-map") ? json_object()
                                                 : !strcmp(type, "array") ? json_array() : json_string(""));
            }
            if (v && json_is_true(json_object_get(s, "sensitive"))) {
                buf full = {0};
                buf_printf(&full, "%s/function_config/%s", r->name, n);
                json_object_set_new(e, "value", json_string(SECRET_MASK));
                json_object_set_new(e, "secret_version", secret_version(buf_cstr(&full), v));
                buf_free(&full);
            }
            json_array_append_new(list, e);
        }
        json_decref(fn);
        return list;
    }
    const char *k;
    json_t *v;
    json_object_foreach(vals, k, v) {
        buf full = {0};
        buf_printf(&full, "%s/function_config/%s", r->name, k);
        json_array_append_new(list, json_pack("{s:s, s:s, s:o, s:s}", "name", k, "value", SECRET_MASK, "secret_version",
                                              secret_version(buf_cstr(&full), v), "type", "string"));
        buf_free(&full);
    }
    return list;
}

static json_t *source_render(call *c, const res_row *r, json_t *body)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "parent", json_string(r->parent));
    const char *keys[] = {"catalog_name", "display_name", "write_keys", "library_config", "labels"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(body, keys[i]);
        json_object_set(o, keys[i], v ? v : json_null());
    }
    json_object_set_new(o, "create_time", json_string(r->create_time));
    const char *fname = json_string_value(json_object_get(body, "function"));
    if (fname)
        json_object_set_new(o, "function_config", render_function_config(c, r, fname, json_object_get(body, "function_config")));
    return o;
}

/* A source function's instance renders its function's current settings: never from a view. */
static bool source_live(const res_row *r) { return r->body && strstr(r->body, "\"function\":\"workspaces/"); }

/* The schema config is born with its source, holding the defaults of §7.5. */
static const char *const sc_bools[] = {
    "allow_unplanned_track_events", "allow_unplanned_identify_traits", "allow_unplanned_group_traits",
    "allow_unplanned_track_event_properties", "allow_track_event_on_violations",
    "allow_identify_traits_on_violations", "allow_group_traits_on_violations",
    "allow_track_properties_on_violations", NULL};
static const char *const sc_order[] = {
    "allow_unplanned_track_events", "allow_unplanned_identify_traits", "allow_unplanned_group_traits",
    "forwarding_blocked_events_to", "allow_unplanned_track_event_properties", "allow_track_event_on_violations",
    "allow_identify_traits_on_violations", "allow_group_traits_on_violations", "forwarding_violations_to",
    "allow_track_properties_on_violations", "common_track_event_on_violations",
    "common_identify_event_on_violations", "common_group_event_on_violations", NULL};

static json_t *sc_defaults(void)
{
    json_t *o = json_object();
    for (const char *const *k = sc_order; *k; k++) {
        if (!strncmp(*k, "forwarding_", 11))
            json_object_set_new(o, *k, json_string(""));
        else if (!strncmp(*k, "common_", 7))
            json_object_set_new(o, *k, json_string("ALLOW"));
        else
            json_object_set_new(o, *k, json_true());
    }
    return o;
}

static bool source_after_create(call *c, txn *t, const res_row *src)
{
    json_t *d = sc_defaults();
    res_row r = {0};
    buf n = {0};
    buf_printf(&n, "%s/schema-config", src->name);
    r.name = n.data;
    r.parent = src->name;
    r.workspace = src->workspace;
    r.kind = "schema_config";
    r.id = "schema-config";
    r.body = json_to_string(d);
    r.version = 1;
    memcpy(r.create_time, src->create_time, sizeof r.create_time);
    memcpy(r.update_time, src->create_time, sizeof r.update_time);
    int rc = store_res_insert(t, &r);
    free(r.body);
    buf_free(&n);
    json_decref(d);
    return rc == ST_OK || fail_store(c, rc, "schema config");
}

/* The write key is the row's secondary key: the intake finds a source by it
 * (store_res_list_ref) without reading every source. */
static const char *source_ref(json_t *body)
{
    return json_string_value(json_array_get(json_object_get(body, "write_keys"), 0));
}

/* Deleting a source: its tracking-plan connection goes (tp_source_deleted), and so do
 * the delivery metrics of every destination under it (the destinations themselves go
 * with the engine's subtree delete, which runs no per-destination hook). */
static bool source_before_delete(call *c, txn *t, const res_row *r)
{
    if (!tp_source_deleted(c, t, r))
        return false;
    int rc = store_dm_delete_tree(t, r->name);
    return rc == ST_OK || fail_store(c, rc, "destination metrics");
}

/* Exported as created: catalog name, display name, labels and a source function's
 * settings values as [{name, value}] by name (sensitive ones redacted unless secrets). The
 * write key is made anew by each create: not part of the document. */
static json_t *source_export(call *c, const res_row *r, json_t *body, bool secrets)
{
    (void)r;
    json_t *o = json_object();
    const char *keys[] = {"catalog_name", "display_name", "labels"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(body, keys[i]);
        json_object_set_new(o, keys[i], v ? json_incref(v) : json_null());
    }
    const char *fname = json_string_value(json_object_get(body, "function"));
    if (!fname)
        return o;
    json_t *fn = NULL;
    char *fn_name = NULL;
    const char *cid = strrchr(fname, '/') ? strrchr(fname, '/') + 6 : ""; /* after "sfnc_" */
    if (fn_by_catalog_id(c, NULL, true, cid, &fn_name, &fn) != ST_OK)
        fn = NULL; /* the function is gone: nothing tells the secrets apart, all redacted */
    json_t *list = json_array();
    json_t *v;
    json_t *vals = json_object_get(body, "function_config");
    /* by name: walk the keys in sorted order */
    size_t n;
    const char **names = json_sorted_keys(vals, &n);
    for (size_t i = 0; i < n; i++) {
        bool sensitive = !fn;
        size_t j;
        json_t *d;
        json_array_foreach(json_object_get(fn, "settings"), j, d) if (!strcmp(json_string_value(json_object_get(d, "name")) ?: "", names[i]))
            sensitive = json_is_true(json_object_get(d, "sensitive"));
        v = json_object_get(vals, names[i]);
        json_array_append_new(list, json_pack("{s:s, s:o}", "name", names[i], "value",
                                              sensitive && !secrets ? json_string(EXPORT_REDACTED) : json_incref(v)));
    }
    free(names);
    json_decref(fn);
    free(fn_name);
    json_object_set_new(o, "function_config", list);
    return o;
}

const kind kind_source = {
    .name = "source",
    .collection = "sources",
    .list_key = "sources",
    .id_mode = ID_FROM_NAME,
    .fields = source_fields,
    .mask_paths = no_paths,
    .create = source_create,
    .render = source_render,
    .after_create = source_after_create,
    .before_delete = source_before_delete,
    .ref = source_ref,
    .live = source_live,
    .export = source_export,
};

/* ---- schema config ---- */

static const char *const sc_fields[] = {
    "name", "parent", "allow_unplanned_track_events", "allow_unplanned_identify_traits",
    "allow_unplanned_group_traits", "forwarding_blocked_events_to", "allow_unplanned_track_event_properties",
    "allow_track_event_on_violations", "allow_identify_traits_on_violations", "allow_group_traits_on_violations",
    "forwarding_violations_to", "allow_track_properties_on_violations", "common_track_event_on_violations",
    "common_identify_event_on_violations", "common_group_event_on_violations", NULL};

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list))
            return true;
    return false;
}

static bool sc_update(call *c, json_t *body, const char *path, json_t *value, const char *name)
{
    if (in_list(path, sc_bools)) {
        if (value && !json_is_boolean(value))
            return fail(c, 400, CODE_INVALID, "schema_config.%s must be a boolean", path);
        json_object_set_new(body, path, value ? json_incref(value) : json_false());
        return true;
    }
    const char *s = value ? json_string_value(value) : "";
    if (!s)
        return fail(c, 400, CODE_INVALID, "schema_config.%s must be a string", path);
    if (!strncmp(path, "common_", 7)) {
        static const char *const track[] = {"ALLOW", "OMIT_PROPERTIES", "BLOCK", NULL};
        static const char *const traits[] = {"ALLOW", "OMIT_TRAITS", "BLOCK", NULL};
        const char *const *ok = strstr(path, "track") ? track : traits;
        if (!value)
            s = "ALLOW"; /* the enum's zero value */
        if (!in_list(s, ok))
            return fail(c, 400, CODE_INVALID, "schema_config.%s must be one of %s, %s, %s", path, ok[0], ok[1], ok[2]);
        json_object_set_new(body, path, json_string(s));
        return true;
    }
    /* forwarding_*_to: "" or the slug of another source of this workspace. */
    if (*s) {
        char src[512];
        const char *cut = strstr(name, "/sources/");
        snprintf(src, sizeof src, "%.*s/sources/%s", cut ? (int)(cut - name) : 0, name, s);
        const char *self_end = strstr(name, "/schema-config");
        if (!valid_slug(s) || (self_end && (size_t)(self_end - name) == strlen(src) && !strncmp(name, src, strlen(src))))
            return fail(c, 400, CODE_INVALID, "schema_config.%s must name another source of this workspace", path);
        txn t;
        res_row r = {0};
        int rc;
        if (c->tx) { /* an import: the source may be one it created */
            rc = store_res_get(c->tx, src, &r);
        } else {
            store_begin(c->api->st, &t, false);
            rc = store_res_get(&t, src, &r);
            store_end(&t);
        }
        bool is_source = rc == ST_OK && !strcmp(r.kind, "source");
        res_row_clear(&r);
        if (rc == ST_ERROR)
            return fail_store(c, rc, "source");
        if (!is_source)
            return fail(c, 400, CODE_INVALID, "schema_config.%s: unknown source '%s'", path, s);
    }
    json_object_set_new(body, path, json_string(s));
    return true;
}

static json_t *sc_render(call *c, const res_row *r, json_t *body)
{
    (void)c;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "parent", json_string(r->parent));
    json_t *d = sc_defaults();
    for (const char *const *k = sc_order; *k; k++) {
        json_t *v = json_object_get(body, *k);
        json_object_set(o, *k, v ? v : json_object_get(d, *k));
    }
    json_decref(d);
    return o;
}

static json_t *sc_export(call *c, const res_row *r, json_t *body, bool secrets)
{
    (void)secrets;
    json_t *o = sc_render(c, r, body);
    json_object_del(o, "name");
    json_object_del(o, "parent");
    return o;
}

const kind kind_schema_config = {
    .name = "schema_config",
    .collection = "schema-config",
    .list_key = "schema_configs",
    .id_mode = ID_SINGLETON,
    .fields = sc_fields,
    .mask_paths = sc_fields + 2,
    .update = sc_update,
    .render = sc_render,
    .export = sc_export,
};
