/* Unit tests for src/api/page.c: page tokens are opaque, signed with the server key (a
 * forged or edited token is refused) and round-trip; page_parse applies the spec §1.9 rules
 * (default 10, clamp to 100, negative or non-numeric → 400/3). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* api.h declares a fail() of its own: it must come before cmocka's fail() macro. */
#include "api/call.h"
#include "util/util.h"

#include <cmocka.h>

static char tmpdir[256];
static char keyfile[300];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/manifold-test-page.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(keyfile, sizeof keyfile, "%s/key", tmpdir);
    char err[256];
    return auth_init(keyfile, err, sizeof err);
}

static int teardown(void **state)
{
    (void)state;
    char other[320];
    auth_shutdown();
    unlink(keyfile);
    snprintf(other, sizeof other, "%s/key2", tmpdir);
    unlink(other);
    rmdir(tmpdir);
    return 0;
}

static void encode(const char *payload, char *out, size_t cap)
{
    page_token_encode(payload, out, cap);
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *payloads[] = {"0", "10", "12", "545", "18446744073709551615", "workspaces/myworkspace/sources/js",
                              "a", "with space", "h\xc3\xa9", "x:y/z?w=1&v=2"};
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        char tok[1024], back[512];
        encode(payloads[i], tok, sizeof tok);
        assert_true(strlen(tok) > 0);
        assert_int_equal(page_token_decode(tok, back, sizeof back), 0);
        assert_string_equal(back, payloads[i]);
    }
}

static void test_long_payload_round_trip(void **state)
{
    (void)state;
    char payload[500], tok[1024], back[512];
    memset(payload, 'p', sizeof payload - 1);
    payload[sizeof payload - 1] = '\0';
    encode(payload, tok, sizeof tok);
    assert_true(strlen(tok) > 0);
    assert_int_equal(page_token_decode(tok, back, sizeof back), 0);
    assert_string_equal(back, payload);
    /* too small an output buffer: an empty token, never an overflow */
    char small[16];
    memset(small, 'x', sizeof small);
    encode(payload, small, sizeof small);
    assert_string_equal(small, "");
    /* a payload that does not fit the caller's buffer is refused */
    char tiny[8];
    assert_int_not_equal(page_token_decode(tok, tiny, sizeof tiny), 0);
}

static void test_token_is_opaque(void **state)
{
    (void)state;
    char a[1024], c[1024];
    encode("10", a, sizeof a);
    encode("11", c, sizeof c);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, "MTA="); /* not bare base64 of the offset */
}

/* Tokens are URL-safe base64; the decoder also reads '+' and '/' as '-' and '_', so
 * swapping those is not an edit. Every other character is tried. */
static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void test_every_single_character_edit_is_refused(void **state)
{
    (void)state;
    const char *payloads[] = {"10", "130", "workspaces/ws/sources/a"};
    for (size_t p = 0; p < sizeof payloads / sizeof payloads[0]; p++) {
        char tok[1024], back[512];
        encode(payloads[p], tok, sizeof tok);
        size_t n = strlen(tok);
        while (n && tok[n - 1] == '=')
            n--;
        for (size_t i = 0; i < n; i++) {
            for (const char *r = b64chars; *r; r++) {
                if (*r == tok[i])
                    continue;
                char edited[1024];
                memcpy(edited, tok, strlen(tok) + 1);
                edited[i] = *r;
                if (page_token_decode(edited, back, sizeof back) == 0)
                    fail_msg("edited token %s (from %s) accepted as '%s'", edited, tok, back);
            }
        }
    }
}

static void test_forged_tokens_refused(void **state)
{
    (void)state;
    char back[512];
    const char *forged[] = {
        "", "MTI=", "MTA=", "a3pVcVE2SkxaUg==", "!!!!", "====", "A", "AAAA", "AAAAAAAAAAAAAAAAAAAA",
        "MTAAAAAAAAAAAAAAAAAA", "%00", "MTI=MTI=", " MTI=", "MTI= ", "MT\nI=",
    };
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++)
        if (page_token_decode(forged[i], back, sizeof back) == 0)
            fail_msg("forged token '%s' accepted", forged[i]);
}

static void test_truncated_and_extended_tokens_refused(void **state)
{
    (void)state;
    char tok[256], back[512], t[1100];
    encode("12345", tok, sizeof tok);
    size_t n = strlen(tok);
    while (n && tok[n - 1] == '=') /* padding is optional: dropping it is no edit */
        n--;
    for (size_t k = 1; k < n; k++) {
        memcpy(t, tok, n - k);
        t[n - k] = '\0';
        assert_int_not_equal(page_token_decode(t, back, sizeof back), 0);
    }
    snprintf(t, sizeof t, "%sAAAA", tok);
    assert_int_not_equal(page_token_decode(t, back, sizeof back), 0);
    snprintf(t, sizeof t, "AAAA%s", tok);
    assert_int_not_equal(page_token_decode(t, back, sizeof back), 0);
}

static void test_spliced_mac_refused(void **state)
{
    (void)state;
    /* payload "99" with the MAC of "10" */
    char tok[1024], back[512];
    encode("10", tok, sizeof tok);
    unsigned char raw[64];
    long n = b64_decode(tok, strlen(tok), raw, sizeof raw);
    assert_int_equal(n, 2 + 12);
    raw[0] = '9', raw[1] = '9';
    char forged[64];
    b64_encode(raw, (size_t)n, forged);
    assert_int_not_equal(page_token_decode(forged, back, sizeof back), 0);
}

static void test_payload_with_nul_refused(void **state)
{
    (void)state;
    /* a validly signed payload containing NUL must still be refused */
    unsigned char raw[64] = {'1', '\0', '2'};
    auth_mac(raw, 3, raw + 3);
    char tok[64], back[64];
    b64_encode(raw, 3 + 12, tok);
    assert_int_not_equal(page_token_decode(tok, back, sizeof back), 0);
}

static void test_url_safe_alphabet_accepted(void **state)
{
    (void)state;
    /* a client may re-encode the token url-safe and without padding */
    char tok[1024], back[512];
    for (int i = 0; i < 200; i++) {
        char payload[16];
        snprintf(payload, sizeof payload, "%d", i);
        encode(payload, tok, sizeof tok);
        for (char *p = tok; *p; p++)
            *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = '\0';
        assert_int_equal(page_token_decode(tok, back, sizeof back), 0);
        assert_string_equal(back, payload);
    }
}

static void test_other_server_key_refuses_token(void **state)
{
    (void)state;
    char tok[1024], back[512], err[256], key2[320];
    encode("10", tok, sizeof tok);
    snprintf(key2, sizeof key2, "%s/key2", tmpdir);
    assert_int_equal(auth_init(key2, err, sizeof err), 0); /* a different, fresh key */
    assert_int_not_equal(page_token_decode(tok, back, sizeof back), 0);
    assert_int_equal(auth_init(keyfile, err, sizeof err), 0); /* back to the first key */
    assert_int_equal(page_token_decode(tok, back, sizeof back), 0);
    assert_string_equal(back, "10");
}

static void test_page_token_write(void **state)
{
    (void)state;
    buf b = {0};
    page_token_write(&b, NULL);
    page_token_write(&b, "");
    buf_putc(&b, '\0');
    assert_string_equal(b.data, ",\"next_page_token\":\"\",\"next_page_token\":\"\"");
    buf_free(&b);
    page_token_write(&b, "20");
    buf_putc(&b, '\0');
    char tok[1024];
    encode("20", tok, sizeof tok);
    char want[1100];
    snprintf(want, sizeof want, ",\"next_page_token\":\"%s\"", tok);
    assert_string_equal(b.data, want);
    buf_free(&b);
}

/* ---- page_parse ----------------------------------------------------------------------- */

typedef struct parsed {
    bool ok;
    int size;
    char after[512];
    int status;
    char body[256];
} parsed;

/* Runs page_parse on a request with the given query parameters (name, value pairs). */
static parsed run_parse(int n, ...)
{
    request req = {0};
    response resp = {.status = 200};
    call c = {.req = &req, .resp = &resp};
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        req.query[i].key = strdup(va_arg(ap, const char *));
        req.query[i].val = strdup(va_arg(ap, const char *));
    }
    va_end(ap);
    req.nquery = n;
    page p;
    parsed out = {0};
    out.ok = page_parse(&c, &p);
    out.size = p.size;
    snprintf(out.after, sizeof out.after, "%s", p.after);
    out.status = resp.status;
    if (resp.body.len)
        snprintf(out.body, sizeof out.body, "%.*s", (int)resp.body.len, resp.body.data);
    buf_free(&resp.body);
    for (int i = 0; i < n; i++)
        free(req.query[i].key), free(req.query[i].val);
    return out;
}

static void check_size(const char *v, int want)
{
    parsed r = run_parse(1, "page_size", v);
    if (!r.ok || r.size != want)
        fail_msg("page_size=%s: ok=%d size=%d, want size %d", v, r.ok, r.size, want);
}

static void check_invalid(const char *name, const char *v)
{
    parsed r = run_parse(1, name, v);
    if (r.ok)
        fail_msg("%s=%s accepted (size %d)", name, v, r.size);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "\"code\":3"));
}

static void test_parse_defaults(void **state)
{
    (void)state;
    parsed r = run_parse(0);
    assert_true(r.ok);
    assert_int_equal(r.size, 10);
    assert_string_equal(r.after, "");
    r = run_parse(1, "other", "x");
    assert_true(r.ok);
    assert_int_equal(r.size, 10);
}

static void test_parse_page_size(void **state)
{
    (void)state;
    check_size("1", 1);
    check_size("5", 5);
    check_size("10", 10);
    check_size("99", 99);
    check_size("100", 100);
    check_size("101", 100);
    check_size("1000000", 100);
    check_size("2147483648", 100);
    check_size("99999999999999999999999999", 100);
    check_size("0", 10);
    check_size("", 10);
    parsed r = run_parse(1, "pageSize", "7");
    assert_true(r.ok);
    assert_int_equal(r.size, 7);
}

static void test_parse_bad_page_size(void **state)
{
    (void)state;
    const char *bad[] = {"-1", "-100", "abc", "1.5", "5x", "0x10", "1e3", "--5", "-99999999999999999999", "5 ", "NaN"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_invalid("page_size", bad[i]);
}

static void test_parse_page_token(void **state)
{
    (void)state;
    char tok[1024];
    encode("30", tok, sizeof tok);
    parsed r = run_parse(2, "page_size", "5", "page_token", tok);
    assert_true(r.ok);
    assert_int_equal(r.size, 5);
    assert_string_equal(r.after, "30");
    r = run_parse(1, "pageToken", tok);
    assert_true(r.ok);
    assert_string_equal(r.after, "30");
    r = run_parse(1, "page_token", "");
    assert_true(r.ok);
    assert_string_equal(r.after, "");
    check_invalid("page_token", "MTI=");
    check_invalid("page_token", "garbage!");
    tok[0] = tok[0] == 'A' ? 'B' : 'A';
    check_invalid("page_token", tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_long_payload_round_trip),
        cmocka_unit_test(test_token_is_opaque),
        cmocka_unit_test(test_every_single_character_edit_is_refused),
        cmocka_unit_test(test_forged_tokens_refused),
        cmocka_unit_test(test_truncated_and_extended_tokens_refused),
        cmocka_unit_test(test_spliced_mac_refused),
        cmocka_unit_test(test_payload_with_nul_refused),
        cmocka_unit_test(test_url_safe_alphabet_accepted),
        cmocka_unit_test(test_other_server_key_refuses_token),
        cmocka_unit_test(test_page_token_write),
        cmocka_unit_test(test_parse_defaults),
        cmocka_unit_test(test_parse_page_size),
        cmocka_unit_test(test_parse_bad_page_size),
        cmocka_unit_test(test_parse_page_token),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
