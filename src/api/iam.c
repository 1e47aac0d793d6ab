/* IAM (spec §12): built-in roles, policies binding a user to a role on a resource, invites,
 * the users of a workspace, and the audit trail — and iam_allows, the single place where
 * the router decides whether a principal may perform a route's action on a resource.
 *
 * A policy on resource R covers R and everything under it ("workspaces/w" covers the whole
 * workspace, "workspaces/w/sources/js" covers js, its destinations and filters). A role
 * grants read and/or write on areas of the workspace: sources (with destinations, filters,
 * schema config and delivery metrics), tracking plans, functions, and IAM itself. */
#include "api/engine.h"
#include "util/json.h"
#include "util/util.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INVITE_MAX_POLICIES 100
#define RESOURCE_NAME_MAX 1024

enum { AREA_WS = 1, AREA_SOURCES = 2, AREA_PLANS = 4, AREA_FUNCTIONS = 8, AREA_IAM = 16, AREA_ALL = 31 };

static const role_def roles[] = {
    {"workspace-owner", "Workspace Owner", "Full read and edit access to everything in the workspace, including IAM and the audit trail", AREA_ALL, AREA_ALL},
    {"workspace-member", "Workspace Member", "Can see the workspace; other access comes from further policies", AREA_WS, 0},
    {"source-admin", "Source Admin", "Read and edit sources, their destinations, filters and schema settings", AREA_WS | AREA_SOURCES, AREA_SOURCES},
    {"source-read-only", "Source Read-only", "Read sources, their destinations, filters and schema settings; test filters", AREA_WS | AREA_SOURCES, 0},
    {"tracking-plan-admin", "Tracking Plan Admin", "Read and edit tracking plans and their source connections", AREA_WS | AREA_PLANS, AREA_PLANS},
    {"tracking-plan-read-only", "Tracking Plan Read-only", "Read tracking plans; validate events against them", AREA_WS | AREA_PLANS, 0},
    {"function-admin", "Function Admin", "Read, edit and deploy functions", AREA_WS | AREA_FUNCTIONS, AREA_FUNCTIONS},
    {"function-read-only", "Function Read-only", "Read and preview functions", AREA_WS | AREA_FUNCTIONS, 0},
};
#define NROLES (sizeof roles / sizeof roles[0])

const role_def *iam_role(const char *s)
{
    const char *id = strrchr(s, '/') ? strrchr(s, '/') + 1 : s;
    if (strchr(s, '/') && (strncmp(s, "workspaces/", 11) || !strstr(s, "/roles/")))
        return NULL;
    for (size_t i = 0; i < NROLES; i++)
        if (!strcmp(roles[i].id, id))
            return &roles[i];
    return NULL;
}

/* Which area a resource name belongs to: the segment after "workspaces/<w>/". */
static unsigned area_of(const char *target, const char **ws_end)
{
    const char *p = target + 11; /* after "workspaces/" */
    const char *slash = strchr(p, '/');
    *ws_end = slash ? slash : p + strlen(p);
    if (!slash)
        return AREA_WS;
    const char *a = slash + 1;
    size_t n = strcspn(a, "/:"); /* "event-delivery-metrics:batchGetSummary" is in its area */
#define IS(s) (n == strlen(s) && !strncmp(a, s, n))
    if (IS("sources") || IS("event-delivery-metrics"))
        return AREA_SOURCES;
    if (IS("tracking-plans"))
        return AREA_PLANS;
    if (IS("functions"))
        return AREA_FUNCTIONS;
#undef IS
    return AREA_IAM; /* roles, invites, users, audit-events, and anything new: owners only */
}

bool iam_allows(const principal *p, route_action action, const char *target)
{
    if (!p->has_user)
        return true; /* admin-command tokens: scope and workspaces were checked already */
    if (strncmp(target, "workspaces/", 11))
        return true; /* not workspace-scoped (catalog, filter preview) */
    const char *ws_end;
    unsigned area = area_of(target, &ws_end);
    size_t ws_len = (size_t)(ws_end - target);
    size_t tlen = strlen(target);
    for (int i = 0; p->grants && i < p->grants->n; i++) {
        const grant *g = &p->grants->g[i];
        const role_def *r = iam_role(g->role);
        if (!r || !((action == ACT_WRITE ? r->write : r->read) & area))
            continue;
        size_t rl = strlen(g->resource);
        /* The policy's resource covers the target (itself or an ancestor) … */
        if (rl <= tlen && !strncmp(g->resource, target, rl) && (target[rl] == '\0' || target[rl] == '/'))
            return true;
        /* … or, for reading the workspace object itself, any policy inside the workspace. */
        if (area == AREA_WS && action != ACT_WRITE && rl >= ws_len && !strncmp(g->resource, target, ws_len) &&
            (g->resource[ws_len] == '\0' || g->resource[ws_len] == '/'))
            return true;
    }
    return false;
}

bool iam_allows_workspace(const principal *p, route_action action, const char *ws_slug)
{
    static const char *const areas[] = {"sources", "tracking-plans", "functions", "roles"};
    for (size_t i = 0; i < sizeof areas / sizeof areas[0]; i++) {
        char target[256];
        snprintf(target, sizeof target, "workspaces/%s/%s", ws_slug, areas[i]);
        if (!iam_allows(p, action, target))
            return false;
    }
    return true;
}

/* ---- audit trail --------------------------------------------------------------------- */

bool audit(call *c, txn *t, const char *action, const char *resource, json_t *before, json_t *after)
{
    char ws[128] = "";
    if (c->has_ws)
        snprintf(ws, sizeof ws, "%s", c->ws.slug);
    else if (!strncmp(resource, "workspaces/", 11))
        snprintf(ws, sizeof ws, "%.*s", (int)strcspn(resource + 11, "/"), resource + 11);
    char actor[64], tok[48], when[32];
    if (c->who.has_user)
        snprintf(actor, sizeof actor, "users/%s", c->who.user_id);
    else
        snprintf(actor, sizeof actor, "admin");
    snprintf(tok, sizeof tok, "access-tokens/%lld", c->who.token_id);
    int64_t ms = now_ms();
    rfc3339(ms, when);
    char *b = before ? json_to_string(before) : NULL, *a = after ? json_to_string(after) : NULL;
    audit_row r = {.workspace = ws, .time = when, .time_ms = ms, .actor = actor,
                   .access_token = c->who.token_id ? tok : NULL, .action = action, .resource = resource,
                   .before = b, .after = a, .request_id = c->req->request_id};
    int rc = store_audit_add(t, &r);
    free(b);
    free(a);
    return rc == ST_OK || fail_store(c, rc, "audit event");
}

typedef struct audit_ctx { buf *b; int n, want; long long last; bool more; } audit_ctx;

static int audit_one(void *ctx, const audit_row *a)
{
    audit_ctx *l = ctx;
    if (l->n == l->want) {
        l->more = true;
        return 1;
    }
    char id[24];
    snprintf(id, sizeof id, "%lld", a->id);
    json_t *before = a->before ? json_loads(a->before, 0, NULL) : NULL;
    json_t *after = a->after ? json_loads(a->after, 0, NULL) : NULL;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:o?, s:o?, s:s?}", "id", id, "time", a->time, "actor",
                          a->actor, "access_token", a->access_token, "action", a->action, "resource", a->resource,
                          "before", before, "after", after, "request_id", a->request_id);
    if (!json_object_get(o, "access_token"))
        json_object_set_new(o, "access_token", json_null());
    if (!json_object_get(o, "before"))
        json_object_set_new(o, "before", json_null());
    if (!json_object_get(o, "after"))
        json_object_set_new(o, "after", json_null());
    if (l->n++)
        buf_putc(l->b, ',');
    json_write(l->b, o);
    json_decref(o);
    l->last = a->id;
    return 0;
}

/* RFC 3339 → ms since the epoch; -1 when unreadable. */
static long long parse_time(const char *s)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    long long ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; isdigit((unsigned char)*p); p++)
            if (digits++ < 3)
                ms = ms * 10 + (*p - '0');
        while (digits++ < 3)
            ms *= 10;
    }
    long long off = 0;
    if (*p == 'Z' || *p == 'z')
        p++;
    else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1])) {
        int h = 0, m = 0;
        if (sscanf(p + 1, "%2d:%2d", &h, &m) != 2)
            return -1;
        off = (h * 60 + m) * 60 * (*p == '+' ? 1 : -1);
        p += 6;
    } else
        return -1;
    if (*p)
        return -1;
    return ((long long)timegm(&tm) - off) * 1000 + ms;
}

void h_audit_list(call *c)
{
    page p;
    if (!page_parse(c, &p))
        return;
    long long before = 0, start = 0, end = 0;
    if (p.after[0]) {
        char *e;
        before = strtoll(p.after, &e, 10);
        if (*e || before <= 0)
            return (void)fail(c, 400, CODE_INVALID, "invalid page_token");
    }
    const char *st = req_query(c->req, "start_time"), *et = req_query(c->req, "end_time");
    if (st && (start = parse_time(st)) < 0)
        return (void)fail(c, 400, CODE_INVALID, "start_time must be an RFC 3339 time");
    if (et && (end = parse_time(et)) < 0)
        return (void)fail(c, 400, CODE_INVALID, "end_time must be an RFC 3339 time");
    /* end_time is exclusive: a window that ends at or before its start holds nothing (and
     * end_time 1970-01-01T00:00:00Z must not read as "no end"). */
    bool empty = et && end <= start;
    buf out = {0};
    audit_ctx l = {.b = &out, .want = p.size};
    buf_puts(&out, "{\"audit_events\":[");
    txn t;
    store_begin(c->api->st, &t, false);
    int rc = store_audit_list(&t, c->ws.slug, before, req_query(c->req, "resource"), start, end,
                              empty ? 0 : p.size + 1, audit_one, &l);
    store_end(&t);
    if (rc != ST_OK) {
        buf_free(&out);
        return (void)fail_store(c, rc, "audit events");
    }
    buf_putc(&out, ']');
    char next[24] = "";
    if (l.more)
        snprintf(next, sizeof next, "%lld", l.last);
    page_token_write(&out, next);
    buf_putc(&out, '}');
    buf_free(&c->resp->body);
    c->resp->body = out;
}

/* ---- roles ------------------------------------------------------------------------- */

void h_roles_list(call *c)
{
    page p;
    if (!page_parse(c, &p))
        return;
    size_t off = 0;
    if (p.after[0]) {
        char *e;
        off = strtoul(p.after, &e, 10);
        if (*e || off > NROLES)
            return (void)fail(c, 400, CODE_INVALID, "invalid page_token");
    }
    json_t *arr = json_array();
    size_t end = off + (size_t)p.size < NROLES ? off + (size_t)p.size : NROLES;
    for (size_t i = off; i < end; i++) {
        char name[160];
        snprintf(name, sizeof name, "workspaces/%s/roles/%s", c->ws.slug, roles[i].id);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "name", name, "id", roles[i].id, "display_name",
                                             roles[i].display_name, "description", roles[i].description));
    }
    buf *b = &c->resp->body;
    buf_puts(b, "{\"roles\":");
    json_write(b, arr);
    json_decref(arr);
    char next[24] = "";
    if (end < NROLES)
        snprintf(next, sizeof next, "%zu", end);
    page_token_write(b, next);
    buf_putc(b, '}');
}

/* ---- policies ---------------------------------------------------------------------- */

static const char *const policy_fields[] = {"name", "subject", "resource", NULL};
static const char *const no_paths[] = {NULL};

static bool in_workspace(call *c, const char *resource)
{
    size_t n = strlen(c->ws.slug);
    return !strncmp(resource, "workspaces/", 11) && !strncmp(resource + 11, c->ws.slug, n) &&
           (resource[11 + n] == '\0' || resource[11 + n] == '/') && !strstr(resource, "//") &&
           resource[strlen(resource) - 1] != '/';
}

static bool policy_parent_ok(call *c, const char *parent)
{
    const char *role = strrchr(parent, '/') + 1;
    if (!iam_role(role))
        return fail(c, 404, CODE_NOT_FOUND, "role '%s' not found", role);
    return true;
}

static bool user_exists(call *c, const char *subject)
{
    if (strncmp(subject, "users/", 6))
        return fail(c, 400, CODE_INVALID, "policy.subject must be users/<id>");
    txn t;
    user_row u;
    store_begin(c->api->st, &t, false);
    int rc = store_user_get(&t, subject + 6, &u);
    store_end(&t);
    if (rc == ST_NOT_FOUND)
        return fail(c, 400, CODE_INVALID, "policy.subject: unknown user '%s'", subject);
    return rc == ST_OK || fail_store(c, rc, "user");
}

static bool policy_create(call *c, json_t *obj, const char *name, json_t *body)
{
    const char *subject = json_string_value(json_object_get(obj, "subject"));
    const char *resource = json_string_value(json_object_get(obj, "resource"));
    if (!subject || !resource)
        return fail(c, 400, CODE_INVALID, "policy.subject and policy.resource are required strings");
    if (!in_workspace(c, resource))
        return fail(c, 400, CODE_INVALID, "policy.resource '%s' is not in workspace %s", resource, c->ws.slug);
    if (strlen(resource) >= RESOURCE_NAME_MAX)
        return fail(c, 400, CODE_INVALID, "policy.resource is too long");
    if (!user_exists(c, subject))
        return false;
    const char *r = strstr(name, "/roles/") + 7;
    json_object_set_new(body, "subject", json_string(subject));
    json_object_set_new(body, "resource", json_string(resource));
    json_object_set_new(body, "role", json_stringn(r, strcspn(r, "/")));
    return true;
}

static json_t *policy_render(call *c, const res_row *r, json_t *body)
{
    (void)c;
    return json_pack("{s:s, s:O, s:O}", "name", r->name, "subject", json_object_get(body, "subject"), "resource",
                     json_object_get(body, "resource"));
}

static const char *policy_ref(json_t *body) { return json_string_value(json_object_get(body, "subject")); }

/* A granted or removed policy takes effect at once on this process (other processes
 * re-read within a second). */
static void policy_committed(call *c)
{
    (void)c;
    auth_forget_all();
}

/* ---- the last owner ---- */

/* A workspace keeps at least one owner: a workspace-owner policy on the workspace itself.
 * Removing the last one would leave its IAM and audit trail to admin tokens alone, so the
 * policy DELETE and the user removal that would do it are refused (400). The count runs
 * under a workspace lock, so two concurrent removals cannot both see the other owner. */
typedef struct owners_ctx {
    const char *ws_name;      /* "workspaces/<slug>" */
    const char *skip_policy;  /* the policy being removed, or NULL */
    const char *skip_subject; /* the user being removed, or NULL */
    int others, removed;      /* owner policies that stay / that would go */
} owners_ctx;

static bool is_owner_policy(const json_t *body, const char *ws_name)
{
    const char *role = json_string_value(json_object_get(body, "role"));
    const char *resource = json_string_value(json_object_get(body, "resource"));
    return role && resource && iam_role(role) == iam_role("workspace-owner") &&
           !strcmp(resource, ws_name);
}

static int count_owner(void *ctx, res_row *r)
{
    owners_ctx *o = ctx;
    json_t *body = json_loads(r->body, 0, NULL);
    if (body && is_owner_policy(body, o->ws_name)) {
        const char *subject = json_string_value(json_object_get(body, "subject"));
        bool goes = (o->skip_policy && !strcmp(r->name, o->skip_policy)) ||
                    (o->skip_subject && subject && !strcmp(subject, o->skip_subject));
        if (goes)
            o->removed++;
        else
            o->others++;
    }
    json_decref(body);
    return 0;
}

/* False (the call failed, 400) when removing skip_policy or skip_subject would take the
 * workspace's last owner policy. */
static bool keeps_an_owner(call *c, txn *t, const char *skip_policy, const char *skip_subject)
{
    char ws_name[160];
    snprintf(ws_name, sizeof ws_name, "workspaces/%s", c->ws.slug);
    owners_ctx o = {ws_name, skip_policy, skip_subject, 0, 0};
    if (store_ws_lock(t, c->ws.slug) != ST_OK ||
        store_res_list_ws(t, c->ws.slug, "policy", "", 1 << 30, count_owner, &o) != ST_OK)
        return fail_store(c, ST_ERROR, "policy");
    if (o.removed && !o.others)
        return fail(c, 400, CODE_INVALID,
                    "the workspace must keep an owner: grant workspace-owner on %s to another user first",
                    ws_name);
    return true;
}

int iam_count_owners(txn *t, const char *ws_slug, int *owners)
{
    char ws_name[160];
    snprintf(ws_name, sizeof ws_name, "workspaces/%s", ws_slug);
    owners_ctx o = {ws_name, NULL, NULL, 0, 0};
    int rc = store_ws_lock(t, ws_slug);
    if (rc == ST_OK)
        rc = store_res_list_ws(t, ws_slug, "policy", "", 1 << 30, count_owner, &o);
    *owners = o.others;
    return rc;
}

static bool policy_before_delete(call *c, txn *t, const res_row *r)
{
    char ws_name[160];
    snprintf(ws_name, sizeof ws_name, "workspaces/%s", c->ws.slug);
    json_t *body = json_loads(r->body, 0, NULL);
    bool owner = body && is_owner_policy(body, ws_name);
    json_decref(body);
    /* only removing an owner policy needs the count (and its lock) */
    return !owner || keeps_an_owner(c, t, r->name, NULL);
}

/* Exported with its resource relative to the workspace ("" for the workspace itself), so
 * that a document imports into another workspace; subjects are users of the server. */
static json_t *policy_export(call *c, const res_row *r, json_t *body, bool secrets)
{
    (void)r, (void)secrets;
    const char *res = json_string_value(json_object_get(body, "resource"));
    size_t n = 11 + strlen(c->ws.slug);
    const char *rel = res && strlen(res) >= n ? res + n + (res[n] == '/') : "";
    return json_pack("{s:O, s:s}", "subject", json_object_get(body, "subject") ?: json_null(), "resource", rel);
}

const kind kind_policy = {
    .name = "policy",
    .collection = "policies",
    .list_key = "policies",
    .id_mode = ID_GENERATED,
    .id_prefix = "pol_",
    .fields = policy_fields,
    .mask_paths = no_paths,
    .create = policy_create,
    .render = policy_render,
    .parent_ok = policy_parent_ok,
    .ref = policy_ref,
    .before_delete = policy_before_delete,
    .after_commit = policy_committed,
    .export = policy_export,
};

int iam_grant(txn *t, const char *ws_slug, const char *role, const char *subject, const char *resource)
{
    char id[40];
    ksuid(id);
    buf n = {0}, parent = {0};
    buf_printf(&parent, "workspaces/%s/roles/%s", ws_slug, role);
    buf_printf(&n, "%s/policies/pol_%s", parent.data, id);
    json_t *body = json_pack("{s:s, s:s, s:s}", "subject", subject, "resource", resource, "role", role);
    res_row r = {.name = n.data, .workspace = (char *)ws_slug, .parent = parent.data, .kind = "policy",
                 .id = strrchr(n.data, '/') + 1, .body = json_to_string(body), .version = 1, .ref = (char *)subject};
    rfc3339(now_ms(), r.create_time);
    memcpy(r.update_time, r.create_time, sizeof r.create_time);
    int rc = store_res_insert(t, &r);
    free(r.body);
    json_decref(body);
    buf_free(&n);
    buf_free(&parent);
    return rc;
}

/* ---- invites ----------------------------------------------------------------------- */

static const char *const invite_fields[] = {"name", "email", "policies", "create_time", "expire_time", NULL};

static bool valid_email(const char *e)
{
    const char *at = strchr(e, '@');
    if (!at || at == e || !at[1] || strchr(at + 1, '@') || strlen(e) > 254 || !strchr(at + 1, '.'))
        return false;
    for (const char *p = e; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' || *p == ',')
            return false;
    return true;
}

static bool invite_create(call *c, json_t *obj, const char *name, json_t *body)
{
    (void)name;
    const char *email = json_string_value(json_object_get(obj, "email"));
    if (!email || !valid_email(email))
        return fail(c, 400, CODE_INVALID, "invite.email must be an e-mail address");
    json_t *pols = json_object_get(obj, "policies");
    if (!json_is_array(pols) || !json_array_size(pols) || json_array_size(pols) > INVITE_MAX_POLICIES)
        return fail(c, 400, CODE_INVALID, "invite.policies must list 1 to %d {role, resource}", INVITE_MAX_POLICIES);
    json_t *canon = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(pols, i, p) {
        const char *role = json_string_value(json_object_get(p, "role"));
        const char *res = json_string_value(json_object_get(p, "resource"));
        if (!json_is_object(p) || !role || !res || json_object_size(p) != 2) {
            json_decref(canon);
            return fail(c, 400, CODE_INVALID, "invite.policies[%zu] must be {\"role\", \"resource\"}", i);
        }
        const role_def *r = iam_role(role);
        if (!r) {
            json_decref(canon);
            return fail(c, 404, CODE_NOT_FOUND, "role '%s' not found", role);
        }
        if (!in_workspace(c, res) || strlen(res) >= RESOURCE_NAME_MAX) {
            json_decref(canon);
            return fail(c, 400, CODE_INVALID, "invite.policies[%zu].resource is not in workspace %s", i, c->ws.slug);
        }
        char rn[160];
        snprintf(rn, sizeof rn, "workspaces/%s/roles/%s", c->ws.slug, r->id);
        json_array_append_new(canon, json_pack("{s:s, s:s}", "role", rn, "resource", res));
    }
    char lower[256];
    size_t n = strlen(email);
    for (size_t k = 0; k <= n; k++)
        lower[k] = (char)tolower((unsigned char)email[k]);
    char exp[32];
    rfc3339(now_ms() + 7LL * 24 * 3600 * 1000, exp);
    json_object_set_new(body, "email", json_string(lower));
    json_object_set_new(body, "policies", canon);
    json_object_set_new(body, "expire_time", json_string(exp));
    return true;
}

typedef struct dup_ctx { const char *ws, *self; bool dup; } dup_ctx;

static int invite_dup(void *ctx, res_row *r)
{
    dup_ctx *d = ctx;
    if (!strcmp(r->workspace, d->ws) && strcmp(r->name, d->self))
        d->dup = true;
    return 0;
}

/* One marker row per (workspace, e-mail): a second invite for the address is then a
 * primary-key conflict even when two requests race, which the list check below cannot see
 * (an uncommitted twin is invisible to it). Same idea as a source's tracking-plan link. */
static void invite_marker(buf *name, buf *parent, const char *ws, const char *email)
{
    buf_printf(parent, "workspaces/%s/invite-emails", ws);
    buf_printf(name, "%s/%s", parent->data, email);
}

static bool invite_after_create(call *c, txn *t, const res_row *r)
{
    dup_ctx d = {r->workspace, r->name, false};
    int rc = store_res_list_ref(t, "invite", r->ref, invite_dup, &d);
    if (rc != ST_OK)
        return fail_store(c, rc, "invite");
    if (d.dup)
        return fail(c, 409, CODE_EXISTS, "an invite for %s already exists", r->ref);
    buf n = {0}, parent = {0};
    invite_marker(&n, &parent, r->workspace, r->ref);
    res_row m = {.name = n.data, .workspace = r->workspace, .parent = parent.data, .kind = "invite_email",
                 .id = r->ref, .body = "{}", .version = 1};
    memcpy(m.create_time, r->create_time, sizeof m.create_time);
    memcpy(m.update_time, r->create_time, sizeof m.update_time);
    rc = store_res_insert(t, &m);
    buf_free(&n);
    buf_free(&parent);
    if (rc == ST_CONFLICT)
        return fail(c, 409, CODE_EXISTS, "an invite for %s already exists", r->ref);
    return rc == ST_OK || fail_store(c, rc, "invite");
}

static bool invite_before_delete(call *c, txn *t, const res_row *r)
{
    if (!r->ref)
        return true;
    buf n = {0}, parent = {0};
    invite_marker(&n, &parent, r->workspace, r->ref);
    int rc = store_res_delete(t, n.data);
    buf_free(&n);
    buf_free(&parent);
    return rc == ST_OK || rc == ST_NOT_FOUND || fail_store(c, rc, "invite");
}

static json_t *invite_render(call *c, const res_row *r, json_t *body)
{
    (void)c;
    return json_pack("{s:s, s:O, s:s, s:O, s:O}", "name", r->name, "email", json_object_get(body, "email"),
                     "create_time", r->create_time, "expire_time", json_object_get(body, "expire_time"), "policies",
                     json_object_get(body, "policies"));
}

static const char *invite_ref(json_t *body) { return json_string_value(json_object_get(body, "email")); }

const kind kind_invite = {
    .name = "invite",
    .collection = "invites",
    .list_key = "invites",
    .id_mode = ID_GENERATED,
    .id_prefix = "inv_",
    .fields = invite_fields,
    .mask_paths = no_paths,
    .create = invite_create,
    .render = invite_render,
    .after_create = invite_after_create,
    .before_delete = invite_before_delete,
    .ref = invite_ref,
};

typedef struct accept_ctx { txn *t; const char *user; int rc; char **names; int n, cap, accepted; } accept_ctx;

static void accept_drop(accept_ctx *a, char *name)
{
    if (a->n == a->cap)
        a->names = realloc(a->names, (size_t)(a->cap = a->cap ? a->cap * 2 : 4) * sizeof *a->names);
    a->names[a->n++] = name;
}

static int accept_one(void *ctx, res_row *r)
{
    accept_ctx *a = ctx;
    json_t *body = json_loads(r->body, 0, NULL);
    /* An invite past its expire_time (or without a readable one) grants nothing; it stays
     * listed until an owner deletes it. */
    const char *exp = json_string_value(json_object_get(body, "expire_time"));
    long long exp_ms = exp ? parse_time(exp) : -1;
    if (exp_ms < 0 || exp_ms <= now_ms()) {
        json_decref(body);
        return 0;
    }
    size_t i;
    json_t *p;
    char subject[64];
    snprintf(subject, sizeof subject, "users/%s", a->user);
    json_array_foreach(json_object_get(body, "policies"), i, p) {
        const role_def *role = iam_role(json_string_value(json_object_get(p, "role")) ?: "");
        const char *res = json_string_value(json_object_get(p, "resource"));
        if (role && res && a->rc == ST_OK)
            a->rc = iam_grant(a->t, r->workspace, role->id, subject, res);
    }
    json_decref(body);
    a->accepted++;
    accept_drop(a, strdup(r->name));
    buf n = {0}, parent = {0};
    invite_marker(&n, &parent, r->workspace, r->ref ? r->ref : "");
    accept_drop(a, strdup(n.data));
    buf_free(&n);
    buf_free(&parent);
    return 0;
}

int iam_accept_invites(txn *t, const char *email, const char *user_id, int *accepted)
{
    char lower[256];
    snprintf(lower, sizeof lower, "%s", email);
    for (char *q = lower; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    accept_ctx a = {.t = t, .user = user_id, .rc = ST_OK};
    int rc = store_res_list_ref(t, "invite", lower, accept_one, &a);
    for (int i = 0; i < a.n; i++) {
        if (rc == ST_OK && a.rc == ST_OK) {
            rc = store_res_delete(t, a.names[i]);
            if (rc == ST_NOT_FOUND && i % 2) /* an invite made before markers existed */
                rc = ST_OK;
        }
        free(a.names[i]);
    }
    free(a.names);
    if (accepted)
        *accepted = a.accepted;
    return rc != ST_OK ? rc : a.rc;
}

/* ---- users of a workspace ---------------------------------------------------------- */

typedef struct subj_ctx { char **ids; int n, cap; } subj_ctx;

static int collect_subject(void *ctx, res_row *r)
{
    subj_ctx *s = ctx;
    if (!r->ref || strncmp(r->ref, "users/", 6))
        return 0;
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->ids[i], r->ref + 6))
            return 0;
    if (s->n == s->cap)
        s->ids = realloc(s->ids, (size_t)(s->cap = s->cap ? s->cap * 2 : 16) * sizeof *s->ids);
    s->ids[s->n++] = strdup(r->ref + 6);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void h_users_list(call *c)
{
    page p;
    if (!page_parse(c, &p))
        return;
    subj_ctx s = {0};
    txn t;
    store_begin(c->api->st, &t, false);
    int rc = store_res_list_ws(&t, c->ws.slug, "policy", "", 1 << 30, collect_subject, &s);
    qsort(s.ids, (size_t)s.n, sizeof *s.ids, cmp_str);
    json_t *arr = json_array();
    const char *last = NULL;
    bool more = false;
    for (int i = 0; rc == ST_OK && i < s.n; i++) {
        if (strcmp(s.ids[i], p.after) <= 0)
            continue;
        if ((int)json_array_size(arr) == p.size) {
            more = true;
            break;
        }
        user_row u;
        if (store_user_get(&t, s.ids[i], &u) != ST_OK)
            continue;
        char name[64];
        snprintf(name, sizeof name, "users/%s", u.id);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "name", name, "id", u.id, "email", u.email));
        last = s.ids[i];
    }
    store_end(&t);
    if (rc != ST_OK)
        fail_store(c, rc, "users");
    else {
        buf *b = &c->resp->body;
        buf_puts(b, "{\"users\":");
        json_write(b, arr);
        page_token_write(b, more ? last : NULL);
        buf_putc(b, '}');
    }
    json_decref(arr);
    for (int i = 0; i < s.n; i++)
        free(s.ids[i]);
    free(s.ids);
}

/* DELETE /v1beta/workspaces/{ws}/users/{user} (inferred): removes the user from the
 * workspace — every policy they hold in it — so their tokens lose all access at once. */
typedef struct del_ctx {
    const char *ws;
    const char *on; /* collect only the policies on this resource or under it; NULL: all */
    char **names;
    json_t **before;
    int n, cap;
    bool oom;   /* the listing stopped short: nothing may be deleted */
    bool owner; /* one of them is an owner policy of the workspace */
} del_ctx;

static bool covers(const char *resource, const char *name)
{
    size_t n = strlen(name);
    return resource && strncmp(resource, name, n) == 0 && (resource[n] == '\0' || resource[n] == '/');
}

static int collect_policy(void *ctx, res_row *r)
{
    del_ctx *d = ctx;
    if (strcmp(r->workspace, d->ws))
        return 0;
    json_t *body = json_loads(r->body, 0, NULL);
    if (d->on && !covers(json_string_value(json_object_get(body, "resource")), d->on)) {
        json_decref(body);
        return 0;
    }
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 8;
        char **names = realloc(d->names, (size_t)cap * sizeof *names);
        if (names)
            d->names = names;
        json_t **before = realloc(d->before, (size_t)cap * sizeof *before);
        if (before)
            d->before = before;
        if (!names || !before) {
            json_decref(body);
            d->oom = true;
            return 1; /* stops the listing */
        }
        d->cap = cap;
    }
    char ws_name[160];
    snprintf(ws_name, sizeof ws_name, "workspaces/%s", d->ws);
    d->owner |= body && is_owner_policy(body, ws_name);
    /* The audit entry shows the removed policy, as a DELETE of the policy would. */
    d->before[d->n] = body ? policy_render(NULL, r, body) : NULL;
    json_decref(body);
    d->names[d->n++] = strdup(r->name);
    return 0;
}

static void del_ctx_free(del_ctx *d)
{
    for (int i = 0; i < d->n; i++) {
        free(d->names[i]);
        json_decref(d->before[i]);
    }
    free(d->names);
    free(d->before);
}

bool iam_drop_policies_on(call *c, txn *t, const char *name, bool *dropped)
{
    del_ctx d = {.ws = c->ws.slug, .on = name};
    *dropped = false;
    int rc = store_res_list_ws(t, c->ws.slug, "policy", "", 1 << 30, collect_policy, &d);
    if (d.oom)
        rc = ST_ERROR;
    for (int i = 0; i < d.n && rc == ST_OK; i++) {
        rc = store_res_delete(t, d.names[i]);
        if (rc == ST_NOT_FOUND) { /* removed meanwhile by someone else */
            rc = ST_OK;
            continue;
        }
        if (rc == ST_OK && !audit(c, t, "policy.delete", d.names[i], d.before[i], NULL))
            rc = ST_ERROR;
        *dropped = true;
    }
    del_ctx_free(&d);
    if (rc != ST_OK && !c->failed)
        fail_store(c, ST_ERROR, "policy");
    return rc == ST_OK;
}

/* ---- invites' grants on a deleted resource ---- */

/* Deleting a resource must take the open invites' grants on it too, as it takes the
 * policies: else a later resource of the same name would be granted on acceptance. */
typedef struct inv_ctx {
    const char *on; /* the deleted resource */
    char **names;   /* invites with a grant on it or under it */
    int n, cap;
    bool oom;
} inv_ctx;

/* The invite's policies except those on `on` or under it (a new array); *hit tells
 * whether any were left out. */
static json_t *policies_without(json_t *body, const char *on, bool *hit)
{
    json_t *kept = json_array();
    size_t i;
    json_t *p;
    *hit = false;
    json_array_foreach(json_object_get(body, "policies"), i, p) {
        if (covers(json_string_value(json_object_get(p, "resource")), on))
            *hit = true;
        else
            json_array_append(kept, p);
    }
    return kept;
}

static int collect_invite(void *ctx, res_row *r)
{
    inv_ctx *d = ctx;
    json_t *body = json_loads(r->body, 0, NULL);
    bool hit = false;
    json_decref(body ? policies_without(body, d->on, &hit) : NULL);
    json_decref(body);
    if (!hit)
        return 0;
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 4;
        char **names = realloc(d->names, (size_t)cap * sizeof *names);
        if (!names) {
            d->oom = true;
            return 1; /* stops the listing */
        }
        d->names = names;
        d->cap = cap;
    }
    if (!(d->names[d->n] = strdup(r->name))) {
        d->oom = true;
        return 1;
    }
    d->n++;
    return 0;
}

/* Stores the invite without its grants on `on` (deleted with its e-mail marker when none
 * is left) and audits it. The listing ran unlocked, so the row is re-read under a lock. */
static int prune_invite(call *c, txn *t, const char *name, const char *on)
{
    res_row r = {0};
    int rc = store_res_get_locked(t, name, &r, false);
    if (rc == ST_NOT_FOUND)
        return ST_OK; /* accepted or deleted meanwhile */
    json_t *body = rc == ST_OK ? json_loads(r.body, 0, NULL) : NULL;
    bool hit = false;
    json_t *kept = body ? policies_without(body, on, &hit) : NULL;
    if (rc == ST_OK && !body)
        rc = ST_ERROR;
    if (rc == ST_OK && hit) {
        json_t *before = invite_render(c, &r, body), *after = NULL;
        if (!json_array_size(kept)) {
            rc = invite_before_delete(c, t, &r) ? store_res_delete(t, name) : ST_ERROR;
        } else {
            long long old = r.version;
            json_object_set(body, "policies", kept);
            free(r.body);
            r.body = json_to_string(body);
            r.version = old + 1;
            rfc3339(now_ms(), r.update_time);
            rc = r.body ? store_res_update(t, &r, old) : ST_ERROR;
            after = invite_render(c, &r, body);
        }
        if (rc == ST_OK && !audit(c, t, after ? "invite.update" : "invite.delete", name, before, after))
            rc = ST_ERROR;
        json_decref(before);
        json_decref(after);
    }
    json_decref(kept);
    json_decref(body);
    res_row_clear(&r);
    return rc;
}

bool iam_drop_invite_grants_on(call *c, txn *t, const char *name)
{
    inv_ctx d = {.on = name};
    int rc = store_res_list_ws(t, c->ws.slug, "invite", "", 1 << 30, collect_invite, &d);
    if (d.oom)
        rc = ST_ERROR;
    for (int i = 0; i < d.n; i++) {
        if (rc == ST_OK)
            rc = prune_invite(c, t, d.names[i], name);
        free(d.names[i]);
    }
    free(d.names);
    if (rc != ST_OK && !c->failed)
        fail_store(c, ST_ERROR, "invite");
    return rc == ST_OK;
}

void h_user_delete(call *c)
{
    char subject[96];
    snprintf(subject, sizeof subject, "users/%s", call_param(c, "user"));
    del_ctx d = {.ws = c->ws.slug};
    txn t;
    if (store_begin(c->api->st, &t, true) != ST_OK)
        return (void)fail_store(c, ST_ERROR, "user");
    int rc = store_res_list_ref(&t, "policy", subject, collect_policy, &d);
    if (d.oom)
        rc = ST_ERROR;
    if (rc == ST_OK && d.n == 0)
        rc = ST_NOT_FOUND;
    if (rc == ST_OK && d.owner && !keeps_an_owner(c, &t, NULL, subject))
        rc = ST_ERROR; /* already answered */
    for (int i = 0; i < d.n && rc == ST_OK; i++) {
        rc = store_res_delete(&t, d.names[i]);
        if (rc == ST_OK && !audit(c, &t, "policy.delete", d.names[i], d.before[i], NULL))
            rc = ST_ERROR;
    }
    if (rc == ST_OK && store_commit(&t) == ST_OK) {
        auth_forget_all();
        buf_puts(&c->resp->body, "{}");
    } else {
        store_rollback(&t);
        if (!c->failed)
            fail_store(c, rc == ST_OK ? ST_ERROR : rc, "user");
    }
    del_ctx_free(&d);
}
