/*
 * util.c — the small pieces the schema compiler and validator share: an arena for
 * compile-time allocations, a string builder, exact number comparison, and JSON
 * equality/hashing with JSON Schema semantics.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/internal.h"

/* ----- arena ---------------------------------------------------------------------------- */

struct arena_block {
    arena_block_t *next;
    size_t used, size;
    _Alignas(max_align_t) unsigned char data[];
};

enum { ARENA_BLOCK = 16 * 1024 };

void *sch_arena_alloc(arena_t *a, size_t n)
{
    const size_t align = _Alignof(max_align_t);
    n = (n + align - 1) & ~(align - 1);
    if (n == 0)
        n = align;
    arena_block_t *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK;
        b = malloc(sizeof *b + size);
        if (!b) {
            a->failed = true;
            return NULL;
        }
        b->size = size;
        b->used = 0;
        /* A big one-off allocation goes behind the head so the head's free space
         * stays usable. */
        if (a->head && size != ARENA_BLOCK) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *sch_arena_strndup(arena_t *a, const char *s, size_t n)
{
    char *p = sch_arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void sch_arena_free(arena_t *a)
{
    arena_block_t *b = a->head;
    while (b) {
        arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* ----- string builder ---------------------------------------------------------------------- */

static bool sb_reserve(sbuf_t *b, size_t more)
{
    if (b->failed)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->failed = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void sch_sb_putn(sbuf_t *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n))
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void sch_sb_puts(sbuf_t *b, const char *s) { sch_sb_putn(b, s, strlen(s)); }

void sch_sb_putc(sbuf_t *b, char c) { sch_sb_putn(b, &c, 1); }

void sch_sb_printf(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof tmp) {
        sch_sb_putn(b, tmp, (size_t)n);
        return;
    }
    if (!sb_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sch_sb_pointer_seg(sbuf_t *b, const char *key, size_t n)
{
    sch_sb_putc(b, '/');
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (key[i] == '~' || key[i] == '/') {
            sch_sb_putn(b, key + start, i - start);
            sch_sb_puts(b, key[i] == '~' ? "~0" : "~1");
            start = i + 1;
        }
    }
    sch_sb_putn(b, key + start, n - start);
}

/* ----- numbers ------------------------------------------------------------------------------ */

num_t sch_num_of(const json_t *j)
{
    if (json_is_integer(j)) {
        json_int_t i = json_integer_value(j);
        return (num_t){.is_int = true, .i = i, .d = (double)i};
    }
    return (num_t){.is_int = false, .i = 0, .d = json_real_value(j)};
}

/* Compares an integer with a double exactly: converting the integer to double would
 * round above 2^53 and call 2^53+1 equal to 2^53. */
static int cmp_int_real(long long i, double d)
{
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    double f = floor(d);
    long long fi = (long long)f;
    if (i < fi)
        return -1;
    if (i > fi)
        return 1;
    return d > f ? -1 : 0;
}

int sch_num_cmp(num_t a, num_t b)
{
    if (a.is_int && b.is_int)
        return (a.i > b.i) - (a.i < b.i);
    if (!a.is_int && !b.is_int)
        return (a.d > b.d) - (a.d < b.d);
    if (a.is_int)
        return cmp_int_real(a.i, b.d);
    return -cmp_int_real(b.i, a.d);
}

bool sch_num_is_integral(num_t x) { return x.is_int || (isfinite(x.d) && x.d == floor(x.d)); }

bool sch_num_multiple_of(num_t x, num_t m)
{
    if (x.is_int && m.is_int) {
        if (m.i == 0)
            return false;
        if (m.i == -1) /* LLONG_MIN % -1 traps */
            return true;
        return x.i % m.i == 0;
    }
    double dm = m.is_int ? (double)m.i : m.d;
    double dx = x.is_int ? (double)x.i : x.d;
    if (dm == 0)
        return false;
    /* Every integer is a multiple of 1/k: decided without dividing, which would
     * overflow for huge x (1e308 / 0.5). */
    double inv = 1 / dm;
    if (sch_num_is_integral(x) && isfinite(inv) && inv == nearbyint(inv))
        return true;
    /* Decimal divisors (0.01) have no exact binary form, so the quotient of a true
     * multiple lands a few ulps away from an integer: accept a relative error of a few
     * ulps. An overflowing quotient is no multiple. */
    double q = dx / dm;
    if (!isfinite(q))
        return false;
    double r = nearbyint(q);
    return fabs(q - r) <= fabs(q) * (8 * DBL_EPSILON);
}

int sch_num_format(num_t x, char *buf, size_t len)
{
    if (x.is_int)
        return snprintf(buf, len, "%lld", x.i);
    for (int prec = 1; prec <= 17; prec++) {
        int n = snprintf(buf, len, "%.*g", prec, x.d);
        if (strtod(buf, NULL) == x.d)
            return n;
    }
    return snprintf(buf, len, "%.17g", x.d);
}

/* ----- JSON equality and hashing -------------------------------------------------------------- */

static bool is_number(const jview_t *v) { return v->type == JV_INT || v->type == JV_REAL; }

bool sch_value_equal(const jview_t *a, const jview_t *b)
{
    if (a == b)
        return true;
    if (is_number(a) && is_number(b))
        return sch_num_cmp(sch_num_of_view(a), sch_num_of_view(b)) == 0;
    if (a->type != b->type || a->n != b->n)
        return false;
    switch (a->type) {
    case JV_STR:
        return memcmp(a->u.s, b->u.s, a->n) == 0;
    case JV_ARR:
        for (uint32_t i = 0; i < a->n; i++)
            if (!sch_value_equal(&a->u.a[i], &b->u.a[i]))
                return false;
        return true;
    case JV_OBJ: /* same size and unique keys: every key of a found in b with an equal value */
        for (uint32_t i = 0; i < a->n; i++) {
            const jview_member_t *m = &a->u.m[i];
            const jview_t *bv = jview_get(b, m->key, m->keylen);
            if (!bv || !sch_value_equal(&m->v, bv))
                return false;
        }
        return true;
    default: /* true, false, null: same type is equal */
        return true;
    }
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Consistent with sch_value_equal: numbers hash by their double value (equal
 * numbers have equal doubles), objects by an order-independent sum. */
uint64_t sch_value_hash(const jview_t *a)
{
    switch (a->type) {
    case JV_INT:
    case JV_REAL: {
        double d = a->type == JV_INT ? (double)a->u.i : a->u.d;
        if (d == 0)
            d = 0; /* -0.0 */
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        return mix(bits ^ 0x1111);
    }
    case JV_STR:
        return mix(hash_bytes(a->u.s, a->n));
    case JV_ARR: {
        uint64_t h = 0x2222;
        for (uint32_t i = 0; i < a->n; i++)
            h = mix(h * 31 + sch_value_hash(&a->u.a[i]));
        return h;
    }
    case JV_OBJ: {
        uint64_t h = 0x3333;
        for (uint32_t i = 0; i < a->n; i++)
            h += mix(hash_bytes(a->u.m[i].key, a->u.m[i].keylen) * 31 +
                     sch_value_hash(&a->u.m[i].v));
        return mix(h);
    }
    case JV_TRUE:
        return 0x4444;
    case JV_FALSE:
        return 0x5555;
    default:
        return 0x6666;
    }
}

/* ----- names ---------------------------------------------------------------------------------- */

const char *const sch_op_keyword[] = {
    [OP_FALSE] = "false",          [OP_TYPE] = "type",
    [OP_ENUM] = "enum",            [OP_CONST] = "const",
    [OP_REF] = "$ref",             [OP_ALLOF] = "allOf",
    [OP_ANYOF] = "anyOf",          [OP_ONEOF] = "oneOf",
    [OP_NOT] = "not",              [OP_IF] = "if",
    [OP_MIN] = "minimum",          [OP_MAX] = "maximum",
    [OP_XMIN] = "exclusiveMinimum", [OP_XMAX] = "exclusiveMaximum",
    [OP_MULOF] = "multipleOf",     [OP_MINLEN] = "minLength",
    [OP_MAXLEN] = "maxLength",     [OP_PATTERN] = "pattern",
    [OP_FORMAT] = "format",        [OP_ITEMS] = "items",
    [OP_TUPLE] = "items",          [OP_MINITEMS] = "minItems",
    [OP_MAXITEMS] = "maxItems",    [OP_UNIQUE] = "uniqueItems",
    [OP_CONTAINS] = "contains",    [OP_PROPS] = "properties",
    [OP_REQUIRED] = "required",    [OP_MINPROPS] = "minProperties",
    [OP_MAXPROPS] = "maxProperties", [OP_DEPS] = "dependencies",
    [OP_PROPNAMES] = "propertyNames",
};

void sch_types_text(uint32_t mask, char *buf, size_t len)
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

/* ----- errors -------------------------------------------------------------------------------- */

void schema_set_error(schema_error_t *err, const char *ptr, size_t ptrlen, const char *fmt, ...)
{
    if (!err)
        return;
    if (ptrlen >= sizeof err->pointer)
        ptrlen = sizeof err->pointer - 1;
    memcpy(err->pointer, ptr, ptrlen);
    err->pointer[ptrlen] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}
