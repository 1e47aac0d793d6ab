/* MD5 (RFC 1321), written from the RFC's description. Used only to turn a
 * sampled value into a stable pseudo-random number (spec/fql.md §6.2, which
 * follows Segment's sampler) — not for anything security-related. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "filters/filters_int.h"

/* K[i] = floor(2^32 * |sin(i + 1)|), computed once rather than typed in: the
 * RFC defines the table this way and doubles reproduce it exactly. */
static uint32_t K[64];
static pthread_once_t k_once = PTHREAD_ONCE_INIT;

static void init_k(void)
{
    for (int i = 0; i < 64; i++)
        K[i] = (uint32_t)(fabs(sin((double)i + 1)) * 4294967296.0);
}

static const uint8_t S[64] = {
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
    5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
};

static uint32_t rotl(uint32_t x, unsigned s) { return (x << s) | (x >> (32 - s)); }

static void compress(uint32_t h[4], const unsigned char blk[64])
{
    uint32_t m[16];
    for (int i = 0; i < 16; i++)
        m[i] = (uint32_t)blk[4 * i] | (uint32_t)blk[4 * i + 1] << 8 |
               (uint32_t)blk[4 * i + 2] << 16 | (uint32_t)blk[4 * i + 3] << 24;
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        switch (i / 16) {
        case 0: f = (b & c) | (~b & d); g = i; break;
        case 1: f = (d & b) | (~d & c); g = (5 * i + 1) % 16; break;
        case 2: f = b ^ c ^ d; g = (3 * i + 5) % 16; break;
        default: f = c ^ (b | ~d); g = (7 * i) % 16; break;
        }
        f += a + K[i] + m[g];
        a = d;
        d = c;
        c = b;
        b += rotl(f, S[i]);
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
}

void df__md5_init(df_md5 *m)
{
    pthread_once(&k_once, init_k);
    m->h[0] = 0x67452301;
    m->h[1] = 0xefcdab89;
    m->h[2] = 0x98badcfe;
    m->h[3] = 0x10325476;
    m->len = 0;
    m->used = 0;
}

void df__md5_update(df_md5 *m, const void *data, size_t n)
{
    const unsigned char *p = data;
    m->len += n;
    while (n) {
        size_t k = 64 - m->used < n ? 64 - m->used : n;
        memcpy(m->block + m->used, p, k);
        m->used += k;
        p += k;
        n -= k;
        if (m->used == 64) {
            compress(m->h, m->block);
            m->used = 0;
        }
    }
}

void df__md5_final(df_md5 *m, unsigned char out[16])
{
    uint64_t bits = m->len * 8;
    static const unsigned char pad[64] = {0x80};
    size_t padlen = m->used < 56 ? 56 - m->used : 120 - m->used;
    df__md5_update(m, pad, padlen);
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(bits >> (8 * i));
    df__md5_update(m, len, 8);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (unsigned char)(m->h[i] >> (8 * j));
}
