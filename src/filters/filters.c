/* Destination filters: validation, compilation, application (spec/fql.md §6).
 *
 * A compiled filter holds its FQL program and its actions in canonical form.
 * Applying a destination's filters evaluates every condition against the event
 * as received (so the result does not depend on the order filters were
 * created in), then runs the matching filters' actions grouped by kind, in the
 * documented order: sample, drop, drop fields (blacklist), allow fields
 * (whitelist). Dropping before sampling gives the same outcome and skips the
 * random draw, so drop is checked first. The event is deep-copied only if a
 * field action actually applies. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/filters.h"
#include "filters/filters_int.h"
#include "fql/fql.h"

enum action_kind { A_DROP, A_SAMPLE, A_BLACKLIST, A_WHITELIST };

typedef struct target {
    df_path path;
    const json_t *names; /* array of strings, borrowed from the canonical actions */
} target;

typedef struct action {
    enum action_kind kind;
    double percent;
    bool has_path;
    df_path path;       /* sample_event */
    size_t ntargets;    /* *_fields */
    target *targets;
} action;

struct dest_filter {
    fql_program *cond;
    bool enabled, broken;
    size_t nactions;
    action *actions;
    json_t *canonical; /* canonical actions array */
};

/* ---- paths ------------------------------------------------------------- */

bool df__path_parse(const char *s, size_t len, df_path *out, const char **why)
{
    out->nseg = 0;
    out->seg = NULL;
    if (len == 0)
        return true; /* "" is the event itself */
    size_t nseg = 1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '.')
            nseg++;
    }
    out->seg = calloc(nseg, sizeof *out->seg);
    if (!out->seg) {
        *why = "out of memory";
        return false;
    }
    size_t i = 0;
    while (out->nseg < nseg) {
        struct df_seg *seg = &out->seg[out->nseg++];
        seg->key = malloc(len - i + 1);
        if (!seg->key) {
            *why = "out of memory";
            df__path_free(out);
            return false;
        }
        size_t k = 0;
        while (i < len && s[i] != '.') {
            if (s[i] == '\\') {
                if (++i >= len) {
                    *why = "'\\' at the end escapes nothing";
                    df__path_free(out);
                    return false;
                }
            }
            seg->key[k++] = s[i++];
        }
        seg->key[k] = '\0';
        seg->len = k;
        i++; /* the '.' */
        /* Canonical decimal segments also index lists, as in FQL. */
        seg->index = -1;
        if (k > 0 && k <= 9 && (seg->key[0] != '0' || k == 1)) {
            long v = 0;
            size_t j;
            for (j = 0; j < k && seg->key[j] >= '0' && seg->key[j] <= '9'; j++)
                v = v * 10 + (seg->key[j] - '0');
            if (j == k)
                seg->index = v;
        }
    }
    return true;
}

void df__path_free(df_path *p)
{
    for (size_t i = 0; i < p->nseg; i++)
        free(p->seg[i].key);
    free(p->seg);
    p->seg = NULL;
    p->nseg = 0;
}

json_t *df__path_get(const json_t *cur, const df_path *p)
{
    for (size_t i = 0; i < p->nseg && cur; i++) {
        if (json_is_object(cur))
            cur = json_object_getn(cur, p->seg[i].key, p->seg[i].len);
        else if (json_is_array(cur) && p->seg[i].index >= 0)
            cur = json_array_get(cur, (size_t)p->seg[i].index);
        else
            return NULL;
    }
    return (json_t *)cur;
}

/* ---- validation -------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (0 if it is not one). */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
             : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (n == 0 || n > avail)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0; /* overlong, surrogate or beyond U+10FFFF */
    return n;
}

/* User text quoted in messages (keys, types, parser errors): at most ~40
 * bytes, control characters and invalid UTF-8 replaced by '?', so the message
 * is always valid for a JSON error body. */
static void printable(char *buf, size_t n, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;
    while (i < len) {
        size_t k = utf8_seq(p + i, len - i);
        if (o + (k ? k : 1) + 4 > n || o >= 40) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (k == 0 || (k == 1 && (p[i] < 0x20 || p[i] == 0x7f))) {
            buf[o++] = '?';
            i++;
        } else {
            memcpy(buf + o, p + i, k);
            o += k;
            i += k;
        }
    }
    buf[o] = '\0';
}

static bool fail(dest_filter_error *err, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(dest_filter_error *err, const char *prefix, const char *fmt, ...)
{
    if (err) {
        int k = snprintf(err->message, sizeof err->message, "%s", prefix);
        if (k < 0 || (size_t)k >= sizeof err->message)
            k = 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message + k, sizeof err->message - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return false;
}

static const json_t *field_list(const json_t *spec)
{
    if (json_is_array(spec))
        return spec; /* {"properties": ["a"]}: the successor API's flat form */
    const json_t *l = json_object_get(spec, "fields");
    return l ? l : json_object_get(spec, "field"); /* one TS client's spelling */
}

static bool compile_fields(action *a, const json_t *in, json_t *canon, const char *pfx,
                           dest_filter_error *err)
{
    const json_t *fields = json_object_get(in, "fields");
    if (!fields)
        return fail(err, pfx, "fields: is required");
    if (!json_is_object(fields))
        return fail(err, pfx, "fields: must be an object mapping a path to {\"fields\": [...]}");
    json_t *cf = json_object();
    if (!cf || json_object_set_new(canon, "fields", cf))
        return fail(err, pfx, "out of memory");
    a->targets = calloc(json_object_size(fields) ? json_object_size(fields) : 1,
                        sizeof *a->targets);
    if (!a->targets)
        return fail(err, pfx, "out of memory");
    const char *key;
    size_t klen;
    json_t *spec;
    json_object_keylen_foreach((json_t *)fields, key, klen, spec) {
        char name[64];
        printable(name, sizeof name, key, klen);
        if (!json_is_object(spec) && !json_is_array(spec) && !json_is_null(spec))
            return fail(err, pfx, "fields.%s: must be an object with a \"fields\" list", name);
        const json_t *list = json_is_null(spec) ? NULL : field_list(spec);
        if (list && !json_is_array(list) && !json_is_null(list))
            return fail(err, pfx, "fields.%s.fields: must be a list of strings", name);
        json_t *names = json_array();
        json_t *entry = json_object();
        if (!names || !entry || json_object_set_new(entry, "fields", names) ||
            json_object_setn_new(cf, key, klen, entry))
            return fail(err, pfx, "out of memory");
        size_t i;
        json_t *n;
        if (json_is_array(list)) {
            json_array_foreach(list, i, n) {
                if (!json_is_string(n))
                    return fail(err, pfx, "fields.%s.fields[%zu]: must be a string", name, i);
                if (json_array_append(names, n))
                    return fail(err, pfx, "out of memory");
            }
        }
        target *t = &a->targets[a->ntargets];
        const char *why = NULL;
        if (!df__path_parse(key, klen, &t->path, &why))
            return fail(err, pfx, "fields.%s: %s", name, why);
        t->names = names;
        a->ntargets++;
    }
    return true;
}

static bool compile_action(action *a, const json_t *in, json_t *canon, size_t idx,
                           const char *prefix, dest_filter_error *err)
{
    char pfx[96];
    snprintf(pfx, sizeof pfx, "%sactions[%zu].", prefix, idx);
    if (!json_is_object(in)) {
        pfx[strlen(pfx) - 1] = '\0';
        return fail(err, pfx, ": must be an object");
    }
    const json_t *type = json_object_get(in, "type");
    if (!type)
        return fail(err, pfx, "type: is required");
    if (!json_is_string(type))
        return fail(err, pfx, "type: must be a string");
    const char *t = json_string_value(type);
    const char *canon_type;
    if (!strcmp(t, "drop_event")) {
        a->kind = A_DROP, canon_type = "drop_event";
    } else if (!strcmp(t, "sample_event")) {
        a->kind = A_SAMPLE, canon_type = "sample_event";
    } else if (!strcmp(t, "blacklist_fields") || !strcmp(t, "blocklist_fields")) {
        a->kind = A_BLACKLIST, canon_type = "blacklist_fields";
    } else if (!strcmp(t, "whitelist_fields") || !strcmp(t, "allowlist_fields")) {
        a->kind = A_WHITELIST, canon_type = "whitelist_fields";
    } else {
        char name[64];
        printable(name, sizeof name, t, json_string_length(type));
        return fail(err, pfx,
                    "type: unknown action type '%s' (expected drop_event, sample_event, "
                    "whitelist_fields or blacklist_fields)",
                    name);
    }
    if (json_object_set_new(canon, "type", json_string(canon_type)))
        return fail(err, pfx, "out of memory");
    switch (a->kind) {
    case A_DROP:
        return true;
    case A_SAMPLE: {
        const json_t *pct = json_object_get(in, "percent");
        if (!pct)
            return fail(err, pfx, "percent: is required");
        if (!json_is_number(pct) || !(json_number_value(pct) >= 0 && json_number_value(pct) <= 1))
            return fail(err, pfx, "percent: must be a number between 0 and 1");
        a->percent = json_number_value(pct);
        if (json_object_set(canon, "percent", (json_t *)pct)) /* echo as given */
            return fail(err, pfx, "out of memory");
        const json_t *path = json_object_get(in, "path");
        if (path && !json_is_null(path)) {
            if (!json_is_string(path))
                return fail(err, pfx, "path: must be a string");
            if (json_string_length(path) > 0) {
                const char *why = NULL;
                if (!df__path_parse(json_string_value(path), json_string_length(path), &a->path,
                                    &why))
                    return fail(err, pfx, "path: %s", why);
                a->has_path = true;
            }
            if (json_object_set(canon, "path", (json_t *)path))
                return fail(err, pfx, "out of memory");
        }
        return true;
    }
    default:
        return compile_fields(a, in, canon, pfx, err);
    }
}

static void free_actions(dest_filter *f)
{
    for (size_t i = 0; i < f->nactions; i++) {
        action *a = &f->actions[i];
        df__path_free(&a->path);
        for (size_t t = 0; t < a->ntargets; t++)
            df__path_free(&a->targets[t].path);
        free(a->targets);
    }
    free(f->actions);
    f->actions = NULL;
    f->nactions = 0;
}

void dest_filter_free(dest_filter *f)
{
    if (!f)
        return;
    fql_free(f->cond);
    free_actions(f);
    json_decref(f->canonical);
    free(f);
}

/* `prefix` is prepended to field names in messages ("filter." for preview). */
static dest_filter *compile(const json_t *obj, const char *prefix, dest_filter_error *err)
{
    dest_filter *f = calloc(1, sizeof *f);
    if (!f) {
        fail(err, prefix, "out of memory");
        return NULL;
    }
    bool ok = false;
    if (!json_is_object(obj)) {
        char p[32];
        snprintf(p, sizeof p, "%s", prefix);
        if (*p)
            p[strlen(p) - 1] = '\0'; /* "filter." → "filter" */
        fail(err, *p ? p : "filter", ": must be an object");
        goto out;
    }
    const json_t *en = json_object_get(obj, "enabled");
    if (en && !json_is_boolean(en) && !json_is_null(en)) {
        fail(err, prefix, "enabled: must be a boolean");
        goto out;
    }
    f->enabled = json_is_true(en);
    const json_t *cond = json_object_get(obj, "if");
    if (!cond) {
        fail(err, prefix, "if: is required (an FQL condition, or \"all\")");
        goto out;
    }
    if (!json_is_string(cond)) {
        fail(err, prefix, "if: must be a string");
        goto out;
    }
    fql_error fe;
    f->cond = fql_compile(json_string_value(cond), json_string_length(cond), &fe);
    if (!f->cond) {
        fail(err, prefix, "if: %s", fe.message);
        goto out;
    }
    const json_t *acts = json_object_get(obj, "actions");
    if (!acts) {
        fail(err, prefix, "actions: is required");
        goto out;
    }
    if (!json_is_array(acts)) {
        fail(err, prefix, "actions: must be a list of actions");
        goto out;
    }
    size_t n = json_array_size(acts);
    if (n == 0) {
        fail(err, prefix, "actions: must contain at least one action");
        goto out;
    }
    if (n > DEST_FILTER_MAX_ACTIONS) {
        fail(err, prefix, "actions: at most %d actions are allowed", DEST_FILTER_MAX_ACTIONS);
        goto out;
    }
    f->canonical = json_array();
    f->actions = calloc(n, sizeof *f->actions);
    if (!f->canonical || !f->actions) {
        fail(err, prefix, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *canon = json_object();
        if (!canon || json_array_append_new(f->canonical, canon)) {
            fail(err, prefix, "out of memory");
            goto out;
        }
        f->nactions++;
        if (!compile_action(&f->actions[i], json_array_get(acts, i), canon, i, prefix, err))
            goto out;
    }
    ok = true;
out:
    if (!ok) {
        dest_filter_free(f);
        return NULL;
    }
    return f;
}

dest_filter *dest_filter_compile(const json_t *filter, dest_filter_error *err)
{
    return compile(filter, "", err);
}

dest_filter *dest_filter_compile_stored(const json_t *filter)
{
    dest_filter *f = compile(filter, "", NULL);
    if (f)
        return f;
    f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->broken = true;
    f->enabled = json_is_true(json_object_get(filter, "enabled"));
    f->canonical = json_array();
    return f;
}

bool dest_filter_enabled(const dest_filter *f) { return f && f->enabled; }
bool dest_filter_broken(const dest_filter *f) { return !f || f->broken; }
const json_t *dest_filter_actions(const dest_filter *f) { return f ? f->canonical : NULL; }

/* ---- application ------------------------------------------------------- */

static double unit_from_digest(const unsigned char d[16])
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | d[i];
    return (double)(x >> 11) * 0x1p-53; /* 53 random bits → uniform [0, 1) */
}

/* Keep the event? Deterministic per value when a path is given: the same
 * value always lands on the same number u, and u < percent is monotone in
 * percent, so raising the percentage never drops a value that was kept. */
static bool sample_keep(const action *a, const json_t *event)
{
    if (a->percent <= 0)
        return false;
    if (a->percent >= 1)
        return true;
    double u;
    if (a->has_path) {
        df_buf b = {0};
        df__json_write(&b, df__path_get(event, &a->path), -1);
        if (b.oom) {
            df__buf_free(&b);
            return false;
        }
        df_md5 m;
        unsigned char d[16];
        df__md5_init(&m);
        df__md5_update(&m, b.p, b.len);
        df__md5_final(&m, d);
        df__buf_free(&b);
        u = unit_from_digest(d);
    } else {
        uint64_t x = (uint64_t)arc4random() << 32 | arc4random();
        u = (double)(x >> 11) * 0x1p-53;
    }
    return u < a->percent;
}

static bool listed(const json_t *names, const char *key, size_t klen)
{
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n) {
        if (json_string_length(n) == klen && !memcmp(json_string_value(n), key, klen))
            return true;
    }
    return false;
}

static void fields_on_object(json_t *obj, const json_t *names, bool whitelist)
{
    if (!json_is_object(obj))
        return;
    if (whitelist) {
        const char *key;
        size_t klen;
        json_t *v;
        void *tmp;
        json_object_keylen_foreach_safe(obj, tmp, key, klen, v) {
            if (!listed(names, key, klen))
                json_object_deln(obj, key, klen);
        }
    } else {
        size_t i;
        json_t *n;
        json_array_foreach(names, i, n) {
            json_object_deln(obj, json_string_value(n), json_string_length(n));
        }
    }
}

static void apply_fields(json_t *event, const action *a)
{
    for (size_t t = 0; t < a->ntargets; t++) {
        json_t *obj = df__path_get(event, &a->targets[t].path);
        if (json_is_array(obj)) { /* a list of objects: every element */
            size_t i;
            json_t *el;
            json_array_foreach(obj, i, el) {
                fields_on_object(el, a->targets[t].names, a->kind == A_WHITELIST);
            }
        } else {
            fields_on_object(obj, a->targets[t].names, a->kind == A_WHITELIST);
        }
    }
}

json_t *dest_filters_apply(dest_filter *const *filters, size_t n, const json_t *event,
                           bool include_disabled)
{
    if (!event)
        return NULL;
    bool small[32], *match = n <= 32 ? small : malloc(n * sizeof *match);
    if (!match)
        return NULL; /* fail closed */
    bool any_fields = false, dropped = false;
    for (size_t i = 0; i < n; i++) {
        const dest_filter *f = filters[i];
        match[i] = false;
        if (!f || (!f->enabled && !include_disabled))
            continue;
        if (f->broken) {
            dropped = true; /* fail closed */
            continue;
        }
        int r = fql_eval(f->cond, event);
        if (r == FQL_ERROR)
            dropped = true;
        match[i] = r == 1;
    }
    for (size_t i = 0; i < n && !dropped; i++) /* drop */
        for (size_t k = 0; match[i] && k < filters[i]->nactions; k++)
            if (filters[i]->actions[k].kind == A_DROP)
                dropped = true;
    for (size_t i = 0; i < n && !dropped; i++) /* sample */
        for (size_t k = 0; match[i] && k < filters[i]->nactions && !dropped; k++) {
            const action *a = &filters[i]->actions[k];
            if (a->kind == A_SAMPLE && !sample_keep(a, event))
                dropped = true;
            if (a->kind == A_BLACKLIST || a->kind == A_WHITELIST)
                any_fields = true;
        }
    json_t *out = NULL;
    if (!dropped && !any_fields)
        out = json_incref((json_t *)event);
    else if (!dropped && (out = json_deep_copy(event))) {
        for (int pass = 0; pass < 2; pass++) /* blacklist, then whitelist */
            for (size_t i = 0; i < n; i++)
                for (size_t k = 0; match[i] && k < filters[i]->nactions; k++)
                    if (filters[i]->actions[k].kind == (pass ? A_WHITELIST : A_BLACKLIST))
                        apply_fields(out, &filters[i]->actions[k]);
    }
    if (match != small)
        free(match);
    return out;
}

/* ---- preview ----------------------------------------------------------- */

static json_t *parse_input(const json_t *input, dest_filter_error *err)
{
    size_t len = json_string_length(input);
    if (len > DEST_FILTER_PREVIEW_MAX_INPUT) {
        fail(err, "", "input: event too large for preview (%zu bytes, the limit is %d)", len,
             DEST_FILTER_PREVIEW_MAX_INPUT);
        return NULL;
    }
    json_error_t je;
    json_t *ev = json_loadb(json_string_value(input), len, JSON_ALLOW_NUL, &je);
    if (!ev && strstr(je.text, "too big integer"))
        /* Integers beyond 64 bits: keep going with them as doubles, as the
         * JavaScript and Go implementations would. */
        ev = json_loadb(json_string_value(input), len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL,
                        &je);
    if (!ev) {
        char text[JSON_ERROR_TEXT_LENGTH];
        printable(text, sizeof text, je.text, strlen(je.text));
        fail(err, "", "input: invalid JSON: %s at line %d, column %d", text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(ev)) {
        json_decref(ev);
        fail(err, "", "input: must be a JSON object (the event)");
        return NULL;
    }
    return ev;
}

json_t *dest_filter_preview(const json_t *request, dest_filter_error *err)
{
    if (!json_is_object(request)) {
        fail(err, "", "request body must be a JSON object");
        return NULL;
    }
    const json_t *fobj = json_object_get(request, "filter");
    const json_t *input = json_object_get(request, "input");
    if (!fobj) {
        fail(err, "", "filter: is required");
        return NULL;
    }
    if (!input) {
        fail(err, "", "input: is required (the event as a JSON-encoded string)");
        return NULL;
    }
    if (!json_is_string(input)) {
        fail(err, "", "input: must be a string (the event as a JSON-encoded string)");
        return NULL;
    }
    dest_filter *f = compile(fobj, "filter.", err);
    if (!f)
        return NULL;
    json_t *ev = parse_input(input, err);
    if (!ev) {
        dest_filter_free(f);
        return NULL;
    }
    json_t *res = dest_filters_apply(&f, 1, ev, true); /* preview ignores "enabled" */
    df_buf out = {0}, pin = {0}, pout = {0}, diff = {0};
    bool ok = df__json_write(&out, res, -1) && df__json_write(&pin, ev, 0) &&
              df__json_write(&pout, res, 0);
    if (!ok)
        fail(err, "", "input: event nested too deeply");
    else if (out.oom || pin.oom || pout.oom || !df__line_diff(pin.p, pin.len, pout.p, pout.len, &diff))
        ok = !fail(err, "", "out of memory");
    json_t *resp = NULL;
    if (ok) {
        resp = json_pack("{s:O, s:s%, s:s%}", "input", input, "output", out.p, out.len, "diff",
                         diff.p ? diff.p : "", diff.len);
        if (!resp)
            fail(err, "", "out of memory");
    }
    df__buf_free(&out);
    df__buf_free(&pin);
    df__buf_free(&pout);
    df__buf_free(&diff);
    json_decref(res);
    json_decref(ev);
    dest_filter_free(f);
    return resp;
}
