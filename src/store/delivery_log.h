/* delivery_log — the delivery engine's durable state (docs/delivery.md): one cursor row per
 * destination over its source's intake_events (with the lease that lets one process at a
 * time work it), and the retry queue holding frozen payloads with their due times.
 *
 * Position: SQLite commits in id order (one writer), so a position is the event id. On
 * PostgreSQL ids come from a sequence and commit out of order, so events carry the id of
 * the transaction that wrote them (column xid, filled by its default) and a position is
 * (xid, id); a reader takes only rows whose transaction is older than every transaction
 * still running (pg_snapshot_xmin), a set that can no longer grow below the cursor. */
#ifndef MANIFOLD_STORE_DELIVERY_LOG_H
#define MANIFOLD_STORE_DELIVERY_LOG_H
#include "store/store.h"

typedef struct dl_pos {
    char xid[24];   /* "0" on SQLite */
    long long id;
} dl_pos;

/* Creates the tables (and, on PostgreSQL, intake_events.xid); idempotent, once at start. */
int store_dl_init(store *st);

/* The head of a source's log: the position after which new events will appear. */
int store_dl_head(txn *t, const char *source, dl_pos *out);
/* Creates a destination's cursor at the head of its source's log unless it exists (called
 * in the destination's create transaction, and by the engine for older destinations). */
int store_dl_cursor_create(txn *t, const char *destination, const char *source);
/* Takes or renews the lease on a destination's cursor for owner until until_ms (creating
 * the cursor at the head if missing): ST_OK with the cursor's position, ST_CONFLICT when
 * another live owner holds it. */
int store_dl_lease(txn *t, const char *destination, const char *source, const char *owner, long long now_ms,
                   long long until_ms, dl_pos *pos);
/* Moves the cursor and renews the lease, only while owner holds it: ST_CONFLICT if lost. */
int store_dl_advance(txn *t, const char *destination, const char *owner, const dl_pos *pos, long long until_ms);
/* Gives the lease up (clean shutdown). */
int store_dl_release(txn *t, const char *owner);

typedef struct dl_event {
    long long id, received_ms;
    const char *xid, *status, *event;
    size_t event_len;
} dl_event;
/* Events of source after pos, oldest first, at most limit. */
int store_dl_events(txn *t, const char *source, const dl_pos *after, int limit,
                    int (*fn)(void *, const dl_event *), void *ctx);

typedef struct dl_retry {
    long long id, received_ms, due_ms;
    int attempts;
    const char *message_id, *code, *body;
    size_t body_len;
} dl_retry;
/* Retries of a destination due at now, earliest first, at most limit. */
int store_dl_retries_due(txn *t, const char *destination, long long now_ms, int limit,
                         int (*fn)(void *, const dl_retry *), void *ctx);
int store_dl_retry_add(txn *t, const char *destination, const char *message_id, long long received_ms,
                       int attempts, long long due_ms, const char *code, const char *body);
int store_dl_retry_update(txn *t, long long id, int attempts, long long due_ms, const char *code);
int store_dl_retry_delete(txn *t, long long id);
/* Drops a destination's due retries without attempting them (it was disabled). */
int store_dl_retries_drop_due(txn *t, const char *destination, long long now_ms);
/* Removes one destination's cursor and retries (it is being deleted). */
int store_dl_forget(txn *t, const char *destination);
/* Removes cursors and retries of destinations that no longer exist. */
int store_dl_cleanup(txn *t);

/* Events of a destination waiting for a retry (the pending_retry gauge). */
int store_delivery_pending(txn *t, const char *destination, long long *n);
/* The same over every destination (manifold_delivery_queue_depth). */
int store_delivery_pending_all(txn *t, long long *n);

/* Every destination and every filter, for the engine's configuration cache. */
int store_dl_destinations(txn *t, int (*fn)(void *, const res_row *), void *ctx);
int store_dl_filters(txn *t, int (*fn)(void *, const res_row *), void *ctx);

#endif
