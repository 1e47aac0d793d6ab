/* Event Delivery Metrics' storage (delivery_metrics.h). Two tables, the same SQL on both
 * backends:
 *
 *   dm_counts  (destination, minute, metric, shard) → n
 *   dm_latency (destination, minute, bucket, shard) → n, lo, hi
 *
 * minute is whole UTC minutes since the epoch. Only leaf counters are stored (successes,
 * retried_<code>, discarded_<code>, …); the API derives retried/discarded/total. A
 * latency sample is one upsert of its histogram bucket (store/dm_hist.h) carrying the
 * bucket's exact min and max, so percentiles over any set of minutes come from merged
 * buckets, exact for a single sample and within 1% otherwise.
 *
 * Shards: on PostgreSQL many delivery threads add to the same (destination, minute,
 * metric) row at once; each thread takes its own shard (round robin, 16), so concurrent
 * transactions of different threads never wait on one row lock. SQLite has a single
 * writer: shard 0 always. Reads sum over shards. */
#include "store/delivery_metrics.h"
#include "store/dm_hist.h"
#include "store/store_int.h"
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DM_SHARDS 16

static int shard_of(txn *t)
{
    static atomic_int next;
    static _Thread_local int mine = -1;
    if (strcmp(store_backend(t->st), "sqlite") == 0)
        return 0;
    if (mine < 0)
        mine = atomic_fetch_add(&next, 1) % DM_SHARDS;
    return mine;
}

/* Floor division: minutes before 1970 would otherwise round toward zero. */
static long long minute_of(long long ms) { return ms >= 0 ? ms / 60000 : -((-ms + 59999) / 60000); }

int store_dm_add(txn *t, const char *destination, const char *metric, long long at_ms, long long n)
{
    if (!destination || !metric || n == 0)
        return ST_OK;
    char m[24], s[8], v[24];
    snprintf(m, sizeof m, "%lld", minute_of(at_ms));
    snprintf(s, sizeof s, "%d", shard_of(t));
    snprintf(v, sizeof v, "%lld", n);
    const char *p[] = {destination, m, metric, s, v};
    return store_run_(t, "INSERT INTO dm_counts (destination, minute, metric, shard, n) VALUES (?, ?, ?, ?, ?) "
                         "ON CONFLICT (destination, minute, metric, shard) DO UPDATE SET n = dm_counts.n + excluded.n",
                      5, p, NULL, NULL, NULL);
}

/* Merges n samples in [lo, hi] into one histogram bucket of a minute. */
static int latency_upsert(txn *t, const char *destination, long long minute, int bucket, long long n, long long lo,
                          long long hi)
{
    char m[24], b[16], s[8], v[24], l[24], h[24];
    snprintf(m, sizeof m, "%lld", minute);
    snprintf(b, sizeof b, "%d", bucket);
    snprintf(s, sizeof s, "%d", shard_of(t));
    snprintf(v, sizeof v, "%lld", n);
    snprintf(l, sizeof l, "%lld", lo);
    snprintf(h, sizeof h, "%lld", hi);
    const char *p[] = {destination, m, b, s, v, l, h};
    return store_run_(t, "INSERT INTO dm_latency (destination, minute, bucket, shard, n, lo, hi) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (destination, minute, bucket, shard) DO UPDATE SET "
                         "n = dm_latency.n + excluded.n, "
                         "lo = CASE WHEN excluded.lo < dm_latency.lo THEN excluded.lo ELSE dm_latency.lo END, "
                         "hi = CASE WHEN excluded.hi > dm_latency.hi THEN excluded.hi ELSE dm_latency.hi END",
                      7, p, NULL, NULL, NULL);
}

int store_dm_latency(txn *t, const char *destination, long long at_ms, long long latency_ms)
{
    if (!destination)
        return ST_OK;
    if (latency_ms < 0)
        latency_ms = 0; /* clock skew between receivedAt and the attempt's end */
    return latency_upsert(t, destination, minute_of(at_ms), dm_hist_index(latency_ms), 1, latency_ms, latency_ms);
}

int store_dm_delete(txn *t, const char *destination)
{
    const char *p[] = {destination};
    int rc = store_run_(t, "DELETE FROM dm_counts WHERE destination = ?", 1, p, NULL, NULL, NULL);
    if (rc == ST_OK)
        rc = store_run_(t, "DELETE FROM dm_latency WHERE destination = ?", 1, p, NULL, NULL, NULL);
    return rc;
}

int store_dm_delete_tree(txn *t, const char *prefix)
{
    /* The names under prefix/ are exactly the range [prefix + "/", prefix + "0"): '0'
     * follows '/' in byte order (the columns use byte order on both backends). */
    size_t n = strlen(prefix);
    char *lo = malloc(n + 2), *hi = malloc(n + 2);
    memcpy(lo, prefix, n);
    memcpy(hi, prefix, n);
    lo[n] = '/', hi[n] = '0';
    lo[n + 1] = hi[n + 1] = '\0';
    const char *p[] = {lo, hi};
    int rc = store_run_(t, "DELETE FROM dm_counts WHERE destination >= ? AND destination < ?", 2, p, NULL, NULL,
                        NULL);
    if (rc == ST_OK)
        rc = store_run_(t, "DELETE FROM dm_latency WHERE destination >= ? AND destination < ?", 2, p, NULL, NULL,
                        NULL);
    free(lo);
    free(hi);
    return rc;
}

int store_dm_prune(txn *t, long long before_ms, int limit)
{
    char m[24], l[16];
    snprintf(m, sizeof m, "%lld", minute_of(before_ms));
    snprintf(l, sizeof l, "%d", limit);
    const char *p[] = {m, l};
    int rc = store_run_(t, "DELETE FROM dm_counts WHERE (destination, minute, metric, shard) IN "
                           "(SELECT destination, minute, metric, shard FROM dm_counts WHERE minute < ? LIMIT ?)",
                        2, p, NULL, NULL, NULL);
    if (rc == ST_OK)
        rc = store_run_(t, "DELETE FROM dm_latency WHERE (destination, minute, bucket, shard) IN "
                           "(SELECT destination, minute, bucket, shard FROM dm_latency WHERE minute < ? LIMIT ?)",
                        2, p, NULL, NULL, NULL);
    return rc;
}

/* ---- reads ------------------------------------------------------------------------- */

typedef struct count_iter {
    int (*fn)(void *, long long, const char *, long long);
    void *ctx;
    long long start_ms;
    int gran;
} count_iter;

static long long slot_ms(long long slot, int gran, long long start_ms)
{
    return gran ? slot * gran * 60000LL : start_ms;
}

static int count_row(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    count_iter *it = ctx;
    return it->fn(it->ctx, slot_ms(v[0] ? atoll(v[0]) : 0, it->gran, it->start_ms), v[1] ? v[1] : "",
                  v[2] ? atoll(v[2]) : 0);
}

/* One statement per slot size: SQL must be static (drivers cache it by address), and the
 * integer division by a literal is integer division on both backends. */
static const char *const count_sql[] = {
    "SELECT 0, metric, SUM(n) FROM dm_counts WHERE destination = ? AND minute >= ? AND minute < ? "
    "GROUP BY metric ORDER BY metric",
    "SELECT minute, metric, SUM(n) FROM dm_counts WHERE destination = ? AND minute >= ? AND minute < ? "
    "GROUP BY minute, metric ORDER BY minute, metric",
    "SELECT minute / 60, metric, SUM(n) FROM dm_counts WHERE destination = ? AND minute >= ? AND minute < ? "
    "GROUP BY minute / 60, metric ORDER BY minute / 60, metric",
    "SELECT minute / 1440, metric, SUM(n) FROM dm_counts WHERE destination = ? AND minute >= ? AND minute < ? "
    "GROUP BY minute / 1440, metric ORDER BY minute / 1440, metric",
};

static const char *const latency_sql[] = {
    "SELECT 0, bucket, SUM(n), MIN(lo), MAX(hi) FROM dm_latency WHERE destination = ? AND minute >= ? "
    "AND minute < ? GROUP BY bucket ORDER BY bucket",
    "SELECT minute, bucket, SUM(n), MIN(lo), MAX(hi) FROM dm_latency WHERE destination = ? AND minute >= ? "
    "AND minute < ? GROUP BY minute, bucket ORDER BY minute, bucket",
    "SELECT minute / 60, bucket, SUM(n), MIN(lo), MAX(hi) FROM dm_latency WHERE destination = ? AND minute >= ? "
    "AND minute < ? GROUP BY minute / 60, bucket ORDER BY minute / 60, bucket",
    "SELECT minute / 1440, bucket, SUM(n), MIN(lo), MAX(hi) FROM dm_latency WHERE destination = ? "
    "AND minute >= ? AND minute < ? GROUP BY minute / 1440, bucket ORDER BY minute / 1440, bucket",
};

static int gran_slot(int gran_min)
{
    switch (gran_min) {
    case 0: return 0;
    case 1: return 1;
    case 60: return 2;
    case 1440: return 3;
    default: return -1;
    }
}

/* One of a query family (indexed by gran_slot) over the minutes of [start_ms, end_ms). */
static int window_query(txn *t, const char *const sql[4], const char *destination, long long start_ms,
                        long long end_ms, int gran_min, db_row_fn row, void *it)
{
    int g = gran_slot(gran_min);
    if (g < 0)
        return ST_ERROR;
    char a[24], b[24];
    snprintf(a, sizeof a, "%lld", minute_of(start_ms));
    snprintf(b, sizeof b, "%lld", minute_of(end_ms + 59999));
    const char *p[] = {destination, a, b};
    return store_run_(t, sql[g], 3, p, row, it, NULL);
}

int store_dm_counts(txn *t, const char *destination, long long start_ms, long long end_ms, int gran_min,
                    int (*fn)(void *ctx, long long slot_ms, const char *metric, long long n), void *ctx)
{
    count_iter it = {fn, ctx, start_ms, gran_min};
    return window_query(t, count_sql, destination, start_ms, end_ms, gran_min, count_row, &it);
}

typedef struct lat_iter {
    int (*fn)(void *, long long, int, long long, long long, long long);
    void *ctx;
    long long start_ms;
    int gran;
} lat_iter;

static int lat_row(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    lat_iter *it = ctx;
    return it->fn(it->ctx, slot_ms(v[0] ? atoll(v[0]) : 0, it->gran, it->start_ms), v[1] ? atoi(v[1]) : 0,
                  v[2] ? atoll(v[2]) : 0, v[3] ? atoll(v[3]) : 0, v[4] ? atoll(v[4]) : 0);
}

int store_dm_latency_hist(txn *t, const char *destination, long long start_ms, long long end_ms, int gran_min,
                          int (*fn)(void *ctx, long long slot_ms, int bucket, long long n, long long lo,
                                    long long hi),
                          void *ctx)
{
    lat_iter it = {fn, ctx, start_ms, gran_min};
    return window_query(t, latency_sql, destination, start_ms, end_ms, gran_min, lat_row, &it);
}

/* ---- batches ------------------------------------------------------------------------ */

typedef struct dm_entry {
    char *dest;
    char *metric; /* NULL: a latency bucket */
    long long minute;
    int bucket;
    long long n, lo, hi;
    uint64_t hash;
} dm_entry;

struct dm_batch {
    dm_entry *e;
    int n, cap;
    int *slot; /* open addressing: index + 1 into e, 0 = empty; nslot a power of two */
    int nslot;
};

dm_batch *dm_batch_new(void) { return calloc(1, sizeof(dm_batch)); }

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ULL;
    return h;
}

static uint64_t key_hash(const char *dest, const char *metric, long long minute, int bucket)
{
    uint64_t h = fnv(14695981039346656037ULL, dest, strlen(dest) + 1);
    h = metric ? fnv(h, metric, strlen(metric) + 1) : fnv(h, &bucket, sizeof bucket);
    return fnv(h, &minute, sizeof minute);
}

static void rehash(dm_batch *b)
{
    free(b->slot);
    b->nslot = b->nslot ? b->nslot * 2 : 64;
    b->slot = calloc((size_t)b->nslot, sizeof *b->slot);
    for (int i = 0; i < b->n; i++) {
        size_t k = (size_t)b->e[i].hash & (size_t)(b->nslot - 1);
        while (b->slot[k])
            k = (k + 1) & (size_t)(b->nslot - 1);
        b->slot[k] = i + 1;
    }
}

/* The entry for a key, added (zeroed, lo/hi unset) when new. */
static dm_entry *entry(dm_batch *b, const char *dest, const char *metric, long long minute, int bucket)
{
    if ((b->n + 1) * 2 > b->nslot)
        rehash(b);
    uint64_t h = key_hash(dest, metric, minute, bucket);
    size_t k = (size_t)h & (size_t)(b->nslot - 1);
    for (; b->slot[k]; k = (k + 1) & (size_t)(b->nslot - 1)) {
        dm_entry *e = &b->e[b->slot[k] - 1];
        if (e->hash == h && e->minute == minute && !e->metric == !metric &&
            (metric ? !strcmp(e->metric, metric) : e->bucket == bucket) && !strcmp(e->dest, dest))
            return e;
    }
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->e = realloc(b->e, (size_t)b->cap * sizeof *b->e);
    }
    dm_entry *e = &b->e[b->n++];
    *e = (dm_entry){strdup(dest), metric ? strdup(metric) : NULL, minute, bucket, 0, 0, 0, h};
    b->slot[k] = b->n;
    return e;
}

void dm_batch_add(dm_batch *b, const char *destination, const char *metric, long long at_ms, long long n)
{
    if (!destination || !metric || n == 0)
        return;
    entry(b, destination, metric, minute_of(at_ms), 0)->n += n;
}

void dm_batch_latency(dm_batch *b, const char *destination, long long at_ms, long long latency_ms)
{
    if (!destination)
        return;
    if (latency_ms < 0)
        latency_ms = 0;
    dm_entry *e = entry(b, destination, NULL, minute_of(at_ms), dm_hist_index(latency_ms));
    if (!e->n || latency_ms < e->lo)
        e->lo = latency_ms;
    if (!e->n || latency_ms > e->hi)
        e->hi = latency_ms;
    e->n++;
}

/* Lock order for PostgreSQL: counters before latency, then by key. */
static int entry_order(const void *x, const void *y)
{
    const dm_entry *a = x, *b = y;
    if (!a->metric != !b->metric)
        return a->metric ? -1 : 1;
    int c = strcmp(a->dest, b->dest);
    if (c)
        return c;
    if (a->minute != b->minute)
        return a->minute < b->minute ? -1 : 1;
    if (a->metric)
        return strcmp(a->metric, b->metric);
    return (a->bucket > b->bucket) - (a->bucket < b->bucket);
}

static void batch_clear(dm_batch *b)
{
    for (int i = 0; i < b->n; i++) {
        free(b->e[i].dest);
        free(b->e[i].metric);
    }
    b->n = 0;
    if (b->slot)
        memset(b->slot, 0, (size_t)b->nslot * sizeof *b->slot);
}

int store_dm_flush(txn *t, dm_batch *b)
{
    if (b->n > 1)
        qsort(b->e, (size_t)b->n, sizeof *b->e, entry_order);
    int rc = ST_OK;
    for (int i = 0; i < b->n && rc == ST_OK; i++) {
        dm_entry *e = &b->e[i];
        if (e->metric)
            rc = store_dm_add(t, e->dest, e->metric, e->minute * 60000, e->n);
        else
            rc = latency_upsert(t, e->dest, e->minute, e->bucket, e->n, e->lo, e->hi);
    }
    batch_clear(b);
    return rc;
}

void dm_batch_free(dm_batch *b)
{
    if (!b)
        return;
    batch_clear(b);
    free(b->e);
    free(b->slot);
    free(b);
}

/* ---- compaction ---------------------------------------------------------------------- */

static void batch_merge_latency(dm_batch *b, const char *dest, long long minute, int bucket, long long n,
                                long long lo, long long hi)
{
    dm_entry *e = entry(b, dest, NULL, minute, bucket);
    if (!e->n || lo < e->lo)
        e->lo = lo;
    if (!e->n || hi > e->hi)
        e->hi = hi;
    e->n += n;
}

/* Floor to the hour, in minutes. */
static long long hour_of(long long minute) { return minute >= 0 ? minute / 60 * 60 : -((-minute + 59) / 60) * 60; }

static int take_count(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    if (v[0] && v[1] && v[2] && v[3])
        dm_batch_add(ctx, v[0], v[2], hour_of(atoll(v[1])) * 60000, atoll(v[3]));
    return 0;
}

static int take_latency(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    if (v[0] && v[1] && v[2] && v[3] && v[4] && v[5])
        batch_merge_latency(ctx, v[0], hour_of(atoll(v[1])), atoi(v[2]), atoll(v[3]), atoll(v[4]), atoll(v[5]));
    return 0;
}

int store_dm_compact(txn *t, long long before_ms, int limit)
{
    char m[24], l[16];
    snprintf(m, sizeof m, "%lld", minute_of(before_ms));
    snprintf(l, sizeof l, "%d", limit);
    const char *p[] = {m, l};
    dm_batch *b = dm_batch_new();
    /* Rows already at an hour's first minute stay (they are the compacted ones). */
    int rc = store_run_(t, "DELETE FROM dm_counts WHERE (destination, minute, metric, shard) IN "
                           "(SELECT destination, minute, metric, shard FROM dm_counts "
                           "WHERE minute < ? AND minute % 60 <> 0 LIMIT ?) RETURNING destination, minute, metric, n",
                        2, p, take_count, b, NULL);
    if (rc == ST_OK)
        rc = store_run_(t, "DELETE FROM dm_latency WHERE (destination, minute, bucket, shard) IN "
                           "(SELECT destination, minute, bucket, shard FROM dm_latency "
                           "WHERE minute < ? AND minute % 60 <> 0 LIMIT ?) RETURNING destination, minute, bucket, n, lo, hi",
                        2, p, take_latency, b, NULL);
    if (rc == ST_OK)
        rc = store_dm_flush(t, b);
    dm_batch_free(b);
    return rc;
}

int store_dm_maintain(txn *t, long long now_ms, int limit)
{
    int rc = store_dm_prune(t, now_ms - 15 * 86400000LL, limit);
    if (rc == ST_OK)
        rc = store_dm_compact(t, now_ms - 49 * 3600000LL, limit);
    return rc;
}
