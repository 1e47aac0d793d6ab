/* The source-function webhook, POST /v1/functions/{write_key} (functions-runtime.md §4):
 * the request becomes the §4.2 payload, the source's deployed function runs on it in the
 * Functions runtime, and the events its Segment.* calls emitted enter the same pipeline
 * as Tracking API events (intake_submit: checks, enrichment, Protocols, dedup, the event
 * log and debugger, the counters). The caller is answered per §4.5.
 *
 * Nothing here blocks a server thread on the function: the connection is suspended
 * (http_defer) while it runs, and the runtime's completion callback stores the events
 * with deferred durability and resumes the connection once they are durable.
 *
 * Retries (§4.6): RetryError, a timeout, or no runtime at all are answered 200 and the
 * invocation is retried up to six times, waiting min(20 min, U(60 s, 180 s) × 2^(n−1)),
 * scaled by MANIFOLD_RETRY_TIME_SCALE. The retry schedule lives in this process's memory:
 * a restart forgets pending retries (docs/functions.md). */
#include "functions/runtime.h"
#include "ingest/intake.h"
#include "util/json.h"
#include "util/util.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#define HOOK_BODY_MAX (512 * 1024) /* §4.1: 512 KiB */
#define MAX_RETRIES 6

/* One invocation of a deployed source function: the webhook's first, or a retry. */
typedef struct inv {
    fnhook *h;
    request *req;      /* the webhook request waiting for its answer; NULL for a retry */
    src_info *src;     /* a reference */
    char *instance, *version, *code, *settings, *input;
    char ip[16];
    int attempt;       /* 0: the first */
    int64_t due_ms;    /* retries: when to run (mono_ms) */
    struct inv *next;
} inv;

struct fnhook {
    intake *in;
    double scale;      /* MANIFOLD_RETRY_TIME_SCALE */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    inv *queue;        /* retries waiting for their time */
    int running;       /* retries inside the runtime */
    bool stop;
    pthread_t thread;
};

static void inv_free(inv *v)
{
    if (!v)
        return;
    src_release(v->src);
    free(v->instance), free(v->version), free(v->code), free(v->settings), free(v->input);
    free(v);
}

/* ---- settings --------------------------------------------------------------------------- */

/* {name: value} for the function's settings definitions: the instance's values, else the
 * definition's own value. NULL when a required setting has none (its name in missing). */
static json_t *settings_object(json_t *defs, json_t *values, char *missing, size_t cap)
{
    json_t *out = json_object();
    size_t i;
    json_t *d;
    json_array_foreach(defs, i, d) {
        const char *n = json_string_value(json_object_get(d, "name"));
        if (!n)
            continue;
        json_t *v = json_object_get(values, n);
        if (!v || json_is_null(v))
            v = json_object_get(d, "value");
        bool empty = !v || json_is_null(v) || (json_is_string(v) && !json_string_length(v));
        if (empty && json_is_true(json_object_get(d, "required"))) {
            snprintf(missing, cap, "%s", n);
            json_decref(out);
            return NULL;
        }
        if (v && !json_is_null(v))
            json_object_set(out, n, v);
    }
    return out;
}

/* ---- the answers (§4.5) ------------------------------------------------------------------- */

static bool retryable(const char *name)
{
    return name && (!strcmp(name, "RetryError") || !strcmp(name, "Timeout") || !strcmp(name, "RuntimeUnavailable"));
}

/* functions-runtime.md §4.6, §7: the reason code of a permanent failure. */
static const char *reason_code(const char *name)
{
    if (!name)
        return "bad_request";
    if (!strcmp(name, "ValidationError") || !strcmp(name, "InvalidEventPayload"))
        return "message_rejected";
    if (!strcmp(name, "EventNotSupported"))
        return "unsupported_event_type";
    if (!strcmp(name, "InvalidSettings"))
        return "invalid_settings";
    return "bad_request";
}

static int64_t retry_delay_ms(const fnhook *h, int n)
{
    uint32_t r = randombytes_uniform(120001);
    double d = (60000.0 + r) * (double)(1u << (n - 1));
    if (d > 20 * 60 * 1000.0)
        d = 20 * 60 * 1000.0;
    return (int64_t)(d * h->scale);
}

static void schedule_retry(inv *v)
{
    fnhook *h = v->h;
    v->req = NULL;
    v->attempt++;
    v->due_ms = mono_ms() + retry_delay_ms(h, v->attempt);
    pthread_mutex_lock(&h->mu);
    if (h->stop) {
        pthread_mutex_unlock(&h->mu);
        log_warn("functions: %s: a retry was dropped at shutdown", v->src->name);
        inv_free(v);
        return;
    }
    v->next = h->queue;
    h->queue = v;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

typedef struct waiting {
    fnhook *h;
    request *req;
} waiting;

static void answered(void *arg, bool ok)
{
    waiting *w = arg;
    if (!ok)
        intake_answer(w->req->resp, 503, "unavailable", "the events could not be stored durably; retry");
    intake_slot_release(w->h->in);
    request *req = w->req;
    free(w);
    http_resume(req);
}

/* The emitted events into the pipeline. false when they could not be stored. */
static bool submit(inv *v, const char *output)
{
    json_t *out = output ? json_loads(output, 0, NULL) : NULL;
    json_t *events = json_object_get(out, "events");
    bool ok = true;
    if (json_array_size(events)) {
        json_t *batch = json_pack("{s:O}", "batch", events);
        char *text = json_to_string(batch);
        ok = intake_submit(v->h->in, v->src, text, strlen(text), v->ip[0] ? v->ip : NULL) == ST_OK;
        free(text);
        json_decref(batch);
    }
    /* Segment.set objects go to warehouses, which Manifold does not have: counted, dropped. */
    if (json_array_size(json_object_get(out, "objects")))
        log_debug("functions: %s: %zu objects dropped (no warehouses)", v->src->name,
                  json_array_size(json_object_get(out, "objects")));
    json_decref(out);
    return ok;
}

static void invoke(inv *v);

/* The runtime's completion callback (a runtime thread). */
static void on_done(void *ctx, const fn_result *r)
{
    inv *v = ctx;
    fnhook *h = v->h;
    request *req = v->req;
    bool retry = !r->success && retryable(r->error_name);
    bool dropped = !r->success && r->error_name && !strcmp(r->error_name, "DropEvent");
    if (!req) { /* a retry: nobody waits for an answer */
        if (r->success && !submit(v, r->output))
            log_error("functions: %s: the events of a retried invocation could not be stored", v->src->name);
        if (retry && v->attempt < MAX_RETRIES) {
            schedule_retry(v);
        } else {
            if (retry)
                log_warn("functions: %s: dropped after %d retries (%s)", v->src->name, MAX_RETRIES, r->error_name);
            inv_free(v);
        }
        pthread_mutex_lock(&h->mu);
        h->running--;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        return;
    }
    response *resp = req->resp;
    uint64_t gen = 0;
    if (r->success || dropped) {
        store_defer_begin();
        bool ok = !r->success || submit(v, r->output);
        gen = store_defer_end();
        if (ok)
            intake_answer(resp, 200, NULL, NULL);
        else
            intake_answer(resp, 503, "unavailable", "the events could not be stored; retry");
    } else if (retry) {
        intake_answer(resp, 200, NULL, NULL); /* accepted: Manifold retries (§4.6) */
    } else {
        intake_answer(resp, 400, reason_code(r->error_name), r->error_message ? r->error_message : "error");
    }
    if (retry)
        schedule_retry(v);
    else
        inv_free(v);
    if (gen) {
        waiting *w = malloc(sizeof *w);
        *w = (waiting){h, req};
        store_when_durable(intake_store(h->in), gen, answered, w);
        return;
    }
    intake_slot_release(h->in);
    http_resume(req);
}

static void invoke(inv *v)
{
    fn_call call = {.kind = FN_KIND_SOURCE, .instance = v->instance, .code_version = v->version, .code = v->code,
                    .settings = v->settings, .input = v->input};
    fnrt *rt = intake_runtime(v->h->in);
    if (!rt) {
        fn_result r = {.error_name = (char *)"RuntimeUnavailable", .error_message = (char *)"runtime unavailable",
                       .error_reason = (char *)"runtime unavailable"};
        on_done(v, &r);
        return;
    }
    fnrt_invoke(rt, &call, on_done, v);
}

/* ---- the retry thread ------------------------------------------------------------------------ */

static void *retry_loop(void *arg)
{
    fnhook *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        int64_t now = mono_ms(), next = now + 60000;
        inv **pp = &h->queue, *due = NULL;
        while (*pp) {
            if ((*pp)->due_ms <= now) {
                due = *pp;
                *pp = due->next;
                break;
            }
            if ((*pp)->due_ms < next)
                next = (*pp)->due_ms;
            pp = &(*pp)->next;
        }
        if (due) {
            h->running++;
            pthread_mutex_unlock(&h->mu);
            invoke(due);
            pthread_mutex_lock(&h->mu);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t wait = next - now;
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000)
            ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

fnhook *fnhook_new(intake *in)
{
    fnhook *h = calloc(1, sizeof *h);
    h->in = in;
    const char *s = getenv("MANIFOLD_RETRY_TIME_SCALE");
    h->scale = s && *s ? strtod(s, NULL) : 1.0;
    if (!(h->scale >= 0) || h->scale > 1000)
        h->scale = 1.0;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    pthread_create(&h->thread, NULL, retry_loop, h);
    return h;
}

void fnhook_quiesce(fnhook *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    bool was = h->stop;
    h->stop = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (!was)
        pthread_join(h->thread, NULL);
    pthread_mutex_lock(&h->mu);
    while (h->running > 0)
        pthread_cond_wait(&h->cv, &h->mu);
    inv *q = h->queue;
    h->queue = NULL;
    pthread_mutex_unlock(&h->mu);
    int n = 0;
    for (inv *n2; q; q = n2, n++) {
        n2 = q->next;
        inv_free(q);
    }
    if (n)
        log_warn("functions: %d pending source-function retries dropped at shutdown", n);
}

void fnhook_free(fnhook *h)
{
    if (!h)
        return;
    fnhook_quiesce(h);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

/* ---- the request → the §4.2 payload ---------------------------------------------------------- */

/* A copy of v with every object's keys in order, recursively (§4.2: deployed source
 * functions see the JSON body alphabetised). */
static json_t *sorted(json_t *v)
{
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) json_array_append_new(a, sorted(e));
        return a;
    }
    if (!json_is_object(v))
        return json_incref(v);
    size_t n;
    const char **keys = json_sorted_keys(v, &n);
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, keys[i], sorted(json_object_get(v, keys[i])));
    free(keys);
    return o;
}

static void add_header(void *ctx, const char *name, const char *val)
{
    json_t *h = ctx, *list = json_object_get(h, name);
    if (!list) {
        list = json_array();
        json_object_set_new(h, name, list);
    }
    json_array_append_new(list, json_string(val));
}

/* Percent-encodes s for a URL's query part. */
static void put_enc(buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("-._~", ch))
            buf_putc(b, (char)ch);
        else
            buf_printf(b, "%%%c%c", hex[ch >> 4], hex[ch & 15]);
    }
}

/* The §4.2 input, or NULL after the answer (400/415) is written. */
static char *payload_of(request *req, response *resp)
{
    const char *ct = req_header(req, "Content-Type");
    char media[128] = "";
    if (ct) {
        size_t n = strcspn(ct, ";");
        while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
            n--;
        snprintf(media, sizeof media, "%.*s", (int)n, ct);
    }
    bool json = !strcasecmp(media, "application/json") ||
                (strlen(media) > 5 && !strcasecmp(media + strlen(media) - 5, "+json"));
    bool form = !strcasecmp(media, "application/x-www-form-urlencoded");
    if (media[0] && !json && !form) {
        intake_answer(resp, 415, "unsupported_media_type",
                      "send application/json or application/x-www-form-urlencoded");
        return NULL;
    }
    const char *data = req->body.data ? req->body.data : "";
    size_t len = req->body.len;
    json_t *body = NULL;
    if (json || !media[0]) {
        char err[200];
        json_t *parsed = len ? json_parse_strict(data, len, err, sizeof err) : json_object();
        if (!parsed && json) {
            char msg[256];
            snprintf(msg, sizeof msg, "the body is not valid JSON: %s", err);
            intake_answer(resp, 400, "bad_request", msg);
            return NULL;
        }
        if (parsed) {
            body = sorted(parsed);
            json_decref(parsed);
        }
    }
    if (!body && !(body = json_stringn(data, len))) { /* a form (or untyped text): the raw text (§4.2) */
        intake_answer(resp, 400, "bad_request", "the body is neither JSON nor UTF-8 text");
        return NULL;
    }
    json_t *headers = json_object();
    req_headers_each(req, add_header, headers);
    json_t *query = json_object();
    buf url = {0};
    const char *host = req_header(req, "Host");
    buf_printf(&url, "http://%s%s", host ? host : "localhost", req->path);
    for (int i = 0; i < req->nquery; i++) {
        const char *k = req->query[i].key, *val = req->query[i].val ? req->query[i].val : "";
        json_t *old = json_object_get(query, k);
        if (!old) {
            json_object_set_new(query, k, json_string(val));
        } else {
            if (!json_is_array(old)) {
                json_t *a = json_pack("[O]", old);
                json_object_set_new(query, k, a);
                old = a;
            }
            json_array_append_new(old, json_string(val));
        }
        buf_putc(&url, i ? '&' : '?');
        put_enc(&url, k);
        buf_putc(&url, '=');
        put_enc(&url, val);
    }
    json_t *p = json_pack("{s:{s:o, s:o, s:o, s:s}}", "payload", "body", body, "headers", headers,
                          "queryParameters", query, "url", buf_cstr(&url));
    buf_free(&url);
    char *text = json_to_string(p);
    json_decref(p);
    return text;
}

/* ---- the handler --------------------------------------------------------------------------------- */

static json_t *load_body(txn *t, const char *name, const char *kind, int *rc)
{
    res_row r = {0};
    *rc = store_res_get(t, name, &r);
    json_t *b = NULL;
    if (*rc == ST_OK && strcmp(r.kind, kind))
        *rc = ST_NOT_FOUND;
    if (*rc == ST_OK && !(b = json_loads(r.body, 0, NULL)))
        *rc = ST_ERROR;
    res_row_clear(&r);
    return b;
}

void fnhook_handle(intake *in, request *req, response *resp)
{
    if (strcmp(req->method, "POST")) {
        resp_header(resp, "Allow", "POST");
        return intake_answer(resp, 405, "method_not_allowed", "source functions take POST only");
    }
    if (req->body.len > HOOK_BODY_MAX)
        return intake_answer(resp, 413, "payload_too_large", "the body is larger than 512 KiB");
    src_info *src = NULL;
    int rc = intake_source(in, req->segs[2], &src);
    if (rc == ST_ERROR)
        return intake_answer(resp, 503, "unavailable", "the source cannot be looked up; retry");
    if (rc != ST_OK)
        return intake_answer(resp, 404, "not_found", "no source function has this write key");
    /* The source's function and what it runs: the deployed code, not the latest (§13.4). */
    txn t;
    store_begin(intake_store(in), &t, false);
    json_t *sb = load_body(&t, src->name, "source", &rc), *fb = NULL;
    const char *fname = json_string_value(json_object_get(sb, "function"));
    int rc2 = ST_NOT_FOUND;
    if (rc == ST_OK && fname)
        fb = load_body(&t, fname, "function", &rc2);
    store_end(&t);
    if (rc == ST_ERROR || rc2 == ST_ERROR) {
        intake_answer(resp, 503, "unavailable", "the source cannot be looked up; retry");
        goto out;
    }
    if (!fname || rc != ST_OK) {
        intake_answer(resp, 404, "not_found", "no source function has this write key");
        goto out;
    }
    if (rc2 != ST_OK) {
        intake_answer(resp, 400, "invalid_settings", "the source's function no longer exists");
        goto out;
    }
    char missing[160];
    json_t *vals = settings_object(json_object_get(fb, "settings"), json_object_get(sb, "function_config"), missing,
                                   sizeof missing);
    if (!vals) {
        char msg[256];
        snprintf(msg, sizeof msg, "the required setting '%s' has no value", missing);
        intake_answer(resp, 400, "invalid_settings", msg);
        goto out;
    }
    char *input = payload_of(req, resp);
    if (!input) {
        json_decref(vals);
        goto out;
    }
    if (!intake_slot_take(in)) {
        free(input);
        json_decref(vals);
        resp_header(resp, "Retry-After", "1");
        intake_answer(resp, 503, "unavailable", "too many requests in progress; retry");
        goto out;
    }
    inv *v = calloc(1, sizeof *v);
    v->req = req;
    v->src = src;
    src = NULL; /* the invocation holds the reference now */
    v->instance = strdup(v->src->name);
    buf ver = {0};
    buf_printf(&ver, "%s@%lld", fname, (long long)json_integer_value(json_object_get(fb, "deployed_version")));
    v->version = buf_steal(&ver);
    const char *code = json_string_value(json_object_get(fb, "deployed_code"));
    v->code = strdup(code ? code : "");
    v->settings = json_to_string(vals);
    v->input = input;
    if (!req_peer_ipv4(req, v->ip))
        v->ip[0] = '\0';
    json_decref(vals);
    v->h = intake_hook(in);
    http_defer(req); /* answered by on_done, maybe before invoke returns */
    invoke(v);
out:
    json_decref(sb);
    json_decref(fb);
    src_release(src);
}
