/* call — one API request as a handler sees it (the matched route, the authenticated
 * principal, the resolved workspace, the path parameters) and the helpers every handler
 * uses to read the request and answer it. The router fills a call in and hands it to a
 * handler; this file depends on nothing above it, so the router, IAM, paging and the
 * kinds all depend on it and never on each other for these. Errors leave through fail(),
 * which writes the spec's {"error": "...", "code": N} body. */
#ifndef MANIFOLD_CALL_H
#define MANIFOLD_CALL_H
#include "api/api.h"

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
    /* The write transaction of a workspace import: hooks that read other resources (a
     * destination's function, a forwarding source) read through it, so they see what the
     * import created before them. NULL otherwise (they open a read of their own). */
    struct txn *tx;
    bool failed;
};

/* call.c */
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
/* A boolean query parameter's value (req_query): "true"/"1" → 1, absent, "false" or "0"
 * → 0, anything else → -1 (the caller answers 400). */
int query_flag(const char *v);

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
/* Lists keyed by a row id sign "<list>:<id>" ("access-tokens:41"), so a token of another
 * list is refused. page_after_id reads it (id 0 on the first page; false when it answered
 * 400); page_id_payload writes the next one. */
bool page_after_id(call *c, const page *p, const char *list, long long *id);
void page_id_payload(char *out, size_t cap, const char *list, long long id);

#endif
