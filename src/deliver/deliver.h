/* deliver — the delivery engine (delivery.md §1 D1–D8, §4, §5, §9.2; docs/delivery.md).
 * One thread follows every destination's cursor over its source's event log, evaluates
 * D1–D5 once per event, freezes the payload, runs the attempts through the destination
 * type's driver (target.h) and commits each batch's outcomes, retries and metrics with
 * the cursor advance in one transaction, so a crash only ever re-sends. */
#ifndef MANIFOLD_DELIVER_H
#define MANIFOLD_DELIVER_H
#include "catalog/catalog.h"
#include "functions/runtime.h"
#include "store/store.h"

typedef struct deliver deliver;

/* Reads MANIFOLD_RETRY_* and MANIFOLD_OUTBOUND_* (an unreadable value is an error) and
 * starts the delivery thread. rt (borrowed; stopped only after deliver_stop) runs
 * destination functions. */
deliver *deliver_start(store *st, const catalog *cat, fnrt *rt, char *err, size_t errlen);
/* Stops the thread (waiting for function invocations in flight to answer): attempts in
 * flight are abandoned uncommitted (their events are
 * attempted again after a restart), leases are released. */
void deliver_stop(deliver *);

#endif
