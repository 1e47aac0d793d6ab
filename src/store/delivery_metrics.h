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

#endif
