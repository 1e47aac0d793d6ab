/* ceiling — the fastest a libmicrohttpd server can answer on this box: the same threading
 * mode as manifold (MHD_USE_EPOLL_INTERNAL_THREAD with a pool of nproc threads), no
 * routing, no auth, no JSON, one fixed body read from a file at start-up. GET answers it
 * at once; POST first reads the whole request body into a growing buffer, as manifold
 * does before it parses (a body above MAX_BODY gets 413). Used as "peer (a)" by
 * bench/http/run.sh (GETs) and bench/intake/run.sh (POSTed events): manifold's
 * throughput is reported as a share of this.
 *
 *   ceiling PORT BODY_FILE [THREADS [POOL [MAX_BODY]]]
 *     listens on 127.0.0.1:PORT until SIGINT/SIGTERM with a pool of THREADS threads (default:
 *     nproc; run.sh passes manifold's own count), POOL bytes of
 *     MHD_OPTION_CONNECTION_MEMORY_LIMIT per connection (0 or absent: MHD's own, 32 KiB)
 *     and MAX_BODY (default 1 MiB). On exit it prints "ceiling: N POST requests, M body
 *     bytes" on stderr.
 *
 * Build: cc -O2 -o ceiling ceiling.c $(pkg-config --cflags --libs libmicrohttpd) */
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

static char *body;
static size_t body_len;
static size_t max_body = 1u << 20;
static atomic_ullong n_posts, n_bytes;
static const char TOO_LARGE[] = "{\"success\":false,\"message\":\"payload too large\"}";

typedef struct { /* one request's body, kept whole */
    char *data;
    size_t len, cap;
    int too_large;
} req_body;

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *b, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)b, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static int keep(req_body *b, const char *chunk, size_t n)
{
    if (b->too_large || b->len + n > max_body) {
        b->too_large = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, chunk, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls, (void)url, (void)version;
    /* The usual MHD idiom (and manifold's): the first call only sees the headers; the
     * response is queued once the body is in, so keep-alive stays on. */
    req_body *b = *con_cls;
    if (b == NULL) {
        if (!(b = calloc(1, sizeof *b)))
            return MHD_NO;
        *con_cls = b;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        return keep(b, upload, n) < 0 ? MHD_NO : MHD_YES;
    }
    if (!strcmp(method, "POST")) {
        if (b->too_large)
            return answer(conn, MHD_HTTP_CONTENT_TOO_LARGE, TOO_LARGE, sizeof TOO_LARGE - 1);
        atomic_fetch_add(&n_posts, 1);
        atomic_fetch_add(&n_bytes, b->len);
    } else if (strcmp(method, "GET") != 0)
        return MHD_NO;
    return answer(conn, MHD_HTTP_OK, body, body_len);
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
    if (argc < 3 || argc > 6) {
        fprintf(stderr, "usage: ceiling PORT BODY_FILE [THREADS [CONNECTION_MEMORY_LIMIT [MAX_BODY]]]\n");
        return 2;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    body = malloc(n > 0 ? (size_t)n : 1);
    body_len = fread(body, 1, n > 0 ? (size_t)n : 0, f);
    fclose(f);

    long threads = argc >= 4 ? atol(argv[3]) : sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = sysconf(_SC_NPROCESSORS_ONLN);
    size_t pool = argc >= 5 ? (size_t)atol(argv[4]) : 0;
    if (argc >= 6)
        max_body = (size_t)atol(argv[5]);
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
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        pool ? MHD_OPTION_CONNECTION_MEMORY_LIMIT : MHD_OPTION_END, pool,
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "ceiling: cannot listen on 127.0.0.1:%s\n", argv[1]);
        return 1;
    }
    fprintf(stderr, "ceiling: listening on 127.0.0.1:%s (%ld threads, %zu-byte body)\n", argv[1],
            threads, body_len);
    int sig;
    sigwait(&sigs, &sig);
    MHD_stop_daemon(d);
    fprintf(stderr, "ceiling: %llu POST requests, %llu body bytes\n", (unsigned long long)atomic_load(&n_posts),
            (unsigned long long)atomic_load(&n_bytes));
    free(body);
    return 0;
}
