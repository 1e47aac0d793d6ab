/*
 * format.c — the "format" vocabulary, asserted only when the caller opts in (in
 * draft-04..07 "format" is an annotation by default). Each checker is a small
 * hand-written parser of the RFC grammar; none allocates.
 *
 * Internationalised host names are checked structurally (labels, lengths, Punycode,
 * leading marks and the contextual rules that need no Unicode tables); the full IDNA
 * 2008 property and Bidi tables are not implemented.
 */
#include <stdint.h>
#include <string.h>

#include "schema/internal.h"
#include "util/util.h"

static bool dig(char c) { return c >= '0' && c <= '9'; }
static bool alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool hexd(char c) { return hex_value(c) >= 0; }

/* n ASCII digits at s as a number, or -1 */
static int num_n(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!dig(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* ----- dates and times (RFC 3339 §5.6) ------------------------------------------------------ */

static bool full_date(const char *s, size_t n)
{
    if (n != 10 || s[4] != '-' || s[7] != '-')
        return false;
    int y = num_n(s, 4), m = num_n(s + 5, 2), d = num_n(s + 8, 2);
    if (y < 0 || m < 1 || m > 12 || d < 1)
        return false;
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= dim[m - 1] + (m == 2 && leap);
}

static bool full_time(const char *s, size_t n)
{
    if (n < 9 || s[2] != ':' || s[5] != ':')
        return false;
    int h = num_n(s, 2), mi = num_n(s + 3, 2), se = num_n(s + 6, 2);
    if (h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60)
        return false;
    size_t i = 8;
    if (s[i] == '.') {
        size_t j = ++i;
        while (i < n && dig(s[i]))
            i++;
        if (i == j)
            return false;
    }
    int off = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        if (n - i != 6 || s[i + 3] != ':')
            return false;
        int oh = num_n(s + i + 1, 2), om = num_n(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return false;
        off = (s[i] == '+' ? 1 : -1) * (oh * 60 + om);
        i += 6;
    } else {
        return false;
    }
    if (i != n)
        return false;
    /* a leap second exists only at 23:59:60 UTC */
    if (se == 60 && ((h * 60 + mi - off) % 1440 + 1440) % 1440 != 23 * 60 + 59)
        return false;
    return true;
}

static bool date_time(const char *s, size_t n)
{
    return n > 11 && (s[10] == 'T' || s[10] == 't') && full_date(s, 10) &&
           full_time(s + 11, n - 11);
}

/* ----- IP addresses ---------------------------------------------------------------------------- */

static bool ipv4(const char *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
        size_t j = i;
        int v = 0;
        while (i < n && dig(s[i]) && i - j < 3)
            v = v * 10 + (s[i++] - '0');
        if (i == j || v > 255 || (s[j] == '0' && i - j > 1))
            return false;
    }
    return i == n;
}

static bool ipv6(const char *s, size_t n)
{
    int groups = 0;
    bool gap = false;
    size_t i = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        gap = true;
        i = 2;
        if (i == n)
            return true;
    } else if (n && s[0] == ':') {
        return false;
    }
    while (i < n) {
        size_t j = i;
        while (i < n && hexd(s[i]) && i - j < 5)
            i++;
        if (i < n && s[i] == '.') { /* trailing dotted IPv4 */
            if (!ipv4(s + j, n - j) || groups > 6)
                return false;
            groups += 2;
            i = n;
            break;
        }
        if (i == j || i - j > 4)
            return false;
        groups++;
        if (i == n)
            break;
        if (s[i] != ':')
            return false;
        i++;
        if (i < n && s[i] == ':') {
            if (gap)
                return false;
            gap = true;
            i++;
            if (i == n)
                break;
        } else if (i == n) {
            return false; /* trailing single colon */
        }
    }
    return gap ? groups <= 7 : groups == 8;
}

/* ----- host names ----------------------------------------------------------------------------- */

/* Decodes one UTF-8 sequence (input is valid UTF-8: jansson checks it). */
static uint32_t utf8_next(const char *s, size_t n, size_t *i)
{
    unsigned char c = (unsigned char)s[*i];
    int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (int k = 1; k < len && *i + (size_t)k < n; k++)
        cp = cp << 6 | ((unsigned char)s[*i + (size_t)k] & 0x3F);
    *i += (size_t)len;
    return cp;
}

/* RFC 3492 Punycode decoding of an A-label's tail into code points. */
static int puny_decode(const char *s, size_t n, uint32_t *out, size_t max)
{
    size_t b = 0, len = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '-')
            b = i;
    if (b > 0 || (n && s[0] == '-')) {
        for (size_t i = 0; i < b; i++) {
            if ((unsigned char)s[i] >= 0x80 || len >= max)
                return -1;
            out[len++] = (unsigned char)s[i];
        }
        b++;
    }
    uint32_t nn = 128, bias = 72;
    uint64_t i = 0;
    for (size_t in = b; in < n;) {
        uint64_t oldi = i, w = 1;
        for (uint32_t k = 36;; k += 36) {
            if (in >= n)
                return -1;
            char c = s[in++];
            uint32_t d = dig(c) ? (uint32_t)(c - '0' + 26)
                         : (c >= 'a' && c <= 'z') ? (uint32_t)(c - 'a')
                         : (c >= 'A' && c <= 'Z') ? (uint32_t)(c - 'A')
                                                  : 99;
            if (d >= 36)
                return -1;
            i += d * w;
            if (i > 0x10FFFF * 64ULL)
                return -1;
            uint32_t t = k <= bias ? 1 : k >= bias + 26 ? 26 : k - bias;
            if (d < t)
                break;
            w *= 36 - t;
        }
        /* adapt */
        uint64_t delta = (i - oldi) / (oldi == 0 ? 700 : 2);
        delta += delta / (len + 1);
        uint32_t k = 0;
        while (delta > 455) {
            delta /= 35;
            k += 36;
        }
        bias = (uint32_t)(k + (36 * delta) / (delta + 38));
        nn += (uint32_t)(i / (len + 1));
        i %= (len + 1);
        if (nn > 0x10FFFF || len >= max)
            return -1;
        memmove(out + i + 1, out + i, (len - i) * sizeof *out);
        out[i++] = nn;
        len++;
    }
    return (int)len;
}

static bool in(uint32_t c, uint32_t lo, uint32_t hi) { return c >= lo && c <= hi; }

static bool is_mark(uint32_t c)
{
    /* the combining-mark blocks that matter at a label's start */
    return in(c, 0x0300, 0x036F) || in(c, 0x0483, 0x0489) || in(c, 0x0591, 0x05BD) ||
           in(c, 0x0610, 0x061A) || in(c, 0x064B, 0x065F) || in(c, 0x0900, 0x0903) ||
           in(c, 0x093A, 0x094F) || in(c, 0x1AB0, 0x1AFF) || in(c, 0x1DC0, 0x1DFF) ||
           in(c, 0x20D0, 0x20FF) || in(c, 0xFE20, 0xFE2F);
}

static bool is_virama(uint32_t c)
{
    static const uint32_t v[] = {0x094D, 0x09CD, 0x0A4D, 0x0ACD, 0x0B4D, 0x0BCD, 0x0C4D,
                                 0x0CCD, 0x0D3B, 0x0D3C, 0x0D4D, 0x0DCA, 0x0E3A, 0x0EBA,
                                 0x0F84, 0x1039, 0x103A, 0x1714, 0x1734, 0x17D2, 0x1A60,
                                 0x1B44, 0x1BAA, 0x1BAB, 0x1BF2, 0x1BF3, 0x2D7F, 0xA806,
                                 0xA8C4, 0xA953, 0xA9C0, 0xAAF6, 0xABED};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i] == c)
            return true;
    return false;
}

static bool is_greek(uint32_t c) { return in(c, 0x0370, 0x03FF) || in(c, 0x1F00, 0x1FFF); }
static bool is_hebrew(uint32_t c) { return in(c, 0x0591, 0x05F4) || in(c, 0xFB1D, 0xFB4F); }
static bool is_arabic(uint32_t c) { return in(c, 0x0600, 0x06FF) || in(c, 0x0750, 0x077F); }
static bool is_kana_han(uint32_t c)
{
    return in(c, 0x3041, 0x30FA) || in(c, 0x30FC, 0x30FF) || in(c, 0x31F0, 0x31FF) ||
           in(c, 0x3400, 0x4DBF) || in(c, 0x4E00, 0x9FFF) || in(c, 0xF900, 0xFAFF) ||
           in(c, 0x20000, 0x3FFFF);
}

/* IDNA 2008 checks on a U-label given as code points. */
static bool ulabel_ok(const uint32_t *cp, size_t n)
{
    if (n == 0 || is_mark(cp[0]))
        return false;
    if (n >= 4 && cp[2] == '-' && cp[3] == '-')
        return false;
    if (cp[0] == '-' || cp[n - 1] == '-')
        return false;
    bool arabic_digit = false, ext_digit = false, katakana_dot = false, kana = false;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cp[i];
        if (c < 0x80 && !(alpha((char)c) || dig((char)c) || c == '-'))
            return false;
        if (c >= 'A' && c <= 'Z')
            return false; /* IDNA labels are lower case */
        switch (c) {
        case 0x0640: case 0x07FA: case 0x302E: case 0x302F: case 0x3031: case 0x3032:
        case 0x3033: case 0x3034: case 0x3035: case 0x303B:
            return false; /* DISALLOWED exceptions (RFC 5892 §2.6) */
        case 0x00B7: /* MIDDLE DOT between two 'l' */
            if (i == 0 || i + 1 >= n || cp[i - 1] != 'l' || cp[i + 1] != 'l')
                return false;
            break;
        case 0x0375: /* Greek KERAIA before Greek */
            if (i + 1 >= n || !is_greek(cp[i + 1]))
                return false;
            break;
        case 0x05F3: case 0x05F4: /* GERESH, GERSHAYIM after Hebrew */
            if (i == 0 || !is_hebrew(cp[i - 1]))
                return false;
            break;
        case 0x30FB:
            katakana_dot = true;
            break;
        case 0x200D: /* ZERO WIDTH JOINER after a virama */
            if (i == 0 || !is_virama(cp[i - 1]))
                return false;
            break;
        case 0x200C: /* ZWNJ after a virama, or between joining letters (approximated) */
            if (i == 0 || (!is_virama(cp[i - 1]) &&
                           !(is_arabic(cp[i - 1]) && i + 1 < n && is_arabic(cp[i + 1]))))
                return false;
            break;
        default:
            break;
        }
        if (in(c, 0x0660, 0x0669))
            arabic_digit = true;
        if (in(c, 0x06F0, 0x06F9))
            ext_digit = true;
        if (c != 0x30FB && is_kana_han(c))
            kana = true;
    }
    if (arabic_digit && ext_digit)
        return false;
    if (katakana_dot && !kana)
        return false;
    return true;
}

static bool label_sep(uint32_t c) { return c == '.' || c == 0x3002 || c == 0xFF0E || c == 0xFF61; }

/* Bidi classes (RFC 5893), approximated by blocks: enough for the Bidi rule on the
 * scripts host names use. */
enum bidi { B_L, B_R, B_AL, B_EN, B_AN, B_ES, B_CS, B_ET, B_ON, B_BN, B_NSM };

static enum bidi bidi_class(uint32_t c)
{
    if (c < 0x80)
        return alpha((char)c) ? B_L : dig((char)c) ? B_EN : c == '-' ? B_ES : B_ON;
    if (c == 0x200C || c == 0x200D)
        return B_BN;
    if (in(c, 0x0591, 0x05C7))
        return B_NSM;
    if (in(c, 0x05C8, 0x05FF) || in(c, 0x07C0, 0x085F) || in(c, 0xFB1D, 0xFB4F) ||
        in(c, 0x10800, 0x10FFF) || in(c, 0x1E800, 0x1EFFF))
        return B_R;
    if (in(c, 0x0660, 0x0669) || in(c, 0x066B, 0x066C) || in(c, 0x0600, 0x0605))
        return B_AN;
    if (in(c, 0x06F0, 0x06F9))
        return B_EN;
    if (in(c, 0x064B, 0x065F) || c == 0x0670 || in(c, 0x06D6, 0x06DC) ||
        in(c, 0x06DF, 0x06E4) || in(c, 0x06E7, 0x06E8) || in(c, 0x06EA, 0x06ED) ||
        in(c, 0x0610, 0x061A) || is_mark(c))
        return B_NSM;
    if (in(c, 0x0600, 0x07BF) || in(c, 0x0860, 0x08FF) || in(c, 0xFB50, 0xFDFF) ||
        in(c, 0xFE70, 0xFEFF))
        return B_AL;
    if (c == 0x00B7 || c == 0x0375 || c == 0x30FB)
        return B_ON;
    return B_L;
}

/* RFC 5893 §2 for one label; *rtl tells whether the label has R, AL or AN. */
static bool bidi_rule(const uint32_t *cp, size_t n, bool *rtl)
{
    bool has_en = false, has_an = false;
    *rtl = false;
    for (size_t i = 0; i < n; i++) {
        enum bidi b = bidi_class(cp[i]);
        *rtl |= b == B_R || b == B_AL || b == B_AN;
        has_en |= b == B_EN;
        has_an |= b == B_AN;
    }
    enum bidi first = bidi_class(cp[0]);
    size_t last = n;
    while (last > 0 && bidi_class(cp[last - 1]) == B_NSM)
        last--;
    if (last == 0)
        return false;
    enum bidi end = bidi_class(cp[last - 1]);
    if (first == B_R || first == B_AL) {
        for (size_t i = 0; i < n; i++)
            if (bidi_class(cp[i]) == B_L)
                return false;
        if (has_en && has_an)
            return false;
        return end == B_R || end == B_AL || end == B_EN || end == B_AN;
    }
    if (first != B_L)
        return false;
    for (size_t i = 0; i < n; i++) {
        enum bidi b = bidi_class(cp[i]);
        if (b == B_R || b == B_AL || b == B_AN)
            return false;
    }
    return end == B_L || end == B_EN;
}

/* Letters, digits and '-': the characters of an ASCII label. */
static bool ldh(unsigned char c) { return alpha((char)c) || dig((char)c) || c == '-'; }

/* The common case of hostname(): plain ASCII labels, none an A-label ("xn--"), so
 * nothing to decode and no Bidi rule to apply. 1 valid, 0 invalid, -1 not that case. */
static int hostname_plain(const char *s, size_t n, bool idn)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.') {
            if ((unsigned char)s[i] >= 0x80)
                return -1;
            continue;
        }
        const char *l = s + start;
        size_t len = i - start;
        if (len >= 4 && (l[0] | 0x20) == 'x' && (l[1] | 0x20) == 'n' && l[2] == '-' && l[3] == '-')
            return -1;
        if (len == 0 || len > 63 || l[0] == '-' || l[len - 1] == '-' ||
            (idn && len >= 4 && l[2] == '-' && l[3] == '-'))
            return 0;
        for (size_t k = 0; k < len; k++)
            if (!ldh((unsigned char)l[k]))
                return 0;
        start = i + 1;
    }
    return n <= 253;
}

/* hostname (RFC 1123, A-labels decoded and checked) and idn-hostname (U-labels too). */
static bool hostname(const char *s, size_t n, bool idn)
{
    if (n == 0)
        return false;
    int plain = hostname_plain(s, n, idn);
    if (plain >= 0)
        return plain;
    size_t total = 0, i = 0;
    bool any_rtl = false, bidi_ok = true;
    for (;;) {
        uint32_t cps[64];
        size_t ncp = 0;
        bool ascii = true, sep = false;
        while (i < n) {
            uint32_t c = utf8_next(s, n, &i);
            if (c == '.' || (idn && label_sep(c))) {
                sep = true;
                break;
            }
            if (ncp == 64)
                return false; /* longer than any valid label */
            ascii &= c < 0x80;
            cps[ncp++] = c;
        }
        if (ncp == 0)
            return false; /* empty label: a leading, trailing or doubled separator */
        uint32_t u[64];
        const uint32_t *lab = cps;
        size_t nl = ncp, alen = ncp;
        if (ascii) {
            if (ncp > 63 || cps[0] == '-' || cps[ncp - 1] == '-')
                return false;
            for (size_t k = 0; k < ncp; k++)
                if (!(alpha((char)cps[k]) || dig((char)cps[k]) || cps[k] == '-'))
                    return false;
            bool xn = ncp >= 4 && (cps[0] | 0x20) == 'x' && (cps[1] | 0x20) == 'n' &&
                      cps[2] == '-' && cps[3] == '-';
            if (xn) {
                char tail[64];
                for (size_t k = 4; k < ncp; k++)
                    tail[k - 4] = (char)cps[k];
                int un = puny_decode(tail, ncp - 4, u, 64);
                if (un <= 0 || !ulabel_ok(u, (size_t)un))
                    return false;
                bool all_ascii = true;
                for (int k = 0; k < un; k++)
                    all_ascii &= u[k] < 0x80;
                if (all_ascii)
                    return false;
                lab = u;
                nl = (size_t)un;
            } else if (idn && ncp >= 4 && cps[2] == '-' && cps[3] == '-') {
                return false;
            }
        } else {
            if (!idn || !ulabel_ok(cps, ncp))
                return false;
            alen = 5 + ncp; /* "xn--" + basic chars + "-" + at least one per other char */
            if (alen > 63)
                return false;
        }
        if (lab == cps && ascii) {
            /* an ASCII label is never right-to-left; under a Bidi domain it must
             * start with a letter (RFC 5893 rule 1; its other rules hold for it) */
            bidi_ok &= alpha((char)cps[0]);
        } else {
            bool rtl;
            bidi_ok &= bidi_rule(lab, nl, &rtl);
            any_rtl |= rtl;
        }
        total += alen + 1;
        if (!sep)
            break;
    }
    if (any_rtl && !bidi_ok)
        return false;
    return total - 1 <= 253;
}

/* ----- e-mail (RFC 5321 mailbox) ------------------------------------------------------------- */

/* RFC 5322 atext: letters, digits and these (a table: this runs per character). */
static const bool atext_sym[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['/'] = 1, ['='] = 1, ['?'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['{'] = 1,
    ['|'] = 1, ['}'] = 1, ['~'] = 1,
};

static bool atext(unsigned char c, bool idn)
{
    return alpha((char)c) || dig((char)c) || atext_sym[c] || (idn && c >= 0x80);
}

static bool email(const char *s, size_t n, bool idn)
{
    size_t i = 0;
    if (n && s[0] == '"') {
        for (i = 1; i < n && s[i] != '"'; i++) {
            if (s[i] == '\\')
                i++;
            else if ((unsigned char)s[i] < 0x20)
                return false;
        }
        if (i >= n)
            return false;
        i++;
    } else {
        bool dot_ok = false;
        for (; i < n && s[i] != '@'; i++) {
            if (s[i] == '.') {
                if (!dot_ok)
                    return false;
                dot_ok = false;
            } else if (atext((unsigned char)s[i], idn)) {
                dot_ok = true;
            } else {
                return false;
            }
        }
        if (!dot_ok)
            return false;
    }
    if (i >= n || s[i] != '@' || i > 64 * 4)
        return false;
    const char *d = s + i + 1;
    size_t dn = n - i - 1;
    if (dn >= 2 && d[0] == '[' && d[dn - 1] == ']') {
        if (dn > 7 && strncmp(d + 1, "IPv6:", 5) == 0)
            return ipv6(d + 6, dn - 7);
        return ipv4(d + 1, dn - 2);
    }
    return hostname(d, dn, idn);
}

/* ----- URIs and IRIs (RFC 3986, RFC 3987) -------------------------------------------------------- */

/* Character classes of RFC 3986, one table lookup per character. */
enum { C_BASE = 1, C_COLON = 2, C_AT = 4, C_SLASH = 8, C_QUERY = 16 };

#define B C_BASE
static const uint8_t uri_classes[256] = {
    ['0'] = B, ['1'] = B, ['2'] = B, ['3'] = B, ['4'] = B, ['5'] = B, ['6'] = B, ['7'] = B,
    ['8'] = B, ['9'] = B,
    ['a'] = B, ['b'] = B, ['c'] = B, ['d'] = B, ['e'] = B, ['f'] = B, ['g'] = B, ['h'] = B,
    ['i'] = B, ['j'] = B, ['k'] = B, ['l'] = B, ['m'] = B, ['n'] = B, ['o'] = B, ['p'] = B,
    ['q'] = B, ['r'] = B, ['s'] = B, ['t'] = B, ['u'] = B, ['v'] = B, ['w'] = B, ['x'] = B,
    ['y'] = B, ['z'] = B,
    ['A'] = B, ['B'] = B, ['C'] = B, ['D'] = B, ['E'] = B, ['F'] = B, ['G'] = B, ['H'] = B,
    ['I'] = B, ['J'] = B, ['K'] = B, ['L'] = B, ['M'] = B, ['N'] = B, ['O'] = B, ['P'] = B,
    ['Q'] = B, ['R'] = B, ['S'] = B, ['T'] = B, ['U'] = B, ['V'] = B, ['W'] = B, ['X'] = B,
    ['Y'] = B, ['Z'] = B,
    ['-'] = B, ['.'] = B, ['_'] = B, ['~'] = B,                         /* unreserved */
    ['!'] = B, ['$'] = B, ['&'] = B, ['\''] = B, ['('] = B, [')'] = B, /* sub-delims */
    ['*'] = B, ['+'] = B, [','] = B, [';'] = B, ['='] = B,
    [':'] = C_COLON, ['@'] = C_AT, ['/'] = C_SLASH, ['?'] = C_QUERY,
};
#undef B

static inline unsigned uri_class(unsigned char c) { return uri_classes[c]; }

/* s[0..n) is made of unreserved, sub-delims, pct-encoded and the `extra` classes
 * (and, for IRIs, any non-ASCII character). */
static bool chars_ok(const char *s, size_t n, unsigned extra, bool iri)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (uri_class(c) & (C_BASE | extra))
            continue;
        if (c == '%') {
            if (i + 2 >= n || !hexd(s[i + 1]) || !hexd(s[i + 2]))
                return false;
            i += 2;
        } else if (!(iri && c >= 0x80)) {
            return false;
        }
    }
    return true;
}

static bool authority(const char *s, size_t n, bool iri)
{
    const char *at = memchr(s, '@', n);
    if (at) {
        if (!chars_ok(s, (size_t)(at - s), C_COLON, iri))
            return false;
        n -= (size_t)(at - s) + 1;
        s = at + 1;
    }
    size_t hn;
    if (n && s[0] == '[') {
        const char *end = memchr(s, ']', n);
        if (!end)
            return false;
        const char *h = s + 1;
        size_t hl = (size_t)(end - h);
        if (hl && (h[0] == 'v' || h[0] == 'V')) {
            size_t k = 1;
            while (k < hl && hexd(h[k]))
                k++;
            if (k == 1 || k >= hl || h[k] != '.' || k + 1 == hl ||
                !chars_ok(h + k + 1, hl - k - 1, C_COLON, false))
                return false;
        } else if (!ipv6(h, hl)) {
            return false;
        }
        hn = (size_t)(end - s) + 1;
    } else {
        hn = 0;
        while (hn < n && s[hn] != ':')
            hn++;
        if (!chars_ok(s, hn, 0, iri))
            return false;
    }
    if (hn < n) {
        if (s[hn] != ':')
            return false;
        for (size_t k = hn + 1; k < n; k++)
            if (!dig(s[k]))
                return false;
    }
    return true;
}

/* URI-reference / IRI-reference; `absolute` requires a scheme. */
static bool uri(const char *s, size_t n, bool absolute, bool iri)
{
    size_t i = 0;
    bool has_scheme = false;
    if (n && alpha(s[0])) {
        size_t k = 1;
        while (k < n && (alpha(s[k]) || dig(s[k]) || s[k] == '+' || s[k] == '-' || s[k] == '.'))
            k++;
        if (k < n && s[k] == ':') {
            has_scheme = true;
            i = k + 1;
        }
    }
    if (absolute && !has_scheme)
        return false;
    size_t end = i;
    while (end < n && s[end] != '?' && s[end] != '#')
        end++;
    /* hier-part / relative-part */
    const char *p = s + i;
    size_t pn = end - i;
    if (pn >= 2 && p[0] == '/' && p[1] == '/') {
        size_t a = 2;
        while (a < pn && p[a] != '/')
            a++;
        if (!authority(p + 2, a - 2, iri))
            return false;
        p += a;
        pn -= a;
    } else if (!has_scheme) {
        /* path-noscheme: no ':' in the first segment */
        size_t k = 0;
        while (k < pn && p[k] != '/')
            if (p[k++] == ':')
                return false;
    }
    if (!chars_ok(p, pn, C_COLON | C_AT | C_SLASH, iri))
        return false;
    if (end < n && s[end] == '?') {
        size_t q = end + 1;
        end = q;
        while (end < n && s[end] != '#')
            end++;
        if (!chars_ok(s + q, end - q, C_COLON | C_AT | C_SLASH | C_QUERY, iri))
            return false;
    }
    if (end < n && s[end] == '#') {
        if (!chars_ok(s + end + 1, n - end - 1, C_COLON | C_AT | C_SLASH | C_QUERY, iri))
            return false;
    }
    return true;
}

/* ----- URI templates (RFC 6570 level 4) -------------------------------------------------------------- */

static bool uri_template(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '{') {
            size_t j = i + 1;
            if (j < n && strchr("+#./;?&=,!@|", s[j]) && s[j])
                j++;
            for (;;) {
                /* varname: varchar *( ["."] varchar ) */
                size_t v = j;
                bool need = true;
                while (j < n) {
                    if (alpha(s[j]) || dig(s[j]) || s[j] == '_') {
                        j++;
                        need = false;
                    } else if (s[j] == '%' && j + 2 < n && hexd(s[j + 1]) && hexd(s[j + 2])) {
                        j += 3;
                        need = false;
                    } else if (s[j] == '.' && !need) {
                        j++;
                        need = true;
                    } else {
                        break;
                    }
                }
                if (j == v || need)
                    return false;
                if (j < n && s[j] == '*') {
                    j++;
                } else if (j < n && s[j] == ':') {
                    size_t d = ++j;
                    while (j < n && dig(s[j]) && j - d < 5)
                        j++;
                    if (j == d || j - d > 4 || s[d] == '0')
                        return false;
                }
                if (j < n && s[j] == ',') {
                    j++;
                    continue;
                }
                break;
            }
            if (j >= n || s[j] != '}')
                return false;
            i = j;
        } else if (c == '%') {
            if (i + 2 >= n || !hexd(s[i + 1]) || !hexd(s[i + 2]))
                return false;
            i += 2;
        } else if (c <= 0x20 || c == 0x7F || strchr("\"<>\\^`|}", c)) {
            return false;
        }
    }
    return true;
}

/* ----- JSON pointers ------------------------------------------------------------------------------------ */

static bool json_pointer(const char *s, size_t n)
{
    if (n && s[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '~' && (i + 1 >= n || (s[i + 1] != '0' && s[i + 1] != '1')))
            return false;
    return true;
}

static bool rel_json_pointer(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && dig(s[i]))
        i++;
    if (i == 0 || (s[0] == '0' && i > 1))
        return false;
    if (i < n && s[i] == '#')
        return i + 1 == n;
    return json_pointer(s + i, n - i);
}

/* ----- table ------------------------------------------------------------------------------------------- */

static const char *const names[] = {
    "regex",     "date-time",     "date",          "time",  "email",
    "idn-email", "hostname",      "idn-hostname",  "ipv4",  "ipv6",
    "uri",       "uri-reference", "iri",           "iri-reference",
    "uri-template", "json-pointer", "relative-json-pointer",
};

int sch_format_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    return FMT_UNKNOWN;
}

const char *sch_format_name(int id) { return names[id]; }

bool sch_format_check(int id, const char *s, size_t n)
{
    switch (id) {
    case 0: return sch_re_is_ecma(s, n);
    case 1: return date_time(s, n);
    case 2: return full_date(s, n);
    case 3: return full_time(s, n);
    case 4: return email(s, n, false);
    case 5: return email(s, n, true);
    case 6: return hostname(s, n, false);
    case 7: return hostname(s, n, true);
    case 8: return ipv4(s, n);
    case 9: return ipv6(s, n);
    case 10: return uri(s, n, true, false);
    case 11: return uri(s, n, false, false);
    case 12: return uri(s, n, true, true);
    case 13: return uri(s, n, false, true);
    case 14: return uri_template(s, n);
    case 15: return json_pointer(s, n);
    case 16: return rel_json_pointer(s, n);
    default: return true;
    }
}
