/* bare_mhd — the ceiling of the HTTP layer for bench/intake/run.sh: a libmicrohttpd server
 * in manifold's threading mode (MHD_USE_EPOLL_INTERNAL_THREAD with a thread pool, the same
 * per-connection memory limit), which reads every POST body whole into a growing buffer,
 * as manifold does before it parses, and answers 200 {"success":true}. No routing, no auth,
 * no JSON, no storage.
 *
 *   bare_mhd PORT THREADS [CONNECTION_MEMORY_LIMIT [MAX_BODY]]
 *     listens on 127.0.0.1:PORT until SIGINT/SIGTERM; THREADS is the pool size (run.sh
 *     passes manifold's own count); CONNECTION_MEMORY_LIMIT is MHD's per-connection pool
 *     (manifold's --max-header-bytes; default 32768); a body above MAX_BODY (default 1 MiB)
 *     gets 413. On exit it prints "bare_mhd: N requests, M body bytes" on stderr.
 *
 * Build: cc -O2 -o bare_mhd bare_mhd.c $(pkg-config --cflags --libs libmicrohttpd) -lpthread */
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char OK_BODY[] = "{\"success\":true}";
static const char TOO_LARGE[] = "{\"success\":false,\"message\":\"payload too large\"}";
static size_t max_body = 1u << 20;
static atomic_ullong n_requests, n_bytes;

typedef struct {
    char *data;
    size_t len, cap;
    int too_large;
} req_body;

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls, (void)url, (void)version;
    req_body *b = *con_cls;
    if (b == NULL) { /* headers only: set up the body buffer */
        b = calloc(1, sizeof *b);
        if (!b)
            return MHD_NO;
        *con_cls = b;
        return MHD_YES;
    }
    if (*upload_size) { /* a chunk of the body: keep all of it */
        size_t n = *upload_size;
        *upload_size = 0;
        if (b->too_large || b->len + n > max_body) {
            b->too_large = 1;
            return MHD_YES;
        }
        if (b->len + n + 1 > b->cap) {
            size_t cap = b->cap ? b->cap : 4096;
            while (cap < b->len + n + 1)
                cap *= 2;
            char *d = realloc(b->data, cap);
            if (!d)
                return MHD_NO;
            b->data = d;
            b->cap = cap;
        }
        memcpy(b->data + b->len, upload, n);
        b->len += n;
        b->data[b->len] = '\0';
        return MHD_YES;
    }
    if (strcmp(method, "POST") != 0)
        return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "", 0);
    if (b->too_large)
        return answer(conn, MHD_HTTP_CONTENT_TOO_LARGE, TOO_LARGE, sizeof TOO_LARGE - 1);
    atomic_fetch_add(&n_requests, 1);
    atomic_fetch_add(&n_bytes, b->len);
    return answer(conn, MHD_HTTP_OK, OK_BODY, sizeof OK_BODY - 1);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    req_body *b = *con_cls;
    if (b) {
        free(b->data);
        free(b);
        *con_cls = NULL;
    }
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: bare_mhd PORT THREADS [CONNECTION_MEMORY_LIMIT [MAX_BODY]]\n");
        return 2;
    }
    long threads = atol(argv[2]);
    if (threads < 1)
        threads = sysconf(_SC_NPROCESSORS_ONLN);
    size_t mem = argc >= 4 ? (size_t)atol(argv[3]) : 32768;
    if (argc >= 5)
        max_body = (size_t)atol(argv[4]);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC, (uint16_t)atoi(argv[1]), NULL, NULL,
        on_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
        MHD_OPTION_CONNECTION_LIMIT, 4096u,
        MHD_OPTION_CONNECTION_TIMEOUT, 60u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bare_mhd: cannot listen on 127.0.0.1:%s\n", argv[1]);
        return 1;
    }
    fprintf(stderr, "bare_mhd: listening on 127.0.0.1:%s (%ld threads, %zu bytes per connection)\n", argv[1],
            threads, mem);
    int sig;
    sigwait(&sigs, &sig);
    MHD_stop_daemon(d);
    fprintf(stderr, "bare_mhd: %llu requests, %llu body bytes\n", (unsigned long long)atomic_load(&n_requests),
            (unsigned long long)atomic_load(&n_bytes));
    return 0;
}
