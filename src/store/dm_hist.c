/* Log-scale latency histogram math (see dm_hist.h for the accuracy contract). */
#include "store/dm_hist.h"
#include <math.h>
#include <stdlib.h>

/* g = (1+a)/(1-a): every value v in (g^(k-1), g^k] is within a of 2·g^k/(g+1). */
static double gamma_(void) { return (1.0 + DM_HIST_ALPHA) / (1.0 - DM_HIST_ALPHA); }

int dm_hist_index(long long ms)
{
    if (ms <= 0)
        return 0;
    /* ms >= 1, so k = ceil(log_g ms) >= 0 and stays below ~2200 for any 64-bit value. */
    double k = ceil(log((double)ms) / log(gamma_()));
    if (k < 0)
        k = 0;
    return (int)k + 1;
}

long long dm_hist_value(int index)
{
    if (index <= 0)
        return 0;
    double g = gamma_();
    return llround(2.0 * pow(g, index - 1) / (g + 1.0));
}

static int by_index(const void *a, const void *b)
{
    int x = ((const dm_bucket *)a)->index, y = ((const dm_bucket *)b)->index;
    return (x > y) - (x < y);
}

int dm_hist_merge(dm_bucket *b, int n)
{
    if (n <= 1)
        return n;
    qsort(b, (size_t)n, sizeof *b, by_index);
    int w = 0;
    for (int i = 1; i < n; i++) {
        if (b[i].index == b[w].index) {
            b[w].n += b[i].n;
            if (b[i].lo < b[w].lo)
                b[w].lo = b[i].lo;
            if (b[i].hi > b[w].hi)
                b[w].hi = b[i].hi;
        } else {
            b[++w] = b[i];
        }
    }
    return w + 1;
}

long long dm_hist_percentile(const dm_bucket *b, int n, int p)
{
    long long total = 0;
    for (int i = 0; i < n; i++)
        total += b[i].n > 0 ? b[i].n : 0;
    if (total == 0 || p <= 0)
        return 0;
    if (p > 100)
        p = 100;
    /* Nearest rank: ceil(p·N/100), in integers (N below 2^56 in any real window). */
    long long rank = (total * p + 99) / 100;
    if (rank < 1)
        rank = 1;
    long long seen = 0;
    for (int i = 0; i < n; i++) {
        if (b[i].n <= 0)
            continue;
        if (seen + b[i].n >= rank) {
            if (rank == seen + 1)
                return b[i].lo; /* first sample of the bucket: its smallest */
            if (rank == seen + b[i].n)
                return b[i].hi; /* last sample of the bucket: its largest */
            long long v = dm_hist_value(b[i].index);
            return v < b[i].lo ? b[i].lo : v > b[i].hi ? b[i].hi : v;
        }
        seen += b[i].n;
    }
    return b[n - 1].hi;
}
