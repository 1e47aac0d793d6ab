/* ceiling — the fastest a libmicrohttpd server can answer on this box: the same threading
 * mode as manifold (MHD_USE_EPOLL_INTERNAL_THREAD with a pool of nproc threads), no
 * routing, no auth, no JSON, one fixed body read from a file at start-up. Used by
 * bench/http/run.sh as "peer (a)": manifold's throughput is reported as a share of this.
 *
 *   ceiling PORT BODY_FILE [THREADS [POOL]]
 *     listens on 127.0.0.1:PORT until SIGINT/SIGTERM with a pool of THREADS threads (default:
 *     nproc; run.sh passes manifold's own count) and, if given, POOL bytes of
 *     MHD_OPTION_CONNECTION_MEMORY_LIMIT per connection (default: MHD's own, 32 KiB)
 *
 * Build: cc -O2 -o ceiling ceiling.c $(pkg-config --cflags --libs libmicrohttpd) */
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *body;
static size_t body_len;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls, (void)url, (void)version, (void)upload;
    static int marker;
    /* The usual MHD idiom (and manifold's): the first call only sees the headers; the
     * response is queued on the second, so keep-alive stays on. */
    if (*con_cls == NULL) {
        *con_cls = &marker;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0)
        return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(body_len, body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: ceiling PORT BODY_FILE [THREADS [CONNECTION_MEMORY_LIMIT]]\n");
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
        threads = 2;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t)atoi(argv[1]), NULL, NULL,
        on_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
        MHD_OPTION_CONNECTION_LIMIT, 1024u,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        argc == 5 ? MHD_OPTION_CONNECTION_MEMORY_LIMIT : MHD_OPTION_END, (size_t)(argc == 5 ? atol(argv[4]) : 0),
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
    free(body);
    return 0;
}
