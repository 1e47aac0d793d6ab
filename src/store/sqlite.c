/* SQLite driver: WAL, synchronous=FULL (an acknowledged write survives power loss),
 * prepared statements cached per connection by the address of their SQL text. */
#include "store/db.h"
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STMT_CACHE 64

struct db_conn {
    sqlite3 *db;
    struct { const char *sql; sqlite3_stmt *st; } cache[STMT_CACHE];
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS workspaces ("
    "  id TEXT PRIMARY KEY, slug TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,"
    "  create_time TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS users ("
    "  id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT,"
    "  create_time TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS access_tokens ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT NOT NULL UNIQUE,"
    "  description TEXT NOT NULL, scopes TEXT NOT NULL, workspace_names TEXT NOT NULL,"
    "  user_id TEXT, create_time TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS resources ("
    "  name TEXT PRIMARY KEY, workspace TEXT NOT NULL, parent TEXT NOT NULL, kind TEXT NOT NULL,"
    "  id TEXT, ref TEXT, body TEXT NOT NULL, version INTEGER NOT NULL,"
    "  create_time TEXT NOT NULL, update_time TEXT NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS resources_by_parent ON resources (parent, kind, name);"
    "CREATE INDEX IF NOT EXISTS resources_by_kind ON resources (workspace, kind, name);"
    "CREATE INDEX IF NOT EXISTS resources_by_ref ON resources (kind, ref);"
    "CREATE TABLE IF NOT EXISTS audit_events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, workspace TEXT NOT NULL, time TEXT NOT NULL, time_ms INTEGER NOT NULL,"
    "  actor TEXT NOT NULL, access_token TEXT, action TEXT NOT NULL, resource TEXT NOT NULL,"
    "  before TEXT, after TEXT, request_id TEXT);"
    "CREATE INDEX IF NOT EXISTS audit_by_workspace ON audit_events (workspace, id);"
    "CREATE TABLE IF NOT EXISTS idempotency ("
    "  key TEXT PRIMARY KEY, request_hash TEXT NOT NULL, status INTEGER NOT NULL,"
    "  body TEXT NOT NULL, create_ms INTEGER NOT NULL);";

static int sq_open(const char *dsn, db_conn **out, char *err, size_t errlen)
{
    db_conn *c = calloc(1, sizeof *c);
    int rc = sqlite3_open_v2(dsn, &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: cannot open %s: %s", dsn, c->db ? sqlite3_errmsg(c->db) : "out of memory");
        sqlite3_close(c->db);
        free(c);
        return DB_ERROR;
    }
    /* Readers never wait for the writer in WAL mode; the busy timeout only covers
     * checkpoints and other processes sharing the file. */
    sqlite3_busy_timeout(c->db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(c->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s", msg ? msg : "pragma failed");
        sqlite3_free(msg);
        sqlite3_close(c->db);
        free(c);
        return DB_ERROR;
    }
    *out = c;
    return DB_OK;
}

static void sq_close(db_conn *c)
{
    for (int i = 0; i < STMT_CACHE; i++)
        sqlite3_finalize(c->cache[i].st);
    sqlite3_close(c->db);
    free(c);
}

static sqlite3_stmt *prepare(db_conn *c, const char *sql)
{
    unsigned h = (unsigned)(((uintptr_t)sql >> 4) % STMT_CACHE);
    for (int probe = 0; probe < STMT_CACHE; probe++) {
        unsigned i = (h + (unsigned)probe) % STMT_CACHE;
        if (c->cache[i].sql == sql)
            return c->cache[i].st;
        if (!c->cache[i].sql) {
            sqlite3_stmt *st;
            if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
                return NULL;
            c->cache[i].sql = sql;
            c->cache[i].st = st;
            return st;
        }
    }
    return NULL; /* more distinct statements than slots: raise STMT_CACHE */
}

static int sq_exec(db_conn *c, const char *sql, int nparams, const char *const *params,
                   db_row_fn rows, void *ctx, long *changes)
{
    sqlite3_stmt *st = prepare(c, sql);
    if (!st)
        return DB_ERROR;
    for (int i = 0; i < nparams; i++) {
        if (params[i])
            sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, i + 1);
    }
    int rc, result = DB_OK;
    int ncol = sqlite3_column_count(st);
    char *vals[32];
    size_t lens[32];
    if (ncol > 32)
        ncol = 32;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!rows)
            continue;
        for (int i = 0; i < ncol; i++) {
            vals[i] = (char *)sqlite3_column_text(st, i);
            lens[i] = (size_t)sqlite3_column_bytes(st, i);
        }
        if (rows(ctx, ncol, vals, lens))
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        result = (sqlite3_errcode(c->db) & 0xff) == SQLITE_CONSTRAINT ? DB_CONSTRAINT : DB_ERROR;
    if (changes)
        *changes = result == DB_OK ? sqlite3_changes(c->db) : 0;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return result;
}

static int sq_script(db_conn *c, const char *sql)
{
    return sqlite3_exec(c->db, sql, NULL, NULL, NULL) == SQLITE_OK ? DB_OK : DB_ERROR;
}

static int sq_begin(db_conn *c, bool write)
{
    /* IMMEDIATE takes the write lock up front, so a write transaction never fails late
     * with SQLITE_BUSY after it has done work. */
    return sq_script(c, write ? "BEGIN IMMEDIATE" : "BEGIN");
}
static int sq_commit(db_conn *c) { return sq_script(c, "COMMIT"); }
static int sq_rollback(db_conn *c) { return sq_script(c, "ROLLBACK"); }
static const char *sq_errmsg(db_conn *c) { return sqlite3_errmsg(c->db); }

const db_driver db_sqlite = {
    .name = "sqlite",
    .single_writer = true,
    .schema_sql = schema,
    .open = sq_open,
    .close = sq_close,
    .exec = sq_exec,
    .script = sq_script,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .errmsg = sq_errmsg,
};
