/* Access tokens (spec §3). The plain token exists only in the create response; the
 * database keeps its keyed hash. A caller sees and manages only tokens whose workspaces
 * are all among its own. */
#include "api/engine.h"
#include "util/json.h"
#include "util/util.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *token_json(const token_row *r)
{
    char name[48];
    snprintf(name, sizeof name, "access-tokens/%lld", r->id);
    json_t *names = json_loads(r->workspace_names ? r->workspace_names : "[]", 0, NULL);
    return json_pack("{s:s, s:s, s:s, s:o, s:s}", "name", name, "description", r->description,
                     "scopes", r->scopes, "workspace_names", names ? names : json_array(),
                     "create_time", r->create_time);
}

/* May the caller manage workspace slug's tokens? Owners may (IAM write), and so may
 * admin-command tokens. */
static bool owns_ws(const call *c, const char *slug)
{
    char target[160];
    snprintf(target, sizeof target, "workspaces/%s/access-tokens", slug);
    return principal_has_ws(&c->who, slug) && iam_allows(&c->who, ACT_WRITE, target);
}

/* A caller sees its user's own tokens, and every token whose workspaces it owns. */
static bool visible(const call *c, const token_row *r)
{
    principal p;
    principal_from_row(&p, r);
    bool mine = c->who.has_user && r->user_id[0] && !strcmp(r->user_id, c->who.user_id);
    for (int i = 0; i < p.nws; i++)
        if (!principal_has_ws(&c->who, p.ws[i]) || (!mine && !owns_ws(c, p.ws[i])))
            return false;
    return true;
}

static void audit_token(call *c, txn *t, const char *verb, const token_row *r, bool *ok)
{
    principal p;
    principal_from_row(&p, r);
    json_t *j = token_json(r);
    char action[32];
    snprintf(action, sizeof action, "access_token.%s", verb);
    for (int i = 0; i < p.nws && *ok; i++) {
        c->has_ws = false;
        char res[200];
        snprintf(res, sizeof res, "workspaces/%s/access-tokens/%lld", p.ws[i], r->id);
        *ok = audit(c, t, action, res, verb[0] == 'd' ? j : NULL, verb[0] == 'c' ? j : NULL);
    }
    json_decref(j);
}

void h_token_create(call *c)
{
    static const char *const top[] = {"access_token", NULL};
    static const char *const fields[] = {"description", "scopes", "workspace_names", NULL};
    json_t *body = call_body(c);
    if (!body || !check_fields(c, body, NULL, top))
        return;
    json_t *at = json_object_get(body, "access_token");
    if (!json_is_object(at)) {
        fail(c, 400, CODE_INVALID, "access_token is required and must be an object");
        return;
    }
    if (!check_fields(c, at, "access_token", fields))
        return;
    const char *desc = json_string_value(json_object_get(at, "description"));
    const char *scopes = json_string_value(json_object_get(at, "scopes"));
    json_t *names = json_object_get(at, "workspace_names");
    if (!desc || !*desc || strlen(desc) > 500) {
        fail(c, 400, CODE_INVALID, "access_token.description is required (a string of 1 to 500 bytes)");
        return;
    }
    if (!scopes || (strcmp(scopes, "workspace") && strcmp(scopes, "workspace:read"))) {
        fail(c, 400, CODE_INVALID, "access_token.scopes must be \"workspace\" or \"workspace:read\"");
        return;
    }
    if (!json_is_array(names) || json_array_size(names) == 0 || json_array_size(names) > AUTH_MAX_WS) {
        fail(c, 400, CODE_INVALID, "access_token.workspace_names must list 1 to %d workspace names", AUTH_MAX_WS);
        return;
    }
    json_t *canon = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v) {
        const char *n = json_string_value(v);
        ws_row w;
        if (!n) {
            json_decref(canon);
            fail(c, 400, CODE_INVALID, "access_token.workspace_names[%zu] must be a string", i);
            return;
        }
        const char *slug = !strncmp(n, "workspaces/", 11) ? n + 11 : n;
        int rc = api_ws_lookup(c->api, slug, &w);
        if (rc == ST_ERROR) {
            json_decref(canon);
            fail_store(c, rc, "workspace");
            return;
        }
        /* Spec §3.1: an unknown workspace is 400/3; one that exists but is not the
         * caller's is 403/7. */
        if (rc != ST_OK) {
            json_decref(canon);
            fail(c, 400, CODE_INVALID, "unknown workspace '%s'", n);
            return;
        }
        if (!principal_has_ws(&c->who, w.slug)) {
            json_decref(canon);
            fail(c, 403, CODE_DENIED, "permission denied");
            return;
        }
        char full[128];
        snprintf(full, sizeof full, "workspaces/%s", w.slug);
        json_array_append_new(canon, json_string(full));
    }

    char plain[TOKEN_TEXT_MAX];
    token_generate(plain);
    token_row r = {0};
    token_hash(plain, strlen(plain), r.hash);
    snprintf(r.description, sizeof r.description, "%s", desc);
    snprintf(r.scopes, sizeof r.scopes, "%s", scopes);
    r.workspace_names = json_to_string(canon);
    json_decref(canon);
    snprintf(r.user_id, sizeof r.user_id, "%s", c->who.user_id);
    rfc3339(now_ms(), r.create_time);

    txn t;
    int rc = store_begin(c->api->st, &t, true);
    bool audited = true;
    if (rc == ST_OK && (rc = store_token_create(&t, &r)) == ST_OK && (audit_token(c, &t, "create", &r, &audited), audited))
        rc = store_commit(&t);
    else
        store_rollback(&t);
    if (!audited) {
        sodium_memzero(plain, sizeof plain);
        token_row_clear(&r);
        return;
    }
    if (rc != ST_OK) {
        sodium_memzero(plain, sizeof plain);
        token_row_clear(&r);
        fail_store(c, rc, "access token");
        return;
    }
    json_t *out = token_json(&r);
    json_object_set_new(out, "token", json_string(plain));
    sodium_memzero(plain, sizeof plain);
    token_row_clear(&r);
    reply(c, out);
}

static bool parse_id(call *c, long long *id)
{
    const char *s = call_param(c, "n");
    char *end;
    *id = strtoll(s, &end, 10);
    if (*end || *id <= 0 || end == s)
        return fail(c, 404, CODE_NOT_FOUND, "access token not found");
    return true;
}

typedef struct list_ctx {
    call *c;
    json_t *arr;
    int want;
    long long last_seen, last_shown;
    bool more;
} list_ctx;

static int list_one(void *ctx, token_row *r)
{
    list_ctx *l = ctx;
    l->last_seen = r->id;
    if (!visible(l->c, r))
        return 0;
    if ((int)json_array_size(l->arr) == l->want) {
        l->more = true;
        return 1;
    }
    json_array_append_new(l->arr, token_json(r));
    l->last_shown = r->id;
    return 0;
}

void h_token_list(call *c)
{
    page p;
    if (!page_parse(c, &p))
        return;
    long long after;
    if (!page_after_id(c, &p, "access-tokens", &after))
        return;
    list_ctx l = {.c = c, .arr = json_array(), .want = p.size};
    txn t;
    store_begin(c->api->st, &t, false);
    /* Tokens of other workspaces are skipped, so scan in batches until the page is full. */
    int rc = ST_OK;
    for (;;) {
        long long before = l.last_seen = after;
        rc = store_token_list(&t, after, 200, list_one, &l);
        if (rc != ST_OK || l.more || l.last_seen == before)
            break;
        after = l.last_seen;
    }
    store_end(&t);
    if (rc != ST_OK) {
        json_decref(l.arr);
        fail_store(c, rc, "access tokens");
        return;
    }
    buf *b = &c->resp->body;
    buf_puts(b, "{\"access_tokens\":");
    json_write(b, l.arr);
    json_decref(l.arr);
    char next[48] = "";
    if (l.more)
        page_id_payload(next, sizeof next, "access-tokens", l.last_shown);
    page_token_write(b, next);
    buf_putc(b, '}');
}

void h_token_get(call *c)
{
    long long id;
    if (!parse_id(c, &id))
        return;
    txn t;
    token_row r = {0};
    store_begin(c->api->st, &t, false);
    int rc = store_token_get(&t, id, &r);
    store_end(&t);
    if (rc == ST_OK && !visible(c, &r))
        rc = ST_NOT_FOUND;
    if (rc != ST_OK)
        fail_store(c, rc, "access token");
    else
        reply(c, token_json(&r));
    token_row_clear(&r);
}

void h_token_delete(call *c)
{
    long long id;
    if (!parse_id(c, &id))
        return;
    txn t;
    token_row r = {0};
    int rc = store_begin(c->api->st, &t, true);
    if (rc == ST_OK)
        rc = store_token_get(&t, id, &r);
    if (rc == ST_OK && !visible(c, &r))
        rc = ST_NOT_FOUND;
    if (rc == ST_OK)
        rc = store_token_delete(&t, id);
    bool audited = true;
    if (rc == ST_OK)
        audit_token(c, &t, "delete", &r, &audited);
    if (rc == ST_OK && audited)
        rc = store_commit(&t);
    else
        store_rollback(&t);
    token_row_clear(&r);
    if (!audited)
        return;
    if (rc != ST_OK) {
        fail_store(c, rc, "access token");
        return;
    }
    auth_forget(id); /* revocation takes effect at once on this process */
    buf_puts(&c->resp->body, "{}");
}
