#include "util/util.h"
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int log_level = LOG_INFO;
bool log_json = false;

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rfc3339(int64_t ms, char *out)
{
    time_t s = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 24, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac)
        snprintf(out + n, 8, ".%03dZ", frac);
    else
        strcpy(out + n, "Z");
}

static size_t b64_enc(const unsigned char *in, size_t n, char *out, const char *alpha, bool pad)
{
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        out[o++] = alpha[(v >> 6) & 63];
        out[o++] = alpha[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = alpha[(v >> 6) & 63];
        else if (pad)
            out[o++] = '=';
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
    return b64_enc(in, n, out, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", false);
}

size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    return b64_enc(in, n, out, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", true);
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

long b64_decode(const char *in, size_t n, unsigned char *out, size_t outcap)
{
    while (n && in[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val(in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outcap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* Non-canonical trailing bits mean a forged or mangled token. */
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    return (long)o;
}

/* Uniform characters from alpha[0..k) by rejection sampling over one buffer of random
 * bytes: one call into libsodium (one getrandom(2)) per string, not one per character. */
static void random_from(char *out, size_t n, const char *alpha, uint32_t k)
{
    unsigned limit = 256 - 256 % k; /* bytes >= limit would bias the modulo */
    unsigned char rnd[128];
    size_t have = 0, used = 0, i = 0;
    while (i < n) {
        if (used == have) {
            have = n - i + 16 < sizeof rnd ? n - i + 16 : sizeof rnd;
            randombytes_buf(rnd, have);
            used = 0;
        }
        unsigned char b = rnd[used++];
        if (b < limit)
            out[i++] = alpha[b % k];
    }
    out[n] = '\0';
    sodium_memzero(rnd, sizeof rnd);
}

void random_alnum(char *out, size_t n)
{
    random_from(out, n, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 62);
}

void random_lower(char *out, size_t n) { random_from(out, n, "0123456789abcdefghijklmnopqrstuvwxyz", 36); }

void ksuid(char *out)
{
    /* 4 bytes of seconds since the KSUID epoch + 16 random bytes, base62, 27 chars. */
    static const char alpha[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char raw[20];
    uint32_t ts = (uint32_t)(now_ms() / 1000 - 1400000000);
    raw[0] = (unsigned char)(ts >> 24), raw[1] = (unsigned char)(ts >> 16);
    raw[2] = (unsigned char)(ts >> 8), raw[3] = (unsigned char)ts;
    randombytes_buf(raw + 4, 16);
    /* Big-number base conversion, most significant digit first. */
    for (int pos = 26; pos >= 0; pos--) {
        uint32_t rem = 0;
        for (int i = 0; i < 20; i++) {
            uint32_t cur = rem * 256 + raw[i];
            raw[i] = (unsigned char)(cur / 62);
            rem = cur % 62;
        }
        out[pos] = alpha[rem];
    }
    out[27] = '\0';
}

long pct_decode(const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] != '%') {
            out[o++] = in[i];
            continue;
        }
        if (i + 2 >= n)
            return -1;
        int h = hex_value(in[i + 1]), l = hex_value(in[i + 2]);
        if (h < 0 || l < 0)
            return -1;
        out[o++] = (char)(h << 4 | l);
        i += 2;
    }
    out[o] = '\0';
    return (long)o;
}

void log_write(const char *line, size_t n)
{
    while (n) {
        ssize_t w = write(STDERR_FILENO, line, n);
        if (w <= 0)
            return; /* nowhere to report a failing stderr */
        line += w, n -= (size_t)w;
    }
}

void logf_(int level, const char *fmt, ...)
{
    if (level > log_level)
        return;
    static const char *names[] = {"error", "warn", "info", "debug"};
    char ts[32];
    rfc3339(now_ms(), ts);
    char msg[2048], line[4096 + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int n;
    if (log_json) {
        /* The message as a JSON string: quotes, backslashes and control bytes escaped;
         * bytes that are not UTF-8 become U+FFFD so the line stays valid JSON. */
        n = snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, names[level]);
        const unsigned char *m = (const unsigned char *)msg;
        size_t mlen = strlen(msg);
        for (size_t i = 0; i < mlen && (size_t)n + 16 < sizeof line;) {
            unsigned char c = m[i];
            size_t len = utf8_seq(m + i, mlen - i);
            if (!len) {
                n += snprintf(line + n, sizeof line - (size_t)n, "\\ufffd");
                i++;
            } else if (c == '"' || c == '\\') {
                line[n++] = '\\', line[n++] = (char)c, i++;
            } else if (c < 0x20) {
                n += snprintf(line + n, sizeof line - (size_t)n, "\\u%04x", c);
                i++;
            } else {
                memcpy(line + n, m + i, len);
                n += (int)len, i += len;
            }
        }
        n += snprintf(line + n, sizeof line - (size_t)n, "\"}\n");
    } else {
        n = snprintf(line, sizeof line, "%s %s %s\n", ts, names[level], msg);
    }
    if (n > 0)
        log_write(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(p + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

bool str_in(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (!strcmp(*list, s))
            return true;
    return false;
}
