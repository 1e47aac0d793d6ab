/* SQLite driver: WAL, prepared statements cached per connection by the address of their
 * SQL text.
 *
 * Durability: an acknowledged write survives power loss, as with synchronous=FULL, but the
 * fsync is moved out of COMMIT. Connections run synchronous=NORMAL, where COMMIT appends
 * the transaction's frames to the WAL without syncing it; the store's flusher then calls
 * sq_sync, an fdatasync of the WAL file through a descriptor of our own, before anyone is
 * told the commit happened. That is the same fsync FULL would do inside COMMIT, made while
 * the writer connection already runs the next transaction, so commits are grouped by how
 * many arrive during one fsync rather than by how many threads wait. (NORMAL still syncs
 * the WAL before each checkpoint and the database after it, so checkpoints never lose
 * frames.) */
#include "store/db.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STMT_CACHE 64

struct db_conn {
    sqlite3 *db;
    int wal_fd;          /* our own descriptor of the WAL file, opened by the first sq_sync */
    char *wal_path;
    char sync_err[160];
    int wal_frames;      /* frames in the WAL after the last commit (the WAL hook) */
    sqlite3 *ckpt;       /* the flusher's own connection for checkpoints, opened lazily */
    bool ckpt_finish;    /* the bulk is copied: finish the checkpoint after the next commit */
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
    "  body TEXT NOT NULL, create_ms INTEGER NOT NULL);"
    /* The intake's event log (docs/intake.md): every stored event, newest by id. */
    "CREATE TABLE IF NOT EXISTS intake_events ("
    "  id INTEGER PRIMARY KEY, source TEXT NOT NULL, received_ms INTEGER NOT NULL, message_id TEXT NOT NULL,"
    "  type TEXT NOT NULL, status TEXT NOT NULL, violations TEXT NOT NULL, event TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS intake_events_by_source ON intake_events (source, id);"
    /* messageId claims (docs/intake.md): one B-tree, no expiry index (a sweep prunes). */
    "CREATE TABLE IF NOT EXISTS intake_claims (message_id TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL) WITHOUT ROWID;"
    /* Before 0.3 the claims were intake_dedup (a rowid table plus an expiry index): moved once. */
    "CREATE TABLE IF NOT EXISTS intake_dedup (message_id TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO intake_claims SELECT message_id, expires_ms FROM intake_dedup;"
    "DROP TABLE intake_dedup;"
    "CREATE TABLE IF NOT EXISTS intake_counters ("
    "  source TEXT NOT NULL, shard INTEGER NOT NULL, received INTEGER NOT NULL, accepted INTEGER NOT NULL,"
    "  blocked INTEGER NOT NULL, duplicate INTEGER NOT NULL, rejected INTEGER NOT NULL, PRIMARY KEY (source, shard));"
    "CREATE TABLE IF NOT EXISTS intake_reasons ("
    "  source TEXT NOT NULL, reason TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (source, reason));"
    /* Event Delivery Metrics (store/delivery_metrics.c): leaf counters and latency
     * histogram buckets per destination-minute, sharded against row-lock waits. */
    "CREATE TABLE IF NOT EXISTS dm_counts ("
    "  destination TEXT NOT NULL, minute INTEGER NOT NULL, metric TEXT NOT NULL, shard INTEGER NOT NULL,"
    "  n INTEGER NOT NULL, PRIMARY KEY (destination, minute, metric, shard));"
    "CREATE TABLE IF NOT EXISTS dm_latency ("
    "  destination TEXT NOT NULL, minute INTEGER NOT NULL, bucket INTEGER NOT NULL, shard INTEGER NOT NULL,"
    "  n INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL, PRIMARY KEY (destination, minute, bucket, shard));"
    "CREATE INDEX IF NOT EXISTS dm_counts_by_minute ON dm_counts (minute);"
    "CREATE INDEX IF NOT EXISTS dm_latency_by_minute ON dm_latency (minute);";

static int on_wal(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db, (void)name;
    ((db_conn *)arg)->wal_frames = frames;
    return SQLITE_OK;
}

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
    c->wal_fd = -1;
    /* Our WAL hook replaces SQLite's auto-checkpoint (which would run inside COMMIT, on the
     * writer connection): the flusher checkpoints from its own connection instead. */
    sqlite3_wal_hook(c->db, on_wal, c);
    char *msg = NULL;
    if (sqlite3_exec(c->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
                     "PRAGMA temp_store=MEMORY;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s", msg ? msg : "pragma failed");
        sqlite3_free(msg);
        sqlite3_close(c->db);
        free(c);
        return DB_ERROR;
    }
    const char *file = sqlite3_db_filename(c->db, "main");
    if (file && *file) { /* not for ":memory:" databases, which have no WAL to sync */
        size_t n = strlen(file);
        c->wal_path = malloc(n + 5);
        memcpy(c->wal_path, file, n);
        memcpy(c->wal_path + n, "-wal", 5);
    }
    *out = c;
    return DB_OK;
}

static void sq_close(db_conn *c)
{
    for (int i = 0; i < STMT_CACHE; i++)
        sqlite3_finalize(c->cache[i].st);
    sqlite3_close(c->ckpt);
    sqlite3_close(c->db);
    if (c->wal_fd >= 0)
        close(c->wal_fd);
    free(c->wal_path);
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
static const char *sq_errmsg(db_conn *c) { return c->sync_err[0] ? c->sync_err : sqlite3_errmsg(c->db); }

/* Opens the WAL file once it exists (SQLite creates it with the first write) and syncs
 * its directory once, so that the file's own entry survives a power loss. A WAL that was
 * replaced (a checkpoint that removed it, which syncs the database first) is reopened. */
static int wal_open(db_conn *c)
{
    struct stat now, ours;
    if (c->wal_fd >= 0) {
        if (stat(c->wal_path, &now) || fstat(c->wal_fd, &ours) || now.st_ino != ours.st_ino ||
            now.st_dev != ours.st_dev) {
            close(c->wal_fd);
            c->wal_fd = -1;
        } else {
            return 0;
        }
    }
    c->wal_fd = open(c->wal_path, O_RDONLY | O_CLOEXEC);
    if (c->wal_fd < 0)
        return errno == ENOENT ? 1 : -1; /* no WAL: nothing committed that is not in the database */
    char *dir = strdup(c->wal_path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    int rc = dfd >= 0 && fsync(dfd) == 0 ? 0 : -1;
    if (dfd >= 0)
        close(dfd);
    return rc;
}

static int sq_sync(db_conn *c)
{
    if (!c->wal_path)
        return DB_OK;
    int rc = wal_open(c);
    if (rc == 0 && fdatasync(c->wal_fd) != 0)
        rc = -1;
    if (rc < 0) {
        snprintf(c->sync_err, sizeof c->sync_err, "sync of %s: %s", c->wal_path, strerror(errno));
        return DB_ERROR;
    }
    return DB_OK;
}

/* Past CHECKPOINT_FRAMES WAL frames (SQLite's own auto-checkpoint threshold) the WAL is
 * copied into the database from a connection of the flusher's own, in two steps, so that
 * the writer is held only briefly:
 *   - outside the writer slot (in_slot false, after a group is settled): a PASSIVE
 *     checkpoint copies the bulk while the next group fills;
 *   - inside it (in_slot true, right after the next group's COMMIT): another copies the
 *     last group's few frames. With nothing left to copy when the next transaction
 *     begins, SQLite starts the WAL over from its beginning, so the file stays small
 *     (a transaction that began before the copy finished keeps appending to its end). */
#define CHECKPOINT_FRAMES 1000

static int sq_checkpoint(db_conn *c, bool in_slot)
{
    if (!c->wal_path || (in_slot ? !c->ckpt_finish : c->wal_frames < CHECKPOINT_FRAMES))
        return DB_OK;
    if (!c->ckpt) {
        const char *file = sqlite3_db_filename(c->db, "main");
        if (sqlite3_open_v2(file, &c->ckpt, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
            sqlite3_close(c->ckpt);
            c->ckpt = NULL;
            return DB_ERROR;
        }
        sqlite3_busy_timeout(c->ckpt, 1000);
        /* A fresh connection knows the database is in WAL mode only once it has read it. */
        if (sqlite3_exec(c->ckpt, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK)
            return DB_ERROR;
    }
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(c->ckpt, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (!in_slot) {
        c->ckpt_finish = true;
    } else if (rc == SQLITE_OK && done == log) {
        c->ckpt_finish = false; /* all copied: the next commit starts the WAL over */
        c->wal_frames = 0;
    }
    return rc == SQLITE_OK || rc == SQLITE_BUSY ? DB_OK : DB_ERROR;
}

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
    .sync = sq_sync,
    .checkpoint = sq_checkpoint,
};
