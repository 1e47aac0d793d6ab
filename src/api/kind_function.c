/* Functions (spec §13): a kind on the generic engine, plus the two custom verbs deploy
 * (§13.7) and is-latest-version (§13.8). Preview (§13.6) is in fn_preview.c.
 *
 * Stored body (the contract with the data plane, src/ingest/functions_hook.c, and with
 * function-backed sources and destinations):
 *   display_name, description, type ("SOURCE" | "DESTINATION"), code, buildpack, settings
 *   (normalised definitions, values of sensitive ones in clear), logo_url, catalog_id,
 *   created_by, workspace_id,
 *   code_version     bumped by every change of `code`,
 *   deployed_code,   what instances run: a SOURCE function's code goes live only on
 *   deployed_version deploy; a DESTINATION function's at once (§13.4).
 * Names are workspaces/<ws>/functions/<id>, the id sfnc_<KSUID> or dfnc_<KSUID>, and the
 * catalog_id is the KSUID (the spec's sample: id "sfnc_1234", catalog_id "1234"), so an
 * instance's catalog name "catalog/sources/<catalog_id>" leads straight to its function. */
#include "api/engine.h"
#include "util/json.h"
#include "util/util.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FN_CODE_MAX (1024 * 1024) /* functions-runtime.md §9.1: Manifold's code size limit */
#define FN_SETTINGS_MAX 100

static const char *const fn_fields[] = {"id", "type", "display_name", "description", "code", "buildpack", "settings",
                                        "logo_url", "created_at", "created_by", "workspace_id", "catalog_id", NULL};
static const char *const fn_paths[] = {"code", "settings", "display_name", "logo_url", "description", "buildpack", NULL};
/* The mirror text spells "functions.displayname" (§13.4). */
static const char *const fn_aliases[] = {"displayname", "display_name", NULL};
static const char *const fn_top[] = {"type", NULL};

/* ---- type ------------------------------------------------------------------------------ */

static bool type_ok(const char *t) { return t && (!strcmp(t, "SOURCE") || !strcmp(t, "DESTINATION")); }

/* The type of a create or preview: ?type=, the body's "type", or the function object's;
 * when several are given they must agree. NULL after fail(). */
const char *fn_request_type(call *c, json_t *req, json_t *obj)
{
    const char *got[3] = {req_query(c->req, "type"), NULL, NULL};
    json_t *b = json_object_get(req, "type"), *f = obj ? json_object_get(obj, "type") : NULL;
    if ((b && !json_is_string(b)) || (f && !json_is_string(f)))
        return fail(c, 400, CODE_INVALID, "type must be SOURCE or DESTINATION"), NULL;
    got[1] = json_string_value(b);
    got[2] = json_string_value(f);
    const char *type = NULL;
    for (int i = 0; i < 3; i++) {
        if (!got[i])
            continue;
        if (!type_ok(got[i]))
            return fail(c, 400, CODE_INVALID, "type must be SOURCE or DESTINATION, not '%s'", got[i]), NULL;
        if (type && strcmp(type, got[i]))
            return fail(c, 400, CODE_INVALID, "type is given twice, as %s and %s", type, got[i]), NULL;
        type = got[i];
    }
    if (!type)
        fail(c, 400, CODE_INVALID, "type is required (SOURCE or DESTINATION), in the query string or the body");
    return type;
}

static const char *fn_id_prefix(call *c, json_t *req, json_t *obj)
{
    const char *t = fn_request_type(c, req, obj);
    return !t ? NULL : !strcmp(t, "SOURCE") ? "sfnc_" : "dfnc_";
}

static const char *fn_list_prefix(call *c)
{
    const char *t = req_query(c->req, "type");
    if (!t)
        return fail(c, 400, CODE_INVALID, "type is required (SOURCE or DESTINATION)"), NULL;
    if (!type_ok(t))
        return fail(c, 400, CODE_INVALID, "type must be SOURCE or DESTINATION, not '%s'", t), NULL;
    return !strcmp(t, "SOURCE") ? "sfnc_" : "dfnc_";
}

static bool is_source_name(const char *name)
{
    const char *id = strrchr(name, '/');
    return id && !strncmp(id + 1, "sfnc_", 5);
}

/* ---- fields ---------------------------------------------------------------------------- */

static bool check_code(call *c, json_t *v, bool source)
{
    if (!json_is_string(v) || !json_string_length(v))
        return fail(c, 400, CODE_INVALID, "function.code is required and must be a non-empty string");
    if (json_string_length(v) > FN_CODE_MAX)
        return fail(c, 400, CODE_INVALID, "function.code is %zu bytes; at most %d bytes (1 MiB) are allowed",
                    json_string_length(v), FN_CODE_MAX);
    /* functions-runtime.md §4.1: a source function posting to a function webhook could
     * call itself for ever. */
    const char *s = json_string_value(v);
    if (source && (strstr(s, "fn.segmentapis.com") || strstr(s, "/v1/functions/")))
        return fail(c, 400, CODE_INVALID,
                    "function.code must not call a source-function webhook (/v1/functions/…): it could call itself");
    return true;
}

static bool check_text(call *c, json_t *v, const char *field, size_t max, bool required)
{
    if (!json_is_string(v) || (required && !json_string_length(v)))
        return fail(c, 400, CODE_INVALID, "function.%s %s a string", field,
                    required ? "is required and must be a non-empty" : "must be");
    if (json_string_length(v) > max)
        return fail(c, 400, CODE_INVALID, "function.%s is longer than %zu bytes", field, max);
    return true;
}

static bool check_buildpack(call *c, json_t *v)
{
    if (!json_is_string(v) || strcmp(json_string_value(v), "boreal"))
        return fail(c, 400, CODE_INVALID, "function.buildpack must be \"boreal\"");
    return true;
}

static bool valid_setting_name(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 128 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* "STRING" (the successor API's spelling) → "string", "TEXT_MAP" → "text-map". */
static const char *setting_type(const char *t)
{
    static const char *const types[][2] = {{"string", "STRING"}, {"boolean", "BOOLEAN"},
                                           {"text-map", "TEXT_MAP"}, {"array", "ARRAY"}};
    for (size_t i = 0; t && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(t, types[i][0]) || !strcmp(t, types[i][1]))
            return types[i][0];
    return NULL;
}

/* Does v fit a setting of this type (functions-runtime.md §8)? */
bool fn_value_fits(const char *type, const json_t *v)
{
    if (!strcmp(type, "boolean"))
        return json_is_boolean(v);
    if (!strcmp(type, "string"))
        return json_is_string(v);
    size_t i;
    const char *k;
    json_t *e;
    if (!strcmp(type, "text-map")) {
        if (!json_is_object(v))
            return false;
        json_object_foreach((json_t *)v, k, e) if (!json_is_string(e)) return false;
        return true;
    }
    if (!json_is_array(v))
        return false;
    json_array_foreach(v, i, e) if (!json_is_string(e)) return false;
    return true;
}

static const char *want_of(const char *type)
{
    return !strcmp(type, "boolean") ? "a boolean" : !strcmp(type, "string") ? "a string"
         : !strcmp(type, "text-map") ? "an object of strings" : "a list of strings";
}

/* The stored definition with this name in old settings, or NULL. */
static json_t *old_setting(json_t *old, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(old, i, s) if (!strcmp(json_string_value(json_object_get(s, "name")), name)) return s;
    return NULL;
}

/* Validates function.settings and returns the normalised list (NULL after fail()). A
 * sensitive setting's value sent back as the mask keeps the value stored in old. */
static json_t *normalise_settings(call *c, json_t *in, json_t *old)
{
    static const char *const fields[] = {"name", "label", "type", "description", "required", "sensitive", "value",
                                         NULL};
    if (!json_is_array(in))
        return fail(c, 400, CODE_INVALID, "function.settings must be a list"), NULL;
    if (json_array_size(in) > FN_SETTINGS_MAX)
        return fail(c, 400, CODE_INVALID, "function.settings: at most %d settings", FN_SETTINGS_MAX), NULL;
    json_t *out = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(in, i, s) {
        char where[64];
        snprintf(where, sizeof where, "function.settings[%zu]", i);
        if (!json_is_object(s) || !check_fields(c, s, where, fields))
            goto bad;
        json_t *n = json_object_get(s, "name"), *l = json_object_get(s, "label"), *t = json_object_get(s, "type"),
               *d = json_object_get(s, "description"), *rq = json_object_get(s, "required"),
               *se = json_object_get(s, "sensitive"), *v = json_object_get(s, "value");
        const char *name = json_string_value(n);
        if (!name || !valid_setting_name(name)) {
            fail(c, 400, CODE_INVALID,
                 "%s.name is required: 1 to 128 of letters, digits, '_' and '-', starting with a letter or '_'", where);
            goto bad;
        }
        for (size_t j = 0; j < json_array_size(out); j++)
            if (!strcmp(json_string_value(json_object_get(json_array_get(out, j), "name")), name)) {
                fail(c, 400, CODE_INVALID, "function.settings: the name '%s' is used twice", name);
                goto bad;
            }
        const char *type = t ? setting_type(json_string_value(t)) : "string";
        if (!type) {
            fail(c, 400, CODE_INVALID, "%s.type must be string, boolean, text-map or array", where);
            goto bad;
        }
        if ((l && !json_is_string(l)) || (d && !json_is_string(d))) {
            fail(c, 400, CODE_INVALID, "%s.label and .description must be strings", where);
            goto bad;
        }
        if ((rq && !json_is_boolean(rq)) || (se && !json_is_boolean(se))) {
            fail(c, 400, CODE_INVALID, "%s.required and .sensitive must be booleans", where);
            goto bad;
        }
        json_t *def = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "name", name, "label",
                                l ? json_string_value(l) : name, "type", type, "description",
                                d ? json_string_value(d) : "", "required", json_is_true(rq), "sensitive",
                                json_is_true(se));
        json_array_append_new(out, def);
        if (v && !json_is_null(v)) {
            if (json_is_true(se) && json_is_string(v) && !strcmp(json_string_value(v), SECRET_MASK)) {
                json_t *prev = json_object_get(old_setting(old, name), "value");
                if (prev)
                    json_object_set(def, "value", prev);
                continue;
            }
            if (!fn_value_fits(type, v)) {
                fail(c, 400, CODE_INVALID, "%s.value must be %s (type %s)", where, want_of(type), type);
                goto bad;
            }
            json_object_set(def, "value", v);
        }
    }
    return out;
bad:
    json_decref(out);
    return NULL;
}

/* ---- create / update ------------------------------------------------------------------- */

static bool set_code(call *c, json_t *body, json_t *code, bool source, bool creating)
{
    if (!check_code(c, code, source))
        return false;
    json_int_t ver = json_integer_value(json_object_get(body, "code_version"));
    if (!creating && json_equal(json_object_get(body, "code"), code))
        return true; /* the same code again is not a new version */
    json_object_set(body, "code", code);
    json_object_set_new(body, "code_version", json_integer(ver + 1));
    if (!source || creating) { /* §13.4: a destination function's code is live at once */
        json_object_set(body, "deployed_code", code);
        json_object_set_new(body, "deployed_version", json_integer(ver + 1));
    }
    return true;
}

static bool fn_create(call *c, json_t *obj, const char *name, json_t *body)
{
    bool source = is_source_name(name);
    json_t *dn = json_object_get(obj, "display_name"), *de = json_object_get(obj, "description"),
           *bp = json_object_get(obj, "buildpack"), *lu = json_object_get(obj, "logo_url"),
           *st = json_object_get(obj, "settings");
    if (!check_text(c, dn ? dn : json_null(), "display_name", 200, true) ||
        (de && !check_text(c, de, "description", 10000, false)) || (bp && !check_buildpack(c, bp)) ||
        (lu && !check_text(c, lu, "logo_url", 2048, false)))
        return false;
    json_t *settings = st ? normalise_settings(c, st, NULL) : json_array();
    if (!settings)
        return false;
    json_object_set(body, "display_name", dn);
    json_object_set_new(body, "description", json_string(de ? json_string_value(de) : ""));
    json_object_set_new(body, "type", json_string(source ? "SOURCE" : "DESTINATION"));
    if (!set_code(c, body, json_object_get(obj, "code"), source, true)) {
        json_decref(settings);
        return false;
    }
    json_object_set_new(body, "buildpack", json_string("boreal"));
    json_object_set_new(body, "settings", settings);
    json_object_set_new(body, "logo_url", json_string(lu ? json_string_value(lu) : ""));
    json_object_set_new(body, "catalog_id", json_string(strrchr(name, '/') + 6)); /* after "sfnc_" / "dfnc_" */
    json_object_set_new(body, "created_by", json_string(c->who.has_user ? c->who.user_id : ""));
    json_object_set_new(body, "workspace_id", json_string(c->ws.id));
    return true;
}

static bool fn_update(call *c, json_t *body, const char *path, json_t *value, const char *name)
{
    bool source = is_source_name(name);
    if (!strcmp(path, "code"))
        return set_code(c, body, value ? value : json_null(), source, false);
    if (!strcmp(path, "settings")) {
        json_t *empty = value ? NULL : json_array();
        json_t *s = normalise_settings(c, value ? value : empty, json_object_get(body, "settings"));
        json_decref(empty);
        if (!s)
            return false;
        json_object_set_new(body, "settings", s);
        return true;
    }
    if (!strcmp(path, "buildpack")) {
        if (value && !check_buildpack(c, value))
            return false;
        json_object_set_new(body, "buildpack", json_string("boreal"));
        return true;
    }
    bool dn = !strcmp(path, "display_name");
    json_t *v = value ? value : json_string("");
    bool ok = check_text(c, v, path, dn ? 200 : !strcmp(path, "logo_url") ? 2048 : 10000, dn);
    if (ok)
        json_object_set(body, path, v);
    if (!value)
        json_decref(v);
    return ok;
}

/* ---- render ---------------------------------------------------------------------------- */

static json_t *render_settings(const res_row *r, json_t *settings)
{
    json_t *out = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(settings, i, s) {
        json_t *e = json_deep_copy(s);
        json_t *v = json_object_get(s, "value");
        if (v && json_is_true(json_object_get(s, "sensitive"))) {
            buf n = {0};
            buf_printf(&n, "%s/settings/%s", r->name, json_string_value(json_object_get(s, "name")));
            json_object_set_new(e, "value", json_string(SECRET_MASK));
            json_object_set_new(e, "secret_version", secret_version(buf_cstr(&n), v));
            buf_free(&n);
        }
        json_array_append_new(out, e);
    }
    return out;
}

static json_t *render(const res_row *r, json_t *body, bool full)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(r->id));
    const char *keys[] = {"workspace_id", "display_name", "description", "type", "code", "buildpack"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (!full && (!strcmp(keys[i], "code") || !strcmp(keys[i], "buildpack")))
            continue;
        json_t *v = json_object_get(body, keys[i]);
        json_object_set_new(o, keys[i], v ? json_incref(v) : json_string(""));
    }
    json_object_set_new(o, "settings", render_settings(r, json_object_get(body, "settings")));
    json_object_set_new(o, "created_at", json_string(r->create_time));
    const char *tail[] = {"created_by", "logo_url", "catalog_id"};
    for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++) {
        json_t *v = json_object_get(body, tail[i]);
        json_object_set_new(o, tail[i], v ? json_incref(v) : json_string(""));
    }
    return o;
}

static json_t *fn_render(call *c, const res_row *r, json_t *body)
{
    (void)c;
    return render(r, body, true);
}

/* §13.2: list items carry neither code nor buildpack. */
static json_t *fn_render_item(call *c, const res_row *r, json_t *body)
{
    (void)c;
    return render(r, body, false);
}

/* functions-runtime.md §1: 25 functions per workspace by default. */
static int fn_max(call *c) { return c->api->max_functions; }

/* Exported as created: the definitions with sensitive values redacted unless secrets; the
 * code (not which version is deployed: an imported source function is deployed as it is
 * created). */
static json_t *fn_export(call *c, const res_row *r, json_t *body, bool secrets)
{
    (void)c, (void)r;
    json_t *o = json_object();
    const char *keys[] = {"type", "display_name", "description", "code", "buildpack", "logo_url"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(body, keys[i]);
        json_object_set_new(o, keys[i], v ? json_incref(v) : json_string(""));
    }
    json_t *settings = json_deep_copy(json_object_get(body, "settings"));
    size_t i;
    json_t *s;
    json_array_foreach(settings, i, s) if (!secrets && json_object_get(s, "value") &&
                                           json_is_true(json_object_get(s, "sensitive")))
        json_object_set_new(s, "value", json_string(EXPORT_REDACTED));
    json_object_set_new(o, "settings", settings ? settings : json_array());
    return o;
}

const kind kind_function = {
    .name = "function",
    .collection = "functions",
    .list_key = "functions",
    .id_mode = ID_GENERATED,
    .id_prefix = "sfnc_",
    .fields = fn_fields,
    .mask_paths = fn_paths,
    .create = fn_create,
    .update = fn_update,
    .render = fn_render,
    .top_fields = fn_top,
    .id_prefix_for = fn_id_prefix,
    .list_prefix = fn_list_prefix,
    .render_item = fn_render_item,
    .mask_prefix_alt = "functions",
    .mask_aliases = fn_aliases,
    .max_children = fn_max,
    .export = fn_export,
};

/* ---- §13.7 deploy, §13.8 is-latest-version ---------------------------------------------- */

static bool deploy(call *c, json_t *body)
{
    (void)c;
    json_object_set(body, "deployed_code", json_object_get(body, "code"));
    json_object_set(body, "deployed_version", json_object_get(body, "code_version"));
    return true;
}

void h_fn_deploy(call *c) { engine_apply(c, 1, "deploy", deploy); }

void h_fn_is_latest(call *c)
{
    res_row r = {0};
    json_t *body;
    if (engine_load(c, 1, &r, &body) == ST_OK) {
        json_int_t have = json_integer_value(json_object_get(body, "deployed_version"));
        json_int_t want = json_integer_value(json_object_get(body, "code_version"));
        reply(c, json_pack("{s:b}", "is_latest", have == want));
        json_decref(body);
    }
    res_row_clear(&r);
}

/* ---- instances: a catalog id names a function ------------------------------------------- */

int fn_by_catalog_id(call *c, txn *t, bool source, const char *catalog_id, char **name, json_t **body)
{
    *name = NULL;
    *body = NULL;
    if (!catalog_id || !*catalog_id || strchr(catalog_id, '/') || strlen(catalog_id) > 64)
        return ST_NOT_FOUND;
    buf n = {0};
    buf_printf(&n, "workspaces/%s/functions/%s%s", c->ws.slug, source ? "sfnc_" : "dfnc_", catalog_id);
    res_row r = {0};
    if (!t)
        t = c->tx;
    int rc = t ? store_res_get(t, n.data, &r) : ST_ERROR;
    if (!t) {
        txn own;
        store_begin(c->api->st, &own, false);
        rc = store_res_get(&own, n.data, &r);
        store_end(&own);
    }
    if (rc == ST_OK && strcmp(r.kind, "function"))
        rc = ST_NOT_FOUND;
    if (rc == ST_OK) {
        *body = json_loads(r.body, 0, NULL);
        if (*body)
            *name = buf_steal(&n);
        else
            rc = ST_ERROR;
    }
    res_row_clear(&r);
    buf_free(&n);
    return rc;
}
