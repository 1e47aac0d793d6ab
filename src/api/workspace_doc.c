/* The canonical workspace document: sections, names, serialisation. See workspace_doc.h. */
#include "api/workspace_doc.h"
#include "util/json.h"
#include "util/util.h"
#include <stdlib.h>
#include <string.h>

static const char *const sh_functions[] = {"functions", "*", NULL};
static const char *const sh_plans[] = {"tracking-plans", "*", NULL};
static const char *const sh_sources[] = {"sources", "*", NULL};
static const char *const sh_schema[] = {"sources", "*", "schema-config", NULL};
static const char *const sh_dests[] = {"sources", "*", "destinations", "*", NULL};
static const char *const sh_filters[] = {"sources", "*", "destinations", "*", "filters", "*", NULL};
static const char *const sh_conns[] = {"tracking-plans", "*", "source-connections", "*", NULL};
static const char *const sh_policies[] = {"roles", "*", "policies", "*", NULL};

const doc_section doc_sections[] = {
    {"functions", &kind_function, sh_functions},
    {"tracking_plans", &kind_tracking_plan, sh_plans},
    {"sources", &kind_source, sh_sources},
    {"schema_configs", &kind_schema_config, sh_schema},
    {"destinations", &kind_destination, sh_dests},
    {"filters", &kind_filter, sh_filters},
    {"source_connections", &kind_source_connection, sh_conns},
    {"policies", &kind_policy, sh_policies},
};
const size_t doc_nsections = sizeof doc_sections / sizeof doc_sections[0];

/* An id as the API writes them: slugs, catalog keys ("customer.io"), prefixed KSUIDs. */
static bool id_ok(const char *s, size_t n)
{
    if (!n || n > 100 || (n == 1 && *s == '.') || (n == 2 && !memcmp(s, "..", 2)))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
              ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

bool doc_name_ok(const doc_section *s, const char *rel, char *why, size_t cap)
{
    const char *p = rel;
    for (const char *const *seg = s->shape; *seg; seg++) {
        size_t n = strcspn(p, "/");
        bool last = !seg[1];
        bool bad = !strcmp(*seg, "*") ? !id_ok(p, n) : (n != strlen(*seg) || memcmp(p, *seg, n));
        if (bad || (last ? p[n] != '\0' : p[n] != '/')) {
            buf b = {0};
            for (const char *const *x = s->shape; *x; x++)
                buf_printf(&b, "%s%s", x == s->shape ? "" : "/", !strcmp(*x, "*") ? "<id>" : *x);
            snprintf(why, cap, "a %s name must be %s", s->k->name, buf_cstr(&b));
            buf_free(&b);
            return false;
        }
        p += n + !last;
    }
    return true;
}

typedef struct cur_ctx {
    call *c;
    const doc_section *s;
    json_t *out;
    bool secrets;
    size_t prefix; /* strlen("workspaces/<ws>/") */
} cur_ctx;

static int cur_one(void *ctx, res_row *r)
{
    cur_ctx *x = ctx;
    if (strlen(r->name) <= x->prefix)
        return 0;
    json_t *body = json_loads(r->body, 0, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        body = json_object();
    }
    json_t *o = x->s->k->export(x->c, r, body, x->secrets);
    json_decref(body);
    if (o)
        json_object_set_new(x->out, r->name + x->prefix, o);
    return 0;
}

json_t *doc_current(call *c, txn *t, const doc_section *s, bool secrets)
{
    cur_ctx x = {c, s, json_object(), secrets, 12 + strlen(c->ws.slug)};
    int rc = store_res_list_ws(t, c->ws.slug, s->k->name, "", 1 << 30, cur_one, &x);
    if (rc != ST_OK) {
        json_decref(x.out);
        fail_store(c, rc, s->k->name);
        return NULL;
    }
    return x.out;
}

json_t *doc_build(call *c, txn *t, bool secrets)
{
    json_t *doc = json_pack("{s:i, s:s}", "version", WS_DOC_VERSION, "workspace", c->ws.slug);
    for (size_t i = 0; i < doc_nsections; i++) {
        json_t *cur = doc_current(c, t, &doc_sections[i], secrets);
        if (!cur) {
            json_decref(doc);
            return NULL;
        }
        /* by name, whatever order the store listed them in */
        size_t n;
        const char **names = json_sorted_keys(cur, &n);
        json_t *arr = json_array();
        for (size_t j = 0; j < n; j++) {
            json_t *o = json_object_get(cur, names[j]);
            json_object_set_new(o, "name", json_string(names[j]));
            json_array_append(arr, o);
        }
        free(names);
        json_decref(cur);
        json_object_set_new(doc, doc_sections[i].key, arr);
    }
    return doc;
}
