/* The registry behind metrics.h. Values live in one static arena of slots, METRICS_SHARDS
 * copies of it; a series owns a run of slots (1 for counters and gauges, buckets + 2 for
 * histograms: one count per bucket including +Inf, then the sum in micro-units). */
#include "obs/metrics.h"
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_SHARDS 8
#define SLOT_CAP 16384
#define MAX_BUCKETS 32

struct metric {
    metric_family *fam;
    char *labels;        /* rendered: name="value",… ("" without labels) */
    uint32_t slot;       /* first slot */
    _Atomic(double (*)(void *)) fn; /* gauges computed at scrape time */
    void *_Atomic fn_arg;
    metric *next;
};

struct metric_family {
    char *name, *help;
    metric_type type;
    double buckets[MAX_BUCKETS];
    int nbuckets;
    metric *series, **tail;
    metric_family *next;
};

/* Each shard's slots on their own pages: shards never share a cache line. */
static _Atomic uint64_t slots[METRICS_SHARDS][SLOT_CAP] __attribute__((aligned(64)));
static uint32_t slots_used;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static metric_family *families, **families_tail = &families;
static atomic_uint next_shard;

static inline unsigned my_shard(void)
{
    static _Thread_local unsigned shard = UINT32_MAX;
    if (shard == UINT32_MAX)
        shard = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % METRICS_SHARDS;
    return shard;
}

metric_family *metrics_family(const char *name, const char *help, metric_type type, const double *buckets,
                              int nbuckets)
{
    pthread_mutex_lock(&mu);
    for (metric_family *f = families; f; f = f->next)
        if (!strcmp(f->name, name)) {
            pthread_mutex_unlock(&mu);
            return f;
        }
    metric_family *f = calloc(1, sizeof *f);
    f->name = strdup(name);
    f->help = strdup(help);
    f->type = type;
    if (type == METRIC_HISTOGRAM) {
        f->nbuckets = nbuckets < MAX_BUCKETS ? nbuckets : MAX_BUCKETS;
        memcpy(f->buckets, buckets, (size_t)f->nbuckets * sizeof *buckets);
    }
    f->tail = &f->series;
    *families_tail = f;
    families_tail = &f->next;
    pthread_mutex_unlock(&mu);
    return f;
}

/* Label values are escaped as the exposition format wants: \\, \" and \n. */
static void put_label_value(buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            buf_putc(b, '\\'), buf_putc(b, *v);
        else if (*v == '\n')
            buf_puts(b, "\\n");
        else
            buf_putc(b, *v);
    }
}

metric *metrics_series(metric_family *f, int nlabels, ...)
{
    buf lb = {0};
    va_list ap;
    va_start(ap, nlabels);
    for (int i = 0; i < nlabels; i++) {
        const char *k = va_arg(ap, const char *), *v = va_arg(ap, const char *);
        buf_printf(&lb, "%s%s=\"", i ? "," : "", k);
        put_label_value(&lb, v ? v : "");
        buf_putc(&lb, '"');
    }
    va_end(ap);
    const char *labels = buf_cstr(&lb);
    pthread_mutex_lock(&mu);
    for (metric *m = f->series; m; m = m->next)
        if (!strcmp(m->labels, labels)) {
            pthread_mutex_unlock(&mu);
            buf_free(&lb);
            return m;
        }
    uint32_t need = f->type == METRIC_HISTOGRAM ? (uint32_t)f->nbuckets + 2 : 1;
    if (slots_used + need > SLOT_CAP) {
        pthread_mutex_unlock(&mu);
        buf_free(&lb);
        return NULL;
    }
    metric *m = calloc(1, sizeof *m);
    m->fam = f;
    m->labels = strdup(labels);
    m->slot = slots_used;
    slots_used += need;
    *f->tail = m;
    f->tail = &m->next;
    pthread_mutex_unlock(&mu);
    buf_free(&lb);
    return m;
}

void metric_add(metric *m, uint64_t n)
{
    if (m)
        atomic_fetch_add_explicit(&slots[my_shard()][m->slot], n, memory_order_relaxed);
}

void metric_gauge_add(metric *m, int64_t delta)
{
    /* Two's complement: the shards' sum wraps back to the right signed total. */
    if (m)
        atomic_fetch_add_explicit(&slots[my_shard()][m->slot], (uint64_t)delta, memory_order_relaxed);
}

void metric_gauge_fn(metric *m, double (*fn)(void *), void *arg)
{
    if (!m)
        return;
    atomic_store(&m->fn_arg, arg);
    atomic_store(&m->fn, fn);
}

void metric_observe(metric *m, double v)
{
    if (!m)
        return;
    const metric_family *f = m->fam;
    int i = 0;
    while (i < f->nbuckets && v > f->buckets[i])
        i++;
    unsigned s = my_shard();
    atomic_fetch_add_explicit(&slots[s][m->slot + (uint32_t)i], 1, memory_order_relaxed);
    double micro = v > 0 ? v * 1e6 + 0.5 : 0;
    atomic_fetch_add_explicit(&slots[s][m->slot + (uint32_t)f->nbuckets + 1], (uint64_t)micro,
                              memory_order_relaxed);
}

static uint64_t sum_slot(uint32_t slot)
{
    uint64_t v = 0;
    for (int s = 0; s < METRICS_SHARDS; s++)
        v += atomic_load_explicit(&slots[s][slot], memory_order_relaxed);
    return v;
}

double metric_value(metric *m)
{
    if (!m)
        return 0;
    double (*fn)(void *) = atomic_load(&m->fn);
    if (fn)
        return fn(atomic_load(&m->fn_arg));
    uint64_t v = sum_slot(m->slot);
    return m->fam->type == METRIC_GAUGE ? (double)(int64_t)v : (double)v;
}

/* Numbers as Prometheus reads them: integers without a fraction, NaN and ±Inf by name. */
static void put_number(buf *b, double v)
{
    if (isnan(v))
        buf_puts(b, "NaN");
    else if (isinf(v))
        buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        buf_printf(b, "%.0f", v);
    else {
        /* the shortest form that reads back as the same double */
        char t[40];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(t, sizeof t, "%.*g", prec, v);
            if (strtod(t, NULL) == v)
                break;
        }
        buf_puts(b, t);
    }
}

static void put_sample(buf *b, const char *name, const char *suffix, const char *labels, const char *extra,
                       double v)
{
    buf_printf(b, "%s%s", name, suffix);
    bool any = labels[0] || extra;
    if (any) {
        buf_putc(b, '{');
        buf_puts(b, labels);
        if (extra)
            buf_printf(b, "%s%s", labels[0] ? "," : "", extra);
        buf_putc(b, '}');
    }
    buf_putc(b, ' ');
    put_number(b, v);
    buf_putc(b, '\n');
}

void metrics_render(buf *out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&mu);
    for (metric_family *f = families; f; f = f->next) {
        buf_printf(out, "# HELP %s ", f->name);
        for (const char *h = f->help; *h; h++) /* help text escapes \\ and \n */
            *h == '\\' ? buf_puts(out, "\\\\") : *h == '\n' ? buf_puts(out, "\\n") : buf_putc(out, *h);
        buf_printf(out, "\n# TYPE %s %s\n", f->name, types[f->type]);
        for (metric *m = f->series; m; m = m->next) {
            if (f->type != METRIC_HISTOGRAM) {
                put_sample(out, f->name, "", m->labels, NULL, metric_value(m));
                continue;
            }
            uint64_t cum = 0;
            char le[48];
            for (int i = 0; i <= f->nbuckets; i++) {
                cum += sum_slot(m->slot + (uint32_t)i);
                if (i < f->nbuckets)
                    snprintf(le, sizeof le, "le=\"%g\"", f->buckets[i]);
                else
                    snprintf(le, sizeof le, "le=\"+Inf\"");
                put_sample(out, f->name, "_bucket", m->labels, le, (double)cum);
            }
            /* The sum is read after the buckets: a racing observation can only make it
             * slightly ahead of the count, never a bucket ahead of +Inf. */
            put_sample(out, f->name, "_sum", m->labels, NULL,
                       (double)sum_slot(m->slot + (uint32_t)f->nbuckets + 1) / 1e6);
            put_sample(out, f->name, "_count", m->labels, NULL, (double)cum);
        }
    }
    pthread_mutex_unlock(&mu);
}
