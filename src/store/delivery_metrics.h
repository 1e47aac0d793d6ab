/* delivery_metrics — Event Delivery Metrics' counters (delivery.md §9.2), written by the
 * delivery engine in the same transaction that records an attempt's outcome, read by the
 * Config API's §11 routes. Buckets are UTC minutes; HOUR/DAY are rolled up at read. */
#ifndef MANIFOLD_STORE_DELIVERY_METRICS_H
#define MANIFOLD_STORE_DELIVERY_METRICS_H
#include "store/store.h"

/* Adds n to a leaf counter of one destination (its full resource name,
 * "workspaces/w/sources/s/destinations/d") in the minute containing at_ms.
 * metric: "successes", "retried_<code>" or "discarded_<code>" (code: an HTTP status or a
 * name such as ETIMEDOUT, INVALID_SETTINGS, message_rejected), or a non-§11 counter such as
 * "filtered_at_destination_<reason>" / "successes_attempt_<n>". Sums (retried, discarded,
 * total) are derived at read, never stored. */
int store_dm_add(txn *t, const char *destination, const char *metric, long long at_ms, long long n);

/* Records one time_to_success sample (milliseconds) in the minute containing at_ms. */
int store_dm_latency(txn *t, const char *destination, long long at_ms, long long latency_ms);

/* Removes every counter of a destination (called when the destination is deleted). */
int store_dm_delete(txn *t, const char *destination);

/* ---- additions (reads for the §11 routes, retention) ---- */

/* Sums of every leaf counter of a destination over the minutes in [start_ms, end_ms)
 * (both multiples of a minute), grouped per slot of gran_min minutes (1, 60 or 1440,
 * slots aligned to the epoch, i.e. UTC hours and days) or, when gran_min is 0, over the
 * whole window (slot_ms = start_ms). fn gets rows ordered by slot, then metric; return
 * non-zero from it to stop. */
int store_dm_counts(txn *t, const char *destination, long long start_ms, long long end_ms, int gran_min,
                    int (*fn)(void *ctx, long long slot_ms, const char *metric, long long n), void *ctx);

/* The latency histogram's buckets (store/dm_hist.h) of a destination over the same kind
 * of window and slots: one row per (slot, bucket) with its count and the smallest and
 * largest sample, ordered by slot then bucket. */
int store_dm_latency_hist(txn *t, const char *destination, long long start_ms, long long end_ms, int gran_min,
                          int (*fn)(void *ctx, long long slot_ms, int bucket, long long n, long long lo,
                                    long long hi),
                          void *ctx);

/* Removes the counters of every destination named under prefix + "/" (a deleted source's
 * or workspace's destinations). */
int store_dm_delete_tree(txn *t, const char *prefix);

/* Removes counters of minutes before before_ms, at most limit rows per table (retention:
 * nothing older than the oldest start any §11 call accepts, 14 days, is ever read). The
 * engine calls it now and then, e.g. every few thousand transactions with now − 15 days
 * and a limit of 1000. */
int store_dm_prune(txn *t, long long before_ms, int limit);

/* Moves counters of minutes before before_ms (at most limit rows per table) into the
 * first minute of their hour, merged: HOUR and DAY reads (grouped by hour) and summaries
 * give the same answers from 60x fewer rows, and MINUTE reads never reach them as long as
 * before_ms is older than their oldest start (48 hours). Safe with concurrent callers
 * (rows are taken by DELETE … RETURNING, so two processes never merge the same rows). */
int store_dm_compact(txn *t, long long before_ms, int limit);

/* Upkeep for the engine to call now and then (e.g. every few thousand transactions):
 * prunes counters older than 15 days and compacts those older than 49 hours, at most
 * limit rows of each table per call. */
int store_dm_maintain(txn *t, long long now_ms, int limit);

/* A batch: counter changes gathered in memory (one thread's) and written with one upsert
 * per distinct row — a transaction of 500 deliveries to one destination in one minute
 * becomes one counter upsert and a few dozen histogram upserts instead of 1,000
 * statements. Rows are written sorted by (destination, minute, metric/bucket), so
 * concurrent flushes on PostgreSQL take row locks in one order and cannot deadlock on
 * each other. Same results as the direct calls above. */
typedef struct dm_batch dm_batch;
dm_batch *dm_batch_new(void);
void dm_batch_add(dm_batch *b, const char *destination, const char *metric, long long at_ms, long long n);
void dm_batch_latency(dm_batch *b, const char *destination, long long at_ms, long long latency_ms);
/* Writes everything gathered into t and empties the batch (also when it fails). */
int store_dm_flush(txn *t, dm_batch *b);
void dm_batch_free(dm_batch *b);

#endif
