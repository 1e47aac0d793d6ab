/* dm_hist — the latency histogram behind time_to_success_p50/p95/p99 (delivery.md §9.2).
 *
 * A sample (milliseconds) falls in a log-scale bucket (DDSketch's mapping with relative
 * accuracy 1%): bucket 0 holds 0 ms, bucket i >= 1 holds (g^(i-2), g^(i-1)] with
 * g = 1.01/0.99, and its representative value 2·g^(i-1)/(g+1) is within 1% of every value
 * in it. Buckets are stored per destination-minute together with the exact smallest and
 * largest sample that fell in them, so histograms of any set of minutes merge by adding
 * counts and taking min/max, and a percentile is:
 *   - exact when its rank is the first or last sample of its bucket (the bucket's lo/hi),
 *     hence exact for a single sample, for the minimum and the maximum;
 *   - otherwise the bucket's representative value clamped to [lo, hi]: within 1% (plus
 *     rounding to whole milliseconds) of the true nearest-rank percentile.
 * Pure functions; no storage here (see delivery_metrics.c). */
#ifndef MANIFOLD_STORE_DM_HIST_H
#define MANIFOLD_STORE_DM_HIST_H

#define DM_HIST_ALPHA 0.01

/* The bucket of a sample; negative samples (clock skew) count as 0 ms. */
int dm_hist_index(long long ms);
/* The representative value of a bucket, in milliseconds (rounded). */
long long dm_hist_value(int index);

typedef struct dm_bucket {
    int index;
    long long n, lo, hi; /* samples, smallest and largest sample in it */
} dm_bucket;

/* Merges buckets with equal index in b[0..n) (sorting by index first); returns the new
 * count. */
int dm_hist_merge(dm_bucket *b, int n);
/* Nearest-rank percentile p (0 < p <= 100) of the samples in b[0..n) (sorted by index,
 * distinct indexes, as dm_hist_merge leaves them): the sample of rank ceil(p·N/100).
 * 0 when there are no samples. */
long long dm_hist_percentile(const dm_bucket *b, int n, int p);

#endif
