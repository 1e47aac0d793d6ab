/* The delivery engine (deliver.h). One thread, one libcurl multi handle, one lane per
 * destination. A lane is either idle or working one batch: it leases its cursor, reads
 * the retries that are due and the events after its cursor, decides D1–D5 for each event
 * (filtered events are only counted), freezes the payload, starts every attempt at once
 * (the batch bounds the in-flight requests of one destination), and when the last attempt
 * has answered commits outcomes, retry rows, metrics and the new cursor in one
 * transaction. A slow or dead destination only holds its own lane: the thread never
 * waits on a network answer. */
#include "deliver/deliver.h"
#include "deliver/outbound.h"
#include "deliver/policy.h"
#include "deliver/target.h"
#include "filters/filters.h"
#include "store/delivery_log.h"
#include "store/delivery_metrics.h"
#include "util/buf.h"
#include "util/json.h"
#include "obs/obs.h"
#include "util/util.h"
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH_DEFAULT 200     /* events and retries one lane works at once (MANIFOLD_DELIVERY_BATCH):
                               * also the bound on one destination's requests in flight */
#define BATCH (d->batch)
#define POLL_MS 10            /* a lane that just found work looks again this soon; */
#define IDLE_MAX_MS 160       /* each empty look doubles the wait up to this (bounds idle load) */
#define RETRY_POLL_MS 100     /* ... and for due retries this often */
#define LEASE_MS 6000         /* a cursor lease; renewed every LEASE_MS / 3. After kill -9 a
                               * restarted process waits this long for its old leases */
#define REFRESH_MS 1000       /* configuration re-read at least this often */
#define REFRESH_MIN_MS 20     /* and, on a config change, at most this often: a burst of writes
                               * (thousands of creates per second) is one re-read, not one each */
#define CLEANUP_MS 10000      /* cursors of deleted destinations removed this often */

enum { F_INTEGRATIONS, F_UNSUPPORTED, F_RULES, F_NO_INTEGRATION, F_COUNT };
static const char *const filtered_reason[F_COUNT] = {"FILTERED_BY_INTEGRATIONS_OBJECT", "UNSUPPORTED_EVENT_TYPE",
                                                     "FILTERED_BY_RULES", "NO_INTEGRATION"};

typedef struct lane lane;

typedef struct item {
    dattempt a;            /* first: the driver hands it back */
    lane *l;
    char *body;
    size_t len;
    char *message_id;
    long long retry_id;    /* 0: a new event (attempt 1) */
    int attempts_before;
    int64_t received_ms;
    bool done;
    out_result res;
    int64_t end_ms;
} item;

struct lane {
    char *name, *source;
    bool exists;           /* seen in the last configuration read */
    bool gone;             /* a configuration read did not see it */
    char created[32];      /* the destination's create_time: another one means re-created */
    bool deliverable;      /* D1 enabled and D2 cloud mode */
    const cat_item *cat;
    const target_driver *drv;
    json_t *config;        /* the settings object (map key → value) */
    char *fn_name;         /* a destination-function instance: its function (delivery.md §8) */
    char *fn_code, *fn_version, *fn_settings; /* read with the configuration; see dfunction */
    dfunction fn;
    dest_filter **filters;
    size_t nfilters;
    char *filter_sig;      /* "name:version;..." of the compiled filters */
    bool filters_seen;     /* the last configuration read listed filters for it */
    bool busy;             /* a batch is being worked */
    item *items;
    size_t nitems;
    int pending;
    long long filtered[F_COUNT];
    uint64_t outcomes[DELIVERY_NOUTCOMES]; /* of the batch, for /metrics once it commits */
    bool read_any;         /* the batch moved the cursor */
    bool full;             /* the batch was full: look again at once */
    dl_pos pos, next_pos;
    bool leased;
    int64_t lease_renew, next_poll, next_retry_poll;
    int idle_ms;           /* the current wait between empty looks */
    int64_t started_ms;    /* when the batch being worked was read (debug timing) */
    int64_t skip_write_next; /* lane_skip: next unconditional write */
    int cap;               /* items has room for this many (the batch size) */
    lane *next;
};

/* Events waiting for a retry over every destination, refreshed every CLEANUP_MS; static so
 * that a /metrics scrape may read it at any time, even after deliver_stop. */
static _Atomic double queue_depth;
static double queue_depth_of(void *arg)
{
    (void)arg;
    return atomic_load(&queue_depth);
}

struct deliver {
    store *st;
    const catalog *cat;
    fnrt *rt;              /* runs destination functions; NULL: they answer invalid_settings */
    outbound *out;
    retry_policy rp;
    cidr_list allow, deny;
    char owner[40];
    lane *lanes;
    uint64_t epoch;
    int64_t next_refresh, last_refresh, next_cleanup;
    atomic_bool stop;
    pthread_t thread;
    dm_batch *dm;          /* the metrics of the batch being committed */
    int batch;             /* BATCH */
};

/* ---- configuration ----------------------------------------------------------------------- */

static lane *lane_get(deliver *d, const char *name, const char *source)
{
    for (lane *l = d->lanes; l; l = l->next)
        if (!strcmp(l->name, name))
            return l;
    lane *l = calloc(1, sizeof *l);
    l->name = strdup(name);
    l->source = strdup(source);
    l->next = d->lanes;
    d->lanes = l;
    return l;
}

static void lane_filters_free(lane *l)
{
    for (size_t i = 0; i < l->nfilters; i++)
        dest_filter_free(l->filters[i]);
    free(l->filters);
    l->filters = NULL;
    l->nfilters = 0;
}

static int dest_row(void *ctx, const res_row *r)
{
    deliver *d = ctx;
    json_t *body = json_loads(r->body, 0, NULL);
    if (!body)
        return 0;
    lane *l = lane_get(d, r->name, r->parent);
    l->exists = true;
    /* Deleted and created again (maybe between two reads): its cursor is a new row, to be
     * leased afresh, not worked from the position this lane remembers. */
    if (l->gone || strcmp(l->created, r->create_time)) {
        l->gone = false;
        l->leased = false;
        snprintf(l->created, sizeof l->created, "%s", r->create_time);
    }
    const char *catname = json_string_value(json_object_get(body, "catalog_name"));
    l->cat = catalog_find(&d->cat->destinations, catname ? catname : strrchr(r->name, '/') + 1);
    l->drv = target_for(l->cat ? l->cat->slug : NULL);
    const char *mode = json_string_value(json_object_get(body, "connection_mode"));
    l->deliverable = json_is_true(json_object_get(body, "enabled")) && catalog_cloud_mode(l->cat, mode);
    free(l->fn_name);
    l->fn_name = NULL;
    const char *fn = json_string_value(json_object_get(body, "function"));
    if (fn) { /* a function runs in the cloud unless the instance says DEVICE */
        l->fn_name = strdup(fn);
        l->drv = &target_function;
        l->deliverable = json_is_true(json_object_get(body, "enabled")) && !(mode && !strcmp(mode, "DEVICE"));
    }
    json_decref(l->config);
    l->config = json_incref(json_object_get(body, "config"));
    if (!l->config)
        l->config = json_object();
    json_decref(body);
    return 0;
}

typedef struct filter_set {
    deliver *d;
    const char *parent;    /* the destination being collected */
    buf sig;
    json_t *bodies;
} filter_set;

static void filters_flush(filter_set *fs)
{
    if (!fs->parent)
        return;
    lane *l = NULL;
    for (lane *x = fs->d->lanes; x; x = x->next)
        if (!strcmp(x->name, fs->parent))
            l = x;
    const char *sig = buf_cstr(&fs->sig);
    if (l && (!l->filter_sig || strcmp(l->filter_sig, sig))) {
        lane_filters_free(l);
        size_t n = json_array_size(fs->bodies);
        l->filters = calloc(n ? n : 1, sizeof *l->filters);
        for (size_t i = 0; i < n; i++) /* a filter that no longer compiles drops everything (fail closed) */
            l->filters[l->nfilters++] = dest_filter_compile_stored(json_array_get(fs->bodies, i));
        free(l->filter_sig);
        l->filter_sig = strdup(sig);
    }
    if (l)
        l->filters_seen = true;
    fs->sig.len = 0;
    json_array_clear(fs->bodies);
    free((char *)fs->parent);
    fs->parent = NULL;
}

static int filter_row(void *ctx, const res_row *r)
{
    filter_set *fs = ctx;
    if (!fs->parent || strcmp(fs->parent, r->parent)) {
        filters_flush(fs);
        fs->parent = strdup(r->parent);
    }
    json_t *b = json_loads(r->body, 0, NULL);
    if (!b) /* unreadable: fail closed like a filter that does not compile */
        b = json_pack("{s:b, s:s, s:[]}", "enabled", 1, "if", "(", "actions");
    json_array_append_new(fs->bodies, b);
    buf_printf(&fs->sig, "%s:%lld;", r->name, r->version);
    return 0;
}

/* {name: value} for the function's settings definitions: the instance's values, else the
 * definition's own value (functions-runtime.md §8). NULL when a required one has none. */
static char *fn_settings(json_t *defs, json_t *values)
{
    json_t *out = json_object();
    size_t i;
    json_t *def;
    json_array_foreach(defs, i, def) {
        const char *n = json_string_value(json_object_get(def, "name"));
        if (!n)
            continue;
        json_t *v = json_object_get(values, n);
        if (!v || json_is_null(v))
            v = json_object_get(def, "value");
        bool empty = !v || json_is_null(v) || (json_is_string(v) && !json_string_length(v));
        if (empty && json_is_true(json_object_get(def, "required"))) {
            json_decref(out);
            return NULL;
        }
        if (v && !json_is_null(v))
            json_object_set(out, n, v);
    }
    char *s = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    return s;
}

/* What a function instance runs now: the function's deployed code and settings, read in
 * the configuration's transaction (a DESTINATION function's code is live at once, §13.4). */
static void lane_function(deliver *d, txn *t, lane *l)
{
    free(l->fn_code), free(l->fn_version), free(l->fn_settings);
    l->fn_code = l->fn_version = l->fn_settings = NULL;
    res_row r = {0};
    json_t *fb = NULL;
    if (store_res_get(t, l->fn_name, &r) == ST_OK && !strcmp(r.kind, "function"))
        fb = json_loads(r.body, 0, NULL);
    const char *code = json_string_value(json_object_get(fb, "deployed_code"));
    if (code) {
        buf v = {0};
        buf_printf(&v, "%s@%lld", l->fn_name, (long long)json_integer_value(json_object_get(fb, "deployed_version")));
        l->fn_version = (char *)buf_cstr(&v);
        l->fn_code = strdup(code);
        l->fn_settings = fn_settings(json_object_get(fb, "settings"), l->config);
    }
    json_decref(fb);
    res_row_clear(&r);
    l->fn = (dfunction){.rt = d->rt, .instance = l->name, .version = l->fn_version, .code = l->fn_code,
                        .settings = l->fn_settings};
}

static void refresh(deliver *d)
{
    txn t;
    if (store_begin(d->st, &t, false) != ST_OK)
        return;
    for (lane *l = d->lanes; l; l = l->next)
        l->exists = l->filters_seen = false;
    int rc = store_dl_destinations(&t, dest_row, d);
    for (lane *l = d->lanes; l && rc == ST_OK; l = l->next)
        if (l->exists && l->fn_name)
            lane_function(d, &t, l);
    filter_set fs = {.d = d, .bodies = json_array()};
    if (rc == ST_OK)
        rc = store_dl_filters(&t, filter_row, &fs);
    filters_flush(&fs);
    buf_free(&fs.sig);
    json_decref(fs.bodies);
    store_end(&t);
    if (rc != ST_OK)
        return;
    for (lane *l = d->lanes; l; l = l->next)
        if (!l->exists)
            l->gone = true;
    /* A destination whose filters were all deleted is not in the filter query at all. */
    for (lane *l = d->lanes; l; l = l->next)
        if (!l->filters_seen && l->filter_sig) {
            lane_filters_free(l);
            free(l->filter_sig);
            l->filter_sig = NULL;
        }
}

/* ---- D3, D4: integrations object, supported types ---------------------------------------- */

static bool truthy(const json_t *v)
{
    if (json_is_true(v))
        return true;
    if (json_is_object(v) || json_is_array(v))
        return true;
    if (json_is_string(v))
        return json_string_length(v) && strcmp(json_string_value(v), "false");
    return false;
}

/* tracking-api.md §10's decision procedure. */
static bool integrations_allow(const lane *l, const json_t *ev)
{
    bool def = !(l->cat && !strcmp(l->cat->slug, "salesforce"));
    json_t *in = json_object_get(ev, "integrations");
    if (!json_is_object(in))
        return def;
    if (l->cat) {
        json_t *v = json_object_get(in, l->cat->display_name);
        if (v)
            return truthy(v);
        size_t i;
        json_t *n;
        json_array_foreach(json_object_get(l->cat->delivery, "previous_names"), i, n) {
            v = json_is_string(n) ? json_object_get(in, json_string_value(n)) : NULL;
            if (v)
                return truthy(v);
        }
    }
    json_t *all = json_object_get(in, "All");
    return all ? truthy(all) : def;
}

static bool type_supported(const lane *l, const char *type)
{
    static const char *const six[] = {"track", "identify", "page", "screen", "group", "alias"};
    bool known = false;
    for (size_t i = 0; i < 6; i++)
        known |= type && !strcmp(type, six[i]);
    if (!known)
        return false;
    if (l->drv && l->drv->all_types)
        return true;
    json_t *m = json_object_get(json_object_get(l->cat ? l->cat->delivery : NULL, "methods"), type);
    return json_is_true(m);
}

/* ---- a lane's batch ----------------------------------------------------------------------- */

static void item_done(dattempt *a, const out_result *r)
{
    item *it = (item *)a;
    it->res = *r;
    it->done = true;
    it->end_ms = now_ms();
    it->l->pending--;
}

static item *add_item(lane *l)
{
    item *it = &l->items[l->nitems++];
    memset(it, 0, sizeof *it);
    it->l = l;
    return it;
}

static int retry_row(void *ctx, const dl_retry *r)
{
    lane *l = ctx;
    if ((int)l->nitems >= l->cap)
        return 1;
    item *it = add_item(l);
    it->retry_id = r->id;
    it->attempts_before = r->attempts;
    it->received_ms = r->received_ms;
    it->message_id = strdup(r->message_id);
    it->body = malloc(r->body_len + 1);
    memcpy(it->body, r->body, r->body_len + 1);
    it->len = r->body_len;
    return 0;
}

/* D3–D5 for one stored event; a survivor becomes an item with its frozen payload (D7). */
static int dl_event_row(void *ctx, const dl_event *e)
{
    lane *l = ctx;
    l->read_any = true;
    snprintf(l->next_pos.xid, sizeof l->next_pos.xid, "%s", e->xid);
    l->next_pos.id = e->id;
    if (strcmp(e->status, "ACCEPTED"))
        return 0; /* blocked (filtered at source) or duplicate: never delivered */
    json_t *ev = json_loadb(e->event, e->event_len, 0, NULL);
    if (!ev)
        return 0;
    int reason = -1;
    json_t *out = NULL;
    if (!integrations_allow(l, ev))
        reason = F_INTEGRATIONS;
    else if (!type_supported(l, json_string_value(json_object_get(ev, "type"))))
        reason = F_UNSUPPORTED;
    else if (l->nfilters && !(out = dest_filters_apply(l->filters, l->nfilters, ev, false)))
        reason = F_RULES;
    else if (!l->drv)
        reason = F_NO_INTEGRATION;
    if (reason >= 0) {
        l->filtered[reason]++;
        json_decref(out);
        json_decref(ev);
        return 0;
    }
    item *it = add_item(l);
    it->received_ms = e->received_ms;
    const char *mid = json_string_value(json_object_get(ev, "messageId"));
    it->message_id = strdup(mid ? mid : "");
    if (out && out != ev) { /* a filter changed it: the changed event is what is frozen */
        buf b = {0};
        json_write(&b, out);
        it->len = b.len;
        it->body = (char *)buf_cstr(&b);
    } else {
        it->body = malloc(e->event_len + 1);
        memcpy(it->body, e->event, e->event_len);
        it->body[e->event_len] = '\0';
        it->len = e->event_len;
    }
    json_decref(out);
    json_decref(ev);
    return 0;
}

static void lane_reset(lane *l)
{
    for (size_t i = 0; i < l->nitems; i++) {
        free(l->items[i].body);
        free(l->items[i].message_id);
    }
    l->nitems = 0;
    l->pending = 0;
    memset(l->filtered, 0, sizeof l->filtered);
    l->read_any = l->full = false;
    l->busy = false;
}

static bool lease(deliver *d, lane *l, int64_t now)
{
    if (l->leased && now < l->lease_renew)
        return true;
    txn t;
    if (store_begin(d->st, &t, true) != ST_OK)
        return false;
    dl_pos pos;
    int rc = store_dl_lease(&t, l->name, l->source, d->owner, now, now + LEASE_MS, &pos);
    if (rc == ST_OK && store_commit(&t) == ST_OK) {
        if (!l->leased)
            l->pos = pos; /* the committed position: ours is the same while we hold it */
        l->leased = true;
        l->lease_renew = now + LEASE_MS / 3;
        return true;
    }
    if (rc != ST_OK)
        store_rollback(&t);
    l->leased = false;
    return false;
}

/* A destination that must get nothing (disabled, device mode): its cursor follows the
 * head and its due retries are dropped uncounted (delivery.md §1, W14, W16). */
static void lane_skip(deliver *d, lane *l, int64_t now)
{
    /* Cheap while nothing changes: a write only when the log moved, or now and then for
     * retries that fell due meanwhile. */
    if (now < l->skip_write_next) {
        txn r;
        dl_pos head;
        if (store_begin(d->st, &r, false) != ST_OK)
            return;
        int rc = store_dl_head(&r, l->source, &head);
        store_end(&r);
        if (rc != ST_OK || (head.id == l->pos.id && !strcmp(head.xid, l->pos.xid)) || head.id == 0)
            return;
    }
    l->skip_write_next = now + LEASE_MS / 3;
    txn t;
    if (store_begin(d->st, &t, true) != ST_OK)
        return;
    dl_pos head;
    int rc = store_dl_head(&t, l->source, &head);
    if (rc == ST_OK && head.id == 0)
        head = l->pos;
    if (rc == ST_OK)
        rc = store_dl_retries_drop_due(&t, l->name, now);
    if (rc == ST_OK)
        rc = store_dl_advance(&t, l->name, d->owner, &head, now + LEASE_MS);
    if (rc == ST_OK && store_commit(&t) == ST_OK) {
        l->pos = head;
        l->lease_renew = now + LEASE_MS / 3;
        return;
    }
    if (rc != ST_OK)
        store_rollback(&t);
    l->leased = false;
}

static void lane_poll(deliver *d, lane *l, int64_t now)
{
    if (!lease(d, l, now)) {
        l->next_poll = now + LEASE_MS / 3;
        return;
    }
    if (!l->deliverable) {
        lane_skip(d, l, now);
        l->next_poll = now + 250;
        return;
    }
    if (!l->items) {
        l->items = calloc((size_t)BATCH, sizeof *l->items);
        l->cap = BATCH;
    }
    txn t;
    if (store_begin(d->st, &t, false) != ST_OK) {
        l->next_poll = now + 1000;
        return;
    }
    int rc = ST_OK;
    if (now >= l->next_retry_poll) {
        rc = store_dl_retries_due(&t, l->name, now, BATCH, retry_row, l);
        l->next_retry_poll = (int)l->nitems == BATCH ? now : now + (l->idle_ms > RETRY_POLL_MS ? l->idle_ms : RETRY_POLL_MS);
    }
    l->next_pos = l->pos;
    int room = BATCH - (int)l->nitems;
    if (rc == ST_OK && room > 0)
        rc = store_dl_events(&t, l->source, &l->pos, room, dl_event_row, l);
    store_end(&t);
    if (rc != ST_OK) {
        lane_reset(l);
        l->next_poll = now + 1000;
        return;
    }
    if (store_config_epoch(d->st) != d->epoch) {
        /* A change committed since this lane's configuration was read (a filter added just
         * now): the rows read may be events accepted after it. Read them again once the
         * configuration is re-read, so no event goes out under rules older than itself. */
        lane_reset(l);
        l->next_poll = l->next_retry_poll = now;
        return;
    }
    if (!l->nitems && !l->read_any) {
        l->idle_ms = l->idle_ms < POLL_MS ? POLL_MS : l->idle_ms * 2 > IDLE_MAX_MS ? IDLE_MAX_MS : l->idle_ms * 2;
        l->next_poll = now + l->idle_ms;
        return;
    }
    l->idle_ms = POLL_MS;
    l->full = (int)l->nitems == BATCH || l->read_any;
    l->busy = true;
    l->started_ms = now;
    l->pending = (int)l->nitems;
    for (size_t i = 0; i < l->nitems; i++) {
        item *it = &l->items[i];
        it->a = (dattempt){.body = it->body, .len = it->len, .config = l->config,
                            .fn = l->fn_name ? &l->fn : NULL, .done = item_done};
        if (!l->drv) { /* a retry of a destination whose type lost its driver (catalog changed) */
            out_result r = {.kind = OUT_DISCARD, .code = "INVALID_SETTINGS", .retry_after_ms = -1};
            item_done(&it->a, &r);
            continue;
        }
        l->drv->send(d->out, &it->a);
    }
}

/* Counters go to the batch (one upsert per distinct row at commit, store_dm_flush). */
static void metric(dm_batch *b, lane *l, const char *prefix, const char *code, int64_t at, long long n)
{
    if (!n)
        return;
    char name[96];
    snprintf(name, sizeof name, "%s%s", prefix, code);
    dm_batch_add(b, l->name, name, at, n);
}

/* One item's outcome, inside the batch's transaction (delivery.md §5, §9.2). */
static int record(deliver *d, txn *t, dm_batch *b, lane *l, item *it)
{
    int rc = ST_OK;
    int attempt = it->attempts_before + 1;
    const out_result *r = &it->res;
    outcome_kind k = r->kind;
    if (k == OUT_RETRY) {
        uint32_t j = randombytes_uniform(40001);
        double u = 0.8 + (double)j / 100000.0;
        bool ra = !strcmp(r->code, "429") || !strcmp(r->code, "503");
        int64_t due = retry_next_due(&d->rp, attempt, it->received_ms, it->end_ms, u, ra ? r->retry_after_ms : -1);
        if (due < 0) {
            k = OUT_DISCARD; /* exhausted: discarded with the last failure's code */
        } else {
            metric(b, l, "retried_", r->code, it->end_ms, 1);
            l->outcomes[DELIVERY_RETRIED]++;
            rc = it->retry_id ? store_dl_retry_update(t, it->retry_id, attempt, due, r->code)
                                  : store_dl_retry_add(t, l->name, it->message_id, it->received_ms, attempt, due,
                                                       r->code, it->body);
            return rc;
        }
    }
    if (k == OUT_SUCCESS) {
        char n[16];
        snprintf(n, sizeof n, "%d", attempt);
        metric(b, l, "successes", "", it->end_ms, 1);
        metric(b, l, "successes_attempt_", n, it->end_ms, 1);
        dm_batch_latency(b, l->name, it->end_ms, it->end_ms - it->received_ms);
        l->outcomes[DELIVERY_SUCCESS]++;
    } else if (k == OUT_DISCARD) {
        metric(b, l, "discarded_", r->code, it->end_ms, 1);
        l->outcomes[DELIVERY_DISCARDED]++;
    }
    if (rc == ST_OK && it->retry_id)
        rc = store_dl_retry_delete(t, it->retry_id);
    return rc;
}

static void lane_commit(deliver *d, lane *l, int64_t now)
{
    txn t;
    /* Not waiting for the group's fsync (SQLite): if this commit is lost in a crash, the
     * batch is simply attempted again — at least once either way — and the thread keeps
     * driving other lanes' requests meanwhile. */
    store_defer_begin();
    int rc = store_begin(d->st, &t, true);
    if (rc == ST_OK) {
        rc = store_dl_advance(&t, l->name, d->owner, &l->next_pos, now + LEASE_MS);
        for (size_t i = 0; i < l->nitems && rc == ST_OK; i++)
            rc = record(d, &t, d->dm, l, &l->items[i]);
        for (int f = 0; f < F_COUNT; f++)
            metric(d->dm, l, "filtered_at_destination_", filtered_reason[f], now, l->filtered[f]);
        if (rc == ST_OK)
            rc = store_dm_flush(&t, d->dm); /* empties the batch, also on failure */
        else { /* a fresh batch: nothing of the failed one may reach the next commit */
            dm_batch_free(d->dm);
            d->dm = dm_batch_new();
        }
        if (rc == ST_OK)
            rc = store_commit(&t);
        else
            store_rollback(&t);
    }
    store_defer_end();
    log_debug("delivery: %s: batch of %zu in %lld ms (commit %lld ms)", l->name, l->nitems,
              (long long)(now_ms() - l->started_ms), (long long)(now_ms() - now));
    if (rc == ST_OK) {
        for (int o = 0; o < DELIVERY_NOUTCOMES; o++)
            if (l->outcomes[o])
                obs_delivery_count((delivery_outcome)o, l->outcomes[o]);
        l->pos = l->next_pos;
        l->lease_renew = now + LEASE_MS / 3;
        l->next_poll = l->full ? now : now + POLL_MS;
    } else {
        if (rc == ST_CONFLICT)
            l->leased = false; /* another process holds the cursor now: it will redo the batch */
        else
            log_warn("delivery: could not record a batch for %s; it will be attempted again", l->name);
        l->next_retry_poll = 0;
        l->next_poll = now + 1000;
    }
    memset(l->outcomes, 0, sizeof l->outcomes);
    lane_reset(l);
}

/* ---- the thread ---------------------------------------------------------------------------- */

/* Every CLEANUP_MS: cursors and retries of deleted destinations, and the §11 counters'
 * upkeep (old minutes pruned and compacted, a bounded slice per call), each in its own
 * transaction so that neither ever holds up a batch. */
static void cleanup(deliver *d)
{
    txn t;
    if (store_begin(d->st, &t, true) != ST_OK)
        return;
    if (store_dl_cleanup(&t) == ST_OK)
        store_commit(&t);
    else
        store_rollback(&t);
    long long waiting = 0;
    if (store_begin(d->st, &t, false) == ST_OK) {
        if (store_delivery_pending_all(&t, &waiting) == ST_OK)
            atomic_store(&queue_depth, (double)waiting);
        store_end(&t);
    }
    if (store_begin(d->st, &t, true) != ST_OK)
        return;
    if (store_dm_maintain(&t, now_ms(), 1000) == ST_OK)
        store_commit(&t);
    else
        store_rollback(&t);
}

static void *run(void *arg)
{
    deliver *d = arg;
    while (!atomic_load(&d->stop)) {
        int64_t now = now_ms();
        uint64_t ep = store_config_epoch(d->st);
        if (now >= d->next_refresh || (ep != d->epoch && now >= d->last_refresh + REFRESH_MIN_MS)) {
            d->epoch = ep;
            refresh(d);
            d->last_refresh = now;
            d->next_refresh = now + REFRESH_MS;
        }
        if (now >= d->next_cleanup) {
            cleanup(d);
            d->next_cleanup = now + CLEANUP_MS;
        }
        int64_t wake = now + 50;
        /* Never poll under a configuration older than the last committed change (lane_poll
         * checks again after its read): wait for the rate-limited refresh instead. */
        bool stale = store_config_epoch(d->st) != d->epoch;
        if (stale)
            wake = d->last_refresh + REFRESH_MIN_MS;
        for (lane *l = d->lanes; l && !stale; l = l->next) {
            if (l->busy || !l->exists)
                continue;
            if (now >= l->next_poll)
                lane_poll(d, l, now);
            if (!l->busy && l->next_poll < wake)
                wake = l->next_poll;
        }
        int64_t w = wake - now_ms();
        out_run(d->out, w < 0 ? 0 : w > 50 ? 50 : (int)w);
        now = now_ms();
        for (lane *l = d->lanes; l; l = l->next)
            if (l->busy && l->pending == 0)
                lane_commit(d, l, now);
    }
    return NULL;
}

deliver *deliver_start(store *st, const catalog *cat, fnrt *rt, char *err, size_t errlen)
{
    deliver *d = calloc(1, sizeof *d);
    d->st = st;
    d->cat = cat;
    d->rt = rt;
    char e[200];
    if (!retry_policy_from_env(&d->rp, e, sizeof e)) {
        snprintf(err, errlen, "%s", e);
        free(d);
        return NULL;
    }
    if (cidr_list_parse(getenv("MANIFOLD_OUTBOUND_ALLOW"), &d->allow, e, sizeof e) ||
        cidr_list_parse(getenv("MANIFOLD_OUTBOUND_DENY"), &d->deny, e, sizeof e)) {
        snprintf(err, errlen, "MANIFOLD_OUTBOUND_ALLOW/DENY: %s", e);
        cidr_list_free(&d->allow);
        free(d);
        return NULL;
    }
    char rnd[17];
    random_alnum(rnd, 16);
    snprintf(d->owner, sizeof d->owner, "%ld-%s", (long)getpid(), rnd);
    d->out = out_new(&d->allow, &d->deny);
    d->dm = dm_batch_new();
    d->batch = BATCH_DEFAULT;
    const char *b = getenv("MANIFOLD_DELIVERY_BATCH");
    if (b && *b) {
        char *end;
        long v = strtol(b, &end, 10);
        if (*end || v < 1 || v > 5000) {
            snprintf(err, errlen, "MANIFOLD_DELIVERY_BATCH must be a number from 1 to 5000");
            goto fail;
        }
        d->batch = (int)v;
    }
    obs_delivery_queue_fn(queue_depth_of, NULL);
    if (pthread_create(&d->thread, NULL, run, d)) {
        snprintf(err, errlen, "cannot start the delivery thread");
        goto fail;
    }
    return d;
fail:
    out_free(d->out);
    dm_batch_free(d->dm);
    cidr_list_free(&d->allow);
    cidr_list_free(&d->deny);
    free(d);
    return NULL;
}

void deliver_stop(deliver *d)
{
    if (!d)
        return;
    atomic_store(&d->stop, true);
    out_wakeup(d->out);
    pthread_join(d->thread, NULL);
    out_free(d->out);
    txn t;
    if (store_begin(d->st, &t, true) == ST_OK) {
        if (store_dl_release(&t, d->owner) == ST_OK)
            store_commit(&t);
        else
            store_rollback(&t);
    }
    while (d->lanes) {
        lane *l = d->lanes;
        d->lanes = l->next;
        lane_reset(l);
        free(l->items);
        lane_filters_free(l);
        free(l->filter_sig);
        json_decref(l->config);
        free(l->fn_name), free(l->fn_code), free(l->fn_version), free(l->fn_settings);
        free(l->name);
        free(l->source);
        free(l);
    }
    dm_batch_free(d->dm);
    cidr_list_free(&d->allow);
    cidr_list_free(&d->deny);
    free(d);
}
