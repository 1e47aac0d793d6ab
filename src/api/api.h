/* api — the Config API. One route table (routes.c) names every endpoint with the action it
 * performs; router.c matches a request, authenticates it, checks the action against the
 * caller's scope and workspaces, applies the rate limit, and only then calls the handler.
 * Handlers never check permissions themselves. Errors leave through fail(), which writes
 * the spec's {"error": "...", "code": N} body. */
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

typedef struct api {
    store *st;
    catalog *cat;
    int rate_limit;
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
    /* compiled by router_init */
    int nseg;
    const char *seg[ROUTE_MAX_SEGS];
    size_t seglen[ROUTE_MAX_SEGS];
} route;

#define CALL_MAX_PARAMS 6
struct call {
    api *api;
    request *req;
    response *resp;
    const route *route;
    principal who;
    bool authed;
    ws_row ws;             /* resolved {ws}, when the route has one */
    bool has_ws;
    int nparams;
    const char *pname[CALL_MAX_PARAMS];
    size_t pname_len[CALL_MAX_PARAMS];
    const char *pval[CALL_MAX_PARAMS];
    json_t *body;          /* parsed lazily by call_body */
    bool failed;
};

/* routes.c */
extern route api_routes[];
extern const size_t api_nroutes;

/* router.c */
api *api_new(store *st, catalog *cat, int rate_limit);
void api_free(api *);
void api_handle(request *req, response *resp, void *ctx); /* the http_handler */
const char *call_param(const call *c, const char *name);
/* Writes an error; always returns false so handlers can `return fail(...)`. */
bool fail(call *c, int status, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
bool fail_store(call *c, int rc, const char *what);
/* Sends v (reference stolen) as the 200 body. */
void reply(call *c, json_t *v);
/* The request body as a JSON object ({} when empty); NULL after fail() on bad JSON. */
json_t *call_body(call *c);
/* Checks that every key of obj is allowed; lowerCamelCase aliases are renamed to their
 * snake_case form. where names the object in messages ("access_token"). */
bool check_fields(call *c, json_t *obj, const char *where, const char *const *allowed);
/* Finds a workspace by slug or id, through the cache. */
int api_ws_lookup(api *a, const char *slug_or_id, ws_row *out);

/* page.c — page_size and page_token, with tokens signed so they cannot be forged. */
typedef struct page {
    int size;
    char after[512];   /* the payload of the page token ("" on the first page) */
} page;
bool page_parse(call *c, page *p);
/* Appends ,"next_page_token":"..." for payload (empty payload = last page). */
void page_token_write(buf *out, const char *payload);
/* Exposed for unit tests. */
void page_token_encode(const char *payload, char *out, size_t cap);
int page_token_decode(const char *token, char *payload, size_t cap);

/* handlers */
void h_healthz(call *), h_readyz(call *);
void h_token_create(call *), h_token_list(call *), h_token_get(call *), h_token_delete(call *);
void h_ws_list(call *), h_ws_get(call *);
void h_catsrc_list(call *), h_catsrc_get(call *), h_catdst_list(call *), h_catdst_get(call *);

#endif
