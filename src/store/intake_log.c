/* The intake's tables: the event log, the messageId dedup claims and the per-source
 * lifetime counters. Same SQL on both backends; every statement is one prepared,
 * cached statement, so a batch of events is a loop of cheap executions in one
 * transaction. */
#include "store/store_int.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_dedup_claim(txn *t, const char *message_id, long long now_ms, long long dedup_ms)
{
    char exp[24], now[24];
    snprintf(exp, sizeof exp, "%lld", now_ms + dedup_ms);
    snprintf(now, sizeof now, "%lld", now_ms);
    const char *p[] = {message_id, exp, now};
    long changes = 0;
    /* A claim that has expired is taken over (the update); a live one changes nothing. */
    int rc = store_run_(t, "INSERT INTO intake_claims (message_id, expires_ms) VALUES (?, ?) "
                           "ON CONFLICT (message_id) DO UPDATE SET expires_ms = excluded.expires_ms "
                           "WHERE intake_claims.expires_ms <= ?", 3, p, NULL, NULL, &changes);
    return rc ? rc : changes > 0 ? ST_OK : ST_CONFLICT;
}

typedef struct key_out { char *s; size_t cap; bool found, fits; } key_out;

static int key_row(void *ctx, int n, char *const *v, const size_t *l)
{
    key_out *k = ctx;
    if (n >= 1 && v[0]) {
        k->found = true;
        k->fits = l[0] < k->cap;
        if (k->fits)
            memcpy(k->s, v[0], l[0] + 1);
    }
    return 1;
}

int store_dedup_prune(txn *t, long long now_ms, int limit, char *cursor, size_t cap)
{
    char now[24], skip[16], end[512];
    snprintf(now, sizeof now, "%lld", now_ms);
    snprintf(skip, sizeof skip, "%d", limit > 1 ? limit - 1 : 0);
    /* the window: the limit-th claim after the cursor, if there are that many */
    key_out k = {end, sizeof end, false, false};
    const char *q[] = {cursor, skip};
    int rc = store_run_(t, "SELECT message_id FROM intake_claims WHERE message_id > ? ORDER BY message_id "
                           "LIMIT 1 OFFSET ?", 2, q, key_row, &k, NULL);
    if (rc != ST_OK)
        return rc;
    if (k.found && k.fits) {
        const char *p[] = {cursor, end, now};
        rc = store_run_(t, "DELETE FROM intake_claims WHERE message_id > ? AND message_id <= ? AND expires_ms <= ?",
                        3, p, NULL, NULL, NULL);
        if (rc == ST_OK)
            snprintf(cursor, cap, "%s", end);
    } else {
        /* the rest of the table (an end key too long to keep: the rest as well) */
        const char *p[] = {cursor, now};
        rc = store_run_(t, "DELETE FROM intake_claims WHERE message_id > ? AND expires_ms <= ?", 2, p, NULL, NULL,
                        NULL);
        if (rc == ST_OK && cap)
            cursor[0] = '\0';
    }
    return rc;
}

int store_event_add(txn *t, const char *source, long long received_ms, const char *message_id, const char *type,
                    const char *status, const char *violations, const char *event)
{
    char ms[24];
    snprintf(ms, sizeof ms, "%lld", received_ms);
    const char *p[] = {source, ms, message_id, type, status, violations, event};
    return store_run_(t, "INSERT INTO intake_events (source, received_ms, message_id, type, status, violations, event) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", 7, p, NULL, NULL, NULL);
}

int store_counts_add(txn *t, const char *source, int shard, const intake_counts *d)
{
    char v[6][24];
    snprintf(v[0], sizeof v[0], "%d", shard);
    snprintf(v[1], sizeof v[1], "%lld", d->received);
    snprintf(v[2], sizeof v[2], "%lld", d->accepted);
    snprintf(v[3], sizeof v[3], "%lld", d->blocked);
    snprintf(v[4], sizeof v[4], "%lld", d->duplicate);
    snprintf(v[5], sizeof v[5], "%lld", d->rejected);
    const char *p[] = {source, v[0], v[1], v[2], v[3], v[4], v[5]};
    return store_run_(t, "INSERT INTO intake_counters (source, shard, received, accepted, blocked, duplicate, rejected) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, shard) DO UPDATE SET "
                         "received = intake_counters.received + excluded.received, "
                         "accepted = intake_counters.accepted + excluded.accepted, "
                         "blocked = intake_counters.blocked + excluded.blocked, "
                         "duplicate = intake_counters.duplicate + excluded.duplicate, "
                         "rejected = intake_counters.rejected + excluded.rejected", 7, p, NULL, NULL, NULL);
}

int store_reason_add(txn *t, const char *source, const char *reason, long long n)
{
    char v[24];
    snprintf(v, sizeof v, "%lld", n);
    const char *p[] = {source, reason, v};
    return store_run_(t, "INSERT INTO intake_reasons (source, reason, n) VALUES (?, ?, ?) "
                         "ON CONFLICT (source, reason) DO UPDATE SET n = intake_reasons.n + excluded.n",
                      3, p, NULL, NULL, NULL);
}

static int counts_row(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    intake_counts *c = ctx;
    c->received = v[0] ? atoll(v[0]) : 0;
    c->accepted = v[1] ? atoll(v[1]) : 0;
    c->blocked = v[2] ? atoll(v[2]) : 0;
    c->duplicate = v[3] ? atoll(v[3]) : 0;
    c->rejected = v[4] ? atoll(v[4]) : 0;
    return 1;
}

int store_counts_get(txn *t, const char *source, intake_counts *out)
{
    *out = (intake_counts){0};
    const char *p[] = {source};
    return store_run_(t, "SELECT SUM(received), SUM(accepted), SUM(blocked), SUM(duplicate), SUM(rejected) "
                         "FROM intake_counters WHERE source = ?", 1, p, counts_row, out, NULL);
}

typedef struct reason_iter {
    int (*fn)(void *, const char *, long long);
    void *ctx;
} reason_iter;

static int reason_row(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    reason_iter *it = ctx;
    return it->fn(it->ctx, v[0] ? v[0] : "", v[1] ? atoll(v[1]) : 0);
}

int store_reasons_list(txn *t, const char *source, int (*fn)(void *, const char *reason, long long n), void *ctx)
{
    reason_iter it = {fn, ctx};
    const char *p[] = {source};
    return store_run_(t, "SELECT reason, n FROM intake_reasons WHERE source = ? ORDER BY reason", 1, p, reason_row,
                      &it, NULL);
}

typedef struct event_iter {
    int (*fn)(void *, const event_row *);
    void *ctx;
} event_iter;

static int event_each(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    event_iter *it = ctx;
    event_row r = {.id = atoll(v[0]), .received_ms = atoll(v[1]), .message_id = v[2], .type = v[3],
                   .status = v[4], .violations = v[5], .event = v[6]};
    return it->fn(it->ctx, &r);
}

int store_events_list(txn *t, const char *source, long long before_id, long long min_id, int limit,
                      int (*fn)(void *, const event_row *), void *ctx)
{
    char b[24], m[24], lim[16];
    snprintf(b, sizeof b, "%lld", before_id > 0 ? before_id : (long long)(~0ULL >> 1));
    snprintf(m, sizeof m, "%lld", min_id);
    snprintf(lim, sizeof lim, "%d", limit);
    event_iter it = {fn, ctx};
    const char *p[] = {source, b, m, lim};
    if (before_id <= 0)
        return store_run_(t, "SELECT id, received_ms, message_id, type, status, violations, event FROM intake_events "
                             "WHERE source = ? AND id < ? AND id >= ? ORDER BY received_ms DESC, id DESC LIMIT ?",
                          4, p, event_each, &it, NULL);
    /* Newest first by receipt time, not by id: a request stamped earlier can reach the store
     * after a later one (they wait for the writer in any order). The window (id >= min_id,
     * the last N stored) bounds the sort; the cursor is the last event shown. */
    const char *q[] = {source, m, b, b, lim};
    return store_run_(t, "SELECT id, received_ms, message_id, type, status, violations, event FROM intake_events "
                         "WHERE source = ? AND id >= ? AND (received_ms, id) < "
                         "((SELECT received_ms FROM intake_events WHERE id = ?), ?) "
                         "ORDER BY received_ms DESC, id DESC LIMIT ?", 5, q, event_each, &it, NULL);
}

static int id_row(void *ctx, int n, char *const *v, const size_t *l)
{
    (void)n, (void)l;
    *(long long *)ctx = v[0] ? atoll(v[0]) : 0;
    return 1;
}

int store_events_nth_id(txn *t, const char *source, int n, long long *id)
{
    char off[16];
    snprintf(off, sizeof off, "%d", n - 1);
    *id = 0;
    const char *p[] = {source, off};
    int rc = store_run_(t, "SELECT id FROM intake_events WHERE source = ? ORDER BY id DESC LIMIT 1 OFFSET ?", 2, p,
                        id_row, id, NULL);
    return rc ? rc : *id ? ST_OK : ST_NOT_FOUND;
}
