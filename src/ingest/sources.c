/* See sources.h. A chained hash table under a read-write lock; misses (unknown keys) are
 * cached too, so a client hammering with a wrong key costs one look-up per epoch/TTL. */
#include "ingest/sources.h"
#include "util/buf.h"
#include "util/util.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096
#define MAX_ENTRIES 65536 /* past this the cache starts over rather than grow without bound */

typedef struct entry {
    char *key;
    src_info *info;   /* NULL: no source has this key */
    uint64_t epoch;
    int64_t loaded_ms;
    struct entry *next;
} entry;

struct src_cache {
    store *st;
    int ttl_ms;
    pthread_rwlock_t mu;
    entry *b[BUCKETS];
    int n;
};

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

void src_release(src_info *i)
{
    if (!i || atomic_fetch_sub(&i->refs, 1) != 1)
        return;
    protocols_free(i->prot);
    free(i->name), free(i->ws), free(i->slug);
    free(i);
}

static void entry_free(entry *e)
{
    src_release(e->info);
    free(e->key);
    free(e);
}

src_cache *src_cache_new(store *st, int ttl_ms)
{
    src_cache *c = calloc(1, sizeof *c);
    c->st = st;
    c->ttl_ms = ttl_ms;
    pthread_rwlock_init(&c->mu, NULL);
    return c;
}

static void clear_all(src_cache *c)
{
    for (int i = 0; i < BUCKETS; i++) {
        while (c->b[i]) {
            entry *e = c->b[i];
            c->b[i] = e->next;
            entry_free(e);
        }
    }
    c->n = 0;
}

void src_cache_free(src_cache *c)
{
    if (!c)
        return;
    clear_all(c);
    pthread_rwlock_destroy(&c->mu);
    free(c);
}

/* ---- loading one source ------------------------------------------------------------------ */

typedef struct found {
    char *name, *workspace;
    int n;
} found;

static int on_source(void *ctx, res_row *r)
{
    found *f = ctx;
    if (!f->n++) {
        f->name = strdup(r->name);
        f->workspace = strdup(r->workspace);
    }
    return 0;
}

static json_t *body_of(txn *t, const char *name, int *rc)
{
    res_row r = {0};
    *rc = store_res_get(t, name, &r);
    json_t *b = *rc == ST_OK ? json_loads(r.body, 0, NULL) : NULL;
    res_row_clear(&r);
    return b;
}

/* The source's enforcement: its schema config and, when it is connected, its plan. */
static int load_protocols(txn *t, src_info *i)
{
    buf n = {0};
    buf_printf(&n, "%s/tracking-plan", i->name);
    int rc;
    json_t *link = body_of(t, n.data, &rc);
    buf_free(&n);
    if (rc != ST_OK)
        return rc == ST_NOT_FOUND ? ST_OK : rc; /* not connected: nothing to enforce */
    const char *plan_name = json_string_value(json_object_get(link, "tracking_plan"));
    json_t *plan = plan_name ? body_of(t, plan_name, &rc) : NULL;
    buf_printf(&n, "%s/schema-config", i->name);
    int rc2;
    json_t *sc = body_of(t, n.data, &rc2);
    buf_free(&n);
    if (rc == ST_ERROR || rc2 == ST_ERROR) {
        rc = ST_ERROR;
    } else if (plan) {
        char err[256] = "";
        const char *pid = strrchr(plan_name, '/') + 1;
        const char *pdisplay = json_string_value(json_object_get(plan, "display_name"));
        json_t *empty = sc ? NULL : json_object();
        i->prot = protocols_compile(sc ? sc : empty, plan, i->slug, pid, pdisplay ? pdisplay : pid, err, sizeof err);
        json_decref(empty);
        if (!i->prot)
            log_error("intake: cannot compile the enforcement of %s: %s", i->name, err);
        rc = ST_OK;
    } else {
        rc = ST_OK;
    }
    json_decref(sc);
    json_decref(plan);
    json_decref(link);
    return rc;
}

static int load(src_cache *c, const char *key, src_info **out)
{
    *out = NULL;
    txn t;
    store_begin(c->st, &t, false);
    found f = {0};
    int rc = store_res_list_ref(&t, "source", key, on_source, &f);
    if (rc == ST_OK && f.n) {
        src_info *i = calloc(1, sizeof *i);
        atomic_init(&i->refs, 1);
        i->name = f.name;
        i->ws = f.workspace;
        i->slug = strdup(strrchr(f.name, '/') + 1);
        f.name = f.workspace = NULL;
        rc = load_protocols(&t, i);
        if (rc == ST_OK)
            *out = i;
        else
            src_release(i);
    }
    store_end(&t);
    free(f.name), free(f.workspace);
    return rc;
}

/* ---- the cache ---------------------------------------------------------------------------- */

int src_cache_get(src_cache *c, const char *key, src_info **out)
{
    uint32_t h = hash(key) % BUCKETS;
    uint64_t epoch = store_config_epoch(c->st);
    int64_t now = mono_ms();
    pthread_rwlock_rdlock(&c->mu);
    for (entry *e = c->b[h]; e; e = e->next) {
        if (strcmp(e->key, key))
            continue;
        if (e->epoch == epoch && now - e->loaded_ms < c->ttl_ms) {
            *out = e->info;
            if (e->info)
                atomic_fetch_add(&e->info->refs, 1);
            pthread_rwlock_unlock(&c->mu);
            return *out ? ST_OK : ST_NOT_FOUND;
        }
        break;
    }
    pthread_rwlock_unlock(&c->mu);

    src_info *info;
    int rc = load(c, key, &info); /* outside the lock: other keys keep being served */
    if (rc == ST_ERROR)
        return rc;
    pthread_rwlock_wrlock(&c->mu);
    entry **pp = &c->b[h];
    while (*pp && strcmp((*pp)->key, key))
        pp = &(*pp)->next;
    if (*pp) {
        entry *old = *pp;
        *pp = old->next;
        entry_free(old);
        c->n--;
    }
    if (c->n >= MAX_ENTRIES)
        clear_all(c);
    entry *e = calloc(1, sizeof *e);
    *e = (entry){.key = strdup(key), .info = info, .epoch = epoch, .loaded_ms = now, .next = c->b[h]};
    c->b[h] = e;
    c->n++;
    if (info)
        atomic_fetch_add(&info->refs, 1); /* one for the cache, one for the caller */
    pthread_rwlock_unlock(&c->mu);
    *out = info;
    return info ? ST_OK : ST_NOT_FOUND;
}
