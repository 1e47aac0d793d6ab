/* policy — the pure decisions of delivery, kept apart from I/O so that unit tests and the
 * fuzz target can drive them: how an attempt's answer is classified (delivery.md §4.1),
 * when the next attempt is due (§5), Retry-After parsing, and the outbound address policy
 * (§4.3: CIDR allow/deny lists matched on the address actually connected to). */
#ifndef MANIFOLD_DELIVER_POLICY_H
#define MANIFOLD_DELIVER_POLICY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    OUT_SUCCESS = 0,
    OUT_RETRY = 1,
    OUT_DISCARD = 2,
    OUT_REDIRECT = 3, /* 307/308: follow Location with the same method and body */
    OUT_DROP = 4,     /* the destination went away (disabled, deleted): neither counted nor retried */
} outcome_kind;

/* §4.1 for an HTTP status: 2xx success; 307/308 redirect; other 3xx discard; 408, 423,
 * 429 retry; other 4xx discard; 501 discard; other 5xx retry; anything else discard. */
outcome_kind classify_status(long status);

typedef struct retry_policy {
    double scale;        /* MANIFOLD_RETRY_TIME_SCALE: multiplies every wait, Retry-After too */
    int max_attempts;    /* MANIFOLD_RETRY_MAX_ATTEMPTS: attempts in all, the first included */
    int64_t window_ms;   /* MANIFOLD_RETRY_WINDOW: no attempt starts later than receivedAt + this */
} retry_policy;

/* Defaults (1.0, 10, 4 h), then the environment. Bad values are reported in err (and the
 * default kept); returns false then. */
bool retry_policy_from_env(retry_policy *p, char *err, size_t errlen);

/* Wait before retry n (n = 1 after the first failed attempt), jitter u in [0.8, 1.2]:
 * min(3600 s, 30 s × 2^(n−1)) × u, then max with retry_after_ms (−1: none) capped at 1 h,
 * all times scale. */
int64_t retry_wait_ms(const retry_policy *p, int n, double u, int64_t retry_after_ms);

/* After `attempts` failed attempts of an event received at received_ms, failing at now:
 * the due time of the next attempt, or −1 to give up (attempts exhausted, or the next
 * attempt would start after the window). */
int64_t retry_next_due(const retry_policy *p, int attempts, int64_t received_ms, int64_t now, double u,
                       int64_t retry_after_ms);

/* A Retry-After value: delta-seconds or an HTTP date. Milliseconds to wait (>= 0), or −1
 * when absent or unreadable. */
int64_t parse_retry_after(const char *v, int64_t now_ms);

/* ---- outbound address policy ---- */
typedef struct cidr {
    int family;               /* 4 or 6 */
    unsigned char addr[16];   /* network bytes, host bits cleared */
    int bits;
} cidr;

typedef struct cidr_list {
    cidr *v;
    size_t n;
} cidr_list;

/* "10.0.0.0/8, 192.168.1.1 ::1/128 fd00::/8": entries separated by commas and/or white
 * space; a bare address is a host route. Returns 0, or -1 with the first bad entry named
 * in err (and an empty list). */
int cidr_list_parse(const char *text, cidr_list *out, char *err, size_t errlen);
void cidr_list_free(cidr_list *);
/* The longest prefix of the list containing the address, or -1. IPv4-mapped IPv6
 * addresses (::ffff:a.b.c.d) are matched as IPv4. */
int cidr_list_longest(const cidr_list *, int family, const unsigned char *addr);

/* The policy: the most specific matching entry of either list decides (a tie denies); an
 * address matching neither is allowed (delivery.md §4.3: default allow all). So
 * DENY=0.0.0.0/0,::/0 with ALLOW=203.0.113.0/24 is an allow-list, and DENY=127.0.0.0/8
 * with ALLOW=127.0.0.2 carves one exception. */
bool outbound_allowed(const cidr_list *allow, const cidr_list *deny, int family, const unsigned char *addr);

/* HMAC-SHA1 (RFC 2104 over FIPS 180-4 SHA-1) as 40 lowercase hex digits + NUL: the
 * Webhooks destination's X-Signature (delivery.md §6.3). */
void hmac_sha1_hex(const void *key, size_t keylen, const void *msg, size_t len, char out[41]);

#endif
