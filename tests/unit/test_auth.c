/* Unit tests for src/auth/tokens.c: the server key file, token format, keyed token hashes,
 * page-token MACs, passwords, the token bucket rate limiter, and Bearer authentication
 * through the cache (revocation by another process is seen within a second). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "app/admin.h"
#include "auth/auth.h"
#include "store/store.h"
#include "util/util.h"

static char dir[256];

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s/manifold-test-auth.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    char key[300], err[256];
    path_in(key, sizeof key, "key");
    return auth_init(key, err, sizeof err);
}

static int teardown(void **state)
{
    (void)state;
    auth_shutdown();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void use_key(const char *name)
{
    char key[300], err[256];
    path_in(key, sizeof key, name);
    if (auth_init(key, err, sizeof err) != 0)
        fail_msg("auth_init %s: %s", key, err);
}

/* ---- key file ----------------------------------------------------------------------- */

static void test_key_file_created_private_and_reused(void **state)
{
    (void)state;
    char key[300];
    path_in(key, sizeof key, "fresh.key");
    use_key("fresh.key");
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, AUTH_KEY_BYTES);
    char h1[65], h2[65];
    token_hash("abc", 3, h1);
    use_key("fresh.key"); /* loading again gives the same key */
    token_hash("abc", 3, h2);
    assert_string_equal(h1, h2);
    use_key("key");
}

static void test_key_file_errors(void **state)
{
    (void)state;
    char key[300], err[256];
    path_in(key, sizeof key, "short.key");
    int fd = open(key, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "0123456789", 10), 10);
    close(fd);
    err[0] = '\0';
    assert_int_not_equal(auth_init(key, err, sizeof err), 0);
    assert_true(strlen(err) > 0);
    path_in(key, sizeof key, "no/such/dir/key");
    assert_int_not_equal(auth_init(key, err, sizeof err), 0);
    use_key("key");
}

/* ---- tokens --------------------------------------------------------------------------- */

static bool is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static void test_token_format(void **state)
{
    (void)state;
    for (int i = 0; i < 1000; i++) {
        char t[TOKEN_TEXT_MAX];
        memset(t, 'x', sizeof t);
        token_generate(t);
        size_t n = strlen(t);
        assert_true(n < TOKEN_TEXT_MAX);
        const char *dot = strchr(t, '.');
        assert_non_null(dot);
        assert_null(strchr(dot + 1, '.'));
        assert_int_equal(dot - t, 43); /* 32 random bytes, base64url without padding */
        assert_int_equal(n - (size_t)(dot - t) - 1, 43);
        for (size_t k = 0; k < n; k++)
            if (t[k] != '.' && !is_b64url(t[k]))
                fail_msg("bad character '%c' in token %s", t[k], t);
    }
}

static void test_tokens_are_unique(void **state)
{
    (void)state;
    enum { N = 2000 };
    char (*t)[TOKEN_TEXT_MAX] = calloc(N, TOKEN_TEXT_MAX);
    for (int i = 0; i < N; i++)
        token_generate(t[i]);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            if (!strcmp(t[i], t[j]))
                fail_msg("duplicate token");
    /* the two halves are independent */
    for (int i = 0; i < N; i++)
        assert_memory_not_equal(t[i], t[i] + 44, 43);
    free(t);
}

static void test_token_hash_is_stable_hex_and_keyed(void **state)
{
    (void)state;
    char t[TOKEN_TEXT_MAX], h1[65], h2[65], h3[65], other[65];
    token_generate(t);
    token_hash(t, strlen(t), h1);
    token_hash(t, strlen(t), h2);
    assert_string_equal(h1, h2);
    assert_int_equal(strlen(h1), 64);
    for (int i = 0; i < 64; i++)
        assert_non_null(strchr("0123456789abcdef", h1[i]));
    /* a different token, a one-character change, a prefix: different hashes */
    char t2[TOKEN_TEXT_MAX];
    memcpy(t2, t, sizeof t2);
    t2[0] = t2[0] == 'A' ? 'B' : 'A';
    token_hash(t2, strlen(t2), other);
    assert_string_not_equal(h1, other);
    token_hash(t, strlen(t) - 1, other);
    assert_string_not_equal(h1, other);
    /* only len bytes count */
    char padded[TOKEN_TEXT_MAX + 8];
    snprintf(padded, sizeof padded, "%sXYZ", t);
    token_hash(padded, strlen(t), h3);
    assert_string_equal(h1, h3);
    /* keyed: another server key gives another hash; the first key gives it back */
    use_key("other.key");
    token_hash(t, strlen(t), other);
    assert_string_not_equal(h1, other);
    use_key("key");
    token_hash(t, strlen(t), h3);
    assert_string_equal(h1, h3);
}

static void test_auth_mac_keyed_and_distinct_from_token_hash(void **state)
{
    (void)state;
    unsigned char a[12], b[12], c[12];
    auth_mac("payload", 7, a);
    auth_mac("payload", 7, b);
    assert_memory_equal(a, b, 12);
    auth_mac("payloae", 7, c);
    assert_memory_not_equal(a, c, 12);
    use_key("other.key");
    auth_mac("payload", 7, c);
    assert_memory_not_equal(a, c, 12);
    use_key("key");
    /* a page-token MAC is not a prefix of the token hash of the same bytes */
    char h[65], mac_hex[25];
    token_hash("payload", 7, h);
    for (int i = 0; i < 12; i++)
        snprintf(mac_hex + 2 * i, 3, "%02x", a[i]);
    assert_memory_not_equal(h, mac_hex, 24);
}

/* ---- passwords ----------------------------------------------------------------------- */

static void test_password_hash_and_verify(void **state)
{
    (void)state;
    char h[160], h2[160];
    assert_int_equal(password_hash("correct horse", h), 0);
    assert_non_null(strstr(h, "$argon2id$"));
    assert_true(password_verify(h, "correct horse"));
    assert_false(password_verify(h, "correct hors"));
    assert_false(password_verify(h, "correct horse "));
    assert_false(password_verify(h, ""));
    assert_int_equal(password_hash("correct horse", h2), 0);
    assert_string_not_equal(h, h2); /* salted */
    assert_false(password_verify("", "x"));
    assert_false(password_verify(NULL, "x"));
    assert_false(password_verify("not-a-hash", "x"));
}

/* ---- principals ----------------------------------------------------------------------- */

static void test_principal_from_row(void **state)
{
    (void)state;
    token_row r = {0};
    r.id = 42;
    snprintf(r.scopes, sizeof r.scopes, "workspace:read");
    snprintf(r.user_id, sizeof r.user_id, "usr_x");
    r.workspace_names = strdup("[\"workspaces/a\", \"b\", 7, \"workspaces/c-d\"]");
    principal p;
    principal_from_row(&p, &r);
    assert_int_equal(p.token_id, 42);
    assert_false(p.can_write);
    assert_string_equal(p.scopes, "workspace:read");
    assert_int_equal(p.nws, 3);
    assert_true(principal_has_ws(&p, "a"));
    assert_true(principal_has_ws(&p, "b"));
    assert_true(principal_has_ws(&p, "c-d"));
    assert_false(principal_has_ws(&p, "workspaces/a"));
    assert_false(principal_has_ws(&p, "A"));
    assert_false(principal_has_ws(&p, ""));
    free(r.workspace_names);
    snprintf(r.scopes, sizeof r.scopes, "workspace");
    r.workspace_names = strdup("not json");
    principal_from_row(&p, &r);
    assert_true(p.can_write);
    assert_int_equal(p.nws, 0);
    free(r.workspace_names);
}

/* ---- rate limiting -------------------------------------------------------------------- */

static void test_ratelimit_burst_then_refuse(void **state)
{
    (void)state;
    int remaining, retry;
    int64_t reset;
    const long long id = 1001;
    for (int i = 0; i < 5; i++) {
        assert_true(ratelimit_take(id, 5, &remaining, &retry, &reset));
        assert_int_equal(remaining, 4 - i);
        assert_int_equal(retry, 0);
        assert_true(reset >= now_ms() / 1000);
    }
    assert_false(ratelimit_take(id, 5, &remaining, &retry, &reset));
    assert_int_equal(remaining, 0);
    assert_true(retry >= 1 && retry <= 2);
    assert_true(reset >= now_ms() / 1000 && reset <= now_ms() / 1000 + 2);
    /* other tokens have their own bucket, also those in the same stripe */
    assert_true(ratelimit_take(1002, 5, &remaining, &retry, &reset));
    assert_true(ratelimit_take(1001 + 64, 5, &remaining, &retry, &reset));
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_ratelimit_refills(void **state)
{
    (void)state;
    int remaining, retry;
    int64_t reset;
    const long long id = 2001;
    for (int i = 0; i < 10; i++)
        assert_true(ratelimit_take(id, 10, &remaining, &retry, &reset));
    assert_false(ratelimit_take(id, 10, &remaining, &retry, &reset));
    sleep_ms(350); /* 10/s: about three tokens back */
    int ok = 0;
    while (ratelimit_take(id, 10, &remaining, &retry, &reset))
        ok++;
    assert_true(ok >= 2 && ok <= 5);
    sleep_ms(1100); /* a full bucket, never more than the burst */
    ok = 0;
    while (ratelimit_take(id, 10, &remaining, &retry, &reset))
        ok++;
    assert_int_equal(ok, 10);
}

static void test_ratelimit_zero_or_negative_disables(void **state)
{
    (void)state;
    int remaining = -7, retry = -7;
    int64_t reset = -7;
    for (int i = 0; i < 1000; i++) {
        assert_true(ratelimit_take(3001, 0, &remaining, &retry, &reset));
        assert_true(ratelimit_take(3001, -5, &remaining, &retry, &reset));
    }
}

static void test_ratelimit_large_rate_and_ids(void **state)
{
    (void)state;
    int remaining, retry;
    int64_t reset;
    assert_true(ratelimit_take(4001, 1000000000, &remaining, &retry, &reset));
    assert_true(remaining > 0);
    assert_true(ratelimit_take(-1, 1, &remaining, &retry, &reset)); /* odd ids: no crash */
    assert_true(ratelimit_take(INT64_MAX, 1, &remaining, &retry, &reset));
    assert_false(ratelimit_take(INT64_MAX, 1, &remaining, &retry, &reset));
}

/* ---- Bearer authentication through the cache ---------------------------------------- */

static void test_bearer_and_revocation(void **state)
{
    (void)state;
    char db[300], err[256], tok[TOKEN_TEXT_MAX], tok2[TOKEN_TEXT_MAX];
    path_in(db, sizeof db, "auth.db");
    store *st = store_open(db, 1, err, sizeof err);
    if (!st)
        fail_msg("store_open: %s", err);
    assert_int_equal(admin_bootstrap(st, "wsone", "owner@example.com", tok), 1);
    assert_int_equal(admin_token_create(st, "wsone", "workspace:read", "reader", NULL, tok2), ST_OK);

    principal p;
    assert_int_equal(auth_bearer(st, tok, strlen(tok), &p), ST_OK);
    principal_release(&p); /* a principal handed out holds its grants */
    assert_true(p.can_write);
    assert_int_equal(p.nws, 1);
    assert_true(principal_has_ws(&p, "wsone"));
    long long id = p.token_id;
    assert_true(id > 0);
    assert_int_equal(auth_bearer(st, tok, strlen(tok), &p), ST_OK); /* cached */
    principal_release(&p); /* a principal handed out holds its grants */
    assert_int_equal(p.token_id, id);

    assert_int_equal(auth_bearer(st, tok2, strlen(tok2), &p), ST_OK);
    principal_release(&p); /* a principal handed out holds its grants */
    assert_false(p.can_write);
    long long id2 = p.token_id;

    /* wrong, truncated, extended, empty, huge */
    char bad[TOKEN_TEXT_MAX + 10];
    snprintf(bad, sizeof bad, "%s", tok);
    bad[5] = bad[5] == 'a' ? 'b' : 'a';
    assert_int_equal(auth_bearer(st, bad, strlen(bad), &p), ST_NOT_FOUND);
    assert_int_equal(auth_bearer(st, tok, strlen(tok) - 1, &p), ST_NOT_FOUND);
    snprintf(bad, sizeof bad, "%sx", tok);
    assert_int_equal(auth_bearer(st, bad, strlen(bad), &p), ST_NOT_FOUND);
    assert_int_equal(auth_bearer(st, "", 0, &p), ST_NOT_FOUND);
    char huge[4096];
    memset(huge, 'A', sizeof huge);
    assert_int_equal(auth_bearer(st, huge, sizeof huge, &p), ST_NOT_FOUND);

    /* revoked by "another process" (straight in the database): refused within ~1 s */
    txn t;
    assert_int_equal(store_begin(st, &t, true), ST_OK);
    assert_int_equal(store_token_delete(&t, id), ST_OK);
    assert_int_equal(store_commit(&t), ST_OK);
    int64_t t0 = mono_ms();
    int rc;
    while ((rc = auth_bearer(st, tok, strlen(tok), &p)) == ST_OK) {
        principal_release(&p);
        if (mono_ms() - t0 > 1500)
            fail_msg("revoked token still accepted after 1.5 s");
        sleep_ms(20);
    }
    assert_int_equal(rc, ST_NOT_FOUND);
    assert_int_equal(auth_bearer(st, tok, strlen(tok), &p), ST_NOT_FOUND);

    /* revoked on this process: auth_forget takes effect at once */
    assert_int_equal(auth_bearer(st, tok2, strlen(tok2), &p), ST_OK);
    principal_release(&p); /* a principal handed out holds its grants */
    assert_int_equal(store_begin(st, &t, true), ST_OK);
    assert_int_equal(store_token_delete(&t, id2), ST_OK);
    assert_int_equal(store_commit(&t), ST_OK);
    auth_forget(id2);
    assert_int_equal(auth_bearer(st, tok2, strlen(tok2), &p), ST_NOT_FOUND);

    /* a second bootstrap on a non-empty database does nothing */
    assert_int_equal(admin_bootstrap(st, "wsone", "owner@example.com", tok), 0);
    store_close(st);
}

static void test_bearer_hashes_depend_on_key(void **state)
{
    (void)state;
    /* a database read with a different key file knows no token */
    char db[300], err[256], tok[TOKEN_TEXT_MAX];
    path_in(db, sizeof db, "auth2.db");
    store *st = store_open(db, 1, err, sizeof err);
    assert_non_null(st);
    assert_int_equal(admin_bootstrap(st, "wstwo", "owner@example.com", tok), 1);
    principal p;
    assert_int_equal(auth_bearer(st, tok, strlen(tok), &p), ST_OK);
    principal_release(&p); /* a principal handed out holds its grants */
    auth_shutdown(); /* also empties the cache */
    use_key("other.key");
    assert_int_equal(auth_bearer(st, tok, strlen(tok), &p), ST_NOT_FOUND);
    auth_shutdown();
    use_key("key");
    assert_int_equal(auth_bearer(st, tok, strlen(tok), &p), ST_OK);
    principal_release(&p); /* a principal handed out holds its grants */
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_file_created_private_and_reused),
        cmocka_unit_test(test_key_file_errors),
        cmocka_unit_test(test_token_format),
        cmocka_unit_test(test_tokens_are_unique),
        cmocka_unit_test(test_token_hash_is_stable_hex_and_keyed),
        cmocka_unit_test(test_auth_mac_keyed_and_distinct_from_token_hash),
        cmocka_unit_test(test_password_hash_and_verify),
        cmocka_unit_test(test_principal_from_row),
        cmocka_unit_test(test_ratelimit_burst_then_refuse),
        cmocka_unit_test(test_ratelimit_refills),
        cmocka_unit_test(test_ratelimit_zero_or_negative_disables),
        cmocka_unit_test(test_ratelimit_large_rate_and_ids),
        cmocka_unit_test(test_bearer_and_revocation),
        cmocka_unit_test(test_bearer_hashes_depend_on_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
