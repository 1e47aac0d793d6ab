/*
 * compile.c — turns a JSON Schema document into the node graph that validate.c runs.
 *
 * Three steps:
 *  1. scan: walk every document (the root, and each one the loader returns) through the
 *     keywords that hold subschemas, computing each subschema's base URI from $id/id
 *     and registering the URIs and plain-name anchors it defines. Only schema positions
 *     are walked, so an "$id" inside "enum" or "const" is data, not an identifier.
 *  2. compile: build a node per subschema object, with one instruction per keyword.
 *     Nodes are keyed by the JSON value they come from, so a subschema reached both by
 *     position and by $ref is compiled once. A $ref is resolved to its target JSON
 *     value at once but the target is compiled later from a work list, which keeps the
 *     recursion as deep as the document's nesting and makes recursive schemas trivial.
 *  3. check: reject $ref cycles that never descend into the instance (they would
 *     recurse forever at validation time).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/internal.h"

typedef struct where {
    const char *base; /* base URI (without fragment) */
    uint8_t draft;
    int doc;          /* index into schema_t.docs */
    const char *ptr;  /* JSON pointer inside that document */
} where_t;

typedef struct pinfo {
    const json_t *j;
    where_t w;
    node_t *node;
} pinfo_t;

typedef struct sentry {
    const char *key;
    json_t *j; /* NULL: a document the loader did not know */
} sentry_t;

typedef struct pending {
    node_t *owner;
    size_t op;
    json_t *target;
    where_t w; /* used when the target was never scanned */
} pending_t;

typedef struct comp {
    schema_t *s;
    const schema_options_t *opts;
    uint64_t formats;
    schema_error_t *err;
    bool failed;
    pinfo_t *pm;
    size_t pm_n, pm_cap;
    sentry_t *sm;
    size_t sm_n, sm_cap;
    pending_t *pend;
    size_t npend, cappend;
    const char **docbase; /* base URI of each document's root */
} comp_t;

/* ----- errors ----------------------------------------------------------------------------- */

static void fail(comp_t *c, const where_t *w, const char *kw, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(comp_t *c, const where_t *w, const char *kw, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    if (!c->err)
        return;
    char msg[sizeof c->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sbuf_t p = {0};
    sch_sb_puts(&p, w ? w->ptr : "");
    if (kw)
        sch_sb_pointer_seg(&p, kw, strlen(kw));
    if (w && w->doc > 0)
        schema_set_error(c->err, p.s ? p.s : "", p.len, "in %s: %s", c->docbase[w->doc], msg);
    else
        schema_set_error(c->err, p.s ? p.s : "", p.len, "%s", msg);
    free(p.s);
}

static void oom(comp_t *c) { fail(c, NULL, NULL, "out of memory"); }

/* Cuts s to at most n bytes and ends it with "...", never inside a UTF-8 sequence
 * (the message becomes a JSON string, which must be valid UTF-8). Returns the length. */
static size_t shorten(char *s, size_t n)
{
    while (n > 0 && ((unsigned char)s[n - 1] & 0xC0) == 0x80)
        n--;
    if (n > 0 && (unsigned char)s[n - 1] >= 0xC0)
        n--;
    memcpy(s + n, "...", 4);
    return n + 3;
}

/* A violation message built once, at compile time. */
static str_t amsg(comp_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static str_t amsg(comp_t *c, const char *fmt, ...)
{
    char buf[320];
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    size_t n = r < 0 ? 0 : (size_t)r;
    if (n >= sizeof buf) /* long enum lists and patterns */
        n = shorten(buf, sizeof buf - 4);
    const char *m = sch_arena_strndup(&c->s->arena, buf, n);
    if (!m)
        oom(c);
    return (str_t){m ? m : "", m ? (uint32_t)n : 0};
}

/* A value as compact JSON, for messages. */
static void dump_short(const json_t *j, char *buf, size_t len)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, len, "%s", s ? s : "(value)");
    if (s && strlen(s) >= len)
        shorten(buf, len - 4);
    free(s);
}

/* ----- maps: JSON value -> scan info, URI -> JSON value ------------------------------------------ */

static size_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 32;
    return (size_t)x;
}

static pinfo_t *pm_get(comp_t *c, const json_t *j)
{
    if (!c->pm_cap)
        return NULL;
    for (size_t i = ptr_hash(j) & (c->pm_cap - 1);; i = (i + 1) & (c->pm_cap - 1)) {
        if (c->pm[i].j == j)
            return &c->pm[i];
        if (!c->pm[i].j)
            return NULL;
    }
}

static pinfo_t *pm_put(comp_t *c, const json_t *j, const where_t *w)
{
    if ((c->pm_n + 1) * 2 > c->pm_cap) {
        size_t cap = c->pm_cap ? c->pm_cap * 2 : 64;
        pinfo_t *pm = calloc(cap, sizeof *pm);
        if (!pm) {
            oom(c);
            return NULL;
        }
        for (size_t i = 0; i < c->pm_cap; i++) {
            if (!c->pm[i].j)
                continue;
            size_t k = ptr_hash(c->pm[i].j) & (cap - 1);
            while (pm[k].j)
                k = (k + 1) & (cap - 1);
            pm[k] = c->pm[i];
        }
        free(c->pm);
        c->pm = pm;
        c->pm_cap = cap;
    }
    size_t k = ptr_hash(j) & (c->pm_cap - 1);
    while (c->pm[k].j)
        k = (k + 1) & (c->pm_cap - 1);
    c->pm[k] = (pinfo_t){.j = j, .w = *w};
    c->pm_n++;
    return &c->pm[k];
}

static size_t str_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return (size_t)h;
}

static sentry_t *sm_find(comp_t *c, const char *key)
{
    if (!c->sm_cap)
        return NULL;
    for (size_t i = str_hash(key) & (c->sm_cap - 1);; i = (i + 1) & (c->sm_cap - 1)) {
        if (!c->sm[i].key)
            return NULL;
        if (strcmp(c->sm[i].key, key) == 0)
            return &c->sm[i];
    }
}

/* First registration wins: a document's own $id must not be shadowed by a subschema
 * that repeats it. */
static void sm_add(comp_t *c, const char *key, json_t *j)
{
    if (sm_find(c, key))
        return;
    if ((c->sm_n + 1) * 2 > c->sm_cap) {
        size_t cap = c->sm_cap ? c->sm_cap * 2 : 32;
        sentry_t *sm = calloc(cap, sizeof *sm);
        if (!sm) {
            oom(c);
            return;
        }
        for (size_t i = 0; i < c->sm_cap; i++) {
            if (!c->sm[i].key)
                continue;
            size_t k = str_hash(c->sm[i].key) & (cap - 1);
            while (sm[k].key)
                k = (k + 1) & (cap - 1);
            sm[k] = c->sm[i];
        }
        free(c->sm);
        c->sm = sm;
        c->sm_cap = cap;
    }
    char *k2 = sch_arena_strndup(&c->s->arena, key, strlen(key));
    if (!k2) {
        oom(c);
        return;
    }
    size_t k = str_hash(key) & (c->sm_cap - 1);
    while (c->sm[k].key)
        k = (k + 1) & (c->sm_cap - 1);
    c->sm[k] = (sentry_t){k2, j};
    c->sm_n++;
}

/* ----- scan ----------------------------------------------------------------------------------- */

enum child_kind { CK_NONE, CK_ONE, CK_MAP, CK_ARR, CK_ONE_OR_ARR };

static enum child_kind child_kind(const char *k)
{
    static const struct {
        const char *k;
        enum child_kind kind;
    } t[] = {
        {"properties", CK_MAP},     {"patternProperties", CK_MAP}, {"definitions", CK_MAP},
        {"dependencies", CK_MAP},   {"additionalProperties", CK_ONE},
        {"additionalItems", CK_ONE}, {"items", CK_ONE_OR_ARR},     {"contains", CK_ONE},
        {"propertyNames", CK_ONE},  {"not", CK_ONE},               {"if", CK_ONE},
        {"then", CK_ONE},           {"else", CK_ONE},              {"allOf", CK_ARR},
        {"anyOf", CK_ARR},          {"oneOf", CK_ARR},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(k, t[i].k) == 0)
            return t[i].kind;
    return CK_NONE;
}

static const char *ptr_join(comp_t *c, const char *ptr, const char *k, size_t kn, const char *k2,
                            size_t k2n, long idx)
{
    sbuf_t b = {0};
    sch_sb_puts(&b, ptr);
    if (k)
        sch_sb_pointer_seg(&b, k, kn);
    if (k2)
        sch_sb_pointer_seg(&b, k2, k2n);
    if (idx >= 0)
        sch_sb_printf(&b, "/%ld", idx);
    const char *r = b.failed ? NULL : sch_arena_strndup(&c->s->arena, b.s ? b.s : "", b.len);
    free(b.s);
    if (!r)
        oom(c);
    return r;
}

static void scan(comp_t *c, json_t *j, where_t w, int depth);

static void scan_child(comp_t *c, json_t *v, const where_t *w, const char *k, const char *k2,
                       size_t k2n, long idx, int depth)
{
    if (!json_is_object(v))
        return;
    where_t cw = *w;
    cw.ptr = ptr_join(c, w->ptr, k, strlen(k), k2, k2n, idx);
    if (cw.ptr)
        scan(c, v, cw, depth + 1);
}

static void scan(comp_t *c, json_t *j, where_t w, int depth)
{
    if (c->failed || !json_is_object(j) || pm_get(c, j))
        return;
    if (depth > SCHEMA_MAX_DEPTH) {
        fail(c, &w, NULL, "schema nested deeper than %d levels", SCHEMA_MAX_DEPTH);
        return;
    }
    /* In draft-07 and earlier "$ref" makes its siblings ignored, "$id" included. */
    json_t *id = json_object_get(j, w.draft == SCHEMA_DRAFT4 ? "id" : "$id");
    if (json_is_string(id) && !json_object_get(j, "$ref")) {
        char *u = sch_uri_resolve(w.base, json_string_value(id));
        if (!u) {
            oom(c);
            return;
        }
        size_t dl = sch_uri_doc_len(u);
        char *doc = sch_arena_strndup(&c->s->arena, u, dl);
        if (doc) {
            sm_add(c, doc, j);
            w.base = doc;
            if (u[dl] == '#' && u[dl + 1] && u[dl + 1] != '/')
                sm_add(c, u, j); /* plain-name fragment: a location-independent anchor */
        } else {
            oom(c);
        }
        free(u);
    }
    if (!pm_put(c, j, &w))
        return;
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
        switch (child_kind(k)) {
        case CK_NONE:
            break;
        case CK_ONE:
            scan_child(c, v, &w, k, NULL, 0, -1, depth);
            break;
        case CK_MAP:
            if (json_is_object(v))
                for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it))
                    scan_child(c, json_object_iter_value(it), &w, k, json_object_iter_key(it),
                               json_object_iter_key_len(it), -1, depth);
            break;
        case CK_ONE_OR_ARR:
            if (!json_is_array(v)) {
                scan_child(c, v, &w, k, NULL, 0, -1, depth);
                break;
            }
            /* fall through */
        case CK_ARR:
            if (json_is_array(v))
                for (size_t i = 0; i < json_array_size(v); i++)
                    scan_child(c, json_array_get(v, i), &w, k, NULL, 0, (long)i, depth);
            break;
        }
    }
}

schema_draft_t schema_draft_of_uri(const char *u)
{
    if (strncmp(u, "http://", 7) == 0)
        u += 7;
    else if (strncmp(u, "https://", 8) == 0)
        u += 8;
    else
        return SCHEMA_DRAFT_AUTO;
    static const struct {
        const char *s;
        schema_draft_t d;
    } t[] = {{"json-schema.org/draft-04/schema", SCHEMA_DRAFT4},
             {"json-schema.org/draft-06/schema", SCHEMA_DRAFT6},
             {"json-schema.org/draft-07/schema", SCHEMA_DRAFT7}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t n = strlen(t[i].s);
        if (strncmp(u, t[i].s, n) == 0 && (u[n] == '\0' || (u[n] == '#' && u[n + 1] == '\0')))
            return t[i].d;
    }
    return SCHEMA_DRAFT_AUTO;
}

static int add_doc(comp_t *c, json_t *doc, const char *base)
{
    schema_t *s = c->s;
    json_t **docs = realloc(s->docs, (s->ndocs + 1) * sizeof *docs);
    const char **bases = realloc(c->docbase, (s->ndocs + 1) * sizeof *bases);
    if (bases)
        c->docbase = bases;
    if (docs)
        s->docs = docs;
    if (!docs || !bases) {
        json_decref(doc);
        oom(c);
        return -1;
    }
    s->docs[s->ndocs] = doc;
    c->docbase[s->ndocs] = base;
    return (int)s->ndocs++;
}

/* Fetches a document through the caller's loader and scans it. */
static json_t *load(comp_t *c, const char *docuri, uint8_t draft)
{
    sentry_t *e = sm_find(c, docuri);
    if (e)
        return e->j;
    json_t *doc = c->opts->loader ? c->opts->loader(docuri, c->opts->loader_ctx) : NULL;
    if (!doc) {
        sm_add(c, docuri, NULL);
        return NULL;
    }
    const char *base = sch_arena_strndup(&c->s->arena, docuri, strlen(docuri));
    int idx = base ? add_doc(c, doc, base) : -1;
    if (idx < 0) {
        if (!base)
            json_decref(doc);
        oom(c);
        return NULL;
    }
    json_t *sv = json_object_get(doc, "$schema");
    if (json_is_string(sv) && schema_draft_of_uri(json_string_value(sv)) != SCHEMA_DRAFT_AUTO)
        draft = (uint8_t)schema_draft_of_uri(json_string_value(sv));
    sm_add(c, base, doc);
    scan(c, doc, (where_t){base, draft, idx, ""}, 0);
    return doc;
}

/* Resolves `ref` against `w`; fills `tw` with where the target lives. */
static json_t *resolve(comp_t *c, const where_t *w, const char *ref, where_t *tw)
{
    char *u = sch_uri_resolve(w->base, ref);
    if (!u) {
        oom(c);
        return NULL;
    }
    json_t *t = NULL;
    size_t dl = sch_uri_doc_len(u);
    const char *frag = u[dl] == '#' ? u + dl + 1 : "";
    u[dl] = '\0';
    size_t flen;
    char *fdec = sch_uri_unescape(frag, strlen(frag), &flen);
    if (!fdec) {
        free(u);
        oom(c);
        return NULL;
    }
    json_t *doc = load(c, u, w->draft);
    if (fdec[0] == '\0' || fdec[0] == '/') {
        t = doc ? sch_json_pointer_get(doc, fdec, flen) : NULL;
    } else {
        u[dl] = '#';
        sentry_t *e = sm_find(c, u);
        t = e ? e->j : NULL;
        u[dl] = '\0';
    }
    if (t) {
        pinfo_t *ti = pm_get(c, t), *di = doc ? pm_get(c, doc) : NULL;
        if (ti) {
            *tw = ti->w;
        } else {
            /* a part no scan walked (inside an unknown keyword, say) */
            *tw = di ? di->w : *w;
            sbuf_t b = {0};
            sch_sb_puts(&b, di ? di->w.ptr : "");
            sch_sb_putn(&b, fdec, flen);
            tw->ptr = b.failed ? NULL : sch_arena_strndup(&c->s->arena, b.s ? b.s : "", b.len);
            free(b.s);
            if (!tw->ptr)
                oom(c);
        }
    }
    free(fdec);
    free(u);
    return t;
}

/* ----- compile ----------------------------------------------------------------------------------- */

static node_t *compile_node(comp_t *c, json_t *j, const where_t *w, int depth);

/* The items of an enum made only of strings (the usual case), as keys: a string
 * instance is then matched by head and length, without the general equality. */
static const skey_t *enum_strings(comp_t *c, json_t *arr)
{
    size_t n = json_array_size(arr);
    for (size_t i = 0; i < n; i++)
        if (!json_is_string(json_array_get(arr, i)))
            return NULL;
    skey_t *k = sch_arena_alloc(&c->s->arena, (n ? n : 1) * sizeof *k);
    if (!k) {
        oom(c);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        k[i] = sch_key(json_string_value(e), json_string_length(e));
    }
    return k;
}

/* Does the instruction validate through subschemas (and so recurse)? */
static bool op_has_sub(int op)
{
    switch (op) {
    case OP_REF: case OP_ALLOF: case OP_ANYOF: case OP_ONEOF: case OP_NOT: case OP_IF:
    case OP_ITEMS: case OP_TUPLE: case OP_CONTAINS: case OP_PROPS: case OP_DEPS:
    case OP_PROPNAMES:
        return true;
    default:
        return false;
    }
}

static int op_cat(int op)
{
    if (op <= OP_IF)
        return CAT_ANY;
    if (op <= OP_MULOF)
        return CAT_NUM;
    if (op <= OP_FORMAT)
        return CAT_STR;
    if (op <= OP_CONTAINS)
        return CAT_ARR;
    return CAT_OBJ;
}

static node_t *child(comp_t *c, json_t *v, const where_t *w, const char *k, const char *k2,
                     size_t k2n, long idx, int depth)
{
    where_t cw = *w;
    cw.ptr = ptr_join(c, w->ptr, k, strlen(k), k2, k2n, idx);
    if (!cw.ptr)
        return NULL;
    return compile_node(c, v, &cw, depth + 1);
}

static bool get_count(comp_t *c, json_t *v, const where_t *w, const char *k, size_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (size_t)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= 0 && sch_num_is_integral(sch_num_of(v))) {
            *out = d >= 18446744073709551615.0 ? SIZE_MAX : (size_t)d;
            return true;
        }
    }
    fail(c, w, k, "\"%s\" must be a non-negative integer", k);
    return false;
}

static bool is_num(const json_t *v) { return json_is_integer(v) || json_is_real(v); }

/* enum and const values are compared with instances, which are views: keep a view. */
static const jview_t *value_view(comp_t *c, const json_t *v)
{
    if (!c->s->values && !(c->s->values = jview_doc_new())) {
        oom(c);
        return NULL;
    }
    const jview_t *r = jview_add(c->s->values, v);
    if (!r)
        oom(c);
    return r;
}

static bool keep_re(comp_t *c, re_t *re)
{
    schema_t *s = c->s;
    if (s->nres == s->capres) {
        size_t cap = s->capres ? s->capres * 2 : 8;
        re_t **v = realloc(s->res, cap * sizeof *v);
        if (!v) {
            sch_re_free(re);
            oom(c);
            return false;
        }
        s->res = v;
        s->capres = cap;
    }
    s->res[s->nres++] = re;
    return true;
}

static bool compile_re(comp_t *c, re_t *re, const char *src, size_t len, const where_t *w,
                       const char *k, const char *k2, size_t k2n)
{
    char msg[200];
    if (sch_re_compile(re, src, len, msg, sizeof msg) < 0) {
        where_t ew = *w;
        ew.ptr = ptr_join(c, w->ptr, k, strlen(k), k2, k2n, -1);
        if (ew.ptr)
            fail(c, &ew, NULL, "%s", msg);
        return false;
    }
    return keep_re(c, re);
}

static int prop_cmp(const void *a, const void *b)
{
    const prop_t *x = *(prop_t *const *)a, *y = *(prop_t *const *)b;
    if (x->key.n != y->key.n)
        return x->key.n < y->key.n ? -1 : 1;
    return memcmp(x->key.s, y->key.s, x->key.n);
}

/* Finds a multiplier that gives every property name its own slot, so that matching an
 * instance key costs one hash and one memcmp. Without one, lookups binary-search. */
static void build_prop_hash(comp_t *c, props_t *p)
{
    static const uint32_t muls[] = {0x01000193u, 0x2545F491u, 0x9E3779B9u, 0x85EBCA6Bu,
                                    0xC2B2AE35u, 0x27D4EB2Fu, 0x165667B1u, 0xD3A2646Bu};
    if (p->n == 0 || p->n > 4096)
        return;
    for (size_t m = 4; m <= 16 * p->n + 16 && m <= 65536; m *= 2) {
        if (m < 2 * p->n)
            continue;
        uint16_t *tab = sch_arena_alloc(&c->s->arena, m * sizeof *tab);
        if (!tab) {
            oom(c);
            return;
        }
        for (size_t t = 0; t < sizeof muls / sizeof muls[0]; t++) {
            memset(tab, 0, m * sizeof *tab);
            size_t i;
            for (i = 0; i < p->n; i++) {
                uint32_t h = sch_prop_hash(p->v[i].key.hash, muls[t]) & (uint32_t)(m - 1);
                if (tab[h])
                    break;
                tab[h] = (uint16_t)(i + 1);
            }
            if (i == p->n) {
                p->ph = tab;
                p->ph_mask = (uint32_t)(m - 1);
                p->ph_mul = muls[t];
                return;
            }
        }
    }
}

static props_t *compile_props(comp_t *c, json_t *j, const where_t *w, int depth)
{
    json_t *pr = json_object_get(j, "properties");
    json_t *pp = json_object_get(j, "patternProperties");
    json_t *ap = json_object_get(j, "additionalProperties");
    if (pr && !json_is_object(pr)) {
        fail(c, w, "properties", "\"properties\" must be an object");
        return NULL;
    }
    if (pp && !json_is_object(pp)) {
        fail(c, w, "patternProperties", "\"patternProperties\" must be an object");
        return NULL;
    }
    props_t *p = sch_arena_alloc(&c->s->arena, sizeof *p);
    if (!p)
        return NULL;
    p->n = json_object_size(pr);
    p->v = sch_arena_alloc(&c->s->arena, (p->n ? p->n : 1) * sizeof *p->v);
    p->npat = json_object_size(pp);
    p->pat = sch_arena_alloc(&c->s->arena, (p->npat ? p->npat : 1) * sizeof *p->pat);
    if (!p->v || !p->pat)
        return NULL;
    size_t i = 0;
    for (void *it = pr ? json_object_iter(pr) : NULL; it; it = json_object_iter_next(pr, it), i++) {
        p->v[i].key = sch_key(json_object_iter_key(it), json_object_iter_key_len(it));
        p->v[i].node = child(c, json_object_iter_value(it), w, "properties", p->v[i].key.s,
                             p->v[i].key.n, -1, depth);
        if (c->failed)
            return NULL;
        /* the child is complete here (only $ref targets are compiled later) */
        p->v[i].trivial = p->v[i].node->cat[CAT_N] == 0;
        p->v[i].leaf = p->v[i].node->leaf;
        p->v[i].draft = p->v[i].node->draft;
    }
    build_prop_hash(c, p);
    p->sorted = sch_arena_alloc(&c->s->arena, (p->n ? p->n : 1) * sizeof *p->sorted);
    if (!p->sorted)
        return NULL;
    for (i = 0; i < p->n; i++)
        p->sorted[i] = &p->v[i];
    qsort(p->sorted, p->n, sizeof *p->sorted, prop_cmp);
    i = 0;
    for (void *it = pp ? json_object_iter(pp) : NULL; it; it = json_object_iter_next(pp, it), i++) {
        const char *key = json_object_iter_key(it);
        size_t kn = json_object_iter_key_len(it);
        if (!compile_re(c, &p->pat[i].re, key, kn, w, "patternProperties", key, kn))
            return NULL;
        p->pat[i].src = key;
        p->pat[i].node = child(c, json_object_iter_value(it), w, "patternProperties", key, kn, -1,
                               depth);
        if (c->failed)
            return NULL;
    }
    if (json_is_false(ap)) {
        p->add_false = true;
    } else if (ap && !json_is_true(ap)) {
        p->add = child(c, ap, w, "additionalProperties", NULL, 0, -1, depth);
        if (c->failed)
            return NULL;
    }
    p->scan_keys = p->npat > 0 || p->add_false || p->add;
    return p;
}

static node_t **compile_list(comp_t *c, json_t *v, const where_t *w, const char *k, size_t *n,
                             int depth)
{
    if (!json_is_array(v) || json_array_size(v) == 0) {
        fail(c, w, k, "\"%s\" must be a non-empty array of schemas", k);
        return NULL;
    }
    *n = json_array_size(v);
    node_t **list = sch_arena_alloc(&c->s->arena, *n * sizeof *list);
    if (!list)
        return NULL;
    for (size_t i = 0; i < *n && !c->failed; i++)
        list[i] = child(c, json_array_get(v, i), w, k, NULL, 0, (long)i, depth);
    return c->failed ? NULL : list;
}

/* An array of property names; `aptr` is its JSON pointer, for errors. */
static bool compile_keys(comp_t *c, json_t *v, const where_t *w, const char *aptr, skey_t **out,
                         size_t *n)
{
    where_t ew = *w;
    ew.ptr = aptr;
    if (!json_is_array(v)) {
        fail(c, &ew, NULL, "must be an array of property names");
        return false;
    }
    *n = json_array_size(v);
    *out = sch_arena_alloc(&c->s->arena, (*n ? *n : 1) * sizeof **out);
    if (!*out) {
        oom(c);
        return false;
    }
    for (size_t i = 0; i < *n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e)) {
            ew.ptr = ptr_join(c, aptr, NULL, 0, NULL, 0, (long)i);
            if (ew.ptr)
                fail(c, &ew, NULL, "a property name must be a string");
            return false;
        }
        (*out)[i] = sch_key(json_string_value(e), json_string_length(e));
    }
    return true;
}

static uint32_t type_bit(const char *t)
{
    static const struct {
        const char *name;
        uint32_t bit;
    } names[] = {{"null", T_NULL},     {"boolean", T_BOOL}, {"object", T_OBJ}, {"array", T_ARR},
                 {"number", T_NUM},    {"integer", T_INT},  {"string", T_STR}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(t, names[i].name) == 0)
            return names[i].bit;
    return 0;
}

/* Compiles the keywords of schema object `j` into `ops` (at most OPS_MAX). */
enum { OPS_MAX = 40 };

static size_t compile_ops(comp_t *c, json_t *j, const where_t *w, int depth, kw_t *ops,
                          json_t **ref_target, where_t *ref_where)
{
    size_t n = 0;
    json_t *v;
    arena_t *a = &c->s->arena;

    /* In draft-04..07 a $ref replaces the whole schema object. */
    if ((v = json_object_get(j, "$ref"))) {
        if (!json_is_string(v)) {
            fail(c, w, "$ref", "\"$ref\" must be a string");
            return 0;
        }
        json_t *t = resolve(c, w, json_string_value(v), ref_where);
        if (!t && w->doc >= 0 && json_string_value(v)[0] == '#' &&
            strcmp(c->docbase[w->doc], w->base) != 0) {
            /* Tolerance for Segment's draft-04 plans, whose "id"s are JSON-pointer-like
             * labels ("/properties/properties/...") rather than base URIs: a fragment-only
             * $ref that does not resolve under such an id resolves in the document. */
            where_t dw = *w;
            dw.base = c->docbase[w->doc];
            t = resolve(c, &dw, json_string_value(v), ref_where);
        }
        if (!t) {
            if (!c->failed)
                fail(c, w, "$ref", "cannot resolve $ref \"%s\"", json_string_value(v));
            return 0;
        }
        *ref_target = t;
        ops[n++] = (kw_t){.op = OP_REF};
        return n;
    }

    if ((v = json_object_get(j, "type"))) {
        uint32_t mask = 0;
        if (json_is_string(v)) {
            mask = type_bit(json_string_value(v));
            if (!mask) {
                fail(c, w, "type", "unknown type \"%s\"", json_string_value(v));
                return 0;
            }
        } else if (json_is_array(v)) {
            for (size_t i = 0; i < json_array_size(v); i++) {
                json_t *e = json_array_get(v, i);
                uint32_t b = json_is_string(e) ? type_bit(json_string_value(e)) : 0;
                if (!b) {
                    fail(c, w, "type", "\"type\" must name JSON types");
                    return 0;
                }
                mask |= b;
            }
        } else {
            fail(c, w, "type", "\"type\" must be a string or an array of strings");
            return 0;
        }
        char t[80];
        sch_types_text(mask, t, sizeof t);
        ops[n++] = (kw_t){.op = OP_TYPE, .msg = amsg(c, "expected %s", t), .u.types = mask};
    }
    if ((v = json_object_get(j, "enum"))) {
        if (!json_is_array(v)) {
            fail(c, w, "enum", "\"enum\" must be an array");
            return 0;
        }
        char b[240];
        dump_short(v, b, sizeof b);
        ops[n++] = (kw_t){.op = OP_ENUM, .msg = amsg(c, "must be one of %s", b),
                          .u.en = {value_view(c, v), enum_strings(c, v)}};
    }
    if ((v = json_object_get(j, "const"))) {
        char b[240];
        dump_short(v, b, sizeof b);
        ops[n++] = (kw_t){.op = OP_CONST, .msg = amsg(c, "must be %s", b),
                          .u.en = {value_view(c, v), NULL}};
    }

    static const char *const combi[] = {"allOf", "anyOf", "oneOf"};
    static const uint8_t combi_op[] = {OP_ALLOF, OP_ANYOF, OP_ONEOF};
    for (int i = 0; i < 3; i++) {
        if (!(v = json_object_get(j, combi[i])))
            continue;
        kw_t k = {.op = combi_op[i]};
        k.u.list.v = compile_list(c, v, w, combi[i], &k.u.list.n, depth);
        if (c->failed)
            return 0;
        ops[n++] = k;
    }
    if ((v = json_object_get(j, "not"))) {
        kw_t k = {.op = OP_NOT, .u.sub = child(c, v, w, "not", NULL, 0, -1, depth)};
        if (c->failed)
            return 0;
        ops[n++] = k;
    }
    /* if/then/else are draft-07, but ajv honours them in every draft and so do we. */
    if ((v = json_object_get(j, "if"))) {
        kw_t k = {.op = OP_IF};
        k.u.cond.cond = child(c, v, w, "if", NULL, 0, -1, depth);
        json_t *t = json_object_get(j, "then"), *e = json_object_get(j, "else");
        if (t && !c->failed)
            k.u.cond.then = child(c, t, w, "then", NULL, 0, -1, depth);
        if (e && !c->failed)
            k.u.cond.els = child(c, e, w, "else", NULL, 0, -1, depth);
        if (c->failed)
            return 0;
        if (t || e)
            ops[n++] = k;
    }

    /* numbers */
    static const char *const lims[] = {"minimum", "maximum"};
    static const char *const xlims[] = {"exclusiveMinimum", "exclusiveMaximum"};
    for (int i = 0; i < 2; i++) {
        json_t *x = json_object_get(j, xlims[i]);
        if (x && !json_is_boolean(x) && !is_num(x)) {
            fail(c, w, xlims[i], "\"%s\" must be a number", xlims[i]);
            return 0;
        }
        if ((v = json_object_get(j, lims[i]))) {
            if (!is_num(v)) {
                fail(c, w, lims[i], "\"%s\" must be a number", lims[i]);
                return 0;
            }
            /* draft-04's boolean form; tolerated in later drafts */
            bool excl = json_is_true(x);
            char b[40];
            sch_num_format(sch_num_of(v), b, sizeof b);
            ops[n++] = (kw_t){.op = i ? OP_MAX : OP_MIN,
                              .msg = amsg(c, "must be %s%s %s", i ? "<" : ">", excl ? "" : "=", b),
                              .u.lim = {sch_num_of(v), excl}};
        }
        if (is_num(x)) {
            char b[40];
            sch_num_format(sch_num_of(x), b, sizeof b);
            ops[n++] = (kw_t){.op = i ? OP_XMAX : OP_XMIN,
                              .msg = amsg(c, "must be %s %s", i ? "<" : ">", b),
                              .u.lim = {sch_num_of(x), true}};
        }
    }
    if ((v = json_object_get(j, "multipleOf"))) {
        if (!is_num(v) || sch_num_cmp(sch_num_of(v), (num_t){true, 0, 0}) <= 0) {
            fail(c, w, "multipleOf", "\"multipleOf\" must be a number greater than 0");
            return 0;
        }
        char b[40];
        sch_num_format(sch_num_of(v), b, sizeof b);
        ops[n++] = (kw_t){.op = OP_MULOF, .msg = amsg(c, "must be a multiple of %s", b),
                          .u.lim = {sch_num_of(v), false}};
    }

    /* lengths and counts */
    static const struct {
        const char *k;
        uint8_t op;
    } counts[] = {{"minLength", OP_MINLEN},         {"maxLength", OP_MAXLEN},
                  {"minItems", OP_MINITEMS},        {"maxItems", OP_MAXITEMS},
                  {"minProperties", OP_MINPROPS},   {"maxProperties", OP_MAXPROPS}};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        if (!(v = json_object_get(j, counts[i].k)))
            continue;
        kw_t k = {.op = counts[i].op};
        if (!get_count(c, v, w, counts[i].k, &k.u.count))
            return 0;
        static const char *const what[] = {"characters long", "items", "properties"};
        k.msg = amsg(c, i < 2 ? "must be at %s %zu %s" : "must have at %s %zu %s",
                     i % 2 ? "most" : "least", k.u.count, what[i / 2]);
        ops[n++] = k;
    }

    /* strings */
    if ((v = json_object_get(j, "pattern"))) {
        if (!json_is_string(v)) {
            fail(c, w, "pattern", "\"pattern\" must be a string");
            return 0;
        }
        re_t *re = sch_arena_alloc(a, sizeof *re); /* stable address: registered for freeing */
        if (!re) {
            oom(c);
            return 0;
        }
        if (!compile_re(c, re, json_string_value(v), json_string_length(v), w, "pattern", NULL,
                        0))
            return 0;
        ops[n++] = (kw_t){.op = OP_PATTERN,
                          .msg = amsg(c, "must match pattern \"%s\"", json_string_value(v)),
                          .u.pat = {re, json_string_value(v)}};
    }
    if ((v = json_object_get(j, "format")) && json_is_string(v)) {
        int id = sch_format_lookup(json_string_value(v));
        bool assert_all = c->opts->flags & SCHEMA_OPT_FORMAT_ASSERT;
        if (id != FMT_UNKNOWN && (assert_all || (c->formats >> id & 1)))
            ops[n++] = (kw_t){.op = OP_FORMAT,
                              .msg = amsg(c, "must be a valid %s", json_string_value(v)),
                              .u.format = id};
    }

    /* arrays */
    if ((v = json_object_get(j, "items"))) {
        if (json_is_array(v)) {
            kw_t k = {.op = OP_TUPLE};
            k.u.tuple.n = json_array_size(v);
            k.u.tuple.v = sch_arena_alloc(a, (k.u.tuple.n ? k.u.tuple.n : 1) * sizeof(node_t *));
            if (!k.u.tuple.v)
                return 0;
            for (size_t i = 0; i < k.u.tuple.n && !c->failed; i++)
                k.u.tuple.v[i] = child(c, json_array_get(v, i), w, "items", NULL, 0, (long)i,
                                       depth);
            json_t *ai = json_object_get(j, "additionalItems");
            if (json_is_false(ai)) {
                k.u.tuple.add_false = true;
                k.u.tuple.add_msg = amsg(c, "must have at most %zu items", k.u.tuple.n);
            }
            else if (ai && !json_is_true(ai) && !c->failed)
                k.u.tuple.add = child(c, ai, w, "additionalItems", NULL, 0, -1, depth);
            if (c->failed)
                return 0;
            ops[n++] = k;
        } else if (!json_is_true(v)) {
            kw_t k = {.op = OP_ITEMS, .u.sub = child(c, v, w, "items", NULL, 0, -1, depth)};
            if (c->failed)
                return 0;
            ops[n++] = k;
        }
    }
    if (json_is_true(json_object_get(j, "uniqueItems")))
        ops[n++] = (kw_t){.op = OP_UNIQUE};
    if ((v = json_object_get(j, "contains"))) {
        kw_t k = {.op = OP_CONTAINS, .u.sub = child(c, v, w, "contains", NULL, 0, -1, depth)};
        if (c->failed)
            return 0;
        ops[n++] = k;
    }

    /* objects */
    if (json_object_get(j, "properties") || json_object_get(j, "patternProperties") ||
        json_object_get(j, "additionalProperties")) {
        kw_t k = {.op = OP_PROPS, .u.props = compile_props(c, j, w, depth)};
        if (!k.u.props) {
            if (!c->failed)
                oom(c);
            return 0;
        }
        ops[n++] = k;
    }
    if ((v = json_object_get(j, "required"))) {
        kw_t k = {.op = OP_REQUIRED};
        const char *aptr = ptr_join(c, w->ptr, "required", 8, NULL, 0, -1);
        if (!aptr || !compile_keys(c, v, w, aptr, &k.u.req.v, &k.u.req.n))
            return 0;
        /* A required key that "properties" also names is checked by the lookup that
         * finds its value: one lookup instead of two. */
        props_t *p = n && ops[n - 1].op == OP_PROPS ? ops[n - 1].u.props : NULL;
        size_t keep = 0;
        for (size_t i = 0; i < k.u.req.n; i++) {
            skey_t key = k.u.req.v[i];
            prop_t *pr = NULL;
            for (size_t x = 0; p && x < p->n && !pr; x++)
                if (p->v[x].key.n == key.n && memcmp(p->v[x].key.s, key.s, key.n) == 0)
                    pr = &p->v[x];
            if (!pr)
                k.u.req.v[keep++] = key;
            else if (!pr->required && (pr->required = true))
                p->nreq++;
        }
        k.u.req.n = keep;
        if (k.u.req.n)
            ops[n++] = k;
    }
    /* "properties": {"context": {}, "traits": {}} — every tracking-plan rule has some —
     * constrains nothing when each subschema accepts everything and none is required:
     * no instruction at all then. */
    for (size_t i = 0; i < n; i++) {
        const props_t *p = ops[i].op == OP_PROPS ? ops[i].u.props : NULL;
        if (!p || p->scan_keys || p->nreq)
            continue;
        bool noop = true;
        for (size_t x = 0; x < p->n && noop; x++)
            noop = p->v[x].trivial;
        if (noop) {
            memmove(&ops[i], &ops[i + 1], (n - i - 1) * sizeof *ops);
            n--;
            break;
        }
    }
    if ((v = json_object_get(j, "dependencies"))) {
        if (!json_is_object(v)) {
            fail(c, w, "dependencies", "\"dependencies\" must be an object");
            return 0;
        }
        kw_t k = {.op = OP_DEPS};
        k.u.deps.n = json_object_size(v);
        k.u.deps.v = sch_arena_alloc(a, (k.u.deps.n ? k.u.deps.n : 1) * sizeof(dep_t));
        if (!k.u.deps.v)
            return 0;
        size_t i = 0;
        for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it), i++) {
            dep_t *d = &k.u.deps.v[i];
            d->key = sch_key(json_object_iter_key(it), json_object_iter_key_len(it));
            json_t *dv = json_object_iter_value(it);
            if (json_is_array(dv)) {
                const char *aptr =
                    ptr_join(c, w->ptr, "dependencies", 12, d->key.s, d->key.n, -1);
                if (!aptr || !compile_keys(c, dv, w, aptr, &d->req, &d->nreq))
                    return 0;
                d->msg = amsg(c, "\" is required when \"%.*s\" is present", (int)d->key.n,
                              d->key.s);
            } else {
                d->node = child(c, dv, w, "dependencies", d->key.s, d->key.n, -1, depth);
                if (c->failed)
                    return 0;
            }
        }
        ops[n++] = k;
    }
    if ((v = json_object_get(j, "propertyNames"))) {
        kw_t k = {.op = OP_PROPNAMES,
                  .u.sub = child(c, v, w, "propertyNames", NULL, 0, -1, depth)};
        if (c->failed)
            return 0;
        ops[n++] = k;
    }
    return n;
}

/* "<node location>/<keyword>" */
static str_t kw_loc(comp_t *c, const node_t *node, const char *kw)
{
    sbuf_t b = {0};
    sch_sb_putn(&b, node->loc.s, node->loc.n);
    sch_sb_pointer_seg(&b, kw, strlen(kw));
    const char *r = b.failed ? NULL : sch_arena_strndup(&c->s->arena, b.s, b.len);
    str_t out = {r ? r : "", r ? (uint32_t)b.len : 0};
    free(b.s);
    if (!r)
        oom(c);
    return out;
}

static node_t *new_node(comp_t *c, const where_t *w)
{
    node_t *node = sch_arena_alloc(&c->s->arena, sizeof *node);
    if (!node) {
        oom(c);
        return NULL;
    }
    node->draft = w->draft;
    sbuf_t b = {0};
    if (w->doc > 0)
        sch_sb_puts(&b, c->docbase[w->doc]);
    sch_sb_putc(&b, '#');
    sch_sb_puts(&b, w->ptr);
    const char *loc = b.failed ? NULL : sch_arena_strndup(&c->s->arena, b.s, b.len);
    node->loc = (str_t){loc, (uint32_t)b.len};
    free(b.s);
    if (!loc) {
        oom(c);
        return NULL;
    }
    return node;
}

static node_t *compile_node(comp_t *c, json_t *j, const where_t *w, int depth)
{
    if (c->failed)
        return NULL;
    if (json_is_boolean(j)) {
        /* Not cached: jansson's true/false are singletons shared by every location. */
        node_t *node = new_node(c, w);
        if (node && json_is_false(j)) {
            node->ops = sch_arena_alloc(&c->s->arena, sizeof *node->ops);
            if (!node->ops) {
                oom(c);
                return NULL;
            }
            node->ops[0].op = OP_FALSE;
            node->ops[0].spath = node->loc;
            for (int i = 1; i <= CAT_N; i++)
                node->cat[i] = 1;
        }
        return node;
    }
    if (!json_is_object(j)) {
        fail(c, w, NULL, "a schema must be an object or a boolean");
        return NULL;
    }
    if (depth > SCHEMA_MAX_DEPTH) {
        fail(c, w, NULL, "schema nested deeper than %d levels", SCHEMA_MAX_DEPTH);
        return NULL;
    }
    pinfo_t *info = pm_get(c, j);
    if (!info) { /* reached through a pointer into a part no scan walked */
        scan(c, j, *w, 0);
        info = pm_get(c, j);
        if (!info)
            return NULL;
    }
    if (info->node)
        return info->node;
    where_t iw = info->w;
    node_t *node = new_node(c, &iw);
    if (!node)
        return NULL;
    info->node = node; /* before the children: a child may $ref back here */

    kw_t ops[OPS_MAX];
    json_t *ref_target = NULL;
    where_t ref_where = {0};
    size_t n = compile_ops(c, j, &iw, depth, ops, &ref_target, &ref_where);
    if (c->failed)
        return NULL;
    node->ops = sch_arena_alloc(&c->s->arena, (n ? n : 1) * sizeof *node->ops);
    if (!node->ops) {
        oom(c);
        return NULL;
    }
    /* stable sort by category: the interpreter runs one contiguous slice per type */
    size_t k = 0;
    for (int cat = 0; cat < CAT_N; cat++) {
        node->cat[cat] = (uint16_t)k;
        for (size_t i = 0; i < n; i++)
            if (op_cat(ops[i].op) == cat)
                node->ops[k++] = ops[i];
    }
    node->cat[CAT_N] = (uint16_t)k;
    if (k >= 1 && node->ops[0].op == OP_TYPE)
        node->types = node->ops[0].u.types;
    if (k == 1 && node->types)
        node->leaf = node->types;
    node->flat = true;
    for (size_t i = 0; i < k; i++)
        node->flat &= !op_has_sub(node->ops[i].op);
    /* the typical scalar rule: "type" and one more keyword (format, enum, pattern...) */
    if (k == 2 && node->types && node->flat) {
        node->one = &node->ops[1];
        node->one_cat = (uint8_t)op_cat(node->ops[1].op);
    }
    /* the typical object rule: "properties" (with "required") and at most "type" */
    if (k == (node->types ? 2u : 1u) && node->ops[k - 1].op == OP_PROPS)
        node->props = node->ops[k - 1].u.props;
    for (size_t i = 0; i < k; i++) {
        kw_t *op = &node->ops[i];
        op->spath = op->op == OP_FALSE ? node->loc : kw_loc(c, node, sch_op_keyword[op->op]);
        if (op->op == OP_PROPS) {
            op->u.props->add_spath = kw_loc(c, node, "additionalProperties");
            op->u.props->loc = node->loc;
            op->u.props->pat_spath = kw_loc(c, node, "patternProperties");
            op->u.props->req_spath = kw_loc(c, node, "required");
        } else if (op->op == OP_TUPLE) {
            op->u.tuple.add_spath = kw_loc(c, node, "additionalItems");
        }
    }
    if (c->failed)
        return NULL;
    if (ref_target) {
        if (c->npend == c->cappend) {
            size_t cap = c->cappend ? c->cappend * 2 : 16;
            pending_t *p = realloc(c->pend, cap * sizeof *p);
            if (!p) {
                oom(c);
                return NULL;
            }
            c->pend = p;
            c->cappend = cap;
        }
        c->pend[c->npend++] = (pending_t){node, 0, ref_target, ref_where};
    }
    return node;
}

/* ----- cycle check ---------------------------------------------------------------------------------- */

/* The k-th subschema that applies to the same instance location as `n`. */
static node_t *same_loc_edge(const node_t *n, size_t k, const char **kw)
{
    for (size_t i = 0; i < n->cat[CAT_N]; i++) {
        const kw_t *op = &n->ops[i];
        switch (op->op) {
        case OP_REF:
        case OP_NOT:
            *kw = op->op == OP_REF ? "$ref" : "not";
            if (k-- == 0)
                return op->u.sub;
            break;
        case OP_ALLOF:
        case OP_ANYOF:
        case OP_ONEOF:
            *kw = op->op == OP_ALLOF ? "allOf" : op->op == OP_ANYOF ? "anyOf" : "oneOf";
            if (k < op->u.list.n)
                return op->u.list.v[k];
            k -= op->u.list.n;
            break;
        case OP_IF: {
            node_t *e[3] = {op->u.cond.cond, op->u.cond.then, op->u.cond.els};
            *kw = "if";
            for (int x = 0; x < 3; x++)
                if (e[x] && k-- == 0)
                    return e[x];
            break;
        }
        case OP_DEPS:
            *kw = "dependencies";
            for (size_t d = 0; d < op->u.deps.n; d++)
                if (op->u.deps.v[d].node && k-- == 0)
                    return op->u.deps.v[d].node;
            break;
        default:
            break;
        }
    }
    return NULL;
}

static void check_cycles(comp_t *c, node_t *root)
{
    typedef struct frame {
        node_t *n;
        size_t next;
    } frame_t;
    size_t cap = 64, top = 0;
    frame_t *st = malloc(cap * sizeof *st);
    if (!st) {
        oom(c);
        return;
    }
    st[top++] = (frame_t){root, 0};
    root->mark = 1;
    while (top && !c->failed) {
        frame_t *f = &st[top - 1];
        const char *kw = NULL;
        node_t *m = same_loc_edge(f->n, f->next++, &kw);
        if (!m) {
            f->n->mark = 2;
            top--;
            continue;
        }
        if (m->mark == 1) {
            /* loc is "#/ptr" or "uri#/ptr" */
            const char *hash = strchr(f->n->loc.s, '#');
            where_t w = {.ptr = hash ? hash + 1 : "", .doc = 0};
            fail(c, &w, kw,
                 "circular reference: the schema applies itself to the same value without "
                 "descending into it (%s)",
                 f->n->loc.s);
            break;
        }
        if (m->mark == 0) {
            if (top == cap) {
                cap *= 2;
                frame_t *ns = realloc(st, cap * sizeof *st);
                if (!ns) {
                    oom(c);
                    break;
                }
                st = ns;
            }
            m->mark = 1;
            st[top++] = (frame_t){m, 0};
        }
    }
    free(st);
}

/* ----- entry points ------------------------------------------------------------------------------------ */

static void comp_free(comp_t *c)
{
    free(c->pm);
    free(c->sm);
    free(c->pend);
    free(c->docbase);
}

schema_t *schema_compile_ex(json_t *doc, const schema_options_t *opts, uint64_t formats,
                            schema_error_t *err)
{
    static const schema_options_t defaults = {0};
    if (!opts)
        opts = &defaults;
    if (err) {
        err->pointer[0] = '\0';
        err->message[0] = '\0';
    }
    schema_t *s = calloc(1, sizeof *s);
    if (!s) {
        schema_set_error(err, "", 0, "out of memory");
        return NULL;
    }
    comp_t c = {.s = s, .opts = opts, .formats = formats, .err = err};

    schema_draft_t draft = opts->draft ? opts->draft : SCHEMA_DRAFT7;
    json_t *sv = json_is_object(doc) ? json_object_get(doc, "$schema") : NULL;
    if (!(opts->flags & SCHEMA_OPT_FORCE_DRAFT) && json_is_string(sv) &&
        schema_draft_of_uri(json_string_value(sv)) != SCHEMA_DRAFT_AUTO)
        draft = schema_draft_of_uri(json_string_value(sv));
    s->draft = draft;

    const char *base = sch_arena_strndup(&s->arena, opts->base_uri ? opts->base_uri : "",
                                     opts->base_uri ? strlen(opts->base_uri) : 0);
    if (!base || add_doc(&c, json_incref(doc), base) < 0) {
        oom(&c);
    } else {
        where_t w = {base, (uint8_t)draft, 0, ""};
        sm_add(&c, base, doc);
        scan(&c, doc, w, 0);
        s->root = compile_node(&c, doc, &w, 0);
        for (size_t i = 0; i < c.npend && !c.failed; i++) {
            pending_t p = c.pend[i];
            node_t *t = compile_node(&c, p.target, &p.w, 0);
            if (t)
                p.owner->ops[p.op].u.sub = t;
        }
        if (!c.failed && s->arena.failed)
            oom(&c);
        if (!c.failed && s->root)
            check_cycles(&c, s->root);
    }
    comp_free(&c);
    if (c.failed || !s->root) {
        if (!c.failed)
            schema_set_error(err, "", 0, "cannot compile schema");
        schema_free(s);
        return NULL;
    }
    return s;
}

schema_t *schema_compile(json_t *doc, const schema_options_t *opts, schema_error_t *err)
{
    return schema_compile_ex(doc, opts, 0, err);
}

schema_draft_t schema_get_draft(const schema_t *s) { return s->draft; }

void schema_free(schema_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nres; i++)
        if (s->res[i])
            sch_re_free(s->res[i]);
    free(s->res);
    for (size_t i = 0; i < s->ndocs; i++)
        json_decref(s->docs[i]);
    free(s->docs);
    jview_doc_free(s->values);
    sch_arena_free(&s->arena);
    free(s);
}
