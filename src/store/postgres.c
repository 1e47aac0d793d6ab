/* PostgreSQL driver over libpq. The shared SQL uses '?' placeholders; they are rewritten
 * to $1..$n once per statement and cached by the statement's address. */
#include "store/db.h"
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Distinct statements a connection remembers rewritten; the product has ~250. */
#define SQL_CACHE 512

struct db_conn {
    PGconn *pg;
    char err[256];
    struct { const char *sql; char *pgsql; } cache[SQL_CACHE];
};

static const char schema[] =
    /* Several processes may start at once: one migrates, the others wait. */
    "SELECT pg_advisory_xact_lock(7411);"
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS workspaces ("
    "  id TEXT PRIMARY KEY, slug TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,"
    "  create_time TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS users ("
    "  id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT,"
    "  create_time TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS access_tokens ("
    "  id BIGSERIAL PRIMARY KEY, hash TEXT NOT NULL UNIQUE,"
    "  description TEXT NOT NULL, scopes TEXT NOT NULL, workspace_names TEXT NOT NULL,"
    "  user_id TEXT, create_time TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS resources ("
    "  name TEXT COLLATE \"C\" PRIMARY KEY, workspace TEXT NOT NULL, parent TEXT COLLATE \"C\" NOT NULL,"
    "  kind TEXT NOT NULL, id TEXT, ref TEXT, body TEXT NOT NULL, version BIGINT NOT NULL,"
    "  create_time TEXT NOT NULL, update_time TEXT NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS resources_by_parent ON resources (parent, kind, name);"
    "CREATE INDEX IF NOT EXISTS resources_by_kind ON resources (workspace, kind, name);"
    "CREATE INDEX IF NOT EXISTS resources_by_ref ON resources (kind, ref);"
    "CREATE TABLE IF NOT EXISTS audit_events ("
    "  id BIGSERIAL PRIMARY KEY, workspace TEXT NOT NULL, time TEXT NOT NULL, time_ms BIGINT NOT NULL,"
    "  actor TEXT NOT NULL, access_token TEXT, action TEXT NOT NULL, resource TEXT COLLATE \"C\" NOT NULL,"
    "  before TEXT, after TEXT, request_id TEXT);"
    "CREATE INDEX IF NOT EXISTS audit_by_workspace ON audit_events (workspace, id);"
    "CREATE TABLE IF NOT EXISTS idempotency ("
    "  key TEXT PRIMARY KEY, request_hash TEXT NOT NULL, status INTEGER NOT NULL,"
    "  body TEXT NOT NULL, create_ms BIGINT NOT NULL);"
    /* The intake's event log (docs/intake.md): every stored event, newest by id. */
    "CREATE TABLE IF NOT EXISTS intake_events ("
    "  id BIGSERIAL PRIMARY KEY, source TEXT COLLATE \"C\" NOT NULL, received_ms BIGINT NOT NULL, message_id TEXT NOT NULL,"
    "  type TEXT NOT NULL, status TEXT NOT NULL, violations TEXT NOT NULL, event TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS intake_events_by_source ON intake_events (source, id);"
    /* messageId claims (docs/intake.md): the key only, no expiry index (a sweep prunes). */
    "CREATE TABLE IF NOT EXISTS intake_claims (message_id TEXT PRIMARY KEY, expires_ms BIGINT NOT NULL);"
    /* Before 0.3 the claims were intake_dedup (with an expiry index): moved once. Every
     * process must run 0.3 or later from then on (an older one would write the old table). */
    "CREATE TABLE IF NOT EXISTS intake_dedup (message_id TEXT PRIMARY KEY, expires_ms BIGINT NOT NULL);"
    "INSERT INTO intake_claims SELECT message_id, expires_ms FROM intake_dedup ON CONFLICT DO NOTHING;"
    "DROP TABLE intake_dedup;"
    "CREATE TABLE IF NOT EXISTS intake_counters ("
    "  source TEXT COLLATE \"C\" NOT NULL, shard INTEGER NOT NULL, received BIGINT NOT NULL, accepted BIGINT NOT NULL,"
    "  blocked BIGINT NOT NULL, duplicate BIGINT NOT NULL, rejected BIGINT NOT NULL, PRIMARY KEY (source, shard));"
    "CREATE TABLE IF NOT EXISTS intake_reasons ("
    "  source TEXT COLLATE \"C\" NOT NULL, reason TEXT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (source, reason));"
    /* Event Delivery Metrics (store/delivery_metrics.c): leaf counters and latency
     * histogram buckets per destination-minute, sharded against row-lock waits. */
    "CREATE TABLE IF NOT EXISTS dm_counts ("
    "  destination TEXT COLLATE \"C\" NOT NULL, minute BIGINT NOT NULL, metric TEXT COLLATE \"C\" NOT NULL, shard INTEGER NOT NULL,"
    "  n BIGINT NOT NULL, PRIMARY KEY (destination, minute, metric, shard));"
    "CREATE TABLE IF NOT EXISTS dm_latency ("
    "  destination TEXT COLLATE \"C\" NOT NULL, minute BIGINT NOT NULL, bucket INTEGER NOT NULL, shard INTEGER NOT NULL,"
    "  n BIGINT NOT NULL, lo BIGINT NOT NULL, hi BIGINT NOT NULL, PRIMARY KEY (destination, minute, bucket, shard));"
    "CREATE INDEX IF NOT EXISTS dm_counts_by_minute ON dm_counts (minute);"
    "CREATE INDEX IF NOT EXISTS dm_latency_by_minute ON dm_latency (minute);"
    /* Several processes (docs/scaling.md): the change counter the watcher polls while its
     * LISTEN connection is down, and the global rate limit's token buckets (unlogged: a
     * crash refills them, which a bucket does within a second anyway; no WAL). */
    "CREATE SEQUENCE IF NOT EXISTS manifold_changes;"
    "CREATE UNLOGGED TABLE IF NOT EXISTS rate_buckets ("
    "  key BIGINT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL, at_ms BIGINT NOT NULL, granted INTEGER NOT NULL);";

static int pg_open(const char *dsn, db_conn **out, char *err, size_t errlen)
{
    db_conn *c = calloc(1, sizeof *c);
    c->pg = PQconnectdb(dsn);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        /* libpq's message never includes the password. */
        snprintf(err, errlen, "postgres: %s", PQerrorMessage(c->pg));
        PQfinish(c->pg);
        free(c);
        return DB_ERROR;
    }
    PQclear(PQexec(c->pg, "SET client_min_messages = warning"));
    *out = c;
    return DB_OK;
}

static void pg_close(db_conn *c)
{
    for (int i = 0; i < SQL_CACHE; i++)
        free(c->cache[i].pgsql);
    PQfinish(c->pg);
    free(c);
}

/* sql with ? placeholders numbered $1, $2 … for libpq. Cached per connection by the
 * statement's address (statements have static storage, db.h); when the cache is full the
 * text is made afresh and *owned is set for the caller to free. */
static const char *rewrite(db_conn *c, const char *sql, char **owned)
{
    *owned = NULL;
    unsigned h = (unsigned)(((uintptr_t)sql >> 4) % SQL_CACHE);
    unsigned slot = SQL_CACHE;
    for (int probe = 0; probe < SQL_CACHE; probe++) {
        unsigned i = (h + (unsigned)probe) % SQL_CACHE;
        if (c->cache[i].sql == sql)
            return c->cache[i].pgsql;
        if (!c->cache[i].sql) {
            slot = i;
            break;
        }
    }
    size_t n = strlen(sql);
    char *out = malloc(n * 4 + 1), *o = out;
    int k = 0;
    bool quoted = false;
    for (const char *p = sql; *p; p++) {
        if (*p == '\'')
            quoted = !quoted;
        if (*p == '?' && !quoted)
            o += sprintf(o, "$%d", ++k);
        else
            *o++ = *p;
    }
    *o = '\0';
    if (slot == SQL_CACHE) /* cache full: rewritten every call, freed by the caller */
        return *owned = out;
    c->cache[slot].sql = sql;
    c->cache[slot].pgsql = out;
    return out;
}

static int result_rc(db_conn *c, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return DB_OK;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(c->err, sizeof c->err, "%s", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) ?: "error");
    return state && !strcmp(state, "23505") ? DB_CONSTRAINT : DB_ERROR;
}

static int pg_exec(db_conn *c, const char *sql, int nparams, const char *const *params,
                   db_row_fn rows, void *ctx, long *changes)
{
    char *owned;
    PGresult *r = PQexecParams(c->pg, rewrite(c, sql, &owned), nparams, NULL, params, NULL, NULL, 0);
    free(owned);
    int rc = result_rc(c, r);
    if (rc == DB_OK && rows) {
        int nrow = PQntuples(r), ncol = PQnfields(r);
        char *vals[32];
        size_t lens[32];
        if (ncol > 32)
            ncol = 32;
        for (int i = 0; i < nrow; i++) {
            for (int j = 0; j < ncol; j++) {
                vals[j] = PQgetisnull(r, i, j) ? NULL : PQgetvalue(r, i, j);
                lens[j] = (size_t)PQgetlength(r, i, j);
            }
            if (rows(ctx, ncol, vals, lens))
                break;
        }
    }
    if (changes)
        *changes = rc == DB_OK ? atol(PQcmdTuples(r)) : 0;
    PQclear(r);
    return rc;
}

static int pg_script(db_conn *c, const char *sql)
{
    PGresult *r = PQexec(c->pg, sql);
    int rc = result_rc(c, r);
    PQclear(r);
    return rc;
}

static int pg_begin(db_conn *c, bool write)
{
    (void)write;
    /* A connection lost while idle in the pool is re-established here, once. */
    if (PQstatus(c->pg) != CONNECTION_OK)
        PQreset(c->pg);
    return pg_script(c, "BEGIN");
}
static int pg_commit(db_conn *c) { return pg_script(c, "COMMIT"); }
static int pg_rollback(db_conn *c) { return pg_script(c, "ROLLBACK"); }
static const char *pg_errmsg(db_conn *c) { return c->err[0] ? c->err : PQerrorMessage(c->pg); }

const db_driver db_postgres = {
    .name = "postgres",
    .single_writer = false,
    .schema_sql = schema,
    .open = pg_open,
    .close = pg_close,
    .exec = pg_exec,
    .script = pg_script,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .errmsg = pg_errmsg,
    /* NOTIFY inside the transaction is delivered only if it commits. */
    .notify_sql = "SELECT pg_notify('manifold_changes', ?), nextval('manifold_changes')",
};
