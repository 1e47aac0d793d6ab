/* libcurl multi glue for the delivery engine (outbound.h). */
#include "deliver/outbound.h"
#include "util/util.h"
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_HOPS 5
#define MAX_READ (64 * 1024) /* response bytes kept (only counted: nothing stores samples yet) */

typedef struct oreq {
    outbound *o;
    CURL *h;
    char *url;
    struct curl_slist *hdrs;
    const char *body;
    size_t len;
    long timeout_ms;
    int hops;
    bool refused;          /* the address policy refused a socket of this transfer */
    size_t read;
    out_done_fn done;
    void *arg;
    out_result res;        /* for results decided without a transfer */
    struct oreq *next;     /* ready list, or the list of transfers in flight */
    struct oreq *prev;
} oreq;

typedef struct xdone {
    out_done_fn done;
    void *arg;
    out_result res;
    struct xdone *next;
} xdone;

struct outbound {
    CURLM *m;
    pthread_mutex_t mu;    /* guards the three below: runtime threads hand results over */
    pthread_cond_t cv;
    int ext_running;       /* begun, not yet answered */
    xdone *xhead, **xtail; /* answered, waiting for out_run */
    const cidr_list *allow, *deny;
    oreq *ready;           /* finished without a transfer, reported by the next out_run */
    oreq *flying;          /* transfers added to the multi handle */
    CURL *spare[256];      /* finished easy handles kept for reuse (curl_easy_reset) */
    int nspare;
    int active;
    atomic_llong refused;
};

static void global_init(void)
{
    static atomic_int done;
    if (!atomic_exchange(&done, 1))
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

outbound *out_new(const cidr_list *allow, const cidr_list *deny)
{
    global_init();
    outbound *o = calloc(1, sizeof *o);
    o->m = curl_multi_init();
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    o->xtail = &o->xhead;
    o->allow = allow;
    o->deny = deny;
    curl_multi_setopt(o->m, CURLMOPT_MAXCONNECTS, 1024L);
    return o;
}

static void unlink_flying(oreq *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        r->o->flying = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->next = r->prev = NULL;
}

static void oreq_free(oreq *r)
{
    if (r->h && r->o->nspare < (int)(sizeof r->o->spare / sizeof r->o->spare[0]))
        r->o->spare[r->o->nspare++] = r->h;
    else if (r->h)
        curl_easy_cleanup(r->h);
    curl_slist_free_all(r->hdrs);
    free(r->url);
    free(r);
}

/* Answers that did not come from a transfer (requests finished before they started, and
 * invocations completed on other threads) reach their owners here, on the engine's
 * thread: with their own result, or with `forced` (out_free's OUT_DROP). */
static void hand_over(outbound *o, const out_result *forced)
{
    while (o->ready) {
        oreq *r = o->ready;
        o->ready = r->next;
        r->done(r->arg, forced ? forced : &r->res);
        oreq_free(r);
    }
    pthread_mutex_lock(&o->mu);
    xdone *x = o->xhead;
    o->xhead = NULL;
    o->xtail = &o->xhead;
    pthread_mutex_unlock(&o->mu);
    while (x) {
        xdone *n = x->next;
        x->done(x->arg, forced ? forced : &x->res);
        free(x);
        x = n;
    }
}

void out_free(outbound *o)
{
    if (!o)
        return;
    /* Transfers still running are abandoned; their owners hear OUT_DROP so that they
     * can free what they hold. */
    out_result drop = {.kind = OUT_DROP, .code = "ABANDONED", .retry_after_ms = -1};
    while (o->flying) {
        oreq *r = o->flying;
        unlink_flying(r);
        curl_multi_remove_handle(o->m, r->h);
        r->done(r->arg, &drop);
        oreq_free(r);
    }
    /* An invocation still running holds a pointer to o: wait for its answer (bounded by
     * the runtime's time limit). */
    pthread_mutex_lock(&o->mu);
    while (o->ext_running)
        pthread_cond_wait(&o->cv, &o->mu);
    pthread_mutex_unlock(&o->mu);
    hand_over(o, &drop);
    while (o->nspare)
        curl_easy_cleanup(o->spare[--o->nspare]);
    curl_multi_cleanup(o->m);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

long long out_refused(outbound *o) { return atomic_load(&o->refused); }

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    oreq *r = clientp;
    (void)purpose;
    unsigned char bytes[16];
    int fam = 0;
    if (a->family == AF_INET) {
        memcpy(bytes, &((struct sockaddr_in *)&a->addr)->sin_addr, 4);
        fam = 4;
    } else if (a->family == AF_INET6) {
        memcpy(bytes, &((struct sockaddr_in6 *)&a->addr)->sin6_addr, 16);
        fam = 6;
    }
    if (!fam || !outbound_allowed(r->o->allow, r->o->deny, fam, bytes)) {
        r->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    oreq *r = ud;
    size_t len = size * n;
    r->read = r->read + len > MAX_READ ? MAX_READ : r->read + len;
    return len;
}

static void finish_now(oreq *r, outcome_kind kind, const char *code)
{
    r->res = (out_result){.kind = kind, .retry_after_ms = -1};
    snprintf(r->res.code, sizeof r->res.code, "%s", code);
    r->next = r->o->ready;
    r->o->ready = r;
}

/* Scheme check before anything is sent: only http and https (delivery.md §4.1). */
static bool url_ok(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    bool ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host && *host &&
              (!strcmp(scheme, "http") || !strcmp(scheme, "https"));
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

static void start(oreq *r)
{
    if (!url_ok(r->url))
        return finish_now(r, OUT_DISCARD, "INVALID_SETTINGS");
    if (!r->h && r->o->nspare)
        r->h = r->o->spare[--r->o->nspare];
    CURL *h = r->h ? r->h : curl_easy_init();
    if (r->h)
        curl_easy_reset(h);
    r->h = h;
    r->refused = false;
    r->read = 0;
    curl_easy_setopt(h, CURLOPT_URL, r->url);
    curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* 307/308 by hand: every hop is checked again */
    curl_easy_setopt(h, CURLOPT_PROXY, "");          /* a proxy would hide the real address from the policy */
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, r);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    if (curl_multi_add_handle(r->o->m, h) != CURLM_OK)
        return finish_now(r, OUT_RETRY, "ECONNABORTED");
    r->o->active++;
    r->prev = NULL;
    r->next = r->o->flying;
    if (r->next)
        r->next->prev = r;
    r->o->flying = r;
}

void out_post(outbound *o, const char *url, const char *const *headers, size_t nheaders, const char *body,
              size_t len, long timeout_ms, out_done_fn done, void *arg)
{
    oreq *r = calloc(1, sizeof *r);
    r->o = o;
    r->url = strdup(url);
    r->body = body;
    r->len = len;
    r->timeout_ms = timeout_ms;
    r->done = done;
    r->arg = arg;
    for (size_t i = 0; i < nheaders; i++)
        r->hdrs = curl_slist_append(r->hdrs, headers[i]);
    start(r);
}

/* A transport failure → §4.1's codes. */
static void classify_error(oreq *r, CURLcode rc, out_result *res)
{
    long oserr = 0;
    curl_easy_getinfo(r->h, CURLINFO_OS_ERRNO, &oserr);
    const char *code = "ECONNABORTED";
    outcome_kind kind = OUT_RETRY;
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        code = "ETIMEDOUT";
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        code = "ENOTFOUND";
        break;
    case CURLE_COULDNT_CONNECT:
        if (r->refused) {
            kind = OUT_DISCARD, code = "INVALID_SETTINGS";
            atomic_fetch_add(&r->o->refused, 1);
        } else if (oserr == EHOSTUNREACH || oserr == ENETUNREACH) {
            code = "EHOSTUNREACH";
        } else if (oserr == ETIMEDOUT) {
            code = "ETIMEDOUT";
        } else {
            code = "ECONNREFUSED";
        }
        break;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        code = "ECONNRESET";
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        kind = OUT_DISCARD, code = "TLS_ERROR";
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        kind = OUT_DISCARD, code = "INVALID_SETTINGS";
        break;
    default:
        break;
    }
    if (r->refused && kind != OUT_DISCARD) { /* e.g. every address refused after a fallback */
        kind = OUT_DISCARD, code = "INVALID_SETTINGS";
        atomic_fetch_add(&r->o->refused, 1);
    }
    res->kind = kind;
    snprintf(res->code, sizeof res->code, "%s", code);
}

/* A finished transfer: classified, or restarted towards a 307/308 Location. Returns true
 * when the request is over (res filled). */
static bool settle(oreq *r, CURLcode rc, out_result *res)
{
    *res = (out_result){.retry_after_ms = -1};
    if (rc != CURLE_OK) {
        classify_error(r, rc, res);
        return true;
    }
    long status = 0;
    curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
    res->status = status;
    struct curl_header *hd;
    if (curl_easy_header(r->h, "Retry-After", 0, CURLH_HEADER, -1, &hd) == CURLHE_OK)
        res->retry_after_ms = parse_retry_after(hd->value, now_ms());
    outcome_kind k = classify_status(status);
    if (k == OUT_REDIRECT) {
        char *loc = NULL;
        curl_easy_getinfo(r->h, CURLINFO_REDIRECT_URL, &loc);
        if (loc && *loc && r->hops < MAX_HOPS) {
            char *next = strdup(loc);
            free(r->url);
            r->url = next;
            r->hops++;
            return false;
        }
        k = OUT_DISCARD;
    }
    res->kind = k;
    if (k != OUT_SUCCESS)
        snprintf(res->code, sizeof res->code, "%ld", status);
    return true;
}

void out_ext_begin(outbound *o)
{
    pthread_mutex_lock(&o->mu);
    o->ext_running++;
    pthread_mutex_unlock(&o->mu);
}

void out_ext_done(outbound *o, out_done_fn done, void *arg, const out_result *r)
{
    xdone *x = malloc(sizeof *x);
    if (x)
        *x = (xdone){.done = done, .arg = arg, .res = *r};
    pthread_mutex_lock(&o->mu);
    if (x) {
        *o->xtail = x;
        o->xtail = &x->next;
    }
    o->ext_running--;
    curl_multi_wakeup(o->m); /* under the lock: out_free may free o once it is released */
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

int out_run(outbound *o, int wait_ms)
{
    pthread_mutex_lock(&o->mu);
    bool ext = o->xhead != NULL;
    pthread_mutex_unlock(&o->mu);
    if (o->ready || ext)
        wait_ms = 0;
    int running = 0;
    curl_multi_poll(o->m, NULL, 0, wait_ms, NULL);
    curl_multi_perform(o->m, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(o->m, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *h = msg->easy_handle;
        CURLcode rc = msg->data.result;
        oreq *r = NULL;
        curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&r);
        curl_multi_remove_handle(o->m, h);
        unlink_flying(r);
        o->active--;
        out_result res;
        if (!settle(r, rc, &res)) {
            start(r); /* the next hop: same method, headers and body */
            continue;
        }
        r->done(r->arg, &res);
        oreq_free(r);
    }
    hand_over(o, NULL);
    return o->active;
}

void out_wakeup(outbound *o) { curl_multi_wakeup(o->m); }
