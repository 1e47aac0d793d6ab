/* The pure decisions of delivery (see policy.h). Nothing here does I/O or keeps state. */
#include "deliver/policy.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

outcome_kind classify_status(long s)
{
    if (s >= 200 && s < 300)
        return OUT_SUCCESS;
    if (s == 307 || s == 308)
        return OUT_REDIRECT;
    if (s == 408 || s == 423 || s == 429)
        return OUT_RETRY;
    if (s >= 500 && s < 600)
        return s == 501 ? OUT_DISCARD : OUT_RETRY;
    return OUT_DISCARD; /* 1xx as a final answer, other 3xx, 4xx, nonsense */
}

static bool env_double(const char *name, double lo, double hi, double *out, char *err, size_t errlen)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return true;
    char *end;
    double d = strtod(v, &end);
    if (*end || !(d >= lo && d <= hi)) {
        snprintf(err, errlen, "%s must be a number between %g and %g", name, lo, hi);
        return false;
    }
    *out = d;
    return true;
}

bool retry_policy_from_env(retry_policy *p, char *err, size_t errlen)
{
    *p = (retry_policy){.scale = 1.0, .max_attempts = 10, .window_ms = 4LL * 3600 * 1000};
    double scale = 1.0, attempts = 10, window = 4 * 3600;
    bool ok = env_double("MANIFOLD_RETRY_TIME_SCALE", 0, 1000, &scale, err, errlen) &&
              env_double("MANIFOLD_RETRY_MAX_ATTEMPTS", 1, 1000, &attempts, err, errlen) &&
              env_double("MANIFOLD_RETRY_WINDOW", 0, 30 * 86400, &window, err, errlen);
    if (!ok)
        return false;
    p->scale = scale;
    p->max_attempts = (int)attempts;
    p->window_ms = (int64_t)(window * 1000);
    return true;
}

int64_t retry_wait_ms(const retry_policy *p, int n, double u, int64_t retry_after_ms)
{
    if (n < 1)
        n = 1;
    double base = n > 8 ? 3600e3 : fmin(3600e3, 30e3 * (double)(1 << (n - 1)));
    double w = base * u;
    if (retry_after_ms >= 0)
        w = fmax(w, fmin((double)retry_after_ms, 3600e3));
    return (int64_t)llround(w * p->scale);
}

int64_t retry_next_due(const retry_policy *p, int attempts, int64_t received_ms, int64_t now, double u,
                       int64_t retry_after_ms)
{
    if (attempts >= p->max_attempts)
        return -1;
    int64_t due = now + retry_wait_ms(p, attempts, u, retry_after_ms);
    /* The window is not a wait: MANIFOLD_RETRY_TIME_SCALE leaves it alone (set
     * MANIFOLD_RETRY_WINDOW to test it). */
    if (due > received_ms + p->window_ms)
        return -1;
    return due;
}

int64_t parse_retry_after(const char *v, int64_t now_ms)
{
    if (!v)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!*v)
        return -1;
    if (isdigit((unsigned char)*v)) {
        char *end;
        unsigned long long s = strtoull(v, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (*end)
            return -1;
        return s > 86400ULL * 365 ? 86400LL * 365 * 1000 : (int64_t)s * 1000;
    }
    struct tm tm = {0};
    const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end)
        return -1;
    time_t t = timegm(&tm);
    int64_t d = (int64_t)t * 1000 - now_ms;
    return d < 0 ? 0 : d;
}

/* ---- CIDR lists ---- */

static bool parse_one(const char *s, cidr *c)
{
    char addr[64];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (!n || n >= sizeof addr)
        return false;
    memcpy(addr, s, n);
    addr[n] = '\0';
    memset(c, 0, sizeof *c);
    int max;
    if (inet_pton(AF_INET, addr, c->addr) == 1)
        c->family = 4, max = 32;
    else if (inet_pton(AF_INET6, addr, c->addr) == 1)
        c->family = 6, max = 128;
    else
        return false;
    c->bits = max;
    if (slash) {
        const char *b = slash + 1;
        if (!*b || strlen(b) > 3)
            return false;
        int bits = 0;
        for (; *b; b++) {
            if (!isdigit((unsigned char)*b))
                return false;
            bits = bits * 10 + (*b - '0');
        }
        if (bits > max)
            return false;
        c->bits = bits;
    }
    /* Clear host bits so that matching compares whole prefixes. */
    for (int i = 0; i < 16; i++) {
        int keep = c->bits - 8 * i;
        if (keep <= 0)
            c->addr[i] = 0;
        else if (keep < 8)
            c->addr[i] &= (unsigned char)(0xFF << (8 - keep));
    }
    return true;
}

int cidr_list_parse(const char *text, cidr_list *out, char *err, size_t errlen)
{
    *out = (cidr_list){0};
    if (!text)
        return 0;
    const char *p = text;
    size_t cap = 0;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != ',' && !isspace((unsigned char)*p))
            p++;
        char tok[80];
        size_t n = (size_t)(p - start);
        cidr c;
        bool ok = n < sizeof tok;
        if (ok) {
            memcpy(tok, start, n);
            tok[n] = '\0';
            ok = parse_one(tok, &c);
        }
        if (!ok) {
            snprintf(err, errlen, "not an address or CIDR block: '%.*s'", n > 60 ? 60 : (int)n, start);
            cidr_list_free(out);
            return -1;
        }
        if (out->n == cap) {
            cap = cap ? 2 * cap : 4;
            out->v = realloc(out->v, cap * sizeof *out->v);
        }
        out->v[out->n++] = c;
    }
    return 0;
}

void cidr_list_free(cidr_list *l)
{
    free(l->v);
    *l = (cidr_list){0};
}

static bool prefix_eq(const unsigned char *a, const unsigned char *net, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, (size_t)full))
        return false;
    if (!rest)
        return true;
    unsigned char m = (unsigned char)(0xFF << (8 - rest));
    return (a[full] & m) == net[full];
}

int cidr_list_longest(const cidr_list *l, int family, const unsigned char *addr)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (family == 6 && !memcmp(addr, mapped, 12))
        family = 4, addr += 12;
    int best = -1;
    for (size_t i = 0; l && i < l->n; i++)
        if (l->v[i].family == family && l->v[i].bits > best && prefix_eq(addr, l->v[i].addr, l->v[i].bits))
            best = l->v[i].bits;
    return best;
}

bool outbound_allowed(const cidr_list *allow, const cidr_list *deny, int family, const unsigned char *addr)
{
    int d = cidr_list_longest(deny, family, addr);
    if (d < 0)
        return true;
    return cidr_list_longest(allow, family, addr) > d;
}

/* ---- HMAC-SHA1 ---- */

typedef struct sha1 {
    uint32_t h[5];
    uint64_t len;
    unsigned char blk[64];
    size_t n;
} sha1;

static uint32_t rol(uint32_t x, int s) { return (x << s) | (x >> (32 - s)); }

static void sha1_block(sha1 *c, const unsigned char *b)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 | (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = c->h[0], bb = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20)
            f = (bb & cc) | (~bb & d), k = 0x5A827999;
        else if (i < 40)
            f = bb ^ cc ^ d, k = 0x6ED9EBA1;
        else if (i < 60)
            f = (bb & cc) | (bb & d) | (cc & d), k = 0x8F1BBCDC;
        else
            f = bb ^ cc ^ d, k = 0xCA62C1D6;
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d, d = cc, cc = rol(bb, 30), bb = a, a = t;
    }
    c->h[0] += a, c->h[1] += bb, c->h[2] += cc, c->h[3] += d, c->h[4] += e;
}

static void sha1_init(sha1 *c)
{
    *c = (sha1){.h = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0}};
}

static void sha1_update(sha1 *c, const void *data, size_t len)
{
    const unsigned char *p = data;
    c->len += len;
    while (len) {
        size_t take = 64 - c->n < len ? 64 - c->n : len;
        memcpy(c->blk + c->n, p, take);
        c->n += take, p += take, len -= take;
        if (c->n == 64) {
            sha1_block(c, c->blk);
            c->n = 0;
        }
    }
}

static void sha1_final(sha1 *c, unsigned char out[20])
{
    uint64_t bits = c->len * 8;
    unsigned char pad = 0x80, zero = 0;
    sha1_update(c, &pad, 1);
    while (c->n != 56)
        sha1_update(c, &zero, 1);
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha1_update(c, lenb, 8);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (unsigned char)(c->h[i] >> (24 - 8 * j));
}

void hmac_sha1_hex(const void *key, size_t keylen, const void *msg, size_t len, char out[41])
{
    unsigned char k[64] = {0}, ipad[64], opad[64], inner[20], mac[20];
    sha1 c;
    if (keylen > 64) {
        sha1_init(&c);
        sha1_update(&c, key, keylen);
        sha1_final(&c, k);
    } else if (keylen) {
        memcpy(k, key, keylen);
    }
    for (int i = 0; i < 64; i++)
        ipad[i] = k[i] ^ 0x36, opad[i] = k[i] ^ 0x5C;
    sha1_init(&c);
    sha1_update(&c, ipad, 64);
    sha1_update(&c, msg, len);
    sha1_final(&c, inner);
    sha1_init(&c);
    sha1_update(&c, opad, 64);
    sha1_update(&c, inner, 20);
    sha1_final(&c, mac);
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 20; i++)
        out[2 * i] = hx[mac[i] >> 4], out[2 * i + 1] = hx[mac[i] & 15];
    out[40] = '\0';
}
