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

/* A value to validate: a JSON value, or an object key (for propertyNames), which is a
 * string without a json_t of its own. */
typedef struct val {
    const json_t *j;
    const char *s;
    size_t n;
} val_t;

static bool v_node(vctx_t *c, const node_t *n, val_t v);

/* ----- violations ----------------------------------------------------------------------- */

static const char *const vtype_names[] = {
    "Required-Missing", "Datatype-Mismatch", "Additional-Properties", "Enum-Mismatch",
    "Pattern-Mismatch", "Range-Mismatch",    "Schema-Mismatch",
};

const char *schema_vtype_name(schema_vtype_t t)
{
    return (unsigned)t < sizeof vtype_names / sizeof vtype_names[0] ? vtype_names[t] : "Schema-Mismatch";
}

static void report(vctx_t *c, const node_t *n, const char *kw, schema_vtype_t type,
                   const char *key, size_t keylen, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Records a violation at the current path (plus `key`, for required and
 * additionalProperties, which name the property itself). */
static void report(vctx_t *c, const node_t *n, const char *kw, schema_vtype_t type,
                   const char *key, size_t keylen, const char *fmt, ...)
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
    sbuf_t path = {0}, sp = {0}, msg = {0};
    sch_sb_putn(&path, "", 0);
    for (unsigned i = 0; i < c->plen; i++) {
        if (c->path[i].key)
            sch_sb_pointer_seg(&path, c->path[i].key, c->path[i].n);
        else
            sch_sb_printf(&path, "/%zu", c->path[i].n);
    }
    if (key)
        sch_sb_pointer_seg(&path, key, keylen);
    sch_sb_puts(&sp, n->loc);
    if (strcmp(kw, "false") != 0)
        sch_sb_pointer_seg(&sp, kw, strlen(kw));
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sch_sb_puts(&msg, tmp);
    if (path.failed || sp.failed || msg.failed) {
        free(path.s);
        free(sp.s);
        free(msg.s);
        r->truncated = true;
        return;
    }
    r->items[r->count++] = (schema_violation_t){
        .type = type, .keyword = kw, .path = path.s, .path_len = path.len,
        .schema_path = sp.s, .message = msg.s};
}

void schema_result_clear(schema_result_t *r)
{
    for (size_t i = 0; i < r->count; i++) {
        free(r->items[i].path);
        free(r->items[i].schema_path);
        free(r->items[i].message);
    }
    r->count = 0;
    r->truncated = false;
}

void schema_result_free(schema_result_t *r)
{
    schema_result_clear(r);
    free(r->items);
    r->items = NULL;
    r->cap = 0;
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

static int cat_of(val_t v)
{
    if (!v.j)
        return CAT_STR;
    switch (json_typeof(v.j)) {
    case JSON_OBJECT:
        return CAT_OBJ;
    case JSON_ARRAY:
        return CAT_ARR;
    case JSON_STRING:
        return CAT_STR;
    case JSON_INTEGER:
    case JSON_REAL:
        return CAT_NUM;
    default:
        return CAT_ANY;
    }
}

static uint32_t type_of(val_t v, int draft)
{
    if (!v.j)
        return T_STR;
    switch (json_typeof(v.j)) {
    case JSON_OBJECT:
        return T_OBJ;
    case JSON_ARRAY:
        return T_ARR;
    case JSON_STRING:
        return T_STR;
    case JSON_INTEGER:
        return T_NUM | T_INT;
    case JSON_REAL:
        /* draft-06 made 1.0 an integer; draft-04 keeps it a number only */
        return T_NUM | (draft >= SCHEMA_DRAFT6 && sch_num_is_integral(sch_num_of(v.j)) ? T_INT : 0);
    case JSON_TRUE:
    case JSON_FALSE:
        return T_BOOL;
    default:
        return T_NULL;
    }
}

static void types_text(uint32_t mask, char *buf, size_t len)
{
    static const char *const names[] = {"null", "boolean", "object", "array",
                                        "number", "integer", "string"};
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < 7; i++) {
        if (!(mask & (1u << i)))
            continue;
        int w = snprintf(buf + k, len - k, "%s%s", k ? " or " : "", names[i]);
        if (w < 0 || (size_t)w >= len - k)
            break;
        k += (size_t)w;
    }
    if (!k)
        snprintf(buf, len, "nothing");
}

static const char *type_name(val_t v)
{
    if (!v.j)
        return "string";
    switch (json_typeof(v.j)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

static const char *str_of(val_t v, size_t *n)
{
    if (!v.j) {
        *n = v.n;
        return v.s;
    }
    *n = json_string_length(v.j);
    return json_string_value(v.j);
}

static bool val_equal(val_t v, const json_t *e)
{
    if (v.j)
        return sch_json_equal(v.j, e);
    return json_is_string(e) && json_string_length(e) == v.n &&
           memcmp(json_string_value(e), v.s, v.n) == 0;
}

/* Code points: UTF-8 bytes that do not continue a sequence. */
static size_t utf8_len(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

static void dump_short(const json_t *j, char *buf, size_t len)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) {
        snprintf(buf, len, "(value)");
        return;
    }
    if (strlen(s) >= len && len > 4)
        snprintf(buf, len, "%.*s...", (int)(len - 4), s);
    else
        snprintf(buf, len, "%s", s);
    free(s);
}

static bool quick(vctx_t *c, const node_t *n, val_t v)
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

static inline val_t jv(const json_t *j) { return (val_t){j, NULL, 0}; }

static const prop_t *find_prop(const props_t *p, const char *k, size_t n)
{
    if (p->n <= 8) {
        for (size_t i = 0; i < p->n; i++)
            if (p->v[i].key.n == n && memcmp(p->v[i].key.s, k, n) == 0)
                return &p->v[i];
        return NULL;
    }
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const skey_t *m = &p->v[mid].key;
        int cmp = m->n != n ? (m->n < n ? -1 : 1) : memcmp(m->s, k, n);
        if (cmp == 0)
            return &p->v[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ----- keywords that need a few lines ----------------------------------------------------------- */

static bool v_props(vctx_t *c, const node_t *n, const props_t *p, json_t *obj)
{
    bool ok = true;
    if (!p->scan_keys && p->n <= json_object_size(obj)) {
        /* only "properties": look each one up (hash lookups, no key walk) */
        for (size_t i = 0; i < p->n; i++) {
            const json_t *x = json_object_getn(obj, p->v[i].key.s, p->v[i].key.n);
            if (!x)
                continue;
            push_key(c, p->v[i].key.s, p->v[i].key.n);
            bool r = v_node(c, p->v[i].node, jv(x));
            c->plen--;
            if (!r) {
                ok = false;
                if (!c->collect)
                    return false;
            }
        }
        return ok;
    }
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *k = json_object_iter_key(it);
        size_t kn = json_object_iter_key_len(it);
        const json_t *x = json_object_iter_value(it);
        bool matched = false, r = true;
        push_key(c, k, kn);
        const prop_t *pr = find_prop(p, k, kn);
        if (pr) {
            matched = true;
            r = v_node(c, pr->node, jv(x));
        }
        for (size_t i = 0; i < p->npat && (r || c->collect); i++) {
            int m = sch_re_match(&p->pat[i].re, k, kn);
            if (m == 0)
                continue;
            matched = true;
            if (m < 0) {
                c->plen--;
                report(c, n, "patternProperties", SCHEMA_V_PATTERN_MISMATCH, k, kn,
                       "pattern \"%s\" could not be evaluated on this name (match limit)",
                       p->pat[i].src);
                push_key(c, k, kn);
                r = false;
            } else if (!v_node(c, p->pat[i].node, jv(x))) {
                r = false;
            }
        }
        c->plen--;
        if (!matched && (r || c->collect)) {
            if (p->add_false) {
                report(c, n, "additionalProperties", SCHEMA_V_ADDITIONAL_PROPERTIES, k, kn,
                       "property \"%.*s\" is not allowed", (int)kn, k);
                r = false;
            } else if (p->add) {
                push_key(c, k, kn);
                if (!v_node(c, p->add, jv(x)))
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
            for (size_t j = i + 1; j < n; j++)
                if (sch_json_equal(json_array_get(arr, i), json_array_get(arr, j))) {
                    *a = i;
                    *b = j;
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

static bool v_limit(vctx_t *c, const node_t *n, const kw_t *k, num_t x)
{
    int cmp = sch_num_cmp(x, k->u.lim.n);
    bool ok;
    const char *kw, *rel;
    switch (k->op) {
    case OP_MIN:
        ok = k->u.lim.excl ? cmp > 0 : cmp >= 0;
        kw = "minimum";
        rel = k->u.lim.excl ? ">" : ">=";
        break;
    case OP_MAX:
        ok = k->u.lim.excl ? cmp < 0 : cmp <= 0;
        kw = "maximum";
        rel = k->u.lim.excl ? "<" : "<=";
        break;
    case OP_XMIN:
        ok = cmp > 0;
        kw = "exclusiveMinimum";
        rel = ">";
        break;
    default:
        ok = cmp < 0;
        kw = "exclusiveMaximum";
        rel = "<";
        break;
    }
    if (!ok) {
        char b[40];
        sch_num_format(k->u.lim.n, b, sizeof b);
        report(c, n, kw, SCHEMA_V_RANGE_MISMATCH, NULL, 0, "must be %s %s", rel, b);
    }
    return ok;
}

/* ----- the interpreter ------------------------------------------------------------------------ */

static bool exec(vctx_t *c, const node_t *n, const kw_t *k, val_t v)
{
    switch ((enum op)k->op) {
    case OP_FALSE:
        report(c, n, "false", SCHEMA_V_SCHEMA_MISMATCH, NULL, 0, "no value is allowed here");
        return false;
    case OP_TYPE:
        if (type_of(v, n->draft) & k->u.types)
            return true;
        if (c->collect) {
            char want[80];
            types_text(k->u.types, want, sizeof want);
            report(c, n, "type", SCHEMA_V_DATATYPE_MISMATCH, NULL, 0, "expected %s, got %s",
                   want, type_name(v));
        }
        return false;
    case OP_ENUM:
        for (size_t i = 0; i < json_array_size(k->u.value); i++)
            if (val_equal(v, json_array_get(k->u.value, i)))
                return true;
        if (c->collect) {
            char b[200];
            dump_short(k->u.value, b, sizeof b);
            report(c, n, "enum", SCHEMA_V_ENUM_MISMATCH, NULL, 0, "must be one of %s", b);
        }
        return false;
    case OP_CONST:
        if (val_equal(v, k->u.value))
            return true;
        if (c->collect) {
            char b[200];
            dump_short(k->u.value, b, sizeof b);
            report(c, n, "const", SCHEMA_V_ENUM_MISMATCH, NULL, 0, "must be %s", b);
        }
        return false;
    case OP_REF:
        return v_node(c, k->u.sub, v);
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
        report(c, n, "anyOf", SCHEMA_V_SCHEMA_MISMATCH, NULL, 0,
               "must match at least one schema in anyOf");
        return false;
    case OP_ONEOF: {
        size_t m = 0;
        for (size_t i = 0; i < k->u.list.n && m < 2; i++)
            m += quick(c, k->u.list.v[i], v);
        if (m == 1)
            return true;
        report(c, n, "oneOf", SCHEMA_V_SCHEMA_MISMATCH, NULL, 0,
               m ? "must match exactly one schema in oneOf, but matches several"
                 : "must match exactly one schema in oneOf, but matches none");
        return false;
    }
    case OP_NOT:
        if (!quick(c, k->u.sub, v))
            return true;
        report(c, n, "not", SCHEMA_V_SCHEMA_MISMATCH, NULL, 0, "must not match the schema in not");
        return false;
    case OP_IF:
        if (quick(c, k->u.cond.cond, v))
            return k->u.cond.then ? v_node(c, k->u.cond.then, v) : true;
        return k->u.cond.els ? v_node(c, k->u.cond.els, v) : true;

    case OP_MIN:
    case OP_MAX:
    case OP_XMIN:
    case OP_XMAX:
        return v_limit(c, n, k, sch_num_of(v.j));
    case OP_MULOF:
        if (sch_num_multiple_of(sch_num_of(v.j), k->u.lim.n))
            return true;
        if (c->collect) {
            char b[40];
            sch_num_format(k->u.lim.n, b, sizeof b);
            report(c, n, "multipleOf", SCHEMA_V_RANGE_MISMATCH, NULL, 0,
                   "must be a multiple of %s", b);
        }
        return false;

    case OP_MINLEN:
    case OP_MAXLEN: {
        size_t len;
        const char *s = str_of(v, &len);
        /* a code point takes 1 to 4 bytes: the byte length often decides alone */
        size_t cps = (k->op == OP_MAXLEN && len <= k->u.count) ||
                             (k->op == OP_MINLEN && len / 4 >= k->u.count)
                         ? k->u.count
                         : utf8_len(s, len);
        if (k->op == OP_MINLEN ? cps >= k->u.count : cps <= k->u.count)
            return true;
        report(c, n, k->op == OP_MINLEN ? "minLength" : "maxLength", SCHEMA_V_RANGE_MISMATCH,
               NULL, 0, "must be at %s %zu characters long",
               k->op == OP_MINLEN ? "least" : "most", k->u.count);
        return false;
    }
    case OP_PATTERN: {
        size_t len;
        const char *s = str_of(v, &len);
        int m = sch_re_match(k->u.pat.re, s, len);
        if (m == 1)
            return true;
        if (m == 0)
            report(c, n, "pattern", SCHEMA_V_PATTERN_MISMATCH, NULL, 0,
                   "must match pattern \"%s\"", k->u.pat.src);
        else
            report(c, n, "pattern", SCHEMA_V_PATTERN_MISMATCH, NULL, 0,
                   "pattern \"%s\" could not be evaluated on this value (match limit)",
                   k->u.pat.src);
        return false;
    }
    case OP_FORMAT: {
        size_t len;
        const char *s = str_of(v, &len);
        if (sch_format_check(k->u.format, s, len))
            return true;
        report(c, n, "format", SCHEMA_V_PATTERN_MISMATCH, NULL, 0, "must be a valid %s",
               sch_format_name(k->u.format));
        return false;
    }

    case OP_ITEMS: {
        bool ok = true;
        for (size_t i = 0; i < json_array_size(v.j); i++) {
            push_idx(c, i);
            bool r = v_node(c, k->u.sub, jv(json_array_get(v.j, i)));
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
        size_t len = json_array_size(v.j);
        for (size_t i = 0; i < len; i++) {
            const node_t *sub = i < k->u.tuple.n ? k->u.tuple.v[i] : k->u.tuple.add;
            if (!sub)
                continue;
            push_idx(c, i);
            bool r = v_node(c, sub, jv(json_array_get(v.j, i)));
            c->plen--;
            if (!r) {
                ok = false;
                if (!c->collect)
                    return false;
            }
        }
        if (k->u.tuple.add_false && len > k->u.tuple.n) {
            report(c, n, "additionalItems", SCHEMA_V_SCHEMA_MISMATCH, NULL, 0,
                   "must have at most %zu items", k->u.tuple.n);
            ok = false;
        }
        return ok;
    }
    case OP_MINITEMS:
        if (json_array_size(v.j) >= k->u.count)
            return true;
        report(c, n, "minItems", SCHEMA_V_RANGE_MISMATCH, NULL, 0, "must have at least %zu items",
               k->u.count);
        return false;
    case OP_MAXITEMS:
        if (json_array_size(v.j) <= k->u.count)
            return true;
        report(c, n, "maxItems", SCHEMA_V_RANGE_MISMATCH, NULL, 0, "must have at most %zu items",
               k->u.count);
        return false;
    case OP_UNIQUE: {
        size_t a, b;
        if (!find_duplicate(v.j, &a, &b))
            return true;
        report(c, n, "uniqueItems", SCHEMA_V_SCHEMA_MISMATCH, NULL, 0,
               "items %zu and %zu are equal", a, b);
        return false;
    }
    case OP_CONTAINS:
        for (size_t i = 0; i < json_array_size(v.j); i++)
            if (quick(c, k->u.sub, jv(json_array_get(v.j, i))))
                return true;
        report(c, n, "contains", SCHEMA_V_SCHEMA_MISMATCH, NULL, 0,
               "must contain an item that matches the contains schema");
        return false;

    case OP_PROPS:
        return v_props(c, n, k->u.props, (json_t *)v.j);
    case OP_REQUIRED: {
        bool ok = true;
        for (size_t i = 0; i < k->u.req.n; i++) {
            const skey_t *r = &k->u.req.v[i];
            if (json_object_getn(v.j, r->s, r->n))
                continue;
            ok = false;
            if (!c->collect)
                break;
            report(c, n, "required", SCHEMA_V_REQUIRED_MISSING, r->s, r->n,
                   "required property \"%.*s\" is missing", (int)r->n, r->s);
        }
        return ok;
    }
    case OP_MINPROPS:
        if (json_object_size(v.j) >= k->u.count)
            return true;
        report(c, n, "minProperties", SCHEMA_V_RANGE_MISMATCH, NULL, 0,
               "must have at least %zu properties", k->u.count);
        return false;
    case OP_MAXPROPS:
        if (json_object_size(v.j) <= k->u.count)
            return true;
        report(c, n, "maxProperties", SCHEMA_V_RANGE_MISMATCH, NULL, 0,
               "must have at most %zu properties", k->u.count);
        return false;
    case OP_DEPS: {
        bool ok = true;
        for (size_t i = 0; i < k->u.deps.n && (ok || c->collect); i++) {
            const dep_t *d = &k->u.deps.v[i];
            if (!json_object_getn(v.j, d->key.s, d->key.n))
                continue;
            if (d->node) {
                ok &= v_node(c, d->node, v);
                continue;
            }
            for (size_t r = 0; r < d->nreq; r++) {
                if (json_object_getn(v.j, d->req[r].s, d->req[r].n))
                    continue;
                ok = false;
                if (!c->collect)
                    break;
                report(c, n, "dependencies", SCHEMA_V_REQUIRED_MISSING, d->req[r].s, d->req[r].n,
                       "property \"%.*s\" is required when \"%.*s\" is present", (int)d->req[r].n,
                       d->req[r].s, (int)d->key.n, d->key.s);
            }
        }
        return ok;
    }
    case OP_PROPNAMES: {
        bool ok = true;
        json_t *obj = (json_t *)v.j;
        for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
            const char *key = json_object_iter_key(it);
            size_t kn = json_object_iter_key_len(it);
            if (quick(c, k->u.sub, (val_t){NULL, key, kn}))
                continue;
            ok = false;
            if (!c->collect)
                break;
            report(c, n, "propertyNames", SCHEMA_V_SCHEMA_MISMATCH, key, kn,
                   "property name \"%.*s\" does not match propertyNames", (int)kn, key);
        }
        return ok;
    }
    }
    return true;
}

static bool run(vctx_t *c, const node_t *n, int cat, val_t v)
{
    bool ok = true;
    for (unsigned i = n->cat[cat]; i < n->cat[cat + 1]; i++)
        if (!exec(c, n, &n->ops[i], v)) {
            ok = false;
            if (!c->collect)
                break;
        }
    return ok;
}

static bool v_node(vctx_t *c, const node_t *n, val_t v)
{
    if (c->depth >= SCHEMA_MAX_DEPTH) {
        report(c, n, "$ref", SCHEMA_V_SCHEMA_MISMATCH, NULL, 0,
               "validation nested deeper than %d schemas", SCHEMA_MAX_DEPTH);
        return false;
    }
    c->depth++;
    bool ok = run(c, n, CAT_ANY, v);
    int cat = cat_of(v);
    if (cat != CAT_ANY && (ok || c->collect))
        ok &= run(c, n, cat, v);
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
    return v_node(&c, s->root, jv(instance));
}
