/* The store: one set of SQL for both backends. Each function is a thin, typed wrapper
 * around one statement; transactions are the caller's (the API layer's) business. */
#include "store/store.h"
#include "store/store_int.h"
#include "util/util.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCHEMA_VERSION "1"

/* Group commit state, guarded by gmu (see store.h). */
typedef struct durable_waiter {
    uint64_t gen;
    void (*fn)(void *arg, bool ok);
    void *arg;
    struct durable_waiter *next;
} durable_waiter;

struct store {
    db_pool *pool;
    const db_driver *drv;
    pthread_mutex_t gmu;
    pthread_cond_t slot_cv;  /* the writer slot is free: one waiting writer is woken */
    pthread_cond_t turn_cv;  /* the writer slot is free and the flusher wants it */
    pthread_cond_t flush_cv; /* the flusher has work, or must stop */
    pthread_cond_t done_cv;  /* a group became durable (or failed): broadcast */
    bool busy;         /* a writer (or the flusher's COMMIT) holds the writer connection */
    bool open;         /* BEGIN has been issued on the writer connection */
    bool flush_wanted; /* the flusher waits for the slot: writers let it go first */
    bool stopping;
    int members;       /* savepoints released into the open group */
    uint64_t gen;      /* the open (or last opened) group */
    uint64_t done;     /* every group up to this one is settled (durable or failed) */
    bool result[256];  /* outcome of group g at result[g % 256] */
    durable_waiter *waiters;
    bool group_res_changed; /* a member of the open group changed a resource */
    _Atomic uint64_t config_epoch;
    pthread_t flusher;
    bool has_flusher;
    /* Several processes on one database (store_watch). */
    char *dsn;
    char origin[48]; /* this process in NOTIFY payloads: its own changes are not news */
    watcher *watch;
    void (*on_change)(void *ctx, unsigned what);
    void *on_change_ctx;
};

/* Commits made by this thread while deferral is on (store_defer_begin) are not waited
 * for; the newest group they joined is remembered here for store_defer_end. */
static _Thread_local bool defer_on;
static _Thread_local uint64_t defer_gen;

static void *flusher_main(void *arg);

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static int run(txn *t, const char *sql, int n, const char *const *p, db_row_fn fn, void *ctx, long *changes);

/* The column resources.rendered (res_row.view, api/view.h) came after the first release. SQLite has no
 * ADD COLUMN IF NOT EXISTS, so the column is added once, remembered under its own meta
 * key: unlike schema_version, an older binary run in between leaves that key alone, and a
 * later start does not add the column twice. Runs inside the migration transaction (on
 * PostgreSQL under the schema script's advisory lock). */
static int migrate_views(txn *t)
{
    char done[8];
    int rc = store_meta_get(t, "resources.rendered", done, sizeof done);
    if (rc != ST_NOT_FOUND)
        return rc;
    if ((rc = run(t, "ALTER TABLE resources ADD COLUMN rendered TEXT", 0, NULL, NULL, NULL, NULL)) != ST_OK)
        return rc;
    return store_meta_set(t, "resources.rendered", "1");
}

store *store_open(const char *dsn, int readers, char *err, size_t errlen)
{
    store *s = calloc(1, sizeof *s);
    s->pool = db_pool_open(dsn, readers, err, errlen);
    if (!s->pool) {
        free(s);
        return NULL;
    }
    s->drv = db_pool_driver(s->pool);
    s->dsn = strdup(dsn);
    snprintf(s->origin, sizeof s->origin, "%ld.%lld", (long)getpid(), (long long)now_ms());
    pthread_mutex_init(&s->gmu, NULL);
    pthread_cond_init(&s->slot_cv, NULL);
    pthread_cond_init(&s->turn_cv, NULL);
    pthread_cond_init(&s->flush_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    if (s->drv->single_writer) {
        pthread_create(&s->flusher, NULL, flusher_main, s);
        s->has_flusher = true;
    }
    txn t;
    if (store_begin(s, &t, true) != ST_OK || s->drv->script(t.c, s->drv->schema_sql) != DB_OK) {
        snprintf(err, errlen, "%s: migration failed: %s", s->drv->name, t.c ? s->drv->errmsg(t.c) : "no connection");
        if (t.c)
            store_rollback(&t);
        store_close(s);
        return NULL;
    }
    store_meta_set(&t, "schema_version", SCHEMA_VERSION);
    if (migrate_views(&t) != ST_OK) {
        snprintf(err, errlen, "%s: migration failed: %s", s->drv->name, s->drv->errmsg(t.c));
        store_rollback(&t);
        store_close(s);
        return NULL;
    }
    if (store_commit(&t) != ST_OK) {
        snprintf(err, errlen, "%s: migration commit failed", s->drv->name);
        store_close(s);
        return NULL;
    }
    return s;
}

void store_close(store *s)
{
    if (!s)
        return;
    watcher_stop(s->watch); /* it polls through the pool: stopped first */
    s->watch = NULL;
    if (s->has_flusher) {
        /* The flusher settles whatever is still open before it stops. */
        pthread_mutex_lock(&s->gmu);
        s->stopping = true;
        pthread_cond_signal(&s->flush_cv);
        pthread_mutex_unlock(&s->gmu);
        pthread_join(s->flusher, NULL);
    }
    db_pool_close(s->pool);
    pthread_mutex_destroy(&s->gmu);
    pthread_cond_destroy(&s->slot_cv);
    pthread_cond_destroy(&s->turn_cv);
    pthread_cond_destroy(&s->flush_cv);
    pthread_cond_destroy(&s->done_cv);
    free(s->dsn);
    free(s);
}

const char *store_backend(store *s) { return s->drv->name; }

void store_pool_stats(void *st, int *in_use, int *waiting, int *size)
{
    db_pool_stats(((store *)st)->pool, in_use, waiting, size);
}

/* ---- transactions ---- */

/* ---- group commit (single-writer backends) ----
 *
 * Writers take turns on the one writer connection, each inside a savepoint of a shared
 * transaction (the open group), and leave at once. One flusher thread closes the group:
 * it takes the writer slot for the COMMIT, which with synchronous=NORMAL only appends the
 * group's pages to the WAL (no fsync), gives the slot back, and makes the WAL durable with
 * the driver's sync (fdatasync) while the next group fills. So a group holds everything
 * that arrived during one fsync, however many threads or connections sent it, and a
 * writer waiting for durability holds no lock (and, through store_defer_*, no thread). */

/* Frees the writer slot (gmu held) and wakes exactly one thread that can use it: the
 * flusher if it asked, else one writer, who passes it on when it leaves. Waking every
 * waiter instead (a broadcast) made 16 threads race for one slot on every event: on
 * 2 cores most of the intake's time went to futex wake-ups and context switches. */
static void slot_free(store *s)
{
    s->busy = false;
    if (s->flush_wanted)
        pthread_cond_signal(&s->turn_cv);
    else
        pthread_cond_signal(&s->slot_cv);
}

static int group_begin(store *s, txn *t)
{
    pthread_mutex_lock(&s->gmu);
    while (s->busy || s->flush_wanted)
        pthread_cond_wait(&s->slot_cv, &s->gmu);
    s->busy = true;
    pthread_mutex_unlock(&s->gmu);
    t->c = db_acquire(s->pool, true); /* never blocks: busy already serialises writers */
    if (!s->open) {
        if (s->drv->begin(t->c, true) != DB_OK) {
            log_error("%s: begin failed: %s", s->drv->name, s->drv->errmsg(t->c));
            db_release(s->pool, t->c, true);
            t->c = NULL;
            pthread_mutex_lock(&s->gmu);
            slot_free(s);
            pthread_mutex_unlock(&s->gmu);
            return ST_ERROR;
        }
        s->open = true;
        s->gen++;
    }
    t->gen = s->gen;
    t->grouped = true;
    t->in_tx = true;
    /* exec, not script: a cached prepared statement (grouping is SQLite's path), where
     * script would parse the SQL again for every write transaction */
    if (s->drv->exec(t->c, "SAVEPOINT w", 0, NULL, NULL, NULL, NULL) != DB_OK) {
        log_error("%s: savepoint failed: %s", s->drv->name, s->drv->errmsg(t->c));
        store_rollback(t);
        return ST_ERROR;
    }
    return ST_OK;
}

/* Gives the writer slot back (gmu held). A member's work joins the open group, which the
 * flusher is told about. */
static void group_leave(store *s, txn *t, bool member)
{
    /* A group nobody has joined holds no work, but its open transaction holds SQLite's
     * write lock (other processes, e.g. admin commands, would wait on it): end it. */
    if (!member && !s->members && s->open) {
        s->drv->rollback(t->c);
        s->open = false;
    }
    db_release(s->pool, t->c, true);
    t->c = NULL;
    if (member) {
        s->members++;
        pthread_cond_signal(&s->flush_cv);
    }
    slot_free(s);
}

/* Waits (gmu held) until group gen is settled; its outcome. */
static bool group_wait(store *s, uint64_t gen)
{
    while (s->done < gen)
        pthread_cond_wait(&s->done_cv, &s->gmu);
    return s->result[gen % 256];
}

/* Settles every group up to gen (gmu held) and hands back the waiters to call. */
static durable_waiter *group_settle(store *s, uint64_t gen, bool ok)
{
    for (uint64_t g = s->done + 1; g <= gen; g++)
        s->result[g % 256] = ok;
    s->done = gen;
    pthread_cond_broadcast(&s->done_cv);
    durable_waiter *ready = NULL, **pp = &s->waiters;
    while (*pp) {
        durable_waiter *w = *pp;
        if (w->gen <= gen) {
            *pp = w->next;
            w->next = ready;
            ready = w;
        } else {
            pp = &w->next;
        }
    }
    return ready;
}

/* One group: COMMIT under the writer slot, sync outside it. */
static void flush_group(store *s)
{
    s->flush_wanted = true;
    while (s->busy)
        pthread_cond_wait(&s->turn_cv, &s->gmu);
    s->busy = true;
    s->flush_wanted = false;
    uint64_t gen = s->gen;
    int members = s->members;
    bool res_changed = s->group_res_changed;
    s->members = 0;
    s->open = false;
    s->group_res_changed = false;
    pthread_mutex_unlock(&s->gmu);

    db_conn *c = db_acquire(s->pool, true);
    int64_t t0 = mono_ms();
    bool ok = s->drv->commit(c) == DB_OK;
    if (!ok) {
        log_error("%s: group commit failed: %s", s->drv->name, s->drv->errmsg(c));
        s->drv->rollback(c);
    } else if (res_changed) {
        s->config_epoch++; /* visible to readers from this COMMIT */
    }
    if (ok && s->drv->checkpoint && s->drv->checkpoint(c, true) != DB_OK) {
        log_error("%s: checkpoint failed", s->drv->name);
    }
    db_release(s->pool, c, true);
    pthread_mutex_lock(&s->gmu);
    slot_free(s); /* the next group fills while this one syncs */
    pthread_mutex_unlock(&s->gmu);

    if (ok && s->drv->sync && s->drv->sync(c) != DB_OK) {
        /* The group is committed but not known to be on disk: its writers are told it
         * failed (an acknowledged write must be durable). */
        log_error("%s: sync of group %llu failed: %s", s->drv->name, (unsigned long long)gen, s->drv->errmsg(c));
        ok = false;
    }
    log_debug("group commit: %d transactions in %lld ms", members, (long long)(mono_ms() - t0));

    pthread_mutex_lock(&s->gmu);
    durable_waiter *ready = group_settle(s, gen, ok);
    pthread_mutex_unlock(&s->gmu);
    while (ready) {
        durable_waiter *next = ready->next;
        ready->fn(ready->arg, ok);
        free(ready);
        ready = next;
    }
    if (ok && s->drv->checkpoint && s->drv->checkpoint(c, false) != DB_OK)
        log_error("%s: checkpoint failed", s->drv->name);
    pthread_mutex_lock(&s->gmu);
}

static void *flusher_main(void *arg)
{
    store *s = arg;
    pthread_mutex_lock(&s->gmu);
    for (;;) {
        while (!s->members && !s->stopping)
            pthread_cond_wait(&s->flush_cv, &s->gmu);
        if (s->members)
            flush_group(s);
        else if (s->stopping)
            break;
    }
    pthread_mutex_unlock(&s->gmu);
    return NULL;
}

void store_defer_begin(void)
{
    defer_on = true;
    defer_gen = 0;
}

uint64_t store_defer_end(void)
{
    defer_on = false;
    return defer_gen;
}

bool store_when_durable(store *s, uint64_t gen, void (*fn)(void *arg, bool ok), void *arg)
{
    pthread_mutex_lock(&s->gmu);
    if (s->done >= gen) {
        bool ok = s->result[gen % 256];
        pthread_mutex_unlock(&s->gmu);
        fn(arg, ok);
        return true;
    }
    durable_waiter *w = malloc(sizeof *w);
    *w = (durable_waiter){.gen = gen, .fn = fn, .arg = arg, .next = s->waiters};
    s->waiters = w;
    pthread_mutex_unlock(&s->gmu);
    return false;
}

/* ---- transactions ---- */

int store_begin(store *s, txn *t, bool write)
{
    *t = (txn){.st = s, .write = write};
    if (write && s->drv->single_writer)
        return group_begin(s, t);
    t->c = db_acquire(s->pool, write);
    if (!write)
        return ST_OK;
    if (s->drv->begin(t->c, true) != DB_OK) {
        log_error("%s: begin failed: %s", s->drv->name, s->drv->errmsg(t->c));
        db_release(s->pool, t->c, write);
        t->c = NULL;
        return ST_ERROR;
    }
    t->in_tx = true;
    return ST_OK;
}

int store_commit(txn *t)
{
    store *s = t->st;
    if (t->grouped) {
        bool released = s->drv->exec(t->c, "RELEASE w", 0, NULL, NULL, NULL, NULL) == DB_OK;
        if (!released) {
            log_error("%s: release failed: %s", s->drv->name, s->drv->errmsg(t->c));
            store_rollback(t);
            return ST_ERROR;
        }
        pthread_mutex_lock(&s->gmu);
        if (t->res_changed)
            s->group_res_changed = true;
        group_leave(s, t, true);
        bool ok = true;
        if (defer_on) {
            if (t->gen > defer_gen)
                defer_gen = t->gen; /* the caller answers once store_when_durable fires */
        } else {
            ok = group_wait(s, t->gen);
        }
        pthread_mutex_unlock(&s->gmu);
        return ok ? ST_OK : ST_ERROR;
    }
    int rc = ST_OK;
    if (t->in_tx && s->drv->notify_sql && (t->res_changed || t->auth_changed)) {
        /* Other processes drop what they cached, once (and only if) this commits. */
        char payload[80];
        snprintf(payload, sizeof payload, "%s %u", s->origin,
                 (t->res_changed ? CHG_CONFIG : 0u) | (t->auth_changed ? CHG_AUTH : 0u));
        const char *p[] = {payload};
        if (run(t, s->drv->notify_sql, 1, p, NULL, NULL, NULL) != ST_OK) {
            s->drv->rollback(t->c);
            db_release(s->pool, t->c, t->write);
            t->c = NULL;
            return ST_ERROR;
        }
    }
    if (t->in_tx && s->drv->commit(t->c) != DB_OK) {
        log_error("%s: commit failed: %s", s->drv->name, s->drv->errmsg(t->c));
        s->drv->rollback(t->c);
        rc = ST_ERROR;
    } else if (t->in_tx && t->res_changed) {
        s->config_epoch++;
    }
    db_release(s->pool, t->c, t->write);
    t->c = NULL;
    return rc;
}

uint64_t store_config_epoch(store *s) { return s->config_epoch; }

/* ---- several processes (watch.c does the listening) ---- */

static void remote_change(void *arg, unsigned what)
{
    store *s = arg;
    if (what & CHG_CONFIG)
        s->config_epoch++;
    if (s->on_change)
        s->on_change(s->on_change_ctx, what);
}

bool store_shared(store *s) { return s->drv->notify_sql != NULL; }

void store_watch(store *s, void (*fn)(void *ctx, unsigned what), void *ctx)
{
    if (!store_shared(s) || s->watch)
        return;
    s->on_change = fn;
    s->on_change_ctx = ctx;
    s->watch = watcher_start(s, s->dsn, s->origin, remote_change, s);
}

bool store_watch_listening(store *s) { return s->watch && watcher_listening(s->watch); }

static int counter_row(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    *(long long *)ctx = v[0] ? atoll(v[0]) : 0;
    return 1;
}

int store_change_counter(store *s, long long *out)
{
    txn t;
    store_begin(s, &t, false);
    *out = -1;
    int rc = run(&t, "SELECT last_value FROM manifold_changes", 0, NULL, counter_row, out, NULL);
    store_end(&t);
    return rc;
}

typedef struct lease_row { int granted; double tokens; bool found; } lease_row;

static int lease_fill(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    lease_row *r = ctx;
    r->granted = v[0] ? atoi(v[0]) : 0;
    r->tokens = v[1] ? strtod(v[1], NULL) : 0;
    r->found = true;
    return 1;
}

/* One token bucket per key in the database, refilled by the database's own clock (no skew
 * between processes). The new row's tokens and granted carry the rate (tokens + granted)
 * and the slice asked for (granted), so the update needs no parameter twice; every SET
 * expression sees the row as it was. */
#define REFILLED "LEAST(EXCLUDED.tokens + EXCLUDED.granted, " \
    "b.tokens + GREATEST(0, EXCLUDED.at_ms - b.at_ms) * (EXCLUDED.tokens + EXCLUDED.granted) / 1000.0)"
#define GRANT "LEAST(EXCLUDED.granted::float8, floor(" REFILLED "))"

int store_rate_lease(store *s, long long key, int rate, int want, int *granted, double *tokens)
{
    if (want > rate)
        want = rate;
    char k[24], t0[24], w[16];
    snprintf(k, sizeof k, "%lld", key);
    snprintf(t0, sizeof t0, "%d", rate - want);
    snprintf(w, sizeof w, "%d", want);
    const char *p[] = {k, t0, w};
    txn t;
    store_begin(s, &t, false);
    lease_row r = {0};
    int rc = run(&t, "INSERT INTO rate_buckets AS b (key, tokens, at_ms, granted) "
                     "VALUES (?, ?, (extract(epoch FROM clock_timestamp()) * 1000)::bigint, ?) "
                     "ON CONFLICT (key) DO UPDATE SET granted = (" GRANT ")::int, "
                     "tokens = " REFILLED " - " GRANT ", at_ms = GREATEST(b.at_ms, EXCLUDED.at_ms) "
                     "RETURNING granted, tokens",
                 3, p, lease_fill, &r, NULL);
    store_end(&t);
    *granted = r.granted;
    *tokens = r.tokens;
    return rc != ST_OK ? rc : r.found ? ST_OK : ST_ERROR;
}

int store_rate_sweep(store *s)
{
    /* A bucket left alone for a minute is full (rates are at least 1/s): its row can go. */
    txn t;
    store_begin(s, &t, false);
    int rc = run(&t, "DELETE FROM rate_buckets WHERE at_ms < (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 60000",
                 0, NULL, NULL, NULL, NULL);
    store_end(&t);
    return rc;
}

int store_run_(txn *t, const char *sql, int n, const char *const *p, db_row_fn fn, void *ctx, long *changes)
{
    return run(t, sql, n, p, fn, ctx, changes);
}

void store_rollback(txn *t)
{
    if (!t->c)
        return;
    store *s = t->st;
    if (t->grouped) {
        /* Undo only this transaction's savepoint; the group goes on. */
        s->drv->script(t->c, "ROLLBACK TO w");
        s->drv->script(t->c, "RELEASE w");
        pthread_mutex_lock(&s->gmu);
        group_leave(s, t, false);
        pthread_mutex_unlock(&s->gmu);
        return;
    }
    if (t->in_tx)
        s->drv->rollback(t->c);
    db_release(s->pool, t->c, t->write);
    t->c = NULL;
}

void store_end(txn *t) { store_rollback(t); }

static int run(txn *t, const char *sql, int n, const char *const *p, db_row_fn fn, void *ctx, long *changes)
{
    int rc = t->st->drv->exec(t->c, sql, n, p, fn, ctx, changes);
    if (rc == DB_CONSTRAINT)
        return ST_CONFLICT;
    if (rc != DB_OK) {
        log_error("%s: query failed: %s", t->st->drv->name, t->st->drv->errmsg(t->c));
        return ST_ERROR;
    }
    return ST_OK;
}

bool store_ping(store *s)
{
    txn t;
    store_begin(s, &t, false);
    bool ok = run(&t, "SELECT 1", 0, NULL, NULL, NULL, NULL) == ST_OK;
    store_end(&t);
    return ok;
}

/* Row callback helpers: "found" counters for single-row look-ups. */
typedef struct one { int found; void *out; } one;

/* ---- meta ---- */

static int meta_row(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    one *o = ctx;
    char **out = o->out;
    copy(out[0], (size_t)(uintptr_t)out[1], v[0]);
    o->found = 1;
    return 1;
}

int store_meta_get(txn *t, const char *key, char *out, size_t outlen)
{
    char *dest[2] = {out, (char *)(uintptr_t)outlen};
    one o = {0, dest};
    const char *p[] = {key};
    int rc = run(t, "SELECT value FROM meta WHERE key = ?", 1, p, meta_row, &o, NULL);
    return rc ? rc : o.found ? ST_OK : ST_NOT_FOUND;
}

int store_meta_set(txn *t, const char *key, const char *val)
{
    const char *p[] = {key, val};
    return run(t, "INSERT INTO meta (key, value) VALUES (?, ?) "
                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value", 2, p, NULL, NULL, NULL);
}

/* ---- workspaces ---- */

static void ws_fill(ws_row *w, char *const *v)
{
    copy(w->id, sizeof w->id, v[0]);
    copy(w->slug, sizeof w->slug, v[1]);
    copy(w->display_name, sizeof w->display_name, v[2]);
    copy(w->create_time, sizeof w->create_time, v[3]);
}

static int ws_one(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    one *o = ctx;
    ws_fill(o->out, v);
    o->found = 1;
    return 1;
}

int store_ws_get(txn *t, const char *slug_or_id, ws_row *out)
{
    one o = {0, out};
    const char *p[] = {slug_or_id, slug_or_id};
    int rc = run(t, "SELECT id, slug, display_name, create_time FROM workspaces WHERE slug = ? OR id = ?",
                 2, p, ws_one, &o, NULL);
    return rc ? rc : o.found ? ST_OK : ST_NOT_FOUND;
}

int store_ws_create(txn *t, const ws_row *w)
{
    const char *p[] = {w->id, w->slug, w->display_name, w->create_time};
    return run(t, "INSERT INTO workspaces (id, slug, display_name, create_time) VALUES (?, ?, ?, ?)",
               4, p, NULL, NULL, NULL);
}

typedef struct many { int n, cap; void *out; } many;

static int ws_many(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    many *m = ctx;
    if (m->n >= m->cap)
        return 1;
    ws_fill((ws_row *)m->out + m->n++, v);
    return 0;
}

int store_ws_list(txn *t, const char *after, int limit, ws_row *out)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    many m = {0, limit, out};
    const char *p[] = {after ? after : "", lim};
    int rc = run(t, "SELECT id, slug, display_name, create_time FROM workspaces WHERE slug > ? "
                    "ORDER BY slug LIMIT ?", 2, p, ws_many, &m, NULL);
    return rc ? rc : m.n;
}

static int count_row(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    *(int *)ctx = v[0] ? atoi(v[0]) : 0;
    return 1;
}

int store_ws_count(txn *t)
{
    int n = 0;
    int rc = run(t, "SELECT COUNT(*) FROM workspaces", 0, NULL, count_row, &n, NULL);
    return rc ? rc : n;
}

/* ---- users ---- */

static int user_one(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    one *o = ctx;
    user_row *u = o->out;
    copy(u->id, sizeof u->id, v[0]);
    copy(u->email, sizeof u->email, v[1]);
    copy(u->password_hash, sizeof u->password_hash, v[2]);
    copy(u->create_time, sizeof u->create_time, v[3]);
    o->found = 1;
    return 1;
}

int store_user_create(txn *t, const user_row *u)
{
    const char *p[] = {u->id, u->email, u->password_hash[0] ? u->password_hash : NULL, u->create_time};
    return run(t, "INSERT INTO users (id, email, password_hash, create_time) VALUES (?, ?, ?, ?)",
               4, p, NULL, NULL, NULL);
}

int store_user_by_email(txn *t, const char *email, user_row *out)
{
    one o = {0, out};
    const char *p[] = {email};
    int rc = run(t, "SELECT id, email, password_hash, create_time FROM users WHERE email = ?", 1, p,
                 user_one, &o, NULL);
    return rc ? rc : o.found ? ST_OK : ST_NOT_FOUND;
}

int store_user_get(txn *t, const char *id, user_row *out)
{
    one o = {0, out};
    const char *p[] = {id};
    int rc = run(t, "SELECT id, email, password_hash, create_time FROM users WHERE id = ?", 1, p,
                 user_one, &o, NULL);
    return rc ? rc : o.found ? ST_OK : ST_NOT_FOUND;
}

/* ---- access tokens ---- */

void token_row_clear(token_row *r)
{
    free(r->workspace_names);
    r->workspace_names = NULL;
}

static void token_fill(token_row *r, char *const *v)
{
    r->id = atoll(v[0]);
    copy(r->hash, sizeof r->hash, v[1]);
    copy(r->description, sizeof r->description, v[2]);
    copy(r->scopes, sizeof r->scopes, v[3]);
    free(r->workspace_names);
    r->workspace_names = strdup(v[4] ? v[4] : "[]");
    copy(r->user_id, sizeof r->user_id, v[5]);
    copy(r->create_time, sizeof r->create_time, v[6]);
}

static int token_one(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    one *o = ctx;
    token_fill(o->out, v);
    o->found = 1;
    return 1;
}

static int id_row(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    *(long long *)ctx = atoll(v[0]);
    return 1;
}

int store_token_create(txn *t, token_row *tok)
{
    const char *p[] = {tok->hash, tok->description, tok->scopes, tok->workspace_names,
                       tok->user_id[0] ? tok->user_id : NULL, tok->create_time};
    tok->id = 0;
    return run(t, "INSERT INTO access_tokens (hash, description, scopes, workspace_names, user_id, create_time) "
                  "VALUES (?, ?, ?, ?, ?, ?) RETURNING id", 6, p, id_row, &tok->id, NULL);
}

#define TOKEN_COLS "SELECT id, hash, description, scopes, workspace_names, user_id, create_time FROM access_tokens "

int store_token_by_hash(txn *t, const char *hash, token_row *out)
{
    one o = {0, out};
    const char *p[] = {hash};
    int rc = run(t, TOKEN_COLS "WHERE hash = ?", 1, p, token_one, &o, NULL);
    return rc ? rc : o.found ? ST_OK : ST_NOT_FOUND;
}

int store_token_get(txn *t, long long id, token_row *out)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    one o = {0, out};
    const char *p[] = {ids};
    int rc = run(t, TOKEN_COLS "WHERE id = ?", 1, p, token_one, &o, NULL);
    return rc ? rc : o.found ? ST_OK : ST_NOT_FOUND;
}

typedef struct token_iter { int (*fn)(void *, token_row *); void *ctx; } token_iter;

static int token_each(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    token_iter *it = ctx;
    token_row r = {0};
    token_fill(&r, v);
    int stop = it->fn(it->ctx, &r);
    token_row_clear(&r);
    return stop;
}

int store_token_list(txn *t, long long after_id, int limit, int (*fn)(void *, token_row *), void *ctx)
{
    char a[24], lim[16];
    snprintf(a, sizeof a, "%lld", after_id);
    snprintf(lim, sizeof lim, "%d", limit);
    token_iter it = {fn, ctx};
    const char *p[] = {a, lim};
    return run(t, TOKEN_COLS "WHERE id > ? ORDER BY id LIMIT ?", 2, p, token_each, &it, NULL);
}

int store_token_delete(txn *t, long long id)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    const char *p[] = {ids};
    long changes = 0;
    t->auth_changed = true; /* other processes drop the token from their caches */
    int rc = run(t, "DELETE FROM access_tokens WHERE id = ?", 1, p, NULL, NULL, &changes);
    return rc ? rc : changes ? ST_OK : ST_NOT_FOUND;
}

/* ---- resources ---- */

void res_row_clear(res_row *r)
{
    free(r->name), free(r->workspace), free(r->parent), free(r->kind), free(r->id), free(r->body), free(r->ref);
    free(r->view);
    memset(r, 0, sizeof *r);
}

#define RES_COLS "SELECT name, workspace, parent, kind, id, body, version, create_time, update_time, ref, rendered FROM resources "

static void res_fill(res_row *r, char *const *v)
{
    r->name = dup_or_null(v[0]);
    r->workspace = dup_or_null(v[1]);
    r->parent = dup_or_null(v[2]);
    r->kind = dup_or_null(v[3]);
    r->id = dup_or_null(v[4]);
    r->body = dup_or_null(v[5]);
    r->version = atoll(v[6]);
    copy(r->create_time, sizeof r->create_time, v[7]);
    copy(r->update_time, sizeof r->update_time, v[8]);
    r->ref = dup_or_null(v[9]);
    r->view = dup_or_null(v[10]);
}

static int res_one(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    one *o = ctx;
    res_fill(o->out, v);
    o->found = 1;
    return 1;
}

int store_res_get(txn *t, const char *name, res_row *out)
{
    one o = {0, out};
    const char *p[] = {name};
    int rc = run(t, RES_COLS "WHERE name = ?", 1, p, res_one, &o, NULL);
    return rc ? rc : o.found ? ST_OK : ST_NOT_FOUND;
}

int store_ws_lock(txn *t, const char *slug)
{
    if (t->st->drv->single_writer || !t->in_tx)
        return ST_OK;
    const char *p[] = {slug};
    return run(t, "SELECT slug FROM workspaces WHERE slug = ? FOR UPDATE", 1, p, NULL, NULL, NULL);
}

int store_res_get_locked(txn *t, const char *name, res_row *out, bool share)
{
    if (t->st->drv->single_writer || !t->in_tx)
        return store_res_get(t, name, out);
    one o = {0, out};
    const char *p[] = {name};
    int rc = share ? run(t, RES_COLS "WHERE name = ? FOR SHARE", 1, p, res_one, &o, NULL)
                   : run(t, RES_COLS "WHERE name = ? FOR UPDATE", 1, p, res_one, &o, NULL);
    return rc ? rc : o.found ? ST_OK : ST_NOT_FOUND;
}

int store_res_get_by_id(txn *t, const char *workspace, const char *kind, const char *id, res_row *out)
{
    one o = {0, out};
    const char *p[] = {workspace, kind, id};
    int rc = run(t, RES_COLS "WHERE workspace = ? AND kind = ? AND id = ?", 3, p, res_one, &o, NULL);
    return rc ? rc : o.found ? ST_OK : ST_NOT_FOUND;
}

/* Policies are what principals (the token cache) are made of. */
static bool grants_access(const char *kind) { return kind && !strcmp(kind, "policy"); }

int store_res_insert(txn *t, const res_row *r)
{
    t->res_changed = true;
    t->auth_changed |= grants_access(r->kind);
    char ver[24];
    snprintf(ver, sizeof ver, "%lld", r->version);
    const char *p[] = {r->name, r->workspace, r->parent, r->kind, r->id, r->body, ver,
                       r->create_time, r->update_time, r->ref, r->view};
    return run(t, "INSERT INTO resources (name, workspace, parent, kind, id, body, version, create_time, update_time, ref, rendered) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", 11, p, NULL, NULL, NULL);
}

int store_res_update(txn *t, const res_row *r, long long expect_version)
{
    t->res_changed = true;
    t->auth_changed |= grants_access(r->kind);
    char ver[24], exp[24];
    snprintf(ver, sizeof ver, "%lld", r->version);
    snprintf(exp, sizeof exp, "%lld", expect_version);
    const char *p[] = {r->body, ver, r->update_time, r->view, r->name, exp};
    long changes = 0;
    int rc = run(t, "UPDATE resources SET body = ?, version = ?, update_time = ?, rendered = ? WHERE name = ? AND version = ?",
                 6, p, NULL, NULL, &changes);
    return rc ? rc : changes ? ST_OK : ST_NOT_FOUND;
}

int store_res_set_view(txn *t, const char *name, long long version, const char *view)
{
    char ver[24];
    snprintf(ver, sizeof ver, "%lld", version);
    const char *p[] = {view, name, ver};
    return run(t, "UPDATE resources SET rendered = ? WHERE name = ? AND version = ?", 3, p, NULL, NULL, NULL);
}

int store_res_delete(txn *t, const char *name)
{
    t->res_changed = true;
    t->auth_changed = true; /* the name does not say its kind; deletes are rare */
    const char *p[] = {name};
    long changes = 0;
    int rc = run(t, "DELETE FROM resources WHERE name = ?", 1, p, NULL, NULL, &changes);
    return rc ? rc : changes ? ST_OK : ST_NOT_FOUND;
}

int store_res_delete_tree(txn *t, const char *name)
{
    t->res_changed = true;
    t->auth_changed = true; /* a subtree may hold policies */
    /* The subtree of "a/b" is every name in ["a/b/", "a/b0"): '0' sorts right after '/'. */
    size_t n = strlen(name);
    char *lo = malloc(n + 2), *hi = malloc(n + 2);
    memcpy(lo, name, n), memcpy(hi, name, n);
    lo[n] = '/', hi[n] = '0';
    lo[n + 1] = hi[n + 1] = '\0';
    const char *p[] = {lo, hi};
    int rc = run(t, "DELETE FROM resources WHERE name >= ? AND name < ?", 2, p, NULL, NULL, NULL);
    free(lo), free(hi);
    return rc;
}

typedef struct res_iter { int (*fn)(void *, res_row *); void *ctx; } res_iter;

static int res_each(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    res_iter *it = ctx;
    res_row r = {0};
    res_fill(&r, v);
    int stop = it->fn(it->ctx, &r);
    res_row_clear(&r);
    return stop;
}

int store_res_list(txn *t, const char *parent, const char *kind, const char *after, int limit,
                   int (*fn)(void *, res_row *), void *ctx)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    res_iter it = {fn, ctx};
    const char *p[] = {parent, kind, after ? after : "", lim};
    return run(t, RES_COLS "WHERE parent = ? AND kind = ? AND name > ? ORDER BY parent, kind, name LIMIT ?",
               4, p, res_each, &it, NULL);
}

int store_res_count(txn *t, const char *parent, const char *kind)
{
    int n = 0;
    const char *p[] = {parent, kind};
    int rc = run(t, "SELECT COUNT(*) FROM resources WHERE parent = ? AND kind = ?", 2, p, count_row, &n, NULL);
    return rc ? rc : n;
}

int store_res_list_ref(txn *t, const char *kind, const char *ref, int (*fn)(void *, res_row *), void *ctx)
{
    res_iter it = {fn, ctx};
    const char *p[] = {kind, ref};
    return run(t, RES_COLS "WHERE kind = ? AND ref = ? ORDER BY name", 2, p, res_each, &it, NULL);
}

int store_res_list_noref(txn *t, const char *kind, int (*fn)(void *, res_row *), void *ctx)
{
    res_iter it = {fn, ctx};
    const char *p[] = {kind};
    return run(t, RES_COLS "WHERE kind = ? AND ref IS NULL ORDER BY name", 1, p, res_each, &it, NULL);
}

int store_res_set_ref(txn *t, const char *name, const char *ref)
{
    const char *p[] = {ref, name};
    return run(t, "UPDATE resources SET ref = ? WHERE name = ?", 2, p, NULL, NULL, NULL);
}

int store_res_list_ws(txn *t, const char *workspace, const char *kind, const char *after, int limit,
                      int (*fn)(void *, res_row *), void *ctx)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    res_iter it = {fn, ctx};
    const char *p[] = {workspace, kind, after ? after : "", lim};
    return run(t, RES_COLS "WHERE workspace = ? AND kind = ? AND name > ? ORDER BY workspace, kind, name LIMIT ?",
               4, p, res_each, &it, NULL);
}

/* ---- audit trail ---- */

int store_audit_add(txn *t, const audit_row *a)
{
    char ms[24];
    snprintf(ms, sizeof ms, "%lld", a->time_ms);
    const char *p[] = {a->workspace, a->time, ms, a->actor, a->access_token, a->action, a->resource,
                       a->before, a->after, a->request_id};
    return run(t, "INSERT INTO audit_events (workspace, time, time_ms, actor, access_token, action, resource, "
                  "before, after, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", 10, p, NULL, NULL, NULL);
}

typedef struct audit_iter { int (*fn)(void *, const audit_row *); void *ctx; } audit_iter;

static int audit_each(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    audit_iter *it = ctx;
    audit_row a = {.id = atoll(v[0]), .workspace = v[1], .time = v[2], .time_ms = atoll(v[3]), .actor = v[4],
                   .access_token = v[5], .action = v[6], .resource = v[7], .before = v[8], .after = v[9],
                   .request_id = v[10]};
    return it->fn(it->ctx, &a);
}

int store_audit_list(txn *t, const char *workspace, long long before_id, const char *prefix, long long start_ms,
                     long long end_ms, int limit, int (*fn)(void *, const audit_row *), void *ctx)
{
    char b[24], s0[24], e0[24], lim[16], plen[24];
    snprintf(b, sizeof b, "%lld", before_id > 0 ? before_id : (long long)9e18);
    snprintf(s0, sizeof s0, "%lld", start_ms);
    snprintf(e0, sizeof e0, "%lld", end_ms > 0 ? end_ms : (long long)9e18);
    snprintf(lim, sizeof lim, "%d", limit);
    /* `prefix` names a resource: it matches that resource and the ones under it
     * (".../sources/js" and ".../sources/js/destinations/x", not ".../sources/js2"). */
    size_t n = prefix ? strlen(prefix) : 0;
    while (n && prefix[n - 1] == '/')
        n--;
    char *under = malloc(n + 2);
    if (!under)
        return ST_ERROR;
    if (n)
        memcpy(under, prefix, n);
    under[n] = '/';
    under[n + 1] = '\0';
    char *exact = strndup(prefix ? prefix : "", n);
    if (!exact) {
        free(under);
        return ST_ERROR;
    }
    snprintf(plen, sizeof plen, "%zu", n ? n + 1 : 0);
    audit_iter it = {fn, ctx};
    const char *p[] = {workspace, b, s0, e0, plen, exact, plen, under, lim};
    int rc = run(t, "SELECT id, workspace, time, time_ms, actor, access_token, action, resource, before, after, request_id "
                    "FROM audit_events WHERE workspace = ? AND id < ? AND time_ms >= ? AND time_ms < ? "
                    "AND (CAST(? AS INTEGER) = 0 OR resource = ? OR substr(resource, 1, CAST(? AS INTEGER)) = ?) "
                    "ORDER BY id DESC LIMIT ?",
                 9, p, audit_each, &it, NULL);
    free(under);
    free(exact);
    return rc;
}

/* ---- idempotency ---- */

typedef struct idem_out { char *req_hash; int *status; char **body; long long *create_ms; int found; } idem_out;

static int idem_row(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    idem_out *o = ctx;
    copy(o->req_hash, 65, v[0]);
    *o->status = atoi(v[1]);
    *o->body = strdup(v[2]);
    *o->create_ms = atoll(v[3]);
    o->found = 1;
    return 1;
}

int store_idem_get(txn *t, const char *key, char *req_hash, int *status, char **body, long long *create_ms)
{
    idem_out o = {req_hash, status, body, create_ms, 0};
    const char *p[] = {key};
    int rc = run(t, "SELECT request_hash, status, body, create_ms FROM idempotency WHERE key = ?", 1, p,
                 idem_row, &o, NULL);
    return rc ? rc : o.found ? ST_OK : ST_NOT_FOUND;
}

int store_idem_claim(txn *t, const char *key, const char *req_hash, long long create_ms)
{
    char ms[24];
    snprintf(ms, sizeof ms, "%lld", create_ms);
    const char *p[] = {key, req_hash, ms};
    long changes = 0;
    int rc = run(t, "INSERT INTO idempotency (key, request_hash, status, body, create_ms) VALUES (?, ?, 0, '', ?) "
                    "ON CONFLICT (key) DO NOTHING", 3, p, NULL, NULL, &changes);
    return rc ? rc : changes ? ST_OK : ST_CONFLICT;
}

int store_idem_put(txn *t, const char *key, const char *req_hash, int status, const char *body, long long create_ms)
{
    char st[16], ms[24];
    snprintf(st, sizeof st, "%d", status);
    snprintf(ms, sizeof ms, "%lld", create_ms);
    const char *p[] = {key, req_hash, st, body, ms};
    return run(t, "INSERT INTO idempotency (key, request_hash, status, body, create_ms) VALUES (?, ?, ?, ?, ?) "
                  "ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, status = excluded.status, "
                  "body = excluded.body, create_ms = excluded.create_ms", 5, p, NULL, NULL, NULL);
}
