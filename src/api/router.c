/* The router: match → authenticate → authorise → rate-limit → handler. Everything a
 * handler may assume (an authenticated principal allowed to perform the route's action on
 * the route's workspace) is established here, once, for every route. */
#include "api/engine.h"
#include "http/durable.h"
#include "obs/obs.h"
#include "util/json.h"
#include "util/util.h"
#include <ctype.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- set-up ---------------------------------------------------------------------- */

static void compile_routes(void)
{
    obs_init();
    for (size_t i = 0; i < api_nroutes; i++) {
        route *r = &api_routes[i];
        r->obs_id = obs_route(r->pattern);
        r->nseg = 0;
        for (const char *p = r->pattern; *p;) {
            while (*p == '/')
                p++;
            if (!*p)
                break;
            const char *e = strchr(p, '/');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            r->seg[r->nseg] = p;
            r->seglen[r->nseg] = n;
            r->nseg++;
            p += n;
        }
    }
}

api *api_new(store *st, catalog *cat, int rate_limit)
{
    compile_routes();
    api *a = calloc(1, sizeof *a);
    a->st = st;
    a->cat = cat;
    a->rate_limit = rate_limit;
    a->max_body = a->max_plan_body = (size_t)1 << 20;
    a->max_functions = 25; /* functions-runtime.md §1: Segment's default */
    a->metrics = true;
    pthread_rwlock_init(&a->ws_lock, NULL);
    return a;
}

void api_free(api *a)
{
    if (!a)
        return;
    pthread_rwlock_destroy(&a->ws_lock);
    free(a->ws_cache);
    free(a);
}

/* ---- workspace cache ---------------------------------------------------------------- */

int api_ws_lookup(api *a, const char *key, ws_row *out)
{
    pthread_rwlock_rdlock(&a->ws_lock);
    for (int i = 0; i < a->ws_n; i++) {
        if (!strcmp(a->ws_cache[i].slug, key) || !strcmp(a->ws_cache[i].id, key)) {
            *out = a->ws_cache[i];
            pthread_rwlock_unlock(&a->ws_lock);
            return ST_OK;
        }
    }
    pthread_rwlock_unlock(&a->ws_lock);
    txn t;
    store_begin(a->st, &t, false);
    int rc = store_ws_get(&t, key, out);
    store_end(&t);
    if (rc != ST_OK)
        return rc; /* misses are not cached: the workspace may be created later */
    pthread_rwlock_wrlock(&a->ws_lock);
    if (a->ws_n < 4096) {
        if (a->ws_n == a->ws_cap) {
            a->ws_cap = a->ws_cap ? a->ws_cap * 2 : 8;
            a->ws_cache = realloc(a->ws_cache, (size_t)a->ws_cap * sizeof *a->ws_cache);
        }
        a->ws_cache[a->ws_n++] = *out;
    }
    pthread_rwlock_unlock(&a->ws_lock);
    return ST_OK;
}

/* ---- matching ---------------------------------------------------------------------- */

/* Matches one pattern segment against a decoded path segment. "{x}" takes the whole
 * segment; "{x}:verb" requires the literal suffix ":verb" and captures the rest. */
static bool seg_match(call *c, const char *pat, size_t plen, const char *seg)
{
    if (pat[0] != '{')
        return strlen(seg) == plen && !memcmp(pat, seg, plen);
    const char *close = memchr(pat, '}', plen);
    size_t suffix_len = plen - (size_t)(close - pat) - 1;
    size_t sl = strlen(seg);
    if (sl <= suffix_len || memcmp(seg + sl - suffix_len, close + 1, suffix_len))
        return false;
    if (suffix_len) /* the captured value must not itself carry a verb */
        for (size_t i = 0; i < sl - suffix_len; i++)
            if (seg[i] == ':')
                return false;
    if (c->nparams == CALL_MAX_PARAMS)
        return false;
    c->pname[c->nparams] = pat + 1;
    c->pname_len[c->nparams] = (size_t)(close - pat) - 1;
    c->pval[c->nparams] = seg; /* trim_verbs cuts a ":verb" suffix once the route is chosen */
    c->nparams++;
    return true;
}

static const route *match(call *c, bool *path_known)
{
    request *r = c->req;
    *path_known = false;
    for (size_t i = 0; i < api_nroutes; i++) {
        const route *rt = &api_routes[i];
        if (rt->nseg != r->nseg)
            continue;
        c->nparams = 0;
        int k = 0;
        while (k < rt->nseg && seg_match(c, rt->seg[k], rt->seglen[k], r->segs[k]))
            k++;
        if (k < rt->nseg)
            continue;
        *path_known = true;
        /* HEAD of a dashboard file: the GET's headers (libmicrohttpd sends no body). */
        if (!strcmp(rt->method, r->method) || (rt->asset && !strcmp(r->method, "HEAD")))
            return rt;
    }
    c->nparams = 0;
    return NULL;
}

void api_set_body_limits(api *a, size_t max_body, size_t max_plan_body)
{
    a->max_body = max_body;
    a->max_plan_body = max_plan_body > max_body ? max_plan_body : max_body;
}

size_t api_body_limit(const request *req, void *ctx)
{
    api *a = ctx;
    call c = {.api = a, .req = (request *)req};
    bool known;
    const route *rt = match(&c, &known);
    return rt && rt->body == BODY_PLAN ? a->max_plan_body : a->max_body;
}

/* Cuts ":verb" off captured values so handlers see the bare id. */
static void trim_verbs(call *c)
{
    const route *rt = c->route;
    int p = 0;
    for (int k = 0; k < rt->nseg; k++) {
        if (rt->seg[k][0] != '{')
            continue;
        const char *close = memchr(rt->seg[k], '}', rt->seglen[k]);
        size_t suffix = rt->seglen[k] - (size_t)(close - rt->seg[k]) - 1;
        if (suffix) {
            char *v = (char *)c->pval[p];
            v[strlen(v) - suffix] = '\0';
        }
        p++;
    }
}

/* ---- authentication ----------------------------------------------------------------- */

/* HTTP Basic with a user's e-mail and password: only for creating access tokens. */
static bool auth_basic(call *c, const char *b64)
{
    unsigned char raw[512];
    long n = b64_decode(b64, strlen(b64), raw, sizeof raw - 1);
    if (n <= 0)
        return fail(c, 401, CODE_UNAUTHENTICATED, "invalid credentials");
    raw[n] = '\0';
    char *colon = strchr((char *)raw, ':');
    if (!colon || memchr(raw, '\0', (size_t)n))
        return fail(c, 401, CODE_UNAUTHENTICATED, "invalid credentials");
    *colon = '\0';
    /* Password guessing is rate-limited per e-mail, before any hashing work is spent. */
    if (c->api->rate_limit > 0) {
        unsigned char h[8];
        crypto_generichash(h, sizeof h, raw, strlen((char *)raw), NULL, 0);
        long long key = -(long long)((((unsigned long long)h[0] << 48) | ((unsigned long long)h[1] << 40) |
                                      ((unsigned long long)h[2] << 32) | ((unsigned long long)h[3] << 24) |
                                      ((unsigned long long)h[4] << 16) | ((unsigned long long)h[5] << 8) | h[6]) + 1);
        int remaining, retry;
        int64_t reset;
        if (!ratelimit_take(key, c->api->rate_limit, &remaining, &retry, &reset)) {
            sodium_memzero(raw, sizeof raw);
            char v[16];
            snprintf(v, sizeof v, "%d", retry);
            resp_header(c->resp, "Retry-After", v);
            return fail(c, 429, CODE_EXHAUSTED, "too many attempts; retry later");
        }
    }
    txn t;
    user_row u = {0};
    store_begin(c->api->st, &t, false);
    int rc = store_user_by_email(&t, (char *)raw, &u);
    /* Unknown e-mails cost the same hash as known ones (no user enumeration by timing). */
    int v = password_verify(rc == ST_OK ? u.password_hash
                                        : "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$"
                                          "S0oR7ajXkYEhBKvLOnrNdFsx7y8t4rfP0LtRBaH2JjM",
                            colon + 1);
    bool ok = rc == ST_OK && v == 1;
    sodium_memzero(raw, sizeof raw);
    if (!ok) {
        store_end(&t);
        if (rc == ST_ERROR)
            return fail(c, 503, CODE_UNAVAILABLE, "database unavailable");
        if (v < 0) {
            resp_header(c->resp, "Retry-After", "1");
            return fail(c, 429, CODE_EXHAUSTED, "too many password checks in progress; retry");
        }
        return fail(c, 401, CODE_UNAUTHENTICATED, "invalid credentials");
    }
    memset(&c->who, 0, sizeof c->who);
    c->who.can_write = true;
    snprintf(c->who.scopes, sizeof c->who.scopes, "workspace");
    snprintf(c->who.user_id, sizeof c->who.user_id, "%s", u.id);
    rc = principal_load_grants(&t, &c->who, u.id);
    store_end(&t);
    if (rc != ST_OK)
        return fail(c, 503, CODE_UNAVAILABLE, "database unavailable");
    /* The user's workspaces are those where they hold any policy. */
    for (int i = 0; c->who.grants && i < c->who.grants->n && c->who.nws < AUTH_MAX_WS; i++) {
        const char *r = c->who.grants->g[i].resource + 11;
        char slug[112];
        snprintf(slug, sizeof slug, "%.*s", (int)strcspn(r, "/"), r);
        if (!principal_has_ws(&c->who, slug))
            snprintf(c->who.ws[c->who.nws++], sizeof c->who.ws[0], "%s", slug);
    }
    c->authed = true;
    return true;
}

static bool authenticate(call *c)
{
    const char *h = req_header(c->req, "Authorization");
    if (!h)
        return fail(c, 401, CODE_UNAUTHENTICATED, "missing access token");
    if (!strncasecmp(h, "Bearer ", 7)) {
        const char *tok = h + 7;
        while (*tok == ' ')
            tok++;
        int rc = auth_bearer(c->api->st, tok, strlen(tok), &c->who);
        if (rc == ST_ERROR)
            return fail(c, 503, CODE_UNAVAILABLE, "database unavailable");
        if (rc != ST_OK)
            return fail(c, 401, CODE_UNAUTHENTICATED, "invalid access token");
        c->authed = true;
        c->req->token_id = c->who.token_id; /* the access line names the token by its id */
        return true;
    }
    if (!strncasecmp(h, "Basic ", 6) && c->route->action == ACT_TOKEN_CREATE)
        return auth_basic(c, h + 6);
    return fail(c, 401, CODE_UNAUTHENTICATED, "invalid access token");
}

static bool rate_limit(call *c)
{
    if (!c->who.token_id || c->api->rate_limit <= 0)
        return true;
    int remaining, retry;
    int64_t reset;
    bool ok = ratelimit_take(c->who.token_id, c->api->rate_limit, &remaining, &retry, &reset);
    char v[32];
    snprintf(v, sizeof v, "%d", c->api->rate_limit);
    resp_header(c->resp, "X-RateLimit-Limit", v);
    snprintf(v, sizeof v, "%d", remaining);
    resp_header(c->resp, "X-RateLimit-Remaining", v);
    snprintf(v, sizeof v, "%lld", (long long)reset);
    resp_header(c->resp, "X-RateLimit-Reset", v);
    if (ok)
        return true;
    snprintf(v, sizeof v, "%d", retry);
    resp_header(c->resp, "Retry-After", v);
    return fail(c, 429, CODE_EXHAUSTED, "rate limit exceeded: %d requests per second", c->api->rate_limit);
}

/* The action the call performs: the route's, or a write when its elevate flag is set. */
static route_action call_action(call *c)
{
    bool elevated = c->route->elevate && query_flag(req_query(c->req, c->route->elevate)) == 1;
    return elevated ? ACT_WRITE : c->route->action;
}

static bool authorize(call *c)
{
    route_action act = call_action(c);
    if ((act == ACT_WRITE || act == ACT_TOKEN_CREATE) && !c->who.can_write)
        return fail(c, 403, CODE_DENIED, "insufficient scope");
    const char *ws = call_param(c, "ws");
    if (!ws)
        return true;
    int rc = api_ws_lookup(c->api, ws, &c->ws);
    if (rc == ST_ERROR)
        return fail(c, 503, CODE_UNAVAILABLE, "database unavailable");
    /* Deny before revealing whether a workspace the caller cannot see exists. */
    if (rc != ST_OK)
        return principal_has_ws(&c->who, ws) ? fail(c, 404, CODE_NOT_FOUND, "workspace not found")
                                              : fail(c, 403, CODE_DENIED, "permission denied");
    if (!principal_has_ws(&c->who, c->ws.slug))
        return fail(c, 403, CODE_DENIED, "permission denied");
    c->has_ws = true;
    if (c->who.has_user && c->route->whole_ws) {
        if (!iam_allows_workspace(&c->who, act, c->ws.slug))
            return fail(c, 403, CODE_DENIED, "permission denied");
    } else if (c->who.has_user) {
        /* The resource the route acts on, named like a resource ("workspaces/w/…"). */
        char target[2048];
        size_t n = 0;
        for (int i = 1; i < c->req->nseg && n < sizeof target - 1; i++) {
            const char *seg = i == 2 ? c->ws.slug : c->req->segs[i];
            int w = snprintf(target + n, sizeof target - n, "%s%s", i > 1 ? "/" : "", seg);
            n += w > 0 ? (size_t)w : 0;
        }
        if (n >= sizeof target - 1 || !iam_allows(&c->who, act, target))
            return fail(c, 403, CODE_DENIED, "permission denied");
    }
    return true;
}

/* A write's group could not be made durable: an error in place of the success it would
 * have claimed. */
static void answer_lost(request *req)
{
    resp_error(req->resp, 503, CODE_UNAVAILABLE, "the change could not be made durable; it was not applied");
}

static void dispatch(call *c);

static void dispatch_work(void *arg) { dispatch(arg); }

/* Every call runs with deferred durability: a write's answer waits for its group commit
 * with the connection suspended, not in a thread (http/durable.h). */
void api_handle(request *req, response *resp, void *ctx)
{
    api *a = ctx;
    call c = {.api = a, .req = req, .resp = resp};
    durable_ops ops = {.work = dispatch_work, .lost = answer_lost, .arg = &c};
    http_answer_durably(a->st, req, &ops);
}

static void dispatch(call *c)
{
    request *req = c->req;
    bool known;
    c->route = match(c, &known);
    if (!c->route) {
        /* The docs: 404 means "either the request method or path is incorrect". */
        fail(c, 404, CODE_NOT_FOUND, known ? "method %s not allowed on this path" : "not found", req->method);
        return;
    }
    req->route_id = c->route->obs_id;
    trim_verbs(c);
    for (int i = 0; i < req->nquery; i++)
        if (req->query[i].key[0] == '\x01') {
            fail(c, 400, CODE_INVALID, "invalid percent-encoding in query string");
            return;
        }
    if (c->route->action != ACT_PUBLIC) {
        if (!authenticate(c) || !rate_limit(c) || !authorize(c))
            goto done;
        req->auth = &c->who;
    }
    c->route->fn(c);
done:
    json_decref(c->body);
    principal_release(&c->who);
    req->auth = NULL; /* the principal lives in the call, which ends here */
}
