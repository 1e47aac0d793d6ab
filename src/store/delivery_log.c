/* The delivery engine's tables (delivery_log.h). The DDL lives here rather than in the
 * drivers' schema scripts so that it can also alter intake_events on PostgreSQL (its xid
 * column) in the same idempotent step. */
#include "store/delivery_log.h"
#include "store/store_int.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_pg(txn *t) { return !strcmp(store_backend(t->st), "postgres"); }

static const char *const sqlite_ddl[] = {
    "CREATE TABLE IF NOT EXISTS delivery_cursors (destination TEXT PRIMARY KEY, source TEXT NOT NULL,"
    " pos_xid TEXT NOT NULL, pos_id INTEGER NOT NULL, owner TEXT NOT NULL, lease_until INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS delivery_retries (id INTEGER PRIMARY KEY, destination TEXT NOT NULL,"
    " message_id TEXT NOT NULL, received_ms INTEGER NOT NULL, attempts INTEGER NOT NULL,"
    " due_ms INTEGER NOT NULL, code TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS delivery_retries_due ON delivery_retries (destination, due_ms)",
    NULL,
};

static const char *const pg_ddl[] = {
    "SELECT pg_advisory_xact_lock(7412)",
    "CREATE TABLE IF NOT EXISTS delivery_cursors (destination TEXT COLLATE \"C\" PRIMARY KEY,"
    " source TEXT COLLATE \"C\" NOT NULL, pos_xid TEXT NOT NULL, pos_id BIGINT NOT NULL, owner TEXT NOT NULL,"
    " lease_until BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS delivery_retries (id BIGSERIAL PRIMARY KEY, destination TEXT COLLATE \"C\" NOT NULL,"
    " message_id TEXT NOT NULL, received_ms BIGINT NOT NULL, attempts INTEGER NOT NULL,"
    " due_ms BIGINT NOT NULL, code TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS delivery_retries_due ON delivery_retries (destination, due_ms)",
    /* The writing transaction's id, filled by the default: see delivery_log.h. */
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'intake_events'"
    " AND column_name = 'xid' AND table_schema = current_schema()) THEN"
    " ALTER TABLE intake_events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id(); END IF; END $$",
    "CREATE INDEX IF NOT EXISTS intake_events_by_source_xid ON intake_events (source, xid, id)",
    NULL,
};

int store_dl_init(store *st)
{
    txn t;
    if (store_begin(st, &t, true) != ST_OK)
        return ST_ERROR;
    const char *const *ddl = is_pg(&t) ? pg_ddl : sqlite_ddl;
    for (int i = 0; ddl[i]; i++)
        if (store_run_(&t, ddl[i], 0, NULL, NULL, NULL, NULL) != ST_OK) {
            store_rollback(&t);
            return ST_ERROR;
        }
    return store_commit(&t);
}

static int pos_row(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    dl_pos *p = ctx;
    snprintf(p->xid, sizeof p->xid, "%s", v[0] ? v[0] : "0");
    p->id = v[1] ? atoll(v[1]) : 0;
    return 1;
}

int store_dl_head(txn *t, const char *source, dl_pos *out)
{
    *out = (dl_pos){.xid = "0"};
    const char *p[] = {source};
    if (is_pg(t))
        return store_run_(t, "SELECT xid::text, id FROM intake_events WHERE source = ? AND "
                             "xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY xid DESC, id DESC LIMIT 1",
                          1, p, pos_row, out, NULL);
    return store_run_(t, "SELECT '0', id FROM intake_events WHERE source = ? ORDER BY id DESC LIMIT 1", 1, p,
                      pos_row, out, NULL);
}

int store_dl_cursor_create(txn *t, const char *destination, const char *source)
{
    dl_pos h;
    int rc = store_dl_head(t, source, &h);
    if (rc != ST_OK)
        return rc;
    char id[24];
    snprintf(id, sizeof id, "%lld", h.id);
    const char *p[] = {destination, source, h.xid, id};
    return store_run_(t, "INSERT INTO delivery_cursors (destination, source, pos_xid, pos_id, owner, lease_until) "
                         "VALUES (?, ?, ?, ?, '', 0) ON CONFLICT (destination) DO NOTHING", 4, p, NULL, NULL, NULL);
}

typedef struct lease_row {
    bool found;
    dl_pos pos;
} lease_row;

static int lease_each(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    lease_row *r = ctx;
    r->found = true;
    snprintf(r->pos.xid, sizeof r->pos.xid, "%s", v[0] ? v[0] : "0");
    r->pos.id = v[1] ? atoll(v[1]) : 0;
    return 1;
}

int store_dl_lease(txn *t, const char *destination, const char *source, const char *owner, long long now_ms,
                   long long until_ms, dl_pos *pos)
{
    int rc = store_dl_cursor_create(t, destination, source);
    if (rc != ST_OK)
        return rc;
    char now[24], until[24];
    snprintf(now, sizeof now, "%lld", now_ms);
    snprintf(until, sizeof until, "%lld", until_ms);
    const char *p[] = {owner, until, destination, owner, now};
    lease_row r = {0};
    rc = store_run_(t, "UPDATE delivery_cursors SET owner = ?, lease_until = ? WHERE destination = ? AND "
                       "(owner = ? OR lease_until < ?) RETURNING pos_xid, pos_id", 5, p, lease_each, &r, NULL);
    if (rc != ST_OK)
        return rc;
    if (!r.found)
        return ST_CONFLICT;
    *pos = r.pos;
    return ST_OK;
}

int store_dl_advance(txn *t, const char *destination, const char *owner, const dl_pos *pos, long long until_ms)
{
    char id[24], until[24];
    snprintf(id, sizeof id, "%lld", pos->id);
    snprintf(until, sizeof until, "%lld", until_ms);
    const char *p[] = {pos->xid, id, until, destination, owner};
    long changes = 0;
    int rc = store_run_(t, "UPDATE delivery_cursors SET pos_xid = ?, pos_id = ?, lease_until = ? "
                           "WHERE destination = ? AND owner = ?", 5, p, NULL, NULL, &changes);
    return rc ? rc : changes ? ST_OK : ST_CONFLICT;
}

int store_dl_release(txn *t, const char *owner)
{
    const char *p[] = {owner};
    return store_run_(t, "UPDATE delivery_cursors SET lease_until = 0 WHERE owner = ?", 1, p, NULL, NULL, NULL);
}

typedef struct ev_iter {
    int (*fn)(void *, const dl_event *);
    void *ctx;
} ev_iter;

static int ev_each(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n;
    ev_iter *it = ctx;
    dl_event e = {.id = atoll(v[0]), .xid = v[1] ? v[1] : "0", .received_ms = atoll(v[2]), .status = v[3],
                  .event = v[4], .event_len = l[4]};
    return it->fn(it->ctx, &e);
}

int store_dl_events(txn *t, const char *source, const dl_pos *after, int limit,
                    int (*fn)(void *, const dl_event *), void *ctx)
{
    char id[24], lim[16];
    snprintf(id, sizeof id, "%lld", after->id);
    snprintf(lim, sizeof lim, "%d", limit);
    ev_iter it = {fn, ctx};
    if (is_pg(t)) {
        const char *p[] = {source, after->xid, id, lim};
        return store_run_(t, "SELECT id, xid::text, received_ms, status, event FROM intake_events "
                             "WHERE source = ? AND (xid, id) > (?::xid8, ?::bigint) "
                             "AND xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY xid, id LIMIT ?",
                          4, p, ev_each, &it, NULL);
    }
    const char *p[] = {source, id, lim};
    return store_run_(t, "SELECT id, '0', received_ms, status, event FROM intake_events "
                         "WHERE source = ? AND id > ? ORDER BY id LIMIT ?", 3, p, ev_each, &it, NULL);
}

typedef struct retry_iter {
    int (*fn)(void *, const dl_retry *);
    void *ctx;
} retry_iter;

static int retry_each(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n;
    retry_iter *it = ctx;
    dl_retry r = {.id = atoll(v[0]), .message_id = v[1], .received_ms = atoll(v[2]), .attempts = atoi(v[3]),
                  .due_ms = atoll(v[4]), .code = v[5], .body = v[6], .body_len = l[6]};
    return it->fn(it->ctx, &r);
}

int store_dl_retries_due(txn *t, const char *destination, long long now_ms, int limit,
                         int (*fn)(void *, const dl_retry *), void *ctx)
{
    char now[24], lim[16];
    snprintf(now, sizeof now, "%lld", now_ms);
    snprintf(lim, sizeof lim, "%d", limit);
    retry_iter it = {fn, ctx};
    const char *p[] = {destination, now, lim};
    return store_run_(t, "SELECT id, message_id, received_ms, attempts, due_ms, code, body FROM delivery_retries "
                         "WHERE destination = ? AND due_ms <= ? ORDER BY due_ms LIMIT ?", 3, p, retry_each, &it,
                      NULL);
}

int store_dl_retry_add(txn *t, const char *destination, const char *message_id, long long received_ms,
                       int attempts, long long due_ms, const char *code, const char *body)
{
    char r[24], a[16], d[24];
    snprintf(r, sizeof r, "%lld", received_ms);
    snprintf(a, sizeof a, "%d", attempts);
    snprintf(d, sizeof d, "%lld", due_ms);
    const char *p[] = {destination, message_id, r, a, d, code, body};
    return store_run_(t, "INSERT INTO delivery_retries (destination, message_id, received_ms, attempts, due_ms, code, "
                         "body) VALUES (?, ?, ?, ?, ?, ?, ?)", 7, p, NULL, NULL, NULL);
}

int store_dl_retry_update(txn *t, long long id, int attempts, long long due_ms, const char *code)
{
    char i[24], a[16], d[24];
    snprintf(i, sizeof i, "%lld", id);
    snprintf(a, sizeof a, "%d", attempts);
    snprintf(d, sizeof d, "%lld", due_ms);
    const char *p[] = {a, d, code, i};
    return store_run_(t, "UPDATE delivery_retries SET attempts = ?, due_ms = ?, code = ? WHERE id = ?", 4, p, NULL,
                      NULL, NULL);
}

int store_dl_retry_delete(txn *t, long long id)
{
    char i[24];
    snprintf(i, sizeof i, "%lld", id);
    const char *p[] = {i};
    return store_run_(t, "DELETE FROM delivery_retries WHERE id = ?", 1, p, NULL, NULL, NULL);
}

int store_dl_retries_drop_due(txn *t, const char *destination, long long now_ms)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", now_ms);
    const char *p[] = {destination, now};
    return store_run_(t, "DELETE FROM delivery_retries WHERE destination = ? AND due_ms <= ?", 2, p, NULL, NULL,
                      NULL);
}

int store_dl_forget(txn *t, const char *destination)
{
    const char *p[] = {destination};
    int rc = store_run_(t, "DELETE FROM delivery_retries WHERE destination = ?", 1, p, NULL, NULL, NULL);
    if (rc == ST_OK)
        rc = store_run_(t, "DELETE FROM delivery_cursors WHERE destination = ?", 1, p, NULL, NULL, NULL);
    return rc;
}

int store_dl_cleanup(txn *t)
{
    int rc = store_run_(t, "DELETE FROM delivery_retries WHERE destination NOT IN "
                           "(SELECT name FROM resources WHERE kind = 'destination')", 0, NULL, NULL, NULL, NULL);
    if (rc == ST_OK)
        rc = store_run_(t, "DELETE FROM delivery_cursors WHERE destination NOT IN "
                           "(SELECT name FROM resources WHERE kind = 'destination')", 0, NULL, NULL, NULL, NULL);
    return rc;
}

static int count_row(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    *(long long *)ctx = v[0] ? atoll(v[0]) : 0;
    return 1;
}

int store_delivery_pending(txn *t, const char *destination, long long *n)
{
    *n = 0;
    const char *p[] = {destination};
    return store_run_(t, "SELECT COUNT(*) FROM delivery_retries WHERE destination = ?", 1, p, count_row, n, NULL);
}

int store_delivery_pending_all(txn *t, long long *n)
{
    *n = 0;
    return store_run_(t, "SELECT COUNT(*) FROM delivery_retries", 0, NULL, count_row, n, NULL);
}

typedef struct res_iter {
    int (*fn)(void *, const res_row *);
    void *ctx;
} res_iter;

static int res_each(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    res_iter *it = ctx;
    res_row r = {.name = v[0], .parent = v[1], .body = v[2], .version = atoll(v[3]), .workspace = v[4]};
    if (v[5])
        snprintf(r.create_time, sizeof r.create_time, "%s", v[5]);
    return it->fn(it->ctx, &r);
}

int store_dl_destinations(txn *t, int (*fn)(void *, const res_row *), void *ctx)
{
    res_iter it = {fn, ctx};
    return store_run_(t, "SELECT name, parent, body, version, workspace, create_time FROM resources "
                         "WHERE kind = 'destination'", 0, NULL, res_each, &it, NULL);
}

int store_dl_filters(txn *t, int (*fn)(void *, const res_row *), void *ctx)
{
    res_iter it = {fn, ctx};
    return store_run_(t, "SELECT name, parent, body, version, workspace, create_time FROM resources "
                         "WHERE kind = 'filter' ORDER BY parent, name", 0, NULL, res_each, &it, NULL);
}
