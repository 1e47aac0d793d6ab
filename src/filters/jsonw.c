/* A small JSON writer for filter preview output and sampling keys.
 *
 * Why not json_dumps: the preview contract wants sorted keys and a
 * tab-indented layout (spec/config-api.md §10.6), and jansson prints reals
 * with 17 significant digits (0.1 → 0.10000000000000001). Here reals use the
 * shortest text that reads back to the same double, in JavaScript's layout
 * (42.0 → 42, 1e21 → 1e+21), and keys are sorted bytewise, which for UTF-8 is
 * code point order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/filters_int.h"

#define MAX_WRITE_DEPTH 4096 /* jansson's parser stops at 2048 */

void df__put(df_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void df__putc(df_buf *b, char c) { df__put(b, &c, 1); }

void df__buf_free(df_buf *b)
{
    free(b->p);
    *b = (df_buf){0};
}

static void put_string(df_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
    df__putc(b, '"');
    while (p < end) {
        unsigned char c = *p;
        const char *esc = NULL;
        char u[7];
        size_t skip = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\t')
            esc = "\\t";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\b')
            esc = "\\b";
        else if (c == '\f')
            esc = "\\f";
        else if (c < 0x20) {
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            u[6] = '\0';
            esc = u;
        } else if (c == 0xE2 && end - p >= 3 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) {
            /* U+2028/2029 are legal JSON but break JavaScript string literals. */
            esc = p[2] == 0xA8 ? "\\u2028" : "\\u2029";
            skip = 3;
        }
        if (esc) {
            df__put(b, (const char *)run, (size_t)(p - run));
            df__put(b, esc, strlen(esc));
            p += skip;
            run = p;
        } else {
            p++;
        }
    }
    df__put(b, (const char *)run, (size_t)(p - run));
    df__putc(b, '"');
}

/* Shortest round-trip decimal, laid out like JavaScript's Number#toString. */
static void put_real(df_buf *b, double d)
{
    if (!isfinite(d)) {
        df__put(b, "null", 4);
        return;
    }
    if (d == 0) {
        df__put(b, signbit(d) ? "-0" : "0", signbit(d) ? 2 : 1);
        return;
    }
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, d);
        if (strtod(e, NULL) == d)
            break;
    }
    /* e = "-d.ddde+XX": collect the digits and the decimal exponent. */
    char digits[24] = {0}, out[64];
    size_t nd = 0, o = 0;
    const char *q = e;
    if (*q == '-')
        out[o++] = *q++;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9')
            digits[nd++] = *q;
    int x = atoi(q + 1);
    if (x >= -6 && x < 21) {
        if (x < 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int z = 0; z < -x - 1; z++)
                out[o++] = '0';
            memcpy(out + o, digits, nd);
            o += nd;
        } else if (nd <= (size_t)x + 1) {
            memcpy(out + o, digits, nd);
            o += nd;
            for (size_t z = nd; z < (size_t)x + 1; z++)
                out[o++] = '0';
        } else {
            memcpy(out + o, digits, (size_t)x + 1);
            o += (size_t)x + 1;
            out[o++] = '.';
            memcpy(out + o, digits + x + 1, nd - (size_t)x - 1);
            o += nd - (size_t)x - 1;
        }
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, nd - 1);
            o += nd - 1;
        }
        o += (size_t)snprintf(out + o, sizeof out - o, "e%c%d", x < 0 ? '-' : '+', abs(x));
    }
    df__put(b, out, o);
}

typedef struct kv {
    const char *key;
    size_t len;
    const json_t *val;
} kv;

static int kv_cmp(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void newline(df_buf *b, int indent)
{
    df__putc(b, '\n');
    for (int i = 0; i < indent; i++)
        df__putc(b, '\t');
}

static bool write_value(df_buf *b, const json_t *v, int indent, int depth)
{
    if (depth > MAX_WRITE_DEPTH)
        return false;
    bool pretty = indent >= 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        if (n == 0) {
            df__put(b, "{}", 2);
            return true;
        }
        kv *items = malloc(n * sizeof *items);
        if (!items) {
            b->oom = true;
            return true;
        }
        const char *key;
        size_t klen;
        json_t *val;
        json_object_keylen_foreach((json_t *)v, key, klen, val) {
            items[i++] = (kv){key, klen, val};
        }
        qsort(items, n, sizeof *items, kv_cmp);
        df__putc(b, '{');
        bool ok = true;
        for (i = 0; i < n && ok; i++) {
            if (i)
                df__putc(b, ',');
            if (pretty)
                newline(b, indent + 1);
            put_string(b, items[i].key, items[i].len);
            df__put(b, pretty ? ": " : ":", pretty ? 2 : 1);
            ok = write_value(b, items[i].val, pretty ? indent + 1 : -1, depth + 1);
        }
        free(items);
        if (pretty)
            newline(b, indent);
        df__putc(b, '}');
        return ok;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (n == 0) {
            df__put(b, "[]", 2);
            return true;
        }
        df__putc(b, '[');
        for (size_t i = 0; i < n; i++) {
            if (i)
                df__putc(b, ',');
            if (pretty)
                newline(b, indent + 1);
            if (!write_value(b, json_array_get(v, i), pretty ? indent + 1 : -1, depth + 1))
                return false;
        }
        if (pretty)
            newline(b, indent);
        df__putc(b, ']');
        return true;
    }
    case JSON_STRING:
        put_string(b, json_string_value(v), json_string_length(v));
        return true;
    case JSON_INTEGER: {
        char num[32];
        int k = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        df__put(b, num, (size_t)k);
        return true;
    }
    case JSON_REAL:
        put_real(b, json_real_value(v));
        return true;
    case JSON_TRUE:
        df__put(b, "true", 4);
        return true;
    case JSON_FALSE:
        df__put(b, "false", 5);
        return true;
    default:
        df__put(b, "null", 4);
        return true;
    }
}

bool df__json_write(df_buf *b, const json_t *v, int indent)
{
    if (!v) {
        df__put(b, "null", 4);
        return true;
    }
    return write_value(b, v, indent, 0);
}
