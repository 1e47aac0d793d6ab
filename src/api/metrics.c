/* Event Delivery Metrics (config-api.md §11): read-only views of the counters the delivery
 * engine keeps per destination-minute (store/delivery_metrics.h, counting rules in
 * delivery.md §9.2). The router has already checked read access to the destination (or,
 * for :batchGetSummary, to the workspace's sources).
 *
 *   GET {dest}/metrics                 every series (the fixed ones, plus each
 *                                      retried_<code>/discarded_<code> with data)
 *   GET {dest}/metrics/{metric}        one series
 *   GET {dest}/metrics:batchGet        the series named by `names`
 *   GET {dest}/metrics:getSummary      window totals, retried/discarded with breakdowns
 *   GET /v1beta/workspaces/{ws}/event-delivery-metrics:batchGetSummary   one per `names`
 *
 * Only leaf counters are stored; retried, discarded and total are sums made here, and the
 * time_to_success percentiles come from merged latency histograms (store/dm_hist.h): per
 * bucket for a series, over the whole window for a summary.
 *
 * Parameters come from the query string or, because the one known client sends them that
 * way, from a JSON body on GET; a parameter in the query wins over the body's. */
#include "api/engine.h"
#include "ingest/msg.h"
#include "store/delivery_log.h"
#include "store/delivery_metrics.h"
#include "store/dm_hist.h"
#include "util/json.h"
#include "util/util.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_MS 60000LL
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)
#define MAX_NAMES 100
#define CODE_MAX 64

/* Granularities, after the successor API: default window, longest window, oldest start. */
static const struct gran {
    const char *name;
    long long ms;
    int minutes;
    long long def, max_range, oldest;
    const char *max_text, *oldest_text;
} grans[] = {
    {"MINUTE", MIN_MS, 1, HOUR_MS, 4 * HOUR_MS, 48 * HOUR_MS, "4 hours", "48 hours"},
    {"HOUR", HOUR_MS, 60, 7 * DAY_MS, 7 * DAY_MS, 7 * DAY_MS, "7 days", "7 days"},
    {"DAY", DAY_MS, 1440, 30 * DAY_MS, 14 * DAY_MS, 14 * DAY_MS, "14 days", "14 days"},
};

typedef struct window {
    const struct gran *g;
    long long start, end; /* aligned to g: [start, end) */
    int n;                /* buckets */
} window;

/* ---- parameters ----------------------------------------------------------------------- */

static const char *const body_fields[] = {"start_time", "end_time", "granularity", "names", NULL};

/* The request body (GET bodies included), checked for unknown fields once. NULL after
 * fail(). */
static json_t *params_body(call *c)
{
    json_t *b = call_body(c);
    if (!b)
        return NULL;
    if (json_object_size(b) && !check_fields(c, b, "request", body_fields))
        return NULL;
    return b;
}

/* A string parameter: the query's, else the body's; *out NULL when absent. False after
 * fail() on a body value that is not a string. */
static bool str_param(call *c, json_t *body, const char *key, const char **out)
{
    *out = req_query(c->req, key);
    if (*out)
        return true;
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v))
        return fail(c, 400, CODE_INVALID, "%s must be a string", key);
    *out = json_string_value(v);
    return true;
}

static long long floor_to(long long v, long long unit) { return v >= 0 ? v / unit * unit : -((-v + unit - 1) / unit) * unit; }
static long long ceil_to(long long v, long long unit) { return -floor_to(-v, unit); }

static bool parse_time(call *c, const char *key, const char *s, long long *ms)
{
    int64_t us;
    if (!ingest_parse_time(s, &us))
        return fail(c, 400, CODE_INVALID, "%s must be an RFC 3339 time such as 2024-01-01T00:00:00Z", key);
    *ms = floor_to(us, 1000) / 1000;
    return true;
}

/* granularity, start_time and end_time → an aligned window, checked against the
 * granularity's limits. A default start never reaches past the oldest start allowed (the
 * DAY default of 30 days is cut to the 14 days kept). The oldest-start check is against
 * the granularity bucket that holds now − oldest, so a client that computed "48 hours
 * ago" a moment before the server did is not refused. */
static bool parse_window(call *c, json_t *body, window *w)
{
    const char *gs, *ss, *es;
    if (!str_param(c, body, "granularity", &gs) || !str_param(c, body, "start_time", &ss) ||
        !str_param(c, body, "end_time", &es))
        return false;
    const struct gran *g = &grans[0];
    if (gs) {
        g = NULL;
        for (size_t i = 0; i < sizeof grans / sizeof *grans; i++)
            if (!strcmp(gs, grans[i].name))
                g = &grans[i];
        if (!g)
            return fail(c, 400, CODE_INVALID, "granularity must be MINUTE, HOUR or DAY");
    }
    long long now = now_ms(), start, end;
    if (ss && !parse_time(c, "start_time", ss, &start))
        return false;
    if (es && !parse_time(c, "end_time", es, &end))
        return false;
    long long oldest = floor_to(now - g->oldest, g->ms);
    if (!es)
        end = now;
    if (!ss) {
        if (end <= oldest)
            return fail(c, 400, CODE_INVALID, "end_time must be within the last %s for granularity %s",
                        g->oldest_text, g->name);
        start = end - (g->def < g->max_range ? g->def : g->max_range);
        if (start < oldest)
            start = oldest;
    }
    if (end <= start)
        return fail(c, 400, CODE_INVALID, "end_time must be later than start_time");
    if (end - start > g->max_range)
        return fail(c, 400, CODE_INVALID, "the time range is at most %s for granularity %s", g->max_text, g->name);
    if (start < oldest)
        return fail(c, 400, CODE_INVALID, "start_time must be at most %s ago for granularity %s", g->oldest_text,
                    g->name);
    w->g = g;
    w->start = floor_to(start, g->ms);
    w->end = ceil_to(end, g->ms);
    w->n = (int)((w->end - w->start) / g->ms);
    return true;
}

typedef struct names {
    char **v;
    int n;
} names;

static void names_free(names *ns)
{
    for (int i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
    ns->v = NULL;
    ns->n = 0;
}

/* Adds the comma-separated items of s (blank items skipped). */
static bool names_add(call *c, names *ns, const char *s)
{
    while (*s) {
        size_t n = strcspn(s, ",");
        const char *a = s, *e = s + n;
        while (a < e && isspace((unsigned char)*a))
            a++;
        while (e > a && isspace((unsigned char)e[-1]))
            e--;
        if (e > a) {
            if (ns->n == MAX_NAMES)
                return fail(c, 400, CODE_INVALID, "names holds at most %d names", MAX_NAMES);
            ns->v = realloc(ns->v, (size_t)(ns->n + 1) * sizeof *ns->v);
            ns->v[ns->n++] = strndup(a, (size_t)(e - a));
        }
        s += n + (s[n] == ',');
    }
    return true;
}

/* `names`: repeated query parameters, each possibly comma-separated; else the body's
 * "names", a JSON array of strings or one comma-separated string. */
static bool parse_names(call *c, json_t *body, names *ns)
{
    bool in_query = false;
    for (int i = 0; i < c->req->nquery; i++)
        if (!strcmp(c->req->query[i].key, "names")) {
            in_query = true;
            if (!names_add(c, ns, c->req->query[i].val ? c->req->query[i].val : ""))
                return false;
        }
    json_t *v = json_object_get(body, "names");
    if (!in_query && v && !json_is_null(v)) {
        if (json_is_string(v)) {
            if (!names_add(c, ns, json_string_value(v)))
                return false;
        } else if (json_is_array(v)) {
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) {
                if (!json_is_string(x))
                    return fail(c, 400, CODE_INVALID, "names[%zu] must be a string", i);
                if (!names_add(c, ns, json_string_value(x)))
                    return false;
            }
        } else {
            return fail(c, 400, CODE_INVALID, "names must be an array of strings");
        }
    }
    if (!ns->n)
        return fail(c, 400, CODE_INVALID, "names is required: one or more names, repeated or comma-separated");
    return true;
}

/* ---- metric names ----------------------------------------------------------------------- */

static const char *const fixed[] = {"successes", "retried", "discarded", "total",
                                    "time_to_success_p50", "time_to_success_p95", "time_to_success_p99"};
#define NFIXED (sizeof fixed / sizeof *fixed)

/* The code of "retried_<code>" / "discarded_<code>", or NULL. */
static const char *code_of(const char *m, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(m, prefix, n))
        return NULL;
    const char *code = m + n;
    size_t len = strlen(code);
    if (!len || len > CODE_MAX)
        return NULL;
    for (const char *p = code; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
            return NULL;
    return code;
}

static bool metric_known(const char *m)
{
    for (size_t i = 0; i < NFIXED; i++)
        if (!strcmp(m, fixed[i]))
            return true;
    return code_of(m, "retried_") || code_of(m, "discarded_");
}

static void display_name(const char *m, char *out, size_t cap)
{
    const char *code;
    if (!strncmp(m, "time_to_success_", 16))
        snprintf(out, cap, "Time to Success (%s)", m + 16);
    else if ((code = code_of(m, "retried_")))
        snprintf(out, cap, "Retried (%s)", code);
    else if ((code = code_of(m, "discarded_")))
        snprintf(out, cap, "Discarded (%s)", code);
    else {
        snprintf(out, cap, "%s", m);
        out[0] = (char)toupper((unsigned char)out[0]);
    }
}

/* ---- the destination ---------------------------------------------------------------------- */

/* Checks that name is an existing cloud-mode destination. */
static bool dest_check(call *c, txn *t, const char *name)
{
    res_row r = {0};
    int rc = store_res_get(t, name, &r);
    if (rc == ST_OK && strcmp(r.kind, "destination"))
        rc = ST_NOT_FOUND;
    if (rc != ST_OK) {
        res_row_clear(&r);
        return rc == ST_NOT_FOUND ? fail(c, 404, CODE_NOT_FOUND, "destination %s not found", name)
                                  : fail_store(c, rc, "destination");
    }
    json_error_t je;
    json_t *body = json_loads(r.body, 0, &je);
    const char *mode = json_string_value(json_object_get(body, "connection_mode"));
    const cat_item *it = catalog_find(&c->api->cat->destinations, strrchr(name, '/') + 1);
    bool cloud = catalog_cloud_mode(it, mode);
    json_decref(body);
    res_row_clear(&r);
    if (!cloud)
        return fail(c, 400, CODE_INVALID, "metrics are only available for cloud-mode destinations");
    return true;
}

/* ---- reading the counters ---------------------------------------------------------------- */

typedef struct leaf {
    char *metric;
    long long *v; /* per bucket */
} leaf;

typedef struct data {
    window w;
    int nb;       /* buckets held: w.n, or 1 for a whole-window summary */
    leaf *leaves; /* sorted by metric (the store returns them so within a bucket) */
    int n, cap;
    long long *p[3]; /* time_to_success p50, p95, p99 per bucket */
    /* the latency rows of the bucket being read */
    dm_bucket *hb;
    int hn, hcap;
    long long hslot;
} data;

static const int pct[3] = {50, 95, 99};

static void data_free(data *d)
{
    for (int i = 0; i < d->n; i++) {
        free(d->leaves[i].metric);
        free(d->leaves[i].v);
    }
    free(d->leaves);
    for (int i = 0; i < 3; i++)
        free(d->p[i]);
    free(d->hb);
}

static int bucket_of(const data *d, long long slot_ms)
{
    long long i = (slot_ms - d->w.start) / d->w.g->ms;
    return i >= 0 && i < d->nb ? (int)i : -1;
}

static leaf *leaf_of(data *d, const char *metric, bool add)
{
    int lo = 0, hi = d->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2, k = strcmp(d->leaves[mid].metric, metric);
        if (!k)
            return &d->leaves[mid];
        if (k < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!add)
        return NULL;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->leaves = realloc(d->leaves, (size_t)d->cap * sizeof *d->leaves);
    }
    memmove(&d->leaves[lo + 1], &d->leaves[lo], (size_t)(d->n - lo) * sizeof *d->leaves);
    d->leaves[lo] = (leaf){strdup(metric), calloc((size_t)d->nb, sizeof(long long))};
    d->n++;
    return &d->leaves[lo];
}

static int on_count(void *ctx, long long slot_ms, const char *metric, long long n)
{
    data *d = ctx;
    int b = bucket_of(d, slot_ms);
    if (b >= 0)
        leaf_of(d, metric, true)->v[b] += n;
    return 0;
}

static void flush_latency(data *d)
{
    if (!d->hn)
        return;
    int b = bucket_of(d, d->hslot);
    int n = dm_hist_merge(d->hb, d->hn);
    for (int i = 0; b >= 0 && i < 3; i++)
        d->p[i][b] = dm_hist_percentile(d->hb, n, pct[i]);
    d->hn = 0;
}

static int on_latency(void *ctx, long long slot_ms, int bucket, long long n, long long lo, long long hi)
{
    data *d = ctx;
    if (d->hn && slot_ms != d->hslot)
        flush_latency(d);
    d->hslot = slot_ms;
    if (d->hn == d->hcap) {
        d->hcap = d->hcap ? d->hcap * 2 : 64;
        d->hb = realloc(d->hb, (size_t)d->hcap * sizeof *d->hb);
    }
    d->hb[d->hn++] = (dm_bucket){bucket, n, lo, hi};
    return 0;
}

/* Reads a destination's counters over w: per bucket (whole=false) or summed over the
 * window (whole=true). */
static int data_load(txn *t, const char *dest, const window *w, bool whole, data *d)
{
    memset(d, 0, sizeof *d);
    d->w = *w;
    d->nb = whole ? 1 : w->n;
    for (int i = 0; i < 3; i++)
        d->p[i] = calloc((size_t)d->nb, sizeof(long long));
    int gm = whole ? 0 : w->g->minutes;
    int rc = store_dm_counts(t, dest, w->start, w->end, gm, on_count, d);
    if (rc == ST_OK)
        rc = store_dm_latency_hist(t, dest, w->start, w->end, gm, on_latency, d);
    flush_latency(d);
    return rc;
}

/* The values of metric m (known) per bucket, into out[0..nb). */
static void values(const data *d, const char *m, long long *out)
{
    memset(out, 0, (size_t)d->nb * sizeof *out);
    for (int i = 0; i < 3; i++)
        if (!strncmp(m, "time_to_success_p", 17) && atoi(m + 17) == pct[i]) {
            memcpy(out, d->p[i], (size_t)d->nb * sizeof *out);
            return;
        }
    bool retried = !strcmp(m, "retried"), discarded = !strcmp(m, "discarded"), total = !strcmp(m, "total");
    for (int k = 0; k < d->n; k++) {
        const char *lm = d->leaves[k].metric;
        bool take = !strcmp(lm, m) || (retried && code_of(lm, "retried_")) ||
                    ((discarded || total) && code_of(lm, "discarded_")) || (total && !strcmp(lm, "successes"));
        if (take)
            for (int b = 0; b < d->nb; b++)
                out[b] += d->leaves[k].v[b];
    }
}

/* ---- rendering ------------------------------------------------------------------------------ */

static json_t *series_json(const data *d, const char *dest, const char *m)
{
    char dn[128], ts[32];
    display_name(m, dn, sizeof dn);
    buf name = {0};
    buf_printf(&name, "%s/metrics/%s", dest, m);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(buf_cstr(&name)));
    buf_free(&name);
    json_object_set_new(o, "display_name", json_string(dn));
    json_object_set_new(o, "granularity", json_string(d->w.g->name));
    rfc3339(d->w.start, ts);
    json_object_set_new(o, "start_time", json_string(ts));
    rfc3339(d->w.end, ts);
    json_object_set_new(o, "end_time", json_string(ts));
    long long *v = malloc((size_t)d->nb * sizeof *v);
    values(d, m, v);
    json_t *pts = json_array();
    for (int b = 0; b < d->nb; b++) {
        rfc3339(d->w.start + b * d->w.g->ms, ts);
        json_array_append_new(pts, json_pack("{s:s, s:I}", "time", ts, "value", (json_int_t)v[b]));
    }
    free(v);
    json_object_set_new(o, "datapoints", pts);
    return o;
}

static json_t *total_json(const data *d, const char *m)
{
    long long v;
    values(d, m, &v);
    return json_pack("{s:s, s:I}", "metric_name", m, "total", (json_int_t)v);
}

/* pending >= 0: the destination's events waiting for a retry right now (a gauge, not a
 * window total: Delivery Overview's "pending retry"), shown as "pending_retry". */
static json_t *summary_json(const data *d, const char *dest, long long pending)
{
    char ts[32];
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(dest));
    rfc3339(d->w.start, ts);
    json_object_set_new(o, "start_time", json_string(ts));
    rfc3339(d->w.end, ts);
    json_object_set_new(o, "end_time", json_string(ts));
    json_t *ms = json_array();
    for (size_t i = 0; i < NFIXED; i++) {
        json_t *e = total_json(d, fixed[i]);
        const char *prefix = !strcmp(fixed[i], "retried") ? "retried_" : !strcmp(fixed[i], "discarded") ? "discarded_" : NULL;
        if (prefix) {
            json_t *br = json_array();
            for (int k = 0; k < d->n; k++)
                if (code_of(d->leaves[k].metric, prefix) && d->leaves[k].v[0])
                    json_array_append_new(br, total_json(d, d->leaves[k].metric));
            json_object_set_new(e, "breakdown", br);
        }
        json_array_append_new(ms, e);
    }
    json_object_set_new(o, "metrics", ms);
    if (pending >= 0)
        json_object_set_new(o, "pending_retry", json_integer(pending));
    return o;
}

static long long pending_of(txn *t, const char *dest)
{
    long long n = 0;
    return store_delivery_pending(t, dest, &n) == ST_OK ? n : -1;
}

/* ---- handlers -------------------------------------------------------------------------------- */

/* The common start of the destination routes: parameters, then the destination (named by
 * the path without its last drop segments), then its data. */
static bool begin(call *c, int drop, bool whole, json_t **body, char **dest, data *d)
{
    window w;
    *dest = NULL;
    if (!(*body = params_body(c)) || !parse_window(c, *body, &w))
        return false;
    *dest = engine_path_name(c, drop);
    txn t;
    if (store_begin(c->api->st, &t, false) != ST_OK)
        return fail_store(c, ST_ERROR, "metrics");
    bool ok = dest_check(c, &t, *dest);
    if (ok) {
        int rc = data_load(&t, *dest, &w, whole, d);
        if (rc != ST_OK) {
            data_free(d);
            ok = fail_store(c, rc, "metrics");
        }
    }
    store_end(&t);
    return ok;
}

void h_metrics_list(call *c)
{
    json_t *body;
    char *dest;
    data d;
    if (!begin(c, 1, false, &body, &dest, &d)) {
        free(dest);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < NFIXED; i++)
        json_array_append_new(list, series_json(&d, dest, fixed[i]));
    /* then each retried_<code> and discarded_<code> that counted something in the window */
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < d.n; k++) {
            const char *m = d.leaves[k].metric;
            if (!code_of(m, pass ? "discarded_" : "retried_"))
                continue;
            long long any = 0;
            for (int b = 0; b < d.nb; b++)
                any |= d.leaves[k].v[b];
            if (any)
                json_array_append_new(list, series_json(&d, dest, m));
        }
    reply(c, json_pack("{s:o, s:s}", "metrics", list, "next_page_token", ""));
    data_free(&d);
    free(dest);
}

void h_metrics_get(call *c)
{
    const char *m = call_param(c, "metric");
    if (!m || !metric_known(m))
        return (void)fail(c, 404, CODE_NOT_FOUND, "metric %s not found", m ? m : "");
    json_t *body;
    char *dest;
    data d;
    if (!begin(c, 2, false, &body, &dest, &d)) {
        free(dest);
        return;
    }
    reply(c, series_json(&d, dest, m));
    data_free(&d);
    free(dest);
}

void h_metrics_batch_get(call *c)
{
    json_t *body = params_body(c);
    names ns = {0};
    if (!body || !parse_names(c, body, &ns))
        return names_free(&ns);
    /* Full names "{dest}/metrics/{metric}" of this destination, or bare metric names. */
    char *self = engine_path_name(c, 1);
    size_t sl = strlen(self);
    for (int i = 0; i < ns.n; i++) {
        const char *n = ns.v[i], *m = n;
        if (strchr(n, '/')) {
            if (strncmp(n, self, sl) || strncmp(n + sl, "/metrics/", 9)) {
                fail(c, 400, CODE_INVALID, "names must be metrics of %s: %s", self, n);
                goto out;
            }
            m = n + sl + 9;
        }
        if (!metric_known(m)) {
            fail(c, 404, CODE_NOT_FOUND, "metric %s not found", n);
            goto out;
        }
        memmove(ns.v[i], m, strlen(m) + 1);
    }
    char *dest;
    data d;
    if (!begin(c, 1, false, &body, &dest, &d)) {
        free(dest);
        goto out;
    }
    json_t *list = json_array();
    for (int i = 0; i < ns.n; i++)
        json_array_append_new(list, series_json(&d, dest, ns.v[i]));
    reply(c, json_pack("{s:o}", "metrics", list));
    data_free(&d);
    free(dest);
out:
    free(self);
    names_free(&ns);
}

void h_metrics_summary(call *c)
{
    json_t *body;
    char *dest;
    data d;
    if (!begin(c, 1, true, &body, &dest, &d)) {
        free(dest);
        return;
    }
    long long pending = -1;
    txn t;
    if (store_begin(c->api->st, &t, false) == ST_OK) {
        pending = pending_of(&t, dest);
        store_end(&t);
    }
    reply(c, summary_json(&d, dest, pending));
    data_free(&d);
    free(dest);
}

/* names: destinations of this workspace, "workspaces/<slug or id>/sources/<s>/destinations/<d>". */
void h_metrics_batch_summary(call *c)
{
    json_t *body = params_body(c);
    names ns = {0};
    window w;
    if (!body || !parse_names(c, body, &ns) || !parse_window(c, body, &w))
        return names_free(&ns);
    for (int i = 0; i < ns.n; i++) {
        char ws[128], src[512], dst[512];
        int end = 0;
        const char *n = ns.v[i];
        if (sscanf(n, "workspaces/%127[^/]/sources/%511[^/]/destinations/%511[^/]%n", ws, src, dst, &end) != 3 ||
            n[end] || (strcmp(ws, c->ws.slug) && strcmp(ws, c->ws.id))) {
            fail(c, 400, CODE_INVALID, "names must be destinations in workspace %s: %s", c->ws.slug, n);
            return names_free(&ns);
        }
        char *canon;
        if (asprintf(&canon, "workspaces/%s/sources/%s/destinations/%s", c->ws.slug, src, dst) < 0)
            abort();
        free(ns.v[i]);
        ns.v[i] = canon;
        /* The route needs read on the workspace's sources; a name is checked on its own too. */
        if (!iam_allows(&c->who, ACT_READ, canon)) {
            fail(c, 403, CODE_DENIED, "permission denied");
            return names_free(&ns);
        }
    }
    txn t;
    if (store_begin(c->api->st, &t, false) != ST_OK) {
        fail_store(c, ST_ERROR, "metrics");
        return names_free(&ns);
    }
    json_t *list = json_array();
    for (int i = 0; i < ns.n; i++) {
        data d;
        if (!dest_check(c, &t, ns.v[i]))
            break;
        int rc = data_load(&t, ns.v[i], &w, true, &d);
        if (rc != ST_OK) {
            data_free(&d);
            fail_store(c, rc, "metrics");
            break;
        }
        json_array_append_new(list, summary_json(&d, ns.v[i], pending_of(&t, ns.v[i])));
        data_free(&d);
    }
    store_end(&t);
    if (!c->failed)
        reply(c, json_pack("{s:o}", "summaries", list));
    else
        json_decref(list);
    names_free(&ns);
}
