/* Unit tests for src/deliver/policy.c: §4.1 classification, the §5 schedule (jitter bounds,
 * cap, Retry-After, attempt limit, window, time scale), Retry-After parsing, CIDR lists and
 * the outbound policy, and HMAC-SHA1 against delivery.md §6.3's vectors and RFC 2202. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "deliver/policy.h"

static void test_classification(void **st)
{
    (void)st;
    long success[] = {200, 201, 202, 204, 299};
    long retry[] = {408, 423, 429, 500, 502, 503, 504, 599};
    long discard[] = {100, 199, 300, 301, 302, 303, 304, 400, 401, 403, 404, 405, 409, 410, 413, 422, 451, 501, 0, 600};
    for (size_t i = 0; i < sizeof success / sizeof *success; i++)
        assert_int_equal(classify_status(success[i]), OUT_SUCCESS);
    for (size_t i = 0; i < sizeof retry / sizeof *retry; i++)
        assert_int_equal(classify_status(retry[i]), OUT_RETRY);
    for (size_t i = 0; i < sizeof discard / sizeof *discard; i++)
        assert_int_equal(classify_status(discard[i]), OUT_DISCARD);
    assert_int_equal(classify_status(307), OUT_REDIRECT);
    assert_int_equal(classify_status(308), OUT_REDIRECT);
}

static const retry_policy P = {.scale = 1.0, .max_attempts = 10, .window_ms = 4LL * 3600 * 1000};

static void test_backoff_schedule(void **st)
{
    (void)st;
    /* nominal 30 s, 1 m, 2 m, 4 m, 8 m, 16 m, 32 m, 60 m, 60 m */
    int64_t nominal[] = {30, 60, 120, 240, 480, 960, 1920, 3600, 3600};
    for (int n = 1; n <= 9; n++) {
        assert_int_equal(retry_wait_ms(&P, n, 1.0, -1), nominal[n - 1] * 1000);
        assert_int_equal(retry_wait_ms(&P, n, 0.8, -1), nominal[n - 1] * 800);
        assert_int_equal(retry_wait_ms(&P, n, 1.2, -1), nominal[n - 1] * 1200);
    }
    assert_int_equal(retry_wait_ms(&P, 40, 1.0, -1), 3600000); /* no overflow far out */
    /* Retry-After wins when longer, capped at 1 h; never shortens the backoff */
    assert_int_equal(retry_wait_ms(&P, 1, 1.0, 120000), 120000);
    assert_int_equal(retry_wait_ms(&P, 1, 1.0, 1000), 30000);
    assert_int_equal(retry_wait_ms(&P, 1, 1.0, 99999999), 3600000);
    /* the time scale multiplies everything, Retry-After included */
    retry_policy s = P;
    s.scale = 0.001;
    assert_int_equal(retry_wait_ms(&s, 1, 1.0, -1), 30);
    assert_int_equal(retry_wait_ms(&s, 1, 1.0, 120000), 120);
}

static void test_next_due(void **st)
{
    (void)st;
    int64_t t0 = 1700000000000;
    assert_int_equal(retry_next_due(&P, 1, t0, t0 + 100, 1.0, -1), t0 + 100 + 30000);
    assert_int_equal(retry_next_due(&P, 9, t0, t0 + 1000, 1.0, -1), t0 + 1000 + 3600000);
    assert_int_equal(retry_next_due(&P, 10, t0, t0 + 1000, 1.0, -1), -1); /* 10 attempts made */
    /* the window: no attempt may start more than 4 h after receivedAt */
    assert_int_equal(retry_next_due(&P, 8, t0, t0 + 3 * 3600000LL + 60000, 1.0, -1), -1);
    assert_int_equal(retry_next_due(&P, 8, t0, t0 + 3 * 3600000LL, 1.0, -1), t0 + 4 * 3600000LL); /* exactly at the edge: allowed */
    assert_true(retry_next_due(&P, 8, t0, t0 + 3600000LL, 1.0, -1) > 0);
    retry_policy three = P;
    three.max_attempts = 3;
    assert_true(retry_next_due(&three, 2, t0, t0, 1.0, -1) > 0);
    assert_int_equal(retry_next_due(&three, 3, t0, t0, 1.0, -1), -1);
    /* the whole default schedule fits the window even with the largest jitter */
    int64_t now = t0;
    for (int n = 1; n < 10; n++) {
        int64_t due = retry_next_due(&P, n, t0, now, 1.2, -1);
        if (n < 8)
            assert_true(due > 0);
        if (due < 0)
            break;
        now = due;
    }
}

static void test_retry_after_parsing(void **st)
{
    (void)st;
    int64_t now = 784111777000; /* Sun, 06 Nov 1994 08:49:37 GMT */
    assert_int_equal(parse_retry_after("2", now), 2000);
    assert_int_equal(parse_retry_after(" 120 ", now), 120000);
    assert_int_equal(parse_retry_after("0", now), 0);
    assert_int_equal(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now), 10000);
    assert_int_equal(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), 0); /* past */
    assert_int_equal(parse_retry_after("", now), -1);
    assert_int_equal(parse_retry_after(NULL, now), -1);
    assert_int_equal(parse_retry_after("soon", now), -1);
    assert_int_equal(parse_retry_after("-5", now), -1);
    assert_int_equal(parse_retry_after("5s", now), -1);
    assert_int_equal(parse_retry_after("99999999999999999999999", now), 86400LL * 365 * 1000);
}

static void addr4(const char *s, unsigned char out[16])
{
    assert_int_equal(inet_pton(AF_INET, s, out), 1);
}

static void addr6(const char *s, unsigned char out[16])
{
    assert_int_equal(inet_pton(AF_INET6, s, out), 1);
}

static void test_cidr_parsing(void **st)
{
    (void)st;
    cidr_list l;
    char err[128];
    assert_int_equal(cidr_list_parse("10.0.0.0/8, 192.168.1.1 ::1/128,fd00::/8\n127.0.0.0/8", &l, err, sizeof err), 0);
    assert_int_equal(l.n, 5);
    assert_int_equal(l.v[1].bits, 32);
    assert_int_equal(l.v[3].family, 6);
    cidr_list_free(&l);
    assert_int_equal(cidr_list_parse("", &l, err, sizeof err), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(cidr_list_parse(NULL, &l, err, sizeof err), 0);
    assert_int_equal(cidr_list_parse(" , ,", &l, err, sizeof err), 0);
    assert_int_equal(l.n, 0);
    const char *bad[] = {"10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x",
                         "host.example", "1.2.3.4/0008", "1.2.3.4/8/8", "/8"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(cidr_list_parse(bad[i], &l, err, sizeof err), -1);
        assert_non_null(strstr(err, "not an address"));
        assert_int_equal(l.n, 0);
        assert_null(l.v);
    }
    /* host bits are cleared: 10.1.2.3/8 is 10.0.0.0/8 */
    assert_int_equal(cidr_list_parse("10.1.2.3/8", &l, err, sizeof err), 0);
    unsigned char a[16];
    addr4("10.200.0.1", a);
    assert_int_equal(cidr_list_longest(&l, 4, a), 8);
    cidr_list_free(&l);
}

static void test_outbound_policy(void **st)
{
    (void)st;
    cidr_list allow, deny, none = {0};
    char err[128];
    unsigned char a[16];
    /* default: allow all */
    addr4("127.0.0.1", a);
    assert_true(outbound_allowed(&none, &none, 4, a));
    /* deny loopback, allow one exception */
    assert_int_equal(cidr_list_parse("127.0.0.0/8 ::1", &deny, err, sizeof err), 0);
    assert_int_equal(cidr_list_parse("127.0.0.2", &allow, err, sizeof err), 0);
    assert_false(outbound_allowed(&allow, &deny, 4, a));
    addr4("127.0.0.2", a);
    assert_true(outbound_allowed(&allow, &deny, 4, a));
    addr4("8.8.8.8", a);
    assert_true(outbound_allowed(&allow, &deny, 4, a));
    addr6("::1", a);
    assert_false(outbound_allowed(&allow, &deny, 6, a));
    addr6("::ffff:127.0.0.1", a); /* IPv4-mapped: matched as IPv4 */
    assert_false(outbound_allowed(&allow, &deny, 6, a));
    addr6("::ffff:127.0.0.2", a);
    assert_true(outbound_allowed(&allow, &deny, 6, a));
    cidr_list_free(&allow);
    cidr_list_free(&deny);
    /* allow-list mode; a tie denies */
    assert_int_equal(cidr_list_parse("0.0.0.0/0 ::/0", &deny, err, sizeof err), 0);
    assert_int_equal(cidr_list_parse("203.0.113.0/24 0.0.0.0/0", &allow, err, sizeof err), 0);
    addr4("203.0.113.9", a);
    assert_true(outbound_allowed(&allow, &deny, 4, a));
    addr4("198.51.100.1", a);
    assert_false(outbound_allowed(&allow, &deny, 4, a)); /* /0 against /0: deny */
    addr6("2001:db8::1", a);
    assert_false(outbound_allowed(&allow, &deny, 6, a));
    cidr_list_free(&allow);
    cidr_list_free(&deny);
}

static void test_hmac_sha1(void **st)
{
    (void)st;
    char hex[41];
    const char *b1 = "{\"type\":\"track\",\"event\":\"Order Completed\",\"userId\":\"u-1\",\"messageId\":\"m-1\","
                     "\"properties\":{\"total\":9.99},\"timestamp\":\"2024-05-01T12:00:00.000Z\"}";
    hmac_sha1_hex("topsecret", 9, b1, strlen(b1), hex);
    assert_string_equal(hex, "58f541c33bbed4afb753ebdb78778efdfaf75a76");
    const char *b2 = "{\"type\":\"identify\",\"userId\":\"\xc3\xbc-2\",\"traits\":{\"name\":\"Zo\xc3\xab\"},"
                     "\"messageId\":\"m-2\"}";
    assert_int_equal(strlen(b2), 78);
    hmac_sha1_hex("k", 1, b2, strlen(b2), hex);
    assert_string_equal(hex, "a2a398fcb2f1a74d32d854588fc580ac51695d9f");
    hmac_sha1_hex("abc123", 6, "{\"a\":1}", 7, hex);
    assert_string_equal(hex, "3e00835f622cfab98f4a3b8a6c14ff71e8fd2d21");
    /* RFC 2202 test cases 2 and 6 (a key longer than the block) */
    hmac_sha1_hex("Jefe", 4, "what do ya want for nothing?", 28, hex);
    assert_string_equal(hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    unsigned char key[80];
    memset(key, 0xaa, sizeof key);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    hmac_sha1_hex(key, 80, m6, strlen(m6), hex);
    assert_string_equal(hex, "aa4ae5e15272d00e95705637ce8a3b55ed402112");
    /* messages across block boundaries */
    char big[200];
    memset(big, 'x', sizeof big);
    hmac_sha1_hex("k", 1, big, 55, hex);
    assert_int_equal(strlen(hex), 40);
}

static void test_policy_from_env(void **st)
{
    (void)st;
    retry_policy p;
    char err[128];
    unsetenv("MANIFOLD_RETRY_TIME_SCALE");
    unsetenv("MANIFOLD_RETRY_MAX_ATTEMPTS");
    unsetenv("MANIFOLD_RETRY_WINDOW");
    assert_true(retry_policy_from_env(&p, err, sizeof err));
    assert_true(p.scale == 1.0 && p.max_attempts == 10 && p.window_ms == 14400000);
    setenv("MANIFOLD_RETRY_TIME_SCALE", "0.01", 1);
    setenv("MANIFOLD_RETRY_MAX_ATTEMPTS", "3", 1);
    setenv("MANIFOLD_RETRY_WINDOW", "60", 1);
    assert_true(retry_policy_from_env(&p, err, sizeof err));
    assert_true(p.scale == 0.01 && p.max_attempts == 3 && p.window_ms == 60000);
    setenv("MANIFOLD_RETRY_MAX_ATTEMPTS", "0", 1);
    assert_false(retry_policy_from_env(&p, err, sizeof err));
    assert_non_null(strstr(err, "MANIFOLD_RETRY_MAX_ATTEMPTS"));
    setenv("MANIFOLD_RETRY_MAX_ATTEMPTS", "3", 1);
    setenv("MANIFOLD_RETRY_TIME_SCALE", "fast", 1);
    assert_false(retry_policy_from_env(&p, err, sizeof err));
    unsetenv("MANIFOLD_RETRY_TIME_SCALE");
    unsetenv("MANIFOLD_RETRY_MAX_ATTEMPTS");
    unsetenv("MANIFOLD_RETRY_WINDOW");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classification),
        cmocka_unit_test(test_backoff_schedule),
        cmocka_unit_test(test_next_due),
        cmocka_unit_test(test_retry_after_parsing),
        cmocka_unit_test(test_cidr_parsing),
        cmocka_unit_test(test_outbound_policy),
        cmocka_unit_test(test_hmac_sha1),
        cmocka_unit_test(test_policy_from_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
