/* http — the libmicrohttpd glue. It turns a connection's bytes into one `request`
 * (method, raw path split into decoded segments, decoded query, headers, body) and a
 * `response` back into bytes. It knows nothing about routes, auth or JSON shapes;
 * it enforces the transport limits: body size, per-request deadline, connection caps. */
#ifndef MANIFOLD_HTTP_H
#define MANIFOLD_HTTP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"

#define HTTP_MAX_SEGS 16
#define HTTP_MAX_QUERY 32
#define HTTP_MAX_HEADERS 12

typedef struct http_kv { char *key, *val; } http_kv;

typedef struct request {
    struct MHD_Connection *conn;
    const char *method;
    char *path;                    /* raw path as received (not decoded) */
    char *segs[HTTP_MAX_SEGS];     /* each segment percent-decoded separately */
    int nseg;
    http_kv query[HTTP_MAX_QUERY]; /* decoded; empty segments of "?&a=b" are dropped */
    int nquery;
    buf body;
    char request_id[24];
    int64_t start_ms;
    int64_t start_us;              /* the same moment in microseconds (request durations) */
    int route_id;                  /* set by the application: its route's metrics label (0: none) */
    long long token_id;            /* set by the API layer: the access token's id, for the access log */
    const char *client_ip;
    void *auth;                    /* set by the API layer: the authenticated principal */
    struct response *resp;         /* the answer being built for this request */
    bool deferred;                 /* http_defer was called: the answer waits for http_resume */
} request;

typedef struct response {
    int status;
    buf body;
    http_kv headers[HTTP_MAX_HEADERS];
    int nheaders;
} response;

const char *req_header(const request *r, const char *name);
const char *req_query(const request *r, const char *name);
/* Calls fn for every request header, in the order received (repeated names repeat). */
void req_headers_each(const request *r, void (*fn)(void *ctx, const char *name, const char *val), void *ctx);
/* The peer's IPv4 address in dotted form (out holds 16); false for IPv6 or unknown. */
bool req_peer_ipv4(const request *r, char *out);
/* Adds a response header; both strings are copied. A Content-Type set here replaces the
 * default application/json. */
void resp_header(response *w, const char *name, const char *val);

typedef void (*http_handler)(request *req, response *resp, void *ctx);

typedef struct http_config {
    const char *host;
    int port;
    size_t max_body;            /* bodies above this get 413 before they are read */
    /* Optional: the body limit for one request, asked once its headers are in (method and
     * decoded path segments are set, the body is not) with the handler's ctx. Bodies above
     * it get 413 before they are read. NULL: max_body for every request. */
    size_t (*body_limit)(const request *req, void *ctx);
    unsigned max_connections;   /* total */
    unsigned max_per_ip;        /* per client address */
    unsigned idle_timeout_s;    /* no bytes for this long: closed */
    unsigned request_deadline_s;/* a whole request (headers to last body byte) */
    unsigned threads;
    size_t max_header_bytes;    /* per connection read buffer; larger headers get 431 */
    /* Optional: called once per answer this layer queues (status known, the request's
     * fields as the handler left them), on the thread that queues it: metrics, access log. */
    void (*on_answer)(const request *req, int status);
} http_config;

typedef struct http_server http_server;

http_server *http_start(const http_config *cfg, http_handler h, void *ctx, char *err, size_t errlen);
/* The port actually bound (useful with port 0). */
int http_port(http_server *);
/* Stops accepting, lets in-flight requests finish, frees everything. */
void http_stop(http_server *);

/* Deferred answers. A handler whose answer may not leave yet (its write is not yet
 * durable) fills resp in as usual and calls http_defer: the connection is suspended, so
 * its thread goes on serving other connections, and the answer is sent as resp stands
 * when http_resume is called — from any thread, exactly once, possibly before the
 * handler has returned. */
void http_defer(request *req);
void http_resume(request *req);

/* Writes a JSON error body {"error": msg, "code": code} with the given status. */
void resp_error(response *w, int status, int code, const char *msg);

#endif
