/* Small helpers shared by every layer: time stamps, base64url, random ids, logging. */
#ifndef MANIFOLD_UTIL_H
#define MANIFOLD_UTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the epoch, wall clock. */
int64_t now_ms(void);
/* Monotonic milliseconds, for deadlines and rate limits. */
int64_t mono_ms(void);
/* Monotonic microseconds, for request durations. */
int64_t mono_us(void);
/* RFC 3339 UTC with a Z; milliseconds only when non-zero (like protobuf JSON). out >= 32. */
void rfc3339(int64_t ms, char *out);

/* base64url without padding. out must hold 4*ceil(n/3)+1. Returns length written. */
size_t b64url_encode(const unsigned char *in, size_t n, char *out);
/* Standard base64 with padding (page tokens look like Segment's "MTI="). */
size_t b64_encode(const unsigned char *in, size_t n, char *out);
/* Decodes standard or url-safe base64, padding optional. Returns -1 on bad input. */
long b64_decode(const char *in, size_t n, unsigned char *out, size_t outcap);

/* Random alphanumeric string of n chars, NUL-terminated (out holds n+1). */
void random_alnum(char *out, size_t n);
/* Lower-case [a-z0-9] id, e.g. workspace ids like "e5bdb0902b". */
void random_lower(char *out, size_t n);
/* A KSUID-shaped id: 27 base62 chars, time-ordered. out holds 28. */
void ksuid(char *out);

/* Is s one of list's strings (list NULL-terminated, or NULL: empty)? */
bool str_in(const char *const *list, const char *s);

/* The value of a hexadecimal digit, or -1. */
static inline int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Length of the well-formed UTF-8 sequence at s (n >= 1 bytes left), 0 if there is none:
 * no overlong forms, no surrogates, nothing past U+10FFFF (jansson's rules). */
static inline size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!len || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || /* overlong, surrogate */
        (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))   /* overlong, > U+10FFFF */
        return 0;
    return len;
}

/* Is s[0..n) well-formed UTF-8 (utf8_seq's rules)? */
bool utf8_valid(const char *s, size_t n);

/* Percent-decodes in[0..n) into out (capacity n+1). Returns decoded length or -1 on a
 * malformed escape. Never turns '+' into space (paths and our query args are not forms). */
long pct_decode(const char *in, size_t n, char *out);

/* Logging to stderr, one line per event. Never pass secrets. Text lines are
 * "TIME LEVEL MESSAGE"; with log_json (--log-format json) every line is one JSON object
 * {"time", "level", "msg"} (access lines add their fields, see obs.c). */
enum { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
extern int log_level;
extern bool log_json;
/* Writes one whole line (with its newline) to stderr in a single write(2), so lines of
 * concurrent threads never interleave. */
void log_write(const char *line, size_t n);
void logf_(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) logf_(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) logf_(LOG_WARN, __VA_ARGS__)
/* The release (the repository's VERSION file, passed by the Makefile). */
#ifndef MANIFOLD_VERSION
#define MANIFOLD_VERSION "0.0.0-dev"
#endif

#define log_info(...) logf_(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_level >= LOG_DEBUG) logf_(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
