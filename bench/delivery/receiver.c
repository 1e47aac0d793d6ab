/* A fast webhook receiver for bench/delivery/run.sh: libmicrohttpd (epoll thread pool),
 * answers every POST 200 {"ok":true} at once, and records for each request the time from
 * the event's receivedAt (set by the intake when it accepted the event) to its arrival
 * here: intake-to-receipt latency. GET /stats prints
 *   count=N first_ms=T last_ms=T p50_ms=X p99_ms=Y max_ms=Z
 * (latencies in ms, from a 1 ms histogram up to 60 s); GET /reset starts afresh. GET /down
 * makes every POST answer 503 (a destination that is down: nothing is counted) until
 * GET /up.
 *   receiver PORT THREADS */
#define _GNU_SOURCE
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HMAX 60000
static atomic_long hist[HMAX + 1];
static atomic_long count, first_ms, last_ms;
static atomic_int down;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "receivedAt":"2026-12-05T09:00:00.123Z" → ms since the epoch, or -1 */
static long long received_at(const char *b, size_t n)
{
    const char *k = memmem(b, n, "\"receivedAt\":\"", 14);
    if (!k || (size_t)(b + n - k) < 14 + 20)
        return -1;
    k += 14;
    struct tm tm = {0};
    const char *e = strptime(k, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!e)
        return -1;
    long long ms = (long long)timegm(&tm) * 1000;
    if (*e == '.') {
        int d = 0, scale = 100;
        for (e++; *e >= '0' && *e <= '9'; e++, scale /= 10)
            if (scale)
                d += (*e - '0') * scale;
        ms += d;
    }
    return ms;
}

typedef struct req { char *b; size_t n; } req;

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *data, size_t *size, void **ptr)
{
    (void)cls, (void)version;
    req *r = *ptr;
    if (!r) {
        *ptr = calloc(1, sizeof *r);
        return MHD_YES;
    }
    if (*size) {
        r->b = realloc(r->b, r->n + *size + 1);
        memcpy(r->b + r->n, data, *size);
        r->n += *size;
        r->b[r->n] = 0;
        *size = 0;
        return MHD_YES;
    }
    char out[256];
    const char *body = "{\"ok\":true}";
    unsigned status = 200;
    if (!strcmp(method, "GET") && !strcmp(url, "/stats")) {
        long total = atomic_load(&count), acc = 0, p50 = -1, p99 = -1, mx = 0;
        for (int i = 0; i <= HMAX; i++) {
            long h = atomic_load(&hist[i]);
            if (!h)
                continue;
            acc += h;
            mx = i;
            if (p50 < 0 && acc * 100 >= total * 50)
                p50 = i;
            if (p99 < 0 && acc * 100 >= total * 99)
                p99 = i;
        }
        snprintf(out, sizeof out, "count=%ld first_ms=%ld last_ms=%ld p50_ms=%ld p99_ms=%ld max_ms=%ld\n", total,
                 atomic_load(&first_ms), atomic_load(&last_ms), p50, p99, mx);
        body = out;
    } else if (!strcmp(method, "GET") && !strcmp(url, "/reset")) {
        for (int i = 0; i <= HMAX; i++)
            atomic_store(&hist[i], 0);
        atomic_store(&count, 0);
        atomic_store(&first_ms, 0);
        atomic_store(&last_ms, 0);
    } else if (!strcmp(method, "GET") && (!strcmp(url, "/down") || !strcmp(url, "/up"))) {
        atomic_store(&down, url[1] == 'd');
    } else if (!strcmp(method, "POST") && atomic_load(&down)) {
        status = 503;
        body = "{\"ok\":false}";
    } else if (!strcmp(method, "POST")) {
        long long now = now_ms(), at = r->b ? received_at(r->b, r->n) : -1;
        long lat = at < 0 ? HMAX : now - at < 0 ? 0 : now - at > HMAX ? HMAX : (long)(now - at);
        atomic_fetch_add(&hist[lat], 1);
        long prev = 0;
        atomic_compare_exchange_strong(&first_ms, &prev, (long)now);
        atomic_store(&last_ms, (long)now);
        atomic_fetch_add(&count, 1);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void done(void *cls, struct MHD_Connection *c, void **ptr, enum MHD_RequestTerminationCode t)
{
    (void)cls, (void)c, (void)t;
    req *r = *ptr;
    if (r) {
        free(r->b);
        free(r);
    }
    *ptr = NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t)atoi(argv[1]),
                                            NULL, NULL, answer, NULL, MHD_OPTION_THREAD_POOL_SIZE,
                                            (unsigned)atoi(argv[2]), MHD_OPTION_CONNECTION_LIMIT, 4096U,
                                            MHD_OPTION_NOTIFY_COMPLETED, done, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cannot listen on %s\n", argv[1]);
        return 1;
    }
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    int sig;
    sigwait(&s, &sig);
    MHD_stop_daemon(d);
    return 0;
}
