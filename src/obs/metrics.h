/* metrics — a tiny Prometheus registry: counters, gauges and histograms, rendered in the
 * text exposition format (version 0.0.4) by metrics_render.
 *
 * Hot paths pay one relaxed atomic add per update and never take a lock: every value lives
 * in METRICS_SHARDS copies, each thread adds to the copy of its own shard (threads are given
 * shards round-robin on their first update), and a scrape sums the copies. The copies of
 * one shard are contiguous and the shards are far apart, so two threads of different shards
 * never write the same cache line. Registering a family or a series takes a mutex: do it at
 * start-up, or once per new label combination (see obs.c for a lock-free lookup in front).
 *
 * A series is one family plus one fixed set of label values, rendered once when it is
 * created ("method=\"GET\",route=\"/x\""); label values are escaped by metrics_series. */
#ifndef MANIFOLD_METRICS_H
#define MANIFOLD_METRICS_H
#include <stdint.h>
#include "util/buf.h"

typedef enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

typedef struct metric_family metric_family;
typedef struct metric metric;

/* A family: name and help as Prometheus wants them (counters end in _total). buckets: the
 * histogram's upper bounds, ascending (copied; +Inf is implicit), NULL for the others.
 * Registering a name twice returns the first family. */
metric_family *metrics_family(const char *name, const char *help, metric_type type, const double *buckets,
                              int nbuckets);

/* The series of f with these labels: nlabels pairs of (name, value), e.g.
 * metrics_series(f, 2, "method", "GET", "route", "/healthz"). The same labels give the same
 * series. NULL when the value store is full (updates of a NULL series are ignored). */
metric *metrics_series(metric_family *f, int nlabels, ...);

/* Counters (and gauges moved by deltas): add n. Lock-free, sharded. */
void metric_add(metric *m, uint64_t n);
/* Gauges: add a signed delta (in-flight style gauges). Lock-free, sharded. */
void metric_gauge_add(metric *m, int64_t delta);
/* Gauges whose value is computed when scraped: fn(arg) is called by metrics_render, from the
 * scraping thread, so it must be cheap and thread-safe. Replaces any earlier callback. */
void metric_gauge_fn(metric *m, double (*fn)(void *arg), void *arg);
/* Histograms: one observation (non-negative; the sum keeps micro-units, so seconds are
 * summed to the microsecond). Lock-free, sharded. */
void metric_observe(metric *m, double v);

/* Reads a counter or gauge as it would be rendered (tests, obs internals). */
double metric_value(metric *m);

/* Appends every family with its series to out, in registration order. */
void metrics_render(buf *out);

#endif
