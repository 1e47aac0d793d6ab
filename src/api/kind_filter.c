/* Destination filters (spec §10): a kind for the engine, plus the preview endpoint. The
 * FQL in `if` and the actions are compiled (src/filters, src/fql) when a filter is saved,
 * so a filter that cannot run is refused with the compiler's positioned message. */
#include "api/engine.h"
#include "filters/filters.h"
#include "util/json.h"
#include <stdio.h>
#include <string.h>

static const char *const filter_fields[] = {"name", "if", "actions", "title", "description", "enabled", NULL};
static const char *const filter_paths[] = {"if", "actions", "title", "description", "enabled", NULL};

/* Characters (code points) in a UTF-8 string: jansson only holds valid UTF-8, so every
 * byte that is not a continuation byte starts one. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Checks the whole stored form and canonicalises its actions (blocklist → blacklist …). */
static bool filter_validate(call *c, json_t *body, const char *name)
{
    (void)name;
    const char *title = json_string_value(json_object_get(body, "title"));
    if (!title || !*title || utf8_chars(title) > 64) /* 64 characters, the UI limit (§10) */
        return fail(c, 400, CODE_INVALID, "filter.title is required (1 to 64 characters)");
    json_t *d = json_object_get(body, "description");
    if (d && (!json_is_string(d) || json_string_length(d) > 1024))
        return fail(c, 400, CODE_INVALID, "filter.description must be a string of at most 1024 bytes");
    json_t *en = json_object_get(body, "enabled");
    if (en && !json_is_boolean(en))
        return fail(c, 400, CODE_INVALID, "filter.enabled must be a boolean");
    if (!json_is_array(json_object_get(body, "actions")) || !json_array_size(json_object_get(body, "actions")))
        return fail(c, 400, CODE_INVALID, "filter.actions must list at least one action");
    dest_filter_error err;
    dest_filter *f = dest_filter_compile(body, &err);
    if (!f)
        return fail(c, 400, CODE_INVALID, "%s", err.message);
    json_object_set_new(body, "actions", json_deep_copy(dest_filter_actions(f)));
    dest_filter_free(f);
    return true;
}

static bool filter_create(call *c, json_t *obj, const char *name, json_t *body)
{
    (void)c, (void)name;
    const char *keys[] = {"if", "actions", "title", "description", "enabled"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(obj, keys[i]);
        if (v)
            json_object_set(body, keys[i], v);
    }
    if (!json_object_get(body, "if"))
        return fail(c, 400, CODE_INVALID, "filter.if is required");
    if (!json_object_get(body, "description"))
        json_object_set_new(body, "description", json_string(""));
    if (!json_object_get(body, "enabled"))
        json_object_set_new(body, "enabled", json_false());
    return true;
}

static bool filter_update(call *c, json_t *body, const char *path, json_t *value, const char *name)
{
    (void)c, (void)name;
    json_object_set_new(body, path, value ? json_incref(value) : zero_like(json_object_get(body, path)));
    return true;
}

static json_t *filter_render(call *c, const res_row *r, json_t *body)
{
    (void)c;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name));
    const char *keys[] = {"if", "actions", "title", "description", "enabled"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(body, keys[i]);
        json_object_set(o, keys[i], v ? v : json_null());
    }
    return o;
}

static json_t *filter_export(call *c, const res_row *r, json_t *body, bool secrets)
{
    (void)secrets;
    json_t *o = filter_render(c, r, body);
    json_object_del(o, "name");
    return o;
}

const kind kind_filter = {
    .name = "filter",
    .collection = "filters",
    .list_key = "filters",
    .id_mode = ID_GENERATED,
    .id_prefix = "df_",
    .max_per_parent = 10,
    .fields = filter_fields,
    .mask_paths = filter_paths,
    .create = filter_create,
    .update = filter_update,
    .validate = filter_validate,
    .render = filter_render,
    .export = filter_export,
};

/* POST /v1beta/filters/preview — not workspace-scoped; read scope is enough. */
void h_filter_preview(call *c)
{
    static const char *const top[] = {"filter", "input", NULL};
    json_t *body = call_body(c);
    if (!body || !check_fields(c, body, NULL, top))
        return;
    if (!json_is_object(json_object_get(body, "filter")))
        return (void)fail(c, 400, CODE_INVALID, "filter is required and must be an object");
    if (!json_is_string(json_object_get(body, "input")))
        return (void)fail(c, 400, CODE_INVALID, "input is required: the event as a JSON-encoded string");
    dest_filter_error err;
    json_t *out = dest_filter_preview(body, &err);
    if (!out)
        return (void)fail(c, 400, CODE_INVALID, "%s", err.message);
    reply(c, out);
}
