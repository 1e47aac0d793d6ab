/* json_fast — the fast path of json_parse_strict: one pass over a buffer that builds the
 * same jansson values json_loadb would, or gives up.
 *
 * Why: jansson's own reader goes through a character stream (a call and a UTF-8 state
 * step per byte) and a string buffer per token; on a 1.2 KB event that is ~20 µs, most of
 * the intake's CPU. Reading straight from the buffer and handing jansson finished keys and
 * strings (the *_nocheck setters: this file has already checked the UTF-8) costs a
 * fraction of that.
 *
 * The contract is one-sided: when json_fast_parse returns a value, json_loadb(JSON_DECODE_ANY
 * | JSON_REJECT_DUPLICATES) would have returned an equal one and json_parse_strict's depth
 * rule holds. On anything unusual — any error, but also what jansson accepts and this file
 * does not bother with (a number that over- or underflows, \u0000, leading zeros …) — it
 * returns NULL and the caller asks jansson, whose answer (and error text) is authoritative.
 * fuzz/fuzz_json_fast.c checks the contract differentially against jansson. */
#include "util/json_fast.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
    const unsigned char *p, *end;
    char *scratch; /* unescaped strings */
    size_t cap;
} reader;

static void skip_ws(reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

static int hex4(const unsigned char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return 0;
    }
    *out = v;
    return 1;
}

static int scratch_room(reader *r, size_t need)
{
    if (need <= r->cap)
        return 1;
    size_t cap = r->cap ? r->cap : 256;
    while (cap < need)
        cap *= 2;
    char *s = realloc(r->scratch, cap);
    if (!s)
        return 0;
    r->scratch = s, r->cap = cap;
    return 1;
}

/* Reads a string (r->p just past the opening quote). *s and *n point into the input when
 * it has no escapes, else into r->scratch. */
static int read_string(reader *r, const char **s, size_t *n)
{
    const unsigned char *start = r->p, *p = r->p;
    for (;;) { /* the common case: plain text up to the closing quote */
        if (p >= r->end)
            return 0;
        unsigned c = *p;
        if (c == '"') {
            *s = (const char *)start, *n = (size_t)(p - start);
            r->p = p + 1;
            return 1;
        }
        if (c == '\\')
            break;
        if (c < 0x20)
            return 0;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t k = utf8_seq(p, (size_t)(r->end - p));
        if (!k)
            return 0;
        p += k;
    }
    /* Escapes: copy into scratch (an escape never grows the text: \uXXXX is 6 bytes for at
     * most 3, a surrogate pair 12 for 4). */
    size_t len = 0;
    if (!scratch_room(r, (size_t)(r->end - start) + 1))
        return 0;
    memcpy(r->scratch, start, (size_t)(p - start));
    len = (size_t)(p - start);
    while (p < r->end) {
        unsigned c = *p;
        if (c == '"') {
            *s = r->scratch, *n = len;
            r->p = p + 1;
            return 1;
        }
        if (c < 0x20)
            return 0;
        if (c >= 0x80) {
            size_t k = utf8_seq(p, (size_t)(r->end - p));
            if (!k)
                return 0;
            memcpy(r->scratch + len, p, k);
            len += k, p += k;
            continue;
        }
        if (c != '\\') {
            r->scratch[len++] = (char)c, p++;
            continue;
        }
        if (r->end - p < 2)
            return 0;
        char e = (char)p[1];
        p += 2;
        switch (e) {
        case '"': r->scratch[len++] = '"'; continue;
        case '\\': r->scratch[len++] = '\\'; continue;
        case '/': r->scratch[len++] = '/'; continue;
        case 'b': r->scratch[len++] = '\b'; continue;
        case 'f': r->scratch[len++] = '\f'; continue;
        case 'n': r->scratch[len++] = '\n'; continue;
        case 'r': r->scratch[len++] = '\r'; continue;
        case 't': r->scratch[len++] = '\t'; continue;
        case 'u': break;
        default: return 0;
        }
        uint32_t cp;
        if (r->end - p < 4 || !hex4(p, &cp))
            return 0;
        p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return 0; /* a lone low surrogate */
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (r->end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                return 0;
            p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0)
            return 0; /* \u0000: jansson refuses it without JSON_ALLOW_NUL; let it say so */
        char *o = r->scratch + len;
        if (cp < 0x80) {
            o[0] = (char)cp, len += 1;
        } else if (cp < 0x800) {
            o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3F)), len += 2;
        } else if (cp < 0x10000) {
            o[0] = (char)(0xE0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            o[2] = (char)(0x80 | (cp & 0x3F)), len += 3;
        } else {
            o[0] = (char)(0xF0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), o[3] = (char)(0x80 | (cp & 0x3F)), len += 4;
        }
    }
    return 0;
}

/* A number as jansson reads it: an integer unless it has a fraction or an exponent. */
static json_t *read_number(reader *r)
{
    const unsigned char *s = r->p, *p = r->p;
    if (p < r->end && *p == '-')
        p++;
    if (p >= r->end || *p < '0' || *p > '9')
        return NULL;
    if (*p == '0' && p + 1 < r->end && p[1] >= '0' && p[1] <= '9')
        return NULL; /* a leading zero: an error, let jansson word it */
    while (p < r->end && *p >= '0' && *p <= '9')
        p++;
    int real = 0;
    if (p < r->end && *p == '.') {
        real = 1, p++;
        if (p >= r->end || *p < '0' || *p > '9')
            return NULL;
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        real = 1, p++;
        if (p < r->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= r->end || *p < '0' || *p > '9')
            return NULL;
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    size_t n = (size_t)(p - s);
    char tmp[64];
    if (n >= sizeof tmp)
        return NULL; /* long numbers are rare: jansson */
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    r->p = p;
    errno = 0;
    if (!real) {
        long long v = strtoll(tmp, NULL, 10);
        if (errno == ERANGE)
            return NULL;
        return json_integer(v);
    }
    /* strtod is locale-bound; manifold never calls setlocale, so the decimal point is '.'. */
    double d = strtod(tmp, NULL);
    if (errno == ERANGE || !isfinite(d))
        return NULL; /* overflow is an error, underflow jansson's to round: let it */
    return json_real(d);
}

static json_t *read_value(reader *r, int depth);

/* Just after '{' or '[': true (and past it) when the container closes at once. */
static bool closes_at_once(reader *r, char close)
{
    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return true;
    }
    return false;
}

/* After a member or element: 1 another follows (past the ','), 0 the container closed
 * (past close), -1 anything else. */
static int after_member(reader *r, char close)
{
    skip_ws(r);
    if (r->p >= r->end)
        return -1;
    if (*r->p == ',') {
        r->p++;
        skip_ws(r);
        return 1;
    }
    if (*r->p == close) {
        r->p++;
        return 0;
    }
    return -1;
}

static json_t *read_object(reader *r, int depth)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (closes_at_once(r, '}'))
        return o;
    for (;;) {
        if (r->p >= r->end || *r->p != '"')
            goto fail;
        r->p++;
        const char *k;
        size_t kn;
        if (!read_string(r, &k, &kn))
            goto fail;
        /* jansson keeps keys NUL-terminated; a key from scratch is overwritten by the value,
         * so copy it out when it came from there. */
        char kbuf[128], *key = (char *)k;
        char *heap = NULL;
        if (k == r->scratch) {
            if (kn < sizeof kbuf) {
                key = kbuf;
            } else if (!(key = heap = malloc(kn + 1))) {
                goto fail;
            }
            memcpy(key, k, kn);
            key[kn] = '\0';
        }
        if (json_object_getn(o, key, kn)) { /* a duplicate: jansson's error */
            free(heap);
            goto fail;
        }
        skip_ws(r);
        if (r->p >= r->end || *r->p != ':') {
            free(heap);
            goto fail;
        }
        r->p++;
        json_t *v = read_value(r, depth + 1);
        int rc = v ? json_object_setn_new_nocheck(o, key, kn, v) : -1;
        free(heap);
        if (rc)
            goto fail;
        int next = after_member(r, '}');
        if (next == 0)
            return o;
        if (next < 0)
            goto fail;
    }
fail:
    json_decref(o);
    return NULL;
}

static json_t *read_array(reader *r, int depth)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    if (closes_at_once(r, ']'))
        return a;
    for (;;) {
        json_t *v = read_value(r, depth + 1);
        if (!v || json_array_append_new(a, v))
            goto fail;
        int next = after_member(r, ']');
        if (next == 0)
            return a;
        if (next < 0)
            goto fail;
    }
fail:
    json_decref(a);
    return NULL;
}

static int literal(reader *r, const char *word, size_t n)
{
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n))
        return 0;
    r->p += n;
    return 1;
}

static json_t *read_value(reader *r, int depth)
{
    if (depth > JSON_FAST_MAX_DEPTH)
        return NULL;
    skip_ws(r);
    if (r->p >= r->end)
        return NULL;
    switch (*r->p) {
    case '{': r->p++; return read_object(r, depth);
    case '[': r->p++; return read_array(r, depth);
    case '"': {
        r->p++;
        const char *s;
        size_t n;
        return read_string(r, &s, &n) ? json_stringn_nocheck(s, n) : NULL;
    }
    case 't': return literal(r, "true", 4) ? json_true() : NULL;
    case 'f': return literal(r, "false", 5) ? json_false() : NULL;
    case 'n': return literal(r, "null", 4) ? json_null() : NULL;
    default: return read_number(r);
    }
}

json_t *json_fast_parse(const char *data, size_t len)
{
    reader r = {.p = (const unsigned char *)data, .end = (const unsigned char *)data + len};
    json_t *v = read_value(&r, 0);
    if (v) {
        skip_ws(&r);
        if (r.p != r.end) { /* trailing bytes: jansson's "end of file expected" */
            json_decref(v);
            v = NULL;
        }
    }
    free(r.scratch);
    return v;
}
