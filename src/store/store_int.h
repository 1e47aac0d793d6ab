/* store_int — for the store's own files only: one statement on a transaction's
 * connection with the store's error mapping (ST_CONFLICT for a unique violation,
 * ST_ERROR logged). sql must have static storage duration (see db.h). */
#ifndef MANIFOLD_STORE_INT_H
#define MANIFOLD_STORE_INT_H
#include "store/store.h"

int store_run_(txn *t, const char *sql, int n, const char *const *p, db_row_fn fn, void *ctx, long *changes);

/* ---- several processes on one database (watch.c) ---- */
typedef struct watcher watcher;
/* Starts the watcher thread of st: LISTEN manifold_changes on a connection of its own
 * (dsn), apply(arg, what) for every change whose payload's origin is not ours. */
watcher *watcher_start(store *st, const char *dsn, const char *origin, void (*apply)(void *arg, unsigned what), void *arg);
void watcher_stop(watcher *);
bool watcher_listening(watcher *);
/* The change counter (sequence manifold_changes), through the pool. */
int store_change_counter(store *, long long *out);
/* Deletes the rate limit's buckets idle for a minute (they are full). */
int store_rate_sweep(store *);

#endif
