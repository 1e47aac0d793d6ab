/* UTF-8 decoding, case mapping and the lazy string-transform iterator.
 *
 * FQL's string functions (lowercase, uppercase, snakecase, kebabcase,
 * titlecase) never build a new string: a value carries the list of transforms
 * and every consumer (=, contains, match, length) reads it through fql_iter,
 * which applies them one code point at a time. That is what lets evaluation run
 * without allocating. Case mapping is Unicode's simple 1:1 mapping (casemap.c);
 * the few context-dependent or one-to-many mappings of JavaScript's
 * toLowerCase (final sigma, U+0130) are not reproduced. */
#include "fql/fql_int.h"

uint32_t fql__utf8_decode(const unsigned char **pp, const unsigned char *end)
{
    const unsigned char *p = *pp;
    uint32_t c = p[0];
    if (c < 0x80) {
        *pp = p + 1;
        return c;
    }
    unsigned need;
    uint32_t min;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1, min = 0x80, c &= 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 2, min = 0x800, c &= 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 3, min = 0x10000, c &= 0x07;
    else
        goto raw;
    if ((size_t)(end - p) <= need)
        goto raw;
    for (unsigned i = 1; i <= need; i++) {
        if ((p[i] & 0xC0) != 0x80)
            goto raw;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        goto raw;
    *pp = p + need + 1;
    return c;
raw:
    *pp = p + 1;
    return FQL_RAW | p[0];
}

unsigned fql__utf8_len(uint32_t cp)
{
    if (cp < 0x80 || (cp & FQL_RAW))
        return 1;
    return cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

static uint32_t map(uint32_t cp, const struct fql_caserun *runs, unsigned n)
{
    unsigned lo = 0, hi = n; /* find the last run with runs[i].lo <= cp */
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (runs[mid].lo <= cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return cp;
    const struct fql_caserun *r = &runs[lo - 1];
    uint32_t d = cp - r->lo;
    if (d % r->stride == 0 && d / r->stride < r->n)
        return (uint32_t)((int32_t)cp + r->delta);
    return cp;
}

uint32_t fql__tolower(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    if (cp & FQL_RAW)
        return cp;
    return map(cp, fql_lower_runs, fql_lower_runs_len);
}

uint32_t fql__toupper(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= 'a' && cp <= 'z' ? cp - 32 : cp;
    if (cp & FQL_RAW)
        return cp;
    return map(cp, fql_upper_runs, fql_upper_runs_len);
}

static bool is_space(uint32_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

uint32_t fql__iter_next_slow(fql_iter *it)
{
    uint32_t c = fql__utf8_decode(&it->p, it->end);
    for (unsigned i = 0; i < it->nxf; i++) {
        switch (it->xf[i]) {
        case XF_LOWER: c = fql__tolower(c); break;
        case XF_UPPER: c = fql__toupper(c); break;
        case XF_SNAKE: if (c == ' ') c = '_'; break;
        case XF_KEBAB: if (c == ' ') c = '-'; break;
        case XF_TITLE: {
            bool ws = it->word_start[i];
            it->word_start[i] = is_space(c);
            if (ws)
                c = fql__toupper(c);
            break;
        }
        }
    }
    return c;
}
