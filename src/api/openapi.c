/* The OpenAPI 3.1 document of GET /v1beta/openapi.json, generated from the route table
 * (routes.c) and the kind descriptors (engine.h), so that it cannot drift from the code:
 * every row is an operation; its path parameters come from the pattern, its security
 * from the row's action, and for engine rows the request and response schemas, paging,
 * update masks, validate_only, If-Match, Idempotency-Key and ETag come from the kind and
 * the standard method. Other rows get their query parameters from the row's `query`
 * column and a generic object schema. Built once, on first use. */
#include "api/engine.h"
#include "util/util.h"
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "tracking_plan" / "schema-config" → "TrackingPlan" / "SchemaConfig". */
static void pascal(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    bool up = true;
    for (; *s && o + 1 < cap; s++) {
        if (*s == '_' || *s == '-' || *s == ' ') {
            up = true;
            continue;
        }
        out[o++] = up ? (char)toupper((unsigned char)*s) : *s;
        up = false;
    }
    out[o] = '\0';
}

/* "tracking_plan" → "tracking plan" (summaries). */
static void words(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 1 < cap; s++)
        out[o++] = *s == '_' || *s == '-' ? ' ' : *s;
    out[o] = '\0';
}

static json_t *ref(const char *kind, const char *name)
{
    char r[160];
    snprintf(r, sizeof r, "#/components/%s/%s", kind, name);
    return json_pack("{s:s}", "$ref", r);
}

static json_t *schema_ref(const char *name) { return ref("schemas", name); }

typedef enum { STD_NONE, STD_LIST, STD_GET, STD_CREATE, STD_UPDATE, STD_DELETE } std_method;

static std_method std_of(const route *r)
{
    if (!r->kind)
        return STD_NONE;
    return r->fn == engine_list ? STD_LIST : r->fn == engine_get ? STD_GET : r->fn == engine_create ? STD_CREATE
         : r->fn == engine_update ? STD_UPDATE : r->fn == engine_delete ? STD_DELETE : STD_NONE;
}

static const char *param_help(const char *name)
{
    static const char *const help[][2] = {
        {"ws", "Workspace slug or id."},
        {"src", "Source slug."},
        {"dest", "Destination id."},
        {"filter", "Destination filter id."},
        {"plan", "Tracking plan id."},
        {"role", "Role id, or - for every role (policy lists)."},
        {"policy", "Policy id."},
        {"invite", "Invite id."},
        {"user", "User id."},
        {"n", "Access token id."},
        {"slug", "Catalog slug."},
    };
    for (size_t i = 0; i < sizeof help / sizeof help[0]; i++)
        if (!strcmp(help[i][0], name))
            return help[i][1];
    return "Path parameter.";
}

static const char *query_help(const char *name)
{
    static const char *const help[][2] = {
        {"page_size", "Items per page (pageSize is accepted too)."},
        {"page_token", "The next_page_token of the previous page (pageToken is accepted too)."},
        {"validate_only", "true: run every check and answer what would be stored, storing nothing."},
        {"start_time", "Only entries at or after this RFC 3339 time."},
        {"end_time", "Only entries before this RFC 3339 time."},
        {"resource", "Only entries about this resource name."},
        {"include_secrets", "true: write-only values in clear instead of \"<redacted>\" (needs write on the whole "
                            "workspace)."},
    };
    for (size_t i = 0; i < sizeof help / sizeof help[0]; i++)
        if (!strcmp(help[i][0], name))
            return help[i][1];
    return "Query parameter.";
}

static json_t *query_param(const char *name)
{
    json_t *schema = !strcmp(name, "page_size") ? json_pack("{s:s, s:i}", "type", "integer", "minimum", 1)
                   : !strcmp(name, "validate_only") || !strcmp(name, "include_secrets")
                       ? json_pack("{s:s}", "type", "boolean")
                                                    : json_pack("{s:s}", "type", "string");
    return json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", name, "in", "query", "required", 0, "description",
                     query_help(name), "schema", schema);
}

static json_t *header_param(const char *name, const char *help)
{
    return json_pack("{s:s, s:s, s:b, s:s, s:{s:s}}", "name", name, "in", "header", "required", 0, "description",
                     help, "schema", "type", "string");
}

/* The path parameters of a pattern: "{x}" and "{x}:verb" segments. */
static void path_params(const route *r, json_t *params)
{
    for (const char *p = strchr(r->pattern, '{'); p; p = strchr(p + 1, '{')) {
        const char *close = strchr(p, '}');
        if (!close)
            break;
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(close - p - 1), p + 1);
        json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:s, s:{s:s}}", "name", name, "in", "path",
                                                "required", 1, "description", param_help(name), "schema", "type",
                                                "string"));
    }
}

/* A kind's resource object: its accepted fields (the descriptor's table). Their types are
 * the kind's business (its hooks check them); the document names them. */
static json_t *kind_schema(const kind *k)
{
    json_t *props = json_object();
    for (const char *const *f = k->fields; f && *f; f++) {
        json_t *s = !strcmp(*f, "name") ? json_pack("{s:s, s:s}", "type", "string", "description", "Resource name.")
                                        : json_object();
        json_object_set_new(props, *f, s);
    }
    char desc[200], w[64];
    words(k->name, w, sizeof w);
    snprintf(desc, sizeof desc, "A %s. Fields as in the Config API; unknown fields are refused.", w);
    return json_pack("{s:s, s:s, s:o}", "type", "object", "description", desc, "properties", props);
}

static json_t *update_mask_schema(const kind *k)
{
    json_t *paths = json_array();
    for (const char *const *m = k->mask_paths; m && *m; m++) {
        char full[128];
        json_array_append_new(paths, json_string(*m));
        snprintf(full, sizeof full, "%s.%s", k->name, *m);
        json_array_append_new(paths, json_string(full));
    }
    json_t *items = json_array_size(paths) ? json_pack("{s:s, s:o}", "type", "string", "enum", paths)
                                           : (json_decref(paths), json_pack("{s:s}", "type", "string"));
    return json_pack("{s:s, s:s, s:{s:{s:s, s:o}}}", "type", "object", "description",
                     "The fields the update sets (a listed path without a value is reset).", "properties", "paths",
                     "type", "array", "items", items);
}

static json_t *json_content(json_t *schema) { return json_pack("{s:{s:o}}", "application/json", "schema", schema); }

static json_t *wrapped(const char *key, json_t *schema)
{
    return json_pack("{s:s, s:[s], s:{s:o}}", "type", "object", "required", key, "properties", key, schema);
}

static json_t *operation(const route *r, json_t *components)
{
    const kind *k = r->kind;
    std_method std = std_of(r);
    json_t *op = json_object(), *params = json_array(), *responses = json_object();
    char summary[256], opid[256], kname[64], w[64];
    if (k) {
        pascal(k->name, kname, sizeof kname);
        words(k->name, w, sizeof w);
        if (!json_object_get(json_object_get(components, "schemas"), kname))
            json_object_set_new(json_object_get(components, "schemas"), kname, kind_schema(k));
    }
    static const char *const verbs[] = {"", "List", "Get", "Create", "Update", "Delete"};
    if (std != STD_NONE)
        snprintf(summary, sizeof summary, "%s %s%s", !strcmp(r->method, "PUT") ? "Replace" : verbs[std],
                 std == STD_LIST ? k->list_key : w, "");
    else
        snprintf(summary, sizeof summary, "%s %s", r->method, r->pattern);
    if (std == STD_LIST)
        words(k->list_key, summary + 5, sizeof summary - 5);
    /* operationId: method and path, as identifier characters (unique: rows are unique). */
    size_t o = (size_t)snprintf(opid, sizeof opid, "%s", r->method);
    for (size_t i = 0; o + 1 < sizeof opid && i < o; i++)
        opid[i] = (char)tolower((unsigned char)opid[i]);
    bool sep = true;
    for (const char *p = r->pattern; *p && o + 2 < sizeof opid; p++) {
        if (isalnum((unsigned char)*p)) {
            opid[o++] = sep ? (char)toupper((unsigned char)*p) : *p;
            sep = false;
        } else if (*p == ':' && o + 2 < sizeof opid) { /* "a/b" and "a:b" stay apart */
            opid[o++] = '_';
            sep = false;
        } else {
            sep = true;
        }
    }
    opid[o] = '\0';
    json_object_set_new(op, "operationId", json_string(opid));
    json_object_set_new(op, "summary", json_string(summary));

    path_params(r, params);
    if (std == STD_LIST) {
        json_array_append_new(params, query_param("page_size"));
        json_array_append_new(params, query_param("page_token"));
    }
    if (std == STD_CREATE || std == STD_UPDATE || std == STD_DELETE)
        json_array_append_new(params, query_param("validate_only"));
    if (std == STD_CREATE)
        json_array_append_new(params, header_param("Idempotency-Key", "A repeat within 24 hours returns the first "
                                                                      "response."));
    if (std == STD_UPDATE || std == STD_DELETE)
        json_array_append_new(params, header_param("If-Match", "The ETag the change expects (412 when it moved)."));
    if (r->query) {
        const char *q = r->query;
        while (*q) {
            size_t n = strcspn(q, " ");
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)n, q);
            if (n)
                json_array_append_new(params, query_param(name));
            q += n;
            q += strspn(q, " ");
        }
    }
    if (json_array_size(params))
        json_object_set_new(op, "parameters", params);
    else
        json_decref(params);

    /* Request body. */
    bool has_body = !strcmp(r->method, "POST") || !strcmp(r->method, "PUT") || !strcmp(r->method, "PATCH");
    if (has_body) {
        json_t *schema;
        if (std == STD_CREATE || std == STD_UPDATE) {
            schema = wrapped(k->name, schema_ref(kname));
            if (std == STD_UPDATE)
                json_object_set_new(json_object_get(schema, "properties"), "update_mask", update_mask_schema(k));
        } else {
            schema = json_pack("{s:s}", "type", "object");
        }
        json_object_set_new(op, "requestBody", json_pack("{s:b, s:o}", "required", std != STD_NONE, "content",
                                                         json_content(schema)));
    }

    /* Responses. */
    json_t *ok;
    if (!strcmp(r->pattern, "/metrics")) {
        ok = json_pack("{s:s, s:{s:{s:{s:s}}}}", "description", "Prometheus text exposition format 0.0.4.", "content",
                       "text/plain", "schema", "type", "string");
    } else {
        json_t *schema;
        if (std == STD_LIST) {
            schema = wrapped(k->list_key, json_pack("{s:s, s:o}", "type", "array", "items", schema_ref(kname)));
            json_object_set_new(json_object_get(schema, "properties"), "next_page_token",
                                json_pack("{s:[s,s], s:s}", "type", "string", "null", "description",
                                          "The token of the next page; null on the last."));
        } else if (std == STD_GET || std == STD_CREATE || std == STD_UPDATE) {
            schema = wrapped(k->name, schema_ref(kname));
        } else {
            schema = json_pack("{s:s}", "type", "object");
        }
        ok = json_pack("{s:s, s:o}", "description", "Success.", "content", json_content(schema));
        if (std == STD_GET || std == STD_CREATE || std == STD_UPDATE)
            json_object_set_new(ok, "headers", json_pack("{s:{s:s, s:{s:s}}}", "ETag", "description",
                                                         "The resource's version, for If-Match.", "schema", "type",
                                                         "string"));
    }
    json_object_set_new(responses, "200", ok);
    json_object_set_new(responses, "4XX", ref("responses", "Error"));
    json_object_set_new(responses, "5XX", ref("responses", "Error"));
    json_object_set_new(op, "responses", responses);

    /* Security from the row's action: public rows need nothing; token creation also takes
     * a user's HTTP Basic credentials. */
    if (r->action == ACT_PUBLIC)
        json_object_set_new(op, "security", json_array());
    else if (r->action == ACT_TOKEN_CREATE)
        json_object_set_new(op, "security", json_pack("[{s:[]}, {s:[]}]", "bearer", "basic"));
    return op;
}

static json_t *build(void)
{
    json_t *components = json_pack(
        "{s:{s:{s:s, s:[s,s], s:{s:{s:s}, s:{s:s, s:s}}}}, s:{s:{s:s, s:{s:{s:o}}}},"
        " s:{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}}}",
        "schemas", "Error", "type", "object", "required", "error", "code", "properties", "error", "type", "string",
        "code", "type", "integer", "description", "gRPC status code (3 invalid, 5 not found, 7 denied, 16 unauthenticated, ...).",
        "responses", "Error", "description", "An error: {error, code}.", "content", "application/json", "schema",
        schema_ref("Error"),
        "securitySchemes", "bearer", "type", "http", "scheme", "bearer", "description", "An access token.", "basic",
        "type", "http", "scheme", "basic", "description", "A user's e-mail and password (creating access tokens only).");
    json_t *paths = json_object();
    for (size_t i = 0; i < api_nroutes; i++) {
        const route *r = &api_routes[i];
        if (r->asset) /* the dashboard's files are pages, not API operations */
            continue;
        json_t *item = json_object_get(paths, r->pattern);
        if (!item)
            json_object_set_new(paths, r->pattern, item = json_object());
        char m[16];
        snprintf(m, sizeof m, "%s", r->method);
        for (char *p = m; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        json_object_set_new(item, m, operation(r, components));
    }
    return json_pack("{s:s, s:{s:s, s:s, s:s}, s:[{s:s, s:s}], s:[{s:[]}], s:o, s:o}",
                     "openapi", "3.1.0", "info", "title", "Manifold Config API", "version", MANIFOLD_VERSION,
                     "description",
                     "Segment's Config API (/v1beta) as served by Manifold, generated from its route table.",
                     "servers", "url", "/", "description", "This server",
                     "security", "bearer", "paths", paths, "components", components);
}

static char *doc_text;
static size_t doc_len;
static pthread_once_t doc_once = PTHREAD_ONCE_INIT;

static void doc_init(void)
{
    json_t *d = build();
    doc_text = json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER);
    doc_len = strlen(doc_text);
    json_decref(d);
}

json_t *openapi_document(void) { return build(); }

void h_openapi(call *c)
{
    pthread_once(&doc_once, doc_init);
    buf_append(&c->resp->body, doc_text, doc_len);
}
