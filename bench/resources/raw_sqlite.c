/* Peer (a) of bench/resources/run.sh: what SQLite itself does on this disk with durable
 * commits. One thread, one connection, WAL mode, synchronous=FULL (as manifold opens its
 * database), a table shaped like manifold's `resources` (same columns, same secondary
 * index), and ROWS single-row INSERTs per BEGIN IMMEDIATE ... COMMIT, repeated for
 * SECONDS. With ROWS = 1 each insert pays a whole commit (one WAL fsync), so commits/s
 * is the disk's fsync rate as SQLite sees it; with ROWS > 1 it shows what batching many
 * inserts into one commit (manifold's group commit) can reach at most.
 *
 *   raw_sqlite DB_PATH ROWS_PER_COMMIT SECONDS
 *
 * Prints one machine-readable line:
 *   RESULT commits=N rows=N seconds=S commit_p50_us=N commit_p99_us=N
 * where commit_*_us is the latency of one whole transaction (inserts + COMMIT). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(int rc, sqlite3 *db, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "raw_sqlite: %s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: raw_sqlite DB_PATH ROWS_PER_COMMIT SECONDS\n");
        return 2;
    }
    const char *path = argv[1];
    int rows = atoi(argv[2]);
    double secs = atof(argv[3]);
    if (rows < 1 || secs <= 0) {
        fprintf(stderr, "raw_sqlite: ROWS_PER_COMMIT >= 1 and SECONDS > 0\n");
        return 2;
    }
    sqlite3 *db;
    check(sqlite3_open(path, &db), db, "open");
    check(sqlite3_exec(db,
                       "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                       "CREATE TABLE IF NOT EXISTS resources ("
                       "  name TEXT PRIMARY KEY, workspace TEXT NOT NULL, parent TEXT NOT NULL, kind TEXT NOT NULL,"
                       "  id TEXT, body TEXT NOT NULL, version INTEGER NOT NULL,"
                       "  create_time TEXT NOT NULL, update_time TEXT NOT NULL);"
                       "CREATE UNIQUE INDEX IF NOT EXISTS resources_by_parent ON resources (parent, kind, name);",
                       NULL, NULL, NULL),
          db, "schema");
    sqlite3_stmt *ins, *begin, *commit;
    check(sqlite3_prepare_v2(db,
                             "INSERT INTO resources (name, workspace, parent, kind, id, body, version, create_time, "
                             "update_time) VALUES (?, 'myworkspace', 'workspaces/myworkspace', 'source', ?, ?, 1, "
                             "'2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
                             -1, &ins, NULL),
          db, "prepare insert");
    check(sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL), db, "prepare begin");
    check(sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL), db, "prepare commit");

    /* A body the size of a stored source (catalog name, display name, write key,
     * library config, labels): about 250 bytes of JSON. */
    const char *body =
        "{\"catalog_name\":\"catalog/sources/javascript\",\"display_name\":\"src-000000\","
        "\"write_keys\":[\"Q2hLx7mJrT4VbN9pW3sZ6dFgY8kA1cEu\"],\"library_config\":{\"metrics_enabled\":false,"
        "\"retry_queue\":false,\"cross_domain_id_enabled\":false,\"api_host\":\"\"},\"labels\":{}}";

    size_t cap = 1 << 16, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    long long row = 0;
    double t0 = now_s(), end = t0 + secs, t;
    while ((t = now_s()) < end) {
        check(sqlite3_step(begin), db, "begin");
        sqlite3_reset(begin);
        for (int i = 0; i < rows; i++, row++) {
            char name[96], id[32];
            snprintf(id, sizeof id, "raw-%09lld", row);
            snprintf(name, sizeof name, "workspaces/myworkspace/sources/%s", id);
            sqlite3_bind_text(ins, 1, name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(ins, 2, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(ins, 3, body, -1, SQLITE_STATIC);
            check(sqlite3_step(ins), db, "insert");
            sqlite3_reset(ins);
        }
        check(sqlite3_step(commit), db, "commit");
        sqlite3_reset(commit);
        if (n == cap)
            lat = realloc(lat, (cap *= 2) * sizeof *lat);
        lat[n++] = now_s() - t;
    }
    double elapsed = now_s() - t0;
    qsort(lat, n, sizeof *lat, cmp_double);
    printf("RESULT commits=%zu rows=%lld seconds=%.3f commit_p50_us=%.0f commit_p99_us=%.0f\n", n, row, elapsed,
           n ? lat[n / 2] * 1e6 : 0, n ? lat[(size_t)((double)n * 0.99)] * 1e6 : 0);
    free(lat);
    sqlite3_finalize(ins);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    sqlite3_close(db);
    return 0;
}
