/* Manifold's series and its access log. See obs.h; the series are listed in
 * docs/operations.md. */
#include "obs/obs.h"
#include "obs/metrics.h"
#include "util/util.h"
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

bool obs_access_log = true;

#define MAX_ROUTES 1024
static const char *routes[MAX_ROUTES] = {"unmatched"};
static int nroutes = 1;
static pthread_mutex_t route_mu = PTHREAD_MUTEX_INITIALIZER;

static metric_family *f_requests, *f_duration;
static metric *m_events, *m_deliveries[DELIVERY_NOUTCOMES], *m_queue;
static double start_time;

/* Request durations: half a millisecond (a cached GET) to ten seconds (past the usual
 * proxy timeouts). */
static const double duration_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,    0.25,  0.5,    1,     2.5,  5,    10};

/* Methods as labels: a fixed set, so a client cannot mint series with made-up methods. */
static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"};
enum { NMETHODS = sizeof methods / sizeof methods[0] };

static int method_index(const char *m)
{
    for (int i = 0; i < NMETHODS - 1; i++)
        if (m && !strcmp(m, methods[i]))
            return i;
    return NMETHODS - 1;
}

int obs_route(const char *pattern)
{
    pthread_mutex_lock(&route_mu);
    int id = 0;
    for (int i = 1; i < nroutes && !id; i++)
        if (!strcmp(routes[i], pattern))
            id = i;
    if (!id && nroutes < MAX_ROUTES) {
        routes[nroutes] = pattern; /* patterns are static strings (route tables) */
        id = nroutes++;
    }
    pthread_mutex_unlock(&route_mu);
    return id;
}

const char *obs_route_label(int id) { return id > 0 && id < nroutes ? routes[id] : routes[0]; }

/* ---- the (route, method, status) → series map ---------------------------------------
 * Open addressing over packed keys, lock-free for readers: a slot's key is claimed with a
 * CAS, its series published with a release store; the claimant registers the series (a
 * mutex, once per new combination) while others wait the few instructions that takes. */
#define MAP_CAP 8192
static _Atomic uint32_t map_key[MAP_CAP];
static metric *_Atomic map_val[MAP_CAP];
static atomic_bool map_ready[MAP_CAP]; /* map_val is final (it may be NULL: the store was full) */

static metric *map_get(uint32_t key, int route, int method, int status)
{
    uint32_t h = (key * 2654435761u) & (MAP_CAP - 1);
    for (uint32_t probe = 0; probe < MAP_CAP; probe++, h = (h + 1) & (MAP_CAP - 1)) {
        uint32_t k = atomic_load_explicit(&map_key[h], memory_order_acquire);
        if (k == 0) {
            uint32_t zero = 0;
            if (!atomic_compare_exchange_strong(&map_key[h], &zero, key)) {
                k = zero;
            } else {
                metric *m;
                if (status) {
                    char code[8];
                    snprintf(code, sizeof code, "%d", status);
                    m = metrics_series(f_requests, 3, "method", methods[method], "route", obs_route_label(route),
                                       "code", code);
                } else {
                    m = metrics_series(f_duration, 2, "method", methods[method], "route", obs_route_label(route));
                }
                atomic_store_explicit(&map_val[h], m, memory_order_relaxed);
                atomic_store_explicit(&map_ready[h], true, memory_order_release);
                return m;
            }
        }
        if (k == key) {
            while (!atomic_load_explicit(&map_ready[h], memory_order_acquire))
                ; /* being registered by another thread right now */
            return atomic_load_explicit(&map_val[h], memory_order_relaxed);
        }
    }
    return NULL;
}

/* ---- gauges read at scrape time ------------------------------------------------------- */

static void (*pool_fn)(void *, int *, int *, int *);
static void *pool_arg;

static double pool_value(void *which)
{
    int in_use = 0, waiting = 0, size = 0;
    if (pool_fn)
        pool_fn(pool_arg, &in_use, &waiting, &size);
    const char *w = which;
    return w[0] == 'u' ? in_use : w[0] == 'w' ? waiting : size;
}

static double start_time_value(void *arg) { return (void)arg, start_time; }
static double one(void *arg) { return (void)arg, 1; }

static double cpu_seconds(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* /proc/self/statm: sizes in pages; field 0 virtual, field 1 resident. */
static double memory_bytes(void *which)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long vsz = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%llu %llu", &vsz, &rss) != 2)
            vsz = rss = 0;
        fclose(f);
    }
    double page = (double)sysconf(_SC_PAGESIZE);
    return (*(const char *)which == 'r' ? (double)rss : (double)vsz) * page;
}

static double open_fds(void *arg)
{
    (void)arg;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    double n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static double max_fds(void *arg)
{
    (void)arg;
    struct rlimit rl;
    return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (double)rl.rlim_cur : 0;
}

static metric *gauge(const char *name, const char *help, double (*fn)(void *), void *arg)
{
    metric *m = metrics_series(metrics_family(name, help, METRIC_GAUGE, NULL, 0), 0);
    metric_gauge_fn(m, fn, arg);
    return m;
}

static void init_once(void)
{
    start_time = (double)now_ms() / 1000;
    f_requests = metrics_family("manifold_http_requests_total",
                                "HTTP requests answered, by method, route pattern and status code.", METRIC_COUNTER,
                                NULL, 0);
    f_duration = metrics_family("manifold_http_request_duration_seconds",
                                "Time from the request's first byte to its answer being queued, by method and route "
                                "pattern.",
                                METRIC_HISTOGRAM, duration_buckets,
                                (int)(sizeof duration_buckets / sizeof duration_buckets[0]));
    m_events = metrics_series(metrics_family("manifold_events_received_total",
                                             "Events received by the Tracking API (accepted, blocked, duplicate or "
                                             "rejected).",
                                             METRIC_COUNTER, NULL, 0),
                              0);
    metric_family *d = metrics_family("manifold_deliveries_total",
                                      "Delivery outcomes: events delivered (success), failed attempts that were "
                                      "retried (retried), events given up on (discarded).",
                                      METRIC_COUNTER, NULL, 0);
    static const char *const outcomes[] = {"success", "retried", "discarded"};
    for (int i = 0; i < DELIVERY_NOUTCOMES; i++)
        m_deliveries[i] = metrics_series(d, 1, "outcome", outcomes[i]);
    m_queue = metrics_series(metrics_family("manifold_delivery_queue_depth",
                                            "Events waiting for delivery (new or waiting for a retry).", METRIC_GAUGE,
                                            NULL, 0),
                             0);
    gauge("manifold_db_pool_connections_in_use", "Database connections handed out right now.", pool_value, "u");
    gauge("manifold_db_pool_waiting", "Threads waiting for a database connection right now.", pool_value, "w");
    gauge("manifold_db_pool_connections", "Database connections in the pool.", pool_value, "s");
    metric_gauge_fn(metrics_series(metrics_family("manifold_build_info", "The running release (value 1).",
                                                  METRIC_GAUGE, NULL, 0),
                                   1, "version", MANIFOLD_VERSION),
                    one, NULL);
    gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.",
          start_time_value, NULL);
    metric_gauge_fn(metrics_series(metrics_family("process_cpu_seconds_total",
                                                  "Total user and system CPU time spent, in seconds.", METRIC_COUNTER,
                                                  NULL, 0),
                                   0),
                    cpu_seconds, NULL);
    gauge("process_resident_memory_bytes", "Resident memory size in bytes.", memory_bytes, "r");
    gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", memory_bytes, "v");
    gauge("process_open_fds", "Number of open file descriptors.", open_fds, NULL);
    gauge("process_max_fds", "Maximum number of open file descriptors.", max_fds, NULL);
}

void obs_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_once);
}

void obs_pool_fn(void (*fn)(void *, int *, int *, int *), void *arg)
{
    pool_arg = arg;
    pool_fn = fn;
}

void obs_events_received(uint64_t n) { metric_add(m_events, n); }

void obs_delivery_count(delivery_outcome o, uint64_t events)
{
    if (o >= 0 && o < DELIVERY_NOUTCOMES)
        metric_add(m_deliveries[o], events);
}

void obs_delivery_queue_fn(double (*depth)(void *), void *arg) { metric_gauge_fn(m_queue, depth, arg); }

void obs_render(buf *out) { metrics_render(out); }

/* ---- the answered request: counters and the access line ------------------------------- */

/* A JSON string's inside, for the few request-supplied strings of an access line. */
static size_t json_inside(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; s && *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            out[o++] = '\\', out[o++] = (char)c;
        else if (c < 0x20 || c >= 0x7f)
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c); /* methods are ASCII tokens */
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
    return o;
}

static void access_line(const request *r, const char *route, int status, double ms)
{
    char method[64], line[1024], ts[32];
    json_inside(method, sizeof method, r->method);
    rfc3339(now_ms(), ts);
    int n;
    if (log_json) {
        n = snprintf(line, sizeof line,
                     "{\"time\":\"%s\",\"level\":\"info\",\"msg\":\"access\",\"request_id\":\"%s\","
                     "\"method\":\"%s\",\"route\":\"%s\",\"status\":%d,\"duration_ms\":%.3f,\"token_id\":",
                     ts, r->request_id, method, route, status, ms);
        if (n > 0 && (size_t)n < sizeof line)
            n += r->token_id ? snprintf(line + n, sizeof line - (size_t)n, "%lld}\n", r->token_id)
                             : snprintf(line + n, sizeof line - (size_t)n, "null}\n");
    } else {
        n = snprintf(line, sizeof line, "%s info access request_id=%s method=%s route=%s status=%d duration_ms=%.3f",
                     ts, r->request_id, method, route, status, ms);
        if (n > 0 && (size_t)n < sizeof line)
            n += r->token_id ? snprintf(line + n, sizeof line - (size_t)n, " token_id=%lld\n", r->token_id)
                             : snprintf(line + n, sizeof line - (size_t)n, "\n");
    }
    if (n > 0 && (size_t)n < sizeof line)
        log_write(line, (size_t)n);
}

void obs_http_answer(const request *r, int status)
{
    int route = r->route_id > 0 && r->route_id < nroutes ? r->route_id : 0;
    int method = method_index(r->method);
    if (status < 100 || status > 999)
        status = 999;
    double seconds = (double)(mono_us() - r->start_us) / 1e6;
    /* key: route (10 bits) | method (3 bits) | status (10 bits); status 0 = the histogram */
    metric_add(map_get((uint32_t)route << 14 | (uint32_t)method << 10 | (uint32_t)status | 1u << 30, route, method,
                       status),
               1);
    metric_observe(map_get((uint32_t)route << 14 | (uint32_t)method << 10 | 1u << 30, route, method, 0), seconds);
    if (obs_access_log && log_level >= LOG_INFO)
        access_line(r, routes[route], status, seconds * 1000);
}
