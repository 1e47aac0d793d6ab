/* Unit tests for the Event Delivery Metrics storage: the latency histogram's math
 * (store/dm_hist.c: bucket mapping, merge, nearest-rank percentiles exact for one sample
 * and for min/max, within 1% for many) and the counters' tables (store/delivery_metrics.c)
 * on SQLite: minute bucketing, HOUR/DAY roll-up, window edges, delete and delete_tree,
 * prune. With MANIFOLD_TEST_PG set to a PostgreSQL DSN the store cases run there too. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/delivery_metrics.h"
#include "store/dm_hist.h"

/* ---- histogram math ------------------------------------------------------------------ */

static void test_index_and_value_within_alpha(void **state)
{
    (void)state;
    assert_int_equal(dm_hist_index(0), 0);
    assert_int_equal(dm_hist_index(-5), 0);
    assert_int_equal(dm_hist_value(0), 0);
    int last = 0;
    for (long long v = 1; v < 20000000; v = v < 5000 ? v + 1 : v + v / 997) {
        int i = dm_hist_index(v);
        assert_true(i >= last); /* monotonic */
        last = i;
        double est = (double)dm_hist_value(i);
        /* 1% relative, plus rounding to whole milliseconds */
        assert_true(fabs(est - (double)v) <= DM_HIST_ALPHA * (double)v + 0.5 + 1e-9);
    }
    assert_true(dm_hist_index(9000000000000000000LL) < 3000);
}

static long long exact_rank(long long *v, int n, int p)
{
    long long rank = ((long long)n * p + 99) / 100;
    return v[rank - 1];
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static void add_sample(dm_bucket *b, int *n, long long v)
{
    b[(*n)++] = (dm_bucket){dm_hist_index(v), 1, v, v};
}

static void test_percentile_single_sample_exact(void **state)
{
    (void)state;
    long long samples[] = {0, 1, 7, 99, 90200, 123457, 86399999};
    for (size_t k = 0; k < sizeof samples / sizeof *samples; k++) {
        dm_bucket b[1];
        int n = 0;
        add_sample(b, &n, samples[k]);
        n = dm_hist_merge(b, n);
        assert_int_equal(dm_hist_percentile(b, n, 50), samples[k]);
        assert_int_equal(dm_hist_percentile(b, n, 95), samples[k]);
        assert_int_equal(dm_hist_percentile(b, n, 99), samples[k]);
    }
    assert_int_equal(dm_hist_percentile(NULL, 0, 95), 0);
}

static void test_percentile_many_within_one_percent(void **state)
{
    (void)state;
    enum { N = 20000 };
    static dm_bucket b[N];
    static long long v[N];
    int n = 0;
    srand(7);
    for (int i = 0; i < N; i++) {
        /* log-uniform 5 ms .. 5 min, plus a cluster */
        double u = (double)rand() / RAND_MAX;
        v[i] = i % 10 == 0 ? 250 + i % 3 : (long long)(5.0 * pow(60000.0, u));
        add_sample(b, &n, v[i]);
    }
    n = dm_hist_merge(b, n);
    assert_true(n < 1000);
    qsort(v, N, sizeof *v, cmp_ll);
    int ps[] = {1, 50, 90, 95, 99, 100};
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
        long long want = exact_rank(v, N, ps[k]), got = dm_hist_percentile(b, n, ps[k]);
        assert_true(fabs((double)(got - want)) <= 0.01 * (double)want + 0.5);
    }
    /* min and max are exact */
    assert_int_equal(dm_hist_percentile(b, n, 1), exact_rank(v, N, 1));
    assert_int_equal(dm_hist_percentile(b, n, 100), v[N - 1]);
}

static void test_merge_keeps_min_max(void **state)
{
    (void)state;
    dm_bucket b[] = {{dm_hist_index(1000), 2, 995, 1001}, {dm_hist_index(10), 1, 10, 10},
                     {dm_hist_index(1000), 3, 992, 1000}};
    int n = dm_hist_merge(b, 3);
    assert_int_equal(n, 2);
    assert_int_equal(b[0].index, dm_hist_index(10));
    assert_int_equal(b[1].n, 5);
    assert_int_equal(b[1].lo, 992);
    assert_int_equal(b[1].hi, 1001);
    /* ranks 2..6 are in the second bucket: rank 2 is its lo, rank 6 its hi */
    assert_int_equal(dm_hist_percentile(b, n, 16), 10);  /* rank ceil(0.96) = 1 */
    assert_int_equal(dm_hist_percentile(b, n, 17), 992); /* rank ceil(1.02) = 2: the bucket's lo */
    assert_int_equal(dm_hist_percentile(b, n, 100), 1001);
    long long mid = dm_hist_percentile(b, n, 50); /* rank 3: inside, clamped to [992, 1001] */
    assert_true(mid >= 992 && mid <= 1001);
}

/* ---- storage -------------------------------------------------------------------------- */

static store *st;
static char dbdir[256];

static int setup_store(void **state)
{
    (void)state;
    char err[256];
    const char *pg = getenv("MANIFOLD_TEST_PG");
    if (pg && *pg) {
        st = store_open(pg, 2, err, sizeof err);
    } else {
        snprintf(dbdir, sizeof dbdir, "%s/manifold-test-dm.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dbdir))
            return -1;
        char path[300];
        snprintf(path, sizeof path, "%s/m.db", dbdir);
        st = store_open(path, 2, err, sizeof err);
    }
    if (!st)
        fprintf(stderr, "store_open: %s\n", err);
    return st ? 0 : -1;
}

static int teardown_store(void **state)
{
    (void)state;
    store_close(st);
    if (*dbdir) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dbdir);
        return system(cmd) == 0 ? 0 : -1;
    }
    return 0;
}

#define D1 "workspaces/w/sources/s/destinations/d1"
#define D2 "workspaces/w/sources/s/destinations/d2"
#define D3 "workspaces/w/sources/s2/destinations/d3"
#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */
#define MIN 60000LL
#define HOUR (60 * MIN)

typedef struct rows {
    int n;
    long long slot[64], v[64];
    char metric[64][40];
} rows;

static int collect(void *ctx, long long slot, const char *metric, long long n)
{
    rows *r = ctx;
    if (r->n < 64) {
        r->slot[r->n] = slot;
        r->v[r->n] = n;
        snprintf(r->metric[r->n], sizeof r->metric[0], "%s", metric);
        r->n++;
    }
    return 0;
}

typedef struct lrows {
    int n;
    long long slot[64];
    dm_bucket b[64];
} lrows;

static int lcollect(void *ctx, long long slot, int bucket, long long n, long long lo, long long hi)
{
    lrows *r = ctx;
    if (r->n < 64) {
        r->slot[r->n] = slot;
        r->b[r->n] = (dm_bucket){bucket, n, lo, hi};
        r->n++;
    }
    return 0;
}

static void write_fixture(void)
{
    txn t;
    assert_int_equal(store_begin(st, &t, true), ST_OK);
    assert_int_equal(store_dm_delete_tree(&t, "workspaces/w"), ST_OK);
    assert_int_equal(store_dm_add(&t, D1, "successes", T0 + 5000, 3), ST_OK);
    assert_int_equal(store_dm_add(&t, D1, "successes", T0 + 59999, 1), ST_OK);  /* same minute */
    assert_int_equal(store_dm_add(&t, D1, "successes", T0 + MIN, 2), ST_OK);    /* next minute */
    assert_int_equal(store_dm_add(&t, D1, "retried_502", T0 + 30000, 2), ST_OK);
    assert_int_equal(store_dm_add(&t, D1, "successes", T0 + HOUR + 1, 10), ST_OK);
    assert_int_equal(store_dm_add(&t, D1, "discarded_400", T0 + 25 * HOUR, 1), ST_OK);
    assert_int_equal(store_dm_add(&t, D2, "successes", T0, 100), ST_OK);
    assert_int_equal(store_dm_add(&t, D3, "successes", T0, 100), ST_OK);
    assert_int_equal(store_dm_latency(&t, D1, T0 + 1000, 90200), ST_OK);
    assert_int_equal(store_dm_latency(&t, D1, T0 + 2000, 90100), ST_OK);
    assert_int_equal(store_dm_latency(&t, D1, T0 + MIN, 120), ST_OK);
    assert_int_equal(store_dm_latency(&t, D1, T0 + HOUR, -3), ST_OK);
    assert_int_equal(store_commit(&t), ST_OK);
}

static void test_store_minutes_and_rollups(void **state)
{
    (void)state;
    write_fixture();
    txn t;
    assert_int_equal(store_begin(st, &t, false), ST_OK);
    rows r = {0};
    assert_int_equal(store_dm_counts(&t, D1, T0, T0 + 2 * HOUR, 1, collect, &r), ST_OK);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.slot[0], T0);
    assert_string_equal(r.metric[0], "retried_502");
    assert_int_equal(r.v[0], 2);
    assert_string_equal(r.metric[1], "successes");
    assert_int_equal(r.v[1], 4);
    assert_int_equal(r.slot[2], T0 + MIN);
    assert_int_equal(r.v[2], 2);
    assert_int_equal(r.slot[3], T0 + HOUR);
    assert_int_equal(r.v[3], 10);

    /* end is exclusive, start inclusive */
    r = (rows){0};
    assert_int_equal(store_dm_counts(&t, D1, T0 + MIN, T0 + HOUR, 1, collect, &r), ST_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.v[0], 2);

    r = (rows){0};
    assert_int_equal(store_dm_counts(&t, D1, T0, T0 + 2 * HOUR, 60, collect, &r), ST_OK);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.slot[1], T0);
    assert_int_equal(r.v[1], 6);
    assert_int_equal(r.slot[2], T0 + HOUR);

    r = (rows){0};
    assert_int_equal(store_dm_counts(&t, D1, T0, T0 + 48 * HOUR, 1440, collect, &r), ST_OK);
    assert_int_equal(r.n, 3); /* day 0: retried_502, successes; day 1: discarded_400 */
    assert_int_equal(r.v[1], 16);
    assert_int_equal(r.slot[2], T0 + 24 * HOUR);

    r = (rows){0};
    assert_int_equal(store_dm_counts(&t, D1, T0, T0 + 48 * HOUR, 0, collect, &r), ST_OK);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.metric[0], "discarded_400");
    assert_string_equal(r.metric[2], "successes");
    assert_int_equal(r.v[2], 16);

    lrows l = {0};
    assert_int_equal(store_dm_latency_hist(&t, D1, T0, T0 + HOUR, 0, lcollect, &l), ST_OK);
    int n = dm_hist_merge(l.b, l.n);
    assert_int_equal(dm_hist_percentile(l.b, n, 50), 90100);
    assert_int_equal(dm_hist_percentile(l.b, n, 99), 90200);
    assert_int_equal(dm_hist_percentile(l.b, n, 1), 120);
    l = (lrows){0};
    assert_int_equal(store_dm_latency_hist(&t, D1, T0, T0 + 2 * HOUR, 60, lcollect, &l), ST_OK);
    assert_int_equal(l.slot[l.n - 1], T0 + HOUR);
    assert_int_equal(l.b[l.n - 1].hi, 0); /* negative sample counted as 0 ms */
    store_end(&t);
}

static void test_store_delete(void **state)
{
    (void)state;
    write_fixture();
    txn t;
    assert_int_equal(store_begin(st, &t, true), ST_OK);
    assert_int_equal(store_dm_delete(&t, D1), ST_OK);
    assert_int_equal(store_commit(&t), ST_OK);
    assert_int_equal(store_begin(st, &t, false), ST_OK);
    rows r = {0};
    lrows l = {0};
    assert_int_equal(store_dm_counts(&t, D1, T0, T0 + 48 * HOUR, 0, collect, &r), ST_OK);
    assert_int_equal(store_dm_latency_hist(&t, D1, T0, T0 + 48 * HOUR, 0, lcollect, &l), ST_OK);
    assert_int_equal(r.n + l.n, 0);
    assert_int_equal(store_dm_counts(&t, D2, T0, T0 + 48 * HOUR, 0, collect, &r), ST_OK);
    assert_int_equal(r.n, 1);
    store_end(&t);

    /* a deleted source takes its destinations' counters, not its neighbours' */
    assert_int_equal(store_begin(st, &t, true), ST_OK);
    assert_int_equal(store_dm_delete_tree(&t, "workspaces/w/sources/s"), ST_OK);
    assert_int_equal(store_commit(&t), ST_OK);
    assert_int_equal(store_begin(st, &t, false), ST_OK);
    r = (rows){0};
    assert_int_equal(store_dm_counts(&t, D2, T0, T0 + 48 * HOUR, 0, collect, &r), ST_OK);
    assert_int_equal(r.n, 0);
    assert_int_equal(store_dm_counts(&t, D3, T0, T0 + 48 * HOUR, 0, collect, &r), ST_OK);
    assert_int_equal(r.n, 1);
    store_end(&t);
}

static void test_store_prune(void **state)
{
    (void)state;
    write_fixture();
    txn t;
    assert_int_equal(store_begin(st, &t, true), ST_OK);
    assert_int_equal(store_dm_prune(&t, T0 + HOUR, 1000), ST_OK);
    assert_int_equal(store_commit(&t), ST_OK);
    assert_int_equal(store_begin(st, &t, false), ST_OK);
    rows r = {0};
    assert_int_equal(store_dm_counts(&t, D1, T0, T0 + 48 * HOUR, 1, collect, &r), ST_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.slot[0], T0 + HOUR);
    store_end(&t);
}

/* The same changes through a batch and through the direct calls give the same rows. */
static void test_store_batch_matches_direct(void **state)
{
    (void)state;
    const char *DA = "workspaces/w/sources/b/destinations/direct", *DB = "workspaces/w/sources/b/destinations/batch";
    txn t;
    assert_int_equal(store_begin(st, &t, true), ST_OK);
    assert_int_equal(store_dm_delete_tree(&t, "workspaces/w/sources/b"), ST_OK);
    assert_int_equal(store_commit(&t), ST_OK);
    dm_batch *b = dm_batch_new();
    for (int round = 0; round < 2; round++) {
        assert_int_equal(store_begin(st, &t, true), ST_OK);
        srand(3 + round);
        for (int i = 0; i < 2000; i++) {
            long long at = T0 + (rand() % 180) * 1000LL, v = rand() % 5000;
            const char *m = i % 3 ? "successes" : i % 2 ? "retried_502" : "discarded_400";
            assert_int_equal(store_dm_add(&t, DA, m, at, 1 + i % 2), ST_OK);
            dm_batch_add(b, DB, m, at, 1 + i % 2);
            if (i % 3) {
                assert_int_equal(store_dm_latency(&t, DA, at, v), ST_OK);
                dm_batch_latency(b, DB, at, v);
            }
        }
        dm_batch_add(b, DB, "successes", T0, 0);  /* nothing */
        dm_batch_latency(b, DB, T0 + HOUR, -5);     /* counted as 0 ms */
        assert_int_equal(store_dm_latency(&t, DA, T0 + HOUR, -5), ST_OK);
        assert_int_equal(store_dm_flush(&t, b), ST_OK);
        assert_int_equal(store_dm_flush(&t, b), ST_OK); /* emptied: writes nothing more */
        assert_int_equal(store_commit(&t), ST_OK);
    }
    dm_batch_free(b);
    dm_batch_free(NULL);
    assert_int_equal(store_begin(st, &t, false), ST_OK);
    static rows ra, rb;
    static lrows la, lb;
    ra = rb = (rows){0};
    assert_int_equal(store_dm_counts(&t, DA, T0, T0 + 2 * HOUR, 1, collect, &ra), ST_OK);
    assert_int_equal(store_dm_counts(&t, DB, T0, T0 + 2 * HOUR, 1, collect, &rb), ST_OK);
    assert_int_equal(ra.n, 9);
    assert_int_equal(memcmp(&ra, &rb, sizeof ra), 0);
    la = lb = (lrows){0};
    assert_int_equal(store_dm_latency_hist(&t, DA, T0, T0 + 2 * HOUR, 0, lcollect, &la), ST_OK);
    assert_int_equal(store_dm_latency_hist(&t, DB, T0, T0 + 2 * HOUR, 0, lcollect, &lb), ST_OK);
    assert_true(la.n > 10);
    assert_int_equal(la.n, lb.n);
    for (int i = 0; i < la.n; i++) {
        assert_int_equal(la.b[i].index, lb.b[i].index);
        assert_int_equal(la.b[i].n, lb.b[i].n);
        assert_int_equal(la.b[i].lo, lb.b[i].lo);
        assert_int_equal(la.b[i].hi, lb.b[i].hi);
    }
    store_end(&t);
}

/* Compaction moves old minutes into their hour's first minute: HOUR, DAY and whole-window
 * answers (counts and percentiles) are unchanged; the minutes after the cut stay. */
static void test_store_compact(void **state)
{
    (void)state;
    const char *DC = "workspaces/w/sources/c/destinations/d";
    txn t;
    assert_int_equal(store_begin(st, &t, true), ST_OK);
    assert_int_equal(store_dm_delete_tree(&t, "workspaces/w/sources/c"), ST_OK);
    srand(5);
    for (int i = 0; i < 3000; i++) {
        long long at = T0 + (rand() % 300) * MIN + rand() % 60000; /* 5 hours */
        assert_int_equal(store_dm_add(&t, DC, i % 4 ? "successes" : "retried_429", at, 1), ST_OK);
        assert_int_equal(store_dm_latency(&t, DC, at, rand() % 100000), ST_OK);
    }
    assert_int_equal(store_commit(&t), ST_OK);

    static rows before[3], after[3];
    static lrows lbefore[3], lafter[3];
    const int grans[3] = {60, 1440, 0};
    for (int pass = 0; pass < 2; pass++) {
        if (pass) {
            /* compact everything before T0 + 3h30, in slices of 500 rows */
            for (int k = 0; k < 40; k++) {
                assert_int_equal(store_begin(st, &t, true), ST_OK);
                assert_int_equal(store_dm_compact(&t, T0 + 210 * MIN, 500), ST_OK);
                assert_int_equal(store_commit(&t), ST_OK);
            }
        }
        assert_int_equal(store_begin(st, &t, false), ST_OK);
        for (int g = 0; g < 3; g++) {
            rows *r = pass ? &after[g] : &before[g];
            lrows *l = pass ? &lafter[g] : &lbefore[g];
            *r = (rows){0};
            *l = (lrows){0};
            assert_int_equal(store_dm_counts(&t, DC, T0, T0 + 24 * HOUR, grans[g], collect, r), ST_OK);
            assert_int_equal(store_dm_latency_hist(&t, DC, T0 + HOUR, T0 + 2 * HOUR, grans[g], lcollect, l), ST_OK);
        }
        store_end(&t);
    }
    for (int g = 0; g < 3; g++) {
        assert_true(before[g].n > 0);
        assert_int_equal(memcmp(&before[g], &after[g], sizeof before[g]), 0);
        assert_int_equal(lbefore[g].n, lafter[g].n);
        for (int i = 0; i < lbefore[g].n; i++) {
            assert_int_equal(lbefore[g].b[i].n, lafter[g].b[i].n);
            assert_int_equal(lbefore[g].b[i].lo, lafter[g].b[i].lo);
            assert_int_equal(lbefore[g].b[i].hi, lafter[g].b[i].hi);
        }
    }
    /* per minute: the compacted hour is all in its first minute; after the cut, untouched */
    rows r = {0};
    assert_int_equal(store_begin(st, &t, false), ST_OK);
    assert_int_equal(store_dm_counts(&t, DC, T0 + HOUR, T0 + 2 * HOUR, 1, collect, &r), ST_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.slot[0], T0 + HOUR);
    assert_int_equal(r.slot[1], T0 + HOUR);
    r = (rows){0};
    assert_int_equal(store_dm_counts(&t, DC, T0 + 210 * MIN, T0 + 211 * MIN, 1, collect, &r), ST_OK);
    assert_true(r.n >= 1); /* not moved: minute 210 is the cut */
    assert_int_equal(r.slot[0], T0 + 210 * MIN);
    store_end(&t);
    /* maintain: nothing here is older than 15 days / 49 hours from T0 + 5h */
    assert_int_equal(store_begin(st, &t, true), ST_OK);
    assert_int_equal(store_dm_maintain(&t, T0 + 5 * HOUR, 1000), ST_OK);
    assert_int_equal(store_commit(&t), ST_OK);
}

int main(void)
{
    const struct CMUnitTest math[] = {
        cmocka_unit_test(test_index_and_value_within_alpha),
        cmocka_unit_test(test_percentile_single_sample_exact),
        cmocka_unit_test(test_percentile_many_within_one_percent),
        cmocka_unit_test(test_merge_keeps_min_max),
    };
    const struct CMUnitTest storage[] = {
        cmocka_unit_test(test_store_minutes_and_rollups),
        cmocka_unit_test(test_store_delete),
        cmocka_unit_test(test_store_prune),
        cmocka_unit_test(test_store_batch_matches_direct),
        cmocka_unit_test(test_store_compact),
    };
    int failed = cmocka_run_group_tests_name("dm_hist", math, NULL, NULL);
    failed += cmocka_run_group_tests_name("delivery_metrics store", storage, setup_store, teardown_store);
    return failed;
}
