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
                                            "create_time", "write_keys", "library_config", NULL};
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
    if (!it || (strchr(cn, '/') && strcmp(it->name, cn)))
        return fail(c, 400, CODE_INVALID, "unknown source.catalog_name '%s'", cn);
    json_t *labels = json_object_get(obj, "labels");
    if (labels && !check_labels(c, labels))
        return false;
    json_t *dn = json_object_get(obj, "display_name");
    if (dn && (!json_is_string(dn) || json_string_length(dn) > 200))
        return fail(c, 400, CODE_INVALID, "source.display_name must be a string of at most 200 bytes");
    char key[33];
    random_alnum(key, 32);
    json_object_set_new(body, "catalog_name", json_string(it->name));
    json_object_set_new(body, "display_name", json_string(dn && json_string_length(dn) ? json_string_value(dn) : slug));
    json_object_set_new(body, "write_keys", json_pack("[s]", key));
    json_object_set_new(body, "library_config",
                        json_pack("{s:b, s:b, s:b, s:s}", "metrics_enabled", 0, "retry_queue", 0,
                                  "cross_domain_id_enabled", 0, "api_host", ""));
    json_object_set_new(body, "labels", labels ? json_incref(labels) : json_object());
    return true;
}

static json_t *source_render(call *c, const res_row *r, json_t *body)
{
    (void)c;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "parent", json_string(r->parent));
    const char *keys[] = {"catalog_name", "display_name", "write_keys", "library_config", "labels"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(body, keys[i]);
        json_object_set(o, keys[i], v ? v : json_null());
    }
    json_object_set_new(o, "create_time", json_string(r->create_time));
    return o;
}

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
        store_begin(c->api->st, &t, false);
        int rc = store_res_get(&t, src, &r);
        store_end(&t);
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

const kind kind_schema_config = {
    .name = "schema_config",
    .collection = "schema-config",
    .list_key = "schema_configs",
    .id_mode = ID_SINGLETON,
    .fields = sc_fields,
    .mask_paths = sc_fields + 2,
    .update = sc_update,
    .render = sc_render,
};
