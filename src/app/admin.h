/* admin — operations that work on the database directly (no token: local access to the
 * database is the credential): first-start bootstrap, and the token/user sub-commands. */
#ifndef MANIFOLD_ADMIN_H
#define MANIFOLD_ADMIN_H
#include <stdbool.h>
#include "auth/auth.h"
#include "store/store.h"

/* On an empty database: workspace SLUG ("My Workspace"), owner user EMAIL, and an owner
 * token (scope workspace). Writes the plain token to out (TOKEN_TEXT_MAX) and returns 1;
 * returns 0 when the database already had a workspace, -1 on failure. */
int admin_bootstrap(store *st, const char *slug, const char *email, char *token_out);

/* Creates a token; plain token written to out. Returns ST_* codes; ST_NOT_FOUND when the
 * workspace does not exist. */
int admin_token_create(store *st, const char *ws_slug, const char *scope, const char *description,
                       const char *user_id, char *out);
/* Creates a user with an Argon2id password hash, turns open invites for the e-mail into
 * the user's policies, and grants role on workspace ws_slug ("" for none; NULL: owner
 * when no invite was accepted and the workspace has no owner yet, else nothing) — all in
 * one transaction. *no_access tells that the NULL role granted nothing and no invite did.
 * ST_NOT_FOUND: no such workspace or role. */
int admin_user_create(store *st, const char *email, const char *password, const char *ws_slug, const char *role,
                      char id_out[32], bool *no_access);

#endif
