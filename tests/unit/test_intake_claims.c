/* Unit tests for the intake's messageId claims (src/store/intake_log.c, docs/intake.md) on
 * SQLite: a claim is new, then a duplicate, then taken over once expired; the sweep
 * (store_dedup_prune) walks the table in windows, removes only expired claims and comes
 * back to the start; and a database from before 0.3 (claims in intake_dedup, with an
 * expiry index) has its claims moved into intake_claims when it is opened. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store.h"
#include "store/store_int.h"

#include <cmocka.h>

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */
#define DAY (24LL * 3600 * 1000)

static char dbdir[256];

static store *open_in(const char *name)
{
    char path[320], err[256];
    snprintf(path, sizeof path, "%s/%s", dbdir, name);
    store *st = store_open(path, 2, err, sizeof err);
    if (!st)
        fprintf(stderr, "store_open: %s\n", err);
    return st;
}

static int count_row(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    *(long long *)ctx = v[0] ? atoll(v[0]) : -1;
    return 1;
}

static long long count(store *st, const char *sql)
{
    txn t;
    long long n = -1;
    assert_int_equal(store_begin(st, &t, false), ST_OK);
    assert_int_equal(store_run_(&t, sql, 0, NULL, count_row, &n, NULL), ST_OK);
    store_end(&t);
    return n;
}

static int claim(store *st, const char *id, long long now)
{
    txn t;
    assert_int_equal(store_begin(st, &t, true), ST_OK);
    int rc = store_dedup_claim(&t, id, now, DAY);
    assert_int_equal(store_commit(&t), ST_OK);
    return rc;
}

/* One step of the sweep in a transaction of its own. */
static void sweep(store *st, long long now, int limit, char *cursor, size_t cap)
{
    txn t;
    assert_int_equal(store_begin(st, &t, true), ST_OK);
    assert_int_equal(store_dedup_prune(&t, now, limit, cursor, cap), ST_OK);
    assert_int_equal(store_commit(&t), ST_OK);
}

static void test_claim_duplicate_and_takeover(void **state)
{
    (void)state;
    store *st = open_in("a.db");
    assert_non_null(st);
    assert_int_equal(claim(st, "m-1", T0), ST_OK);
    assert_int_equal(claim(st, "m-1", T0 + 1000), ST_CONFLICT);
    assert_int_equal(claim(st, "m-1", T0 + DAY - 1), ST_CONFLICT);
    assert_int_equal(claim(st, "m-2", T0 + 1000), ST_OK);
    assert_int_equal(claim(st, "m-1", T0 + DAY), ST_OK); /* expired: taken over for a new day */
    assert_int_equal(claim(st, "m-1", T0 + DAY + 5), ST_CONFLICT);
    assert_int_equal(count(st, "SELECT count(*) FROM intake_claims"), 2);
    store_close(st);
}

static void test_sweep_windows_remove_only_expired(void **state)
{
    (void)state;
    store *st = open_in("b.db");
    assert_non_null(st);
    txn t;
    assert_int_equal(store_begin(st, &t, true), ST_OK);
    for (int i = 0; i < 2500; i++) { /* even ids claimed a day earlier: expired at T0 + DAY */
        char id[32];
        snprintf(id, sizeof id, "id-%05d", i);
        assert_int_equal(store_dedup_claim(&t, id, i % 2 ? T0 + DAY / 2 : T0, DAY), ST_OK);
    }
    assert_int_equal(store_commit(&t), ST_OK);
    char cursor[512] = "";
    long long now = T0 + DAY;
    /* first window: the 1,000 lowest ids, half of them expired */
    sweep(st, now, 1000, cursor, sizeof cursor);
    assert_string_equal(cursor, "id-00999");
    assert_int_equal(count(st, "SELECT count(*) FROM intake_claims"), 2000);
    assert_int_equal(count(st, "SELECT count(*) FROM intake_claims WHERE message_id > 'id-00999'"), 1500);
    /* two more windows reach the end and bring the cursor back to the start */
    for (int step = 0; step < 2; step++)
        sweep(st, now, 1000, cursor, sizeof cursor);
    assert_string_equal(cursor, "");
    assert_int_equal(count(st, "SELECT count(*) FROM intake_claims"), 1250);
    assert_int_equal(count(st, "SELECT count(*) FROM intake_claims WHERE expires_ms <= 1767312000000"), 0);
    /* the live claims still count */
    assert_int_equal(claim(st, "id-00001", now), ST_CONFLICT);
    assert_int_equal(claim(st, "id-00000", now), ST_OK);
    store_close(st);
}

static void test_claims_from_before_0_3_are_moved(void **state)
{
    (void)state;
    char path[320];
    snprintf(path, sizeof path, "%s/old.db", dbdir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE intake_dedup (message_id TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL);"
                                  "CREATE INDEX intake_dedup_by_expiry ON intake_dedup (expires_ms);"
                                  "INSERT INTO intake_dedup VALUES ('old-1', 1767312000000), ('old-2', 1767312000000);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    store *st = open_in("old.db");
    assert_non_null(st);
    assert_int_equal(count(st, "SELECT count(*) FROM intake_claims"), 2);
    assert_int_equal(count(st, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'intake_dedup%'"), 0);
    assert_int_equal(claim(st, "old-1", T0), ST_CONFLICT);
    store_close(st);
    st = open_in("old.db"); /* opening again changes nothing */
    assert_non_null(st);
    assert_int_equal(count(st, "SELECT count(*) FROM intake_claims"), 2);
    store_close(st);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dbdir, sizeof dbdir, "%s/manifold-test-claims.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(dbdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dbdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_duplicate_and_takeover),
        cmocka_unit_test(test_sweep_windows_remove_only_expired),
        cmocka_unit_test(test_claims_from_before_0_3_are_moved),
    };
    return cmocka_run_group_tests_name("intake claims", tests, setup, teardown);
}
