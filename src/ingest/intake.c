/* The Tracking API handler. One request: route → (preflight | 405) → backlog slot →
 * decode → parse/check → write key → enrich → enforce → one transaction (dedup claims,
 * events, counters) → 200 once durable. CPU work (JSON) happens before the transaction,
 * so the SQLite writer slot is held only for the inserts. Nothing is logged per event,
 * and never a write key or an Authorization header. */
#include "ingest/intake.h"
#include "http/durable.h"
#include "ingest/msg.h"
#include "ingest/sources.h"
#include "obs/obs.h"
#include "util/json.h"
#include "util/util.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define COUNTER_SHARDS 64
#define MAX_REASONS 16
#define PRUNE_EVERY 256   /* requests between two steps of the sweep of expired dedup claims */
#define PRUNE_MIN 1000    /* claims a step looks at: at least this many, */
#define PRUNE_MAX 50000   /* twice those made since the last step, at most this many */

struct intake {
    store *st;
    intake_config cfg;
    src_cache *sources;
    fnhook *hook;
    atomic_int inflight;
    atomic_uint requests;
    atomic_llong claims;         /* dedup claims made since the last sweep step */
    pthread_mutex_t sweep_mu;
    char sweep_at[512];          /* the sweep's cursor (store_dedup_prune) */
    int route_ids[IK_BATCH + 1]; /* metrics labels: one per canonical path, short forms included */
    int hook_route_id;           /* the source-function webhook's label */
};

/* Metrics labels of the Tracking API's paths (short forms and /v1/import count as the
 * canonical path they are an alias of). */
static const char *const route_labels[IK_BATCH + 1] = {
    [IK_TRACK] = "/v1/track", [IK_IDENTIFY] = "/v1/identify", [IK_PAGE] = "/v1/page", [IK_SCREEN] = "/v1/screen",
    [IK_GROUP] = "/v1/group", [IK_ALIAS] = "/v1/alias", [IK_BATCH] = "/v1/batch",
};

intake *intake_new(store *st, const intake_config *cfg)
{
    intake *in = calloc(1, sizeof *in);
    in->st = st;
    in->cfg = *cfg;
    in->sources = src_cache_new(st, 1000);
    in->hook = fnhook_new(in);
    pthread_mutex_init(&in->sweep_mu, NULL);
    for (int k = 0; k <= IK_BATCH; k++)
        in->route_ids[k] = obs_route(route_labels[k]);
    in->hook_route_id = obs_route("/v1/functions/{write_key}");
    return in;
}

void intake_quiesce(intake *in)
{
    if (in)
        fnhook_quiesce(in->hook);
}

void intake_free(intake *in)
{
    if (!in)
        return;
    fnhook_free(in->hook);
    src_cache_free(in->sources);
    pthread_mutex_destroy(&in->sweep_mu);
    free(in);
}

store *intake_store(intake *in) { return in->st; }
fnhook *intake_hook(intake *in) { return in->hook; }
struct fnrt *intake_runtime(intake *in) { return in->cfg.functions; }
int intake_source(intake *in, const char *key, src_info **out) { return src_cache_get(in->sources, key, out); }

bool intake_slot_take(intake *in)
{
    if (atomic_fetch_add(&in->inflight, 1) >= in->cfg.backlog) {
        atomic_fetch_sub(&in->inflight, 1);
        return false;
    }
    return true;
}

size_t intake_body_limit(const request *req, void *ctx)
{
    (void)req, (void)ctx;
    /* Twice the batch limit: a compressed body may be a little larger than its content
     * (stored deflate blocks), and everything up to here gets the spec's 400 rather than
     * the transport's 413. */
    return 2 * (size_t)INGEST_BATCH_MAX;
}

bool intake_owns(const request *req) { return req->nseg >= 2 && !strcmp(req->segs[0], "v1"); }

/* ---- answers ---------------------------------------------------------------------------- */

void intake_answer(response *w, int status, const char *code, const char *message)
{
    w->status = status;
    w->body.len = 0;
    if (!code) {
        buf_puts(&w->body, "{\"success\":true}");
        return;
    }
    buf_puts(&w->body, "{\"success\":false,\"code\":");
    json_write_string(&w->body, code, strlen(code));
    buf_puts(&w->body, ",\"message\":");
    json_write_string(&w->body, message, strlen(message));
    buf_putc(&w->body, '}');
}

static void unavailable(response *w, const char *message)
{
    resp_header(w, "Retry-After", "1");
    intake_answer(w, 503, "unavailable", message);
}

static void answer_lost(request *req)
{
    unavailable(req->resp, "the events could not be stored durably; retry");
}

/* §8.4: browsers call from any page; the origin is echoed so credentials may be sent. */
static void cors(const request *req, response *w)
{
    const char *origin = req_header(req, "Origin");
    resp_header(w, "Access-Control-Allow-Origin", origin && *origin ? origin : "*");
    if (origin && *origin) {
        resp_header(w, "Access-Control-Allow-Credentials", "true");
        resp_header(w, "Vary", "Origin");
    }
}

static void preflight(const request *req, response *w)
{
    const char *want = req_header(req, "Access-Control-Request-Headers");
    resp_header(w, "Access-Control-Allow-Methods", "POST, OPTIONS");
    resp_header(w, "Access-Control-Allow-Headers",
                want && *want ? want : "Content-Type, Authorization, X-Retry-Count");
    resp_header(w, "Access-Control-Max-Age", "86400");
    w->status = 204;
    w->body.len = 0;
}

/* ---- one request's work ------------------------------------------------------------------ */

typedef struct reason_count {
    const char *reason;
    long long n;
} reason_count;

typedef struct target_counts {
    char *source; /* heap, or the request's own source name (not owned) when own */
    bool own;
    intake_counts c;
} target_counts;

typedef struct stored {     /* one event to insert */
    size_t ev_off, viol_off; /* into job.text; viol_off SIZE_MAX: "[]" */
    const char *message_id;  /* borrowed from the event document */
    const char *type;
    const char *status;      /* ACCEPTED | BLOCKED (DUPLICATE decided in the transaction) */
    int target;              /* index into job.targets */
    bool dedup;              /* forwarded events skip dedup (§2.5) */
    bool follows;            /* a forward of the previous own event: stored only if that was not a duplicate */
    json_t *doc;             /* forwarded documents (owned), NULL for the request's own */
} stored;

typedef struct job {
    intake *in;
    request *req;
    response *resp;
    ingest_kind kind;
    ingest_req r;
    src_info *src;
    buf body;               /* the decompressed body, when it was compressed */
    buf text;               /* every event's JSON text, NUL-separated */
    stored *ev;
    size_t nev, cap;
    target_counts targets[8];
    int ntargets;
    reason_count reasons[MAX_REASONS];
    int nreasons;
    int64_t now;
} job;

static void add_reason(job *j, const char *reason, long long n)
{
    for (int i = 0; i < j->nreasons; i++)
        if (!strcmp(j->reasons[i].reason, reason)) {
            j->reasons[i].n += n;
            return;
        }
    if (j->nreasons < MAX_REASONS)
        j->reasons[j->nreasons++] = (reason_count){reason, n};
}

static int target_of(job *j, const char *slug)
{
    char name[512];
    snprintf(name, sizeof name, "workspaces/%s/sources/%s", j->src->ws, slug);
    for (int i = 0; i < j->ntargets; i++)
        if (!strcmp(j->targets[i].own ? j->src->name : j->targets[i].source, name))
            return i;
    if (j->ntargets == (int)(sizeof j->targets / sizeof j->targets[0]))
        return -1;
    j->targets[j->ntargets] = (target_counts){.source = strdup(name)};
    return j->ntargets++;
}

static stored *push(job *j)
{
    if (j->nev == j->cap) {
        j->cap = j->cap ? j->cap * 2 : 32;
        j->ev = realloc(j->ev, j->cap * sizeof *j->ev);
    }
    stored *s = &j->ev[j->nev++];
    memset(s, 0, sizeof *s);
    return s;
}

static size_t put_text(job *j, const json_t *v)
{
    size_t off = j->text.len;
    json_write(&j->text, v);
    buf_putc(&j->text, '\0');
    return off;
}

/* §2.5: the blocked event, as is, into the named source, marked with its origin. */
static void forward_blocked(job *j, const json_t *ev, const char *to)
{
    int t = target_of(j, to);
    if (t < 0)
        return;
    json_t *copy = json_deep_copy(ev);
    json_object_set_new(copy, "forwardedFromProject", json_string(j->src->slug));
    stored *s = push(j);
    *s = (stored){.ev_off = put_text(j, copy), .viol_off = SIZE_MAX, .type = json_string_value(json_object_get(copy, "type")),
                  .status = "ACCEPTED", .target = t, .follows = true, .doc = copy};
    s->message_id = json_string_value(json_object_get(copy, "messageId"));
}

/* §2.6: one "Violation Generated" track event per violation into the named source. */
static void forward_violations(job *j, const json_t *ev, const json_t *violations, const char *to)
{
    int t = target_of(j, to);
    size_t i;
    const json_t *v;
    json_array_foreach(violations, i, v) {
        json_t *vev = t < 0 ? NULL : protocols_violation_event(j->src->prot, ev, v, j->in->cfg.server_version);
        if (!vev)
            continue;
        stored *s = push(j);
        *s = (stored){.ev_off = put_text(j, vev), .viol_off = SIZE_MAX, .type = "track", .status = "ACCEPTED",
                      .target = t, .follows = true, .doc = vev};
        s->message_id = json_string_value(json_object_get(vev, "messageId"));
    }
}

static bool enforced_type(ingest_kind k) { return k == IK_TRACK || k == IK_IDENTIFY || k == IK_GROUP; }

/* Enforcement and serialisation of every valid item, before the transaction. */
static void prepare(job *j)
{
    for (size_t i = 0; i < j->r.n; i++) {
        ingest_item *it = &j->r.items[i];
        if (it->reason) {
            add_reason(j, it->reason, 1);
            j->targets[0].c.rejected++;
            continue;
        }
        protocols_result pr = {0};
        if (j->src->prot && enforced_type(it->type))
            protocols_apply(j->src->prot, it->ev, &pr);
        stored *s = push(j);
        s->ev_off = put_text(j, it->ev);
        s->viol_off = SIZE_MAX;
        if (pr.violations && json_array_size(pr.violations))
            s->viol_off = put_text(j, pr.violations);
        s->message_id = json_string_value(json_object_get(it->ev, "messageId"));
        s->type = ingest_type_name(it->type);
        s->status = pr.blocked ? "BLOCKED" : "ACCEPTED";
        s->dedup = true;
        if (pr.blocked && pr.forward_blocked_to && *pr.forward_blocked_to)
            forward_blocked(j, it->ev, pr.forward_blocked_to);
        if (pr.violations && json_array_size(pr.violations) && pr.forward_violations_to &&
            *pr.forward_violations_to)
            forward_violations(j, it->ev, pr.violations, pr.forward_violations_to);
        protocols_result_clear(&pr);
    }
}

/* The counter row a thread adds to. Threads are numbered, from an offset that differs
 * per process, so the threads of every process sharing a database spread over the
 * shards. (pthread_self() is no spread: it is the thread's control block, at the same
 * offset in every stack mapping, so its low bits were equal for every thread, and every
 * intake transaction of every process queued for one row lock.) */
static int counter_shard(void)
{
    static atomic_uint next;
    static _Thread_local int shard = -1;
    if (shard < 0)
        shard = (int)((atomic_fetch_add(&next, 1) + (unsigned)getpid() * 7u) % COUNTER_SHARDS);
    return shard;
}

static bool has_counts(const intake_counts *c)
{
    return c->received || c->accepted || c->blocked || c->duplicate || c->rejected;
}

/* One step of the sweep of expired claims, sized to keep up with the claims made. On
 * PostgreSQL two processes may sweep the same window; deleting is idempotent. */
static int sweep_step(intake *in, txn *t, long long now)
{
    long long made = atomic_exchange(&in->claims, 0);
    long long limit = 2 * made < PRUNE_MIN ? PRUNE_MIN : 2 * made > PRUNE_MAX ? PRUNE_MAX : 2 * made;
    char at[sizeof in->sweep_at];
    pthread_mutex_lock(&in->sweep_mu);
    memcpy(at, in->sweep_at, sizeof at);
    pthread_mutex_unlock(&in->sweep_mu);
    int rc = store_dedup_prune(t, now, (int)limit, at, sizeof at);
    if (rc == ST_OK) {
        pthread_mutex_lock(&in->sweep_mu);
        memcpy(in->sweep_at, at, sizeof at);
        pthread_mutex_unlock(&in->sweep_mu);
    }
    return rc;
}

/* Everything the request changes, in one transaction. */
static int store_all(job *j, const char *source)
{
    txn t;
    if (store_begin(j->in->st, &t, true) != ST_OK)
        return ST_ERROR;
    int rc = ST_OK;
    if (atomic_fetch_add(&j->in->requests, 1) % PRUNE_EVERY == 0)
        rc = sweep_step(j->in, &t, j->now);
    bool last_dup = false;
    long long claims = 0;
    for (size_t i = 0; i < j->nev && rc == ST_OK; i++) {
        stored *s = &j->ev[i];
        target_counts *tc = &j->targets[s->target];
        if (s->follows && last_dup)
            continue; /* a duplicate is dropped silently: nothing is forwarded for it */
        const char *status = s->status;
        if (s->dedup) {
            rc = store_dedup_claim(&t, s->message_id, j->now, j->in->cfg.dedup_ms);
            claims++;
            last_dup = rc == ST_CONFLICT;
            if (last_dup)
                status = "DUPLICATE", rc = ST_OK;
        }
        if (rc != ST_OK)
            break;
        rc = store_event_add(&t, tc->own ? source : tc->source, j->now, s->message_id, s->type, status,
                             s->viol_off == SIZE_MAX ? "[]" : j->text.data + s->viol_off, j->text.data + s->ev_off);
        tc->c.received++;
        if (!strcmp(status, "DUPLICATE"))
            tc->c.duplicate++;
        else if (!strcmp(status, "BLOCKED"))
            tc->c.blocked++;
        else
            tc->c.accepted++;
    }
    atomic_fetch_add(&j->in->claims, claims); /* the sweep sizes its next step by these */
    for (int i = 0; i < j->ntargets && rc == ST_OK; i++)
        if (has_counts(&j->targets[i].c))
            rc = store_counts_add(&t, j->targets[i].own ? source : j->targets[i].source, counter_shard(),
                                  &j->targets[i].c);
    for (int i = 0; i < j->nreasons && rc == ST_OK; i++)
        rc = store_reason_add(&t, source, j->reasons[i].reason, j->reasons[i].n);
    if (rc != ST_OK) {
        store_rollback(&t);
        return ST_ERROR;
    }
    rc = store_commit(&t);
    if (rc == ST_OK) /* the request's own messages; forwarded copies are not received twice */
        obs_events_received((uint64_t)j->targets[0].c.received);
    return rc;
}

/* A request that is answered 200 but whose messages are all dropped (unknown key, batch
 * too large, empty batch) is still counted. */
static void count_dropped(job *j, const char *source, const char *reason, long long messages, long long times)
{
    j->targets[0].c.received += messages;
    j->targets[0].c.rejected += messages;
    add_reason(j, reason, times);
    if (store_all(j, source) != ST_OK)
        unavailable(j->resp, "the request could not be recorded; retry");
}

/* Decoding and parsing; false when the answer (a 400) is written. */
static bool read_body(job *j)
{
    const char *enc = req_header(j->req, "Content-Encoding");
    size_t limit = j->kind == IK_BATCH ? INGEST_BATCH_MAX : INGEST_MSG_MAX;
    const char *data = j->req->body.data ? j->req->body.data : "";
    size_t len = j->req->body.len;
    if (enc && *enc && strcasecmp(enc, "identity")) {
        int rc = ingest_inflate(enc, data, len, limit, &j->body);
        if (rc == 1)
            return intake_answer(j->resp, 400, "payload_too_large", "Exceed payload limit"), false;
        if (rc < 0)
            return intake_answer(j->resp, 400, "bad_request", "the body cannot be decoded with its Content-Encoding"), false;
        data = j->body.data ? j->body.data : "";
        len = j->body.len;
    }
    if (!ingest_parse(&j->r, j->kind, data, len))
        return intake_answer(j->resp, 400, j->r.code, j->r.message), false;
    return true;
}

/* §3: the body's writeKey wins; else the HTTP Basic user name; a Bearer header is ignored. */
static bool write_key(job *j, char *key, size_t cap)
{
    if (j->r.body_key) {
        snprintf(key, cap, "%s", j->r.body_key);
        return true;
    }
    int b = ingest_basic_key(req_header(j->req, "Authorization"), key, cap);
    if (b < 0)
        return intake_answer(j->resp, 400, "bad_request", "malformed Basic authorization"), false;
    if (b == 0 || !*key)
        return intake_answer(j->resp, 400, "missing_write_key", "no write key: send HTTP Basic or a body writeKey"), false;
    return true;
}

/* The request's messages once their source is known: enrichment, enforcement, and the
 * one transaction. */
static void ingest_known(job *j, const char *peer_ip)
{
    if (j->r.drop_reason) {
        count_dropped(j, j->src->name, j->r.drop_reason, (long long)j->r.n, j->r.n ? (long long)j->r.n : 1);
        return;
    }
    ingest_enrich(&j->r, j->now, peer_ip);
    j->targets[0].c.received = 0;
    prepare(j);
    j->targets[0].c.received += j->targets[0].c.rejected; /* rejected messages were received too */
    if (store_all(j, j->src->name) != ST_OK)
        return unavailable(j->resp, "the events could not be stored; retry");
}

static void accept_work(void *arg)
{
    job *j = arg;
    if (!read_body(j))
        return;
    char key[256];
    if (!write_key(j, key, sizeof key))
        return;
    int rc = src_cache_get(j->in->sources, key, &j->src);
    if (rc == ST_ERROR)
        return unavailable(j->resp, "the source cannot be looked up; retry");
    j->now = now_ms();
    j->targets[0] = (target_counts){.own = true};
    j->ntargets = 1;
    if (rc == ST_NOT_FOUND) {
        count_dropped(j, "", "unknown_source", (long long)j->r.n, 1);
        if (j->resp->status == 200 && j->in->cfg.strict_write_keys)
            intake_answer(j->resp, 401, "unknown_source", "the write key matches no source");
        return;
    }
    char ip[16];
    ingest_known(j, req_peer_ipv4(j->req, ip) ? ip : NULL);
}

static void job_free(job *j)
{
    for (size_t i = 0; i < j->nev; i++)
        json_decref(j->ev[i].doc);
    free(j->ev);
    for (int i = 1; i < j->ntargets; i++)
        free(j->targets[i].source);
    ingest_req_free(&j->r);
    src_release(j->src);
    buf_free(&j->body);
    buf_free(&j->text);
}

void intake_slot_release(void *arg)
{
    intake *in = arg;
    atomic_fetch_sub(&in->inflight, 1);
}

int intake_submit(intake *in, src_info *src, const char *body, size_t len, const char *peer_ip)
{
    response scratch = {.status = 200};
    job j = {.in = in, .resp = &scratch, .kind = IK_BATCH, .src = src};
    atomic_fetch_add(&src->refs, 1); /* job_free releases it */
    int rc = ST_OK;
    if (!ingest_parse(&j.r, IK_BATCH, body, len)) {
        /* Only a malformed envelope lands here, and ours never is: count it all as rejected. */
        rc = ST_ERROR;
    } else {
        j.now = now_ms();
        j.targets[0] = (target_counts){.own = true};
        j.ntargets = 1;
        ingest_known(&j, peer_ip);
        if (scratch.status != 200)
            rc = ST_ERROR;
    }
    job_free(&j);
    for (int i = 0; i < scratch.nheaders; i++)
        free(scratch.headers[i].key), free(scratch.headers[i].val);
    buf_free(&scratch.body);
    return rc;
}

void intake_handle(request *req, response *resp, void *ctx)
{
    intake *in = ctx;
    if (req->nseg == 3 && !strcmp(req->segs[1], "functions")) {
        req->route_id = in->hook_route_id;
        return fnhook_handle(in, req, resp);
    }
    ingest_kind kind = req->nseg == 2 ? ingest_kind_of(req->segs[1]) : IK_NONE;
    cors(req, resp);
    if (kind == IK_NONE)
        return intake_answer(resp, 404, "not_found", "no such Tracking API path");
    req->route_id = in->route_ids[kind];
    if (!strcmp(req->method, "OPTIONS"))
        return preflight(req, resp);
    if (strcmp(req->method, "POST")) {
        resp_header(resp, "Allow", "POST, OPTIONS");
        return intake_answer(resp, 405, "method_not_allowed", "use POST");
    }
    /* Overload: a bounded number of requests in the pipeline, the rest are told to retry. */
    if (!intake_slot_take(in))
        return unavailable(resp, "too many requests in progress; retry");
    resp->status = 200;
    intake_answer(resp, 200, NULL, NULL);
    job j = {.in = in, .req = req, .resp = resp, .kind = kind};
    durable_ops ops = {.work = accept_work, .lost = answer_lost, .settled = intake_slot_release, .arg = &j,
                       .settled_arg = in};
    http_answer_durably(in->st, req, &ops);
    job_free(&j);
}
