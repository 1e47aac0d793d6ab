/*
 * validate.c — the interpreter that runs a compiled schema over an instance.
 *
 * It runs in one of two modes. Collecting mode (the caller passed a result) evaluates
 * every keyword and records each failure; quick mode answers valid/invalid and stops
 * at the first failure. Keywords whose subschemas only decide (anyOf, oneOf, not, if,
 * contains, propertyNames) always evaluate them in quick mode, so the errors of a
 * losing anyOf branch never leak into the result.
 *
 * The instance is a view (util/jview.h), not a jansson tree: reading a member of a
 * view is a load where jansson costs a call or a hash probe, and a validator reads
 * many. schema_validate() builds the view itself; callers that check one event against
 * several schemas build it once and call schema_validate_view().
 *
 * Nothing is allocated unless a violation is recorded: the instance path lives in a
 * fixed array on the stack as (key, index) segments, a violation copies those segments
 * into its result, and they become a JSON pointer string only when it is read.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/internal.h"

typedef struct seg {
    const char *key; /* NULL: array index */
    size_t n;        /* key length, or the index */
} seg_t;

typedef struct vctx {
    schema_result_t *res;
    bool collect;
    unsigned depth, plen;
    seg_t path[SCHEMA_MAX_DEPTH + 1];
} vctx_t;

typedef jview_t val_t;

static bool v_node(vctx_t *c, const node_t *n, const val_t *v);

/* ----- violations ----------------------------------------------------------------------- */

static const char *const vtype_names[] = {
    "Required-Missing", "Datatype-Mismatch", "Additional-Properties", "Enum-Mismatch",
    "Pattern-Mismatch", "Range-Mismatch",    "Schema-Mismatch",
};

const char *schema_vtype_name(schema_vtype_t t)
{
    return (unsigned)t < sizeof vtype_names / sizeof vtype_names[0] ? vtype_names[t]
                                                                      : "Schema-Mismatch";
}

/* A result records each violation as the few words that describe it — keyword
 * location, message parts, the instance path as segments — and formats its strings
 * only when it is read (schema_result_item). Recording is then a handful of stores, so
 * collecting every violation of a bad event stays cheap; the storage is kept across
 * clears, so a reused result stops allocating. The records point into the schema and
 * the instance (keys, strings), hence the rule that results are read before either
 * changes. */
enum { FORM_GENERIC, FORM_TYPE };

typedef struct vrec {
    uint8_t form; /* FORM_TYPE: a failed "type" of k, and the type found: only k and got
                     are set, the rest is derived when formatting */
    uint8_t got;  /* FORM_TYPE: the instance's jview_type_t */
    const kw_t *k;
    str_t spath, m1, m3;
    const char *kw;
    const char *key, *m2; /* key: a last path segment (the property itself), or NULL */
    uint32_t keylen, m2n;
    uint32_t seg, nseg; /* the path: segs[seg .. seg + nseg) of the store */
    uint8_t type;
} vrec_t;

/* String storage: blocks that are kept (and reused) across clears. */
typedef struct sblock {
    struct sblock *next;
    size_t used, size;
    char data[];
} sblock_t;

struct schema_store {
    vrec_t *recs;
    size_t cap;
    seg_t *segs;
    size_t nsegs, capsegs;
    schema_violation_t *items; /* formatted on demand; .path NULL until then */
    size_t capitems;
    bool formatted; /* some items were formatted since the last clear */
    sblock_t *head, *cur;
    jview_doc_t *views; /* schema_validate's views of the instances */
};

static char *str_alloc(struct schema_store *ss, size_t n)
{
    sblock_t *b = ss->cur, *last = NULL;
    for (; b; last = b, b = b->next) {
        if (b->size - b->used >= n) {
            ss->cur = b;
            char *p = b->data + b->used;
            b->used += n;
            return p;
        }
    }
    size_t size = n > 4000 ? n : 4000;
    b = malloc(sizeof *b + size);
    if (!b)
        return NULL;
    *b = (sblock_t){NULL, n, size};
    if (last)
        last->next = b;
    else
        ss->head = b;
    ss->cur = b;
    return b->data;
}

/* Gives back the last n bytes of the latest str_alloc. */
static void str_unalloc(struct schema_store *ss, size_t n) { ss->cur->used -= n; }

/* JSON pointer escaping (~ -> ~0, / -> ~1) eight bytes at a time: most keys have
 * neither character, and then each word is one test and one store. */
static inline bool has_special(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t a = x ^ (ones * '~'), b = x ^ (ones * '/');
    return (((a - ones) & ~a) | ((b - ones) & ~b)) & highs;
}

static char *put_seg(char *p, const char *k, size_t n)
{
    *p++ = '/';
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, k + i, 8);
        if (!has_special(x)) {
            memcpy(p, &x, 8);
            p += 8;
            continue;
        }
        for (size_t e = i + 8; i < e; i++)
            if (k[i] == '~' || k[i] == '/') {
                *p++ = '~';
                *p++ = k[i] == '~' ? '0' : '1';
            } else {
                *p++ = k[i];
            }
        i -= 8;
    }
    for (; i < n; i++) {
        if (k[i] == '~' || k[i] == '/') {
            *p++ = '~';
            *p++ = k[i] == '~' ? '0' : '1';
        } else {
            *p++ = k[i];
        }
    }
    return p;
}

/* "/123" into p (which has room for 21 bytes); returns the length */
static size_t put_index(char *p, size_t v)
{
    char tmp[20];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    p[0] = '/';
    for (size_t i = 0; i < n; i++)
        p[1 + i] = tmp[n - 1 - i];
    return n + 1;
}

static __attribute__((noinline)) bool store_grow(schema_result_t *r, size_t nseg)
{
    struct schema_store *ss = r->store;
    if (!ss && !(ss = r->store = calloc(1, sizeof *ss)))
        return false;
    if (r->count == ss->cap) {
        size_t cap = ss->cap ? ss->cap * 2 : 16;
        vrec_t *recs = realloc(ss->recs, cap * sizeof *recs);
        if (!recs)
            return false;
        ss->recs = recs;
        ss->cap = cap;
    }
    if (!ss->segs || ss->nsegs + nseg > ss->capsegs) { /* never NULL once a record exists */
        size_t cap = ss->capsegs ? ss->capsegs * 2 : 64;
        while (cap < ss->nsegs + nseg)
            cap *= 2;
        seg_t *segs = realloc(ss->segs, cap * sizeof *segs);
        if (!segs)
            return false;
        ss->segs = segs;
        ss->capsegs = cap;
    }
    return true;
}

/* A new record at the current instance path, or NULL (not collecting, over the limit,
 * out of memory). */
static inline vrec_t *new_rec(vctx_t *c)
{
    if (!c->collect)
        return NULL;
    schema_result_t *r = c->res;
    if (r->limit && r->count >= r->limit) {
        r->truncated = true;
        return NULL;
    }
    struct schema_store *ss = r->store;
    if ((!ss || r->count == ss->cap || ss->nsegs + c->plen > ss->capsegs) &&
        !store_grow(r, c->plen)) {
        r->truncated = true;
        return NULL;
    }
    ss = r->store;
    vrec_t *v = &ss->recs[r->count++];
    size_t at = ss->nsegs;
    unsigned n = c->plen;
    v->seg = (uint32_t)at;
    v->nseg = n;
    ss->nsegs = at + n;
    /* paths are short: a loop beats a call to memcpy */
    seg_t *dst = ss->segs + at;
    const seg_t *src = c->path;
    for (unsigned i = 0; i < n; i++)
        dst[i] = src[i];
    return v;
}

/* Records a violation at the current instance path (plus `key`: required and
 * additionalProperties name the property itself). The message is m1 m2[0..m2n) m3,
 * mostly prepared at compile time. Nothing is formatted here (see vrec_t). */
static void report(vctx_t *c, str_t spath, const char *kw, schema_vtype_t type,
                   const char *key, size_t keylen, str_t m1, const char *m2, size_t m2n,
                   str_t m3)
{
    vrec_t *v = new_rec(c);
    if (!v)
        return;
    v->form = FORM_GENERIC;
    v->spath = spath;
    v->m1 = m1;
    v->m3 = m3;
    v->kw = kw;
    v->key = key;
    v->m2 = m2;
    v->keylen = (uint32_t)keylen;
    v->m2n = (uint32_t)m2n;
    v->type = (uint8_t)type;
}

/* A violation whose message is fixed. */
#define REPORT(c, k, type, msg) \
    report(c, (k)->spath, sch_op_keyword[(k)->op], type, NULL, 0, msg, NULL, 0, STR_LIT(""))

/* The same for a message part that does not outlive the call: copied at once. */
static void report_copy(vctx_t *c, str_t spath, const char *kw, schema_vtype_t type, str_t m)
{
    if (!c->collect)
        return;
    schema_result_t *r = c->res;
    size_t before = r->count;
    report(c, spath, kw, type, NULL, 0, STR_LIT(""), NULL, 0, STR_LIT(""));
    if (r->count == before)
        return;
    char *copy = str_alloc(r->store, m.n ? m.n : 1);
    if (!copy) {
        r->count--;
        r->truncated = true;
        return;
    }
    memcpy(copy, m.s, m.n);
    r->store->recs[before].m1 = (str_t){copy, m.n};
}

/* Formats record i: one string block holds its path, keyword location and message. */
static str_t type_name(const val_t *v);

static bool format_item(struct schema_store *ss, size_t i)
{
    vrec_t *v = &ss->recs[i];
    if (v->form == FORM_TYPE) {
        val_t got = {.type = v->got};
        v->spath = v->k->spath;
        v->kw = "type";
        v->type = SCHEMA_V_DATATYPE_MISMATCH;
        v->key = NULL;
        v->m1 = v->k->msg;
        v->m2 = ", got ";
        v->m2n = 6;
        v->m3 = type_name(&got);
        v->form = FORM_GENERIC;
    }
    const seg_t *segs = ss->segs + v->seg;
    /* The path is written in place, into room for its worst case (every byte escaped,
     * 20 digits an index), and the unused rest is handed back. */
    size_t worst = v->key ? 2 * (size_t)v->keylen + 1 : 0;
    for (unsigned k = 0; k < v->nseg; k++)
        worst += segs[k].key ? 2 * segs[k].n + 1 : 21;
    size_t rest = 1 + v->spath.n + 1 + v->m1.n + v->m2n + v->m3.n + 1;
    char *buf = str_alloc(ss, worst + rest);
    if (!buf)
        return false;
    char *p = buf;
    for (unsigned k = 0; k < v->nseg; k++) {
        if (segs[k].key)
            p = put_seg(p, segs[k].key, segs[k].n);
        else
            p += put_index(p, segs[k].n);
    }
    if (v->key)
        p = put_seg(p, v->key, v->keylen);
    size_t plen = (size_t)(p - buf);
    *p++ = '\0';
    char *sp = p;
    memcpy(sp, v->spath.s, v->spath.n);
    sp[v->spath.n] = '\0';
    char *msg = sp + v->spath.n + 1;
    memcpy(msg, v->m1.s, v->m1.n);
    if (v->m2n)
        memcpy(msg + v->m1.n, v->m2, v->m2n);
    if (v->m3.n)
        memcpy(msg + v->m1.n + v->m2n, v->m3.s, v->m3.n);
    msg[v->m1.n + v->m2n + v->m3.n] = '\0';
    str_unalloc(ss, worst - plen);
    ss->items[i] = (schema_violation_t){.type = (schema_vtype_t)v->type, .keyword = v->kw,
                                        .path = buf, .path_len = plen, .schema_path = sp,
                                        .message = msg};
    return true;
}

const schema_violation_t *schema_result_item(schema_result_t *r, size_t i)
{
    struct schema_store *ss = r->store;
    if (i >= r->count || !ss)
        return NULL;
    if (ss->capitems < r->count) {
        schema_violation_t *items = realloc(ss->items, r->count * sizeof *items);
        if (!items)
            return NULL;
        memset(items + ss->capitems, 0, (r->count - ss->capitems) * sizeof *items);
        ss->items = items;
        ss->capitems = r->count;
    }
    if (!ss->items[i].path) {
        if (!format_item(ss, i))
            return NULL;
        ss->formatted = true;
    }
    return &ss->items[i];
}

void schema_result_clear(schema_result_t *r)
{
    r->count = 0;
    r->truncated = false;
    struct schema_store *ss = r->store;
    if (!ss)
        return;
    ss->nsegs = 0;
    if (ss->formatted) {
        memset(ss->items, 0, ss->capitems * sizeof *ss->items);
        ss->formatted = false;
    }
    for (sblock_t *b = ss->head; b; b = b->next)
        b->used = 0;
    ss->cur = ss->head;
    if (ss->views)
        jview_doc_reset(ss->views);
}

void schema_result_free(schema_result_t *r)
{
    struct schema_store *ss = r->store;
    if (ss) {
        for (sblock_t *b = ss->head, *next; b; b = next) {
            next = b->next;
            free(b);
        }
        free(ss->recs);
        free(ss->segs);
        free(ss->items);
        jview_doc_free(ss->views);
        free(ss);
        r->store = NULL;
    }
    r->count = 0;
    r->truncated = false;
}

json_t *schema_violation_json(const schema_violation_t *v)
{
    return json_pack("{s:s, s:s%, s:s, s:s}", "type", schema_vtype_name(v->type), "path", v->path,
                     v->path_len, "keyword", v->keyword, "message", v->message);
}

json_t *schema_result_json(schema_result_t *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->count; i++) {
        const schema_violation_t *v = schema_result_item(r, i);
        if (!v || json_array_append_new(a, schema_violation_json(v)) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* ----- helpers ------------------------------------------------------------------------------ */

static inline int cat_of(const val_t *v)
{
    static const uint8_t cat[] = {[JV_OBJ] = CAT_OBJ, [JV_ARR] = CAT_ARR, [JV_STR] = CAT_STR,
                                  [JV_INT] = CAT_NUM, [JV_REAL] = CAT_NUM, [JV_TRUE] = CAT_ANY,
                                  [JV_FALSE] = CAT_ANY, [JV_NULL] = CAT_ANY};
    return cat[v->type];
}

static inline uint32_t type_of(const val_t *v, int draft)
{
    static const uint32_t bits[] = {[JV_OBJ] = T_OBJ,         [JV_ARR] = T_ARR,
                                    [JV_STR] = T_STR,         [JV_INT] = T_NUM | T_INT,
                                    [JV_REAL] = T_NUM,        [JV_TRUE] = T_BOOL,
                                    [JV_FALSE] = T_BOOL,      [JV_NULL] = T_NULL};
    /* draft-06 made 1.0 an integer; draft-04 keeps it a number only */
    return bits[v->type] | (v->integral && draft >= SCHEMA_DRAFT6 ? T_INT : 0);
}

static str_t type_name(const val_t *v)
{
    switch (v->type) {
    case JV_OBJ: return STR_LIT("object");
    case JV_ARR: return STR_LIT("array");
    case JV_STR: return STR_LIT("string");
    case JV_INT: return STR_LIT("integer");
    case JV_REAL: return STR_LIT("number");
    case JV_TRUE:
    case JV_FALSE: return STR_LIT("boolean");
    default: return STR_LIT("null");
    }
}

/* Code points: UTF-8 bytes that do not continue a sequence. */
static size_t utf8_len(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

static bool quick(vctx_t *c, const node_t *n, const val_t *v)
{
    bool saved = c->collect;
    c->collect = false;
    bool ok = v_node(c, n, v);
    c->collect = saved;
    return ok;
}

static inline void push_key(vctx_t *c, const char *k, size_t n)
{
    c->path[c->plen++] = (seg_t){k, n};
}

static inline void push_idx(vctx_t *c, size_t i) { c->path[c->plen++] = (seg_t){NULL, i}; }

static inline bool trivial(const node_t *n) { return n->cat[CAT_N] == 0; }

/* Is the key of member m the key k? */
static inline bool key_is(const jview_member_t *m, const skey_t *k)
{
    return jview_member_is(m, k->s, k->n, k->head);
}

static const prop_t *find_prop(const props_t *p, const jview_member_t *m)
{
    if (p->ph) {
        uint16_t slot = p->ph[sch_prop_hash(m->hash, p->ph_mul) & p->ph_mask];
        const prop_t *pr = slot ? &p->v[slot - 1] : NULL;
        return pr && key_is(m, &pr->key) ? pr : NULL;
    }
    if (p->n <= 8) {
        for (size_t i = 0; i < p->n; i++)
            if (key_is(m, &p->v[i].key))
                return &p->v[i];
        return NULL;
    }
    size_t lo = 0, hi = p->n, n = m->keylen;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const skey_t *k = &p->sorted[mid]->key;
        int cmp = k->n != n ? (k->n < n ? -1 : 1) : memcmp(k->s, m->key, n);
        if (cmp == 0)
            return p->sorted[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static inline bool is_indexed(const val_t *obj)
{
    return obj->n >= JVIEW_INDEX_MIN && obj->n <= JVIEW_INDEX_MAX;
}

static inline const jview_member_t *find_member(const val_t *obj, const skey_t *k)
{
    return jview_find(obj, k->s, k->n, k->head, k->hash);
}

static inline const val_t *get_member(const val_t *obj, const skey_t *k)
{
    const jview_member_t *m = find_member(obj, k);
    return m ? &m->v : NULL;
}

static void report_missing(vctx_t *c, const props_t *p, const prop_t *pr)
{
    report(c, p->req_spath, "required", SCHEMA_V_REQUIRED_MISSING, pr->key.s, pr->key.n,
           STR_LIT("required property \""), pr->key.s, pr->key.n, STR_LIT("\" is missing"));
}

static void report_type(vctx_t *c, const kw_t *k, const val_t *v);
static inline bool v_program(vctx_t *c, const node_t *n, const val_t *v);
static bool v_props(vctx_t *c, const props_t *p, const val_t *obj);

/* One property the schema names, present (x) or not. */
static inline bool v_prop(vctx_t *c, const props_t *p, const prop_t *pr, const val_t *x)
{
    if (!x) {
        if (!pr->required)
            return true;
        report_missing(c, p, pr);
        return false;
    }
    if (pr->trivial)
        return true; /* accepts anything: no call needed */
    if (pr->leaf) { /* a lone "type", checked here */
        if (type_of(x, pr->draft) & pr->leaf)
            return true;
        push_key(c, pr->key.s, pr->key.n);
        report_type(c, &pr->node->ops[0], x);
        c->plen--;
        return false;
    }
    push_key(c, pr->key.s, pr->key.n);
    const node_t *nd = pr->node;
    bool r = nd->flat || nd->props ? v_program(c, nd, x) : v_node(c, nd, x);
    c->plen--;
    return r;
}

/* properties + patternProperties + additionalProperties, and the "required" keys that
 * "properties" names. */
static inline bool v_props_body(vctx_t *c, const props_t *p, const val_t *obj)
{
    bool ok = true;
    /* Only "properties": look up the names that matter, as ajv's generated code does —
     * through the object's index, or a scan of a small object's heads (an object too
     * big for an index is walked instead). An empty schema ({} or true) needs no lookup
     * unless the key is required. */
    if (!p->scan_keys && (obj->n < JVIEW_INDEX_MIN || is_indexed(obj))) {
        /* Events of one kind list their keys in the same order, often the schema's:
         * the member after the last one found is tried first. */
        uint32_t next = 0;
        for (size_t i = 0; i < p->n; i++) {
            const prop_t *pr = &p->v[i];
            if (pr->trivial && !pr->required)
                continue;
            const jview_member_t *m = obj->u.m + next;
            if (next >= obj->n || !key_is(m, &pr->key))
                m = find_member(obj, &pr->key);
            if (m)
                next = (uint32_t)(m - obj->u.m) + 1;
            if (!v_prop(c, p, pr, m ? &m->v : NULL)) {
                ok = false;
                if (!c->collect)
                    return false;
            }
        }
        return ok;
    }
    size_t found_req = 0;
    for (uint32_t mi = 0; mi < obj->n; mi++) {
        const jview_member_t *m = &obj->u.m[mi];
        const char *k = m->key;
        size_t kn = m->keylen;
        const val_t *x = &m->v;
        bool matched = false, r = true;
        const prop_t *pr = find_prop(p, m);
        if (pr) {
            matched = true;
            found_req += pr->required;
            r = v_prop(c, p, pr, x);
        }
        if (p->npat) {
            push_key(c, k, kn);
            for (size_t i = 0; i < p->npat && (r || c->collect); i++) {
                int mt = sch_re_match(&p->pat[i].re, k, kn);
                if (mt == 0)
                    continue;
                matched = true;
                if (mt < 0) {
                    c->plen--;
                    report(c, p->pat_spath, "patternProperties", SCHEMA_V_PATTERN_MISMATCH, k,
                           kn,
                           STR_LIT("a patternProperties pattern could not be evaluated on this "
                                   "name (match limit)"),
                           NULL, 0, STR_LIT(""));
                    push_key(c, k, kn);
                    r = false;
                } else if (!v_node(c, p->pat[i].node, x)) {
                    r = false;
                }
            }
            c->plen--;
        }
        if (!matched && (r || c->collect)) {
            if (p->add_false) {
                report(c, p->add_spath, "additionalProperties", SCHEMA_V_ADDITIONAL_PROPERTIES, k,
                       kn, STR_LIT("property \""), k, kn, STR_LIT("\" is not allowed"));
                r = false;
            } else if (p->add) {
                push_key(c, k, kn);
                if (!v_node(c, p->add, x))
                    r = false;
                c->plen--;
            }
        }
        if (!r) {
            ok = false;
            if (!c->collect)
                return false;
        }
    }
    if (found_req < p->nreq) { /* some required key is missing: find which */
        ok = false;
        for (size_t i = 0; i < p->n && c->collect; i++)
            if (p->v[i].required && !get_member(obj, &p->v[i].key))
                report_missing(c, p, &p->v[i]);
    }
    return ok;
}

/* Recursion is bounded: only a recursive $ref on a deep value gets here. */
static __attribute__((noinline)) bool too_deep(vctx_t *c, str_t loc)
{
    report(c, loc, "$ref", SCHEMA_V_SCHEMA_MISMATCH, NULL, 0,
           STR_LIT("validation nested too deep (a recursive schema on a deep value)"), NULL, 0,
           STR_LIT(""));
    return false;
}

/* Objects are where validation descends, so they keep the depth count (v_node leaves
 * it to them): a descent into an object rule costs one call. */
static __attribute__((noinline)) bool v_props(vctx_t *c, const props_t *p, const val_t *obj)
{
    if (c->depth >= SCHEMA_MAX_DEPTH)
        return too_deep(c, p->loc);
    c->depth++;
    bool ok = v_props_body(c, p, obj);
    c->depth--;
    return ok;
}

/* uniqueItems: pairwise for short arrays; a hash table beyond that, on the stack up to
 * 1024 items (the only place validation may allocate without a violation is a longer
 * array, where quadratic comparison would be a denial of service). */
static bool find_duplicate(const val_t *arr, size_t *a, size_t *b)
{
    size_t n = arr->n;
    const val_t *it = arr->u.a;
    if (n <= 32) {
        for (size_t i = 0; i < n; i++)
            for (size_t k = i + 1; k < n; k++)
                if (sch_value_equal(&it[i], &it[k])) {
                    *a = i;
                    *b = k;
                    return true;
                }
        return false;
    }
    size_t cap = 1;
    while (cap < n * 2)
        cap *= 2;
    uint32_t stack[2048];
    uint32_t *tab = cap <= 2048 ? stack : malloc(cap * sizeof *tab);
    if (!tab)
        return false;
    memset(tab, 0xff, cap * sizeof *tab);
    bool found = false;
    for (size_t i = 0; i < n && !found; i++) {
        for (size_t k = sch_value_hash(&it[i]) & (cap - 1);; k = (k + 1) & (cap - 1)) {
            if (tab[k] == UINT32_MAX) {
                tab[k] = (uint32_t)i;
                break;
            }
            if (sch_value_equal(&it[tab[k]], &it[i])) {
                *a = tab[k];
                *b = i;
                found = true;
                break;
            }
        }
    }
    if (tab != stack)
        free(tab);
    return found;
}

static bool limit_ok(const kw_t *k, num_t x)
{
    int cmp = sch_num_cmp(x, k->u.lim.n);
    switch (k->op) {
    case OP_MIN:
        return k->u.lim.excl ? cmp > 0 : cmp >= 0;
    case OP_MAX:
        return k->u.lim.excl ? cmp < 0 : cmp <= 0;
    case OP_XMIN:
        return cmp > 0;
    default:
        return cmp < 0;
    }
}

/* Kept out of exec(): its buffer would enlarge exec's stack frame on every call. */
static __attribute__((noinline)) void report_duplicate(vctx_t *c, const kw_t *k, size_t a,
                                                       size_t b)
{
    if (!c->collect)
        return;
    char m[80];
    int len = snprintf(m, sizeof m, "must not contain equal items (items %zu and %zu)", a, b);
    report_copy(c, k->spath, sch_op_keyword[k->op], SCHEMA_V_SCHEMA_MISMATCH,
                (str_t){m, len > 0 ? (uint32_t)len : 0});
}

/* The most common violation of a bad event, so it has the shortest record. */
static void report_type(vctx_t *c, const kw_t *k, const val_t *v)
{
    vrec_t *r = new_rec(c);
    if (r) {
        r->form = FORM_TYPE;
        r->got = v->type;
        r->k = k;
    }
}

/* ----- the interpreter ------------------------------------------------------------------------ */

/* The instructions that run subschemas or loop over members and items, kept out of
 * exec(): exec runs for every instruction, and small it saves fewer registers. */
static __attribute__((noinline)) bool exec_loop(vctx_t *c, const kw_t *k, const val_t *v)
{
    switch ((enum op)k->op) {
    case OP_ALLOF: {
        bool ok = true;
        for (size_t i = 0; i < k->u.list.n; i++)
            if (!v_node(c, k->u.list.v[i], v)) {
                ok = false;
                if (!c->collect)
                    break;
            }
        return ok;
    }
    case OP_ANYOF:
        for (size_t i = 0; i < k->u.list.n; i++)
            if (quick(c, k->u.list.v[i], v))
                return true;
        REPORT(c, k, SCHEMA_V_SCHEMA_MISMATCH, STR_LIT("must match at least one schema in anyOf"));
        return false;
    case OP_ONEOF: {
        size_t m = 0;
        for (size_t i = 0; i < k->u.list.n && m < 2; i++)
            m += quick(c, k->u.list.v[i], v);
        if (m == 1)
            return true;
        REPORT(c, k, SCHEMA_V_SCHEMA_MISMATCH,
               m ? STR_LIT("must match exactly one schema in oneOf, but matches several")
                 : STR_LIT("must match exactly one schema in oneOf, but matches none"));
        return false;
    }
    case OP_NOT:
        if (!quick(c, k->u.sub, v))
            return true;
        REPORT(c, k, SCHEMA_V_SCHEMA_MISMATCH, STR_LIT("must not match the schema in not"));
        return false;
    case OP_IF:
        if (quick(c, k->u.cond.cond, v))
            return k->u.cond.then ? v_node(c, k->u.cond.then, v) : true;
        return k->u.cond.els ? v_node(c, k->u.cond.els, v) : true;

    case OP_ITEMS: {
        bool ok = true;
        const node_t *sub = k->u.sub;
        for (uint32_t i = 0; i < v->n; i++) {
            const val_t *x = &v->u.a[i];
            if (sub->leaf && (type_of(x, sub->draft) & sub->leaf))
                continue;
            push_idx(c, i);
            bool r = v_node(c, sub, x);
            c->plen--;
            if (!r) {
                ok = false;
                if (!c->collect)
                    break;
            }
        }
        return ok;
    }
    case OP_TUPLE: {
        bool ok = true;
        for (uint32_t i = 0; i < v->n; i++) {
            const node_t *sub = i < k->u.tuple.n ? k->u.tuple.v[i] : k->u.tuple.add;
            if (!sub)
                continue;
            push_idx(c, i);
            bool r = v_node(c, sub, &v->u.a[i]);
            c->plen--;
            if (!r) {
                ok = false;
                if (!c->collect)
                    return false;
            }
        }
        if (k->u.tuple.add_false && v->n > k->u.tuple.n) {
            report(c, k->u.tuple.add_spath, "additionalItems", SCHEMA_V_SCHEMA_MISMATCH, NULL, 0,
                   k->u.tuple.add_msg, NULL, 0, STR_LIT(""));
            ok = false;
        }
        return ok;
    }
    case OP_UNIQUE: {
        size_t a, b;
        if (!find_duplicate(v, &a, &b))
            return true;
        report_duplicate(c, k, a, b);
        return false;
    }
    case OP_CONTAINS:
        for (uint32_t i = 0; i < v->n; i++)
            if (quick(c, k->u.sub, &v->u.a[i]))
                return true;
        REPORT(c, k, SCHEMA_V_SCHEMA_MISMATCH,
               STR_LIT("must contain an item that matches the contains schema"));
        return false;

    case OP_REQUIRED: {
        bool ok = true;
        for (size_t i = 0; i < k->u.req.n; i++) {
            const skey_t *r = &k->u.req.v[i];
            if (get_member(v, r))
                continue;
            ok = false;
            if (!c->collect)
                break;
            report(c, k->spath, "required", SCHEMA_V_REQUIRED_MISSING, r->s, r->n,
                   STR_LIT("required property \""), r->s, r->n, STR_LIT("\" is missing"));
        }
        return ok;
    }
    case OP_DEPS: {
        bool ok = true;
        for (size_t i = 0; i < k->u.deps.n && (ok || c->collect); i++) {
            const dep_t *d = &k->u.deps.v[i];
            if (!get_member(v, &d->key))
                continue;
            if (d->node) {
                ok &= v_node(c, d->node, v);
                continue;
            }
            for (size_t r = 0; r < d->nreq; r++) {
                if (get_member(v, &d->req[r]))
                    continue;
                ok = false;
                if (!c->collect)
                    break;
                report(c, k->spath, "dependencies", SCHEMA_V_REQUIRED_MISSING, d->req[r].s,
                       d->req[r].n, STR_LIT("property \""), d->req[r].s, d->req[r].n, d->msg);
            }
        }
        return ok;
    }
    case OP_PROPNAMES: {
        bool ok = true;
        for (uint32_t i = 0; i < v->n; i++) {
            const jview_member_t *m = &v->u.m[i];
            /* a name is a string with no value of its own: a view made on the spot */
            val_t name = {.type = JV_STR, .n = m->keylen, .u.s = m->key};
            if (quick(c, k->u.sub, &name))
                continue;
            ok = false;
            if (!c->collect)
                break;
            report(c, k->spath, "propertyNames", SCHEMA_V_SCHEMA_MISMATCH, m->key, m->keylen,
                   STR_LIT("property name \""), m->key, m->keylen,
                   STR_LIT("\" does not match propertyNames"));
        }
        return ok;
    }
    default:
        return true;
    }
}

static bool exec(vctx_t *c, const node_t *n, const kw_t *k, const val_t *v)
{
    switch ((enum op)k->op) {
    case OP_FALSE:
        REPORT(c, k, SCHEMA_V_SCHEMA_MISMATCH, STR_LIT("no value is allowed here"));
        return false;
    case OP_TYPE:
        if (type_of(v, n->draft) & k->u.types)
            return true;
        report_type(c, k, v);
        return false;
    case OP_ENUM:
        if (k->u.en.strs) {
            if (v->type == JV_STR) {
                uint64_t head = jview_key_head(v->u.s, v->n);
                const skey_t *e = k->u.en.strs, *end = e + k->u.en.value->n;
                for (; e < end; e++)
                    if (e->head == head && e->n == v->n && jview_key_tail_eq(e->s, v->u.s, v->n))
                        return true;
            }
        } else {
            for (uint32_t i = 0; i < k->u.en.value->n; i++)
                if (sch_value_equal(v, &k->u.en.value->u.a[i]))
                    return true;
        }
        REPORT(c, k, SCHEMA_V_ENUM_MISMATCH, k->msg);
        return false;
    case OP_CONST:
        if (sch_value_equal(v, k->u.en.value))
            return true;
        REPORT(c, k, SCHEMA_V_ENUM_MISMATCH, k->msg);
        return false;
    case OP_REF:
        return v_node(c, k->u.sub, v);
    case OP_MIN:
    case OP_MAX:
    case OP_XMIN:
    case OP_XMAX:
        if (limit_ok(k, sch_num_of_view(v)))
            return true;
        REPORT(c, k, SCHEMA_V_RANGE_MISMATCH, k->msg);
        return false;
    case OP_MULOF:
        if (sch_num_multiple_of(sch_num_of_view(v), k->u.lim.n))
            return true;
        REPORT(c, k, SCHEMA_V_RANGE_MISMATCH, k->msg);
        return false;

    case OP_MINLEN:
    case OP_MAXLEN: {
        size_t len = v->n;
        /* a code point takes 1 to 4 bytes: the byte length often decides alone */
        size_t cps = (k->op == OP_MAXLEN && len <= k->u.count) ||
                             (k->op == OP_MINLEN && len / 4 >= k->u.count)
                         ? k->u.count
                         : utf8_len(v->u.s, len);
        if (k->op == OP_MINLEN ? cps >= k->u.count : cps <= k->u.count)
            return true;
        REPORT(c, k, SCHEMA_V_RANGE_MISMATCH, k->msg);
        return false;
    }
    case OP_PATTERN: {
        int m = sch_re_match(k->u.pat.re, v->u.s, v->n);
        if (m == 1)
            return true;
        REPORT(c, k, SCHEMA_V_PATTERN_MISMATCH,
               m == 0 ? k->msg
                      : STR_LIT("the pattern could not be evaluated on this value (match limit)"));
        return false;
    }
    case OP_FORMAT:
        if (sch_format_check(k->u.format, v->u.s, v->n))
            return true;
        REPORT(c, k, SCHEMA_V_PATTERN_MISMATCH, k->msg);
        return false;

    case OP_MINITEMS:
    case OP_MINPROPS:
        if (v->n >= k->u.count)
            return true;
        REPORT(c, k, SCHEMA_V_RANGE_MISMATCH, k->msg);
        return false;
    case OP_MAXITEMS:
    case OP_MAXPROPS:
        if (v->n <= k->u.count)
            return true;
        REPORT(c, k, SCHEMA_V_RANGE_MISMATCH, k->msg);
        return false;
    case OP_PROPS:
        return v_props(c, k->u.props, v);
    default:
        return exec_loop(c, k, v);
    }
    return true;
}

static bool run(vctx_t *c, const node_t *n, unsigned i, unsigned end, const val_t *v)
{
    bool ok = true;
    for (; i < end; i++)
        if (!exec(c, n, &n->ops[i], v)) {
            ok = false;
            if (!c->collect)
                break;
        }
    return ok;
}

/* A node's program: "type" from the node itself (most programs start so), then the
 * instructions for any type, then those for the instance's category. */
static inline bool v_program(vctx_t *c, const node_t *n, const val_t *v)
{
    if (n->props) { /* the common object rule, without the interpreter's dispatch */
        if (n->types && !(type_of(v, n->draft) & n->types)) {
            report_type(c, &n->ops[0], v);
            return false; /* not an object: "properties" does not apply */
        }
        return v->type != JV_OBJ || v_props(c, n->props, v);
    }
    if (n->one) { /* the common scalar rule: "type" and one keyword, no loops */
        bool ok = type_of(v, n->draft) & n->types;
        if (!ok) {
            report_type(c, &n->ops[0], v);
            if (!c->collect)
                return false;
        }
        if (n->one_cat == CAT_ANY || n->one_cat == cat_of(v))
            ok &= exec(c, n, n->one, v);
        return ok;
    }
    bool ok = true;
    unsigned first = n->cat[CAT_ANY];
    if (n->types) {
        first++;
        if (!(type_of(v, n->draft) & n->types)) {
            report_type(c, &n->ops[0], v);
            if (!c->collect)
                return false;
            ok = false;
        }
    }
    ok &= run(c, n, first, n->cat[CAT_ANY + 1], v);
    int cat = cat_of(v);
    if (cat != CAT_ANY && (ok || c->collect))
        ok &= run(c, n, n->cat[cat], n->cat[cat + 1], v);
    return ok;
}

static bool v_node(vctx_t *c, const node_t *n, const val_t *v)
{
    if (trivial(n))
        return true;
    if (n->flat || n->props) /* no depth to track here (v_props keeps it) */
        return v_program(c, n, v);
    if (c->depth >= SCHEMA_MAX_DEPTH)
        return too_deep(c, n->loc);
    c->depth++;
    bool ok = v_program(c, n, v);
    c->depth--;
    return ok;
}

bool schema_validate_view(const schema_t *s, const jview_t *instance, schema_result_t *res)
{
    vctx_t c;
    c.res = res;
    c.collect = res != NULL;
    c.depth = 0;
    c.plen = 0;
    return v_node(&c, s->root, instance);
}

/* schema_validate() needs a view of the instance. With a result, the view lives in the
 * result (its violations point into it) until the result is cleared or freed; without
 * one, in a document per thread, reset after each call. Either way, once the memory has
 * grown to the largest instance, validating allocates nothing. */
static pthread_key_t doc_key;
static pthread_once_t doc_once = PTHREAD_ONCE_INIT;

static void doc_free(void *d) { jview_doc_free(d); }
static void doc_init(void) { (void)pthread_key_create(&doc_key, doc_free); }

static jview_doc_t *thread_doc(void)
{
    pthread_once(&doc_once, doc_init);
    jview_doc_t *d = pthread_getspecific(doc_key);
    if (!d && (d = jview_doc_new()) && pthread_setspecific(doc_key, d) != 0) {
        jview_doc_free(d);
        d = NULL;
    }
    return d;
}

static jview_doc_t *result_doc(schema_result_t *r)
{
    if (!r->store && !(r->store = calloc(1, sizeof *r->store)))
        return NULL;
    if (!r->store->views)
        r->store->views = jview_doc_new();
    return r->store->views;
}

bool schema_validate(const schema_t *s, const json_t *instance, schema_result_t *res)
{
    jview_doc_t *d = res ? result_doc(res) : thread_doc();
    const jview_t *v = d ? jview_add(d, instance) : NULL;
    bool ok;
    if (v) {
        ok = schema_validate_view(s, v, res);
    } else {
        vctx_t c = {.res = res, .collect = res != NULL};
        report(&c, s->root->loc, "$ref", SCHEMA_V_SCHEMA_MISMATCH, NULL, 0,
               STR_LIT("the instance cannot be validated (nested too deep, or out of memory)"),
               NULL, 0, STR_LIT(""));
        ok = false;
    }
    if (d && !res)
        jview_doc_reset(d);
    return ok;
}
