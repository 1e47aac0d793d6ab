/* libmicrohttpd glue. Known traps of MHD 0.9.75 handled here:
 *  - queueing a response on the first (headers-only) callback turns keep-alive off, so we
 *    only do that for requests we want to close anyway (413, smuggling attempts);
 *  - MHD has no limits by default: we set connection caps, per-IP caps, an idle timeout
 *    and a memory cap, and add our own whole-request deadline (a sweeper thread shuts
 *    down sockets whose request has run too long — an idle timeout alone lets a client
 *    trickle one byte every few seconds forever);
 *  - MHD decodes %XX in the URL before the handler sees it, which would let "%2F" act as
 *    a separator: we install an unescape callback that decodes nothing and decode each
 *    path segment and query value ourselves. */
#include "http/http.h"
#include "util/json.h"
#include "util/util.h"
#include <microhttpd.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>
#include <sodium.h>

typedef struct conn_track {
    int fd;
    _Atomic int64_t window_start; /* when the current request (or idle wait) began */
    atomic_bool killed;
    /* The current request-target in MHD's buffer and its length as read (see on_uri). It
     * lives here, not in a per-request allocation: MHD may drop a request after on_uri
     * without ever calling on_request or on_completed (e.g. 431 while parsing arguments). */
    const char *raw_uri;
    size_t raw_len;
    struct conn_track *prev, *next;
} conn_track;

struct http_server {
    struct MHD_Daemon *d;
    http_config cfg;
    http_handler handler;
    void *ctx;
    int port;
    pthread_mutex_t mu;
    conn_track *conns;
    pthread_t sweeper;
    atomic_bool stopping;
    atomic_int inflight;
    char rid_prefix[9];
    atomic_ullong rid_counter;
};

typedef struct req_ctx {
    request req;
    response resp;
    bool started;  /* the first (headers-only) handler call has happened */
    bool rejected; /* a response was already queued (early error) */
    bool too_big;
    size_t max_body;      /* this request's body limit (see body_limit_for) */
    int split_status;     /* split_path's result, done at the headers stage */
    const char *split_msg;
} req_ctx;

/* ---- request / response helpers ---------------------------------------------------- */

const char *req_header(const request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

typedef struct hdr_iter { void (*fn)(void *, const char *, const char *); void *ctx; } hdr_iter;

static enum MHD_Result each_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    hdr_iter *it = cls;
    if (key)
        it->fn(it->ctx, key, value ? value : "");
    return MHD_YES;
}

void req_headers_each(const request *r, void (*fn)(void *ctx, const char *name, const char *val), void *ctx)
{
    hdr_iter it = {fn, ctx};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, each_header, &it);
}

const char *req_query(const request *r, const char *name)
{
    for (int i = 0; i < r->nquery; i++)
        if (!strcmp(r->query[i].key, name))
            return r->query[i].val;
    return NULL;
}

bool req_peer_ipv4(const request *r, char *out)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr || ci->client_addr->sa_family != AF_INET)
        return false;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ci->client_addr;
    return inet_ntop(AF_INET, &sin->sin_addr, out, 16) != NULL;
}

void http_defer(request *req)
{
    req->deferred = true;
    MHD_suspend_connection(req->conn);
}

void http_resume(request *req)
{
    MHD_resume_connection(req->conn);
}

void resp_header(response *w, const char *name, const char *val)
{
    if (w->nheaders >= HTTP_MAX_HEADERS)
        return;
    w->headers[w->nheaders].key = strdup(name);
    w->headers[w->nheaders].val = strdup(val);
    w->nheaders++;
}

void resp_error(response *w, int status, int code, const char *msg)
{
    w->status = status;
    w->body.len = 0;
    /* Messages may quote request bytes (a path segment, a method): replace anything that
     * is not UTF-8 so the body stays valid JSON. */
    buf clean = {0};
    const unsigned char *m = (const unsigned char *)msg;
    for (size_t i = 0, n = strlen(msg); i < n;) {
        size_t k = utf8_seq(m + i, n - i);
        if (k)
            buf_append(&clean, msg + i, k), i += k;
        else
            buf_puts(&clean, "\xef\xbf\xbd"), i++; /* U+FFFD */
    }
    buf_puts(&w->body, "{\"error\":");
    json_write_string(&w->body, clean.data ? clean.data : "", clean.len);
    buf_printf(&w->body, ",\"code\":%d}", code);
    buf_free(&clean);
}

static void request_free(request *r)
{
    if (r->resp) {
        buf_free(&r->resp->body);
        for (int i = 0; i < r->resp->nheaders; i++)
            free(r->resp->headers[i].key), free(r->resp->headers[i].val);
    }
    free(r->path);
    for (int i = 0; i < r->nseg; i++)
        free(r->segs[i]);
    for (int i = 0; i < r->nquery; i++)
        free(r->query[i].key), free(r->query[i].val);
    buf_free(&r->body);
}

/* ---- parsing ------------------------------------------------------------------------- */

/* Splits the raw path into decoded segments. Returns 0, or an HTTP status on error with
 * *msg set. Empty segments (trailing or doubled slashes) are dropped so "/a/" == "/a". */
static int split_path(request *r, const char **msg)
{
    const char *p = r->path;
    if (*p != '/') {
        *msg = "path must start with /";
        return 400;
    }
    if (strlen(p) > 4096) {
        *msg = "path too long";
        return 414;
    }
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (r->nseg == HTTP_MAX_SEGS) {
            *msg = "not found";
            return 404;
        }
        char *seg = malloc(n + 1);
        long dn = pct_decode(p, n, seg);
        if (dn < 0) {
            free(seg);
            *msg = "invalid percent-encoding in path";
            return 400;
        }
        if (memchr(seg, '\0', (size_t)dn) || memchr(seg, '/', (size_t)dn) ||
            !strcmp(seg, ".") || !strcmp(seg, "..")) {
            free(seg);
            *msg = "invalid path segment";
            return 400;
        }
        r->segs[r->nseg++] = seg;
        p += n;
    }
    return 0;
}

typedef struct query_ctx {
    request *r;
    bool overflow; /* more parameters than HTTP_MAX_QUERY: refused, never silently dropped */
} query_ctx;

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *val)
{
    (void)kind;
    query_ctx *q = cls;
    request *r = q->r;
    if (!key || !*key)
        return MHD_YES; /* "?&type=SOURCE": empty segments are ignored */
    if (r->nquery >= HTTP_MAX_QUERY) {
        q->overflow = true;
        return MHD_YES;
    }
    size_t kl = strlen(key), vl = val ? strlen(val) : 0;
    char *k = malloc(kl + 1), *v = malloc(vl + 1);
    long kn = pct_decode(key, kl, k), vn = val ? pct_decode(val, vl, v) : (v[0] = 0, 0);
    if (kn < 0 || vn < 0 || memchr(k, 0, (size_t)kn) || memchr(v, 0, (size_t)vn)) {
        /* Keep it, flagged: the API answers 400 for a parameter it cannot read. */
        free(k), free(v);
        k = strdup("\x01invalid");
        v = strdup("");
    }
    r->query[r->nquery].key = k;
    r->query[r->nquery].val = v;
    r->nquery++;
    return MHD_YES;
}

static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    return strlen(s);
}

/* ---- response out -------------------------------------------------------------------- */

static enum MHD_Result send_response(http_server *s, struct MHD_Connection *conn, response *w,
                                     const request *r)
{
    size_t len = w->body.len;
    char *body = buf_steal(&w->body);
    struct MHD_Response *mr = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    bool typed = false;
    for (int i = 0; i < w->nheaders; i++)
        typed = typed || !strcasecmp(w->headers[i].key, "Content-Type");
    if (!typed)
        MHD_add_response_header(mr, "Content-Type", "application/json");
    if (r && r->request_id[0])
        MHD_add_response_header(mr, "X-Request-Id", r->request_id);
    for (int i = 0; i < w->nheaders; i++) {
        MHD_add_response_header(mr, w->headers[i].key, w->headers[i].val);
        free(w->headers[i].key), free(w->headers[i].val);
    }
    w->nheaders = 0;
    if (r && s->cfg.on_answer)
        s->cfg.on_answer(r, w->status);
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)w->status, mr);
    MHD_destroy_response(mr);
    return ok;
}

static enum MHD_Result reject_now(http_server *s, struct MHD_Connection *conn, req_ctx *rc,
                                  int status, int code, const char *msg)
{
    response w = {0};
    resp_error(&w, status, code, msg);
    rc->rejected = true;
    /* Tell the client we will not read the rest: MHD closes after this response. */
    resp_header(&w, "Connection", "close");
    return send_response(s, conn, &w, &rc->req);
}

/* ---- libmicrohttpd's own error answers, as JSON --------------------------------------
 * MHD 0.9.75 refuses some requests before (or without) calling us — an oversized header
 * block (431) or request line (414), an unparsable Content-Length (400, 413 past 64 bits),
 * broken chunked framing (400, 413), an unknown HTTP version (505) — through its internal
 * transmit_error_response(), which queues a static HTML (or empty) body. (A missing Host
 * is checked by us instead: see request_line_problem.) It has no hook to change that body, so we use two facts about it:
 *  - it logs "Error processing request (HTTP response code is %u ('%s'))" through the
 *    daemon's logger, on the connection's own thread, right before it builds the response;
 *  - it then queues that response with MHD_queue_response(connection, status, response),
 *    an exported function the library calls through its PLT (it is interposable: Debian's
 *    libmicrohttpd.so.12 carries a JUMP_SLOT relocation for it).
 * So the logger notes the status on a thread-local, and our own MHD_queue_response (this
 * executable's definition wins over the library's) swaps in a JSON body when the call
 * that follows on the same thread carries that status. The connection is the argument
 * MHD passes, so the JSON can never go to another connection; any other call passes
 * straight through to the library. */

#define MHD_ERROR_LOG_PREFIX "Error processing request (HTTP response code is "

typedef enum MHD_Result (*queue_fn)(struct MHD_Connection *, unsigned int, struct MHD_Response *);

static queue_fn real_queue_response;
static pthread_once_t real_queue_once = PTHREAD_ONCE_INIT;

static _Thread_local struct {
    bool armed;          /* MHD just logged an error response on this thread */
    unsigned status;
    const char *html;    /* MHD's static body, for the human-readable part */
    bool garbled;        /* MHD's own sending of it goes wrong (see mhd_error_write_directly) */
    http_server *srv;
} mhd_error;

static bool starts_with(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

static void resolve_real_queue(void)
{
    real_queue_response = (queue_fn)dlsym(RTLD_NEXT, "MHD_queue_response");
}

/* The text of MHD's HTML body (tags dropped, &quot; as "), or a default for the status. */
static void mhd_error_text(unsigned status, const char *html, char *out, size_t cap)
{
    size_t o = 0;
    /* MHD answers an over-long request line with the text of an over-large header block. */
    const char *p = html && status != 414 ? strstr(html, "<body>") : NULL;
    for (p = p ? p + 6 : ""; *p && o + 1 < cap && strncmp(p, "</body>", 7); p++) {
        if (*p == '<') {
            const char *gt = strchr(p, '>');
            p = gt ? gt : p + strlen(p) - 1;
        } else if (!strncmp(p, "&quot;", 6)) {
            out[o++] = '"';
            p += 5;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    if (o)
        return;
    snprintf(out, cap, "%s", status == 431 ? "request header fields too large"
                             : status == 413 ? "request body too large"
                             : status == 414 ? "request target too long"
                             : status == 505 ? "HTTP version not supported" : "malformed request");
}

/* The JSON body and a request id for one of MHD's error answers. */
static void mhd_error_body(unsigned status, const char *html, http_server *s, buf *body, char rid[24])
{
    char msg[256];
    mhd_error_text(status, html, msg, sizeof msg);
    response w = {0};
    resp_error(&w, (int)status, 3, msg);
    *body = w.body;
    rid[0] = '\0';
    if (s)
        snprintf(rid, 24, "%s%012llx", s->rid_prefix, (unsigned long long)atomic_fetch_add(&s->rid_counter, 1));
}

static struct MHD_Response *mhd_error_response(unsigned status, const char *html, http_server *s)
{
    buf body;
    char rid[24];
    mhd_error_body(status, html, s, &body, rid);
    size_t len = body.len;
    struct MHD_Response *mr = MHD_create_response_from_buffer(len, buf_steal(&body), MHD_RESPMEM_MUST_FREE);
    if (!mr)
        return NULL;
    MHD_add_response_header(mr, "Content-Type", "application/json");
    if (rid[0])
        MHD_add_response_header(mr, "X-Request-Id", rid);
    return mr;
}

/* Some of 0.9.75's error paths never send a queued answer right, whatever its body:
 *  - a bad Content-Length: parse_connection_headers() queues the error and builds its
 *    header, then its caller overwrites the connection state and the header is built a
 *    second time, so the client reads a second status line where the body should be;
 *  - a request-target with more arguments than the memory pool holds (431): the caller
 *    of the argument parser ignores the error and overwrites the state, and MHD then
 *    waits for header bytes it has thrown away, sending nothing until the idle timeout.
 * MHD logs a message of its own just before each (see mhd_log); the second one also
 * precedes a header line the pool cannot hold, whose answer would go out right, and is
 * written directly just as well. We write the whole answer
 * on the connection's own socket (MHD passes us the connection; nothing of this request
 * has been sent yet, and a keep-alive connection's previous answer was sent in full
 * before MHD read this request) and shut the sending side: MHD's own copy, if it ever
 * sends one, fails with EPIPE, and the client has its answer and the end of the stream. */
static void mhd_error_write_directly(struct MHD_Connection *conn, unsigned status, const char *html,
                                     http_server *s)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    buf body, out = {0};
    char rid[24];
    mhd_error_body(status, html, s, &body, rid);
    buf_printf(&out, "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%s%s%s\r\n",
               status, MHD_get_reason_phrase_for(status), body.len, rid[0] ? "X-Request-Id: " : "", rid,
               rid[0] ? "\r\n" : "");
    buf_append(&out, body.data, body.len);
    /* A client that stopped reading may get a short answer; it gets the close regardless. */
    ssize_t n = send(ci->connect_fd, out.data, out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    shutdown(ci->connect_fd, SHUT_WR);
    buf_free(&body);
    buf_free(&out);
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *conn, unsigned int status, struct MHD_Response *resp)
{
    pthread_once(&real_queue_once, resolve_real_queue);
    if (mhd_error.armed && mhd_error.status == status) {
        mhd_error.armed = false;
        if (mhd_error.garbled) {
            mhd_error_write_directly(conn, status, mhd_error.html, mhd_error.srv);
            return real_queue_response(conn, status, resp);
        }
        struct MHD_Response *json = mhd_error_response(status, mhd_error.html, mhd_error.srv);
        if (json) {
            enum MHD_Result ok = real_queue_response(conn, status, json);
            MHD_destroy_response(json); /* MHD holds its own reference once queued */
            return ok;
        }
    }
    return real_queue_response(conn, status, resp);
}

/* MHD's logger: forwards every message to our log, and arms the swap above. Any other
 * message disarms it (e.g. "Too late to send an error response", after which MHD queues
 * nothing), so a stale note can never reach a later response. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    /* Before each error answer that MHD would send wrongly or not at all, it logs why
     * (see mhd_error_write_directly). */
    bool was_garbled = mhd_error.garbled;
    mhd_error.armed = false;
    mhd_error.garbled = starts_with(fmt, "Failed to parse `Content-Length'") ||
                        starts_with(fmt, "Too large value of 'Content-Length'") ||
                        starts_with(fmt, "Not enough memory in pool to allocate header record");
    if (starts_with(fmt, MHD_ERROR_LOG_PREFIX)) {
        va_list aq;
        va_copy(aq, ap);
        mhd_error.status = va_arg(aq, unsigned);
        mhd_error.html = va_arg(aq, const char *);
        va_end(aq);
        mhd_error.srv = cls;
        mhd_error.armed = true;
        mhd_error.garbled = was_garbled;
    }
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_info("libmicrohttpd: %s", line);
}

/* The swap needs the library's MHD_queue_response (without it nothing can be queued at
 * all) and its error messages (a build without them logs nothing, and its own errors stay
 * non-JSON). Checked once at start-up so a different build of the library is noticed. */
static bool check_mhd_error_swap(void)
{
    pthread_once(&real_queue_once, resolve_real_queue);
    if (!real_queue_response || real_queue_response == MHD_queue_response)
        return false;
    /* The library's calls resolve through the global scope: ours must be what it finds. */
    if (dlsym(RTLD_DEFAULT, "MHD_queue_response") != (void *)MHD_queue_response)
        log_warn("libmicrohttpd: MHD_queue_response is not interposed; its own error answers stay HTML");
    if (MHD_is_feature_supported(MHD_FEATURE_MESSAGES) != MHD_YES)
        log_warn("libmicrohttpd built without messages: its own error answers stay non-JSON");
    return true;
}

/* What MHD_OPTION_STRICT_FOR_CLIENT 1 would refuse, refused here instead so the answer is
 * our JSON (MHD's own answer for these is garbled, see mhd_error_write_directly): an
 * HTTP/1.1 request without Host (RFC 9112 §3.2), and a space inside the request-target.
 * Strictness 0 checks nothing else less than 1 does in MHD 0.9.75. */
static const char *request_line_problem(struct MHD_Connection *conn, const char *url, const char *version)
{
    if (url && strchr(url, ' '))
        return "space in the request target";
    bool http11 = version && !strncmp(version, "HTTP/1.", 7) && strcmp(version, "HTTP/1.0");
    if (http11 && !MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host"))
        return "HTTP/1.1 request without a Host header";
    return NULL;
}

/* Splits the path at the headers stage (the result is kept for the final call) and asks
 * the application for this route's body limit, so an oversized body is refused before it
 * is read. A path that does not split gets the default limit; it is answered 400 later. */
static size_t body_limit_for(http_server *s, req_ctx *rc)
{
    rc->split_status = split_path(&rc->req, &rc->split_msg);
    if (rc->split_status || !s->cfg.body_limit)
        return s->cfg.max_body;
    return s->cfg.body_limit(&rc->req, s->ctx);
}

static int count_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *val)
{
    (void)kind;
    const char **want = cls; /* want[0] = name, want[1] = first value seen, want[2] = "x" if they differ */
    if (!strcasecmp(key, want[0])) {
        if (!want[1])
            want[1] = val ? val : "";
        else if (strcmp(want[1], val ? val : ""))
            want[2] = "x";
        else
            want[3] = "dup";
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    http_server *s = cls;
    req_ctx *rc = *con_cls;
    if (!rc) {
        rc = calloc(1, sizeof *rc);
        *con_cls = rc;
        atomic_fetch_add(&s->inflight, 1);
    }
    if (!rc->started) {
        rc->started = true;
        request *r = &rc->req;
        r->conn = conn;
        r->method = method;
        r->path = strdup(url);
        r->start_us = mono_us();
        r->start_ms = r->start_us / 1000;
        snprintf(r->request_id, sizeof r->request_id, "%s%012llx", s->rid_prefix,
                 (unsigned long long)atomic_fetch_add(&s->rid_counter, 1));

        /* A raw NUL in the request line: MHD hands us the target as a C string, so
         * "/a\0b" would arrive as "/a". The target sits in MHD's buffer right before the
         * version; if its length as logged does not reach the version, a NUL cut it. */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        conn_track *t = ci ? ci->socket_context : NULL;
        const char *raw_uri = t ? t->raw_uri : NULL;
        size_t raw_len = t ? t->raw_len : 0;
        if (t)
            t->raw_uri = NULL;
        if (raw_uri == url && version && version != raw_uri + raw_len + 1)
            return reject_now(s, conn, rc, 400, 3, "NUL byte in the request line");
        const char *line_problem = request_line_problem(conn, url, version);
        if (line_problem)
            return reject_now(s, conn, rc, 400, 3, line_problem);

        /* Request smuggling guards: conflicting Content-Length headers, or a length
         * together with chunked encoding, are refused and the connection closed. */
        const char *cl[4] = {"Content-Length", NULL, NULL, NULL};
        MHD_get_connection_values(conn, MHD_HEADER_KIND, (MHD_KeyValueIterator)count_header, cl);
        const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
        if (cl[2] || cl[3])
            return reject_now(s, conn, rc, 400, 3, "conflicting Content-Length headers");
        if (cl[1] && te)
            return reject_now(s, conn, rc, 400, 3, "Content-Length together with Transfer-Encoding");
        rc->max_body = body_limit_for(s, rc);
        if (cl[1]) {
            char *end;
            unsigned long long n = strtoull(cl[1], &end, 10);
            if (*end || end == cl[1])
                return reject_now(s, conn, rc, 400, 3, "invalid Content-Length");
            if (n > rc->max_body)
                return reject_now(s, conn, rc, 413, 3, "request body too large");
        }
        return MHD_YES;
    }
    if (rc->rejected) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (rc->req.deferred) { /* resumed: the answer may leave now */
        rc->rejected = true;
        return send_response(s, conn, &rc->resp, &rc->req);
    }
    if (*upload_size) {
        if (mono_ms() - rc->req.start_ms > (int64_t)s->cfg.request_deadline_s * 1000)
            return MHD_NO; /* too slow: drop the connection */
        /* A body without Content-Length (chunked) that outgrows the limit: MHD 0.9.75
         * cannot queue a response mid-upload, so the rest is discarded (bounded by the
         * request deadline) and the 413 goes out once the upload ends. */
        if (rc->too_big || rc->req.body.len + *upload_size > rc->max_body) {
            rc->too_big = true;
            *upload_size = 0;
            return MHD_YES;
        }
        buf_append(&rc->req.body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (rc->too_big)
        return reject_now(s, conn, rc, 413, 3, "request body too large");

    request *r = &rc->req;
    response *w = &rc->resp;
    w->status = 200;
    r->resp = w;
    const char *msg = rc->split_msg;
    int st = rc->split_status; /* split in body_limit_for */
    if (!st) {
        query_ctx q = {.r = r};
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, &q);
        if (q.overflow)
            resp_error(w, 400, 3, "too many query parameters");
        else
            s->handler(r, w, s->ctx);
    } else {
        resp_error(w, st, st == 404 ? 5 : 3, msg);
    }
    if (r->deferred)
        return MHD_YES; /* suspended: sent when resumed (above) */
    rc->rejected = true; /* a response is queued; ignore any further calls */
    return send_response(s, conn, w, r);
}

/* Called by MHD with the raw request-target before it parses it: remembers where the target
 * lies (see the NUL check in on_request). The request context itself starts in on_request,
 * whose requests always reach on_completed. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_track *t = ci ? ci->socket_context : NULL;
    if (t) {
        t->raw_uri = uri;
        t->raw_len = strlen(uri);
    }
    return NULL;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    http_server *s = cls;
    req_ctx *rc = *con_cls;
    if (rc) {
        request_free(&rc->req);
        free(rc);
        *con_cls = NULL;
        atomic_fetch_sub(&s->inflight, 1);
    }
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci && ci->socket_context)
        atomic_store(&((conn_track *)ci->socket_context)->window_start, mono_ms());
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_track *t = calloc(1, sizeof *t);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        t->fd = ci ? ci->connect_fd : -1;
        atomic_store(&t->window_start, mono_ms());
        pthread_mutex_lock(&s->mu);
        t->next = s->conns;
        if (s->conns)
            s->conns->prev = t;
        s->conns = t;
        pthread_mutex_unlock(&s->mu);
        *socket_context = t;
    } else if (*socket_context) {
        conn_track *t = *socket_context;
        pthread_mutex_lock(&s->mu);
        if (t->prev)
            t->prev->next = t->next;
        else
            s->conns = t->next;
        if (t->next)
            t->next->prev = t->prev;
        pthread_mutex_unlock(&s->mu);
        free(t);
        *socket_context = NULL;
    }
}

/* Enforces the whole-request deadline: a connection whose current request (or the wait
 * for its next one) has lasted longer than the deadline is shut down. shutdown() does not
 * close the descriptor, so MHD notices the dead socket and cleans up in its own thread. */
static void *sweeper(void *arg)
{
    http_server *s = arg;
    int64_t limit = (int64_t)s->cfg.request_deadline_s * 1000;
    while (!atomic_load(&s->stopping)) {
        usleep(250 * 1000);
        int64_t now = mono_ms();
        pthread_mutex_lock(&s->mu);
        for (conn_track *t = s->conns; t; t = t->next) {
            if (t->fd >= 0 && !atomic_load(&t->killed) && now - atomic_load(&t->window_start) > limit) {
                atomic_store(&t->killed, true);
                shutdown(t->fd, SHUT_RDWR);
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

http_server *http_start(const http_config *cfg, http_handler h, void *ctx, char *err, size_t errlen)
{
    http_server *s = calloc(1, sizeof *s);
    s->cfg = *cfg;
    s->handler = h;
    s->ctx = ctx;
    pthread_mutex_init(&s->mu, NULL);
    unsigned char rnd[4];
    randombytes_buf(rnd, sizeof rnd);
    snprintf(s->rid_prefix, sizeof s->rid_prefix, "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);

    struct sockaddr_storage ss = {0};
    socklen_t sl = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
    struct addrinfo *ai = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", cfg->port);
    if (getaddrinfo(cfg->host, portstr, &hints, &ai) != 0 || !ai) {
        snprintf(err, errlen, "cannot parse listen address %s (use a numeric IP)", cfg->host);
        free(s);
        return NULL;
    }
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    sl = ai->ai_addrlen;
    /* MHD_USE_ITC: MHD_quiesce_daemon (graceful stop) fails without it in this mode. */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    freeaddrinfo(ai);
    (void)sl;
    if (!check_mhd_error_swap()) {
        snprintf(err, errlen, "libmicrohttpd's MHD_queue_response cannot be found");
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    s->d = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, s,
        /* first, so that even the option parser's own messages go through it */
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, cfg->threads,
        MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->max_header_bytes,
        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        /* 0, not 1: request_line_problem() makes the checks 1 adds, answering JSON. */
        MHD_OPTION_STRICT_FOR_CLIENT, 0,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024,
        MHD_OPTION_END);
    if (!s->d) {
        snprintf(err, errlen, "cannot listen on %s:%d (address in use or not permitted)", cfg->host, cfg->port);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    pthread_create(&s->sweeper, NULL, sweeper, s);
    return s;
}

int http_port(http_server *s) { return s->port; }

void http_stop(http_server *s)
{
    if (!s)
        return;
    /* Stop accepting; give in-flight requests up to the request deadline to finish.
     * MHD hands the listen socket back: shut it down now so new clients are refused
     * rather than left waiting in the backlog, and close it once MHD has stopped. */
    MHD_socket lfd = MHD_quiesce_daemon(s->d);
    if (lfd != MHD_INVALID_SOCKET)
        shutdown(lfd, SHUT_RDWR);
    int64_t until = mono_ms() + (int64_t)s->cfg.request_deadline_s * 1000;
    while (atomic_load(&s->inflight) > 0 && mono_ms() < until)
        usleep(10 * 1000);
    atomic_store(&s->stopping, true);
    pthread_join(s->sweeper, NULL);
    MHD_stop_daemon(s->d);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
