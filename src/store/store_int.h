/* store_int — for the store's own files only: one statement on a transaction's
 * connection with the store's error mapping (ST_CONFLICT for a unique violation,
 * ST_ERROR logged). sql must have static storage duration (see db.h). */
#ifndef MANIFOLD_STORE_INT_H
#define MANIFOLD_STORE_INT_H
#include "store/store.h"

int store_run_(txn *t, const char *sql, int n, const char *const *p, db_row_fn fn, void *ctx, long *changes);

#endif
