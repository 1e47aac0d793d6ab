/*
 * uri.c — RFC 3986 reference resolution and RFC 6901 JSON pointers, enough for $id and
 * $ref. URIs are treated as opaque strings once resolved (no case or percent
 * normalisation): schema authors write identifiers the way they reference them.
 */
#include <stdlib.h>
#include <string.h>

#include "schema/internal.h"
#include "util/util.h"

typedef struct part {
    const char *s;
    size_t n;
    bool has;
} part_t;

typedef struct uri {
    part_t scheme, auth, path, query, frag;
} uri_t;

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static void uri_parse(const char *s, uri_t *u)
{
    memset(u, 0, sizeof *u);
    if (is_alpha(s[0])) {
        size_t i = 1;
        while (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')
            i++;
        if (s[i] == ':') {
            u->scheme = (part_t){s, i, true};
            s += i + 1;
        }
    }
    if (s[0] == '/' && s[1] == '/') {
        s += 2;
        size_t n = strcspn(s, "/?#");
        u->auth = (part_t){s, n, true};
        s += n;
    }
    size_t n = strcspn(s, "?#");
    u->path = (part_t){s, n, true};
    s += n;
    if (*s == '?') {
        s++;
        n = strcspn(s, "#");
        u->query = (part_t){s, n, true};
        s += n;
    }
    if (*s == '#') {
        s++;
        u->frag = (part_t){s, strlen(s), true};
    }
}

/* RFC 3986 §5.2.4, appending the result to `out`. */
static void remove_dots(sbuf_t *out, const char *in, size_t n)
{
    size_t start = out->len;
    size_t i = 0;
    while (i < n) {
        const char *p = in + i;
        size_t left = n - i;
        if (left >= 3 && memcmp(p, "../", 3) == 0) {
            i += 3;
        } else if (left >= 2 && memcmp(p, "./", 2) == 0) {
            i += 2;
        } else if ((left >= 3 && memcmp(p, "/./", 3) == 0)) {
            i += 2; /* "/./x" -> "/x" */
        } else if (left == 2 && memcmp(p, "/.", 2) == 0) {
            sch_sb_putc(out, '/');
            i += 2;
        } else if ((left >= 4 && memcmp(p, "/../", 4) == 0) || (left == 3 && memcmp(p, "/..", 3) == 0)) {
            /* drop the last output segment */
            size_t k = out->len;
            while (k > start && out->s[k - 1] != '/')
                k--;
            if (k > start)
                k--;
            out->len = k;
            if (out->s)
                out->s[k] = '\0';
            if (left == 3) {
                sch_sb_putc(out, '/');
                i += 3;
            } else {
                i += 3; /* leave "/" of "/../" as the start of the next segment */
            }
        } else if ((left == 1 && p[0] == '.') || (left == 2 && memcmp(p, "..", 2) == 0)) {
            i = n;
        } else {
            size_t j = (p[0] == '/') ? 1 : 0;
            while (j < left && p[j] != '/')
                j++;
            sch_sb_putn(out, p, j);
            i += j;
        }
    }
}

static void put_part(sbuf_t *b, const char *pre, part_t p)
{
    if (p.has) {
        sch_sb_puts(b, pre);
        sch_sb_putn(b, p.s, p.n);
    }
}

char *sch_uri_resolve(const char *base, const char *ref)
{
    uri_t b, r;
    uri_parse(base ? base : "", &b);
    uri_parse(ref, &r);
    sbuf_t out = {0};
    sch_sb_putn(&out, "", 0);
    if (r.scheme.has) {
        put_part(&out, "", r.scheme);
        sch_sb_putc(&out, ':');
        put_part(&out, "//", r.auth);
        remove_dots(&out, r.path.s, r.path.n);
        put_part(&out, "?", r.query);
    } else {
        if (b.scheme.has) {
            put_part(&out, "", b.scheme);
            sch_sb_putc(&out, ':');
        }
        if (r.auth.has) {
            put_part(&out, "//", r.auth);
            remove_dots(&out, r.path.s, r.path.n);
            put_part(&out, "?", r.query);
        } else {
            put_part(&out, "//", b.auth);
            if (r.path.n == 0) {
                sch_sb_putn(&out, b.path.s, b.path.n);
                put_part(&out, "?", r.query.has ? r.query : b.query);
            } else {
                if (r.path.s[0] == '/') {
                    remove_dots(&out, r.path.s, r.path.n);
                } else {
                    /* merge (§5.2.3) */
                    sbuf_t m = {0};
                    if (b.auth.has && b.path.n == 0) {
                        sch_sb_putc(&m, '/');
                    } else {
                        size_t k = b.path.n;
                        while (k > 0 && b.path.s[k - 1] != '/')
                            k--;
                        sch_sb_putn(&m, b.path.s, k);
                    }
                    sch_sb_putn(&m, r.path.s, r.path.n);
                    if (m.failed)
                        out.failed = true;
                    else if (m.s)
                        remove_dots(&out, m.s, m.len);
                    free(m.s);
                }
                put_part(&out, "?", r.query);
            }
        }
    }
    put_part(&out, "#", r.frag);
    if (out.failed) {
        free(out.s);
        return NULL;
    }
    return out.s;
}

size_t sch_uri_doc_len(const char *uri) { return strcspn(uri, "#"); }

char *sch_uri_unescape(const char *s, size_t n, size_t *outlen)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < n && (h = hex_value(s[i + 1])) >= 0 &&
            (l = hex_value(s[i + 2])) >= 0) {
            out[k++] = (char)(h * 16 + l);
            i += 2;
        } else {
            out[k++] = s[i];
        }
    }
    out[k] = '\0';
    *outlen = k;
    return out;
}

json_t *sch_json_pointer_get(json_t *root, const char *ptr, size_t len)
{
    if (len == 0)
        return root;
    if (ptr[0] != '/')
        return NULL;
    char stack[256];
    char *seg = len < sizeof stack ? stack : malloc(len + 1);
    if (!seg)
        return NULL;
    json_t *cur = root;
    size_t i = 1;
    for (;;) {
        size_t k = 0;
        while (i < len && ptr[i] != '/') {
            if (ptr[i] == '~' && i + 1 < len && (ptr[i + 1] == '0' || ptr[i + 1] == '1')) {
                seg[k++] = ptr[i + 1] == '0' ? '~' : '/';
                i += 2;
            } else {
                seg[k++] = ptr[i++];
            }
        }
        if (json_is_object(cur)) {
            cur = json_object_getn(cur, seg, k);
        } else if (json_is_array(cur)) {
            size_t idx = 0;
            bool ok = k > 0 && !(k > 1 && seg[0] == '0');
            for (size_t j = 0; ok && j < k; j++) {
                if (!is_digit(seg[j]) || idx > (SIZE_MAX - 9) / 10)
                    ok = false;
                else
                    idx = idx * 10 + (size_t)(seg[j] - '0');
            }
            cur = ok ? json_array_get(cur, idx) : NULL;
        } else {
            cur = NULL;
        }
        if (!cur || i >= len)
            break;
        i++; /* skip '/' */
    }
    if (seg != stack)
        free(seg);
    return cur;
}
