#include "util/json.h"
#include "util/json_fast.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deeper documents are refused: recursion in later tree walks must stay bounded. */
#define JSON_MAX_DEPTH JSON_FAST_MAX_DEPTH /* the fast reader enforces it too */

static int depth_ok(const json_t *v, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c) if (!depth_ok(c, depth + 1)) return 0;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) if (!depth_ok(c, depth + 1)) return 0;
    }
    return 1;
}

json_t *json_parse_strict(const char *data, size_t len, char *err, size_t errlen)
{
    /* The fast reader handles what requests and events are made of; anything else, errors
     * included, is jansson's to read and to word. */
    json_t *fast = json_fast_parse(data, len);
    if (fast)
        return fast;
    json_error_t e;
    json_t *v = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
    if (!v) {
        /* jansson quotes the offending token ("near '...'"); leave it out so an error never
         * echoes request content (which may be a secret) into responses or logs. */
        char *near = strstr(e.text, " near '");
        if (near)
            *near = '\0';
        snprintf(err, errlen, "invalid JSON at line %d column %d: %s", e.line, e.column, e.text);
        return NULL;
    }
    if (!depth_ok(v, 0)) {
        json_decref(v);
        snprintf(err, errlen, "invalid JSON: nested deeper than %d levels", JSON_MAX_DEPTH);
        return NULL;
    }
    return v;
}

void json_write_real(buf *out, double d)
{
    char tmp[40];
    if (!isfinite(d)) { /* jansson never produces these; be safe anyway */
        buf_puts(out, "null");
        return;
    }
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    /* Keep it a real on the way back in: 2.0 prints as "2", which would read as an int. */
    if (!strpbrk(tmp, ".eEn"))
        memcpy(tmp + n, ".0", 3), n += 2;
    buf_append(out, tmp, (size_t)n);
}

void json_write_string(buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    buf_reserve(out, len + 2);
    buf_putc(out, '"');
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_append(out, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': buf_puts(out, "\\\""); break;
        case '\\': buf_puts(out, "\\\\"); break;
        case '\n': buf_puts(out, "\\n"); break;
        case '\r': buf_puts(out, "\\r"); break;
        case '\t': buf_puts(out, "\\t"); break;
        case '\b': buf_puts(out, "\\b"); break;
        case '\f': buf_puts(out, "\\f"); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(out, u, 6);
        }
        }
    }
    buf_append(out, s + run, len - run);
    buf_putc(out, '"');
}

static int cmp_key(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

const char **json_sorted_keys(const json_t *o, size_t *n)
{
    const char **keys = malloc((json_object_size(o) + 1) * sizeof *keys);
    if (!keys)
        abort();
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v) keys[k++] = key;
    qsort(keys, k, sizeof *keys, cmp_key);
    *n = k;
    return keys;
}

static void write_value(buf *out, const json_t *v, bool sorted);

/* An object's members in byte order of their keys. */
static void write_object_sorted(buf *out, const json_t *v)
{
    size_t n;
    const char **keys = json_sorted_keys(v, &n);
    buf_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(out, ',');
        json_write_string(out, keys[i], strlen(keys[i]));
        buf_putc(out, ':');
        write_value(out, json_object_get(v, keys[i]), true);
    }
    buf_putc(out, '}');
    free(keys);
}

static void write_value(buf *out, const json_t *v, bool sorted)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (sorted) {
            write_object_sorted(out, v);
            break;
        }
        buf_putc(out, '{');
        const char *k;
        json_t *c;
        int first = 1;
        json_object_foreach((json_t *)v, k, c) {
            if (!first)
                buf_putc(out, ',');
            first = 0;
            json_write_string(out, k, strlen(k));
            buf_putc(out, ':');
            write_value(out, c, sorted);
        }
        buf_putc(out, '}');
        break;
    }
    case JSON_ARRAY: {
        buf_putc(out, '[');
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) {
            if (i)
                buf_putc(out, ',');
            write_value(out, c, sorted);
        }
        buf_putc(out, ']');
        break;
    }
    case JSON_STRING:
        json_write_string(out, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER: { /* digits by hand: printf's format parsing costs more than the number */
        json_int_t n = json_integer_value(v);
        unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
        char tmp[24], *e = tmp + sizeof tmp, *p = e;
        do
            *--p = (char)('0' + u % 10);
        while (u /= 10);
        if (n < 0)
            *--p = '-';
        buf_append(out, p, (size_t)(e - p));
        break;
    }
    case JSON_REAL:
        json_write_real(out, json_real_value(v));
        break;
    case JSON_TRUE: buf_puts(out, "true"); break;
    case JSON_FALSE: buf_puts(out, "false"); break;
    case JSON_NULL: buf_puts(out, "null"); break;
    }
}

void json_write(buf *out, const json_t *v) { write_value(out, v, false); }

void json_write_sorted(buf *out, const json_t *v) { write_value(out, v, true); }

char *json_to_string(const json_t *v)
{
    buf b = {0};
    json_write(&b, v);
    return buf_steal(&b);
}
