#include "auth/auth.h"
#include "util/util.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <semaphore.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned char key[AUTH_KEY_BYTES];

int auth_init(const char *key_path, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    int fd = open(key_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        unsigned char k[AUTH_KEY_BYTES];
        randombytes_buf(k, sizeof k);
        /* O_EXCL: two processes starting at once must not write two different keys. */
        int wfd = open(key_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (wfd >= 0) {
            ssize_t n = write(wfd, k, sizeof k);
            fsync(wfd);
            close(wfd);
            if (n != (ssize_t)sizeof k) {
                snprintf(err, errlen, "cannot write key file %s", key_path);
                return -1;
            }
        }
        fd = open(key_path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot open key file %s: %s", key_path, strerror(errno));
        return -1;
    }
    ssize_t n = read(fd, key, sizeof key);
    close(fd);
    if (n != (ssize_t)sizeof key) {
        snprintf(err, errlen, "key file %s must hold exactly %d bytes", key_path, AUTH_KEY_BYTES);
        return -1;
    }
    return 0;
}

void token_generate(char out[TOKEN_TEXT_MAX])
{
    unsigned char a[32], b[32];
    randombytes_buf(a, sizeof a);
    randombytes_buf(b, sizeof b);
    size_t n = b64url_encode(a, sizeof a, out);
    out[n++] = '.';
    b64url_encode(b, sizeof b, out + n);
    sodium_memzero(a, sizeof a);
    sodium_memzero(b, sizeof b);
}

void token_hash(const char *token, size_t len, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)token, len, key, sizeof key);
    sodium_bin2hex(out, 65, h, sizeof h);
}

void auth_mac(const void *data, size_t len, unsigned char out[12])
{
    /* A different personalisation than token hashes, via a derived key. */
    unsigned char k2[32];
    crypto_generichash(k2, sizeof k2, (const unsigned char *)"manifold page token", 19, key, sizeof key);
    crypto_generichash(out, 12, data, len, k2, sizeof k2);
}

void principal_from_row(principal *p, const token_row *r)
{
    memset(p, 0, sizeof *p);
    p->token_id = r->id;
    snprintf(p->scopes, sizeof p->scopes, "%s", r->scopes);
    p->can_write = !strcmp(r->scopes, "workspace");
    snprintf(p->user_id, sizeof p->user_id, "%s", r->user_id);
    json_t *names = json_loads(r->workspace_names ? r->workspace_names : "[]", 0, NULL);
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v) {
        const char *s = json_string_value(v);
        if (!s || p->nws >= AUTH_MAX_WS)
            continue;
        if (!strncmp(s, "workspaces/", 11))
            s += 11;
        snprintf(p->ws[p->nws++], sizeof p->ws[0], "%s", s);
    }
    json_decref(names);
}

static void grants_ref(grant_set *g)
{
    if (g)
        __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
}

static void grants_unref(grant_set *g)
{
    if (!g || __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL))
        return;
    for (int i = 0; i < g->n; i++)
        free(g->g[i].resource);
    free(g->g);
    free(g);
}

void principal_release(principal *p)
{
    grants_unref(p->grants);
    p->grants = NULL;
}

static int add_grant(void *ctx, res_row *r)
{
    grant_set *gs = ctx;
    json_t *b = json_loads(r->body, 0, NULL);
    const char *role = json_string_value(json_object_get(b, "role"));
    const char *res = json_string_value(json_object_get(b, "resource"));
    if (role && res) {
        if (gs->n == gs->cap) {
            gs->cap = gs->cap ? gs->cap * 2 : 8;
            gs->g = realloc(gs->g, (size_t)gs->cap * sizeof *gs->g);
        }
        snprintf(gs->g[gs->n].role, sizeof gs->g[0].role, "%s", role);
        gs->g[gs->n].resource = strdup(res);
        gs->n++;
    }
    json_decref(b);
    return 0;
}

int principal_load_grants(txn *t, principal *p, const char *user_id)
{
    char subject[64];
    snprintf(subject, sizeof subject, "users/%s", user_id);
    principal_release(p);
    grant_set *gs = calloc(1, sizeof *gs);
    gs->refs = 1;
    p->has_user = true;
    p->grants = gs;
    return store_res_list_ref(t, "policy", subject, add_grant, gs);
}

bool principal_has_ws(const principal *p, const char *slug)
{
    for (int i = 0; i < p->nws; i++)
        if (!strcmp(p->ws[i], slug))
            return true;
    return false;
}

static void ratelimit_reset(void);

/* ---- the token cache --------------------------------------------------------------- */

#define CACHE_BUCKETS 1024
#define CACHE_MAX 65536
#define RECHECK_MS 1000

typedef struct centry {
    unsigned char hash[32];
    principal p;
    int64_t checked_ms;
    struct centry *next;
} centry;

static struct {
    pthread_rwlock_t lock;
    centry *b[CACHE_BUCKETS];
    int count;
} cache = {.lock = PTHREAD_RWLOCK_INITIALIZER};

static void centry_free(centry *e)
{
    principal_release(&e->p);
    free(e);
}

static void cache_clear_locked(void)
{
    for (int i = 0; i < CACHE_BUCKETS; i++) {
        for (centry *e = cache.b[i], *n; e; e = n) {
            n = e->next;
            centry_free(e);
        }
        cache.b[i] = NULL;
    }
    cache.count = 0;
}

void auth_shutdown(void)
{
    pthread_rwlock_wrlock(&cache.lock);
    cache_clear_locked();
    pthread_rwlock_unlock(&cache.lock);
    sodium_memzero(key, sizeof key);
    ratelimit_reset();
}

static unsigned bucket_of(const unsigned char h[32]) { return (h[0] | (unsigned)h[1] << 8) % CACHE_BUCKETS; }

static void cache_remove_locked(const unsigned char h[32])
{
    centry **pp = &cache.b[bucket_of(h)];
    while (*pp) {
        if (!memcmp((*pp)->hash, h, 32)) {
            centry *e = *pp;
            *pp = e->next;
            centry_free(e);
            cache.count--;
            return;
        }
        pp = &(*pp)->next;
    }
}

void auth_forget_all(void)
{
    pthread_rwlock_wrlock(&cache.lock);
    cache_clear_locked();
    pthread_rwlock_unlock(&cache.lock);
}

void auth_forget(long long token_id)
{
    pthread_rwlock_wrlock(&cache.lock);
    for (int i = 0; i < CACHE_BUCKETS; i++) {
        for (centry **pp = &cache.b[i]; *pp;) {
            if ((*pp)->p.token_id == token_id) {
                centry *e = *pp;
                *pp = e->next;
                centry_free(e);
                cache.count--;
            } else {
                pp = &(*pp)->next;
            }
        }
    }
    pthread_rwlock_unlock(&cache.lock);
}

int auth_bearer(store *st, const char *token, size_t len, principal *p)
{
    if (len == 0 || len >= TOKEN_TEXT_MAX)
        return ST_NOT_FOUND;
    /* The binary hash keys the cache; hex is only needed for the database on a miss. */
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)token, len, key, sizeof key);
    int64_t now = mono_ms();

    pthread_rwlock_rdlock(&cache.lock);
    for (centry *e = cache.b[bucket_of(h)]; e; e = e->next) {
        /* Constant-time compare: the hash is derived from the secret. */
        if (sodium_memcmp(e->hash, h, 32) == 0 && now - e->checked_ms < RECHECK_MS) {
            *p = e->p;
            grants_ref(p->grants);
            pthread_rwlock_unlock(&cache.lock);
            return ST_OK;
        }
    }
    pthread_rwlock_unlock(&cache.lock);

    char hex[65];
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    txn t;
    token_row row = {0};
    store_begin(st, &t, false);
    int rc = store_token_by_hash(&t, hex, &row);
    principal fresh = {0};
    if (rc == ST_OK && sodium_memcmp(row.hash, hex, 64) != 0)
        rc = ST_NOT_FOUND;
    if (rc == ST_OK) {
        principal_from_row(&fresh, &row);
        if (row.user_id[0])
            rc = principal_load_grants(&t, &fresh, row.user_id);
    }
    store_end(&t);
    pthread_rwlock_wrlock(&cache.lock);
    cache_remove_locked(h);
    if (rc == ST_OK) {
        if (cache.count >= CACHE_MAX)
            cache_clear_locked();
        centry *e = calloc(1, sizeof *e);
        memcpy(e->hash, h, 32);
        e->p = fresh; /* the cache keeps fresh's reference */
        e->checked_ms = now;
        unsigned b = bucket_of(h);
        e->next = cache.b[b];
        cache.b[b] = e;
        cache.count++;
        *p = e->p;
        grants_ref(p->grants);
    } else {
        principal_release(&fresh);
    }
    pthread_rwlock_unlock(&cache.lock);
    token_row_clear(&row);
    return rc;
}

/* ---- passwords ---------------------------------------------------------------------- */

static sem_t pw_slots;
static pthread_once_t pw_once = PTHREAD_ONCE_INIT;
static void pw_init(void) { sem_init(&pw_slots, 0, 2); }

int password_hash(const char *pw, char out[160])
{
    pthread_once(&pw_once, pw_init);
    sem_wait(&pw_slots);
    int rc = crypto_pwhash_str(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                               crypto_pwhash_MEMLIMIT_INTERACTIVE);
    sem_post(&pw_slots);
    return rc;
}

int password_verify(const char *hash, const char *pw)
{
    if (!hash || !*hash)
        return 0;
    pthread_once(&pw_once, pw_init);
    /* Never queue for a slot: a waiting request would hold a worker thread, and a flood of
     * wrong passwords would starve token-authenticated requests. */
    if (sem_trywait(&pw_slots) != 0)
        return -1;
    int ok = crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0;
    sem_post(&pw_slots);
    return ok;
}

/* ---- rate limiting ------------------------------------------------------------------ */

#define RL_STRIPES 64

typedef struct rl_entry {
    long long id;
    double tokens;    /* local mode: a token bucket */
    int64_t last_ms;
    int left;         /* shared mode: requests leased and not yet spent */
    int64_t lease_until, next_ask;
    double seen_tokens; /* what the shared bucket held after the last lease */
    struct rl_entry *next;
} rl_entry;

static struct {
    pthread_mutex_t mu[RL_STRIPES];
    rl_entry *b[RL_STRIPES];
    pthread_once_t once;
} rl = {.once = PTHREAD_ONCE_INIT};

static void rl_init(void)
{
    for (int i = 0; i < RL_STRIPES; i++)
        pthread_mutex_init(&rl.mu[i], NULL);
}

/* The global mode (several processes on one PostgreSQL; docs/scaling.md): the token
 * bucket lives in the database (store_rate_lease: burst `rate`, refilled at `rate` per
 * second by the database's clock), and a process takes slices of it — a tenth of the
 * rate — with one UPSERT, spending them locally without a round trip. A slice not spent
 * within LEASE_MS lapses, so what passes in any interval is what the shared bucket
 * granted in it or in the LEASE_MS before it; unspent slices are lost (the limit errs on
 * the strict side). An empty bucket is not asked again before it can hold one token. */
#define LEASE_PARTS 10
#define LEASE_MS 100

static store *rl_shared;

void ratelimit_share(store *st) { rl_shared = st; }

/* 1: decided (*ok), 0: the database could not be asked (count locally instead). */
static int take_shared(rl_entry *e, long long key, int rate, int64_t now, bool *ok, int *remaining, int *retry_ms)
{
    if (e->left > 0 && now >= e->lease_until)
        e->left = 0; /* the slice lapsed */
    if (e->left <= 0 && now >= e->next_ask) {
        int want = (rate + LEASE_PARTS - 1) / LEASE_PARTS, granted;
        double tokens;
        if (store_rate_lease(rl_shared, key, rate, want, &granted, &tokens) != ST_OK)
            return 0;
        e->left = granted;
        e->lease_until = now + LEASE_MS;
        e->seen_tokens = tokens;
        /* empty: the time until the bucket holds one token again */
        e->next_ask = granted ? now : now + 1 + (int64_t)((1.0 - (tokens > 0 ? tokens : 0)) * 1000.0 / rate);
    }
    if (e->left <= 0) {
        *ok = false;
        *remaining = 0;
        *retry_ms = (int)(e->next_ask > now ? e->next_ask - now : 1);
        return 1;
    }
    e->left--;
    *ok = true;
    *remaining = e->left + (int)e->seen_tokens;
    *retry_ms = 0;
    return 1;
}

bool ratelimit_take(long long token_id, int rate, int *remaining, int *retry_s, int64_t *reset_epoch)
{
    if (rate <= 0)
        return true;
    pthread_once(&rl.once, rl_init);
    unsigned s = (unsigned)((unsigned long long)token_id % RL_STRIPES);
    int64_t now = mono_ms();
    pthread_mutex_lock(&rl.mu[s]);
    rl_entry *e = rl.b[s];
    while (e && e->id != token_id)
        e = e->next;
    if (!e) {
        e = calloc(1, sizeof *e);
        e->id = token_id;
        e->tokens = rate;
        e->last_ms = now;
        e->next = rl.b[s];
        rl.b[s] = e;
    }
    bool ok;
    int retry_ms;
    if (rl_shared && take_shared(e, token_id, rate, now, &ok, remaining, &retry_ms)) {
        pthread_mutex_unlock(&rl.mu[s]);
        *retry_s = ok ? 0 : (retry_ms + 999) / 1000;
        /* the bucket is full again at the latest after it has been refilled entirely */
        *reset_epoch = now_ms() / 1000 + (int64_t)((rate - *remaining) / rate) + 1;
        return ok;
    }
    e->tokens += (double)(now - e->last_ms) * rate / 1000.0;
    if (e->tokens > rate)
        e->tokens = rate;
    e->last_ms = now;
    ok = e->tokens >= 1.0;
    if (ok)
        e->tokens -= 1.0;
    double missing = rate - e->tokens;
    *remaining = (int)e->tokens;
    *retry_s = ok ? 0 : (int)((1.0 - e->tokens) / rate) + 1;
    *reset_epoch = now_ms() / 1000 + (int64_t)(missing / rate) + 1;
    pthread_mutex_unlock(&rl.mu[s]);
    return ok;
}

static void ratelimit_reset(void)
{
    pthread_once(&rl.once, rl_init);
    for (int i = 0; i < RL_STRIPES; i++) {
        pthread_mutex_lock(&rl.mu[i]);
        for (rl_entry *e = rl.b[i], *n; e; e = n) {
            n = e->next;
            free(e);
        }
        rl.b[i] = NULL;
        pthread_mutex_unlock(&rl.mu[i]);
    }
}
