/* obs — what Manifold tells an operator: the Prometheus series of GET /metrics (on the
 * registry of metrics.h) and the access log line of every answered request, in the text
 * or JSON log format (util.h).
 *
 * For the delivery engine (src/deliver/) there are exactly two calls to make:
 *   obs_delivery_count(outcome, events)   once an attempt's outcome is known
 *                                         (manifold_deliveries_total{outcome});
 *   obs_delivery_queue_fn(depth, arg)     once at start-up: depth(arg) is called on every
 *                                         scrape for manifold_delivery_queue_depth, from
 *                                         the scraping thread — return a cached number
 *                                         (no database query per scrape).
 * Until the engine makes them, the counters read 0 and the gauge reads 0. */
#ifndef MANIFOLD_OBS_H
#define MANIFOLD_OBS_H
#include <stdbool.h>
#include <stdint.h>
#include "http/http.h"
#include "util/buf.h"

/* Registers every series (values 0) and remembers the process start time. Idempotent. */
void obs_init(void);

/* The id of a route's label (its pattern, e.g. "/v1beta/workspaces/{ws}/sources/{src}");
 * the same pattern gives the same id. Call at start-up for every route; 0 is the fixed
 * label of requests that match no route ("unmatched"). */
int obs_route(const char *pattern);
const char *obs_route_label(int id);

/* The http_config.on_answer hook: counts the answered request under its route's label,
 * observes its duration, and writes its access line (info level). */
void obs_http_answer(const request *r, int status);
/* Whether access lines are written (default true). */
extern bool obs_access_log;

/* The intake: events received (accepted, blocked, duplicate or rejected alike). */
void obs_events_received(uint64_t n);

/* Delivery (see the top of this file). */
typedef enum delivery_outcome {
    DELIVERY_SUCCESS,   /* an event delivered (outcome="success") */
    DELIVERY_RETRIED,   /* a failed attempt after which a retry was scheduled ("retried") */
    DELIVERY_DISCARDED, /* an event given up on ("discarded") */
    DELIVERY_NOUTCOMES
} delivery_outcome;
void obs_delivery_count(delivery_outcome o, uint64_t events);
void obs_delivery_queue_fn(double (*depth)(void *arg), void *arg);

/* The database pool's gauges: fn fills connections in use and threads waiting for one. */
void obs_pool_fn(void (*fn)(void *arg, int *in_use, int *waiting, int *size), void *arg);

/* The whole exposition text of GET /metrics (process_* series read at this moment). */
void obs_render(buf *out);

#endif
