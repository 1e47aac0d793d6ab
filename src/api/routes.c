/* The route table: every endpoint of the API, one row each. The action column drives
 * authentication and authorisation centrally (router.c); a path with {ws} is checked
 * against the caller's workspaces before the handler runs. Adding an endpoint is adding
 * a row here. */
#include "api/api.h"

/* Designated initialisers: the compiled fields are filled in by router_init. */
#define R(m, p, a, f) {.method = m, .pattern = p, .action = a, .fn = f}

route api_routes[] = {
    R("GET", "/healthz", ACT_PUBLIC, h_healthz),
    R("GET", "/readyz", ACT_PUBLIC, h_readyz),

    /* §3 access tokens */
    R("POST", "/v1beta/access-tokens", ACT_TOKEN_CREATE, h_token_create),
    R("GET", "/v1beta/access-tokens", ACT_WRITE, h_token_list),
    R("GET", "/v1beta/access-tokens/{n}", ACT_WRITE, h_token_get),
    R("DELETE", "/v1beta/access-tokens/{n}", ACT_WRITE, h_token_delete),

    /* §4, §5 catalogs */
    R("GET", "/v1beta/catalog/sources", ACT_READ, h_catsrc_list),
    R("GET", "/v1beta/catalog/sources/{slug}", ACT_READ, h_catsrc_get),
    R("GET", "/v1beta/catalog/destinations", ACT_READ, h_catdst_list),
    R("GET", "/v1beta/catalog/destinations/{slug}", ACT_READ, h_catdst_get),

    /* §6 workspaces */
    R("GET", "/v1beta/workspaces", ACT_READ, h_ws_list),
    R("GET", "/v1beta/workspaces/{ws}", ACT_READ, h_ws_get),
};

const size_t api_nroutes = sizeof api_routes / sizeof api_routes[0];
