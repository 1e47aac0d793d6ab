#include "api/engine.h"
#include "api/view.h"
#include "auth/auth.h"
#include "util/json.h"
#include "util/util.h"
#include <ctype.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDEM_TTL_MS (24LL * 3600 * 1000)

static const kind *kind_of(call *c) { return c->route->kind; }

bool valid_slug(const char *s)
{
    /* spec §1.10 (inferred): ^[a-z0-9][a-z0-9_-]{0,99}$ */
    size_t n = strlen(s);
    if (n == 0 || n > 100 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

json_t *zero_like(const json_t *v)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_STRING: return json_string("");
    case JSON_TRUE:
    case JSON_FALSE: return json_false();
    case JSON_INTEGER: return json_integer(0);
    case JSON_REAL: return json_real(0);
    case JSON_ARRAY: return json_array();
    case JSON_OBJECT: return json_object();
    default: return json_null();
    }
}

char *engine_path_name(call *c, int drop_last)
{
    request *r = c->req;
    buf b = {0};
    for (int i = 1; i < r->nseg - drop_last; i++) {
        if (i > 1)
            buf_putc(&b, '/');
        buf_puts(&b, i == 2 && c->has_ws && !strcmp(r->segs[1], "workspaces") ? c->ws.slug : r->segs[i]);
    }
    return buf_steal(&b);
}

json_t *json_dotted(json_t *obj, const char *path)
{
    char key[256];
    while (obj && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        obj = json_object_get(obj, key);
        path += n + (path[n] == '.');
    }
    return obj;
}

/* ---- shared steps -------------------------------------------------------------------- */

static bool is_workspace_name(const char *name)
{
    return !strncmp(name, "workspaces/", 11) && !strchr(name + 11, '/');
}

/* The parent must exist (the workspace itself was checked by the router). */
static bool parent_exists(call *c, const kind *k, txn *t, const char *parent, bool exclusive)
{
    if (k && k->parent_ok)
        return k->parent_ok(c, parent);
    if (is_workspace_name(parent))
        return true;
    res_row p = {0};
    /* In a write, hold the parent (FOR SHARE) so a concurrent delete of it cannot leave
     * this new child orphaned; exclusively when children are counted (max_per_parent), so
     * two creates cannot both see room for one more. */
    int rc = t->in_tx ? store_res_get_locked(t, parent, &p, !exclusive) : store_res_get(t, parent, &p);
    res_row_clear(&p);
    if (rc == ST_NOT_FOUND) {
        const char *slash = strrchr(parent, '/');
        return fail(c, 404, CODE_NOT_FOUND, "%s not found", slash ? slash + 1 : parent);
    }
    return rc == ST_OK || fail_store(c, rc, "parent");
}

bool engine_validate_only(call *c, bool *out)
{
    const char *v = req_query(c->req, "validate_only");
    if (!v)
        v = req_query(c->req, "validateOnly");
    int f = query_flag(v);
    *out = f == 1;
    return f >= 0 || fail(c, 400, CODE_INVALID, "validate_only must be true or false");
}

/* If-Match: "N", W/"N" or *. Returns false after fail() when it does not match. */
static bool if_match(call *c, long long version)
{
    const char *h = req_header(c->req, "If-Match");
    if (!h || !strcmp(h, "*"))
        return true;
    char want[40];
    snprintf(want, sizeof want, "\"%lld\"", version);
    for (const char *p = h; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!strncmp(p, "W/", 2))
            p += 2;
        size_t n = strcspn(p, ",");
        while (n && p[n - 1] == ' ')
            n--;
        if (n == strlen(want) && !memcmp(p, want, n))
            return true;
        p += strcspn(p, ",");
    }
    return fail(c, 412, CODE_PRECONDITION, "the resource has changed (version %lld does not match If-Match)", version);
}

static void set_etag(call *c, long long version)
{
    char v[40];
    snprintf(v, sizeof v, "\"%lld\"", version);
    resp_header(c->resp, "ETag", v);
}

static json_t *load_body(const res_row *r)
{
    json_t *b = json_loads(r->body, JSON_DECODE_ANY, NULL);
    return json_is_object(b) ? b : (json_decref(b), json_object());
}

static void reply_row(call *c, const res_row *r, json_t *body)
{
    json_t *out = kind_of(c)->render(c, r, body);
    set_etag(c, r->version);
    reply(c, out);
}

/* ---- stored views (api/view.h) ------------------------------------------------------ */

/* Bump when any kind's render hook changes what it writes: views stored by an older
 * binary must not be served by this one. */
#define RENDER_REVISION "1"

/* What a render depends on besides its row: this code's revision, the destination catalog
 * (settings, defaults, display names) and the server key (secret versions). Views made
 * under another epoch (a new catalog, a new key file, an upgrade) are rendered again. */
static const char *render_epoch(call *c)
{
    static char epoch[17];
    static atomic_bool ready;
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    if (atomic_load(&ready))
        return epoch;
    pthread_mutex_lock(&mu);
    if (!atomic_load(&ready)) {
        crypto_generichash_state st;
        unsigned char mac[12], h[8];
        auth_mac("render epoch", 12, mac);
        crypto_generichash_init(&st, NULL, 0, sizeof h);
        crypto_generichash_update(&st, (const unsigned char *)RENDER_REVISION, sizeof RENDER_REVISION);
        crypto_generichash_update(&st, mac, sizeof mac);
        const cat_list *l = &c->api->cat->destinations;
        for (size_t i = 0; i < l->n; i++) {
            char *set = json_to_string(l->items[i].settings);
            crypto_generichash_update(&st, (const unsigned char *)l->items[i].name, strlen(l->items[i].name) + 1);
            crypto_generichash_update(&st, (const unsigned char *)l->items[i].json, l->items[i].json_len);
            crypto_generichash_update(&st, (const unsigned char *)set, strlen(set) + 1);
            free(set);
        }
        crypto_generichash_final(&st, h, sizeof h);
        sodium_bin2hex(epoch, sizeof epoch, h, sizeof h);
        atomic_store(&ready, true);
    }
    pthread_mutex_unlock(&mu);
    return epoch;
}

/* The stored view of r, rendered (heap string). */
static char *view_of(call *c, const kind *k, const res_row *r, const json_t *rendered)
{
    if (k->live && k->live(r))
        return NULL; /* never spliced: no view to keep */
    json_t *item = NULL;
    if (k->render_item) { /* List shows another form than Get: the view is that form */
        json_t *body = load_body(r);
        rendered = item = k->render_item(c, r, body);
        json_decref(body);
    }
    buf j = {0}, v = {0};
    json_write(&j, rendered);
    view_make(&v, render_epoch(c), r, buf_cstr(&j), j.len);
    buf_free(&j);
    json_decref(item);
    return buf_steal(&v);
}

/* Audit entries name the action "<kind>.<verb>" and carry rendered (secret-masked) forms. */
static bool audit_change(call *c, const kind *k, txn *t, const char *verb, const res_row *r, json_t *before,
                         json_t *after)
{
    char action[64];
    snprintf(action, sizeof action, "%s.%s", k->name, verb);
    return audit(c, t, action, r->name, before, after);
}

/* ---- List ---------------------------------------------------------------------------- */

/* A view the page had to render, to be stored for the next List. */
typedef struct late_view {
    char *name, *view;
    long long version;
} late_view;

typedef struct list_ctx {
    call *c;
    buf *b;
    const char *prefix; /* only names starting with it (kind.list_prefix), or NULL */
    int n, want;
    char *last;
    bool more;
    late_view *late;
    int nlate;
} list_ctx;

/* Appends one item: its stored view spliced as it is when it is current, else rendered
 * (and remembered, so that list_store_late stores the view). */
static int list_one(void *ctx, res_row *r)
{
    list_ctx *l = ctx;
    const kind *k = kind_of(l->c);
    if (l->prefix && strncmp(r->name, l->prefix, strlen(l->prefix)))
        return 1; /* past the prefix's range: the list is complete */
    if (l->n == l->want) {
        l->more = true;
        return 1;
    }
    if (l->n++)
        buf_putc(l->b, ',');
    size_t len;
    bool live = k->live && k->live(r);
    const char *spliced = live ? NULL : view_json(r, render_epoch(l->c), &len);
    if (spliced) {
        buf_append(l->b, spliced, len);
    } else {
        json_t *body = load_body(r);
        json_t *out = (k->render_item ? k->render_item : k->render)(l->c, r, body);
        json_decref(body);
        json_write(l->b, out);
        if (!live) {
            if (!l->late)
                l->late = calloc((size_t)l->want, sizeof *l->late);
            l->late[l->nlate++] = (late_view){strdup(r->name), view_of(l->c, k, r, out), r->version};
        }
        json_decref(out);
    }
    free(l->last);
    l->last = strdup(r->name);
    return 0;
}

/* Stores the views a List rendered (rows written before views existed, by code outside
 * the engine, or under another render epoch), so the next List splices them. Best effort:
 * the page is answered either way, and a row updated meanwhile keeps its own view. */
static void list_store_late(call *c, list_ctx *l)
{
    txn t;
    if (l->nlate && store_begin(c->api->st, &t, true) == ST_OK) {
        bool ok = true;
        for (int i = 0; i < l->nlate && ok; i++)
            ok = store_res_set_view(&t, l->late[i].name, l->late[i].version, l->late[i].view) == ST_OK;
        if (ok)
            store_commit(&t); /* on failure it has rolled back */
        else
            store_rollback(&t);
    }
    for (int i = 0; i < l->nlate; i++)
        free(l->late[i].name), free(l->late[i].view);
    free(l->late);
}

void engine_list(call *c)
{
    const kind *k = kind_of(c);
    page p;
    if (!page_parse(c, &p))
        return;
    char *parent = engine_path_name(c, 1);
    /* pl: the length of the parent up to a "-" segment, if any (then a wildcard list). */
    size_t pl = strlen(parent);
    if (pl >= 2 && !strcmp(parent + pl - 2, "/-"))
        pl -= 2;
    else if (strstr(parent, "/-/"))
        pl = (size_t)(strstr(parent, "/-/") - parent);
    /* A token from another collection must not skip into this one: the cursor must be a
     * direct child name "<parent>/<collection>/<id>" (under the workspace for "-"). */
    size_t cl = strlen(k->collection);
    const char *rest = p.after + pl + 1;
    bool own = p.after[0] && !strncmp(p.after, parent, pl) && p.after[pl] == '/';
    if (own && pl == strlen(parent))
        own = !strncmp(rest, k->collection, cl) && rest[cl] == '/' && rest[cl + 1] && !strchr(rest + cl + 1, '/');
    if (p.after[0] && !own) {
        free(parent);
        fail(c, 400, CODE_INVALID, "invalid page_token");
        return;
    }
    /* A kind listing one id range (functions of one type): start at the range. */
    char *lo = NULL;
    if (k->list_prefix) {
        const char *idp = k->list_prefix(c);
        if (!idp) {
            free(parent);
            return;
        }
        buf b = {0};
        buf_printf(&b, "%s/%s/%s", parent, k->collection, idp);
        lo = buf_steal(&b);
        if (p.after[0] && strncmp(p.after, lo, strlen(lo))) { /* a token of another range */
            free(lo);
            free(parent);
            fail(c, 400, CODE_INVALID, "invalid page_token");
            return;
        }
        if (strcmp(p.after, lo) < 0)
            snprintf(p.after, sizeof p.after, "%s", lo);
    }
    buf out = {0};
    list_ctx l = {.c = c, .b = &out, .want = p.size, .prefix = lo};
    txn t;
    store_begin(c->api->st, &t, false);
    int rc = ST_OK;
    /* "-" as a parent id means "every parent" (roles/-/policies): list the kind across
     * the workspace instead of under one parent. */
    bool wildcard = pl < strlen(parent);
    if (wildcard) {
        buf_printf(&out, "{\"%s\":[", k->list_key);
        rc = store_res_list_ws(&t, c->ws.slug, k->name, p.after, p.size + 1, list_one, &l);
    } else if (parent_exists(c, k, &t, parent, false)) {
        buf_printf(&out, "{\"%s\":[", k->list_key);
        rc = store_res_list(&t, parent, k->name, p.after, p.size + 1, list_one, &l);
    }
    store_end(&t);
    if (!c->failed && rc != ST_OK)
        fail_store(c, rc, k->name);
    if (!c->failed) {
        buf_putc(&out, ']');
        page_token_write(&out, l.more ? l.last : NULL);
        buf_putc(&out, '}');
        buf_free(&c->resp->body);
        c->resp->body = out;
        out = (buf){0};
    }
    buf_free(&out);
    free(l.last);
    free(parent);
    free(lo);
    list_store_late(c, &l);
}

/* ---- Get ----------------------------------------------------------------------------- */

static int get_row(call *c, const kind *k, txn *t, const char *name, res_row *r)
{
    /* In a write, lock the row: If-Match checks and read-modify-write stay atomic. */
    int rc = t->in_tx ? store_res_get_locked(t, name, r, false) : store_res_get(t, name, r);
    if (rc == ST_OK && strcmp(r->kind, k->name)) {
        res_row_clear(r);
        rc = ST_NOT_FOUND;
    }
    if (rc != ST_OK)
        fail_store(c, rc, k->name);
    return rc;
}

void engine_get(call *c)
{
    char *name = engine_path_name(c, 0);
    txn t;
    res_row r = {0};
    store_begin(c->api->st, &t, false);
    int rc = get_row(c, kind_of(c), &t, name, &r);
    store_end(&t);
    if (rc == ST_OK) {
        json_t *body = load_body(&r);
        reply_row(c, &r, body);
        json_decref(body);
    }
    res_row_clear(&r);
    free(name);
}

/* ---- idempotent creates --------------------------------------------------------------- */

static void idem_key(call *c, const char *key, char out[65])
{
    unsigned char h[32];
    crypto_generichash_state st;
    char tid[80];
    snprintf(tid, sizeof tid, "%lld|%s|", c->who.token_id, c->who.user_id);
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const unsigned char *)tid, strlen(tid));
    crypto_generichash_update(&st, (const unsigned char *)c->req->path, strlen(c->req->path) + 1);
    crypto_generichash_update(&st, (const unsigned char *)key, strlen(key));
    crypto_generichash_final(&st, h, sizeof h);
    sodium_bin2hex(out, 65, h, sizeof h);
}

static void body_hash(call *c, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)(c->req->body.data ? c->req->body.data : ""),
                       c->req->body.len, NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof h);
}

/* Claims the key, or answers from it. Returns 1 when a stored response was replayed (or an
 * error answered), 0 to go on with the create. A concurrent request with the same key
 * waits on the claim (PostgreSQL) or follows it (SQLite) and then replays. */
static int idem_replay(call *c, txn *t, const char *key, const char *req_hash)
{
    int rc = store_idem_claim(t, key, req_hash, now_ms());
    if (rc == ST_OK)
        return 0;
    if (rc != ST_CONFLICT) {
        fail_store(c, rc, "idempotency key");
        return 1;
    }
    char stored_hash[65];
    int status;
    char *body = NULL;
    long long created;
    rc = store_idem_get(t, key, stored_hash, &status, &body, &created);
    if (rc != ST_OK) {
        free(body);
        fail_store(c, rc, "idempotency key");
        return 1;
    }
    if (now_ms() - created > IDEM_TTL_MS) { /* expired: the key is free again */
        free(body);
        return store_idem_put(t, key, req_hash, 0, "", now_ms()) == ST_OK ? 0 : (fail_store(c, ST_ERROR, "key"), 1);
    }
    if (strcmp(stored_hash, req_hash)) {
        free(body);
        fail(c, 422, CODE_INVALID, "Idempotency-Key was already used with a different request body");
        return 1;
    }
    if (status == 0) {
        free(body);
        fail(c, 409, CODE_EXISTS, "a request with this Idempotency-Key is in progress");
        return 1;
    }
    c->resp->status = status;
    buf_free(&c->resp->body);
    buf_puts(&c->resp->body, body);
    resp_header(c->resp, "Idempotent-Replayed", "true");
    set_etag(c, 1); /* the first response carried the new resource's first version */
    free(body);
    return 1;
}

/* Reads a create/update body {"<kind>": {...}, "update_mask": {...}}: checks the top-level
 * keys and the resource object's fields. An update_mask found inside the resource object
 * (as one doc example has it) is moved to the top level. */
static bool resource_object(call *c, bool required, json_t **body, json_t **obj, bool *dry)
{
    const kind *k = kind_of(c);
    *body = call_body(c);
    if (!*body || !engine_validate_only(c, dry))
        return false;
    const char *allowed_top[8] = {k->name, "update_mask"};
    for (size_t i = 0; k->top_fields && k->top_fields[i] && i < 5; i++)
        allowed_top[2 + i] = k->top_fields[i];
    if (!check_fields(c, *body, NULL, allowed_top))
        return false;
    *obj = json_object_get(*body, k->name);
    if (required ? !json_is_object(*obj) : *obj && !json_is_object(*obj))
        return fail(c, 400, CODE_INVALID, "%s %smust be an object", k->name, required ? "is required and " : "");
    json_t *inner = *obj ? json_object_get(*obj, "update_mask") : NULL;
    if (inner) {
        if (!json_object_get(*body, "update_mask"))
            json_object_set(*body, "update_mask", inner);
        json_object_del(*obj, "update_mask");
    }
    return !*obj || check_fields(c, *obj, k->name, k->fields);
}

/* ---- Create -------------------------------------------------------------------------- */

/* Works out the new resource's name from the client's object. */
static char *new_name(call *c, json_t *req, json_t *obj, const char *parent)
{
    const kind *k = kind_of(c);
    buf b = {0};
    buf_printf(&b, "%s/%s", parent, k->collection);
    if (k->id_mode == ID_GENERATED) {
        const char *prefix = k->id_prefix_for ? k->id_prefix_for(c, req, obj) : k->id_prefix;
        if (!prefix) {
            buf_free(&b);
            return NULL;
        }
        char id[40];
        ksuid(id);
        buf_printf(&b, "/%s%s", prefix, id);
        return buf_steal(&b);
    }
    json_t *nv = json_object_get(obj, "name");
    const char *n = json_string_value(nv);
    if (!n || !*n) {
        buf_free(&b);
        fail(c, 400, CODE_INVALID, "%s.name is required", k->name);
        return NULL;
    }
    const char *id = n;
    if (strchr(n, '/')) { /* a full name: it must sit under this path's collection */
        if (strncmp(n, b.data, b.len) || n[b.len] != '/' || strchr(n + b.len + 1, '/') || !n[b.len + 1]) {
            fail(c, 400, CODE_INVALID, "%s.name '%s' must be %s/<id> (the workspace and parents of the path)",
                 k->name, n, b.data);
            buf_free(&b);
            return NULL;
        }
        id = n + b.len + 1;
    }
    if (strlen(id) > 100) {
        buf_free(&b);
        fail(c, 400, CODE_INVALID, "%s.name: id longer than 100 characters", k->name);
        return NULL;
    }
    buf_printf(&b, "/%s", id);
    return buf_steal(&b);
}

bool engine_create_in(call *c, txn *t, const kind *k, const char *parent, const char *name, json_t *obj,
                      json_t *stored, res_row *r)
{
    if (!k->create(c, obj, name, stored) || (k->validate && !k->validate(c, stored, name)))
        return false;
    int max = k->max_children ? k->max_children(c) : k->max_per_parent;
    if (!parent_exists(c, k, t, parent, max > 0))
        return false;
    if (max) {
        /* Under the workspace, the workspace row is what two concurrent creates meet on. */
        int rc = is_workspace_name(parent) ? store_ws_lock(t, c->ws.slug) : ST_OK;
        int n = rc == ST_OK ? store_res_count(t, parent, k->name) : rc;
        if (n < 0)
            return fail_store(c, n, k->name);
        if (n >= max)
            return fail(c, 400, CODE_INVALID, "at most %d %s per %s", max, k->collection,
                        is_workspace_name(parent) ? "workspace" : "parent");
    }
    const char *slash = strrchr(name, '/');
    r->name = (char *)name;
    r->parent = (char *)parent;
    r->workspace = c->ws.slug;
    r->kind = (char *)k->name;
    r->id = (char *)slash + 1;
    r->body = json_to_string(stored);
    r->ref = k->ref ? (char *)k->ref(stored) : NULL;
    r->version = 1;
    rfc3339(now_ms(), r->create_time);
    memcpy(r->update_time, r->create_time, sizeof r->create_time);
    json_t *after = k->render(c, r, stored); /* the rendered resource: its view, the audit entry */
    r->view = view_of(c, k, r, after);
    int rc = store_res_insert(t, r);
    bool ok = false;
    if (rc == ST_CONFLICT)
        fail(c, 409, CODE_EXISTS, "%s '%s' already exists", k->name, r->id);
    else if (rc != ST_OK)
        fail_store(c, rc, k->name);
    else
        ok = (!k->after_create || k->after_create(c, t, r)) && audit_change(c, k, t, "create", r, NULL, after);
    json_decref(after);
    return ok;
}

void engine_create(call *c)
{
    const kind *k = kind_of(c);
    bool dry;
    json_t *body, *obj;
    if (!resource_object(c, true, &body, &obj, &dry))
        return;
    char *parent = engine_path_name(c, 1);
    char *name = new_name(c, body, obj, parent);
    json_t *stored = json_object();
    txn t = {0};
    res_row r = {0};
    char key[65] = "", reqh[65] = "";
    const char *ikey = req_header(c->req, "Idempotency-Key");
    if (!name)
        goto out;
    if (ikey) {
        if (!*ikey || strlen(ikey) > 255) {
            fail(c, 400, CODE_INVALID, "Idempotency-Key must be 1 to 255 characters");
            goto out;
        }
        idem_key(c, ikey, key);
        body_hash(c, reqh);
    }
    if (store_begin(c->api->st, &t, true) != ST_OK) {
        fail_store(c, ST_ERROR, k->name);
        goto out;
    }
    if (key[0] && idem_replay(c, &t, key, reqh))
        goto rollback;
    if (!engine_create_in(c, &t, k, parent, name, obj, stored, &r))
        goto rollback;
    reply_row(c, &r, stored);
    if (dry)
        goto rollback;
    if (key[0] && store_idem_put(&t, key, reqh, c->resp->status, buf_cstr(&c->resp->body), now_ms()) != ST_OK) {
        fail_store(c, ST_ERROR, k->name);
        goto rollback;
    }
    if (store_commit(&t) != ST_OK)
        fail_store(c, ST_ERROR, k->name);
    else if (k->after_commit)
        k->after_commit(c);
    goto out;
rollback:
    store_rollback(&t);
out:
    free(r.body);
    free(r.view);
    json_decref(stored);
    free(name);
    free(parent);
}

/* ---- Update -------------------------------------------------------------------------- */

/* Reads update_mask.paths, strips the optional "<kind>." prefix and checks each path. */
static json_t *mask_paths(call *c, json_t *body)
{
    const kind *k = kind_of(c);
    json_t *m = json_object_get(body, "update_mask");
    json_t *paths = json_array();
    if (!m)
        return paths;
    json_t *arr = json_object_get(m, "paths");
    if (!json_is_object(m) || (arr && !json_is_array(arr)) || json_object_size(m) > (arr ? 1u : 0u)) {
        json_decref(paths);
        fail(c, 400, CODE_INVALID, "update_mask must be an object {\"paths\": [...]}");
        return NULL;
    }
    size_t i;
    json_t *v;
    size_t pre = strlen(k->name);
    json_array_foreach(arr, i, v) {
        const char *p = json_string_value(v);
        if (!p) {
            json_decref(paths);
            fail(c, 400, CODE_INVALID, "update_mask.paths[%zu] must be a string", i);
            return NULL;
        }
        if (!strncmp(p, k->name, pre) && p[pre] == '.')
            p += pre + 1;
        else if (k->mask_prefix_alt && !strncmp(p, k->mask_prefix_alt, strlen(k->mask_prefix_alt)) &&
                 p[strlen(k->mask_prefix_alt)] == '.')
            p += strlen(k->mask_prefix_alt) + 1;
        for (const char *const *a = k->mask_aliases; a && *a; a += 2)
            if (!strcmp(*a, p)) {
                p = a[1];
                break;
            }
        if (!str_in(k->mask_paths, p)) {
            json_decref(paths);
            fail(c, 400, CODE_INVALID, "unknown update_mask path '%s'", json_string_value(v));
            return NULL;
        }
        json_array_append_new(paths, json_string(p));
    }
    return paths;
}

int engine_update_in(call *c, txn *t, const kind *k, const char *name, json_t *obj, json_t *paths, bool if_matched,
                     bool replace, res_row *r, json_t **stored_out)
{
    json_t *stored = NULL, *before = NULL;
    int ret = 0;
    if (get_row(c, k, t, name, r) != ST_OK || (if_matched && !if_match(c, r->version)))
        goto out;
    stored = load_body(r);
    before = json_array_size(paths) ? k->render(c, r, stored) : NULL;
    size_t i;
    json_t *p;
    json_array_foreach(paths, i, p) {
        const char *path = json_string_value(p);
        json_t *val = obj ? json_dotted(obj, path) : NULL;
        if (json_is_null(val))
            val = NULL;
        bool reset = replace && (json_is_array(val) || json_is_object(val));
        if (reset && k->update && !k->update(c, stored, path, NULL, name))
            goto out;
        if (k->update) {
            if (!k->update(c, stored, path, val, name))
                goto out;
        } else {
            json_object_set_new(stored, path, val ? json_incref(val) : zero_like(json_object_get(stored, path)));
        }
    }
    if (json_array_size(paths) && k->validate && !k->validate(c, stored, name))
        goto out;
    if (json_array_size(paths)) { /* a body with no paths changes nothing (spec §1.8) */
        long long old = r->version;
        free(r->body);
        r->body = json_to_string(stored);
        r->version = old + 1;
        rfc3339(now_ms(), r->update_time);
        json_t *after = k->render(c, r, stored);
        free(r->view); /* the old version's view: replaced, never carried over */
        r->view = view_of(c, k, r, after);
        int rc = store_res_update(t, r, old);
        if (rc == ST_NOT_FOUND) { /* lost a race */
            json_decref(after);
            ret = -1;
            goto out;
        }
        bool audited = rc == ST_OK ? audit_change(c, k, t, "update", r, before, after) : fail_store(c, rc, k->name);
        json_decref(after);
        if (!audited)
            goto out;
    }
    ret = 1;
out:
    json_decref(before);
    if (ret == 1 && stored_out)
        *stored_out = stored;
    else
        json_decref(stored);
    return ret;
}

void engine_update(call *c)
{
    const kind *k = kind_of(c);
    bool dry;
    json_t *body, *obj;
    if (!resource_object(c, false, &body, &obj, &dry))
        return;
    json_t *paths = mask_paths(c, body);
    if (!paths)
        return;
    char *name = engine_path_name(c, 0);
    const char *given = obj ? json_string_value(json_object_get(obj, "name")) : NULL;
    if (given && strcmp(given, name) && !(strchr(name, '/') && !strcmp(given, strrchr(name, '/') + 1))) {
        fail(c, 400, CODE_INVALID, "%s.name does not match the path", k->name);
        goto out_nofree;
    }
    /* Optimistic concurrency: a concurrent writer makes our versioned UPDATE miss; without
     * If-Match we simply redo the read-modify-write on the fresh row. */
    for (int attempt = 0; attempt < 5; attempt++) {
        txn t;
        res_row r = {0};
        json_t *stored = NULL;
        if (store_begin(c->api->st, &t, true) != ST_OK) {
            fail_store(c, ST_ERROR, k->name);
            break;
        }
        int rc = engine_update_in(c, &t, k, name, obj, paths, true, false, &r, &stored);
        if (rc < 0) { /* lost a race */
            store_rollback(&t);
            res_row_clear(&r);
            if (req_header(c->req, "If-Match")) {
                fail(c, 412, CODE_PRECONDITION, "the resource has changed");
                break;
            }
            continue;
        }
        if (rc == 0)
            goto rollback;
        reply_row(c, &r, stored);
        if (dry || store_commit(&t) != ST_OK) {
            if (!dry)
                fail_store(c, ST_ERROR, k->name);
            goto rollback;
        }
        json_decref(stored);
        res_row_clear(&r);
        break;
    rollback:
        store_rollback(&t);
        json_decref(stored);
        res_row_clear(&r);
        break;
    }
    if (!c->failed && !c->resp->body.len) /* every attempt lost a race */
        fail(c, 503, CODE_UNAVAILABLE, "the resource is being changed concurrently; retry");
out_nofree:
    json_decref(paths);
    free(name);
}

/* ---- Delete -------------------------------------------------------------------------- */

bool engine_delete_in(call *c, txn *t, const kind *k, const char *name, bool if_matched, bool *dropped)
{
    res_row r = {0};
    int rc;
    bool ok = false;
    if (get_row(c, k, t, name, &r) != ST_OK || (if_matched && !if_match(c, r.version)) ||
        (k->before_delete && !k->before_delete(c, t, &r)))
        goto out;
    /* The resource and its whole subtree (destinations, filters, schema config …). */
    if ((rc = store_res_delete(t, name)) != ST_OK || (rc = store_res_delete_tree(t, name)) != ST_OK) {
        fail_store(c, rc, k->name);
        goto out;
    }
    json_t *body = load_body(&r);
    json_t *before = k->render(c, &r, body);
    bool audited = audit_change(c, k, t, "delete", &r, before, NULL);
    json_decref(before);
    json_decref(body);
    bool d = false;
    ok = audited && iam_drop_policies_on(c, t, name, &d) && iam_drop_invite_grants_on(c, t, name);
    *dropped |= d;
out:
    res_row_clear(&r);
    return ok;
}

void engine_delete(call *c)
{
    const kind *k = kind_of(c);
    bool dry;
    if (!engine_validate_only(c, &dry))
        return;
    char *name = engine_path_name(c, 0);
    txn t;
    if (store_begin(c->api->st, &t, true) != ST_OK) {
        fail_store(c, ST_ERROR, k->name);
        free(name);
        return;
    }
    bool dropped = false;
    if (!engine_delete_in(c, &t, k, name, true, &dropped) || dry)
        goto rollback;
    if (store_commit(&t) != ST_OK) {
        fail_store(c, ST_ERROR, k->name);
        goto out;
    }
    if (dropped)
        auth_forget_all(); /* the dropped grants stop at once on this process */
    if (k->after_commit)
        k->after_commit(c);
    buf_puts(&c->resp->body, "{}");
    goto out;
rollback:
    store_rollback(&t);
    if (dry && !c->failed)
        buf_puts(&c->resp->body, "{}");
out:
    free(name);
}

/* ---- custom verbs on one resource ------------------------------------------------------ */

int engine_load(call *c, int drop_last, res_row *r, json_t **body)
{
    char *name = engine_path_name(c, drop_last);
    txn t;
    store_begin(c->api->st, &t, false);
    int rc = get_row(c, kind_of(c), &t, name, r);
    store_end(&t);
    free(name);
    *body = rc == ST_OK ? load_body(r) : NULL;
    return rc;
}

void engine_apply(call *c, int drop_last, const char *verb, bool (*apply)(call *c, json_t *body))
{
    const kind *k = kind_of(c);
    bool dry;
    if (!engine_validate_only(c, &dry))
        return;
    char *name = engine_path_name(c, drop_last);
    txn t;
    res_row r = {0};
    json_t *stored = NULL, *before = NULL, *after = NULL;
    if (store_begin(c->api->st, &t, true) != ST_OK) {
        fail_store(c, ST_ERROR, k->name);
        free(name);
        return;
    }
    if (get_row(c, kind_of(c), &t, name, &r) != ST_OK || !if_match(c, r.version))
        goto rollback;
    stored = load_body(&r);
    before = k->render(c, &r, stored);
    if (!apply(c, stored))
        goto rollback;
    long long old = r.version;
    free(r.body);
    r.body = json_to_string(stored);
    r.version = old + 1;
    rfc3339(now_ms(), r.update_time);
    after = k->render(c, &r, stored);
    free(r.view);
    r.view = view_of(c, k, &r, after);
    int rc = store_res_update(&t, &r, old); /* the row is locked: no race to lose */
    if (rc != ST_OK) {
        fail_store(c, rc, k->name);
        goto rollback;
    }
    if (!audit_change(c, k, &t, verb, &r, before, after))
        goto rollback;
    if (dry)
        goto rollback;
    if (store_commit(&t) != ST_OK) {
        fail_store(c, ST_ERROR, k->name);
        goto out;
    }
    set_etag(c, r.version);
    buf_puts(&c->resp->body, "{}");
    goto out;
rollback:
    store_rollback(&t);
    if (dry && !c->failed)
        buf_puts(&c->resp->body, "{}");
out:
    json_decref(stored);
    json_decref(before);
    json_decref(after);
    res_row_clear(&r);
    free(name);
}

/* ---- start-up: secondary keys for rows written before their kind had one ---------------- */

typedef struct ref_fix {
    const kind *k;
    char **names, **refs;
    size_t n, cap;
} ref_fix;

static int collect_noref(void *ctx, res_row *r)
{
    ref_fix *f = ctx;
    json_t *body = json_loads(r->body, 0, NULL);
    const char *ref = body ? f->k->ref(body) : NULL;
    if (ref) {
        if (f->n == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 64;
            f->names = realloc(f->names, f->cap * sizeof *f->names);
            f->refs = realloc(f->refs, f->cap * sizeof *f->refs);
        }
        f->names[f->n] = strdup(r->name);
        f->refs[f->n++] = strdup(ref);
    }
    json_decref(body);
    return 0;
}

/* Sources written before the intake existed have no write key in resources.ref, so the
 * intake (which finds a source by that key) would refuse their events. One pass at
 * start-up, in one transaction; rows that have a ref are never read again. */
int engine_backfill_refs(store *st, const kind *k)
{
    ref_fix f = {.k = k};
    txn t;
    int rc = store_begin(st, &t, true);
    if (rc != ST_OK)
        return rc;
    rc = store_res_list_noref(&t, k->name, collect_noref, &f);
    for (size_t i = 0; i < f.n && rc == ST_OK; i++)
        rc = store_res_set_ref(&t, f.names[i], f.refs[i]);
    rc = rc == ST_OK ? store_commit(&t) : (store_rollback(&t), rc);
    if (rc == ST_OK && f.n)
        log_info("gave %zu %s resource(s) written by an older version their secondary key", f.n, k->name);
    for (size_t i = 0; i < f.n; i++)
        free(f.names[i]), free(f.refs[i]);
    free(f.names);
    free(f.refs);
    return rc;
}
