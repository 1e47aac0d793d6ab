/* Destinations (spec §8). A destination is named by its catalog destination; its config
 * is validated against that catalog entry's settings (names, JSON types, the setting's
 * regexp, required settings on enable). Settings of type password are write-only: reads
 * show a fixed mask and a secret_version (a keyed hash of the value), so tools can detect
 * drift without ever seeing the secret. */
#include "api/engine.h"
#include "deliver/target.h"
#include "store/delivery_log.h"
#include "store/delivery_metrics.h"
#include "util/json.h"
#include "util/util.h"
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const dest_fields[] = {"name", "connection_mode", "enabled", "config", "display_name",
                                          "parent", "create_time", "update_time", "catalog_name", NULL};
static const char *const dest_paths[] = {"enabled", "config", "connection_mode", NULL};

/* What a destination is an instance of: a catalog destination, or a destination function
 * of the workspace (functions-runtime.md §5: "catalog/destinations/<catalog_id>"), whose
 * settings definitions are turned into catalog-style ones (label → display_name; a
 * sensitive setting is write-only like a password). */
typedef struct dest_def {
    const char *catalog_name, *display_name;
    json_t *settings;   /* catalog-style setting list (borrowed from the catalog, or owned) */
    char *fn_name;      /* the function's resource name, for a function instance */
    json_t *fn_body;
    char *own_catalog_name;
} dest_def;

static void def_clear(dest_def *d)
{
    if (d->fn_name)
        json_decref(d->settings);
    json_decref(d->fn_body);
    free(d->fn_name);
    free(d->own_catalog_name);
    memset(d, 0, sizeof *d);
}

/* ST_OK, ST_NOT_FOUND (neither in the catalog nor a function), ST_ERROR. */
static int def_of(call *c, const char *name, dest_def *d)
{
    memset(d, 0, sizeof *d);
    /* Only the last segment of the catalog name names a destination: accepting an alias
     * (the docs slug "customer-io" of catalog/destinations/customer.io) would let one source
     * hold two destinations of the same catalog destination under different names. */
    const char *key = strrchr(name, '/') + 1;
    const cat_item *it = catalog_find(&c->api->cat->destinations, key);
    if (it && !strcmp(it->key, key)) {
        d->catalog_name = it->name;
        d->display_name = it->display_name;
        d->settings = it->settings;
        return ST_OK;
    }
    int rc = fn_by_catalog_id(c, NULL, false, key, &d->fn_name, &d->fn_body);
    if (rc != ST_OK)
        return rc;
    buf cn = {0};
    buf_printf(&cn, "catalog/destinations/%s", key);
    d->own_catalog_name = buf_steal(&cn);
    d->catalog_name = d->own_catalog_name;
    d->display_name = json_string_value(json_object_get(d->fn_body, "display_name"));
    if (!d->display_name)
        d->display_name = "";
    d->settings = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(d->fn_body, "settings"), i, s) {
        json_t *e = json_pack("{s:O, s:O, s:O, s:O, s:b}", "name", json_object_get(s, "name"), "display_name",
                              json_object_get(s, "label"), "type", json_object_get(s, "type"), "required",
                              json_object_get(s, "required"), "sensitive",
                              json_is_true(json_object_get(s, "sensitive")));
        if (e && json_object_get(s, "value"))
            json_object_set(e, "default_value", json_object_get(s, "value"));
        if (e)
            json_array_append_new(d->settings, e);
    }
    return ST_OK;
}

/* Write-only: a catalog password, or a function's sensitive setting. */
static bool is_secret(json_t *setting)
{
    const char *type = json_string_value(json_object_get(setting, "type"));
    return (type && !strcmp(type, "password")) || json_is_true(json_object_get(setting, "sensitive"));
}

static json_t *setting_of(json_t *settings, const char *key)
{
    size_t i;
    json_t *s;
    json_array_foreach(settings, i, s) {
        const char *n = json_string_value(json_object_get(s, "name"));
        if (n && !strcmp(n, key))
            return s;
    }
    return NULL;
}

/* ---- regex validators: compiled once per pattern, shared by all threads ---- */

typedef struct rx { char *pat; pcre2_code *code; struct rx *next; } rx;
static rx *rx_cache;
static pthread_mutex_t rx_mu = PTHREAD_MUTEX_INITIALIZER;

static pcre2_code *rx_get(const char *pat)
{
    pthread_mutex_lock(&rx_mu);
    rx *r = rx_cache;
    while (r && strcmp(r->pat, pat))
        r = r->next;
    if (!r) {
        int err;
        PCRE2_SIZE off;
        r = calloc(1, sizeof *r);
        r->pat = strdup(pat);
        /* ECMA-262: '$' matches only at the very end. */
        r->code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &err, &off, NULL);
        r->next = rx_cache;
        rx_cache = r;
    }
    pthread_mutex_unlock(&rx_mu);
    return r->code; /* NULL: the catalog's pattern does not compile; it is not enforced */
}

static bool rx_match(pcre2_code *code, const char *s, size_t n)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    int rc = pcre2_match(code, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

static void __attribute__((destructor)) rx_free_all(void)
{
    for (rx *r = rx_cache, *n; r; r = n) {
        n = r->next;
        pcre2_code_free(r->code);
        free(r->pat);
        free(r);
    }
    rx_cache = NULL;
}

/* Checks one value against its catalog setting. */
static bool check_value(call *c, json_t *setting, const char *key, json_t *v)
{
    const char *type = json_string_value(json_object_get(setting, "type"));
    if (!type)
        type = "mixed";
    bool ok = true;
    const char *want = NULL;
    if (!strcmp(type, "string") || !strcmp(type, "password") || !strcmp(type, "color") || !strcmp(type, "select"))
        ok = json_is_string(v), want = "a string";
    else if (!strcmp(type, "boolean"))
        ok = json_is_boolean(v), want = "a boolean";
    else if (!strcmp(type, "number"))
        ok = json_is_number(v), want = "a number";
    else if (!strcmp(type, "map") || !strcmp(type, "text-map"))
        ok = json_is_object(v), want = "an object";
    else if (!strcmp(type, "list") || !strcmp(type, "array"))
        ok = json_is_array(v), want = "a list";
    if (!ok)
        return fail(c, 400, CODE_INVALID, "config setting '%s' (type %s) must be %s", key, type, want);
    if (json_is_string(v) && json_string_length(v)) {
        const char *re = json_string_value(json_object_get(json_object_get(setting, "string_validators"), "regexp"));
        pcre2_code *code = re && *re ? rx_get(re) : NULL;
        if (code && !rx_match(code, json_string_value(v), json_string_length(v)))
            return fail(c, 400, CODE_INVALID, "config setting '%s' does not match %s", key, re);
        json_t *opts = json_object_get(json_object_get(setting, "select_validators"), "select_options");
        if (!strcmp(type, "select") && json_array_size(opts)) {
            size_t i;
            json_t *o;
            bool found = false;
            json_array_foreach(opts, i, o) found |= json_equal(o, v);
            if (!found)
                return fail(c, 400, CODE_INVALID, "config setting '%s' must be one of its select options", key);
        }
    }
    return true;
}

/* Merges client config entries [{name, value, …}] into the stored map key → value. */
static bool merge_config(call *c, const dest_def *it, const char *dest_name, json_t *entries, json_t *stored)
{
    if (!json_is_array(entries))
        return fail(c, 400, CODE_INVALID, "destination.config must be a list of {name, value}");
    size_t prefix = strlen(dest_name);
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        if (!json_is_object(e))
            return fail(c, 400, CODE_INVALID, "destination.config[%zu] must be an object", i);
        const char *k;
        json_t *v;
        json_object_foreach(e, k, v) if (strcmp(k, "name") && strcmp(k, "value") && strcmp(k, "type") &&
                                         strcmp(k, "display_name") && strcmp(k, "displayName") &&
                                         strcmp(k, "secret_version"))
            return fail(c, 400, CODE_INVALID, "unknown field '%s' in destination.config[%zu]", k, i);
        const char *n = json_string_value(json_object_get(e, "name"));
        if (!n)
            return fail(c, 400, CODE_INVALID, "destination.config[%zu].name is required", i);
        const char *key = n;
        if (strchr(n, '/')) { /* full name: <destination>/config/<key> */
            if (strncmp(n, dest_name, prefix) || strncmp(n + prefix, "/config/", 8))
                return fail(c, 400, CODE_INVALID, "destination.config[%zu].name '%s' is not a setting of this destination", i, n);
            key = n + prefix + 8;
        }
        json_t *setting = setting_of(it->settings, key);
        if (!setting)
            return fail(c, 400, CODE_INVALID, "unknown config setting '%s' for %s", key, it->catalog_name);
        json_t *val = json_object_get(e, "value");
        if (!val)
            return fail(c, 400, CODE_INVALID, "destination.config[%zu].value is required", i);
        /* Writing back the mask read from a GET keeps the secret as it is. */
        if (is_secret(setting) && json_is_string(val) && !strcmp(json_string_value(val), SECRET_MASK))
            continue;
        if (!check_value(c, setting, key, val))
            return false;
        json_object_set(stored, key, val);
    }
    return true;
}

static bool check_mode(call *c, json_t *v)
{
    const char *m = json_string_value(v);
    if (!m || (strcmp(m, "CLOUD") && strcmp(m, "DEVICE") && strcmp(m, "UNSPECIFIED")))
        return fail(c, 400, CODE_INVALID, "destination.connection_mode must be CLOUD, DEVICE or UNSPECIFIED");
    return true;
}

static bool dest_create(call *c, json_t *obj, const char *name, json_t *body)
{
    dest_def it;
    int rc = def_of(c, name, &it);
    if (rc == ST_ERROR)
        return fail_store(c, rc, "destination function");
    if (rc != ST_OK)
        return fail(c, 400, CODE_INVALID,
                    "unknown destination '%s': not in the destination catalog nor a destination function's catalog_id",
                    strrchr(name, '/') + 1);
    bool ok = false;
    json_t *cn = json_object_get(obj, "catalog_name");
    json_t *mode = json_object_get(obj, "connection_mode");
    json_t *en = json_object_get(obj, "enabled");
    json_t *cfg = json_object();
    json_t *entries = json_object_get(obj, "config");
    if (cn && (!json_is_string(cn) || strcmp(json_string_value(cn), it.catalog_name))) {
        fail(c, 400, CODE_INVALID, "destination.catalog_name must be %s (the last segment of destination.name)",
             it.catalog_name);
        goto out;
    }
    if ((mode && !check_mode(c, mode)) || (en && !json_is_boolean(en) &&
                                           !fail(c, 400, CODE_INVALID, "destination.enabled must be a boolean")))
        goto out;
    if (entries && !merge_config(c, &it, name, entries, cfg))
        goto out;
    json_object_set_new(body, "catalog_name", json_string(it.catalog_name));
    json_object_set_new(body, "display_name", json_string(it.display_name));
    json_object_set_new(body, "enabled", json_boolean(json_is_true(en)));
    json_object_set_new(body, "connection_mode", json_string(mode ? json_string_value(mode) : "UNSPECIFIED"));
    json_object_set(body, "config", cfg);
    if (it.fn_name) /* a destination function instance: its function, for delivery and rendering */
        json_object_set_new(body, "function", json_string(it.fn_name));
    ok = true;
out:
    json_decref(cfg);
    def_clear(&it);
    return ok;
}

static bool dest_update(call *c, json_t *body, const char *path, json_t *value, const char *name)
{
    if (!strcmp(path, "enabled")) {
        if (value && !json_is_boolean(value))
            return fail(c, 400, CODE_INVALID, "destination.enabled must be a boolean");
        json_object_set_new(body, "enabled", json_boolean(json_is_true(value)));
    } else if (!strcmp(path, "connection_mode")) {
        if (value && !check_mode(c, value))
            return false;
        json_object_set_new(body, "connection_mode", json_string(value ? json_string_value(value) : "UNSPECIFIED"));
    } else { /* config merges by setting name; listed without a value resets it */
        dest_def it;
        int rc = def_of(c, name, &it);
        if (rc == ST_ERROR)
            return fail_store(c, rc, "destination function");
        if (rc != ST_OK)
            return fail(c, 400, CODE_INVALID, "destination is no longer in the catalog (or its function was deleted)");
        json_t *cfg = json_object_get(body, "config");
        if (!json_is_object(cfg)) {
            cfg = json_object();
            json_object_set_new(body, "config", cfg);
        }
        bool ok = true;
        if (!value)
            json_object_clear(cfg);
        else
            ok = merge_config(c, &it, name, value, cfg);
        def_clear(&it);
        return ok;
    }
    return true;
}

/* The value a setting has: the stored one, else the catalog default. */
static json_t *effective(json_t *cfg, json_t *setting, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    return v ? v : json_object_get(setting, "default_value");
}

/* Webhooks §6.1: at most five hooks, whether or not the destination is enabled. "hooks"
 * is a mixed setting: a list, or the same list as JSON text. */
static bool webhooks_hooks_ok(call *c, const dest_def *d, json_t *cfg)
{
    if (!d->catalog_name || strcmp(d->catalog_name, "catalog/destinations/webhooks"))
        return true;
    json_t *h = json_object_get(cfg, "hooks");
    json_t *parsed = json_is_string(h) ? json_loads(json_string_value(h), JSON_DECODE_ANY, NULL) : NULL;
    size_t n = json_array_size(parsed ? parsed : h);
    json_decref(parsed);
    if (n > WEBHOOKS_MAX_HOOKS)
        return fail(c, 400, CODE_INVALID, "config setting 'hooks' holds %zu hooks; at most %d are allowed", n,
                    WEBHOOKS_MAX_HOOKS);
    return true;
}

static bool dest_validate(call *c, json_t *body, const char *name)
{
    dest_def it;
    int rc = def_of(c, name, &it);
    if (rc == ST_ERROR)
        return fail_store(c, rc, "destination function");
    json_t *cfg = json_object_get(body, "config");
    bool ok = webhooks_hooks_ok(c, &it, cfg); /* whether or not the destination is enabled */
    if (!ok || !json_is_true(json_object_get(body, "enabled"))) {
        def_clear(&it);
        return ok;
    }
    size_t i;
    json_t *s;
    json_array_foreach(rc == ST_OK ? it.settings : NULL, i, s) {
        if (!json_is_true(json_object_get(s, "required")))
            continue;
        const char *key = json_string_value(json_object_get(s, "name"));
        json_t *v = effective(cfg, s, key);
        bool empty = !v || json_is_null(v) || (json_is_string(v) && !json_string_length(v)) ||
                     (json_is_array(v) && !json_array_size(v)) || (json_is_object(v) && !json_object_size(v));
        if (empty) {
            ok = fail(c, 400, CODE_INVALID, "config setting '%s' is required to enable %s", key, it.display_name);
            break;
        }
    }
    def_clear(&it);
    return ok;
}

static json_t *zero_of_type(const char *type)
{
    if (!type || !strcmp(type, "mixed"))
        return json_null();
    if (!strcmp(type, "boolean"))
        return json_false();
    if (!strcmp(type, "number"))
        return json_integer(0);
    if (!strcmp(type, "map") || !strcmp(type, "text-map"))
        return json_object();
    if (!strcmp(type, "list") || !strcmp(type, "array"))
        return json_array();
    return json_string("");
}

/* A keyed hash of the setting's full name and its value: stable while the value stays, and
 * different for the same value in another setting, so that whoever can set a secret on one
 * destination cannot confirm guesses of another destination's secret by comparing versions. */
json_t *secret_version(const char *setting_name, const json_t *v)
{
    char *s = json_to_string(v);
    buf b = {0};
    buf_append(&b, setting_name, strlen(setting_name) + 1);
    buf_append(&b, s, strlen(s));
    unsigned char mac[12];
    auth_mac(b.data, b.len, mac);
    buf_free(&b);
    free(s);
    char hex[25];
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    return json_string(hex);
}

static json_t *dest_render(call *c, const res_row *r, json_t *body)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "parent", json_string(r->parent));
    dest_def it;
    bool known = def_of(c, r->name, &it) == ST_OK;
    /* A function instance shows its function's current name. */
    if (known && it.fn_name)
        json_object_set_new(o, "display_name", json_string(it.display_name));
    else
        json_object_set(o, "display_name", json_object_get(body, "display_name"));
    json_object_set(o, "enabled", json_object_get(body, "enabled"));
    json_object_set(o, "connection_mode", json_object_get(body, "connection_mode"));
    json_t *cfg = json_object_get(body, "config");
    json_t *list = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(known ? it.settings : NULL, i, s) {
        const char *key = json_string_value(json_object_get(s, "name"));
        const char *type = json_string_value(json_object_get(s, "type"));
        if (!key)
            continue;
        buf n = {0};
        buf_printf(&n, "%s/config/%s", r->name, key);
        /* One look-up each per setting: this loop runs for every setting on every Get. */
        bool secret = is_secret(s);
        json_t *stored = json_object_get(cfg, key);
        json_t *v = stored ? stored : json_object_get(s, "default_value");
        json_t *zero = NULL;
        if (!v || json_is_null(v)) /* never set and no catalog default: the type's zero value */
            v = zero = zero_of_type(type);
        if (secret) /* a function's value given on the definition is not this destination's */
            v = stored ? stored : (zero ? zero : (zero = zero_of_type(type)));
        const char *dn = json_string_value(json_object_get(s, "display_name"));
        json_t *e = json_pack("{s:s, s:s, s:O}", "name", buf_cstr(&n), "display_name", dn ? dn : "",
                              "value", v ? v : json_null());
        json_decref(zero);
        if (secret) {
            json_object_set_new(e, "value", json_string(stored ? SECRET_MASK : ""));
            if (stored)
                json_object_set_new(e, "secret_version", secret_version(buf_cstr(&n), stored));
        }
        buf_free(&n);
        json_object_set_new(e, "type", json_string(type ? type : "mixed"));
        json_array_append_new(list, e);
    }
    if (!known && json_object_get(body, "function")) {
        /* The function is gone: its settings cannot be told apart, so every value is masked. */
        const char *k;
        json_t *v;
        json_object_foreach(cfg, k, v) {
            buf n = {0};
            buf_printf(&n, "%s/config/%s", r->name, k);
            json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:o, s:s}", "name", buf_cstr(&n), "display_name", k,
                                                  "value", SECRET_MASK, "secret_version", secret_version(buf_cstr(&n), v),
                                                  "type", "string"));
            buf_free(&n);
        }
    }
    def_clear(&it);
    json_object_set_new(o, "config", list);
    json_object_set_new(o, "create_time", json_string(r->create_time));
    json_object_set_new(o, "update_time", json_string(r->update_time));
    return o;
}

/* Exported as created: enabled, connection mode and the stored settings as [{name, value}]
 * by name (catalog defaults are not stored, so not exported); write-only values redacted
 * unless secrets (all of them when a function instance's function is gone). */
static json_t *dest_export(call *c, const res_row *r, json_t *body, bool secrets)
{
    dest_def it;
    bool known = def_of(c, r->name, &it) == ST_OK;
    json_t *cfg = json_object_get(body, "config");
    size_t n;
    const char **names = json_sorted_keys(cfg, &n);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *s = known ? setting_of(it.settings, names[i]) : NULL;
        bool secret = known ? s && is_secret(s) : json_object_get(body, "function") != NULL;
        json_t *v = json_object_get(cfg, names[i]);
        json_array_append_new(list, json_pack("{s:s, s:o}", "name", names[i], "value",
                                              secret && !secrets ? json_string(EXPORT_REDACTED) : json_incref(v)));
    }
    free(names);
    def_clear(&it);
    json_t *o = json_pack("{s:O, s:O, s:o}", "enabled", json_object_get(body, "enabled") ?: json_false(),
                          "connection_mode", json_object_get(body, "connection_mode") ?: json_null(), "config", list);
    return o;
}

/* The delivery cursor starts at the source's log head in the creating transaction, so
 * every event accepted after the destination exists is considered for it (docs/delivery.md). */
static bool dest_after_create(call *c, txn *t, const res_row *r)
{
    if (store_dl_cursor_create(t, r->name, r->parent) != ST_OK)
        return fail_store(c, ST_ERROR, "delivery cursor");
    return true;
}

/* A destination's delivery metrics go with it, in the delete's transaction: a later
 * destination of the same name starts from zero. */
static bool dest_before_delete(call *c, txn *t, const res_row *r)
{
    int rc = store_dm_delete(t, r->name);
    if (rc == ST_OK) /* its cursor and pending retries too: a new destination of this name starts afresh */
        rc = store_dl_forget(t, r->name);
    return rc == ST_OK || fail_store(c, rc, "destination metrics");
}
/* A function instance renders its function's current settings and name: never from a
 * stored view. */
static bool dest_live(const res_row *r) { return r->body && strstr(r->body, "\"function\":\"workspaces/"); }

const kind kind_destination = {
    .name = "destination",
    .collection = "destinations",
    .list_key = "destinations",
    .id_mode = ID_FROM_NAME,
    .fields = dest_fields,
    .mask_paths = dest_paths,
    .create = dest_create,
    .update = dest_update,
    .validate = dest_validate,
    .render = dest_render,
    .after_create = dest_after_create,
    .before_delete = dest_before_delete,
    .live = dest_live,
    .export = dest_export,
};
