/*
 * validate.c — the interpreter that runs a compiled schema over an instance.
 *
 * It runs in one of two modes. Collecting mode (the caller passed a result) evaluates
 * every keyword and records each failure; quick mode answers valid/invalid and stops
 * at the first failure. Keywords whose subschemas only decide (anyOf, oneOf, not, if,
 * contains, propertyNames) always evaluate them in quick mode, so the errors of a
 * losing anyOf branch never leak into the result.
 *
 * Nothing is allocated unless a violation is recorded: the instance path lives in a
 * fixed array on the stack as (key, index) segments and becomes a JSON pointer string
 * only when a violation needs it.
 */
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

/* The value being validated is passed as (j, ks, kn): a JSON value j, or, when j is
 * NULL, an object key ks[0..kn) for propertyNames — a string with no json_t of its
 * own. Three scalars travel in registers, a struct would go through memory. */
#define VAL const json_t *j, const char *ks, size_t kn
#define JV(x) (x), NULL, 0

static bool v_node(vctx_t *c, const node_t *n, VAL);

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

/* String storage of a result: blocks that are kept (and reused) across clears. */
typedef struct sblock {
    struct sblock *next;
    size_t used, size;
    char data[];
} sblock_t;

struct schema_strings {
    sblock_t *head, *cur;
};

static char *str_alloc(schema_result_t *r, size_t n)
{
    struct schema_strings *ss = r->strings;
    if (!ss) {
        ss = r->strings = calloc(1, sizeof *ss);
        if (!ss)
            return NULL;
    }
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

/* JSON pointer escaping (~ -> ~0, / -> ~1) eight bytes at a time: most keys have
 * neither character, and then each word is one test and one store. */
static inline bool has_special(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t a = x ^ (ones * '~'), b = x ^ (ones * '/');
    return (((a - ones) & ~a) | ((b - ones) & ~b)) & highs;
}

/* Gives back the last n bytes of the latest str_alloc. */
static void str_unalloc(schema_result_t *r, size_t n) { r->strings->cur->used -= n; }

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

/* Records a violation at the current instance path (plus `key`: required and
 * additionalProperties name the property itself). The message is m1 m2[0..m2n) m3,
 * mostly prepared at compile time; everything is copied into the result's storage. */
static void report(vctx_t *c, str_t spath, const char *kw, schema_vtype_t type,
                   const char *key, size_t keylen, str_t m1, const char *m2, size_t m2n,
                   str_t m3)
{
    if (!c->collect)
        return;
    schema_result_t *r = c->res;
    if (r->limit && r->count >= r->limit) {
        r->truncated = true;
        return;
    }
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        schema_violation_t *items = realloc(r->items, cap * sizeof *items);
        if (!items) {
            r->truncated = true;
            return;
        }
        r->items = items;
        r->cap = cap;
    }
    /* One block per violation: path, keyword location and message. The path is
     * written in place, into room for its worst case (every byte escaped, 20 digits an
     * index), and the unused rest is handed back. */
    size_t worst = key ? 2 * keylen + 1 : 0;
    for (unsigned i = 0; i < c->plen; i++)
        worst += c->path[i].key ? 2 * c->path[i].n + 1 : 21;
    size_t rest = 1 + spath.n + 1 + m1.n + m2n + m3.n + 1;
    char *buf = str_alloc(r, worst + rest);
    if (!buf) {
        r->truncated = true;
        return;
    }
    char *p = buf;
    for (unsigned i = 0; i < c->plen; i++) {
        if (c->path[i].key)
            p = put_seg(p, c->path[i].key, c->path[i].n);
        else
            p += put_index(p, c->path[i].n);
    }
    if (key)
        p = put_seg(p, key, keylen);
    size_t plen = (size_t)(p - buf);
    *p++ = '\0';
    char *sp = p;
    memcpy(sp, spath.s, spath.n);
    sp[spath.n] = '\0';
    char *msg = sp + spath.n + 1;
    memcpy(msg, m1.s, m1.n);
    if (m2n)
        memcpy(msg + m1.n, m2, m2n);
    if (m3.n)
        memcpy(msg + m1.n + m2n, m3.s, m3.n);
    msg[m1.n + m2n + m3.n] = '\0';
    str_unalloc(r, worst - plen);
    r->items[r->count++] = (schema_violation_t){.type = type, .keyword = kw, .path = buf,
                                                .path_len = plen, .schema_path = sp,
                                                .message = msg};
}

/* A violation whose message is fixed. */
#define REPORT(c, k, type, msg) \
    report(c, (k)->spath, sch_op_keyword[(k)->op], type, NULL, 0, msg, NULL, 0, STR_LIT(""))

void schema_result_clear(schema_result_t *r)
{
    r->count = 0;
    r->truncated = false;
    if (r->strings) {
        for (sblock_t *b = r->strings->head; b; b = b->next)
            b->used = 0;
        r->strings->cur = r->strings->head;
    }
}

void schema_result_free(schema_result_t *r)
{
    if (r->strings) {
        sblock_t *b = r->strings->head;
        while (b) {
            sblock_t *next = b->next;
            free(b);
            b = next;
        }
        free(r->strings);
        r->strings = NULL;
    }
    free(r->items);
    r->items = NULL;
    r->count = r->cap = 0;
    r->truncated = false;
}

json_t *schema_violation_json(const schema_violation_t *v)
{
    return json_pack("{s:s, s:s%, s:s, s:s}", "type", schema_vtype_name(v->type), "path", v->path,
                     v->path_len, "keyword", v->keyword, "message", v->message);
}

json_t *schema_result_json(const schema_result_t *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->count; i++) {
        if (json_array_append_new(a, schema_violation_json(&r->items[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* ----- helpers ------------------------------------------------------------------------------ */

static int cat_of(const json_t *j)
{
    static const uint8_t cat[] = {[JSON_OBJECT] = CAT_OBJ, [JSON_ARRAY] = CAT_ARR,
                                  [JSON_STRING] = CAT_STR, [JSON_INTEGER] = CAT_NUM,
                                  [JSON_REAL] = CAT_NUM,   [JSON_TRUE] = CAT_ANY,
                                  [JSON_FALSE] = CAT_ANY,  [JSON_NULL] = CAT_ANY};
    return j ? cat[json_typeof(j)] : CAT_STR;
}

static uint32_t type_of(const json_t *j, int draft)
{
    static const uint32_t bits[] = {[JSON_OBJECT] = T_OBJ,         [JSON_ARRAY] = T_ARR,
                                    [JSON_STRING] = T_STR,         [JSON_INTEGER] = T_NUM | T_INT,
                                    [JSON_REAL] = T_NUM,           [JSON_TRUE] = T_BOOL,
                                    [JSON_FALSE] = T_BOOL,         [JSON_NULL] = T_NULL};
    if (!j)
        return T_STR;
    uint32_t b = bits[json_typeof(j)];
    /* draft-06 made 1.0 an integer; draft-04 keeps it a number only */
    if (b == T_NUM && draft >= SCHEMA_DRAFT6 && sch_num_is_integral(sch_num_of(j)))
        b |= T_INT;
    return b;
}

static str_t type_name(const json_t *j)
{
    if (!j)
        return STR_LIT("string");
    switch (json_typeof(j)) {
    case JSON_OBJECT: return STR_LIT("object");
    case JSON_ARRAY: return STR_LIT("array");
    case JSON_STRING: return STR_LIT("string");
    case JSON_INTEGER: return STR_LIT("integer");
    case JSON_REAL: return STR_LIT("number");
    case JSON_TRUE:
    case JSON_FALSE: return STR_LIT("boolean");
    default: return STR_LIT("null");
    }
}

static const char *str_of(VAL, size_t *n)
{
    if (!j) {
        *n = kn;
        return ks;
    }
    *n = json_string_length(j);
    return json_string_value(j);
}

static bool val_equal(VAL, const json_t *e)
{
    if (j)
        return sch_json_equal(j, e);
    return json_is_string(e) && json_string_length(e) == kn &&
           memcmp(json_string_value(e), ks, kn) == 0;
}

/* Code points: UTF-8 bytes that do not continue a sequence. */
static size_t utf8_len(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

static bool quick(vctx_t *c, const node_t *n, VAL)
{
    bool saved = c->collect;
    c->collect = false;
    bool ok = v_node(c, n, j, ks, kn);
    c->collect = saved;
    return ok;
}

static inline void push_key(vctx_t *c, const char *k, size_t n)
{
    c->path[c->plen++] = (seg_t){k, n};
}

static inline void push_idx(vctx_t *c, size_t i) { c->path[c->plen++] = (seg_t){NULL, i}; }

static inline bool trivial(const node_t *n) { return n->cat[CAT_N] == 0; }

/* Compares short keys without a call to memcmp. */
static inline bool key_eq(const char *a, const char *b, size_t n)
{
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y)
            return false;
    }
    while (n--)
        if (*a++ != *b++)
            return false;
    return true;
}

static const prop_t *find_prop(const props_t *p, const char *k, size_t n)
{
    if (p->ph) {
        uint16_t slot = p->ph[sch_prop_hash(k, n, p->ph_mul) & p->ph_mask];
        const prop_t *pr = slot ? &p->v[slot - 1] : NULL;
        return pr && pr->key.n == n && key_eq(pr->key.s, k, n) ? pr : NULL;
    }
    if (p->n <= 8) {
        for (size_t i = 0; i < p->n; i++)
            if (p->v[i].key.n == n && key_eq(p->v[i].key.s, k, n))
                return &p->v[i];
        return NULL;
    }
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const skey_t *m = &p->sorted[mid]->key;
        int cmp = m->n != n ? (m->n < n ? -1 : 1) : memcmp(m->s, k, n);
        if (cmp == 0)
            return p->sorted[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}



static void report_missing(vctx_t *c, const props_t *p, const prop_t *pr)
{
    report(c, p->req_spath, "required", SCHEMA_V_REQUIRED_MISSING, pr->key.s, pr->key.n,
           STR_LIT("required property \""), pr->key.s, pr->key.n, STR_LIT("\" is missing"));
}

/* properties + patternProperties + additionalProperties, and the "required" keys that
 * "properties" names. */
static bool v_props(vctx_t *c, const props_t *p, json_t *obj)
{
    bool ok = true;
    /* Only "properties": either look up the names that matter (a hash lookup each in
     * jansson) or walk the instance's keys (cheaper per key, but every key is visited),
     * whichever visits fewer. An empty schema ({} or true) needs no lookup unless the
     * key is also required. */
    if (!p->scan_keys && json_object_size(obj) > p->nlook + p->nlook / 2) {
        for (size_t i = 0; i < p->n; i++) {
            const prop_t *pr = &p->v[i];
            if (pr->trivial && !pr->required)
                continue;
            const json_t *x = json_object_getn(obj, pr->key.s, pr->key.n);
            bool r = true;
            if (!x) {
                if (!pr->required)
                    continue;
                report_missing(c, p, pr);
                r = false;
            } else if (pr->leaf && (type_of(x, pr->draft) & pr->leaf)) {
                continue; /* a lone "type" that holds: no call needed */
            } else if (!pr->trivial) {
                push_key(c, pr->key.s, pr->key.n);
                r = v_node(c, pr->node, JV(x));
                c->plen--;
            }
            if (!r) {
                ok = false;
                if (!c->collect)
                    return false;
            }
        }
        return ok;
    }
    size_t found_req = 0;
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *k = json_object_iter_key(it);
        size_t kn = json_object_iter_key_len(it);
        const json_t *x = json_object_iter_value(it);
        bool matched = false, r = true;
        push_key(c, k, kn);
        const prop_t *pr = find_prop(p, k, kn);
        if (pr) {
            matched = true;
            found_req += pr->required;
            if (!pr->trivial && !(pr->leaf && (type_of(x, pr->draft) & pr->leaf)))
                r = v_node(c, pr->node, JV(x));
        }
        for (size_t i = 0; i < p->npat && (r || c->collect); i++) {
            int m = sch_re_match(&p->pat[i].re, k, kn);
            if (m == 0)
                continue;
            matched = true;
            if (m < 0) {
                c->plen--;
                report(c, p->pat_spath, "patternProperties", SCHEMA_V_PATTERN_MISMATCH, k, kn,
                       STR_LIT("a patternProperties pattern could not be evaluated on this "
                               "name (match limit)"),
                       NULL, 0, STR_LIT(""));
                push_key(c, k, kn);
                r = false;
            } else if (!v_node(c, p->pat[i].node, JV(x))) {
                r = false;
            }
        }
        c->plen--;
        if (!matched && (r || c->collect)) {
            if (p->add_false) {
                report(c, p->add_spath, "additionalProperties", SCHEMA_V_ADDITIONAL_PROPERTIES, k,
                       kn, STR_LIT("property \""), k, kn, STR_LIT("\" is not allowed"));
                r = false;
            } else if (p->add) {
                push_key(c, k, kn);
                if (!v_node(c, p->add, JV(x)))
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
            if (p->v[i].required && !json_object_getn(obj, p->v[i].key.s, p->v[i].key.n))
                report_missing(c, p, &p->v[i]);
    }
    return ok;
}

/* uniqueItems: pairwise for short arrays; a hash table beyond that, on the stack up to
 * 1024 items (the only place validation may allocate without a violation is a longer
 * array, where quadratic comparison would be a denial of service). */
static bool find_duplicate(const json_t *arr, size_t *a, size_t *b)
{
    size_t n = json_array_size(arr);
    if (n <= 32) {
        for (size_t i = 0; i < n; i++)
            for (size_t k = i + 1; k < n; k++)
                if (sch_json_equal(json_array_get(arr, i), json_array_get(arr, k))) {
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
        const json_t *x = json_array_get(arr, i);
        for (size_t k = sch_json_hash(x) & (cap - 1);; k = (k + 1) & (cap - 1)) {
            if (tab[k] == UINT32_MAX) {
                tab[k] = (uint32_t)i;
                break;
            }
            if (sch_json_equal(json_array_get(arr, tab[k]), x)) {
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
    REPORT(c, k, SCHEMA_V_SCHEMA_MISMATCH, ((str_t){m, len > 0 ? (uint32_t)len : 0}));
}

static __attribute__((noinline)) void report_type(vctx_t *c, const kw_t *k, const json_t *j)
{
    if (c->collect)
        report(c, k->spath, "type", SCHEMA_V_DATATYPE_MISMATCH, NULL, 0, k->msg, ", got ", 6,
               type_name(j));
}

/* ----- the interpreter ------------------------------------------------------------------------ */

static bool exec(vctx_t *c, const node_t *n, const kw_t *k, VAL)
{
    switch ((enum op)k->op) {
    case OP_FALSE:
        REPORT(c, k, SCHEMA_V_SCHEMA_MISMATCH, STR_LIT("no value is allowed here"));
        return false;
    case OP_TYPE:
        if (type_of(j, n->draft) & k->u.types)
            return true;
        report_type(c, k, j);
        return false;
    case OP_ENUM:
        for (size_t i = 0; i < json_array_size(k->u.value); i++)
            if (val_equal(j, ks, kn, json_array_get(k->u.value, i)))
                return true;
        REPORT(c, k, SCHEMA_V_ENUM_MISMATCH, k->msg);
        return false;
    case OP_CONST:
        if (val_equal(j, ks, kn, k->u.value))
            return true;
        REPORT(c, k, SCHEMA_V_ENUM_MISMATCH, k->msg);
        return false;
    case OP_REF:
        return v_node(c, k->u.sub, j, ks, kn);
    case OP_ALLOF: {
        bool ok = true;
        for (size_t i = 0; i < k->u.list.n; i++)
            if (!v_node(c, k->u.list.v[i], j, ks, kn)) {
                ok = false;
                if (!c->collect)
                    break;
            }
        return ok;
    }
    case OP_ANYOF:
        for (size_t i = 0; i < k->u.list.n; i++)
            if (quick(c, k->u.list.v[i], j, ks, kn))
                return true;
        REPORT(c, k, SCHEMA_V_SCHEMA_MISMATCH, STR_LIT("must match at least one schema in anyOf"));
        return false;
    case OP_ONEOF: {
        size_t m = 0;
        for (size_t i = 0; i < k->u.list.n && m < 2; i++)
            m += quick(c, k->u.list.v[i], j, ks, kn);
        if (m == 1)
            return true;
        REPORT(c, k, SCHEMA_V_SCHEMA_MISMATCH,
               m ? STR_LIT("must match exactly one schema in oneOf, but matches several")
                 : STR_LIT("must match exactly one schema in oneOf, but matches none"));
        return false;
    }
    case OP_NOT:
        if (!quick(c, k->u.sub, j, ks, kn))
            return true;
        REPORT(c, k, SCHEMA_V_SCHEMA_MISMATCH, STR_LIT("must not match the schema in not"));
        return false;
    case OP_IF:
        if (quick(c, k->u.cond.cond, j, ks, kn))
            return k->u.cond.then ? v_node(c, k->u.cond.then, j, ks, kn) : true;
        return k->u.cond.els ? v_node(c, k->u.cond.els, j, ks, kn) : true;

    case OP_MIN:
    case OP_MAX:
    case OP_XMIN:
    case OP_XMAX:
        if (limit_ok(k, sch_num_of(j)))
            return true;
        REPORT(c, k, SCHEMA_V_RANGE_MISMATCH, k->msg);
        return false;
    case OP_MULOF:
        if (sch_num_multiple_of(sch_num_of(j), k->u.lim.n))
            return true;
        REPORT(c, k, SCHEMA_V_RANGE_MISMATCH, k->msg);
        return false;

    case OP_MINLEN:
    case OP_MAXLEN: {
        size_t len;
        const char *s = str_of(j, ks, kn, &len);
        /* a code point takes 1 to 4 bytes: the byte length often decides alone */
        size_t cps = (k->op == OP_MAXLEN && len <= k->u.count) ||
                             (k->op == OP_MINLEN && len / 4 >= k->u.count)
                         ? k->u.count
                         : utf8_len(s, len);
        if (k->op == OP_MINLEN ? cps >= k->u.count : cps <= k->u.count)
            return true;
        REPORT(c, k, SCHEMA_V_RANGE_MISMATCH, k->msg);
        return false;
    }
    case OP_PATTERN: {
        size_t len;
        const char *s = str_of(j, ks, kn, &len);
        int m = sch_re_match(k->u.pat.re, s, len);
        if (m == 1)
            return true;
        REPORT(c, k, SCHEMA_V_PATTERN_MISMATCH,
               m == 0 ? k->msg
                      : STR_LIT("the pattern could not be evaluated on this value (match limit)"));
        return false;
    }
    case OP_FORMAT: {
        size_t len;
        const char *s = str_of(j, ks, kn, &len);
        if (sch_format_check(k->u.format, s, len))
            return true;
        REPORT(c, k, SCHEMA_V_PATTERN_MISMATCH, k->msg);
        return false;
    }

    case OP_ITEMS: {
        bool ok = true;
        const node_t *sub = k->u.sub;
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (sub->leaf && (type_of(json_array_get(j, i), sub->draft) & sub->leaf))
                continue;
            push_idx(c, i);
            bool r = v_node(c, k->u.sub, JV(json_array_get(j, i)));
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
        size_t len = json_array_size(j);
        for (size_t i = 0; i < len; i++) {
            const node_t *sub = i < k->u.tuple.n ? k->u.tuple.v[i] : k->u.tuple.add;
            if (!sub)
                continue;
            push_idx(c, i);
            bool r = v_node(c, sub, JV(json_array_get(j, i)));
            c->plen--;
            if (!r) {
                ok = false;
                if (!c->collect)
                    return false;
            }
        }
        if (k->u.tuple.add_false && len > k->u.tuple.n) {
            report(c, k->u.tuple.add_spath, "additionalItems", SCHEMA_V_SCHEMA_MISMATCH, NULL, 0,
                   k->u.tuple.add_msg, NULL, 0, STR_LIT(""));
            ok = false;
        }
        return ok;
    }
    case OP_MINITEMS:
        if (json_array_size(j) >= k->u.count)
            return true;
        REPORT(c, k, SCHEMA_V_RANGE_MISMATCH, k->msg);
        return false;
    case OP_MAXITEMS:
        if (json_array_size(j) <= k->u.count)
            return true;
        REPORT(c, k, SCHEMA_V_RANGE_MISMATCH, k->msg);
        return false;
    case OP_UNIQUE: {
        size_t a, b;
        if (!find_duplicate(j, &a, &b))
            return true;
        report_duplicate(c, k, a, b);
        return false;
    }
    case OP_CONTAINS:
        for (size_t i = 0; i < json_array_size(j); i++)
            if (quick(c, k->u.sub, JV(json_array_get(j, i))))
                return true;
        REPORT(c, k, SCHEMA_V_SCHEMA_MISMATCH,
               STR_LIT("must contain an item that matches the contains schema"));
        return false;

    case OP_PROPS:
        return v_props(c, k->u.props, (json_t *)j);
    case OP_REQUIRED: {
        bool ok = true;
        for (size_t i = 0; i < k->u.req.n; i++) {
            const skey_t *r = &k->u.req.v[i];
            if (json_object_getn(j, r->s, r->n))
                continue;
            ok = false;
            if (!c->collect)
                break;
            report(c, k->spath, "required", SCHEMA_V_REQUIRED_MISSING, r->s, r->n,
                   STR_LIT("required property \""), r->s, r->n, STR_LIT("\" is missing"));
        }
        return ok;
    }
    case OP_MINPROPS:
        if (json_object_size(j) >= k->u.count)
            return true;
        REPORT(c, k, SCHEMA_V_RANGE_MISMATCH, k->msg);
        return false;
    case OP_MAXPROPS:
        if (json_object_size(j) <= k->u.count)
            return true;
        REPORT(c, k, SCHEMA_V_RANGE_MISMATCH, k->msg);
        return false;
    case OP_DEPS: {
        bool ok = true;
        for (size_t i = 0; i < k->u.deps.n && (ok || c->collect); i++) {
            const dep_t *d = &k->u.deps.v[i];
            if (!json_object_getn(j, d->key.s, d->key.n))
                continue;
            if (d->node) {
                ok &= v_node(c, d->node, j, ks, kn);
                continue;
            }
            for (size_t r = 0; r < d->nreq; r++) {
                if (json_object_getn(j, d->req[r].s, d->req[r].n))
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
        json_t *obj = (json_t *)j;
        for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
            const char *key = json_object_iter_key(it);
            size_t keyn = json_object_iter_key_len(it);
            if (quick(c, k->u.sub, NULL, key, keyn))
                continue;
            ok = false;
            if (!c->collect)
                break;
            report(c, k->spath, "propertyNames", SCHEMA_V_SCHEMA_MISMATCH, key, keyn,
                   STR_LIT("property name \""), key, keyn,
                   STR_LIT("\" does not match propertyNames"));
        }
        return ok;
    }
    }
    return true;
}

static bool run(vctx_t *c, const node_t *n, unsigned i, unsigned end, VAL)
{
    bool ok = true;
    for (; i < end; i++)
        if (!exec(c, n, &n->ops[i], j, ks, kn)) {
            ok = false;
            if (!c->collect)
                break;
        }
    return ok;
}

static bool v_node(vctx_t *c, const node_t *n, VAL)
{
    if (trivial(n))
        return true;
    if (c->depth >= SCHEMA_MAX_DEPTH) {
        report(c, n->loc, "$ref", SCHEMA_V_SCHEMA_MISMATCH, NULL, 0,
               STR_LIT("validation nested too deep (a recursive schema on a deep value)"), NULL,
               0, STR_LIT(""));
        return false;
    }
    bool ok = true;
    unsigned first = n->cat[CAT_ANY];
    if (n->types) { /* "type" first, from the node itself: most programs start so */
        first++;
        if (!(type_of(j, n->draft) & n->types)) {
            report_type(c, &n->ops[0], j);
            if (!c->collect)
                return false;
            ok = false;
        }
    }
    c->depth++;
    ok &= run(c, n, first, n->cat[CAT_ANY + 1], j, ks, kn);
    int cat = cat_of(j);
    if (cat != CAT_ANY && (ok || c->collect))
        ok &= run(c, n, n->cat[cat], n->cat[cat + 1], j, ks, kn);
    c->depth--;
    return ok;
}

bool schema_validate(const schema_t *s, const json_t *instance, schema_result_t *res)
{
    vctx_t c;
    c.res = res;
    c.collect = res != NULL;
    c.depth = 0;
    c.plen = 0;
    return v_node(&c, s->root, JV(instance));
}
