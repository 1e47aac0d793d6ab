#include "app/admin.h"
#include "api/engine.h"
#include "util/json.h"
#include "util/util.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Admin commands leave audit entries too; their actor is "admin", they have no token, and
 * their request id starts with "cli-". */
static int admin_audit(txn *t, const char *ws_slug, const char *action, const char *resource, json_t *after)
{
    char when[32];
    int64_t ms = now_ms();
    rfc3339(ms, when);
    char *a = after ? json_to_string(after) : NULL;
    /* No HTTP request: the id says where the change came from. */
    char rid[24] = "cli-";
    random_lower(rid + 4, 16);
    audit_row r = {.workspace = ws_slug, .time = when, .time_ms = ms, .actor = "admin", .action = action,
                   .resource = resource, .after = a, .request_id = rid};
    int rc = store_audit_add(t, &r);
    free(a);
    return rc;
}

static int token_insert(txn *t, const char *ws_slug, const char *scope, const char *description,
                        const char *user_id, char *out)
{
    token_row r = {0};
    token_generate(out);
    token_hash(out, strlen(out), r.hash);
    snprintf(r.description, sizeof r.description, "%s", description);
    snprintf(r.scopes, sizeof r.scopes, "%s", scope);
    json_t *names = json_pack("[s+]", "workspaces/", ws_slug);
    r.workspace_names = json_to_string(names);
    json_decref(names);
    snprintf(r.user_id, sizeof r.user_id, "%s", user_id ? user_id : "");
    rfc3339(now_ms(), r.create_time);
    int rc = store_token_create(t, &r);
    if (rc == ST_OK) {
        char res[200];
        snprintf(res, sizeof res, "workspaces/%s/access-tokens/%lld", ws_slug, r.id);
        json_t *after = json_pack("{s:s, s:s, s:s}", "description", description, "scopes", scope, "create_time",
                                  r.create_time);
        rc = admin_audit(t, ws_slug, "access_token.create", res, after);
        json_decref(after);
    }
    token_row_clear(&r);
    return rc;
}

int admin_bootstrap(store *st, const char *slug, const char *email, char *token_out)
{
    txn t;
    if (store_begin(st, &t, true) != ST_OK)
        return -1;
    int n = store_ws_count(&t);
    if (n != 0) {
        store_rollback(&t);
        return n > 0 ? 0 : -1;
    }
    ws_row w = {0};
    random_lower(w.id, 10);
    snprintf(w.slug, sizeof w.slug, "%s", slug);
    snprintf(w.display_name, sizeof w.display_name, "My Workspace");
    rfc3339(now_ms(), w.create_time);
    user_row u = {0};
    snprintf(u.id, sizeof u.id, "usr_");
    random_alnum(u.id + 4, 20);
    snprintf(u.email, sizeof u.email, "%s", email);
    snprintf(u.create_time, sizeof u.create_time, "%s", w.create_time);
    int rc = store_ws_create(&t, &w);
    if (rc == ST_OK)
        rc = store_user_create(&t, &u);
    char subject[64], resource[128];
    snprintf(subject, sizeof subject, "users/%s", u.id);
    snprintf(resource, sizeof resource, "workspaces/%s", w.slug);
    if (rc == ST_OK)
        rc = iam_grant(&t, w.slug, "workspace-owner", subject, resource);
    if (rc == ST_OK)
        rc = token_insert(&t, w.slug, "workspace", "bootstrap owner token", u.id, token_out);
    if (rc != ST_OK) {
        store_rollback(&t);
        /* Another process sharing the database bootstrapped first: not an error. */
        return rc == ST_CONFLICT ? 0 : -1;
    }
    return store_commit(&t) == ST_OK ? 1 : -1;
}

int admin_token_create(store *st, const char *ws_slug, const char *scope, const char *description,
                       const char *user_id, char *out)
{
    txn t;
    ws_row w;
    if (store_begin(st, &t, true) != ST_OK)
        return ST_ERROR;
    int rc = store_ws_get(&t, ws_slug, &w);
    if (rc == ST_OK)
        rc = token_insert(&t, w.slug, scope, description, user_id, out);
    if (rc != ST_OK) {
        store_rollback(&t);
        return rc;
    }
    return store_commit(&t);
}

/* The role a user gets when neither --role nor an invite says: owner for the first user
 * of a workspace (someone must administer it), nothing once it has an owner (least
 * privilege: owners grant more through invites or policies). */
static int default_role(txn *t, const char *ws_slug, int accepted, const char **role)
{
    int owners = 0, rc = accepted ? ST_OK : iam_count_owners(t, ws_slug, &owners);
    *role = accepted || owners ? "" : "workspace-owner";
    return rc;
}

int admin_user_create(store *st, const char *email, const char *password, const char *ws_slug, const char *role,
                      char id_out[32], bool *no_access)
{
    user_row u = {0};
    snprintf(u.id, sizeof u.id, "usr_");
    random_alnum(u.id + 4, 20);
    snprintf(u.email, sizeof u.email, "%s", email);
    rfc3339(now_ms(), u.create_time);
    if (password_hash(password, u.password_hash) != 0)
        return ST_ERROR;
    txn t;
    ws_row w;
    if (store_begin(st, &t, true) != ST_OK)
        return ST_ERROR;
    int rc = store_ws_get(&t, ws_slug, &w);
    if (rc == ST_OK)
        rc = store_user_create(&t, &u);
    /* Open invites for this e-mail become the user's policies; without any invite (and
     * without --role) see default_role. */
    char subject[64], resource[128];
    snprintf(subject, sizeof subject, "users/%s", u.id);
    snprintf(resource, sizeof resource, "workspaces/%s", w.slug);
    int accepted = 0;
    if (rc == ST_OK)
        rc = iam_accept_invites(&t, u.email, u.id, &accepted);
    *no_access = false;
    if (rc == ST_OK && !role) {
        rc = default_role(&t, w.slug, accepted, &role);
        *no_access = !accepted && !*role;
    }
    if (rc == ST_OK && *role) {
        if (!iam_role(role))
            rc = ST_NOT_FOUND;
        else
            rc = iam_grant(&t, w.slug, iam_role(role)->id, subject, resource);
    }
    if (rc == ST_OK) {
        char res[64];
        snprintf(res, sizeof res, "users/%s", u.id);
        json_t *after = json_pack("{s:s, s:s, s:i}", "email", u.email, "role", role, "invites_accepted", accepted);
        rc = admin_audit(&t, w.slug, "user.create", res, after);
        json_decref(after);
    }
    sodium_memzero(u.password_hash, sizeof u.password_hash);
    if (rc != ST_OK) {
        store_rollback(&t);
        return rc;
    }
    snprintf(id_out, 32, "%s", u.id);
    return store_commit(&t);
}
