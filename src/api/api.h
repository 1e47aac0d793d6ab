/* api — the Config API. One route table (routes.c) names every endpoint with the action it
 * performs; router.c matches a request, authenticates it, checks the action against the
 * caller's scope and workspaces, applies the rate limit, and only then calls the handler.
 * Handlers never check permissions themselves. The request context a handler works on and
 * the helpers it calls (fail, reply, call_body, …) live in call.h. */
#ifndef MANIFOLD_API_H
#define MANIFOLD_API_H
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include "auth/auth.h"
#include "catalog/catalog.h"
#include "http/http.h"
#include "store/store.h"

/* gRPC codes used in error bodies (spec §1.3). */
enum {
    CODE_INVALID = 3, CODE_NOT_FOUND = 5, CODE_EXISTS = 6, CODE_DENIED = 7,
    CODE_EXHAUSTED = 8, CODE_PRECONDITION = 9, CODE_UNIMPLEMENTED = 12,
    CODE_INTERNAL = 13, CODE_UNAVAILABLE = 14, CODE_UNAUTHENTICATED = 16,
};

typedef enum route_action {
    ACT_PUBLIC,       /* no credentials (health checks) */
    ACT_TOKEN_CREATE, /* HTTP Basic of a user, or a Bearer token that may write */
    ACT_READ,         /* scope workspace or workspace:read */
    ACT_WRITE,        /* scope workspace */
} route_action;

/* How large a request body a route takes (see api_body_limit). */
typedef enum route_body {
    BODY_DEFAULT, /* --max-body */
    BODY_PLAN,    /* --max-plan-body: whole tracking plans (2,000 rules are 1.5-3 MB), and
                     function code (up to 1 MiB, which JSON escaping may double or more) */
} route_body;

typedef struct api {
    store *st;
    catalog *cat;
    int rate_limit;
    int debugger_events;   /* events per source the debugger API shows (--debugger-events) */
    size_t max_body, max_plan_body; /* see api_set_body_limits */
    struct fnrt *functions; /* the Functions runtime (functions/runtime.h): preview runs code there */
    int max_functions;      /* functions per workspace (--functions-per-workspace); 0: unlimited */
    bool metrics;          /* GET /metrics is served (--metrics on) */
    /* Workspaces never change once created, so they are cached for good. */
    pthread_rwlock_t ws_lock;
    ws_row *ws_cache;
    int ws_n, ws_cap;
} api;

typedef struct call call;
typedef void (*route_fn)(call *);
struct kind;

#define ROUTE_MAX_SEGS 12
typedef struct route {
    const char *method;
    const char *pattern;   /* "/v1beta/workspaces/{ws}/sources/{src}"; "{x}:verb" segments allowed */
    route_action action;
    route_fn fn;
    const struct kind *kind; /* engine routes: the resource kind */
    route_body body;         /* its body limit class */
    /* Query parameters a non-engine handler reads, space-separated ("page_size page_token"):
     * the OpenAPI document lists them (engine routes' are known from their method). */
    const char *query;
    /* The route acts on the whole workspace (export, import): a user needs the action on
     * every area of it (iam_allows_workspace), not only on the workspace object. */
    bool whole_ws;
    /* A query flag that, when true, makes the route's action a write (export's
     * include_secrets: secrets in clear are for whoever may change everything). */
    const char *elevate;
    /* The dashboard's files (ui.c): public, not part of the API, so not in the OpenAPI document. */
    bool asset;
    /* compiled by router_init */
    int obs_id;              /* its metrics label (obs_route) */
    int nseg;
    const char *seg[ROUTE_MAX_SEGS];
    size_t seglen[ROUTE_MAX_SEGS];
} route;

/* routes.c */
extern route api_routes[];
extern const size_t api_nroutes;

/* router.c */
api *api_new(store *st, catalog *cat, int rate_limit);
void api_free(api *);
void api_handle(request *req, response *resp, void *ctx); /* the http_handler */
/* Body limits: routes of class BODY_PLAN take the larger of the two. */
void api_set_body_limits(api *a, size_t max_body, size_t max_plan_body);
/* The http_config body_limit callback: the limit of the route the request matches, known
 * from the method and path alone so the transport can refuse a body before reading it. */
size_t api_body_limit(const request *req, void *ctx);
/* Finds a workspace by slug or id, through the cache. */
int api_ws_lookup(api *a, const char *slug_or_id, ws_row *out);

/* handlers */
void h_healthz(call *), h_readyz(call *);
/* ui.c — the browser dashboard: GET / (302 to /ui/), GET /ui/ and GET /ui/{file} */
void h_ui_root(call *), h_ui_asset(call *);
/* ops.c — GET /metrics (Prometheus) and GET /v1beta/openapi.json (openapi.c builds it) */
void h_metrics(call *), h_openapi(call *);
/* The OpenAPI 3.1 document of the route table and the kinds (openapi.c). */
json_t *openapi_document(void);
void h_token_create(call *), h_token_list(call *), h_token_get(call *), h_token_delete(call *);
void h_ws_list(call *), h_ws_get(call *);
void h_catsrc_list(call *), h_catsrc_get(call *), h_catdst_list(call *), h_catdst_get(call *);

#endif
