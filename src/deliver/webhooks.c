/* The classic Webhooks destination (delivery.md §6): the event as JSON to globalHook and
 * up to five hooks, in parallel, each with its own headers, signed with X-Signature when
 * a sharedSecret is set; success when any target answers 2xx (§6.4). */
#include "deliver/target.h"
#include "util/buf.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WEBHOOK_TIMEOUT_MS 5000
#define MAX_TARGETS (1 + WEBHOOKS_MAX_HOOKS)
#define MAX_HEADERS 40

typedef struct hook {
    const char *url;
    const json_t *headers; /* [{key, value}] or NULL */
} hook;

typedef struct wh_attempt {
    dattempt *a;
    int pending, ntargets;
    bool success, any_retry;
    out_result first_fail; /* the first target's failure (in target order) */
    int first_fail_index;
    int64_t retry_after_ms;
} wh_attempt;

typedef struct wh_call {
    wh_attempt *w;
    int index;
} wh_call;

/* hooks is "mixed": a list, or the same list as JSON text. */
static json_t *hooks_of(const json_t *config)
{
    json_t *h = json_object_get(config, "hooks");
    if (json_is_string(h))
        return json_loads(json_string_value(h), JSON_DECODE_ANY, NULL);
    return json_is_array(h) ? json_incref(h) : NULL;
}

/* globalHook plus every hooks[].hook, empty URLs ignored, identical URLs once (with the
 * hooks entry's headers), at most MAX_TARGETS. */
static int targets_of(const json_t *config, const json_t *hooks, hook *out)
{
    int n = 0;
    const char *g = json_string_value(json_object_get(config, "globalHook"));
    if (g && *g)
        out[n++] = (hook){g, NULL};
    size_t i;
    json_t *e;
    json_array_foreach(hooks, i, e) {
        const char *u = json_string_value(json_object_get(e, "hook"));
        if (!u || !*u)
            continue;
        int k = 0;
        while (k < n && strcmp(out[k].url, u))
            k++;
        if (k < n) {
            out[k].headers = json_object_get(e, "headers");
            continue;
        }
        if (n == MAX_TARGETS)
            break;
        out[n++] = (hook){u, json_object_get(e, "headers")};
    }
    return n;
}

static bool header_name_ok(const char *k)
{
    if (!*k)
        return false;
    for (const char *p = k; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p))
            return false;
    return true;
}

static bool header_value_ok(const char *v)
{
    for (const char *p = v; *p; p++)
        if (*p == '\r' || *p == '\n')
            return false;
    return true;
}

static bool reserved(const char *k)
{
    return !strcasecmp(k, "Content-Type") || !strcasecmp(k, "Content-Length") || !strcasecmp(k, "Host") ||
           !strcasecmp(k, "X-Signature") || !strcasecmp(k, "Transfer-Encoding") || !strcasecmp(k, "Connection");
}

static void finish(wh_attempt *w)
{
    out_result r;
    if (w->success) {
        r = (out_result){.kind = OUT_SUCCESS, .retry_after_ms = -1};
    } else {
        r = w->first_fail;
        r.kind = w->any_retry ? OUT_RETRY : OUT_DISCARD;
        r.retry_after_ms = w->retry_after_ms;
    }
    dattempt *a = w->a;
    free(w);
    a->done(a, &r);
}

static void on_done(void *arg, const out_result *r)
{
    wh_call *c = arg;
    wh_attempt *w = c->w;
    if (r->kind == OUT_SUCCESS) {
        w->success = true;
    } else {
        if (r->kind == OUT_RETRY)
            w->any_retry = true;
        if (c->index < w->first_fail_index) {
            w->first_fail = *r;
            w->first_fail_index = c->index;
        }
        if (r->retry_after_ms > w->retry_after_ms)
            w->retry_after_ms = r->retry_after_ms;
    }
    free(c);
    if (--w->pending == 0)
        finish(w);
}

static void wh_send(outbound *o, dattempt *a)
{
    json_t *hooks = hooks_of(a->config);
    hook t[MAX_TARGETS];
    int n = targets_of(a->config, hooks, t);
    if (!n) {
        json_decref(hooks);
        out_result r = {.kind = OUT_DISCARD, .code = "INVALID_SETTINGS", .retry_after_ms = -1};
        a->done(a, &r);
        return;
    }
    wh_attempt *w = calloc(1, sizeof *w);
    *w = (wh_attempt){.a = a, .pending = n, .ntargets = n, .first_fail_index = MAX_TARGETS, .retry_after_ms = -1};
    char sig[64] = "";
    const char *secret = json_string_value(json_object_get(a->config, "sharedSecret"));
    if (secret && *secret) {
        char hex[41];
        hmac_sha1_hex(secret, strlen(secret), a->body, a->len, hex);
        snprintf(sig, sizeof sig, "X-Signature: %s", hex);
    }
    for (int i = 0; i < n; i++) {
        const char *lines[MAX_HEADERS];
        char *owned[MAX_HEADERS];
        size_t nl = 0, no = 0;
        bool custom_ua = false;
        lines[nl++] = "Content-Type: application/json";
        lines[nl++] = "Accept: */*";
        lines[nl++] = "Cache-Control: no-cache";
        lines[nl++] = "Connection: Keep-Alive";
        lines[nl++] = "Expect:"; /* no 100-continue round trip */
        if (*sig)
            lines[nl++] = sig;
        size_t k;
        json_t *h;
        json_array_foreach(json_is_array(t[i].headers) ? t[i].headers : NULL, k, h) {
            const char *key = json_string_value(json_object_get(h, "key"));
            const char *val = json_string_value(json_object_get(h, "value"));
            if (!key || !header_name_ok(key) || reserved(key) || nl >= MAX_HEADERS - 2)
                continue;
            if (!val)
                val = "";
            if (!header_value_ok(val))
                continue;
            if (!strcasecmp(key, "User-Agent"))
                custom_ua = true;
            buf b = {0};
            buf_printf(&b, "%s: %s", key, val);
            owned[no++] = (char *)buf_cstr(&b);
            lines[nl++] = owned[no - 1];
        }
        if (!custom_ua)
            lines[nl++] = "User-Agent: Segment.io/1.0";
        wh_call *c = malloc(sizeof *c);
        *c = (wh_call){w, i};
        out_post(o, t[i].url, lines, nl, a->body, a->len, WEBHOOK_TIMEOUT_MS, on_done, c);
        for (size_t j = 0; j < no; j++)
            free(owned[j]);
    }
    json_decref(hooks);
}

const target_driver target_webhooks = {.slug = "webhooks", .all_types = true, .send = wh_send};

const target_driver *target_for(const char *slug)
{
    if (slug && !strcmp(slug, "webhooks"))
        return &target_webhooks;
    return NULL;
}
